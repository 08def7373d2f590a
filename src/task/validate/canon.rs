//! How values compare across engines: one canonical text per value that is
//! the same whichever engine it was read from (after barge's own
//! conversions), the order keys are read in on both sides, and the quoted
//! form a difference is shown in, so that `'' ≠ NULL` and
//! `'Angola' ≠ 'Angola '` are visible.

use std::cmp::Ordering;

use crate::model::{ColumnType, Dialect, Value};

/// A representation of a value that is the same whichever engine it was
/// read from, after barge's own conversions.
pub fn canonical(v: &Value) -> String {
    use Value as V;
    match v {
        V::Null | V::ZeroDate => "\u{0}".into(),
        V::Bool(b) => if *b { "1" } else { "0" }.into(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Year(y) => y.to_string(),
        V::Decimal(d) => canonical_decimal(d),
        V::Float32(f) => canonical_float(*f as f64, true),
        V::Float64(f) => canonical_float(*f, false),
        V::Text(t) | V::Enum(t) => {
            if t.len() == 36 {
                if let Ok(u) = uuid::Uuid::parse_str(t) {
                    return u.hyphenated().to_string();
                }
            }
            t.clone()
        }
        V::Json(j) => match serde_json::from_str::<serde_json::Value>(j) {
            Ok(parsed) => parsed.to_string(),
            Err(_) => j.clone(),
        },
        V::Bytes(b) => format!("\\x{}", hex::encode(b)),
        V::Uuid(u) => uuid::Uuid::from_bytes(*u).hyphenated().to_string(),
        V::Date(d) => d.to_string(),
        V::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        V::TimeTz(t, off) => format!("{}{off:+}", t.format("%H:%M:%S%.f")),
        V::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        V::TimestampTz(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        V::Infinity { negative } => if *negative { "-infinity" } else { "infinity" }.into(),
        V::Interval(i) => i.to_iso8601(),
        V::Set(items) => serde_json::Value::Array(items.iter().map(|s| serde_json::Value::String(s.clone())).collect()).to_string(),
        // Arrays compare as JSON arrays: targets without arrays store them so.
        V::Array(items) => serde_json::Value::Array(items.iter().map(json_of).collect()).to_string(),
        V::Bits(bits) => {
            let mut n: u128 = 0;
            for b in bits.iter().take(128) {
                n = (n << 1) | (*b as u128);
            }
            n.to_string()
        }
    }
}

/// A value as JSON, for comparing arrays with their JSON form.
fn json_of(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Decimal(d) => serde_json::from_str::<J>(&canonical_decimal(d)).unwrap_or_else(|_| J::String(d.clone())),
        Value::Float32(f) => serde_json::Number::from_f64(*f as f64).map(J::Number).unwrap_or(J::Null),
        Value::Float64(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Json(j) => serde_json::from_str(j).unwrap_or_else(|_| J::String(j.clone())),
        Value::Array(items) => J::Array(items.iter().map(json_of).collect()),
        other => J::String(canonical(other)),
    }
}

fn canonical_decimal(d: &str) -> String {
    let n = crate::model::value::normalize_decimal(d).unwrap_or_else(|| d.to_string());
    if n.contains('.') {
        let t = n.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".into() } else { t.to_string() }
    } else {
        n
    }
}

fn canonical_float(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Compare at the precision both sides can hold.
    if single {
        format!("{}", f as f32)
    } else {
        format!("{f}")
    }
}

/// The type the target side is read as: the source's where the target
/// only has text (SQLite's affinities, a type mapped to text), so "1.50"
/// in a TEXT column is still the decimal 1.50.
pub fn comparison_type(source: &ColumnType, target: &ColumnType) -> ColumnType {
    let weak = target.is_textual() || matches!(target, ColumnType::Other { .. });
    if weak && !source.is_textual() && !matches!(source, ColumnType::Other { .. } | ColumnType::Enum { .. }) {
        source.clone()
    } else if matches!((source, target), (ColumnType::Float32, ColumnType::Float64)) {
        // A single-precision value widened on the target compares as single.
        ColumnType::Float32
    } else {
        target.clone()
    }
}

/// Whether two values compare equal, without building their canonical
/// text where the values show it at once (the common case: equal rows).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::TimestampTz(x), Value::Timestamp(y)) | (Value::Timestamp(y), Value::TimestampTz(x)) => x.naive_utc() == *y,
        (Value::Bool(x), Value::Int(y)) | (Value::Int(y), Value::Bool(x)) => *y == *x as i64,
        (Value::Float32(x), Value::Float32(y)) if x.is_nan() && y.is_nan() => true,
        (Value::Float64(x), Value::Float64(y)) if x.is_nan() && y.is_nan() => true,
        _ => a == b || canonical(a) == canonical(b),
    }
}

