//! Expressions of `--sql`, planned against a table's columns: each has a
//! type known before any row is read (as in PostgreSQL: text from
//! `->>` must be cast before arithmetic), so the output table's columns
//! are declared, and each row's value is of its column's type.
//!
//! Evaluation follows PostgreSQL: NULL propagates and comparisons with
//! NULL are unknown; integers overflow with an error; integer division
//! truncates; decimals are exact (see [`super::decimal`]); a float
//! appears only where the query has one. An error (a bad cast, division
//! by zero) is the record's, not the run's: the caller sets the record
//! aside with the reason.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use super::decimal::Dec;
use crate::model::value::Interval;
use crate::model::{ColumnType, Value};

/// What a value is, for typing and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Dec,
    Float,
    Text,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Json,
    Bytes,
    /// Anything else (uuid, enum, arrays): compared for equality, passed through.
    Other,
    /// A NULL literal: takes any type.
    Null,
}

pub fn kind_of(t: &ColumnType) -> Kind {
    use ColumnType as T;
    match t {
        T::Bool => Kind::Bool,
        T::Int { .. } | T::Year => Kind::Int,
        T::Decimal { .. } => Kind::Dec,
        T::Float32 | T::Float64 => Kind::Float,
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Enum { .. } => Kind::Text,
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => Kind::Bytes,
        T::Date => Kind::Date,
        T::Time { .. } => Kind::Time,
        T::Timestamp { tz: false, .. } => Kind::Timestamp,
        T::Timestamp { tz: true, .. } => Kind::TimestampTz,
        T::Interval { .. } => Kind::Interval,
        T::Json | T::Jsonb => Kind::Json,
        _ => Kind::Other,
    }
}

pub fn text_type() -> ColumnType {
    ColumnType::Text { size: crate::model::types::LobSize::Long, text: Default::default() }
}

pub fn bigint() -> ColumnType {
    ColumnType::Int { bits: 64, unsigned: false }
}

pub fn numeric() -> ColumnType {
    ColumnType::Decimal { precision: None, scale: None }
}

pub fn timestamptz() -> ColumnType {
    ColumnType::Timestamp { precision: Some(6), tz: true }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Lower,
    Upper,
    /// substring(s, from [, for])
    Substring,
    /// concat(a, b, …): NULLs count as empty
    ConcatFn,
    /// trim(s, chars, where): 0 both, 1 leading, 2 trailing
    Trim(u8),
    Length,
    Replace,
    Coalesce,
    NullIf,
    Abs,
    /// round(x [, digits])
    Round,
    /// date_trunc('unit', ts)
    DateTrunc,
    /// extract(field from ts): the field is the first argument
    Extract,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Column(usize),
    Literal(Value),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `x IS [NOT] TRUE|FALSE`: (value tested, negated)
    IsBool(Box<Expr>, bool, bool),
    Case { operand: Option<Box<Expr>>, whens: Vec<(Expr, Expr)>, otherwise: Option<Box<Expr>> },
    Cast(Box<Expr>, ColumnType),
    Func(Func, Vec<Expr>),
    /// `base -> key` (JSON) or `base ->> key` (text)
    JsonGet { base: Box<Expr>, key: Box<Expr>, text: bool },
    InList { expr: Box<Expr>, list: Vec<Expr>, negated: bool },
    Like { expr: Box<Expr>, pattern: Box<Expr>, negated: bool, insensitive: bool },
}

pub type EvalResult = std::result::Result<Value, String>;

impl Expr {
    pub fn eval(&self, row: &[Value]) -> EvalResult {
        self.eval_in(&Row::new(row))
    }

    /// Evaluates on `row`, whose JSON columns are parsed once for all the
    /// expressions that read them.
    pub fn eval_in(&self, row: &Row<'_>) -> EvalResult {
        match self {
            Expr::Column(i) => Ok(row.values.get(*i).cloned().unwrap_or(Value::Null)),
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Neg(e) => neg(e.eval_in(row)?),
            Expr::Not(e) => Ok(match truth(&e.eval_in(row)?)? {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            }),
            Expr::Binary(BinOp::And, a, b) => {
                let x = truth(&a.eval_in(row)?)?;
                if x == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let y = truth(&b.eval_in(row)?)?;
                Ok(match (x, y) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                })
            }
            Expr::Binary(BinOp::Or, a, b) => {
                let x = truth(&a.eval_in(row)?)?;
                if x == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let y = truth(&b.eval_in(row)?)?;
                Ok(match (x, y) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                })
            }
            Expr::Binary(op, a, b) => binary(*op, a.eval_in(row)?, b.eval_in(row)?),
            Expr::IsNull(e, negated) => Ok(Value::Bool(e.eval_in(row)?.is_null() != *negated)),
            Expr::IsBool(e, want, negated) => Ok(Value::Bool((truth(&e.eval_in(row)?)? == Some(*want)) != *negated)),
            Expr::Case { operand, whens, otherwise } => {
                let subject = match operand {
                    Some(o) => Some(o.eval_in(row)?),
                    None => None,
                };
                for (w, then) in whens {
                    let hit = match &subject {
                        Some(s) => compare(s, &w.eval_in(row)?)? == Some(Ordering::Equal),
                        None => truth(&w.eval_in(row)?)? == Some(true),
                    };
                    if hit {
                        return then.eval_in(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval_in(row),
                    None => Ok(Value::Null),
                }
            }
            Expr::Cast(e, ty) => cast(e.eval_in(row)?, ty),
            Expr::Func(f, args) => {
                let vals = args.iter().map(|a| a.eval_in(row)).collect::<std::result::Result<Vec<_>, _>>()?;
                call(*f, vals)
            }
            Expr::JsonGet { base, key, text } => {
                let key = key.eval_in(row)?;
                if let (Expr::Column(i), Value::Text(name)) = (base.as_ref(), &key) {
                    if let Some(found) = row.field(*i, name) {
                        return json_found(found?, *text);
                    }
                }
                json_get(base.eval_in(row)?, key, *text)
            }
            Expr::InList { expr, list, negated } => {
                let v = expr.eval_in(row)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                for item in list {
                    match compare(&v, &item.eval_in(row)?)? {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!*negated)),
                        None => unknown = true,
                        _ => {}
                    }
                }
                Ok(if unknown { Value::Null } else { Value::Bool(*negated) })
            }
            Expr::Like { expr, pattern, negated, insensitive } => {
                let (v, p) = (expr.eval_in(row)?, pattern.eval_in(row)?);
                let (Some(v), Some(p)) = (as_text(&v), as_text(&p)) else { return Ok(Value::Null) };
                let hit = if *insensitive { like(&v.to_lowercase(), &p.to_lowercase()) } else { like(&v, &p) };
                Ok(Value::Bool(hit != *negated))
            }
        }
    }
}

