//! PostgreSQL as a source: catalog statistics, key bounds, snapshots and
//! reads on a [`PgConn`]; the change stream in `wal.rs`.

pub mod pgoutput;
pub mod wal;

use tokio::sync::mpsc;

use super::{Estimate, KeyBounds, Source, TableRead};
use crate::sink::BoxFuture;
use crate::db::postgres::{query_error, PgConn};
use crate::error::Result;
use crate::model::{Dialect, QualifiedName, Schema, Table};
use crate::pack::rows::RawBlock;
use crate::transfer::{self, Batch};

impl Source for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn discover(&mut self) -> BoxFuture<'_, Result<Schema>> {
        Box::pin(self.introspect())
    }

    /// `reltuples` and `pg_table_size` (heap + TOAST + maps, no indexes).
    fn estimate<'a>(&'a mut self, t: &'a Table) -> BoxFuture<'a, Result<Estimate>> {
        Box::pin(async move {
            let table = crate::task::load::source_table_sql(Dialect::Postgres, t);
            let sql = "SELECT GREATEST(c.reltuples, 0)::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c WHERE c.oid = $1::text::regclass";
            let row = self.client.query_one(sql, &[&table]).await.map_err(|e| query_error(&self.display, sql, e))?;
            let (rows, bytes, index): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            Ok(Estimate { rows: rows.max(0) as u64, bytes: bytes.max(0) as u64, index_bytes: Some(index.max(0) as u64), rows_counted: false })
        })
    }

    fn estimated_from(&self) -> &'static str {
        "catalog: pg_table_size (heap + TOAST, no indexes)"
    }

    fn key_bounds<'a>(&'a mut self, table: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<KeyBounds>>> {
        Box::pin(async move {
            let sql = format!("SELECT MIN({key})::bigint, MAX({key})::bigint, (SELECT reltuples::bigint FROM pg_class WHERE oid = '{}'::regclass) FROM {table}", table.replace('\'', "''"));
            let row = self.client.query_one(sql.as_str(), &[]).await.map_err(|e| query_error(&self.display, &sql, e))?;
            let (lo, hi, est): (Option<i64>, Option<i64>, Option<i64>) = (row.get(0), row.get(1), row.get(2));
            let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(None) };
            // Never analyzed (-1 or 0): assume the key range is dense.
            let rows = est.filter(|e| *e > 0).map(|e| e as u64).unwrap_or((hi - lo + 1).max(0) as u64);
            Ok(Some(KeyBounds { lo, hi, rows }))
        })
    }

    fn begin_snapshot<'a>(&'a mut self, exported: Option<&'a str>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let import = exported.map(|n| format!("; SET TRANSACTION SNAPSHOT '{n}'")).unwrap_or_default();
            let sql = format!("{}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY{import}", transfer::postgres::READ_SESSION);
            self.client.batch_execute(&sql).await.map_err(|e| query_error(&self.display, "BEGIN ISOLATION LEVEL REPEATABLE READ", e))
        })
    }

    /// The whole-table COPY where the job has one (no column needs a cast).
    fn read<'a>(&'a mut self, job: &'a TableRead, tx: mpsc::Sender<Batch>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            match &job.copy {
                Some(copy) => transfer::postgres::read_copy(&self.client, &self.display, &job.name, copy, &job.spec, tx).await,
                None => transfer::postgres::read(&self.client, &self.display, &job.name, &job.spec, tx).await,
            }
        })
    }

    /// `COPY table TO` only (a plain read of every column), each column
    /// with a binary codec.
    fn reads_packed(&self, job: &TableRead) -> bool {
        job.copy.is_some() && transfer::postgres::packed_fields(&job.spec).is_some()
    }

    fn read_packed<'a>(&'a mut self, job: &'a TableRead, tx: mpsc::Sender<RawBlock>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let (Some(copy), Some(fields)) = (&job.copy, transfer::postgres::packed_fields(&job.spec)) else {
                return Err(crate::error::Error::other(format!("table {}: not a plain COPY of binary-coded columns", job.name)));
            };
            transfer::postgres::read_packed(&self.client, &self.display, &job.name, copy, &fields, tx).await
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.execute("COMMIT"))
    }
}

/// What a copy needs beyond the model: the extensions to create before
/// the tables (their types, functions), and the indexes of the selected
/// materialized views as (view, index name, `pg_get_indexdef`).
pub async fn extensions_and_matview_indexes(ep: &crate::endpoint::DbEndpoint, schema: &Schema) -> Result<(Vec<String>, Vec<(QualifiedName, String, String)>)> {
    let c = PgConn::connect(ep, crate::endpoint::Role::Source).await?;
    let sql = "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY oid";
    let rows = c.client.query(sql, &[]).await.map_err(|e| query_error(&c.display, sql, e))?;
    let extensions = rows.iter().map(|r| r.get(0)).collect();
    let mut indexes = Vec::new();
    if !schema.views.iter().any(|v| v.materialized) {
        return Ok((extensions, indexes));
    }
    let sql = "SELECT n.nspname, m.relname, ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i \
               JOIN pg_class m ON m.oid = i.indrelid JOIN pg_namespace n ON n.oid = m.relnamespace \
               JOIN pg_class ic ON ic.oid = i.indexrelid WHERE m.relkind = 'm' ORDER BY 1, 2, 3";
    let rows = c.client.query(sql, &[]).await.map_err(|e| query_error(&c.display, sql, e))?;
    for r in rows {
        let view = QualifiedName::new(Some(&r.get::<_, String>(0)), &r.get::<_, String>(1));
        if schema.views.iter().any(|v| v.materialized && v.name == view) {
            indexes.push((view, r.get(2), r.get(3)));
        }
    }
    Ok((extensions, indexes))
}
