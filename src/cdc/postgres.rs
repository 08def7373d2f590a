//! PostgreSQL change capture: a publication and a logical replication slot
//! (pgoutput), streamed over the replication protocol by the
//! `pgwire-replication` crate, and decoded here.
//!
//! The slot is created with `EXPORT_SNAPSHOT` on a replication session that
//! stays open and idle while the full load's readers import the snapshot
//! (`SET TRANSACTION SNAPSHOT`): the rows they read and the changes the slot
//! keeps then meet exactly, with nothing lost and nothing applied twice.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, SslMode, TlsConfig};
use tokio_postgres::Client;

use super::destination::BoxFuture;
use super::pgoutput::{self, Datum, Message, Relation};
use super::source::{ChangeSource, SourceEvent, Transaction};
use super::Tables;
use crate::codec::pgtext;
use crate::db::postgres::{connect_client, host_of, query_error, user_of};
use crate::endpoint::{password_for, DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Change, Op, Position, QualifiedName, Table, Value};

/// Session settings for the walsender: the text forms the decoders expect
/// (the same as the full load's COPY reader sets).
const SESSION_OPTIONS: &str = "-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=iso_8601 -c bytea_output=hex -c extra_float_digits=3";

/// Prefix of the logical messages barge writes to keep an idle slot moving.
pub const HEARTBEAT_PREFIX: &str = "barge.heartbeat";

fn wire_error(display: &str, what: &str, e: pgwire_replication::PgWireError) -> Error {
    let text = e.to_string();
    let hint = if text.contains("does not exist") && text.contains("slot") {
        Some("the replication slot is gone (dropped, or invalidated for falling too far behind), and the changes it held with it: start over by adding --restart --target-schema truncate to the command (the rows are loaded again and a new slot is made), or remove the state directory".to_string())
    } else if text.to_ascii_lowercase().contains("permission") || text.contains("must be superuser or replication role") {
        Some("the user needs the REPLICATION attribute: ALTER ROLE name REPLICATION".to_string())
    } else if text.contains("no pg_hba.conf entry for replication") {
        Some("allow replication connections for this user in pg_hba.conf (a line with database `replication` or the database name)".to_string())
    } else {
        None
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("{what}: {text}"), hint }
}

/// The replication session's settings, from the same URL the SQL
/// connections use (host or socket, port, user, password, `sslmode`).
pub fn replication_config(ep: &DbEndpoint, slot: &str, publication: &str, start: u64) -> Result<ReplicationConfig> {
    let host = host_of(ep);
    let user = user_of(ep);
    let password = password_for(ep, Role::Source, "PGPASSWORD")?.map(|p| p.expose().to_string()).unwrap_or_default();
    let ca = ep.options.get("sslrootcert").map(std::path::PathBuf::from);
    let tls = if host.starts_with('/') {
        TlsConfig::disabled()
    } else {
        match ep.options.get("sslmode").map(String::as_str).unwrap_or("prefer") {
            "disable" => TlsConfig::disabled(),
            "allow" | "prefer" => TlsConfig { mode: SslMode::Prefer, ..TlsConfig::disabled() },
            "require" => TlsConfig::require(),
            "verify-ca" => TlsConfig::verify_ca(ca),
            _ => TlsConfig::verify_full(ca),
        }
    };
    let mut cfg = ReplicationConfig::new(host, user.clone(), password, ep.database.clone().unwrap_or(user), slot, publication)
        .with_port(ep.port.unwrap_or(5432))
        .with_tls(tls)
        .with_start_lsn(Lsn::from_u64(start))
        .with_status_interval(Duration::from_secs(1))
        .with_wakeup_interval(Duration::from_secs(5))
        .with_options(SESSION_OPTIONS);
    cfg.application_name = Some("barge".into());
    Ok(cfg)
}

/// A snapshot exported with the slot; valid while this value lives.
pub struct ExportedSnapshot {
    pub name: String,
    _session: ReplicationClient,
}

pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn table_sql(t: &QualifiedName) -> String {
    format!("{}.{}", quote(t.schema.as_deref().unwrap_or("public")), quote(&t.name))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Checks what logical decoding needs, naming the setting that is missing.
async fn check_prerequisites(client: &Client, ep: &DbEndpoint) -> Result<()> {
    let sql = "SELECT current_setting('wal_level'), (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), current_user::text, \
               current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int";
    let row = client.query_one(sql, &[]).await.map_err(|e| query_error(&ep.display, sql, e))?;
    let (wal_level, can_replicate, user, free_slots): (String, Option<bool>, String, i32) = (row.get(0), row.get(1), row.get(2), row.get(3));
    if wal_level != "logical" {
        return Err(Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("wal_level is `{wal_level}`; change data capture needs wal_level = logical"),
            hint: Some("ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL".into()),
        });
    }
    if can_replicate != Some(true) {
        return Err(Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("role {user} may not stream changes (it lacks the REPLICATION attribute)"),
            hint: Some(format!("ALTER ROLE {} REPLICATION;", quote(&user))),
        });
    }
    if free_slots <= 0 {
        return Err(Error::Endpoint {
            endpoint: ep.display.clone(),
            message: "every replication slot is in use (max_replication_slots)".into(),
            hint: Some("drop unused slots (barge cleanup, or SELECT pg_drop_replication_slot(name)) or raise max_replication_slots".into()),
        });
    }
    Ok(())
}

/// Creates (or extends) the publication, makes key-less tables send whole
/// rows, and creates the slot unless it exists. Returns the position the
/// changes start at and, for a new slot, the exported snapshot.
pub async fn prepare(ep: &DbEndpoint, tables: &[Table], slot: &str, publication: &str, export: bool) -> Result<(Position, Option<ExportedSnapshot>)> {
    let client = connect_client(ep, Role::Source).await?;
    check_prerequisites(&client, ep).await?;
    let run = |sql: String| {
        let client = &client;
        async move { client.batch_execute(&sql).await.map_err(|e| query_error(&ep.display, &sql, e)) }
    };

    // The publication: exactly the captured tables (a FOR ALL TABLES
    // publication would need superuser).
    let exists = client.query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication]).await.map_err(|e| query_error(&ep.display, "pg_publication", e))?.is_some();
    if !exists {
        let list: Vec<String> = tables.iter().map(|t| table_sql(&t.name)).collect();
        run(format!("CREATE PUBLICATION {} FOR TABLE {}", quote(publication), list.join(", "))).await?;
    } else {
        let rows = client.query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1", &[&publication]).await.map_err(|e| query_error(&ep.display, "pg_publication_tables", e))?;
        let have: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for t in tables {
            let key = (t.name.schema.clone().unwrap_or_else(|| "public".into()), t.name.name.clone());
            if !have.contains(&key) {
                run(format!("ALTER PUBLICATION {} ADD TABLE {}", quote(publication), table_sql(&t.name))).await?;
            }
        }
    }

    // Without a key, UPDATE and DELETE would fail at the source once the
    // table is published; replica identity full makes them carry the row.
    for t in tables.iter().filter(|t| t.primary_key.is_none()) {
        let sql = format!("SELECT relreplident::text FROM pg_class WHERE oid = {}::regclass", literal(&table_sql(&t.name)));
        let ident: String = client.query_one(sql.as_str(), &[]).await.map_err(|e| query_error(&ep.display, &sql, e))?.get(0);
        if ident == "d" || ident == "n" {
            run(format!("ALTER TABLE {} REPLICA IDENTITY FULL", table_sql(&t.name))).await.map_err(|e| {
                e.with_hint(format!("{} has no primary key; barge needs it to send whole rows: run ALTER TABLE ... REPLICA IDENTITY FULL as its owner, or add a primary key", t.name))
            })?;
            crate::output::warn(format!("{} has no primary key: set REPLICA IDENTITY FULL on the source, and changes are applied by matching whole rows", t.name));
        }
    }

    let existing = client
        .query_opt("SELECT plugin::text, COALESCE(confirmed_flush_lsn, restart_lsn)::text, database::text = current_database() FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await
        .map_err(|e| query_error(&ep.display, "pg_replication_slots", e))?;
    if let Some(row) = existing {
        let (plugin, lsn, same_db): (Option<String>, Option<String>, Option<bool>) = (row.get(0), row.get(1), row.get(2));
        if plugin.as_deref() != Some("pgoutput") || same_db != Some(true) {
            return Err(Error::Endpoint {
                endpoint: ep.display.clone(),
                message: format!("replication slot {slot} exists but is not a pgoutput slot of this database"),
                hint: Some("give another --slot name, or drop that slot".into()),
            });
        }
        let lsn = lsn.as_deref().and_then(crate::model::change::parse_lsn).unwrap_or(0);
        return Ok((Position::pg(lsn), None));
    }
    drop(client);

    let cfg = replication_config(ep, slot, publication, 0)?;
    let mut session = ReplicationClient::connect_gated(cfg).await.map_err(|e| wire_error(&ep.display, "cannot open a replication session", e))?;
    let snapshot_clause = if export { "EXPORT_SNAPSHOT" } else { "NOEXPORT_SNAPSHOT" };
    let rows = session
        .simple_query(&format!("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {snapshot_clause}", quote(slot)))
        .await
        .map_err(|e| wire_error(&ep.display, &format!("cannot create replication slot {slot}"), e))?;
    let row = rows.into_iter().next().ok_or_else(|| Error::other("CREATE_REPLICATION_SLOT returned no row"))?;
    let text = |i: usize| row.get(i).and_then(|c| c.as_ref()).map(|b| String::from_utf8_lossy(b).into_owned());
    let lsn = text(1).as_deref().and_then(crate::model::change::parse_lsn).ok_or_else(|| Error::other("CREATE_REPLICATION_SLOT returned no consistent point"))?;
    let snapshot = match (export, text(2)) {
        (true, Some(name)) => Some(ExportedSnapshot { name, _session: session }),
        _ => None,
    };
    Ok((Position::pg(lsn), snapshot))
}

