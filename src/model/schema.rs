//! Schemas: tables, columns, keys, indexes, views, sequences, named types and
//! the routines barge flags but does not translate.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::dialect::Dialect;
use super::types::ColumnType;

/// `schema.name`, or just `name`. Names are stored as written (unquoted, in
/// their original case); the naming policy decides the target spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QualifiedName {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: Option<&str>, name: &str) -> Self {
        QualifiedName { schema: schema.map(str::to_string), name: name.to_string() }
    }
    pub fn bare(name: &str) -> Self {
        QualifiedName { schema: None, name: name.to_string() }
    }
    /// Case-insensitive comparison of the object name, ignoring the schema
    /// when either side has none.
    pub fn loosely_eq(&self, other: &QualifiedName) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => true,
            }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// SQL text in a known dialect: an expression (default, check, index key,
/// generated column) or a query (view). It is re-parsed and rewritten for
/// the target when emitted, so the IR stays serializable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SqlText {
    pub sql: String,
    pub dialect: Dialect,
}

impl SqlText {
    pub fn new(sql: impl Into<String>, dialect: Dialect) -> Self {
        SqlText { sql: sql.into(), dialect }
    }
}

/// Where an object came from: a line in the input script, or a catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// 1-based line in the input script; 0 when introspected from a catalog.
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The dialect the schema was read from.
    pub dialect: Option<Dialect>,
    pub namespaces: Vec<String>,
    pub enums: Vec<EnumType>,
    pub domains: Vec<Domain>,
    pub sequences: Vec<Sequence>,
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    pub routines: Vec<Routine>,
    /// Indexes on materialized views (PostgreSQL): the view and the index.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub view_indexes: Vec<(QualifiedName, Index)>,
}

impl Schema {
    pub fn table(&self, name: &QualifiedName) -> Option<&Table> {
        self.tables.iter().find(|t| &t.name == name).or_else(|| self.tables.iter().find(|t| t.name.loosely_eq(name)))
    }
    pub fn table_mut(&mut self, name: &QualifiedName) -> Option<&mut Table> {
        let i = self
            .tables
            .iter()
            .position(|t| &t.name == name)
            .or_else(|| self.tables.iter().position(|t| t.name.loosely_eq(name)))?;
        Some(&mut self.tables[i])
    }
    pub fn sequence_mut(&mut self, name: &QualifiedName) -> Option<&mut Sequence> {
        self.sequences.iter_mut().find(|s| s.name.loosely_eq(name))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: QualifiedName,
    pub columns: Vec<Column>,
    pub primary_key: Option<Key>,
    pub uniques: Vec<Key>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<Check>,
    pub indexes: Vec<Index>,
    pub comment: Option<String>,
    pub options: TableOptions,
    /// PostgreSQL `INHERITS (parent, …)`: the parents whose columns this
    /// table has too (the model lists only the table's own columns).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inherits: Vec<QualifiedName>,
    /// A declarative partition (PostgreSQL `PARTITION OF`): its rows belong
    /// to the parent, which carries `options.partitioning`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partition_of: Option<PartitionOf>,
    pub origin: Origin,
}

/// Where a partition sits: its parent table and its bound, as the source
/// wrote it (`FOR VALUES FROM (…) TO (…)`, `DEFAULT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionOf {
    pub parent: QualifiedName,
    pub bound: SqlText,
}

impl Table {
    pub fn new(name: QualifiedName) -> Self {
        Table {
            name,
            columns: Vec::new(),
            primary_key: None,
            uniques: Vec::new(),
            foreign_keys: Vec::new(),
            checks: Vec::new(),
            indexes: Vec::new(),
            comment: None,
            options: TableOptions::default(),
            inherits: Vec::new(),
            partition_of: None,
            origin: Origin::default(),
        }
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name).or_else(|| self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
    }
    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        let i = self
            .columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)))?;
        Some(&mut self.columns[i])
    }
    /// The columns that identify a row: the primary key, else the first
    /// unique key over NOT NULL columns, else every column.
    pub fn identity_columns(&self) -> Vec<String> {
        if let Some(pk) = &self.primary_key {
            return pk.columns.clone();
        }
        for u in &self.uniques {
            if u.columns.iter().all(|c| self.column(c).is_some_and(|c| !c.nullable)) {
                return u.columns.clone();
            }
        }
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub charset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collation: Option<String>,
    /// The source's partitioning clause, kept as text; not converted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partitioning: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub without_rowid: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auto_increment_start: Option<i128>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    /// The type exactly as the source spelled it, e.g. `tinyint(1) unsigned`.
    /// Type-mapping rules match on this.
    pub source_type: String,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
    pub identity: Option<Identity>,
    /// MySQL `ON UPDATE CURRENT_TIMESTAMP[(p)]`.
    pub on_update_current_timestamp: bool,
    pub generated: Option<Generated>,
    pub comment: Option<String>,
    pub origin: Origin,
}

