//! The scrape: what was recorded, in the Prometheus text format, encoded
//! by the official client library (`prometheus-client`). Counters get
//! their `_total` suffix from the encoder.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::cdc::OPERATIONS;
use super::Inner;
use crate::sink::SinkStats;

type Fmt = Result<(), std::fmt::Error>;

pub(super) fn render(inner: &Arc<Inner>) -> String {
    let mut registry = Registry::with_labels([(Cow::Borrowed("task"), Cow::Owned(inner.task.clone()))].into_iter());
    registry.register_collector(Box::new(Scrape(inner.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Scrape(Arc<Inner>);

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let m = &self.0;
        gauge(&mut e, "barge_info", "The task's endpoints (redacted URLs); always 1", [(vec![["source", m.source.as_str()], ["target", m.target.as_str()], ["version", env!("CARGO_PKG_VERSION")]], 1.0)])?;
        endpoints(m, &mut e)?;
        full_load(m, &mut e)?;
        cdc(m, &mut e)?;
        pack(m, &mut e)
    }
}

/// One family of counters, each with its labels (pairs of name and value).
fn counter<'a>(e: &mut DescriptorEncoder, name: &str, help: &str, rows: impl IntoIterator<Item = (Vec<[&'a str; 2]>, u64)>) -> Fmt {
    let mut f = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        let labels: Vec<(&str, &str)> = labels.iter().map(|[k, v]| (*k, *v)).collect();
        ConstCounter::new(v).encode(f.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<'a>(e: &mut DescriptorEncoder, name: &str, help: &str, rows: impl IntoIterator<Item = (Vec<[&'a str; 2]>, f64)>) -> Fmt {
    let mut f = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        let labels: Vec<(&str, &str)> = labels.iter().map(|[k, v]| (*k, *v)).collect();
        ConstGauge::new(v).encode(f.encode_family(&labels)?)?;
    }
    Ok(())
}

fn endpoints(m: &Inner, e: &mut DescriptorEncoder) -> Fmt {
    let sinks = m.load.sinks.lock().unwrap();
    let sum = |f: fn(&SinkStats) -> u64| sinks.iter().map(|s| f(s)).sum::<u64>();
    let throttled = sum(|s| SinkStats::get(&s.throttled_calls));
    let ends = [("source", &m.source, 0usize), ("target", &m.target, 1usize)];
    counter(e, "barge_endpoint_retries", "Retries against an endpoint: reconnects, batches applied again, calls sent again after a throttle", ends.iter().map(|(role, url, i)| (vec![["endpoint", url.as_str()], ["role", role]], m.retries[*i].load(Ordering::Relaxed))))?;
    counter(e, "barge_endpoint_throttles", "Calls an endpoint refused in whole or in part with a throttle (Kinesis, Kafka)", [(vec![["endpoint", m.target.as_str()], ["role", "target"]], throttled)])?;
    counter(e, "barge_endpoint_retried_records", "Records sent again after a throttle or a partial failure", [(vec![["endpoint", m.target.as_str()], ["role", "target"]], sum(|s| SinkStats::get(&s.retried_records)))])
}

fn full_load(m: &Inner, e: &mut DescriptorEncoder) -> Fmt {
    let tables = m.load.tables.lock().unwrap();
    if tables.is_empty() {
        return Ok(());
    }
    // A table may be registered more than once (a reload, a resumed chunk set).
    let mut per: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for t in tables.iter() {
        let p = per.entry(&t.name).or_default();
        p[0] += t.rows();
        p[1] += t.counters.bytes.load(Ordering::Relaxed);
        p[2] += t.counters.rejected.load(Ordering::Relaxed);
    }
    counter(e, "barge_full_load_rows", "Rows loaded into the target, per source table (DMS: FullLoadThroughputRowsTarget is its rate)", per.iter().map(|(t, v)| (vec![["table", *t]], v[0])))?;
    counter(e, "barge_full_load_bytes", "Bytes written to the target, per source table (DMS: FullLoadThroughputBandwidthTarget is its rate)", per.iter().map(|(t, v)| (vec![["table", *t]], v[1])))?;
    counter(e, "barge_rejected_rows", "Rows the target refused and --on-error set aside in rejects.jsonl, per source table", per.iter().map(|(t, v)| (vec![["table", *t]], v[2])))
}

