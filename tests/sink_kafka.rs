//! migrate to Kafka (the tansu broker), read back with kafka-python:
//! a topic per table, the primary key as message key, partitions chosen
//! as Kafka's own partitioner does, the DMS or Debezium envelope, and
//! changes in order per partition.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;

use barge::cdc::{ChangeBatch, Op, Tables};
use barge::model::{ColumnType, Value};
use barge::sink::{EnvelopeKind, Scope, SinkOptions, SinkStats};
use serde_json::{json, Value as Json};
use support::sinks::*;
use support::assert_ok;


fn kafka_url(topic: &str) -> String {
    format!("kafka://{}/{topic}", env("BARGE_TEST_KAFKA_BROKER"))
}

fn messages(topic: &str) -> Vec<Json> {
    read_back(&["kafka", topic])["records"].as_array().unwrap().clone()
}

/// Where Kafka's own client (kafka-python's default partitioner, murmur2)
/// puts each key.
fn partitions_by_kafka_python(keys: &[String], n: u32) -> HashMap<String, i64> {
    let out = py(
        "import json,sys
from kafka.partitioner.default import murmur2
n = int(sys.argv[1])
print(json.dumps({k: (murmur2(k.encode()) & 0x7fffffff) % n for k in sys.argv[2:]}))",
        &std::iter::once(n.to_string()).chain(keys.iter().cloned()).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>(),
    );
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_a_topic_per_table() {
    let src = pg_with(
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric(18,4), at timestamptz);
         INSERT INTO orders SELECT g, g * 1.0001, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 300) g;
         CREATE TABLE customers (id text PRIMARY KEY, name text);
         INSERT INTO customers SELECT 'c' || g, 'name ' || g FROM generate_series(1, 50) g;",
        "sink_kafka",
    )
    .await;
    let prefix = unique_name("k");
    create_topic(&format!("{prefix}.public.orders"), 3);
    create_topic(&format!("{prefix}.public.customers"), 2);
    let pattern = format!("{prefix}.{{schema}}.{{table}}");
    let o = migrate_to(&src, &kafka_url("unused"), &["--topic-pattern", &pattern]);
    assert_ok(&o, "migrate to kafka");

    for (table, n, parts) in [("orders", 300, 3u32), ("customers", 50, 2)] {
        let msgs = messages(&format!("{prefix}.public.{table}"));
        assert_eq!(msgs.len(), n, "{table}: every row once");
        let keys: Vec<String> = msgs.iter().map(|m| m["key"].as_str().unwrap().to_string()).collect();
        let expected = partitions_by_kafka_python(&keys, parts);
        for m in &msgs {
            let key = m["key"].as_str().unwrap();
            assert_eq!(m["body"]["data"]["id"].as_str().unwrap(), key, "key = primary key");
            assert_eq!(m["partition"].as_i64(), expected.get(key).copied(), "{table} key {key}: the partition Kafka's partitioner picks");
            assert_eq!(m["headers"]["barge-record-id"], m["body"]["metadata"]["record-id"]);
            assert_eq!(m["body"]["metadata"]["table-name"], table);
        }
        let used: std::collections::BTreeSet<i64> = msgs.iter().map(|m| m["partition"].as_i64().unwrap()).collect();
        assert_eq!(used.len(), parts as usize, "{table}: keys spread over every partition");
    }
    let orders = messages(&format!("{prefix}.public.orders"));
    let o42 = orders.iter().find(|m| m["key"] == "42").unwrap();
    assert_eq!(o42["body"]["data"], json!({"id": "42", "total": "42.0042", "at": "2024-01-01T00:42:00+00:00"}));

    // A topic that does not exist: a clear error, not a hang.
    let o = migrate_to(&src, &kafka_url("unused"), &["--topic-pattern", &format!("{prefix}-missing.{{table}}")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not exist") && err.contains("create it first"), "{err}");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_envelope_on_one_topic() {
    let src = pg_with("CREATE TABLE t (id bigint PRIMARY KEY, amount numeric(40,20)); INSERT INTO t VALUES (1, 12345678901234567890.12345678901234567890), (2, NULL);", "sink_debezium").await;
    let topic = unique_name("dbz");
    create_topic(&topic, 1);
    let o = migrate_to(&src, &kafka_url(&topic), &["--envelope", "debezium"]);
    assert_ok(&o, "debezium");
    let msgs = messages(&topic);
    assert_eq!(msgs.len(), 2);
    let first = &msgs[0]["body"];
    assert_eq!(first["op"], "r");
    assert!(first["before"].is_null());
    assert_eq!(first["after"], json!({"id": "1", "amount": "12345678901234567890.12345678901234567890"}));
    assert_eq!((first["source"]["schema"].as_str(), first["source"]["table"].as_str(), first["source"]["snapshot"].as_str()), (Some("public"), Some("t"), Some("true")));
    assert_eq!(msgs[1]["body"]["after"], json!({"id": "2", "amount": null}));
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_stay_in_order_per_partition() {
    let topic = unique_name("cdc");
    create_topic(&topic, 3);
    let endpoint = barge::endpoint::Endpoint::parse(&kafka_url(&topic)).unwrap();
    let (name, info) = table_info("app", "stock", &[("sku", ColumnType::text()), ("qty", ColumnType::int(32)), ("doc", ColumnType::text())], &[0]);
    let tables: Tables = [(name.clone(), info)].into_iter().collect();
    let opts = SinkOptions { envelope: EnvelopeKind::Debezium, ..SinkOptions::default() };
    let mut sink = barge::sink::open(&endpoint, &opts, Scope::Cdc, Arc::new(SinkStats::default())).await.unwrap();
    let mut pos = 1000;
    let mut next = || {
        pos += 1;
        pos
    };
    let mut changes = Vec::new();
    for sku in ["a", "b", "c", "d", "e", "f"] {
        changes.push(change(&name, Op::Insert { row: vec![Value::Text(sku.into()), Value::Int(0), Value::Text("doc".into())] }, next()));
    }
    for q in 1..=20 {
        for sku in ["a", "b", "c", "d", "e", "f"] {
            changes.push(change(&name, Op::Update { before: None, after: vec![Some(Value::Text(sku.into())), Some(Value::Int(q)), None] }, next()));
        }
    }
    changes.push(change(&name, Op::Delete { key: vec![Value::Text("a".into())] }, next()));
    for batch in changes.chunks(25) {
        sink.apply(&tables, &ChangeBatch { changes: batch.to_vec(), position: batch.last().map(|c| c.position.clone()) }).await.unwrap();
    }
    let msgs = messages(&topic);
    assert_eq!(msgs.len(), 6 + 120 + 1);
    let mut per_key: HashMap<String, Vec<(i64, Json)>> = HashMap::new();
    for m in &msgs {
        per_key.entry(m["key"].as_str().unwrap().to_string()).or_default().push((m["offset"].as_i64().unwrap(), m["body"].clone()));
    }
    for (sku, mut ms) in per_key {
        ms.sort_by_key(|(o, _)| *o);
        let ops: Vec<&str> = ms.iter().map(|(_, b)| b["op"].as_str().unwrap()).collect();
        assert_eq!(ops[0], "c", "{sku}");
        let qty: Vec<i64> = ms.iter().filter(|(_, b)| b["op"] == "u").map(|(_, b)| b["after"]["qty"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(qty, (1..=20).collect::<Vec<i64>>(), "{sku}: updates in source order");
        assert!(ms.iter().filter(|(_, b)| b["op"] == "u").all(|(_, b)| b["after"].get("doc").is_none()), "unsent values left out");
        if sku == "a" {
            assert_eq!(ms.last().unwrap().1["op"], "d");
            assert_eq!(ms.last().unwrap().1["before"], json!({"sku": "a"}));
        }
    }
}
