//! A Kinesis record's offset, and what a saved offset means on restart.
//!
//! The default layout keys rows on (shard, offset), so every user record
//! needs an offset of its own, and a KPL aggregate holds many user
//! records under one sequence number. An offset is therefore the
//! sequence number followed by six digits, the user record's index in its
//! aggregate (`000000` for a record that is not aggregated):
//!
//! ```text
//! 49680917640942186782462721303603428691376065377506164738 000002
//! └──────────── sequence number (up to 2^128 and more) ──┘ └sub ┘
//! ```
//!
//! As decimal numbers these order the way the stream does (sequence
//! numbers grow within a shard, sub-records follow each other), which is
//! how positions compare. A position (where a restart reads on from) is
//! the offset of the last user record delivered, with `999999` standing
//! for "the whole Kinesis record": after a record read to its end the
//! restart asks for AFTER_SEQUENCE_NUMBER; after part of an aggregate
//! (only when a user gives such an offset) it asks for the same record
//! again (AT_SEQUENCE_NUMBER) and skips the sub-records it names. So a
//! position never skips a sub-record, and never repeats a whole one.
//!
//! Six digits hold any aggregate: KPL aggregates are at most 1 MiB and a
//! user record takes at least 6 bytes of it, so at most ~175,000 of them.

/// Digits after the sequence number.
pub const SUB_DIGITS: usize = 6;
/// The sub-index that stands for "every user record of this Kinesis record".
pub const WHOLE: u32 = 999_999;

/// The offset of user record `sub` of the Kinesis record `seq`.
pub fn of_record(seq: &str, sub: u32) -> String {
    debug_assert!(sub < WHOLE);
    format!("{seq}{sub:06}")
}

/// The position after every user record of the Kinesis record `seq`.
pub fn after_record(seq: &str) -> String {
    format!("{seq}{WHOLE}")
}

/// Where a shard resumes from a saved offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// After the whole Kinesis record `seq`.
    After(String),
    /// Within the aggregate `seq`: its user records after `last_sub`.
    Within { seq: String, last_sub: u32 },
}

impl Resume {
    /// The Kinesis sequence number it names.
    pub fn sequence(&self) -> &str {
        match self {
            Resume::After(s) | Resume::Within { seq: s, .. } => s,
        }
    }
}

/// Reads a saved offset; the error says why it is not a Kinesis offset.
pub fn parse(offset: &str) -> Result<Resume, String> {
    if offset.len() <= SUB_DIGITS || !offset.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{offset}` is not a Kinesis offset (a sequence number followed by a {SUB_DIGITS}-digit sub-record index)"));
    }
    let (seq, sub) = offset.split_at(offset.len() - SUB_DIGITS);
    let seq = match seq.trim_start_matches('0') {
        "" => "0",
        s => s,
    };
    let sub: u32 = sub.parse().map_err(|_| format!("`{offset}`: bad sub-record index"))?;
    Ok(if sub == WHOLE { Resume::After(seq.to_string()) } else { Resume::Within { seq: seq.to_string(), last_sub: sub } })
}

/// Whether decimal `a` ≥ decimal `b` (sequence numbers exceed 2^64).
pub fn at_least(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) >= (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ: &str = "49680917640942186782462721303603428691376065377506164738";

    #[test]
    fn offsets_round_trip_and_mark_whole_records() {
        assert_eq!(of_record(SEQ, 0), format!("{SEQ}000000"));
        assert_eq!(of_record("7", 12), "7000012");
        assert_eq!(parse(&after_record(SEQ)), Ok(Resume::After(SEQ.into())));
        assert_eq!(parse(&of_record(SEQ, 3)), Ok(Resume::Within { seq: SEQ.into(), last_sub: 3 }));
        // The default layout's offset column is varchar(64): today's 56-digit sequence numbers fit.
        assert!(after_record(SEQ).len() <= 64);
        for bad in ["", "123456", "12x4567890", "-1234567"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_order_as_the_stream_does() {
        let next = "49680917640942186782462721303605846543015294635855577090";
        let order = [of_record(SEQ, 0), of_record(SEQ, 1), of_record(SEQ, 999_998), after_record(SEQ), of_record(next, 0)];
        for w in order.windows(2) {
            assert!(at_least(&w[1], &w[0]) && !at_least(&w[0], &w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(at_least("10", "9") && !at_least("9", "10") && at_least("007", "7"));
    }
}
