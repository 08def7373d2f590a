//! `barge status --coordinator URL [--task NAME]`: every task, every
//! worker with its leases and the age of its heartbeat, progress per
//! table, and the units that failed with their errors. Read-only: it
//! never migrates or writes the control schema.

use serde::Serialize;
use tokio_postgres::Client;

use crate::endpoint::Role;
use crate::error::{Error, Result};

#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub name: String,
    pub state: String,
    pub error: Option<String>,
    pub source: String,
    pub target: String,
    pub age_seconds: f64,
    pub chunks_done: i64,
    pub chunks: i64,
    pub rows: i64,
    pub schema: String,
    pub keys_and_objects: String,
    pub tables: Vec<TableProgress>,
    pub workers: Vec<WorkerStatus>,
    pub failed_units: Vec<FailedUnit>,
    /// A validate task's plan and ranges (`None` for other tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate: Option<super::validate::ValidateStatus>,
    /// A stream's shards, when the task reads one (`coord::shards`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardStatus>,
}

/// One shard of a stream task.
#[derive(Debug, Serialize)]
pub struct ShardStatus {
    pub shard: String,
    /// `waiting` (for its parents), `pending` (free), `leased` (being
    /// read), `expired` (its holder stopped renewing: about to be taken
    /// over) or `done` (closed and read to its end).
    pub state: String,
    pub parents: Vec<String>,
    pub holder: Option<String>,
    /// The last offset the destination acknowledged.
    pub checkpoint: Option<String>,
    /// The age of the holder's heartbeat.
    pub heartbeat_age_seconds: Option<f64>,
    pub lease_seconds_left: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct TableProgress {
    pub table: String,
    pub chunks_done: i64,
    pub chunks: i64,
    pub rows: i64,
    /// Its keys and indexes: pending, leased (being built), done, failed;
    /// "-" for a table with none to build on its own.
    pub keys: String,
}

#[derive(Debug, Serialize)]
pub struct WorkerStatus {
    pub id: String,
    pub host: String,
    pub pid: i32,
    /// `working`, `finished`, `failed`, or `lost`: working, but silent
    /// for longer than its lease (killed, paused or cut off).
    pub state: String,
    pub heartbeat_age_seconds: f64,
    pub chunks_done: i64,
    /// Ranges it compared (a validate task).
    pub ranges_done: i64,
    /// What it holds now: `table#chunk` (or `schema`, `post`) and the
    /// seconds left on each lease (negative: expired, to be taken over).
    pub leases: Vec<(String, f64)>,
}

#[derive(Debug, Serialize)]
pub struct FailedUnit {
    pub unit: String,
    pub attempts: i32,
    pub error: String,
}

fn q<'a>(display: &'a str, sql: &str) -> impl Fn(tokio_postgres::Error) -> Error + 'a {
    let sql = sql.to_string();
    move |e| crate::db::postgres::query_error(display, &sql, e)
}

/// Reads the status of `task` (or of every task) from the coordinator.
pub async fn read(url: &str, task: Option<&str>) -> Result<Vec<TaskStatus>> {
    let ep = super::coordinator_endpoint(url)?;
    let display = ep.display.clone();
    let client = crate::db::postgres::connect_client(&ep, Role::Coordinator).await?;
    let has = "SELECT to_regclass('barge_control.tasks') IS NOT NULL";
    if !client.query_one(has, &[]).await.map_err(q(&display, has))?.get::<_, bool>(0) {
        return Err(Error::Endpoint { endpoint: display, message: "no barge_control schema here: no task was started with this coordinator".into(), hint: Some("give the URL passed to `migrate --coordinator`".into()) });
    }
    let sql = "SELECT name, state, error, source, target, extract(epoch FROM now() - created_at)::float8 FROM barge_control.tasks WHERE $1::text IS NULL OR name = $1 ORDER BY created_at";
    let rows = client.query(sql, &[&task]).await.map_err(q(&display, sql))?;
    if rows.is_empty() {
        if let Some(t) = task {
            return Err(Error::Other { message: format!("task {t} does not exist in the coordinator {display}"), hint: Some("`barge status --coordinator URL` lists the tasks it holds".into()) });
        }
    }
    let mut out = Vec::new();
    for r in rows {
        let name: String = r.get(0);
        out.push(task_status(&client, &display, &name, &r).await?);
    }
    Ok(out)
}

