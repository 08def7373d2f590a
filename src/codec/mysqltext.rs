//! MySQL/MariaDB values as text: what the text protocol returns (the
//! bytes of `mysql_async`'s `Value::Bytes` for a plain query), and fields
//! for `LOAD DATA`.
//!
//! The decoders assume the reading session ran
//! `SET time_zone = '+00:00'` (TIMESTAMP columns then arrive as UTC) and
//! `SET NAMES utf8mb4` (text arrives as UTF-8). The encoder assumes the
//! loading session has the same `time_zone`, and a statement of the shape
//!
//! ```sql
//! LOAD DATA LOCAL INFILE '...' INTO TABLE t CHARACTER SET utf8mb4
//!   FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
//!   (c1, @b, c3) SET b = CAST(@b AS UNSIGNED)
//! ```
//!
//! where every `BIT` column goes through a user variable and
//! `CAST(@v AS UNSIGNED)`: [`encode_load_data`] writes a bit string as its
//! integer value in decimal, and without the cast MySQL would store the
//! bytes of the digits.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::common::{self, bad, mismatch};
use super::json;
use crate::model::value::normalize_decimal;
use crate::model::{ColumnType, Interval, Value};

/// The longest MySQL TIME: 838:59:59, in microseconds.
const TIME_MAX_MICROS: i128 = (838 * 3600 + 59 * 60 + 59) * 1_000_000;
const DAY_MICROS: i128 = 86_400_000_000;

/// Like [`decode`], taking the bytes by value so text and blobs move
/// instead of being copied.
pub fn decode_owned(raw: Vec<u8>, ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    if bytes_as_is(&raw, ty) {
        return Ok(Value::Bytes(raw));
    }
    match ty {
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => Ok(Value::Bytes(raw)),
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Other { .. } | T::Json | T::Jsonb | T::Enum { .. } => {
            let s = String::from_utf8(raw).map_err(|e| bad(e.as_bytes(), ty, "not valid UTF-8"))?;
            Ok(text_value(s, ty))
        }
        _ => decode(&raw, ty),
    }
}

/// Exactly [`decode`] (the same values and messages), taking the bytes by
/// value so text moves instead of being copied, and handing them back
/// with an error: a reader that passes a bad value on as raw text
/// (`Mismatch::PassAsText`) then needs no copy of every value.
pub fn decode_owned_or_keep(raw: Vec<u8>, ty: &ColumnType) -> Result<Value, (String, Vec<u8>)> {
    use ColumnType as T;
    match ty {
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Json | T::Jsonb | T::Enum { .. }
            if ty.text_attrs().and_then(|t| t.charset.as_deref()) != Some("binary") =>
        {
            match String::from_utf8(raw) {
                Ok(s) => Ok(text_value(s, ty)),
                Err(e) => {
                    let raw = e.into_bytes();
                    decode(&raw, ty).map_err(|e| (e, raw))
                }
            }
        }
        _ => decode(&raw, ty).map_err(|e| (e, raw)),
    }
}

fn text_value(s: String, ty: &ColumnType) -> Value {
    match ty {
        ColumnType::Json | ColumnType::Jsonb => Value::Json(s),
        ColumnType::Enum { .. } => Value::Enum(s),
        _ => Value::Text(s),
    }
}

/// One text-protocol value → a value of column type `ty` (SQL NULL never
/// reaches here: the driver reports it apart).
pub fn decode(raw: &[u8], ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    if bytes_as_is(raw, ty) {
        return Ok(Value::Bytes(raw.to_vec()));
    }
    match ty {
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => Ok(Value::Bytes(raw.to_vec())),
        T::Bit { length, .. } => {
            let n = length.map_or(raw.len() * 8, |n| n as usize);
            common::bits_from_be(raw, n).map(Value::Bits).ok_or_else(|| bad(raw, ty, "more bits than the column holds"))
        }
        T::Uuid if raw.len() == 16 => Ok(Value::Uuid(raw.try_into().expect("16 bytes"))),
        _ => decode_str(common::utf8(raw, ty)?, ty),
    }
}

