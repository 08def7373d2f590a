//! The full load, in the order the fastest tools use: create the tables
//! (on PostgreSQL without keys), load the rows in parallel chunks, then
//! build keys, indexes and foreign keys, and move identity counters past
//! the data; then views, routines and triggers ([`super::objects`]). The
//! source schema is shaped for the target first ([`super::shape`]:
//! partitions, inheritance, sequences, domains), and every DDL statement
//! is a step of its own ([`super::ddl_steps`]) whose outcome the run keeps,
//! so a refusal is an item for a person, not an abort, and the summary
//! ([`super::run_report`]) says what is on the target. Every step is
//! recorded in the run state, so rerunning the same command after a crash
//! finishes the job without losing or duplicating a row or an object.
//!
//! This is the one loader: into a database ([`run`]) or into files and
//! streams ([`run_sink`], no schema to create or keys to build), every
//! chunk goes through the same engine ([`load`]): the chunk's own
//! [`Destination`], cleared first if an earlier attempt may have left half
//! of it, then the source rows ([`read_chunk`]) into
//! [`Destination::write_rows`], or, where both sides are PostgreSQL with
//! the same column types, the COPY bytes passed through.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::ddl_steps::{Done, Kind, Ledger, Runner, Step};
use super::mapping::Mapping;
use super::state::{ChunkState, ChunkStatus, KeyRange, Phase, RunState, StateStore, TableState, TableStatus};
use super::target_schema::{self, target_dialect};
use super::{objects, run_report, shape};
pub use super::target_schema::SchemaMode;
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{ColumnType, Dialect, QualifiedName, RoutineKind, Schema, Table};
use crate::progress::{Progress, Unit};
use crate::schema::convert::{self, ConvertOptions, Converted};
use crate::schema::ddl;
use crate::schema::naming::{quote_ident, NamePlan};
use crate::schema::report::{codes, ObjectKind, Report, Status};
use crate::schema::target::{TargetColumn, TargetTable};
use crate::schema::typetext;
use crate::sink::{Destination, Redo, RowTable, Scope, SinkOptions, SinkStats};
use crate::transfer::{self, Batch, Counters, OnError, ReadSpec, Rejects, RowPolicy, WriteSpec, ZeroDates, CHANNEL_DEPTH};

mod leased;

#[derive(Clone)]
pub struct LoadOptions {
    pub schema_mode: SchemaMode,
    pub parallel: usize,
    pub chunk_rows: u64,
    pub on_error: OnError,
    pub zero_dates: ZeroDates,
    pub state_dir: PathBuf,
    pub mapping: Mapping,
    pub convert: ConvertOptions,
    pub progress: Arc<dyn Progress>,
    /// Set up change capture before reading (full-load-and-cdc), so the
    /// changes start exactly where the loaded rows end.
    pub capture: Option<crate::source::capture::CaptureOptions>,
    /// Share the run with other workers through a coordinator
    /// (`--coordinator`): the schema, the chunks and the keys are leased.
    pub coordinated: Option<Arc<crate::coord::Session>>,
    /// `--sql`: the load reads the query's input table and writes its
    /// output ([`super::load_sql`]).
    pub sql: Option<crate::transform::SqlQuery>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub source: String,
    pub target: String,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub status: String,
    pub rejected: u64,
    pub zero_dates: u64,
    /// Decimals rounded to the target column's scale (floats from SQLite).
    pub rounded: u64,
    pub error: Option<String>,
    /// Rows `--sql`'s WHERE dropped.
    pub filtered: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub tables: Vec<TableReport>,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub resumed: bool,
    pub state_dir: PathBuf,
    pub assessment: PathBuf,
    pub rejects: Option<PathBuf>,
    /// The source position the loaded data is consistent with, if known.
    pub snapshot_position: Option<String>,
    /// Every kind of source object: how many are on the target, and what
    /// a person must handle.
    pub objects: Option<run_report::ObjectSummary>,
}

/// One table of the load: how to read it and where it goes.
#[derive(Clone)]
pub(crate) struct Job {
    pub(crate) key: String,
    pub(crate) source: Table,
    pub(crate) target: TargetTable,
    pub(crate) read_cols: Vec<String>,
    pub(crate) read_types: Vec<ColumnType>,
    pub(crate) write: WriteSpec,
    /// Quoted source key column for range chunks, if any.
    pub(crate) chunk_key: Option<String>,
    /// The target column name of the chunk key.
    pub(crate) chunk_key_target: Option<String>,
    filter: Option<String>,
    pub(crate) passthrough_binary: bool,
    /// A PostgreSQL table with inheritance children: read `ONLY` its own
    /// rows (and, on a PostgreSQL target, delete only its own).
    only: bool,
    /// `--sql`: the query the rows go through ([`super::load_sql`]).
    pub(crate) sql: Option<Arc<crate::transform::SqlRun>>,
}

/// Where a load writes: a database, or a file or stream target with its
/// options (each chunk opens its own destination).
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) sink: Option<(SinkOptions, Arc<SinkStats>)>,
}

impl Target {
    /// The destination of one chunk: its own connection, or its own files
    /// (named by the chunk, so a chunk loaded again rewrites the same).
    async fn open(&self, chunk: usize, policy: &RowPolicy) -> Result<Box<dyn Destination>> {
        match &self.sink {
            None => Ok(Box::new(crate::sink::db::DbDestination::for_load(&self.endpoint, policy.clone()).await?)),
            Some((opts, stats)) => crate::sink::open(&self.endpoint, opts, Scope::Load { chunk }, stats.clone()).await,
        }
    }
}

/// The tables of a run, selected, converted and planned.
pub(crate) struct Planned {
    /// The selected source tables (and the source's other objects),
    /// shaped for the target ([`shape`]).
    pub(crate) schema: Schema,
    /// The same, as the source has them (for counting).
    pub(crate) selected: Schema,
    /// Source tables the selection leaves out.
    pub(crate) excluded: Vec<QualifiedName>,
    pub(crate) converted: Converted,
    pub(crate) copts: ConvertOptions,
    pub(crate) jobs: Vec<Job>,
    pub(crate) assessment: PathBuf,
}

