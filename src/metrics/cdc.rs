//! Change data capture: changes per table and operation, the two latencies
//! DMS reports, batch histograms, table states.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::Role;
use crate::model::QualifiedName;
use crate::transfer::Counters;

pub const OPERATIONS: [&str; 4] = ["insert", "update", "delete", "truncate"];

#[derive(Debug, Default)]
pub struct TableChanges {
    pub name: String,
    pub received: [AtomicU64; 4],
    pub applied: [AtomicU64; 4],
}

/// A point in time the task is current to, as DMS measures latency: the
/// commit time of the last change read (source) or applied (target).
/// While the task has caught up (the source said it has nothing more and
/// everything is applied) the latency is 0, until the next change or a
/// lost connection.
#[derive(Debug, Default)]
pub struct Current {
    /// Microseconds since the epoch; 0: nothing yet.
    at_us: AtomicI64,
    caught_up: AtomicBool,
}

impl Current {
    fn set(&self, t: DateTime<Utc>) {
        self.at_us.store(t.timestamp_micros(), Ordering::Relaxed);
        self.caught_up.store(false, Ordering::Relaxed);
    }
    fn caught_up(&self) {
        self.at_us.store(Utc::now().timestamp_micros(), Ordering::Relaxed);
        self.caught_up.store(true, Ordering::Relaxed);
    }
    fn lost(&self) {
        self.caught_up.store(false, Ordering::Relaxed);
    }
    /// Seconds behind now.
    pub fn seconds(&self, now: DateTime<Utc>) -> f64 {
        let at = self.at_us.load(Ordering::Relaxed);
        if at == 0 || self.caught_up.load(Ordering::Relaxed) {
            return 0.0;
        }
        (now.timestamp_micros() - at).max(0) as f64 / 1e6
    }
}

#[derive(Debug)]
pub struct Cdc {
    pub tables: RwLock<HashMap<QualifiedName, Arc<TableChanges>>>,
    pub source: Current,
    pub target: Current,
    pub batch_changes: Histogram,
    pub apply_seconds: Histogram,
    pub transactions_read: AtomicU64,
    /// Per table: state (`live`, `catching up`, `stopped`) and lag, as of
    /// the last status (about once a second).
    pub states: Mutex<BTreeMap<String, (String, f64)>>,
    pub rejects: Mutex<Vec<Arc<Counters>>>,
    pub active: AtomicBool,
}

impl Default for Cdc {
    fn default() -> Self {
        Cdc {
            tables: RwLock::default(),
            source: Current::default(),
            target: Current::default(),
            // 1 to 262,144 changes.
            batch_changes: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            // 1 ms to 32 s.
            apply_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            transactions_read: AtomicU64::new(0),
            states: Mutex::default(),
            rejects: Mutex::default(),
            active: AtomicBool::new(false),
        }
    }
}

impl Cdc {
    fn table(&self, name: &QualifiedName) -> Arc<TableChanges> {
        if let Some(t) = self.tables.read().unwrap().get(name) {
            return t.clone();
        }
        self.tables.write().unwrap().entry(name.clone()).or_insert_with(|| Arc::new(TableChanges { name: name.to_string(), ..Default::default() })).clone()
    }

    pub fn read(&self, commit_time: Option<DateTime<Utc>>) {
        self.active.store(true, Ordering::Relaxed);
        self.transactions_read.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = commit_time {
            self.source.set(t);
        }
    }

    pub fn received(&self, table: &QualifiedName, ops: [u64; 4]) {
        let t = self.table(table);
        for (c, n) in t.received.iter().zip(ops) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn applied(&self, table: &QualifiedName, ops: [u64; 4]) {
        let t = self.table(table);
        for (c, n) in t.applied.iter().zip(ops) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn batch(&self, changes: usize, took: Duration, last_commit: Option<DateTime<Utc>>) {
        self.batch_changes.observe(changes as f64);
        self.apply_seconds.observe(took.as_secs_f64());
        if let Some(t) = last_commit {
            self.target.set(t);
        }
    }

    pub fn caught_up(&self) {
        self.active.store(true, Ordering::Relaxed);
        self.source.caught_up();
        self.target.caught_up();
    }

    pub(super) fn lost(&self, role: Role) {
        match role {
            Role::Source => {
                self.source.lost();
                self.target.lost();
            }
            Role::Target => self.target.lost(),
        }
    }

    pub fn status(&self, s: &crate::task::cdc::Status) {
        self.active.store(true, Ordering::Relaxed);
        let states = s
            .tables
            .iter()
            .map(|(name, t)| {
                // "stopped: <reason>" and "not running (was …)": the word, not the reason.
                let state = if t.state.starts_with("stopped") { "stopped" } else if t.state.starts_with("catching") { "catching_up" } else { "live" };
                (name.clone(), (state.to_string(), t.lag_seconds))
            })
            .collect();
        *self.states.lock().unwrap() = states;
    }

    pub fn rejects(&self, counters: &Arc<Counters>) {
        self.rejects.lock().unwrap().push(counters.clone());
    }
}
