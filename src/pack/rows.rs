//! The byte layout of a packed table: rows of [`Value`]s in blocks, so a
//! reader can load them batch by batch without holding the table in
//! memory. Every value carries a one-byte tag, so the stream decodes
//! without the schema, and nothing is rounded or turned into text:
//! decimals keep their digits, floats their bits (NaN payloads and -0
//! included), timestamps their nanoseconds. The layout is described in
//! `docs/FORMAT.md` section 8 ("barge-rows/1").

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::model::value::Interval;
use crate::model::Value;

/// The `encoding` named in a table's catalog entry.
pub const ENCODING: &str = "barge-rows/1";
pub const MAGIC: [u8; 8] = *b"BARGEROW";
pub const VERSION: u16 = 1;
/// Arrays nest at most this deep (PostgreSQL allows 6 dimensions).
const MAX_DEPTH: usize = 16;

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT: u8 = 3;
    pub const UINT: u8 = 4;
    pub const FLOAT32: u8 = 5;
    pub const FLOAT64: u8 = 6;
    pub const DECIMAL: u8 = 7;
    pub const TEXT: u8 = 8;
    pub const BYTES: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const TIMETZ: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMPTZ: u8 = 14;
    pub const INFINITY: u8 = 15;
    pub const NEG_INFINITY: u8 = 16;
    pub const INTERVAL: u8 = 17;
    pub const JSON: u8 = 18;
    pub const UUID: u8 = 19;
    pub const ENUM: u8 = 20;
    pub const SET: u8 = 21;
    pub const BITS: u8 = 22;
    pub const YEAR: u8 = 23;
    pub const ARRAY: u8 = 24;
    pub const ZERO_DATE: u8 = 25;
}

// ---- writing ---------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends one value.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    let clock = |t: &NaiveTime| (t.num_seconds_from_midnight(), t.nanosecond());
    let day = |d: &NaiveDate| d.num_days_from_ce();
    let bits;
    let packed = match v {
        Value::Null => Packed::Null,
        Value::Bool(b) => Packed::Bool(*b),
        Value::Int(i) => Packed::Int(*i),
        Value::UInt(u) => Packed::UInt(*u),
        Value::Float32(f) => Packed::Float32(f.to_bits()),
        Value::Float64(f) => Packed::Float64(f.to_bits()),
        Value::Decimal(s) => Packed::Decimal(s.as_bytes()),
        Value::Text(s) => Packed::Text(s.as_bytes()),
        Value::Bytes(b) => Packed::Bytes(b),
        Value::Date(d) => Packed::Date(day(d)),
        Value::Time(t) => Packed::Time(clock(t)),
        Value::TimeTz(t, off) => Packed::TimeTz(clock(t), *off),
        Value::Timestamp(ts) => Packed::Timestamp(day(&ts.date()), clock(&ts.time())),
        Value::TimestampTz(ts) => {
            let n = ts.naive_utc();
            Packed::TimestampTz(day(&n.date()), clock(&n.time()))
        }
        Value::Infinity { negative } => Packed::Infinity { negative: *negative },
        Value::Interval(iv) => Packed::Interval(*iv),
        Value::Json(s) => Packed::Json(s.as_bytes()),
        Value::Uuid(u) => Packed::Uuid(u),
        Value::Enum(s) => Packed::Enum(s.as_bytes()),
        Value::Set(members) => {
            put_packed(&Packed::Set(members.len() as u64), out);
            for m in members {
                put_bytes(out, m.as_bytes());
            }
            return;
        }
        Value::Bits(b) => {
            bits = b
                .chunks(8)
                .map(|byte| byte.iter().enumerate().fold(0u8, |acc, (i, &bit)| if bit { acc | (0x80 >> i) } else { acc }))
                .collect::<Vec<u8>>();
            Packed::Bits(b.len(), &bits)
        }
        Value::Year(y) => Packed::Year(*y),
        Value::Array(items) => {
            put_packed(&Packed::Array(items.len() as u64), out);
            for i in items {
                encode_value(i, out);
            }
            return;
        }
        Value::ZeroDate => Packed::ZeroDate,
    };
    put_packed(&packed, out);
}

