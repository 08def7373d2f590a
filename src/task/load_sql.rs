//! `--sql` over a database's full load: the load plan reshaped so the
//! query's input table is read and its output table is written.
//!
//! The one job left reads every column of the input table in the
//! table's order (the order the query was planned on, as its changes
//! arrive), and writes the output table: its columns, types and key come
//! from the SELECT, and the target gets it as it would get a source table
//! of that shape (the same names the change capture plans for it, so a
//! full-load-and-cdc run writes one table). Rows pass
//! through [`crate::transform::rows::stage`] on their way (see
//! [`super::load`]'s `load_chunk_from`). The query reads one table: the
//! other selected tables are named on the console and not loaded, as
//! their changes are not applied.
//!
//! Chunks: into a database, a chunk loaded again first deletes its key
//! range on the target, which needs the chunk key among the output
//! columns as it is; otherwise the table is one chunk. Files and streams
//! rewrite a chunk by its name or record ids, so they keep the chunks. A
//! windowed query needs every row in one place: one chunk.

use std::borrow::Cow;
use std::sync::Arc;

use super::load::{plan_from, read_expr, Job, LoadOptions, Planned};
use crate::cdc::{TableInfo, Tables};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema};
use crate::schema::naming::quote_ident;
use crate::transform::plan::Shape;
use crate::transform::{Reads, SqlQuery, SqlRun};

/// `planned` with the query's input job alone, writing its output table.
pub(crate) fn reshape(planned: Planned, query: &SqlQuery, input_name: &str, dst: &Endpoint, opts: &LoadOptions) -> Result<Planned> {
    let Planned { copts, mut jobs, .. } = planned;
    let tables: Tables = jobs
        .iter()
        .map(|j| (j.source.name.clone(), TableInfo { source: j.source.clone(), target: j.target.clone(), key: crate::source::key_indexes(&j.source), filter: None }))
        .collect();
    let converter = crate::cdc::evolve::Converter { convert: copts.clone(), mapping: opts.mapping.clone() };
    let (_, run) = query.plan(tables, &converter, Reads::Rows { then_changes: opts.capture.is_some() }, true)?;
    let at = jobs.iter().position(|j| j.source.name == run.input.source.name).ok_or_else(|| Error::other(format!("--sql: {} has no rows to load", run.input.source.name)))?;
    let mut job = jobs.swap_remove(at);
    if !jobs.is_empty() {
        let mut left: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
        left.sort();
        tracing::warn!("--sql reads {} only: {} other selected table(s) are not loaded: {} (select the one table with --tables)", run.input.source.name, left.len(), left.join(", "));
    }
    tracing::info!("{}", run.describe());
    if query.lateness_us != 0 {
        tracing::warn!("--allowed-lateness has no effect on a full load: every row of the table is in its windows");
    }

    // The output table, planned as a table of the source: the target
    // gets it as it would get a source table of that shape.
    let out = Schema { dialect: Some(copts.source), tables: vec![run.plan.output.clone()], ..Default::default() };
    let plain = LoadOptions { capture: None, sql: None, ..opts.clone() };
    let mut reshaped = plan_from(out.clone(), out, input_name, dst, &plain)?;
    let written = reshaped.jobs.pop().ok_or_else(|| Error::usage(format!("--sql: the mapping leaves out the output table {}", run.plan.output.name)))?;
    if written.write.columns.len() != run.plan.output.columns.len() {
        return Err(Error::usage(format!("--sql: the mapping removes columns of the output table {}", run.plan.output.name)).with_hint("leave them out of the SELECT instead"));
    }

    // Every column of the input, in the table's order.
    let source = copts.source;
    let (read_cols, read_types) = job.source.columns.iter().map(|c| read_expr(source, &super::load::quote_source(source, &c.name), &c.ty)).unzip();
    job.read_cols = read_cols;
    job.read_types = read_types;
    job.passthrough_binary = false;
    job.chunk_key_target = kept_chunk_key(&job, &run, &written, source, reshaped.copts.target);
    let one_chunk = run.plan.windows().is_some() || (dst.kind().is_database() && job.chunk_key_target.is_none());
    if one_chunk {
        job.chunk_key = None;
        job.chunk_key_target = None;
    }
    job.target = written.target;
    job.write = written.write;
    job.sql = Some(run);
    reshaped.jobs = vec![job];
    Ok(reshaped)
}

/// The output column that is the input's chunk key, selected as it is
/// (quoted for the target), if there is one.
fn kept_chunk_key(job: &Job, run: &SqlRun, written: &Job, source: Dialect, target: Dialect) -> Option<String> {
    let Shape::Rows { columns, .. } = &run.plan.shape else { return None };
    let quoted = job.chunk_key.as_ref()?;
    let i = job.source.columns.iter().position(|c| super::load::quote_source(source, &c.name) == *quoted)?;
    let o = columns.iter().position(|e| matches!(e, crate::transform::expr::Expr::Column(j) if *j == i))?;
    Some(quote_ident(target, &written.write.columns.get(o)?.name))
}

/// The tables change capture starts on: the query's input, not its
/// output, when the load goes through --sql.
pub(crate) fn read_schema<'s>(schema: &'s Schema, jobs: &[Job]) -> Cow<'s, Schema> {
    if !jobs.iter().any(|j| j.sql.is_some()) {
        return Cow::Borrowed(schema);
    }
    Cow::Owned(Schema { dialect: schema.dialect, tables: jobs.iter().map(|j| j.source.clone()).collect(), ..Default::default() })
}

/// How the rows of a `--sql` job reach its destination: the output table.
pub(crate) fn output_info(job: &Job) -> Option<TableInfo> {
    let run: &Arc<SqlRun> = job.sql.as_ref()?;
    Some(TableInfo { source: run.plan.output.clone(), target: job.target.clone(), key: job.write.key.clone(), filter: None })
}
