//! Which shards to read, and in what order: a shard a reshard created is
//! read only once each of its parents is read to its end, so the records
//! of one partition key keep their order across splits and merges.
//!
//! It also keeps the position: the offset of the last record handed on,
//! per shard; a closed shard read to its end gets its
//! EndingSequenceNumber as offset, which is how the next run knows it is
//! done without reading it again (ListShards still lists it, with that
//! end, until it ages out of the stream).

use std::collections::BTreeMap;

use super::offset;
use super::shard::From;
use crate::sink::kinesis_api::{IteratorStart, ShardDesc};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Not read yet: a parent is not read to its end.
    Waiting,
    Reading,
    /// Read to its end (`closed`), or as far as a bounded run reads.
    Done { closed: bool },
}

struct Shard {
    desc: ShardDesc,
    state: State,
    /// Listed when the run started (else created by a reshard since).
    initial: bool,
}

/// A shard to start reading.
pub struct Start {
    pub id: String,
    pub from: From,
    /// Closed already: read to its end even in a bounded run.
    pub closed: bool,
    /// Created by a reshard during this run.
    pub child: bool,
}

pub struct Graph {
    follow: bool,
    /// Where a shard of the first listing without a saved offset starts.
    first: IteratorStart,
    /// Offsets an earlier run saved, per shard.
    saved: BTreeMap<String, String>,
    shards: BTreeMap<String, Shard>,
    /// Every shard's position so far (saved ones included, also of shards
    /// no longer listed).
    pub position: BTreeMap<String, String>,
    /// A shard closed: list the shards again (for its children, and for
    /// its end if it closed during the run).
    pub relist: bool,
}

