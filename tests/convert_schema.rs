//! convert-schema end to end: every source dialect × every target, the
//! converted DDL executed on the real target, then the target's catalog
//! read back and compared with what the fixture defines.

use crate::support;


use barge::endpoint::Role;
use barge::model::{ColumnType, Schema, Table};
use support::*;

#[derive(serde::Deserialize)]
struct Expect {
    table: Vec<ExpectTable>,
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
    foreign_keys: Vec<toml::Value>,
}

fn expect(dialect: &str) -> Expect {
    let text = std::fs::read_to_string(fixture(&format!("ddl/{dialect}.expect.toml"))).unwrap();
    toml::from_str(&text).unwrap()
}

fn find<'a>(schema: &'a Schema, name: &str) -> Option<&'a Table> {
    schema.tables.iter().find(|t| t.name.name.eq_ignore_ascii_case(name))
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.to_lowercase()).collect()
}

/// Converts `source`'s fixture for `target`, runs it there, and checks
/// tables, columns, keys and indexes. Returns the target schema and report.
async fn convert_and_check(source: &str, target: Engine) -> (Schema, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.sql");
    let report = dir.path().join("report.json");
    run_ok(barge().args(["convert-schema", "--from", source, "--to", target.name()]).arg(fixture(&format!("ddl/{source}.sql"))).arg("-o").arg(&out).arg("--report").arg(&report));
    let ddl = std::fs::read_to_string(&out).unwrap();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();

    let db = TestDb::new(target, &format!("cs_{source}_{}", target.name())).await;
    let mut conn = db.connect(Role::Target).await;
    if let Err(e) = conn.execute(&ddl).await {
        panic!("{source} → {}: converted DDL failed on the real target: {e}\n--- DDL ---\n{ddl}", target.name());
    }
    let schema = conn.introspect().await.expect("introspect target");
    drop(conn);
    db.drop_db().await;

    let manual_index_items = |table: &str| -> usize {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "index" && i["status"] == "manual")
            .filter(|i| i["object"].as_str().unwrap_or("").to_lowercase().contains(&table.to_lowercase()))
            .count()
    };
    let exp = expect(source);
    assert_eq!(schema.tables.len(), exp.table.len(), "{source} → {}: table count; got {:?}", target.name(), schema.tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>());
    for et in &exp.table {
        let ctx = format!("{source} → {}: table {}.{}", target.name(), et.schema.as_deref().unwrap_or(""), et.name);
        let t = find(&schema, &et.name).unwrap_or_else(|| panic!("{ctx}: missing on the target"));
        let got: Vec<String> = t.columns.iter().map(|c| c.name.to_lowercase()).collect();
        assert_eq!(got, lower(&et.columns), "{ctx}: columns");
        let pk = t.primary_key.as_ref().map(|k| lower(&k.columns)).unwrap_or_default();
        assert_eq!(pk, lower(&et.primary_key), "{ctx}: primary key");
        assert_eq!(t.foreign_keys.len(), et.foreign_keys.len(), "{ctx}: foreign keys");
        let uniques = t.uniques.len() + t.indexes.iter().filter(|i| i.unique).count();
        let plain = t.indexes.iter().filter(|i| !i.unique).count();
        let manual = manual_index_items(&et.name);
        assert!(uniques + plain + manual >= et.unique.len() + et.indexes.len(), "{ctx}: indexes: {uniques} unique + {plain} plain + {manual} reported, expected {} + {}", et.unique.len(), et.indexes.len());
        for u in &et.unique {
            if u.iter().any(|c| c == "expr") {
                continue;
            }
            let want = lower(u);
            let enforced = t.uniques.iter().any(|k| lower(&k.columns) == want)
                || t.indexes.iter().any(|i| i.unique && i.parts.iter().map(|p| key_column(&p.key)).collect::<Vec<_>>() == want);
            assert!(enforced || manual > 0, "{ctx}: unique {want:?} not enforced and not reported");
        }
    }
    (schema, report)
}

