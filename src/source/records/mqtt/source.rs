//! The MQTT source: a persistent session, messages as records, and each
//! message acknowledged once the destination holds it (see the module
//! documentation of `mqtt` for what a crash redelivers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rumqttc::{ConnectionError, MqttOptions, QoS, TlsConfiguration, Transport};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::journal::{self, Journal, JournalFile};
use super::ledger::{Arrival, Ledger};
use super::url::MqttUrl;
use super::wire::{self, Slot, Wire};
use crate::endpoint::{Secret, SinkEndpoint};
use crate::error::{Error, Result};
use crate::sink::BoxFuture;
use crate::source::records::{OpenOptions, Record, RecordBatch, RecordSource, StartAt};
use crate::util::retry::Retriable;

/// A bounded run (`--mode full-load`) ends once nothing arrived for this
/// long and the destination holds everything handed out ...
pub const QUIET: Duration = Duration::from_secs(2);
/// ... or once nothing moved for this long while messages wait for the
/// destination (one that buffers acknowledges only when it writes, and
/// the broker sends no more until then).
const QUIET_WAITING: Duration = Duration::from_secs(30);
/// A following run hands out an empty batch this often when nothing
/// arrives, so the loop can tick.
const TICK: Duration = Duration::from_secs(1);
/// How long the first connection and subscription may take.
const CONNECT: Duration = Duration::from_secs(30);
/// A bounded run gives up when the broker stays away this long.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Most acknowledgements in one round (sent, then confirmed by the
/// broker's answer to an UNSUBSCRIBE behind them): what a crash can land
/// twice, at most.
pub const ACK_ROUND: usize = 100;
/// Most records, and bytes of payload, in one batch.
const BATCH_RECORDS: usize = 10_000;
const BATCH_BYTES: usize = 16 << 20;
/// The largest packet MQTT can carry.
const MAX_PACKET: usize = 268_435_455;

pub struct MqttSource {
    display: String,
    filter: String,
    client_id: String,
    shard: String,
    journal: JournalFile,
    /// The filter the broker's session is subscribed to ("" for none known).
    subscribed: String,
    ledger: Ledger,
    rx: mpsc::Receiver<Wire>,
    slot: Slot,
    task: tokio::task::JoinHandle<()>,
    /// The connection now up.
    conn: Option<u64>,
    /// A SUBSCRIBE is waiting for its answer.
    subscribing: bool,
    /// The UNSUBSCRIBE sent after a round of acknowledgements, on which
    /// connection, and its packet id once written: its answer shows the
    /// broker read them (it handles a connection's packets in order).
    barrier: Option<(u64, Option<u16>)>,
    /// A filter no one subscribes to, unsubscribed as that barrier.
    barrier_filter: String,
    ready: Vec<Record>,
    ready_bytes: usize,
    follow: bool,
    /// `--start-position latest`: messages the broker kept from before
    /// (retained) are acknowledged and dropped.
    skip_retained: bool,
    last_activity: Instant,
    last_batch: Instant,
    down_since: Option<Instant>,
    /// An error the next call to `next` returns.
    fatal: Option<Error>,
}

/// The client id a task's session goes by unless `?client_id=` names one:
/// from the state directory, so every run of the task resumes the same
/// session and two tasks never share one.
pub fn default_client_id(state_dir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    // 22 characters: within the 23 every broker must accept.
    format!("barge-{}", &hex::encode(digest)[..16])
}

/// The shard (position key) of a client id's session: the id itself
/// where a shard id may hold it, else a cleaned form with a hash.
pub fn shard_of(client_id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if !client_id.is_empty() && client_id.len() <= 100 && client_id.chars().all(ok) {
        return client_id.to_string();
    }
    let clean: String = client_id.chars().take(60).map(|c| if ok(c) { c } else { '_' }).collect();
    format!("{clean}-{}", &hex::encode(Sha256::digest(client_id.as_bytes()))[..8])
}

fn password(url: &MqttUrl) -> Result<Option<Secret>> {
    if url.user.is_none() {
        return Ok(None);
    }
    if let Ok(p) = std::env::var("BARGE_SOURCE_PASSWORD") {
        return Ok(Some(Secret::new(p)));
    }
    if let Some(path) = &url.password_file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        return Ok(Some(Secret::new(text.lines().next().unwrap_or(""))));
    }
    Ok(std::env::var("BARGE_MQTT_PASSWORD").ok().map(Secret::new))
}

