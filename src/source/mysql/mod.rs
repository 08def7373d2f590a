//! MySQL/MariaDB as a source: catalog statistics, key bounds, snapshots
//! and reads on a [`MyConn`]; the change stream in `binlog.rs`.

pub mod binlog;
pub mod binlog_ddl;
mod binlog_rows;

use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::{Estimate, KeyBounds, Source, TableRead};
use crate::sink::BoxFuture;
use crate::db::mysql::MyConn;
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema, Table};
use crate::transfer::{self, Batch};

fn error(c: &MyConn, sql: &str, e: mysql_async::Error) -> Error {
    Error::Endpoint { endpoint: c.display.clone(), message: format!("{e}\n  statement: {sql}"), hint: None }
}

impl Source for MyConn {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn discover(&mut self) -> BoxFuture<'_, Result<Schema>> {
        Box::pin(self.introspect())
    }

    /// `TABLE_ROWS` and `DATA_LENGTH` (InnoDB's clustered index, i.e. the rows).
    fn estimate<'a>(&'a mut self, t: &'a Table) -> BoxFuture<'a, Result<Estimate>> {
        Box::pin(async move {
            let sql = "SELECT TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
            let row: Option<(Option<u64>, Option<u64>, Option<u64>)> = self.conn.exec_first(sql, (t.name.name.as_str(),)).await.map_err(|e| error(self, sql, e))?;
            let (rows, bytes, index) = row.unwrap_or((None, None, None));
            Ok(Estimate { rows: rows.unwrap_or(0), bytes: bytes.unwrap_or(0), index_bytes: index, rows_counted: false })
        })
    }

    fn estimated_from(&self) -> &'static str {
        "catalog: information_schema.TABLES.DATA_LENGTH"
    }

    fn key_bounds<'a>(&'a mut self, table: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<KeyBounds>>> {
        Box::pin(async move {
            let sql = format!("SELECT MIN({key}), MAX({key}), (SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{}') FROM {table}", table.trim_matches('`').replace('\'', "''"));
            let row: Option<(Option<String>, Option<String>, Option<u64>)> = self.conn.query_first(sql.as_str()).await.map_err(|e| error(self, &sql, e))?;
            Ok(row.and_then(|(a, b, n)| {
                let (lo, hi) = (a?.parse::<i64>().ok()?, b?.parse::<i64>().ok()?);
                Some(KeyBounds { lo, hi, rows: n.filter(|n| *n > 0).unwrap_or((hi - lo + 1).max(0) as u64) })
            }))
        })
    }

    /// MySQL exports no snapshot: `exported` is never given here (a
    /// capture hands over connections already inside its snapshot).
    fn begin_snapshot<'a>(&'a mut self, _exported: Option<&'a str>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
            self.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").await
        })
    }

    fn read<'a>(&'a mut self, job: &'a TableRead, tx: mpsc::Sender<Batch>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { transfer::mysql::read(&mut self.conn, &self.display, &job.name, &job.spec, tx).await })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.execute("COMMIT"))
    }
}