async fn task_status(client: &Client, display: &str, name: &str, r: &tokio_postgres::Row) -> Result<TaskStatus> {
    let sql = "SELECT c.table_key, count(*) FILTER (WHERE c.status = 'done'), count(*), coalesce(sum(c.rows) FILTER (WHERE c.status = 'done'), 0)::bigint,
                      coalesce((SELECT k.status FROM barge_control.units k WHERE k.task = $1 AND k.kind = 'keys' AND k.table_key = c.table_key), '-')
                 FROM barge_control.units c WHERE c.task = $1 AND c.kind = 'chunk' GROUP BY c.table_key ORDER BY c.table_key";
    let tables: Vec<TableProgress> = client
        .query(sql, &[&name])
        .await
        .map_err(q(display, sql))?
        .iter()
        .map(|t| TableProgress { table: t.get(0), chunks_done: t.get(1), chunks: t.get(2), rows: t.get(3), keys: t.get(4) })
        .collect();
    let sql = "SELECT kind, status FROM barge_control.units WHERE task = $1 AND kind IN ('schema', 'post')";
    let mut schema = String::from("pending");
    let mut post = String::from("pending");
    for u in client.query(sql, &[&name]).await.map_err(q(display, sql))? {
        let (kind, status): (String, String) = (u.get(0), u.get(1));
        if kind == "schema" {
            schema = status;
        } else {
            post = status;
        }
    }
    let sql = "SELECT w.id, w.host, w.pid, w.state, extract(epoch FROM now() - w.heartbeat_at)::float8,
                      (SELECT count(*) FROM barge_control.units d WHERE d.task = w.task AND d.owner = w.id AND d.kind = 'chunk' AND d.status = 'done'),
                      (SELECT count(*) FROM barge_control.units d WHERE d.task = w.task AND d.owner = w.id AND d.kind = 'validate' AND d.id > 0 AND d.status = 'done'),
                      -- A working worker silent for longer than its lease stopped
                      -- (killed, paused, cut off): its units go to the others.
                      CASE WHEN w.state = 'working' AND now() - w.heartbeat_at > make_interval(secs => w.lease_seconds) THEN 'lost' ELSE w.state END
                 FROM barge_control.workers w WHERE w.task = $1 ORDER BY w.started_at";
    let mut workers = Vec::new();
    for w in client.query(sql, &[&name]).await.map_err(q(display, sql))? {
        let id: String = w.get(0);
        let held = "SELECT CASE WHEN kind IN ('chunk', 'validate') AND table_key IS NOT NULL THEN table_key || '#' || chunk WHEN kind = 'keys' THEN 'keys of ' || table_key WHEN kind = 'shard' THEN 'shard ' || table_key ELSE kind END, extract(epoch FROM lease_expires - now())::float8
                      FROM barge_control.units WHERE task = $1 AND owner = $2 AND status = 'leased' ORDER BY id";
        let leases = client.query(held, &[&name, &id]).await.map_err(q(display, held))?.iter().map(|l| (l.get::<_, String>(0), l.get::<_, Option<f64>>(1).unwrap_or(0.0))).collect();
        workers.push(WorkerStatus { id, host: w.get(1), pid: w.get(2), state: w.get(7), heartbeat_age_seconds: w.get(4), chunks_done: w.get(5), ranges_done: w.get(6), leases });
    }
    let shards = shard_status(client, display, name).await?;
    let sql = "SELECT CASE WHEN kind IN ('chunk', 'validate') AND table_key IS NOT NULL THEN table_key || '#' || chunk WHEN kind = 'keys' THEN 'keys of ' || table_key WHEN kind = 'shard' THEN 'shard ' || table_key ELSE kind END, attempts, coalesce(error, '') FROM barge_control.units WHERE task = $1 AND (status = 'failed' OR (error IS NOT NULL AND status <> 'done')) ORDER BY id";
    let failed_units = client.query(sql, &[&name]).await.map_err(q(display, sql))?.iter().map(|f| FailedUnit { unit: f.get(0), attempts: f.get(1), error: f.get(2) }).collect();
    let validate = super::validate::status(client, display, name).await?;
    Ok(TaskStatus {
        name: name.to_string(),
        state: r.get(1),
        error: r.get(2),
        source: r.get(3),
        target: r.get(4),
        age_seconds: r.get(5),
        chunks_done: tables.iter().map(|t| t.chunks_done).sum(),
        chunks: tables.iter().map(|t| t.chunks).sum(),
        rows: tables.iter().map(|t| t.rows).sum(),
        schema,
        keys_and_objects: post,
        tables,
        workers,
        failed_units,
        validate,
        shards,
    })
}

