//! Text pieces the three codecs share: numbers, dates and times, ISO 8601
//! durations, bit strings and error messages. Every parser here is strict
//! (it returns `None` rather than guess) and every writer exact.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::model::value::normalize_decimal;
use crate::model::{ColumnType, Interval, Value};

// ---------------------------------------------------------------- errors

/// A value for an error message: quoted, escaped, cut at 64 characters.
pub(crate) fn show(raw: &[u8]) -> String {
    const MAX: usize = 64;
    let text = String::from_utf8_lossy(raw);
    let mut cut: String = text.chars().take(MAX).collect();
    if text.chars().nth(MAX).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// "cannot read "x" as date: why".
pub(crate) fn bad(raw: &[u8], ty: &ColumnType, why: &str) -> String {
    if why.is_empty() {
        format!("cannot read {} as {}", show(raw), ty.describe())
    } else {
        format!("cannot read {} as {}: {why}", show(raw), ty.describe())
    }
}

/// "cannot write a timestamp to a uuid column".
pub(crate) fn mismatch(v: &Value, ty: &ColumnType, target: &str) -> String {
    format!("cannot write a {} value to a {target} {} column", v.kind(), ty.describe())
}

pub(crate) fn utf8<'a>(raw: &'a [u8], ty: &ColumnType) -> Result<&'a str, String> {
    std::str::from_utf8(raw).map_err(|e| bad(raw, ty, &format!("not valid UTF-8 ({e})")))
}

// ---------------------------------------------------------------- integers

/// `Int` unless the value only fits `UInt`: the one canonical form.
pub(crate) fn canonical_int(n: i128) -> Value {
    if n > i64::MAX as i128 {
        Value::UInt(n as u64)
    } else {
        Value::Int(n as i64)
    }
}

pub(crate) fn int_in_range(n: i128, bits: u8, unsigned: bool) -> bool {
    let bits = u32::from(bits.clamp(8, 64));
    if unsigned {
        n >= 0 && n < (1i128 << bits)
    } else {
        n >= -(1i128 << (bits - 1)) && n < (1i128 << (bits - 1))
    }
}

/// Integer text (optional sign, digits) within the column's range.
pub(crate) fn parse_int(s: &str, ty: &ColumnType) -> Result<Value, String> {
    let (bits, unsigned) = match ty {
        ColumnType::Int { bits, unsigned } => (*bits, *unsigned),
        _ => (64, true),
    };
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(s.as_bytes(), ty, "not an integer"));
    }
    let n: i128 = s.parse().map_err(|_| bad(s.as_bytes(), ty, "not an integer"))?;
    if !int_in_range(n, bits, unsigned) && matches!(ty, ColumnType::Int { .. }) {
        return Err(bad(s.as_bytes(), ty, "out of range"));
    }
    if !int_in_range(n, 64, false) && !int_in_range(n, 64, true) {
        return Err(bad(s.as_bytes(), ty, "out of the 64-bit range"));
    }
    Ok(canonical_int(n))
}

/// The integer value of an `Int`/`UInt`.
pub(crate) fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        _ => None,
    }
}

/// Checks an integer against a target integer column; the message names both.
pub(crate) fn check_int_target(n: i128, ty: &ColumnType) -> Result<(), String> {
    if let ColumnType::Int { bits, unsigned } = ty {
        if !int_in_range(n, *bits, *unsigned) {
            return Err(format!("{n} is out of range for a {} column", ty.describe()));
        }
    }
    Ok(())
}

/// The integer a decimal text stands for, if it has no fractional part
/// (`12.000` → 12, `12.5` → None).
pub(crate) fn decimal_integral(d: &str) -> Option<i128> {
    let (int, frac) = d.split_once('.').unwrap_or((d, ""));
    if !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    int.parse().ok()
}

// ---------------------------------------------------------------- floats

/// Shortest text that reads back as the same `f64` (Rust's `{}`/`{:e}`
/// print the shortest round-trip digits); exponent form only at the
/// extremes so ordinary values stay readable. Finite values only.
pub(crate) fn write_f64(x: f64, s: &mut String) {
    let a = x.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        let _ = write!(s, "{x:e}");
    } else {
        let _ = write!(s, "{x}");
    }
}

pub(crate) fn write_f32(x: f32, s: &mut String) {
    let a = x.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        let _ = write!(s, "{x:e}");
    } else {
        let _ = write!(s, "{x}");
    }
}

