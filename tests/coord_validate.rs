//! One validation shared by three worker processes through a PostgreSQL
//! coordinator (`barge validate --coordinator`, `barge worker`): every
//! worker ends with the same verdict over every range, whoever compared
//! it; a difference any worker found fails all of them; a worker killed
//! mid-range loses the range to another, and the verdict is still whole.

use std::process::{Child, Output, Stdio};

use crate::coordinator::{held_by, signal, wait_for_value};
use crate::support::*;

/// Four tables: two cut into ranges of their integer key, one keyed by
/// text (one range) and one without a key (one range, by hash buckets).
const PG_SQL: &str = "
    CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), opened timestamptz);
    INSERT INTO accounts SELECT g, 'owner ' || g, (g % 1000) / 7.0, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour'
      FROM generate_series(1, 20000) g;
    CREATE TABLE events (id int PRIMARY KEY, account_id bigint NOT NULL, kind text);
    INSERT INTO events SELECT g, g % 20000 + 1, CASE WHEN g % 3 = 0 THEN 'debit' ELSE 'credit' END FROM generate_series(1, 12000) g;
    CREATE TABLE tags (name text PRIMARY KEY, note text);
    INSERT INTO tags SELECT 'tag' || g, md5(g::text) FROM generate_series(1, 400) g;
    CREATE TABLE audit (at int, line text);
    INSERT INTO audit SELECT g % 50, 'line ' || g FROM generate_series(1, 300) g;
    ANALYZE;";

/// Ranges of 2,000 rows: accounts 10, events 6, tags 1, audit 1.
const PG_RANGES: i64 = 18;

struct Shared {
    src: TestDb,
    dst: TestDb,
    ctl: TestDb,
    task: String,
}

