//! A stream's shards (Kinesis shards, Kafka partitions) leased to the
//! workers of a shared run, as the Kinesis Client Library leases them.
//!
//! - **One unit per shard** (`kind = 'shard'`): `table_key` is the shard
//!   id, `parents` the shards a reshard made it from, `checkpoint`
//!   `{"offset": …, "start": …}`: the last offset the destination
//!   acknowledged, and where a shard without one starts (the run's
//!   `--start-position` for the shards of the first listing, the earliest
//!   record for those that appear later: the children of a reshard, new
//!   partitions). Any worker lists the stream (at its start, after a
//!   shard it read closed, and every [`RELIST`]) and inserts the shards it
//!   does not know, each once (a unique index, `ON CONFLICT DO NOTHING`).
//! - **Parents first:** a shard is leasable only when each of its parents
//!   that is a unit of the task is `done`; a closed shard read to its end
//!   is done. So the records of one partition key keep their order across
//!   splits and merges.
//! - **Balancing:** every tick (a third of the lease) a worker renews the
//!   leases it holds, moving their checkpoints in the same statement, and
//!   reads its fair share: ceil(leasable shards / live workers), a worker
//!   being live while its heartbeat is younger than the lease. Below its
//!   share it takes free or expired shards (expired first); above it, it
//!   lets the excess go (each reader stops after the batch in flight,
//!   its last checkpoint is written, and the shard goes back to pending).
//!   Whoever is above the share lets go and only those below take, so it
//!   settles without flapping.
//! - **Reading:** each shard held is one replication loop (the same one a
//!   single process runs), reading that shard alone; the loop ends when
//!   the shard is read to its end or the lease goes.
//!
//! ## Positions: the target's and the lease's
//! On a database target each shard has its own position row
//! (`barge_cdc_state`, task `task-NAME.SHARD`), written in the same
//! transaction as the shard's records, and that transaction is fenced by
//! the lease's epoch (`coord::fence`, unit = the shard's unit): a worker
//! that lost the shard can commit nothing after the next holder began.
//! That row is the truth: exactly once with the change envelope (and for
//! the default layout, whose key is the record's shard and offset). The
//! lease's checkpoint is copied from what the destination acknowledged
//! (`RecordSource::acknowledge`, after `committed()`), so it is never
//! ahead of the target's row; a new holder starts from the checkpoint,
//! and the replication loop moves on to the target's row when that is
//! further (it always is at least as far). So the two never disagree in
//! the direction that loses records. A new holder raises the fence to
//! its epoch *before* it reads the target's row: a previous holder
//! paused inside a transaction either commits first (and the row read
//! next includes it) or is refused, so nothing is applied twice.
//!
//! A file or stream target keeps no position that other hosts can read:
//! each lease gets a state directory of its own, so its only position is
//! the checkpoint, and records after the last checkpoint are written
//! again by the next holder (at least once). The checkpoint update is
//! fenced by the epoch in the coordinator (`WHERE epoch = $x`), so a
//! worker that lost a shard moves its checkpoint neither back nor forward.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use super::Session;
use crate::commands::cdc::{replicate_tables, Replicate};
use crate::commands::migrate::{MigrateArgs, Mode};
use crate::commands::output;
use crate::commands::records::Planned;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Position;
use crate::source::records::leased::{self, ListedShard, ShardLease};
use crate::source::records::StartAt;

/// How often a following run lists the stream's shards again (besides at
/// a worker's start and after a shard it read closed).
const RELIST: Duration = Duration::from_secs(30);