impl Graph {
    pub fn new(saved: BTreeMap<String, String>, first: IteratorStart, follow: bool) -> Graph {
        Graph { follow, first, position: saved.clone(), saved, shards: BTreeMap::new(), relist: false }
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Shards being read now.
    pub fn reading(&self) -> usize {
        self.shards.values().filter(|s| s.state == State::Reading).count()
    }

    /// Takes in a ListShards answer: new shards (all of them at the start,
    /// later only while following), and the end of shards closed since.
    pub fn learn(&mut self, listed: Vec<ShardDesc>, initial: bool) {
        let mut ended = Vec::new();
        for desc in listed {
            if let Some(known) = self.shards.get_mut(&desc.id) {
                if known.desc.ending_sequence.is_none() && desc.ending_sequence.is_some() {
                    known.desc.ending_sequence = desc.ending_sequence;
                    if known.state == (State::Done { closed: true }) {
                        ended.push(desc.id);
                    }
                }
                continue;
            }
            if !initial && !self.follow {
                continue; // created after a bounded run started: nothing of then is in it
            }
            // Closed and read to its end by an earlier run.
            let finished = match (&desc.ending_sequence, self.saved.get(&desc.id).and_then(|o| offset::parse(o).ok())) {
                (Some(end), Some(saved)) => offset::at_least(saved.sequence(), end),
                _ => false,
            };
            let state = if finished { State::Done { closed: true } } else { State::Waiting };
            self.shards.insert(desc.id.clone(), Shard { desc, state, initial });
        }
        for id in ended {
            self.mark_read_to_end(&id);
        }
        self.relist = false;
    }

    /// A closed shard read to its end: its offset becomes its last
    /// sequence number (known once a listing shows it closed).
    fn mark_read_to_end(&mut self, id: &str) {
        if let Some(end) = self.shards.get(id).and_then(|s| s.desc.ending_sequence.clone()) {
            let done = offset::after_record(&end);
            if self.position.get(id).is_none_or(|p| !offset::at_least(p, &done)) {
                self.position.insert(id.to_string(), done);
            }
        }
    }

    /// Whether the shard `parent` (if any) no longer holds a child back.
    fn parent_done(&self, parent: Option<&String>) -> bool {
        match parent.and_then(|p| self.shards.get(p)) {
            None => true, // none, or aged out of the stream: nothing left to read there
            Some(s) => s.state == State::Done { closed: true },
        }
    }

    /// The waiting shards whose parents are read, now marked as read.
    pub fn ready(&mut self) -> Vec<Start> {
        let ids: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| s.state == State::Waiting && self.parent_done(s.desc.parent.as_ref()) && self.parent_done(s.desc.adjacent_parent.as_ref()))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(s) = self.shards.get_mut(&id) else { continue };
            s.state = State::Reading;
            let from = match self.saved.get(&id).and_then(|o| offset::parse(o).ok()) {
                Some(resume) => From::Saved(resume),
                None if s.initial => From::Start(self.first.clone()),
                // Created by a reshard during this run: all of it is new.
                None => From::Start(IteratorStart::TrimHorizon),
            };
            out.push(Start { id, from, closed: s.desc.ending_sequence.is_some(), child: !s.initial });
        }
        out
    }

    /// Records of `shard` were handed on, up to `position`.
    pub fn read_to(&mut self, shard: String, position: String) {
        self.position.insert(shard, position);
    }

    /// The reader of `shard` stopped (see `shard::Event::Finished`).
    pub fn finished(&mut self, shard: &str, closed: bool) {
        if let Some(s) = self.shards.get_mut(shard) {
            s.state = State::Done { closed };
        }
        if closed {
            self.mark_read_to_end(shard);
            self.relist = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(id: &str, parent: Option<&str>, adjacent: Option<&str>, end: Option<&str>) -> ShardDesc {
        ShardDesc { id: id.into(), parent: parent.map(Into::into), adjacent_parent: adjacent.map(Into::into), ending_sequence: end.map(Into::into), hash_range: None }
    }

    fn graph(saved: &[(&str, &str)], follow: bool) -> Graph {
        Graph::new(saved.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), IteratorStart::Latest, follow)
    }

    fn ids(starts: &[Start]) -> Vec<&str> {
        starts.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn children_wait_for_every_parent_and_shards_read_to_their_end_stay_done() {
        // 0 split into 2 and 3; 1 and 3 merged into 4. An earlier run read
        // 0 to its end (its saved offset is its end), and 1 part of the way.
        let mut g = graph(&[("shardId-0", "100999999"), ("shardId-1", "150000000")], true);
        g.learn(
            vec![
                desc("shardId-0", None, None, Some("100")),
                desc("shardId-1", None, None, Some("200")),
                desc("shardId-2", Some("shardId-0"), None, None),
                desc("shardId-3", Some("shardId-0"), None, Some("300")),
                desc("shardId-4", Some("shardId-3"), Some("shardId-1"), None),
            ],
            true,
        );
        let first = g.ready();
        assert_eq!(ids(&first), ["shardId-1", "shardId-2", "shardId-3"], "0 is not read again");
        assert_eq!(first[0].from, From::Saved(offset::Resume::Within { seq: "150".into(), last_sub: 0 }));
        assert_eq!(first[1].from, From::Start(IteratorStart::Latest));
        assert!(first[0].closed && !first[1].closed && first[2].closed);
        g.finished("shardId-3", true);
        assert!(g.ready().is_empty(), "4 still waits for 1");
        g.finished("shardId-1", true);
        let next = g.ready();
        assert_eq!(ids(&next), ["shardId-4"]);
        assert_eq!(next[0].from, From::Start(IteratorStart::Latest), "listed at the start: the start position applies");
        // Read to their end: the offset says so, for the next run.
        assert_eq!(g.position["shardId-1"], "200999999");
        assert_eq!(g.position["shardId-3"], "300999999");
        assert_eq!(g.position["shardId-0"], "100999999", "kept");
    }

    #[test]
    fn a_shard_closed_during_the_run_gets_its_end_and_children_from_the_next_listing() {
        let mut g = graph(&[], true);
        g.learn(vec![desc("shardId-0", None, None, None)], true);
        assert_eq!(ids(&g.ready()), ["shardId-0"]);
        g.read_to("shardId-0".into(), "90999999".into());
        g.finished("shardId-0", true);
        assert!(g.relist);
        assert_eq!(g.position["shardId-0"], "90999999", "its end is not known yet");
        g.learn(vec![desc("shardId-0", None, None, Some("95")), desc("shardId-1", Some("shardId-0"), None, None)], false);
        assert_eq!(g.position["shardId-0"], "95999999");
        let next = g.ready();
        assert_eq!(ids(&next), ["shardId-1"]);
        assert!(next[0].child);
        assert_eq!(next[0].from, From::Start(IteratorStart::TrimHorizon), "a new shard is read from its start");
    }

    #[test]
    fn a_bounded_run_reads_the_shards_there_were_when_it_started() {
        let mut g = graph(&[], false);
        g.learn(vec![desc("shardId-0", None, None, None)], true);
        assert_eq!(ids(&g.ready()), ["shardId-0"]);
        g.finished("shardId-0", true);
        g.learn(vec![desc("shardId-0", None, None, Some("95")), desc("shardId-1", Some("shardId-0"), None, None)], false);
        assert!(g.ready().is_empty());
        assert_eq!(g.reading(), 0);
        // A shard caught up (not closed) holds its children back.
        let mut g = graph(&[], false);
        g.learn(vec![desc("shardId-0", None, None, None), desc("shardId-1", Some("shardId-0"), None, None)], true);
        assert_eq!(ids(&g.ready()), ["shardId-0"]);
        g.finished("shardId-0", false);
        assert!(g.ready().is_empty());
    }
}
