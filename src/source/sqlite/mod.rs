//! SQLite as a source: counts, page sizes, key bounds, a read
//! transaction and reads on a [`LiteConn`]; the change stream (barge's
//! trigger-fed change table) in `changes.rs`.

pub mod changes;

use sqlx::Row;
use tokio::sync::mpsc;

use super::{Estimate, KeyBounds, Source, TableRead};
use crate::sink::BoxFuture;
use crate::db::sqlite::{sqlx_error, LiteConn};
use crate::error::Result;
use crate::model::{Dialect, Schema, Table};
use crate::transfer::{self, Batch};

/// A sum of page sizes from `dbstat`; None where SQLite was built without it.
async fn pages(conn: &mut sqlx::SqliteConnection, sql: &'static str, name: &str) -> Option<i64> {
    let row = sqlx::query(sql).bind(name).fetch_one(conn).await.ok()?;
    Some(row.try_get::<Option<i64>, _>(0).ok()?.unwrap_or(0))
}

impl Source for LiteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn discover(&mut self) -> BoxFuture<'_, Result<Schema>> {
        Box::pin(self.introspect())
    }

    /// SQLite keeps no statistics: the rows are counted, which is quick
    /// for a local file, and the pages summed from `dbstat` where the
    /// library has it (0 where not).
    fn estimate<'a>(&'a mut self, t: &'a Table) -> BoxFuture<'a, Result<Estimate>> {
        Box::pin(async move {
            let table = crate::task::load::source_table_sql(Dialect::Sqlite, t);
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
            let rows = row.try_get::<i64, _>(0).unwrap_or(0).max(0) as u64;
            let name = t.name.name.as_str();
            let bytes = pages(&mut self.conn, "SELECT SUM(pgsize) FROM dbstat WHERE name = ?1", name).await;
            let index = match bytes {
                Some(_) => pages(&mut self.conn, "SELECT SUM(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name WHERE s.type = 'index' AND s.tbl_name = ?1", name).await,
                None => None,
            };
            Ok(Estimate { rows, bytes: bytes.unwrap_or(0).max(0) as u64, index_bytes: index.map(|i| i.max(0) as u64), rows_counted: true })
        })
    }

    fn estimated_from(&self) -> &'static str {
        "catalog: dbstat pages of each table"
    }

    fn whole_size(&mut self) -> BoxFuture<'_, Result<Option<(u64, &'static str)>>> {
        Box::pin(async move {
            let sql = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()";
            let row = sqlx::query(sql).fetch_one(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, sql, e))?;
            Ok(Some((row.try_get::<i64, _>(0).unwrap_or(0).max(0) as u64, "the file: page_count × page_size (this SQLite has no dbstat)")))
        })
    }

    fn key_bounds<'a>(&'a mut self, table: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<KeyBounds>>> {
        Box::pin(async move {
            let sql = format!("SELECT MIN({key}), MAX({key}), COUNT(*) FROM {table}");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
            let a: Option<i64> = row.try_get(0).unwrap_or(None);
            let b: Option<i64> = row.try_get(1).unwrap_or(None);
            let n: i64 = row.try_get(2).unwrap_or(0);
            Ok(a.zip(b).map(|(lo, hi)| KeyBounds { lo, hi, rows: n as u64 }))
        })
    }

    fn begin_snapshot<'a>(&'a mut self, _exported: Option<&'a str>) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.execute("BEGIN"))
    }

    fn read<'a>(&'a mut self, job: &'a TableRead, tx: mpsc::Sender<Batch>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { transfer::sqlite::read(&mut self.conn, &self.display, &job.name, &job.spec, tx).await })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.execute("COMMIT"))
    }
}