/// What a stream run with `--coordinator` can do.
pub fn check(args: &MigrateArgs, source: &Endpoint, target: &Endpoint) -> Result<()> {
    if !leased::supports(source) {
        let why = match source {
            Endpoint::Sink(s) if s.scheme == "sqs" => "an SQS queue already spreads its messages over every reader: run `barge migrate` on as many hosts as you like, without --coordinator",
            _ => "only Kinesis streams and Kafka topics are read shard by shard (tails, MQTT topics and files have one reader)",
        };
        return Err(Error::usage(format!("--coordinator: {source} cannot be shared by workers")).with_hint(why));
    }
    let ok_target = matches!(target, Endpoint::Postgres(_) | Endpoint::Mysql(_) | Endpoint::Kafka(_) | Endpoint::Kinesis(_)) || matches!(target, Endpoint::Sink(t) if t.scheme == "sqs");
    if !ok_target {
        return Err(Error::usage(format!("--coordinator: workers cannot share the target {target}"))
            .with_hint("shard leases write to PostgreSQL or MySQL/MariaDB (exactly once, fenced), or to a stream (Kafka, Kinesis, SQS: at least once); SQLite takes one writer, and files would be named by each worker alike"));
    }
    if args.records.infer.is_some() {
        return Err(Error::usage("--infer with --coordinator: each worker would infer the table from other records").with_hint("run once with --infer to get the CREATE TABLE (kept as inferred-schema.sql), then share the run with --schema FILE"));
    }
    if args.sql.sql.is_some() {
        return Err(Error::usage("--sql with --coordinator is not supported"));
    }
    if args.cdc.stop_at.is_some() {
        return Err(Error::usage("--stop-at with --coordinator: a position or time per worker is not one run's end").with_hint("use --mode full-load to read what the stream holds and stop"));
    }
    if matches!(&args.cdc.start_position, Some(crate::commands::cdc::StartPosition::At(_))) {
        return Err(Error::usage("--start-position shards:… with --coordinator: the task keeps each shard's position in its lease").with_hint("start the task with earliest, latest or at-timestamp:TIME"));
    }
    Ok(())
}

/// A shard unit as leased.
#[derive(Debug, Clone)]
struct ShardUnit {
    id: i64,
    epoch: i64,
    shard: String,
    checkpoint: Option<serde_json::Value>,
    attempts: i32,
}

impl ShardUnit {
    fn offset(&self) -> Option<String> {
        self.checkpoint.as_ref().and_then(|c| c.get("offset")).and_then(|o| o.as_str()).map(str::to_string)
    }

    fn start(&self) -> StartAt {
        self.checkpoint.as_ref().and_then(|c| c.get("start")).and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or(StartAt::Earliest)
    }
}

/// Where the task stands, for one worker's tick.
#[derive(Debug, Clone, Copy)]
struct Balance {
    live_workers: i64,
    /// Shards not done whose parents are done: the ones to share.
    leasable: i64,
    mine: i64,
    /// Shards not done yet (waiting for parents included).
    left: i64,
    total: i64,
    failed: bool,
}

impl Balance {
    /// ceil(leasable / live workers), this worker counted live.
    fn share(&self) -> i64 {
        let live = self.live_workers.max(1);
        (self.leasable + live - 1) / live
    }
}

/// Leases the first shard that is free (pending) or whose lease expired
/// (first), and whose parents are all done. `$1` task, `$2` worker,
/// `$3` lease seconds, `$4` host.
const LEASE_SHARD_SQL: &str = "WITH next AS MATERIALIZED (
        SELECT n.id FROM barge_control.units n
         WHERE n.task = $1 AND n.kind = 'shard'
           AND (n.status = 'pending' OR (n.status = 'leased' AND n.lease_expires < now()))
           AND NOT EXISTS (SELECT 1 FROM barge_control.units p
                            WHERE p.task = $1 AND p.kind = 'shard' AND p.table_key = ANY (n.parents) AND p.status <> 'done')
         ORDER BY n.status = 'leased' DESC, n.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE barge_control.units u
       SET status = 'leased', owner = $2, epoch = nextval('barge_control.epochs'),
           lease_expires = now() + make_interval(secs => $3), attempts = u.attempts + 1, host = $4
     WHERE u.task = $1 AND u.id = (SELECT id FROM next)
 RETURNING u.id, u.epoch, u.table_key, u.checkpoint, u.attempts";

