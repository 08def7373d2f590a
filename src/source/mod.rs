//! Sources: what barge reads from, one folder per engine.
//!
//! A [`Source`] is one open connection to a source database, with what
//! every reader of it needs: the catalog ([`Source::discover`]), sizes
//! from the catalog's statistics ([`Source::estimate`]), the key bounds a
//! table is split into chunks by ([`Source::key_bounds`]), a read-only
//! snapshot, joined to the change capture's where there is one
//! ([`join_snapshot`]), and the rows of a table or chunk
//! ([`Source::read`], through the engine readers in `transfer/`). The
//! change stream is the other half: [`changes::ChangeSource`], opened at a
//! position with [`open_changes`], after [`capture::begin`] made the
//! source keep its changes; [`copy_live`] copies one table while they
//! flow. `task/` orchestrates these and holds no
//! engine SQL; each engine's implementation is in its folder:
//!
//! - `postgres/`: the catalog, `wal.rs` (slot, publication, pgoutput
//!   stream) and `pgoutput.rs` (the message decoder);
//! - `mysql/`: the catalog, `binlog.rs` (row events) and `binlog_ddl.rs`
//!   (DDL read from query events);
//! - `sqlite/`: the catalog and `changes.rs` (barge's trigger-fed change table).
//!
//! A [`Position`] is the source's own: each engine writes and compares
//! its positions ([`Position::compare`]).

pub mod capture;
pub mod changes;
pub mod copy_live;
pub mod mysql;
pub mod postgres;
pub mod records;
pub mod sqlite;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::source::capture::{Capture, Snapshot};
use crate::sink::BoxFuture;
use crate::cdc::Tables;
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Dialect, Position, QualifiedName, Schema, Table};
use crate::pack::rows::RawBlock;
use crate::transfer::{Batch, ReadSpec};

pub use changes::ChangeSource;

/// One table's size as the catalog has it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimate {
    pub rows: u64,
    /// The table's rows as stored, without its indexes: a pack carries
    /// rows and rebuilds indexes at the target, so this is the estimate of
    /// what moves.
    pub bytes: u64,
    /// Its indexes, shown beside `bytes` (None where the catalog is silent).
    pub index_bytes: Option<u64>,
    /// `rows` was counted, not taken from statistics (so 0 means empty,
    /// not "never analyzed").
    pub rows_counted: bool,
}

/// The smallest and largest value of an integer key, and the table's
/// estimated rows: what a table is split into chunks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBounds {
    pub lo: i64,
    pub hi: i64,
    pub rows: u64,
}

/// How one table is read: a SELECT in the source's dialect, and where the
/// engine has a faster whole-table form (PostgreSQL `COPY table (cols)`),
/// that statement.
#[derive(Debug, Clone)]
pub struct TableRead {
    pub name: String,
    pub spec: ReadSpec,
    pub copy: Option<String>,
}

/// A source database, one connection. Futures are boxed per call (per
/// table or chunk, never per row).
pub trait Source: Send {
    fn dialect(&self) -> Dialect;

    /// The catalog as the schema model.
    fn discover(&mut self) -> BoxFuture<'_, Result<Schema>>;

    /// Rows and bytes from the catalog's statistics.
    fn estimate<'a>(&'a mut self, t: &'a Table) -> BoxFuture<'a, Result<Estimate>>;

    /// Where [`Source::estimate`]'s bytes come from, for a report.
    fn estimated_from(&self) -> &'static str;

