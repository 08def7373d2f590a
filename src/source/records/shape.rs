//! What a record becomes on the target: a row of one table.
//!
//! Without a table definition, every record lands in the default layout:
//! where it came from (`stream`, `shard`, `offset`), its `key`, its `time`
//! and its payload as `data` (text, bytes or JSON, by `--record-format`).
//! `(shard, offset)` is the primary key, so a record delivered twice
//! after a crash lands once on a database target.
//!
//! With a table definition (`--schema FILE`, a CREATE TABLE in any
//! dialect barge reads), each column is filled from the JSON field of
//! the same name (`--record-format json`) or from the CSV field in the
//! same place (`--record-format csv`); columns named `_stream`, `_shard`,
//! `_offset`, `_key` and `_time` take the record's own metadata instead.
//! Values are read by the column's type, the way PostgreSQL reads text:
//! decimals keep every digit, times keep their zone.

use std::collections::HashMap;
use std::path::Path;

use serde_json::value::RawValue;

use super::Record;
use crate::codec::pgtext;
use crate::error::{Error, Result};
use crate::model::{Column, ColumnType, Dialect, Key, LobSize, QualifiedName, Table, TextAttrs, Value};

/// How a record's payload is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordFormat {
    /// UTF-8 text, one record per message or line
    Text,
    /// Any bytes (the default layout's `data` is binary)
    Bytes,
    /// A JSON object per record (JSON lines for files)
    Json,
    /// A CSV line per record, fields in the order of --schema's columns
    Csv,
    /// Parquet files (file:// and s3:// sources), columns by name
    Parquet,
    /// A JSON object of column name to the value's text form, as
    /// PostgreSQL writes it (files sources turn CSV rows read by their
    /// header, and Parquet rows, into these; not a flag value)
    Fields,
    /// A change in DMS's stream envelope (`data`, `before-image`,
    /// `metadata` with the operation and table), as barge's Kinesis and
    /// Kafka targets write it: applied to its table by key
    Dms,
    /// A change in Debezium's envelope (`before`, `after`, `op`, `source`
    /// with the table), as barge's `--envelope debezium` writes it:
    /// applied to its table by key
    Debezium,
}

impl RecordFormat {
    /// Whether each record is a change of a table it names (an envelope),
    /// rather than a row.
    pub fn is_envelope(self) -> bool {
        matches!(self, RecordFormat::Dms | RecordFormat::Debezium)
    }
}

/// Where one column's value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Stream,
    Shard,
    Offset,
    Key,
    Time,
    /// The whole payload.
    Data,
    /// A JSON field by name.
    Field(String),
    /// A CSV field by place.
    Place(usize),
}

