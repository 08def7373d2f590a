//! PostgreSQL's binary COPY format, written straight from packed values
//! ([`crate::pack::rows::Packed`]): an unpack into PostgreSQL skips both
//! the detour through [`crate::model::Value`] and the server's text
//! parsing. Only the types below have an encoder; a table with any other
//! column goes through COPY text as before ([`Field::of`] says which).
//!
//! The layouts are PostgreSQL's `*_send`/`*_recv` functions: big-endian
//! integers, dates and timestamps counted from 2000-01-01, `numeric` in
//! base-10000 digits.

use crate::model::ColumnType;
use crate::pack::rows::Packed;

/// The binary COPY file header: signature, flags, header extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The file trailer: a tuple with field count -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// 2000-01-01 as a packed day number (0001-01-01 is day 1).
const PG_EPOCH_DAY: i64 = 730_120;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How one column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// The text itself: text, varchar, char (PostgreSQL pads it), enum
    /// labels and `json`, whose binary form is its text.
    Text,
    /// `jsonb`: a version byte (1), then the text.
    Jsonb,
    Bytea,
    Date,
    Time,
    TimeTz,
    /// `timestamp` and `timestamptz` (whose packed value is the UTC instant).
    Timestamp,
    Interval,
    Uuid,
    /// `bit` and `bit varying`.
    Bits,
}

impl Field {
    /// The encoder for a PostgreSQL column of type `ty`, if there is one.
    pub fn of(ty: &ColumnType) -> Option<Field> {
        Some(match ty {
            ColumnType::Bool => Field::Bool,
            ColumnType::Int { bits: 16, unsigned: false } => Field::Int2,
            ColumnType::Int { bits: 32, unsigned: false } => Field::Int4,
            ColumnType::Int { bits: 64, unsigned: false } => Field::Int8,
            ColumnType::Float32 => Field::Float4,
            ColumnType::Float64 => Field::Float8,
            ColumnType::Decimal { .. } => Field::Numeric,
            ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. } | ColumnType::Json | ColumnType::Enum { .. } => Field::Text,
            ColumnType::Jsonb => Field::Jsonb,
            ColumnType::Blob { .. } | ColumnType::Varbinary { .. } => Field::Bytea,
            ColumnType::Date => Field::Date,
            ColumnType::Time { tz: false, .. } => Field::Time,
            ColumnType::Time { tz: true, .. } => Field::TimeTz,
            ColumnType::Timestamp { .. } => Field::Timestamp,
            // Interval fields (`YEAR TO MONTH`) are a typmod the server
            // applies to text input only: keep those on the text path.
            ColumnType::Interval { fields: None, .. } => Field::Interval,
            ColumnType::Uuid => Field::Uuid,
            ColumnType::Bit { .. } => Field::Bits,
            _ => return None,
        })
    }
}

