//! SQLite storage classes ↔ values. SQLite stores whatever it is given
//! (type affinity only nudges), so the decoder reads a value by the
//! column's declared type and accepts every storage class that can
//! faithfully mean it: a date as ISO text, unix seconds or a Julian day;
//! an integer as text digits; a uuid as text or 16 bytes.
//!
//! The encoder picks what to bind. Exact values go in as text where a
//! number would lose something: decimals always (a NUMERIC column turns
//! text of up to 15 significant digits into a number, which may drop
//! trailing zeros of the scale; the decoder pads them back to the declared
//! scale), unsigned integers above `i64::MAX`, and NaN (SQLite would store
//! a NaN REAL as NULL).

use chrono::{DateTime, NaiveDateTime, NaiveTime};

use super::common::{self, bad, Era};
use super::json;
use crate::model::{ColumnType, Value};

/// A value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The cell as text for error messages.
    fn shown(&self) -> Vec<u8> {
        match self {
            Cell::Null => b"NULL".to_vec(),
            Cell::Integer(i) => i.to_string().into_bytes(),
            Cell::Real(r) => real_text(*r).into_bytes(),
            Cell::Text(t) => t.clone().into_bytes(),
            Cell::Blob(b) => {
                let mut s = b"x'".to_vec();
                common::push_hex(&b[..b.len().min(32)], &mut s);
                s.push(b'\'');
                s
            }
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Integer(_) => "an INTEGER",
            Cell::Real(_) => "a REAL",
            Cell::Text(_) => "TEXT",
            Cell::Blob(_) => "a BLOB",
        }
    }
}

fn real_text(r: f64) -> String {
    let mut s = String::new();
    match common::nonfinite_name(r) {
        Some(n) => s.push_str(n),
        None => common::write_f64(r, &mut s),
    }
    s
}

fn wrong(c: &Cell, ty: &ColumnType, why: &str) -> String {
    bad(&c.shown(), ty, why)
}

fn class_err(c: &Cell, ty: &ColumnType) -> String {
    wrong(c, ty, &format!("{} cannot hold this type", c.class()))
}

/// Unix epoch 1970-01-01T00:00Z as a Julian day number in milliseconds,
/// the way SQLite's date functions count.
const UNIX_EPOCH_JD_MS: i64 = 210_866_760_000_000;

/// A Julian day REAL → UTC wall clock, to the millisecond (SQLite's own
/// resolution for Julian days).
fn julian_day(r: f64) -> Option<NaiveDateTime> {
    if !r.is_finite() || !(0.0..=5_373_484.5).contains(&r) {
        return None;
    }
    let ms = (r * 86_400_000.0 + 0.5) as i64 - UNIX_EPOCH_JD_MS;
    DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}

fn unix_seconds(i: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(i, 0).map(|d| d.naive_utc())
}

/// A date-time cell as (UTC or wall clock, explicit offset).
fn datetime_of(c: &Cell) -> Option<(NaiveDateTime, Option<i32>)> {
    match c {
        Cell::Integer(i) => unix_seconds(*i).map(|d| (d, Some(0))),
        Cell::Real(r) => julian_day(*r).map(|d| (d, Some(0))),
        Cell::Text(t) => {
            let (d, t, off) = common::parse_datetime(t.trim())?;
            Some((d.and_time(t.unwrap_or(NaiveTime::MIN)), off))
        }
        _ => None,
    }
}

fn infinity(c: &Cell) -> Option<Value> {
    match c {
        Cell::Text(t) if t.eq_ignore_ascii_case("infinity") => Some(Value::Infinity { negative: false }),
        Cell::Text(t) if t.eq_ignore_ascii_case("-infinity") => Some(Value::Infinity { negative: true }),
        _ => None,
    }
}

/// A cell its declared type could not read, as it is stored: text as
/// text, numbers as their text, a BLOB as bytes.
pub fn raw_value(c: Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Integer(i) => Value::Text(i.to_string()),
        Cell::Real(r) => Value::Text(real_text(r)),
        Cell::Text(t) => Value::Text(t),
        Cell::Blob(b) => Value::Bytes(b),
    }
}

