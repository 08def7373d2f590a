//! pack / verify / unpack with databases, end to end against real
//! PostgreSQL, MariaDB and SQLite files: every type packed from each
//! engine and unpacked into every engine, compared value by value
//! (`barge validate` plus direct looks at the tricky values); damage named
//! by table, and a damaged table never half-loaded; resume after SIGKILL;
//! and clear errors for bad input.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

const PASS: &str = "correct horse battery staple";

/// A pack on one device, with its passphrase file and journal directory.
struct Packed {
    dir: tempfile::TempDir,
}

impl Packed {
    fn new() -> Packed {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pass"), format!("{PASS}\n")).unwrap();
        fs::write(dir.path().join("wrong"), "not it\n").unwrap();
        fs::create_dir_all(dir.path().join("dev")).unwrap();
        Packed { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn dev(&self) -> String {
        self.p("dev").display().to_string()
    }

    fn pass(&self) -> String {
        self.p("pass").display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = barge();
        c.args(args).env_remove("BARGE_PASSPHRASE").env("BARGE_STATE_DIR", self.p("state")).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    fn pack(&self, src: &str, extra: &[&str]) -> Output {
        let mut args = vec!["pack", src, "--passphrase-file"];
        let pass = self.pass();
        let dev = self.dev();
        args.push(&pass);
        args.push(&dev);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn unpack(&self, dst: &str, extra: &[&str]) -> Output {
        let pass = self.pass();
        let dev = self.dev();
        // One state directory per target, in the test's own folder.
        let state = self.p(&format!("unpack-state-{:x}", dst.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)))).display().to_string();
        let mut args = vec!["unpack", &dev, dst, "--passphrase-file", &pass, "--state-dir", &state];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn chunks(&self) -> Vec<PathBuf> {
        let root = self.p("dev/barge");
        let mut out = Vec::new();
        for pack in fs::read_dir(root).unwrap() {
            for f in fs::read_dir(pack.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|e| e == "bgc") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }
}

#[track_caller]
fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts exit `code`, no panic, and that the output names every needle.
#[track_caller]
fn fails(o: Output, code: i32, needles: &[&str]) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    for n in needles {
        assert!(t.contains(n), "expected `{n}` in:\n{t}");
    }
    t
}

/// `barge validate`: counts and checksums of every table, compared as the
/// target holds the values.
#[track_caller]
fn validate(src: &TestDb, dst: &TestDb, extra: &[&str]) {
    let out = run(barge().args(["validate", &src.url, &dst.url]).args(extra));
    let t = ok(out, &format!("validate {} → {}", src.engine.name(), dst.engine.name()));
    assert!(!t.contains("DIFFERENT"), "{t}");
}

/// Unpacks into a fresh database of `engine` and validates it against `src`.
async fn unpack_and_validate(p: &Packed, src: &TestDb, engine: Engine, extra: &[&str], validate_extra: &[&str]) -> (TestDb, String) {
    let dst = TestDb::new(engine, &format!("unpack_{}_{}", src.engine.name(), engine.name())).await;
    let out = ok(p.unpack(&dst.url, extra), &format!("unpack into {}", engine.name()));
    validate(src, &dst, validate_extra);
    (dst, out)
}

// ---- PostgreSQL: every type, into every engine -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_type_through_a_pack_into_every_engine() {
    let src = source(Engine::Postgres, "types/postgres.sql", "pk_pg").await;
    let p = Packed::new();
    let out = ok(p.pack(&src.url, &[]), "pack");
    assert!(out.contains("3 tables, 120008 rows"), "{out}");
    let deep = ok(p.run(&["verify", "--deep", &p.dev(), "--passphrase-file", &p.pass()]), "verify --deep");
    assert!(deep.contains("3 tables (120008 rows)"), "{deep}");

    // PostgreSQL → PostgreSQL: every value's text is the source's.
    let (pg, out) = unpack_and_validate(&p, &src, Engine::Postgres, &[], &[]).await;
    assert!(out.contains("--mode cdc --start-position pg:") && out.contains("--slot barge_"), "unpack prints the catch-up command: {out}");
    for q in [
        "SELECT string_agg(e::text, E'\\n' ORDER BY id) FROM every_type e",
        "SELECT string_agg(s::text, E'\\n' ORDER BY id) FROM specials s",
        "SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM big b",
    ] {
        assert_eq!(pg.query_row(q).await, src.query_row(q).await, "{q}");
    }
    let r = pg.query_row("SELECT e.n::text, e.nfree::text, octet_length(e.by), e.tstz::text, s.f::text, e.iv::text, e.ai::text, e.vb::text FROM every_type e JOIN specials s USING (id) WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("9999999999999999999999999999.9999999999"));
    assert_eq!(r[1].as_deref(), Some("12345678901234567890123456789012345.000000001"));
    assert_eq!(r[2].as_deref(), Some("256"));
    assert_eq!(r[3].as_deref(), Some("1999-12-31 23:59:59.999999+00"));
    assert_eq!(r[4].as_deref(), Some("Infinity"));
    assert_eq!(r[5].as_deref(), Some("-3 days -00:00:01"));
    assert_eq!(r[6].as_deref(), Some("{}"));
    assert_eq!(r[7].as_deref(), Some(""));
    let nan = pg.query_row("SELECT f::text, n::text FROM specials WHERE id = 1").await;
    assert_eq!(nan, vec![Some("NaN".into()), Some("NaN".into())]);
    let keys = pg.query_row("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid IN ('every_type'::regclass, 'big'::regclass, 'specials'::regclass)").await;
    assert_eq!(keys[0].as_deref(), Some("3"), "primary keys built after the load");

    // → MariaDB: NaN and the infinities have no home there; they go to the
    // rejects file and everything else loads.
    let (my, out) = unpack_and_validate(&p, &src, Engine::Mysql, &["--on-error", "log"], &["--tables", "!specials"]).await;
    assert!(out.contains("3 rows rejected"), "{out}");
    let r = my.query_row("SELECT CAST(n AS CHAR), LENGTH(`by`), CAST(tstz AS CHAR), ai, u FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("9999999999999999999999999999.9999999999"));
    assert_eq!(r[1].as_deref(), Some("256"));
    assert_eq!(r[2].as_deref(), Some("1999-12-31 23:59:59.999999"), "timestamptz as UTC, microseconds kept");
    assert_eq!(r[3].as_deref(), Some("[]"));
    assert_eq!(r[4].as_deref(), Some("00000000-0000-0000-0000-000000000000"));

    // → SQLite: 38 digits are past what NUMERIC affinity holds; as the
    // refusal's hint says, --cast keeps them as text.
    let (lite, _) = unpack_and_validate(&p, &src, Engine::Sqlite, &["--cast", "every_type.n=text", "--cast", "every_type.nfree=text"], &[]).await;
    let r = lite.query_row("SELECT n, length(\"by\"), i8 FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("9999999999999999999999999999.9999999999"), "38 digits kept as text");
    assert_eq!(r[1].as_deref(), Some("256"));
    assert_eq!(r[2].as_deref(), Some("9223372036854775807"));
    for d in [src, pg, my] {
        d.drop_db().await;
    }
    drop(lite);
}

/// A table of every type with a binary COPY codec, at its edges.
const WIRE: &str = r#"CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE TABLE wire (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, r real, d float8, n numeric, n2 numeric(12,2),
            c char(4), vc varchar(10), t text, by bytea, dt date, tm time, tmtz timetz, ts timestamp, tstz timestamptz,
            iv interval, js json, jsb jsonb, u uuid, e mood, bt bit(4), vb varbit(12));
        INSERT INTO wire VALUES
        (1, true, -32768, -2147483648, -9223372036854775808, '-0', '-Infinity', '0', 0, 'a', '', '', '', '4713-01-01 BC', '00:00', '00:00+14:59',
         '4713-01-01 00:00 BC', '-infinity', '-178000000 years', 'null', '[]', '00000000-0000-0000-0000-000000000000', 'sad', B'0000', B''),
        (2, false, 32767, 2147483647, 9223372036854775807, 'NaN', 1e-300, '-0.00001', -9999999999.99, 'abcd', 'ünïcødé', E'tab\tnl\\n',
         '\x00ff', '99999-12-31', '24:00', '23:59:59.999999-15:59', '99999-12-31 23:59:59.999999', 'infinity', '1 mon -2 days 00:00:00.000001',
         '{"k": [1, "two"]}', '{"b": 1, "a": {"c": null}}', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'happy', B'1010', B'101010101010'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, 'infinity', NULL, NULL, 'infinity', '2000-01-01 00:00+00',
         NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, true, 1, 1, 1, 3.4e38, 2.2250738585072014e-308, '123456789012345678901234567890.098765432109876543210', 10000.5, 'x', 'y', 'z',
         '\xdeadbeef', '1999-12-31', '12:34:56.789', '01:02:03-00:30', '1999-12-31 23:59:59.5', '2000-01-01 00:00:00.000001+05',
         '-1 year +3 days -04:05:06.5', '"s"', '"s"', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', B'0001', B'1'),
        (5, false, 0, 0, 0, 0, 0, '1e-20', 0.01, '', NULL, NULL, NULL, '2000-01-01', '00:00:00.000001', '00:00-00', '2000-01-01', '1900-06-15 12:00+00',
         '0', '{}', '{}', NULL, NULL, NULL, NULL),
        (6, true, 5, 5, 5, 5, 5, 'Infinity', 5, 'five', 'five', 'five', '\x05', '0001-01-01', '05:05', '05:05+05', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00',
         '5 days', '5', '5', NULL, NULL, B'0101', B'0101');"#;

/// A PostgreSQL table packs to the same bytes whether its rows are read
/// by binary COPY straight into packed values or through COPY text and
/// the value model: a pack does not depend on the path that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_table_packs_to_the_same_bytes_by_binary_or_text_copy() {
    use barge::transfer::postgres::{packed_fields, read_copy, read_packed, READ_SESSION};
    let src = TestDb::new(Engine::Postgres, "pk_wire_eq").await;
    support::exec(&src, WIRE).await;
    let mut db = src.connect(barge::endpoint::Role::Source).await;
    let schema = barge::source::of(&mut db).discover().await.unwrap();
    let t = schema.tables.iter().find(|t| t.name.name == "wire").unwrap();
    let job = barge::task::pack_source::read_job(barge::model::Dialect::Postgres, &schema, t);
    let barge::db::Db::Postgres(pg) = &db else { unreachable!() };
    pg.client.batch_execute(READ_SESSION).await.unwrap();
    let copy = job.copy.as_deref().expect("a plain COPY");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    assert_eq!(read_copy(&pg.client, &pg.display, "wire", copy, &job.spec, tx).await.unwrap(), 6);
    let mut by_text = Vec::new();
    while let Some(b) = rx.recv().await {
        for v in b.rows.iter().flatten() {
            barge::pack::rows::encode_value(v, &mut by_text);
        }
    }
    let fields = packed_fields(&job.spec).expect("every column has a binary codec");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    assert_eq!(read_packed(&pg.client, &pg.display, "wire", copy, &fields, tx).await.unwrap(), 6);
    let mut by_binary = Vec::new();
    while let Some(b) = rx.recv().await {
        by_binary.extend_from_slice(&b.body);
    }
    assert_eq!(by_binary, by_text);
    drop(db);
    src.drop_db().await;
}

/// PostgreSQL → PostgreSQL unpacks write binary COPY straight from the
/// packed bytes when the column types match: every kind that path encodes,
/// at its edges, reads back as the source's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unpack_by_binary_copy_keeps_every_value() {
    let src = TestDb::new(Engine::Postgres, "pk_wire").await;
    support::exec(&src, WIRE).await;
    let p = Packed::new();
    ok(p.pack(&src.url, &["--no-cdc"]), "pack");
    let dst = TestDb::new(Engine::Postgres, "unpack_wire").await;
    let out = p.unpack(&dst.url, &["-v"]);
    let t = text(&out);
    assert!(out.status.success(), "unpack: {t}");
    assert!(t.contains("table public.wire: binary COPY straight from the packed rows"), "the binary path was taken: {t}");
    let q = "SELECT string_agg(w::text, E'\\n' ORDER BY id) FROM wire w";
    let want = src.query_row(q).await;
    assert!(want[0].as_deref().is_some_and(|s| s.contains("24:00:00") && s.contains("BC") && s.contains("-infinity")), "{want:?}");
    assert_eq!(dst.query_row(q).await, want);
    validate(&src, &dst, &[]);
    src.drop_db().await;
    dst.drop_db().await;
}

/// PostgreSQL → PostgreSQL: each table's keys, indexes and ANALYZE are
/// built as soon as its rows are in, while the next tables load; every
/// object still lands exactly as the source has it (foreign keys,
/// partitions' keys, a view, a trigger, the sequence past the rows), the
/// report counts every one, and `--target-schema append` keeps what the
/// target already held (only a table the run created is emptied in its
/// loading transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unpack_builds_keys_as_tables_load_and_lands_every_object() {
    let src = TestDb::new(Engine::Postgres, "pk_early").await;
    support::exec(
        &src,
        "CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL UNIQUE);
         INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 300) g;
         CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent, note text);
         CREATE INDEX child_parent_ix ON child (parent_id);
         INSERT INTO child (parent_id, note) SELECT 1 + g % 300, md5(g::text) FROM generate_series(1, 5000) g;
         CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO events SELECT g, date '2025-06-01' + g % 400 FROM generate_series(1, 2000) g;
         CREATE TABLE log_rows (n int, t text);
         INSERT INTO log_rows SELECT g, 'line ' || g FROM generate_series(1, 1000) g;
         CREATE VIEW busy AS SELECT parent_id, count(*) AS n FROM child GROUP BY parent_id;
         CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'stamped'); RETURN NEW; END $$;
         CREATE TRIGGER child_stamp BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION stamp();",
    )
    .await;
    let p = Packed::new();
    ok(p.pack(&src.url, &["--no-cdc"]), "pack");
    let dst = TestDb::new(Engine::Postgres, "pk_early_dst").await;
    let out = p.unpack(&dst.url, &["-v"]);
    let t = text(&out);
    assert!(out.status.success(), "unpack: {t}");
    for table in ["parent", "child", "log_rows"] {
        assert!(t.contains(&format!("table {table}: keys, indexes and ANALYZE built in")), "{table} keyed as soon as it was loaded: {t}");
    }
    assert!(!t.contains("table events_2025: keys"), "a partition's keys come from its parent's, after the load: {t}");
    assert!(t.contains("table public.parent: binary COPY straight from the packed rows, 1 connection(s), truncated and frozen"), "{t}");
    // Every constraint and index, as the source defines it.
    let constraints = "SELECT string_agg(conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid), E'\\n' ORDER BY conrelid::regclass::text, conname) \
                       FROM pg_constraint WHERE connamespace = 'public'::regnamespace";
    let indexes = "SELECT string_agg(indexdef, E'\\n' ORDER BY indexdef) FROM pg_indexes WHERE schemaname = 'public'";
    for q in [constraints, indexes] {
        assert_eq!(dst.query_row(q).await, src.query_row(q).await, "{q}");
    }
    assert_eq!(dst.query_row("SELECT count(*) FROM pg_trigger WHERE tgname = 'child_stamp'").await[0].as_deref(), Some("1"));
    assert_eq!(dst.query_row("SELECT sum(n) FROM busy").await[0].as_deref(), Some("5000"), "the view reads the loaded rows");
    // Statistics for every table that holds rows.
    let unanalyzed = "SELECT coalesce(string_agg(relname, ', ' ORDER BY relname), '') FROM pg_stat_user_tables \
                      WHERE relname IN ('parent', 'child', 'log_rows', 'events_2025', 'events_2026') AND last_analyze IS NULL";
    assert_eq!(dst.query_row(unanalyzed).await[0].as_deref(), Some(""), "every loaded table was analyzed");
    validate(&src, &dst, &["--tables", "parent,child,events,log_rows"]);
    // The sequence is past the rows, the trigger and the foreign key work.
    dst.query_row("INSERT INTO child (parent_id) VALUES (7) RETURNING id").await;
    assert_eq!(dst.query_row("SELECT id::text || ' ' || note FROM child WHERE id = (SELECT max(id) FROM child)").await[0].as_deref(), Some("5001 stamped"));
    assert!(dst.try_query_row("INSERT INTO child (parent_id) VALUES (100000) RETURNING id").await.is_err(), "the foreign key holds");
    for (kind, n) in [("primary keys", 3), ("unique keys", 1), ("foreign keys", 1), ("indexes", 1), ("views", 1), ("triggers", 1)] {
        assert!(t.contains(&format!("{n} of {n} {kind}")), "the report counts every {kind}: {t}");
    }

    // Appending a pack of the keyless table keeps what is there.
    let logs = Packed::new();
    ok(logs.pack(&src.url, &["--no-cdc", "--tables", "log_rows"]), "pack log_rows");
    let out = logs.unpack(&dst.url, &["--target-schema", "append", "-v"]);
    assert!(out.status.success(), "append: {}", text(&out));
    assert!(!text(&out).contains("truncated"), "{}", text(&out));
    assert_eq!(dst.query_row("SELECT count(*), count(DISTINCT n) FROM log_rows").await, vec![Some("2000".into()), Some("1000".into())]);
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- changes made after the pack catch up by CDC ------------------------------

