//! `db::mysql` against the real MariaDB that `tests/run.sh` starts:
//! introspection agrees with the DDL reader on the same dump, and
//! connection failures come back as clear, password-free errors.

use crate::support::mysql_util;

use barge::db::mysql::MyConn;
use barge::endpoint::Role;
use barge::model::*;
use barge::schema::reader::read_script;
use barge::Error;
use mysql_async::prelude::Queryable;

use mysql_util::{retarget_dump, server};

const FIXTURE: &str = include_str!("../fixtures/ddl/mysql.sql");

async fn connect(db: &mysql_util::TestDb, query: &str) -> MyConn {
    MyConn::connect(&db.endpoint(query), Role::Target).await.unwrap_or_else(|e| panic!("connect: {e} ({:?})", e.hint()))
}

/// (a) The fixture dump, loaded into MariaDB and read back from the
/// catalog, gives the same model as reading the dump text, up to what
/// MariaDB itself rewrites (see `expected_from_dump`).
#[tokio::test]
async fn introspection_matches_the_ddl_reader_on_the_fixture_dump() {
    let s = server();
    let db = s.fresh_database("fixture");
    db.load(&retarget_dump(FIXTURE));

    let mut c = connect(&db, "").await;
    assert!(c.mariadb, "the test server is MariaDB: {}", c.version_string);
    assert_eq!(c.database, db.name);
    let got = c.introspect().await.unwrap();
    let want = expected_from_dump(read_script(FIXTURE, Dialect::Mysql).schema);

    assert_eq!(got.dialect, Some(Dialect::Mysql));
    let mut problems = Vec::new();
    compare_schemas(&want, &got, &mut problems);
    assert!(problems.is_empty(), "catalog and dump disagree:\n  {}", problems.join("\n  "));

    // Spot checks of what the comparison normalized away.
    let customers = got.table(&QualifiedName::bare("customers")).unwrap();
    let prefs = customers.column("preferences").unwrap();
    assert_eq!((prefs.ty.clone(), prefs.source_type.as_str()), (ColumnType::Json, "json"));
    assert!(customers.checks.is_empty(), "the json_valid check is not a check: {:?}", customers.checks);
    let page_views = got.table(&QualifiedName::bare("page_views")).unwrap();
    let part = page_views.options.partitioning.as_deref().unwrap_or("");
    assert!(part.starts_with("PARTITION BY RANGE (year(`viewed_at`))"), "{part}");
    assert!(part.contains("PARTITION `pmax` VALUES LESS THAN MAXVALUE"), "{part}");
    let audit = got.table(&QualifiedName::bare("audit_log")).unwrap();
    assert_eq!(audit.options.auto_increment_start, None, "AUTO_INCREMENT=1 is no start value");
    assert_eq!(got.tables[0].name, QualifiedName::bare("addresses"), "names are unqualified");
}

/// What MariaDB does to the dump on the way in, applied to the model read
/// from the dump text, so the rest of the comparison can be exact.
fn expected_from_dump(mut s: Schema) -> Schema {
    for t in &mut s.tables {
        // MariaDB stores JSON as longtext + CHECK (json_valid(col)); barge
        // reads that back as json, without the check.
        let json_cols: Vec<String> = t
            .checks
            .iter()
            .filter_map(|ch| {
                let inner = ch.expr.sql.strip_prefix("json_valid(`")?.strip_suffix("`)")?;
                Some(inner.to_string())
            })
            .collect();
        t.checks.retain(|ch| !ch.expr.sql.starts_with("json_valid(`"));
        let table_charset = t.options.charset.clone();
        for c in &mut t.columns {
            if json_cols.contains(&c.name) {
                c.ty = ColumnType::Json;
            }
            // `varchar(40) BINARY` is stored as the charset's _bin collation.
            if let Some(attrs) = c.ty.text_attrs_mut() {
                if attrs.collation.as_deref() == Some("binary") {
                    let cs = attrs.charset.clone().or(table_charset.clone()).unwrap_or_default();
                    attrs.collation = Some(format!("{cs}_bin"));
                    attrs.charset = Some(cs);
                }
            }
        }
        // InnoDB reports an unspecified action as RESTRICT.
        for fk in &mut t.foreign_keys {
            fk.on_delete = fk.on_delete.or(Some(RefAction::Restrict));
            fk.on_update = fk.on_update.or(Some(RefAction::Restrict));
        }
    }
    s
}

