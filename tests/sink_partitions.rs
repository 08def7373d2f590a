//! Firehose-style delivery of records to files (file://) and S3 (moto):
//! JSON to Parquet by a declared or inferred table, read back by pyarrow
//! with its types and exact values, and keys partitioned by the record's
//! fields and time (`--partition-by`), listed back by boto3, hostile
//! values contained, the oldest partition written first at
//! `--max-open-partitions`, and a kill -9 that loses no record.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::sinks::{create_bucket, env, py, unique_name};
use crate::support::{assert_ok, barge, run, stderr, text};

/// Every object under a directory (`files DIR`) or bucket prefix (`s3
/// BUCKET PREFIX`): its key below the root, and for Parquet its column
/// types and rows, for JSON lines its records (decimals, times as text).
const READ: &str = r#"
import json, os, sys, io, decimal, datetime
import pyarrow.parquet as pq
def canon(v):
    if isinstance(v, (decimal.Decimal,)): return str(v)
    if isinstance(v, (datetime.datetime, datetime.date)): return v.isoformat()
    return v
def read(key, data):
    if key.endswith('.parquet'):
        t = pq.read_table(io.BytesIO(data))
        return {'types': {f.name: str(f.type) for f in t.schema}, 'rows': [[canon(v) for v in r.values()] for r in t.to_pylist()]}
    return {'rows': [json.loads(l, parse_float=str) for l in data.decode().splitlines() if l]}
out = {}
if sys.argv[1] == 'files':
    root = sys.argv[2]
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = read(n, open(p, 'rb').read())
else:
    import boto3
    s3 = boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3] + '/'):
        for o in page.get('Contents', []):
            body = s3.get_object(Bucket=sys.argv[2], Key=o['Key'])['Body'].read()
            out[o['Key'][len(sys.argv[3]) + 1:]] = read(o['Key'], body)
print(json.dumps(out, default=str))
# pyarrow's thread pools can abort the interpreter's teardown; skip it.
sys.stdout.flush()
os._exit(0)
"#;

fn read_files(dir: &Path) -> BTreeMap<String, Value> {
    serde_json::from_str(&py(READ, &["files", dir.to_str().unwrap()])).unwrap()
}

