//! migrate to Kinesis Data Streams (kinesalite), read back with boto3 and
//! aws-kinesis-agg (the KPL format's own de-aggregator). Kinesalite does
//! not throttle, so the throttling test puts a proxy in front of it that
//! refuses some records (and some whole calls) as an over-limit shard
//! would: nothing may be lost, and each key's records must arrive in order.

use crate::support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use barge::cdc::{ChangeBatch, Op, Tables};
use barge::model::{ColumnType, Value};
use barge::sink::{Scope, SinkOptions, SinkStats};
use serde_json::{json, Value as Json};
use support::sinks::*;
use support::*;

fn kinesis_url(stream: &str, endpoint: &str) -> String {
    format!("kinesis://{stream}?endpoint={endpoint}&region=us-east-1")
}

const ORDERS: &str = "CREATE TABLE orders (id int PRIMARY KEY, total numeric(30,10), at timestamptz, note text);
INSERT INTO orders SELECT g, g::numeric * 1000000007 / 1000000000 + 0.0000000001, timestamptz '2024-03-10 01:59:59.999999+00' + g * interval '1 second', 'n' || g
FROM generate_series(1, 1200) g;";

fn records(stream: &str) -> Vec<Json> {
    read_back(&["kinesis", stream])["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_kinesis_plain_and_aggregated() {
    let src = pg_with(ORDERS, "sink_kinesis").await;
    let endpoint = env("BARGE_TEST_KINESIS_ENDPOINT");
    for aggregate in [false, true] {
        let stream = unique_name("orders");
        create_stream(&stream, 2);
        let mut args = vec![];
        if aggregate {
            args.push("--aggregate");
        }
        let o = migrate_to(&src, &kinesis_url(&stream, &endpoint), &args);
        assert_ok(&o, "migrate to kinesis");
        let recs = records(&stream);
        assert_eq!(recs.len(), 1200, "every row once (aggregate={aggregate})");
        let mut seen = std::collections::BTreeSet::new();
        for r in &recs {
            assert_eq!(r["aggregated"], aggregate, "{r}");
            let body = &r["body"];
            let id: u64 = body["data"]["id"].as_str().unwrap().parse().unwrap();
            assert_eq!(r["key"], id.to_string(), "partition key = primary key");
            let m = &body["metadata"];
            assert_eq!((m["operation"].as_str(), m["record-type"].as_str(), m["partition-key-type"].as_str()), (Some("load"), Some("data"), Some("primary-key")));
            assert_eq!((m["schema-name"].as_str(), m["table-name"].as_str()), (Some("public"), Some("orders")));
            assert_eq!(m["record-id"].as_str().unwrap().len(), 32);
            seen.insert(id);
            if id == 7 {
                // exact decimal digits, instant in UTC with microseconds
                assert_eq!(body["data"]["total"], "7.0000000491");
                assert_eq!(body["data"]["at"], "2024-03-10T02:00:06.999999+00:00");
            }
        }
        assert_eq!(seen.len(), 1200);
        if aggregate {
            // Aggregates stay within a shard: each sub-record hashes into the shard it was read from.
            let shards: std::collections::BTreeSet<&str> = recs.iter().map(|r| r["shard"].as_str().unwrap()).collect();
            assert_eq!(shards.len(), 2, "two shards used");
        }
    }
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_one_mib_is_refused_naming_table_and_key() {
    let src = pg_with("CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs VALUES (1, 'small'), (7, repeat('x', 1100000));", "sink_huge").await;
    let stream = unique_name("huge");
    create_stream(&stream, 1);
    let o = migrate_to(&src, &kinesis_url(&stream, &env("BARGE_TEST_KINESIS_ENDPOINT")), &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("table public.docs, row id=7") && err.contains("1 MiB"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    src.drop_db().await;
}

// ---- a throttling proxy ------------------------------------------------------

/// Forwards to kinesalite; for the first `disturb` PutRecords calls it
/// refuses some records (not forwarding them, answering
/// ProvisionedThroughputExceededException in their slots) and now and then
/// a whole call (HTTP 400).
struct Throttle {
    calls: AtomicUsize,
    disturb: usize,
    refused: AtomicUsize,
}

/// What the proxy answers a call: PutRecords calls are disturbed as
/// [`Throttle`] says.
async fn handle(t: Arc<Throttle>, call: support::aws_proxy::Call) -> (u16, Vec<u8>) {
    'reply: {
        let n = if call.target.ends_with("PutRecords") { t.calls.fetch_add(1, Ordering::SeqCst) } else { usize::MAX };
        if n >= t.disturb {
            break 'reply call.forward(call.body.clone()).await;
        }
        if n % 5 == 2 {
            t.refused.fetch_add(1, Ordering::SeqCst);
            break 'reply (400, br#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for stream"}"#.to_vec());
        }
        let mut req: Json = serde_json::from_slice(&call.body).unwrap();
        let all = req["Records"].as_array().unwrap().clone();
        let refuse: Vec<bool> = (0..all.len()).map(|i| (i + n) % 3 == 0).collect();
        let kept: Vec<Json> = all.iter().zip(&refuse).filter(|(_, r)| !**r).map(|(x, _)| x.clone()).collect();
        let mut answers = Vec::new();
        if !kept.is_empty() {
            req["Records"] = Json::Array(kept);
            let (status, answer) = call.forward(serde_json::to_vec(&req).unwrap()).await;
            assert!((200..300).contains(&status));
            let resp: Json = serde_json::from_slice(&answer).unwrap();
            answers = resp["Records"].as_array().unwrap().clone();
        }
        let mut answers = answers.into_iter();
        let merged: Vec<Json> = refuse
            .iter()
            .map(|r| if *r { json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard shardId-000000000000"}) } else { answers.next().unwrap() })
            .collect();
        let failed = refuse.iter().filter(|r| **r).count();
        t.refused.fetch_add(failed, Ordering::SeqCst);
        (200, serde_json::to_vec(&json!({"FailedRecordCount": failed, "Records": merged})).unwrap())
    }
}

async fn start_proxy(disturb: usize) -> (String, Arc<Throttle>) {
    let t = Arc::new(Throttle { calls: AtomicUsize::new(0), disturb, refused: AtomicUsize::new(0) });
    let tt = t.clone();
    let url = support::aws_proxy::start(format!("{}/", env("BARGE_TEST_KINESIS_ENDPOINT")), "application/x-amz-json-1.1", move |call| handle(tt.clone(), call)).await;
    (url, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_records_are_retried_without_loss_or_reordering_per_key() {
    let stream = unique_name("throttle");
    create_stream(&stream, 1);
    let (proxy, throttle) = start_proxy(15).await;
    let endpoint = barge::endpoint::Endpoint::parse(&kinesis_url(&stream, &proxy)).unwrap();
    let (name, info) = table_info("app", "counters", &[("id", ColumnType::int(32)), ("v", ColumnType::int(32))], &[0]);
    let tables: Tables = [(name.clone(), info)].into_iter().collect();
    let stats = Arc::new(SinkStats::default());
    let mut sink = barge::sink::open(&endpoint, &SinkOptions::default(), Scope::Cdc, stats.clone()).await.unwrap();
    // 12 keys, 30 versions each, interleaved; 4 batches of 90 changes.
    let mut changes = Vec::new();
    let mut pos = 100;
    for v in 1..=30 {
        for k in 1..=12 {
            pos += 1;
            changes.push(change(&name, Op::Update { before: None, after: vec![Some(Value::Int(k)), Some(Value::Int(v))] }, pos));
        }
    }
    for chunk in changes.chunks(90) {
        let batch = ChangeBatch { changes: chunk.to_vec(), position: chunk.last().map(|c| c.position.clone()) };
        sink.apply(&tables, &batch).await.unwrap();
        assert_eq!(sink.committed().await.unwrap(), batch.position, "acknowledged before apply returned");
    }
    let throttled = SinkStats::get(&stats.throttled_calls);
    assert!(throttled > 0 && throttle.refused.load(Ordering::SeqCst) > 0, "the proxy throttled");
    assert!(SinkStats::get(&stats.retried_records) >= throttle.refused.load(Ordering::SeqCst) as u64);
    assert_eq!(SinkStats::get(&stats.records), 360);

    let recs = records(&stream);
    let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for r in &recs {
        // at least once: a duplicate (same record id) would be dropped by a consumer
        if !ids.insert(r["body"]["metadata"]["record-id"].as_str().unwrap().to_string()) {
            continue;
        }
        assert_eq!(r["body"]["metadata"]["operation"], "update");
        per_key.entry(r["key"].as_str().unwrap().to_string()).or_default().push(r["body"]["data"]["v"].as_str().unwrap().parse().unwrap());
    }
    assert_eq!(per_key.len(), 12);
    for (k, vs) in &per_key {
        assert_eq!(vs, &(1..=30).collect::<Vec<i64>>(), "key {k}: nothing lost, nothing reordered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_load_through_a_throttle_reports_throttled_calls() {
    let src = pg_with(ORDERS, "sink_kthrottle").await;
    let stream = unique_name("kthrottle");
    create_stream(&stream, 1);
    let (proxy, _t) = start_proxy(10).await;
    let dst = kinesis_url(&stream, &proxy);
    let (o, state) = {
        let src_url = src.url.clone();
        let state = tempfile::tempdir().unwrap();
        let p = state.path().to_path_buf();
        let o = tokio::task::spawn_blocking(move || run(barge().args(["migrate", &src_url, &dst, "--state-dir"]).arg(&p))).await.unwrap();
        (o, state)
    };
    drop(state);
    assert_ok(&o, "load through the throttle");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("calls throttled"), "{out}");
    assert_eq!(records(&stream).len(), 1200);
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_operations_reach_kinesis_in_dms_shape() {
    let stream = unique_name("ops");
    create_stream(&stream, 1);
    let endpoint = barge::endpoint::Endpoint::parse(&kinesis_url(&stream, &env("BARGE_TEST_KINESIS_ENDPOINT"))).unwrap();
    let (name, info) = table_info("app", "items", &[("id", ColumnType::int(32)), ("price", ColumnType::Decimal { precision: Some(12), scale: Some(2) }), ("doc", ColumnType::text())], &[0]);
    let tables: Tables = [(name.clone(), info)].into_iter().collect();
    let opts = SinkOptions { partition_key: barge::sink::PartitionKey::SchemaTable, ..SinkOptions::default() };
    let mut sink = barge::sink::open(&endpoint, &opts, Scope::Cdc, Arc::new(SinkStats::default())).await.unwrap();
    let row = |p: &str| vec![Value::Int(1), Value::Decimal(p.into()), Value::Text("big".into())];
    let batch = ChangeBatch {
        changes: vec![
            change(&name, Op::Insert { row: row("1.10") }, 10),
            change(&name, Op::Update { before: Some(row("1.10")), after: vec![Some(Value::Int(1)), Some(Value::Decimal("2.20".into())), None] }, 11),
            change(&name, Op::Update { before: None, after: vec![Some(Value::Int(1)), Some(Value::Decimal("3.30".into())), None] }, 12),
            change(&name, Op::Delete { key: vec![Value::Int(1)] }, 13),
            change(&name, Op::Truncate, 14),
        ],
        position: Some(barge::model::Position::pg(14)),
    };
    sink.apply(&tables, &batch).await.unwrap();
    let recs = records(&stream);
    let ops: Vec<&str> = recs.iter().map(|r| r["body"]["metadata"]["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["insert", "update", "update", "delete", "truncate-table"]);
    assert!(recs.iter().all(|r| r["key"] == "app.items"), "schema-table partition key");
    assert_eq!(recs[1]["body"]["before-image"]["price"], "1.10");
    assert_eq!(recs[1]["body"]["data"]["doc"], "big", "an unchanged value comes from the old row");
    assert!(recs[2]["body"]["data"].get("doc").is_none(), "an unsent value is left out, never null: {}", recs[2]);
    assert_eq!(recs[3]["body"]["data"], json!({"id": "1"}));
    assert_eq!(recs[4]["body"]["metadata"]["record-type"], "control");
    assert_eq!(recs[0]["body"]["metadata"]["transaction-id"], "10");
}
