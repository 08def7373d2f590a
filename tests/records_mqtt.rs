//! The MQTT source against a real broker (mosquitto, started by
//! tests/services.sh with a plain listener and a TLS one that requires a
//! client certificate): messages land with their exact payloads and
//! topics, a persistent session delivers what was published while barge
//! was stopped, a client certificate is required and checked, and
//! neither a kill -9 of barge nor a restart of the broker mid-stream
//! loses anything.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::sinks::{env, read_dir};
use crate::support::{assert_ok, barge, run, text, Engine, TestDb};

fn port() -> String {
    env("BARGE_TEST_MQTT_PORT")
}

fn certs() -> std::path::PathBuf {
    env("BARGE_TEST_MQTT_CERTS").into()
}

/// A topic prefix no other test or run uses (the broker is shared).
fn prefix(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{tag}{}x{}x{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

fn url(filter: &str) -> String {
    format!("mqtt://127.0.0.1:{}/{filter}", port())
}

/// Publishes `lines` (one message each) to `topic` at QoS 1 over one connection.
fn publish_lines(topic: &str, lines: &[String], tls: bool) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-q", "1", "-t", topic, "-l"]);
    if tls {
        let c = certs();
        cmd.arg("-p").arg(env("BARGE_TEST_MQTTS_PORT"));
        cmd.arg("--cafile").arg(c.join("ca.pem")).arg("--cert").arg(c.join("client.pem")).arg("--key").arg(c.join("client.key"));
    } else {
        cmd.args(["-p", &port()]);
    }
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("mosquitto_pub (apt-get install mosquitto-clients)");
    let mut input = child.stdin.take().unwrap();
    for l in lines {
        writeln!(input, "{l}").unwrap();
    }
    drop(input);
    assert!(child.wait().unwrap().success(), "mosquitto_pub to {topic}");
}

fn publish_one(topic: &str, message: &str) {
    let st = Command::new("mosquitto_pub").args(["-h", "127.0.0.1", "-p", &port(), "-q", "1", "-t", topic, "-m", message]).status().unwrap();
    assert!(st.success(), "mosquitto_pub to {topic}");
}

fn publish_to(port: u16, topic: &str, lines: impl Iterator<Item = String>) {
    let mut child = Command::new("mosquitto_pub").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-l"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    for l in lines {
        writeln!(input, "{l}").unwrap();
    }
    drop(input);
    assert!(child.wait().unwrap().success(), "mosquitto_pub to {topic}");
}