/// PostgreSQL's spelling of the non-finite floats.
pub(crate) fn nonfinite_name(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x == f64::INFINITY {
        Some("Infinity")
    } else if x == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// A float's value as exact decimal text (no exponent), for decimal
/// targets. Finite values only.
pub(crate) fn float_as_decimal(x: f64, single: bool) -> String {
    let text = if single { format!("{}", x as f32) } else { format!("{x}") };
    normalize_decimal(&text).unwrap_or(text)
}

/// Parses a float, with the spellings every engine uses for the
/// non-finite values (`NaN`, `Infinity`, `inf`, `-Infinity`).
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => return Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" | "Inf" => return Some(f64::INFINITY),
        "-Infinity" | "-inf" | "-Inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_f32(s: &str) -> Option<f32> {
    match s {
        "NaN" | "nan" => return Some(f32::NAN),
        "Infinity" | "inf" | "+Infinity" | "Inf" => return Some(f32::INFINITY),
        "-Infinity" | "-inf" | "-Inf" => return Some(f32::NEG_INFINITY),
        _ => {}
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------- decimals

/// Decimal text in plain or scientific notation (`1.5e-3`) as canonical
/// decimal text, by moving the point (no float in between).
pub(crate) fn parse_decimal(s: &str) -> Option<String> {
    if let Some(d) = normalize_decimal(s) {
        return Some(d);
    }
    let s = s.trim();
    let (mant, exp) = s.split_once(['e', 'E'])?;
    let exp: i64 = exp.parse().ok()?;
    if exp.abs() > 100_000 {
        return None;
    }
    let mant = normalize_decimal(mant)?;
    let (neg, body) = match mant.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, mant.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exp;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    normalize_decimal(&out)
}

/// Pads a decimal's fraction with zeros up to `scale` digits (a value
/// that came back from a float or an integer regains its declared scale).
pub(crate) fn pad_scale(d: String, scale: Option<u32>) -> String {
    let Some(scale) = scale.filter(|s| *s > 0) else { return d };
    if matches!(d.as_str(), "NaN" | "Infinity" | "-Infinity") {
        return d;
    }
    let have = d.split_once('.').map_or(0, |(_, f)| f.len());
    if have >= scale as usize {
        return d;
    }
    let mut d = d;
    if have == 0 {
        d.push('.');
    }
    d.extend(std::iter::repeat_n('0', scale as usize - have));
    d
}

// ---------------------------------------------------------------- dates and times

/// How years outside 1..=9999 are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// PostgreSQL: `0044-03-15 BC` (the caller appends the suffix).
    Bc,
    /// ISO 8601 expanded: `-0043-03-15`, `+10000-01-01`.
    Signed,
}

/// Writes the date part; returns true when the caller must append ` BC`.
pub(crate) fn write_date(d: NaiveDate, era: Era, s: &mut String) -> bool {
    let y = d.year();
    let (m, day) = (d.month(), d.day());
    match era {
        Era::Bc if y <= 0 => {
            let _ = write!(s, "{:04}-{m:02}-{day:02}", 1 - y);
            true
        }
        Era::Signed if !(0..=9999).contains(&y) => {
            let _ = write!(s, "{y:+05}-{m:02}-{day:02}");
            false
        }
        _ => {
            let _ = write!(s, "{y:04}-{m:02}-{day:02}");
            false
        }
    }
}

/// `.123456` (microseconds) or `.123456789` (nanoseconds), trailing zeros
/// trimmed; nothing for a whole second.
pub(crate) fn write_frac(ns: u32, s: &mut String) {
    if ns == 0 {
        return;
    }
    let digits = if ns % 1000 == 0 { format!("{:06}", ns / 1000) } else { format!("{ns:09}") };
    s.push('.');
    s.push_str(digits.trim_end_matches('0'));
}

/// The `24:00:00` that PostgreSQL allows (and MySQL TIME holds), carried
/// in chrono's leap-second form.
pub(crate) fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_nano_opt(23, 59, 59, 1_000_000_000).expect("valid leap second")
}