fn compare_schemas(want: &Schema, got: &Schema, p: &mut Vec<String>) {
    let names = |s: &Schema| s.tables.iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
    if names(want) != names(got) {
        p.push(format!("tables: dump {:?}, catalog {:?}", names(want), names(got)));
    }
    for w in &want.tables {
        let Some(g) = got.table(&w.name) else { continue };
        compare_tables(w, g, p);
    }
    let views = |s: &Schema| s.views.iter().map(|v| (v.name.to_string(), v.query.sql.clone())).collect::<Vec<_>>();
    if views(want) != views(got) {
        p.push(format!("views: dump {:#?}\ncatalog {:#?}", views(want), views(got)));
    }
    // Routine sources differ in form (the dump wraps them in /*!50003 */
    // comments); what must agree is which objects there are.
    let routines = |s: &Schema| {
        let mut v = s.routines.iter().map(|r| (r.kind, r.name.name.clone())).collect::<Vec<_>>();
        v.sort();
        v
    };
    if routines(want) != routines(got) {
        p.push(format!("routines: dump {:?}, catalog {:?}", routines(want), routines(got)));
    }
    for r in &got.routines {
        if !r.source.to_ascii_uppercase().contains(&r.name.name.to_ascii_uppercase()) || !r.source.starts_with("CREATE") {
            p.push(format!("routine {} has no usable source: {:?}", r.name, r.source));
        }
    }
}

fn compare_tables(w: &Table, g: &Table, p: &mut Vec<String>) {
    let t = &w.name;
    let mut diff = |what: &str, a: String, b: String| {
        if a != b {
            p.push(format!("{t}: {what}: dump {a}, catalog {b}"));
        }
    };
    diff("engine", format!("{:?}", w.options.engine), format!("{:?}", g.options.engine));
    diff("charset", format!("{:?}", w.options.charset), format!("{:?}", g.options.charset));
    diff("collation", format!("{:?}", w.options.collation), format!("{:?}", g.options.collation));
    diff("auto_increment", format!("{:?}", w.options.auto_increment_start), format!("{:?}", g.options.auto_increment_start));
    diff("partitioned", format!("{:?}", w.options.partitioning.is_some()), format!("{:?}", g.options.partitioning.is_some()));
    diff("comment", format!("{:?}", w.comment), format!("{:?}", g.comment));
    let cols = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    diff("columns", format!("{:?}", cols(w)), format!("{:?}", cols(g)));
    for wc in &w.columns {
        let Some(gc) = g.column(&wc.name) else { continue };
        let c = &wc.name;
        diff(&format!("{c}.ty"), format!("{:?}", wc.ty), format!("{:?}", gc.ty));
        diff(&format!("{c}.nullable"), format!("{:?}", wc.nullable), format!("{:?}", gc.nullable));
        diff(&format!("{c}.default"), format!("{:?}", wc.default), format!("{:?}", gc.default));
        diff(&format!("{c}.identity"), format!("{:?}", wc.identity), format!("{:?}", gc.identity));
        diff(&format!("{c}.on_update"), format!("{:?}", wc.on_update_current_timestamp), format!("{:?}", gc.on_update_current_timestamp));
        diff(&format!("{c}.generated"), format!("{:?}", wc.generated), format!("{:?}", gc.generated));
        diff(&format!("{c}.comment"), format!("{:?}", wc.comment), format!("{:?}", gc.comment));
        // The dump may omit display widths (MySQL 8 style) that the
        // catalog adds; the type name itself must agree.
        let base = |s: &str| s.split(['(', ' ']).next().unwrap_or("").to_ascii_lowercase();
        if !matches!(gc.ty, ColumnType::Json) {
            diff(&format!("{c}.source_type"), base(&wc.source_type), base(&gc.source_type));
        }
    }
    diff("primary key", format!("{:?}", w.primary_key), format!("{:?}", g.primary_key));
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let uniques = |t: &Table| sorted(t.uniques.iter().map(|k| format!("{:?}", k)).collect());
    diff("uniques", format!("{:?}", uniques(w)), format!("{:?}", uniques(g)));
    let indexes = |t: &Table| {
        sorted(t.indexes.iter().map(|i| format!("{:?} unique={} {:?} {:?}", i.name, i.unique, i.parts, i.method)).collect())
    };
    diff("indexes", format!("{:#?}", indexes(w)), format!("{:#?}", indexes(g)));
    let fks = |t: &Table| {
        sorted(
            t.foreign_keys
                .iter()
                .map(|f| format!("{:?} {:?} -> {} {:?} del={:?} upd={:?}", f.name, f.columns, f.ref_table, f.ref_columns, f.on_delete, f.on_update))
                .collect(),
        )
    };
    diff("foreign keys", format!("{:#?}", fks(w)), format!("{:#?}", fks(g)));
    let checks = |t: &Table| t.checks.iter().map(|c| format!("{:?} {}", c.name, c.expr.sql)).collect::<Vec<_>>();
    diff("checks", format!("{:?}", checks(w)), format!("{:?}", checks(g)));
}

