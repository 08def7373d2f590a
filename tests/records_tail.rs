//! `tail://` records: log lines into a real PostgreSQL and into files,
//! through rotation by rename and by truncation, a kill -9 and a rerun.

use std::io::Write;
use std::path::Path;

use crate::support::{assert_ok, barge, run, stderr, text, Engine, TestDb};

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn lines(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line-{i:06}")).collect()
}

/// Every line written is on the target once: the count of rows and of
/// distinct payloads both equal the lines written, and the payloads are
/// exactly them.
async fn assert_each_line_once(db: &TestDb, table: &str, written: usize) {
    let row = db.query_row(&format!("SELECT count(*), count(DISTINCT data), min(data), max(data) FROM {table}")).await;
    assert_eq!(row[0].as_deref(), Some(written.to_string().as_str()), "rows on the target");
    assert_eq!(row[1].as_deref(), Some(written.to_string().as_str()), "distinct lines: none repeated");
    assert_eq!(row[2].as_deref(), Some("line-000000"));
    assert_eq!(row[3].as_deref(), Some(format!("line-{:06}", written - 1).as_str()));
}

#[tokio::test]
async fn json_lines_fill_a_schema_exactly_and_a_rerun_adds_only_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(
        dir.path().join("orders.sql"),
        "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(30,10) NOT NULL, placed timestamptz, tags jsonb, note text, _shard text, _offset text);",
    )
    .unwrap();
    let first = r#"{"id": 1, "amount": 12345678901234567890.0123456789, "placed": "2026-12-01T10:00:00+02:00", "tags": ["x", {"y": 1}], "note": "first"}"#;
    append(
        &logs.join("a.jsonl"),
        &[
            first.into(),
            r#"{"id": 2, "amount": "0.0000000001", "placed": null, "note": "Zürich \"quoted\""}"#.into(),
        ],
    );
    append(&logs.join("b.jsonl"), &[r#"{"id": 3, "amount": -7, "placed": "2026-12-01T23:59:59.999999Z"}"#.into()]);
    append(&logs.join("ignored.txt"), &["not matched".into()]);
    let db = TestDb::new(Engine::Postgres, "tailjson").await;
    let state = dir.path().join("state");
    let url = format!("tail://{}/*.jsonl", logs.display());
    let migrate = || {
        let mut c = barge();
        c.args(["migrate", &url, &db.url, "--schema"]).arg(dir.path().join("orders.sql")).arg("--state-dir").arg(&state);
        c
    };
    let out = run(&mut migrate());
    assert_ok(&out, "tail into PostgreSQL");
    let row = db.query_row("SELECT amount::text, placed AT TIME ZONE 'UTC', tags::text, note FROM orders WHERE id = 1").await;
    assert_eq!(row[0].as_deref(), Some("12345678901234567890.0123456789"), "every digit kept");
    assert_eq!(row[1].as_deref(), Some("2026-12-01 08:00:00"), "the zone kept");
    assert_eq!(row[2].as_deref(), Some(r#"["x", {"y": 1}]"#));
    assert_eq!(row[3].as_deref(), Some("first"));
    let row = db.query_row("SELECT amount::text, placed IS NULL, note, _offset FROM orders WHERE id = 2").await;
    assert_eq!(row, vec![Some("0.0000000001".into()), Some("t".into()), Some("Zürich \"quoted\"".into()), Some((first.len() + 1).to_string())], "_offset: where its line starts");
    let row = db.query_row("SELECT amount::text, to_char(placed AT TIME ZONE 'UTC', 'HH24:MI:SS.US') FROM orders WHERE id = 3").await;
    assert_eq!(row, vec![Some("-7.0000000000".into()), Some("23:59:59.999999".into())], "the column's scale");

    // A blank line and a CRLF line, as editors and Windows tools leave them.
    append(&logs.join("b.jsonl"), &["".into(), "{\"id\": 4, \"amount\": 4}\r".into()]);
    let out = run(&mut migrate());
    assert_ok(&out, "rerun");
    assert!(stderr(&out).contains("resuming"), "the rerun resumes from the saved position:\n{}", text(&out));
    let row = db.query_row("SELECT count(*), sum(amount)::text FROM orders").await;
    assert_eq!(row, vec![Some("4".into()), Some("12345678901234567887.0123456790".into())]);
    db.drop_db().await;
}

#[tokio::test]
async fn a_record_that_does_not_fit_stops_the_run_where_it_is_and_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sql"), "CREATE TABLE readings (device text NOT NULL, value numeric(8,3));").unwrap();
    let log = dir.path().join("readings.jsonl");
    append(&log, &[r#"{"device": "d1", "value": 1.5}"#.into(), r#"{"device": "d2", "value": "high"}"#.into(), r#"{"device": "d3", "value": 3}"#.into()]);
    let db = TestDb::new(Engine::Postgres, "tailbad").await;
    let state = dir.path().join("state");
    let url = format!("tail://{}", log.display());
    let out = run(barge().args(["migrate", &url, &db.url, "--schema"]).arg(dir.path().join("t.sql")).arg("--state-dir").arg(&state));
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("offset 31") && err.contains("field value") && err.contains("--on-error log"), "names the record, the field and the way on:\n{err}");
    assert_eq!(db.try_query_row("SELECT count(*) FROM readings").await.ok().and_then(|r| r[0].clone()).as_deref().unwrap_or("0"), "0", "nothing of the failed batch is kept");

    let out = run(barge().args(["migrate", &url, &db.url, "--on-error", "log", "--schema"]).arg(dir.path().join("t.sql")).arg("--state-dir").arg(&state));
    assert_ok(&out, "with --on-error log");
    assert!(stderr(&out).contains("1 row(s) or record(s) the target could not take") && stderr(&out).contains("rejects.jsonl"), "the run says what it left out:\n{}", text(&out));
    let row = db.query_row("SELECT string_agg(device, ',' ORDER BY device) FROM readings").await;
    assert_eq!(row[0].as_deref(), Some("d1,d3"));
    let rejects = std::fs::read_to_string(state.join("rejects.jsonl")).unwrap();
    assert!(rejects.contains("high") && rejects.contains("offset 31"), "{rejects}");
    db.drop_db().await;
}

#[tokio::test]
async fn following_through_rotation_and_a_kill_neither_loses_nor_repeats_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let app = logs.join("app.log");
    let db = TestDb::new(Engine::Postgres, "tailfollow").await;
    let state = dir.path().join("state");
    let url = format!("tail://{}/*.log", logs.display());
    append(&app, &lines(0, 1000));
    let mut child = barge()
        .args(["migrate", &url, &db.url, "--mode", "cdc", "--batch-changes", "100", "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for(&db, "SELECT count(*) >= 1000 FROM logs", "t", &mut child).await;
    // Rotation by rename: the old file gets its last lines after the rename.
    append(&app, &lines(1000, 1500));
    std::fs::rename(&app, logs.join("app.log.1")).unwrap();
    append(&logs.join("app.log.1"), &lines(1500, 1600));
    append(&app, &lines(1600, 2000));
    crate::support::wait_for(&db, "SELECT count(*) FROM logs", "2000", &mut child).await;
    // A kill -9, with lines written before, during and after it.
    append(&app, &lines(2000, 3000));
    child.kill().unwrap();
    child.wait().unwrap();
    append(&app, &lines(3000, 3200));
    // Rotation by rename while barge is down: the renamed file is found
    // again by its inode and read to its end.
    std::fs::rename(&app, logs.join("app.log.2")).unwrap();
    append(&app, &lines(3200, 3300));
    let out = run(barge().args(["migrate", &url, &db.url, "--state-dir"]).arg(&state));
    assert_ok(&out, "the rerun after the kill");
    assert_each_line_once(&db, "logs", 3300).await;

    let copied = logs.join("app.log");
    std::fs::OpenOptions::new().write(true).open(&copied).unwrap().set_len(0).unwrap();
    append(&copied, &lines(3300, 3310));
    let out = run(barge().args(["migrate", &url, &db.url, "--state-dir"]).arg(&state));
    assert_ok(&out, "after copytruncate");
    assert_each_line_once(&db, "logs", 3310).await;
    db.drop_db().await;
}

#[tokio::test]
async fn lines_land_in_json_lines_files_with_where_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    append(&log, &lines(0, 50));
    let out_dir = dir.path().join("out");
    let out = run(barge()
        .args(["migrate", &format!("tail://{}", log.display()), &format!("file://{}", out_dir.display()), "--format", "jsonl", "--state-dir"])
        .arg(dir.path().join("state")));
    assert_ok(&out, "tail into files");
    let mut seen = Vec::new();
    for entry in walk(&out_dir) {
        for line in std::fs::read_to_string(&entry).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["shard"].as_str().is_some_and(|s| !s.is_empty()) && v["offset"].is_string(), "{line}");
            seen.push(v["data"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, lines(0, 50), "every line, once, in files under {}", out_dir.display());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_tail_url_that_cannot_work_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(barge().args(["migrate", "tail:///no/such/dir/*.log", "sqlite::memory:", "--state-dir"]).arg(dir.path()));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", text(&out));
    let out = run(barge().args(["migrate", "tail:///var/*/x.log", "sqlite::memory:", "--state-dir"]).arg(dir.path()));
    assert!(stderr(&out).contains("only the file name may hold wildcards"), "{}", text(&out));
    let out = run(barge().args(["migrate", "tail:///tmp/x.log", "sqlite::memory:", "--record-format", "csv", "--state-dir"]).arg(dir.path()));
    assert!(stderr(&out).contains("--schema"), "{}", text(&out));
    let out = run(barge().args(["migrate", "tail:///tmp/x.log", "sqlite::memory:", "--restart", "--state-dir"]).arg(dir.path()));
    assert!(!out.status.success() && stderr(&out).contains("--start-position earliest"), "{}", text(&out));
}