/// A mosquitto of the test's own (the shared one must not restart under
/// other tests), persisting to a temp dir, on a loopback port.
struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    fn start() -> PrivateBroker {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = format!(
            "user root\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 100000\nlog_dest none\nlistener {port} 127.0.0.1\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("m.conf"), conf).unwrap();
        let mut b = PrivateBroker { dir, port, child: None };
        b.launch();
        b
    }

    fn launch(&mut self) {
        let bin = if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
        self.child = Some(Command::new(bin).arg("-c").arg(self.dir.path().join("m.conf")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mosquitto"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A clean stop (SIGTERM: it saves its sessions), as an operator restarts it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            c.wait().unwrap();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `barge migrate SRC DST --mode full-load --state-dir STATE ARGS`: reads
/// what the broker delivers and stops after 2 s of quiet.
fn bounded(src: &str, dst: &str, state: &Path, args: &[&str]) -> std::process::Output {
    run(barge().args(["migrate", src, dst, "--mode", "full-load", "--state-dir"]).arg(state).args(args))
}

fn follow(src: &str, dst: &str, state: &Path) -> Child {
    barge().args(["migrate", src, dst, "--mode", "cdc", "--state-dir"]).arg(state).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start barge")
}

/// Waits until the source subscribed (the loop writes its status once
/// the source is open).
fn wait_subscribed(child: &mut Child, state: &Path) {
    crate::support::wait_replicating(child, state);
}

/// The table the default layout names after a filter `P/#`.
fn table_of(prefix: &str) -> String {
    prefix.to_ascii_lowercase()
}

/// Every row as `topic|offset|data`, in offset order.
async fn rows(db: &TestDb, table: &str) -> Vec<String> {
    let got = db.query_row(&format!("SELECT string_agg(stream || '|' || \"offset\" || '|' || data, E'\\x1e' ORDER BY \"offset\"::bigint) FROM {table}")).await;
    got[0].as_deref().map(|s| s.split('\u{1e}').map(str::to_string).collect()).unwrap_or_default()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query_row(sql).await[0].as_deref().unwrap().parse().unwrap()
}

/// Payloads that test the exact-bytes path: quotes, tabs, a backslash,
/// non-ASCII text, a JSON object, one that looks like a CSV line.
fn awkward_payloads(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            0 => format!("plain {i}"),
            1 => format!("{{\"id\": {i}, \"t\": 21.50, \"s\": \"a\\\"b\"}}"),
            2 => format!("tab\there 'q' \"dq\" back\\slash {i}"),
            3 => format!("Zürich → 東京 {i} 🚀"),
            _ => format!("{i},\"x, y\",,end"),
        })
        .collect()
}

#[tokio::test]
async fn messages_land_in_postgres_with_their_exact_payloads_and_topics() {
    let p = prefix("pg");
    let db = TestDb::new(Engine::Postgres, "mqtt_pg").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = follow(&url(&format!("{p}/#")), &db.url, state.path());
    wait_subscribed(&mut child, state.path());

    let a = awkward_payloads(40);
    publish_lines(&format!("{p}/line-1/temp"), &a, false);
    publish_one(&format!("{p}/line-2"), "second topic");
    publish_one(&format!("{p}/line-1/temp"), "last");
    let table = table_of(&p);
    crate::support::wait_for(&db, &format!("SELECT count(*) FROM {table}"), "42", &mut child).await;
    let out = crate::support::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));

    let mut want: Vec<String> = a.iter().enumerate().map(|(i, d)| format!("{p}/line-1/temp|{}|{d}", i + 1)).collect();
    want.push(format!("{p}/line-2|41|second topic"));
    want.push(format!("{p}/line-1/temp|42|last"));
    assert_eq!(rows(&db, &table).await, want);
    // The key column and the time are not MQTT's: empty, not made up.
    assert_eq!(count(&db, &format!("SELECT count(*) FROM {table} WHERE key IS NULL AND time IS NULL")).await, 42);

    // A rerun with nothing new lands nothing twice and says where it stands.
    let out = bounded(&url(&format!("{p}/#")), &db.url, state.path(), &[]);
    assert_ok(&out, "rerun");
    assert_eq!(count(&db, &format!("SELECT count(*) FROM {table}")).await, 42);
    db.drop_db().await;
}

#[tokio::test]
async fn messages_published_while_barge_is_stopped_are_delivered_on_the_rerun() {
    let p = prefix("ps");
    let db = TestDb::new(Engine::Postgres, "mqtt_session").await;
    let state = tempfile::tempdir().unwrap();
    let src = url(&format!("{p}/#"));
    let table = table_of(&p);
    // The first run makes the session (nothing is published yet).
    assert_ok(&bounded(&src, &db.url, state.path(), &[]), "first run");
    assert_eq!(count(&db, &format!("SELECT count(*) FROM {table}")).await, 0);

    // barge is stopped: the broker queues these for its session.
    let first: Vec<String> = (0..300).map(|i| format!("while stopped {i}")).collect();
    publish_lines(&format!("{p}/a"), &first, false);
    let out = bounded(&src, &db.url, state.path(), &[]);
    assert_ok(&out, "second run");
    let want: Vec<String> = first.iter().enumerate().map(|(i, d)| format!("{p}/a|{}|{d}", i + 1)).collect();
    assert_eq!(rows(&db, &table).await, want);

    // Stopped again; more arrive; the third run takes exactly those.
    let second: Vec<String> = (0..25).map(|i| format!("later {i}")).collect();
    publish_lines(&format!("{p}/b"), &second, false);
    assert_ok(&bounded(&src, &db.url, state.path(), &[]), "third run");
    assert_eq!(count(&db, &format!("SELECT count(*) FROM {table}")).await, 325);
    assert_eq!(count(&db, &format!("SELECT count(DISTINCT data) FROM {table}")).await, 325);
    assert_eq!(count(&db, &format!("SELECT max(\"offset\"::bigint) FROM {table} WHERE stream = '{p}/b'")).await, 325);
    db.drop_db().await;
}