/// Where a load's rows come from.
pub(crate) enum Feed<'a, 'p> {
    /// A source database: read chunk by chunk, in parallel, from a
    /// snapshot joined to the change capture's when there is one.
    Database(&'a Endpoint),
    /// A pack's tables, in the order they were packed: each table is one
    /// chunk, decrypted from the pack once.
    Pack(&'a mut super::unpack_db::PackFeed<'p>),
}

/// A run's state on disk: where it stands, and the ledger of the objects
/// it created.
pub(crate) struct Opened {
    store: StateStore,
    state: RunState,
    resumed: bool,
    ledger: Ledger,
}

/// Opens (or resumes) the run of `source` (its display name) into `dst`
/// recorded in `opts.state_dir`.
pub(crate) fn open_run(source: &str, dst: &Endpoint, opts: &LoadOptions) -> Result<Opened> {
    // An unfinished run on disk: its ledger of created objects carries on.
    let unfinished = StateStore::open(&opts.state_dir)?.load()?.is_some_and(|p| p.phase != Phase::Done);
    let (store, state, resumed) = open_state(source, dst, &opts.state_dir)?;
    let ledger = Ledger::open(&opts.state_dir, unfinished)?;
    Ok(Opened { store, state, resumed, ledger })
}

pub async fn run(src: &Endpoint, dst: &Endpoint, opts: LoadOptions) -> Result<LoadReport> {
    let started = Instant::now();
    let opened = open_run(&src.to_string(), dst, &opts)?;
    let planned = plan(src, dst, &opts).await?;
    run_phases(Feed::Database(src), dst, opts, planned, opened, started).await
}

/// The phases of a load into a database, whatever feeds it the rows:
/// schema (one step per object), rows, then keys, indexes, constraints,
/// views, routines and triggers, and ANALYZE. The report says what is on
/// the target whatever became of them.
pub(crate) async fn run_phases(mut feed: Feed<'_, '_>, dst: &Endpoint, opts: LoadOptions, planned: Planned, opened: Opened, started: Instant) -> Result<LoadReport> {
    let Opened { store, mut state, resumed, mut ledger } = opened;
    let Planned { schema, selected, excluded, mut converted, copts, jobs, assessment } = planned;
    let rejects = Rejects::new(opts.state_dir.join("rejects.jsonl"));
    let mut counters: BTreeMap<String, Arc<Counters>> = BTreeMap::new();
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    let mut extras = objects::Extras::default();
    let mut object_notes = Vec::new();
    let mut skipped_existing: Vec<String> = Vec::new();
    // The phases; whatever becomes of them, the report says what is on the target.
    let phases = async {
        let mut dconn = Db::connect(dst, Role::Target).await?;
        let targets: Vec<TargetTable> = converted.target.tables.clone();
        let plan_view = target_schema::Plan { converted: &converted, schema: &schema, source: copts.source, mode: opts.schema_mode };

        if opts.schema_mode.creates() {
            extras = match &feed {
                Feed::Database(src) => objects::Extras::read(src, &schema).await?,
                Feed::Pack(pack) => pack.extras(),
            };
        }

        // Shared with other workers: one of them creates the schema; the
        // others start at the load.
        let mut schema_lease = None;
        if let (Some(session), Phase::Schema) = (&opts.coordinated, state.phase) {
            match leased::turn(session, crate::coord::lease::Kind::Schema).await? {
                Some(l) => schema_lease = Some(l),
                None => {
                    leased::follow_schema(session, &jobs, &mut state).await?;
                    leased::adopt_ledger(session, &mut ledger).await?;
                    state.phase = Phase::Load;
                    store.save(&state)?;
                }
            }
        }
        // A worker that took the schema step over from one that stopped
        // finds that one's tables: they are this run's (the first holder
        // checked that none existed before it created any).
        let taken_over = schema_lease.as_ref().is_some_and(|l| l.dirty());

        // 1. Schema: one step per object.
        if state.phase == Phase::Schema {
            store.save(&state)?;
            let steps_for: Vec<&TargetTable> = targets.iter().collect();
            let existing = target_schema::existing_tables(&mut dconn, &steps_for).await?;
            let steps = target_schema::schema_steps(&plan_view, &steps_for, &extras.extensions);
            // Tables an earlier attempt of this run created are ours.
            let ours: Vec<String> = steps
                .iter()
                .enumerate()
                .filter(|(i, st)| st.table.is_some() && ledger.get(&format!("schema:{i}")).is_some_and(|r| r.done.made()))
                .filter_map(|(_, st)| st.table.clone())
                .collect();
            let foreign: Vec<&String> = existing.iter().filter(|t| !ours.contains(t) && !taken_over).collect();
            if opts.schema_mode == SchemaMode::Create {
                if let Some(t) = foreign.first() {
                    return Err(Error::Endpoint {
                        endpoint: dst.to_string(),
                        message: format!("table {t} already exists"),
                        hint: Some("use --target-schema truncate (empty it), append (load into it) or skip (leave it), or drop it first".into()),
                    });
                }
            }
            let skipped: Vec<String> = if opts.schema_mode == SchemaMode::Skip { foreign.into_iter().cloned().collect() } else { Vec::new() };
            if !opts.schema_mode.creates() {
                // truncate empties the tables; append loads into them as they are.
                let loaded: Vec<&TargetTable> = jobs.iter().map(|j| &j.target).collect();
                target_schema::prepare(&mut dconn, dst, &converted, &loaded, opts.schema_mode).await?;
            }
            let mut failed: Vec<(String, String)> = Vec::new();
            {
                let mut runner = Runner::new(&mut dconn, dst).await;
                for (i, step) in steps.iter().enumerate() {
                    let id = format!("schema:{i}");
                    if ledger.get(&id).is_some_and(|r| r.done.made()) {
                        continue;
                    }
                    if step.table.as_ref().is_some_and(|t| skipped.contains(t)) {
                        ledger.record(&id, step, Done::Kept, false)?;
                        continue;
                    }
                    if let Some(need) = step.table.as_ref().and_then(|_| parent_failed(&plan_view, step, &failed)) {
                        ledger.record(&id, step, Done::Skipped { reason: need.clone() }, false)?;
                        failed.push((step.table.clone().unwrap_or_default(), need));
                        continue;
                    }
                    let (done, missing) = runner.run(step).await?;
                    ledger.record(&id, step, done.clone(), missing)?;
                    if let (Done::Refused { message }, Some(table)) = (&done, &step.table) {
                        if opts.on_error != OnError::SkipTable {
                            return Err(Error::Table {
                                table: step.object.clone(),
                                row: None,
                                message: format!("cannot be created on the target: {message}"),
                                hint: Some(format!(
                                "fix what the target refused (see {}), then rerun the same command; --on-error skip-table loads the other tables and still exits non-zero",
                                opts.state_dir.join("assessment.md").display()
                            )),
                            });
                        }
                        tracing::warn!("table {} skipped: the target refused it: {message}", step.object);
                        failed.push((table.clone(), message.clone()));
                    }
                }
            }
            for j in &jobs {
                let failure = failed.iter().find(|(t, _)| *t == j.target.sql_name).map(|(_, m)| m.clone());
                let status = if failure.is_some() {
                    TableStatus::Errored
                } else if skipped.contains(&j.target.sql_name) {
                    TableStatus::Ready
                } else {
                    TableStatus::Init
                };
                let error = failure.map(|m| format!("cannot be created on the target: {m}"));
                state.tables.insert(j.key.clone(), TableState { status, key: j.chunk_key.clone(), chunks: Vec::new(), error, estimated_rows: 0 });
            }
            state.phase = Phase::Load;
            store.save(&state)?;
        }
        // Tables --target-schema skip left as they were: not loaded, not finished.
        let kept: Vec<String> = ledger.steps.values().filter(|r| r.done == Done::Kept).map(|r| r.object.clone()).collect();
        skipped_existing = jobs.iter().filter(|j| kept.contains(&j.target.source.to_string())).map(|j| j.key.clone()).collect();

        // 2. Load.
        let target = Target { endpoint: dst.clone(), sink: None };
        match &mut feed {
            Feed::Database(src) => {
                let readers = if opts.coordinated.is_some() && schema_lease.is_none() {
                    // The schema step's worker started the change capture
                    // (the task's, kept with the coordinator); this one
                    // reads the rows as they are now, which the changes
                    // since then converge, being applied idempotently.
                    Arc::new(SnapshotReaders::from(crate::source::capture::Snapshot::None))
                } else {
                    begin_capture(src, &super::load_sql::read_schema(&schema, &jobs), &opts, &mut state, &store).await?
                };
                if let (Some(session), Phase::Load) = (&opts.coordinated, state.phase) {
                    let keys = leased_table_keys(&plan_view, &targets, &jobs, copts.target);
                    if let Some(l) = &schema_lease {
                        plan_chunks(src, &jobs, &mut state, opts.chunk_rows).await?;
                        store.save(&state)?;
                        crate::coord::fence::prepare(&mut dconn).await?;
                        leased::publish_chunks(session, l, &jobs, &state, &ledger, &keys).await?;
                    }
                    let t = Instant::now();
                    let ctx = Loading { target: &target, jobs: &jobs, state: &mut state, store: &store, opts: &opts, rejects: &rejects, counters: &mut counters, seconds: &mut seconds };
                    leased::load(src, ctx, &readers, session, &keys).await?;
                    tracing::debug!("loaded rows in {:.2}s", t.elapsed().as_secs_f64());
                } else if state.phase == Phase::Load {
                    let t = Instant::now();
                    plan_chunks(src, &jobs, &mut state, opts.chunk_rows).await?;
                    store.save(&state)?;
                    tracing::debug!("planned chunks in {:.2}s", t.elapsed().as_secs_f64());
                    let t = Instant::now();
                    let ctx = Loading { target: &target, jobs: &jobs, state: &mut state, store: &store, opts: &opts, rejects: &rejects, counters: &mut counters, seconds: &mut seconds };
                    load(src, ctx, &readers).await?;
                    tracing::debug!("loaded rows in {:.2}s", t.elapsed().as_secs_f64());
                }
            }
            Feed::Pack(pack) if state.phase == Phase::Load => {
                let t = Instant::now();
                if copts.target == Dialect::Postgres && opts.parallel > 1 {
                    pack.build_keys_early(dst, opts.parallel - 1, table_key_steps(&plan_view, &targets), true);
                }
                let ctx = Loading { target: &target, jobs: &jobs, state: &mut state, store: &store, opts: &opts, rejects: &rejects, counters: &mut counters, seconds: &mut seconds };
                pack.load(ctx).await?;
                tracing::debug!("loaded rows in {:.2}s", t.elapsed().as_secs_f64());
            }
            Feed::Pack(_) => {}
        }
        if state.phase == Phase::Load {
            state.phase = Phase::Post;
            store.save(&state)?;
        }

        // 3. Keys, indexes, constraints, counters; then views, routines and
        // triggers: one step per object, resumable at the step.
        let (object_steps, notes) = if opts.schema_mode.creates() { objects::plan(&plan_view, &extras, &excluded) } else { (Vec::new(), Vec::new()) };
        object_notes = notes;
        // Shared: the worker that leases the post step builds keys and
        // objects once every chunk is in; the others are done.
        let mut post_lease = None;
        if let (Some(session), Phase::Post) = (&opts.coordinated, state.phase) {
            let turn = leased::turn(session, crate::coord::lease::Kind::Post).await?;
            leased::adopt_ledger(session, &mut ledger).await?;
            match turn {
                Some(l) => post_lease = Some(l),
                None => {
                    for t in state.tables.values_mut() {
                        if t.status == TableStatus::FinishedCopy {
                            t.status = TableStatus::Ready;
                        }
                    }
                    state.phase = Phase::Done;
                    store.save(&state)?;
                }
            }
        }
        if state.phase == Phase::Post {
            let failed: Vec<String> = targets
                .iter()
                .filter(|t| {
                    let job_failed = jobs.iter().any(|j| j.target.sql_name == t.sql_name && state.tables.get(&j.key).is_some_and(|s| s.status == TableStatus::Errored));
                    let not_made = ledger.steps.values().any(|r| !r.done.made() && matches!(r.kind, Kind::Table | Kind::Partition) && r.object == t.source.to_string());
                    job_failed || not_made
                })
                .map(|t| t.sql_name.clone())
                .collect();
            let skipped: Vec<String> = jobs.iter().filter(|j| skipped_existing.contains(&j.key)).map(|j| j.target.sql_name.clone()).collect();
            let loaded: Vec<&TargetTable> = targets.iter().filter(|t| !failed.contains(&t.sql_name) && !skipped.contains(&t.sql_name)).collect();
            let mut steps = target_schema::post_steps(&plan_view, &loaded);
            steps.extend(object_steps.iter().cloned());
            let t = Instant::now();
            let parallel = if copts.target == Dialect::Sqlite { 1 } else { opts.parallel.max(1) };
            // PostgreSQL gets fresh statistics of what was loaded (a new
            // table has none until autovacuum comes round).
            // What was built while the rows loaded is recorded, not run again.
            let prebuilt = match (&mut feed, &opts.coordinated) {
                (Feed::Pack(pack), _) => pack.take_prebuilt(),
                // Built by the workers that finished each table's last chunk.
                (Feed::Database(_), Some(session)) => leased::prebuilt(session).await?,
                (Feed::Database(_), None) => Default::default(),
            };
            let analyze: Vec<String> =
                if copts.target == Dialect::Postgres { loaded.iter().map(|t| t.sql_name.clone()).filter(|t| !prebuilt.analyzed.contains(t)).collect() } else { Vec::new() };
            let built = build_table_keys(dst, parallel, &steps, &failed, &skipped, state.post_done, &analyze, &prebuilt, &mut ledger, opts.progress.as_ref()).await;
            let mut runner = Runner::new(&mut dconn, dst).await;
            let mut analyzed = false;
            let outcome = match built {
                Ok((built, done)) => {
                    analyzed = done;
                    run_post(&mut runner, &steps, &built, &failed, &skipped, &mut state, &store, &mut ledger, opts.progress.as_ref()).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                store.save(&state)?;
                return Err(e);
            }
            tracing::debug!("built keys, indexes, constraints and objects in {:.2}s", t.elapsed().as_secs_f64());
            if !analyze.is_empty() && !analyzed {
                let t = Instant::now();
                let phase = opts.progress.phase("ANALYZE");
                runner.best_effort(&format!("ANALYZE {}", analyze.join(", "))).await?;
                phase.finish("");
                tracing::debug!("analyzed in {:.2}s", t.elapsed().as_secs_f64());
            }
            if copts.target == Dialect::Sqlite {
                // Everything written is moved from the write-ahead log into
                // the database file, so the .db file alone holds the copy
                // (one copied without its -wal file would otherwise miss
                // whatever a connection closing at exit did not checkpoint).
                runner.best_effort("PRAGMA wal_checkpoint(TRUNCATE)").await?;
            }
            for j in &jobs {
                if let Some(t) = state.tables.get_mut(&j.key) {
                    if t.status == TableStatus::FinishedCopy {
                        t.status = TableStatus::Ready;
                    }
                }
            }
            state.phase = Phase::Done;
            store.save(&state)?;
            if let (Some(session), Some(l)) = (&opts.coordinated, &post_lease) {
                session.finish(l, &Default::default()).await?;
                session.finish_task(Some(&leased::ledger_value(&ledger))).await?;
            }
        }

        Ok::<(), Error>(())
    }
    .await;
    if let (Err(e), Some(session)) = (&phases, &opts.coordinated) {
        session.abandon(e).await;
    }
    run_report::finish_report(&mut converted.report, &ledger, copts.source == copts.target, &object_notes);
    let mut summary = run_report::summarize(&selected, &schema, &converted, &ledger, &converted.report, &extras, copts.source);
    let written = run_report::write(&opts.state_dir, &converted.report, &converted, &ledger, &summary);
    phases?;
    let (md, json) = written?;
    summary.report_json = Some(json);
    let run = RunInfo { started, resumed, assessment: md, rejects: &rejects };
    let _ = assessment;
    let mut report = load_report(&jobs, &state, &counters, &seconds, &skipped_existing, &opts, run);
    report.objects = Some(summary);
    Ok(report)
}

/// A partition or inheritance child whose parent could not be created
/// cannot be either.
fn parent_failed(p: &target_schema::Plan, step: &Step, failed: &[(String, String)]) -> Option<String> {
    let t = p.converted.target.tables.iter().find(|t| Some(&t.sql_name) == step.table.as_ref())?;
    let src = p.schema.tables.iter().find(|s| s.name == t.source)?;
    let parents: Vec<String> = src.partition_of.iter().map(|po| po.parent.clone()).chain(src.inherits.iter().cloned()).map(|q| p.relation_sql(&q)).collect();
    parents.into_iter().find(|par| failed.iter().any(|(f, _)| f == par)).map(|par| format!("its parent {par} could not be created"))
}

/// Runs the post-load steps from where the last attempt stopped, then
/// tries again the ones that found something missing (a view on a view
/// created later, a comment on a view) until nothing more succeeds.
/// The steps that build one table's own keys and indexes: independent of
/// every other table's, so tables are built side by side.
fn is_table_key(step: &Step) -> bool {
    step.table.is_some() && step.needs.is_empty() && matches!(step.kind, Kind::PrimaryKey | Kind::UniqueKey | Kind::Index)
}

/// A post step that must not run: its table (or one it needs) failed, or
/// was left as it was.
fn blocked_by<'s>(step: &'s Step, failed: &[String], skipped: &[String]) -> Option<&'s String> {
    step.table.iter().chain(&step.needs).find(|t| failed.contains(t) || skipped.contains(t) && step.table.as_ref() == Some(t))
}

