//! MySQL / MariaDB through mysql_async. (Being written.)

use crate::endpoint::{DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::Schema;

pub struct MyConn {
    pub conn: mysql_async::Conn,
    pub database: String,
    pub mariadb: bool,
    pub display: String,
}

impl MyConn {
    pub async fn connect(_ep: &DbEndpoint, _role: Role) -> Result<MyConn> {
        Err(Error::NotImplemented { command: "mysql connection" })
    }
    pub async fn execute(&mut self, _sql: &str) -> Result<()> {
        Err(Error::NotImplemented { command: "mysql connection" })
    }
    pub async fn introspect(&mut self) -> Result<Schema> {
        Err(Error::NotImplemented { command: "mysql introspection" })
    }
}