/// Reads a cell by the column's declared type.
pub fn decode(c: Cell, ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    if c == Cell::Null {
        return Ok(Value::Null);
    }
    match ty {
        T::Bool => match &c {
            Cell::Integer(0) => Ok(Value::Bool(false)),
            Cell::Integer(1) => Ok(Value::Bool(true)),
            Cell::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "1" => Ok(Value::Bool(true)),
                "f" | "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(wrong(&c, ty, "not 0/1, t/f or true/false")),
            },
            _ => Err(wrong(&c, ty, "not 0/1, t/f or true/false")),
        },
        T::Int { bits, unsigned } => match &c {
            Cell::Integer(i) => {
                if !common::int_in_range(i128::from(*i), *bits, *unsigned) {
                    return Err(wrong(&c, ty, "out of range"));
                }
                Ok(Value::Int(*i))
            }
            Cell::Text(t) => common::parse_int(t.trim(), ty),
            Cell::Real(r) if r.fract() == 0.0 && r.abs() < 9.2e18 && common::int_in_range(*r as i128, *bits, *unsigned) => {
                Ok(Value::Int(*r as i64))
            }
            _ => Err(wrong(&c, ty, "not an integer")),
        },
        T::Decimal { scale, .. } => match &c {
            Cell::Integer(i) => Ok(Value::Decimal(common::pad_scale(i.to_string(), *scale))),
            Cell::Real(r) => Ok(Value::Decimal(match common::nonfinite_name(*r) {
                Some(n) => n.to_string(),
                None => common::pad_scale(common::float_as_decimal(*r, false), *scale),
            })),
            Cell::Text(t) => common::parse_decimal(t).map(Value::Decimal).ok_or_else(|| wrong(&c, ty, "not a number")),
            _ => Err(class_err(&c, ty)),
        },
        T::Float32 | T::Float64 => {
            let x = match &c {
                Cell::Integer(i) => *i as f64,
                Cell::Real(r) => *r,
                Cell::Text(t) => common::parse_f64(t.trim()).ok_or_else(|| wrong(&c, ty, "not a number"))?,
                _ => return Err(class_err(&c, ty)),
            };
            Ok(if *ty == T::Float32 { Value::Float32(x as f32) } else { Value::Float64(x) })
        }
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Other { .. } => match c {
            Cell::Text(t) => Ok(Value::Text(t)),
            Cell::Integer(i) => Ok(Value::Text(i.to_string())),
            Cell::Real(r) => Ok(Value::Text(real_text(r))),
            Cell::Blob(b) => String::from_utf8(b)
                .map(Value::Text)
                .map_err(|e| bad(e.as_bytes(), ty, "a BLOB that is not UTF-8 text")),
            Cell::Null => unreachable!(),
        },
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => match c {
            Cell::Blob(b) => Ok(Value::Bytes(b)),
            Cell::Text(t) => Ok(Value::Bytes(t.into_bytes())),
            Cell::Integer(i) => Ok(Value::Bytes(i.to_string().into_bytes())),
            Cell::Real(r) => Ok(Value::Bytes(real_text(r).into_bytes())),
            Cell::Null => unreachable!(),
        },
        T::Date => {
            if let Some(inf) = infinity(&c) {
                return Ok(inf);
            }
            match datetime_of(&c) {
                Some((dt, None | Some(0))) if dt.time() == NaiveTime::MIN => Ok(Value::Date(dt.date())),
                Some(_) => Err(wrong(&c, ty, "has a time of day or a zone")),
                None => Err(wrong(&c, ty, "expected YYYY-MM-DD, unix seconds or a Julian day")),
            }
        }
        T::Time { tz, .. } => {
            let parsed = match &c {
                Cell::Text(t) => common::parse_time_tz(t.trim()),
                Cell::Integer(i) if (0..86_400).contains(i) => {
                    NaiveTime::from_num_seconds_from_midnight_opt(*i as u32, 0).map(|t| (t, None))
                }
                _ => None,
            };
            match (parsed, tz) {
                (Some((t, None)), false) => Ok(Value::Time(t)),
                (Some((t, Some(off))), _) => Ok(Value::TimeTz(t, off)),
                (Some((t, None)), true) => Ok(Value::TimeTz(t, 0)),
                (None, _) => Err(wrong(&c, ty, "expected HH:MM[:SS[.fff]][+HH:MM]")),
            }
        }
        T::Timestamp { tz, .. } => {
            if let Some(inf) = infinity(&c) {
                return Ok(inf);
            }
            // Epoch integers, Julian days and text with a zone are
            // instants; in a column without zone an epoch number gives its
            // UTC wall clock. Zone-less text is a wall clock, read as UTC in
            // a column declared with time zone.
            let is_text = matches!(c, Cell::Text(_));
            match datetime_of(&c) {
                Some((dt, Some(off))) if is_text || *tz => common::to_utc(dt, off)
                    .map(Value::TimestampTz)
                    .ok_or_else(|| wrong(&c, ty, "out of range")),
                Some((dt, _)) if !*tz => Ok(Value::Timestamp(dt)),
                Some((dt, _)) => Ok(Value::TimestampTz(dt.and_utc())),
                None => Err(wrong(&c, ty, "expected YYYY-MM-DD HH:MM:SS[.fff][+HH:MM], unix seconds or a Julian day")),
            }
        }
        T::Interval { .. } => match &c {
            Cell::Text(t) => common::parse_iso_interval(t.trim())
                .map(Value::Interval)
                .ok_or_else(|| wrong(&c, ty, "expected an ISO 8601 duration")),
            _ => Err(class_err(&c, ty)),
        },
        T::Json | T::Jsonb => match c {
            Cell::Text(t) => Ok(Value::Json(t)),
            Cell::Integer(i) => Ok(Value::Json(i.to_string())),
            Cell::Real(r) if r.is_finite() => Ok(Value::Json(real_text(r))),
            other => Err(wrong(&other, ty, "not JSON text (SQLite's binary JSONB is not read)")),
        },
        T::Uuid => match &c {
            Cell::Text(t) => common::parse_uuid(t).map(Value::Uuid).ok_or_else(|| wrong(&c, ty, "not a uuid")),
            Cell::Blob(b) if b.len() == 16 => Ok(Value::Uuid(b.as_slice().try_into().expect("16 bytes"))),
            _ => Err(wrong(&c, ty, "not a uuid")),
        },
        T::Enum { .. } => match c {
            Cell::Text(t) => Ok(Value::Enum(t)),
            other => Err(class_err(&other, ty)),
        },
        T::Set { .. } => match c {
            Cell::Text(t) if t.is_empty() => Ok(Value::Set(Vec::new())),
            Cell::Text(t) => Ok(Value::Set(t.split(',').map(str::to_string).collect())),
            other => Err(class_err(&other, ty)),
        },
        T::Bit { length, .. } => match &c {
            Cell::Integer(i) if *i >= 0 => {
                let min = (64 - i.leading_zeros() as usize).max(1);
                let len = length.map_or(min, |n| n as usize);
                if len < min {
                    return Err(wrong(&c, ty, "more bits than the column holds"));
                }
                Ok(Value::Bits(common::bits_of(*i as u128, len)))
            }
            Cell::Text(t) => common::parse_bit_text(t.trim()).map(Value::Bits).ok_or_else(|| wrong(&c, ty, "not a bit string")),
            _ => Err(wrong(&c, ty, "not a bit string")),
        },
        T::Year => match &c {
            Cell::Integer(i) => i16::try_from(*i).map(Value::Year).map_err(|_| wrong(&c, ty, "out of range")),
            Cell::Text(t) => t.trim().parse().map(Value::Year).map_err(|_| wrong(&c, ty, "not a year")),
            _ => Err(class_err(&c, ty)),
        },
        T::Array { .. } => match &c {
            Cell::Text(t) => json::read_array(t, ty, &|s, elem| decode(Cell::Text(s.to_string()), elem)),
            _ => Err(class_err(&c, ty)),
        },
    }
}

