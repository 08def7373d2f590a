//! A record source as a change stream, so the change capture loop
//! (`task::cdc`) lands records on any target the way it lands a
//! database's changes, and tells the source only what the destination
//! made durable. Each batch is one transaction at the source's position.
//!
//! What a record becomes:
//! - a row of the one table (the default layout, or `--schema`): an insert;
//! - a row with an `Op` column (barge's and DMS's CDC files: I, U, D): an
//!   insert, an update or a delete by key, of the table its file's folder
//!   names when `--schema` has several;
//! - a change envelope (`--record-format dms|debezium`): the change it
//!   states, of the table it names.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::envelope::{self, Kind};
use super::shape::{Absent, Fields, RecordFormat, RecordShape};
use super::{OpenOptions, Record, RecordSource, StartAt};
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
    /// The table the records land in (its source name in the run's tables);
    /// with several (`--schema` defining more than one), the first.
    pub table: QualifiedName,
    /// The table is barge's default layout (else the user's `--schema`).
    pub default_layout: bool,
    /// Wait for new records (else stop once every shard is read).
    pub follow: bool,
    /// A shared run's worker reads one shard it leased (never stored).
    #[serde(skip)]
    pub lease: Option<super::leased::ShardLease>,
}

/// A table records land in, and how they are read into it.
struct Landing {
    name: QualifiedName,
    shape: RecordShape,
    /// Its key columns, by index (empty: no key; a delete names the whole row).
    key: Vec<usize>,
    /// Whether a field `Op` is the row's change code (not a column).
    op_field: bool,
}

pub struct RecordChanges {
    inner: Box<dyn RecordSource>,
    landings: Vec<Landing>,
    format: RecordFormat,
    policy: RowPolicy,
    /// Every shard's offset so far: each transaction's position holds all
    /// of them, so positions only ever move forward in every shard.
    offsets: BTreeMap<String, String>,
}

/// Opens `ep`'s records as changes, from `from` (the destination's saved
/// position, or the start).
pub async fn open(ep: &Endpoint, capture: &RecordCapture, from: &Position, tables: Arc<Tables>, policy: RowPolicy, state_dir: &std::path::Path) -> Result<Box<dyn ChangeSource>> {
    let mut landings = Vec::new();
    if capture.default_layout {
        let info = tables.get(&capture.table).ok_or_else(|| Error::other(format!("the records' table {} is not among the run's tables", capture.table)))?;
        let shape = RecordShape::default_layout(&capture.table.name, capture.format)?;
        landings.push(Landing { name: capture.table.clone(), shape, key: info.key.clone(), op_field: false });
    } else {
        // The first table first: a single-table run routes everything there.
        let mut names: Vec<&QualifiedName> = tables.keys().collect();
        names.sort_by_key(|n| **n != capture.table);
        for name in names {
            let info = &tables[name];
            let shape = RecordShape::for_table_checked(info.source.clone(), capture.format)?;
            let op_field = !info.source.columns.iter().any(|c| c.name.eq_ignore_ascii_case("op"));
            landings.push(Landing { name: name.clone(), shape, key: info.key.clone(), op_field });
        }
    }
    let offsets = super::saved_offsets(from)?;
    let opts = OpenOptions { from: offsets.clone(), start: capture.start.clone(), state_dir: state_dir.to_path_buf(), follow: capture.follow, format: capture.format, changes: !capture.default_layout };
    let inner = match &capture.lease {
        Some(lease) => super::leased::open(ep, lease, OpenOptions { start: lease.start.clone(), ..opts }).await?,
        None => super::open(ep, opts).await?,
    };
    Ok(Box::new(RecordChanges { inner, landings, format: capture.format, policy, offsets }))
}

/// The values of `l`'s key columns in `row`, or why they are missing.
fn key_values(l: &Landing, row: &[Option<Value>]) -> std::result::Result<Vec<Value>, String> {
    if l.key.is_empty() {
        return Ok(row.iter().map(|v| v.clone().unwrap_or(Value::Null)).collect());
    }
    l.key
        .iter()
        .map(|&i| match &row[i] {
            Some(v) if *v != Value::Null => Ok(v.clone()),
            _ => Err(format!("the change has no value for key column {} of {}", l.shape.table.columns[i].name, l.name)),
        })
        .collect()
}

/// A row image of an envelope (absent: no fields).
fn image(m: Option<std::collections::HashMap<String, &serde_json::value::RawValue>>) -> Fields<'_> {
    Fields::Json(m.unwrap_or_default())
}

