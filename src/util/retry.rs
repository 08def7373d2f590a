//! Retrying what may pass: one backoff for every retry loop (a change
//! capture reconnecting, a stream a throttle refused), and one answer to
//! "may this pass?" per driver, from the driver's own codes and kinds
//! (SQLSTATE, MySQL error numbers, `io::ErrorKind`, HTTP status), never
//! from the words of a message. Errors carry the answer as
//! [`Error::is_retriable`](crate::error::Error::is_retriable), set where a
//! driver's error becomes barge's.

use std::io;
use std::time::Duration;

/// The first retry waits about this long ...
const FIRST: Duration = Duration::from_millis(100);
/// ... doubling up to this. Small enough that a reconnect follows a
/// restarted server within seconds; large enough that a throttled stream
/// or a recovering server is not hammered.
const CAP: Duration = Duration::from_secs(10);

/// Delay before retry number `attempt` (0-based): 100 ms doubling up to
/// 10 s, each drawn at random from the upper half of its range ("equal
/// jitter"), so parallel writers spread out instead of retrying in step.
pub fn backoff(attempt: u32) -> Duration {
    let cap = CAP.as_millis() as u64;
    let base = (FIRST.as_millis() as u64).saturating_mul(1u64 << attempt.min(16)).min(cap);
    let half = base / 2;
    Duration::from_millis(half + random_below(half + 1))
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return n / 2;
    }
    u64::from_le_bytes(b) % n.max(1)
}

/// Whether a driver's error may pass if the work is tried again: the
/// connection was refused, broke or timed out, the server is starting or
/// shutting down, a lock or throttle said "later".
pub trait Retriable {
    fn is_retriable(&self) -> bool;
}

impl Retriable for io::ErrorKind {
    fn is_retriable(&self) -> bool {
        use io::ErrorKind::*;
        matches!(
            self,
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe | TimedOut | UnexpectedEof | Interrupted | HostUnreachable | NetworkUnreachable | NetworkDown
        )
    }
}

impl Retriable for io::Error {
    fn is_retriable(&self) -> bool {
        self.kind().is_retriable()
    }
}

/// A PostgreSQL SQLSTATE: connection exceptions (class 08), the server
/// shutting down or starting up (57P01-57P03), too many connections,
/// serialization failures and deadlocks (class 40), an object in use (a
/// replication slot another process still holds) or a lock not available.
pub fn sqlstate_is_transient(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("40") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "55006" | "55P03")
}

impl Retriable for tokio_postgres::Error {
    fn is_retriable(&self) -> bool {
        if let Some(db) = self.as_db_error() {
            return sqlstate_is_transient(db.code().code());
        }
        self.is_closed() || io_source(self).is_some_and(|e| e.is_retriable())
    }
}

/// MySQL/MariaDB: the connection lost or refused, the server going away or
/// shutting down, too many connections, a lock wait timeout or deadlock.
pub fn mysql_code_is_transient(code: u16, state: &str) -> bool {
    state.starts_with("08") || matches!(code, 1040 | 1053 | 1077 | 1205 | 1213 | 1927 | 2002 | 2003 | 2006 | 2013)
}

impl Retriable for mysql_async::Error {
    fn is_retriable(&self) -> bool {
        use mysql_async::{DriverError, Error, IoError};
        match self {
            Error::Io(IoError::Io(e)) => e.is_retriable(),
            Error::Io(_) => false,
            Error::Server(s) => mysql_code_is_transient(s.code, &s.state),
            Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => true,
            _ => false,
        }
    }
}

impl Retriable for pgwire_replication::PgWireError {
    fn is_retriable(&self) -> bool {
        use pgwire_replication::PgWireError;
        match self {
            PgWireError::Io(e) => e.is_retriable(),
            PgWireError::Task(_) => true,
            // The server's error response, formatted with its code.
            PgWireError::Server(text) => text.rsplit_once("SQLSTATE ").is_some_and(|(_, code)| sqlstate_is_transient(code.get(..5).unwrap_or(code))),
            _ => false,
        }
    }
}

