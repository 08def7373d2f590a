//! Plans a conversion: from the source schema model to a [`TargetSchema`],
//! deciding names, types, defaults, keys and indexes, and writing one
//! report item per object. Nothing is silently dropped: whatever the target
//! cannot express becomes a warning or a manual action.

use std::collections::BTreeSet;

use super::expr::{self, NameMapper};
use super::hierarchy::{self, Hierarchy, MysqlPartitions};
use super::naming::{NamePlan, NamingOptions};
use super::reader::Leftover;
use super::report::{codes, ObjectKind, Report, Status};
use super::rules::{RuleSet, Transform};
use super::target::*;
use super::typemap;
use super::typetext;
use crate::model::*;

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub source: Dialect,
    pub target: Dialect,
    pub rules: RuleSet,
    pub naming: NamingOptions,
}

pub struct Converted {
    pub target: TargetSchema,
    pub report: Report,
    pub names: NamePlan,
}

/// Names for expression rewriting, bound to one table's columns.
struct ExprNames<'a> {
    plan: &'a NamePlan,
    table: Option<&'a Table>,
    /// Map a column to its target name when the table is known.
    mapped_columns: Vec<(String, String)>,
    textual: Vec<String>,
    /// Source names of columns that are boolean on the target.
    bools: Vec<String>,
}

impl NameMapper for ExprNames<'_> {
    fn relation(&self, name: &QualifiedName) -> Vec<String> {
        self.plan.relation(name)
    }
    fn ident(&self, name: &str) -> String {
        for (s, t) in &self.mapped_columns {
            if s.eq_ignore_ascii_case(name) {
                return t.clone();
            }
        }
        let _ = self.table;
        self.plan.fold(name)
    }
    fn quote(&self, part: &str) -> String {
        self.plan.quote(part)
    }
    fn target(&self) -> Dialect {
        self.plan.target()
    }
    fn cast_type(&self, source: Dialect, ty: &str) -> Option<String> {
        let spec = typetext::parse(ty);
        let col = Column::new("x", typetext::recognize(source, &spec), ty);
        let target = self.plan.target();
        // Casts accept fewer types than columns do on MySQL and SQLite.
        use ColumnType as T;
        match target {
            Dialect::Mysql => {
                return Some(match &col.ty {
                    T::Int { unsigned: true, .. } => "unsigned".into(),
                    T::Int { .. } | T::Bool | T::Year => "signed".into(),
                    T::Decimal { precision: Some(p), scale } if *p <= 65 => format!("decimal({p},{})", scale.unwrap_or(0)),
                    T::Decimal { .. } => "decimal(65,30)".into(),
                    T::Float32 | T::Float64 => "double".into(),
                    T::Char { length: Some(n), .. } | T::Varchar { length: Some(n), .. } => format!("char({n})"),
                    T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Uuid | T::Enum { .. } | T::Xml => "char".into(),
                    T::Date => "date".into(),
                    T::Timestamp { precision, .. } => precision.map(|p| format!("datetime({})", p.min(6))).unwrap_or_else(|| "datetime".into()),
                    T::Time { .. } => "time".into(),
                    T::Json | T::Jsonb => "json".into(),
                    T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => "binary".into(),
                    _ => return None,
                });
            }
            Dialect::Sqlite => {
                return Some(match &col.ty {
                    T::Int { .. } | T::Bool | T::Year | T::Bit { .. } => "INTEGER",
                    T::Decimal { .. } => "NUMERIC",
                    T::Float32 | T::Float64 => "REAL",
                    T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => "BLOB",
                    T::Other { .. } if source != Dialect::Sqlite => return None,
                    _ => "TEXT",
                }
                .into());
            }
            _ => {}
        }
        // A type the script defines (a PostgreSQL enum) keeps its name.
        if let (T::Other { name }, Dialect::Postgres) = (&col.ty, target) {
            let bare = name.rsplit('.').next().unwrap_or(name);
            if let Some((_, parts)) = self.plan.types.iter().find(|(k, _)| k.rsplit('.').next().unwrap_or(k).eq_ignore_ascii_case(bare)) {
                return Some(self.plan.quote_parts(parts));
            }
        }
        let (lowered, _) = typemap::lower(source, target, col.ty.clone(), &col);
        if matches!(lowered, ColumnType::Other { .. }) && source != target {
            return None;
        }
        Some(super::ddl::type_sql(target, &lowered, &[]))
    }
    fn is_textual(&self, name: &str) -> bool {
        self.textual.iter().any(|c| c.eq_ignore_ascii_case(name))
    }
    fn is_bool(&self, name: &str) -> bool {
        self.bools.iter().any(|c| c.eq_ignore_ascii_case(name) || self.ident(c).eq_ignore_ascii_case(name))
    }
}

pub fn convert(schema: &Schema, leftovers: &[Leftover], report: Report, opts: &ConvertOptions) -> Converted {
    let mut report = report;
    let h = hierarchy::resolve(schema, opts.target, &mut report);
    let shaped = h.schema.as_ref().unwrap_or(schema);
    let names = NamePlan::build(shaped, opts.target, &opts.naming);
    convert_inner(shaped, leftovers, report, opts, names, &h)
}

/// Like [`convert`], with names already decided (and possibly adjusted,
/// e.g. by `migrate`'s table mappings), and inheritance and partitions
/// left as the caller shaped them.
pub fn convert_with(schema: &Schema, leftovers: &[Leftover], report: Report, opts: &ConvertOptions, names: NamePlan) -> Converted {
    convert_inner(schema, leftovers, report, opts, names, &Hierarchy::default())
}

fn convert_inner(schema: &Schema, leftovers: &[Leftover], mut report: Report, opts: &ConvertOptions, names: NamePlan, h: &Hierarchy) -> Converted {
    let target = opts.target;
    report.source = Some(opts.source);
    report.target = Some(target);
    let mut out = TargetSchema {
        target,
        schemas: Vec::new(),
        enums: Vec::new(),
        sequences: Vec::new(),
        tables: Vec::new(),
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
        triggers: Vec::new(),
        trigger_owners: Vec::new(),
        views: Vec::new(),
        comments: Vec::new(),
        comment_owners: Vec::new(),
        manual: Vec::new(),
        refused: Vec::new(),
    };

    // Named enum types from the source.
    for e in &schema.enums {
        let parts = names.enum_type(&e.name);
        if target == Dialect::Postgres {
            out.enums.push(TargetEnum { name: names.quote_parts(&parts), values: e.values.clone(), object: (ObjectKind::Type, e.name.to_string()) });
            report.push(ObjectKind::Type, e.name.to_string(), Status::Converted, None, e.origin.line, "enum type");
        } else {
            report.push(ObjectKind::Type, e.name.to_string(), Status::Converted, Some(codes::ENUM_CONVERTED), e.origin.line,
                if target == Dialect::Mysql { "enum type inlined as ENUM(...) on each column" } else { "enum type becomes TEXT with a CHECK on each column" });
        }
    }
    for d in &schema.domains {
        report.push(ObjectKind::Type, d.name.to_string(), Status::Warning, Some(codes::TYPE_CHANGED), d.origin.line,
            "domain resolved to its base type; its NOT NULL, default and checks are copied onto each column");
    }

    // Sequences that are not a column's identity.
    for s in &schema.sequences {
        let parts = names.sequence(&s.name);
        if target.supports_sequences() {
            let clamp = |v: Option<i128>| v.filter(|v| *v >= i64::MIN as i128 && *v <= i64::MAX as i128);
            out.sequences.push(TargetSequence {
                name: names.quote_parts(&parts),
                object: s.name.to_string(),
                start: s.start,
                increment: s.increment,
                min: clamp(s.min),
                max: clamp(s.max),
                cache: s.cache.filter(|c| *c > 1),
                cycle: s.cycle,
            });
            report.push(ObjectKind::Sequence, s.name.to_string(), Status::Converted, None, s.origin.line, "sequence");
        } else {
            report.push(ObjectKind::Sequence, s.name.to_string(), Status::Manual, Some(codes::SEQUENCE_EMULATED), s.origin.line,
                format!("{target} has no sequences: use AUTO_INCREMENT/INTEGER PRIMARY KEY or a counter table (start {})", s.start.unwrap_or(1)));
            out.manual.push(ManualSection { line: s.origin.line, title: format!("sequence {}", s.name), text: format!("sequence {} start {:?} increment {:?}", s.name, s.start, s.increment) });
        }
    }

    // Columns other tables reference, per table (keys on MySQL need them bounded).
    let mut referenced: std::collections::HashMap<String, BTreeSet<String>> = std::collections::HashMap::new();
    for other in &schema.tables {
        for fk in &other.foreign_keys {
            referenced.entry(fk.ref_table.name.to_ascii_lowercase()).or_default().extend(fk.ref_columns.iter().cloned());
        }
    }
    for t in &schema.tables {
        let refs = referenced.get(&t.name.name.to_ascii_lowercase()).cloned().unwrap_or_default();
        plan_table(t, &refs, opts, &names, h, &mut out, &mut report);
    }
    let index = TableIndex::new(schema);
    harmonize_foreign_key_types(&index, &names, &mut out, &mut report);
    // Foreign keys only after every table is known.
    let positions: std::collections::HashMap<QualifiedName, usize> = out.tables.iter().enumerate().map(|(i, t)| (t.source.clone(), i)).collect();
    for t in &schema.tables {
        plan_foreign_keys(&index, &positions, t, &names, &mut out, &mut report);
    }
    plan_views(schema, &names, &mut out, &mut report);

    for r in &schema.routines {
        report.push(ObjectKind::Routine, format!("{} {}", r.kind.label(), r.name), Status::Manual, Some(codes::ROUTINE), r.origin.line,
            format!("{} must be rewritten for {target} by hand; its source is kept in the output as a comment", r.kind.label()));
        out.manual.push(ManualSection { line: r.origin.line, title: format!("{} {}", r.kind.label(), r.name), text: r.source.clone() });
    }
    for l in leftovers {
        out.manual.push(ManualSection { line: l.line, title: l.reason.clone(), text: l.text.clone() });
    }
    report_renames(schema, &names, &mut report);
    out.schemas = names.schemas.clone();
    for s in &out.schemas {
        report.push(ObjectKind::Schema, s.clone(), Status::Converted, Some(codes::SCHEMA_MAPPED), 0, format!("created as schema {s}"));
    }
    Converted { target: out, report, names }
}

