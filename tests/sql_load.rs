//! `--sql` over a database's full load: the rows a table holds go
//! through the query as its changes do. What barge writes (files read
//! back by pyarrow and Python's json, or a PostgreSQL target) is compared
//! with what PostgreSQL gives for the same query on the same rows.

use crate::support::sinks::read_dir;
use crate::support::{assert_ok, barge, exec, run, stderr, text, Engine, TestDb};
use serde_json::Value;

/// Orders with NULLs, a JSON column, amounts that need every digit, and
/// times over several days.
const ORDERS: &str = "CREATE SCHEMA shop; \
    CREATE TABLE shop.orders (id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2), qty integer, placed timestamptz, note jsonb); \
    INSERT INTO shop.orders SELECT g, CASE WHEN g % 9 = 0 THEN 'Éva ' || g ELSE 'item ' || g END, g * 1.25 + 0.01, CASE WHEN g % 11 = 0 THEN NULL ELSE g % 5 END, \
      timestamptz '2026-03-01 10:00+00' + g * interval '7 hours 13 minutes', jsonb_build_object('via', CASE WHEN g % 3 = 0 THEN 'web' WHEN g % 3 = 1 THEN 'app' END) \
    FROM generate_series(1, 120) g";

/// WHERE, a projection with renames, arithmetic (exact), CASE, a JSON
/// path, string and date functions; `{FROM}` is the table and its alias.
const QUERY: &str = "SELECT id, upper(name) AS who, (price * qty)::numeric(12,2) AS total, \
     CASE WHEN qty >= 3 THEN 'many' WHEN qty IS NULL THEN 'unknown' ELSE 'few' END AS size, \
     note->>'via' AS via, date_trunc('day', placed) AS day \
     FROM {FROM} WHERE (qty > 0 OR qty IS NULL) AND price < 140 AND name NOT LIKE '%7'";

/// The rows of `sql` on `db`, by id, each an object of its columns'
/// canonical text (what the read-back script gives: decimals with their
/// digits, timestamps ISO 8601 with the zone).
async fn pg_rows(db: &TestDb, sql: &str) -> Vec<Value> {
    let got = db
        .query_row(&format!("SELECT coalesce(json_agg((SELECT json_object_agg(key, value #>> '{{}}') FROM json_each(row_to_json(r))) ORDER BY r.id), '[]') FROM ({sql}) r"))
        .await;
    serde_json::from_str::<Value>(got[0].as_deref().unwrap()).unwrap().as_array().unwrap().clone()
}

