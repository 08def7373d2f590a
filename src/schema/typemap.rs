//! Maps one column's type to the target: the first matching rule from
//! [`super::rules`], then the generic lowering below, which makes sure the
//! result is something the target can hold and says what changed.

use super::report::{codes, Code, Status};
use super::rules::{RuleSet, Transform};
use super::typetext;
use crate::model::*;

/// One thing the report should say about a column's type.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeNote {
    pub code: Code,
    pub status: Status,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Mapped {
    pub ty: ColumnType,
    pub transforms: Vec<Transform>,
    pub notes: Vec<TypeNote>,
    /// The rule that decided, for the report (`None`: generic mapping).
    pub rule: Option<String>,
}

fn note(code: Code, status: Status, message: impl Into<String>) -> TypeNote {
    TypeNote { code, status, message: message.into() }
}

pub fn map_column(rules: &RuleSet, source: Dialect, target: Dialect, table: &str, col: &Column) -> Mapped {
    let spec = typetext::parse(&col.source_type);
    let mut notes = Vec::new();
    let mut transforms = Vec::new();
    let mut rule_name = None;
    let mut ty = col.ty.clone();
    let mut asked_for = false;
    if let Some(rule) = rules.first_match(table, col, &spec) {
        if let Some(t) = rule.target_type(&spec, target) {
            // A type the user named that barge does not know (an
            // extension's, a typo) is written as named: the target says
            // whether it has it.
            asked_for = matches!(t, ColumnType::Other { .. });
            ty = t;
        }
        transforms = rule.transforms.clone();
        rule_name = Some(rule.origin.clone());
        let code = rule.code.as_deref().and_then(super::report::code_by_name).unwrap_or(codes::RULE_APPLIED);
        let status = match rule.status.as_deref() {
            Some("warning") => Status::Warning,
            Some("manual") => Status::Manual,
            _ => Status::Converted,
        };
        let msg = match &rule.note {
            Some(n) => n.clone(),
            None => format!("mapped by {}", rule.origin),
        };
        notes.push(note(code, status, msg));
    }
    if asked_for {
        return Mapped { ty, transforms, notes, rule: rule_name };
    }
    let (lowered, more) = lower(source, target, ty, col);
    notes.extend(more);
    Mapped { ty: lowered, transforms, notes, rule: rule_name }
}

/// Makes a type representable on the target.
pub fn lower(source: Dialect, target: Dialect, ty: ColumnType, col: &Column) -> (ColumnType, Vec<TypeNote>) {
    let mut notes = Vec::new();
    let ty = match target {
        Dialect::Postgres => lower_pg(source, ty, col, &mut notes),
        Dialect::Mysql => lower_mysql(source, ty, col, &mut notes),
        Dialect::Sqlite => lower_sqlite(source, ty, col, &mut notes),
        // Not targets; keep as is.
        Dialect::Mssql | Dialect::Oracle => ty,
    };
    (ty, notes)
}

