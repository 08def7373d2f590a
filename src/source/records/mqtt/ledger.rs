//! The QoS 1 messages the broker waits to hear about: which counter each
//! got, and whether its acknowledgement may go yet. No I/O here; the
//! source saves [`Ledger::journal`] and talks to the broker.
//!
//! The rules that keep a message from being lost or landed twice:
//! - an acknowledgement goes only for a message the destination holds
//!   ([`Ledger::durable`]), and only after the journal stopped listing it
//!   ([`Ledger::take_acks`] then a save), so a journal never names a packet
//!   id the broker may have reused;
//! - a message that arrives with a packet id held here, whose
//!   acknowledgement was not written, is the same message resent (the
//!   broker cannot reuse the id before reading our acknowledgement), and is
//!   not handed out twice;
//! - a broker resends only on a new connection, so a packet id that comes
//!   again on the connection that wrote its acknowledgement names a new
//!   message;
//! - an acknowledgement known not to have been written when its connection
//!   went down is sent again on the next one; one that was written but not
//!   confirmed (see [`Ledger::confirmed`]) is forgotten: whether the broker
//!   read it cannot be known, and a resend of it lands again, the one
//!   duplicate MQTT leaves no way to avoid;
//! - a counter is handed out at most once, and only above every counter
//!   a destination may hold ([`Ledger::handed`] and the journal's floor).

use std::collections::HashMap;

use super::journal::Journal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Handed out; the destination does not hold it yet.
    Delivered,
    /// The destination holds it; its acknowledgement is not queued (no
    /// connection, or its connection went down before writing it).
    Durable,
    /// Its acknowledgement is queued on connection number `.0`.
    Acking(u64),
    /// Its acknowledgement was written on connection `.0`; the broker has
    /// not yet shown that it read it.
    Written(u64),
    /// An earlier run handed it out and the destination never took it:
    /// handed out again when the broker resends it, with this counter if
    /// no higher one was handed out meanwhile.
    Resend(Option<u64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    counter: u64,
    state: State,
    /// The connection the broker last sent it on (0: none in this run).
    /// Brokers take a PUBACK only for a message they sent on the same
    /// connection (mosquitto ignores one for a message it has yet to
    /// resend), so an acknowledgement waits for the resend.
    seen: u64,
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
    held: HashMap<u16, Held>,
    /// The highest counter handed out, or saved at the destination.
    handed: u64,
    /// Counters up to here may be in use (an earlier run handed them out):
    /// a new message gets a higher one.
    floor: u64,
    /// What the journal says differs from this ledger.
    pub dirty: bool,
}

impl Ledger {
    /// The ledger a run starts with: the last run's journal, and the
    /// counter the destination saved (everything up to it is durable).
    pub fn recover(journal: Option<&Journal>, saved: u64) -> Ledger {
        let mut l = Ledger { handed: saved, floor: saved, ..Ledger::default() };
        if let Some(j) = journal {
            l.floor = j.handed.max(saved);
            for &(counter, pkid) in &j.held {
                let state = if counter <= saved { State::Durable } else { State::Resend(Some(counter)) };
                l.held.insert(pkid, Held { counter, state, seen: 0 });
            }
            for &pkid in &j.resend {
                l.held.entry(pkid).or_insert(Held { counter: 0, state: State::Resend(None), seen: 0 });
            }
        }
        l
    }

    /// The highest counter handed out: the source's position.
    pub fn handed(&self) -> u64 {
        self.handed
    }

    /// A message arrived on connection `conn`; `pkid` is `None` for QoS 0
    /// (nothing to acknowledge).
    pub fn arrive(&mut self, conn: u64, pkid: Option<u16>) -> Arrival {
        let Some(pkid) = pkid else { return Arrival::Hand(self.fresh()) };
        match self.held.get(&pkid).map(|h| h.state) {
            Some(State::Delivered | State::Durable | State::Acking(_)) => {
                self.held.get_mut(&pkid).expect("held").seen = conn;
                Arrival::Again
            }
            // Acknowledged on this connection: the broker read it and reused the
            // id. After a reconnect: a resend, or a new message; landing it
            // again is the safe side.
            Some(State::Written(_)) => {
                let c = self.fresh();
                self.held.insert(pkid, Held { counter: c, state: State::Delivered, seen: conn });
                self.dirty = true;
                Arrival::Hand(c)
            }
            Some(State::Resend(Some(c))) if c > self.handed => {
                self.pass(c);
                self.held.insert(pkid, Held { counter: c, state: State::Delivered, seen: conn });
                self.dirty = true;
                Arrival::Hand(c)
            }
            Some(State::Resend(_)) | None => {
                let c = self.fresh();
                self.held.insert(pkid, Held { counter: c, state: State::Delivered, seen: conn });
                self.dirty = true;
                Arrival::Hand(c)
            }
        }
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
        for h in self.held.values_mut() {
            if matches!(h.state, State::Resend(Some(r)) if r < c) {
                h.state = State::Resend(None);
                self.dirty = true;
            }
        }
    }

