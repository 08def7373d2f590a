//! `--sql` as a run takes it: the text and the lateness, planned over the
//! run's tables into the output table and the [`SqlRun`] every path
//! (records, changes, a database's full load) applies.

use std::sync::Arc;

use super::{SqlPlan, SqlRun};
use crate::cdc::{TableInfo, Tables};
use crate::error::{Error, Result};
use crate::model::QualifiedName;

/// `--sql` and `--allowed-lateness`.
#[derive(Debug, Clone)]
pub struct SqlQuery {
    pub sql: String,
    /// In microseconds.
    pub lateness_us: i64,
}

/// What the query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A record source's one table (FROM `records` or its name).
    Records,
    /// A database table's changes.
    Changes,
    /// A database table's rows, in a full load: a bounded set, so windows
    /// hold every row (none is late) and close at the end. `then_changes`:
    /// the changes follow (full-load-and-cdc), which windows cannot take.
    Rows { then_changes: bool },
}

impl SqlQuery {
    /// Plans the query over `tables`: the output table (as the target
    /// gets it) and the run.
    pub fn plan(&self, tables: Tables, converter: &crate::cdc::evolve::Converter, reads: Reads, bounded: bool) -> Result<(TableInfo, Arc<SqlRun>)> {
        let sql = &self.sql;
        let bad = |why: String| Error::usage(format!("--sql: {why}"));
        let input = if reads == Reads::Records {
            tables.into_values().next().ok_or_else(|| bad("the run has no table".into()))?
        } else {
            let wanted = from_name(sql).map_err(bad)?;
            let mut found: Vec<TableInfo> = tables.into_values().filter(|i| i.source.name.name.eq_ignore_ascii_case(&wanted.name) && wanted.schema.as_ref().is_none_or(|s| i.source.name.schema.as_ref().is_some_and(|x| x.eq_ignore_ascii_case(s)))).collect();
            match found.len() {
                1 => found.remove(0),
                0 => return Err(bad(format!("FROM {wanted}: no such table among the ones this run selects (see --tables)"))),
                _ => return Err(bad(format!("FROM {wanted}: several schemas have that table; write FROM schema.table"))),
            }
        };
        let names: &[&str] = if reads == Reads::Records { &["records"] } else { &[] };
        let plan = SqlPlan::new(sql, &input.source, names).map_err(bad)?;
        let lateness_us = match reads {
            Reads::Changes | Reads::Rows { then_changes: true } if plan.windows().is_some() => {
                return Err(bad("windows (TUMBLE, HOP) read streams: a database table's updates and deletes cannot be windowed".into())
                    .with_hint("window a full load alone (--mode full-load), project and filter the changes with --sql, or window a stream of the table's rows (e.g. barge's Kafka target) in a second run"));
            }
            // Every row of a table is in its windows: the rows come in
            // key order, not in event time, so none is late.
            Reads::Rows { .. } => i64::MAX,
            _ => self.lateness_us,
        };
        let out = plan.output.clone();
        let converted = converter.convert(&out, None).ok_or_else(|| bad(format!("the output table {} could not be planned for the target (does the mapping exclude it?)", out.name)))?;
        let info = TableInfo { key: crate::source::key_indexes(&out), source: out, target: converted.table, filter: None };
        Ok((info, SqlRun::new(plan, input, lateness_us, bounded)))
    }
}

/// The table a query's FROM names.
fn from_name(sql: &str) -> std::result::Result<QualifiedName, String> {
    use sqlparser::ast::{SetExpr, Statement, TableFactor};
    let statements = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql).map_err(|e| format!("does not parse: {e}"))?;
    let Some(Statement::Query(q)) = statements.first() else { return Err("only a SELECT is allowed".into()) };
    let SetExpr::Select(s) = q.body.as_ref() else { return Err("only a plain SELECT is allowed".into()) };
    let Some(TableFactor::Table { name, .. }) = s.from.first().map(|f| &f.relation) else { return Err("FROM names one table".into()) };
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
    match parts.as_slice() {
        [t] => Ok(QualifiedName::bare(t)),
        [s, t] => Ok(QualifiedName::new(Some(s), t)),
        _ => Err(format!("FROM {name}: write FROM table or FROM schema.table")),
    }
}