/// Catalog details the fixture does not exercise: descending and prefix
/// parts, expression defaults, a column-level check, a view whose alias
/// is named like the database, a MyISAM table without AUTO_INCREMENT.
#[tokio::test]
async fn introspection_reads_the_less_common_shapes() {
    let s = server();
    let db = s.fresh_database("shapes");
    let n = &db.name;
    db.load(&format!(
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE t (
           id bigint unsigned NOT NULL AUTO_INCREMENT,
           code varchar(20) NOT NULL DEFAULT 'it''s',
           token varchar(36) DEFAULT uuid(),
           n int DEFAULT (1 + 2),
           flags bit(3) NOT NULL DEFAULT b'101',
           raw varbinary(4) DEFAULT x'0102',
           pid int DEFAULT NULL,
           qty int CHECK (qty > 0),
           PRIMARY KEY (id),
           UNIQUE KEY uq_code_desc (code DESC),
           KEY ix_prefix (code(5), id DESC),
           CONSTRAINT fk_p FOREIGN KEY (pid) REFERENCES p (id) ON DELETE NO ACTION,
           CONSTRAINT two CHECK (n < 100)
         ) ENGINE=InnoDB AUTO_INCREMENT=42 COMMENT='shapes';
         CREATE VIEW v AS SELECT `{n}`.id AS id FROM t AS `{n}`;"
    ));
    let mut c = connect(&db, "").await;
    let schema = c.introspect().await.unwrap();
    let t = schema.table(&QualifiedName::bare("t")).expect("table t");
    let col = |name: &str| t.column(name).unwrap_or_else(|| panic!("column {name}"));
    assert_eq!(col("id").identity.as_ref().unwrap().start, Some(42));
    assert_eq!(t.options.auto_increment_start, Some(42));
    assert_eq!(col("code").default, Some(DefaultValue::String("it's".into())));
    assert!(matches!(&col("token").default, Some(DefaultValue::Expression(e)) if e.sql == "uuid()"), "{:?}", col("token").default);
    assert!(matches!(&col("n").default, Some(DefaultValue::Expression(e)) if e.sql == "1 + 2"), "{:?}", col("n").default);
    assert_eq!(col("flags").default, Some(DefaultValue::Bits("101".into())));
    assert_eq!(col("raw").default, Some(DefaultValue::Bytes("0102".into())));
    assert_eq!(col("pid").default, Some(DefaultValue::Null));
    assert_eq!(t.comment.as_deref(), Some("shapes"));

    // A DESC part is not a plain column list: a unique index, not a key.
    assert!(t.uniques.is_empty(), "{:?}", t.uniques);
    let uq = t.indexes.iter().find(|i| i.name.as_deref() == Some("uq_code_desc")).expect("uq_code_desc");
    assert!(uq.unique && uq.parts[0].descending);
    let ix = t.indexes.iter().find(|i| i.name.as_deref() == Some("ix_prefix")).expect("ix_prefix");
    assert_eq!((ix.parts[0].prefix_len, ix.parts[1].descending), (Some(5), true));

    assert_eq!(t.foreign_keys[0].on_delete, Some(RefAction::NoAction));
    assert_eq!(t.foreign_keys[0].on_update, Some(RefAction::Restrict));
    let checks: Vec<(Option<&str>, &str)> = t.checks.iter().map(|c| (c.name.as_deref(), c.expr.sql.as_str())).collect();
    assert_eq!(checks, vec![(None, "`qty` > 0"), (Some("two"), "`n` < 100")]);

    // The alias shares the database's name: the body must keep meaning it.
    let v = &schema.views[0];
    assert!(v.query.sql.contains(&format!("`{n}`.`id`")), "{}", v.query.sql);
    assert!(!v.query.sql.contains(&format!("`{n}`.`t`")), "{}", v.query.sql);
}

