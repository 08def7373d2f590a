//! The load phases when several workers share one run through a
//! coordinator ([`crate::coord`]): who creates the schema, which chunks
//! this worker loads, and who builds keys and objects at the end.
//!
//! The phases are the same as a single run's; only the choice of work is
//! shared. The schema unit's holder creates the target's tables and cuts
//! the chunks; every worker then leases chunks until none is left, and
//! the worker that finishes a table's last chunk builds that table's keys
//! and indexes ([`crate::coord::keys`]); the post unit waits for all of
//! it, and its holder builds foreign keys, counters and objects. A worker
//! that dies loses its leases, and another takes the unit over and redoes
//! it, as a resume does.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::coord::fence;
use crate::coord::lease::{Counts, Kind, Lease, NewChunk};
use crate::coord::Session;
use crate::task::ddl_steps::{Done, Ledger, Runner, Step};
use crate::task::unpack_db::Prebuilt;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::progress::Unit;
use crate::sink::{Redo, RowTable};
use crate::task::state::{ChunkState, ChunkStatus, RunState, TableStatus};
use crate::transfer::{Counters, RowPolicy};

use super::{load_chunk_from, Job, Loading, SnapshotReaders, Target};

/// Waits for this worker's turn at a unit that exactly one worker runs
/// (`schema` or `post`): its lease when the unit is free, `None` once
/// another worker finished it.
pub(crate) async fn turn(session: &Session, kind: Kind) -> Result<Option<Lease>> {
    let mut said = false;
    // The key build of a large target can take hours: the longer this
    // worker waits, the less often it asks (100 workers at 300 ms would be
    // ~670 statements a second, half a core of the coordinator's CPU).
    let mut pause = Duration::from_millis(300);
    loop {
        let p = session.progress().await?;
        if p.state == "failed" {
            return Err(crate::coord::lease::task_failed(&session.task, p.error.as_deref()));
        }
        let done = match kind {
            Kind::Schema => p.schema_done,
            _ => p.post_done,
        };
        if done {
            return Ok(None);
        }
        if let Some(l) = session.lease(kind).await? {
            if l.dirty() {
                tracing::warn!("task {}: taking over the {} step from a worker that stopped", session.task, if kind == Kind::Schema { "schema" } else { "keys and objects" });
            }
            return Ok(Some(l));
        }
        if !said {
            tracing::info!("task {}: another worker holds the {} step; waiting", session.task, if kind == Kind::Schema { "schema" } else { "keys and objects" });
            said = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = crate::util::interrupt::requested() => return Err(Error::Interrupted),
        }
        pause = (pause * 3 / 2).min(Duration::from_secs(3));
    }
}

/// The schema holder's last act: the chunks its plan cut, published with
/// the schema unit's end.
pub(crate) async fn publish_chunks(session: &Session, lease: &Lease, jobs: &[Job], state: &RunState, ledger: &Ledger, keys: &TableKeys) -> Result<()> {
    let mut chunks = Vec::new();
    let mut keyed = Vec::new();
    let mut errored = Vec::new();
    for j in jobs {
        let Some(ts) = state.tables.get(&j.key) else { continue };
        match ts.status {
            TableStatus::Errored => errored.push(j.key.clone()),
            TableStatus::Init | TableStatus::DataSync => {
                chunks.extend(ts.chunks.iter().enumerate().map(|(i, c)| NewChunk { table: j.key.clone(), chunk: i, range: c.range }));
                if keys.has_work(&j.key) {
                    keyed.push(j.key.clone());
                }
            }
            _ => {}
        }
    }
    let steps = ledger_value(ledger);
    let capture = state.capture.as_ref().map(|c| serde_json::to_value(c).expect("a capture serializes"));
    if !session.finish_schema(lease, &chunks, &keyed, &errored, &steps, capture.as_ref()).await? {
        return Err(Error::other(format!("task {}: the schema step's lease was lost before its chunks were published; another worker redoes it", session.task)));
    }
    tracing::info!("task {}: {} chunks of {} tables ready for the workers", session.task, chunks.len(), jobs.len());
    Ok(())
}