fn lower_pg(source: Dialect, ty: ColumnType, col: &Column, notes: &mut Vec<TypeNote>) -> ColumnType {
    use ColumnType as T;
    match ty {
        T::Int { bits, unsigned: true } => {
            let (to, text) = match bits {
                8 => (T::int(16), "smallint"),
                16 => (T::int(32), "integer"),
                32 => (T::int(64), "bigint"),
                _ => (T::Decimal { precision: Some(20), scale: Some(0) }, "numeric(20)"),
            };
            notes.push(note(codes::UNSIGNED_WIDENED, Status::Converted, format!("unsigned {bits}-bit integer widened to {text}")));
            to
        }
        T::Int { bits: 8, .. } => T::int(16),
        T::Year => T::int(16),
        T::Set { values } => {
            notes.push(note(codes::SET_CONVERTED, Status::Warning, format!("SET({}) → text[]: each value becomes an array element", values.len())));
            T::Array { element: Box::new(T::text()) }
        }
        T::Decimal { precision: Some(p), scale } if p > 1000 => {
            notes.push(note(codes::TYPE_CHANGED, Status::Converted, format!("decimal({p}) → numeric without limit")));
            let _ = scale;
            T::Decimal { precision: None, scale: None }
        }
        T::Char { length, text } => T::Char { length: length.map(|l| l.min(10_485_760)), text: strip_charset(text) },
        T::Varchar { length, text } => T::Varchar { length: length.map(|l| l.min(10_485_760)), text: strip_charset(text) },
        T::Text { text, .. } => T::Text { size: LobSize::Long, text: strip_charset(text) },
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => T::Blob { size: LobSize::Long },
        T::Timestamp { precision: Some(p), tz } if p > 6 => {
            notes.push(note(codes::PRECISION_REDUCED, Status::Warning, format!("fractional seconds {p} → 6 (PostgreSQL maximum)")));
            T::Timestamp { precision: Some(6), tz }
        }
        T::Time { precision: Some(p), tz } if p > 6 => {
            notes.push(note(codes::PRECISION_REDUCED, Status::Warning, format!("fractional seconds {p} → 6 (PostgreSQL maximum)")));
            T::Time { precision: Some(6), tz }
        }
        T::Bit { length: None, varying: false } => T::Bit { length: Some(1), varying: false },
        T::Other { name } if source == Dialect::Postgres && is_postgres_core_type(&name) => T::Other { name },
        T::Other { name } if source == Dialect::Postgres && !name.is_empty() => {
            // An extension's type (vector, geometry, hstore...) or one defined
            // elsewhere: the target may lack it, and one column must not
            // cost the table.
            notes.push(note(codes::TYPE_UNKNOWN, Status::Warning, format!("{name} is not a built-in PostgreSQL type (an extension's, or defined outside the script): created as text, which holds its values' text form; install the extension and ALTER the column to keep the type")));
            T::text()
        }
        T::Other { name } => {
            let shown = if name.is_empty() { "untyped".to_string() } else { name };
            notes.push(note(codes::TYPE_UNKNOWN, Status::Warning, format!("{shown} has no PostgreSQL equivalent: mapped to text")));
            T::text()
        }
        T::Array { element } => {
            let (inner, more) = lower(source, Dialect::Postgres, *element, col);
            notes.extend(more);
            T::Array { element: Box::new(inner) }
        }
        other => other,
    }
}

/// PostgreSQL's own types barge does not model, which every PostgreSQL
/// server has (by name, without `pg_catalog.` and arguments).
fn is_postgres_core_type(name: &str) -> bool {
    let base = name.trim_start_matches("pg_catalog.").split('(').next().unwrap_or("").trim().trim_end_matches("[]");
    const CORE: &[&str] = &[
        "money", "inet", "cidr", "macaddr", "macaddr8", "tsvector", "tsquery", "point", "line", "lseg", "box", "path", "polygon",
        "circle", "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange", "int4multirange", "int8multirange",
        "nummultirange", "tsmultirange", "tstzmultirange", "datemultirange", "oid", "regclass", "regproc", "regprocedure", "regoper",
        "regoperator", "regtype", "regconfig", "regdictionary", "regnamespace", "regrole", "regcollation", "pg_lsn", "pg_snapshot",
        "txid_snapshot", "\"char\"", "xid", "xid8", "cid", "tid", "aclitem", "jsonpath", "refcursor",
    ];
    CORE.contains(&base)
}

/// MySQL/MariaDB types barge does not model that every server has.
fn is_mysql_builtin_type(name: &str) -> bool {
    let base = name.split('(').next().unwrap_or("").trim();
    ["geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection", "inet4", "inet6"]
        .contains(&base)
}

fn strip_charset(mut t: TextAttrs) -> TextAttrs {
    // Collations and charsets are engine-specific; PostgreSQL uses the
    // database's encoding and its own collations.
    t.charset = None;
    t.collation = None;
    t.national = false;
    t
}

