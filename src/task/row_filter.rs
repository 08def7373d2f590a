//! Row filters: AWS DMS source filters (`"filters"` in a selection rule),
//! applied in two places with one meaning:
//!
//! - the full load reads only matching rows: the filter becomes a WHERE the
//!   source evaluates ([`RowFilter::to_sql`]); values are written as typed
//!   literals barge builds from the parsed value, never pasted as SQL;
//! - change data capture evaluates the same filter on each change's row
//!   values ([`RowFilter::route`]): an update that takes a row out of the
//!   filter deletes it on the target, one that brings a row in inserts it,
//!   and a row outside the filter is never written.
//!
//! For both to agree, comparisons are exact on every engine: text compares
//! by code point and case-sensitively (the WHERE forces a binary collation;
//! `CHAR(n)` ignores trailing spaces, as PostgreSQL and MySQL do), numbers
//! compare as exact decimals (floats as doubles), dates and times as
//! instants. A NULL matches no comparison, only `null`. Within one filter
//! the conditions are ORed; filters (and rules) on the same table are ANDed.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Deserialize;

use crate::cdc::TableInfo;
use crate::error::{Error, Result};
use crate::model::value::normalize_decimal;
use crate::model::{Change, Column, ColumnType, Dialect, Op, QualifiedName, Table, Value};
use crate::task::load::quote_source;

/// One filter as a mapping file writes it (DMS's JSON shape).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FilterSpec {
    /// Only `source` (DMS has no other kind).
    pub filter_type: String,
    pub column_name: String,
    pub filter_conditions: Vec<ConditionSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConditionSpec {
    pub filter_operator: String,
    #[serde(default)]
    pub value: Option<Scalar>,
    #[serde(default)]
    pub start_value: Option<Scalar>,
    #[serde(default)]
    pub end_value: Option<Scalar>,
}

/// A value as written: DMS writes strings; whole numbers and booleans are
/// accepted too. A JSON fraction (`2.5`) would pass through a binary float
/// on its way in, so it is refused: write it as a string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Float(f64),
}

impl Scalar {
    fn text(&self) -> std::result::Result<String, String> {
        match self {
            Scalar::Text(s) => Ok(s.clone()),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::UInt(u) => Ok(u.to_string()),
            Scalar::Bool(b) => Ok(b.to_string()),
            Scalar::Float(f) => Err(format!("write the fraction {f} as a string (\"{f}\") so no digit is lost on the way in")),
        }
    }
}

/// The operators: DMS's names, and the spellings the issue tracker and
/// other tools use for the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Cmp(Cmp),
    Between { negated: bool },
    Null { is_null: bool },
    Text(TextOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextOp {
    BeginsWith,
    EndsWith,
    Contains,
}

pub const OPERATORS: &str = "eq, ne (noteq), lt, lte (ste), gt, gte, between, notbetween, null, notnull, begins-with, ends-with, contains";

fn operator(name: &str) -> Option<Operator> {
    Some(match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "eq" => Operator::Cmp(Cmp::Eq),
        "ne" | "noteq" | "neq" => Operator::Cmp(Cmp::Ne),
        "lt" => Operator::Cmp(Cmp::Lt),
        "lte" | "ste" | "le" => Operator::Cmp(Cmp::Le),
        "gt" => Operator::Cmp(Cmp::Gt),
        "gte" | "ge" => Operator::Cmp(Cmp::Ge),
        "between" => Operator::Between { negated: false },
        "notbetween" | "not-between" => Operator::Between { negated: true },
        "null" | "isnull" => Operator::Null { is_null: true },
        "notnull" | "not-null" | "isnotnull" => Operator::Null { is_null: false },
        "begins-with" | "beginswith" | "starts-with" => Operator::Text(TextOp::BeginsWith),
        "ends-with" | "endswith" => Operator::Text(TextOp::EndsWith),
        "contains" => Operator::Text(TextOp::Contains),
        _ => return None,
    })
}

impl FilterSpec {
    /// Checks what can be checked without the table: the filter type, the
    /// operators and which values each one takes.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.filter_type != "source" {
            return Err(format!("filter on `{}`: filter-type `{}` is not supported; write \"filter-type\": \"source\"", self.column_name, self.filter_type));
        }
        if self.column_name.is_empty() {
            return Err("a filter needs a column-name".into());
        }
        if self.filter_conditions.is_empty() {
            return Err(format!("filter on `{}` has no filter-conditions (it would match nothing)", self.column_name));
        }
        for c in &self.filter_conditions {
            let op = operator(&c.filter_operator)
                .ok_or_else(|| format!("filter on `{}`: unknown filter-operator `{}`; use one of: {OPERATORS}", self.column_name, c.filter_operator))?;
            let (one, two) = (c.value.is_some(), c.start_value.is_some() || c.end_value.is_some());
            let wants = match op {
                Operator::Cmp(_) | Operator::Text(_) if !one || two => Some("a `value` (and no start-value / end-value)"),
                Operator::Between { .. } if one || c.start_value.is_none() || c.end_value.is_none() => Some("a `start-value` and an `end-value` (and no value)"),
                Operator::Null { .. } if one || two => Some("no value"),
                _ => None,
            };
            if let Some(w) = wants {
                return Err(format!("filter on `{}`: `{}` takes {w}", self.column_name, c.filter_operator));
            }
            for v in [&c.value, &c.start_value, &c.end_value].into_iter().flatten() {
                v.text().map_err(|e| format!("filter on `{}`: {e}", self.column_name))?;
            }
        }
        Ok(())
    }
}

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    /// `trim`: CHAR(n), whose trailing spaces do not count.
    Text { trim: bool },
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Uuid,
    /// Anything else: only `null` / `notnull`.
    Other,
}

