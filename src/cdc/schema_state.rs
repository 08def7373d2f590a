//! What change capture knows of each table beyond the source catalog,
//! kept in the run's state directory (`cdc-schema.json`) so a restart
//! picks up where the last run was:
//!
//! - the table's definition after each DDL barge followed, with the
//!   position it holds from (a restart between a source DDL and its
//!   application reads the older one, and the DDL again);
//! - tables stopped by a change barge does not carry, with the reason:
//!   they stay stopped across restarts until the user reloads them;
//! - tables whose rows were copied at a position (a table created at the
//!   source, or reloaded), whose earlier changes are in the copy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Position, QualifiedName, Table};

pub const FILE_NAME: &str = "cdc-schema.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub name: QualifiedName,
    /// Changes after this position have this layout (`None`: from the start).
    pub from: Option<Position>,
    pub table: Table,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    pub name: QualifiedName,
    pub reason: String,
    /// The position the table's changes stopped at.
    pub at: Option<Position>,
    pub since: String,
}

/// A table whose rows were copied from a snapshot: changes committed at
/// or before `copied_at` are in the copy and are not applied again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Copied {
    pub name: QualifiedName,
    pub copied_at: Position,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchemaState {
    #[serde(default)]
    pub versions: Vec<Version>,
    #[serde(default)]
    pub stopped: Vec<Stopped>,
    #[serde(default)]
    pub copied: Vec<Copied>,
    /// Replica identities barge set to FULL on tables it began to capture
    /// during the run (`barge cleanup` restores them).
    #[serde(default)]
    pub replica_identity: Vec<crate::source::postgres::wal::ReplicaIdentity>,
    #[serde(skip)]
    path: PathBuf,
}

impl SchemaState {
    pub fn load(state_dir: &Path) -> Result<SchemaState> {
        let path = state_dir.join(FILE_NAME);
        let mut s: SchemaState = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Input {
                file: path.display().to_string(),
                line: e.line(),
                message: e.to_string(),
                hint: Some("the file records the tables' definitions during change capture; restore it, or remove it and reload the tables whose definition changed (--reload)".into()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SchemaState::default(),
            Err(e) => return Err(Error::Read { path, source: e }),
        };
        s.path = path;
        Ok(s)
    }

    pub fn save(&self) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::other(e.to_string()))?;
        crate::task::state::write_durably(&self.path, &body)
    }

    /// The table's definition for changes after `at`, when DDL changed it.
    pub fn version_at(&self, name: &QualifiedName, at: Option<&Position>) -> Option<&Table> {
        self.versions.iter().rev().find(|v| &v.name == name && v.from.as_ref().is_none_or(|f| at.is_some_and(|a| f <= a))).map(|v| &v.table)
    }

    /// Records a new definition; older ones no longer needed are dropped
    /// (all but the newest at or before `applied`).
    pub fn record(&mut self, name: &QualifiedName, from: Option<Position>, table: Table, applied: Option<&Position>) {
        self.versions.push(Version { name: name.clone(), from, table });
        let keep = self.versions.iter().rposition(|v| &v.name == name && v.from.as_ref().is_none_or(|f| applied.is_some_and(|a| f <= a)));
        if let Some(k) = keep {
            let mut i = 0;
            self.versions.retain(|v| {
                let drop = &v.name == name && i < k && v.from.as_ref().is_none_or(|f| applied.is_some_and(|a| f <= a));
                i += 1;
                !drop
            });
        }
    }

    pub fn stopped(&self, name: &QualifiedName) -> Option<&Stopped> {
        self.stopped.iter().find(|s| &s.name == name)
    }

    pub fn stop(&mut self, name: &QualifiedName, reason: &str, at: Option<Position>) {
        self.stopped.retain(|s| &s.name != name);
        self.stopped.push(Stopped { name: name.clone(), reason: reason.to_string(), at, since: chrono::Utc::now().to_rfc3339() });
    }

    /// A reload starts the table afresh: no stop, no older definitions.
    pub fn reloaded(&mut self, name: &QualifiedName, copied_at: Position, table: Table) {
        self.stopped.retain(|s| &s.name != name);
        self.versions.retain(|v| &v.name != name);
        self.copied.retain(|c| &c.name != name);
        self.versions.push(Version { name: name.clone(), from: None, table });
        self.copied.push(Copied { name: name.clone(), copied_at });
    }

    pub fn copied_at(&self, name: &QualifiedName) -> Option<&Position> {
        self.copied.iter().find(|c| &c.name == name).map(|c| &c.copied_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `cdc-schema.json` as runs before positions became the source's
    /// own wrote it: it still loads, and its positions order the same.
    #[test]
    fn a_state_file_written_before_still_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"versions":[],"stopped":[{"name":{"schema":"public","name":"s"},"reason":"its primary key changed","at":{"kind":"pg_lsn","lsn":4096},"since":"2026-12-01T10:00:00Z"}],
            "copied":[{"name":{"schema":"public","name":"t"},"copied_at":{"kind":"pg_lsn","lsn":23456789}},{"name":{"name":"m"},"copied_at":{"kind":"mysql_binlog","file":"binlog.000009","pos":154}}]}"#;
        std::fs::write(dir.path().join(FILE_NAME), old).unwrap();
        let s = SchemaState::load(dir.path()).unwrap();
        let t = s.copied_at(&QualifiedName::new(Some("public"), "t")).unwrap();
        assert_eq!(t, &Position::pg(23456789));
        assert!(&Position::pg(23456788) < t && t < &Position::pg(23456790), "changes before the copy are skipped, after it applied");
        let m = s.copied_at(&QualifiedName::bare("m")).unwrap();
        assert!(m < &Position::MysqlBinlog { file: "binlog.000010".into(), pos: 4 });
        assert_eq!(s.stopped(&QualifiedName::new(Some("public"), "s")).map(|x| x.reason.as_str()), Some("its primary key changed"));
    }

    #[test]
    fn versions_are_chosen_by_position_and_survive_a_reload_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let name = QualifiedName::bare("t");
        let mut s = SchemaState::load(dir.path()).unwrap();
        let pos = |p: u64| Position::MysqlBinlog { file: "b.000001".into(), pos: p };
        let mut v1 = Table::new(name.clone());
        v1.comment = Some("v1".into());
        let mut v2 = v1.clone();
        v2.comment = Some("v2".into());
        s.record(&name, Some(pos(100)), v1, Some(&pos(50)));
        s.record(&name, Some(pos(200)), v2, Some(&pos(150)));
        assert_eq!(s.version_at(&name, Some(&pos(90))), None, "before the first DDL: the catalog's");
        assert_eq!(s.version_at(&name, Some(&pos(100))).unwrap().comment.as_deref(), Some("v1"));
        assert_eq!(s.version_at(&name, Some(&pos(250))).unwrap().comment.as_deref(), Some("v2"));
        s.stop(&name, "its primary key changed", Some(pos(300)));
        s.save().unwrap();
        let again = SchemaState::load(dir.path()).unwrap();
        assert_eq!(again.stopped(&name).unwrap().reason, "its primary key changed");
        assert_eq!(again.versions.len(), 2);
        let mut again = again;
        again.record(&name, Some(pos(400)), Table::new(name.clone()), Some(&pos(350)));
        assert_eq!(again.versions.len(), 2, "v1 is no longer needed once v2 is applied");
    }
}
