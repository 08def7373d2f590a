//! The replication loop: read committed source transactions, apply them to
//! the destination in batches, and only then let the source release them.
//!
//! - Batching: whatever has arrived while the previous batch was being
//!   applied goes into the next one (up to a size), so an idle stream
//!   applies each transaction at once and a busy one amortizes commits.
//! - Exactly once: the destination stores the position with the data; on
//!   start the loop resumes from it and skips anything at or before it.
//! - Failures: a lost connection to either side is retried with
//!   exponential backoff and jitter; other errors stop the run with the
//!   table and reason.
//! - Ctrl-C stops after the batch in flight.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cdc::apply::DbDestination;
use crate::cdc::source::{ChangeSource, SourceEvent, Transaction};
use crate::cdc::{Capture, ChangeBatch, Destination, Position, Tables};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::QualifiedName;
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
    /// Print a JSON status line every second on stdout.
    pub json_progress: bool,
    /// Files and streams: how to write them (None: a database target).
    pub sink: Option<crate::sink::SinkOptions>,
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
    pub updated_at: String,
    pub stopped: Option<String>,
    pub tables: BTreeMap<String, TableStatus>,
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

fn is_transient(e: &Error) -> bool {
    let t = e.to_string().to_ascii_lowercase();
    [
        "connection", "closed", "reset", "refused", "broken pipe", "terminating", "shutting down", "shutdown", "timed out", "timeout", "eof", "gone away", "lost", "cannot connect",
        "starting up", "not yet accepting", "i/o error", "io error", "is active for pid", "recovery",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Exponential backoff with jitter, capped at 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(7)).min(30_000);
    let jitter = rand_u64() % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b)
}

/// Opens the change source at `from`.
async fn open_source(src: &Endpoint, capture: &Capture, from: &Position, tables: Arc<Tables>, poll: Duration) -> Result<Box<dyn ChangeSource>> {
    match (src, from) {
        (Endpoint::Postgres(ep), Position::PgLsn { lsn }) => {
            let slot = capture.slot.as_deref().ok_or_else(|| Error::usage("no replication slot is known for this task; give --slot"))?;
            let publication = capture.publication.as_deref().unwrap_or(slot);
            Ok(Box::new(crate::cdc::postgres::PgSource::open(ep, slot, publication, *lsn, tables).await?))
        }
        (Endpoint::Mysql(ep), Position::MysqlBinlog { file, pos }) => Ok(Box::new(crate::cdc::mysql::MysqlSource::open(ep, file, *pos, tables).await?)),
        (Endpoint::Sqlite(ep), Position::SqliteSeq { seq }) => Ok(Box::new(crate::cdc::sqlite::SqliteSource::open(ep, *seq, tables, poll).await?)),
        (_, p) => Err(Error::usage(format!("position {p} does not belong to a {:?} source", src.kind()))),
    }
}

/// Runs the source in its own task: it reads ahead while a batch is being
/// applied, and takes acknowledgements between reads.
fn spawn_source(mut source: Box<dyn ChangeSource>, tx: mpsc::Sender<FromSource>, mut acks: mpsc::UnboundedReceiver<Position>) -> tokio::task::JoinHandle<()> {
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
            let end = !matches!(ev, FromSource::Event(_));
            if tx.send(ev).await.is_err() || end {
                return;
            }
        }
    })
}

pub struct CdcReport {
    pub status: Status,
    pub interrupted: bool,
}

/// How long a batch waits for the next source transaction while catching
/// up, and for all of them together (see the batching in [`run`]).
const LINGER_GAP: Duration = Duration::from_millis(2);
const LINGER_MAX: Duration = Duration::from_millis(20);

