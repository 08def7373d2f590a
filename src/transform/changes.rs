//! `--sql` as a change source around another one: each transaction's
//! changes of the input table become changes of the output table, and
//! windowed queries keep their open windows checkpointed with the source
//! position (see the module doc of [`super`] for the restart design).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::window::{micros_text, Fed, WindowState};
use super::{Mapped, RowError, SqlRun};
use crate::cdc::Tables;
use crate::error::{Error, Result};
use crate::model::{Change, Op, Position, QualifiedName, Value};
use crate::sink::BoxFuture;
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::transfer::{OnError, Rejected, RowPolicy};

/// The state directory's copy of the open windows.
pub const WINDOWS_FILE: &str = "sql-windows.json";

/// How often, at most, a copy of the window state is taken while
/// transactions flow (each copy is the whole state).
const COPY_EVERY: Duration = Duration::from_secs(1);

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
}

/// The input table alone, as the inner source needs it.
pub fn inner_tables(run: &SqlRun) -> Arc<Tables> {
    Arc::new([(run.input.source.name.clone(), run.input.clone())].into_iter().collect())
}

/// Where to read from: `from` is the destination's saved position, or
/// `start` when it has none. A windowed query resumes at its saved copy
/// of the windows (at or before `from`), else from `start`.
pub fn resume(run: &SqlRun, from: &Position, start: &Position, state_dir: &Path) -> Result<Resume> {
    let fresh = Resume { read_from: from.clone(), state: WindowState::default() };
    if run.plan.windows().is_none() || from == start {
        return Ok(fresh);
    }
    let path = state_dir.join(WINDOWS_FILE);
    let saved: Option<SavedWindows> = match std::fs::read(&path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::other(format!("{}: {e}", path.display())).with_hint("the file is barge's copy of the open windows; restore it, or move it away to rebuild the windows from the start of the stream"))?),
        Err(_) => None,
    };
    match saved {
        Some(s) if s.sql != run.plan.sql => Err(Error::usage(format!("{} holds the windows of another query ({})", path.display(), s.sql))
            .with_hint("rerun with the --sql of that run, or use a new --state-dir (and a new target table) for the new query")),
        Some(s) if s.position <= *from => {
            tracing::info!("--sql: resuming the open windows saved at {} (rereading from there; results already on the target are not written again)", s.position);
            Ok(Resume { read_from: s.position, state: s.state })
        }
        _ => {
            tracing::warn!("--sql: no copy of the open windows at or before {from}: reading again from {start} to rebuild them (results already on the target are not written again)");
            Ok(Resume { read_from: start.clone(), state: WindowState::default() })
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
    ended: bool,
}

struct Windows {
    state: WindowState,
    /// Copies of the state not yet durable at the destination, oldest first.
    copies: VecDeque<(Position, String)>,
    last_copy: Instant,
    path: PathBuf,
}

pub fn wrap(inner: Box<dyn ChangeSource>, run: Arc<SqlRun>, resume: Resume, applied: &Position, policy: RowPolicy, state_dir: &Path) -> Box<dyn ChangeSource> {
    let windows = run.plan.windows().map(|_| Windows { state: resume.state, copies: VecDeque::new(), last_copy: Instant::now() - COPY_EVERY, path: state_dir.join(WINDOWS_FILE) });
    let output = run.plan.output.name.clone();
    Box::new(SqlChanges { inner, run, policy, output, applied: applied.clone(), windows, held: None, ended: false })
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
    fn reject(&self, row: &[Value], at: &Position, e: RowError) -> Result<()> {
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

    fn set_aside(&self, row: &[Value], key: String, column: Option<String>, reason: String) -> Result<()> {
        let r = Rejected { table: self.run.input.source.name.to_string(), key, column, reason, row: row.to_vec() };
        self.policy.rejects.write(&r).map_err(|e| Error::other(format!("writing {}: {e}", self.policy.rejects.path.display())))
    }

    fn late(&self, row: &[Value], at: &Position, time: i64, watermark: i64) -> Result<()> {
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
        let input = &self.run.input;
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
            if let Some(w) = self.run.plan.windows() {
                let Op::Insert { row } = &c.op else {
                    return Err(Error::usage(format!("--sql windows read new rows only; {} sent a {} change", input.source.name, c.op.code())));
                };
                let passes = match &self.run.plan.filter {
                    None => Ok(true),
                    Some(f) => f.eval(row).map(|v| v == Value::Bool(true)).map_err(|reason| RowError { column: None, reason: format!("WHERE: {reason}") }),
                };
                match passes {
                    Ok(false) => self.filtered(&t.position),
                    Err(e) => self.reject(row, &t.position, e)?,
                    Ok(true) => {
                        let state = &mut self.windows.as_mut().expect("a windowed query keeps windows").state;
                        match w.feed(state, row, self.run.lateness_us) {
                            Ok(Fed::Added) => {}
                            Ok(Fed::Late { time, watermark }) => self.late(row, &t.position, time, watermark)?,
                            Err(reason) => self.reject(row, &t.position, RowError { column: None, reason })?,
                        }
                    }
                }
                continue;
            }
            match self.run.plan.map_change(input, &c.op) {
                Ok(Mapped::Op(op)) => out.push(self.out_change(op, c)),
                Ok(Mapped::Filtered) => self.filtered(&t.position),
                Err(e) => self.reject(&row_of(&c.op), &t.position, e)?,
            }
        }
        if let Some(w) = self.run.plan.windows() {
            let state = &mut self.windows.as_mut().expect("a windowed query keeps windows").state;
            let rows = w.emit(state, self.run.lateness_us, false).map_err(|e| Error::other(format!("--sql: computing a window's row: {e}")))?;
            let template = t.changes.first().cloned();
            for row in rows {
                out.push(Change { table: self.output.clone(), op: Op::Insert { row }, txid: template.as_ref().and_then(|c| c.txid.clone()), commit_time: t.commit_time, position: t.position.clone() });
            }
        }
        t.changes = out;
        Ok(t)
    }

    /// Takes a copy of the window state at `at`, at most once a second.
    fn copy_windows(&mut self, at: &Position) -> Result<()> {
        let Some(w) = self.windows.as_mut() else { return Ok(()) };
        if w.last_copy.elapsed() < COPY_EVERY && !w.copies.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_string(&SavedWindows { sql: self.run.plan.sql.clone(), position: at.clone(), state: w.state.clone() }).map_err(|e| Error::other(format!("--sql: saving the windows: {e}")))?;
        w.copies.push_back((at.clone(), body));
        w.last_copy = Instant::now();
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
        Ok(match ev {
            SourceEvent::Transaction(t) => {
                let t = self.map(t)?;
                self.copy_windows(&t.position)?;
                if t.changes.is_empty() && !t.partial {
                    SourceEvent::Idle { position: t.position, lag_bytes: None }
                } else {
                    SourceEvent::Transaction(t)
                }
            }
            SourceEvent::Idle { position, lag_bytes } => {
                self.copy_windows(&position)?;
                SourceEvent::Idle { position, lag_bytes }
            }
            SourceEvent::Schema(ev) => return Ok(self.schema(*ev)),
        }.into())
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
}

impl ChangeSource for SqlChanges {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            if !(self.run.bounded && self.windows.is_some()) {
                return self.next_mapped().await;
            }
            if self.ended {
                return Ok(None);
            }
            loop {
                let next = self.next_mapped().await?;
                match next {
                    None => {
                        self.ended = true;
                        let last = self.held.take();
                        return self.close_all(last);
                    }
                    // A schema event passes at once, after what was held.
                    Some(ev) => match self.held.replace(ev) {
                        Some(prev) => return Ok(Some(prev)),
                        None => continue,
                    },
                }
            }
        })
    }

    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(w) = self.windows.as_mut() else { return self.inner.acknowledge(position).await };
            // The newest copy the destination has everything up to.
            let mut newest = None;
            while w.copies.front().is_some_and(|(p, _)| p <= position) {
                newest = w.copies.pop_front();
            }
            let Some((at, body)) = newest else { return Ok(()) };
            crate::util::fs::write_durably(&w.path, body.as_bytes())?;
            self.inner.acknowledge(&at).await
        })
    }

    fn next_is_cancel_safe(&self) -> bool {
        // Holding an event back keeps state across calls.
        self.inner.next_is_cancel_safe() && !(self.run.bounded && self.windows.is_some())
    }

    fn lag_bytes(&self) -> Option<u64> {
        self.inner.lag_bytes()
    }
}
