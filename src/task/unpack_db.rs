//! Unpacking a database pack into a database: the pack's schema and rows
//! go through the one loader ([`super::load`]) as a source database's do.
//! The schema is converted for the target's dialect and created one step
//! per object, each table's rows are decoded from the pack into the same
//! destination a full load writes through, then keys, indexes, foreign
//! keys, identity counters, views, routines and triggers are built, and
//! the report says what is on the target and what needs a person. The run
//! keeps its state, so the same command after a failure resumes it. What
//! remains is the changes made at the source since the pack: the report
//! carries the `barge migrate --mode cdc` command that applies them.
//!
//! A table is loaded whole or not at all: if its bytes turn out damaged,
//! its writer is cancelled before it commits (each engine writes a
//! table's rows as one transaction), and a table started by an earlier
//! attempt is emptied before it is loaded again.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::load::{self, Chunk, Feed, Job, LoadOptions, LoadReport, Loading, Target};
use super::ddl_steps::{Done, Runner, Step};
use super::mapping::Mapping;
use super::state::{ChunkState, ChunkStatus, KeyRange, RunState, StateStore, TableStatus};
use super::target_schema::{self, SchemaMode};
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema, Table, Value};
use crate::pack::catalog::{Catalog, DatabaseInfo, Entry};
use crate::pack::crypto::MasterKey;
use crate::pack::packer::shell_quote;
use crate::pack::reader::{self, Checked, Finding, Located, Output, TableSink};
use crate::db::Db;
use crate::pack::rows::{RawBlock, RowDecoder};
use crate::schema::naming::quote_ident;
use crate::sink::postgres::packed::PackedCopy;
use crate::progress::{Progress, Task, Unit};
use crate::schema::convert::ConvertOptions;
use crate::transfer::{Batch, Counters, OnError, Rejects, RowPolicy, ZeroDates, CHANNEL_DEPTH};

pub struct UnpackOptions {
    pub schema_mode: SchemaMode,
    pub on_error: OnError,
    pub zero_dates: ZeroDates,
    /// Type rules and naming for the pack's source dialect → the target's.
    pub convert: ConvertOptions,
    /// The run's state, assessment report and rejected rows: the same
    /// command after a failure resumes from it.
    pub state_dir: PathBuf,
    /// Tables whose keys and indexes are built at once after the rows.
    pub parallel: usize,
    pub progress: Arc<dyn Progress>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnpackReport {
    pub source: String,
    pub target: String,
    /// The load: one line per table, the totals, and every kind of object
    /// in the pack with how many are on the target.
    #[serde(flatten)]
    pub load: LoadReport,
    /// The CDC start position recorded at pack time, if any.
    pub cdc_start: Option<String>,
    /// The command that brings the target up to date with the source.
    pub migrate_command: Option<String>,
}

/// The schema the pack holds: its non-table objects, plus each packed
/// table's IR from its catalog entry, in pack order.
pub fn packed_schema(catalog: &Catalog) -> Result<(Schema, &DatabaseInfo)> {
    let info = catalog.database.as_ref().ok_or_else(|| {
        Error::usage(format!(
            "this pack holds a directory tree (from {}), not database tables; unpack it to a directory, file:///dir or s3://bucket/prefix",
            catalog.source
        ))
    })?;
    let mut schema: Schema = serde_json::from_value(info.schema.clone())
        .map_err(|e| Error::Mismatch(format!("the pack's schema does not read as barge's schema IR: {e}")))?;
    if schema.dialect.is_none() {
        schema.dialect = info.dialect.parse().ok();
    }
    for e in &catalog.entries {
        if let Entry::Table { name, schema: t, .. } = e {
            let t: Table = serde_json::from_value(t.clone())
                .map_err(|err| Error::Mismatch(format!("table {name}: its schema does not read as barge's schema IR: {err}")))?;
            schema.tables.push(t);
        }
    }
    Ok((schema, info))
}

/// The command that applies the source's changes made since the pack.
pub fn migrate_command(catalog: &Catalog, target: &Endpoint) -> Option<String> {
    let info = catalog.database.as_ref()?;
    let cdc = info.cdc.as_ref()?;
    let mut cmd = format!(
        "barge migrate {} {} --mode cdc --start-position {}",
        shell_quote(&catalog.source),
        shell_quote(&target.to_string()),
        shell_quote(&cdc.position)
    );
    if let Some(s) = &cdc.slot {
        cmd.push_str(&format!(" --slot {}", shell_quote(s)));
    }
    if let Some(p) = &cdc.publication {
        cmd.push_str(&format!(" --publication {}", shell_quote(p)));
    }
    if let Some(t) = &info.selection {
        cmd.push_str(&format!(" --tables {}", shell_quote(t)));
    }
    Some(cmd)
}

/// The rows of a pack, for [`load::run_phases`]: read once, table after
/// table in pack order, each table one chunk.
pub(crate) struct PackFeed<'p> {
    located: &'p Located,
    checked: &'p Checked,
    master: &'p MasterKey,
    catalog: &'p Catalog,
    /// Each packed table's row layout ([`super::pack_source::packed_columns`]).
    packed: HashMap<String, Vec<crate::model::Column>>,
    /// Tables whose rows are their partitions' (loaded through those).
    partitioned: Vec<String>,
    /// What decrypting found (a damaged chunk, a hash mismatch).
    pub(crate) findings: Vec<Finding>,
    /// Keys, indexes and ANALYZE of the tables loaded, built while the
    /// next tables load ([`PackFeed::build_keys_early`]).
    early: Option<EarlyKeys>,
    /// What the early builds did, for the post-load phase.
    prebuilt: Prebuilt,
}

