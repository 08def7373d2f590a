//! `null://`, the destination that keeps nothing: a full load reads every
//! row and reports it, and change capture into it acknowledges every
//! change, so the source position moves past them.

use crate::support;

use support::sinks::*;
use support::*;

#[test]
fn a_full_load_into_null_reads_every_row_and_reports_it() {
    let state = tempfile::tempdir().unwrap();
    let src = format!("sqlite:{}", fixture("sample/shop.db").display());
    let o = run_ok(barge().args(["--json", "migrate", &src, "null://", "--state-dir"]).arg(state.path()));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    let rows: Vec<(String, u64)> = v["load"]["tables"].as_array().unwrap().iter().map(|t| (t["source"].as_str().unwrap().to_string(), t["rows"].as_u64().unwrap())).collect();
    // The fixture's counts, as sqlite3 gives them.
    let want = [("customers", 5000), ("products", 2000), ("orders", 20000), ("order_items", 69370), ("events", 3000)];
    for (table, n) in want {
        assert!(rows.iter().any(|(t, r)| t == table && *r == n), "{table}: {n} rows expected in {rows:?}");
    }
    assert_eq!(v["load"]["rows"], 99370);
    assert_eq!(v["sink"]["records"], 99370, "every row reached the destination");

    // A flag for another kind of target is refused, naming the ones that take it.
    let o = run(barge().args(["migrate", &src, "null://", "--format", "csv", "--state-dir"]).arg(tempfile::tempdir().unwrap().path()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format applies to s3:// and file:// targets, not to null://"), "{}", stderr(&o));
}

/// An LSN (`16/B374D848`, or inside `pg:16/B374D848`) as a number.
fn lsn(text: &str) -> u64 {
    let t = text.trim().trim_start_matches("pg:");
    let (hi, lo) = t.split_once('/').unwrap_or_else(|| panic!("not an LSN: {text}"));
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo.split(|c: char| !c.is_ascii_hexdigit()).next().unwrap(), 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_capture_into_null_moves_the_position_past_the_changes() {
    let src = pg_with("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');", "cdc_null").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, "null://", state.path(), &[]);
    wait_replicating(&mut child, state.path());
    for i in 2..=20 {
        exec(&src, &format!("INSERT INTO t VALUES ({i}, 'x')")).await;
    }
    exec(&src, "UPDATE t SET v = 'y' WHERE id = 1").await;
    let after = src.query_row("SELECT pg_current_wal_lsn()::text").await[0].clone().unwrap();
    // The position is written when the destination acknowledges (at most
    // once a second) and at the stop: wait for it to pass the changes.
    let file = state.path().join("cdc-position");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let have = std::fs::read_to_string(&file).ok().filter(|p| p.starts_with("pg:")).map(|p| lsn(&p));
        if have.is_some_and(|p| p >= lsn(&after)) {
            break;
        }
        assert_running(&mut child, &format!("while waiting for the position to pass {after} (have {have:?})"));
        assert!(std::time::Instant::now() < deadline, "the position never passed {after} (have {have:?})");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let o = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    assert_ok(&o, "cleanup");
    src.drop_db().await;
}
