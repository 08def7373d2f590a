//! `barge advise` through the real binary: hand-computed cases, JSON shape,
//! warnings, measuring a directory and databases (real PostgreSQL, MariaDB
//! and SQLite), and usage errors.

use crate::support;

use std::fs;
use std::process::{Command, Output};

fn barge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_barge")).args(args).output().unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json", "advise"];
    a.extend_from_slice(args);
    let o = barge(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// 100 TB × 8 / (1 Gbps × 0.8) = 1,000,000 s = 11.57 days.
#[test]
fn hundred_tb_over_one_gbps_takes_eleven_point_six_days() {
    let v = json(&["--size", "100TB", "--bandwidth", "1Gbps", "--utilization", "0.8", "--pack-speed", "1GB/s"]);
    assert_eq!(f(&v["network"]["transfer_secs"]), 1_000_000.0);
    assert_eq!(f(&v["network"]["effective_rate"]), 1e8);
    let o = barge(&["advise", "--size", "100TB", "--bandwidth", "1Gbps", "--pack-speed", "1GB/s"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("11.6 days"), "{out}");
    assert!(out.contains("recommendation:"), "{out}");
}

/// 100 TB, 80 TB snowballs: 2 devices, 1 wave. Pack speed 1 GB/s bounds the
/// fill (2 × 0.5 GB/s device writes also give 1 GB/s; source unbounded):
/// 1e14 / 1e9 = 100,000 s. Delivery 4 days, ship 3 days; ingest of the
/// 20 TB last... one wave of 2 devices holding 100 TB at 2 × 0.5 GB/s =
/// 100,000 s. Total = 7 days + 200,000 s = 804,800 s ≈ 9.3 days, which beats
/// 11.6 days by 195,200 s.
#[test]
fn device_plan_by_hand() {
    let v = json(&["--size", "100TB", "--bandwidth", "1Gbps", "--device", "snowball", "--pack-speed", "1GB/s"]);
    let d = &v["devices"];
    assert_eq!(d["devices"], 2);
    assert_eq!(d["waves"].as_array().unwrap().len(), 1);
    assert_eq!(f(&d["fill_secs"]), 100_000.0);
    assert_eq!(f(&d["ingest_secs"]), 100_000.0);
    assert_eq!(f(&d["total_secs"]), 804_800.0);
    assert_eq!(v["recommendation"], "devices");
    assert!(v["reason"].as_str().unwrap().contains("2.3 days"), "{}", v["reason"]);
}

/// 1 TB at 10 Gbps: 1e12 × 8 / 8e9 = 1000 s, under a week: the network.
#[test]
fn small_transfers_go_over_the_network() {
    let v = json(&["--size", "1TB", "--bandwidth", "10g", "--pack-speed", "1GB/s"]);
    assert_eq!(f(&v["network"]["transfer_secs"]), 1000.0);
    assert_eq!(v["recommendation"], "network");
}

/// Several links: 4 × 10 Gbps at 100 % moves 5 GB/s; 1 PB takes 200,000 s.
#[test]
fn several_links_add_up() {
    let v = json(&["--size", "1PB", "--bandwidth", "4x10Gbps", "--utilization", "1", "--pack-speed", "1GB/s"]);
    assert_eq!(f(&v["network"]["transfer_secs"]), 200_000.0);
}

#[test]
fn waves_when_devices_are_scarce() {
    // 500 TB on 80 TB devices = 7, two at a time = 4 waves (2, 2, 2, 1).
    let v = json(&["--size", "500TB", "--bandwidth", "1Gbps", "--device", "snowball", "--devices-at-once", "2", "--pack-speed", "10GB/s"]);
    let waves: Vec<u64> = v["devices"]["waves"].as_array().unwrap().iter().map(|w| w["devices"].as_u64().unwrap()).collect();
    assert_eq!(waves, vec![2, 2, 2, 1]);
    // Three turnarounds of 4 days each.
    assert_eq!(f(&v["devices"]["turnaround_secs"]), 3.0 * 4.0 * 86_400.0);
}

#[test]
fn change_rate_beyond_the_link_warns() {
    let o = barge(&["advise", "--size", "10TB", "--bandwidth", "100Mbps", "--change-rate", "2TB/day", "--pack-speed", "1GB/s"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("never catch up"), "{err}");
    let v = json(&["--size", "10TB", "--bandwidth", "100Mbps", "--change-rate", "2TB/day", "--pack-speed", "1GB/s"]);
    assert!(v["network"]["catch_up_secs"].is_null(), "infinite is null in JSON: {}", v["network"]);
    assert!(v["warnings"][0].as_str().unwrap().contains("never catch up"));
}

#[test]
fn truck_past_ten_petabytes() {
    let v = json(&["--size", "20PB", "--bandwidth", "100Gbps", "--pack-speed", "10GB/s"]);
    assert_eq!(v["devices"]["device"], "truck");
}

#[test]
fn custom_profiles_from_toml() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("profiles.toml");
    fs::write(
        &p,
        r#"
[[device]]
name = "crate"
usable = "10TB"
write = "1GB/s"
delivery_days = 1
ship_days = 1
"#,
    )
    .unwrap();
    let v = json(&["--size", "25TB", "--bandwidth", "1Gbps", "--device", "crate", "--profiles", p.to_str().unwrap(), "--pack-speed", "100GB/s"]);
    assert_eq!(v["devices"]["devices"], 3);
    // Fill at 3 × 1 GB/s: 25e12 / 3e9 s.
    assert!((f(&v["devices"]["fill_secs"]) - 25e12 / 3e9).abs() < 1e-6);
}

#[test]
fn measures_a_directory() {
    let t = tempfile::tempdir().unwrap();
    let text = "the quick brown fox jumps over the lazy dog\n".repeat(20_000);
    fs::write(t.path().join("a.txt"), &text).unwrap();
    fs::create_dir(t.path().join("d")).unwrap();
    fs::write(t.path().join("d/b.txt"), &text).unwrap();
    let v = json(&[t.path().to_str().unwrap(), "--bandwidth", "1Gbps"]);
    let m = &v["measured"];
    assert_eq!(m["bytes"], 2 * text.len() as u64);
    assert_eq!(m["files"], 2);
    assert!(f(&m["compress_ratio"]) < 0.1, "{m}");
    assert!(f(&m["pack_rate"]) > 0.0);
    assert_eq!(f(&v["inputs"]["size"]), 2.0 * text.len() as f64);
    // The plan uses the measured ratio: the devices hold the packed bytes.
    assert_eq!(f(&v["inputs"]["compress_ratio"]), f(&m["compress_ratio"]));
    let stored: f64 = v["devices"]["waves"].as_array().unwrap().iter().map(|w| f(&w["bytes"])).sum();
    assert!((stored - f(&m["compress_ratio"]) * 2.0 * text.len() as f64).abs() < 1.0, "{v}");
    let o = barge(&["advise", t.path().to_str().unwrap(), "--bandwidth", "1Gbps"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("compression ratio"), "{out}");
    // Random bytes do not compress: the devices hold every byte.
    let r = tempfile::tempdir().unwrap();
    fs::write(r.path().join("noise.bin"), support::pseudo_random_bytes(9, 3 << 20)).unwrap();
    let v = json(&[r.path().to_str().unwrap(), "--bandwidth", "1Gbps"]);
    assert_eq!(f(&v["measured"]["compress_ratio"]), 1.0, "{v}");
}

#[test]
fn usage_errors() {
    let o = barge(&["advise", "--bandwidth", "1Gbps"]);
    assert_eq!(o.status.code(), Some(2));
    let o = barge(&["advise", ".", "--size", "1TB", "--bandwidth", "1Gbps"]);
    assert_eq!(o.status.code(), Some(2));
    let o = barge(&["advise", "--size", "1TB", "--bandwidth", "fast", "--pack-speed", "1GB/s"]);
    assert_eq!(o.status.code(), Some(2));
    let o = barge(&["advise", "--size", "1TB", "--bandwidth", "1Gbps", "--device", "pigeon", "--pack-speed", "1GB/s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("snowball"));
    let o = barge(&["advise", "s3://bucket/data", "--bandwidth", "1Gbps"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot measure"));
    let t = tempfile::tempdir().unwrap();
    let o = barge(&["advise", t.path().to_str().unwrap(), "--tables", "t", "--bandwidth", "1Gbps"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Rows in each measured table, and their width: a 4-byte id and 96
/// characters (three hex digests).
const ROWS: f64 = 50_000.0;
const ROW_BYTES: f64 = 100.0;

/// The output of `barge --json advise URL --bandwidth 1Gbps` for a
/// database of `tables` tables holding the ROWS rows, checked against them: the catalog size within
/// 0.5–3× of rows × width (pages, tuple headers and free space come on
/// top), the row estimate within 20 %, a compression ratio and a read
/// sample, and the network time recomputed from the reported size.
fn check_measured(v: &serde_json::Value, tables: u64) -> &serde_json::Value {
    let m = &v["measured"];
    assert_eq!(m["tables"], tables, "{m}");
    let bytes = f(&m["bytes"]);
    assert!((0.5 * ROWS * ROW_BYTES..=3.0 * ROWS * ROW_BYTES).contains(&bytes), "size {bytes} for {ROWS} rows of {ROW_BYTES} B: {m}");
    assert!(m["size_from"].as_str().unwrap().contains("catalog"), "{m}");
    assert!(f(&m["index_bytes"]) > 0.0, "the secondary index is reported: {m}");
    let rows = f(&m["rows"]);
    assert!((rows - ROWS).abs() <= 0.2 * ROWS, "row estimate {rows}: {m}");
    let ratio = f(&m["compress_ratio"]);
    assert!(ratio > 0.0 && ratio <= 1.5, "{m}");
    assert!(f(&m["sample_rows"]) > 0.0 && f(&m["sample_bytes"]) > 0.0 && f(&m["read_rate"]) > 0.0, "{m}");
    assert!(f(&m["pack_rate"]) > 0.0, "{m}");
    assert_eq!(f(&v["inputs"]["size"]), bytes);
    assert_eq!(f(&v["inputs"]["source_read"]), f(&m["source_read"]));
    // The network leg by hand: bytes × 8 / (1e9 bit/s × 0.8), e.g.
    // 6,766,592 B × 8 / 8e8 bit/s = 0.06766592 s.
    let expected = bytes * 8.0 / (1e9 * 0.8);
    let got = f(&v["network"]["transfer_secs"]);
    assert!((got - expected).abs() <= 1e-12 * expected.max(1.0), "transfer {got} s, expected {expected} s");
    assert_eq!(f(&v["network"]["effective_rate"]), 1e8);
    m
}

async fn measured_db(engine: support::Engine, script: &str) -> support::TestDb {
    let db = support::TestDb::new(engine, "advise").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.sql");
    fs::write(&path, script).unwrap();
    db.load_script(&path).await;
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_postgres_database() {
    let db = measured_db(
        support::Engine::Postgres,
        "CREATE TABLE t (id int PRIMARY KEY, pad text);
         INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series(1, 50000) g;
         CREATE INDEX t_pad ON t (pad);
         CREATE TABLE other (a int);
         INSERT INTO other SELECT g FROM generate_series(1, 10) g;
         ANALYZE;",
    )
    .await;
    // Every table by default; --tables picks as a pack would.
    let all = json(&[&db.url, "--bandwidth", "1Gbps"]);
    assert_eq!(all["measured"]["tables"], 2, "{}", all["measured"]);
    let v = json(&[&db.url, "--tables", "t", "--bandwidth", "1Gbps"]);
    let m = check_measured(&v, 1);
    assert!(m["size_from"].as_str().unwrap().contains("pg_table_size"), "{m}");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_mariadb_database() {
    let db = measured_db(
        support::Engine::Mysql,
        "SET max_recursive_iterations = 100000;
         CREATE TABLE t (id int PRIMARY KEY, pad varchar(100));
         INSERT INTO t WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50000)
           SELECT n, CONCAT(MD5(n), MD5(n * 7), MD5(n * 13)) FROM s;
         CREATE INDEX t_pad ON t (pad);
         ANALYZE TABLE t;
",
    )
    .await;
    let v = json(&[&db.url, "--bandwidth", "1Gbps"]);
    let m = check_measured(&v, 1);
    assert!(m["size_from"].as_str().unwrap().contains("DATA_LENGTH"), "{m}");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_a_sqlite_database() {
    let db = measured_db(
        support::Engine::Sqlite,
        "CREATE TABLE t (id integer PRIMARY KEY, pad text);
         WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50000)
           INSERT INTO t SELECT n, hex(randomblob(48)) FROM s;
         CREATE INDEX t_pad ON t (pad);",
    )
    .await;
    let v = json(&[&db.url, "--bandwidth", "1Gbps"]);
    check_measured(&v, 1);
    let o = barge(&["advise", &db.url, "--bandwidth", "1Gbps"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("measured: 1 table, ~50000 rows") && out.contains("size from the catalog"), "{out}");
    assert!(out.contains("recommendation:"), "{out}");
}

/// Nothing listens on port 1: a clear error naming the endpoint, no panic.
#[test]
fn unreachable_database_is_a_clear_error() {
    for url in ["postgres://barge@127.0.0.1:1/x", "mysql://barge@127.0.0.1:1/x"] {
        let o = barge(&["advise", url, "--bandwidth", "1Gbps"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains(url) && err.contains("127.0.0.1:1"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