    /// The whole database's size where the per-table figures are missing
    /// (SQLite built without `dbstat`): bytes, and where they come from.
    fn whole_size(&mut self) -> BoxFuture<'_, Result<Option<(u64, &'static str)>>> {
        Box::pin(async { Ok(None) })
    }

    /// min and max of the integer key column `key` (quoted) of `table`
    /// (its SQL name), and an estimated row count from the statistics
    /// where there are any (a `COUNT(*)` would scan the table just to
    /// plan). `None` for an empty table.
    fn key_bounds<'a>(&'a mut self, table: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<KeyBounds>>>;

    /// Opens the read-only snapshot the following reads see; `exported`:
    /// a snapshot exported by the change capture, to import (PostgreSQL).
    fn begin_snapshot<'a>(&'a mut self, exported: Option<&'a str>) -> BoxFuture<'a, Result<()>>;

    /// Reads one table (or chunk) into `tx`; returns rows read.
    fn read<'a>(&'a mut self, job: &'a TableRead, tx: mpsc::Sender<Batch>) -> BoxFuture<'a, Result<u64>>;

    /// Whether [`Source::read_packed`] can read this table; otherwise it
    /// is read with [`Source::read`].
    fn reads_packed(&self, _job: &TableRead) -> bool {
        false
    }

    /// Reads one table straight into packed blocks (`barge-rows/1`, what
    /// `barge pack` stores) without building values.
    fn read_packed<'a>(&'a mut self, job: &'a TableRead, _tx: mpsc::Sender<RawBlock>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { Err(Error::other(format!("table {}: this source cannot read packed rows", job.name))) })
    }

    /// Ends the snapshot.
    fn finish(&mut self) -> BoxFuture<'_, Result<()>>;
}

/// The source side of a connection the caller already holds.
pub fn of(db: &mut Db) -> &mut dyn Source {
    match db {
        Db::Postgres(c) => c,
        Db::Mysql(c) => c,
        Db::Sqlite(c) => c,
    }
}

/// Connects to a source database.
pub async fn open(ep: &Endpoint) -> Result<Box<dyn Source>> {
    Ok(match Db::connect(ep, Role::Source).await? {
        Db::Postgres(c) => Box::new(c),
        Db::Mysql(c) => Box::new(c),
        Db::Sqlite(c) => Box::new(c),
    })
}

/// A source connection inside the change capture's snapshot when there
/// is one (`snapshot`, from [`crate::source::capture::begin_consistent`]),
/// else in a snapshot of its own. MySQL/MariaDB hand over a connection
/// already inside theirs; PostgreSQL names one to import. Keep the
/// returned [`Snapshot`] until the reads are done: it holds the
/// exporting session, and so the snapshot, alive.
pub async fn join_snapshot(ep: &Endpoint, snapshot: Option<Snapshot>) -> Result<(Box<dyn Source>, Option<Snapshot>)> {
    match snapshot {
        Some(Snapshot::Mysql(mut conns)) if !conns.is_empty() => Ok((Box::new(conns.swap_remove(0)), None)),
        hold => {
            let mut s = open(ep).await?;
            s.begin_snapshot(hold.as_ref().and_then(|h| h.pg_name())).await?;
            Ok((s, hold))
        }
    }
}

/// Opens the change stream of `src` at `from`.
pub async fn open_changes(src: &Endpoint, capture: &Capture, from: &Position, tables: Arc<Tables>, copied: HashMap<QualifiedName, Position>, poll: Duration, timeout: Duration) -> Result<Box<dyn ChangeSource>> {
    match (src, from) {
        (Endpoint::Postgres(ep), Position::PgLsn { lsn }) => {
            let slot = capture.slot.as_deref().ok_or_else(|| Error::usage("no replication slot is known for this task; give --slot"))?;
            let publication = capture.publication.as_deref().unwrap_or(slot);
            Ok(Box::new(postgres::wal::PgSource::open(ep, slot, publication, *lsn, tables, timeout).await?))
        }
        (Endpoint::Mysql(ep), Position::MysqlBinlog { file, pos }) => Ok(Box::new(mysql::binlog::MysqlSource::open(ep, file, *pos, tables, copied, timeout).await?)),
        (Endpoint::Sqlite(ep), Position::SqliteSeq { seq }) => Ok(Box::new(sqlite::changes::SqliteSource::open(ep, *seq, tables, poll).await?)),
        (_, p) => Err(Error::usage(format!("position {p} does not belong to a {:?} source", src.kind()))),
    }
}

