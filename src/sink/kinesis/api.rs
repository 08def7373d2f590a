//! A thin Kinesis Data Streams client over the signed AWS JSON client
//! ([`crate::sink::shared::aws_json`], which SQS shares). It does the calls barge
//! needs (ListShards and PutRecords to write; ListShards, GetShardIterator
//! and GetRecords to read) at a small fraction of the AWS SDK's build cost.
//!
//! Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; the region from `?region=`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`; the endpoint from `?endpoint=`,
//! `AWS_ENDPOINT_URL_KINESIS` or `AWS_ENDPOINT_URL`, else AWS's. Neither
//! the secret nor the signature is ever logged.

use crate::endpoint::StreamEndpoint;
use crate::error::Result;
pub use crate::sink::shared::aws_json::ApiError;
use crate::sink::shared::aws_json::{AwsJson, Service};

static KINESIS: Service = Service { name: "kinesis", target: "Kinesis_20131202", content_type: "application/x-amz-json-1.1", endpoint_var: "AWS_ENDPOINT_URL_KINESIS" };

pub struct KinesisApi {
    api: AwsJson,
    pub display: String,
}

impl KinesisApi {
    pub fn new(e: &StreamEndpoint) -> Result<KinesisApi> {
        Ok(KinesisApi { api: AwsJson::new(&KINESIS, &e.options, &e.display)?, display: e.display.clone() })
    }

    /// One API call: `action` (e.g. `PutRecords`) with a JSON body.
    pub async fn call(&self, action: &str, body: &serde_json::Value) -> std::result::Result<serde_json::Value, ApiError> {
        self.api.call(action, body).await
    }

    /// One API call whose answer is read into `T` (large answers, such as
    /// GetRecords', skip the generic JSON tree).
    pub async fn call_as<T: serde::de::DeserializeOwned>(&self, action: &str, body: &serde_json::Value) -> std::result::Result<T, ApiError> {
        self.api.call_as(action, body).await
    }

    /// The hash ranges of the stream's open shards, sorted.
    pub async fn open_shards(&self, stream: &str) -> std::result::Result<Vec<(u128, u128)>, ApiError> {
        // A shard closed by a reshard takes no more records.
        let mut out: Vec<(u128, u128)> = self.list_shards(stream).await?.into_iter().filter(|s| s.ending_sequence.is_none()).filter_map(|s| s.hash_range).collect();
        out.sort();
        Ok(out)
    }

    /// Every shard of the stream ListShards returns: open ones, and closed
    /// ones still within the retention period, with their parents.
    pub async fn list_shards(&self, stream: &str) -> std::result::Result<Vec<ShardDesc>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = match &token {
                Some(t) => serde_json::json!({ "NextToken": t }),
                None => serde_json::json!({ "StreamName": stream }),
            };
            let page: ListShardsPage = self.call_as("ListShards", &body).await?;
            out.extend(page.shards.into_iter().map(|s| ShardDesc {
                id: s.shard_id,
                parent: s.parent_shard_id,
                adjacent_parent: s.adjacent_parent_shard_id,
                ending_sequence: s.sequence_number_range.ending_sequence_number,
                hash_range: s.hash_key_range.and_then(|r| Some((r.starting_hash_key.parse().ok()?, r.ending_hash_key.parse().ok()?))),
            }));
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// An iterator into `shard` at `start` (valid for five minutes).
    pub async fn shard_iterator(&self, stream: &str, shard: &str, start: &IteratorStart) -> std::result::Result<String, ApiError> {
        let mut body = serde_json::json!({ "StreamName": stream, "ShardId": shard });
        match start {
            IteratorStart::TrimHorizon => body["ShardIteratorType"] = "TRIM_HORIZON".into(),
            IteratorStart::Latest => body["ShardIteratorType"] = "LATEST".into(),
            IteratorStart::AtTimestamp(t) => {
                body["ShardIteratorType"] = "AT_TIMESTAMP".into();
                // The API takes seconds since the epoch as a JSON number;
                // at millisecond precision an f64 holds it exactly enough
                // to name the same millisecond.
                body["Timestamp"] = serde_json::json!(t.timestamp_millis() as f64 / 1000.0);
            }
            IteratorStart::AtSequence(n) => {
                body["ShardIteratorType"] = "AT_SEQUENCE_NUMBER".into();
                body["StartingSequenceNumber"] = n.as_str().into();
            }
            IteratorStart::AfterSequence(n) => {
                body["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER".into();
                body["StartingSequenceNumber"] = n.as_str().into();
            }
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "ShardIterator")]
            shard_iterator: String,
        }
        let a: Answer = self.call_as("GetShardIterator", &body).await?;
        Ok(a.shard_iterator)
    }

    /// Up to `limit` records from `iterator`.
    pub async fn get_records(&self, iterator: &str, limit: usize) -> std::result::Result<GetRecordsOutput, ApiError> {
        self.call_as("GetRecords", &serde_json::json!({ "ShardIterator": iterator, "Limit": limit })).await
    }
}

/// A shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardDesc {
    pub id: String,
    pub parent: Option<String>,
    pub adjacent_parent: Option<String>,
    /// Set once a reshard closed the shard: no record after it.
    pub ending_sequence: Option<String>,
    /// The partition-key hashes it takes (first, last).
    pub hash_range: Option<(u128, u128)>,
}

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtTimestamp(chrono::DateTime<chrono::Utc>),
    AtSequence(String),
    AfterSequence(String),
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListShardsPage {
    #[serde(default)]
    shards: Vec<ListedShard>,
    next_token: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedShard {
    shard_id: String,
    parent_shard_id: Option<String>,
    adjacent_parent_shard_id: Option<String>,
    sequence_number_range: SequenceRange,
    hash_key_range: Option<HashKeyRange>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HashKeyRange {
    starting_hash_key: String,
    ending_hash_key: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SequenceRange {
    ending_sequence_number: Option<String>,
}

/// What GetRecords answers.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    #[serde(default)]
    pub records: Vec<StreamRecord>,
    /// Absent once a closed shard is read to its end.
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: Option<u64>,
}

/// One Kinesis record as GetRecords returns it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRecord {
    pub sequence_number: String,
    pub partition_key: String,
    #[serde(deserialize_with = "base64_bytes")]
    pub data: Vec<u8>,
    /// Seconds since the epoch, with milliseconds.
    pub approximate_arrival_timestamp: Option<f64>,
}

impl StreamRecord {
    /// When the stream received it, to the millisecond it reports.
    pub fn arrival(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.approximate_arrival_timestamp.and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0).round() as i64))
    }
}

/// Decodes base64 text straight from the answer's bytes (no copy of the
/// text first: GetRecords answers run to megabytes).
fn base64_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    struct Base64;
    impl serde::de::Visitor<'_> for Base64 {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("base64 text")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Vec<u8>, E> {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).map_err(E::custom)
        }
    }
    d.deserialize_str(Base64)
}
