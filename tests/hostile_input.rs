//! Hostile input never panics: random bytes and text, token soup,
//! truncated dumps, huge identifiers and deeply nested expressions all end
//! in converted output or report items, never a crash.

mod support;

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
    }
}
