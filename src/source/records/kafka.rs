//! `kafka://host:9092/topic`: the messages of every partition of one or
//! more topics, as records (`?topics=a,b` for several; a name with `*` or
//! `?` is a glob over the broker's topics, case as written: `orders.*`).
//!
//! - One reader per partition, all in parallel; each partition is a shard
//!   named `<topic>.<partition>` (see [`shard_id`] for topic names outside
//!   Kafka's own `[A-Za-z0-9._-]`), and its offset in the position is the
//!   next offset to read.
//! - A partition without a saved offset starts where `--start-position`
//!   says (earliest, latest, or the first message stamped at or after a
//!   time, in offset order, as Kafka's consumers take it), except one that
//!   appears while barge runs, or in a topic an earlier run was already
//!   reading: all of it is new, so it is read from its earliest offset. A
//!   saved offset always wins (`checkpoint`, the default, says only that).
//!   The starting offsets are saved with the first records that land; a
//!   run stopped before any landed starts again from `--start-position`.
//! - Following (`--mode cdc`), the topics' metadata is read again every
//!   few seconds, so partitions added to a topic (and topics a glob comes
//!   to match) are picked up. Bounded (`--mode full-load`), each
//!   partition is read up to its high watermark as it was at the start.
//! - Record: key = the message key, time = the message timestamp, stream
//!   = the topic, data = the value (a null value, a compacted topic's
//!   tombstone, is empty data). Headers are not carried: the first
//!   message that has them is named in a warning, with their names.
//! - Offsets the topic's retention deleted before barge read them are
//!   named in a warning and skipped to the earliest offset still held; a
//!   saved offset past a partition's end (the topic deleted and created
//!   again) stops the run rather than reading it again from the start
//!   under an older position.
//!
//! The position lives at the destination (with the rows on a database);
//! barge commits no consumer-group offsets (rskafka has no group API), so
//! it never moves a group other consumers share.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::Client;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{OpenOptions, Record, RecordBatch, RecordSource, StartAt};
use crate::endpoint::KafkaEndpoint;
use crate::error::{Error, Result};
use crate::model::pattern;
use crate::sink::BoxFuture;
use crate::util::retry::Retriable;

/// Most bytes one fetch asks a partition for.
const FETCH_BYTES: i32 = 1 << 20;
/// How long the broker may hold a fetch that finds nothing new.
const FETCH_WAIT_MS: i32 = 500;
/// A fetch with no answer in this long counts as a lost connection (one
/// that says nothing, as a dropped route does; a refused or reset one
/// fails sooner, once rskafka's retries run out).
const FETCH_TIMEOUT: Duration = Duration::from_secs(45);
/// Fetched chunks held between the partition readers and `next` (each up
/// to FETCH_BYTES): the read-ahead, whatever the partition count.
const AHEAD_CHUNKS: usize = 16;
/// Most records (and payload bytes) in one batch.
const BATCH_RECORDS: usize = 5_000;
const BATCH_BYTES: usize = 4 << 20;
/// How long `next` waits for records before it hands out an empty batch.
const IDLE: Duration = Duration::from_secs(1);
/// How often the topics' metadata is read again while following.
const REFRESH: Duration = Duration::from_secs(5);
/// How long rskafka retries a request by itself (a broker restarting)
/// before the error reaches barge's own reconnect loop.
const CLIENT_RETRY_DEADLINE: Duration = Duration::from_secs(30);

/// What a topic selection names.
#[derive(Debug, Clone, PartialEq)]
enum Wanted {
    Name(String),
    Glob(String),
}

impl Wanted {
    fn matches(&self, topic: &str) -> bool {
        match self {
            Wanted::Name(n) => n == topic,
            Wanted::Glob(g) => pattern::matches(g, topic, pattern::GLOB_EXACT_CASE),
        }
    }
}

