//! `--infer N`: the records' table read off the first N records, for a
//! stream that comes without a `--schema`.
//!
//! Columns are the fields of the N records (JSON objects; CSV files by
//! their header line), in the order they are first seen, all nullable,
//! no key. A column's type is the narrowest that holds every value seen:
//!
//! - JSON numbers without fraction or exponent: `bigint` (the first N
//!   seldom show how far a counter goes: a 32-bit column would reject
//!   records as soon as one passes 2^31), past 64 bits `numeric`;
//! - numbers with a fraction: `numeric(38, S)`, S the most fraction digits
//!   seen (wider precision when the digits need it), so every file of the
//!   stream has the same exact DECIMAL type;
//! - `true`/`false`: `boolean`;
//! - a string that is an RFC 3339 time with an offset: `timestamptz`;
//!   without one: `timestamp` (precision 9 when a value has nanoseconds);
//! - objects and arrays: `jsonb`; a field that is JSON in one record and
//!   anything else in another stays `jsonb`, which holds every JSON value
//!   as written;
//! - anything else, a field whose values disagree (a number and a string,
//!   a time with and without offset), and a field null in all N: `text`.
//!
//! The table is printed as a CREATE TABLE and written to the state
//! directory as [`FILE_NAME`]; a rerun with the same state directory
//! reads it back instead of inferring again (so a restart after a crash
//! writes the same table), and any run can pass it as `--schema`.
//! Records after the first N are read into that table like any
//! `--schema` table: a record that does not fit is rejected with the
//! reason (`--on-error log` writes it to the rejects file and goes on).
//!
//! The first N records are read by opening the source before the run
//! and are then handed to the run itself ([`take_peeked`], called by
//! `records::open`), so a source that forgets what it delivered (SQS,
//! MQTT) loses nothing and a replayable one is not read twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::shape::{RecordFormat, RecordShape};
use super::{OpenOptions, Record, RecordBatch, RecordSource};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::sink::BoxFuture;

/// The inferred CREATE TABLE, in the task's state directory.
pub const FILE_NAME: &str = "inferred-schema.sql";
/// PostgreSQL's limit; a stream with more distinct fields than this is
/// not a table.
const MAX_COLUMNS: usize = 1600;
/// Digits a Parquet DECIMAL holds at most (DECIMAL256).
const MAX_PRECISION: usize = 76;

/// What one field's values allow, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only nulls so far.
    Unknown,
    Bool,
    BigInt,
    Numeric,
    Timestamp,
    TimestampTz,
    Json,
    Text,
}

impl Kind {
    /// The kind that holds values of both.
    fn join(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Unknown, x) | (x, Unknown) => x,
            (BigInt, Numeric) | (Numeric, BigInt) => Numeric,
            (Json, _) | (_, Json) => Json,
            _ => Text,
        }
    }
}

#[derive(Debug)]
struct Guess {
    name: String,
    kind: Kind,
    /// Most integer and fraction digits of the numbers seen.
    int_digits: usize,
    scale: usize,
    nanos: bool,
}

/// The table the records seen so far describe.
#[derive(Debug)]
pub struct Inference {
    columns: Vec<Guess>,
    by_name: HashMap<String, usize>,
    /// Values are text forms (CSV files read by their header): `"12"` is a number.
    text_forms: bool,
    pub records: usize,
    /// Records that were not JSON objects, with the first reason.
    pub unreadable: usize,
    pub first_unreadable: Option<String>,
    /// Field names that cannot be column names, left out.
    pub left_out: Vec<String>,
}

impl Inference {
    pub fn new(format: RecordFormat) -> std::result::Result<Inference, String> {
        let text_forms = match format {
            RecordFormat::Json => false,
            RecordFormat::Fields | RecordFormat::Parquet => true,
            RecordFormat::Csv => return Err("--infer names columns from a CSV header line, which a stream's CSV records have not; read CSV files (file:// or s3://, with their header) or give --schema".into()),
            RecordFormat::Dms | RecordFormat::Debezium => return Err("change envelopes (--record-format dms|debezium) name their tables; give those tables with --schema FILE instead of --infer".into()),
            RecordFormat::Text | RecordFormat::Bytes => return Err("--infer reads fields of JSON objects (or CSV files' header); with --record-format text or bytes a record has no fields: leave --infer out for the default layout".into()),
        };
        Ok(Inference { columns: Vec::new(), by_name: HashMap::new(), text_forms, records: 0, unreadable: 0, first_unreadable: None, left_out: Vec::new() })
    }