/// The value after `flag` on the catch-up command unpack prints.
fn printed_arg(out: &str, flag: &str) -> Option<String> {
    let line = out.lines().find(|l| l.trim_start().starts_with("barge migrate"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == flag)?;
    words.next().map(str::to_string)
}

/// Packs `src`, changes it, unpacks into a fresh database of the same
/// engine and runs the catch-up command unpack printed, up to `stop_at`'s
/// position: the target then equals the source.
async fn pack_change_unpack_catch_up(src: &TestDb, changes: &[&str], stop_at: &str) {
    let p = Packed::new();
    ok(p.pack(&src.url, &[]), "pack");
    let mut c = src.connect(barge::endpoint::Role::Target).await;
    for sql in changes {
        c.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let stop = src.query_row(stop_at).await;
    let stop = match src.engine {
        Engine::Postgres => format!("pg:{}", stop[0].as_deref().unwrap()),
        _ => format!("mysql:{}:{}", stop[0].as_deref().unwrap(), stop[1].as_deref().unwrap()),
    };
    let dst = TestDb::new(src.engine, &format!("catchup_{}", src.engine.name())).await;
    let out = ok(p.unpack(&dst.url, &[]), "unpack");
    let start = printed_arg(&out, "--start-position").unwrap_or_else(|| panic!("no catch-up command in: {out}"));
    let mut args = vec!["migrate".to_string(), src.url.clone(), dst.url.clone(), "--mode".into(), "cdc".into(), "--start-position".into(), start];
    for flag in ["--slot", "--publication"] {
        if let Some(v) = printed_arg(&out, flag) {
            args.extend([flag.to_string(), v]);
        }
    }
    args.extend(["--stop-at".into(), stop, "--state-dir".into(), p.p("cdc-state").display().to_string()]);
    ok(run(barge().args(&args)), "the printed catch-up command");
    validate(src, &dst, &[]);
    dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_after_the_pack_catch_up_by_cdc() {
    let src = source(Engine::Postgres, "types/postgres.sql", "pk_cdc_pg").await;
    let changes = [
        "UPDATE big SET label = 'changed ' || id, amount = amount + 0.01 WHERE id % 1000 = 0",
        "DELETE FROM big WHERE id % 997 = 0",
        "INSERT INTO big SELECT g, 1, 'new', 1.50, now() FROM generate_series(120001, 120500) g",
        "UPDATE every_type SET t = 'after the pack' WHERE id = 1",
        "DELETE FROM specials WHERE id = 3",
    ];
    pack_change_unpack_catch_up(&src, &changes, "SELECT pg_current_wal_insert_lsn()::text").await;
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_changes_after_the_pack_catch_up_by_cdc() {
    let src = source(Engine::Mysql, "types/mysql.sql", "pk_cdc_my").await;
    let changes = [
        "INSERT INTO every_type (flag, vc, dec6530, dtm) SELECT flag, 'copied', dec6530, dtm FROM every_type WHERE id = 2",
        "UPDATE every_type SET vc = 'after the pack', d2 = 12.34 WHERE id = 1",
        "DELETE FROM every_type WHERE id = 3",
    ];
    pack_change_unpack_catch_up(&src, &changes, "SHOW MASTER STATUS").await;
    src.drop_db().await;
}

// ---- MariaDB: every type, into every engine ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_every_type_through_a_pack_into_every_engine() {
    let src = source(Engine::Mysql, "types/mysql.sql", "pk_my").await;
    let p = Packed::new();
    let out = ok(p.pack(&src.url, &["--no-cdc"]), "pack");
    assert!(out.contains("1 table, 4 rows"), "{out}");

    let (my, out) = unpack_and_validate(&p, &src, Engine::Mysql, &[], &[]).await;
    assert!(out.contains("no CDC start position"), "--no-cdc: the copy is as of the pack: {out}");
    let cols = "CONCAT_WS('|', id, flag, ti, tiu, si, mi, i, iu, bi, biu, dec6530, d2, f, db, c, vc, tx, MD5(lt), HEX(bin), HEX(vb), HEX(bl), dt, dtm, ts, tm, yr, js, en, st, HEX(bt))";
    let q = format!("SELECT GROUP_CONCAT({cols} ORDER BY id SEPARATOR '\\n') FROM every_type");
    assert_eq!(my.query_row(&q).await, src.query_row(&q).await, "every value as MariaDB prints it");
    let z = my.query_row("SELECT CAST(dt AS CHAR), HEX(bt), st, biu FROM every_type WHERE id = 4").await;
    assert_eq!(z[0].as_deref(), Some("0000-00-00"), "MariaDB keeps its zero dates");
    assert_eq!(z[1].as_deref(), Some("3FF"));
    assert_eq!(z[2].as_deref(), Some("x,y,z"));

    let (pg, out) = unpack_and_validate(&p, &src, Engine::Postgres, &[], &[]).await;
    assert!(out.contains("2 zero dates → NULL"), "zero dates are counted: {out}");
    let r = pg.query_row("SELECT biu::text, dec6530::text, flag::text, st::text, dt FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("18446744073709551615"));
    assert_eq!(r[1].as_deref(), Some("99999999999999999999999999999999999.999999999999999999999999999999"));
    assert_eq!(r[2].as_deref(), Some("false"));
    assert_eq!(r[3].as_deref(), Some("{}"));

    let (lite, _) = unpack_and_validate(&p, &src, Engine::Sqlite, &["--cast", "every_type.biu=text", "--cast", "every_type.dec6530=text"], &[]).await;
    let r = lite.query_row("SELECT biu, typeof(biu), dec6530 FROM every_type WHERE id = 2").await;
    assert_eq!(r[0].as_deref(), Some("18446744073709551615"));
    assert_eq!(r[1].as_deref(), Some("text"));
    assert_eq!(r[2].as_deref(), Some("99999999999999999999999999999999999.999999999999999999999999999999"));
    for d in [src, my, pg] {
        d.drop_db().await;
    }
    drop(lite);
}

// ---- SQLite: the sample shop, into every engine --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sample_through_a_pack_into_every_engine() {
    let src = source(Engine::Sqlite, "sample/shop.db", "pk_lite").await;
    let p = Packed::new();
    let out = ok(p.pack(&src.url, &[]), "pack");
    assert!(out.contains("5 tables, 99370 rows"), "{out}");
    for engine in Engine::ALL {
        let (dst, _) = unpack_and_validate(&p, &src, engine, &[], &[]).await;
        sample_checks(&dst).await;
        if engine == Engine::Postgres {
            let ts = dst.query_row("SELECT last_login::text FROM customers WHERE id = 1").await;
            assert_eq!(ts[0].as_deref(), Some("2024-02-29 23:59:59.999999"), "microseconds kept");
        }
        dst.drop_db().await;
    }
}

// ---- damage -------------------------------------------------------------------

/// Flips one byte of `chunk` in the middle of the sealed (compressed)
/// segment that holds plaintext byte `plain`; segments lie where their
/// length words say (docs/FORMAT.md, section 2).
fn flip(chunk: &Path, plain: u64, segment: u64) {
    let mut b = fs::read(chunk).unwrap();
    let r = barge::pack::format::segment_ranges_v2(&b)[(plain / segment) as usize].clone();
    b[r.start + r.len() / 2] ^= 0x20;
    fs::write(chunk, b).unwrap();
}

/// The chunk and plaintext offset in the middle of `table`'s bytes.
fn middle_of(p: &Packed, table: &str) -> (PathBuf, u64) {
    use barge::pack::{catalog::Entry, crypto::Unlock, reader};
    let dev = PathBuf::from(p.dev());
    let l = reader::locate(std::slice::from_ref(&dev), None, None).unwrap();
    let master = reader::unlock(&l, &Unlock::Passphrase(PASS.as_bytes())).unwrap();
    let cat = reader::open_catalog(&l, &master).unwrap();
    let e = cat.entries.iter().find(|e| matches!(e, Entry::Table { name, .. } if name == table)).expect("table in the catalog");
    let x = e.extents()[e.extents().len() / 2];
    let chunk = p.chunks().into_iter().find(|c| c.file_name().unwrap().to_str().unwrap() == format!("c{:010}.bgc", x.chunk())).unwrap();
    (chunk, x.offset() + x.len() / 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_named_by_table_and_never_half_loaded() {
    let src = source(Engine::Sqlite, "sample/shop.db", "pk_flip").await;
    let p = Packed::new();
    ok(p.pack(&src.url, &["--chunk-size", "256KiB", "--segment-size", "16KiB"]), "pack");
    assert!(p.chunks().len() > 4, "the tables span several chunks");
    let (chunk, at) = middle_of(&p, "order_items");
    flip(&chunk, at, 16 * 1024);
    let name = chunk.file_name().unwrap().to_str().unwrap().to_string();

    // Without the key: the chunk file is named.
    fails(p.run(&["verify", &p.dev()]), 3, &[&name, "SHA-256 does not match"]);
    // With it: the table is named too.
    fails(p.run(&["verify", "--deep", &p.dev(), "--passphrase-file", &p.pass()]), 3, &["table order_items", &name]);

    // unpack checks every chunk before it writes anything.
    let dst = TestDb::new(Engine::Sqlite, "pk_flip_dst").await;
    fails(p.unpack(&dst.url, &[]), 3, &[&name, "before writing anything"]);
    assert!(!Path::new(dst.url.trim_start_matches("sqlite:")).exists(), "the target was not touched");

    // Damage found only while loading (the keyless check skipped): the
    // damaged table is rolled back, whole, on every engine.
    for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mysql] {
        let dst = TestDb::new(engine, "pk_flip_load").await;
        // Off the test's runtime: unpack runs its own.
        let err = std::thread::scope(|s| s.spawn(|| unpack_skipping_the_check(&p, &dst, barge::model::Dialect::Sqlite)).join().unwrap()).unwrap_err();
        assert!(err.contains("table order_items") && err.contains("nothing of it was kept"), "{err}");
        let n = dst.query_row("SELECT COUNT(*) FROM order_items").await;
        assert_eq!(n[0].as_deref(), Some("0"), "{}: no row of the damaged table is kept", engine.name());
        let n = dst.query_row("SELECT COUNT(*) FROM customers").await;
        assert_eq!(n[0].as_deref(), Some("5000"), "tables before it are whole");
        dst.drop_db().await;
    }
}

/// PostgreSQL → PostgreSQL: a large table goes in through several binary
/// COPY connections at once; damage found part-way rolls every one of
/// them back, and the table is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_split_across_connections_is_kept_whole_or_not_at_all() {
    let src = TestDb::new(Engine::Postgres, "pk_split").await;
    support::exec(
        &src,
        "CREATE TABLE first (id int PRIMARY KEY, v text); INSERT INTO first SELECT g, 'v' || g FROM generate_series(1, 1000) g;
         CREATE TABLE wide (id bigint PRIMARY KEY, t text, n numeric(12,2)); INSERT INTO wide SELECT g, md5(g::text), g / 7.0 FROM generate_series(1, 150000) g;",
    )
    .await;
    let p = Packed::new();
    ok(p.pack(&src.url, &["--no-cdc", "--compression", "none", "--chunk-size", "1MiB", "--segment-size", "64KiB"]), "pack");
    // Whole: two connections, every row.
    let dst = TestDb::new(Engine::Postgres, "pk_split_ok").await;
    let out = p.unpack(&dst.url, &["-v"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("table public.wide: binary COPY straight from the packed rows, 2 connection(s)"), "{t}");
    let q = "SELECT count(*), md5(string_agg(w::text, ',' ORDER BY id)) FROM wide w";
    assert_eq!(dst.query_row(q).await, src.query_row(q).await);
    dst.drop_db().await;
    // Damaged in the middle: nothing of the table is kept.
    let (chunk, at) = middle_of(&p, "public.wide");
    flip(&chunk, at, 64 * 1024);
    let dst = TestDb::new(Engine::Postgres, "pk_split_bad").await;
    let err = std::thread::scope(|s| s.spawn(|| unpack_skipping_the_check(&p, &dst, barge::model::Dialect::Postgres)).join().unwrap()).unwrap_err();
    assert!(err.contains("table public.wide") && err.contains("nothing of it was kept"), "{err}");
    assert_eq!(dst.query_row("SELECT count(*) FROM wide").await[0].as_deref(), Some("0"));
    assert_eq!(dst.query_row("SELECT count(*) FROM first").await[0].as_deref(), Some("1000"), "tables before it are whole");
    dst.drop_db().await;
    src.drop_db().await;
}

/// The library path of `unpack DEVICE DBURL`, minus the keyless check of
/// every chunk that the CLI runs first.
fn unpack_skipping_the_check(p: &Packed, dst: &TestDb, source: barge::model::Dialect) -> Result<(), String> {
    use barge::pack::{crypto::Unlock, reader};
    use barge::task::unpack_db::{self, UnpackOptions};
    let dev = PathBuf::from(p.dev());
    let l = reader::locate(std::slice::from_ref(&dev), None, None).unwrap();
    let checked = reader::check_files(&l, false, &barge::progress::Silent);
    let master = reader::unlock(&l, &Unlock::Passphrase(PASS.as_bytes())).unwrap();
    let cat = reader::open_catalog(&l, &master).unwrap();
    let endpoint = dst.endpoint();
    let target = barge::task::target_schema::target_dialect(&endpoint).unwrap();
    let schema_args = barge::commands::convert::SchemaArgs {
        casts: vec![],
        rules: vec![],
        identifiers: barge::schema::naming::IdentCase::Lower,
        schema_map: vec![],
    };
    let opts = UnpackOptions {
        schema_mode: barge::task::target_schema::SchemaMode::Create,
        on_error: barge::transfer::OnError::Stop,
        zero_dates: barge::transfer::ZeroDates::Null,
        convert: schema_args.options(source, target, None).unwrap(),
        state_dir: p.p(&format!("unpack-state-{target:?}")),
        parallel: 4,
        progress: std::sync::Arc::new(barge::progress::Silent),
    };
    unpack_db::unpack(&l, &checked, &master, &cat, &endpoint, opts).map(|_| ()).map_err(|e| e.to_string())
}

// ---- resume --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_database_pack_then_resume_gives_the_same_rows() {
    let src = TestDb::new(Engine::Postgres, "pk_resume").await;
    let mut conn = src.connect(barge::endpoint::Role::Target).await;
    // Packed first and kept by the killed run; it must not hold the
    // chunks of the table read again.
    conn.execute("CREATE TABLE a_small (id int PRIMARY KEY, v text)").await.unwrap();
    conn.execute("INSERT INTO a_small SELECT g, 'v' || g FROM generate_series(1, 1000) g").await.unwrap();
    conn.execute(
        "CREATE TABLE big (id bigint PRIMARY KEY, grp int NOT NULL, label text, amount numeric(12,2), at timestamptz);
         INSERT INTO big SELECT g, g % 97, 'row ' || g, (g % 100000) / 100.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
         FROM generate_series(1, 1000000) g; ANALYZE",
    )
    .await
    .unwrap();
    drop(conn);
    let p = Packed::new();
    let journal = p.p("journal");
    let args = ["--chunk-size", "2MiB", "--segment-size", "64KiB", "--threads", "2", "--journal", journal.to_str().unwrap()];
    let mut child = p
        .cmd(&["pack", &src.url, &p.dev(), "--passphrase-file", &p.pass()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_after_chunks(&mut child, &journal, 3);

    // A plain rerun refuses to start over silently; --resume finishes it.
    fails(p.pack(&src.url, &args), 1, &["interrupted pack", "--resume"]);
    let out = ok(p.pack(&src.url, &[&args[..], &["--resume"]].concat()), "resume");
    assert!(out.contains("complete") && out.contains("2 tables, 1001000 rows"), "{out}");
    let v = ok(p.run(&["verify", &p.dev()]), "verify");
    assert!(!v.contains("ERROR"), "no leftover or unexpected chunk: {v}");
    let deep = ok(p.run(&["--json", "verify", "--deep", &p.dev(), "--passphrase-file", &p.pass()]), "verify --deep");
    // The killed run's chunks of the table read again are reclaimed: every
    // chunk left is full of live rows (headers and tags aside).
    let data = serde_json::from_str::<serde_json::Value>(&deep).unwrap()["bytes"].as_u64().unwrap();
    let used: u64 = p.chunks().iter().map(|c| fs::metadata(c).unwrap().len()).sum();
    assert!(used <= data + 64 * 1024, "{used} bytes of chunks for {data} bytes of rows\n{out}");

    let (dst, _) = unpack_and_validate(&p, &src, Engine::Postgres, &[], &[]).await;
    let q = "SELECT count(*), count(DISTINCT id), md5(string_agg(b::text, ',' ORDER BY id)) FROM big b";
    assert_eq!(dst.query_row(q).await, src.query_row(q).await, "no row lost, duplicated or changed");
    src.drop_db().await;
    dst.drop_db().await;
}

// ---- bad input -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_changes_nothing() {
    let src = source(Engine::Sqlite, "sample/shop.db", "pk_bad").await;
    let p = Packed::new();

    // A database that is not there: named, exit 1, and no journal left
    // behind that a later run would take for an interrupted pack.
    let missing = TestDb::new(Engine::Postgres, "pk_missing").await;
    let gone = missing.url.replace(&missing.name, "no_such_database");
    fails(p.pack(&gone, &[]), 1, &["no_such_database"]);
    assert!(!p.p("state").exists() || fs::read_dir(p.p("state")).unwrap().next().is_none(), "no journal was written");

    ok(p.pack(&src.url, &[]), "pack");

    // A wrong passphrase opens nothing and writes nothing.
    let dst = TestDb::new(Engine::Sqlite, "pk_bad_dst").await;
    let dev = p.dev();
    let wrong = p.p("wrong").display().to_string();
    fails(p.run(&["unpack", &dev, &dst.url, "--passphrase-file", &wrong]), 1, &["wrong passphrase"]);
    assert!(!Path::new(dst.url.trim_start_matches("sqlite:")).exists());

    // A database pack does not go into a directory.
    let dir = p.p("out");
    fails(p.unpack(dir.to_str().unwrap(), &[]), 2, &["holds database tables", "database URL"]);

    // Existing tables: refused by default, then each --target-schema mode.
    for engine in [Engine::Postgres, Engine::Sqlite] {
        let dst = TestDb::new(engine, "pk_exists").await;
        ok(p.unpack(&dst.url, &[]), "first unpack");
        fails(p.unpack(&dst.url, &[]), 1, &["already exists", "--target-schema truncate"]);
        let n = dst.query_row("SELECT COUNT(*) FROM order_items").await;
        assert_eq!(n[0].as_deref(), Some("69370"), "the refused unpack changed nothing");
        ok(p.unpack(&dst.url, &["--target-schema", "truncate"]), "truncate");
        validate(&src, &dst, &[]);
        let out = ok(p.unpack(&dst.url, &["--target-schema", "skip"]), "skip");
        assert!(out.contains("skipped (exists)"), "{out}");
        validate(&src, &dst, &[]);
        dst.drop_db().await;
    }
    missing.drop_db().await;
}

// ---- compression (format version 2) -------------------------------------------

/// The catalog's byte size of each table, and the bytes of every chunk file.
fn table_sizes(p: &Packed) -> (std::collections::BTreeMap<String, u64>, u64) {
    use barge::pack::{catalog::Entry, crypto::Unlock, reader};
    let dev = PathBuf::from(p.dev());
    let l = reader::locate(std::slice::from_ref(&dev), None, None).unwrap();
    let master = reader::unlock(&l, &Unlock::Passphrase(PASS.as_bytes())).unwrap();
    let cat = reader::open_catalog(&l, &master).unwrap();
    let sizes = cat
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Table { name, size, .. } => Some((name.clone(), *size)),
            _ => None,
        })
        .collect();
    (sizes, p.chunks().iter().map(|c| fs::metadata(c).unwrap().len()).sum())
}

/// A PostgreSQL database of log rows (they compress) and of media blobs
/// (they do not): the log table shrinks, the blobs are stored raw (a pack
/// of them alone is no bigger than their rows plus the framing), the rows
/// come back equal in PostgreSQL and MariaDB, and a flipped byte in a
/// compressed segment is named by chunk file and table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_database_packs_round_trip_and_media_stays_raw() {
    let src = TestDb::new(Engine::Postgres, "pk_zstd").await;
    exec(
        &src,
        "CREATE TABLE logs (id int PRIMARY KEY, at timestamptz NOT NULL, level text NOT NULL, msg text NOT NULL, amount numeric(12,2));
         INSERT INTO logs SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second', (ARRAY['info','warn','error'])[i % 3 + 1],
                'worker ' || (i % 17) || ' finished job ' || i || ' for customer ' || (i % 501) || ' in queue default', (i % 1000) / 7.0
           FROM generate_series(1, 40000) i;
         CREATE TABLE media (id int PRIMARY KEY, data bytea NOT NULL);
         INSERT INTO media SELECT i, (SELECT string_agg(decode(md5(i || '/' || j), 'hex'), ''::bytea) FROM generate_series(1, 4096) j)
           FROM generate_series(1, 48) i;",
    )
    .await;
    let p = Packed::new();
    ok(p.pack(&src.url, &["--no-cdc", "--segment-size", "64KiB", "--chunk-size", "2MiB"]), "pack");
    let (sizes, stored) = table_sizes(&p);
    let (logs, media) = (sizes["public.logs"], sizes["public.media"]);
    assert!(media > 48 * 65536, "{sizes:?}");
    assert!(stored < media + media / 100 + logs / 3, "{stored} bytes stored for {sizes:?}");
    ok(p.run(&["verify", &p.dev()]), "verify");
    ok(p.run(&["verify", "--deep", &p.dev(), "--passphrase-file", &p.pass()]), "verify --deep");
    for engine in [Engine::Postgres, Engine::Mysql] {
        let (dst, _) = unpack_and_validate(&p, &src, engine, &[], &[]).await;
        dst.drop_db().await;
    }
    let q = "SELECT md5(string_agg(l::text, ',' ORDER BY id)) FROM logs l";
    let dst = TestDb::new(Engine::Postgres, "pk_zstd_dst").await;
    ok(p.unpack(&dst.url, &[]), "unpack");
    assert_eq!(dst.query_row(q).await, src.query_row(q).await);
    dst.drop_db().await;

    // Media alone: stored raw, no bigger than its rows plus the framing.
    let m = Packed::new();
    ok(m.pack(&src.url, &["--no-cdc", "--tables", "media", "--segment-size", "64KiB"]), "pack media");
    let (sizes, stored) = table_sizes(&m);
    let media = sizes["public.media"];
    assert!(stored >= media && stored <= media + media / 200 + 4096, "{stored} bytes stored for {media} of media");

    // A flipped byte in the middle of a compressed segment of `logs`.
    let (chunk, at) = middle_of(&p, "public.logs");
    let b = fs::read(&chunk).unwrap();
    let seg = &barge::pack::format::segment_ranges_v2(&b)[(at / 65536) as usize];
    assert!(seg.len() < 65536 / 2, "the segment is compressed ({} bytes)", seg.len());
    flip(&chunk, at, 65536);
    let name = chunk.file_name().unwrap().to_str().unwrap().to_string();
    fails(p.run(&["verify", &p.dev()]), 3, &[&name, "SHA-256 does not match"]);
    fails(p.run(&["verify", "--deep", &p.dev(), "--passphrase-file", &p.pass()]), 3, &["table public.logs", &name]);
    let dst = TestDb::new(Engine::Postgres, "pk_zstd_flip").await;
    fails(p.unpack(&dst.url, &[]), 3, &[&name, "before writing anything"]);
    dst.drop_db().await;
    src.drop_db().await;
}
