//! A task's units of work and their leases: publish a task, lease the
//! next unit that is ready, finish it, give it back, or fail the task.
//!
//! A unit is ready when it is pending, or leased and expired, and every
//! unit of the kinds it waits for (`after`) is done; an expired one is
//! taken before a pending one. Taking one is a single
//! `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`: concurrent
//! workers never wait on each other's candidate, and a unit is never
//! held twice. Each lease gets a fresh epoch from one sequence, so a later
//! holder always has the higher epoch ([`super::fence`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::task::state::KeyRange;

use super::Session;

/// Leases the first ready unit of a kind: `$1` task, `$2` kind, `$3` worker,
/// `$4` lease seconds. Public for the test that bounds what it reads.
// MATERIALIZED: the candidate is chosen once. An inlined subquery may be
// evaluated again for each row visited, and pick (and lease) another unit
// each time.
//
// Every part is an index probe, whatever the task's size: `blocked` asks
// once per kind whether any unit is unfinished (a NOT EXISTS per candidate
// compared every pending chunk with every other: 1.6 s a lease at 2,000
// chunks); then an expired lease (a worker stopped: redo its unit first),
// else the first pending unit, each in the index's own order, so LIMIT 1
// stops at once. The row is updated by `id = (SELECT …)`, a form the
// planner cannot turn into a join, which it would plan badly before the
// table has statistics (the schema step takes them when it publishes the
// chunks).
#[doc(hidden)]
pub const LEASE_SQL: &str = "WITH blocked AS MATERIALIZED (
                            SELECT coalesce(array_agg(k), '{}') AS kinds
                              FROM unnest(ARRAY['schema', 'chunk', 'keys', 'post', 'validate', 'pack', 'merge']) AS k
                             WHERE EXISTS (SELECT 1 FROM barge_control.units d
                                            WHERE d.task = $1 AND d.kind = k AND d.status IN ('pending', 'leased', 'failed'))),
                         next AS MATERIALIZED (
                            SELECT coalesce(
                                (SELECT n.id FROM barge_control.units n
                                  WHERE n.task = $1 AND n.kind = $2 AND n.status = 'leased' AND n.lease_expires < now()
                                    AND NOT n.after && (SELECT kinds FROM blocked)
                                  ORDER BY n.id LIMIT 1 FOR UPDATE SKIP LOCKED),
                                (SELECT n.id FROM barge_control.units n
                                  WHERE n.task = $1 AND n.kind = $2 AND n.status = 'pending'
                                    AND NOT n.after && (SELECT kinds FROM blocked)
                                  ORDER BY n.id LIMIT 1 FOR UPDATE SKIP LOCKED)) AS id)
                         UPDATE barge_control.units u
                            SET status = 'leased', owner = $3, epoch = nextval('barge_control.epochs'),
                                lease_expires = now() + make_interval(secs => $4), attempts = u.attempts + 1
                          WHERE u.task = $1 AND u.id = (SELECT id FROM next)
                      RETURNING u.id, u.epoch, u.attempts, u.table_key, u.chunk, u.lo, u.hi, u.holder_conn";

/// Every kind of unit a worker can hold, which its heartbeat renews: one
/// left out expires under a live worker, and another takes it over (the
/// change stream's reader was replaced every lease timeout that way).
pub const LEASED_KINDS: &[&str] = &["schema", "chunk", "keys", "post", "cdc", "shard", "validate", "pack", "merge"];

/// How many times a unit is tried before its error fails the task.
pub const MAX_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Schema,
    Chunk,
    /// One table's keys and indexes, built once its last chunk is in.
    Keys,
    Post,
    /// A task's change stream: one reader at a time.
    Cdc,
    /// A validation range.
    Validate,
    /// A table packed onto one worker's disks, then the merge of every
    /// worker's part into one manifest.
    Pack,
    Merge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Chunk => "chunk",
            Kind::Keys => "keys",
            Kind::Post => "post",
            Kind::Cdc => "cdc",
            Kind::Validate => "validate",
            Kind::Pack => "pack",
            Kind::Merge => "merge",
        }
    }
}