/// Appends one value given as stored: its tag and body. A set's or an
/// array's members are the caller's to append after it.
pub fn put_packed(v: &Packed<'_>, out: &mut Vec<u8>) {
    let put_clock = |out: &mut Vec<u8>, (secs, nanos): (u32, u32)| {
        put_varint(out, secs as u64);
        // Up to 1_999_999_999: chrono keeps a leap second in the nanoseconds.
        put_varint(out, nanos as u64);
    };
    match *v {
        Packed::Null => out.push(tag::NULL),
        Packed::Bool(false) => out.push(tag::FALSE),
        Packed::Bool(true) => out.push(tag::TRUE),
        Packed::Int(i) => {
            out.push(tag::INT);
            put_zigzag(out, i);
        }
        Packed::UInt(u) => {
            out.push(tag::UINT);
            put_varint(out, u);
        }
        Packed::Float32(bits) => {
            out.push(tag::FLOAT32);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Packed::Float64(bits) => {
            out.push(tag::FLOAT64);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Packed::Decimal(b) => {
            out.push(tag::DECIMAL);
            put_bytes(out, b);
        }
        Packed::Text(b) => {
            out.push(tag::TEXT);
            put_bytes(out, b);
        }
        Packed::Bytes(b) => {
            out.push(tag::BYTES);
            put_bytes(out, b);
        }
        Packed::Date(d) => {
            out.push(tag::DATE);
            put_zigzag(out, d as i64);
        }
        Packed::Time(t) => {
            out.push(tag::TIME);
            put_clock(out, t);
        }
        Packed::TimeTz(t, off) => {
            out.push(tag::TIMETZ);
            put_clock(out, t);
            put_zigzag(out, off as i64);
        }
        Packed::Timestamp(d, t) => {
            out.push(tag::TIMESTAMP);
            put_zigzag(out, d as i64);
            put_clock(out, t);
        }
        Packed::TimestampTz(d, t) => {
            out.push(tag::TIMESTAMPTZ);
            put_zigzag(out, d as i64);
            put_clock(out, t);
        }
        Packed::Infinity { negative: false } => out.push(tag::INFINITY),
        Packed::Infinity { negative: true } => out.push(tag::NEG_INFINITY),
        Packed::Interval(iv) => {
            out.push(tag::INTERVAL);
            put_zigzag(out, iv.months as i64);
            put_zigzag(out, iv.days as i64);
            put_zigzag(out, iv.micros);
        }
        Packed::Json(b) => {
            out.push(tag::JSON);
            put_bytes(out, b);
        }
        Packed::Uuid(u) => {
            out.push(tag::UUID);
            out.extend_from_slice(u);
        }
        Packed::Enum(b) => {
            out.push(tag::ENUM);
            put_bytes(out, b);
        }
        Packed::Set(n) => {
            out.push(tag::SET);
            put_varint(out, n);
        }
        Packed::Bits(n, bytes) => {
            out.push(tag::BITS);
            put_varint(out, n as u64);
            out.extend_from_slice(&bytes[..n.div_ceil(8)]);
        }
        Packed::Year(y) => {
            out.push(tag::YEAR);
            put_zigzag(out, y as i64);
        }
        Packed::Array(n) => {
            out.push(tag::ARRAY);
            put_varint(out, n);
        }
        Packed::ZeroDate => out.push(tag::ZERO_DATE),
    }
}

/// The stream header: magic, version, column count.
pub fn header(columns: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&columns.to_le_bytes());
    h
}

/// Appends one block holding `rows` (at least one row).
pub fn encode_block(rows: &[Vec<Value>], out: &mut Vec<u8>) {
    debug_assert!(!rows.is_empty());
    let start = out.len();
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    let body = out.len();
    for row in rows {
        for v in row {
            encode_value(v, out);
        }
    }
    let len = (out.len() - body) as u64;
    out[start + 4..start + 12].copy_from_slice(&len.to_le_bytes());
}

/// Appends a block whose values are already encoded (`body`: `rows` rows).
pub fn put_raw_block(rows: u32, body: &[u8], out: &mut Vec<u8>) {
    debug_assert!(rows > 0);
    out.extend_from_slice(&rows.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
}

/// The end of a stream: a zero row count and the total.
pub fn trailer(total_rows: u64) -> Vec<u8> {
    let mut t = vec![0u8; 4];
    t.extend_from_slice(&total_rows.to_le_bytes());
    t
}

// ---- reading -----------------------------------------------------------------

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("a value runs past the end of its block")?;
        self.at += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len()).ok_or("a value runs past the end of its block")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint is longer than 10 bytes".into())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let u = self.varint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn small<T: TryFrom<i64>>(&mut self, what: &str) -> Result<T, String> {
        let v = self.zigzag()?;
        T::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a length does not fit in memory")?;
        self.take(n)
    }




    /// The next value, borrowed from the block: what a transcoder (binary
    /// COPY) reads without building a [`Value`]. Sets and arrays give their
    /// member count; their members follow as values of their own.
    pub fn packed(&mut self) -> Result<Packed<'a>, String> {
        let t = self.byte()?;
        Ok(match t {
            tag::NULL => Packed::Null,
            tag::FALSE => Packed::Bool(false),
            tag::TRUE => Packed::Bool(true),
            tag::INT => Packed::Int(self.zigzag()?),
            tag::UINT => Packed::UInt(self.varint()?),
            tag::FLOAT32 => Packed::Float32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            tag::FLOAT64 => Packed::Float64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            tag::DECIMAL => Packed::Decimal(self.bytes()?),
            tag::TEXT => Packed::Text(self.bytes()?),
            tag::BYTES => Packed::Bytes(self.bytes()?),
            tag::DATE => Packed::Date(self.small("a day number")?),
            tag::TIME => Packed::Time(self.clock()?),
            tag::TIMETZ => {
                let t = self.clock()?;
                Packed::TimeTz(t, self.small("a zone offset")?)
            }
            tag::TIMESTAMP => Packed::Timestamp(self.small("a day number")?, self.clock()?),
            tag::TIMESTAMPTZ => Packed::TimestampTz(self.small("a day number")?, self.clock()?),
            tag::INFINITY => Packed::Infinity { negative: false },
            tag::NEG_INFINITY => Packed::Infinity { negative: true },
            tag::INTERVAL => Packed::Interval(Interval { months: self.small("months")?, days: self.small("days")?, micros: self.zigzag()? }),
            tag::JSON => Packed::Json(self.bytes()?),
            tag::UUID => Packed::Uuid(self.take(16)?.try_into().expect("16 bytes")),
            tag::ENUM => Packed::Enum(self.bytes()?),
            tag::SET => Packed::Set(self.varint()?),
            tag::BITS => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a bit count does not fit in memory")?;
                Packed::Bits(n, self.take(n.div_ceil(8))?)
            }
            tag::YEAR => Packed::Year(self.small("a year")?),
            tag::ARRAY => Packed::Array(self.varint()?),
            tag::ZERO_DATE => Packed::ZeroDate,
            other => return Err(format!("unknown value tag {other}")),
        })
    }

    /// Seconds since midnight and nanoseconds, as stored.
    fn clock(&mut self) -> Result<(u32, u32), String> {
        let secs = u32::try_from(self.varint()?).map_err(|_| "seconds of the day out of range")?;
        let nanos = u32::try_from(self.varint()?).map_err(|_| "nanoseconds out of range")?;
        Ok((secs, nanos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "text is not UTF-8".to_string());
        Ok(match self.packed()? {
            Packed::Null => Value::Null,
            Packed::Bool(b) => Value::Bool(b),
            Packed::Int(i) => Value::Int(i),
            Packed::UInt(u) => Value::UInt(u),
            Packed::Float32(bits) => Value::Float32(f32::from_bits(bits)),
            Packed::Float64(bits) => Value::Float64(f64::from_bits(bits)),
            Packed::Decimal(b) => Value::Decimal(text(b)?),
            Packed::Text(b) => Value::Text(text(b)?),
            Packed::Bytes(b) => Value::Bytes(b.to_vec()),
            Packed::Date(d) => Value::Date(date_of(d)?),
            Packed::Time(t) => Value::Time(time_of(t)?),
            Packed::TimeTz(t, off) => Value::TimeTz(time_of(t)?, off),
            Packed::Timestamp(d, t) => Value::Timestamp(NaiveDateTime::new(date_of(d)?, time_of(t)?)),
            Packed::TimestampTz(d, t) => Value::TimestampTz(DateTime::from_naive_utc_and_offset(NaiveDateTime::new(date_of(d)?, time_of(t)?), chrono::Utc)),
            Packed::Infinity { negative } => Value::Infinity { negative },
            Packed::Interval(iv) => Value::Interval(iv),
            Packed::Json(b) => Value::Json(text(b)?),
            Packed::Uuid(u) => Value::Uuid(*u),
            Packed::Enum(b) => Value::Enum(text(b)?),
            Packed::Set(n) => {
                // Each member takes at least one byte: a count beyond the
                // block is damage, not a reason to allocate.
                let mut members = Vec::with_capacity(n.min((self.b.len() - self.at) as u64) as usize);
                for _ in 0..n {
                    members.push(text(self.bytes()?)?);
                }
                Value::Set(members)
            }
            Packed::Bits(n, bytes) => Value::Bits((0..n).map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0).collect()),
            Packed::Year(y) => Value::Year(y),
            Packed::Array(n) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("arrays nest deeper than {MAX_DEPTH} levels"));
                }
                let mut items = Vec::with_capacity(n.min((self.b.len() - self.at) as u64) as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            Packed::ZeroDate => Value::ZeroDate,
        })
    }
}

