//! The target side of a load, before and after the rows: creating (or
//! emptying) the tables from the converted schema, then building keys,
//! indexes, foreign keys and moving identity counters past the data.
//! `migrate` (full load) and `unpack` to a database both use it, so a
//! table lands the same way whichever path brought its rows.

use super::ddl_steps::{Kind, Probe, Step};
use crate::db::Db;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{DefaultValue, Dialect, Domain, QualifiedName, Schema, Table};
use crate::schema::convert::Converted;
use crate::schema::ddl;
use crate::schema::naming::{quote_ident, NamePlan};
use crate::schema::target::TargetTable;

/// What to do with the target's tables before loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaMode {
    /// Create the tables; refuse if one already exists.
    Create,
    /// Empty existing tables, then load.
    Truncate,
    /// Load into existing tables as they are.
    Append,
    /// Leave tables that already exist alone; create and load the others.
    Skip,
}

impl SchemaMode {
    /// Does this mode create tables (and so their keys and indexes)?
    pub fn creates(self) -> bool {
        matches!(self, SchemaMode::Create | SchemaMode::Skip)
    }
}

/// The dialect of a database endpoint.
pub fn target_dialect(dst: &Endpoint) -> Result<Dialect> {
    Ok(match dst {
        Endpoint::Postgres(_) => Dialect::Postgres,
        Endpoint::Mysql(_) => Dialect::Mysql,
        Endpoint::Sqlite(_) => Dialect::Sqlite,
        other => return Err(Error::NotImplemented { command: if matches!(other, Endpoint::S3(_) | Endpoint::Dir(_)) { "migrate to object storage" } else { "migrate to a stream" } }),
    })
}

/// PostgreSQL loads fastest into tables without keys: they are added
/// after the rows. Elsewhere keys are part of CREATE TABLE (SQLite cannot
/// add a primary key later).
pub fn defers_keys(target: Dialect) -> bool {
    target == Dialect::Postgres
}

pub fn is_already_exists(e: &Error) -> bool {
    let t = e.to_string().to_ascii_lowercase();
    t.contains("already exists") || t.contains("duplicate")
}

fn missing_table_hint(e: Error, table: &str) -> Error {
    match e {
        Error::Endpoint { endpoint, message, .. } if message.to_ascii_lowercase().contains("exist") => Error::Endpoint {
            endpoint,
            message,
            hint: Some(format!("{table} is not on the target: use --target-schema create (the default) to create it")),
        },
        other => other,
    }
}

/// The quoted names of `tables` that already exist on the target.
pub async fn existing_tables(conn: &mut Db, tables: &[&TargetTable]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let present = conn.introspect().await?;
    for t in tables {
        let name = crate::model::QualifiedName {
            schema: if t.name.len() > 1 { Some(t.name[0].clone()) } else { None },
            name: t.name.last().cloned().unwrap_or_default(),
        };
        let hit = present.tables.iter().any(|p| {
            p.name.name == name.name
                && match (&p.name.schema, &name.schema) {
                    (Some(a), Some(b)) => a == b,
                    (Some(a), None) => a == "public" || conn.dialect() != Dialect::Postgres,
                    _ => true,
                }
        });
        if hit {
            out.push(t.sql_name.clone());
        }
    }
    Ok(out)
}