impl PackFeed<'_> {
    /// What the pack recorded beyond the IR (nothing, in older packs).
    pub(crate) fn extras(&self) -> crate::task::objects::Extras {
        self.catalog.database.as_ref().and_then(|d| d.extras.clone()).unwrap_or_default()
    }

    /// Builds each table's own keys and indexes (`steps`, by target
    /// table), then ANALYZEs it when `analyze`, as soon as the table's
    /// rows are committed, on up to `connections` connections of their
    /// own, while the next tables load: the way pg_restore -j overlaps
    /// a table's index builds with the loading of the next. Only tables
    /// in `steps` are built this way; foreign keys, counters, views and
    /// triggers still wait for every row ([`load::run_phases`]).
    pub(crate) fn build_keys_early(&mut self, dst: &Endpoint, connections: usize, steps: HashMap<String, Vec<Step>>, analyze: bool) {
        let idle: Arc<std::sync::Mutex<Vec<Db>>> = Arc::default();
        let mut running = JoinSet::new();
        // One connection opened now, while the first table loads, so the
        // first build does not wait for it (best effort: a build connects
        // on its own, and says why if it cannot); the builds after it take
        // connections as they free up.
        let (d, pool) = (dst.clone(), idle.clone());
        running.spawn(async move {
            if let Ok(conn) = Db::connect(&d, Role::Target).await {
                pool.lock().expect("pool").push(conn);
            }
            Ok(Prebuilt::default())
        });
        self.early = Some(EarlyKeys { dst: dst.clone(), permits: Arc::new(Semaphore::new(connections.max(1))), idle, steps, analyze, running });
    }

    /// What the early builds did (taken once, after the load).
    pub(crate) fn take_prebuilt(&mut self) -> Prebuilt {
        std::mem::take(&mut self.prebuilt)
    }

    /// Loads every table not yet loaded, in pack order.
    pub(crate) async fn load(&mut self, ctx: Loading<'_>) -> Result<()> {
        let loaded = self.load_tables(ctx).await;
        // On failure the builds still running are dropped (aborted): a
        // table's keys are only ever built on rows already committed.
        let early = self.early.take();
        loaded?;
        if let Some(mut early) = early {
            while let Some(done) = early.running.join_next().await {
                let built = done.map_err(|e| Error::other(format!("building a table's keys failed: {e}")))??;
                self.prebuilt.steps.extend(built.steps);
                self.prebuilt.analyzed.extend(built.analyzed);
            }
        }
        Ok(())
    }

    async fn load_tables(&mut self, ctx: Loading<'_>) -> Result<()> {
        let Loading { target, jobs, state, store, opts, rejects, counters, seconds } = ctx;
        let mut by_name = HashMap::new();
        let to_postgres = target.sink.is_none() && target_schema::target_dialect(&target.endpoint)? == Dialect::Postgres;
        for j in jobs {
            let packed = self.packed.get(&j.key).ok_or_else(|| Error::other(format!("table {}: it is in the load plan but not in the pack", j.key)))?;
            let take = j
                .write
                .columns
                .iter()
                .map(|c| {
                    packed.iter().position(|p| p.name == c.source).ok_or_else(|| Error::Table {
                        table: j.key.clone(),
                        row: None,
                        message: format!("column {} of the target has no column in the pack", c.name),
                        hint: Some("pack the table again with this version of barge".into()),
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            let ts = state.tables.get_mut(&j.key);
            if let Some(ts) = ts {
                if ts.chunks.is_empty() {
                    ts.chunks = vec![ChunkState { range: KeyRange::ALL, status: ChunkStatus::Pending, rows: 0 }];
                }
            }
            // Same column types on both sides: binary COPY from the packed bytes.
            // The target's column types are the packed ones (the usual
            // PostgreSQL → PostgreSQL unpack): binary COPY from the packed
            // bytes, with nothing for the row policy to refuse or convert.
            let same_types = to_postgres && j.write.columns.iter().zip(&take).all(|(c, &i)| c.generated.is_none() && c.ty == c.source_ty && c.ty == packed[i].ty);
            let binary = if same_types {
                let types: Vec<_> = take.iter().map(|&i| &packed[i].ty).collect();
                PackedCopy::new(packed.len(), &take, &types)
            } else {
                None
            };
            by_name.insert(j.key.clone(), Plan { job: j, take, width: packed.len(), binary });
        }
        store.save(state)?;
        let mut sink = TablesIn {
            handle: Handle::current(),
            target,
            jobs: by_name,
            partitioned: &self.partitioned,
            state,
            store,
            opts,
            rejects,
            counters,
            seconds,
            current: None,
            wal_minimal: Arc::default(),
            early: self.early.as_mut(),
            finishing: Default::default(),
        };
        let (l, checked, master, catalog) = (self.located, self.checked, self.master, self.catalog);
        let progress = opts.progress.clone();
        // The pack reader is synchronous (files, decryption): it runs on
        // this thread, taken out of the async workers, and hands each
        // table's rows to a writer task on the runtime.
        let deep = tokio::task::block_in_place(move || {
            let deep = reader::decrypt_to(l, checked, master, catalog, Output::Tables(&mut sink), progress.as_ref());
            let settled = match deep {
                Ok(deep) => sink.settle(0).map(|()| deep),
                Err(e) => {
                    // The tables read whole before the failure are kept:
                    // their writers finish and are recorded, as if the
                    // reader had waited for each.
                    sink.cancel_current();
                    let _ = sink.settle(0);
                    Err(e)
                }
            };
            // Dropped here, off the async workers (it may wait for a
            // writer it cancels).
            drop(sink);
            settled
        })?;
        self.findings.extend(deep.findings);
        Ok(())
    }
}

/// The key builds that start as each table's rows are committed.
struct EarlyKeys {
    dst: Endpoint,
    /// One per connection building at a time.
    permits: Arc<Semaphore>,
    /// Connections free for the next table's build.
    idle: Arc<std::sync::Mutex<Vec<Db>>>,
    /// Each table's key and index steps, by target table; taken when it starts.
    steps: HashMap<String, Vec<Step>>,
    analyze: bool,
    running: JoinSet<Result<Prebuilt>>,
}

impl EarlyKeys {
    /// Starts building `table`'s keys (its rows are committed). Runs on
    /// the caller's runtime, entered.
    fn start(&mut self, table: &str) {
        let Some(steps) = self.steps.remove(table) else { return };
        let (dst, permits, idle, analyze, table) = (self.dst.clone(), self.permits.clone(), self.idle.clone(), self.analyze, table.to_string());
        self.running.spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| Error::other(e.to_string()))?;
            let t = Instant::now();
            let free = idle.lock().expect("pool").pop();
            let mut conn = match free {
                Some(c) => c,
                None => Db::connect(&dst, Role::Target).await?,
            };
            let mut runner = Runner::new(&mut conn, &dst).await;
            let mut built = Prebuilt::default();
            for step in steps {
                let (done, missing) = runner.run(&step).await?;
                built.steps.push((step, done, missing));
            }
            if analyze {
                runner.best_effort(&format!("ANALYZE {table}")).await?;
                built.analyzed.push(table.clone());
            }
            drop(runner);
            idle.lock().expect("pool").push(conn);
            tracing::debug!("table {table}: keys, indexes{} built in {:.2}s while the next tables load", if analyze { " and ANALYZE" } else { "" }, t.elapsed().as_secs_f64());
            Ok(built)
        });
    }
}

