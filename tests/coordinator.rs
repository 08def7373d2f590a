//! Many workers, one full load, through a PostgreSQL coordinator: real
//! servers and real processes, killed (SIGKILL), paused (SIGSTOP) and
//! joined mid-run; the coordinator restarted under them. Each test ends
//! with `barge validate` saying the tables are equal and the target
//! holding the keys, indexes, foreign keys and views.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::servers::PrivatePg;
use crate::support::*;

/// About 20 MB of rows in `items` (12 chunks of 10,000) and 30,000 in
/// `notes`, which refers to them; an index and a view to be rebuilt.
const SOURCE_SQL: &str = "
    CREATE TABLE items (id bigint PRIMARY KEY, grp int NOT NULL, label text NOT NULL, amount numeric(12,2), at timestamptz);
    INSERT INTO items SELECT g, g % 17, repeat(md5(g::text), 4), (g % 1000) / 7.0, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute'
      FROM generate_series(1, 120000) g;
    CREATE TABLE notes (id int PRIMARY KEY, item_id bigint NOT NULL REFERENCES items (id), body text);
    INSERT INTO notes SELECT g, g * 2, 'note ' || g FROM generate_series(1, 30000) g;
    CREATE INDEX items_grp ON items (grp, label);
    CREATE VIEW item_groups AS SELECT grp, count(*) AS n FROM items GROUP BY grp;
    ANALYZE;";

struct Run {
    src: TestDb,
    dst: TestDb,
    ctl_url: String,
    state: tempfile::TempDir,
    task: String,
}

async fn setup(target: Engine, tag: &str) -> (TestDb, TestDb, TestDb) {
    let src = TestDb::new(Engine::Postgres, tag).await;
    exec(&src, SOURCE_SQL).await;
    let dst = TestDb::new(target, tag).await;
    let ctl = TestDb::new(Engine::Postgres, &format!("{tag}_ctl")).await;
    (src, dst, ctl)
}

impl Run {
    fn new(src: TestDb, dst: TestDb, ctl_url: String, task: &str) -> Run {
        Run { src, dst, ctl_url, state: tempfile::tempdir().unwrap(), task: task.into() }
    }

