//! Full load: rows and bytes per table, rejects, a sink's throttles. The
//! load counts these already; they are registered here once per table
//! and read at each scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::progress::Task;
use crate::sink::SinkStats;
use crate::transfer::Counters;

#[derive(Debug, Default)]
pub struct Load {
    pub tables: Mutex<Vec<LoadedTable>>,
    pub sinks: Mutex<Vec<Arc<SinkStats>>>,
}

#[derive(Debug)]
pub struct LoadedTable {
    pub name: String,
    /// Rows as the progress task counts them (live, also for a COPY that
    /// passes bytes through), when there is one.
    pub rows: Option<Arc<AtomicU64>>,
    pub counters: Arc<Counters>,
}

impl LoadedTable {
    pub fn rows(&self) -> u64 {
        let counted = self.counters.rows.load(Ordering::Relaxed);
        self.rows.as_ref().map_or(counted, |r| r.load(Ordering::Relaxed).max(counted))
    }
}

impl Load {
    pub fn table(&self, name: &str, counters: &Arc<Counters>, task: Arc<dyn Task>) -> Arc<dyn Task> {
        let rows = Arc::new(AtomicU64::new(0));
        self.tables.lock().unwrap().push(LoadedTable { name: name.to_string(), rows: Some(rows.clone()), counters: counters.clone() });
        Arc::new(Counted { rows, inner: task })
    }

    pub fn counters(&self, name: &str, counters: &Arc<Counters>) {
        self.tables.lock().unwrap().push(LoadedTable { name: name.to_string(), rows: None, counters: counters.clone() });
    }

    pub fn sink_stats(&self, stats: &Arc<SinkStats>) {
        self.sinks.lock().unwrap().push(stats.clone());
    }
}

/// A progress task that also counts into the metrics.
struct Counted {
    rows: Arc<AtomicU64>,
    inner: Arc<dyn Task>,
}

impl Task for Counted {
    fn inc(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
        self.inner.inc(n);
    }
    fn set_total(&self, total: u64) {
        self.inner.set_total(total)
    }
    fn set_message(&self, msg: &str) {
        self.inner.set_message(msg)
    }
    fn finish(&self, msg: &str) {
        self.inner.finish(msg)
    }
}
