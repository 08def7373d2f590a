//! `sqs://queue?region=&endpoint=`: messages of an SQS queue as records.
//!
//! ReceiveMessage with long polling, 10 messages a call; a message is
//! deleted (DeleteMessageBatch) only after the destination acknowledged
//! it, and while it waits its visibility timeout is extended, so a slow
//! target does not make SQS hand it to someone else. SQS has no offsets:
//! the position counts the messages received (`received=N`), and only
//! orders acknowledgements. A message's own offset is its MessageId (a
//! UUID, read as a 128-bit number), so a message SQS delivers twice (after
//! a crash before its delete, or an expired timeout) lands on the same
//! key of the default layout, once on a database target.
//!
//! FIFO queues (`.fifo`) keep order per message group: the group is the
//! record's shard and key. A body that is an extended-client pointer
//! (written by the AWS SQS Extended Client Library, or by barge's own SQS
//! target, for large payloads: [`crate::sink::sqs::pointer`]) is replaced
//! by the S3 object it points to. Message attributes are not carried:
//! the first message that has any is named in a warning.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use super::{OpenOptions, Record, RecordBatch, RecordSource, StartAt};
use crate::endpoint::SinkEndpoint;
use crate::error::{Error, Result};
use crate::sink::shared::aws_json::AwsJson;
use crate::sink::sqs::api::{self, api_error, SQS};
use crate::sink::sqs::pointer::S3Pointer;
use crate::sink::BoxFuture;

/// The position's one counter.
const RECEIVED: &str = "received";

struct Pending {
    count: u64,
    receipt: String,
    since: Instant,
}

pub struct SqsSource {
    api: Arc<AwsJson>,
    queue: String,
    queue_url: String,
    follow: bool,
    received: u64,
    pending: Arc<Mutex<Vec<Pending>>>,
    empty_receives: u32,
    extender: tokio::task::JoinHandle<()>,
    options: BTreeMap<String, String>,
    /// S3 clients for extended-client pointers, by bucket.
    #[cfg(feature = "s3")]
    stores: Mutex<std::collections::HashMap<String, crate::sink::store::ObjectTarget>>,
    /// Set once a message with attributes was named on the console.
    attributes_named: std::sync::atomic::AtomicBool,
}

impl Drop for SqsSource {
    fn drop(&mut self) {
        self.extender.abort();
    }
}

impl SqsSource {
    pub async fn open(ep: &SinkEndpoint, opts: OpenOptions) -> Result<SqsSource> {
        if opts.start != StartAt::Earliest {
            return Err(Error::usage(format!("{}: an SQS queue has no start position: it hands out what it holds", ep.display)));
        }
        let queue = api::queue_name(&ep.location, &ep.display)?;
        let api = Arc::new(AwsJson::new(&SQS, &ep.options, &ep.display)?);
        let queue_url = api::queue_url(&api, &queue).await?;
        let attrs = api::queue_attributes(&api, &queue_url, &["VisibilityTimeout"]).await?;
        let timeout: u64 = attrs["VisibilityTimeout"].as_str().and_then(|v| v.parse().ok()).unwrap_or(30);
        let received = match opts.from.get(RECEIVED) {
            Some(n) => n.parse().map_err(|_| Error::usage(format!("{}: saved position received={n} is not a count", ep.display)))?,
            None => 0,
        };
        let pending = Arc::new(Mutex::new(Vec::new()));
        let extender = tokio::spawn(extend_visibility(api.clone(), queue_url.clone(), pending.clone(), Duration::from_secs(timeout.max(3))));
        Ok(SqsSource {
            api,
            queue,
            queue_url,
            follow: opts.follow,
            received,
            pending,
            empty_receives: 0,
            extender,
            options: ep.options.clone(),
            #[cfg(feature = "s3")]
            stores: Mutex::new(Default::default()),
            attributes_named: Default::default(),
        })
    }

