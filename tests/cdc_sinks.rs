//! Change data capture into files and streams, end to end against real
//! servers: `--mode full-load-and-cdc` writes the rows, then every change
//! in source order (files: an `Op` column, named by time; Kafka and
//! Kinesis: the DMS envelope keyed by the primary key, each key in order).
//! Ctrl-C writes what the sink holds, and a rerun resumes after it: the
//! changes made while barge was stopped arrive, and none of the earlier
//! ones arrive twice.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use support::sinks::*;
use support::*;

/// The CDC files under `dir` (named by time, so in order), their rows
/// concatenated: `[Op, columns...]`.
fn cdc_rows(dir: &Path) -> Vec<Json> {
    let back = read_dir(dir);
    let files = back["files"].as_object().unwrap();
    let mut names: Vec<&String> = files.keys().filter(|n| !n.contains("/LOAD") && !n.starts_with("errors/")).collect();
    names.sort();
    names.iter().flat_map(|n| files[*n]["rows"].as_array().unwrap().clone()).collect()
}

fn load_rows(dir: &Path) -> Vec<Json> {
    let back = read_dir(dir);
    let files = back["files"].as_object().unwrap();
    files.iter().filter(|(n, _)| n.contains("/LOAD")).flat_map(|(_, f)| f["rows"].as_array().unwrap().clone()).collect()
}

