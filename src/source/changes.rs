//! What every change source offers the replication loop: whole committed
//! transactions in commit order, and "nothing pending up to here" marks
//! that let an idle source's position move on.

use chrono::{DateTime, Utc};

use crate::sink::BoxFuture;
use crate::error::Result;
use crate::model::{Change, Position, QualifiedName, Table};

/// One committed source transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub changes: Vec<Change>,
    /// Where the source resumes after this transaction.
    pub position: Position,
    pub commit_time: Option<DateTime<Utc>>,
    /// Approximate size of the decoded changes, for batching and lag.
    pub bytes: usize,
    /// The first part of a source transaction, cut where a table's
    /// definition changed inside it (PostgreSQL: a Relation message after
    /// some of its changes). The rest follows after the schema event; no
    /// position is saved after this part (`position` only orders it: it
    /// lies after every earlier transaction and before this one's end).
    pub partial: bool,
}

#[derive(Debug, Clone)]
pub enum SourceEvent {
    Transaction(Transaction),
    /// Every change up to `position` has been delivered; acknowledging it
    /// lets the source release its log even when no captured table changes.
    Idle { position: Position, lag_bytes: Option<u64> },
    /// A table's definition changed at this point of the stream: every
    /// change delivered before it has the old layout, every one after it
    /// the new one. The loop applies what came before, then the change.
    Schema(Box<SchemaEvent>),
}

#[derive(Debug, Clone)]
pub struct SchemaEvent {
    pub table: QualifiedName,
    pub change: SchemaChange,
    /// Where the source resumes after the DDL, when it is an event of its
    /// own (MySQL's query event); `None` inside a transaction (a
    /// PostgreSQL Relation message precedes the changes that use it).
    pub position: Option<Position>,
    /// The start of the commit record of the transaction it arrived in
    /// (PostgreSQL): a copy whose consistent point is past it holds it.
    pub commit_lsn: Option<u64>,
}

impl SchemaEvent {
    /// Whether a copy of the table taken at `copied_at` already reflects
    /// this change (it then needs nothing more).
    pub fn in_copy(&self, copied_at: &Position) -> bool {
        match (self.commit_lsn, &self.position, copied_at) {
            (Some(lsn), _, Position::PgLsn { lsn: cp }) => lsn < *cp,
            (_, Some(p), cp) => p <= cp,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum SchemaChange {
    /// The table's columns from here on (the source decodes later rows
    /// with this model); `renames` are (old, new) column names the source
    /// knows were renamed rather than dropped and added.
    Columns { table: Table, renames: Vec<(String, String)>, statement: Option<String> },
    /// A table created at the source.
    Created { table: Table, statement: String },
    /// A change barge does not carry over: the table stops.
    Unsupported { message: String },
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