/// Records what the target refused when the output was checked: each
/// refused statement's objects become manual items carrying the server's
/// message, and the statement is printed as a comment, not as SQL.
pub fn apply_refusals(c: &mut Converted, statements: &[super::ddl::Emitted], refusals: &[super::check::Refusal]) {
    let target = c.target.target;
    let mut refused_tables: Vec<String> = Vec::new();
    for r in refusals {
        let Some(st) = statements.get(r.statement) else { continue };
        let message = format!("refused by {target} when checked: {}", r.error);
        match &st.table {
            Some(t) => {
                c.report.refuse_table(t, &message);
                refused_tables.push(t.clone());
            }
            None => {
                for (kind, object) in &st.objects {
                    // An index or key of a refused table fails with it: the
                    // table's item already carries the reason and the effort.
                    let of_refused = refused_tables.iter().any(|t| object.strip_prefix(t.as_str()).is_some_and(|rest| rest.starts_with(['.', ' ', '('])));
                    if of_refused {
                        c.report.push(*kind, object.clone(), Status::Manual, Some(codes::NOT_CREATED), 0, format!("not created: its table was refused ({})", r.error));
                    } else {
                        c.report.refuse(*kind, object, &message);
                    }
                }
            }
        }
        if !c.target.refused.iter().any(|(i, _)| *i == r.statement) {
            c.target.refused.push((r.statement, r.error.clone()));
        }
    }
}

/// One B180 item per renamed table, view or column, on the object's own
/// line and under its own report name, so it joins that object's entry
/// instead of counting as one more object.
fn report_renames(schema: &Schema, names: &NamePlan, report: &mut Report) {
    for (kind, from, to, why) in names.renames.borrow().iter() {
        match kind.as_str() {
            "table" => {
                let (kind, line) = match schema.tables.iter().find(|t| &t.name.to_string() == from) {
                    Some(t) => (ObjectKind::Table, t.origin.line),
                    None => (ObjectKind::View, schema.views.iter().find(|v| &v.name.to_string() == from).map(|v| v.origin.line).unwrap_or(0)),
                };
                report.push(kind, from.clone(), Status::Converted, Some(codes::RENAMED), line, format!("renamed to {to}: {why}"));
            }
            "column" => {
                let line = schema
                    .tables
                    .iter()
                    .flat_map(|t| t.columns.iter().map(move |c| (super::naming::column_key(&t.name, &c.name), c.origin.line)))
                    .find(|(k, _)| k == from)
                    .map(|(_, l)| l)
                    .unwrap_or(0);
                report.push(ObjectKind::Column, from.clone(), Status::Converted, Some(codes::RENAMED), line, format!("renamed to {to}: {why}"));
            }
            _ => {}
        }
    }
}

/// Columns per table: PostgreSQL's hard limit, InnoDB's (MySQL's own
/// 4,096 is never reached with InnoDB), SQLite's default SQLITE_MAX_COLUMN.
fn max_columns(target: Dialect) -> Option<usize> {
    match target {
        Dialect::Postgres => Some(1600),
        Dialect::Mysql => Some(1017),
        Dialect::Sqlite => Some(2000),
        _ => None,
    }
}

/// Bytes a column takes toward MySQL's 65,535-byte row limit (TEXT and
/// BLOB count only their in-row pointer).
fn mysql_row_bytes(ty: &ColumnType) -> usize {
    use ColumnType as T;
    let per_char = |a: &TextAttrs| match a.charset.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("latin1" | "ascii" | "binary") => 1,
        Some("utf8" | "utf8mb3" | "ucs2") => 3,
        _ => 4,
    };
    match ty {
        T::Bool | T::Year => 1,
        T::Int { bits, .. } => (*bits as usize) / 8,
        T::Decimal { precision, .. } => precision.unwrap_or(65) as usize / 2 + 1,
        T::Float32 => 4,
        T::Float64 => 8,
        T::Char { length, text } => length.unwrap_or(1) as usize * per_char(text),
        T::Varchar { length, text } => {
            let n = length.unwrap_or(255) as usize * per_char(text);
            n + if n > 255 { 2 } else { 1 }
        }
        T::Binary { length } => length.unwrap_or(1) as usize,
        T::Varbinary { length } => length.unwrap_or(255) as usize + 2,
        T::Date => 3,
        T::Time { .. } => 6,
        T::Timestamp { .. } => 8,
        T::Bit { length, .. } => (length.unwrap_or(1) as usize).div_ceil(8),
        T::Enum { .. } => 2,
        T::Set { .. } => 8,
        T::Uuid => 36,
        _ => 12,
    }
}

/// MySQL refuses a table whose columns may take more than 65,535 bytes
/// (wide varchar columns in utf8mb4 reach it fast). The widest varchar
/// columns that are not in a key become TEXT until the row fits.
fn fit_mysql_row(columns: &mut [TargetColumn], t: &Table, keyed: &BTreeSet<String>, report: &mut Report) {
    const LIMIT: usize = 65_535;
    let nulls = columns.len().div_ceil(8);
    let mut total: usize = nulls + columns.iter().map(|c| mysql_row_bytes(&c.ty)).sum::<usize>();
    if total <= LIMIT {
        return;
    }
    let mut order: Vec<usize> = (0..columns.len())
        .filter(|&i| matches!(columns[i].ty, ColumnType::Varchar { .. } | ColumnType::Char { .. } | ColumnType::Varbinary { .. }) && !keyed.contains(&columns[i].source) && columns[i].generated.is_none())
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(mysql_row_bytes(&columns[i].ty)));
    for i in order {
        if total <= LIMIT {
            break;
        }
        let c = &mut columns[i];
        let before = c.sql_type.clone();
        let bytes = mysql_row_bytes(&c.ty);
        c.ty = match &c.ty {
            ColumnType::Varbinary { .. } => ColumnType::Blob { size: LobSize::Regular },
            ColumnType::Varchar { text, .. } | ColumnType::Char { text, .. } => ColumnType::Text { size: LobSize::Regular, text: text.clone() },
            other => other.clone(),
        };
        c.sql_type = super::ddl::type_sql(Dialect::Mysql, &c.ty, &[]);
        if c.default_sql.as_deref().is_some_and(|d| d.starts_with('\'')) {
            // MySQL takes a TEXT default only as an expression.
            c.default_sql = c.default_sql.take().map(|d| format!("({d})"));
        }
        total = total - bytes + mysql_row_bytes(&c.ty);
        report.push(ObjectKind::Column, format!("{}.{}", t.name, c.source), Status::Warning, Some(codes::TYPE_CHANGED), t.columns.iter().find(|x| x.name == c.source).map(|x| x.origin.line).unwrap_or(t.origin.line),
            format!("{before} → {}: the table's columns would exceed MySQL's 65,535-byte row size, so the widest ones are stored off-row", c.sql_type));
    }
    if total > LIMIT {
        report.push(ObjectKind::Table, t.name.to_string(), Status::Warning, Some(codes::TARGET_LIMIT), t.origin.line,
            format!("about {total} bytes per row even with long strings off-row: MySQL's limit is 65,535; check the output on the target (--check)"));
    }
}

/// A partitioned table's clause in the target's syntax.
fn render_partitioning(p: &hierarchy::Partitioning, target: Dialect, names: &NamePlan, t: &Table) -> Option<String> {
    let cols: Option<Vec<String>> = p.columns.as_ref().map(|cs| cs.iter().map(|c| names.quote(&names.column(&t.name, c))).collect());
    match target {
        Dialect::Postgres => Some(match cols {
            Some(c) => format!("PARTITION BY {} ({})", p.method, c.join(", ")),
            None => format!("PARTITION BY {} ({})", p.method, p.written),
        }),
        Dialect::Mysql => {
            let col = cols?.into_iter().next()?;
            let part = |n: &QualifiedName| names.quote(&super::naming::fit(target, &names.fold(&n.name)));
            Some(match p.mysql.as_ref()? {
                MysqlPartitions::Range(parts) => format!(
                    "PARTITION BY RANGE COLUMNS({col}) ({})",
                    parts.iter().map(|(n, v)| format!("PARTITION {} VALUES LESS THAN ({v})", part(n))).collect::<Vec<_>>().join(", ")
                ),
                MysqlPartitions::List(parts) => format!(
                    "PARTITION BY LIST COLUMNS({col}) ({})",
                    parts.iter().map(|(n, v)| format!("PARTITION {} VALUES IN ({})", part(n), v.join(", "))).collect::<Vec<_>>().join(", ")
                ),
                MysqlPartitions::Hash(n) => format!("PARTITION BY HASH({col}) PARTITIONS {n}"),
            })
        }
        _ => None,
    }
}

