//! MySQL / MariaDB through mysql_async: connect (TLS chosen by `ssl-mode`),
//! run statements, and read the catalog into the schema model.
//!
//! # Session
//! Every connection runs `SET NAMES utf8mb4` (so 4-byte characters in data,
//! comments and defaults survive), `time_zone = '+00:00'` and `sql_mode`
//! without `ANSI_QUOTES`, `ANSI` and `NO_BACKSLASH_ESCAPES`.
//! TIMESTAMP columns hold instants in UTC and the server converts them to
//! and from the session zone on every read and write; with the session in
//! UTC the values we read are the stored instants, they load back into the
//! same instants whatever the target's system zone is, and no value falls
//! into a daylight-saving gap or repeated hour. The `sql_mode` edits keep
//! backquoted identifiers and backslash escapes meaning what the rest of
//! barge (and every dump) assumes. `LOAD DATA LOCAL INFILE` stays possible:
//! mysql_async always offers `CLIENT_LOCAL_FILES`, and a loader can give
//! [`MyConn::conn`] an in-memory infile handler per statement.
//!
//! # TLS (`ssl-mode`, also spelled `ssl_mode` or `sslmode`)
//! - `DISABLED`: plain TCP.
//! - `PREFERRED` (the default, as in the `mysql` client): TLS without
//!   verification when the server offers it, plain TCP when it does not.
//!   This encrypts against passive listeners whenever the server can (a
//!   server without TLS costs one extra handshake, refused right after its
//!   greeting); it does not authenticate the server, so ask for
//!   `VERIFY_IDENTITY` when that matters.
//! - `REQUIRED`: TLS, no certificate check; fails if the server has no TLS.
//! - `VERIFY_CA`: the chain must lead to a trusted CA; any host name.
//! - `VERIFY_IDENTITY`: the chain and the host name.
//!
//! Trust anchors: `ssl-ca=PATH` (also `ssl_ca`, `sslrootcert`), else the
//! Mozilla roots. mysql_async 0.37's "skip the host name" switch does not
//! recognise rustls 0.23's name-mismatch error, so `VERIFY_CA` connects a
//! second time, verifying against a name the certificate itself presents
//! (the first attempt already proved the chain).
//!
//! # Introspection
//! A fixed handful of set-based catalog queries over the whole database
//! (tables, columns, indexes, foreign keys, checks, views, partitions),
//! then one `SHOW CREATE` per routine, trigger and event. The result is
//! shaped like what [`crate::schema::reader`] makes of a mysqldump of the
//! same database; see [`MyConn::introspect`] for the normalizations.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, SslOpts};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::endpoint::{password_for, DbEndpoint, Role, Secret};
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::{expr, rewrite, typetext};

const DEFAULT_PORT: u16 = 3306;

pub struct MyConn {
    pub conn: mysql_async::Conn,
    /// The current database (`DATABASE()`); empty when the URL names none.
    pub database: String,
    pub mariadb: bool,
    /// The redacted URL, for messages.
    pub display: String,
    /// `(major, minor, patch)` of the server, e.g. `(10, 11, 19)`.
    pub version: (u16, u16, u16),
    /// `VERSION()` as the server reports it.
    pub version_string: String,
    /// Whether the connection is encrypted.
    pub tls: bool,
}

