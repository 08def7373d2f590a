//! Whose state a state directory holds. A run's state (chunks loaded, the
//! change capture's slot and position) is only true of the databases it was
//! recorded against: the same URL can reach a re-created database or
//! another server. So the state directory also records who the source and
//! target are (`identity.json`) and the target's `barge_cdc_state` row as
//! last seen, and every run checks them, and the tables the run created,
//! before it trusts the state. What differs stops the run with the flag
//! that starts over: `--restart`.
//!
//! Identities: PostgreSQL's system identifier (one per cluster, kept across
//! restarts) and the database's OID (new when a database is re-created);
//! MySQL's `@@server_uuid` (MariaDB has none: its host name, data
//! directory and the creation time of its `mysql.global_priv` table) and
//! the schema; a SQLite file's path, inode and creation time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{write_durably, Phase, RunState, StateStore};
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};

const FILE_NAME: &str = "identity.json";

/// Who an endpoint is, beyond its URL.
pub use crate::db::Identity;

impl Identity {
    /// What about `self` (recorded) differs from `now`, in words; `None`
    /// when they are the same endpoint.
    fn differs(&self, now: &Identity) -> Option<String> {
        use Identity as I;
        match (self, now) {
            (I::Postgres { system_identifier: a, database: da, database_oid: oa }, I::Postgres { system_identifier: b, database: db, database_oid: ob }) => {
                if let (Some(a), Some(b)) = (a, b) {
                    if a != b {
                        return Some(format!("another PostgreSQL server answers (system identifier {b}; the state was recorded on {a})"));
                    }
                }
                if da != db {
                    return Some(format!("another database answers ({db}; the state was recorded on {da})"));
                }
                (oa != ob).then(|| format!("database {db} was dropped and re-created (its OID is {ob}; the state was recorded with {oa})"))
            }
            (I::Mysql { server: a, schema: sa }, I::Mysql { server: b, schema: sb }) => {
                if a != b {
                    return Some(format!("another MySQL/MariaDB server answers ({b}; the state was recorded on {a})"));
                }
                (sa != sb).then(|| format!("another schema answers ({sb}; the state was recorded on {sa})"))
            }
            (I::Sqlite { path: pa, inode: ia, created: ca }, I::Sqlite { inode: ib, created: cb, .. }) => {
                let recreated = ia != ib || matches!((ca, cb), (Some(a), Some(b)) if a != b);
                recreated.then(|| format!("{pa} is another file than the one the state was recorded with (it was deleted and created again, or replaced)"))
            }
            (I::Other { url: a }, I::Other { url: b }) => (a != b).then(|| format!("{b} is not {a}")),
            (a, b) => Some(format!("it is another kind of database ({}; the state was recorded on {})", b.engine(), a.engine())),
        }
    }

    fn engine(&self) -> &'static str {
        match self {
            Identity::Postgres { .. } => "PostgreSQL",
            Identity::Mysql { .. } => "MySQL/MariaDB",
            Identity::Sqlite { .. } => "SQLite",
            Identity::Other { .. } => "files or a stream",
        }
    }
}

/// What `identity.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub source: Identity,
    pub target: Identity,
    /// The target's `barge_cdc_state` position for this task when last
    /// seen: the target must still hold it, or a later one.
    #[serde(default)]
    pub cdc_position: Option<String>,
}

fn path_of(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn load(dir: &Path) -> Result<Option<Recorded>> {
    let path = path_of(dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Input {
            file: path.display().to_string(),
            line: e.line(),
            message: format!("the state's identity record is damaged: {e}"),
            hint: Some("rerun with --restart to start over".into()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

fn save(dir: &Path, r: &Recorded) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.into(), source })?;
    let body = serde_json::to_vec_pretty(r).map_err(|e| Error::other(e.to_string()))?;
    write_durably(&path_of(dir), &body)
}

/// Reads who `ep` is, on an open connection.
pub async fn of(ep: &Endpoint, db: &mut Db) -> Result<Identity> {
    db.identity(ep).await
}

async fn identity_of(ep: &Endpoint, role: Role) -> Result<Identity> {
    if !ep.kind().is_database() {
        return Ok(Identity::Other { url: ep.to_string() });
    }
    let mut db = Db::connect(ep, role).await?;
    of(ep, &mut db).await
}

/// The name the target's `barge_cdc_state` row has for the task whose
/// state is in `dir` (change capture names its task after the directory).
pub fn task_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "barge".into())
}