/// A SQLite `COLLATE NOCASE` column.
/// MySQL 8's `utf8mb4_0900_*` collations (UCA 9.0), which MariaDB does
/// not have, as the nearest collation both servers know.
fn portable_collation(c: &str) -> Option<(String, &'static str)> {
    let l = c.to_ascii_lowercase();
    if !l.contains("_0900_") {
        return None;
    }
    Some(if l.ends_with("_as_cs") || l.ends_with("_bin") {
        ("utf8mb4_bin".into(), "case- and accent-sensitive; MariaDB has no UCA 9.0 collations")
    } else {
        ("utf8mb4_unicode_520_ci".into(), "UCA 5.2, case- and accent-insensitive; MariaDB has no UCA 9.0 collations")
    })
}

/// The column of an index key written `col COLLATE x`.
fn collated_column(e: &SqlText) -> Option<String> {
    let d = super::rewrite::sql_dialect(e.dialect);
    match super::rewrite::parse_expr(&*d, &e.sql).ok()? {
        sqlparser::ast::Expr::Collate { expr, .. } => match *expr {
            sqlparser::ast::Expr::Identifier(i) => Some(i.value),
            _ => None,
        },
        _ => None,
    }
}

fn is_nocase(c: &Column) -> bool {
    c.ty.text_attrs().and_then(|a| a.collation.as_deref()).is_some_and(|x| x.eq_ignore_ascii_case("nocase"))
}