    async fn receive(&mut self) -> Result<Vec<Json>> {
        let body = json!({
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": if self.follow { 2 } else { 1 },
            "AttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        });
        let got = self.api.call("ReceiveMessage", &body).await.map_err(|e| api_error(&self.api.display, "ReceiveMessage", e))?;
        Ok(got["Messages"].as_array().cloned().unwrap_or_default())
    }

    async fn record(&self, m: &Json) -> Result<Record> {
        let id = m["MessageId"].as_str().unwrap_or_default();
        let attrs = &m["Attributes"];
        let group = attrs["MessageGroupId"].as_str().map(str::to_string);
        let time = attrs["SentTimestamp"].as_str().and_then(|t| t.parse::<i64>().ok()).and_then(DateTime::<Utc>::from_timestamp_millis);
        let body = m["Body"].as_str().unwrap_or_default();
        self.name_attributes(m, id);
        let data = match S3Pointer::parse(body) {
            Some(p) => self.fetch(&p.bucket, &p.key, id).await?,
            None => body.as_bytes().to_vec(),
        };
        Ok(Record { shard: group.clone().unwrap_or_else(|| "queue".into()), offset: message_offset(id), stream: self.queue.clone(), key: group.map(String::into_bytes), time, data })
    }

    /// Message attributes are not carried, and the message is deleted
    /// once its body landed: the first one that has any is named on the
    /// console, with their names (the extended client's own size
    /// attribute is not the sender's data).
    fn name_attributes(&self, m: &Json, id: &str) {
        let Some(attrs) = m["MessageAttributes"].as_object() else { return };
        let names: Vec<&str> = attrs.keys().map(String::as_str).filter(|n| !crate::sink::sqs::pointer::is_size_attribute(n)).take(8).collect();
        if !names.is_empty() && !self.attributes_named.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!("{}: message {id} has message attributes ({}), which barge does not carry; only its body lands before it is deleted, and so for every message after it", self.api.display, names.join(", "));
        }
    }

    /// The payload an extended-client pointer names.
    async fn fetch(&self, bucket: &str, key: &str, id: &str) -> Result<Vec<u8>> {
        #[cfg(feature = "s3")]
        {
            // One client per bucket for the run (each is an HTTPS client).
            let cached = self.stores.lock().unwrap_or_else(|e| e.into_inner()).get(bucket).cloned();
            let store = match cached {
                Some(s) => s,
                None => {
                    let mut url = format!("s3://{bucket}");
                    let query: Vec<String> = self.options.iter().map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC))).collect();
                    if !query.is_empty() {
                        url = format!("{url}?{}", query.join("&"));
                    }
                    let s = crate::sink::store::ObjectTarget::open(&crate::endpoint::Endpoint::parse(&url)?)?;
                    self.stores.lock().unwrap_or_else(|e| e.into_inner()).insert(bucket.to_string(), s.clone());
                    s
                }
            };
            let path = object_store::path::Path::from(key);
            let got = store.get(&path).await.map_err(|e| Error::other(format!("{}: message {id} points to s3://{bucket}/{key}, which cannot be read: {e}", self.api.display)))?;
            Ok(got.to_vec())
        }
        #[cfg(not(feature = "s3"))]
        {
            let _ = (bucket, key);
            Err(Error::usage(format!("{}: message {id} keeps its payload in S3, and this barge was built without the `s3` feature", self.api.display)))
        }
    }

    /// Deletes the messages up to `count`, 10 a call.
    async fn delete_through(&self, count: u64) -> Result<()> {
        let done: Vec<Pending> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let upto = pending.partition_point(|p| p.count <= count);
            let keep = pending.split_off(upto);
            std::mem::replace(&mut *pending, keep)
        };
        for chunk in done.chunks(10) {
            let entries: Vec<Json> = chunk.iter().map(|p| json!({ "Id": p.count.to_string(), "ReceiptHandle": p.receipt })).collect();
            let body = json!({ "QueueUrl": self.queue_url, "Entries": entries });
            let mut attempt = 0;
            let got = loop {
                match self.api.call("DeleteMessageBatch", &body).await {
                    Ok(got) => break got,
                    Err(e) if e.retriable && attempt < 5 => {
                        tokio::time::sleep(crate::util::retry::backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(api_error(&self.api.display, "DeleteMessageBatch", e)),
                }
            };
            for f in got["Failed"].as_array().into_iter().flatten() {
                // An expired receipt: SQS hands the message out again, and
                // its MessageId lands it on the same key.
                tracing::warn!("{}: could not delete a delivered message ({}: {}); SQS will deliver it again", self.api.display, f["Code"].as_str().unwrap_or("?"), f["Message"].as_str().unwrap_or(""));
            }
        }
        Ok(())
    }
}

