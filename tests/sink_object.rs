//! migrate to object storage (file:// and s3:// on moto), read back with
//! independent clients (pyarrow, Python's csv and json, boto3) and compared
//! with the source rows value for value: decimals with every digit,
//! timestamps with their unit and zone, NULL apart from the empty string.

use crate::support;

use serde_json::{json, Value};
use support::sinks::*;
use support::*;

/// Every kind of value a PostgreSQL table commonly holds, edge cases included.
const PG_TYPES: &str = r#"
CREATE TABLE t (id int PRIMARY KEY, amount numeric(20,6), anynum numeric, wide numeric(60,20), ts timestamp, tstz timestamptz,
  d date, tm time, u uuid, j jsonb, b bytea, txt text, f float8, ok boolean, arr int[], iv interval, tz timetz, small smallint);
INSERT INTO t VALUES
 (1, 12345678901234.123456, 3.14159265358979323846264338327950288, 1234567890123456789012345678901234567890.12345678901234567890,
  '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.654321+02', '2024-01-01', '12:34:56.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2.50]}', '\x00ff10', E'a,"b"\nc', 1.5, true, '{1,NULL,3}', '1 year 2 mons 3 days 04:05:06.789', '10:00:00+02', -5),
 (2, -0.000001, -7, NULL, '0001-01-01 00:00:00', '1970-01-01 00:00:00+00', '1999-12-31', '00:00:00', NULL, 'null', '', '', NULL, false, '{}', '-1 day', NULL, NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

const COLUMNS: [&str; 18] = ["id", "amount", "anynum", "wide", "ts", "tstz", "d", "tm", "u", "j", "b", "txt", "f", "ok", "arr", "iv", "tz", "small"];

/// The rows as pyarrow reads the Parquet file back (canonical text).
fn parquet_rows() -> Value {
    json!([
        ["1", "12345678901234.123456", "3.14159265358979323846264338327950288", "1234567890123456789012345678901234567890.12345678901234567890",
         "2024-02-29T23:59:59.123456", "2024-02-29T21:59:59.654321+00:00", "2024-01-01", "12:34:56.789000", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
         "{\"a\": [1, 2.50]}", "\\x00ff10", "a,\"b\"\nc", "1.5", "true", ["1", null, "3"], {"months": "14", "days": "3", "microseconds": "14706789000"}, "08:00:00", "-5"],
        // numeric without precision: the file's scale is the largest seen (35), so -7 reads back with 35 zeros.
        ["2", "-0.000001", format!("-7.{}", "0".repeat(35)), null, "0001-01-01T00:00:00", "1970-01-01T00:00:00+00:00", "1999-12-31", "00:00:00", null,
         "null", "\\x", "", null, "false", [], {"months": "0", "days": "-1", "microseconds": "0"}, null, null],
        ["3", null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null]
    ])
}

/// The rows as Python's csv module reads the CSV back (NULL and '' both read as '').
fn csv_rows() -> Value {
    json!([
        ["1", "12345678901234.123456", "3.14159265358979323846264338327950288", "1234567890123456789012345678901234567890.12345678901234567890",
         "2024-02-29T23:59:59.123456", "2024-02-29T21:59:59.654321+00:00", "2024-01-01", "12:34:56.789", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
         "{\"a\": [1, 2.50]}", "\\x00ff10", "a,\"b\"\nc", "1.5", "true", "[1,null,3]", "P1Y2M3DT4H5M6.789S", "10:00:00+02:00", "-5"],
        ["2", "-0.000001", "-7", "", "0001-01-01T00:00:00", "1970-01-01T00:00:00+00:00", "1999-12-31", "00:00:00", "", "null", "\\x", "", "", "false", "[]", "P-1D", "", ""],
        ["3", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""]
    ])
}

/// The rows as Python's json module reads the JSON lines back (numbers as Decimal text).
fn jsonl_rows() -> Value {
    let one = json!({"id": "1", "amount": "12345678901234.123456", "anynum": "3.14159265358979323846264338327950288",
        "wide": "1234567890123456789012345678901234567890.12345678901234567890", "ts": "2024-02-29T23:59:59.123456",
        "tstz": "2024-02-29T21:59:59.654321+00:00", "d": "2024-01-01", "tm": "12:34:56.789", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": {"a": ["1", "2.50"]}, "b": "\\x00ff10", "txt": "a,\"b\"\nc", "f": "1.5", "ok": "true", "arr": ["1", null, "3"],
        "iv": "P1Y2M3DT4H5M6.789S", "tz": "10:00:00+02:00", "small": "-5"});
    let two = json!({"id": "2", "amount": "-0.000001", "anynum": "-7", "wide": null, "ts": "0001-01-01T00:00:00",
        "tstz": "1970-01-01T00:00:00+00:00", "d": "1999-12-31", "tm": "00:00:00", "u": null, "j": null, "b": "\\x", "txt": "",
        "f": null, "ok": "false", "arr": [], "iv": "P-1D", "tz": null, "small": null});
    let mut three = serde_json::Map::new();
    for c in COLUMNS {
        three.insert(c.into(), Value::Null);
    }
    three.insert("id".into(), json!("3"));
    json!([one, two, Value::Object(three)])
}

fn the_file<'a>(back: &'a Value, name: &str) -> &'a Value {
    let files = back["files"].as_object().unwrap();
    files.get(name).unwrap_or_else(|| panic!("no {name}; files: {:?}", files.keys().collect::<Vec<_>>()))
}