fn lower_mysql(source: Dialect, ty: ColumnType, col: &Column, notes: &mut Vec<TypeNote>) -> ColumnType {
    use ColumnType as T;
    let same = source == Dialect::Mysql;
    match ty {
        T::Decimal { precision: None, .. } => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, "numeric without precision → decimal(65,30): values with more than 35 integer or 30 fractional digits will be rejected"));
            T::Decimal { precision: Some(65), scale: Some(30) }
        }
        T::Decimal { precision: Some(p), scale } if p > 65 || scale.unwrap_or(0) > 30 => {
            let s = scale.unwrap_or(0).min(30);
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, format!("decimal({p},{}) → decimal(65,{s}) (MySQL maximum)", scale.unwrap_or(0))));
            T::Decimal { precision: Some(p.min(65)), scale: Some(s) }
        }
        T::Char { length: Some(n), text } if n > 255 => T::Varchar { length: Some(n), text: keep_attrs(same, text) },
        T::Char { length, text } => T::Char { length, text: keep_attrs(same, text) },
        T::Varchar { length: None, text } => T::Text { size: LobSize::Long, text: keep_attrs(same, text) },
        T::Varchar { length: Some(n), text } if n > 16_383 => {
            notes.push(note(codes::TYPE_CHANGED, Status::Converted, format!("varchar({n}) → longtext (row size limit)")));
            T::Text { size: LobSize::Long, text: keep_attrs(same, text) }
        }
        T::Varchar { length, text } => T::Varchar { length, text: keep_attrs(same, text) },
        T::Text { size, text } => T::Text { size: if same { size } else { LobSize::Long }, text: keep_attrs(same, text) },
        T::Binary { length: Some(n) } if n > 255 => T::Varbinary { length: Some(n) },
        T::Varbinary { length: None } => T::Blob { size: LobSize::Long },
        T::Blob { size } => T::Blob { size: if same { size } else { LobSize::Long } },
        T::Time { precision, tz } => {
            if tz {
                notes.push(note(codes::TIME_ZONE, Status::Warning, "time with time zone → time: the zone offset is dropped"));
            }
            // Elsewhere an unstated precision means microseconds; in MySQL, seconds.
            let precision = if same { precision } else { precision.or(Some(6)) };
            T::Time { precision: reduce_precision(precision, notes), tz: false }
        }
        T::Timestamp { precision, tz } => {
            if tz && !same {
                notes.push(note(codes::TIME_ZONE, Status::Converted, "timestamp with time zone → datetime holding UTC"));
            }
            let precision = if same { precision } else { precision.or(Some(6)) };
            // MySQL TIMESTAMP (tz) stays TIMESTAMP on MySQL; others become DATETIME.
            T::Timestamp { precision: reduce_precision(precision, notes), tz: tz && same }
        }
        T::Interval { .. } => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, "interval → varchar(64) holding ISO 8601 durations (MySQL has no interval type)"));
            T::varchar(64)
        }
        T::Jsonb => T::Json,
        T::Uuid => {
            notes.push(note(codes::TYPE_CHANGED, Status::Converted, "uuid → char(36)"));
            T::Char { length: Some(36), text: TextAttrs { charset: Some("ascii".into()), collation: None, national: false } }
        }
        T::Enum { values, .. } => T::Enum { name: None, values },
        T::Bit { length: Some(n), .. } if n > 64 => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, format!("bit({n}) → varbinary({}) (MySQL bit holds at most 64)", n.div_ceil(8))));
            T::Varbinary { length: Some(n.div_ceil(8)) }
        }
        T::Bit { length: None, .. } => T::Bit { length: Some(64), varying: false },
        T::Bit { length, .. } => T::Bit { length, varying: false },
        T::Array { .. } => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, "array → json (MySQL has no arrays)"));
            T::Json
        }
        T::Xml => {
            notes.push(note(codes::TYPE_CHANGED, Status::Converted, "xml → longtext"));
            T::text()
        }
        T::Other { name } if same && is_mysql_builtin_type(&name) => T::Other { name },
        T::Other { name } => {
            let shown = if name.is_empty() { "untyped".to_string() } else { name };
            notes.push(note(codes::TYPE_UNKNOWN, Status::Warning, format!("{shown} has no MySQL equivalent: mapped to longtext")));
            T::text()
        }
        other => {
            let _ = col;
            other
        }
    }
}

