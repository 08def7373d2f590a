//! Prints a [`TargetSchema`] as DDL for its target, in dependency order:
//! schemas, types and sequences, tables, indexes, foreign keys, triggers,
//! views, comments, then what needs manual work as comments. Statements
//! are also available per phase, for `migrate`'s load order.

use std::fmt::Write as _;

use super::naming::NamePlan;
use super::report::ObjectKind;
use super::target::*;
use crate::model::*;

/// The type as the target spells it. `enum_parts` names a PostgreSQL enum.
pub fn type_sql(target: Dialect, ty: &ColumnType, enum_parts: &[String]) -> String {
    use ColumnType as T;
    let len = |name: &str, n: &Option<u32>| match n {
        Some(n) => format!("{name}({n})"),
        None => name.to_string(),
    };
    let prec = |name: &str, p: &Option<u8>| match p {
        Some(p) => format!("{name}({p})"),
        None => name.to_string(),
    };
    match target {
        Dialect::Postgres => match ty {
            T::Bool => "boolean".into(),
            T::Int { bits: 8 | 16, .. } => "smallint".into(),
            T::Int { bits: 32, .. } => "integer".into(),
            T::Int { .. } => "bigint".into(),
            T::Decimal { precision: Some(p), scale: Some(s) } => format!("numeric({p},{s})"),
            T::Decimal { precision: Some(p), scale: None } => format!("numeric({p})"),
            T::Decimal { .. } => "numeric".into(),
            T::Float32 => "real".into(),
            T::Float64 => "double precision".into(),
            // A collation left on a type is a PostgreSQL source's own.
            T::Char { length, text } => format!("{}{}", len("char", length), pg_collate(text)),
            T::Varchar { length, text } => format!("{}{}", len("varchar", length), pg_collate(text)),
            T::Text { text, .. } => format!("text{}", pg_collate(text)),
            T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => "bytea".into(),
            T::Date => "date".into(),
            T::Time { precision, tz: false } => prec("time", precision),
            T::Time { precision, tz: true } => format!("{} with time zone", prec("time", precision)),
            T::Timestamp { precision, tz: false } => prec("timestamp", precision),
            T::Timestamp { precision, tz: true } => format!("{} with time zone", prec("timestamp", precision)),
            T::Interval { fields, precision } => {
                let mut s = "interval".to_string();
                if let Some(f) = fields {
                    s.push(' ');
                    s.push_str(f);
                }
                if let Some(p) = precision {
                    if fields.as_deref().is_none_or(|f| f.ends_with("second")) {
                        s.push_str(&format!("({p})"));
                    }
                }
                s
            }
            T::Json => "json".into(),
            T::Jsonb => "jsonb".into(),
            T::Uuid => "uuid".into(),
            T::Enum { .. } if !enum_parts.is_empty() => enum_parts.iter().map(|p| super::naming::quote_ident(target, p)).collect::<Vec<_>>().join("."),
            T::Enum { .. } | T::Set { .. } => "text".into(),
            T::Bit { length, varying: false } => len("bit", length),
            T::Bit { length, varying: true } => len("varbit", length),
            T::Year => "smallint".into(),
            T::Array { element } => format!("{}[]", type_sql(target, element, enum_parts)),
            T::Xml => "xml".into(),
            T::Other { name } => name.clone(),
        },
        Dialect::Mysql => {
            let attrs = |t: &TextAttrs| {
                let mut s = String::new();
                if let Some(c) = &t.charset {
                    s.push_str(&format!(" CHARACTER SET {c}"));
                }
                if let Some(c) = &t.collation {
                    if c != "binary" {
                        s.push_str(&format!(" COLLATE {c}"));
                    } else if t.charset.is_none() {
                        s.push_str(" COLLATE utf8mb4_bin");
                    }
                }
                s
            };
            let unsigned = |u: bool| if u { " unsigned" } else { "" };
            match ty {
                T::Bool => "tinyint(1)".into(),
                T::Int { bits: 8, unsigned: u } => format!("tinyint{}", unsigned(*u)),
                T::Int { bits: 16, unsigned: u } => format!("smallint{}", unsigned(*u)),
                T::Int { bits: 32, unsigned: u } => format!("int{}", unsigned(*u)),
                T::Int { unsigned: u, .. } => format!("bigint{}", unsigned(*u)),
                T::Decimal { precision: Some(p), scale } => format!("decimal({p},{})", scale.unwrap_or(0)),
                T::Decimal { .. } => "decimal(65,30)".into(),
                T::Float32 => "float".into(),
                T::Float64 => "double".into(),
                T::Char { length, text } => format!("{}{}", len("char", length), attrs(text)),
                T::Varchar { length, text } => format!("{}{}", len("varchar", &length.or(Some(255))), attrs(text)),
                T::Text { size, text } => format!(
                    "{}{}",
                    match size {
                        LobSize::Tiny => "tinytext",
                        LobSize::Regular => "text",
                        LobSize::Medium => "mediumtext",
                        LobSize::Long => "longtext",
                    },
                    attrs(text)
                ),
                T::Binary { length } => len("binary", length),
                T::Varbinary { length } => len("varbinary", &length.or(Some(255))),
                T::Blob { size } => match size {
                    LobSize::Tiny => "tinyblob",
                    LobSize::Regular => "blob",
                    LobSize::Medium => "mediumblob",
                    LobSize::Long => "longblob",
                }
                .into(),
                T::Date => "date".into(),
                T::Time { precision, .. } => prec("time", precision),
                T::Timestamp { precision, tz: true } => prec("timestamp", precision),
                T::Timestamp { precision, tz: false } => prec("datetime", precision),
                T::Interval { .. } => "varchar(64)".into(),
                T::Json | T::Jsonb => "json".into(),
                T::Uuid => "char(36)".into(),
                T::Enum { values, .. } => format!("enum({})", values.iter().map(|v| string_literal(target, v)).collect::<Vec<_>>().join(",")),
                T::Set { values } => format!("set({})", values.iter().map(|v| string_literal(target, v)).collect::<Vec<_>>().join(",")),
                T::Bit { length, .. } => len("bit", length),
                T::Year => "year".into(),
                T::Array { .. } => "json".into(),
                T::Xml => "longtext".into(),
                T::Other { name } => name.clone(),
            }
        }
        _ => {
            // SQLite's own collations (NOCASE, RTRIM) travel with the type.
            let collate = match ty.text_attrs().and_then(|a| a.collation.as_deref()) {
                Some(c) if ["nocase", "rtrim"].contains(&c.to_ascii_lowercase().as_str()) => format!(" COLLATE {}", c.to_ascii_uppercase()),
                _ => String::new(),
            };
            let base: String = match ty {
            T::Bool => "BOOLEAN".into(),
            T::Int { bits: 8, .. } => "TINYINT".into(),
            T::Int { bits: 16, .. } => "SMALLINT".into(),
            T::Int { bits: 32, .. } => "INT".into(),
            T::Int { .. } => "INTEGER".into(),
            T::Decimal { precision: Some(p), scale } => format!("NUMERIC({p},{})", scale.unwrap_or(0)),
            T::Decimal { .. } => "NUMERIC".into(),
            T::Float32 | T::Float64 => "REAL".into(),
            T::Char { length, .. } => len("CHAR", length),
            T::Varchar { length, .. } => len("VARCHAR", length),
            T::Text { .. } | T::Enum { .. } | T::Set { .. } | T::Xml | T::Interval { .. } => "TEXT".into(),
            T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => "BLOB".into(),
            T::Date => "DATE".into(),
            T::Time { tz: false, .. } => "TIME".into(),
            T::Time { tz: true, .. } => "TIMETZ".into(),
            T::Timestamp { tz: false, .. } => "DATETIME".into(),
            T::Timestamp { tz: true, .. } => "TIMESTAMPTZ".into(),
            T::Json | T::Array { .. } => "JSON".into(),
            T::Jsonb => "JSONB".into(),
            T::Uuid => "UUID".into(),
            // A varying bit string keeps its leading zeros only as text.
            T::Bit { varying: true, .. } => "TEXT".into(),
            T::Bit { .. } => "INTEGER".into(),
            T::Year => "INTEGER".into(),
            T::Other { name } => name.to_ascii_uppercase(),
            };
            base + &collate
        }
    }
}