/// The `ssl-mode` URL option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    pub const NAMES: [&'static str; 5] = ["DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"];

    /// Reads `ssl-mode` / `ssl_mode` / `sslmode`; libpq spellings
    /// (`disable`, `require`, `verify-full`, ...) are accepted too.
    pub fn from_options(options: &BTreeMap<String, String>) -> std::result::Result<SslMode, String> {
        let Some(raw) = ["ssl-mode", "ssl_mode", "sslmode"].iter().find_map(|k| options.get(*k)) else {
            return Ok(SslMode::Preferred);
        };
        Ok(match raw.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" | "DISABLE" => SslMode::Disabled,
            "PREFERRED" | "PREFER" | "ALLOW" => SslMode::Preferred,
            "REQUIRED" | "REQUIRE" => SslMode::Required,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" | "VERIFY_FULL" => SslMode::VerifyIdentity,
            _ => return Err(raw.clone()),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// What one connection attempt needs besides the TLS options.
struct Target<'a> {
    ep: &'a DbEndpoint,
    role: Role,
    port: u16,
    password: Option<Secret>,
    timeout: Duration,
    mode: SslMode,
}

impl Target<'_> {
    fn opts(&self, ssl: Option<SslOpts>) -> Opts {
        let user = self.ep.user.clone().or_else(|| std::env::var("USER").ok());
        OptsBuilder::default()
            .ip_or_hostname(self.ep.host.clone())
            .tcp_port(self.port)
            .user(user)
            .pass(self.password.as_ref().map(|p| p.expose().to_string()))
            .db_name(self.ep.database.clone())
            // mysql_async would otherwise switch a loopback connection to the
            // server's unix socket behind our back (and past the TLS choice).
            .prefer_socket(false)
            // A vanished peer is noticed in minutes, not the kernel's two hours.
            .tcp_keepalive(Some(crate::db::postgres::KEEPALIVE_IDLE))
            .ssl_opts(ssl)
            .into()
    }

    async fn open(&self, ssl: Option<SslOpts>) -> std::result::Result<mysql_async::Conn, Failure> {
        match tokio::time::timeout(self.timeout, mysql_async::Conn::new(self.opts(ssl))).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(Failure::Driver(e)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    fn error(&self, f: Failure) -> Error {
        let (message, hint) = describe_connect_failure(&f, self);
        let message = scrub(&message, self.password.as_ref());
        let hint = hint.map(|h| scrub(&h, self.password.as_ref()));
        Error::Endpoint { endpoint: self.ep.display.clone(), message, hint }.retriable_if(matches!(&f, Failure::Timeout) || matches!(&f, Failure::Driver(e) if crate::util::retry::Retriable::is_retriable(e)))
    }
}

enum Failure {
    Driver(mysql_async::Error),
    Timeout,
}

impl MyConn {
    /// Connects as the URL says: host, port (3306), user (else `$USER`, as
    /// the `mysql` client does), database, `ssl-mode`, `ssl-ca`, and
    /// `connect_timeout` in seconds (30). The password comes from
    /// [`password_for`], never from the URL.
    pub async fn connect(ep: &DbEndpoint, role: Role) -> Result<MyConn> {
        let mode = SslMode::from_options(&ep.options).map_err(|bad| Error::Url {
            url: ep.display.clone(),
            reason: format!("unknown ssl-mode `{bad}`"),
            hint: Some(format!("use one of: {}", SslMode::NAMES.join(", "))),
        })?;
        let ca = ca_pem(ep)?;
        let timeout = ep.connect_timeout();
        let target = Target {
            ep,
            role,
            port: ep.port.unwrap_or(DEFAULT_PORT),
            password: password_for(ep, role, "MYSQL_PWD")?,
            timeout,
            mode,
        };
        if mode != SslMode::Disabled {
            // mysql_async builds its rustls config from the process-wide
            // provider; make sure there is one (ring, as everywhere in barge).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let (conn, tls) = match mode {
            SslMode::Disabled => (target.open(None).await.map_err(|f| target.error(f))?, false),
            SslMode::Preferred => match target.open(Some(ssl_opts(SslMode::Required, &ca))).await {
                Ok(c) => (c, true),
                Err(Failure::Driver(e)) if server_lacks_tls(&e) => {
                    (target.open(None).await.map_err(|f| target.error(f))?, false)
                }
                Err(f) => return Err(target.error(f)),
            },
            SslMode::Required | SslMode::VerifyIdentity => {
                (target.open(Some(ssl_opts(mode, &ca))).await.map_err(|f| target.error(f))?, true)
            }
            SslMode::VerifyCa => match target.open(Some(ssl_opts(mode, &ca))).await {
                Ok(c) => (c, true),
                Err(Failure::Driver(e)) => match presented_name(&e) {
                    // The chain checked out (webpki checks it before the
                    // name); verify again against a name the certificate
                    // carries, which is what VERIFY_CA promises.
                    Some(name) => {
                        let opts = ssl_opts(SslMode::VerifyIdentity, &ca).with_danger_tls_hostname_override(Some(name));
                        (target.open(Some(opts)).await.map_err(|f| target.error(f))?, true)
                    }
                    None => return Err(target.error(Failure::Driver(e))),
                },
                Err(f) => return Err(target.error(f)),
            },
        };
        let mut me = MyConn {
            conn,
            database: String::new(),
            mariadb: false,
            display: ep.display.clone(),
            version: (0, 0, 0),
            version_string: String::new(),
            tls,
        };
        me.apply_session_settings().await?;
        Ok(me)
    }

    /// The session settings described in the module docs; [`Self::connect`]
    /// applies them, and they can be applied again after anything (a dump
    /// being replayed, say) has changed the session.
    pub async fn apply_session_settings(&mut self) -> Result<()> {
        self.execute("SET NAMES utf8mb4").await?;
        self.execute(
            "SET time_zone = '+00:00', sql_mode = TRIM(BOTH ',' FROM \
             REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), \
             ',ANSI_QUOTES,', ','), ',ANSI,', ','), ',NO_BACKSLASH_ESCAPES,', ','))",
        )
        .await?;
        let rows = self.rows("SELECT VERSION(), DATABASE()").await?;
        let row = rows.first().ok_or_else(|| self.catalog_error("SELECT VERSION()", "no row"))?;
        self.version_string = text(&row[0]).unwrap_or_default();
        self.database = text(&row[1]).unwrap_or_default();
        self.mariadb = self.version_string.to_ascii_lowercase().contains("mariadb");
        self.version = parse_version(&self.version_string).unwrap_or_else(|| self.conn.server_version());
        if !self.mariadb && self.version >= (8, 0, 0) {
            // MySQL 8 caches TABLES.AUTO_INCREMENT and friends for a day by
            // default; we want the values as they are now.
            self.execute("SET SESSION information_schema_stats_expiry = 0").await?;
        }
        Ok(())
    }

    /// Runs one statement over the text protocol, discarding any rows.
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.map_err(|e| statement_error(&self.display, sql, &e))
    }

    /// Runs a query and returns every row as raw column values (the text
    /// protocol sends everything as bytes; NULL is `None`).
    async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let rows: Vec<mysql_async::Row> =
            self.conn.query(sql).await.map_err(|e| statement_error(&self.display, sql, &e))?;
        Ok(rows.into_iter().map(|r| r.unwrap().into_iter().map(value_bytes).collect()).collect())
    }

    /// Like [`Self::rows`], addressed by column name (for `SHOW CREATE`).
    async fn named_row(&mut self, sql: &str, column: &str) -> Result<Option<String>> {
        let rows: Vec<mysql_async::Row> =
            self.conn.query(sql).await.map_err(|e| statement_error(&self.display, sql, &e))?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let idx = row.columns_ref().iter().position(|c| c.name_str().eq_ignore_ascii_case(column));
        let values = row.unwrap();
        Ok(idx.and_then(|i| values.into_iter().nth(i)).and_then(|v| text(&value_bytes(v))))
    }

    fn catalog_error(&self, sql: &str, what: &str) -> Error {
        Error::Endpoint {
            endpoint: self.display.clone(),
            message: format!("reading the catalog failed at `{}`: {what}", crate::db::excerpt(sql)),
            hint: None,
        }
    }

    /// Reads the current database into the schema model, shaped like what
    /// the DDL reader makes of a mysqldump of it. Normalizations:
    /// - `AUTO_INCREMENT` of 1 (or none) is no start value, as SHOW CREATE
    ///   TABLE omits it.
    /// - A text column's charset and collation are kept only where they
    ///   differ from the table's, again as SHOW CREATE TABLE prints them.
    /// - MariaDB's JSON (`longtext` + `CHECK (json_valid(col))`) is read back
    ///   as `json`, without that check.
    /// - MariaDB names column-level checks after the column; the dump
    ///   writes them inline without a name, so they get none here.
    /// - Expressions (generated columns, checks, defaults) go through the
    ///   same SQL parser as the DDL reader, so their text matches.
    /// - View bodies lose the current database's qualifier, as in
    ///   SHOW CREATE VIEW.
    /// - The partitioning clause is rebuilt from `PARTITIONS`, not copied.
    /// - Primary keys are unnamed (they are always `PRIMARY`).
    pub async fn introspect(&mut self) -> Result<Schema> {
        if self.database.is_empty() {
            return Err(Error::Endpoint {
                endpoint: self.display.clone(),
                message: "no database selected, so there is no catalog to read".into(),
                hint: Some("name the database in the URL: mysql://user@host:3306/DATABASE".into()),
            });
        }
        let db = sql_string(&self.database);
        let style = if self.mariadb && self.version >= (10, 2, 7) { DefaultStyle::Quoted } else { DefaultStyle::Bare };

        let collations: HashMap<String, String> = self
            .rows("SELECT COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
            .await?
            .into_iter()
            .filter_map(|r| Some((text(&r[0])?, text(&r[1])?)))
            .collect();

        // Tables.
        let mut tables: Vec<Table> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut partitioned = false;
        // Sorted by the bytes of the name, as mysqldump lists them (the
        // catalog's own collation puts `orders` before `order_items`).
        let mut table_rows = self
            .rows(&format!(
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, AUTO_INCREMENT, TABLE_COLLATION, TABLE_COMMENT, CREATE_OPTIONS \
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db}"
            ))
            .await?;
        table_rows.sort_by(|a, b| a[0].cmp(&b[0]));
        for r in table_rows {
            let (Some(name), Some(kind)) = (text(&r[0]), text(&r[1])) else { continue };
            if !matches!(kind.as_str(), "BASE TABLE" | "SYSTEM VERSIONED") {
                continue;
            }
            let mut t = Table::new(QualifiedName::bare(&name));
            t.options.engine = text(&r[2]);
            t.options.auto_increment_start = text(&r[3]).and_then(|s| s.parse::<i128>().ok()).filter(|v| *v > 1);
            t.options.collation = text(&r[4]);
            t.options.charset = t.options.collation.as_deref().map(|c| charset_of(c, &collations));
            t.comment = text(&r[5]).filter(|c| !c.is_empty());
            partitioned |= text(&r[6]).is_some_and(|o| o.to_ascii_lowercase().contains("partitioned"));
            index_of.insert(name, tables.len());
            tables.push(t);
        }

        // Columns.
        for r in self
            .rows(&format!(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
                 GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ))
            .await?
        {
            let Some(&ti) = text(&r[0]).and_then(|n| index_of.get(&n)) else { continue };
            let t = &mut tables[ti];
            let facts = ColumnFacts {
                name: text(&r[1]).unwrap_or_default(),
                column_type: text(&r[2]).unwrap_or_default(),
                data_type: text(&r[3]).unwrap_or_default().to_ascii_lowercase(),
                nullable: text(&r[4]).is_some_and(|s| s.eq_ignore_ascii_case("YES")),
                default: r[5].clone(),
                extra: text(&r[6]).unwrap_or_default(),
                generation: text(&r[7]).filter(|s| !s.is_empty()),
                charset: text(&r[8]),
                collation: text(&r[9]),
                comment: text(&r[10]).filter(|s| !s.is_empty()),
            };
            let c = build_column(&facts, t, style, self.mariadb);
            t.columns.push(c);
        }

        // Indexes, in the server's key order (as SHOW CREATE TABLE lists them).
        let expression_col = !self.mariadb && self.version >= (8, 0, 13);
        let sql = format!(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, COLLATION, SUB_PART, INDEX_TYPE{} \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {db}",
            if expression_col { ", EXPRESSION" } else { "" }
        );
        let mut raw_indexes: Vec<RawIndex> = Vec::new();
        let mut raw_pos: HashMap<(usize, String), usize> = HashMap::new();
        for r in self.rows(&sql).await? {
            let Some(&ti) = text(&r[0]).and_then(|n| index_of.get(&n)) else { continue };
            let name = text(&r[1]).unwrap_or_default();
            let seq = text(&r[3]).and_then(|s| s.parse().ok()).unwrap_or(0);
            let key = match (text(&r[4]), r.get(8).and_then(text)) {
                (Some(col), _) => IndexKey::Column(col),
                (None, Some(e)) => IndexKey::Expression(SqlText::new(render_expr(&unescape_mysql_i_s(&e, self.mariadb)), Dialect::Mysql)),
                (None, None) => continue,
            };
            let part = IndexPart {
                key,
                prefix_len: text(&r[6]).and_then(|s| s.parse().ok()),
                descending: text(&r[5]).as_deref() == Some("D"),
            };
            let slot = *raw_pos.entry((ti, name.clone())).or_insert_with(|| {
                raw_indexes.push(RawIndex {
                    table: ti,
                    name,
                    unique: text(&r[2]).as_deref() == Some("0"),
                    kind: text(&r[7]).unwrap_or_default().to_ascii_uppercase(),
                    parts: Vec::new(),
                });
                raw_indexes.len() - 1
            });
            raw_indexes[slot].parts.push((seq, part));
        }
        for raw in raw_indexes {
            let ti = raw.table;
            place_index(&mut tables[ti], raw);
        }

        // Foreign keys: columns from KEY_COLUMN_USAGE, rules from
        // REFERENTIAL_CONSTRAINTS, joined here (a join of two
        // information_schema tables is a nested loop on the server).
        let mut rules: HashMap<(String, String), (Option<RefAction>, Option<RefAction>)> = HashMap::new();
        for r in self
            .rows(&format!(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE \
                 FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {db}"
            ))
            .await?
        {
            let (Some(t), Some(n)) = (text(&r[0]), text(&r[1])) else { continue };
            rules.insert((t, n), (text(&r[2]).and_then(|s| ref_action(&s)), text(&r[3]).and_then(|s| ref_action(&s))));
        }
        for r in self
            .rows(&format!(
                "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, \
                 REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = {db} AND REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
            ))
            .await?
        {
            let (Some(tname), Some(cname)) = (text(&r[0]), text(&r[1])) else { continue };
            let Some(&ti) = index_of.get(&tname) else { continue };
            let column = text(&r[2]).unwrap_or_default();
            let ref_column = text(&r[5]).unwrap_or_default();
            let t = &mut tables[ti];
            if let Some(fk) = t.foreign_keys.last_mut().filter(|f| f.name.as_deref() == Some(cname.as_str())) {
                fk.columns.push(column);
                fk.ref_columns.push(ref_column);
                continue;
            }
            let ref_schema = text(&r[3]).filter(|s| s != &self.database);
            let (on_update, on_delete) = rules.get(&(tname.clone(), cname.clone())).cloned().unwrap_or((None, None));
            t.foreign_keys.push(ForeignKey {
                name: Some(cname),
                columns: vec![column],
                ref_table: QualifiedName::new(ref_schema.as_deref(), &text(&r[4]).unwrap_or_default()),
                ref_columns: vec![ref_column],
                on_delete,
                on_update,
                deferrable: false,
                initially_deferred: false,
                validated: true,
                origin: Origin::default(),
            });
        }

        // CHECK constraints (MariaDB 10.2+, MySQL 8.0.16+).
        let check_cols: Vec<String> = self
            .rows("SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                   WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'CHECK_CONSTRAINTS'")
            .await?
            .iter()
            .filter_map(|r| text(&r[0]).map(|s| s.to_ascii_uppercase()))
            .collect();
        let mut checks: Vec<RawCheck> = Vec::new();
        if check_cols.iter().any(|c| c == "TABLE_NAME") {
            let level = check_cols.iter().any(|c| c == "LEVEL");
            for r in self
                .rows(&format!(
                    "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE{} FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = {db}",
                    if level { ", LEVEL" } else { "" }
                ))
                .await?
            {
                let (Some(table), Some(name), Some(clause)) = (text(&r[0]), text(&r[1]), text(&r[2])) else { continue };
                let column_level = match r.get(3).and_then(text) {
                    Some(l) => l.eq_ignore_ascii_case("Column"),
                    // Before LEVEL existed: a check named after a column,
                    // about that column, was written on the column.
                    None => mentions_column(&clause, &name),
                };
                checks.push(RawCheck { table, name, clause, column_level });
            }
        } else if !check_cols.is_empty() {
            let mut clause_of: HashMap<String, String> = HashMap::new();
            for r in self
                .rows(&format!(
                    "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = {db}"
                ))
                .await?
            {
                if let (Some(n), Some(c)) = (text(&r[0]), text(&r[1])) {
                    clause_of.insert(n, c);
                }
            }
            for r in self
                .rows(&format!(
                    "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS \
                     WHERE TABLE_SCHEMA = {db} AND CONSTRAINT_TYPE = 'CHECK'"
                ))
                .await?
            {
                let (Some(table), Some(name)) = (text(&r[0]), text(&r[1])) else { continue };
                if let Some(clause) = clause_of.get(&name) {
                    checks.push(RawCheck { table, name, clause: unescape_mysql_i_s(clause, false), column_level: false });
                }
            }
        }
        place_checks(&mut tables, &index_of, checks, self.mariadb);

        // Partitioning, only when some table is partitioned: reading
        // PARTITIONS opens every table of the database.
        if partitioned {
            let mut parts: BTreeMap<usize, Vec<PartitionRow>> = BTreeMap::new();
            for r in self
                .rows(&format!(
                    "SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD, \
                     PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION \
                     FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = {db} AND PARTITION_NAME IS NOT NULL \
                     ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION"
                ))
                .await?
            {
                let Some(&ti) = text(&r[0]).and_then(|n| index_of.get(&n)) else { continue };
                parts.entry(ti).or_default().push(PartitionRow {
                    name: text(&r[1]).unwrap_or_default(),
                    sub_name: text(&r[2]),
                    method: text(&r[3]).unwrap_or_default(),
                    sub_method: text(&r[4]),
                    expression: text(&r[5]),
                    sub_expression: text(&r[6]),
                    description: text(&r[7]),
                });
            }
            for (ti, rows) in parts {
                tables[ti].options.partitioning = partition_clause(&rows);
            }
        }

        // Views.
        let mut views = Vec::new();
        let mut view_rows = self
            .rows(&format!("SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}"))
            .await?;
        view_rows.sort_by(|a, b| a[0].cmp(&b[0]));
        for r in view_rows {
            let Some(name) = text(&r[0]) else { continue };
            // Without the SHOW VIEW privilege the body is blank here, and a
            // table alias named like the database makes the qualifiers
            // ambiguous; SHOW CREATE VIEW settles both.
            let stripped = text(&r[1]).filter(|d| !d.trim().is_empty()).and_then(|d| strip_schema_qualifier(&d, &self.database));
            let definition = match stripped {
                Some(d) => d,
                None => {
                    let sql = format!("SHOW CREATE VIEW {}", quote_ident(&name));
                    let create = self.named_row(&sql, "Create View").await?.unwrap_or_default();
                    view_body(&create).unwrap_or(create)
                }
            };
            views.push(View {
                name: QualifiedName::bare(&name),
                columns: vec![],
                query: SqlText::new(definition, Dialect::Mysql),
                materialized: false,
                comment: None,
                origin: Origin::default(),
            });
        }

        let routines = self.routines(&db).await?;
        Ok(Schema { dialect: Some(Dialect::Mysql), tables, views, routines, ..Schema::default() })
    }

    /// Procedures, functions, packages, triggers and events with their
    /// source from SHOW CREATE (flagged later, never converted).
    async fn routines(&mut self, db: &str) -> Result<Vec<Routine>> {
        // (kind, name, SHOW CREATE what, its column, catalog body, trigger's table)
        type Wanted = (RoutineKind, String, &'static str, &'static str, Option<String>, Option<String>);
        let mut wanted: Vec<Wanted> = Vec::new();
        for r in self
            .rows(&format!(
                "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = {db} ORDER BY ROUTINE_TYPE, ROUTINE_NAME"
            ))
            .await?
        {
            let (Some(name), Some(kind)) = (text(&r[0]), text(&r[1])) else { continue };
            let (kind, show, column) = match kind.to_ascii_uppercase().as_str() {
                "PROCEDURE" => (RoutineKind::Procedure, "PROCEDURE", "Create Procedure"),
                "FUNCTION" => (RoutineKind::Function, "FUNCTION", "Create Function"),
                "PACKAGE" => (RoutineKind::Package, "PACKAGE", "Create Package"),
                "PACKAGE BODY" => (RoutineKind::Package, "PACKAGE BODY", "Create Package Body"),
                _ => (RoutineKind::Other, "PROCEDURE", "Create Procedure"),
            };
            wanted.push((kind, name, show, column, text(&r[2]), None));
        }
        for r in self
            .rows(&format!(
                "SELECT TRIGGER_NAME, ACTION_STATEMENT, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = {db} ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER"
            ))
            .await?
        {
            let Some(name) = text(&r[0]) else { continue };
            wanted.push((RoutineKind::Trigger, name, "TRIGGER", "SQL Original Statement", text(&r[1]), text(&r[2])));
        }
        for r in self
            .rows(&format!(
                "SELECT EVENT_NAME, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db} ORDER BY EVENT_NAME"
            ))
            .await?
        {
            let Some(name) = text(&r[0]) else { continue };
            wanted.push((RoutineKind::Event, name, "EVENT", "Create Event", text(&r[1]), None));
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (kind, name, show, column, body, table) in wanted {
            let sql = format!("SHOW CREATE {show} {}", quote_ident(&name));
            // Without the privilege to see the full text the catalog still
            // has the body (or nothing); keep what there is.
            let source = match self.named_row(&sql, column).await {
                Ok(Some(s)) => s,
                Ok(None) | Err(_) => body.unwrap_or_default(),
            };
            out.push(Routine { kind, name: QualifiedName::bare(&name), table: table.as_deref().map(QualifiedName::bare), source, origin: Origin::default() });
        }
        Ok(out)
    }
}

// ----- connection helpers ------------------------------------------------

fn ca_pem(ep: &DbEndpoint) -> Result<Option<Vec<u8>>> {
    let Some(path) = ["ssl-ca", "ssl_ca", "sslrootcert"].iter().find_map(|k| ep.options.get(*k)) else {
        return Ok(None);
    };
    let path = std::path::Path::new(path);
    // Checked here for a clear message (missing file, not PEM, no certificate).
    crate::db::tls::root_store(Some(path))?;
    std::fs::read(path).map(Some).map_err(|source| Error::Read { path: path.into(), source })
}

fn ssl_opts(mode: SslMode, ca: &Option<Vec<u8>>) -> SslOpts {
    let mut o = SslOpts::default();
    if let Some(pem) = ca {
        // The URL names the trust anchor; do not also trust the web PKI.
        o = o.with_root_certs(vec![pem.clone().into()]).with_disable_built_in_roots(true);
    }
    match mode {
        SslMode::Required | SslMode::Preferred => {
            o.with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true)
        }
        SslMode::VerifyCa => o.with_danger_skip_domain_validation(true),
        SslMode::VerifyIdentity | SslMode::Disabled => o,
    }
}

