//! `--sql` over a database's full load: a stage between a chunk's reader
//! and its destination that turns batches of input rows into batches of
//! output rows, under the load's row policy.
//!
//! - A row failing WHERE is dropped and counted (`filtered`).
//! - A row the query cannot evaluate (or one whose source value did not
//!   read as its column's type) goes to the rejects file with the reason
//!   under `--on-error log`, and counts as rejected; otherwise the chunk
//!   fails naming the table, the row's key and the column, which stops
//!   the run (or, with `--on-error skip-table`, the table).
//! - Windows hold every row of the table (the planner makes a windowed
//!   table one chunk, and a table's rows come in key order, not event
//!   time, so none is late) and are emitted when the rows end.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::expr::{to_text, Row};
use super::window::{Fed, WindowState};
use super::{RowError, SqlRun};
use crate::error::{Error, Result};
use crate::model::Value;
use crate::progress::Task;
use crate::transfer::{Batch, OnError, Rejected, RowPolicy, BATCH_ROWS, CHANNEL_DEPTH};

/// Puts the query between `input` (a reader's batches, input rows in the
/// input table's column order) and the returned receiver (output rows).
/// The task ends with the first error that stops the chunk; it ends Ok
/// when the receiver is dropped (the writer's own error says why).
pub fn stage(run: Arc<SqlRun>, mut input: mpsc::Receiver<Batch>, policy: RowPolicy, progress: Arc<dyn Task>) -> (mpsc::Receiver<Batch>, JoinHandle<Result<()>>) {
    let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let handle = tokio::spawn(async move {
        let mut s = Stage { run, policy, progress, windows: WindowState::default() };
        while let Some(batch) = input.recv().await {
            let out = s.map(batch)?;
            if !out.rows.is_empty() && tx.send(out).await.is_err() {
                return Ok(());
            }
        }
        for out in s.close()? {
            if tx.send(out).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    });
    (rx, handle)
}

struct Stage {
    run: Arc<SqlRun>,
    policy: RowPolicy,
    progress: Arc<dyn Task>,
    windows: WindowState,
}

impl Stage {
    fn map(&mut self, batch: Batch) -> Result<Batch> {
        let run = self.run.clone();
        let mut out = Vec::with_capacity(batch.rows.len());
        let mut bytes = 0;
        let mut dropped = 0u64;
        let mut bad = batch.bad.iter().peekable();
        for (i, row) in batch.rows.iter().enumerate() {
            // A source value that did not read as its column's type: the
            // query would see its text, not the value.
            let mut unread = None;
            while let Some(b) = bad.next_if(|b| b.row <= i) {
                if b.row == i && unread.is_none() {
                    unread = Some(RowError { column: run.input.source.columns.get(b.column).map(|c| c.name.clone()), reason: b.reason.clone() });
                }
            }
            if let Some(e) = unread {
                self.reject(row, e)?;
                dropped += 1;
                continue;
            }
            let values = Row::new(row);
            let passed = match run.plan.passes(&values) {
                Ok(p) => p,
                Err(e) => {
                    self.reject(row, e)?;
                    dropped += 1;
                    continue;
                }
            };
            if !passed {
                self.policy.counters.filtered.fetch_add(1, Ordering::Relaxed);
                dropped += 1;
                continue;
            }
            if let Some(w) = run.plan.windows() {
                match w.feed(&mut self.windows, &values, run.lateness_us) {
                    Ok(Fed::Added) => {}
                    // Not with a table's rows (see `query`), but never lost.
                    Ok(Fed::Late { .. }) => self.reject(row, RowError { column: None, reason: "late for its windows".into() })?,
                    Err(reason) => self.reject(row, RowError { column: None, reason })?,
                }
                dropped += 1;
                continue;
            }
            match run.plan.project(&values) {
                Ok(r) => {
                    bytes += r.iter().map(Value::weight).sum::<usize>();
                    out.push(r);
                }
                Err(e) => {
                    self.reject(row, e)?;
                    dropped += 1;
                }
            }
        }
        // The bar counts input rows: those that wrote nothing move it too.
        self.progress.inc(dropped);
        Ok(Batch::new(out, bytes))
    }

    /// The windows' rows, once every input row is in.
    fn close(&mut self) -> Result<Vec<Batch>> {
        let Some(w) = self.run.plan.windows() else { return Ok(Vec::new()) };
        let rows = w.emit(&mut self.windows, self.run.lateness_us, true).map_err(|e| Error::other(format!("--sql: computing a window's row: {e}")))?;
        Ok(rows
            .chunks(BATCH_ROWS)
            .map(|c| {
                let bytes = c.iter().flatten().map(Value::weight).sum();
                Batch::new(c.to_vec(), bytes)
            })
            .collect())
    }

    /// The row's key, to name it: the input's key columns, else the whole row.
    fn key_text(&self, row: &[Value]) -> String {
        let cols = &self.run.input.source.columns;
        let text = |v: &Value| to_text(v).ok().flatten().unwrap_or_else(|| "NULL".into());
        let key = &self.run.input.key;
        let shown: Vec<usize> = if !key.is_empty() && key.iter().all(|&i| i < row.len()) { key.clone() } else { (0..row.len().min(cols.len())).collect() };
        shown.iter().map(|&i| format!("{}={}", cols[i].name, text(&row[i]))).collect::<Vec<_>>().join(", ")
    }

    /// A row the query cannot evaluate: set aside (`--on-error log`), or
    /// the chunk's end.
    fn reject(&self, row: &[Value], e: RowError) -> Result<()> {
        let table = self.run.input.source.name.to_string();
        let key = self.key_text(row);
        if self.policy.on_error != OnError::Log {
            let what = match &e.column {
                Some(c) => format!("--sql, column {c}: {}", e.reason),
                None => format!("--sql: {}", e.reason),
            };
            return Err(Error::Table {
                table,
                row: Some(key),
                message: what,
                hint: Some(format!("fix the query or the row; or rerun with --on-error log to write such rows to {} with the reason and go on", self.policy.rejects.path.display())),
            });
        }
        let r = Rejected { table, key, column: e.column, reason: format!("--sql: {}", e.reason), row: row.to_vec() };
        self.policy.rejects.write(&r).map_err(|e| Error::other(format!("writing {}: {e}", self.policy.rejects.path.display())))?;
        self.policy.counters.rejected.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