impl MqttSource {
    pub async fn open(ep: &SinkEndpoint, opts: OpenOptions) -> Result<MqttSource> {
        let url = MqttUrl::from_endpoint(ep)?;
        let display = ep.display.clone();
        if let StartAt::Timestamp(_) = opts.start {
            return Err(Error::usage(format!("{display}: an MQTT broker keeps no history to start at a time"))
                .with_hint("use --start-position earliest (the default: with messages the broker retained) or latest"));
        }
        let client_id = url.client_id.clone().unwrap_or_else(|| default_client_id(&opts.state_dir));
        let shard = shard_of(&client_id);
        let barrier_filter = format!("barge/ack-barrier/{shard}");
        let journal_path = journal::path(&opts.state_dir, &shard);
        let journal = Journal::load(&journal_path)?;
        if let Some(j) = journal.as_ref().filter(|j| j.client_id != client_id) {
            return Err(Error::other(format!("{}: it belongs to client id {}, not {client_id}", journal_path.display(), j.client_id)).with_hint("give each client id its own --state-dir"));
        }
        let saved = match opts.from.get(&shard) {
            None => 0,
            Some(o) => o.parse::<u64>().map_err(|_| Error::usage(format!("{display}: saved offset {o} of session {shard} is not a counter")).with_hint("MQTT offsets are whole numbers; give --start-position shards:SESSION=N or none"))?,
        };
        let ledger = Ledger::recover(journal.as_ref(), saved);
        let subscribed = journal.as_ref().map(|j| j.filter.clone()).unwrap_or_default();

        let mut options = MqttOptions::new(client_id.clone(), url.host.clone(), url.port);
        options.set_clean_session(false).set_manual_acks(true).set_keep_alive(Duration::from_secs(30)).set_max_packet_size(MAX_PACKET, 1 << 16);
        if let Some(user) = &url.user {
            let pw = password(&url)?;
            options.set_credentials(user.clone(), pw.as_ref().map(|p| p.expose().to_string()).unwrap_or_default());
        }
        if url.tls {
            let config = super::tls::client_config(&url, &display)?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        }
        let (rx, slot, task) = wire::spawn(options, Duration::from_secs(10));
        let now = Instant::now();
        let mut me = MqttSource {
            display,
            filter: url.filter.clone(),
            client_id,
            shard,
            journal: JournalFile::new(journal_path),
            subscribed,
            ledger,
            rx,
            slot,
            task,
            conn: None,
            subscribing: false,
            barrier: None,
            barrier_filter: String::new(),
            ready: Vec::new(),
            ready_bytes: 0,
            follow: opts.follow,
            skip_retained: opts.start == StartAt::Latest,
            last_activity: now,
            last_batch: now,
            down_since: None,
            fatal: None,
        };
        me.barrier_filter = barrier_filter;
        me.first_connection().await?;
        Ok(me)
    }

