//! Checks converted DDL against a real target: every statement is run
//! there, in order, and then everything is undone, so the report can say
//! which statements the target refuses and why, instead of calling them
//! converted. How each engine undoes its work:
//!
//! - SQLite: a fresh in-memory database (no server needed, so
//!   `convert-schema` always checks SQLite output this way), or a given
//!   file, inside a transaction that is rolled back as on PostgreSQL;
//! - PostgreSQL: one transaction, a savepoint per statement (a refused
//!   statement is rolled back alone), and a final ROLLBACK;
//! - MySQL/MariaDB: DDL commits implicitly there, so the statements run
//!   in a scratch database that is dropped afterwards.
//!
//! It only needs [`Db::connect`] and [`Db::execute`], so `migrate` can
//! use it to learn, before it loads, which tables a target will refuse.

use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::Dialect;

/// A statement the target refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Index into the statements given.
    pub statement: usize,
    /// The server's message, without barge's context lines.
    pub error: String,
}

/// Runs `statements` on the database behind `db` and undoes them. Errors
/// only when the check itself cannot go on (lost connection, no scratch
/// database); a refused statement is a [`Refusal`], and checking goes on.
pub async fn run_and_undo(db: &mut Db, statements: &[String]) -> Result<Vec<Refusal>> {
    match db.dialect() {
        Dialect::Mysql => mysql(db, statements).await,
        Dialect::Sqlite => {
            // Cannot change inside a transaction; the output sets it too.
            db.execute("PRAGMA foreign_keys = OFF").await?;
            transactional(db, statements).await
        }
        _ => transactional(db, statements).await,
    }
}

/// Checks statements for a SQLite target in a fresh in-memory database.
pub async fn in_memory_sqlite(statements: &[String]) -> Result<Vec<Refusal>> {
    let ep = Endpoint::parse("sqlite::memory:")?;
    let mut db = Db::connect(&ep, Role::Target).await?;
    run_and_undo(&mut db, statements).await
}

/// [`in_memory_sqlite`] for callers without an async runtime.
pub fn in_memory_sqlite_blocking(statements: &[String]) -> Result<Vec<Refusal>> {
    runtime()?.block_on(in_memory_sqlite(statements))
}

/// Connects to `url` as a target (password from `BARGE_TARGET_PASSWORD`
/// or the URL's `password_file`, never from the URL) and checks there.
pub fn against_url_blocking(url: &str, expect: Dialect, statements: &[String]) -> Result<Vec<Refusal>> {
    let ep = Endpoint::parse(url)?;
    runtime()?.block_on(async {
        let mut db = Db::connect(&ep, Role::Target).await?;
        if db.dialect() != expect {
            return Err(Error::usage(format!(
                "--check {ep}: that is a {} database, but the output is for {expect}; check against a {expect} server",
                db.dialect()
            )));
        }
        run_and_undo(&mut db, statements).await
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    crate::util::runtime::build(crate::util::runtime::Workers::Caller)
}

/// The server's own words: the first line of barge's message, which
/// goes on to name the statement (already known here).
fn server_message(e: &Error, sql: &str) -> String {
    let text = match e {
        Error::Endpoint { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let first = text.lines().next().unwrap_or("").trim();
    // MySQL's messages lead with the statement: "statement failed: `…`: ".
    let lead = format!("statement failed: `{}`: ", crate::db::excerpt(sql));
    first.strip_prefix(lead.as_str()).unwrap_or(first).to_string()
}

async fn transactional(db: &mut Db, statements: &[String]) -> Result<Vec<Refusal>> {
    db.execute("BEGIN").await?;
    let outcome = in_transaction(db, statements).await;
    // Undo everything, whatever happened; a failed rollback means the
    // connection is gone, which ends the session (and the transaction) too.
    let _ = db.execute("ROLLBACK").await;
    outcome
}

async fn in_transaction(db: &mut Db, statements: &[String]) -> Result<Vec<Refusal>> {
    let mut refused = Vec::new();
    for (i, sql) in statements.iter().enumerate() {
        db.execute("SAVEPOINT barge_check").await?;
        match db.execute(sql).await {
            Ok(()) => db.execute("RELEASE SAVEPOINT barge_check").await?,
            Err(e) => {
                let error = server_message(&e, sql);
                db.execute("ROLLBACK TO SAVEPOINT barge_check").await?;
                if error.contains("max_locks_per_transaction") {
                    // Every later statement would fail the same way: say so
                    // instead of blaming each of them.
                    return Err(Error::other(format!(
                        "the check ran out of PostgreSQL lock slots after {i} of {} statements (everything is checked in one transaction); raise max_locks_per_transaction on the server, or check a smaller script",
                        statements.len()
                    )));
                }
                refused.push(Refusal { statement: i, error });
            }
        }
    }
    Ok(refused)
}

async fn mysql(db: &mut Db, statements: &[String]) -> Result<Vec<Refusal>> {
    let scratch = format!(
        "barge_check_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
    );
    db.execute(&format!("CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4")).await.map_err(|e| {
        Error::other(format!("--check needs a scratch database on the MySQL server, and creating `{scratch}` failed: {}", server_message(&e, "")))
            .with_hint("grant the --check user CREATE and DROP (e.g. GRANT CREATE, DROP ON `barge\\_check\\_%`.* TO …), or check against another server")
    })?;
    let outcome = async {
        db.execute(&format!("USE `{scratch}`")).await?;
        db.execute("SET FOREIGN_KEY_CHECKS = 0").await?;
        let mut refused = Vec::new();
        for (i, sql) in statements.iter().enumerate() {
            if let Err(e) = db.execute(sql).await {
                refused.push(Refusal { statement: i, error: server_message(&e, sql) });
            }
        }
        Ok(refused)
    }
    .await;
    let dropped = db.execute(&format!("DROP DATABASE IF EXISTS `{scratch}`")).await;
    let refused = outcome?;
    dropped.map_err(|e| Error::other(format!("the check's scratch database `{scratch}` could not be dropped: {}; drop it by hand", server_message(&e, ""))))?;
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_refusals_name_the_statement_and_the_reason() {
        let stmts = vec![
            "CREATE TABLE a (id INTEGER PRIMARY KEY);".to_string(),
            "CREATE TABLE a (id INTEGER);".to_string(),
            "CREATE INDEX i ON missing (x);".to_string(),
            "CREATE TABLE b (x TEXT);".to_string(),
        ];
        let r = in_memory_sqlite_blocking(&stmts).unwrap();
        assert_eq!(r.iter().map(|r| r.statement).collect::<Vec<_>>(), vec![1, 2]);
        assert!(r[0].error.contains("already exists"), "{:?}", r[0]);
        assert!(r[1].error.contains("missing"), "{:?}", r[1]);
    }
}