/// The topics a URL names: its path, and `?topics=a,b`.
fn wanted(e: &KafkaEndpoint) -> Vec<Wanted> {
    let mut out = Vec::new();
    let listed = e.options.get("topics").map(String::as_str).unwrap_or("");
    for t in std::iter::once(e.topic.as_str()).chain(listed.split(',')) {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let w = if t.contains(['*', '?']) { Wanted::Glob(t.to_string()) } else { Wanted::Name(t.to_string()) };
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// A partition's shard id in the position. Kafka's own topic names
/// (`[A-Za-z0-9._-]`) give `<topic>.<partition>`; any other name (a
/// broker that allows more) has every byte outside `[A-Za-z0-9.-]`,
/// `_` included, written `_HH` (hex), and `.x` appended: `a/b` partition 3
/// is `a_2Fb.3.x`. The two forms never meet (one ends in digits, the
/// other in `.x`), and each is one partition's only.
pub fn shard_id(topic: &str, partition: i32) -> String {
    if !topic.is_empty() && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return format!("{topic}.{partition}");
    }
    let mut s = String::with_capacity(topic.len() * 3);
    for b in topic.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            s.push(b as char);
        } else {
            s.push_str(&format!("_{b:02X}"));
        }
    }
    format!("{s}.{partition}.x")
}

/// What a partition reader hands to `next`.
enum Fetched {
    /// Records in offset order, and the offset after them (also sent with
    /// no records, when offsets held no message: a transaction marker, or
    /// a range retention deleted).
    Records { shard: Arc<str>, records: Vec<Record>, next: i64 },
    /// A bounded read reached the partition's end.
    Done,
    Failed(Error),
}

pub struct KafkaSource {
    display: String,
    client: Client,
    wanted: Vec<Wanted>,
    start: StartAt,
    follow: bool,
    /// Offsets saved by an earlier run, by shard, for partitions not
    /// started yet.
    saved: BTreeMap<String, i64>,
    /// Topics an earlier run read (a new partition of one is new data).
    saved_topics: HashSet<String>,
    /// Every partition started, by shard: its next offset to hand out.
    next: BTreeMap<String, i64>,
    /// Bounded: partitions not read to their end yet.
    running: usize,
    tx: mpsc::Sender<Fetched>,
    rx: mpsc::Receiver<Fetched>,
    readers: JoinSet<()>,
    refreshed: Instant,
    /// A reader's failure, reported after the records before it.
    failed: Option<Error>,
    /// A shared run's worker reads only the partition it leased.
    only: Option<String>,
    /// Set once a message with headers was named on the console.
    headers_named: Arc<std::sync::atomic::AtomicBool>,
}

fn kafka_error(display: &str, message: String, e: &KafkaError) -> Error {
    let detail = match e {
        // rskafka's own text for these includes the whole request.
        KafkaError::ServerError { protocol_error, error_message, .. } => match error_message {
            Some(m) => format!("{protocol_error} ({m})"),
            None => protocol_error.to_string(),
        },
        other => other.to_string(),
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("{message}: {detail}"), hint: None }.retriable_if(e.is_retriable())
}

impl KafkaSource {
    pub async fn open(e: &KafkaEndpoint, opts: OpenOptions) -> Result<KafkaSource> {
        Self::open_only(e, opts, None).await
    }