fn server_lacks_tls(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
}

/// The rustls error behind a failure, if any. The handshake's errors come
/// wrapped in an `io::Error` (from tokio-rustls), not as `IoError::Tls`.
fn rustls_error(e: &mysql_async::Error) -> Option<&rustls::Error> {
    match e {
        mysql_async::Error::Io(mysql_async::IoError::Tls(mysql_async::TlsError::Tls(r))) => Some(r),
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// On a certificate that is fine but for another name: a name it presents,
/// usable as the name to verify against.
fn presented_name(e: &mysql_async::Error) -> Option<String> {
    match rustls_error(e)? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { presented, .. }) => {
            presented.iter().find_map(|p| usable_presented_name(p))
        }
        _ => None,
    }
}

/// rustls reports presented names as `DnsName("db.example")` or
/// `IpAddress(10.0.0.1)`. A wildcard is turned into one name it covers.
fn usable_presented_name(p: &str) -> Option<String> {
    if let Some(dns) = p.strip_prefix("DnsName(\"").and_then(|s| s.strip_suffix("\")")) {
        let name = match dns.strip_prefix("*.") {
            Some(rest) => format!("barge-verify-ca.{rest}"),
            None => dns.to_string(),
        };
        return rustls::pki_types::ServerName::try_from(name.as_str()).is_ok().then_some(name);
    }
    let ip = p.strip_prefix("IpAddress(").and_then(|s| s.strip_suffix(')'))?;
    ip.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

fn describe_connect_failure(f: &Failure, t: &Target) -> (String, Option<String>) {
    let addr = format!("{}:{}", t.ep.host, t.port);
    let listening = format!("is the server running and listening on {addr}? (check the host, the port and any firewall)");
    let e = match f {
        Failure::Timeout => {
            return (
                format!("cannot connect: no answer from {addr} within {} s", t.timeout.as_secs_f64()),
                Some(format!("{listening}; if the server is only slow to answer, raise ?connect_timeout=SECONDS in the URL")),
            );
        }
        Failure::Driver(e) => e,
    };
    let mode = t.mode.name();
    let password_hint = || {
        let var = t.role.password_var();
        let user = t.ep.user.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_default();
        if t.password.is_some() {
            format!("check the user name (`{user}`) and the password in {var} (or MYSQL_PWD, or ?password_file=PATH)")
        } else {
            format!("no password was given: set {var} (or MYSQL_PWD, or add ?password_file=PATH to the URL), and check the user name (`{user}`)")
        }
    };
    match e {
        mysql_async::Error::Server(s) => {
            let message = format!("cannot connect: ERROR {} ({}): {}", s.code, s.state, s.message);
            let hint = match s.code {
                1045 | 1698 => Some(password_hint()),
                1049 => Some("create it first, or fix the database name in the URL".to_string()),
                1044 => Some("the user may not use this database: grant it privileges, or fix the database name in the URL".into()),
                1130 => Some("the server does not accept this user from this client's address: create the user for this host".into()),
                1129 => Some("the server blocked this host after connection errors: run FLUSH HOSTS (or mariadb-admin flush-hosts) on it".into()),
                1040 | 1203 => Some("the server has no free connections: retry later or raise max_connections".into()),
                3159 | 4151 => Some("the server requires an encrypted connection: use ssl-mode=REQUIRED, VERIFY_CA or VERIFY_IDENTITY".into()),
                1251 | 2059 => Some("the user's authentication plugin is not supported: use mysql_native_password or caching_sha2_password".into()),
                _ if s.message.to_ascii_lowercase().contains("secure transport") => {
                    Some("the server requires an encrypted connection: use ssl-mode=REQUIRED, VERIFY_CA or VERIFY_IDENTITY".into())
                }
                _ => None,
            };
            (message, hint)
        }
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => (
            format!("ssl-mode={mode} asks for TLS, but the server at {addr} does not offer TLS"),
            Some("enable TLS on the server (ssl_cert / ssl_key), or connect unencrypted with ssl-mode=PREFERRED or ssl-mode=DISABLED".into()),
        ),
        mysql_async::Error::Io(io_or_tls) if rustls_error(e).is_some() || matches!(io_or_tls, mysql_async::IoError::Tls(_)) => {
            let detail = match rustls_error(e) {
                Some(r) => r.to_string(),
                None => io_or_tls.to_string(),
            };
            let hint = match rustls_error(e) {
                Some(rustls::Error::InvalidCertificate(c)) => Some(match c {
                    rustls::CertificateError::UnknownIssuer => format!(
                        "the server's certificate is not signed by a trusted CA: give the CA with ?ssl-ca=PATH, \
                         or use ssl-mode=REQUIRED to encrypt without verifying (ssl-mode was {mode})"
                    ),
                    rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => format!(
                        "the certificate does not name `{}`: connect with a host name it names, or use ssl-mode=VERIFY_CA \
                         to check only the chain (ssl-mode was {mode})",
                        t.ep.host
                    ),
                    rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                        "the server's certificate has expired: renew it on the server".into()
                    }
                    _ => format!("the server's certificate was rejected under ssl-mode={mode}"),
                }),
                _ => Some(format!("the TLS handshake failed under ssl-mode={mode}; check the server's TLS setup, or use ssl-mode=DISABLED")),
            };
            (format!("TLS with ssl-mode={mode} failed: {detail}"), hint)
        }
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => (format!("connection to {addr} refused"), Some(listening)),
                K::TimedOut => (format!("connection to {addr} timed out"), Some(listening)),
                K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe if t.mode != SslMode::Disabled => (
                    format!("the server at {addr} closed the connection ({io}) during the handshake (ssl-mode={mode})"),
                    Some("if the server does not speak TLS well, try ssl-mode=DISABLED; otherwise check the server's log".into()),
                ),
                _ if io.to_string().to_ascii_lowercase().contains("lookup") => {
                    (format!("cannot resolve host `{}`: {io}", t.ep.host), Some("check the host name in the URL".into()))
                }
                _ => (format!("cannot connect to {addr}: {io}"), Some(listening)),
            }
        }
        other => (format!("cannot connect to {addr} (ssl-mode={mode}): {other}"), None),
    }
}

