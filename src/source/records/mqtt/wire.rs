//! The connection to the broker, in a task of its own: it keeps polling
//! rumqttc's event loop (which writes our acknowledgements and answers
//! the broker's pings) and passes on what happened.
//!
//! Each connection gets a fresh client and event loop, numbered. When one
//! goes down, rumqttc drops the acknowledgements still queued in it; this
//! task reports which ones that connection did write, so the source knows
//! which acknowledgements never left and must go again on the next one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, NetworkOptions, Outgoing, Publish, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

/// Room for an acknowledgement of every packet id at once, so queueing
/// one never waits.
const REQUESTS: usize = 65_536 + 64;

/// What happened on connection number `conn`.
#[derive(Debug)]
pub enum Wire {
    Connected { conn: u64, session_present: bool },
    Subscribed { conn: u64, refused: bool },
    Message { conn: u64, publish: Publish },
    /// The acknowledgement of `pkid` was written to the connection.
    AckWritten { conn: u64, pkid: u16 },
    /// An UNSUBSCRIBE went out as packet `pkid`, and the broker answered one.
    UnsubscribeWritten { conn: u64, pkid: u16 },
    Unsubscribed { conn: u64, pkid: u16 },
    /// The connection went down (or could not be made); `written` lists
    /// the acknowledgements it wrote that were not reported yet.
    Lost { conn: u64, error: ConnectionError, written: Vec<u16> },
}

/// The client of the connection now up, to queue requests on.
pub type Slot = Arc<Mutex<Option<(u64, AsyncClient)>>>;

/// Starts the connection task; it ends when the receiver is dropped or
/// after a clean disconnect.
pub fn spawn(options: MqttOptions, connect_timeout: Duration) -> (mpsc::Receiver<Wire>, Slot, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    let slot: Slot = Arc::new(Mutex::new(None));
    let task = tokio::spawn(run(options, connect_timeout, tx, slot.clone()));
    (rx, slot, task)
}

async fn run(options: MqttOptions, connect_timeout: Duration, tx: mpsc::Sender<Wire>, slot: Slot) {
    let mut failures = 0u32;
    for conn in 1u64.. {
        let (client, mut events) = AsyncClient::new(options.clone(), REQUESTS);
        let mut network = NetworkOptions::new();
        network.set_connection_timeout(connect_timeout.as_secs().max(1));
        // Acknowledgements are 4-byte packets: with Nagle's algorithm a
        // round of them, and the UNSUBSCRIBE that confirms it, waits for
        // the broker's delayed TCP ACK (40 ms on Linux) before it leaves.
        network.set_tcp_nodelay(true);
        events.set_network_options(network);
        *slot.lock().expect("slot") = Some((conn, client));
        let error = match serve(conn, &mut events, &tx).await {
            Served::Ended => return,
            Served::Lost { error, was_up } => {
                if was_up {
                    failures = 0;
                }
                error
            }
        };
        // No request may go into this connection's queue any more: what is
        // in it now is dropped with it, and reported as not written.
        *slot.lock().expect("slot") = None;
        let written = leftover_events(conn, &mut events, &tx).await;
        if tx.send(Wire::Lost { conn, error, written }).await.is_err() {
            return;
        }
        drop(events);
        tokio::select! {
            _ = tokio::time::sleep(crate::util::retry::backoff(failures)) => {}
            _ = tx.closed() => return,
        }
        failures += 1;
    }
}

enum Served {
    /// Disconnected on purpose, or nobody listens any more.
    Ended,
    /// Could not connect, or (`was_up`) went down.
    Lost { error: ConnectionError, was_up: bool },
}

async fn serve(conn: u64, events: &mut EventLoop, tx: &mpsc::Sender<Wire>) -> Served {
    let mut up = false;
    loop {
        let ev = match events.poll().await {
            Ok(ev) => ev,
            Err(error) => return Served::Lost { error, was_up: up },
        };
        let wire = match ev {
            Event::Incoming(Incoming::ConnAck(ack)) => {
                up = true;
                Wire::Connected { conn, session_present: ack.session_present }
            }
            Event::Incoming(Incoming::Publish(publish)) => Wire::Message { conn, publish },
            Event::Incoming(Incoming::SubAck(ack)) => Wire::Subscribed { conn, refused: ack.return_codes.contains(&SubscribeReasonCode::Failure) },
            Event::Outgoing(Outgoing::PubAck(pkid)) => Wire::AckWritten { conn, pkid },
            Event::Outgoing(Outgoing::Unsubscribe(pkid)) => Wire::UnsubscribeWritten { conn, pkid },
            Event::Incoming(Incoming::UnsubAck(ack)) => Wire::Unsubscribed { conn, pkid: ack.pkid },
            Event::Outgoing(Outgoing::Disconnect) => return Served::Ended,
            _ => continue,
        };
        if tx.send(wire).await.is_err() {
            return Served::Ended;
        }
    }
}

/// What a connection that went down had done but not yet reported:
/// messages it read are passed on; the acknowledgements it wrote are returned.
async fn leftover_events(conn: u64, events: &mut EventLoop, tx: &mpsc::Sender<Wire>) -> Vec<u16> {
    let mut written = Vec::new();
    while let Some(ev) = events.state.events.pop_front() {
        match ev {
            Event::Outgoing(Outgoing::PubAck(pkid)) => written.push(pkid),
            Event::Incoming(Incoming::Publish(publish)) => {
                let _ = tx.send(Wire::Message { conn, publish }).await;
            }
            _ => {}
        }
    }
    written
}

/// The request that acknowledges QoS 1 packet `pkid`.
pub fn puback(pkid: u16) -> Publish {
    let mut p = Publish::new("", QoS::AtLeastOnce, Vec::new());
    p.pkid = pkid;
    p
}
