//! Change data capture end to end, against real servers: every change type
//! and value type reaches the target, transactions stay whole (a rolled-back
//! one never appears), nothing is lost or doubled across the full-load
//! handoff under continuous writes, a SIGKILL and a rerun, and restarts of
//! the source and target servers; schema changes reach the target;
//! `status` and `cleanup` work; bad setups get clear errors.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::servers::PrivatePg;
use support::*;

/// `migrate --mode full-load-and-cdc` in the background.
fn start(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str]) -> Child {
    start_cdc(&src.url, &dst.url, state, extra)
}

fn validate(src: &TestDb, dst: &TestDb, tables: &str) {
    let out = run(barge().args(["validate", &src.url, &dst.url, "--tables", tables]));
    assert_ok(&out, "validate");
    assert!(!stdout(&out).contains("DIFFERENT"), "{}", stdout(&out));
}

fn cleanup(src: &TestDb, state: &Path) {
    let out = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(state));
    assert_ok(&out, "cleanup");
}

// ---- every change type and value type, PostgreSQL to each engine ---------

const PG_EXTRA: &str = "
CREATE TABLE docs (id integer PRIMARY KEY, title text, body text);
CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL);
CREATE TABLE order_lines (order_id integer NOT NULL, n integer NOT NULL, qty numeric(10,3), PRIMARY KEY (order_id, n));
CREATE TABLE pairs (a integer, b text);
INSERT INTO docs VALUES (1, 'first', repeat('lorem ipsum ', 200000));
INSERT INTO orders VALUES (1, 'ann');
INSERT INTO order_lines VALUES (1, 1, 1.5);
INSERT INTO pairs VALUES (1, 'x'), (1, 'x'), (2, 'y');
";

/// Changes of every kind on the PostgreSQL types fixture, made while barge
/// replicates; returns the statements so other engines can reuse the idea.
async fn pg_changes(src: &TestDb) {
    let steps = [
        // A new row of every type, copied from the extreme one.
        "INSERT INTO every_type SELECT 10, b, i2, i4, i8, n, nfree, r, d, c, vc, t, by, dt, tm, tmtz, ts, tstz, iv, js, jsb, u, e, bt, vb, ai, at, x, m, addr FROM every_type WHERE id = 2",
        "UPDATE every_type SET t = 'changed ' || t, n = 0.0000000001, tstz = '2030-06-01 12:00:00.5+02', js = '{\"new\": true}', ai = '{9}' WHERE id = 1",
        "UPDATE every_type SET id = 11 WHERE id = 4",
        "DELETE FROM every_type WHERE id = 3",
        "INSERT INTO specials VALUES (5, 'NaN', '-Infinity')",
        "UPDATE specials SET f = '-Infinity' WHERE id = 4",
        // A large value, then an update that leaves it untouched (TOAST 'u').
        "INSERT INTO docs VALUES (2, 'second', repeat('dolor sit amet ', 300000))",
        "UPDATE docs SET title = 'first, renamed' WHERE id = 1",
        // One transaction across tables, and one rolled back.
        "BEGIN; INSERT INTO orders VALUES (2, 'bob'); INSERT INTO order_lines VALUES (2, 1, 2.25), (2, 2, 3.125); UPDATE order_lines SET qty = 9.999 WHERE order_id = 1; COMMIT",
        "BEGIN; INSERT INTO orders VALUES (3, 'ghost'); INSERT INTO order_lines VALUES (3, 1, 1); DELETE FROM docs; ROLLBACK",
        // A table without a key: duplicates, updates and deletes of one copy.
        "INSERT INTO pairs VALUES (3, 'z'), (3, 'z')",
        "DELETE FROM pairs WHERE ctid = (SELECT ctid FROM pairs WHERE a = 1 LIMIT 1)",
        "UPDATE pairs SET b = 'yy' WHERE a = 2",
        // Many rows in one transaction, then TRUNCATE and refill.
        "INSERT INTO order_lines SELECT 100, g, g / 7.0 FROM generate_series(1, 5000) g",
        "DELETE FROM order_lines WHERE order_id = 100 AND n % 3 = 0",
        "TRUNCATE orders, pairs",
        "INSERT INTO orders VALUES (4, 'after truncate'); INSERT INTO pairs VALUES (4, 'w')",
        "INSERT INTO docs (id, title) VALUES (999999, 'sentinel')",
    ];
    for s in steps {
        exec(src, s).await;
    }
}

