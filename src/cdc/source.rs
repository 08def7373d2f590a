//! What every change source offers the replication loop: whole committed
//! transactions in commit order, and "nothing pending up to here" marks
//! that let an idle source's position move on.

use chrono::{DateTime, Utc};

use super::destination::BoxFuture;
use crate::error::Result;
use crate::model::{Change, Position, QualifiedName};

/// One committed source transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub changes: Vec<Change>,
    /// Where the source resumes after this transaction.
    pub position: Position,
    pub commit_time: Option<DateTime<Utc>>,
    /// Approximate size of the decoded changes, for batching and lag.
    pub bytes: usize,
}

#[derive(Debug, Clone)]
pub enum SourceEvent {
    Transaction(Transaction),
    /// Every change up to `position` has been delivered; acknowledging it
    /// lets the source release its log even when no captured table changes.
    Idle { position: Position, lag_bytes: Option<u64> },
    /// A captured table's definition changed at the source in a way barge
    /// cannot carry over; its changes stop from here.
    SchemaChanged { table: QualifiedName, message: String },
}

pub trait ChangeSource: Send {
    /// The next event; `Ok(None)` when the source has nothing more to give
    /// (a bounded read reached its end).
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>>;

    /// Everything up to `position` is durable at the destination; the
    /// source may release it.
    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>>;

    /// Whether dropping a pending `next` loses nothing (its state lives in
    /// the source), so acknowledgements can be taken while it waits; a
    /// server waiting for one (PostgreSQL at shutdown) is not kept waiting.
    fn next_is_cancel_safe(&self) -> bool {
        false
    }

    /// How far behind the source's newest change the stream is, in bytes
    /// of log, where the source can tell.
    fn lag_bytes(&self) -> Option<u64> {
        None
    }
}