async fn shard_status(client: &Client, display: &str, name: &str) -> Result<Vec<ShardStatus>> {
    let sql = "SELECT u.table_key,
                      CASE WHEN u.status = 'leased' AND u.lease_expires < now() THEN 'expired'
                           WHEN u.status = 'pending' AND EXISTS (SELECT 1 FROM barge_control.units p WHERE p.task = u.task AND p.kind = 'shard'
                                                                    AND p.table_key = ANY (u.parents) AND p.status <> 'done') THEN 'waiting'
                           ELSE u.status END,
                      u.parents, CASE WHEN u.status = 'leased' THEN u.owner END, u.checkpoint ->> 'offset',
                      CASE WHEN u.status = 'leased' THEN extract(epoch FROM now() - w.heartbeat_at)::float8 END,
                      CASE WHEN u.status = 'leased' THEN extract(epoch FROM u.lease_expires - now())::float8 END
                 FROM barge_control.units u LEFT JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner
                WHERE u.task = $1 AND u.kind = 'shard' ORDER BY u.table_key";
    Ok(client
        .query(sql, &[&name])
        .await
        .map_err(q(display, sql))?
        .iter()
        .map(|r| ShardStatus { shard: r.get(0), state: r.get(1), parents: r.get(2), holder: r.get(3), checkpoint: r.get(4), heartbeat_age_seconds: r.get(5), lease_seconds_left: r.get(6) })
        .collect())
}

/// The status as text, one task after another.
pub fn render(tasks: &[TaskStatus]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if tasks.is_empty() {
        s.push_str("no tasks in this coordinator\n");
    }
    for t in tasks {
        let _ = writeln!(s, "task {}: {} ({} → {}), started {} ago", t.name, t.state, t.source, t.target, crate::util::human::duration(t.age_seconds));
        if let Some(e) = &t.error {
            let _ = writeln!(s, "  error: {e}");
        }
        if let Some(v) = &t.validate {
            super::validate::render(v, &mut s);
        } else {
            let _ = writeln!(s, "  schema: {}; chunks: {} of {} done, {} rows; keys and objects: {}", t.schema, t.chunks_done, t.chunks, t.rows, t.keys_and_objects);
            for tp in &t.tables {
                let _ = writeln!(s, "    {:<40} {:>5} of {:<5} chunks {:>12} rows  keys: {}", tp.table, tp.chunks_done, tp.chunks, tp.rows, tp.keys);
            }
        }
        let _ = writeln!(s, "  workers:");
        for w in &t.workers {
            let leases = if w.leases.is_empty() {
                "no lease".to_string()
            } else {
                w.leases.iter().map(|(u, left)| if *left >= 0.0 { format!("{u} ({left:.0}s left)") } else { format!("{u} (expired {:.0}s ago)", -left) }).collect::<Vec<_>>().join(", ")
            };
            let done = if t.validate.is_some() { format!("{:>4} ranges done", w.ranges_done) } else { format!("{:>4} chunks done", w.chunks_done) };
            let _ = writeln!(s, "    {:<28} {:<10} heartbeat {:>6} ago  {done}  {}", w.id, w.state, crate::util::human::duration(w.heartbeat_age_seconds), leases);
        }
        if !t.shards.is_empty() {
            let _ = writeln!(s, "  shards:");
            for sh in &t.shards {
                let holder = match (&sh.holder, sh.heartbeat_age_seconds) {
                    (Some(h), Some(age)) => format!("{h} (heartbeat {} ago)", crate::util::human::duration(age)),
                    (Some(h), None) => h.clone(),
                    _ => "-".into(),
                };
                let parents = if sh.parents.is_empty() { String::new() } else { format!("  after {}", sh.parents.join(", ")) };
                let _ = writeln!(s, "    {:<28} {:<8} {:<40} checkpoint {}{parents}", sh.shard, sh.state, holder, sh.checkpoint.as_deref().unwrap_or("-"));
            }
        }
        for f in &t.failed_units {
            let _ = writeln!(s, "  unit {} (tried {}×): {}", f.unit, f.attempts, f.error);
        }
    }
    s
}