    async fn open_only(e: &KafkaEndpoint, opts: OpenOptions, only: Option<String>) -> Result<KafkaSource> {
        let wanted = wanted(e);
        if wanted.is_empty() {
            return Err(Error::usage(format!("{}: name the topics to read: kafka://host:9092/topic, ?topics=a,b or a glob such as orders.*", e.display)));
        }
        let mut saved = BTreeMap::new();
        for (shard, offset) in &opts.from {
            let n = offset.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| Error::usage(format!("{}: the saved offset {offset} of partition {shard} is not a Kafka offset", e.display)))?;
            saved.insert(shard.clone(), n);
        }
        if !saved.is_empty() && opts.start != StartAt::Earliest {
            tracing::info!("{}: partitions with a saved position resume from it; --start-position applies to the others", e.display);
        }
        let backoff = rskafka::BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0, deadline: Some(CLIENT_RETRY_DEADLINE) };
        let client = crate::sink::kafka::client_builder(e)?
            .backoff_config(backoff)
            .build()
            .await
            .map_err(|err| kafka_error(&e.display, "cannot connect".into(), &err).with_hint("check the broker address (kafka://host:9092/topic) and that it is up"))?;
        let (tx, rx) = mpsc::channel(AHEAD_CHUNKS);
        let mut me = KafkaSource {
            display: e.display.clone(),
            client,
            wanted,
            start: opts.start,
            follow: opts.follow,
            saved,
            saved_topics: HashSet::new(),
            next: BTreeMap::new(),
            running: 0,
            tx,
            rx,
            readers: JoinSet::new(),
            refreshed: Instant::now(),
            failed: None,
            only,
            headers_named: Arc::default(),
        };
        let topics = me.list_topics().await?;
        for w in &me.wanted {
            match w {
                Wanted::Name(n) if !topics.contains_key(n) => {
                    return Err(Error::Endpoint { endpoint: me.display.clone(), message: format!("topic {n} does not exist"), hint: Some(format!("check the name (topics here: {}); barge does not create topics", some_names(&topics))) });
                }
                Wanted::Glob(g) if !topics.keys().any(|t| w.matches(t)) => {
                    if !me.follow {
                        return Err(Error::Endpoint { endpoint: me.display.clone(), message: format!("no topic matches {g}"), hint: Some(format!("topics here: {}; globs match case as written", some_names(&topics))) });
                    }
                    tracing::warn!("{}: no topic matches {g} yet; barge picks topics up as they appear", me.display);
                }
                _ => {}
            }
        }
        for (topic, partitions) in &topics {
            if partitions.iter().any(|p| me.saved.contains_key(&shard_id(topic, *p))) {
                me.saved_topics.insert(topic.clone());
            }
        }
        me.start_partitions(&topics, true).await?;
        Ok(me)
    }

    /// Every topic the brokers have, with its partitions.
    async fn list_topics(&self) -> Result<BTreeMap<String, BTreeSet<i32>>> {
        let all = self.client.list_topics().await.map_err(|e| kafka_error(&self.display, "listing topics".into(), &e))?;
        Ok(all.into_iter().map(|t| (t.name, t.partitions)).collect())
    }

    /// Starts a reader for each selected partition not read yet. `first`:
    /// the partitions there when the run starts (the others are new).
    async fn start_partitions(&mut self, topics: &BTreeMap<String, BTreeSet<i32>>, first: bool) -> Result<()> {
        let mut new = Vec::new();
        for (topic, partitions) in topics {
            if !self.wanted.iter().any(|w| w.matches(topic)) {
                continue;
            }
            for &p in partitions {
                let shard = shard_id(topic, p);
                if self.next.contains_key(&shard) || self.only.as_ref().is_some_and(|o| *o != shard) {
                    continue;
                }
                let from = match self.saved.remove(&shard) {
                    Some(o) => StartFrom::Offset(o),
                    None if first && !self.saved_topics.contains(topic) => StartFrom::Start,
                    None => StartFrom::New,
                };
                new.push((topic.clone(), p, shard, from));
            }
        }
        let opened = futures::future::join_all(new.into_iter().map(|(topic, p, shard, from)| self.open_partition(topic, p, shard, from))).await;
        for reader in opened {
            let (reader, from) = reader?;
            if !first {
                tracing::info!("{}: reading topic {} partition {} (new) from offset {from}", self.display, reader.topic, reader.partition);
            }
            self.next.insert(reader.shard.to_string(), from);
            if !self.follow {
                self.running += 1;
            }
            self.readers.spawn(reader.run(from));
        }
        Ok(())
    }

    /// A partition's reader, and the offset it starts at.
    async fn open_partition(&self, topic: String, partition: i32, shard: String, from: StartFrom) -> Result<(PartitionReader, i64)> {
        let place = format!("topic {topic} partition {partition}");
        let pc = self.client.partition_client(topic.clone(), partition, UnknownTopicHandling::Retry).await.map_err(|e| kafka_error(&self.display, format!("opening {place}"), &e))?;
        let asked = |e: KafkaError| kafka_error(&self.display, format!("asking {place} for its offsets"), &e);
        let start = match (from, &self.start) {
            (StartFrom::Offset(o), _) => o,
            (StartFrom::New, _) | (StartFrom::Start, StartAt::Earliest) => pc.get_offset(OffsetAt::Earliest).await.map_err(asked)?,
            (StartFrom::Start, StartAt::Latest) => end_offset(&pc).await.map_err(asked)?,
            (StartFrom::Start, StartAt::Timestamp(t)) => match pc.get_offset(OffsetAt::Timestamp(*t)).await.map_err(asked)? {
                // No message at or after that time yet: from the end.
                o if o < 0 => end_offset(&pc).await.map_err(asked)?,
                o => first_at_or_after(&pc, o, *t).await.map_err(asked)?,
            },
        };
        let end = if self.follow { None } else { Some(end_offset(&pc).await.map_err(asked)?) };
        let reader = PartitionReader { pc, shard: Arc::from(shard), topic, partition, display: self.display.clone(), end, tx: self.tx.clone(), headers_named: self.headers_named.clone() };
        Ok((reader, start))
    }

    /// Reads the topics' metadata again: partitions added since, and
    /// topics a glob matches now.
    async fn refresh(&mut self) -> Result<()> {
        self.refreshed = Instant::now();
        let topics = self.list_topics().await?;
        self.start_partitions(&topics, false).await
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        // A leased partition's worker is told of new partitions by the coordinator.
        if self.follow && self.only.is_none() && self.refreshed.elapsed() >= REFRESH {
            self.refresh().await?;
        }
        let mut batch = RecordBatch::default();
        let mut bytes = 0usize;
        let mut moved = false;
        let idle_at = tokio::time::Instant::now() + IDLE;
        loop {
            if !self.follow && self.running == 0 {
                // Each reader says Done after its last records, so all
                // of them are in hand.
                if batch.records.is_empty() && !moved {
                    return Ok(None);
                }
                break;
            }
            let msg = if batch.records.is_empty() {
                match tokio::time::timeout_at(idle_at, self.rx.recv()).await {
                    Ok(Some(m)) => m,
                    // Nothing arrived (or cannot: this source holds a sender).
                    Ok(None) | Err(_) => break,
                }
            } else {
                match self.rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            match msg {
                Fetched::Records { shard, records, next } => {
                    moved = true;
                    bytes += records.iter().map(|r| r.data.len() + r.key.as_ref().map_or(0, Vec::len)).sum::<usize>();
                    batch.records.extend(records);
                    self.next.insert(shard.to_string(), next);
                    if batch.records.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES {
                        break;
                    }
                }
                Fetched::Done => self.running -= 1,
                Fetched::Failed(e) if batch.records.is_empty() => return Err(e),
                Fetched::Failed(e) => {
                    self.failed = Some(e);
                    break;
                }
            }
        }
        batch.position = self.next.iter().map(|(shard, o)| (shard.clone(), o.to_string())).collect();
        Ok(Some(batch))
    }
}

