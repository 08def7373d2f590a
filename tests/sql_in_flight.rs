//! `--sql`: filters, projections and windows applied in flight, checked
//! against the same query run by PostgreSQL on the same rows; records the
//! query cannot evaluate set aside with the reason; late records counted
//! and set aside; a kill -9 in the middle of a window changes nothing in
//! the results.

use std::io::Write;
use std::path::Path;

use crate::support::{assert_ok, barge, exec, run, stderr, text, Engine, TestDb};

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Loads the same JSON records into `src(data jsonb)` for PostgreSQL to
/// query, and makes the database work in UTC (as --sql does).
async fn load_reference(db: &TestDb, lines: &[String]) {
    exec(db, &format!("ALTER DATABASE {} SET timezone TO 'UTC'", db.name)).await;
    exec(db, "CREATE TABLE src (data jsonb NOT NULL)").await;
    for chunk in lines.chunks(200) {
        let values: Vec<String> = chunk.iter().map(|l| format!("('{}')", l.replace('\'', "''"))).collect();
        exec(db, &format!("INSERT INTO src VALUES {}", values.join(", "))).await;
    }
}

/// Both tables hold the same rows, as many times each, and `expected` is
/// not empty.
async fn assert_same_rows(db: &TestDb, got: &str, expected: &str) {
    let counts = db.query_row(&format!("SELECT (SELECT count(*) FROM {got}), (SELECT count(*) FROM {expected})")).await;
    assert_eq!(counts[0], counts[1], "row counts of {got} and {expected}");
    assert_ne!(counts[1].as_deref(), Some("0"), "the reference has rows");
    let diff = db.query_row(&format!("SELECT count(*) FROM ((TABLE {got} EXCEPT ALL TABLE {expected}) UNION ALL (TABLE {expected} EXCEPT ALL TABLE {got})) d")).await;
    if diff[0].as_deref() != Some("0") {
        let sample = db.query_row(&format!("SELECT (SELECT string_agg(x::text, E'\\n') FROM (SELECT * FROM (TABLE {got} EXCEPT ALL TABLE {expected}) a LIMIT 3) x), (SELECT string_agg(y::text, E'\\n') FROM (SELECT * FROM (TABLE {expected} EXCEPT ALL TABLE {got}) b LIMIT 3) y)")).await;
        panic!("{got} and {expected} differ by {:?} rows\nonly in {got}:\n{}\nonly in {expected}:\n{}", diff[0], sample[0].clone().unwrap_or_default(), sample[1].clone().unwrap_or_default());
    }
}

fn event(i: u64) -> String {
    let users = ["Ann", "bob", "Cy", "dEE", "Éva", "o'neil"];
    let cities = ["Oslo", "Rome", "  Lima ", "oslo", "Zürich"];
    let tiers = ["\"gold\"", "\"silver\"", "null"];
    let qty = if i % 11 == 0 { "null".to_string() } else { (i % 7).to_string() };
    let frac = if i % 5 == 0 { format!(".{:06}", i * 7919 % 1_000_000) } else { String::new() };
    let secs = i * 17;
    format!(
        r#"{{"id": {i}, "user": "{}", "amount": "{}.{:02}", "qty": {qty}, "ts": "2026-03-01T{:02}:{:02}:{:02}{frac}Z", "meta": {{"city": "{}", "tier": {{"name": {}}}, "score": {}.50}}}}"#,
        users[(i % 6) as usize],
        i * 37 % 1000,
        i * 13 % 100,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        cities[(i % 5) as usize],
        tiers[(i % 3) as usize],
        i % 10
    )
}