fn kind_of(ty: &ColumnType, d: Dialect) -> Kind {
    match ty {
        ColumnType::Int { .. } | ColumnType::Decimal { .. } | ColumnType::Float32 | ColumnType::Float64 | ColumnType::Year => Kind::Number,
        ColumnType::Char { .. } => Kind::Text { trim: d != Dialect::Sqlite },
        ColumnType::Varchar { .. } | ColumnType::Text { .. } | ColumnType::Enum { .. } => Kind::Text { trim: false },
        ColumnType::Bool => Kind::Bool,
        ColumnType::Date => Kind::Date,
        ColumnType::Timestamp { tz: false, .. } => Kind::Timestamp,
        ColumnType::Timestamp { tz: true, .. } => Kind::TimestampTz,
        ColumnType::Time { tz: false, .. } if d != Dialect::Sqlite => Kind::Time,
        ColumnType::Uuid if d != Dialect::Sqlite => Kind::Uuid,
        _ => Kind::Other,
    }
}

/// A filter value parsed for its column.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    /// Canonical decimal text (`-12.50`).
    Number(String),
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
    Time(NaiveTime),
    Uuid(uuid::Uuid),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Cmp(Cmp, Lit),
    Between { lo: Lit, hi: Lit, negated: bool },
    Null { is_null: bool },
    Text(TextOp, String),
}

/// One filter, compiled for its column: its conditions are ORed.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    column: String,
    kind: Kind,
    conds: Vec<Cond>,
}

/// Every filter a table has, compiled for its columns and source engine.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    pub table: QualifiedName,
    dialect: Dialect,
    /// DMS filters, ANDed.
    clauses: Vec<Clause>,
    /// `"filter": "<SQL>"` conditions (barge's own form), ANDed; the full
    /// load can use them, changes cannot.
    sql: Vec<String>,
    /// Whether an update's `before` holds the whole old row (MySQL with
    /// `binlog_row_image = FULL`, SQLite's triggers, PostgreSQL tables with
    /// `REPLICA IDENTITY FULL`), so a row leaving or entering the filter can
    /// be told apart from one that stays out.
    pub whole_before: bool,
}

impl RowFilter {
    /// Compiles `specs` against `table` (as the source has it). `sql` are
    /// SQL conditions from `"filter"` keys.
    pub fn compile(table: &Table, dialect: Dialect, specs: &[&FilterSpec], sql: Vec<String>) -> std::result::Result<RowFilter, String> {
        let mut clauses = Vec::new();
        for spec in specs {
            spec.check()?;
            let column = table.column(&spec.column_name).ok_or_else(|| {
                let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                format!("filter column `{}` is not a column of table {} (it has: {})", spec.column_name, table.name, names.join(", "))
            })?;
            clauses.push(compile_clause(column, dialect, spec)?);
        }
        let whole_before = dialect != Dialect::Postgres;
        Ok(RowFilter { table: table.name.clone(), dialect, clauses, sql, whole_before })
    }

    /// Whether the filter holds SQL conditions, which only the source can
    /// evaluate.
    pub fn has_sql(&self) -> bool {
        !self.sql.is_empty()
    }

    /// The filter as a WHERE condition in the source's SQL.
    pub fn to_sql(&self) -> String {
        let d = self.dialect;
        let mut parts: Vec<String> = self.sql.iter().map(|s| format!("({s})")).collect();
        for c in &self.clauses {
            let col = quote_source(d, &c.column);
            let ors: Vec<String> = c.conds.iter().map(|cond| cond_sql(d, &col, c.kind, cond)).collect();
            parts.push(format!("({})", ors.join(" OR ")));
        }
        parts.join(" AND ")
    }

    /// Whether a row passes; `None` when a value the filter needs was not
    /// sent (PostgreSQL leaves unchanged large values out of an update).
    fn passes(&self, columns: &[Column], row: &[Option<Value>]) -> Result<Option<bool>> {
        for clause in &self.clauses {
            let i = column_index(columns, &clause.column).ok_or_else(|| Error::Table {
                table: self.table.to_string(),
                row: None,
                message: format!("filter column `{}` is not among the columns replicated for this table", clause.column),
                hint: Some("keep the filter column in the copy (a remove-column rule cannot drop it), or filter on another column".into()),
            })?;
            let Some(v) = row.get(i).cloned().flatten() else { return Ok(None) };
            let mut any = false;
            for cond in &clause.conds {
                if self.cond_holds(clause, cond, &v)? {
                    any = true;
                    break;
                }
            }
            if !any {
                return Ok(Some(false));
            }
        }
        Ok(Some(true))
    }