/// An input row, with its JSON objects parsed on first use.
pub struct Row<'a> {
    pub values: &'a [Value],
    /// Per column: its top-level JSON object's fields, once parsed (None:
    /// not parsed yet; Some(None): not a JSON object).
    objects: std::cell::RefCell<Vec<Option<Option<JsonFields<'a>>>>>,
}

type JsonFields<'a> = std::collections::HashMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>;

impl<'a> Row<'a> {
    pub fn new(values: &'a [Value]) -> Row<'a> {
        Row { values, objects: std::cell::RefCell::new(Vec::new()) }
    }

    /// Field `name` of column `i`'s JSON object: `None` when the column
    /// is not a JSON object (the caller takes the general path).
    fn field(&self, i: usize, name: &str) -> Option<std::result::Result<Option<&'a str>, String>> {
        let doc: &'a str = match self.values.get(i)? {
            Value::Json(s) | Value::Text(s) if s.trim_start().starts_with('{') => s,
            _ => return None,
        };
        let mut objects = self.objects.borrow_mut();
        if objects.len() <= i {
            objects.resize_with(i + 1, || None);
        }
        let parsed = objects[i].get_or_insert_with(|| serde_json::from_str::<JsonFields<'a>>(doc).ok());
        match parsed {
            Some(fields) => Some(Ok(fields.get(name).map(|r| r.get()))),
            // Not valid JSON: the general path says why.
            None => None,
        }
    }
}

/// A condition's value: true, false or unknown (NULL).
pub fn truth(v: &Value) -> std::result::Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(format!("a {} value where a condition (true or false) is expected", other.kind())),
    }
}

/// A number in the form arithmetic takes.
#[derive(Debug, Clone)]
pub enum Num {
    I(i64),
    D(Dec),
    F(f64),
}

pub fn num(v: &Value) -> std::result::Result<Option<Num>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Int(i) => Num::I(*i),
        Value::Year(y) => Num::I(i64::from(*y)),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Num::I(i),
            Err(_) => Num::D(Dec::from_u64(*u)),
        },
        Value::Float32(f) => Num::F(f64::from(*f)),
        Value::Float64(f) => Num::F(*f),
        Value::Decimal(s) => match Dec::parse(s) {
            Some(d) => Num::D(d),
            None => Num::F(s.parse::<f64>().map_err(|_| format!("`{s}` is not a number"))?),
        },
        other => return Err(format!("a {} value where a number is expected", other.kind())),
    }))
}

fn num_value(n: Num) -> Value {
    match n {
        Num::I(i) => Value::Int(i),
        Num::D(d) => Value::Decimal(d.to_string()),
        Num::F(f) => Value::Float64(f),
    }
}

fn as_dec(n: &Num) -> Option<Dec> {
    match n {
        Num::I(i) => Some(Dec::from_i64(*i)),
        Num::D(d) => Some(d.clone()),
        Num::F(_) => None,
    }
}

fn as_f64(n: &Num) -> f64 {
    match n {
        Num::I(i) => *i as f64,
        Num::D(d) => d.to_f64(),
        Num::F(f) => *f,
    }
}

fn neg(v: Value) -> EvalResult {
    Ok(match v {
        Value::Interval(i) => Value::Interval(Interval { months: -i.months, days: -i.days, micros: -i.micros }),
        other => match num(&other)? {
            None => Value::Null,
            Some(Num::I(i)) => Value::Int(i.checked_neg().ok_or("integer out of range")?),
            Some(Num::D(d)) => Value::Decimal(d.neg().to_string()),
            Some(Num::F(f)) => Value::Float64(-f),
        },
    })
}

pub fn arith(op: BinOp, a: Num, b: Num) -> std::result::Result<Num, String> {
    if let (Num::I(x), Num::I(y)) = (&a, &b) {
        let (x, y) = (*x, *y);
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div | BinOp::Mod if y == 0 => return Err("division by zero".into()),
            BinOp::Div => x.checked_div(y),
            BinOp::Mod => x.checked_rem(y),
            _ => unreachable!("not arithmetic"),
        };
        return r.map(Num::I).ok_or_else(|| "integer out of range".into());
    }
    if let (Some(x), Some(y)) = (as_dec(&a), as_dec(&b)) {
        return Ok(Num::D(match op {
            BinOp::Add => x.add(&y),
            BinOp::Sub => x.sub(&y),
            BinOp::Mul => x.mul(&y),
            BinOp::Div => x.div(&y).ok_or("division by zero")?,
            BinOp::Mod => x.rem(&y).ok_or("division by zero")?,
            _ => unreachable!("not arithmetic"),
        }));
    }
    let (x, y) = (as_f64(&a), as_f64(&b));
    if matches!(op, BinOp::Div | BinOp::Mod) && y == 0.0 {
        return Err("division by zero".into());
    }
    Ok(Num::F(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Mod => x % y,
        _ => unreachable!("not arithmetic"),
    }))
}

