//! convert-schema on the second dump of each source dialect (fixtures/ddl/
//! *_media, *_events, *_crm, *_hr, *_billing), made in the style of each
//! dialect's own tools and using every construct issue 10 lists. Each
//! source × target pair is converted with `--check`, executed on the real
//! target, and read back. Two promises are checked:
//!
//! - every table, column, key, foreign key, index and view of the source
//!   exists on the target, or the report names it as needing manual work;
//! - everything the report calls converted exists on the target.

use crate::support;

use std::collections::BTreeMap;

use barge::db::Db;
use barge::endpoint::Role;
use barge::model::{IndexKey, Schema, Table};
use serde_json::Value as Json;
use support::*;

#[derive(serde::Deserialize)]
struct Expect {
    table: Vec<ExpectTable>,
    #[serde(default)]
    view: Vec<ExpectView>,
}

#[derive(serde::Deserialize)]
struct ExpectTable {
    name: String,
    #[serde(default)]
    schema: Option<String>,
    columns: Vec<String>,
    #[serde(default)]
    primary_key: Vec<String>,
    #[serde(default)]
    unique: Vec<Vec<String>>,
    #[serde(default)]
    indexes: Vec<Vec<String>>,
    #[serde(default)]
    foreign_keys: Vec<ExpectFk>,
}

#[derive(serde::Deserialize)]
struct ExpectFk {
    columns: Vec<String>,
    ref_table: String,
}

#[derive(serde::Deserialize)]
struct ExpectView {
    name: String,
    #[serde(default)]
    schema: Option<String>,
}

/// The report's items, each object at its worst status (as the summary
/// counts them).
struct Report {
    worst: BTreeMap<(String, String), String>,
}

impl Report {
    fn read(v: &Json) -> Report {
        let rank = |s: &str| match s {
            "manual" => 2,
            "warning" => 1,
            _ => 0,
        };
        let mut worst: BTreeMap<(String, String), String> = BTreeMap::new();
        for i in v["items"].as_array().unwrap() {
            let key = (i["kind"].as_str().unwrap().to_string(), i["object"].as_str().unwrap().to_string());
            let st = i["status"].as_str().unwrap().to_string();
            let e = worst.entry(key).or_insert(st.clone());
            if rank(&st) > rank(e) {
                *e = st;
            }
        }
        Report { worst }
    }
    fn manual(&self, kind: &str, object: &str) -> bool {
        self.worst.get(&(kind.to_string(), object.to_string())).is_some_and(|s| s == "manual")
    }
    fn manual_where(&self, kind: &str, f: impl Fn(&str) -> bool) -> bool {
        self.worst.iter().any(|((k, o), s)| k == kind && s == "manual" && f(o))
    }
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.to_lowercase()).collect()
}

fn key_column(k: &IndexKey) -> String {
    match k {
        IndexKey::Column(c) => c.to_lowercase(),
        // `col COLLATE NOCASE` (SQLite) indexes the column.
        IndexKey::Expression(e) if e.sql.to_lowercase().split_whitespace().nth(1) == Some("collate") => {
            e.sql.split_whitespace().next().unwrap_or("").trim_matches(['"', '`', '(']).to_lowercase()
        }
        IndexKey::Expression(e) => {
            let flat: String = e.sql.chars().filter(|c| !matches!(c, '"' | '`' | ' ')).collect::<String>().to_lowercase();
            match flat.trim_start_matches('(').strip_prefix("lower(").map(|r| r.trim_end_matches(')')) {
                Some(c) if c.chars().all(|c| c.is_alphanumeric() || c == '_') => c.to_string(),
                _ => "expr".into(),
            }
        }
    }
}

/// Every key or index of a target table, as lower-case column lists.
fn key_lists(t: &Table) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = t.uniques.iter().map(|k| lower(&k.columns)).collect();
    v.extend(t.indexes.iter().map(|i| i.parts.iter().map(|p| key_column(&p.key)).collect()));
    v
}