/// Every data row of every file under `dir`, as objects (Parquet's named
/// by its columns), sorted by id.
fn file_rows(dir: &std::path::Path) -> Vec<Value> {
    let back = read_dir(dir);
    let mut rows: Vec<Value> = Vec::new();
    for (name, f) in back["files"].as_object().unwrap() {
        assert!(!name.contains("errors/"), "no record set aside: {name}: {f}");
        for r in f["rows"].as_array().unwrap() {
            rows.push(match r {
                Value::Array(values) => Value::Object(f["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap().to_string()).zip(values.iter().cloned()).collect()),
                other => other.clone(),
            });
        }
    }
    rows.sort_by_key(|r| r["id"].as_str().and_then(|id| id.parse::<i64>().ok()).unwrap_or_else(|| panic!("a row without its id: {r}\n{back}")));
    rows
}

async fn source(tag: &str) -> TestDb {
    let db = TestDb::new(Engine::Postgres, tag).await;
    exec(&db, &format!("ALTER DATABASE {} SET timezone TO 'UTC'", db.name)).await;
    exec(&db, ORDERS).await;
    db
}


/// Changes after the load: rows into the filter and out of it, changed
/// while in it, and deleted.
const CHANGES: &[&str] = &[
    "INSERT INTO shop.orders VALUES (500, 'new', 3.00, 4, '2026-04-01 08:00+00', '{\"via\": \"web\"}'), (501, 'left out', 3.00, 0, now(), NULL)",
    "UPDATE shop.orders SET qty = 0 WHERE id % 10 = 1",
    "UPDATE shop.orders SET qty = 2 WHERE id % 10 = 5 AND qty = 0",
    "UPDATE shop.orders SET name = name || ' (renamed)', price = price + 0.01 WHERE id % 6 = 2",
    "DELETE FROM shop.orders WHERE id % 7 = 3",
];

#[tokio::test]
async fn a_full_load_into_files_holds_what_postgresql_gives_for_the_query() {
    let src = source("sqlloadsrc").await;
    let want = pg_rows(&src, &QUERY.replace("{FROM}", "shop.orders")).await;
    let left_out = 120 - want.len();
    assert!(want.len() > 40 && left_out > 20, "the query keeps some rows and drops others: {}", want.len());
    let dir = tempfile::tempdir().unwrap();
    let sql = QUERY.replace("{FROM}", "shop.orders AS sales");
    for format in ["jsonl", "parquet"] {
        let out_dir = dir.path().join(format);
        let state = dir.path().join(format!("state-{format}"));
        // Two chunks, loaded in parallel: the query applies to each.
        let out = run(barge()
            .args(["migrate", &src.url, &format!("file://{}", out_dir.display()), "--format", format, "--chunk-rows", "60", "--sql", &sql, "--state-dir"])
            .arg(&state));
        assert_ok(&out, &format!("full load to {format} through --sql"));
        assert_eq!(file_rows(&out_dir), want, "{format}: the rows and columns PostgreSQL gives for the query");
        let err = stderr(&out);
        assert!(err.contains(&format!("{left_out} row(s) did not pass --sql's WHERE")), "the rows WHERE dropped are counted: {}", text(&out));
        assert!(err.contains("shop.orders → table shop.sales"), "{err}");
        // The output table is named by the alias, its files under it.
        let names: Vec<String> = read_dir(&out_dir)["files"].as_object().unwrap().keys().cloned().collect();
        assert!(names.iter().all(|n| n.starts_with("shop/sales/")), "{names:?}");
        if format == "parquet" {
            let back = read_dir(&out_dir);
            let f = back["files"].as_object().unwrap().values().next().unwrap();
            assert_eq!(
                f["columns"],
                serde_json::json!([["id", "int32"], ["who", "string"], ["total", "decimal128(12, 2)"], ["size", "string"], ["via", "string"], ["day", "timestamp[us, tz=UTC]"]]),
                "Parquet declares the types the SELECT gives"
            );
        }
    }
    src.drop_db().await;
}

#[tokio::test]
async fn a_row_the_query_cannot_evaluate_stops_the_load_or_goes_to_rejects_with_the_reason() {
    let src = source("sqlloadbad").await;
    // One row whose quantity makes the division fail.
    exec(&src, "UPDATE shop.orders SET qty = 0 WHERE id = 42; UPDATE shop.orders SET qty = 1 WHERE qty = 0 AND id <> 42").await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let target = format!("file://{}", out_dir.display());
    let state = dir.path().join("state");
    let sql = "SELECT id, price / qty AS unit_price FROM shop.orders AS prices WHERE qty IS NOT NULL";
    let out = run(barge().args(["migrate", &src.url, &target, "--format", "jsonl", "--sql", sql, "--state-dir"]).arg(&state));
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("shop.orders") && err.contains("id=42") && err.contains("column unit_price") && err.contains("division by zero") && err.contains("--on-error log"), "names the table, the row, the column, the reason and the way on:\n{err}");

    let out = run(barge().args(["migrate", &src.url, &target, "--format", "jsonl", "--on-error", "log", "--sql", sql, "--state-dir"]).arg(&state));
    assert_ok(&out, "with --on-error log");
    let rejects = std::fs::read_to_string(state.join("rejects.jsonl")).unwrap();
    let lines: Vec<Value> = rejects.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{rejects}");
    assert_eq!(lines[0]["key"], "id=42");
    assert_eq!(lines[0]["column"], "unit_price");
    assert_eq!(lines[0]["reason"], "--sql: division by zero");
    assert_eq!(lines[0]["row"][0]["v"], 42, "the source row itself is kept: {rejects}");
    assert!(stdout_has(&out, "1 rows rejected") && stderr(&out).contains("rejected rows are in"), "the run says so: {}", text(&out));
    let want = pg_rows(&src, "SELECT id, price / qty AS unit_price FROM shop.orders WHERE qty IS NOT NULL AND id <> 42").await;
    assert_eq!(file_rows(&out_dir), want, "every other row, exact");
    src.drop_db().await;
}

fn stdout_has(out: &std::process::Output, s: &str) -> bool {
    crate::support::stdout(out).contains(s)
}

#[tokio::test]
async fn windows_over_a_full_load_equal_postgresql_s_group_by() {
    let src = source("sqlloadwin").await;
    let dst = TestDb::new(Engine::Postgres, "sqlloadwindst").await;
    let sql = "SELECT note->>'via' AS via, window_start, window_end, count(*) AS n, sum(price) AS total, min(qty) AS low, max(name) AS last_name \
               FROM shop.orders AS daily WHERE price > 2 GROUP BY note->>'via', TUMBLE(placed, INTERVAL '1' DAY)";
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--chunk-rows", "30", "--sql", sql, "--state-dir"]).arg(tempfile::tempdir().unwrap().path()));
    assert_ok(&out, "a windowed full load");
    let want = src
        .query_row(
            "SELECT string_agg(r::text, E'\\n' ORDER BY r.w, r.via NULLS FIRST) FROM (SELECT note->>'via' AS via, date_trunc('day', placed) AS w, date_trunc('day', placed) + interval '1 day' AS e, \
             count(*) AS n, sum(price) AS total, min(qty) AS low, max(name) AS last_name FROM shop.orders WHERE price > 2 GROUP BY 1, 2, 3) r",
        )
        .await;
    exec(&dst, &format!("ALTER DATABASE {} SET timezone TO 'UTC'", dst.name)).await;
    let got = dst.query_row("SELECT string_agg(r::text, E'\\n' ORDER BY r.window_start, r.via NULLS FIRST) FROM shop.daily r").await;
    assert_eq!(got, want, "every row of the table in its window (none late), as GROUP BY gives");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test]
async fn full_load_and_changes_go_through_the_same_query_into_a_database() {
    let src = source("sqlloadcdcsrc").await;
    let dst = TestDb::new(Engine::Postgres, "sqlloadcdcdst").await;
    exec(&dst, &format!("ALTER DATABASE {} SET timezone TO 'UTC'", dst.name)).await;
    let query = QUERY.replace("{FROM}", "shop.orders");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = crate::support::start_cdc(&src.url, &dst.url, &state, &["--sql", &query]);
    crate::support::wait_replicating(&mut child, &state);
    let loaded = pg_rows(&src, &query).await;
    let count = loaded.len().to_string();
    crate::support::wait_for(&dst, "SELECT count(*) FROM shop.orders", &count, &mut child).await;
    assert_eq!(pg_rows(&dst, "SELECT * FROM shop.orders").await, loaded, "the loaded rows are the query's");
    for step in CHANGES.iter().chain(["INSERT INTO shop.orders VALUES (1000, 'last', 9.99, 1, '2026-03-09 23:59:59.5+00', '{\"via\": \"app\"}')"].iter()) {
        exec(&src, step).await;
    }
    let want = pg_rows(&src, &query).await;
    crate::support::wait_for(&dst, "SELECT count(*) FROM shop.orders WHERE id = 1000", "1", &mut child).await;
    crate::support::wait_for(&dst, "SELECT count(*) FROM shop.orders", &want.len().to_string(), &mut child).await;
    assert_eq!(pg_rows(&dst, "SELECT * FROM shop.orders").await, want, "the target holds what the query gives on the source");
    let out = crate::support::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("{} row(s) did not pass --sql's WHERE", 120 - loaded.len())), "the load's count: {err}");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_load_into_a_stream_sends_the_query_s_rows_under_the_output_table() {
    use crate::support::sinks::{create_stream, env, read_back, unique_name};
    let src = source("sqlloadkin").await;
    let want = pg_rows(&src, &QUERY.replace("{FROM}", "shop.orders")).await;
    let stream = unique_name("sales");
    create_stream(&stream, 2);
    let target = format!("kinesis://{stream}?endpoint={}&region=us-east-1", env("BARGE_TEST_KINESIS_ENDPOINT"));
    let sql = QUERY.replace("{FROM}", "shop.orders AS sales");
    let out = run(barge().args(["migrate", &src.url, &target, "--sql", &sql, "--state-dir"]).arg(tempfile::tempdir().unwrap().path()));
    assert_ok(&out, "full load to Kinesis through --sql");
    let mut got: Vec<Value> = Vec::new();
    for r in read_back(&["kinesis", &stream])["records"].as_array().unwrap() {
        let m = &r["body"]["metadata"];
        assert_eq!((m["schema-name"].as_str(), m["table-name"].as_str(), m["operation"].as_str()), (Some("shop"), Some("sales"), Some("load")), "{r}");
        assert_eq!(r["key"], r["body"]["data"]["id"], "the partition key is the output's key");
        got.push(r["body"]["data"].clone());
    }
    got.sort_by_key(|r| r["id"].as_str().unwrap().parse::<i64>().unwrap());
    assert_eq!(got, want, "one record per row the query gives, with its columns");
    src.drop_db().await;
}