/// The query, with `{FROM}` where the table goes: `records AS out` for
/// barge, `src` for PostgreSQL.
const PROJECTION: &str = "SELECT (data->>'id')::int AS id, upper(data->>'user') AS who, lower(trim(data->'meta'->>'city')) AS city, \
     substring(data->>'user' from 2 for 3) AS part, concat(data->>'user', '-', data->>'id') AS tag, data->>'user' || '@' || trim(data->'meta'->>'city') AS addr, \
     length(data->>'user') AS len, (data->>'amount')::numeric(12,2) * (data->>'qty')::int AS total, (data->>'amount')::numeric / 3 AS third, \
     (data->'meta'->>'score')::numeric * 2 AS score2, \
     CASE WHEN (data->>'qty')::int > 3 THEN 'many' WHEN data->>'qty' IS NULL THEN 'unknown' ELSE 'few' END AS size, \
     date_trunc('hour', (data->>'ts')::timestamptz) AS hour, extract(minute from (data->>'ts')::timestamptz) AS minute, \
     extract(epoch from (data->>'ts')::timestamptz) AS epoch, data->'meta'->'tier'->>'name' AS tier, (data->>'ts')::timestamptz AS at \
     FROM {FROM} \
     WHERE ((data->>'qty')::int >= 2 OR data->>'qty' IS NULL) AND NOT (data->'meta'->>'city' = 'Rome') AND (data->>'amount')::numeric < 900 \
     AND upper(data->>'user') IN ('ANN', 'BOB', 'CY', 'DEE', 'ÉVA', 'O''NEIL')";

