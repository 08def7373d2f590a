//! A database's changes, through a stream or files, applied to another
//! database: `postgres → kinesis|kafka|s3|file → barge → mysql|postgres`
//! reproduces the source tables (updates, deletes and a key change
//! included), as DMS's Kinesis and S3 sources do. `barge validate` then
//! compares the source with the copy, row by row.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::sinks::*;
use support::*;

/// The source tables, in pg_dump's style (keys added by ALTER TABLE).
const DDL: &str = "
CREATE TABLE public.acct (id integer NOT NULL, bal numeric(30,10), note text, tags text[], raw bytea, seen timestamp with time zone);
CREATE TABLE public.orders (id bigint NOT NULL, acct_id integer NOT NULL, total numeric(12,2) NOT NULL, placed timestamp without time zone);
ALTER TABLE ONLY public.acct ADD CONSTRAINT acct_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
";

async fn source(tag: &str) -> TestDb {
    pg_with(
        &format!(
            "{DDL}
             INSERT INTO acct SELECT g, g + 0.0000000001, 'n' || g, ARRAY['a' || g, 'q\"uote'], decode('00ff' || lpad(to_hex(g), 2, '0'), 'hex'), '2026-01-02 03:04:05.123456+02' FROM generate_series(1, 12) g;
             INSERT INTO orders SELECT g, 1 + g % 12, g * 1.25, '2026-03-04 05:06:07.654321' FROM generate_series(1, 30) g;"
        ),
        tag,
    )
    .await
}

/// Changes of every kind, in several transactions: updates (one of
/// only some columns, one to an empty string and an empty array), deletes,
/// inserts, a key change, and a row deleted and inserted again.
async fn change(src: &TestDb) {
    exec(src, "BEGIN; UPDATE acct SET bal = bal + 1, note = 'it''s \"new\"' WHERE id IN (1, 2); DELETE FROM orders WHERE id IN (3, 4); COMMIT").await;
    exec(src, "UPDATE acct SET tags = NULL, raw = NULL WHERE id = 3").await;
    exec(src, "UPDATE acct SET note = '', tags = '{}' WHERE id = 4").await;
    exec(src, "INSERT INTO orders VALUES (31, 5, 99999999.99, NULL), (32, 6, 0.01, '1999-12-31 23:59:59.999999')").await;
    exec(src, "UPDATE acct SET id = 100 WHERE id = 12").await;
    exec(src, "DELETE FROM acct WHERE id = 11").await;
    exec(src, "DELETE FROM orders WHERE id = 5; INSERT INTO orders VALUES (5, 7, 5.55, NULL)").await;
}

/// Records the changes above add to a stream: 2+2, 1, 1, 2, 2 (a key
/// change is a delete of the old key and an insert of the new row), 1, 2.
const CHANGES: usize = 13;

