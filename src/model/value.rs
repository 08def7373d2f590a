//! Values: the lossless row representation every reader produces and every
//! writer consumes. Nothing is rounded or stringified on the way through:
//! decimals keep their digits, timestamps their precision and zone rule,
//! bytes stay bytes. A writer that must change a value (a target without
//! the type) does so explicitly and counts it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Unsigned values above `i64::MAX` (MySQL `bigint unsigned`).
    UInt(u64),
    Float32(f32),
    Float64(f64),
    /// An exact decimal as canonical text: optional `-`, digits, optional
    /// `.` and digits (`-12.3400`; the scale written is the scale kept).
    /// `NaN`, `Infinity` and `-Infinity` are allowed (PostgreSQL numeric).
    Decimal(String),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    /// Time of day with a UTC offset in seconds (PostgreSQL `timetz`).
    TimeTz(NaiveTime, i32),
    /// A wall-clock timestamp without zone.
    Timestamp(NaiveDateTime),
    /// An instant.
    TimestampTz(DateTime<Utc>),
    /// PostgreSQL's `infinity` / `-infinity` for dates and timestamps.
    Infinity { negative: bool },
    Interval(Interval),
    /// JSON as text, exactly as stored (not re-serialized).
    Json(String),
    Uuid([u8; 16]),
    /// An enum label.
    Enum(String),
    /// A MySQL SET: its members in stored order.
    Set(Vec<String>),
    /// A bit string, most significant bit first (`B'0101'` = [false, true, false, true]).
    Bits(Vec<bool>),
    Year(i16),
    Array(Vec<Value>),
    /// MySQL's zero date/datetime (`0000-00-00`), which no other engine
    /// can store; writers turn it into NULL (counted) or reject the row.
    ZeroDate,
}

/// An interval as PostgreSQL keeps it: months, days and microseconds are
/// separate because their lengths vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// ISO 8601 duration, e.g. `P1Y2M3DT4H5M6.5S`; `PT0S` for zero.
    pub fn to_iso8601(&self) -> String {
        let mut s = String::from("P");
        let (y, m) = (self.months / 12, self.months % 12);
        if y != 0 {
            s.push_str(&format!("{y}Y"));
        }
        if m != 0 {
            s.push_str(&format!("{m}M"));
        }
        if self.days != 0 {
            s.push_str(&format!("{}D", self.days));
        }
        if self.micros != 0 || s.len() == 1 {
            s.push('T');
            let neg = self.micros < 0;
            let us = self.micros.unsigned_abs();
            let (h, rem) = (us / 3_600_000_000, us % 3_600_000_000);
            let (mi, rem) = (rem / 60_000_000, rem % 60_000_000);
            let (sec, frac) = (rem / 1_000_000, rem % 1_000_000);
            let sign = if neg { "-" } else { "" };
            if h != 0 {
                s.push_str(&format!("{sign}{h}H"));
            }
            if mi != 0 {
                s.push_str(&format!("{sign}{mi}M"));
            }
            if sec != 0 || frac != 0 || (h == 0 && mi == 0) {
                if frac != 0 {
                    let f = format!("{frac:06}");
                    s.push_str(&format!("{sign}{sec}.{}S", f.trim_end_matches('0')));
                } else {
                    s.push_str(&format!("{sign}{sec}S"));
                }
            }
        }
        s
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Float32(_) => "float32",
            Value::Float64(_) => "float64",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::TimeTz(..) => "timetz",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Infinity { .. } => "infinity",
            Value::Interval(_) => "interval",
            Value::Json(_) => "json",
            Value::Uuid(_) => "uuid",
            Value::Enum(_) => "enum",
            Value::Set(_) => "set",
            Value::Bits(_) => "bits",
            Value::Year(_) => "year",
            Value::Array(_) => "array",
            Value::ZeroDate => "zero date",
        }
    }

    /// Approximate size in bytes, for progress and batching.
    pub fn weight(&self) -> usize {
        match self {
            Value::Text(s) | Value::Json(s) | Value::Decimal(s) | Value::Enum(s) => s.len() + 1,
            Value::Bytes(b) => b.len() + 1,
            Value::Set(v) => v.iter().map(|s| s.len() + 1).sum(),
            Value::Bits(b) => b.len() / 8 + 1,
            Value::Array(v) => v.iter().map(Value::weight).sum::<usize>() + 2,
            Value::Uuid(_) => 16,
            _ => 8,
        }
    }
}

