//! Fencing on the target: what a worker writes under a lease commits only
//! if no later lease of the same unit has written first.
//!
//! A lease can be lost without its holder knowing: paused (SIGSTOP, a
//! stall), cut off, or slower than its lease. So the coordinator cannot
//! be the judge; the target is. Each unit's transaction on the target
//! begins by raising the unit's row in `barge_fence` to the lease's epoch,
//! and stops if that row already holds a higher one. The row stays locked
//! until the transaction ends, so two holders' writes to one unit are
//! serialized and the later epoch always wins: a stale holder either
//! commits before the new one starts (whose transaction then deletes the
//! stale rows before loading) or finds the higher epoch and rolls back.
//!
//! A new holder that finds the row locked by a stalled old one ends that
//! old connection (it is named in the lease, [`connection_tag`]), so one
//! paused process never holds up the run.

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::Dialect;

/// The fence table, in the target's default schema next to
/// `barge_cdc_state`.
pub const FENCE_TABLE: &str = "barge_fence";

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What a lease's writer is called on the target: PostgreSQL's
/// `application_name` (set here), MySQL's connection id. Recorded in the
/// lease so a later holder can end this connection.
pub async fn connection_tag(db: &mut Db, epoch: i64) -> Result<String> {
    match db {
        Db::Postgres(c) => {
            let tag = format!("barge-lease-{epoch}");
            c.execute(&format!("SET application_name = {}", lit(&tag))).await?;
            Ok(format!("pg:{tag}"))
        }
        Db::Mysql(c) => Ok(format!("mysql:{}", c.conn.id())),
        Db::Sqlite(_) => Ok(String::new()),
    }
}

/// Ends the connection a previous holder of the unit wrote through, so its
/// open transaction (and its lock on the fence row) goes. Best effort: a
/// user without the right keeps waiting on the lock until the timeout set
/// in [`begin`].
pub async fn end_previous(db: &mut Db, tag: &str) {
    let sql = match (db.dialect(), tag.split_once(':')) {
        (Dialect::Postgres, Some(("pg", name))) => format!("SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE application_name = {} AND pid <> pg_backend_pid()", lit(name)),
        (Dialect::Mysql, Some(("mysql", id))) if id.parse::<u32>().is_ok() => format!("KILL {id}"),
        _ => return,
    };
    let r = if db.dialect() == Dialect::Postgres { db.text_if_table(&sql).await.map(|_| ()) } else { db.execute(&sql).await };
    match r {
        Ok(()) => tracing::debug!("ended the previous holder's connection {tag}"),
        // MySQL: 1094 unknown thread id (it is gone already).
        Err(e) => tracing::debug!("cannot end the previous holder's connection {tag}: {e}"),
    }
}

/// Creates the fence table (the schema holder, once, before any chunk is
/// published: PostgreSQL's `CREATE TABLE IF NOT EXISTS` run by two
/// sessions at once can fail in one of them).
pub async fn prepare(db: &mut Db) -> Result<()> {
    let text = if db.dialect() == Dialect::Mysql { "VARCHAR(255)" } else { "TEXT" };
    db.execute(&format!("CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (task {text} NOT NULL, unit BIGINT NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (task, unit))")).await
}

/// What a lease's writes are fenced with.
#[derive(Debug, Clone)]
pub struct Token {
    pub task: String,
    pub unit: i64,
    pub epoch: i64,
}

/// Begins the unit's transaction on the target and takes the fence at
/// `epoch`. Err when a later lease of the unit already wrote (this worker
/// lost its lease: nothing of it may commit).
pub async fn begin(db: &mut Db, task: &str, unit: i64, epoch: i64, wait_secs: u64) -> Result<()> {
    match db.dialect() {
        Dialect::Mysql => {
            for stmt in crate::sink::mysql::WRITE_SESSION {
                db.execute(stmt).await?;
            }
            db.execute(&format!("SET SESSION innodb_lock_wait_timeout = {wait_secs}")).await?;
            db.execute("START TRANSACTION").await?;
        }
        _ => {
            db.execute("BEGIN").await?;
            db.execute(&format!("SET LOCAL lock_timeout = '{wait_secs}s'")).await?;
        }
    }
    take(db, &Token { task: task.to_string(), unit, epoch }).await
}

/// Raises the unit's fence on the target to the lease's epoch, on its own,
/// before a new holder reads where the unit's writes stand there (a
/// change stream's position). A previous holder stalled inside a
/// transaction (past the fence, not yet committed) either commits first,
/// and the position read next includes its writes, or is refused after:
/// nothing is applied twice. Waits `wait_secs` for such a holder's lock,
/// then fails, retriable.
pub async fn raise(target: &crate::endpoint::Endpoint, token: &Token, wait_secs: u64) -> Result<()> {
    let mut db = Db::connect(target, crate::endpoint::Role::Target).await?;
    begin(&mut db, &token.task, token.unit, token.epoch, wait_secs).await?;
    commit(&mut db).await
}

/// Takes the fence inside the transaction the caller opened (rolled back
/// when refused).
pub async fn take(db: &mut Db, token: &Token) -> Result<()> {
    let Token { task, unit, epoch } = token;
    let (task, unit, epoch) = (task.as_str(), *unit, *epoch);
    let (t, key) = (lit(task), format!("task = {} AND unit = {unit}", lit(task)));
    let (upsert, read) = match db.dialect() {
        Dialect::Mysql => (
            format!("INSERT INTO {FENCE_TABLE} (task, unit, epoch) VALUES ({t}, {unit}, {epoch}) ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))"),
            format!("SELECT CAST(epoch AS CHAR) FROM {FENCE_TABLE} WHERE {key}"),
        ),
        _ => (
            format!("INSERT INTO {FENCE_TABLE} (task, unit, epoch) VALUES ({t}, {unit}, {epoch}) ON CONFLICT (task, unit) DO UPDATE SET epoch = excluded.epoch WHERE {FENCE_TABLE}.epoch < excluded.epoch"),
            format!("SELECT epoch::text FROM {FENCE_TABLE} WHERE {key}"),
        ),
    };
    let held = async {
        db.execute(&upsert).await?;
        db.text_if_table(&read).await
    }
    .await;
    match held {
        Ok(Some(e)) if e == epoch.to_string() => Ok(()),
        Ok(found) => {
            let _ = db.execute("ROLLBACK").await;
            Err(fenced(task, unit, epoch, found.as_deref()))
        }
        Err(e) => {
            let _ = db.execute("ROLLBACK").await;
            Err(e.retriable_if(true))
        }
    }
}

pub async fn commit(db: &mut Db) -> Result<()> {
    db.execute("COMMIT").await
}

pub async fn rollback(db: &mut Db) {
    let _ = db.execute("ROLLBACK").await;
}

/// The error of a worker whose lease a later one took.
pub fn fenced(task: &str, unit: i64, epoch: i64, found: Option<&str>) -> Error {
    Error::Fenced { task: task.to_string(), unit, epoch, found: found.unwrap_or("?").to_string() }
}

/// Whether `e` is [`fenced`]'s error.
pub fn is_fenced(e: &Error) -> bool {
    matches!(e, Error::Fenced { .. })
}