impl RecordSource for KafkaSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(self.next_batch())
    }
}

/// The partitions of the topics `e` names, as shards (a shared run
/// leases them one by one). Kafka partitions have no parents and never
/// close.
pub async fn list_partitions(e: &KafkaEndpoint) -> Result<Vec<super::leased::ListedShard>> {
    let client = crate::sink::kafka::client_builder(e)?
        .build()
        .await
        .map_err(|err| kafka_error(&e.display, "cannot connect".into(), &err).with_hint("check the broker address (kafka://host:9092/topic) and that it is up"))?;
    let wanted = wanted(e);
    let all = client.list_topics().await.map_err(|err| kafka_error(&e.display, "listing topics".into(), &err))?;
    let mut out = Vec::new();
    for t in all.into_iter().filter(|t| wanted.iter().any(|w| w.matches(&t.name))) {
        for p in t.partitions {
            out.push(super::leased::ListedShard { id: shard_id(&t.name, p), parents: Vec::new(), closed: false });
        }
    }
    Ok(out)
}

/// One partition (`shard`, as [`shard_id`] names it) of the topics `e`
/// names, read on its own; `end` is told when a bounded read is done.
pub async fn open_partition_of(e: &KafkaEndpoint, shard: &str, opts: OpenOptions, end: Arc<super::leased::ShardEnd>) -> Result<OnePartition> {
    let inner = KafkaSource::open_only(e, opts, Some(shard.to_string())).await?;
    if inner.next.is_empty() {
        return Err(Error::Endpoint { endpoint: e.display.clone(), message: format!("partition {shard} is not among the topics' partitions"), hint: Some("was the topic deleted? `barge status --coordinator URL` shows the shards of the task".into()) });
    }
    Ok(OnePartition { inner, end })
}