/// A day number as stored (0001-01-01 is day 1).
fn date_of(days: i32) -> Result<NaiveDate, String> {
    NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| format!("day {days} is not a date"))
}

fn time_of((secs, nanos): (u32, u32)) -> Result<NaiveTime, String> {
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).ok_or_else(|| format!("{secs}s {nanos}ns is not a time of day"))
}

/// One value as it lies in a block, borrowed: the tag's meaning with the
/// body still in the stored form (day numbers, seconds and nanoseconds,
/// raw IEEE bits, unchecked UTF-8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Packed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float32(u32),
    Float64(u64),
    Decimal(&'a [u8]),
    Text(&'a [u8]),
    Bytes(&'a [u8]),
    /// Day number, 0001-01-01 being day 1.
    Date(i32),
    /// Seconds since midnight, nanoseconds.
    Time((u32, u32)),
    /// Time, UTC offset in seconds (east positive).
    TimeTz((u32, u32), i32),
    Timestamp(i32, (u32, u32)),
    /// The UTC instant.
    TimestampTz(i32, (u32, u32)),
    Infinity { negative: bool },
    Interval(Interval),
    Json(&'a [u8]),
    Uuid(&'a [u8; 16]),
    Enum(&'a [u8]),
    /// Member count; the members follow, each a length-prefixed text.
    Set(u64),
    /// Bit count, bits most significant first.
    Bits(usize, &'a [u8]),
    Year(i16),
    /// Element count; the elements follow as values.
    Array(u64),
    ZeroDate,
}

/// Reads the values of a block one after another.
pub struct BlockReader<'a>(Cursor<'a>);

impl<'a> BlockReader<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        BlockReader(Cursor { b: body, at: 0 })
    }

    pub fn next_value(&mut self) -> Result<Packed<'a>, String> {
        self.0.packed()
    }

    /// Skips the members of a set or array just read.
    pub fn skip_members(&mut self, v: &Packed<'a>) -> Result<(), String> {
        match *v {
            Packed::Set(n) => (0..n).try_for_each(|_| self.0.bytes().map(|_| ())),
            Packed::Array(n) => (0..n).try_for_each(|_| self.0.value(1).map(|_| ())),
            _ => Ok(()),
        }
    }

    /// True once every byte of the block was read.
    pub fn at_end(&self) -> bool {
        self.0.at == self.0.b.len()
    }
}

/// Decodes one value from the start of `b`; returns it and the bytes used.
pub fn decode_value(b: &[u8]) -> Result<(Value, usize), String> {
    let mut c = Cursor { b, at: 0 };
    let v = c.value(0)?;
    Ok((v, c.at))
}

/// One block of a row stream, undecoded.
#[derive(Debug)]
pub struct RawBlock {
    /// Rows in the block (at least one).
    pub rows: u32,
    /// Rows of the stream before this block.
    pub first_row: u64,
    /// The rows' values, each row the stream's column count of them.
    pub body: Vec<u8>,
}

enum Stage {
    Header,
    Blocks,
    Done,
}

/// Reads a table stream pushed to it in pieces of any size, handing back
/// whole blocks of rows as soon as they are complete.
pub struct RowDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    at: usize,
    stage: Stage,
    columns: usize,
    rows: u64,
}

impl Default for RowDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RowDecoder {
    pub fn new() -> Self {
        RowDecoder { buf: Vec::new(), at: 0, stage: Stage::Header, columns: 0, rows: 0 }
    }

    /// Column count from the header (0 until the header is read).
    pub fn columns(&self) -> usize {
        self.columns
    }

    pub fn push(&mut self, data: &[u8]) {
        // Drop what was consumed before growing, so the buffer stays about
        // one block long.
        if self.at > 0 && self.at >= self.buf.len() / 2 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    /// The next complete block's rows, `None` when more bytes are needed
    /// (or the stream has ended).
    pub fn next_block(&mut self) -> Result<Option<Vec<Vec<Value>>>, String> {
        let Some(block) = self.next_raw_block()? else { return Ok(None) };
        let mut c = Cursor { b: &block.body, at: 0 };
        let mut rows = Vec::with_capacity(block.rows as usize);
        for r in 0..block.rows as u64 {
            let mut row = Vec::with_capacity(self.columns);
            for col in 0..self.columns {
                let v = c.value(0).map_err(|e| format!("row {}, column {}: {e}", block.first_row + r + 1, col + 1))?;
                row.push(v);
            }
            rows.push(row);
        }
        if c.at != block.body.len() {
            return Err(format!("block after row {} has {} stray bytes", block.first_row, block.body.len() - c.at));
        }
        Ok(Some(rows))
    }

    /// The next complete block as stored, for a reader that transcodes it
    /// (see [`BlockReader`]); `None` when more bytes are needed.
    pub fn next_raw_block(&mut self) -> Result<Option<RawBlock>, String> {
        loop {
            match self.stage {
                Stage::Done => {
                    if !self.avail().is_empty() {
                        return Err(format!("{} bytes follow the end of the table", self.avail().len()));
                    }
                    return Ok(None);
                }
                Stage::Header => {
                    let a = self.avail();
                    if a.len() < 14 {
                        return Ok(None);
                    }
                    if a[..8] != MAGIC {
                        return Err("not a barge row stream (bad magic)".into());
                    }
                    let version = u16::from_le_bytes([a[8], a[9]]);
                    if version != VERSION {
                        return Err(format!("row stream version {version} is newer than this barge reads ({VERSION})"));
                    }
                    self.columns = u32::from_le_bytes(a[10..14].try_into().expect("4 bytes")) as usize;
                    self.at += 14;
                    self.stage = Stage::Blocks;
                }
                Stage::Blocks => {
                    let a = self.avail();
                    if a.len() < 4 {
                        return Ok(None);
                    }
                    let n = u32::from_le_bytes(a[..4].try_into().expect("4 bytes")) as u64;
                    if n == 0 {
                        if a.len() < 12 {
                            return Ok(None);
                        }
                        let total = u64::from_le_bytes(a[4..12].try_into().expect("8 bytes"));
                        if total != self.rows {
                            return Err(format!("the stream ends after {} rows but says it holds {total}", self.rows));
                        }
                        self.at += 12;
                        self.stage = Stage::Done;
                        continue;
                    }
                    if a.len() < 12 {
                        return Ok(None);
                    }
                    let len = u64::from_le_bytes(a[4..12].try_into().expect("8 bytes"));
                    let len = usize::try_from(len).map_err(|_| "a block is larger than memory")?;
                    if a.len() - 12 < len {
                        return Ok(None);
                    }
                    let block = RawBlock { rows: n as u32, first_row: self.rows, body: a[12..12 + len].to_vec() };
                    self.at += 12 + len;
                    self.rows += n;
                    return Ok(Some(block));
                }
            }
        }
    }

    /// Checks the stream ended properly; returns its row count.
    pub fn finish(&mut self) -> Result<u64, String> {
        if self.next_block()?.is_some() {
            return Err("rows were left unread".into());
        }
        match self.stage {
            Stage::Done => Ok(self.rows),
            _ => Err(format!("the stream stops after {} rows, before its end marker: it was cut short", self.rows)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<u32>().prop_map(|b| Value::Float32(f32::from_bits(b))),
            any::<u64>().prop_map(|b| Value::Float64(f64::from_bits(b))),
            "-?[0-9]{1,80}(\\.[0-9]{0,80})?".prop_map(Value::Decimal),
            prop_oneof![Just("NaN"), Just("Infinity"), Just("-Infinity")].prop_map(|s| Value::Decimal(s.into())),
            any::<String>().prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
            (-262_000i32..262_000 * 365).prop_filter_map("date", NaiveDate::from_num_days_from_ce_opt).prop_map(Value::Date),
            (0u32..86_400, 0u32..2_000_000_000).prop_filter_map("time", |(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n)).prop_map(Value::Time),
            ((0u32..86_400, 0u32..1_000_000_000), -86_399i32..86_400)
                .prop_filter_map("timetz", |((s, n), o)| NaiveTime::from_num_seconds_from_midnight_opt(s, n).map(|t| Value::TimeTz(t, o))),
            (any::<i64>(), 0u32..1_000_000_000)
                .prop_filter_map("ts", |(s, n)| DateTime::from_timestamp(s % 200_000_000_000, n).map(|d| Value::Timestamp(d.naive_utc()))),
            (any::<i64>(), 0u32..1_000_000_000).prop_filter_map("tstz", |(s, n)| DateTime::from_timestamp(s % 200_000_000_000, n).map(Value::TimestampTz)),
            any::<bool>().prop_map(|negative| Value::Infinity { negative }),
            (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, micros)| Value::Interval(Interval { months, days, micros })),
            any::<String>().prop_map(Value::Json),
            any::<[u8; 16]>().prop_map(Value::Uuid),
            any::<String>().prop_map(Value::Enum),
            prop::collection::vec(any::<String>(), 0..5).prop_map(Value::Set),
            prop::collection::vec(any::<bool>(), 0..70).prop_map(Value::Bits),
            any::<i16>().prop_map(Value::Year),
            Just(Value::ZeroDate),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 40, 6, |inner| prop::collection::vec(inner, 0..6).prop_map(Value::Array))
    }

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(v, &mut out);
        out
    }

    /// Equal as stored: floats by their bits, so NaN equals itself.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float32(x), Value::Float32(y)) => x.to_bits() == y.to_bits(),
            (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn every_value_round_trips_exactly(v in value()) {
            let bytes = enc(&v);
            let (back, used) = decode_value(&bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert!(same(&v, &back), "{:?} came back as {:?}", v, back);
        }

        #[test]
        fn a_stream_decodes_from_pieces_of_any_size(
            rows in prop::collection::vec(prop::collection::vec(value(), 3), 0..40),
            block in 1usize..9,
            piece in 1usize..64,
        ) {
            let mut s = header(3);
            for b in rows.chunks(block) {
                encode_block(b, &mut s);
            }
            s.extend_from_slice(&trailer(rows.len() as u64));
            let mut d = RowDecoder::new();
            let mut got = Vec::new();
            for p in s.chunks(piece) {
                d.push(p);
                while let Some(b) = d.next_block().unwrap() {
                    got.extend(b);
                }
            }
            prop_assert_eq!(d.finish().unwrap(), rows.len() as u64);
            prop_assert_eq!(got.len(), rows.len());
            for (a, b) in rows.iter().zip(&got) {
                prop_assert!(a.iter().zip(b).all(|(x, y)| same(x, y)));
            }
        }

        #[test]
        fn damage_is_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..200) {
            let mut d = RowDecoder::new();
            let mut s = header(2);
            s.extend_from_slice(&bytes);
            d.push(&s[..cut.min(s.len())]);
            let _ = d.next_block();
            let _ = d.finish();
        }
    }

    #[test]
    fn a_cut_stream_is_refused() {
        let mut s = header(1);
        encode_block(&[vec![Value::Int(1)], vec![Value::Int(2)]], &mut s);
        let mut d = RowDecoder::new();
        d.push(&s);
        assert_eq!(d.next_block().unwrap().unwrap().len(), 2);
        assert!(d.finish().unwrap_err().contains("cut short"));
        let mut d = RowDecoder::new();
        s.extend_from_slice(&trailer(3));
        d.push(&s);
        assert!(d.next_block().is_ok());
        assert!(d.finish().unwrap_err().contains("holds 3"));
    }

    #[test]
    fn layout_is_stable() {
        // Pinned bytes: changing them breaks packs already shipped.
        let mut s = header(2);
        encode_block(&[vec![Value::Int(-3), Value::Text("hé".into())]], &mut s);
        s.extend_from_slice(&trailer(1));
        assert_eq!(
            hex::encode(&s),
            concat!("4241524745524f57", "0100", "02000000", "01000000", "0700000000000000", "0305", "080368c3a9", "00000000", "0100000000000000")
        );
    }
}
