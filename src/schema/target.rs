//! The converted schema, ready to print: every name decided, every type
//! mapped, every expression already rewritten for the target. `migrate`
//! uses the same structure to create target tables in phases and to know
//! how each source column lands.

use serde::Serialize;

use super::report::ObjectKind;
use crate::model::{ColumnType, Dialect, Identity, QualifiedName};

/// A report object: its kind and the name the report gives it.
pub type ObjectRef = (ObjectKind, String);

#[derive(Debug, Clone, Serialize)]
pub struct TargetSchema {
    pub target: Dialect,
    pub schemas: Vec<String>,
    pub enums: Vec<TargetEnum>,
    pub sequences: Vec<TargetSequence>,
    pub tables: Vec<TargetTable>,
    pub indexes: Vec<TargetIndex>,
    pub foreign_keys: Vec<TargetForeignKey>,
    /// Complete statements (functions and triggers barge generates).
    pub triggers: Vec<String>,
    /// For each of `triggers`, the report objects it serves.
    pub trigger_owners: Vec<Vec<ObjectRef>>,
    pub views: Vec<TargetView>,
    /// Complete COMMENT statements (PostgreSQL).
    pub comments: Vec<String>,
    /// For each of `comments`, the report object it documents.
    pub comment_owners: Vec<ObjectRef>,
    /// Source text that could not be converted, emitted as comments.
    pub manual: Vec<ManualSection>,
    /// Statements (by index in [`super::ddl::emitted`] order) the target
    /// refused when checked, with the server's message: printed as
    /// comments, not as SQL.
    pub refused: Vec<(usize, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetEnum {
    /// Quoted, qualified name.
    pub name: String,
    pub values: Vec<String>,
    /// The named type or the column it was made for.
    pub object: ObjectRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetSequence {
    pub name: String,
    /// The source sequence, as the report names it.
    pub object: String,
    pub start: Option<i128>,
    pub increment: Option<i128>,
    pub min: Option<i128>,
    pub max: Option<i128>,
    pub cache: Option<i128>,
    pub cycle: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetTable {
    pub source: QualifiedName,
    /// Unquoted name parts (`[schema,] table`).
    pub name: Vec<String>,
    /// Quoted, qualified name.
    pub sql_name: String,
    pub columns: Vec<TargetColumn>,
    pub primary_key: Option<TargetKey>,
    pub uniques: Vec<TargetKey>,
    /// Rendered check expressions.
    pub checks: Vec<(Option<String>, String)>,
    /// FKs written inside CREATE TABLE (SQLite cannot add them later).
    pub inline_foreign_keys: Vec<TargetForeignKey>,
    pub comment: Option<String>,
    pub auto_increment_start: Option<i128>,
    pub without_rowid: bool,
    /// MySQL table options kept when the source is MySQL.
    pub engine: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// The partitioning clause, in the target's syntax (PostgreSQL
    /// `PARTITION BY RANGE (…)`, MySQL `PARTITION BY RANGE COLUMNS(…) (…)`).
    pub partition_by: Option<String>,
    /// A PostgreSQL partition: the quoted parent and the bound as written
    /// (`FOR VALUES FROM (…) TO (…)`, `DEFAULT`), attached after creation.
    pub partition_of: Option<(String, String)>,
    /// PostgreSQL `INHERITS`: quoted parents.
    pub inherits: Vec<String>,
}

impl TargetTable {
    /// A table known by name only (no columns or keys planned): how files
    /// and streams, which create nothing, describe where a table lands.
    pub fn named(source: QualifiedName, name: Vec<String>) -> Self {
        TargetTable {
            source,
            sql_name: name.join("."),
            name,
            columns: Vec::new(),
            primary_key: None,
            uniques: Vec::new(),
            checks: Vec::new(),
            inline_foreign_keys: Vec::new(),
            comment: None,
            auto_increment_start: None,
            without_rowid: false,
            engine: None,
            charset: None,
            collation: None,
            partition_by: None,
            partition_of: None,
            inherits: Vec::new(),
        }
    }

    pub fn column_by_source(&self, name: &str) -> Option<&TargetColumn> {
        self.columns.iter().find(|c| c.source == name).or_else(|| self.columns.iter().find(|c| c.source.eq_ignore_ascii_case(name)))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetKey {
    pub name: Option<String>,
    /// Unquoted target column names.
    pub columns: Vec<String>,
    /// MySQL prefix lengths added for text columns (parallel to columns).
    pub prefix: Vec<Option<u32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetColumn {
    /// The source column name.
    pub source: String,
    pub name: String,
    pub ty: ColumnType,
    pub source_ty: ColumnType,
    /// The type as the target spells it.
    pub sql_type: String,
    pub nullable: bool,
    pub default_sql: Option<String>,
    pub identity: Option<Identity>,
    /// SQLite `INTEGER PRIMARY KEY [AUTOINCREMENT]` written on the column.
    pub inline_primary_key: bool,
    /// Rendered expression and STORED flag.
    pub generated: Option<(String, bool)>,
    pub on_update_current_timestamp: bool,
    pub comment: Option<String>,
    /// Enum/set values enforced with a CHECK on targets without enums.
    pub check_values: Option<Vec<String>>,
    /// Zero dates (MySQL `0000-00-00`) load as NULL.
    pub zero_dates_to_null: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetIndex {
    pub table: String,
    pub name: String,
    pub unique: bool,
    /// Rendered key parts (quoted column, prefix, DESC, or an expression).
    pub parts: Vec<String>,
    pub method: Option<String>,
    pub predicate: Option<String>,
    pub include: Vec<String>,
    /// `FULLTEXT` / `SPATIAL` on MySQL.
    pub kind: Option<String>,
    /// The source index, as the report names it.
    pub object: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetForeignKey {
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_delete: Option<String>,
    pub on_update: Option<String>,
    pub deferrable: bool,
    pub initially_deferred: bool,
    pub not_valid: bool,
    /// The source foreign key, as the report names it.
    pub object: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub name: String,
    pub columns: Vec<String>,
    pub query: String,
    pub materialized: bool,
    /// The source view, as the report names it.
    pub object: String,
    /// Indexes of a materialized view, created right after it.
    pub indexes: Vec<TargetIndex>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManualSection {
    pub line: usize,
    pub title: String,
    pub text: String,
}
