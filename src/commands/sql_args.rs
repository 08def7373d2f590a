//! `barge migrate --sql`: the options, and planning the query against the
//! run's tables (see `transform`).

use std::sync::Arc;

use clap::Args;

use crate::cdc::Tables;
use crate::error::{Error, Result};
use crate::transform::{Reads, SqlQuery, SqlRun};

#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "SQL in flight")]
pub struct SqlArgs {
    /// A SELECT applied to every record or row on the way (PostgreSQL syntax): `SELECT … FROM records [AS output_table] WHERE …`, or FROM a database source's table (its rows in a full load, and its changes). Projections, AS, arithmetic (exact on decimals), comparisons, AND/OR/NOT, IS NULL, IN, LIKE, CASE, CAST/::, lower, upper, substring, concat/||, trim, length, replace, coalesce, date_trunc, extract, and JSON paths data->'a'->>'b'. Windows: GROUP BY keys, TUMBLE(event_time, INTERVAL '1' MINUTE) or HOP(event_time, INTERVAL slide, INTERVAL size) with count, sum, avg, min, max; window_start and window_end name the window. The output table is named by the FROM alias, else after the input table; its column types come from the SELECT. Rows failing WHERE are counted (the load's summary, barge status); a row the query cannot evaluate goes to rejects.jsonl with --on-error log, else stops the run. A database's full load reads every row of the table into its windows (none is late)
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
    /// The query as the library takes it (`None` without --sql).
    pub fn query(&self) -> Result<Option<SqlQuery>> {
        match &self.sql {
            Some(sql) => Ok(Some(SqlQuery { sql: sql.clone(), lateness_us: self.allowed_lateness })),
            None if self.allowed_lateness != 0 => Err(Error::usage("--allowed-lateness applies to --sql windows (GROUP BY … TUMBLE or HOP)")),
            None => Ok(None),
        }
    }

    /// Plans the query over the run's `tables` (records: the one table),
    /// and returns the tables the loop writes (the output table alone).
    pub fn plan(&self, tables: Tables, converter: &crate::cdc::evolve::Converter, records: bool, bounded: bool) -> Result<Option<(Tables, Arc<SqlRun>)>> {
        let Some(query) = self.query()? else { return Ok(None) };
        let reads = if records { Reads::Records } else { Reads::Changes };
        let (out, run) = query.plan(tables, converter, reads, bounded)?;
        if run.plan.windows().is_none() && self.allowed_lateness != 0 {
            crate::commands::output::warn("--allowed-lateness has no effect: the query has no window (GROUP BY … TUMBLE or HOP)");
        }
        crate::commands::output::info(run.describe());
        Ok(Some(([(out.source.name.clone(), out)].into_iter().collect(), run)))
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
