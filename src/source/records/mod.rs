//! Record sources: streams and files whose records become rows of one
//! table on any target (Kafka, Kinesis, SQS, MQTT, tailed log files,
//! files on S3 or disk). One folder or file per source, one line each in
//! [`open`].
//!
//! A [`RecordSource`] hands out [`RecordBatch`]es, each ending at a
//! [`Position`] (one offset per shard, partition or file), and forgets a
//! record only when [`RecordSource::acknowledge`] says the destination
//! made it durable. [`changes::RecordChanges`] turns the batches into the
//! inserts the change capture loop (`task::cdc`) already applies, so a
//! record source gets the same batching, checkpoints, restarts, status and
//! metrics as a database's change stream: the position moves only after
//! the destination's [`committed`](crate::sink::Destination::committed),
//! and a crash redelivers at most what was not acknowledged.
//!
//! [`shape::RecordShape`] decides what a record becomes: the default
//! layout (where it came from, and its payload), or the columns of a
//! table the user describes (`--schema FILE`), filled from JSON fields or
//! CSV fields.

pub mod changes;
pub mod envelope;
#[cfg(feature = "kinesis")]
pub mod kinesis;
pub mod mqtt;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod files;
mod files_feed;
pub mod infer;
pub mod leased;
#[cfg(feature = "parquet")]
mod files_parquet;
pub mod shape;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod tail;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Position;
use crate::sink::BoxFuture;

/// One record as its source delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The shard, partition or file it came from (the key of its offset in
    /// a [`Position::Shards`]).
    pub shard: String,
    /// Its own offset or sequence number in that shard, in decimal.
    pub offset: String,
    /// The stream's name for where it came from: a Kafka topic, an MQTT
    /// topic, a file's path, a Kinesis stream.
    pub stream: String,
    /// Its partition key or message key, if it has one.
    pub key: Option<Vec<u8>>,
    /// When the stream received it, where the stream says.
    pub time: Option<DateTime<Utc>>,
    pub data: Vec<u8>,
}

/// Records in the order they are to be applied, and where the source
/// resumes once they are durable.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub records: Vec<Record>,
    /// The source's position after these records: for every shard read so
    /// far (not only this batch's), where a restart reads on from.
    pub position: BTreeMap<String, String>,
}

/// Where a stream is read from when no position was saved for a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "from", content = "at")]
pub enum StartAt {
    /// The oldest record the stream still holds (Kinesis TRIM_HORIZON,
    /// Kafka `earliest`, a file's first line).
    #[default]
    Earliest,
    /// Only what arrives after the run starts.
    Latest,
    /// The first record the stream received at or after this time.
    Timestamp(DateTime<Utc>),
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            // `checkpoint`: the saved position, which every shard that has
            // one resumes from whatever this says; the others from earliest.
            "earliest" | "trim-horizon" | "trim_horizon" | "checkpoint" => Ok(StartAt::Earliest),
            "latest" => Ok(StartAt::Latest),
            _ => match s.strip_prefix("at-timestamp:") {
                Some(t) => DateTime::parse_from_rfc3339(t)
                    .map(|t| StartAt::Timestamp(t.with_timezone(&Utc)))
                    .map_err(|e| format!("`{t}` is not an RFC 3339 time ({e}); write at-timestamp:2026-12-01T00:00:00Z")),
                None => Err(format!("`{s}` is not a start position; write earliest (or trim-horizon), latest, at-timestamp:TIME or checkpoint")),
            },
        }
    }
}

/// What a record source is told when it opens.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Offsets saved by an earlier run, per shard (empty on the first run).
    pub from: BTreeMap<String, String>,
    /// Where shards without a saved offset start.
    pub start: StartAt,
    /// Where the source may keep what it needs between runs (a consumer
    /// name, a session id): the task's state directory.
    pub state_dir: std::path::PathBuf,
    /// A bounded run stops when every shard has nothing more
    /// (`--stop-at` end); an unbounded one waits for new records.
    pub follow: bool,
    /// What a record is (`--record-format`): sources that read files pick
    /// and parse their files by it.
    pub format: shape::RecordFormat,
    /// Rows with an `Op` column (CDC files) are applied as changes; else
    /// (the default layout stores records as they are) a files source
    /// refuses updates and deletes rather than store them as rows.
    pub changes: bool,
}

/// A stream or a set of files, read as records.
pub trait RecordSource: Send {
    /// The next records, in order per shard; `Ok(None)` when a bounded
    /// source has nothing more. An empty batch is allowed (nothing arrived
    /// within the source's poll), so the caller can tick.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>>;

    /// Every record up to `offsets` is durable at the destination: the
    /// source may now delete, acknowledge or commit them (SQS deletes,
    /// MQTT acknowledges, Kafka may commit its group offsets).
    fn acknowledge<'a>(&'a mut self, offsets: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        let _ = offsets;
        Box::pin(async { Ok(()) })
    }

    /// Whether dropping a pending `next` loses nothing, so the loop may
    /// hand over acknowledgements while it waits (a source whose server
    /// sends no more until it hears back, like MQTT, needs that).
    fn next_is_cancel_safe(&self) -> bool {
        false
    }

    /// The table `r` belongs to, as (schema, table), where the source's
    /// layout says so: files under `schema/table/` folders, as barge and
    /// DMS write them to S3.
    fn table_of(&self, r: &Record) -> Option<(Option<String>, String)> {
        let _ = r;
        None
    }

    /// Whether [`table_of`](RecordSource::table_of) is certain for `r`:
    /// a file barge or DMS wrote (LOAD… or named by time), whose folder is
    /// its table's, rather than any folder a user chose.
    fn names_its_table(&self, r: &Record) -> bool {
        let _ = r;
        false
    }

    /// Where `r` is, for a message about it (a files source names the
    /// file and line).
    fn describe(&self, r: &Record) -> String {
        format!("{} shard {} offset {}", r.stream, r.shard, r.offset)
    }
}