/// A partition read on its own.
pub struct OnePartition {
    inner: KafkaSource,
    end: Arc<super::leased::ShardEnd>,
}

impl RecordSource for OnePartition {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(async move {
            let r = self.inner.next_batch().await?;
            if r.is_none() {
                self.end.reached(false);
            }
            Ok(r)
        })
    }
}

/// The partition's end (its high watermark: the offset the next message
/// will get). ListOffsets(latest) says so on Apache Kafka; tansu 0.6 (the
/// broker of barge's tests) answers the last batch's first offset + 1
/// instead, so a fetch from there reads the true high watermark too (with
/// a short wait: tansu answers a fetch that may not wait with no topic).
async fn end_offset(pc: &PartitionClient) -> std::result::Result<i64, KafkaError> {
    let listed = pc.get_offset(OffsetAt::Latest).await?;
    let (_, high) = pc.fetch_records(listed, 1..FETCH_BYTES, 100).await?;
    Ok(listed.max(high))
}

/// The offset of the first message stamped `t` or later, from `from` (the
/// broker's answer to the time) on; the end if there is none. On Apache
/// Kafka that is `from` itself; some brokers (tansu 0.6 among them) answer
/// offset 0 to any time, and then the messages before are passed over
/// here, before the first position is handed out, so a restart never
/// reads them either.
async fn first_at_or_after(pc: &PartitionClient, from: i64, t: chrono::DateTime<chrono::Utc>) -> std::result::Result<i64, KafkaError> {
    let end = end_offset(pc).await?;
    let mut offset = from;
    let mut max_bytes = FETCH_BYTES;
    while offset < end {
        let (records, _) = pc.fetch_records(offset, 1..max_bytes, 100).await?;
        if records.is_empty() {
            // As in PartitionReader::read: a batch larger than asked
            // for, else an offset without a message.
            if max_bytes < FETCH_BYTES_LARGE {
                max_bytes = FETCH_BYTES_LARGE;
            } else {
                max_bytes = FETCH_BYTES;
                offset += 1;
            }
            continue;
        }
        max_bytes = FETCH_BYTES;
        for r in &records {
            if r.record.timestamp >= t && r.record.timestamp.timestamp_millis() >= 0 {
                return Ok(r.offset);
            }
        }
        offset = records.last().map_or(offset, |r| r.offset + 1);
    }
    Ok(end)
}

/// Where a partition without a reader starts.
#[derive(Debug, Clone, Copy)]
enum StartFrom {
    /// Its saved offset.
    Offset(i64),
    /// Where `--start-position` says.
    Start,
    /// Its earliest offset: it is new since the run (or the earlier run)
    /// started reading its topic.
    New,
}

/// A few topic names, for a hint.
fn some_names(topics: &BTreeMap<String, BTreeSet<i32>>) -> String {
    if topics.is_empty() {
        return "none".into();
    }
    let mut s: Vec<&str> = topics.keys().map(String::as_str).take(10).collect();
    if topics.len() > 10 {
        s.push("…");
    }
    s.join(", ")
}