/// A unit this worker holds.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: i64,
    pub epoch: i64,
    /// Times the unit was leased, this one included: above 1, an earlier
    /// holder may have left part of it on the target.
    pub attempts: i32,
    pub table: Option<String>,
    pub chunk: Option<usize>,
    pub range: KeyRange,
    /// The target connection the previous holder wrote through, if it said.
    pub previous_conn: Option<String>,
}

impl Lease {
    /// From a row of `RETURNING id, epoch, attempts, table_key, chunk, lo,
    /// hi, holder_conn`.
    pub(super) fn from_row(r: &tokio_postgres::Row) -> Lease {
        Lease {
            id: r.get(0),
            epoch: r.get(1),
            attempts: r.get(2),
            table: r.get(3),
            chunk: r.get::<_, Option<i32>>(4).map(|c| c as usize),
            range: KeyRange { lo: r.get(5), hi: r.get(6) },
            previous_conn: r.get(7),
        }
    }

    pub fn dirty(&self) -> bool {
        self.attempts > 1
    }
}

/// What a finished unit did: rows written, and rows rejected, zero dates
/// made NULL and decimals rounded on the way (zero for the schema, key
/// and change-stream units).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub rows: u64,
    pub rejected: u64,
    pub zero_dates: u64,
    pub rounded: u64,
}

/// A chunk as the schema unit's holder publishes it.
pub struct NewChunk {
    pub table: String,
    pub chunk: usize,
    pub range: KeyRange,
}

/// Where a task stands.
#[derive(Debug, Clone)]
pub struct Progress {
    pub state: String,
    pub error: Option<String>,
    /// Chunks not done yet (pending, leased or failed); 0 before the
    /// schema step published them.
    pub chunks_left: i64,
    pub schema_done: bool,
    pub post_done: bool,
    /// Units leased and not expired: someone is working.
    pub live_leases: i64,
    pub errored_tables: Vec<String>,
    /// Tables whose keys are not built yet.
    pub keys_left: i64,
}

/// The units a new task starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// A full load: schema, chunks and keys, then the other objects.
    Load,
    /// A change stream: one reader at a time.
    Changes,
    /// A full load, then its change stream from where the schema step
    /// started capturing (`--mode full-load-and-cdc`).
    LoadThenChanges,
    /// A stream's shards, added as workers list them (`coord::shards`).
    Stream,
    /// A validation: its plan, which cuts the ranges.
    Validate,
    /// A pack across hosts: its plan, then the merge (`coord::pack`).
    Pack,
}

/// What a task was started with, to check that a worker joins the same one.
pub struct Published {
    /// The command the task was started with (`migrate`, `validate`, `pack`).
    pub command: String,
    pub args: Vec<String>,
    /// The files its command line names, as the first worker read them.
    pub files: BTreeMap<String, String>,
    /// This call created the task.
    pub created: bool,
}

/// What [`Session::units_standing`] reads.
pub struct UnitsStanding {
    pub state: String,
    pub error: Option<String>,
    /// Unit 0 (the plan) is done.
    pub planned: bool,
    /// Units of the kind not done yet (pending, leased or failed).
    pub left: i64,
    /// Unit 1 (a pack's merge) is done.
    pub last_done: bool,
}

impl Session {
    /// Creates the task with its first units, or finds the one of that
    /// name. A task of the same name started with other arguments is
    /// refused: a worker must not load one plan's chunks into another's.
    pub async fn publish(&self, command: &str, args: &[String], source: &str, target: &str, plan: Plan) -> Result<Published> {
        self.publish_with_files(command, args, &Default::default(), source, target, plan).await
    }