    fn cond_holds(&self, clause: &Clause, cond: &Cond, v: &Value) -> Result<bool> {
        if v.is_null() {
            return Ok(matches!(cond, Cond::Null { is_null: true }));
        }
        let cmp = |lit: &Lit| compare(clause.kind, v, lit).map_err(|m| self.value_error(&clause.column, v, &m));
        Ok(match cond {
            Cond::Null { is_null } => !is_null,
            Cond::Cmp(op, lit) => match cmp(lit)? {
                None => false,
                Some(o) => match op {
                    Cmp::Eq => o == Ordering::Equal,
                    Cmp::Ne => o != Ordering::Equal,
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    Cmp::Ge => o != Ordering::Less,
                },
            },
            Cond::Between { lo, hi, negated } => match (cmp(lo)?, cmp(hi)?) {
                (Some(a), Some(b)) if *negated => a == Ordering::Less || b == Ordering::Greater,
                (Some(a), Some(b)) => a != Ordering::Less && b != Ordering::Greater,
                _ => false,
            },
            Cond::Text(op, lit) => {
                let s = match v {
                    Value::Text(s) | Value::Enum(s) => s.as_str(),
                    other => return Err(self.value_error(&clause.column, other, "text operators need a text value")),
                };
                let s = if clause.kind == (Kind::Text { trim: true }) { s.trim_end_matches(' ') } else { s };
                match op {
                    TextOp::BeginsWith => s.starts_with(lit.as_str()),
                    TextOp::EndsWith => s.ends_with(lit.as_str()),
                    TextOp::Contains => s.contains(lit.as_str()),
                }
            }
        })
    }

    fn value_error(&self, column: &str, v: &Value, why: &str) -> Error {
        Error::Table {
            table: self.table.to_string(),
            row: None,
            message: format!("column {column}: a {} value cannot be checked against the row filter: {why}", v.kind()),
            hint: Some("the source holds a value of another type than the column declares; fix the value, or filter on another column".into()),
        }
    }

    /// What a change becomes on a target that holds only the rows that pass:
    /// the change itself, an insert (the row came in), a delete (the row
    /// left), or nothing (the row was out and stays out).
    pub fn route(&self, info: &TableInfo, change: &Change) -> Result<Option<Change>> {
        let columns = &info.source.columns;
        let with = |op: Op| Some(Change { op, ..change.clone() });
        match &change.op {
            Op::Insert { row } => {
                let row: Vec<Option<Value>> = row.iter().cloned().map(Some).collect();
                Ok(self.passes(columns, &row)?.unwrap_or(false).then(|| change.clone()))
            }
            Op::Truncate => Ok(Some(change.clone())),
            // A keyed delete carries the key only: deleting a row the target
            // never had changes nothing. A key-less table's carries the row.
            Op::Delete { key } => {
                if !info.key.is_empty() || key.len() != columns.len() {
                    return Ok(Some(change.clone()));
                }
                let row: Vec<Option<Value>> = key.iter().cloned().map(Some).collect();
                Ok(self.passes(columns, &row)?.unwrap_or(false).then(|| change.clone()))
            }
            Op::Update { before, after } => {
                let whole = before.as_ref().filter(|b| self.whole_before && b.len() == columns.len());
                let mut new = after.clone();
                if let Some(b) = whole {
                    for (n, old) in new.iter_mut().zip(b) {
                        if n.is_none() {
                            *n = Some(old.clone());
                        }
                    }
                }
                let Some(now_in) = self.passes(columns, &new)? else {
                    return Err(Error::Table {
                        table: self.table.to_string(),
                        row: None,
                        message: "an update did not carry the filter column's value (PostgreSQL leaves an unchanged large value out), so the row filter cannot be checked".into(),
                        hint: Some(format!("run ALTER TABLE {} REPLICA IDENTITY FULL on the source, so updates carry whole rows, then rerun", self.table)),
                    });
                };
                let was_in = match whole {
                    Some(b) => Some(self.passes(columns, &b.iter().cloned().map(Some).collect::<Vec<_>>())?.unwrap_or(false)),
                    None => None,
                };
                let old_key = || -> Result<Vec<Value>> {
                    let source: Vec<Option<Value>> = match before {
                        Some(b) => b.iter().cloned().map(Some).collect(),
                        None => after.clone(),
                    };
                    if info.key.is_empty() {
                        return source.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| self.missing_key());
                    }
                    info.key.iter().map(|&i| source.get(i).cloned().flatten().or_else(|| after.get(i).cloned().flatten())).collect::<Option<Vec<_>>>().ok_or_else(|| self.missing_key())
                };
                match (was_in, now_in) {
                    (Some(false), false) => Ok(None),
                    // In now, out before: the target has no row to update.
                    (Some(false), true) => match new.iter().cloned().collect::<Option<Vec<Value>>>() {
                        Some(row) => Ok(with(Op::Insert { row })),
                        None => Ok(Some(change.clone())),
                    },
                    (Some(true), true) => Ok(with(Op::Update { before: before.clone(), after: new })),
                    // Out now: remove what the target may hold. Without the
                    // old row it cannot be known whether it was there.
                    (_, false) => Ok(with(Op::Delete { key: old_key()? })),
                    (None, true) => Ok(Some(change.clone())),
                }
            }
        }
    }

    fn missing_key(&self) -> Error {
        Error::Table { table: self.table.to_string(), row: None, message: "an update that leaves the row filter did not carry the row's key".into(), hint: None }
    }
}

fn column_index(columns: &[Column], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == name).or_else(|| columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)))
}