/// `HH:MM:SS[.f]`; chrono's leap second at 23:59:59 is written `24:00:00`.
pub(crate) fn write_time(t: NaiveTime, s: &mut String) {
    let mut ns = t.nanosecond();
    let (h, m, sec) = (t.hour(), t.minute(), t.second());
    if ns >= 1_000_000_000 {
        ns -= 1_000_000_000;
        if ns == 0 && (h, m, sec) == (23, 59, 59) {
            s.push_str("24:00:00");
            return;
        }
        let _ = write!(s, "{h:02}:{m:02}:60");
    } else {
        let _ = write!(s, "{h:02}:{m:02}:{sec:02}");
    }
    write_frac(ns, s);
}

/// `+02`, `+05:30`, `-03:30:15` (PostgreSQL) or `+02:00` (`always_minutes`).
pub(crate) fn write_offset(secs: i32, always_minutes: bool, s: &mut String) {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, sec) = (a / 3600, a % 3600 / 60, a % 60);
    let _ = write!(s, "{sign}{h:02}");
    if m != 0 || sec != 0 || always_minutes {
        let _ = write!(s, ":{m:02}");
    }
    if sec != 0 {
        let _ = write!(s, ":{sec:02}");
    }
}

/// `date time` with the given era style; returns whether ` BC` is due.
pub(crate) fn write_datetime(dt: NaiveDateTime, era: Era, sep: char, s: &mut String) -> bool {
    let bc = write_date(dt.date(), era, s);
    s.push(sep);
    write_time(dt.time(), s);
    bc
}

/// A small cursor for the hand-written parsers below.
pub(crate) struct Cur<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Cur<'a> {
    pub fn new(s: &'a str) -> Self {
        Cur { b: s.as_bytes(), i: 0 }
    }
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    pub fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    /// Between `min` and `max` ASCII digits.
    pub fn digits(&mut self, min: usize, max: usize) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            n = n * 10 + u64::from(self.b[self.i] - b'0');
            self.i += 1;
        }
        (self.i - start >= min).then_some(n)
    }
    /// Fraction digits after a `.` already eaten, as nanoseconds. Digits
    /// past the ninth must be zeros (chrono stops at nanoseconds).
    pub fn frac_nanos(&mut self) -> Option<u32> {
        let start = self.i;
        let mut ns: u32 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            let k = self.i - start;
            if k < 9 {
                ns = ns * 10 + u32::from(c - b'0');
            } else if c != b'0' {
                return None;
            }
            self.i += 1;
        }
        let k = self.i - start;
        if k == 0 {
            return None;
        }
        for _ in k..9 {
            ns *= 10;
        }
        Some(ns)
    }
}

/// `[+-]Y-MM-DD` (year of 1 to 7 digits; a sign only when written).
pub(crate) fn ymd(c: &mut Cur) -> Option<(i64, u32, u32)> {
    let neg = if c.eat(b'-') {
        true
    } else {
        c.eat(b'+');
        false
    };
    let y = c.digits(1, 7)? as i64;
    if !c.eat(b'-') {
        return None;
    }
    let m = c.digits(2, 2)? as u32;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2, 2)? as u32;
    Some((if neg { -y } else { y }, m, d))
}

/// `HH:MM[:SS[.f]]`, with `24:00:00` as [`end_of_day`].
pub(crate) fn hms(c: &mut Cur) -> Option<NaiveTime> {
    let h = c.digits(2, 2)? as u32;
    if !c.eat(b':') {
        return None;
    }
    let m = c.digits(2, 2)? as u32;
    let mut sec = 0;
    let mut ns = 0;
    if c.eat(b':') {
        sec = c.digits(2, 2)? as u32;
        if c.eat(b'.') {
            ns = c.frac_nanos()?;
        }
    }
    if h == 24 {
        return (m == 0 && sec == 0 && ns == 0).then(end_of_day);
    }
    NaiveTime::from_hms_nano_opt(h, m, sec, ns).filter(|_| sec < 60)
}

/// `Z`, `+HH`, `+HHMM`, `+HH:MM`, `+HH:MM:SS` as seconds east of UTC.
pub(crate) fn offset(c: &mut Cur) -> Option<i32> {
    if c.eat(b'Z') || c.eat(b'z') {
        return Some(0);
    }
    let neg = match c.peek()? {
        b'+' => false,
        b'-' => true,
        _ => return None,
    };
    c.i += 1;
    let h = c.digits(2, 2)? as i32;
    let mut m = 0;
    let mut sec = 0;
    if c.eat(b':') {
        m = c.digits(2, 2)? as i32;
        if c.eat(b':') {
            sec = c.digits(2, 2)? as i32;
        }
    } else if let Some(mm) = c.digits(2, 2) {
        m = mm as i32;
    }
    if h > 15 || m > 59 || sec > 59 {
        return None;
    }
    let total = h * 3600 + m * 60 + sec;
    Some(if neg { -total } else { total })
}

