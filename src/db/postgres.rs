//! PostgreSQL through tokio-postgres: connecting (TLS by `sslmode`, libpq
//! semantics), running DDL, and reading the catalog into the schema model.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

use super::tls::{self, Verify};
use crate::endpoint::{password_for, DbEndpoint, Role};
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::reader;
use crate::schema::typetext;

pub struct PgConn {
    pub client: Client,
    pub display: String,
    /// Schemas to read; empty means every user schema.
    pub schemas: Vec<String>,
    /// The server's major version (e.g. 15).
    pub server_major: u32,
}

/// Builds the connection config from the endpoint (without TLS choice).
pub fn config(ep: &DbEndpoint, role: Role) -> Result<Config> {
    let mut cfg = Config::new();
    let host = host_of(ep);
    if host.starts_with('/') {
        cfg.host_path(&host);
    } else {
        cfg.host(&host);
    }
    cfg.port(ep.port.unwrap_or(5432));
    let user = user_of(ep);
    cfg.user(&user);
    cfg.dbname(ep.database.clone().unwrap_or_else(|| user.clone()));
    if let Some(p) = password_for(ep, role, "PGPASSWORD")? {
        cfg.password(p.expose());
    }
    cfg.application_name("barge");
    cfg.connect_timeout(ep.connect_timeout());
    // A peer that vanishes (host down, network cut) is noticed in about a
    // minute instead of the kernel's two hours.
    cfg.keepalives(true);
    cfg.keepalives_idle(KEEPALIVE_IDLE);
    cfg.keepalives_interval(KEEPALIVE_INTERVAL);
    cfg.keepalives_retries(KEEPALIVE_RETRIES);
    Ok(cfg)
}

/// TCP keepalives on every connection: first probe after 30 s of silence,
/// then every 10 s, given up after 3 unanswered probes.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_RETRIES: u32 = 3;

/// The host, or the Unix socket directory: a `host=/path` option (as libpq
/// allows) or a host that is a path selects a socket.
pub fn host_of(ep: &DbEndpoint) -> String {
    match ep.options.get("host") {
        Some(h) if h.starts_with('/') => h.clone(),
        _ => ep.host.clone(),
    }
}

