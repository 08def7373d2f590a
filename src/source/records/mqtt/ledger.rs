//! The QoS 1 messages the broker waits to hear about: which counter each
//! got, and whether its acknowledgement may go yet. No I/O here; the
//! source saves [`Ledger::journal`] and talks to the broker.
//!
//! The rules that keep a message from being lost or landed twice:
//! - an acknowledgement goes only for a message the destination holds
//!   ([`Ledger::durable`]), and only after the journal stopped listing it
//!   ([`Ledger::take_acks`] then a save);
//! - a broker resends only on a new connection, so a message that comes
//!   on a connection with a packet id held here, and was not seen on that
//!   connection yet, is the oldest held message of that id resent; on the
//!   connection that already brought it, it is a new message (mosquitto
//!   reuses a packet id while its first message is still unacknowledged,
//!   once its ids wrap at 65,535), so messages are held per packet id in
//!   the order they came;
//! - a broker takes a PUBACK for the oldest message of its packet id, so
//!   acknowledgements of one id go in that order, each only once the
//!   broker sent its message on the connection it goes on (mosquitto
//!   ignores a PUBACK for a message it has yet to resend after a
//!   reconnect);
//! - an acknowledgement known not to have been written when its connection
//!   went down is sent again on the next one; one that was written but not
//!   confirmed (see [`Ledger::confirmed`]) is forgotten: whether the broker
//!   read it cannot be known, and a resend of it lands again, the one
//!   duplicate MQTT leaves no way to avoid;
//! - a counter is handed out at most once, and only above every counter
//!   a destination may hold ([`Ledger::handed`] and the journal's floor).

use std::collections::{BTreeMap, VecDeque};

use super::journal::{Journal, Listed, Update};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Handed out; the destination does not hold it yet.
    Delivered,
    /// The destination holds it; its acknowledgement is not queued.
    Durable,
    /// Its acknowledgement is queued on connection number `.0`.
    Acking(u64),
    /// Its acknowledgement was written on connection `.0`; the broker has
    /// not yet shown that it read it.
    Written(u64),
    /// An earlier run handed it out and the destination never took it:
    /// handed out again when the broker resends it, with its counter if it
    /// is `true` here and no higher one was handed out meanwhile.
    Resend(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    counter: u64,
    state: State,
    /// The connection the broker last sent it on (0: none in this run).
    seen: u64,
    /// Its place in what that connection brought: acknowledgements go in
    /// that order ([MQTT-4.6.0-2]).
    seq: u64,
}

/// What to do with a message that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Hand it out with this counter as its offset.
    Hand(u64),
    /// The broker resent a message held here: drop this copy.
    Again,
}

#[derive(Debug, Default)]
pub struct Ledger {
    /// Per packet id, its messages not yet acknowledged, oldest first
    /// (rarely more than one). (A B-tree: hashing a u16 with SipHash
    /// cost more than the lookup, once per message and acknowledgement.)
    held: BTreeMap<u16, VecDeque<Held>>,
    /// Counter → packet id of the messages in the states looked up in
    /// counter order, so no step walks every message held (a slow broker
    /// can leave tens of thousands unacknowledged).
    delivered: BTreeMap<u64, u16>,
    durable: BTreeMap<u64, u16>,
    /// `Resend(true)` messages.
    keep: BTreeMap<u64, u16>,
    /// Durable messages the broker sent on the connection now up, by
    /// `seq`: the acknowledgements that may go.
    ready: BTreeMap<u64, (u64, u16)>,
    /// The connection now up, and the next `seq` on it.
    conn: u64,
    next_seq: u64,
    /// The round of acknowledgements queued or written and not confirmed.
    round: Vec<(u64, u16)>,
    /// How many `Resend` messages are held.
    resends: usize,
    /// The highest counter handed out, or saved at the destination.
    handed: u64,
    /// Counters up to here may be in use (an earlier run handed them out):
    /// a new message gets a higher one.
    floor: u64,
    /// What the journal says differs from this ledger.
    pub dirty: bool,
    /// How the journal is to list each message it lists differently now
    /// (`None`: not at all), by counter.
    unsaved: BTreeMap<u64, Option<Listed>>,
    /// What the journal says is void: it must be written whole.
    whole: bool,
}