/// Adds `tables` to a running capture (PostgreSQL: the publication, and
/// a FULL replica identity where a table has no key); returns the replica
/// identities changed, for `barge cleanup` to restore. Other sources
/// capture every table already.
pub async fn capture_more(src: &Endpoint, capture: &Capture, tables: &[Table]) -> Result<Vec<postgres::wal::ReplicaIdentity>> {
    match (src, capture.publication.as_deref().or(capture.slot.as_deref())) {
        (Endpoint::Postgres(ep), Some(publication)) => postgres::wal::capture_tables(ep, publication, tables).await,
        _ => Ok(Vec::new()),
    }
}

/// Keeps an idle source's log moving while changes are captured
/// (PostgreSQL: a slot on a quiet database holds WAL until something is
/// written); `None` where the source needs nothing, or `every` is zero.
pub fn heartbeat(src: &Endpoint, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
    match src {
        Endpoint::Postgres(ep) if !every.is_zero() => Some(tokio::spawn(postgres::wal::heartbeat(ep.clone(), every))),
        _ => None,
    }
}

/// Tables created and dropped at the source, for a source whose change
/// stream does not carry CREATE and DROP TABLE (PostgreSQL); `None` for
/// the others, whose stream does.
pub async fn tables_outside_the_stream(
    src: &Endpoint,
    converter: &crate::cdc::evolve::Converter,
    known: &Tables,
    stopped: &BTreeMap<QualifiedName, String>,
) -> Result<Option<postgres::wal::CatalogCheck>> {
    match src {
        Endpoint::Postgres(ep) => postgres::wal::check_catalog(ep, converter, known, stopped).await.map(Some),
        _ => Ok(None),
    }
}

/// Whether the replication slot `slot` still exists (true for sources
/// without slots).
pub async fn slot_exists(src: &Endpoint, slot: &str) -> Result<bool> {
    match src {
        Endpoint::Postgres(ep) => postgres::wal::slot_exists(ep, slot).await,
        _ => Ok(true),
    }
}

/// Positions order as their source says; positions of different sources
/// do not compare. A full load's rows ([`Position::Snapshot`]) come
/// before any log position.
impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Position) -> Option<Ordering> {
        use Position::*;
        match (self, other) {
            (Snapshot, Snapshot) => Some(Ordering::Equal),
            (Snapshot, _) => Some(Ordering::Less),
            (_, Snapshot) => Some(Ordering::Greater),
            (PgLsn { lsn: a }, PgLsn { lsn: b }) => Some(a.cmp(b)),
            (MysqlBinlog { file: fa, pos: pa }, MysqlBinlog { file: fb, pos: pb }) => mysql::binlog::compare((fa, *pa), (fb, *pb)),
            (SqliteSeq { seq: a }, SqliteSeq { seq: b }) => Some(a.cmp(b)),
            (Shards { offsets: a }, Shards { offsets: b }) => compare_shards(a, b),
            _ => None,
        }
    }
}

/// One offset per shard: a position is at or past another only when
/// each of its shards is; a shard one of them lacks (new after a
/// reshard) counts as not read yet.
fn compare_shards(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Option<Ordering> {
    // Decimal offsets of any length, compared as numbers.
    fn offset(o: Option<&String>) -> Option<(usize, &str)> {
        o.map(|o| {
            let digits = o.trim_start_matches('0');
            (digits.len(), digits)
        })
    }
    let mut order = Ordering::Equal;
    for shard in a.keys().chain(b.keys()) {
        match (order, offset(a.get(shard)).cmp(&offset(b.get(shard)))) {
            (_, Ordering::Equal) => {}
            (Ordering::Equal, o) => order = o,
            (prev, o) if prev != o => return None,
            _ => {}
        }
    }
    Some(order)
}

/// Which keys identify a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// The primary key only (what changes are matched on).
    Primary,
    /// The primary key, else the first unique key over NOT NULL columns
    /// (what validation pairs rows by).
    PrimaryOrUnique,
}