/// The user as libpq picks it: the URL's, else `$PGUSER`, else `$USER`.
pub fn user_of(ep: &DbEndpoint) -> String {
    ep.user
        .clone()
        .or_else(|| std::env::var("PGUSER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into())
}

/// The TLS level an `sslmode` asks for; libpq's default is `prefer`.
fn tls_mode(ep: &DbEndpoint) -> (SslMode, Option<Verify>) {
    match ep.options.get("sslmode").map(String::as_str).unwrap_or("prefer") {
        "disable" => (SslMode::Disable, None),
        "allow" | "prefer" => (SslMode::Prefer, Some(Verify::None)),
        "require" => (SslMode::Require, Some(Verify::None)),
        "verify-ca" => (SslMode::Require, Some(Verify::Chain)),
        _ => (SslMode::Require, Some(Verify::Full)),
    }
}

/// Connects and returns the client; the connection task runs on tokio.
pub async fn connect_client(ep: &DbEndpoint, role: Role) -> Result<Client> {
    let mut cfg = config(ep, role)?;
    let (mode, verify) = tls_mode(ep);
    cfg.ssl_mode(mode);
    let endpoint_err = |e: tokio_postgres::Error| connect_error(ep, role, e);
    let is_socket = ep.options.get("host").is_some_and(|h| h.starts_with('/')) || ep.host.starts_with('/');
    // tokio-postgres's own connect_timeout covers the TCP connect only; a
    // server (or a black hole) that accepts and never answers would hang
    // the TLS or startup exchange forever, so the whole exchange is timed.
    let timeout = ep.connect_timeout();
    let timed_out = || connect_timeout_error(ep, timeout);
    let client = match verify {
        Some(v) if !is_socket => {
            let ca = ep.options.get("sslrootcert").map(Path::new);
            let tls_cfg = tls::client_config(v, ca)?;
            let connecting = cfg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls_cfg));
            let (client, conn) = tokio::time::timeout(timeout, connecting).await.map_err(|_| timed_out())?.map_err(endpoint_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        _ => {
            let (client, conn) = tokio::time::timeout(timeout, cfg.connect(NoTls)).await.map_err(|_| timed_out())?.map_err(endpoint_err)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
    };
    Ok(client)
}

/// The server did not finish the connection (TCP, TLS and login) in time.
pub fn connect_timeout_error(ep: &DbEndpoint, timeout: Duration) -> Error {
    let addr = format!("{}:{}", host_of(ep), ep.port.unwrap_or(5432));
    Error::Endpoint {
        endpoint: ep.display.clone(),
        message: format!("cannot connect: no answer from {addr} within {} s", timeout.as_secs_f64()),
        hint: Some(format!(
            "is PostgreSQL running and reachable on {addr}? (check the host, the port and any firewall); \
             if the server is only slow to answer, raise ?connect_timeout=SECONDS in the URL"
        )),
    }.retriable_if(true)
}

/// Where a password can come from, for the side `role` is on.
fn password_sources(role: Role) -> String {
    format!("{} (or PGPASSWORD), or ?password_file=PATH in the URL; never the URL itself", role.password_var())
}

fn connect_error(ep: &DbEndpoint, role: Role, e: tokio_postgres::Error) -> Error {
    let (message, hint) = describe(&e);
    let is_auth = e.as_db_error().is_some_and(|db| matches!(db.code().code(), "28P01" | "28000"));
    let hint = if is_auth { None } else { hint };
    let hint = hint.unwrap_or_else(|| {
        let text = format!("{e:?}").to_ascii_lowercase();
        if is_auth {
            format!("check the user name (`{}`) and the password given in {}", user_of(ep), password_sources(role))
        } else if text.contains("password missing") {
            format!("the server asks for a password and none was given: set {}", password_sources(role))
        } else if text.contains("connection refused") || text.contains("timed out") || text.contains("timeout") {
            format!("is PostgreSQL running and listening on {}:{}?", ep.host, ep.port.unwrap_or(5432))
        } else if text.contains("certificate") || text.contains("tls") || text.contains("ssl") {
            format!(
                "TLS failed under sslmode={}; check sslrootcert=PATH (the CA that signed the server certificate) and that the host name matches it",
                ep.options.get("sslmode").map(String::as_str).unwrap_or("prefer")
            )
        } else {
            "check the host, port and database in the URL".into()
        }
    });
    Error::Endpoint { endpoint: ep.display.clone(), message: format!("cannot connect: {message}"), hint: Some(hint) }.retriable_if(crate::util::retry::Retriable::is_retriable(&e))
}

/// The server's words and a hint for what to do, for any client error.
pub fn describe(e: &tokio_postgres::Error) -> (String, Option<String>) {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let hint = match code {
            "28P01" | "28000" => Some("check the user name and BARGE_SOURCE_PASSWORD / BARGE_TARGET_PASSWORD (or PGPASSWORD, or ?password_file=PATH)".to_string()),
            "3D000" => Some("create the database first, or fix the database name in the URL".to_string()),
            "42P01" => Some("the table does not exist; check --tables and the schema".to_string()),
            "42501" => Some("the user lacks a privilege; grant it or connect as another user".to_string()),
            "53300" => Some("too many connections; lower --parallel or raise max_connections".to_string()),
            _ => db.hint().map(str::to_string),
        };
        let mut msg = format!("{} ({code})", db.message());
        if let Some(d) = db.detail() {
            msg.push_str(": ");
            msg.push_str(d);
        }
        // "COPY t, line 5, column c: ..." names the row and column.
        if let Some(w) = db.where_() {
            msg.push_str(" [");
            msg.push_str(w);
            msg.push(']');
        }
        return (msg, hint);
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    (msg, None)
}

/// The server's major version (15 for 15.4), which decides the catalog
/// queries `introspect` may use.
pub async fn server_major(client: &Client, display: &str) -> Result<u32> {
    let row = client.query_one("SHOW server_version_num", &[]).await.map_err(|e| query_error(display, "SHOW server_version_num", e))?;
    let v: String = row.get(0);
    Ok(v.parse::<u32>().unwrap_or(0) / 10000)
}

impl PgConn {
    pub async fn connect(ep: &DbEndpoint, role: Role) -> Result<PgConn> {
        let client = connect_client(ep, role).await?;
        let schemas = ep
            .options
            .get("schema")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        let server_major = server_major(&client, &ep.display).await?;
        Ok(PgConn { client, display: ep.display.clone(), schemas, server_major })
    }

    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.map_err(|e| query_error(&self.display, sql, e))
    }

    pub async fn introspect(&mut self) -> Result<Schema> {
        introspect(&self.client, &self.display, &self.schemas, self.server_major).await
    }
}

pub fn query_error(display: &str, sql: &str, e: tokio_postgres::Error) -> Error {
    let (message, hint) = describe(&e);
    Error::Endpoint { endpoint: display.to_string(), message: format!("{message}\n  statement: {}", super::excerpt(sql)), hint }.retriable_if(crate::util::retry::Retriable::is_retriable(&e))
}

const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'barge') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

fn schema_filter(schemas: &[String]) -> String {
    if schemas.is_empty() {
        USER_SCHEMAS.to_string()
    } else {
        let list: Vec<String> = schemas.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect();
        format!("n.nspname IN ({})", list.join(", "))
    }
}

/// Reads the catalog with a handful of set-based queries (fast for
/// thousands of tables) into the model.
///
/// What a dump of the same database would say, as the DDL reader models it:
/// - Declarative partitions are tables with `partition_of` (parent and
///   bound) and every column; their parent carries `options.partitioning`.
///   Keys, indexes, checks, foreign keys and triggers a partition only has
///   because its parent has them are left to the parent.
/// - An inheritance child lists its parents in `inherits` and only the
///   columns and checks it declares itself.
/// - A column default `nextval('s')` on a sequence the column owns is a
///   serial identity; an identity's start is the value the source would
///   hand out next (pg_dump's `setval`, folded in as the DDL reader does).
///   Every other sequence is listed with its `last_value`, owned or not.
/// - A column of a domain type has the domain's base type, its name as
///   `source_type`, and the domain's NOT NULL, default and checks (VALUE
///   replaced by the column), as the DDL reader resolves a domain.
pub async fn introspect(client: &Client, display: &str, schemas: &[String], server_major: u32) -> Result<Schema> {
    let filter = schema_filter(schemas);
    let q = |sql: String| async move {
        client.query(sql.as_str(), &[]).await.map_err(|e| query_error(display, &sql, e))
    };
    let mut schema = Schema { dialect: Some(Dialect::Postgres), ..Default::default() };
    let not_extension = |alias: &str| format!("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {alias}.oid AND d.deptype = 'e')");

    // Enum types.
    let rows = q(format!(
        "SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid \
         WHERE {filter} AND {} GROUP BY n.nspname, t.typname ORDER BY 1, 2",
        not_extension("t")
    ))
    .await?;
    for r in rows {
        let (ns, name, values): (String, String, Vec<String>) = (r.get(0), r.get(1), r.get(2));
        schema.enums.push(EnumType { name: qualified(&ns, &name), values, origin: Origin::default() });
    }

    // Domains, with their checks.
    let rows = q(format!(
        "SELECT t.oid, n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, \
                ARRAY(SELECT pg_get_constraintdef(con.oid, true) FROM pg_constraint con WHERE con.contypid = t.oid AND con.contype = 'c' ORDER BY con.conname) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'd' AND {filter} AND {} ORDER BY 2, 3",
        not_extension("t")
    ))
    .await?;
    let mut domain_by_oid: HashMap<u32, usize> = HashMap::new();
    for r in rows {
        let base_text: String = r.get(3);
        let default: Option<String> = r.get(5);
        let checks: Vec<String> = r.get(6);
        domain_by_oid.insert(r.get(0), schema.domains.len());
        schema.domains.push(Domain {
            name: qualified(&r.get::<_, String>(1), &r.get::<_, String>(2)),
            base: typetext::recognize(Dialect::Postgres, &typetext::parse(&base_text)),
            source_type: base_text,
            not_null: r.get(4),
            default: default.map(|d| reader::parse_default(&d, Dialect::Postgres)),
            checks: checks.iter().map(|c| SqlText::new(check_body(c), Dialect::Postgres)).collect(),
            origin: Origin::default(),
        });
    }

    // Tables, partitions among them.
    let (partition_cols, partkey) = if server_major >= 10 {
        ("c.relispartition, pg_get_expr(c.relpartbound, c.oid)", "CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END")
    } else {
        ("false, NULL::text", "NULL::text")
    };
    let rows = q(format!(
        "SELECT c.oid, n.nspname, c.relname, obj_description(c.oid, 'pg_class'), {partition_cols}, {partkey} \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {filter} AND {} \
         ORDER BY n.nspname, c.relname",
        not_extension("c")
    ))
    .await?;
    let mut by_oid: HashMap<u32, usize> = HashMap::new();
    let mut partitions: HashMap<u32, String> = HashMap::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let (ns, name): (String, String) = (r.get(1), r.get(2));
        let mut t = Table::new(qualified(&ns, &name));
        t.comment = r.get(3);
        if r.get::<_, bool>(4) {
            partitions.insert(oid, r.get::<_, Option<String>>(5).unwrap_or_else(|| "DEFAULT".into()));
        }
        t.options.partitioning = r.get(6);
        by_oid.insert(oid, schema.tables.len());
        schema.tables.push(t);
    }
    if !schema.tables.is_empty() {
        // Parents: a partition's one parent, an inheritance child's list.
        let rows = q(format!(
            "SELECT i.inhrelid, pn.nspname, pc.relname FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND {filter} ORDER BY i.inhrelid, i.inhseqno"
        ))
        .await?;
        for r in rows {
            let oid: u32 = r.get(0);
            let Some(&ti) = by_oid.get(&oid) else { continue };
            let parent = qualified(&r.get::<_, String>(1), &r.get::<_, String>(2));
            match partitions.get(&oid) {
                Some(bound) => schema.tables[ti].partition_of = Some(PartitionOf { parent, bound: SqlText::new(bound.clone(), Dialect::Postgres) }),
                None => schema.tables[ti].inherits.push(parent),
            }
        }
        let sequences = read_sequences(client, display, &filter, server_major).await?;
        let mut absorbed: Vec<u32> = Vec::new();
        read_columns(client, display, &filter, &mut schema, &by_oid, &partitions, &sequences, &domain_by_oid, &mut absorbed).await?;
        read_constraints(client, display, &filter, &mut schema, &by_oid, server_major).await?;
        read_indexes(client, display, &filter, &mut schema, &by_oid).await?;
        for s in sequences.into_iter().filter(|s| !absorbed.contains(&s.oid)) {
            let mut seq = s.model;
            if let Some((table_oid, col)) = s.owner {
                if let Some(&ti) = by_oid.get(&table_oid) {
                    seq.owned_by = Some((schema.tables[ti].name.clone(), col));
                }
            }
            schema.sequences.push(seq);
        }
    } else {
        schema.sequences = read_sequences(client, display, &filter, server_major).await?.into_iter().map(|s| s.model).collect();
    }

    // Views and materialized views, in creation order (which is an order
    // their dependencies allow, unless a view was replaced later).
    let rows = q(format!(
        "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid, true), c.relkind = 'm', obj_description(c.oid, 'pg_class') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') AND {filter} AND {} ORDER BY c.oid",
        not_extension("c")
    ))
    .await?;
    for r in rows {
        let def: String = r.get(2);
        schema.views.push(View {
            name: qualified(&r.get::<_, String>(0), &r.get::<_, String>(1)),
            columns: Vec::new(),
            query: SqlText::new(def.trim().trim_end_matches(';').to_string(), Dialect::Postgres),
            materialized: r.get(3),
            comment: r.get(4),
            origin: Origin::default(),
        });
    }

    // Functions and procedures, then aggregates (built on functions):
    // kept with their source.
    let kind_col = if server_major >= 11 { "p.prokind::text" } else { "CASE WHEN p.proisagg THEN 'a' ELSE 'f' END" };
    let rows = q(format!(
        "SELECT n.nspname, p.proname, {kind_col}, CASE WHEN {kind_col} IN ('f', 'p') THEN pg_get_functiondef(p.oid) END, \
                pg_get_function_identity_arguments(p.oid), \
                (SELECT format('CREATE AGGREGATE %s(%s) (SFUNC = %s, STYPE = %s%s%s)', \
                        p.oid::regproc, pg_get_function_identity_arguments(p.oid), a.aggtransfn::regproc, format_type(a.aggtranstype, NULL), \
                        CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END, \
                        CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' || quote_literal(a.agginitval) ELSE '' END) \
                   FROM pg_aggregate a WHERE a.aggfnoid = p.oid AND a.aggkind = 'n') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE {filter} AND {kind_col} IN ('f', 'p', 'a') AND {} \
         ORDER BY {kind_col} = 'a', 1, 2, p.oid",
        not_extension("p")
    ))
    .await?;
    for r in rows {
        let kind: String = r.get(2);
        let (ns, name): (String, String) = (r.get(0), r.get(1));
        let source = match kind.as_str() {
            "a" => r.get::<_, Option<String>>(5).unwrap_or_else(|| format!("-- ordered-set aggregate {ns}.{name}({}): recreate it by hand", r.get::<_, String>(4))),
            _ => r.get::<_, Option<String>>(3).unwrap_or_default(),
        };
        schema.routines.push(Routine {
            kind: if kind == "p" { RoutineKind::Procedure } else { RoutineKind::Function },
            name: qualified(&ns, &name),
            table: None,
            source,
            origin: Origin::default(),
        });
    }
    // Triggers; a partition's copy of its parent's trigger belongs to the parent.
    let cloned = if server_major >= 13 { "AND t.tgparentid = 0" } else { "" };
    let rows = q(format!(
        "SELECT n.nspname, t.tgname, pg_get_triggerdef(t.oid, true), c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal {cloned} AND {filter} ORDER BY 1, 4, 2"
    ))
    .await?;
    for r in rows {
        schema.routines.push(Routine {
            kind: RoutineKind::Trigger,
            name: qualified(&r.get::<_, String>(0), &r.get::<_, String>(1)),
            table: Some(qualified(&r.get::<_, String>(0), &r.get::<_, String>(3))),
            source: r.get(2),
            origin: Origin::default(),
        });
    }
    // Rules (a view's own `_RETURN` rule is the view, and pg_rules leaves
    // it out): they change what a statement does, so they are moved or
    // named, never left behind unseen.
    let rows = q(format!(
        "SELECT r.schemaname::text, r.rulename::text, r.definition, r.tablename::text FROM pg_rules r JOIN pg_namespace n ON n.nspname = r.schemaname WHERE {filter} ORDER BY 1, 4, 2"
    ))
    .await?;
    for r in rows {
        schema.routines.push(Routine {
            kind: RoutineKind::Rule,
            name: qualified(&r.get::<_, String>(0), &r.get::<_, String>(1)),
            table: Some(qualified(&r.get::<_, String>(0), &r.get::<_, String>(3))),
            source: r.get(2),
            origin: Origin::default(),
        });
    }
    for t in &schema.tables {
        if let Some(s) = &t.name.schema {
            if !schema.namespaces.contains(s) {
                schema.namespaces.push(s.clone());
            }
        }
    }
    Ok(schema)
}

