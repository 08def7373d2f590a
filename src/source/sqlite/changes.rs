//! SQLite change capture. SQLite has no change log a client can read, so
//! barge installs triggers: each change of a captured table appends a row
//! to `barge_changes` (sequence, table, operation, time) and the row images
//! to the table's own `barge_rows_*` table, with every value stored as it
//! was (no type affinity on those columns, so blobs, reals and text keep
//! their exact storage). The source polls them in sequence order and
//! deletes what the destination has confirmed. `barge cleanup` removes
//! the triggers and tables.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::mpsc;

use crate::sink::BoxFuture;
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::cdc::Tables;
use crate::db::sqlite::{sqlx_error, LiteConn};
use crate::endpoint::{Role, SqliteEndpoint};
use crate::error::{Error, Result};
use crate::model::{Change, ColumnType, Op, Position, QualifiedName, Table, Value};
use crate::transfer::{self, Batch, ReadSpec};

const CHANGES: &str = "barge_changes";

/// The images table of one captured table.
fn rows_table(t: &QualifiedName) -> String {
    let h = Sha256::digest(t.name.as_bytes());
    format!("barge_rows_{}", hex::encode(&h[..5]))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statements that install capture on `t` (idempotent).
fn install_sql(t: &Table) -> String {
    let rows = rows_table(&t.name);
    let n = t.columns.len();
    let cols: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let image = |prefix: &str| t.columns.iter().map(|c| format!("{prefix}.{}", quote(&c.name))).collect::<Vec<_>>().join(", ");
    let table = quote(&t.name.name);
    let name = literal(&t.name.name);
    let h = &rows["barge_rows_".len()..];
    // The sequence number just taken: SQLite has one writer at a time, so
    // MAX(seq) inside the trigger is this change's.
    let seq = format!("(SELECT MAX(seq) FROM {CHANGES})");
    let insert_image = |img: &str, prefix: &str| format!("INSERT INTO {rows} (seq, image, {}) VALUES ({seq}, '{img}', {});", cols.join(", "), image(prefix));
    format!(
        "CREATE TABLE IF NOT EXISTS {rows} (seq INTEGER NOT NULL, image TEXT NOT NULL, {}, PRIMARY KEY (seq, image));\n\
         CREATE TRIGGER IF NOT EXISTS barge_cdc_{h}_i AFTER INSERT ON {table} BEGIN INSERT INTO {CHANGES} (tbl, op) VALUES ({name}, 'I'); {} END;\n\
         CREATE TRIGGER IF NOT EXISTS barge_cdc_{h}_u AFTER UPDATE ON {table} BEGIN INSERT INTO {CHANGES} (tbl, op) VALUES ({name}, 'U'); {} {} END;\n\
         CREATE TRIGGER IF NOT EXISTS barge_cdc_{h}_d AFTER DELETE ON {table} BEGIN INSERT INTO {CHANGES} (tbl, op) VALUES ({name}, 'D'); {} END;\n",
        cols.join(", "),
        insert_image("N", "NEW"),
        insert_image("O", "OLD"),
        insert_image("N", "NEW"),
        insert_image("O", "OLD"),
    )
}

async fn connect(ep: &SqliteEndpoint) -> Result<LiteConn> {
    if ep.path.is_none() {
        return Err(Error::usage("an in-memory SQLite database cannot be a change source: nothing else can write to it"));
    }
    LiteConn::connect(ep, Role::Source).await
}

/// Installs the change table and triggers; returns the current sequence.
pub async fn prepare(ep: &SqliteEndpoint, tables: &[Table]) -> Result<Position> {
    let mut c = connect(ep).await?;
    let mut sql = format!(
        "BEGIN IMMEDIATE;\nCREATE TABLE IF NOT EXISTS {CHANGES} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL, \
         at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0));\n"
    );
    for t in tables {
        sql.push_str(&install_sql(t));
    }
    sql.push_str("COMMIT;");
    c.execute(&sql).await.map_err(|e| e.with_hint("barge needs write access to the SQLite file to install its change triggers"))?;
    let q = format!("SELECT COALESCE(MAX(seq), 0) FROM {CHANGES}");
    let row = sqlx::query(sqlx::AssertSqlSafe(q.clone())).fetch_one(&mut c.conn).await.map_err(|e| sqlx_error(&c.display, &q, e))?;
    Ok(Position::SqliteSeq { seq: row.get(0) })
}

/// Drops every barge trigger and change table.
pub async fn cleanup(ep: &SqliteEndpoint) -> Result<Vec<String>> {
    let mut c = connect(ep).await?;
    let q = "SELECT type, name FROM sqlite_master WHERE (type = 'trigger' AND name LIKE 'barge\\_cdc\\_%' ESCAPE '\\') OR (type = 'table' AND (name LIKE 'barge\\_rows\\_%' ESCAPE '\\' OR name = 'barge_changes'))";
    let rows = sqlx::query(q).fetch_all(&mut c.conn).await.map_err(|e| sqlx_error(&c.display, q, e))?;
    let mut done = Vec::new();
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for r in rows.iter().filter(|r| r.get::<String, _>(0) == "trigger").chain(rows.iter().filter(|r| r.get::<String, _>(0) == "table")) {
        let (kind, name): (String, String) = (r.get(0), r.get(1));
        sql.push_str(&format!("DROP {} IF EXISTS {};\n", kind.to_uppercase(), quote(&name)));
        done.push(format!("dropped {kind} {name}"));
    }
    sql.push_str("COMMIT;");
    c.execute(&sql).await?;
    Ok(done)
}

/// Polls the change table.
pub struct SqliteSource {
    conn: LiteConn,
    tables: Arc<Tables>,
    last: i64,
    acked: i64,
    interval: Duration,
    pending: VecDeque<SourceEvent>,
    lag: u64,
    /// When the tables' columns were last compared with the models.
    checked: std::time::Instant,
    /// Tables whose definition changed (their triggers capture the old
    /// columns): reported once, then left to the user.
    changed: std::collections::HashSet<QualifiedName>,
}

/// How often the captured tables' columns are checked against the model.
const SCHEMA_CHECK: Duration = Duration::from_secs(2);

/// Changes read per poll.
const POLL_ROWS: i64 = 20_000;

impl SqliteSource {
    pub async fn open(ep: &SqliteEndpoint, start: i64, tables: Arc<Tables>, interval: Duration) -> Result<SqliteSource> {
        let conn = connect(ep).await?;
        Ok(SqliteSource { conn, tables, last: start, acked: start, interval, pending: VecDeque::new(), lag: 0, checked: std::time::Instant::now(), changed: Default::default() })
    }

    async fn images(&mut self, t: &QualifiedName, lo: i64, hi: i64) -> Result<BTreeMap<(i64, String), Vec<Value>>> {
        let info = &self.tables[t];
        let mut types = vec![ColumnType::Int { bits: 64, unsigned: false }, ColumnType::text()];
        types.extend(info.source.columns.iter().map(|c| c.ty.clone()));
        let cols: Vec<String> = (0..info.source.columns.len()).map(|i| format!("c{i}")).collect();
        let spec = ReadSpec { select: format!("SELECT seq, image, {} FROM {} WHERE seq > {lo} AND seq <= {hi}", cols.join(", "), rows_table(t)), types };
        let (tx, mut rx) = mpsc::channel::<Batch>(1024);
        let display = self.conn.display.clone();
        let name = t.to_string();
        let reader = transfer::sqlite::read(&mut self.conn.conn, &display, &name, &spec, tx);
        let collect = async {
            let mut out = BTreeMap::new();
            while let Some(b) = rx.recv().await {
                for mut row in b.rows {
                    let rest = row.split_off(2);
                    let seq = match row[0] {
                        Value::Int(i) => i,
                        _ => 0,
                    };
                    let image = match &row[1] {
                        Value::Text(s) => s.clone(),
                        _ => String::new(),
                    };
                    out.insert((seq, image), rest);
                }
            }
            out
        };
        let (r, out) = tokio::join!(reader, collect);
        r?;
        Ok(out)
    }

    /// A table altered at the source keeps its triggers, which capture the
    /// columns it had: barge cannot follow the change, so the table stops
    /// (before the changes read after the check).
    async fn check_schema(&mut self) -> Result<()> {
        if self.checked.elapsed() < SCHEMA_CHECK {
            return Ok(());
        }
        self.checked = std::time::Instant::now();
        let tables: Vec<(QualifiedName, Vec<String>)> = self.tables.iter().filter(|(k, _)| !self.changed.contains(*k)).map(|(k, i)| (k.clone(), i.source.columns.iter().filter(|c| c.generated.is_none()).map(|c| c.name.clone()).collect())).collect();
        for (name, model) in tables {
            let q = format!("SELECT name FROM pragma_table_info({})", literal(&name.name));
            let rows = sqlx::query(sqlx::AssertSqlSafe(q.clone())).fetch_all(&mut self.conn.conn).await.map_err(|e| sqlx_error(&self.conn.display, &q, e))?;
            let now: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
            if now != model {
                self.changed.insert(name.clone());
                let message = format!(
                    "its columns changed at the source (now {}); barge's triggers on a SQLite source capture the columns it had, so it cannot follow (run `barge cleanup` and the full load again to take the new definition)",
                    now.join(", ")
                );
                self.pending.push_back(SourceEvent::Schema(Box::new(SchemaEvent { table: name, change: SchemaChange::Unsupported { message }, position: None, commit_lsn: None })));
            }
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<()> {
        self.check_schema().await?;
        let q = format!("SELECT seq, tbl, op, at, (SELECT MAX(seq) FROM {CHANGES}) FROM {CHANGES} WHERE seq > {} ORDER BY seq LIMIT {POLL_ROWS}", self.last);
        let rows = sqlx::query(sqlx::AssertSqlSafe(q.clone())).fetch_all(&mut self.conn.conn).await.map_err(|e| sqlx_error(&self.conn.display, &q, e))?;
        let Some(hi) = rows.last().map(|r| r.get::<i64, _>(0)) else { return Ok(()) };
        let newest: i64 = rows[0].get(4);
        self.lag = (newest - hi).max(0) as u64;
        let lo = self.last;
        let mut by_table: BTreeMap<String, QualifiedName> = BTreeMap::new();
        for r in &rows {
            let name: String = r.get(1);
            if let Some(k) = self.tables.keys().find(|k| k.name == name) {
                by_table.insert(name, k.clone());
            }
        }
        let mut images = BTreeMap::new();
        for (name, key) in &by_table {
            images.insert(name.clone(), self.images(key, lo, hi).await?);
        }
        let position = Position::SqliteSeq { seq: hi };
        let mut changes = Vec::with_capacity(rows.len());
        let mut bytes = 0usize;
        let mut last_at = None;
        for r in &rows {
            let (seq, name, op, at): (i64, String, String, f64) = (r.get(0), r.get(1), r.get(2), r.get(3));
            let (Some(key), Some(imgs)) = (by_table.get(&name), images.get_mut(&name)) else { continue };
            let info = &self.tables[key];
            let mut take = |img: &str| imgs.remove(&(seq, img.to_string()));
            let op = match op.as_str() {
                "I" => take("N").map(|row| Op::Insert { row }),
                "U" => {
                    let before = take("O");
                    take("N").map(|after| Op::Update { before, after: after.into_iter().map(Some).collect() })
                }
                "D" => take("O").map(|old| Op::Delete { key: if info.key.is_empty() { old } else { info.key.iter().map(|&i| old[i].clone()).collect() } }),
                _ => None,
            };
            let Some(op) = op else { continue };
            let at = chrono::DateTime::from_timestamp_micros((at * 1e6) as i64);
            last_at = at;
            bytes += 64;
            changes.push(Change { table: key.clone(), op, txid: None, commit_time: at, position: position.clone() });
        }
        self.last = hi;
        if changes.is_empty() {
            self.pending.push_back(SourceEvent::Idle { position, lag_bytes: None });
        } else {
            self.pending.push_back(SourceEvent::Transaction(Transaction { changes, position, commit_time: last_at, bytes, partial: false }));
        }
        Ok(())
    }
}

impl ChangeSource for SqliteSource {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            loop {
                if let Some(ev) = self.pending.pop_front() {
                    return Ok(Some(ev));
                }
                self.poll().await?;
                if self.pending.is_empty() {
                    tokio::time::sleep(self.interval).await;
                    return Ok(Some(SourceEvent::Idle { position: Position::SqliteSeq { seq: self.last }, lag_bytes: Some(0) }));
                }
            }
        })
    }

    /// Deletes the confirmed changes, so the change table stays small.
    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Position::SqliteSeq { seq } = position else { return Ok(()) };
            if *seq <= self.acked {
                return Ok(());
            }
            let mut sql = format!("BEGIN IMMEDIATE; DELETE FROM {CHANGES} WHERE seq <= {seq};");
            let tables: Vec<QualifiedName> = self.tables.keys().cloned().collect();
            for t in tables {
                sql.push_str(&format!(" DELETE FROM {} WHERE seq <= {seq};", rows_table(&t)));
            }
            sql.push_str(" COMMIT;");
            self.conn.execute(&sql).await?;
            self.acked = *seq;
            Ok(())
        })
    }

    fn lag_bytes(&self) -> Option<u64> {
        Some(self.lag)
    }
}
