//! PostgreSQL COPY **text** format: the stream parser, and the text form
//! of every value both ways.
//!
//! The decoders assume the reading session was set up with
//! `DateStyle=ISO, YMD`, `TimeZone=UTC`, `IntervalStyle=iso_8601`,
//! `bytea_output=hex`, `extra_float_digits=3` and `client_encoding=UTF8`;
//! under other settings they fail loudly (an interval in `postgres` style
//! is an error, not a guess). The encoders write what PostgreSQL reads
//! back under any `DateStyle` (ISO dates are unambiguous) but
//! `timestamp`/`time` literals without an offset are read in the writing
//! session's zone, so the writer should also set `TimeZone=UTC`.

use std::fmt::Write as _;

use chrono::NaiveTime;

use super::common::{self, bad, mismatch, Era};
use super::json;
use crate::model::{ColumnType, Value};

/// One COPY row: a field per column, `None` for SQL NULL (`\N`).
pub type CopyRow = Vec<Option<Vec<u8>>>;

/// Splits a COPY text stream into rows, whatever the chunking.
///
/// ```
/// # use barge::codec::pgtext::CopyTextParser;
/// let mut p = CopyTextParser::new();
/// p.feed(b"1\ta\\tb\n2\t\\");
/// assert_eq!(p.next_row().unwrap(), Some(vec![Some(b"1".to_vec()), Some(b"a\tb".to_vec())]));
/// assert_eq!(p.next_row().unwrap(), None); // the second row is not complete yet
/// p.feed(b"N\n");
/// assert_eq!(p.next_row().unwrap(), Some(vec![Some(b"2".to_vec()), None]));
/// p.finish().unwrap();
/// ```
///
/// Each byte is scanned twice at most: once for the end of the row (only
/// new bytes, so a row spread over many chunks costs no rescans) and once
/// to split and unescape it. Both scans look at eight bytes at a time.
#[derive(Debug, Default)]
pub struct CopyTextParser {
    buf: Vec<u8>,
    /// Start of the first row not yet returned.
    start: usize,
    /// `buf[start..scanned]` is known to hold no newline.
    scanned: usize,
    rows: u64,
    width: usize,
    ended: bool,
}

