//! Database connections, one module per engine, behind one enum. Each
//! engine module offers the same shape: `connect`, `execute`, `introspect`
//! (catalog → schema model), plus its fast data path for `migrate`.

pub mod mysql;
pub mod postgres;
pub mod sqlite;
pub mod tls;

use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema};

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

/// Shortens a SQL statement for an error message.
pub fn excerpt(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 120 {
        format!("{}…", flat.chars().take(120).collect::<String>())
    } else {
        flat
    }
}