/// A worker that did not run the schema step: the tables the plan holds,
/// as the schema holder left them.
pub(crate) async fn follow_schema(session: &Session, jobs: &[Job], state: &mut RunState) -> Result<()> {
    let p = session.progress().await?;
    for j in jobs {
        let status = if p.errored_tables.contains(&j.key) { TableStatus::Errored } else { TableStatus::Init };
        state.tables.insert(j.key.clone(), crate::task::state::TableState { status, key: j.chunk_key.clone(), chunks: Vec::new(), error: None, estimated_rows: 0 });
    }
    Ok(())
}

/// Takes the object steps another worker recorded (the schema holder's,
/// then the post holder's) into this worker's ledger, so its report and
/// its post step know what is on the target.
pub(crate) async fn adopt_ledger(session: &Session, ledger: &mut Ledger) -> Result<()> {
    if let Some(v) = session.ledger().await? {
        let steps: BTreeMap<String, crate::task::ddl_steps::Record> = serde_json::from_value(v).map_err(|e| Error::other(format!("task {}: the coordinator's ledger of objects does not read: {e}", session.task)))?;
        for (id, r) in steps {
            ledger.steps.insert(id, r);
        }
        ledger.save()?;
    }
    Ok(())
}

/// The ledger as the coordinator stores it.
pub(crate) fn ledger_value(ledger: &Ledger) -> serde_json::Value {
    serde_json::to_value(&ledger.steps).expect("a ledger serializes")
}

/// Each table's own key and index steps (by the plan's table key), which
/// the worker that finishes its last chunk builds; with ANALYZE after them
/// on PostgreSQL.
#[derive(Default)]
pub(crate) struct TableKeys {
    pub steps: HashMap<String, Vec<Step>>,
    /// The quoted target name to ANALYZE, by table key.
    pub analyze: HashMap<String, String>,
}

impl TableKeys {
    fn has_work(&self, table: &str) -> bool {
        self.steps.get(table).is_some_and(|s| !s.is_empty()) || self.analyze.contains_key(table)
    }
}

