//! Dynamic partitioning of file keys (`--partition-by`), in Firehose's
//! syntax: `year=!{timestamp:%Y}/month=!{timestamp:%m}/device=!{field:device_id}`.
//!
//! - `!{timestamp:FMT}` is the record's commit time (a stream's arrival
//!   time; the time barge read it when the source gives none), in UTC,
//!   formatted by strftime;
//! - `!{field:NAME}` is the value of column NAME of the row; `a.b` reads
//!   key `b` inside JSON column `a` (when no column is named `a.b`).
//!
//! A value never leaves its path segment: every byte but ASCII letters,
//! digits, `-`, `_` and `.` is percent-encoded (`a/b` is `a%2Fb`, `../x`
//! is `..%2Fx`, a value of only dots has its dots encoded), values longer
//! than [`MAX_VALUE`] bytes are cut and end in `~` and a hash of the whole
//! value (so two long values never share a partition). NULL, a missing
//! JSON key and the empty string go to [`DEFAULT_PARTITION`], the segment
//! Hive, Spark and Athena read back as NULL; a value that is literally
//! that text has its first character encoded. Hive-style readers
//! percent-decode segments, so `device=a%2Fb` reads back as `a/b`.

use chrono::format::Item;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::super::record::Record;
use super::super::SinkTable;
use crate::model::Value;

/// The segment of a NULL, missing or empty value.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// Longest encoded value kept whole: a file name may have 255 bytes and
/// an S3 key 1024, and a segment may hold several values.
pub const MAX_VALUE: usize = 96;

/// What is written as it is: what S3 calls safe in a key and every file
/// system takes in a name.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Time(Vec<Item<'static>>),
    Field(String),
}

/// A parsed `--partition-by` template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    pub text: String,
}

/// A template bound to one table's columns.
pub struct Bound<'t> {
    template: &'t Template,
    /// Per field part: the column and the JSON path inside it.
    fields: Vec<(usize, Vec<String>)>,
}

impl std::str::FromStr for Template {
    type Err = String;

    fn from_str(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let body_end = rest[start..].find('}').ok_or_else(|| format!("`{text}`: `!{{` at byte {} is not closed by `}}`", text.len() - rest.len() + start))?;
            let body = &rest[start + 2..start + body_end];
            let (kind, arg) = body.split_once(':').unwrap_or((body, ""));
            parts.push(match kind {
                "timestamp" => Part::Time(strftime(arg)?),
                "field" if !arg.is_empty() => Part::Field(arg.to_string()),
                "field" => return Err(format!("`{text}`: !{{field:}} names no field; write !{{field:NAME}}")),
                other => {
                    return Err(format!(
                        "`{text}`: !{{{other}:…}} is not a partition expression barge knows; write !{{timestamp:FMT}} (strftime, e.g. %Y) or !{{field:NAME}} (a column; a.b for a key inside a JSON column)"
                    ))
                }
            });
            rest = &rest[start + body_end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let t = Template { parts, text: text.to_string() };
        t.check_literals()?;
        Ok(t)
    }
}

/// A strftime format, refused if chrono cannot read it.
fn strftime(fmt: &str) -> Result<Vec<Item<'static>>, String> {
    if fmt.is_empty() {
        return Err("!{timestamp:} has no format; write e.g. !{timestamp:%Y-%m-%d}".into());
    }
    let items: Vec<Item<'static>> = chrono::format::StrftimeItems::new(fmt).parse_to_owned().map_err(|_| format!("!{{timestamp:{fmt}}}: not a strftime format chrono reads"))?;
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!("!{{timestamp:{fmt}}}: not a strftime format chrono reads"));
    }
    Ok(items)
}

