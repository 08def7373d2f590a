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

use crate::sink::BoxFuture;
use super::pgoutput::{self, Datum, Message, Relation};
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::cdc::Tables;
use crate::codec::pgtext;
use crate::db::postgres::{connect_client, host_of, query_error, user_of};
use crate::endpoint::{password_for, DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Change, Column, Op, Position, QualifiedName, Table, Value};
use crate::schema::typetext;

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
    Error::Endpoint { endpoint: display.to_string(), message: format!("{what}: {text}"), hint }.retriable_if(crate::util::retry::Retriable::is_retriable(&e))
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
pub async fn prepare(ep: &DbEndpoint, tables: &[Table], slot: &str, publication: &str, export: bool) -> Result<(Position, Option<ExportedSnapshot>, Vec<ReplicaIdentity>)> {
    let client = connect_client(ep, Role::Source).await?;
    check_prerequisites(&client, ep).await?;

    let mut changed = Vec::new();
    publish(&client, ep, publication, tables, !exists_publication(&client, ep, publication).await?, &mut changed).await?;

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
        return Ok((Position::pg(lsn), None, changed));
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
    Ok((Position::pg(lsn), snapshot, changed))
}

/// A table whose replica identity barge set to FULL, and what it was
/// before (`d` default, `n` nothing), so `barge cleanup` can restore it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaIdentity {
    pub table: QualifiedName,
    pub previous: String,
}

async fn exists_publication(client: &Client, ep: &DbEndpoint, publication: &str) -> Result<bool> {
    Ok(client.query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication]).await.map_err(|e| query_error(&ep.display, "pg_publication", e))?.is_some())
}

/// Puts `tables` in the publication (creating it with exactly them when
/// `create`; a FOR ALL TABLES publication would need superuser), and makes
/// key-less ones send whole rows; `changed` gets the tables whose replica
/// identity barge changed.
async fn publish(client: &Client, ep: &DbEndpoint, publication: &str, tables: &[Table], create: bool, changed: &mut Vec<ReplicaIdentity>) -> Result<()> {
    let run = |sql: String| async move { client.batch_execute(&sql).await.map_err(|e| query_error(&ep.display, &sql, e)) };
    if create {
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
            changed.push(ReplicaIdentity { table: t.name.clone(), previous: ident });
            tracing::warn!("{} has no primary key: set REPLICA IDENTITY FULL on the source (barge cleanup sets it back), and changes are applied by matching whole rows", t.name);
        }
    }
    Ok(())
}

/// Adds tables to the capture while it runs (created at the source, or
/// reloaded): in the publication, with whole rows when they have no key.
pub async fn capture_tables(ep: &DbEndpoint, publication: &str, tables: &[Table]) -> Result<Vec<ReplicaIdentity>> {
    let client = connect_client(ep, Role::Source).await?;
    let mut changed = Vec::new();
    publish(&client, ep, publication, tables, false, &mut changed).await?;
    Ok(changed)
}

/// What the catalog says of the captured tables: tables the selection
/// includes that the run does not capture yet (created since it started),
/// as the catalog reads them, and captured tables it no longer has
/// (dropped or renamed).
pub struct CatalogCheck {
    pub new: Vec<Table>,
    pub gone: Vec<QualifiedName>,
}

pub async fn check_catalog(ep: &DbEndpoint, converter: &crate::cdc::evolve::Converter, known: &Tables, stopped: &std::collections::BTreeMap<QualifiedName, String>) -> Result<CatalogCheck> {
    let client = connect_client(ep, Role::Source).await?;
    let sql = "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')";
    let rows = client.query(sql, &[]).await.map_err(|e| query_error(&ep.display, sql, e))?;
    let same = |k: &QualifiedName, q: &QualifiedName| k == q || (k.name == q.name && k.schema.as_deref().unwrap_or("public") == q.schema.as_deref().unwrap_or("public"));
    let names: Vec<QualifiedName> = rows.iter().map(|r| QualifiedName::new(Some(&r.get::<_, String>(0)), &r.get::<_, String>(1))).collect();
    let gone = known.keys().filter(|k| !names.iter().any(|q| same(k, q))).cloned().collect();
    let fresh: Vec<QualifiedName> = names.into_iter().filter(|q| !known.keys().chain(stopped.keys()).any(|k| same(k, q)) && converter.mapping.selects(q)).collect();
    if fresh.is_empty() {
        return Ok(CatalogCheck { new: Vec::new(), gone });
    }
    let mut schemas: Vec<String> = fresh.iter().filter_map(|q| q.schema.clone()).collect();
    schemas.dedup();
    let major = crate::db::postgres::server_major(&client, &ep.display).await?;
    let schema = crate::db::postgres::introspect(&client, &ep.display, &schemas, major).await?;
    Ok(CatalogCheck { new: schema.tables.into_iter().filter(|t| fresh.contains(&t.name)).collect(), gone })
}