impl Shared {
    /// The first worker: `validate --coordinator`, which creates the task.
    fn start(&self, extra: &[&str]) -> Child {
        barge()
            .args(["--json", "validate", &self.src.url, &self.dst.url, "--coordinator", &self.ctl.url, "--task", &self.task])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn join(&self, extra: &[&str]) -> Child {
        barge().args(["--json", "worker", "--coordinator", &self.ctl.url, "--task", &self.task]).args(extra).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Three workers from the start, to the end.
    fn three(&self) -> Vec<Output> {
        let first = self.start(&["--range-rows", "2000"]);
        let others = [self.join(&[]), self.join(&[])];
        std::iter::once(first).chain(others).map(|c| c.wait_with_output().unwrap()).collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.ctl.query_row(sql).await[0].as_deref().unwrap().parse().unwrap()
    }

    async fn drop_all(self) {
        self.src.drop_db().await;
        self.dst.drop_db().await;
        self.ctl.drop_db().await;
    }
}

/// The verdict a worker printed (`--json`), by table.
fn verdict(out: &Output) -> serde_json::Value {
    let j: serde_json::Value = serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {}", text(out)));
    j["validation"]["tables"].clone()
}

fn table<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v.as_array().unwrap().iter().find(|t| t["target"].as_str().is_some_and(|n| n.ends_with(name))).unwrap_or_else(|| panic!("{name} in {v}"))
}

async fn pg_copy(tag: &str) -> Shared {
    let src = TestDb::new(Engine::Postgres, tag).await;
    let dst = TestDb::new(Engine::Postgres, tag).await;
    exec(&src, PG_SQL).await;
    exec(&dst, PG_SQL).await;
    let ctl = TestDb::new(Engine::Postgres, &format!("{tag}_ctl")).await;
    Shared { src, dst, ctl, task: tag.replace('_', "-") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_the_ranges_of_equal_tables_and_agree() {
    let s = pg_copy("cv_equal").await;
    let outs = s.three();
    for o in &outs {
        assert_ok(o, "a worker of an equal validation");
    }
    let first = verdict(&outs[0]);
    for o in &outs[1..] {
        assert_eq!(verdict(o), first, "every worker prints the task's verdict");
    }
    for (name, rows) in [("accounts", 20000), ("events", 12000), ("tags", 400), ("audit", 300)] {
        let t = table(&first, name);
        assert_eq!((t["equal"].as_bool(), t["source_rows"].as_u64(), t["target_rows"].as_u64()), (Some(true), Some(rows), Some(rows)), "{t}");
    }
    // Every range compared once, each by the worker that leased it.
    assert_eq!(s.count("SELECT count(*) FROM barge_control.units WHERE kind = 'validate' AND id > 0 AND status = 'done' AND result IS NOT NULL").await, PG_RANGES);
    assert_eq!(s.count("SELECT sum(rows) FROM barge_control.units WHERE kind = 'validate'").await, 32700);
    let out = run(barge().args(["status", "--coordinator", &s.ctl.url, "--task", &s.task]));
    assert_ok(&out, "status");
    let text = stdout(&out);
    assert!(text.contains(&format!("task {}: done", s.task)) && text.contains(&format!("ranges: {PG_RANGES} of {PG_RANGES} compared, 32700 source rows")), "{text}");
    assert_eq!(text.matches(" finished ").count(), 3, "{text}");
    s.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_difference_any_worker_finds_fails_every_worker_with_its_table_and_key() {
    let s = pg_copy("cv_diff").await;
    // One changed row, one missing and one extra, in three tables; the
    // missing one in the last range of accounts (open above).
    exec(&s.dst, "UPDATE events SET kind = 'refund' WHERE id = 7001; DELETE FROM accounts WHERE id = 19999; INSERT INTO tags VALUES ('zz-extra', 'x')").await;
    let outs = s.three();
    let first = verdict(&outs[0]);
    for o in &outs {
        assert_eq!(o.status.code(), Some(3), "a difference fails every worker: {}", text(o));
        let err = stderr(o);
        assert!(["accounts", "events", "tags"].iter().all(|t| err.contains(t)) && !err.contains("audit"), "the error names the tables that differ: {err}");
        assert_eq!(verdict(o), first, "every worker prints the same verdict");
    }
    let (a, e, t) = (table(&first, "accounts"), table(&first, "events"), table(&first, "tags"));
    assert_eq!((a["missing_rows"].as_u64(), a["missing_on_target"][0].as_str()), (Some(1), Some("19999")), "{a}");
    assert_eq!((e["changed_rows"].as_u64(), e["different"][0].as_str().map(|d| d.starts_with("7001 ") && d.contains("refund"))), (Some(1), Some(true)), "{e}");
    assert_eq!((t["extra_rows"].as_u64(), t["extra_on_target"][0].as_str()), (Some(1), Some("'zz-extra'")), "{t}");
    assert_eq!(table(&first, "audit")["equal"].as_bool(), Some(true));
    for x in [a, e, t] {
        assert_eq!(x["missing_rows"].as_u64().unwrap() + x["extra_rows"].as_u64().unwrap() + x["changed_rows"].as_u64().unwrap(), 1, "nothing else counted: {x}");
    }
    // A second validation under another name sees the same; the status
    // of this one names the differing ranges.
    let out = run(barge().args(["status", "--coordinator", &s.ctl.url, "--task", &s.task]));
    assert!(stdout(&out).matches("1 range(s) DIFFERENT").count() == 3, "{}", stdout(&out));
    s.drop_all().await;
}

/// MariaDB → PostgreSQL, compared row by row through barge (slowed by
/// `--max-rate`, so a range takes a while): the worker holding a range is
/// killed; another compares it again after its lease, and the verdict
/// still counts every difference, the one in the killed range included.
/// A MariaDB source of two tables and its copy in PostgreSQL, made by
/// `barge migrate`.
async fn mariadb_copy(tag: &str) -> Shared {
    let my = TestDb::new(Engine::Mysql, tag).await;
    exec(&my, "CREATE TABLE accounts (id bigint PRIMARY KEY, owner varchar(200) NOT NULL, balance decimal(12,2), opened datetime)").await;
    exec(&my, "INSERT INTO accounts SELECT seq, CONCAT('owner ', seq, ' ', REPEAT('x', 100)), (seq % 1000) / 7, '2026-01-01' + INTERVAL seq HOUR FROM seq_1_to_4000").await;
    exec(&my, "CREATE TABLE events (id int PRIMARY KEY, account_id bigint NOT NULL, kind varchar(10))").await;
    exec(&my, "INSERT INTO events SELECT seq, seq % 4000 + 1, IF(seq % 3 = 0, 'debit', 'credit') FROM seq_1_to_1500").await;
    exec(&my, "ANALYZE TABLE accounts, events").await;
    let dst = TestDb::new(Engine::Postgres, tag).await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&run(barge().args(["migrate", &my.url, &dst.url]).arg("--state-dir").arg(state.path())), "the copy");
    let ctl = TestDb::new(Engine::Postgres, &format!("{tag}_ctl")).await;
    Shared { src: my, dst, ctl, task: tag.replace('_', "-") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_range_loses_it_and_the_verdict_is_still_whole() {
    let s = mariadb_copy("cv_kill").await;
    // A difference in every range of accounts, so the killed range has one.
    exec(&s.dst, "UPDATE accounts SET owner = 'changed' WHERE id % 500 = 7; DELETE FROM events WHERE id = 1234").await;
    let capped = ["--range-rows", "500", "--lease-timeout", "2", "--max-rate", "0.1"];
    let mut first = s.start(&capped);
    let mut doomed = s.join(&["--max-rate", "0.1"]);
    let sql = format!("SELECT CASE WHEN (SELECT count(*) FROM barge_control.units WHERE kind = 'validate' AND id > 0 AND status = 'done') > 0 THEN ({}) END", held_by(doomed.id(), "validate"));
    // Stopped first, so that it cannot finish the range between the look
    // and the kill.
    let unit = loop {
        wait_for_value(&s.ctl, &sql, "the second worker holds a range", &mut [&mut first, &mut doomed]).await;
        signal(&doomed, libc::SIGSTOP);
        if let Some(unit) = s.ctl.query_row(&held_by(doomed.id(), "validate")).await[0].clone() {
            break unit;
        }
        signal(&doomed, libc::SIGCONT);
    };
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let late = s.join(&["--max-rate", "0.1"]);
    let outs = [first.wait_with_output().unwrap(), late.wait_with_output().unwrap()];
    let v = verdict(&outs[0]);
    for o in &outs {
        assert_eq!(o.status.code(), Some(3), "{}", text(o));
        assert_eq!(verdict(o), v);
    }
    let row = s.ctl.query_row(&format!("SELECT status, attempts::text, result IS NOT NULL FROM barge_control.units WHERE id = {unit}")).await;
    assert_eq!(row[0].as_deref(), Some("done"));
    assert!(row[1].as_deref().unwrap().parse::<i32>().unwrap() >= 2, "the killed worker's range was compared again: {row:?}");
    let (a, e) = (table(&v, "accounts"), table(&v, "events"));
    assert_eq!((a["changed_rows"].as_u64(), a["source_rows"].as_u64(), a["target_rows"].as_u64()), (Some(8), Some(4000), Some(4000)), "one changed row in every 500: {a}");
    assert_eq!((e["missing_rows"].as_u64(), e["missing_on_target"][0].as_str()), (Some(1), Some("1234")), "{e}");
    assert_eq!(a["method"].as_str(), Some("client"), "MariaDB → PostgreSQL is compared through barge");
    assert_eq!(s.count("SELECT count(*) FROM barge_control.units WHERE kind = 'validate' AND id > 0 AND status <> 'done'").await, 0);
    s.drop_all().await;
}

/// A range that cannot be compared (its table was dropped from the target
/// after the plan) fails the task: no worker reports a verdict, every one
/// exits non-zero naming the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_that_cannot_be_compared_fails_every_worker() {
    let s = mariadb_copy("cv_fail").await;
    let capped = ["--range-rows", "500", "--max-rate", "0.1"];
    let mut first = s.start(&capped);
    let mut other = s.join(&["--max-rate", "0.1"]);
    // events' ranges come last (the plan lists accounts first).
    let planned = "SELECT CASE WHEN status = 'done' THEN 'yes' END FROM barge_control.units WHERE kind = 'validate' AND id = 0";
    wait_for_value(&s.ctl, planned, "the plan", &mut [&mut first, &mut other]).await;
    exec(&s.dst, "DROP TABLE events").await;
    for o in [first.wait_with_output().unwrap(), other.wait_with_output().unwrap()] {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(stderr(&o).contains("events"), "the error names the table: {}", stderr(&o));
        assert!(stdout(&o).trim().is_empty() || !stdout(&o).contains("\"ok\":true"), "no verdict: {}", stdout(&o));
    }
    let state = s.ctl.query_row("SELECT state FROM barge_control.tasks").await;
    assert_eq!(state[0].as_deref(), Some("failed"));
    s.drop_all().await;
}
