//! Getting a source ready to capture changes, and undoing it.
//!
//! `begin` is called before the rows are read (by a full load or a pack):
//! it makes the source keep every change from that moment on and returns
//! the position the changes start at. With `begin_consistent`, the readers
//! can also see exactly the data as of that position (PostgreSQL: an
//! exported snapshot; MySQL: connections that opened a consistent snapshot
//! while the tables were locked). Without it (a resumed load), applying is
//! idempotent (upsert and delete by key), so changes between the position
//! and what the readers saw apply again harmlessly.
//!
//! - PostgreSQL: a publication and a logical replication slot (pgoutput).
//! - MySQL/MariaDB: checks the binlog settings and reads the binlog file
//!   and offset.
//! - SQLite: a change table and triggers on every captured table.

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Position, Table};

/// Names of the objects barge creates on the source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaptureOptions {
    /// PostgreSQL replication slot (created unless it exists).
    pub slot: Option<String>,
    /// PostgreSQL publication (created unless it exists).
    pub publication: Option<String>,
}

/// What `begin` set up: where the changes start, and the names to find
/// the capture objects again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capture {
    pub position: Position,
    pub slot: Option<String>,
    pub publication: Option<String>,
    /// PostgreSQL tables whose replica identity barge set to FULL, with
    /// what it was before (`barge cleanup` restores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_identity: Vec<crate::source::postgres::wal::ReplicaIdentity>,
    /// A record source (a stream or files): how its records are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<crate::source::records::changes::RecordCapture>,
}

/// What the readers use to see the data exactly at the capture position.
pub enum Snapshot {
    None,
    /// `SET TRANSACTION SNAPSHOT '<name>'` in each reader's transaction.
    Postgres(crate::source::postgres::wal::ExportedSnapshot),
    /// Connections already inside `START TRANSACTION WITH CONSISTENT SNAPSHOT`.
    Mysql(Vec<crate::db::mysql::MyConn>),
}

impl Snapshot {
    pub fn pg_name(&self) -> Option<&str> {
        match self {
            Snapshot::Postgres(s) => Some(&s.name),
            _ => None,
        }
    }
}

/// A slot or publication name barge makes up: lowercase, digits, `_`.
pub fn default_name(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    format!("barge_{}", hex::encode(&h[..5]))
}

fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("{kind} name `{name}` is not valid: use 1 to 63 lowercase letters, digits and underscores")))
    }
}

fn names(opts: &CaptureOptions, seed: &str) -> Result<(String, String)> {
    let slot = opts.slot.clone().unwrap_or_else(|| default_name(seed));
    let publication = opts.publication.clone().unwrap_or_else(|| slot.clone());
    check_name("slot", &slot)?;
    check_name("publication", &publication)?;
    Ok((slot, publication))
}

/// Makes `source` keep the changes to `tables` from now on.
pub async fn begin(source: &Endpoint, tables: &[Table], opts: &CaptureOptions) -> Result<Capture> {
    let seed = format!("{source}\n{}", uuid::Uuid::new_v4());
    Ok(begin_consistent(source, tables, opts, &seed, 0).await?.0)
}

/// Like [`begin`], and also returns a snapshot for `readers` readers that
/// matches the position exactly (when the source can give one).
/// `seed` picks the default slot name, so a rerun of the same task finds
/// its slot again.
pub async fn begin_consistent(source: &Endpoint, tables: &[Table], opts: &CaptureOptions, seed: &str, readers: usize) -> Result<(Capture, Snapshot)> {
    match source {
        Endpoint::Postgres(ep) => {
            let (slot, publication) = names(opts, seed)?;
            let (position, snap, replica_identity) = crate::source::postgres::wal::prepare(ep, tables, &slot, &publication, readers > 0).await?;
            let snapshot = snap.map(Snapshot::Postgres).unwrap_or(Snapshot::None);
            Ok((Capture { position, slot: Some(slot), publication: Some(publication), replica_identity, records: None }, snapshot))
        }
        Endpoint::Mysql(ep) => {
            let (position, conns) = crate::source::mysql::binlog::prepare(ep, readers).await?;
            let snapshot = if conns.is_empty() { Snapshot::None } else { Snapshot::Mysql(conns) };
            Ok((Capture { position, slot: None, publication: None, replica_identity: Vec::new(), records: None }, snapshot))
        }
        Endpoint::Sqlite(ep) => {
            let position = crate::source::sqlite::changes::prepare(ep, tables).await?;
            Ok((Capture { position, slot: None, publication: None, replica_identity: Vec::new(), records: None }, Snapshot::None))
        }
        other => Err(Error::usage(format!("{other} cannot be a change source: read changes from postgres://, mysql:// or sqlite:"))),
    }
}

/// Removes what `begin` created. Returns what was done, for the user.
pub async fn cleanup(source: &Endpoint, capture: &Capture) -> Result<Vec<String>> {
    match source {
        Endpoint::Postgres(ep) => {
            let slot = capture.slot.as_deref().ok_or_else(|| Error::usage("no slot name recorded; give --slot"))?;
            let publication = capture.publication.as_deref().unwrap_or(slot);
            crate::source::postgres::wal::cleanup(ep, slot, publication, &capture.replica_identity).await
        }
        Endpoint::Sqlite(ep) => crate::source::sqlite::changes::cleanup(ep).await,
        Endpoint::Mysql(_) => Ok(vec!["nothing to remove on MySQL/MariaDB (the binary log is the server's own)".into()]),
        other => Err(Error::usage(format!("{other} is not a change source"))),
    }
}
