//! One GetRecords answer as user records: KPL aggregates taken apart
//! (MD5 checked), each user record with its own offset
//! ([`super::offset`]), skipping what a saved position says was
//! delivered, and stopping at a bounded run's end.

use chrono::{DateTime, Utc};

use super::offset::{self, Resume};
use super::shard::From;
use crate::error::Error;
use crate::sink::kinesis_api::StreamRecord;
use crate::sink::kpl;
use crate::source::records::Record;

/// What one GetRecords answer became.
#[derive(Debug)]
pub struct Taken {
    pub records: Vec<Record>,
    /// The last Kinesis record read (all of its user records taken).
    pub last: Option<String>,
    /// A bounded run reached a record past its bound.
    pub past_bound: bool,
    /// Data and partition key bytes read (what the 2 MB/s limit counts).
    pub bytes: usize,
}

/// How one shard's answers are taken apart.
pub struct Unpack<'a> {
    /// The endpoint, redacted, for errors.
    pub display: &'a str,
    pub stream: &'a str,
    pub shard: &'a str,
    /// Where the reader started: within an aggregate, the user records
    /// up to the saved one are skipped.
    pub from: &'a From,
    /// A bounded run: records that arrived after this are not taken.
    pub bound: Option<DateTime<Utc>>,
    pub deaggregate: bool,
}