/// A date, BC or not: year `y` BC is astronomical year `1 - y`.
pub(crate) fn make_date(y: i64, m: u32, d: u32, bc: bool) -> Option<NaiveDate> {
    let y = if bc {
        if y < 1 {
            return None;
        }
        1 - y
    } else {
        y
    };
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// Date/time text as the engines write it:
/// `2024-01-31`, `2024-01-31 10:00:00.5`, `2024-01-31T10:00:00Z`,
/// `2024-01-31 10:00:00+05:30`, `0044-03-15 10:00:00+00 BC`, `-0043-03-15`.
/// Returns the date, the time (if written) and the offset (if written).
pub(crate) fn parse_datetime(s: &str) -> Option<(NaiveDate, Option<NaiveTime>, Option<i32>)> {
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut c = Cur::new(s);
    let (y, m, d) = ymd(&mut c)?;
    if bc && y < 0 {
        return None;
    }
    let date = make_date(y, m, d, bc)?;
    if c.done() {
        return Some((date, None, None));
    }
    if !(c.eat(b' ') || c.eat(b'T') || c.eat(b't')) {
        return None;
    }
    let time = hms(&mut c)?;
    if c.done() {
        return Some((date, Some(time), None));
    }
    c.eat(b' ');
    let off = offset(&mut c)?;
    c.done().then_some((date, Some(time), Some(off)))
}

/// Time-of-day text with an optional offset: `13:45:00.5`, `13:45:00+02`.
pub(crate) fn parse_time_tz(s: &str) -> Option<(NaiveTime, Option<i32>)> {
    let mut c = Cur::new(s);
    let t = hms(&mut c)?;
    if c.done() {
        return Some((t, None));
    }
    let off = offset(&mut c)?;
    c.done().then_some((t, Some(off)))
}

/// Moves a wall-clock time east of UTC by `off` seconds back to UTC.
pub(crate) fn to_utc(local: NaiveDateTime, off: i32) -> Option<chrono::DateTime<chrono::Utc>> {
    local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off))).map(|u| u.and_utc())
}

// ---------------------------------------------------------------- intervals

/// ISO 8601 duration with designators, as PostgreSQL writes it with
/// `IntervalStyle=iso_8601` and [`Interval::to_iso8601`] does: every part
/// may carry its own sign (`P-1Y-2M3DT-4H-5M-6.5S`); `W` is read as 7 days.
/// Fractions are accepted where they come out as whole microseconds.
pub(crate) fn parse_iso_interval(s: &str) -> Option<Interval> {
    let b = s.as_bytes();
    if b.first() != Some(&b'P') || b.len() < 3 {
        return None;
    }
    let (mut months, mut days, mut micros) = (0i128, 0i128, 0i128);
    let mut i = 1;
    let mut in_time = false;
    let mut parts = 0;
    while i < b.len() {
        if b[i] == b'T' && !in_time {
            in_time = true;
            i += 1;
            continue;
        }
        let neg = match b[i] {
            b'-' => {
                i += 1;
                true
            }
            b'+' => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &s[start..i];
        let mut frac_digits = "";
        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
            i += 1;
            let fs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &s[fs..i];
        }
        if (int_digits.is_empty() && frac_digits.is_empty()) || int_digits.len() > 20 || frac_digits.len() > 18 {
            return None;
        }
        let unit = *b.get(i)?;
        i += 1;
        // value = (int * 10^k + frac) / 10^k, in the unit's base (months,
        // days or microseconds), which must come out whole.
        let base: i128 = match (in_time, unit) {
            (false, b'Y') => 12,
            (false, b'M') => 1,
            (false, b'W') => 7,
            (false, b'D') => 1,
            (true, b'H') => 3_600_000_000,
            (true, b'M') => 60_000_000,
            (true, b'S') => 1_000_000,
            _ => return None,
        };
        let k = frac_digits.len() as u32;
        let scaled: i128 = format!("{int_digits}{frac_digits}").parse().ok()?;
        let num = scaled.checked_mul(base)?;
        let den = 10i128.pow(k);
        if num % den != 0 {
            return None;
        }
        let mut v = num / den;
        if neg {
            v = -v;
        }
        match (in_time, unit) {
            (false, b'Y' | b'M') => months += v,
            (false, _) => days += v,
            _ => micros += v,
        }
        parts += 1;
    }
    if parts == 0 {
        return None;
    }
    Some(Interval {
        months: i32::try_from(months).ok()?,
        days: i32::try_from(days).ok()?,
        micros: i64::try_from(micros).ok()?,
    })
}

