//! Kafka as a record source (the tansu broker of tests/services.sh; a
//! private tansu on S3 storage for the restart): every message of every
//! partition lands once with its key, offset, timestamp and exact payload,
//! in PostgreSQL (default layout, or a `--schema` table) and in Parquet
//! files; kill -9 and a rerun lose and repeat nothing; a broker restart
//! is ridden out; latest, at-timestamp and the saved position start where
//! they say; topic lists and globs, and topics that appear while barge
//! follows.

use crate::support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::sinks::{create_bucket, env, read_dir, unique_name};
use support::{assert_ok, assert_running, barge, interrupt, run, text, wait_for, Engine, TestDb};

#[derive(Clone)]
struct Msg {
    partition: i32,
    key: Option<String>,
    value: String,
    /// Milliseconds since 1970 (the producer's CreateTime).
    ts: i64,
}

fn msg(partition: i32, key: Option<&str>, value: &str, ts: i64) -> Msg {
    Msg { partition, key: key.map(str::to_string), value: value.to_string(), ts }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn python() -> Command {
    Command::new(env("BARGE_TEST_PYTHON"))
}

fn py_ok(code: &str, args: &[&str]) -> String {
    let out = python().arg("-c").arg(code).args(args).output().expect("run python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shared_broker() -> String {
    env("BARGE_TEST_KAFKA_BROKER")
}

fn create_topic_on(broker: &str, name: &str, partitions: u32) {
    py_ok(
        "import sys
from kafka.admin import KafkaAdminClient, NewTopic
a = KafkaAdminClient(bootstrap_servers=sys.argv[1])
a.create_topics([NewTopic(sys.argv[2], num_partitions=int(sys.argv[3]), replication_factor=1)])
a.close()",
        &[broker, name, &partitions.to_string()],
    );
}

/// Produces `msgs` with kafka-python, in order; returns each one's offset.
fn produce_on(broker: &str, topic: &str, msgs: &[Msg]) -> Vec<i64> {
    let spec = tempfile::NamedTempFile::new().unwrap();
    let json: Vec<Json> = msgs.iter().map(|m| serde_json::json!({"p": m.partition, "k": m.key, "v": m.value, "ts": m.ts})).collect();
    std::fs::write(spec.path(), serde_json::to_vec(&json).unwrap()).unwrap();
    let out = py_ok(
        "import json, sys
from kafka import KafkaProducer
spec = json.load(open(sys.argv[3], encoding='utf-8'))
p = KafkaProducer(bootstrap_servers=sys.argv[1], linger_ms=5, batch_size=262144, max_request_size=4194304)
fs = [p.send(sys.argv[2], key=None if m['k'] is None else m['k'].encode(), value=m['v'].encode(), partition=m['p'], timestamp_ms=m['ts']) for m in spec]
p.flush()
print(json.dumps([f.get(timeout=60).offset for f in fs]))",
        &[broker, topic, spec.path().to_str().unwrap()],
    );
    serde_json::from_str(out.trim()).unwrap()
}

fn produce(topic: &str, msgs: &[Msg]) -> Vec<i64> {
    produce_on(&shared_broker(), topic, msgs)
}

fn kafka_url(topic: &str) -> String {
    format!("kafka://{}/{topic}", shared_broker())
}

/// The table a topic's records land in by default (named after it).
fn table_of(topic: &str) -> String {
    topic.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// One row per message as barge's default layout should hold it:
/// [shard, offset, key, data, stream, time in ms].
fn expected(topic: &str, msgs: &[Msg], offsets: &[i64]) -> Vec<Json> {
    let mut rows: Vec<(String, i64, Json)> = msgs
        .iter()
        .zip(offsets)
        .map(|(m, o)| {
            let shard = format!("{topic}.{}", m.partition);
            (shard.clone(), *o, serde_json::json!([shard, o.to_string(), m.key, m.value, topic, m.ts]))
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    rows.into_iter().map(|r| r.2).collect()
}

/// What the default layout holds, in the same form, read by PostgreSQL.
async fn landed(db: &TestDb, table: &str) -> Vec<Json> {
    let sql = format!(
        r#"SELECT coalesce(json_agg(json_build_array(shard, "offset", key, data, stream, (extract(epoch FROM time) * 1000)::bigint) ORDER BY shard, "offset"::bigint), '[]')::text FROM "{table}""#
    );
    serde_json::from_str(db.query_row(&sql).await[0].as_deref().unwrap()).unwrap()
}

async fn saved_position(db: &TestDb) -> String {
    db.query_row("SELECT position FROM barge_cdc_state").await[0].clone().unwrap()
}

fn migrate(source: &str, target: &str, state: &Path, args: &[&str]) -> std::process::Output {
    run(barge().args(["migrate", source, target, "--state-dir"]).arg(state).args(args))
}

fn follow(source: &str, target: &str, state: &Path, args: &[&str]) -> Child {
    barge()
        .args(["migrate", source, target, "--mode", "cdc", "--state-dir"])
        .arg(state)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start barge")
}

/// Payloads that must arrive byte for byte: quotes, newlines, tabs,
/// non-ASCII, an empty one.
fn awkward(i: usize) -> String {
    match i % 6 {
        0 => format!("{{\"n\": {i}, \"s\": \"a \\\"quoted\\\" word\"}}"),
        1 => format!("line one {i}\nline two\r\n\ttabbed"),
        2 => format!("zürich ✓ {i} 東京"),
        3 => String::new(),
        4 => format!("comma,separated,{i},'single'"),
        _ => format!("{i}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_lands_in_postgres_exactly_and_a_schema_table_keeps_decimals_and_times() {
    let topic = unique_name("kin");
    create_topic_on(&shared_broker(), &topic, 3);
    let base = now_ms() - 60_000;
    let msgs: Vec<Msg> = (0..120).map(|i| msg((i % 3) as i32, (i % 5 != 0).then(|| format!("key-{i}")).as_deref(), &awkward(i), base + i as i64 * 7 + 1)).collect();
    let offsets = produce(&topic, &msgs);
    let db = TestDb::new(Engine::Postgres, "kafka_in").await;
    let state = tempfile::tempdir().unwrap();
    let o = migrate(&kafka_url(&topic), &db.url, state.path(), &["--mode", "full-load"]);
    assert_ok(&o, "kafka -> postgres");
    let want = expected(&topic, &msgs, &offsets);
    assert_eq!(landed(&db, &table_of(&topic)).await, want, "every message once, key, offset, time and payload exact");
    assert_eq!(saved_position(&db).await, format!("shards:{topic}.0=40,{topic}.1=40,{topic}.2=40"), "the next offset of every partition");

    // A rerun reads on from the saved position: nothing twice, and what
    // arrived since.
    let more: Vec<Msg> = (0..6).map(|i| msg(i % 3, Some("again"), &format!("later {i}"), base + 5_000 + i as i64)).collect();
    let more_offsets = produce(&topic, &more);
    let o = migrate(&kafka_url(&topic), &db.url, state.path(), &["--mode", "full-load"]);
    assert_ok(&o, "rerun");
    let all: Vec<Msg> = msgs.iter().chain(&more).cloned().collect();
    let all_offsets: Vec<i64> = offsets.iter().chain(&more_offsets).copied().collect();
    assert_eq!(landed(&db, &table_of(&topic)).await, expected(&topic, &all, &all_offsets));

    // JSON records into a table of the user's: decimals keep every digit
    // (a JSON number, never a float), times their instant.
    let pay = unique_name("kpay");
    create_topic_on(&shared_broker(), &pay, 2);
    let payments: Vec<Msg> = [
        (1, "12345678901234567890.123456789", "2026-03-04T05:06:07.123456+02:00", "\"first\""),
        (2, "-0.000000001", "2026-03-04T23:59:59.999999-07:00", "\"second ✓\""),
        (3, "0", "2026-03-05T00:00:00Z", "null"),
        (4, "99999999999999999999999999999.999999999", "1999-12-31T23:59:59.5+00:00", "\"last\""),
    ]
    .iter()
    .map(|(id, amount, at, note)| msg(*id % 2, Some(&id.to_string()), &format!(r#"{{"id": {id}, "amount": {amount}, "at": "{at}", "note": {note}}}"#), base))
    .collect();
    produce(&pay, &payments);
    let schema = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(schema.path(), "CREATE TABLE payments (id bigint PRIMARY KEY, amount numeric(38,9) NOT NULL, at timestamptz NOT NULL, note text, _shard varchar(300), _offset bigint, _key text);").unwrap();
    let state2 = tempfile::tempdir().unwrap();
    let o = migrate(&kafka_url(&pay), &db.url, state2.path(), &["--mode", "full-load", "--schema", schema.path().to_str().unwrap()]);
    assert_ok(&o, "kafka json -> postgres --schema");
    let got = db
        .query_row(r#"SELECT json_agg(json_build_array(id, amount::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), note, _shard, _offset, _key) ORDER BY id)::text FROM payments"#)
        .await;
    let got: Json = serde_json::from_str(got[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        got,
        serde_json::json!([
            [1, "12345678901234567890.123456789", "2026-03-04T03:06:07.123456", "first", format!("{pay}.1"), 0, "1"],
            [2, "-0.000000001", "2026-03-05T06:59:59.999999", "second ✓", format!("{pay}.0"), 0, "2"],
            [3, "0.000000000", "2026-03-05T00:00:00.000000", null, format!("{pay}.1"), 1, "3"],
            [4, "99999999999999999999999999999.999999999", "1999-12-31T23:59:59.500000", "last", format!("{pay}.0"), 1, "4"],
        ])
    );

    // A record that is not JSON stops the run, naming where it is.
    let bad = unique_name("kbad");
    create_topic_on(&shared_broker(), &bad, 1);
    produce(&bad, &[msg(0, None, r#"{"id": 10, "amount": 1, "at": "2026-01-01T00:00:00Z"}"#, base), msg(0, None, "not json at all", base)]);
    let o = migrate(&kafka_url(&bad), &db.url, tempfile::tempdir().unwrap().path(), &["--mode", "full-load", "--schema", schema.path().to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = support::stderr(&o);
    assert!(err.contains(&format!("shard {bad}.0 offset 1")) && err.contains("--on-error log"), "{err}");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_land_in_parquet_files_with_every_field() {
    let topic = unique_name("kpq");
    create_topic_on(&shared_broker(), &topic, 2);
    let base = now_ms() - 60_000;
    let msgs: Vec<Msg> = (0..90).map(|i| msg((i % 2) as i32, (i % 4 != 0).then(|| format!("k{i}")).as_deref(), &awkward(i), base + i as i64 * 3 + 1)).collect();
    let offsets = produce(&topic, &msgs);
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let o = migrate(&kafka_url(&topic), &format!("file://{}", out.path().display()), state.path(), &["--mode", "full-load", "--format", "parquet"]);
    assert_ok(&o, "kafka -> parquet");
    let files = read_dir(out.path());
    let mut rows = Vec::new();
    for (name, f) in files["files"].as_object().unwrap() {
        assert_eq!(f["format"], "parquet", "{name}");
        let cols: Vec<&str> = f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap()).collect();
        assert_eq!(cols, ["Op", "stream", "shard", "offset", "key", "time", "data"], "{name}");
        for r in f["rows"].as_array().unwrap() {
            assert_eq!(r[0], "I");
            let ms = chrono::DateTime::parse_from_rfc3339(r[5].as_str().unwrap()).unwrap().timestamp_millis();
            rows.push((r[2].as_str().unwrap().to_string(), r[3].as_str().unwrap().parse::<i64>().unwrap(), serde_json::json!([r[2], r[3], r[4], r[6], r[1], ms])));
        }
    }
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let got: Vec<Json> = rows.into_iter().map(|r| r.2).collect();
    assert_eq!(got, expected(&topic, &msgs, &offsets), "every message once, in Parquet, exact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_a_rerun_loses_and_repeats_nothing() {
    let topic = unique_name("kkill");
    create_topic_on(&shared_broker(), &topic, 3);
    let base = now_ms() - 60_000;
    let body = "x".repeat(200);
    let first: Vec<Msg> = (0..30_000).map(|i| msg(i % 3, Some(&format!("k{i}")), &format!("{i} {body}"), base)).collect();
    produce(&topic, &first);
    // No primary key: a record applied twice would show as two rows.
    let schema = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(schema.path(), "CREATE TABLE kill_test (_shard text NOT NULL, _offset bigint NOT NULL, body text);").unwrap();
    let schema_arg = schema.path().to_str().unwrap();
    let db = TestDb::new(Engine::Postgres, "kafka_kill").await;
    let state = tempfile::tempdir().unwrap();
    let args = ["--schema", schema_arg, "--record-format", "text", "--batch-changes", "1000"];
    let mut child = follow(&kafka_url(&topic), &db.url, state.path(), &args);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = db.try_query_row("SELECT count(*) FROM kill_test").await.ok().and_then(|r| r[0].clone()).unwrap_or_default();
        if n.parse::<u64>().unwrap_or(0) > 0 {
            break;
        }
        assert_running(&mut child, "before any record landed");
        assert!(Instant::now() < deadline, "no record landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill: u64 = db.query_row("SELECT count(*) FROM kill_test").await[0].as_deref().unwrap().parse().unwrap();
    assert!(at_kill < 30_000, "barge read everything before the kill; give it more to read");

    // More arrives while barge is down; the rerun reads on to the end.
    let second: Vec<Msg> = (30_000..31_000).map(|i| msg(i % 3, None, &format!("{i} {body}"), base)).collect();
    produce(&topic, &second);
    let o = migrate(&kafka_url(&topic), &db.url, state.path(), &[&["--mode", "full-load"][..], &args].concat());
    assert_ok(&o, "rerun after kill -9");
    let per_shard = db
        .query_row("SELECT string_agg(format('%s:%s:%s:%s', _shard, n, lo, hi), ',' ORDER BY _shard) FROM (SELECT _shard, count(*) n, min(_offset) lo, max(_offset) hi FROM kill_test GROUP BY 1) s")
        .await;
    let want = (0..3).map(|p| format!("{topic}.{p}:10333:0:10332")).collect::<Vec<_>>().join(",").replace(&format!("{topic}.0:10333:0:10332"), &format!("{topic}.0:10334:0:10333"));
    assert_eq!(per_shard[0].as_deref(), Some(want.as_str()), "every offset once per partition (killed at {at_kill} rows)");
    let distinct = db.query_row("SELECT count(*), count(DISTINCT (_shard, _offset)), count(DISTINCT split_part(body, ' ', 1)) FROM kill_test").await;
    assert_eq!(distinct, vec![Some("31000".into()), Some("31000".into()), Some("31000".into())]);
    db.drop_db().await;
}

/// A tansu broker of the test's own, storing in a bucket on the shared
/// S3 server (moto), so a restart keeps the topics and offsets.
struct PrivateBroker {
    child: Option<Child>,
    port: u16,
    bucket: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateBroker {
    fn start() -> PrivateBroker {
        let bucket = unique_name("tansu");
        create_bucket(&bucket);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tansu.log");
        let mut b = PrivateBroker { child: None, port, bucket, log, _dir: dir };
        b.launch();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let url = format!("tcp://{}", self.addr());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env("BARGE_TEST_TANSU_BIN"))
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--cluster-id", "barge-restart"])
            .arg("--storage-engine")
            .arg(format!("s3://{}/", self.bucket))
            .env("AWS_ENDPOINT", env("BARGE_TEST_S3_ENDPOINT"))
            .env("AWS_ALLOW_HTTP", "true")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen: {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_is_ridden_out() {
    let mut broker = PrivateBroker::start();
    let topic = unique_name("krestart");
    create_topic_on(&broker.addr(), &topic, 2);
    let base = now_ms() - 60_000;
    let first: Vec<Msg> = (0..200).map(|i| msg(i % 2, Some(&format!("k{i}")), &format!("before {i}"), base + i as i64)).collect();
    let first_offsets = produce_on(&broker.addr(), &topic, &first);
    let db = TestDb::new(Engine::Postgres, "kafka_restart").await;
    let state = tempfile::tempdir().unwrap();
    let url = format!("kafka://{}/{topic}", broker.addr());
    let table = table_of(&topic);
    let mut child = follow(&url, &db.url, state.path(), &[]);
    wait_for(&db, &format!("SELECT count(*) FROM \"{table}\""), "200", &mut child).await;

    broker.stop();
    std::thread::sleep(Duration::from_secs(1));
    assert_running(&mut child, "while the broker was down");
    broker.launch();
    let second: Vec<Msg> = (200..400).map(|i| msg(i % 2, Some(&format!("k{i}")), &format!("after {i}"), base + i as i64)).collect();
    let second_offsets = produce_on(&broker.addr(), &topic, &second);
    wait_for(&db, &format!("SELECT count(*) FROM \"{table}\""), "400", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));

    let all: Vec<Msg> = first.iter().chain(&second).cloned().collect();
    let offsets: Vec<i64> = first_offsets.iter().chain(&second_offsets).copied().collect();
    assert_eq!(landed(&db, &table).await, expected(&topic, &all, &offsets), "every message once across the restart");
    assert_eq!(saved_position(&db).await, format!("shards:{topic}.0=200,{topic}.1=200"));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_at_timestamp_and_the_saved_position_start_where_they_say() {
    let topic = unique_name("kstart");
    create_topic_on(&shared_broker(), &topic, 2);
    let t = now_ms() - 3_600_000;
    let (old, mid) = (t - 3_600_000, t + 60_000);
    let mut msgs: Vec<Msg> = (0..5).map(|i| msg(0, None, &format!("old {i}"), old + i)).collect();
    msgs.extend((0..5).map(|i| msg(0, None, &format!("mid {i}"), mid + i)));
    // Stamped before the time, but after the first message at or past it:
    // Kafka's at-timestamp reads on from that first one, so this one too.
    msgs.push(msg(0, None, "late", old));
    msgs.extend((0..5).map(|i| msg(1, None, &format!("old {i}"), old + i)));
    produce(&topic, &msgs);
    let db = TestDb::new(Engine::Postgres, "kafka_start").await;
    let table = table_of(&topic);
    let at = chrono::DateTime::from_timestamp_millis(t).unwrap().to_rfc3339();
    let o = migrate(&kafka_url(&topic), &db.url, tempfile::tempdir().unwrap().path(), &["--mode", "full-load", "--start-position", &format!("at-timestamp:{at}")]);
    assert_ok(&o, "at-timestamp");
    let got = db.query_row(&format!("SELECT string_agg(shard || '/' || \"offset\" || '/' || data, ',' ORDER BY shard, \"offset\"::int) FROM \"{table}\"")).await;
    let want = (0..5).map(|i| format!("{topic}.0/{}/mid {i}", 5 + i)).chain([format!("{topic}.0/10/late")]).collect::<Vec<_>>().join(",");
    assert_eq!(got[0].as_deref(), Some(want.as_str()), "from the first message at or after {at}; none of partition 1 (all older)");
    assert_eq!(saved_position(&db).await, format!("shards:{topic}.0=11,{topic}.1=5"));

    // latest: only what arrives once barge runs. Probes go to partition 0
    // until one lands (so barge has surely started), then the real batch.
    let db2 = TestDb::new(Engine::Postgres, "kafka_latest").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = follow(&kafka_url(&topic), &db2.url, state.path(), &["--start-position", "latest"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        produce(&topic, &[msg(0, Some("probe"), "probe", now_ms())]);
        let n = db2.try_query_row(&format!("SELECT count(*) FROM \"{table}\"")).await.ok().and_then(|r| r[0].clone()).unwrap_or_default();
        if n.parse::<u64>().unwrap_or(0) > 0 {
            break;
        }
        assert_running(&mut child, "before a probe landed");
        assert!(Instant::now() < deadline, "no probe landed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    produce(&topic, &[msg(0, Some("new"), "new 0", now_ms()), msg(0, Some("new"), "new 1", now_ms())]);
    wait_for(&db2, &format!("SELECT count(*) FROM \"{table}\" WHERE key = 'new'"), "2", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let stale = format!("SELECT count(*) FROM \"{table}\" WHERE key IS DISTINCT FROM 'probe' AND key IS DISTINCT FROM 'new'");
    assert_eq!(db2.query_row(&stale).await[0].as_deref(), Some("0"), "nothing from before the start");
    // The saved position holds partition 1 too (at its end, nothing read
    // there): a rerun with the default start (checkpoint) does not read
    // its old messages from the earliest offset.
    assert!(saved_position(&db2).await.contains(&format!("{topic}.1=5")), "{}", saved_position(&db2).await);
    let o = migrate(&kafka_url(&topic), &db2.url, state.path(), &["--mode", "full-load", "--start-position", "checkpoint"]);
    assert_ok(&o, "rerun from the checkpoint");
    assert_eq!(db2.query_row(&stale).await[0].as_deref(), Some("0"), "the rerun resumed from the saved position");
    db.drop_db().await;
    db2.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lists_globs_and_topics_that_appear_while_following() {
    let prefix = unique_name("kglob");
    let (a, b, c) = (format!("{prefix}.a"), format!("{prefix}.b"), format!("{prefix}.c"));
    create_topic_on(&shared_broker(), &a, 1);
    create_topic_on(&shared_broker(), &b, 2);
    create_topic_on(&shared_broker(), &format!("{prefix}-other"), 1);
    let now = now_ms();
    produce(&a, &[msg(0, None, "a0", now), msg(0, None, "a1", now)]);
    produce(&b, &[msg(0, None, "b0", now), msg(1, None, "b1", now)]);
    produce(&format!("{prefix}-other"), &[msg(0, None, "not this one", now)]);

    let db = TestDb::new(Engine::Postgres, "kafka_glob").await;
    let glob_url = kafka_url(&format!("{prefix}.*"));
    let table = table_of(&prefix);
    let mut child = follow(&glob_url, &db.url, tempfile::tempdir().unwrap().path(), &[]);
    wait_for(&db, &format!("SELECT count(*) FROM \"{table}\""), "4", &mut child).await;
    // A topic created while barge follows, matched by the glob: read from
    // its start once the metadata is read again.
    create_topic_on(&shared_broker(), &c, 1);
    produce(&c, &[msg(0, Some("c"), "c0", now)]);
    wait_for(&db, &format!("SELECT count(*) FROM \"{table}\""), "5", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let got = db.query_row(&format!("SELECT string_agg(stream || '/' || shard || '/' || data, ',' ORDER BY data) FROM \"{table}\"")).await;
    assert_eq!(got[0].as_deref(), Some(format!("{a}/{a}.0/a0,{a}/{a}.0/a1,{b}/{b}.0/b0,{b}/{b}.1/b1,{c}/{c}.0/c0").as_str()));

    // ?topics=a,b: exactly those.
    let o = migrate(&format!("kafka://{}/?topics={a},{c}", shared_broker()), &db.url, tempfile::tempdir().unwrap().path(), &["--mode", "full-load"]);
    assert_ok(&o, "?topics=");
    assert_eq!(db.query_row("SELECT string_agg(data, ',' ORDER BY data) FROM records").await[0].as_deref(), Some("a0,a1,c0"));

    // Names that match nothing: a clear error, not an empty success.
    let o = migrate(&kafka_url(&format!("{prefix}.missing")), &db.url, tempfile::tempdir().unwrap().path(), &["--mode", "full-load"]);
    assert!(!o.status.success());
    assert!(support::stderr(&o).contains(&format!("topic {prefix}.missing does not exist")), "{}", text(&o));
    let o = migrate(&kafka_url(&format!("{prefix}.zz*")), &db.url, tempfile::tempdir().unwrap().path(), &["--mode", "full-load"]);
    assert!(!o.status.success());
    assert!(support::stderr(&o).contains(&format!("no topic matches {prefix}.zz*")), "{}", text(&o));
    db.drop_db().await;
}

/// Stream to stream: each message goes into Kinesis as it came, keyed by
/// its Kafka key (a keyless one by its partition), so every key's order
/// holds on the other side.
#[tokio::test]
async fn records_pass_from_kafka_into_kinesis_as_they_came_keeping_their_keys() {
    let topic = unique_name("pass");
    create_topic_on(&shared_broker(), &topic, 2);
    let ts = now_ms();
    let mut msgs: Vec<Msg> = (0..30).map(|i| msg((i % 5) % 2, Some(&format!("k{}", i % 5)), &format!(r#"{{"k":"k{}","n":"{i}"}}"#, i % 5), ts)).collect();
    msgs.push(msg(0, None, r#"{"k":null,"n":"keyless"}"#, ts));
    produce(&topic, &msgs);
    let stream = unique_name("pass-kin");
    support::sinks::create_stream(&stream, 2);
    let target = format!("kinesis://{stream}?endpoint={}&region=us-east-1", env("BARGE_TEST_KINESIS_ENDPOINT"));
    let state = tempfile::tempdir().unwrap();
    let out = run(barge().args(["migrate", &kafka_url(&topic), &target, "--mode", "full-load", "--state-dir"]).arg(state.path()));
    assert_ok(&out, "kafka into kinesis");
    assert!(support::stderr(&out).contains("records pass through as they came"), "{}", text(&out));
    let back = support::sinks::read_back(&["kinesis", &stream]);
    let recs = back["records"].as_array().unwrap();
    assert_eq!(recs.len(), 31, "every message once: {recs:?}");
    for k in 0..5 {
        let key = format!("k{k}");
        let ns: Vec<String> = recs.iter().filter(|r| r["key"] == key.as_str()).map(|r| r["body"]["n"].as_str().unwrap().to_string()).collect();
        let want: Vec<String> = (0..30).filter(|i| i % 5 == k).map(|i| i.to_string()).collect();
        assert_eq!(ns, want, "key {key}: its payloads as they came, in order");
    }
    let keyless: Vec<&Json> = recs.iter().filter(|r| r["body"]["n"] == "keyless").collect();
    assert_eq!(keyless.len(), 1);
    assert_eq!(keyless[0]["key"], format!("{topic}.0").as_str(), "a keyless message is keyed by its partition");
}

/// Headers are not carried: the first message that has them is named on
/// the console, once, with their names, and every message still lands.
#[tokio::test]
async fn headers_that_are_not_carried_are_named_once() {
    let topic = unique_name("hdr");
    create_topic_on(&shared_broker(), &topic, 2);
    py_ok(
        "import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1])
p.send(sys.argv[2], value=b'plain', partition=0)
p.send(sys.argv[2], value=b'one', partition=0, headers=[('trace-id', b'abc'), ('schema', b'v2')])
p.send(sys.argv[2], value=b'two', partition=1, headers=[('trace-id', b'def')])
p.flush()",
        &[&shared_broker(), &topic],
    );
    let db = TestDb::new(Engine::Postgres, "kafka_hdr").await;
    let state = tempfile::tempdir().unwrap();
    let out = migrate(&kafka_url(&topic), &db.url, state.path(), &["--mode", "full-load"]);
    assert_ok(&out, "headers");
    let err = support::stderr(&out);
    let named: Vec<&str> = err.lines().filter(|l| l.contains("which barge does not carry")).collect();
    assert_eq!(named.len(), 1, "named once:\n{err}");
    assert!(named[0].contains("trace-id") && named[0].contains(&format!("topic {topic} partition")), "{}", named[0]);
    let row = db.query_row(&format!("SELECT string_agg(data, ',' ORDER BY data) FROM \"{}\"", table_of(&topic))).await;
    assert_eq!(row[0].as_deref(), Some("one,plain,two"));
    db.drop_db().await;
}