fn binary(op: BinOp, a: Value, b: Value) -> EvalResult {
    if op == BinOp::Concat {
        return match (to_text(&a)?, to_text(&b)?) {
            (Some(x), Some(y)) => Ok(Value::Text(x + &y)),
            _ => Ok(Value::Null),
        };
    }
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let ord = |o: Option<Ordering>| match o {
        None => Value::Null,
        Some(o) => Value::Bool(match op {
            BinOp::Eq => o == Ordering::Equal,
            BinOp::Ne => o != Ordering::Equal,
            BinOp::Lt => o == Ordering::Less,
            BinOp::Le => o != Ordering::Greater,
            BinOp::Gt => o == Ordering::Greater,
            _ => o != Ordering::Less,
        }),
    };
    match op {
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => Ok(ord(compare(&a, &b)?)),
        _ => temporal_arith(op, &a, &b).unwrap_or_else(|| {
            let (Some(x), Some(y)) = (num(&a)?, num(&b)?) else { return Ok(Value::Null) };
            Ok(num_value(arith(op, x, y)?))
        }),
    }
}

/// Date and time arithmetic: timestamp ± interval, date ± days,
/// timestamp − timestamp.
fn temporal_arith(op: BinOp, a: &Value, b: &Value) -> Option<EvalResult> {
    let sign = match op {
        BinOp::Add => 1,
        BinOp::Sub => -1,
        _ => return None,
    };
    Some(match (a, b) {
        (Value::Timestamp(t), Value::Interval(i)) => add_interval(*t, i, sign).map(Value::Timestamp),
        (Value::Interval(i), Value::Timestamp(t)) if sign == 1 => add_interval(*t, i, 1).map(Value::Timestamp),
        (Value::TimestampTz(t), Value::Interval(i)) => add_interval(t.naive_utc(), i, sign).map(|n| Value::TimestampTz(n.and_utc())),
        (Value::Interval(i), Value::TimestampTz(t)) if sign == 1 => add_interval(t.naive_utc(), i, 1).map(|n| Value::TimestampTz(n.and_utc())),
        (Value::Date(d), Value::Int(n)) => d.checked_add_signed(Duration::days(n * sign)).map(Value::Date).ok_or_else(|| "date out of range".into()),
        (Value::Date(d), Value::Interval(i)) => add_interval(d.and_time(NaiveTime::MIN), i, sign).map(Value::Timestamp),
        (Value::Timestamp(x), Value::Timestamp(y)) if sign == -1 => Ok(Value::Interval(micros_interval((*x - *y).num_microseconds().unwrap_or(i64::MAX)))),
        (Value::TimestampTz(x), Value::TimestampTz(y)) if sign == -1 => Ok(Value::Interval(micros_interval((*x - *y).num_microseconds().unwrap_or(i64::MAX)))),
        (Value::Date(x), Value::Date(y)) if sign == -1 => Ok(Value::Int((*x - *y).num_days())),
        (Value::Interval(x), Value::Interval(y)) => Ok(Value::Interval(Interval { months: x.months + sign as i32 * y.months, days: x.days + sign as i32 * y.days, micros: x.micros + sign * y.micros })),
        _ => return None,
    })
}

/// An interval of elapsed time as PostgreSQL writes it: whole days, then
/// the rest.
fn micros_interval(us: i64) -> Interval {
    const DAY: i64 = 86_400_000_000;
    Interval { months: 0, days: (us / DAY) as i32, micros: us % DAY }
}

fn add_interval(t: NaiveDateTime, i: &Interval, sign: i64) -> std::result::Result<NaiveDateTime, String> {
    let months = i64::from(i.months) * sign;
    let t = if months >= 0 {
        t.checked_add_months(chrono::Months::new(months as u32))
    } else {
        t.checked_sub_months(chrono::Months::new((-months) as u32))
    };
    t.and_then(|t| t.checked_add_signed(Duration::days(i64::from(i.days) * sign)))
        .and_then(|t| t.checked_add_signed(Duration::microseconds(i.micros * sign)))
        .ok_or_else(|| "timestamp out of range".into())
}

/// The instant of a date or timestamp (wall clocks read as UTC, the zone
/// `--sql` works in).
fn instant(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::Date(d) => Some(d.and_time(NaiveTime::MIN)),
        Value::Timestamp(t) => Some(*t),
        Value::TimestampTz(t) => Some(t.naive_utc()),
        _ => None,
    }
}