// ---------------------------------------------------------------- bits

/// `0101` → bits.
pub(crate) fn parse_bit_text(s: &str) -> Option<Vec<bool>> {
    s.bytes()
        .map(|b| match b {
            b'0' => Some(false),
            b'1' => Some(true),
            _ => None,
        })
        .collect()
}

pub(crate) fn bit_text(bits: &[bool]) -> String {
    bits.iter().map(|&b| if b { '1' } else { '0' }).collect()
}

/// The bits' value as an unsigned integer, if it has at most 64
/// significant bits.
pub(crate) fn bits_value(bits: &[bool]) -> Option<u64> {
    let first = bits.iter().position(|&b| b).unwrap_or(bits.len());
    if bits.len() - first > 64 {
        return None;
    }
    Some(bits[first..].iter().fold(0u64, |acc, &b| (acc << 1) | u64::from(b)))
}

/// `len` bits of `n`, most significant first.
pub(crate) fn bits_of(n: u128, len: usize) -> Vec<bool> {
    (0..len).rev().map(|i| i < 128 && (n >> i) & 1 == 1).collect()
}

/// Big-endian bytes (MySQL's BIT on the wire) → exactly `len` bits; bits
/// above `len` must be zero.
pub(crate) fn bits_from_be(bytes: &[u8], len: usize) -> Option<Vec<bool>> {
    let total = bytes.len() * 8;
    let all: Vec<bool> = bytes.iter().flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1 == 1)).collect();
    if total >= len {
        if all[..total - len].iter().any(|&b| b) {
            return None;
        }
        Some(all[total - len..].to_vec())
    } else {
        let mut out = vec![false; len - total];
        out.extend(all);
        Some(out)
    }
}

/// Bits → big-endian bytes, zero-padded on the left to whole bytes.
pub(crate) fn bits_to_be(bits: &[bool]) -> Vec<u8> {
    let pad = (8 - bits.len() % 8) % 8;
    let mut out = Vec::with_capacity(bits.len().div_ceil(8));
    let mut acc = 0u8;
    for (k, &b) in std::iter::repeat_n(&false, pad).chain(bits).enumerate() {
        acc = (acc << 1) | u8::from(b);
        if k % 8 == 7 {
            out.push(acc);
            acc = 0;
        }
    }
    out
}

/// Fits a bit string to `bit(n)` / `varbit(n)`: a fixed-length target is
/// padded with leading zeros; a string longer than the target loses only
/// leading zeros (MySQL bits are numbers, so the value is kept); losing a
/// 1 bit is an error.
pub(crate) fn fit_bits<'a>(bits: &'a [bool], ty: &ColumnType) -> Result<Cow<'a, [bool]>, String> {
    let ColumnType::Bit { length, varying } = ty else { return Ok(Cow::Borrowed(bits)) };
    let Some(n) = length.map(|n| n as usize) else { return Ok(Cow::Borrowed(bits)) };
    if bits.len() > n {
        let extra = bits.len() - n;
        if bits[..extra].iter().any(|&b| b) {
            return Err(format!(
                "bit string {} ({} bits) does not fit a {} column",
                show(bit_text(bits).as_bytes()),
                bits.len(),
                ty.describe()
            ));
        }
        return Ok(Cow::Owned(bits[extra..].to_vec()));
    }
    if bits.len() < n && !varying {
        let mut out = vec![false; n - bits.len()];
        out.extend_from_slice(bits);
        return Ok(Cow::Owned(out));
    }
    Ok(Cow::Borrowed(bits))
}

// ---------------------------------------------------------------- hex

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn unhex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2).map(|p| Some(unhex_digit(p[0])? << 4 | unhex_digit(p[1])?)).collect()
}

