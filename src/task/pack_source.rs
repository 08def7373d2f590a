//! A database as a pack source: the tables to pack with their schema and
//! size estimates, change capture begun before any row is read, and the
//! rows of each table read in one snapshot per run (PostgreSQL REPEATABLE
//! READ, MySQL/MariaDB `WITH CONSISTENT SNAPSHOT`, a SQLite read
//! transaction) and encoded as [`rows::ENCODING`].
//!
//! The pack library is synchronous; the readers are async. One task on a
//! private runtime reads the tables in order and hands each one over as a
//! channel of batches, which the packer's thread encodes while the task
//! reads ahead, so decoding, encoding and encryption overlap.

use tokio::sync::{mpsc, oneshot};

use super::load::{read_expr, source_table_sql};
use super::mapping::Mapping;
use crate::source::capture::{self, CaptureOptions};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema, Table};
use crate::pack::catalog::{CdcStart, DatabaseInfo};
use crate::pack::rows::{self, RawBlock};
use crate::pack::source::{TablePlan, TableSource, TableStream};
use crate::source::{self, TableRead};
use crate::transfer::{Batch, ReadSpec, CHANNEL_DEPTH};

/// One table's rows on their way to the packer, and the reader's verdict.
struct TableFeed {
    name: String,
    batches: Rows,
    done: oneshot::Receiver<Result<u64>>,
}

/// Rows as values, or already encoded by a reader that can
/// ([`crate::source::Source::read_packed`]: PostgreSQL's binary COPY).
enum Rows {
    Values(mpsc::Receiver<Batch>),
    Packed(mpsc::Receiver<RawBlock>),
}

enum Next {
    Table(TableFeed),
    Failed(Error),
}

pub struct DatabaseSource {
    endpoint: Endpoint,
    rt: tokio::runtime::Runtime,
    dialect: Dialect,
    /// The selected tables, and the source's other schema objects.
    schema: Schema,
    plans: Vec<TablePlan>,
    capture: bool,
    selection: Option<String>,
    feeds: Option<mpsc::Receiver<Next>>,
    /// The source as of the capture's start position, for the first run's
    /// reader: the pack then holds exactly the rows before the position.
    snapshot: Option<capture::Snapshot>,
}

impl DatabaseSource {
    /// Connects, reads the catalog and picks the tables `mapping` selects
    /// (`selection`: the `--tables` patterns it was built from, recorded in
    /// the catalog). `capture`: set up change capture for a new pack.
    pub fn open(endpoint: &Endpoint, mapping: &Mapping, selection: Option<&str>, capture: bool) -> Result<DatabaseSource> {
        let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
        let (dialect, schema, plans) = rt.block_on(async {
            let mut conn = source::open(endpoint).await?;
            let full = conn.discover().await?;
            let mut schema = mapping.select_some(&full, endpoint)?;
            // A pack keeps the whole schema: views and routines travel too
            // (unpack creates tables; the rest is there for convert-schema).
            schema.views = full.views.clone();
            schema.routines = full.routines.clone();
            let dialect = conn.dialect();
            let mut plans = Vec::new();
            for t in &schema.tables {
                let est = conn.estimate(t).await?;
                plans.push(TablePlan {
                    name: t.name.to_string(),
                    schema: serde_json::to_value(t).map_err(|e| Error::other(format!("table {}: {e}", t.name)))?,
                    estimated_rows: est.rows,
                    estimated_bytes: est.bytes,
                });
            }
            Ok::<_, Error>((dialect, schema, plans))
        })?;
        Ok(DatabaseSource {
            endpoint: endpoint.clone(),
            rt,
            dialect,
            schema,
            plans,
            capture,
            selection: selection.map(str::to_string),
            feeds: None,
            snapshot: None,
        })
    }

    fn read_job(&self, name: &str) -> Result<TableRead> {
        let t = self.schema.tables.iter().find(|t| t.name.to_string() == name).ok_or_else(|| {
            Error::usage(format!("table {name} was packed by an earlier run but is no longer in {}; resume with the same --tables", self.endpoint))
        })?;
        Ok(read_job(self.dialect, &self.schema, t))
    }
}

