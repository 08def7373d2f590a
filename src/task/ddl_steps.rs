//! DDL on a migration's target, one statement per object. Each step runs
//! on its own, so a statement the target refuses becomes an item for a
//! person (with the server's words) instead of aborting the schema, and
//! each outcome is kept in the state directory (`objects.json`) so a
//! resumed run still counts what an earlier attempt created.
//!
//! A step that finds its object already there (a run killed after the
//! server finished an `ALTER TABLE … ADD PRIMARY KEY` but before the step
//! was recorded) looks in the target's catalog: the same definition is
//! kept, another one is dropped and built again. Ctrl-C cancels the
//! statement on the server (`pg_cancel_backend` through the cancel token,
//! `KILL QUERY` on MySQL) and stops the run with exit code 130; the next
//! run starts again at that step.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema, Table};

/// What a step makes, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Extension,
    Schema,
    Enum,
    Domain,
    Sequence,
    Table,
    Partition,
    PrimaryKey,
    UniqueKey,
    Index,
    ForeignKey,
    Routine,
    View,
    MaterializedView,
    Trigger,
    /// A PostgreSQL rule.
    Rule,
    Comment,
    /// A trigger barge writes (MySQL's ON UPDATE CURRENT_TIMESTAMP elsewhere).
    GeneratedTrigger,
    /// Moving an identity or sequence past the loaded data.
    Counter,
    /// A session setting or ANALYZE: not an object.
    Setting,
}

impl Kind {
    /// Plural label for summaries.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Extension => "extensions",
            Kind::Schema => "schemas",
            Kind::Enum => "enum types",
            Kind::Domain => "domains",
            Kind::Sequence => "sequences",
            Kind::Table => "tables",
            Kind::Partition => "partitions",
            Kind::PrimaryKey => "primary keys",
            Kind::UniqueKey => "unique keys",
            Kind::Index => "indexes",
            Kind::ForeignKey => "foreign keys",
            Kind::Routine => "routines",
            Kind::View => "views",
            Kind::MaterializedView => "materialized views",
            Kind::Trigger => "triggers",
            Kind::Rule => "rules",
            Kind::Comment => "comments",
            Kind::GeneratedTrigger => "on-update triggers",
            Kind::Counter => "counters",
            Kind::Setting => "settings",
        }
    }

    /// Singular label for item lists.
    pub fn one(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Schema => "schema",
            Kind::Enum => "enum type",
            Kind::Domain => "domain",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::Partition => "partition",
            Kind::PrimaryKey => "primary key",
            Kind::UniqueKey => "unique key",
            Kind::Index => "index",
            Kind::ForeignKey => "foreign key",
            Kind::Routine => "routine",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Trigger => "trigger",
            Kind::Rule => "rule",
            Kind::Comment => "comment",
            Kind::GeneratedTrigger => "on-update trigger",
            Kind::Counter => "counter",
            Kind::Setting => "setting",
        }
    }
}

/// How to recognize a step's object in the target's catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// No catalog check: "already exists" is a refusal.
    None,
    /// The statement replaces or skips by itself (OR REPLACE, IF NOT
    /// EXISTS, DROP … IF EXISTS first); "already exists" means done.
    Idempotent,
    PrimaryKey { table: Vec<String>, columns: Vec<String> },
    Unique { table: Vec<String>, name: String, columns: Vec<String> },
    ForeignKey { table: Vec<String>, name: String, columns: Vec<String> },
    Index { table: Vec<String>, name: String, columns: Vec<String> },
}

/// One statement that makes one object.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: Kind,
    /// The object, as the source names it.
    pub object: String,
    pub sql: String,
    /// Run first (DROP … IF EXISTS), so the step replaces what a killed
    /// run may have left.
    pub before: Option<String>,
    /// The target table (quoted name) the step belongs to: skipped when
    /// that table could not be created.
    pub table: Option<String>,
    /// Other target tables it needs (a foreign key's referenced table).
    pub needs: Vec<String>,
    pub probe: Probe,
    /// The source text, for an object a person may have to redo.
    pub source: Option<String>,
}

impl Step {
    pub fn new(kind: Kind, object: impl Into<String>, sql: impl Into<String>) -> Step {
        Step { kind, object: object.into(), sql: sql.into(), before: None, table: None, needs: Vec::new(), probe: Probe::None, source: None }
    }
    pub fn on(mut self, table: &str) -> Step {
        self.table = Some(table.to_string());
        self
    }
    pub fn probe(mut self, p: Probe) -> Step {
        self.probe = p;
        self
    }
    pub fn before(mut self, sql: impl Into<String>) -> Step {
        self.before = Some(sql.into());
        self
    }
    pub fn source(mut self, s: impl Into<String>) -> Step {
        self.source = Some(s.into());
        self
    }
}