impl Ledger {
    /// The ledger a run starts with: the last run's journal, and the
    /// counter the destination saved (everything up to it is durable).
    pub fn recover(journal: Option<&Journal>, saved: u64) -> Ledger {
        let mut l = Ledger { handed: saved, floor: saved, ..Ledger::default() };
        if let Some(j) = journal {
            l.floor = j.handed.max(saved);
            let mut all: Vec<(u64, u16, State)> = Vec::new();
            for &(counter, pkid) in &j.held {
                all.push((counter, pkid, if counter <= saved { State::Durable } else { State::Resend(true) }));
            }
            for &(counter, pkid) in &j.resend {
                all.push((counter, pkid, State::Resend(false)));
            }
            all.sort_unstable_by_key(|e| e.0);
            for (counter, pkid, state) in all {
                match state {
                    State::Durable => {
                        l.durable.insert(counter, pkid);
                    }
                    State::Resend(keep) => {
                        l.resends += 1;
                        if keep {
                            l.keep.insert(counter, pkid);
                        }
                    }
                    _ => {}
                }
                l.held.entry(pkid).or_default().push_back(Held { counter, state, seen: 0, seq: 0 });
            }
        }
        l
    }

    /// The highest counter handed out: the source's position.
    pub fn handed(&self) -> u64 {
        self.handed
    }

    fn entry(&mut self, pkid: u16, counter: u64) -> &mut Held {
        self.held.get_mut(&pkid).and_then(|q| q.iter_mut().find(|h| h.counter == counter)).expect("a held message")
    }

    fn remove(&mut self, pkid: u16, counter: u64) {
        if let Some(q) = self.held.get_mut(&pkid) {
            q.retain(|h| h.counter != counter);
            if q.is_empty() {
                self.held.remove(&pkid);
            }
        }
    }

    /// Connection `conn` is up: acknowledgements go only for what the
    /// broker sends on it.
    pub fn connected(&mut self, conn: u64) {
        self.conn = conn;
        self.ready.clear();
    }

    /// A message arrived on connection `conn` (the one now up); `pkid` is
    /// `None` for QoS 0 (nothing to acknowledge).
    pub fn arrive(&mut self, conn: u64, pkid: Option<u16>) -> Arrival {
        let Some(pkid) = pkid else { return Arrival::Hand(self.fresh()) };
        // The oldest message of this id the broker has not sent on this
        // connection yet, and whose acknowledgement was not written.
        let resent = self.held.get(&pkid).and_then(|q| q.iter().find(|h| h.seen != conn && !matches!(h.state, State::Written(_))).copied());
        self.next_seq += 1;
        let seq = self.next_seq;
        let Some(h) = resent else {
            let c = self.fresh();
            self.held.entry(pkid).or_default().push_back(Held { counter: c, state: State::Delivered, seen: conn, seq });
            self.delivered.insert(c, pkid);
            self.list(c, Some(Listed::Held(pkid)));
            return Arrival::Hand(c);
        };
        let e = self.entry(pkid, h.counter);
        e.seen = conn;
        e.seq = seq;
        if h.state == State::Durable && conn == self.conn {
            self.ready.insert(seq, (h.counter, pkid));
        }
        let State::Resend(keep) = h.state else { return Arrival::Again };
        self.resends -= 1;
        if keep {
            self.keep.remove(&h.counter);
        }
        let c = if keep && h.counter > self.handed {
            self.pass(h.counter);
            h.counter
        } else {
            self.fresh()
        };
        let e = self.entry(pkid, h.counter);
        e.counter = c;
        e.state = State::Delivered;
        self.delivered.insert(c, pkid);
        if c != h.counter {
            self.list(h.counter, None);
        }
        self.list(c, Some(Listed::Held(pkid)));
        Arrival::Hand(c)
    }

    fn fresh(&mut self) -> u64 {
        let c = self.handed.max(self.floor) + 1;
        self.pass(c);
        c
    }