/// A decimal's text, checked and normalized to `-?digits(.digits)?`: a
/// leading `+` and redundant leading zeros go, the scale stays.
pub fn normalize_decimal(s: &str) -> Option<String> {
    let s = s.trim();
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return Some(s.to_string());
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() && frac.is_none_or(str::is_empty) {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.unwrap_or("").bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.unwrap_or("").bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(s.len() + 1);
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if let Some(f) = frac {
        if !f.is_empty() {
            out.push('.');
            out.push_str(f);
        }
    }
    Some(out)
}

/// Rounds a canonical decimal to `scale` fractional digits, half away from
/// zero (as PostgreSQL and MySQL do when a value has more digits than the
/// column). Returns the input unchanged if it already fits.
pub fn round_decimal(d: &str, scale: u32) -> String {
    let Some((int, frac)) = d.split_once('.') else { return d.to_string() };
    let scale = scale as usize;
    if frac.len() <= scale {
        return d.to_string();
    }
    let neg = int.starts_with('-');
    let int = int.trim_start_matches('-');
    let round_up = frac.as_bytes()[scale] >= b'5';
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - scale;
    let mut out = String::with_capacity(digits.len() + 2);
    let is_zero = digits.iter().all(|&b| b == b'0');
    if neg && !is_zero {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&digits[..int_len]).unwrap_or("0"));
    if scale > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(&digits[int_len..]).unwrap_or(""));
    }
    out
}

/// Are two decimal texts the same number (scale ignored)?
pub fn decimal_eq(a: &str, b: &str) -> bool {
    fn strip(s: &str) -> Option<String> {
        let n = normalize_decimal(s)?;
        Some(if n.contains('.') { n.trim_end_matches('0').trim_end_matches('.').to_string() } else { n })
    }
    match (strip(a), strip(b)) {
        (Some(x), Some(y)) => x == y || (x == "-0" && y == "0") || (x == "0" && y == "-0"),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_normalize_without_rounding() {
        assert_eq!(normalize_decimal("+001.2300").as_deref(), Some("1.2300"));
        assert_eq!(normalize_decimal("-0.000").as_deref(), Some("0.000"));
        assert_eq!(normalize_decimal(".5").as_deref(), Some("0.5"));
        assert_eq!(normalize_decimal("12345678901234567890123456789.123456789").as_deref(), Some("12345678901234567890123456789.123456789"));
        assert_eq!(normalize_decimal("1e5"), None);
        assert_eq!(normalize_decimal(""), None);
        assert!(decimal_eq("1.50", "1.5"));
        assert!(!decimal_eq("1.51", "1.5"));
    }

    #[test]
    fn rounding_to_a_scale() {
        assert_eq!(round_decimal("3023469.6651480002", 6), "3023469.665148");
        assert_eq!(round_decimal("9.9995", 3), "10.000");
        assert_eq!(round_decimal("-0.0004", 3), "0.000");
        assert_eq!(round_decimal("-1.2345", 3), "-1.235");
        assert_eq!(round_decimal("1.5", 0), "2");
        assert_eq!(round_decimal("1.25", 4), "1.25");
    }

    #[test]
    fn intervals_print_as_iso8601() {
        assert_eq!(Interval { months: 14, days: 3, micros: 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000 }.to_iso8601(), "P1Y2M3DT4H5M6.5S");
        assert_eq!(Interval::default().to_iso8601(), "PT0S");
        assert_eq!(Interval { months: 0, days: 0, micros: -1_000_000 }.to_iso8601(), "PT-1S");
    }
}
