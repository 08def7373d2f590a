//! Sending records to a stream in batched calls (Kinesis PutRecords, SQS
//! SendMessageBatch), the part both targets share: which pending records
//! go out together, and how long to wait before sending again what was
//! refused.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// What one call, and one round of calls, may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Records a call takes.
    pub entries: usize,
    /// Bytes a call's records may hold together.
    pub bytes: usize,
    /// Calls in flight at once.
    pub calls: usize,
}

/// Picks the next calls from `pending` (indexes into it) within `limits`.
/// A record whose order keys (`keys`: a partition key, a message group,
/// the keys inside an aggregate) an earlier pending record shares waits
/// for it, so it never overtakes that record, even when the earlier one
/// is refused and sent again; so at most one record per key is in flight.
pub fn plan<T>(pending: &VecDeque<T>, keys: impl Fn(&T) -> &[String], size: impl Fn(&T) -> usize, limits: Limits) -> Vec<Vec<usize>> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut calls: Vec<Vec<usize>> = vec![Vec::new()];
    let mut bytes = 0usize;
    for (i, e) in pending.iter().enumerate() {
        let keys = keys(e);
        let blocked = keys.iter().any(|k| seen.contains(k.as_str()));
        seen.extend(keys.iter().map(String::as_str));
        if blocked {
            continue;
        }
        let current = calls.last().map(Vec::len).unwrap_or(0);
        if current == limits.entries || (current > 0 && bytes + size(e) > limits.bytes) {
            if calls.len() == limits.calls {
                break;
            }
            calls.push(Vec::new());
            bytes = 0;
        }
        if let Some(call) = calls.last_mut() {
            call.push(i);
        }
        bytes += size(e);
    }
    calls.retain(|c| !c.is_empty());
    calls
}

/// Rounds of sending with retries: between two rounds in which something
/// was refused, a wait from [`crate::util::retry::backoff`] that grows
/// while nothing gets through (while some records do, the target is near
/// its limit, not over it), until `timeout` has passed.
pub struct Rounds {
    started: Instant,
    attempt: u32,
    timeout: Duration,
}

impl Rounds {
    pub fn new(timeout: Duration) -> Rounds {
        Rounds { started: Instant::now(), attempt: 0, timeout }
    }

    /// After a round with refusals: waits, or says the time is up (`false`).
    pub async fn wait(&mut self, progressed: bool) -> bool {
        if self.started.elapsed() > self.timeout {
            return false;
        }
        crate::metrics::retry(crate::metrics::Role::Target);
        tokio::time::sleep(crate::util::retry::backoff(self.attempt)).await;
        self.attempt = if progressed { self.attempt.saturating_sub(1) } else { self.attempt + 1 };
        true
    }

    /// After a round that got everything through.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