fn bool_like_default(d: &DefaultValue) -> Option<bool> {
    match d {
        DefaultValue::Bool(b) => Some(*b),
        DefaultValue::Number(n) => match n.as_str() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        },
        DefaultValue::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "f" | "false" | "n" | "no" => Some(false),
            "1" | "t" | "true" | "y" | "yes" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn plan_table(t: &Table, referenced: &BTreeSet<String>, opts: &ConvertOptions, names: &NamePlan, h: &Hierarchy, out: &mut TargetSchema, report: &mut Report) {
    let target = opts.target;
    let tname = t.name.to_string();
    let parts = names.relation(&t.name);
    let sql_name = names.quote_parts(&parts);
    let line = t.origin.line;
    if let Some(max) = max_columns(target).filter(|m| t.columns.len() > *m) {
        // The target would refuse it: everything of the table is manual.
        let why = format!("{} columns: {target} allows at most {max} per table; split the table (e.g. move rarely used columns to a 1:1 side table)", t.columns.len());
        report.push(ObjectKind::Table, tname.clone(), Status::Manual, Some(codes::TARGET_LIMIT), line, why.clone());
        for c in &t.columns {
            report.push(ObjectKind::Column, format!("{tname}.{}", c.name), Status::Manual, Some(codes::NOT_CREATED), c.origin.line.max(line), "not created: its table has more columns than the target allows");
        }
        for ix in &t.indexes {
            report.push(ObjectKind::Index, format!("{tname}.{}", ix.name.as_deref().unwrap_or("unnamed")), Status::Manual, Some(codes::NOT_CREATED), ix.origin.line, "not created: its table has more columns than the target allows");
        }
        out.manual.push(ManualSection { line, title: format!("table {tname}: not created ({why})"), text: String::new() });
        return;
    }
    let mapped_columns: Vec<(String, String)> = t.columns.iter().map(|c| (c.name.clone(), names.column(&t.name, &c.name))).collect();

    // Columns that must be indexable on MySQL (text keys need a length).
    let mut keyed: BTreeSet<String> = BTreeSet::new();
    if let Some(pk) = &t.primary_key {
        keyed.extend(pk.columns.iter().cloned());
    }
    for u in &t.uniques {
        keyed.extend(u.columns.iter().cloned());
    }
    for fk in &t.foreign_keys {
        keyed.extend(fk.columns.iter().cloned());
    }
    keyed.extend(referenced.iter().cloned());

    let single_pk: Option<&str> = t.primary_key.as_ref().filter(|k| k.columns.len() == 1).map(|k| k.columns[0].as_str());
    let mut columns = Vec::new();
    let mut checks: Vec<(Option<String>, String)> = Vec::new();
    let textual: Vec<String> = t.columns.iter().filter(|c| c.ty.is_textual()).map(|c| c.name.clone()).collect();
    let mappings: Vec<typemap::Mapped> = t.columns.iter().map(|c| typemap::map_column(&opts.rules, opts.source, target, &t.name.name, c)).collect();
    let bools: Vec<String> = t.columns.iter().zip(&mappings).filter(|(_, m)| matches!(m.ty, ColumnType::Bool)).map(|(c, _)| c.name.clone()).collect();
    let expr_names = ExprNames { plan: names, table: Some(t), mapped_columns: mapped_columns.clone(), textual: textual.clone(), bools: bools.clone() };

    for (c, m) in t.columns.iter().zip(mappings) {
        let cname = names.column(&t.name, &c.name);
        let obj = format!("{tname}.{}", c.name);
        let mut ty = m.ty.clone();
        let mut notes = m.notes.clone();
        // SQLite COLLATE NOCASE: case-insensitive comparison and uniqueness.
        // MySQL 8's UCA 9.0 collations do not exist on MariaDB.
        if target == Dialect::Mysql {
            if let Some(a) = ty.text_attrs_mut() {
                if let Some((to, why)) = a.collation.as_deref().and_then(portable_collation) {
                    notes.push(typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Converted, message: format!("collation {} → {to}: {why}", a.collation.as_deref().unwrap_or("")) });
                    a.collation = Some(to);
                }
            }
        }
        // A PostgreSQL column's collation: kept on a PostgreSQL copy; C and
        // POSIX (byte order, case-sensitive) have an equal elsewhere; any
        // other is named, never dropped unseen. Other sources' collations
        // are handled above and below, and not written on PostgreSQL.
        if ty.is_textual() {
            // `pg_catalog."C"` as pg_dump writes it: the collation's own name.
            let coll = c.ty.text_attrs().and_then(|a| a.collation.as_deref()).map(|x| x.rsplit('.').next().unwrap_or(x).trim_matches('"').to_string()).filter(|x| !x.is_empty() && !x.eq_ignore_ascii_case("default"));
            match (opts.source, target, coll) {
                (_, _, None) => {}
                (Dialect::Postgres, Dialect::Postgres, Some(coll)) => {
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = Some(coll);
                    }
                }
                (Dialect::Postgres, _, Some(coll)) => {
                    let bytewise = matches!(coll.as_str(), "C" | "POSIX" | "ucs_basic");
                    let to = match target {
                        Dialect::Mysql if bytewise => Some("utf8mb4_bin".to_string()),
                        _ => None,
                    };
                    let note = match (&to, target) {
                        (Some(to), _) => typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Converted, message: format!("collation {coll} → {to} (byte order, case-sensitive)") },
                        (None, Dialect::Sqlite) if bytewise => typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Converted, message: format!("collation {coll}: SQLite's default BINARY compares the same way") },
                        _ => typemap::TypeNote {
                            code: codes::TYPE_CHANGED,
                            status: Status::Warning,
                            message: format!("collation {coll} not carried: {target} compares and sorts this column by its default collation{}", if target == Dialect::Mysql { " (case-insensitively: a unique key may refuse rows that differ only in case)" } else { "" }),
                        },
                    };
                    notes.push(note);
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = to;
                    }
                }
                (_, Dialect::Postgres, Some(_)) => {
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = None;
                    }
                }
                _ => {}
            }
        }
        // SQLite's RTRIM collation ignores trailing spaces in comparisons.
        let rtrim = c.ty.text_attrs().and_then(|a| a.collation.as_deref()).is_some_and(|x| x.eq_ignore_ascii_case("rtrim"));
        if rtrim && ty.is_textual() {
            match target {
                Dialect::Sqlite => {
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = Some("RTRIM".into());
                    }
                }
                Dialect::Mysql => {}
                _ => notes.push(typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Warning, message: "COLLATE RTRIM: PostgreSQL compares trailing spaces; compare rtrim(col) where it matters".into() }),
            }
        }
        if is_nocase(c) && ty.is_textual() {
            match target {
                Dialect::Sqlite => {
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = Some("NOCASE".into());
                    }
                }
                Dialect::Mysql => {
                    if let Some(a) = ty.text_attrs_mut() {
                        a.collation = Some("utf8mb4_general_ci".into());
                    }
                    notes.push(typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Converted, message: "COLLATE NOCASE → utf8mb4_general_ci (case-insensitive)".into() });
                }
                _ => notes.push(typemap::TypeNote {
                    code: codes::TYPE_CHANGED,
                    status: Status::Warning,
                    message: "COLLATE NOCASE: PostgreSQL compares this column case-sensitively; unique keys on it use lower(), so uniqueness stays case-insensitive".into(),
                }),
            }
        }
        let mut nullable = c.nullable;
        // SQL Server fills a rowversion (old name: timestamp) on every
        // write; no target does, so NOT NULL would refuse every INSERT
        // that leaves it out.
        if opts.source == Dialect::Mssql && !nullable && matches!(c.source_type.to_ascii_lowercase().trim_matches(['[', ']']), "rowversion" | "timestamp") {
            nullable = true;
            notes.push(typemap::TypeNote {
                code: codes::TYPE_CHANGED,
                status: Status::Warning,
                message: "NOT NULL dropped: rows inserted on the copy get no rowversion (NULL), where SQL Server would fill one".into(),
            });
        }
        let mut default = c.default.clone();
        let mut zero_dates = false;
        let mut on_update = c.on_update_current_timestamp;
        for tr in &m.transforms {
            match tr {
                Transform::DropDefault => default = None,
                Transform::RelaxNotNull => nullable = true,
                Transform::ZeroDatesToNull => zero_dates = true,
                Transform::OnUpdateTrigger => on_update = true,
                Transform::KeepDefault => {}
            }
        }
        // MySQL zero dates are never valid elsewhere, even without a rule.
        if let Some(DefaultValue::String(s)) = &default {
            if s.starts_with("0000-00-00") && c.ty.is_temporal() {
                default = None;
                nullable = true;
                zero_dates = true;
                if !notes.iter().any(|n| n.code == codes::ZERO_DATE) {
                    notes.push(typemap::TypeNote { code: codes::ZERO_DATE, status: Status::Warning, message: "zero-date default dropped, NOT NULL relaxed; zero dates load as NULL".into() });
                }
            }
        }
        // MySQL keys on text columns need a bounded type.
        if target == Dialect::Mysql && keyed.contains(&c.name) && matches!(ty, ColumnType::Text { .. } | ColumnType::Blob { .. }) {
            let mut bound = if matches!(ty, ColumnType::Blob { .. }) { ColumnType::Varbinary { length: Some(255) } } else { ColumnType::varchar(255) };
            notes.push(typemap::TypeNote { code: codes::TYPE_CHANGED, status: Status::Warning, message: format!("{} is part of a key: MySQL needs a bounded type, so it became {} (longer values will be rejected)", ty.describe(), bound.describe()) });
            // The text's charset and collation stay with it.
            if let (Some(from), Some(to)) = (ty.text_attrs().cloned(), bound.text_attrs_mut()) {
                *to = from;
            }
            ty = bound;
        }
        // Identity needs an integer type on every target.
        let mut identity = c.identity.clone();
        if identity.is_some() && !ty.is_integer() {
            let was = ty.describe();
            ty = ColumnType::int(64);
            notes.push(typemap::TypeNote { code: codes::IDENTITY, status: Status::Converted, message: format!("identity column {was} → bigint") });
        }
        let mut inline_pk = false;
        if let Some(id) = identity.clone() {
            match target {
                Dialect::Sqlite => {
                    if single_pk == Some(c.name.as_str()) {
                        inline_pk = true;
                        ty = ColumnType::int(64);
                    } else {
                        notes.push(typemap::TypeNote {
                            code: codes::IDENTITY,
                            // The application's INSERTs that leave it out fail: a person decides.
                            status: Status::Manual,
                            message: "auto-increment dropped: SQLite only numbers a single-column INTEGER PRIMARY KEY, so an INSERT that leaves this column out fails on the copy; supply its values, or key the table on it alone".into(),
                        });
                        identity = None;
                    }
                }
                Dialect::Mysql if !keyed.contains(&c.name) && !t.indexes.iter().any(|i| matches!(i.parts.first().map(|p| &p.key), Some(IndexKey::Column(n)) if n == &c.name)) => {
                    notes.push(typemap::TypeNote { code: codes::IDENTITY, status: Status::Converted, message: "AUTO_INCREMENT needs a key: a unique key is added".into() });
                }
                _ => {}
            }
            let _ = id;
            // PostgreSQL: the identity keeps the source sequence's name, so
            // nextval('…') in the application still finds it.
            if let (Some(idn), Dialect::Postgres) = (identity.as_mut(), target) {
                idn.sequence = idn.sequence.as_ref().map(|seq| QualifiedName {
                    schema: if parts.len() > 1 { Some(parts[0].clone()) } else { None },
                    name: names.generated_name(&[&seq.name]),
                });
            }
            if identity.is_some() {
                notes.push(typemap::TypeNote { code: codes::IDENTITY, status: Status::Converted, message: "auto-increment/identity kept".into() });
            }
            // An identity has no other default (MySQL refuses one on an
            // AUTO_INCREMENT column; SQLite's rowid numbers itself).
            if matches!(default, Some(DefaultValue::Sequence(_))) {
                default = None;
            } else if identity.is_some() && default.is_some() {
                notes.push(typemap::TypeNote { code: codes::IDENTITY, status: Status::Warning, message: "default dropped: the identity supplies the values".into() });
                default = None;
            }
        }

        // Enums and sets.
        let mut check_values = None;
        match &ty {
            ColumnType::Enum { name, values } => match target {
                Dialect::Postgres if name.is_none() => {
                    let type_name = names.generated_name(&[&t.name.name, &c.name]);
                    let mut tparts = parts.clone();
                    tparts.pop();
                    tparts.push(type_name.clone());
                    let qn = QualifiedName { schema: if tparts.len() > 1 { Some(tparts[0].clone()) } else { None }, name: type_name };
                    out.enums.push(TargetEnum { name: names.quote_parts(&tparts), values: values.clone(), object: (ObjectKind::Column, obj.clone()) });
                    ty = ColumnType::Enum { name: Some(qn), values: values.clone() };
                    notes.push(typemap::TypeNote { code: codes::ENUM_CONVERTED, status: Status::Converted, message: format!("enum → CREATE TYPE {}", names.quote_parts(&tparts)) });
                }
                Dialect::Sqlite => {
                    check_values = Some(values.clone());
                    notes.push(typemap::TypeNote { code: codes::ENUM_CONVERTED, status: Status::Converted, message: "enum → TEXT with a CHECK of the allowed values".into() });
                }
                _ => {}
            },
            ColumnType::Array { element } if matches!(c.ty, ColumnType::Set { .. }) && matches!(**element, ColumnType::Text { .. }) => {
                if let ColumnType::Set { values } = &c.ty {
                    check_values = Some(values.clone());
                }
            }
            ColumnType::Set { .. } if target == Dialect::Sqlite => {
                notes.push(typemap::TypeNote { code: codes::SET_CONVERTED, status: Status::Warning, message: "SET → TEXT holding comma-separated values".into() });
            }
            _ => {}
        }

        // Defaults.
        let default_sql = match &default {
            None => None,
            Some(d) => match render_default(d, &ty, &c.ty, target, names, &expr_names) {
                Ok(s) => Some(s),
                Err(why) => {
                    notes.push(typemap::TypeNote { code: codes::DEFAULT_DROPPED, status: Status::Manual, message: format!("default dropped: {why}") });
                    None
                }
            },
        };
        if on_update {
            match target {
                Dialect::Mysql => {}
                _ => notes.push(typemap::TypeNote { code: codes::ON_UPDATE_TRIGGER, status: Status::Warning, message: "ON UPDATE CURRENT_TIMESTAMP emulated with a BEFORE/AFTER UPDATE trigger".into() }),
            }
        }

        // Generated columns.
        let mut generated = None;
        if let Some(g) = &c.generated {
            let names_for = ExprNames { plan: names, table: Some(t), mapped_columns: mapped_columns.clone(), textual: textual.clone(), bools: bools.clone() };
            match expr::render_expr(&g.expr, &names_for) {
                Ok(sql) => {
                    let stored = g.stored || target == Dialect::Postgres;
                    if !g.stored && target == Dialect::Postgres {
                        notes.push(typemap::TypeNote { code: codes::GENERATED_STORED, status: Status::Warning, message: "virtual generated column → STORED (PostgreSQL 15 has only stored ones): same values, computed on write".into() });
                    }
                    generated = Some((sql, stored));
                }
                Err(why) => notes.push(typemap::TypeNote { code: codes::GENERATED_DROPPED, status: Status::Manual, message: format!("generated expression `{}` not converted ({why}); created as a plain column", g.expr.sql) }),
            }
        }

        let sql_type = super::ddl::type_sql(target, &ty, &names.enum_type_parts(&ty));
        let type_codes = [codes::TYPE_CHANGED, codes::TYPE_UNKNOWN, codes::UNSIGNED_WIDENED, codes::ENUM_CONVERTED, codes::SET_CONVERTED, codes::TIME_ZONE, codes::PRECISION_REDUCED, codes::BOOLEAN, codes::EXACT_NUMERIC, codes::RULE_APPLIED];
        let type_note = notes
            .iter()
            .find(|n| type_codes.contains(&n.code))
            .or_else(|| notes.iter().find(|n| n.code == codes::ZERO_DATE))
            .map(|n| n.message.as_str())
            .unwrap_or("");
        report.mapping(if c.source_type.is_empty() { "(untyped)" } else { &c.source_type }, &sql_type, type_note);
        let (status, code, message) = summarize_notes(&notes, &c.source_type, &sql_type);
        report.push(ObjectKind::Column, obj, status, code, c.origin.line.max(line), message);
        let comment = c.comment.clone();
        columns.push(TargetColumn {
            source: c.name.clone(),
            name: cname,
            ty,
            source_ty: c.ty.clone(),
            sql_type,
            nullable: nullable && !inline_pk,
            default_sql,
            identity,
            inline_primary_key: inline_pk,
            generated,
            on_update_current_timestamp: on_update,
            comment,
            check_values,
            zero_dates_to_null: zero_dates,
        });
    }

    if target == Dialect::Mysql {
        fit_mysql_row(&mut columns, t, &keyed, report);
    }

    // Table-level checks.
    for ch in &t.checks {
        let names_for = ExprNames { plan: names, table: Some(t), mapped_columns: mapped_columns.clone(), textual: textual.clone(), bools: bools.clone() };
        let obj = format!("{tname} check {}", ch.name.as_deref().unwrap_or(&ch.expr.sql));
        if target == Dialect::Mysql {
            if let Some(c) = columns.iter().find(|c| c.identity.is_some() && mentions(&ch.expr.sql, &c.source)) {
                report.push(ObjectKind::Constraint, obj, Status::Manual, Some(codes::CHECK_DROPPED), ch.origin.line, format!(
                    "CHECK ({}) uses {}, an AUTO_INCREMENT column, which MySQL/MariaDB refuse in a CHECK constraint: left out; enforce it in a trigger",
                    ch.expr.sql, c.source
                ));
                continue;
            }
        }
        if matches!(target, Dialect::Mysql | Dialect::Sqlite) {
            if let Some(f) = expr::non_deterministic(&ch.expr) {
                report.push(ObjectKind::Constraint, obj, Status::Manual, Some(codes::CHECK_DROPPED), ch.origin.line, format!(
                    "CHECK ({}) uses {f}, whose value changes from call to call; {target} refuses that in a CHECK constraint, so it was left out: enforce it in a trigger or in the application",
                    ch.expr.sql
                ));
                continue;
            }
        }
        match expr::render_expr(&ch.expr, &names_for) {
            Ok(sql) => {
                let cname = ch.name.as_ref().map(|n| names.constraint_name(&t.name, Some(n), "check"));
                checks.push((cname, sql));
                report.push(ObjectKind::Constraint, obj, Status::Converted, None, ch.origin.line, "check constraint");
            }
            Err(why) => report.push(ObjectKind::Constraint, obj, Status::Manual, Some(codes::CHECK_DROPPED), ch.origin.line, format!("check `{}` left out: {why}", ch.expr.sql)),
        }
    }

    let col_name = |n: &str| mapped_columns.iter().find(|(s, _)| s.eq_ignore_ascii_case(n)).map(|(_, t)| t.clone()).unwrap_or_else(|| names.fold(n));
    let prefix_for = |n: &str, cols: &[TargetColumn]| -> Option<u32> {
        let _ = (n, cols);
        None
    };
    let primary_key = t.primary_key.as_ref().map(|k| {
        let name = if target == Dialect::Mysql { None } else { k.name.as_ref().map(|n| names.index_name(&t.name, Some(n), "pkey")) };
        TargetKey { name, columns: k.columns.iter().map(|c| col_name(c)).collect(), prefix: k.columns.iter().map(|c| prefix_for(c, &columns)).collect() }
    });
    if let Some(pk) = &t.primary_key {
        report.push(ObjectKind::Constraint, format!("{tname} primary key"), Status::Converted, None, line, format!("primary key ({})", pk.columns.join(", ")));
    }
    let mut uniques = Vec::new();
    for u in &t.uniques {
        let (uname, renamed) = names.index_name_why(&t.name, u.name.as_deref(), &format!("{}_{}_key", t.name.name, u.columns.join("_")));
        if let Some(why) = renamed {
            report.push(ObjectKind::Constraint, format!("{tname} unique {}", u.columns.join(",")), Status::Converted, Some(codes::RENAMED), line, format!("renamed to {uname}: {why}"));
        }
        let name = Some(uname);
        // PostgreSQL: uniqueness over NOCASE columns, kept case-insensitive.
        if target == Dialect::Postgres && u.columns.iter().any(|c| t.column(c).is_some_and(is_nocase)) {
            let parts = u
                .columns
                .iter()
                .map(|c| if t.column(c).is_some_and(is_nocase) { format!("lower({})", names.quote(&col_name(c))) } else { names.quote(&col_name(c)) })
                .collect();
            let obj = format!("{tname} unique {}", u.columns.join(","));
            out.indexes.push(TargetIndex { table: sql_name.clone(), name: name.unwrap_or_default(), unique: true, parts, method: None, predicate: None, include: vec![], kind: None, object: obj.clone() });
            report.push(ObjectKind::Constraint, obj, Status::Warning, Some(codes::INDEX_FEATURE), line, "UNIQUE over COLLATE NOCASE columns → unique index on lower(...), so it still ignores case");
            continue;
        }
        uniques.push(TargetKey { name, columns: u.columns.iter().map(|c| col_name(c)).collect(), prefix: vec![None; u.columns.len()] });
        report.push(ObjectKind::Constraint, format!("{tname} unique {}", u.columns.join(",")), Status::Converted, None, line, "unique constraint");
    }
    // MySQL: an AUTO_INCREMENT column must lead some key.
    if target == Dialect::Mysql {
        for c in &columns {
            if c.identity.is_some() {
                let leads = primary_key.as_ref().is_some_and(|k| k.columns.first() == Some(&c.name))
                    || uniques.iter().any(|k| k.columns.first() == Some(&c.name))
                    || t.indexes.iter().any(|i| matches!(i.parts.first().map(|p| &p.key), Some(IndexKey::Column(n)) if col_name(n) == c.name));
                if !leads {
                    let name = Some(names.index_name(&t.name, None, &format!("{}_{}_key", t.name.name, c.source)));
                    uniques.push(TargetKey { name, columns: vec![c.name.clone()], prefix: vec![None] });
                }
            }
        }
    }

    // Table comment.
    let comment = t.comment.clone();
    if comment.is_some() || t.columns.iter().any(|c| c.comment.is_some()) {
        match target {
            Dialect::Postgres => {
                if let Some(cm) = &comment {
                    out.comments.push(format!("COMMENT ON TABLE {sql_name} IS {};", super::ddl::string_literal(target, cm)));
                    out.comment_owners.push((ObjectKind::Comment, format!("{tname} comments")));
                }
                for c in &columns {
                    if let Some(cm) = &c.comment {
                        out.comments.push(format!("COMMENT ON COLUMN {sql_name}.{} IS {};", names.quote(&c.name), super::ddl::string_literal(target, cm)));
                        out.comment_owners.push((ObjectKind::Comment, format!("{tname} comments")));
                    }
                }
                report.push(ObjectKind::Comment, format!("{tname} comments"), Status::Converted, None, line, "comments");
            }
            Dialect::Mysql => report.push(ObjectKind::Comment, format!("{tname} comments"), Status::Converted, None, line, "comments inline"),
            _ => report.push(ObjectKind::Comment, format!("{tname} comments"), Status::Converted, Some(codes::COMMENT_DROPPED), line,
                format!("SQLite has no comments: {}", comment.clone().unwrap_or_else(|| "column comments".into()))),
        }
    }

    // Table-level notes.
    let mut table_status = Status::Converted;
    let mut table_msgs = vec![format!("{} columns", t.columns.len())];
    let same_mysql = target == Dialect::Mysql && opts.source == Dialect::Mysql;
    let tkey = super::naming::key(&t.name);
    let partition_by = match h.partitioning.get(&tkey) {
        Some(p) => render_partitioning(p, target, names, t),
        None if same_mysql => t.options.partitioning.clone(),
        None => None,
    };
    if let Some(p) = t.options.partitioning.as_ref().filter(|_| partition_by.is_none()) {
        table_status = Status::Warning;
        table_msgs.push(format!("partitioning not carried over ({}); create partitions on the target if needed", p.split_whitespace().take(4).collect::<Vec<_>>().join(" ")));
        report.push(ObjectKind::Table, tname.clone(), Status::Warning, Some(codes::TABLE_OPTION), line, table_msgs.last().cloned().unwrap_or_default());
    }
    if t.options.without_rowid && target != Dialect::Sqlite {
        report.push(ObjectKind::Table, tname.clone(), Status::Converted, Some(codes::TABLE_OPTION), line, "WITHOUT ROWID dropped: the primary key organizes the table already");
    }
    report.push(ObjectKind::Table, tname.clone(), Status::Converted, None, line, table_msgs[0].clone());
    let _ = table_status;

    // SQLite enum/set checks are column checks, added in the printer.
    let tt = TargetTable {
        source: t.name.clone(),
        name: parts.clone(),
        sql_name: sql_name.clone(),
        columns,
        primary_key,
        uniques,
        checks,
        inline_foreign_keys: Vec::new(),
        comment,
        // Where the key's counter resumes: MySQL's table option, or an
        // identity's start (a sequence's setval, a serial's next value).
        auto_increment_start: match target {
            Dialect::Mysql | Dialect::Sqlite => t.options.auto_increment_start.or_else(|| t.columns.iter().find_map(|c| c.identity.as_ref().and_then(|i| i.start))).filter(|n| *n > 1),
            _ => None,
        },
        without_rowid: t.options.without_rowid && target == Dialect::Sqlite,
        engine: if same_mysql { t.options.engine.clone() } else { None },
        charset: if same_mysql { t.options.charset.clone() } else { None },
        collation: if same_mysql { t.options.collation.as_deref().map(|c| portable_collation(c).map(|(to, _)| to).unwrap_or_else(|| c.to_string())) } else { None },
        partition_by,
        partition_of: h.attach.get(&tkey).map(|(parent, bound)| (names.quote_parts(&names.relation(parent)), bound.clone())),
        inherits: h.inherits.get(&tkey).map(|ps| ps.iter().map(|p| names.quote_parts(&names.relation(p))).collect()).unwrap_or_default(),
    };

    // Indexes.
    for ix in &t.indexes {
        plan_index(t, ix, &tt, names, &expr_names_owned(names, t, &mapped_columns, &textual, &bools), out, report, target);
    }

    // ON UPDATE CURRENT_TIMESTAMP triggers.
    let on_update_cols: Vec<&TargetColumn> = tt.columns.iter().filter(|c| c.on_update_current_timestamp).collect();
    if !on_update_cols.is_empty() && target != Dialect::Mysql {
        let owners: Vec<ObjectRef> = on_update_cols.iter().map(|c| (ObjectKind::Column, format!("{tname}.{}", c.source))).collect();
        for trig in super::ddl::on_update_triggers(target, names, &tt, &on_update_cols) {
            out.triggers.push(trig);
            out.trigger_owners.push(owners.clone());
        }
    }
    out.tables.push(tt);
}

