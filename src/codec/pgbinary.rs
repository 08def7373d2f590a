//! PostgreSQL's binary COPY format to and from packed values
//! ([`crate::pack::rows::Packed`]): a pack of a PostgreSQL table and an
//! unpack into one skip both the detour through [`crate::model::Value`]
//! and text formatting and parsing. Only the types below have a codec; a
//! table with any other column goes through COPY text as before
//! ([`Field::of`] says which). What is read is the value the text path
//! reads, tag for tag, so a pack is the same whichever way it was made.
//!
//! The layouts are PostgreSQL's `*_send`/`*_recv` functions: big-endian
//! integers, dates and timestamps counted from 2000-01-01, `numeric` in
//! base-10000 digits.

use std::io::Write as _;

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
    /// The text itself: text, varchar, char (PostgreSQL pads it).
    Text,
    /// `json`, whose binary form is its text.
    Json,
    /// An enum's label.
    Enum,
    /// `jsonb`: a version byte (1), then the text.
    Jsonb,
    Bytea,
    Date,
    Time,
    TimeTz,
    Timestamp,
    /// `timestamptz`: the UTC instant.
    TimestampTz,
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
            ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. } => Field::Text,
            ColumnType::Json => Field::Json,
            ColumnType::Enum { .. } => Field::Enum,
            ColumnType::Jsonb => Field::Jsonb,
            ColumnType::Blob { .. } | ColumnType::Varbinary { .. } => Field::Bytea,
            ColumnType::Date => Field::Date,
            ColumnType::Time { tz: false, .. } => Field::Time,
            ColumnType::Time { tz: true, .. } => Field::TimeTz,
            ColumnType::Timestamp { tz: false, .. } => Field::Timestamp,
            ColumnType::Timestamp { tz: true, .. } => Field::TimestampTz,
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
        (Field::Text | Field::Json | Field::Enum, Packed::Text(b) | Packed::Enum(b) | Packed::Json(b)) => out.extend_from_slice(b),
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
        (Field::Timestamp | Field::TimestampTz, Packed::Timestamp(d, t) | Packed::TimestampTz(d, t)) => {
            let micros = (*d as i64 - PG_EPOCH_DAY).checked_mul(MICROS_PER_DAY).and_then(|m| m.checked_add(micros_of_day(*t).ok()?));
            out.extend_from_slice(&micros.ok_or("the timestamp is outside PostgreSQL's range")?.to_be_bytes());
        }
        (Field::Timestamp | Field::TimestampTz, Packed::Infinity { negative }) => out.extend_from_slice(&(if *negative { i64::MIN } else { i64::MAX }).to_be_bytes()),
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

// ---- reading: COPY (FORMAT binary) out of PostgreSQL -------------------------

/// Splits a binary `COPY ... TO STDOUT` stream, fed in pieces of any size,
/// into rows of fields.
#[derive(Default)]
pub struct CopyBinaryParser {
    buf: Vec<u8>,
    at: usize,
    header_done: bool,
    ended: bool,
}

impl CopyBinaryParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.at > 0 && self.at >= self.buf.len() / 2 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next whole row's fields (byte ranges of [`Self::bytes`], `None`
    /// for NULL) into `fields`; false when more bytes are needed or the
    /// stream has ended.
    pub fn next_row(&mut self, fields: &mut Vec<Option<(usize, usize)>>) -> Result<bool, String> {
        if !self.header_done {
            let a = &self.buf[self.at..];
            if a.len() < 19 {
                return Ok(false);
            }
            if a[..11] != HEADER[..11] {
                return Err("not a binary COPY stream (bad signature)".into());
            }
            let ext = u32::from_be_bytes(a[15..19].try_into().expect("4 bytes")) as usize;
            if a.len() < 19 + ext {
                return Ok(false);
            }
            self.at += 19 + ext;
            self.header_done = true;
        }
        if self.ended {
            return Ok(false);
        }
        let a = &self.buf[self.at..];
        if a.len() < 2 {
            return Ok(false);
        }
        let count = i16::from_be_bytes([a[0], a[1]]);
        if count == -1 {
            self.ended = true;
            self.at += 2;
            return Ok(false);
        }
        let count = usize::try_from(count).map_err(|_| format!("a row says it has {count} fields"))?;
        fields.clear();
        let mut p = 2;
        for _ in 0..count {
            if a.len() < p + 4 {
                return Ok(false);
            }
            let len = i32::from_be_bytes(a[p..p + 4].try_into().expect("4 bytes"));
            p += 4;
            if len < 0 {
                fields.push(None);
                continue;
            }
            let len = len as usize;
            if a.len() < p + len {
                return Ok(false);
            }
            fields.push(Some((self.at + p, self.at + p + len)));
            p += len;
        }
        self.at += p;
        Ok(true)
    }

    pub fn bytes(&self, (from, to): (usize, usize)) -> &[u8] {
        &self.buf[from..to]
    }

    /// Checks the stream ended with its trailer and nothing after it.
    pub fn finish(&self) -> Result<(), String> {
        match (self.ended, self.buf.len() - self.at) {
            (true, 0) => Ok(()),
            (true, n) => Err(format!("{n} bytes follow the end of the COPY stream")),
            (false, _) => Err("the COPY stream stops before its end marker".into()),
        }
    }
}