/// Builds the tables' primary keys, unique keys and indexes as pg_restore
/// `-j` does: one connection per table at a time, `parallel` tables at
/// once, each table's steps in order, then its ANALYZE when it is in
/// `analyze` (so one table's statistics are gathered while another's
/// index builds). Each outcome goes into the ledger as it comes;
/// [`run_post`] then does the rest (foreign keys, counters, views...) in
/// order, and skips the steps built here (returned, with whether the
/// tables were analyzed). A rerun after a crash runs every step again
/// from the last one recorded in the state, where each finds its object
/// already there or replaces it.
#[allow(clippy::too_many_arguments)]
async fn build_table_keys(
    dst: &Endpoint,
    parallel: usize,
    steps: &[Step],
    failed: &[String],
    skipped: &[String],
    post_done: usize,
    analyze: &[String],
    prebuilt: &super::unpack_db::Prebuilt,
    ledger: &mut Ledger,
    progress: &dyn Progress,
) -> Result<(std::collections::HashSet<usize>, bool)> {
    let mut by_table: BTreeMap<&str, Vec<usize>> = analyze.iter().map(|t| (t.as_str(), Vec::new())).collect();
    let mut built = std::collections::HashSet::new();
    for (i, step) in steps.iter().enumerate().skip(post_done) {
        if is_table_key(step) && blocked_by(step, failed, skipped).is_none() {
            if let Some((done, missing)) = prebuilt.outcome(step) {
                ledger.note(&format!("post:{i}"), step, done, missing);
                built.insert(i);
                continue;
            }
            by_table.entry(step.table.as_deref().unwrap_or_default()).or_default().push(i);
        }
    }
    if !built.is_empty() {
        ledger.save()?;
    }
    if parallel < 2 || by_table.len() < 2 {
        return Ok((built, false));
    }
    // No more connections than tables to build.
    let connections = parallel.min(by_table.len());
    let tables = by_table.len();
    let phase = progress.phase(if analyze.is_empty() { "keys and indexes" } else { "keys, indexes and ANALYZE" });
    let finished_tables = std::sync::atomic::AtomicUsize::new(0);
    phase.set_message(&format!("0/{tables} tables"));
    let queue = std::sync::Mutex::new(by_table.into_iter().collect::<Vec<_>>());
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Done, bool)>();
    let worker = |tx: mpsc::UnboundedSender<(usize, Done, bool)>| {
        let (queue, phase, finished_tables) = (&queue, &phase, &finished_tables);
        async move {
            let mut conn = Db::connect(dst, Role::Target).await?;
            let mut runner = Runner::new(&mut conn, dst).await;
            loop {
                let Some((table, todo)) = queue.lock().expect("queue").pop() else { return Ok::<(), Error>(()) };
                for i in todo {
                    let (done, missing) = runner.run(&steps[i]).await?;
                    let _ = tx.send((i, done, missing));
                }
                if analyze.iter().any(|t| t == table) {
                    runner.best_effort(&format!("ANALYZE {table}")).await?;
                }
                let n = finished_tables.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                phase.set_message(&format!("{n}/{tables} tables"));
            }
        }
    };
    let workers = futures::future::join_all((0..connections).map(|_| worker(tx.clone())));
    drop(tx);
    let record = async {
        while let Some((i, done, missing)) = rx.recv().await {
            ledger.record(&format!("post:{i}"), &steps[i], done, missing)?;
            built.insert(i);
        }
        Ok::<(), Error>(())
    };
    let (results, recorded) = tokio::join!(workers, record);
    recorded?;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    phase.finish(&format!("{tables} tables"));
    Ok((built, !analyze.is_empty()))
}

/// Each table's own key and index steps ([`is_table_key`]), by target
/// table, for building as soon as its rows are in. Tables in a partition
/// or inheritance tree are left out (a parent's key reaches into its
/// partitions, its ANALYZE reads its children): the post-load phase
/// builds theirs.
pub(crate) fn table_key_steps(p: &target_schema::Plan, targets: &[TargetTable]) -> std::collections::HashMap<String, Vec<Step>> {
    let in_tree = |t: &TargetTable| {
        p.schema.tables.iter().any(|s| {
            (s.name == t.source && (s.partition_of.is_some() || !s.inherits.is_empty()))
                || s.partition_of.as_ref().is_some_and(|po| po.parent == t.source)
                || s.inherits.contains(&t.source)
        })
    };
    let alone: Vec<&TargetTable> = targets.iter().filter(|t| !in_tree(t)).collect();
    let mut by_table: std::collections::HashMap<String, Vec<Step>> = alone.iter().map(|t| (t.sql_name.clone(), Vec::new())).collect();
    for step in target_schema::post_steps(p, &alone) {
        if is_table_key(&step) {
            if let Some(v) = step.table.as_ref().and_then(|t| by_table.get_mut(t)) {
                v.push(step);
            }
        }
    }
    by_table
}

