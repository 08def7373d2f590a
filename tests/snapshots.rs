//! Snapshot tests (insta) of converted DDL and of the assessment report,
//! one per source × target pair. A change in output shows up as a diff to
//! review: `cargo insta review`, or rerun with INSTA_UPDATE=always.

use crate::support;

use support::*;

fn convert(source: &str, target: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.sql");
    let report = dir.path().join("report.md");
    run_ok(
        barge()
            .current_dir(repo())
            .args(["convert-schema", "--from", source, "--to", target, &format!("fixtures/ddl/{source}.sql"), "-o"])
            .arg(&out)
            .arg("--report")
            .arg(&report),
    );
    (std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(report).unwrap())
}

macro_rules! snap {
    ($name:ident, $src:literal, $tgt:literal) => {
        #[test]
        fn $name() {
            let (ddl, report) = convert($src, $tgt);
            insta::assert_snapshot!(concat!(stringify!($name), "_ddl"), ddl);
            insta::assert_snapshot!(concat!(stringify!($name), "_report"), report);
        }
    };
}

snap!(mysql_postgres, "mysql", "postgres");
snap!(mysql_mysql, "mysql", "mysql");
snap!(mysql_sqlite, "mysql", "sqlite");
snap!(postgres_postgres, "postgres", "postgres");
snap!(postgres_mysql, "postgres", "mysql");
snap!(postgres_sqlite, "postgres", "sqlite");
snap!(sqlite_postgres, "sqlite", "postgres");
snap!(sqlite_mysql, "sqlite", "mysql");
snap!(sqlite_sqlite, "sqlite", "sqlite");
snap!(mssql_postgres, "mssql", "postgres");
snap!(mssql_mysql, "mssql", "mysql");
snap!(mssql_sqlite, "mssql", "sqlite");
snap!(oracle_postgres, "oracle", "postgres");
snap!(oracle_mysql, "oracle", "mysql");
snap!(oracle_sqlite, "oracle", "sqlite");
