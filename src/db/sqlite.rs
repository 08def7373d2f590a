//! SQLite through sqlx. The catalog is SQLite's own DDL text
//! (`sqlite_master.sql`), so introspection reads it with the same script
//! reader `convert-schema` uses: a file and its `.schema` dump give the same
//! model.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use crate::endpoint::{Role, SqliteEndpoint};
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::reader;

pub struct LiteConn {
    pub conn: sqlx::SqliteConnection,
    pub display: String,
}

pub fn sqlx_error(display: &str, what: &str, e: sqlx::Error) -> Error {
    let hint = match &e {
        sqlx::Error::Database(db) if db.message().contains("locked") => {
            Some("another process holds the database; stop it or wait".to_string())
        }
        sqlx::Error::Database(db) if db.message().contains("readonly") => {
            Some("the file or its directory is not writable".to_string())
        }
        _ => None,
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {what}"), hint }
}

impl LiteConn {
    pub async fn connect(ep: &SqliteEndpoint, role: Role) -> Result<LiteConn> {
        let opts = match &ep.path {
            None => SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| Error::other(e.to_string()))?,
            Some(path) => {
                if role == Role::Source && !path.exists() {
                    return Err(Error::Endpoint {
                        endpoint: ep.display.clone(),
                        message: format!("no such file: {}", path.display()),
                        hint: Some("check the path; a source database must already exist".into()),
                    });
                }
                let o = SqliteConnectOptions::new().filename(path).create_if_missing(role == Role::Target).busy_timeout(Duration::from_secs(30));
                if role == Role::Target {
                    // Bulk loading: the target is rebuilt from scratch if the
                    // run fails, so WAL and NORMAL sync are safe and fast.
                    o.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
                } else {
                    o
                }
            }
        };
        let conn = opts.foreign_keys(false).disable_statement_logging().connect().await.map_err(|e| Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("cannot open: {e}"),
            hint: Some("check that the path exists and is a SQLite database".into()),
        })?;
        let mut me = LiteConn { conn, display: ep.display.clone() };
        // Reading a non-database file fails only at the first query.
        me.query_scalar("SELECT count(*) FROM sqlite_master").await.map_err(|e| match e {
            Error::Endpoint { endpoint, message, .. } => Error::Endpoint {
                endpoint,
                message,
                hint: Some("the file is not a SQLite database (or is encrypted)".into()),
            },
            other => other,
        })?;
        Ok(me)
    }

    async fn query_scalar(&mut self, sql: &str) -> Result<i64> {
        let row = sqlx::query(AssertSqlSafe(sql.to_string())).fetch_one(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, sql, e))?;
        row.try_get::<i64, _>(0).map_err(|e| sqlx_error(&self.display, sql, e))
    }

    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &super::excerpt(sql), e))?;
        Ok(())
    }

    pub async fn introspect(&mut self) -> Result<Schema> {
        let sql = "SELECT type, name, tbl_name, sql FROM sqlite_master \
                   WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'barge\\_%' ESCAPE '\\' \
                   ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid";
        let rows = sqlx::query(sql).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, sql, e))?;
        let mut script = String::new();
        for r in &rows {
            let ddl: String = r.try_get(3).map_err(|e| sqlx_error(&self.display, sql, e))?;
            script.push_str(&ddl);
            script.push_str(";\n");
        }
        let out = reader::read_script(&script, Dialect::Sqlite);
        let mut schema = out.schema;
        // AUTOINCREMENT counters live in sqlite_sequence.
        // (The table exists only once some table uses AUTOINCREMENT.)
        if let Ok(seq) = sqlx::query("SELECT name, seq FROM sqlite_sequence").fetch_all(&mut self.conn).await {
            for r in seq {
                let (name, value): (String, i64) = (r.get(0), r.get(1));
                if let Some(t) = schema.table_mut(&QualifiedName::bare(&name)) {
                    for c in t.columns.iter_mut() {
                        if let Some(id) = c.identity.as_mut() {
                            id.start = Some(value as i128 + 1);
                        }
                    }
                }
            }
        }
        Ok(schema)
    }

    pub async fn close(self) -> Result<()> {
        self.conn.close().await.map_err(|e| Error::other(e.to_string()))
    }
}