impl Column {
    pub fn new(name: &str, ty: ColumnType, source_type: &str) -> Self {
        Column {
            name: name.to_string(),
            ty,
            source_type: source_type.to_string(),
            nullable: true,
            default: None,
            identity: None,
            on_update_current_timestamp: false,
            generated: None,
            comment: None,
            origin: Origin::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum DefaultValue {
    Null,
    /// A number, written as in SQL (never parsed into a float).
    Number(String),
    String(String),
    Bool(bool),
    /// A binary literal, as hex digits.
    Bytes(String),
    /// A bit-string literal (`b'0101'`, `B'0101'`), as its binary digits.
    Bits(String),
    /// CURRENT_TIMESTAMP, NOW(), SYSDATE, GETDATE() and friends.
    CurrentTimestamp { precision: Option<u8> },
    CurrentDate,
    CurrentTime,
    /// `nextval('seq')` and the like.
    Sequence(QualifiedName),
    /// Anything else: an expression in the source dialect.
    Expression(SqlText),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub start: Option<i128>,
    pub increment: Option<i128>,
    /// The backing sequence's name, when the source names it.
    pub sequence: Option<QualifiedName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// MySQL AUTO_INCREMENT, SQLite AUTOINCREMENT / INTEGER PRIMARY KEY.
    AutoIncrement,
    /// PostgreSQL serial / bigserial.
    Serial,
    /// `GENERATED ALWAYS AS IDENTITY`.
    Always,
    /// `GENERATED BY DEFAULT [ON NULL] AS IDENTITY`, MSSQL IDENTITY(s,i).
    ByDefault,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub expr: SqlText,
    pub stored: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub ref_table: QualifiedName,
    pub ref_columns: Vec<String>,
    pub on_delete: Option<RefAction>,
    pub on_update: Option<RefAction>,
    pub deferrable: bool,
    pub initially_deferred: bool,
    /// False for Oracle `ENABLE NOVALIDATE` / MSSQL `WITH NOCHECK`: existing
    /// rows were never checked, so they may violate it.
    pub validated: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl RefAction {
    pub fn sql(self) -> &'static str {
        match self {
            RefAction::NoAction => "NO ACTION",
            RefAction::Restrict => "RESTRICT",
            RefAction::Cascade => "CASCADE",
            RefAction::SetNull => "SET NULL",
            RefAction::SetDefault => "SET DEFAULT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: Option<String>,
    pub expr: SqlText,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: Option<String>,
    pub unique: bool,
    pub parts: Vec<IndexPart>,
    /// Partial index condition.
    pub predicate: Option<SqlText>,
    pub method: IndexMethod,
    /// Non-key columns carried in the index (`INCLUDE`).
    pub include: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexPart {
    pub key: IndexKey,
    /// MySQL prefix length: `KEY (name(10))`.
    pub prefix_len: Option<u32>,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum IndexKey {
    Column(String),
    Expression(SqlText),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IndexMethod {
    #[default]
    Default,
    Btree,
    Hash,
    Gin,
    Gist,
    Brin,
    Fulltext,
    Spatial,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub name: QualifiedName,
    pub columns: Vec<String>,
    pub query: SqlText,
    pub materialized: bool,
    pub comment: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: QualifiedName,
    pub start: Option<i128>,
    pub increment: Option<i128>,
    pub min: Option<i128>,
    pub max: Option<i128>,
    pub cache: Option<i128>,
    pub cycle: bool,
    /// `OWNED BY table.column`: the sequence belongs to that column.
    pub owned_by: Option<(QualifiedName, String)>,
    /// The last value the source handed out (live catalogs only), so the
    /// target's sequence can be moved past it after the load.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_value: Option<i128>,
    pub origin: Origin,
}

impl Sequence {
    pub fn new(name: QualifiedName) -> Self {
        Sequence { name, start: None, increment: None, min: None, max: None, cache: None, cycle: false, owned_by: None, last_value: None, origin: Origin::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumType {
    pub name: QualifiedName,
    pub values: Vec<String>,
    pub origin: Origin,
}

/// A PostgreSQL domain: a named base type with constraints. Columns of a
/// domain type are resolved to the base type on targets without domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub name: QualifiedName,
    pub base: ColumnType,
    pub source_type: String,
    pub not_null: bool,
    pub default: Option<DefaultValue>,
    pub checks: Vec<SqlText>,
    pub origin: Origin,
}

/// Procedural objects barge does not translate: always flagged for manual
/// work, with the source kept so nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routine {
    pub kind: RoutineKind,
    pub name: QualifiedName,
    /// The table a trigger fires on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<QualifiedName>,
    /// The complete definition in the source dialect (`CREATE …`), as the
    /// source's own catalog or script gives it.
    pub source: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RoutineKind {
    Procedure,
    Function,
    Trigger,
    Event,
    Package,
    /// A PostgreSQL rule (`CREATE RULE … ON … DO INSTEAD …`), not a view's.
    Rule,
    Other,
}

impl RoutineKind {
    pub fn label(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "procedure",
            RoutineKind::Function => "function",
            RoutineKind::Trigger => "trigger",
            RoutineKind::Event => "event",
            RoutineKind::Package => "package",
            RoutineKind::Rule => "rule",
            RoutineKind::Other => "routine",
        }
    }
}