/// Makes `tables` ready to load as `mode` says: creates them (keys
/// deferred on PostgreSQL), or empties them, or leaves them. Returns the
/// quoted names of tables that already existed and are left alone
/// (`skip`): they are not loaded.
pub async fn prepare(conn: &mut Db, dst: &Endpoint, converted: &Converted, tables: &[&TargetTable], mode: SchemaMode) -> Result<Vec<String>> {
    let target = converted.target.target;
    let existing = existing_tables(conn, tables).await?;
    let mut skipped = Vec::new();
    match mode {
        SchemaMode::Create | SchemaMode::Skip => {
            if mode == SchemaMode::Create {
                if let Some(t) = existing.first() {
                    return Err(Error::Endpoint {
                        endpoint: dst.to_string(),
                        message: format!("table {t} already exists"),
                        hint: Some("use --target-schema truncate (empty it), append (load into it) or skip (leave it), or drop it first".into()),
                    });
                }
            }
            // Prelude objects may exist from an earlier partial run.
            for stmt in &ddl::phases(&converted.target, &converted.names).prelude {
                if let Err(e) = conn.execute(stmt).await {
                    if !is_already_exists(&e) {
                        return Err(e);
                    }
                }
            }
            for t in tables {
                if existing.contains(&t.sql_name) {
                    skipped.push(t.sql_name.clone());
                    continue;
                }
                conn.execute(&ddl::create_table_sql_with(target, &converted.names, t, !defers_keys(target))).await?;
            }
        }
        SchemaMode::Truncate => {
            for t in tables {
                let sql = match target {
                    Dialect::Sqlite => format!("DELETE FROM {}", t.sql_name),
                    Dialect::Mysql => format!("TRUNCATE TABLE {}", t.sql_name),
                    _ => format!("TRUNCATE TABLE {} CASCADE", t.sql_name),
                };
                if target == Dialect::Mysql {
                    conn.execute("SET FOREIGN_KEY_CHECKS = 0").await?;
                }
                conn.execute(&sql).await.map_err(|e| missing_table_hint(e, &t.sql_name))?;
            }
        }
        SchemaMode::Append => {}
    }
    Ok(skipped)
}

/// What finishes `loaded` tables once their rows are in, in order: keys
/// (where deferred), indexes, foreign keys, triggers and comments (for
/// tables this run created), then identity counters past the data.
pub fn post_statements(converted: &Converted, loaded: &[&TargetTable], mode: SchemaMode) -> Vec<String> {
    let target = converted.target.target;
    let names = &converted.names;
    let mut post = Vec::new();
    if mode.creates() {
        if defers_keys(target) {
            for t in loaded {
                post.extend(ddl::add_keys_sql(target, names, t));
            }
        }
        let phases = ddl::phases(&converted.target, names);
        let on_loaded = |stmt: &String| {
            loaded.iter().any(|t| {
                stmt.contains(&format!(" ON {} ", t.sql_name)) || stmt.contains(&format!("ALTER TABLE {} ", t.sql_name)) || stmt.contains(&format!(" ON {}(", t.sql_name))
            })
        };
        post.extend(phases.indexes.iter().filter(|s| on_loaded(s)).cloned());
        post.extend(phases.foreign_keys.iter().filter(|s| on_loaded(s)).cloned());
        post.extend(phases.triggers.iter().cloned());
        post.extend(phases.comments.iter().cloned());
    }
    for t in loaded {
        post.extend(identity_reset(target, names, t));
    }
    post
}

/// Fresh statistics for the planner after a bulk load (PostgreSQL only;
/// a failure is not worth stopping for).
pub async fn analyze(conn: &mut Db) {
    if conn.dialect() == Dialect::Postgres {
        let _ = conn.execute("ANALYZE").await;
    }
}

/// Statements that move identity counters past the loaded rows.
fn identity_reset(target: Dialect, names: &NamePlan, t: &TargetTable) -> Vec<String> {
    let _ = names;
    let mut out = Vec::new();
    if target == Dialect::Mysql {
        // MySQL advances AUTO_INCREMENT past the loaded ids itself, but not
        // to where the source's counter stood (rows deleted, or a counter
        // moved on, at the source). Set lower than the loaded ids, InnoDB
        // takes the highest id + 1 instead.
        for c in t.columns.iter().filter(|c| c.identity.is_some()) {
            if let Some(start) = c.identity.as_ref().and_then(|i| i.start).filter(|s| *s > 1) {
                out.push(format!("ALTER TABLE {} AUTO_INCREMENT = {start};", t.sql_name));
            }
        }
        return out;
    }
    if target != Dialect::Postgres {
        // SQLite: see rowid_counters.
        return out;
    }
    for c in t.columns.iter().filter(|c| c.identity.is_some()) {
        let col = quote_ident(target, &c.name);
        let start = c.identity.as_ref().and_then(|i| i.start).unwrap_or(1);
        let table_lit = ddl::string_literal(target, &t.sql_name);
        let col_lit = ddl::string_literal(target, &c.name);
        out.push(format!(
            "SELECT setval(pg_get_serial_sequence({table_lit}, {col_lit}), GREATEST(COALESCE((SELECT MAX({col}) FROM {}), 0) + 1, {start}), false);",
            t.sql_name
        ));
    }
    out
}