/// Key and index steps run while the rows loaded, with their outcomes,
/// and the tables analyzed then: the post-load phase records these and
/// does not run them again.
#[derive(Default)]
pub(crate) struct Prebuilt {
    pub(crate) steps: Vec<(Step, Done, bool)>,
    pub(crate) analyzed: Vec<String>,
}

impl Prebuilt {
    /// The outcome of `step`, if it was run while the rows loaded.
    pub(crate) fn outcome(&self, step: &Step) -> Option<(Done, bool)> {
        self.steps.iter().find(|(s, _, _)| s.kind == step.kind && s.table == step.table && s.sql == step.sql).map(|(_, d, m)| (d.clone(), *m))
    }
}

/// How one table's packed rows are written.
struct Plan<'a> {
    job: &'a Job,
    /// The packed column of each written one.
    take: Vec<usize>,
    /// The packed rows' width.
    width: usize,
    /// Set when the rows go to PostgreSQL as binary COPY straight from the
    /// packed bytes; otherwise they are decoded into values.
    binary: Option<PackedCopy>,
}

/// Rows on their way to a table's writer task.
enum Rows {
    Values(mpsc::Sender<Batch>),
    Packed(mpsc::Sender<RawBlock>),
}

/// The table being loaded: its decoder, the channel to its writer task.
struct Current {
    name: String,
    packed: u64,
    decoder: RowDecoder,
    tx: Option<Rows>,
    writer: Option<JoinHandle<Result<u64>>>,
    task: Arc<dyn Task>,
    started: Instant,
    /// Its rows are queued whole ([`AHEAD_BYTES`]): the reader goes on to
    /// the next table while its writer finishes.
    ahead: bool,
}

