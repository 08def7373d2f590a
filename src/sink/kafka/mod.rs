//! Kafka as a [`Destination`], through rskafka (pure Rust).
//!
//! - topic: the URL's, or one per table with `--topic-pattern
//!   'cdc.{schema}.{table}'` (topics must exist: barge does not create
//!   them, since their partitions and retention are the operator's call);
//! - key: the primary key (as Kinesis's partition key); partition: Kafka's
//!   own default for keyed records, murmur2(key) mod partitions, so Java
//!   consumers and producers agree on where a key lives;
//! - value: the DMS envelope, or Debezium's with `--envelope debezium`;
//!   header `barge-record-id` carries the deterministic id;
//! - order: one produce call per partition at a time, records in source
//!   order, each acknowledged (acks=all) before `apply` returns.
//!
//! TLS with `?tls=true` (rustls, certificates verified against the Mozilla
//! roots); SASL PLAIN or SCRAM with the URL's user and `BARGE_KAFKA_PASSWORD`
//! (`?sasl=plain|scram-sha-256|scram-sha-512`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};

use super::envelope::{self, Names};
use super::record::{Record, RecordIds, RecordKind};
use super::{Layouts, Scope, SinkOptions, SinkStats, SinkTable};
use super::BoxFuture;
use crate::cdc::{ChangeBatch, Tables};
use crate::sink::Destination;
use crate::endpoint::KafkaEndpoint;
use crate::error::{Error, Result};
use crate::model::Position;

pub struct KafkaSink {
    client: Client,
    display: String,
    default_topic: String,
    opts: SinkOptions,
    stats: Arc<SinkStats>,
    layouts: Layouts,
    ids: RecordIds,
    /// Partition counts by topic.
    partitions: HashMap<String, i32>,
    producers: HashMap<(String, i32), Arc<PartitionClient>>,
    committed: Option<Position>,
}

/// Kafka's default partitioner hash (murmur2, as the Java client computes it).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a key among `n`, as Kafka's Java client picks it.
pub fn partition_for(key: &[u8], n: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % n.max(1)
}

fn kafka_error(display: &str, e: impl std::fmt::Display, hint: Option<String>) -> Error {
    Error::Endpoint { endpoint: display.to_string(), message: e.to_string(), hint }
}

/// A client for the brokers `e` names, with its TLS and SASL settings
/// (shared by the Kafka target and the Kafka record source).
pub fn client_builder(e: &KafkaEndpoint) -> Result<ClientBuilder> {
    let mut builder = ClientBuilder::new(e.brokers.clone()).client_id("barge");
    if e.options.get("tls").is_some_and(|v| v == "true" || v == "1") {
        super::install_crypto_provider();
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        builder = builder.tls_config(Arc::new(config));
    }
    if let Some(mech) = e.options.get("sasl") {
        let user = e.options.get("user").cloned().unwrap_or_default();
        let password = std::env::var("BARGE_KAFKA_PASSWORD").map_err(|_| kafka_error(&e.display, "SASL needs a password", Some("set BARGE_KAFKA_PASSWORD (never put it in the URL)".into())))?;
        let creds = Credentials::new(user, password);
        builder = builder.sasl_config(match mech.as_str() {
            "plain" => SaslConfig::Plain(creds),
            "scram-sha-256" => SaslConfig::ScramSha256(creds),
            "scram-sha-512" => SaslConfig::ScramSha512(creds),
            other => return Err(Error::usage(format!("unknown ?sasl={other}: use plain, scram-sha-256 or scram-sha-512"))),
        });
    }
    Ok(builder)
}

