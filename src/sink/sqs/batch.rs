//! SQS messages as barge sends them, and the SendMessageBatch calls they
//! go out in: pure functions, so the limits and the ordering rule are
//! tested without a queue.
//!
//! Limits (SendMessageBatch): at most 10 entries a call; each message at
//! most the queue's `MaximumMessageSize`; the call's messages together at
//! most the service's maximum message size. That maximum was 256 KiB
//! (262,144 bytes) for both and is 1 MiB (1,048,576 bytes) for both since
//! 2025; a queue's own maximum can be no larger than the service's, so
//! the batch limit is the queue's maximum raised to 256 KiB and capped at
//! 1 MiB, within both regimes. A message's size counts its body and each
//! attribute's name, type and value, as SQS counts it.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use crate::sink::shared::calls;

/// Entries a SendMessageBatch call takes.
pub const MAX_ENTRIES: usize = 10;
/// The smallest and largest a batch's total may be (see the module doc).
const BATCH_FLOOR: usize = 256 << 10;
const BATCH_CAP: usize = 1 << 20;
/// The longest MessageGroupId SQS takes.
const MAX_GROUP_ID: usize = 128;

/// The bytes a call's messages may hold together, for a queue whose
/// `MaximumMessageSize` is `max_message`.
pub fn batch_bytes(max_message: usize) -> usize {
    max_message.clamp(BATCH_FLOOR, BATCH_CAP)
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    /// (name, data type, value), e.g. ("barge-table", "String", "public.orders").
    pub attributes: Vec<(&'static str, &'static str, String)>,
    /// FIFO queues: the message group and the deduplication id.
    pub group: Option<String>,
    pub dedup: Option<String>,
    /// The table and the row's key, for errors.
    pub table: String,
    pub row: String,
}

impl Message {
    /// The size SQS holds against the queue's maximum.
    pub fn size(&self) -> usize {
        self.body.len() + self.attributes.iter().map(|(n, t, v)| n.len() + t.len() + v.len()).sum::<usize>()
    }

    /// The entry's JSON in a SendMessageBatch call.
    pub fn entry(&self, id: usize) -> serde_json::Value {
        let attributes: serde_json::Map<String, serde_json::Value> =
            self.attributes.iter().map(|(n, t, v)| (n.to_string(), serde_json::json!({ "DataType": t, "StringValue": v }))).collect();
        let mut e = serde_json::json!({ "Id": id.to_string(), "MessageBody": self.body, "MessageAttributes": attributes });
        if let Some(g) = &self.group {
            e["MessageGroupId"] = g.clone().into();
        }
        if let Some(d) = &self.dedup {
            e["MessageDeduplicationId"] = d.clone().into();
        }
        e
    }
}

/// A MessageGroupId for `raw`: itself when SQS takes it (1 to 128
/// printable ASCII characters, no space), else its SHA-256 in hex, which
/// still gives one group per value, so order per value holds.
pub fn group_id(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= MAX_GROUP_ID && raw.bytes().all(|b| b.is_ascii_graphic()) {
        raw.to_string()
    } else {
        hex::encode(Sha256::digest(raw.as_bytes()))
    }
}

/// A JSON body as SQS takes it: SQS refuses characters XML does not
/// allow. The JSON writer already escapes control characters; U+FFFE and
/// U+FFFF (which can only stand inside a JSON string) are escaped here.
pub fn sqs_safe(body: String) -> String {
    if !body.contains(['\u{FFFE}', '\u{FFFF}']) {
        return body;
    }
    body.replace('\u{FFFE}', "\\ufffe").replace('\u{FFFF}', "\\uffff")
}

/// The next calls from `pending` (indexes into it): at most `calls`
/// calls of at most [`MAX_ENTRIES`] messages and `batch_bytes` bytes
/// each. On a FIFO queue a message group has at most one message in
/// flight, and a message never goes before an earlier one of its group,
/// even when that one is refused and retried: SQS would otherwise queue
/// the later one first ([`calls::plan`]).
pub fn plan_calls(pending: &VecDeque<Message>, batch_bytes: usize, calls: usize) -> Vec<Vec<usize>> {
    calls::plan(pending, |m| m.group.as_slice(), Message::size, calls::Limits { entries: MAX_ENTRIES, bytes: batch_bytes, calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(group: Option<&str>, bytes: usize) -> Message {
        Message { body: "x".repeat(bytes), attributes: Vec::new(), group: group.map(str::to_string), dedup: None, table: "t".into(), row: String::new() }
    }

    #[test]
    fn calls_keep_ten_entries_and_the_byte_limit() {
        let pending: VecDeque<Message> = (0..25).map(|_| msg(None, 10)).collect();
        assert_eq!(plan_calls(&pending, 1 << 20, 8).iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        // 100 KiB messages with a 256 KiB batch: two a call.
        let pending: VecDeque<Message> = (0..5).map(|_| msg(None, 100 << 10)).collect();
        let calls = plan_calls(&pending, batch_bytes(1024), 8);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        for c in &calls {
            assert!(c.iter().map(|&i| pending[i].size()).sum::<usize>() <= BATCH_FLOOR);
        }
        // No more calls than asked for.
        let pending: VecDeque<Message> = (0..500).map(|_| msg(None, 1)).collect();
        assert_eq!(plan_calls(&pending, 1 << 20, 8).len(), 8);
    }

    #[test]
    fn a_fifo_group_has_one_message_in_flight_and_nothing_overtakes_it() {
        let pending: VecDeque<Message> = ["a", "b", "a", "c", "a", "b"].iter().map(|g| msg(Some(g), 1)).collect();
        assert_eq!(plan_calls(&pending, 1 << 20, 8), vec![vec![0, 1, 3]]);
        // Standard queues (no group) fill their calls.
        let pending: VecDeque<Message> = (0..6).map(|_| msg(None, 1)).collect();
        assert_eq!(plan_calls(&pending, 1 << 20, 8), vec![vec![0, 1, 2, 3, 4, 5]]);
    }

    #[test]
    fn the_batch_limit_follows_the_queue_within_the_services_bounds() {
        assert_eq!(batch_bytes(1024), 262_144);
        assert_eq!(batch_bytes(262_144), 262_144);
        assert_eq!(batch_bytes(600_000), 600_000);
        assert_eq!(batch_bytes(1 << 20), 1 << 20);
    }

    #[test]
    fn size_counts_the_attributes() {
        let mut m = msg(None, 100);
        m.attributes.push(("barge-table", "String", "public.orders".into()));
        assert_eq!(m.size(), 100 + "barge-table".len() + "String".len() + "public.orders".len());
    }

    #[test]
    fn group_ids_are_kept_or_hashed_never_cut() {
        assert_eq!(group_id("public.orders|42"), "public.orders|42");
        let spaced = group_id("public.orders|New York");
        assert_eq!(spaced.len(), 64);
        assert_eq!(spaced, group_id("public.orders|New York"), "one value, one group");
        assert_ne!(group_id(&"x".repeat(129)), group_id(&"x".repeat(130)));
        assert_eq!(group_id(&"x".repeat(128)), "x".repeat(128));
        assert_eq!(group_id("").len(), 64);
        assert_eq!(group_id("é").len(), 64);
    }

    #[test]
    fn characters_sqs_refuses_are_escaped() {
        let body = sqs_safe("{\"a\":\"x\u{FFFE}y\u{FFFF}\"}".to_string());
        assert_eq!(body, r#"{"a":"x\ufffey\uffff"}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["a"], "x\u{FFFE}y\u{FFFF}");
        assert_eq!(sqs_safe("plain".into()), "plain");
    }
}