/// Orders two values of comparable kinds; `None` when either is NULL.
pub fn compare(a: &Value, b: &Value) -> std::result::Result<Option<Ordering>, String> {
    if a.is_null() || b.is_null() {
        return Ok(None);
    }
    if let (Some(x), Some(y)) = (instant(a), instant(b)) {
        return Ok(Some(x.cmp(&y)));
    }
    let is_num = |v: &Value| matches!(v, Value::Int(_) | Value::UInt(_) | Value::Float32(_) | Value::Float64(_) | Value::Decimal(_) | Value::Year(_));
    if is_num(a) && is_num(b) {
        let (x, y) = (num(a)?.unwrap_or(Num::I(0)), num(b)?.unwrap_or(Num::I(0)));
        return Ok(Some(match (&x, &y) {
            (Num::I(p), Num::I(q)) => p.cmp(q),
            _ => match (as_dec(&x), as_dec(&y)) {
                (Some(p), Some(q)) => p.cmp(&q),
                // PostgreSQL orders NaN above every number.
                _ => as_f64(&x).total_cmp(&as_f64(&y)),
            },
        }));
    }
    Ok(Some(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Text(x) | Value::Enum(x), Value::Text(y) | Value::Enum(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y)) => x.cmp(y),
        (Value::Interval(x), Value::Interval(y)) => interval_micros(x).cmp(&interval_micros(y)),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Uuid(x), Value::Uuid(y)) => x.cmp(y),
        (Value::Json(x), Value::Json(y)) => json_cmp(x, y),
        (x, y) if x == y => Ordering::Equal,
        (x, y) => return Err(format!("cannot compare a {} value with a {} value", x.kind(), y.kind())),
    }))
}

fn json_cmp(a: &str, b: &str) -> Ordering {
    match (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)) {
        (Ok(x), Ok(y)) if x == y => Ordering::Equal,
        _ => a.cmp(b),
    }
}

/// An interval's length for ordering, as PostgreSQL compares them (a
/// month is 30 days).
fn interval_micros(i: &Interval) -> i128 {
    (i128::from(i.months) * 30 + i128::from(i.days)) * 86_400_000_000 + i128::from(i.micros)
}

fn as_text(v: &Value) -> Option<String> {
    to_text(v).ok().flatten()
}

/// A value's text, as PostgreSQL's cast to text writes it.
pub fn to_text(v: &Value) -> std::result::Result<Option<String>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Text(s) | Value::Enum(s) | Value::Json(s) | Value::Decimal(s) => s.clone(),
        Value::Bool(b) => (if *b { "true" } else { "false" }).into(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Timestamp(t) => timestamp_text(t),
        Value::TimestampTz(t) => format!("{}+00", timestamp_text(&t.naive_utc())),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::Uuid(u) => uuid::Uuid::from_bytes(*u).hyphenated().to_string(),
        other => {
            let mut s = String::new();
            crate::codec::text::write_text(other, &mut s)?;
            s
        }
    }))
}

fn timestamp_text(t: &NaiveDateTime) -> String {
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let us = t.nanosecond() / 1000;
    if us != 0 {
        let f = format!("{us:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// SQL LIKE with `%` and `_` (and `\` escaping either).
fn like(s: &str, p: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&s[1..], &p[2..]),
            Some(c) => s.first() == Some(c) && go(&s[1..], &p[1..]),
        }
    }
    go(&s, &p)
}

/// JSON is navigated on its raw text (serde_json's `RawValue`), so a
/// number keeps every digit it was written with (`1.50` stays `1.50`).
fn json_get(base: Value, key: Value, text: bool) -> EvalResult {
    use serde_json::value::RawValue;
    let doc = match &base {
        Value::Null => return Ok(Value::Null),
        Value::Json(s) | Value::Text(s) => s,
        other => return Err(format!("-> and ->> read JSON; this is a {} value", other.kind())),
    };
    let not_json = |e: serde_json::Error| format!("not JSON ({e})");
    let found: Option<&RawValue> = match doc.trim_start().as_bytes().first() {
        Some(b'{') => {
            let Some(name) = to_text(&key)? else { return Ok(Value::Null) };
            let map: std::collections::HashMap<std::borrow::Cow<'_, str>, &RawValue> = serde_json::from_str(doc).map_err(not_json)?;
            map.get(name.as_str()).copied()
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(doc).map_err(not_json)?;
            match &key {
                Value::Int(i) => {
                    let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                    usize::try_from(idx).ok().and_then(|i| items.get(i)).copied()
                }
                _ => None,
            }
        }
        _ => {
            serde_json::from_str::<&RawValue>(doc).map_err(not_json)?;
            None
        }
    };
    json_found(found.map(|r| r.get()), text)
}

/// What `->` (JSON) or `->>` (text) gives for the raw JSON `found`.
fn json_found(found: Option<&str>, text: bool) -> EvalResult {
    let not_json = |e: serde_json::Error| format!("not JSON ({e})");
    let Some(raw) = found else { return Ok(Value::Null) };
    Ok(match raw.as_bytes().first() {
        Some(b'n') if raw == "null" => if text { Value::Null } else { Value::Json(raw.into()) },
        Some(b'"') if text => Value::Text(serde_json::from_str::<String>(raw).map_err(not_json)?),
        _ if text => Value::Text(raw.to_string()),
        _ => Value::Json(raw.to_string()),
    })
}

/// A JSON scalar as the value it holds: a string's text, a number's
/// digits, a boolean; other JSON stays as it is.
fn json_scalar(s: String) -> Value {
    let t = s.trim();
    match t.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(t).map(Value::Text).unwrap_or(Value::Json(s)),
        Some(b'-' | b'0'..=b'9') => Value::Decimal(t.to_string()),
        _ if t == "true" || t == "false" => Value::Bool(t == "true"),
        _ => Value::Json(s),
    }
}