/// The position the target's `barge_cdc_state` holds for `task`; `None`
/// when it has no such row (or no such table).
pub async fn target_position(db: &mut Db, task: &str) -> Result<Option<String>> {
    let table = crate::sink::db::STATE_TABLE;
    let sql = format!("SELECT position FROM {table} WHERE task = '{}'", task.replace('\'', "''"));
    // A target without the state table has no row.
    db.text_if_table(&sql).await
}

/// The state of `dir` that a run would carry on from, if any: a run
/// that has not finished, or a finished load whose changes are still being
/// applied.
fn live_state(dir: &Path) -> Result<Option<RunState>> {
    if !dir.join("state.json").exists() {
        return Ok(None);
    }
    let state = StateStore::open(dir)?.load()?;
    Ok(state.filter(|s| s.phase != Phase::Done || s.capture.is_some()))
}

/// Checks that the state in `dir` belongs to `src` and `dst` as they are
/// now, before a run trusts it; records who they are for the next run.
/// `plan_tables` gives the tables the run creates on the target, keyed by
/// their state name; it is only called when the state says they exist.
pub async fn check<F, Fut>(src: &Endpoint, dst: &Endpoint, dir: &Path, plan_tables: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(String, crate::schema::target::TargetTable)>>>,
{
    // One after the other: a source that cannot be reached leaves no
    // SQLite target file behind.
    let source = identity_of(src, Role::Source).await?;
    let target = identity_of(dst, Role::Target).await?;
    let state = live_state(dir)?;
    let recorded = load(dir)?;
    let Some(state) = state else {
        // Nothing to carry on from: this run starts afresh, here.
        return save(dir, &Recorded { source, target, cdc_position: None });
    };
    let mut problems = Vec::new();
    let mut cdc_position = None;
    if let Some(r) = &recorded {
        if let Some(why) = r.source.differs(&source) {
            problems.push(format!("the source is not the one the state was recorded with: {why}"));
        }
        if let Some(why) = r.target.differs(&target) {
            problems.push(format!("the target is not the one the state was recorded with: {why}"));
        }
        cdc_position = r.cdc_position.clone();
    }
    if problems.is_empty() {
        if let (Some(slot), Endpoint::Postgres(_)) = (state.capture.as_ref().and_then(|c| c.slot.as_deref()), src) {
            if !crate::source::slot_exists(src, slot).await? {
                problems.push(format!("the replication slot {slot} is gone from the source (dropped, or invalidated for falling too far behind), and the changes it held with it"));
            }
        }
    }
    if problems.is_empty() && dst.kind().is_database() {
        let mut db = Db::connect(dst, Role::Target).await?;
        if state.phase != Phase::Schema {
            let planned = plan_tables().await?;
            let expected: Vec<&crate::schema::target::TargetTable> = planned.iter().filter(|(k, _)| state.tables.contains_key(k)).map(|(_, t)| t).collect();
            let present = super::target_schema::existing_tables(&mut db, &expected).await?;
            let gone: Vec<&str> = expected.iter().filter(|t| !present.contains(&t.sql_name)).map(|t| t.sql_name.as_str()).collect();
            if !gone.is_empty() {
                problems.push(format!("tables the run created are gone from the target: {}", list(&gone)));
            }
        }
        let task = task_name(dir);
        let now = target_position(&mut db, &task).await?;
        match (&cdc_position, &now) {
            (Some(seen), None) => problems.push(format!(
                "the target has no {} row for task {task}, which was at {seen}: the target was emptied or re-created",
                crate::sink::db::STATE_TABLE
            )),
            (Some(seen), Some(now)) => {
                let (a, b) = (seen.parse::<crate::model::Position>(), now.parse::<crate::model::Position>());
                if let (Ok(a), Ok(b)) = (a, b) {
                    if b < a {
                        problems.push(format!("the target's {} row for task {task} is at {b}, behind {a} recorded in the state: the target was restored from an older copy", crate::sink::db::STATE_TABLE));
                    }
                }
            }
            _ => {}
        }
        if now.is_some() {
            cdc_position = now;
        }
    }
    if !problems.is_empty() {
        return Err(Error::Other {
            message: format!(
                "the state in {} ({}) does not match what the databases hold now, so the run cannot carry on from it:\n  - {}",
                dir.display(),
                describe(&state),
                problems.join("\n  - ")
            ),
            hint: Some("add --restart to discard this state and start over: the full load runs again (with --target-schema truncate if the target still has the tables); or give another --state-dir".into()),
        });
    }
    save(dir, &Recorded { source, target, cdc_position })
}


fn list(items: &[&str]) -> String {
    if items.len() > 8 {
        format!("{} and {} more", items[..8].join(", "), items.len() - 8)
    } else {
        items.join(", ")
    }
}

fn describe(s: &RunState) -> String {
    let phase = match s.phase {
        Phase::Schema => "creating tables",
        Phase::Load => "loading rows",
        Phase::Post => "building keys and indexes",
        Phase::Done => "applying changes",
    };
    format!("{phase}, {} table(s)", s.tables.len())
}

/// After change capture ran: remembers the target's position, so the next
/// run can tell whether the target still holds it.
pub async fn record_cdc_position(dst: &Endpoint, dir: &Path) -> Result<()> {
    if !dst.kind().is_database() {
        return Ok(());
    }
    let Some(mut r) = load(dir)? else { return Ok(()) };
    let mut db = Db::connect(dst, Role::Target).await?;
    if let Some(p) = target_position(&mut db, &task_name(dir)).await? {
        r.cdc_position = Some(p);
        save(dir, &r)?;
    }
    Ok(())
}

/// `--restart`: forgets the run recorded in `dir` and what it set up: the
/// change capture on the source (slot and publication, or SQLite's
/// triggers), the target's `barge_cdc_state` row for the task, and the
/// state files. The target's tables stay: `--target-schema` decides.
pub async fn restart(src: &Endpoint, dst: &Endpoint, dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let state = if dir.join("state.json").exists() { StateStore::open(dir)?.load().ok().flatten() } else { None };
    if let Some(capture) = state.as_ref().and_then(|s| s.capture.as_ref()) {
        match crate::source::capture::cleanup(src, capture).await {
            Ok(done) => done.into_iter().for_each(|line| tracing::info!("{line}")),
            Err(e) => tracing::warn!("could not remove the earlier change capture: {e}"),
        }
    }
    if dst.kind().is_database() {
        let mut db = Db::connect(dst, Role::Target).await?;
        let task = task_name(dir);
        if target_position(&mut db, &task).await?.is_some() {
            db.execute(&format!("DELETE FROM {} WHERE task = '{}'", crate::sink::db::STATE_TABLE, task.replace('\'', "''"))).await?;
            tracing::info!("removed the target's {} row for task {task}", crate::sink::db::STATE_TABLE);
        }
    }
    for f in ["state.json", FILE_NAME, crate::sink::shared::journal::FILE_NAME, "cdc-status.json", "rejects.jsonl"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|source| Error::Write { path: p.clone(), source })?;
        }
    }
    tracing::info!("--restart: discarded the state in {}; starting over", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named() {
        let pg = |sys: &str, oid| Identity::Postgres { system_identifier: Some(sys.into()), database: "app".into(), database_oid: oid };
        assert_eq!(pg("1", 5).differs(&pg("1", 5)), None);
        assert!(pg("1", 5).differs(&pg("2", 5)).unwrap().contains("another PostgreSQL server"));
        assert!(pg("1", 5).differs(&pg("1", 6)).unwrap().contains("dropped and re-created"));
        let unknown = Identity::Postgres { system_identifier: None, database: "app".into(), database_oid: 5 };
        assert_eq!(pg("1", 5).differs(&unknown), None, "an unreadable identifier is not a difference");
        let lite = |ino, c| Identity::Sqlite { path: "/x.db".into(), inode: ino, created: c };
        assert!(lite(1, Some(10)).differs(&lite(1, Some(11))).is_some(), "same inode, new file");
        assert!(lite(1, None).differs(&lite(2, None)).is_some());
        assert!(pg("1", 5).differs(&lite(1, None)).unwrap().contains("another kind"));
    }
}