/// Polls `have` until it returns at least `n` items.
fn wait_count<T>(what: &str, n: usize, child: &mut std::process::Child, mut have: impl FnMut() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = have();
        if got.len() >= n {
            return got;
        }
        assert_running(child, &format!("while waiting for {n} {what} (have {})", got.len()));
        assert!(Instant::now() < deadline, "timed out waiting for {n} {what} (have {})", got.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_to_files_then_ctrl_c_and_rerun_resume_without_duplicates() {
    let src = pg_with(
        "CREATE TABLE acct (id int PRIMARY KEY, bal numeric(12,2), note text);
         INSERT INTO acct VALUES (1, 10.00, 'one'), (2, 20.00, 'two'), (3, 30.00, 'three');",
        "cdc_files",
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let dst = format!("file://{}", out.path().display());
    let args = ["--buffer-interval", "1"];

    let mut child = start_cdc(&src.url, &dst, state.path(), &args);
    wait_replicating(&mut child, state.path());
    let mut load = load_rows(out.path());
    load.sort_by_key(|r| r[0].as_str().unwrap().to_string());
    assert_eq!(load, vec![json!(["1", "10.00", "one"]), json!(["2", "20.00", "two"]), json!(["3", "30.00", "three"])], "the full load");

    exec(&src, "INSERT INTO acct VALUES (4, 44.40, 'four')").await;
    exec(&src, "UPDATE acct SET bal = 11.01 WHERE id = 1").await;
    exec(&src, "DELETE FROM acct WHERE id = 2").await;
    // Written once the 1 s buffer interval passes, with no more changes coming.
    let rows = wait_count("changes in files", 3, &mut child, || cdc_rows(out.path()));
    assert_eq!(rows, vec![json!(["I", "4", "44.40", "four"]), json!(["U", "1", "11.01", "one"]), json!(["D", "2", "", ""])], "every change once, in order");

    // Ctrl-C, a change while stopped, and the same command again.
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(state.path().join("cdc-position").exists(), "the durable position is kept in the state directory");
    exec(&src, "UPDATE acct SET note = 'changed while stopped' WHERE id = 3").await;
    let mut child = start_cdc(&src.url, &dst, state.path(), &args);
    let rows = wait_count("changes in files", 4, &mut child, || cdc_rows(out.path()));
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&o.stderr).contains("saved in the state directory"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows.len(), 4, "nothing delivered twice: {rows:?}");
    assert_eq!(rows[3], json!(["U", "3", "30.00", "changed while stopped"]));
    assert_eq!(load_rows(out.path()).len(), 3, "the rerun does not load again");

    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_changes_to_kafka_in_order_per_key() {
    let src = TestDb::new(Engine::Mysql, "cdc_kafka").await;
    exec(&src, "CREATE TABLE stock (sku varchar(10) PRIMARY KEY, qty int, price decimal(12,4))").await;
    exec(&src, "INSERT INTO stock VALUES ('a', 1, 1.0001), ('b', 2, 2.0002)").await;
    let topic = unique_name("cdc-kafka");
    create_topic(&topic, 2);
    let dst = format!("kafka://{}/{topic}", env("BARGE_TEST_KAFKA_BROKER"));
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, &dst, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    for q in 2..=6 {
        exec(&src, &format!("UPDATE stock SET qty = {q} WHERE sku = 'a'")).await;
    }
    exec(&src, "INSERT INTO stock VALUES ('c', 3, 3.0003)").await;
    exec(&src, "DELETE FROM stock WHERE sku = 'b'").await;
    let msgs = wait_count("messages", 2 + 5 + 2, &mut child, || read_back(&["kafka", &topic])["records"].as_array().unwrap().clone());
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130));
    assert_eq!(msgs.len(), 9, "every row and change once: {msgs:?}");

    let mut by_key: std::collections::BTreeMap<String, Vec<(i64, Json)>> = Default::default();
    for m in &msgs {
        by_key.entry(m["key"].as_str().unwrap().to_string()).or_default().push((m["offset"].as_i64().unwrap(), m["body"].clone()));
    }
    let ops = |k: &str| -> Vec<String> {
        let mut v = by_key[k].clone();
        v.sort_by_key(|(o, _)| *o);
        v.iter().map(|(_, b)| b["metadata"]["operation"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ops("a"), ["load", "update", "update", "update", "update", "update"]);
    assert_eq!(ops("b"), ["load", "delete"]);
    assert_eq!(ops("c"), ["insert"]);
    let mut a = by_key["a"].clone();
    a.sort_by_key(|(o, _)| *o);
    let qty: Vec<&str> = a.iter().map(|(_, b)| b["data"]["qty"].as_str().unwrap()).collect();
    assert_eq!(qty, ["1", "2", "3", "4", "5", "6"], "updates of one key in source order");
    let c = &by_key["c"][0].1;
    assert_eq!(c["data"], json!({"sku": "c", "qty": "3", "price": "3.0003"}), "decimals exact");
    assert_eq!(c["metadata"]["table-name"], "stock");

    // MySQL keeps no position for barge: the rerun starts from the one in
    // the state directory, so only the change made while stopped arrives.
    exec(&src, "UPDATE stock SET qty = 7 WHERE sku = 'c'").await;
    let mut child = start_cdc(&src.url, &dst, state.path(), &[]);
    let msgs = wait_count("messages", 10, &mut child, || read_back(&["kafka", &topic])["records"].as_array().unwrap().clone());
    std::thread::sleep(Duration::from_millis(1500));
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130));
    let after = read_back(&["kafka", &topic])["records"].as_array().unwrap().clone();
    assert_eq!(after.len(), 10, "only the new change arrives, nothing again ({} messages)", after.len());
    let last = msgs.iter().filter(|m| m["key"] == "c").max_by_key(|m| m["offset"].as_i64()).unwrap();
    assert_eq!((last["body"]["metadata"]["operation"].as_str(), last["body"]["data"]["qty"].as_str()), (Some("update"), Some("7")));
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_to_kinesis_keep_each_keys_order() {
    let src = pg_with(
        "CREATE TABLE acct (id int PRIMARY KEY, bal numeric(30,10), note text);
         INSERT INTO acct SELECT g, g + 0.0000000001, 'n' || g FROM generate_series(1, 20) g;",
        "cdc_kinesis",
    )
    .await;
    let stream = unique_name("cdc-kin");
    create_stream(&stream, 2);
    let dst = format!("kinesis://{stream}?endpoint={}&region=us-east-1", env("BARGE_TEST_KINESIS_ENDPOINT"));
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, &dst, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    // Several changes of each of a few keys, interleaved, in one transaction and in many.
    exec(&src, "BEGIN; UPDATE acct SET bal = bal + 1 WHERE id IN (1, 2, 3); UPDATE acct SET note = 'x' WHERE id = 2; COMMIT").await;
    for round in 1..=5 {
        exec(&src, &format!("UPDATE acct SET bal = {round}.5 WHERE id IN (1, 3)")).await;
    }
    exec(&src, "DELETE FROM acct WHERE id = 3").await;
    exec(&src, "INSERT INTO acct VALUES (21, 21.0000000001, 'new')").await;
    let records = |s: &str| read_back(&["kinesis", s])["records"].as_array().unwrap().clone();
    let recs = wait_count("records", 20 + 4 + 10 + 2, &mut child, || records(&stream));
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130));
    assert_eq!(recs.len(), 36, "every row and change once");
    let ops_of = |key: &str| -> Vec<(String, Json)> {
        recs.iter().filter(|r| r["key"] == key).map(|r| (r["body"]["metadata"]["operation"].as_str().unwrap().to_string(), r["body"]["data"].clone())).collect()
    };
    let one: Vec<String> = ops_of("1").iter().map(|(_, d)| d["bal"].as_str().unwrap().to_string()).collect();
    assert_eq!(one, ["1.0000000001", "2.0000000001", "1.5000000000", "2.5000000000", "3.5000000000", "4.5000000000", "5.5000000000"], "key 1 in commit order, exact decimals");
    let three: Vec<String> = ops_of("3").iter().map(|(op, _)| op.clone()).collect();
    assert_eq!(three.first().map(String::as_str), Some("load"));
    assert_eq!(three.last().map(String::as_str), Some("delete"));
    assert_eq!(ops_of("21")[0].0, "insert");
    let two: Vec<String> = ops_of("2").iter().map(|(_, d)| d["note"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(two, ["n2", "n2", "x"]);
    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_during_capture_into_files_starts_files_with_it_and_is_named() {
    let src = pg_with("CREATE TABLE acct (id int PRIMARY KEY, bal numeric(12,2)); INSERT INTO acct VALUES (1, 10.00);", "cdc_files_ddl").await;
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let dst = format!("file://{}", out.path().display());
    let mut child = start_cdc(&src.url, &dst, state.path(), &["--buffer-interval", "1"]);
    wait_replicating(&mut child, state.path());
    exec(&src, "INSERT INTO acct VALUES (2, 20.00)").await;
    exec(&src, "ALTER TABLE acct ADD COLUMN note text").await;
    exec(&src, "INSERT INTO acct VALUES (3, 30.00, 'with a note')").await;
    let rows = wait_count("changes in files", 2, &mut child, || cdc_rows(out.path()));
    let o = interrupt(child);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("public.acct: added column note (text) at the source"), "the change is named: {err}");
    assert_eq!(rows, vec![json!(["I", "2", "20.00"]), json!(["I", "3", "30.00", "with a note"])], "no file mixes the two layouts, and the new column is carried");
    src.drop_db().await;
}
