//! SQLite through sqlx. The catalog is SQLite's own DDL text
//! (`sqlite_master.sql`), so introspection reads it with the same script
//! reader `convert-schema` uses: a file and its `.schema` dump give the same
//! model.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use crate::endpoint::{Endpoint, Role, SqliteEndpoint};
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::reader;

pub struct LiteConn {
    pub conn: sqlx::SqliteConnection,
    pub display: String,
}

pub fn sqlx_error(display: &str, what: &str, e: sqlx::Error) -> Error {
    let hint = match &e {
        sqlx::Error::Database(db) if db.message().contains("locked") => {
            Some("another process holds the database; stop it or wait".to_string())
        }
        sqlx::Error::Database(db) if db.message().contains("readonly") => {
            Some("the file or its directory is not writable".to_string())
        }
        _ => None,
    };
    Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {what}"), hint }
}

impl LiteConn {
    pub async fn connect(ep: &SqliteEndpoint, role: Role) -> Result<LiteConn> {
        let opts = match &ep.path {
            None => SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| Error::other(e.to_string()))?,
            Some(path) => {
                if role == Role::Source && !path.exists() {
                    return Err(Error::Endpoint {
                        endpoint: ep.display.clone(),
                        message: format!("no such file: {}", path.display()),
                        hint: Some("check the path; a source database must already exist".into()),
                    });
                }
                let o = SqliteConnectOptions::new().filename(path).create_if_missing(role == Role::Target).busy_timeout(Duration::from_secs(30));
                if role == Role::Target {
                    // Bulk loading: the target is rebuilt from scratch if the
                    // run fails, so WAL and NORMAL sync are safe and fast.
                    o.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
                } else {
                    o
                }
            }
        };
        let conn = opts.foreign_keys(false).disable_statement_logging().connect().await.map_err(|e| Error::Endpoint {
            endpoint: ep.display.clone(),
            message: format!("cannot open: {e}"),
            hint: Some("check that the path exists and is a SQLite database".into()),
        })?;
        let mut me = LiteConn { conn, display: ep.display.clone() };
        // Reading a non-database file fails only at the first query.
        me.query_scalar("SELECT count(*) FROM sqlite_master").await.map_err(|e| match e {
            Error::Endpoint { endpoint, message, .. } => Error::Endpoint {
                endpoint,
                message,
                hint: Some("the file is not a SQLite database (or is encrypted)".into()),
            },
            other => other,
        })?;
        Ok(me)
    }

    async fn query_scalar(&mut self, sql: &str) -> Result<i64> {
        let row = sqlx::query(AssertSqlSafe(sql.to_string())).fetch_one(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, sql, e))?;
        row.try_get::<i64, _>(0).map_err(|e| sqlx_error(&self.display, sql, e))
    }

    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &super::excerpt(sql), e))?;
        Ok(())
    }

    /// Reads the catalog: the DDL text in `sqlite_master` through the DDL
    /// reader, then SQLite's own pragmas for what the text cannot tell or
    /// the reader could not read. A table SQLite holds is never left out:
    /// one whose CREATE TABLE the reader cannot parse (free-form type names
    /// such as `BLOB SUB_TYPE TEXT`, syntax it does not know) is rebuilt
    /// from `pragma table_xinfo`, `index_list`/`index_xinfo` and
    /// `foreign_key_list`, its types mapped by SQLite's affinity rules.
    pub async fn introspect(&mut self) -> Result<Schema> {
        let sql = "SELECT type, name, tbl_name, sql FROM sqlite_master \
                   WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'barge\\_%' ESCAPE '\\' \
                   ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid";
        let rows = sqlx::query(sql).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, sql, e))?;
        let mut entries: Vec<MasterRow> = Vec::with_capacity(rows.len());
        for r in &rows {
            let get = |i: usize| -> Result<String> { r.try_get::<String, _>(i).map_err(|e| sqlx_error(&self.display, sql, e)) };
            entries.push(MasterRow { kind: get(0)?, name: get(1)?, table: get(2)?, sql: get(3)? });
        }
        let mut script = String::new();
        for e in &entries {
            script.push_str(&e.sql);
            script.push_str(";\n");
        }
        let out = reader::read_script(&script, Dialect::Sqlite);
        let mut schema = out.schema;

        // Tables the reader could not use, from the pragmas.
        let mut rebuilt: Vec<String> = Vec::new();
        for e in entries.iter().filter(|e| e.kind == "table") {
            if schema.table(&QualifiedName::bare(&e.name)).is_none() && !is_virtual_table(&e.sql) {
                let t = self.table_from_pragmas(&e.name, &e.sql).await?;
                schema.tables.push(t);
                rebuilt.push(e.name.clone());
            }
        }
        for e in entries.iter().filter(|e| e.kind == "index" && rebuilt.iter().any(|t| t.eq_ignore_ascii_case(&e.table))) {
            let idx = match reader::parse_index_definition(&e.sql, Dialect::Sqlite) {
                Some((_, idx)) => idx,
                None => self.index_from_pragmas(&e.name).await?,
            };
            if let Some(t) = schema.table_mut(&QualifiedName::bare(&e.table)) {
                t.indexes.push(idx);
            }
        }
        // Keep sqlite_master's order (the order the tables were created).
        let order: Vec<&str> = entries.iter().filter(|e| e.kind == "table").map(|e| e.name.as_str()).collect();
        schema.tables.sort_by_key(|t| order.iter().position(|n| n.eq_ignore_ascii_case(&t.name.name)).unwrap_or(usize::MAX));

        // A single-column INTEGER primary key is the rowid, which numbers
        // itself, however the key was declared (column or table level).
        for t in schema.tables.iter_mut() {
            if t.options.without_rowid {
                continue;
            }
            let facts = self.table_xinfo(&t.name.name).await?;
            let pk: Vec<&XInfo> = facts.iter().filter(|c| c.pk > 0).collect();
            if let [only] = pk.as_slice() {
                if only.decl.trim().eq_ignore_ascii_case("integer") {
                    if let Some(c) = t.column_mut(&only.name) {
                        if c.identity.is_none() {
                            c.identity = Some(Identity { kind: IdentityKind::AutoIncrement, start: None, increment: None, sequence: None });
                        }
                        c.nullable = false;
                    }
                }
            }
        }

        // Views and triggers exactly as SQLite keeps them.
        for e in entries.iter().filter(|e| e.kind == "view") {
            if schema.views.iter().any(|v| v.name.name.eq_ignore_ascii_case(&e.name)) {
                continue;
            }
            schema.views.push(View {
                name: QualifiedName::bare(&e.name),
                columns: Vec::new(),
                query: SqlText::new(view_query(&e.sql).unwrap_or_else(|| e.sql.clone()), Dialect::Sqlite),
                materialized: false,
                comment: None,
                origin: Origin::default(),
            });
        }
        schema.routines.retain(|r| r.kind != RoutineKind::Trigger);
        for e in entries.iter().filter(|e| e.kind == "trigger") {
            schema.routines.push(Routine {
                kind: RoutineKind::Trigger,
                name: QualifiedName::bare(&e.name),
                table: Some(QualifiedName::bare(&e.table)),
                source: e.sql.clone(),
                origin: Origin::default(),
            });
        }

        // AUTOINCREMENT counters live in sqlite_sequence.
        // (The table exists only once some table uses AUTOINCREMENT.)
        if let Ok(seq) = sqlx::query("SELECT name, seq FROM sqlite_sequence").fetch_all(&mut self.conn).await {
            for r in seq {
                let (name, value): (String, i64) = (r.get(0), r.get(1));
                if let Some(t) = schema.table_mut(&QualifiedName::bare(&name)) {
                    for c in t.columns.iter_mut() {
                        if let Some(id) = c.identity.as_mut() {
                            id.start = Some(value as i128 + 1);
                        }
                    }
                }
            }
        }
        Ok(schema)
    }

    async fn table_xinfo(&mut self, table: &str) -> Result<Vec<XInfo>> {
        let sql = format!("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo({})", sql_string(table));
        let rows = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
        Ok(rows
            .iter()
            .map(|r| XInfo {
                name: r.try_get(0).unwrap_or_default(),
                decl: r.try_get::<Option<String>, _>(1).ok().flatten().unwrap_or_default(),
                not_null: r.try_get::<i64, _>(2).unwrap_or(0) != 0,
                default: r.try_get::<Option<String>, _>(3).ok().flatten(),
                pk: r.try_get(4).unwrap_or(0),
                hidden: r.try_get(5).unwrap_or(0),
            })
            .collect())
    }

    /// A table built from the pragmas alone. What they cannot say (check
    /// constraints, a generated column's expression) is kept in the
    /// table's comment-free model as plain columns; the DDL text is in the
    /// source for anyone who needs it.
    async fn table_from_pragmas(&mut self, name: &str, ddl: &str) -> Result<Table> {
        let mut t = Table::new(QualifiedName::bare(name));
        t.options.without_rowid = ddl.to_ascii_uppercase().split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["WITHOUT", "ROWID"]);
        let facts = self.table_xinfo(name).await?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        for f in &facts {
            // hidden = 1: a virtual table's hidden column, not data.
            if f.hidden == 1 {
                continue;
            }
            let mut c = Column::new(&f.name, affinity_type(&f.decl), &f.decl);
            c.nullable = !f.not_null;
            c.default = f.default.as_deref().map(|d| reader::parse_default(d, Dialect::Sqlite));
            if f.pk > 0 {
                pk.push((f.pk, f.name.clone()));
                c.nullable = false;
            }
            t.columns.push(c);
        }
        pk.sort();
        if !pk.is_empty() {
            t.primary_key = Some(Key { name: None, columns: pk.into_iter().map(|(_, n)| n).collect() });
        }
        // Unique constraints (origin 'u'); CREATE INDEX ones come with their DDL.
        let sql = format!("SELECT name, \"unique\", origin, partial FROM pragma_index_list({})", sql_string(name));
        let rows = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
        let uniques: Vec<String> = rows.iter().filter(|r| r.try_get::<String, _>(2).is_ok_and(|o| o == "u")).filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        for u in uniques {
            let idx = self.index_from_pragmas(&u).await?;
            let columns: Vec<String> = idx.parts.iter().filter_map(|p| match &p.key {
                IndexKey::Column(c) => Some(c.clone()),
                IndexKey::Expression(_) => None,
            }).collect();
            t.uniques.push(Key { name: None, columns });
        }
        // Foreign keys: one row per column, grouped by id.
        let sql = format!("SELECT id, seq, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list({}) ORDER BY id, seq", sql_string(name));
        let rows = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
        let mut last_id = -1i64;
        for r in rows {
            let id: i64 = r.try_get(0).unwrap_or(0);
            let from: String = r.try_get(3).unwrap_or_default();
            let to: Option<String> = r.try_get(4).ok().flatten();
            if id == last_id {
                if let Some(fk) = t.foreign_keys.last_mut() {
                    fk.columns.push(from);
                    fk.ref_columns.extend(to);
                }
                continue;
            }
            last_id = id;
            let action = |s: Option<String>| match s.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("CASCADE") => Some(RefAction::Cascade),
                Some("SET NULL") => Some(RefAction::SetNull),
                Some("SET DEFAULT") => Some(RefAction::SetDefault),
                Some("RESTRICT") => Some(RefAction::Restrict),
                _ => None,
            };
            t.foreign_keys.push(ForeignKey {
                name: None,
                columns: vec![from],
                ref_table: QualifiedName::bare(&r.try_get::<String, _>(2).unwrap_or_default()),
                ref_columns: to.into_iter().collect(),
                on_update: action(r.try_get(5).ok()),
                on_delete: action(r.try_get(6).ok()),
                deferrable: false,
                initially_deferred: false,
                validated: true,
                origin: Origin::default(),
            });
        }
        // A foreign key to the referenced table's primary key names no columns.
        for fk in t.foreign_keys.iter_mut().filter(|fk| fk.ref_columns.is_empty()) {
            let sql = format!("SELECT name FROM pragma_table_info({}) WHERE pk > 0 ORDER BY pk", sql_string(&fk.ref_table.name));
            if let Ok(rows) = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut self.conn).await {
                fk.ref_columns = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
            }
        }
        Ok(t)
    }

    async fn index_from_pragmas(&mut self, index: &str) -> Result<Index> {
        let sql = format!("SELECT name, \"desc\", key FROM pragma_index_xinfo({}) ORDER BY seqno", sql_string(index));
        let rows = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(&mut self.conn).await.map_err(|e| sqlx_error(&self.display, &sql, e))?;
        let unique_sql = format!("SELECT \"unique\" FROM pragma_index_list((SELECT tbl_name FROM sqlite_master WHERE name = {0})) WHERE name = {0}", sql_string(index));
        let unique = sqlx::query(AssertSqlSafe(unique_sql)).fetch_optional(&mut self.conn).await.ok().flatten().and_then(|r| r.try_get::<i64, _>(0).ok()).unwrap_or(0) != 0;
        let parts = rows
            .iter()
            .filter(|r| r.try_get::<i64, _>(2).unwrap_or(0) != 0)
            .filter_map(|r| {
                let name: Option<String> = r.try_get(0).ok().flatten();
                // An expression part has no name; its text is only in the DDL.
                Some(IndexPart { key: IndexKey::Column(name?), prefix_len: None, descending: r.try_get::<i64, _>(1).unwrap_or(0) != 0 })
            })
            .collect();
        Ok(Index { name: Some(index.to_string()), unique, parts, predicate: None, method: IndexMethod::Default, include: vec![], origin: Origin::default() })
    }

    pub async fn close(self) -> Result<()> {
        self.conn.close().await.map_err(|e| Error::other(e.to_string()))
    }
}