// ----- migrate: one step per object -----------------------------------------

/// What the target-side steps of a migration are built from.
pub struct Plan<'a> {
    pub converted: &'a Converted,
    /// The selected source schema, shaped for the target ([`super::shape`]).
    pub schema: &'a Schema,
    pub source: Dialect,
    pub mode: SchemaMode,
}

impl Plan<'_> {
    fn target(&self) -> Dialect {
        self.converted.target.target
    }
    fn names(&self) -> &NamePlan {
        &self.converted.names
    }
    fn source_table(&self, t: &TargetTable) -> Option<&Table> {
        self.schema.tables.iter().find(|s| s.name == t.source)
    }
    /// The quoted target name of a source relation.
    pub fn relation_sql(&self, name: &QualifiedName) -> String {
        self.names().quote_parts(&self.names().relation(name))
    }
}

/// Schemas, types, domains and sequences, then the tables (parents before
/// their partitions and children), each its own step.
pub fn schema_steps(p: &Plan, tables: &[&TargetTable], extensions: &[String]) -> Vec<Step> {
    let target = p.target();
    let names = p.names();
    let mut steps = Vec::new();
    if p.mode.creates() {
        let t = &p.converted.target;
        if target == Dialect::Postgres && p.source == Dialect::Postgres {
            // Types and functions the tables may use come from extensions.
            for e in extensions {
                steps.push(Step::new(Kind::Extension, e.clone(), format!("CREATE EXTENSION IF NOT EXISTS {};", quote_ident(target, e))).probe(Probe::Idempotent));
            }
        }
        if target == Dialect::Postgres {
            for s in &t.schemas {
                steps.push(Step::new(Kind::Schema, s.clone(), format!("CREATE SCHEMA IF NOT EXISTS {};", names.quote(s))).probe(Probe::Idempotent));
            }
            for e in &t.enums {
                let vals = e.values.iter().map(|v| ddl::string_literal(target, v)).collect::<Vec<_>>().join(", ");
                steps.push(Step::new(Kind::Enum, e.name.clone(), format!("CREATE TYPE {} AS ENUM ({vals});", e.name)).probe(Probe::Idempotent));
            }
            if p.source == Dialect::Postgres {
                for d in &p.schema.domains {
                    steps.push(Step::new(Kind::Domain, d.name.to_string(), create_domain_sql(p, d)).probe(Probe::Idempotent));
                }
            }
        }
        // The converter prints sequences the same way; reuse its text.
        let prelude = ddl::phases(t, names).prelude;
        for (s, sql) in t.sequences.iter().zip(prelude.iter().filter(|q| q.starts_with("CREATE SEQUENCE"))) {
            steps.push(Step::new(Kind::Sequence, s.name.clone(), sql.clone()).probe(Probe::Idempotent));
        }
    }
    if p.mode.creates() {
        for t in creation_order(p, tables) {
            let kind = if p.source_table(t).is_some_and(|s| s.partition_of.is_some()) && target == Dialect::Postgres { Kind::Partition } else { Kind::Table };
            steps.push(Step::new(kind, t.source.to_string(), create_table_sql(p, t)).on(&t.sql_name));
        }
    }
    steps
}

/// Parents before the partitions and inheritance children that need them.
fn creation_order<'t>(p: &Plan, tables: &[&'t TargetTable]) -> Vec<&'t TargetTable> {
    let parents_of = |t: &TargetTable| -> Vec<QualifiedName> {
        match p.source_table(t) {
            Some(s) => s.partition_of.iter().map(|po| po.parent.clone()).chain(s.inherits.iter().cloned()).collect(),
            None => Vec::new(),
        }
    };
    let mut out: Vec<&TargetTable> = Vec::new();
    let mut pending: Vec<&TargetTable> = tables.to_vec();
    while !pending.is_empty() {
        let before = pending.len();
        let mut i = 0;
        while i < pending.len() {
            let ready = parents_of(pending[i]).iter().all(|par| !pending.iter().any(|q| q.source.loosely_eq(par)));
            if ready {
                out.push(pending.remove(i));
            } else {
                i += 1;
            }
        }
        if pending.len() == before {
            out.append(&mut pending);
        }
    }
    out
}