/// A string literal for the target. MySQL also treats backslash as an
/// escape inside strings (unless NO_BACKSLASH_ESCAPES), so it is doubled.
pub fn string_literal(target: Dialect, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if target == Dialect::Mysql => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

impl NamePlan {
    /// The PostgreSQL type name parts for an enum column type.
    pub fn enum_type_parts(&self, ty: &ColumnType) -> Vec<String> {
        let ty = match ty {
            ColumnType::Array { element } => element.as_ref(),
            t => t,
        };
        match ty {
            ColumnType::Enum { name: Some(qn), .. } => match self.types.get(&super::naming::key(qn)) {
                Some(p) => p.clone(),
                None => {
                    let mut v = Vec::new();
                    if let Some(s) = &qn.schema {
                        v.push(s.clone());
                    }
                    v.push(qn.name.clone());
                    v
                }
            },
            _ => Vec::new(),
        }
    }
}

/// One column definition.
pub fn column_sql(target: Dialect, names: &NamePlan, c: &TargetColumn) -> String {
    let mut s = format!("{} {}", names.quote(&c.name), c.sql_type);
    if let Some((expr, stored)) = &c.generated {
        let _ = write!(s, " GENERATED ALWAYS AS ({expr}) {}", if *stored { "STORED" } else { "VIRTUAL" });
    }
    if c.inline_primary_key {
        s.push_str(" PRIMARY KEY");
        if c.identity.is_some() {
            s.push_str(" AUTOINCREMENT");
        }
    }
    if let (Some(id), Dialect::Postgres) = (&c.identity, target) {
        let kind = if id.kind == IdentityKind::Always { "ALWAYS" } else { "BY DEFAULT" };
        let _ = write!(s, " GENERATED {kind} AS IDENTITY");
        let mut opts = Vec::new();
        if let Some(seq) = &id.sequence {
            let mut parts: Vec<String> = seq.schema.iter().cloned().collect();
            parts.push(seq.name.clone());
            opts.push(format!("SEQUENCE NAME {}", names.quote_parts(&parts)));
        }
        if let Some(st) = id.start.filter(|v| *v != 1) {
            opts.push(format!("START WITH {st}"));
        }
        if let Some(i) = id.increment.filter(|v| *v != 1) {
            opts.push(format!("INCREMENT BY {i}"));
        }
        if !opts.is_empty() {
            let _ = write!(s, " ({})", opts.join(" "));
        }
    }
    if !c.nullable && !c.inline_primary_key && c.generated.is_none() {
        s.push_str(" NOT NULL");
    }
    if let (Some(_), Dialect::Mysql) = (&c.identity, target) {
        s.push_str(" AUTO_INCREMENT");
    }
    if let Some(d) = &c.default_sql {
        if c.generated.is_none() && !(c.identity.is_some() && target == Dialect::Postgres) {
            let _ = write!(s, " DEFAULT {d}");
        }
    }
    if target == Dialect::Mysql && c.on_update_current_timestamp {
        match &c.ty {
            ColumnType::Timestamp { precision: Some(p), .. } if *p > 0 => {
                let _ = write!(s, " ON UPDATE CURRENT_TIMESTAMP({p})");
            }
            _ => s.push_str(" ON UPDATE CURRENT_TIMESTAMP"),
        }
    }
    if let Some(values) = &c.check_values {
        let list = values.iter().map(|v| string_literal(target, v)).collect::<Vec<_>>().join(", ");
        match (&c.ty, target) {
            (ColumnType::Array { .. }, Dialect::Postgres) => {
                let _ = write!(s, " CHECK ({} <@ ARRAY[{list}]::text[])", names.quote(&c.name));
            }
            _ => {
                let _ = write!(s, " CHECK ({} IN ({list}))", names.quote(&c.name));
            }
        }
    }
    if let (Some(cm), Dialect::Mysql) = (&c.comment, target) {
        let _ = write!(s, " COMMENT {}", string_literal(target, cm));
    }
    s
}

fn key_cols(names: &NamePlan, k: &TargetKey) -> String {
    k.columns
        .iter()
        .zip(k.prefix.iter().chain(std::iter::repeat(&None)))
        .map(|(c, p)| match p {
            Some(n) => format!("{}({n})", names.quote(c)),
            None => names.quote(c),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE TABLE` with columns, primary key, unique and check constraints
/// (and, on SQLite, foreign keys). No secondary indexes.
pub fn create_table_sql(target: Dialect, names: &NamePlan, t: &TargetTable) -> String {
    create_table_sql_with(target, names, t, true)
}

/// `ALTER TABLE ... ADD` for the primary key and unique constraints, for a
/// table created by `create_table_sql_with(.., false)`: a bulk load into a
/// table without indexes, then one index build, is much faster on
/// PostgreSQL than maintaining the index row by row.
pub fn add_keys_sql(target: Dialect, names: &NamePlan, t: &TargetTable) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(pk) = &t.primary_key {
        let named = pk.name.as_ref().map(|n| format!("CONSTRAINT {} ", names.quote(n))).unwrap_or_default();
        out.push(format!("ALTER TABLE {} ADD {named}PRIMARY KEY ({});", t.sql_name, key_cols(names, pk)));
    }
    for u in &t.uniques {
        let named = u.name.as_ref().map(|n| format!("CONSTRAINT {} ", names.quote(n))).unwrap_or_default();
        out.push(format!("ALTER TABLE {} ADD {named}UNIQUE ({});", t.sql_name, key_cols(names, u)));
    }
    let _ = target;
    out
}

pub fn create_table_sql_with(target: Dialect, names: &NamePlan, t: &TargetTable, with_keys: bool) -> String {
    let mut items: Vec<String> = t.columns.iter().map(|c| column_sql(target, names, c)).collect();
    if let Some(pk) = t.primary_key.as_ref().filter(|_| with_keys) {
        if !t.columns.iter().any(|c| c.inline_primary_key) {
            let named = match (&pk.name, target) {
                (Some(n), Dialect::Postgres | Dialect::Sqlite) => format!("CONSTRAINT {} ", names.quote(n)),
                _ => String::new(),
            };
            items.push(format!("{named}PRIMARY KEY ({})", key_cols(names, pk)));
        }
    }
    for u in t.uniques.iter().filter(|_| with_keys) {
        let name = u.name.as_ref().map(|n| names.quote(n));
        items.push(match (target, name) {
            (Dialect::Mysql, Some(n)) => format!("UNIQUE KEY {n} ({})", key_cols(names, u)),
            (_, Some(n)) => format!("CONSTRAINT {n} UNIQUE ({})", key_cols(names, u)),
            (_, None) => format!("UNIQUE ({})", key_cols(names, u)),
        });
    }
    for (name, expr) in &t.checks {
        items.push(match name {
            Some(n) => format!("CONSTRAINT {} CHECK ({expr})", names.quote(n)),
            None => format!("CHECK ({expr})"),
        });
    }
    for fk in &t.inline_foreign_keys {
        items.push(fk_clause(target, names, fk));
    }
    let mut s = format!("CREATE TABLE {} (\n    {}\n)", t.sql_name, items.join(",\n    "));
    if target == Dialect::Postgres {
        if !t.inherits.is_empty() {
            let _ = write!(s, " INHERITS ({})", t.inherits.join(", "));
        }
        if let Some(p) = &t.partition_by {
            let _ = write!(s, " {p}");
        }
    }
    match target {
        Dialect::Mysql => {
            let _ = write!(s, " ENGINE={}", t.engine.as_deref().filter(|e| !e.eq_ignore_ascii_case("myisam")).unwrap_or("InnoDB"));
            let _ = write!(s, " DEFAULT CHARSET={}", t.charset.as_deref().unwrap_or("utf8mb4"));
            if let Some(c) = &t.collation {
                let _ = write!(s, " COLLATE={c}");
            }
            if let Some(n) = t.auto_increment_start.filter(|n| *n > 1) {
                let _ = write!(s, " AUTO_INCREMENT={n}");
            }
            if let Some(c) = &t.comment {
                let _ = write!(s, " COMMENT={}", string_literal(target, c));
            }
            if let Some(p) = &t.partition_by {
                let _ = write!(s, " {p}");
            }
        }
        Dialect::Sqlite if t.without_rowid => s.push_str(" WITHOUT ROWID"),
        _ => {}
    }
    s.push(';');
    s
}

fn fk_clause(target: Dialect, names: &NamePlan, fk: &TargetForeignKey) -> String {
    let cols = fk.columns.iter().map(|c| names.quote(c)).collect::<Vec<_>>().join(", ");
    let rcols = fk.ref_columns.iter().map(|c| names.quote(c)).collect::<Vec<_>>().join(", ");
    let mut s = format!("CONSTRAINT {} FOREIGN KEY ({cols}) REFERENCES {} ({rcols})", names.quote(&fk.name), fk.ref_table);
    if let Some(a) = &fk.on_delete {
        let _ = write!(s, " ON DELETE {a}");
    }
    if let Some(a) = &fk.on_update {
        let _ = write!(s, " ON UPDATE {a}");
    }
    if fk.deferrable && target != Dialect::Mysql {
        s.push_str(" DEFERRABLE");
        if fk.initially_deferred {
            s.push_str(" INITIALLY DEFERRED");
        }
    }
    s
}

pub fn foreign_key_sql(target: Dialect, names: &NamePlan, fk: &TargetForeignKey) -> String {
    let mut s = format!("ALTER TABLE {} ADD {}", fk.table, fk_clause(target, names, fk));
    if fk.not_valid {
        s.push_str(" NOT VALID");
    }
    s.push(';');
    s
}

pub fn index_sql(target: Dialect, names: &NamePlan, ix: &TargetIndex) -> String {
    let unique = if ix.unique { "UNIQUE " } else { "" };
    let kind = ix.kind.as_deref().map(|k| format!("{k} ")).unwrap_or_default();
    let using = match (&ix.method, target) {
        (Some(m), Dialect::Postgres) => format!(" USING {m}"),
        _ => String::new(),
    };
    let mut s = format!("CREATE {unique}{kind}INDEX {} ON {}{using} ({})", names.quote(&ix.name), ix.table, ix.parts.join(", "));
    if !ix.include.is_empty() {
        let _ = write!(s, " INCLUDE ({})", ix.include.join(", "));
    }
    if let Some(p) = &ix.predicate {
        let _ = write!(s, " WHERE {p}");
    }
    s.push(';');
    s
}

pub fn view_sql(target: Dialect, names: &NamePlan, v: &TargetView) -> String {
    let cols = if v.columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.columns.iter().map(|c| names.quote(c)).collect::<Vec<_>>().join(", "))
    };
    let kw = if v.materialized { "MATERIALIZED VIEW" } else { "VIEW" };
    let _ = target;
    format!("CREATE {kw} {}{cols} AS\n{};", v.name, v.query)
}

/// Triggers that emulate MySQL's `ON UPDATE CURRENT_TIMESTAMP`.
pub fn on_update_triggers(target: Dialect, names: &NamePlan, t: &TargetTable, cols: &[&TargetColumn]) -> Vec<String> {
    let base = names.generated_name(&["barge_on_update", t.name.last().map(String::as_str).unwrap_or("t")]);
    match target {
        Dialect::Postgres => {
            let mut fn_parts = t.name.clone();
            fn_parts.pop();
            fn_parts.push(base.clone());
            let func = names.quote_parts(&fn_parts);
            let sets: String = cols
                .iter()
                .map(|c| {
                    let q = names.quote(&c.name);
                    format!("    IF NEW.{q} IS NOT DISTINCT FROM OLD.{q} THEN\n        NEW.{q} := CURRENT_TIMESTAMP;\n    END IF;\n")
                })
                .collect();
            vec![
                format!(
                    "CREATE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $barge$\nBEGIN\n  -- MySQL ON UPDATE CURRENT_TIMESTAMP: refresh unless the statement set the column.\n  IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN\n{sets}  END IF;\n  RETURN NEW;\nEND\n$barge$;"
                ),
                format!("CREATE TRIGGER {} BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {func}();", names.quote(&base), t.sql_name),
            ]
        }
        Dialect::Sqlite => {
            let key: Vec<String> = match &t.primary_key {
                Some(k) if t.without_rowid => k.columns.clone(),
                _ => vec!["rowid".into()],
            };
            let cond = key.iter().map(|k| format!("{0} = NEW.{0}", names.quote(k))).collect::<Vec<_>>().join(" AND ");
            cols.iter()
                .map(|c| {
                    let q = names.quote(&c.name);
                    let trig = names.quote(&names.generated_name(&[&base, &c.name]));
                    format!(
                        "CREATE TRIGGER {trig} AFTER UPDATE ON {} FOR EACH ROW WHEN NEW.{q} IS OLD.{q}\nBEGIN\n    UPDATE {} SET {q} = CURRENT_TIMESTAMP WHERE {cond};\nEND;",
                        t.sql_name, t.sql_name
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Text as SQL line comments, each line with `prefix`. The text is split
/// on every line terminator a target's lexer knows (`\n`, `\r`, `\r\n`):
/// a bare `\r` ends a `--` comment on PostgreSQL, so text after one would
/// run. NUL, which would cut the script short for a C client, is replaced.
pub fn comment_lines(prefix: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + prefix.len() * 4);
    for line in text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        out.push_str(prefix);
        out.push_str(&line.replace('\0', "\u{fffd}"));
        out.push('\n');
    }
    out
}

/// The phase a statement belongs to, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Schemas, enum types, sequences.
    Prelude,
    Tables,
    Indexes,
    ForeignKeys,
    Triggers,
    Views,
    Comments,
}

impl Phase {
    fn title(self) -> &'static str {
        match self {
            Phase::Prelude => "Schemas, types and sequences",
            Phase::Tables => "Tables",
            Phase::Indexes => "Indexes",
            Phase::ForeignKeys => "Foreign keys",
            Phase::Triggers => "Triggers generated by barge",
            Phase::Views => "Views",
            Phase::Comments => "Comments",
        }
    }
}

/// One statement of the output, with the report objects it creates.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub phase: Phase,
    pub sql: String,
    pub objects: Vec<ObjectRef>,
    /// For a CREATE TABLE, the table as the report names it: everything
    /// the report lists under that table depends on this statement.
    pub table: Option<String>,
}

/// Every statement of the output, in execution order.
pub fn emitted(t: &TargetSchema, names: &NamePlan) -> Vec<Emitted> {
    let target = t.target;
    let mut out = Vec::new();
    let mut push = |phase: Phase, sql: String, objects: Vec<ObjectRef>, table: Option<String>| out.push(Emitted { phase, sql, objects, table });
    if target == Dialect::Postgres {
        for s in &t.schemas {
            push(Phase::Prelude, format!("CREATE SCHEMA IF NOT EXISTS {};", names.quote(s)), vec![(ObjectKind::Schema, s.clone())], None);
        }
        for e in &t.enums {
            let vals = e.values.iter().map(|v| string_literal(target, v)).collect::<Vec<_>>().join(", ");
            push(Phase::Prelude, format!("CREATE TYPE {} AS ENUM ({vals});", e.name), vec![e.object.clone()], None);
        }
    }
    for s in &t.sequences {
        let mut q = format!("CREATE SEQUENCE {}", s.name);
        if let Some(i) = s.increment {
            let _ = write!(q, " INCREMENT BY {i}");
        }
        if let Some(m) = s.min {
            let _ = write!(q, " MINVALUE {m}");
        }
        if let Some(m) = s.max {
            let _ = write!(q, " MAXVALUE {m}");
        }
        if let Some(st) = s.start {
            let _ = write!(q, " START WITH {st}");
        }
        if let Some(c) = s.cache {
            let _ = write!(q, " CACHE {c}");
        }
        if s.cycle {
            q.push_str(" CYCLE");
        }
        q.push(';');
        push(Phase::Prelude, q, vec![(ObjectKind::Sequence, s.object.clone())], None);
    }
    for tb in &t.tables {
        let obj = tb.source.to_string();
        push(Phase::Tables, create_table_sql(target, names, tb), vec![(ObjectKind::Table, obj.clone())], Some(obj));
    }
    // Partitions are attached once every table exists (a partition may
    // come before its parent in the source).
    for tb in t.tables.iter().filter(|tb| target == Dialect::Postgres && tb.partition_of.is_some()) {
        let (parent, bound) = tb.partition_of.as_ref().expect("filtered");
        push(Phase::Tables, format!("ALTER TABLE {parent} ATTACH PARTITION {} {bound};", tb.sql_name), vec![(ObjectKind::Table, tb.source.to_string())], None);
    }
    for i in &t.indexes {
        push(Phase::Indexes, index_sql(target, names, i), vec![(ObjectKind::Index, i.object.clone())], None);
    }
    for f in &t.foreign_keys {
        push(Phase::ForeignKeys, foreign_key_sql(target, names, f), vec![(ObjectKind::ForeignKey, f.object.clone())], None);
    }
    for (i, tr) in t.triggers.iter().enumerate() {
        push(Phase::Triggers, tr.clone(), t.trigger_owners.get(i).cloned().unwrap_or_default(), None);
    }
    for v in &t.views {
        push(Phase::Views, view_sql(target, names, v), vec![(ObjectKind::View, v.object.clone())], None);
        for i in &v.indexes {
            push(Phase::Views, index_sql(target, names, i), vec![(ObjectKind::Index, i.object.clone())], None);
        }
    }
    for (i, c) in t.comments.iter().enumerate() {
        push(Phase::Comments, c.clone(), t.comment_owners.get(i).cloned().into_iter().collect(), None);
    }
    out
}

/// Statements grouped by phase, in execution order.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    /// Schemas, enum types, sequences.
    pub prelude: Vec<String>,
    /// One `CREATE TABLE` per table, in `TargetSchema::tables` order.
    pub tables: Vec<String>,
    pub indexes: Vec<String>,
    pub foreign_keys: Vec<String>,
    pub triggers: Vec<String>,
    pub views: Vec<String>,
    pub comments: Vec<String>,
}

pub fn phases(t: &TargetSchema, names: &NamePlan) -> Phases {
    let mut p = Phases::default();
    for e in emitted(t, names) {
        let list = match e.phase {
            Phase::Prelude => &mut p.prelude,
            Phase::Tables => &mut p.tables,
            Phase::Indexes => &mut p.indexes,
            Phase::ForeignKeys => &mut p.foreign_keys,
            Phase::Triggers => &mut p.triggers,
            Phase::Views => &mut p.views,
            Phase::Comments => &mut p.comments,
        };
        list.push(e.sql);
    }
    p
}

/// The whole script. Statements the target refused when checked are
/// printed with the manual sections, as comments.
/// ` COLLATE "name"` for a text type that carries one (PostgreSQL).
fn pg_collate(t: &TextAttrs) -> String {
    match t.collation.as_deref().map(|c| c.trim_matches('"')).filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("default")) {
        Some(c) => format!(" COLLATE {}", super::naming::quote_ident(Dialect::Postgres, c)),
        None => String::new(),
    }
}

pub fn render(t: &TargetSchema, names: &NamePlan, header: &str) -> String {
    let statements = emitted(t, names);
    let refused: std::collections::HashMap<usize, &str> = t.refused.iter().map(|(i, e)| (*i, e.as_str())).collect();
    let mut s = String::new();
    s.push_str(&comment_lines("-- ", header));
    if t.target == Dialect::Mysql {
        s.push_str("SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS = 0;\n");
    }
    if t.target == Dialect::Sqlite {
        s.push_str("PRAGMA foreign_keys = OFF;\n");
    }
    let mut phase = None;
    let mut manual = t.manual.clone();
    for (i, st) in statements.iter().enumerate() {
        if let Some(err) = refused.get(&i) {
            let what = st.objects.first().map(|(k, o)| format!("{} {o}", k.label())).unwrap_or_else(|| "statement".into());
            manual.push(ManualSection { line: 0, title: format!("{what}: refused by {} when checked: {err}", t.target), text: st.sql.clone() });
            continue;
        }
        if phase != Some(st.phase) {
            let _ = writeln!(s, "\n-- {}\n", st.phase.title());
            phase = Some(st.phase);
        }
        s.push_str(&st.sql);
        s.push_str("\n\n");
    }
    if t.target == Dialect::Mysql {
        s.push_str("SET FOREIGN_KEY_CHECKS = 1;\n");
    }
    if t.target == Dialect::Sqlite {
        // SQLite keeps an AUTOINCREMENT key's counter in sqlite_sequence,
        // which exists once such a table does.
        let counters: Vec<String> = t
            .tables
            .iter()
            .filter(|tb| create_table_sql(t.target, names, tb).contains("AUTOINCREMENT"))
            .filter_map(|tb| {
                let name = string_literal(t.target, tb.name.last().map(String::as_str).unwrap_or_default());
                tb.auto_increment_start.map(|n| format!("INSERT INTO sqlite_sequence (name, seq) VALUES ({name}, {});", n - 1))
            })
            .collect();
        if !counters.is_empty() {
            let _ = writeln!(s, "\n-- Where each AUTOINCREMENT key resumes (the source's counter)\n");
            for c in counters {
                s.push_str(&c);
                s.push('\n');
            }
        }
    }
    if !manual.is_empty() {
        let _ = writeln!(s, "\n-- Needs manual conversion (see the assessment report). Source kept below.\n");
        manual.sort_by_key(|m| m.line);
        for m in manual {
            let at = if m.line > 0 { format!("[line {}] ", m.line) } else { String::new() };
            s.push_str(&comment_lines("-- ", &format!("{at}{}", m.title)));
            s.push_str(&comment_lines("--   ", &m.text));
            s.push('\n');
        }
    }
    s
}