/// What one step of a table's key build did, as the coordinator keeps it
/// until the post step records it.
#[derive(serde::Serialize, serde::Deserialize)]
struct BuiltStep {
    kind: crate::task::ddl_steps::Kind,
    table: Option<String>,
    sql: String,
    done: Done,
    missing: bool,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct BuiltKeys {
    steps: Vec<BuiltStep>,
    /// The table analyzed after its keys, if it was.
    analyzed: Option<String>,
}

/// The key builds every worker did, for the post step to record (and not
/// run again).
pub(crate) async fn prebuilt(session: &Session) -> Result<Prebuilt> {
    let mut out = Prebuilt::default();
    for (table, v) in session.keys_results().await? {
        let built: BuiltKeys = serde_json::from_value(v).map_err(|e| Error::other(format!("task {}: the coordinator's record of table {table}'s keys does not read: {e}", session.task)))?;
        for b in built.steps {
            let mut step = Step::new(b.kind, table.clone(), b.sql);
            step.table = b.table;
            out.steps.push((step, b.done, b.missing));
        }
        out.analyzed.extend(built.analyzed);
    }
    Ok(out)
}

/// Builds one table's keys and indexes under the keys unit's lease, on a
/// target connection tagged with its epoch (a worker that takes the unit
/// over ends this one's connection, as for a chunk). Each step replaces
/// or keeps what an earlier holder left.
async fn build_keys(target: &Endpoint, lease: &Lease, steps: Vec<Step>, analyze: Option<String>, session: &Session) -> Result<serde_json::Value> {
    let mut db = crate::db::Db::connect(target, crate::endpoint::Role::Target).await?;
    let tag = fence::connection_tag(&mut db, lease.epoch).await?;
    session.set_holder_conn(lease, &tag).await?;
    if let Some(previous) = lease.previous_conn.as_deref().filter(|p| *p != tag) {
        fence::end_previous(&mut db, previous).await;
    }
    let t = Instant::now();
    let mut runner = Runner::new(&mut db, target).await;
    let mut built = BuiltKeys::default();
    for step in steps {
        let (done, missing) = runner.run(&step).await?;
        built.steps.push(BuiltStep { kind: step.kind, table: step.table, sql: step.sql, done, missing });
    }
    if let Some(t) = analyze {
        runner.best_effort(&format!("ANALYZE {t}")).await?;
        built.analyzed = Some(t);
    }
    tracing::info!("task {}: table {}: {} keys and indexes built in {:.1}s, its last chunk being in", session.task, lease.table.as_deref().unwrap_or_default(), built.steps.len(), t.elapsed().as_secs_f64());
    Ok(serde_json::to_value(&built).expect("a key build serializes"))
}

type Loaded = (Lease, Result<u64>, f64, Arc<Counters>);
type KeysBuilt = (Lease, Result<serde_json::Value>);

/// Starts building the keys of the table `lease` holds.
fn spawn_keys(builds: &mut JoinSet<KeysBuilt>, target: &Target, keys: &TableKeys, lease: Lease, session: &Arc<Session>) {
    let table = lease.table.clone().unwrap_or_default();
    let steps = keys.steps.get(&table).cloned().unwrap_or_default();
    let analyze = keys.analyze.get(&table).cloned();
    if lease.dirty() {
        tracing::warn!("task {}: taking over the keys of {table} from a worker that stopped", session.task);
    }
    let (endpoint, session) = (target.endpoint.clone(), session.clone());
    builds.spawn(async move {
        let r = build_keys(&endpoint, &lease, steps, analyze, &session).await;
        (lease, r)
    });
}

/// Leases and loads chunks until every chunk of the task is done. Rows
/// per table are counted as this worker loads them; at the end the
/// state holds every chunk's rows, whoever loaded it, for the report.
pub(crate) async fn load(src: &Endpoint, ctx: Loading<'_>, readers: &Arc<SnapshotReaders>, session: &Arc<Session>, keys: &TableKeys) -> Result<()> {
    let Loading { target, jobs, state, store, opts, rejects, counters, seconds } = ctx;
    // Chunks exist once the schema step published them.
    session.wait_for("the schema step to publish the chunks", |p| p.schema_done).await?;
    let by_key: HashMap<&str, Arc<Job>> = jobs.iter().map(|j| (j.key.as_str(), Arc::new(j.clone()))).collect();
    let parallel = opts.parallel.max(1);
    let mut set: JoinSet<Loaded> = JoinSet::new();
    let mut builds: JoinSet<KeysBuilt> = JoinSet::new();
    let mut tasks: BTreeMap<String, Arc<dyn crate::progress::Task>> = BTreeMap::new();
    let interrupt = crate::util::interrupt::requested();
    tokio::pin!(interrupt);
    let mut idle_said = false;
    loop {
        // Take work while there is room.
        let mut none_ready = false;
        while set.len() < parallel {
            let Some(lease) = session.lease(Kind::Chunk).await? else {
                none_ready = true;
                break;
            };
            let Some(job) = lease.table.as_deref().and_then(|t| by_key.get(t)).cloned() else {
                let e = Error::other(format!("task {}: unit {} names table {:?}, which this worker's plan does not hold", session.task, lease.id, lease.table));
                session.fail(&lease, &e).await?;
                return Err(e.with_hint("run the same barge version with the same source on every worker"));
            };
            let c = counters.entry(job.key.clone()).or_insert_with(|| Arc::new(Counters::default())).clone();
            let task = tasks.entry(job.key.clone()).or_insert_with(|| crate::metrics::full_load_table(&job.key, &c, opts.progress.task(&job.target.name.join("."), None, Unit::Rows))).clone();
            // Each chunk counts on its own (the coordinator records what each
            // chunk did); the table's counters take it once the chunk is in,
            // so metrics move per chunk here, not per batch.
            let chunk_counters = Arc::new(Counters::default());
            let policy = RowPolicy { on_error: opts.on_error, zero_dates: opts.zero_dates, rejects: rejects.clone(), counters: chunk_counters.clone() };
            let (src, target, readers, session) = (src.clone(), target.clone(), readers.clone(), session.clone());
            if lease.dirty() {
                tracing::warn!("task {}: taking over chunk {} of {} (try {}): its range is deleted and loaded again", session.task, lease.chunk.unwrap_or(0), job.key, lease.attempts);
            }
            set.spawn(async move {
                let t0 = Instant::now();
                let r = load_chunk(&src, &target, &job, &lease, &policy, &task, &readers, &session).await;
                (lease, r, t0.elapsed().as_secs_f64(), chunk_counters)
            });
        }
        if set.is_empty() && builds.is_empty() {
            let p = session.progress().await?;
            if p.state == "failed" {
                return Err(crate::coord::lease::task_failed(&session.task, p.error.as_deref()));
            }
            if p.chunks_left == 0 && p.keys_left == 0 {
                break;
            }
            // A table whose keys no one builds: its last chunk's worker
            // stopped before it could, or while it did.
            if p.keys_left > 0 {
                if let Some(l) = session.lease_keys(None).await? {
                    spawn_keys(&mut builds, target, keys, l, session);
                    continue;
                }
            }
            if none_ready && !idle_said {
                tracing::info!("task {}: {} chunks and {} tables' keys left, all leased by other workers", session.task, p.chunks_left, p.keys_left);
                idle_said = true;
            }
        }
        let joined = tokio::select! {
            j = set.join_next(), if !set.is_empty() => j,
            Some(b) = builds.join_next(), if !builds.is_empty() => {
                match b {
                    Ok(b) => finish_keys(session, b).await?,
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => return Err(Error::other(format!("a key build failed: {e}"))),
                }
                continue;
            }
            _ = tokio::time::sleep(Duration::from_millis(300)) => None,
            _ = &mut interrupt => {
                // The leases lapse; whoever takes the chunks redoes them.
                set.abort_all();
                builds.abort_all();
                store.save(state)?;
                return Err(Error::Interrupted);
            }
        };
        let Some(joined) = joined else { continue };
        let (lease, result, secs, chunk_counters) = match joined {
            Ok(v) => v,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => return Err(Error::other(format!("a load task failed: {e}"))),
        };
        let table = lease.table.clone().unwrap_or_default();
        *seconds.entry(table.clone()).or_default() += secs;
        match result {
            Ok(rows) => {
                let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let done = Counts { rows, rejected: load(&chunk_counters.rejected), zero_dates: load(&chunk_counters.zero_dates), rounded: load(&chunk_counters.rounded) };
                if let Some(c) = counters.get(&table) {
                    c.add(load(&chunk_counters.rows), load(&chunk_counters.bytes));
                    for (sum, part) in [(&c.filtered, &chunk_counters.filtered), (&c.rejected, &chunk_counters.rejected), (&c.zero_dates, &chunk_counters.zero_dates), (&c.rounded, &chunk_counters.rounded)] {
                        sum.fetch_add(load(part), Ordering::Relaxed);
                    }
                }
                if !session.finish(&lease, &done).await? {
                    tracing::warn!("task {}: chunk {} of {table} was loaded, but its lease had passed to another worker, which loads it again", session.task, lease.chunk.unwrap_or(0));
                } else if keys.has_work(&table) {
                    // The table's last chunk: its keys now, while other
                    // tables load.
                    if let Some(l) = session.lease_keys(Some(&table)).await? {
                        spawn_keys(&mut builds, target, keys, l, session);
                    }
                }
            }
            Err(e) if fence::is_fenced(&e) => tracing::warn!("{e}"),
            Err(e) => {
                let retry = e.is_retriable();
                let ours = if retry { session.give_back(&lease, &e).await? } else { session.fail(&lease, &e).await? };
                if !ours {
                    // Its connection was ended by the worker that took the chunk over.
                    tracing::warn!("task {}: chunk {} of {table}: this worker lost its lease to another worker, which loads the chunk again ({e})", session.task, lease.chunk.unwrap_or(0));
                } else if retry {
                    tracing::warn!("task {}: chunk {} of {table} failed, to be tried again: {e}", session.task, lease.chunk.unwrap_or(0));
                } else {
                    set.abort_all();
                    builds.abort_all();
                    return Err(e);
                }
            }
        }
    }
    // Every chunk's rows and value notes, whoever loaded them: the report
    // is the task's.
    let mut task_wide: BTreeMap<String, Counts> = BTreeMap::new();
    for (table, chunk, done) in session.done_chunks().await? {
        let sum = task_wide.entry(table.clone()).or_default();
        sum.rejected += done.rejected;
        sum.zero_dates += done.zero_dates;
        sum.rounded += done.rounded;
        if let Some(ts) = state.tables.get_mut(&table) {
            if ts.chunks.len() <= chunk {
                ts.chunks.resize(chunk + 1, ChunkState { range: crate::task::state::KeyRange::ALL, status: ChunkStatus::Pending, rows: 0 });
            }
            ts.chunks[chunk].status = ChunkStatus::Done;
            ts.chunks[chunk].rows = done.rows;
        }
    }
    let mut elsewhere = 0;
    for (table, sum) in task_wide {
        let c = counters.entry(table).or_insert_with(|| Arc::new(Counters::default()));
        elsewhere += sum.rejected.saturating_sub(c.rejected.load(Ordering::Relaxed));
        c.rejected.store(sum.rejected, Ordering::Relaxed);
        c.zero_dates.store(sum.zero_dates, Ordering::Relaxed);
        c.rounded.store(sum.rounded, Ordering::Relaxed);
    }
    if elsewhere > 0 {
        tracing::warn!("task {}: {elsewhere} of the rejected rows were rejected by other workers: they are in those workers' rejects.jsonl (`barge status --coordinator URL --task {}` names the workers)", session.task, session.task);
    }
    for ts in state.tables.values_mut() {
        if ts.status != TableStatus::Errored && ts.chunks.iter().all(|c| c.status == ChunkStatus::Done) {
            ts.status = TableStatus::FinishedCopy;
        }
    }
    for t in tasks.values() {
        t.finish("");
    }
    store.save(state)?;
    Ok(())
}

/// Records a finished key build with the coordinator, or gives the unit
/// back (a retry may pass) or fails the task with it.
async fn finish_keys(session: &Session, (lease, result): KeysBuilt) -> Result<()> {
    let table = lease.table.clone().unwrap_or_default();
    match result.map_err(|e| (e.is_retriable(), e)) {
        Ok(built) => {
            if !session.finish_with(&lease, &built, &crate::coord::host_name(), 0).await? {
                tracing::warn!("task {}: the keys of {table} were built, but the lease had passed to another worker, which builds them again", session.task);
            }
            Ok(())
        }
        Err((true, e)) => {
            if session.give_back(&lease, &e).await? {
                tracing::warn!("task {}: building the keys of {table} failed, to be tried again: {e}", session.task);
            }
            Ok(())
        }
        Err((false, e)) => {
            if session.fail(&lease, &e).await? {
                return Err(e);
            }
            tracing::warn!("task {}: the keys of {table}: this worker lost its lease to another worker ({e})", session.task);
            Ok(())
        }
    }
}

/// Loads one leased chunk in one target transaction fenced by the lease's
/// epoch: the range deleted first when an earlier holder may have left
/// part of it, then the rows, then commit.
#[allow(clippy::too_many_arguments)]
async fn load_chunk(src: &Endpoint, target: &Target, job: &Job, lease: &Lease, policy: &RowPolicy, progress: &Arc<dyn crate::progress::Task>, readers: &SnapshotReaders, session: &Session) -> Result<u64> {
    let mut dest = crate::sink::db::DbDestination::for_load(&target.endpoint, policy.clone()).await?;
    dest.join_caller_transaction();
    let tag = fence::connection_tag(dest.db(), lease.epoch).await?;
    session.set_holder_conn(lease, &tag).await?;
    if let Some(previous) = lease.previous_conn.as_deref().filter(|p| *p != tag) {
        fence::end_previous(dest.db(), previous).await;
    }
    let wait = (session.lease.as_secs() * 2).max(5);
    fence::begin(dest.db(), &session.task, lease.id, lease.epoch, wait).await?;
    let table = RowTable { write: job.write.clone(), info: None };
    let loaded = async {
        if lease.dirty() {
            let predicate = match (&job.chunk_key_target, lease.range.is_all()) {
                (Some(k), false) => lease.range.predicate(k),
                _ => None,
            };
            crate::sink::Destination::redo_chunk(&mut dest, &table, &Redo { chunk: lease.chunk.unwrap_or(0), predicate, only: job.only }).await?;
        }
        let (s, pooled) = readers.checkout(src).await?;
        let (s, r) = load_chunk_from(s, &mut dest, &table, job, lease.range, policy, progress).await;
        if let Some(s) = s {
            readers.give_back(s, pooled).await;
        }
        r
    }
    .await;
    match loaded {
        Ok(rows) => {
            fence::commit(dest.db()).await?;
            Ok(rows)
        }
        Err(e) => {
            fence::rollback(dest.db()).await;
            Err(e)
        }
    }
}
