//! The replication loop: read committed source transactions, apply them to
//! the destination in batches, and only then let the source release them.
//!
//! - Batching: the source is read ahead in a task of its own, and whatever
//!   has arrived while the previous batch was being applied goes into the
//!   next one (up to a size), so an idle stream applies each transaction at
//!   once and a busy one amortizes commits, with the target never idle.
//! - Exactly once: the destination stores the position with the data; on
//!   start the loop resumes from it and skips anything at or before it.
//! - Failures: a lost connection to either side (an error the driver marks
//!   retriable, see `util::retry`) is retried with exponential backoff and
//!   jitter; other errors stop the run with the table and reason.
//! - Ctrl-C stops after the batch in flight.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::sink::db::DbDestination;
use crate::cdc::destination::TableChange;
use crate::sink::BoxFuture;
use crate::cdc::evolve::Converter;
use crate::cdc::schema_state::SchemaState;
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::cdc::{ChangeBatch, Position, TableInfo, Tables};
use crate::source::capture::Capture;
use crate::sink::Destination;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{QualifiedName, Table};
use crate::transfer::RowPolicy;

/// Where a run stops by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum StopAt {
    Position(Position),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for StopAt {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(StopAt::Time(t.with_timezone(&Utc)));
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            return Ok(StopAt::Time(t.and_utc()));
        }
        s.parse::<Position>().map(StopAt::Position).map_err(|e| format!("{e}, or a time such as 2026-11-26T12:00:00Z"))
    }
}

/// What the caller wants done with each status as it is written.
pub type StatusHook = Arc<dyn Fn(&Status) + Send + Sync>;

pub struct CdcOptions {
    /// Identifies the task in the target's position table.
    pub task: String,
    pub capture: Capture,
    /// Where to start when the target has no saved position.
    pub start: Position,
    pub stop_at: Option<StopAt>,
    pub state_dir: PathBuf,
    pub policy: RowPolicy,
    /// Most changes applied in one target transaction.
    pub batch_changes: usize,
    pub heartbeat: Duration,
    pub poll_interval: Duration,
    /// Told the status about once a second (the CLI prints it as a
    /// `--json` line); the library itself never prints.
    pub on_status: Option<StatusHook>,
    /// Files and streams: how to write them (None: a database target).
    pub sink: Option<crate::sink::SinkOptions>,
    /// How long the change stream may stay silent before it counts as lost.
    pub stream_timeout: Duration,
    /// How long a lost source or target is retried before the run fails.
    pub reconnect_timeout: Duration,
    /// Converts source tables for the target: DDL during capture, tables
    /// created at the source, reloads.
    pub converter: Converter,
    /// Tables to drop on the target and copy again before changes resume.
    pub reload: Vec<QualifiedName>,
    /// `--sql`: the query every change of its input table goes through
    /// (the run's tables are then its output table).
    pub sql: Option<Arc<crate::transform::SqlRun>>,
    /// A shared run's lease on the change stream: every batch commits
    /// under it (`--coordinator`).
    pub fence: Option<crate::coord::fence::Token>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TableStatus {
    /// `catching up`, `live` or `stopped: <reason>`.
    pub state: String,
    pub changes: u64,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub truncates: u64,
    pub changes_per_second: f64,
    pub lag_seconds: f64,
}

/// What `barge status` shows, and `--json` prints as it goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub source: String,
    pub target: String,
    pub position: Option<String>,
    pub applied_transactions: u64,
    pub applied_changes: u64,
    pub changes_per_second: f64,
    pub lag_seconds: f64,
    pub lag_bytes: Option<u64>,
    pub retries: u64,
    /// Source DDL applied to the target.
    #[serde(default)]
    pub schema_changes: u64,
    /// The process replicating, and when it last wrote this file (about
    /// once a second while it runs).
    #[serde(default)]
    pub pid: Option<u32>,
    pub updated_at: String,
    pub stopped: Option<String>,
    pub tables: BTreeMap<String, TableStatus>,
    /// Rows or records the target could not take, written to the state
    /// directory's rejects.jsonl (`--on-error log`): not on the target.
    #[serde(default)]
    pub rejected: u64,
    /// Records a file or stream target set aside under its errors/
    /// prefix, each with the reason: not in the data files.
    #[serde(default)]
    pub error_records: u64,
    /// Rows `--sql`'s WHERE dropped.
    #[serde(default)]
    pub filtered: u64,
    /// Records `--sql`'s windows received after their windows were
    /// emitted: in rejects.jsonl, each with its time and the watermark.
    #[serde(default)]
    pub late: u64,
}

pub fn status_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("cdc-status.json")
}

/// Messages from the source task.
enum FromSource {
    Event(SourceEvent),
    Failed(Error),
    Ended,
}

/// Runs the source in its own task: it reads ahead while a batch is being
/// applied, and takes acknowledgements between reads.
fn spawn_source(mut source: Box<dyn ChangeSource>, tx: mpsc::Sender<FromSource>, mut acks: mpsc::UnboundedReceiver<Position>, ahead: Arc<AheadBytes>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut last = None;
            while let Ok(p) = acks.try_recv() {
                last = Some(p);
            }
            if let Some(p) = last {
                if let Err(e) = source.acknowledge(&p).await {
                    let _ = tx.send(FromSource::Failed(e)).await;
                    return;
                }
            }
            // A panic while decoding must not pass for the end of the stream.
            let next = if source.next_is_cancel_safe() {
                let mut ack = None;
                let r = tokio::select! {
                    biased;
                    p = acks.recv() => { ack = Some(p); None }
                    r = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(source.next())) => Some(r),
                };
                match (r, ack) {
                    (Some(r), _) => r,
                    (None, Some(Some(p))) => {
                        if let Err(e) = source.acknowledge(&p).await {
                            let _ = tx.send(FromSource::Failed(e)).await;
                            return;
                        }
                        continue;
                    }
                    // The loop is gone.
                    (None, _) => return,
                }
            } else {
                futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(source.next())).await
            };
            let ev = match next {
                Ok(Ok(Some(ev))) => FromSource::Event(ev),
                Ok(Ok(None)) => FromSource::Ended,
                Ok(Err(e)) => FromSource::Failed(e),
                Err(_) => FromSource::Failed(Error::other("the change reader failed on data it could not decode (see the message above); please report it")),
            };
            if let FromSource::Event(SourceEvent::Transaction(t)) = &ev {
                ahead.reserve(t.bytes).await;
            }
            let ended = matches!(ev, FromSource::Ended);
            let end = !matches!(ev, FromSource::Event(_));
            if tx.send(ev).await.is_err() || end {
                // A source that reached its end still takes the
                // acknowledgements of what it gave, until the loop lets go.
                while let (true, Some(p)) = (ended, acks.recv().await) {
                    if source.acknowledge(&p).await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    })
}

pub struct CdcReport {
    pub status: Status,
    pub interrupted: bool,
}

/// How many source messages (transactions, mostly) the reader may hold
/// ahead of the apply. Reading goes on while a batch is applied, so when
/// the source is ahead the next batch is waiting, whole, the moment the
/// previous one commits: batches size themselves to what one apply takes,
/// with no wait to fill them.
const READ_AHEAD: usize = 16_384;

/// The decoded size of the transactions read ahead, at most (one larger
/// transaction still goes alone): a stream of large transactions stops the
/// reader long before READ_AHEAD of them are held.
const READ_AHEAD_BYTES: usize = 256 << 20;

/// The bytes of transactions waiting in the reader's channel.
#[derive(Default)]
struct AheadBytes {
    held: std::sync::atomic::AtomicUsize,
    freed: tokio::sync::Notify,
}

impl AheadBytes {
    /// Waits until `n` more bytes fit (the reader, alone, calls it).
    async fn reserve(&self, n: usize) {
        use std::sync::atomic::Ordering;
        loop {
            let freed = self.freed.notified();
            let held = self.held.load(Ordering::Acquire);
            if held == 0 || held + n <= READ_AHEAD_BYTES {
                self.held.fetch_add(n, Ordering::AcqRel);
                return;
            }
            freed.await;
        }
    }

