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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn sample() -> Metrics {
        // Endpoints refuse passwords in their URLs; names given as text
        // (a pack's source) may hold one, and are redacted all the same.
        let m = Metrics::with_names("migrate-0a1b2c", "postgres://app:Sup3rSecret@db.example:5432/shop?sslmode=require", "s3://bucket/prefix?aws_secret_access_key=AKIAsecretKEY&region=eu-west-1");
        let counters = Arc::new(Counters::default());
        counters.add(0, 4096);
        counters.rejected.store(2, Ordering::Relaxed);
        let task = m.load().table("public.orders", &counters, crate::progress::Progress::task(&crate::progress::Silent, "orders", None, crate::progress::Unit::Rows));
        task.inc(1000);
        let t = QualifiedName::new(Some("public"), "orders");
        m.cdc().read(Some(Utc::now() - chrono::Duration::seconds(3)));
        m.cdc().received(&t, [5, 3, 1, 0]);
        m.cdc().applied(&t, [5, 2, 1, 0]);
        m.cdc().batch(8, Duration::from_millis(12), Some(Utc::now() - chrono::Duration::seconds(2)));
        let mut status = crate::task::cdc::Status::default();
        status.tables.insert("public.orders".into(), crate::task::cdc::TableStatus { state: "live".into(), ..Default::default() });
        status.tables.insert("public.gone".into(), crate::task::cdc::TableStatus { state: "stopped: dropped at the source".into(), ..Default::default() });
        m.cdc().status(&status);
        m.retry(Role::Target);
        m
    }

    #[test]
    fn the_text_names_each_metric_with_its_labels() {
        let text = sample().render();
        for line in [
            r#"barge_full_load_rows_total{task="migrate-0a1b2c",table="public.orders"} 1000"#,
            r#"barge_full_load_bytes_total{task="migrate-0a1b2c",table="public.orders"} 4096"#,
            r#"barge_rejected_rows_total{task="migrate-0a1b2c",table="public.orders"} 2"#,
            r#"barge_cdc_changes_received_total{task="migrate-0a1b2c",table="public.orders",operation="update"} 3"#,
            r#"barge_cdc_changes_applied_total{task="migrate-0a1b2c",table="public.orders",operation="update"} 2"#,
            r#"barge_cdc_changes_applied_total{task="migrate-0a1b2c",table="public.orders",operation="insert"} 5"#,
            r#"barge_cdc_incoming_changes{task="migrate-0a1b2c"} 1.0"#,
            r#"barge_cdc_table_state{task="migrate-0a1b2c",table="public.gone",state="stopped"} 1.0"#,
            r#"barge_cdc_table_state{task="migrate-0a1b2c",table="public.orders",state="live"} 1.0"#,
            r#"barge_cdc_batch_changes_count{task="migrate-0a1b2c"} 1"#,
            r#"barge_cdc_apply_seconds_bucket{task="migrate-0a1b2c",le="0.016"} 1"#,
            "# TYPE barge_cdc_apply_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
        }
        // Latencies are measured at the scrape: now minus the commit times (3 s and 2 s ago).
        let value = |name: &str| -> f64 { text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).unwrap().parse().unwrap() };
        assert!((3.0..4.0).contains(&value("barge_cdc_latency_source_seconds{")), "{text}");
        assert!((2.0..3.0).contains(&value("barge_cdc_latency_target_seconds{")), "{text}");
        assert!(text.contains(r#"barge_endpoint_retries_total{task="migrate-0a1b2c",endpoint="s3://bucket/prefix?aws_secret_access_key=***&region=eu-west-1",role="target"} 1"#), "{text}");
        assert!(text.contains(r#"barge_info{task="migrate-0a1b2c",source="postgres://app:***@db.example:5432/shop?sslmode=require""#), "{text}");
    }

    #[test]
    fn no_label_carries_a_secret() {
        let text = sample().render();
        for secret in ["Sup3rSecret", "AKIAsecretKEY"] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
        let m = Metrics::with_names("pack", "mysql://root:hunter2@h/db", "/mnt/a,/mnt/b");
        assert!(!m.render().contains("hunter2"));
    }

    #[test]
    fn pack_devices_show_bytes_written_and_free_space() {
        let m = Metrics::with_names("pack", "/srv/data", "/mnt/a");
        let dir = tempfile::tempdir().unwrap();
        m.pack().device(1, dir.path());
        m.pack().written(1, 1 << 20);
        m.pack().written(7, 5);
        let text = m.render();
        let labels = format!(r#"task="pack",device="1",dir="{}""#, dir.path().display());
        assert!(text.contains(&format!("barge_pack_written_bytes_total{{{labels}}} 1048576\n")), "{text}");
        assert!(text.contains(&format!("barge_pack_device_free_bytes{{{labels}}} ")), "{text}");
        assert!(!text.contains(r#"device="7""#), "{text}");
    }

    #[test]
    fn caught_up_means_no_latency_until_the_next_change_or_a_lost_connection() {
        let m = sample();
        m.cdc().caught_up();
        let now = Utc::now();
        assert_eq!(m.cdc().source.seconds(now), 0.0);
        assert_eq!(m.cdc().target.seconds(now), 0.0);
        // The source is lost: the time since the task was last current counts again.
        m.retry(Role::Source);
        assert!(m.cdc().source.seconds(now + chrono::Duration::seconds(5)) >= 4.9);
        assert!(m.cdc().target.seconds(now + chrono::Duration::seconds(5)) >= 4.9);
    }
}