fn full(row: Vec<Option<Value>>) -> Vec<Value> {
    row.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()
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
            // and its values (and below, once, the position its
            // transaction shares); each allocation ~32 bytes more.
            bytes += r.data.len() + r.shard.len() + r.offset.len() + r.stream.len() + r.key.as_ref().map_or(0, Vec::len);
            newest = newest.max(r.time);
            match self.change(r) {
                Ok(Some(change)) => {
                    let values = match &change.op {
                        Op::Insert { row } => row.len(),
                        Op::Update { before, after } => after.len() + before.as_ref().map_or(0, Vec::len),
                        Op::Delete { key } => key.len(),
                        Op::Truncate => 0,
                    };
                    bytes += std::mem::size_of::<Change>() + values * (std::mem::size_of::<Value>() + 32);
                    changes.push(change)
                }
                // Nothing to apply (a Debezium tombstone).
                Ok(None) => {}
                Err(why) => self.reject(r, why)?,
            }
        }
        for (shard, offset) in batch.position {
            self.offsets.insert(shard, offset);
        }
        // The position, once for the transaction (its changes share it): a
        // map node per 11 offsets, two strings each.
        bytes += self.offsets.len().div_ceil(11) * 560 + self.offsets.iter().map(|(s, o)| s.len() + o.len() + 64).sum::<usize>();
        let position = Position::Shards { offsets: std::sync::Arc::new(self.offsets.clone()) };
        for c in &mut changes {
            c.position = position.clone();
        }
        Ok(Transaction { changes, position, commit_time: newest, bytes, partial: false })
    }

    /// The change record `r` states, or why it cannot be applied.
    fn change(&self, r: &Record) -> std::result::Result<Option<Change>, String> {
        if self.format.is_envelope() {
            return self.envelope_change(r);
        }
        let l = self.landing_of(r)?;
        let fields = l.shape.fields(&r.data)?;
        let code = if l.op_field { fields.text("Op") } else { None };
        let op = match code.as_deref() {
            None | Some("I") => Op::Insert { row: full(l.shape.fill(r, &fields, Absent::Null)?) },
            Some("U") => {
                let after = l.shape.fill(r, &fields, Absent::Unknown)?;
                key_values(l, &after)?;
                Op::Update { before: None, after }
            }
            Some("D") => Op::Delete { key: key_values(l, &l.shape.fill(r, &fields, Absent::Unknown)?)? },
            Some(other) => return Err(format!("Op is {other}: a CDC file's row is I (insert), U (update) or D (delete)")),
        };
        Ok(Some(Change { table: l.name.clone(), op, txid: None, commit_time: r.time, position: Position::Snapshot }))
    }

    fn envelope_change(&self, r: &Record) -> std::result::Result<Option<Change>, String> {
        let env = match self.format {
            RecordFormat::Debezium => match envelope::debezium(&r.data)? {
                Some(e) => e,
                None => return Ok(None),
            },
            _ => envelope::dms(&r.data)?,
        };
        let l = self.landing(env.schema.as_deref(), &env.table)?;
        let op = match env.kind {
            Kind::Truncate => Op::Truncate,
            Kind::Insert => Op::Insert { row: full(l.shape.fill(r, &image(env.after), Absent::Null)?) },
            Kind::Update => {
                let after = l.shape.fill(r, &image(env.after), Absent::Unknown)?;
                let before = match env.before {
                    Some(b) => Some(full(l.shape.fill(r, &image(Some(b)), Absent::Unknown)?)),
                    None => None,
                };
                if before.is_none() {
                    key_values(l, &after)?;
                }
                Op::Update { before, after }
            }
            Kind::Delete => Op::Delete { key: key_values(l, &l.shape.fill(r, &image(env.after), Absent::Unknown)?)? },
        };
        Ok(Some(Change { table: l.name.clone(), op, txid: None, commit_time: env.time.or(r.time), position: Position::Snapshot }))
    }

    /// The table a row record lands in: the only one, or the one its
    /// source's layout names (files under `schema/table/` folders).
    fn landing_of(&self, r: &Record) -> std::result::Result<&Landing, String> {
        if self.landings.len() == 1 {
            // A file barge or DMS wrote for another table must not fill
            // this one.
            if let Some((schema, table)) = self.inner.table_of(r).filter(|_| self.inner.names_its_table(r)) {
                return self.landing(schema.as_deref(), &table).map_err(|e| format!("{e}, or point the URL at the folder of the table --schema defines"));
            }
            return Ok(&self.landings[0]);
        }
        match self.inner.table_of(r) {
            Some((schema, table)) => self.landing(schema.as_deref(), &table),
            None => Err(format!("--schema defines {} tables and this record does not say which it belongs to (files say it by their folders, schema/table/)", self.landings.len())),
        }
    }

    /// The table named `schema.table`: by both names, else by the table
    /// name alone when that is unambiguous.
    fn landing(&self, schema: Option<&str>, table: &str) -> std::result::Result<&Landing, String> {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if let Some(s) = schema {
            if let Some(l) = self.landings.iter().find(|l| same(&l.name.name, table) && l.name.schema.as_deref().is_some_and(|ls| same(ls, s))) {
                return Ok(l);
            }
        }
        let by_name: Vec<&Landing> = self.landings.iter().filter(|l| same(&l.name.name, table)).collect();
        match by_name.as_slice() {
            [one] => Ok(one),
            [] => {
                let known: Vec<String> = self.landings.iter().map(|l| l.name.to_string()).collect();
                let full = schema.map(|s| format!("{s}.{table}")).unwrap_or_else(|| table.to_string());
                Err(format!("the change is to table {full}, which --schema does not define (it has {}); add its CREATE TABLE to the file", known.join(", ")))
            }
            many => {
                let names: Vec<String> = many.iter().map(|l| l.name.to_string()).collect();
                Err(format!("the change is to table {}{table}, and --schema has {}: name the schema in the CREATE TABLE", schema.map(|s| format!("{s}.")).unwrap_or_default(), names.join(" and ")))
            }
        }
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
        let table = if self.landings.len() == 1 { self.landings[0].name.to_string() } else { String::new() };
        let rejected = Rejected { table, key: place, column: None, reason: why, row: vec![data] };
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
                return Ok(Some(SourceEvent::Idle { position: Position::Shards { offsets: std::sync::Arc::new(self.offsets.clone()) }, lag_bytes: None }));
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
