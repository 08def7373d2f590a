//! Destinations: where rows and changes go. Every one of them, a
//! database or not, implements [`Destination`]: a full load and a pack's
//! unpack hand it rows ([`Destination::write_rows`]), change capture hands
//! it changes ([`Destination::write_changes`]), and the source position
//! moves only as far as [`Destination::committed`] says is durable.
//!
//! One folder per destination, and one line for each in [`REGISTRY`]
//! (databases are opened from [`crate::endpoint`]'s own table):
//!
//! - [`postgres`], [`mysql`], [`sqlite`]: the engines' bulk writers (COPY,
//!   LOAD DATA, prepared inserts); [`db`] puts them behind one database
//!   destination, which also applies changes by a staged upsert.
//! - [`object`]: files in the layout of DMS's S3 target, buffered like
//!   Firehose (size or interval), written atomically; records that cannot
//!   be converted go under `errors/` with the reason.
//! - [`kinesis`]: the DMS Kinesis message shape, PutRecords batches, per-key
//!   order kept through retries, optional KPL aggregation.
//! - [`kafka`]: the same message (or a Debezium-style one) keyed by the
//!   primary key, ordered per partition.
//! - [`sqs`]: the same message on an SQS queue (standard or FIFO), in
//!   SendMessageBatch calls within the queue's size limit; larger payloads
//!   through S3 with the SQS Extended Client's pointer.
//! - [`null`]: discards everything and acknowledges it, for measuring a
//!   source.
//! - [`shared`]: what several of them use, once: records and their ids,
//!   envelopes, buffering, the position journal, compression, formats.
//!
//! Files and streams take a full load as inserts at
//! [`Position::Snapshot`], the same path changes take. Their delivery is
//! at least once; every record carries a deterministic id
//! ([`record::RecordIds`]) so consumers can drop duplicates.
//!
//! [`Position::Snapshot`]: crate::model::Position::Snapshot

pub mod db;
pub mod mysql;
pub mod null;
pub mod postgres;
pub mod shared;
pub mod sqlite;
pub use shared::{buffer, compress, envelope, format, journal, record, retry};
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "kinesis")]
pub use kinesis::{api as kinesis_api, kpl};
pub mod object;
pub use object::store;
pub mod sqs;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cdc::destination::TableChange;
use crate::cdc::{TableInfo, Tables};
use crate::endpoint::{EngineKind, Endpoint, Scheme};
use crate::error::{Error, Result};
use crate::model::{ChangeBatch, ColumnType, Position, QualifiedName, RowBatch};
use crate::progress::Task;
use crate::schema::target::TargetTable;
use crate::transfer::{RowPolicy, WriteSpec};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a destination can do, asked before rows or changes go to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// It has tables of its own, which a load creates, keys and analyzes
    /// (a database); files and streams take the source's layout as is.
    pub tables: bool,
    /// A PostgreSQL COPY stream goes in as it comes out of a PostgreSQL
    /// source, unparsed.
    pub copy_passthrough: bool,
    /// A batch of changes lands in one transaction with its position, so
    /// delivery is exactly once in effect.
    pub transactions: bool,
    /// Changes are applied by key (upsert, keyed delete), idempotently.
    pub keyed_upsert: bool,
    /// Changes to one key arrive in source order.
    pub ordered: bool,
    /// `write_changes` may return before the changes are durable; the
    /// source is then only told [`Destination::committed`]'s position.
    pub buffers: bool,
    /// Takes one writer at a time (SQLite).
    pub one_writer: bool,
}

/// One table's rows as [`Destination::write_rows`] gets them.
#[derive(Debug, Clone)]
pub struct RowTable {
    /// The target table and its columns, in the order values arrive, and
    /// the key that names a row in errors (what a database writes).
    pub write: WriteSpec,
    /// The source table as the values arrive and where it lands (what
    /// files and streams write: the source's names and types). `None` for
    /// a database's own tables (staging).
    pub info: Option<TableInfo>,
}

/// A chunk an earlier attempt may have left half written, to clear
/// before it is loaded again.
#[derive(Debug, Clone)]
pub struct Redo {
    pub chunk: usize,
    /// The chunk's key range as a condition on the target's columns
    /// (`None`: the whole table).
    pub predicate: Option<String>,
    /// A PostgreSQL parent kept with its inheritance children: its own
    /// rows only.
    pub only: bool,
}

