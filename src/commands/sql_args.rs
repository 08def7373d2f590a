//! `barge migrate --sql`: the options, and planning the query against the
//! run's tables (see `transform`).

use std::sync::Arc;

use clap::Args;

use crate::cdc::{TableInfo, Tables};
use crate::error::{Error, Result};
use crate::transform::{SqlPlan, SqlRun};

#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "SQL in flight")]
pub struct SqlArgs {
    /// A SELECT applied to every record or row on the way (PostgreSQL syntax): `SELECT … FROM records [AS output_table] WHERE …`, or FROM a database source's table (its changes, with --mode cdc). Projections, AS, arithmetic (exact on decimals), comparisons, AND/OR/NOT, IS NULL, IN, LIKE, CASE, CAST/::, lower, upper, substring, concat/||, trim, length, replace, coalesce, date_trunc, extract, and JSON paths data->'a'->>'b'. Windows: GROUP BY keys, TUMBLE(event_time, INTERVAL '1' MINUTE) or HOP(event_time, INTERVAL slide, INTERVAL size) with count, sum, avg, min, max; window_start and window_end name the window. The output table is named by the FROM alias, else after the input table; its column types come from the SELECT. Rows failing WHERE are counted (barge status); a row the query cannot evaluate goes to rejects.jsonl with --on-error log, else stops the run
    #[arg(long, value_name = "SELECT")]
    pub sql: Option<String>,
    /// How long after a window's end its records may still arrive (event time behind the newest seen): its rows are emitted once the newest event time passes the end by this much; later records are counted as late and written to rejects.jsonl. E.g. 30s, 5 minutes, 1h
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_lateness)]
    pub allowed_lateness: i64,
}

fn parse_lateness(s: &str) -> std::result::Result<i64, String> {
    let i = crate::transform::plan::parse_duration_words(s).ok_or_else(|| format!("`{s}` is not a duration; write e.g. 30s, 5 minutes or 1h"))?;
    if i.months != 0 || i.micros < 0 || i.days < 0 {
        return Err(format!("`{s}`: give a length of time in days, hours, minutes or seconds"));
    }
    Ok(i64::from(i.days) * 86_400_000_000 + i.micros)
}

impl SqlArgs {
    /// Plans the query over the run's `tables` (records: the one table),
    /// and returns the tables the loop writes (the output table alone).
    pub fn plan(&self, tables: Tables, converter: &crate::cdc::evolve::Converter, records: bool, bounded: bool) -> Result<Option<(Tables, Arc<SqlRun>)>> {
        let Some(sql) = &self.sql else {
            if self.allowed_lateness != 0 {
                return Err(Error::usage("--allowed-lateness applies to --sql windows (GROUP BY … TUMBLE or HOP)"));
            }
            return Ok(None);
        };
        let bad = |why: String| Error::usage(format!("--sql: {why}"));
        let input = if records {
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
        let names: &[&str] = if records { &["records"] } else { &[] };
        let plan = SqlPlan::new(sql, &input.source, names).map_err(bad)?;
        if plan.windows().is_some() && !records {
            return Err(bad("windows (TUMBLE, HOP) read streams: a database table's updates and deletes cannot be windowed".into()).with_hint("project and filter its changes with --sql, or window a stream of its rows (e.g. barge's Kafka target) in a second run"));
        }
        if plan.windows().is_none() && self.allowed_lateness != 0 {
            crate::commands::output::warn("--allowed-lateness has no effect: the query has no window (GROUP BY … TUMBLE or HOP)");
        }
        let out = plan.output.clone();
        let converted = converter.convert(&out, None).ok_or_else(|| bad(format!("the output table {} could not be planned for the target (does the mapping exclude it?)", out.name)))?;
        crate::commands::output::info(format!("--sql: {} → table {} ({})", input.source.name, out.name, out.columns.iter().map(|c| format!("{} {}", c.name, crate::transform::plan::type_name(&c.ty))).collect::<Vec<_>>().join(", ")));
        let info = TableInfo { key: crate::source::key_indexes(&out), source: out.clone(), target: converted.table, filter: None };
        let run = SqlRun::new(plan, input, self.allowed_lateness, bounded);
        Ok(Some(([(out.name.clone(), info)].into_iter().collect(), run)))
    }
}

/// The table a query's FROM names.
fn from_name(sql: &str) -> std::result::Result<crate::model::QualifiedName, String> {
    use sqlparser::ast::{SetExpr, Statement, TableFactor};
    let statements = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql).map_err(|e| format!("does not parse: {e}"))?;
    let Some(Statement::Query(q)) = statements.first() else { return Err("only a SELECT is allowed".into()) };
    let SetExpr::Select(s) = q.body.as_ref() else { return Err("only a plain SELECT is allowed".into()) };
    let Some(TableFactor::Table { name, .. }) = s.from.first().map(|f| &f.relation) else { return Err("FROM names one table".into()) };
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
    match parts.as_slice() {
        [t] => Ok(crate::model::QualifiedName::bare(t)),
        [s, t] => Ok(crate::model::QualifiedName::new(Some(s), t)),
        _ => Err(format!("FROM {name}: write FROM table or FROM schema.table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_reads_as_a_duration() {
        assert_eq!(parse_lateness("30s"), Ok(30_000_000));
        assert_eq!(parse_lateness("5 minutes"), Ok(300_000_000));
        assert!(parse_lateness("1 month").is_err());
        assert!(parse_lateness("later").is_err());
    }
}
