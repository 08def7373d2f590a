//! Files on `file:///dir` and `s3://bucket/prefix` (moto) as records: CSV
//! by its header, JSON lines and Parquet into a real PostgreSQL with exact
//! values; a rerun reads only new files; a kill -9 loses and repeats
//! nothing; a file that appears before what was read is refused by name;
//! a bad line is named by file and line; a large file is read in bounded
//! memory.

use std::io::Write;
use std::path::Path;

use crate::support::{assert_ok, barge, run, stderr, text, Engine, TestDb};

fn migrate(source: &str, db: &TestDb, schema: &Path, state: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = barge();
    c.args(["migrate", source, &db.url, "--schema"]).arg(schema).arg("--state-dir").arg(state).args(extra);
    c
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(30,10) NOT NULL, placed timestamptz, note text, tags jsonb, _shard text, _offset text);";

#[tokio::test]
async fn csv_files_by_header_land_exactly_and_a_rerun_reads_only_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("in");
    std::fs::create_dir_all(files.join("day1")).unwrap();
    std::fs::write(dir.path().join("orders.sql"), ORDERS).unwrap();
    // Columns in another order than the table's; a quoted field over two
    // lines; an empty field is NULL.
    std::fs::write(
        files.join("day1/0001.csv"),
        "note,id,amount,placed,tags\r\n\"two\nlines, \"\"quoted\"\"\",1,12345678901234567890.0123456789,2026-12-01 10:00:00+02,\"{\"\"a\"\": [1, 2.50]}\"\r\nZürich,2,-0.0000000001,,\r\n",
    )
    .unwrap();
    std::fs::write(files.join("day1/0002.csv.gz"), gzip(b"id,amount,placed\n3,7,2026-12-01T23:59:59.999999Z\n")).unwrap();
    std::fs::write(files.join("day1/README.txt"), "not data").unwrap();
    let db = TestDb::new(Engine::Postgres, "filescsv").await;
    let state = dir.path().join("state");
    let url = format!("file://{}", files.display());
    let schema = dir.path().join("orders.sql");
    let out = run(&mut migrate(&url, &db, &schema, &state, &["--record-format", "csv"]));
    assert_ok(&out, "CSV files into PostgreSQL");
    assert!(stderr(&out).contains("README.txt"), "a file left alone is named:\n{}", text(&out));
    // A file without some of the table's columns: NULL there, and said once.
    let err = stderr(&out);
    let missing = err.lines().filter(|l| l.contains("0002.csv.gz: no column note (its columns: amount, id, placed)")).count();
    assert_eq!(missing, 1, "named once:\n{}", text(&out));
    let row = db.query_row("SELECT amount::text, placed AT TIME ZONE 'UTC', note, tags::text, _shard, _offset FROM orders WHERE id = 1").await;
    assert_eq!(
        row,
        vec![
            Some("12345678901234567890.0123456789".into()),
            Some("2026-12-01 08:00:00".into()),
            Some("two\nlines, \"quoted\"".into()),
            Some(r#"{"a": [1, 2.50]}"#.into()),
            Some("day1/0001.csv".into()),
            Some("2".into())
        ],
        "every digit, the zone, the JSON as written; shard and offset: file and line"
    );
    let row = db.query_row("SELECT amount::text, placed IS NULL, note, tags IS NULL, _offset FROM orders WHERE id = 2").await;
    assert_eq!(row, vec![Some("-0.0000000001".into()), Some("t".into()), Some("Zürich".into()), Some("t".into()), Some("4".into())]);
    let row = db.query_row("SELECT to_char(placed AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), _shard FROM orders WHERE id = 3").await;
    assert_eq!(row, vec![Some("2026-12-01 23:59:59.999999".into()), Some("day1/0002.csv.gz".into())], "a gzip file");

    // New files after the last one: only they are read.
    std::fs::write(files.join("day1/0003.csv"), "id,amount\n4,4.5\n5,5\n").unwrap();
    std::fs::create_dir(files.join("day2")).unwrap();
    std::fs::write(files.join("day2/0001.csv"), "id,amount\n6,6\n").unwrap();
    let out = run(&mut migrate(&url, &db, &schema, &state, &["--record-format", "csv"]));
    assert_ok(&out, "rerun");
    let row = db.query_row("SELECT count(*), sum(amount)::text FROM orders").await;
    assert_eq!(row, vec![Some("6".into()), Some("12345678901234567912.5123456788".into())], "each row once");
    db.drop_db().await;
}