/// A table whose bytes were all read and checked, its writer still
/// writing them (and then committing).
struct Finishing {
    name: String,
    writer: JoinHandle<Result<u64>>,
    task: Arc<dyn Task>,
    started: Instant,
}

/// A table of at most this many packed bytes is queued whole for its
/// writer, so the pack reader moves on to the next table (and its writer
/// starts) while this one is still written: small tables load beside the
/// large one after them, as pg_restore -j loads tables side by side.
/// What that holds is bounded by [`TablesIn::ahead_tables`] tables of
/// this size.
const AHEAD_BYTES: u64 = 16 << 20;

/// Receives each table's bytes from the pack reader and loads them.
struct TablesIn<'a> {
    handle: Handle,
    target: &'a Target,
    jobs: HashMap<String, Plan<'a>>,
    partitioned: &'a [String],
    state: &'a mut RunState,
    store: &'a StateStore,
    opts: &'a LoadOptions,
    rejects: &'a Rejects,
    counters: &'a mut BTreeMap<String, Arc<Counters>>,
    seconds: &'a mut BTreeMap<String, f64>,
    current: Option<Current>,
    /// The target's `wal_level` is `minimal` ([`copy_packed`]), once asked.
    wal_minimal: Arc<tokio::sync::OnceCell<bool>>,
    early: Option<&'a mut EarlyKeys>,
    /// Tables read whole whose writers are still at work, oldest first.
    finishing: std::collections::VecDeque<Finishing>,
}

