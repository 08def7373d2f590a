//! Stream message bodies.
//!
//! DMS's (Kinesis and Kafka targets):
//! `{"data": {col: value, ...}, "metadata": {"timestamp", "record-type",
//! "operation", "partition-key-type", "schema-name", "table-name",
//! "transaction-id", "record-id"}}`, plus `"before-image"` on an update whose
//! old row the source sent. `record-id` is barge's deterministic id.
//!
//! Debezium's (Kafka, `--envelope debezium`): `{"before", "after", "op",
//! "ts_ms", "source": {..., "record_id"}}` with op r (snapshot), c, u, d, t.
//!
//! Values are JSON as [`crate::codec::json`] writes them: decimals as JSON
//! numbers with every digit, timestamps ISO 8601. A value the source did not
//! send is left out of the object, never written as null.

use chrono::{DateTime, SecondsFormat, Utc};

use super::format::jsonl::{quoted, write_object};
use super::record::{Record, RecordKind};
use super::{EnvelopeKind, PartitionKey, SinkTable};

/// Column names of a table, JSON-quoted once.
pub struct Names(Vec<String>);

impl Names {
    pub fn of(table: &SinkTable) -> Names {
        Names(table.columns.iter().map(|c| quoted(&c.name)).collect())
    }
}

/// The message body for `rec`; an error is the reason a value cannot be
/// written as JSON.
pub fn body(kind: EnvelopeKind, table: &SinkTable, names: &Names, rec: &Record, partition: PartitionKey, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let mut s = String::with_capacity(256);
    match kind {
        EnvelopeKind::Dms => dms(table, names, rec, partition, now, &mut s)?,
        EnvelopeKind::Debezium => debezium(table, names, rec, now, &mut s)?,
        EnvelopeKind::Raw => return raw_body(table, rec),
    }
    Ok(s.into_bytes())
}

/// The value of column `name` of a record source's default layout.
fn layout_value<'r>(table: &SinkTable, rec: &Record<'r>, name: &str) -> Option<&'r crate::model::Value> {
    let i = table.columns.iter().position(|c| c.name == name)?;
    rec.values.get(i).copied().flatten()
}

/// A record passed through: its payload as it came.
fn raw_body(table: &SinkTable, rec: &Record) -> Result<Vec<u8>, String> {
    use crate::model::Value;
    match layout_value(table, rec, "data") {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        Some(Value::Text(t) | Value::Json(t)) => Ok(t.clone().into_bytes()),
        Some(Value::Null) | None => Err(format!("--envelope raw passes a record source's payload (its data column) through, and {} has none here", table.display())),
        Some(other) => Err(format!("--envelope raw passes payloads through; the data column holds {other:?}")),
    }
}

/// The key a passed-through record keeps: the record's own key, else its
/// shard, so records of one key (or one shard) stay in order.
pub fn raw_key(table: &SinkTable, rec: &Record) -> Option<String> {
    use crate::model::Value;
    ["key", "shard"].iter().find_map(|c| match layout_value(table, rec, c) {
        Some(Value::Text(t)) if !t.is_empty() => Some(t.clone()),
        Some(Value::Bytes(b)) if !b.is_empty() => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    })
}

fn txid(rec: &Record) -> serde_json::Value {
    match &rec.change.txid {
        Some(t) => t.parse::<u64>().map(serde_json::Value::from).unwrap_or_else(|_| serde_json::Value::from(t.clone())),
        None => serde_json::Value::Null,
    }
}

fn dms(table: &SinkTable, names: &Names, rec: &Record, partition: PartitionKey, now: DateTime<Utc>, s: &mut String) -> Result<(), String> {
    s.push_str("{\"data\":");
    write_object(&names.0, &rec.values, s)?;
    if let (RecordKind::Update, Some(before)) = (rec.kind, rec.before) {
        s.push_str(",\"before-image\":");
        let old: Vec<Option<&crate::model::Value>> = before.iter().map(Some).collect();
        write_object(&names.0, &old, s)?;
    }
    let metadata = serde_json::json!({
        "timestamp": rec.change.commit_time.unwrap_or(now).to_rfc3339_opts(SecondsFormat::Micros, true),
        "record-type": if rec.kind == RecordKind::Truncate { "control" } else { "data" },
        "operation": rec.kind.dms_operation(),
        "partition-key-type": partition.name(),
        "schema-name": table.schema,
        "table-name": table.name,
        "transaction-id": txid(rec),
        "record-id": rec.id,
    });
    s.push_str(",\"metadata\":");
    s.push_str(&metadata.to_string());
    s.push('}');
    Ok(())
}

