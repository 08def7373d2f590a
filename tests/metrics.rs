//! `--metrics-addr` scraped by a real Prometheus (Debian's package, started
//! by tests/services.sh): a PostgreSQL-to-PostgreSQL CDC task, N changes
//! at the source, then Prometheus' own query API must see exactly N
//! applied for the table (by operation), target latency under a second
//! once caught up, and no secret anywhere in what it scraped.

use crate::support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

/// A free loopback port (bound and released: the window is short, and
/// barge fails at once, naming the port, if another process takes it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn prometheus() -> (String, PathBuf) {
    let url = std::env::var("BARGE_TEST_PROMETHEUS_URL").expect("BARGE_TEST_PROMETHEUS_URL: start the services (bash tests/services.sh start DIR; . DIR/env)");
    let targets = std::env::var("BARGE_TEST_PROMETHEUS_TARGETS").expect("BARGE_TEST_PROMETHEUS_TARGETS");
    (url, PathBuf::from(targets))
}

fn get(url: &str, query: Option<&str>) -> String {
    let mut c = std::process::Command::new("curl");
    c.args(["-sS", "--max-time", "5", "--get", url]);
    if let Some(q) = query {
        c.args(["--data-urlencode", &format!("query={q}")]);
    }
    let out = c.output().expect("run curl");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The value of an instant query with one series (None: no series yet).
fn query(prom: &str, q: &str) -> Option<f64> {
    let body = get(&format!("{prom}/api/v1/query"), Some(q));
    let j: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
    assert_eq!(j["status"], "success", "{q}: {body}");
    let result = j["data"]["result"].as_array().unwrap();
    assert!(result.len() <= 1, "{q}: more than one series: {body}");
    result.first().map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
}

/// Polls `q` until `ok` holds; returns the last value.
fn eventually(prom: &str, q: &str, ok: impl Fn(f64) -> bool, child: &mut std::process::Child) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let v = query(prom, q);
        if let Some(v) = v.filter(|v| ok(*v)) {
            return v;
        }
        assert_running(child, &format!("while waiting for {q} (have {v:?})"));
        assert!(Instant::now() < deadline, "Prometheus never saw {q} as wanted (last {v:?})");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_every_change_applied_and_no_lag_once_caught_up() {
    let (prom, targets) = prometheus();
    let src = TestDb::new(Engine::Postgres, "metrics").await;
    exec(&src, "CREATE TABLE items (id integer PRIMARY KEY, v text); INSERT INTO items SELECT g, 'loaded' FROM generate_series(1, 100) g").await;
    let dst = TestDb::new(Engine::Postgres, "metrics").await;
    let state = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = start_cdc(&src.url, &dst.url, state.path(), &["--tables", "items", "--metrics-addr", &addr]);
    wait_replicating(&mut child, state.path());

    // Prometheus scrapes the task every second, labelled with this test's name.
    let name = src.name.clone();
    let target_file = targets.join(format!("{name}.json"));
    std::fs::write(&target_file, format!(r#"[{{"targets":["{addr}"],"labels":{{"test":"{name}"}}}}]"#)).unwrap();
    let sel = format!(r#"test="{name}",table="public.items""#);
    eventually(&prom, &format!(r#"sum(barge_full_load_rows_total{{{sel}}})"#), |v| v == 100.0, &mut child);

    // N = 500 changes: 200 inserts in one transaction, 250 updates (200 in
    // one, 50 alone), 50 deletes.
    exec(&src, "INSERT INTO items SELECT g, 'new' FROM generate_series(101, 300) g").await;
    exec(&src, "UPDATE items SET v = 'updated' WHERE id <= 200").await;
    for id in 1..=50 {
        exec(&src, &format!("UPDATE items SET v = 'again' WHERE id = {id}")).await;
    }
    exec(&src, "DELETE FROM items WHERE id > 250").await;
    wait_for(&dst, "SELECT COUNT(*) FROM items WHERE v = 'again'", "50", &mut child).await;
    wait_for(&dst, "SELECT COUNT(*) FROM items", "250", &mut child).await;

    let applied = eventually(&prom, &format!(r#"sum(barge_cdc_changes_applied_total{{{sel}}})"#), |v| v >= 500.0, &mut child);
    assert_eq!(applied, 500.0, "every change applied once");
    for (op, n) in [("insert", 200.0), ("update", 250.0), ("delete", 50.0), ("truncate", 0.0)] {
        assert_eq!(query(&prom, &format!(r#"barge_cdc_changes_applied_total{{{sel},operation="{op}"}}"#)), Some(n), "{op}");
    }
    assert_eq!(query(&prom, &format!(r#"sum(barge_cdc_changes_received_total{{{sel}}})"#)), Some(500.0));
    // Caught up: the target is less than a second behind (DMS's CDCLatencyTarget).
    let lag = eventually(&prom, &format!(r#"barge_cdc_latency_target_seconds{{test="{name}"}}"#), |v| v < 1.0, &mut child);
    assert!(lag < 1.0);
    assert_eq!(query(&prom, &format!(r#"barge_cdc_incoming_changes{{test="{name}"}}"#)), Some(0.0));
    eventually(&prom, &format!(r#"barge_cdc_table_state{{{sel},state="live"}}"#), |v| v == 1.0, &mut child);

    // What Prometheus scraped names the endpoints without their passwords.
    let text = get(&format!("http://{addr}/metrics"), None);
    let password = std::fs::read_to_string(password_file()).unwrap();
    for leak in [format!(":{}@", password.trim()), format!("password={}", password.trim())] {
        assert!(!text.contains(&leak), "a password in the metrics:\n{text}");
    }
    assert!(text.contains("barge_endpoint_retries_total{"), "{text}");

    let _ = std::fs::remove_file(&target_file);
    stop_and_clean_up(child, state.path(), src, dst).await;
}

#[test]
fn a_taken_metrics_port_fails_before_any_work_and_names_it() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let out = run(barge().args(["pack"]).arg(&src).arg(dir.path().join("dev")).args(["--metrics-addr", &addr]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));
    assert!(!dir.path().join("dev").join("barge-pack").exists());
}

