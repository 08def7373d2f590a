//! Change capture when servers fail, against real servers the tests own:
//! a MariaDB source that shuts down is reconnected to (and a run that
//! cannot reconnect fails, non-zero, with the reason); a PostgreSQL source
//! that goes silent (a black-holed route) is detected by the stream
//! timeout; PostgreSQL source and target restarts are detected and
//! recovered from. Each test prints how long detection and recovery took
//! (figures for the report, not assertions).

use crate::support;

use std::io::BufRead;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::servers::{BlackHole, PrivateMaria, PrivatePg};
use support::*;

/// barge's stderr lines with the moment each arrived.
type Log = Arc<Mutex<Vec<(Instant, String)>>>;

fn log_stderr(child: &mut Child) -> Log {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(|l| l.ok()) {
            l.lock().unwrap().push((Instant::now(), line));
        }
    });
    log
}

fn text_of(log: &Log) -> String {
    log.lock().unwrap().iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
}

/// When the first line after `after` containing one of `words` arrived.
fn first_line(log: &Log, after: Instant, words: &[&str]) -> Option<Instant> {
    log.lock().unwrap().iter().find(|(t, l)| *t >= after && words.iter().any(|w| l.contains(w))).map(|(t, _)| *t)
}

async fn wait_row(db: &TestDb, sql: &str, want: &str, child: &mut Child, log: &Log) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if db.query_row(sql).await[0].as_deref() == Some(want) {
            return;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("barge exited ({st:?}) while waiting for {sql} = {want}:\n{}", text_of(log));
        }
        assert!(Instant::now() < deadline, "timed out waiting for {sql} = {want}:\n{}", text_of(log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop(child: Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait_with_output();
}

fn validate(src: &str, dst: &str, tables: &str) {
    let out = run(barge().args(["validate", src, dst, "--tables", tables]));
    assert!(out.status.success() && !stdout(&out).contains("DIFFERENT"), "{}\n{}", stdout(&out), stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_source_shutdown_reconnects_and_a_lasting_outage_fails_the_run() {
    let mut my = PrivateMaria::start();
    my.exec("", "CREATE DATABASE shop").await;
    my.exec("shop", "CREATE TABLE acc (id int PRIMARY KEY, bal bigint NOT NULL)").await;
    my.exec("shop", "INSERT INTO acc VALUES (1, 100), (2, 100)").await;
    let dst = TestDb::new(Engine::Postgres, "cdc_my_down").await;
    let state = tempfile::tempdir().unwrap();
    let src = my.url("shop");
    let mut child = start_cdc(&src, &dst.url, state.path(), &["--reconnect-timeout", "5"]);
    let log = log_stderr(&mut child);
    wait_replicating(&mut child, state.path());

    // One transaction of three statements counts as one.
    my.exec("shop", "START TRANSACTION; INSERT INTO acc VALUES (3, 0); UPDATE acc SET bal = bal - 10 WHERE id = 1; UPDATE acc SET bal = bal + 10 WHERE id = 3; COMMIT").await;
    wait_row(&dst, "SELECT COUNT(*) FROM acc WHERE id = 3 AND bal = 10", "1", &mut child, &log).await;
    // The status file is rewritten about once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut j = status_of(state.path());
    while j["cdc"]["applied_changes"].as_u64() != Some(3) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        j = status_of(state.path());
    }
    assert_eq!((j["cdc"]["applied_transactions"].as_u64(), j["cdc"]["applied_changes"].as_u64()), (Some(1), Some(3)), "{j}");

    // A clean shutdown ends the binary log stream: barge reconnects.
    let down = Instant::now();
    my.shutdown();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    my.launch();
    let up = Instant::now();
    my.exec("shop", "INSERT INTO acc VALUES (4, 44)").await;
    wait_row(&dst, "SELECT COUNT(*) FROM acc WHERE id = 4", "1", &mut child, &log).await;
    let caught_up = Instant::now();
    let detected = first_line(&log, down, &["reconnecting"]).unwrap_or_else(|| panic!("the shutdown was not noticed:\n{}", text_of(&log)));
    eprintln!(
        "MariaDB source shutdown: detected in {:.2} s; caught up {:.2} s after the server was back (down {:.1} s)",
        (detected - down).as_secs_f64(),
        (caught_up - up).as_secs_f64(),
        (up - down).as_secs_f64()
    );
    validate(&src, &dst.url, "acc");

    // It stays down: after --reconnect-timeout, the run fails and says why.
    let down = Instant::now();
    my.shutdown();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "barge kept running with its source gone:\n{}", text_of(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    std::thread::sleep(Duration::from_millis(200));
    let err = text_of(&log);
    assert_eq!(status.code(), Some(1), "a failure a supervisor sees:\n{err}");
    assert!(err.contains("gave up on the source") && err.contains("--reconnect-timeout"), "{err}");
    eprintln!("MariaDB source gone for good: the run failed after {:.1} s", down.elapsed().as_secs_f64());
    let j = status_of(state.path());
    assert!(!j["cdc"]["running"].as_bool().unwrap() && j["cdc"]["stopped"].as_str().unwrap().starts_with("failed: gave up"), "{j}");
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_postgres_source_is_detected_by_the_stream_timeout() {
    let src = TestDb::new(Engine::Postgres, "cdc_hole").await;
    exec(&src, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')").await;
    let dst = TestDb::new(Engine::Postgres, "cdc_hole").await;
    let pg_port = server_url("BARGE_TEST_PG_URL").port().unwrap();
    let proxy = BlackHole::start(pg_port).await;
    let via_proxy = src.url.replacen(&format!(":{pg_port}/"), &format!(":{}/", proxy.port), 1);
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&via_proxy, &dst.url, state.path(), &["--stream-timeout", "3"]);
    let log = log_stderr(&mut child);
    wait_replicating(&mut child, state.path());
    exec(&src, "INSERT INTO t VALUES (2, 'two')").await;
    wait_row(&dst, "SELECT COUNT(*) FROM t", "2", &mut child, &log).await;

    let holed = Instant::now();
    proxy.hole(true);
    exec(&src, "INSERT INTO t VALUES (3, 'written while the route is black-holed')").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let detected = loop {
        if let Some(t) = first_line(&log, holed, &["timed out"]) {
            break t;
        }
        assert!(Instant::now() < deadline, "a silent source was not detected:\n{}", text_of(&log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = Instant::now();
    proxy.hole(false);
    wait_row(&dst, "SELECT COUNT(*) FROM t", "3", &mut child, &log).await;
    eprintln!(
        "PostgreSQL source black-holed: detected in {:.2} s (--stream-timeout 3); caught up {:.2} s after the route came back",
        (detected - holed).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    stop(child);
    validate(&src.url, &dst.url, "t");
    run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_and_target_restarts_are_detected_and_recovered() {
    let pg = PrivatePg::start();
    let admin = pg.client("postgres").await.unwrap();
    admin.batch_execute("CREATE DATABASE db").await.unwrap();
    drop(admin);
    let private = TestDb::external_pg("db", pg.url("db"), pg.conninfo("db"));
    for source_restarts in [true, false] {
        let shared = TestDb::new(Engine::Postgres, "cdc_restart").await;
        let (src, dst) = if source_restarts { (&private, &shared) } else { (&shared, &private) };
        exec(src, "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g").await;
        exec(dst, "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS barge_cdc_state").await;
        let state = tempfile::tempdir().unwrap();
        let mut child = start_cdc(&src.url, &dst.url, state.path(), &[]);
        let log = log_stderr(&mut child);
        wait_replicating(&mut child, state.path());
        exec(src, "UPDATE t SET v = 1 WHERE id = 1").await;
        wait_row(dst, "SELECT v FROM t WHERE id = 1", "1", &mut child, &log).await;

        let down = Instant::now();
        pg.ctl(&["restart"]);
        let up = Instant::now();
        // A change after the restart: it must arrive.
        exec(src, "UPDATE t SET v = 2 WHERE id = 2").await;
        wait_row(dst, "SELECT v FROM t WHERE id = 2", "2", &mut child, &log).await;
        let caught_up = Instant::now();
        let detected = first_line(&log, down, &["reconnecting", "retrying"]).unwrap_or_else(|| panic!("the restart was not noticed:\n{}", text_of(&log)));
        eprintln!(
            "PostgreSQL {} restart (pg_ctl restart -m fast, {:.1} s): detected {:.2} s after it began; the next change applied {:.2} s after the server was back",
            if source_restarts { "source" } else { "target" },
            (up - down).as_secs_f64(),
            (detected - down).as_secs_f64(),
            (caught_up - up).as_secs_f64()
        );
        stop(child);
        validate(&src.url, &dst.url, "t");
        run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state.path()));
        shared.drop_db().await;
    }
}