impl KafkaSink {
    pub async fn open(e: &KafkaEndpoint, opts: SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Result<KafkaSink> {
        if e.topic.is_empty() || e.options.contains_key("topics") || e.topic.contains(['*', '?']) {
            return Err(Error::usage(format!("{}: a Kafka target writes to one topic (kafka://host:9092/topic) or to --topic-pattern's; ?topics= and wildcards name topics to read", e.display)));
        }
        let builder = client_builder(e)?;
        let client = builder.build().await.map_err(|err| kafka_error(&e.display, format!("cannot connect: {err}"), Some("check the broker address (kafka://host:9092/topic)".into())))?;
        let mut sink = KafkaSink {
            client,
            display: e.display.clone(),
            default_topic: e.topic.clone(),
            opts,
            stats,
            layouts: Layouts::default(),
            ids: RecordIds::new(scope),
            partitions: HashMap::new(),
            producers: HashMap::new(),
            committed: None,
        };
        sink.refresh_topics().await?;
        Ok(sink)
    }

    async fn refresh_topics(&mut self) -> Result<()> {
        let topics = self.client.list_topics().await.map_err(|e| kafka_error(&self.display, e, None))?;
        self.partitions = topics.into_iter().map(|t| (t.name, t.partitions.len() as i32)).collect();
        Ok(())
    }

    fn topic_for(&self, table: &SinkTable) -> String {
        match &self.opts.topic_pattern {
            Some(p) => p.replace("{schema}", &table.schema).replace("{table}", &table.name),
            None => self.default_topic.clone(),
        }
    }

    async fn partition_count(&mut self, topic: &str) -> Result<i32> {
        if !self.partitions.contains_key(topic) {
            self.refresh_topics().await?;
        }
        match self.partitions.get(topic) {
            Some(n) if *n > 0 => Ok(*n),
            _ => Err(kafka_error(&self.display, format!("topic {topic} does not exist"), Some(format!("create it first (barge does not create topics), e.g. kafka-topics.sh --create --topic {topic} --partitions 3")))),
        }
    }

    async fn producer(&mut self, topic: &str, partition: i32) -> Result<Arc<PartitionClient>> {
        let k = (topic.to_string(), partition);
        if let Some(p) = self.producers.get(&k) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.client.partition_client(topic, partition, UnknownTopicHandling::Error).await.map_err(|e| kafka_error(&self.display, format!("{topic}[{partition}]: {e}"), None))?);
        self.producers.insert(k, p.clone());
        Ok(p)
    }

    async fn apply_batch(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<()> {
        let now = chrono::Utc::now();
        // Records per (topic, partition), in source order.
        let mut groups: BTreeMap<(String, i32), Vec<rskafka::record::Record>> = BTreeMap::new();
        let mut names: HashMap<crate::model::QualifiedName, Names> = HashMap::new();
        let changes = super::record::split_key_changes(tables, &batch.changes);
        for change in changes.iter() {
            let table = self.layouts.get(tables, &change.table, &self.opts.default_schema)?;
            let rec = Record::new(&table, change, self.ids.next(&table, change));
            if self.opts.cdc_inserts_only && !matches!(rec.kind, RecordKind::Insert | RecordKind::Load) {
                SinkStats::add(&self.stats.skipped, 1);
                continue;
            }
            let names = names.entry(change.table.clone()).or_insert_with(|| Names::of(&table));
            let value = envelope::body(self.opts.envelope, &table, names, &rec, self.opts.partition_key, now)
                .map_err(|m| Error::Table { table: table.display(), row: Some(rec.key_text(&table)), message: m, hint: None })?;
            let key = match (self.opts.envelope, self.opts.partition_key) {
                (super::EnvelopeKind::Raw, _) => envelope::raw_key(&table, &rec).unwrap_or_else(|| rec.partition_key(&table)),
                (_, super::PartitionKey::PrimaryKey) => rec.partition_key(&table),
                (_, super::PartitionKey::SchemaTable) => table.display(),
            };
            let topic = self.topic_for(&table);
            let n = self.partition_count(&topic).await?;
            let partition = partition_for(key.as_bytes(), n);
            let headers = BTreeMap::from([("barge-record-id".to_string(), rec.id.clone().into_bytes())]);
            groups.entry((topic, partition)).or_default().push(rskafka::record::Record { key: Some(key.into_bytes()), value: Some(value), headers, timestamp: change.commit_time.unwrap_or(now) });
        }
        let mut sends = Vec::new();
        for ((topic, partition), records) in groups {
            let p = self.producer(&topic, partition).await?;
            sends.push(async move {
                let n = records.len() as u64;
                // Produce calls stay under the broker's default message.max.bytes (1 MB).
                let mut chunk = Vec::new();
                let mut size = 0usize;
                for r in records {
                    let s = r.approximate_size();
                    if !chunk.is_empty() && size + s > 900_000 {
                        p.produce(std::mem::take(&mut chunk), Compression::NoCompression).await.map_err(|e| (topic.clone(), partition, e))?;
                        size = 0;
                    }
                    size += s;
                    chunk.push(r);
                }
                p.produce(chunk, Compression::NoCompression).await.map_err(|e| (topic.clone(), partition, e))?;
                Ok::<u64, (String, i32, rskafka::client::error::Error)>(n)
            });
        }
        for r in futures::future::join_all(sends).await {
            match r {
                Ok(n) => SinkStats::add(&self.stats.records, n),
                Err((topic, partition, e)) => return Err(kafka_error(&self.display, format!("producing to {topic}[{partition}]: {e}"), None)),
            }
        }
        if batch.position.is_some() {
            self.committed = batch.position.clone();
        }
        Ok(())
    }
}

impl Destination for KafkaSink {
    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities { ordered: true, ..super::Capabilities::NONE }
    }


    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply_batch(tables, batch))
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        Box::pin(async move { Ok(self.committed.clone()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's own partitioner tests (Utils.murmur2).
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
        assert!((0..3).contains(&partition_for(b"key", 3)));
    }
}