/// The table the files under `dir` describe: the load's rows, then each
/// change file in time order (inserts and upserts replace by id, deletes
/// remove), as objects sorted by id.
fn replayed(dir: &std::path::Path) -> Vec<Value> {
    let back = read_dir(dir);
    let files = back["files"].as_object().unwrap();
    let mut names: Vec<&String> = files.keys().collect();
    // LOAD… files first, then the change files, named by time.
    names.sort_by_key(|n| (!n.contains("/LOAD"), n.to_string()));
    let mut table = std::collections::BTreeMap::new();
    for n in names {
        assert!(!n.contains("errors/"), "no record set aside: {n}");
        for r in files[n]["rows"].as_array().unwrap() {
            let mut r = r.as_object().unwrap().clone();
            let op = r.shift_remove("Op");
            let id: i64 = r["id"].as_str().unwrap().parse().unwrap();
            match op.as_ref().and_then(Value::as_str) {
                Some("D") => {
                    table.remove(&id);
                }
                None | Some("I") | Some("U") => {
                    table.insert(id, Value::Object(r));
                }
                Some(other) => panic!("unexpected operation {other} in {n}"),
            }
        }
    }
    table.into_values().collect()
}

#[tokio::test]
async fn full_load_and_changes_into_files_are_filtered_the_same_way() {
    let src = source("sqlloadcdcfiles").await;
    let query = QUERY.replace("{FROM}", "shop.orders");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let state = dir.path().join("state");
    let target = format!("file://{}", out_dir.display());
    let mut child = crate::support::start_cdc(&src.url, &target, &state, &["--format", "jsonl", "--buffer-interval", "1", "--sql", &query]);
    crate::support::wait_replicating(&mut child, &state);
    let loaded = pg_rows(&src, &query).await;
    assert_eq!(replayed(&out_dir), loaded, "the load wrote the query's rows");
    for step in CHANGES {
        exec(&src, step).await;
    }
    let want = pg_rows(&src, &query).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while replayed(&out_dir) != want {
        crate::support::assert_running(&mut child, "while waiting for the change files");
        assert!(std::time::Instant::now() < deadline, "the files never described the query's rows: {:?}\nwant {:?}", replayed(&out_dir), want);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = crate::support::interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    src.drop_db().await;
}