async fn relation_exists(db: &mut Db, sql_name: &str) -> bool {
    db.execute(&format!("SELECT * FROM {sql_name} WHERE 1 = 0")).await.is_ok()
}

fn quote(target: Engine, parts: &str) -> String {
    parts
        .split('.')
        .map(|p| match target {
            Engine::Mysql => format!("`{p}`"),
            _ => format!("\"{p}\""),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn find<'a>(s: &'a Schema, target_parts: &str) -> Option<&'a Table> {
    let name = target_parts.rsplit('.').next().unwrap();
    s.tables.iter().find(|t| t.name.name.eq_ignore_ascii_case(name) && (!target_parts.contains('.') || t.name.schema.as_deref().is_none_or(|x| target_parts.starts_with(&format!("{x}.")))))
}

async fn check_pair(fixture_name: &str, from: &str, target: Engine) {
    let ctx = format!("{fixture_name} ({from}) → {}", target.name());
    let dir = tempfile::tempdir().unwrap();
    let (out, report_path, names_path) = (dir.path().join("out.sql"), dir.path().join("report.json"), dir.path().join("names.json"));
    let db = TestDb::new(target, &format!("rw_{fixture_name}_{}", target.name())).await;
    let mut cmd = barge();
    cmd.args(["convert-schema", "--from", from, "--to", target.name()])
        .arg(fixture(&format!("ddl/{fixture_name}.sql")))
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report_path)
        .arg("--name-map")
        .arg(&names_path);
    if target != Engine::Sqlite {
        cmd.args(["--check", &db.url]);
    }
    run_ok(&mut cmd);
    let ddl = std::fs::read_to_string(&out).unwrap();
    let report_json: Json = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let names: Json = serde_json::from_str(&std::fs::read_to_string(&names_path).unwrap()).unwrap();
    let report = Report::read(&report_json);

    let mut conn = db.connect(Role::Target).await;
    if let Err(e) = conn.execute(&ddl).await {
        panic!("{ctx}: the checked DDL failed on the real target: {e}\n--- DDL ---\n{ddl}");
    }
    let schema = conn.introspect().await.expect("introspect target");

    let map = |section: &str, key: &str| -> Option<String> {
        let m = names[section].as_object()?;
        m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)).and_then(|v| v.as_str()).map(str::to_string)
    };
    let exp: Expect = toml::from_str(&std::fs::read_to_string(fixture(&format!("ddl/{fixture_name}.expect.toml"))).unwrap()).unwrap();

    // 1. Every source object exists on the target or is a manual item.
    let mut counts = BTreeMap::from([("tables", [0usize; 2]), ("columns", [0; 2]), ("foreign keys", [0; 2]), ("indexes", [0; 2])]);
    for et in &exp.table {
        let obj = match &et.schema {
            Some(s) => format!("{s}.{}", et.name),
            None => et.name.clone(),
        };
        let ctx = format!("{ctx}: table {obj}");
        counts.get_mut("tables").unwrap()[0] += 1;
        counts.get_mut("columns").unwrap()[0] += et.columns.len();
        counts.get_mut("foreign keys").unwrap()[0] += et.foreign_keys.len();
        counts.get_mut("indexes").unwrap()[0] += et.unique.len() + et.indexes.len();
        let Some(tparts) = map("tables", &obj) else {
            assert!(report.manual("table", &obj), "{ctx}: neither planned nor reported as manual");
            continue;
        };
        let introspected = find(&schema, &tparts);
        let exists = introspected.is_some() || relation_exists(&mut conn, &quote(target, &tparts)).await;
        if !exists {
            assert!(report.manual("table", &obj), "{ctx}: not on the target ({tparts}) and not a manual item");
            continue;
        }
        counts.get_mut("tables").unwrap()[1] += 1;
        // A partition on PostgreSQL: its columns and keys come from the
        // parent (barge's catalog reader leaves them there); its indexes
        // are looked up in pg_indexes.
        let Some(t) = introspected.filter(|t| t.partition_of.is_none()) else {
            counts.get_mut("columns").unwrap()[1] += et.columns.len();
            for ix in et.unique.iter().chain(&et.indexes) {
                let (schema_name, table_name) = tparts.rsplit_once('.').unwrap_or(("public", &tparts));
                let sql = format!(
                    "SELECT 1 / (SELECT count(*)::int FROM pg_indexes WHERE schemaname = '{schema_name}' AND tablename = '{table_name}' AND indexdef LIKE '%({})%')",
                    lower(ix).join(", ")
                );
                assert!(conn.execute(&sql).await.is_ok(), "{ctx}: partition index {ix:?} missing");
                counts.get_mut("indexes").unwrap()[1] += 1;
            }
            continue;
        };
        for c in &et.columns {
            let col_obj = format!("{obj}.{c}");
            let mapped = map("columns", &col_obj).unwrap_or_else(|| c.to_lowercase());
            if t.column(&mapped).is_some() {
                counts.get_mut("columns").unwrap()[1] += 1;
            } else {
                assert!(report.manual("column", &col_obj), "{ctx}: column {c} missing and not a manual item");
            }
        }
        let got_pk = t.primary_key.as_ref().map(|k| lower(&k.columns)).unwrap_or_default();
        if !et.primary_key.is_empty() && got_pk != lower(&et.primary_key) {
            assert!(report.manual("constraint", &format!("{obj} primary key")), "{ctx}: primary key {:?} missing (got {got_pk:?})", et.primary_key);
        }
        for fk in &et.foreign_keys {
            let want = lower(&fk.columns);
            let rname = fk.ref_table.rsplit('.').next().unwrap().to_lowercase();
            let present = t.foreign_keys.iter().any(|f| lower(&f.columns) == want && f.ref_table.name.eq_ignore_ascii_case(&rname));
            if present {
                counts.get_mut("foreign keys").unwrap()[1] += 1;
            } else {
                let prefix = format!("{obj}({}) → ", fk.columns.join(", "));
                assert!(report.manual_where("foreign key", |o| o.starts_with(&prefix)), "{ctx}: foreign key {want:?} → {rname} missing and not a manual item");
            }
        }
        let have = key_lists(t);
        for ix in et.unique.iter().chain(&et.indexes) {
            let want = lower(ix);
            if want.iter().any(|c| c == "expr") || have.contains(&want) || (t.primary_key.as_ref().is_some_and(|k| lower(&k.columns) == want)) {
                counts.get_mut("indexes").unwrap()[1] += 1;
            } else {
                let prefix = format!("{obj}.");
                let reported = report.manual_where("index", |o| o.starts_with(&prefix)) || report.manual_where("constraint", |o| o.starts_with(&format!("{obj} ")));
                assert!(reported, "{ctx}: index {want:?} missing and not a manual item; target has {have:?}");
            }
        }
    }
    for v in &exp.view {
        let obj = match &v.schema {
            Some(s) => format!("{s}.{}", v.name),
            None => v.name.clone(),
        };
        let tparts = map("tables", &obj).unwrap_or_else(|| v.name.to_lowercase());
        if !relation_exists(&mut conn, &quote(target, &tparts)).await {
            assert!(report.manual("view", &obj), "{ctx}: view {obj} missing and not a manual item");
        }
    }

    // 2. Whatever the report calls converted exists on the target.
    for ((kind, object), status) in &report.worst {
        if status == "manual" {
            continue;
        }
        match kind.as_str() {
            "table" | "view" => {
                let tparts = map("tables", object).unwrap_or_else(|| panic!("{ctx}: {kind} {object} is converted but has no target name"));
                assert!(relation_exists(&mut conn, &quote(target, &tparts)).await, "{ctx}: {kind} {object} is reported converted but {tparts} is not on the target");
            }
            "column" => {
                let Some((table, col)) = object.rsplit_once('.') else { continue };
                let Some(tparts) = map("tables", table) else { panic!("{ctx}: column {object}: its table has no target name") };
                let mapped = map("columns", object).unwrap_or_else(|| col.to_lowercase());
                match find(&schema, &tparts) {
                    Some(t) => assert!(t.column(&mapped).is_some(), "{ctx}: column {object} is reported converted but {tparts}.{mapped} is missing"),
                    None => assert!(relation_exists(&mut conn, &quote(target, &tparts)).await, "{ctx}: column {object}: table {tparts} missing"),
                }
            }
            "foreign key" => {
                let (head, _) = object.split_once(" → ").unwrap();
                let (table, cols) = head.split_once('(').unwrap();
                let cols: Vec<String> = cols.trim_end_matches(')').split(", ").map(|c| map("columns", &format!("{table}.{c}")).unwrap_or_else(|| c.to_lowercase())).collect();
                let tparts = map("tables", table).unwrap();
                let t = find(&schema, &tparts).unwrap_or_else(|| panic!("{ctx}: foreign key {object}: table {tparts} not read back"));
                assert!(t.foreign_keys.iter().any(|f| lower(&f.columns) == lower(&cols)), "{ctx}: foreign key {object} is reported converted but missing on the target");
            }
            "index" => {
                let Some((table, label)) = object.rsplit_once('.') else { continue };
                let Some(tparts) = map("tables", table) else { continue };
                // Indexes of materialized views: the view exists (checked above).
                let Some(t) = find(&schema, &tparts) else { continue };
                let name = map("indexes", &format!("{table}:{label}")).unwrap_or_else(|| label.to_lowercase());
                // A partition's index attached to its parent's: barge's
                // catalog reader shows it on the parent; pg_indexes has it.
                if t.partition_of.is_some() {
                    let sql = format!("SELECT 1 / (SELECT count(*)::int FROM pg_indexes WHERE indexname = '{name}')");
                    assert!(conn.execute(&sql).await.is_ok(), "{ctx}: index {object} is reported converted but {name} is not on {tparts}");
                    continue;
                }
                let present = t.indexes.iter().any(|i| i.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&name)))
                    || t.uniques.iter().any(|u| u.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&name)));
                assert!(present, "{ctx}: index {object} is reported converted but {name} is not on {tparts}");
            }
            _ => {}
        }
    }
    drop(conn);
    db.drop_db().await;
    let line = counts.iter().map(|(k, [s, t])| format!("{k} {t}/{s}")).collect::<Vec<_>>().join(", ");
    eprintln!("FIGURES {ctx}: {line}");
}