/// Counts for a tick: `$1` task, `$2` worker, `$3` lease seconds.
const BALANCE_SQL: &str = "SELECT
        (SELECT count(*) FROM barge_control.workers w
          WHERE w.task = $1 AND w.state = 'working' AND w.heartbeat_at > now() - make_interval(secs => $3)),
        (SELECT count(*) FROM barge_control.units n
          WHERE n.task = $1 AND n.kind = 'shard' AND n.status IN ('pending', 'leased')
            AND NOT EXISTS (SELECT 1 FROM barge_control.units p
                             WHERE p.task = $1 AND p.kind = 'shard' AND p.table_key = ANY (n.parents) AND p.status <> 'done')),
        (SELECT count(*) FROM barge_control.units WHERE task = $1 AND kind = 'shard' AND status = 'leased' AND owner = $2),
        (SELECT count(*) FROM barge_control.units WHERE task = $1 AND kind = 'shard' AND status <> 'done'),
        (SELECT count(*) FROM barge_control.units WHERE task = $1 AND kind = 'shard'),
        (SELECT state = 'failed' FROM barge_control.tasks WHERE name = $1)";

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

impl Session {
    /// Inserts the listed shards the task does not have yet. When the task
    /// has none (the first listing) they start at `first`, else (created
    /// since: children of a reshard, new partitions) at the earliest
    /// record. Returns how many were new.
    async fn add_shards(&self, listed: &[ListedShard], first: &StartAt) -> Result<u64> {
        let ids: Vec<String> = listed.iter().map(|s| s.id.clone()).collect();
        // Parents as one text each (arrays of arrays must be rectangular).
        let parents: Vec<String> = listed.iter().map(|s| serde_json::to_string(&s.parents).expect("strings serialize")).collect();
        let first = serde_json::json!({ "start": first });
        let later = serde_json::json!({ "start": StartAt::Earliest });
        let task = self.task.clone();
        self.call("add shards", |c| {
            let (task, ids, parents, first, later) = (task.clone(), ids.clone(), parents.clone(), first.clone(), later.clone());
            async move {
                c.execute(
                    "WITH known AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM barge_control.units WHERE task = $1 AND kind = 'shard') AS have)
                     INSERT INTO barge_control.units (task, id, kind, table_key, parents, checkpoint)
                     SELECT $1, nextval('barge_control.epochs'), 'shard', x.id,
                            ARRAY(SELECT jsonb_array_elements_text(x.parents::jsonb)),
                            CASE WHEN (SELECT have FROM known) THEN $5::jsonb ELSE $4::jsonb END
                       FROM unnest($2::text[], $3::text[]) AS x(id, parents)
                         ON CONFLICT (task, table_key) WHERE kind = 'shard' DO NOTHING",
                    &[&task, &ids, &parents, &first, &later],
                )
                .await
            }
        })
        .await
    }

    async fn balance(&self) -> Result<Balance> {
        let (task, worker, secs) = (self.task.clone(), self.worker.clone(), self.lease.as_secs_f64());
        let r = self
            .call("read the shard balance", |c| {
                let (task, worker) = (task.clone(), worker.clone());
                async move { c.query_one(BALANCE_SQL, &[&task, &worker, &secs]).await }
            })
            .await?;
        Ok(Balance { live_workers: r.get(0), leasable: r.get(1), mine: r.get(2), left: r.get(3), total: r.get(4), failed: r.get::<_, Option<bool>>(5).unwrap_or(false) })
    }

    async fn lease_shard(&self) -> Result<Option<ShardUnit>> {
        let (task, worker, secs, host) = (self.task.clone(), self.worker.clone(), self.lease.as_secs_f64(), host());
        let row = self
            .call("lease a shard", |c| {
                let (task, worker, host) = (task.clone(), worker.clone(), host.clone());
                async move { c.query_opt(LEASE_SHARD_SQL, &[&task, &worker, &secs, &host]).await }
            })
            .await?;
        Ok(row.map(|r| ShardUnit { id: r.get(0), epoch: r.get(1), shard: r.get(2), checkpoint: r.get(3), attempts: r.get(4) }))
    }

