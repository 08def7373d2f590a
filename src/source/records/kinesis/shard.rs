//! One shard's reader: GetRecords in a loop, within the shard's read
//! limits, each answer handed on as user records (KPL aggregates taken
//! apart) with the position after them.
//!
//! - Limits: Kinesis allows 5 GetRecords calls and 2 MB a second per
//!   shard, so a call waits 200 ms after the one before, and longer after
//!   a large answer (its bytes at 2 MB/s). A shard with nothing new is
//!   asked once a second.
//! - ProvisionedThroughputExceededException (another consumer shares the
//!   shard's limits): back off and ask again, for as long as it lasts.
//!   Network failures and server errors: back off and ask again for a
//!   minute, then hand the error on as retriable (the replication loop
//!   reopens the source from the last committed position).
//! - An iterator lives five minutes (longer when the destination is slow
//!   and the channel is full): an expired one is replaced by a new one
//!   after the last record handed on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::offset::{self, Resume};
use super::unpack::Unpack;
use crate::error::Error;
use crate::sink::kinesis_api::{ApiError, IteratorStart, KinesisApi};
use crate::source::records::Record;

/// Records GetRecords returns at most per call.
const LIMIT: usize = 10_000;
/// 5 calls a second per shard.
const CALL_GAP: Duration = Duration::from_millis(200);
/// 2 MB a second per shard.
const BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;
/// How often a shard that has nothing new is asked again.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long network and server failures are retried here before the
/// error goes to the replication loop.
const RETRY_WINDOW: Duration = Duration::from_secs(60);

/// What a reader tells the source.
pub enum Event {
    /// User records of one shard, in order, and the shard's position after them.
    Records { shard: String, records: Vec<Record>, position: String },
    /// The reader stopped: `closed`, the shard is closed and read to its
    /// end (its children may start); else a bounded run read it as far as
    /// the stream was when the run started.
    Finished { shard: String, closed: bool },
    Failed(Error),
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    /// No saved offset: here.
    Start(IteratorStart),
    /// A saved offset.
    Saved(Resume),
}

pub struct Reader {
    pub api: Arc<KinesisApi>,
    pub stream: String,
    pub shard: String,
    pub from: From,
    /// Closed when listed: read to its end even in a bounded run.
    pub closed: bool,
    /// A bounded run: stop once caught up, or at a record that arrived
    /// after this time (so a busy stream still ends).
    pub bound: Option<DateTime<Utc>>,
    /// Take KPL aggregates apart (`?deaggregate=false` keeps them whole).
    pub deaggregate: bool,
    pub tx: mpsc::Sender<Event>,
}

impl Reader {
    pub async fn run(mut self) {
        if let Err(e) = self.read().await {
            let _ = self.tx.send(Event::Failed(e)).await;
        }
    }

    fn place(&self) -> String {
        format!("{}: stream {}, shard {}", self.api.display, self.stream, self.shard)
    }

    fn start(&self) -> IteratorStart {
        match &self.from {
            From::Start(s) => s.clone(),
            From::Saved(Resume::After(seq)) => IteratorStart::AfterSequence(seq.clone()),
            From::Saved(Resume::Within { seq, .. }) => IteratorStart::AtSequence(seq.clone()),
        }
    }