macro_rules! pairs {
    ($($name:ident: $fixture:literal, $from:literal, $target:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                check_pair($fixture, $from, $target).await;
            }
        )*
    };
}

pairs! {
    sqlite_media_to_postgres: "sqlite_media", "sqlite", Engine::Postgres;
    sqlite_media_to_mysql: "sqlite_media", "sqlite", Engine::Mysql;
    sqlite_media_to_sqlite: "sqlite_media", "sqlite", Engine::Sqlite;
    postgres_events_to_postgres: "postgres_events", "postgres", Engine::Postgres;
    postgres_events_to_mysql: "postgres_events", "postgres", Engine::Mysql;
    postgres_events_to_sqlite: "postgres_events", "postgres", Engine::Sqlite;
    mysql_crm_to_postgres: "mysql_crm", "mysql", Engine::Postgres;
    mysql_crm_to_mysql: "mysql_crm", "mysql", Engine::Mysql;
    mysql_crm_to_sqlite: "mysql_crm", "mysql", Engine::Sqlite;
    mssql_hr_to_postgres: "mssql_hr", "mssql", Engine::Postgres;
    mssql_hr_to_mysql: "mssql_hr", "mssql", Engine::Mysql;
    mssql_hr_to_sqlite: "mssql_hr", "mssql", Engine::Sqlite;
    oracle_billing_to_postgres: "oracle_billing", "oracle", Engine::Postgres;
    oracle_billing_to_mysql: "oracle_billing", "oracle", Engine::Mysql;
    oracle_billing_to_sqlite: "oracle_billing", "oracle", Engine::Sqlite;
}