/// The session barge sets up: UTC, utf8mb4, no ANSI_QUOTES, also when the
/// session had them.
#[tokio::test]
async fn session_is_utc_utf8mb4_without_ansi_quotes() {
    let s = server();
    let db = s.fresh_database("session");
    let mut c = connect(&db, "ssl-mode=DISABLED").await;
    assert!(!c.tls);
    let settings = "SELECT @@time_zone, @@character_set_client, @@character_set_results, @@sql_mode";
    let check = |(tz, client, results, mode): (String, String, String, String)| {
        assert_eq!((tz.as_str(), client.as_str(), results.as_str()), ("+00:00", "utf8mb4", "utf8mb4"));
        assert!(!mode.contains("ANSI") && !mode.contains("NO_BACKSLASH_ESCAPES"), "{mode}");
        assert!(mode.contains("STRICT_TRANS_TABLES"), "other modes stay: {mode}");
    };
    check(c.conn.query_first(settings).await.unwrap().unwrap());
    c.execute("SET SESSION sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES', time_zone = '+05:00'").await.unwrap();
    c.apply_session_settings().await.unwrap();
    check(c.conn.query_first(settings).await.unwrap().unwrap());
}

/// `execute` names the statement and the server's error.
#[tokio::test]
async fn a_failing_statement_is_named_with_the_server_error() {
    let s = server();
    let db = s.fresh_database("exec");
    let mut c = connect(&db, "").await;
    c.execute("CREATE TABLE ok_table (id int)").await.unwrap();
    let err = c.execute("CREATE TABLE ok_table (id int)").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Endpoint { .. }), "{err:?}");
    assert!(msg.contains("CREATE TABLE ok_table (id int)") && msg.contains("1050") && msg.contains("already exists"), "{msg}");
    let err = c.execute("SELEC 1").await.unwrap_err();
    assert!(err.to_string().contains("`SELEC 1`") && err.to_string().contains("1064"), "{err}");
}

/// (b) A wrong password: an endpoint error naming the variable to fix,
/// never the password itself.
#[tokio::test]
async fn wrong_password_names_the_variable_not_the_password() {
    let s = server();
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    // Only this test sets the source role's variable.
    std::env::set_var("BARGE_SOURCE_PASSWORD", &wrong);
    let err = match MyConn::connect(&s.endpoint("mysql", "ssl-mode=DISABLED"), Role::Source).await {
        Ok(_) => panic!("a wrong password was accepted"),
        Err(e) => e,
    };
    let Error::Endpoint { endpoint, message, hint } = &err else { panic!("not an endpoint error: {err:?}") };
    let hint = hint.clone().unwrap_or_default();
    let everything = format!("{endpoint} {message} {hint} {err:?} {err}");
    assert!(!everything.contains(&wrong) && !everything.contains(&s.password), "{everything}");
    assert!(message.contains("Access denied"), "{message}");
    assert!(hint.contains("BARGE_SOURCE_PASSWORD"), "{hint}");
}

