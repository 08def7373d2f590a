//! kinesis:// as a record source, against kinesalite (tests/services.sh):
//! records land on PostgreSQL, SQLite and Parquet files exactly as boto3
//! put them (payload, partition key, shard, sequence number); KPL
//! aggregates barge's own Kinesis target wrote come back one row per user
//! record, checked against aws-kinesis-agg; splits and merges keep each
//! key's order, live and across a restart; kill -9 and a rerun lose and
//! duplicate nothing; throttled and expired reads are retried within the
//! shard's limits (kinesalite never throttles, so a proxy does).
//!
//! kinesalite quirk: GetShardIterator AT_TIMESTAMP never answers when the
//! shard holds no record at or after the time, so the start-position test
//! keeps a record after its time in every shard it reads that way.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use support::sinks::*;
use support::*;
use support::aws_proxy;

fn kinesis(stream: &str) -> String {
    kinesis_at(stream, &env("BARGE_TEST_KINESIS_ENDPOINT"))
}

fn kinesis_at(stream: &str, endpoint: &str) -> String {
    format!("kinesis://{stream}?endpoint={endpoint}&region=us-east-1")
}

/// The table the default layout names after the stream.
fn table_of(stream: &str) -> String {
    stream.replace('-', "_")
}

/// Puts `(key, data)` records with PutRecords, in order (500 a call), and
/// returns where each went: (shard, sequence number).
fn put(stream: &str, records: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    placed(start_putting(stream, &[records.to_vec()], 0))
}

