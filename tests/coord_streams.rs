//! A stream's shards leased to workers through a PostgreSQL coordinator,
//! as the Kinesis Client Library leases them: real kinesalite, real
//! PostgreSQL (target and coordinator), real worker processes.
//!
//! Records are DMS change envelopes, each an insert of one row into a
//! table without a key, so a record applied twice is a second row: the
//! target then holds every record exactly once, or the test sees it.
//! Each row keeps its shard and offset (`_shard`, `_offset`), and its
//! transaction id (`xmin`) says when it was committed relative to the
//! others, so the order of each key's versions on the target is checked.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support::sinks::*;
use crate::support::*;

/// Keys per version: version v of key k is row id v * KEYS + k.
const KEYS: u32 = 20;

const TABLE: &str = "CREATE TABLE ev (id bigint NOT NULL, k int NOT NULL, v int NOT NULL, _shard text, _offset text);";

fn kinesis(stream: &str) -> String {
    format!("kinesis://{stream}?endpoint={}&region=us-east-1", env("BARGE_TEST_KINESIS_ENDPOINT"))
}

/// Puts versions `from..=to` of every key (one PutRecords a version, in
/// order, `pause_ms` apart); with `split_before` = V, splits the first open
/// shard before version V. In the background: wait with [`done`].
fn put_versions(stream: &str, from: u32, to: u32, pause_ms: u64, split_before: Option<u32>) -> Child {
    let code = "import boto3, json, os, sys, time
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
s, lo, hi, pause, split, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) / 1000, int(sys.argv[5]), int(sys.argv[6])
def open_shards():
    return [x for x in k.list_shards(StreamName=s)['Shards'] if 'EndingSequenceNumber' not in x['SequenceNumberRange']]
