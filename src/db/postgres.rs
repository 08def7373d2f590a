//! PostgreSQL through tokio-postgres. (Being written.)
use crate::endpoint::{DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::Schema;

pub struct PgConn {
    pub client: tokio_postgres::Client,
    pub display: String,
}

impl PgConn {
    pub async fn connect(_ep: &DbEndpoint, _role: Role) -> Result<PgConn> {
        Err(Error::NotImplemented { command: "postgres connection" })
    }
    pub async fn execute(&mut self, _sql: &str) -> Result<()> {
        Err(Error::NotImplemented { command: "postgres connection" })
    }
    pub async fn introspect(&mut self) -> Result<Schema> {
        Err(Error::NotImplemented { command: "postgres introspection" })
    }
}
