//! A record source as a change stream: each record an insert into the
//! records' table, each batch one transaction at the source's position,
//! so the change capture loop (`task::cdc`) lands records on any target
//! the way it lands a database's changes, and tells the source only what
//! the destination made durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shape::{RecordFormat, RecordShape};
use super::{OpenOptions, RecordSource, StartAt};
use crate::cdc::Tables;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Change, Op, Position, QualifiedName, Value};
use crate::sink::BoxFuture;
use crate::source::changes::{ChangeSource, SourceEvent, Transaction};
use crate::transfer::{OnError, Rejected, RowPolicy};

/// What a run of a record source needs besides its URL; kept with the
/// task's capture so every reconnect reads records the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordCapture {
    pub format: RecordFormat,
    pub start: StartAt,
    /// The table the records land in (its source name in the run's tables).
    pub table: QualifiedName,
    /// The table is barge's default layout (else the user's `--schema`).
    pub default_layout: bool,
    /// Wait for new records (else stop once every shard is read).
    pub follow: bool,
}

pub struct RecordChanges {
    inner: Box<dyn RecordSource>,
    shape: RecordShape,
    table: QualifiedName,
    policy: RowPolicy,
    /// Every shard's offset so far: each transaction's position holds all
    /// of them, so positions only ever move forward in every shard.
    offsets: BTreeMap<String, String>,
}

/// Opens `ep`'s records as changes, from `from` (the destination's saved
/// position, or the start).
pub async fn open(ep: &Endpoint, capture: &RecordCapture, from: &Position, tables: Arc<Tables>, policy: RowPolicy, state_dir: &std::path::Path) -> Result<Box<dyn ChangeSource>> {
    let info = tables.get(&capture.table).ok_or_else(|| Error::other(format!("the records' table {} is not among the run's tables", capture.table)))?;
    let shape = if capture.default_layout { RecordShape::default_layout(&capture.table.name, capture.format)? } else { RecordShape::for_table_checked(info.source.clone(), capture.format)? };
    let offsets = super::saved_offsets(from)?;
    let opts = OpenOptions { from: offsets.clone(), start: capture.start.clone(), state_dir: state_dir.to_path_buf(), follow: capture.follow, format: capture.format };
    let inner = super::open(ep, opts).await?;
    Ok(Box::new(RecordChanges { inner, shape, table: capture.table.clone(), policy, offsets }))
}

impl RecordChanges {
    /// The batch's records as inserts; a record that cannot become a row
    /// stops the run, or with `--on-error log` goes to the rejects file.
    fn transaction(&mut self, batch: super::RecordBatch) -> Result<Transaction> {
        let mut changes = Vec::with_capacity(batch.records.len());
        let mut bytes = 0;
        let mut newest = None;
        for r in &batch.records {
            // What the change holds in memory (the change capture loop's
            // read-ahead limit counts these bytes): its text, the change
            // and its values, and below, its copy of the position; each
            // allocation ~32 bytes more. Small records cost several times
            // their payload (a 140-byte one about 1.5 KB).
            bytes += r.data.len() + r.shard.len() + r.offset.len() + r.stream.len() + r.key.as_ref().map_or(0, Vec::len);
            newest = newest.max(r.time);
            match self.shape.row(r) {
                Ok(row) => {
                    bytes += std::mem::size_of::<Change>() + row.len() * (std::mem::size_of::<Value>() + 32);
                    changes.push(Change { table: self.table.clone(), op: Op::Insert { row }, txid: None, commit_time: r.time, position: Position::Snapshot })
                }
                Err(why) => self.reject(r, why)?,
            }
        }
        for (shard, offset) in batch.position {
            self.offsets.insert(shard, offset);
        }
        // A position: a map node per 11 offsets, two strings each.
        let position_bytes = self.offsets.len().div_ceil(11) * 560 + self.offsets.iter().map(|(s, o)| s.len() + o.len() + 64).sum::<usize>();
        bytes += changes.len() * position_bytes;
        let position = Position::Shards { offsets: self.offsets.clone() };
        for c in &mut changes {
            c.position = position.clone();
        }
        Ok(Transaction { changes, position, commit_time: newest, bytes, partial: false })
    }

    fn reject(&self, r: &super::Record, why: String) -> Result<()> {
        let place = self.inner.describe(r);
        if self.policy.on_error != OnError::Log {
            return Err(Error::other(format!("record at {place}: {why}"))
                .with_hint(format!("fix the record or --schema; or rerun with --on-error log to write such records to {} and go on", self.policy.rejects.path.display())));
        }
        let data = match std::str::from_utf8(&r.data) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::Bytes(r.data.clone()),
        };
        let rejected = Rejected { table: self.table.to_string(), key: place, column: None, reason: why, row: vec![data] };
        self.policy.rejects.write(&rejected).map_err(|e| Error::other(format!("writing {}: {e}", self.policy.rejects.path.display())))?;
        self.policy.counters.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl ChangeSource for RecordChanges {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            let Some(batch) = self.inner.next().await? else { return Ok(None) };
            if batch.records.is_empty() {
                // Nothing arrived: say where the stream stands, so the
                // loop ticks its buffers and status.
                for (shard, offset) in batch.position {
                    self.offsets.insert(shard, offset);
                }
                return Ok(Some(SourceEvent::Idle { position: Position::Shards { offsets: self.offsets.clone() }, lag_bytes: None }));
            }
            let txn = self.transaction(batch)?;
            if txn.changes.is_empty() {
                // Every record was rejected (and logged): move on.
                return Ok(Some(SourceEvent::Idle { position: txn.position, lag_bytes: None }));
            }
            Ok(Some(SourceEvent::Transaction(txn)))
        })
    }

    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match position {
                Position::Shards { offsets } => self.inner.acknowledge(offsets).await,
                _ => Ok(()),
            }
        })
    }

    // `next` only adds work after the inner source's `next` returned.
    fn next_is_cancel_safe(&self) -> bool {
        self.inner.next_is_cancel_safe()
    }
}
