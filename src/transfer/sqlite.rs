//! SQLite rows through sqlx: a streaming SELECT out; prepared multi-row
//! INSERTs in, inside one transaction per chunk (so a chunk is all or
//! nothing, which is what resuming relies on).

use std::sync::Arc;

use futures::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Column, Connection, Row, TypeInfo, ValueRef};
use tokio::sync::mpsc;

use super::{Batch, ReadSpec, RowPolicy, WriteSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::sqlite::{self as codec, Cell};
use crate::db::sqlite::sqlx_error;
use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::progress::Task;

fn cell(row: &SqliteRow, i: usize) -> std::result::Result<Cell, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "INTEGER" => Cell::Integer(row.try_get::<i64, _>(i)?),
        "REAL" => Cell::Real(row.try_get::<f64, _>(i)?),
        "BLOB" => Cell::Blob(row.try_get::<Vec<u8>, _>(i)?),
        _ => match row.try_get::<String, _>(i) {
            Ok(s) => Cell::Text(s),
            // Text that is not UTF-8: keep the bytes.
            Err(_) => Cell::Blob(row.try_get::<Vec<u8>, _>(i)?),
        },
    })
}

/// Reads `spec.select` and sends decoded batches.
pub async fn read(conn: &mut sqlx::SqliteConnection, display: &str, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let mut rows = sqlx::query(AssertSqlSafe(spec.select.clone())).fetch(&mut *conn);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut bytes = 0usize;
    let mut total = 0u64;
    while let Some(row) = rows.try_next().await.map_err(|e| sqlx_error(display, &spec.select, e))? {
        let mut out = Vec::with_capacity(row.columns().len());
        for i in 0..row.columns().len() {
            let c = cell(&row, i).map_err(|e| sqlx_error(display, &spec.select, e))?;
            let ty = spec.types.get(i).ok_or_else(|| Error::Table { table: table.into(), row: None, message: "more columns than selected".into(), hint: None })?;
            let v = codec::decode(c, ty).map_err(|e| Error::Table {
                table: table.into(),
                row: Some(format!("#{}", total + batch.len() as u64 + 1)),
                message: format!("column {}: {e}", row.columns()[i].name()),
                hint: Some("the value does not match the column's declared type; add --cast to read it as text".into()),
            })?;
            bytes += v.weight();
            out.push(v);
        }
        batch.push(out);
        if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
            total += batch.len() as u64;
            let b = Batch { rows: std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)), bytes };
            bytes = 0;
            if tx.send(b).await.is_err() {
                return Ok(total);
            }
        }
    }
    total += batch.len() as u64;
    if !batch.is_empty() {
        let _ = tx.send(Batch { rows: batch, bytes }).await;
    }
    Ok(total)
}

/// Rows per INSERT: as many as fit under SQLite's bound-parameter limit.
fn rows_per_statement(columns: usize) -> usize {
    (32_000 / columns.max(1)).clamp(1, 500)
}

fn insert_sql(spec: &WriteSpec, rows: usize) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| crate::schema::naming::quote_ident(Dialect::Sqlite, &c.name)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    format!("INSERT INTO {} ({}) VALUES {}", spec.table, cols.join(", "), vec![one; rows].join(","))
}

/// Writes batches in one transaction. Returns rows written.
pub async fn write(conn: &mut sqlx::SqliteConnection, display: &str, spec: &WriteSpec, mut rx: mpsc::Receiver<Batch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    let per = rows_per_statement(spec.columns.len());
    let full_sql = insert_sql(spec, per);
    let mut tx = conn.begin().await.map_err(|e| sqlx_error(display, "BEGIN", e))?;
    let mut written = 0u64;
    let mut pending: Vec<Vec<Cell>> = Vec::with_capacity(per);
    while let Some(batch) = rx.recv().await {
        let n = batch.rows.len() as u64;
        for mut row in batch.rows {
            let res = policy.prepare(&mut row, &spec.columns, false).and_then(|_| {
                row.iter().enumerate().map(|(i, v)| codec::encode(v, &spec.columns[i].ty).map_err(|e| (i, e))).collect::<std::result::Result<Vec<Cell>, _>>()
            });
            match res {
                Ok(cells) => pending.push(cells),
                Err((col, reason)) => super::postgres::reject(spec, policy, row, col, reason)?,
            }
            if pending.len() == per {
                written += flush(&mut tx, display, &full_sql, &mut pending).await?;
            }
        }
        policy.counters.add(0, batch.bytes as u64);
        progress.inc(n);
    }
    if !pending.is_empty() {
        let sql = insert_sql(spec, pending.len());
        written += flush(&mut tx, display, &sql, &mut pending).await?;
    }
    tx.commit().await.map_err(|e| sqlx_error(display, "COMMIT", e))?;
    policy.counters.add(written, 0);
    Ok(written)
}

async fn flush(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, display: &str, sql: &str, pending: &mut Vec<Vec<Cell>>) -> Result<u64> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
    for row in pending.drain(..) {
        for c in row {
            q = match c {
                Cell::Null => q.bind(None::<i64>),
                Cell::Integer(i) => q.bind(i),
                Cell::Real(f) => q.bind(f),
                Cell::Text(s) => q.bind(s),
                Cell::Blob(b) => q.bind(b),
            };
        }
    }
    let done = q.execute(&mut **tx).await.map_err(|e| sqlx_error(display, &crate::db::excerpt(sql), e))?;
    Ok(done.rows_affected())
}