pub fn statement_error(display: &str, sql: &str, e: &mysql_async::Error) -> Error {
    let stmt = crate::db::excerpt(sql);
    let (message, hint) = match e {
        mysql_async::Error::Server(s) => (
            format!("statement failed: `{stmt}`: ERROR {} ({}): {}", s.code, s.state, s.message),
            match s.code {
                1064 => Some("the server cannot parse this statement; check it was written for this server's version".to_string()),
                1142 | 1143 | 1227 | 1044 => Some("the user lacks a privilege this statement needs".into()),
                _ => None,
            },
        ),
        mysql_async::Error::Io(io) => (
            format!("statement failed: `{stmt}`: connection lost: {io}"),
            Some("the server closed the connection; check its log (max_allowed_packet, wait_timeout, a restart)".into()),
        ),
        other => (format!("statement failed: `{stmt}`: {other}"), None),
    };
    Error::Endpoint { endpoint: display.to_string(), message, hint }.retriable_if(crate::util::retry::Retriable::is_retriable(e))
}

/// Belt and braces: no message leaves with the password in it.
fn scrub(text: &str, password: Option<&Secret>) -> String {
    match password.map(Secret::expose) {
        Some(p) if p.len() >= 4 => text.replace(p, "***"),
        _ => text.to_string(),
    }
}

