//! The SQS destination: records as messages, payloads over the queue's
//! maximum set aside in S3, SendMessageBatch calls sent and retried.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value as Json};

use super::api::{self, api_error, SQS};
use super::batch::{self, Message};
use super::pointer::{self, S3Pointer};
use crate::cdc::{ChangeBatch, Tables};
use crate::endpoint::{Endpoint, SinkEndpoint};
use crate::error::{Error, Result};
use crate::model::{Position, QualifiedName, Value};
use crate::sink::envelope::{self, Names};
use crate::sink::record::{Record, RecordIds, RecordKind};
use crate::sink::shared::aws_json::AwsJson;
use crate::sink::shared::calls;
use crate::sink::store::ObjectTarget;
use crate::sink::{BoxFuture, Capabilities, Destination, Layouts, PartitionKey, Scope, SinkOptions, SinkStats, SinkTable};

/// SendMessageBatch calls in flight at once (on a FIFO queue, their
/// message groups never overlap).
const CALLS_IN_FLIGHT: usize = 8;
/// Large payloads uploaded to S3 at once.
const UPLOADS_IN_FLIGHT: usize = 8;

/// Where payloads over the queue's maximum go.
struct Payloads {
    store: ObjectTarget,
    bucket: String,
}

pub struct SqsSink {
    api: AwsJson,
    queue_url: String,
    fifo: bool,
    /// The queue's `MaximumMessageSize`.
    max_message: usize,
    payloads: Option<Payloads>,
    opts: SinkOptions,
    stats: Arc<SinkStats>,
    layouts: Layouts,
    names: HashMap<QualifiedName, Arc<Names>>,
    ids: RecordIds,
    committed: Option<Position>,
}

/// A message whose payload goes to S3 first: its index and object.
struct Offload {
    index: usize,
    path: object_store::path::Path,
}