/// `CHECK ((VALUE > 0))` → `(VALUE > 0)`; `NOT VALID` dropped.
fn check_body(def: &str) -> String {
    let expr = def.trim().strip_prefix("CHECK").unwrap_or(def).trim();
    expr.strip_suffix("NOT VALID").unwrap_or(expr).trim().to_string()
}

/// A domain check said of one column: the keyword VALUE (outside string
/// literals and quoted names) becomes the column's quoted name.
pub fn domain_check_for_column(check: &str, column: &str) -> String {
    let quoted = format!("\"{}\"", column.replace('"', "\"\""));
    let mut out = String::with_capacity(check.len());
    let mut chars = check.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.eq_ignore_ascii_case("value") {
            out.push_str(&quoted);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' || (c == '$' && !word.is_empty()) {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        if c == '\'' || c == '"' {
            out.push(c);
            while let Some(d) = chars.next() {
                out.push(d);
                if d == c {
                    if chars.peek() == Some(&c) {
                        out.push(chars.next().unwrap_or(c));
                        continue;
                    }
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    flush(&mut word, &mut out);
    out
}

/// A sequence as the catalog has it, with the column that owns it (OWNED
/// BY, deptype `a`) or whose identity it is (deptype `i`).
struct SeqRow {
    oid: u32,
    model: Sequence,
    owner: Option<(u32, String)>,
    owner_attnum: i16,
    identity: bool,
}

async fn read_sequences(client: &Client, display: &str, filter: &str, server_major: u32) -> Result<Vec<SeqRow>> {
    if server_major < 10 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, \
                CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(c.oid::regclass) END, \
                d.deptype::text, d.refobjid, d.refobjsubid::smallint, a.attname::text \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
         WHERE {filter} AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = c.oid AND e.deptype = 'e') \
         ORDER BY 2, 3"
    );
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| query_error(display, &sql, e))?;
    let mut out = Vec::new();
    for r in rows {
        let mut s = Sequence::new(qualified(&r.get::<_, String>(1), &r.get::<_, String>(2)));
        s.start = Some(r.get::<_, i64>(3) as i128);
        s.increment = Some(r.get::<_, i64>(4) as i128);
        s.min = Some(r.get::<_, i64>(5) as i128);
        s.max = Some(r.get::<_, i64>(6) as i128);
        s.cache = Some(r.get::<_, i64>(7) as i128);
        s.cycle = r.get(8);
        s.last_value = r.get::<_, Option<i64>>(9).map(i128::from);
        let deptype: Option<String> = r.get(10);
        let owner = match (r.get::<_, Option<u32>>(11), r.get::<_, Option<String>>(13)) {
            (Some(t), Some(col)) => Some((t, col)),
            _ => None,
        };
        out.push(SeqRow { oid: r.get(0), model: s, owner, owner_attnum: r.get::<_, Option<i16>>(12).unwrap_or(0), identity: deptype.as_deref() == Some("i") });
    }
    Ok(out)
}

impl SeqRow {
    /// The value the sequence hands out next: where a copy should start.
    fn next_value(&self) -> Option<i128> {
        match self.model.last_value {
            Some(last) => Some(last + self.model.increment.unwrap_or(1)),
            None => self.model.start,
        }
    }
}

/// `public` is PostgreSQL's default schema; the model leaves it implicit,
/// as a dump script does.
fn qualified(ns: &str, name: &str) -> QualifiedName {
    QualifiedName::new(Some(ns), name)
}

#[allow(clippy::too_many_arguments)]
async fn read_columns(
    client: &Client,
    display: &str,
    filter: &str,
    schema: &mut Schema,
    by_oid: &HashMap<u32, usize>,
    partitions: &HashMap<u32, String>,
    sequences: &[SeqRow],
    domains: &HashMap<u32, usize>,
    absorbed: &mut Vec<u32>,
) -> Result<()> {
    let sql = format!(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text, col_description(a.attrelid, a.attnum), \
                t.typtype::text, tn.nspname, t.typname, \
                CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, t.typnotnull, \
                et.typtype::text, etn.nspname, et.typname, a.attislocal, a.attnum, \
                coll.collname, t.oid, \
                EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_type'::regclass AND dep.objid = t.oid AND dep.deptype = 'e') \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation coll ON coll.oid = a.attcollation AND a.attcollation <> t.typcollation \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {filter} \
         ORDER BY a.attrelid, a.attnum"
    );
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| query_error(display, &sql, e))?;
    for r in rows {
        let oid: u32 = r.get(0);
        let Some(&ti) = by_oid.get(&oid) else { continue };
        // An inheritance child declares only its own columns; a partition
        // is written with all of them (as pg_dump does).
        let local: bool = r.get(16);
        if !local && !partitions.contains_key(&oid) {
            continue;
        }
        let name: String = r.get(1);
        let mut type_text: String = r.get(2);
        let not_null: bool = r.get(3);
        let default: Option<String> = r.get(4);
        let identity: String = r.get(5);
        let generated: String = r.get(6);
        let typtype: String = r.get(8);
        let (tns, tname): (String, String) = (r.get(9), r.get(10));
        let domain_base: Option<String> = r.get(11);
        let domain_not_null: bool = r.get(12);
        let elem_typtype: Option<String> = r.get(13);
        let attnum: i16 = r.get(17);
        let collation: Option<String> = r.get(18);
        let type_oid: u32 = r.get(19);
        let extension_type: bool = r.get(20);

        // A domain column: the base type, named after the domain.
        let domain = domains.get(&type_oid).map(|&i| schema.domains[i].clone());
        let written_type = type_text.clone();
        if let Some(base) = &domain_base {
            type_text = base.clone();
        }
        let mut spec = typetext::parse(&type_text);
        spec.collation = collation;
        let ty = if typtype == "e" || elem_typtype.as_deref() == Some("e") {
            let (ns, tn): (String, String) = if typtype == "e" { (tns.clone(), tname.clone()) } else { (r.get(14), r.get(15)) };
            let qn = qualified(&ns, &tn);
            let values = schema.enums.iter().find(|e| e.name == qn).map(|e| e.values.clone()).unwrap_or_default();
            let e = ColumnType::Enum { name: Some(qn), values };
            if typtype == "e" {
                e
            } else {
                ColumnType::Array { element: Box::new(e) }
            }
        } else if extension_type && domain.is_none() {
            // An extension's type (citext, vector, hstore): barge does not
            // model it, even where its name looks like a built-in one.
            ColumnType::Other { name: type_text.clone() }
        } else {
            typetext::recognize(Dialect::Postgres, &spec)
        };
        let mut c = Column::new(&name, ty, if domain.is_some() { &written_type } else { &type_text });
        c.nullable = !(not_null || domain_not_null);
        c.comment = r.get(7);
        let owned_seq = |identity_seq: bool| sequences.iter().find(|s| s.identity == identity_seq && s.owner.as_ref().is_some_and(|(t, _)| *t == oid) && s.owner_attnum == attnum);
        if identity == "a" || identity == "d" {
            let seq = owned_seq(true);
            if let Some(s) = seq {
                absorbed.push(s.oid);
            }
            c.identity = Some(Identity {
                kind: if identity == "a" { IdentityKind::Always } else { IdentityKind::ByDefault },
                start: seq.and_then(SeqRow::next_value),
                increment: seq.and_then(|s| s.model.increment),
                sequence: None,
            });
        }
        if let Some(d) = default {
            if generated == "s" {
                c.generated = Some(Generated { expr: SqlText::new(d, Dialect::Postgres), stored: true });
            } else {
                match reader::parse_default(&d, Dialect::Postgres) {
                    // nextval of the sequence the column owns: serial.
                    DefaultValue::Sequence(name) if owned_seq(false).is_some_and(|s| s.model.name.loosely_eq(&name)) => {
                        let s = owned_seq(false).expect("checked above");
                        absorbed.push(s.oid);
                        c.identity = Some(Identity { kind: IdentityKind::Serial, start: s.next_value(), increment: s.model.increment, sequence: Some(s.model.name.clone()) });
                    }
                    other => c.default = Some(other),
                }
            }
        }
        if let Some(d) = &domain {
            if c.default.is_none() && c.identity.is_none() && c.generated.is_none() {
                c.default = d.default.clone();
            }
            for ch in &d.checks {
                let expr = SqlText::new(domain_check_for_column(&ch.sql, &name), Dialect::Postgres);
                schema.tables[ti].checks.push(Check { name: None, expr, origin: Origin::default() });
            }
        }
        schema.tables[ti].columns.push(c);
    }
    Ok(())
}

