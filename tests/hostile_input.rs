//! Hostile input never panics: random bytes and text, token soup,
//! truncated dumps, huge identifiers and deeply nested expressions all end
//! in converted output or report items, never a crash.

use crate::support;

use barge::model::Dialect;
use barge::schema::convert::ConvertOptions;
use barge::schema::naming::NamingOptions;
use barge::schema::rules::RuleSet;
use proptest::prelude::*;
use support::*;

fn convert_everywhere(text: &str) {
    for source in Dialect::ALL {
        for target in Dialect::TARGETS {
            let opts = ConvertOptions { source, target, rules: RuleSet::load(source, target, &[], &[]).unwrap(), naming: NamingOptions::default() };
            let out = barge::schema::convert_script(text, "fuzz", &opts);
            // Whatever happened is in the report or the output.
            let _ = out.converted.report.to_markdown();
            let _ = out.converted.report.to_json();
        }
    }
}

const WORDS: &[&str] = &[
    "CREATE", "TABLE", "INDEX", "VIEW", "ALTER", "ADD", "CONSTRAINT", "PRIMARY", "KEY", "FOREIGN", "REFERENCES", "UNIQUE",
    "CHECK", "DEFAULT", "NOT", "NULL", "GENERATED", "ALWAYS", "AS", "IDENTITY", "AUTO_INCREMENT", "ON", "DELETE", "CASCADE",
    "int", "varchar(10)", "NUMBER(*,0)", "enum('a','b')", "[nvarchar](max)", "`x`", "\"y\"", "[z]", "(", ")", ",", ";", "'", "''",
    "/*!40101", "*/", "--", "\n", "GO", "/", "DELIMITER ;;", ";;", "$$", "BEGIN", "END", "COPY t FROM stdin", "\\.", "WITH", "USING",
    "INCLUDE", "WHERE", "PARTITION BY", "ENABLE", "NOVALIDATE", "BYTE", "CHAR", "1", "-1", "99999999999999999999999", "0x1F", "b'1'",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,400}") {
        convert_everywhere(&s);
    }

    #[test]
    fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(WORDS), 0..120)) {
        convert_everywhere(&words.join(" "));
    }

    #[test]
    fn truncated_dumps_never_panic(cut in 0usize..40_000, which in 0usize..5) {
        let name = ["mysql", "postgres", "sqlite", "mssql", "oracle"][which];
        let text = std::fs::read_to_string(fixture(&format!("ddl/{name}.sql"))).unwrap();
        let mut end = cut.min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        convert_everywhere(&text[..end]);
    }
}

#[test]
fn deep_nesting_and_huge_identifiers_are_reported_not_fatal() {
    let deep = format!("CREATE TABLE t (a int DEFAULT {}1{}, b int CHECK ({}b > 0{}));", "(".repeat(5000), ")".repeat(5000), "(".repeat(3000), ")".repeat(3000));
    convert_everywhere(&deep);
    let long = "x".repeat(100_000);
    let huge = format!("CREATE TABLE {long} ({long} int PRIMARY KEY, y varchar(10)); CREATE INDEX {long}_i ON {long} (y);");
    convert_everywhere(&huge);
    // The long names are cut to the target's limit, deterministically.
    let opts = ConvertOptions { source: Dialect::Postgres, target: Dialect::Postgres, rules: RuleSet::load(Dialect::Postgres, Dialect::Postgres, &[], &[]).unwrap(), naming: NamingOptions::default() };
    let out = barge::schema::convert_script(&huge, "huge", &opts);
    let t = &out.converted.target.tables[0];
    assert!(t.name.last().unwrap().len() <= 63);
    assert!(t.columns[0].name.len() <= 63);
}

#[test]
fn the_binary_survives_random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sql");
    let mut bytes = Vec::new();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 24) as u8);
    }
    std::fs::write(&path, &bytes).unwrap();
    for from in ["mysql", "postgres", "sqlite", "mssql", "oracle"] {
        let out = run(barge().args(["convert-schema", "--from", from, "--to", "postgres"]).arg(&path));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("not valid UTF-8"), "the user is told about the encoding: {stderr}");
        // Nothing in it is SQL: one clear error, no pile of commented garbage.
        assert_eq!(out.status.code(), Some(2), "random bytes are not a schema: {stderr}");
        assert!(stderr.contains("nothing to convert"), "{stderr}");
        assert!(out.stdout.is_empty(), "no output for input that is not DDL");
    }
}

#[test]
fn text_that_is_not_ddl_is_refused_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("notes.txt", "Meeting notes\nWe agreed to migrate in Q3; nobody objected.\n"), ("data.csv", "id,name\n1,ann\n2,bob\n"), ("empty.sql", "")] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = run(barge().args(["convert-schema", "--from", "mysql", "--to", "postgres"]).arg(&path));
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert_eq!(stderr(&out).matches("error").count(), 1, "{name}: one message: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{name}");
    }
}