/// `v` as a value of type `ty`, as PostgreSQL's CAST does.
pub fn cast(v: Value, ty: &ColumnType) -> EvalResult {
    use ColumnType as T;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let target = kind_of(ty);
    let fail = |v: &Value, why: &str| -> String {
        let shown = as_text(v).map(|s| format!(" `{}`", s.chars().take(60).collect::<String>())).unwrap_or_default();
        format!("cannot cast the {} value{shown} to {}{}", v.kind(), crate::transform::plan::type_name(ty), if why.is_empty() { String::new() } else { format!(": {why}") })
    };
    let v = match v {
        // JSON strings cast as their text; other JSON as its number or word.
        Value::Json(s) if target != Kind::Json && target != Kind::Text => match json_scalar(s) {
            Value::Json(s) => Value::Text(s),
            v => v,
        },
        other => other,
    };
    match target {
        Kind::Text => {
            let s = to_text(&v)?.unwrap_or_default();
            Ok(match ty {
                T::Varchar { length: Some(n), .. } | T::Char { length: Some(n), .. } => Value::Text(s.chars().take(*n as usize).collect()),
                _ => Value::Text(s),
            })
        }
        Kind::Int => {
            let (bits, unsigned) = match ty {
                T::Int { bits, unsigned } => (*bits, *unsigned),
                _ => (16, false),
            };
            let i: i128 = match &v {
                Value::Bool(b) => i128::from(*b),
                Value::Text(s) => s.trim().parse::<i128>().map_err(|_| fail(&v, "not an integer"))?,
                other => match num(other).map_err(|e| fail(other, &e))? {
                    Some(Num::I(i)) => i128::from(i),
                    Some(Num::D(d)) => d.rescale(0).m.try_into().map_err(|_| fail(other, "out of range"))?,
                    Some(Num::F(f)) if f.is_finite() => f.round_ties_even() as i128,
                    _ => return Err(fail(other, "not a finite number")),
                },
            };
            let (lo, hi) = if unsigned { (0i128, (1i128 << bits) - 1) } else { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) };
            if i < lo || i > hi {
                return Err(fail(&v, &format!("out of range for a {bits}-bit integer")));
            }
            Ok(if i > i128::from(i64::MAX) { Value::UInt(i as u64) } else { Value::Int(i as i64) })
        }
        Kind::Dec => {
            let d = match &v {
                Value::Text(s) => Dec::parse(s).ok_or_else(|| fail(&v, "not a decimal number"))?,
                Value::Bool(_) => return Err(fail(&v, "")),
                other => match num(other).map_err(|e| fail(other, &e))? {
                    Some(Num::I(i)) => Dec::from_i64(i),
                    Some(Num::D(d)) => d,
                    Some(Num::F(f)) if f.is_finite() => Dec::parse(&format!("{f}")).ok_or_else(|| fail(other, ""))?,
                    _ => return Err(fail(other, "not a finite number")),
                },
            };
            if let T::Decimal { precision, scale } = ty {
                let d = match scale {
                    Some(s) => d.rescale(*s),
                    None if precision.is_some() => d.rescale(0),
                    None => d,
                };
                if let Some(p) = precision {
                    let s = scale.unwrap_or(0);
                    if d.integer_digits() > p.saturating_sub(s) {
                        return Err(fail(&v, &format!("needs more than numeric({p},{s}) holds")));
                    }
                }
                return Ok(Value::Decimal(d.to_string()));
            }
            Ok(Value::Decimal(d.to_string()))
        }
        Kind::Float => {
            let f = match &v {
                Value::Text(s) => s.trim().parse::<f64>().map_err(|_| fail(&v, "not a number"))?,
                other => as_f64(&num(other).map_err(|e| fail(other, &e))?.unwrap_or(Num::I(0))),
            };
            Ok(if matches!(ty, T::Float32) { Value::Float32(f as f32) } else { Value::Float64(f) })
        }
        Kind::Bool => match &v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Int(i) => Ok(Value::Bool(*i != 0)),
            Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
                "f" | "false" | "n" | "no" | "off" | "0" => Ok(Value::Bool(false)),
                _ => Err(fail(&v, "not a boolean")),
            },
            _ => Err(fail(&v, "")),
        },
        Kind::Date => match &v {
            Value::Date(_) => Ok(v),
            _ if instant(&v).is_some() => Ok(Value::Date(instant(&v).map(|t| t.date()).unwrap_or_default())),
            _ => from_text(&v, ty).map_err(|e| fail(&v, &e)),
        },
        Kind::Timestamp => match &v {
            Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => Ok(Value::Timestamp(instant(&v).unwrap_or_default())),
            _ => from_text(&v, ty).map_err(|e| fail(&v, &e)).and_then(|r| Ok(match r {
                Value::TimestampTz(t) => Value::Timestamp(t.naive_utc()),
                other => other,
            })),
        },
        Kind::TimestampTz => match &v {
            Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => Ok(Value::TimestampTz(instant(&v).unwrap_or_default().and_utc())),
            Value::Text(s) => parse_timestamptz(s).map(Value::TimestampTz).ok_or_else(|| fail(&v, "not a timestamp")),
            _ => Err(fail(&v, "")),
        },
        Kind::Json => match &v {
            Value::Json(_) => Ok(v),
            Value::Text(s) => serde_json::from_str::<serde_json::Value>(s).map(|_| Value::Json(s.clone())).map_err(|e| fail(&v, &e.to_string())),
            other => {
                let mut s = String::new();
                crate::codec::json::write_json(other, &mut s).map_err(|e| fail(other, &e))?;
                Ok(Value::Json(s))
            }
        },
        _ => match &v {
            Value::Text(_) => from_text(&v, ty).map_err(|e| fail(&v, &e)),
            _ if kind_of_value(&v) == target => Ok(v),
            _ => Err(fail(&v, "")),
        },
    }
}

