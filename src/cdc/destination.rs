//! What change capture tells a destination about its tables: each source
//! table and where and how it lands ([`TableInfo`]), and a table's
//! definition changing mid-stream ([`TableChange`]). The destination
//! itself is [`crate::sink::Destination`].

use std::collections::HashMap;

use crate::model::{QualifiedName, Table};
use crate::schema::target::TargetTable;

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