#[tokio::test]
async fn filters_and_projections_give_what_postgresql_gives_for_the_same_query() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let lines: Vec<String> = (0..400).map(event).collect();
    append(&log, &lines);
    let db = TestDb::new(Engine::Postgres, "sqlproj").await;
    load_reference(&db, &lines).await;
    let state = dir.path().join("state");
    let sql = PROJECTION.replace("{FROM}", "records AS out");
    let out = run(barge().args(["migrate", &format!("tail://{}", log.display()), &db.url, "--mode", "full-load", "--sql", &sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "tail into PostgreSQL through --sql");
    exec(&db, &format!("CREATE TABLE expected AS {}", PROJECTION.replace("{FROM}", "src"))).await;
    assert_same_rows(&db, "out", "expected").await;
    // The output's types come from the query: exact decimals, instants.
    let types = db.query_row("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'out' AND column_name IN ('id', 'total', 'third', 'hour', 'at', 'tier')").await;
    assert_eq!(types[0].as_deref(), Some("id integer, total numeric, third numeric, hour timestamp with time zone, tier text, at timestamp with time zone"));
    let dropped = db.query_row("SELECT count(*) FROM src").await[0].clone().unwrap().parse::<u64>().unwrap() - db.query_row("SELECT count(*) FROM expected").await[0].clone().unwrap().parse::<u64>().unwrap();
    let status = crate::support::status_of(&state);
    assert_eq!(status["cdc"]["filtered"].as_u64(), Some(dropped), "rows failing WHERE are counted: {status}");
    assert!(stderr(&out).contains(&format!("{dropped} row(s) or record(s) did not pass --sql's WHERE")), "{}", text(&out));
    db.drop_db().await;
}

#[tokio::test]
async fn a_record_the_query_cannot_evaluate_stops_the_run_or_goes_to_rejects_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("orders.jsonl");
    let lines = [r#"{"id": 1, "amount": "10.00", "qty": 4}"#, r#"{"id": 2, "amount": "ten", "qty": 1}"#, r#"{"id": 3, "amount": "9.99", "qty": 0}"#, r#"{"id": 4, "amount": "1.10", "qty": 3}"#];
    append(&log, &lines.map(String::from));
    let db = TestDb::new(Engine::Postgres, "sqlbad").await;
    let state = dir.path().join("state");
    let url = format!("tail://{}", log.display());
    let sql = "SELECT (data->>'id')::int AS id, (data->>'amount')::numeric(10,2) / (data->>'qty')::int AS unit_price FROM records AS prices";
    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--sql", sql, "--state-dir"]).arg(&state));
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("offset 39") && err.contains("column unit_price") && err.contains("`ten`") && err.contains("--on-error log"), "names the record, the column, the value and the way on:\n{err}");
    assert!(db.try_query_row("SELECT count(*) FROM prices").await.map(|r| r[0].clone()).unwrap_or(Some("0".into())).as_deref() == Some("0"), "nothing of the failed batch is kept");

    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--on-error", "log", "--sql", sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "with --on-error log");
    let row = db.query_row("SELECT string_agg(id || '=' || unit_price, ',' ORDER BY id) FROM prices").await;
    assert_eq!(row[0].as_deref(), Some("1=2.5000000000000000,4=0.36666666666666666667"), "exact, rounded as PostgreSQL rounds numeric division");
    let rejects = std::fs::read_to_string(state.join("rejects.jsonl")).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 2, "{rejects}");
    assert!(lines[0].contains("offset 39") && lines[0].contains("cannot cast the text value `ten` to numeric(10,2)"), "{rejects}");
    assert!(lines[1].contains("division by zero") && lines[1].contains(r#"\"qty\": 0"#), "the record itself is kept: {rejects}");
    assert!(stderr(&out).contains("2 row(s) or record(s) the target could not take"), "{}", text(&out));
    db.drop_db().await;
}

/// Events every 1.5 s for 12 minutes over three keys, with some a little
/// out of order (10 s back: within 30 s of lateness) and some far behind
/// (5 minutes back: late), marked so PostgreSQL can leave those out.
fn window_events() -> Vec<String> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
    let at = |ms: i64| (base + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Vec::new();
    for i in 0..480i64 {
        let t = i * 1500;
        let k = ["a", "b", "c"][(i % 3) as usize];
        out.push(format!(r#"{{"k": "{k}", "ts": "{}", "amount": "{}.{:02}", "late": false}}"#, at(t), i % 17, i * 7 % 100));
        if i % 40 == 39 {
            out.push(format!(r#"{{"k": "{k}", "ts": "{}", "amount": "0.01", "late": false}}"#, at(t - 10_000)));
        }
        if i >= 300 && i % 60 == 0 {
            out.push(format!(r#"{{"k": "late", "ts": "{}", "amount": "100", "late": true}}"#, at(t - 300_000)));
        }
    }
    out
}

const TUMBLE: &str = "SELECT data->>'k' AS k, window_start, window_end, count(*) AS n, sum((data->>'amount')::numeric) AS total, \
     avg((data->>'amount')::numeric) AS mean, min((data->>'amount')::numeric) AS low, max(data->>'ts') AS last_ts \
     FROM records AS {NAME} GROUP BY data->>'k', TUMBLE((data->>'ts')::timestamptz, INTERVAL '1' MINUTE)";

/// The same windows, computed by PostgreSQL after the fact.
const TUMBLE_REFERENCE: &str = "SELECT data->>'k' AS k, to_timestamp(floor(extract(epoch from (data->>'ts')::timestamptz) / 60) * 60) AS window_start, \
     to_timestamp(floor(extract(epoch from (data->>'ts')::timestamptz) / 60) * 60 + 60) AS window_end, count(*) AS n, sum((data->>'amount')::numeric) AS total, \
     avg((data->>'amount')::numeric) AS mean, min((data->>'amount')::numeric) AS low, max(data->>'ts') AS last_ts \
     FROM src WHERE NOT (data->>'late')::boolean GROUP BY 1, 2, 3";

fn late_lines(state: &Path) -> usize {
    std::fs::read_to_string(state.join("rejects.jsonl")).unwrap_or_default().lines().filter(|l| l.contains("\"reason\":\"late: event time")).count()
}

#[tokio::test]
async fn tumbling_and_hopping_windows_equal_postgresql_after_the_fact_and_late_records_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ticks.jsonl");
    let lines = window_events();
    let late = lines.iter().filter(|l| l.contains("\"late\": true")).count();
    append(&log, &lines);
    let db = TestDb::new(Engine::Postgres, "sqlwin").await;
    load_reference(&db, &lines).await;
    let url = format!("tail://{}", log.display());

    let state = dir.path().join("tumble");
    let sql = TUMBLE.replace("{NAME}", "per_minute");
    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--allowed-lateness", "30s", "--sql", &sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "tumbling windows");
    exec(&db, &format!("CREATE TABLE per_minute_expected AS {TUMBLE_REFERENCE}")).await;
    assert_same_rows(&db, "per_minute", "per_minute_expected").await;
    assert_eq!(late_lines(&state), late, "each late record set aside once, with the reason");
    assert_eq!(crate::support::status_of(&state)["cdc"]["late"].as_u64(), Some(late as u64));
    assert!(stderr(&out).contains(&format!("{late} record(s) arrived after their windows were emitted")), "{}", text(&out));

    let state = dir.path().join("hop");
    let sql = "SELECT data->>'k' AS k, window_start, window_end, count(*) AS n, sum((data->>'amount')::numeric) AS total FROM records AS sliding \
               GROUP BY data->>'k', HOP((data->>'ts')::timestamptz, INTERVAL '30' SECOND, INTERVAL '1' MINUTE)";
    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--allowed-lateness", "30s", "--sql", sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "hopping windows");
    exec(
        &db,
        "CREATE TABLE sliding_expected AS SELECT data->>'k' AS k, to_timestamp((floor(extract(epoch from (data->>'ts')::timestamptz) / 30) - g) * 30) AS window_start, \
         to_timestamp((floor(extract(epoch from (data->>'ts')::timestamptz) / 30) - g) * 30 + 60) AS window_end, count(*) AS n, sum((data->>'amount')::numeric) AS total \
         FROM src, generate_series(0, 1) g WHERE NOT (data->>'late')::boolean GROUP BY 1, 2, 3",
    )
    .await;
    assert_same_rows(&db, "sliding", "sliding_expected").await;
    assert_eq!(late_lines(&state), late);
    db.drop_db().await;
}

#[tokio::test]
async fn a_kill_in_the_middle_of_a_window_leaves_the_results_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ticks.jsonl");
    let lines = window_events();
    let late = lines.iter().filter(|l| l.contains("\"late\": true")).count();
    let db = TestDb::new(Engine::Postgres, "sqlkill").await;
    load_reference(&db, &lines).await;
    let url = format!("tail://{}", log.display());
    let sql = TUMBLE.replace("{NAME}", "per_minute");
    let state = dir.path().join("state");

    // Following the file: windows are emitted as event time moves on.
    let (first, second) = (lines.len() / 3, lines.len() * 2 / 3);
    append(&log, &lines[..first]);
    let mut child = barge()
        .args(["migrate", &url, &db.url, "--mode", "cdc", "--batch-changes", "50", "--allowed-lateness", "30s", "--sql", &sql, "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for(&db, "SELECT count(*) >= 6 FROM per_minute", "t", &mut child).await;
    // Each transaction that carries window rows has its copy of the open
    // windows, saved before the target can save its position.
    let copies = state.join("sql-windows");
    let newest = || -> Option<(std::path::PathBuf, serde_json::Value)> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&copies).ok()?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        files.sort();
        let path = files.pop()?;
        let v = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        Some((path, v))
    };
    let wait_copy = |after: Option<&serde_json::Value>, child: &mut std::process::Child| -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some((_, v)) = newest().filter(|(_, v)| after.is_none_or(|a| v["position"] != *a)) {
                return v;
            }
            crate::support::assert_running(child, "before the windows were saved");
            assert!(std::time::Instant::now() < deadline, "no (new) copy of the windows was saved");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let first_copy = wait_copy(None, &mut child);
    append(&log, &lines[first..second]);
    wait_copy(Some(&first_copy["position"]), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let (path, saved) = newest().unwrap();
    assert!(!saved["state"]["windows"].as_object().unwrap().is_empty(), "killed with windows open: {saved}");
    // A copy for a transaction the target never saved (barge killed
    // between the two) must not be taken for the target's.
    let mut ahead = saved.clone();
    for offset in ahead["position"]["offsets"].as_object_mut().unwrap().values_mut() {
        *offset = serde_json::Value::String("999999999".into());
    }
    ahead["state"]["windows"] = serde_json::json!({});
    std::fs::write(path.with_file_name("9999999999999999.json"), serde_json::to_vec(&ahead).unwrap()).unwrap();

    append(&log, &lines[second..]);
    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--allowed-lateness", "30s", "--sql", &sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "the rerun after kill -9");
    assert!(stderr(&out).contains("resuming the open windows saved at"), "{}", text(&out));

    let once = dir.path().join("once");
    let out = run(barge().args(["migrate", &url, &db.url, "--mode", "full-load", "--allowed-lateness", "30s", "--sql", &TUMBLE.replace("{NAME}", "uninterrupted"), "--state-dir"]).arg(&once));
    assert_ok(&out, "the uninterrupted run");
    assert_same_rows(&db, "per_minute", "uninterrupted").await;
    exec(&db, &format!("CREATE TABLE per_minute_expected AS {TUMBLE_REFERENCE}")).await;
    assert_same_rows(&db, "per_minute", "per_minute_expected").await;
    assert_eq!(late_lines(&state), late, "late records of the replayed part are not written twice");
    db.drop_db().await;
}

/// The rows of `sql` on `db`, one text line each, in order.
async fn rows_text(db: &TestDb, sql: &str) -> String {
    db.query_row(&format!("SELECT coalesce(string_agg(r::text, E'\\n' ORDER BY r.id), '') FROM ({sql}) r")).await[0].clone().unwrap_or_default()
}

#[tokio::test]
async fn a_database_table_s_changes_go_through_the_query() {
    let src = TestDb::new(Engine::Postgres, "sqldbsrc").await;
    let dst = TestDb::new(Engine::Postgres, "sqldbdst").await;
    for db in [&src, &dst] {
        exec(db, &format!("ALTER DATABASE {} SET timezone TO 'UTC'", db.name)).await;
    }
    exec(&src, "CREATE SCHEMA shop; CREATE TABLE shop.orders (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2), qty integer, placed timestamptz, note jsonb)").await;
    exec(&src, "CREATE PUBLICATION sqlpub FOR TABLE shop.orders").await;
    // Slots are the server's, not the database's: one name per test database.
    let slot = format!("{}_slot", src.name);
    exec(&src, &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let query = "SELECT id, upper(name) AS name, price * qty AS total, date_trunc('day', placed) AS day, note->>'via' AS via FROM shop.orders WHERE qty > 0";
    let mut child = barge()
        .args(["migrate", &src.url, &dst.url, "--mode", "cdc", "--slot", &slot, "--publication", "sqlpub", "--heartbeat", "1", "--sql", query, "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_replicating(&mut child, &state);
    for step in [
        "INSERT INTO shop.orders SELECT g, 'item ' || g, g * 1.25, g % 4, timestamptz '2026-03-01 10:00+00' + g * interval '7 hours', jsonb_build_object('via', CASE WHEN g % 3 = 0 THEN 'web' END) FROM generate_series(1, 60) g",
        // Out of the filter, into it, and changed while in it.
        "UPDATE shop.orders SET qty = 0 WHERE id % 10 = 1",
        "UPDATE shop.orders SET qty = 9 WHERE id % 8 = 0",
        "UPDATE shop.orders SET name = name || ' (renamed)', price = price + 0.01 WHERE id % 5 = 2",
        "DELETE FROM shop.orders WHERE id % 7 = 3",
        "INSERT INTO shop.orders VALUES (1000, 'last', 9.99, 1, '2026-03-09 23:59:59.5+00', '{\"via\": \"app\"}')",
    ] {
        exec(&src, step).await;
    }
    let want = rows_text(&src, query).await;
    let count = want.lines().count().to_string();
    crate::support::wait_for(&dst, "SELECT count(*) FROM shop.orders WHERE id = 1000", "1", &mut child).await;
    crate::support::wait_for(&dst, "SELECT count(*) FROM shop.orders", &count, &mut child).await;
    assert_eq!(rows_text(&dst, "SELECT * FROM shop.orders").await, want, "the target holds what the query gives on the source");
    let key = dst.query_row("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'shop.orders'::regclass AND i.indisprimary").await;
    assert_eq!(key[0].as_deref(), Some("id"), "the source's key, selected as it is, keys the output");
    let out = crate::support::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    exec(&src, &format!("SELECT pg_drop_replication_slot('{slot}')")).await;
    src.drop_db().await;
    dst.drop_db().await;
}