    /// The destination holds every message up to counter `upto`.
    pub fn durable(&mut self, upto: u64) {
        for h in self.held.values_mut() {
            if h.state == State::Delivered && h.counter <= upto {
                h.state = State::Durable;
            }
        }
    }

    /// The packet ids to acknowledge now on connection `conn` (at most
    /// `max`), in the order their messages came. The journal must be saved
    /// before any of them is sent.
    pub fn take_acks(&mut self, conn: u64, max: usize) -> Vec<u16> {
        let mut due: Vec<(u64, u16)> = self.held.iter().filter(|(_, h)| h.state == State::Durable && h.seen == conn).map(|(p, h)| (h.counter, *p)).collect();
        due.sort_unstable();
        due.truncate(max);
        for (_, p) in &due {
            self.held.get_mut(p).expect("held").state = State::Acking(conn);
        }
        self.dirty |= !due.is_empty();
        due.into_iter().map(|(_, p)| p).collect()
    }

    /// An acknowledgement could not be queued after all.
    pub fn unsent(&mut self, pkid: u16) {
        if let Some(h) = self.held.get_mut(&pkid) {
            h.state = State::Durable;
            self.dirty = true;
        }
    }

    /// Connection `conn` wrote the acknowledgement of `pkid`.
    pub fn written(&mut self, conn: u64, pkid: u16) {
        if let Some(h) = self.held.get_mut(&pkid).filter(|h| h.state == State::Acking(conn)) {
            h.state = State::Written(conn);
        }
    }

    /// The broker answered a request sent on `conn` after every
    /// acknowledgement queued there, so it has read them all.
    pub fn confirmed(&mut self, conn: u64) {
        self.held.retain(|_, h| !matches!(h.state, State::Acking(c) | State::Written(c) if c == conn));
    }

    /// Connection `conn` went down, after writing the acknowledgements in
    /// `written` (besides those reported); the others it held were never sent.
    pub fn lost(&mut self, conn: u64, written: &[u16]) {
        for (p, h) in self.held.iter_mut() {
            if h.state == State::Acking(conn) && !written.contains(p) {
                h.state = State::Durable;
                self.dirty = true;
            }
        }
        self.held.retain(|_, h| !matches!(h.state, State::Acking(c) | State::Written(c) if c == conn));
    }

    /// The broker kept no session: the packet ids held here mean nothing
    /// to it. Returns how many messages it was to resend (lost with the
    /// session); messages in the destination's hands still land.
    pub fn session_lost(&mut self) -> usize {
        let lost = self.awaiting_resend();
        self.dirty |= !self.held.is_empty();
        self.held.clear();
        lost
    }

    /// Messages an earlier run read that the broker has not resent yet.
    pub fn awaiting_resend(&self) -> usize {
        self.held.values().filter(|h| matches!(h.state, State::Resend(_))).count()
    }

    /// Whether any message handed out is still unacknowledged (apart from
    /// resends the broker owes).
    pub fn busy(&self) -> bool {
        self.held.values().any(|h| !matches!(h.state, State::Resend(_)))
    }

    /// Whether an acknowledgement the destination allows is not yet
    /// known to be read by the broker on connection `conn`.
    pub fn unconfirmed(&self, conn: u64) -> bool {
        self.held.values().any(|h| (h.state == State::Durable && h.seen == conn) || matches!(h.state, State::Acking(c) | State::Written(c) if c == conn))
    }

