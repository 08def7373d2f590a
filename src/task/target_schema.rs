//! The target side of a load, before and after the rows: creating (or
//! emptying) the tables from the converted schema, then building keys,
//! indexes, foreign keys and moving identity counters past the data.
//! `migrate` (full load) and `unpack` to a database both use it, so a
//! table lands the same way whichever path brought its rows.

use crate::db::Db;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::schema::convert::Converted;
use crate::schema::ddl;
use crate::schema::naming::{quote_ident, NamePlan};
use crate::schema::target::TargetTable;

/// What to do with the target's tables before loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaMode {
    /// Create the tables; refuse if one already exists.
    Create,
    /// Empty existing tables, then load.
    Truncate,
    /// Load into existing tables as they are.
    Append,
    /// Leave tables that already exist alone; create and load the others.
    Skip,
}

impl SchemaMode {
    /// Does this mode create tables (and so their keys and indexes)?
    pub fn creates(self) -> bool {
        matches!(self, SchemaMode::Create | SchemaMode::Skip)
    }
}

/// The dialect of a database endpoint.
pub fn target_dialect(dst: &Endpoint) -> Result<Dialect> {
    Ok(match dst {
        Endpoint::Postgres(_) => Dialect::Postgres,
        Endpoint::Mysql(_) => Dialect::Mysql,
        Endpoint::Sqlite(_) => Dialect::Sqlite,
        other => return Err(Error::NotImplemented { command: if matches!(other, Endpoint::S3(_) | Endpoint::Dir(_)) { "migrate to object storage" } else { "migrate to a stream" } }),
    })
}

/// PostgreSQL loads fastest into tables without keys: they are added
/// after the rows. Elsewhere keys are part of CREATE TABLE (SQLite cannot
/// add a primary key later).
pub fn defers_keys(target: Dialect) -> bool {
    target == Dialect::Postgres
}

pub fn is_already_exists(e: &Error) -> bool {
    let t = e.to_string().to_ascii_lowercase();
    t.contains("already exists") || t.contains("duplicate")
}

fn missing_table_hint(e: Error, table: &str) -> Error {
    match e {
        Error::Endpoint { endpoint, message, .. } if message.to_ascii_lowercase().contains("exist") => Error::Endpoint {
            endpoint,
            message,
            hint: Some(format!("{table} is not on the target: use --target-schema create (the default) to create it")),
        },
        other => other,
    }
}

/// The quoted names of `tables` that already exist on the target.
pub async fn existing_tables(conn: &mut Db, tables: &[&TargetTable]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let present = conn.introspect().await?;
    for t in tables {
        let name = crate::model::QualifiedName {
            schema: if t.name.len() > 1 { Some(t.name[0].clone()) } else { None },
            name: t.name.last().cloned().unwrap_or_default(),
        };
        let hit = present.tables.iter().any(|p| {
            p.name.name == name.name
                && match (&p.name.schema, &name.schema) {
                    (Some(a), Some(b)) => a == b,
                    (Some(a), None) => a == "public" || conn.dialect() != Dialect::Postgres,
                    _ => true,
                }
        });
        if hit {
            out.push(t.sql_name.clone());
        }
    }
    Ok(out)
}