fn compile_clause(column: &Column, d: Dialect, spec: &FilterSpec) -> std::result::Result<Clause, String> {
    let kind = kind_of(&column.ty, d);
    let mut conds = Vec::new();
    let what = |e: String| format!("filter on `{}` ({}): {e}", column.name, column.ty.describe());
    for c in &spec.filter_conditions {
        let op = operator(&c.filter_operator).expect("checked by FilterSpec::check");
        let lit = |s: &Option<Scalar>| -> std::result::Result<Lit, String> {
            let text = s.as_ref().expect("checked by FilterSpec::check").text()?;
            parse_lit(kind, &text)
        };
        let cond = match op {
            Operator::Null { is_null } => Cond::Null { is_null },
            _ if kind == Kind::Other => {
                return Err(what(format!("a {} column takes only the null and notnull operators", column.ty.describe())));
            }
            Operator::Cmp(cmp) => {
                if matches!(kind, Kind::Bool | Kind::Uuid) && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                    return Err(what("this column takes eq, ne, null and notnull only".into()));
                }
                Cond::Cmp(cmp, lit(&c.value).map_err(what)?)
            }
            Operator::Between { negated } => {
                if matches!(kind, Kind::Bool | Kind::Uuid) {
                    return Err(what("this column takes eq, ne, null and notnull only".into()));
                }
                Cond::Between { lo: lit(&c.start_value).map_err(what)?, hi: lit(&c.end_value).map_err(what)?, negated }
            }
            Operator::Text(op) => {
                if !matches!(kind, Kind::Text { .. }) {
                    return Err(what(format!("`{}` applies to text columns only", c.filter_operator)));
                }
                match lit(&c.value).map_err(what)? {
                    Lit::Text(s) => Cond::Text(op, s),
                    _ => unreachable!("a text column's value parses as text"),
                }
            }
        };
        conds.push(cond);
    }
    Ok(Clause { column: column.name.clone(), kind, conds })
}

fn parse_lit(kind: Kind, s: &str) -> std::result::Result<Lit, String> {
    let bad = |what: &str| format!("`{s}` is not {what}");
    if s.contains('\0') {
        return Err("a filter value cannot hold a NUL character".into());
    }
    Ok(match kind {
        Kind::Number => {
            let n = normalize_decimal(s).filter(|n| !matches!(n.as_str(), "NaN" | "Infinity" | "-Infinity")).ok_or_else(|| bad("a number"))?;
            Lit::Number(n)
        }
        Kind::Text { .. } => Lit::Text(s.to_string()),
        Kind::Bool => Lit::Bool(match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "y" => true,
            "false" | "f" | "0" | "no" | "n" => false,
            _ => return Err(bad("a boolean (true or false)")),
        }),
        Kind::Date => Lit::Date(NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| bad("a date (YYYY-MM-DD)"))?),
        Kind::Timestamp => Lit::Timestamp(parse_naive_timestamp(s.trim()).ok_or_else(|| bad("a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"))?),
        Kind::TimestampTz => Lit::TimestampTz(
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| DateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f%:z").ok().map(|t| t.with_timezone(&Utc)))
                .or_else(|| parse_naive_timestamp(s.trim()).map(|t| t.and_utc()))
                .ok_or_else(|| bad("a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]; UTC when no offset is given)"))?,
        ),
        Kind::Time => Lit::Time(NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f").map_err(|_| bad("a time of day (HH:MM:SS[.ffffff])"))?),
        Kind::Uuid => Lit::Uuid(uuid::Uuid::parse_str(s.trim()).map_err(|_| bad("a UUID"))?),
        Kind::Other => return Err("this column takes only the null and notnull operators".into()),
    })
    .and_then(|lit| match &lit {
        Lit::Date(d) if !(1..=9999).contains(&chrono::Datelike::year(d)) => Err(bad("a date between years 1 and 9999")),
        Lit::Timestamp(t) if !(1..=9999).contains(&chrono::Datelike::year(t)) => Err(bad("a timestamp between years 1 and 9999")),
        Lit::TimestampTz(t) if !(1..=9999).contains(&chrono::Datelike::year(t)) => Err(bad("a timestamp between years 1 and 9999")),
        _ => Ok(lit),
    })
}

fn parse_naive_timestamp(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)))
}

/// Orders a column value against a filter value; `Ok(None)` for NULL.
fn compare(kind: Kind, v: &Value, lit: &Lit) -> std::result::Result<Option<Ordering>, String> {
    let unexpected = || format!("expected a value fitting the column, got {}", v.kind());
    Ok(Some(match (kind, lit) {
        (_, _) if v.is_null() => return Ok(None),
        (Kind::Number, Lit::Number(n)) => match v {
            Value::Int(i) => cmp_decimal(&i.to_string(), n),
            Value::UInt(u) => cmp_decimal(&u.to_string(), n),
            Value::Year(y) => cmp_decimal(&y.to_string(), n),
            Value::Bool(b) => cmp_decimal(if *b { "1" } else { "0" }, n),
            Value::Float32(f) => cmp_float(*f as f64, n),
            Value::Float64(f) => cmp_float(*f, n),
            Value::Decimal(d) => match d.as_str() {
                // PostgreSQL sorts NaN above every number.
                "NaN" | "Infinity" => Ordering::Greater,
                "-Infinity" => Ordering::Less,
                d => cmp_decimal(d, n),
            },
            // SQLite keeps whatever it is given.
            Value::Text(s) => cmp_decimal(&normalize_decimal(s).ok_or_else(unexpected)?, n),
            _ => return Err(unexpected()),
        },
        (Kind::Text { trim }, Lit::Text(t)) => match v {
            Value::Text(s) | Value::Enum(s) => {
                let s = if trim { s.trim_end_matches(' ') } else { s.as_str() };
                s.cmp(t.as_str())
            }
            _ => return Err(unexpected()),
        },
        (Kind::Bool, Lit::Bool(b)) => match v {
            Value::Bool(x) => x.cmp(b),
            Value::Int(i @ (0 | 1)) => (*i == 1).cmp(b),
            _ => return Err(unexpected()),
        },
        (Kind::Date, Lit::Date(d)) => match v {
            Value::Date(x) => x.cmp(d),
            Value::Timestamp(x) => x.cmp(&d.and_time(NaiveTime::MIN)),
            Value::Infinity { negative } => infinity(*negative),
            Value::ZeroDate => Ordering::Less,
            Value::Text(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| unexpected())?.cmp(d),
            _ => return Err(unexpected()),
        },
        (Kind::Timestamp, Lit::Timestamp(t)) => match v {
            Value::Timestamp(x) => x.cmp(t),
            Value::Date(x) => x.and_time(NaiveTime::MIN).cmp(t),
            Value::Infinity { negative } => infinity(*negative),
            Value::ZeroDate => Ordering::Less,
            Value::Text(s) => parse_naive_timestamp(s).ok_or_else(unexpected)?.cmp(t),
            _ => return Err(unexpected()),
        },
        (Kind::TimestampTz, Lit::TimestampTz(t)) => match v {
            Value::TimestampTz(x) => x.cmp(t),
            Value::Timestamp(x) => x.and_utc().cmp(t),
            Value::Infinity { negative } => infinity(*negative),
            Value::ZeroDate => Ordering::Less,
            _ => return Err(unexpected()),
        },
        (Kind::Time, Lit::Time(t)) => match v {
            Value::Time(x) => x.cmp(t),
            _ => return Err(unexpected()),
        },
        (Kind::Uuid, Lit::Uuid(u)) => match v {
            Value::Uuid(b) => b.cmp(u.as_bytes()),
            Value::Text(s) => uuid::Uuid::parse_str(s).map_err(|_| unexpected())?.as_bytes().cmp(u.as_bytes()),
            _ => return Err(unexpected()),
        },
        _ => return Err(unexpected()),
    }))
}