    /// Renews the leases of `held` (unit, epoch, acknowledged offset) and
    /// moves their checkpoints, each only under its own epoch; returns the
    /// units still held (the others were taken over).
    async fn renew_shards(&self, held: &[(i64, i64, Option<String>)]) -> Result<BTreeSet<i64>> {
        if held.is_empty() {
            return Ok(BTreeSet::new());
        }
        let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
        let epochs: Vec<i64> = held.iter().map(|h| h.1).collect();
        let offsets: Vec<Option<String>> = held.iter().map(|h| h.2.clone()).collect();
        let (task, worker, secs) = (self.task.clone(), self.worker.clone(), self.lease.as_secs_f64());
        let rows = self
            .call("renew shard leases", |c| {
                let (task, worker, ids, epochs, offsets) = (task.clone(), worker.clone(), ids.clone(), epochs.clone(), offsets.clone());
                async move {
                    c.query(
                        "UPDATE barge_control.units u
                            SET lease_expires = now() + make_interval(secs => $3),
                                checkpoint = CASE WHEN x.o IS NULL THEN u.checkpoint ELSE coalesce(u.checkpoint, '{}') || jsonb_build_object('offset', x.o) END
                           FROM unnest($4::bigint[], $5::bigint[], $6::text[]) AS x(id, epoch, o)
                          WHERE u.task = $1 AND u.id = x.id AND u.epoch = x.epoch AND u.owner = $2 AND u.status = 'leased'
                      RETURNING u.id",
                        &[&task, &worker, &secs, &ids, &epochs, &offsets],
                    )
                    .await
                }
            })
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
    }

    /// Ends a lease: `done` (read to its end) or back to pending, with the
    /// last acknowledged offset, under the lease's epoch. False when the
    /// lease had passed to another worker.
    async fn end_shard(&self, unit: &ShardUnit, offset: Option<String>, done: bool, error: Option<String>) -> Result<bool> {
        let (task, id, epoch) = (self.task.clone(), unit.id, unit.epoch);
        let n = self
            .call("end a shard lease", |c| {
                let (task, offset, error) = (task.clone(), offset.clone(), error.clone());
                async move {
                    c.execute(
                        "UPDATE barge_control.units
                            SET status = CASE WHEN $4 THEN 'done' ELSE 'pending' END, owner = CASE WHEN $4 THEN owner END,
                                lease_expires = NULL, done_at = CASE WHEN $4 THEN now() END, error = $6,
                                checkpoint = CASE WHEN $5::text IS NULL THEN checkpoint ELSE coalesce(checkpoint, '{}') || jsonb_build_object('offset', $5::text) END
                          WHERE task = $1 AND id = $2 AND epoch = $3 AND status = 'leased'",
                        &[&task, &id, &epoch, &done, &offset, &error],
                    )
                    .await
                }
            })
            .await?;
        Ok(n == 1)
    }

    /// Holds the task's advisory lock on the coordinator (or lets it go),
    /// so one worker at a time creates the target's tables.
    async fn prepare_lock(&self, take: bool) -> Result<()> {
        let key = format!("barge shards {}", self.task);
        self.call("lock the target's preparation", |c| {
            let key = key.clone();
            async move {
                let sql = if take { "SELECT pg_advisory_lock(hashtext($1))::text" } else { "SELECT pg_advisory_unlock(hashtext($1))::text" };
                c.query_one(sql, &[&key]).await
            }
        })
        .await
        .map(|_| ())
    }
}

/// One shard this worker reads.
struct Held {
    unit: ShardUnit,
    lease: ShardLease,
    /// Let go on purpose (above the fair share, or stopping).
    releasing: bool,
    /// Taken over by another worker: nothing of it is written back.
    lost: bool,
}