    /// A message left the channel.
    fn release(&self, m: &Option<FromSource>) {
        if let Some(FromSource::Event(SourceEvent::Transaction(t))) = m {
            self.held.fetch_sub(t.bytes, std::sync::atomic::Ordering::AcqRel);
            self.freed.notify_one();
        }
    }
}

/// A small batch while catching up (see [`gather`]): it keeps taking
/// transactions that arrive within LINGER_GAP of each other, for at most
/// LINGER_MAX, until it holds LINGER_UNTIL changes. "Catching up": the
/// newest transaction committed more than LINGER_BEHIND ago (MySQL's
/// commit times are whole seconds).
const LINGER_GAP: Duration = Duration::from_millis(2);
const LINGER_MAX: Duration = Duration::from_millis(20);
const LINGER_UNTIL: usize = 1_000;
const LINGER_BEHIND: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// How often the source catalog is checked for new tables the selection
/// includes (PostgreSQL: CREATE TABLE is not in the change stream).
const NEW_TABLE_CHECK: Duration = Duration::from_secs(5);

/// Replicates from `src` to `dst` until stopped.
pub async fn run(src: &Endpoint, dst: &Endpoint, tables: Tables, opts: CdcOptions) -> Result<CdcReport> {
    let sink_stats = Arc::new(crate::sink::SinkStats::default());
    crate::metrics::sink_stats(&sink_stats);
    crate::metrics::cdc_rejects(&opts.policy.counters);
    let ends = EndpointEnds { src, dst, opts: &opts, stats: sink_stats.clone() };
    run_between(src, dst, tables, &opts, &ends, sink_stats).await
}

async fn run_between(src: &Endpoint, dst: &Endpoint, tables: Tables, opts: &CdcOptions, ends: &dyn Ends, sink_stats: Arc<crate::sink::SinkStats>) -> Result<CdcReport> {
    let dest = ends.destination().await?;
    let mut r = Replicator::new(src, dst, opts, ends, dest, sink_stats).await?;
    r.prepare_tables(tables).await?;
    r.run().await
}

/// Opens the two ends of the loop, at the start and again after a lost
/// connection: the change stream of the source endpoint and the
/// destination of the target (fakes in the unit tests below).
trait Ends: Sync {
    fn source<'a>(&'a self, capture: &'a Capture, from: &'a Position, tables: Arc<Tables>, copied: HashMap<QualifiedName, Position>) -> BoxFuture<'a, Result<Box<dyn ChangeSource>>>;
    fn destination(&self) -> BoxFuture<'_, Result<Box<dyn Destination>>>;
}

struct EndpointEnds<'a> {
    src: &'a Endpoint,
    dst: &'a Endpoint,
    opts: &'a CdcOptions,
    stats: Arc<crate::sink::SinkStats>,
}

impl Ends for EndpointEnds<'_> {
    fn source<'a>(&'a self, capture: &'a Capture, from: &'a Position, tables: Arc<Tables>, copied: HashMap<QualifiedName, Position>) -> BoxFuture<'a, Result<Box<dyn ChangeSource>>> {
        if let Some(sql) = &self.opts.sql {
            return Box::pin(async move {
                let resume = crate::transform::changes::resume(sql, from, &self.opts.start, &self.opts.state_dir)?;
                let tables = crate::transform::changes::inner_tables(sql);
                let inner = match &capture.records {
                    Some(records) => crate::source::records::changes::open(self.src, records, &resume.read_from, tables, self.opts.policy.clone(), &self.opts.state_dir).await?,
                    None => crate::source::open_changes(self.src, capture, &resume.read_from, tables, HashMap::new(), self.opts.poll_interval, self.opts.stream_timeout).await?,
                };
                Ok(crate::transform::changes::wrap(inner, sql.clone(), resume, from, self.opts.policy.clone(), &self.opts.state_dir))
            });
        }
        if let Some(records) = &capture.records {
            return Box::pin(crate::source::records::changes::open(self.src, records, from, tables, self.opts.policy.clone(), &self.opts.state_dir));
        }
        Box::pin(crate::source::open_changes(self.src, capture, from, tables, copied, self.opts.poll_interval, self.opts.stream_timeout))
    }

    fn destination(&self) -> BoxFuture<'_, Result<Box<dyn Destination>>> {
        Box::pin(open_destination(self.dst, self.opts, &self.stats))
    }
}

/// The replication loop and what it keeps between batches.
struct Replicator<'a> {
    src: &'a Endpoint,
    dst: &'a Endpoint,
    opts: &'a CdcOptions,
    ends: &'a dyn Ends,
    dest: Box<dyn Destination>,
    sink_stats: Arc<crate::sink::SinkStats>,
    buffered: bool,
    /// The tables whose changes are applied, as the target has them now.
    tables: Arc<Tables>,
    schema: SchemaState,
    /// Tables whose changes stopped, with the reason.
    stopped: BTreeMap<QualifiedName, String>,
    /// Tables copied at a position: their changes up to it are in the copy.
    copied: HashMap<QualifiedName, Position>,
    /// Tables named once already: created at the source for a file or
    /// stream target (not copied), or gone from the source's catalog.
    not_copied: std::collections::HashSet<QualifiedName>,
    /// The last position the destination made durable.
    applied: Option<Position>,
    /// What the source has been told it may release.
    acked: Option<Position>,
    start: Position,
    ack_tx: mpsc::UnboundedSender<Position>,
    status: Status,
    rates: RateWindow,
    last_status: StatusFile,
    lag_bytes: Option<u64>,
    stats: BatchStats,
    /// What the current reader holds ahead (see READ_AHEAD_BYTES).
    ahead: Arc<AheadBytes>,
}