/// Text the server does not convert: a `CHARACTER SET binary` column, or
/// a type barge does not model (`geometry` arrives as WKB) whose bytes are
/// not UTF-8. Kept as bytes rather than refused.
fn bytes_as_is(raw: &[u8], ty: &ColumnType) -> bool {
    let binary_charset = ty.text_attrs().and_then(|t| t.charset.as_deref()) == Some("binary");
    (binary_charset || matches!(ty, ColumnType::Other { .. })) && std::str::from_utf8(raw).is_err()
}

fn decode_str(s: &str, ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    let raw = s.as_bytes();
    match ty {
        T::Bool => match s {
            "0" => Ok(Value::Bool(false)),
            "1" => Ok(Value::Bool(true)),
            _ => Err(bad(raw, ty, "a boolean column (tinyint(1)) holds a value other than 0 or 1")),
        },
        T::Int { .. } => common::parse_int(s, ty),
        T::Decimal { .. } => normalize_decimal(s).map(Value::Decimal).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Float32 => common::parse_f32(s).map(Value::Float32).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Float64 => common::parse_f64(s).map(Value::Float64).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Other { .. } => Ok(Value::Text(s.to_string())),
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => Ok(Value::Bytes(raw.to_vec())),
        T::Date => match zero_date(s) {
            Some(true) => Ok(Value::ZeroDate),
            _ => match common::parse_datetime(s) {
                Some((d, None, None)) => Ok(Value::Date(d)),
                _ => Err(bad(raw, ty, "expected YYYY-MM-DD")),
            },
        },
        T::Timestamp { tz, .. } => {
            if zero_date(s) == Some(true) {
                return Ok(Value::ZeroDate);
            }
            match common::parse_datetime(s) {
                Some((d, t, None)) => {
                    let dt = d.and_time(t.unwrap_or(NaiveTime::MIN));
                    // TIMESTAMP is an instant; the session zone is UTC.
                    Ok(if *tz { Value::TimestampTz(dt.and_utc()) } else { Value::Timestamp(dt) })
                }
                _ => Err(bad(raw, ty, "expected YYYY-MM-DD HH:MM:SS[.ffffff]")),
            }
        }
        T::Time { .. } => decode_time(s).ok_or_else(|| bad(raw, ty, "expected [-]HHH:MM:SS[.ffffff]")),
        T::Year => s.parse().map(Value::Year).map_err(|_| bad(raw, ty, "not a year")),
        T::Json | T::Jsonb => Ok(Value::Json(s.to_string())),
        T::Enum { .. } => Ok(Value::Enum(s.to_string())),
        T::Set { .. } => Ok(Value::Set(if s.is_empty() { Vec::new() } else { s.split(',').map(str::to_string).collect() })),
        T::Bit { .. } => decode(raw, ty),
        T::Uuid => common::parse_uuid(s).map(Value::Uuid).ok_or_else(|| bad(raw, ty, "not a uuid")),
        T::Interval { .. } => common::parse_iso_interval(s)
            .map(Value::Interval)
            .ok_or_else(|| bad(raw, ty, "expected an ISO 8601 duration")),
        T::Array { .. } => json::read_array(s, ty, &decode_str),
    }
}

/// `Some(true)` for `0000-00-00` and the partial zero dates MySQL allows
/// (`2024-00-00`, `2024-01-00`): no other engine can hold them, so they all
/// become [`Value::ZeroDate`] (the day or month that was set is lost, and
/// the writer turns the value into NULL or rejects the row).
fn zero_date(s: &str) -> Option<bool> {
    let mut c = common::Cur::new(s);
    let (_, m, d) = common::ymd(&mut c)?;
    Some(m == 0 || d == 0)
}

/// MySQL TIME is a duration from -838:59:59 to 838:59:59: a time of day
/// when it is one, an interval otherwise.
fn decode_time(s: &str) -> Option<Value> {
    let mut c = common::Cur::new(s);
    let neg = c.eat(b'-');
    let h = c.digits(1, 3)? as i128;
    if !c.eat(b':') {
        return None;
    }
    let m = c.digits(2, 2)? as i128;
    if !c.eat(b':') {
        return None;
    }
    let sec = c.digits(2, 2)? as i128;
    let mut ns = 0;
    if c.eat(b'.') {
        ns = c.frac_nanos()?;
    }
    if !c.done() || m > 59 || sec > 59 || ns % 1000 != 0 {
        return None;
    }
    let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + i128::from(ns / 1000);
    let total = if neg { -total } else { total };
    if (0..DAY_MICROS).contains(&total) {
        let secs = (total / 1_000_000) as u32;
        NaiveTime::from_num_seconds_from_midnight_opt(secs, ns).map(Value::Time)
    } else {
        Some(Value::Interval(Interval { months: 0, days: 0, micros: total as i64 }))
    }
}