fn check_file(f: &Value, format: &str, compression: &str) {
    match format {
        "parquet" => {
            let want = match compression {
                "none" => "UNCOMPRESSED",
                other => &other.to_uppercase(),
            };
            assert_eq!(f["compression"], want);
            assert_eq!(f["rows"], parquet_rows());
            let types: Vec<&str> = f["columns"].as_array().unwrap().iter().map(|c| c[1].as_str().unwrap()).collect();
            assert_eq!(
                types,
                ["int32", "decimal128(20, 6)", "decimal128(38, 35)", "decimal256(60, 20)", "timestamp[us]", "timestamp[us, tz=UTC]", "date32[day]", "time64[us]",
                 "extension<arrow.uuid>", "extension<arrow.json>", "binary", "string", "double", "bool", "list<element: int32>",
                 "struct<months: int32 not null, days: int32 not null, microseconds: int64 not null>", "time64[us]", "int16"]
            );
            let logical: Vec<&str> = f["logical"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            assert!(logical[5].starts_with("Timestamp(isAdjustedToUTC=true, timeUnit=microseconds"), "{logical:?}");
            assert!(logical[4].starts_with("Timestamp(isAdjustedToUTC=false"), "{logical:?}");
            assert_eq!((logical[8], logical[9]), ("UUID", "JSON"));
            // (leaf columns: the list's element and the interval's three fields count one each)
            assert!(logical.iter().any(|l| l.starts_with("Time(isAdjustedToUTC=true")), "timetz is a UTC-adjusted TIME: {logical:?}");
        }
        "csv" => {
            assert_eq!(f["compression"], compression);
            assert_eq!(f["crlf"], true, "RFC 4180 line ends");
            let header: Vec<&str> = f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap()).collect();
            assert_eq!(header, COLUMNS);
            assert_eq!(f["rows"], csv_rows());
        }
        _ => {
            assert_eq!(f["compression"], compression);
            assert_eq!(f["rows"], jsonl_rows());
        }
    }
}