/// Makes `tables` ready to load as `mode` says: creates them (keys
/// deferred on PostgreSQL), or empties them, or leaves them. Returns the
/// quoted names of tables that already existed and are left alone
/// (`skip`): they are not loaded.
pub async fn prepare(conn: &mut Db, dst: &Endpoint, converted: &Converted, tables: &[&TargetTable], mode: SchemaMode) -> Result<Vec<String>> {
    let target = converted.target.target;
    let existing = existing_tables(conn, tables).await?;
    let mut skipped = Vec::new();
    match mode {
        SchemaMode::Create | SchemaMode::Skip => {
            if mode == SchemaMode::Create {
                if let Some(t) = existing.first() {
                    return Err(Error::Endpoint {
                        endpoint: dst.to_string(),
                        message: format!("table {t} already exists"),
                        hint: Some("use --target-schema truncate (empty it), append (load into it) or skip (leave it), or drop it first".into()),
                    });
                }
            }
            // Prelude objects may exist from an earlier partial run.
            for stmt in &ddl::phases(&converted.target, &converted.names).prelude {
                if let Err(e) = conn.execute(stmt).await {
                    if !is_already_exists(&e) {
                        return Err(e);
                    }
                }
            }
            for t in tables {
                if existing.contains(&t.sql_name) {
                    skipped.push(t.sql_name.clone());
                    continue;
                }
                conn.execute(&ddl::create_table_sql_with(target, &converted.names, t, !defers_keys(target))).await?;
            }
        }
        SchemaMode::Truncate => {
            for t in tables {
                let sql = match target {
                    Dialect::Sqlite => format!("DELETE FROM {}", t.sql_name),
                    Dialect::Mysql => format!("TRUNCATE TABLE {}", t.sql_name),
                    _ => format!("TRUNCATE TABLE {} CASCADE", t.sql_name),
                };
                if target == Dialect::Mysql {
                    conn.execute("SET FOREIGN_KEY_CHECKS = 0").await?;
                }
                conn.execute(&sql).await.map_err(|e| missing_table_hint(e, &t.sql_name))?;
            }
        }
        SchemaMode::Append => {}
    }
    Ok(skipped)
}

/// What finishes `loaded` tables once their rows are in, in order: keys
/// (where deferred), indexes, foreign keys, triggers and comments (for
/// tables this run created), then identity counters past the data.
pub fn post_statements(converted: &Converted, loaded: &[&TargetTable], mode: SchemaMode) -> Vec<String> {
    let target = converted.target.target;
    let names = &converted.names;
    let mut post = Vec::new();
    if mode.creates() {
        if defers_keys(target) {
            for t in loaded {
                post.extend(ddl::add_keys_sql(target, names, t));
            }
        }
        let phases = ddl::phases(&converted.target, names);
        let on_loaded = |stmt: &String| {
            loaded.iter().any(|t| {
                stmt.contains(&format!(" ON {} ", t.sql_name)) || stmt.contains(&format!("ALTER TABLE {} ", t.sql_name)) || stmt.contains(&format!(" ON {}(", t.sql_name))
            })
        };
        post.extend(phases.indexes.iter().filter(|s| on_loaded(s)).cloned());
        post.extend(phases.foreign_keys.iter().filter(|s| on_loaded(s)).cloned());
        post.extend(phases.triggers.iter().cloned());
        post.extend(phases.comments.iter().cloned());
    }
    for t in loaded {
        post.extend(identity_reset(target, names, t));
    }
    post
}

/// Fresh statistics for the planner after a bulk load (PostgreSQL only;
/// a failure is not worth stopping for).
pub async fn analyze(conn: &mut Db) {
    if conn.dialect() == Dialect::Postgres {
        let _ = conn.execute("ANALYZE").await;
    }
}

/// Statements that move identity counters past the loaded rows.
fn identity_reset(target: Dialect, names: &NamePlan, t: &TargetTable) -> Vec<String> {
    let _ = names;
    let mut out = Vec::new();
    if target != Dialect::Postgres {
        // MySQL and SQLite advance AUTO_INCREMENT past explicit ids themselves.
        return out;
    }
    for c in t.columns.iter().filter(|c| c.identity.is_some()) {
        let col = quote_ident(target, &c.name);
        let start = c.identity.as_ref().and_then(|i| i.start).unwrap_or(1);
        let table_lit = ddl::string_literal(target, &t.sql_name);
        let col_lit = ddl::string_literal(target, &c.name);
        out.push(format!(
            "SELECT setval(pg_get_serial_sequence({table_lit}, {col_lit}), GREATEST(COALESCE((SELECT MAX({col}) FROM {}), 0) + 1, {start}), false);",
            t.sql_name
        ));
    }
    out
}