fn parse_version(v: &str) -> Option<(u16, u16, u16)> {
    // MariaDB may prefix "5.5.5-" for old clients; skip it.
    let v = v.strip_prefix("5.5.5-").unwrap_or(v);
    let mut it = v.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse::<u16>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

// ----- values ---------------------------------------------------------------

fn value_bytes(v: mysql_async::Value) -> Option<Vec<u8>> {
    use mysql_async::Value as V;
    match v {
        V::NULL => None,
        V::Bytes(b) => Some(b),
        V::Int(i) => Some(i.to_string().into_bytes()),
        V::UInt(u) => Some(u.to_string().into_bytes()),
        V::Float(f) => Some(f.to_string().into_bytes()),
        V::Double(f) => Some(f.to_string().into_bytes()),
        other => Some(other.as_sql(true).into_bytes()),
    }
}

fn text(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A string literal for the text protocol (backslash escapes are on:
/// the session's sql_mode drops NO_BACKSLASH_ESCAPES).
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn charset_of(collation: &str, known: &HashMap<String, String>) -> String {
    known
        .get(collation)
        .cloned()
        .unwrap_or_else(|| collation.split('_').next().unwrap_or(collation).to_string())
}

fn ref_action(rule: &str) -> Option<RefAction> {
    Some(match rule.to_ascii_uppercase().as_str() {
        "CASCADE" => RefAction::Cascade,
        "SET NULL" => RefAction::SetNull,
        "SET DEFAULT" => RefAction::SetDefault,
        "NO ACTION" => RefAction::NoAction,
        "RESTRICT" => RefAction::Restrict,
        _ => return None,
    })
}

/// Parses an expression the way the DDL reader does and prints it back,
/// so catalog text and dump text come out the same; unparsable text is
/// kept as the server wrote it.
fn render_expr(sql: &str) -> String {
    parse_expr(sql).map(|e| e.to_string()).unwrap_or_else(|| sql.trim().to_string())
}

fn parse_expr(sql: &str) -> Option<sqlparser::ast::Expr> {
    let d = rewrite::sql_dialect(Dialect::Mysql);
    let mut p = Parser::new(&*d).try_with_sql(sql).ok()?;
    let e = p.parse_expr().ok()?;
    (p.peek_token().token == Token::EOF).then_some(e)
}

/// MySQL 8 shows generated-column and check expressions in
/// information_schema with their quotes backslash-escaped
/// (`_utf8mb4\'a\'`); SHOW CREATE TABLE does not. MariaDB does neither.
fn unescape_mysql_i_s(s: &str, mariadb: bool) -> String {
    if mariadb {
        s.to_string()
    } else {
        s.replace("\\'", "'")
    }
}

// ----- columns ----------------------------------------------------------------

/// How the server spells COLUMN_DEFAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultStyle {
    /// MariaDB 10.2.7+: as in SHOW CREATE TABLE — string literals quoted,
    /// `NULL` for DEFAULT NULL, SQL NULL for no default, expressions bare.
    Quoted,
    /// MySQL (and older MariaDB): literals unquoted, SQL NULL for both
    /// DEFAULT NULL and no default; MySQL 8 flags expressions in EXTRA
    /// with DEFAULT_GENERATED.
    Bare,
}

struct ColumnFacts {
    name: String,
    column_type: String,
    data_type: String,
    nullable: bool,
    default: Option<Vec<u8>>,
    extra: String,
    generation: Option<String>,
    charset: Option<String>,
    collation: Option<String>,
    comment: Option<String>,
}

fn build_column(f: &ColumnFacts, t: &Table, style: DefaultStyle, mariadb: bool) -> Column {
    let extra = f.extra.to_ascii_lowercase();
    // Charset and collation only where they differ from the table's,
    // which is where SHOW CREATE TABLE (and so a dump) spells them out.
    let mut type_text = f.column_type.clone();
    let differs = f.collation.is_some() && f.collation != t.options.collation;
    if differs {
        if let Some(cs) = &f.charset {
            type_text.push_str(&format!(" CHARACTER SET {cs}"));
        }
        if let Some(co) = &f.collation {
            type_text.push_str(&format!(" COLLATE {co}"));
        }
    }
    let ty = typetext::recognize(Dialect::Mysql, &typetext::parse(&type_text));
    let mut c = Column::new(&f.name, ty, &f.column_type);
    c.nullable = f.nullable;
    c.comment = f.comment.clone();
    let generated = extra.contains("virtual generated") || extra.contains("stored generated") || extra.contains("persistent generated");
    if generated {
        let expr = unescape_mysql_i_s(f.generation.as_deref().unwrap_or(""), mariadb);
        c.generated = Some(Generated {
            expr: SqlText::new(render_expr(&expr), Dialect::Mysql),
            stored: extra.contains("stored") || extra.contains("persistent"),
        });
    }
    let auto_increment = extra.contains("auto_increment");
    if auto_increment {
        c.identity = Some(Identity {
            kind: IdentityKind::AutoIncrement,
            start: t.options.auto_increment_start,
            increment: None,
            sequence: None,
        });
    }
    c.on_update_current_timestamp = extra.contains("on update");
    if !generated && !auto_increment {
        c.default = column_default(style, f.default.as_deref(), &f.data_type, f.nullable, &extra);
    }
    c
}

fn is_lob(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection"
    )
}

fn is_numeric(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "numeric" | "float"
            | "double" | "real" | "year"
    )
}