fn expr_names_owned<'a>(plan: &'a NamePlan, t: &'a Table, mapped: &[(String, String)], textual: &[String], bools: &[String]) -> ExprNames<'a> {
    ExprNames { plan, table: Some(t), mapped_columns: mapped.to_vec(), textual: textual.to_vec(), bools: bools.to_vec() }
}

fn summarize_notes(notes: &[typemap::TypeNote], source_type: &str, sql_type: &str) -> (Status, Option<super::report::Code>, String) {
    let status = notes.iter().map(|n| n.status).max().unwrap_or(Status::Converted);
    let code = notes.iter().filter(|n| n.status == status).map(|n| n.code).next().or(notes.first().map(|n| n.code));
    let mut msg = format!("{} → {}", if source_type.is_empty() { "(untyped)" } else { source_type }, sql_type);
    for n in notes {
        msg.push_str("; ");
        msg.push_str(&n.message);
    }
    (status, code, msg)
}

fn render_default(d: &DefaultValue, ty: &ColumnType, source_ty: &ColumnType, target: Dialect, names: &NamePlan, expr_names: &ExprNames) -> Result<String, String> {
    use super::ddl::string_literal;
    let is_bool = matches!(ty, ColumnType::Bool);
    Ok(match d {
        DefaultValue::Null => "NULL".into(),
        _ if is_bool && bool_like_default(d).is_some() => {
            let b = bool_like_default(d).unwrap_or(false);
            match target {
                Dialect::Postgres => if b { "true" } else { "false" }.into(),
                _ => if b { "1" } else { "0" }.into(),
            }
        }
        DefaultValue::Number(n) => match ty {
            ColumnType::Text { .. } | ColumnType::Varchar { .. } | ColumnType::Char { .. } | ColumnType::Json | ColumnType::Jsonb => string_literal(target, n),
            _ => n.clone(),
        },
        DefaultValue::String(s) if matches!(ty, ColumnType::Bit { .. }) && !s.is_empty() && s.chars().all(|c| c == '0' || c == '1') => {
            return render_default(&DefaultValue::Bits(s.clone()), ty, source_ty, target, names, expr_names);
        }
        // An array literal on a target that keeps arrays as JSON.
        DefaultValue::String(s) if matches!(ty, ColumnType::Json) && s.trim_start().starts_with('{') && matches!(source_ty, ColumnType::Array { .. }) => {
            let ColumnType::Array { element } = source_ty else { unreachable!("matched above") };
            let json = expr::pg_array_to_json(s, element).ok_or_else(|| format!("array default `{s}` is not a well-formed array literal"))?;
            match target {
                Dialect::Mysql => format!("({})", string_literal(target, &json)),
                _ => string_literal(target, &json),
            }
        }
        DefaultValue::String(s) => match ty {
            ColumnType::Bit { length, .. } if target == Dialect::Postgres => {
                let bits = if s.chars().all(|c| c == '0' || c == '1') { s.clone() } else { return Err(format!("bit default `{s}`")) };
                let n = length.unwrap_or(bits.len() as u32) as usize;
                format!("B'{:0>n$}'", bits)
            }
            ColumnType::Blob { .. } | ColumnType::Binary { .. } | ColumnType::Varbinary { .. } => {
                let hexed = hex::encode(s.as_bytes());
                match target {
                    Dialect::Postgres => format!("'\\x{hexed}'::bytea"),
                    _ => format!("X'{hexed}'"),
                }
            }
            ColumnType::Text { .. } | ColumnType::Json if target == Dialect::Mysql => format!("({})", string_literal(target, s)),
            ColumnType::Time { .. } | ColumnType::Timestamp { .. } if target != Dialect::Postgres && has_zone_suffix(s) => {
                let (local, offset) = split_zone_suffix(s);
                if !matches!(offset, "Z" | "+00" | "+00:00" | "-00" | "+0000") {
                    return Err(format!("default `{s}` carries a zone offset the target type cannot hold"));
                }
                string_literal(target, local)
            }
            ColumnType::Array { .. } if target == Dialect::Postgres && !s.starts_with('{') => {
                // A MySQL SET default ('a,b') becomes an array literal.
                let items: Vec<String> = s.split(',').filter(|x| !x.is_empty()).map(|x| format!("\"{}\"", x.replace('"', "\\\""))).collect();
                string_literal(target, &format!("{{{}}}", items.join(",")))
            }
            ColumnType::Array { .. } if target == Dialect::Postgres => string_literal(target, s),
            _ => string_literal(target, s),
        },
        DefaultValue::Bool(b) => match target {
            Dialect::Postgres => b.to_string(),
            _ => if *b { "1" } else { "0" }.into(),
        },
        DefaultValue::Bits(b) => match (target, ty) {
            (Dialect::Postgres, ColumnType::Bit { length, .. }) => {
                let n = length.unwrap_or(b.len() as u32) as usize;
                if b.len() > n {
                    return Err(format!("bit default b'{b}' is longer than bit({n})"));
                }
                format!("B'{:0>n$}'", b)
            }
            (Dialect::Mysql, _) => format!("b'{b}'"),
            (_, ColumnType::Bool) => if b.contains('1') { "true" } else { "false" }.into(),
            _ => u64::from_str_radix(if b.is_empty() { "0" } else { b }, 2).map_err(|_| format!("bit default b'{b}' is too long"))?.to_string(),
        },
        DefaultValue::Bytes(h) => match target {
            Dialect::Postgres => format!("'\\x{h}'::bytea"),
            _ => format!("X'{h}'"),
        },
        DefaultValue::CurrentTimestamp { .. } => match (target, ty) {
            (Dialect::Mysql, ColumnType::Timestamp { precision: Some(p), .. }) if *p > 0 => format!("CURRENT_TIMESTAMP({p})"),
            (Dialect::Mysql, ColumnType::Date) => "(CURRENT_DATE)".into(),
            (Dialect::Postgres, ColumnType::Date) => "CURRENT_DATE".into(),
            (Dialect::Sqlite, ColumnType::Date) => "CURRENT_DATE".into(),
            (Dialect::Mysql, ColumnType::Timestamp { .. }) => "CURRENT_TIMESTAMP".into(),
            (Dialect::Mysql, _) => return Err("MySQL allows CURRENT_TIMESTAMP only on DATETIME/TIMESTAMP columns".into()),
            _ => "CURRENT_TIMESTAMP".into(),
        },
        DefaultValue::CurrentDate => match target {
            Dialect::Mysql => "(CURRENT_DATE)".into(),
            _ => "CURRENT_DATE".into(),
        },
        DefaultValue::CurrentTime => match target {
            Dialect::Mysql => "(CURRENT_TIME)".into(),
            _ => "CURRENT_TIME".into(),
        },
        DefaultValue::Sequence(s) => match target {
            Dialect::Postgres => format!("nextval({})", string_literal(target, &names.quote_parts(&names.sequence(s)))),
            _ => return Err(format!("nextval('{s}'): {target} has no sequences")),
        },
        DefaultValue::Expression(e) => {
            let sql = expr::render_expr(e, expr_names)?;
            // An expression keeps its meaning only if the source and
            // target agree on it, or it was rewritten to a portable form.
            match target {
                Dialect::Postgres => sql,
                _ => format!("({sql})"),
            }
        }
    })
}