impl Unpack<'_> {
    /// The user records of one answer, after what was already read.
    pub fn take(&self, records: Vec<StreamRecord>) -> Result<Taken, Error> {
        let mut taken = Taken { records: Vec::with_capacity(records.len()), last: None, past_bound: false, bytes: 0 };
        // Within an aggregate: skip the user records a saved offset names.
        let mut skip = match self.from {
            From::Saved(Resume::Within { seq, last_sub }) => Some((seq.clone(), *last_sub)),
            _ => None,
        };
        for r in records {
            let time = r.arrival();
            if let (Some(bound), Some(t)) = (self.bound, time) {
                if t > bound {
                    taken.past_bound = true;
                    break;
                }
            }
            taken.bytes += r.data.len() + r.partition_key.len();
            if r.sequence_number.is_empty() || !r.sequence_number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::other(format!("{}: stream {}, shard {}: GetRecords returned sequence number `{}`, which is not a decimal number", self.display, self.stream, self.shard, r.sequence_number)));
            }
            let skip_to = match skip.take() {
                Some((seq, last)) if seq == r.sequence_number => Some(last),
                _ => None,
            };
            let seq = r.sequence_number;
            let first = skip_to.map_or(0, |last| last as usize + 1);
            if self.deaggregate && kpl::is_aggregated(&r.data) {
                let users = kpl::deaggregate(&r.data, &r.partition_key).map_err(|why| self.damaged(&seq, &why))?;
                if users.len() >= offset::WHOLE as usize {
                    return Err(self.damaged(&seq, &format!("it holds {} user records; barge numbers at most {} in one Kinesis record", users.len(), offset::WHOLE)));
                }
                for (i, (key, data)) in users.into_iter().enumerate().skip(first) {
                    taken.records.push(Record { shard: self.shard.to_string(), offset: offset::of_record(&seq, i as u32), stream: self.stream.to_string(), key: Some(key.into_bytes()), time, data });
                }
            } else if first == 0 {
                taken.records.push(Record { shard: self.shard.to_string(), offset: offset::of_record(&seq, 0), stream: self.stream.to_string(), key: Some(r.partition_key.into_bytes()), time, data: r.data });
            }
            taken.last = Some(seq);
        }
        Ok(taken)
    }

    fn damaged(&self, seq: &str, why: &str) -> Error {
        Error::other(format!("{}: stream {}, shard {}, sequence number {seq}: a KPL aggregated record that cannot be taken apart: {why}", self.display, self.stream, self.shard))
            .with_hint(format!(
                "the producer wrote a damaged aggregate, or a record that only starts like one (bytes F3 89 9A C2); barge stops rather than skip the records in it. To land every Kinesis record whole instead, read {} with ?deaggregate=false",
                self.stream
            ))
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kpl::Aggregator;

    fn rec(seq: &str, key: &str, data: &[u8], at_ms: i64) -> StreamRecord {
        StreamRecord { sequence_number: seq.into(), partition_key: key.into(), data: data.to_vec(), approximate_arrival_timestamp: Some(at_ms as f64 / 1000.0) }
    }

    fn aggregate(users: &[(&str, &str)]) -> Vec<u8> {
        let mut a = Aggregator::default();
        for (k, d) in users {
            a.add(k, d.as_bytes().to_vec());
        }
        a.finish().1
    }

    fn unpack<'a>(from: &'a From, bound: Option<DateTime<Utc>>, deaggregate: bool) -> Unpack<'a> {
        Unpack { display: "kinesis://s", stream: "s", shard: "shardId-000000000001", from, bound, deaggregate }
    }

    fn offsets_keys_data(t: &Taken) -> Vec<(String, String, String)> {
        t.records.iter().map(|r| (r.offset.clone(), String::from_utf8(r.key.clone().unwrap()).unwrap(), String::from_utf8(r.data.clone()).unwrap())).collect()
    }

    #[test]
    fn aggregates_become_user_records_with_their_own_keys_and_offsets() {
        let agg = aggregate(&[("a", "1"), ("b", "2"), ("a", "3")]);
        let from = From::Start(crate::sink::kinesis_api::IteratorStart::TrimHorizon);
        let t = unpack(&from, None, true).take(vec![rec("11", "p", b"plain", 1_700_000_000_123), rec("12", "a", &agg, 1_700_000_000_124)]).unwrap();
        assert_eq!(
            offsets_keys_data(&t),
            [("11000000".into(), "p".into(), "plain".into()), ("12000000".into(), "a".into(), "1".into()), ("12000001".into(), "b".into(), "2".into()), ("12000002".into(), "a".into(), "3".into())]
        );
        assert_eq!(t.last.as_deref(), Some("12"));
        assert_eq!(t.records[0].time, DateTime::from_timestamp_millis(1_700_000_000_123), "arrival to the millisecond");
        assert_eq!(t.records[1].stream, "s");
        // Kept whole when asked.
        let t = unpack(&from, None, false).take(vec![rec("12", "a", &agg, 0)]).unwrap();
        assert_eq!(t.records.len(), 1);
        assert_eq!(t.records[0].data, agg);
    }

    #[test]
    fn a_saved_offset_within_an_aggregate_skips_exactly_what_was_delivered() {
        let agg = aggregate(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let from = From::Saved(Resume::Within { seq: "12".into(), last_sub: 1 });
        let t = unpack(&from, None, true).take(vec![rec("12", "a", &agg, 0), rec("13", "p", b"next", 0)]).unwrap();
        assert_eq!(offsets_keys_data(&t), [("12000002".into(), "c".into(), "3".into()), ("13000000".into(), "p".into(), "next".into())]);
        // A plain record at the saved offset was delivered whole.
        let from = From::Saved(Resume::Within { seq: "11".into(), last_sub: 0 });
        let t = unpack(&from, None, true).take(vec![rec("11", "p", b"plain", 0), rec("12", "a", &agg, 0)]).unwrap();
        assert_eq!(t.records.len(), 3);
        assert_eq!(t.records[0].offset, "12000000");
    }

    #[test]
    fn a_damaged_aggregate_is_named_with_stream_shard_and_sequence_number() {
        let mut agg = aggregate(&[("a", "1"), ("b", "2")]);
        agg[8] ^= 1;
        let from = From::Start(crate::sink::kinesis_api::IteratorStart::TrimHorizon);
        let e = unpack(&from, None, true).take(vec![rec("4968", "a", &agg, 0)]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("stream s, shard shardId-000000000001, sequence number 4968") && msg.contains("MD5"), "{msg}");
        assert!(e.hint().unwrap().contains("deaggregate=false"));
        let e = unpack(&from, None, true).take(vec![rec("49x", "a", b"d", 0)]).unwrap_err();
        assert!(e.to_string().contains("`49x`"));
    }

    #[test]
    fn a_bounded_run_stops_at_the_first_record_after_its_bound() {
        let from = From::Start(crate::sink::kinesis_api::IteratorStart::TrimHorizon);
        let bound = DateTime::from_timestamp_millis(2_000);
        let t = unpack(&from, bound, true).take(vec![rec("1", "k", b"x", 1_000), rec("2", "k", b"y", 2_000), rec("3", "k", b"z", 2_001), rec("4", "k", b"w", 1_500)]).unwrap();
        assert_eq!(t.records.len(), 2);
        assert!(t.past_bound);
        assert_eq!(t.last.as_deref(), Some("2"));
        assert_eq!(t.bytes, 4);
    }
}