fn infinity(negative: bool) -> Ordering {
    if negative {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

/// A double against a decimal literal, as the engines compare them (both
/// as doubles); NaN sorts above every number, as in PostgreSQL.
fn cmp_float(f: f64, n: &str) -> Ordering {
    let lit: f64 = n.parse().unwrap_or(f64::NAN);
    f.partial_cmp(&lit).unwrap_or(if f.is_nan() { Ordering::Greater } else { Ordering::Less })
}

/// Orders two canonical decimals (`-?digits(.digits)?`) exactly.
pub fn cmp_decimal(a: &str, b: &str) -> Ordering {
    let (neg_a, a) = a.strip_prefix('-').map_or((false, a), |r| (true, r));
    let (neg_b, b) = b.strip_prefix('-').map_or((false, b), |r| (true, r));
    let zero = |s: &str| s.bytes().all(|c| c == b'0' || c == b'.');
    let (neg_a, neg_b) = (neg_a && !zero(a), neg_b && !zero(b));
    match (neg_a, neg_b) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => cmp_magnitude(a, b),
        (true, true) => cmp_magnitude(b, a),
    }
}

fn cmp_magnitude(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> (String, String) {
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        let i = i.trim_start_matches('0');
        (i.to_string(), f.trim_end_matches('0').to_string())
    };
    let ((ia, fa), (ib, fb)) = (split(a), split(b));
    ia.len().cmp(&ib.len()).then_with(|| ia.cmp(&ib)).then_with(|| {
        let width = fa.len().max(fb.len());
        format!("{fa:0<width$}").cmp(&format!("{fb:0<width$}"))
    })
}

// ----- setting up change capture ------------------------------------------

/// Tables with a row filter, on a PostgreSQL source, get `REPLICA IDENTITY
/// FULL` before capture starts: then every update carries the whole old
/// row, so a row that leaves the filter is deleted on the target, one that
/// enters it is inserted whole, and one that stays out is never written.
/// (barge already does this for tables without a key.) Any filter changes
/// cannot go through (a SQL `filter`) is refused here, before the load
/// rather than after it.
pub async fn prepare_source(src: &crate::endpoint::Endpoint, tables: &[Table], mapping: &super::mapping::Mapping) -> Result<()> {
    let dialect = match src {
        crate::endpoint::Endpoint::Postgres(_) => Dialect::Postgres,
        crate::endpoint::Endpoint::Mysql(_) => Dialect::Mysql,
        crate::endpoint::Endpoint::Sqlite(_) => Dialect::Sqlite,
        _ => return Ok(()),
    };
    let mut filtered = Vec::new();
    for t in tables {
        if mapping.change_filter(t, dialect)?.is_some() {
            filtered.push(t);
        }
    }
    let crate::endpoint::Endpoint::Postgres(ep) = src else { return Ok(()) };
    if filtered.is_empty() {
        return Ok(());
    }
    let client = crate::db::postgres::connect_client(ep, crate::endpoint::Role::Source).await?;
    for t in filtered {
        let name = pg_table(t);
        if replica_identity(&client, ep, &name).await? != "f" {
            let sql = format!("ALTER TABLE {name} REPLICA IDENTITY FULL");
            client.batch_execute(&sql).await.map_err(|e| {
                crate::db::postgres::query_error(&ep.display, &sql, e)
                    .with_hint(format!("{} has a row filter; barge needs updates to carry whole rows to apply it: run the ALTER TABLE as the table's owner", t.name))
            })?;
            tracing::warn!("{} has a row filter: set REPLICA IDENTITY FULL on the source, so updates carry whole rows", t.name);
        }
    }
    Ok(())
}

/// The row filters changes go through, one per table (in `tables` order).
/// On PostgreSQL, a table without `REPLICA IDENTITY FULL` is filtered on
/// the new row only: a row that leaves is still deleted, but one that
/// enters is written only if the update sent every column.
pub async fn for_changes(src: &crate::endpoint::Endpoint, mapping: &super::mapping::Mapping, tables: &[&Table], dialect: Dialect) -> Result<Vec<Option<std::sync::Arc<RowFilter>>>> {
    let mut out = Vec::new();
    let mut pg = None;
    for t in tables {
        let Some(mut f) = mapping.change_filter(t, dialect)? else {
            out.push(None);
            continue;
        };
        if let crate::endpoint::Endpoint::Postgres(ep) = src {
            if pg.is_none() {
                pg = Some(crate::db::postgres::connect_client(ep, crate::endpoint::Role::Source).await?);
            }
            let client = pg.as_ref().expect("connected above");
            f.whole_before = replica_identity(client, ep, &pg_table(t)).await? == "f";
            if !f.whole_before {
                tracing::warn!(
                    "{} has a row filter but not REPLICA IDENTITY FULL: updates that bring a row into the filter are applied only when they carry every column; run ALTER TABLE {} REPLICA IDENTITY FULL on the source",
                    t.name,
                    pg_table(t)
                );
            }
        }
        out.push(Some(std::sync::Arc::new(f)));
    }
    Ok(out)
}

fn pg_table(t: &Table) -> String {
    format!("{}.{}", quote_source(Dialect::Postgres, t.name.schema.as_deref().unwrap_or("public")), quote_source(Dialect::Postgres, &t.name.name))
}

async fn replica_identity(client: &tokio_postgres::Client, ep: &crate::endpoint::DbEndpoint, table_sql: &str) -> Result<String> {
    let sql = "SELECT relreplident::text FROM pg_class WHERE oid = $1::text::regclass";
    let row = client.query_one(sql, &[&table_sql]).await.map_err(|e| crate::db::postgres::query_error(&ep.display, sql, e))?;
    Ok(row.get(0))
}

// ----- SQL ---------------------------------------------------------------

/// The column as compared: text in a binary collation, so the source
/// orders and matches it as the Rust side does.
fn column_sql(d: Dialect, col: &str, kind: Kind) -> String {
    match (kind, d) {
        (Kind::Text { .. }, Dialect::Postgres) => format!("(CAST({col} AS text) COLLATE \"C\")"),
        (Kind::Text { .. }, Dialect::Mysql) => format!("CAST(CONVERT({col} USING utf8mb4) AS BINARY)"),
        (Kind::Text { .. }, _) => format!("(CAST({col} AS TEXT) COLLATE BINARY)"),
        (Kind::Date | Kind::Timestamp | Kind::TimestampTz, Dialect::Sqlite) => format!("julianday({col})"),
        _ => col.to_string(),
    }
}

/// A text value as a string literal of dialect `d`. PostgreSQL gets an
/// escape string (`E'…'`), whose meaning does not depend on
/// `standard_conforming_strings`; MySQL sessions run without
/// `NO_BACKSLASH_ESCAPES` (see `db::mysql`), so backslashes are escaped.
/// NUL never reaches here (refused when the filter is compiled).
pub fn string_literal(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        Dialect::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        _ => format!("'{}'", s.replace('\'', "''")),
    }
}