    /// Takes one record's payload into the guess.
    pub fn add(&mut self, data: &[u8]) {
        let fields = match ordered_fields(data) {
            Ok(f) => f,
            Err(why) => {
                self.unreadable += 1;
                self.first_unreadable.get_or_insert(why);
                return;
            }
        };
        self.records += 1;
        for (name, raw) in fields {
            let i = match self.by_name.get(&name) {
                Some(&i) => i,
                None => {
                    if name.is_empty() || name.chars().any(char::is_control) {
                        if !self.left_out.contains(&name) {
                            self.left_out.push(name);
                        }
                        continue;
                    }
                    self.by_name.insert(name.clone(), self.columns.len());
                    self.columns.push(Guess { name, kind: Kind::Unknown, int_digits: 0, scale: 0, nanos: false });
                    self.columns.len() - 1
                }
            };
            let g = &mut self.columns[i];
            let kind = value_kind(raw.get().trim(), self.text_forms, g);
            g.kind = g.kind.join(kind);
        }
    }

    /// The table as a PostgreSQL CREATE TABLE.
    pub fn create_table(&self, name: &str) -> std::result::Result<String, String> {
        if self.records + self.unreadable == 0 {
            return Err("the source has no records to infer the table from".into());
        }
        if self.columns.is_empty() {
            return Err(match &self.first_unreadable {
                Some(why) => format!("none of the {} record(s) read is a JSON object with fields (the first: {why})", self.unreadable),
                None => format!("the {} record(s) read have no fields", self.records),
            });
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(format!("the records have {} distinct fields; a table holds at most {MAX_COLUMNS}", self.columns.len()));
        }
        let q = |s: &str| crate::schema::naming::quote_ident(Dialect::Postgres, s);
        let mut sql = format!("CREATE TABLE {} (\n", q(name));
        for (n, g) in self.columns.iter().enumerate() {
            let ty = match g.kind {
                Kind::Unknown | Kind::Text => "text".to_string(),
                Kind::Bool => "boolean".into(),
                Kind::BigInt => "bigint".into(),
                Kind::Numeric if g.int_digits + g.scale > MAX_PRECISION => "text".into(),
                Kind::Numeric => format!("numeric({}, {})", (g.int_digits + g.scale).max(38), g.scale),
                Kind::Timestamp => format!("timestamp({})", if g.nanos { 9 } else { 6 }),
                Kind::TimestampTz => format!("timestamptz({})", if g.nanos { 9 } else { 6 }),
                Kind::Json => "jsonb".into(),
            };
            sql.push_str(&format!("  {} {ty}{}\n", q(&g.name), if n + 1 < self.columns.len() { "," } else { "" }));
        }
        sql.push_str(");\n");
        Ok(sql)
    }
}

/// A JSON object's fields in the order they are written.
fn ordered_fields(data: &[u8]) -> std::result::Result<Vec<(String, &RawValue)>, String> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let fields = (&mut de).deserialize_map(Fields).map_err(|e| format!("not a JSON object: {e}"))?;
    de.end().map_err(|e| format!("not a JSON object: {e}"))?;
    Ok(fields)
}

/// The kind of one JSON value (`raw`, its text), noting digits and
/// fractions of seconds in `g`.
fn value_kind(raw: &str, text_forms: bool, g: &mut Guess) -> Kind {
    match raw.as_bytes().first() {
        None => Kind::Unknown,
        Some(b'n') if raw == "null" => Kind::Unknown,
        Some(b't' | b'f') if raw == "true" || raw == "false" => Kind::Bool,
        Some(b'{' | b'[') => Kind::Json,
        Some(b'"') => match serde_json::from_str::<String>(raw) {
            Ok(s) if text_forms => text_kind(&s, g),
            Ok(s) => time_kind(&s, g).unwrap_or(Kind::Text),
            Err(_) => Kind::Text,
        },
        _ => number_kind(raw, g).unwrap_or(Kind::Text),
    }
}

/// The kind of a value's text form (a CSV field).
fn text_kind(s: &str, g: &mut Guess) -> Kind {
    match s {
        "" => Kind::Unknown,
        "true" | "false" => Kind::Bool,
        _ if (s.starts_with('{') || s.starts_with('[')) && serde_json::from_str::<&RawValue>(s).is_ok() => Kind::Json,
        _ => number_kind(s, g).or_else(|| time_kind(s, g)).unwrap_or(Kind::Text),
    }
}

/// `-?digits[.digits]`, written as JSON writes numbers (no leading zero,
/// no `+`, no exponent: those read back as text, exactly as written).
fn number_kind(s: &str, g: &mut Guess) -> Option<Kind> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (int.len() > 1 && int.starts_with('0')) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    g.int_digits = g.int_digits.max(int.len());
    match frac {
        Some(f) => {
            g.scale = g.scale.max(f.len());
            Some(Kind::Numeric)
        }
        None if s.parse::<i64>().is_ok() => Some(Kind::BigInt),
        None => Some(Kind::Numeric),
    }
}