/// Drops the slot and the publication (each only if it exists).
pub async fn cleanup(ep: &DbEndpoint, slot: &str, publication: &str) -> Result<Vec<String>> {
    let client = connect_client(ep, Role::Source).await?;
    let mut done = Vec::new();
    // A `barge migrate` that just stopped leaves its walsender running for a
    // moment: give it a few seconds to let go of the slot.
    let mut active = None;
    for _ in 0..20 {
        active = client.query_opt("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", &[&slot]).await.map_err(|e| query_error(&ep.display, "pg_replication_slots", e))?;
        if active.as_ref().is_none_or(|r| r.get::<_, Option<i32>>(0).is_none()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    if let Some(row) = active {
        let pid: Option<i32> = row.get(0);
        if let Some(pid) = pid {
            return Err(Error::Endpoint {
                endpoint: ep.display.clone(),
                message: format!("replication slot {slot} is in use by process {pid}"),
                hint: Some("stop the running `barge migrate` first".into()),
            });
        }
        let sql = "SELECT pg_drop_replication_slot($1)";
        client.execute(sql, &[&slot]).await.map_err(|e| query_error(&ep.display, sql, e))?;
        done.push(format!("dropped replication slot {slot}"));
    }
    let exists = client.query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication]).await.map_err(|e| query_error(&ep.display, "pg_publication", e))?.is_some();
    if exists {
        let sql = format!("DROP PUBLICATION {}", quote(publication));
        client.batch_execute(&sql).await.map_err(|e| query_error(&ep.display, &sql, e))?;
        done.push(format!("dropped publication {publication}"));
    }
    Ok(done)
}

/// How a relation's columns line up with the captured table's.
struct RelationMap {
    table: QualifiedName,
    /// For each column the server sends, the index in the table model.
    columns: Vec<usize>,
}

/// The stream of committed transactions from a slot.
pub struct PgSource {
    display: String,
    client: ReplicationClient,
    tables: std::sync::Arc<Tables>,
    relations: HashMap<u32, RelationMap>,
    /// Relations whose definition no longer matches: their changes are dropped.
    stopped: HashMap<u32, String>,
    current: Option<Transaction>,
    current_xid: Option<u32>,
    server_wal_end: u64,
    delivered: u64,
}

impl PgSource {
    pub async fn open(ep: &DbEndpoint, slot: &str, publication: &str, start: u64, tables: std::sync::Arc<Tables>) -> Result<PgSource> {
        let mut cfg = replication_config(ep, slot, publication, start)?;
        // Report as flushed only what the destination has confirmed.
        cfg.ack_lsn = Some(Lsn::from_u64(start));
        let mut client = ReplicationClient::connect(cfg).await.map_err(|e| wire_error(&ep.display, "cannot open a replication session", e))?;
        client.wait_started().await.map_err(|e| wire_error(&ep.display, &format!("cannot stream from slot {slot}"), e))?;
        Ok(PgSource { display: ep.display.clone(), client, tables, relations: HashMap::new(), stopped: HashMap::new(), current: None, current_xid: None, server_wal_end: start, delivered: start })
    }