/// Runs this process as one worker of the stream task: leases shards,
/// reads each in its own replication loop, and balances with the others
/// until the task ends (a bounded run: every shard read), fails, or
/// Ctrl-C.
pub async fn run(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, planned: Planned, state_dir: PathBuf) -> Result<ExitCode> {
    let (session, heartbeat) = crate::commands::worker::join(args, source, target, args.coordinator.stored.clone(), crate::coord::lease::Plan::Stream).await?;
    let outcome = Worker { args, source, target, planned: &planned, session: &session, state_dir: state_dir.join(format!("worker-{}", session.worker)) }.run().await;
    heartbeat.abort();
    session.sign_off(if outcome.is_ok() { "finished" } else { "failed" }).await;
    outcome
}

struct Worker<'a> {
    args: &'a MigrateArgs,
    source: &'a Endpoint,
    target: &'a Endpoint,
    planned: &'a Planned,
    session: &'a Arc<Session>,
    state_dir: PathBuf,
}

/// How one shard's replication loop ended.
type LoopEnd = (i64, Result<crate::task::cdc::CdcReport>);
/// One shard's replication loop, running.
type ShardLoop<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = LoopEnd> + 'a>>;

impl<'a> Worker<'a> {
    fn follow(&self) -> bool {
        self.args.mode != Mode::FullLoad
    }

    /// The start of the shards of the first listing: `latest` becomes the
    /// time the task first listed them, so a worker that leases a shard
    /// later misses nothing that arrived in between.
    fn first_start(&self) -> StartAt {
        match self.planned.capture.records.as_ref().map(|r| r.start.clone()).unwrap_or_default() {
            StartAt::Latest => StartAt::Timestamp(chrono::Utc::now()),
            other => other,
        }
    }

    async fn discover(&self) -> Result<()> {
        let listed = leased::list(self.source).await?;
        let new = self.session.add_shards(&listed, &self.first_start()).await?;
        if new > 0 {
            tracing::info!("task {}: {new} new shard(s) of {}", self.session.task, self.source);
        }
        Ok(())
    }

    /// Creates the target's tables (and the fence and position tables)
    /// once, one worker at a time: the same replication loop, on a source
    /// that ends at once.
    async fn prepare_target(&self, any_shard: &str) -> Result<()> {
        self.session.prepare_lock(true).await?;
        let r = async {
            if self.target.kind().is_database() {
                let mut dst = crate::db::Db::connect(self.target, crate::endpoint::Role::Target).await?;
                super::fence::prepare(&mut dst).await?;
            }
            let lease = ShardLease::new(any_shard.to_string(), StartAt::Earliest, false);
            lease.stop.store(true, Ordering::SeqCst);
            self.replicate(lease, None, self.state_dir.join("prepare"), Position::Shards { offsets: Default::default() }).await.map(|_| ())
        }
        .await;
        self.session.prepare_lock(false).await?;
        r
    }

    /// One shard's replication loop (or the preparation's).
    async fn replicate(&self, lease: ShardLease, fence: Option<super::fence::Token>, state_dir: PathBuf, from: Position) -> Result<crate::task::cdc::CdcReport> {
        std::fs::create_dir_all(&state_dir).map_err(|e| Error::other(format!("cannot create the state directory {}: {e}", state_dir.display())))?;
        let mut capture = self.planned.capture.clone();
        capture.position = from;
        if let Some(r) = capture.records.as_mut() {
            r.lease = Some(lease);
        }
        let run = Replicate { source: self.source, target: self.target, state_dir, on_error: self.args.on_error, zero_dates: self.args.zero_dates, sink: self.planned.sink.clone(), sql: self.args.sql.clone(), fence };
        replicate_tables(run, self.planned.tables.clone(), self.planned.converter.clone(), capture, &self.args.cdc).await
    }