// ---------------------------------------------------------------- encode

fn is_textual(ty: &ColumnType) -> bool {
    ty.is_textual() || matches!(ty, ColumnType::Xml | ColumnType::Other { .. })
}

fn is_binary(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::Blob { .. } | ColumnType::Binary { .. } | ColumnType::Varbinary { .. })
}

/// Appends `v` as one `LOAD DATA` field (see the module docs for the
/// statement) for a target column of type `ty`: `\N` for NULL; `\`, tab,
/// newline, carriage return and NUL escaped; bytes written raw.
///
/// Conversions: booleans as `1`/`0`; instants as their UTC wall clock; an
/// interval as ISO 8601 text for a character column or `[-]HHH:MM:SS` for
/// a TIME column (an error beyond ±838:59:59 or with months); a uuid as
/// 36 characters, or 16 bytes for a binary column; a SET as `a,b`; an
/// array as JSON; a bit string as its integer value for a BIT column
/// (load it through `CAST(@v AS UNSIGNED)`) or big-endian bytes for a
/// binary column. Errors: NaN and ±Infinity (MySQL has neither), infinite
/// dates, years outside 0..=9999, TIMESTAMP values outside 1970–2038, and
/// a zero date for a column that is not a MySQL date or datetime.
pub fn encode_load_data(v: &Value, ty: &ColumnType, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => {
            out.extend_from_slice(b"\\N");
            Ok(())
        }
        Value::Text(s) => {
            escape(s.as_bytes(), out);
            Ok(())
        }
        Value::Bytes(b) if !matches!(ty, ColumnType::Uuid) => {
            escape(b, out);
            Ok(())
        }
        Value::Int(i) if matches!(ty, ColumnType::Int { .. } | ColumnType::Decimal { .. }) => {
            common::check_int_target(*i as i128, ty)?;
            let _ = std::io::Write::write_fmt(out, format_args!("{i}"));
            Ok(())
        }
        _ => {
            let f = field(v, ty)?;
            escape(&f, out);
            Ok(())
        }
    }
}

/// `LOAD DATA ... ESCAPED BY '\\'` escaping.
fn escape(b: &[u8], out: &mut Vec<u8>) {
    out.reserve(b.len());
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(rep);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
}

fn write_date(d: NaiveDate, s: &mut String) -> Result<(), String> {
    use chrono::Datelike;
    if !(0..=9999).contains(&d.year()) {
        return Err(format!("{d} is outside MySQL's years 0000 to 9999"));
    }
    common::write_date(d, common::Era::Signed, s);
    Ok(())
}

fn write_datetime(dt: NaiveDateTime, ty: &ColumnType, s: &mut String) -> Result<(), String> {
    if let ColumnType::Timestamp { tz: true, .. } = ty {
        // MySQL TIMESTAMP holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07.999999 UTC.
        let lo = NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 1)).expect("valid");
        let hi = NaiveDate::from_ymd_opt(2038, 1, 19).and_then(|d| d.and_hms_micro_opt(3, 14, 7, 999_999)).expect("valid");
        if dt < lo || dt > hi {
            return Err(format!("{dt} UTC is outside the range of a MySQL TIMESTAMP (1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC)"));
        }
    }
    if let ColumnType::Date = ty {
        if dt.time() != NaiveTime::MIN {
            return Err(format!("{dt} has a time of day; a date column would drop it"));
        }
        return write_date(dt.date(), s);
    }
    write_date(dt.date(), s)?;
    s.push(' ');
    common::write_time(dt.time(), s);
    Ok(())
}