fn is_binary(data_type: &str) -> bool {
    matches!(data_type, "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob")
}

/// COLUMN_DEFAULT as the DDL reader would read the same column's DEFAULT
/// clause in a dump.
fn column_default(style: DefaultStyle, raw: Option<&[u8]>, data_type: &str, nullable: bool, extra: &str) -> Option<DefaultValue> {
    let Some(raw) = raw else {
        // MySQL: no value means DEFAULT NULL on a nullable column, which
        // mysqldump writes out, except on BLOB/TEXT/GEOMETRY columns.
        return (style == DefaultStyle::Bare && nullable && !is_lob(data_type)).then_some(DefaultValue::Null);
    };
    match style {
        DefaultStyle::Quoted => {
            if raw == b"NULL" {
                return Some(DefaultValue::Null);
            }
            if raw.len() >= 2 && raw[0] == b'\'' && raw[raw.len() - 1] == b'\'' {
                return Some(literal(&unescape_literal(&raw[1..raw.len() - 1]), data_type));
            }
            Some(classify_expression(&String::from_utf8_lossy(raw)))
        }
        DefaultStyle::Bare => {
            let s = String::from_utf8_lossy(raw).into_owned();
            let upper = s.to_ascii_uppercase();
            let looks_like_now = upper.starts_with("CURRENT_TIMESTAMP") || upper.starts_with("NOW(") || upper.starts_with("LOCALTIMESTAMP");
            if extra.contains("default_generated") || looks_like_now {
                return Some(classify_expression(&s));
            }
            if data_type == "bit" && (s.starts_with("b'") || s.starts_with("B'")) {
                return Some(classify_expression(&s));
            }
            if is_numeric(data_type) && parse_expr(&s).is_some() {
                return Some(DefaultValue::Number(s));
            }
            if is_binary(data_type) {
                if let Some(hex) = s.strip_prefix("0x").filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) {
                    return Some(DefaultValue::Bytes(hex.to_ascii_uppercase()));
                }
            }
            Some(literal(raw, data_type))
        }
    }
}