impl CopyTextParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk of the stream. Data after the end marker (`\.`) is
    /// ignored.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.ended {
            return;
        }
        if self.start > 0 {
            // Only the unreturned tail moves: usually part of one row.
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete row, or `None` until more data is fed. A row
    /// that cannot be parsed is skipped after its error is returned.
    pub fn next_row(&mut self) -> Result<Option<CopyRow>, String> {
        if self.ended {
            return Ok(None);
        }
        let Some(k) = find1(&self.buf[self.scanned..], b'\n') else {
            self.scanned = self.buf.len();
            return Ok(None);
        };
        let line_start = self.start;
        let end = self.scanned + k;
        self.start = end + 1;
        self.scanned = self.start;
        let line = &self.buf[line_start..end];
        if line == b"\\." {
            self.ended = true;
            return Ok(None);
        }
        self.rows += 1;
        let mut row = Vec::with_capacity(self.width);
        parse_line(line, &mut row).map_err(|e| format!("COPY data row {}: {e}", self.rows))?;
        self.width = row.len();
        Ok(Some(row))
    }

    /// Moves every complete row into `out`.
    pub fn drain_rows(&mut self, out: &mut Vec<CopyRow>) -> Result<(), String> {
        while let Some(row) = self.next_row()? {
            out.push(row);
        }
        Ok(())
    }

    /// Call at the end of the stream: an unfinished row is an error.
    pub fn finish(&self) -> Result<(), String> {
        if !self.ended && self.start < self.buf.len() {
            return Err(format!(
                "COPY data ends inside row {} ({} bytes after the last newline)",
                self.rows + 1,
                self.buf.len() - self.start
            ));
        }
        Ok(())
    }

    /// Rows returned so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes held for rows not yet complete or returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that equals the byte broadcast in `pat`.
/// The lowest set bit is exact (false positives only sit above a match).
#[inline(always)]
fn eq_mask(w: u64, pat: u64) -> u64 {
    let x = w ^ pat;
    x.wrapping_sub(LO) & !x & HI
}

#[inline]
fn load(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Position of the first `a` in `hay`.
fn find1(hay: &[u8], a: u8) -> Option<usize> {
    let pa = LO * u64::from(a);
    let mut i = 0;
    while i + 8 <= hay.len() {
        let m = eq_mask(load(hay, i), pa);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&c| c == a).map(|p| i + p)
}

/// Position of the first `a` or `b` in `hay`.
fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    let mut i = 0;
    while i + 8 <= hay.len() {
        let w = load(hay, i);
        let m = eq_mask(w, pa) | eq_mask(w, pb);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&c| c == a || c == b).map(|p| i + p)
}

/// Splits one line (without its newline) into fields.
fn parse_line(line: &[u8], row: &mut CopyRow) -> Result<(), String> {
    let mut i = 0;
    loop {
        let rest = &line[i..];
        match find2(rest, b'\t', b'\\') {
            None => {
                row.push(Some(rest.to_vec()));
                return Ok(());
            }
            Some(k) if rest[k] == b'\t' => {
                row.push(Some(rest[..k].to_vec()));
                i += k + 1;
            }
            Some(k) => {
                // `\N` is NULL only as the whole field.
                if k == 0 && rest.get(1) == Some(&b'N') && matches!(rest.get(2), None | Some(b'\t')) {
                    row.push(None);
                    if rest.len() == 2 {
                        return Ok(());
                    }
                    i += 3;
                    continue;
                }
                let (field, end) = unescape_field(rest, k, row.len() + 1)?;
                row.push(Some(field));
                match end {
                    None => return Ok(()),
                    Some(tab) => i += tab + 1,
                }
            }
        }
    }
}

fn hex_val(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Unescapes the field at the start of `rest`, whose first backslash is at
/// `j`. Returns the bytes and the position of the tab that ends the field
/// (`None` at the end of the line).
fn unescape_field(rest: &[u8], mut j: usize, column: usize) -> Result<(Vec<u8>, Option<usize>), String> {
    let mut out = Vec::with_capacity(rest.len().min(1024));
    out.extend_from_slice(&rest[..j]);
    loop {
        let Some(&c) = rest.get(j + 1) else {
            return Err(format!("field {column} ends in a lone backslash"));
        };
        j += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match rest.get(j) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            j += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => match rest.get(j).and_then(hex_val) {
                Some(h) => {
                    let mut v = h;
                    j += 1;
                    if let Some(h2) = rest.get(j).and_then(hex_val) {
                        v = v * 16 + h2;
                        j += 1;
                    }
                    out.push(v);
                }
                None => out.push(b'x'),
            },
            other => out.push(other),
        }
        let tail = &rest[j..];
        match find2(tail, b'\t', b'\\') {
            None => {
                out.extend_from_slice(tail);
                return Ok((out, None));
            }
            Some(k) => {
                out.extend_from_slice(&tail[..k]);
                j += k;
                if rest[j] == b'\t' {
                    return Ok((out, Some(j)));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- decode

/// A COPY field (as [`CopyTextParser`] returns it) → a value, moving text
/// and JSON bytes instead of copying them.
pub fn decode_field(field: Option<Vec<u8>>, ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    let Some(bytes) = field else { return Ok(Value::Null) };
    match ty {
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Other { .. } | T::Json | T::Jsonb | T::Enum { .. } => {
            let s = String::from_utf8(bytes).map_err(|e| bad(e.as_bytes(), ty, "not valid UTF-8"))?;
            Ok(match ty {
                T::Json | T::Jsonb => Value::Json(s),
                T::Enum { .. } => Value::Enum(s),
                _ => Value::Text(s),
            })
        }
        _ => decode(&bytes, ty),
    }
}

/// One field's text (already unescaped) → a value of column type `ty`.
pub fn decode(raw: &[u8], ty: &ColumnType) -> Result<Value, String> {
    decode_str(common::utf8(raw, ty)?, ty)
}

fn decode_str(s: &str, ty: &ColumnType) -> Result<Value, String> {
    use ColumnType as T;
    let raw = s.as_bytes();
    match ty {
        T::Bool => match s {
            "t" | "true" | "1" => Ok(Value::Bool(true)),
            "f" | "false" | "0" => Ok(Value::Bool(false)),
            // The other spellings PostgreSQL's boolean input takes (pandas
            // writes True and False), in any case.
            other => match other.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
                "f" | "false" | "n" | "no" | "off" | "0" => Ok(Value::Bool(false)),
                _ => Err(bad(raw, ty, "not a boolean (true, t, yes, on, 1 or false, f, no, off, 0)")),
            },
        },
        T::Int { .. } => common::parse_int(s, ty),
        // Scientific notation too (`1e-7`, as JSON writers and pandas
        // spell numbers), written out exactly as PostgreSQL reads it.
        T::Decimal { .. } => common::parse_decimal(s).map(Value::Decimal).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Float32 => common::parse_f32(s).map(Value::Float32).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Float64 => common::parse_f64(s).map(Value::Float64).ok_or_else(|| bad(raw, ty, "not a number")),
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } | T::Xml | T::Other { .. } => Ok(Value::Text(s.to_string())),
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => decode_bytea(s).ok_or_else(|| bad(raw, ty, "not bytea text")),
        T::Date => match s {
            "infinity" => Ok(Value::Infinity { negative: false }),
            "-infinity" => Ok(Value::Infinity { negative: true }),
            _ => match common::parse_datetime(s) {
                Some((d, None, None)) => Ok(Value::Date(d)),
                _ => Err(bad(raw, ty, "expected YYYY-MM-DD (DateStyle=ISO) within years 262143 BC to 262142 AD")),
            },
        },
        T::Time { tz, .. } => match (common::parse_time_tz(s), tz) {
            (Some((t, None)), false) => Ok(Value::Time(t)),
            (Some((t, Some(off))), true) => Ok(Value::TimeTz(t, off)),
            _ => Err(bad(raw, ty, "expected HH:MM:SS[.ffffff] with an offset for timetz")),
        },
        T::Timestamp { tz, .. } => match s {
            "infinity" => Ok(Value::Infinity { negative: false }),
            "-infinity" => Ok(Value::Infinity { negative: true }),
            _ => {
                let parsed = common::parse_datetime(s);
                let Some((d, t, off)) = parsed else {
                    return Err(bad(raw, ty, "expected YYYY-MM-DD HH:MM:SS[.ffffff] (DateStyle=ISO) within years 262143 BC to 262142 AD"));
                };
                let local = d.and_time(t.unwrap_or(NaiveTime::MIN));
                match (tz, off) {
                    (false, None) => Ok(Value::Timestamp(local)),
                    (true, Some(off)) => common::to_utc(local, off)
                        .map(Value::TimestampTz)
                        .ok_or_else(|| bad(raw, ty, "out of range")),
                    (true, None) => Err(bad(raw, ty, "no UTC offset (is the session TimeZone set?)")),
                    (false, Some(_)) => Err(bad(raw, ty, "an offset on a timestamp without time zone")),
                }
            }
        },
        T::Interval { .. } => common::parse_iso_interval(s)
            .map(Value::Interval)
            .ok_or_else(|| bad(raw, ty, "expected an ISO 8601 duration (set IntervalStyle=iso_8601)")),
        T::Json | T::Jsonb => Ok(Value::Json(s.to_string())),
        T::Uuid => common::parse_uuid(s).map(Value::Uuid).ok_or_else(|| bad(raw, ty, "not a uuid")),
        T::Enum { .. } => Ok(Value::Enum(s.to_string())),
        T::Set { .. } if s.starts_with('{') => {
            let text = ColumnType::Array { element: Box::new(ColumnType::text()) };
            match decode_array(s, &text)? {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Text(t) => Ok(t),
                        _ => Err(bad(raw, ty, "a SET member is NULL")),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Set),
                _ => unreachable!("decode_array returns an array"),
            }
        }
        T::Set { .. } => Ok(Value::Set(if s.is_empty() { Vec::new() } else { s.split(',').map(str::to_string).collect() })),
        T::Bit { .. } => common::parse_bit_text(s).map(Value::Bits).ok_or_else(|| bad(raw, ty, "not a bit string")),
        T::Year => s.parse().map(Value::Year).map_err(|_| bad(raw, ty, "not a year")),
        T::Array { .. } => decode_array(s, ty),
    }
}

/// `\x0102` (hex) or the legacy escape format (`a\\b\001`).
fn decode_bytea(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    if let Some(hex) = b.strip_prefix(b"\\x") {
        return common::unhex(hex).map(Value::Bytes);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = b.get(i + 1..i + 4)?;
            if !oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                return None;
            }
            let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).ok()?);
            i += 4;
        }
    }
    Some(Value::Bytes(out))
}