/// The table records land in, and how each of its columns is filled.
#[derive(Debug, Clone)]
pub struct RecordShape {
    pub table: Table,
    format: RecordFormat,
    sources: Vec<Source>,
    /// (file, column) pairs already named as missing from a file.
    missing_named: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

/// Why one record could not become a row (it goes to the rejects file).
pub type Rejected = String;

fn text_type() -> ColumnType {
    ColumnType::Text { size: LobSize::Long, text: TextAttrs::default() }
}

fn column(name: &str, ty: ColumnType, nullable: bool) -> Column {
    let source_type = match &ty {
        ColumnType::Varchar { .. } => "varchar",
        ColumnType::Timestamp { .. } => "timestamptz",
        ColumnType::Blob { .. } => "bytea",
        ColumnType::Jsonb => "jsonb",
        _ => "text",
    };
    let mut c = Column::new(name, ty, source_type);
    c.nullable = nullable;
    c
}

impl RecordShape {
    /// The default layout, in table `name`.
    pub fn default_layout(name: &str, format: RecordFormat) -> Result<RecordShape> {
        let data = match format {
            RecordFormat::Text => text_type(),
            RecordFormat::Bytes => ColumnType::Blob { size: LobSize::Long },
            RecordFormat::Json => ColumnType::Jsonb,
            RecordFormat::Csv | RecordFormat::Fields => return Err(Error::usage("--record-format csv needs --schema FILE: a CREATE TABLE whose columns name the CSV fields")),
            RecordFormat::Parquet => return Err(Error::usage("--record-format parquet needs --schema FILE: a CREATE TABLE whose columns name the Parquet columns")),
            RecordFormat::Dms | RecordFormat::Debezium => {
                return Err(Error::usage("--record-format dms and debezium apply each change to its table, by key; they need --schema FILE with those tables' CREATE TABLE statements")
                    .with_hint("write the source's DDL to a file (pg_dump --schema-only, mysqldump --no-data, or sqlite3 .schema) and pass it as --schema FILE"))
            }
        };
        let mut t = Table::new(QualifiedName::bare(name));
        // Bounded lengths: MySQL cannot key on unbounded text.
        t.columns = vec![
            column("stream", text_type(), false),
            column("shard", ColumnType::Varchar { length: Some(255), text: TextAttrs::default() }, false),
            column("offset", ColumnType::Varchar { length: Some(64), text: TextAttrs::default() }, false),
            column("key", text_type(), true),
            column("time", ColumnType::Timestamp { precision: Some(6), tz: true }, true),
            column("data", data, false),
        ];
        t.primary_key = Some(Key { name: None, columns: vec!["shard".into(), "offset".into()] });
        let sources = vec![Source::Stream, Source::Shard, Source::Offset, Source::Key, Source::Time, Source::Data];
        Ok(RecordShape { table: t, format, sources, missing_named: Default::default() })
    }

