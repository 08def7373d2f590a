//! migrate moves every object or names it: for all nine engine pairs, a
//! realistic database per source engine (fixtures/migrate/) is copied and
//! the target's own catalog is read back. Every source object is on the
//! target or listed for a person, and the console's counts match both
//! catalogs; an INSERT that omits the key works on the copy; triggers work
//! on a same-engine copy. Then the failures: a table the target refuses
//! fails the run by name; a key build found done after kill -9 is resumed,
//! and Ctrl-C during an index build cancels it on the server.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

fn migrate(src: &TestDb, dst: &TestDb, state: &Path, extra: &[&str]) -> Output {
    run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(state).args(extra))
}

fn fixture_for(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "migrate/postgres.sql",
        Engine::Mysql => "migrate/mariadb.sql",
        Engine::Sqlite => "migrate/sqlite.sql",
    }
}

/// A source database holding the engine's fixture (SQLite from its script).
async fn fixture_db(engine: Engine, tag: &str) -> TestDb {
    let db = TestDb::new(engine, tag).await;
    db.load_script(&fixture(fixture_for(engine))).await;
    db
}

async fn count(db: &TestDb, sql: &str) -> usize {
    let r = db.query_row(sql).await;
    r[0].as_deref().unwrap_or("0").parse().unwrap_or_else(|_| panic!("{sql}: {r:?}"))
}

/// Objects per kind, read from the engine's own catalog (not barge's).
async fn catalog(db: &TestDb) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    match db.engine {
        Engine::Postgres => {
            let rel = |kinds: &str, partition: &str| {
                format!("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ({kinds}) {partition}")
            };
            m.insert("tables", count(db, &rel("'r', 'p'", "AND NOT c.relispartition")).await);
            m.insert("partitions", count(db, &rel("'r', 'p'", "AND c.relispartition")).await);
            m.insert("views", count(db, &rel("'v'", "")).await);
            m.insert("materialized views", count(db, &rel("'m'", "")).await);
            m.insert(
                "sequences",
                count(db, &rel("'S'", "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))")).await,
            );
            m.insert(
                "foreign keys",
                count(db, "SELECT count(*) FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = 'public' AND con.contype = 'f' AND con.conparentid = 0").await,
            );
            m.insert(
                "indexes",
                count(
                    db,
                    "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')) \
                     AND NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = i.indexrelid)",
                )
                .await,
            );
            m.insert(
                "triggers",
                count(db, "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal AND t.tgparentid = 0").await,
            );
            m.insert(
                "routines",
                count(db, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')").await,
            );
            m.insert("extensions", count(db, "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'").await);
            m.insert("rules", count(db, "SELECT count(*) FROM pg_rules WHERE schemaname = 'public'").await);
        }
        Engine::Mysql => {
            let is = |table: &str, col: &str, more: &str| format!("SELECT COUNT(*) FROM information_schema.{table} WHERE {col} = DATABASE() {more}");
            m.insert("tables", count(db, &is("TABLES", "TABLE_SCHEMA", "AND TABLE_TYPE = 'BASE TABLE'")).await);
            m.insert("views", count(db, &is("VIEWS", "TABLE_SCHEMA", "")).await);
            m.insert("foreign keys", count(db, &is("REFERENTIAL_CONSTRAINTS", "CONSTRAINT_SCHEMA", "")).await);
            m.insert("triggers", count(db, &is("TRIGGERS", "TRIGGER_SCHEMA", "")).await);
            m.insert("routines", count(db, &is("ROUTINES", "ROUTINE_SCHEMA", "")).await);
            // Secondary indexes; InnoDB's own index for a foreign key is named after it.
            m.insert(
                "indexes",
                count(
                    db,
                    "SELECT COUNT(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 1 \
                     AND INDEX_NAME NOT IN (SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE())",
                )
                .await,
            );
        }
        Engine::Sqlite => {
            let of = |ty: &str| format!("SELECT count(*) FROM sqlite_master WHERE type = '{ty}' AND name NOT LIKE 'sqlite%' AND sql IS NOT NULL");
            m.insert("tables", count(db, &of("table")).await);
            m.insert("views", count(db, &of("view")).await);
            m.insert("triggers", count(db, &of("trigger")).await);
            m.insert("indexes", count(db, &of("index")).await);
            m.insert(
                "foreign keys",
                count(db, "SELECT count(*) FROM (SELECT DISTINCT m.name, f.id FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table')").await,
            );
        }
    }
    m
}

