//! Destinations that are not databases: object storage (`s3://`,
//! `file://`) and streams (`kinesis://`, `kafka://`). Each one implements
//! [`Destination`], so a full load (inserts at [`Position::Snapshot`]) and
//! change data capture reach them through the same code.
//!
//! - [`object`]: files in the layout of DMS's S3 target, buffered like
//!   Firehose (size or interval), written atomically; records that cannot
//!   be converted go under `errors/` with the reason.
//! - [`kinesis`]: the DMS Kinesis message shape, PutRecords batches, per-key
//!   order kept through retries, optional KPL aggregation ([`kpl`]).
//! - [`kafka`]: the same message (or a Debezium-style one) keyed by the
//!   primary key, ordered per partition.
//!
//! Delivery is at least once; every record carries a deterministic id
//! ([`record::RecordIds`]) so consumers can drop duplicates.
//!
//! [`Position::Snapshot`]: crate::model::Position::Snapshot

pub mod buffer;
pub mod compress;
pub mod envelope;
pub mod format;
pub mod journal;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "kinesis")]
pub mod kpl;
pub mod object;
pub mod record;
pub mod retry;
#[cfg(feature = "kinesis")]
pub mod kinesis_api;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cdc::{Destination, TableInfo};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{ColumnType, QualifiedName};

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

/// Opens the sink an endpoint names.
pub async fn open(endpoint: &Endpoint, opts: &SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Result<Box<dyn Destination>> {
    match endpoint {
        Endpoint::S3(_) | Endpoint::Dir(_) => {
            let target = store::ObjectTarget::open(endpoint)?;
            Ok(Box::new(object::ObjectSink::new(target, opts.clone(), scope, stats)))
        }
        #[cfg(feature = "kinesis")]
        Endpoint::Kinesis(e) => Ok(Box::new(kinesis::KinesisSink::open(e, opts.clone(), scope, stats).await?)),
        #[cfg(feature = "kafka")]
        Endpoint::Kafka(e) => Ok(Box::new(kafka::KafkaSink::open(e, opts.clone(), scope, stats).await?)),
        other => Err(not_built(other)),
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

/// Before a chunk is loaded again after a crash: removes what its earlier
/// attempt may have left (object storage rewrites the chunk's files;
/// streams deliver at least once and keep what they got).
pub async fn discard_chunk(endpoint: &Endpoint, table: &SinkTable, chunk: usize) -> Result<()> {
    match endpoint {
        Endpoint::S3(_) | Endpoint::Dir(_) => store::ObjectTarget::open(endpoint)?.discard_load_chunk(table, chunk).await,
        _ => Ok(()),
    }
}

/// Makes ring rustls's process-wide provider (barge builds no other), for
/// the HTTPS clients of S3 and Kinesis.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