/// Each table's key steps (and its ANALYZE on PostgreSQL) by the plan's
/// table key, for the worker that finishes the table's last chunk.
fn leased_table_keys(p: &target_schema::Plan, targets: &[TargetTable], jobs: &[Job], target: Dialect) -> leased::TableKeys {
    let mut by_name = table_key_steps(p, targets);
    let mut keys = leased::TableKeys::default();
    for j in jobs {
        if let Some(steps) = by_name.remove(&j.target.sql_name) {
            if target == Dialect::Postgres {
                keys.analyze.insert(j.key.clone(), j.target.sql_name.clone());
            }
            keys.steps.insert(j.key.clone(), steps);
        }
    }
    keys
}

/// The phase line a post-load step is shown under.
fn post_phase(kind: Kind) -> &'static str {
    match kind {
        Kind::PrimaryKey | Kind::UniqueKey | Kind::Index => "keys and indexes",
        Kind::View | Kind::MaterializedView | Kind::Routine | Kind::Trigger | Kind::GeneratedTrigger => "views, routines and triggers",
        Kind::Counter => "sequence counters",
        other => other.label(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_post(runner: &mut Runner<'_>, steps: &[Step], built: &std::collections::HashSet<usize>, failed: &[String], skipped: &[String], state: &mut RunState, store: &StateStore, ledger: &mut Ledger, progress: &dyn Progress) -> Result<()> {
    let mut phase: Option<(&str, Arc<dyn crate::progress::Task>)> = None;
    for (i, step) in steps.iter().enumerate().skip(state.post_done) {
        let id = format!("post:{i}");
        if built.contains(&i) {
            // Built (or refused) a moment ago by build_table_keys.
            state.post_done = i + 1;
            continue;
        }
        let blocked = blocked_by(step, failed, skipped);
        if let Some(t) = blocked {
            if skipped.contains(t) {
                // A table left as it was (--target-schema skip): nothing to add.
                state.post_done = i + 1;
                continue;
            }
            ledger.record(&id, step, Done::Skipped { reason: format!("{t} could not be created or loaded") }, false)?;
        } else {
            let name = post_phase(step.kind);
            if phase.as_ref().is_none_or(|(n, _)| *n != name) {
                if let Some((_, p)) = phase.take() {
                    p.finish("");
                }
                phase = Some((name, progress.phase(name)));
            }
            if let Some((_, p)) = &phase {
                p.set_message(&step.object);
            }
            let (done, missing) = runner.run(step).await?;
            ledger.record(&id, step, done, missing)?;
        }
        state.post_done = i + 1;
        store.save(state)?;
    }
    loop {
        let retry: Vec<usize> = (0..steps.len()).filter(|i| ledger.get(&format!("post:{i}")).is_some_and(|r| r.missing_dependency && !r.done.made())).collect();
        let mut progress = false;
        for i in retry {
            let (done, missing) = runner.run(&steps[i]).await?;
            progress |= done.made();
            ledger.record(&format!("post:{i}"), &steps[i], done, missing)?;
        }
        if !progress {
            break;
        }
    }
    if let Some((_, p)) = phase {
        p.finish("");
    }
    Ok(())
}

/// With `opts.capture`: starts change capture before any row is read, once
/// per run, and returns source readers that see the data exactly as of its
/// start position (a resumed load reads the data as it is now instead).
pub(crate) async fn begin_capture(src: &Endpoint, schema: &Schema, opts: &LoadOptions, state: &mut RunState, store: &StateStore) -> Result<Arc<SnapshotReaders>> {
    let mut snapshot = crate::source::capture::Snapshot::None;
    if let Some(capture_opts) = &opts.capture {
        if state.capture.is_none() {
            let seed = opts.state_dir.display().to_string();
            super::row_filter::prepare_source(src, &schema.tables, &opts.mapping).await?;
            let (capture, snap) = crate::source::capture::begin_consistent(src, &schema.tables, capture_opts, &seed, opts.parallel.max(1)).await?;
            tracing::info!("change capture starts at {}", capture.position);
            state.snapshot_position = Some(capture.position.to_string());
            state.capture = Some(capture);
            store.save(state)?;
            snapshot = snap;
        } else if state.phase == Phase::Load {
            tracing::warn!("resuming the load without its snapshot: the changes since capture started are applied again over the rows read now, which converges because applying is idempotent");
        }
    }
    Ok(Arc::new(SnapshotReaders::from(snapshot)))
}

/// Opens the run state in `dir`: refuses another run's, and starts a new
/// run when the last one finished. Returns whether the run resumes.
pub(crate) fn open_state(src: &str, dst: &Endpoint, dir: &std::path::Path) -> Result<(StateStore, RunState, bool)> {
    let store = StateStore::open(dir)?;
    let previous = store.load()?;
    if let Some(p) = &previous {
        if p.source != src || p.target != dst.to_string() {
            return Err(Error::Usage(format!(
                "the state in {} belongs to another run ({} → {})",
                dir.display(),
                p.source,
                p.target
            )));
        }
    }
    // A finished run's state is history: running the command again is a
    // new run (which --target-schema then governs).
    let previous = previous.filter(|p| p.phase != Phase::Done);
    let resumed = previous.as_ref().is_some_and(|p| p.phase != Phase::Schema);
    let state = previous.unwrap_or_else(|| RunState::new(src, &dst.to_string()));
    if resumed {
        tracing::info!("resuming the run recorded in {}", dir.display());
    }

    Ok((store, state, resumed))
}

/// The source's schema, and the part of it the mapping selects (an error
/// names a `--tables` pattern or rule that matches nothing).
pub(crate) async fn select(src: &Endpoint, opts: &LoadOptions) -> Result<(Schema, Schema)> {
    let mut sconn = Db::connect(src, Role::Source).await?;
    let full = sconn.introspect().await?;
    let schema = opts.mapping.select_some(&full, src)?;
    Ok((full, schema))
}

/// Reads the source schema, selects and maps the tables, shapes and
/// converts them for the target (files and streams keep the source's
/// names and types) and writes the assessment report.
pub(crate) async fn plan(src: &Endpoint, dst: &Endpoint, opts: &LoadOptions) -> Result<Planned> {
    let (full, schema) = select(src, opts).await?;
    let planned = plan_from(full, schema, &src.to_string(), dst, opts)?;
    match &opts.sql {
        Some(query) => super::load_sql::reshape(planned, query, &src.to_string(), dst, opts),
        None => Ok(planned),
    }
}

/// [`plan`] from a schema already read: `full` as the source has it,
/// `schema` the part selected; `input` names the source in the report.
pub(crate) fn plan_from(full: Schema, mut schema: Schema, input: &str, dst: &Endpoint, opts: &LoadOptions) -> Result<Planned> {
    let database = dst.kind().is_database();

    let mut copts = opts.convert.clone();
    copts.source = full.dialect.unwrap_or(Dialect::Postgres);
    // Files and streams keep the source's names (as DMS does): the
    // conversion only applies mapping rules.
    copts.target = if database { target_dialect(dst)? } else { copts.source };
    if !database {
        copts.naming.case = crate::schema::naming::IdentCase::Preserve;
    }
    // A partitioned table's rows live in its partitions: they come along.
    with_partitions(&full, &mut schema);
    let excluded: Vec<QualifiedName> = full.tables.iter().filter(|t| !schema.tables.iter().any(|s| s.name == t.name)).map(|t| t.name.clone()).collect();
    let mut notes = dropped_foreign_keys(&full, &mut schema);
    // Sequences only tables left out draw from stay behind with them.
    let draws = |t: &Table, s: &crate::model::Sequence| t.columns.iter().any(|c| matches!(&c.default, Some(crate::model::DefaultValue::Sequence(n)) if n.loosely_eq(&s.name) || n.name == s.name.name));
    schema.sequences.retain(|s| schema.tables.iter().any(|t| draws(t, s)) || !full.tables.iter().any(|t| draws(t, s)));
    if database {
        // Views, routines and triggers (of the selected tables) go too.
        schema.views = full.views.clone();
        schema.routines = full
            .routines
            .iter()
            .filter(|r| r.kind != RoutineKind::Trigger || r.table.as_ref().is_some_and(|t| schema.tables.iter().any(|s| s.name.loosely_eq(t))))
            .cloned()
            .collect();
    }
    notes.extend(shape::detach_orphans(&mut schema, &full));
    let mut selected = schema.clone();
    notes.extend(if database { shape::for_target(&mut schema, copts.source, copts.target) } else { shape::for_files(&mut schema, copts.source) });
    // Count the foreign keys the selection dropped as the source's too:
    // they are listed, not lost.
    for t in selected.tables.iter_mut() {
        if let Some(orig) = full.tables.iter().find(|f| f.name == t.name) {
            t.foreign_keys = orig.foreign_keys.clone();
        }
    }

    let mut names = NamePlan::build(&schema, copts.target, &copts.naming);
    opts.mapping.apply_names(&schema, &mut names);
    let mut report = Report { input: input.to_string(), ..Default::default() };
    report.source = Some(copts.source);
    let mut converted = convert::convert_with(&schema, &[], report, &copts, names);
    add_mapped_columns(&schema, &opts.mapping, &mut converted);
    for n in notes {
        converted.report.push(n.kind, n.object, n.status, n.code, 0, n.message);
    }
    if database {
        keep_same_engine_structure(&schema, copts.source, &mut converted);
    }
    let assessment = opts.state_dir.join("assessment.md");
    std::fs::write(&assessment, converted.report.to_markdown()).map_err(|source| Error::Write { path: assessment.clone(), source })?;

    let mut jobs = plan_jobs(&schema, &selected, &converted, &opts.mapping, copts.source, copts.target);
    // Row filters, as WHERE conditions in the source's SQL; with capture,
    // refused now if changes could not be filtered the same way.
    for j in &mut jobs {
        j.filter = opts.mapping.filter_sql(&j.source, copts.source)?;
        if opts.capture.is_some() {
            opts.mapping.change_filter(&j.source, copts.source)?;
        }
    }
    Ok(Planned { schema, selected, excluded, converted, copts, jobs, assessment })
}

/// Adds the partitions (at every level) of selected partitioned tables.
fn with_partitions(full: &Schema, schema: &mut Schema) {
    loop {
        let more: Vec<Table> = full
            .tables
            .iter()
            .filter(|t| t.partition_of.as_ref().is_some_and(|p| schema.tables.iter().any(|s| s.name == p.parent)) && !schema.tables.iter().any(|s| s.name == t.name))
            .cloned()
            .collect();
        if more.is_empty() {
            return;
        }
        schema.tables.extend(more);
    }
}

/// Foreign keys to tables the selection leaves out cannot be created:
/// each is an item for a person.
fn dropped_foreign_keys(full: &Schema, selected: &mut Schema) -> Vec<shape::Note> {
    let mut notes = Vec::new();
    let names: Vec<QualifiedName> = selected.tables.iter().map(|t| t.name.clone()).collect();
    for t in selected.tables.iter_mut() {
        t.foreign_keys.retain(|fk| names.iter().any(|n| n.loosely_eq(&fk.ref_table)));
        let Some(orig) = full.tables.iter().find(|f| f.name == t.name) else { continue };
        for fk in orig.foreign_keys.iter().filter(|fk| !t.foreign_keys.contains(fk)) {
            notes.push(shape::Note {
                kind: ObjectKind::ForeignKey,
                object: format!("{} {} → {}", t.name, fk.name.as_deref().unwrap_or(""), fk.ref_table),
                status: Status::Manual,
                code: Some(codes::FK_FEATURE),
                message: format!("not created: it references {}, which --tables left out", fk.ref_table),
            });
        }
    }
    notes
}

/// What a copy to the same engine keeps that a conversion would not:
/// PostgreSQL domains and extension types as the column types (created
/// before the tables), and partitioning (the report's "not carried over" no longer applies).
fn keep_same_engine_structure(schema: &Schema, source: Dialect, converted: &mut Converted) {
    let target = converted.target.target;
    if source != target {
        return;
    }
    if target == Dialect::Postgres && !schema.domains.is_empty() {
        for tt in converted.target.tables.iter_mut() {
            let Some(t) = schema.tables.iter().find(|t| t.name == tt.source) else { continue };
            for tc in tt.columns.iter_mut() {
                if let Some(d) = t.column(&tc.source).and_then(|c| shape::domain_of(schema, c)) {
                    tc.sql_type = converted.names.quote_parts(&converted.names.relation(&d.name));
                }
            }
        }
    }
    if target == Dialect::Postgres {
        // Types barge does not model (an extension's: citext, vector, …)
        // stay what they are: the extensions are created before the tables.
        let mut kept_types = Vec::new();
        for tt in converted.target.tables.iter_mut() {
            let Some(t) = schema.tables.iter().find(|t| t.name == tt.source) else { continue };
            for tc in tt.columns.iter_mut() {
                let Some(c) = t.column(&tc.source) else { continue };
                if matches!(c.ty, ColumnType::Other { .. }) && tc.ty != c.ty && shape::domain_of(schema, c).is_none() {
                    tc.ty = c.ty.clone();
                    tc.source_ty = c.ty.clone();
                    tc.sql_type = c.source_type.clone();
                    kept_types.push(format!("{}.{}", t.name, c.name));
                }
            }
        }
        converted.report.items.retain(|i| !(i.code == codes::TYPE_UNKNOWN.code && kept_types.iter().any(|k| i.object.ends_with(k.as_str()))));
    }
    let kept: Vec<String> = schema.tables.iter().filter(|t| t.options.partitioning.is_some()).map(|t| t.name.to_string()).collect();
    if matches!(target, Dialect::Postgres | Dialect::Mysql) && !kept.is_empty() {
        converted.report.items.retain(|i| !(i.kind == ObjectKind::Table && i.code == codes::TABLE_OPTION.code && i.message.starts_with("partitioning not carried over") && kept.contains(&i.object)));
        for t in schema.tables.iter().filter(|t| t.options.partitioning.is_some()) {
            let parts = schema.tables.iter().filter(|p| p.partition_of.as_ref().is_some_and(|po| po.parent == t.name)).count();
            let detail = if target == Dialect::Postgres { format!("kept: PARTITION BY {} with its {parts} partitions attached", t.options.partitioning.as_deref().unwrap_or("")) } else { "partitioning kept".to_string() };
            converted.report.push(ObjectKind::Table, t.name.to_string(), Status::Converted, None, 0, detail);
        }
    }
}

/// What change data capture needs to know of each table: the same
/// selection, names and conversion as the full load.
pub async fn plan_tables(src: &Endpoint, dst: &Endpoint, opts: &LoadOptions) -> Result<crate::cdc::Tables> {
    // `--sql` plans its own tables from these (the change capture's input).
    let p = plan(src, dst, &LoadOptions { sql: None, ..opts.clone() }).await?;
    let filters = super::row_filter::for_changes(src, &opts.mapping, &p.jobs.iter().map(|j| &j.source).collect::<Vec<_>>(), p.copts.source).await?;
    let mut out = crate::cdc::Tables::new();
    for (j, filter) in p.jobs.into_iter().zip(filters) {
        // A partition's rows are identified by its parent's key.
        let key = partition_key(&p.schema, &j.source).map(|k| k.columns.iter().filter_map(|c| j.source.columns.iter().position(|x| x.name.eq_ignore_ascii_case(c))).collect()).unwrap_or_default();
        out.insert(j.source.name.clone(), crate::cdc::TableInfo { source: j.source, target: j.target, key, filter });
    }
    Ok(out)
}

/// Columns that mapping rules add (constant or expression, computed by the
/// source while reading).
fn add_mapped_columns(schema: &Schema, mapping: &Mapping, converted: &mut Converted) {
    let target = converted.target.target;
    for t in &schema.tables {
        let added = mapping.added_columns(&t.name);
        if added.is_empty() {
            continue;
        }
        let Some(tt) = converted.target.tables.iter_mut().find(|x| x.source == t.name) else { continue };
        for a in added {
            let ty = typetext::recognize(target, &typetext::parse(&a.data_type));
            let sql_type = ddl::type_sql(target, &ty, &[]);
            tt.columns.push(TargetColumn {
                source: format!("\u{0}{}", a.source_sql),
                name: converted.names.fold(&a.name),
                ty: ty.clone(),
                source_ty: ty,
                sql_type,
                nullable: true,
                default_sql: None,
                identity: None,
                inline_primary_key: false,
                generated: None,
                on_update_current_timestamp: false,
                comment: None,
                check_values: None,
                zero_dates_to_null: false,
            });
        }
    }
}

pub(crate) fn quote_source(d: Dialect, name: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

pub(crate) fn source_table_sql(d: Dialect, t: &Table) -> String {
    match (&t.name.schema, d) {
        (Some(s), Dialect::Postgres) => format!("{}.{}", quote_source(d, s), quote_source(d, &t.name.name)),
        _ => quote_source(d, &t.name.name),
    }
}

/// The target column of an inherited column: where the nearest parent
/// that has it puts it.
fn inherited_target_column(schema: &Schema, converted: &Converted, t: &Table, col: &str, depth: usize) -> Option<TargetColumn> {
    for p in &t.inherits {
        let parent = schema.table(p)?;
        if parent.column(col).is_some() {
            return converted.target.tables.iter().find(|x| x.source == parent.name)?.column_by_source(col).cloned();
        }
        if depth < 64 {
            if let Some(c) = inherited_target_column(schema, converted, parent, col, depth + 1) {
                return Some(c);
            }
        }
    }
    None
}

/// The primary key that identifies a partition's rows: its parent's.
fn partition_key<'s>(schema: &'s Schema, t: &'s Table) -> Option<&'s crate::model::Key> {
    let mut cur = t;
    for _ in 0..64 {
        if let Some(k) = &cur.primary_key {
            return Some(k);
        }
        cur = schema.table(&cur.partition_of.as_ref()?.parent)?;
    }
    None
}

fn plan_jobs(schema: &Schema, selected: &Schema, converted: &Converted, _mapping: &Mapping, source: Dialect, target: Dialect) -> Vec<Job> {
    let mut jobs = Vec::new();
    for t in &schema.tables {
        let Some(tt) = converted.target.tables.iter().find(|x| x.source == t.name) else { continue };
        // A partitioned table whose partitions are kept has no rows of its own.
        if schema.tables.iter().any(|p| p.partition_of.as_ref().is_some_and(|po| po.parent == t.name)) {
            continue;
        }
        // An inheritance child kept as a child names only its own columns
        // in its DDL; its rows have its parents' columns too.
        let mut source_table = t.clone();
        let mut columns: Vec<TargetColumn> = Vec::new();
        if !t.inherits.is_empty() {
            for c in shape::inherited_columns(schema, t) {
                if let Some(tc) = inherited_target_column(schema, converted, t, &c.name, 0) {
                    columns.push(tc);
                    source_table.columns.insert(source_table.columns.len().min(columns.len() - 1), c);
                }
            }
        }
        columns.extend(tt.columns.iter().cloned());
        let t = &source_table;
        let mut read_cols = Vec::new();
        let mut read_types = Vec::new();
        let mut write_cols = Vec::new();
        for tc in &columns {
            if tc.generated.is_some() {
                continue;
            }
            if let Some(expr) = tc.source.strip_prefix('\u{0}') {
                read_cols.push(format!("({expr}) AS {}", quote_source(source, &tc.name)));
                read_types.push(ColumnType::text());
            } else {
                let Some(sc) = t.column(&tc.source) else { continue };
                if sc.generated.is_some() && target == source {
                    // Generated on both sides: the target computes it.
                    continue;
                }
                let (expr, ty) = read_expr(source, &quote_source(source, &sc.name), &sc.ty);
                read_cols.push(expr);
                read_types.push(ty);
            }
            write_cols.push(tc.clone());
        }
        let pk = partition_key(schema, t);
        let key_idx: Vec<usize> = pk.map(|k| k.columns.iter().filter_map(|c| write_cols.iter().position(|w| w.source.eq_ignore_ascii_case(c))).collect()).unwrap_or_default();
        // Chunks are cut on the first key column when it is an integer.
        let chunk = pk.and_then(|k| k.columns.first()).and_then(|c| t.column(c)).filter(|c| c.ty.is_integer() && !c.nullable);
        // Binary COPY needs identical column types on both sides (a
        // domain is its base type on the wire).
        let passthrough_binary = source == Dialect::Postgres
            && target == Dialect::Postgres
            && write_cols.iter().all(|w| {
                !w.source.starts_with('\u{0}')
                    && t.column(&w.source).is_some_and(|sc| shape::domain_of(schema, sc).is_some() || typetext::recognize(Dialect::Postgres, &typetext::parse(&w.sql_type)) == sc.ty)
            });
        let only = source == Dialect::Postgres && selected.tables.iter().any(|x| x.inherits.iter().any(|p| p.loosely_eq(&t.name)));
        jobs.push(Job {
            key: t.name.to_string(),
            source: t.clone(),
            target: tt.clone(),
            read_cols,
            read_types,
            write: WriteSpec { table: tt.sql_name.clone(), columns: write_cols, key: key_idx },
            chunk_key: chunk.map(|c| quote_source(source, &c.name)),
            chunk_key_target: chunk.and_then(|c| columns.iter().find(|x| x.source.eq_ignore_ascii_case(&c.name))).map(|c| quote_ident(target, &c.name)),
            filter: None,
            passthrough_binary,
            only,
            sql: None,
        });
    }
    jobs
}

/// How a source column is selected: PostgreSQL prints `money` with the
/// locale's currency format, so it is read as numeric.
pub fn read_expr(source: Dialect, quoted: &str, ty: &ColumnType) -> (String, ColumnType) {
    match (source, ty) {
        (Dialect::Postgres, ColumnType::Other { name }) if name == "money" => (format!("{quoted}::numeric"), ColumnType::Decimal { precision: None, scale: None }),
        // MariaDB prints FLOAT with 6 significant digits; as a double, every
        // digit of the single-precision value comes through.
        (Dialect::Mysql, ColumnType::Float32) => (format!("CAST({quoted} AS DOUBLE)"), ColumnType::Float32),
        _ => (quoted.to_string(), ty.clone()),
    }
}

/// Cuts each not-yet-planned table into key ranges of about `chunk_rows`.
pub(crate) async fn plan_chunks(src: &Endpoint, jobs: &[Job], state: &mut RunState, chunk_rows: u64) -> Result<()> {
    let needs: Vec<&Job> = jobs.iter().filter(|j| state.tables.get(&j.key).is_some_and(|t| t.chunks.is_empty() && t.status == TableStatus::Init)).collect();
    if needs.is_empty() {
        return Ok(());
    }
    let mut conn = Db::connect(src, Role::Source).await?;
    for j in needs {
        let mut chunks = vec![ChunkState { range: KeyRange::ALL, status: ChunkStatus::Pending, rows: 0 }];
        let mut estimate = 0;
        if let Some(key) = &j.chunk_key {
            let table = source_table_sql(conn.dialect(), &j.source);
            if let Some((lo, hi, count)) = key_bounds(&mut conn, &table, key).await? {
                estimate = count;
                let n = count.div_ceil(chunk_rows.max(1)).clamp(1, 10_000);
                if n > 1 && hi > lo {
                    let width = ((hi as i128 - lo as i128 + 1) / n as i128).max(1);
                    chunks.clear();
                    let mut start = lo as i128;
                    for i in 0..n {
                        let end = if i + 1 == n { None } else { Some((start + width) as i64) };
                        chunks.push(ChunkState {
                            range: KeyRange { lo: if i == 0 { None } else { Some(start as i64) }, hi: end },
                            status: ChunkStatus::Pending,
                            rows: 0,
                        });
                        start += width;
                    }
                }
            }
        }
        if let Some(t) = state.tables.get_mut(&j.key) {
            t.chunks = chunks;
            t.estimated_rows = estimate;
        }
    }
    Ok(())
}

/// min, max and an estimated row count of a key column. The count comes
/// from the catalog's statistics where there are any (a `COUNT(*)` would
/// scan the whole table just to plan); min and max use the key's index.
async fn key_bounds(conn: &mut Db, table: &str, key: &str) -> Result<Option<(i64, i64, u64)>> {
    Ok(crate::source::of(conn).key_bounds(table, key).await?.map(|b| (b.lo, b.hi, b.rows)))
}

/// What the load phase works on and records into, whatever feeds it
/// the rows.
pub(crate) struct Loading<'a> {
    pub(crate) target: &'a Target,
    pub(crate) jobs: &'a [Job],
    pub(crate) state: &'a mut RunState,
    pub(crate) store: &'a StateStore,
    pub(crate) opts: &'a LoadOptions,
    pub(crate) rejects: &'a Rejects,
    pub(crate) counters: &'a mut BTreeMap<String, Arc<Counters>>,
    pub(crate) seconds: &'a mut BTreeMap<String, f64>,
}

/// A chunk's load: its table, its index, how it went, and its seconds.
type ChunkDone = (String, usize, Result<u64>, f64);
/// A chunk waiting for its turn: a small closure that makes the load's
/// future only when it starts (a future made up front holds its whole
/// state machine, tens of kilobytes, for every waiting chunk: memory grew
/// with the chunk count).
type ChunkRun = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ChunkDone> + Send>> + Send>;

/// Loads every chunk not yet done from the source database, in parallel.
pub(crate) async fn load(src: &Endpoint, ctx: Loading<'_>, readers: &Arc<SnapshotReaders>) -> Result<()> {
    let Loading { target, jobs, state, store, opts, rejects, counters, seconds } = ctx;
    // SQLite takes one writer at a time.
    let parallel = if matches!(target.endpoint, Endpoint::Sqlite(_)) { 1 } else { opts.parallel.max(1) };
    let sem = Arc::new(Semaphore::new(parallel));
    let mut set: JoinSet<ChunkDone> = JoinSet::new();
    // Chunks start in plan order as permits free up (a task that waited
    // for its permit inside would start in whatever order the runtime
    // polled it: with --parallel 1, a child table before its parent).
    let mut queue: VecDeque<ChunkRun> = VecDeque::new();
    let mut tasks_by_table: BTreeMap<String, Arc<dyn crate::progress::Task>> = BTreeMap::new();
    let overall = overall_task(jobs, state, opts.progress.as_ref());
    for j in jobs {
        let Some(ts) = state.tables.get(&j.key) else { continue };
        if matches!(ts.status, TableStatus::Ready | TableStatus::Errored | TableStatus::FinishedCopy) {
            continue;
        }
        let done_rows = ts.rows();
        let todo = ts.chunks.iter().filter(|c| c.status != ChunkStatus::Done).count();
        if todo == 0 {
            continue;
        }
        let c = Arc::new(Counters::default());
        counters.insert(j.key.clone(), c.clone());
        let task = opts.progress.task(&j.target.name.join("."), (ts.estimated_rows > 0).then_some(ts.estimated_rows), Unit::Rows);
        task.inc(done_rows);
        let task = crate::progress::also(task, overall.clone());
        let task = crate::metrics::full_load_table(&j.key, &c, task);
        tasks_by_table.insert(j.key.clone(), task.clone());
        // One copy of the job for all its chunks.
        let job = Arc::new(j.clone());
        let chunks = ts.chunks.clone();
        for (ci, chunk) in chunks.iter().enumerate() {
            if chunk.status == ChunkStatus::Done {
                continue;
            }
            // A chunk that was loading when the last run stopped may be
            // half there: remove its range first.
            let dirty = matches!(chunk.status, ChunkStatus::Loading | ChunkStatus::Failed);
            let job = job.clone();
            let range = chunk.range;
            let (src, target) = (src.clone(), target.clone());
            let policy = RowPolicy { on_error: opts.on_error, zero_dates: opts.zero_dates, rejects: rejects.clone(), counters: c.clone() };
            let task = task.clone();
            let readers = readers.clone();
            queue.push_back(Box::new(move || {
                Box::pin(async move {
                    let t0 = Instant::now();
                    let key = job.key.clone();
                    let chunk = Chunk { index: ci, range, dirty };
                    let r = load_chunk(&src, &target, &job, chunk, &policy, &task, &readers).await;
                    (key, ci, r, t0.elapsed().as_secs_f64())
                })
            }));
            if let Some(t) = state.tables.get_mut(&j.key) {
                t.chunks[ci].status = ChunkStatus::Loading;
                t.status = TableStatus::DataSync;
            }
        }
    }
    store.save(state)?;

    let mut first_error: Option<Error> = None;
    let interrupt = crate::util::interrupt::requested();
    tokio::pin!(interrupt);
    loop {
        while !queue.is_empty() {
            let Ok(permit) = sem.clone().try_acquire_owned() else { break };
            let run = queue.pop_front().expect("not empty")();
            set.spawn(async move {
                let _permit = permit;
                run.await
            });
        }
        let next = tokio::select! {
            n = set.join_next() => n,
            _ = &mut interrupt => {
                set.abort_all();
                store.save(state)?;
                return Err(Error::Interrupted);
            }
        };
        let Some(joined) = next else { break };
        let (key, ci, result, secs) = match joined {
            Ok(v) => v,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => return Err(Error::other(format!("a load task failed: {e}"))),
        };
        *seconds.entry(key.clone()).or_default() += secs;
        let Some(ts) = state.tables.get_mut(&key) else { continue };
        match result {
            Ok(rows) => {
                ts.chunks[ci].status = ChunkStatus::Done;
                ts.chunks[ci].rows = rows;
                if ts.chunks.iter().all(|c| c.status == ChunkStatus::Done) {
                    ts.status = TableStatus::FinishedCopy;
                    if let Some(t) = tasks_by_table.get(&key) {
                        t.finish("");
                    }
                }
            }
            Err(e) => {
                ts.chunks[ci].status = ChunkStatus::Failed;
                match opts.on_error {
                    OnError::SkipTable if !e.is_retriable() => {
                        ts.status = TableStatus::Errored;
                        ts.error = Some(e.to_string());
                        tracing::warn!("table {key} skipped: {e}");
                    }
                    _ => {
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                        queue.clear();
                        set.abort_all();
                    }
                }
            }
        }
        store.save(state)?;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    overall.finish("");
    Ok(())
}

/// The bar of the whole load, above the tables' (none for a single table):
/// its total is the catalog's estimates of the tables still to load, and
/// it starts at the rows an earlier attempt loaded.
fn overall_task(jobs: &[Job], state: &RunState, progress: &dyn Progress) -> Arc<dyn crate::progress::Task> {
    let todo: Vec<&TableState> = jobs
        .iter()
        .filter_map(|j| state.tables.get(&j.key))
        .filter(|ts| !matches!(ts.status, TableStatus::Ready | TableStatus::Errored | TableStatus::FinishedCopy) && ts.chunks.iter().any(|c| c.status != ChunkStatus::Done))
        .collect();
    if todo.len() < 2 {
        return crate::progress::Silent.task("", None, Unit::Rows);
    }
    let total: u64 = todo.iter().map(|ts| ts.estimated_rows.max(ts.rows())).sum();
    let task = progress.overall("total", (total > 0).then_some(total), Unit::Rows);
    task.inc(todo.iter().map(|ts| ts.rows()).sum());
    task
}

/// Source connections that see the data exactly at the change capture's
/// start: PostgreSQL readers import the exported snapshot; MySQL readers
/// are connections already inside a consistent-snapshot transaction.
pub struct SnapshotReaders {
    pg_snapshot: Option<String>,
    mysql: tokio::sync::Mutex<Vec<crate::db::mysql::MyConn>>,
    /// Keeps the exporting session (and so the snapshot) alive.
    _hold: Option<crate::source::capture::Snapshot>,
}

impl From<crate::source::capture::Snapshot> for SnapshotReaders {
    fn from(s: crate::source::capture::Snapshot) -> Self {
        match s {
            crate::source::capture::Snapshot::Mysql(conns) => SnapshotReaders { pg_snapshot: None, mysql: tokio::sync::Mutex::new(conns), _hold: None },
            other => SnapshotReaders { pg_snapshot: other.pg_name().map(str::to_string), mysql: Default::default(), _hold: Some(other) },
        }
    }
}

impl SnapshotReaders {
    /// A source connection for one chunk: inside the capture's snapshot
    /// when there is one. Hand it back with [`SnapshotReaders::give_back`].
    async fn checkout(&self, src: &Endpoint) -> Result<(Db, bool)> {
        let pooled = self.mysql.lock().await.pop();
        let from_pool = pooled.is_some();
        let s = match pooled {
            Some(c) => Db::Mysql(c),
            None => Db::connect(src, Role::Source).await?,
        };
        let mut s = s;
        if let Some(name) = &self.pg_snapshot {
            crate::source::of(&mut s).begin_snapshot(Some(name)).await?;
        }
        Ok((s, from_pool))
    }

    /// A pooled snapshot connection serves the next chunk.
    async fn give_back(&self, s: Db, from_pool: bool) {
        if let (true, Db::Mysql(c)) = (from_pool, s) {
            self.mysql.lock().await.push(c);
        }
    }
}

/// What the sinks did, for the run's report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SinkSummary {
    pub records: u64,
    pub files: u64,
    pub bytes_written: u64,
    /// Records that could not be converted, written under `errors/`.
    pub error_records: u64,
    pub throttled_calls: u64,
    pub retried_records: u64,
}

impl SinkSummary {
    fn of(s: &SinkStats) -> Self {
        SinkSummary {
            records: SinkStats::get(&s.records),
            files: SinkStats::get(&s.files),
            bytes_written: SinkStats::get(&s.bytes),
            error_records: SinkStats::get(&s.errors),
            throttled_calls: SinkStats::get(&s.throttled_calls),
            retried_records: SinkStats::get(&s.retried_records),
        }
    }
}

/// How a job's rows arrive: one column per column read, in read order, with
/// the source's types; names come from the target plan.
fn table_info(job: &Job) -> crate::cdc::TableInfo {
    if let Some(info) = super::load_sql::output_info(job) {
        return info;
    }
    let mut source: Table = job.source.clone();
    source.columns = job
        .write
        .columns
        .iter()
        .zip(&job.read_types)
        .map(|(tc, ty)| {
            // A column a mapping rule adds has no source column: its name is its own.
            let name = if tc.source.starts_with('\u{0}') { &tc.name } else { &tc.source };
            let mut c = crate::model::Column::new(name, ty.clone(), "");
            c.nullable = tc.nullable;
            c
        })
        .collect();
    let mut target = job.target.clone();
    target.columns = job.write.columns.clone();
    crate::cdc::TableInfo { source, target, key: job.write.key.clone(), filter: None }
}

/// The full load into object storage and streams: the same planning,
/// chunks, parallelism and resumable state as into a database, without
/// the schema to create or the keys to build. A chunk counts as done only
/// once its destination has flushed it (files written, records
/// acknowledged); a chunk loaded again rewrites its files (their names
/// are fixed per chunk), or delivers its records again with the same ids.
pub async fn run_sink(src: &Endpoint, dst: &Endpoint, opts: LoadOptions, sink_opts: SinkOptions) -> Result<(LoadReport, SinkSummary)> {
    let started = Instant::now();
    let (store, mut state, resumed) = open_state(&src.to_string(), dst, &opts.state_dir)?;
    let Planned { schema, jobs, assessment, .. } = plan(src, dst, &opts).await?;
    if state.phase == Phase::Schema {
        for j in &jobs {
            state.tables.insert(j.key.clone(), TableState { status: TableStatus::Init, key: None, chunks: Vec::new(), error: None, estimated_rows: 0 });
        }
        state.phase = Phase::Load;
        store.save(&state)?;
    }
    let readers = begin_capture(src, &super::load_sql::read_schema(&schema, &jobs), &opts, &mut state, &store).await?;
    let stats = Arc::new(SinkStats::default());
    crate::metrics::sink_stats(&stats);
    let rejects = Rejects::new(opts.state_dir.join("rejects.jsonl"));
    let mut counters: BTreeMap<String, Arc<Counters>> = BTreeMap::new();
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    if state.phase == Phase::Load {
        plan_chunks(src, &jobs, &mut state, opts.chunk_rows).await?;
        store.save(&state)?;
        let target = Target { endpoint: dst.clone(), sink: Some((sink_opts.clone(), stats.clone())) };
        let ctx = Loading { target: &target, jobs: &jobs, state: &mut state, store: &store, opts: &opts, rejects: &rejects, counters: &mut counters, seconds: &mut seconds };
        load(src, ctx, &readers).await?;
        for t in state.tables.values_mut() {
            if t.status == TableStatus::FinishedCopy {
                t.status = TableStatus::Ready;
            }
        }
        state.phase = Phase::Done;
        store.save(&state)?;
    }
    let run = RunInfo { started, resumed, assessment, rejects: &rejects };
    let report = load_report(&jobs, &state, &counters, &seconds, &[], &opts, run);
    Ok((report, SinkSummary::of(&stats)))
}

/// One chunk of a table, as the load plan cut it.
#[derive(Clone, Copy)]
pub(crate) struct Chunk {
    pub(crate) index: usize,
    pub(crate) range: KeyRange,
    /// The chunk was started before and may be half there.
    pub(crate) dirty: bool,
}

/// Loads one chunk, whatever the target: its own destination
/// ([`chunk_destination`]) and its own source connection (from the
/// snapshot readers when there are), a reader and
/// [`Destination::write_rows`] joined by a bounded channel; between two
/// PostgreSQL servers with the same column types, the COPY bytes pass
/// through unparsed.
async fn load_chunk(src: &Endpoint, target: &Target, job: &Job, chunk: Chunk, policy: &RowPolicy, progress: &Arc<dyn crate::progress::Task>, readers: &SnapshotReaders) -> Result<u64> {
    let (mut dest, table) = chunk_destination(target, job, chunk, policy).await?;
    let (s, pooled) = readers.checkout(src).await?;
    let (s, r) = load_chunk_from(s, dest.as_mut(), &table, job, chunk.range, policy, progress).await;
    if let Some(s) = s {
        readers.give_back(s, pooled).await;
    }
    r
}

/// The destination of one chunk (a database connection, or files and
/// records named by the chunk), with what an earlier attempt may have
/// left of the chunk cleared ([`Destination::redo_chunk`]).
pub(crate) async fn chunk_destination(target: &Target, job: &Job, chunk: Chunk, policy: &RowPolicy) -> Result<(Box<dyn Destination>, RowTable)> {
    let mut dest = target.open(chunk.index, policy).await?;
    let table = RowTable { write: job.write.clone(), info: target.sink.as_ref().map(|_| table_info(job)) };
    if chunk.dirty {
        let predicate = match (&job.chunk_key_target, chunk.range.is_all()) {
            (Some(k), false) => chunk.range.predicate(k),
            _ => None,
        };
        dest.redo_chunk(&table, &Redo { chunk: chunk.index, predicate, only: job.only }).await?;
    }
    Ok((dest, table))
}

/// Reads a chunk on `s` into `dest`; gives the source connection back
/// (unless its reader task died).
async fn load_chunk_from(mut s: Db, dest: &mut dyn Destination, table: &RowTable, job: &Job, range: KeyRange, policy: &RowPolicy, progress: &Arc<dyn crate::progress::Task>) -> (Option<Db>, Result<u64>) {
    let caps = dest.capabilities();
    if job.passthrough_binary && caps.copy_passthrough {
        if let (Db::Postgres(sc), Some(Db::Postgres(dc))) = (&mut s, dest.as_db().map(|d| d.db())) {
            // Identical column types: the bytes pass through. Otherwise rows
            // are decoded, so each one is checked against its target column.
            let copied = async {
                sc.client.batch_execute(transfer::postgres::READ_SESSION).await.map_err(|e| crate::db::postgres::query_error(&sc.display, "SET", e))?;
                let cols: Vec<String> = job.write.columns.iter().map(|c| quote_ident(Dialect::Postgres, &c.name)).collect();
                let (select, conds) = chunk_select(job, Dialect::Postgres, range);
                let table = source_table_sql(Dialect::Postgres, &job.source);
                let from = if conds.is_empty() { crate::sink::postgres::CopySource::Table { table: &table, columns: &job.read_cols } } else { crate::sink::postgres::CopySource::Query(&select) };
                let rows = crate::sink::postgres::passthrough(&sc.client, &sc.display, &dc.client, &dc.display, from, &job.write.table, &cols, job.passthrough_binary, progress).await?;
                policy.counters.add(rows, 0);
                Ok(rows)
            }
            .await;
            return (Some(s), copied);
        }
    }
    let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    // A database refuses single rows itself (--on-error), so its reader
    // passes a value that does not match its declared type on as text;
    // files and streams have no such check, and stop at it.
    // The reader is a task of its own, so decoding the source's rows and
    // writing them use two cores.
    let (reader_job, tolerant) = (job.clone(), caps.tables);
    let reader = tokio::spawn(async move {
        let r = read_chunk(&mut s, &reader_job, range, tolerant, tx).await;
        (s, r)
    });
    // --max-rate: the rows pass through the cap as the source gives them.
    let rx = if crate::util::rate::limited() { throttled(rx) } else { rx };
    // `--sql`: the query between the reader and the writer.
    let (rx, query) = match &job.sql {
        Some(run) => {
            let (rx, stage) = crate::transform::rows::stage(run.clone(), rx, policy.clone(), progress.clone());
            (rx, Some(stage))
        }
        None => (rx, None),
    };
    let w = dest.write_rows(table, rx, policy, progress).await;
    let queried = match query {
        Some(stage) => stage.await.unwrap_or_else(|e| Err(Error::other(format!("--sql on {} failed: {e}", job.key)))),
        None => Ok(()),
    };
    let (s, r) = match reader.await {
        Ok((s, r)) => (Some(s), r),
        Err(e) => (None, Err(Error::other(format!("the reader of {} failed: {e}", job.key)))),
    };
    // The query's error explains a reader that stopped early, and so
    // does the writer's.
    (s, queried.and(w).and_then(|written| r.map(|_| written)))
}

/// Relays batches from `rx` as the source's `--max-rate` allows.
fn throttled(mut rx: mpsc::Receiver<Batch>) -> mpsc::Receiver<Batch> {
    let (tx, out) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            crate::util::rate::take(b.bytes).await;
            if tx.send(b).await.is_err() {
                return;
            }
        }
    });
    out
}

