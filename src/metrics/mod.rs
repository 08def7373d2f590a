//! Prometheus metrics for a running task (`--metrics-addr`).
//!
//! The data-moving code records into one process-wide [`Metrics`] through
//! the free functions below: each is one call at its hook point, and does
//! nothing but an atomic load when no metrics were asked for. Recording is
//! atomics only (no lock per row or per change): what the load already
//! counts (`transfer::Counters`, `sink::SinkStats`) is registered once and
//! read when Prometheus scrapes. The names follow AWS DMS's CloudWatch
//! metrics where DMS has one (see the README's table).
//!
//! No terminal and no HTTP here: [`serve`] is the only module that speaks
//! HTTP, and only the commands start it.

mod cdc;
mod encode;
mod load;
mod pack;
pub mod serve;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::QualifiedName;
use crate::progress::Task;
use crate::transfer::Counters;

/// Which side of a task an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

/// Everything one task records. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    task: String,
    /// Redacted endpoint URLs (an endpoint's `Display`), the only form a
    /// label ever carries.
    source: String,
    target: String,
    retries: [AtomicU64; 2],
    cdc: cdc::Cdc,
    load: load::Load,
    pack: pack::Pack,
}

impl Metrics {
    /// `source` and `target` are displayed endpoints (already redacted);
    /// they label the per-endpoint metrics.
    pub fn new(task: &str, source: &crate::endpoint::Endpoint, target: &crate::endpoint::Endpoint) -> Metrics {
        Metrics::with_names(task, &source.to_string(), &target.to_string())
    }

    /// For tasks whose ends are not endpoints (a pack's directory and
    /// devices): the names are redacted here all the same.
    pub fn with_names(task: &str, source: &str, target: &str) -> Metrics {
        Metrics(Arc::new(Inner {
            task: task.to_string(),
            source: crate::endpoint::redact(source),
            target: crate::endpoint::redact(target),
            retries: Default::default(),
            cdc: cdc::Cdc::default(),
            load: load::Load::default(),
            pack: pack::Pack::default(),
        }))
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        encode::render(&self.0)
    }

    pub fn retry(&self, role: Role) {
        self.0.retries[role as usize].fetch_add(1, Ordering::Relaxed);
        self.0.cdc.lost(role);
    }

    pub fn cdc(&self) -> &cdc::Cdc {
        &self.0.cdc
    }
    pub fn load(&self) -> &load::Load {
        &self.0.load
    }
    pub fn pack(&self) -> &pack::Pack {
        &self.0.pack
    }
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// Makes `m` the metrics the hooks below record into (once per process;
/// a second call keeps the first).
pub fn install(m: Metrics) -> &'static Metrics {
    GLOBAL.get_or_init(|| m)
}

/// The installed metrics, if `--metrics-addr` asked for them.
#[inline]
pub fn get() -> Option<&'static Metrics> {
    GLOBAL.get()
}

// The hooks: one call each where the data moves.

/// A full load (or reload) started on `table`: its rows as the progress
/// task counts them, its bytes and rejects as `counters` does.
pub fn full_load_table(table: &str, counters: &Arc<Counters>, task: Arc<dyn Task>) -> Arc<dyn Task> {
    match get() {
        Some(m) => m.load().table(table, counters, task),
        None => task,
    }
}

/// Counters of a table loaded without a progress task (unpack).
pub fn table_counters(table: &str, counters: &Arc<Counters>) {
    if let Some(m) = get() {
        m.load().counters(table, counters);
    }
}

/// A sink's own counts (throttled calls, retried records).
pub fn sink_stats(stats: &Arc<crate::sink::SinkStats>) {
    if let Some(m) = get() {
        m.load().sink_stats(stats);
    }
}

/// A retry against one side (a reconnect, a batch applied again, a
/// throttled call sent again).
pub fn retry(role: Role) {
    if let Some(m) = get() {
        m.retry(role);
    }
}

/// A transaction read from the source, committed at `commit_time`.
#[inline]
pub fn cdc_read(commit_time: Option<DateTime<Utc>>) {
    if let Some(m) = get() {
        m.cdc().read(commit_time);
    }
}

/// Changes of one table handed to the target: inserts, updates, deletes, truncates.
pub fn cdc_received(table: &QualifiedName, ops: [u64; 4]) {
    if let Some(m) = get() {
        m.cdc().received(table, ops);
    }
}

/// Changes of one table the target applied.
pub fn cdc_applied(table: &QualifiedName, ops: [u64; 4]) {
    if let Some(m) = get() {
        m.cdc().applied(table, ops);
    }
}

/// One batch applied: its size, how long it took, and the commit time of
/// its last transaction.
pub fn cdc_batch(changes: usize, took: Duration, last_commit: Option<DateTime<Utc>>) {
    if let Some(m) = get() {
        m.cdc().batch(changes, took, last_commit);
    }
}

/// The source has nothing more to send just now, and all it sent is applied.
pub fn cdc_caught_up() {
    if let Some(m) = get() {
        m.cdc().caught_up();
    }
}

/// The status written about once a second: per-table states.
pub fn cdc_status(status: &crate::task::cdc::Status) {
    if let Some(m) = get() {
        m.cdc().status(status);
    }
}

/// Rejected changes (the CDC policy's counters).
pub fn cdc_rejects(counters: &Arc<Counters>) {
    if let Some(m) = get() {
        m.cdc().rejects(counters);
    }
}

/// A pack device in use: its number and the directory whose free space it reports.
pub fn pack_device(number: u32, dir: &std::path::Path) {
    if let Some(m) = get() {
        m.pack().device(number, dir);
    }
}

/// Bytes written to pack device `number`.
#[inline]
pub fn pack_written(number: u32, bytes: usize) {
    if let Some(m) = get() {
        m.pack().written(number, bytes as u64);
    }
}