#[tokio::test]
async fn messages_land_in_parquet_files_with_their_topics() {
    let p = prefix("pq");
    let out_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let src = url(&format!("{p}/#"));
    let dst = format!("file://{}", out_dir.path().display());
    // A file is durable once written: a short interval keeps acknowledgements
    // coming, so the broker (20 unacknowledged messages at most) sends on.
    let args = ["--format", "parquet", "--buffer-interval", "1"];
    assert_ok(&bounded(&src, &dst, state.path(), &args), "first run");
    let payloads = awkward_payloads(50);
    publish_lines(&format!("{p}/dev-1"), &payloads[..30], false);
    publish_lines(&format!("{p}/dev-2"), &payloads[30..], false);
    let out = bounded(&src, &dst, state.path(), &args);
    assert_ok(&out, "run into parquet");
    assert!(!crate::support::stderr(&out).contains("not written yet"), "{}", text(&out));

    let files = read_dir(out_dir.path());
    let files = files["files"].as_object().unwrap();
    assert!(!files.is_empty() && files.keys().all(|k| k.ends_with(".parquet")), "{files:?}");
    let mut got: Vec<(i64, String, String)> = Vec::new();
    for f in files.values() {
        let cols: Vec<&str> = f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap()).collect();
        let at = |name: &str| cols.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no column {name} in {cols:?}"));
        for r in f["rows"].as_array().unwrap() {
            got.push((r[at("offset")].as_str().unwrap().parse().unwrap(), r[at("stream")].as_str().unwrap().to_string(), r[at("data")].as_str().unwrap().to_string()));
        }
    }
    got.sort();
    let want: Vec<(i64, String, String)> = payloads.iter().enumerate().map(|(i, d)| ((i + 1) as i64, format!("{p}/dev-{}", if i < 30 { 1 } else { 2 }), d.clone())).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn mqtts_needs_the_client_certificate_and_the_right_ca() {
    let p = prefix("tls");
    let c = certs();
    let tls = |q: &str| format!("mqtts://127.0.0.1:{}/{p}/#?{q}", env("BARGE_TEST_MQTTS_PORT"));
    let with_cert = format!("ca={}&cert={}&key_file={}", c.join("ca.pem").display(), c.join("client.pem").display(), c.join("client.key").display());
    let db = TestDb::new(Engine::Postgres, "mqtt_tls").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&bounded(&tls(&with_cert), &db.url, state.path(), &[]), "first run over TLS");
    publish_lines(&format!("{p}/secure"), &["over tls 1".to_string(), "over tls 2".to_string()], true);
    assert_ok(&bounded(&tls(&with_cert), &db.url, state.path(), &[]), "run over TLS");
    assert_eq!(rows(&db, &table_of(&p)).await, vec![format!("{p}/secure|1|over tls 1"), format!("{p}/secure|2|over tls 2")]);

    // No client certificate: the broker ends the handshake; barge says what to give.
    let other = tempfile::tempdir().unwrap();
    let out = bounded(&tls(&format!("ca={}", c.join("ca.pem").display())), &db.url, other.path(), &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = crate::support::stderr(&out);
    assert!(err.contains("client certificate") && err.contains("?cert=FILE&key_file=FILE"), "{err}");

    // A CA that did not sign the broker's certificate.
    let q = with_cert.replace("ca.pem", "other-ca.pem");
    let out = bounded(&tls(&q), &db.url, other.path(), &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = crate::support::stderr(&out);
    assert!(err.contains("certificate is not trusted") && err.contains("?ca=FILE"), "{err}");
    db.drop_db().await;
}

#[tokio::test]
async fn kill_9_mid_stream_then_a_rerun_loses_nothing() {
    let p = prefix("k9");
    let db = TestDb::new(Engine::Postgres, "mqtt_kill").await;
    let state = tempfile::tempdir().unwrap();
    let src = url(&format!("{p}/#"));
    let table = table_of(&p);
    let mut child = follow(&src, &db.url, state.path());
    wait_subscribed(&mut child, state.path());
    const N: i64 = 4000;
    let payloads: Vec<String> = (0..N).map(|i| format!("reading {i}")).collect();
    let topic = format!("{p}/meter");
    let publisher = std::thread::spawn(move || publish_lines(&topic, &payloads, false));

    // Kill -9 once some, not all, have landed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = db.try_query_row(&format!("SELECT count(*) FROM {table}")).await.ok().and_then(|r| r[0].as_deref().map(|v| v.parse::<i64>().unwrap())).unwrap_or(0);
        if n >= 300 {
            assert!(n < N, "every message landed before the kill; publish more");
            break;
        }
        crate::support::assert_running(&mut child, "before the kill");
        assert!(Instant::now() < deadline, "nothing landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    publisher.join().unwrap();

    let out = bounded(&src, &db.url, state.path(), &[]);
    assert_ok(&out, "rerun after kill -9");
    // Every message, each at least once.
    assert_eq!(count(&db, &format!("SELECT count(DISTINCT data) FROM {table}")).await, N);
    assert_eq!(count(&db, &format!("SELECT count(*) FROM {table} WHERE data NOT LIKE 'reading %'")).await, 0);
    // A message lands twice only if the kill fell between barge dropping it
    // from its journal and the broker showing it read its PUBACK: one round
    // of acknowledgements at most (ACK_ROUND, 100).
    let twice = count(&db, &format!("SELECT count(*) FROM {table}")).await - N;
    assert!((0..=100).contains(&twice), "{twice} messages landed twice");
    db.drop_db().await;
}

#[tokio::test]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let mut broker = PrivateBroker::start();
    let db = TestDb::new(Engine::Postgres, "mqtt_restart").await;
    let state = tempfile::tempdir().unwrap();
    let src = format!("mqtt://127.0.0.1:{}/plant/#", broker.port);
    let mut child = follow(&src, &db.url, state.path());
    wait_subscribed(&mut child, state.path());
    publish_to(broker.port, "plant/a", (0..1000).map(|i| format!("before {i}")));
    // Stop the broker once some have landed, start it again, publish more.
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.try_query_row("SELECT count(*) FROM plant").await.ok().and_then(|r| r[0].as_deref().map(|v| v.parse::<i64>().unwrap())).unwrap_or(0) < 100 {
        crate::support::assert_running(&mut child, "before the broker restart");
        assert!(Instant::now() < deadline, "nothing landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.stop();
    std::thread::sleep(Duration::from_millis(500));
    broker.launch();
    publish_to(broker.port, "plant/b", (0..500).map(|i| format!("after {i}")));
    crate::support::wait_for(&db, "SELECT count(DISTINCT data) FROM plant", "1500", &mut child).await;
    let out = crate::support::interrupt(child);
    assert!(crate::support::stderr(&out).contains("reconnected"), "{}", text(&out));
    // Only messages whose acknowledgement was on its way when the broker
    // stopped may land twice: one round at most.
    let twice = count(&db, "SELECT count(*) FROM plant").await - 1500;
    assert!((0..=100).contains(&twice), "{twice} messages landed twice");
    db.drop_db().await;
}