    /// Waits for the first connection and its subscription: a broker that
    /// cannot be reached, refuses the login or the subscription fails the
    /// open (the loop retries what may pass).
    async fn first_connection(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CONNECT;
        while self.conn.is_none() || self.subscribing {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Wire::Lost { error, .. })) if self.conn.is_none() => return Err(self.connection_error(&error)),
                Ok(Some(w)) => self.handle(w)?,
                Ok(None) => return Err(Error::other(format!("{}: the connection task ended", self.display))),
                Err(_) => {
                    let what = if self.conn.is_none() { "no answer from the broker" } else { "the broker did not answer the subscription" };
                    return Err(self.endpoint_error(format!("{what} within {} s", CONNECT.as_secs()), "check the host and port, and that the broker runs").retriable_if(true));
                }
            }
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
        }
        Ok(())
    }

    fn endpoint_error(&self, message: String, hint: &str) -> Error {
        Error::Endpoint { endpoint: self.display.clone(), message, hint: Some(hint.to_string()) }
    }

    /// A connection failure as barge's error: retriable when the network
    /// or the broker's state may change it, not for refused logins or TLS.
    fn connection_error(&self, e: &ConnectionError) -> Error {
        use rumqttc::ConnectReturnCode as Code;
        match e {
            ConnectionError::ConnectionRefused(code) => {
                let (why, hint) = match code {
                    Code::BadUserNamePassword => ("the broker refused the user name or password", "check ?user= and the password in BARGE_SOURCE_PASSWORD, BARGE_MQTT_PASSWORD or ?password_file="),
                    Code::NotAuthorized => ("the broker refused the connection: not authorized", "the broker's access rules (an AWS IoT policy's iot:Connect) must allow this client id and certificate"),
                    Code::BadClientId => ("the broker refused the client id", "give another with ?client_id= (AWS IoT policies often require the thing name)"),
                    Code::RefusedProtocolVersion => ("the broker does not speak MQTT 3.1.1", "barge speaks MQTT 3.1.1, which every MQTT 5 broker also accepts"),
                    _ => ("the broker is not available", "try again when the broker is up"),
                };
                self.endpoint_error(why.to_string(), hint).retriable_if(matches!(code, Code::ServiceUnavailable))
            }
            other => {
                if let Some((why, hint)) = super::tls::explain(other) {
                    return self.endpoint_error(why, hint);
                }
                let transient = match other {
                    ConnectionError::Io(io) => io.is_retriable(),
                    ConnectionError::Tls(rumqttc::TlsError::Io(io)) => io.is_retriable(),
                    ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout | ConnectionError::MqttState(_) => true,
                    _ => false,
                };
                self.endpoint_error(format!("cannot talk to the broker: {other}"), "check the host and port, and that the broker runs").retriable_if(transient)
            }
        }
    }

    fn client(&self) -> Option<rumqttc::AsyncClient> {
        let slot = self.slot.lock().expect("slot");
        match (&*slot, self.conn) {
            (Some((c, client)), Some(conn)) if *c == conn => Some(client.clone()),
            _ => None,
        }
    }

    /// Saves the journal when the ledger moved away from it.
    fn save(&mut self) -> Result<()> {
        if self.ledger.dirty {
            let (update, whole) = self.ledger.update(&self.subscribed);
            self.journal.save(update, whole, || self.ledger.journal(&self.client_id, &self.subscribed))?;
            self.ledger.saved();
        }
        Ok(())
    }

    /// Queues the acknowledgements due, once the journal no longer lists
    /// them, and an UNSUBSCRIBE after them whose answer confirms them. One
    /// round at a time: messages whose acknowledgement the broker has not
    /// read yet are the ones a crash lands twice, so they stay few.
    fn send_acks(&mut self) -> Result<()> {
        if self.subscribing || self.barrier.is_some() {
            return Ok(());
        }
        let (Some(conn), Some(client)) = (self.conn, self.client()) else { return Ok(()) };
        let due = self.ledger.take_acks(conn, ACK_ROUND);
        if due.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.save() {
            for (c, p) in due {
                self.ledger.unsent(conn, c, p);
            }
            return Err(e);
        }
        for (c, p) in due {
            if client.try_ack(&wire::puback(p)).is_err() {
                self.ledger.unsent(conn, c, p);
            }
        }
        if self.barrier_filter != self.filter && client.try_unsubscribe(self.barrier_filter.clone()).is_ok() {
            self.barrier = Some((conn, None));
        } else {
            self.ledger.confirmed(conn);
        }
        self.last_activity = Instant::now();
        Ok(())
    }

    /// Takes one event from the connection task.
    fn handle(&mut self, w: Wire) -> Result<()> {
        match w {
            Wire::Connected { conn, session_present } => {
                if self.down_since.take().is_some() {
                    tracing::info!("{}: reconnected", self.display);
                }
                self.conn = Some(conn);
                self.ledger.connected(conn);
                self.last_activity = Instant::now();
                if !session_present {
                    self.session_lost()?;
                }
                let client = self.client();
                if let Some(client) = client.filter(|_| self.subscribed != self.filter) {
                    if !self.subscribed.is_empty() {
                        tracing::warn!("{}: the session was subscribed to {}; now to {} instead", self.display, self.subscribed, self.filter);
                        let _ = client.try_unsubscribe(self.subscribed.clone());
                    }
                    client.try_subscribe(self.filter.clone(), QoS::AtLeastOnce).map_err(|e| self.endpoint_error(format!("cannot subscribe to {}: {e}", self.filter), "check the topic filter"))?;
                    self.subscribing = true;
                }
                self.send_acks()?;
            }
            Wire::Subscribed { conn, refused } if Some(conn) == self.conn && self.subscribing => {
                if refused {
                    self.fatal = Some(self.endpoint_error(
                        format!("the broker refused the subscription to {}", self.filter),
                        "the broker's access rules must let this client subscribe to and receive the filter (AWS IoT: iot:Subscribe on topicfilter/…, iot:Receive on topic/…)",
                    ));
                    return Ok(());
                }
                self.subscribing = false;
                self.subscribed = self.filter.clone();
                self.ledger.dirty = true;
                self.save()?;
                self.send_acks()?;
            }
            Wire::Subscribed { .. } => {}
            Wire::Message { conn, publish } => {
                self.last_activity = Instant::now();
                let pkid = (publish.qos != QoS::AtMostOnce).then_some(publish.pkid);
                if self.skip_retained && publish.retain {
                    if let (Some(p), Some(client)) = (pkid, self.client().filter(|_| self.conn == Some(conn))) {
                        let _ = client.try_ack(&wire::puback(p));
                    }
                    return Ok(());
                }
                match self.ledger.arrive(conn, pkid) {
                    Arrival::Hand(counter) => {
                        self.ready_bytes += publish.payload.len();
                        self.ready.push(Record { shard: self.shard.clone(), offset: counter.to_string(), stream: publish.topic, key: None, time: None, data: publish.payload.to_vec() });
                    }
                    // A resend of a message the destination may hold already:
                    // its acknowledgement can go now.
                    Arrival::Again => self.send_acks()?,
                }
            }
            Wire::AckWritten { conn, pkid } => self.ledger.written(conn, pkid),
            Wire::UnsubscribeWritten { conn, pkid } => {
                if self.barrier == Some((conn, None)) {
                    self.barrier = Some((conn, Some(pkid)));
                }
            }
            Wire::Unsubscribed { conn, pkid } => {
                if self.barrier == Some((conn, Some(pkid))) {
                    self.barrier = None;
                    self.ledger.confirmed(conn);
                    self.send_acks()?;
                }
            }
            Wire::Lost { conn, error, written } => {
                self.ledger.lost(conn, &written);
                if self.barrier.is_some_and(|(c, _)| c == conn) {
                    self.barrier = None;
                }
                if self.conn == Some(conn) {
                    self.conn = None;
                    self.subscribing = false;
                }
                let e = self.connection_error(&error);
                if !e.is_retriable() {
                    self.fatal = Some(e);
                } else if self.down_since.is_none() {
                    tracing::warn!("{e}; reconnecting");
                    self.down_since = Some(Instant::now());
                } else {
                    tracing::debug!("{e}; reconnecting");
                }
            }
        }
        Ok(())
    }

    /// The broker has no session for this client id (first run, session
    /// expired, or a broker that restarted without persistence).
    fn session_lost(&mut self) -> Result<()> {
        let had_session = !self.subscribed.is_empty();
        let owed = self.ledger.session_lost();
        self.subscribed.clear();
        self.ledger.dirty = true;
        self.save()?;
        if owed > 0 {
            return Err(self.endpoint_error(
                format!("the broker kept no session for client id {}: {owed} message(s) barge had read and the destination had not yet stored are lost with it", self.client_id),
                &format!("the broker dropped the session (it expired, or the broker restarted without persistence); nothing barge can fetch again. To go on, rerun: this run recorded the loss in {}", self.journal.path().display()),
            ));
        }
        if had_session {
            tracing::warn!(
                "{}: the broker kept no session for client id {} (it expired, or the broker restarted without persistence): messages published while barge was not connected are not delivered",
                self.display,
                self.client_id
            );
        }
        Ok(())
    }

    fn take_batch(&mut self) -> Result<RecordBatch> {
        let mut n = 0;
        let mut bytes = 0;
        while n < self.ready.len() && n < BATCH_RECORDS && (n == 0 || bytes < BATCH_BYTES) {
            bytes += self.ready[n].data.len();
            n += 1;
        }
        // The journal lists every message before it leaves.
        self.save()?;
        let records: Vec<Record> = self.ready.drain(..n).collect();
        self.ready_bytes -= bytes;
        self.last_batch = Instant::now();
        Ok(RecordBatch { records, position: self.position() })
    }

    fn position(&self) -> BTreeMap<String, String> {
        // Offsets after a batch's last record: everything up to the
        // highest counter handed out, which every record of the batch is at
        // or below (records leave in counter order).
        let upto = self.ready.first().map(|r| r.offset.parse::<u64>().expect("a counter") - 1).unwrap_or(self.ledger.handed());
        [(self.shard.clone(), upto.to_string())].into_iter().collect()
    }

    /// Takes what the connection task has ready without waiting.
    fn drain(&mut self) -> Result<()> {
        while self.ready.len() < BATCH_RECORDS && self.ready_bytes < BATCH_BYTES {
            match self.rx.try_recv() {
                Ok(w) => self.handle(w)?,
                Err(_) => break,
            }
        }
        Ok(())
    }
}

