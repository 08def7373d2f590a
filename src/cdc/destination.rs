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

/// Indexes into `t.columns` of its primary key (empty without one).
pub fn key_indexes(t: &Table) -> Vec<usize> {
    t.primary_key.as_ref().map(|k| k.columns.iter().filter_map(|c| t.columns.iter().position(|x| x.name.eq_ignore_ascii_case(c))).collect()).unwrap_or_default()
}

/// A table's definition changed at the source, at a place in the stream
/// where every earlier change has been applied.
#[derive(Debug, Clone)]
pub struct TableChange {
    /// `None`: the table is new (created at the source).
    pub old: Option<TableInfo>,
    pub new: TableInfo,
    /// What changed in the columns (empty for a new table).
    pub changes: Vec<super::evolve::ColumnChange>,
    /// For a new table: the statements that create it.
    pub create: Vec<String>,
}

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

    /// Makes the destination follow a table's new definition: a database
    /// alters (or creates) the table; files and streams write what they
    /// hold first, so no file mixes two layouts, and then write the new
    /// columns.
    fn change_schema<'a>(&'a mut self, change: &'a TableChange) -> BoxFuture<'a, Result<()>> {
        let _ = change;
        self.flush()
    }

    /// The target table's column names now (`None`: it does not exist),
    /// where the destination has tables.
    fn table_columns<'a>(&'a mut self, table: &'a TargetTable) -> BoxFuture<'a, Result<Option<Vec<String>>>> {
        let _ = table;
        Box::pin(async { Ok(None) })
    }

    /// Whether the destination has tables of its own (a database).
    fn has_tables(&self) -> bool {
        false
    }

    /// The database destination, for copying whole tables into it.
    fn as_db(&mut self) -> Option<&mut super::apply::DbDestination> {
        None
    }

    /// Whether `apply` can return before the changes are durable; the
    /// source is then only told [`Destination::committed`]'s position.
    fn buffers(&self) -> bool {
        false
    }
}