#[tokio::test]
async fn a_file_that_sorts_before_what_was_read_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("in");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(dir.path().join("orders.sql"), ORDERS).unwrap();
    std::fs::write(files.join("2026-12-01.jsonl"), "{\"id\": 1, \"amount\": 1}\n").unwrap();
    std::fs::write(files.join("2026-12-03.jsonl.zst"), zstd::encode_all(&b"{\"id\": 3, \"amount\": 3.25, \"tags\": \"a string\"}\n"[..], 0).unwrap()).unwrap();
    let db = TestDb::new(Engine::Postgres, "filesorder").await;
    let state = dir.path().join("state");
    let url = format!("file://{}", files.display());
    let schema = dir.path().join("orders.sql");
    assert_ok(&run(&mut migrate(&url, &db, &schema, &state, &[])), "JSON lines files");
    let row = db.query_row("SELECT count(*), sum(amount)::text, max(tags::text) FROM orders").await;
    assert_eq!(row, vec![Some("2".into()), Some("4.2500000000".into()), Some("\"a string\"".into())], "a zstd file; a JSON string into jsonb stays a string");

    std::fs::write(files.join("2026-12-02.jsonl"), "{\"id\": 2, \"amount\": 2}\n").unwrap();
    let out = run(&mut migrate(&url, &db, &schema, &state, &[]));
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("2026-12-02.jsonl") && err.contains("2026-12-03.jsonl.zst") && err.contains("sorts after"), "names the new file, what it sorts before, and the way on:\n{err}");
    assert_eq!(db.query_row("SELECT count(*) FROM orders").await[0].as_deref(), Some("2"));

    // Followed as the hint says: a key after the last file.
    std::fs::rename(files.join("2026-12-02.jsonl"), files.join("2026-12-04.jsonl")).unwrap();
    assert_ok(&run(&mut migrate(&url, &db, &schema, &state, &[])), "after the rename");
    assert_eq!(db.query_row("SELECT count(*) FROM orders").await[0].as_deref(), Some("3"));
    db.drop_db().await;
}

#[tokio::test]
async fn a_bad_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("in");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(dir.path().join("orders.sql"), ORDERS).unwrap();
    std::fs::write(files.join("a.jsonl"), "{\"id\": 1, \"amount\": 1}\n\n{\"id\": 2, \"amount\": \"lots\"}\n").unwrap();
    let db = TestDb::new(Engine::Postgres, "filesbad").await;
    let state = dir.path().join("state");
    let out = run(&mut migrate(&format!("file://{}", files.display()), &db, &dir.path().join("orders.sql"), &state, &[]));
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("a.jsonl line 3") && err.contains("field amount") && err.contains("--on-error log"), "names file, line, field and the way on:\n{err}");

    std::fs::write(files.join("b.csv"), "id,amount\n1,1\n2,2,2\n").unwrap();
    std::fs::remove_file(files.join("a.jsonl")).unwrap();
    let out = run(&mut migrate(&format!("file://{}", files.display()), &db, &dir.path().join("orders.sql"), &dir.path().join("state2"), &["--record-format", "csv"]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("b.csv line 3"), "{}", text(&out));

    // A CDC file's delete is applied as a delete, not taken for an
    // insert; an Op that is none of I, U, D is named.
    std::fs::remove_file(files.join("b.csv")).unwrap();
    std::fs::write(files.join("20261201-100000000-1.csv"), "Op,id,amount\nI,1,1\nI,7,7\nD,1,\nU,7,8\n").unwrap();
    let out = run(&mut migrate(&format!("file://{}", files.display()), &db, &dir.path().join("orders.sql"), &dir.path().join("state3"), &["--record-format", "csv"]));
    assert_ok(&out, "a CDC file");
    assert_eq!(db.query_row("SELECT string_agg(id || '=' || amount::int, ',') FROM orders").await[0].as_deref(), Some("7=8"));
    std::fs::write(files.join("20261201-100000001-2.csv"), "Op,id,amount\nX,1,1\n").unwrap();
    let out = run(&mut migrate(&format!("file://{}", files.display()), &db, &dir.path().join("orders.sql"), &dir.path().join("state3"), &["--record-format", "csv"]));
    assert!(!out.status.success() && stderr(&out).contains("20261201-100000001-2.csv line 2") && stderr(&out).contains("Op is X"), "{}", text(&out));
    std::fs::remove_file(files.join("20261201-100000001-2.csv")).unwrap();
    std::fs::remove_file(files.join("20261201-100000000-1.csv")).unwrap();

    let out = run(&mut migrate("file:///no/such/dir", &db, &dir.path().join("orders.sql"), &state, &[]));
    assert!(!out.status.success() && stderr(&out).contains("does not exist"), "{}", text(&out));
    db.drop_db().await;
}

