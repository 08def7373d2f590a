//! migrate (full load) end to end, against real PostgreSQL and MariaDB and
//! SQLite files: every source/target pair with every type, compared value
//! by value; resume after SIGKILL; mappings; validation finding damage;
//! and clear errors for bad input.

use crate::support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

fn migrate(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str]) -> Output {
    run(barge()
        .args(["migrate", &src.url, &dst.url, "--state-dir"])
        .arg(state)
        .args(extra))
}

/// Migrates with --validate: barge's own comparison (values decoded from
/// both sides, compared as the target holds them) must find no difference.
async fn round_trip(src_engine: Engine, script: &str, dst_engine: Engine, extra: &[&str]) -> (TestDb, TestDb, String) {
    let tag = format!("rt_{}_{}", src_engine.name(), dst_engine.name());
    let src = source(src_engine, script, &tag).await;
    let dst = TestDb::new(dst_engine, &tag).await;
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["--validate"];
    args.extend_from_slice(extra);
    let out = migrate(&src, &dst, state.path(), &args);
    assert_ok(&out, &format!("{} → {}", src_engine.name(), dst_engine.name()));
    let text = stdout(&out);
    assert!(!text.contains("DIFFERENT"), "{text}");
    (src, dst, text)
}

// ---- the embedded sample (SQLite) to every target -------------------------