fn plan_index(t: &Table, ix: &Index, tt: &TargetTable, names: &NamePlan, expr_names: &ExprNames, out: &mut TargetSchema, report: &mut Report, target: Dialect) {
    let tname = t.name.to_string();
    let label = ix.name.clone().unwrap_or_else(|| "unnamed".into());
    let obj = format!("{tname}.{label}");
    let line = ix.origin.line;
    let mut warnings: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut method = None;
    let mut kind = None;
    let col_target = |n: &str| tt.column_by_source(n).cloned();

    match (&ix.method, target) {
        (IndexMethod::Fulltext, Dialect::Mysql) => kind = Some("FULLTEXT".to_string()),
        (IndexMethod::Fulltext, Dialect::Postgres) => {
            // Full-text search: a GIN index over a tsvector of the columns.
            let cols: Vec<String> = ix
                .parts
                .iter()
                .filter_map(|p| match &p.key {
                    IndexKey::Column(c) => col_target(c).map(|c| format!("coalesce({}, '')", names.quote(&c.name))),
                    _ => None,
                })
                .collect();
            if cols.is_empty() {
                report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, "full-text index without plain columns");
                return;
            }
            let name = names.index_name(&t.name, ix.name.as_deref(), &format!("{}_fts", t.name.name));
            out.indexes.push(TargetIndex {
                table: tt.sql_name.clone(),
                name,
                unique: false,
                parts: vec![format!("to_tsvector('simple', {})", cols.join(" || ' ' || "))],
                method: Some("gin".into()),
                predicate: None,
                include: vec![],
                kind: None,
                object: obj.clone(),
            });
            report.push(ObjectKind::Index, obj, Status::Warning, Some(codes::INDEX_FEATURE), line,
                "FULLTEXT → GIN index on to_tsvector('simple', ...); queries must use @@ to_tsquery");
            return;
        }
        (IndexMethod::Fulltext, _) => {
            report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, "full-text index: use an FTS5 virtual table in SQLite");
            return;
        }
        (IndexMethod::Spatial, Dialect::Mysql) => kind = Some("SPATIAL".to_string()),
        (IndexMethod::Spatial, _) => {
            report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, "spatial index has no equivalent here");
            return;
        }
        (IndexMethod::Gin | IndexMethod::Gist | IndexMethod::Brin, Dialect::Postgres) => method = Some(format!("{:?}", ix.method).to_ascii_lowercase()),
        (IndexMethod::Gin | IndexMethod::Gist | IndexMethod::Brin, _) => {
            // Array/json/range indexes have no target equivalent.
            let all_plain = ix.parts.iter().all(|p| match &p.key {
                IndexKey::Column(c) => col_target(c).is_some_and(|c| !matches!(c.ty, ColumnType::Json | ColumnType::Jsonb | ColumnType::Array { .. } | ColumnType::Text { .. })),
                _ => false,
            });
            if !all_plain {
                report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, format!("{:?} index on array/json/text values has no {target} equivalent", ix.method));
                return;
            }
            warnings.push(format!("{:?} index became a b-tree", ix.method));
        }
        (IndexMethod::Hash, Dialect::Postgres) => method = Some("hash".into()),
        (IndexMethod::Other(m), Dialect::Postgres) if ["btree", "hash", "gin", "gist", "brin", "spgist"].contains(&m.as_str()) => method = Some(m.clone()),
        (IndexMethod::Other(m), _) => warnings.push(format!("{m} index became a b-tree")),
        _ => {}
    }

    for p in &ix.parts {
        let desc = if p.descending { " DESC" } else { "" };
        match &p.key {
            IndexKey::Column(c) => {
                let Some(tc) = col_target(c) else {
                    report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, format!("index column {c} does not exist in {tname}"));
                    return;
                };
                let mut prefix = p.prefix_len;
                if prefix.is_some() && !target.supports_index_prefix_length() {
                    warnings.push("prefix length dropped: the whole value is indexed".into());
                    prefix = None;
                }
                if target == Dialect::Mysql && prefix.is_none() && kind.is_none() && matches!(tc.ty, ColumnType::Text { .. } | ColumnType::Blob { .. } | ColumnType::Json) {
                    if matches!(tc.ty, ColumnType::Json) {
                        report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, "MySQL cannot index a JSON column directly");
                        return;
                    }
                    prefix = Some(255);
                    warnings.push(format!("{} is a text column: indexed on its first 255 characters", tc.name));
                }
                let q = names.quote(&tc.name);
                if target == Dialect::Postgres && ix.unique && t.column(c).is_some_and(is_nocase) {
                    warnings.push(format!("{} is COLLATE NOCASE: indexed as lower({}) so uniqueness ignores case", tc.name, tc.name));
                    parts.push(format!("lower({q}){desc}"));
                    continue;
                }
                parts.push(match prefix {
                    Some(n) => format!("{q}({n}){desc}"),
                    None => format!("{q}{desc}"),
                });
            }
            // `col COLLATE NOCASE` on MySQL, whose default collations
            // already ignore case: the column itself.
            IndexKey::Expression(e) if target == Dialect::Mysql && collated_column(e).is_some_and(|c| col_target(&c).is_some()) => {
                let tc = col_target(&collated_column(e).unwrap_or_default()).expect("checked in the guard");
                warnings.push(format!("{} indexed as the column: MySQL's default collation already ignores case", e.sql));
                parts.push(format!("{}{desc}", names.quote(&tc.name)));
            }
            IndexKey::Expression(e) => {
                if !target.supports_expression_indexes() {
                    report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line,
                        format!("expression index ({}) not supported on {target}: add a generated column and index it", e.sql));
                    return;
                }
                match expr::render_expr(e, expr_names) {
                    Ok(sql) => parts.push(format!("({sql}){desc}")),
                    Err(why) => {
                        report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, format!("expression `{}` not converted: {why}", e.sql));
                        return;
                    }
                }
            }
        }
    }
    let mut predicate = None;
    if let Some(pred) = &ix.predicate {
        if target.supports_partial_indexes() {
            match expr::render_expr(pred, expr_names) {
                Ok(sql) => predicate = Some(sql),
                Err(why) => {
                    report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line, format!("partial index condition not converted: {why}"));
                    return;
                }
            }
        } else if ix.unique {
            report.push(ObjectKind::Index, obj, Status::Manual, Some(codes::INDEX_DROPPED), line,
                format!("unique partial index (WHERE {}) cannot be expressed on {target}: without the condition it would reject valid rows", pred.sql));
            return;
        } else {
            warnings.push(format!("partial index condition `{}` dropped: the whole table is indexed", pred.sql));
        }
    }
    let mut include = Vec::new();
    if !ix.include.is_empty() {
        if target == Dialect::Postgres {
            include = ix.include.iter().filter_map(|c| col_target(c).map(|c| names.quote(&c.name))).collect();
        } else {
            warnings.push("INCLUDE columns dropped".into());
        }
    }
    let (name, renamed) = names.index_name_why(&t.name, ix.name.as_deref(), &format!("{}_{}_idx", t.name.name, ix.parts.len()));
    if let Some(why) = renamed {
        report.push(ObjectKind::Index, obj.clone(), Status::Converted, Some(codes::RENAMED), line, format!("renamed to {name}: {why}"));
    }
    out.indexes.push(TargetIndex { table: tt.sql_name.clone(), name, unique: ix.unique, parts, method, predicate, include, kind, object: obj.clone() });
    if warnings.is_empty() {
        report.push(ObjectKind::Index, obj, Status::Converted, None, line, "index");
    } else {
        report.push(ObjectKind::Index, obj, Status::Warning, Some(codes::INDEX_FEATURE), line, warnings.join("; "));
    }
}