impl RecordSource for MqttSource {
    /// Cancel-safe: the only wait is for the connection task's channel,
    /// and everything taken from it is kept in `self` at once.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(async move {
            loop {
                if let Some(e) = self.fatal.take() {
                    return Err(e);
                }
                self.drain()?;
                if !self.ready.is_empty() {
                    return self.take_batch().map(Some);
                }
                let quiet = self.last_activity.elapsed();
                let busy = self.ledger.busy();
                if !self.follow && self.conn.is_some() && !self.subscribing && quiet >= if busy { QUIET_WAITING } else { QUIET } {
                    if busy {
                        // Ending lets the loop write what it buffers and acknowledge
                        // it; what the broker holds back waits for the next run.
                        tracing::warn!(
                            "{}: stopping with messages the destination has not written yet; the broker sends no more to this session until they are acknowledged, so more may wait there: run again to read on, or give --buffer-interval 1",
                            self.display
                        );
                    }
                    let owed = self.ledger.awaiting_resend();
                    if owed > 0 {
                        return Err(self.endpoint_error(
                            format!("the broker did not send again {owed} message(s) an earlier run read and the destination did not store"),
                            "run again to wait longer (they stay listed in the state directory), or check the broker's session settings",
                        ));
                    }
                    return Ok(None);
                }
                if !self.follow && self.down_since.is_some_and(|d| d.elapsed() >= GIVE_UP) {
                    return Err(self.endpoint_error(format!("the broker has been unreachable for {} s", GIVE_UP.as_secs()), "check that the broker runs, then rerun: nothing read is lost"));
                }
                // Nothing arrived for a while: an empty batch lets the loop tick
                // (a buffering destination writes what is due, and so
                // acknowledges, and the broker sends on).
                if self.last_batch.elapsed() >= TICK {
                    self.last_batch = Instant::now();
                    return Ok(Some(RecordBatch { records: Vec::new(), position: self.position() }));
                }
                let mut wait = TICK.saturating_sub(self.last_batch.elapsed());
                if !self.follow {
                    wait = wait.min(if busy { QUIET_WAITING } else { QUIET }.saturating_sub(quiet));
                }
                let wait = wait.max(Duration::from_millis(20));
                match tokio::time::timeout(wait, self.rx.recv()).await {
                    Ok(Some(w)) => self.handle(w)?,
                    Ok(None) => return Err(Error::other(format!("{}: the connection task ended", self.display))),
                    Err(_) => {}
                }
            }
        })
    }

    fn next_is_cancel_safe(&self) -> bool {
        true
    }

    /// Lets every message up to `offsets` be acknowledged, and sends the
    /// first round of PUBACKs. It does not wait for the broker: the next
    /// rounds go from `next` as the broker confirms each, so reading goes
    /// on meanwhile (a bounded run ends only once all are confirmed). A
    /// run stopped before that leaves the rest listed in the journal: the
    /// broker sends them again and they are acknowledged, not landed.
    fn acknowledge<'a>(&'a mut self, offsets: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(upto) = offsets.get(&self.shard).and_then(|o| o.parse::<u64>().ok()) else { return Ok(()) };
            self.ledger.durable(upto);
            self.drain()?;
            self.send_acks()
        })
    }
}

impl Drop for MqttSource {
    fn drop(&mut self) {
        // A clean DISCONNECT (after the acknowledgements queued before it);
        // the session stays with the broker. The task ends once it is sent.
        match self.client() {
            Some(client) => {
                let _ = client.try_disconnect();
            }
            None => self.task.abort(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_shards_are_stable_and_safe() {
        let dir = tempfile::tempdir().unwrap();
        let a = default_client_id(dir.path());
        assert_eq!(a, default_client_id(dir.path()));
        assert!(a.len() <= 23 && a.starts_with("barge-"), "{a}");
        assert_ne!(a, default_client_id(&dir.path().join("other")));
        assert_eq!(shard_of("thing-7"), "thing-7");
        let odd = shard_of("plant/line 1:dev");
        assert!(odd.starts_with("plant_line_1_dev-") && odd.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)), "{odd}");
        assert_ne!(shard_of("a/b"), shard_of("a:b"));
    }
}