/// When barge exits, a SQLite target is whole in its .db file: nothing is
/// left in a write-ahead log, so the file copied on its own (as a user
/// ships it) holds every row.
#[tokio::test]
async fn a_sqlite_target_is_whole_in_its_own_file() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    let src = format!("sqlite:{}", fixture("sample/shop.db").display());
    let out = dir.path().join("out.db");
    let o = run(barge().args(["migrate", &src, &format!("sqlite:{}", out.display()), "--state-dir"]).arg(dir.path().join("state")));
    assert_ok(&o, "migrate");
    let wal = dir.path().join("out.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "rows left in {}", wal.display());
    let copy = dir.path().join("copy.db");
    std::fs::copy(&out, &copy).unwrap();
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", copy.display())).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM customers").fetch_one(&mut c).await.unwrap().get(0);
    assert_eq!(n, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_to_sqlite() {
    let (src, dst, _) = round_trip(Engine::Sqlite, "sample/shop.db", Engine::Sqlite, &[]).await;
    sample_checks(&dst).await;
    drop(src);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_to_postgres() {
    let (_src, dst, _) = round_trip(Engine::Sqlite, "sample/shop.db", Engine::Postgres, &[]).await;
    sample_checks(&dst).await;
    let ts = dst.query_row("SELECT last_login::text FROM customers WHERE id = 1").await;
    assert_eq!(ts[0].as_deref(), Some("2024-02-29 23:59:59.999999"), "microseconds kept");
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_to_mysql() {
    let (_src, dst, _) = round_trip(Engine::Sqlite, "sample/shop.db", Engine::Mysql, &[]).await;
    sample_checks(&dst).await;
    dst.drop_db().await;
}

// ---- PostgreSQL types to every target ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_types_to_postgres() {
    let (src, dst, _) = round_trip(Engine::Postgres, "types/postgres.sql", Engine::Postgres, &["--chunk-rows", "20000"]).await;
    let n = dst.query_row("SELECT e.n::text, e.nfree::text, octet_length(e.by), e.tstz::text, s.f::text FROM every_type e JOIN specials s USING (id) WHERE id = 2").await;
    assert_eq!(n[0].as_deref(), Some("9999999999999999999999999999.9999999999"));
    assert_eq!(n[1].as_deref(), Some("12345678901234567890123456789012345.000000001"));
    assert_eq!(n[2].as_deref(), Some("256"));
    assert_eq!(n[3].as_deref(), Some("1999-12-31 23:59:59.999999+00"));
    assert_eq!(n[4].as_deref(), Some("Infinity"));
    let nan = dst.query_row("SELECT f::text, n::text FROM specials WHERE id = 1").await;
    assert_eq!(nan, vec![Some("NaN".into()), Some("NaN".into())]);
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_types_to_mysql() {
    // MySQL has no NaN or infinity: `specials` is tested on its own below.
    let (src, dst, _) = round_trip(Engine::Postgres, "types/postgres.sql", Engine::Mysql, &["--tables", "!specials"]).await;
    let r = dst.query_row("SELECT CAST(n AS CHAR), LENGTH(`by`), CAST(tstz AS CHAR), ai, u FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("9999999999999999999999999999.9999999999"));
    assert_eq!(r[1].as_deref(), Some("256"));
    assert_eq!(r[2].as_deref(), Some("1999-12-31 23:59:59.999999"), "timestamptz as UTC, microseconds kept");
    assert_eq!(r[3].as_deref(), Some("[]"));
    assert_eq!(r[4].as_deref(), Some("00000000-0000-0000-0000-000000000000"));
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_types_to_sqlite() {
    // SQLite's NUMERIC affinity cannot hold 38 digits: the run stops, naming
    // the row and column and the --cast that keeps every digit.
    let src = source(Engine::Postgres, "types/postgres.sql", "rt_postgres_sqlite_refused").await;
    let dst = TestDb::new(Engine::Sqlite, "rt_postgres_sqlite_refused").await;
    let state = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, state.path(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("every_type") && err.contains("id=2") && err.contains("--cast every_type.n"), "{err}");
    src.drop_db().await;
    // Following the hint keeps the digits, as text.
    let (src, dst, _) = round_trip(Engine::Postgres, "types/postgres.sql", Engine::Sqlite, &["--cast", "every_type.n=text", "--cast", "every_type.nfree=text"]).await;
    let r = dst.query_row("SELECT n, length(\"by\"), i8 FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("9999999999999999999999999999.9999999999"), "38 digits kept as text");
    assert_eq!(r[1].as_deref(), Some("256"));
    assert_eq!(r[2].as_deref(), Some("9223372036854775807"));
    src.drop_db().await;
}

// ---- MySQL types to every target ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_types_to_postgres() {
    let (src, dst, out) = round_trip(Engine::Mysql, "types/mysql.sql", Engine::Postgres, &[]).await;
    assert!(out.contains("zero dates → NULL"), "zero dates are counted: {out}");
    let r = dst.query_row("SELECT biu::text, dec6530::text, flag::text, st::text, dt FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("18446744073709551615"));
    assert_eq!(r[1].as_deref(), Some("99999999999999999999999999999999999.999999999999999999999999999999"));
    assert_eq!(r[2].as_deref(), Some("false"));
    assert_eq!(r[3].as_deref(), Some("{}"));
    let z = dst.query_row("SELECT dt, dtm FROM every_type WHERE id = 4").await;
    assert_eq!(z, vec![None, None], "zero dates load as NULL");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_types_to_mysql() {
    let (src, dst, out) = round_trip(Engine::Mysql, "types/mysql.sql", Engine::Mysql, &[]).await;
    assert!(out.contains("server"), "same-engine validation hashes on the servers: {out}");
    let z = dst.query_row("SELECT CAST(dt AS CHAR), HEX(bt), st FROM every_type WHERE id = 4").await;
    assert_eq!(z[0].as_deref(), Some("0000-00-00"), "MySQL keeps its zero dates");
    assert_eq!(z[1].as_deref(), Some("3FF"));
    assert_eq!(z[2].as_deref(), Some("x,y,z"));
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_types_to_sqlite() {
    // Past signed 64 bits and past a double's digits: kept as text, as the
    // refusal's hint says.
    let (src, dst, _) = round_trip(Engine::Mysql, "types/mysql.sql", Engine::Sqlite, &["--cast", "every_type.biu=text", "--cast", "every_type.dec6530=text"]).await;
    let r = dst.query_row("SELECT biu, typeof(biu), dec6530 FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("18446744073709551615"));
    assert_eq!(r[1].as_deref(), Some("text"));
    assert_eq!(r[2].as_deref(), Some("99999999999999999999999999999999999.999999999999999999999999999999"));
    src.drop_db().await;
}

// ---- a target that refuses rows -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_target_cannot_hold_stop_or_go_to_rejects() {
    let src = source(Engine::Postgres, "types/postgres.sql", "refuse").await;
    let dst = TestDb::new(Engine::Mysql, "refuse").await;
    let state = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, state.path(), &["--tables", "specials"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("specials") && err.contains("id=1") && err.contains("NaN"), "names table, row and value: {err}");
    assert!(err.contains("--on-error log"), "says what to do next: {err}");

    let dst2 = TestDb::new(Engine::Mysql, "refuse_log").await;
    let state2 = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst2, state2.path(), &["--tables", "specials", "--on-error", "log"]);
    assert_ok(&out, "--on-error log");
    assert!(stdout(&out).contains("3 rows rejected"), "{}", stdout(&out));
    let rejects = std::fs::read_to_string(state2.path().join("rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), 3);
    assert!(rejects.contains("\"key\":\"id=2\""), "{rejects}");
    let n = dst2.query_row("SELECT COUNT(*) FROM specials").await;
    assert_eq!(n[0].as_deref(), Some("1"), "the good row loaded");

    // A value that does not fit the column it is cast to.
    let dst3 = TestDb::new(Engine::Postgres, "refuse_cast").await;
    let state3 = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst3, state3.path(), &["--tables", "every_type", "--cast", "every_type.vc=varchar(3)"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("every_type") && err.contains("id=1") && err.contains("column vc") && err.contains("varchar(3)"), "{err}");
    for d in [src, dst, dst2, dst3] {
        d.drop_db().await;
    }
}

// ---- mappings ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_select_rename_filter_and_add() {
    let src = source(Engine::Postgres, "types/postgres.sql", "map").await;
    let dst = TestDb::new(Engine::Sqlite, "map").await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"rules": [
          {"rule-type": "selection", "rule-action": "include", "object-locator": {"schema-name": "public", "table-name": "big"}, "filter": "grp < 10"},
          {"rule-type": "transformation", "rule-target": "table", "rule-action": "rename", "object-locator": {"table-name": "big"}, "value": "facts"},
          {"rule-type": "transformation", "rule-target": "column", "rule-action": "rename", "object-locator": {"table-name": "big", "column-name": "label"}, "value": "title"},
          {"rule-type": "transformation", "rule-action": "remove-column", "object-locator": {"table-name": "big", "column-name": "at"}},
          {"rule-type": "transformation", "rule-action": "add-column", "object-locator": {"table-name": "big"}, "column": "source_system", "data-type": "TEXT", "constant": "pg"}
        ]}"#,
    )
    .unwrap();
    let out = migrate(&src, &dst, &dir.path().join("state"), &["--mapping", mapping.to_str().unwrap()]);
    assert_ok(&out, "mapped migration");
    let r = dst.query_row("SELECT COUNT(*), MIN(grp), MAX(grp), MIN(source_system), MAX(title) FROM facts").await;
    let expected: u64 = (1..=120_000u64).filter(|g| g % 97 < 10).count() as u64;
    assert_eq!(r[0].as_deref(), Some(expected.to_string().as_str()));
    assert_eq!(r[1].as_deref(), Some("0"));
    assert_eq!(r[2].as_deref(), Some("9"));
    assert_eq!(r[3].as_deref(), Some("pg"));
    let cols = dst.query_row("SELECT group_concat(name, ',') FROM pragma_table_info('facts')").await;
    assert_eq!(cols[0].as_deref(), Some("id,grp,title,amount,source_system"));
    let other = run(barge().args(["validate", &src.url, &dst.url, "--mapping"]).arg(&mapping));
    assert_ok(&other, "validate with the same mapping");
    src.drop_db().await;
}

// ---- validation finds damage -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_names_changed_deleted_and_extra_rows() {
    for engine in [Engine::Postgres, Engine::Sqlite] {
        let src = source(Engine::Postgres, "types/postgres.sql", "val").await;
        let dst = TestDb::new(engine, "val").await;
        let state = tempfile::tempdir().unwrap();
        assert_ok(&migrate(&src, &dst, state.path(), &["--tables", "big"]), "load");
        assert_ok(&run(barge().args(["validate", &src.url, &dst.url, "--tables", "big"])), "validate clean");
        let mut conn = dst.connect(barge::endpoint::Role::Target).await;
        conn.execute("UPDATE big SET label = 'tampered' WHERE id = 777").await.unwrap();
        conn.execute("DELETE FROM big WHERE id = 91234").await.unwrap();
        conn.execute("INSERT INTO big (id, grp, label, amount) VALUES (500000, 1, 'extra', 1.00)").await.unwrap();
        drop(conn);
        let out = run(barge().args(["validate", &src.url, &dst.url, "--tables", "big"]));
        assert_eq!(out.status.code(), Some(3), "differences exit with 3");
        let text = stdout(&out);
        assert!(text.contains("DIFFERENT"), "{text}");
        assert!(text.contains("missing on target: 91234"), "{text}");
        assert!(text.contains("extra on target: 500000"), "{text}");
        assert!(text.contains("777 (label: 'row 777' ≠ 'tampered')"), "{text}");
        src.drop_db().await;
        dst.drop_db().await;
    }
}

// ---- resume after SIGKILL ----------------------------------------------------

fn done_chunks(state: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(state.join("state.json")) else { return 0 };
    text.matches("\"status\": \"done\"").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_table_then_rerun_leaves_equal_tables() {
    for engine in [Engine::Postgres, Engine::Sqlite, Engine::Mysql] {
        let src = source(Engine::Postgres, "types/postgres.sql", "resume").await;
        let dst = TestDb::new(engine, "resume").await;
        let state = tempfile::tempdir().unwrap();
        let args = ["--tables", "big", "--chunk-rows", "3000", "--parallel", "2"];
        let mut child = barge()
            .args(["migrate", &src.url, &dst.url, "--state-dir"])
            .arg(state.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            if done_chunks(state.path()) >= 4 {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("the load finished ({st:?}) before it could be killed; make the table bigger");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let killed_at = done_chunks(state.path());
        assert!(killed_at < 40, "killed before the end ({killed_at} of 40 chunks done)");
        let out = migrate(&src, &dst, state.path(), &args);
        assert_ok(&out, "rerun after SIGKILL");
        assert!(stdout(&out).contains("resumed"), "{}", stdout(&out));
        let v = run(barge().args(["validate", &src.url, &dst.url, "--tables", "big"]));
        assert_ok(&v, &format!("validate after resume into {}", engine.name()));
        let n = dst.query_row("SELECT COUNT(*), COUNT(DISTINCT id) FROM big").await;
        assert_eq!(n, vec![Some("120000".into()), Some("120000".into())], "no row lost or duplicated");
        src.drop_db().await;
        dst.drop_db().await;
    }
}

// ---- bad input ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named() {
    // A bad URL.
    let out = run(barge().args(["migrate", "postgress://h/db", "sqlite:x.db"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown scheme `postgress`"), "{}", stderr(&out));

    // A password on the command line is refused and never echoed.
    let out = run(barge().args(["migrate", "postgres://u:s3cret@127.0.0.1/db", "sqlite:x.db"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("s3cret") && stderr(&out).contains("BARGE_SOURCE_PASSWORD"));

    // A wrong password.
    let db = TestDb::new(Engine::Postgres, "badpw").await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = db.url.split("&password_file=").next().unwrap().to_string();
    let out = run(barge().env("BARGE_SOURCE_PASSWORD", "not-the-password").args(["migrate", &wrong, "sqlite:/dev/null/x.db", "--state-dir"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("password authentication failed") && err.contains("BARGE_SOURCE_PASSWORD"), "{err}");
    assert!(!err.contains("not-the-password"));

    // A table that is not there.
    let src = source(Engine::Postgres, "types/postgres.sql", "missing").await;
    let out = migrate(&src, &TestDb::new(Engine::Sqlite, "missing").await, dir.path(), &["--tables", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("nosuch") && err.contains("big") && err.contains("every_type"), "names the pattern and what exists: {err}");

    // A type the target does not know.
    let dst = TestDb::new(Engine::Postgres, "badtype").await;
    let out = migrate(&src, &dst, &dir.path().join("s2"), &["--tables", "big", "--cast", "integer=notatype"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("notatype"), "{}", stderr(&out));
    for d in [db, src, dst] {
        d.drop_db().await;
    }
}