fn lit_sql(d: Dialect, lit: &Lit) -> String {
    let text = |s: &str| string_literal(d, s);
    match (lit, d) {
        (Lit::Number(n), _) => n.clone(),
        (Lit::Text(s), Dialect::Mysql) => format!("CAST({} AS BINARY)", text(s)),
        (Lit::Text(s), _) => text(s),
        (Lit::Bool(b), Dialect::Postgres) => if *b { "TRUE" } else { "FALSE" }.into(),
        (Lit::Bool(b), _) => if *b { "1" } else { "0" }.into(),
        (Lit::Date(x), Dialect::Sqlite) => format!("julianday({})", text(&x.format("%Y-%m-%d").to_string())),
        (Lit::Date(x), _) => format!("DATE {}", text(&x.format("%Y-%m-%d").to_string())),
        (Lit::Timestamp(x), Dialect::Postgres) => format!("TIMESTAMP {}", text(&x.format("%Y-%m-%d %H:%M:%S%.6f").to_string())),
        (Lit::Timestamp(x), Dialect::Mysql) => format!("CAST({} AS DATETIME(6))", text(&x.format("%Y-%m-%d %H:%M:%S%.6f").to_string())),
        (Lit::Timestamp(x), _) => format!("julianday({})", text(&x.format("%Y-%m-%d %H:%M:%S%.6f").to_string())),
        (Lit::TimestampTz(x), Dialect::Postgres) => format!("TIMESTAMP WITH TIME ZONE {}", text(&x.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())),
        // barge's MySQL sessions run in UTC (see `db::mysql`).
        (Lit::TimestampTz(x), Dialect::Mysql) => format!("CAST({} AS DATETIME(6))", text(&x.format("%Y-%m-%d %H:%M:%S%.6f").to_string())),
        (Lit::TimestampTz(x), _) => format!("julianday({})", text(&x.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())),
        (Lit::Time(x), Dialect::Postgres) => format!("TIME {}", text(&x.format("%H:%M:%S%.6f").to_string())),
        (Lit::Time(x), _) => format!("CAST({} AS TIME(6))", text(&x.format("%H:%M:%S%.6f").to_string())),
        (Lit::Uuid(u), Dialect::Postgres) => format!("CAST({} AS uuid)", text(&u.hyphenated().to_string())),
        (Lit::Uuid(u), _) => text(&u.hyphenated().to_string()),
    }
}

