//! MySQL/MariaDB rows: a streaming text-protocol SELECT out, and
//! `LOAD DATA LOCAL INFILE` in, fed from memory through mysql_async's
//! infile handler — one statement per batch, so a warning the server
//! raises ("at row N") maps back to the exact row.

use std::sync::Arc;

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use super::{BadCells, BadValue, Batch, Mismatch, ReadSpec, RowPolicy, WriteSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::mysqltext;
use crate::error::{Error, Result};
use crate::model::{ColumnType, Dialect, Value};
use crate::progress::Task;

fn mysql_error(display: &str, sql: &str, e: mysql_async::Error) -> Error {
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

/// Session settings for loading: explicit ids stay as given (even 0),
/// key checks wait for the load to finish.
pub const WRITE_SESSION: &[&str] = &[
    "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'NO_AUTO_VALUE_ON_ZERO')",
    "SET SESSION foreign_key_checks = 0",
    "SET SESSION unique_checks = 0",
];

/// The `LOAD DATA` statement for a table: BIT columns go through a user
/// variable, because LOAD DATA cannot write a number into a BIT directly.
pub fn load_statement(spec: &WriteSpec) -> String {
    let mut cols = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in spec.columns.iter().enumerate() {
        let q = crate::schema::naming::quote_ident(Dialect::Mysql, &c.name);
        if matches!(c.ty, ColumnType::Bit { .. }) {
            cols.push(format!("@v{i}"));
            sets.push(format!("{q} = CAST(@v{i} AS UNSIGNED)"));
        } else {
            cols.push(q);
        }
    }
    let mut s = format!(
        "LOAD DATA LOCAL INFILE 'barge-batch' INTO TABLE {} CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        spec.table,
        cols.join(", ")
    );
    if !sets.is_empty() {
        s.push_str(" SET ");
        s.push_str(&sets.join(", "));
    }
    s
}

/// Bytes per piece of `LOAD DATA LOCAL INFILE` data sent to the server:
/// 1 MiB, or half the server's max_allowed_packet if that is smaller. A
/// value of any length goes through: the server reads the file a packet
/// at a time.
fn infile_piece(max_allowed_packet: Option<u64>) -> usize {
    let max = max_allowed_packet.unwrap_or(1 << 20).max(1024);
    ((max / 2) as usize).clamp(512, 1 << 20)
}

/// Writes batches with one `LOAD DATA LOCAL INFILE` each.
pub async fn write(conn: &mut Conn, display: &str, spec: &WriteSpec, mut rx: mpsc::Receiver<Batch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    let load = load_statement(spec);
    // The client refuses to write a packet larger than the server's
    // max_allowed_packet, and a refusal in the middle of LOAD DATA would
    // leave the server session waiting for the rest of the file, holding
    // its locks: the data goes in pieces well below it.
    let max_packet: Option<u64> = conn.query_first("SELECT @@max_allowed_packet").await.map_err(|e| mysql_error(display, "SELECT @@max_allowed_packet", e))?;
    let piece = infile_piece(max_packet);
    let mut written = 0u64;
    while let Some(batch) = rx.recv().await {
        let n = batch.rows.len() as u64;
        let mut buf: Vec<u8> = Vec::with_capacity(batch.bytes + batch.rows.len() * 8);
        let mut kept: Vec<Vec<Value>> = Vec::with_capacity(batch.rows.len());
        let mut line = Vec::with_capacity(1024);
        let mut bad = BadCells::new(&batch.bad);
        for (ri, mut row) in batch.rows.into_iter().enumerate() {
            line.clear();
            if let Err(r) = super::admit_bad(bad.of_row(ri), &row, &spec.columns) {
                super::postgres::refuse(spec, policy, row, r)?;
                continue;
            }
            let res = policy.prepare(&mut row, &spec.columns, true).and_then(|_| {
                for (i, v) in row.iter().enumerate() {
                    if i > 0 {
                        line.push(b'\t');
                    }
                    mysqltext::encode_load_data(v, &spec.columns[i].ty, &mut line).map_err(|e| (i, e))?;
                }
                line.push(b'\n');
                Ok(())
            });
            match res {
                Ok(()) => {
                    buf.extend_from_slice(&line);
                    kept.push(row);
                }
                Err((col, reason)) => super::postgres::reject(spec, policy, row, col, reason)?,
            }
        }
        if kept.is_empty() {
            progress.inc(n);
            continue;
        }
        let len = buf.len() as u64;
        let data = Bytes::from(buf);
        conn.set_infile_handler(async move {
            // In pieces: the client refuses to write one packet larger than
            // the server's max_allowed_packet, whatever the rows add up to.
            let pieces: Vec<std::io::Result<Bytes>> = (0..data.len()).step_by(piece).map(|i| Ok(data.slice(i..(i + piece).min(data.len())))).collect();
            let stream: mysql_async::InfileData = Box::pin(futures::stream::iter(pieces));
            Ok(stream)
        });
        conn.query_drop(load.as_str()).await.map_err(|e| mysql_error(display, &load, e))?;
        let warnings = conn.get_warnings();
        if warnings > 0 {
            // LOAD DATA LOCAL turns refusals into warnings: surface them.
            let rows: Vec<(String, u32, String)> =
                conn.query("SHOW WARNINGS LIMIT 50").await.map_err(|e| mysql_error(display, "SHOW WARNINGS", e))?;
            for (_level, _code, message) in rows {
                let row_no = message.rsplit("at row ").next().and_then(|n| n.trim().parse::<usize>().ok());
                let row = row_no.and_then(|r| kept.get(r.saturating_sub(1))).cloned().unwrap_or_default();
                let col = spec.columns.iter().position(|c| message.contains(&format!("'{}'", c.name))).unwrap_or(usize::MAX);
                super::postgres::reject(spec, policy, row, col, format!("MySQL changed or refused the value: {message}"))?;
            }
        }
        written += kept.len() as u64;
        policy.counters.add(kept.len() as u64, len);
        progress.inc(n);
    }
    Ok(written)
}
