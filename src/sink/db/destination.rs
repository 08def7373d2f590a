//! Applying changes to a database target (PostgreSQL, MySQL/MariaDB,
//! SQLite), exactly once in effect.
//!
//! A batch (whole source transactions, in order) becomes one target
//! transaction, which also records the source position in
//! `barge_cdc_state`: after a crash the target holds either all of the
//! batch and its position, or neither.
//!
//! Inside the batch, the changes of each keyed table are reduced to their
//! net effect per key (the last image wins; a delete removes earlier
//! images) and applied set-wise: the rows go into a temporary staging table
//! through the same bulk writers as the full load (COPY, LOAD DATA,
//! prepared inserts), then one upsert and one keyed delete per table.
//! Applying is idempotent, so replaying changes the target already has
//! converges. Tables without a key take their inserts in bulk too, and
//! their updates and deletes (one matching row each) and TRUNCATE one
//! change at a time, in the table's source order.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cdc::destination::{TableChange, TableInfo, Tables};
use crate::sink::{BoxFuture, Capabilities, Destination, Redo, RowTable};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::{ChangeBatch, Dialect, Op, Position, QualifiedName, Value};
use crate::progress::Task;
use crate::schema::naming::quote_ident;
use crate::schema::target::{TargetColumn, TargetTable};
use crate::model::RowBatch;
use crate::transfer::{self, Batch, ReadSpec, RowPolicy, WriteSpec};

pub const STATE_TABLE: &str = "barge_cdc_state";

/// How one table's changes land: target columns and where their values
/// come from in the source row.
struct Plan {
    /// Index of the table, for staging table names.
    n: usize,
    table_sql: String,
    columns: Vec<TargetColumn>,
    /// For each target column, its index in the source row.
    from: Vec<usize>,
    /// Indexes into `columns` of the key.
    key: Vec<usize>,
    staged: bool,
}

impl Plan {
    fn stage(&self) -> String {
        format!("barge_s_{}", self.n)
    }
    fn stage_keys(&self) -> String {
        format!("barge_k_{}", self.n)
    }
}

/// Net effect of a batch on one key.
enum Net {
    Upsert(Vec<Option<Value>>),
    Delete(Vec<Value>),
}

/// A keyed table's net changes, in first-touch order.
#[derive(Default)]
struct TableNet {
    order: Vec<String>,
    by_key: HashMap<String, Net>,
}

impl TableNet {
    fn set(&mut self, k: String, net: Net) {
        if !self.by_key.contains_key(&k) {
            self.order.push(k.clone());
        }
        self.by_key.insert(k, net);
    }
}

fn key_text(v: &[Value]) -> String {
    format!("{v:?}")
}

pub struct DbDestination {
    db: Db,
    display: String,
    task: String,
    plans: HashMap<QualifiedName, Plan>,
    policy: RowPolicy,
    progress: Arc<dyn Task>,
    /// Partial updates (unchanged TOAST) whose row the target lacks.
    pub missing_rows: u64,
    /// Staging tables that may hold rows (PostgreSQL empties its own at
    /// every commit: `ON COMMIT DELETE ROWS`).
    dirty: std::collections::HashSet<String>,
    /// Numbers staging tables; never reused in a session, so a table
    /// planned again after a schema change gets fresh staging tables.
    next_stage: usize,
    /// Opened for change capture: rows go in inside the caller's
    /// transaction (staging, a table copied while changes flow). For a
    /// load, each table's rows are a transaction (or a COPY) of their own.
    changes: bool,
    /// Change batches of a shared run commit only under the stream's
    /// current lease ([`crate::coord::fence`]).
    fence: Option<crate::coord::fence::Token>,
}

impl DbDestination {
    /// Connects, relaxes foreign-key checks for the session (the batch is
    /// consistent when it commits, not after each statement, once changes
    /// are grouped by table), and creates the position table.
    pub async fn open(target: &crate::endpoint::Endpoint, task: &str, policy: RowPolicy) -> Result<DbDestination> {
        let mut db = Db::connect(target, crate::endpoint::Role::Target).await?;
        let display = target.to_string();
        super::prepare_for_changes(&mut db).await?;
        let text = match db.dialect() {
            Dialect::Mysql => "VARCHAR(255)",
            _ => "TEXT",
        };
        db.execute(&format!("CREATE TABLE IF NOT EXISTS {STATE_TABLE} (task {text} NOT NULL PRIMARY KEY, position TEXT NOT NULL, updated_at TEXT NOT NULL)")).await?;
        Ok(DbDestination::new(db, display, task, policy, true))
    }

