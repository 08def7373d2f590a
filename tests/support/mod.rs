//! Shared test helpers: the real binary, and fresh databases on the servers
//! `tests/run.sh` starts (PostgreSQL, MariaDB) or in temp files (SQLite).
#![allow(dead_code)]

pub mod aws_proxy;
pub mod servers;
pub mod mysql_util;
pub mod sinks;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub fn barge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_barge"));
    c.env_remove("BARGE_SOURCE_PASSWORD").env_remove("BARGE_TARGET_PASSWORD").env("NO_COLOR", "1");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run barge")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), stdout(o), stderr(o))
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}", o.status, stdout(o), stderr(o));
}

/// Runs `sql` on `db` through barge's own connection.
pub async fn exec(db: &TestDb, sql: &str) {
    let mut c = db.connect(barge::endpoint::Role::Target).await;
    c.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A deterministic pseudo-random byte stream (xorshift), so test trees are
/// reproducible without a dependency.
pub fn pseudo_random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `migrate SRC DST --mode full-load-and-cdc` in the background, quick to
/// notice changes (1 s heartbeat, 50 ms polls).
pub fn start_cdc(src: &str, dst: &str, state: &Path, extra: &[&str]) -> std::process::Child {
    barge()
        .args(["migrate", src, dst, "--mode", "full-load-and-cdc", "--heartbeat", "1", "--poll-interval", "50", "--state-dir"])
        .arg(state)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start barge")
}

/// Ctrl-C: barge stops after the batch in flight and says it was interrupted.
pub fn interrupt(mut child: std::process::Child) -> Output {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "barge did not stop after SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Stops a running change-capture task with Ctrl-C (it says it was
/// interrupted: exit 130), removes its capture (`barge cleanup`) and drops
/// both databases.
pub async fn stop_and_clean_up(child: std::process::Child, state: &std::path::Path, src: TestDb, dst: TestDb) {
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let out = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state));
    assert_ok(&out, "cleanup");
    src.drop_db().await;
    dst.drop_db().await;
}

/// Panics with barge's stderr if `child` has exited while a test waited
/// for `what`.
pub fn assert_running(child: &mut std::process::Child, what: &str) {
    if let Some(st) = child.try_wait().unwrap() {
        let mut err = String::new();
        use std::io::Read;
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("barge exited ({st:?}) {what}:\n{err}");
    }
}

/// Waits until replication has started (the status file exists).
pub fn wait_replicating(child: &mut std::process::Child, state: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !state.join("cdc-status.json").exists() {
        assert_running(child, "before replicating");
        assert!(std::time::Instant::now() < deadline, "replication did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs and insists on success, showing stderr otherwise.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// A server URL from the environment `tests/run.sh` sets up.
pub fn server_url(var: &str) -> url::Url {
    let raw = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `bash tests/run.sh`, which starts PostgreSQL and MariaDB on loopback")
    });
    url::Url::parse(&raw).expect("valid test server URL")
}

/// The test password, in a file, so URLs never carry it (barge refuses
/// inline passwords).
pub fn password_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        // tests/services.sh writes one in its folder, removed with it.
        if let Some(p) = std::env::var_os("BARGE_TEST_PASSWORD_FILE").map(PathBuf::from).filter(|p| p.exists()) {
            return p;
        }
        let u = server_url("BARGE_TEST_PG_URL");
        let pw = u.password().unwrap_or_default().to_string();
        let path = std::env::temp_dir().join(format!("barge-test-pw-{}", std::process::id()));
        std::fs::write(&path, pw).expect("write password file");
        path
    })
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("t_{}_{}_{}", tag.replace(|c: char| !c.is_ascii_alphanumeric(), "_"), std::process::id(), n).to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
    Sqlite,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Postgres, Engine::Mysql, Engine::Sqlite];
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
}

/// A database created for one test; `url` has no password in it.
pub struct TestDb {
    pub engine: Engine,
    pub name: String,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// How to reach a PostgreSQL database on a server other than the
    /// shared test server (libpq key=value form).
    conninfo: Option<String>,
}

fn admin_pg() -> (String, String) {
    let u = server_url("BARGE_TEST_PG_URL");
    let host = u.host_str().unwrap().to_string();
    let port = u.port().unwrap_or(5432);
    (format!("host={host} port={port} user={} password={} dbname=postgres", u.username(), u.password().unwrap_or_default()), format!("{}@{host}:{port}", u.username()))
}

