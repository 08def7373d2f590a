//! Kinesis Data Streams as a [`Destination`]: DMS's message shape, sent
//! with PutRecords (at most 500 records and 5 MiB a call), acknowledged
//! before `apply` returns.
//!
//! Order per partition key survives retries: a call carries at most one
//! record (or aggregate) per key, and a record that failed inside a
//! successful response (throttling) is sent again before any later record
//! of its key. Calls with disjoint keys go out together. Failed records
//! are retried with exponential backoff and jitter until `--retry-timeout`.
//!
//! With `--aggregate`, records of one shard are packed into KPL aggregates
//! ([`super::kpl`]); an aggregate is one Kinesis record, so the records in
//! it keep their order whatever happens to it.

pub mod api;
pub mod kpl;

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;

use super::envelope::{self, Names};
use super::kinesis_api::{ApiError, KinesisApi};
use kpl::Aggregator;
use super::record::{Record, RecordIds};
use super::shared::calls;
use super::{EnvelopeKind, Layouts, PartitionKey, Scope, SinkOptions, SinkStats, SinkTable};
use super::BoxFuture;
use crate::cdc::{ChangeBatch, Tables};
use crate::sink::Destination;
use crate::endpoint::StreamEndpoint;
use crate::error::{Error, Result};
use crate::model::Position;

/// Kinesis's limits.
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 << 20;
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Calls in flight at once (their keys never overlap).
const CALLS_IN_FLIGHT: usize = 4;

/// One Kinesis record to send.
struct Entry {
    key: String,
    data: Vec<u8>,
    /// The user partition keys it carries (more than one for an aggregate):
    /// what ordering is kept for.
    order_keys: Vec<String>,
    /// User records inside (1 unless aggregated).
    count: u64,
}

