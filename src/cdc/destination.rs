//! What every destination of changes offers (a database, object storage,
//! a stream): apply a batch durably, and say how far it has got. The
//! source position only moves after `apply` returns, so a crash never
//! loses a change; destinations without transactions deliver at least once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::error::Result;
use crate::model::{ChangeBatch, Position, QualifiedName, Table};
use crate::schema::target::TargetTable;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source table and where and how it lands.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The source table (columns in source order, as values arrive).
    pub source: Table,
    /// The target's names and types (for databases: the created table;
    /// for files and streams: the column names and types to write).
    pub target: TargetTable,
    /// Indexes into `source.columns` of the identity (key) columns.
    pub key: Vec<usize>,
    /// The mapping's row filter: changes to rows outside it are not
    /// written (see [`crate::task::row_filter`]).
    pub filter: Option<std::sync::Arc<crate::task::row_filter::RowFilter>>,
}

/// Tables by source name.
pub type Tables = HashMap<QualifiedName, TableInfo>;

pub trait Destination: Send {
    /// Makes `batch` durable. When it returns Ok, every change is stored
    /// (or acknowledged by the stream) and `batch.position` may be given
    /// back to the source.
    fn apply<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>>;

    /// The position of the last batch made durable, if the destination
    /// records it (databases keep it in the same transaction as the data).
    /// A destination that buffers (object storage writes files by size or
    /// interval) returns from `apply` before the changes are durable; the
    /// source then advances only to this position, never to the batch's.
    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>>;

    /// Flushes anything buffered (files waiting for their size or interval).
    fn flush<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Called about once a second while changes are few or none: writes
    /// buffers whose interval has passed.
    fn tick<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether `apply` can return before the changes are durable; the
    /// source is then only told [`Destination::committed`]'s position.
    fn buffers(&self) -> bool {
        false
    }
}