impl SqsSink {
    pub async fn open(e: &SinkEndpoint, opts: SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Result<SqsSink> {
        let queue = api::queue_name(&e.location, &e.display)?;
        let api = AwsJson::new(&SQS, &e.options, &e.display)?;
        // Before any row is read: a wrong name, region or credential fails here.
        let queue_url = api::queue_url(&api, &queue).await?;
        let attrs = api::queue_attributes(&api, &queue_url, &["MaximumMessageSize", "FifoQueue"]).await?;
        let number = |v: &Json| v.as_str().and_then(|s| s.parse::<usize>().ok()).or_else(|| v.as_u64().map(|n| n as usize));
        let max_message = number(&attrs["MaximumMessageSize"])
            .ok_or_else(|| Error::Endpoint { endpoint: e.display.clone(), message: format!("GetQueueAttributes gave no MaximumMessageSize for {queue}"), hint: None })?;
        let fifo = attrs["FifoQueue"].as_str() == Some("true") || queue.ends_with(".fifo");
        if opts.group_by.is_some() && !fifo {
            return Err(Error::usage(format!("--group-by names a FIFO queue's message group; {queue} is a standard queue, which keeps no order"))
                .with_hint("send to a FIFO queue (its name ends in .fifo), or leave --group-by out"));
        }
        let payloads = match &opts.payload_bucket {
            Some(url) => Some(open_payloads(url, e).await?),
            None => None,
        };
        Ok(SqsSink { api, queue_url, fifo, max_message, payloads, opts, stats, layouts: Layouts::default(), names: HashMap::new(), ids: RecordIds::new(scope), committed: None })
    }

    /// The messages of `batch`, in order, and those of them whose payload
    /// goes to S3.
    fn messages(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<(Vec<Message>, Vec<Offload>)> {
        let now = chrono::Utc::now();
        let mut out = Vec::with_capacity(batch.changes.len());
        let mut offloads = Vec::new();
        for change in &batch.changes {
            let table: Arc<SinkTable> = self.layouts.get(tables, &change.table, &self.opts.default_schema)?;
            let names = self.names.entry(change.table.clone()).or_insert_with(|| Arc::new(Names::of(&table))).clone();
            let rec = Record::new(&table, change, self.ids.next(&table, change));
            if self.opts.cdc_inserts_only && !matches!(rec.kind, RecordKind::Insert | RecordKind::Load) {
                SinkStats::add(&self.stats.skipped, 1);
                continue;
            }
            let row = rec.key_text(&table);
            let body = envelope::body(self.opts.envelope, &table, &names, &rec, self.opts.partition_key, now)
                .map_err(|m| Error::Table { table: table.display(), row: Some(row.clone()), message: m, hint: None })?;
            let body = batch::sqs_safe(String::from_utf8(body).map_err(|e| Error::other(format!("table {}: a message body is not UTF-8: {e}", table.display())))?);
            let (group, dedup) = match self.fifo {
                true => (Some(self.group(&table, &rec)?), Some(rec.id.clone())),
                false => (None, None),
            };
            let attributes = vec![("barge-table", "String", table.display()), ("barge-operation", "String", rec.kind.dms_operation().to_string()), ("barge-record-id", "String", rec.id.clone())];
            let m = Message { body, attributes, group, dedup, table: table.display(), row };
            let size = m.size();
            if size > self.max_message {
                let Some(p) = &self.payloads else {
                    return Err(Error::Table {
                        table: m.table,
                        row: Some(m.row),
                        message: format!("the message is {size} bytes; the queue takes at most {} (its MaximumMessageSize)", self.max_message),
                        hint: Some("give --payload-bucket s3://bucket/prefix to send large messages through S3 (the SQS Extended Client's pointer), or raise the queue's MaximumMessageSize (up to 1 MiB)".into()),
                    });
                };
                // Named by the record id: a rerun after a crash writes the
                // same object again rather than leaving a stray one.
                offloads.push(Offload { index: out.len(), path: p.store.path(false, &table, &format!("{}.json", rec.id)) });
            }
            out.push(m);
        }
        Ok((out, offloads))
    }

    /// The message group of `rec` on a FIFO queue.
    fn group(&self, table: &SinkTable, rec: &Record) -> Result<String> {
        // A truncate is about the whole table, not one row.
        if rec.kind == RecordKind::Truncate {
            return Ok(batch::group_id(&table.display()));
        }
        let raw = match &self.opts.group_by {
            Some(column) => {
                let i = table.columns.iter().position(|c| c.name == *column).ok_or_else(|| Error::Table {
                    table: table.display(),
                    row: None,
                    message: format!("--group-by {column}: the table has no column {column}"),
                    hint: Some(format!("its columns: {}; group by a column every table sent to this queue has, or send this table elsewhere (--tables)", table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))),
                })?;
                match rec.values.get(i).copied().flatten() {
                    Some(Value::Null) => "null".to_string(),
                    Some(v) => {
                        let mut s = String::new();
                        crate::codec::text::write_text(v, &mut s).map_err(|m| Error::Table { table: table.display(), row: Some(rec.key_text(table)), message: format!("--group-by {column}: {m}"), hint: None })?;
                        s
                    }
                    None => {
                        return Err(Error::Table {
                            table: table.display(),
                            row: Some(rec.key_text(table)),
                            message: format!("the source did not send {column} with this {}, so its message group (--group-by {column}) is unknown", rec.kind.dms_operation()),
                            hint: Some("have the source send whole rows (PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL), or group by a key column".into()),
                        })
                    }
                }
            }
            None => match self.opts.partition_key {
                // Records passed through keep their own key (else their shard).
                _ if self.opts.envelope == crate::sink::EnvelopeKind::Raw => envelope::raw_key(table, rec).unwrap_or_else(|| table.display()),
                PartitionKey::PrimaryKey if !table.key.is_empty() => format!("{}|{}", table.display(), rec.partition_key(table)),
                _ => table.display(),
            },
        };
        Ok(batch::group_id(&raw))
    }

    /// Puts the payloads of `offloads` in S3 and gives their messages the
    /// extended client's pointer instead.
    async fn offload(&self, messages: &mut [Message], offloads: Vec<Offload>) -> Result<()> {
        let Some(p) = &self.payloads else { return Ok(()) };
        let uploads = offloads.into_iter().map(|o| {
            let payload = messages[o.index].body.clone().into_bytes();
            async move {
                let size = payload.len();
                p.store.put(&o.path, payload).await?;
                Ok::<_, Error>((o.index, o.path, size))
            }
        });
        let done: Vec<(usize, object_store::path::Path, usize)> = futures::stream::iter(uploads).buffer_unordered(UPLOADS_IN_FLIGHT).try_collect().await?;
        for (index, path, size) in done {
            let m = &mut messages[index];
            m.body = S3Pointer { bucket: p.bucket.clone(), key: path.to_string() }.body();
            m.attributes.push((pointer::SIZE_ATTRIBUTE, "Number", size.to_string()));
            if m.size() > self.max_message {
                return Err(Error::Table {
                    table: m.table.clone(),
                    row: Some(m.row.clone()),
                    message: format!("even the pointer to its payload in S3 is {} bytes; the queue takes at most {}", m.size(), self.max_message),
                    hint: Some("raise the queue's MaximumMessageSize".into()),
                });
            }
            tracing::debug!("{}: table {}, row {}: {size} bytes sent through s3://{}/{path}", self.api.display, m.table, m.row, p.bucket);
        }
        Ok(())
    }

    /// Sends every message; what SQS refuses for a reason that may pass
    /// (throttling, its own errors) is sent again, in group order.
    async fn send(&self, messages: Vec<Message>) -> Result<()> {
        let mut pending: VecDeque<Message> = messages.into();
        let batch_bytes = batch::batch_bytes(self.max_message);
        let mut rounds = calls::Rounds::new(self.opts.retry_timeout);
        while !pending.is_empty() {
            let calls = batch::plan_calls(&pending, batch_bytes, CALLS_IN_FLIGHT);
            let requests = calls.iter().map(|call| {
                let entries: Vec<Json> = call.iter().enumerate().map(|(n, &i)| pending[i].entry(n)).collect();
                let body = json!({ "QueueUrl": self.queue_url, "Entries": entries });
                async move { (call, self.api.call("SendMessageBatch", &body).await) }
            });
            let results = futures::future::join_all(requests).await;
            let mut delivered: Vec<usize> = Vec::new();
            let mut refused = false;
            for (call, result) in results {
                match result {
                    Ok(resp) => {
                        let entry = |f: &Json| f["Id"].as_str().and_then(|id| id.parse::<usize>().ok()).and_then(|n| call.get(n).copied());
                        for f in resp["Failed"].as_array().into_iter().flatten() {
                            // The sender's fault will not pass by sending again.
                            if let (Some(i), Some(true)) = (entry(f), f["SenderFault"].as_bool()) {
                                let m = &pending[i];
                                return Err(Error::Table {
                                    table: m.table.clone(),
                                    row: Some(m.row.clone()),
                                    message: format!("SQS refused the message: {}: {}", f["Code"].as_str().unwrap_or("?"), f["Message"].as_str().unwrap_or("")),
                                    hint: None,
                                });
                            }
                        }
                        let accepted: HashSet<usize> = resp["Successful"].as_array().into_iter().flatten().filter_map(entry).collect();
                        let before = delivered.len();
                        delivered.extend(call.iter().copied().filter(|i| accepted.contains(i)));
                        let failed = (call.len() - (delivered.len() - before)) as u64;
                        if failed > 0 {
                            refused = true;
                            SinkStats::add(&self.stats.throttled_calls, 1);
                            SinkStats::add(&self.stats.retried_records, failed);
                        }
                    }
                    Err(e) if e.retriable => {
                        refused = true;
                        SinkStats::add(&self.stats.throttled_calls, 1);
                        SinkStats::add(&self.stats.retried_records, call.len() as u64);
                        tracing::debug!("{}: {} ({}); retrying", self.api.display, e.kind, e.message);
                    }
                    Err(e) => return Err(api_error(&self.api.display, "SendMessageBatch", e)),
                }
            }
            let progressed = !delivered.is_empty();
            SinkStats::add(&self.stats.records, delivered.len() as u64);
            delivered.sort_unstable();
            for i in delivered.into_iter().rev() {
                pending.remove(i);
            }
            if refused && !pending.is_empty() {
                if !rounds.wait(progressed).await {
                    return Err(Error::Endpoint {
                        endpoint: self.api.display.clone(),
                        message: format!("{} messages still refused after retrying for {} s", pending.len(), self.opts.retry_timeout.as_secs()),
                        hint: Some("the queue is throttling or failing: lower --parallel, or raise --retry-timeout".into()),
                    });
                }
            } else {
                rounds.reset();
            }
        }
        Ok(())
    }
}

/// The S3 bucket `--payload-bucket` names, checked (it exists, these
/// credentials may list it) before any row is read. The queue URL's
/// `region` and `endpoint` serve it too, unless its own URL names them
/// (the SQS source reads pointers the same way).
async fn open_payloads(url: &str, queue: &SinkEndpoint) -> Result<Payloads> {
    let mut s3 = match Endpoint::parse(url)? {
        Endpoint::S3(s) => s,
        other => {
            return Err(Error::usage(format!("--payload-bucket {other}: name an S3 bucket, e.g. s3://bucket/prefix; the extended client's consumers read large payloads from S3")));
        }
    };
    for k in ["region", "endpoint"] {
        if let Some(v) = queue.options.get(k) {
            s3.options.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    let bucket = s3.bucket.clone();
    let store = ObjectTarget::open(&Endpoint::S3(s3))?;
    store.probe().await?;
    Ok(Payloads { store, bucket })
}

impl Destination for SqsSink {
    fn capabilities(&self) -> Capabilities {
        Capabilities { ordered: self.fifo, ..Capabilities::NONE }
    }

    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (mut messages, offloads) = self.messages(tables, batch)?;
            self.offload(&mut messages, offloads).await?;
            self.send(messages).await?;
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
