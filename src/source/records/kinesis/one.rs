//! One shard of a stream, read on its own: what a worker of a shared run
//! (`--coordinator`) reads for each shard it leases. The coordinator, not
//! this reader, decides when a shard may be read (its parents are
//! finished), so there is no shard graph here: one [`Reader`], its
//! answers handed on as batches, and the end of the shard said once.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use super::offset;
use super::shard::{Event, From, Reader};
use super::{deaggregate_option, list_error, BOUND_MARGIN, TICK};
use crate::endpoint::StreamEndpoint;
use crate::error::{Error, Result};
use crate::sink::kinesis_api::{IteratorStart, KinesisApi};
use crate::sink::BoxFuture;
use crate::source::records::leased::{ListedShard, ShardEnd};
use crate::source::records::{RecordBatch, RecordSource, StartAt};

/// Every shard of the stream, with its parents and whether it is closed.
pub async fn list(ep: &StreamEndpoint) -> Result<Vec<ListedShard>> {
    let api = KinesisApi::new(ep)?;
    let listed = api.list_shards(&ep.stream).await.map_err(|e| list_error(&api, &ep.stream, e))?;
    Ok(listed
        .into_iter()
        .map(|d| ListedShard { parents: d.parent.into_iter().chain(d.adjacent_parent).collect(), closed: d.ending_sequence.is_some(), id: d.id })
        .collect())
}

/// A single shard's records.
pub struct OneShard {
    shard: String,
    rx: mpsc::Receiver<Event>,
    reader: tokio::task::JoinHandle<()>,
    end: Arc<ShardEnd>,
    position: Option<String>,
    over: bool,
}

impl Drop for OneShard {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Opens `shard` after `from` (an offset barge wrote), else at `start`.
/// `follow`: read until the shard closes; else as far as it was when the
/// run started.
pub async fn open(ep: &StreamEndpoint, shard: &str, from: Option<&str>, start: &StartAt, closed: bool, follow: bool, end: Arc<ShardEnd>) -> Result<OneShard> {
    let api = Arc::new(KinesisApi::new(ep)?);
    let from = match from {
        Some(o) => From::Saved(offset::parse(o).map_err(|why| Error::usage(format!("{}: the checkpoint of shard {shard}: {why}", api.display)))?),
        None => From::Start(match start {
            StartAt::Earliest => IteratorStart::TrimHorizon,
            StartAt::Latest => IteratorStart::Latest,
            StartAt::Timestamp(t) => IteratorStart::AtTimestamp(*t),
        }),
    };
    let (tx, rx) = mpsc::channel(4);
    let bound = (!follow).then(|| Utc::now() + BOUND_MARGIN);
    let reader = Reader { api, stream: ep.stream.clone(), shard: shard.to_string(), from, closed, bound, deaggregate: deaggregate_option(ep)?, tx };
    Ok(OneShard { shard: shard.to_string(), rx, reader: tokio::spawn(reader.run()), end, position: None, over: false })
}

impl OneShard {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.over {
            return Ok(None);
        }
        let mut batch = RecordBatch::default();
        let take = |event: Event, batch: &mut RecordBatch, me: &mut OneShard| -> Result<()> {
            match event {
                Event::Records { mut records, position, .. } => {
                    batch.records.append(&mut records);
                    me.position = Some(position);
                }
                Event::Finished { closed, .. } => {
                    me.end.reached(closed);
                    me.over = true;
                }
                Event::Failed(e) => return Err(e),
            }
            Ok(())
        };
        match tokio::time::timeout(TICK, self.rx.recv()).await {
            Ok(Some(event)) => {
                take(event, &mut batch, self)?;
                while let Ok(event) = self.rx.try_recv() {
                    take(event, &mut batch, self)?;
                }
            }
            Ok(None) => return Err(Error::other(format!("shard {}: its reader stopped unexpectedly", self.shard))),
            Err(_) => {}
        }
        if let Some(p) = &self.position {
            batch.position.insert(self.shard.clone(), p.clone());
        }
        Ok(Some(batch))
    }
}

impl RecordSource for OneShard {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(self.next_batch())
    }
}
