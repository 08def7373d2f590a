//! `barge migrate` options for file and stream targets (s3://, file://,
//! kinesis://, kafka://, sqs://).

use std::time::Duration;

use clap::Args;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sink::{Compression, EnvelopeKind, FileFormat, PartitionKey, SinkOptions};

#[derive(Debug, Args)]
#[command(next_help_heading = "File and stream targets (s3://, file://, kinesis://, kafka://, sqs://)")]
pub struct SinkArgs {
    /// File format [default: csv]
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// File compression; for Parquet, of its column chunks [default: none; snappy for parquet]
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Write a file once its buffer holds this many megabytes (uncompressed) ...
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub buffer_size: u64,
    /// ... or has been open this many seconds, whichever comes first
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub buffer_interval: u64,
    /// Give full-load files the Op column too (as CDC files have it), like DMS's IncludeOpForFullLoad
    #[arg(long)]
    pub include_op_for_full_load: bool,
    /// CDC writes inserts only (DMS's CdcInsertsOnly): updates and deletes are counted and left out
    #[arg(long)]
    pub cdc_inserts_only: bool,
    /// Add a column NAME to files holding each record's deterministic id, for de-duplication
    #[arg(long, value_name = "NAME")]
    pub record_id_column: Option<String>,
    /// CSV files without the header line (written, or read from s3:// and file:// sources: fields in --schema's column order)
    #[arg(long)]
    pub no_header: bool,
    /// Partition key of stream records: the row's primary key, or schema.table
    #[arg(long, value_enum, default_value_t = PartitionKey::PrimaryKey)]
    pub partition_key: PartitionKey,
    /// Kinesis: pack records into KPL aggregated records (KCL consumers de-aggregate them)
    #[arg(long)]
    pub aggregate: bool,
    /// Kafka: a topic per table, e.g. 'cdc.{schema}.{table}' (the topics must exist) [default: the URL's topic]
    #[arg(long, value_name = "PATTERN")]
    pub topic_pattern: Option<String>,
    /// Kafka and SQS: the message shape (a stream source without --schema into a stream passes its records through raw, on Kinesis too)
    #[arg(long, value_enum, default_value_t = EnvelopeKind::Dms)]
    pub envelope: EnvelopeKind,
    /// Files: put each record's file below the table in a partition named from its time and fields, in Firehose's syntax: 'year=!{timestamp:%Y}/month=!{timestamp:%m}/device=!{field:device_id}' (the commit or arrival time in UTC, strftime; a column, or a.b for a key inside JSON column a). Values are percent-encoded so none leaves its segment; NULL, missing and empty values go to __HIVE_DEFAULT_PARTITION__
    #[arg(long, value_name = "TEMPLATE")]
    pub partition_by: Option<String>,
    /// Files with --partition-by: buffers open at once; opening one more first writes the oldest [default: 100]
    #[arg(long, value_name = "N")]
    pub max_open_partitions: Option<usize>,
    /// SQS FIFO queues: the message group is this column's value (its changes stay in order) [default: the table and the row's key]
    #[arg(long, value_name = "COLUMN")]
    pub group_by: Option<String>,
    /// SQS: messages over the queue's MaximumMessageSize go to this S3 prefix, and the message carries the SQS Extended Client's pointer to it
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub payload_bucket: Option<String>,
    /// Give up on a throttled stream after retrying this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub retry_timeout: u64,
}

impl SinkArgs {
    /// The options for `target`; refuses options that do not apply to it.
    pub fn options(&self, target: &Endpoint, source: &Endpoint) -> Result<SinkOptions> {
        // Each destination's registry line lists the flags it takes.
        let takes = crate::sink::connector(target).map(|c| c.flags).unwrap_or(&[]);
        let given = [
            ("format", self.format.is_some()),
            ("compression", self.compression.is_some()),
            ("record-id-column", self.record_id_column.is_some()),
            ("aggregate", self.aggregate),
            ("topic-pattern", self.topic_pattern.is_some()),
            ("envelope", self.envelope != EnvelopeKind::Dms),
            ("partition-by", self.partition_by.is_some()),
            ("max-open-partitions", self.max_open_partitions.is_some()),
            ("group-by", self.group_by.is_some()),
            ("payload-bucket", self.payload_bucket.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(flag, set)| *set && !takes.contains(flag)) {
            let schemes: Vec<String> = crate::sink::schemes_taking(flag).iter().map(|s| format!("{s}://")).collect();
            return Err(Error::usage(format!("--{flag} applies to {} targets, not to {target}", schemes.join(" and "))));
        }
        if self.buffer_size == 0 {
            return Err(Error::usage("--buffer-size must be at least 1 (MB)"));
        }
        if let Some(p) = &self.topic_pattern {
            if !p.contains("{table}") {
                return Err(Error::usage(format!("--topic-pattern `{p}` has no {{table}}: every table would share one topic; leave the option out for that")));
            }
        }
        if self.max_open_partitions.is_some() && self.partition_by.is_none() {
            return Err(Error::usage("--max-open-partitions limits the buffers of --partition-by; give --partition-by too"));
        }
        if self.envelope == EnvelopeKind::Raw && !crate::source::records::is_record_source(source) {
            return Err(Error::usage(format!("--envelope raw passes a stream's records through as they came; {source} is a database: its rows and changes go out as dms or debezium")));
        }
        if self.max_open_partitions == Some(0) {
            return Err(Error::usage("--max-open-partitions must be at least 1"));
        }
        let partition_by = match &self.partition_by {
            Some(t) => Some(std::sync::Arc::new(t.parse().map_err(|e: String| Error::usage(format!("--partition-by {e}")))?)),
            None => None,
        };
        let format = self.format.unwrap_or(FileFormat::Csv);
        Ok(SinkOptions {
            format,
            compression: self.compression.unwrap_or(if format == FileFormat::Parquet { Compression::Snappy } else { Compression::None }),
            buffer_bytes: (self.buffer_size as usize).saturating_mul(1 << 20),
            buffer_interval: Duration::from_secs(self.buffer_interval.max(1)),
            include_op_for_full_load: self.include_op_for_full_load,
            cdc_inserts_only: self.cdc_inserts_only,
            record_id_column: self.record_id_column.clone(),
            csv_header: !self.no_header,
            partition_key: self.partition_key,
            aggregate: self.aggregate,
            topic_pattern: self.topic_pattern.clone(),
            envelope: self.envelope,
            default_schema: default_schema(source),
            retry_timeout: Duration::from_secs(self.retry_timeout),
            partition_by,
            max_open_partitions: self.max_open_partitions.unwrap_or(100),
            group_by: self.group_by.clone(),
            payload_bucket: self.payload_bucket.clone(),
        })
    }
}

/// The schema name for paths and metadata when the source has none:
/// MySQL's database, SQLite's `main`, PostgreSQL's `public`.
fn default_schema(source: &Endpoint) -> String {
    match source {
        Endpoint::Mysql(e) => e.database.clone().unwrap_or_else(|| "mysql".into()),
        Endpoint::Sqlite(_) => "main".into(),
        _ => "public".into(),
    }
}
