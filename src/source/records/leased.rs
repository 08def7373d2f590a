//! One shard (a Kinesis shard, a Kafka partition) read on its own, for a
//! worker of a shared run that holds its lease (`coord::shards`).
//!
//! The worker runs the usual replication loop for each shard it holds;
//! the loop's record source is a [`LeasedShard`]: the one shard's
//! records, which ends the loop (after its last batch is committed) when
//! the shard is read to its end or the worker lets the lease go, and
//! which keeps the last offset the destination acknowledged, for the
//! lease's checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use super::{OpenOptions, RecordBatch, RecordSource, StartAt};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sink::BoxFuture;

/// A shard as the stream lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedShard {
    pub id: String,
    /// The shards a reshard made it from (a split's one, a merge's two).
    pub parents: Vec<String>,
    /// No record will be added to it (a reshard closed it).
    pub closed: bool,
}

/// Whether a shard's reader reached its end.
#[derive(Debug, Default)]
pub struct ShardEnd(AtomicU8);

impl ShardEnd {
    const CLOSED: u8 = 1;
    const BOUND: u8 = 2;

    /// The reader stopped: `closed`, the shard is closed and read to its
    /// last record; else a bounded run read it as far as it goes.
    pub fn reached(&self, closed: bool) {
        self.0.store(if closed { Self::CLOSED } else { Self::BOUND }, Ordering::SeqCst);
    }

    /// Read to its end: nothing more will ever be read from it (closed),
    /// or nothing more in this bounded run.
    pub fn reached_end(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }
}

/// What the replication loop of one leased shard needs: which shard,
/// where it starts, and the handles the worker steers it with.
#[derive(Clone)]
pub struct ShardLease {
    pub shard: String,
    /// Where a shard without an offset starts: the run's start position
    /// for the shards there were when it began, earliest for the children
    /// of a reshard.
    pub start: StartAt,
    /// Closed when listed (a bounded run reads it to its end).
    pub closed: bool,
    /// Set by the worker: end the loop after the batch in flight (the
    /// lease is given back or was lost).
    pub stop: Arc<AtomicBool>,
    pub end: Arc<ShardEnd>,
    /// The shard's offset the destination last acknowledged.
    pub acked: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for ShardLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLease").field("shard", &self.shard).field("start", &self.start).finish_non_exhaustive()
    }
}

impl ShardLease {
    pub fn new(shard: String, start: StartAt, closed: bool) -> ShardLease {
        ShardLease { shard, start, closed, stop: Arc::default(), end: Arc::default(), acked: Arc::default() }
    }

    pub fn acked(&self) -> Option<String> {
        self.acked.lock().ok().and_then(|a| a.clone())
    }
}

/// Which sources a shared run can lease shard by shard.
pub fn supports(ep: &Endpoint) -> bool {
    match ep {
        #[cfg(feature = "kinesis")]
        Endpoint::Kinesis(_) => true,
        #[cfg(feature = "kafka")]
        Endpoint::Kafka(_) => true,
        _ => false,
    }
}

/// Every shard (partition) of the stream `ep` names.
pub async fn list(ep: &Endpoint) -> Result<Vec<ListedShard>> {
    match ep {
        #[cfg(feature = "kinesis")]
        Endpoint::Kinesis(k) => super::kinesis::one::list(k).await,
        #[cfg(feature = "kafka")]
        Endpoint::Kafka(k) => super::kafka::list_partitions(k).await,
        other => Err(Error::usage(format!("{other}: its records cannot be leased shard by shard"))),
    }
}

/// Opens the one shard `lease` names, from its offset in `opts.from`
/// (the target's saved position, else the lease's checkpoint).
// Built without both stream features, every endpoint is refused.
#[cfg_attr(not(all(feature = "kinesis", feature = "kafka")), allow(unused_variables, unreachable_code))]
pub async fn open(ep: &Endpoint, lease: &ShardLease, opts: OpenOptions) -> Result<Box<dyn RecordSource>> {
    let from = opts.from.get(&lease.shard).cloned();
    let inner: Box<dyn RecordSource> = match ep {
        #[cfg(feature = "kinesis")]
        Endpoint::Kinesis(k) => Box::new(super::kinesis::one::open(k, &lease.shard, from.as_deref(), &lease.start, lease.closed, opts.follow, lease.end.clone()).await?),
        #[cfg(feature = "kafka")]
        Endpoint::Kafka(k) => Box::new(super::kafka::open_partition_of(k, &lease.shard, opts, lease.end.clone()).await?),
        other => return Err(Error::usage(format!("{other}: its records cannot be leased shard by shard"))),
    };
    Ok(Box::new(LeasedShard { inner, lease: lease.clone() }))
}

/// A shard's records, ending when the worker lets the lease go.
struct LeasedShard {
    inner: Box<dyn RecordSource>,
    lease: ShardLease,
}

impl LeasedShard {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.lease.stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.inner.next().await
    }
}

impl RecordSource for LeasedShard {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(self.next_batch())
    }

    fn acknowledge<'a>(&'a mut self, offsets: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        if let (Some(o), Ok(mut acked)) = (offsets.get(&self.lease.shard), self.lease.acked.lock()) {
            *acked = Some(o.clone());
        }
        self.inner.acknowledge(offsets)
    }

    fn describe(&self, r: &super::Record) -> String {
        self.inner.describe(r)
    }
}