/// Puts JSON lines files `from..to` (each `lines` records, ids numbered
/// through) under `prefix` in `bucket`.
fn put_files(bucket: &str, prefix: &str, from: usize, to: usize, lines: usize) {
    crate::support::sinks::py(
        "import boto3,os,sys
s3 = boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
b, p, a, z, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for f in range(a, z):
    body = ''.join('{\"id\": %d, \"amount\": \"%d.%02d\", \"at\": \"2026-12-01T10:00:00.%06d+01:00\"}\\n' % (f * n + i, f, i % 100, i) for i in range(n))
    s3.put_object(Bucket=b, Key='%s/part-%05d.jsonl' % (p, f), Body=body.encode())",
        &[bucket, prefix, &from.to_string(), &to.to_string(), &lines.to_string()],
    );
}

#[tokio::test]
async fn s3_files_through_a_kill_and_a_rerun_land_once_each() {
    let bucket = crate::support::sinks::unique_name("files");
    crate::support::sinks::create_bucket(&bucket);
    // Files of 5,000 rows span several batches: the kill lands inside one.
    let n = 5000;
    put_files(&bucket, "in/events", 0, 10, n);
    let dir = tempfile::tempdir().unwrap();
    // No primary key: a row read twice would show as two.
    std::fs::write(dir.path().join("ev.sql"), "CREATE TABLE ev (id bigint NOT NULL, amount numeric(12,2) NOT NULL, at timestamptz NOT NULL, _shard text);").unwrap();
    let schema = dir.path().join("ev.sql");
    let db = TestDb::new(Engine::Postgres, "filess3").await;
    let state = dir.path().join("state");
    let url = format!("s3://{bucket}/in/events?endpoint={}", std::env::var("BARGE_TEST_S3_ENDPOINT").unwrap());
    let mut child = migrate(&url, &db, &schema, &state, &["--mode", "cdc", "--batch-changes", "300"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    crate::support::wait_for(&db, "SELECT count(*) >= 12000 FROM ev", "t", &mut child).await;
    put_files(&bucket, "in/events", 10, 12, n);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = db.query_row("SELECT count(*) FROM ev").await[0].clone().unwrap();
    let files = 13;
    assert_ne!(before, (files * n).to_string(), "the kill came before the end");
    put_files(&bucket, "in/events", 12, 13, n);
    let out = run(&mut migrate(&url, &db, &schema, &state, &[]));
    assert_ok(&out, "the rerun after the kill");
    let row = db.query_row("SELECT count(*), count(DISTINCT id), min(id), max(id), sum(amount)::text, count(DISTINCT _shard) FROM ev").await;
    // amount = file + (line % 100) / 100
    let sum = (n * (0..files).sum::<usize>()) as f64 + (files * (n / 100)) as f64 * 49.5;
    assert_eq!(
        row,
        vec![Some((files * n).to_string()), Some((files * n).to_string()), Some("0".into()), Some((files * n - 1).to_string()), Some(format!("{sum:.2}")), Some(files.to_string())],
        "every row once, from every file (had {before} at the kill)"
    );
    let row = db.query_row(&format!("SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI:SS.US') FROM ev WHERE id = {}", files * n - 1)).await;
    assert_eq!(row[0].as_deref(), Some("09:00:00.004999"));
    db.drop_db().await;
}

const MANY: &str = "CREATE TABLE many (id bigint PRIMARY KEY, dec numeric(30,10), big numeric(60,20), free numeric, at timestamptz, wall timestamp, day date, tod time, u uuid, doc jsonb, raw bytea, span interval, nums int[], note text, ok boolean, f8 double precision, f4 real, small smallint);";

/// The rows of `many` as text, in key order: equal on both sides means
/// every value came through.
async fn many_text(db: &TestDb) -> String {
    db.query_row("SELECT string_agg(m::text, E'\\n' ORDER BY id) FROM many m").await[0].clone().unwrap_or_default()
}

#[tokio::test]
async fn parquet_files_written_by_barge_read_back_into_postgres_equal() {
    let src = crate::support::sinks::pg_with(
        &format!(
            "{MANY}
INSERT INTO many VALUES
 (1, 12345678901234567890.0123456789, -1234567890123456789012345678901234567890.12345678901234567890, 3.14159, '2026-12-01 10:00:00.123456+02', '2026-12-01 10:00:00.654321', '2026-02-28', '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"a\": [1, 2.50], \"b\": null}}', '\\x00ff10', '1 year 2 mons 3 days 04:05:06.000007', '{{1,NULL,3}}', 'two\nlines, \"quoted\"', true, 1.5e300, 0.1, -32768),
 (2, -0.0000000001, 0, 0.00000000000000000001, '1970-01-01 00:00:00+00', '1900-01-01 00:00:00', '0044-03-15', '00:00:00', NULL, '\"a string\"', '\\x', '-00:00:00.5', '{{}}', '', false, 'NaN', '-Infinity', 0),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ),
        "filespqsrc",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("lake");
    let out = crate::support::sinks::migrate_to(&src, &format!("file://{}", out_dir.display()), &["--format", "parquet"]);
    assert_ok(&out, "PostgreSQL into Parquet files");
    std::fs::write(dir.path().join("many.sql"), MANY).unwrap();
    let db = TestDb::new(Engine::Postgres, "filespq").await;
    let url = format!("file://{}/public/many", out_dir.display());
    let out = run(&mut migrate(&url, &db, &dir.path().join("many.sql"), &dir.path().join("state"), &["--record-format", "parquet"]));
    assert_ok(&out, "Parquet files into PostgreSQL");
    let want = many_text(&src).await;
    assert!(want.contains("12345678901234567890.0123456789") && want.contains("\n(3,"), "{want}");
    // An unconstrained numeric is written at one scale per file (Parquet
    // DECIMAL has one per column): equal in value, with trailing zeros.
    assert_eq!(db.query_row("SELECT free::text FROM many WHERE id = 1").await[0].as_deref(), Some("3.14159000000000000000"));
    crate::support::exec(&db, "UPDATE many SET free = trim_scale(free)").await;
    assert_eq!(many_text(&db).await, want, "every value as the source holds it");
    src.drop_db().await;
    db.drop_db().await;
}

#[tokio::test]
async fn csv_files_without_a_header_land_in_parquet_files_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("in");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(dir.path().join("orders.sql"), ORDERS).unwrap();
    // --no-header: fields in the table's column order (metadata columns aside).
    std::fs::write(files.join("a.csv"), "1,12345678901234567890.0123456789,2026-12-01 10:00:00.5+02,\"a, b\",\"{\"\"k\"\": 1.10}\"\n2,-3,,,\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = run(barge()
        .args(["migrate", &format!("file://{}", files.display()), &format!("file://{}", out_dir.display()), "--record-format", "csv", "--no-header", "--format", "parquet", "--schema"])
        .arg(dir.path().join("orders.sql"))
        .arg("--state-dir")
        .arg(dir.path().join("state")));
    assert_ok(&out, "CSV files into Parquet files");
    let back = crate::support::sinks::read_dir(&out_dir);
    let mut rows = Vec::new();
    for (name, f) in back["files"].as_object().unwrap() {
        assert!(name.ends_with(".parquet"), "only data files: {name}");
        let cols: Vec<String> = f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap().to_string()).collect();
        for r in f["rows"].as_array().unwrap() {
            let at = |c: &str| r[cols.iter().position(|x| x == c).unwrap()].clone();
            rows.push(serde_json::json!([at("id"), at("amount"), at("placed"), at("note"), at("tags"), at("_offset")]));
        }
    }
    rows.sort_by_key(|r| r[0].as_str().unwrap().to_string());
    assert_eq!(
        serde_json::Value::Array(rows),
        serde_json::json!([
            ["1", "12345678901234567890.0123456789", "2026-12-01T08:00:00.500000+00:00", "a, b", "{\"k\": 1.10}", "1"],
            ["2", "-3.0000000000", null, null, null, "2"]
        ])
    );
}

/// A file is streamed, not held. `n` JSON lines of about 100 bytes,
/// gzip-compressed, into `path`, written by awk and gzip (fast,
/// even under a debug build of the tests).
fn big_jsonl_gz(path: &Path, n: usize) {
    let script = format!(
        "seq 1 {n} | awk '{{printf \"{{\\\"id\\\":%d,\\\"note\\\":\\\"the quick brown fox jumps over the lazy dog, again and again %d\\\"}}\\n\", $1, $1}}' | gzip -1 > '{}'",
        path.display()
    );
    let st = std::process::Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(st.success(), "{script}");
}

/// `migrate SOURCE null:// --record-format json`: its peak RSS, having
/// checked that every record went through.
fn peak_kb_reading(source: &str, records: usize) -> u64 {
    let state = tempfile::tempdir().unwrap();
    let (out, kb) = crate::support::peak_rss_kb(barge().args(["migrate", source, "null://", "--record-format", "json", "--state-dir"]).arg(state.path()));
    assert_ok(&out, source);
    let counted = crate::support::stdout(&out).lines().any(|l| l.split_whitespace().nth(1) == Some(records.to_string().as_str()));
    assert!(counted, "{records} records reported:\n{}", text(&out));
    assert!(kb > 0, "RSS was read");
    kb
}

/// 100 MB of JSON lines in a 5 MB gzip file, on the disk and on S3, cost
/// barge about what a thousand lines do: the file is read a block at a
/// time (it used to be held whole, decompressed, with an index of every
/// line: 130 MB more than the small file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_gzip_file_is_read_in_bounded_memory_from_disk_and_s3() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    std::fs::create_dir(&small).unwrap();
    std::fs::create_dir(&big).unwrap();
    big_jsonl_gz(&small.join("a.jsonl.gz"), 1_000);
    let n = 1_000_000;
    big_jsonl_gz(&big.join("a.jsonl.gz"), n);
    let base = peak_kb_reading(&format!("file://{}", small.display()), 1_000);
    let local = peak_kb_reading(&format!("file://{}", big.display()), n);
    assert!(local < base + 40 * 1024, "reading 100 MB of lines took {local} KB at peak, against {base} KB for 1,000 lines");

    let bucket = crate::support::sinks::unique_name("bigfile");
    crate::support::sinks::create_bucket(&bucket);
    crate::support::sinks::py(
        "import boto3,os,sys\nboto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT']).upload_file(sys.argv[1], sys.argv[2], 'in/a.jsonl.gz')",
        &[big.join("a.jsonl.gz").to_str().unwrap(), &bucket],
    );
    let url = format!("s3://{bucket}/in?endpoint={}", std::env::var("BARGE_TEST_S3_ENDPOINT").unwrap());
    let s3 = peak_kb_reading(&url, n);
    assert!(s3 < base + 40 * 1024, "reading 100 MB of lines from S3 took {s3} KB at peak, against {base} KB for 1,000 lines from the disk");
}