/// The scalar type inside any number of array levels.
fn scalar_of(ty: &ColumnType) -> &ColumnType {
    match ty {
        ColumnType::Array { element } => scalar_of(element),
        other => other,
    }
}

/// Array text (`{1,2,NULL}`, `{"a,b","c\"d"}`, `{{1,2},{3,4}}`, `{}`).
fn decode_array(s: &str, ty: &ColumnType) -> Result<Value, String> {
    let elem = match ty {
        ColumnType::Array { element } => element.as_ref(),
        other => other,
    };
    if s.starts_with('[') {
        return Err(bad(
            s.as_bytes(),
            ty,
            "explicit array bounds ([lo:hi]={...}) cannot be kept: barge arrays start at 1",
        ));
    }
    let mut p = ArrayParser { s: s.as_bytes(), i: 0, depth: 0 };
    let items = p.level(elem).map_err(|why| bad(s.as_bytes(), ty, &why))?;
    p.ws();
    if p.i != p.s.len() {
        return Err(bad(s.as_bytes(), ty, "text after the closing brace"));
    }
    Ok(Value::Array(items))
}

struct ArrayParser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl ArrayParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    /// `{...}` at `self.i`; scalar elements decode as `elem`.
    fn level(&mut self, elem: &ColumnType) -> Result<Vec<Value>, String> {
        self.ws();
        if self.s.get(self.i) != Some(&b'{') {
            return Err("expected {".into());
        }
        self.depth += 1;
        if self.depth > 6 {
            return Err("more than 6 dimensions".into());
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(items);
        }
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    let next = match elem {
                        ColumnType::Array { element } => element.as_ref(),
                        e => e,
                    };
                    items.push(Value::Array(self.level(next)?));
                }
                Some(b'"') => {
                    self.i += 1;
                    let mut text = Vec::new();
                    loop {
                        match self.s.get(self.i) {
                            None => return Err("unterminated quoted element".into()),
                            Some(b'"') => {
                                self.i += 1;
                                break;
                            }
                            Some(b'\\') => {
                                let c = *self.s.get(self.i + 1).ok_or("unterminated quoted element")?;
                                text.push(c);
                                self.i += 2;
                            }
                            Some(&c) => {
                                text.push(c);
                                self.i += 1;
                            }
                        }
                    }
                    let text = String::from_utf8(text).map_err(|_| "an element is not UTF-8".to_string())?;
                    items.push(decode_str(&text, scalar_of(elem))?);
                }
                Some(_) => {
                    let start = self.i;
                    while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b'}') {
                        if matches!(self.s[self.i], b'{' | b'"' | b'\\') {
                            return Err("unquoted element with { \" or \\".into());
                        }
                        self.i += 1;
                    }
                    let tok = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| "an element is not UTF-8".to_string())?;
                    let tok = tok.trim_matches(|c: char| c.is_ascii_whitespace());
                    if tok.eq_ignore_ascii_case("NULL") {
                        items.push(Value::Null);
                    } else {
                        items.push(decode_str(tok, scalar_of(elem))?);
                    }
                }
                None => return Err("missing }".into()),
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(items);
                }
                _ => return Err("expected , or }".into()),
            }
        }
    }
}

