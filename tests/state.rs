//! A state directory that cannot lie: a rerun refuses state recorded
//! against a target that was dropped and re-created, or against another
//! server behind the same URL, and `--restart` starts over; a lost slot
//! says how to start over; a failed connection leaves no state behind.
//! Against the real servers `tests/run.sh` starts, and PostgreSQL clusters
//! the tests start themselves.

use crate::support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use support::*;

/// Full load, then changes until the first one lands; then Ctrl-C.
async fn replicate_once(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str], marker: i64) -> Output {
    // An earlier run's status file would end the wait below at once.
    let _ = std::fs::remove_file(state.join("cdc-status.json"));
    let mut child = start_cdc(&src.url, &dst.url, state, extra);
    wait_replicating(&mut child, state);
    exec(src, &format!("UPDATE acc SET balance = {marker} WHERE id = 7")).await;
    wait_for(dst, "SELECT balance FROM acc WHERE id = 7", &marker.to_string(), &mut child).await;
    interrupt(child)
}

/// The same command again; one that is not refused would replicate until
/// stopped, so it gets a minute before the test gives up on it.
fn rerun(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str]) -> Output {
    let mut child = start_cdc(&src.url, &dst.url, state, extra);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let out = interrupt(child);
            panic!("the rerun was not refused:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn assert_refused(out: &Output, why: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    let err = stderr(out);
    assert!(err.contains("does not match what the databases hold now") && err.contains(why), "says what differs ({why}): {err}");
    assert!(err.contains("--restart"), "names the flag that starts over: {err}");
}

async fn cleanup(src: &TestDb, state: &Path) {
    let _ = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_and_recreated_target_is_refused_and_restart_starts_over() {
    for engine in [Engine::Postgres, Engine::Mysql] {
        let src = TestDb::new(Engine::Postgres, "srecreate").await;
        exec(&src, "CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acc SELECT g, 100 FROM generate_series(1, 500) g").await;
        let dst = TestDb::new(engine, "srecreate").await;
        let state = tempfile::tempdir().unwrap();
        let out = replicate_once(&src, &dst, state.path(), &[], 1).await;
        assert_eq!(out.status.code(), Some(130), "{}", text(&out));

        // The target database is dropped and created again, empty.
        match engine {
            Engine::Postgres => {
                exec_admin(engine, &format!("DROP DATABASE {} WITH (FORCE)", dst.name)).await;
                exec_admin(engine, &format!("CREATE DATABASE {}", dst.name)).await;
            }
            _ => {
                exec_admin(engine, &format!("DROP DATABASE {}", dst.name)).await;
                exec_admin(engine, &format!("CREATE DATABASE {} CHARACTER SET utf8mb4", dst.name)).await;
            }
        }
        let out = rerun(&src, &dst, state.path(), &[]);
        // PostgreSQL gives the new database a new OID; on MariaDB the
        // tables the run created are gone.
        assert_refused(&out, if engine == Engine::Postgres { "dropped and re-created" } else { "tables the run created are gone" });

        // --restart: the full load again, then changes, on the new database.
        let out = replicate_once(&src, &dst, state.path(), &["--restart"], 2).await;
        assert_eq!(out.status.code(), Some(130), "{}", text(&out));
        assert!(stderr(&out).contains("--restart: discarded the state"), "{}", stderr(&out));
        let n = dst.query_row("SELECT COUNT(*), SUM(balance) FROM acc").await;
        assert_eq!(n, vec![Some("500".into()), Some((499 * 100 + 2).to_string())]);
        cleanup(&src, state.path()).await;
        src.drop_db().await;
        dst.drop_db().await;
    }
}

async fn exec_admin(engine: Engine, sql: &str) {
    match engine {
        Engine::Postgres => {
            let u = server_url("BARGE_TEST_PG_URL");
            let (client, c) = tokio_postgres::connect(u.as_str(), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(c);
            client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        _ => {
            use mysql_async::prelude::Queryable;
            let u = server_url("BARGE_TEST_MYSQL_URL");
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(u.as_str()).unwrap()).await.unwrap();
            c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = c.disconnect().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_target_replaced_mid_load_is_refused() {
    let src = TestDb::new(Engine::Postgres, "slite").await;
    exec(&src, "CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acc SELECT g, 100 FROM generate_series(1, 60000) g").await;
    let dst = TestDb::new(Engine::Sqlite, "slite").await;
    let state = tempfile::tempdir().unwrap();
    let args = ["--chunk-rows", "2000"];
    // Killed mid-load: the state says some chunks are done.
    let mut child = barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(state.path()).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = std::fs::read_to_string(state.path().join("state.json")).unwrap_or_default();
        if s.matches("\"status\": \"done\"").count() >= 3 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the load ended before it could be killed");
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Someone replaces the target file with an empty database.
    let path = dst.url.trim_start_matches("sqlite:").to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    exec(&dst, "CREATE TABLE unrelated (x int)").await;
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(state.path()).args(args));
    assert_refused(&out, "another file");
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--restart", "--validate", "--state-dir"]).arg(state.path()).args(args));
    assert_ok(&out, "--restart loads everything again");
    let n = dst.query_row("SELECT COUNT(*) FROM acc").await;
    assert_eq!(n[0].as_deref(), Some("60000"));
    src.drop_db().await;
}

// ---- another server behind the same URL -------------------------------------------

/// A PostgreSQL cluster of the test's own, on a port it chooses.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn pg(program: &str) -> std::process::Command {
        let exe = format!("{}/{program}", std::env::var("BARGE_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()));
        if unsafe { libc::geteuid() } == 0 {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    fn start(port: u16) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            std::process::Command::new("chown").args(["-R", "postgres:"]).arg(dir.path()).status().unwrap();
        }
        let data = dir.path().join("data");
        let ok = Self::pg("initdb").arg("-D").arg(&data).args(["-U", "barge", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]).stdout(Stdio::null()).status().unwrap();
        assert!(ok.success(), "initdb");
        let conf = format!("\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n", dir.path().display());
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap().write_all(conf.as_bytes()).unwrap();
        let c = Cluster { dir, port };
        c.ctl("start");
        c
    }

    fn ctl(&self, what: &str) {
        let ok = Self::pg("pg_ctl").arg("-D").arg(self.dir.path().join("data")).arg("-l").arg(self.dir.path().join("log")).args(["-w", "-t", "60", "-m", "fast", what]).stdout(Stdio::null()).status().unwrap();
        assert!(ok.success(), "pg_ctl {what}");
    }

    async fn create_db(&self, name: &str) -> TestDb {
        let (client, c) = tokio_postgres::connect(&format!("host=127.0.0.1 port={} user=barge dbname=postgres", self.port), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(c);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        TestDb::external_pg(name, format!("postgres://barge@127.0.0.1:{}/{name}?sslmode=disable", self.port), format!("host=127.0.0.1 port={} user=barge dbname={name}", self.port))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::pg("pg_ctl").arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "-w", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_on_the_same_url_is_refused() {
    let src = TestDb::new(Engine::Postgres, "sother").await;
    exec(&src, "CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acc SELECT g, 100 FROM generate_series(1, 500) g").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let first = Cluster::start(port);
    let dst = first.create_db("app").await;
    let state = tempfile::tempdir().unwrap();
    let out = replicate_once(&src, &dst, state.path(), &[], 1).await;
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    first.ctl("stop");

    // Another cluster, same port, same database name: the same URL.
    let second = Cluster::start(port);
    let dst = second.create_db("app").await;
    let out = rerun(&src, &dst, state.path(), &[]);
    assert_refused(&out, "another PostgreSQL server answers");

    let out = replicate_once(&src, &dst, state.path(), &["--restart"], 2).await;
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let n = dst.query_row("SELECT COUNT(*) FROM acc").await;
    assert_eq!(n[0].as_deref(), Some("500"), "loaded again on the second server");
    cleanup(&src, state.path()).await;
    src.drop_db().await;
    drop(first);
}

// ---- a lost slot ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_slot_names_the_way_to_start_over_and_it_works() {
    let src = TestDb::new(Engine::Postgres, "sslot").await;
    exec(&src, "CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acc SELECT g, 100 FROM generate_series(1, 500) g").await;
    let dst = TestDb::new(Engine::Postgres, "sslot").await;
    let state = tempfile::tempdir().unwrap();
    let out = replicate_once(&src, &dst, state.path(), &[], 1).await;
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state.path().join("state.json")).unwrap()).unwrap();
    let slot = st["capture"]["slot"].as_str().unwrap().to_string();
    exec(&src, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;

    let out = rerun(&src, &dst, state.path(), &[]);
    assert_refused(&out, &format!("replication slot {slot} is gone"));
    // What the hint says, literally.
    let hint = stderr(&out).lines().find(|l| l.contains("hint:")).unwrap().to_string();
    assert!(hint.contains("--restart") && hint.contains("--target-schema truncate"), "{hint}");
    let out = replicate_once(&src, &dst, state.path(), &["--restart", "--target-schema", "truncate"], 3).await;
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let n = dst.query_row("SELECT COUNT(*) FROM acc").await;
    assert_eq!(n[0].as_deref(), Some("500"));
    cleanup(&src, state.path()).await;
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- nothing written when nothing could start ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connection_leaves_no_state_directory() {
    let src = TestDb::new(Engine::Postgres, "snoconn").await;
    exec(&src, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let pw = password_file().display().to_string();
    let dead_pg = format!("postgres://barge@127.0.0.1:{closed}/nowhere?sslmode=disable&password_file={pw}");
    let dead_my = format!("mysql://barge@127.0.0.1:{closed}/nowhere?ssl-mode=DISABLED&password_file={pw}");
    let lite = dir.path().join("out.db");
    for (i, (from, to)) in [(src.url.clone(), dead_pg.clone()), (src.url.clone(), dead_my), (dead_pg, format!("sqlite:{}", lite.display()))].into_iter().enumerate() {
        let state = dir.path().join(format!("state{i}"));
        let out = run(barge().args(["migrate", &from, &to, "--state-dir"]).arg(&state));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(stderr(&out).contains("onnect") || stderr(&out).contains("refused"), "a connection failure: {}", text(&out));
        assert!(!state.exists(), "no state directory after a failed connection: {}", text(&out));
        for mode in ["full-load-and-cdc", "cdc"] {
            let out = run(barge().args(["migrate", &from, &to, "--mode", mode, "--start-position", "pg:0/0", "--state-dir"]).arg(&state));
            assert_ne!(out.status.code(), Some(0), "{}", text(&out));
            assert!(!state.exists(), "no state directory after a failed connection ({mode}): {}", text(&out));
        }
    }
    assert!(!lite.exists(), "no target file either");
    src.drop_db().await;
}