/// Finds tables by name without a scan per lookup (schemas with thousands
/// of tables and foreign keys).
struct TableIndex<'a> {
    schema: &'a Schema,
    exact: std::collections::HashMap<&'a QualifiedName, usize>,
}

impl<'a> TableIndex<'a> {
    fn new(schema: &'a Schema) -> Self {
        TableIndex { schema, exact: schema.tables.iter().enumerate().map(|(i, t)| (&t.name, i)).collect() }
    }
    fn get(&self, name: &QualifiedName) -> Option<&'a Table> {
        match self.exact.get(name) {
            Some(&i) => Some(&self.schema.tables[i]),
            None => self.schema.table(name),
        }
    }
}

fn plan_foreign_keys(index: &TableIndex, positions: &std::collections::HashMap<QualifiedName, usize>, t: &Table, names: &NamePlan, out: &mut TargetSchema, report: &mut Report) {
    let target = out.target;
    let tname = t.name.to_string();
    for fk in &t.foreign_keys {
        let obj = fk_object(&tname, fk);
        let line = fk.origin.line;
        let Some(rt) = index.get(&fk.ref_table) else {
            report.push(ObjectKind::ForeignKey, obj, Status::Manual, Some(codes::FK_FEATURE), line, format!("references {}, which is not in the script", fk.ref_table));
            continue;
        };
        if !positions.contains_key(&t.name) || !positions.contains_key(&rt.name) {
            report.push(ObjectKind::ForeignKey, obj, Status::Manual, Some(codes::NOT_CREATED), line, "not created: one of its tables is not created on the target");
            continue;
        }
        if fk.ref_columns.len() != fk.columns.len() {
            // `REFERENCES t` stands for t's primary key, which the reader
            // fills in; without one of as many columns there is nothing to name.
            report.push(ObjectKind::ForeignKey, obj, Status::Manual, Some(codes::FK_FEATURE), line, format!("references {} without naming its columns, and {} has no primary key of {} column(s) to stand for them: not created", fk.ref_table, rt.name, fk.columns.len()));
            continue;
        }
        let mut warnings = Vec::new();
        let mut action = |a: Option<RefAction>| -> Option<String> {
            match a {
                Some(RefAction::SetDefault) if target == Dialect::Mysql => {
                    warnings.push("ON ... SET DEFAULT is rejected by InnoDB: dropped".to_string());
                    None
                }
                Some(RefAction::NoAction) | None => None,
                Some(a) => Some(a.sql().to_string()),
            }
        };
        let on_delete = action(fk.on_delete);
        let on_update = action(fk.on_update);
        let (mut deferrable, mut initially_deferred) = (fk.deferrable, fk.initially_deferred);
        if deferrable && target == Dialect::Mysql {
            warnings.push("DEFERRABLE not supported: checked immediately".into());
            deferrable = false;
            initially_deferred = false;
        }
        let not_valid = !fk.validated && target == Dialect::Postgres;
        if !fk.validated {
            warnings.push("source constraint was not validated (NOVALIDATE/NOCHECK): existing rows may violate it".into());
        }
        let tt_name = names.quote_parts(&names.relation(&t.name));
        let rt_name = names.quote_parts(&names.relation(&rt.name));
        let name = names.constraint_name(&t.name, fk.name.as_deref(), &format!("{}_{}_fkey", t.name.name, fk.columns.join("_")));
        let tfk = TargetForeignKey {
            table: tt_name,
            name,
            columns: fk.columns.iter().map(|c| names.column(&t.name, c)).collect(),
            ref_table: rt_name,
            ref_columns: fk.ref_columns.iter().map(|c| names.column(&rt.name, c)).collect(),
            on_delete,
            on_update,
            deferrable,
            initially_deferred,
            not_valid,
            object: obj.clone(),
        };
        if target == Dialect::Mysql && (tfk.on_delete.is_some() || tfk.on_update.is_some()) {
            // MySQL forbids CHECKs on columns that have referential actions.
            if let Some(tt) = positions.get(&t.name).map(|&i| &mut out.tables[i]) {
                let cols = tfk.columns.clone();
                let mut dropped = Vec::new();
                tt.checks.retain(|(name, sql)| {
                    let hit = cols.iter().any(|c| mentions(sql, c));
                    if hit {
                        dropped.push((name.clone(), sql.clone()));
                    }
                    !hit
                });
                for (name, sql) in dropped {
                    report.push(ObjectKind::Constraint, format!("{tname} check {}", name.unwrap_or_default()), Status::Manual, Some(codes::CHECK_DROPPED), line,
                        format!("MySQL forbids CHECK constraints on columns with ON DELETE/UPDATE actions; left out: CHECK ({sql})"));
                }
            }
        }
        if target == Dialect::Sqlite {
            if let Some(tt) = positions.get(&t.name).map(|&i| &mut out.tables[i]) {
                tt.inline_foreign_keys.push(tfk);
            }
        } else {
            out.foreign_keys.push(tfk);
        }
        if warnings.is_empty() {
            report.push(ObjectKind::ForeignKey, obj, Status::Converted, None, line, "foreign key");
        } else {
            report.push(ObjectKind::ForeignKey, obj, Status::Warning, Some(codes::FK_FEATURE), line, warnings.join("; "));
        }
    }
}