pub(crate) fn uuid_text(u: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*u).hyphenated().to_string()
}

pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    uuid::Uuid::try_parse(s.trim()).ok().map(|u| u.into_bytes())
}

/// `interval` as a time of day, when it is one (0 ≤ it < 24 h, no months
/// or days).
pub(crate) fn interval_as_time(iv: &Interval) -> Option<NaiveTime> {
    if iv.months != 0 || iv.days != 0 || iv.micros < 0 || iv.micros >= 86_400_000_000 {
        return None;
    }
    let secs = (iv.micros / 1_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, (iv.micros % 1_000_000) as u32 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_decimals_move_the_point_exactly() {
        assert_eq!(parse_decimal("1.5e-3").as_deref(), Some("0.0015"));
        assert_eq!(parse_decimal("-1.25E2").as_deref(), Some("-125"));
        assert_eq!(parse_decimal("12e3").as_deref(), Some("12000"));
        assert_eq!(parse_decimal("1.2345e2").as_deref(), Some("123.45"));
        assert_eq!(parse_decimal("0.0e0").as_deref(), Some("0.0"));
        assert_eq!(parse_decimal("1e"), None);
        assert_eq!(parse_decimal("e5"), None);
    }

    #[test]
    fn iso_durations_read_what_postgres_writes() {
        let iv = |months, days, micros| Some(Interval { months, days, micros });
        assert_eq!(parse_iso_interval("P1Y2M3DT4H5M6.5S"), iv(14, 3, 14_706_500_000));
        assert_eq!(parse_iso_interval("PT0S"), iv(0, 0, 0));
        assert_eq!(parse_iso_interval("P-1Y-2M3DT-4H-5M-6.5S"), iv(-14, 3, -14_706_500_000));
        assert_eq!(parse_iso_interval("PT-0.000001S"), iv(0, 0, -1));
        assert_eq!(parse_iso_interval("P2W"), iv(0, 14, 0));
        assert_eq!(parse_iso_interval("PT1.5H"), iv(0, 0, 5_400_000_000));
        assert_eq!(parse_iso_interval("PT0.0000001S"), None);
        assert_eq!(parse_iso_interval("P"), None);
        assert_eq!(parse_iso_interval("1 year"), None);
        assert_eq!(parse_iso_interval("P1H"), None);
    }

    #[test]
    fn dates_and_times_parse_every_spelling() {
        let (d, t, o) = parse_datetime("0044-03-15 10:00:00+00 BC").unwrap();
        assert_eq!((d.year(), t.unwrap().hour(), o), (-43, 10, Some(0)));
        let (d, _, _) = parse_datetime("-0043-03-15").unwrap();
        assert_eq!(d.year(), -43);
        let (_, t, o) = parse_datetime("2024-01-31T10:00:00.123Z").unwrap();
        assert_eq!((t.unwrap().nanosecond(), o), (123_000_000, Some(0)));
        let (_, _, o) = parse_datetime("2024-01-31 10:00:00 +05:30").unwrap();
        assert_eq!(o, Some(19_800));
        assert_eq!(parse_datetime("2024-02-30"), None);
        assert_eq!(parse_time_tz("24:00:00"), Some((end_of_day(), None)));
        assert_eq!(parse_time_tz("24:00:01"), None);
        let mut s = String::new();
        write_time(end_of_day(), &mut s);
        assert_eq!(s, "24:00:00");
    }

    #[test]
    fn bits_fit_by_value() {
        let ty = ColumnType::Bit { length: Some(4), varying: false };
        assert_eq!(fit_bits(&[true, false], &ty).unwrap().as_ref(), &[false, false, true, false]);
        assert_eq!(fit_bits(&[false, false, true, true, false, true], &ty).unwrap().as_ref(), &[true, true, false, true]);
        assert!(fit_bits(&[true, false, false, false, false], &ty).is_err());
        assert_eq!(bits_to_be(&[true, false, false, false, false, false, false, false, true]), vec![1, 1]);
        assert_eq!(bits_from_be(&[1, 1], 9).unwrap(), vec![true, false, false, false, false, false, false, false, true]);
        assert_eq!(bits_from_be(&[3], 1), None);
        assert_eq!(bits_value(&bits_of(u64::MAX as u128, 70)), Some(u64::MAX));
    }
}