    async fn run(self) -> Result<ExitCode> {
        let session = self.session;
        let listed = leased::list(self.source).await?;
        session.add_shards(&listed, &self.first_start()).await?;
        let Some(first) = listed.first() else {
            return Err(Error::other(format!("{} has no shards to read", self.source)));
        };
        self.prepare_target(&first.id).await?;
        output::info(format!("task {}: {} has {} shards; this worker reads its share of them (Ctrl-C gives them back to the others)", session.task, self.source, listed.len()));
        let tick = (session.lease / 3).max(Duration::from_millis(200));
        let mut held: BTreeMap<i64, Held> = BTreeMap::new();
        let mut running: FuturesUnordered<ShardLoop<'_>> = FuturesUnordered::new();
        let mut listed_at = Instant::now();
        let mut relist = false;
        let mut next_tick = tokio::time::Instant::now();
        let interrupt = crate::util::interrupt::requested();
        tokio::pin!(interrupt);
        let mut stopping: Option<Result<ExitCode>> = None;
        loop {
            if let Some(outcome) = &stopping {
                if running.is_empty() {
                    return match outcome {
                        Ok(code) => Ok(*code),
                        Err(_) => stopping.take().expect("set").map(|_| ExitCode::SUCCESS),
                    };
                }
            }
            tokio::select! {
                Some((id, result)) = running.next(), if !running.is_empty() => {
                    let Some(h) = held.remove(&id) else { continue };
                    match self.loop_ended(h, result).await {
                        Ok(closed) => relist |= closed,
                        Err(e) if stopping.is_none() => {
                            for h in held.values_mut() {
                                h.releasing = true;
                                h.lease.stop.store(true, Ordering::SeqCst);
                            }
                            stopping = Some(Err(e));
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
                _ = &mut interrupt, if stopping.is_none() => {
                    output::info(format!("task {}: stopping; the shards this worker reads go back to the others", session.task));
                    for h in held.values_mut() {
                        h.releasing = true;
                        h.lease.stop.store(true, Ordering::SeqCst);
                    }
                    stopping = Some(Err(Error::Interrupted));
                }
                _ = tokio::time::sleep_until(next_tick) => {
                    next_tick = tokio::time::Instant::now() + tick;
                    // Renew and checkpoint; whatever is not ours any more stops.
                    let mine: Vec<(i64, i64, Option<String>)> = held.values().filter(|h| !h.lost).map(|h| (h.unit.id, h.unit.epoch, h.lease.acked())).collect();
                    let kept = session.renew_shards(&mine).await?;
                    for h in held.values_mut() {
                        if !h.lost && !kept.contains(&h.unit.id) {
                            output::warn(format!("task {}: shard {} was taken over by another worker; this one stops reading it", session.task, h.unit.shard));
                            h.lost = true;
                            h.lease.stop.store(true, Ordering::SeqCst);
                        }
                    }
                    if stopping.is_some() {
                        continue;
                    }
                    if self.follow() && (relist || listed_at.elapsed() >= RELIST) {
                        relist = false;
                        listed_at = Instant::now();
                        if let Err(e) = self.discover().await {
                            output::warn(format!("task {}: listing the shards of {}: {e}", session.task, self.source));
                        }
                    }
                    let b = session.balance().await?;
                    if b.failed {
                        let p = session.progress().await?;
                        for h in held.values_mut() {
                            h.lease.stop.store(true, Ordering::SeqCst);
                        }
                        stopping = Some(Err(super::lease::task_failed(&session.task, p.error.as_deref())));
                        continue;
                    }
                    if b.total > 0 && b.left == 0 {
                        session.finish_task(None).await?;
                        output::info(format!("task {}: every shard is read", session.task));
                        stopping = Some(Ok(ExitCode::SUCCESS));
                        continue;
                    }
                    let releasing = held.values().filter(|h| h.releasing || h.lost).count() as i64;
                    let mine = b.mine - releasing;
                    let share = b.share();
                    if mine < share {
                        for _ in mine..share {
                            let Some(unit) = session.lease_shard().await? else { break };
                            let (id, fut) = self.start(unit);
                            running.push(fut);
                            held.insert(id.0, id.1);
                        }
                    } else if mine > share {
                        // What is above the share, at once: only workers below it
                        // take these, so none comes back here.
                        for h in held.values_mut().rev().filter(|h| !h.releasing && !h.lost).take((mine - share) as usize) {
                            output::info(format!("task {}: letting shard {} go to a worker with fewer ({mine} held, fair share {share})", session.task, h.unit.shard));
                            h.releasing = true;
                            h.lease.stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
    }

    /// Starts the replication loop of a shard just leased.
    fn start(&self, unit: ShardUnit) -> ((i64, Held), ShardLoop<'a>) {
        let offset = unit.offset();
        let took_over = unit.attempts > 1;
        output::info(format!(
            "task {}: reading shard {} {}{}",
            self.session.task,
            unit.shard,
            match &offset {
                Some(o) => format!("after its checkpoint {o}"),
                None => "from its start position".to_string(),
            },
            if took_over { " (read by another worker before)" } else { "" }
        ));
        let lease = ShardLease::new(unit.shard.clone(), unit.start(), false);
        let fence = super::fence::Token { task: self.session.task.clone(), unit: unit.id, epoch: unit.epoch };
        // A database target keeps the shard's position itself; anything
        // else keeps it in the state directory, which must then hold none
        // but this lease's (the checkpoint is the position).
        let dir_name = if self.target.kind().is_database() { sanitize(&unit.shard) } else { format!("{}.{}", sanitize(&unit.shard), unit.epoch) };
        let state_dir = self.state_dir.join("shards").join(dir_name);
        let from = Position::Shards { offsets: Arc::new(offset.map(|o| BTreeMap::from([(unit.shard.clone(), o)])).unwrap_or_default()) };
        let id = unit.id;
        let fence = self.target.kind().is_database().then_some(fence);
        let me = Worker { args: self.args, source: self.source, target: self.target, planned: self.planned, session: self.session, state_dir: self.state_dir.clone() };
        let l = lease.clone();
        let fut = Box::pin(async move {
            if let Some(token) = &fence {
                if let Err(e) = super::fence::raise(me.target, token, me.session.lease.as_secs().max(1)).await {
                    return (id, Err(e));
                }
            }
            (id, me.replicate(l, fence, state_dir, from).await)
        });
        ((id, Held { unit, lease, releasing: false, lost: false }), fut)
    }

    /// Writes back how a shard's loop ended. Ok(true): the shard is closed
    /// and read to its end (list again for its children).
    async fn loop_ended(&self, h: Held, result: Result<crate::task::cdc::CdcReport>) -> Result<bool> {
        let task = &self.session.task;
        let offset = h.lease.acked();
        match result {
            Ok(_) if h.lost => Ok(false),
            Ok(_) if h.lease.end.reached_end() => {
                if self.session.end_shard(&h.unit, offset, true, None).await? {
                    output::info(format!("task {task}: shard {} is read to its end", h.unit.shard));
                }
                Ok(true)
            }
            Ok(_) => {
                self.session.end_shard(&h.unit, offset, false, None).await?;
                Ok(false)
            }
            Err(e) if super::fence::is_fenced(&e) || h.lost => {
                output::warn(format!("task {task}: shard {} passed to another worker ({e})", h.unit.shard));
                Ok(false)
            }
            Err(e) if e.is_retriable() => {
                output::warn(format!("task {task}: shard {}: {e}; it goes back to the workers", h.unit.shard));
                self.session.end_shard(&h.unit, offset, false, Some(e.to_string())).await?;
                Ok(false)
            }
            Err(e) => {
                let message = format!("shard {}: {e}", h.unit.shard);
                self.session.end_shard(&h.unit, offset, false, Some(message.clone())).await?;
                self.session.fail_task(&message).await?;
                Err(e)
            }
        }
    }
}

/// A shard id as a directory name.
fn sanitize(shard: &str) -> String {
    shard.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fair_share_rounds_up_and_counts_this_worker() {
        let b = |live, leasable| Balance { live_workers: live, leasable, mine: 0, left: leasable, total: leasable, failed: false };
        assert_eq!(b(3, 12).share(), 4);
        assert_eq!(b(3, 13).share(), 5);
        assert_eq!(b(0, 12).share(), 12, "a worker whose own heartbeat is late still counts itself");
        assert_eq!(b(5, 0).share(), 0);
    }
}