/// A destination of rows and changes (a database, object storage, a
/// stream, nothing). The source position only moves after the
/// destination says the data is durable, so a crash never loses a row or
/// a change; destinations without transactions deliver at least once.
pub trait Destination: Send {
    fn capabilities(&self) -> Capabilities;

    /// Writes a table's rows (a chunk of a full load, a table of a pack)
    /// as they come from `rows`, and makes them durable before it returns
    /// (a database in one COPY or transaction, so a chunk is all or
    /// nothing; files written, records acknowledged). Rows the target
    /// cannot take follow `policy` (`--on-error`). Returns rows written.
    /// Files and streams take each row as an insert change, as DMS writes
    /// a full load ([`rows_as_inserts`]); a database overrides this with
    /// its bulk writer.
    fn write_rows<'a>(&'a mut self, table: &'a RowTable, rows: mpsc::Receiver<RowBatch>, policy: &'a RowPolicy, progress: &'a Arc<dyn Task>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(rows_as_inserts(self, table, rows, policy, progress))
    }

    /// Makes `batch` durable (or, with [`Capabilities::buffers`], takes
    /// it). When it returns Ok, every change is stored or acknowledged
    /// and `batch.position` may be given back to the source.
    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>>;

    /// The position of the last batch made durable, if the destination
    /// records it (databases keep it in the same transaction as the data).
    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>>;

    /// Before a chunk is loaded again after a crash: removes what its
    /// earlier attempt may have left (a database deletes the chunk's key
    /// range, object storage the chunk's files; streams keep what they
    /// got: at least once).
    fn redo_chunk<'a>(&'a mut self, table: &'a RowTable, redo: &'a Redo) -> BoxFuture<'a, Result<()>> {
        let _ = (table, redo);
        Box::pin(async { Ok(()) })
    }

    /// Flushes anything buffered (files waiting for their size or interval).
    fn flush<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Called about once a second while changes are few or none: writes
    /// buffers whose interval has passed.
    fn tick<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Makes the destination follow a table's new definition: a database
    /// alters (or creates) the table; files and streams write what they
    /// hold first, so no file mixes two layouts, and then write the new
    /// columns.
    fn change_schema<'a>(&'a mut self, change: &'a TableChange) -> BoxFuture<'a, Result<()>> {
        let _ = change;
        self.flush()
    }

    /// The target table's column names now (`None`: it does not exist),
    /// where the destination has tables.
    fn table_columns<'a>(&'a mut self, table: &'a TargetTable) -> BoxFuture<'a, Result<Option<Vec<String>>>> {
        let _ = table;
        Box::pin(async { Ok(None) })
    }

    /// The database destination, for what only a database does (copying
    /// a whole table in while changes flow, COPY passthrough).
    fn as_db(&mut self) -> Option<&mut crate::sink::db::DbDestination> {
        None
    }

    /// The old name of [`Destination::write_changes`], kept for one step.
    fn apply<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        self.write_changes(tables, batch)
    }

    /// [`Capabilities::tables`], kept for one step.
    fn has_tables(&self) -> bool {
        self.capabilities().tables
    }

    /// [`Capabilities::buffers`], kept for one step.
    fn buffers(&self) -> bool {
        self.capabilities().buffers
    }
}

/// What opens a destination from its endpoint.
pub type OpenFn = for<'a> fn(&'a Endpoint, &'a SinkOptions, Scope, Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>>;

/// A destination that is not a database, as the registry lists it: its
/// URL scheme (parse, options), how to open it, what it can do, and
/// which `barge migrate` sink flags apply to it.
pub struct Connector {
    pub scheme: Scheme,
    pub open: OpenFn,
    pub capabilities: Capabilities,
    /// Long names of the sink flags it takes (`format`, `aggregate`, …);
    /// any other that is given is refused.
    pub flags: &'static [&'static str],
}

const OBJECT_FLAGS: &[&str] = &["format", "compression", "record-id-column", "no-header", "include-op-for-full-load", "cdc-inserts-only", "buffer-size", "buffer-interval", "partition-by", "max-open-partitions"];