/// Kafka (rskafka): the connection refused or lost, a request that timed
/// out or ran out of retries, or a broker code that says "later" (a
/// leader moving or not elected yet, a topic's metadata not propagated).
#[cfg(feature = "kafka")]
impl Retriable for rskafka::client::error::Error {
    fn is_retriable(&self) -> bool {
        use rskafka::client::error::{Error, ProtocolError as P, RequestError};
        match self {
            Error::Connection(_) | Error::Timeout | Error::RetryFailed(_) => true,
            Error::Request(RequestError::IO(e)) => e.is_retriable(),
            Error::Request(RequestError::Poisoned(_)) => true,
            Error::Request(_) | Error::InvalidResponse(_) => false,
            Error::ServerError { protocol_error, .. } => matches!(
                protocol_error,
                P::UnknownTopicOrPartition | P::LeaderNotAvailable | P::NotLeaderOrFollower | P::RequestTimedOut | P::BrokerNotAvailable | P::ReplicaNotAvailable | P::NetworkException | P::KafkaStorageError | P::FencedLeaderEpoch | P::UnknownLeaderEpoch | P::OffsetNotAvailable | P::NotController
            ),
            _ => false,
        }
    }
}

/// An HTTP status that says "later": a timeout, a throttle, a server error.
pub fn http_status_is_transient(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status)
}

/// The `io::Error` under an error, if there is one.
fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io);
        }
        src = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        for attempt in 0..30 {
            let d = backoff(attempt).as_millis() as u64;
            let base = (100u64 << attempt.min(16)).min(10_000);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d} ms");
        }
    }

    #[test]
    fn transience_comes_from_codes() {
        assert!(io::Error::from(io::ErrorKind::ConnectionRefused).is_retriable());
        assert!(!io::Error::from(io::ErrorKind::PermissionDenied).is_retriable());
        assert!(sqlstate_is_transient("57P03") && sqlstate_is_transient("08006") && sqlstate_is_transient("40001"));
        assert!(!sqlstate_is_transient("23505") && !sqlstate_is_transient("42P01") && !sqlstate_is_transient("28P01"));
        assert!(mysql_code_is_transient(2013, "HY000") && mysql_code_is_transient(1205, "HY000") && mysql_code_is_transient(0, "08S01"));
        assert!(!mysql_code_is_transient(1062, "23000") && !mysql_code_is_transient(1045, "28000"));
        let slot_busy = pgwire_replication::PgWireError::Server("replication slot \"s\" is active for PID 7 (SQLSTATE 55006)".into());
        assert!(slot_busy.is_retriable());
        let no_slot = pgwire_replication::PgWireError::Server("replication slot \"s\" does not exist (SQLSTATE 42704)".into());
        assert!(!no_slot.is_retriable());
        assert!(http_status_is_transient(503) && http_status_is_transient(429) && !http_status_is_transient(400));
    }

    #[test]
    fn a_retriable_error_shows_as_the_error_it_wraps() {
        use crate::error::Error;
        let e = Error::Endpoint { endpoint: "postgres://h/d".into(), message: "cannot connect".into(), hint: Some("is it running?".into()) };
        let (text, code, kind) = (e.to_string(), e.exit_code(), e.kind());
        let r = e.retriable_if(true);
        assert!(r.is_retriable());
        assert_eq!((r.to_string(), r.exit_code(), r.kind()), (text, code, kind));
        assert_eq!(r.hint().as_deref(), Some("is it running?"));
        assert!(r.with_hint("later").is_retriable());
        assert!(!Error::other("bad row").retriable_if(false).is_retriable());
    }

    /// A refused connection is marked where the driver's error becomes
    /// barge's, for both servers (nothing listens on port 1).
    #[test]
    fn a_refused_connection_is_retriable() {
        let rt = crate::util::runtime::build(crate::util::runtime::Workers::Caller).unwrap();
        for url in ["postgres://u@127.0.0.1:1/d", "mysql://u@127.0.0.1:1/d"] {
            let ep = crate::endpoint::Endpoint::parse(url).unwrap();
            let e = rt.block_on(crate::db::Db::connect(&ep, crate::endpoint::Role::Source)).err().expect("port 1 refuses");
            assert!(e.is_retriable(), "{url}: {e}");
        }
    }
}