fn is_textual(ty: &ColumnType) -> bool {
    ty.is_textual() || matches!(ty, ColumnType::Xml)
}

fn is_binary(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::Blob { .. } | ColumnType::Binary { .. } | ColumnType::Varbinary { .. })
}

fn text(f: impl FnOnce(&mut String)) -> Cell {
    let mut s = String::new();
    f(&mut s);
    Cell::Text(s)
}

/// What to bind for a target column of type `ty`.
pub fn encode(v: &Value, ty: &ColumnType) -> Result<Cell, String> {
    use ColumnType as T;
    Ok(match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Integer(i64::from(*b)),
        Value::Int(i) => Cell::Integer(*i),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Cell::Integer(i),
            Err(_) if matches!(ty, T::Decimal { .. }) => return Err(numeric_affinity_refusal(&u.to_string())),
            // SQLite integers are signed 64-bit: the digits keep the value.
            Err(_) => Cell::Text(u.to_string()),
        },
        Value::Float32(x) if x.is_nan() => Cell::Text("NaN".into()),
        Value::Float64(x) if x.is_nan() => Cell::Text("NaN".into()),
        Value::Float32(x) if is_textual(ty) => text(|s| match common::nonfinite_name(f64::from(*x)) {
            Some(n) => s.push_str(n),
            None => common::write_f32(*x, s),
        }),
        Value::Float64(x) if is_textual(ty) => Cell::Text(real_text(*x)),
        Value::Float32(x) => Cell::Real(f64::from(*x)),
        Value::Float64(x) => Cell::Real(*x),
        Value::Decimal(d) => match ty {
            T::Int { .. } => match common::decimal_integral(d).and_then(|n| i64::try_from(n).ok()) {
                Some(i) => Cell::Integer(i),
                None => return Err(format!("{d} is not a whole 64-bit number for a {} column", ty.describe())),
            },
            // NUMERIC affinity keeps a whole number within 64 bits as an
            // integer and anything else as a double: only a decimal that
            // double holds exactly (it reads back as the same digits) may
            // go in, bound as that double.
            T::Decimal { .. } => {
                let whole = common::decimal_integral(d).is_some_and(|n| i64::try_from(n).is_ok());
                if whole || matches!(d.as_str(), "NaN" | "Infinity" | "-Infinity") {
                    Cell::Text(d.clone())
                } else {
                    match exact_double(d) {
                        Some(x) => Cell::Real(x),
                        None => return Err(numeric_affinity_refusal(d)),
                    }
                }
            }
            _ => Cell::Text(d.clone()),
        },
        Value::Text(t) => Cell::Text(t.clone()),
        Value::Bytes(b) => Cell::Blob(b.clone()),
        Value::Date(d) => text(|s| {
            common::write_date(*d, Era::Signed, s);
        }),
        Value::Time(t) => text(|s| common::write_time(*t, s)),
        Value::TimeTz(t, off) => text(|s| {
            common::write_time(*t, s);
            common::write_offset(*off, true, s);
        }),
        Value::Timestamp(dt) => text(|s| {
            common::write_datetime(*dt, Era::Signed, ' ', s);
        }),
        Value::TimestampTz(ts) => text(|s| {
            common::write_datetime(ts.naive_utc(), Era::Signed, ' ', s);
            s.push_str("+00:00");
        }),
        Value::Infinity { negative } => Cell::Text(if *negative { "-infinity" } else { "infinity" }.into()),
        Value::Interval(iv) => Cell::Text(iv.to_iso8601()),
        Value::Json(j) => Cell::Text(j.clone()),
        Value::Uuid(u) if is_binary(ty) => Cell::Blob(u.to_vec()),
        Value::Uuid(u) => Cell::Text(common::uuid_text(u)),
        Value::Enum(e) => {
            if let T::Enum { values, .. } = ty {
                if !values.is_empty() && !values.contains(e) {
                    return Err(format!("{} is not a label of the target enum ({})", common::show(e.as_bytes()), values.join(", ")));
                }
            }
            Cell::Text(e.clone())
        }
        Value::Set(members) => {
            if let Some(m) = members.iter().find(|m| m.contains(',')) {
                return Err(format!("SET member {} contains a comma", common::show(m.as_bytes())));
            }
            match ty {
                T::Json | T::Jsonb | T::Array { .. } => text(|s| {
                    let _ = json::write_json(v, s);
                }),
                _ => Cell::Text(members.join(",")),
            }
        }
        Value::Bits(bits) => match ty {
            // A varying bit string keeps its length only as text.
            T::Bit { varying: true, .. } => Cell::Text(common::bit_text(&common::fit_bits(bits, ty)?)),
            T::Bit { .. } => {
                let fitted = common::fit_bits(bits, ty)?;
                if fitted.len() <= 63 {
                    Cell::Integer(common::bits_value(&fitted).expect("at most 63 bits") as i64)
                } else {
                    Cell::Text(common::bit_text(&fitted))
                }
            }
            _ if is_textual(ty) => Cell::Text(common::bit_text(bits)),
            _ => match common::bits_value(bits).filter(|n| *n <= i64::MAX as u64) {
                Some(n) => Cell::Integer(n as i64),
                None => Cell::Text(common::bit_text(bits)),
            },
        },
        Value::Year(y) => Cell::Integer(i64::from(*y)),
        Value::Array(_) => {
            let mut s = String::new();
            json::write_json(v, &mut s)?;
            Cell::Text(s)
        }
        Value::ZeroDate => {
            return Err("a MySQL zero date (0000-00-00) has no SQLite form: write NULL or reject the row".into())
        }
    })
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;

/// The double that holds decimal `d` exactly, if one does: the nearest
/// double, printed back at its shortest, gives the same digits
/// (`12345678901234.123` does; `0.1000000000000000055` and 17 nines do not).
fn exact_double(d: &str) -> Option<f64> {
    let x: f64 = d.parse().ok().filter(|x: &f64| x.is_finite())?;
    let trim = |s: &str| -> String {
        let n = crate::model::value::normalize_decimal(s).unwrap_or_else(|| s.to_string());
        let t = if n.contains('.') { n.trim_end_matches('0').trim_end_matches('.').to_string() } else { n };
        if t == "-0" { "0".into() } else { t }
    };
    (trim(&common::float_as_decimal(x, false)) == trim(d)).then_some(x)
}

/// Why a decimal cannot go into a column of NUMERIC affinity unchanged.
fn numeric_affinity_refusal(d: &str) -> String {
    format!("{d} cannot be held exactly by SQLite's NUMERIC affinity (a whole number within signed 64 bits, or a value a double holds exactly, about 15 significant digits): it would be rounded; --cast the column to TEXT to keep every digit")
}