/// The same read as `job`, stopped after `rows` rows (`barge advise`
/// samples with it). The COPY form stays a COPY: it is what a pack reads with.
pub(crate) fn limited(job: TableRead, rows: u64) -> TableRead {
    let select = format!("{} LIMIT {rows}", job.spec.select);
    let copy = job.copy.map(|_| format!("COPY ({select}) TO STDOUT"));
    TableRead { name: job.name, spec: ReadSpec { select, types: job.spec.types }, copy }
}

/// The columns of a table's packed rows, in order: an inheritance
/// child's inherited columns first (the model lists only its own), then
/// its own. Unpack reads the rows by this layout.
pub(crate) fn packed_columns(schema: &Schema, t: &Table) -> Vec<crate::model::Column> {
    let mut cols = if t.inherits.is_empty() { Vec::new() } else { super::shape::inherited_columns(schema, t) };
    cols.extend(t.columns.iter().cloned());
    cols
}

/// Every column ([`packed_columns`]), read the way a full load reads it.
/// A table's own rows only: a partitioned table's are its partitions'
/// and an inheritance parent's children are packed on their own.
pub fn read_job(dialect: Dialect, schema: &Schema, t: &Table) -> TableRead {
    let mut cols = Vec::new();
    let mut types = Vec::new();
    let mut plain = true;
    for c in &packed_columns(schema, t) {
        let quoted = super::load::quote_source(dialect, &c.name);
        let (expr, ty) = read_expr(dialect, &quoted, &c.ty);
        plain &= expr == quoted;
        cols.push(expr);
        types.push(ty);
    }
    let table = source_table_sql(dialect, t);
    let partitioned = t.options.partitioning.is_some() || schema.tables.iter().any(|p| p.partition_of.as_ref().is_some_and(|po| po.parent == t.name));
    let parent = partitioned || schema.tables.iter().any(|c| c.inherits.iter().any(|p| p.loosely_eq(&t.name)));
    let from = if dialect == Dialect::Postgres && parent { format!("ONLY {table}") } else { table.clone() };
    // `COPY table TO` reads the table's own rows, and refuses a partitioned one.
    let copy = (dialect == Dialect::Postgres && plain && !partitioned).then(|| format!("COPY {table} ({}) TO STDOUT", cols.join(", ")));
    TableRead { name: t.name.to_string(), spec: ReadSpec { select: format!("SELECT {} FROM {from}", cols.join(", ")), types }, copy }
}