/// (c) An unknown database: the hint says to create it.
#[tokio::test]
async fn unknown_database_says_create_it_first() {
    let s = server();
    let name = format!("barge_missing_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let err = match MyConn::connect(&s.endpoint(&name, ""), Role::Target).await {
        Ok(_) => panic!("connected to a database that does not exist"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::Endpoint { .. }), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
    assert!(err.hint().unwrap_or_default().contains("create it first"), "{:?}", err.hint());
}

/// Nothing listening: the hint asks whether the server runs there.
#[tokio::test]
async fn refused_connection_asks_if_the_server_is_running() {
    let s = server();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ep = match barge::endpoint::Endpoint::parse(&format!("mysql://{}@127.0.0.1:{port}/x?ssl-mode=DISABLED", s.user)).unwrap() {
        barge::endpoint::Endpoint::Mysql(e) => e,
        _ => unreachable!(),
    };
    let err = match MyConn::connect(&ep, Role::Target).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert!(err.hint().unwrap_or_default().contains(&format!("listening on 127.0.0.1:{port}")), "{err} {:?}", err.hint());
}

/// (d) TLS modes against the test server, which has no TLS: the modes that
/// demand TLS fail saying so; DISABLED and the default (PREFERRED) connect
/// unencrypted.
#[tokio::test]
async fn tls_modes_against_a_server_without_tls() {
    let s = server();
    let db = s.fresh_database("tls");
    for mode in ["VERIFY_IDENTITY", "VERIFY_CA", "REQUIRED"] {
        let err = match MyConn::connect(&db.endpoint(&format!("ssl-mode={mode}")), Role::Target).await {
            Ok(_) => panic!("ssl-mode={mode} connected without TLS"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(msg.contains(&format!("ssl-mode={mode}")) && msg.contains("does not offer TLS"), "{msg}");
        assert!(err.hint().unwrap_or_default().contains("ssl-mode=DISABLED"), "{:?}", err.hint());
    }
    for query in ["ssl-mode=DISABLED", "sslmode=disable", "", "ssl_mode=PREFERRED"] {
        let c = connect(&db, query).await;
        assert!(!c.tls, "{query}: the server has no TLS, yet the connection says it is encrypted");
    }
    // An unknown mode is refused when the URL is parsed, before connecting.
    let url = "mysql://barge@127.0.0.1:1/x?sslmode=sometimes".to_string();
    let err = barge::endpoint::Endpoint::parse(&url).expect_err("an unknown ssl-mode was accepted");
    assert!(err.to_string().contains("VERIFY_IDENTITY") || err.hint().unwrap_or_default().contains("VERIFY_IDENTITY"), "{err}");
}

/// TLS modes against a server that has TLS, with a certificate for
/// `db.example` while we connect to 127.0.0.1. Opt-in, because it starts a
/// private MariaDB (about 5 s): `cargo test --test db_mysql -- --ignored`.
#[tokio::test]
#[ignore = "starts its own TLS MariaDB; run with --ignored"]
async fn tls_modes_against_a_server_with_tls() {
    let tls = mysql_util::TlsServer::start();
    // This server's password, for the target role in this process only.
    std::env::set_var(mysql_util::PASSWORD_VAR, &tls.server.password);
    let ca = tls.ca_file.display().to_string();
    let ep = |q: &str| tls.server.endpoint("tls_db", q);
    let cipher = |mut c: MyConn| async move {
        let row: Option<(String, String)> = c.conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await.unwrap();
        row.map(|r| r.1).unwrap_or_default()
    };

    for q in ["ssl-mode=REQUIRED".to_string(), String::new(), format!("ssl-mode=VERIFY_CA&ssl-ca={ca}")] {
        let c = MyConn::connect(&ep(&q), Role::Target).await.unwrap_or_else(|e| panic!("{q}: {e} ({:?})", e.hint()));
        assert!(c.tls, "{q}");
        assert!(!cipher(c).await.is_empty(), "{q}: no cipher, so not encrypted");
    }
    let c = MyConn::connect(&ep("ssl-mode=DISABLED"), Role::Target).await.unwrap();
    assert!(!c.tls);
    assert!(cipher(c).await.is_empty());

    // The chain is fine, the name is not.
    let err = match MyConn::connect(&ep(&format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}")), Role::Target).await {
        Ok(_) => panic!("VERIFY_IDENTITY accepted a certificate for another name"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("ssl-mode=VERIFY_IDENTITY") && err.to_string().contains("db.example"), "{err}");
    assert!(err.hint().unwrap_or_default().contains("VERIFY_CA"), "{:?}", err.hint());
    // No CA given: the Mozilla roots do not know this one.
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let err = match MyConn::connect(&ep(&format!("ssl-mode={mode}")), Role::Target).await {
            Ok(_) => panic!("{mode} trusted a private CA it was not given"),
            Err(e) => e,
        };
        assert!(err.hint().unwrap_or_default().contains("ssl-ca=PATH"), "{mode}: {err} {:?}", err.hint());
    }
}
