//! What users type, against real servers: DMS row filters that keep rows
//! out of the target in the full load and in every kind of change (the PII
//! case), and the hints a missing password gets.

use crate::support;


use support::*;

/// The rows of the seed, and whether the mapping below lets them through.
/// The filter: tenant 7 or 8 (OR within one filter), and a region that
/// begins with `eu-` (AND across filters), case-sensitively.
const SEED: &[(i64, i64, Option<&str>, &str, bool)] = &[
    (1, 7, Some("eu-west"), "ann@in.example", true),
    (2, 8, Some("eu-north"), "bob@in.example", true),
    (3, 3, Some("eu-west"), "secret3@pii.example", false),
    (4, 7, Some("us-east"), "secret4@pii.example", false),
    (5, 7, None, "secret5@pii.example", false),
    (6, 7, Some("EU-west"), "secret6@pii.example", false),
    (7, 8, Some("eu-o'brien\\"), "quote@in.example", true),
];

const MAPPING: &str = r#"{"rules": [
  {"rule-type": "selection", "rule-id": "1", "rule-name": "people", "rule-action": "include",
   "object-locator": {"schema-name": "%", "table-name": "people"},
   "filters": [
     {"filter-type": "source", "column-name": "tenant", "filter-conditions": [
        {"filter-operator": "eq", "value": "7"}, {"filter-operator": "eq", "value": 8}]},
     {"filter-type": "source", "column-name": "region", "filter-conditions": [
        {"filter-operator": "begins-with", "value": "eu-"}]}
   ]}
]}"#;

fn literal(s: &str, engine: Engine) -> String {
    match engine {
        Engine::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        _ => format!("'{}'", s.replace('\'', "''")),
    }
}

async fn seed(src: &TestDb) {
    let text = if src.engine == Engine::Mysql { "varchar(100)" } else { "text" };
    exec(src, &format!("CREATE TABLE people (id int PRIMARY KEY, tenant int NOT NULL, region varchar(20), email varchar(100) NOT NULL, note {text})")).await;
    for (id, tenant, region, email, _) in SEED {
        let region = region.map(|r| literal(r, src.engine)).unwrap_or_else(|| "NULL".into());
        exec(src, &format!("INSERT INTO people VALUES ({id}, {tenant}, {region}, '{email}', 'seed')")).await;
    }
}

/// The ids on `db`, in order, as one string.
async fn ids(db: &TestDb) -> String {
    let agg = match db.engine {
        Engine::Postgres => "SELECT string_agg(id::text, ',' ORDER BY id) FROM people",
        _ => "SELECT group_concat(id ORDER BY id SEPARATOR ',') FROM people",
    };
    db.query_row(agg).await[0].clone().unwrap_or_default()
}