fn parts_of_view(names: &NamePlan, v: &QualifiedName) -> Vec<String> {
    names.relation(v)
}

/// How the report names a foreign key: `table(columns) → referenced`,
/// unique even when two keys join the same pair of tables.
pub fn fk_object(table: &str, fk: &ForeignKey) -> String {
    format!("{table}({}) → {}", fk.columns.join(", "), fk.ref_table)
}

fn plan_views(schema: &Schema, names: &NamePlan, out: &mut TargetSchema, report: &mut Report) {
    let target = out.target;
    // Views that use other views come after them.
    let mut order: Vec<&View> = Vec::new();
    let mut pending: Vec<&View> = schema.views.iter().collect();
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| pending.iter().all(|o| o.name == pending[i].name || !mentions(&pending[i].query.sql, &o.name.name)))
            .collect();
        if ready.is_empty() {
            // A cycle: keep source order.
            order.append(&mut pending);
            break;
        }
        let mut batch: Vec<&View> = ready.into_iter().rev().map(|i| pending.remove(i)).collect();
        batch.reverse();
        order.extend(batch);
    }
    // Column names that are boolean on the target wherever they appear.
    let mut bools: Vec<String> = Vec::new();
    let mut not_bool: Vec<String> = Vec::new();
    for t in &out.tables {
        for c in &t.columns {
            let list = if matches!(c.ty, ColumnType::Bool) { &mut bools } else { &mut not_bool };
            list.push(c.source.to_ascii_lowercase());
        }
    }
    bools.retain(|b| !not_bool.contains(b));
    for v in order {
        let obj = v.name.to_string();
        let expr_names = ExprNames { plan: names, table: None, mapped_columns: Vec::new(), textual: Vec::new(), bools: bools.clone() };
        let parts = names.relation(&v.name);
        match expr::render_query(&v.query, &expr_names) {
            Ok(q) => {
                let materialized = v.materialized && target == Dialect::Postgres;
                out.views.push(TargetView { name: names.quote_parts(&parts), columns: v.columns.iter().map(|c| names.fold(c)).collect(), query: q, materialized, object: obj.clone(), indexes: Vec::new() });
                for (_, ix) in schema.view_indexes.iter().filter(|(n, _)| n.loosely_eq(&v.name)) {
                    let iobj = format!("{obj}.{}", ix.name.as_deref().unwrap_or("unnamed"));
                    let cols: Option<Vec<String>> = ix.parts.iter().map(|p| match &p.key {
                        IndexKey::Column(c) => Some(format!("{}{}", names.quote(&names.fold(c)), if p.descending { " DESC" } else { "" })),
                        IndexKey::Expression(_) => None,
                    }).collect();
                    match (materialized, cols) {
                        (true, Some(parts)) => {
                            let name = names.index_name(&v.name, ix.name.as_deref(), &format!("{}_idx", v.name.name));
                            let tix = TargetIndex { table: names.quote_parts(&parts_of_view(names, &v.name)), name, unique: ix.unique, parts, method: None, predicate: None, include: vec![], kind: None, object: iobj.clone() };
                            if let Some(tv) = out.views.last_mut() {
                                tv.indexes.push(tix);
                            }
                            report.push(ObjectKind::Index, iobj, Status::Converted, None, ix.origin.line, "index on a materialized view");
                        }
                        (true, None) => report.push(ObjectKind::Index, iobj, Status::Manual, Some(codes::INDEX_DROPPED), ix.origin.line, "expression index on a materialized view: create it by hand"),
                        (false, _) => report.push(ObjectKind::Index, iobj, Status::Manual, Some(codes::INDEX_DROPPED), ix.origin.line, format!("index on a materialized view, which is a plain view on {target}: a view has no indexes")),
                    }
                }
                if v.materialized && !materialized {
                    report.push(ObjectKind::View, obj.clone(), Status::Warning, Some(codes::VIEW_REWRITTEN), v.origin.line, "materialized view → plain view (no materialized views on the target)");
                } else if v.query.dialect != target {
                    report.push(ObjectKind::View, obj.clone(), Status::Warning, Some(codes::VIEW_REWRITTEN), v.origin.line, "query rewritten for the target: identifiers and known functions mapped; review the result");
                } else {
                    report.push(ObjectKind::View, obj.clone(), Status::Converted, None, v.origin.line, "view");
                }
                if let (Some(c), Dialect::Postgres) = (&v.comment, target) {
                    out.comments.push(format!("COMMENT ON {}VIEW {} IS {};", if materialized { "MATERIALIZED " } else { "" }, names.quote_parts(&parts), super::ddl::string_literal(target, c)));
                    out.comment_owners.push((ObjectKind::View, obj.clone()));
                }
            }
            Err(why) => {
                for (_, ix) in schema.view_indexes.iter().filter(|(n, _)| n.loosely_eq(&v.name)) {
                    report.push(ObjectKind::Index, format!("{obj}.{}", ix.name.as_deref().unwrap_or("unnamed")), Status::Manual, Some(codes::NOT_CREATED), ix.origin.line, "not created: its materialized view was not converted");
                }
                report.push(ObjectKind::View, obj, Status::Manual, Some(codes::VIEW_MANUAL), v.origin.line, format!("not converted: {why}"));
                out.manual.push(ManualSection { line: v.origin.line, title: format!("view {}", v.name), text: format!("CREATE VIEW {} AS {}", v.name, v.query.sql) });
            }
        }
    }
}

fn mentions(sql: &str, name: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let needle = name.to_ascii_lowercase();
    lower.match_indices(&needle).any(|(i, _)| {
        let before = lower[..i].chars().last();
        let after = lower[i + needle.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// A foreign key needs the same type on both ends; separate type rules can
/// disagree (e.g. `bigint unsigned` vs `bigint unsigned auto_increment`).
/// The referencing column takes the referenced column's type.
fn harmonize_foreign_key_types(index: &TableIndex, names: &NamePlan, out: &mut TargetSchema, report: &mut Report) {
    let target = out.target;
    let positions: std::collections::HashMap<QualifiedName, usize> = out.tables.iter().enumerate().map(|(i, t)| (t.source.clone(), i)).collect();
    for t in &index.schema.tables {
        for fk in &t.foreign_keys {
            let Some(rt) = index.get(&fk.ref_table) else { continue };
            for (c, rc) in fk.columns.iter().zip(&fk.ref_columns) {
                let Some(ref_col) = positions.get(&rt.name).and_then(|&i| out.tables[i].column_by_source(rc)).cloned() else { continue };
                let Some(tt) = positions.get(&t.name).map(|&i| &mut out.tables[i]) else { continue };
                let Some(col) = tt.columns.iter_mut().find(|x| x.source.eq_ignore_ascii_case(c)) else { continue };
                let numeric = |ty: &ColumnType| matches!(ty, ColumnType::Int { .. } | ColumnType::Decimal { .. });
                if col.sql_type != ref_col.sql_type && numeric(&col.ty) && numeric(&ref_col.ty) {
                    report.push(ObjectKind::Column, format!("{}.{}", t.name, c), Status::Converted, Some(codes::TYPE_CHANGED), fk.origin.line,
                        format!("{} → {} to match the referenced column {}.{}", col.sql_type, ref_col.sql_type, rt.name, rc));
                    col.ty = ref_col.ty.clone();
                    col.sql_type = super::ddl::type_sql(target, &col.ty, &names.enum_type_parts(&col.ty));
                }
            }
        }
    }
}

/// `22:00:00+00`, `2024-01-01 10:00:00+02:00`, `...Z`.
fn has_zone_suffix(s: &str) -> bool {
    !split_zone_suffix(s).1.is_empty()
}

fn split_zone_suffix(s: &str) -> (&str, &str) {
    if let Some(stripped) = s.strip_suffix('Z') {
        return (stripped, "Z");
    }
    // An offset follows the time part: look after the last ':' of hh:mm:ss.
    let Some(colon) = s.find(':') else { return (s, "") };
    match s[colon..].rfind(['+', '-']) {
        Some(i) => (&s[..colon + i], &s[colon + i..]),
        None => (s, ""),
    }
}