async fn read_constraints(client: &Client, display: &str, filter: &str, schema: &mut Schema, by_oid: &HashMap<u32, usize>, server_major: u32) -> Result<()> {
    // A constraint a table has only through its parent (a partition's
    // copy of the parent's key, an inherited check) is the parent's.
    let own = if server_major >= 11 { "con.conislocal AND con.conparentid = 0" } else { "con.conislocal" };
    let sql = format!(
        "SELECT con.conrelid, con.conname, con.contype::text, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i), \
                rn.nspname, rc.relname, \
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i), \
                con.confdeltype::text, con.confupdtype::text, con.condeferrable, con.condeferred, con.convalidated, pg_get_constraintdef(con.oid, true) \
         FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
         WHERE con.contype IN ('p', 'u', 'f', 'c') AND {own} AND {filter} ORDER BY con.conrelid, con.contype, con.conname"
    );
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| query_error(display, &sql, e))?;
    let action = |c: &str| match c {
        "r" => Some(RefAction::Restrict),
        "c" => Some(RefAction::Cascade),
        "n" => Some(RefAction::SetNull),
        "d" => Some(RefAction::SetDefault),
        _ => None,
    };
    for r in rows {
        let oid: u32 = r.get(0);
        let Some(&ti) = by_oid.get(&oid) else { continue };
        let name: String = r.get(1);
        let kind: String = r.get(2);
        let cols: Vec<String> = r.get(3);
        let t = &mut schema.tables[ti];
        match kind.as_str() {
            "p" => t.primary_key = Some(Key { name: Some(name), columns: cols }),
            "u" => t.uniques.push(Key { name: Some(name), columns: cols }),
            "f" => {
                let (rns, rname): (Option<String>, Option<String>) = (r.get(4), r.get(5));
                let Some(rname) = rname else { continue };
                t.foreign_keys.push(ForeignKey {
                    name: Some(name),
                    columns: cols,
                    ref_table: qualified(&rns.unwrap_or_default(), &rname),
                    ref_columns: r.get(6),
                    on_delete: action(&r.get::<_, String>(7)),
                    on_update: action(&r.get::<_, String>(8)),
                    deferrable: r.get(9),
                    initially_deferred: r.get(10),
                    validated: r.get(11),
                    origin: Origin::default(),
                });
            }
            _ => {
                let def: String = r.get(12);
                let expr = def.trim().strip_prefix("CHECK").unwrap_or(&def).trim();
                let expr = expr.strip_suffix("NOT VALID").unwrap_or(expr).trim().to_string();
                t.checks.push(Check { name: Some(name), expr: SqlText::new(expr, Dialect::Postgres), origin: Origin::default() });
            }
        }
    }
    Ok(())
}

