//! Validation: are the source and target tables equal? Every selected
//! source table is checked; one the target lacks is a difference, as is a
//! column it lacks.
//!
//! Between two PostgreSQL or two MySQL servers, each server first sums the
//! hashes of its own rows, so equal tables never leave them; a differing
//! range is split on the integer key until it is small. Otherwise (and for
//! the small ranges) both sides are read at once through barge's decoders,
//! in key order, and walked side by side ([`merge`]), comparing values in
//! a canonical form that ignores representation (1 = true, "1.50" = "1.5",
//! a timestamp and its UTC instant). Tables without a key, and keys an
//! engine cannot sort the way barge compares, are compared by hash buckets
//! instead ([`buckets`]). Memory stays flat either way.

mod buckets;
pub mod canon;
pub mod leased;
mod merge;
mod rows;
mod side;

use std::sync::Arc;

use canon::{comparison_type, KeyOrder, Normalizer};
use rows::{Findings, Plan};
use side::Side;

use super::mapping::Mapping;
use super::state::KeyRange;
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::Result;
use crate::model::{ColumnType, Dialect, QualifiedName, Schema, Table};
use crate::progress::{Progress, Unit};
use crate::schema::naming::{NamePlan, NamingOptions};

/// Ranges narrower than this many rows are compared row by row.
const LEAF_ROWS: u64 = 2_000;
/// Ranges compared row by row before a server-side check gives up narrowing.
const MAX_LEAVES: usize = 50;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TableCheck {
    pub source: String,
    /// The table's name on the target (as mapped and re-cased).
    pub target: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// `server` or `client`: where checksums were computed; `none` for a
    /// table the target does not have.
    pub method: String,
    pub equal: bool,
    /// The target has no such table.
    pub missing_table: bool,
    /// Source columns the target table does not have.
    pub missing_columns: Vec<String>,
    /// Rows found missing, extra and changed (the first keys of each are
    /// listed below).
    pub missing_rows: u64,
    pub extra_rows: u64,
    pub changed_rows: u64,
    pub missing_on_target: Vec<String>,
    pub extra_on_target: Vec<String>,
    pub different: Vec<String>,
    pub note: Option<String>,
}

