//! PostgreSQL rows: COPY out and in. Between two PostgreSQL servers the
//! COPY stream passes through untouched (binary when both sides have the
//! same column types, text otherwise, which the target parses into its own
//! types). From and to other engines, rows are decoded from and encoded to
//! COPY text format by [`crate::codec::pgtext`].


use futures::{pin_mut, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{BadValue, Batch, Mismatch, ReadSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::{pgbinary, pgtext};
use crate::db::postgres::query_error;
use crate::error::{Error, Result};
use crate::model::Value;
use crate::pack::rows::{self, Packed, RawBlock};

/// Session settings the text decoders rely on.
pub const READ_SESSION: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; \
     SET bytea_output = 'hex'; SET extra_float_digits = 3; SET statement_timeout = 0";

/// Reads `spec.select` and sends decoded batches. Returns rows read.
pub async fn read(client: &Client, display: &str, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_copy(client, display, table, &format!("COPY ({}) TO STDOUT", spec.select), spec, tx).await
}

/// Like [`read`], from a whole `COPY ... TO STDOUT` statement: `COPY table
/// (columns) TO STDOUT` skips the executor that `COPY (SELECT ...)` runs,
/// about a fifth less server time. `spec.types` describes the columns.
pub async fn read_copy(client: &Client, display: &str, table: &str, copy: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_copy_with(client, display, table, copy, spec, Mismatch::Fail, tx).await
}

/// [`read_copy`], with a choice of what a value that does not decode does.
pub(crate) async fn read_copy_with(client: &Client, display: &str, table: &str, copy: &str, spec: &ReadSpec, mismatch: Mismatch, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let stream = client.copy_out(copy).await.map_err(|e| query_error(display, copy, e))?;
    pin_mut!(stream);
    let mut parser = pgtext::CopyTextParser::new();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut bad = Vec::new();
    let mut bytes = 0usize;
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| query_error(display, copy, e))?;
        parser.feed(&chunk);
        while let Some(fields) = parser.next_row().map_err(|e| table_error(table, None, &e))? {
            let mut row = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                let v = match f {
                    None => Value::Null,
                    Some(raw) => {
                        let ty = spec.types.get(i).ok_or_else(|| table_error(table, None, "more columns than selected"))?;
                        bytes += raw.len();
                        match pgtext::decode(raw, ty) {
                            Ok(v) => v,
                            Err(e) if mismatch == Mismatch::PassAsText => {
                                bad.push(BadValue { row: batch.len(), column: i, reason: e, table: table.to_string() });
                                super::raw_value(raw)
                            }
                            Err(e) => return Err(table_error(table, Some(total + batch.len() as u64 + 1), &format!("column {}: {e}", i + 1))),
                        }
                    }
                };
                row.push(v);
            }
            batch.push(row);
            if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
                total += batch.len() as u64;
                let b = Batch { rows: std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)), bytes, bad: std::mem::take(&mut bad) };
                bytes = 0;
                if tx.send(b).await.is_err() {
                    // The writer stopped; it reports why.
                    return Ok(total);
                }
            }
        }
    }
    parser.finish().map_err(|e| table_error(table, None, &e))?;
    total += batch.len() as u64;
    if !batch.is_empty() {
        let _ = tx.send(Batch { rows: batch, bytes, bad }).await;
    }
    Ok(total)
}

/// Whether [`read_packed`] can read `spec`'s columns: each has a binary
/// codec ([`pgbinary::Field`]).
pub fn packed_fields(spec: &ReadSpec) -> Option<Vec<pgbinary::Field>> {
    spec.types.iter().map(pgbinary::Field::of).collect()
}

/// Runs `copy` (a `COPY ... TO STDOUT`) in binary format and sends the
/// rows as packed blocks (`barge-rows/1` bodies, see [`crate::pack::rows`])
/// straight from PostgreSQL's binary fields, with no [`Value`] in between.
/// Returns rows read.
pub async fn read_packed(client: &Client, display: &str, table: &str, copy: &str, fields: &[pgbinary::Field], tx: mpsc::Sender<RawBlock>) -> Result<u64> {
    let sql = format!("{copy} (FORMAT binary)");
    let stream = client.copy_out(sql.as_str()).await.map_err(|e| query_error(display, &sql, e))?;
    pin_mut!(stream);
    let mut parser = pgbinary::CopyBinaryParser::new();
    let mut row = Vec::with_capacity(fields.len());
    let mut scratch = Vec::new();
    let mut body = Vec::with_capacity(BATCH_BYTES + 65536);
    let (mut rows, mut total) = (0u32, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| query_error(display, &sql, e))?;
        parser.feed(&chunk);
        while parser.next_row(&mut row).map_err(|e| table_error(table, None, &e))? {
            if row.len() != fields.len() {
                return Err(table_error(table, Some(total + rows as u64 + 1), &format!("{} fields for {} columns", row.len(), fields.len())));
            }
            for (i, (f, kind)) in row.iter().zip(fields).enumerate() {
                let v = match f {
                    None => Packed::Null,
                    Some(r) => pgbinary::packed_from(parser.bytes(*r), *kind, &mut scratch)
                        .map_err(|e| table_error(table, Some(total + rows as u64 + 1), &format!("column {}: {e}", i + 1)))?,
                };
                rows::put_packed(&v, &mut body);
            }
            rows += 1;
            if rows as usize >= BATCH_ROWS || body.len() >= BATCH_BYTES {
                let block = RawBlock { rows, first_row: total, body: std::mem::replace(&mut body, Vec::with_capacity(BATCH_BYTES + 65536)) };
                total += rows as u64;
                rows = 0;
                if tx.send(block).await.is_err() {
                    // The writer stopped; it reports why.
                    return Ok(total);
                }
            }
        }
    }
    parser.finish().map_err(|e| table_error(table, None, &e))?;
    if rows > 0 {
        let _ = tx.send(RawBlock { rows, first_row: total, body }).await;
        total += rows as u64;
    }
    Ok(total)
}

fn table_error(table: &str, row: Option<u64>, msg: &str) -> Error {
    Error::Table { table: table.to_string(), row: row.map(|r| format!("#{r}")), message: msg.to_string(), hint: None }
}