fn ext(format: &str, compression: &str) -> String {
    let suffix = match compression {
        "gzip" => ".gz",
        "zstd" => ".zst",
        "snappy" => ".snappy",
        _ => "",
    };
    if format == "parquet" {
        "parquet".into()
    } else {
        format!("{format}{suffix}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_files_in_every_format_and_compression() {
    let src = pg_with(PG_TYPES, "sink_files").await;
    let out = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl", "parquet"] {
        for compression in ["none", "gzip", "zstd", "snappy"] {
            let dir = out.path().join(format!("{format}-{compression}"));
            let url = format!("file://{}", dir.display());
            let o = migrate_to(&src, &url, &["--format", format, "--compression", compression]);
            assert_ok(&o, &format!("{format}/{compression}"));
            let back = read_dir(&dir);
            assert_eq!(back["files"].as_object().unwrap().len(), 1, "one file, no errors file: {back}");
            check_file(the_file(&back, &format!("public/t/LOAD00000001.{}", ext(format, compression))), format, compression);
        }
    }
    // CSV keeps NULL (empty field) apart from the empty string ("").
    let raw = std::fs::read_to_string(out.path().join("csv-none/public/t/LOAD00000001.csv")).unwrap();
    assert!(raw.contains(",\"\",,false,"), "{raw}");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_s3_on_moto() {
    let src = pg_with(PG_TYPES, "sink_s3").await;
    let bucket = unique_name("s3");
    create_bucket(&bucket);
    let endpoint = env("BARGE_TEST_S3_ENDPOINT");
    for (format, compression) in [("csv", "gzip"), ("jsonl", "zstd"), ("parquet", "snappy"), ("parquet", "zstd")] {
        let prefix = format!("lake/{format}-{compression}");
        let url = format!("s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1");
        let o = migrate_to(&src, &url, &["--format", format, "--compression", compression]);
        assert_ok(&o, &format!("s3 {format}/{compression}"));
        let back = read_back(&["s3", &bucket, &prefix]);
        check_file(the_file(&back, &format!("public/t/LOAD00000001.{}", ext(format, compression))), format, compression);
    }
    // Without credentials the run fails at once with a hint (it never asks the instance-metadata
    // address), and no secret is printed.
    let o = run(barge()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_SECRET_ACCESS_KEY", "hunter2-secret")
        .args(["migrate", &src.url, &format!("s3://{bucket}/x?endpoint={endpoint}"), "--state-dir"])
        .arg(tempfile::tempdir().unwrap().path()));
    assert!(!o.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("no AWS credentials") && text.contains("AWS_ACCESS_KEY_ID"), "{text}");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_files() {
    let src = TestDb::new(Engine::Sqlite, "sink_sqlite").await;
    let path = src.url.trim_start_matches("sqlite:").to_string();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price NUMERIC(10,2), qty REAL, name TEXT, data BLOB, made DATE);
         INSERT INTO items VALUES (1, 19.99, 0.5, 'wrench', x'00ff', '2023-05-01'), (2, 5, -1e10, 'nut \"m6\"', NULL, NULL);",
    )
    .unwrap();
    src.load_script(f.path()).await;
    assert!(std::path::Path::new(&path).exists());
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let o = migrate_to(&src, &url, &["--format", "parquet"]);
    assert_ok(&o, "sqlite → parquet");
    let back = read_dir(out.path());
    let file = the_file(&back, "main/items/LOAD00000001.parquet");
    assert_eq!(file["columns"][1][1], "decimal128(10, 2)", "{file}");
    assert_eq!(file["rows"], json!([["1", "19.99", "0.5", "wrench", "\\x00ff", "2023-05-01"], ["2", "5.00", "-10000000000.0", "nut \"m6\"", null, null]]));
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_parquet_cannot_hold_goes_under_errors_with_the_reason() {
    let src = pg_with(
        "CREATE TABLE ev (id int PRIMARY KEY, at timestamptz, n numeric(10,2));
         INSERT INTO ev VALUES (1, '2024-01-01 00:00:00+00', 1.5), (2, 'infinity', 2), (3, '2024-01-02 00:00:00+00', 'NaN'), (4, NULL, NULL);",
        "sink_errors",
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let o = migrate_to(&src, &url, &["--format", "parquet"]);
    assert!(!o.status.success(), "error records fail the run unless --on-error log");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("2 record(s) could not be converted") && stderr.contains("errors/"), "{stderr}");
    let back = read_dir(out.path());
    assert_eq!(the_file(&back, "public/ev/LOAD00000001.parquet")["rows"], json!([["1", "2024-01-01T00:00:00+00:00", "1.50"], ["4", null, null]]));
    let lines = the_file(&back, "errors/public/ev/LOAD00000001.jsonl")["lines"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["table"].as_str(), lines[0]["key"].as_str()), (Some("public.ev"), Some("id=2")));
    assert!(lines[0]["reason"].as_str().unwrap().contains("column at: infinity has no Parquet TIMESTAMP"), "{}", lines[0]);
    assert_eq!(lines[0]["record"]["at"], "infinity");
    assert!(lines[1]["reason"].as_str().unwrap().contains("column n: NaN"), "{}", lines[1]);
    assert_eq!(lines[1]["record"]["id"], 3);

    // --on-error log: the same split, and the run succeeds.
    let out2 = tempfile::tempdir().unwrap();
    let o = migrate_to(&src, &format!("file://{}", out2.path().display()), &["--format", "parquet", "--on-error", "log"]);
    assert_ok(&o, "--on-error log");
    assert!(out2.path().join("errors/public/ev/LOAD00000001.jsonl").exists());
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_size_cuts_files_and_chunks_number_them() {
    // 3 chunks of 1000 rows; each row ~700 bytes, so a 1 MB buffer cuts each chunk in 1 file,
    // while 3000 rows in one chunk make 3 files.
    let src = pg_with("CREATE TABLE big (id bigint PRIMARY KEY, pad text); INSERT INTO big SELECT g, repeat('x', 700) FROM generate_series(1, 3000) g; ANALYZE big;", "sink_buffer").await;
    let out = tempfile::tempdir().unwrap();
    let whole = out.path().join("whole");
    let o = migrate_to(&src, &format!("file://{}", whole.display()), &["--format", "jsonl", "--buffer-size", "1", "--include-op-for-full-load"]);
    assert_ok(&o, "buffered");
    let back = read_dir(&whole);
    let mut names: Vec<&String> = back["files"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["public/big/LOAD00000001.jsonl", "public/big/LOAD00000002.jsonl", "public/big/LOAD00000003.jsonl"]);
    let mut ids: Vec<u64> = Vec::new();
    for f in back["files"].as_object().unwrap().values() {
        for r in f["rows"].as_array().unwrap() {
            assert_eq!(r["Op"], "I", "--include-op-for-full-load");
            ids.push(r["id"].as_str().unwrap().parse().unwrap());
        }
    }
    ids.sort();
    assert_eq!(ids, (1..=3000).collect::<Vec<u64>>(), "every row once");

    let chunked = out.path().join("chunked");
    let o = migrate_to(&src, &format!("file://{}", chunked.display()), &["--format", "csv", "--chunk-rows", "1000", "--parallel", "2"]);
    assert_ok(&o, "chunked");
    let back = read_dir(&chunked);
    let mut names: Vec<&String> = back["files"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["public/big/LOAD00000001.csv", "public/big/LOAD00100001.csv", "public/big/LOAD00200001.csv"]);
    let rows: usize = back["files"].as_object().unwrap().values().map(|f| f["rows"].as_array().unwrap().len()).sum();
    assert_eq!(rows, 3000);
    src.drop_db().await;
}

#[test]
fn options_for_another_target_kind_are_refused() {
    let o = run(barge().args(["migrate", "sqlite::memory:", "file:///tmp/x", "--aggregate"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--aggregate applies to kinesis:// targets"));
    let o = run(barge().args(["migrate", "sqlite::memory:", "kafka://127.0.0.1:1/t", "--format", "parquet"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--format applies to s3:// and file://"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_resumed_after_a_crash_rewrites_its_files_without_duplicates() {
    let src = pg_with("CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r SELECT g, 'v' || g FROM generate_series(1, 500) g;", "sink_resume").await;
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let load = || run(barge().args(["migrate", &src.url, &url, "--format", "csv", "--state-dir"]).arg(state.path()));
    assert_ok(&load(), "first load");
    // As if the run had died while loading the chunk, after writing a second file that the
    // next attempt will not write.
    let path = state.path().join("state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    st["phase"] = json!("load");
    st["tables"]["public.r"]["status"] = json!("data_sync");
    st["tables"]["public.r"]["chunks"][0]["status"] = json!("loading");
    std::fs::write(&path, st.to_string()).unwrap();
    let dir = out.path().join("public/r");
    std::fs::write(dir.join("LOAD00000002.csv"), "id,v\r\n1,v1\r\n").unwrap();
    std::fs::write(dir.join("LOAD00100001.csv"), "id,v\r\n2,other chunk\r\n").unwrap();
    let o = load();
    assert_ok(&o, "resumed load");
    assert!(String::from_utf8_lossy(&o.stdout).contains("resumed"));
    let back = read_dir(out.path());
    let mut names: Vec<&String> = back["files"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["public/r/LOAD00000001.csv", "public/r/LOAD00100001.csv"], "the chunk's stale file is gone; another chunk's is not touched");
    assert_eq!(the_file(&back, "public/r/LOAD00000001.csv")["rows"].as_array().unwrap().len(), 500);
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_as_one_multipart_upload() {
    // ~20 MB of CSV: over the 16 MiB threshold, so 8 MiB parts; the object appears once, whole.
    let src = pg_with("CREATE TABLE wide (id int PRIMARY KEY, pad text); INSERT INTO wide SELECT g, repeat(md5(g::text), 25) FROM generate_series(1, 25000) g;", "sink_multipart").await;
    let bucket = unique_name("mp");
    create_bucket(&bucket);
    let url = format!("s3://{bucket}/big?endpoint={}", env("BARGE_TEST_S3_ENDPOINT"));
    assert_ok(&migrate_to(&src, &url, &["--format", "csv"]), "multipart");
    let info = py(
        "import boto3,os,sys,json
s3 = boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
keys = [o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[1])['Contents']]
h = s3.head_object(Bucket=sys.argv[1], Key=keys[0])
body = s3.get_object(Bucket=sys.argv[1], Key=keys[0])['Body'].read()
print(json.dumps({'keys': keys, 'etag': h['ETag'], 'size': h['ContentLength'], 'lines': body.count(b'\\r\\n')}))",
        &[&bucket],
    );
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["keys"], json!(["big/public/wide/LOAD00000001.csv"]));
    assert!(info["size"].as_u64().unwrap() > 16 << 20);
    assert!(info["etag"].as_str().unwrap().trim_matches('"').ends_with("-3"), "a 3-part multipart upload: {info}");
    assert_eq!(info["lines"], 25001, "header and every row");
    src.drop_db().await;
}

/// Rows enough for three Parquet row groups (64Ki rows each) and a dozen 1 MiB gzip members.
const MANY_ROWS: u32 = 140_000;

fn many_rows_db_sql() -> String {
    // `n` is numeric without precision: its scale (2) is decided from the first row group; the
    // two later rows with 3 fraction digits cannot be written at that scale without rounding.
    format!(
        "CREATE TABLE many (id bigint PRIMARY KEY, amount numeric(12,2), n numeric, at timestamptz, note text);
         INSERT INTO many SELECT g, round((g::bigint * 7919 % 1000000)::numeric / 100, 2), g / 4.0,
           timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1 second', md5(g::text)
         FROM generate_series(1, {MANY_ROWS}) g;
         UPDATE many SET n = 0.125 WHERE id IN (100000, 130001);"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_groups_encoded_in_parallel_keep_their_order_and_exact_values() {
    let src = pg_with(&many_rows_db_sql(), "sink_groups").await;
    let out = tempfile::tempdir().unwrap();
    let o = migrate_to(&src, &format!("file://{}", out.path().display()), &["--format", "parquet", "--on-error", "log"]);
    assert_ok(&o, "parquet, many row groups");
    let r = src.query_row("SELECT sum(amount)::text, to_char(min(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00'),
         to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00') FROM many").await;
    let [sum, first_at, last_at] = [0, 1, 2].map(|i| r[i].clone().unwrap());
    let got = py(
        "import json, sys, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
ids = t.column('id').to_pylist()
at = t.column('at').to_pylist()
n = t.column('n').to_pylist()
print(json.dumps({'groups': f.metadata.num_row_groups, 'rows': t.num_rows,
  'in_order': ids == sorted(ids) and len(set(ids)) == len(ids),
  'missing': sorted(set(range(1, int(sys.argv[2]) + 1)) - set(ids)),
  'sum': str(sum(t.column('amount').to_pylist())),
  'first_at': at[0].isoformat(), 'last_at': at[-1].isoformat(), 'n_last': str(n[-1]),
  'types': [str(x.type) for x in t.schema]}))",
        &[out.path().join("public/many/LOAD00000001.parquet").to_str().unwrap(), &MANY_ROWS.to_string()],
    );
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["groups"], 3, "{got}");
    assert_eq!(got["rows"], MANY_ROWS - 2, "{got}");
    assert_eq!(got["in_order"], true, "rows keep the source order across row groups: {got}");
    assert_eq!(got["missing"], json!([100000, 130001]), "only the two rows that would round are left out");
    // Every amount exact: pyarrow's Decimal sum equals PostgreSQL's, less the two rows left out.
    let left_out = ["100000", "130001"].iter().map(|id| (id.parse::<i64>().unwrap() * 7919 % 1_000_000) as i128).sum::<i128>();
    let want_cents = sum.replace('.', "").parse::<i128>().unwrap() - left_out;
    assert_eq!(got["sum"].as_str().unwrap().replace('.', "").parse::<i128>().unwrap(), want_cents, "{got} vs {sum}");
    assert_eq!((got["first_at"].as_str(), got["last_at"].as_str()), (Some(first_at.as_str()), Some(last_at.as_str())), "microseconds and zone kept");
    assert_eq!(got["n_last"], format!("{}.00", MANY_ROWS / 4));
    assert_eq!(got["types"], json!(["int64", "decimal128(12, 2)", "decimal128(38, 2)", "timestamp[us, tz=UTC]", "string"]));
    let errors = std::fs::read_to_string(out.path().join("errors/public/many/LOAD00000001.jsonl")).unwrap();
    let lines: Vec<Value> = errors.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["reason"].as_str().unwrap().contains("column n: 0.125 has more than 2 fraction digits"), "{}", lines[0]);
    assert_eq!(lines[0]["key"], "id=100000");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_files_are_many_members_that_read_back_to_the_exact_text() {
    let src = pg_with(&many_rows_db_sql(), "sink_members").await;
    let out = tempfile::tempdir().unwrap();
    let file = |dir: &str, ext: &str| out.path().join(dir).join(format!("public/many/LOAD00000001.{ext}"));
    for (dir, format, compression) in [("plain-csv", "csv", "none"), ("gz", "csv", "gzip"), ("plain-jsonl", "jsonl", "none"), ("zst", "jsonl", "zstd")] {
        let o = migrate_to(&src, &format!("file://{}", out.path().join(dir).display()), &["--format", format, "--compression", compression]);
        assert_ok(&o, &format!("{format}/{compression}"));
    }
    let plain_csv = std::fs::read(file("plain-csv", "csv")).unwrap();
    assert!(plain_csv.len() > 8 << 20, "several 1 MiB blocks: {}", plain_csv.len());
    // gzip(1) reads every member.
    let gunzip = run(std::process::Command::new("gzip").arg("-dc").arg(file("gz", "csv.gz")));
    assert!(gunzip.status.success(), "{}", String::from_utf8_lossy(&gunzip.stderr));
    assert!(gunzip.stdout == plain_csv, "gzip -d gives back the exact CSV");
    // Python's gzip and zlib: the same bytes, and the member count; pyarrow's zstd stream.
    let got = py(
        "import gzip, json, sys, zlib, pyarrow as pa
gz = open(sys.argv[1], 'rb').read()
members, rest = 0, gz
while rest:
    d = zlib.decompressobj(wbits=31)
    d.decompress(rest)
    rest = d.unused_data
    members += 1
with pa.input_stream(sys.argv[3], compression='zstd') as s:
    zst = s.read()
print(json.dumps({'members': members, 'csv_equal': gzip.decompress(gz) == open(sys.argv[2], 'rb').read(),
                  'jsonl_equal': zst == open(sys.argv[4], 'rb').read()}))",
        &[
            file("gz", "csv.gz").to_str().unwrap(),
            file("plain-csv", "csv").to_str().unwrap(),
            file("zst", "jsonl.zst").to_str().unwrap(),
            file("plain-jsonl", "jsonl").to_str().unwrap(),
        ],
    );
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["members"], plain_csv.len().div_ceil(1 << 20), "{got}");
    assert_eq!((got["csv_equal"].as_bool(), got["jsonl_equal"].as_bool()), (Some(true), Some(true)), "{got}");
    src.drop_db().await;
}