    /// [`Session::publish`], with the contents of the files the command
    /// line names, by the path as given.
    pub async fn publish_with_files(&self, command: &str, args: &[String], files: &BTreeMap<String, String>, source: &str, target: &str, plan: Plan) -> Result<Published> {
        let (task, command, source, target) = (self.task.clone(), command.to_string(), source.to_string(), target.to_string());
        let json = serde_json::to_value(args).expect("strings serialize");
        let files = serde_json::to_value(files).expect("strings serialize");
        let (created, stored) = self
            .call("publish task", |c| {
                let (task, command, source, target, json, files) = (task.clone(), command.clone(), source.clone(), target.clone(), json.clone(), files.clone());
                async move {
                    let inserted = c
                        .query_opt(
                            "INSERT INTO barge_control.tasks (name, command, args, source, target, files) VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (name) DO NOTHING RETURNING name",
                            &[&task, &command, &json, &source, &target, &files],
                        )
                        .await?
                        .is_some();
                    // A full load: schema, then chunks (ids from 2) and
                    // each table's keys, then the other objects once all
                    // of those are done. The change stream after a load is
                    // unit -1. A pack: its plan, then one merge of every
                    // worker's part (with the pack-wide counters). Units go
                    // only into a task of this command (a name taken by
                    // another kind of task gets none), every call: a crash
                    // between the two statements is mended by the next.
                    let units = match plan {
                        Plan::Stream => "",
                        Plan::Changes => "($1, 0, 'cdc', '{}', NULL)",
                        Plan::Load => "($1, 0, 'schema', '{}', NULL), ($1, 1, 'post', '{schema,chunk,keys}', NULL)",
                        Plan::LoadThenChanges => "($1, 0, 'schema', '{}', NULL), ($1, 1, 'post', '{schema,chunk,keys}', NULL), ($1, -1, 'cdc', '{schema,chunk,keys,post}', NULL)",
                        Plan::Validate => "($1, 0, 'validate', '{}', NULL)",
                        Plan::Pack => "($1, 0, 'schema', '{}', NULL), ($1, 1, 'merge', '{schema,pack}', '{\"next_chunk\": 1, \"next_device\": 1}')",
                    };
                    if !units.is_empty() {
                        let sql = format!(
                            "INSERT INTO barge_control.units (task, id, kind, after, checkpoint)
                             SELECT v.task, v.id, v.kind, v.after::text[], v.checkpoint::jsonb FROM (VALUES {units}) AS v(task, id, kind, after, checkpoint)
                              WHERE EXISTS (SELECT 1 FROM barge_control.tasks WHERE name = $1 AND command = $2)
                             ON CONFLICT (task, id) DO NOTHING"
                        );
                        c.execute(&sql, &[&task, &command]).await?;
                    }
                    let row = c.query_one("SELECT command, args, files FROM barge_control.tasks WHERE name = $1", &[&task]).await?;
                    Ok((inserted, (row.get::<_, String>(0), row.get::<_, serde_json::Value>(1), row.get::<_, serde_json::Value>(2))))
                }
            })
            .await?;
        let stored_args: Vec<String> = serde_json::from_value(stored.1).unwrap_or_default();
        let files: BTreeMap<String, String> = serde_json::from_value(stored.2).unwrap_or_default();
        Ok(Published { created: created && stored.0 == command, command: stored.0, args: stored_args, files })
    }