    fn relation(&mut self, r: Relation) -> Option<SourceEvent> {
        let Some((key, info)) = self.tables.iter().find(|(k, _)| k.name == r.name && k.schema.as_deref().unwrap_or("public") == r.schema) else {
            // Published but not captured (a user-given publication).
            self.relations.remove(&r.oid);
            return None;
        };
        let mut columns = Vec::with_capacity(r.columns.len());
        for c in &r.columns {
            match info.source.columns.iter().position(|x| x.name == c.name) {
                Some(i) => columns.push(i),
                None => {
                    let message = format!("column {} was added at the source after the capture started; the target does not have it", c.name);
                    self.stopped.insert(r.oid, message.clone());
                    return Some(SourceEvent::SchemaChanged { table: key.clone(), message });
                }
            }
        }
        let sent: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        if let Some(missing) = info.source.columns.iter().find(|c| c.generated.is_none() && !sent.contains(&c.name.as_str())) {
            let message = format!("column {} was dropped at the source after the capture started", missing.name);
            self.stopped.insert(r.oid, message.clone());
            return Some(SourceEvent::SchemaChanged { table: key.clone(), message });
        }
        self.stopped.remove(&r.oid);
        self.relations.insert(r.oid, RelationMap { table: key.clone(), columns });
        None
    }

    /// One tuple → values in the table model's column order; `None` where
    /// the server sent nothing (unchanged TOAST, generated columns).
    fn values(&self, map: &RelationMap, tuple: &[Datum]) -> Result<Vec<Option<Value>>> {
        let info = &self.tables[&map.table];
        let mut out: Vec<Option<Value>> = vec![None; info.source.columns.len()];
        for (datum, &i) in tuple.iter().zip(&map.columns) {
            let col = &info.source.columns[i];
            out[i] = match datum {
                Datum::Unchanged => None,
                Datum::Null => Some(Value::Null),
                Datum::Text(b) | Datum::Binary(b) if is_money(&col.ty) => Some(money(b)),
                Datum::Text(b) | Datum::Binary(b) => Some(pgtext::decode_field(Some(b.clone()), &col.ty).map_err(|e| Error::Table {
                    table: map.table.to_string(),
                    row: None,
                    message: format!("column {}: {e}", col.name),
                    hint: Some("report this value; barge could not read what the replication stream sent".into()),
                })?),
            };
        }
        Ok(out)
    }

    fn change(&mut self, msg: Message) -> Result<Option<SourceEvent>> {
        let (relation, op) = match msg {
            Message::Relation(r) => return Ok(self.relation(r)),
            Message::Insert { relation, new } => {
                let Some(map) = self.relations.get(&relation) else { return Ok(None) };
                let row = self.values(map, &new)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
                (relation, Op::Insert { row })
            }
            Message::Update { relation, old, new } => {
                let Some(map) = self.relations.get(&relation) else { return Ok(None) };
                let before = match &old {
                    Some((_, t)) => Some(self.values(map, t)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()),
                    None => None,
                };
                let after = self.values(map, &new)?;
                (relation, Op::Update { before, after })
            }
            Message::Delete { relation, old: (kind, tuple) } => {
                let Some(map) = self.relations.get(&relation) else { return Ok(None) };
                let row: Vec<Value> = self.values(map, &tuple)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
                let info = &self.tables[&map.table];
                let _ = kind;
                let key = if !info.key.is_empty() { info.key.iter().map(|&i| row[i].clone()).collect() } else { row };
                (relation, Op::Delete { key })
            }
            Message::Truncate { relations, .. } => {
                let Some(txn) = self.current.as_mut() else { return Ok(None) };
                for r in relations {
                    if self.stopped.contains_key(&r) {
                        continue;
                    }
                    if let Some(map) = self.relations.get(&r) {
                        txn.changes.push(Change { table: map.table.clone(), op: Op::Truncate, txid: None, commit_time: None, position: Position::pg(0) });
                    }
                }
                return Ok(None);
            }
            _ => return Ok(None),
        };
        if self.stopped.contains_key(&relation) {
            return Ok(None);
        }
        let table = self.relations[&relation].table.clone();
        if let Some(txn) = self.current.as_mut() {
            txn.bytes += op_weight(&op);
            txn.changes.push(Change { table, op, txid: None, commit_time: None, position: Position::pg(0) });
        }
        Ok(None)
    }
}

fn is_money(ty: &crate::model::ColumnType) -> bool {
    matches!(ty, crate::model::ColumnType::Other { name } if name == "money")
}

/// `money` prints with the locale's symbol and separators; the full load
/// reads it as numeric, so changes carry the same number.
fn money(text: &[u8]) -> Value {
    let digits: String = String::from_utf8_lossy(text).chars().filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-').collect();
    let negative = text.contains(&b'(') || digits.starts_with('-');
    let n = digits.trim_start_matches('-');
    Value::Decimal(if negative { format!("-{n}") } else { n.to_string() })
}