// ---------------------------------------------------------------- encode

fn is_textual(ty: &ColumnType) -> bool {
    ty.is_textual() || matches!(ty, ColumnType::Xml | ColumnType::Other { .. })
}

fn is_bytea(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::Blob { .. } | ColumnType::Binary { .. } | ColumnType::Varbinary { .. })
}

/// Appends `v` as one COPY text field for a column of type `ty`, escaped
/// (`\N` for NULL), converting where the target type differs from the
/// value's own (an integer to boolean, a date-time with zone to
/// `timestamp` as its UTC wall clock, a SET to `text[]`, ...). Conversions
/// that would lose anything are errors that name the value and the
/// column type.
pub fn encode(v: &Value, ty: &ColumnType, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => {
            out.extend_from_slice(b"\\N");
            Ok(())
        }
        Value::Text(s) if !is_bytea(ty) => escape(s.as_bytes(), out),
        Value::Int(i) if matches!(ty, ColumnType::Int { .. } | ColumnType::Decimal { .. }) => {
            common::check_int_target(*i as i128, ty)?;
            let _ = std::io::Write::write_fmt(out, format_args!("{i}"));
            Ok(())
        }
        Value::Bytes(b) if is_bytea(ty) => {
            // `\x` with its backslash doubled for COPY.
            out.extend_from_slice(b"\\\\x");
            common::push_hex(b, out);
            Ok(())
        }
        _ => {
            let mut s = String::new();
            literal(v, ty, &mut s)?;
            escape(s.as_bytes(), out)
        }
    }
}