/// CREATE TABLE as the converter writes it, plus what a same-engine copy
/// keeps: PostgreSQL partitioning (`PARTITION BY`, `PARTITION OF … FOR
/// VALUES`) and inheritance (`INHERITS`), MySQL's partitioning clause.
fn create_table_sql(p: &Plan, t: &TargetTable) -> String {
    let target = p.target();
    let names = p.names();
    let Some(src) = p.source_table(t) else { return ddl::create_table_sql_with(target, names, t, !defers_keys(target)) };
    if target == Dialect::Postgres && p.source == Dialect::Postgres {
        if let Some(po) = &src.partition_of {
            let mut s = format!("CREATE TABLE {} PARTITION OF {} {}", t.sql_name, p.relation_sql(&po.parent), po.bound.sql);
            if let Some(k) = &src.options.partitioning {
                s.push_str(&format!(" PARTITION BY {k}"));
            }
            s.push(';');
            return s;
        }
    }
    let mut s = ddl::create_table_sql_with(target, names, t, !defers_keys(target));
    let body = s.trim_end().trim_end_matches(';').to_string();
    let upper = body.to_ascii_uppercase();
    let mut tail = String::new();
    match (p.source, target) {
        (Dialect::Postgres, Dialect::Postgres) => {
            if !src.inherits.is_empty() && !upper.contains(" INHERITS ") {
                let parents: Vec<String> = src.inherits.iter().map(|q| p.relation_sql(q)).collect();
                tail.push_str(&format!(" INHERITS ({})", parents.join(", ")));
            }
            if let Some(k) = src.options.partitioning.as_ref().filter(|_| !upper.contains("PARTITION BY")) {
                tail.push_str(&format!(" PARTITION BY {k}"));
            }
        }
        (Dialect::Mysql, Dialect::Mysql) => {
            if let Some(k) = src.options.partitioning.as_ref().filter(|_| !upper.contains("PARTITION BY")) {
                tail.push('\n');
                tail.push_str(k);
            }
        }
        _ => {}
    }
    if !tail.is_empty() {
        s = format!("{body}{tail};");
    }
    s
}

fn create_domain_sql(p: &Plan, d: &Domain) -> String {
    let mut s = format!("CREATE DOMAIN {} AS {}", p.relation_sql(&d.name), d.source_type);
    if let Some(def) = d.default.as_ref().and_then(pg_default_sql) {
        s.push_str(&format!(" DEFAULT {def}"));
    }
    if d.not_null {
        s.push_str(" NOT NULL");
    }
    for c in &d.checks {
        s.push_str(&format!(" CHECK {}", if c.sql.starts_with('(') { c.sql.clone() } else { format!("({})", c.sql) }));
    }
    s.push(';');
    s
}

/// A PostgreSQL default read from PostgreSQL, written back.
fn pg_default_sql(d: &DefaultValue) -> Option<String> {
    Some(match d {
        DefaultValue::Null => "NULL".into(),
        DefaultValue::Number(n) => n.clone(),
        DefaultValue::String(s) => ddl::string_literal(Dialect::Postgres, s),
        DefaultValue::Bool(b) => b.to_string(),
        DefaultValue::Bytes(h) => format!("'\\x{h}'::bytea"),
        DefaultValue::Bits(b) => format!("B'{b}'"),
        DefaultValue::CurrentTimestamp { .. } => "CURRENT_TIMESTAMP".into(),
        DefaultValue::CurrentDate => "CURRENT_DATE".into(),
        DefaultValue::CurrentTime => "CURRENT_TIME".into(),
        DefaultValue::Sequence(s) => format!("nextval({})", ddl::string_literal(Dialect::Postgres, &s.to_string())),
        DefaultValue::Expression(e) => e.sql.clone(),
    })
}