/// An RFC 3339 date and time (`T` or a space between), with an offset
/// or without; a bare date is not one.
fn time_kind(s: &str, g: &mut Guess) -> Option<Kind> {
    let b = s.as_bytes();
    let shaped = b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b't' | b' ') && b[13] == b':' && b[16] == b':';
    if !shaped {
        return None;
    }
    // Judged by the decoder that reads the records into the table.
    let with_zone = crate::codec::pgtext::decode(b, &crate::model::ColumnType::Timestamp { precision: Some(9), tz: true }).is_ok();
    let without = !with_zone && crate::codec::pgtext::decode(b, &crate::model::ColumnType::Timestamp { precision: Some(9), tz: false }).is_ok();
    if !with_zone && !without {
        return None;
    }
    let fraction = s[19..].strip_prefix('.').map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
    g.nanos |= fraction > 6;
    Some(if with_zone { Kind::TimestampTz } else { Kind::Timestamp })
}

/// The first records a run's source delivered, read before the run to
/// infer its table, and the source itself, waiting for the run.
struct Peeked {
    endpoint: String,
    from: std::collections::BTreeMap<String, String>,
    source: Box<dyn RecordSource>,
    batches: VecDeque<RecordBatch>,
}

static PEEKED: Mutex<Option<Peeked>> = Mutex::new(None);

/// The source the inference opened for `ep`, with the records it read
/// put back in front, if it was opened at the same offsets as `opts`
/// asks (else it is dropped: what it read is read again from the source).
pub fn take_peeked(ep: &Endpoint, opts: &OpenOptions) -> Option<Box<dyn RecordSource>> {
    let peeked = PEEKED.lock().ok()?.take()?;
    (peeked.endpoint == ep.to_string() && peeked.from == opts.from).then(|| Box::new(Replay { batches: peeked.batches, inner: peeked.source }) as Box<dyn RecordSource>)
}

/// A source whose first batches were already read.
struct Replay {
    batches: VecDeque<RecordBatch>,
    inner: Box<dyn RecordSource>,
}

impl RecordSource for Replay {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        match self.batches.pop_front() {
            Some(b) => Box::pin(async move { Ok(Some(b)) }),
            None => self.inner.next(),
        }
    }

    fn acknowledge<'a>(&'a mut self, offsets: &'a std::collections::BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        self.inner.acknowledge(offsets)
    }

    fn next_is_cancel_safe(&self) -> bool {
        self.inner.next_is_cancel_safe()
    }

    fn describe(&self, r: &Record) -> String {
        self.inner.describe(r)
    }

    fn table_of(&self, r: &Record) -> Option<(Option<String>, String)> {
        self.inner.table_of(r)
    }

    fn names_its_table(&self, r: &Record) -> bool {
        self.inner.names_its_table(r)
    }
}

/// The records' table for `--infer n`: the one an earlier run with this
/// state directory inferred, or one read off the first `n` records of
/// `ep` (fewer if a bounded source ends or a stream pauses first).
pub async fn shape(ep: &Endpoint, n: usize, table: &str, opts: OpenOptions) -> Result<RecordShape> {
    let format = opts.format;
    let path = opts.state_dir.join(FILE_NAME);
    if path.exists() {
        tracing::info!("--infer: using the table an earlier run inferred, {} (delete it to infer again)", path.display());
        return RecordShape::from_schema_file(&path, format);
    }
    if n == 0 {
        return Err(Error::usage("--infer 0 reads no record; give how many records to infer the table from, e.g. --infer 1000"));
    }
    let mut guess = Inference::new(format).map_err(Error::usage)?;
    let from = opts.from.clone();
    let follow = opts.follow;
    let mut source = super::open(ep, opts).await?;
    let mut batches = VecDeque::new();
    let mut waiting_said = false;
    while guess.records + guess.unreadable < n {
        let next = tokio::select! {
            b = source.next() => b?,
            _ = crate::util::interrupt::requested() => return Err(Error::Interrupted),
        };
        let Some(batch) = next else { break };
        if batch.records.is_empty() {
            if guess.records + guess.unreadable > 0 {
                // The stream paused: infer from what came.
                batches.push_back(batch);
                break;
            }
            if follow && !waiting_said {
                tracing::info!("--infer: waiting for records of {ep} to infer the table from");
                waiting_said = true;
            }
        }
        for r in batch.records.iter().take(n - guess.records - guess.unreadable) {
            guess.add(&r.data);
        }
        batches.push_back(batch);
    }
    let sql = guess.create_table(table).map_err(|why| Error::usage(format!("--infer: {why}")).with_hint("give the table with --schema FILE (a CREATE TABLE)"))?;
    for name in &guess.left_out {
        tracing::warn!("--infer: field {name:?} cannot be a column name (empty or with control characters); its values are left out");
    }
    tracing::info!("--infer: the table read off the first {} record(s) of {ep} (written to {}; pass it as --schema to get this table again):\n{sql}", guess.records + guess.unreadable, path.display());
    crate::util::fs::write_durably(&path, sql.as_bytes())?;
    let shape = RecordShape::from_schema_file(&path, format)?;
    if let Ok(mut slot) = PEEKED.lock() {
        *slot = Some(Peeked { endpoint: ep.to_string(), from, source, batches });
    }
    Ok(shape)
}