async fn read_indexes(client: &Client, display: &str, filter: &str, schema: &mut Schema, by_oid: &HashMap<u32, usize>) -> Result<()> {
    let sql = format!(
        "SELECT i.indrelid, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {filter} AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')) \
         AND NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = i.indexrelid) \
         ORDER BY i.indrelid, i.indexrelid"
    );
    let rows = client.query(sql.as_str(), &[]).await.map_err(|e| query_error(display, &sql, e))?;
    for r in rows {
        let oid: u32 = r.get(0);
        let Some(&ti) = by_oid.get(&oid) else { continue };
        let def: String = r.get(1);
        // An index on a partitioned table is defined `ON ONLY parent`.
        let def = def.replacen(" ON ONLY ", " ON ", 1);
        match reader::parse_index_definition(&def, Dialect::Postgres) {
            Some((_, idx)) => schema.tables[ti].indexes.push(idx),
            None => tracing::warn!("index on {} not read, so not copied: {def}", schema.tables[ti].name),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_index_definitions_are_read() {
        for d in [
            "CREATE INDEX i1 ON public.t USING gin (title gin_trgm_ops)",
            "CREATE INDEX i2 ON public.t USING btree (a) INCLUDE (b, c)",
            "CREATE UNIQUE INDEX i3 ON public.t USING btree (a) NULLS NOT DISTINCT",
            "CREATE INDEX i4 ON public.t USING btree (a COLLATE \"C\" DESC NULLS LAST)",
            "CREATE INDEX i5 ON public.t USING btree (lower(email)) WHERE (active AND (deleted_at IS NULL))",
            "CREATE INDEX i6 ON public.t USING gin (to_tsvector('english'::regconfig, ((title || ' '::text) || description)))",
            "CREATE INDEX i7 ON ONLY public.payment USING btree (customer_id)",
            "CREATE INDEX i8 ON public.t USING brin (created_at) WITH (pages_per_range='32')",
        ] {
            let def = d.replacen(" ON ONLY ", " ON ", 1);
            assert!(reader::parse_index_definition(&def, Dialect::Postgres).is_some(), "{d}");
        }
    }

    #[test]
    fn domain_checks_name_the_column() {
        assert_eq!(domain_check_for_column("((VALUE >= 1901) AND (VALUE <= 2155))", "release_year"), "((\"release_year\" >= 1901) AND (\"release_year\" <= 2155))");
        assert_eq!(domain_check_for_column("(VALUE <> 'value'::text)", "v"), "(\"v\" <> 'value'::text)");
        assert_eq!(domain_check_for_column("(\"value\" > values_max)", "c"), "(\"value\" > values_max)");
    }
}