impl TableCheck {
    /// The name shown: the target's, and the source's where it differs by
    /// more than case or schema.
    pub fn label(&self) -> String {
        let bare = |s: &str| s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
        if bare(&self.source) == bare(&self.target) {
            self.target.clone()
        } else {
            format!("{} (from {})", self.target, self.source)
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidationReport {
    pub tables: Vec<TableCheck>,
}

impl ValidationReport {
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|t| t.equal)
    }

    /// The tables that differ and how, in one line for the final error.
    pub fn summary(&self) -> String {
        let what: Vec<String> = self
            .tables
            .iter()
            .filter(|t| !t.equal)
            .map(|t| {
                let why = if t.missing_table {
                    "missing on the target".to_string()
                } else if !t.missing_columns.is_empty() {
                    format!("{} column(s) missing on the target", t.missing_columns.len())
                } else {
                    let n = t.missing_rows + t.extra_rows + t.changed_rows;
                    if n > 0 { format!("{n} row(s) differ") } else { "checksums differ".to_string() }
                };
                format!("{} ({why})", t.label())
            })
            .collect();
        let shown = what.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        let more = if what.len() > 10 { format!(" and {} more", what.len() - 10) } else { String::new() };
        format!("validation found differences in {} of {} table(s): {shown}{more}", what.len(), self.tables.len())
    }

}

/// A source table and where it should be on the target.
struct Pair {
    source: Table,
    /// The target's table, or the name it should have had.
    target: std::result::Result<Table, QualifiedName>,
    /// Source column, target column, their types; in order.
    columns: Vec<(String, String, ColumnType, ColumnType)>,
    missing_columns: Vec<String>,
    /// Positions (in `columns`) of the key, when the table has one.
    key: Vec<usize>,
    /// The first key column, when it is an integer: ranges split on it.
    int_key: Option<usize>,
    filter: Option<String>,
}

/// Compares every table `mapping` selects from `src` with its copy on
/// `dst`, named as `naming` and the mapping's rules name it.
pub async fn run(src: &Endpoint, dst: &Endpoint, mapping: &Mapping, naming: &NamingOptions, progress: Arc<dyn Progress>) -> Result<ValidationReport> {
    let (s, d) = tokio::join!(Db::connect(src, Role::Source), Db::connect(dst, Role::Target));
    let (mut s, mut d) = (s?, d?);
    let mut source_schema = mapping.select_some(&s.introspect().await?, src)?;
    // Partitions and inheritance children as the load shaped them.
    super::shape::for_validation(&mut source_schema, d.dialect());
    let target_schema = d.introspect().await?;
    let pairs = pair_tables(&source_schema, &target_schema, d.dialect(), mapping, naming)?;
    let mut out = Vec::new();
    let overall = if pairs.len() > 1 { progress.overall("validated tables", Some(pairs.len() as u64), Unit::Items) } else { crate::progress::Silent.task("", None, Unit::Items) };
    for p in pairs {
        let (check, s2, d2) = check_table(s, d, &p, KeyRange::ALL, progress.as_ref()).await?;
        (s, d) = (s2, d2);
        out.push(check);
        overall.inc(1);
    }
    overall.finish("");
    Ok(ValidationReport { tables: out })
}

fn pair_tables(source: &Schema, target: &Schema, target_dialect: Dialect, mapping: &Mapping, naming: &NamingOptions) -> Result<Vec<Pair>> {
    let mut plan = NamePlan::build(source, target_dialect, naming);
    mapping.apply_names(source, &mut plan);
    let mut pairs = Vec::new();
    for t in &source.tables {
        let parts = plan.relation(&t.name);
        let want = QualifiedName { schema: if parts.len() > 1 { Some(parts[0].clone()) } else { None }, name: parts.last().cloned().unwrap_or_default() };
        let schema_fits = |x: &Table| want.schema.is_none() || x.name.schema.as_deref().is_none_or(|s| want.schema.as_deref().is_some_and(|w| w.eq_ignore_ascii_case(s)));
        // The exact name first: `--identifiers preserve` may leave two
        // tables that differ only in case.
        let found = target
            .tables
            .iter()
            .find(|x| x.name.name == want.name && schema_fits(x))
            .or_else(|| target.tables.iter().find(|x| x.name.name.eq_ignore_ascii_case(&want.name) && schema_fits(x)));
        let filter = mapping.filter_sql(t, source.dialect.unwrap_or(Dialect::Postgres))?;
        let Some(tt) = found else {
            pairs.push(Pair { source: t.clone(), target: Err(want), columns: vec![], missing_columns: vec![], key: vec![], int_key: None, filter });
            continue;
        };
        let mut columns = Vec::new();
        let mut missing_columns = Vec::new();
        for c in &t.columns {
            let tn = plan.column(&t.name, &c.name);
            let tc = tt.columns.iter().find(|x| x.name == tn).or_else(|| tt.column(&tn));
            match tc {
                Some(tc) if tc.generated.is_some() || c.generated.is_some() => {}
                Some(tc) => columns.push((c.name.clone(), tc.name.clone(), c.ty.clone(), tc.ty.clone())),
                None if c.generated.is_some() => {}
                None => missing_columns.push(c.name.clone()),
            }
        }
        let key_names = crate::source::key_columns(t, crate::source::KeyChoice::PrimaryOrUnique);
        let key: Vec<usize> = crate::source::key_positions(&key_names, columns.iter().map(|(s, ..)| s.as_str())).unwrap_or_default();
        let int_key = key.first().copied().filter(|&i| columns[i].2.is_integer() && t.primary_key.is_some());
        pairs.push(Pair { source: t.clone(), target: Ok(tt.clone()), columns, missing_columns, key, int_key, filter });
    }
    Ok(pairs)
}

fn quote(d: Dialect, n: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{}`", n.replace('`', "``")),
        _ => format!("\"{}\"", n.replace('"', "\"\"")),
    }
}

fn table_sql(d: Dialect, t: &QualifiedName) -> String {
    match (&t.schema, d) {
        (Some(s), Dialect::Postgres) => format!("{}.{}", quote(d, s), quote(d, &t.name)),
        _ => quote(d, &t.name),
    }
}