impl Template {
    /// The template's own text may hold only plain characters, and no
    /// empty, `.` or `..` segment.
    fn check_literals(&self) -> Result<(), String> {
        let mut segment = String::new();
        let mut segments = Vec::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => {
                    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.=/+,@".contains(*c))) {
                        return Err(format!("`{}`: the character {c:?} has no place in an object key; use letters, digits and - _ . = + , @ around the !{{…}} parts", self.text));
                    }
                    for (i, piece) in s.split('/').enumerate() {
                        if i > 0 {
                            segments.push(std::mem::take(&mut segment));
                        }
                        segment.push_str(piece);
                    }
                }
                // A value is never empty, `.` or `..` once encoded.
                _ => segment.push('v'),
            }
        }
        segments.push(segment);
        if let Some(bad) = segments.iter().find(|s| s.is_empty() || *s == "." || *s == "..") {
            return Err(format!("`{}` has a path segment `{bad}`; segments are separated by one / and are neither . nor ..", self.text));
        }
        Ok(())
    }

    /// The template for the columns of `table`; an error names a field the
    /// table does not have.
    pub fn bind<'t>(&'t self, table: &SinkTable) -> Result<Bound<'t>, String> {
        let mut fields = Vec::new();
        for p in &self.parts {
            let Part::Field(name) = p else { continue };
            let find = |n: &str| table.columns.iter().position(|c| c.name == n).or_else(|| table.columns.iter().position(|c| c.name.eq_ignore_ascii_case(n)));
            let bound = match find(name) {
                Some(i) => (i, Vec::new()),
                None => match name.split_once('.').and_then(|(col, path)| Some((find(col)?, path))) {
                    Some((i, path)) if matches!(table.columns[i].ty, crate::model::ColumnType::Json | crate::model::ColumnType::Jsonb) => (i, path.split('.').map(str::to_string).collect()),
                    Some((i, _)) => return Err(format!("--partition-by !{{field:{name}}}: column {} of {} is not JSON, so it has no keys inside", table.columns[i].name, table.display())),
                    None => {
                        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                        return Err(format!("--partition-by !{{field:{name}}}: {} has no column {name} (it has {})", table.display(), names.join(", ")));
                    }
                },
            };
            fields.push(bound);
        }
        Ok(Bound { template: self, fields })
    }
}

impl Bound<'_> {
    /// Appends `rec`'s partition (segments joined by `/`) to `out`. `now`
    /// stands in for a record without a commit time.
    pub fn render(&self, rec: &Record, now: DateTime<Utc>, out: &mut String) {
        let mut field = 0;
        let mut scratch = String::new();
        for p in &self.template.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Time(items) => {
                    scratch.clear();
                    let t = rec.change.commit_time.unwrap_or(now);
                    use std::fmt::Write;
                    let _ = write!(scratch, "{}", t.format_with_items(items.iter()));
                    // A format may hold `/` (%Y/%m): those stay separators.
                    for (i, piece) in scratch.split('/').enumerate() {
                        if i > 0 {
                            out.push('/');
                        }
                        encode_value(Some(piece), out);
                    }
                }
                Part::Field(_) => {
                    let (col, path) = &self.fields[field];
                    field += 1;
                    scratch.clear();
                    let v = rec.values.get(*col).copied().flatten();
                    let text = field_text(v, path, &mut scratch);
                    encode_value(text.then_some(scratch.as_str()), out);
                }
            }
        }
    }
}

/// The text of a value (at `path` inside it, for JSON) into `out`;
/// `false` when there is none (NULL, not sent, a missing key).
fn field_text(v: Option<&Value>, path: &[String], out: &mut String) -> bool {
    let Some(v) = v else { return false };
    if v.is_null() {
        return false;
    }
    if path.is_empty() {
        return crate::codec::text::write_text(v, out).is_ok();
    }
    let Value::Json(text) = v else { return false };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else { return false };
    let mut at = &doc;
    for key in path {
        at = match at {
            serde_json::Value::Object(m) => match m.get(key) {
                Some(x) => x,
                None => return false,
            },
            serde_json::Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get(i)) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        serde_json::Value::Null => false,
        serde_json::Value::String(s) => {
            out.push_str(s);
            true
        }
        other => {
            out.push_str(&other.to_string());
            true
        }
    }
}