for v in range(lo, hi + 1):
    if v == split:
        shards = open_shards()
        r = shards[0]['HashKeyRange']
        a, b = int(r['StartingHashKey']), int(r['EndingHashKey'])
        k.split_shard(StreamName=s, ShardToSplit=shards[0]['ShardId'], NewStartingHashKey=str(a + (b - a) // 2 + 1))
        while len(open_shards()) != len(shards) + 1:
            time.sleep(0.02)
    recs = [{'PartitionKey': 'key-%d' % i, 'Data': json.dumps({'data': {'id': v * keys + i, 'k': i, 'v': v},
             'metadata': {'operation': 'insert', 'record-type': 'data', 'schema-name': 'public', 'table-name': 'ev'}}).encode()} for i in range(keys)]
    r = k.put_records(StreamName=s, Records=recs)
    assert r['FailedRecordCount'] == 0, r
    time.sleep(pause)";
    std::process::Command::new(env("BARGE_TEST_PYTHON"))
        .arg("-c")
        .arg(code)
        .args([stream, &from.to_string(), &to.to_string(), &pause_ms.to_string(), &split_before.unwrap_or(0).to_string(), &KEYS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn done(producer: Child) {
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "putting records: {}", String::from_utf8_lossy(&out.stderr));
}

/// Produces versions `from..=to` of every key to `topic` (keyed by the
/// key, so each key stays in one partition), `pause_ms` apart.
fn produce_versions(topic: &str, from: u32, to: u32, pause_ms: u64) -> Child {
    let code = "import json, os, sys, time
from kafka import KafkaProducer
t, lo, hi, pause, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) / 1000, int(sys.argv[5])
p = KafkaProducer(bootstrap_servers=os.environ['BARGE_TEST_KAFKA_BROKER'], linger_ms=5)
for v in range(lo, hi + 1):
    for i in range(keys):
        p.send(t, key=b'key-%d' % i, value=json.dumps({'data': {'id': v * keys + i, 'k': i, 'v': v},
               'metadata': {'operation': 'insert', 'record-type': 'data', 'schema-name': 'public', 'table-name': 'ev'}}).encode())
    p.flush()
    time.sleep(pause)";
    std::process::Command::new(env("BARGE_TEST_PYTHON"))
        .arg("-c")
        .arg(code)
        .args([topic, &from.to_string(), &to.to_string(), &pause_ms.to_string(), &KEYS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

struct Task {
    /// The Kinesis stream or Kafka topic.
    stream: String,
    source: String,
    dst: TestDb,
    ctl: TestDb,
    dir: tempfile::TempDir,
    name: String,
}

impl Task {
    async fn new(tag: &str, shards: u32) -> Task {
        let stream = unique_name(tag);
        create_stream(&stream, shards);
        Task::with_source(tag, stream.clone(), kinesis(&stream)).await
    }

    async fn kafka(tag: &str, partitions: u32) -> Task {
        let topic = unique_name(tag);
        create_topic(&topic, partitions);
        let source = format!("kafka://{}/{topic}", env("BARGE_TEST_KAFKA_BROKER"));
        Task::with_source(tag, topic, source).await
    }

    async fn with_source(tag: &str, stream: String, source: String) -> Task {
        let dst = TestDb::new(Engine::Postgres, tag).await;
        let ctl = TestDb::new(Engine::Postgres, &format!("{tag}_ctl")).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ev.sql"), TABLE).unwrap();
        Task { stream, source, dst, ctl, dir, name: "shards".into() }
    }

    /// The first worker: `migrate --coordinator`, which creates the task.
    fn start(&self) -> Child {
        barge()
            .args(["migrate", &self.source, &self.dst.url, "--mode", "cdc", "--record-format", "dms", "--schema"])
            .arg(self.dir.path().join("ev.sql"))
            .args(["--coordinator", &self.ctl.url, "--task", &self.name, "--lease-timeout", "3", "--state-dir"])
            .arg(self.dir.path().join("first"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn join(&self, name: &str) -> Child {
        barge()
            .args(["worker", "--coordinator", &self.ctl.url, "--task", &self.name, "--state-dir"])
            .arg(self.dir.path().join(name))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Shards held under a live lease, per worker pid.
    async fn held(&self) -> BTreeMap<u32, usize> {
        let sql = "SELECT coalesce(string_agg(w.pid || ':' || n, ','), '') FROM (
                     SELECT owner, count(*) AS n FROM barge_control.units
                      WHERE kind = 'shard' AND status = 'leased' AND lease_expires > now() GROUP BY owner) x
                   JOIN barge_control.workers w ON w.id = x.owner";
        let Ok(row) = self.ctl.try_query_row(sql).await else { return BTreeMap::new() };
        let text = row[0].clone().unwrap_or_default();
        text.split(',').filter(|p| !p.is_empty()).map(|p| p.split_once(':').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())).unwrap()).collect()
    }

    /// Waits until the open shards are leased to exactly `workers`, each
    /// holding between `lo` and `hi`.
    async fn wait_balanced(&self, workers: &mut [&mut Child], total: usize, lo: usize, hi: usize) -> BTreeMap<u32, usize> {
        let want: Vec<u32> = workers.iter().map(|c| c.id()).collect();
        let started = Instant::now();
        loop {
            let held = self.held().await;
            if held.keys().copied().collect::<Vec<_>>() == sorted(&want) && held.values().sum::<usize>() == total && held.values().all(|n| (lo..=hi).contains(n)) {
                return held;
            }
            for c in workers.iter_mut() {
                assert_running(c, "while the shards are shared out");
            }
            assert!(started.elapsed() < Duration::from_secs(60), "shards not shared out as expected: {held:?} among {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_rows(&self, n: u32, workers: &mut [&mut Child]) {
        self.wait_rows_watching(n, workers, None).await
    }

    /// [`Task::wait_rows`], checking all along that `never` (a query on
    /// the coordinator) finds nothing.
    async fn wait_rows_watching(&self, n: u32, workers: &mut [&mut Child], never: Option<(&str, &str)>) {
        let started = Instant::now();
        loop {
            if let Some((sql, what)) = never {
                let found = self.ctl.try_query_row(sql).await.ok().and_then(|r| r[0].clone());
                assert!(found.is_none(), "{what}: {found:?}");
            }
            if let Ok(r) = self.dst.try_query_row("SELECT count(*) FROM ev").await {
                if r[0].as_deref().and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| c >= n) {
                    return;
                }
            }
            for c in workers.iter_mut() {
                assert_running(c, "while the records land");
            }
            assert!(started.elapsed() < Duration::from_secs(90), "timed out waiting for {n} rows");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every version 1..=versions of every key is on the target once, and
    /// each key's versions were committed in the order they were put.
    async fn assert_each_record_once_in_order(&self, versions: u32) {
        let counts = self.dst.query_row("SELECT count(*), count(DISTINCT id), min(v), max(v) FROM ev").await;
        let want = (versions * KEYS).to_string();
        assert_eq!(counts, vec![Some(want.clone()), Some(want), Some("1".into()), Some(versions.to_string())], "every record once: rows, distinct ids, versions");
        let sql = "SELECT json_agg(json_build_array(k, v) ORDER BY xmin::text::bigint, _shard, length(_offset), _offset)::text FROM ev";
        let all: Vec<(u32, u32)> = serde_json::from_str(self.dst.query_row(sql).await[0].as_deref().unwrap()).unwrap();
        let mut per_key: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (k, v) in all {
            per_key.entry(k).or_default().push(v);
        }
        for (k, vs) in per_key {
            assert_eq!(vs, (1..=versions).collect::<Vec<_>>(), "key {k}: its versions committed in the order they were put");
        }
    }

    fn status(&self) -> Json {
        let out = run(barge().args(["status", "--coordinator", &self.ctl.url, "--task", &self.name, "--json"]));
        assert_ok(&out, "status --json");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn drop_all(self) {
        self.dst.drop_db().await;
        self.ctl.drop_db().await;
    }
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn stop(child: Child, what: &str) {
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{what}: {}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_shards_share_out_across_three_workers_and_a_killed_workers_move_to_the_others() {
    let t = Task::new("coord_shards", 12).await;
    done(put_versions(&t.stream, 1, 5, 0, None));
    let mut first = t.start();
    let mut b = t.join("b");
    let mut c = t.join("c");
    let held = t.wait_balanced(&mut [&mut first, &mut b, &mut c], 12, 3, 5).await;
    assert_eq!(held.len(), 3, "{held:?}");

    // status --json: every shard, its holder among the workers, a checkpoint.
    let status = t.status();
    let task = &status["tasks"][0];
    let shards = task["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 12, "{task}");
    let workers: Vec<&str> = task["workers"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    for s in shards {
        assert_eq!(s["state"], "leased", "{s}");
        assert!(workers.contains(&s["holder"].as_str().unwrap_or("")), "{s} held by one of {workers:?}");
        assert!(s["heartbeat_age_seconds"].as_f64().unwrap() < 3.0, "{s}");
    }

    // Records keep coming while one worker is killed: its shards go to the
    // other two once its leases expire, which resume from the checkpoints.
    let producer = put_versions(&t.stream, 6, 15, 100, None);
    t.wait_rows(6 * KEYS, &mut [&mut first, &mut b, &mut c]).await;
    b.kill().unwrap(); // SIGKILL
    b.wait().unwrap();
    let held = t.wait_balanced(&mut [&mut first, &mut c], 12, 6, 6).await;
    assert!(!held.contains_key(&b.id()));
    done(producer);
    t.wait_rows(15 * KEYS, &mut [&mut first, &mut c]).await;
    // A moment more: anything applied twice would show now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    t.assert_each_record_once_in_order(15).await;
    // Each lease's checkpoint is where the target is: after its shard's
    // last record there (an offset is the sequence number and 6 digits).
    let on_target = t.dst.query_row("SELECT json_object_agg(_shard, left(last, -6))::text FROM (SELECT _shard, (array_agg(_offset ORDER BY length(_offset) DESC, _offset DESC))[1] AS last FROM ev GROUP BY _shard) x").await;
    let in_leases = t.ctl.query_row("SELECT json_object_agg(table_key, left(checkpoint ->> 'offset', -6))::text FROM barge_control.units WHERE kind = 'shard' AND checkpoint ? 'offset'").await;
    let parse = |v: &Option<String>| serde_json::from_str::<BTreeMap<String, String>>(v.as_deref().unwrap()).unwrap();
    assert_eq!(parse(&in_leases[0]), parse(&on_target[0]), "the checkpoints in the leases, against the shards' last records on the target");
    stop(first, "the first worker");
    stop(c, "the third worker");
    t.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_a_split_are_read_only_after_their_parent() {
    let t = Task::new("coord_split", 2).await;
    // Split before the workers start: the parent still holds versions
    // 1-5 when the workers first list the shards, children and all.
    done(put_versions(&t.stream, 1, 10, 0, Some(6)));
    let mut first = t.start();
    let mut b = t.join("b");
    // Then a split while they read.
    let producer = put_versions(&t.stream, 11, 20, 50, Some(14));
    let child_before_parent = "SELECT string_agg(c.table_key || ' before ' || p.table_key, ', ') FROM barge_control.units c
                                 JOIN barge_control.units p ON p.task = c.task AND p.kind = 'shard' AND p.table_key = ANY (c.parents)
                                WHERE c.kind = 'shard' AND c.status <> 'pending' AND p.status <> 'done'";
    let never = Some((child_before_parent, "a child shard leased before its parent was read to its end"));
    t.wait_rows_watching(20 * KEYS, &mut [&mut first, &mut b], never).await;
    done(producer);
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.assert_each_record_once_in_order(20).await;
    // Two splits: the two shards, then three children of which one split again.
    let units = t.ctl.query_row("SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE cardinality(parents) = 1) FROM barge_control.units WHERE kind = 'shard'").await;
    assert_eq!(units, vec![Some("6".into()), Some("2".into()), Some("4".into())], "6 shards: 2 parents read to their end, 4 children");
    let status = t.status();
    let waiting: Vec<&Json> = status["tasks"][0]["shards"].as_array().unwrap().iter().filter(|s| s["state"] == "done").collect();
    assert_eq!(waiting.len(), 2, "{status}");
    stop(first, "the first worker");
    stop(b, "the second worker");
    t.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_kafka_partitions_share_out_across_three_workers() {
    let t = Task::kafka("coord_parts", 12).await;
    done(produce_versions(&t.stream, 1, 5, 0));
    let mut first = t.start();
    let mut b = t.join("b");
    let mut c = t.join("c");
    t.wait_balanced(&mut [&mut first, &mut b, &mut c], 12, 3, 5).await;
    let producer = produce_versions(&t.stream, 6, 10, 100);
    t.wait_rows(10 * KEYS, &mut [&mut first, &mut b, &mut c]).await;
    done(producer);
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.assert_each_record_once_in_order(10).await;
    let status = t.status();
    let shards = status["tasks"][0]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 12, "{status}");
    assert!(shards.iter().all(|s| s["shard"].as_str().unwrap().starts_with(&format!("{}.", t.stream)) && s["holder"].is_string()), "{status}");
    for (w, what) in [(first, "the first worker"), (b, "the second worker"), (c, "the third worker")] {
        stop(w, what);
    }
    t.drop_all().await;
}

#[test]
fn streams_that_cannot_be_shared_are_refused_with_the_reason() {
    let coord = ["--coordinator", "postgres://barge@127.0.0.1:1/ctl", "--task", "t"];
    let refused = |source: &str, target: &str, extra: &[&str], says: &str| {
        let out = run(barge().args(["migrate", source, target]).args(coord).args(extra));
        assert!(!out.status.success(), "{source} → {target} {extra:?} must be refused");
        assert!(text(&out).contains(says), "{source} → {target} {extra:?}: {}", text(&out));
    };
    refused("sqs://q?endpoint=http://127.0.0.1:1&region=us-east-1", "postgres://app@127.0.0.1:1/db", &[], "already spreads its messages over every reader");
    refused("tail:///var/log/app.log", "postgres://app@127.0.0.1:1/db", &[], "one reader");
    refused("kinesis://s?endpoint=http://127.0.0.1:1&region=us-east-1", "sqlite:/tmp/x.db", &[], "cannot share the target");
    refused("kinesis://s?endpoint=http://127.0.0.1:1&region=us-east-1", "postgres://app@127.0.0.1:1/db", &["--infer", "100"], "--schema FILE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_loses_its_shards_and_writes_nothing_after_the_takeover() {
    let t = Task::new("coord_pause", 4).await;
    done(put_versions(&t.stream, 1, 3, 0, None));
    let mut first = t.start();
    let mut b = t.join("b");
    t.wait_balanced(&mut [&mut first, &mut b], 4, 2, 2).await;
    let producer = put_versions(&t.stream, 4, 14, 150, None);
    t.wait_rows(4 * KEYS, &mut [&mut first, &mut b]).await;
    // SIGSTOP past its lease: the first worker takes its shards over.
    unsafe { libc::kill(b.id() as i32, libc::SIGSTOP) };
    t.wait_balanced(&mut [&mut first], 4, 4, 4).await;
    // It wakes up with records in hand and leases it no longer holds:
    // the fence refuses them, and it shares the shards again afterwards.
    unsafe { libc::kill(b.id() as i32, libc::SIGCONT) };
    done(producer);
    t.wait_rows(14 * KEYS, &mut [&mut first, &mut b]).await;
    t.wait_balanced(&mut [&mut first, &mut b], 4, 2, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    t.assert_each_record_once_in_order(14).await;
    stop(first, "the first worker");
    stop(b, "the paused worker");
    t.drop_all().await;
}