/// Reads one partition into the source's channel, in offset order.
struct PartitionReader {
    pc: PartitionClient,
    shard: Arc<str>,
    topic: String,
    partition: i32,
    display: String,
    /// Bounded: the offset to stop at (the high watermark at the start).
    end: Option<i64>,
    tx: mpsc::Sender<Fetched>,
    headers_named: Arc<std::sync::atomic::AtomicBool>,
}

/// Bytes asked for again when a fetch came back empty below the high
/// watermark, in case one message batch is larger than FETCH_BYTES.
const FETCH_BYTES_LARGE: i32 = 64 << 20;

impl PartitionReader {
    fn place(&self) -> String {
        format!("topic {} partition {}", self.topic, self.partition)
    }

    async fn run(self, from: i64) {
        if let Err(e) = self.read(from).await {
            let _ = self.tx.send(Fetched::Failed(e)).await;
        }
    }

    /// Hands on records from `offset` on; returns when the source is gone
    /// or (bounded) at the end.
    async fn read(&self, mut offset: i64) -> Result<()> {
        let mut max_bytes = FETCH_BYTES;
        loop {
            if self.end.is_some_and(|end| offset >= end) {
                let _ = self.tx.send(Fetched::Done).await;
                return Ok(());
            }
            let asked = Instant::now();
            let fetched = match tokio::time::timeout(FETCH_TIMEOUT, self.pc.fetch_records(offset, 1..max_bytes, FETCH_WAIT_MS)).await {
                Ok(r) => r,
                Err(_) => {
                    let message = format!("reading {} at offset {offset}: no answer from the broker in {} s", self.place(), FETCH_TIMEOUT.as_secs());
                    return Err(Error::Endpoint { endpoint: self.display.clone(), message, hint: None }.retriable_if(true));
                }
            };
            let (records, high) = match fetched {
                Ok(r) => r,
                Err(KafkaError::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. }) => {
                    offset = self.out_of_range(offset).await?;
                    if !self.hand_on(Vec::new(), offset).await {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(kafka_error(&self.display, format!("reading {} at offset {offset}", self.place()), &e)),
            };
            if records.is_empty() {
                if offset > high {
                    offset = self.out_of_range(offset).await?;
                } else if offset < high && max_bytes < FETCH_BYTES_LARGE {
                    // Nothing came back below the high watermark: maybe
                    // one batch larger than asked for.
                    max_bytes = FETCH_BYTES_LARGE;
                    continue;
                } else if offset < high {
                    // Still nothing: the offset holds no message (rskafka
                    // leaves out transaction markers), so read on after it.
                    tracing::debug!("{}: {} offset {offset} holds no message (a transaction marker); reading on", self.display, self.place());
                    max_bytes = FETCH_BYTES;
                    offset += 1;
                } else {
                    if asked.elapsed() < Duration::from_millis(50) {
                        // A broker that answers an empty fetch at once.
                        tokio::time::sleep(Duration::from_millis(FETCH_WAIT_MS as u64)).await;
                    }
                    continue;
                }
                if !self.hand_on(Vec::new(), offset).await {
                    return Ok(());
                }
                continue;
            }
            max_bytes = FETCH_BYTES;
            let mut out = Vec::with_capacity(records.len());
            let mut next = offset;
            for r in records {
                if self.end.is_some_and(|end| r.offset >= end) {
                    next = self.end.unwrap_or(next);
                    break;
                }
                next = r.offset + 1;
                if !r.record.headers.is_empty() && !self.headers_named.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    // Not carried (see the module's notes): said once, not lost unseen.
                    let names: Vec<&str> = r.record.headers.keys().map(String::as_str).take(8).collect();
                    tracing::warn!(
                        "{}: {} offset {}: the message has headers ({}), which barge does not carry; only its key, value and timestamp land, and so for every message after it",
                        self.display,
                        self.place(),
                        r.offset,
                        names.join(", ")
                    );
                }
                let millis = r.record.timestamp.timestamp_millis();
                out.push(Record {
                    shard: self.shard.to_string(),
                    offset: r.offset.to_string(),
                    stream: self.topic.clone(),
                    key: r.record.key,
                    // -1: the producer set no time.
                    time: (millis >= 0).then_some(r.record.timestamp),
                    data: r.record.value.unwrap_or_default(),
                });
            }
            offset = next;
            if !self.hand_on(out, offset).await {
                return Ok(());
            }
        }
    }