/// A timestamp with zone as text: PostgreSQL's forms, RFC 3339, or epoch
/// seconds; a zone-less one is UTC.
fn parse_timestamptz(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(Value::TimestampTz(t)) = crate::codec::pgtext::decode(s.as_bytes(), &timestamptz()) {
        return Some(t);
    }
    if let Ok(Value::Timestamp(t)) = crate::codec::pgtext::decode(s.as_bytes(), &ColumnType::Timestamp { precision: None, tz: false }) {
        return Some(t.and_utc());
    }
    s.replace('T', " ").parse::<NaiveDateTime>().ok().map(|t| t.and_utc())
}

fn from_text(v: &Value, ty: &ColumnType) -> EvalResult {
    let Value::Text(s) = v else { return Err(String::new()) };
    if kind_of(ty) == Kind::Timestamp {
        return parse_timestamptz(s).map(|t| Value::Timestamp(t.naive_utc())).ok_or_else(|| "not a timestamp".into());
    }
    crate::codec::pgtext::decode(s.trim().as_bytes(), ty)
}

pub fn kind_of_value(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::UInt(_) | Value::Year(_) => Kind::Int,
        Value::Decimal(_) => Kind::Dec,
        Value::Float32(_) | Value::Float64(_) => Kind::Float,
        Value::Text(_) | Value::Enum(_) => Kind::Text,
        Value::Date(_) => Kind::Date,
        Value::Time(_) | Value::TimeTz(..) => Kind::Time,
        Value::Timestamp(_) => Kind::Timestamp,
        Value::TimestampTz(_) => Kind::TimestampTz,
        Value::Interval(_) => Kind::Interval,
        Value::Json(_) => Kind::Json,
        Value::Bytes(_) => Kind::Bytes,
        _ => Kind::Other,
    }
}

fn call(f: Func, a: Vec<Value>) -> EvalResult {
    let text = |i: usize| -> std::result::Result<Option<String>, String> { a.get(i).map(to_text).transpose().map(Option::flatten) };
    let int = |i: usize| -> std::result::Result<Option<i64>, String> {
        match a.get(i).map(num).transpose()?.flatten() {
            None => Ok(None),
            Some(Num::I(i)) => Ok(Some(i)),
            Some(n) => as_dec(&n).and_then(|d| d.to_i64()).map(Some).ok_or_else(|| "an integer is expected".into()),
        }
    };
    match f {
        Func::Lower => Ok(text(0)?.map(|s| Value::Text(s.to_lowercase())).unwrap_or(Value::Null)),
        Func::Upper => Ok(text(0)?.map(|s| Value::Text(s.to_uppercase())).unwrap_or(Value::Null)),
        Func::Length => Ok(text(0)?.map(|s| Value::Int(s.chars().count() as i64)).unwrap_or(Value::Null)),
        Func::Substring => {
            let Some(s) = text(0)? else { return Ok(Value::Null) };
            let Some(from) = int(1)? else { return Ok(Value::Null) };
            let chars: Vec<char> = s.chars().collect();
            // PostgreSQL: characters from..from+count-1, clipped to the string.
            let end = match a.get(2) {
                None => i64::MAX,
                Some(_) => match int(2)? {
                    None => return Ok(Value::Null),
                    Some(n) if n < 0 => return Err("negative substring length not allowed".into()),
                    Some(n) => from.saturating_add(n),
                },
            };
            let lo = from.max(1) as usize - 1;
            let hi = (end.max(1) as usize - 1).min(chars.len());
            Ok(Value::Text(if lo < hi { chars[lo..hi].iter().collect() } else { String::new() }))
        }
        Func::ConcatFn => {
            let mut out = String::new();
            for v in &a {
                if let Some(s) = to_text(v)? {
                    out.push_str(&s);
                }
            }
            Ok(Value::Text(out))
        }
        Func::Trim(side) => {
            let Some(s) = text(0)? else { return Ok(Value::Null) };
            let chars: Vec<char> = match a.get(1) {
                Some(_) => match text(1)? {
                    Some(c) => c.chars().collect(),
                    None => return Ok(Value::Null),
                },
                None => vec![' '],
            };
            let r = match side {
                1 => s.trim_start_matches(chars.as_slice()),
                2 => s.trim_end_matches(chars.as_slice()),
                _ => s.trim_matches(chars.as_slice()),
            };
            Ok(Value::Text(r.to_string()))
        }
        Func::Replace => match (text(0)?, text(1)?, text(2)?) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => Ok(Value::Text(s.replace(&from, &to))),
            (Some(s), Some(_), Some(_)) => Ok(Value::Text(s)),
            _ => Ok(Value::Null),
        },
        Func::Coalesce => Ok(a.into_iter().find(|v| !v.is_null()).unwrap_or(Value::Null)),
        Func::NullIf => {
            let mut it = a.into_iter();
            let (x, y) = (it.next().unwrap_or(Value::Null), it.next().unwrap_or(Value::Null));
            Ok(if compare(&x, &y)? == Some(Ordering::Equal) { Value::Null } else { x })
        }
        Func::Abs => Ok(match a.first().map(num).transpose()?.flatten() {
            None => Value::Null,
            Some(Num::I(i)) => Value::Int(i.checked_abs().ok_or("integer out of range")?),
            Some(Num::D(d)) => Value::Decimal(if d.m.sign() == num_bigint::Sign::Minus { d.neg() } else { d }.to_string()),
            Some(Num::F(f)) => Value::Float64(f.abs()),
        }),
        Func::Round => {
            let digits = if a.len() > 1 { int(1)? } else { Some(0) };
            let Some(digits) = digits else { return Ok(Value::Null) };
            Ok(match a.first().map(num).transpose()?.flatten() {
                None => Value::Null,
                Some(Num::F(f)) if a.len() == 1 => Value::Float64(f.round_ties_even()),
                Some(Num::F(_)) => return Err("round(double precision, integer) does not exist: cast the value to numeric".into()),
                Some(n) => {
                    let d = as_dec(&n).unwrap_or(Dec::from_i64(0));
                    Value::Decimal(round_dec(&d, digits).to_string())
                }
            })
        }
        Func::DateTrunc => {
            let Some(unit) = text(0)? else { return Ok(Value::Null) };
            let v = a.get(1).cloned().unwrap_or(Value::Null);
            let Some(t) = instant(&v) else {
                return if v.is_null() { Ok(Value::Null) } else { Err(format!("date_trunc takes a timestamp, not a {} value", v.kind())) };
            };
            let t = date_trunc(&unit.to_ascii_lowercase(), t)?;
            Ok(match v {
                Value::TimestampTz(_) => Value::TimestampTz(t.and_utc()),
                _ => Value::Timestamp(t),
            })
        }
        Func::Extract => {
            let Some(field) = text(0)? else { return Ok(Value::Null) };
            let v = a.get(1).cloned().unwrap_or(Value::Null);
            if v.is_null() {
                return Ok(Value::Null);
            }
            extract(&field.to_ascii_lowercase(), &v).map(|d| Value::Decimal(d.to_string()))
        }
    }
}

