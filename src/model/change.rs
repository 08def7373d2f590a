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

/// Where in the source's history a change sits. Positions of one source
/// are totally ordered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
}

impl Position {
    pub fn pg(lsn: u64) -> Self {
        Position::PgLsn { lsn }
    }
}

/// Text form, used on the command line (`--start-position`) and in state:
/// `pg:16/B374D848`, `mysql:binlog.000003:154`, `sqlite:42`, `snapshot`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Snapshot => f.write_str("snapshot"),
            Position::PgLsn { lsn } => write!(f, "pg:{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF),
            Position::MysqlBinlog { file, pos } => write!(f, "mysql:{file}:{pos}"),
            Position::SqliteSeq { seq } => write!(f, "sqlite:{seq}"),
        }
    }
}

impl FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a position; write pg:16/B374D848, mysql:FILE:POS or sqlite:SEQ");
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
    }
}