impl Entry {
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

pub struct KinesisSink {
    api: KinesisApi,
    stream: String,
    opts: SinkOptions,
    stats: Arc<SinkStats>,
    layouts: Layouts,
    names: std::collections::HashMap<crate::model::QualifiedName, Arc<Names>>,
    ids: RecordIds,
    /// Open shards' hash ranges (for aggregation).
    shards: Vec<(u128, u128)>,
    committed: Option<Position>,
}

fn api_error(display: &str, stream: &str, e: ApiError) -> Error {
    let hint = match e.kind.as_str() {
        "ResourceNotFoundException" => Some(format!("create the stream first, e.g. aws kinesis create-stream --stream-name {stream} --shard-count 1")),
        "UnrecognizedClientException" | "InvalidSignatureException" | "AccessDeniedException" => Some("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the region".into()),
        _ => None,
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("{}: {}", e.kind, e.message), hint }
}

/// Kinesis takes partition keys of at most 256 characters; a longer one
/// is replaced by its hex MD5 (still one value per key, so order holds).
fn fit_partition_key(k: String) -> String {
    if k.chars().count() <= 256 && !k.is_empty() {
        k
    } else if k.is_empty() {
        "-".into()
    } else {
        format!("{:032x}", kpl::hash_key(&k))
    }
}

/// The next PutRecords calls from `pending`: at most [`CALLS_IN_FLIGHT`]
/// calls of at most 500 records and 5 MiB each, at most one entry per key
/// in flight ([`calls::plan`]).
fn plan_calls(pending: &VecDeque<Entry>) -> Vec<Vec<usize>> {
    calls::plan(pending, |e| &e.order_keys, Entry::size, calls::Limits { entries: MAX_RECORDS_PER_CALL, bytes: MAX_BYTES_PER_CALL, calls: CALLS_IN_FLIGHT })
}

impl KinesisSink {
    pub async fn open(e: &StreamEndpoint, opts: SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Result<KinesisSink> {
        if e.options.contains_key("deaggregate") {
            return Err(Error::usage(format!("{}: ?deaggregate= applies to reading a stream; to write KPL aggregates, give --aggregate", e.display)));
        }
        let api = KinesisApi::new(e)?;
        let stream = e.stream.clone();
        // One call up front, so a wrong name or credential fails before any row is read.
        let shards = api.open_shards(&stream).await.map_err(|err| api_error(&api.display, &stream, err))?;
        Ok(KinesisSink { api, stream, opts, stats, layouts: Layouts::default(), names: Default::default(), ids: RecordIds::new(scope), shards, committed: None })
    }

    /// The index of the shard a partition key maps to.
    fn shard_of(&self, key: &str) -> usize {
        let h = kpl::hash_key(key);
        self.shards.iter().position(|(a, b)| *a <= h && h <= *b).unwrap_or(0)
    }

    fn entries(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<Vec<Entry>> {
        let now = chrono::Utc::now();
        let mut out = Vec::with_capacity(batch.changes.len());
        for change in super::record::split_key_changes(tables, &batch.changes).iter() {
            let table: Arc<SinkTable> = self.layouts.get(tables, &change.table, &self.opts.default_schema)?;
            let names = self.names.entry(change.table.clone()).or_insert_with(|| Arc::new(Names::of(&table))).clone();
            let rec = Record::new(&table, change, self.ids.next(&table, change));
            if self.opts.cdc_inserts_only && !matches!(rec.kind, super::record::RecordKind::Insert | super::record::RecordKind::Load) {
                SinkStats::add(&self.stats.skipped, 1);
                continue;
            }
            // Kinesis writes DMS's envelope, or records as they came.
            let kind = if self.opts.envelope == EnvelopeKind::Raw { EnvelopeKind::Raw } else { EnvelopeKind::Dms };
            let data = envelope::body(kind, &table, &names, &rec, self.opts.partition_key, now)
                .map_err(|m| Error::Table { table: table.display(), row: Some(rec.key_text(&table)), message: m, hint: None })?;
            let key = fit_partition_key(match (kind, self.opts.partition_key) {
                (EnvelopeKind::Raw, _) => envelope::raw_key(&table, &rec).unwrap_or_else(|| rec.partition_key(&table)),
                (_, PartitionKey::PrimaryKey) => rec.partition_key(&table),
                (_, PartitionKey::SchemaTable) => table.display(),
            });
            if data.len() + key.len() > MAX_RECORD_BYTES {
                return Err(Error::Table {
                    table: table.display(),
                    row: Some(rec.key_text(&table)),
                    message: format!("the record is {} bytes; Kinesis takes at most 1 MiB (1048576 bytes) per record, data and partition key together", data.len() + key.len()),
                    hint: Some("leave the large column out with a mapping rule (remove-column), or send this table to s3:// instead".into()),
                });
            }
            out.push(Entry { order_keys: vec![key.clone()], key, data, count: 1 });
        }
        if self.opts.aggregate {
            out = self.aggregate(out);
        }
        Ok(out)
    }

    /// Packs records into KPL aggregates, one open aggregate per shard; an
    /// aggregate is closed when full.
    fn aggregate(&self, records: Vec<Entry>) -> Vec<Entry> {
        let mut open: Vec<(Aggregator, Vec<String>)> = (0..self.shards.len().max(1)).map(|_| (Aggregator::default(), Vec::new())).collect();
        let mut out = Vec::new();
        let close = |slot: &mut (Aggregator, Vec<String>), out: &mut Vec<Entry>| {
            let (agg, keys) = std::mem::take(slot);
            if agg.is_empty() {
                return;
            }
            let count = agg.len() as u64;
            let (key, data) = agg.finish();
            out.push(Entry { key, data, order_keys: keys, count });
        };
        for r in records {
            let s = self.shard_of(&r.key);
            if !open[s].0.fits(&r.key, r.data.len()) {
                close(&mut open[s], &mut out);
            }
            let slot = &mut open[s];
            slot.0.add(&r.key, r.data);
            slot.1.push(r.key);
        }
        for slot in &mut open {
            close(slot, &mut out);
        }
        out
    }

    /// Sends every entry, in key order, retrying what a throttle refused.
    async fn send(&self, entries: Vec<Entry>) -> Result<()> {
        let mut pending: VecDeque<Entry> = entries.into();
        let mut rounds = calls::Rounds::new(self.opts.retry_timeout);
        while !pending.is_empty() {
            let calls = plan_calls(&pending);
            let requests = calls.iter().map(|c| {
                let records: Vec<serde_json::Value> = c
                    .iter()
                    .map(|&i| {
                        let e = &pending[i];
                        serde_json::json!({ "Data": base64::engine::general_purpose::STANDARD.encode(&e.data), "PartitionKey": e.key })
                    })
                    .collect();
                let body = serde_json::json!({ "StreamName": self.stream, "Records": records });
                async move { (c, self.api.call("PutRecords", &body).await) }
            });
            let results = futures::future::join_all(requests).await;
            let mut delivered: Vec<usize> = Vec::new();
            let mut throttled = false;
            for (call, result) in results {
                match result {
                    Ok(resp) => {
                        let answers = resp["Records"].as_array().cloned().unwrap_or_default();
                        if answers.len() != call.len() {
                            return Err(Error::Endpoint { endpoint: self.api.display.clone(), message: format!("PutRecords answered for {} records, {} were sent", answers.len(), call.len()), hint: None });
                        }
                        let mut failed = 0u64;
                        for (&i, a) in call.iter().zip(&answers) {
                            if a["ErrorCode"].is_string() {
                                failed += pending[i].count;
                            } else {
                                delivered.push(i);
                            }
                        }
                        if failed > 0 {
                            throttled = true;
                            SinkStats::add(&self.stats.throttled_calls, 1);
                            SinkStats::add(&self.stats.retried_records, failed);
                        }
                    }
                    Err(e) if e.retriable => {
                        throttled = true;
                        SinkStats::add(&self.stats.throttled_calls, 1);
                        SinkStats::add(&self.stats.retried_records, call.iter().map(|&i| pending[i].count).sum());
                        tracing::debug!("{}: {} ({}); retrying", self.api.display, e.kind, e.message);
                    }
                    Err(e) => return Err(api_error(&self.api.display, &self.stream, e)),
                }
            }
            let progressed = !delivered.is_empty();
            let records: u64 = delivered.iter().map(|&i| pending[i].count).sum();
            SinkStats::add(&self.stats.records, records);
            delivered.sort_unstable();
            for i in delivered.into_iter().rev() {
                pending.remove(i);
            }
            if throttled && !pending.is_empty() {
                if !rounds.wait(progressed).await {
                    return Err(Error::Endpoint {
                        endpoint: self.api.display.clone(),
                        message: format!("{} records still refused after retrying for {} s", pending.len(), self.opts.retry_timeout.as_secs()),
                        hint: Some("the stream is over its shards' limits: add shards, lower --parallel, or raise --retry-timeout".into()),
                    });
                }
            } else {
                rounds.reset();
            }
        }
        Ok(())
    }
}

impl Destination for KinesisSink {
    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities { ordered: true, ..super::Capabilities::NONE }
    }


    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let entries = self.entries(tables, batch)?;
            self.send(entries).await?;
            if batch.position.is_some() {
                self.committed = batch.position.clone();
            }
            Ok(())
        })
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        Box::pin(async move { Ok(self.committed.clone()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, bytes: usize) -> Entry {
        Entry { key: key.into(), data: vec![b'x'; bytes], order_keys: vec![key.into()], count: 1 }
    }

    #[test]
    fn calls_keep_the_limits_and_one_entry_per_key() {
        // 1200 distinct keys: calls of 500, 500, 200.
        let pending: VecDeque<Entry> = (0..1200).map(|i| entry(&i.to_string(), 10)).collect();
        let calls = plan_calls(&pending);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [500, 500, 200]);
        // 5 MiB: records of 700 000 bytes go seven to a call.
        let pending: VecDeque<Entry> = (0..10).map(|i| entry(&i.to_string(), 700_000)).collect();
        let calls = plan_calls(&pending);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [7, 3]);
        for c in &calls {
            assert!(c.iter().map(|&i| pending[i].size()).sum::<usize>() <= MAX_BYTES_PER_CALL);
        }
        // The same key twice: the second waits for the first, and so does
        // everything after it with that key; other keys go ahead.
        let pending: VecDeque<Entry> = ["a", "b", "a", "c", "a", "b"].iter().map(|k| entry(k, 1)).collect();
        assert_eq!(plan_calls(&pending), vec![vec![0, 1, 3]]);
        // At most CALLS_IN_FLIGHT calls at once.
        let pending: VecDeque<Entry> = (0..5000).map(|i| entry(&i.to_string(), 1)).collect();
        assert_eq!(plan_calls(&pending).len(), CALLS_IN_FLIGHT);
    }

    #[test]
    fn long_keys_are_hashed_not_cut() {
        let long = "x".repeat(300);
        let k = fit_partition_key(long.clone());
        assert_eq!(k.len(), 32);
        assert_eq!(k, fit_partition_key(long));
        assert_eq!(fit_partition_key("42".into()), "42");
    }
}