/// Rows outside the filter never reach the target: not in the full load,
/// not through any kind of change (insert outside, update that stays
/// outside, update that leaves, update that enters, key change, delete).
async fn pii_filter(source: Engine, target: Engine) {
    let src = TestDb::new(source, "pii_src").await;
    let dst = TestDb::new(target, "pii_dst").await;
    seed(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.json");
    std::fs::write(&mapping, MAPPING).unwrap();
    let state = dir.path().join("state");
    let mut child = start_cdc(&src.url, &dst.url, &state, &["--mapping", mapping.to_str().unwrap()]);
    wait_replicating(&mut child, &state);

    // The full load: exactly the rows in the filter.
    let loaded: Vec<String> = SEED.iter().filter(|r| r.4).map(|r| r.0.to_string()).collect();
    assert_eq!(ids(&dst).await, loaded.join(","), "full load");
    let quote = dst.query_row("SELECT region FROM people WHERE id = 7").await;
    assert_eq!(quote[0].as_deref(), Some("eu-o'brien\\"), "a quote and a backslash in a value are data");

    for sql in [
        // Inserts: one in, one out.
        "INSERT INTO people VALUES (10, 7, 'eu-west', 'new@in.example', 'x')",
        "INSERT INTO people VALUES (11, 9, 'eu-west', 'secret11@pii.example', 'x')",
        // Out and stays out (a new secret in it).
        "UPDATE people SET email = 'secret4b@pii.example' WHERE id = 4",
        // Enters: the whole row appears.
        "UPDATE people SET tenant = 7 WHERE id = 3",
        // Leaves: the row goes.
        "UPDATE people SET region = 'us-west' WHERE id = 2",
        // Stays in.
        "UPDATE people SET note = 'changed' WHERE id = 1",
        // Key changes, in and out.
        "UPDATE people SET id = 100 WHERE id = 1",
        "UPDATE people SET id = 50 WHERE id = 5",
        "DELETE FROM people WHERE id = 7",
        "DELETE FROM people WHERE id = 6",
        "INSERT INTO people VALUES (999, 8, 'eu-z', 'sentinel@in.example', 'last')",
    ] {
        exec(&src, sql).await;
    }
    wait_for(&dst, "SELECT COUNT(*) FROM people WHERE id = 999", "1", &mut child).await;
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));

    assert_eq!(ids(&dst).await, "3,10,100,999", "after the changes");
    let entered = dst.query_row("SELECT tenant, region, email, note FROM people WHERE id = 3").await;
    assert_eq!(entered, vec![Some("7".into()), Some("eu-west".into()), Some("secret3@pii.example".into()), Some("seed".into())], "the row that entered came whole");
    let moved = dst.query_row("SELECT note FROM people WHERE id = 100").await;
    assert_eq!(moved[0].as_deref(), Some("changed"));
    let leaked = dst.query_row("SELECT COUNT(*) FROM people WHERE email LIKE 'secret%' AND id <> 3").await;
    assert_eq!(leaked[0].as_deref(), Some("0"), "no row outside the filter reached the target");

    // validate reads the source through the same filter.
    let out = run(barge().args(["validate", &src.url, &dst.url, "--mapping", mapping.to_str().unwrap()]));
    assert_ok(&out, "validate");
    assert!(!stdout(&out).contains("DIFFERENT"), "{}", stdout(&out));
    let out = run(barge().args(["cleanup", &src.url, "--state-dir"]).arg(&state));
    assert_ok(&out, "cleanup");
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_filter_postgres_to_mariadb() {
    pii_filter(Engine::Postgres, Engine::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_filter_mariadb_to_postgres() {
    pii_filter(Engine::Mysql, Engine::Postgres).await;
}

/// The full load alone, from SQLite, over every operator and typed values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_in_a_full_load() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("sqlite:{}", fixture("sample/shop.db").display());
    let out_db = dir.path().join("out.db");
    let dst = format!("sqlite:{}", out_db.display());
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        r#"
[[rules]]
rule-type = "selection"
rule-action = "include"
object-locator = { table-name = "customers" }

[[rules.filters]]
filter-type = "source"
column-name = "tier"
filter-conditions = [{ filter-operator = "eq", value = "gold" }, { filter-operator = "ends-with", value = "ilver" }]

[[rules.filters]]
filter-type = "source"
column-name = "credit_limit"
filter-conditions = [{ filter-operator = "between", start-value = "1000", end-value = "30000.50" }, { filter-operator = "null" }]

[[rules.filters]]
filter-type = "source"
column-name = "id"
filter-conditions = [{ filter-operator = "notbetween", start-value = "100", end-value = "200" }]

[[rules.filters]]
filter-type = "source"
column-name = "email"
filter-conditions = [{ filter-operator = "contains", value = "@" }]
"#,
    )
    .unwrap();
    let out = run(barge().args(["migrate", &src, &dst, "--mapping"]).arg(&mapping).arg("--state-dir").arg(dir.path().join("state")).arg("--validate"));
    assert_ok(&out, "migrate");
    let want = "SELECT COUNT(*) FROM customers WHERE tier IN ('gold', 'silver') AND (credit_limit BETWEEN 1000 AND 30000.50 OR credit_limit IS NULL) AND id NOT BETWEEN 100 AND 200 AND instr(email, '@') > 0";
    let source = TestDb::new(Engine::Sqlite, "ops").await;
    std::fs::copy(fixture("sample/shop.db"), source.url.trim_start_matches("sqlite:")).unwrap();
    let expected = source.query_row(want).await[0].clone().unwrap();
    let target = TestDb::new(Engine::Sqlite, "ops_out").await;
    std::fs::copy(&out_db, target.url.trim_start_matches("sqlite:")).unwrap();
    assert_ne!(expected, "0");
    assert_eq!(target.query_row("SELECT COUNT(*) FROM customers").await[0].as_deref(), Some(expected.as_str()));
    assert_eq!(target.query_row(&format!("SELECT COUNT(*) FROM customers WHERE NOT ({})", &want[want.find("WHERE ").unwrap() + 6..])).await[0].as_deref(), Some("0"));
}

/// "password missing" says where a password comes from, for the side that
/// lacks it, instead of "check the host, port and database".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_password_names_where_passwords_come_from() {
    let pg = server_url("BARGE_TEST_PG_URL");
    let my = server_url("BARGE_TEST_MYSQL_URL");
    let dir = tempfile::tempdir().unwrap();
    for (url, role_var) in [
        (format!("postgres://{}@127.0.0.1:{}/postgres?sslmode=disable", pg.username(), pg.port().unwrap()), "BARGE_SOURCE_PASSWORD"),
        (format!("mysql://{}@127.0.0.1:{}/mysql?ssl-mode=DISABLED", my.username(), my.port().unwrap()), "BARGE_SOURCE_PASSWORD"),
    ] {
        let out = run(barge().env_remove("PGPASSWORD").env_remove("MYSQL_PWD").args(["migrate", &url, "sqlite:out.db"]).current_dir(dir.path()));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(role_var) && err.contains("password_file"), "{url}: {err}");
        assert!(!err.contains("check the host, port and database"), "{err}");
    }
}

/// barge's SQL `filter` cannot be checked against changes: with change
/// capture it is refused before any row moves, instead of replicating
/// unfiltered changes after a filtered load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_filter_is_refused_for_changes_before_the_load() {
    let src = TestDb::new(Engine::Mysql, "sqlf_src").await;
    let dst = TestDb::new(Engine::Postgres, "sqlf_dst").await;
    seed(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.json");
    std::fs::write(&mapping, r#"{"rules": [{"rule-type": "selection", "rule-action": "include", "object-locator": {"table-name": "people"}, "filter": "tenant = 7"}]}"#).unwrap();
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--mode", "full-load-and-cdc", "--mapping", mapping.to_str().unwrap(), "--state-dir"]).arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("m.json:1:12:") && stderr(&out).contains("cannot be applied to changes"), "{}", text(&out));
    let tables = dst.query_row("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'people'").await;
    assert_eq!(tables[0].as_deref(), Some("0"), "nothing was created or loaded");
    // The full load alone takes it.
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--mapping", mapping.to_str().unwrap(), "--state-dir"]).arg(dir.path().join("state2")));
    assert_ok(&out, "full load with a SQL filter");
    assert_eq!(ids(&dst).await, "1,4,5,6");
    src.drop_db().await;
    dst.drop_db().await;
}