impl TablesIn<'_> {
    /// Sends the whole blocks received so far on, decoded or as they are.
    fn forward(&mut self) -> Result<()> {
        let cur = self.current.as_mut().expect("a table is open");
        let mismatch = |name: &str, e: String| Error::Mismatch(format!("table {name}: {e}"));
        let Some(plan) = self.jobs.get(&cur.name).filter(|_| cur.tx.is_some()) else {
            // Not loaded here: the blocks are only counted.
            while let Some(b) = cur.decoder.next_raw_block().map_err(|e| mismatch(&cur.name, e))? {
                cur.task.inc(b.rows as u64);
            }
            return Ok(());
        };
        // A pack made before inherited columns were packed has narrower
        // rows: refused, never read into the wrong columns. The header (and
        // so the width) is known once the first block is.
        let width = |columns: usize| {
            (columns != plan.width).then(|| {
                format!("the pack's rows have {columns} values, its schema {} columns (pack the table again with this version of barge)", plan.width)
            })
        };
        let sent = match cur.tx.as_ref().expect("checked above") {
            Rows::Packed(tx) => loop {
                let Some(block) = cur.decoder.next_raw_block().map_err(|e| mismatch(&cur.name, e))? else { break true };
                if let Some(e) = width(cur.decoder.columns()) {
                    return Err(mismatch(&cur.name, e));
                }
                if tx.blocking_send(block).is_err() {
                    break false;
                }
            },
            Rows::Values(tx) => loop {
                let Some(rows) = cur.decoder.next_block().map_err(|e| mismatch(&cur.name, e))? else { break true };
                if let Some(e) = width(cur.decoder.columns()) {
                    return Err(mismatch(&cur.name, e));
                }
                let mut bytes = 0;
                let rows: Vec<Vec<Value>> = rows
                    .into_iter()
                    .map(|mut r| {
                        let out: Vec<_> = plan.take.iter().map(|&i| std::mem::replace(&mut r[i], Value::Null)).collect();
                        bytes += out.iter().map(|v| v.weight()).sum::<usize>();
                        out
                    })
                    .collect();
                if tx.blocking_send(Batch::new(rows, bytes)).is_err() {
                    break false;
                }
            },
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        let handle = cur.writer.take().expect("a writer");
        cur.tx = None;
        let e = match self.handle.block_on(handle) {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => Error::other(format!("the writer of table {} stopped early", cur.name)),
            Err(e) => Error::other(format!("the writer of table {} failed: {e}", cur.name)),
        };
        let name = cur.name.clone();
        self.failed(&name, e)
    }

    /// A table's writer failed: with `--on-error skip-table` the table is
    /// marked failed (the report and the exit status say so) and the rest
    /// of the pack loads; otherwise the run stops.
    fn failed(&mut self, name: &str, e: Error) -> Result<()> {
        let ts = self.state.tables.get_mut(name).expect("planned");
        ts.chunks[0].status = ChunkStatus::Failed;
        if self.opts.on_error == OnError::SkipTable && !e.is_retriable() {
            tracing::warn!("table {name} skipped: {e}");
            ts.status = TableStatus::Errored;
            ts.error = Some(e.to_string());
            self.store.save(self.state)?;
            return Ok(());
        }
        self.store.save(self.state)?;
        Err(e)
    }

    /// Waits for the writers of tables read ahead until at most `keep`
    /// are still at work, and records each outcome; the ones already done
    /// are recorded whatever `keep` is.
    /// One writer failing does not stop the others' outcomes from being
    /// waited for and recorded; the first failure is returned.
    fn settle(&mut self, keep: usize) -> Result<()> {
        let mut first = Ok(());
        while let Some(i) = self.finishing.iter().position(|f| f.writer.is_finished()).or((self.finishing.len() > keep).then_some(0)) {
            let f = self.finishing.remove(i).expect("in range");
            let result = match self.handle.block_on(f.writer) {
                Ok(r) => r,
                Err(e) => Err(Error::other(format!("the writer of table {} failed: {e}", f.name))),
            };
            let recorded = self.finished(&f.name, &f.task, f.started, result);
            if first.is_ok() {
                first = recorded;
            }
        }
        first
    }

    /// A table's writer is done: its rows committed (the table is loaded,
    /// and its keys start), or it failed.
    fn finished(&mut self, name: &str, task: &Arc<dyn Task>, started: Instant, result: Result<u64>) -> Result<()> {
        *self.seconds.entry(name.to_string()).or_default() += started.elapsed().as_secs_f64();
        match result {
            Ok(rows) => {
                let ts = self.state.tables.get_mut(name).expect("planned");
                ts.chunks[0].status = ChunkStatus::Done;
                ts.chunks[0].rows = rows;
                ts.status = TableStatus::FinishedCopy;
                self.store.save(self.state)?;
                task.finish(&format!("{rows} rows"));
                if let (Some(early), Some(plan)) = (self.early.as_deref_mut(), self.jobs.get(name)) {
                    let _enter = self.handle.enter();
                    early.start(&plan.job.target.sql_name);
                }
                Ok(())
            }
            Err(e) => self.failed(name, e),
        }
    }
}