fn read_s3(bucket: &str, prefix: &str) -> BTreeMap<String, Value> {
    serde_json::from_str(&py(READ, &["s3", bucket, prefix])).unwrap()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// A partition segment's value as Hive-style readers decode it.
fn decoded(segment: &str) -> Option<String> {
    if segment == "__HIVE_DEFAULT_PARTITION__" {
        return None;
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
    Some(String::from_utf8(bytes).unwrap())
}

#[test]
fn declared_table_to_parquet_keeps_types_and_every_digit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.sql"),
        "CREATE TABLE readings (id bigint PRIMARY KEY, amount numeric(20,4), at timestamptz, local timestamp, device text, ok boolean, doc jsonb);",
    )
    .unwrap();
    let log = dir.path().join("readings.jsonl");
    append(
        &log,
        &[
            r#"{"id": 1, "amount": 1234567890123456.7891, "at": "2026-12-01T10:00:00.123456+02:00", "local": "2026-12-01T10:00:00", "device": "d-1", "ok": true, "doc": {"nested": [1, 2.50, {"x": null}]}}"#.into(),
            r#"{"id": 9223372036854775807, "amount": -0.0001, "at": "1970-01-01T00:00:00Z", "device": "Zürich \"q\"", "ok": false, "doc": "just a string"}"#.into(),
            r#"{"id": 3, "amount": 7}"#.into(),
        ],
    );
    let out = dir.path().join("out");
    let o = run(barge()
        .args(["migrate", &format!("tail://{}", log.display()), &format!("file://{}", out.display()), "--format", "parquet", "--schema"])
        .arg(dir.path().join("t.sql"))
        .arg("--state-dir")
        .arg(dir.path().join("state")));
    assert_ok(&o, "tail to Parquet");
    let files = read_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let (key, file) = files.iter().next().unwrap();
    assert!(key.starts_with("public/readings/") && key.ends_with(".parquet"), "{key}");
    assert_eq!(
        file["types"],
        json!({"Op": "string", "id": "int64", "amount": "decimal128(20, 4)", "at": "timestamp[us, tz=UTC]", "local": "timestamp[us]", "device": "string", "ok": "bool", "doc": "extension<arrow.json>"})
    );
    assert_eq!(
        file["rows"],
        json!([
            ["I", 1, "1234567890123456.7891", "2026-12-01T08:00:00.123456+00:00", "2026-12-01T10:00:00", "d-1", true, r#"{"nested": [1, 2.50, {"x": null}]}"#],
            ["I", 9223372036854775807i64, "-0.0001", "1970-01-01T00:00:00+00:00", null, "Zürich \"q\"", false, r#""just a string""#],
            ["I", 3, "7.0000", null, null, null, null, null]
        ])
    );
}

#[test]
fn infer_prints_the_table_keeps_it_and_rejects_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    append(
        &log,
        &[
            r#"{"id": 1, "price": 10.5, "at": "2026-12-01T10:00:00+02:00", "paid": true, "meta": {"k": 1}, "note": "a"}"#.into(),
            r#"{"id": 2, "price": 3.25, "at": "2026-12-01T11:00:00Z", "paid": false, "note": null, "late": "2026-01-01T00:00:00"}"#.into(),
            // Past the first 2: an id that is no integer is rejected, the rest land.
            r#"{"id": "three", "price": 1}"#.into(),
            r#"{"id": 4, "price": 0.01, "unknown": 1}"#.into(),
        ],
    );
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let migrate = |args: &[&str]| {
        let mut c = barge();
        c.args(["migrate", &format!("tail://{}", log.display()), &format!("file://{}", out.display()), "--format", "parquet", "--on-error", "log", "--state-dir"]).arg(&state).args(args);
        run(&mut c)
    };
    let o = migrate(&["--infer", "2"]);
    assert_ok(&o, "--infer 2");
    let want = "CREATE TABLE events (\n  id bigint,\n  price numeric(38, 2),\n  at timestamptz(6),\n  paid boolean,\n  meta jsonb,\n  note text,\n  late timestamp(6)\n);\n";
    assert!(stderr(&o).contains(want), "the inferred table is printed:\n{}", text(&o));
    assert_eq!(std::fs::read_to_string(state.join("inferred-schema.sql")).unwrap(), want);
    let rejects = std::fs::read_to_string(state.join("rejects.jsonl")).unwrap();
    assert!(rejects.contains("three") && rejects.lines().count() == 1, "{rejects}");
    let files = read_files(&out);
    let rows: Vec<&Value> = files.values().flat_map(|f| f["rows"].as_array().unwrap()).collect();
    let file = files.values().next().unwrap();
    assert_eq!(
        file["types"],
        json!({"Op": "string", "id": "int64", "price": "decimal128(38, 2)", "at": "timestamp[us, tz=UTC]", "paid": "bool", "meta": "extension<arrow.json>", "note": "string", "late": "timestamp[us]"})
    );
    assert_eq!(
        json!(rows),
        json!([
            ["I", 1, "10.50", "2026-12-01T08:00:00+00:00", true, "{\"k\": 1}", "a", null],
            ["I", 2, "3.25", "2026-12-01T11:00:00+00:00", false, null, null, "2026-01-01T00:00:00"],
            ["I", 4, "0.01", null, null, null, null, null]
        ]),
        "every record read to infer lands once, in order"
    );

    // A rerun reads the kept table instead of inferring again.
    append(&log, &[r#"{"id": 5, "price": 2, "brand_new": true}"#.into()]);
    let o = migrate(&["--infer", "1"]);
    assert_ok(&o, "rerun");
    assert!(stderr(&o).contains("using the table an earlier run inferred"), "{}", text(&o));
    let rows: usize = read_files(&out).values().map(|f| f["rows"].as_array().unwrap().len()).sum();
    assert_eq!(rows, 4);
}

#[test]
fn partitioned_keys_on_s3_hold_each_record_in_its_partition_and_hostile_values_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sql"), "CREATE TABLE metrics (n bigint, device text, payload jsonb);").unwrap();
    let long = "L".repeat(300);
    let devices: Vec<Value> = vec![json!("d-1"), json!("../../etc"), json!("a/b"), json!("x\u{0}y"), json!(long), json!(null), json!(".."), json!("__HIVE_DEFAULT_PARTITION__"), json!("")];
    let lines: Vec<String> = (0..45).map(|n| json!({"n": n, "device": devices[n % devices.len()], "payload": {"site": format!("s{}", n % 2)}}).to_string()).collect();
    let log = dir.path().join("metrics.jsonl");
    append(&log, &lines);
    let bucket = unique_name("parts");
    create_bucket(&bucket);
    let url = format!("s3://{bucket}/lake?endpoint={}&region=us-east-1", env("BARGE_TEST_S3_ENDPOINT"));
    let o = run(barge()
        .args(["migrate", &format!("tail://{}", log.display()), &url, "--format", "jsonl", "--partition-by", "device=!{field:device}/site=!{field:payload.site}/year=!{timestamp:%Y}", "--schema"])
        .arg(dir.path().join("t.sql"))
        .arg("--state-dir")
        .arg(dir.path().join("state")));
    assert_ok(&o, "partitioned run");
    let year = chrono::Utc::now().format("%Y").to_string();
    let objects = read_s3(&bucket, "lake");
    let mut seen = Vec::new();
    for (key, file) in &objects {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 6, "schema/table/device/site/year/file: {key}");
        assert_eq!(&parts[..2], &["public", "metrics"], "{key}");
        assert!(parts.iter().all(|p| !p.is_empty() && *p != "." && *p != ".." && p.len() <= 255 && !p.chars().any(char::is_control)), "{key}");
        let device = decoded(parts[2].strip_prefix("device=").unwrap());
        let site = parts[3].strip_prefix("site=").unwrap();
        assert_eq!(parts[4], format!("year={year}"));
        for r in file["rows"].as_array().unwrap() {
            let want = r["device"].as_str().filter(|d| !d.is_empty()).map(str::to_string);
            if want.as_deref().is_some_and(|d| d.len() > 90) {
                assert!(parts[2].contains('~'), "a long value is cut and named by its hash: {key}");
            } else {
                assert_eq!(device, want, "record {r} under {key}");
            }
            assert_eq!(site, r["payload"]["site"].as_str().unwrap());
            seen.push(r["n"].as_u64().unwrap());
        }
    }
    seen.sort();
    assert_eq!(seen, (0..45).collect::<Vec<_>>(), "every record once");
    // The literal value __HIVE_DEFAULT_PARTITION__ is not read back as NULL.
    assert!(objects.keys().any(|k| k.contains("device=%5F_HIVE_DEFAULT_PARTITION__/")), "{:?}", objects.keys());
    assert!(objects.keys().any(|k| k.contains("device=..%2F..%2Fetc/")) && objects.keys().any(|k| k.contains("device=%2E%2E/")));
}

#[test]
fn partitioning_refuses_what_it_cannot_do_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.jsonl");
    append(&log, &[r#"{"a": 1}"#.into()]);
    let out = format!("file://{}", dir.path().join("out").display());
    let src = format!("tail://{}", log.display());
    let o = run(barge().args(["migrate", &src, &out, "--partition-by", "x=!{partitionKeyFromQuery:a}", "--state-dir"]).arg(dir.path().join("s1")));
    assert!(!o.status.success() && stderr(&o).contains("!{field:NAME}"), "{}", text(&o));
    let o = run(barge().args(["migrate", &src, &out, "--partition-by", "x=!{field:nope}", "--state-dir"]).arg(dir.path().join("s2")));
    assert!(!o.status.success() && stderr(&o).contains("has no column nope"), "{}", text(&o));
    let o = run(barge().args(["migrate", &src, "kafka://127.0.0.1:1/t", "--partition-by", "x=!{field:a}", "--state-dir"]).arg(dir.path().join("s3")));
    assert!(!o.status.success() && stderr(&o).contains("--partition-by applies to s3:// and file://"), "{}", text(&o));
}

#[test]
fn at_max_open_partitions_the_oldest_is_written_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("m.jsonl");
    append(&log, &["d0", "d1", "d2", "d0"].iter().map(|d| json!({"d": d}).to_string()).collect::<Vec<_>>());
    let out = dir.path().join("out");
    let args = |limit: &str, state: &str| {
        let mut c = barge();
        c.args(["migrate", &format!("tail://{}", log.display()), &format!("file://{}/{state}", out.display()), "--format", "jsonl", "--record-format", "json", "--partition-by", "d=!{field:data.d}"]);
        if !limit.is_empty() {
            c.args(["--max-open-partitions", limit]);
        }
        c.arg("--state-dir").arg(dir.path().join(state));
        c
    };
    assert_ok(&run(&mut args("2", "limited")), "limit 2");
    assert_ok(&run(&mut args("", "unlimited")), "default limit");
    let count = |root: &str, part: &str| read_files(&out.join(root)).keys().filter(|k| k.contains(&format!("/d={part}/"))).count();
    // d2 opens a third buffer: d0 (the oldest) is written; the second d0 then writes d1 and opens d0 again.
    assert_eq!((count("limited", "d0"), count("limited", "d1"), count("limited", "d2")), (2, 1, 1));
    assert_eq!((count("unlimited", "d0"), count("unlimited", "d1"), count("unlimited", "d2")), (1, 1, 1));
}

#[test]
fn a_kill_then_a_rerun_leaves_every_record_in_its_partition() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("a.jsonl");
    let line = |n: usize| json!({"n": n, "device": format!("d{}", n % 7)}).to_string();
    append(&log, &(0..3000).map(line).collect::<Vec<_>>());
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let cmd = |mode: &str| {
        let mut c = barge();
        c.args(["migrate", &format!("tail://{}/*.jsonl", logs.display()), &format!("file://{}", out.display()), "--format", "parquet", "--mode", mode, "--infer", "10"])
            .args(["--partition-by", "device=!{field:device}", "--buffer-interval", "1", "--batch-changes", "200", "--max-open-partitions", "3", "--state-dir"])
            .arg(&state);
        c
    };
    let mut child = cmd("cdc").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !state.join("cdc-position").exists() {
        assert!(std::time::Instant::now() < deadline, "no position saved within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    append(&log, &(3000..4000).map(line).collect::<Vec<_>>());
    child.kill().unwrap();
    child.wait().unwrap();
    append(&log, &(4000..4500).map(line).collect::<Vec<_>>());
    let o = run(&mut cmd("full-load"));
    assert_ok(&o, "rerun after kill -9");
    let mut seen = std::collections::BTreeSet::new();
    for (key, file) in read_files(&out) {
        let device = key.split('/').nth(2).unwrap().strip_prefix("device=").unwrap().to_string();
        for r in file["rows"].as_array().unwrap() {
            let n = r[1].as_i64().unwrap() as usize;
            assert_eq!(device, format!("d{}", n % 7), "{key}");
            seen.insert(n);
        }
    }
    // At least once: a record may be in two files, never in none.
    assert_eq!(seen.len(), 4500, "missing: {:?}", (0..4500).filter(|n| !seen.contains(n)).take(10).collect::<Vec<_>>());
}

#[test]
fn records_read_to_infer_are_handed_to_the_run_not_lost_from_a_queue() {
    // SQS hides a received message until it is deleted: the records the
    // inference read must reach the run, or they would be missing here.
    // (A bounded SQS run ends once nothing waits for deletion: files are
    // written each second so it ends soon.)
    let q = unique_name("infer");
    let endpoint = env("BARGE_TEST_S3_ENDPOINT");
    py(
        "import boto3, json, os, sys
s = boto3.client('sqs', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
u = s.create_queue(QueueName=sys.argv[1], Attributes={'VisibilityTimeout': '600'})['QueueUrl']
for i in range(25): s.send_message(QueueUrl=u, MessageBody=json.dumps({'id': i, 'v': '%d.5' % i}))",
        &[&q],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(barge()
        .args(["migrate", &format!("sqs://{q}?endpoint={endpoint}"), &format!("file://{}", out.display()), "--format", "parquet", "--infer", "3", "--buffer-interval", "1", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_ok(&o, "sqs --infer");
    assert!(stderr(&o).contains("  id bigint,\n  v text\n"), "{}", text(&o));
    let mut ids: Vec<i64> = read_files(&out).values().flat_map(|f| f["rows"].as_array().unwrap().iter().map(|r| r[1].as_i64().unwrap()).collect::<Vec<_>>()).collect();
    ids.sort();
    assert_eq!(ids, (0..25).collect::<Vec<_>>());
}

#[test]
fn csv_files_infer_their_table_from_the_header_and_text_forms() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a.csv"), "zip,qty,price,at,ok\n00501,3,1.50,2026-01-01T00:00:00Z,true\n10001,,20.25,,false\n").unwrap();
    let out = dir.path().join("out");
    let o = run(barge()
        .args(["migrate", &format!("file://{}", input.display()), &format!("file://{}", out.display()), "--record-format", "csv", "--format", "parquet", "--infer", "100", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_ok(&o, "csv --infer");
    assert!(stderr(&o).contains("  zip text,\n  qty bigint,\n  price numeric(38, 2),\n  at timestamptz(6),\n  ok boolean\n"), "{}", text(&o));
    let files = read_files(&out);
    let file = files.values().next().unwrap();
    assert_eq!(file["rows"], json!([["I", "00501", 3, "1.50", "2026-01-01T00:00:00+00:00", true], ["I", "10001", null, "20.25", null, false]]), "the leading zero kept");
}

#[test]
fn the_timestamp_is_the_records_own_time_from_the_stream() {
    // Kafka messages carry their producer's timestamp: March 2020 and July 2021 here,
    // so a key by the time barge read them would say otherwise.
    let topic = unique_name("parts-ts");
    let broker = env("BARGE_TEST_KAFKA_BROKER");
    py(
        "import sys
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
a = KafkaAdminClient(bootstrap_servers=sys.argv[1]); a.create_topics([NewTopic(sys.argv[2], num_partitions=1, replication_factor=1)]); a.close()
p = KafkaProducer(bootstrap_servers=sys.argv[1])
for v, ts in (('{\"n\": 1}', 1583020800000), ('{\"n\": 2}', 1583020800000 + 3600000), ('{\"n\": 3}', 1625097600000)):
    p.send(sys.argv[2], value=v.encode(), timestamp_ms=ts)
p.flush()",
        &[&broker, &topic],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(barge()
        .args(["migrate", &format!("kafka://{broker}/{topic}"), &format!("file://{}", out.display()), "--format", "jsonl", "--record-format", "json", "--mode", "full-load"])
        .args(["--partition-by", "year=!{timestamp:%Y}/month=!{timestamp:%m}/n=!{field:data.n}", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_ok(&o, "kafka partitioned by time");
    let dirs: Vec<String> = read_files(&out).keys().map(|k| k.rsplit_once('/').unwrap().0.split('/').skip(2).collect::<Vec<_>>().join("/")).collect();
    assert_eq!(dirs, vec!["year=2020/month=03/n=1", "year=2020/month=03/n=2", "year=2021/month=07/n=3"]);
}