fn op_weight(op: &Op) -> usize {
    let w = |vs: &[Value]| vs.iter().map(Value::weight).sum::<usize>();
    match op {
        Op::Insert { row } => w(row),
        Op::Update { after, .. } => after.iter().flatten().map(Value::weight).sum(),
        Op::Delete { key } => w(key),
        Op::Truncate => 8,
    }
}

fn pg_time(micros: i64) -> Option<DateTime<Utc>> {
    // Microseconds since 2000-01-01.
    DateTime::from_timestamp_micros(micros + 946_684_800_000_000)
}

impl ChangeSource for PgSource {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            loop {
                let ev = self.client.recv().await.map_err(|e| wire_error(&self.display, "the replication stream failed", e))?;
                let Some(ev) = ev else { return Ok(None) };
                match ev {
                    ReplicationEvent::Begin { xid, commit_time_micros, .. } => {
                        self.current = Some(Transaction { changes: Vec::new(), position: Position::pg(0), commit_time: pg_time(commit_time_micros), bytes: 0 });
                        // The xid labels every change of the transaction.
                        self.current_xid = Some(xid);
                    }
                    ReplicationEvent::XLogData { data, wal_end, .. } => {
                        self.server_wal_end = self.server_wal_end.max(wal_end.as_u64());
                        let msg = pgoutput::decode(&data).map_err(|e| Error::Endpoint { endpoint: self.display.clone(), message: e.to_string(), hint: None })?;
                        if let Some(ev) = self.change(msg)? {
                            return Ok(Some(ev));
                        }
                    }
                    ReplicationEvent::Commit { end_lsn, commit_time_micros, .. } => {
                        let Some(mut txn) = self.current.take() else { continue };
                        let end = end_lsn.as_u64();
                        self.server_wal_end = self.server_wal_end.max(end);
                        self.delivered = end;
                        txn.position = Position::pg(end);
                        txn.commit_time = pg_time(commit_time_micros);
                        let xid = self.current_xid.take().map(|x| x.to_string());
                        for c in txn.changes.iter_mut() {
                            c.position = txn.position.clone();
                            c.commit_time = txn.commit_time;
                            c.txid = xid.clone();
                        }
                        if txn.changes.is_empty() {
                            return Ok(Some(SourceEvent::Idle { position: txn.position, lag_bytes: Some(self.server_wal_end.saturating_sub(end)) }));
                        }
                        return Ok(Some(SourceEvent::Transaction(txn)));
                    }
                    ReplicationEvent::KeepAlive { wal_end, .. } => {
                        self.server_wal_end = self.server_wal_end.max(wal_end.as_u64());
                        if self.current.is_none() {
                            self.delivered = self.delivered.max(wal_end.as_u64());
                            return Ok(Some(SourceEvent::Idle { position: Position::pg(self.delivered), lag_bytes: Some(0) }));
                        }
                    }
                    ReplicationEvent::Message { transactional: false, lsn, .. } if self.current.is_none() => {
                        self.delivered = self.delivered.max(lsn.as_u64());
                        return Ok(Some(SourceEvent::Idle { position: Position::pg(self.delivered), lag_bytes: Some(self.server_wal_end.saturating_sub(self.delivered)) }));
                    }
                    ReplicationEvent::Message { .. } => {}
                    ReplicationEvent::StoppedAt { .. } => return Ok(None),
                }
            }
        })
    }

    fn acknowledge<'a>(&'a mut self, position: &'a Position) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let Position::PgLsn { lsn } = position {
                self.client.update_applied_lsn(Lsn::from_u64(*lsn));
            }
            Ok(())
        })
    }

    fn next_is_cancel_safe(&self) -> bool {
        // Every partial result is kept in `self`; the only wait is on the
        // stream, which loses nothing when dropped.
        true
    }

    fn lag_bytes(&self) -> Option<u64> {
        Some(self.server_wal_end.saturating_sub(self.delivered))
    }
}

/// Writes a logical message into the source's WAL now and then, so that a
/// database whose captured tables are idle (or whose writes all go to
/// other tables) still moves the slot forward and releases WAL.
pub async fn heartbeat(ep: DbEndpoint, every: Duration) {
    let mut client: Option<Client> = None;
    loop {
        tokio::time::sleep(every).await;
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = connect_client(&ep, Role::Source).await.ok();
        }
        if let Some(c) = &client {
            let _ = c.batch_execute(&format!("SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')")).await;
        }
    }
}