impl TableSink for TablesIn<'_> {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        let Entry::Table { name, rows, size, .. } = entry else { return Err(Error::other("a table sink was given a file")) };
        let task = self.opts.progress.task(name, Some(*rows), Unit::Rows);
        let mut cur = Current { name: name.clone(), packed: *rows, decoder: RowDecoder::new(), tx: None, writer: None, task, started: Instant::now(), ahead: false };
        let Some(plan) = self.jobs.get(name) else {
            if !self.partitioned.contains(name) {
                return Err(Error::other(format!("table {name} is in the pack but not in the load plan")));
            }
            // Its rows are its partitions', which load on their own.
            cur.task.set_message("rows in its partitions");
            self.current = Some(cur);
            return Ok(());
        };
        let ts = self.state.tables.get_mut(name).expect("planned");
        let chunk = ts.chunks[0].status;
        if matches!(ts.status, TableStatus::Ready | TableStatus::Errored | TableStatus::FinishedCopy) || chunk == ChunkStatus::Done {
            // Loaded by an earlier attempt, kept by --target-schema skip, or failed.
            cur.task.set_message(if ts.status == TableStatus::Errored { "failed" } else { "done" });
            self.current = Some(cur);
            return Ok(());
        }
        let dirty = matches!(chunk, ChunkStatus::Loading | ChunkStatus::Failed);
        ts.chunks[0].status = ChunkStatus::Loading;
        ts.status = TableStatus::DataSync;
        self.store.save(self.state)?;
        let c = self.counters.entry(name.clone()).or_default().clone();
        crate::metrics::table_counters(name, &c);
        let policy = RowPolicy { on_error: self.opts.on_error, zero_dates: self.opts.zero_dates, rejects: self.rejects.clone(), counters: c };
        let (target, job, task) = (self.target.clone(), plan.job.clone(), cur.task.clone());
        let chunk = Chunk { index: 0, range: KeyRange::ALL, dirty };
        if let Some(binary) = plan.binary.clone() {
            // A small table is queued whole (a block holds at least a row).
            cur.ahead = *size <= AHEAD_BYTES && self.ahead_tables() > 0;
            let depth = if cur.ahead { (*rows).clamp(CHANNEL_DEPTH as u64, 1 << 16) as usize } else { CHANNEL_DEPTH };
            let (tx, rx) = mpsc::channel::<RawBlock>(depth);
            // A large table is written through several connections at once,
            // so the server parses and inserts on more than one core.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let connections = if *rows >= SPLIT_ROWS { self.opts.parallel.clamp(1, cores) } else { 1 };
            // A table of this run (created by it, or by an earlier attempt
            // of it): nothing of anyone else's is in it to keep.
            let fresh = self.opts.schema_mode.creates();
            let wal = self.wal_minimal.clone();
            cur.writer = Some(self.handle.spawn(async move { copy_packed(&target, &job, chunk, &policy, &binary, rx, &task, connections, fresh, &wal).await }));
            cur.tx = Some(Rows::Packed(tx));
        } else {
            let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
            cur.writer = Some(self.handle.spawn(async move {
                let (mut dest, table) = load::chunk_destination(&target, &job, chunk, &policy).await?;
                dest.write_rows(&table, rx, &policy, &task).await
            }));
            cur.tx = Some(Rows::Values(tx));
        }
        self.current = Some(cur);
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        self.current.as_mut().expect("a table is open").decoder.push(bytes);
        self.forward()?;
        // A table read ahead that committed meanwhile: its keys start now.
        self.settle(self.ahead_tables())
    }

    fn end(&mut self, damage: Option<String>) -> Result<()> {
        let mut cur = self.current.take().expect("a table is open");
        let decoded = match &damage {
            Some(_) => None,
            None => Some(cur.decoder.finish().map_err(|e| Error::Mismatch(format!("table {}: {e}", cur.name)))),
        };
        let bad = match (&damage, &decoded) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(Err(e))) => Some(e.to_string()),
            (None, Some(Ok(n))) if *n != cur.packed => Some(format!("it holds {n} rows, the catalog says {}", cur.packed)),
            _ => None,
        };
        if let Some(why) = bad {
            // Cancel before closing the channel: the writer must never see
            // the end of its input and commit a partial table.
            if let Some(w) = cur.writer.take() {
                w.abort();
                let _ = self.handle.block_on(w);
            }
            drop(cur.tx.take());
            return Err(Error::Mismatch(format!(
                "table {}: {why}; nothing of it was kept on the target (check the devices with `barge verify`; a damaged chunk can only be restored from another copy of the pack)",
                cur.name
            )));
        }
        drop(cur.tx.take());
        let Some(w) = cur.writer.take() else {
            cur.task.finish("");
            return Ok(());
        };
        if cur.ahead {
            self.finishing.push_back(Finishing { name: cur.name, writer: w, task: cur.task, started: cur.started });
            return self.settle(self.ahead_tables());
        }
        let result = match self.handle.block_on(w) {
            Ok(r) => r,
            Err(e) => Err(Error::other(format!("the writer of table {} failed: {e}", cur.name))),
        };
        self.finished(&cur.name, &cur.task, cur.started, result)
    }
}

impl TablesIn<'_> {
    /// Tables read ahead whose writers may still be at work beside the
    /// table being read: together at most `--parallel` tables load at once.
    fn ahead_tables(&self) -> usize {
        self.opts.parallel.saturating_sub(1)
    }
}

/// Tables with at least this many rows are written through more than one
/// connection.
const SPLIT_ROWS: u64 = 100_000;