/// Polls `have` until it is at least `n`.
fn wait_for_n(what: &str, n: usize, child: &mut std::process::Child, mut have: impl FnMut() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = have();
        if got >= n {
            return;
        }
        assert_running(child, &format!("while waiting for {n} {what} (have {got})"));
        if Instant::now() >= deadline {
            // What barge said is the first thing to read when records are missing.
            let _ = child.kill();
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("timed out waiting for {n} {what} (have {got}); barge's stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn schema_file(dir: &Path) -> std::path::PathBuf {
    let f = dir.join("schema.sql");
    std::fs::write(&f, DDL).unwrap();
    f
}

/// `barge migrate STREAM DST --schema … --mode full-load` twice: the
/// second run finds nothing new. Then validate says the copy is equal.
async fn apply_and_compare(source_url: &str, src: &TestDb, dst: &TestDb, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(dir.path());
    let state = dir.path().join("state");
    let apply = || {
        run(barge()
            .args(["migrate", source_url, &dst.url, "--mode", "full-load", "--schema"])
            .arg(&schema)
            .args(extra)
            .arg("--state-dir")
            .arg(&state))
    };
    let out = apply();
    assert_ok(&out, "applying the changes");
    assert!(stderr(&out).contains("public.acct") && stderr(&out).contains("public.orders"), "the run names both tables:\n{}", text(&out));
    let out = run(barge().args(["validate", &src.url, &dst.url]));
    assert_ok(&out, "validate after the first run");
    let row = dst.query_row("SELECT count(*), sum(id) FROM acct").await;
    assert_eq!(row, vec![Some("11".into()), Some(format!("{}", (1..=10).sum::<i32>() + 100))], "acct: 11 deleted, 12 became 100");
    let out = apply();
    assert_ok(&out, "the rerun");
    let out = run(barge().args(["validate", &src.url, &dst.url]));
    assert_ok(&out, "validate after the rerun: nothing applied twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_kinesis_into_mariadb_reproduces_the_tables() {
    let src = source("env_kin").await;
    let stream = unique_name("env-kin");
    create_stream(&stream, 2);
    let url = format!("kinesis://{stream}?endpoint={}&region=us-east-1", env("BARGE_TEST_KINESIS_ENDPOINT"));
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, &url, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    change(&src).await;
    wait_for_n("records", 12 + 30 + CHANGES, &mut child, || read_back(&["kinesis", &stream])["records"].as_array().unwrap().len());
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));

    let dst = TestDb::new(Engine::Mysql, "env_kin_dst").await;
    apply_and_compare(&url, &src, &dst, &["--record-format", "dms"]).await;
    let row = dst.query_row("SELECT CAST(bal AS CHAR), note, HEX(raw), JSON_EXTRACT(tags, '$[1]') FROM acct WHERE id = 1").await;
    assert_eq!(row, vec![Some("2.0000000001".into()), Some("it's \"new\"".into()), Some("00FF01".into()), Some("\"q\\\"uote\"".into())]);
    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_kafka_as_debezium_into_postgres_reproduces_the_tables() {
    let src = source("env_kafka").await;
    let topic = unique_name("env-kafka");
    create_topic(&topic, 3);
    let url = format!("kafka://{}/{topic}", env("BARGE_TEST_KAFKA_BROKER"));
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, &url, state.path(), &["--envelope", "debezium"]);
    wait_replicating(&mut child, state.path());
    change(&src).await;
    wait_for_n("records", 12 + 30 + CHANGES, &mut child, || read_back(&["kafka", &topic])["records"].as_array().unwrap().len());
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));

    let dst = TestDb::new(Engine::Postgres, "env_kafka_dst").await;
    apply_and_compare(&url, &src, &dst, &["--record-format", "debezium"]).await;
    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
    dst.drop_db().await;
}

/// barge's own S3 layout as a source: LOAD files, then CDC files with an
/// `Op` column, of two tables, applied as changes in order.
async fn through_files(target: &str, source_url: &str, format: &str, tag: &str, count: impl Fn() -> usize) {
    let src = source(tag).await;
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, target, state.path(), &["--format", format, "--buffer-interval", "1"]);
    wait_replicating(&mut child, state.path());
    change(&src).await;
    // Each table's changes in their own files, written once the buffer interval passes.
    wait_for_n("CDC files", 2, &mut child, &count);
    std::thread::sleep(Duration::from_millis(1500));
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));

    let dst = TestDb::new(Engine::Postgres, &format!("{tag}_dst")).await;
    let record_format = if format == "csv" { "csv" } else { format };
    apply_and_compare(source_url, &src, &dst, &["--record-format", record_format]).await;
    let row = dst.query_row("SELECT total::text, placed::text FROM orders WHERE id = 32").await;
    assert_eq!(row, vec![Some("0.01".into()), Some("1999-12-31 23:59:59.999999".into())]);
    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
    dst.drop_db().await;
}