/// Appends `value` as one safe piece of a path segment (see the module
/// docs); `None` or empty is [`DEFAULT_PARTITION`].
pub fn encode_value(value: Option<&str>, out: &mut String) {
    let raw = match value {
        Some(v) if !v.is_empty() => v,
        _ => {
            out.push_str(DEFAULT_PARTITION);
            return;
        }
    };
    let start = out.len();
    if raw.bytes().all(|b| b == b'.') {
        for _ in 0..raw.len() {
            out.push_str("%2E");
        }
    } else if raw == DEFAULT_PARTITION {
        out.push_str("%5F");
        out.push_str(&raw[1..]);
    } else {
        out.extend(percent_encoding::utf8_percent_encode(raw, ENCODED));
    }
    if out.len() - start > MAX_VALUE {
        // Cut where no %XX is split, then name the whole value by its hash.
        let mut cut = start + MAX_VALUE - 17;
        while out[cut.saturating_sub(2)..cut].contains('%') {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        let hash = Sha256::digest(raw.as_bytes());
        for b in &hash[..8] {
            use std::fmt::Write;
            let _ = write!(out, "{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{Change, Op};
    use crate::model::{ColumnType, Position, QualifiedName};
    use crate::sink::SinkColumn;

    fn enc(v: &str) -> String {
        let mut s = String::new();
        encode_value(Some(v), &mut s);
        s
    }

    #[test]
    fn hostile_values_stay_inside_their_segment() {
        assert_eq!(enc("../../etc"), "..%2F..%2Fetc");
        assert_eq!(enc("a/b"), "a%2Fb");
        assert_eq!(enc(".."), "%2E%2E");
        assert_eq!(enc("."), "%2E");
        assert_eq!(enc("a\0b\nc"), "a%00b%0Ac");
        assert_eq!(enc("x\\y%z?#*"), "x%5Cy%25z%3F%23%2A");
        assert_eq!(enc("Zürich"), "Z%C3%BCrich");
        assert_eq!(enc("device_1-a.b"), "device_1-a.b");
        assert_eq!(enc(DEFAULT_PARTITION), "%5F_HIVE_DEFAULT_PARTITION__", "a real value never reads as NULL");
        let mut null = String::new();
        encode_value(None, &mut null);
        assert_eq!(null, DEFAULT_PARTITION);
        assert_eq!(enc(""), DEFAULT_PARTITION);
        for v in ["../../etc", "a/b", "..", ".", "\0", &"é/".repeat(500), &"x".repeat(5000)] {
            let e = enc(v);
            assert!(e.len() <= MAX_VALUE, "{} bytes", e.len());
            assert!(!e.contains('/') && e != "." && e != ".." && !e.chars().any(|c| c.is_control()), "{e}");
            assert!(object_store::path::PathPart::parse(&e).is_ok(), "{e}");
        }
        // Two long values that share their first 100 bytes stay apart.
        let a = enc(&format!("{}a", "x".repeat(200)));
        let b = enc(&format!("{}b", "x".repeat(200)));
        assert_ne!(a, b);
        assert!(a.contains('~'));
        // A cut never splits an escape.
        let e = enc(&"/".repeat(200));
        let before = e.split('~').next().unwrap();
        assert!(before.len() % 3 == 0 && before.chars().collect::<Vec<_>>().chunks(3).all(|c| c == ['%', '2', 'F']), "{e}");
    }

    #[test]
    fn templates_are_checked_when_given() {
        assert!("year=!{timestamp:%Y}/device=!{field:device_id}".parse::<Template>().is_ok());
        assert!("!{partitionKeyFromQuery:x}".parse::<Template>().unwrap_err().contains("!{timestamp:FMT}"));
        assert!("a=!{field:x".parse::<Template>().unwrap_err().contains("not closed"));
        assert!("../!{field:x}".parse::<Template>().unwrap_err().contains(".."));
        assert!("a//!{field:x}".parse::<Template>().is_err());
        assert!("/!{field:x}".parse::<Template>().is_err());
        assert!("a b/!{field:x}".parse::<Template>().unwrap_err().contains("' '"));
        assert!("!{timestamp:%Q}".parse::<Template>().is_err());
        assert!("!{field:}".parse::<Template>().is_err());
    }

    #[test]
    fn a_record_renders_its_partition() {
        let table = SinkTable {
            source: QualifiedName::bare("t"),
            schema: "public".into(),
            name: "t".into(),
            columns: vec![SinkColumn { name: "device_id".into(), ty: ColumnType::text() }, SinkColumn { name: "data".into(), ty: ColumnType::Jsonb }, SinkColumn { name: "n".into(), ty: ColumnType::int(64) }],
            key: vec![],
        };
        let t: Template = "y=!{timestamp:%Y}/m=!{timestamp:%m}/d=!{field:device_id}/s=!{field:data.site.name}-!{field:n}".parse().unwrap();
        let bound = t.bind(&table).unwrap();
        let row = vec![Value::Text("../x".into()), Value::Json(r#"{"site": {"name": "a/b"}}"#.into()), Value::Int(7)];
        let change = Change { table: table.source.clone(), op: Op::Insert { row }, txid: None, commit_time: Some("2026-03-04T05:06:07Z".parse().unwrap()), position: Position::Snapshot };
        let rec = Record::new(&table, &change, String::new());
        let mut out = String::new();
        bound.render(&rec, Utc::now(), &mut out);
        assert_eq!(out, "y=2026/m=03/d=..%2Fx/s=a%2Fb-7");
        let row = vec![Value::Null, Value::Json("{}".into()), Value::Null];
        let change = Change { op: Op::Insert { row }, ..change };
        let rec = Record::new(&table, &change, String::new());
        out.clear();
        bound.render(&rec, Utc::now(), &mut out);
        assert_eq!(out, format!("y=2026/m=03/d={DEFAULT_PARTITION}/s={DEFAULT_PARTITION}-{DEFAULT_PARTITION}"));
        let missing: Template = "!{field:device}".parse().unwrap();
        assert!(missing.bind(&table).err().unwrap().contains("no column device (it has device_id, data, n)"));
        let not_json: Template = "!{field:n.x}".parse().unwrap();
        assert!(not_json.bind(&table).err().unwrap().contains("not JSON"));
    }
}