/// The destinations that are not databases: one line each.
pub static REGISTRY: &[Connector] = &[
    Connector {
        scheme: Scheme { names: &["s3"], kind: EngineKind::S3, example: "s3://bucket/prefix", options: &["region", "endpoint"], parse: crate::endpoint::parse_s3 },
        open: object::open,
        capabilities: object::CAPABILITIES,
        flags: OBJECT_FLAGS,
    },
    Connector {
        scheme: Scheme { names: &["file"], kind: EngineKind::Dir, example: "file:///dir", options: &[], parse: crate::endpoint::parse_dir },
        open: object::open,
        capabilities: object::CAPABILITIES,
        flags: OBJECT_FLAGS,
    },
    Connector {
        scheme: Scheme { names: &["kinesis"], kind: EngineKind::Kinesis, example: "kinesis://stream?region=us-east-1", options: &["region", "endpoint", "deaggregate"], parse: crate::endpoint::parse_kinesis },
        open: open_kinesis,
        capabilities: Capabilities { ordered: true, ..Capabilities::NONE },
        flags: &["partition-key", "aggregate", "include-op-for-full-load", "cdc-inserts-only", "retry-timeout"],
    },
    Connector {
        scheme: Scheme { names: &["kafka"], kind: EngineKind::Kafka, example: "kafka://host:9092/topic", options: &["brokers", "tls", "sasl", "user", "topics"], parse: crate::endpoint::parse_kafka },
        open: open_kafka,
        capabilities: Capabilities { ordered: true, ..Capabilities::NONE },
        flags: &["partition-key", "topic-pattern", "envelope", "include-op-for-full-load", "cdc-inserts-only", "retry-timeout"],
    },
    sqs::CONNECTOR,
    null::CONNECTOR,
];

impl Capabilities {
    pub const NONE: Capabilities =
        Capabilities { tables: false, copy_passthrough: false, transactions: false, keyed_upsert: false, ordered: false, buffers: false, one_writer: false };
}

/// The registry's line for `endpoint`, if it is not a database.
pub fn connector(endpoint: &Endpoint) -> Option<&'static Connector> {
    let scheme = endpoint.scheme();
    REGISTRY.iter().find(|c| c.scheme.names.contains(&scheme))
}

/// The schemes whose destinations take a sink flag, for refusals.
pub fn schemes_taking(flag: &str) -> Vec<&'static str> {
    REGISTRY.iter().filter(|c| c.flags.contains(&flag)).map(|c| c.scheme.names[0]).collect()
}

fn open_kinesis<'a>(endpoint: &'a Endpoint, opts: &'a SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>> {
    Box::pin(async move {
        match endpoint {
            #[cfg(feature = "kinesis")]
            Endpoint::Kinesis(e) => Ok(Box::new(kinesis::KinesisSink::open(e, opts.clone(), scope, stats).await?) as Box<dyn Destination>),
            other => {
                let _ = (opts, scope, stats);
                Err(not_built(other))
            }
        }
    })
}

fn open_kafka<'a>(endpoint: &'a Endpoint, opts: &'a SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>> {
    Box::pin(async move {
        match endpoint {
            #[cfg(feature = "kafka")]
            Endpoint::Kafka(e) => Ok(Box::new(kafka::KafkaSink::open(e, opts.clone(), scope, stats).await?) as Box<dyn Destination>),
            other => {
                let _ = (opts, scope, stats);
                Err(not_built(other))
            }
        }
    })
}

/// Writes rows to a destination of changes: each row an insert at
/// [`Position::Snapshot`] (what DMS writes for a full load), the table's
/// rows flushed before this returns. Files and streams implement
/// [`Destination::write_rows`] with it.
pub async fn rows_as_inserts<D: Destination + ?Sized>(dest: &mut D, table: &RowTable, mut rows: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    let info = table.info.as_ref().ok_or_else(|| Error::other(format!("table {}: no source layout for a file or stream target", table.write.table)))?;
    let name = info.source.name.clone();
    let tables: Tables = [(name.clone(), info.clone())].into_iter().collect();
    let mut total = 0u64;
    while let Some(batch) = rows.recv().await {
        let mut changes = Vec::with_capacity(batch.rows.len());
        for mut row in batch.rows {
            if let Err((col, why)) = policy.prepare(&mut row, &table.write.columns, false) {
                postgres::reject(&table.write, policy, row, col, why)?;
                continue;
            }
            changes.push(crate::model::Change { table: name.clone(), op: crate::model::Op::Insert { row }, txid: None, commit_time: None, position: Position::Snapshot });
        }
        let n = changes.len() as u64;
        dest.write_changes(&tables, &ChangeBatch { changes, position: Some(Position::Snapshot) }).await?;
        total += n;
        policy.counters.add(n, batch.bytes as u64);
        progress.inc(n);
    }
    dest.flush().await?;
    Ok(total)
}