    /// Reads until the shard ends (closed, or a bounded run's end), the
    /// source is dropped, or an error that retrying here will not fix.
    async fn read(&mut self) -> Result<(), Error> {
        let mut iterator: Option<String> = None;
        let mut next_call = Instant::now();
        let mut retry = Retry::default();
        loop {
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.api.shard_iterator(&self.stream, &self.shard, &self.start()).await {
                    Ok(it) => it,
                    Err(e) => {
                        retry.after(e, self, "GetShardIterator").await?;
                        continue;
                    }
                },
            };
            tokio::time::sleep_until(next_call.into()).await;
            let called = Instant::now();
            // A failed call counts against the shard's 5 a second too.
            next_call = called + CALL_GAP;
            let out = match self.api.get_records(&it, LIMIT).await {
                Ok(out) => out,
                Err(e) if e.kind == "ExpiredIteratorException" => {
                    tracing::debug!("{}: the shard iterator expired; asking for a new one", self.place());
                    continue;
                }
                Err(e) => {
                    retry.after(e, self, "GetRecords").await?;
                    // Keep the iterator: it is still good for a retry.
                    iterator = Some(it);
                    continue;
                }
            };
            retry = Retry::default();
            let behind = out.millis_behind_latest.unwrap_or(0);
            let was_empty = out.records.is_empty();
            let taken = Unpack { display: &self.api.display, stream: &self.stream, shard: &self.shard, from: &self.from, bound: self.bound, deaggregate: self.deaggregate }.take(out.records)?;
            if let Some(seq) = &taken.last {
                let event = Event::Records { shard: self.shard.clone(), records: taken.records, position: offset::after_record(seq) };
                self.from = From::Saved(Resume::After(seq.clone()));
                if self.tx.send(event).await.is_err() {
                    return Ok(()); // the source is gone
                }
            }
            let finished = if taken.past_bound {
                Some(false)
            } else if out.next_shard_iterator.is_none() {
                Some(true)
            } else if self.bound.is_some() && !self.closed && was_empty && behind == 0 {
                Some(false)
            } else {
                None
            };
            if let Some(closed) = finished {
                let _ = self.tx.send(Event::Finished { shard: self.shard.clone(), closed }).await;
                return Ok(());
            }
            iterator = out.next_shard_iterator;
            let by_bytes = Duration::from_secs_f64(taken.bytes as f64 / BYTES_PER_SECOND);
            let gap = if was_empty && behind == 0 && !self.closed { IDLE_POLL } else { CALL_GAP.max(by_bytes) };
            next_call = called + gap;
        }
    }
}

/// Backoff between failed calls of one reader.
#[derive(Default)]
struct Retry {
    attempt: u32,
    failing_since: Option<Instant>,
    last_warning: Option<Instant>,
}

impl Retry {
    /// Waits before the next try, or gives the error back when trying
    /// again here will not help.
    async fn after(&mut self, e: ApiError, r: &Reader, call: &str) -> Result<(), Error> {
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if !e.retriable {
            return Err(fatal(e, r, call));
        }
        let throttled = e.kind == "ProvisionedThroughputExceededException";
        if !throttled && since.elapsed() > RETRY_WINDOW {
            return Err(Error::Endpoint { endpoint: r.api.display.clone(), message: format!("stream {}, shard {}: {call} failed for {} s: {}: {}", r.stream, r.shard, since.elapsed().as_secs(), e.kind, e.message), hint: None }.retriable_if(true));
        }
        if self.last_warning.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) && since.elapsed() > Duration::from_secs(5) {
            tracing::warn!("{}: {call}: {} ({}); still retrying", r.place(), e.kind, e.message);
            self.last_warning = Some(Instant::now());
        } else {
            tracing::debug!("{}: {call}: {} ({}); retrying", r.place(), e.kind, e.message);
        }
        crate::metrics::retry(crate::metrics::Role::Source);
        tokio::time::sleep(crate::util::retry::backoff(self.attempt)).await;
        self.attempt += 1;
        Ok(())
    }
}

/// An error retrying will not fix, with what to do about it.
fn fatal(e: ApiError, r: &Reader, call: &str) -> Error {
    let hint = match e.kind.as_str() {
        "ResourceNotFoundException" => Some(format!("the stream or shard is gone (deleted, or the shard aged out of the retention period); check the stream with: aws kinesis describe-stream-summary --stream-name {}", r.stream)),
        "InvalidArgumentException" if matches!(r.from, From::Saved(_)) => Some(format!(
            "the saved position of shard {} does not fit this stream (was the stream deleted and created again under the same name?); to read it from the start, rerun with --restart",
            r.shard
        )),
        "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException" => {
            Some("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the region; reading needs kinesis:ListShards, kinesis:GetShardIterator and kinesis:GetRecords".into())
        }
        k if k.starts_with("KMS") => Some("the stream is encrypted with a KMS key: the credentials need kms:Decrypt on it".into()),
        _ => None,
    };
    Error::Endpoint { endpoint: r.api.display.clone(), message: format!("stream {}, shard {}: {call}: {}: {}", r.stream, r.shard, e.kind, e.message), hint }
}