/// Text barge keeps as comments (statements it cannot convert) is split on
/// every line terminator a target knows: a bare CR ends a `--` comment on
/// PostgreSQL, and what follows it would run.
#[test]
fn kept_text_never_escapes_its_comment() {
    let payloads = [
        "FROBNICATE everything\rCREATE TABLE injected (x int);",
        "FROBNICATE everything\r\nCREATE TABLE injected (x int);",
        "FROBNICATE everything\nCREATE TABLE injected (x int);",
        "FROBNICATE everything\u{0}\rCREATE TABLE injected (x int);",
    ];
    for p in payloads {
        for source in Dialect::ALL {
            for target in Dialect::TARGETS {
                let opts = ConvertOptions { source, target, rules: RuleSet::load(source, target, &[], &[]).unwrap(), naming: NamingOptions::default() };
                let input = format!("CREATE TABLE ok (id int);\n{p}\n");
                let out = barge::schema::convert_script(&input, "evil\rCREATE TABLE injected2 (x int);", &opts);
                for line in out.ddl.split(['\r', '\n']) {
                    if line.contains("injected") {
                        assert!(line.starts_with("--"), "{source} → {target}: kept text escaped its comment: {line:?}\n{}", out.ddl);
                    }
                }
                assert!(!out.ddl.contains('\0'), "{source} → {target}: NUL in the output");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_text_does_not_run_on_a_real_postgres() {
    let input = "CREATE TABLE ok (id int);\nFROBNICATE everything\rCREATE TABLE injected (x int);\n";
    let opts = ConvertOptions { source: Dialect::Postgres, target: Dialect::Postgres, rules: RuleSet::load(Dialect::Postgres, Dialect::Postgres, &[], &[]).unwrap(), naming: NamingOptions::default() };
    let out = barge::schema::convert_script(input, "evil.sql", &opts);
    let db = TestDb::new(Engine::Postgres, "kept_text").await;
    let mut conn = db.connect(barge::endpoint::Role::Target).await;
    conn.execute(&out.ddl).await.expect("the output runs");
    assert!(conn.execute("SELECT * FROM ok").await.is_ok());
    assert!(conn.execute("SELECT * FROM injected").await.is_err(), "text kept as a comment was executed:\n{}", out.ddl);
    drop(conn);
    db.drop_db().await;
}

fn convert(source: Dialect, target: Dialect, text: &str) -> barge::schema::ScriptConversion {
    let opts = ConvertOptions { source, target, rules: RuleSet::load(source, target, &[], &[]).unwrap(), naming: NamingOptions::default() };
    barge::schema::convert_script(text, "t.sql", &opts)
}

fn items<'a>(c: &'a barge::schema::ScriptConversion, code: &str) -> Vec<&'a barge::schema::report::Item> {
    c.converted.report.items.iter().filter(|i| i.code == code).collect()
}

#[test]
fn unterminated_strings_and_comments_are_named_with_their_line() {
    // A stray quote costs its own statement only; reading resumes after it.
    let text = "CREATE TABLE a (x int);\nCREATE TABLE b (y varchar(10) DEFAULT 'oops);\nCREATE TABLE c (z int);\n";
    for source in Dialect::ALL {
        let c = convert(source, Dialect::Postgres, text);
        let bad = items(&c, "B004");
        assert!(bad.iter().any(|i| i.line == 2 && i.message.contains("line 2") && i.object.ends_with('b')), "{source}: {:#?}", c.converted.report.items);
        let names: Vec<&str> = c.converted.target.tables.iter().map(|t| t.name.last().unwrap().as_str()).collect();
        assert!(names.contains(&"a") && names.contains(&"c"), "{source}: tables after the stray quote are read: {names:?}");
    }
    // An unterminated /* hides the rest of the file: what it hides is listed.
    let text = "CREATE TABLE a (x int);\n/* old version\nCREATE TABLE hidden (y int);\nCREATE INDEX hidden_i ON hidden (y);\n";
    let c = convert(Dialect::Mysql, Dialect::Postgres, text);
    let bad = items(&c, "B004");
    assert!(bad.iter().any(|i| i.line == 2 && i.message.contains("never closed")), "{bad:#?}");
    assert!(bad.iter().any(|i| i.object == "hidden" && i.status == barge::schema::report::Status::Manual), "{bad:#?}");
    assert_eq!(c.converted.target.tables.len(), 1);
    // The summary counts what the comment hides.
    let sum = c.converted.report.summary();
    assert_eq!(sum[&barge::schema::report::ObjectKind::Table].total, 2);
}

#[test]
fn legitimate_deep_nesting_converts_and_hostile_depth_is_reported() {
    // 500 nested CASE expressions: generated SQL does this.
    let mut e = "v".to_string();
    for i in 0..500 {
        e = format!("CASE WHEN v > {i} THEN {e} ELSE 0 END");
    }
    let text = format!("CREATE TABLE deep (v int, CONSTRAINT deep_ck CHECK (({e}) >= 0));");
    for source in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
        for target in Dialect::TARGETS {
            let c = convert(source, target, &text);
            let bad: Vec<_> = c.converted.report.items.iter().filter(|i| i.status == barge::schema::report::Status::Manual).collect();
            assert!(bad.is_empty(), "{source} → {target}: {bad:#?}");
            assert!(c.ddl.contains("deep_ck"), "{source} → {target}");
        }
    }
    // Far deeper than anything real: an error item, not a crash.
    let hostile = format!("CREATE TABLE t (a int CHECK ({}1{}));", "(".repeat(20_000), ")".repeat(20_000));
    let c = convert(Dialect::Postgres, Dialect::Postgres, &hostile);
    assert!(c.converted.report.items.iter().any(|i| i.status == barge::schema::report::Status::Manual), "{:#?}", c.converted.report.items);
}