/// Drops the slot and the publication (each only if it exists), and sets
/// back the replica identities barge changed (where they are still FULL).
pub async fn cleanup(ep: &DbEndpoint, slot: &str, publication: &str, identities: &[ReplicaIdentity]) -> Result<Vec<String>> {
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
    for r in identities {
        let table = table_sql(&r.table);
        let sql = format!("SELECT relreplident::text FROM pg_class WHERE oid = to_regclass({})", literal(&table));
        let now: Option<String> = client.query_opt(sql.as_str(), &[]).await.map_err(|e| query_error(&ep.display, &sql, e))?.map(|row| row.get(0));
        let back = match r.previous.as_str() {
            "n" => "NOTHING",
            _ => "DEFAULT",
        };
        match now.as_deref() {
            Some("f") => {
                let sql = format!("ALTER TABLE {table} REPLICA IDENTITY {back}");
                client.batch_execute(&sql).await.map_err(|e| query_error(&ep.display, &sql, e))?;
                done.push(format!("set replica identity of {} back to {back}", r.table));
            }
            Some(_) => done.push(format!("left replica identity of {} as it is (changed since barge set it to FULL)", r.table)),
            None => {}
        }
    }
    Ok(done)
}

/// How a relation's columns line up with the table model.
struct RelationMap {
    table: QualifiedName,
    /// For each column the server sends, the index in the model's columns.
    columns: Vec<usize>,
}

/// A table as the stream has it now: the model rows are decoded with, the
/// key's indexes, and each column's attribute number (a rename keeps it, a
/// drop and an add do not), where known.
struct Model {
    table: Table,
    key: Vec<usize>,
    attnums: Vec<Option<i16>>,
}

impl Model {
    fn new(table: Table, attnums: Vec<Option<i16>>) -> Model {
        let key = crate::source::key_indexes(&table);
        Model { table, key, attnums }
    }
}

/// The stream of committed transactions from a slot.
pub struct PgSource {
    ep: DbEndpoint,
    display: String,
    client: ReplicationClient,
    /// A plain session for catalog lookups when a relation changes.
    catalog: Option<Client>,
    models: HashMap<QualifiedName, Model>,
    relations: HashMap<u32, RelationMap>,
    /// Type names by (oid, modifier), as `format_type` spells them (a
    /// domain as its base type, as the catalog reader does).
    type_names: HashMap<(u32, i32), String>,
    current: Option<Transaction>,
    current_xid: Option<u32>,
    /// The commit LSN of the transaction being received.
    current_final_lsn: Option<u64>,
    /// Parts of the transaction being received already handed out (a
    /// Relation message mid-transaction splits it).
    current_parts: u64,
    /// A Relation message taken from the stream whose catalog lookups have
    /// not finished: `next` may be dropped while it waits on them (the
    /// replication loop takes acknowledgements meanwhile), and the message
    /// is then handled again on the next call, not lost.
    pending_relation: Option<Relation>,
    /// Events decided but not yet returned.
    pending_events: std::collections::VecDeque<SourceEvent>,
    server_wal_end: u64,
    delivered: u64,
    /// How long the stream may stay silent: the server sends a keepalive
    /// at least every `wal_sender_timeout / 2` (30 s by default) and
    /// barge's heartbeat writes a message every few seconds, so hearing
    /// nothing for longer means the connection is dead or black-holed.
    silence_limit: Duration,
}

