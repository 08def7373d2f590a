//! Database connections, one module per engine, behind one enum. Each
//! engine module offers the same shape: `connect`, `execute`, `introspect`
//! (catalog → schema model), plus its fast data path for `migrate`.
//!
//! The queries here are the ones both sides run (validation counts and
//! hashes rows on the source and the target; identity and cancelling a
//! running statement serve either): the engine SQL stays in `db/` and
//! `source/`, and `task/` asks through these methods. What only a source
//! does is in [`crate::source`].

pub mod mysql;
pub mod postgres;
pub mod sqlite;
pub mod tls;

use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::model::{ColumnType, Dialect, Schema};

pub enum Db {
    Postgres(postgres::PgConn),
    Mysql(mysql::MyConn),
    Sqlite(sqlite::LiteConn),
}

impl Db {
    pub async fn connect(ep: &Endpoint, role: Role) -> Result<Db> {
        Ok(match ep {
            Endpoint::Postgres(e) => Db::Postgres(postgres::PgConn::connect(e, role).await?),
            Endpoint::Mysql(e) => Db::Mysql(mysql::MyConn::connect(e, role).await?),
            Endpoint::Sqlite(e) => Db::Sqlite(sqlite::LiteConn::connect(e, role).await?),
            other => {
                return Err(Error::usage(format!("{other} is not a database; use postgres://, mysql:// or sqlite:")));
            }
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Mysql(_) => Dialect::Mysql,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Runs one statement; the error names it.
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        match self {
            Db::Postgres(c) => c.execute(sql).await,
            Db::Mysql(c) => c.execute(sql).await,
            Db::Sqlite(c) => c.execute(sql).await,
        }
    }

    /// Runs statements in order, stopping at the first failure.
    pub async fn execute_all(&mut self, statements: &[String]) -> Result<()> {
        for s in statements {
            self.execute(s).await?;
        }
        Ok(())
    }

    /// Reads the catalog into the schema model.
    pub async fn introspect(&mut self) -> Result<Schema> {
        match self {
            Db::Postgres(c) => c.introspect().await,
            Db::Mysql(c) => c.introspect().await,
            Db::Sqlite(c) => c.introspect().await,
        }
    }
}

/// Who a server is, beyond its URL: what tells a database barge worked
/// with from another one at the same address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "engine", rename_all = "snake_case")]
pub enum Identity {
    Postgres {
        /// `pg_control_system()`; `None` when the user may not read it.
        system_identifier: Option<String>,
        database: String,
        database_oid: i64,
    },
    Mysql {
        server: String,
        schema: String,
    },
    Sqlite {
        path: String,
        inode: u64,
        /// Creation time in nanoseconds since the epoch, where the file
        /// system keeps it (a re-created file may reuse the inode).
        created: Option<u64>,
    },
    /// Files and streams: the URL is all there is.
    Other {
        url: String,
    },
}

/// Stops the statement running on one connection, from another task.
pub enum Canceller {
    Postgres { token: tokio_postgres::CancelToken, pid: Option<i32> },
    Mysql { id: u32 },
    Sqlite,
}

impl Canceller {
    /// Asks the server to stop the statement; best effort.
    pub async fn cancel(&self, ep: &Endpoint) {
        match self {
            Canceller::Postgres { token, pid } => {
                if token.cancel_query(tokio_postgres::NoTls).await.is_ok() {
                    return;
                }
                // A server that insists on TLS refuses a plain cancel request:
                // ask over a normal connection instead.
                if let (Some(pid), Ok(Db::Postgres(c))) = (pid, Db::connect(ep, Role::Target).await) {
                    let _ = c.client.execute("SELECT pg_cancel_backend($1)", &[pid]).await;
                }
            }
            Canceller::Mysql { id } => {
                if let Ok(mut c) = Db::connect(ep, Role::Target).await {
                    let _ = c.execute(&format!("KILL QUERY {id}")).await;
                }
            }
            Canceller::Sqlite => {}
        }
    }
}

fn mysql_error(display: &str, sql: &str, e: mysql_async::Error) -> Error {
    Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", excerpt(sql)), hint: None }
}

impl Db {
    /// What stops a statement running on this connection.
    pub async fn canceller(&mut self) -> Canceller {
        match self {
            Db::Postgres(c) => {
                let pid = c.client.query_one("SELECT pg_backend_pid()", &[]).await.ok().map(|r| r.get::<_, i32>(0));
                Canceller::Postgres { token: c.client.cancel_token(), pid }
            }
            Db::Mysql(c) => Canceller::Mysql { id: c.conn.id() },
            Db::Sqlite(_) => Canceller::Sqlite,
        }
    }

    /// Who `ep`, open on this connection, is.
    pub async fn identity(&mut self, ep: &Endpoint) -> Result<Identity> {
        match self {
            Db::Postgres(c) => {
                let sql = "SELECT current_database()::text, oid::bigint FROM pg_database WHERE datname = current_database()";
                let r = c.client.query_one(sql, &[]).await.map_err(|e| postgres::query_error(&c.display, sql, e))?;
                // Not every user may read the control file's copy.
                let system_identifier = match c.client.query_one("SELECT system_identifier::text FROM pg_control_system()", &[]).await {
                    Ok(row) => row.get::<_, Option<String>>(0),
                    Err(_) => None,
                };
                Ok(Identity::Postgres { system_identifier, database: r.get(0), database_oid: r.get(1) })
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let server: Option<String> = match c.conn.query_first::<Option<String>, _>("SELECT @@server_uuid").await {
                    Ok(Some(Some(uuid))) => Some(uuid),
                    _ => None,
                };
                let server = match server {
                    Some(s) => s,
                    None => {
                        let sql = "SELECT CONCAT(@@hostname, ':', @@datadir, ':', COALESCE((SELECT CAST(CREATE_TIME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'global_priv'), ''))";
                        let r: Option<String> = c.conn.query_first(sql).await.map_err(|e| Error::Endpoint { endpoint: c.display.clone(), message: e.to_string(), hint: None })?;
                        r.unwrap_or_default()
                    }
                };
                Ok(Identity::Mysql { server, schema: c.database.clone() })
            }
            Db::Sqlite(_) => sqlite::identity(ep),
        }
    }

    /// The first column of the first row of `sql` as text; `None` when
    /// there is no row, or no such table (`sql` reads a table that may
    /// not exist yet, such as a state table).
    pub async fn text_if_table(&mut self, sql: &str) -> Result<Option<String>> {
        match self {
            Db::Postgres(c) => match c.client.query_opt(sql, &[]).await {
                Ok(r) => Ok(r.map(|r| r.get::<_, String>(0))),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
                Err(e) => Err(postgres::query_error(&c.display, sql, e)),
            },
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                match c.conn.query_first::<String, _>(sql).await {
                    Ok(r) => Ok(r),
                    Err(mysql_async::Error::Server(e)) if e.code == 1146 => Ok(None),
                    Err(e) => Err(Error::Endpoint { endpoint: c.display.clone(), message: format!("{e}\n  statement: {sql}"), hint: None }),
                }
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                match sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_optional(&mut c.conn).await {
                    Ok(r) => Ok(r.and_then(|r| r.try_get::<String, _>(0).ok())),
                    Err(e) if e.to_string().contains("no such table") => Ok(None),
                    Err(e) => Err(sqlite::sqlx_error(&c.display, sql, e)),
                }
            }
        }
    }

    /// Rows of `table` (SQL, quoted) matching `where_sql` (empty, or `
    /// WHERE …`).
    pub async fn count_rows(&mut self, table: &str, where_sql: &str) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {table}{where_sql}");
        match self {
            Db::Postgres(c) => {
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| postgres::query_error(&c.display, &sql, e))?;
                Ok(r.get::<_, i64>(0) as u64)
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let r: Option<u64> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or(0))
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c.conn).await.map_err(|e| sqlite::sqlx_error(&c.display, &sql, e))?;
                Ok(r.try_get::<i64, _>(0).unwrap_or(0) as u64)
            }
        }
    }

    /// The smallest and largest value of the integer column `key` (quoted).
    pub async fn int_bounds(&mut self, table: &str, key: &str, where_sql: &str) -> Result<(Option<i64>, Option<i64>)> {
        match self {
            Db::Postgres(c) => {
                let sql = format!("SELECT MIN({key})::bigint, MAX({key})::bigint FROM {table}{where_sql}");
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| postgres::query_error(&c.display, &sql, e))?;
                Ok((r.get(0), r.get(1)))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let sql = format!("SELECT MIN({key}), MAX({key}) FROM {table}{where_sql}");
                let r: Option<(Option<i64>, Option<i64>)> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or((None, None)))
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                let sql = format!("SELECT MIN({key}), MAX({key}) FROM {table}{where_sql}");
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c.conn).await.map_err(|e| sqlite::sqlx_error(&c.display, &sql, e))?;
                Ok((r.try_get(0).unwrap_or(None), r.try_get(1).unwrap_or(None)))
            }
        }
    }

    /// (rows, checksum) of the rows matching `where_sql`, computed by the
    /// server: an order-independent sum of row hashes, so rows never
    /// leave it. `columns` are select expressions, `types` their types.
    pub async fn row_hash_sum(&mut self, table: &str, columns: &[String], types: &[ColumnType], where_sql: &str) -> Result<(u64, String)> {
        match self {
            Db::Postgres(c) => {
                let row_expr = format!("ROW({})::text", columns.join(", "));
                let sql = format!("SELECT count(*), COALESCE(sum(('x' || substr(md5({row_expr}), 1, 15))::bit(60)::bigint), 0)::text FROM {table}{where_sql}");
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| postgres::query_error(&c.display, &sql, e))?;
                Ok((r.get::<_, i64>(0) as u64, r.get(1)))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let parts: Vec<String> = columns
                    .iter()
                    .zip(types)
                    .map(|(col, ty)| match ty {
                        ColumnType::Binary { .. } | ColumnType::Varbinary { .. } | ColumnType::Blob { .. } | ColumnType::Bit { .. } => format!("IFNULL(CONCAT('v', HEX({col})), 'n')"),
                        _ => format!("IFNULL(CONCAT('v', CAST({col} AS CHAR)), 'n')"),
                    })
                    .collect();
                let row_expr = format!("CONCAT_WS('|', {})", parts.join(", "));
                let sql = format!("SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row_expr}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {table}{where_sql}");
                let r: Option<(u64, String)> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or((0, "0".into())))
            }
            Db::Sqlite(_) => Err(Error::other("SQLite cannot hash rows itself")),
        }
    }
}

/// Shortens a SQL statement for an error message.
pub fn excerpt(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 {
        format!("{}…", flat.chars().take(120).collect::<String>())
    } else {
        flat
    }
}
