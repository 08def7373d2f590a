//! KPL aggregation: many user records in one Kinesis record, in the format
//! the Kinesis Producer Library writes and the KCL de-aggregates:
//!
//! ```text
//! F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf (16 bytes)
//! ```
//!
//! An aggregate is sent with the partition key of its first user record,
//! so it lands on that record's shard; the caller only puts records of one
//! shard into an aggregate (KCL drops sub-records whose hash falls outside
//! the shard it reads).

use std::collections::HashMap;

use md5::{Digest, Md5};
use prost::Message;

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Room an aggregate may take: under Kinesis's 1 MiB per record (data plus
/// partition key), with space for the magic, the MD5 and a 256-byte key.
pub const MAX_AGGREGATE_BYTES: usize = (1 << 20) - 4 - 16 - 256 - 64;

#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Tag {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// User records being packed into one aggregate.
#[derive(Default)]
pub struct Aggregator {
    msg: AggregatedRecord,
    keys: HashMap<String, u64>,
    /// An upper bound of the encoded size.
    size: usize,
}

/// Bytes a protobuf length-delimited field of `len` bytes takes at most.
fn field_size(len: usize) -> usize {
    1 + 10 + len
}

impl Aggregator {
    pub fn is_empty(&self) -> bool {
        self.msg.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.msg.records.len()
    }

    /// Whether a record with this key and data would still fit.
    pub fn fits(&self, key: &str, data_len: usize) -> bool {
        self.size + self.added_size(key, data_len) <= MAX_AGGREGATE_BYTES
    }

    fn added_size(&self, key: &str, data_len: usize) -> usize {
        let key_entry = if self.keys.contains_key(key) { 0 } else { field_size(key.len()) };
        key_entry + field_size(11 + field_size(data_len))
    }

    pub fn add(&mut self, key: &str, data: Vec<u8>) {
        self.size += self.added_size(key, data.len());
        let next = self.keys.len() as u64;
        let index = *self.keys.entry(key.to_string()).or_insert_with(|| {
            self.msg.partition_key_table.push(key.to_string());
            next
        });
        self.msg.records.push(Record { partition_key_index: index, explicit_hash_key_index: None, data, tags: Vec::new() });
    }

    /// The Kinesis record: its partition key (the first user record's) and data.
    pub fn finish(self) -> (String, Vec<u8>) {
        let key = self.msg.partition_key_table.first().cloned().unwrap_or_default();
        let body = self.msg.encode_to_vec();
        let mut out = Vec::with_capacity(4 + body.len() + 16);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        (key, out)
    }
}

/// Whether a Kinesis record's data is a KPL aggregate (starts with the
/// magic and has room for the MD5 after it).
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= 4 + 16 && data[..4] == MAGIC
}

/// The user records of an aggregate (key, data), checking magic and MD5;
/// a record without the magic is returned as it is (as the KCL does).
pub fn deaggregate(data: &[u8], key: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    if !is_aggregated(data) {
        return Ok(vec![(key.to_string(), data.to_vec())]);
    }
    let (body, digest) = data[4..].split_at(data.len() - 4 - 16);
    if Md5::digest(body).as_slice() != digest {
        return Err("the MD5 of the aggregated record does not match".into());
    }
    let msg = AggregatedRecord::decode(body).map_err(|e| format!("the aggregated record's MD5 matches but its protobuf does not decode: {e}"))?;
    msg.records
        .into_iter()
        .map(|r| {
            let k = msg.partition_key_table.get(r.partition_key_index as usize).cloned().ok_or_else(|| format!("a user record names partition key {} of a table of {}", r.partition_key_index, msg.partition_key_table.len()))?;
            Ok((k, r.data))
        })
        .collect()
}

/// The 128-bit hash Kinesis places a partition key by.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_round_trip() {
        let mut a = Aggregator::default();
        let records: Vec<(String, Vec<u8>)> = (0..100).map(|i| (format!("key-{}", i % 7), format!("{{\"n\":{i}}}").into_bytes())).collect();
        for (k, d) in &records {
            assert!(a.fits(k, d.len()));
            a.add(k, d.clone());
        }
        assert_eq!(a.len(), 100);
        let (key, data) = a.finish();
        assert_eq!(key, "key-0");
        assert_eq!(data[..4], MAGIC);
        assert_eq!(deaggregate(&data, &key).unwrap(), records);
        let mut bad = data.clone();
        bad[10] ^= 1;
        assert!(deaggregate(&bad, &key).is_err());
        assert_eq!(deaggregate(b"plain", "k").unwrap(), vec![("k".to_string(), b"plain".to_vec())]);
    }

    #[test]
    fn size_bound_holds() {
        let mut a = Aggregator::default();
        let data = vec![b'x'; 10_000];
        let mut n = 0;
        while a.fits("k", data.len()) {
            a.add(&format!("k{n}"), data.clone());
            n += 1;
        }
        let (key, bytes) = a.finish();
        assert!(bytes.len() + key.len() <= 1 << 20, "{} bytes", bytes.len());
        assert!(n > 90);
    }

    #[test]
    fn hash_keys_are_md5_big_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }
}