    /// Connects for loading rows (a full load's chunk, a pack's table):
    /// no position table, no session changes beyond the writers' own.
    pub async fn for_load(target: &crate::endpoint::Endpoint, policy: RowPolicy) -> Result<DbDestination> {
        let db = Db::connect(target, crate::endpoint::Role::Target).await?;
        Ok(DbDestination::new(db, target.to_string(), "", policy, false))
    }

    fn new(db: Db, display: String, task: &str, policy: RowPolicy, changes: bool) -> DbDestination {
        let progress = crate::progress::Progress::task(&crate::progress::Silent, "", None, crate::progress::Unit::Rows);
        DbDestination { db, display, task: task.to_string(), plans: HashMap::new(), policy, progress, missing_rows: 0, dirty: Default::default(), next_stage: 0, changes, fence: None }
    }

    /// The connection, for what only it can do (COPY passthrough, DDL).
    /// Rows go in inside the transaction the caller opened on
    /// [`DbDestination::db`] (a leased chunk, fenced on the target), not
    /// in one of their own.
    pub fn fence_changes(&mut self, token: crate::coord::fence::Token) {
        self.fence = Some(token);
    }

    pub fn join_caller_transaction(&mut self) {
        self.changes = true;
    }

    pub fn db(&mut self) -> &mut Db {
        &mut self.db
    }

    /// Writes rows through the engine's bulk writer: on their own (a load:
    /// one COPY, or one transaction per call) or inside the caller's
    /// transaction (change capture).
    async fn put_rows(&mut self, spec: &WriteSpec, rx: mpsc::Receiver<RowBatch>, policy: Option<&RowPolicy>, progress: &Arc<dyn Task>) -> Result<u64> {
        let policy = policy.unwrap_or(&self.policy);
        if !self.changes {
            return super::write_into(&mut self.db, spec, rx, policy, progress).await;
        }
        super::write_in_transaction(&mut self.db, spec, rx, policy, progress).await
    }

    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    fn plan_for(&mut self, name: &QualifiedName, info: &TableInfo) -> Result<()> {
        if self.plans.contains_key(name) {
            return Ok(());
        }
        let mut columns = Vec::new();
        let mut from = Vec::new();
        for tc in &info.target.columns {
            if tc.generated.is_some() || tc.source.starts_with('\u{0}') {
                continue;
            }
            let Some(i) = info.source.columns.iter().position(|c| c.name == tc.source) else { continue };
            if info.source.columns[i].generated.is_some() {
                continue;
            }
            columns.push(tc.clone());
            from.push(i);
        }
        let key: Vec<usize> = info.key.iter().filter_map(|k| from.iter().position(|f| f == k)).collect();
        if key.len() != info.key.len() {
            return Err(Error::Table {
                table: name.to_string(),
                row: None,
                message: "a key column is not on the target (dropped by the mapping)".into(),
                hint: Some("keep the key columns in the mapping; changes are applied by key".into()),
            });
        }
        let n = self.next_stage;
        self.next_stage += 1;
        self.plans.insert(name.clone(), Plan { n, table_sql: info.target.sql_name.clone(), columns, from, key, staged: false });
        Ok(())
    }

    fn q(&self, ident: &str) -> String {
        quote_ident(self.dialect(), ident)
    }

    /// Creates the staging tables of a table (once per session).
    async fn ensure_stage(&mut self, name: &QualifiedName) -> Result<()> {
        let plan = &self.plans[name];
        if plan.staged {
            return Ok(());
        }
        let cols: Vec<String> = plan.columns.iter().map(|c| self.q(&c.name)).collect();
        let keys: Vec<String> = plan.key.iter().map(|&i| cols[i].clone()).collect();
        let all_cols = cols.join(", ");
        let key_cols = if keys.is_empty() { all_cols.clone() } else { keys.join(", ") };
        let stmts = match self.dialect() {
            Dialect::Postgres => vec![
                format!("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {all_cols} FROM {} WITH NO DATA", plan.stage(), plan.table_sql),
                format!("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {key_cols} FROM {} WITH NO DATA", plan.stage_keys(), plan.table_sql),
            ],
            _ => vec![
                format!("CREATE TEMPORARY TABLE IF NOT EXISTS {} AS SELECT {all_cols} FROM {} LIMIT 0", plan.stage(), plan.table_sql),
                format!("CREATE TEMPORARY TABLE IF NOT EXISTS {} AS SELECT {key_cols} FROM {} LIMIT 0", plan.stage_keys(), plan.table_sql),
            ],
        };
        for s in stmts {
            self.db.execute(&s).await?;
        }
        self.plans.get_mut(name).expect("planned").staged = true;
        Ok(())
    }