impl<'a> Replicator<'a> {
    async fn new(src: &'a Endpoint, dst: &'a Endpoint, opts: &'a CdcOptions, ends: &'a dyn Ends, mut dest: Box<dyn Destination>, sink_stats: Arc<crate::sink::SinkStats>) -> Result<Replicator<'a>> {
        let buffered = dest.buffers();
        let applied = dest.committed().await?;
        let start = applied.clone().unwrap_or_else(|| opts.start.clone());
        if applied.is_some() {
            let place = if buffered { "in the state directory" } else { "on the target" };
            tracing::info!("resuming change capture from {start} (saved {place})");
        } else {
            tracing::info!("change capture from {start}");
        }
        let status = Status { source: src.to_string(), target: dst.to_string(), position: Some(start.to_string()), pid: Some(std::process::id()), ..Default::default() };
        Ok(Replicator {
            src,
            dst,
            opts,
            ends,
            dest,
            sink_stats,
            buffered,
            tables: Arc::new(Tables::new()),
            schema: SchemaState::load(&opts.state_dir)?,
            stopped: BTreeMap::new(),
            copied: HashMap::new(),
            not_copied: Default::default(),
            acked: applied.clone(),
            applied,
            start,
            ack_tx: mpsc::unbounded_channel().0,
            status,
            rates: RateWindow::default(),
            last_status: StatusFile { last: Instant::now() - Duration::from_secs(10), writing: None },
            lag_bytes: None,
            stats: BatchStats::new(),
            ahead: Arc::new(AheadBytes::default()),
        })
    }

    /// The tables as the last run left them: definitions changed by DDL
    /// barge followed, stops, copies; then in step with the target (a
    /// source change recorded but not yet applied is applied again when
    /// the stream replays it); then the tables to copy (reloads, and
    /// tables the target does not have yet).
    async fn prepare_tables(&mut self, planned: Tables) -> Result<()> {
        let mut tables = Tables::new();
        let mut to_copy: Vec<(TableInfo, bool)> = Vec::new();
        for (name, mut info) in planned {
            if let Some(s) = self.schema.stopped(&name) {
                if !self.opts.reload.contains(&name) {
                    let reason = s.reason.clone();
                    tracing::warn!("{name}: {}", stopped_message(&reason, &name));
                    self.status.tables.insert(name.to_string(), TableStatus { state: format!("stopped: {reason}"), ..Default::default() });
                    self.stopped.insert(name, reason);
                    continue;
                }
            }
            // A copy reads the table as the catalog has it now.
            if self.opts.reload.contains(&name) {
                to_copy.push((info, true));
                continue;
            }
            let have = self.dest.table_columns(&info.target).await?;
            if self.dest.has_tables() && have.is_none() {
                to_copy.push((info, false));
                continue;
            }
            if let Some(v) = self.schema.version_at(&name, self.applied.as_ref()).cloned() {
                info = self.retarget(&info, v);
            }
            if let Some(cp) = self.schema.copied_at(&name) {
                if self.applied.as_ref().is_none_or(|a| a < cp) {
                    self.copied.insert(name.clone(), cp.clone());
                }
            }
            if let Some(have) = have {
                info = in_step_with_target(info, &have);
            }
            tables.insert(name, info);
        }
        for name in &self.opts.reload {
            if !to_copy.iter().any(|(i, _)| &i.source.name == name) {
                return Err(Error::usage(format!("--reload {name}: the run does not capture that table (see --tables and the mapping)")));
            }
        }
        self.tables = Arc::new(tables);
        for (info, reload) in to_copy {
            self.copy(info, reload).await?;
        }
        for (name, info) in self.tables.iter() {
            if info.key.is_empty() {
                tracing::warn!("{name} has no primary key: its changes are matched on all columns, one at a time");
            }
            self.status.tables.entry(name.to_string()).or_insert_with(|| TableStatus { state: "catching up".into(), ..Default::default() });
        }
        Ok(())
    }

    /// `info` with the source definition `table` (converted again for the
    /// target, keeping its name).
    fn retarget(&self, info: &TableInfo, table: Table) -> TableInfo {
        let target = match self.opts.converter.convert(&table, Some(&info.target)) {
            Some(c) => c.table,
            None => info.target.clone(),
        };
        TableInfo { key: crate::source::key_indexes(&table), source: table, target, filter: info.filter.clone() }
    }

    /// Creates a table on the target (dropping what is there for a reload)
    /// and copies its rows from a snapshot; its changes then apply from
    /// the snapshot's position on.
    async fn copy(&mut self, info: TableInfo, reload: bool) -> Result<()> {
        let name = info.source.name.clone();
        if !self.dest.has_tables() {
            return Err(Error::usage(format!("{name}: --reload and tables created during capture need a database target; for files and streams, run the full load again")));
        }
        let converted = self.opts.converter.convert(&info.source, Some(&info.target)).ok_or_else(|| Error::other(format!("{name}: the mapping no longer selects it")))?;
        let info = TableInfo { target: converted.table.clone(), ..info };
        // `--sql`: the output table is created empty; the query's rows come from the stream.
        if self.opts.capture.records.is_some() || self.opts.sql.is_some() {
            return self.create_for_records(info, converted.create, reload).await;
        }
        let changed = crate::source::capture_more(self.src, &self.opts.capture, std::slice::from_ref(&info.source)).await?;
        if !changed.is_empty() {
            self.schema.replica_identity.extend(changed);
            self.schema.save()?;
        }
        let db = self.dest.as_db().ok_or_else(|| Error::other("a database destination is expected"))?;
        if reload && db.columns_of(&info.target).await?.is_some() {
            tracing::info!("{name}: dropping {} on the target to load it again", info.target.sql_name);
            db.execute(&format!("DROP TABLE {}", info.target.sql_name)).await.map_err(|e| {
                e.with_hint(format!("drop what depends on {} (foreign keys, views) on the target, or drop the table yourself, then rerun with --reload {name}", info.target.sql_name))
            })?;
        }
        let change = TableChange { old: None, new: info.clone(), changes: Vec::new(), create: converted.create.clone() };
        db.change_schema(&change).await?;
        let started = Instant::now();
        let at = crate::source::copy_live::copy_table(self.src, db, &info).await?;
        tracing::info!("{name}: {} at {at} in {:.1} s; its changes apply from there", if reload { "reloaded" } else { "copied" }, started.elapsed().as_secs_f64());
        self.schema.reloaded(&name, at.clone(), info.source.clone());
        self.schema.save()?;
        self.copied.insert(name.clone(), at);
        self.stopped.remove(&name);
        self.status.tables.insert(name.to_string(), TableStatus { state: "catching up".into(), ..Default::default() });
        let mut t = (*self.tables).clone();
        t.insert(name, info);
        self.tables = Arc::new(t);
        Ok(())
    }

    /// A record source has no rows to copy: the table is created empty
    /// and the stream fills it.
    async fn create_for_records(&mut self, info: TableInfo, create: Vec<String>, reload: bool) -> Result<()> {
        let name = info.source.name.clone();
        if reload {
            return Err(Error::usage(format!("--reload {name}: a record source has no table to copy from; its records are kept on the target")));
        }
        let db = self.dest.as_db().ok_or_else(|| Error::other("a database destination is expected"))?;
        db.change_schema(&TableChange { old: None, new: info.clone(), changes: Vec::new(), create }).await?;
        tracing::info!("{name}: created {} on the target for the records", info.target.sql_name);
        self.status.tables.insert(name.to_string(), TableStatus { state: "catching up".into(), ..Default::default() });
        let mut t = (*self.tables).clone();
        t.insert(name, info);
        self.tables = Arc::new(t);
        Ok(())
    }

    async fn open_reader(&mut self, from: &Position) -> Result<(mpsc::Receiver<FromSource>, tokio::task::JoinHandle<()>)> {
        let s = self.ends.source(&self.opts.capture, from, self.tables.clone(), self.copied.clone()).await?;
        let (tx, rx) = mpsc::channel::<FromSource>(READ_AHEAD);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        self.ack_tx = ack_tx;
        self.ahead = Arc::new(AheadBytes::default());
        Ok((rx, spawn_source(s, tx, ack_rx, self.ahead.clone())))
    }

    async fn run(mut self) -> Result<CdcReport> {
        let opts = self.opts;
        let heartbeat = crate::source::heartbeat(self.src, opts.heartbeat);
        let start = self.start.clone();
        let mut source_attempt = 0u32;
        let since = Instant::now();
        let (mut rx, mut reader) = loop {
            match self.open_reader(&start).await {
                Ok(r) => break r,
                Err(e) if e.is_retriable() && since.elapsed() < opts.reconnect_timeout => {
                    crate::metrics::retry(crate::metrics::Role::Source);
                    tracing::warn!("{e}; retrying");
                    tokio::time::sleep(crate::util::retry::backoff(source_attempt)).await;
                    source_attempt += 1;
                }
                Err(e) if e.is_retriable() => return Err(gave_up(self.src, "the source", source_attempt + 1, since, e)),
                Err(e) => return Err(e),
            }
        };

        let interrupt = crate::util::interrupt::requested();
        tokio::pin!(interrupt);
        let mut interrupted = false;
        let mut ended = false;
        let mut new_tables_checked = Instant::now();

        'outer: loop {
            // Between batches (a busy stream never leaves the loop idle).
            // `--sql` reads one table: tables created at the source are not its input.
            if opts.sql.is_none() && new_tables_checked.elapsed() >= NEW_TABLE_CHECK {
                new_tables_checked = Instant::now();
                self.check_new_tables().await?;
            }
            // Wait for the first event, then take what else is ready.
            let first = tokio::select! {
                m = rx.recv() => m,
                _ = &mut interrupt => { interrupted = true; break 'outer; }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if self.buffered {
                        settle(&mut self.dest, &mut self.acked, &self.ack_tx).await?;
                    }
                    crate::metrics::cdc_caught_up();
                    self.write_status(true)?;
                    if let Some(StopAt::Time(t)) = &opts.stop_at {
                        if Utc::now() >= *t { break 'outer; }
                    }
                    continue;
                }
            };
            let messages = gather(first, &mut rx, opts.batch_changes, &self.ahead).await;

            // Events apply in stream order: transactions gather into one
            // batch, and a schema change first applies the batch before
            // it, so no change is applied with the wrong layout and no
            // position is saved past a change that was not applied.
            let mut txns: Vec<Transaction> = Vec::new();
            let mut idle: Option<Position> = None;
            let mut failure: Option<Error> = None;
            let mut stop_after = false;
            for m in messages {
                match m {
                    // The reader's own ending or failure, taken just before, says more.
                    None if ended || failure.is_some() => {}
                    None => failure = Some(Error::other("the change reader stopped unexpectedly")),
                    Some(FromSource::Ended) => ended = true,
                    Some(FromSource::Failed(e)) => failure = Some(e),
                    Some(FromSource::Event(SourceEvent::Transaction(t))) => {
                        // Already applied (a replay after reconnecting).
                        if self.applied.as_ref().is_some_and(|a| t.position <= *a) {
                            continue;
                        }
                        if let Some(stop) = &opts.stop_at {
                            let past = match stop {
                                StopAt::Position(p) => t.position > *p,
                                StopAt::Time(time) => t.commit_time.is_some_and(|c| c > *time),
                            };
                            if past {
                                stop_after = true;
                                break;
                            }
                        }
                        crate::metrics::cdc_read(t.commit_time);
                        txns.push(t);
                    }
                    Some(FromSource::Event(SourceEvent::Idle { position, lag_bytes: lb })) => {
                        if lb.is_some() {
                            self.lag_bytes = lb;
                        }
                        idle = Some(position);
                    }
                    Some(FromSource::Event(SourceEvent::Schema(ev))) => {
                        if failure.is_some() || ended {
                            continue;
                        }
                        if !txns.is_empty() {
                            self.apply(std::mem::take(&mut txns)).await?;
                        }
                        self.schema_change(*ev).await?;
                    }
                }
            }

            if !txns.is_empty() {
                self.apply(txns).await?;
            } else if let Some(p) = idle {
                self.idle(p).await?;
                if let Some(StopAt::Position(stop)) = &opts.stop_at {
                    if self.applied.as_ref().is_some_and(|a| a >= stop) || self.acked.as_ref().is_some_and(|a| a >= stop) {
                        stop_after = true;
                    }
                }
            }

            if let Some(e) = failure {
                if !e.is_retriable() {
                    return Err(e);
                }
                // The source connection broke: reopen it after the last
                // applied position.
                tracing::warn!("{e}; reconnecting to the source");
                crate::metrics::retry(crate::metrics::Role::Source);
                reader.abort();
                let from = self.applied.clone().unwrap_or_else(|| self.start.clone());
                let mut attempt = 0u32;
                let since = Instant::now();
                loop {
                    tokio::time::sleep(crate::util::retry::backoff(attempt)).await;
                    self.write_status(false)?;
                    match self.open_reader(&from).await {
                        Ok((r, h)) => {
                            rx = r;
                            reader = h;
                            tracing::info!("reconnected to the source after {} attempt(s)", attempt + 1);
                            break;
                        }
                        // A sink retries by itself; its buffers hold changes
                        // not yet durable, so it is never reopened mid-run.
                        Err(e) if !self.buffered && e.is_retriable() && since.elapsed() < opts.reconnect_timeout => {
                            crate::metrics::retry(crate::metrics::Role::Source);
                            self.status.retries += 1;
                            attempt += 1;
                        }
                        Err(e) if e.is_retriable() => {
                            self.status.stopped = Some(format!("failed: gave up reconnecting to the source: {e}"));
                            self.write_status(true)?;
                            return Err(gave_up(self.src, "the source", attempt + 1, since, e));
                        }
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            self.write_status(false)?;
            if ended || stop_after {
                break;
            }
            if let Some(StopAt::Position(p)) = &opts.stop_at {
                if self.applied.as_ref().is_some_and(|a| a >= p) {
                    break;
                }
            }
        }
        if self.buffered {
            // Stopping writes what the sink holds, so a rerun starts after it.
            self.dest.flush().await?;
            ack_durable(&mut self.dest, &mut self.acked, &self.ack_tx).await?;
            let s = &self.sink_stats;
            tracing::debug!(
                "sink: {} records, {} files, {} bytes, {} under errors/, {} throttled calls",
                crate::sink::SinkStats::get(&s.records),
                crate::sink::SinkStats::get(&s.files),
                crate::sink::SinkStats::get(&s.bytes),
                crate::sink::SinkStats::get(&s.errors),
                crate::sink::SinkStats::get(&s.throttled_calls)
            );
        }
        // The source takes its last acknowledgement (a SQLite source purges
        // what the target holds) and ends once no more can come.
        drop(std::mem::replace(&mut self.ack_tx, mpsc::unbounded_channel().0));
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut reader).await;
        reader.abort();
        if let Some(h) = heartbeat {
            h.abort();
        }
        self.status.error_records = crate::sink::SinkStats::get(&self.sink_stats.errors);
        self.status.stopped = Some(if interrupted { "interrupted".into() } else { "stopped".into() });
        self.write_status(true)?;
        Ok(CdcReport { status: self.status, interrupted })
    }

    /// Applies whole source transactions as one batch, retrying a lost
    /// connection, then lets the source release them.
    async fn apply(&mut self, txns: Vec<Transaction>) -> Result<()> {
        // Counted per table before the changes move into the batch (one
        // status entry and rate sample per table, not per change).
        let transactions = txns.iter().filter(|t| !t.partial).count() as u64;
        let last_commit = txns.last().and_then(|t| t.commit_time);
        let mut counts: HashMap<QualifiedName, ChangeCounts> = HashMap::new();
        for t in &txns {
            for c in &t.changes {
                if !self.tables.contains_key(&c.table) {
                    continue;
                }
                let n = match counts.get_mut(&c.table) {
                    Some(n) => n,
                    None => counts.entry(c.table.clone()).or_default(),
                };
                n.add(&c.op);
                if t.commit_time.is_some() {
                    n.commit_time = t.commit_time;
                }
            }
        }
        counts.iter().for_each(|(t, n)| crate::metrics::cdc_received(t, [n.inserts, n.updates, n.deletes, n.truncates]));
        let batch = batch_of(txns, &self.tables, &self.copied)?;
        let apply_started = Instant::now();
        self.apply_batch(&batch).await?;
        crate::metrics::cdc_batch(batch.changes.len(), apply_started.elapsed(), last_commit);
        self.stats.record(batch.changes.len(), apply_started.elapsed(), self.lag_bytes);
        if let Some(position) = batch.position.clone() {
            self.applied_to(position).await?;
        }
        let now = Utc::now();
        self.status.applied_transactions += transactions;
        for (table, n) in counts {
            crate::metrics::cdc_applied(&table, [n.inserts, n.updates, n.deletes, n.truncates]);
            let name = table.to_string();
            self.status.applied_changes += n.changes;
            self.rates.add(&name, n.changes);
            let ts = self.status.tables.entry(name).or_default();
            ts.changes += n.changes;
            ts.inserts += n.inserts;
            ts.updates += n.updates;
            ts.deletes += n.deletes;
            ts.truncates += n.truncates;
            if let Some(ct) = n.commit_time {
                ts.lag_seconds = (now - ct).num_milliseconds().max(0) as f64 / 1000.0;
            }
        }
        if let Some(ct) = last_commit {
            self.status.lag_seconds = (now - ct).num_milliseconds().max(0) as f64 / 1000.0;
        }
        Ok(())
    }

    async fn apply_batch(&mut self, batch: &ChangeBatch) -> Result<()> {
        let mut attempt = 0u32;
        let since = Instant::now();
        loop {
            match self.dest.apply(&self.tables, batch).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() && since.elapsed() < self.opts.reconnect_timeout => {
                    crate::metrics::retry(crate::metrics::Role::Target);
                    self.status.retries += 1;
                    if attempt == 0 {
                        tracing::warn!("applying failed ({e}); retrying");
                    }
                    tokio::time::sleep(crate::util::retry::backoff(attempt)).await;
                    attempt += 1;
                    self.write_status(false)?;
                    // The connection may be gone: open a new one, and
                    // find out whether the batch committed after all.
                    match self.ends.destination().await {
                        Ok(d) => self.dest = d,
                        Err(e2) if e2.is_retriable() => continue,
                        Err(e2) => return Err(e2),
                    }
                    if let Some(saved) = self.dest.committed().await.ok().flatten() {
                        if batch.position.as_ref().is_some_and(|p| *p <= saved) {
                            tracing::info!("reconnected to the target after {attempt} attempt(s); the batch had committed");
                            return Ok(());
                        }
                    }
                    tracing::info!("reconnected to the target after {attempt} attempt(s)");
                }
                Err(e) if e.is_retriable() => {
                    self.status.stopped = Some(format!("failed: gave up on the target: {e}"));
                    self.write_status(true)?;
                    return Err(gave_up(self.dst, "the target", attempt + 1, since, e));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The destination holds everything up to `position`: tell the source.
    async fn applied_to(&mut self, position: Position) -> Result<()> {
        if self.buffered {
            settle(&mut self.dest, &mut self.acked, &self.ack_tx).await?;
        } else {
            let _ = self.ack_tx.send(position.clone());
            self.acked = Some(position.clone());
        }
        self.status.position = Some(position.to_string());
        self.applied = Some(position);
        self.copied.retain(|_, cp| self.applied.as_ref().is_none_or(|a| a < cp));
        Ok(())
    }

    /// Nothing pending up to `p`: the source may move on (past a sink's
    /// buffers only once they are written).
    async fn idle(&mut self, p: Position) -> Result<()> {
        if self.buffered {
            settle(&mut self.dest, &mut self.acked, &self.ack_tx).await?;
        }
        let all_durable = !self.buffered || self.acked == self.applied;
        if all_durable && self.applied.as_ref().is_none_or(|a| p > *a) && self.acked.as_ref().is_none_or(|a| p > *a) {
            let _ = self.ack_tx.send(p.clone());
            self.acked = Some(p);
        }
        crate::metrics::cdc_caught_up();
        self.status.lag_seconds = 0.0;
        for t in self.status.tables.values_mut() {
            t.lag_seconds = 0.0;
        }
        Ok(())
    }

    /// A table's definition changed at this point of the stream (every
    /// change before it is applied): carry it to the destination, or stop
    /// the table.
    async fn schema_change(&mut self, ev: SchemaEvent) -> Result<()> {
        let name = ev.table.clone();
        if self.stopped.contains_key(&name) {
            return Ok(());
        }
        if let Some(cp) = self.copied.get(&name) {
            if ev.in_copy(cp) {
                return Ok(());
            }
        }
        let old = self.tables.get(&name).cloned();
        match ev.change.clone() {
            SchemaChange::Unsupported { message } => {
                if old.is_some() {
                    self.stop_table(&name, &message).await?;
                }
            }
            SchemaChange::Created { table, statement } => {
                if old.is_some() || !self.opts.converter.selects(&table) {
                    return Ok(());
                }
                let Some(converted) = self.opts.converter.convert(&table, None) else { return Ok(()) };
                let filter = self.opts.converter.filter(&table)?;
                let new = TableInfo { key: crate::source::key_indexes(&table), source: table.clone(), target: converted.table.clone(), filter };
                let change = TableChange { old: None, new: new.clone(), changes: Vec::new(), create: converted.create };
                tracing::info!("{name}: created at the source ({statement}); creating {} on the target", new.target.sql_name);
                self.follow(&name, &ev, change).await?;
            }
            SchemaChange::Columns { table, renames, statement } => {
                let Some(old) = old else { return Ok(()) };
                let changes = match crate::cdc::evolve::diff(&old.source, &table, &renames) {
                    Ok(c) => c,
                    Err(why) => return self.stop_table(&name, &why).await,
                };
                let Some(converted) = self.opts.converter.convert(&table, Some(&old.target)) else { return Ok(()) };
                let new = TableInfo { key: crate::source::key_indexes(&table), source: table.clone(), target: converted.table.clone(), filter: old.filter.clone() };
                if changes.is_empty() {
                    // The same columns (a type name spelled anew): the model follows.
                    let mut t = (*self.tables).clone();
                    t.insert(name.clone(), new);
                    self.tables = Arc::new(t);
                    return Ok(());
                }
                let what: Vec<String> = changes.iter().map(|c| c.describe()).collect();
                let from = statement.map(|s| format!(" ({s})")).unwrap_or_default();
                tracing::info!("{name}: {} at the source{from}; applying it to {}", what.join(", "), self.dst);
                let change = TableChange { old: Some(old), new, changes, create: converted.create };
                self.follow(&name, &ev, change).await?;
                self.status.schema_changes += 1;
            }
        }
        Ok(())
    }

    /// Records the new definition, applies it to the destination, and
    /// moves the saved position past the DDL when it has one of its own.
    /// The definition holds from the DDL's position, or from the commit of
    /// the transaction whose Relation message announced it: a restart at
    /// an earlier position reads the older one, and the change again.
    async fn follow(&mut self, name: &QualifiedName, ev: &SchemaEvent, change: TableChange) -> Result<()> {
        let position = ev.position.clone();
        let from = position.clone().or(ev.commit_lsn.map(Position::pg)).or_else(|| self.applied.clone());
        self.schema.record(name, from, change.new.source.clone(), self.applied.as_ref());
        self.schema.save()?;
        let since = Instant::now();
        let mut attempt = 0u32;
        while let Err(e) = self.dest.change_schema(&change).await {
            if !e.is_retriable() {
                // The target refused the change: only this table stops.
                return self.stop_table(name, &format!("the target refused the change: {e}")).await;
            }
            if since.elapsed() >= self.opts.reconnect_timeout {
                return Err(gave_up(self.dst, "the target", attempt + 1, since, e));
            }
            tracing::warn!("applying the schema change failed ({e}); retrying");
            crate::metrics::retry(crate::metrics::Role::Target);
            tokio::time::sleep(crate::util::retry::backoff(attempt)).await;
            attempt += 1;
            if let Ok(d) = self.ends.destination().await {
                self.dest = d;
            }
        }
        let mut t = (*self.tables).clone();
        t.insert(name.clone(), change.new);
        self.tables = Arc::new(t);
        self.status.tables.entry(name.to_string()).or_insert_with(|| TableStatus { state: "live".into(), ..Default::default() });
        if let Some(p) = position {
            if self.applied.as_ref().is_none_or(|a| p > *a) {
                self.apply_batch(&ChangeBatch { changes: Vec::new(), position: Some(p.clone()) }).await?;
                self.applied_to(p).await?;
            }
        }
        Ok(())
    }

    async fn stop_table(&mut self, name: &QualifiedName, reason: &str) -> Result<()> {
        tracing::warn!("{name}: {}", stopped_message(reason, name));
        self.schema.stop(name, reason, self.applied.clone());
        self.schema.save()?;
        self.stopped.insert(name.clone(), reason.to_string());
        let mut t = (*self.tables).clone();
        t.remove(name);
        self.tables = Arc::new(t);
        self.status.tables.entry(name.to_string()).or_default().state = format!("stopped: {reason}");
        self.write_status(true)
    }

    /// Where the source's change stream does not carry CREATE and DROP
    /// TABLE (PostgreSQL): tables created at the source that the selection
    /// includes are added to the capture, created on the target and
    /// copied; captured tables the catalog no longer has stop.
    async fn check_new_tables(&mut self) -> Result<()> {
        let found = match crate::source::tables_outside_the_stream(self.src, &self.opts.converter, &self.tables, &self.stopped).await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::debug!("cannot look for new tables: {e}");
                return Ok(());
            }
        };
        // Its last changes may still be on their way: it stays applied,
        // and is named once.
        for name in found.gone {
            if self.not_copied.insert(name.clone()) {
                tracing::warn!("{name}: no longer in the source's catalog (dropped or renamed); no more of its changes will come. Its rows on the target stay as they are");
                self.status.tables.entry(name.to_string()).or_default().state = "stopped: no longer at the source (dropped or renamed)".into();
                self.stopped.insert(name.clone(), "no longer at the source".into());
            }
        }
        for table in found.new {
            let name = table.name.clone();
            if !self.dest.has_tables() {
                // Files and streams: named once, not copied.
                if self.not_copied.insert(name.clone()) {
                    tracing::warn!("{name}: created at the source; barge does not copy a new table into files or streams while changes flow: load it with a full load (--tables {name})");
                }
                continue;
            }
            let Some(converted) = self.opts.converter.convert(&table, None) else { continue };
            tracing::info!("{name}: created at the source; adding it to the capture, creating {} on the target and copying its rows", converted.table.sql_name);
            let filter = self.opts.converter.filter(&table)?;
            let info = TableInfo { key: crate::source::key_indexes(&table), source: table, target: converted.table, filter };
            self.copy(info, false).await?;
        }
        Ok(())
    }

    /// Writes the status file (at most once a second unless `force`), and
    /// the `--json` progress line.
    fn write_status(&mut self, force: bool) -> Result<()> {
        write_status(self.opts, &mut self.status, &mut self.rates, self.lag_bytes, &mut self.last_status, &self.stopped, force)
    }
}

/// The error a run ends with when a server stayed unreachable.
fn gave_up(endpoint: &Endpoint, what: &str, attempts: u32, since: Instant, e: Error) -> Error {
    Error::Endpoint {
        endpoint: endpoint.to_string(),
        message: format!("gave up on {what} after {attempts} attempt(s) over {:.0} s: {e}", since.elapsed().as_secs_f64()),
        hint: Some(format!("bring {what} back, then rerun the same command: it resumes from the saved position (--reconnect-timeout sets how long barge keeps trying)")),
    }
}

/// What a stopped table's message says, and how to bring it back.
pub fn stopped_message(reason: &str, name: &QualifiedName) -> String {
    if reason.contains("barge cleanup") {
        // The reason says what to do (a SQLite source).
        return format!("{reason}; its changes are no longer applied (the other tables go on)");
    }
    format!(
        "{reason}; its changes are no longer applied (the other tables go on). To bring it back, rerun the same `barge migrate` command with --reload {name}: barge drops the target table, copies it again from the source, and applies its changes from there"
    )
}

/// The table as far as the target has it: source columns whose target
/// column is missing were added at the source but not yet applied (their
/// DDL comes again in the stream).
fn in_step_with_target(mut info: TableInfo, have: &[String]) -> TableInfo {
    let has = |n: &str| have.iter().any(|h| h.eq_ignore_ascii_case(n));
    let missing: Vec<String> = info.target.columns.iter().filter(|c| c.generated.is_none() && !c.source.starts_with('\u{0}') && !has(&c.name)).map(|c| c.source.clone()).collect();
    if missing.is_empty() {
        return info;
    }
    tracing::debug!("{}: the target lacks {}; they are added when the stream reaches their DDL", info.source.name, missing.join(", "));
    info.target.columns.retain(|c| !missing.contains(&c.source));
    info.source.columns.retain(|c| !missing.contains(&c.name));
    info.key = crate::source::key_indexes(&info.source);
    info
}

/// The first message, then whatever else the reader has ready, up to
/// `batch_changes`. While catching up the reader has filled the next batch
/// during the last apply (see READ_AHEAD), so it goes at once: waiting to
/// fill it would leave the target idle. A lone change (the live case) goes
/// at once too. Only a small batch of transactions that committed a while
/// ago (a reader slower than the apply) waits a little for more: fewer,
/// larger target transactions leave more CPU to the reader.
async fn gather(first: Option<FromSource>, rx: &mut mpsc::Receiver<FromSource>, batch_changes: usize, ahead: &AheadBytes) -> Vec<Option<FromSource>> {
    let size_of = |m: &Option<FromSource>| {
        ahead.release(m);
        match m {
            Some(FromSource::Event(SourceEvent::Transaction(t))) => t.changes.len(),
            _ => 0,
        }
    };
    let mut size = size_of(&first);
    let mut messages = vec![first];
    while size < batch_changes {
        match rx.try_recv() {
            Ok(m) => {
                let m = Some(m);
                size += size_of(&m);
                messages.push(m);
            }
            Err(_) => break,
        }
    }
    let behind = messages.iter().rev().find_map(|m| match m {
        Some(FromSource::Event(SourceEvent::Transaction(t))) => Some(t.commit_time.is_some_and(|c| Utc::now() - c > LINGER_BEHIND)),
        _ => None,
    });
    if messages.len() > 1 && size < LINGER_UNTIL.min(batch_changes) && behind == Some(true) {
        let until = Instant::now() + LINGER_MAX;
        while size < LINGER_UNTIL.min(batch_changes) {
            let gap = (Instant::now() + LINGER_GAP).min(until);
            match tokio::time::timeout_at(gap.into(), rx.recv()).await {
                Ok(Some(m)) => {
                    let end = matches!(m, FromSource::Failed(_) | FromSource::Ended);
                    let m = Some(m);
                    size += size_of(&m);
                    messages.push(m);
                    if end {
                        break;
                    }
                }
                Ok(None) => {
                    messages.push(None);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    messages
}

async fn open_destination(dst: &Endpoint, opts: &CdcOptions, stats: &Arc<crate::sink::SinkStats>) -> Result<Box<dyn Destination>> {
    match &opts.sink {
        None => {
            let policy = RowPolicy { on_error: opts.policy.on_error, zero_dates: opts.policy.zero_dates, rejects: opts.policy.rejects.clone(), counters: opts.policy.counters.clone() };
            let mut d = DbDestination::open(dst, &opts.task, policy).await?;
            if let Some(token) = &opts.fence {
                d.fence_changes(token.clone());
            }
            Ok(Box::new(d))
        }
        Some(sink) => {
            let inner = crate::sink::open(dst, sink, crate::sink::Scope::Cdc, stats.clone()).await?;
            Ok(Box::new(crate::sink::shared::journal::Journaled::open(inner, &opts.state_dir)?))
        }
    }
}

/// A buffering destination: writes what its interval made due, then tells
/// the source the position now durable (once).
async fn settle(dest: &mut Box<dyn Destination>, acked: &mut Option<Position>, ack_tx: &mpsc::UnboundedSender<Position>) -> Result<()> {
    dest.tick().await?;
    ack_durable(dest, acked, ack_tx).await
}

/// Tells the source the position the destination reports durable, once.
async fn ack_durable(dest: &mut Box<dyn Destination>, acked: &mut Option<Position>, ack_tx: &mpsc::UnboundedSender<Position>) -> Result<()> {
    if let Some(p) = dest.committed().await? {
        if acked.as_ref().is_none_or(|a| p > *a) {
            let _ = ack_tx.send(p.clone());
            *acked = Some(p);
        }
    }
    Ok(())
}

/// The changes of `txns` for the tables being applied, in source order.
/// A copied table's changes at or before its copy's position are in the
/// copy already.
fn batch_of(txns: Vec<Transaction>, tables: &Tables, copied: &HashMap<QualifiedName, Position>) -> Result<ChangeBatch> {
    // A partial transaction's position is not a place to resume from.
    let position = txns.iter().rev().find(|t| !t.partial).map(|t| t.position.clone());
    let mut changes = Vec::with_capacity(txns.iter().map(|t| t.changes.len()).sum());
    for t in txns {
        for c in t.changes {
            let Some(info) = tables.get(&c.table) else { continue };
            // Changes a table copied at a later position already holds.
            if copied.get(&c.table).is_some_and(|cp| t.position <= *cp) {
                continue;
            }
            match &info.filter {
                None => changes.push(c),
                // The mapping's row filter: what the change becomes on a
                // target that holds only matching rows (maybe nothing).
                Some(f) => changes.extend(f.route(info, &c)?),
            }
        }
    }
    Ok(ChangeBatch { changes, position })
}

/// A batch's changes to one table, by kind, for the status.
#[derive(Default)]
struct ChangeCounts {
    changes: u64,
    inserts: u64,
    updates: u64,
    deletes: u64,
    truncates: u64,
    /// The commit time of its last transaction in the batch.
    commit_time: Option<DateTime<Utc>>,
}

impl ChangeCounts {
    fn add(&mut self, op: &crate::model::Op) {
        self.changes += 1;
        match op {
            crate::model::Op::Insert { .. } => self.inserts += 1,
            crate::model::Op::Update { .. } => self.updates += 1,
            crate::model::Op::Delete { .. } => self.deletes += 1,
            crate::model::Op::Truncate => self.truncates += 1,
        }
    }
}

/// Batch sizes and apply times, for `-v`.
struct BatchStats {
    since: Instant,
    batches: u64,
    changes: u64,
    apply: Duration,
}

impl BatchStats {
    fn new() -> Self {
        BatchStats { since: Instant::now(), batches: 0, changes: 0, apply: Duration::ZERO }
    }

    /// Counts a batch; every few seconds says how batches go (`-v`).
    fn record(&mut self, changes: usize, took: Duration, lag_bytes: Option<u64>) {
        self.batches += 1;
        self.changes += changes as u64;
        self.apply += took;
        if self.since.elapsed() >= Duration::from_secs(5) {
            tracing::debug!(
                "{} batches, {:.0} changes each, {:.1} ms to apply each, {:.0} changes/s, {} bytes behind",
                self.batches,
                self.changes as f64 / self.batches as f64,
                self.apply.as_secs_f64() * 1000.0 / self.batches as f64,
                self.changes as f64 / self.since.elapsed().as_secs_f64(),
                lag_bytes.map(|b| b.to_string()).unwrap_or_else(|| "?".into())
            );
            *self = BatchStats::new();
        }
    }
}

/// Changes per second over the last few seconds, per table.
#[derive(Default)]
struct RateWindow {
    events: std::collections::VecDeque<(Instant, String, u64)>,
}

impl RateWindow {
    const WINDOW: Duration = Duration::from_secs(5);

    fn add(&mut self, table: &str, n: u64) {
        self.events.push_back((Instant::now(), table.to_string(), n));
        if self.events.len() > 200_000 {
            self.events.pop_front();
        }
    }

    fn rates(&mut self) -> (f64, BTreeMap<String, f64>) {
        let now = Instant::now();
        while self.events.front().is_some_and(|(t, _, _)| now.duration_since(*t) > Self::WINDOW) {
            self.events.pop_front();
        }
        let secs = Self::WINDOW.as_secs_f64();
        let mut per = BTreeMap::new();
        let mut total = 0u64;
        for (_, t, n) in &self.events {
            *per.entry(t.clone()).or_insert(0.0) += *n as f64 / secs;
            total += n;
        }
        (total as f64 / secs, per)
    }
}

/// When the status file was last written, and the write still going on.
struct StatusFile {
    last: Instant,
    /// A routine write runs on a thread of its own: syncing the file can
    /// take tens of milliseconds on a busy disk, which the changes in
    /// flight would otherwise wait for.
    writing: Option<std::thread::JoinHandle<Result<()>>>,
}

impl StatusFile {
    /// Writes `body` durably: in the background unless `now`; a routine
    /// write while the last is still going is skipped (the next comes a
    /// second later), and a write `now` waits for the last one first, so
    /// an older status never lands after a newer one.
    fn write(&mut self, path: PathBuf, body: Vec<u8>, now: bool) -> Result<()> {
        if let Some(h) = self.writing.take() {
            if !now && !h.is_finished() {
                self.writing = Some(h);
                return Ok(());
            }
            h.join().map_err(|_| Error::other("writing the status file failed"))??;
        }
        if now {
            return crate::util::fs::write_durably(&path, &body);
        }
        self.writing = Some(std::thread::spawn(move || crate::util::fs::write_durably(&path, &body)));
        Ok(())
    }
}

/// Writes the status file (at most once a second unless `force`, which
/// also waits until it is written), and hands the status to
/// `opts.on_status`.
fn write_status(opts: &CdcOptions, status: &mut Status, rates: &mut RateWindow, lag_bytes: Option<u64>, file: &mut StatusFile, stopped: &BTreeMap<QualifiedName, String>, force: bool) -> Result<()> {
    if !force && file.last.elapsed() < Duration::from_secs(1) {
        return Ok(());
    }
    file.last = Instant::now();
    let (total, per) = rates.rates();
    status.changes_per_second = total;
    status.lag_bytes = lag_bytes;
    status.rejected = opts.policy.counters.rejected.load(std::sync::atomic::Ordering::Relaxed);
    status.filtered = opts.policy.counters.filtered.load(std::sync::atomic::Ordering::Relaxed);
    status.late = opts.policy.counters.late.load(std::sync::atomic::Ordering::Relaxed);
    status.updated_at = Utc::now().to_rfc3339();
    for (name, t) in status.tables.iter_mut() {
        t.changes_per_second = per.get(name).copied().unwrap_or(0.0);
        if stopped.keys().any(|k| k.to_string() == *name) {
            continue;
        }
        t.state = if t.lag_seconds > 5.0 || lag_bytes.is_some_and(|b| b > 16 << 20) { "catching up".into() } else { "live".into() };
    }
    crate::metrics::cdc_status(status);
    let body = serde_json::to_vec_pretty(status).map_err(|e| Error::other(e.to_string()))?;
    file.write(status_path(&opts.state_dir), body, force)?;
    if let Some(hook) = &opts.on_status {
        hook(status);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_at_parses_positions_and_times() {
        assert_eq!("pg:0/16B3748".parse::<StopAt>().unwrap(), StopAt::Position("pg:0/16B3748".parse().unwrap()));
        assert!(matches!("2026-11-26T12:00:00Z".parse::<StopAt>().unwrap(), StopAt::Time(_)));
        assert!(matches!("2026-11-26 12:00:00".parse::<StopAt>().unwrap(), StopAt::Time(_)));
        assert!("tomorrow".parse::<StopAt>().is_err());
    }


    /// A fake source and a fake destination sharing one world, for the
    /// loop's own logic: ordering, acknowledgement, resume and retry. The
    /// real engines have their own tests against real servers.
    mod fakes {
        use std::sync::Mutex;

        use super::*;
        use crate::model::{Change, Op, Value};

        #[derive(Default)]
        pub struct World {
            /// What the destination holds, in the order it was applied.
            pub applied: Vec<i64>,
            /// The position stored with the data (a database target's
            /// `barge_cdc_state` row).
            pub committed: Option<Position>,
            /// Every acknowledgement the source received.
            pub acks: Vec<Position>,
            /// Acknowledgements of a position the destination did not hold yet.
            pub early_acks: Vec<Position>,
            /// Where the source was opened.
            pub opened_at: Vec<Position>,
            /// Applies still to fail: (commit the batch anyway, error).
            pub failures: Vec<(bool, &'static str)>,
        }

        pub type Shared = Arc<Mutex<World>>;

        pub fn table() -> (QualifiedName, TableInfo) {
            let name = QualifiedName::new(Some("public"), "t");
            let mut source = Table::new(name.clone());
            source.columns.push(crate::model::Column::new("id", crate::model::ColumnType::Int { bits: 64, unsigned: false }, "bigint"));
            let target = crate::schema::target::TargetTable::named(name.clone(), vec!["public".into(), "t".into()]);
            (name.clone(), TableInfo { source, target, key: vec![0], filter: None })
        }

        /// Transactions of one insert each, at SQLite positions 1..=n.
        pub fn script(n: i64) -> Vec<SourceEvent> {
            let (name, _) = table();
            (1..=n)
                .map(|i| {
                    let position = Position::SqliteSeq { seq: i };
                    let change = Change { table: name.clone(), op: Op::Insert { row: vec![Value::Int(i)] }, txid: None, commit_time: None, position: position.clone() };
                    SourceEvent::Transaction(Transaction { changes: vec![change], position, commit_time: None, bytes: 8, partial: false })
                })
                .collect()
        }

        /// Replays its whole script from the start whatever position it is
        /// opened at (as a source may resend after a reconnect), then ends
        /// or waits.
        pub struct FakeSource {
            pub world: Shared,
            pub events: std::collections::VecDeque<SourceEvent>,
            pub ends: bool,
        }

        impl ChangeSource for FakeSource {
            fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
                Box::pin(async move {
                    match self.events.pop_front() {
                        Some(e) => Ok(Some(e)),
                        None if self.ends => Ok(None),
                        None => futures::future::pending().await,
                    }
                })
            }

            fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
                let mut w = self.world.lock().unwrap();
                if w.committed.as_ref().is_none_or(|c| position > c) {
                    w.early_acks.push(position.clone());
                }
                w.acks.push(position.clone());
                Box::pin(async { Ok(()) })
            }

            fn next_is_cancel_safe(&self) -> bool {
                true
            }
        }

        /// A transactional destination: the rows and the position commit together.
        pub struct FakeDestination {
            pub world: Shared,
        }

        impl Destination for FakeDestination {
            fn capabilities(&self) -> crate::sink::Capabilities {
                // No tables of its own to create or check: the loop only applies changes.
                crate::sink::Capabilities { transactions: true, keyed_upsert: true, ordered: true, ..Default::default() }
            }

            fn write_rows<'a>(&'a mut self, _table: &'a crate::sink::RowTable, _rows: tokio::sync::mpsc::Receiver<crate::model::RowBatch>, _policy: &'a crate::transfer::RowPolicy, _progress: &'a Arc<dyn crate::progress::Task>) -> BoxFuture<'a, Result<u64>> {
                Box::pin(async { Err(Error::other("the fake destination takes changes only")) })
            }

            fn write_changes<'a>(&'a mut self, _tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
                let mut w = self.world.lock().unwrap();
                let failure = (!w.failures.is_empty()).then(|| w.failures.remove(0));
                if failure.is_none_or(|(commits, _)| commits) {
                    for c in &batch.changes {
                        if let Op::Insert { row } = &c.op {
                            let Value::Int(i) = row[0] else { unreachable!() };
                            w.applied.push(i);
                        }
                    }
                    if batch.position.is_some() {
                        w.committed = batch.position.clone();
                    }
                }
                let r = match failure {
                    // A lost connection is retriable, as the drivers mark it.
                    Some((_, message)) => Err(Error::Endpoint { endpoint: "fake://target".into(), message: message.into(), hint: None }.retriable_if(message.starts_with("connection"))),
                    None => Ok(()),
                };
                Box::pin(async move { r })
            }

            fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
                let c = self.world.lock().unwrap().committed.clone();
                Box::pin(async move { Ok(c) })
            }
        }

        pub struct FakeEnds {
            pub world: Shared,
            pub script: Vec<SourceEvent>,
            pub ends: bool,
        }

        impl Ends for FakeEnds {
            fn source<'a>(&'a self, _capture: &'a Capture, from: &'a Position, _tables: Arc<Tables>, _copied: HashMap<QualifiedName, Position>) -> BoxFuture<'a, Result<Box<dyn ChangeSource>>> {
                self.world.lock().unwrap().opened_at.push(from.clone());
                let s = FakeSource { world: self.world.clone(), events: self.script.iter().cloned().collect(), ends: self.ends };
                Box::pin(async move { Ok(Box::new(s) as Box<dyn ChangeSource>) })
            }

            fn destination(&self) -> BoxFuture<'_, Result<Box<dyn Destination>>> {
                let d = FakeDestination { world: self.world.clone() };
                Box::pin(async move { Ok(Box::new(d) as Box<dyn Destination>) })
            }
        }

        pub fn options(state_dir: &std::path::Path, stop_at: Option<StopAt>) -> CdcOptions {
            CdcOptions {
                task: "fake".into(),
                capture: Capture { position: Position::SqliteSeq { seq: 0 }, slot: None, publication: None, replica_identity: Vec::new(), records: None },
                start: Position::SqliteSeq { seq: 0 },
                stop_at,
                state_dir: state_dir.to_path_buf(),
                policy: RowPolicy {
                    on_error: crate::transfer::OnError::Stop,
                    zero_dates: crate::transfer::ZeroDates::Null,
                    rejects: crate::transfer::Rejects::new(state_dir.join("rejects.jsonl")),
                    counters: Default::default(),
                },
                batch_changes: 2,
                heartbeat: Duration::ZERO,
                poll_interval: Duration::from_millis(10),
                on_status: None,
                sink: None,
                stream_timeout: Duration::from_secs(5),
                reconnect_timeout: Duration::from_secs(10),
                fence: None,
                converter: crate::cdc::evolve::Converter {
                    convert: crate::schema::convert::ConvertOptions {
                        source: crate::model::Dialect::Sqlite,
                        target: crate::model::Dialect::Sqlite,
                        rules: Default::default(),
                        naming: Default::default(),
                    },
                    mapping: Default::default(),
                },
                reload: Vec::new(),
                sql: None,
            }
        }

        /// One run of the loop between the fakes.
        pub async fn run(world: &Shared, script: Vec<SourceEvent>, ends: bool, stop_at: Option<StopAt>) -> Result<CdcReport> {
            let dir = tempfile::tempdir().unwrap();
            let opts = options(dir.path(), stop_at);
            let ep = Endpoint::parse("sqlite:fake-source.db").unwrap();
            let fakes = FakeEnds { world: world.clone(), script, ends };
            let tables: Tables = [table()].into_iter().collect();
            run_between(&ep, &ep, tables, &opts, &fakes, Default::default()).await
        }
    }

    use fakes::{run as run_fakes, script, World};

    #[tokio::test]
    async fn the_reader_waits_while_what_it_read_ahead_fills_the_byte_budget() {
        let ahead = Arc::new(AheadBytes::default());
        // One transaction alone always goes, however large.
        ahead.reserve(READ_AHEAD_BYTES + 1).await;
        let a = ahead.clone();
        let waiting = tokio::spawn(async move { a.reserve(1).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the reader went on past the budget");
        let t = Transaction { changes: Vec::new(), position: Position::SqliteSeq { seq: 1 }, commit_time: None, bytes: READ_AHEAD_BYTES + 1, partial: false };
        ahead.release(&Some(FromSource::Event(SourceEvent::Transaction(t))));
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the reader went on once the apply took the transaction").unwrap();
    }

    #[tokio::test]
    async fn changes_apply_once_in_source_order_and_the_source_hears_only_what_is_committed() {
        let world = Arc::new(std::sync::Mutex::new(World::default()));
        run_fakes(&world, script(7), true, None).await.unwrap();
        let w = world.lock().unwrap();
        assert_eq!(w.applied, (1..=7).collect::<Vec<_>>());
        assert_eq!(w.committed, Some(Position::SqliteSeq { seq: 7 }));
        assert!(w.early_acks.is_empty(), "acknowledged before the destination held it: {:?}", w.early_acks);
        // The end of a bounded source still hands it its last acknowledgement.
        assert_eq!(w.acks.last(), Some(&Position::SqliteSeq { seq: 7 }), "{:?}", w.acks);
        assert!(w.acks.windows(2).all(|p| p[0] < p[1]), "acknowledgements go forward: {:?}", w.acks);
    }

    #[tokio::test]
    async fn a_second_run_resumes_after_what_the_destination_committed() {
        let world = Arc::new(std::sync::Mutex::new(World::default()));
        run_fakes(&world, script(6), false, Some(StopAt::Position(Position::SqliteSeq { seq: 3 }))).await.unwrap();
        assert_eq!(world.lock().unwrap().applied, vec![1, 2, 3]);
        // The source replays from the start: the loop skips what is held.
        run_fakes(&world, script(6), true, None).await.unwrap();
        let w = world.lock().unwrap();
        assert_eq!(w.opened_at, vec![Position::SqliteSeq { seq: 0 }, Position::SqliteSeq { seq: 3 }]);
        assert_eq!(w.applied, (1..=6).collect::<Vec<_>>(), "every change once, in order");
        assert!(w.early_acks.is_empty(), "{:?}", w.early_acks);
    }

    #[tokio::test]
    async fn a_failing_destination_is_retried_and_a_batch_that_committed_is_not_applied_twice() {
        let world = Arc::new(std::sync::Mutex::new(World::default()));
        // Lost before the commit, then lost after it (the reply never came).
        world.lock().unwrap().failures = vec![(false, "connection reset by peer"), (true, "connection closed")];
        let report = run_fakes(&world, script(5), true, None).await.unwrap();
        let w = world.lock().unwrap();
        assert_eq!(w.applied, (1..=5).collect::<Vec<_>>());
        assert_eq!(report.status.retries, 2);
        assert!(w.early_acks.is_empty(), "{:?}", w.early_acks);
    }

    #[tokio::test]
    async fn a_refusing_destination_stops_the_run_without_moving_the_source() {
        let world = Arc::new(std::sync::Mutex::new(World::default()));
        world.lock().unwrap().failures = vec![(false, "duplicate key value violates unique constraint")];
        let Err(e) = run_fakes(&world, script(3), true, None).await else { panic!("the run went on past a refused batch") };
        assert!(e.to_string().contains("duplicate key"), "{e}");
        let w = world.lock().unwrap();
        assert!(w.applied.is_empty() && w.committed.is_none());
        assert!(w.acks.is_empty(), "the source moved past a refused batch: {:?}", w.acks);
    }

}
