//! MySQL/MariaDB rows: a streaming text-protocol SELECT out, and
//! `LOAD DATA LOCAL INFILE` in, fed from memory through mysql_async's
//! infile handler — one statement per batch, so a warning the server
//! raises ("at row N") maps back to the exact row.


use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use super::{BadValue, Batch, Mismatch, ReadSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::mysqltext;
use crate::error::{Error, Result};
use crate::model::Value;

pub(crate) fn mysql_error(display: &str, sql: &str, e: mysql_async::Error) -> Error {
    Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", crate::db::excerpt(sql)), hint: None }
}

/// A failed read; a row larger than the packets the connection takes is
/// named, with the server setting that decides it.
fn read_error(display: &str, table: &str, sql: &str, row: u64, e: mysql_async::Error) -> Error {
    if e.to_string().contains("max_allowed_packet") {
        return Error::Table {
            table: table.to_string(),
            row: Some(format!("#{row} (in the order read)")),
            message: "the row is larger than max_allowed_packet, the largest packet the server lets a connection take".into(),
            hint: Some("raise it on the server, e.g. SET GLOBAL max_allowed_packet = 1073741824 (1 GiB, the most it takes), then rerun: new connections get the new value".into()),
        };
    }
    mysql_error(display, sql, e)
}

/// Reads `spec.select` and sends decoded batches.
pub async fn read(conn: &mut Conn, display: &str, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_with(conn, display, table, spec, Mismatch::Fail, tx).await
}

/// [`read`], with a choice of what a value that does not decode does.
pub(crate) async fn read_with(conn: &mut Conn, display: &str, table: &str, spec: &ReadSpec, mismatch: Mismatch, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let mut result = conn.query_iter(spec.select.as_str()).await.map_err(|e| mysql_error(display, &spec.select, e))?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut bad = Vec::new();
    let mut bytes = 0usize;
    let mut total = 0u64;
    while let Some(row) = result.next().await.map_err(|e| read_error(display, table, &spec.select, total + batch.len() as u64 + 1, e))? {
        let raw = row.unwrap();
        let mut out = Vec::with_capacity(raw.len());
        for (i, v) in raw.into_iter().enumerate() {
            let ty = spec.types.get(i).ok_or_else(|| Error::Table { table: table.into(), row: None, message: "more columns than selected".into(), hint: None })?;
            out.push(match v {
                mysql_async::Value::NULL => Value::Null,
                mysql_async::Value::Bytes(b) => {
                    bytes += b.len();
                    // By value: text moves into the row instead of being copied.
                    match mysqltext::decode_owned_or_keep(b, ty) {
                        Ok(v) => v,
                        Err((e, b)) if mismatch == Mismatch::PassAsText => {
                            bad.push(BadValue { row: batch.len(), column: i, reason: e, table: table.to_string() });
                            super::raw_value(&b)
                        }
                        Err((e, _)) => {
                            return Err(Error::Table { table: table.into(), row: Some(format!("#{}", total + batch.len() as u64 + 1)), message: format!("column {}: {e}", i + 1), hint: None })
                        }
                    }
                }
                other => {
                    // The text protocol only sends bytes; be lenient anyway.
                    let text = other.as_sql(true);
                    mysqltext::decode(text.trim_matches('\'').as_bytes(), ty).map_err(|e| Error::Table { table: table.into(), row: None, message: e, hint: None })?
                }
            });
        }
        batch.push(out);
        if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
            total += batch.len() as u64;
            let b = Batch { rows: std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)), bytes, bad: std::mem::take(&mut bad) };
            bytes = 0;
            if tx.send(b).await.is_err() {
                // Drain the result so the connection stays usable.
                let _ = result.drop_result().await;
                return Ok(total);
            }
        }
    }
    total += batch.len() as u64;
    if !batch.is_empty() {
        let _ = tx.send(Batch { rows: batch, bytes, bad }).await;
    }
    Ok(total)
}