/// Compares one pair of tables, or the rows of `range` of their integer
/// key (a shared validation's unit; [`KeyRange::ALL`] otherwise). The
/// connections go into the two sides (and from there to the tasks that
/// read) and come back when it is done.
async fn check_table(s: Db, d: Db, p: &Pair, range: KeyRange, progress: &dyn Progress) -> Result<(TableCheck, Db, Db)> {
    let (sd, dd) = (s.dialect(), d.dialect());
    let mut check = TableCheck { source: p.source.name.to_string(), equal: true, missing_columns: p.missing_columns.clone(), ..Default::default() };
    let read = |dialect: Dialect, name: &str, ty: &ColumnType| super::load::read_expr(dialect, &quote(dialect, name), ty);
    let source_types: Vec<ColumnType> = p.columns.iter().map(|(c, _, t, _)| read(sd, c, t).1).collect();
    let mut src = Side {
        table: table_sql(sd, &p.source.name),
        label: p.source.name.to_string(),
        columns: p.columns.iter().map(|(c, _, t, _)| read(sd, c, t).0).collect(),
        types: source_types.clone(),
        order: None,
        int_key: p.int_key.map(|i| quote(sd, &p.columns[i].0)),
        filter: p.filter.clone(),
        capped: true,
        db: Some(s),
    };
    let tt = match &p.target {
        Ok(t) => t,
        Err(want) => {
            check.target = want.to_string();
            check.method = "none".into();
            check.equal = false;
            check.missing_table = true;
            check.source_rows = src.count().await?;
            check.note = Some("the table is not on the target: it was not created, or was dropped".into());
            return Ok((check, src.into_db()?, d));
        }
    };
    check.target = tt.name.to_string();
    let task = progress.task(&check.target, None, Unit::Rows);
    // The target is read with the source's type where it only has text.
    let target_types: Vec<ColumnType> = p.columns.iter().zip(&source_types).map(|((_, c, _, t), st)| comparison_type(st, &read(dd, c, t).1)).collect();
    let orders: Vec<KeyOrder> = p.key.iter().map(|&i| KeyOrder::of(&source_types[i])).collect();
    let order_of = |dialect: Dialect, names: &dyn Fn(usize) -> String, types: &dyn Fn(usize) -> ColumnType| -> Option<Vec<String>> {
        p.key.iter().zip(&orders).map(|(&i, o)| o.sql(dialect, &quote(dialect, &names(i)), &types(i))).collect::<Option<Vec<_>>>().filter(|v| !v.is_empty())
    };
    src.order = order_of(sd, &|i| p.columns[i].0.clone(), &|i| p.columns[i].2.clone());
    let mut dst = Side {
        table: table_sql(dd, &tt.name),
        label: tt.name.to_string(),
        columns: p.columns.iter().map(|(_, c, _, t)| read(dd, c, t).0).collect(),
        types: target_types,
        order: order_of(dd, &|i| p.columns[i].1.clone(), &|i| p.columns[i].3.clone()),
        int_key: p.int_key.map(|i| quote(dd, &p.columns[i].1)),
        // The filter is in the source's SQL; the target holds only filtered rows.
        filter: None,
        capped: false,
        db: Some(d),
    };
    let scales: Vec<Option<u32>> = p.columns.iter().map(|(_, _, _, t)| match t {
        ColumnType::Decimal { scale, .. } => *scale,
        _ => None,
    }).collect();
    let fixed: Vec<bool> = p.columns.iter().map(|(_, _, s, t)| matches!(s, ColumnType::Char { .. }) || matches!(t, ColumnType::Char { .. })).collect();
    let plan = Plan {
        names: p.columns.iter().map(|(c, ..)| c.clone()).collect(),
        key: p.key.clone(),
        source: Normalizer { coerce: p.columns.iter().map(|(_, _, _, t)| Some(t.clone())).collect(), fixed: fixed.clone(), scales: scales.clone() },
        target: Normalizer { coerce: vec![None; p.columns.len()], fixed, scales },
    };

    let server = sd == dd && sd != Dialect::Sqlite;
    let mut done = false;
    if server {
        check.method = "server".into();
        let (a, b) = tokio::join!(src.server_sum(range), dst.server_sum(range));
        let (a, b) = (a?, b?);
        check.source_rows = a.0;
        check.target_rows = b.0;
        if a == b {
            // The servers' checksums covered every row.
            task.inc(a.0);
            done = true;
        } else if let Some((found, note)) = narrow(&mut src, &mut dst, &plan, range, task.as_ref()).await? {
            apply(&mut check, found, note);
            check.source_rows = a.0;
            check.target_rows = b.0;
            done = true;
        }
        // Otherwise the servers print some value differently while the
        // rows are equal as barge compares them: compare on the client.
    }
    if !done {
        check.method = "client".into();
        let (found, note) = client_compare(&mut src, &mut dst, &plan, range, task.as_ref()).await?;
        apply(&mut check, found, note);
    }
    if !check.missing_columns.is_empty() {
        check.equal = false;
    }
    task.finish(if check.equal { "equal" } else { "DIFFERENT" });
    if !check.equal && check.note.is_none() && !p.key.is_empty() && (check.missing_rows + check.extra_rows + check.changed_rows) > 0 {
        let names: Vec<&str> = p.key.iter().map(|&i| p.columns[i].0.as_str()).collect();
        check.note = Some(format!("keys shown are ({})", names.join(", ")));
    }
    Ok((check, src.into_db()?, dst.into_db()?))
}