fn keep_attrs(same: bool, t: TextAttrs) -> TextAttrs {
    if same {
        t
    } else {
        TextAttrs { charset: None, collation: None, national: false }
    }
}

fn reduce_precision(p: Option<u8>, notes: &mut Vec<TypeNote>) -> Option<u8> {
    match p {
        Some(p) if p > 6 => {
            notes.push(note(codes::PRECISION_REDUCED, Status::Warning, format!("fractional seconds {p} → 6 (target maximum)")));
            Some(6)
        }
        other => other,
    }
}

fn lower_sqlite(source: Dialect, ty: ColumnType, col: &Column, notes: &mut Vec<TypeNote>) -> ColumnType {
    use ColumnType as T;
    match ty {
        T::Int { bits: 64, unsigned: true } if col.identity.is_none() => {
            notes.push(note(codes::EXACT_NUMERIC, Status::Warning, "unsigned 64-bit integer → NUMERIC(20,0): SQLite integers are signed 64-bit, so a value above 9223372036854775807 (which numeric affinity would round) is refused at load with its table, key and column"));
            T::Decimal { precision: Some(20), scale: Some(0) }
        }
        // SQLite integers are 64-bit whatever the declared name; an unsigned
        // value is declared one size up, as PostgreSQL gets it.
        T::Int { bits, unsigned: true } => T::Int { bits: (bits * 2).min(64), unsigned: false },
        T::Int { bits, .. } => T::Int { bits, unsigned: false },
        T::Decimal { precision: Some(p), scale } if p <= 15 => T::Decimal { precision: Some(p), scale },
        T::Decimal { precision, scale } => {
            // Numeric affinity sorts and compares as numbers (text would
            // order 10, 100, 9.5); what it cannot hold exactly is refused at
            // load rather than rounded.
            let shown = match (precision, scale) {
                (Some(p), Some(s)) => format!("decimal({p},{s})"),
                (Some(p), None) => format!("decimal({p})"),
                _ => "numeric".into(),
            };
            notes.push(note(codes::EXACT_NUMERIC, Status::Warning, format!("{shown} → NUMERIC: SQLite's numeric affinity holds 15 significant digits (whole numbers up to 64 bits) exactly; a value needing more is refused at load with its table, key and column (--cast to TEXT keeps every digit but sorts as text)")));
            T::Decimal { precision, scale }
        }
        T::Enum { .. } | T::Set { .. } => {
            // Enums become TEXT + CHECK; the emitter adds the check.
            ty
        }
        T::Interval { .. } => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, "interval → TEXT holding ISO 8601 durations"));
            T::text()
        }
        T::Array { .. } => {
            notes.push(note(codes::TYPE_CHANGED, Status::Warning, "array → JSON text (SQLite has no arrays)"));
            T::Json
        }
        T::Other { name } if source == Dialect::Sqlite => T::Other { name },
        T::Other { name } => {
            notes.push(note(codes::TYPE_UNKNOWN, Status::Warning, format!("{name} has no SQLite equivalent: mapped to TEXT")));
            T::text()
        }
        T::Char { length, text } => T::Char { length, text: keep_attrs(false, text) },
        T::Varchar { length, text } => T::Varchar { length, text: keep_attrs(false, text) },
        T::Text { text, .. } => T::Text { size: LobSize::Long, text: keep_attrs(false, text) },
        other => other,
    }
}
