//! One side of a comparison: a table on one engine, the columns read from
//! it, and the queries run there (rows in key order, checksums computed by
//! the server, key bounds).

use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::ColumnType;
use crate::task::state::KeyRange;
use crate::transfer::{self, Batch, ReadSpec};

/// A side's connection is away only while [`Side::spawn_read`]'s reader
/// has it, and that is joined before anything else runs on the side.
const BUSY: &str = "a side runs one query at a time";

/// A reader running on its own task; it hands the connection back.
pub(super) type Reading = tokio::task::JoinHandle<(Db, Result<u64>)>;

pub(super) struct Side {
    /// The connection; away while a spawned reader has it.
    pub db: Option<Db>,
    /// The table as SQL, quoted.
    pub table: String,
    /// The table's name, for messages.
    pub label: String,
    /// Select expressions, one per compared column.
    pub columns: Vec<String>,
    /// The model type each column is read as.
    pub types: Vec<ColumnType>,
    /// ORDER BY terms that sort the key in [`super::canon::KeyOrder`];
    /// `None` when this engine cannot sort the key that way.
    pub order: Option<Vec<String>>,
    /// Quoted integer key column, for splitting into ranges.
    pub int_key: Option<String>,
    /// The mapping's row filter (source side only).
    pub filter: Option<String>,
    /// Rows read here pass through `--max-rate` (the source side: the cap
    /// protects the source).
    pub capped: bool,
}

impl Side {
    fn where_sql(&self, range: KeyRange) -> String {
        let mut conds = Vec::new();
        if let Some(p) = self.int_key.as_ref().and_then(|k| range.predicate(k)) {
            conds.push(p);
        }
        if let Some(f) = &self.filter {
            conds.push(format!("({f})"));
        }
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    }

    /// The connection back, once the side's work is done.
    pub fn into_db(mut self) -> Result<Db> {
        self.db.take().ok_or_else(|| Error::other(format!("the connection reading {} was lost", self.label)))
    }

    /// Starts streaming the rows of `range` into `tx` (in key order when
    /// `ordered`) on a task of its own, so that both sides decode on their
    /// own cores; [`Side::join_read`] takes the connection back. A value
    /// its declared type cannot read comes through as its text.
    pub fn spawn_read(&mut self, range: KeyRange, ordered: bool, tx: mpsc::Sender<Batch>) -> Reading {
        let mut select = format!("SELECT {} FROM {}{}", self.columns.join(", "), self.table, self.where_sql(range));
        if ordered {
            if let Some(order) = &self.order {
                select.push_str(&format!(" ORDER BY {}", order.join(", ")));
            }
        }
        let spec = ReadSpec { select, types: self.types.clone() };
        let mut db = self.db.take().expect(BUSY);
        let label = self.label.clone();
        let tx = if self.capped && crate::util::rate::limited() { capped(tx) } else { tx };
        tokio::spawn(async move {
            let r = transfer::read_tolerant(&mut db, &label, &spec, tx).await;
            (db, r)
        })
    }

    /// Waits for a reader started by [`Side::spawn_read`]: rows read.
    pub async fn join_read(&mut self, reading: Reading) -> Result<u64> {
        let (db, r) = reading.await.map_err(|e| Error::other(format!("reading {} stopped: {e}", self.label)))?;
        self.db = Some(db);
        r
    }

    /// (rows, checksum) of a range, computed by the server: an
    /// order-independent sum of row hashes, so rows never leave it.
    pub async fn server_sum(&mut self, range: KeyRange) -> Result<(u64, String)> {
        let w = self.where_sql(range);
        self.db.as_mut().expect(BUSY).row_hash_sum(&self.table, &self.columns, &self.types, &w).await
    }

    /// Rows in the table (after the filter).
    pub async fn count(&mut self) -> Result<u64> {
        let w = self.where_sql(KeyRange::ALL);
        self.db.as_mut().expect(BUSY).count_rows(&self.table, &w).await
    }

    /// The smallest and largest integer key in a range.
    pub async fn bounds(&mut self, range: KeyRange) -> Result<(Option<i64>, Option<i64>)> {
        let Some(k) = self.int_key.clone() else { return Ok((None, None)) };
        let w = self.where_sql(range);
        self.db.as_mut().expect(BUSY).int_bounds(&self.table, &k, &w).await
    }
}

/// A sender whose batches reach `out` as `--max-rate` allows.
fn capped(out: mpsc::Sender<Batch>) -> mpsc::Sender<Batch> {
    let (tx, mut rx) = mpsc::channel::<Batch>(transfer::CHANNEL_DEPTH);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            crate::util::rate::take(b.bytes).await;
            if out.send(b).await.is_err() {
                return;
            }
        }
    });
    tx
}