    /// `c` is handed out: resends waiting with a lower counter lose it
    /// (a destination that saves `c` must not take them for durable).
    fn pass(&mut self, c: u64) {
        self.handed = c;
        while let Some((&k, &p)) = self.keep.first_key_value().filter(|(&k, _)| k < c) {
            self.keep.remove(&k);
            self.entry(p, k).state = State::Resend(false);
            self.list(k, Some(Listed::Resend(p)));
        }
    }

    /// The destination holds every message up to counter `upto`.
    pub fn durable(&mut self, upto: u64) {
        let rest = match upto.checked_add(1) {
            Some(next) => self.delivered.split_off(&next),
            None => BTreeMap::new(),
        };
        for (c, p) in std::mem::replace(&mut self.delivered, rest) {
            let now = self.conn;
            let e = self.entry(p, c);
            e.state = State::Durable;
            if e.seen == now {
                let seq = e.seq;
                self.ready.insert(seq, (c, p));
            }
            self.durable.insert(c, p);
        }
    }

    /// The packet ids to acknowledge now on connection `conn` (at most
    /// `max`): durable messages the broker sent on it, in the order they
    /// came, an older message of the same id first. The journal must be
    /// saved before any of them is sent.
    pub fn take_acks(&mut self, conn: u64, max: usize) -> Vec<(u64, u16)> {
        if conn != self.conn {
            return Vec::new();
        }
        let mut due: Vec<(u64, u64, u16)> = Vec::new();
        for (&seq, &(c, p)) in &self.ready {
            if due.len() >= max {
                break;
            }
            let next = self.held.get(&p).and_then(|q| q.iter().find(|h| !matches!(h.state, State::Acking(_) | State::Written(_))));
            if next.is_some_and(|h| h.counter == c) && !due.iter().any(|&(_, _, q)| q == p) {
                due.push((seq, c, p));
            }
        }
        for &(seq, c, p) in &due {
            self.ready.remove(&seq);
            self.durable.remove(&c);
            self.entry(p, c).state = State::Acking(conn);
            self.round.push((c, p));
            self.list(c, None);
        }
        due.into_iter().map(|(_, c, p)| (c, p)).collect()
    }

    /// The acknowledgement of message `counter` (packet id `pkid`) could
    /// not be queued after all.
    pub fn unsent(&mut self, conn: u64, counter: u64, pkid: u16) {
        if self.held.get(&pkid).is_some_and(|q| q.iter().any(|h| h.counter == counter && h.state == State::Acking(conn))) {
            let e = self.entry(pkid, counter);
            e.state = State::Durable;
            let seq = e.seq;
            self.ready.insert(seq, (counter, pkid));
            self.durable.insert(counter, pkid);
            self.round.retain(|&(rc, _)| rc != counter);
            self.list(counter, Some(Listed::Held(pkid)));
        }
    }

    /// Connection `conn` wrote an acknowledgement of `pkid` (the oldest queued).
    pub fn written(&mut self, conn: u64, pkid: u16) {
        if let Some(h) = self.held.get_mut(&pkid).and_then(|q| q.iter_mut().find(|h| h.state == State::Acking(conn))) {
            h.state = State::Written(conn);
        }
    }

    /// The broker answered a request sent on `conn` after every
    /// acknowledgement queued there, so it has read them all.
    pub fn confirmed(&mut self, conn: u64) {
        for (c, p) in std::mem::take(&mut self.round) {
            if self.held.get(&p).is_some_and(|q| q.iter().any(|h| h.counter == c && matches!(h.state, State::Acking(k) | State::Written(k) if k == conn))) {
                self.remove(p, c);
            }
        }
    }

    /// Connection `conn` went down, after writing the acknowledgements in
    /// `written` (besides those reported); the others it held were never sent.
    pub fn lost(&mut self, conn: u64, written: &[u16]) {
        for p in written {
            self.written(conn, *p);
        }
        for (c, p) in std::mem::take(&mut self.round) {
            let Some(h) = self.held.get(&p).and_then(|q| q.iter().find(|h| h.counter == c)).copied() else { continue };
            match h.state {
                State::Written(k) if k == conn => self.remove(p, c),
                State::Acking(k) if k == conn => {
                    self.entry(p, c).state = State::Durable;
                    self.durable.insert(c, p);
                    self.list(c, Some(Listed::Held(p)));
                }
                _ => self.round.push((c, p)),
            }
        }
    }