/// COPY text escaping; PostgreSQL text cannot hold NUL at all.
fn escape(b: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.reserve(b.len());
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0 => {
                return Err(format!(
                    "{} contains a NUL (0x00) character, which PostgreSQL text cannot store",
                    common::show(b)
                ))
            }
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(rep);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    Ok(())
}

fn bc(flag: bool, s: &mut String) {
    if flag {
        s.push_str(" BC");
    }
}

fn bytea_literal(b: &[u8], s: &mut String) {
    let mut hex = Vec::with_capacity(2 + b.len() * 2);
    hex.extend_from_slice(b"\\x");
    common::push_hex(b, &mut hex);
    s.push_str(std::str::from_utf8(&hex).expect("hex is ASCII"));
}

/// The PostgreSQL text literal of `v` for a column of type `ty`, before
/// COPY escaping (array elements use it too).
fn literal(v: &Value, ty: &ColumnType, s: &mut String) -> Result<(), String> {
    use ColumnType as T;
    let text = is_textual(ty);
    match v {
        Value::Null => s.push_str("NULL"),
        Value::Bool(b) => match ty {
            T::Bool => s.push(if *b { 't' } else { 'f' }),
            T::Int { .. } | T::Decimal { .. } | T::Float32 | T::Float64 | T::Bit { .. } => {
                s.push(if *b { '1' } else { '0' })
            }
            T::Json | T::Jsonb => s.push_str(if *b { "true" } else { "false" }),
            _ if text => s.push_str(if *b { "true" } else { "false" }),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Int(_) | Value::UInt(_) => {
            let n = common::int_of(v).expect("an integer");
            match ty {
                T::Bool => match n {
                    0 => s.push('f'),
                    1 => s.push('t'),
                    _ => return Err(format!("{n} is not a boolean (only 0 and 1 convert)")),
                },
                T::Int { .. } => {
                    common::check_int_target(n, ty)?;
                    let _ = write!(s, "{n}");
                }
                T::Decimal { .. } | T::Float32 | T::Float64 | T::Json | T::Jsonb | T::Year => {
                    let _ = write!(s, "{n}");
                }
                _ if text => {
                    let _ = write!(s, "{n}");
                }
                _ => return Err(mismatch(v, ty, "PostgreSQL")),
            }
        }
        Value::Float32(_) | Value::Float64(_) => {
            let (x, single) = match v {
                Value::Float32(x) => (f64::from(*x), true),
                Value::Float64(x) => (*x, false),
                _ => unreachable!(),
            };
            match ty {
                T::Int { .. } => {
                    if !x.is_finite() || x.fract() != 0.0 || x.abs() > 1e19 {
                        return Err(format!("{x} is not a whole number for a {} column", ty.describe()));
                    }
                    common::check_int_target(x as i128, ty)?;
                    let _ = write!(s, "{}", x as i128);
                }
                T::Decimal { .. } => match common::nonfinite_name(x) {
                    // numeric takes NaN, and ±Infinity since PostgreSQL 14.
                    Some(name) => s.push_str(name),
                    None => s.push_str(&common::float_as_decimal(x, single)),
                },
                T::Json | T::Jsonb => json::write_json(v, s)?,
                T::Float32 | T::Float64 => float_text(v, s),
                _ if text => float_text(v, s),
                _ => return Err(mismatch(v, ty, "PostgreSQL")),
            }
        }
        Value::Decimal(d) => match ty {
            T::Int { .. } => {
                let n = common::decimal_integral(d)
                    .ok_or_else(|| format!("{d} is not a whole number for a {} column", ty.describe()))?;
                common::check_int_target(n, ty)?;
                let _ = write!(s, "{n}");
            }
            T::Decimal { .. } | T::Float32 | T::Float64 => s.push_str(d),
            T::Json | T::Jsonb => json::write_json(v, s)?,
            _ if text => s.push_str(d),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Text(t) => {
            if is_bytea(ty) {
                bytea_literal(t.as_bytes(), s);
            } else {
                s.push_str(t);
            }
        }
        Value::Bytes(b) => match ty {
            _ if is_bytea(ty) => bytea_literal(b, s),
            T::Uuid if b.len() == 16 => s.push_str(&common::uuid_text(b.as_slice().try_into().expect("16 bytes"))),
            T::Json | T::Jsonb | T::Uuid => s.push_str(bytes_as_text(b, ty)?),
            _ if text => s.push_str(bytes_as_text(b, ty)?),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Date(d) => match ty {
            T::Date | T::Timestamp { .. } => {
                let b = common::write_date(*d, Era::Bc, s);
                bc(b, s);
            }
            _ if text => {
                let b = common::write_date(*d, Era::Bc, s);
                bc(b, s);
            }
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Time(t) => match ty {
            T::Time { .. } | T::Interval { .. } => common::write_time(*t, s),
            _ if text => common::write_time(*t, s),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::TimeTz(t, off) => match ty {
            // timetz → time drops the offset, as PostgreSQL's own cast does.
            T::Time { tz: false, .. } => common::write_time(*t, s),
            T::Time { tz: true, .. } => {
                common::write_time(*t, s);
                common::write_offset(*off, false, s);
            }
            _ if text => {
                common::write_time(*t, s);
                common::write_offset(*off, false, s);
            }
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Timestamp(dt) => match ty {
            T::Timestamp { tz: false, .. } => {
                let b = common::write_datetime(*dt, Era::Bc, ' ', s);
                bc(b, s);
            }
            // A wall clock without zone is taken as UTC.
            T::Timestamp { tz: true, .. } => {
                let b = common::write_datetime(*dt, Era::Bc, ' ', s);
                s.push_str("+00");
                bc(b, s);
            }
            T::Date => {
                if dt.time() != NaiveTime::MIN {
                    return Err(format!("{dt} has a time of day; a date column would drop it"));
                }
                let b = common::write_date(dt.date(), Era::Bc, s);
                bc(b, s);
            }
            _ if text => {
                let b = common::write_datetime(*dt, Era::Bc, ' ', s);
                bc(b, s);
            }
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::TimestampTz(ts) => {
            let dt = ts.naive_utc();
            match ty {
                T::Timestamp { tz: false, .. } => {
                    let b = common::write_datetime(dt, Era::Bc, ' ', s);
                    bc(b, s);
                }
                T::Date => {
                    if dt.time() != NaiveTime::MIN {
                        return Err(format!("{dt} UTC has a time of day; a date column would drop it"));
                    }
                    let b = common::write_date(dt.date(), Era::Bc, s);
                    bc(b, s);
                }
                T::Timestamp { tz: true, .. } => {
                    let b = common::write_datetime(dt, Era::Bc, ' ', s);
                    s.push_str("+00");
                    bc(b, s);
                }
                _ if text => {
                    let b = common::write_datetime(dt, Era::Bc, ' ', s);
                    s.push_str("+00");
                    bc(b, s);
                }
                _ => return Err(mismatch(v, ty, "PostgreSQL")),
            }
        }
        Value::Infinity { negative } => match ty {
            T::Date | T::Timestamp { .. } => s.push_str(if *negative { "-infinity" } else { "infinity" }),
            _ if text => s.push_str(if *negative { "-infinity" } else { "infinity" }),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Interval(iv) => match ty {
            T::Interval { .. } => s.push_str(&iv.to_iso8601()),
            T::Time { tz: false, .. } => match common::interval_as_time(iv) {
                Some(t) => common::write_time(t, s),
                None => {
                    return Err(format!("interval {} does not fit a time of day (00:00:00 to 23:59:59.999999)", iv.to_iso8601()))
                }
            },
            _ if text => s.push_str(&iv.to_iso8601()),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Json(j) => match ty {
            T::Json | T::Jsonb => s.push_str(j),
            _ if text => s.push_str(j),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Uuid(u) => match ty {
            T::Uuid => s.push_str(&common::uuid_text(u)),
            _ if is_bytea(ty) => bytea_literal(u, s),
            _ if text => s.push_str(&common::uuid_text(u)),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Enum(e) => match ty {
            T::Enum { values, .. } => {
                if !values.is_empty() && !values.contains(e) {
                    return Err(format!("{} is not a label of the target enum ({})", common::show(e.as_bytes()), values.join(", ")));
                }
                s.push_str(e);
            }
            _ if text => s.push_str(e),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Set(members) => match ty {
            T::Array { .. } | T::Set { .. } => {
                s.push('{');
                for (k, m) in members.iter().enumerate() {
                    if k > 0 {
                        s.push(',');
                    }
                    quote_element(m, s);
                }
                s.push('}');
            }
            T::Json | T::Jsonb => json::write_json(v, s)?,
            _ if text => s.push_str(&members.join(",")),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Bits(bits) => match ty {
            T::Bit { .. } => s.push_str(&common::bit_text(&common::fit_bits(bits, ty)?)),
            T::Bool => match common::bits_value(bits) {
                Some(0) => s.push('f'),
                Some(1) => s.push('t'),
                _ => return Err(format!("bits {} are not a boolean (only 0 and 1 convert)", common::bit_text(bits))),
            },
            T::Int { .. } | T::Decimal { .. } => {
                let n = common::bits_value(bits)
                    .ok_or_else(|| format!("bits {} have more than 64 significant bits", common::bit_text(bits)))?;
                common::check_int_target(n as i128, ty)?;
                let _ = write!(s, "{n}");
            }
            _ if text => s.push_str(&common::bit_text(bits)),
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Year(y) => match ty {
            T::Int { .. } | T::Decimal { .. } | T::Year => {
                common::check_int_target(i128::from(*y), ty)?;
                let _ = write!(s, "{y}");
            }
            _ if text => {
                let _ = write!(s, "{y}");
            }
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::Array(items) => match ty {
            T::Array { element } => array_literal(items, element, s)?,
            T::Json | T::Jsonb => json::write_json(v, s)?,
            _ if text => array_literal(items, ty, s)?,
            _ => return Err(mismatch(v, ty, "PostgreSQL")),
        },
        Value::ZeroDate => {
            return Err("a MySQL zero date (0000-00-00) has no PostgreSQL form: write NULL or reject the row".into())
        }
    }
    Ok(())
}

fn float_text(v: &Value, s: &mut String) {
    match v {
        Value::Float32(x) => match common::nonfinite_name(f64::from(*x)) {
            Some(name) => s.push_str(name),
            None => common::write_f32(*x, s),
        },
        Value::Float64(x) => match common::nonfinite_name(*x) {
            Some(name) => s.push_str(name),
            None => common::write_f64(*x, s),
        },
        _ => unreachable!("only floats"),
    }
}

fn bytes_as_text<'a>(b: &'a [u8], ty: &ColumnType) -> Result<&'a str, String> {
    std::str::from_utf8(b).map_err(|_| format!("bytes {} are not UTF-8 text for a {} column", common::show(b), ty.describe()))
}

/// `{a,"b c",NULL,{1,2}}`; scalar elements are written as `elem`.
fn array_literal(items: &[Value], elem: &ColumnType, s: &mut String) -> Result<(), String> {
    s.push('{');
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        match item {
            Value::Null => s.push_str("NULL"),
            Value::Array(inner) => {
                let next = match elem {
                    ColumnType::Array { element } => element.as_ref(),
                    e => e,
                };
                array_literal(inner, next, s)?;
            }
            other => {
                let mut t = String::new();
                literal(other, scalar_of(elem), &mut t)?;
                quote_element(&t, s);
            }
        }
    }
    s.push('}');
    Ok(())
}

/// Quotes an array element when `array_in` would misread it bare.
fn quote_element(t: &str, s: &mut String) {
    let needs = t.is_empty()
        || t.eq_ignore_ascii_case("NULL")
        || t.bytes().any(|c| matches!(c, b'{' | b'}' | b',' | b'"' | b'\\') || c.is_ascii_whitespace() || c == 0x0b);
    if !needs {
        s.push_str(t);
        return;
    }
    s.push('"');
    for c in t.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
}

#[cfg(test)]
#[path = "pgtext_tests.rs"]
mod tests;
