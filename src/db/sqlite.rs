//! SQLite through sqlx. (Being written.)
use crate::endpoint::{Role, SqliteEndpoint};
use crate::error::{Error, Result};
use crate::model::Schema;

pub struct LiteConn {
    pub conn: sqlx::SqliteConnection,
    pub display: String,
}

impl LiteConn {
    pub async fn connect(_ep: &SqliteEndpoint, _role: Role) -> Result<LiteConn> {
        Err(Error::NotImplemented { command: "sqlite connection" })
    }
    pub async fn execute(&mut self, _sql: &str) -> Result<()> {
        Err(Error::NotImplemented { command: "sqlite connection" })
    }
    pub async fn introspect(&mut self) -> Result<Schema> {
        Err(Error::NotImplemented { command: "sqlite introspection" })
    }
}
