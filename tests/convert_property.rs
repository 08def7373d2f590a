//! Property test: a random valid CREATE TABLE (random types, defaults,
//! keys, checks, an index, reserved-word names) in each source dialect is
//! converted for each target, checked there, and the output is run on the
//! real target. It must run whole, and every table the report does not
//! call manual must be there.

use crate::support;

use barge::db::Db;
use barge::endpoint::{Endpoint, Role};
use barge::model::Dialect;
use barge::schema::convert::ConvertOptions;
use barge::schema::naming::NamingOptions;
use barge::schema::rules::RuleSet;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::*;

/// Column types as each dialect's dumps write them, with a default that
/// fits (or none).
fn types(d: Dialect) -> &'static [(&'static str, Option<&'static str>)] {
    match d {
        Dialect::Mysql => &[
            ("int", Some("0")), ("bigint unsigned", None), ("tinyint(1)", Some("'1'")), ("decimal(10,2)", Some("'0.00'")),
            ("varchar(40)", Some("'x'")), ("text", None), ("datetime", Some("CURRENT_TIMESTAMP")), ("date", None),
            ("timestamp", None), ("json", None), ("enum('a','b')", Some("'a'")), ("double", None), ("blob", None),
            ("char(3)", Some("'abc'")), ("bit(1)", Some("b'0'")), ("smallint unsigned", Some("'7'")),
        ],
        Dialect::Postgres => &[
            ("integer", Some("0")), ("bigint", None), ("numeric(12,3)", Some("0")), ("text", Some("'x'::text")),
            ("character varying(30)", Some("'y'::character varying")), ("boolean", Some("false")), ("timestamp with time zone", Some("now()")),
            ("date", Some("CURRENT_DATE")), ("jsonb", Some("'{}'::jsonb")), ("uuid", None), ("bytea", Some("'\\x00'::bytea")),
            ("integer[]", Some("'{}'::integer[]")), ("real", None), ("interval", None), ("inet", None), ("smallint", Some("1")),
        ],
        Dialect::Sqlite => &[
            ("INTEGER", Some("0")), ("TEXT", Some("'x'")), ("REAL", None), ("BLOB", None), ("NUMERIC", Some("1.5")),
            ("VARCHAR(20)", Some("'y'")), ("UNSIGNED BIG INT", None), ("DATETIME", Some("CURRENT_TIMESTAMP")),
            ("BOOLEAN", Some("1")), ("NATIVE CHARACTER(10)", None), ("", None), ("DECIMAL(10,5)", Some("0")),
        ],
        Dialect::Mssql => &[
            ("[int]", Some("((0))")), ("[bigint]", None), ("[nvarchar](50)", Some("(N'x')")), ("[nvarchar](max)", None),
            ("[decimal](12, 2)", Some("((0))")), ("[money]", None), ("[bit]", Some("((1))")), ("[datetime2](7)", Some("(sysdatetime())")),
            ("[date]", None), ("[uniqueidentifier]", Some("(newid())")), ("[varbinary](max)", None), ("[float]", None), ("[tinyint]", None),
        ],
        Dialect::Oracle => &[
            ("NUMBER(10,0)", Some("0")), ("NUMBER(12,2)", None), ("VARCHAR2(40 BYTE)", Some("'x'")), ("NVARCHAR2(20)", None),
            ("CLOB", None), ("DATE", Some("SYSDATE")), ("TIMESTAMP (6)", Some("SYSTIMESTAMP")), ("BLOB", None), ("INTEGER", Some("1")),
            ("DECIMAL(8,3)", Some("0")), ("FLOAT(126)", None), ("RAW(16)", None), ("CHAR(1 BYTE)", Some("'Y'")),
        ],
    }
}

const NAMES: &[&str] = &["id", "order", "group", "user", "select", "Value", "desc", "CamelCase", "with space", "key", "amount", "from", "x1", "to", "limit", "check"];