fn admin_mysql() -> (mysql_async::Opts, String) {
    let u = server_url("BARGE_TEST_MYSQL_URL");
    let opts = mysql_async::Opts::from_url(u.as_str()).expect("mysql url");
    (opts, format!("{}@{}:{}", u.username(), u.host_str().unwrap(), u.port().unwrap_or(3306)))
}

impl TestDb {
    pub async fn new(engine: Engine, tag: &str) -> TestDb {
        let name = unique(tag);
        match engine {
            Engine::Postgres => {
                let (conn, at) = admin_pg();
                let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect to test PostgreSQL");
                tokio::spawn(c);
                client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
                let url = format!("postgres://{at}/{name}?sslmode=disable&password_file={}", password_file().display());
                TestDb { engine, name, url, _dir: None, conninfo: None }
            }
            Engine::Mysql => {
                let (opts, at) = admin_mysql();
                let mut c = mysql_async::Conn::new(opts).await.expect("connect to test MariaDB");
                use mysql_async::prelude::Queryable;
                c.query_drop(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")).await.expect("create database");
                let _ = c.disconnect().await;
                let url = format!("mysql://{at}/{name}?ssl-mode=DISABLED&password_file={}", password_file().display());
                TestDb { engine, name, url, _dir: None, conninfo: None }
            }
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(format!("{name}.db"));
                TestDb { engine, name, url: format!("sqlite:{}", path.display()), _dir: Some(dir), conninfo: None }
            }
        }
    }

    /// A PostgreSQL database on a server a test started itself.
    pub fn external_pg(name: &str, url: String, conninfo: String) -> TestDb {
        TestDb { engine: Engine::Postgres, name: name.to_string(), url, _dir: None, conninfo: Some(conninfo) }
    }

    pub fn endpoint(&self) -> barge::endpoint::Endpoint {
        barge::endpoint::Endpoint::parse(&self.url).expect("test URL parses")
    }

    pub async fn connect(&self, role: barge::endpoint::Role) -> barge::db::Db {
        barge::db::Db::connect(&self.endpoint(), role).await.unwrap_or_else(|e| panic!("connect {}: {e} ({:?})", self.url, e.hint()))
    }

    pub async fn drop_db(self) {
        match self.engine {
            Engine::Postgres => {
                let (conn, _) = admin_pg();
                if let Ok((client, c)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
                    tokio::spawn(c);
                    // A replication slot (change capture) pins its database.
                    let _ = client.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", &[&self.name]).await;
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
                }
            }
            Engine::Mysql => {
                let (opts, _) = admin_mysql();
                if let Ok(mut c) = mysql_async::Conn::new(opts).await {
                    use mysql_async::prelude::Queryable;
                    let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {}", self.name)).await;
                    let _ = c.disconnect().await;
                }
            }
            Engine::Sqlite => {}
        }
    }
}

impl TestDb {
    /// A client on this database, as the admin user.
    async fn pg_client(&self) -> tokio_postgres::Client {
        let conn = match &self.conninfo {
            Some(c) => c.clone(),
            None => admin_pg().0.replace("dbname=postgres", &format!("dbname={}", self.name)),
        };
        let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(c);
        client
    }

    async fn mysql_conn(&self) -> mysql_async::Conn {
        let (opts, _) = admin_mysql();
        let opts = mysql_async::OptsBuilder::from_opts(opts).db_name(Some(self.name.clone()));
        mysql_async::Conn::new(opts).await.expect("connect")
    }

