//! Validation that cannot say "equal" over a missing object, bounded in
//! memory; values that do not match their declared type, named, with a hint
//! that works; a 100 MB value into MariaDB. Against the real servers
//! `tests/run.sh` starts.

use crate::support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

fn migrate(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str]) -> Output {
    run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(state).args(extra))
}

fn validate(src: &TestDb, dst: &TestDb, extra: &[&str]) -> Output {
    run(barge().args(["validate", &src.url, &dst.url]).args(extra))
}

/// A SQLite source built from `sql`.
async fn sqlite_source(tag: &str, sql: &str) -> TestDb {
    let db = TestDb::new(Engine::Sqlite, tag).await;
    exec(&db, sql).await;
    db
}

// ---- a table the target does not have ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_missing_on_the_target_is_a_difference() {
    let src = sqlite_source(
        "vmiss",
        "CREATE TABLE country (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO country VALUES (1, 'Angola'), (2, 'Chile');
         CREATE TABLE city (code TEXT PRIMARY KEY, country_id INTEGER NOT NULL, name TEXT);
         INSERT INTO city VALUES ('LAD', 1, 'Luanda'), ('SCL', 2, 'Santiago'), ('ARI', 2, 'Arica');",
    )
    .await;
    let dst = TestDb::new(Engine::Postgres, "vmiss").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&migrate(&src, &dst, state.path(), &["--tables", "country"]), "load one table");

    // barge validate: every selected source table, the missing one included.
    let out = validate(&src, &dst, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report = stdout(&out);
    let line = report.lines().find(|l| l.starts_with("city")).unwrap_or_else(|| panic!("city is listed:\n{report}"));
    assert!(line.contains("MISSING on target") && line.contains(" 3 "), "the missing table and its source rows: {line}");
    assert!(report.lines().any(|l| l.contains("country") && l.ends_with("equal")), "{report}");
    assert!(stderr(&out).contains("city"), "the error names the table: {}", stderr(&out));

    // migrate --validate: a table dropped on the target while the run built
    // its keys (an event trigger stands in for the other session).
    let dst2 = TestDb::new(Engine::Postgres, "vmiss2").await;
    exec(
        &dst2,
        "CREATE FUNCTION drop_city() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'public.city') THEN
             DROP TABLE public.city;
           END IF;
         END $$;
         CREATE EVENT TRIGGER drop_city ON ddl_command_end WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION drop_city();",
    )
    .await;
    let state2 = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst2, state2.path(), &["--validate"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stdout(&out).lines().any(|l| l.starts_with("city") && l.contains("MISSING on target")), "{}", text(&out));
    assert!(stderr(&out).contains("city"), "{}", stderr(&out));
    exec(&dst2, "DROP EVENT TRIGGER drop_city").await;

    // A column the target lacks is a difference too.
    exec(&dst, "ALTER TABLE country DROP COLUMN name").await;
    let out = validate(&src, &dst, &["--tables", "country"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stdout(&out).contains("columns missing on target: name"), "{}", stdout(&out));
    dst.drop_db().await;
    dst2.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_source_is_a_clear_failure() {
    let src = TestDb::new(Engine::Sqlite, "vempty").await;
    exec(&src, "PRAGMA user_version = 1").await;
    let dst = TestDb::new(Engine::Sqlite, "vempty_dst").await;
    let state = tempfile::tempdir().unwrap();
    for out in [migrate(&src, &dst, &state.path().join("s"), &[]), validate(&src, &dst, &[])] {
        assert_eq!(out.status.code(), Some(1), "not a usage error: {}", text(&out));
        assert!(stderr(&out).contains("has no tables"), "{}", stderr(&out));
    }
}

// ---- what a difference looks like -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differences_show_quoted_values_and_target_names() {
    let src = sqlite_source(
        "vquote",
        "CREATE TABLE Customers (id INTEGER PRIMARY KEY, country VARCHAR(40), note TEXT, code CHAR(4));
         INSERT INTO Customers VALUES (1, 'Angola', '', 'ab'), (2, 'Chile', NULL, 'cd'), (3, 'Peru', 'x', 'ef');",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.json");
    std::fs::write(&mapping, r#"{"rules": [{"rule-type": "transformation", "rule-target": "table", "rule-action": "rename", "object-locator": {"table-name": "Customers"}, "value": "clients"}]}"#).unwrap();
    for engine in [Engine::Postgres, Engine::Mysql] {
        let dst = TestDb::new(engine, "vquote").await;
        let m = ["--mapping", mapping.to_str().unwrap()];
        assert_ok(&migrate(&src, &dst, &dir.path().join(engine.name()), &m), "load");
        let out = validate(&src, &dst, &m);
        assert_ok(&out, "equal after the load");
        assert!(stdout(&out).contains("clients (from Customers)"), "the target's name: {}", stdout(&out));
        // Invisible changes: a trailing space, '' for NULL and NULL for ''.
        exec(&dst, "UPDATE clients SET country = 'Angola ', note = NULL WHERE id = 1").await;
        exec(&dst, "UPDATE clients SET note = '' WHERE id = 2").await;
        exec(&dst, "DELETE FROM clients WHERE id = 3").await;
        let out = validate(&src, &dst, &m);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let t = stdout(&out);
        assert!(t.contains("1 (country: 'Angola' ≠ 'Angola ', note: '' ≠ NULL)"), "{t}");
        assert!(t.contains("2 (note: NULL ≠ '')"), "{t}");
        assert!(t.contains("missing on target: 3"), "{t}");
        dst.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_keys_and_tables_without_a_key_compare_across_engines() {
    // MariaDB sorts these keys case-insensitively, PostgreSQL by code
    // point: validation must not depend on either collation.
    let src = TestDb::new(Engine::Postgres, "vkeys").await;
    exec(
        &src,
        "CREATE TABLE tag (code varchar(20) PRIMARY KEY, label text);
         INSERT INTO tag VALUES ('B', 'upper b'), ('a', 'lower a'), ('é', 'e acute'), ('Z', 'zed'), ('ab', 'a b'), ('a b', 'space');
         INSERT INTO tag SELECT 'k' || g, 'n' || g FROM generate_series(1, 3000) g;
         CREATE TABLE event_log (at timestamp, kind text, n int);
         INSERT INTO event_log VALUES ('2024-01-01 10:00', 'login', 1), ('2024-01-01 10:00', 'login', 1), ('2024-01-02 11:00', NULL, 2);",
    )
    .await;
    let dst = TestDb::new(Engine::Mysql, "vkeys").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&migrate(&src, &dst, state.path(), &[]), "load");
    let out = validate(&src, &dst, &[]);
    assert_ok(&out, "equal");
    exec(&dst, "UPDATE tag SET label = 'changed' WHERE code = 'é'").await;
    exec(&dst, "DELETE FROM event_log WHERE kind = 'login' LIMIT 1").await;
    let out = validate(&src, &dst, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = stdout(&out);
    assert!(t.contains("'é' (label: 'e acute' ≠ 'changed')"), "{t}");
    assert!(t.contains("missing on target: ('2024-01-01 10:00:00', 'login', 1) (source has 2 copies, target 1 copy)"), "{t}");
    assert!(t.contains("no key"), "{t}");
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- memory ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_memory_does_not_grow_with_the_table() {
    // 250k rows of about 300 bytes: some 75 MB of values on each side,
    // which validation used to hold (and more) before comparing.
    let src = TestDb::new(Engine::Postgres, "vmem").await;
    exec(&src, "CREATE TABLE wide (id bigint PRIMARY KEY, a text, b text, amount numeric(12,2)); INSERT INTO wide SELECT g, repeat(md5(g::text), 5), repeat(md5((g * 7)::text), 4), g / 100.0 FROM generate_series(1, 250000) g").await;
    let dst = TestDb::new(Engine::Sqlite, "vmem").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&migrate(&src, &dst, state.path(), &[]), "load");
    let started = Instant::now();
    let (out, kb) = peak_rss_kb(barge().args(["validate", &src.url, &dst.url]));
    assert_ok(&out, "validate");
    assert!(kb > 0, "RSS was read");
    assert!(kb < 120 * 1024, "validation of a 250k-row table peaked at {} MiB ({:.1}s)", kb / 1024, started.elapsed().as_secs_f64());
    src.drop_db().await;
}

// ---- a value that does not match its declared type ----------------------------------

/// The `--cast …` the hint suggests, as one argument.
fn suggested_cast(err: &str) -> String {
    let hint = err.lines().find(|l| l.contains("hint:")).unwrap_or_else(|| panic!("a hint: {err}"));
    let after = hint.split("--cast ").nth(1).unwrap_or_else(|| panic!("the hint names a cast: {hint}"));
    let word = after.split([' ', ',']).next().unwrap();
    word.trim_matches('\'').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_in_an_integer_column_is_named_and_the_hint_works() {
    let src = sqlite_source(
        "vtrue",
        "CREATE TABLE staff (staff_id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, active SMALLINT NOT NULL DEFAULT 1);
         INSERT INTO staff VALUES (1, 'Mike', 1), (2, 'Jon', 'true'), (3, 'Ann', 0);",
    )
    .await;
    for engine in [Engine::Postgres, Engine::Mysql] {
        let dir = tempfile::tempdir().unwrap();
        let dst = TestDb::new(engine, "vtrue").await;
        let out = migrate(&src, &dst, &dir.path().join("a"), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains("staff") && err.contains("staff_id=2") && err.contains("column active") && err.contains("\"true\""), "table, key, column name and value: {err}");

        // The hint, followed literally.
        let cast = suggested_cast(&err);
        assert_eq!(cast, "staff.active=text");
        let dst = TestDb::new(engine, "vtrue_cast").await;
        let out = migrate(&src, &dst, &dir.path().join("b"), &["--cast", &cast, "--validate"]);
        assert_ok(&out, "with the suggested cast");
        let r = dst.query_row("SELECT active FROM staff WHERE staff_id = 2").await;
        assert_eq!(r[0].as_deref(), Some("true"));
        let r = dst.query_row("SELECT active FROM staff WHERE staff_id = 1").await;
        assert_eq!(r[0].as_deref(), Some("1"));

        // The same by type.
        let dst = TestDb::new(engine, "vtrue_type").await;
        assert_ok(&migrate(&src, &dst, &dir.path().join("c"), &["--cast", "smallint=text"]), "--cast smallint=text");

        // --on-error log sets the row aside like any refused row.
        let dst = TestDb::new(engine, "vtrue_log").await;
        let out = migrate(&src, &dst, &dir.path().join("d"), &["--on-error", "log"]);
        assert_ok(&out, "--on-error log");
        assert!(stdout(&out).contains("1 rows rejected"), "{}", stdout(&out));
        let rejects = std::fs::read_to_string(dir.path().join("d/rejects.jsonl")).unwrap();
        assert!(rejects.contains("\"key\":\"staff_id=2\"") && rejects.contains("\"column\":\"active\""), "{rejects}");
        let n = dst.query_row("SELECT COUNT(*) FROM staff").await;
        assert_eq!(n[0].as_deref(), Some("2"));
        // The row set aside is not on the target, and validation says so.
        let out = validate(&src, &dst, &[]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(stdout(&out).contains("missing on target: 2"), "{}", stdout(&out));
    }
}

// ---- a 100 MB value into MariaDB ---------------------------------------------------

/// Server sessions still on `db` once barge has exited: a closed one may
/// take the server a moment to reap; a stuck one ("Reading file") stays.
async fn sessions_left(db: &TestDb) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = db.query_row(&format!("SELECT COUNT(*), GROUP_CONCAT(CONCAT(COMMAND, ':', STATE)) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND ID <> CONNECTION_ID()", db.name)).await;
        let left = format!("{} {}", r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default());
        if left == "0 " || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_value_loads_into_mariadb_and_leaves_no_session_behind() {
    let src = TestDb::new(Engine::Postgres, "vhuge").await;
    exec(&src, "CREATE TABLE doc (id int PRIMARY KEY, body text); INSERT INTO doc VALUES (1, 'before'), (2, repeat('0123456789abcdef', 100 * 65536)), (3, 'after')").await;
    let dst = TestDb::new(Engine::Mysql, "vhuge").await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = migrate(&src, &dst, &dir.path().join("a"), &[]);
    assert_ok(&out, "a 100 MB value, over the server's 16 MB max_allowed_packet");
    assert!(started.elapsed() < Duration::from_secs(120), "no hang");
    let a = src.query_row("SELECT md5(body), length(body) FROM doc WHERE id = 2").await;
    let b = dst.query_row("SELECT md5(body), length(body) FROM doc WHERE id = 2").await;
    assert_eq!(a, b, "the value arrived whole");
    assert_eq!(b[1].as_deref(), Some("104857600"));
    assert_eq!(sessions_left(&dst).await, "0 ", "no session left behind");

    // A value the target column cannot hold is refused by name before
    // LOAD DATA would cut it, and leaves no session either.
    let dst2 = TestDb::new(Engine::Mysql, "vhuge2").await;
    let out = migrate(&src, &dst2, &dir.path().join("b"), &["--cast", "doc.body=varchar(1000)"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("doc") && err.contains("id=2") && err.contains("column body") && err.contains("varchar(1000)"), "{err}");
    assert_eq!(sessions_left(&dst2).await, "0 ", "no session left behind");
    src.drop_db().await;
    dst.drop_db().await;
    dst2.drop_db().await;
}