/// What is done to each value of a row before it is compared.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// The target's type per column, on the source side: values are seen
    /// as the target holds them.
    pub coerce: Vec<Option<ColumnType>>,
    /// Columns that are CHAR(n) on either side: trailing spaces pad.
    pub fixed: Vec<bool>,
    /// Decimals compare at the target column's scale, the precision the
    /// target holds.
    pub scales: Vec<Option<u32>>,
}

impl Normalizer {
    pub fn apply(&self, row: Vec<Value>) -> Vec<Value> {
        row.into_iter()
            .enumerate()
            .map(|(i, v)| {
                let v = match self.coerce.get(i).and_then(Option::as_ref) {
                    Some(t) => as_target(v, t),
                    None => v,
                };
                let v = match v {
                    // CHAR(n) pads with spaces (PostgreSQL shows them, MySQL strips them).
                    Value::Text(t) if self.fixed.get(i).copied().unwrap_or(false) && t.ends_with(' ') => Value::Text(t.trim_end_matches(' ').to_string()),
                    v => v,
                };
                match (v, self.scales.get(i).copied().flatten()) {
                    (Value::Decimal(d), Some(s)) if d.split_once('.').is_some_and(|(_, f)| f.len() > s as usize) => Value::Decimal(crate::model::value::round_decimal(&d, s)),
                    (v, _) => v,
                }
            })
            .collect()
    }
}

/// A source value as the target column can hold it, where the conversion
/// is the announced one (the report says so): a time's zone dropped where
/// the target has none, a double narrowed to single precision.
fn as_target(v: Value, target: &ColumnType) -> Value {
    match (v, target) {
        (Value::TimeTz(t, _), ColumnType::Time { tz: false, .. }) => Value::Time(t),
        (Value::Float64(f), ColumnType::Float32) => Value::Float32(f as f32),
        (v, _) => v,
    }
}

/// How a key column is ordered: numerically, or by the bytes of its
/// canonical text (UTF-8 byte order is code point order, which PostgreSQL's
/// "C" collation, a MySQL binary cast and SQLite's BINARY all sort by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Numeric,
    Bytes,
}

impl KeyOrder {
    /// The order of a key column read as `ty`.
    pub fn of(ty: &ColumnType) -> KeyOrder {
        match ty {
            ColumnType::Bool | ColumnType::Int { .. } | ColumnType::Decimal { .. } | ColumnType::Float32 | ColumnType::Float64 | ColumnType::Year => KeyOrder::Numeric,
            _ => KeyOrder::Bytes,
        }
    }

    /// The ORDER BY term that sorts `quoted` (a column of model type
    /// `ty` on engine `d`) in this order, or `None` when the engine cannot
    /// be asked to (the comparison then does not rely on order).
    pub fn sql(self, d: Dialect, quoted: &str, ty: &ColumnType) -> Option<String> {
        use ColumnType as T;
        let numeric = matches!(ty, T::Bool | T::Int { .. } | T::Decimal { .. } | T::Float32 | T::Float64 | T::Year);
        let text_like = ty.is_textual() || matches!(ty, T::Enum { .. } | T::Set { .. } | T::Json | T::Jsonb | T::Xml | T::Other { .. });
        let natural = matches!(ty, T::Uuid | T::Date | T::Timestamp { .. } | T::Time { tz: false, .. } | T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. });
        match (self, d) {
            (KeyOrder::Numeric, Dialect::Postgres) if numeric => Some(format!("{quoted} NULLS FIRST")),
            (KeyOrder::Numeric, _) if numeric => Some(quoted.to_string()),
            (KeyOrder::Numeric, _) => None,
            (KeyOrder::Bytes, Dialect::Postgres) if text_like => Some(format!("({quoted})::text COLLATE \"C\" NULLS FIRST")),
            (KeyOrder::Bytes, Dialect::Postgres) if natural => Some(format!("{quoted} NULLS FIRST")),
            (KeyOrder::Bytes, Dialect::Mysql) if text_like => Some(format!("CAST({quoted} AS BINARY)")),
            (KeyOrder::Bytes, Dialect::Mysql) if natural && !matches!(ty, T::Uuid) => Some(quoted.to_string()),
            (KeyOrder::Bytes, Dialect::Sqlite) if text_like || natural => Some(format!("{quoted} COLLATE BINARY")),
            _ => None,
        }
    }
}

/// One column of a row's key, comparable across engines.
#[derive(Debug, Clone)]
pub enum KeyPart {
    Null,
    Int(i128),
    /// A canonical decimal with a fraction, or NaN / ±Infinity.
    Decimal(String),
    Float(f64),
    Text(String),
}