/// Replicates from `src` to `dst` until stopped.
pub async fn run(src: &Endpoint, dst: &Endpoint, tables: Tables, opts: CdcOptions) -> Result<CdcReport> {
    let mut tables = Arc::new(tables);
    let sink_stats = Arc::new(crate::sink::SinkStats::default());
    let mut dest = open_destination(dst, &opts, &sink_stats).await?;
    let buffered = dest.buffers();
    let mut applied = dest.committed().await?;
    // What the source has been told it may release.
    let mut acked = applied.clone();
    let start = applied.clone().unwrap_or_else(|| opts.start.clone());
    if applied.is_some() {
        let place = if buffered { "in the state directory" } else { "on the target" };
        crate::output::info(format!("resuming change capture from {start} (saved {place})"));
    } else {
        crate::output::info(format!("change capture from {start}"));
    }
    for (name, info) in tables.iter() {
        if info.key.is_empty() {
            crate::output::warn(format!("{name} has no primary key: its changes are matched on all columns, one at a time"));
        }
    }

    let mut status = Status { source: src.to_string(), target: dst.to_string(), position: Some(start.to_string()), ..Default::default() };
    for name in tables.keys() {
        status.tables.insert(name.to_string(), TableStatus { state: "catching up".into(), ..Default::default() });
    }
    let heartbeat = match src {
        Endpoint::Postgres(ep) if !opts.heartbeat.is_zero() => Some(tokio::spawn(crate::cdc::postgres::heartbeat(ep.clone(), opts.heartbeat))),
        _ => None,
    };

    let mut source_attempt = 0u32;
    let (mut rx, mut ack_tx, mut reader) = loop {
        match open_source(src, &opts.capture, &start, tables.clone(), opts.poll_interval).await {
            Ok(s) => {
                let (tx, rx) = mpsc::channel::<FromSource>(1024);
                let (ack_tx, ack_rx) = mpsc::unbounded_channel();
                break (rx, ack_tx, spawn_source(s, tx, ack_rx));
            }
            Err(e) if is_transient(&e) && source_attempt < 12 => {
                crate::output::warn(format!("{e}; retrying"));
                tokio::time::sleep(backoff(source_attempt)).await;
                source_attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };

    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = false;
    let mut rates = RateWindow::default();
    let mut last_status = Instant::now() - Duration::from_secs(10);
    let mut lag_bytes: Option<u64> = None;
    let mut stopped_tables: BTreeMap<QualifiedName, String> = BTreeMap::new();
    let mut ended = false;
    let mut stats = BatchStats::new();

    'outer: loop {
        // Wait for the first event, then take what else is ready.
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = &mut interrupt => { interrupted = true; break 'outer; }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if buffered {
                    settle(&mut dest, &mut acked, &ack_tx).await?;
                }
                write_status(&opts, &mut status, &mut rates, lag_bytes, &mut last_status, &stopped_tables, true)?;
                if let Some(StopAt::Time(t)) = &opts.stop_at {
                    if Utc::now() >= *t { break 'outer; }
                }
                continue;
            }
        };
        let mut messages = vec![first];
        let mut size = 0usize;
        let take = |m: FromSource, size: &mut usize, messages: &mut Vec<Option<FromSource>>| {
            if let FromSource::Event(SourceEvent::Transaction(t)) = &m {
                *size += t.changes.len();
            }
            messages.push(Some(m));
        };
        while size < opts.batch_changes {
            match rx.try_recv() {
                Ok(m) => take(m, &mut size, &mut messages),
                Err(_) => break,
            }
        }
        // More than one message waiting means the source is ahead: keep
        // taking what arrives close behind (gaps under LINGER_GAP, for at
        // most LINGER_MAX), so one target transaction carries many source
        // ones. A lone change, the live case, goes at once.
        if messages.len() > 1 {
            let until = Instant::now() + LINGER_MAX;
            while size < opts.batch_changes {
                let gap = (Instant::now() + LINGER_GAP).min(until);
                match tokio::time::timeout_at(gap.into(), rx.recv()).await {
                    Ok(Some(m @ (FromSource::Failed(_) | FromSource::Ended))) => {
                        messages.push(Some(m));
                        break;
                    }
                    Ok(Some(m)) => take(m, &mut size, &mut messages),
                    Ok(None) => {
                        messages.push(None);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }

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
                    if applied.as_ref().is_some_and(|a| t.position <= *a) {
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
                    txns.push(t);
                }
                Some(FromSource::Event(SourceEvent::Idle { position, lag_bytes: lb })) => {
                    if lb.is_some() {
                        lag_bytes = lb;
                    }
                    idle = Some(position);
                }
                Some(FromSource::Event(SourceEvent::SchemaChanged { table, message })) => {
                    crate::output::warn(format!("{table}: {message}; its changes are no longer applied (reload it with a full load)"));
                    stopped_tables.insert(table.clone(), message.clone());
                    let mut t = (*tables).clone();
                    t.remove(&table);
                    tables = Arc::new(t);
                    if let Some(s) = status.tables.get_mut(&table.to_string()) {
                        s.state = format!("stopped: {message}");
                    }
                }
            }
        }

        if !txns.is_empty() {
            let batch = batch_of(&txns, &tables)?;
            let apply_started = Instant::now();
            let mut attempt = 0u32;
            loop {
                match dest.apply(&tables, &batch).await {
                    Ok(()) => break,
                    Err(e) if is_transient(&e) && attempt < 20 => {
                        status.retries += 1;
                        crate::output::warn(format!("applying failed ({e}); retrying"));
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                        // The connection may be gone: open a new one, and
                        // find out whether the batch committed after all.
                        match open_destination(dst, &opts, &sink_stats).await {
                            Ok(d) => dest = d,
                            Err(e2) if is_transient(&e2) => continue,
                            Err(e2) => return Err(e2),
                        }
                        if let Some(saved) = dest.committed().await.ok().flatten() {
                            if batch.position.as_ref().is_some_and(|p| *p <= saved) {
                                break;
                            }
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            stats.batches += 1;
            stats.changes += batch.changes.len() as u64;
            stats.apply += apply_started.elapsed();
            if stats.since.elapsed() >= Duration::from_secs(5) {
                crate::output::verbose(format!(
                    "{} batches, {:.0} changes each, {:.1} ms to apply each, {:.0} changes/s, {} bytes behind",
                    stats.batches,
                    stats.changes as f64 / stats.batches as f64,
                    stats.apply.as_secs_f64() * 1000.0 / stats.batches as f64,
                    stats.changes as f64 / stats.since.elapsed().as_secs_f64(),
                    lag_bytes.map(|b| b.to_string()).unwrap_or_else(|| "?".into())
                ));
                stats = BatchStats::new();
            }
            let position = batch.position.clone().expect("a batch of transactions has a position");
            if buffered {
                settle(&mut dest, &mut acked, &ack_tx).await?;
            } else {
                let _ = ack_tx.send(position.clone());
                acked = Some(position.clone());
            }
            applied = Some(position.clone());
            status.position = Some(position.to_string());
            let now = Utc::now();
            for t in &txns {
                status.applied_transactions += 1;
                for c in &t.changes {
                    status.applied_changes += 1;
                    let ts = status.tables.entry(c.table.to_string()).or_default();
                    ts.changes += 1;
                    match c.op {
                        crate::model::Op::Insert { .. } => ts.inserts += 1,
                        crate::model::Op::Update { .. } => ts.updates += 1,
                        crate::model::Op::Delete { .. } => ts.deletes += 1,
                        crate::model::Op::Truncate => ts.truncates += 1,
                    }
                    if let Some(ct) = t.commit_time {
                        ts.lag_seconds = (now - ct).num_milliseconds().max(0) as f64 / 1000.0;
                    }
                    rates.add(&c.table.to_string(), 1);
                }
            }
            if let Some(ct) = txns.last().and_then(|t| t.commit_time) {
                status.lag_seconds = (now - ct).num_milliseconds().max(0) as f64 / 1000.0;
            }
        } else if let Some(p) = idle {
            // Nothing pending: the source may move on (past a sink's
            // buffers only once they are written).
            if buffered {
                settle(&mut dest, &mut acked, &ack_tx).await?;
            }
            let all_durable = !buffered || acked == applied;
            if all_durable && applied.as_ref().is_none_or(|a| p > *a) && acked.as_ref().is_none_or(|a| p > *a) {
                let _ = ack_tx.send(p.clone());
                acked = Some(p.clone());
            }
            status.lag_seconds = 0.0;
            for t in status.tables.values_mut() {
                t.lag_seconds = 0.0;
            }
            if let Some(StopAt::Position(stop)) = &opts.stop_at {
                if p >= *stop {
                    stop_after = true;
                }
            }
        }

        if let Some(e) = failure {
            if !is_transient(&e) {
                return Err(e);
            }
            // The source connection broke: reopen it after the last
            // applied position.
            crate::output::warn(format!("{e}; reconnecting to the source"));
            reader.abort();
            let from = applied.clone().unwrap_or_else(|| start.clone());
            let mut attempt = 0u32;
            loop {
                tokio::time::sleep(backoff(attempt)).await;
                match open_source(src, &opts.capture, &from, tables.clone(), opts.poll_interval).await {
                    Ok(s) => {
                        let (tx, r) = mpsc::channel::<FromSource>(1024);
                        let (a_tx, a_rx) = mpsc::unbounded_channel();
                        rx = r;
                        ack_tx = a_tx;
                        reader = spawn_source(s, tx, a_rx);
                        break;
                    }
                    // A sink retries by itself; its buffers hold changes
                    // not yet durable, so it is never reopened mid-run.
                    Err(e) if !buffered && is_transient(&e) && attempt < 30 => {
                        status.retries += 1;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        write_status(&opts, &mut status, &mut rates, lag_bytes, &mut last_status, &stopped_tables, false)?;
        if ended || stop_after {
            break;
        }
        if let Some(StopAt::Position(p)) = &opts.stop_at {
            if applied.as_ref().is_some_and(|a| a >= p) {
                break;
            }
        }
    }
    if buffered {
        // Stopping writes what the sink holds, so a rerun starts after it.
        dest.flush().await?;
        ack_durable(&mut dest, &mut acked, &ack_tx).await?;
        let s = &sink_stats;
        crate::output::verbose(format!(
            "sink: {} records, {} files, {} bytes, {} under errors/, {} throttled calls",
            crate::sink::SinkStats::get(&s.records),
            crate::sink::SinkStats::get(&s.files),
            crate::sink::SinkStats::get(&s.bytes),
            crate::sink::SinkStats::get(&s.errors),
            crate::sink::SinkStats::get(&s.throttled_calls)
        ));
    }
    reader.abort();
    if let Some(h) = heartbeat {
        h.abort();
    }
    status.stopped = Some(if interrupted { "interrupted".into() } else { "stopped".into() });
    last_status = Instant::now() - Duration::from_secs(10);
    write_status(&opts, &mut status, &mut rates, lag_bytes, &mut last_status, &stopped_tables, true)?;
    Ok(CdcReport { status, interrupted })
}

async fn open_destination(dst: &Endpoint, opts: &CdcOptions, stats: &Arc<crate::sink::SinkStats>) -> Result<Box<dyn Destination>> {
    match &opts.sink {
        None => {
            let policy = RowPolicy { on_error: opts.policy.on_error, zero_dates: opts.policy.zero_dates, rejects: opts.policy.rejects.clone(), counters: opts.policy.counters.clone() };
            Ok(Box::new(DbDestination::open(dst, &opts.task, policy).await?))
        }
        Some(sink) => {
            let inner = crate::sink::open(dst, sink, crate::sink::Scope::Cdc, stats.clone()).await?;
            Ok(Box::new(crate::sink::journal::Journaled::open(inner, &opts.state_dir)?))
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

fn batch_of(txns: &[Transaction], tables: &Tables) -> Result<ChangeBatch> {
    let mut changes = Vec::with_capacity(txns.iter().map(|t| t.changes.len()).sum());
    for c in txns.iter().flat_map(|t| &t.changes) {
        match tables.get(&c.table) {
            None => {}
            Some(info) => match &info.filter {
                None => changes.push(c.clone()),
                // The mapping's row filter: what the change becomes on a
                // target that holds only matching rows (maybe nothing).
                Some(f) => changes.extend(f.route(info, c)?),
            },
        }
    }
    Ok(ChangeBatch { changes, position: txns.last().map(|t| t.position.clone()) })
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

/// Writes the status file (at most once a second unless `force`), and the
/// `--json` progress line.
fn write_status(opts: &CdcOptions, status: &mut Status, rates: &mut RateWindow, lag_bytes: Option<u64>, last: &mut Instant, stopped: &BTreeMap<QualifiedName, String>, force: bool) -> Result<()> {
    if !force && last.elapsed() < Duration::from_secs(1) {
        return Ok(());
    }
    *last = Instant::now();
    let (total, per) = rates.rates();
    status.changes_per_second = total;
    status.lag_bytes = lag_bytes;
    status.updated_at = Utc::now().to_rfc3339();
    for (name, t) in status.tables.iter_mut() {
        t.changes_per_second = per.get(name).copied().unwrap_or(0.0);
        if stopped.keys().any(|k| k.to_string() == *name) {
            continue;
        }
        t.state = if t.lag_seconds > 5.0 || lag_bytes.is_some_and(|b| b > 16 << 20) { "catching up".into() } else { "live".into() };
    }
    let path = status_path(&opts.state_dir);
    let body = serde_json::to_vec_pretty(status).map_err(|e| Error::other(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, &body).and_then(|_| std::fs::rename(&tmp, &path)).map_err(|source| Error::Write { path: path.clone(), source })?;
    if opts.json_progress {
        println!("{}", serde_json::to_string(status).unwrap_or_default());
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

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(250));
        assert!(backoff(3) >= Duration::from_millis(1000));
        for a in 0..40 {
            assert!(backoff(a) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn transient_errors_are_told_apart() {
        assert!(is_transient(&Error::Endpoint { endpoint: "x".into(), message: "cannot connect: Connection refused".into(), hint: None }));
        assert!(!is_transient(&Error::Table { table: "t".into(), row: None, message: "duplicate key value violates unique constraint".into(), hint: None }));
    }
}