/// What became of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Done {
    Created,
    /// Already on the target with the same definition (an earlier attempt).
    Present,
    /// Was on the target with another definition: dropped and built again.
    Replaced,
    /// The target refused the statement.
    Refused { message: String },
    /// Not attempted: something it needs is missing.
    Skipped { reason: String },
    /// A table that already existed and is left as it is
    /// (`--target-schema skip`): neither made nor missing.
    Kept,
}

impl Done {
    pub fn made(&self) -> bool {
        matches!(self, Done::Created | Done::Present | Done::Replaced)
    }
}

/// The outcome of every step of a run, by step id, in `objects.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub steps: BTreeMap<String, Record>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    pub object: String,
    #[serde(flatten)]
    pub done: Done,
    /// The refusal says "does not exist": worth another try once the rest
    /// is there (a view on a view, a comment on a view).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing_dependency: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Ledger {
    pub const FILE: &'static str = "objects.json";

    /// A fresh ledger for a new run in `dir`, or the one a resumed run left.
    pub fn open(dir: &Path, resumed: bool) -> Result<Ledger> {
        let path = dir.join(Self::FILE);
        let mut l = if resumed {
            match std::fs::read(&path) {
                Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
                Err(_) => Ledger::default(),
            }
        } else {
            Ledger::default()
        };
        l.path = Some(path);
        Ok(l)
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.steps.get(id)
    }

    pub fn record(&mut self, id: &str, step: &Step, done: Done, missing_dependency: bool) -> Result<()> {
        self.note(id, step, done, missing_dependency);
        self.save()
    }

    /// Records an outcome without writing the ledger: for a batch, written
    /// once with [`Ledger::save`].
    pub fn note(&mut self, id: &str, step: &Step, done: Done, missing_dependency: bool) {
        let source = (!done.made()).then(|| step.source.clone()).flatten();
        self.steps.insert(id.to_string(), Record { kind: step.kind, object: step.object.clone(), done, missing_dependency, source });
    }

    pub fn save(&self) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::other(e.to_string()))?;
        super::state::write_durably(p, &body)
    }

    /// Objects made, per kind.
    pub fn made(&self) -> BTreeMap<Kind, usize> {
        let mut out = BTreeMap::new();
        for r in self.steps.values().filter(|r| r.done.made()) {
            *out.entry(r.kind).or_default() += 1;
        }
        out
    }

    /// Steps that did not make their object, in step order.
    pub fn failures(&self) -> Vec<&Record> {
        let mut v: Vec<(&String, &Record)> = self.steps.iter().filter(|(_, r)| !r.done.made() && r.done != Done::Kept && r.kind != Kind::Setting).collect();
        v.sort_by_key(|(id, _)| step_order(id));
        v.into_iter().map(|(_, r)| r).collect()
    }
}

/// `schema:3` / `post:12` → sortable.
fn step_order(id: &str) -> (u8, usize) {
    let (phase, n) = id.split_once(':').unwrap_or((id, "0"));
    (if phase == "schema" { 0 } else { 1 }, n.parse().unwrap_or(0))
}

/// Runs steps on one target connection.
pub struct Runner<'a> {
    conn: &'a mut Db,
    dst: Endpoint,
    cancel: crate::db::Canceller,
    interrupt: Pin<Box<dyn Future<Output = ()> + Send>>,
    catalog: Option<Schema>,
}

impl<'a> Runner<'a> {
    pub async fn new(conn: &'a mut Db, dst: &Endpoint) -> Runner<'a> {
        let cancel = conn.canceller().await;
        Runner { conn, dst: dst.clone(), cancel, interrupt: Box::pin(crate::util::interrupt::requested()), catalog: None }
    }

    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Runs one statement, stopping it on Ctrl-C.
    async fn exec(&mut self, sql: &str) -> Result<()> {
        let Runner { conn, dst, cancel, interrupt, .. } = self;
        let run = conn.execute(sql);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            _ = interrupt.as_mut() => {
                tracing::warn!("interrupted: cancelling the statement running on the target");
                cancel.cancel(dst).await;
                // The server answers the cancelled statement with an error;
                // wait for it, so nothing of it runs on after we exit.
                let _ = tokio::time::timeout(Duration::from_secs(10), &mut run).await;
                Err(Error::Interrupted)
            }
        }
    }