/// A MessageId as a decimal offset: a UUID is its 128-bit number; any
/// other id, the first 16 bytes of its SHA-256.
fn message_offset(id: &str) -> String {
    if let Ok(u) = uuid::Uuid::parse_str(id) {
        return u.as_u128().to_string();
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(id.as_bytes());
    u128::from_be_bytes(h[..16].try_into().expect("16 bytes")).to_string()
}

/// Keeps received messages invisible while they wait for the destination:
/// every third of the visibility timeout, the ones older than that get a
/// full timeout again.
async fn extend_visibility(api: Arc<AwsJson>, queue_url: String, pending: Arc<Mutex<Vec<Pending>>>, timeout: Duration) {
    let every = timeout / 3;
    loop {
        tokio::time::sleep(every).await;
        let due: Vec<(u64, String)> = pending.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|p| p.since.elapsed() >= every).map(|p| (p.count, p.receipt.clone())).collect();
        for chunk in due.chunks(10) {
            let entries: Vec<Json> = chunk.iter().map(|(n, r)| json!({ "Id": n.to_string(), "ReceiptHandle": r, "VisibilityTimeout": timeout.as_secs() })).collect();
            match api.call("ChangeMessageVisibilityBatch", &json!({ "QueueUrl": queue_url, "Entries": entries })).await {
                Ok(_) => {
                    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                    for x in p.iter_mut().filter(|x| chunk.iter().any(|(n, _)| *n == x.count)) {
                        x.since = Instant::now();
                    }
                }
                Err(e) => tracing::warn!("{}: could not extend the visibility of messages waiting for the target ({e}); SQS may deliver them again", api.display),
            }
        }
    }
}

impl RecordSource for SqsSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(async move {
            let messages = self.receive().await?;
            if messages.is_empty() {
                // Messages still waiting for their acknowledgement may hold
                // back the rest of a FIFO group: only an empty queue ends.
                let waiting = !self.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
                self.empty_receives = if waiting { 0 } else { self.empty_receives + 1 };
                if !self.follow && self.empty_receives >= 2 {
                    return Ok(None);
                }
                return Ok(Some(RecordBatch { records: Vec::new(), position: [(RECEIVED.to_string(), self.received.to_string())].into() }));
            }
            self.empty_receives = 0;
            let mut records = Vec::with_capacity(messages.len());
            for m in &messages {
                let record = self.record(m).await?;
                self.received += 1;
                let receipt = m["ReceiptHandle"].as_str().unwrap_or_default().to_string();
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(Pending { count: self.received, receipt, since: Instant::now() });
                records.push(record);
            }
            Ok(Some(RecordBatch { records, position: [(RECEIVED.to_string(), self.received.to_string())].into() }))
        })
    }

    fn acknowledge<'a>(&'a mut self, offsets: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match offsets.get(RECEIVED).and_then(|n| n.parse::<u64>().ok()) {
                Some(n) => self.delete_through(n).await,
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_a_stable_decimal_offset() {
        assert_eq!(message_offset("00000000-0000-0000-0000-000000000011"), "17");
        assert_eq!(message_offset("not-a-uuid"), message_offset("not-a-uuid"));
        assert!(message_offset("not-a-uuid").bytes().all(|b| b.is_ascii_digit()));
    }
}