    /// Sends records on; false when the source is gone.
    async fn hand_on(&self, records: Vec<Record>, next: i64) -> bool {
        self.tx.send(Fetched::Records { shard: self.shard.clone(), records, next }).await.is_ok()
    }

    /// The broker says `offset` is not in the partition: retention deleted
    /// it (read on from the earliest offset held, and say so), or the
    /// partition ends before it (stop: see the module's notes).
    async fn out_of_range(&self, offset: i64) -> Result<i64> {
        let asked = |e: KafkaError| kafka_error(&self.display, format!("asking {} for its offsets", self.place()), &e);
        let earliest = self.pc.get_offset(OffsetAt::Earliest).await.map_err(asked)?;
        let latest = end_offset(&self.pc).await.map_err(asked)?;
        if offset < earliest {
            tracing::warn!(
                "{}: {}: offsets {offset} to {} were deleted (the topic's retention) before barge read them: {} messages not delivered; reading on from offset {earliest}",
                self.display,
                self.place(),
                earliest - 1,
                earliest - offset
            );
            return Ok(earliest);
        }
        if offset > latest {
            return Err(Error::Endpoint {
                endpoint: self.display.clone(),
                message: format!("{}: the position is offset {offset}, past the partition's end (offset {latest}): the topic was deleted and created again, or the broker lost messages", self.place()),
                hint: Some("barge does not go back under an old position on its own: to read the topic as a new one, start a new task (a new --state-dir, and a new table on a database target)".into()),
            });
        }
        Ok(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_are_position_safe_and_one_per_partition() {
        assert_eq!(shard_id("orders", 0), "orders.0");
        assert_eq!(shard_id("cdc.public.orders_v2-x", 11), "cdc.public.orders_v2-x.11");
        assert_eq!(shard_id("a/b", 3), "a_2Fb.3.x");
        assert_eq!(shard_id("a_b c", 1), "a_5Fb_20c.1.x");
        assert_eq!(shard_id("é", 0), "_C3_A9.0.x");
        for (t, p) in [("orders", 0), ("a/b", 3), ("a_b c", 1), ("x.1", 2), ("é", 0)] {
            let id = shard_id(t, p);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)), "{id}");
            let pos: crate::model::Position = format!("shards:{id}=5").parse().unwrap();
            assert_eq!(pos.to_string(), format!("shards:{id}=5"));
        }
        // `x.1` partition 2 and `x` partition 1 (then `.2`) never collide.
        assert_ne!(shard_id("x.1", 2), shard_id("x", 12));
        assert_eq!(shard_id("x.1", 2), "x.1.2");
        assert_ne!(shard_id("a_2Fb", 3), shard_id("a/b", 3));
    }

    #[test]
    fn topics_come_from_the_path_and_the_list() {
        let ep = |u: &str| match crate::endpoint::Endpoint::parse(u).unwrap() {
            crate::endpoint::Endpoint::Kafka(k) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(wanted(&ep("kafka://h:9092/orders")), vec![Wanted::Name("orders".into())]);
        assert_eq!(wanted(&ep("kafka://h:9092/?topics=a,b,a")), vec![Wanted::Name("a".into()), Wanted::Name("b".into())]);
        assert_eq!(wanted(&ep("kafka://h:9092/orders.*?topics=audit")), vec![Wanted::Glob("orders.*".into()), Wanted::Name("audit".into())]);
        let g = Wanted::Glob("orders.*".into());
        assert!(g.matches("orders.v1") && !g.matches("Orders.v1") && !g.matches("audit"));
        assert!(crate::endpoint::Endpoint::parse("kafka://h:9092").is_err(), "no topic at all");
    }
}