    /// The broker kept no session: the packet ids held here mean nothing
    /// to it. Returns how many messages it was to resend (lost with the
    /// session); messages in the destination's hands still land.
    pub fn session_lost(&mut self) -> usize {
        let lost = self.resends;
        let dirty = self.dirty || !self.held.is_empty();
        *self = Ledger { handed: self.handed, floor: self.floor, dirty, whole: true, conn: self.conn, next_seq: self.next_seq, ..Ledger::default() };
        lost
    }

    /// Messages an earlier run read that the broker has not resent yet.
    pub fn awaiting_resend(&self) -> usize {
        self.resends
    }

    /// Whether any message handed out is still unacknowledged (apart from
    /// resends the broker owes).
    pub fn busy(&self) -> bool {
        !self.delivered.is_empty() || !self.durable.is_empty() || !self.round.is_empty()
    }

    /// Whether an acknowledgement the destination allows is not yet
    /// known to be read by the broker on connection `conn`.
    #[cfg(test)]
    pub fn unconfirmed(&self, conn: u64) -> bool {
        !self.round.is_empty() || (conn == self.conn && !self.ready.is_empty())
    }

    /// The journal is to list message `counter` as `how` (`None`: not at all).
    fn list(&mut self, counter: u64, how: Option<Listed>) {
        self.unsaved.insert(counter, how);
        self.dirty = true;
    }