/// An index part as a column name; `lower(col)` (how a case-insensitive
/// unique key is kept on PostgreSQL) counts as the column.
fn key_column(k: &barge::model::IndexKey) -> String {
    match k {
        barge::model::IndexKey::Column(c) => c.to_lowercase(),
        barge::model::IndexKey::Expression(e) => {
            let flat: String = e.sql.chars().filter(|c| !matches!(c, '"' | '`' | ' ')).collect::<String>().to_lowercase();
            match flat.trim_start_matches('(').strip_prefix("lower(").map(|r| r.trim_end_matches(')')) {
                Some(c) if c.chars().all(|c| c.is_alphanumeric() || c == '_') => c.to_string(),
                _ => "expr".into(),
            }
        }
    }
}

fn col<'a>(s: &'a Schema, table: &str, column: &str) -> &'a ColumnType {
    &find(s, table).unwrap_or_else(|| panic!("table {table}")).columns.iter().find(|c| c.name.eq_ignore_ascii_case(column)).unwrap_or_else(|| panic!("{table}.{column}")).ty
}

macro_rules! pair {
    ($name:ident, $src:literal, $tgt:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (schema, report) = convert_and_check($src, $tgt).await;
            type_checks($src, $tgt, &schema);
            assert!(report["summary"]["automatic_percent"].as_f64().unwrap() > 80.0);
        }
    };
}

/// The mappings a DBA would check first, per pair.
fn type_checks(source: &str, target: Engine, s: &Schema) {
    use ColumnType as T;
    match (source, target) {
        ("mysql", Engine::Postgres) => {
            assert_eq!(col(s, "addresses", "is_default"), &T::Bool, "tinyint(1) → boolean");
            assert_eq!(col(s, "audit_log", "row_id"), &T::Decimal { precision: Some(20), scale: Some(0) }, "bigint unsigned → numeric(20)");
            assert_eq!(col(s, "order_items", "unit_price"), &T::Decimal { precision: Some(20), scale: Some(6) });
            assert!(matches!(col(s, "addresses", "kind"), T::Enum { name: Some(_), values } if values == &["billing", "shipping"]), "enum → CREATE TYPE");
            assert!(matches!(col(s, "customers", "legacy_created"), T::Timestamp { tz: false, .. }));
            let legacy = find(s, "customers").unwrap().columns.iter().find(|c| c.name == "legacy_created").unwrap();
            assert!(legacy.nullable && legacy.default.is_none(), "zero-date default dropped, NOT NULL relaxed");
        }
        ("mysql", Engine::Mysql) => {
            assert_eq!(col(s, "audit_log", "row_id"), &T::Int { bits: 64, unsigned: true });
        }
        ("postgres", Engine::Postgres) | ("postgres", Engine::Mysql) => {
            // A case-sensitive collation on a unique text column stays so.
            let want = if target == Engine::Postgres { "C" } else { "utf8mb4_bin" };
            let got = col(s, "invoices", "invoice_no").text_attrs().and_then(|a| a.collation.clone());
            assert_eq!(got.as_deref(), Some(want), "COLLATE \"C\" on the target");
        }
        ("mssql", Engine::Postgres) => {
            assert_eq!(col(s, "vehicles", "vehicleguid"), &T::Uuid);
            assert_eq!(col(s, "vehicles", "purchaseprice"), &T::Decimal { precision: Some(19), scale: Some(4) }, "money → numeric(19,4)");
            assert_eq!(col(s, "vehicles", "isactive"), &T::Bool);
        }
        ("oracle", Engine::Postgres) => {
            assert_eq!(col(s, "depots", "id"), &T::Int { bits: 64, unsigned: false }, "NUMBER(10,0) → bigint");
            assert!(matches!(col(s, "drivers", "hired_on"), T::Timestamp { precision: Some(0), tz: false }), "DATE → timestamp(0)");
        }
        _ => {}
    }
}

pair!(mysql_to_postgres, "mysql", Engine::Postgres);
pair!(mysql_to_mysql, "mysql", Engine::Mysql);
pair!(mysql_to_sqlite, "mysql", Engine::Sqlite);
pair!(postgres_to_postgres, "postgres", Engine::Postgres);
pair!(postgres_to_mysql, "postgres", Engine::Mysql);
pair!(postgres_to_sqlite, "postgres", Engine::Sqlite);
pair!(sqlite_to_postgres, "sqlite", Engine::Postgres);
pair!(sqlite_to_mysql, "sqlite", Engine::Mysql);
pair!(sqlite_to_sqlite, "sqlite", Engine::Sqlite);
pair!(mssql_to_postgres, "mssql", Engine::Postgres);
pair!(mssql_to_mysql, "mssql", Engine::Mysql);
pair!(mssql_to_sqlite, "mssql", Engine::Sqlite);
pair!(oracle_to_postgres, "oracle", Engine::Postgres);
pair!(oracle_to_mysql, "oracle", Engine::Mysql);
pair!(oracle_to_sqlite, "oracle", Engine::Sqlite);

