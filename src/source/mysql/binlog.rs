//! MySQL/MariaDB change capture from the row-based binary log.
//!
//! The start position comes from a consistent snapshot: with the tables
//! locked (`FLUSH TABLES WITH READ LOCK`), each reader connection opens
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT`, the binlog file and offset
//! are read, and the lock is released at once.

use mysql_async::prelude::Queryable;

use crate::db::mysql::{statement_error, MyConn};
use crate::endpoint::{DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::Position;

async fn variables(c: &mut MyConn, names: &[&str]) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for n in names {
        let sql = format!("SHOW GLOBAL VARIABLES LIKE '{n}'");
        let row: Option<(String, String)> = c.conn.query_first(sql.as_str()).await.map_err(|e| statement_error(&c.display, &sql, &e))?;
        out.push(row.map(|r| r.1));
    }
    Ok(out)
}

/// Checks the binlog settings and privileges, naming what is missing.
pub async fn check_prerequisites(c: &mut MyConn) -> Result<()> {
    let v = variables(c, &["log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata"]).await?;
    let need = |name: &str, have: &Option<String>, want: &str, how: &str| -> Result<()> {
        if have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(want)) {
            return Ok(());
        }
        Err(Error::Endpoint {
            endpoint: c.display.clone(),
            message: format!("{name} is {}; change data capture needs {name} = {want}", have.as_deref().unwrap_or("not set")),
            hint: Some(how.to_string()),
        })
    };
    need("log_bin", &v[0], "ON", "start the server with log_bin (e.g. log_bin = mysql-bin in my.cnf) and a server_id")?;
    need("binlog_format", &v[1], "ROW", "SET GLOBAL binlog_format = 'ROW' (and in my.cnf), then reconnect the writers")?;
    need("binlog_row_image", &v[2], "FULL", "SET GLOBAL binlog_row_image = 'FULL' (and in my.cnf)")?;
    if v[3].as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("FULL")) {
        tracing::debug!("binlog_row_metadata is not FULL: row events are matched to columns by position");
    }
    let grants: Vec<String> = c.conn.query("SHOW GRANTS").await.map_err(|e| statement_error(&c.display, "SHOW GRANTS", &e))?;
    let all = grants.join("\n").to_ascii_uppercase();
    let global = |p: &str| all.lines().any(|l| l.contains(" ON *.*") && (l.contains(p) || l.contains("ALL PRIVILEGES")));
    if !global("REPLICATION SLAVE") && !global("REPLICATION REPLICA") {
        return Err(Error::Endpoint {
            endpoint: c.display.clone(),
            message: "the user lacks the REPLICATION SLAVE privilege, which reading the binary log needs".into(),
            hint: Some("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the user".into()),
        });
    }
    Ok(())
}

/// The binlog file and offset the server writes next.
pub async fn current_position(c: &mut MyConn) -> Result<Position> {
    let sql = "SHOW MASTER STATUS";
    let row: Option<mysql_async::Row> = c.conn.query_first(sql).await.map_err(|e| {
        statement_error(&c.display, sql, &e).with_hint("the user needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR)")
    })?;
    let row = row.ok_or_else(|| Error::Endpoint {
        endpoint: c.display.clone(),
        message: "SHOW MASTER STATUS returned nothing: the binary log is off".into(),
        hint: Some("start the server with log_bin and binlog_format = ROW".into()),
    })?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(4);
    Ok(Position::MysqlBinlog { file, pos })
}

/// Orders binlog positions: by the file's sequence number (the digits
/// after its last dot, which pass six digits after binlog.999999), then
/// the offset. Files of differently named logs do not compare.
pub fn compare(a: (&str, u64), b: (&str, u64)) -> Option<std::cmp::Ordering> {
    fn split(file: &str) -> (&str, Option<u64>) {
        match file.rsplit_once('.') {
            Some((base, n)) => (base, n.parse().ok()),
            None => (file, None),
        }
    }
    let ((base_a, na), (base_b, nb)) = (split(a.0), split(b.0));
    if base_a != base_b {
        return None;
    }
    match (na, nb) {
        (Some(x), Some(y)) => Some(x.cmp(&y).then(a.1.cmp(&b.1))),
        _ => Some(a.0.cmp(b.0).then(a.1.cmp(&b.1))),
    }
}

/// Checks the settings and returns the position changes start at, with
/// `readers` connections that see the data exactly at that position.
pub async fn prepare(ep: &DbEndpoint, readers: usize) -> Result<(Position, Vec<MyConn>)> {
    let mut c = MyConn::connect(ep, Role::Source).await?;
    check_prerequisites(&mut c).await?;
    if readers == 0 {
        return Ok((current_position(&mut c).await?, Vec::new()));
    }
    let mut conns = Vec::with_capacity(readers);
    for _ in 0..readers {
        conns.push(MyConn::connect(ep, Role::Source).await?);
    }
    if let Err(e) = c.execute("FLUSH TABLES WITH READ LOCK").await {
        tracing::warn!(
            "cannot lock the tables for a consistent snapshot ({e}); changes from before the load's reads will be applied again, which converges because applying is idempotent"
        );
        return Ok((current_position(&mut c).await?, Vec::new()));
    }
    let opened = async {
        for r in conns.iter_mut() {
            r.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
            r.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
        }
        current_position(&mut c).await
    }
    .await;
    c.execute("UNLOCK TABLES").await?;
    Ok((opened?, conns))
}

// ------------------------------------------------------------------ stream

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::{BinlogStream, BinlogStreamRequest};

use crate::sink::BoxFuture;
use crate::source::changes::{ChangeSource, SchemaChange, SchemaEvent, SourceEvent, Transaction};
use crate::cdc::Tables;
use crate::codec::mysqltext;
use crate::model::{Change, ColumnType, Op, QualifiedName, Table, Value};

/// Reads row events from the binary log.
pub struct MysqlSource {
    display: String,
    database: String,
    stream: BinlogStream,
    /// Each captured table's columns as the log has them now; a table
    /// whose layout barge lost track of (a statement it cannot follow)
    /// has none, and its rows are passed over (the table is stopped).
    models: HashMap<QualifiedName, Option<Table>>,
    file: String,
    /// Captured tables by binlog table id (`None`: not captured).
    table_ids: HashMap<u64, Option<QualifiedName>>,
    current: Vec<Change>,
    bytes: usize,
    pending: std::collections::VecDeque<SourceEvent>,
    /// Heartbeats come every second; hearing nothing for this long means
    /// the server or the network to it is gone.
    silence_limit: std::time::Duration,
    /// Tables copied at a position: their rows and DDL up to it are in
    /// the copy (and their model is the one as of the copy).
    skip: HashMap<QualifiedName, Position>,
}

fn binlog_error(display: &str, e: impl std::fmt::Display + crate::util::retry::Retriable) -> Error {
    let text = e.to_string();
    let hint = if text.contains("REPLICATION SLAVE") || text.contains("Access denied") {
        Some("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the user".to_string())
    } else if text.contains("Could not find first log file") || text.contains("could not find") {
        Some("the binlog file is gone (purged by expire_logs_days / binlog_expire_logs_seconds); run the full load again".to_string())
    } else {
        None
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("binary log stream: {text}"), hint }.retriable_if(e.is_retriable())
}

impl MysqlSource {
    pub async fn open(ep: &DbEndpoint, file: &str, pos: u64, tables: Arc<Tables>, skip: HashMap<QualifiedName, Position>, silence_limit: std::time::Duration) -> Result<MysqlSource> {
        let connect = async {
            let mut c = MyConn::connect(ep, Role::Source).await?;
            check_prerequisites(&mut c).await?;
            // Idle heartbeats every second, so an idle stream still reports in.
            c.execute("SET @master_heartbeat_period = 1000000000").await?;
            let database = c.database.clone();
            let display = c.display.clone();
            let server_id = 1_000_000 + (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as u32;
            let request = BinlogStreamRequest::new(server_id).with_filename(file.as_bytes()).with_pos(pos);
            let stream = c.conn.get_binlog_stream(request).await.map_err(|e| binlog_error(&display, e))?;
            Ok::<_, Error>((database, display, stream))
        };
        let (database, display, stream) = tokio::time::timeout(silence_limit, connect).await.map_err(|_| Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("the binary log stream did not start within {} s (connection timed out)", silence_limit.as_secs()),
            hint: Some("check that the host answers on its port (a firewall that drops packets looks like this)".into()),
        }.retriable_if(true))??;
        Ok(MysqlSource {
            display,
            database,
            stream,
            models: tables.iter().map(|(k, info)| (k.clone(), Some(info.source.clone()))).collect(),
            file: file.to_string(),
            table_ids: HashMap::new(),
            current: Vec::new(),
            bytes: 0,
            pending: Default::default(),
            silence_limit,
            skip,
        })
    }

    fn lookup(&self, db: &str, name: &str) -> Option<QualifiedName> {
        if !self.database.is_empty() && db != self.database {
            return None;
        }
        self.models.keys().find(|k| k.name == name).cloned()
    }

    /// Statements outside row events: TRUNCATE, and DDL on a captured
    /// table or creating one.
    fn statement(&mut self, schema: &str, sql: &str, position: Position) {
        let known: HashMap<QualifiedName, Table> = self.models.iter().filter_map(|(k, m)| m.clone().map(|t| (k.clone(), t))).collect();
        // Tables barge lost track of still stop on anything that names them.
        let mut all = known.clone();
        for k in self.models.keys().filter(|k| !known.contains_key(*k)) {
            all.insert(k.clone(), Table::new(k.clone()));
        }
        let session_db = if schema.is_empty() { self.database.clone() } else { schema.to_string() };
        let copied = |t: &QualifiedName| self.skip.get(t).is_some_and(|cp| position <= *cp);
        let effects: Vec<_> = super::binlog_ddl::interpret(sql, &self.database, &session_db, &all)
            .into_iter()
            .filter(|e| match e {
                super::binlog_ddl::Effect::Truncate(t) | super::binlog_ddl::Effect::Unsupported { table: t, .. } | super::binlog_ddl::Effect::Ignored { table: t, .. } => !copied(t),
                super::binlog_ddl::Effect::Altered { table, .. } | super::binlog_ddl::Effect::Created(table) => !copied(&table.name),
            })
            .collect();
        for effect in effects {
            let statement = Some(crate::db::excerpt(sql));
            let schema_event = |table: QualifiedName, change: SchemaChange| SourceEvent::Schema(Box::new(SchemaEvent { table, change, position: Some(position.clone()), commit_lsn: None }));
            match effect {
                super::binlog_ddl::Effect::Truncate(table) => {
                    let change = Change { table, op: Op::Truncate, txid: None, commit_time: None, position: position.clone() };
                    self.pending.push_back(SourceEvent::Transaction(Transaction { changes: vec![change], position: position.clone(), commit_time: Some(chrono::Utc::now()), bytes: 8, partial: false }));
                }
                super::binlog_ddl::Effect::Altered { table, renames } => {
                    if !known.contains_key(&table.name) {
                        continue;
                    }
                    self.models.insert(table.name.clone(), Some(table.clone()));
                    self.pending.push_back(schema_event(table.name.clone(), SchemaChange::Columns { table, renames, statement }));
                }
                super::binlog_ddl::Effect::Created(table) => {
                    self.models.insert(table.name.clone(), Some(table.clone()));
                    self.pending.push_back(schema_event(table.name.clone(), SchemaChange::Created { table, statement: crate::db::excerpt(sql) }));
                }
                super::binlog_ddl::Effect::Unsupported { table, message } => {
                    self.models.insert(table.clone(), None);
                    self.pending.push_back(schema_event(table, SchemaChange::Unsupported { message }));
                }
                super::binlog_ddl::Effect::Ignored { table, what } => {
                    tracing::info!("{table}: {what} at the source ({}); nothing to apply to the target's rows", crate::db::excerpt(sql));
                }
            }
        }
    }

    fn rows(&mut self, ev: &RowsEventData<'_>, tme: &mysql_async::binlog::events::TableMapEvent<'_>, table: &QualifiedName, at: &Position) -> Result<()> {
        if self.skip.get(table).is_some_and(|cp| at <= cp) {
            return Ok(());
        }
        let Some(Some(model)) = self.models.get(table) else { return Ok(()) };
        let cols = &model.columns;
        let key = crate::source::key_indexes(model);
        if tme.columns_count() as usize != cols.len() {
            let message = format!("the binary log has {} columns for it, barge knows {}: its definition changed in a way barge did not see", tme.columns_count(), cols.len());
            self.models.insert(table.clone(), None);
            self.pending.push_back(SourceEvent::Schema(Box::new(SchemaEvent { table: table.clone(), change: SchemaChange::Unsupported { message }, position: None, commit_lsn: None })));
            return Ok(());
        }
        if let RowsEventData::PartialUpdateRowsEvent(_) = ev {
            return Err(Error::Endpoint {
                endpoint: self.display.clone(),
                message: format!("{table}: partial JSON updates are in the binary log"),
                hint: Some("SET GLOBAL binlog_row_value_options = '' so updates carry whole JSON values".into()),
            });
        }
        let convert = |row: Option<super::binlog_rows::Image<'_>>| -> Result<Option<Vec<Value>>> {
            let Some(row) = row else { return Ok(None) };
            let mut out = Vec::with_capacity(cols.len());
            for (i, col) in cols.iter().enumerate() {
                let v = match row.get(i) {
                    None => Value::Null,
                    Some(b) => binlog_value(b, &col.ty).map_err(|e| Error::Table {
                        table: table.to_string(),
                        row: None,
                        message: format!("column {}: {e}", col.name),
                        hint: Some("report this value; barge could not read what the binary log holds".into()),
                    })?,
                };
                out.push(v);
            }
            Ok(Some(out))
        };
        let layout = super::binlog_rows::Layout::new(tme).map_err(|e| binlog_error(&self.display, e))?;
        let images = super::binlog_rows::rows(ev, &layout).map_err(|e| binlog_error(&self.display, e))?;
        let mut changes = Vec::with_capacity(images.len());
        for (before, after) in images {
            let (before, after) = (convert(before)?, convert(after)?);
            let op = match (ev, before, after) {
                (RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_), _, Some(row)) => Op::Insert { row },
                (RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_), Some(old), _) => Op::Delete { key: if key.is_empty() { old } else { key.iter().map(|&i| old[i].clone()).collect() } },
                (RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_), before, Some(after)) => Op::Update { before, after: after.into_iter().map(Some).collect() },
                _ => continue,
            };
            changes.push(Change { table: table.clone(), op, txid: None, commit_time: None, position: Position::MysqlBinlog { file: String::new(), pos: 0 } });
        }
        self.bytes += 64 * changes.len();
        self.current.extend(changes);
        Ok(())
    }

    fn commit(&mut self, pos: u64, timestamp: u32) {
        let position = Position::MysqlBinlog { file: self.file.clone(), pos };
        let commit_time = chrono::DateTime::from_timestamp(timestamp as i64, 0);
        let mut changes = std::mem::take(&mut self.current);
        let bytes = std::mem::take(&mut self.bytes);
        for c in changes.iter_mut() {
            c.position = position.clone();
            c.commit_time = commit_time;
        }
        if changes.is_empty() {
            self.pending.push_back(SourceEvent::Idle { position, lag_bytes: None });
        } else {
            self.pending.push_back(SourceEvent::Transaction(Transaction { changes, position, commit_time, bytes, partial: false }));
        }
    }

    async fn step(&mut self) -> Result<()> {
        let limit = self.silence_limit;
        let next = tokio::time::timeout(limit, self.stream.next()).await.map_err(|_| Error::Endpoint {
            endpoint: self.display.clone(),
            message: format!("the binary log stream timed out: no event or heartbeat for {} s", limit.as_secs()),
            hint: Some("the source or the network to it is down; barge reconnects (raise --stream-timeout if the server is merely slow)".into()),
        }.retriable_if(true))?;
        // The server never ends a binlog dump by itself: the stream ends
        // when the server shuts down or the connection is cut.
        let Some(ev) = next else {
            return Err(Error::Endpoint {
                endpoint: self.display.clone(),
                message: "the binary log stream was closed by the server (connection lost, or the server shut down)".into(),
                hint: None,
            }.retriable_if(true));
        };
        let ev = ev.map_err(|e| binlog_error(&self.display, e))?;
        let header = ev.header();
        let end = header.log_pos() as u64;
        let data = ev.read_data().map_err(|e| binlog_error(&self.display, e))?;
        match data {
            Some(EventData::RotateEvent(r)) => {
                // The server's first rotate event is artificial (position
                // 0): it names the file we asked for, and arrives before the
                // format event, so the name can still carry the 4 checksum
                // bytes, which may look like letters. Keep the name we have.
                let name = r.name();
                let artificial = end == 0;
                if !(artificial && !self.file.is_empty() && name.starts_with(self.file.as_str())) {
                    let clean: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
                    if !clean.is_empty() {
                        self.file = clean;
                    }
                }
            }
            Some(EventData::TableMapEvent(t)) => {
                let name = self.lookup(&t.database_name(), &t.table_name());
                self.table_ids.insert(t.table_id(), name);
            }
            Some(EventData::RowsEvent(rows)) => {
                let Some(Some(table)) = self.table_ids.get(&rows.table_id()).cloned() else { return Ok(()) };
                let tme = self.stream.get_tme(rows.table_id()).cloned();
                if let Some(tme) = tme {
                    let at = Position::MysqlBinlog { file: self.file.clone(), pos: end };
                    self.rows(&rows, &tme, &table, &at)?;
                }
            }
            Some(EventData::XidEvent(_)) => self.commit(end, header.timestamp()),
            Some(EventData::QueryEvent(q)) => {
                let sql = q.query();
                let first = sql.split_whitespace().next().unwrap_or("").trim_end_matches(';').to_ascii_uppercase();
                match first.as_str() {
                    // A transaction's bounds (a MariaDB GTID event reaches a
                    // client that did not ask for them as BEGIN).
                    "BEGIN" | "XA" => {}
                    "COMMIT" => self.commit(end, header.timestamp()),
                    // MariaDB sends the events a plain client does not know
                    // (annotations, GTIDs) as comment-only queries, inside
                    // transactions: they end nothing.
                    "" | "SAVEPOINT" | "RELEASE" | "ROLLBACK" => {}
                    _ if first.starts_with('#') || first.starts_with("/*") && sql.trim_end().ends_with("*/") => {}
                    _ => {
                        // DDL commits what came before it.
                        let position = Position::MysqlBinlog { file: self.file.clone(), pos: end };
                        if !self.current.is_empty() {
                            self.commit(end, header.timestamp());
                        }
                        self.statement(&q.schema(), &sql, position);
                    }
                }
            }
            Some(EventData::HeartbeatEvent) if self.current.is_empty() => {
                self.pending.push_back(SourceEvent::Idle { position: Position::MysqlBinlog { file: self.file.clone(), pos: end.max(4) }, lag_bytes: Some(0) });
            }
            _ => {}
        }
        Ok(())
    }
}

impl ChangeSource for MysqlSource {
    fn next<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<SourceEvent>>> {
        Box::pin(async move {
            loop {
                if let Some(ev) = self.pending.pop_front() {
                    return Ok(Some(ev));
                }
                self.step().await?;
            }
        })
    }

    fn next_is_cancel_safe(&self) -> bool {
        // Every partial result is kept in `self`; the only wait is on the
        // stream, which loses nothing when dropped.
        true
    }

    fn acknowledge<'a>(&'a mut self, _position: &'a Position) -> BoxFuture<'a, Result<()>> {
        // The server keeps its binary log by its own expiry settings.
        Box::pin(async { Ok(()) })
    }
}

/// A binlog value → a model value of column type `ty`, through the same
/// text decoder the full load uses, so both paths agree on every type.
pub fn binlog_value(v: &BinlogValue<'_>, ty: &ColumnType) -> std::result::Result<Value, String> {
    use mysql_async::Value as M;
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let json = serde_json::Value::try_from(j.clone()).map_err(|e| format!("unreadable JSON: {e}"))?;
            return Ok(Value::Json(json.to_string()));
        }
        BinlogValue::JsonDiff(_) => return Err("a partial JSON update (binlog_row_value_options = PARTIAL_JSON)".into()),
    };
    // Integers go straight to the model's one form (Int, or UInt past
    // i64): no detour through text, which costs a string per value. A
    // value out of the column's range takes the text path and its error.
    if let ColumnType::Int { bits, unsigned } = ty {
        let n: Option<i128> = match v {
            // An unsigned column's value comes as the signed one of its width.
            M::Int(i) if *unsigned && *i < 0 => Some(((*i as u64) & if *bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }) as i128),
            M::Int(i) => Some(*i as i128),
            M::UInt(u) => Some(*u as i128),
            _ => None,
        };
        let width = u32::from((*bits).clamp(8, 64));
        let fits = |n: i128| if *unsigned { n >= 0 && n < (1i128 << width) } else { n >= -(1i128 << (width - 1)) && n < (1i128 << (width - 1)) };
        if let Some(n) = n.filter(|n| fits(*n)) {
            return Ok(if n > i64::MAX as i128 { Value::UInt(n as u64) } else { Value::Int(n as i64) });
        }
    }
    let text: Vec<u8> = match (v, ty) {
        (M::NULL, _) => return Ok(Value::Null),
        (M::Int(i), ColumnType::Enum { values, .. }) => {
            return Ok(match usize::try_from(*i).ok().and_then(|i| i.checked_sub(1)).and_then(|i| values.get(i)) {
                Some(s) => Value::Enum(s.clone()),
                None => Value::Enum(String::new()),
            });
        }
        (M::Int(i), ColumnType::Int { bits, unsigned: true }) if *i < 0 => {
            let mask = if *bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
            ((*i as u64) & mask).to_string().into_bytes()
        }
        (M::Int(i), _) => i.to_string().into_bytes(),
        (M::UInt(u), _) => u.to_string().into_bytes(),
        (M::Float(f), _) => f.to_string().into_bytes(),
        (M::Double(f), _) => f.to_string().into_bytes(),
        (M::Date(y, m, d, h, mi, s, us), ColumnType::Date) => {
            let _ = (h, mi, s, us);
            format!("{y:04}-{m:02}-{d:02}").into_bytes()
        }
        (M::Date(y, m, d, h, mi, s, us), _) => format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}").into_bytes(),
        (M::Time(neg, days, h, m, s, us), _) => format!("{}{}:{m:02}:{s:02}.{us:06}", if *neg { "-" } else { "" }, *days as u64 * 24 + *h as u64).into_bytes(),
        (M::Bytes(b), ColumnType::Set { values }) => {
            // A little-endian bitmask of the members.
            let mut members = Vec::new();
            for (i, name) in values.iter().enumerate() {
                if b.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0) {
                    members.push(name.as_str());
                }
            }
            members.join(",").into_bytes()
        }
        (M::Bytes(b), ColumnType::Timestamp { .. }) if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') => {
            // TIMESTAMP: seconds since the epoch; 0 is MySQL's zero date.
            let s = String::from_utf8_lossy(b);
            let (secs, frac) = s.split_once('.').unwrap_or((&s, "0"));
            let secs: i64 = secs.parse().map_err(|_| format!("bad TIMESTAMP {s}"))?;
            if secs == 0 {
                b"0000-00-00 00:00:00".to_vec()
            } else {
                let t = chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| format!("bad TIMESTAMP {s}"))?;
                format!("{}.{frac}", t.format("%Y-%m-%d %H:%M:%S")).into_bytes()
            }
        }
        (M::Bytes(b), _) => b.clone(),
    };
    mysqltext::decode_owned(text, ty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::Value as M;

    /// The integer shortcut gives what the text path gives (value or error).
    #[test]
    fn integers_decode_as_their_text_would() {
        let cases = [
            (M::Int(-1), 8, true),
            (M::Int(-1), 64, true),
            (M::Int(-128), 8, false),
            (M::Int(127), 8, false),
            (M::Int(1000), 8, false),
            (M::Int(-8_388_608), 24, false),
            (M::Int(i64::MIN), 64, false),
            (M::Int(i64::MAX), 64, false),
            (M::UInt(u64::MAX), 64, true),
            (M::UInt(u64::MAX), 32, true),
            (M::Int(70_000), 16, true),
        ];
        for (v, bits, unsigned) in cases {
            let ty = ColumnType::Int { bits, unsigned };
            let text = match v {
                M::Int(i) if unsigned && i < 0 => ((i as u64) & if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }).to_string(),
                M::Int(i) => i.to_string(),
                M::UInt(u) => u.to_string(),
                _ => unreachable!(),
            };
            let want = mysqltext::decode_owned(text.into_bytes(), &ty);
            let got = binlog_value(&BinlogValue::Value(v.clone()), &ty);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{v:?} as {ty:?}");
        }
    }
}