    /// The table a CREATE TABLE in `path` defines.
    pub fn from_schema_file(path: &Path, format: RecordFormat) -> Result<RecordShape> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::usage(format!("--schema {}: {e}", path.display())))?;
        let table = read_one_table(&text).map_err(|why| Error::usage(format!("--schema {}: {why}", path.display())).with_hint("give one CREATE TABLE statement (PostgreSQL, MySQL or SQLite syntax)"))?;
        RecordShape::for_table(table, format).map_err(|e| Error::usage(format!("--schema {}: {e}", path.display())))
    }

    /// The shape of a table read earlier from `--schema`.
    pub fn for_table_checked(table: Table, format: RecordFormat) -> Result<RecordShape> {
        RecordShape::for_table(table, format).map_err(Error::usage)
    }

    fn for_table(table: Table, format: RecordFormat) -> std::result::Result<RecordShape, String> {
        let mut place = 0;
        let mut sources = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            let s = match c.name.to_ascii_lowercase().as_str() {
                "_stream" => Source::Stream,
                "_shard" => Source::Shard,
                "_offset" => Source::Offset,
                "_key" => Source::Key,
                "_time" => Source::Time,
                _ => match format {
                    RecordFormat::Json | RecordFormat::Parquet | RecordFormat::Fields | RecordFormat::Dms | RecordFormat::Debezium => Source::Field(c.name.clone()),
                    RecordFormat::Csv => {
                        place += 1;
                        Source::Place(place - 1)
                    }
                    RecordFormat::Text | RecordFormat::Bytes => Source::Data,
                },
            };
            sources.push(s);
        }
        let data_columns = sources.iter().filter(|s| **s == Source::Data).count();
        if matches!(format, RecordFormat::Text | RecordFormat::Bytes) && data_columns != 1 {
            return Err(format!(
                "with --record-format {} the table takes the whole record in one column, besides _stream, _shard, _offset, _key and _time; {} has {data_columns}",
                if format == RecordFormat::Text { "text" } else { "bytes" },
                table.name
            ));
        }
        Ok(RecordShape { table, format, sources, missing_named: Default::default() })
    }

    /// The row `r` becomes, or why it cannot.
    pub fn row(&self, r: &Record) -> std::result::Result<Vec<Value>, Rejected> {
        let fields = self.fields(&r.data)?;
        Ok(self.fill(r, &fields, Absent::Null)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect())
    }

    /// The fields of a payload, as this shape reads them.
    pub fn fields<'a>(&self, data: &'a [u8]) -> std::result::Result<Fields<'a>, Rejected> {
        Ok(match self.format {
            RecordFormat::Json | RecordFormat::Parquet | RecordFormat::Fields if self.sources.iter().any(|s| matches!(s, Source::Field(_))) => Fields::Json(json_fields(data)?),
            RecordFormat::Csv => Fields::Csv(csv_fields(data)?),
            _ => Fields::None,
        })
    }

    /// The values of the table's columns from `fields` (and `r`'s
    /// metadata). A field the record does not have is NULL with
    /// [`Absent::Null`] (NOT NULL columns checked), or `None` with
    /// [`Absent::Unknown`] (an update's after image: the column keeps its
    /// value; a delete's row, of which only the key counts).
    pub fn fill(&self, r: &Record, fields: &Fields, absent: Absent) -> std::result::Result<Vec<Option<Value>>, Rejected> {
        let text_forms = matches!(self.format, RecordFormat::Parquet | RecordFormat::Fields);
        let mut row = Vec::with_capacity(self.sources.len());
        for (s, c) in self.sources.iter().zip(&self.table.columns) {
            let v = match s {
                Source::Stream => decode_text(r.stream.as_bytes(), c)?,
                Source::Shard => decode_text(r.shard.as_bytes(), c)?,
                Source::Offset => decode_text(r.offset.as_bytes(), c)?,
                Source::Key => match &r.key {
                    None => Value::Null,
                    Some(k) => decode_bytes(k, c)?,
                },
                Source::Time => match r.time {
                    None => Value::Null,
                    Some(t) => Value::TimestampTz(t),
                },
                Source::Data => decode_bytes(&r.data, c)?,
                Source::Field(name) => match fields {
                    Fields::Json(map) => match json_value(map, name, c, text_forms)? {
                        Some(v) => v,
                        None if absent == Absent::Unknown => {
                            row.push(None);
                            continue;
                        }
                        // A CSV header or a Parquet file names every column
                        // it has. One the table has and a file lacks is NULL
                        // (files written before the column was added), and
                        // named once per file: it may be a typo.
                        None => {
                            if text_forms && self.missing_named.lock().unwrap_or_else(|e| e.into_inner()).insert((r.stream.clone(), name.clone())) {
                                let mut has: Vec<&str> = map.keys().map(String::as_str).collect();
                                has.sort_unstable();
                                tracing::warn!("{}: no column {name} (its columns: {}): its rows get NULL there; if the name differs, fix it in the file or in --schema", r.stream, has.join(", "));
                            }
                            Value::Null
                        }
                    },
                    _ => Value::Null,
                },
                Source::Place(i) => match fields {
                    Fields::Csv(f) => match f.get(*i) {
                        // An empty field is NULL; `""` is an empty string
                        // where the column holds text.
                        Some((text, quoted)) if text.is_empty() && (!quoted || !holds_text(c)) => Value::Null,
                        Some((text, _)) => decode_text(text.as_bytes(), c)?,
                        None => return Err(format!("the CSV line has {} fields; column {} is field {}", f.len(), c.name, i + 1)),
                    },
                    _ => Value::Null,
                },
            };
            // A change's image (an update, a delete's key) may hold NULL
            // for columns it does not carry; the target checks what it sets.
            if v == Value::Null && !c.nullable && absent == Absent::Null {
                return Err(format!("column {} is NOT NULL and the record has no value for it", c.name));
            }
            row.push(Some(v));
        }
        Ok(row)
    }
}

/// What a field the record lacks means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// NULL (a new row).
    Null,
    /// Not sent: the column keeps its value (an update).
    Unknown,
}