fn round_dec(d: &Dec, digits: i64) -> Dec {
    if digits >= 0 {
        return d.rescale(digits as u32);
    }
    // round(1234.5, -2) = 1200
    let shift = Dec { m: num_bigint::BigInt::from(1), scale: (-digits) as u32 };
    let scaled = d.mul(&shift).rescale(0);
    Dec { m: scaled.m * num_bigint::BigInt::from(10u32).pow((-digits) as u32), scale: 0 }
}

pub fn date_trunc(unit: &str, t: NaiveDateTime) -> std::result::Result<NaiveDateTime, String> {
    let d = t.date();
    let day = |d: NaiveDate| d.and_time(NaiveTime::MIN);
    let ymd = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).map(day).ok_or_else(|| "date out of range".to_string());
    Ok(match unit {
        "microseconds" | "microsecond" => t,
        "milliseconds" | "millisecond" => t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t),
        "second" | "seconds" => t.with_nanosecond(0).unwrap_or(t),
        "minute" | "minutes" => t.with_nanosecond(0).and_then(|t| t.with_second(0)).unwrap_or(t),
        "hour" | "hours" => t.with_nanosecond(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_minute(0)).unwrap_or(t),
        "day" | "days" => day(d),
        "week" | "weeks" => day(d - Duration::days(i64::from(d.weekday().num_days_from_monday()))),
        "month" | "months" => ymd(d.year(), d.month())?,
        "quarter" => ymd(d.year(), (d.month() - 1) / 3 * 3 + 1)?,
        "year" | "years" => ymd(d.year(), 1)?,
        "decade" => ymd(d.year().div_euclid(10) * 10, 1)?,
        "century" => ymd((d.year() - 1).div_euclid(100) * 100 + 1, 1)?,
        "millennium" => ymd((d.year() - 1).div_euclid(1000) * 1000 + 1, 1)?,
        other => return Err(format!("date_trunc: unit `{other}` not recognized (year, quarter, month, week, day, hour, minute, second, milliseconds, microseconds, decade, century, millennium)")),
    })
}