fn quote(d: Dialect, n: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{n}`"),
        Dialect::Mssql => format!("[{n}]"),
        Dialect::Oracle => format!("\"{}\"", n.to_uppercase()),
        _ => format!("\"{n}\""),
    }
}

#[derive(Debug, Clone)]
struct Case {
    table: String,
    columns: Vec<(usize, usize, bool, bool)>, // name, type, not null, with default
    pk: bool,
    unique_second: bool,
    index_last: bool,
    check_first: bool,
}

fn case(d: Dialect) -> impl Strategy<Value = Case> {
    let n = types(d).len();
    (
        prop::sample::select(&["t", "Orders", "user", "select", "line items", "T2"][..]),
        prop::collection::vec((0..NAMES.len(), 0..n, any::<bool>(), any::<bool>()), 1..7),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(table, mut columns, pk, unique_second, index_last, check_first)| {
            let mut seen = std::collections::HashSet::new();
            columns.retain(|c| seen.insert(NAMES[c.0].to_lowercase()));
            Case { table: table.to_string(), columns, pk, unique_second, index_last, check_first }
        })
}

fn render(d: Dialect, c: &Case) -> String {
    let tys = types(d);
    let mut items = Vec::new();
    for (i, (name, ty, not_null, with_default)) in c.columns.iter().enumerate() {
        let (t, default) = tys[*ty];
        let mut s = format!("{} {t}", quote(d, NAMES[*name]));
        if let (true, Some(v)) = (*with_default, default) {
            s.push_str(&format!(" DEFAULT {v}"));
        }
        if *not_null || (c.pk && i == 0) {
            s.push_str(" NOT NULL");
        }
        items.push(s);
    }
    let first = quote(d, NAMES[c.columns[0].0]);
    // Keys on types that can be keys everywhere the source allows.
    let keyable = |i: usize| !matches!(tys[c.columns[i].1].0, "text" | "json" | "jsonb" | "blob" | "BLOB" | "CLOB" | "[nvarchar](max)" | "[varbinary](max)" | "integer[]" | "");
    if c.pk && keyable(0) {
        items.push(format!("PRIMARY KEY ({first})"));
    }
    if c.unique_second && c.columns.len() > 1 && keyable(1) {
        items.push(format!("UNIQUE ({})", quote(d, NAMES[c.columns[1].0])));
    }
    let numeric = ["int", "integer", "INTEGER", "[int]", "NUMBER(10,0)", "bigint", "smallint", "[bigint]"];
    if c.check_first && numeric.contains(&tys[c.columns[0].1].0) {
        items.push(format!("CHECK ({first} >= 0)"));
    }
    let table = quote(d, &c.table);
    let mut sql = format!("CREATE TABLE {table} (\n  {}\n)", items.join(",\n  "));
    sql.push_str(match d {
        Dialect::Mysql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n",
        Dialect::Mssql => "\nGO\n",
        _ => ";\n",
    });
    let last = c.columns.len() - 1;
    if c.index_last && keyable(last) {
        let ix = quote(d, "ix_prop");
        sql.push_str(&format!("CREATE INDEX {ix} ON {table} ({});\n", quote(d, NAMES[c.columns[last].0])));
        if d == Dialect::Mssql {
            sql.push_str("GO\n");
        }
    }
    sql
}

/// Runs the converted script on a fresh place on the target and says
/// whether the table is there; everything is undone afterwards.
async fn run_on(target: Dialect, db: &mut Db, ddl: &str, table_sql: &str) -> Result<bool, String> {
    match target {
        Dialect::Postgres => {
            db.execute("BEGIN").await.map_err(|e| e.to_string())?;
            let ran = db.execute(ddl).await.map_err(|e| e.to_string());
            let there = db.execute(&format!("SELECT * FROM {table_sql} WHERE 1 = 0")).await.is_ok();
            db.execute("ROLLBACK").await.map_err(|e| e.to_string())?;
            ran.map(|_| there)
        }
        Dialect::Mysql => {
            db.execute("DROP DATABASE IF EXISTS barge_prop").await.map_err(|e| e.to_string())?;
            db.execute("CREATE DATABASE barge_prop CHARACTER SET utf8mb4").await.map_err(|e| e.to_string())?;
            db.execute("USE barge_prop").await.map_err(|e| e.to_string())?;
            let ran = db.execute(ddl).await.map_err(|e| e.to_string());
            let there = db.execute(&format!("SELECT * FROM {table_sql} WHERE 1 = 0")).await.is_ok();
            db.execute("DROP DATABASE barge_prop").await.map_err(|e| e.to_string())?;
            ran.map(|_| there)
        }
        _ => {
            let mut mem = Db::connect(&Endpoint::parse("sqlite::memory:").unwrap(), Role::Target).await.map_err(|e| e.to_string())?;
            let ran = mem.execute(ddl).await.map_err(|e| e.to_string());
            let there = mem.execute(&format!("SELECT * FROM {table_sql} WHERE 1 = 0")).await.is_ok();
            ran.map(|_| there)
        }
    }
}

#[test]
fn random_tables_run_on_every_target_or_are_reported() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pg = rt.block_on(TestDb::new(Engine::Postgres, "prop_pg"));
    let my = rt.block_on(TestDb::new(Engine::Mysql, "prop_my"));
    let pg_conn = std::cell::RefCell::new(rt.block_on(pg.connect(Role::Target)));
    let my_conn = std::cell::RefCell::new(rt.block_on(my.connect(Role::Target)));
    for source in Dialect::ALL {
        let mut runner = TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() });
        let result = runner.run(&case(source), |c| {
            let sql = render(source, &c);
            for target in Dialect::TARGETS {
                let opts = ConvertOptions { source, target, rules: RuleSet::load(source, target, &[], &[]).unwrap(), naming: NamingOptions::default() };
                let mut out = barge::schema::convert_script(&sql, "prop", &opts);
                let url = match target {
                    Dialect::Postgres => Some(&pg.url),
                    Dialect::Mysql => Some(&my.url),
                    _ => None,
                };
                if let Some(u) = url {
                    out.check_against(u).map_err(|e| TestCaseError::fail(format!("check failed: {e}")))?;
                }
                let report = &out.converted.report;
                let table_manual = report.items.iter().any(|i| i.kind == barge::schema::report::ObjectKind::Table && i.status == barge::schema::report::Status::Manual);
                let table_sql = out.converted.target.tables.first().map(|t| t.sql_name.clone());
                let mut conn = match target {
                    Dialect::Postgres => pg_conn.borrow_mut(),
                    _ => my_conn.borrow_mut(),
                };
                let ran = rt.block_on(run_on(target, &mut conn, &out.ddl, table_sql.as_deref().unwrap_or("missing_table")));
                match ran {
                    Ok(there) => prop_assert!(there || table_manual, "{source} → {target}: the table is neither created nor reported as manual\n{sql}\n---\n{}", out.ddl),
                    Err(e) => prop_assert!(false, "{source} → {target}: the checked output failed on the target: {e}\n{sql}\n---\n{}", out.ddl),
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{source}: {e}");
        }
    }
    drop(pg_conn);
    drop(my_conn);
    rt.block_on(pg.drop_db());
    rt.block_on(my.drop_db());
}