/// File format of object storage targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// RFC 4180 CSV with a header line
    Csv,
    /// One JSON object per line
    Jsonl,
    /// Apache Parquet (typed columns: exact decimals, timestamps with unit and zone)
    Parquet,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// Compression of the files (for Parquet: of its column chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    /// Snappy (the framing format for CSV and JSON lines, as Firehose writes it)
    Snappy,
}

/// What Kinesis records (and the DMS envelope) are partitioned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKey {
    /// The row's primary key: rows spread over shards, each row's changes in order
    PrimaryKey,
    /// schema.table: one table's changes all in order, on one shard
    SchemaTable,
}

impl PartitionKey {
    pub fn name(self) -> &'static str {
        match self {
            PartitionKey::PrimaryKey => "primary-key",
            PartitionKey::SchemaTable => "schema-table",
        }
    }
}

/// The shape of a stream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvelopeKind {
    /// DMS's: {"data": {...}, "metadata": {...}}
    Dms,
    /// Debezium's: {"before", "after", "op", "ts_ms", "source"}
    Debezium,
    /// A record source's records as they came: the payload is the
    /// message, the record's key its key (stream to stream).
    Raw,
}

/// Everything a sink needs to know besides its endpoint.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub format: FileFormat,
    pub compression: Compression,
    /// Firehose-style: a file is written when its buffer reaches this many
    /// bytes (uncompressed) ...
    pub buffer_bytes: usize,
    /// ... or has been open this long, whichever comes first.
    pub buffer_interval: Duration,
    /// Full-load files get the `Op` column too (DMS IncludeOpForFullLoad).
    pub include_op_for_full_load: bool,
    /// CDC writes inserts only (DMS CdcInsertsOnly); updates and deletes are counted and skipped.
    pub cdc_inserts_only: bool,
    /// Adds a column with each record's deterministic id to files.
    pub record_id_column: Option<String>,
    pub csv_header: bool,
    pub partition_key: PartitionKey,
    /// Kinesis: KPL aggregation.
    pub aggregate: bool,
    /// Kafka: topic per table, e.g. `cdc.{schema}.{table}`.
    pub topic_pattern: Option<String>,
    pub envelope: EnvelopeKind,
    /// The schema name used in paths and metadata for tables whose source has
    /// none (SQLite: `main`; MySQL: the database).
    pub default_schema: String,
    /// Stop retrying a throttled stream after this long.
    pub retry_timeout: Duration,
    /// Files: keys below the table by the record's fields and time (`--partition-by`).
    pub partition_by: Option<Arc<object::partition::Template>>,
    /// Files: buffers open at once with `--partition-by`; the oldest is written to open another.
    pub max_open_partitions: usize,
    /// SQS FIFO: the message group is this column's value (default: the
    /// table and the row's key).
    pub group_by: Option<String>,
    /// SQS: where messages over the queue's maximum size go
    /// (`s3://bucket/prefix`).
    pub payload_bucket: Option<String>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            format: FileFormat::Csv,
            compression: Compression::None,
            buffer_bytes: 64 << 20,
            buffer_interval: Duration::from_secs(60),
            include_op_for_full_load: false,
            cdc_inserts_only: false,
            record_id_column: None,
            csv_header: true,
            partition_key: PartitionKey::PrimaryKey,
            aggregate: false,
            topic_pattern: None,
            envelope: EnvelopeKind::Dms,
            default_schema: "public".into(),
            retry_timeout: Duration::from_secs(600),
            partition_by: None,
            max_open_partitions: 100,
            group_by: None,
            payload_bucket: None,
        }
    }
}

