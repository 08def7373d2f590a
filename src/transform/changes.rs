//! `--sql` as a change source around another one: each transaction's
//! changes of the input table become changes of the output table, and
//! windowed queries keep their open windows saved with the source
//! position (see the module doc of [`super`] for the restart design).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::window::{micros_text, Fed, WindowState};
use super::{Mapped, RowError, SqlRun};
use crate::cdc::Tables;
use crate::error::{Error, Result};
use crate::model::{Change, Op, Position, QualifiedName, Value};
use crate::sink::BoxFuture;
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::transfer::{OnError, Rejected, RowPolicy};

/// The state directory's copies of the open windows, one file per
/// transaction that carried window rows (`<sequence>.json`).
pub const WINDOWS_DIR: &str = "sql-windows";

#[derive(Serialize, Deserialize)]
struct SavedWindows {
    /// The query the state belongs to.
    sql: String,
    /// The source position the state is exactly at.
    position: Position,
    state: WindowState,
}

/// Where the source is opened, and the windows to start with.
pub struct Resume {
    pub read_from: Position,
    state: WindowState,
    /// The copy kept in the state directory: (sequence, position).
    files: VecDeque<(u64, Position)>,
}

/// The input table alone, as the inner source needs it.
pub fn inner_tables(run: &SqlRun) -> Arc<Tables> {
    Arc::new([(run.input.source.name.clone(), run.input.clone())].into_iter().collect())
}

fn copy_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.json"))
}

/// Where to read from: `from` is the destination's saved position, or
/// `start` when it has none. A windowed query resumes at its copy of the
/// windows at `from` (every transaction the destination can have saved
/// has one), else from `start`.
pub fn resume(run: &SqlRun, from: &Position, start: &Position, state_dir: &Path) -> Result<Resume> {
    let fresh = Resume { read_from: from.clone(), state: WindowState::default(), files: VecDeque::new() };
    if run.plan.windows().is_none() {
        return Ok(fresh);
    }
    let dir = state_dir.join(WINDOWS_DIR);
    let mut copies: Vec<(u64, SavedWindows)> = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(seq) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok()) else { continue };
        let body = std::fs::read(&path).map_err(|e| Error::other(format!("{}: {e}", path.display())))?;
        let saved: SavedWindows = serde_json::from_slice(&body)
            .map_err(|e| Error::other(format!("{}: {e}", path.display())).with_hint("the file is barge's copy of the open windows; restore it, or move the folder away to rebuild the windows from the start of the stream"))?;
        if saved.sql != run.plan.sql {
            return Err(Error::usage(format!("{} holds the windows of another query ({})", dir.display(), saved.sql))
                .with_hint("rerun with the --sql of that run, or use a new --state-dir (and a new target table) for the new query"));
        }
        copies.push((seq, saved));
    }
    copies.sort_by_key(|(seq, _)| *seq);
    // The copy at the destination's position; later ones belong to
    // transactions the destination never saved, earlier ones are spent.
    let at = if from == start { None } else { copies.iter().rposition(|(_, c)| c.position <= *from) };
    for (i, (seq, _)) in copies.iter().enumerate() {
        if Some(i) != at {
            let _ = std::fs::remove_file(copy_path(&dir, *seq));
        }
    }
    match at {
        Some(i) => {
            let (seq, c) = copies.swap_remove(i);
            tracing::info!("--sql: resuming the open windows saved at {}", c.position);
            Ok(Resume { read_from: c.position.clone(), state: c.state, files: [(seq, c.position)].into_iter().collect() })
        }
        None if from == start => Ok(fresh),
        None => {
            tracing::warn!("--sql: the state directory has no copy of the open windows at {from}: reading again from {start} to rebuild them; windows emitted since may be written again");
            Ok(Resume { read_from: start.clone(), ..fresh })
        }
    }
}

pub struct SqlChanges {
    inner: Box<dyn ChangeSource>,
    run: Arc<SqlRun>,
    policy: RowPolicy,
    output: QualifiedName,
    /// What the destination already holds: replaying up to it writes no
    /// rejects or late records a second time.
    applied: Position,
    windows: Option<Windows>,
    /// A bounded windowed run holds each event until the next one, so the
    /// last one can carry the windows still open at the end.
    held: Option<SourceEvent>,
    /// The window state after the held transaction.
    held_state: Option<Vec<u8>>,
    /// Lines (hashed) the rejects file held when the run started.
    earlier_rejects: HashSet<u64>,
    ended: bool,
}

