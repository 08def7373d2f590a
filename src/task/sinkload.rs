//! The full load into object storage and streams. It shares the database
//! load's planning, chunking, parallelism and resumable state
//! ([`super::fullload`]); what differs is that there is no schema to create
//! and no index to build, and that rows go to a [`Destination`] as inserts
//! at the snapshot position, the same path CDC changes take.
//!
//! A chunk counts as done only once its sink has flushed: its files are
//! written or its records acknowledged. A chunk that was loading when a run
//! stopped is loaded again: object storage first deletes the files of its
//! earlier attempt (their names are fixed per chunk); streams deliver it
//! again, with the same record ids.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::fullload::{self, ChunkLoader, ChunkWork, Job, LoadOptions, LoadReport, Planned, SnapshotReaders};
use super::state::{Phase, TableState, TableStatus};
use crate::cdc::{Change, ChangeBatch, Op, TableInfo, Tables};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::model::{Column, Position, Table};
use crate::sink::{self, Scope, SinkOptions, SinkStats, SinkTable};
use crate::transfer::{Batch, Counters, Rejects, CHANNEL_DEPTH};

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
pub(crate) fn table_info(job: &Job) -> TableInfo {
    let mut source: Table = job.source.clone();
    source.columns = job
        .write
        .columns
        .iter()
        .zip(&job.read_types)
        .map(|(tc, ty)| {
            // A column a mapping rule adds has no source column: its name is its own.
            let name = if tc.source.starts_with('\u{0}') { &tc.name } else { &tc.source };
            let mut c = Column::new(name, ty.clone(), "");
            c.nullable = tc.nullable;
            c
        })
        .collect();
    let mut target = job.target.clone();
    target.columns = job.write.columns.clone();
    TableInfo { source, target, key: job.write.key.clone(), filter: None }
}

pub async fn run(src: &Endpoint, dst: &Endpoint, opts: LoadOptions, sink_opts: SinkOptions) -> Result<(LoadReport, SinkSummary)> {
    let started = Instant::now();
    let (store, mut state, resumed) = fullload::open_state(src, dst, &opts.state_dir)?;
    let Planned { schema, jobs, assessment, .. } = fullload::plan(src, dst, &opts).await?;
    if state.phase == Phase::Schema {
        for j in &jobs {
            state.tables.insert(j.key.clone(), TableState { status: TableStatus::Init, key: None, chunks: Vec::new(), error: None, estimated_rows: 0 });
        }
        state.phase = Phase::Load;
        store.save(&state)?;
    }
    let readers = fullload::begin_capture(src, &schema, &opts, &mut state, &store).await?;
    let tables: Arc<Tables> = Arc::new(jobs.iter().map(|j| (j.source.name.clone(), table_info(j))).collect());
    let stats = Arc::new(SinkStats::default());
    let rejects = Rejects::new(opts.state_dir.join("rejects.jsonl"));
    let mut counters: BTreeMap<String, Arc<Counters>> = BTreeMap::new();
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    if state.phase == Phase::Load {
        fullload::plan_chunks(src, &jobs, &mut state, opts.chunk_rows).await?;
        store.save(&state)?;
        let (t, s, so, r) = (tables.clone(), stats.clone(), sink_opts.clone(), readers.clone());
        let loader: ChunkLoader = Arc::new(move |w: ChunkWork| Box::pin(load_chunk(w, t.clone(), so.clone(), s.clone(), r.clone())));
        fullload::load(src, dst, &jobs, &mut state, &store, &opts, &rejects, &mut counters, &mut seconds, &loader).await?;
        for t in state.tables.values_mut() {
            if t.status == TableStatus::FinishedCopy {
                t.status = TableStatus::Ready;
            }
        }
        state.phase = Phase::Done;
        store.save(&state)?;
    }
    let run = fullload::RunInfo { started, resumed, assessment, rejects: &rejects };
    let report = fullload::load_report(&jobs, &state, &counters, &seconds, &[], &opts, run);
    Ok((report, SinkSummary::of(&stats)))
}

/// One chunk: source rows → inserts at the snapshot position → the sink,
/// flushed before the chunk counts as done.
async fn load_chunk(w: ChunkWork, tables: Arc<Tables>, opts: SinkOptions, stats: Arc<SinkStats>, readers: Arc<SnapshotReaders>) -> Result<u64> {
    let name = w.job.source.name.clone();
    if w.dirty {
        if let Some(info) = tables.get(&name) {
            sink::discard_chunk(&w.dst, &SinkTable::from_info(info, &opts.default_schema), w.chunk).await?;
        }
    }
    let mut dest = sink::open(&w.dst, &opts, Scope::Load { chunk: w.chunk }, stats).await?;
    let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let reader = fullload::read_chunk(&w.src, &w.job, w.range, tx, &readers);
    let writer = async {
        // Owned here, so a writer that fails drops it and the reader stops.
        let mut rx = rx;
        let mut total = 0u64;
        while let Some(batch) = rx.recv().await {
            let mut changes = Vec::with_capacity(batch.rows.len());
            for mut row in batch.rows {
                if let Err((col, why)) = w.policy.prepare(&mut row, &w.job.write.columns, false) {
                    crate::sink::postgres::reject(&w.job.write, &w.policy, row, col, why)?;
                    continue;
                }
                changes.push(Change { table: name.clone(), op: Op::Insert { row }, txid: None, commit_time: None, position: Position::Snapshot });
            }
            let n = changes.len() as u64;
            dest.apply(&tables, &ChangeBatch { changes, position: Some(Position::Snapshot) }).await?;
            total += n;
            w.policy.counters.add(n, batch.bytes as u64);
            w.task.inc(n);
        }
        dest.flush().await?;
        Ok::<u64, crate::error::Error>(total)
    };
    let (r, written) = tokio::join!(reader, writer);
    // The writer's error explains a reader that stopped early.
    let written = written?;
    r?;
    Ok(written)
}