    /// Runs a SQL script on this database (statements split at `;` + newline).
    pub async fn load_script(&self, path: &Path) {
        let sql = std::fs::read_to_string(path).expect("read script");
        match self.engine {
            Engine::Postgres => {
                let client = self.pg_client().await;
                client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            }
            Engine::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = self.mysql_conn().await;
                for stmt in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--"))) {
                    c.query_drop(stmt).await.unwrap_or_else(|e| panic!("{}: {e}\n{stmt}", path.display()));
                }
                let _ = c.disconnect().await;
            }
            Engine::Sqlite => {
                let url = self.url.clone();
                let ep = barge::endpoint::Endpoint::parse(&url).unwrap();
                let mut db = barge::db::Db::connect(&ep, barge::endpoint::Role::Target).await.unwrap();
                db.execute(&sql).await.unwrap();
            }
        }
    }

    /// One query's first row, as text per column (NULL → None), via the
    /// engine's own client: an independent look at what landed.
    pub async fn query_row(&self, sql: &str) -> Vec<Option<String>> {
        self.try_query_row(sql).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestDb::query_row`], with the error (a table not there yet, say)
    /// returned rather than a panic.
    pub async fn try_query_row(&self, sql: &str) -> Result<Vec<Option<String>>, String> {
        Ok(match self.engine {
            Engine::Postgres => {
                let client = self.pg_client().await;
                let msgs = client.simple_query(sql).await.map_err(|e| format!("{sql}: {e:?}"))?;
                for m in msgs {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        return Ok((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                    }
                }
                return Err(format!("no row for {sql}"));
            }
            Engine::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = self.mysql_conn().await;
                let row: mysql_async::Row = c.query_first(sql).await.map_err(|e| format!("{sql}: {e}"))?.ok_or_else(|| format!("no row for {sql}"))?;
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            }
            Engine::Sqlite => {
                use sqlx::{Connection, Row, ValueRef};
                let path = self.url.trim_start_matches("sqlite:");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.expect("open");
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut c).await.map_err(|e| format!("{sql}: {e}"))?;
                (0..r.len())
                    .map(|i| {
                        let raw = r.try_get_raw(i).unwrap();
                        if raw.is_null() {
                            None
                        } else {
                            r.try_get::<String, _>(i).ok().or_else(|| r.try_get::<i64, _>(i).ok().map(|v| v.to_string())).or_else(|| r.try_get::<f64, _>(i).ok().map(|v| v.to_string()))
                        }
                    })
                    .collect()
            }
        })
    }
}

/// A fresh database of `engine` holding a fixture: a SQLite file is
/// copied, a SQL script is run.
pub async fn source(engine: Engine, fixture_path: &str, tag: &str) -> TestDb {
    let db = TestDb::new(engine, tag).await;
    if engine == Engine::Sqlite {
        std::fs::copy(fixture(fixture_path), db.url.trim_start_matches("sqlite:")).unwrap();
    } else {
        db.load_script(&fixture(fixture_path)).await;
    }
    db
}

/// What every copy of the sample shop (fixtures/sample/shop.db) must hold.
pub async fn sample_checks(dst: &TestDb) {
    let count = dst.query_row("SELECT COUNT(*) FROM order_items").await;
    assert_eq!(count[0].as_deref(), Some("69370"));
    let big = dst.query_row("SELECT big_counter FROM customers WHERE id = 1").await;
    assert!(big[0].as_deref().is_some_and(|v| v == "9223372036854775807" || v == "-9223372036854775808"), "{big:?}");
    let blob_len = match dst.engine {
        Engine::Postgres => "SELECT octet_length(avatar) FROM customers WHERE id = 1",
        _ => "SELECT length(avatar) FROM customers WHERE id = 1",
    };
    let n = dst.query_row(blob_len).await;
    assert_eq!(n[0].as_deref(), Some("256"), "all 256 byte values kept");
}

/// Waits until a pack's `journal` records `chunks` finished chunk files,
/// then kills `child` with SIGKILL (and reaps it).
pub fn kill_after_chunks(child: &mut std::process::Child, journal: &Path, chunks: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let j = std::fs::read_to_string(journal).unwrap_or_default();
        if j.matches(r#""t":"chunk""#).count() >= chunks {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "pack ended before it could be killed");
        assert!(std::time::Instant::now() < deadline, "no progress in the journal");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());
    let j = std::fs::read_to_string(journal).unwrap();
    assert!(!j.contains(r#""t":"complete""#), "the pack finished before the kill; give it more to pack");
}

/// Waits (up to 90 s) until `sql` on `db` returns `want` in its first
/// column (an error counts as not yet), failing at once if barge
/// (`child`) exits meanwhile.
pub async fn wait_for(db: &TestDb, sql: &str, want: &str, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        // A table may be missing for a moment (a reload drops and creates
        // it again): that is "not yet", not a failure.
        let got = db.try_query_row(sql).await;
        if got.as_ref().is_ok_and(|r| r[0].as_deref() == Some(want)) {
            return;
        }
        assert_running(child, &format!("while waiting for {sql} = {want} (have {got:?})"));
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {sql} = {want} (have {got:?})");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `barge --json status` of the task whose state is in `state`.
pub fn status_of(state: &Path) -> serde_json::Value {
    let st = run(barge().args(["--json", "status", "--state-dir"]).arg(state));
    assert_ok(&st, "status");
    serde_json::from_slice(&st.stdout).unwrap()
}

/// Peak RSS of a child, polled from /proc until it exits (VmHWM only grows).
pub fn peak_rss_kb(cmd: &mut std::process::Command) -> (Output, u64) {
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poll = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(&status) {
                    if let Some(kb) = s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<u64>().ok()) {
                        peak = peak.max(kb);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        })
    };
    let out = child.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (out, poll.join().unwrap())
}