/// Appends one field: its length word and its bytes (length -1 for NULL).
/// An error names what did not fit; the caller adds table, row and column.
pub fn put_field(v: &Packed<'_>, f: Field, out: &mut Vec<u8>) -> Result<(), String> {
    if matches!(v, Packed::Null) {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    put_body(v, f, out)?;
    let len = i32::try_from(out.len() - at - 4).map_err(|_| "a value of 2 GiB or more does not fit in a COPY field".to_string())?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn put_body(v: &Packed<'_>, f: Field, out: &mut Vec<u8>) -> Result<(), String> {
    match (f, v) {
        (Field::Bool, Packed::Bool(b)) => out.push(*b as u8),
        (Field::Int2, Packed::Int(i)) => out.extend_from_slice(&i16::try_from(*i).map_err(|_| format!("{i} does not fit in smallint"))?.to_be_bytes()),
        (Field::Int4, Packed::Int(i)) => out.extend_from_slice(&i32::try_from(*i).map_err(|_| format!("{i} does not fit in integer"))?.to_be_bytes()),
        (Field::Int8, Packed::Int(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (Field::Float4, Packed::Float32(bits)) => out.extend_from_slice(&bits.to_be_bytes()),
        (Field::Float8, Packed::Float64(bits)) => out.extend_from_slice(&bits.to_be_bytes()),
        (Field::Float8, Packed::Float32(bits)) => out.extend_from_slice(&f64::from(f32::from_bits(*bits)).to_bits().to_be_bytes()),
        (Field::Numeric, Packed::Decimal(text)) => put_numeric(text, out)?,
        (Field::Text, Packed::Text(b) | Packed::Enum(b) | Packed::Json(b)) => out.extend_from_slice(b),
        (Field::Jsonb, Packed::Json(b) | Packed::Text(b)) => {
            out.push(1);
            out.extend_from_slice(b);
        }
        (Field::Bytea, Packed::Bytes(b)) => out.extend_from_slice(b),
        (Field::Date, Packed::Date(d)) => out.extend_from_slice(&((*d as i64 - PG_EPOCH_DAY) as i32).to_be_bytes()),
        (Field::Date, Packed::Infinity { negative }) => out.extend_from_slice(&(if *negative { i32::MIN } else { i32::MAX }).to_be_bytes()),
        (Field::Time, Packed::Time(t)) => out.extend_from_slice(&micros_of_day(*t)?.to_be_bytes()),
        (Field::TimeTz, Packed::TimeTz(t, offset)) => {
            out.extend_from_slice(&micros_of_day(*t)?.to_be_bytes());
            // PostgreSQL keeps the zone as seconds west of UTC.
            out.extend_from_slice(&(-offset).to_be_bytes());
        }
        (Field::Timestamp, Packed::Timestamp(d, t) | Packed::TimestampTz(d, t)) => {
            let micros = (*d as i64 - PG_EPOCH_DAY).checked_mul(MICROS_PER_DAY).and_then(|m| m.checked_add(micros_of_day(*t).ok()?));
            out.extend_from_slice(&micros.ok_or("the timestamp is outside PostgreSQL's range")?.to_be_bytes());
        }
        (Field::Timestamp, Packed::Infinity { negative }) => out.extend_from_slice(&(if *negative { i64::MIN } else { i64::MAX }).to_be_bytes()),
        (Field::Interval, Packed::Interval(iv)) => {
            out.extend_from_slice(&iv.micros.to_be_bytes());
            out.extend_from_slice(&iv.days.to_be_bytes());
            out.extend_from_slice(&iv.months.to_be_bytes());
        }
        (Field::Uuid, Packed::Uuid(u)) => out.extend_from_slice(*u),
        (Field::Bits, Packed::Bits(n, bytes)) => {
            out.extend_from_slice(&i32::try_from(*n).map_err(|_| "a bit string this long does not fit".to_string())?.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        (f, v) => return Err(format!("a packed {} value is not a {f:?} column's", kind(v))),
    }
    Ok(())
}

/// Microseconds since midnight; PostgreSQL keeps no finer part. Its
/// `24:00:00` is packed as 23:59:59 and a second of nanoseconds (see
/// `codec`), which this sum turns back into 86,400 s.
fn micros_of_day((secs, nanos): (u32, u32)) -> Result<i64, String> {
    if nanos % 1000 != 0 {
        return Err(format!("{secs}s {nanos}ns has nanoseconds, which PostgreSQL cannot hold"));
    }
    Ok(secs as i64 * 1_000_000 + (nanos / 1000) as i64)
}

fn kind(v: &Packed<'_>) -> &'static str {
    match v {
        Packed::Null => "NULL",
        Packed::Bool(_) => "boolean",
        Packed::Int(_) => "integer",
        Packed::UInt(_) => "unsigned integer",
        Packed::Float32(_) => "float4",
        Packed::Float64(_) => "float8",
        Packed::Decimal(_) => "decimal",
        Packed::Text(_) => "text",
        Packed::Bytes(_) => "binary",
        Packed::Date(_) => "date",
        Packed::Time(_) => "time",
        Packed::TimeTz(..) => "timetz",
        Packed::Timestamp(..) => "timestamp",
        Packed::TimestampTz(..) => "timestamptz",
        Packed::Infinity { .. } => "infinity",
        Packed::Interval(_) => "interval",
        Packed::Json(_) => "json",
        Packed::Uuid(_) => "uuid",
        Packed::Enum(_) => "enum",
        Packed::Set(_) => "set",
        Packed::Bits(..) => "bit string",
        Packed::Year(_) => "year",
        Packed::Array(_) => "array",
        Packed::ZeroDate => "zero date",
    }
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// `numeric` from its exact text (`-?digits(.digits)?`, `NaN`,
/// `Infinity`, `-Infinity`): ndigits, weight, sign, display scale, then
/// base-10000 digits with the point between groups. Every digit is kept.
pub fn put_numeric(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let special = match text {
        b"NaN" => Some(NUMERIC_NAN),
        b"Infinity" => Some(NUMERIC_PINF),
        b"-Infinity" => Some(NUMERIC_NINF),
        _ => None,
    };
    let header = |out: &mut Vec<u8>, n: u16, weight: i16, sign: u16, dscale: u16| {
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
    };
    if let Some(sign) = special {
        header(out, 0, 0, sign, 0);
        return Ok(());
    }
    let bad = || format!("{:?} is not a decimal number", String::from_utf8_lossy(text));
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[..0]),
    };
    if (int.is_empty() && frac.is_empty()) || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let dscale = u16::try_from(frac.len()).map_err(|_| bad())?;
    // Groups of four digits aligned on the point: pad the integer part on
    // the left and the fraction on the right to whole groups.
    let int = &int[int.iter().position(|&c| c != b'0').unwrap_or(int.len())..];
    let int_groups = int.len().div_ceil(4);
    let frac_groups = frac.len().div_ceil(4);
    let mut digits: Vec<u16> = Vec::with_capacity(int_groups + frac_groups);
    let lead = int_groups * 4 - int.len();
    let padded_int = std::iter::repeat_n(b'0', lead).chain(int.iter().copied());
    let padded_frac = frac.iter().copied().chain(std::iter::repeat_n(b'0', frac_groups * 4 - frac.len()));
    let mut group = 0u16;
    for (i, c) in padded_int.chain(padded_frac).enumerate() {
        group = group * 10 + (c - b'0') as u16;
        if i % 4 == 3 {
            digits.push(group);
            group = 0;
        }
    }
    let mut weight = int_groups as i64 - 1;
    // Leading zero groups (a value below 1) and trailing ones are implied.
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    weight -= first as i64;
    let last = digits.iter().rposition(|&d| d != 0).map_or(first, |p| p + 1);
    let digits = &digits[first..last];
    if digits.is_empty() {
        header(out, 0, 0, NUMERIC_POS, dscale);
        return Ok(());
    }
    let n = u16::try_from(digits.len()).map_err(|_| bad())?;
    let weight = i16::try_from(weight).map_err(|_| format!("{} is beyond numeric's range", String::from_utf8_lossy(text)))?;
    header(out, n, weight, if negative { NUMERIC_NEG } else { NUMERIC_POS }, dscale);
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(s: &str) -> Vec<i64> {
        let mut out = Vec::new();
        put_numeric(s.as_bytes(), &mut out).unwrap();
        out.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as i64).collect()
    }

    #[test]
    fn numerics_are_base_10000_groups_around_the_point() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric("0"), [0, 0, 0, 0]);
        assert_eq!(numeric("0.00"), [0, 0, 0, 2]);
        assert_eq!(numeric("1"), [1, 0, 0, 0, 1]);
        assert_eq!(numeric("12345.678"), [3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric("-12345.678"), [3, 1, 0x4000, 3, 1, 2345, 6780]);
        assert_eq!(numeric("0.0001"), [1, -1, 0, 4, 1]);
        assert_eq!(numeric("0.00001"), [1, -2, 0, 5, 1000]);
        assert_eq!(numeric("100000000"), [1, 2, 0, 0, 1]);
        assert_eq!(numeric("10000.5000"), [3, 1, 0, 4, 1, 0, 5000]);
        assert_eq!(numeric("007.10"), [2, 0, 0, 2, 7, 1000]);
        assert_eq!(numeric("NaN"), [0, 0, 0xC000u16 as i16 as i64, 0]);
        assert_eq!(numeric("-Infinity"), [0, 0, 0xF000u16 as i16 as i64, 0]);
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for bad in ["", "-", ".", "1e5", "1.2.3", "12a", " 1"] {
            assert!(put_numeric(bad.as_bytes(), &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_and_timestamps_count_from_2000() {
        let mut out = Vec::new();
        put_body(&Packed::Date(730_120), Field::Date, &mut out).unwrap();
        assert_eq!(out, 0i32.to_be_bytes());
        out.clear();
        put_body(&Packed::Timestamp(730_119, (86_399, 999_999_000)), Field::Timestamp, &mut out).unwrap();
        assert_eq!(out, (-1i64).to_be_bytes());
        out.clear();
        assert!(put_body(&Packed::Time((1, 1)), Field::Time, &mut out).is_err(), "nanoseconds are refused, never cut");
        out.clear();
        put_body(&Packed::Time((86_399, 1_000_000_000)), Field::Time, &mut out).unwrap();
        assert_eq!(out, 86_400_000_000i64.to_be_bytes(), "24:00:00");
    }

    #[test]
    fn a_value_of_another_kind_is_named() {
        let e = put_field(&Packed::Text(b"x"), Field::Int4, &mut Vec::new()).unwrap_err();
        assert!(e.contains("text") && e.contains("Int4"), "{e}");
    }
}