/// The reader task: one connection, one snapshot, the tables in order.
/// `snapshot`: the change capture's, which this reader joins.
async fn read_tables(endpoint: Endpoint, jobs: Vec<TableRead>, snapshot: Option<capture::Snapshot>, feeds: mpsc::Sender<Next>) {
    // `_hold` keeps a PostgreSQL capture's exporting session alive until
    // this task ends.
    let (mut conn, _hold) = match source::join_snapshot(&endpoint, snapshot).await {
        Ok(c) => c,
        Err(e) => {
            let _ = feeds.send(Next::Failed(e)).await;
            return;
        }
    };
    for job in jobs {
        let (dtx, drx) = oneshot::channel();
        let (ptx, prx) = mpsc::channel::<RawBlock>(CHANNEL_DEPTH);
        let (read, batches) = if conn.reads_packed(&job) {
            (conn.read_packed(&job, ptx), Rows::Packed(prx))
        } else {
            let (btx, brx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
            (conn.read(&job, btx), Rows::Values(brx))
        };
        if feeds.send(Next::Table(TableFeed { name: job.name.clone(), batches, done: drx })).await.is_err() {
            // The packer stopped (devices full, or an error of its own).
            return;
        }
        let r = read.await;
        let failed = r.is_err();
        let _ = dtx.send(r);
        if failed {
            return;
        }
    }
    let _ = conn.finish().await;
}

impl TableSource for DatabaseSource {
    fn label(&self) -> String {
        self.endpoint.to_string()
    }

    fn tables(&self) -> &[TablePlan] {
        &self.plans
    }

    fn begin(&mut self) -> Result<DatabaseInfo> {
        let cdc = if self.capture {
            let seed = format!("{}\n{}", self.endpoint, uuid::Uuid::new_v4());
            match self.rt.block_on(capture::begin_consistent(&self.endpoint, &self.schema.tables, &CaptureOptions::default(), &seed, 1)) {
                Ok((c, snapshot)) => {
                    self.snapshot = Some(snapshot);
                    Some(CdcStart { position: c.position.to_string(), slot: c.slot, publication: c.publication })
                }
                Err(e) => return Err(e.with_hint("fix the source's change-capture settings, or pass --no-cdc to pack without a start position")),
            }
        } else {
            None
        };
        let rest = Schema { tables: Vec::new(), ..self.schema.clone() };
        let extras = self.rt.block_on(crate::task::objects::Extras::read(&self.endpoint, &self.schema))?;
        Ok(DatabaseInfo {
            dialect: self.dialect.name().to_string(),
            schema: serde_json::to_value(&rest).map_err(|e| Error::other(format!("schema of {}: {e}", self.endpoint)))?,
            selection: self.selection.clone(),
            cdc,
            extras: Some(extras),
        })
    }

    fn start(&mut self, names: &[String]) -> Result<()> {
        let jobs = names.iter().map(|n| self.read_job(n)).collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel(1);
        self.rt.spawn(read_tables(self.endpoint.clone(), jobs, self.snapshot.take(), tx));
        self.feeds = Some(rx);
        Ok(())
    }

    fn open(&mut self, name: &str) -> Result<Box<dyn TableStream + '_>> {
        let feeds = self.feeds.as_mut().ok_or_else(|| Error::other("pack read a table before starting the reader"))?;
        let feed = match feeds.blocking_recv() {
            Some(Next::Table(f)) => f,
            Some(Next::Failed(e)) => return Err(e),
            None => return Err(Error::other(format!("the reader of {} stopped before table {name}", self.endpoint))),
        };
        if feed.name != name {
            return Err(Error::other(format!("the reader sent table {} where {name} was expected", feed.name)));
        }
        let columns = self.schema.tables.iter().find(|t| t.name.to_string() == name).map_or(0, |t| packed_columns(&self.schema, t).len());
        Ok(Box::new(Encoder { feed: Some(feed), columns, buf: rows::header(columns as u32), at: 0, rows: 0 }))
    }
}

/// Turns one table's batches into its byte stream.
struct Encoder {
    /// `None` once the trailer is written.
    feed: Option<TableFeed>,
    columns: usize,
    buf: Vec<u8>,
    at: usize,
    rows: u64,
}

impl Encoder {
    /// Refills `buf` with the next block (or the trailer); false at the end.
    fn refill(&mut self) -> Result<bool> {
        let Some(feed) = self.feed.as_mut() else { return Ok(false) };
        self.buf.clear();
        self.at = 0;
        let next = match &mut feed.batches {
            Rows::Values(rx) => rx.blocking_recv().map(Ok),
            Rows::Packed(rx) => rx.blocking_recv().map(Err),
        };
        match next {
            Some(Err(block)) => {
                rows::put_raw_block(block.rows, &block.body, &mut self.buf);
                self.rows += block.rows as u64;
            }
            Some(Ok(batch)) => {
                if let Some(bad) = batch.rows.iter().find(|r| r.len() != self.columns) {
                    return Err(Error::Table {
                        table: feed.name.clone(),
                        row: None,
                        message: format!("the reader gave a row of {} values for {} columns", bad.len(), self.columns),
                        hint: None,
                    });
                }
                if !batch.rows.is_empty() {
                    rows::encode_block(&batch.rows, &mut self.buf);
                    self.rows += batch.rows.len() as u64;
                }
            }
            None => {
                let feed = self.feed.take().expect("checked above");
                let read = match feed.done.blocking_recv() {
                    Ok(r) => r?,
                    Err(_) => return Err(Error::other(format!("the reader of table {} stopped without a result", feed.name))),
                };
                if read != self.rows {
                    return Err(Error::Table {
                        table: feed.name,
                        row: None,
                        message: format!("the reader counted {read} rows, the pack received {}", self.rows),
                        hint: None,
                    });
                }
                self.buf.extend_from_slice(&rows::trailer(self.rows));
            }
        }
        Ok(true)
    }
}

impl TableStream for Encoder {
    fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        while self.at == self.buf.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    fn rows(&self) -> u64 {
        self.rows
    }
}
