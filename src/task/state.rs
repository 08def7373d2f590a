//! The resumable state of one migration run: per table, per chunk, what
//! has been loaded. Written atomically (temp file + rename + fsync) after
//! every chunk, so a crash, SIGKILL or Ctrl-C loses at most the chunk in
//! flight — and a chunk is idempotent (its key range is deleted on the
//! target before it is loaded again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkStatus {
    Pending,
    Loading,
    Done,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// Not started.
    Init,
    /// Loading chunks.
    DataSync,
    /// All chunks loaded; indexes and constraints may still be pending.
    FinishedCopy,
    /// Loaded and indexed.
    Ready,
    /// Gave up on this table (`--on-error skip-table`).
    Errored,
}

/// A half-open range of an integer key: `lo <= key < hi`; `None` is
/// unbounded on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

impl KeyRange {
    pub const ALL: KeyRange = KeyRange { lo: None, hi: None };

    pub fn is_all(&self) -> bool {
        self.lo.is_none() && self.hi.is_none()
    }

    /// A SQL predicate on `col` (already quoted), or `None` for the whole table.
    pub fn predicate(&self, col: &str) -> Option<String> {
        match (self.lo, self.hi) {
            (None, None) => None,
            (Some(lo), None) => Some(format!("{col} >= {lo}")),
            (None, Some(hi)) => Some(format!("{col} < {hi}")),
            (Some(lo), Some(hi)) => Some(format!("{col} >= {lo} AND {col} < {hi}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkState {
    pub range: KeyRange,
    pub status: ChunkStatus,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableState {
    pub status: TableStatus,
    /// The key column chunks are cut on, if any.
    pub key: Option<String>,
    pub chunks: Vec<ChunkState>,
    #[serde(default)]
    pub error: Option<String>,
    /// Rows the catalog expected, for progress bars.
    #[serde(default)]
    pub estimated_rows: u64,
}

impl TableState {
    pub fn rows(&self) -> u64 {
        self.chunks.iter().filter(|c| c.status == ChunkStatus::Done).map(|c| c.rows).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Creating the target schema.
    Schema,
    /// Loading rows.
    Load,
    /// Building indexes and constraints, setting sequences.
    Post,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    /// Redacted endpoints, to refuse resuming a different job.
    pub source: String,
    pub target: String,
    pub phase: Phase,
    pub tables: BTreeMap<String, TableState>,
    /// Source position the load is consistent with (for CDC to start from).
    #[serde(default)]
    pub snapshot_position: Option<String>,
    /// Post-load statements already run (indexes, constraints), by index.
    #[serde(default)]
    pub post_done: usize,
    /// The change capture set up before the load (full-load-and-cdc).
    #[serde(default)]
    pub capture: Option<crate::source::capture::Capture>,
}

impl RunState {
    pub fn new(source: &str, target: &str) -> Self {
        RunState { version: STATE_VERSION, source: source.into(), target: target.into(), phase: Phase::Schema, tables: BTreeMap::new(), snapshot_position: None, post_done: 0, capture: None }
    }
}

/// The state file of a run, saved on every change.
pub struct StateStore {
    pub dir: PathBuf,
    path: PathBuf,
}

impl StateStore {
    pub fn open(dir: &Path) -> Result<StateStore> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.into(), source })?;
        Ok(StateStore { dir: dir.to_path_buf(), path: dir.join("state.json") })
    }

    pub fn load(&self) -> Result<Option<RunState>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path: self.path.clone(), source }),
        };
        let state: RunState = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
            file: self.path.display().to_string(),
            line: e.line(),
            message: format!("the run state is damaged: {e}"),
            hint: Some("delete the state directory to start over (the target is then reloaded from scratch)".into()),
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::Input {
                file: self.path.display().to_string(),
                line: 0,
                message: format!("state version {} is not {STATE_VERSION}", state.version),
                hint: Some("finish the run with the barge version that started it, or delete the state directory".into()),
            });
        }
        Ok(Some(state))
    }

    pub fn save(&self, state: &RunState) -> Result<()> {
        let body = serde_json::to_vec_pretty(state).map_err(|e| Error::other(e.to_string()))?;
        write_durably(&self.path, &body)
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub use crate::util::fs::write_durably;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_survives_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(store.load().unwrap().is_none());
        let mut s = RunState::new("sqlite:a", "sqlite:b");
        s.tables.insert(
            "t".into(),
            TableState { status: TableStatus::DataSync, key: Some("id".into()), chunks: vec![ChunkState { range: KeyRange { lo: Some(1), hi: Some(10) }, status: ChunkStatus::Done, rows: 9 }], error: None, estimated_rows: 9 },
        );
        store.save(&s).unwrap();
        store.save(&s).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back.tables["t"].rows(), 9);
        std::fs::write(dir.path().join("state.json"), b"{ broken").unwrap();
        let err = store.load().unwrap_err();
        assert!(err.hint().unwrap().contains("delete the state directory"));
    }

    #[test]
    fn ranges_make_predicates() {
        assert_eq!(KeyRange { lo: Some(5), hi: Some(9) }.predicate("\"id\"").unwrap(), "\"id\" >= 5 AND \"id\" < 9");
        assert_eq!(KeyRange::ALL.predicate("id"), None);
    }
}