impl KeyPart {
    pub fn of(v: &Value) -> KeyPart {
        match v {
            Value::Null | Value::ZeroDate => KeyPart::Null,
            Value::Bool(b) => KeyPart::Int(*b as i128),
            Value::Int(i) => KeyPart::Int(*i as i128),
            Value::UInt(u) => KeyPart::Int(*u as i128),
            Value::Year(y) => KeyPart::Int(*y as i128),
            Value::Decimal(d) => {
                let c = canonical_decimal(d);
                match c.parse::<i128>() {
                    Ok(i) => KeyPart::Int(i),
                    Err(_) => KeyPart::Decimal(c),
                }
            }
            Value::Float32(f) => KeyPart::Float(*f as f64),
            Value::Float64(f) => KeyPart::Float(*f),
            other => KeyPart::Text(canonical(other)),
        }
    }

    fn class(&self) -> u8 {
        match self {
            KeyPart::Null => 0,
            KeyPart::Int(_) | KeyPart::Decimal(_) | KeyPart::Float(_) => 1,
            KeyPart::Text(_) => 2,
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            KeyPart::Int(i) => *i as f64,
            KeyPart::Decimal(d) => d.parse().unwrap_or(f64::NAN),
            KeyPart::Float(f) => *f,
            _ => f64::NAN,
        }
    }
}