    /// Runs a step. An error is returned only for what must stop the run
    /// (Ctrl-C, a lost connection); anything the target refuses is a
    /// [`Done::Refused`] carrying the server's message.
    pub async fn run(&mut self, step: &Step) -> Result<(Done, bool)> {
        if let Some(b) = &step.before {
            if let Err(e) = self.exec(b).await {
                return self.failed(step, e).await;
            }
        }
        match self.exec(&step.sql).await {
            Ok(()) => Ok((Done::Created, false)),
            Err(e) => self.failed(step, e).await,
        }
    }

    async fn failed(&mut self, step: &Step, e: Error) -> Result<(Done, bool)> {
        if matches!(e, Error::Interrupted) || is_connection_lost(&e) {
            return Err(e);
        }
        let message = server_message(&e);
        if !is_already_there(&message) {
            let missing = is_missing_dependency(&message);
            return Ok((Done::Refused { message }, missing));
        }
        match &step.probe {
            Probe::Idempotent => Ok((Done::Present, false)),
            Probe::None => Ok((Done::Refused { message }, false)),
            probe => match self.compare(probe).await? {
                Some(true) => Ok((Done::Present, false)),
                Some(false) => {
                    let Some(drop) = self.drop_sql(probe) else {
                        return Ok((Done::Refused { message: format!("{message} (an object of that name is on the target with another definition)") }, false));
                    };
                    if let Err(e) = self.exec(&drop).await {
                        if matches!(e, Error::Interrupted) || is_connection_lost(&e) {
                            return Err(e);
                        }
                        return Ok((Done::Refused { message: format!("{message}; replacing it failed: {}", server_message(&e)) }, false));
                    }
                    self.catalog = None;
                    match self.exec(&step.sql).await {
                        Ok(()) => Ok((Done::Replaced, false)),
                        Err(e) if matches!(e, Error::Interrupted) || is_connection_lost(&e) => Err(e),
                        Err(e) => Ok((Done::Refused { message: server_message(&e) }, false)),
                    }
                }
                None => Ok((Done::Refused { message }, false)),
            },
        }
    }

    /// Whether the probed object is on the target with our definition
    /// (`None`: not found, so the error meant something else).
    async fn compare(&mut self, probe: &Probe) -> Result<Option<bool>> {
        for attempt in 0..2 {
            if self.catalog.is_none() || attempt == 1 {
                self.catalog = Some(self.conn.introspect().await?);
            }
            let catalog = self.catalog.as_ref().expect("read above");
            let found = match probe {
                Probe::PrimaryKey { table, columns } => find_table(catalog, table).and_then(|t| t.primary_key.as_ref()).map(|k| same_columns(&k.columns, columns)),
                Probe::Unique { table, name, columns } => find_table(catalog, table).and_then(|t| {
                    t.uniques.iter().find(|u| u.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))).map(|u| same_columns(&u.columns, columns))
                }),
                Probe::ForeignKey { table, name, columns } => find_table(catalog, table).and_then(|t| {
                    t.foreign_keys.iter().find(|f| f.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))).map(|f| same_columns(&f.columns, columns))
                }),
                Probe::Index { table, name, columns } => find_table(catalog, table).and_then(|t| {
                    let named = |n: &Option<String>| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name));
                    t.indexes
                        .iter()
                        .find(|i| named(&i.name))
                        .map(|i| {
                            let cols: Vec<String> = i.parts.iter().filter_map(|p| match &p.key {
                                crate::model::IndexKey::Column(c) => Some(c.clone()),
                                crate::model::IndexKey::Expression(_) => None,
                            }).collect();
                            // An expression index: its name is all we compare.
                            cols.is_empty() || columns.is_empty() || same_columns(&cols, columns)
                        })
                        .or_else(|| t.uniques.iter().find(|u| named(&u.name)).map(|u| same_columns(&u.columns, columns)))
                }),
                Probe::None | Probe::Idempotent => None,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The statement that removes the probed object.
    fn drop_sql(&self, probe: &Probe) -> Option<String> {
        let d = self.dialect();
        let q = |parts: &[String]| parts.iter().map(|p| crate::schema::naming::quote_ident(d, p)).collect::<Vec<_>>().join(".");
        let catalog = self.catalog.as_ref()?;
        Some(match (probe, d) {
            (Probe::PrimaryKey { table, .. }, Dialect::Postgres) => {
                let name = find_table(catalog, table)?.primary_key.as_ref()?.name.clone()?;
                format!("ALTER TABLE {} DROP CONSTRAINT {}", q(table), crate::schema::naming::quote_ident(d, &name))
            }
            (Probe::PrimaryKey { table, .. }, Dialect::Mysql) => format!("ALTER TABLE {} DROP PRIMARY KEY", q(table)),
            (Probe::Unique { table, name, .. } | Probe::ForeignKey { table, name, .. }, Dialect::Postgres) => {
                format!("ALTER TABLE {} DROP CONSTRAINT {}", q(table), crate::schema::naming::quote_ident(d, name))
            }
            (Probe::ForeignKey { table, name, .. }, Dialect::Mysql) => format!("ALTER TABLE {} DROP FOREIGN KEY {}", q(table), crate::schema::naming::quote_ident(d, name)),
            (Probe::Unique { table, name, .. } | Probe::Index { table, name, .. }, Dialect::Mysql) => {
                format!("DROP INDEX {} ON {}", crate::schema::naming::quote_ident(d, name), q(table))
            }
            (Probe::Index { table, name, .. }, _) => {
                let mut parts = table.clone();
                parts.pop();
                parts.push(name.clone());
                format!("DROP INDEX {}", q(&parts))
            }
            _ => return None,
        })
    }

    /// Runs a statement whose failure does not matter (ANALYZE), still
    /// stopping on Ctrl-C.
    pub async fn best_effort(&mut self, sql: &str) -> Result<()> {
        match self.exec(sql).await {
            Err(Error::Interrupted) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }
}