/// The run's own account, from the JSON report beside the Markdown one.
struct Account {
    source: BTreeMap<String, usize>,
    target: BTreeMap<String, usize>,
    merged: BTreeMap<String, usize>,
    notes: BTreeMap<String, String>,
    needs: Vec<(String, String, String)>,
}

fn account(state: &Path) -> Account {
    let text = std::fs::read_to_string(state.join("assessment.json")).expect("assessment.json beside assessment.md");
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut a = Account { source: BTreeMap::new(), target: BTreeMap::new(), merged: BTreeMap::new(), notes: BTreeMap::new(), needs: Vec::new() };
    let label = |k: &str| k.replace('_', " ");
    for k in j["objects"].as_array().unwrap() {
        let kind = label(k["kind"].as_str().unwrap());
        let kind = match kind.as_str() {
            "enum" => "enum types".to_string(),
            "domain" => "domains".into(),
            "sequence" => "sequences".into(),
            "table" => "tables".into(),
            "partition" => "partitions".into(),
            "primary key" => "primary keys".into(),
            "unique key" => "unique keys".into(),
            "index" => "indexes".into(),
            "foreign key" => "foreign keys".into(),
            "routine" => "routines".into(),
            "view" => "views".into(),
            "materialized view" => "materialized views".into(),
            "trigger" => "triggers".into(),
            "rule" => "rules".into(),
            "comment" => "comments".into(),
            "extension" => "extensions".into(),
            other => other.to_string(),
        };
        a.source.insert(kind.clone(), k["source"].as_u64().unwrap() as usize);
        a.target.insert(kind.clone(), k["target"].as_u64().unwrap() as usize);
        a.merged.insert(kind.clone(), k["merged"].as_u64().unwrap_or(0) as usize);
        a.notes.insert(kind, k["note"].as_str().unwrap_or("").to_string());
    }
    for i in j["needs_a_person"].as_array().unwrap() {
        a.needs.push((i["kind"].as_str().unwrap().into(), i["object"].as_str().unwrap().into(), i["reason"].as_str().unwrap().into()));
    }
    a
}

impl Account {
    /// Items for a person about objects of this summary kind.
    fn listed(&self, kind: &str) -> usize {
        self.needs
            .iter()
            .filter(|(k, o, _)| match kind {
                "triggers" => k == "routine" && o.starts_with("trigger "),
                "rules" => k == "routine" && o.starts_with("rule "),
                "routines" => k == "routine" && !o.starts_with("trigger ") && !o.starts_with("rule "),
                "tables" | "partitions" => k == "table",
                "indexes" => k == "index",
                "foreign keys" => k == "foreign key",
                "views" | "materialized views" => k == "view",
                "sequences" => k == "sequence",
                "comments" => k == "comment",
                "extensions" => k == "extension",
                "primary keys" | "unique keys" => k == "constraint",
                _ => false,
            })
            .count()
    }
}