/// Record-only URL schemes: sources that are not also targets, parsed
/// like the registry's plain destinations (`sqs://` is both, and is in
/// the sink registry).
pub static SCHEMES: &[crate::endpoint::Scheme] = &[
    crate::endpoint::Scheme {
        names: &["tail"],
        kind: crate::endpoint::EngineKind::Sink,
        example: "tail:///var/log/app/*.log",
        options: &[],
        parse: |s| crate::endpoint::parse_plain(s, "tail", &[]),
    },
    crate::endpoint::Scheme { names: &["mqtt", "mqtts"], kind: crate::endpoint::EngineKind::Sink, example: mqtt::url::EXAMPLE, options: mqtt::url::OPTIONS, parse: mqtt::url::parse },
];

/// Whether `ep` is read as records (rather than as a database).
pub fn is_record_source(ep: &Endpoint) -> bool {
    match ep {
        Endpoint::Kafka(_) | Endpoint::Kinesis(_) | Endpoint::S3(_) | Endpoint::Dir(_) => true,
        Endpoint::Sink(s) => s.scheme == "sqs" || SCHEMES.iter().any(|sc| sc.names.contains(&s.scheme)),
        _ => false,
    }
}

/// A name for the table the records land in, from where they come.
pub fn default_table_name(ep: &Endpoint) -> String {
    let raw = match ep {
        Endpoint::Kafka(k) if k.topic.is_empty() => "records".into(),
        Endpoint::Kafka(k) => k.topic.clone(),
        Endpoint::Kinesis(k) => k.stream.clone(),
        Endpoint::S3(s) => s.prefix.rsplit('/').find(|p| !p.is_empty()).unwrap_or(&s.bucket).to_string(),
        Endpoint::Dir(d) => d.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "records".into()),
        Endpoint::Sink(s) if s.scheme == "sqs" => s.location.trim_end_matches(".fifo").to_string(),
        Endpoint::Sink(s) if s.scheme == "mqtt" || s.scheme == "mqtts" => mqtt::url::table_name(s),
        Endpoint::Sink(s) => {
            let path = std::path::Path::new(&s.location);
            let stem = path.file_stem().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            if stem.contains('*') || stem.is_empty() {
                path.parent().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "records".into())
            } else {
                stem
            }
        }
        _ => "records".into(),
    };
    let name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let name = name.trim_matches('_').to_string();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("records_{name}")
    } else {
        name
    }
}

/// Opens the record source `ep` names.
pub async fn open(ep: &Endpoint, opts: OpenOptions) -> Result<Box<dyn RecordSource>> {
    if let Some(peeked) = infer::take_peeked(ep, &opts) {
        return Ok(peeked);
    }
    match ep {
        Endpoint::Sink(s) if s.scheme == "tail" => Ok(Box::new(tail::TailSource::open(s, opts).await?)),
        #[cfg(feature = "sqs")]
        Endpoint::Sink(s) if s.scheme == "sqs" => Ok(Box::new(sqs::SqsSource::open(s, opts).await?)),
        #[cfg(feature = "kinesis")]
        Endpoint::Kinesis(k) => Ok(Box::new(kinesis::KinesisSource::open(k, opts).await?)),
        #[cfg(feature = "mqtt")]
        Endpoint::Sink(s) if s.scheme == "mqtt" || s.scheme == "mqtts" => Ok(Box::new(mqtt::MqttSource::open(s, opts).await?)),
        #[cfg(feature = "kafka")]
        Endpoint::Kafka(k) => Ok(Box::new(kafka::KafkaSource::open(k, opts).await?)),
        Endpoint::S3(_) | Endpoint::Dir(_) => Ok(Box::new(files::FilesSource::open(ep, opts).await?)),
        other => Err(Error::usage(format!("{other} cannot be read as records in this build of barge"))),
    }
}

/// The offsets of a position saved by an earlier run (empty for none).
pub fn saved_offsets(p: &Position) -> Result<BTreeMap<String, String>> {
    match p {
        Position::Shards { offsets } => Ok(offsets.as_ref().clone()),
        Position::Snapshot => Ok(BTreeMap::new()),
        other => Err(Error::usage(format!("position {other} does not belong to a record source; records resume from shards:SHARD=OFFSET,…"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_read_as_written() {
        assert_eq!("trim-horizon".parse::<StartAt>(), Ok(StartAt::Earliest));
        assert_eq!("latest".parse::<StartAt>(), Ok(StartAt::Latest));
        let t: StartAt = "at-timestamp:2026-12-01T10:00:00+01:00".parse().unwrap();
        assert_eq!(t, StartAt::Timestamp("2026-12-01T09:00:00Z".parse().unwrap()));
        assert!("at-timestamp:yesterday".parse::<StartAt>().unwrap_err().contains("RFC 3339"));
        assert!("oldest".parse::<StartAt>().is_err());
        assert_eq!("checkpoint".parse::<StartAt>(), Ok(StartAt::Earliest), "saved offsets win over any start");
    }

    #[test]
    fn the_table_is_named_after_the_stream() {
        let name = |u: &str| default_table_name(&Endpoint::parse(u).unwrap());
        assert_eq!(name("tail:///var/log/app/*.log"), "app");
        assert_eq!(name("tail:///var/log/app/access.log"), "access");
        assert_eq!(name("kafka://h:9092/Orders.v1"), "orders_v1");
        assert_eq!(name("kinesis://7days"), "records_7days");
        assert_eq!(name("kafka://h:9092/orders.*"), "orders");
        assert_eq!(name("kafka://h:9092/?topics=a,b"), "records");
    }
}