/// Puts each round of records in the background, `pause_ms` apart.
fn start_putting(stream: &str, rounds: &[Vec<(String, Vec<u8>)>], pause_ms: u64) -> std::process::Child {
    use base64::Engine as _;
    let code = "import base64, boto3, json, os, sys, time
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
out = []
for n, recs in enumerate(json.load(sys.stdin)):
    if n:
        time.sleep(int(sys.argv[2]) / 1000)
    for i in range(0, len(recs), 500):
        r = k.put_records(StreamName=sys.argv[1], Records=[{'PartitionKey': key, 'Data': base64.b64decode(d)} for key, d in recs[i:i + 500]])
        assert r['FailedRecordCount'] == 0, r
        out += [[x['ShardId'], x['SequenceNumber']] for x in r['Records']]
print(json.dumps(out))";
    let input: Vec<Vec<Json>> = rounds.iter().map(|r| r.iter().map(|(k, d)| json!([k, base64::engine::general_purpose::STANDARD.encode(d)])).collect()).collect();
    let mut child = Command::new(env("BARGE_TEST_PYTHON")).arg("-c").arg(code).arg(stream).arg(pause_ms.to_string()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    child
}

/// Where the records a `start_putting` put went, in order.
fn placed(child: std::process::Child) -> Vec<(String, String)> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "put_records: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The open shards: (id, starting hash key, ending hash key).
fn open_shards(stream: &str) -> Vec<(String, u128, u128)> {
    let out = py(
        "import boto3, json, os, sys
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
print(json.dumps([[s['ShardId'], s['HashKeyRange']['StartingHashKey'], s['HashKeyRange']['EndingHashKey']]
                  for s in k.list_shards(StreamName=sys.argv[1])['Shards'] if 'EndingSequenceNumber' not in s['SequenceNumberRange']]))",
        &[stream],
    );
    let v: Vec<(String, String, String)> = serde_json::from_str(&out).unwrap();
    v.into_iter().map(|(id, a, b)| (id, a.parse().unwrap(), b.parse().unwrap())).collect()
}

/// `barge migrate kinesis://STREAM TARGET --mode full-load` (read what is there, stop).
fn load(source: &str, target: &str, state: &std::path::Path, extra: &[&str]) -> std::process::Output {
    run(barge().args(["migrate", source, target, "--mode", "full-load", "--state-dir"]).arg(state).args(extra))
}

/// Waits until barge has created the SQLite file `db` (a query before
/// that would fail, not wait).
fn wait_created(db: &TestDb, child: &mut std::process::Child) {
    let path = std::path::PathBuf::from(db.url.strip_prefix("sqlite:").unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert_running(child, "before creating the target");
        assert!(Instant::now() < deadline, "{} not created", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `barge migrate kinesis://STREAM TARGET --mode cdc` in the background.
fn follow(source: &str, target: &str, state: &std::path::Path, extra: &[&str]) -> std::process::Child {
    barge()
        .args(["migrate", source, target, "--mode", "cdc", "--state-dir"])
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start barge")
}

/// Every row of the default layout, as JSON arrays [shard, offset, key, data], sorted.
async fn rows(db: &TestDb, table: &str) -> Vec<Json> {
    let sql = match db.engine {
        Engine::Sqlite => format!("SELECT json_group_array(json_array(shard, \"offset\", key, data)) FROM (SELECT * FROM \"{table}\" ORDER BY shard, length(\"offset\"), \"offset\")"),
        _ => format!("SELECT coalesce(json_agg(json_build_array(shard, \"offset\", key, data) ORDER BY shard, length(\"offset\"), \"offset\"), '[]')::text FROM public.\"{table}\""),
    };
    let text = db.query_row(&sql).await[0].clone().unwrap_or_else(|| "[]".into());
    serde_json::from_str(&text).unwrap()
}

/// What the rows must be: one per record put, offset = sequence number + 000000.
fn expected(records: &[(String, Vec<u8>)], placed: &[(String, String)]) -> Vec<Json> {
    let mut v: Vec<(String, String, Json)> =
        records.iter().zip(placed).map(|((k, d), (shard, seq))| (shard.clone(), format!("{seq}000000"), json!([shard, format!("{seq}000000"), k, String::from_utf8(d.clone()).unwrap()]))).collect();
    v.sort_by(|a, b| (&a.0, a.1.len(), &a.1).cmp(&(&b.0, b.1.len(), &b.1)));
    v.into_iter().map(|x| x.2).collect()
}

/// Payloads a consumer must get back byte for byte: JSON with long
/// decimals, several scripts, quotes, backslashes, control characters,
/// and a few large ones.
fn payloads(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let key = format!("{tag}-key-{}", i % 37);
            let data = match i % 6 {
                0 => format!("{{\"n\":{i},\"amount\":12345678901234567890.{i:09},\"at\":\"2026-12-07T10:00:00.123456+05:30\"}}"),
                1 => format!("zoë ☃ 日本語 🦀 {i}"),
                2 => format!("line one\nline two\ttab \"quoted\" back\\slash {i}"),
                3 if i % 60 == 3 => format!("{i}:{}", "x".repeat(200_000)),
                4 => format!("{{\"nested\":{{\"list\":[1,2.50,null,true],\"s\":\"{i}\"}}}}"),
                _ => format!("plain {i}"),
            };
            (key, data.into_bytes())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_postgres_with_exact_payloads_keys_and_offsets() {
    let stream = unique_name("kin-pg");
    create_stream(&stream, 3);
    let records = payloads(600, "pg");
    let placed = put(&stream, &records);
    let shards: BTreeSet<&str> = placed.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(shards.len(), 3, "the keys spread over every shard");

    let dst = TestDb::new(Engine::Postgres, "kin_pg").await;
    let state = tempfile::tempdir().unwrap();
    let o = load(&kinesis(&stream), &dst.url, state.path(), &[]);
    assert_ok(&o, "kinesis -> postgres");
    let table = table_of(&stream);
    assert_eq!(rows(&dst, &table).await, expected(&records, &placed), "every record once: payload, key, shard, offset");
    let r = dst.query_row(&format!("SELECT count(*) FILTER (WHERE stream = '{stream}' AND time > now() - interval '10 minutes' AND time <= now()) FROM public.\"{table}\"")).await;
    assert_eq!(r[0].as_deref(), Some("600"), "stream name and arrival time on every row");

    // A second run reads nothing again; records put since land once.
    let more = payloads(30, "pg2");
    let placed_more = put(&stream, &more);
    let o = load(&kinesis(&stream), &dst.url, state.path(), &[]);
    assert_ok(&o, "second run");
    let all: Vec<_> = records.iter().chain(&more).cloned().collect();
    let all_placed: Vec<_> = placed.iter().chain(&placed_more).cloned().collect();
    assert_eq!(rows(&dst, &table).await, expected(&all, &all_placed));

    // A stream that is not there: named, with what to check.
    let o = load(&kinesis("barge-no-such-stream"), &dst.url, tempfile::tempdir().unwrap().path(), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("barge-no-such-stream") && err.contains("ResourceNotFoundException") && err.contains("hint:"), "{err}");
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_parquet_files_as_put() {
    let stream = unique_name("kin-pq");
    create_stream(&stream, 2);
    let records = payloads(300, "pq");
    let placed = put(&stream, &records);
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let o = load(&kinesis(&stream), &format!("file://{}", dir.path().display()), state.path(), &["--format", "parquet"]);
    assert_ok(&o, "kinesis -> parquet");
    let files = read_dir(dir.path());
    let files = files["files"].as_object().unwrap();
    assert!(!files.is_empty());
    let mut got = Vec::new();
    for (name, f) in files {
        assert_eq!(f["format"], "parquet", "{name}");
        let cols: Vec<&str> = f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap()).collect();
        assert_eq!(cols, ["Op", "stream", "shard", "offset", "key", "time", "data"], "{name}");
        assert_eq!(f["columns"][5][1], "timestamp[us, tz=UTC]", "arrival time as a timestamp, not text");
        for r in f["rows"].as_array().unwrap() {
            assert_eq!((r[0].as_str(), r[1].as_str()), (Some("I"), Some(stream.as_str())));
            assert!(r[5].as_str().is_some_and(|t| t.starts_with("20")), "{r}");
            got.push((r[2].as_str().unwrap().to_string(), r[3].as_str().unwrap().to_string(), json!([r[2], r[3], r[4], r[6]])));
        }
    }
    got.sort_by(|a, b| (&a.0, a.1.len(), &a.1).cmp(&(&b.0, b.1.len(), &b.1)));
    let got: Vec<Json> = got.into_iter().map(|x| x.2).collect();
    assert_eq!(got, expected(&records, &placed));
}

const ORDERS: &str = "CREATE TABLE orders (id int PRIMARY KEY, total numeric(30,10), note text);
INSERT INTO orders SELECT g, g::numeric * 1000000007 / 1000000000 + 0.0000000001, 'n' || g FROM generate_series(1, 1500) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_from_barge_come_back_one_row_per_user_record() {
    let src = pg_with(ORDERS, "kin_kpl_src").await;
    let stream = unique_name("kin-kpl");
    create_stream(&stream, 2);
    assert_ok(&migrate_to(&src, &kinesis(&stream), &["--aggregate"]), "postgres -> kinesis --aggregate");

    let dst = TestDb::new(Engine::Postgres, "kin_kpl").await;
    let state = tempfile::tempdir().unwrap();
    let o = load(&kinesis(&stream), &dst.url, state.path(), &["--record-format", "json"]);
    assert_ok(&o, "kinesis (aggregated) -> postgres");
    let table = table_of(&stream);
    let r = dst
        .query_row(&format!(
            "SELECT count(*), count(DISTINCT data->'data'->>'id'), count(DISTINCT left(\"offset\", length(\"offset\") - 6)), max(right(\"offset\", 6)),
                    count(*) FILTER (WHERE key = data->'data'->>'id'),
                    max(data->'data'->>'total') FILTER (WHERE data->'data'->>'id' = '7')
             FROM public.\"{table}\""
        ))
        .await;
    assert_eq!(r[0].as_deref(), Some("1500"), "one row per user record");
    assert_eq!(r[1].as_deref(), Some("1500"), "every row of the source once");
    let kinesis_records: usize = r[2].as_deref().unwrap().parse().unwrap();
    assert!(kinesis_records < 20, "aggregated: {kinesis_records} Kinesis records");
    assert!(r[3].as_deref().unwrap() > "000100", "sub-record indexes: {:?}", r[3]);
    assert_eq!(r[4].as_deref(), Some("1500"), "each user record keeps its own partition key");
    assert_eq!(r[5].as_deref(), Some("7.0000000491"), "exact decimal digits");

    // The same user records as aws-kinesis-agg (the KPL format's own
    // de-aggregator) takes out of the stream, and in each shard in its order.
    let theirs = read_back(&["kinesis", &stream])["records"].as_array().unwrap().clone();
    let theirs: Vec<(String, String)> = theirs.iter().map(|x| (x["shard"].as_str().unwrap().to_string(), x["key"].as_str().unwrap().to_string())).collect();
    let ours = dst.query_row(&format!("SELECT json_agg(json_build_array(shard, key) ORDER BY shard, length(\"offset\"), \"offset\")::text FROM public.\"{table}\"")).await;
    let ours: Vec<(String, String)> = serde_json::from_str(ours[0].as_deref().unwrap()).unwrap();
    assert_eq!(ours, theirs);

    // A damaged aggregate (one byte of its protobuf changed): the run
    // stops, naming stream, shard and sequence number, and lands nothing of it.
    let damaged = py(
        "import boto3, json, os, sys
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
s = k.list_shards(StreamName=sys.argv[1])['Shards'][0]['ShardId']
it = k.get_shard_iterator(StreamName=sys.argv[1], ShardId=s, ShardIteratorType='TRIM_HORIZON')['ShardIterator']
d = bytearray(k.get_records(ShardIterator=it, Limit=1)['Records'][0]['Data'])
d[40] ^= 0x01
r = k.put_record(StreamName=sys.argv[1], Data=bytes(d), PartitionKey='1')
print(json.dumps([r['ShardId'], r['SequenceNumber']]))",
        &[&stream],
    );
    let (shard, seq): (String, String) = serde_json::from_str(&damaged).unwrap();
    let o = load(&kinesis(&stream), &dst.url, state.path(), &["--record-format", "json"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&stream) && err.contains(&shard) && err.contains(&seq) && err.contains("MD5"), "{err}");
    assert!(err.contains("deaggregate=false"), "a next step that works: {err}");
    let r = dst.query_row(&format!("SELECT count(*) FROM public.\"{table}\"")).await;
    assert_eq!(r[0].as_deref(), Some("1500"));

    // ... and that next step: every Kinesis record whole, the damaged one byte for byte.
    let raw = TestDb::new(Engine::Postgres, "kin_kpl_raw").await;
    let state = tempfile::tempdir().unwrap();
    let o = load(&format!("{}&deaggregate=false", kinesis(&stream)), &raw.url, state.path(), &["--record-format", "bytes"]);
    assert_ok(&o, "deaggregate=false");
    let r = raw.query_row(&format!("SELECT count(*), count(*) FILTER (WHERE substr(data, 1, 4) = '\\xf3899ac2'::bytea) FROM public.\"{table}\"")).await;
    assert_eq!(r[0].as_deref(), Some(&*(kinesis_records + 1).to_string()), "one row per Kinesis record");
    assert_eq!(r[1], r[0], "all of them aggregates, kept whole");
    let r = raw.query_row(&format!("SELECT count(*) FROM public.\"{table}\" WHERE shard = '{shard}' AND \"offset\" = '{seq}000000'")).await;
    assert_eq!(r[0].as_deref(), Some("1"));
    src.drop_db().await;
    dst.drop_db().await;
    raw.drop_db().await;
}

/// Puts versions `from..=to` of keys k0..k19 (one record per key and
/// version, versions in order), returning where they went.
fn put_versions(stream: &str, from: u32, to: u32) -> Vec<(String, String)> {
    let recs: Vec<(String, Vec<u8>)> = (from..=to).flat_map(|v| (0..20).map(move |k| (format!("k{k}"), format!("{{\"k\":{k},\"v\":{v}}}").into_bytes()))).collect();
    put(stream, &recs)
}

/// For each step: split the stream's first open shard in two, or merge
/// its first two open shards (adjacent ones: children of one split); then
/// put versions `from..=to` of keys k0..k19.
fn reshard(stream: &str, steps: &[(&str, u32, u32)]) {
    py(
        "import boto3, json, os, sys, time
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
s = sys.argv[1]
def open_shards():
    return [x for x in k.list_shards(StreamName=s)['Shards'] if 'EndingSequenceNumber' not in x['SequenceNumberRange']]
for step, lo, hi in json.loads(sys.argv[2]):
    shards = open_shards()
    if step == 'split':
        r = shards[0]['HashKeyRange']
        a, b = int(r['StartingHashKey']), int(r['EndingHashKey'])
        k.split_shard(StreamName=s, ShardToSplit=shards[0]['ShardId'], NewStartingHashKey=str(a + (b - a) // 2 + 1))
    else:
        assert len(shards) == 2
        k.merge_shards(StreamName=s, ShardToMerge=shards[0]['ShardId'], AdjacentShardToMerge=shards[1]['ShardId'])
    # kinesalite applies a reshard a moment later (UPDATING, then ACTIVE)
    while len(open_shards()) != (len(shards) + 1 if step == 'split' else 1):
        time.sleep(0.02)
    for v in range(lo, hi + 1):
        k.put_records(StreamName=s, Records=[{'PartitionKey': 'k%d' % i, 'Data': json.dumps({'k': i, 'v': v}).encode()} for i in range(20)])",
        &[stream, &json!(steps).to_string()],
    );
}

/// Each key's versions in the order the target received them (SQLite's
/// rowid): they must run 1, 2, 3, ... with none missing or repeated.
async fn assert_each_key_in_order(db: &TestDb, table: &str, versions: u32) {
    let r = db.query_row(&format!("SELECT json_group_array(data) FROM (SELECT data FROM \"{table}\" ORDER BY rowid)")).await;
    let datas: Vec<String> = serde_json::from_str(r[0].as_deref().unwrap()).unwrap();
    let mut per_key: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for d in &datas {
        let d: Json = serde_json::from_str(d).unwrap();
        per_key.entry(d["k"].as_u64().unwrap()).or_default().push(d["v"].as_u64().unwrap());
    }
    assert_eq!(per_key.len(), 20);
    for (k, vs) in per_key {
        assert_eq!(vs, (1..=versions as u64).collect::<Vec<_>>(), "key k{k}: versions in the order they were put");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_and_merges_keep_each_keys_order_live_and_across_a_restart() {
    let stream = unique_name("kin-reshard");
    create_stream(&stream, 1);
    let dst = TestDb::new(Engine::Sqlite, "kin_reshard").await;
    let table = table_of(&stream);
    let state = tempfile::tempdir().unwrap();
    let count = format!("SELECT count(*) FROM \"{table}\"");

    // Live: versions 1-10 in shard 0; it splits; 11-20 in its children;
    // they merge; 21-30 in the merged shard.
    put_versions(&stream, 1, 10);
    let mut child = follow(&kinesis(&stream), &dst.url, state.path(), &[]);
    wait_created(&dst, &mut child);
    wait_for(&dst, &count, "200", &mut child).await;
    reshard(&stream, &[("split", 11, 20), ("merge", 21, 30)]);
    wait_for(&dst, &count, "600", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert_each_key_in_order(&dst, &table, 30).await;
    let r = dst.query_row(&format!("SELECT count(DISTINCT shard) FROM \"{table}\"")).await;
    assert_eq!(r[0].as_deref(), Some("4"), "parent, two children, merged");

    // While barge is stopped: 31-40 in the merged shard, which then
    // splits, and 41-50 in its children. The rerun must read the rest of
    // the parent before either child, and nothing it read before.
    put_versions(&stream, 31, 40);
    reshard(&stream, &[("split", 41, 50)]);
    let o = load(&kinesis(&stream), &dst.url, state.path(), &[]);
    assert_ok(&o, "rerun after a split while stopped");
    assert_eq!(dst.query_row(&count).await[0].as_deref(), Some("1000"));
    assert_each_key_in_order(&dst, &table, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_a_rerun_loses_and_repeats_nothing() {
    let stream = unique_name("kin-kill");
    create_stream(&stream, 2);
    let dst = TestDb::new(Engine::Postgres, "kin_kill").await;
    let table = table_of(&stream);
    let state = tempfile::tempdir().unwrap();
    // 1,600 records in 8 rounds, 150 ms apart, while barge reads and
    // writes them; kill -9 it as soon as the first rows are in.
    let rounds: Vec<Vec<(String, Vec<u8>)>> = (0..8).map(|r| payloads(200, &format!("kill-{r}"))).collect();
    let all: Vec<(String, Vec<u8>)> = rounds.concat();
    let producer = start_putting(&stream, &rounds, 150);
    let mut child = follow(&kinesis(&stream), &dst.url, state.path(), &[]);
    wait_for(&dst, &format!("SELECT count(*) > 0 FROM public.\"{table}\""), "t", &mut child).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let placed = placed(producer);
    let o = load(&kinesis(&stream), &dst.url, state.path(), &[]);
    assert_ok(&o, "rerun after kill -9");
    assert_eq!(rows(&dst, &table).await, expected(&all, &placed), "every record exactly once");
    dst.drop_db().await;
}

// ---- a throttling proxy ---------------------------------------------------------

/// Records per GetRecords answer through the proxy.
const LIMIT: usize = 25;

/// Forwards to kinesalite (GetRecords with a small Limit), and answers
/// some GetRecords calls itself:
/// ProvisionedThroughputExceededException for the first `throttle`
/// calls that are 1 mod 3, ExpiredIteratorException once; it keeps the
/// time of every GetRecords call.
struct Proxy {
    throttle: usize,
    calls: AtomicUsize,
    throttled: AtomicUsize,
    expired: AtomicUsize,
    times: Mutex<Vec<Instant>>,
}

/// What the proxy does with a GetRecords call, and what it saw.
async fn handle(p: Arc<Proxy>, call: aws_proxy::Call) -> (u16, Vec<u8>) {
    let refuse = if call.target.ends_with(".GetRecords") {
        p.times.lock().unwrap().push(Instant::now());
        let n = p.calls.fetch_add(1, Ordering::SeqCst);
        if n == 4 {
            p.expired.fetch_add(1, Ordering::SeqCst);
            Some("ExpiredIteratorException")
        } else if n < p.throttle && n % 3 == 1 {
            p.throttled.fetch_add(1, Ordering::SeqCst);
            Some("ProvisionedThroughputExceededException")
        } else {
            None
        }
    } else {
        None
    };
    match refuse {
        Some(kind) => (400, format!("{{\"__type\":\"{kind}\",\"message\":\"refused by the test proxy\"}}").into_bytes()),
        None if call.target.ends_with(".GetRecords") => {
            // Small answers, so that reading the stream takes many calls.
            let mut req: Json = serde_json::from_slice(&call.body).unwrap();
            req["Limit"] = json!(LIMIT);
            call.forward(serde_json::to_vec(&req).unwrap()).await
        }
        None => call.forward(call.body.clone()).await,
    }
}

async fn start_proxy(throttle: usize) -> (String, Arc<Proxy>) {
    let p = Arc::new(Proxy { throttle, calls: AtomicUsize::new(0), throttled: AtomicUsize::new(0), expired: AtomicUsize::new(0), times: Mutex::new(Vec::new()) });
    let pp = p.clone();
    let url = aws_proxy::start(format!("{}/", env("BARGE_TEST_KINESIS_ENDPOINT")), "application/x-amz-json-1.1", move |call| handle(pp.clone(), call)).await;
    (url, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_expired_reads_are_retried_within_the_shard_limits() {
    let stream = unique_name("kin-throttle");
    create_stream(&stream, 1);
    let records = payloads(300, "th");
    let placed = put(&stream, &records);
    let dst = TestDb::new(Engine::Sqlite, "kin_throttle").await;
    let state = tempfile::tempdir().unwrap();
    let (proxy, p) = start_proxy(15).await;
    let o = load(&kinesis_at(&stream, &proxy), &dst.url, state.path(), &[]);
    assert_ok(&o, "read through the throttling proxy");
    assert_eq!(rows(&dst, &table_of(&stream)).await, expected(&records, &placed), "nothing lost or repeated");
    assert_eq!((p.throttled.load(Ordering::SeqCst), p.expired.load(Ordering::SeqCst)), (4, 1));
    // One shard: 5 GetRecords calls a second at most, throttled ones
    // included (one more in a window for the jitter of arrival times at
    // the proxy; a reader that did not pace itself would make dozens).
    let times = p.times.lock().unwrap().clone();
    assert!(times.len() > 300 / LIMIT, "{} calls", times.len());
    for (i, t) in times.iter().enumerate() {
        let in_second = times[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_secs(1)).count();
        assert!(in_second <= 6, "{in_second} GetRecords calls within a second of call {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_latest_and_at_timestamp_and_latest_after_a_restart() {
    // at-timestamp: only what arrived at or after the time.
    let stream = unique_name("kin-at");
    create_stream(&stream, 1);
    put(&stream, &payloads(20, "before"));
    std::thread::sleep(Duration::from_millis(50));
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(50));
    let after = payloads(15, "after");
    let placed = put(&stream, &after);
    let dst = TestDb::new(Engine::Sqlite, "kin_at").await;
    let state = tempfile::tempdir().unwrap();
    let o = load(&kinesis(&stream), &dst.url, state.path(), &["--start-position", &format!("at-timestamp:{at}")]);
    assert_ok(&o, "at-timestamp");
    assert_eq!(rows(&dst, &table_of(&stream)).await, expected(&after, &placed));

    // latest: nothing from before the start; then, with barge stopped,
    // records reach a shard that had none yet: the rerun reads them (from
    // the first run's start time) and nothing from before it.
    let stream = unique_name("kin-latest");
    create_stream(&stream, 2);
    let shards = open_shards(&stream);
    // Partition keys that hash into each shard.
    let key_in = |shard: usize| -> String {
        (0..).map(|i| format!("key{i}")).find(|k| {
            let h = barge::sink::kpl::hash_key(k);
            shards[shard].1 <= h && h <= shards[shard].2
        }).unwrap()
    };
    let (k0, k1) = (key_in(0), key_in(1));
    put(&stream, &[(k0.clone(), b"old 0".to_vec()), (k1.clone(), b"old 1".to_vec())]);
    let dst = TestDb::new(Engine::Sqlite, "kin_latest").await;
    let state = tempfile::tempdir().unwrap();
    let table = table_of(&stream);
    let mut child = follow(&kinesis(&stream), &dst.url, state.path(), &["--start-position", "latest"]);
    wait_created(&dst, &mut child);
    // Records put before a shard's LATEST iterator exists are not read,
    // and when that is is up to barge: put until one lands.
    let count = format!("SELECT count(*) > 0 FROM \"{table}\"");
    for i in 0.. {
        put(&stream, &[(k0.clone(), format!("new 0 #{i}").into_bytes())]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if dst.try_query_row(&count).await.is_ok_and(|r| r[0].as_deref() == Some("1")) {
            break;
        }
        assert_running(&mut child, "waiting for the first record");
        assert!(i < 100, "no record landed");
    }
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    put(&stream, &[(k1.clone(), b"while down 1".to_vec()), (k0.clone(), b"while down 0".to_vec())]);
    let o = load(&kinesis(&stream), &dst.url, state.path(), &["--start-position", "latest"]);
    assert_ok(&o, "rerun");
    let r = dst.query_row(&format!("SELECT json_group_array(data) FROM (SELECT data FROM \"{table}\" ORDER BY rowid)")).await;
    let got: Vec<String> = serde_json::from_str(r[0].as_deref().unwrap()).unwrap();
    assert!(got.iter().all(|d| !d.starts_with("old")), "nothing from before the start: {got:?}");
    // Shards interleave as they arrive: check each shard's order, not the
    // table's (a "new 0" put just before the stop may land in the rerun).
    let at = |s: &str| got.iter().position(|d| d == s);
    let (down0, down1) = (at("while down 0"), at("while down 1"));
    assert!(down0.is_some() && down1.is_some(), "what arrived while barge was down, also in the shard that had nothing yet: {got:?}");
    let news: Vec<usize> = got.iter().enumerate().filter(|(_, d)| d.starts_with("new 0 #")).map(|(i, _)| i).collect();
    assert!(!news.is_empty() && news.iter().all(|&i| i < down0.unwrap()), "shard 0 in order: {got:?}");
    assert_eq!(got.len(), news.len() + 2, "{got:?}");
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), got.len());
}