impl PgSource {
    pub async fn open(ep: &DbEndpoint, slot: &str, publication: &str, start: u64, tables: std::sync::Arc<Tables>, silence_limit: Duration) -> Result<PgSource> {
        let mut cfg = replication_config(ep, slot, publication, start)?;
        // Report as flushed only what the destination has confirmed.
        cfg.ack_lsn = Some(Lsn::from_u64(start));
        let connect = async {
            let mut client = ReplicationClient::connect(cfg).await.map_err(|e| wire_error(&ep.display, "cannot open a replication session", e))?;
            client.wait_started().await.map_err(|e| wire_error(&ep.display, &format!("cannot stream from slot {slot}"), e))?;
            Ok::<_, Error>(client)
        };
        let client = tokio::time::timeout(silence_limit, connect).await.map_err(|_| Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("the replication session did not start within {} s (connection timed out)", silence_limit.as_secs()),
            hint: Some("check that the host answers on its port (a firewall that drops packets looks like this)".into()),
        }.retriable_if(true))??;
        let models = tables.iter().map(|(k, info)| (k.clone(), Model::new(info.source.clone(), vec![None; info.source.columns.len()]))).collect();
        Ok(PgSource {
            ep: ep.clone(),
            display: ep.display.clone(),
            client,
            catalog: None,
            models,
            relations: HashMap::new(),
            type_names: HashMap::new(),
            current: None,
            current_xid: None,
            current_final_lsn: None,
            current_parts: 0,
            pending_relation: None,
            pending_events: Default::default(),
            server_wal_end: start,
            delivered: start,
            silence_limit,
        })
    }

    async fn catalog(&mut self) -> Result<&Client> {
        if self.catalog.as_ref().is_none_or(|c| c.is_closed()) {
            self.catalog = Some(connect_client(&self.ep, Role::Source).await?);
        }
        Ok(self.catalog.as_ref().expect("connected"))
    }

    /// The type names of a relation's columns.
    async fn relation_types(&mut self, r: &Relation) -> Result<Vec<String>> {
        let missing: Vec<(u32, i32)> = r.columns.iter().map(|c| (c.type_oid, c.type_modifier)).filter(|k| !self.type_names.contains_key(k)).collect();
        if !missing.is_empty() {
            let oids: Vec<u32> = missing.iter().map(|k| k.0).collect();
            let mods: Vec<i32> = missing.iter().map(|k| k.1).collect();
            let sql = "SELECT x.o, x.m, CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(x.o, x.m) END \
                       FROM unnest($1::oid[], $2::int4[]) AS x(o, m) JOIN pg_type t ON t.oid = x.o";
            let display = self.display.clone();
            let rows = self.catalog().await?.query(sql, &[&oids, &mods]).await.map_err(|e| query_error(&display, sql, e))?;
            for row in rows {
                self.type_names.insert((row.get(0), row.get(1)), row.get(2));
            }
        }
        Ok(r.columns.iter().map(|c| self.type_names.get(&(c.type_oid, c.type_modifier)).cloned().unwrap_or_else(|| format!("oid {}", c.type_oid))).collect())
    }

    /// Live columns' attribute numbers by name, from the catalog now.
    async fn attnums(&mut self, oid: u32) -> Result<HashMap<String, i16>> {
        let sql = "SELECT attname::text, attnum FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped";
        let display = self.display.clone();
        let rows = self.catalog().await?.query(sql, &[&oid]).await.map_err(|e| query_error(&display, sql, e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The table as the catalog has it now (defaults, nullability, enum
    /// labels, key), read by the same code as the full load.
    async fn catalog_table(&mut self, name: &QualifiedName) -> Result<Option<Table>> {
        let display = self.display.clone();
        let ns = name.schema.clone().unwrap_or_else(|| "public".into());
        let client = self.catalog().await?;
        let major = crate::db::postgres::server_major(client, &display).await?;
        let schema = crate::db::postgres::introspect(client, &display, &[ns], major).await?;
        Ok(schema.tables.into_iter().find(|t| t.name.name == name.name))
    }

    /// Handles the Relation message in `pending_relation`; it is cleared
    /// only once handled (every await in `relation` comes before any change
    /// to `self`, so a drop midway loses nothing).
    async fn pending_relation(&mut self) -> Result<Option<SourceEvent>> {
        let Some(r) = self.pending_relation.clone() else { return Ok(None) };
        let limit = self.silence_limit;
        let ev = tokio::time::timeout(limit, self.relation(r)).await.map_err(|_| Error::Endpoint {
            endpoint: self.display.clone(),
            message: format!("reading a table's definition from the source's catalog timed out after {} s", limit.as_secs()),
            hint: None,
        }.retriable_if(true))??;
        self.pending_relation = None;
        // Changes of this transaction before the new definition have the
        // old layout: they go first, as a part of their own.
        let Some(ev) = ev else { return Ok(None) };
        let before = self.current.as_mut().map(|t| std::mem::take(&mut t.changes)).unwrap_or_default();
        if before.is_empty() {
            return Ok(Some(ev));
        }
        // A part's position lies strictly between the transaction before
        // and this one's end. The commit LSN alone will not do: the commit
        // record before may end exactly where this one's begins, and a part
        // at that position would be skipped as already applied. The commit
        // record is at least 40 bytes long, so commit LSN + 1..=31 stays
        // below this transaction's end.
        self.current_parts += 1;
        if self.current_parts > MAX_PARTS {
            return Err(Error::Endpoint {
                endpoint: self.display.clone(),
                message: format!("transaction {} changes the definition of captured tables more than {MAX_PARTS} times between its row changes; barge cannot place the parts of one transaction that finely", self.current_xid.unwrap_or(0)),
                hint: Some("run such a migration with its schema changes in fewer transactions, or stop the capture, run it, and load the changed tables again with --reload".into()),
            });
        }
        let commit = self.current_final_lsn.unwrap_or(self.delivered);
        let at = Position::pg(commit + self.current_parts);
        let xid = self.current_xid.map(|x| x.to_string());
        let commit_time = self.current.as_ref().and_then(|t| t.commit_time);
        let changes: Vec<Change> = before.into_iter().map(|mut c| {
            c.position = at.clone();
            c.txid = xid.clone();
            c
        }).collect();
        let bytes = changes.iter().map(|c| op_weight(&c.op)).sum();
        self.pending_events.push_back(ev);
        Ok(Some(SourceEvent::Transaction(Transaction { changes, position: at, commit_time, bytes, partial: true })))
    }

    /// A Relation message: the columns of a table from here on. Returns a
    /// schema event when they differ from the model.
    async fn relation(&mut self, r: Relation) -> Result<Option<SourceEvent>> {
        let name = QualifiedName::new(Some(&r.schema), &r.name);
        // The same relation under another name: renamed at the source.
        if let Some(prev) = self.relations.get(&r.oid) {
            let was = &prev.table;
            if was.name != r.name || was.schema.as_deref().unwrap_or("public") != r.schema {
                let table = was.clone();
                self.relations.remove(&r.oid);
                self.models.remove(&table);
                let change = SchemaChange::Unsupported { message: format!("it was renamed to {name} at the source") };
                return Ok(Some(SourceEvent::Schema(Box::new(SchemaEvent { table, change, position: None, commit_lsn: self.current_final_lsn }))));
            }
        }
        let key = self.models.keys().find(|k| k.name == r.name && k.schema.as_deref().unwrap_or("public") == r.schema).cloned().unwrap_or(name);
        let types = self.relation_types(&r).await?;
        let unchanged = self.models.get(&key).is_some_and(|m| {
            let live: Vec<&Column> = m.table.columns.iter().filter(|c| c.generated.is_none()).collect();
            live.len() == r.columns.len() && live.iter().zip(&r.columns).zip(&types).all(|((c, rc), ty)| c.name == rc.name && same_type(c, ty))
        });
        if !unchanged {
            let event = self.relation_changed(&key, &r, &types).await?;
            self.map_relation(&key, &r);
            return Ok(Some(event));
        }
        if self.models[&key].attnums.iter().any(Option::is_none) {
            let by_name = self.attnums(r.oid).await?;
            let m = self.models.get_mut(&key).expect("model");
            m.attnums = m.table.columns.iter().map(|c| by_name.get(&c.name).copied()).collect();
        }
        self.map_relation(&key, &r);
        Ok(None)
    }

    fn map_relation(&mut self, key: &QualifiedName, r: &Relation) {
        let model = &self.models[key];
        let columns = r.columns.iter().map(|c| model.table.columns.iter().position(|x| x.name == c.name).unwrap_or(usize::MAX)).collect();
        self.relations.insert(r.oid, RelationMap { table: key.clone(), columns });
    }

    /// Builds the table's new model from a Relation that differs from it:
    /// columns as the message lists them, described as the catalog does
    /// where the catalog still agrees; renames told from drops and adds by
    /// attribute number.
    async fn relation_changed(&mut self, key: &QualifiedName, r: &Relation, types: &[String]) -> Result<SourceEvent> {
        let catalog = self.catalog_table(key).await?;
        let by_name = self.attnums(r.oid).await?;
        let old = self.models.remove(key);
        let mut columns = Vec::with_capacity(r.columns.len());
        let mut attnums = Vec::with_capacity(r.columns.len());
        for (rc, ty) in r.columns.iter().zip(types) {
            let described = catalog.as_ref().and_then(|t| t.columns.iter().find(|c| c.name == rc.name)).filter(|c| same_type(c, ty)).cloned();
            let kept = old.as_ref().and_then(|m| m.table.columns.iter().find(|c| c.name == rc.name)).filter(|c| same_type(c, ty)).cloned();
            columns.push(kept.or(described).unwrap_or_else(|| Column::new(&rc.name, typetext::recognize(crate::model::Dialect::Postgres, &typetext::parse(ty)), ty)));
            attnums.push(by_name.get(&rc.name).copied());
        }
        // Generated columns are not sent; they stay while the catalog has them.
        if let Some(t) = &catalog {
            for c in t.columns.iter().filter(|c| c.generated.is_some()) {
                columns.push(c.clone());
                attnums.push(by_name.get(&c.name).copied());
            }
        }
        let mut table = old.as_ref().map(|m| m.table.clone()).or_else(|| catalog.clone()).unwrap_or_else(|| Table::new(key.clone()));
        table.columns = columns;
        let mut renames = Vec::new();
        let mut unsure = None;
        if let Some(old) = &old {
            let gone: Vec<(usize, &Column)> = old.table.columns.iter().enumerate().filter(|(_, c)| !table.columns.iter().any(|n| n.name == c.name)).collect();
            let added: Vec<(usize, &Column)> = table.columns.iter().enumerate().filter(|(_, c)| !old.table.columns.iter().any(|o| o.name == c.name)).collect();
            for &(ai, a) in &added {
                // Same attribute number: the same column under a new name.
                if let Some(&(_, g)) = gone.iter().find(|(gi, _)| old.attnums[*gi].is_some() && old.attnums[*gi] == attnums[ai]) {
                    renames.push((g.name.clone(), a.name.clone()));
                } else if old.attnums.iter().any(Option::is_none) || attnums[ai].is_none() {
                    // The catalog has moved on (or was never read for the
                    // model): a column in the place of one that went may
                    // be either.
                    if gone.iter().any(|(gi, _)| *gi == ai) {
                        unsure = Some(format!("column {} appeared where column {} was; barge cannot tell a rename from a drop and an add here", a.name, old.table.columns[ai].name));
                    }
                }
            }
        }
        // The key: as the catalog has it when its columns are all here,
        // else the old one (through renames).
        table.primary_key = match catalog.as_ref().and_then(|t| t.primary_key.clone()) {
            Some(k) if k.columns.iter().all(|c| table.columns.iter().any(|x| &x.name == c)) => Some(k),
            _ => old.as_ref().and_then(|m| m.table.primary_key.clone()).map(|mut k| {
                for c in k.columns.iter_mut() {
                    if let Some((_, to)) = renames.iter().find(|(from, _)| from == c) {
                        *c = to.clone();
                    }
                }
                k
            }),
        };
        self.models.insert(key.clone(), Model::new(table.clone(), attnums));
        let change = match unsure {
            Some(message) => SchemaChange::Unsupported { message },
            None => SchemaChange::Columns { table, renames, statement: None },
        };
        Ok(SourceEvent::Schema(Box::new(SchemaEvent { table: key.clone(), change, position: None, commit_lsn: self.current_final_lsn })))
    }

    /// One tuple → values in the table model's column order; `None` where
    /// the server sent nothing (unchanged TOAST, generated columns).
    fn values(&self, map: &RelationMap, tuple: &[Datum]) -> Result<Vec<Option<Value>>> {
        let model = &self.models[&map.table].table;
        let mut out: Vec<Option<Value>> = vec![None; model.columns.len()];
        for (datum, &i) in tuple.iter().zip(&map.columns) {
            let Some(col) = model.columns.get(i) else { continue };
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

    async fn change(&mut self, msg: Message) -> Result<Option<SourceEvent>> {
        let (relation, op) = match msg {
            Message::Relation(r) => {
                self.pending_relation = Some(r);
                return self.pending_relation().await;
            }
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
                let model = &self.models[&map.table];
                let _ = kind;
                let key = if !model.key.is_empty() { model.key.iter().map(|&i| row[i].clone()).collect() } else { row };
                (relation, Op::Delete { key })
            }
            Message::Truncate { relations, .. } => {
                let Some(txn) = self.current.as_mut() else { return Ok(None) };
                for r in relations {
                    if let Some(map) = self.relations.get(&r) {
                        txn.changes.push(Change { table: map.table.clone(), op: Op::Truncate, txid: None, commit_time: None, position: Position::pg(0) });
                    }
                }
                return Ok(None);
            }
            _ => return Ok(None),
        };
        let table = self.relations[&relation].table.clone();
        if let Some(txn) = self.current.as_mut() {
            txn.bytes += op_weight(&op);
            txn.changes.push(Change { table, op, txid: None, commit_time: None, position: Position::pg(0) });
        }
        Ok(None)
    }
}

/// Whether a model column has the type a Relation message names (the
/// catalog's text for it, or the same type once recognized).
fn same_type(c: &Column, type_name: &str) -> bool {
    c.source_type.eq_ignore_ascii_case(type_name) || {
        let ty = typetext::recognize(crate::model::Dialect::Postgres, &typetext::parse(type_name));
        !matches!(ty, crate::model::ColumnType::Other { .. }) && ty == c.ty
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

/// How many parts one transaction may be split into by Relation messages
/// (see `PgSource::pending_relation`).
const MAX_PARTS: u64 = 31;

impl ChangeSource for PgSource {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            if let Some(ev) = self.pending_events.pop_front() {
                return Ok(Some(ev));
            }
            if let Some(ev) = self.pending_relation().await? {
                return Ok(Some(ev));
            }
            loop {
                let limit = self.silence_limit;
                let ev = tokio::time::timeout(limit, self.client.recv()).await.map_err(|_| Error::Endpoint {
                    endpoint: self.display.clone(),
                    message: format!("the replication stream timed out: no change or keepalive for {} s", limit.as_secs()),
                    hint: Some("the source or the network to it is down; barge reconnects (raise --stream-timeout if the server is merely slow)".into()),
                }.retriable_if(true))?;
                let ev = ev.map_err(|e| wire_error(&self.display, "the replication stream failed", e))?;
                let Some(ev) = ev else { return Ok(None) };
                match ev {
                    ReplicationEvent::Begin { xid, commit_time_micros, final_lsn } => {
                        self.current_final_lsn = Some(final_lsn.as_u64());
                        self.current_parts = 0;
                        self.current = Some(Transaction { changes: Vec::new(), position: Position::pg(0), commit_time: pg_time(commit_time_micros), bytes: 0, partial: false });
                        // The xid labels every change of the transaction.
                        self.current_xid = Some(xid);
                    }
                    ReplicationEvent::XLogData { data, wal_end, .. } => {
                        self.server_wal_end = self.server_wal_end.max(wal_end.as_u64());
                        let msg = pgoutput::decode(&data).map_err(|e| Error::Endpoint { endpoint: self.display.clone(), message: e.to_string(), hint: None })?;
                        if let Some(ev) = self.change(msg).await? {
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
        // Every partial result is kept in `self`: the stream loses nothing
        // when dropped, and a Relation message waits in `pending_relation`
        // until its catalog lookups are done.
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

/// Whether the replication slot `slot` exists.
pub async fn slot_exists(ep: &DbEndpoint, slot: &str) -> Result<bool> {
    let c = crate::db::postgres::PgConn::connect(ep, Role::Source).await?;
    let sql = "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1";
    let r = c.client.query_opt(sql, &[&slot]).await.map_err(|e| crate::db::postgres::query_error(&c.display, sql, e))?;
    Ok(r.is_some())
}