/// Writes a table's packed blocks as binary COPY through `connections`
/// connections at once, each taking the next block as it is free, each in
/// a transaction of its own that commits only once every one of them has
/// written all it took: a table is never left half loaded by one failed
/// connection. Returns rows written.
///
/// A table this run created (`fresh`) that goes in through one connection
/// is emptied in the loading transaction first (`TRUNCATE ONLY`, as
/// pg_restore -j does), so its rows can go in frozen (`COPY FREEZE`: no
/// hint bits for the key builds and ANALYZE to set, nothing for a later
/// VACUUM to freeze) and, on a server at `wal_level = minimal`, are not
/// written to the WAL at all. On such a server that saves about what a
/// second connection gains (measured on 2 cores: the same wall time for
/// a quarter less server CPU, and frozen rows), so a fresh table offered
/// two connections goes through one; offered more, or at any other
/// `wal_level`, a large table still goes through `connections`.
#[allow(clippy::too_many_arguments)]
async fn copy_packed(
    target: &Target,
    job: &Job,
    chunk: Chunk,
    policy: &RowPolicy,
    plan: &PackedCopy,
    rx: mpsc::Receiver<RawBlock>,
    task: &Arc<dyn Task>,
    connections: usize,
    fresh: bool,
    wal_minimal: &tokio::sync::OnceCell<bool>,
) -> Result<u64> {
    let rx = tokio::sync::Mutex::new(rx);
    let cols: Vec<String> = job.write.columns.iter().map(|c| quote_ident(Dialect::Postgres, &c.name)).collect();
    let open = |i: usize| async move {
        // Only the first clears what an earlier attempt left.
        let chunk = Chunk { dirty: chunk.dirty && i == 0, ..chunk };
        Ok::<_, Error>(load::chunk_destination(target, job, chunk, policy).await?.0)
    };
    let mut first = open(0).await?;
    let pg = postgres_of(&mut first, job)?;
    let minimal = fresh && connections == 2 && *wal_minimal.get_or_try_init(|| wal_is_minimal(pg)).await?;
    let own = fresh && (connections <= 1 || minimal && connections <= 2);
    let connections = if own { 1 } else { connections.max(1) };
    tracing::debug!(
        "table {}: binary COPY straight from the packed rows, {connections} connection(s){}",
        job.key,
        if own { ", truncated and frozen in the loading transaction" } else { "" }
    );
    let mut dests = vec![first];
    for d in futures::future::join_all((1..connections).map(open)).await {
        dests.push(d?);
    }
    let (rx, cols) = (&rx, &cols);
    let written = futures::future::join_all(dests.iter_mut().map(|dest| {
        let pg = postgres_of(dest, job);
        async move {
            let pg = pg?;
            let begin = if own { format!("BEGIN; TRUNCATE ONLY {}", job.write.table) } else { "BEGIN".to_string() };
            pg.client.batch_execute(&begin).await.map_err(|e| crate::db::postgres::query_error(&pg.display, &begin, e))?;
            crate::sink::postgres::packed::write(&pg.client, &pg.display, &job.write.table, cols, plan, own, rx, &policy.counters, task).await
        }
    }))
    .await;
    // Every connection wrote its share, or none is kept (dropping the
    // others' connections rolls them back).
    let mut total = 0;
    for w in written {
        total += w?;
    }
    for dest in &mut dests {
        let pg = postgres_of(dest, job)?;
        pg.client.batch_execute("COMMIT").await.map_err(|e| crate::db::postgres::query_error(&pg.display, "COMMIT", e))?;
    }
    Ok(total)
}

/// The PostgreSQL connection of a loading destination.
fn postgres_of<'d>(dest: &'d mut Box<dyn crate::sink::Destination>, job: &Job) -> Result<&'d mut crate::db::postgres::PgConn> {
    match dest.as_db().map(|d| d.db()) {
        Some(Db::Postgres(pg)) => Ok(pg),
        _ => Err(Error::other(format!("table {}: binary COPY needs a PostgreSQL target", job.key))),
    }
}

/// Whether the server writes only the WAL that crash recovery needs
/// (`wal_level = minimal`).
async fn wal_is_minimal(pg: &crate::db::postgres::PgConn) -> Result<bool> {
    let sql = "SHOW wal_level";
    let row = pg.client.query_one(sql, &[]).await.map_err(|e| crate::db::postgres::query_error(&pg.display, sql, e))?;
    Ok(row.get::<_, String>(0) == "minimal")
}

impl TablesIn<'_> {
    /// A load stopped part-way (an error elsewhere): cancels the writer of
    /// the table being read before its channel closes, so it cannot
    /// commit a partial table.
    fn cancel_current(&mut self) {
        if let Some(mut cur) = self.current.take() {
            if let Some(w) = cur.writer.take() {
                w.abort();
                let _ = self.handle.block_on(w);
            }
        }
    }
}

