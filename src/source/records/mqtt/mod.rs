//! `mqtt://host:1883/topic-filter` and `mqtts://host:8883/topic-filter`:
//! the messages an MQTT broker (mosquitto, AWS IoT Core, EMQX, HiveMQ)
//! delivers for a topic filter, as records. The topic is the record's
//! `stream` (the default layout's `stream` column, `_stream` with
//! `--schema`), so a target can split or filter by it.
//!
//! **Session.** barge connects with MQTT 3.1.1, clean session off, and
//! subscribes at QoS 1, so the broker keeps the subscription and queues
//! what is published while barge is stopped; the next run gets it. The
//! client id names the session: by default `barge-` and a hash of the
//! state directory (one session per task, the same on every run),
//! `?client_id=` to choose it (AWS IoT policies often want the thing
//! name). A resumed session is not subscribed again: a new SUBSCRIBE
//! would make the broker send its retained messages once more. The broker
//! decides how much it queues and for how long (mosquitto drops past
//! `max_queued_messages`, 1000 by default; AWS IoT keeps a persistent
//! session an hour by default): size it for the longest stop you expect.
//! When a rerun finds the broker kept no session although messages were
//! owed, it stops with an error that says how many are gone.
//!
//! **Offsets.** MQTT messages carry no offset, so each gets a counter:
//! shard = the session (its client id), offset = a number that only
//! grows, across runs (it may skip numbers after a crash). The position
//! saved with the rows says how far the destination holds.
//!
//! **Acknowledgement.** A QoS 1 message is acknowledged (PUBACK) only
//! after the destination made it durable ([`RecordSource::acknowledge`]);
//! until then the broker holds it and resends it after a crash, so none is
//! lost. A broker lets a client hold only so many unacknowledged messages
//! (mosquitto's `max_inflight_messages`, 20 by default; AWS IoT's in-flight
//! limit); a destination that buffers (files, S3) acknowledges when it
//! writes a file, so give those `--buffer-interval 1` or the broker waits.
//!
//! **What a crash redelivers.** The broker resends every message not yet
//! acknowledged, with the packet id it had ([MQTT-4.4.0-1]). barge keeps a
//! journal in the state directory (`mqtt-SESSION.json`, see [`journal`])
//! of the messages it handed out and has not acknowledged, with their
//! counters, synced before a batch leaves and before an acknowledgement
//! goes (what changed is appended as one line; the file is rewritten whole
//! now and then, and a torn last line is ignored). On a rerun, a resent message the destination already holds is
//! acknowledged and not landed again, and one it does not hold lands with
//! its old counter where it can, so a database target (keyed on shard +
//! offset) holds each message once, and a file target that gets a message
//! of its at-least-once window again gets it under the same offset.
//! One window is left, as MQTT cannot tell a resend from a new message
//! that reuses a packet id once the broker read our PUBACK: a message
//! whose PUBACK was sent but not yet read by the broker when barge died or
//! lost its connection comes again and lands a second time, under a new
//! offset. (A PUBACK goes only for a message the broker sent on the
//! connection it goes on: mosquitto ignores one for a message it has yet
//! to resend after a reconnect.) barge keeps that window small: acknowledgements go in rounds of
//! at most `ACK_ROUND` (100), each followed by an UNSUBSCRIBE of a filter no
//! one uses (`barge/ack-barrier/SESSION`), whose answer shows the broker
//! read the round (it handles a connection's packets in order); the next
//! round waits for it, while reading and the destination go on. So a crash lands at most 100 messages twice, and a
//! clean stop none. QoS 0 messages (published at QoS 0: the broker
//! delivers at the lower of the two) are never acknowledged nor resent: a
//! crash loses those in flight, as QoS 0 means.
//!
//! **Bounded runs** (`--mode full-load`) take what the broker delivers and
//! stop once nothing arrived for 2 s (`QUIET`) and the destination holds
//! all of it, or once nothing moved for 30 s while messages wait for a
//! destination that buffers (with a warning: the broker may hold more
//! back until they are acknowledged); following runs wait for more.
//! `--start-position latest` skips the messages a broker retained from
//! before the subscription; `earliest` (the default) takes them. MQTT
//! keeps no history, so there is no `at-timestamp`.
//!
//! **TLS** (`mqtts://`): rustls with ring; the broker's certificate is
//! checked against `?ca=FILE` (PEM) or the system's roots, and a client
//! certificate is given with `?cert=FILE&key_file=FILE` (PEM), as AWS IoT
//! requires. **Login**: `?user=NAME`, the password from
//! `BARGE_SOURCE_PASSWORD`, `?password_file=PATH` or `BARGE_MQTT_PASSWORD`,
//! never the URL.

#[cfg(feature = "mqtt")]
pub mod journal;
#[cfg(feature = "mqtt")]
mod ledger;
#[cfg(feature = "mqtt")]
mod source;
#[cfg(feature = "mqtt")]
mod tls;
pub mod url;
#[cfg(feature = "mqtt")]
mod wire;

#[cfg(feature = "mqtt")]
pub use source::{default_client_id, shard_of, MqttSource, QUIET};

#[cfg(doc)]
use super::RecordSource;