/// Infers the CREATE TABLE of `records` (tests, and `shape`'s core).
pub fn create_table_of(records: &[&[u8]], format: RecordFormat, table: &str) -> std::result::Result<String, String> {
    let mut guess = Inference::new(format)?;
    for r in records {
        guess.add(r);
    }
    guess.create_table(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(lines: &[&str]) -> String {
        let records: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        create_table_of(&records, RecordFormat::Json, "events").unwrap()
    }

    #[test]
    fn types_widen_as_records_disagree() {
        let sql = infer(&[
            r#"{"id": 1, "amount": 12.50, "at": "2026-12-01T10:00:00+02:00", "local": "2026-12-01 10:00:00", "ok": true, "tags": ["a"], "note": "x", "gone": null, "mixed": 1}"#,
            r#"{"id": 9223372036854775807, "amount": 3, "at": "2026-12-01T10:00:00.123456789Z", "extra": {"b": 1}, "mixed": "one", "tags": "solo", "big": 123456789012345678901234567890}"#,
        ]);
        assert_eq!(
            sql,
            "CREATE TABLE events (\n  id bigint,\n  amount numeric(38, 2),\n  at timestamptz(9),\n  local timestamp(6),\n  ok boolean,\n  tags jsonb,\n  note text,\n  gone text,\n  mixed text,\n  extra jsonb,\n  big numeric(38, 0)\n);\n"
        );
    }

    #[test]
    fn the_inferred_table_reads_the_records_it_came_from() {
        let lines = [r#"{"id": 1, "amount": 0.000000001, "at": "2026-12-01T10:00:00Z", "Weird \"name\"": "q"}"#, r#"{"id": -5, "amount": -12345678901234567890, "at": null}"#];
        let sql = infer(&lines);
        assert!(sql.contains("amount numeric(38, 9)") && sql.contains("\"Weird \"\"name\"\"\" text"), "{sql}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sql");
        std::fs::write(&path, &sql).unwrap();
        let shape = RecordShape::from_schema_file(&path, RecordFormat::Json).unwrap();
        for l in lines {
            let r = Record { shard: "0".into(), offset: "0".into(), stream: "s".into(), key: None, time: None, data: l.as_bytes().to_vec() };
            let row = shape.row(&r).unwrap();
            assert_eq!(row.len(), 4);
        }
        let r = Record { shard: "0".into(), offset: "0".into(), stream: "s".into(), key: None, time: None, data: lines[1].as_bytes().to_vec() };
        assert_eq!(shape.row(&r).unwrap()[1], crate::model::Value::Decimal("-12345678901234567890".into()));
    }

    #[test]
    fn csv_text_forms_are_read_for_numbers_and_times_but_keep_leading_zeros() {
        let records: Vec<&[u8]> = vec![br#"{"zip": "00501", "n": "12", "d": "1.5", "t": "2026-01-01T00:00:00Z", "b": "true", "j": "{\"a\": 1}", "empty": null, "day": "2026-01-01"}"#];
        let sql = create_table_of(&records, RecordFormat::Fields, "c").unwrap();
        assert_eq!(sql, "CREATE TABLE c (\n  zip text,\n  n bigint,\n  d numeric(38, 1),\n  t timestamptz(6),\n  b boolean,\n  j jsonb,\n  empty text,\n  day text\n);\n");
    }

    #[test]
    fn what_cannot_be_inferred_says_why() {
        assert!(create_table_of(&[b"not json"], RecordFormat::Json, "t").unwrap_err().contains("not a JSON object"));
        assert!(create_table_of(&[b"{}"], RecordFormat::Json, "t").unwrap_err().contains("no fields"));
        assert!(create_table_of(&[], RecordFormat::Json, "t").unwrap_err().contains("no records"));
        assert!(Inference::new(RecordFormat::Csv).unwrap_err().contains("header"));
        let mut g = Inference::new(RecordFormat::Json).unwrap();
        g.add(b"{\"\": 1, \"a\\u0000b\": 2, \"ok\": 3}");
        assert_eq!(g.left_out.len(), 2);
        assert_eq!(g.create_table("t").unwrap(), "CREATE TABLE t (\n  ok bigint\n);\n");
    }
}