    /// What the journal is to say: every message not being acknowledged.
    pub fn journal(&self, client_id: &str, filter: &str) -> Journal {
        let mut held: Vec<(u64, u16)> = Vec::new();
        let mut resend: Vec<u16> = Vec::new();
        for (p, h) in &self.held {
            match h.state {
                State::Acking(_) | State::Written(_) => {}
                State::Resend(None) => resend.push(*p),
                State::Resend(Some(c)) => held.push((c, *p)),
                State::Delivered | State::Durable => held.push((h.counter, *p)),
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

    #[test]
    fn a_message_is_acknowledged_once_durable_and_resends_are_dropped() {
        let mut l = Ledger::recover(None, 0);
        assert_eq!(l.arrive(1, Some(7)), Arrival::Hand(1));
        assert_eq!(l.arrive(1, Some(8)), Arrival::Hand(2));
        assert_eq!(l.arrive(1, None), Arrival::Hand(3), "QoS 0 takes a counter, nothing to acknowledge");
        assert_eq!(l.arrive(1, Some(7)), Arrival::Again, "a resend of a message handed out");
        assert_eq!(l.take_acks(1, 100), Vec::<u16>::new(), "nothing is durable yet");
        l.durable(1);
        assert_eq!(l.take_acks(1, 100), vec![7]);
        assert_eq!(l.journal("c", "t").held, vec![(2, 8)], "the journal drops a message before its acknowledgement goes");
        assert_eq!(l.arrive(1, Some(7)), Arrival::Again, "resent while its acknowledgement is queued");
        l.written(1, 7);
        assert!(l.unconfirmed(1));
        assert_eq!(l.arrive(1, Some(7)), Arrival::Hand(4), "after the acknowledgement the id is the broker's to reuse");
        l.durable(4);
        assert_eq!(l.take_acks(1, 100), vec![8, 7], "in the order the messages came");
        l.written(1, 8);
        l.confirmed(1);
        assert!(!l.unconfirmed(1) && !l.busy(), "the broker read both");
    }

    #[test]
    fn an_acknowledgement_its_connection_never_wrote_goes_again() {
        let mut l = Ledger::recover(None, 0);
        for p in [1, 2, 3] {
            l.arrive(1, Some(p));
        }
        l.durable(3);
        assert_eq!(l.take_acks(1, 2), vec![1, 2], "a round at a time");
        assert_eq!(l.take_acks(1, 100), vec![3]);
        l.written(1, 1);
        l.lost(1, &[2]);
        // 1 and 2 were written: forgotten. 3 never left: due again, once the
        // broker sent it on the new connection.
        assert!(l.take_acks(2, 100).is_empty(), "not before the broker resends it");
        assert_eq!(l.arrive(2, Some(3)), Arrival::Again);
        assert_eq!(l.take_acks(2, 100), vec![3]);
        assert_eq!(l.arrive(2, Some(2)), Arrival::Hand(4), "written before the drop: a resend cannot be told from a new message");
    }

    #[test]
    fn a_rerun_acknowledges_what_the_destination_holds_and_hands_out_the_rest_again() {
        // The last run handed out 11..=14; the destination committed 12.
        let j = Journal { client_id: "c".into(), filter: "t".into(), handed: 14, held: vec![(11, 1), (12, 2), (13, 3), (14, 4)], resend: vec![] };
        let mut l = Ledger::recover(Some(&j), 12);
        assert_eq!(l.arrive(1, Some(1)), Arrival::Again, "durable: not landed again");
        assert_eq!(l.arrive(1, Some(2)), Arrival::Again);
        assert_eq!(l.take_acks(1, 100), vec![1, 2], "acknowledged once resent");
        assert_eq!(l.arrive(1, Some(3)), Arrival::Hand(13), "resent in order: the same offset as before");
        assert_eq!(l.arrive(1, Some(9)), Arrival::Hand(15), "a new message: above every counter used");
        assert_eq!(l.arrive(1, Some(4)), Arrival::Hand(16), "14 was passed: a new counter");
    }

    #[test]
    fn a_saved_position_never_covers_a_resend_that_has_not_come() {
        let j = Journal { client_id: "c".into(), filter: "t".into(), handed: 5, held: vec![(4, 1), (5, 2)], resend: vec![] };
        let mut l = Ledger::recover(Some(&j), 3);
        assert_eq!(l.arrive(1, Some(9)), Arrival::Hand(6), "a new message before the resends");
        // The destination saves 6; a crash now must not take 4 and 5 for durable.
        let again = l.journal("c", "t");
        assert_eq!(again.resend, vec![1, 2]);
        let mut l2 = Ledger::recover(Some(&again), 6);
        assert_eq!(l2.arrive(1, Some(9)), Arrival::Again);
        assert_eq!(l2.take_acks(1, 100), vec![9]);
        assert_eq!(l2.arrive(1, Some(1)), Arrival::Hand(7));
        assert_eq!(l2.arrive(1, Some(2)), Arrival::Hand(8));
    }

    #[test]
    fn a_lost_session_counts_the_messages_the_broker_owed() {
        let j = Journal { client_id: "c".into(), filter: "t".into(), handed: 2, held: vec![(1, 1), (2, 2)], resend: vec![] };
        let mut l = Ledger::recover(Some(&j), 1);
        assert_eq!(l.session_lost(), 1);
        assert!(!l.busy());
        assert_eq!(l.arrive(1, Some(1)), Arrival::Hand(3), "a new session's packet ids are new messages");
    }
}