fn debezium(table: &SinkTable, names: &Names, rec: &Record, now: DateTime<Utc>, s: &mut String) -> Result<(), String> {
    s.push_str("{\"before\":");
    match (rec.kind, rec.before) {
        (RecordKind::Update, Some(before)) => {
            let old: Vec<Option<&crate::model::Value>> = before.iter().map(Some).collect();
            write_object(&names.0, &old, s)?;
        }
        (RecordKind::Delete, _) => write_object(&names.0, &rec.values, s)?,
        _ => s.push_str("null"),
    }
    s.push_str(",\"after\":");
    match rec.kind {
        RecordKind::Load | RecordKind::Insert | RecordKind::Update => write_object(&names.0, &rec.values, s)?,
        _ => s.push_str("null"),
    }
    let ts = rec.change.commit_time.unwrap_or(now).timestamp_millis();
    let source = serde_json::json!({
        "connector": "barge",
        "version": env!("CARGO_PKG_VERSION"),
        "ts_ms": ts,
        "snapshot": if rec.kind == RecordKind::Load { "true" } else { "false" },
        "schema": table.schema,
        "table": table.name,
        "txId": txid(rec),
        "pos": rec.change.position.to_string(),
        "record_id": rec.id,
    });
    s.push_str(",\"op\":");
    s.push_str(&quoted(rec.kind.debezium_op()));
    s.push_str(",\"ts_ms\":");
    s.push_str(&now.timestamp_millis().to_string());
    s.push_str(",\"source\":");
    s.push_str(&source.to_string());
    s.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{Change, Op};
    use crate::model::{ColumnType, Position, QualifiedName, Value};
    use crate::sink::SinkColumn;

    fn table() -> SinkTable {
        SinkTable {
            source: QualifiedName::new(Some("app"), "orders"),
            schema: "app".into(),
            name: "orders".into(),
            columns: vec![SinkColumn { name: "id".into(), ty: ColumnType::int(64) }, SinkColumn { name: "total".into(), ty: ColumnType::Decimal { precision: Some(38), scale: Some(9) } }],
            key: vec![0],
        }
    }

    fn parse(b: Vec<u8>) -> serde_json::Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn dms_shape_for_every_op() {
        let t = table();
        let names = Names::of(&t);
        let now = DateTime::parse_from_rfc3339("2024-05-06T07:08:09.123456Z").unwrap().with_timezone(&Utc);
        let up = Change {
            table: t.source.clone(),
            op: Op::Update { before: Some(vec![Value::Int(7), Value::Decimal("1.000000001".into())]), after: vec![Some(Value::Int(7)), Some(Value::Decimal("99999999999999999999.123456789".into()))] },
            txid: Some("771".into()),
            commit_time: None,
            position: Position::pg(99),
        };
        let rec = Record::new(&t, &up, "abc".into());
        let raw = String::from_utf8(body(EnvelopeKind::Dms, &t, &names, &rec, PartitionKey::PrimaryKey, now).unwrap()).unwrap();
        assert!(raw.contains("\"total\":99999999999999999999.123456789"), "decimal digits kept: {raw}");
        let j: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(j["data"]["id"], 7);
        assert_eq!(j["before-image"]["id"], 7);
        let m = &j["metadata"];
        assert_eq!((m["operation"].as_str(), m["record-type"].as_str(), m["schema-name"].as_str(), m["table-name"].as_str()), (Some("update"), Some("data"), Some("app"), Some("orders")));
        assert_eq!(m["transaction-id"], 771);
        assert_eq!(m["partition-key-type"], "primary-key");
        assert_eq!(m["record-id"], "abc");
        assert_eq!(m["timestamp"], "2024-05-06T07:08:09.123456Z");

        let del = Change { table: t.source.clone(), op: Op::Delete { key: vec![Value::Int(7)] }, txid: None, commit_time: None, position: Position::pg(100) };
        let j = parse(body(EnvelopeKind::Dms, &t, &names, &Record::new(&t, &del, "d".into()), PartitionKey::SchemaTable, now).unwrap());
        assert_eq!(j["data"], serde_json::json!({"id": 7}), "only the key is known");
        assert_eq!(j["metadata"]["operation"], "delete");
        let tr = Change { table: t.source.clone(), op: Op::Truncate, txid: None, commit_time: None, position: Position::pg(101) };
        let j = parse(body(EnvelopeKind::Dms, &t, &names, &Record::new(&t, &tr, "t".into()), PartitionKey::SchemaTable, now).unwrap());
        assert_eq!((j["metadata"]["record-type"].as_str(), j["metadata"]["operation"].as_str()), (Some("control"), Some("truncate-table")));
    }

    #[test]
    fn debezium_shape() {
        let t = table();
        let names = Names::of(&t);
        let now = Utc::now();
        let up = Change { table: t.source.clone(), op: Op::Update { before: None, after: vec![Some(Value::Int(1)), None] }, txid: None, commit_time: None, position: Position::pg(5) };
        let j = parse(body(EnvelopeKind::Debezium, &t, &names, &Record::new(&t, &up, "u".into()), PartitionKey::PrimaryKey, now).unwrap());
        assert_eq!(j["op"], "u");
        assert!(j["before"].is_null());
        assert_eq!(j["after"], serde_json::json!({"id": 1}), "the unsent column is left out, not null");
        assert_eq!(j["source"]["table"], "orders");
        assert_eq!(j["source"]["record_id"], "u");
        let ins = Change { table: t.source.clone(), op: Op::Insert { row: vec![Value::Int(2), Value::Null] }, txid: None, commit_time: None, position: Position::Snapshot };
        let j = parse(body(EnvelopeKind::Debezium, &t, &names, &Record::new(&t, &ins, "r".into()), PartitionKey::PrimaryKey, now).unwrap());
        assert_eq!((j["op"].as_str(), j["source"]["snapshot"].as_str()), (Some("r"), Some("true")));
        assert_eq!(j["after"], serde_json::json!({"id": 2, "total": null}));
        let del = Change { table: t.source.clone(), op: Op::Delete { key: vec![Value::Int(2)] }, txid: None, commit_time: None, position: Position::pg(6) };
        let j = parse(body(EnvelopeKind::Debezium, &t, &names, &Record::new(&t, &del, "d".into()), PartitionKey::PrimaryKey, now).unwrap());
        assert_eq!((j["op"].as_str(), j["before"]["id"].as_i64(), j["after"].is_null()), (Some("d"), Some(2), true));
    }
}