    /// Replaces the contents of a staging table with `rows` (values in the
    /// staging table's column order), through the engine's bulk writer.
    async fn fill(&mut self, table: &str, columns: Vec<TargetColumn>, key: Vec<usize>, rows: Vec<Vec<Value>>) -> Result<()> {
        self.fill_stage(table, columns, key, rows).await.map_err(|e| self.name_real_table(e, table))
    }

    /// Row errors name the table the user knows, not the staging table.
    fn name_real_table(&self, e: Error, stage: &str) -> Error {
        match e {
            Error::Table { table, row, message, hint } if table == stage => {
                let real = self.plans.values().find(|p| p.stage() == stage || p.stage_keys() == stage).map(|p| p.table_sql.clone()).unwrap_or(table);
                Error::Table { table: real, row, message, hint }
            }
            other => other,
        }
    }

    async fn fill_stage(&mut self, table: &str, columns: Vec<TargetColumn>, key: Vec<usize>, rows: Vec<Vec<Value>>) -> Result<()> {
        // A small DELETE is far cheaper than TRUNCATE, which makes new files.
        if self.dirty.remove(table) {
            self.db.execute(&format!("DELETE FROM {table}")).await?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.dirty.insert(table.to_string());
        // The staged rows are rows: they go in as any table's do.
        let spec = WriteSpec { table: table.to_string(), columns, key };
        let (tx, rx) = mpsc::channel::<RowBatch>(1);
        tx.send(RowBatch::new(rows, 0)).await.map_err(|_| Error::other("staging channel closed"))?;
        drop(tx);
        let progress = self.progress.clone();
        self.put_rows(&spec, rx, None, &progress).await?;
        Ok(())
    }

    /// Current target values of the rows whose keys are staged.
    async fn read_staged(&mut self, name: &QualifiedName) -> Result<HashMap<String, Vec<Value>>> {
        let plan = &self.plans[name];
        let cols: Vec<String> = plan.columns.iter().map(|c| self.q(&c.name)).collect();
        let keys: Vec<String> = plan.key.iter().map(|&i| cols[i].clone()).collect();
        let select = match self.dialect() {
            Dialect::Postgres | Dialect::Sqlite => format!("SELECT {} FROM {} WHERE ({}) IN (SELECT {} FROM {})", cols.join(", "), plan.table_sql, keys.join(", "), keys.join(", "), plan.stage_keys()),
            _ => format!(
                "SELECT {} FROM {} AS t0 JOIN {} AS k ON {}",
                cols.iter().map(|c| format!("t0.{c}")).collect::<Vec<_>>().join(", "),
                plan.table_sql,
                plan.stage_keys(),
                keys.iter().map(|k| format!("t0.{k} = k.{k}")).collect::<Vec<_>>().join(" AND ")
            ),
        };
        let spec = ReadSpec { select, types: plan.columns.iter().map(|c| c.ty.clone()).collect() };
        let key_idx = plan.key.clone();
        let (tx, mut rx) = mpsc::channel::<Batch>(64);
        let table = name.to_string();
        let collect = async {
            let mut out = HashMap::new();
            while let Some(b) = rx.recv().await {
                for row in b.rows {
                    let k: Vec<Value> = key_idx.iter().map(|&i| row[i].clone()).collect();
                    out.insert(key_text(&k), row);
                }
            }
            out
        };
        let read = transfer::read_in_session(&mut self.db, &table, &spec, tx);
        let (r, out) = tokio::join!(read, collect);
        r?;
        Ok(out)
    }

    /// Applies one keyed table's net changes.
    async fn flush_table(&mut self, name: &QualifiedName, net: TableNet) -> Result<()> {
        self.ensure_stage(name).await?;
        let (columns, key, table_sql, stage, stage_keys) = {
            let p = &self.plans[name];
            (p.columns.clone(), p.key.clone(), p.table_sql.clone(), p.stage(), p.stage_keys())
        };
        let key_columns: Vec<TargetColumn> = key.iter().map(|&i| columns[i].clone()).collect();
        let mut deletes = Vec::new();
        let mut full = Vec::new();
        let mut partial = Vec::new();
        let mut by_key = net.by_key;
        for k in net.order {
            match by_key.remove(&k) {
                Some(Net::Delete(kv)) => deletes.push(kv),
                Some(Net::Upsert(row)) if row.iter().all(Option::is_some) => full.push(row.into_iter().map(|v| v.unwrap_or(Value::Null)).collect::<Vec<Value>>()),
                Some(Net::Upsert(row)) => partial.push(row),
                None => {}
            }
        }
        // Rows with unsent (unchanged TOAST) values take them from the target.
        if !partial.is_empty() {
            let keys: Vec<Vec<Value>> = partial.iter().map(|r| key.iter().map(|&i| r[i].clone().unwrap_or(Value::Null)).collect()).collect();
            self.fill(&stage_keys, key_columns.clone(), (0..key.len()).collect(), keys).await?;
            let current = self.read_staged(name).await?;
            for row in partial {
                let k: Vec<Value> = key.iter().map(|&i| row[i].clone().unwrap_or(Value::Null)).collect();
                match current.get(&key_text(&k)) {
                    Some(have) => full.push(row.into_iter().zip(have).map(|(new, old)| new.unwrap_or_else(|| old.clone())).collect()),
                    None => self.missing_rows += 1,
                }
            }
        }
        let d = self.dialect();
        let q = |c: &str| quote_ident(d, c);
        let cols: Vec<String> = columns.iter().map(|c| q(&c.name)).collect();
        let kcols: Vec<String> = key.iter().map(|&i| cols[i].clone()).collect();
        if !deletes.is_empty() {
            self.fill(&stage_keys, key_columns.clone(), (0..key.len()).collect(), deletes).await?;
            let sql = match d {
                Dialect::Postgres => format!("DELETE FROM {table_sql} AS t0 USING {stage_keys} AS k WHERE {}", kcols.iter().map(|c| format!("t0.{c} = k.{c}")).collect::<Vec<_>>().join(" AND ")),
                Dialect::Mysql => format!("DELETE t0 FROM {table_sql} AS t0 JOIN {stage_keys} AS k ON {}", kcols.iter().map(|c| format!("t0.{c} = k.{c}")).collect::<Vec<_>>().join(" AND ")),
                _ => format!("DELETE FROM {table_sql} WHERE ({}) IN (SELECT {} FROM {stage_keys})", kcols.join(", "), kcols.join(", ")),
            };
            self.db.execute(&sql).await?;
        }
        if !full.is_empty() {
            self.fill(&stage, columns.clone(), key.clone(), full).await?;
            let others: Vec<&String> = cols.iter().enumerate().filter(|(i, _)| !key.contains(i)).map(|(_, c)| c).collect();
            let list = cols.join(", ");
            let sql = match d {
                Dialect::Mysql => {
                    if others.is_empty() {
                        format!("INSERT IGNORE INTO {table_sql} ({list}) SELECT {list} FROM {stage}")
                    } else {
                        format!("INSERT INTO {table_sql} ({list}) SELECT {list} FROM {stage} ON DUPLICATE KEY UPDATE {}", others.iter().map(|c| format!("{c} = VALUES({c})")).collect::<Vec<_>>().join(", "))
                    }
                }
                _ => {
                    let excluded = if d == Dialect::Postgres { "EXCLUDED" } else { "excluded" };
                    let action = if others.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", others.iter().map(|c| format!("{c} = {excluded}.{c}")).collect::<Vec<_>>().join(", ")) };
                    // SQLite needs the WHERE to parse ON CONFLICT after a SELECT.
                    let filter = if d == Dialect::Sqlite { " WHERE true" } else { "" };
                    format!("INSERT INTO {table_sql} ({list}) SELECT {list} FROM {stage}{filter} ON CONFLICT ({}) {action}", kcols.join(", "))
                }
            };
            self.db.execute(&sql).await?;
        }
        Ok(())
    }

    /// A change of a table without a key, or a TRUNCATE: applied alone.
    async fn apply_ordered(&mut self, name: &QualifiedName, op: &Op) -> Result<()> {
        let (table_sql, columns, from, stage) = {
            let p = &self.plans[name];
            (p.table_sql.clone(), p.columns.clone(), p.from.clone(), p.stage())
        };
        if let Op::Truncate = op {
            let sql = match self.dialect() {
                Dialect::Postgres => format!("TRUNCATE {table_sql}"),
                _ => format!("DELETE FROM {table_sql}"),
            };
            return self.db.execute(&sql).await;
        }
        self.ensure_stage(name).await?;
        let d = self.dialect();
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(d, &c.name)).collect();
        let pick = |row: &[Value]| -> Vec<Value> { from.iter().map(|&i| row.get(i).cloned().unwrap_or(Value::Null)).collect() };
        let (old, new): (Option<Vec<Value>>, Option<Vec<Value>>) = match op {
            Op::Insert { row } => (None, Some(pick(row))),
            Op::Delete { key } => (Some(pick(key)), None),
            Op::Update { before, after } => {
                let before = before.clone().unwrap_or_default();
                let merged: Vec<Value> = after.iter().enumerate().map(|(i, v)| v.clone().unwrap_or_else(|| before.get(i).cloned().unwrap_or(Value::Null))).collect();
                (Some(pick(&before)), Some(pick(&merged)))
            }
            Op::Truncate => (None, None),
        };
        if let Some(old) = old {
            self.fill(&stage, columns.clone(), Vec::new(), vec![old]).await?;
            let sql = match d {
                Dialect::Postgres => format!(
                    "DELETE FROM {table_sql} WHERE ctid = (SELECT t0.ctid FROM {table_sql} AS t0, {stage} AS s WHERE {} LIMIT 1)",
                    cols.iter().map(|c| format!("t0.{c}::text IS NOT DISTINCT FROM s.{c}::text")).collect::<Vec<_>>().join(" AND ")
                ),
                Dialect::Sqlite | Dialect::Mssql | Dialect::Oracle => format!(
                    "DELETE FROM {table_sql} WHERE rowid = (SELECT t0.rowid FROM {table_sql} AS t0, {stage} AS s WHERE {} LIMIT 1)",
                    cols.iter().map(|c| format!("t0.{c} IS s.{c}")).collect::<Vec<_>>().join(" AND ")
                ),
                Dialect::Mysql => {
                    // MySQL cannot name a temporary table twice in one
                    // statement, nor use LIMIT with a join: go through
                    // session variables.
                    let vars: Vec<String> = (0..cols.len()).map(|i| format!("@barge_v{i}")).collect();
                    self.db.execute(&format!("SELECT {} INTO {} FROM {stage} LIMIT 1", cols.join(", "), vars.join(", "))).await?;
                    format!("DELETE FROM {table_sql} WHERE {} LIMIT 1", cols.iter().zip(&vars).map(|(c, v)| format!("{c} <=> {v}")).collect::<Vec<_>>().join(" AND "))
                }
            };
            self.db.execute(&sql).await?;
        }
        if let Some(new) = new {
            self.fill(&stage, columns.clone(), Vec::new(), vec![new]).await?;
            let list = cols.join(", ");
            self.db.execute(&format!("INSERT INTO {table_sql} ({list}) SELECT {list} FROM {stage}")).await?;
        }
        Ok(())
    }

