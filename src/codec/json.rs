//! Arrays as JSON, for targets without arrays (MySQL `json`, SQLite
//! text). Written the way PostgreSQL's `to_json` writes them, and read
//! back with numbers kept as their digits (no trip through `f64`).

use std::fmt::Write as _;

use super::common::{self, bad, Era};
use crate::model::{ColumnType, Value};

/// Appends `v` as JSON. Non-finite floats and decimals become the strings
/// `"NaN"`, `"Infinity"`, `"-Infinity"` (as `to_json` does); bytes
/// `"\\x0102"`; dates, times and intervals ISO 8601 strings; `Json` is
/// embedded as written.
pub fn write_json(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Year(y) => {
            let _ = write!(out, "{y}");
        }
        Value::Float32(x) => match common::nonfinite_name(f64::from(*x)) {
            Some(name) => string(name, out),
            None => common::write_f32(*x, out),
        },
        Value::Float64(x) => match common::nonfinite_name(*x) {
            Some(name) => string(name, out),
            None => common::write_f64(*x, out),
        },
        Value::Decimal(d) if matches!(d.as_str(), "NaN" | "Infinity" | "-Infinity") => string(d, out),
        Value::Decimal(d) => out.push_str(d),
        Value::Text(s) | Value::Enum(s) => string(s, out),
        Value::Json(j) => out.push_str(j),
        Value::Bytes(_)
        | Value::Uuid(_)
        | Value::Date(_)
        | Value::Time(_)
        | Value::TimeTz(..)
        | Value::Timestamp(_)
        | Value::TimestampTz(_)
        | Value::Infinity { .. }
        | Value::Interval(_)
        | Value::Bits(_) => string(&scalar_text(v).unwrap_or_default(), out),
        Value::Set(members) => {
            out.push('[');
            for (k, m) in members.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                string(m, out);
            }
            out.push(']');
        }
        Value::Array(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::ZeroDate => return Err("a zero date has no JSON form".into()),
    }
    Ok(())
}

/// The text of a value that JSON (and CSV) carry as a string: bytes as
/// `\\x0102`, uuids, ISO 8601 dates, times, timestamps (`T` between date
/// and time; `+00:00` on instants) and durations, `infinity`, bit strings.
/// `None` for every other kind.
pub fn scalar_text(v: &Value) -> Option<String> {
    let mut s = String::new();
    match v {
        Value::Bytes(b) => {
            let mut hex = b"\\x".to_vec();
            common::push_hex(b, &mut hex);
            s = String::from_utf8(hex).expect("hex is ASCII");
        }
        Value::Uuid(u) => s = common::uuid_text(u),
        Value::Date(d) => {
            common::write_date(*d, Era::Signed, &mut s);
        }
        Value::Time(t) => common::write_time(*t, &mut s),
        Value::TimeTz(t, off) => {
            common::write_time(*t, &mut s);
            common::write_offset(*off, true, &mut s);
        }
        Value::Timestamp(ts) => {
            common::write_datetime(*ts, Era::Signed, 'T', &mut s);
        }
        Value::TimestampTz(ts) => {
            common::write_datetime(ts.naive_utc(), Era::Signed, 'T', &mut s);
            s.push_str("+00:00");
        }
        Value::Infinity { negative } => s.push_str(if *negative { "-infinity" } else { "infinity" }),
        Value::Interval(iv) => s = iv.to_iso8601(),
        Value::Bits(bits) => s = common::bit_text(bits),
        _ => return None,
    }
    Some(s)
}

fn string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
}

/// A JSON value with the raw text of numbers, objects and every element.
#[derive(Debug)]
enum J<'a> {
    Null,
    Bool(bool),
    Num(&'a str),
    Str(String),
    Arr(Vec<(J<'a>, &'a str)>),
    Obj,
}