async fn pg_to(target: Engine) {
    let src = TestDb::new(Engine::Postgres, "cdc_pg").await;
    src.load_script(&fixture("types/postgres.sql")).await;
    exec(&src, PG_EXTRA).await;
    let dst = TestDb::new(target, "cdc_pg").await;
    let state = tempfile::tempdir().unwrap();
    let tables = "every_type,specials,docs,orders,order_lines,pairs";
    let mut extra = vec!["--tables", tables];
    if target != Engine::Postgres {
        // NaN and infinities have no place in MySQL and the addresses none
        // in SQLite's types; the full-load tests cover those mappings.
        extra = vec!["--tables", "docs,orders,order_lines,pairs"];
    }
    let mut child = start(&src, &dst, state.path(), &extra);
    wait_replicating(&mut child, state.path());
    pg_changes(&src).await;
    wait_for(&dst, "SELECT COUNT(*) FROM docs WHERE id = 999999", "1", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "Ctrl-C exits with 130\n{}", stderr(&out));

    let tables = if target == Engine::Postgres { tables } else { "docs,orders,order_lines,pairs" };
    validate(&src, &dst, tables);
    // What a user would look at: the untouched large value, the rolled-back
    // transaction, the truncated table.
    let len = match target {
        Engine::Postgres => "SELECT length(body) FROM docs WHERE id = 1",
        _ => "SELECT length(body) FROM docs WHERE id = 1",
    };
    assert_eq!(dst.query_row(len).await[0].as_deref(), Some("2400000"), "unchanged TOAST value kept");
    assert_eq!(dst.query_row("SELECT title FROM docs WHERE id = 1").await[0].as_deref(), Some("first, renamed"));
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM orders WHERE customer = 'ghost'").await[0].as_deref(), Some("0"), "rolled back");
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM docs").await[0].as_deref(), Some("3"), "the rolled-back DELETE never applied");
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM orders").await[0].as_deref(), Some("1"), "truncated, then one row");
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM order_lines WHERE order_id = 100").await[0].as_deref(), Some("3334"));
    if target == Engine::Postgres {
        validate(&src, &dst, "every_type,specials");
        let r = dst.query_row("SELECT t, n::text, tstz::text, js::text FROM every_type WHERE id = 1").await;
        assert_eq!(r[0].as_deref(), Some("changed plain text"));
        assert_eq!(r[1].as_deref(), Some("0.0000000001"));
        assert_eq!(r[2].as_deref(), Some("2030-06-01 10:00:00.5+00"));
        assert_eq!(r[3].as_deref(), Some("{\"new\": true}"));
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM every_type WHERE id IN (4, 3)").await[0].as_deref(), Some("0"));
    }

    // status shows each table, then cleanup removes the slot.
    let st = run(barge().args(["--json", "status", "--state-dir"]).arg(state.path()));
    assert_ok(&st, "status");
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(j["cdc"]["tables"]["public.order_lines"]["changes"].as_u64().unwrap() >= 5000, "{j}");
    assert!(j["cdc"]["applied_transactions"].as_u64().unwrap() >= 10, "{j}");
    cleanup(&src, state.path());
    let slots = src.query_row("SELECT COUNT(*) FROM pg_replication_slots WHERE database = current_database()").await;
    assert_eq!(slots[0].as_deref(), Some("0"), "cleanup dropped the slot");
    let ident = src.query_row("SELECT relreplident::text FROM pg_class WHERE relname = 'pairs'").await;
    assert_eq!(ident[0].as_deref(), Some("d"), "cleanup set back the replica identity barge changed");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_to_pg_every_change_and_type() {
    pg_to(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_to_mysql_every_change() {
    pg_to(Engine::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_to_sqlite_every_change() {
    pg_to(Engine::Sqlite).await;
}

// ---- MySQL and SQLite sources ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_pg_and_mysql_every_change() {
    for target in [Engine::Postgres, Engine::Mysql] {
        let src = TestDb::new(Engine::Mysql, "cdc_my").await;
        exec(
            &src,
            "CREATE TABLE items (id int PRIMARY KEY, name varchar(50), price decimal(30,10), u bigint unsigned, e enum('a','b','c'), s set('x','y','z'), \
             ts timestamp(3) NULL, d datetime(6), t time(2), j json, b blob, bt bit(5), f float, dbl double, y year)",
        )
        .await;
        exec(&src, "CREATE TABLE tags (item_id int NOT NULL, tag varchar(20) NOT NULL, PRIMARY KEY (item_id, tag))").await;
        exec(&src, "CREATE TABLE log (msg varchar(100))").await;
        exec(&src, "INSERT INTO items VALUES (1, 'one', 1.5, 18446744073709551615, 'b', 'x,z', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.123456', '12:34:56.78', '{\"k\": 1}', x'00ff', b'10101', 1.25, 2.5, 2024), (2, 'two', 2.5, 1, 'a', '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)").await;
        exec(&src, "INSERT INTO log VALUES ('a'), ('a')").await;
        let dst = TestDb::new(target, "cdc_my").await;
        let state = tempfile::tempdir().unwrap();
        let mut child = start(&src, &dst, state.path(), &[]);
        wait_replicating(&mut child, state.path());
        for s in [
            "INSERT INTO items VALUES (3, 'three', 12345678901234567890.0123456789, 18446744073709551614, 'c', 'y', '2030-01-01 00:00:00', '1999-12-31 23:59:59.999999', '23:59:59.99', '[1, 2]', x'01', b'1', -0.5, 1e300, 1999)",
            "UPDATE items SET name = 'uno', u = 5, s = 'x,y,z' WHERE id = 1",
            "DELETE FROM items WHERE id = 2",
            "UPDATE items SET id = 30 WHERE id = 3",
            "INSERT INTO tags VALUES (1, 'red'), (1, 'blue'), (30, 'green')",
            "DELETE FROM tags WHERE tag = 'blue'",
            "DELETE FROM log LIMIT 1",
            "INSERT INTO log VALUES ('b')",
        ] {
            exec(&src, s).await;
        }
        // A rolled-back transaction, then TRUNCATE (a statement, not rows).
        {
            use mysql_async::prelude::Queryable;
            let u = server_url("BARGE_TEST_MYSQL_URL");
            let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(u.as_str()).unwrap()).db_name(Some(src.name.clone()));
            let mut c = mysql_async::Conn::new(opts).await.unwrap();
            c.query_drop("START TRANSACTION").await.unwrap();
            c.query_drop("INSERT INTO items (id, name) VALUES (100, 'ghost')").await.unwrap();
            c.query_drop("ROLLBACK").await.unwrap();
            c.query_drop("TRUNCATE TABLE tags").await.unwrap();
            c.query_drop("INSERT INTO tags VALUES (30, 'after')").await.unwrap();
            // One transaction mixing a table without a key with a keyed
            // one: its inserts go in as one bulk write, yet the delete and
            // update of one copy must see the rows inserted before them,
            // and not the one inserted after.
            for s in [
                "START TRANSACTION",
                "INSERT INTO log VALUES ('c'), ('c'), ('d')",
                "UPDATE items SET name = 'mixed' WHERE id = 1",
                "DELETE FROM log WHERE msg = 'c' LIMIT 1",
                "INSERT INTO log VALUES ('e')",
                "UPDATE log SET msg = 'dd' WHERE msg = 'd'",
                "INSERT INTO log VALUES ('d')",
                "COMMIT",
            ] {
                c.query_drop(s).await.unwrap();
            }
            c.query_drop("INSERT INTO items (id, name) VALUES (999, 'sentinel')").await.unwrap();
        }
        wait_for(&dst, "SELECT COUNT(*) FROM items WHERE id = 999", "1", &mut child).await;
        let out = interrupt(child);
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
        validate(&src, &dst, "items,tags,log");
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM items WHERE id = 100").await[0].as_deref(), Some("0"), "rolled back");
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM tags").await[0].as_deref(), Some("1"), "truncated, then one row");
        let log = dst.query_row("SELECT SUM(CASE WHEN msg = 'c' THEN 1 ELSE 0 END), SUM(CASE WHEN msg = 'd' THEN 1 ELSE 0 END), SUM(CASE WHEN msg = 'dd' THEN 1 ELSE 0 END), COUNT(*) FROM log").await;
        assert_eq!(log, vec![Some("1".into()), Some("1".into()), Some("1".into()), Some("6".into())], "a table without a key, in its own order");
        let price = dst.query_row("SELECT price FROM items WHERE id = 30").await;
        assert_eq!(price[0].as_deref(), Some("12345678901234567890.0123456789"), "decimal kept exactly");
        let u = dst.query_row("SELECT u FROM items WHERE id = 30").await;
        assert_eq!(u[0].as_deref(), Some("18446744073709551614"), "unsigned 64-bit kept");
        src.drop_db().await;
        dst.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_pg_with_stop_at() {
    let src = TestDb::new(Engine::Sqlite, "cdc_lite").await;
    let path = src.url.trim_start_matches("sqlite:").to_string();
    exec(&src, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB, n NUMERIC(10,2)); INSERT INTO t VALUES (1, 'a', 1.5, x'00', 1.25), (2, 'b', 2.5, NULL, 2); CREATE TABLE nk (a INTEGER, b TEXT); INSERT INTO nk VALUES (1, 'x')").await;
    let dst = TestDb::new(Engine::Postgres, "cdc_lite").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = start(&src, &dst, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    exec(&src, "INSERT INTO t VALUES (3, 'c', 3.25, x'ff00', 3.5); UPDATE t SET name = 'aa' WHERE id = 1; DELETE FROM t WHERE id = 2; UPDATE t SET id = 10 WHERE id = 3; INSERT INTO nk VALUES (2, 'y'); DELETE FROM nk WHERE a = 1").await;
    exec(&src, "INSERT INTO t (id, name) VALUES (99, 'sentinel')").await;
    wait_for(&dst, "SELECT COUNT(*) FROM t WHERE id = 99", "1", &mut child).await;
    let _ = interrupt(child);
    validate(&src, &dst, "t,nk");
    // Changes the target has are purged from the source's change table.
    let left = src.query_row("SELECT COUNT(*) FROM barge_changes").await;
    assert_eq!(left[0].as_deref(), Some("0"));

    // --mode cdc with --stop-at: picks up from the saved position and stops
    // by itself once past the given sequence.
    exec(&src, "UPDATE t SET v = 42 WHERE id = 10; INSERT INTO t (id) VALUES (11)").await;
    let seq = src.query_row("SELECT MAX(seq) FROM barge_changes").await[0].clone().unwrap();
    let out = run(barge()
        .args(["migrate", &src.url, &dst.url, "--mode", "cdc", "--poll-interval", "50", "--stop-at", &format!("sqlite:{seq}"), "--state-dir"])
        .arg(state.path()));
    assert_ok(&out, "cdc with --stop-at");
    validate(&src, &dst, "t,nk");
    cleanup(&src, state.path());
    let triggers = src.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'barge%'").await;
    assert_eq!(triggers[0].as_deref(), Some("0"), "cleanup removed triggers and tables");
    drop(path);
    dst.drop_db().await;
}

// ---- the handoff under load, SIGKILL, rerun ---------------------------------

/// Writes to `big` until told to stop: updates, inserts and deletes in
/// small transactions, as an application would.
fn writer(src: &TestDb, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let url = src.url.clone();
    let engine = src.engine;
    tokio::spawn(async move {
        let ep = barge::endpoint::Endpoint::parse(&url).unwrap();
        let mut db = barge::db::Db::connect(&ep, barge::endpoint::Role::Target).await.unwrap();
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let id = (i * 7919) % 120_000 + 1;
            let sql = match i % 4 {
                0 => format!("UPDATE big SET label = 'w{i}', amount = amount + 1 WHERE id = {id}"),
                1 => format!("INSERT INTO big (id, grp, label, amount) VALUES ({}, 1, 'new{i}', 0.5)", 200_000 + i),
                2 => format!("DELETE FROM big WHERE id = {}", id + 1),
                _ => match engine {
                    Engine::Mysql => format!("UPDATE big SET grp = grp + 1 WHERE id BETWEEN {id} AND {}", id + 20),
                    _ => format!("UPDATE big SET grp = grp + 1 WHERE id BETWEEN {id} AND {}", id + 20),
                },
            };
            db.execute(&sql).await.unwrap();
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

async fn big_source(engine: Engine, tag: &str) -> TestDb {
    let src = TestDb::new(engine, tag).await;
    let body = "CREATE TABLE big (id bigint PRIMARY KEY, grp integer NOT NULL, label text, amount numeric(12,2))";
    exec(&src, &if engine == Engine::Mysql { body.replace("label text", "label varchar(40)") } else { body.to_string() }).await;
    match engine {
        Engine::Postgres => exec(&src, "INSERT INTO big SELECT g, g % 97, 'row ' || g, (g % 100000) / 100.0 FROM generate_series(1, 120000) g").await,
        _ => {
            exec(&src, "INSERT INTO big WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 1000) SELECT g, g % 97, CONCAT('row ', g), (g % 100000) / 100.0 FROM s").await;
            for k in 1..120 {
                exec(&src, &format!("INSERT INTO big SELECT id + {}, grp, label, amount FROM big WHERE id <= 1000", k * 1000)).await;
            }
        }
    }
    src
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn continuous_writes_during_load_then_sigkill_and_rerun_lose_nothing() {
    for engine in [Engine::Postgres, Engine::Mysql] {
        let src = big_source(engine, "cdc_handoff").await;
        let dst = TestDb::new(Engine::Postgres, "cdc_handoff").await;
        let state = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let w = writer(&src, stop.clone(), done.clone());
        // Writes are running before the load starts and all through it.
        while done.load(Ordering::Relaxed) < 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at_start = done.load(Ordering::Relaxed);
        let mut child = start(&src, &dst, state.path(), &["--chunk-rows", "30000", "--parallel", "2"]);
        wait_replicating(&mut child, state.path());
        assert!(done.load(Ordering::Relaxed) > at_start + 20, "the writer kept writing during the load");
        // Let some changes apply, then SIGKILL mid-stream.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Rerun the same command: it resumes from the position saved on the target.
        let mut child = start(&src, &dst, state.path(), &["--chunk-rows", "30000", "--parallel", "2"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, Ordering::Relaxed);
        w.await.unwrap();
        exec(&src, "INSERT INTO big (id, grp, label, amount) VALUES (9999999, 0, 'sentinel', 0)").await;
        wait_for(&dst, "SELECT COUNT(*) FROM big WHERE id = 9999999", "1", &mut child).await;
        let _ = interrupt(child);
        validate(&src, &dst, "big");
        if engine == Engine::Postgres {
            cleanup(&src, state.path());
        }
        src.drop_db().await;
        dst.drop_db().await;
    }
}

// ---- schema changes ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_at_the_source_reaches_the_target() {
    let src = TestDb::new(Engine::Postgres, "cdc_ddl").await;
    exec(&src, "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'x'); INSERT INTO b VALUES (1, 'x')").await;
    let dst = TestDb::new(Engine::Postgres, "cdc_ddl").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = start(&src, &dst, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    exec(&src, "ALTER TABLE a ADD COLUMN extra int").await;
    exec(&src, "INSERT INTO a VALUES (2, 'y', 7)").await;
    exec(&src, "INSERT INTO b VALUES (2, 'y')").await;
    wait_for(&dst, "SELECT COUNT(*) FROM b", "2", &mut child).await;
    let out = interrupt(child);
    let err = stderr(&out);
    assert!(err.contains("public.a: added column extra (integer) at the source"), "{err}");
    assert_eq!(dst.query_row("SELECT extra FROM a WHERE id = 2").await[0].as_deref(), Some("7"));
    validate(&src, &dst, "a,b");
    cleanup(&src, state.path());
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- bad setups get clear errors -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_missing_privileges_and_positions() {
    // A PostgreSQL role without REPLICATION.
    let src = TestDb::new(Engine::Postgres, "cdc_priv").await;
    exec(&src, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let role = format!("norep_{}", std::process::id());
    exec(&src, &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'barge-test-pw'; GRANT ALL ON SCHEMA public TO {role}; GRANT ALL ON t TO {role}")).await;
    let url = src.url.replacen("://barge@", &format!("://{role}@"), 1);
    let dst = TestDb::new(Engine::Sqlite, "cdc_priv").await;
    let state = tempfile::tempdir().unwrap();
    let out = run(barge().args(["migrate", &url, &dst.url, "--mode", "full-load-and-cdc", "--state-dir"]).arg(state.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("REPLICATION") && err.contains(&format!("ALTER ROLE \"{role}\" REPLICATION")), "{err}");
    assert!(!err.contains(":barge-test-pw@") && !err.contains("password=barge"), "no password in messages: {err}");

    // MySQL --mode cdc needs a start position.
    let my = TestDb::new(Engine::Mysql, "cdc_nopos").await;
    exec(&my, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let state2 = tempfile::tempdir().unwrap();
    let out = run(barge().args(["migrate", &my.url, &dst.url, "--mode", "cdc", "--state-dir"]).arg(state2.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--start-position"), "{}", stderr(&out));
    // A malformed position is refused by the parser.
    let out = run(barge().args(["migrate", &my.url, &dst.url, "--mode", "cdc", "--start-position", "pg:zz"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pg:16/B374D848"), "{}", stderr(&out));
    src.drop_db().await;
    my.drop_db().await;
    exec_admin_pg(&format!("DROP ROLE IF EXISTS {role}")).await;
}

async fn exec_admin_pg(sql: &str) {
    let u = server_url("BARGE_TEST_PG_URL");
    let (client, c) = tokio_postgres::connect(u.as_str(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(c);
    let _ = client.batch_execute(sql).await;
}

// ---- server restarts: barge retries with backoff and catches up ------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_and_target_restart_mid_stream_and_barge_catches_up() {
    let pg = Arc::new(PrivatePg::start());
    let admin = pg.client("postgres").await.unwrap();
    admin.batch_execute("CREATE DATABASE src").await.unwrap();
    admin.batch_execute("CREATE DATABASE dst").await.unwrap();
    let s = pg.client("src").await.unwrap();
    s.batch_execute("CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL, note text); INSERT INTO acc SELECT g, 1000, 'n' || g FROM generate_series(1, 20000) g").await.unwrap();
    drop(s);
    let src = TestDb::external_pg("src", pg.url("src"), pg.conninfo("src"));
    let dst = TestDb::external_pg("dst", pg.url("dst"), pg.conninfo("dst"));
    let state = tempfile::tempdir().unwrap();

    // An application that keeps writing, reconnecting when the server goes away.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let w = {
        let (pg, stop, writes) = (pg.clone(), stop.clone(), writes.clone());
        tokio::spawn(async move {
            let mut client = None;
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                if client.as_ref().is_none_or(|c: &tokio_postgres::Client| c.is_closed()) {
                    client = pg.client("src").await;
                    if client.is_none() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
                i += 1;
                let a = i % 20000 + 1;
                let sql = format!("BEGIN; UPDATE acc SET balance = balance - 1 WHERE id = {a}; UPDATE acc SET balance = balance + 1, note = 'moved {i}' WHERE id = {}; COMMIT", (a * 31) % 20000 + 1);
                if client.as_ref().unwrap().batch_execute(&sql).await.is_ok() {
                    writes.fetch_add(1, Ordering::Relaxed);
                } else {
                    client = None;
                }
            }
        })
    };
    let mut child = start(&src, &dst, state.path(), &[]);
    wait_replicating(&mut child, state.path());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = writes.load(Ordering::Relaxed);
    // An immediate restart: the server crashes and recovers, cutting
    // barge's replication stream and its target session mid-batch.
    pg.ctl(&["-m", "immediate", "restart"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(writes.load(Ordering::Relaxed) > before, "writes resumed after the restart");
    stop.store(true, Ordering::Relaxed);
    w.await.unwrap();
    let c = pg.client("src").await.unwrap();
    c.batch_execute("INSERT INTO acc VALUES (0, 0, 'sentinel')").await.unwrap();
    wait_for(&dst, "SELECT COUNT(*) FROM acc WHERE id = 0", "1", &mut child).await;
    let out = interrupt(child);
    assert!(stderr(&out).contains("retrying") || stderr(&out).contains("reconnecting"), "the restart was noticed:\n{}", stderr(&out));
    validate(&src, &dst, "acc");
    let total = dst.query_row("SELECT SUM(balance) FROM acc").await;
    assert_eq!(total[0].as_deref(), Some("20000000"), "money moved, none created or lost");
    cleanup(&src, state.path());
}