/// A string default; on a binary column, bytes that are not plain text are
/// kept as bytes (hex).
fn literal(bytes: &[u8], data_type: &str) -> DefaultValue {
    match std::str::from_utf8(bytes) {
        Ok(s) if !is_binary(data_type) || !s.chars().any(|c| c.is_control()) => DefaultValue::String(s.to_string()),
        Ok(_) | Err(_) if is_binary(data_type) => {
            DefaultValue::Bytes(bytes.iter().map(|b| format!("{b:02X}")).collect())
        }
        _ => DefaultValue::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn classify_expression(s: &str) -> DefaultValue {
    match parse_expr(s) {
        Some(e) => expr::classify_default(&e, Dialect::Mysql),
        None => DefaultValue::Expression(SqlText::new(s.trim(), Dialect::Mysql)),
    }
}

/// Undoes MySQL string-literal escaping: `''`, and the backslash escapes
/// `\0 \b \n \r \t \Z \\ \' \"`; any other `\x` is `x`, except `\%` and
/// `\_`, which keep their backslash (as the server does).
fn unescape_literal(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' if b.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'\\' if i + 1 < b.len() => {
                let n = b[i + 1];
                match n {
                    b'0' => out.push(0),
                    b'b' => out.push(8),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'Z' => out.push(26),
                    b'%' | b'_' => out.extend_from_slice(&[b'\\', n]),
                    other => out.push(other),
                }
                i += 2;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

// ----- indexes --------------------------------------------------------------

/// One index as STATISTICS lists it, one row per part.
struct RawIndex {
    table: usize,
    name: String,
    unique: bool,
    /// INDEX_TYPE: BTREE, HASH, FULLTEXT, SPATIAL, RTREE.
    kind: String,
    /// (SEQ_IN_INDEX, part)
    parts: Vec<(u32, IndexPart)>,
}

/// PRIMARY becomes the primary key; a unique index over plain columns a
/// unique key (as the DDL reader files `UNIQUE KEY`); anything else an index.
fn place_index(t: &mut Table, raw: RawIndex) {
    let RawIndex { name, unique, kind, mut parts, .. } = raw;
    parts.sort_by_key(|(seq, _)| *seq);
    let parts: Vec<IndexPart> = parts.into_iter().map(|(_, p)| p).collect();
    let plain = parts.iter().all(|p| matches!(p.key, IndexKey::Column(_)) && p.prefix_len.is_none() && !p.descending);
    let columns = || {
        parts
            .iter()
            .filter_map(|p| match &p.key {
                IndexKey::Column(c) => Some(c.clone()),
                IndexKey::Expression(_) => None,
            })
            .collect::<Vec<_>>()
    };
    if name == "PRIMARY" {
        t.primary_key = Some(Key { name: None, columns: columns() });
        return;
    }
    let method = match kind.as_str() {
        "FULLTEXT" => IndexMethod::Fulltext,
        "SPATIAL" | "RTREE" => IndexMethod::Spatial,
        // MariaDB backs a UNIQUE over long columns with a hidden hash; it
        // is still just a unique key.
        "HASH" if !unique => IndexMethod::Hash,
        _ => IndexMethod::Default,
    };
    if unique && plain && method == IndexMethod::Default {
        t.uniques.push(Key { name: Some(name), columns: columns() });
    } else {
        t.indexes.push(Index { name: Some(name), unique, parts, predicate: None, method, include: vec![], origin: Origin::default() });
    }
}

// ----- checks ---------------------------------------------------------------

struct RawCheck {
    table: String,
    name: String,
    clause: String,
    column_level: bool,
}

/// `json_valid(`col`)` exactly: MariaDB's marker of a JSON column.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause.trim().strip_prefix("json_valid(")?.strip_suffix(')')?.trim();
    let name = inner.strip_prefix('`')?.strip_suffix('`')?;
    (!name.contains('`') || name.contains("``")).then(|| name.replace("``", "`"))
}

fn mentions_column(clause: &str, column: &str) -> bool {
    clause.contains(&format!("`{}`", column.replace('`', "``")))
}

fn place_checks(tables: &mut [Table], index_of: &HashMap<String, usize>, checks: Vec<RawCheck>, mariadb: bool) {
    let mut per_table: BTreeMap<usize, Vec<(usize, Check)>> = BTreeMap::new();
    for ch in checks {
        let Some(&ti) = index_of.get(&ch.table) else { continue };
        let t = &mut tables[ti];
        if mariadb && ch.column_level {
            if let Some(col) = json_valid_column(&ch.clause).filter(|c| c.eq_ignore_ascii_case(&ch.name)) {
                if let Some(c) = t.column_mut(&col).filter(|c| c.source_type.eq_ignore_ascii_case("longtext")) {
                    c.ty = ColumnType::Json;
                    c.source_type = "json".into();
                    continue;
                }
            }
        }
        // Column-level checks come first, in column order, then table-level
        // ones in the server's order: the order of the CREATE TABLE.
        let rank = if ch.column_level {
            t.columns.iter().position(|c| c.name.eq_ignore_ascii_case(&ch.name)).unwrap_or(usize::MAX / 2)
        } else {
            usize::MAX
        };
        let name = (!ch.column_level).then_some(ch.name);
        let expr = SqlText::new(render_expr(&ch.clause), Dialect::Mysql);
        per_table.entry(ti).or_default().push((rank, Check { name, expr, origin: Origin::default() }));
    }
    for (ti, mut list) in per_table {
        list.sort_by_key(|(rank, _)| *rank);
        tables[ti].checks.extend(list.into_iter().map(|(_, c)| c));
    }
}

// ----- partitions and views -------------------------------------------------

struct PartitionRow {
    name: String,
    sub_name: Option<String>,
    method: String,
    sub_method: Option<String>,
    expression: Option<String>,
    sub_expression: Option<String>,
    description: Option<String>,
}

/// `PARTITION BY ...` rebuilt from information_schema.PARTITIONS rows (one
/// per partition, or per subpartition), in the shape SHOW CREATE TABLE
/// writes. It is kept as text; barge does not convert partitioning.
fn partition_clause(rows: &[PartitionRow]) -> Option<String> {
    let first = rows.first()?;
    let method = first.method.to_ascii_uppercase();
    let columns = method.ends_with("COLUMNS");
    let mut s = match (&first.expression, method.as_str()) {
        (_, "SYSTEM_TIME") => "PARTITION BY SYSTEM_TIME".to_string(),
        (Some(e), _) if columns => format!("PARTITION BY {method}({e})"),
        (Some(e), _) => format!("PARTITION BY {method} ({e})"),
        (None, _) => format!("PARTITION BY {method} ()"),
    };
    if let Some(sm) = &first.sub_method {
        s.push_str(&format!("\nSUBPARTITION BY {} ({})", sm.to_ascii_uppercase(), first.sub_expression.as_deref().unwrap_or("")));
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let r = &rows[i];
        let mut p = format!("PARTITION {}", quote_ident(&r.name));
        match (method.as_str(), r.description.as_deref()) {
            (m, Some("MAXVALUE")) if m.starts_with("RANGE") && !columns => p.push_str(" VALUES LESS THAN MAXVALUE"),
            (m, Some(d)) if m.starts_with("RANGE") => p.push_str(&format!(" VALUES LESS THAN ({d})")),
            (m, Some(d)) if m.starts_with("LIST") => p.push_str(&format!(" VALUES IN ({d})")),
            _ => {}
        }
        let mut subs = Vec::new();
        while i < rows.len() && rows[i].name == r.name {
            if let Some(sn) = &rows[i].sub_name {
                subs.push(format!("SUBPARTITION {}", quote_ident(sn)));
            }
            i += 1;
        }
        if !subs.is_empty() {
            p.push_str(&format!("\n ({})", subs.join(",\n  ")));
        }
        parts.push(p);
    }
    s.push_str(&format!("\n({})", parts.join(",\n ")));
    Some(s)
}

/// Drops `` `db`. `` qualifiers naming the current database (outside string
/// literals), which information_schema.VIEWS keeps and SHOW CREATE VIEW
/// (and so a dump) does not. `None` when a table alias has the database's
/// name, because `` `db`.`x` `` could then be a column of that alias.
fn strip_schema_qualifier(sql: &str, db: &str) -> Option<String> {
    let qualifier = format!("{}.", quote_ident(db));
    if sql.contains(&format!("` {}", quote_ident(db))) || sql.contains(&format!(" AS {}", quote_ident(db))) {
        return None;
    }
    let chars: Vec<char> = sql.chars().collect();
    let q: Vec<char> = qualifier.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            // A string literal: copy it whole.
            out.push(c);
            i += 1;
            while i < chars.len() {
                out.push(chars[i]);
                if chars[i] == '\\' && i + 1 < chars.len() {
                    out.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        out.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            continue;
        }
        if c == '`' {
            if chars[i..].starts_with(&q) {
                i += q.len();
                continue;
            }
            // Some other quoted identifier: copy it whole.
            out.push(c);
            i += 1;
            while i < chars.len() {
                out.push(chars[i]);
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        out.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    Some(out)
}

/// The query of a `CREATE ... VIEW v AS query` statement.
fn view_body(create: &str) -> Option<String> {
    let d = rewrite::sql_dialect(Dialect::Mysql);
    let toks = sqlparser::tokenizer::Tokenizer::new(&*d, create).tokenize().ok()?;
    let is_word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let view = toks.iter().position(|t| is_word(t, "VIEW"))?;
    let as_at = view + toks[view..].iter().position(|t| is_word(t, "AS"))?;
    Some(toks[as_at + 1..].iter().map(ToString::to_string).collect::<String>().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ssl_mode_spellings() {
        assert_eq!(SslMode::from_options(&opts(&[])), Ok(SslMode::Preferred));
        assert_eq!(SslMode::from_options(&opts(&[("ssl-mode", "verify_identity")])), Ok(SslMode::VerifyIdentity));
        assert_eq!(SslMode::from_options(&opts(&[("ssl_mode", "VERIFY-CA")])), Ok(SslMode::VerifyCa));
        assert_eq!(SslMode::from_options(&opts(&[("sslmode", "disable")])), Ok(SslMode::Disabled));
        assert_eq!(SslMode::from_options(&opts(&[("sslmode", "verify-full")])), Ok(SslMode::VerifyIdentity));
        assert_eq!(SslMode::from_options(&opts(&[("ssl-mode", "maybe")])), Err("maybe".to_string()));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("10.11.19-MariaDB-0+deb12u1-log"), Some((10, 11, 19)));
        assert_eq!(parse_version("5.5.5-10.4.8-MariaDB"), Some((10, 4, 8)));
        assert_eq!(parse_version("8.0.36"), Some((8, 0, 36)));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn presented_names() {
        assert_eq!(usable_presented_name("DnsName(\"db.example\")").as_deref(), Some("db.example"));
        assert_eq!(usable_presented_name("DnsName(\"*.example.com\")").as_deref(), Some("barge-verify-ca.example.com"));
        assert_eq!(usable_presented_name("IpAddress(10.0.0.1)").as_deref(), Some("10.0.0.1"));
        assert_eq!(usable_presented_name("UniformResourceIdentifier(\"x\")"), None);
    }

    fn q(raw: &str, ty: &str) -> Option<DefaultValue> {
        column_default(DefaultStyle::Quoted, Some(raw.as_bytes()), ty, true, "")
    }

    #[test]
    fn mariadb_defaults() {
        assert_eq!(q("'shipping'", "enum"), Some(DefaultValue::String("shipping".into())));
        assert_eq!(q("'it''s'", "varchar"), Some(DefaultValue::String("it's".into())));
        assert_eq!(q("'a\\\\b\"c'", "varchar"), Some(DefaultValue::String("a\\b\"c".into())));
        assert_eq!(q("'x\\ny'", "char"), Some(DefaultValue::String("x\ny".into())));
        assert_eq!(q("''", "set"), Some(DefaultValue::String(String::new())));
        assert_eq!(q("NULL", "int"), Some(DefaultValue::Null));
        assert_eq!(q("'NULL'", "varchar"), Some(DefaultValue::String("NULL".into())));
        assert_eq!(q("0.000000", "decimal"), Some(DefaultValue::Number("0.000000".into())));
        assert_eq!(q("-1500", "double"), Some(DefaultValue::Number("-1500".into())));
        assert_eq!(q("b'0'", "bit"), Some(DefaultValue::Bits("0".into())));
        assert_eq!(q("current_timestamp()", "timestamp"), Some(DefaultValue::CurrentTimestamp { precision: None }));
        assert_eq!(q("current_timestamp(3)", "datetime"), Some(DefaultValue::CurrentTimestamp { precision: Some(3) }));
        assert_eq!(q("'0000-00-00 00:00:00'", "datetime"), Some(DefaultValue::String("0000-00-00 00:00:00".into())));
        assert!(matches!(q("uuid()", "varchar"), Some(DefaultValue::Expression(e)) if e.sql == "uuid()"));
        assert!(matches!(q("(1 + 2)", "int"), Some(DefaultValue::Expression(e)) if e.sql == "1 + 2"));
        assert_eq!(q("'\u{1}\u{2}'", "varbinary"), Some(DefaultValue::Bytes("0102".into())));
        assert_eq!(q("'ab'", "binary"), Some(DefaultValue::String("ab".into())));
        assert_eq!(column_default(DefaultStyle::Quoted, None, "int", true, ""), None);
    }

    fn b(raw: Option<&str>, ty: &str, nullable: bool, extra: &str) -> Option<DefaultValue> {
        column_default(DefaultStyle::Bare, raw.map(str::as_bytes), ty, nullable, extra)
    }

    #[test]
    fn mysql_defaults() {
        assert_eq!(b(None, "varchar", true, ""), Some(DefaultValue::Null));
        assert_eq!(b(None, "text", true, ""), None);
        assert_eq!(b(None, "json", true, ""), Some(DefaultValue::Null));
        assert_eq!(b(None, "int", false, ""), None);
        assert_eq!(b(Some("shipping"), "enum", false, ""), Some(DefaultValue::String("shipping".into())));
        assert_eq!(b(Some("NULL"), "varchar", true, ""), Some(DefaultValue::String("NULL".into())));
        assert_eq!(b(Some("0.000000"), "decimal", false, ""), Some(DefaultValue::Number("0.000000".into())));
        assert_eq!(b(Some("-1"), "int", false, ""), Some(DefaultValue::Number("-1".into())));
        assert_eq!(b(Some("b'101'"), "bit", false, ""), Some(DefaultValue::Bits("101".into())));
        assert_eq!(b(Some("0x0102"), "varbinary", true, ""), Some(DefaultValue::Bytes("0102".into())));
        assert_eq!(
            b(Some("CURRENT_TIMESTAMP"), "timestamp", false, "DEFAULT_GENERATED on update CURRENT_TIMESTAMP"),
            Some(DefaultValue::CurrentTimestamp { precision: None })
        );
        // MySQL 5.7 does not flag it.
        assert_eq!(b(Some("CURRENT_TIMESTAMP(3)"), "datetime", false, ""), Some(DefaultValue::CurrentTimestamp { precision: Some(3) }));
        assert!(matches!(b(Some("uuid_to_bin(uuid())"), "binary", false, "default_generated"), Some(DefaultValue::Expression(e)) if e.sql == "uuid_to_bin(uuid())"));
        assert_eq!(b(Some("10:00:00"), "time", false, ""), Some(DefaultValue::String("10:00:00".into())));
    }

    #[test]
    fn json_marker() {
        assert_eq!(json_valid_column("json_valid(`preferences`)").as_deref(), Some("preferences"));
        assert_eq!(json_valid_column("json_valid(`a`) and 1"), None);
        assert_eq!(json_valid_column("`a` > 0"), None);
    }

    #[test]
    fn schema_qualifier_is_stripped_outside_literals() {
        let sql = "select `t`.`a` AS `a`,'`s`.x' AS `b` from (`s`.`t` join `s2`.`u`) where `x` = \"`s`.\"";
        assert_eq!(
            strip_schema_qualifier(sql, "s").as_deref(),
            Some("select `t`.`a` AS `a`,'`s`.x' AS `b` from (`t` join `s2`.`u`) where `x` = \"`s`.\"")
        );
        // An alias named like the database: left to SHOW CREATE VIEW.
        assert_eq!(strip_schema_qualifier("select `s`.`a` from `s`.`t` `s`", "s"), None);
    }

    #[test]
    fn view_body_after_as() {
        let create = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`";
        assert_eq!(view_body(create).as_deref(), Some("select 1 AS `x`"));
    }

    #[test]
    fn partition_text() {
        let row = |name: &str, d: &str| PartitionRow {
            name: name.into(),
            sub_name: None,
            method: "RANGE".into(),
            sub_method: None,
            expression: Some("year(`viewed_at`)".into()),
            sub_expression: None,
            description: Some(d.into()),
        };
        let s = partition_clause(&[row("p2022", "2023"), row("pmax", "MAXVALUE")]).unwrap();
        assert_eq!(
            s,
            "PARTITION BY RANGE (year(`viewed_at`))\n(PARTITION `p2022` VALUES LESS THAN (2023),\n PARTITION `pmax` VALUES LESS THAN MAXVALUE)"
        );
    }

    #[test]
    fn scrub_hides_the_password() {
        let s = Secret::new("hunter22");
        assert_eq!(scrub("bad hunter22 here", Some(&s)), "bad *** here");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(sql_string("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }
}
