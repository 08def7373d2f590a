//! Measuring a database for `barge advise`: how much a pack (or a
//! migrate) of it would move, and how fast its rows come out.
//!
//! - Size and rows come from the catalog ([`crate::source::Source::estimate`], the figures a pack
//!   plans with), not from reading the tables: reading a large database to
//!   size it would take as long as moving it. The size is the tables
//!   without their indexes (a pack carries rows; indexes are rebuilt at the
//!   target); index sizes are reported beside it. SQLite without `dbstat`
//!   falls back to the whole file (`page_count × page_size`).
//! - The read rate is measured, not assumed: a bounded sample of rows is
//!   read with the pack's own reader (the same SELECT or COPY, in the same
//!   read-only snapshot session) and encoded with the pack's row encoding,
//!   on a reader task and the caller's thread as a pack overlaps them. The
//!   rate is bytes of encoded rows per second, so it includes decoding and
//!   encoding, which on a fast server are what bounds a pack.
//! - The sample comes from the largest tables (the ones that decide the
//!   time), a share of the row and time budget each, and is kept so the
//!   caller can compress it the way it compresses a directory sample.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::mapping::Mapping;
use super::pack_source::{limited, read_job};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::pack::rows;
use crate::source::{self, Estimate};
use crate::transfer::{Batch, CHANNEL_DEPTH};

/// Bounds of the read sample: whichever is reached first.
const SAMPLE_SECS: f64 = 2.0;
const SAMPLE_ROWS: u64 = 200_000;
const SAMPLE_BYTES: usize = 64 << 20;
/// The largest tables sampled.
const SAMPLE_TABLES: usize = 8;

#[derive(Debug, Serialize)]
pub struct DbMeasured {
    pub tables: u64,
    /// Rows the catalog estimates (SQLite: counted).
    pub rows: u64,
    /// The tables' data without indexes: what [`DbMeasured::size_from`] says.
    pub bytes: u64,
    /// Their indexes, not moved by a pack; None where the catalog has no figure.
    pub index_bytes: Option<u64>,
    /// Where `bytes` came from.
    pub size_from: String,
    /// Selected tables the catalog has no statistics for (0 rows but pages):
    /// their row counts are missing until ANALYZE.
    pub unanalyzed_tables: u64,
    pub sample_tables: u64,
    pub sample_rows: u64,
    /// Encoded bytes of the sample (the pack's row encoding).
    pub sample_bytes: u64,
    pub sample_secs: f64,
    /// Encoded bytes per second read by one connection, as a pack reads.
    pub read_rate: f64,
    pub read_rows_per_sec: f64,
    #[serde(skip)]
    pub sample: Vec<u8>,
}

impl DbMeasured {
    /// The source read rate in the units of [`DbMeasured::bytes`]: the
    /// sampled rows per second times the catalog's bytes per row, so that
    /// `bytes / rate` is the time to read every row. (Encoded rows are
    /// smaller than stored ones, which carry page and tuple overhead;
    /// dividing catalog bytes by an encoded-bytes rate would understate the
    /// time.) The encoded rate where the catalog has no row count.
    pub fn source_read(&self) -> f64 {
        if self.rows > 0 && self.bytes > 0 && self.sample_rows > 0 {
            self.read_rows_per_sec * self.bytes as f64 / self.rows as f64
        } else {
            self.read_rate
        }
    }
}

/// Connects to `endpoint` (read-only use), sizes the tables `mapping`
/// selects from the catalog and reads a bounded sample of their rows.
pub fn measure(endpoint: &Endpoint, mapping: &Mapping) -> Result<DbMeasured> {
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
    rt.block_on(measure_async(endpoint, mapping))
}

async fn measure_async(endpoint: &Endpoint, mapping: &Mapping) -> Result<DbMeasured> {
    let mut conn = source::open(endpoint).await?;
    let full = conn.discover().await?;
    let schema = mapping.select_some(&full, endpoint)?;
    let dialect = conn.dialect();
    let mut sized: Vec<(Estimate, &crate::model::Table)> = Vec::new();
    for t in &schema.tables {
        sized.push((conn.estimate(t).await?, t));
    }
    let mut m = DbMeasured {
        tables: sized.len() as u64,
        rows: sized.iter().map(|(e, _)| e.rows).sum(),
        bytes: sized.iter().map(|(e, _)| e.bytes).sum(),
        index_bytes: sized.iter().map(|(e, _)| e.index_bytes).sum(),
        size_from: conn.estimated_from().to_string(),
        unanalyzed_tables: sized.iter().filter(|(e, _)| e.rows == 0 && e.bytes > 0 && !e.rows_counted).count() as u64,
        sample_tables: 0,
        sample_rows: 0,
        sample_bytes: 0,
        sample_secs: 0.0,
        read_rate: 0.0,
        read_rows_per_sec: 0.0,
        sample: Vec::new(),
    };
    if m.bytes == 0 {
        // No per-table figure (SQLite without dbstat): the whole database's.
        if let Some((bytes, from)) = conn.whole_size().await? {
            m.bytes = bytes;
            m.size_from = from.into();
        }
    }

    // Largest first: they decide how long the move takes.
    sized.sort_by_key(|(e, t)| (std::cmp::Reverse((e.bytes, e.rows)), t.name.to_string()));
    let picked: Vec<_> = sized.iter().take(SAMPLE_TABLES).map(|(_, t)| *t).collect();
    let n = picked.len().max(1) as u64;
    conn.begin_snapshot(None).await?;
    let start = Instant::now();
    let mut conn = Some(conn);
    for (i, t) in picked.iter().enumerate() {
        if start.elapsed().as_secs_f64() >= SAMPLE_SECS || m.sample_rows >= SAMPLE_ROWS || m.sample.len() >= SAMPLE_BYTES {
            break;
        }
        // Later tables inherit what earlier ones left of the budget.
        let deadline = start + Duration::from_secs_f64(SAMPLE_SECS * (i + 1) as f64 / n as f64);
        let rows_left = (SAMPLE_ROWS * (i as u64 + 1) / n).saturating_sub(m.sample_rows).max(1);
        let job = limited(read_job(dialect, &schema, t), rows_left);
        let name = job.name.clone();
        let (tx, mut rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
        let mut c = conn.take().expect("returned by the previous table's reader");
        let reader = tokio::spawn(async move {
            let r = c.read(&job, tx).await;
            (c, r)
        });
        m.sample_tables += 1;
        loop {
            let batch = match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => break,
            };
            if !batch.rows.is_empty() {
                rows::encode_block(&batch.rows, &mut m.sample);
                m.sample_rows += batch.rows.len() as u64;
            }
            if m.sample.len() >= SAMPLE_BYTES {
                break;
            }
        }
        // A reader cut short sees the closed channel and returns.
        drop(rx);
        let (c, r) = reader.await.map_err(|e| Error::other(format!("the sample reader of {endpoint} stopped: {e}")))?;
        r.map_err(|e| match e.hint() {
            Some(_) => e,
            None => e.with_hint(format!("advise reads a sample of {name} the way barge pack reads it: a pack would fail the same way")),
        })?;
        conn = Some(c);
    }
    m.sample_secs = start.elapsed().as_secs_f64().max(1e-6);
    m.sample_bytes = m.sample.len() as u64;
    m.read_rate = m.sample_bytes as f64 / m.sample_secs;
    m.read_rows_per_sec = m.sample_rows as f64 / m.sample_secs;
    if let Some(mut c) = conn {
        let _ = c.finish().await;
    }
    Ok(m)
}