/// A payload's fields, parsed once.
pub enum Fields<'a> {
    None,
    Json(HashMap<String, &'a RawValue>),
    /// Each field's text, and whether it was quoted.
    Csv(Vec<(String, bool)>),
}

impl Fields<'_> {
    /// The text of field `name` (JSON: a string), for the `Op` column of
    /// CDC files.
    pub fn text(&self, name: &str) -> Option<String> {
        match self {
            Fields::Json(map) => map.get(name).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok()),
            _ => None,
        }
    }
}

/// A JSON object's fields, each kept as its raw text.
pub fn json_fields(data: &[u8]) -> std::result::Result<HashMap<String, &RawValue>, Rejected> {
    serde_json::from_slice(data).map_err(|e| format!("not a JSON object: {e}"))
}

fn csv_fields(data: &[u8]) -> std::result::Result<Vec<(String, bool)>, Rejected> {
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line);
    let mut rec = csv::StringRecord::new();
    match reader.read_record(&mut rec) {
        Ok(true) => Ok(rec.iter().map(str::to_string).zip(quoted_fields(line)).collect()),
        Ok(false) => Ok(Vec::new()),
        Err(e) => Err(format!("not a CSV line: {e}")),
    }
}

/// Whether each field of a CSV record was written quoted: the csv crate
/// reads `""` and an empty field alike, and barge's CSV (as RFC 4180
/// writers that keep them apart) writes NULL as an empty field and an
/// empty string as `""`.
pub fn quoted_fields(raw: &[u8]) -> Vec<bool> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let quoted = raw.get(i) == Some(&b'"');
        out.push(quoted);
        if quoted {
            i += 1;
            loop {
                match raw.get(i) {
                    None => return out,
                    Some(b'"') if raw.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        }
        while let Some(&b) = raw.get(i) {
            if matches!(b, b',' | b'\r' | b'\n') {
                break;
            }
            i += 1;
        }
        if raw.get(i) != Some(&b',') {
            return out;
        }
        i += 1;
    }
}

/// Whether a column's values are text, where an empty string is a value
/// (elsewhere an empty field can only be NULL).
fn holds_text(c: &Column) -> bool {
    matches!(c.ty, ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. } | ColumnType::Enum { .. } | ColumnType::Set { .. } | ColumnType::Xml)
}

/// A JSON field's value as column `c` holds it: JSON columns keep the
/// JSON text; scalars are read as text in the column's type, numbers
/// from their digits as written (never through a float). With `text_forms`
/// (a [`RecordFormat::Fields`] object) a string is the value's text form,
/// also for a JSON column: its content is the JSON.
fn json_value(map: &HashMap<String, &RawValue>, name: &str, c: &Column, text_forms: bool) -> std::result::Result<Option<Value>, Rejected> {
    let raw = map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v));
    let Some(raw) = raw else { return Ok(None) };
    json_scalar(raw.get().trim(), name, c, text_forms).map(Some)
}

