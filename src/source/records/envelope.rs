//! Change envelopes read back: a stream record that says which table
//! changed and how, in the two shapes barge's stream targets write
//! (`sink::shared::envelope`), so `database → stream → barge → database`
//! applies the source's changes rather than storing messages.
//!
//! - DMS: `{"data": {...}, "before-image": {...}, "metadata":
//!   {"operation", "record-type", "schema-name", "table-name",
//!   "timestamp", ...}}`; operations load, insert, update, delete, and the
//!   control record truncate-table.
//! - Debezium: `{"before", "after", "op", "ts_ms", "source": {"schema" or
//!   "db", "table", "ts_ms"}}`, also inside Kafka Connect's
//!   `{"schema": ..., "payload": {...}}`; ops r, c, u, d, t. An empty
//!   record (Kafka's tombstone after a delete) holds no change.
//!
//! Row images stay raw JSON here; the table's shape reads them by column
//! type, so numbers keep their digits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// One change, as the envelope states it.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The table's schema (PostgreSQL) or database (MySQL), where given.
    pub schema: Option<String>,
    pub table: String,
    pub kind: Kind,
    /// The new row (insert, update), or the old one for a DMS delete.
    pub after: Option<HashMap<String, &'a RawValue>>,
    /// The old row, where the source sent it.
    pub before: Option<HashMap<String, &'a RawValue>>,
    /// When the source committed it.
    pub time: Option<DateTime<Utc>>,
}

type Image<'a> = Option<HashMap<String, &'a RawValue>>;

#[derive(Deserialize)]
struct Dms<'a> {
    #[serde(borrow, default)]
    data: Image<'a>,
    #[serde(borrow, default, rename = "before-image")]
    before: Image<'a>,
    metadata: DmsMeta,
}

#[derive(Deserialize)]
struct DmsMeta {
    operation: String,
    #[serde(default, rename = "record-type")]
    record_type: Option<String>,
    #[serde(default, rename = "schema-name")]
    schema: Option<String>,
    #[serde(rename = "table-name")]
    table: String,
    #[serde(default)]
    timestamp: Option<String>,
}

/// A DMS envelope; `Err` says why the record is not one.
pub fn dms(data: &[u8]) -> Result<Envelope<'_>, String> {
    let d: Dms = serde_json::from_slice(data).map_err(|e| format!("not a DMS change envelope ({{\"data\", \"metadata\": {{\"operation\", \"table-name\"}}}}): {e}"))?;
    let m = d.metadata;
    let kind = match (m.record_type.as_deref().unwrap_or("data"), m.operation.as_str()) {
        (_, "truncate-table") => Kind::Truncate,
        ("data", "load" | "insert") => Kind::Insert,
        ("data", "update") => Kind::Update,
        ("data", "delete") => Kind::Delete,
        (kind, op) => {
            return Err(format!(
                "a {kind} record with operation {op}: barge applies inserts, updates, deletes and truncates; a change of the table's definition must be made on the target by hand"
            ))
        }
    };
    let time = m.timestamp.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc));
    Ok(Envelope { schema: m.schema.filter(|s| !s.is_empty()), table: m.table, kind, after: d.data, before: d.before, time })
}

#[derive(Deserialize)]
struct Debezium<'a> {
    #[serde(borrow, default)]
    before: Image<'a>,
    #[serde(borrow, default)]
    after: Image<'a>,
    op: String,
    #[serde(default)]
    ts_ms: Option<i64>,
    source: DebeziumSource,
}

#[derive(Deserialize)]
struct DebeziumSource {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    db: Option<String>,
    table: String,
    #[serde(default)]
    ts_ms: Option<i64>,
}

#[derive(Deserialize)]
struct Connect<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// A Debezium envelope; `Ok(None)` for a tombstone (no payload); `Err`
/// says why the record is not one.
pub fn debezium(data: &[u8]) -> Result<Option<Envelope<'_>>, String> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let what = |e: serde_json::Error| format!("not a Debezium change envelope ({{\"before\", \"after\", \"op\", \"source\": {{\"table\"}}}}): {e}");
    // Kafka Connect's JSON converter with schemas wraps the envelope.
    let text = std::str::from_utf8(data).map_err(|_| "not a Debezium change envelope: not UTF-8 text".to_string())?;
    let inner = match serde_json::from_str::<Connect>(text) {
        Ok(c) => c.payload.get(),
        Err(_) => text,
    };
    if inner.trim() == "null" {
        return Ok(None);
    }
    let d: Debezium = serde_json::from_str(inner).map_err(what)?;
    let kind = match d.op.as_str() {
        "r" | "c" => Kind::Insert,
        "u" => Kind::Update,
        "d" => Kind::Delete,
        "t" => Kind::Truncate,
        op => return Err(format!("Debezium op {op}: barge applies r, c, u, d and t")),
    };
    let (after, before) = match kind {
        // A delete's row is its before image.
        Kind::Delete => (d.before, None),
        _ => (d.after, d.before),
    };
    let ms = d.source.ts_ms.or(d.ts_ms);
    let time = ms.and_then(DateTime::<Utc>::from_timestamp_millis);
    let schema = d.source.schema.or(d.source.db).filter(|s| !s.is_empty());
    Ok(Some(Envelope { schema, table: d.source.table, kind, after, before, time }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dms_operations_and_tables() {
        let e = dms(br#"{"data":{"id":7,"total":1.50},"before-image":{"id":6},"metadata":{"operation":"update","record-type":"data","schema-name":"app","table-name":"orders","timestamp":"2026-01-02T03:04:05.123456Z"}}"#).unwrap();
        assert_eq!((e.kind, e.schema.as_deref(), e.table.as_str()), (Kind::Update, Some("app"), "orders"));
        assert_eq!(e.after.as_ref().unwrap()["total"].get(), "1.50", "digits as written");
        assert_eq!(e.before.as_ref().unwrap()["id"].get(), "6");
        assert_eq!(e.time.unwrap().timestamp_micros() % 1_000_000, 123456);
        let t = dms(br#"{"metadata":{"operation":"truncate-table","record-type":"control","schema-name":"","table-name":"orders"}}"#).unwrap();
        assert_eq!((t.kind, t.schema), (Kind::Truncate, None));
        assert!(dms(br#"{"metadata":{"operation":"drop-table","record-type":"control","table-name":"x"}}"#).unwrap_err().contains("by hand"));
        assert!(dms(br#"{"id": 1}"#).unwrap_err().contains("not a DMS change envelope"));
    }

    #[test]
    fn debezium_ops_wrapped_or_not() {
        let e = debezium(br#"{"before":{"id":1},"after":null,"op":"d","ts_ms":5,"source":{"db":"shop","table":"t","ts_ms":1700000000000}}"#).unwrap().unwrap();
        assert_eq!((e.kind, e.schema.as_deref()), (Kind::Delete, Some("shop")));
        assert_eq!(e.after.unwrap()["id"].get(), "1", "a delete's row is its before image");
        let wrapped = br#"{"schema":{"type":"struct"},"payload":{"before":null,"after":{"id":2},"op":"c","source":{"schema":"public","table":"t"}}}"#;
        let e = debezium(wrapped).unwrap().unwrap();
        assert_eq!((e.kind, e.schema.as_deref()), (Kind::Insert, Some("public")));
        assert!(debezium(b"").unwrap().is_none(), "a tombstone");
        assert!(debezium(br#"{"schema":null,"payload":null}"#).unwrap().is_none());
        assert!(debezium(br#"{"op":"m","source":{"table":"t"}}"#).unwrap_err().contains("op m"));
    }
}
