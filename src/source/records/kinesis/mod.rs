//! `kinesis://stream?region=&endpoint=`: a Kinesis Data Streams stream as
//! records, every shard read in parallel, as the KCL reads it.
//!
//! - Shards come from ListShards. A shard a reshard created (a split's
//!   two children, a merge's one) is read only once its parents are read
//!   to their end, so the records of one partition key keep their order
//!   across splits and merges. Closed shards are read to their end; the
//!   list is read again when one ends (to find its children) and every
//!   minute.
//! - Each user record is a [`Record`]: shard = the ShardId, offset = its
//!   sequence number and index within a KPL aggregate ([`offset`]), key =
//!   its partition key, time = ApproximateArrivalTimestamp, stream = the
//!   stream's name. Aggregates are taken apart and their MD5 checked.
//! - The position is the offset of the last record delivered per shard,
//!   and a restart reads after it. A shard closed and read to its end
//!   gets its EndingSequenceNumber as its offset: a restart finds that
//!   offset at or past the shard's end and does not read it again.
//! - Shards without a saved offset start at `--start-position`: the trim
//!   horizon, the latest record, or a time. For `latest`, the run's start
//!   time is kept in the state directory, so after a restart a shard that
//!   had no record yet is read from that time (AT_TIMESTAMP) and nothing
//!   that arrived while barge was down is skipped. Shards that appear
//!   during a run (children) are read from their start.
//! - A bounded run (`--mode full-load`) reads each shard of the stream as
//!   it was at the start: to the end of a closed shard, and an open one
//!   until GetRecords says it is caught up (no records, MillisBehindLatest
//!   0) or returns a record that arrived after the run started.
//!
//! Kinesis keeps no consumer position (there are no leases here): the
//! position lives with the destination, so `acknowledge` has nothing to do.

mod graph;
mod offset;
pub mod one;
mod shard;
mod unpack;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{OpenOptions, RecordBatch, RecordSource, StartAt};
use crate::endpoint::StreamEndpoint;
use crate::error::{Error, Result};
use crate::sink::kinesis_api::{ApiError, IteratorStart, KinesisApi};
use crate::sink::BoxFuture;
use graph::Graph;
use shard::{Event, Reader};

/// An empty batch after this long without records, so the loop can tick.
const TICK: Duration = Duration::from_secs(1);
/// How often a following run lists the shards again.
const RELIST: Duration = Duration::from_secs(60);
/// Most records in one batch (a GetRecords answer is never split).
const BATCH_RECORDS: usize = 20_000;
/// Answers waiting for `next` (each reader holds at most one more).
const CHANNEL: usize = 8;
/// A bounded run stops a shard at a record that arrived this long after
/// it started: ApproximateArrivalTimestamp is the stream's clock, not
/// ours, and a record from before the start must not be cut off.
const BOUND_MARGIN: Duration = Duration::from_secs(10);
/// Where the start time of a `latest` run is kept, in the state directory.
const LATEST_FILE: &str = "kinesis-latest.json";

pub struct KinesisSource {
    api: Arc<KinesisApi>,
    stream: String,
    follow: bool,
    deaggregate: bool,
    graph: Graph,
    bound: Option<DateTime<Utc>>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    readers: JoinSet<()>,
    listed: Instant,
}

/// `?deaggregate=false` keeps KPL aggregates whole.
fn deaggregate_option(ep: &StreamEndpoint) -> Result<bool> {
    match ep.options.get("deaggregate").map(String::as_str) {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(Error::usage(format!("{}: deaggregate={v}: write deaggregate=true (the default) or deaggregate=false", ep.display))),
    }
}

fn list_error(api: &KinesisApi, stream: &str, e: ApiError) -> Error {
    let hint = match e.kind.as_str() {
        "ResourceNotFoundException" => Some(format!("check the stream's name and region (?region=, AWS_REGION) and ?endpoint=; aws kinesis list-streams shows the streams there ({stream} is not one)")),
        "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException" => {
            Some("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the region; reading needs kinesis:ListShards, kinesis:GetShardIterator and kinesis:GetRecords".into())
        }
        _ => None,
    };
    Error::Endpoint { endpoint: api.display.clone(), message: format!("stream {stream}: ListShards: {}: {}", e.kind, e.message), hint }.retriable_if(e.retriable)
}

/// The start time of a `latest` run: kept from the first run, so a
/// restart reads what arrived since then in shards that had nothing yet.
fn latest_start(opts: &OpenOptions, stream: &str) -> Result<IteratorStart> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Kept {
        stream: String,
        since: DateTime<Utc>,
    }
    let path = opts.state_dir.join(LATEST_FILE);
    if let Ok(text) = std::fs::read(&path) {
        if let Ok(kept) = serde_json::from_slice::<Kept>(&text) {
            if kept.stream == stream {
                return Ok(IteratorStart::AtTimestamp(kept.since));
            }
        }
    }
    if !opts.from.is_empty() {
        // Resuming, but the start time is lost (another --state-dir):
        // reading more than asked for beats skipping records.
        tracing::warn!("stream {stream}: the time the first `latest` run started is not in {}; shards with no saved position are read from their oldest record", opts.state_dir.display());
        return Ok(IteratorStart::TrimHorizon);
    }
    let kept = Kept { stream: stream.to_string(), since: Utc::now() };
    let body = serde_json::to_vec(&kept).map_err(|e| Error::other(e.to_string()))?;
    crate::util::fs::write_durably(&path, &body)?;
    Ok(IteratorStart::Latest)
}