/// Generated on-update triggers and their functions (MySQL's ON UPDATE
/// CURRENT_TIMESTAMP on a PostgreSQL target) are barge's, not the source's.
async fn generated(dst: &TestDb) -> (usize, usize) {
    match dst.engine {
        Engine::Postgres => {
            let t = count(dst, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'barge_on_update%'").await;
            let f = count(dst, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'barge_on_update%'").await;
            (t, f)
        }
        Engine::Sqlite => (count(dst, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'barge_on_update%'").await, 0),
        Engine::Mysql => (0, 0),
    }
}

/// The console, the JSON report and both catalogs agree, and every source
/// object is on the target or listed for a person.
async fn check_accounting(src: &TestDb, dst: &TestDb, state: &Path, out: &Output, pair: &str) {
    let a = account(state);
    let text = stdout(out);
    let source_cat = catalog(src).await;
    let target_cat = catalog(dst).await;
    let (gen_triggers, gen_functions) = generated(dst).await;
    for (kind, n) in &source_cat {
        let reported = a.source.get(*kind).copied().unwrap_or(0);
        assert_eq!(reported, *n, "{pair}: the report says the source has {reported} {kind}, its catalog {n}\n{text}");
    }
    for (kind, n) in &target_cat {
        let mut made = a.target.get(*kind).copied().unwrap_or(0);
        if *kind == "triggers" {
            made += gen_triggers;
        }
        if *kind == "routines" {
            made += gen_functions;
        }
        // Views of a materialized view on a target without them are plain views.
        if *kind == "views" && dst.engine != Engine::Postgres {
            made += a.target.get("materialized views").copied().unwrap_or(0);
        }
        assert_eq!(made, *n, "{pair}: the report says {made} {kind} are on the target, its catalog {n}\n{text}");
    }
    for (kind, n) in &a.source {
        let on_target = a.target[kind];
        let merged = a.merged[kind] + if a.notes[kind].contains("merged") && kind == "partitions" { *n } else { 0 };
        let listed = a.listed(kind);
        let note = &a.notes[kind];
        assert!(
            on_target + merged + listed >= *n || kind == "comments" && note.contains("SQLite"),
            "{pair}: {n} {kind} in the source, {on_target} on the target, {merged} merged, {listed} listed for a person\n{text}"
        );
    }
    let needs = a.needs.len();
    if needs == 0 {
        assert!(text.contains("needs a person: nothing"), "{pair}: {text}");
    } else {
        assert!(text.contains(&format!("needs a person: {needs} item")), "{pair}: the console gives the count\n{text}");
        let (kind, object, _) = &a.needs[0];
        assert!(text.contains(&format!("  {kind} {object}:")), "{pair}: the first items are on the console\n{text}");
    }
    assert!(text.contains("objects on the target:") && text.contains("assessment.json"), "{pair}: {text}");
}

/// Inserts that leave the key to the target, per source fixture.
fn keyless_inserts(src: Engine, dst: Engine) -> Vec<&'static str> {
    match src {
        Engine::Postgres => {
            let mut v = vec!["INSERT INTO customer (first_name, last_name, email) VALUES ('New', 'Person', 'new@example.com')", "INSERT INTO staff (name) VALUES ('Ann')", "INSERT INTO store (manager_staff_id) VALUES (1)"];
            if dst != Engine::Sqlite {
                // A composite key (payment_date, payment_id): MySQL numbers it too.
                v.push("INSERT INTO payment (customer_id, staff_id, amount, payment_date) VALUES (1, 1, 2.50, '2022-01-15 10:00:00')");
            }
            v
        }
        Engine::Mysql => vec!["INSERT INTO actor (first_name, last_name) VALUES ('NEW', 'ACTOR')"],
        Engine::Sqlite => vec!["INSERT INTO artists (Name) VALUES ('New Artist')"],
    }
}

async fn pair(src_engine: Engine, dst_engine: Engine) {
    let name = format!("{} → {}", src_engine.name(), dst_engine.name());
    let tag = format!("obj_{}_{}", src_engine.name(), dst_engine.name());
    let src = fixture_db(src_engine, &tag).await;
    let dst = TestDb::new(dst_engine, &tag).await;
    let state = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, state.path(), &[]);
    assert_ok(&out, &name);
    check_accounting(&src, &dst, state.path(), &out, &name).await;
    assert_analyzed(&dst, &name).await;

    // Rows: a partitioned table whole, an inheritance parent without its child's rows.
    if src_engine == Engine::Postgres {
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM payment").await[0].as_deref(), Some("1500"), "{name}");
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM city").await[0].as_deref(), Some(if dst_engine == Engine::Postgres { "3" } else { "2" }), "{name}");
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM capital").await[0].as_deref(), Some("1"), "{name}");
    }
    // An extension's type stays itself on a PostgreSQL copy (citext
    // compares without case: text would not).
    if src_engine == Engine::Postgres && dst_engine == Engine::Postgres {
        let ty = dst.query_row("SELECT udt_name FROM information_schema.columns WHERE table_name = 'staff' AND column_name = 'email'").await;
        assert_eq!(ty[0].as_deref(), Some("citext"), "{name}");
    }

    // The application's INSERTs without a key work, past the source's last value.
    let mut conn = dst.connect(barge::endpoint::Role::Target).await;
    for sql in keyless_inserts(src_engine, dst_engine) {
        conn.execute(sql).await.unwrap_or_else(|e| panic!("{name}: {sql}: {e}"));
    }
    drop(conn);
    let (key_sql, past) = match src_engine {
        Engine::Postgres => ("SELECT MAX(customer_id) FROM customer", 60),
        Engine::Mysql => ("SELECT MAX(actor_id) FROM actor", 6),
        Engine::Sqlite => ("SELECT MAX(ArtistId) FROM artists", 3),
    };
    let max: i64 = dst.query_row(key_sql).await[0].as_deref().unwrap().parse().unwrap();
    assert!(max > past, "{name}: the new key {max} is past the source's last value {past}");
    if src_engine == Engine::Postgres {
        // A serial's and an identity's counters, moved on at the source.
        for (sql, past) in [("SELECT MAX(staff_id) FROM staff", 40), ("SELECT MAX(store_id) FROM store", 30)] {
            let max: i64 = dst.query_row(sql).await[0].as_deref().unwrap().parse().unwrap();
            assert!(max > past, "{name}: {sql}: the new key {max} is past the source's counter {past}");
        }
    }

    // Triggers do the application's work on a same-engine copy.
    if src_engine == dst_engine {
        let mut conn = dst.connect(barge::endpoint::Role::Target).await;
        let check = match src_engine {
            Engine::Postgres => {
                conn.execute("INSERT INTO film (title, description) VALUES ('ZED', 'A tale of a trigger')").await.unwrap_or_else(|e| panic!("{name}: the trigger fills fulltext: {e}"));
                "SELECT COUNT(*) FROM film WHERE title = 'ZED' AND fulltext @@ to_tsquery('trigger')"
            }
            Engine::Mysql => {
                conn.execute("INSERT INTO film (title, description) VALUES ('ZED', 'A tale of a trigger')").await.unwrap();
                "SELECT COUNT(*) FROM film_text WHERE title = 'ZED'"
            }
            Engine::Sqlite => {
                conn.execute("INSERT INTO albums (Title, ArtistId) VALUES ('New Album', 1)").await.unwrap();
                "SELECT COUNT(*) FROM audit WHERE action = 'insert' AND album_id = (SELECT MAX(AlbumId) FROM albums)"
            }
        };
        drop(conn);
        assert_eq!(dst.query_row(check).await[0].as_deref(), Some("1"), "{name}: the trigger ran on the copy");
        if src_engine == Engine::Postgres {
            // The rule works on the copy: a film is kept, not deleted.
            let mut conn = dst.connect(barge::endpoint::Role::Target).await;
            conn.execute("DELETE FROM film WHERE film_id = 1").await.unwrap();
            drop(conn);
            assert_eq!(dst.query_row("SELECT count(*) FROM film WHERE film_id = 1").await[0].as_deref(), Some("1"), "{name}: the rule kept the film");
        }
    }
    src.drop_db().await;
    dst.drop_db().await;
}

/// Every table loaded into PostgreSQL has statistics (ANALYZE ran on
/// it): `reltuples` stays -1 until a table is analyzed or vacuumed.
async fn assert_analyzed(dst: &TestDb, pair: &str) {
    if dst.engine != Engine::Postgres {
        return;
    }
    let never = dst.query_row("SELECT string_agg(c.relname, ', ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples < 0").await;
    assert_eq!(never[0], None, "{pair}: tables without statistics after the load");
}

/// A pack carries every object, not only the tables: after pack and
/// unpack, the target holds the same objects a migrate would have made,
/// or names them for a person, and the console and report say so.
async fn through_a_pack(src_engine: Engine, dst_engine: Engine) {
    let name = format!("{} → pack → {}", src_engine.name(), dst_engine.name());
    let tag = format!("objpk_{}_{}", src_engine.name(), dst_engine.name());
    let src = fixture_db(src_engine, &tag).await;
    let dst = TestDb::new(dst_engine, &tag).await;
    let dir = tempfile::tempdir().unwrap();
    let (pass, dev, state) = (dir.path().join("pass"), dir.path().join("dev"), dir.path().join("state"));
    std::fs::write(&pass, "a passphrase for this test\n").unwrap();
    std::fs::create_dir_all(&dev).unwrap();
    let pack = run(barge().args(["pack", &src.url, "--no-cdc", "--passphrase-file"]).arg(&pass).arg(&dev).env("BARGE_STATE_DIR", dir.path().join("pack-state")));
    assert_ok(&pack, &format!("{name}: pack"));
    let out = run(barge().arg("unpack").arg(&dev).arg(&dst.url).arg("--passphrase-file").arg(&pass).arg("--state-dir").arg(&state));
    assert_ok(&out, &format!("{name}: unpack"));
    check_accounting(&src, &dst, &state, &out, &name).await;
    assert_analyzed(&dst, &name).await;
    if src_engine == Engine::Postgres {
        // A partitioned table's rows once (through its partitions), an
        // inheritance child with its inherited columns' values.
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM payment").await[0].as_deref(), Some("1500"), "{name}");
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM city").await, src.query_row("SELECT COUNT(*) FROM city").await, "{name}");
        let capital = "SELECT string_agg(c::text, ',') FROM capital c";
        assert_eq!(dst.query_row(capital).await, src.query_row(capital).await, "{name}");
    }
    if src_engine == dst_engine && src_engine == Engine::Postgres {
        let mut conn = dst.connect(barge::endpoint::Role::Target).await;
        conn.execute("INSERT INTO film (title, description) VALUES ('ZED', 'A tale of a trigger')").await.unwrap_or_else(|e| panic!("{name}: the trigger fills fulltext: {e}"));
        drop(conn);
        let n = dst.query_row("SELECT COUNT(*) FROM film WHERE title = 'ZED' AND fulltext @@ to_tsquery('trigger')").await;
        assert_eq!(n[0].as_deref(), Some("1"), "{name}: the trigger ran on the copy");
    }
    src.drop_db().await;
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_through_a_pack_to_postgres() {
    through_a_pack(Engine::Postgres, Engine::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_through_a_pack_to_sqlite() {
    through_a_pack(Engine::Mysql, Engine::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_through_a_pack_to_mysql() {
    through_a_pack(Engine::Sqlite, Engine::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres() {
    pair(Engine::Postgres, Engine::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_mysql() {
    pair(Engine::Postgres, Engine::Mysql).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite() {
    pair(Engine::Postgres, Engine::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_postgres() {
    pair(Engine::Mysql, Engine::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_mysql() {
    pair(Engine::Mysql, Engine::Mysql).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_to_sqlite() {
    pair(Engine::Mysql, Engine::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres() {
    pair(Engine::Sqlite, Engine::Postgres).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_mysql() {
    pair(Engine::Sqlite, Engine::Mysql).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite() {
    pair(Engine::Sqlite, Engine::Sqlite).await;
}

// ---- a table the target cannot create ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_the_target_refuses_fails_the_run_by_name() {
    for engine in Engine::ALL {
        let src = fixture_db(Engine::Sqlite, "refused").await;
        let dst = TestDb::new(engine, "refused").await;
        // Something else already holds the name `settings` on the target.
        exec(&dst, "CREATE VIEW settings AS SELECT 1 AS x").await;
        let state = tempfile::tempdir().unwrap();
        let out = migrate(&src, &dst, state.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", engine.name(), text(&out));
        let err = stderr(&out);
        assert!(err.contains("settings") && err.contains("cannot be created"), "{}: names the table: {err}", engine.name());

        let state = tempfile::tempdir().unwrap();
        let dst2 = TestDb::new(engine, "refused_skip").await;
        exec(&dst2, "CREATE VIEW settings AS SELECT 1 AS x").await;
        let out = migrate(&src, &dst2, state.path(), &["--on-error", "skip-table"]);
        assert_eq!(out.status.code(), Some(1), "skip-table still fails the run: {}", text(&out));
        assert!(stderr(&out).contains("settings"), "{}", text(&out));
        assert!(stdout(&out).contains("table settings"), "listed for a person: {}", text(&out));
        assert_eq!(dst2.query_row("SELECT COUNT(*) FROM albums").await[0].as_deref(), Some("4"), "the other tables are loaded");
        for d in [src, dst, dst2] {
            d.drop_db().await;
        }
    }
}

// ---- resuming the key build ----------------------------------------------------

/// Rewinds a finished run's state to before its first post-load step, as
/// a kill -9 leaves it when the server finished the step but barge had not
/// recorded it yet.
fn rewind_to_post(state: &Path) {
    let path = state.join("state.json");
    let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    s["phase"] = "post".into();
    s["post_done"] = 0.into();
    for t in s["tables"].as_object_mut().unwrap().values_mut() {
        t["status"] = "finished_copy".into();
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_load_steps_already_done_are_kept_or_replaced() {
    for engine in [Engine::Postgres, Engine::Mysql] {
        let src = fixture_db(Engine::Sqlite, "rebuild").await;
        let dst = TestDb::new(engine, "rebuild").await;
        let state = tempfile::tempdir().unwrap();
        assert_ok(&migrate(&src, &dst, state.path(), &[]), "first run");
        let indexes_before = catalog(&dst).await["indexes"];
        rewind_to_post(state.path());
        // Someone (or a half-finished earlier run) left another index under the same name.
        match engine {
            Engine::Postgres => exec(&dst, "DROP INDEX legacy_notes_label; CREATE INDEX legacy_notes_label ON legacy_notes (code)").await,
            _ => exec(&dst, "DROP INDEX legacy_notes_label ON legacy_notes").await,
        }
        if engine == Engine::Mysql {
            exec(&dst, "CREATE INDEX legacy_notes_label ON legacy_notes (code)").await;
        }
        let out = migrate(&src, &dst, state.path(), &[]);
        assert_ok(&out, &format!("rerun after the steps were done ({})", engine.name()));
        assert!(!stderr(&out).contains("multiple primary keys"), "{}", text(&out));
        assert_eq!(catalog(&dst).await["indexes"], indexes_before, "no index twice");
        let cols = match engine {
            Engine::Postgres => dst.query_row("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indexrelid = 'legacy_notes_label'::regclass").await,
            _ => dst.query_row("SELECT GROUP_CONCAT(COLUMN_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 'legacy_notes_label'").await,
        };
        assert_eq!(cols[0].as_deref(), Some("label"), "the index with another definition was replaced");
        if engine == Engine::Postgres {
            let pks = count(&dst, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = 'albums'::regclass").await;
            assert_eq!(pks, 1);
        }
        src.drop_db().await;
        dst.drop_db().await;
    }
}

// ---- Ctrl-C while an index is built -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_an_index_build_cancels_it_and_a_rerun_finishes() {
    let src = TestDb::new(Engine::Postgres, "slowidx").await;
    // An index over a function that is slow on the target (the source's index
    // was built while it was fast).
    exec(
        &src,
        "CREATE FUNCTION slow_id(v integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT v';
         CREATE TABLE slow_t (id integer PRIMARY KEY, v integer);
         INSERT INTO slow_t SELECT i, i FROM generate_series(1, 1500) i;
         CREATE INDEX slow_idx ON slow_t (slow_id(v));
         CREATE OR REPLACE FUNCTION slow_id(v integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.004); RETURN v; END $$;",
    )
    .await;
    let dst = TestDb::new(Engine::Postgres, "slowidx").await;
    let state = tempfile::tempdir().unwrap();
    let child = barge()
        .args(["migrate", &src.url, &dst.url, "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let building = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query LIKE 'CREATE INDEX%slow_idx%'", dst.name);
    let started = Instant::now();
    let mut child = child;
    while count(&dst, &building).await == 0 {
        assert_running(&mut child, "before the index build");
        assert!(started.elapsed() < Duration::from_secs(60), "the index build never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let interrupted_at = Instant::now();
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(interrupted_at.elapsed() < Duration::from_secs(15), "stopped promptly");
    assert_eq!(count(&dst, &building).await, 0, "the statement was cancelled on the server, not left running");
    assert_eq!(count(&dst, "SELECT count(*) FROM pg_class WHERE relname = 'slow_idx'").await, 0);

    let out = migrate(&src, &dst, state.path(), &[]);
    assert_ok(&out, "rerun after Ctrl-C");
    assert!(stdout(&out).contains("1 of 1 indexes"), "{}", text(&out));
    assert_eq!(count(&dst, "SELECT count(*) FROM pg_class WHERE relname = 'slow_idx'").await, 1, "the build resumed");
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- existing tables: truncate and skip ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_truncates_or_skips_the_existing_tables() {
    let src = fixture_db(Engine::Sqlite, "again").await;
    let dst = TestDb::new(Engine::Postgres, "again").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&migrate(&src, &dst, state.path(), &[]), "first run");
    // Another run (its own state) refuses the tables; the same run is complete.
    let other = tempfile::tempdir().unwrap();
    let out = migrate(&src, &dst, other.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "create refuses existing tables: {}", text(&out));
    assert!(stderr(&out).contains("already exists"), "{}", text(&out));
    let out = migrate(&src, &dst, state.path(), &[]);
    assert_ok(&out, "the finished run again");
    assert!(stderr(&out).contains("the migration is complete"), "{}", text(&out));

    // One table at a time: truncate keeps the target's foreign keys, so a
    // child loaded before its parent would be refused.
    let out = migrate(&src, &dst, state.path(), &["--target-schema", "truncate", "--parallel", "1"]);
    assert_ok(&out, "truncate");
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM albums").await[0].as_deref(), Some("4"), "emptied, then loaded once");

    exec(&dst, "INSERT INTO settings VALUES ('extra', 'kept')").await;
    let out = migrate(&src, &dst, state.path(), &["--target-schema", "skip"]);
    assert_ok(&out, "skip");
    assert!(stdout(&out).contains("skipped (exists)"), "{}", text(&out));
    assert_eq!(dst.query_row("SELECT COUNT(*) FROM settings").await[0].as_deref(), Some("3"), "left as it was");
    assert_eq!(count(&dst, "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = 'albums'::regclass").await, 1);
    src.drop_db().await;
    dst.drop_db().await;
}