/// One binary field (not NULL) of a column of kind `f`, as the packed
/// value the text path would read from the same column. `scratch` holds
/// a numeric's text.
pub fn packed_from<'a>(b: &'a [u8], f: Field, scratch: &'a mut Vec<u8>) -> Result<Packed<'a>, String> {
    let fixed = |n: usize| -> Result<&'a [u8], String> {
        if b.len() == n {
            Ok(b)
        } else {
            Err(format!("a {f:?} field of {} bytes (expected {n})", b.len()))
        }
    };
    let utf8 = |b: &'a [u8]| std::str::from_utf8(b).map(|_| b).map_err(|_| "text is not valid UTF-8".to_string());
    Ok(match f {
        Field::Bool => Packed::Bool(fixed(1)?[0] != 0),
        Field::Int2 => Packed::Int(i16::from_be_bytes(fixed(2)?.try_into().expect("2")) as i64),
        Field::Int4 => Packed::Int(i32::from_be_bytes(fixed(4)?.try_into().expect("4")) as i64),
        Field::Int8 => Packed::Int(i64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        Field::Float4 => Packed::Float32(u32::from_be_bytes(fixed(4)?.try_into().expect("4"))),
        Field::Float8 => Packed::Float64(u64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        Field::Numeric => {
            numeric_text(b, scratch)?;
            Packed::Decimal(scratch)
        }
        Field::Text => Packed::Text(utf8(b)?),
        Field::Json => Packed::Json(utf8(b)?),
        Field::Enum => Packed::Enum(utf8(b)?),
        Field::Jsonb => match b.split_first() {
            Some((1, text)) => Packed::Json(utf8(text)?),
            _ => return Err("a jsonb field of an unknown version".into()),
        },
        Field::Bytea => Packed::Bytes(b),
        Field::Date => match i32::from_be_bytes(fixed(4)?.try_into().expect("4")) {
            i32::MAX => Packed::Infinity { negative: false },
            i32::MIN => Packed::Infinity { negative: true },
            d => Packed::Date(day_number(d as i64)?),
        },
        Field::Time => Packed::Time(clock(i64::from_be_bytes(fixed(8)?.try_into().expect("8")))?),
        Field::TimeTz => {
            let b = fixed(12)?;
            let t = clock(i64::from_be_bytes(b[..8].try_into().expect("8")))?;
            Packed::TimeTz(t, -i32::from_be_bytes(b[8..].try_into().expect("4")))
        }
        Field::Timestamp | Field::TimestampTz => match i64::from_be_bytes(fixed(8)?.try_into().expect("8")) {
            i64::MAX => Packed::Infinity { negative: false },
            i64::MIN => Packed::Infinity { negative: true },
            us => {
                let (days, of_day) = (us.div_euclid(MICROS_PER_DAY), us.rem_euclid(MICROS_PER_DAY));
                let (d, t) = (day_number(days)?, clock(of_day)?);
                if f == Field::Timestamp {
                    Packed::Timestamp(d, t)
                } else {
                    Packed::TimestampTz(d, t)
                }
            }
        },
        Field::Interval => {
            let b = fixed(16)?;
            Packed::Interval(crate::model::value::Interval {
                micros: i64::from_be_bytes(b[..8].try_into().expect("8")),
                days: i32::from_be_bytes(b[8..12].try_into().expect("4")),
                months: i32::from_be_bytes(b[12..].try_into().expect("4")),
            })
        }
        Field::Uuid => Packed::Uuid(fixed(16)?.try_into().expect("16")),
        Field::Bits => {
            let (n, bytes) = b.split_at_checked(4).ok_or("a bit string field shorter than its length")?;
            let n = usize::try_from(i32::from_be_bytes(n.try_into().expect("4"))).map_err(|_| "a negative bit count")?;
            if bytes.len() != n.div_ceil(8) {
                return Err(format!("a bit string of {n} bits in {} bytes", bytes.len()));
            }
            Packed::Bits(n, bytes)
        }
    })
}

/// Days since 2000-01-01 as a packed day number, within the dates barge
/// holds (the text path refuses the same ones).
fn day_number(days: i64) -> Result<i32, String> {
    i32::try_from(days + PG_EPOCH_DAY)
        .ok()
        .filter(|&d| chrono::NaiveDate::from_num_days_from_ce_opt(d).is_some())
        .ok_or_else(|| "a date outside the years 262143 BC to 262142 AD, which barge cannot hold".to_string())
}

/// Microseconds since midnight as seconds and nanoseconds; PostgreSQL's
/// `24:00:00` becomes 23:59:59 and a second of nanoseconds (see `codec`).
fn clock(us: i64) -> Result<(u32, u32), String> {
    match us {
        86_400_000_000 => Ok((86_399, 1_000_000_000)),
        0..86_400_000_000 => Ok(((us / 1_000_000) as u32, (us % 1_000_000) as u32 * 1000)),
        _ => Err(format!("{us} µs is not a time of day")),
    }
}

/// A binary `numeric` as its exact text: every digit of its display scale,
/// no exponent (what PostgreSQL prints, and the text path keeps).
pub fn numeric_text(b: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    if b.len() < 8 {
        return Err("a numeric field shorter than its header".into());
    }
    let word = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let (n, weight, sign, dscale) = (word(0) as usize, word(2) as i16 as i64, word(4), word(6) as i64);
    if b.len() != 8 + 2 * n {
        return Err(format!("a numeric field of {} bytes for {n} digits", b.len()));
    }
    match sign {
        NUMERIC_NAN => out.extend_from_slice(b"NaN"),
        NUMERIC_PINF => out.extend_from_slice(b"Infinity"),
        NUMERIC_NINF => out.extend_from_slice(b"-Infinity"),
        NUMERIC_POS | NUMERIC_NEG => {
            let digit = |w: i64| -> u16 {
                // Group `w` (weight) is digits[weight - w].
                let i = weight - w;
                if (0..n as i64).contains(&i) {
                    word(8 + 2 * i as usize)
                } else {
                    0
                }
            };
            if (0..n).any(|i| word(8 + 2 * i) > 9999) {
                return Err("a numeric digit above 9999".into());
            }
            if sign == NUMERIC_NEG && n > 0 {
                out.push(b'-');
            }
            if weight < 0 {
                out.push(b'0');
            } else {
                let _ = write!(out, "{}", digit(weight));
                for w in (0..weight).rev() {
                    let _ = write!(out, "{:04}", digit(w));
                }
            }
            if dscale > 0 {
                out.push(b'.');
                let mut left = dscale;
                let mut w = -1;
                while left > 0 {
                    let g = format!("{:04}", digit(w));
                    let take = left.min(4) as usize;
                    out.extend_from_slice(&g.as_bytes()[..take]);
                    left -= take as i64;
                    w -= 1;
                }
            }
        }
        other => return Err(format!("a numeric with sign word {other:#06x}")),
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
    fn numerics_read_back_as_their_text() {
        for t in ["0", "0.00", "1", "12345.678", "-12345.678", "0.0001", "0.00001", "100000000", "10000.5000", "-0.5", "9999.9999", "NaN", "Infinity", "-Infinity",
            "123456789012345678901234567890.098765432109876543210", "0.00000000000000000001"] {
            let mut bin = Vec::new();
            put_numeric(t.as_bytes(), &mut bin).unwrap();
            let mut back = Vec::new();
            numeric_text(&bin, &mut back).unwrap();
            assert_eq!(String::from_utf8(back).unwrap(), t);
        }
    }

    #[test]
    fn a_binary_copy_stream_splits_into_rows_from_pieces_of_any_size() {
        let mut stream = HEADER.to_vec();
        for row in [[Some(&b"ab"[..]), None], [Some(&b""[..]), Some(&b"xyz"[..])]] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            for f in row {
                match f {
                    Some(b) => {
                        stream.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        stream.extend_from_slice(b);
                    }
                    None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        stream.extend_from_slice(TRAILER);
        for piece in 1..stream.len() {
            let mut p = CopyBinaryParser::new();
            let mut rows = Vec::new();
            let mut fields = Vec::new();
            for part in stream.chunks(piece) {
                p.feed(part);
                while p.next_row(&mut fields).unwrap() {
                    rows.push(fields.iter().map(|f| f.map(|r| p.bytes(r).to_vec())).collect::<Vec<_>>());
                }
            }
            p.finish().unwrap();
            assert_eq!(rows, vec![vec![Some(b"ab".to_vec()), None], vec![Some(Vec::new()), Some(b"xyz".to_vec())]], "pieces of {piece}");
        }
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