fn cdc_files(dir: &Path) -> usize {
    walk(dir).iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("20")).count()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_csv_files_into_postgres_applies_updates_and_deletes() {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let dir = out.path().to_path_buf();
    through_files(&url, &url, "csv", "env_csv", || cdc_files(&dir)).await;

    // One table's schema over the whole layout: the other table's files
    // are named, not poured into it; its own folder reads alone.
    let one = tempfile::tempdir().unwrap();
    let schema = one.path().join("acct.sql");
    std::fs::write(&schema, "CREATE TABLE public.acct (id integer PRIMARY KEY, bal numeric(30,10), note text, tags text[], raw bytea, seen timestamptz);").unwrap();
    let db = one.path().join("copy.db");
    let apply = |from: &str, state: &str| run(barge().args(["migrate", from, &format!("sqlite:{}", db.display()), "--mode", "full-load", "--record-format", "csv", "--schema"]).arg(&schema).arg("--state-dir").arg(one.path().join(state)));
    let out = apply(&url, "st1");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("public.orders") && stderr(&out).contains("point the URL at the folder"), "{}", text(&out));
    let out = apply(&format!("file://{}/public/acct", dir.display()), "st2");
    assert_ok(&out, "the acct folder alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_s3_parquet_into_postgres_applies_updates_and_deletes() {
    let bucket = unique_name("env-s3");
    create_bucket(&bucket);
    let url = format!("s3://{bucket}/dms?endpoint={}&region=us-east-1", env("BARGE_TEST_S3_ENDPOINT"));
    let b = bucket.clone();
    through_files(&url, &url, "parquet", "env_pq", move || {
        read_back(&["s3", &b, "dms"])["files"].as_object().map(|f| f.keys().filter(|k| k.rsplit('/').next().unwrap_or("").starts_with("20")).count()).unwrap_or(0)
    })
    .await;
}

/// Hand-written envelopes through a tailed file: a change to a table
/// the schema does not define stops the run by name, with nothing of its
/// batch applied; with --on-error log it is set aside and said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_an_unknown_table_is_named_and_nothing_of_its_batch_lands() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let meta = |op: &str, table: &str| format!(r#""metadata":{{"operation":"{op}","record-type":"data","schema-name":"app","table-name":"{table}"}}"#);
    let lines = [
        format!(r#"{{"data":{{"id":1,"v":"1.50"}},{}}}"#, meta("insert", "t")),
        format!(r#"{{"data":{{"id":2,"v":2.25}},{}}}"#, meta("insert", "t")),
        format!(r#"{{"data":{{"id":9}},{}}}"#, meta("insert", "ghost")),
        format!(r#"{{"data":{{"id":1,"v":7}},{}}}"#, meta("update", "t")),
        format!(r#"{{"data":{{"id":2}},{}}}"#, meta("delete", "t")),
    ];
    std::fs::write(logs.join("a.jsonl"), lines.join("\n") + "\n").unwrap();
    let schema = dir.path().join("s.sql");
    std::fs::write(&schema, "CREATE TABLE app.t (id int PRIMARY KEY, v numeric(6,2), parent int REFERENCES app.t (id)); CREATE TABLE app.u (id int PRIMARY KEY); CREATE VIEW app.tv AS SELECT id FROM app.t;").unwrap();
    let db = TestDb::new(Engine::Postgres, "env_unknown").await;
    let url = format!("tail://{}/*.jsonl", logs.display());
    let state = dir.path().join("state");
    let migrate = || {
        let mut c = barge();
        c.args(["migrate", &url, &db.url, "--mode", "full-load", "--record-format", "dms", "--schema"]).arg(&schema).arg("--state-dir").arg(&state);
        c
    };
    let out = run(&mut migrate());
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("app.ghost") && err.contains("add its CREATE TABLE"), "names the table and what to do:\n{err}");
    assert!(err.contains("1 foreign key(s)") && err.contains("1 view(s)"), "says what the schema file holds that is not created:\n{err}");
    assert_eq!(db.try_query_row("SELECT count(*) FROM app.t").await.ok().and_then(|r| r[0].clone()).unwrap_or_default(), "0", "nothing of the failed batch");

    let out = run(migrate().args(["--on-error", "log"]));
    assert_ok(&out, "with --on-error log");
    assert!(stderr(&out).contains("1 row(s) or record(s) the target could not take"), "{}", text(&out));
    let row = db.query_row("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM app.t").await;
    assert_eq!(row[0].as_deref(), Some("1=7.00"), "insert, update, delete applied in order");
    db.drop_db().await;
}