    /// What the journal lacks, as one update on top of what it says;
    /// `whole`: it must be written whole instead.
    pub fn update<'a>(&'a self, filter: &'a str) -> (Update<'a>, bool) {
        (Update { handed: self.handed.max(self.floor), filter, entries: &self.unsaved }, self.whole)
    }

    /// The journal says what [`Ledger::update`] said.
    pub fn saved(&mut self) {
        self.unsaved.clear();
        self.whole = false;
        self.dirty = false;
    }

    /// What the journal is to say: every message not being acknowledged.
    pub fn journal(&self, client_id: &str, filter: &str) -> Journal {
        let mut held: Vec<(u64, u16)> = Vec::new();
        let mut resend: Vec<(u64, u16)> = Vec::new();
        for (p, q) in &self.held {
            for h in q {
                match h.state {
                    State::Acking(_) | State::Written(_) => {}
                    State::Resend(false) => resend.push((h.counter, *p)),
                    State::Resend(true) | State::Delivered | State::Durable => held.push((h.counter, *p)),
                }
            }
        }
        held.sort_unstable();
        resend.sort_unstable();
        Journal { client_id: client_id.into(), filter: filter.into(), handed: self.handed.max(self.floor), held, resend }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(handed: u64, held: &[(u64, u16)]) -> Journal {
        Journal { client_id: "c".into(), filter: "t".into(), handed, held: held.to_vec(), resend: vec![] }
    }

    /// `take_acks`, packet ids only.
    fn acks(l: &mut Ledger, conn: u64, max: usize) -> Vec<u16> {
        l.take_acks(conn, max).into_iter().map(|(_, p)| p).collect()
    }

    #[test]
    fn a_message_is_acknowledged_once_durable_and_resends_are_dropped() {
        let mut l = Ledger::recover(None, 0);
        l.connected(1);
        assert_eq!(l.arrive(1, Some(7)), Arrival::Hand(1));
        assert_eq!(l.arrive(1, Some(8)), Arrival::Hand(2));
        assert_eq!(l.arrive(1, None), Arrival::Hand(3), "QoS 0 takes a counter, nothing to acknowledge");
        l.connected(2);
        assert_eq!(l.arrive(2, Some(7)), Arrival::Again, "resent on a new connection");
        assert!(acks(&mut l, 2, 100).is_empty(), "nothing is durable yet");
        l.durable(2);
        assert_eq!(acks(&mut l, 2, 100), vec![7], "8 was not resent on connection 2: its PUBACK waits");
        assert_eq!(l.journal("c", "t").held, vec![(2, 8)], "the journal drops a message before its acknowledgement goes");
        l.written(2, 7);
        assert!(l.unconfirmed(2));
        assert_eq!(l.arrive(2, Some(7)), Arrival::Hand(4), "after the acknowledgement the id is the broker's to reuse");
        l.confirmed(2);
        assert!(!l.unconfirmed(2) && l.busy(), "8 and the new 7 wait");
        assert_eq!(l.arrive(2, Some(8)), Arrival::Again);
        assert_eq!(acks(&mut l, 2, 100), vec![8]);
    }

    #[test]
    fn an_id_reused_before_its_first_message_is_acknowledged_holds_both_in_order() {
        let mut l = Ledger::recover(None, 0);
        l.connected(1);
        assert_eq!(l.arrive(1, Some(5)), Arrival::Hand(1));
        // mosquitto's ids wrapped: the same id, a new message, same connection.
        assert_eq!(l.arrive(1, Some(5)), Arrival::Hand(2));
        assert_eq!(l.journal("c", "t").held, vec![(1, 5), (2, 5)]);
        l.durable(2);
        assert_eq!(l.take_acks(1, 100), vec![(1, 5)], "one PUBACK per message, the older first");
        l.written(1, 5);
        assert_eq!(l.take_acks(1, 100), vec![(2, 5)]);
        // After a crash both come again, in order, and are told apart by it.
        let j = journal(2, &[(1, 5), (2, 5)]);
        let mut l = Ledger::recover(Some(&j), 1);
        l.connected(1);
        assert_eq!(l.arrive(1, Some(5)), Arrival::Again, "the first: durable");
        assert_eq!(l.arrive(1, Some(5)), Arrival::Hand(2), "the second: landed again with its offset");
        assert_eq!(l.take_acks(1, 100), vec![(1, 5)], "only the older one may be acknowledged");
    }

    #[test]
    fn the_younger_message_of_an_id_waits_for_the_older() {
        let mut l = Ledger::recover(None, 0);
        l.connected(1);
        l.arrive(1, Some(5));
        l.arrive(1, Some(6));
        l.arrive(1, Some(5));
        // The destination holds 1 and 2 only; 3 (the second 5) is not durable.
        l.durable(2);
        assert_eq!(acks(&mut l, 1, 100), vec![5, 6]);
        l.durable(3);
        assert_eq!(acks(&mut l, 1, 100), vec![5]);
    }

    #[test]
    fn an_acknowledgement_its_connection_never_wrote_goes_again() {
        let mut l = Ledger::recover(None, 0);
        l.connected(1);
        for p in [1, 2, 3] {
            l.arrive(1, Some(p));
        }
        l.durable(3);
        assert_eq!(acks(&mut l, 1, 2), vec![1, 2], "a round at a time");
        assert_eq!(acks(&mut l, 1, 100), vec![3]);
        l.written(1, 1);
        l.lost(1, &[2]);
        // 1 and 2 were written: forgotten. 3 never left: due again, once the
        // broker sent it on the new connection.
        l.connected(2);
        assert!(acks(&mut l, 2, 100).is_empty(), "not before the broker resends it");
        assert_eq!(l.arrive(2, Some(2)), Arrival::Hand(4), "written before the drop: a resend cannot be told from a new message");
        assert_eq!(l.arrive(2, Some(3)), Arrival::Again);
        l.durable(4);
        assert_eq!(acks(&mut l, 2, 100), vec![2, 3], "in the order this connection brought them");
    }

    #[test]
    fn a_rerun_acknowledges_what_the_destination_holds_and_hands_out_the_rest_again() {
        // The last run handed out 11..=14; the destination committed 12.
        let j = journal(14, &[(11, 1), (12, 2), (13, 3), (14, 4)]);
        let mut l = Ledger::recover(Some(&j), 12);
        l.connected(1);
        assert_eq!(l.arrive(1, Some(1)), Arrival::Again, "durable: not landed again");
        assert_eq!(l.arrive(1, Some(2)), Arrival::Again);
        assert_eq!(acks(&mut l, 1, 100), vec![1, 2], "acknowledged once resent");
        assert_eq!(l.arrive(1, Some(3)), Arrival::Hand(13), "resent in order: the same offset as before");
        assert_eq!(l.arrive(1, Some(9)), Arrival::Hand(15), "a new message: above every counter used");
        assert_eq!(l.arrive(1, Some(4)), Arrival::Hand(16), "14 was passed: a new counter");
    }

    #[test]
    fn a_saved_position_never_covers_a_resend_that_has_not_come() {
        let j = journal(5, &[(4, 1), (5, 2)]);
        let mut l = Ledger::recover(Some(&j), 3);
        l.connected(1);
        assert_eq!(l.arrive(1, Some(9)), Arrival::Hand(6), "a new message before the resends");
        // The destination saves 6; a crash now must not take 4 and 5 for durable.
        let again = l.journal("c", "t");
        assert_eq!(again.resend, vec![(4, 1), (5, 2)]);
        let mut l2 = Ledger::recover(Some(&again), 6);
        l2.connected(1);
        assert_eq!(l2.arrive(1, Some(9)), Arrival::Again);
        assert_eq!(acks(&mut l2, 1, 100), vec![9]);
        assert_eq!(l2.arrive(1, Some(1)), Arrival::Hand(7));
        assert_eq!(l2.arrive(1, Some(2)), Arrival::Hand(8));
    }

    #[test]
    fn a_lost_session_counts_the_messages_the_broker_owed() {
        let j = journal(2, &[(1, 1), (2, 2)]);
        let mut l = Ledger::recover(Some(&j), 1);
        assert_eq!(l.session_lost(), 1);
        assert!(!l.busy());
        l.connected(1);
        assert_eq!(l.arrive(1, Some(1)), Arrival::Hand(3), "a new session's packet ids are new messages");
    }

    /// Every step a run can take, at random: after each save, the journal
    /// read back from its appended lines says what the ledger would write
    /// whole, also across reruns that start from it.
    #[test]
    fn the_appended_journal_always_reads_as_the_ledger_whole() {
        use super::super::journal::JournalFile;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut l = Ledger::recover(None, 0);
        let mut file = JournalFile::new(path.clone());
        let mut conn = 1;
        let mut saved = 0u64;
        let mut taken: Vec<(u64, u16)> = Vec::new();
        l.connected(conn);
        for step in 0..1500 {
            match rand(100) {
                0..=39 => {
                    l.arrive(conn, Some(rand(6) as u16 + 1));
                }
                40..=54 => {
                    saved = saved.max(rand(l.handed() + 1));
                    l.durable(saved);
                }
                55..=69 => taken.extend(l.take_acks(conn, rand(4) as usize + 1)),
                70..=74 if !taken.is_empty() => {
                    let (c, p) = taken.remove(rand(taken.len() as u64) as usize);
                    l.unsent(conn, c, p);
                }
                75..=84 if !taken.is_empty() => {
                    l.written(conn, taken[0].1);
                    if rand(2) == 0 {
                        l.confirmed(conn);
                        taken.clear();
                    }
                }
                85..=91 => {
                    let written: Vec<u16> = taken.iter().filter(|_| rand(2) == 0).map(|t| t.1).collect();
                    l.lost(conn, &written);
                    taken.clear();
                    conn += 1;
                    l.connected(conn);
                }
                92 => {
                    l.session_lost();
                }
                93..=96 => {
                    // A rerun from the journal and what the destination saved.
                    let j = Journal::load(&path).unwrap();
                    l = Ledger::recover(j.as_ref(), saved);
                    file = JournalFile::new(path.clone());
                    taken.clear();
                    conn += 1;
                    l.connected(conn);
                    l.dirty = true;
                }
                _ => {}
            }
            if l.dirty {
                let (update, whole) = l.update("t");
                file.save(update, whole, || l.journal("c", "t")).unwrap();
                l.saved();
                assert_eq!(Journal::load(&path).unwrap(), Some(l.journal("c", "t")), "step {step}");
            }
        }
    }
}