#[test]
fn every_fixture_statement_is_accounted_for() {
    // Nothing silently dropped: every routine and view of the fixture shows
    // up in the report, and INSERTs are counted.
    for src in ["mysql", "postgres", "sqlite", "mssql", "oracle"] {
        let text = std::fs::read_to_string(fixture(&format!("ddl/{src}.expect.toml"))).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        let counts = &v["counts"];
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        run_ok(barge().args(["convert-schema", "--from", src, "--to", "postgres"]).arg(fixture(&format!("ddl/{src}.sql"))).arg("-o").arg(dir.path().join("o.sql")).arg("--report").arg(&report));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let items = r["items"].as_array().unwrap();
        let routines = items.iter().filter(|i| i["kind"] == "routine").count() as i64;
        let views = items.iter().filter(|i| i["kind"] == "view").count() as i64;
        assert_eq!(routines, counts["routines"].as_integer().unwrap(), "{src}: routines flagged");
        assert_eq!(views, counts["views"].as_integer().unwrap(), "{src}: views");
        assert!(items.iter().filter(|i| i["kind"] == "routine").all(|i| i["status"] == "manual" && i["code"] == "B170"));
        let inserts = r["summary"]["skipped_statements"]["B010"].as_i64().unwrap_or(0);
        assert!(inserts >= counts["inserts"].as_integer().unwrap(), "{src}: inserts counted ({inserts})");
    }
}

/// View operators one engine has and others spell differently give the
/// source's rows on every copy: MySQL's `DIV` (an integer, truncated
/// toward zero) and PostgreSQL's `ILIKE` (any case, whatever the
/// target's collation). Both used to be copied verbatim and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn div_and_ilike_in_views_give_the_sources_rows_on_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "mysql",
            "CREATE TABLE f (id int PRIMARY KEY, len int);\nCREATE VIEW v AS SELECT id, len DIV 60 AS h, (0 - len) DIV 60 AS n FROM f;\n",
            "INSERT INTO f VALUES (1, 86)",
            "SELECT h, n FROM v",
            ["1", "-1"],
        ),
        (
            "postgres",
            "CREATE TABLE f (id int PRIMARY KEY, title varchar(20));\nCREATE VIEW v AS SELECT id FROM f WHERE title ILIKE 'abc%' AND title NOT ILIKE '%zz';\n",
            "INSERT INTO f VALUES (1, 'ABC d'), (2, 'abczz'), (3, 'x')",
            "SELECT COUNT(*), MIN(id) FROM v",
            ["1", "1"],
        ),
    ];
    for (source, ddl, insert, select, want) in cases {
        let input = dir.path().join(format!("{source}.sql"));
        std::fs::write(&input, ddl).unwrap();
        for target in [Engine::Postgres, Engine::Mysql, Engine::Sqlite] {
            if target.name() == source {
                continue;
            }
            let out = dir.path().join(format!("{source}-{}.sql", target.name()));
            run_ok(barge().args(["convert-schema", "--from", source, "--to", target.name()]).arg(&input).arg("-o").arg(&out));
            let converted = std::fs::read_to_string(&out).unwrap();
            let db = TestDb::new(target, &format!("ops_{source}_{}", target.name())).await;
            let mut conn = db.connect(Role::Target).await;
            conn.execute(&converted).await.unwrap_or_else(|e| panic!("{source} → {}: {e}\n{converted}", target.name()));
            conn.execute(insert).await.unwrap();
            drop(conn);
            let got = db.query_row(select).await;
            assert_eq!(got, want.map(|w| Some(w.to_string())).to_vec(), "{source} → {}: the view's rows\n{converted}", target.name());
            db.drop_db().await;
        }
    }
}