impl KinesisSource {
    pub async fn open(ep: &StreamEndpoint, opts: OpenOptions) -> Result<KinesisSource> {
        let api = Arc::new(KinesisApi::new(ep)?);
        let stream = ep.stream.clone();
        let deaggregate = deaggregate_option(ep)?;
        for (shard, o) in &opts.from {
            offset::parse(o).map_err(|why| {
                Error::usage(format!("{}: the saved position of shard {shard}: {why}", api.display))
                    .with_hint("a Kinesis position is shards:SHARD_ID=OFFSET, the offset as barge wrote it (the offset column of the default layout)")
            })?;
        }
        let first = match &opts.start {
            StartAt::Earliest => IteratorStart::TrimHorizon,
            StartAt::Timestamp(t) => IteratorStart::AtTimestamp(*t),
            StartAt::Latest => latest_start(&opts, &stream)?,
        };
        let listed = api.list_shards(&stream).await.map_err(|e| list_error(&api, &stream, e))?;
        if listed.is_empty() {
            return Err(Error::Endpoint { endpoint: api.display.clone(), message: format!("stream {stream} has no shards"), hint: Some("a stream being created has none yet: wait until it is ACTIVE".into()) });
        }
        let (tx, rx) = mpsc::channel(CHANNEL);
        let mut graph = Graph::new(opts.from, first, opts.follow);
        graph.learn(listed, true);
        let mut me = KinesisSource { api, stream, follow: opts.follow, deaggregate, graph, bound: (!opts.follow).then(|| Utc::now() + BOUND_MARGIN), tx, rx, readers: JoinSet::new(), listed: Instant::now() };
        me.start_ready();
        tracing::info!("{}: {} shards, reading {}", me.api.display, me.graph.len(), me.graph.reading());
        Ok(me)
    }

    /// Starts a reader for each shard whose parents are read.
    fn start_ready(&mut self) {
        for s in self.graph.ready() {
            if s.child {
                tracing::info!("{}: reading shard {} (created by a reshard; its parents are read)", self.api.display, s.id);
            }
            let reader = Reader { api: self.api.clone(), stream: self.stream.clone(), shard: s.id, from: s.from, closed: s.closed, bound: self.bound, deaggregate: self.deaggregate, tx: self.tx.clone() };
            self.readers.spawn(reader.run());
        }
    }

    /// Adds one reader's event to `batch`.
    fn take(&mut self, event: Event, batch: &mut RecordBatch) -> Result<()> {
        match event {
            Event::Records { shard, mut records, position } => {
                batch.records.append(&mut records);
                self.graph.read_to(shard, position);
            }
            Event::Finished { shard, closed } => {
                if closed {
                    tracing::info!("{}: shard {shard} is closed and read to its end", self.api.display);
                }
                self.graph.finished(&shard, closed);
            }
            Event::Failed(e) => return Err(e),
        }
        Ok(())
    }

    async fn list_again(&mut self) -> Result<()> {
        let listed = self.api.list_shards(&self.stream).await.map_err(|e| list_error(&self.api, &self.stream, e))?;
        self.graph.learn(listed, false);
        self.listed = Instant::now();
        Ok(())
    }

    /// A reader that panicked stops the run rather than leave its shard unread.
    fn check_readers(&mut self) -> Result<()> {
        while let Some(done) = self.readers.try_join_next() {
            if let Err(e) = done {
                if e.is_panic() {
                    return Err(Error::other(format!("{}: a shard reader failed: {e}", self.api.display)));
                }
            }
        }
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.check_readers()?;
        if !self.follow && self.graph.reading() == 0 && self.rx.is_empty() {
            return Ok(None);
        }
        let mut batch = RecordBatch::default();
        match tokio::time::timeout(TICK, self.rx.recv()).await {
            Ok(Some(event)) => {
                self.take(event, &mut batch)?;
                while batch.records.len() < BATCH_RECORDS {
                    match self.rx.try_recv() {
                        Ok(event) => self.take(event, &mut batch)?,
                        Err(_) => break,
                    }
                }
            }
            // The source holds a sender, so the channel never closes.
            Ok(None) => {}
            Err(_) => self.graph.relist |= self.follow && self.listed.elapsed() >= RELIST,
        }
        if self.graph.relist {
            self.list_again().await?;
        }
        self.start_ready();
        batch.position = self.graph.position.clone();
        Ok(Some(batch))
    }
}

impl RecordSource for KinesisSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(self.next_batch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaggregate_is_on_unless_turned_off() {
        let ep = |u: &str| match crate::endpoint::Endpoint::parse(u).unwrap() {
            crate::endpoint::Endpoint::Kinesis(e) => e,
            _ => unreachable!(),
        };
        assert!(deaggregate_option(&ep("kinesis://s")).unwrap());
        assert!(!deaggregate_option(&ep("kinesis://s?deaggregate=false")).unwrap());
        assert!(deaggregate_option(&ep("kinesis://s?deaggregate=no")).is_err());
    }
}