fn json_scalar(text: &str, name: &str, c: &Column, text_forms: bool) -> std::result::Result<Value, Rejected> {
    if text == "null" {
        return Ok(Value::Null);
    }
    // Arrays (and SETs) as barge writes them to JSON: each element read by
    // the element type, numbers from their digits.
    if !text_forms && text.starts_with('[') {
        match c.ty {
            ColumnType::Array { .. } => return crate::codec::json::read_array(text, &c.ty, &|s, ty| pgtext::decode(s.as_bytes(), ty)).map_err(|e| format!("field {name}: {e}")),
            ColumnType::Set { .. } => return serde_json::from_str::<Vec<String>>(text).map(Value::Set).map_err(|e| format!("field {name}: a SET is a JSON array of strings: {e}")),
            _ => {}
        }
    }
    if matches!(c.ty, ColumnType::Json | ColumnType::Jsonb) {
        if text_forms && text.starts_with('"') {
            let inner = serde_json::from_str::<String>(text).map_err(|e| format!("field {name}: {e}"))?;
            serde_json::from_str::<&RawValue>(&inner).map_err(|e| format!("field {name}: not JSON: {e}"))?;
            return Ok(Value::Json(inner));
        }
        return Ok(Value::Json(text.to_string()));
    }
    let scalar: std::borrow::Cow<str> = match text.as_bytes()[0] {
        b'"' => serde_json::from_str::<String>(text).map_err(|e| format!("field {name}: {e}"))?.into(),
        // Objects and arrays go whole into text columns, as JSON.
        b'{' | b'[' if !matches!(c.ty, ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. }) => {
            return Err(format!("field {name} is a JSON {} and column {} is {}; declare it json (or text)", if text.starts_with('{') { "object" } else { "array" }, c.name, c.source_type))
        }
        _ => text.into(),
    };
    // A CSV file's quoted empty field, in a column that holds no text.
    if text_forms && scalar.is_empty() && !holds_text(c) {
        return Ok(Value::Null);
    }
    // An array's text form in a CSV or Parquet file is its JSON, as
    // barge's file targets write it.
    if scalar.starts_with('[') && matches!(c.ty, ColumnType::Array { .. }) {
        return crate::codec::json::read_array(&scalar, &c.ty, &|s, ty| pgtext::decode(s.as_bytes(), ty)).map_err(|e| format!("field {name}: {e}"));
    }
    pgtext::decode(scalar.as_bytes(), &c.ty).map_err(|e| format!("field {name}: {e}"))
}

fn decode_text(text: &[u8], c: &Column) -> std::result::Result<Value, Rejected> {
    pgtext::decode(text, &c.ty).map_err(|e| format!("column {}: {e}", c.name))
}

/// A payload or key into column `c`: bytes as they are for a binary
/// column, else read as text (UTF-8 required).
fn decode_bytes(b: &[u8], c: &Column) -> std::result::Result<Value, Rejected> {
    match c.ty {
        ColumnType::Binary { .. } | ColumnType::Varbinary { .. } | ColumnType::Blob { .. } => Ok(Value::Bytes(b.to_vec())),
        ColumnType::Json | ColumnType::Jsonb => {
            let s = std::str::from_utf8(b).map_err(|_| format!("column {}: the record is not UTF-8 text", c.name))?;
            serde_json::from_str::<&RawValue>(s).map_err(|e| format!("column {}: not JSON: {e}", c.name))?;
            Ok(Value::Json(s.trim_end_matches(['\n', '\r']).to_string()))
        }
        _ => {
            std::str::from_utf8(b).map_err(|_| format!("column {}: the record is not UTF-8 text; use --record-format bytes", c.name))?;
            decode_text(b, c)
        }
    }
}

/// The one table a script defines, trying each dialect barge reads.
fn read_one_table(text: &str) -> std::result::Result<Table, String> {
    let tables = read_tables(text)?.schema.tables;
    match tables.len() {
        1 => Ok(tables.into_iter().next().expect("one table")),
        n => Err(format!("it defines {n} tables; records land in one")),
    }
}

/// What a `--schema` script defines, read in the first dialect (of
/// PostgreSQL, MySQL, SQLite) in which it defines any table.
pub fn read_tables(text: &str) -> std::result::Result<crate::schema::reader::ReadOutcome, String> {
    for dialect in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
        let read = crate::schema::reader::read_script(text, dialect);
        if !read.schema.tables.is_empty() {
            return Ok(read);
        }
    }
    Err("no CREATE TABLE found".into())
}