fn find_table<'s>(catalog: &'s Schema, parts: &[String]) -> Option<&'s Table> {
    let name = parts.last()?;
    let schema = (parts.len() > 1).then(|| parts[0].as_str());
    catalog.tables.iter().find(|t| {
        t.name.name == *name
            && match (&t.name.schema, schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    })
}

fn same_columns(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The server's own words, without barge's "statement: …" tail.
pub fn server_message(e: &Error) -> String {
    let text = match e {
        Error::Endpoint { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let first = text.split("\n  statement:").next().unwrap_or(&text);
    first.trim().to_string()
}

fn is_already_there(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already exists")
        || m.contains("multiple primary keys")
        || m.contains("multiple primary key defined")
        || m.contains("duplicate key name")
        || m.contains("duplicate foreign key constraint name")
        || m.contains("duplicate key on write or update")
        || (m.contains("errno: 121") && m.contains("foreign key"))
}

/// The statement needs an object that is not there (yet).
fn is_missing_dependency(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("doesn't exist") || m.contains("no such table") || m.contains("no such view") || m.contains("no such function")
}

/// A failure of the connection, not of the statement: the run stops (and
/// resumes here) rather than blaming the object.
pub fn is_connection_lost(e: &Error) -> bool {
    e.is_retriable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        assert!(is_already_there("multiple primary keys for table \"t\" are not allowed (42P16)"));
        assert!(is_already_there("statement failed: `…`: ERROR 1061 (42000): Duplicate key name 'ix'"));
        assert!(is_already_there("relation \"ix\" already exists (42P07)"));
        assert!(!is_already_there("column \"x\" does not exist"));
        assert!(is_missing_dependency("relation \"public.v1\" does not exist (42P01)"));
        assert!(is_missing_dependency("ERROR 1146 (42S02): Table 'db.v1' doesn't exist"));
    }

    #[test]
    fn ledger_counts_and_orders() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path(), false).unwrap();
        let s = Step::new(Kind::Index, "t.ix", "CREATE INDEX ix ON t (a)");
        l.record("post:10", &s, Done::Created, false).unwrap();
        l.record("post:2", &Step::new(Kind::View, "v", "CREATE VIEW v AS SELECT 1").source("CREATE VIEW v …"), Done::Refused { message: "no".into() }, false).unwrap();
        l.record("schema:5", &Step::new(Kind::Table, "t", "CREATE TABLE t (a int)"), Done::Present, false).unwrap();
        let back = Ledger::open(dir.path(), true).unwrap();
        assert_eq!(back.made()[&Kind::Index], 1);
        assert_eq!(back.made()[&Kind::Table], 1);
        assert_eq!(back.failures().len(), 1);
        assert_eq!(back.failures()[0].source.as_deref(), Some("CREATE VIEW v …"));
        assert!(Ledger::open(dir.path(), false).unwrap().steps.is_empty(), "a new run starts empty");
    }
}