/// The column an index part names (`"a"`, `` `a`(255) DESC``), if it is
/// a plain column.
fn part_column(part: &str) -> Option<String> {
    let p = part.trim();
    let (open, close) = match p.chars().next()? {
        '"' => ('"', '"'),
        '`' => ('`', '`'),
        '[' => ('[', ']'),
        c if c.is_alphabetic() || c == '_' => {
            let name: String = p.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$').collect();
            let rest = p[name.len()..].trim_start();
            // `name(10)` is a prefix length; `lower(x)` an expression.
            let prefix = rest.strip_prefix('(').and_then(|r| r.split_once(')')).is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()));
            return (rest.is_empty() || !rest.starts_with('(') || prefix).then_some(name);
        }
        _ => return None,
    };
    let mut out = String::new();
    let mut chars = p[open.len_utf8()..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == close {
            if chars.peek() == Some(&close) {
                chars.next();
                out.push(c);
                continue;
            }
            return Some(out);
        }
        out.push(c);
    }
    None
}

/// What finishes the loaded tables, one step per object: keys (where
/// deferred), indexes, foreign keys, generated triggers and comments (for
/// tables this run created), then counters past the data.
pub fn post_steps(p: &Plan, loaded: &[&TargetTable]) -> Vec<Step> {
    let target = p.target();
    let names = p.names();
    let mut steps = Vec::new();
    let by_sql = |n: &str| loaded.iter().find(|t| t.sql_name == n).copied();
    if p.mode.creates() {
        if defers_keys(target) {
            for t in loaded {
                if let Some(pk) = &t.primary_key {
                    let named = pk.name.as_ref().map(|n| format!("CONSTRAINT {} ", names.quote(n))).unwrap_or_default();
                    let cols = pk.columns.iter().map(|c| names.quote(c)).collect::<Vec<_>>().join(", ");
                    steps.push(
                        Step::new(Kind::PrimaryKey, t.source.to_string(), format!("ALTER TABLE {} ADD {named}PRIMARY KEY ({cols});", t.sql_name))
                            .on(&t.sql_name)
                            .probe(Probe::PrimaryKey { table: t.name.clone(), columns: pk.columns.clone() }),
                    );
                }
                for u in &t.uniques {
                    let named = u.name.as_ref().map(|n| format!("CONSTRAINT {} ", names.quote(n))).unwrap_or_default();
                    let cols = u.columns.iter().map(|c| names.quote(c)).collect::<Vec<_>>().join(", ");
                    let probe = match &u.name {
                        Some(n) => Probe::Unique { table: t.name.clone(), name: n.clone(), columns: u.columns.clone() },
                        None => Probe::None,
                    };
                    steps.push(
                        Step::new(Kind::UniqueKey, format!("{} ({})", t.source, u.columns.join(", ")), format!("ALTER TABLE {} ADD {named}UNIQUE ({cols});", t.sql_name))
                            .on(&t.sql_name)
                            .probe(probe),
                    );
                }
            }
        }
        for ix in &p.converted.target.indexes {
            let Some(t) = by_sql(&ix.table) else { continue };
            let columns: Vec<String> = ix.parts.iter().filter_map(|x| part_column(x)).collect();
            let columns = if columns.len() == ix.parts.len() { columns } else { Vec::new() };
            steps.push(
                Step::new(Kind::Index, format!("{}.{}", t.source, ix.name), ddl::index_sql(target, names, ix))
                    .on(&t.sql_name)
                    .probe(Probe::Index { table: t.name.clone(), name: ix.name.clone(), columns }),
            );
        }
        for fk in &p.converted.target.foreign_keys {
            let Some(t) = by_sql(&fk.table) else { continue };
            let mut step = Step::new(Kind::ForeignKey, format!("{} {} → {}", t.source, fk.name, fk.ref_table), ddl::foreign_key_sql(target, names, fk))
                .on(&t.sql_name)
                .probe(Probe::ForeignKey { table: t.name.clone(), name: fk.name.clone(), columns: fk.columns.clone() });
            step.needs.push(fk.ref_table.clone());
            steps.push(step);
        }
        for sql in &p.converted.target.triggers {
            steps.push(Step::new(Kind::GeneratedTrigger, trigger_label(sql), sql.clone()).probe(Probe::Idempotent));
        }
        for sql in &p.converted.target.comments {
            steps.push(Step::new(Kind::Comment, comment_label(sql), sql.clone()).probe(Probe::Idempotent));
        }
    }
    for t in loaded {
        for sql in identity_reset(target, names, t) {
            steps.push(Step::new(Kind::Counter, t.source.to_string(), sql).on(&t.sql_name).probe(Probe::Idempotent));
        }
    }
    if target == Dialect::Postgres {
        steps.extend(sequence_advances(p, loaded));
    }
    if target == Dialect::Sqlite {
        steps.extend(rowid_counters(loaded));
    }
    steps
}