/// The tables a `--schema` file defines (records that name their table,
/// change envelopes or files in `schema/table/` folders, land in several),
/// and what else it holds that a record run does not create, for the
/// console.
pub fn tables_from_schema_file(path: &Path) -> Result<(Vec<Table>, Vec<String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::usage(format!("--schema {}: {e}", path.display())))?;
    let read = read_tables(&text).map_err(|why| Error::usage(format!("--schema {}: {why}", path.display())).with_hint("give CREATE TABLE statements (PostgreSQL, MySQL or SQLite syntax)"))?;
    let s = &read.schema;
    let mut left = Vec::new();
    let fks: usize = s.tables.iter().map(|t| t.foreign_keys.len()).sum();
    let checks: usize = s.tables.iter().map(|t| t.checks.len()).sum();
    for (n, what) in [(fks, "foreign key(s)"), (checks, "check constraint(s)"), (s.views.len(), "view(s)"), (s.routines.len(), "function(s), procedure(s) or trigger(s)"), (s.sequences.len(), "sequence(s)")] {
        if n > 0 {
            left.push(format!("{n} {what}"));
        }
    }
    for l in &read.leftovers {
        left.push(format!("line {}: {}", l.line, l.reason));
    }
    Ok((s.tables.clone(), left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &str) -> Record {
        Record { shard: "0".into(), offset: "17".into(), stream: "orders".into(), key: Some(b"k1".to_vec()), time: Some("2026-12-01T10:00:00Z".parse().unwrap()), data: data.as_bytes().to_vec() }
    }

    fn shape(sql: &str, format: RecordFormat) -> RecordShape {
        RecordShape::for_table(read_one_table(sql).unwrap(), format).unwrap()
    }

    #[test]
    fn the_default_layout_keys_on_shard_and_offset() {
        let s = RecordShape::default_layout("orders", RecordFormat::Json).unwrap();
        let row = s.row(&record(r#"{"id": 1}"#)).unwrap();
        assert_eq!(row[1], Value::Text("0".into()));
        assert_eq!(row[2], Value::Text("17".into()));
        assert_eq!(row[3], Value::Text("k1".into()));
        assert_eq!(row[5], Value::Json(r#"{"id": 1}"#.into()));
        assert!(s.row(&record("{not json")).unwrap_err().contains("not JSON"));
        assert!(RecordShape::default_layout("t", RecordFormat::Csv).is_err());
    }

    #[test]
    fn json_fields_fill_columns_by_type_keeping_every_digit() {
        let s = shape(
            "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(30,10), at timestamptz, tags jsonb, note text, _offset text, _key text)",
            RecordFormat::Json,
        );
        let row = s.row(&record(r#"{"id": 7, "amount": 12345678901234567890.0123456789, "at": "2026-12-01T10:00:00+02:00", "tags": ["a", {"b": 1}], "note": {"x": 1}}"#)).unwrap();
        assert_eq!(row[0], Value::Int(7));
        assert_eq!(row[1], Value::Decimal("12345678901234567890.0123456789".into()));
        assert_eq!(row[2], Value::TimestampTz("2026-12-01T08:00:00Z".parse().unwrap()));
        assert_eq!(row[3], Value::Json(r#"["a", {"b": 1}]"#.into()));
        assert_eq!(row[4], Value::Text(r#"{"x": 1}"#.into()));
        assert_eq!(row[5], Value::Text("17".into()));
        assert_eq!(row[6], Value::Text("k1".into()));
        assert!(s.row(&record(r#"{"amount": 1}"#)).unwrap_err().contains("NOT NULL"), "the key is missing");
        assert!(s.row(&record(r#"{"id": "seven"}"#)).unwrap_err().contains("field id"));
    }

    #[test]
    fn csv_fields_fill_columns_in_order() {
        let s = shape("CREATE TABLE m (device varchar(20) NOT NULL, reading decimal(8,3), note text, _shard text)", RecordFormat::Csv);
        let row = s.row(&record("d-1,\"12.500\",\"a, \"\"quoted\"\" note\"\n")).unwrap();
        assert_eq!(row, vec![Value::Text("d-1".into()), Value::Decimal("12.500".into()), Value::Text("a, \"quoted\" note".into()), Value::Text("0".into())]);
        assert!(s.row(&record("d-1")).unwrap_err().contains("2 fields") || s.row(&record("d-1")).unwrap_err().contains("1 fields"));
        // NULL is an empty field, an empty string `""`; a number has no empty string.
        let row = s.row(&record("d-2,\"\",\"\",x\r\n")).unwrap();
        assert_eq!((&row[1], &row[2]), (&Value::Null, &Value::Text(String::new())));
        assert_eq!(s.row(&record("d-3,,,x")).unwrap()[2], Value::Null);
        assert_eq!(quoted_fields(b"a,\"b,\"\"c\",,\"\"\r\n"), vec![false, true, false, true]);
    }

    #[test]
    fn a_schema_file_defines_exactly_one_table() {
        assert!(read_one_table("CREATE TABLE a (x int); CREATE TABLE b (y int);").unwrap_err().contains("2 tables"));
        assert!(read_one_table("SELECT 1;").is_err());
        let (tables, left) = {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("s.sql");
            std::fs::write(&f, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id)); CREATE VIEW v AS SELECT id FROM a;").unwrap();
            tables_from_schema_file(&f).unwrap()
        };
        assert_eq!(tables.len(), 2);
        assert!(left.contains(&"1 foreign key(s)".to_string()) && left.contains(&"1 view(s)".to_string()), "{left:?}");
        let t = read_one_table("CREATE TABLE `m` (`id` int unsigned NOT NULL, `line` text, PRIMARY KEY (`id`)) ENGINE=InnoDB;").unwrap();
        assert_eq!(t.name.name, "m");
        assert!(RecordShape::for_table(t, RecordFormat::Text).unwrap_err().contains("whole record"));
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    /// Every kind of value barge reads from PostgreSQL, written to JSON as
    /// its stream and file targets write it, and read back by the column's
    /// type: the value that comes back is the value that went out.
    #[test]
    fn values_written_as_json_read_back_equal() {
        let cases: &[(&str, &str)] = &[
            ("smallint", "-32768"),
            ("bigint", "9223372036854775807"),
            ("numeric(38,10)", "-1234567890123456789012345678.0123456789"),
            ("numeric", "NaN"),
            ("real", "3.4028235e+38"),
            ("double precision", "-1.5e-300"),
            ("double precision", "Infinity"),
            ("boolean", "t"),
            ("text", "tab\there \"quoted\" \\ back, ünïcode ✓"),
            ("varchar(5)", "abc"),
            ("char(3)", "ab "),
            ("date", "2024-02-29"),
            ("date", "infinity"),
            ("time", "23:59:59.999999"),
            ("timetz", "12:00:00+05:30"),
            ("timestamp", "1999-12-31 23:59:59.123456"),
            ("timestamptz", "2026-03-29 01:30:00+01"),
            ("timestamp", "-infinity"),
            ("interval", "P1Y2M3DT4H5M6.789S"),
            ("interval", "PT-0.000001S"),
            ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            ("bytea", "\\x00ff10"),
            ("json", "{\"a\": [1, 2.50]}"),
            ("jsonb", "{\"a\": [1, 2.50]}"),
            ("integer[]", "{1,NULL,3}"),
            ("text[]", "{\"a,b\",\"c\\\"d\",NULL}"),
            ("numeric[]", "{{1.10,2.20},{3.30,4.40}}"),
            ("bit varying(8)", "1011"),
        ];
        for (ty, text) in cases {
            let table = read_one_table(&format!("CREATE TABLE t (c {ty})")).unwrap();
            let c = &table.columns[0];
            let v = pgtext::decode(text.as_bytes(), &c.ty).unwrap_or_else(|e| panic!("{ty} {text}: {e}"));
            let mut json = String::new();
            crate::codec::json::write_json(&v, &mut json).unwrap();
            let back = json_scalar(&json, "c", c, false).unwrap_or_else(|e| panic!("{ty} {text} as {json}: {e}"));
            assert_eq!(back, v, "{ty} {text} as JSON {json}");
        }
    }
}