fn cdc(m: &Inner, e: &mut DescriptorEncoder) -> Fmt {
    let c = &m.cdc;
    if !c.active.load(Ordering::Relaxed) {
        return Ok(());
    }
    let now = chrono::Utc::now();
    gauge(e, "barge_cdc_latency_source_seconds", "Seconds between now and the commit time of the last change read from the source; 0 while caught up (DMS: CDCLatencySource)", [(vec![], c.source.seconds(now))])?;
    gauge(e, "barge_cdc_latency_target_seconds", "Seconds between now and the commit time of the last change applied to the target; 0 while caught up (DMS: CDCLatencyTarget)", [(vec![], c.target.seconds(now))])?;
    let mut tables: Vec<_> = c.tables.read().unwrap().values().cloned().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let per_op = |which: fn(&super::cdc::TableChanges) -> &[std::sync::atomic::AtomicU64; 4]| {
        let mut rows = Vec::new();
        for t in &tables {
            for (i, op) in OPERATIONS.iter().enumerate() {
                rows.push((t.name.as_str(), *op, which(t)[i].load(Ordering::Relaxed)));
            }
        }
        rows
    };
    let received = per_op(|t| &t.received);
    let applied = per_op(|t| &t.applied);
    let incoming: u64 = received.iter().map(|r| r.2).sum::<u64>().saturating_sub(applied.iter().map(|r| r.2).sum());
    counter(e, "barge_cdc_changes_received", "Changes read from the source and handed to the target, per table and operation (DMS: CDCThroughputRowsSource is its rate)", received.iter().map(|(t, op, v)| (vec![["table", *t], ["operation", *op]], *v)))?;
    counter(e, "barge_cdc_changes_applied", "Changes the target applied, per table and operation (DMS: CDCThroughputRowsTarget is its rate)", applied.iter().map(|(t, op, v)| (vec![["table", *t], ["operation", *op]], *v)))?;
    gauge(e, "barge_cdc_incoming_changes", "Changes received and not yet applied (DMS: CDCIncomingChanges)", [(vec![], incoming as f64)])?;
    counter(e, "barge_cdc_transactions_read", "Source transactions read", [(vec![], c.transactions_read.load(Ordering::Relaxed))])?;
    let rejected: u64 = c.rejects.lock().unwrap().iter().map(|r| r.rejected.load(Ordering::Relaxed)).sum();
    counter(e, "barge_cdc_rejected_changes", "Changes the target refused and --on-error set aside in rejects.jsonl", [(vec![], rejected)])?;
    let states = c.states.lock().unwrap();
    gauge(e, "barge_cdc_table_state", "1 for each table's current state: live, catching_up or stopped (a schema change barge does not carry, a table dropped at the source)", states.iter().map(|(t, (s, _))| (vec![["table", t.as_str()], ["state", s.as_str()]], 1.0)))?;
    gauge(e, "barge_cdc_table_lag_seconds", "Per table: seconds between applying its last change and that change's commit, as of the last status (about once a second)", states.iter().map(|(t, (_, lag))| (vec![["table", t.as_str()]], *lag)))?;
    drop(states);
    c.batch_changes.encode(e.encode_descriptor("barge_cdc_batch_changes", "Changes per batch applied to the target", None, MetricType::Histogram)?)?;
    c.apply_seconds.encode(e.encode_descriptor("barge_cdc_apply_seconds", "Seconds to apply one batch to the target, commit included", None, MetricType::Histogram)?)
}

fn pack(m: &Inner, e: &mut DescriptorEncoder) -> Fmt {
    let devices = m.pack.devices.read().unwrap();
    if devices.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, String, u64, Option<u64>)> = devices
        .iter()
        .map(|d| (d.number.to_string(), d.dir.display().to_string(), d.written.load(Ordering::Relaxed), crate::pack::device::free_space(&d.dir).ok()))
        .collect();
    drop(devices);
    counter(e, "barge_pack_written_bytes", "Bytes written to a pack device (chunk files, encrypted)", rows.iter().map(|(n, dir, w, _)| (vec![["device", n.as_str()], ["dir", dir.as_str()]], *w)))?;
    gauge(e, "barge_pack_device_free_bytes", "Free bytes on a pack device's filesystem, for an unprivileged user", rows.iter().filter_map(|(n, dir, _, f)| f.map(|f| (vec![["device", n.as_str()], ["dir", dir.as_str()]], f as f64))))
}