struct Windows {
    state: WindowState,
    dir: PathBuf,
    /// Durable copies, in the order written: (sequence, position).
    files: VecDeque<(u64, Position)>,
    next_seq: u64,
}

pub fn wrap(inner: Box<dyn ChangeSource>, run: Arc<SqlRun>, resume: Resume, applied: &Position, policy: RowPolicy, state_dir: &Path) -> Box<dyn ChangeSource> {
    let next_seq = resume.files.back().map_or(0, |(s, _)| s + 1);
    let windows = run.plan.windows().map(|_| Windows { state: resume.state, dir: state_dir.join(WINDOWS_DIR), files: resume.files, next_seq });
    let output = run.plan.output.name.clone();
    let earlier_rejects = std::fs::read_to_string(&policy.rejects.path).map(|t| t.lines().map(line_hash).collect()).unwrap_or_default();
    Box::new(SqlChanges { inner, run, policy, output, applied: applied.clone(), windows, held: None, held_state: None, earlier_rejects, ended: false })
}

fn line_hash(line: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

impl SqlChanges {
    fn replaying(&self, at: &Position) -> bool {
        *at <= self.applied
    }

    /// Names a row in messages: a record's shard and offset, else the key.
    fn place(&self, row: &[Value], at: &Position) -> String {
        let cols = &self.run.input.source.columns;
        let find = |n: &str| cols.iter().position(|c| c.name.eq_ignore_ascii_case(n)).and_then(|i| row.get(i));
        let text = |v: &Value| super::expr::to_text(v).ok().flatten().unwrap_or_else(|| "NULL".into());
        if let (Some(s), Some(o)) = (find("shard").or(find("_shard")), find("offset").or(find("_offset"))) {
            return format!("{} shard {} offset {}", self.run.input.source.name, text(s), text(o));
        }
        let key = &self.run.input.key;
        if !key.is_empty() && key.iter().all(|&i| i < row.len()) {
            let parts: Vec<String> = key.iter().map(|&i| format!("{}={}", cols[i].name, text(&row[i]))).collect();
            return format!("{} ({})", self.run.input.source.name, parts.join(", "));
        }
        format!("{} in the transaction ending at {at}", self.run.input.source.name)
    }

    /// A row the query cannot evaluate: set aside (`--on-error log`) or the end of the run.
    fn reject(&mut self, row: &[Value], at: &Position, e: RowError) -> Result<()> {
        let place = self.place(row, at);
        let what = match &e.column {
            Some(c) => format!("column {c}: {}", e.reason),
            None => e.reason.clone(),
        };
        if self.policy.on_error != OnError::Log {
            return Err(Error::other(format!("--sql on the record at {place}: {what}"))
                .with_hint(format!("fix the query or the record; or rerun with --on-error log to write such records to {} with the reason and go on", self.policy.rejects.path.display())));
        }
        if self.replaying(at) {
            return Ok(());
        }
        self.set_aside(row, place, e.column, format!("--sql: {}", e.reason))?;
        self.policy.counters.rejected.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn set_aside(&mut self, row: &[Value], key: String, column: Option<String>, reason: String) -> Result<()> {
        let r = Rejected { table: self.run.input.source.name.to_string(), key, column, reason, row: row.to_vec() };
        // Read again after a crash (records after the destination's
        // position), a record an earlier run set aside is not written twice.
        if !self.earlier_rejects.is_empty() {
            if let Ok(line) = serde_json::to_string(&r) {
                if self.earlier_rejects.remove(&line_hash(&line)) {
                    return Ok(());
                }
            }
        }
        self.policy.rejects.write(&r).map_err(|e| Error::other(format!("writing {}: {e}", self.policy.rejects.path.display())))
    }

    fn late(&mut self, row: &[Value], at: &Position, time: i64, watermark: i64) -> Result<()> {
        if self.replaying(at) {
            return Ok(());
        }
        let place = self.place(row, at);
        let reason = format!("late: event time {} is before the watermark {} (every window it belongs to was already emitted; see --allowed-lateness)", micros_text(time), micros_text(watermark));
        self.set_aside(row, place, None, reason)?;
        self.policy.counters.late.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn filtered(&self, at: &Position) {
        if !self.replaying(at) {
            self.policy.counters.filtered.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn out_change(&self, op: Op, from: &Change) -> Change {
        Change { table: self.output.clone(), op, txid: from.txid.clone(), commit_time: from.commit_time, position: from.position.clone() }
    }

    fn map(&mut self, mut t: Transaction) -> Result<Transaction> {
        let run = self.run.clone();
        let input = &run.input;
        let mut out = Vec::with_capacity(t.changes.len());
        for c in &t.changes {
            if c.table != input.source.name {
                continue;
            }
            let row_of = |op: &Op| -> Vec<Value> {
                match op {
                    Op::Insert { row } => row.clone(),
                    Op::Delete { key } => key.clone(),
                    Op::Update { after, .. } => after.iter().map(|v| v.clone().unwrap_or(Value::Null)).collect(),
                    Op::Truncate => Vec::new(),
                }
            };
            if let Some(w) = run.plan.windows() {
                let Op::Insert { row } = &c.op else {
                    return Err(Error::usage(format!("--sql windows read new rows only; {} sent a {} change", input.source.name, c.op.code())));
                };
                let values = super::expr::Row::new(row);
                match run.plan.passes(&values) {
                    Ok(false) => self.filtered(&t.position),
                    Err(e) => self.reject(row, &t.position, e)?,
                    Ok(true) => {
                        let state = &mut self.windows.as_mut().expect("a windowed query keeps windows").state;
                        match w.feed(state, &values, run.lateness_us) {
                            Ok(Fed::Added) => {}
                            Ok(Fed::Late { time, watermark }) => self.late(row, &t.position, time, watermark)?,
                            Err(reason) => self.reject(row, &t.position, RowError { column: None, reason })?,
                        }
                    }
                }
                continue;
            }
            match run.plan.map_change(input, &c.op) {
                Ok(Mapped::Op(op)) => out.push(self.out_change(op, c)),
                Ok(Mapped::Filtered) => self.filtered(&t.position),
                Err(e) => self.reject(&row_of(&c.op), &t.position, e)?,
            }
        }
        if let Some(w) = run.plan.windows() {
            let state = &mut self.windows.as_mut().expect("a windowed query keeps windows").state;
            let rows = w.emit(state, run.lateness_us, false).map_err(|e| Error::other(format!("--sql: computing a window's row: {e}")))?;
            let txid = t.changes.first().and_then(|c| c.txid.clone());
            for row in rows {
                out.push(Change { table: self.output.clone(), op: Op::Insert { row }, txid: txid.clone(), commit_time: t.commit_time, position: t.position.clone() });
            }
        }
        t.changes = out;
        Ok(t)
    }

    /// The window state as it is now, to be saved at `at`.
    fn snapshot(&self, at: &Position) -> Result<Vec<u8>> {
        let Some(w) = self.windows.as_ref() else { return Ok(Vec::new()) };
        serde_json::to_vec(&SavedWindows { sql: self.run.plan.sql.clone(), position: at.clone(), state: w.state.clone() }).map_err(|e| Error::other(format!("--sql: saving the windows: {e}")))
    }

    /// Saves the window state `body` at `at`, the position of a
    /// transaction that carries window rows, before the destination can
    /// save `at`: whatever position a restart finds there has its copy.
    fn save_windows(&mut self, at: &Position, body: &[u8]) -> Result<()> {
        let Some(w) = self.windows.as_mut() else { return Ok(()) };
        std::fs::create_dir_all(&w.dir).map_err(|source| Error::Write { path: w.dir.clone(), source })?;
        crate::util::fs::write_durably(&copy_path(&w.dir, w.next_seq), body)?;
        w.files.push_back((w.next_seq, at.clone()));
        w.next_seq += 1;
        Ok(())
    }

    /// The next event of the inner source, mapped.
    async fn next_mapped(&mut self) -> Result<Option<SourceEvent>> {
        loop {
            let Some(ev) = self.inner.next().await? else { return Ok(None) };
            if let Some(ev) = self.mapped(ev)? {
                return Ok(Some(ev));
            }
        }
    }

    fn mapped(&mut self, ev: SourceEvent) -> Result<Option<SourceEvent>> {
        Ok(Some(match ev {
            SourceEvent::Transaction(t) => {
                let t = self.map(t)?;
                if t.changes.is_empty() && !t.partial {
                    // Records absorbed by open windows: nothing for the
                    // destination, whose position then stays where it is.
                    SourceEvent::Idle { position: t.position, lag_bytes: None }
                } else {
                    if self.windows.is_some() {
                        let body = self.snapshot(&t.position)?;
                        if self.held_back() {
                            // Saved when the transaction leaves (see `next`).
                            self.held_state = Some(body);
                        } else {
                            self.save_windows(&t.position, &body)?;
                        }
                    }
                    SourceEvent::Transaction(t)
                }
            }
            SourceEvent::Idle { position, lag_bytes } => SourceEvent::Idle { position, lag_bytes },
            SourceEvent::Schema(ev) => return Ok(self.schema(*ev)),
        }))
    }

    /// A definition change of the input table: the query was planned on
    /// the old columns, so the output table stops (named in status).
    fn schema(&self, ev: SchemaEvent) -> Option<SourceEvent> {
        let same = |t: &crate::model::Table| {
            t.columns.len() == self.run.input.source.columns.len() && t.columns.iter().zip(&self.run.input.source.columns).all(|(a, b)| a.name == b.name && a.ty == b.ty)
        };
        let unchanged = match &ev.change {
            SchemaChange::Columns { table, .. } => same(table),
            _ => false,
        };
        if ev.table != self.run.input.source.name || unchanged {
            return None;
        }
        let message = format!("{} changed its definition at the source; --sql was planned on its old columns: rerun with the query checked against the new ones (the rows already on the target stay)", self.run.input.source.name);
        Some(SourceEvent::Schema(Box::new(SchemaEvent { table: self.output.clone(), change: SchemaChange::Unsupported { message }, position: ev.position, commit_lsn: ev.commit_lsn })))
    }

    /// The windows still open at the end of a bounded input, as rows of
    /// the last transaction.
    fn close_all(&mut self, last: Option<SourceEvent>) -> Result<Option<SourceEvent>> {
        let (Some(w), Some(state)) = (self.run.plan.windows(), self.windows.as_mut().map(|w| &mut w.state)) else { return Ok(last) };
        let rows = w.emit(state, self.run.lateness_us, true).map_err(|e| Error::other(format!("--sql: computing a window's row: {e}")))?;
        if rows.is_empty() {
            return Ok(last);
        }
        let (mut t, position) = match last {
            Some(SourceEvent::Transaction(t)) => {
                let p = t.position.clone();
                (t, p)
            }
            Some(SourceEvent::Idle { position, .. }) => (Transaction { changes: Vec::new(), position: position.clone(), commit_time: None, bytes: 0, partial: false }, position),
            // Nothing read in this run: the last results went with the
            // transaction the earlier run ended on, already on the target.
            other => return Ok(other),
        };
        for row in rows {
            t.bytes += row.iter().map(Value::weight).sum::<usize>() + 64;
            t.changes.push(Change { table: self.output.clone(), op: Op::Insert { row }, txid: None, commit_time: t.commit_time, position: position.clone() });
        }
        Ok(Some(SourceEvent::Transaction(t)))
    }

    /// A bounded windowed run holds each event back until the next one.
    fn held_back(&self) -> bool {
        self.run.bounded && self.windows.is_some()
    }
}

impl ChangeSource for SqlChanges {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            if !self.held_back() {
                return self.next_mapped().await;
            }
            if self.ended {
                return Ok(None);
            }
            loop {
                // The state after the transaction held now.
                let held_state = self.held_state.take();
                let (out, state) = match self.next_mapped().await? {
                    None => {
                        self.ended = true;
                        let last = self.held.take();
                        let last_was_sent = matches!(last, Some(SourceEvent::Transaction(_)));
                        let out = self.close_all(last)?;
                        // The last event: the state after it is the state now.
                        let state = match (&out, last_was_sent) {
                            (Some(SourceEvent::Transaction(t)), _) => Some(self.snapshot(&t.position)?),
                            _ => held_state,
                        };
                        (out, state)
                    }
                    Some(ev) => {
                        let next_state = self.held_state.take();
                        let prev = self.held.replace(ev);
                        self.held_state = next_state;
                        match prev {
                            Some(prev) => (Some(prev), held_state),
                            None => continue,
                        }
                    }
                };
                if let (Some(SourceEvent::Transaction(t)), Some(body)) = (&out, &state) {
                    self.save_windows(&t.position, body)?;
                }
                return Ok(out);
            }
        })
    }

    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(w) = self.windows.as_mut() else { return self.inner.acknowledge(position).await };
            // The newest copy the destination holds everything up to: the
            // older ones are spent, and the source may release up to it.
            let Some(i) = w.files.iter().rposition(|(_, p)| p <= position) else { return Ok(()) };
            for (seq, _) in w.files.drain(..i) {
                let _ = std::fs::remove_file(copy_path(&w.dir, seq));
            }
            let at = w.files[0].1.clone();
            self.inner.acknowledge(&at).await
        })
    }

    fn next_is_cancel_safe(&self) -> bool {
        // Holding an event back keeps state across calls.
        self.inner.next_is_cancel_safe() && !self.held_back()
    }

    fn lag_bytes(&self) -> Option<u64> {
        self.inner.lag_bytes()
    }
}