/// SQLite's AUTOINCREMENT counter (`sqlite_sequence`) past the source's
/// last value, which the loaded rows alone may not reach (rows deleted at
/// the source).
fn rowid_counters(loaded: &[&TargetTable]) -> Vec<Step> {
    let mut out = Vec::new();
    for t in loaded {
        let Some(c) = t.columns.iter().find(|c| c.inline_primary_key && c.identity.is_some()) else { continue };
        let Some(last) = c.identity.as_ref().and_then(|i| i.start).map(|s| s - 1).filter(|l| *l > 0) else { continue };
        let name = ddl::string_literal(Dialect::Sqlite, t.name.last().map(String::as_str).unwrap_or_default());
        out.push(
            Step::new(Kind::Counter, t.source.to_string(), format!("UPDATE sqlite_sequence SET seq = MAX(seq, {last}) WHERE name = {name}"))
                .before(format!("INSERT INTO sqlite_sequence (name, seq) SELECT {name}, {last} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {name})"))
                .on(&t.sql_name)
                .probe(Probe::Idempotent),
        );
    }
    out
}

fn trigger_label(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(4).collect();
    words.join(" ")
}

fn comment_label(sql: &str) -> String {
    // COMMENT ON COLUMN "t"."c" IS '…';
    sql.split(" IS ").next().unwrap_or(sql).trim_start_matches("COMMENT ON ").to_string()
}

/// Moves each sequence past the source's last value and past every value
/// the loaded columns that draw from it hold (PostgreSQL targets).
fn sequence_advances(p: &Plan, loaded: &[&TargetTable]) -> Vec<Step> {
    let names = p.names();
    let mut out = Vec::new();
    for s in &p.schema.sequences {
        let mut maxes: Vec<String> = Vec::new();
        for t in loaded {
            let Some(src) = p.source_table(t) else { continue };
            for c in &src.columns {
                if matches!(&c.default, Some(DefaultValue::Sequence(n)) if n.loosely_eq(&s.name) || (n.schema.is_none() && n.name == s.name.name)) {
                    if let Some(tc) = t.column_by_source(&c.name) {
                        maxes.push(format!("(SELECT MAX({})::bigint FROM {})", names.quote(&tc.name), t.sql_name));
                    }
                }
            }
        }
        let mut candidates: Vec<String> = s.last_value.map(|v| v.to_string()).into_iter().collect();
        candidates.extend(maxes);
        if candidates.is_empty() {
            continue;
        }
        let seq = names.quote_parts(&names.sequence(&s.name));
        let lit = ddl::string_literal(Dialect::Postgres, &seq);
        out.push(
            Step::new(Kind::Counter, s.name.to_string(), format!("SELECT setval({lit}, v) FROM (SELECT GREATEST({}) AS v) x WHERE v IS NOT NULL;", candidates.join(", ")))
                .probe(Probe::Idempotent),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_parts_name_their_columns() {
        assert_eq!(part_column("\"customer_id\"").as_deref(), Some("customer_id"));
        assert_eq!(part_column("`na``me`(255) DESC").as_deref(), Some("na`me"));
        assert_eq!(part_column("lower(\"x\")"), None);
        assert_eq!(part_column("name(10) DESC").as_deref(), Some("name"));
        assert_eq!(part_column("plain DESC").as_deref(), Some("plain"));
        assert_eq!(part_column("(a + b)"), None);
    }
}