impl Drop for TablesIn<'_> {
    fn drop(&mut self) {
        self.cancel_current();
        // Tables read ahead and not settled (a panic): their state still
        // says loading, so the next attempt loads them again whether or
        // not they committed.
        for f in self.finishing.drain(..) {
            f.writer.abort();
            let _ = self.handle.block_on(f.writer);
        }
    }
}

/// Loads the pack's tables and objects into `dst`. `l`, `checked`,
/// `master` and `catalog` come from the reader (the chunks already
/// checked). Returns the report and what decrypting found.
pub fn unpack(l: &Located, checked: &Checked, master: &MasterKey, catalog: &Catalog, dst: &Endpoint, opts: UnpackOptions) -> Result<(UnpackReport, Vec<Finding>)> {
    let started = Instant::now();
    let target = target_schema::target_dialect(dst)?;
    let (schema, _) = packed_schema(catalog)?;
    let mut convert = opts.convert.clone();
    convert.source = schema.dialect.unwrap_or(Dialect::Postgres);
    convert.target = target;
    std::fs::create_dir_all(&opts.state_dir).map_err(|source| Error::Write { path: opts.state_dir.clone(), source })?;
    let lopts = LoadOptions {
        schema_mode: opts.schema_mode,
        parallel: opts.parallel.max(1),
        chunk_rows: u64::MAX,
        on_error: opts.on_error,
        zero_dates: opts.zero_dates,
        state_dir: opts.state_dir.clone(),
        mapping: Mapping::default(),
        convert,
        progress: opts.progress.clone(),
        capture: None,
        coordinated: None,
        sql: None,
    };
    let partitioned: Vec<String> = schema.tables.iter().filter(|t| schema.tables.iter().any(|p| p.partition_of.as_ref().is_some_and(|po| po.parent == t.name))).map(|t| t.name.to_string()).collect();
    let mut feed = PackFeed {
        located: l,
        checked,
        master,
        catalog,
        packed: schema.tables.iter().map(|t| (t.name.to_string(), super::pack_source::packed_columns(&schema, t))).collect(),
        partitioned,
        findings: Vec::new(),
        early: None,
        prebuilt: Prebuilt::default(),
    };
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
    let source = catalog.source.clone();
    let report = rt.block_on(async {
        let opened = load::open_run(&source, dst, &lopts)?;
        let planned = load::plan_from(schema.clone(), schema, &source, dst, &lopts)?;
        load::run_phases(Feed::Pack(&mut feed), dst, lopts, planned, opened, started).await
    })?;
    let report = UnpackReport {
        source,
        target: dst.to_string(),
        load: report,
        cdc_start: catalog.database.as_ref().and_then(|d| d.cdc.as_ref()).map(|c| c.position.clone()),
        migrate_command: migrate_command(catalog, dst),
    };
    Ok((report, feed.findings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::catalog::CdcStart;

    fn catalog(cdc: Option<CdcStart>, selection: Option<&str>) -> Catalog {
        Catalog {
            source: "postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw".into(),
            entries: vec![],
            skipped: vec![],
            database: Some(DatabaseInfo {
                dialect: "postgres".into(),
                schema: serde_json::json!({}),
                selection: selection.map(str::to_string),
                cdc,
                extras: None,
            }),
        }
    }

    #[test]
    fn the_cdc_command_names_source_target_position_slot_and_tables() {
        let dst = Endpoint::parse("mysql://loader@10.0.0.9/shop").unwrap();
        let cdc = CdcStart { position: "pg:16/B374D848".into(), slot: Some("barge_1a2b".into()), publication: Some("barge_pub".into()) };
        assert_eq!(
            migrate_command(&catalog(Some(cdc.clone()), None), &dst).unwrap(),
            "barge migrate 'postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw' mysql://loader@10.0.0.9/shop \
             --mode cdc --start-position pg:16/B374D848 --slot barge_1a2b --publication barge_pub"
        );
        let mysql = CdcStart { position: "mysql:binlog.000003:154".into(), slot: None, publication: None };
        assert_eq!(
            migrate_command(&catalog(Some(mysql), Some("orders,!audit_*")), &dst).unwrap(),
            "barge migrate 'postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw' mysql://loader@10.0.0.9/shop \
             --mode cdc --start-position mysql:binlog.000003:154 --tables 'orders,!audit_*'"
        );
        assert_eq!(migrate_command(&catalog(None, None), &dst), None, "no position, no command");
    }
}