fn cond_sql(d: Dialect, col: &str, kind: Kind, cond: &Cond) -> String {
    let x = column_sql(d, col, kind);
    match cond {
        Cond::Null { is_null: true } => format!("{col} IS NULL"),
        Cond::Null { is_null: false } => format!("{col} IS NOT NULL"),
        Cond::Cmp(op, lit) => {
            let op = match op {
                Cmp::Eq => "=",
                Cmp::Ne => "<>",
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Gt => ">",
                Cmp::Ge => ">=",
            };
            format!("{x} {op} {}", lit_sql(d, lit))
        }
        Cond::Between { lo, hi, negated } => {
            format!("{x} {}BETWEEN {} AND {}", if *negated { "NOT " } else { "" }, lit_sql(d, lo), lit_sql(d, hi))
        }
        Cond::Text(_, s) if s.is_empty() => format!("{col} IS NOT NULL"),
        Cond::Text(op, s) => {
            let lit = lit_sql(d, &Lit::Text(s.clone()));
            // Lengths in the unit each engine's functions count: bytes for
            // MySQL's binary strings, characters elsewhere.
            let n = if d == Dialect::Mysql { s.len() } else { s.chars().count() };
            match (op, d) {
                (TextOp::BeginsWith, Dialect::Postgres) => format!("left({x}, {n}) = {lit}"),
                (TextOp::EndsWith, Dialect::Postgres) => format!("right({x}, {n}) = {lit}"),
                (TextOp::Contains, Dialect::Postgres) => format!("strpos({x}, {lit}) > 0"),
                (TextOp::BeginsWith, Dialect::Mysql) => format!("LEFT({x}, {n}) = {lit}"),
                (TextOp::EndsWith, Dialect::Mysql) => format!("RIGHT({x}, {n}) = {lit}"),
                (TextOp::Contains, Dialect::Mysql) => format!("LOCATE({lit}, {x}) > 0"),
                (TextOp::BeginsWith, _) => format!("substr({x}, 1, {n}) = {lit}"),
                (TextOp::EndsWith, _) => format!("substr({x}, -{n}) = {lit}"),
                (TextOp::Contains, _) => format!("instr({x}, {lit}) > 0"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(QualifiedName::bare("accounts"));
        t.columns = vec![
            Column::new("id", ColumnType::int(64), "bigint"),
            Column::new("bid", ColumnType::int(32), "int"),
            Column::new("region", ColumnType::varchar(20), "varchar(20)"),
            Column::new("code", ColumnType::Char { length: Some(4), text: Default::default() }, "char(4)"),
            Column::new("balance", ColumnType::Decimal { precision: Some(12), scale: Some(2) }, "numeric(12,2)"),
            Column::new("opened", ColumnType::Date, "date"),
            Column::new("doc", ColumnType::Json, "json"),
        ];
        t
    }

    /// (operator, value, (start-value, end-value)).
    type Condition<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);

    fn spec(column: &str, conds: &[Condition]) -> FilterSpec {
        FilterSpec {
            filter_type: "source".into(),
            column_name: column.into(),
            filter_conditions: conds
                .iter()
                .map(|(op, v, range)| ConditionSpec {
                    filter_operator: op.to_string(),
                    value: v.map(|v| Scalar::Text(v.into())),
                    start_value: range.map(|r| Scalar::Text(r.0.into())),
                    end_value: range.map(|r| Scalar::Text(r.1.into())),
                })
                .collect(),
        }
    }

    fn row(bid: i64, region: &str, balance: &str) -> Vec<Option<Value>> {
        vec![
            Some(Value::Int(1)),
            Some(Value::Int(bid)),
            Some(Value::Text(region.into())),
            Some(Value::Text("ab  ".into())),
            Some(Value::Decimal(balance.into())),
            Some(Value::Date(NaiveDate::from_ymd_opt(2020, 5, 1).unwrap())),
            Some(Value::Null),
        ]
    }

    #[test]
    fn or_within_and_across_and_sql_in_every_dialect() {
        let t = table();
        let a = spec("bid", &[("lte", Some("2"), None), ("eq", Some("9"), None)]);
        let b = spec("region", &[("begins-with", Some("eu-"), None)]);
        for d in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
            let f = RowFilter::compile(&t, d, &[&a, &b], vec![]).unwrap();
            assert!(f.passes(&t.columns, &row(2, "eu-west", "1")).unwrap().unwrap());
            assert!(f.passes(&t.columns, &row(9, "eu-west", "1")).unwrap().unwrap());
            assert!(!f.passes(&t.columns, &row(3, "eu-west", "1")).unwrap().unwrap());
            assert!(!f.passes(&t.columns, &row(1, "EU-west", "1")).unwrap().unwrap(), "case-sensitive");
            let sql = f.to_sql();
            assert!(sql.contains(" OR ") && sql.contains(") AND ("), "{sql}");
        }
        let f = RowFilter::compile(&t, Dialect::Postgres, &[&a, &b], vec![]).unwrap();
        assert_eq!(f.to_sql(), r#"("bid" <= 2 OR "bid" = 9) AND (left((CAST("region" AS text) COLLATE "C"), 3) = E'eu-')"#);
        let f = RowFilter::compile(&t, Dialect::Mysql, &[&a, &b], vec![]).unwrap();
        assert_eq!(f.to_sql(), "(`bid` <= 2 OR `bid` = 9) AND (LEFT(CAST(CONVERT(`region` USING utf8mb4) AS BINARY), 3) = CAST('eu-' AS BINARY))");
    }

    #[test]
    fn values_are_data_never_sql() {
        let t = table();
        let evil = r"x' OR 1=1 -- \' ; DROP TABLE accounts; ";
        let s = spec("region", &[("eq", Some(evil), None)]);
        let pg = RowFilter::compile(&t, Dialect::Postgres, &[&s], vec![]).unwrap().to_sql();
        assert_eq!(pg, r#"((CAST("region" AS text) COLLATE "C") = E'x'' OR 1=1 -- \\'' ; DROP TABLE accounts; ')"#);
        let my = RowFilter::compile(&t, Dialect::Mysql, &[&s], vec![]).unwrap().to_sql();
        assert!(my.contains(r"'x\' OR 1=1 -- \\\' ; DROP TABLE accounts; '"), "{my}");
        let lite = RowFilter::compile(&t, Dialect::Sqlite, &[&s], vec![]).unwrap().to_sql();
        assert!(lite.contains("'x'' OR 1=1 -- \\'' ; DROP TABLE accounts; '"), "{lite}");
        // A number column takes numbers only.
        let s = spec("bid", &[("eq", Some("1 OR 1=1"), None)]);
        assert!(RowFilter::compile(&t, Dialect::Postgres, &[&s], vec![]).unwrap_err().contains("not a number"));
        let s = spec("region", &[("eq", Some("a\0b"), None)]);
        assert!(RowFilter::compile(&t, Dialect::Postgres, &[&s], vec![]).is_err());
    }

    #[test]
    fn unknown_columns_operators_and_arity_are_errors() {
        let t = table();
        let e = RowFilter::compile(&t, Dialect::Postgres, &[&spec("bidd", &[("eq", Some("1"), None)])], vec![]).unwrap_err();
        assert!(e.contains("`bidd`") && e.contains("bid, region"), "{e}");
        assert!(spec("bid", &[("lessthan", Some("1"), None)]).check().unwrap_err().contains("unknown filter-operator"));
        assert!(spec("bid", &[("between", Some("1"), None)]).check().unwrap_err().contains("start-value"));
        assert!(spec("bid", &[("null", Some("1"), None)]).check().unwrap_err().contains("no value"));
        assert!(spec("bid", &[]).check().is_err());
        let e = RowFilter::compile(&t, Dialect::Postgres, &[&spec("doc", &[("eq", Some("{}"), None)])], vec![]).unwrap_err();
        assert!(e.contains("null and notnull"), "{e}");
        let e = RowFilter::compile(&t, Dialect::Postgres, &[&spec("bid", &[("contains", Some("1"), None)])], vec![]).unwrap_err();
        assert!(e.contains("text columns"), "{e}");
    }

    #[test]
    fn every_operator_on_values() {
        let t = table();
        let check = |s: FilterSpec, r: Vec<Option<Value>>| RowFilter::compile(&t, Dialect::Postgres, &[&s], vec![]).unwrap().passes(&t.columns, &r).unwrap().unwrap();
        assert!(check(spec("bid", &[("ne", Some("3"), None)]), row(2, "x", "1")));
        assert!(check(spec("bid", &[("lt", Some("3"), None)]), row(2, "x", "1")));
        assert!(!check(spec("bid", &[("gt", Some("2"), None)]), row(2, "x", "1")));
        assert!(check(spec("bid", &[("gte", Some("2"), None)]), row(2, "x", "1")));
        assert!(check(spec("balance", &[("between", None, Some(("10.5", "10.50")))]), row(2, "x", "10.500")));
        assert!(!check(spec("balance", &[("notbetween", None, Some(("-1", "10.50")))]), row(2, "x", "10.5")));
        assert!(check(spec("balance", &[("gt", Some("-0.01"), None)]), row(2, "x", "0.00")));
        assert!(check(spec("region", &[("ends-with", Some("west"), None)]), row(2, "eu-west", "1")));
        assert!(check(spec("region", &[("contains", Some("u-w"), None)]), row(2, "eu-west", "1")));
        assert!(check(spec("code", &[("eq", Some("ab"), None)]), row(2, "x", "1")), "CHAR ignores trailing spaces");
        assert!(check(spec("doc", &[("null", None, None)]), row(2, "x", "1")));
        assert!(!check(spec("doc", &[("notnull", None, None)]), row(2, "x", "1")));
        assert!(check(spec("opened", &[("gte", Some("2020-05-01"), None)]), row(2, "x", "1")));
        let mut nulls = row(2, "x", "1");
        nulls[1] = Some(Value::Null);
        assert!(!check(spec("bid", &[("ne", Some("3"), None)]), nulls.clone()), "NULL matches no comparison");
        assert!(!check(spec("bid", &[("notbetween", None, Some(("3", "4")))]), nulls));
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(cmp_decimal("10.50", "10.5"), Ordering::Equal);
        assert_eq!(cmp_decimal("-2", "1"), Ordering::Less);
        assert_eq!(cmp_decimal("-2", "-10"), Ordering::Greater);
        assert_eq!(cmp_decimal("123456789012345678901234567890.1", "123456789012345678901234567890.09"), Ordering::Greater);
        assert_eq!(cmp_decimal("0.0", "-0"), Ordering::Equal);
        assert_eq!(cmp_decimal("0.001", "0.01"), Ordering::Less);
    }
}
