//! Packed rows (`barge-rows/1` blocks) into PostgreSQL as binary COPY,
//! transcoded value by value ([`crate::codec::pgbinary`]) without building
//! a [`crate::model::Value`]. Used by an unpack when the target's column
//! types are the packed ones: no value can then be refused by the row
//! policy, so the rows go to the server as they are, and the server's own
//! checks (encoding, lengths, constraints) still apply.

use std::sync::Arc;

use bytes::Bytes;
use futures::{pin_mut, SinkExt};
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::Client;

use crate::codec::pgbinary::{self, Field};
use crate::db::postgres::query_error;
use crate::error::{Error, Result};
use crate::model::ColumnType;
use crate::pack::rows::{BlockReader, Packed, RawBlock};
use crate::progress::Task;
use crate::transfer::{Counters, BATCH_BYTES};

/// How a table's packed rows become COPY tuples.
#[derive(Debug, Clone)]
pub struct PackedCopy {
    /// Values in each packed row.
    pub width: usize,
    /// For each written column, its packed column and its encoder.
    pub columns: Vec<(usize, Field)>,
}

impl PackedCopy {
    /// The plan for writing packed columns `take` (of `width`), typed
    /// `types`, or `None` when a type has no binary encoder.
    pub fn new(width: usize, take: &[usize], types: &[&ColumnType]) -> Option<PackedCopy> {
        let columns = take.iter().zip(types).map(|(&i, ty)| Field::of(ty).map(|f| (i, f))).collect::<Option<Vec<_>>>()?;
        (take.iter().all(|&i| i < width) && !columns.is_empty()).then_some(PackedCopy { width, columns })
    }

    /// Appends a block's rows as COPY tuples.
    pub fn transcode(&self, block: &RawBlock, out: &mut Vec<u8>) -> std::result::Result<(), (u64, usize, String)> {
        let mut r = BlockReader::new(&block.body);
        let mut row: Vec<Packed<'_>> = Vec::with_capacity(self.width);
        let fields = i16::try_from(self.columns.len()).map_err(|_| (0, 0, "more than 32767 columns".to_string()))?;
        for n in 0..block.rows as u64 {
            let at = block.first_row + n + 1;
            row.clear();
            for c in 0..self.width {
                let v = r.next_value().map_err(|e| (at, c, e))?;
                r.skip_members(&v).map_err(|e| (at, c, e))?;
                row.push(v);
            }
            out.extend_from_slice(&fields.to_be_bytes());
            for (out_col, &(i, f)) in self.columns.iter().enumerate() {
                pgbinary::put_field(&row[i], f, out).map_err(|e| (at, out_col, e))?;
            }
        }
        if !r.at_end() {
            return Err((block.first_row + block.rows as u64, 0, "the block has bytes after its last row".into()));
        }
        Ok(())
    }
}

/// Writes blocks taken from `rx` into `table` (`columns` quoted) with one
/// binary `COPY ... FROM STDIN`, until `rx` ends; several writers may take
/// from the same `rx`. `freeze` writes the rows already frozen (`COPY
/// FREEZE`: the table must have been created or truncated in the
/// caller's open transaction). Returns rows written.
#[allow(clippy::too_many_arguments)]
pub async fn write(client: &Client, display: &str, table: &str, columns: &[String], plan: &PackedCopy, freeze: bool, rx: &Mutex<mpsc::Receiver<RawBlock>>, counters: &Counters, progress: &Arc<dyn Task>) -> Result<u64> {
    let copy = format!("COPY {table} ({}) FROM STDIN (FORMAT binary{})", columns.join(", "), if freeze { ", FREEZE" } else { "" });
    let sink = client.copy_in::<_, Bytes>(copy.as_str()).await.map_err(|e| query_error(display, &copy, e))?;
    pin_mut!(sink);
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 65536);
    buf.extend_from_slice(pgbinary::HEADER);
    loop {
        // The lock is held only while waiting for the next block.
        let Some(block) = rx.lock().await.recv().await else { break };
        plan.transcode(&block, &mut buf).map_err(|(row, col, message)| Error::Table {
            table: table.to_string(),
            row: Some(format!("#{row}")),
            message: format!("column {}: {message}", columns.get(col).map_or("?", |c| c.as_str())),
            hint: Some("the pack's value does not fit its own column type: check the pack with `barge verify --deep`".into()),
        })?;
        let n = block.rows as u64;
        if buf.len() >= BATCH_BYTES {
            let len = buf.len() as u64;
            sink.send(Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(BATCH_BYTES + 65536)))).await.map_err(|e| query_error(display, &copy, e))?;
            counters.add(0, len);
        }
        counters.add(n, 0);
        progress.inc(n);
    }
    buf.extend_from_slice(pgbinary::TRAILER);
    let len = buf.len() as u64;
    sink.send(Bytes::from(buf)).await.map_err(|e| query_error(display, &copy, e))?;
    counters.add(0, len);
    sink.as_mut().finish().await.map_err(|e| query_error(display, &copy, e))
}