/// The columns that identify `t`'s rows, by name; empty when it has no
/// such key. The one place this choice is made.
pub fn key_columns(t: &Table, choice: KeyChoice) -> Vec<String> {
    if let Some(pk) = &t.primary_key {
        return pk.columns.clone();
    }
    if choice == KeyChoice::PrimaryOrUnique {
        if let Some(u) = t.uniques.iter().find(|u| u.columns.iter().all(|c| t.column(c).is_some_and(|c| !c.nullable))) {
            return u.columns.clone();
        }
    }
    Vec::new()
}

/// Where each of `key` sits among `columns` (names compared without
/// case); `None` when one of them is not there.
pub fn key_positions<'a>(key: &[String], columns: impl Iterator<Item = &'a str> + Clone) -> Option<Vec<usize>> {
    key.iter().map(|k| columns.clone().position(|c| c.eq_ignore_ascii_case(k))).collect()
}

/// The primary key's positions in `t.columns`; empty without a key (the
/// row is then matched on every column).
pub fn key_indexes(t: &Table) -> Vec<usize> {
    key_positions(&key_columns(t, KeyChoice::Primary), t.columns.iter().map(|c| c.name.as_str())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, ColumnType, Key};

    fn table() -> Table {
        let mut t = Table::new(QualifiedName::new(None, "t"));
        for (n, nullable) in [("ID", false), ("code", false), ("note", true)] {
            let mut c = Column::new(n, ColumnType::Int { bits: 32, unsigned: false }, "integer");
            c.nullable = nullable;
            t.columns.push(c);
        }
        t
    }

    #[test]
    fn the_key_is_the_primary_key_else_a_not_null_unique() {
        let mut t = table();
        assert!(key_indexes(&t).is_empty());
        t.uniques.push(Key { name: None, columns: vec!["note".into()] });
        assert!(key_columns(&t, KeyChoice::PrimaryOrUnique).is_empty(), "a nullable unique key does not identify rows");
        t.uniques.push(Key { name: None, columns: vec!["code".into()] });
        assert_eq!(key_columns(&t, KeyChoice::PrimaryOrUnique), vec!["code"]);
        assert!(key_columns(&t, KeyChoice::Primary).is_empty());
        t.primary_key = Some(Key { name: None, columns: vec!["code".into(), "id".into()] });
        assert_eq!(key_indexes(&t), vec![1, 0]);
        assert_eq!(key_positions(&["gone".into()], t.columns.iter().map(|c| c.name.as_str())), None);
    }

    fn p(s: &str) -> Position {
        s.parse().unwrap()
    }

    #[test]
    fn each_source_orders_its_own_positions() {
        assert!(p("pg:16/B374D848") < p("pg:17/0"));
        assert!(p("mysql:b.000002:10") < p("mysql:b.000010:1"));
        // Past six digits the file names no longer sort as text.
        assert!(p("mysql:b.999999:900") < p("mysql:b.1000000:4"));
        assert_eq!(p("mysql:a.000001:4").partial_cmp(&p("mysql:b.000001:4")), None, "another log's files");
        assert!(p("sqlite:9") < p("sqlite:10"));
        assert!(p("snapshot") < p("sqlite:0"));
        assert_eq!(p("pg:0/1").partial_cmp(&p("sqlite:1")), None, "different sources do not compare");
        assert!(p("pg:0/1").partial_cmp(&p("sqlite:1")).is_none() && p("sqlite:1").partial_cmp(&p("pg:0/1")).is_none());
    }

    #[test]
    fn a_sharded_position_is_past_another_only_in_every_shard() {
        assert!(p("shards:0=5,1=7") < p("shards:0=5,1=8"));
        assert!(p("shards:0=5,1=7") == p("shards:0=5,1=7"));
        assert_eq!(p("shards:0=6,1=7").partial_cmp(&p("shards:0=5,1=8")), None);
        // Numbers, not text; and a shard created later is not read yet.
        assert!(p("shards:s=99999999999999999999") < p("shards:s=100000000000000000000"));
        assert!(p("shards:s=1") < p("shards:s=1,t=0"));
        assert!(p("shards:0=5,1=8").partial_cmp(&p("shards:0=6,1=7")).is_none());
    }
}