/// What a run's report says besides its tables.
pub(crate) struct RunInfo<'a> {
    pub(crate) started: Instant,
    pub(crate) resumed: bool,
    pub(crate) assessment: PathBuf,
    pub(crate) rejects: &'a Rejects,
}

/// The report of a load: one line per table, and the totals.
pub(crate) fn load_report(jobs: &[Job], state: &RunState, counters: &BTreeMap<String, Arc<Counters>>, seconds: &BTreeMap<String, f64>, skipped_existing: &[String], opts: &LoadOptions, run: RunInfo) -> LoadReport {
    let mut tables = Vec::new();
    let mut rows_total = 0;
    let mut bytes_total = 0;
    for j in jobs {
        let st = state.tables.get(&j.key);
        let c = counters.get(&j.key).cloned().unwrap_or_default();
        let rows = st.map(|s| s.rows()).unwrap_or(0);
        let bytes = c.bytes.load(std::sync::atomic::Ordering::Relaxed);
        rows_total += rows;
        bytes_total += bytes;
        tables.push(TableReport {
            source: j.key.clone(),
            target: j.target.name.join("."),
            rows,
            bytes,
            seconds: seconds.get(&j.key).copied().unwrap_or(0.0),
            status: match st.map(|s| s.status) {
                Some(TableStatus::Errored) => "failed".into(),
                Some(TableStatus::Ready) if skipped_existing.contains(&j.key) => "skipped (exists)".into(),
                _ => "loaded".into(),
            },
            rejected: c.rejected.load(std::sync::atomic::Ordering::Relaxed),
            zero_dates: c.zero_dates.load(std::sync::atomic::Ordering::Relaxed),
            rounded: c.rounded.load(std::sync::atomic::Ordering::Relaxed),
            error: st.and_then(|s| s.error.clone()),
            filtered: c.filtered.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    let any_rejects = tables.iter().any(|t| t.rejected > 0);
    LoadReport {
        tables,
        rows: rows_total,
        bytes: bytes_total,
        seconds: run.started.elapsed().as_secs_f64(),
        resumed: run.resumed,
        state_dir: opts.state_dir.clone(),
        assessment: run.assessment,
        rejects: any_rejects.then(|| run.rejects.path.clone()),
        snapshot_position: state.snapshot_position.clone(),
        objects: None,
    }
}

/// The SELECT of one chunk, and its WHERE conditions.
fn chunk_select(job: &Job, source: Dialect, range: KeyRange) -> (String, Vec<String>) {
    let mut conds = Vec::new();
    if let Some(k) = &job.chunk_key {
        if let Some(p) = range.predicate(k) {
            conds.push(p);
        }
    }
    if let Some(f) = &job.filter {
        conds.push(f.clone());
    }
    let select = format!(
        "SELECT {} FROM {}{}{}",
        job.read_cols.join(", "),
        if job.only && source == Dialect::Postgres { "ONLY " } else { "" },
        source_table_sql(source, &job.source),
        if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) }
    );
    (select, conds)
}

/// Reads one chunk of `job` into `tx` on the source connection `s`: the
/// one place the loader reads rows (with the source engine's reader; a
/// PostgreSQL reader first gets the session that makes its text exact).
/// `tolerant`: a value that does not match its declared type comes
/// through as text, listed in the batch, for the writer to judge.
async fn read_chunk(s: &mut Db, job: &Job, range: KeyRange, tolerant: bool, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let (select, _) = chunk_select(job, s.dialect(), range);
    let spec = ReadSpec { select, types: job.read_types.clone() };
    if tolerant {
        return transfer::read_tolerant(s, &job.key, &spec, tx).await;
    }
    transfer::read_from(s, &job.key, &spec, tx).await
}