/// One `sqlite_master` row.
struct MasterRow {
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// One `pragma table_xinfo` row.
struct XInfo {
    name: String,
    decl: String,
    not_null: bool,
    default: Option<String>,
    pk: i64,
    /// 0 a column, 1 a virtual table's hidden column, 2 and 3 generated
    /// (virtual, stored).
    hidden: i64,
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `CREATE VIRTUAL TABLE` (FTS, R*Tree): its shadow tables hold the data
/// and it is rebuilt from its own statement, not copied as a table.
fn is_virtual_table(ddl: &str) -> bool {
    ddl.split_whitespace().take(3).map(str::to_ascii_uppercase).collect::<Vec<_>>().join(" ").starts_with("CREATE VIRTUAL")
}

/// The query of `CREATE VIEW v [(cols)] AS query`: the first `AS` word
/// after `VIEW` outside quotes and parentheses.
fn view_query(ddl: &str) -> Option<String> {
    let chars: Vec<(usize, char)> = ddl.char_indices().collect();
    let start = ddl.to_ascii_uppercase().find("VIEW")?;
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let is_word = |c: Option<&(usize, char)>| c.is_some_and(|(_, c)| c.is_alphanumeric() || *c == '_');
    for (k, &(i, c)) in chars.iter().enumerate().filter(|(_, (i, _))| *i >= start) {
        match (quote, c) {
            (Some(q), _) if c == q || (q == '[' && c == ']') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`' | '[') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, 'a' | 'A') if depth == 0 && matches!(chars.get(k + 1), Some((_, 's' | 'S'))) && !is_word(k.checked_sub(1).and_then(|p| chars.get(p))) && !is_word(chars.get(k + 2)) => {
                return Some(ddl[i + 2..].trim().trim_end_matches(';').trim().to_string());
            }
            _ => {}
        }
    }
    None
}

/// A declared type read as SQLite reads it: by affinity (the rules of
/// "Datatypes In SQLite", §3.1), refined where the name says more (a
/// length, a date, a decimal's scale).
pub fn affinity_type(decl: &str) -> ColumnType {
    use crate::schema::typetext;
    let upper = decl.to_ascii_uppercase();
    let known = typetext::recognize(Dialect::Sqlite, &typetext::parse(decl));
    let length = upper.split_once('(').and_then(|(_, rest)| rest.split([',', ')']).next()).and_then(|n| n.trim().parse::<u32>().ok());
    if upper.contains("INT") {
        return match known {
            ColumnType::Int { .. } | ColumnType::Bool => known,
            _ => ColumnType::int(64),
        };
    }
    if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        return match known {
            ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. } => known,
            _ if length.is_some() => ColumnType::Varchar { length, text: Default::default() },
            _ => ColumnType::text(),
        };
    }
    if upper.contains("BLOB") || upper.trim().is_empty() {
        return match known {
            ColumnType::Blob { .. } | ColumnType::Binary { .. } | ColumnType::Varbinary { .. } => known,
            _ if upper.trim().is_empty() => known,
            _ => ColumnType::Blob { size: LobSize::Long },
        };
    }
    if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        return match known {
            ColumnType::Float32 | ColumnType::Float64 => known,
            _ => ColumnType::Float64,
        };
    }
    match known {
        ColumnType::Other { .. } => ColumnType::Decimal { precision: None, scale: None },
        other => other,
    }
}

/// Who a SQLite database is: its file (path, inode, creation time).
pub fn identity(ep: &Endpoint) -> Result<super::Identity> {
    use super::Identity;
    use std::os::unix::fs::MetadataExt;
    let Endpoint::Sqlite(e) = ep else { return Ok(Identity::Other { url: ep.to_string() }) };
    let Some(path) = &e.path else { return Ok(Identity::Other { url: ep.to_string() }) };
    let meta = std::fs::metadata(path).map_err(|source| Error::Read { path: path.clone(), source })?;
    let created = meta.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos() as u64);
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    Ok(Identity::Sqlite { path: canonical.display().to_string(), inode: meta.ino(), created })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_of_free_form_types() {
        assert_eq!(affinity_type("UNSIGNED BIG INT"), ColumnType::int(64));
        assert!(matches!(affinity_type("BLOB SUB_TYPE TEXT"), ColumnType::Text { .. }), "TEXT wins over BLOB, as in SQLite");
        assert!(matches!(affinity_type("VARYING CHARACTER(255)"), ColumnType::Varchar { length: Some(255), .. }));
        assert!(matches!(affinity_type("BLOB SUB_TYPE 0"), ColumnType::Blob { .. }));
        assert_eq!(affinity_type("DOUBLE PRECISION"), ColumnType::Float64);
        assert!(matches!(affinity_type("DECIMAL(10,5)"), ColumnType::Decimal { precision: Some(10), scale: Some(5) }));
        assert!(matches!(affinity_type("WHATEVER THING"), ColumnType::Decimal { precision: None, .. }));
    }

    #[test]
    fn view_query_after_as() {
        assert_eq!(view_query("CREATE VIEW v(a, b) AS SELECT 1, 2").as_deref(), Some("SELECT 1, 2"));
        assert_eq!(view_query("CREATE VIEW \"has as\" AS\nSELECT x AS y FROM t;").as_deref(), Some("SELECT x AS y FROM t"));
    }
}