struct P<'a> {
    s: &'a str,
    i: usize,
    depth: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.s.as_bytes().get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<(J<'a>, &'a str)> {
        self.ws();
        let start = self.i;
        let b = self.s.as_bytes();
        let j = match *b.get(self.i)? {
            b'n' => self.word("null", J::Null)?,
            b't' => self.word("true", J::Bool(true))?,
            b'f' => self.word("false", J::Bool(false))?,
            b'"' => {
                let end = self.string_end()?;
                let text = serde_json::from_str::<String>(&self.s[self.i..end]).ok()?;
                self.i = end;
                J::Str(text)
            }
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > 128 {
                    return None;
                }
                let (open, close) = (b[self.i], if b[self.i] == b'[' { b']' } else { b'}' });
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if b.get(self.i) == Some(&close) {
                    self.i += 1;
                } else {
                    loop {
                        if open == b'{' {
                            self.ws();
                            if b.get(self.i) != Some(&b'"') {
                                return None;
                            }
                            self.i = self.string_end()?;
                            self.ws();
                            if b.get(self.i) != Some(&b':') {
                                return None;
                            }
                            self.i += 1;
                        }
                        let item = self.value()?;
                        if open == b'[' {
                            items.push(item);
                        }
                        self.ws();
                        match b.get(self.i)? {
                            b',' => self.i += 1,
                            c if *c == close => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                self.depth -= 1;
                if open == b'[' {
                    J::Arr(items)
                } else {
                    J::Obj
                }
            }
            _ => {
                let n = b[self.i..]
                    .iter()
                    .position(|c| !(c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')))
                    .unwrap_or(b.len() - self.i);
                if n == 0 {
                    return None;
                }
                self.i += n;
                J::Num(&self.s[start..self.i])
            }
        };
        Some((j, &self.s[start..self.i]))
    }

    fn word(&mut self, w: &str, j: J<'a>) -> Option<J<'a>> {
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            Some(j)
        } else {
            None
        }
    }

    /// Index after the closing quote of the string starting at `self.i`.
    fn string_end(&self) -> Option<usize> {
        let b = self.s.as_bytes();
        let mut k = self.i + 1;
        while k < b.len() {
            match b[k] {
                b'\\' => k += 2,
                b'"' => return Some(k + 1),
                _ => k += 1,
            }
        }
        None
    }
}

/// Reads a JSON array back into [`Value::Array`], each element decoded
/// as `ty`'s element type. `text_decode` reads a JSON string as a value of
/// a (scalar) column type: the codec's own text reader.
pub(crate) fn read_array(
    s: &str,
    ty: &ColumnType,
    text_decode: &dyn Fn(&str, &ColumnType) -> Result<Value, String>,
) -> Result<Value, String> {
    let mut p = P { s, i: 0, depth: 0 };
    let parsed = p.value();
    p.ws();
    match parsed {
        Some((j @ J::Arr(_), raw)) if p.i == s.len() => convert(j, raw, ty, text_decode),
        _ => Err(bad(s.as_bytes(), ty, "not a JSON array")),
    }
}

fn convert(
    j: J,
    raw: &str,
    ty: &ColumnType,
    text_decode: &dyn Fn(&str, &ColumnType) -> Result<Value, String>,
) -> Result<Value, String> {
    use ColumnType as T;
    // The type elements of this level are decoded as.
    let elem = match ty {
        T::Array { element } => element.as_ref(),
        other => other,
    };
    match j {
        J::Null => Ok(Value::Null),
        J::Arr(items) if matches!(ty, T::Array { .. }) || !matches!(ty, T::Json | T::Jsonb) => {
            let mut out = Vec::with_capacity(items.len());
            for (item, raw) in items {
                // A nested array keeps using `elem` unless the type says
                // there is another level.
                let v = match item {
                    // In a json[] a JSON array is one json value.
                    J::Arr(_) if matches!(elem, T::Json | T::Jsonb) => scalar_value(item, raw, elem, text_decode)?,
                    // A nested array goes one type level down when the type
                    // has one (`int[][]`), else keeps it (`int[]` holding
                    // `{{1,2},{3,4}}`, as PostgreSQL types it).
                    J::Arr(_) => convert(item, raw, if matches!(elem, T::Array { .. }) { elem } else { ty }, text_decode)?,
                    scalar => scalar_value(scalar, raw, elem, text_decode)?,
                };
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        other => scalar_value(other, raw, ty, text_decode),
    }
}

fn scalar_value(
    j: J,
    raw: &str,
    ty: &ColumnType,
    text_decode: &dyn Fn(&str, &ColumnType) -> Result<Value, String>,
) -> Result<Value, String> {
    use ColumnType as T;
    match (j, ty) {
        (J::Null, _) => Ok(Value::Null),
        (_, T::Json | T::Jsonb) => Ok(Value::Json(raw.to_string())),
        (J::Bool(b), T::Bool) => Ok(Value::Bool(b)),
        (J::Bool(b), _) => text_decode(if b { "true" } else { "false" }, ty),
        (J::Num(n), T::Decimal { .. }) => {
            common::parse_decimal(n).map(Value::Decimal).ok_or_else(|| bad(n.as_bytes(), ty, "not a decimal"))
        }
        (J::Num(n), _) => text_decode(n, ty),
        (J::Str(s), T::Blob { .. } | T::Binary { .. } | T::Varbinary { .. }) => {
            match s.strip_prefix("\\x").and_then(|h| common::unhex(h.as_bytes())) {
                Some(b) => Ok(Value::Bytes(b)),
                None => Ok(Value::Bytes(s.into_bytes())),
            }
        }
        (J::Str(s), T::Set { .. }) => text_decode(&s, ty),
        (J::Arr(items), T::Set { .. }) => {
            let mut members = Vec::with_capacity(items.len());
            for (item, raw) in items {
                match item {
                    J::Str(s) => members.push(s),
                    _ => return Err(bad(raw.as_bytes(), ty, "a SET member must be a string")),
                }
            }
            Ok(Value::Set(members))
        }
        (J::Str(s), _) => text_decode(&s, ty),
        (J::Arr(_) | J::Obj, _) => Err(bad(raw.as_bytes(), ty, "a nested JSON value where a scalar was expected")),
    }
}