fn apply(check: &mut TableCheck, f: Findings, note: Option<String>) {
    check.source_rows = f.source_rows;
    check.target_rows = f.target_rows;
    check.equal = !f.any();
    check.missing_rows = f.missing_rows;
    check.extra_rows = f.extra_rows;
    check.changed_rows = f.changed_rows;
    check.missing_on_target = f.missing;
    check.extra_on_target = f.extra;
    check.different = f.changed;
    check.note = note;
}

/// Both sides read through barge: in key order where both engines can
/// sort the key as barge compares it, else by hash buckets.
async fn client_compare(src: &mut Side, dst: &mut Side, plan: &Plan, range: KeyRange, task: &dyn crate::progress::Task) -> Result<(Findings, Option<String>)> {
    if !plan.key.is_empty() && src.order.is_some() && dst.order.is_some() {
        match merge::merge(src, dst, range, plan, task).await? {
            merge::Merged::Done(f) => return Ok((f, None)),
            merge::Merged::OutOfOrder(why) => tracing::debug!("{why}; comparing by hash buckets instead"),
        }
    }
    buckets::compare(src, dst, plan, range, task).await
}

/// Server checksums differ: split the table on its integer key until the
/// differing ranges are small, and compare those row by row. Returns
/// `None` when no row differs as barge compares them (the servers only
/// print some value differently).
async fn narrow(src: &mut Side, dst: &mut Side, plan: &Plan, range: KeyRange, task: &dyn crate::progress::Task) -> Result<Option<(Findings, Option<String>)>> {
    let ordered = !plan.key.is_empty() && src.order.is_some() && dst.order.is_some();
    if !ordered {
        return Ok(None);
    }
    let mut found = Findings::default();
    let mut todo = vec![range];
    let mut leaves = 0;
    let mut first = true;
    let mut note = None;
    while let Some(range) = todo.pop() {
        if !first {
            let (a, b) = tokio::join!(src.server_sum(range), dst.server_sum(range));
            if a? == b? {
                continue;
            }
        }
        first = false;
        if src.int_key.is_some() {
            let (a, b) = tokio::join!(src.bounds(range), dst.bounds(range));
            let ((alo, ahi), (blo, bhi)) = (a?, b?);
            let lo = alo.into_iter().chain(blo).min();
            let hi = ahi.into_iter().chain(bhi).max();
            if let (Some(lo), Some(hi)) = (lo, hi) {
                if (hi as i128 - lo as i128) > LEAF_ROWS as i128 {
                    let mid = lo + ((hi as i128 - lo as i128) / 2) as i64 + 1;
                    todo.push(KeyRange { lo: Some(mid), hi: range.hi });
                    todo.push(KeyRange { lo: range.lo, hi: Some(mid) });
                    continue;
                }
            }
        }
        match merge::merge(src, dst, range, plan, task).await? {
            merge::Merged::Done(f) => found.absorb(f),
            merge::Merged::OutOfOrder(_) => return Ok(None),
        }
        leaves += 1;
        if !found.any() {
            // The first leaf that differs by checksum holds no different
            // row: the difference is in how values are printed.
            return Ok(None);
        }
        if leaves >= MAX_LEAVES || found.shown_enough() {
            if !todo.is_empty() {
                note = Some("stopped after the first differences; the counts are a lower bound".into());
            }
            break;
        }
    }
    Ok(Some((found, note)))
}