    async fn flush_all(&mut self, pending: &mut Vec<(QualifiedName, TableNet)>) -> Result<()> {
        for (name, net) in std::mem::take(pending) {
            self.flush_table(&name, net).await?;
        }
        Ok(())
    }

    async fn apply_batch(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<()> {
        for c in &batch.changes {
            if let Some(info) = tables.get(&c.table) {
                self.plan_for(&c.table, info)?;
            }
        }
        // Staging tables are created before the transaction (MySQL would
        // commit implicitly on some DDL).
        let names: Vec<QualifiedName> = batch.changes.iter().map(|c| c.table.clone()).filter(|n| self.plans.contains_key(n)).collect();
        for n in names {
            self.ensure_stage(&n).await?;
        }
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        };
        self.db.execute(begin).await?;
        let result = match &self.fence {
            // The fence first: a worker that lost the stream's lease writes nothing.
            Some(token) => match crate::coord::fence::take(&mut self.db, token).await {
                Ok(()) => self.apply_in_transaction(tables, batch).await,
                Err(e) => return Err(e),
            },
            None => self.apply_in_transaction(tables, batch).await,
        };
        if self.dialect() == Dialect::Postgres {
            // Committed or rolled back, the staging tables are empty now.
            self.dirty.clear();
        }
        match result {
            Ok(()) => self.db.execute("COMMIT").await,
            Err(e) => {
                let _ = self.db.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn apply_in_transaction(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<()> {
        let mut pending: Vec<(QualifiedName, TableNet)> = Vec::new();
        // Inserts into tables without a key, not yet written, per table.
        // The batch commits as one transaction with foreign keys and
        // triggers off, so only each table's own order matters: a run of
        // inserts goes in as one bulk write, and only an update or delete
        // of that table (which must see them) writes them first.
        let mut inserts: Vec<(QualifiedName, Vec<Vec<Value>>)> = Vec::new();
        for c in &batch.changes {
            let Some(info) = tables.get(&c.table) else { continue };
            let Some(plan) = self.plans.get(&c.table) else { continue };
            if info.key.is_empty() {
                if let Op::Insert { row } = &c.op {
                    let row: Vec<Value> = plan.from.iter().map(|&i| row.get(i).cloned().unwrap_or(Value::Null)).collect();
                    match inserts.iter_mut().find(|(n, _)| n == &c.table) {
                        Some((_, rows)) => rows.push(row),
                        None => inserts.push((c.table.clone(), vec![row])),
                    }
                    continue;
                }
            }
            if info.key.is_empty() || matches!(c.op, Op::Truncate) {
                if matches!(c.op, Op::Truncate) {
                    self.flush_all(&mut pending).await?;
                }
                if let Some(i) = inserts.iter().position(|(n, _)| n == &c.table) {
                    let (name, rows) = inserts.remove(i);
                    self.insert_rows(&name, rows).await?;
                }
                self.apply_ordered(&c.table, &c.op).await?;
                continue;
            }
            let from = plan.from.clone();
            let key = plan.key.clone();
            let idx = match pending.iter().position(|(n, _)| n == &c.table) {
                Some(i) => i,
                None => {
                    pending.push((c.table.clone(), TableNet::default()));
                    pending.len() - 1
                }
            };
            let net = &mut pending[idx].1;
            let target_row = |row: &[Option<Value>]| -> Vec<Option<Value>> { from.iter().map(|&i| row.get(i).cloned().flatten()).collect() };
            let key_of = |row: &[Option<Value>]| -> Option<Vec<Value>> { key.iter().map(|&i| row[i].clone()).collect() };
            match &c.op {
                Op::Insert { row } => {
                    let r = target_row(&row.iter().cloned().map(Some).collect::<Vec<_>>());
                    let k = key_of(&r).unwrap_or_default();
                    net.set(key_text(&k), Net::Upsert(r));
                }
                Op::Update { before, after } => {
                    let mut r = target_row(after);
                    let old = before.as_ref().map(|b| target_row(&b.iter().cloned().map(Some).collect::<Vec<_>>()));
                    // A key column the server did not resend kept its value.
                    if let Some(o) = &old {
                        for &i in &key {
                            if r[i].is_none() {
                                r[i] = o[i].clone();
                            }
                        }
                    }
                    let Some(new_key) = key_of(&r) else {
                        return Err(Error::Table { table: c.table.to_string(), row: None, message: "an update without its key values".into(), hint: None });
                    };
                    if let Some(old_key) = old.as_ref().and_then(|o| key_of(o)) {
                        if old_key != new_key {
                            net.set(key_text(&old_key), Net::Delete(old_key));
                        }
                    }
                    let kt = key_text(&new_key);
                    let merged = match net.by_key.remove(&kt) {
                        Some(Net::Upsert(mut prev)) => {
                            for (p, n) in prev.iter_mut().zip(r) {
                                if n.is_some() {
                                    *p = n;
                                }
                            }
                            prev
                        }
                        _ => r,
                    };
                    net.set(kt, Net::Upsert(merged));
                }
                Op::Delete { key: kv } => {
                    // `kv` holds the key columns in key order.
                    net.set(key_text(kv), Net::Delete(kv.clone()));
                }
                Op::Truncate => {}
            }
        }
        self.flush_all(&mut pending).await?;
        for (name, rows) in inserts {
            self.insert_rows(&name, rows).await?;
        }
        if let Some(p) = &batch.position {
            self.save_position(p).await?;
        }
        Ok(())
    }

    /// Inserts rows (values in the plan's column order) into a table with
    /// no key: one bulk write into its staging table, one INSERT … SELECT.
    async fn insert_rows(&mut self, name: &QualifiedName, rows: Vec<Vec<Value>>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.ensure_stage(name).await?;
        let (table_sql, columns, stage) = {
            let p = &self.plans[name];
            (p.table_sql.clone(), p.columns.clone(), p.stage())
        };
        let list = columns.iter().map(|c| self.q(&c.name)).collect::<Vec<_>>().join(", ");
        self.fill(&stage, columns, Vec::new(), rows).await?;
        self.db.execute(&format!("INSERT INTO {table_sql} ({list}) SELECT {list} FROM {stage}")).await
    }

    /// Forgets a table's plan and drops its staging tables (they have the
    /// old columns).
    async fn forget(&mut self, name: &QualifiedName) -> Result<()> {
        let Some(plan) = self.plans.remove(name) else { return Ok(()) };
        if plan.staged {
            let temp = if self.dialect() == Dialect::Mysql { "TEMPORARY " } else { "" };
            for t in [plan.stage(), plan.stage_keys()] {
                self.dirty.remove(&t);
                self.db.execute(&format!("DROP {temp}TABLE IF EXISTS {t}")).await?;
            }
        }
        Ok(())
    }

    /// Rows of text columns from a catalog query.
    async fn texts(&mut self, sql: String, what: &str) -> Result<Vec<String>> {
        let spec = ReadSpec { select: sql, types: vec![crate::model::ColumnType::text()] };
        let (tx, mut rx) = mpsc::channel::<Batch>(4);
        let read = transfer::read_in_session(&mut self.db, what, &spec, tx);
        let collect = async {
            let mut out = Vec::new();
            while let Some(b) = rx.recv().await {
                for r in b.rows {
                    if let Some(Value::Text(s)) = r.into_iter().next() {
                        out.push(s);
                    }
                }
            }
            out
        };
        let (r, out) = tokio::join!(read, collect);
        r?;
        Ok(out)
    }

    /// The columns the target table has now, `None` if it does not exist.
    pub async fn columns_of(&mut self, table: &TargetTable) -> Result<Option<Vec<String>>> {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let (schema, name) = match table.name.as_slice() {
            [s, n] => (Some(s.as_str()), n.as_str()),
            [n] => (None, n.as_str()),
            _ => (None, table.sql_name.as_str()),
        };
        let (exists, columns) = match self.dialect() {
            Dialect::Postgres => {
                let ns = schema.map(lit).unwrap_or_else(|| "current_schema()".into());
                (
                    format!("SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {ns} AND c.relname = {} AND c.relkind IN ('r', 'p')", lit(name)),
                    format!("SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {ns} AND c.relname = {} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", lit(name)),
                )
            }
            Dialect::Mysql => {
                let db = schema.map(lit).unwrap_or_else(|| "DATABASE()".into());
                (
                    format!("SELECT table_name FROM information_schema.tables WHERE table_schema = {db} AND table_name = {}", lit(name)),
                    format!("SELECT column_name FROM information_schema.columns WHERE table_schema = {db} AND table_name = {} ORDER BY ordinal_position", lit(name)),
                )
            }
            _ => (format!("SELECT name FROM sqlite_master WHERE type = 'table' AND name = {}", lit(name)), format!("SELECT name FROM pragma_table_info({})", lit(name))),
        };
        if self.texts(exists, name).await?.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.texts(columns, name).await?))
    }

    /// Creates or alters a table to follow the source (statements the
    /// target already reflects are skipped, so a replay applies once).
    async fn follow(&mut self, change: &TableChange) -> Result<()> {
        let name = &change.new.source.name;
        let have = self.columns_of(&change.new.target).await?;
        let statements = match (&change.old, have) {
            (_, None) => change.create.clone(),
            (None, Some(_)) => Vec::new(),
            (Some(old), Some(have)) => crate::cdc::evolve::alter_statements(self.dialect(), &old.target, &change.new.target, &change.changes, &have),
        };
        if statements.is_empty() && change.old.is_some() {
            tracing::debug!("{name}: the target already has the change");
        }
        self.forget(name).await?;
        for sql in statements {
            tracing::debug!("{name}: {sql}");
            self.db.execute(&sql).await.map_err(|e| match e {
                Error::Endpoint { endpoint, message, hint } => Error::Endpoint { endpoint, message: format!("{name}: applying the source's schema change: {message}"), hint },
                other => other,
            })?;
        }
        Ok(())
    }

    /// Loads rows into a target table through the engine's bulk writer
    /// (a table copied while changes flow).
    pub async fn write_rows(&mut self, table: &TargetTable, rx: mpsc::Receiver<Batch>) -> Result<()> {
        let columns: Vec<TargetColumn> = table.columns.iter().filter(|c| c.generated.is_none() && !c.source.starts_with('\u{0}')).cloned().collect();
        let spec = WriteSpec { table: table.sql_name.clone(), columns, key: Vec::new() };
        let progress = self.progress.clone();
        self.put_rows(&spec, rx, None, &progress).await?;
        Ok(())
    }

    /// Deletes what an earlier attempt at a chunk may have left.
    async fn redo(&mut self, table: &RowTable, redo: &Redo) -> Result<()> {
        let only = if redo.only && self.dialect() == Dialect::Postgres { "ONLY " } else { "" };
        let del = match &redo.predicate {
            Some(p) => format!("DELETE FROM {only}{} WHERE {p}", table.write.table),
            None => format!("DELETE FROM {only}{}", table.write.table),
        };
        self.db.execute(&del).await
    }

    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.db.execute(sql).await
    }

    async fn save_position(&mut self, p: &Position) -> Result<()> {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let now = chrono::Utc::now().to_rfc3339();
        let (task, pos, at) = (lit(&self.task), lit(&p.to_string()), lit(&now));
        let sql = match self.dialect() {
            Dialect::Mysql => format!("INSERT INTO {STATE_TABLE} (task, position, updated_at) VALUES ({task}, {pos}, {at}) ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)"),
            _ => format!("INSERT INTO {STATE_TABLE} (task, position, updated_at) VALUES ({task}, {pos}, {at}) ON CONFLICT (task) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at"),
        };
        self.db.execute(&sql).await
    }

    async fn load_position(&mut self) -> Result<Option<Position>> {
        let sql = format!("SELECT position FROM {STATE_TABLE} WHERE task = '{}'", self.task.replace('\'', "''"));
        let spec = ReadSpec { select: sql, types: vec![crate::model::ColumnType::text()] };
        let (tx, mut rx) = mpsc::channel::<Batch>(4);
        let read = transfer::read_in_session(&mut self.db, STATE_TABLE, &spec, tx);
        let collect = async {
            let mut out = None;
            while let Some(b) = rx.recv().await {
                for r in b.rows {
                    if let Some(Value::Text(s)) = r.into_iter().next() {
                        out = Some(s);
                    }
                }
            }
            out
        };
        let (r, text) = tokio::join!(read, collect);
        r?;
        match text {
            None => Ok(None),
            Some(t) => t.parse::<Position>().map(Some).map_err(|e| Error::Endpoint { endpoint: self.display.clone(), message: format!("{STATE_TABLE}: {e}"), hint: None }),
        }
    }
}

impl Destination for DbDestination {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tables: true,
            copy_passthrough: self.dialect() == Dialect::Postgres,
            transactions: true,
            keyed_upsert: true,
            ordered: true,
            buffers: false,
            one_writer: self.dialect() == Dialect::Sqlite,
        }
    }

    fn write_rows<'a>(&'a mut self, table: &'a RowTable, rows: mpsc::Receiver<RowBatch>, policy: &'a RowPolicy, progress: &'a Arc<dyn Task>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.put_rows(&table.write, rows, Some(policy), progress))
    }

    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply_batch(tables, batch))
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        Box::pin(self.load_position())
    }

    fn redo_chunk<'a>(&'a mut self, table: &'a RowTable, redo: &'a Redo) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.redo(table, redo))
    }

    fn change_schema<'a>(&'a mut self, change: &'a TableChange) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.follow(change))
    }

    fn table_columns<'a>(&'a mut self, table: &'a TargetTable) -> BoxFuture<'a, Result<Option<Vec<String>>>> {
        Box::pin(self.columns_of(table))
    }

    fn as_db(&mut self) -> Option<&mut DbDestination> {
        Some(self)
    }
}