    /// The first worker: `migrate --coordinator`, which creates the task.
    fn start(&self, extra: &[&str]) -> Child {
        barge()
            .args(["migrate", &self.src.url, &self.dst.url, "--coordinator", &self.ctl_url, "--task", &self.task, "--chunk-rows", "10000", "--parallel", "1"])
            .arg("--state-dir")
            .arg(self.state.path().join("first"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// One more worker: `barge worker`.
    fn join(&self, name: &str, extra: &[&str]) -> Child {
        barge()
            .args(["worker", "--coordinator", &self.ctl_url, "--task", &self.task])
            .arg("--state-dir")
            .arg(self.state.path().join(name))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    async fn assert_equal_and_whole(&self) {
        assert_ok(&run(barge().args(["validate", &self.src.url, &self.dst.url])), "validate after the shared load");
        for (table, n) in [("items", "120000"), ("notes", "30000")] {
            assert_eq!(self.dst.query_row(&format!("SELECT count(*) FROM {table}")).await[0].as_deref(), Some(n), "{table}: every row once");
        }
        if self.dst.engine == Engine::Postgres {
            let objects = self
                .dst
                .query_row(
                    "SELECT (SELECT count(*) FROM pg_indexes WHERE indexname = 'items_grp'),
                            (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'notes'::regclass),
                            (SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid IN ('items'::regclass, 'notes'::regclass)),
                            (SELECT count(*) FROM pg_views WHERE viewname = 'item_groups')",
                )
                .await;
            let want: Vec<Option<String>> = ["1", "1", "2", "1"].iter().map(|s| Some(s.to_string())).collect();
            assert_eq!(objects, want, "index, foreign key, both primary keys and the view are on the target");
            // The copy takes writes as the source would.
            exec(&self.dst, "INSERT INTO items (id, grp, label) VALUES (120001, 1, 'new')").await;
        } else {
            let fk = self.dst.query_row("SELECT count(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'notes'").await;
            assert_eq!(fk[0].as_deref(), Some("1"), "the foreign key is on the target");
        }
    }

    async fn drop_all(self, ctl: TestDb) {
        self.src.drop_db().await;
        self.dst.drop_db().await;
        ctl.drop_db().await;
    }
}

pub(crate) fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub(crate) fn finish(child: Child, what: &str) -> std::process::Output {
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, what);
    out
}

/// Polls `sql` on the coordinator until it returns a non-NULL first column.
pub(crate) async fn wait_for_value(ctl: &TestDb, sql: &str, what: &str, children: &mut [&mut Child]) -> String {
    let started = Instant::now();
    loop {
        if let Ok(row) = ctl.try_query_row(sql).await {
            if let Some(Some(v)) = row.into_iter().next() {
                return v;
            }
        }
        for c in children.iter_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!("a worker ended ({st:?}) before {what}");
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

pub(crate) fn held_by(pid: u32, kind: &str) -> String {
    format!(
        "SELECT min(u.id)::text FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner
          WHERE w.pid = {pid} AND u.kind = '{kind}' AND u.status = 'leased'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_chunk_loses_it_to_the_others_and_a_late_worker_takes_a_share() {
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_kill").await;
    let r = Run::new(src, dst, ctl.url.clone(), "kill-mid-chunk");
    let capped = ["--lease-timeout", "3", "--max-rate", "2"];
    let mut first = r.start(&capped);
    let mut doomed = r.join("doomed", &["--max-rate", "2"]);
    // SIGKILL the second worker while it holds a chunk, after a chunk is done.
    let sql = format!("SELECT CASE WHEN (SELECT count(*) FROM barge_control.units WHERE kind = 'chunk' AND status = 'done') > 0 THEN ({}) END", held_by(doomed.id(), "chunk"));
    wait_for_value(&ctl, &sql, "the second worker holds a chunk", &mut [&mut first, &mut doomed]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let killed_at = Instant::now();
    // The chunk it held when it died (its lease outlives it for a while).
    let unit = ctl.query_row(&held_by(doomed.id(), "chunk")).await[0].clone().expect("the killed worker held a chunk when it died");
    // `barge status` shows the dead worker still holding that chunk.
    let out = run(barge().args(["--json", "status", "--coordinator", &ctl.url, "--task", &r.task]));
    assert_ok(&out, "status while running");
    let j: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let dead = j["tasks"][0]["workers"].as_array().unwrap().iter().find(|w| w["pid"] == doomed.id()).expect("the killed worker is listed").clone();
    assert_eq!(dead["leases"].as_array().map(|l| l.len()), Some(1), "{dead}");
    let items = j["tasks"][0]["tables"].as_array().unwrap().iter().find(|t| t["table"].as_str().is_some_and(|n| n.ends_with("items"))).expect("items is listed").clone();
    assert_eq!(items["keys"], "pending", "items' keys wait for its last chunk: {items}");
    let late = r.join("late", &["--max-rate", "2"]);
    let late_pid = late.id();
    finish(first, "the first worker");
    finish(late, "the worker that joined late");

    let row = ctl.query_row(&format!("SELECT status, attempts::text FROM barge_control.units WHERE id = {unit}")).await;
    assert_eq!(row[0].as_deref(), Some("done"));
    assert!(row[1].as_deref().unwrap().parse::<i32>().unwrap() >= 2, "the killed worker's chunk was leased again: {row:?}");
    let shared = ctl.query_row(&format!("SELECT count(*)::text FROM barge_control.units u JOIN barge_control.workers w ON w.id = u.owner WHERE w.pid = {late_pid} AND u.kind = 'chunk' AND u.status = 'done'")).await;
    assert!(shared[0].as_deref().unwrap().parse::<i32>().unwrap() >= 1, "the late worker loaded chunks too");
    let task = ctl.query_row("SELECT state FROM barge_control.tasks").await;
    assert_eq!(task[0].as_deref(), Some("done"));
    // Silent for longer than its lease: shown as lost.
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(killed_at.elapsed())).await;
    let out = run(barge().args(["status", "--coordinator", &ctl.url]));
    assert_ok(&out, "status at the end");
    let text = stdout(&out);
    assert_eq!(text.matches(" lost ").count(), 1, "the killed worker is shown lost: {text}");
    assert!(text.contains("task kill-mid-chunk: done") && text.contains("chunks: 15 of 15 done, 150000 rows") && text.contains("keys and objects: done") && text.matches("keys: done").count() == 2, "{text}");
    assert_eq!(text.matches(" finished ").count(), 2, "two workers finished, the killed one did not: {text}");
    assert_keys_built_by_last_chunk(&ctl).await;
    r.assert_equal_and_whole().await;
    r.drop_all(ctl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_that_lost_its_lease_is_fenced_and_doubles_nothing() {
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_pause").await;
    let r = Run::new(src, dst, ctl.url.clone(), "paused");
    // Slow, so the chunk it holds is mid-COPY when it is stopped.
    let mut paused = r.start(&["--lease-timeout", "2", "--max-rate", "1"]);
    let sql = format!("SELECT CASE WHEN (SELECT count(*) FROM barge_control.units WHERE kind = 'chunk' AND status = 'done') > 0 THEN ({}) END", held_by(paused.id(), "chunk"));
    let unit = wait_for_value(&ctl, &sql, "the first worker holds its second chunk", &mut [&mut paused]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&paused, libc::SIGSTOP);
    // Past its lease: another worker takes the chunk over and finishes the run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = r.join("other", &[]);
    finish(other, "the worker that took over");
    signal(&paused, libc::SIGCONT);
    let out = finish(paused, "the paused worker, once it runs again");
    assert!(stderr(&out).contains("another worker"), "the paused worker says it lost its chunk: {}", text(&out));

    let row = ctl.query_row(&format!("SELECT status, attempts::text FROM barge_control.units WHERE id = {unit}")).await;
    assert_eq!(row[0].as_deref(), Some("done"));
    assert!(row[1].as_deref().unwrap().parse::<i32>().unwrap() >= 2, "the paused worker's chunk was taken over: {row:?}");
    // The target's fence holds the later epoch for that unit.
    let fence = r.dst.query_row(&format!("SELECT count(*) FROM barge_fence WHERE unit = {unit}")).await;
    assert_eq!(fence[0].as_deref(), Some("1"));
    r.assert_equal_and_whole().await;
    r.drop_all(ctl).await;
}

/// Each table's keys were built once, by a worker that loaded one of its
/// chunks, after its last chunk was in.
async fn assert_keys_built_by_last_chunk(ctl: &TestDb) {
    let row = ctl
        .query_row(
            "SELECT count(*),
                    count(*) FILTER (WHERE k.status = 'done' AND k.result -> 'steps' IS NOT NULL
                      AND k.owner IN (SELECT c.owner FROM barge_control.units c WHERE c.task = k.task AND c.kind = 'chunk' AND c.table_key = k.table_key)
                      AND k.done_at >= (SELECT max(c.done_at) FROM barge_control.units c WHERE c.task = k.task AND c.kind = 'chunk' AND c.table_key = k.table_key)),
                    string_agg(k.table_key || ' ' || k.status || ' by ' || coalesce(k.owner, '-'), '; ')
               FROM barge_control.units k WHERE k.kind = 'keys'",
        )
        .await;
    assert_eq!(row[..2], [Some("2".into()), Some("2".into())], "each table's keys built once, by a worker that loaded one of its chunks, after the last: {:?}", row[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_building_a_tables_keys_dies_and_another_builds_them() {
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_post").await;
    let r = Run::new(src, dst, ctl.url.clone(), "post-dies");
    let mut a = r.start(&["--lease-timeout", "2"]);
    let mut b = r.join("b", &[]);
    // Freeze whoever takes the big table's keys (built by whoever loads
    // its last chunk), then kill it.
    let sql = "SELECT w.pid::text FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner
                WHERE u.kind = 'keys' AND u.table_key LIKE '%items' AND u.status = 'leased'";
    let pid: u32 = wait_for_value(&ctl, sql, "a worker takes the keys of items", &mut [&mut a, &mut b]).await.parse().unwrap();
    let (mut doomed, survivor) = if pid == a.id() { (a, b) } else { (b, a) };
    let survivor_pid = survivor.id();
    signal(&doomed, libc::SIGSTOP);
    let keys = ctl.query_row("SELECT status FROM barge_control.units WHERE kind = 'keys' AND table_key LIKE '%items'").await;
    assert_eq!(keys[0].as_deref(), Some("leased"), "the keys were built before they could be stopped; make the table bigger");
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    finish(survivor, "the surviving worker");
    let row = ctl
        .query_row(
            "SELECT u.status, u.attempts::text, w.pid::text FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner
              WHERE u.kind = 'keys' AND u.table_key LIKE '%items'",
        )
        .await;
    assert_eq!(row, vec![Some("done".into()), Some("2".into()), Some(survivor_pid.to_string())], "the keys of items were built again by the other worker");
    let post = ctl.query_row("SELECT status FROM barge_control.units WHERE kind = 'post'").await;
    assert_eq!(post[0].as_deref(), Some("done"));
    r.assert_equal_and_whole().await;
    r.drop_all(ctl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_carry_on_when_the_coordinator_restarts() {
    let pg = PrivatePg::start();
    let client = pg.client("postgres").await.expect("private PostgreSQL");
    client.batch_execute("CREATE DATABASE ctl").await.unwrap();
    let (src, dst, unused) = setup(Engine::Postgres, "coord_restart").await;
    unused.drop_db().await;
    let ctl = TestDb::external_pg("ctl", pg.url("ctl"), pg.conninfo("ctl"));
    let r = Run::new(src, dst, pg.url("ctl"), "restart");
    let mut a = r.start(&["--lease-timeout", "5", "--max-rate", "3"]);
    let mut b = r.join("b", &["--max-rate", "3"]);
    wait_for_value(&ctl, "SELECT CASE WHEN count(*) >= 2 THEN 'yes' END FROM barge_control.units WHERE kind = 'chunk' AND status = 'done'", "two chunks are done", &mut [&mut a, &mut b]).await;
    pg.ctl(&["restart"]);
    finish(a, "the first worker");
    finish(b, "the second worker");
    let done = ctl.query_row("SELECT state FROM barge_control.tasks").await;
    assert_eq!(done[0].as_deref(), Some("done"));
    r.assert_equal_and_whole().await;
    r.src.drop_db().await;
    r.dst.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_load_mariadb_and_a_rerun_of_a_finished_task_changes_nothing() {
    let (src, dst, ctl) = setup(Engine::Mysql, "coord_maria").await;
    let r = Run::new(src, dst, ctl.url.clone(), "maria");
    let a = r.start(&["--max-rate", "4"]);
    let b = r.join("b", &["--max-rate", "4"]);
    finish(a, "the first worker");
    finish(b, "the second worker");
    r.assert_equal_and_whole().await;
    // A worker joining a finished task has nothing to do and says what is there.
    let again = finish(r.join("again", &[]), "a worker joining the finished task");
    assert!(stdout(&again).contains("120000"), "{}", text(&again));
    assert_eq!(r.dst.query_row("SELECT count(*) FROM items").await[0].as_deref(), Some("120000"));
    r.drop_all(ctl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_coordinated_run_refuses_is_named() {
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_refuse").await;
    let lite = TestDb::new(Engine::Sqlite, "coord_refuse").await;
    let out = run(barge().args(["migrate", &src.url, &lite.url, "--coordinator", &ctl.url, "--task", "x"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("SQLite takes one writer"), "{}", text(&out));
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--coordinator", &ctl.url, "--task", "bad name;"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("a task name is"), "{}", text(&out));
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--coordinator", "mysql://x@127.0.0.1/y", "--task", "x"]));
    assert!(stderr(&out).contains("the coordinator is a PostgreSQL database"), "{}", text(&out));
    // A worker for a task nobody started says how to start it.
    let out = run(barge().args(["worker", "--coordinator", &ctl.url, "--task", "nobody", "--wait", "1"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("task nobody does not exist") && stderr(&out).contains("--coordinator URL --task nobody"), "{}", text(&out));
    // The same task name with other arguments is refused, naming both.
    let state = tempfile::tempdir().unwrap();
    let first = run(barge().args(["migrate", &src.url, &dst.url, "--coordinator", &ctl.url, "--task", "one", "--tables", "notes,items"]).arg("--state-dir").arg(state.path()));
    assert_ok(&first, "a first shared run");
    let other = run(barge().args(["migrate", &src.url, &dst.url, "--coordinator", &ctl.url, "--task", "one", "--tables", "items"]).arg("--state-dir").arg(state.path()));
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(stderr(&other).contains("was started with other arguments") && stderr(&other).contains("barge worker"), "{}", text(&other));
    lite.drop_db().await;
    src.drop_db().await;
    dst.drop_db().await;
    ctl.drop_db().await;
}

/// A file the command line names (`--mapping`) travels with the task: a
/// worker whose host has another file at that path (or none) uses the
/// task's copy, and a `migrate` that would join with a different file is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_use_the_tasks_copy_of_the_mapping_file() {
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_files").await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.json");
    let rules = |max: u32| {
        format!(
            r#"{{"rules": [
  {{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {{"schema-name": "%", "table-name": "items"}},
   "filters": [{{"filter-type": "source", "column-name": "id", "filter-conditions": [{{"filter-operator": "lte", "value": "{max}"}}]}}]}},
  {{"rule-type": "selection", "rule-id": "2", "rule-name": "2", "rule-action": "include", "object-locator": {{"schema-name": "%", "table-name": "notes"}}}}
]}}"#
        )
    };
    std::fs::write(&mapping, rules(60000)).unwrap();
    let m = mapping.to_str().unwrap().to_string();
    let r = Run::new(src, dst, ctl.url.clone(), "with-mapping");
    let mut first = r.start(&["--mapping", &m, "--max-rate", "3"]);
    wait_for_value(&ctl, "SELECT min(name) FROM barge_control.tasks", "the task is published", &mut [&mut first]).await;
    // The file changes on this "host" once the task has its copy.
    std::fs::write(&mapping, rules(10)).unwrap();
    let joiner = run(barge()
        .args(["migrate", &r.src.url, &r.dst.url, "--coordinator", &ctl.url, "--task", &r.task, "--chunk-rows", "10000", "--parallel", "1", "--mapping", &m])
        .arg("--state-dir")
        .arg(r.state.path().join("joiner")));
    assert_eq!(joiner.status.code(), Some(2), "{}", text(&joiner));
    assert!(stderr(&joiner).contains("differs from the copy the task was started with") && stderr(&joiner).contains("barge worker"), "{}", text(&joiner));
    let worker = r.join("worker", &["--max-rate", "3"]);
    let worker_pid = worker.id();
    finish(worker, "the worker that uses the task's copy");
    finish(first, "the first worker");
    let loaded = ctl.query_row(&format!("SELECT count(*)::text FROM barge_control.units u JOIN barge_control.workers w ON w.id = u.owner WHERE w.pid = {worker_pid} AND u.kind = 'chunk' AND u.status = 'done'")).await;
    assert_ne!(loaded[0].as_deref(), Some("0"), "the worker loaded chunks");
    for (table, n) in [("items", "60000"), ("notes", "30000")] {
        assert_eq!(r.dst.query_row(&format!("SELECT count(*) FROM {table}")).await[0].as_deref(), Some(n), "{table}: the rows the task's mapping selects");
    }
    std::fs::write(&mapping, rules(60000)).unwrap();
    assert_ok(&run(barge().args(["validate", &r.src.url, &r.dst.url, "--mapping", &m])), "validate with the task's mapping");
    r.drop_all(ctl).await;
}

#[test]
fn the_stored_command_line_leaves_out_what_belongs_to_one_worker() {
    let line: Vec<String> = ["pg://a", "pg://b", "--coordinator", "pg://c", "--task=t", "--max-rate", "2", "--state-dir", "/x", "--chunk-rows", "5"].iter().map(|s| s.to_string()).collect();
    assert_eq!(barge::commands::worker::shared_args(&line), vec!["pg://a", "pg://b", "--chunk-rows", "5"]);
}

/// The fence itself, on both engines: a later epoch wins whatever the
/// order, and an earlier one that comes second is refused, also while the
/// later one's transaction is still open (it waits for it, then refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_fence_refuses_an_earlier_epoch_on_postgres_and_mariadb() {
    use barge::coord::fence;
    use barge::endpoint::Role;
    for engine in [Engine::Postgres, Engine::Mysql] {
        let dst = TestDb::new(engine, "fence").await;
        exec(&dst, "CREATE TABLE landed (v INT)").await;
        let mut a = dst.connect(Role::Target).await;
        fence::prepare(&mut a).await.unwrap();
        fence::begin(&mut a, "t", 7, 10, 5).await.unwrap();
        a.execute("INSERT INTO landed VALUES (10)").await.unwrap();
        fence::commit(&mut a).await.unwrap();
        let mut b = dst.connect(Role::Target).await;
        let e = fence::begin(&mut b, "t", 7, 9, 5).await.unwrap_err();
        assert!(fence::is_fenced(&e), "{engine:?}: {e}");
        // A later epoch is open and holds the fence; an earlier one waits, then is refused.
        fence::begin(&mut a, "t", 7, 20, 5).await.unwrap();
        let url = dst.url.clone();
        let earlier = tokio::spawn(async move {
            let mut c = barge::db::Db::connect(&barge::endpoint::Endpoint::parse(&url).unwrap(), Role::Target).await.unwrap();
            fence::begin(&mut c, "t", 7, 15, 5).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!earlier.is_finished(), "{engine:?}: the earlier epoch waits for the open later one");
        a.execute("INSERT INTO landed VALUES (20)").await.unwrap();
        fence::commit(&mut a).await.unwrap();
        let e = earlier.await.unwrap().unwrap_err();
        assert!(fence::is_fenced(&e), "{engine:?}: {e}");
        // Another unit is fenced on its own.
        fence::begin(&mut b, "t", 8, 1, 5).await.unwrap();
        fence::rollback(&mut b).await;
        assert_eq!(dst.query_row("SELECT COUNT(*) FROM landed").await[0].as_deref(), Some("2"), "{engine:?}");
        drop((a, b));
        dst.drop_db().await;
    }
}

/// `--mode cdc` shared: one worker reads MariaDB's binlog, a standby
/// waits; the reader is killed under a steady write load, the standby
/// takes over from the position on the target, and the copy converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_the_change_stream_over_when_its_reader_dies() {
    use barge::endpoint::Role;
    let my = TestDb::new(Engine::Mysql, "coord_cdc").await;
    exec(&my, "CREATE TABLE ev (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))").await;
    exec(&my, "INSERT INTO ev SELECT seq, seq * 2, CONCAT('n', seq) FROM seq_1_to_200").await;
    let pos = my.query_row("SHOW MASTER STATUS").await;
    let start = format!("mysql:{}:{}", pos[0].as_deref().unwrap(), pos[1].as_deref().unwrap());
    let dst = TestDb::new(Engine::Postgres, "coord_cdc").await;
    let ctl = TestDb::new(Engine::Postgres, "coord_cdc_ctl").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&run(barge().args(["migrate", &my.url, &dst.url]).arg("--state-dir").arg(state.path().join("load"))), "the full load");
    let shared = ["--mode", "cdc", "--start-position", &start, "--coordinator", &ctl.url, "--task", "changes", "--lease-timeout", "2", "--heartbeat", "1", "--poll-interval", "50"];
    let spawn = |cmd: &mut std::process::Command| cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut reader = spawn(barge().args(["migrate", &my.url, &dst.url]).args(shared).arg("--state-dir").arg(state.path().join("a")));
    wait_for_value(&ctl, &held_by(reader.id(), "cdc"), "the first worker reads the changes", &mut [&mut reader]).await;
    let standby = spawn(barge().args(["worker", "--coordinator", &ctl.url, "--task", "changes"]).arg("--state-dir").arg(state.path().join("b")));
    let standby_pid = standby.id();
    // A live reader keeps its lease past the lease timeout (its heartbeat
    // renews it): the standby only waits.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = ctl.query_row(&format!("SELECT u.attempts::text, ({})::text IS NOT NULL FROM barge_control.units u WHERE u.kind = 'cdc'", held_by(reader.id(), "cdc"))).await;
    assert_eq!(held, vec![Some("1".into()), Some("t".into())], "the reader still holds the stream's first lease after 2.5 lease timeouts");
    // A steady write load: inserts, updates and deletes, about 50 a second.
    let writer_db = my.url.clone();
    let writer = tokio::spawn(async move {
        let mut c = barge::db::Db::connect(&barge::endpoint::Endpoint::parse(&writer_db).unwrap(), Role::Source).await.unwrap();
        for i in 0..300 {
            let sql = match i % 3 {
                0 => format!("INSERT INTO ev VALUES ({}, {i}, 'w{i}')", 1000 + i),
                1 => format!("UPDATE ev SET v = v + {i}, note = 'u{i}' WHERE id = {}", 1 + (i * 7) % 200),
                _ => format!("DELETE FROM ev WHERE id = {}", 1 + (i * 13) % 200),
            };
            c.execute(&sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    reader.kill().unwrap();
    reader.wait().unwrap();
    writer.await.unwrap();
    // The standby catches up: the copy equals the source.
    let started = Instant::now();
    loop {
        let v = run(barge().args(["validate", &my.url, &dst.url]));
        if v.status.success() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the copy did not converge after the takeover: {}", text(&v));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let row = ctl.query_row("SELECT u.attempts::text, w.pid::text FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner WHERE u.kind = 'cdc'").await;
    assert_eq!(row, vec![Some("2".into()), Some(standby_pid.to_string())], "the standby holds the stream's second lease");
    let out = interrupt(standby);
    assert!(stderr(&out).contains("taking over the change stream"), "{}", text(&out));
    my.drop_db().await;
    dst.drop_db().await;
    ctl.drop_db().await;
}

/// `--mode full-load-and-cdc` as one shared task: the workers share the
/// load while the source takes writes, then one reads the changes from
/// where the schema step started capturing (one slot for the task) and the
/// other stands by; the copy converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_load_then_its_change_stream_converges_under_writes() {
    use barge::endpoint::Role;
    let (src, dst, ctl) = setup(Engine::Postgres, "coord_flc").await;
    let r = Run::new(src, dst, ctl.url.clone(), "load-then-changes");
    let mut a = r.start(&["--mode", "full-load-and-cdc", "--lease-timeout", "3", "--heartbeat", "1", "--poll-interval", "50", "--max-rate", "4"]);
    let mut b = r.join("b", &["--max-rate", "4"]);
    // Writes while the chunks load and after: the row counts stay.
    let url = r.src.url.clone();
    let writer = tokio::spawn(async move {
        let mut c = barge::db::Db::connect(&barge::endpoint::Endpoint::parse(&url).unwrap(), Role::Source).await.unwrap();
        c.execute("INSERT INTO items (id, grp, label) VALUES (130000, 3, 'during the load')").await.unwrap();
        c.execute("DELETE FROM items WHERE id = 1").await.unwrap();
        for i in 0..150 {
            let sql = match i % 2 {
                0 => format!("UPDATE items SET label = 'changed {i}', amount = {i}.25 WHERE id = {}", 1 + (i * 797) % 120000),
                _ => format!("UPDATE notes SET body = 'edited {i}' WHERE id = {}", 1 + (i * 199) % 30000),
            };
            c.execute(&sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let reader = "SELECT w.pid::text FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner WHERE u.kind = 'cdc' AND u.status = 'leased'";
    let pid = wait_for_value(&ctl, reader, "a worker reads the changes after the load", &mut [&mut a, &mut b]).await;
    writer.await.unwrap();
    let started = Instant::now();
    loop {
        let v = run(barge().args(["validate", &r.src.url, &r.dst.url]));
        if v.status.success() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the copy did not converge: {}", text(&v));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let task = ctl.query_row("SELECT t.state, (SELECT count(*) FROM barge_control.units u WHERE u.task = t.name AND u.kind = 'cdc' AND u.attempts = 1)::text FROM barge_control.tasks t").await;
    assert_eq!(task, vec![Some("running".into()), Some("1".into())], "the load is done and its change stream is read, on its first lease");
    let slots = r.src.query_row("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()").await;
    assert_eq!(slots[0].as_deref(), Some("1"), "one slot for the task, whichever worker started it");
    let (reader, standby) = if pid == a.id().to_string() { (a, b) } else { (b, a) };
    let out = interrupt(standby);
    assert!(stderr(&out).contains("standing by"), "{}", text(&out));
    let out = interrupt(reader);
    assert!(stderr(&out).contains("this worker reads the changes"), "{}", text(&out));
    let slot = r.src.query_row("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()").await;
    assert_ok(&run(barge().args(["cleanup", &r.src.url, "--slot", slot[0].as_deref().unwrap()])), "cleanup of the task's slot");
    r.assert_equal_and_whole().await;
    r.drop_all(ctl).await;
}

/// Rows the target refuses (`--on-error log`) are counted for the whole
/// task in every worker's report, whichever worker met them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_reports_the_rows_any_worker_rejected() {
    let lite = TestDb::new(Engine::Sqlite, "coord_rejects").await;
    exec(&lite, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)").await;
    exec(&lite, "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 40000) INSERT INTO t SELECT i, CASE WHEN i % 4000 = 7 THEN 'not a number ' || i ELSE i END FROM g").await;
    let dst = TestDb::new(Engine::Postgres, "coord_rejects").await;
    let ctl = TestDb::new(Engine::Postgres, "coord_rejects_ctl").await;
    let state = tempfile::tempdir().unwrap();
    let a = barge()
        .args(["migrate", &lite.url, &dst.url, "--coordinator", &ctl.url, "--task", "rejects", "--chunk-rows", "5000", "--parallel", "1", "--on-error", "log", "--max-rate", "0.1"])
        .arg("--state-dir")
        .arg(state.path().join("a"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = barge().args(["worker", "--coordinator", &ctl.url, "--task", "rejects", "--max-rate", "0.1"]).arg("--state-dir").arg(state.path().join("b")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    for (out, who) in [(finish(a, "the first worker"), "first"), (finish(b, "the second worker"), "second")] {
        assert!(stdout(&out).contains("10 rows rejected"), "the {who} worker counts every worker's rejects: {}", text(&out));
    }
    let recorded = ctl.query_row("SELECT sum(rejected)::text, count(DISTINCT owner)::text FROM barge_control.units WHERE kind = 'chunk'").await;
    assert_eq!(recorded[0].as_deref(), Some("10"));
    assert_eq!(dst.query_row("SELECT count(*) FROM t").await[0].as_deref(), Some("39990"));
    let lines: usize = ["a", "b"].iter().map(|w| walk_rejects(&state.path().join(w))).sum();
    assert_eq!(lines, 10, "each rejected row is in one worker's rejects.jsonl");
    dst.drop_db().await;
    ctl.drop_db().await;
}

/// Lines of every rejects.jsonl under `dir`.
fn walk_rejects(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_rejects(&p)
            } else if p.file_name().is_some_and(|n| n == "rejects.jsonl") {
                std::fs::read_to_string(&p).unwrap_or_default().lines().count()
            } else {
                0
            }
        })
        .sum()
}