/// Which part of a run a sink instance writes: it decides file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The full load of one chunk of a table (files `LOAD<n>`).
    Load { chunk: usize },
    /// Change data capture (files named by time).
    Cdc,
}

/// What a run did to its sinks, shared by every sink instance of the run.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub records: AtomicU64,
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Records that could not be converted (written under `errors/`).
    pub errors: AtomicU64,
    /// Updates and deletes left out by `--cdc-inserts-only`.
    pub skipped: AtomicU64,
    /// Updates whose unchanged large values the source did not send, written
    /// as empty in formats with fixed columns.
    pub unchanged_unknown: AtomicU64,
    /// Stream calls that a throttle refused (in whole or in part).
    pub throttled_calls: AtomicU64,
    pub retried_records: AtomicU64,
}

impl SinkStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A column as sinks write it.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkColumn {
    pub name: String,
    pub ty: ColumnType,
}

/// How one source table lands in a sink: its path/metadata names and its
/// columns in the order values arrive (`TableInfo::source.columns`).
#[derive(Debug, Clone)]
pub struct SinkTable {
    pub source: QualifiedName,
    pub schema: String,
    pub name: String,
    pub columns: Vec<SinkColumn>,
    /// Indexes into `columns` of the key.
    pub key: Vec<usize>,
}

impl SinkTable {
    /// Output names come from the target plan (mapping rules may rename),
    /// types from the source: files and streams have no type system of
    /// their own to convert to.
    pub fn from_info(info: &TableInfo, default_schema: &str) -> SinkTable {
        let columns = info
            .source
            .columns
            .iter()
            .map(|c| SinkColumn { name: info.target.column_by_source(&c.name).map(|t| t.name.clone()).unwrap_or_else(|| c.name.clone()), ty: c.ty.clone() })
            .collect();
        let name = info.target.name.last().cloned().unwrap_or_else(|| info.source.name.name.clone());
        let schema = if info.target.name.len() > 1 { info.target.name[0].clone() } else { info.source.name.schema.clone().unwrap_or_else(|| default_schema.to_string()) };
        SinkTable { source: info.source.name.clone(), schema, name, columns, key: info.key.clone() }
    }

    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Layouts of the tables a sink has seen, built on first use, and again
/// when the table's definition changed at the source (DDL during change
/// capture: the records after it have the new columns).
#[derive(Default)]
pub struct Layouts {
    /// Each table's layout, and the source columns it was built from.
    by_name: HashMap<QualifiedName, (Arc<SinkTable>, SourceColumns)>,
}

type SourceColumns = Vec<(String, ColumnType)>;

impl Layouts {
    pub fn get(&mut self, tables: &crate::cdc::Tables, name: &QualifiedName, default_schema: &str) -> Result<Arc<SinkTable>> {
        let info = tables.get(name).ok_or_else(|| Error::other(format!("a change for table {name}, which the run does not know")))?;
        if let Some((t, columns)) = self.by_name.get(name) {
            let same = columns.len() == info.source.columns.len() && columns.iter().zip(&info.source.columns).all(|((n, ty), c)| *n == c.name && *ty == c.ty);
            if same {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(SinkTable::from_info(info, default_schema));
        let columns = info.source.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect();
        self.by_name.insert(name.clone(), (t.clone(), columns));
        Ok(t)
    }
}

/// Opens the destination an endpoint names, from [`REGISTRY`].
pub async fn open(endpoint: &Endpoint, opts: &SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Result<Box<dyn Destination>> {
    match connector(endpoint) {
        Some(c) => (c.open)(endpoint, opts, scope, stats).await,
        None => Err(not_built(endpoint)),
    }
}

/// The error for an endpoint kind this build of barge leaves out.
pub fn not_built(e: &Endpoint) -> Error {
    let feature = match e.kind() {
        crate::endpoint::EngineKind::S3 => "s3",
        crate::endpoint::EngineKind::Kinesis => "kinesis",
        crate::endpoint::EngineKind::Kafka => "kafka",
        _ => return Error::usage(format!("{e} is not a file or stream target")),
    };
    Error::Usage(format!("this barge was built without the `{feature}` feature, so it cannot write to {e}"))
}

/// Makes ring rustls's process-wide provider (barge builds no other), for
/// the HTTPS clients of S3 and Kinesis.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
