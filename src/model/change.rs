//! Changes: what change data capture produces, in [`ChangeBatch`]es at
//! log positions. Every destination (database, object storage, stream,
//! `null://`) takes them through [`crate::sink::Destination::write_changes`]
//! and acknowledges them before the source position moves. Rows of a full
//! load travel as [`super::RowBatch`]es through `write_rows`; files and
//! streams write those as inserts at [`Position::Snapshot`], the same
//! records changes become.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::schema::QualifiedName;
use super::value::Value;

/// Where in the source's history a change sits. The value is the
/// source's: each engine defines its form and its order (the
/// `PartialOrd` impl is in `crate::source`, which asks the engine).
/// Positions are only partly ordered: two of different sources do not
/// compare, and a sharded source's positions (one offset per shard)
/// compare only when every shard is at or past the other's. Code that
/// moves a position on therefore asks `a > b`, never `!(a <= b)`: an
/// incomparable position neither skips a change nor releases one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// Rows read by a full load (no log position).
    Snapshot,
    /// A PostgreSQL WAL position (LSN).
    PgLsn { lsn: u64 },
    /// A MySQL/MariaDB binary log file and offset.
    MysqlBinlog { file: String, pos: u64 },
    /// A row of barge's SQLite change table.
    SqliteSeq { seq: i64 },
    /// A sharded stream (Kafka partitions, Kinesis shards): the next
    /// offset to read in each shard, as the stream writes it (a decimal
    /// number of any length: Kinesis sequence numbers pass 2^64).
    /// Shared: every change of a transaction carries its position, and a
    /// stream's may hold hundreds of shards.
    Shards { offsets: std::sync::Arc<std::collections::BTreeMap<String, String>> },
}

impl Position {
    pub fn pg(lsn: u64) -> Self {
        Position::PgLsn { lsn }
    }
}

/// Text form, used on the command line (`--start-position`) and in state:
/// `pg:16/B374D848`, `mysql:binlog.000003:154`, `sqlite:42`, `snapshot`,
/// `shards:0=17,1=4`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Snapshot => f.write_str("snapshot"),
            Position::PgLsn { lsn } => write!(f, "pg:{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF),
            Position::MysqlBinlog { file, pos } => write!(f, "mysql:{file}:{pos}"),
            Position::SqliteSeq { seq } => write!(f, "sqlite:{seq}"),
            Position::Shards { offsets } => {
                f.write_str("shards:")?;
                for (i, (shard, offset)) in offsets.iter().enumerate() {
                    write!(f, "{}{shard}={offset}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a position; write pg:16/B374D848, mysql:FILE:POS, sqlite:SEQ or shards:SHARD=OFFSET,...");
        if s == "snapshot" {
            return Ok(Position::Snapshot);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "pg" => Ok(Position::PgLsn { lsn: parse_lsn(rest).ok_or_else(bad)? }),
            "mysql" => {
                let (file, pos) = rest.rsplit_once(':').ok_or_else(bad)?;
                Ok(Position::MysqlBinlog { file: file.to_string(), pos: pos.parse().map_err(|_| bad())? })
            }
            "sqlite" => Ok(Position::SqliteSeq { seq: rest.parse().map_err(|_| bad())? }),
            "shards" => {
                let shard_ok = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                let offset_ok = |o: &str| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit());
                let mut offsets = std::collections::BTreeMap::new();
                for part in rest.split(',').filter(|p| !p.is_empty()) {
                    let (id, offset) = part.split_once('=').filter(|(i, o)| shard_ok(i) && offset_ok(o)).ok_or_else(bad)?;
                    offsets.insert(id.to_string(), offset.to_string());
                }
                Ok(Position::Shards { offsets: offsets.into() })
            }
            _ => Err(bad()),
        }
    }
}

/// `16/B374D848` → its 64-bit value.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Insert {
        row: Vec<Value>,
    },
    /// `after[i] == None`: the column did not change and its value was not
    /// sent (PostgreSQL unchanged TOAST); never overwrite it.
    Update {
        before: Option<Vec<Value>>,
        after: Vec<Option<Value>>,
    },
    /// `key` holds the identity columns' values (or the whole old row for
    /// a table without a key), in the table's column order where present.
    Delete {
        key: Vec<Value>,
    },
    Truncate,
}

impl Op {
    pub fn code(&self) -> &'static str {
        match self {
            Op::Insert { .. } => "I",
            Op::Update { .. } => "U",
            Op::Delete { .. } => "D",
            Op::Truncate => "T",
        }
    }
}

/// One row change of one source table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The source table.
    pub table: QualifiedName,
    pub op: Op,
    /// Source transaction id, when the source has one.
    pub txid: Option<String>,
    /// Commit time at the source (None for full-load rows).
    pub commit_time: Option<DateTime<Utc>>,
    /// The position of the transaction this change belongs to.
    pub position: Position,
}

/// Changes in source order, whole source transactions only. After a
/// destination has made `changes` durable, the source may move to
/// `position`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    pub position: Option<Position>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_order() {
        for s in ["pg:16/B374D848", "mysql:binlog.000003:154", "sqlite:42", "snapshot", "pg:0/0"] {
            let p: Position = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert!("pg:16/B374D848".parse::<Position>().unwrap() < "pg:17/0".parse::<Position>().unwrap());
        assert!("mysql:b.000002:10".parse::<Position>().unwrap() < "mysql:b.000010:1".parse::<Position>().unwrap());
        assert!("nope".parse::<Position>().is_err());
        let sharded: Position = "shards:0=17,shardId-000000000001=49590338271490256608559692538361571095921575989136588898".parse().unwrap();
        assert_eq!(sharded.to_string().parse::<Position>().unwrap(), sharded);
        assert!("shards:a=b".parse::<Position>().is_err());
        assert!("shards:a,b=1".parse::<Position>().is_err());
    }

    /// State written before positions became the source's business (and
    /// before sharded ones existed) reads as it did, and orders as it did.
    #[test]
    fn positions_written_by_earlier_versions_still_read() {
        let old = r#"[{"kind":"pg_lsn","lsn":23456789},{"kind":"mysql_binlog","file":"binlog.000003","pos":154},{"kind":"sqlite_seq","seq":42},{"kind":"snapshot"}]"#;
        let read: Vec<Position> = serde_json::from_str(old).unwrap();
        assert_eq!(read, vec![Position::pg(23456789), Position::MysqlBinlog { file: "binlog.000003".into(), pos: 154 }, Position::SqliteSeq { seq: 42 }, Position::Snapshot]);
        assert_eq!(serde_json::to_string(&read).unwrap(), old, "what is written stays what earlier versions read");
        assert!(read[0] > Position::pg(23456788) && read[0] < Position::pg(23456790));
        assert!(Position::Snapshot < read[1], "a full load's rows come before the log");
    }
}
