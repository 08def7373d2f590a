//! One side of a comparison: a table on one engine, the columns read from
//! it, and the queries run there (rows in key order, checksums computed by
//! the server, key bounds).

use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::ColumnType;
use crate::task::state::KeyRange;
use crate::transfer::{self, Batch, ReadSpec};

/// A side's connection is away only while [`Side::spawn_read`]'s reader
/// has it, and that is joined before anything else runs on the side.
const BUSY: &str = "a side runs one query at a time";

/// A reader running on its own task; it hands the connection back.
pub(super) type Reading = tokio::task::JoinHandle<(Db, Result<u64>)>;

pub(super) struct Side {
    /// The connection; away while a spawned reader has it.
    pub db: Option<Db>,
    /// The table as SQL, quoted.
    pub table: String,
    /// The table's name, for messages.
    pub label: String,
    /// Select expressions, one per compared column.
    pub columns: Vec<String>,
    /// The model type each column is read as.
    pub types: Vec<ColumnType>,
    /// ORDER BY terms that sort the key in [`super::canon::KeyOrder`];
    /// `None` when this engine cannot sort the key that way.
    pub order: Option<Vec<String>>,
    /// Quoted integer key column, for splitting into ranges.
    pub int_key: Option<String>,
    /// The mapping's row filter (source side only).
    pub filter: Option<String>,
}

impl Side {
    fn where_sql(&self, range: KeyRange) -> String {
        let mut conds = Vec::new();
        if let Some(p) = self.int_key.as_ref().and_then(|k| range.predicate(k)) {
            conds.push(p);
        }
        if let Some(f) = &self.filter {
            conds.push(format!("({f})"));
        }
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    }

    /// The connection back, once the side's work is done.
    pub fn into_db(mut self) -> Result<Db> {
        self.db.take().ok_or_else(|| Error::other(format!("the connection reading {} was lost", self.label)))
    }

    /// Starts streaming the rows of `range` into `tx` (in key order when
    /// `ordered`) on a task of its own, so that both sides decode on their
    /// own cores; [`Side::join_read`] takes the connection back. A value
    /// its declared type cannot read comes through as its text.
    pub fn spawn_read(&mut self, range: KeyRange, ordered: bool, tx: mpsc::Sender<Batch>) -> Reading {
        let mut select = format!("SELECT {} FROM {}{}", self.columns.join(", "), self.table, self.where_sql(range));
        if ordered {
            if let Some(order) = &self.order {
                select.push_str(&format!(" ORDER BY {}", order.join(", ")));
            }
        }
        let spec = ReadSpec { select, types: self.types.clone() };
        let mut db = self.db.take().expect(BUSY);
        let label = self.label.clone();
        tokio::spawn(async move {
            let r = transfer::read_tolerant(&mut db, &label, &spec, tx).await;
            (db, r)
        })
    }

    /// Waits for a reader started by [`Side::spawn_read`]: rows read.
    pub async fn join_read(&mut self, reading: Reading) -> Result<u64> {
        let (db, r) = reading.await.map_err(|e| Error::other(format!("reading {} stopped: {e}", self.label)))?;
        self.db = Some(db);
        r
    }

    /// (rows, checksum) of a range, computed by the server: an
    /// order-independent sum of row hashes, so rows never leave it.
    pub async fn server_sum(&mut self, range: KeyRange) -> Result<(u64, String)> {
        let w = self.where_sql(range);
        match self.db.as_mut().expect(BUSY) {
            Db::Postgres(c) => {
                let row_expr = format!("ROW({})::text", self.columns.join(", "));
                let sql = format!("SELECT count(*), COALESCE(sum(('x' || substr(md5({row_expr}), 1, 15))::bit(60)::bigint), 0)::text FROM {}{w}", self.table);
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| crate::db::postgres::query_error(&c.display, &sql, e))?;
                Ok((r.get::<_, i64>(0) as u64, r.get(1)))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let parts: Vec<String> = self
                    .columns
                    .iter()
                    .zip(&self.types)
                    .map(|(col, ty)| match ty {
                        ColumnType::Binary { .. } | ColumnType::Varbinary { .. } | ColumnType::Blob { .. } | ColumnType::Bit { .. } => format!("IFNULL(CONCAT('v', HEX({col})), 'n')"),
                        _ => format!("IFNULL(CONCAT('v', CAST({col} AS CHAR)), 'n')"),
                    })
                    .collect();
                let row_expr = format!("CONCAT_WS('|', {})", parts.join(", "));
                let sql = format!("SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row_expr}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {}{w}", self.table);
                let r: Option<(u64, String)> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or((0, "0".into())))
            }
            Db::Sqlite(_) => Err(Error::other("SQLite cannot hash rows itself")),
        }
    }

    /// Rows in the table (after the filter).
    pub async fn count(&mut self) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}{}", self.table, self.where_sql(KeyRange::ALL));
        match self.db.as_mut().expect(BUSY) {
            Db::Postgres(c) => {
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| crate::db::postgres::query_error(&c.display, &sql, e))?;
                Ok(r.get::<_, i64>(0) as u64)
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let r: Option<u64> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or(0))
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c.conn).await.map_err(|e| crate::db::sqlite::sqlx_error(&c.display, &sql, e))?;
                Ok(r.try_get::<i64, _>(0).unwrap_or(0) as u64)
            }
        }
    }

    /// The smallest and largest integer key in a range.
    pub async fn bounds(&mut self, range: KeyRange) -> Result<(Option<i64>, Option<i64>)> {
        let Some(k) = self.int_key.clone() else { return Ok((None, None)) };
        let w = self.where_sql(range);
        match self.db.as_mut().expect(BUSY) {
            Db::Postgres(c) => {
                let sql = format!("SELECT MIN({k})::bigint, MAX({k})::bigint FROM {}{w}", self.table);
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| crate::db::postgres::query_error(&c.display, &sql, e))?;
                Ok((r.get(0), r.get(1)))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let sql = format!("SELECT MIN({k}), MAX({k}) FROM {}{w}", self.table);
                let r: Option<(Option<i64>, Option<i64>)> = c.conn.query_first(sql.as_str()).await.map_err(|e| mysql_error(&c.display, &sql, e))?;
                Ok(r.unwrap_or((None, None)))
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                let sql = format!("SELECT MIN({k}), MAX({k}) FROM {}{w}", self.table);
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c.conn).await.map_err(|e| crate::db::sqlite::sqlx_error(&c.display, &sql, e))?;
                Ok((r.try_get(0).unwrap_or(None), r.try_get(1).unwrap_or(None)))
            }
        }
    }
}

fn mysql_error(display: &str, sql: &str, e: mysql_async::Error) -> Error {
    Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", crate::db::excerpt(sql)), hint: None }
}