    /// The files the task's command line names, by the path as given.
    pub async fn task_files(&self) -> Result<BTreeMap<String, String>> {
        let task = self.task.clone();
        let row = self
            .call("read the task's files", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT files FROM barge_control.tasks WHERE name = $1", &[&task]).await }
            })
            .await?;
        Ok(row.and_then(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()).unwrap_or_default())
    }

    /// The arguments the task was started with, if it exists.
    pub async fn task_args(&self) -> Result<Option<(String, Vec<String>)>> {
        let task = self.task.clone();
        let row = self
            .call("read task", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT command, args FROM barge_control.tasks WHERE name = $1", &[&task]).await }
            })
            .await?;
        Ok(row.map(|r| (r.get::<_, String>(0), serde_json::from_value(r.get::<_, serde_json::Value>(1)).unwrap_or_default())))
    }

    /// Leases the first ready unit of `kind`, if any.
    pub async fn lease(&self, kind: Kind) -> Result<Option<Lease>> {
        let (task, worker, kind_s, secs) = (self.task.clone(), self.worker.clone(), kind.as_str(), self.lease.as_secs_f64());
        let row = self
            .call("lease a unit", |c| {
                let (task, worker) = (task.clone(), worker.clone());
                async move {
                    c.query_opt(LEASE_SQL, &[&task, &kind_s, &worker, &secs]).await
                }
            })
            .await?;
        Ok(row.as_ref().map(Lease::from_row))
    }

    /// Says which target connection writes under `lease`, so a worker that
    /// takes the unit over can end that connection's open transaction.
    pub async fn set_holder_conn(&self, lease: &Lease, conn: &str) -> Result<()> {
        let (task, id, epoch, conn) = (self.task.clone(), lease.id, lease.epoch, conn.to_string());
        self.call("record the writer", |c| {
            let (task, conn) = (task.clone(), conn.clone());
            async move { c.execute("UPDATE barge_control.units SET holder_conn = $4 WHERE task = $1 AND id = $2 AND epoch = $3", &[&task, &id, &epoch, &conn]).await }
        })
        .await
        .map(|_| ())
    }

    /// Marks the unit done with its rows. False when the lease was lost
    /// (another worker took the unit; the target's fence decided whose
    /// rows stand).
    pub async fn finish(&self, lease: &Lease, done: &Counts) -> Result<bool> {
        let (task, id, epoch) = (self.task.clone(), lease.id, lease.epoch);
        let (rows, rejected, zero_dates, rounded) = (done.rows as i64, done.rejected as i64, done.zero_dates as i64, done.rounded as i64);
        let n = self
            .call("finish a unit", |c| {
                let task = task.clone();
                async move {
                    c.execute(
                        "UPDATE barge_control.units SET status = 'done', rows = $4, rejected = $5, zero_dates = $6, rounded = $7,
                                done_at = now(), lease_expires = NULL, error = NULL
                         WHERE task = $1 AND id = $2 AND epoch = $3",
                        &[&task, &id, &epoch, &rows, &rejected, &zero_dates, &rounded],
                    )
                    .await
                }
            })
            .await?;
        Ok(n == 1)
    }

    /// Marks a unit done with what it produced (a table's key build, a
    /// validation range's findings, a packed table's files) and the host
    /// that did it. False when the lease had passed to another worker: its
    /// result is not taken (the new holder's stands).
    pub async fn finish_with(&self, lease: &Lease, result: &serde_json::Value, host: &str, rows: u64) -> Result<bool> {
        let (task, id, epoch, result, host, rows) = (self.task.clone(), lease.id, lease.epoch, result.clone(), host.to_string(), rows as i64);
        let n = self
            .call("finish a unit", |c| {
                let (task, result, host) = (task.clone(), result.clone(), host.clone());
                async move {
                    c.execute(
                        "UPDATE barge_control.units SET status = 'done', result = $4, host = $5, rows = $6, done_at = now(), lease_expires = NULL, error = NULL
                          WHERE task = $1 AND id = $2 AND epoch = $3 AND status = 'leased'",
                        &[&task, &id, &epoch, &result, &host, &rows],
                    )
                    .await
                }
            })
            .await?;
        Ok(n == 1)
    }

    /// Finishes the schema unit and publishes the chunks it cut, in one
    /// statement: workers see every chunk or none.
    /// `keyed` names the tables whose keys a chunk's finisher builds (one
    /// `keys` unit each, after the chunks).
    /// `capture` is where the change stream after the load starts
    /// (`Plan::LoadThenChanges`), kept in its unit's checkpoint.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_schema(&self, lease: &Lease, chunks: &[NewChunk], keyed: &[String], errored_tables: &[String], ledger: &serde_json::Value, capture: Option<&serde_json::Value>) -> Result<bool> {
        let capture = capture.cloned();
        let task = self.task.clone();
        let epoch = lease.epoch;
        let n = chunks.len() as i64;
        let ids: Vec<i64> = (0..n).map(|i| i + 2).chain((0..keyed.len() as i64).map(|i| i + 2 + n)).collect();
        let kinds: Vec<&str> = chunks.iter().map(|_| "chunk").chain(keyed.iter().map(|_| "keys")).collect();
        let tables: Vec<String> = chunks.iter().map(|c| c.table.clone()).chain(keyed.iter().cloned()).collect();
        let indexes: Vec<Option<i32>> = chunks.iter().map(|c| Some(c.chunk as i32)).chain(keyed.iter().map(|_| None)).collect();
        let los: Vec<Option<i64>> = chunks.iter().map(|c| c.range.lo).chain(keyed.iter().map(|_| None)).collect();
        let his: Vec<Option<i64>> = chunks.iter().map(|c| c.range.hi).chain(keyed.iter().map(|_| None)).collect();
        let kinds: Vec<String> = kinds.into_iter().map(String::from).collect();
        let errored = serde_json::to_value(errored_tables).expect("strings serialize");
        let done: i64 = self
            .call("publish chunks", |c| {
                let (task, ids, kinds, tables, indexes, los, his, errored, ledger, capture) =
                    (task.clone(), ids.clone(), kinds.clone(), tables.clone(), indexes.clone(), los.clone(), his.clone(), errored.clone(), ledger.clone(), capture.clone());
                async move {
                    let r = c
                        .query_one(
                            "WITH done AS (
                                UPDATE barge_control.units SET status = 'done', done_at = now(), lease_expires = NULL
                                 WHERE task = $1 AND id = 0 AND epoch = $2 RETURNING 1),
                             chunks AS (
                                INSERT INTO barge_control.units (task, id, kind, after, table_key, chunk, lo, hi)
                                SELECT $1, x.id, x.k, '{schema}', x.t, x.c, x.lo, x.hi
                                  FROM unnest($3::bigint[], $10::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[]) AS x(id, k, t, c, lo, hi)
                                 WHERE EXISTS (SELECT 1 FROM done)
                                ON CONFLICT (task, id) DO NOTHING RETURNING 1),
                             tables AS (
                                UPDATE barge_control.tasks SET errored_tables = $8, ledger = $9
                                 WHERE name = $1 AND EXISTS (SELECT 1 FROM done) RETURNING 1),
                             capture AS (
                                UPDATE barge_control.units SET checkpoint = $11
                                 WHERE task = $1 AND kind = 'cdc' AND $11::jsonb IS NOT NULL AND EXISTS (SELECT 1 FROM done) RETURNING 1)
                             SELECT (SELECT count(*) FROM done) + 0 * (SELECT count(*) FROM chunks) + 0 * (SELECT count(*) FROM tables) + 0 * (SELECT count(*) FROM capture)",
                            &[&task, &epoch, &ids, &tables, &indexes, &los, &his, &errored, &ledger, &kinds, &capture],
                        )
                        .await?;
                    Ok(r.get::<_, i64>(0))
                }
            })
            .await?;
        if done == 1 {
            // The lease statements are planned from the table's statistics:
            // take them now that the chunks are in, rather than when
            // autovacuum next passes (a minute or more on a busy server).
            // Only the table's owner may; another role's workers go on
            // without (autovacuum still comes).
            let analyzed = self.call("analyze the units", |c| async move { c.batch_execute("ANALYZE barge_control.units").await }).await;
            if let Err(e) = analyzed {
                tracing::debug!("coordinator: {e}");
            }
        }
        Ok(done == 1)
    }

    /// Gives a unit back after an error a retry may cure; the fifth
    /// failure fails the task with it. False when the lease had already
    /// passed to another worker.
    pub async fn give_back(&self, lease: &Lease, error: &Error) -> Result<bool> {
        let (task, id, epoch, message) = (self.task.clone(), lease.id, lease.epoch, error.to_string());
        let failed: Option<bool> = self
            .call("give a unit back", |c| {
                let (task, message) = (task.clone(), message.clone());
                async move {
                    let r = c
                        .query_opt(
                            "UPDATE barge_control.units
                                SET status = CASE WHEN attempts >= $5 THEN 'failed' ELSE 'pending' END,
                                    owner = NULL, lease_expires = NULL, error = $4
                              WHERE task = $1 AND id = $2 AND epoch = $3 RETURNING status = 'failed'",
                            &[&task, &id, &epoch, &message, &MAX_ATTEMPTS],
                        )
                        .await?;
                    Ok(r.map(|r| r.get::<_, bool>(0)))
                }
            })
            .await?;
        if failed == Some(true) {
            self.fail_task(&format!("{} (after {MAX_ATTEMPTS} attempts)", error)).await?;
        }
        Ok(failed.is_some())
    }

    /// Fails the unit and the whole task: every worker stops with `error`.
    /// False (and nothing failed) when the lease had passed to another
    /// worker: a stale holder's error is not the task's.
    pub async fn fail(&self, lease: &Lease, error: &Error) -> Result<bool> {
        let (task, id, epoch, message) = (self.task.clone(), lease.id, lease.epoch, error.to_string());
        let n = self
            .call("fail a unit", |c| {
                let (task, message) = (task.clone(), message.clone());
                async move { c.execute("UPDATE barge_control.units SET status = 'failed', error = $4, lease_expires = NULL WHERE task = $1 AND id = $2 AND epoch = $3", &[&task, &id, &epoch, &message]).await }
            })
            .await?;
        if n == 1 {
            self.fail_task(&message).await?;
        }
        Ok(n == 1)
    }

    /// This worker stops on `error`: the units it holds go back to the
    /// others when a retry may pass (or it was interrupted); otherwise
    /// they fail, and the task with them.
    pub async fn abandon(&self, error: &Error) {
        let fail = !(error.is_retriable() || matches!(error, Error::Interrupted) || super::fence::is_fenced(error));
        let (task, worker, message) = (self.task.clone(), self.worker.clone(), error.to_string());
        let r = self
            .call("give units back", |c| {
                let (task, worker, message) = (task.clone(), worker.clone(), message.clone());
                async move {
                    c.execute(
                        "UPDATE barge_control.units SET status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END, owner = NULL, lease_expires = NULL, error = $4
                          WHERE task = $1 AND owner = $2 AND kind IN ('schema', 'chunk', 'keys', 'post', 'validate') AND status = 'leased'",
                        &[&task, &worker, &fail, &message],
                    )
                    .await
                }
            })
            .await;
        match r {
            Ok(n) if n > 0 && fail => {
                if let Err(e) = self.fail_task(&message).await {
                    tracing::warn!("coordinator: cannot record the task's failure: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("coordinator: cannot give this worker's units back (their leases expire instead): {e}"),
        }
    }

    pub async fn fail_task(&self, message: &str) -> Result<()> {
        let (task, message) = (self.task.clone(), message.to_string());
        self.call("fail the task", |c| {
            let (task, message) = (task.clone(), message.clone());
            async move { c.execute("UPDATE barge_control.tasks SET state = 'failed', error = coalesce(error, $2), finished_at = now() WHERE name = $1 AND state = 'running'", &[&task, &message]).await }
        })
        .await
        .map(|_| ())
    }

    /// Marks the task done (the post unit's holder, at the end), with the
    /// ledger of every object step, so each worker's report says what is
    /// on the target.
    pub async fn finish_task(&self, ledger: Option<&serde_json::Value>) -> Result<()> {
        let (task, ledger) = (self.task.clone(), ledger.cloned());
        self.call("finish the task", |c| {
            let (task, ledger) = (task.clone(), ledger.clone());
            // A load followed by its change stream stays running: the
            // stream's end (never, short of a stop) ends the task.
            async move {
                c.execute(
                    "UPDATE barge_control.tasks SET ledger = coalesce($2, ledger),
                            state = CASE WHEN EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = $1 AND u.kind = 'cdc' AND u.status <> 'done') THEN state ELSE 'done' END,
                            finished_at = CASE WHEN EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = $1 AND u.kind = 'cdc' AND u.status <> 'done') THEN NULL ELSE now() END
                      WHERE name = $1 AND state = 'running'",
                    &[&task, &ledger],
                )
                .await
            }
        })
        .await
        .map(|_| ())
    }

    /// Where the change stream after the load starts, as the schema step
    /// left it.
    pub async fn capture(&self) -> Result<Option<serde_json::Value>> {
        let task = self.task.clone();
        let row = self
            .call("read the capture", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT checkpoint FROM barge_control.units WHERE task = $1 AND kind = 'cdc'", &[&task]).await }
            })
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<serde_json::Value>>(0)))
    }

    /// The ledger of object steps the schema (then the post) holder left.
    pub async fn ledger(&self) -> Result<Option<serde_json::Value>> {
        let task = self.task.clone();
        let row = self
            .call("read the ledger", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT ledger FROM barge_control.tasks WHERE name = $1", &[&task]).await }
            })
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<serde_json::Value>>(0)))
    }

    /// Where a task of one unit kind stands (validation ranges, packed
    /// tables): its state, whether its plan (unit 0) and its last step
    /// (unit 1, where there is one) are done, and how many units of
    /// `kind` are unfinished. One index probe per part.
    pub async fn units_standing(&self, kind: &'static str) -> Result<UnitsStanding> {
        let task = self.task.clone();
        let row = self
            .call("read progress", |c| {
                let task = task.clone();
                async move {
                    c.query_one(
                        "SELECT t.state, t.error,
                                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.id = 0 AND u.status = 'done'),
                                (SELECT count(*) FROM barge_control.units u
                                  WHERE u.task = t.name AND u.kind = $2 AND u.id > 0 AND u.status IN ('pending', 'leased', 'failed')),
                                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.id = 1 AND u.status = 'done')
                           FROM barge_control.tasks t WHERE t.name = $1",
                        &[&task, &kind],
                    )
                    .await
                }
            })
            .await?;
        Ok(UnitsStanding { state: row.get(0), error: row.get(1), planned: row.get(2), left: row.get(3), last_done: row.get(4) })
    }

    pub async fn progress(&self) -> Result<Progress> {
        let task = self.task.clone();
        let row = self
            .call("read progress", |c| {
                let task = task.clone();
                async move {
                    // Idle workers read this every 300 ms: each part is
                    // an index probe by kind and status. Only unfinished
                    // chunks are counted (when a worker is idle, those
                    // other workers hold), never every chunk: that took
                    // 164 ms at 50,000 chunks.
                    c.query_one(
                        "SELECT t.state, t.error, t.errored_tables,
                                (SELECT count(*) FROM barge_control.units u
                                  WHERE u.task = t.name AND u.kind = 'chunk' AND u.status IN ('pending', 'leased', 'failed')),
                                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.kind = 'schema' AND u.status = 'done'),
                                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.kind = 'post' AND u.status = 'done'),
                                (SELECT count(*) FROM barge_control.units u
                                  WHERE u.task = t.name AND u.kind IN ('schema', 'chunk', 'keys', 'post') AND u.status = 'leased' AND u.lease_expires >= now()),
                                (SELECT count(*) FROM barge_control.units u
                                  WHERE u.task = t.name AND u.kind = 'keys' AND u.status IN ('pending', 'leased', 'failed'))
                           FROM barge_control.tasks t WHERE t.name = $1",
                        &[&task],
                    )
                    .await
                }
            })
            .await?;
        Ok(Progress {
            state: row.get(0),
            error: row.get(1),
            errored_tables: serde_json::from_value(row.get::<_, serde_json::Value>(2)).unwrap_or_default(),
            chunks_left: row.get(3),
            schema_done: row.get(4),
            post_done: row.get(5),
            live_leases: row.get(6),
            keys_left: row.get(7),
        })
    }

    /// What each finished chunk did, by table and chunk index, for the
    /// report.
    pub async fn done_chunks(&self) -> Result<Vec<(String, usize, Counts)>> {
        let task = self.task.clone();
        let rows = self
            .call("read chunks", |c| {
                let task = task.clone();
                async move {
                    c.query(
                        "SELECT table_key, chunk, rows, rejected, zero_dates, rounded FROM barge_control.units
                          WHERE task = $1 AND kind = 'chunk' AND status = 'done' ORDER BY id",
                        &[&task],
                    )
                    .await
                }
            })
            .await?;
        let n = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i) as u64;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as usize, Counts { rows: n(r, 2), rejected: n(r, 3), zero_dates: n(r, 4), rounded: n(r, 5) })).collect())
    }

    /// Waits until `ready` holds of the task's progress, or the task failed.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Progress) -> bool) -> Result<Progress> {
        let mut said = false;
        loop {
            let p = self.progress().await?;
            if p.state == "failed" {
                return Err(task_failed(&self.task, p.error.as_deref()));
            }
            if ready(&p) {
                return Ok(p);
            }
            if !said {
                tracing::info!("task {}: waiting for {what}", self.task);
                said = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = crate::util::interrupt::requested() => return Err(Error::Interrupted),
            }
        }
    }
}

pub fn task_failed(task: &str, error: Option<&str>) -> Error {
    Error::Other {
        message: format!("task {task} failed on a worker: {}", error.unwrap_or("no error recorded")),
        hint: Some(format!("`barge status --coordinator URL --task {task}` shows which unit failed and why; fix the cause, then start the run again under a new --task name, with --target-schema truncate to empty the tables this one loaded")),
    }
}