impl Ord for KeyPart {
    fn cmp(&self, other: &Self) -> Ordering {
        use KeyPart as K;
        match (self, other) {
            (K::Int(a), K::Int(b)) => a.cmp(b),
            (K::Text(a), K::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (K::Null, K::Null) => Ordering::Equal,
            (K::Int(a), K::Decimal(b)) => compare_decimal(&a.to_string(), b),
            (K::Decimal(a), K::Int(b)) => compare_decimal(a, &b.to_string()),
            (K::Decimal(a), K::Decimal(b)) => compare_decimal(a, b),
            (a, b) if a.class() == 1 && b.class() == 1 => a.as_f64().total_cmp(&b.as_f64()),
            (a, b) => a.class().cmp(&b.class()),
        }
    }
}

impl PartialOrd for KeyPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for KeyPart {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for KeyPart {}

/// Compares two canonical decimals (`-?digits(.digits)?`, or NaN and
/// ±Infinity, which PostgreSQL sorts as: -Infinity < numbers < Infinity < NaN).
fn compare_decimal(a: &str, b: &str) -> Ordering {
    fn rank(s: &str) -> i8 {
        match s {
            "-Infinity" => -1,
            "Infinity" => 1,
            "NaN" => 2,
            _ => 0,
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    if ra != 0 || rb != 0 {
        return ra.cmp(&rb);
    }
    let (na, a) = a.strip_prefix('-').map_or((false, a), |r| (true, r));
    let (nb, b) = b.strip_prefix('-').map_or((false, b), |r| (true, r));
    let is_zero = |s: &str| s.bytes().all(|c| c == b'0' || c == b'.');
    let (na, nb) = (na && !is_zero(a), nb && !is_zero(b));
    if na != nb {
        return if na { Ordering::Less } else { Ordering::Greater };
    }
    let magnitude = {
        let (ai, af) = a.split_once('.').unwrap_or((a, ""));
        let (bi, bf) = b.split_once('.').unwrap_or((b, ""));
        let (ai, bi) = (ai.trim_start_matches('0'), bi.trim_start_matches('0'));
        let (af, bf) = (af.trim_end_matches('0'), bf.trim_end_matches('0'));
        ai.len().cmp(&bi.len()).then_with(|| ai.cmp(bi)).then_with(|| af.cmp(bf))
    };
    if na { magnitude.reverse() } else { magnitude }
}

/// A value as it is shown in a difference: SQL-like literals, text in
/// single quotes with invisible characters written out (`'Angola '`,
/// `'a\u{a0}b'`), NULL bare.
pub fn literal(v: &Value) -> String {
    use Value as V;
    match v {
        V::Null => "NULL".into(),
        V::ZeroDate => "'0000-00-00'".into(),
        V::Bool(b) => b.to_string(),
        V::Int(_) | V::UInt(_) | V::Year(_) | V::Decimal(_) | V::Float32(_) | V::Float64(_) | V::Bits(_) => canonical(v),
        V::Infinity { negative } => if *negative { "'-infinity'" } else { "'infinity'" }.into(),
        other => quote(&canonical(other)),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || (c.is_whitespace() && c != ' ') || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Longest shown form of one value.
const SHOW_CHARS: usize = 48;

/// Two differing values as shown side by side: when they are long, both
/// are cut around the first character that differs.
pub fn shown_pair(a: &Value, b: &Value) -> (String, String) {
    let (a, b) = (literal(a), literal(b));
    let (ca, cb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if ca.len() <= SHOW_CHARS && cb.len() <= SHOW_CHARS {
        return (a, b);
    }
    let first = ca.iter().zip(&cb).position(|(x, y)| x != y).unwrap_or(ca.len().min(cb.len()));
    let start = first.saturating_sub(12);
    let cut = |c: &[char]| {
        let end = (start + SHOW_CHARS).min(c.len());
        let mut s = String::new();
        if start > 0 {
            s.push('…');
        }
        s.extend(&c[start.min(c.len())..end]);
        if end < c.len() {
            s.push('…');
        }
        s.push_str(&format!(" ({} chars)", c.len()));
        s
    };
    (cut(&ca), cut(&cb))
}

/// A row's key as shown: the value, or `(a, b)` for a key of several columns.
pub fn key_text(values: &[&Value]) -> String {
    let parts: Vec<String> = values.iter().map(|v| {
        let l = literal(v);
        if l.chars().count() > SHOW_CHARS { format!("{}…'", l.chars().take(SHOW_CHARS).collect::<String>()) } else { l }
    }).collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_agree_across_engines() {
        assert_eq!(canonical(&Value::Bool(true)), canonical(&Value::Int(1)));
        assert_eq!(canonical(&Value::Decimal("1.50".into())), canonical(&Value::Decimal("1.5".into())));
        assert_eq!(canonical(&Value::Decimal("5".into())), canonical(&Value::UInt(5)));
        assert_eq!(canonical(&Value::Json("{\"a\": 1}".into())), canonical(&Value::Json("{\"a\":1}".into())));
        assert_eq!(canonical(&Value::ZeroDate), canonical(&Value::Null));
        assert_eq!(canonical(&Value::Set(vec!["a".into(), "b".into()])), canonical(&Value::Array(vec![Value::Text("a".into()), Value::Text("b".into())])));
        let u = [0x12u8; 16];
        assert_eq!(canonical(&Value::Uuid(u)), canonical(&Value::Text(uuid::Uuid::from_bytes(u).hyphenated().to_string().to_uppercase())));
        assert_ne!(canonical(&Value::Decimal("1.51".into())), canonical(&Value::Decimal("1.5".into())));
        assert_ne!(canonical(&Value::Text(String::new())), canonical(&Value::Null), "'' is not NULL");
    }

    #[test]
    fn invisible_differences_show() {
        assert_eq!(literal(&Value::Text(String::new())), "''");
        assert_eq!(literal(&Value::Null), "NULL");
        assert_eq!(literal(&Value::Text("Angola ".into())), "'Angola '");
        assert_eq!(literal(&Value::Text("it's\u{a0}x\n".into())), "'it''s\\u{a0}x\\n'");
        assert_eq!(literal(&Value::Int(7)), "7");
        assert_eq!(literal(&Value::Decimal("1.50".into())), "1.5");
        let long_a = Value::Text(format!("{}A{}", "x".repeat(100), "y".repeat(100)));
        let long_b = Value::Text(format!("{}B{}", "x".repeat(100), "y".repeat(100)));
        let (a, b) = shown_pair(&long_a, &long_b);
        assert!(a.contains("xA") && b.contains("xB"), "{a} / {b}");
        assert_eq!(key_text(&[&Value::Int(1), &Value::Text("a".into())]), "(1, 'a')");
    }

    #[test]
    fn keys_order_like_the_engines() {
        let k = |v: Value| KeyPart::of(&v);
        assert!(k(Value::Int(2)) < k(Value::Int(10)));
        assert!(k(Value::Decimal("-2.5".into())) < k(Value::Int(-2)));
        assert!(k(Value::Decimal("10.01".into())) > k(Value::Decimal("9.99".into())));
        assert!(k(Value::Decimal("-10.01".into())) < k(Value::Decimal("-9.99".into())));
        assert_eq!(k(Value::Decimal("1.50".into())), k(Value::Decimal("1.5".into())));
        assert_eq!(k(Value::Decimal("3.000".into())), k(Value::Int(3)));
        assert!(k(Value::Text("B".into())) < k(Value::Text("a".into())), "byte order, not a collation");
        assert!(k(Value::Text("a".into())) < k(Value::Text("ab".into())));
        assert!(k(Value::Text("z".into())) < k(Value::Text("é".into())));
        assert!(k(Value::Null) < k(Value::Int(i64::MIN)));
        assert_eq!(compare_decimal("0.0", "-0"), Ordering::Equal);
        assert_eq!(compare_decimal("NaN", "Infinity"), Ordering::Greater);
    }
}