/// PostgreSQL 14+'s `extract`: a numeric (seconds with 6 fractional digits).
pub fn extract(field: &str, v: &Value) -> std::result::Result<Dec, String> {
    let int = |i: i64| Ok(Dec::from_i64(i));
    if let Value::Interval(i) = v {
        return match field {
            "epoch" => Ok(Dec { m: num_bigint::BigInt::from(interval_micros(i)) , scale: 6 }),
            "year" | "years" => int(i64::from(i.months / 12)),
            "month" | "months" => int(i64::from(i.months % 12)),
            "day" | "days" => int(i64::from(i.days)),
            "hour" | "hours" => int(i.micros / 3_600_000_000),
            "minute" | "minutes" => int(i.micros / 60_000_000 % 60),
            "second" | "seconds" => Ok(Dec { m: (i.micros % 60_000_000).into(), scale: 6 }),
            other => Err(format!("extract: field `{other}` is not defined for intervals")),
        };
    }
    let Some(t) = instant(v) else { return Err(format!("extract reads a date, timestamp or interval, not a {} value", v.kind())) };
    let us = i64::from(t.nanosecond() / 1000);
    let secs_us = i64::from(t.second()) * 1_000_000 + us;
    match field {
        "year" | "years" => int(i64::from(t.year())),
        "month" | "months" => int(i64::from(t.month())),
        "day" | "days" => int(i64::from(t.day())),
        "hour" | "hours" => int(i64::from(t.hour())),
        "minute" | "minutes" => int(i64::from(t.minute())),
        "second" | "seconds" => Ok(Dec { m: secs_us.into(), scale: 6 }),
        "milliseconds" | "millisecond" => Ok(Dec { m: secs_us.into(), scale: 3 }),
        "microseconds" | "microsecond" => int(secs_us),
        "epoch" => Ok(Dec { m: (t.and_utc().timestamp() * 1_000_000 + us).into(), scale: 6 }),
        "dow" | "dayofweek" => int(i64::from(t.weekday().num_days_from_sunday())),
        "isodow" => int(i64::from(t.weekday().number_from_monday())),
        "doy" | "dayofyear" => int(i64::from(t.ordinal())),
        "week" | "isoweek" => int(i64::from(t.iso_week().week())),
        "isoyear" => int(i64::from(t.iso_week().year())),
        "quarter" => int(i64::from((t.month() - 1) / 3 + 1)),
        "decade" => int(i64::from(t.year().div_euclid(10))),
        "century" => int(i64::from(if t.year() > 0 { (t.year() + 99) / 100 } else { -((99 - t.year()) / 100) })),
        "millennium" => int(i64::from(if t.year() > 0 { (t.year() + 999) / 1000 } else { -((999 - t.year()) / 1000) })),
        other => Err(format!("extract: field `{other}` not recognized")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn null_and_three_valued_logic() {
        let t = Expr::Literal(Value::Bool(true));
        let n = Expr::Literal(Value::Null);
        let f = Expr::Literal(Value::Bool(false));
        let and = |a: &Expr, b: &Expr| Expr::Binary(BinOp::And, Box::new(a.clone()), Box::new(b.clone())).eval(&[]).unwrap();
        let or = |a: &Expr, b: &Expr| Expr::Binary(BinOp::Or, Box::new(a.clone()), Box::new(b.clone())).eval(&[]).unwrap();
        assert_eq!(and(&n, &f), Value::Bool(false));
        assert_eq!(and(&t, &n), Value::Null);
        assert_eq!(or(&n, &t), Value::Bool(true));
        assert_eq!(or(&f, &n), Value::Null);
    }

    #[test]
    fn arithmetic_is_exact_or_an_error() {
        assert_eq!(binary(BinOp::Mul, Value::Decimal("19.99".into()), Value::Int(3)).unwrap(), Value::Decimal("59.97".into()));
        assert_eq!(binary(BinOp::Div, Value::Int(7), Value::Int(2)).unwrap(), Value::Int(3));
        assert_eq!(binary(BinOp::Div, Value::Int(7), Value::Int(0)).unwrap_err(), "division by zero");
        assert!(binary(BinOp::Add, Value::Int(i64::MAX), Value::Int(1)).is_err());
        assert_eq!(binary(BinOp::Lt, Value::Decimal("1.10".into()), Value::Int(2)).unwrap(), Value::Bool(true));
    }

    #[test]
    fn casts_as_postgresql_does() {
        assert_eq!(cast(Value::Text(" 42 ".into()), &bigint()).unwrap(), Value::Int(42));
        assert!(cast(Value::Text("4x".into()), &bigint()).unwrap_err().contains("`4x`"));
        assert_eq!(cast(Value::Text("2.345".into()), &ColumnType::Decimal { precision: Some(10), scale: Some(2) }).unwrap(), Value::Decimal("2.35".into()));
        assert!(cast(Value::Text("123.4".into()), &ColumnType::Decimal { precision: Some(3), scale: Some(1) }).is_err());
        assert_eq!(cast(Value::Json("\"2026-01-02T03:04:05Z\"".into()), &timestamptz()).unwrap(), Value::TimestampTz(ts("2026-01-02T03:04:05").and_utc()));
        assert_eq!(cast(Value::Json("12.50".into()), &numeric()).unwrap(), Value::Decimal("12.50".into()));
    }

    #[test]
    fn json_paths_and_strings() {
        let doc = Value::Json(r#"{"a":{"b":"x","n":1.50},"l":[1,2]}"#.into());
        let a = json_get(doc.clone(), Value::Text("a".into()), false).unwrap();
        assert_eq!(json_get(a.clone(), Value::Text("b".into()), true).unwrap(), Value::Text("x".into()));
        assert_eq!(json_get(a, Value::Text("n".into()), true).unwrap(), Value::Text("1.50".into()));
        assert_eq!(json_get(doc.clone(), Value::Text("zz".into()), true).unwrap(), Value::Null);
        assert_eq!(call(Func::Substring, vec![Value::Text("hello".into()), Value::Int(2), Value::Int(3)]).unwrap(), Value::Text("ell".into()));
        assert_eq!(call(Func::Substring, vec![Value::Text("hello".into()), Value::Int(-1), Value::Int(3)]).unwrap(), Value::Text("h".into()));
        assert_eq!(call(Func::ConcatFn, vec![Value::Text("a".into()), Value::Null, Value::Int(1)]).unwrap(), Value::Text("a1".into()));
        assert!(like("abcd", "a%d") && like("abc", "_b_") && !like("abc", "a_"));
    }

    #[test]
    fn dates_truncate_and_extract() {
        let t = ts("2026-03-18T13:45:07.25");
        assert_eq!(date_trunc("hour", t).unwrap(), ts("2026-03-18T13:00:00"));
        assert_eq!(date_trunc("week", t).unwrap(), ts("2026-03-16T00:00:00"));
        assert_eq!(date_trunc("quarter", t).unwrap(), ts("2026-01-01T00:00:00"));
        assert_eq!(extract("second", &Value::Timestamp(t)).unwrap().to_string(), "7.250000");
        assert_eq!(extract("dow", &Value::Timestamp(t)).unwrap().to_string(), "3");
        assert_eq!(extract("epoch", &Value::Timestamp(ts("1970-01-01T00:00:01.5"))).unwrap().to_string(), "1.500000");
    }
}
