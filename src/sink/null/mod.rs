//! `null://`: a destination that keeps nothing. Rows and changes are
//! counted and dropped, and acknowledged at once, so a run measures its
//! source alone (how fast it reads, decodes and captures).
//!
//! It is the smallest whole destination: this folder and one line in
//! [`super::REGISTRY`].

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{BoxFuture, Capabilities, Connector, Destination, RowTable, Scope, SinkOptions, SinkStats};
use crate::cdc::Tables;
use crate::endpoint::{EngineKind, Endpoint, Scheme};
use crate::error::Result;
use crate::model::{ChangeBatch, Position, RowBatch};
use crate::progress::Task;
use crate::transfer::RowPolicy;

pub const CONNECTOR: Connector = Connector {
    scheme: Scheme { names: &["null"], kind: EngineKind::Sink, example: "null://", options: &[], parse },
    open,
    // Nothing to order or buffer: every write is "durable" when it returns.
    capabilities: Capabilities { ordered: true, ..Capabilities::NONE },
    flags: &[],
};

fn parse(input: &str) -> Result<Endpoint> {
    crate::endpoint::parse_plain(input, "null", &[])
}

fn open<'a>(_: &'a Endpoint, _: &'a SinkOptions, _: Scope, stats: Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>> {
    Box::pin(async move { Ok(Box::new(NullSink { stats, last: None }) as Box<dyn Destination>) })
}

pub struct NullSink {
    stats: Arc<SinkStats>,
    /// The position of the last batch of changes, acknowledged.
    last: Option<Position>,
}

impl NullSink {
    async fn drain(&mut self, mut rows: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
        let mut total = 0u64;
        while let Some(batch) = rows.recv().await {
            let n = batch.rows.len() as u64;
            total += n;
            SinkStats::add(&self.stats.records, n);
            policy.counters.add(n, batch.bytes as u64);
            progress.inc(n);
        }
        Ok(total)
    }
}

impl Destination for NullSink {
    fn capabilities(&self) -> Capabilities {
        CONNECTOR.capabilities
    }

    fn write_rows<'a>(&'a mut self, _: &'a RowTable, rows: mpsc::Receiver<RowBatch>, policy: &'a RowPolicy, progress: &'a Arc<dyn Task>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.drain(rows, policy, progress))
    }

    fn write_changes<'a>(&'a mut self, _: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        SinkStats::add(&self.stats.records, batch.changes.len() as u64);
        if batch.position.is_some() {
            self.last = batch.position.clone();
        }
        Box::pin(async { Ok(()) })
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        let last = self.last.clone();
        Box::pin(async move { Ok(last) })
    }
}