/// `[-]HH:MM:SS[.ffffff]` (hours may run to 838).
fn mysql_time(iv: &Interval) -> Option<String> {
    if iv.months != 0 {
        return None;
    }
    let total = i128::from(iv.days) * DAY_MICROS + i128::from(iv.micros);
    if total.abs() > TIME_MAX_MICROS {
        return None;
    }
    let a = total.unsigned_abs();
    let (h, m, sec, us) = (a / 3_600_000_000, a / 60_000_000 % 60, a / 1_000_000 % 60, a % 1_000_000);
    let mut s = String::new();
    if total < 0 {
        s.push('-');
    }
    let _ = write!(s, "{h:02}:{m:02}:{sec:02}");
    common::write_frac((us * 1000) as u32, &mut s);
    Some(s)
}

/// The unescaped field for everything but the fast paths.
fn field(v: &Value, ty: &ColumnType) -> Result<Vec<u8>, String> {
    use ColumnType as T;
    let text = is_textual(ty);
    let mut s = String::new();
    match v {
        Value::Null | Value::Text(_) => unreachable!("handled by encode_load_data"),
        Value::Bool(b) => s.push(if *b { '1' } else { '0' }),
        Value::Int(_) | Value::UInt(_) => {
            let n = common::int_of(v).expect("an integer");
            match ty {
                T::Int { .. } => common::check_int_target(n, ty)?,
                T::Bit { length, .. } => {
                    let len = length.unwrap_or(64).min(64);
                    if n < 0 || (len < 64 && n >= 1i128 << len) {
                        return Err(format!("{n} does not fit a {} column", ty.describe()));
                    }
                }
                T::Bool | T::Decimal { .. } | T::Float32 | T::Float64 | T::Year | T::Json => {}
                _ if text => {}
                _ => return Err(mismatch(v, ty, "MySQL")),
            }
            let _ = write!(s, "{n}");
        }
        Value::Float32(_) | Value::Float64(_) => {
            let (x, single) = match v {
                Value::Float32(x) => (f64::from(*x), true),
                Value::Float64(x) => (*x, false),
                _ => unreachable!(),
            };
            if !x.is_finite() {
                return Err(format!("{x} cannot be stored: MySQL has no NaN or Infinity"));
            }
            match ty {
                T::Int { .. } | T::Bool => {
                    if x.fract() != 0.0 || x.abs() > 1e19 {
                        return Err(format!("{x} is not a whole number for a {} column", ty.describe()));
                    }
                    common::check_int_target(x as i128, ty)?;
                    let _ = write!(s, "{}", x as i128);
                }
                T::Decimal { .. } => s.push_str(&common::float_as_decimal(x, single)),
                // MySQL parses a FLOAT's text as a double first: the f32's
                // shortest digits (3.4028235e38) can land above FLT_MAX, so
                // write the exact widened value, which rounds back to it.
                T::Float32 => common::write_f64(x, &mut s),
                T::Float64 | T::Json => match v {
                    Value::Float32(f) => common::write_f32(*f, &mut s),
                    _ => common::write_f64(x, &mut s),
                },
                _ if text => match v {
                    Value::Float32(f) => common::write_f32(*f, &mut s),
                    _ => common::write_f64(x, &mut s),
                },
                _ => return Err(mismatch(v, ty, "MySQL")),
            }
        }
        Value::Decimal(d) => {
            if matches!(d.as_str(), "NaN" | "Infinity" | "-Infinity") {
                return Err(format!("decimal {d} cannot be stored: MySQL has no NaN or Infinity"));
            }
            match ty {
                T::Int { .. } | T::Bool => {
                    let n = common::decimal_integral(d)
                        .ok_or_else(|| format!("{d} is not a whole number for a {} column", ty.describe()))?;
                    common::check_int_target(n, ty)?;
                    let _ = write!(s, "{n}");
                }
                T::Decimal { .. } | T::Float32 | T::Float64 | T::Json => s.push_str(d),
                _ if text => s.push_str(d),
                _ => return Err(mismatch(v, ty, "MySQL")),
            }
        }
        Value::Bytes(b) => match ty {
            T::Uuid if b.len() == 16 => s.push_str(&common::uuid_text(b.as_slice().try_into().expect("16 bytes"))),
            _ => return Ok(b.clone()),
        },
        Value::Date(d) => match ty {
            T::Date => write_date(*d, &mut s)?,
            T::Timestamp { .. } => write_datetime(d.and_time(NaiveTime::MIN), ty, &mut s)?,
            _ if text => write_date(*d, &mut s)?,
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::Time(t) => match ty {
            T::Time { .. } => common::write_time(*t, &mut s),
            _ if text => common::write_time(*t, &mut s),
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::TimeTz(t, off) => match ty {
            // MySQL TIME has no zone: the offset is dropped, as the schema
            // conversion reports for time with time zone → time.
            T::Time { .. } => common::write_time(*t, &mut s),
            _ if text => {
                common::write_time(*t, &mut s);
                common::write_offset(*off, true, &mut s);
            }
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::Timestamp(dt) => match ty {
            T::Timestamp { .. } | T::Date => write_datetime(*dt, ty, &mut s)?,
            _ if text => write_datetime(*dt, ty, &mut s)?,
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::TimestampTz(ts) => match ty {
            T::Timestamp { .. } | T::Date => write_datetime(ts.naive_utc(), ty, &mut s)?,
            _ if text => write_datetime(ts.naive_utc(), ty, &mut s)?,
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::Infinity { negative } => {
            return Err(format!("{}infinity cannot be stored: MySQL dates are finite", if *negative { "-" } else { "" }))
        }
        Value::Interval(iv) => match ty {
            T::Time { .. } => {
                s = mysql_time(iv).ok_or_else(|| {
                    format!("interval {} does not fit a MySQL TIME (±838:59:59, no months)", iv.to_iso8601())
                })?
            }
            _ if text => s.push_str(&iv.to_iso8601()),
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::Json(j) => match ty {
            T::Json | T::Jsonb => s.push_str(j),
            _ if text => s.push_str(j),
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::Uuid(u) => match ty {
            _ if is_binary(ty) => return Ok(u.to_vec()),
            _ => s.push_str(&common::uuid_text(u)),
        },
        Value::Enum(e) => match ty {
            T::Enum { values, .. } => {
                // MySQL matches labels case-insensitively (and stores its own spelling).
                if !values.is_empty() && !values.iter().any(|l| l.eq_ignore_ascii_case(e)) {
                    return Err(format!("{} is not a label of the target enum ({})", common::show(e.as_bytes()), values.join(", ")));
                }
                s.push_str(e);
            }
            _ => s.push_str(e),
        },
        Value::Set(members) => {
            if let Some(m) = members.iter().find(|m| m.contains(',')) {
                return Err(format!("SET member {} contains a comma", common::show(m.as_bytes())));
            }
            if let T::Set { values } = ty {
                if let Some(m) = members.iter().find(|m| !values.iter().any(|l| l.eq_ignore_ascii_case(m))) {
                    return Err(format!("{} is not a member of the target SET ({})", common::show(m.as_bytes()), values.join(", ")));
                }
            }
            match ty {
                T::Json => json::write_json(v, &mut s)?,
                _ => s.push_str(&members.join(",")),
            }
        }
        Value::Bits(bits) => match ty {
            T::Bit { .. } => {
                let fitted = common::fit_bits(bits, ty)?;
                let n = common::bits_value(&fitted)
                    .ok_or_else(|| format!("bits {} do not fit a MySQL BIT (64 bits at most)", common::bit_text(bits)))?;
                let _ = write!(s, "{n}");
            }
            _ if is_binary(ty) => return Ok(common::bits_to_be(bits)),
            T::Bool | T::Int { .. } | T::Decimal { .. } => {
                let n = common::bits_value(bits)
                    .ok_or_else(|| format!("bits {} have more than 64 significant bits", common::bit_text(bits)))?;
                common::check_int_target(n as i128, ty)?;
                let _ = write!(s, "{n}");
            }
            _ => s.push_str(&common::bit_text(bits)),
        },
        Value::Year(y) => {
            let _ = write!(s, "{y}");
        }
        Value::Array(_) => match ty {
            T::Json | T::Jsonb => json::write_json(v, &mut s)?,
            _ if text => json::write_json(v, &mut s)?,
            _ => return Err(mismatch(v, ty, "MySQL")),
        },
        Value::ZeroDate => match ty {
            T::Date => s.push_str("0000-00-00"),
            T::Timestamp { .. } => s.push_str("0000-00-00 00:00:00"),
            _ => return Err(format!("a zero date cannot be written to a {} column", ty.describe())),
        },
    }
    Ok(s.into_bytes())
}

#[cfg(test)]
#[path = "mysqltext_tests.rs"]
mod tests;
