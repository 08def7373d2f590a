//! SQLite rows through sqlx: a streaming SELECT out; prepared multi-row
//! INSERTs in, inside one transaction per chunk (so a chunk is all or
//! nothing, which is what resuming relies on).


use tokio::sync::mpsc;

use super::sqlite_ffi as ffi;

use super::{BadValue, Batch, Mismatch, ReadSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::sqlite::{self as codec};
use crate::db::sqlite::sqlx_error;
use crate::error::{Error, Result};

/// One batch stepped out of a statement: rows, their bytes, the values
/// that did not decode, and whether the statement is done.
type Stepped = (Vec<Vec<crate::model::Value>>, usize, Vec<BadValue>, bool);

/// Reads `spec.select` and sends decoded batches.
pub async fn read(conn: &mut sqlx::SqliteConnection, display: &str, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_with(conn, display, table, spec, Mismatch::Fail, tx).await
}

/// [`read`], with a choice of what a value that does not decode does.
pub(crate) async fn read_with(conn: &mut sqlx::SqliteConnection, display: &str, table: &str, spec: &ReadSpec, mismatch: Mismatch, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let mut handle = conn.lock_handle().await.map_err(|e| sqlx_error(display, "lock", e))?;
    let db = ffi::Db::new(&mut handle);
    let err = |e: String| Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", crate::db::excerpt(&spec.select)), hint: None };
    let mut stmt = db.prepare(&spec.select).map_err(err)?;
    let ncol = stmt.columns();
    let mut total = 0u64;
    loop {
        // Step a batch at a time, then hand it over without blocking.
        let stepped = ffi::blocking(|| -> std::result::Result<Stepped, Error> {
            let mut rows = Vec::with_capacity(BATCH_ROWS);
            let mut bad = Vec::new();
            let mut bytes = 0usize;
            while rows.len() < BATCH_ROWS && bytes < BATCH_BYTES {
                if !stmt.step().map_err(err)? {
                    return Ok((rows, bytes, bad, true));
                }
                let mut out = Vec::with_capacity(ncol);
                for i in 0..ncol {
                    let ty = spec.types.get(i).ok_or_else(|| Error::Table { table: table.into(), row: None, message: "more columns than selected".into(), hint: None })?;
                    let v = match codec::decode(stmt.cell(i), ty) {
                        Ok(v) => v,
                        // The cell again, as SQLite stores it: its text.
                        Err(e) if mismatch == Mismatch::PassAsText => {
                            bad.push(BadValue { row: rows.len(), column: i, reason: e, table: table.to_string() });
                            codec::raw_value(stmt.cell(i))
                        }
                        Err(e) => {
                            return Err(Error::Table {
                                table: table.into(),
                                row: Some(format!("#{}", total + rows.len() as u64 + 1)),
                                message: format!("column {}: {e}", i + 1),
                                hint: Some("the value does not match the column's declared type; `barge migrate` reads such a column as text with --cast TABLE.COLUMN=text".into()),
                            })
                        }
                    };
                    bytes += v.weight();
                    out.push(v);
                }
                rows.push(out);
            }
            Ok((rows, bytes, bad, false))
        });
        let (rows, bytes, bad, done) = stepped?;
        total += rows.len() as u64;
        if !rows.is_empty() && tx.send(Batch { rows, bytes, bad }).await.is_err() {
            return Ok(total);
        }
        if done {
            return Ok(total);
        }
    }
}
