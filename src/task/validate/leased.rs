//! Validation shared by many workers (`barge validate --coordinator`):
//! each table is cut once into ranges of its integer key, every range is
//! compared by whichever worker leases it, and the verdict is put together
//! from the findings of every range. A table without an integer key, or
//! one the target lacks, is one range (the whole table).
//!
//! The verdict refuses to be built over a gap: the ranges of each table
//! must cover its whole key space, each with the findings of a worker
//! that compared it, or [`assemble`] fails instead of saying "equal".

use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::schema::naming::NamingOptions;
use crate::task::mapping::Mapping;
use crate::task::state::KeyRange;

use super::rows::SHOW_KEYS;
use super::{check_table, pair_tables, quote, table_sql, Pair, TableCheck, ValidationReport};

/// Ranges cut per table at most, whatever `range_rows` asks.
const MAX_RANGES: u64 = 10_000;

/// One range of one table, as the plan cuts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// The source table's name (the key every worker finds it by).
    pub table: String,
    /// Its place among the table's ranges, from 0.
    pub index: usize,
    pub range: KeyRange,
}

/// A range and what the worker that compared it found (`None`: nobody
/// has yet).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub range: Range,
    pub check: Option<TableCheck>,
}

/// One worker's view of the tables to compare, and its two connections.
pub struct Checker {
    source: Option<Db>,
    target: Option<Db>,
    pairs: Vec<Pair>,
    src: Endpoint,
    dst: Endpoint,
}

impl Checker {
    /// Connects to both sides and pairs the tables, as a single
    /// validation does: every worker pairs them the same way.
    pub async fn connect(src: &Endpoint, dst: &Endpoint, mapping: &Mapping, naming: &NamingOptions) -> Result<Checker> {
        let (s, d) = tokio::join!(Db::connect(src, Role::Source), Db::connect(dst, Role::Target));
        let (mut s, mut d) = (s?, d?);
        let mut source_schema = mapping.select_some(&s.introspect().await?, src)?;
        super::super::shape::for_validation(&mut source_schema, d.dialect());
        let target_schema = d.introspect().await?;
        let pairs = pair_tables(&source_schema, &target_schema, d.dialect(), mapping, naming)?;
        Ok(Checker { source: Some(s), target: Some(d), pairs, src: src.clone(), dst: dst.clone() })
    }

    /// The source tables compared, in the order the report lists them.
    pub fn tables(&self) -> Vec<String> {
        self.pairs.iter().map(|p| p.source.name.to_string()).collect()
    }

    /// Cuts every table into ranges of about `range_rows` rows of its
    /// integer key, from the source's bounds. The first range is open
    /// below and the last above, so a row the target has outside the
    /// source's bounds falls in one of them.
    pub async fn plan(&mut self, range_rows: u64) -> Result<Vec<Range>> {
        let db = self.source.as_mut().ok_or_else(|| Error::other("the source connection was lost"))?;
        let dialect = db.dialect();
        let mut out = Vec::new();
        for p in &self.pairs {
            let table = p.source.name.to_string();
            let mut ranges = vec![KeyRange::ALL];
            if let (Ok(_), Some(k)) = (&p.target, p.int_key) {
                let key = quote(dialect, &p.columns[k].0);
                if let Some(b) = crate::source::of(db).key_bounds(&table_sql(dialect, &p.source.name), &key).await? {
                    ranges = cut(b.lo, b.hi, b.rows, range_rows);
                }
            }
            out.extend(ranges.into_iter().enumerate().map(|(index, range)| Range { table: table.clone(), index, range }));
        }
        Ok(out)
    }

    /// Compares one range of one table. After an error the connections
    /// are opened again, so the worker can go on with other ranges.
    pub async fn check(&mut self, table: &str, range: KeyRange, progress: &dyn Progress) -> Result<TableCheck> {
        let Some(p) = self.pairs.iter().find(|p| p.source.name.to_string() == table) else {
            return Err(Error::other(format!("table {table} is in the task's plan but not among the tables this worker compares")).with_hint("run every worker with the same barge version against the same source and target"));
        };
        let (s, d) = match (self.source.take(), self.target.take()) {
            (Some(s), Some(d)) => (s, d),
            _ => {
                let (s, d) = tokio::join!(Db::connect(&self.src, Role::Source), Db::connect(&self.dst, Role::Target));
                (s?, d?)
            }
        };
        let (check, s, d) = check_table(s, d, p, range, progress).await?;
        self.source = Some(s);
        self.target = Some(d);
        Ok(check)
    }
}

/// `n` ranges of about `range_rows` rows between `lo` and `hi` (the first
/// open below, the last open above); one range when the table is small.
fn cut(lo: i64, hi: i64, rows: u64, range_rows: u64) -> Vec<KeyRange> {
    let n = rows.div_ceil(range_rows.max(1)).clamp(1, MAX_RANGES);
    if n <= 1 || hi <= lo {
        return vec![KeyRange::ALL];
    }
    let span = hi as i128 - lo as i128 + 1;
    let n = (n as i128).min(span);
    let bound = |i: i128| (lo as i128 + span * i / n) as i64;
    (0..n)
        .map(|i| KeyRange { lo: (i > 0).then(|| bound(i)), hi: (i + 1 < n).then(|| bound(i + 1)) })
        .collect()
}

/// The task's verdict, from every range's findings. Fails when a table
/// of the plan has no ranges, when its ranges leave a gap in its key
/// space, or when a range was not compared.
pub fn assemble(tables: &[String], outcomes: &[Outcome]) -> Result<ValidationReport> {
    let mut out = Vec::new();
    for t in tables {
        let mut parts: Vec<&Outcome> = outcomes.iter().filter(|o| &o.range.table == t).collect();
        parts.sort_by_key(|o| o.range.index);
        let gap = |why: String| Error::other(format!("the validation of {t} is incomplete: {why}")).with_hint("`barge status --coordinator URL --task NAME` shows the ranges left; run `barge worker` to finish them");
        if parts.is_empty() {
            return Err(gap("the plan holds no range of it".into()));
        }
        let mut expect: Option<i64> = None;
        for (i, o) in parts.iter().enumerate() {
            if o.range.index != i || o.range.range.lo != expect || (i == 0) != o.range.range.lo.is_none() {
                return Err(gap(format!("range {i} is missing from the plan")));
            }
            expect = o.range.range.hi;
            if o.check.is_none() {
                return Err(gap(format!("range {i} ({}) was not compared", show(o.range.range))));
            }
        }
        if expect.is_some() {
            return Err(gap("its last range does not reach the end of the key".into()));
        }
        out.push(combine(parts.iter().filter_map(|o| o.check.clone()).collect()));
    }
    Ok(ValidationReport { tables: out })
}

/// A range as people read it.
pub fn show(r: KeyRange) -> String {
    match (r.lo, r.hi) {
        (None, None) => "the whole table".into(),
        (Some(lo), None) => format!("key ≥ {lo}"),
        (None, Some(hi)) => format!("key < {hi}"),
        (Some(lo), Some(hi)) => format!("{lo} ≤ key < {hi}"),
    }
}

/// One table's check from the checks of its ranges.
fn combine(parts: Vec<TableCheck>) -> TableCheck {
    let mut it = parts.into_iter();
    let mut t = it.next().expect("a table has at least one range");
    let mut notes: Vec<String> = t.note.take().into_iter().collect();
    for p in it {
        t.source_rows += p.source_rows;
        t.target_rows += p.target_rows;
        if p.method != t.method {
            t.method = "mixed".into();
        }
        t.equal &= p.equal;
        t.missing_table |= p.missing_table;
        t.missing_rows += p.missing_rows;
        t.extra_rows += p.extra_rows;
        t.changed_rows += p.changed_rows;
        for (all, more) in [(&mut t.missing_on_target, p.missing_on_target), (&mut t.extra_on_target, p.extra_on_target), (&mut t.different, p.different)] {
            all.extend(more);
            all.truncate(SHOW_KEYS);
        }
        if let Some(n) = p.note {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
    }
    t.note = (!notes.is_empty()).then(|| notes.join("; "));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(v: &[KeyRange]) -> Vec<(Option<i64>, Option<i64>)> {
        v.iter().map(|r| (r.lo, r.hi)).collect()
    }

    #[test]
    fn ranges_cover_the_whole_key_and_are_about_the_size_asked() {
        assert_eq!(ranges(&cut(1, 10_000, 10_000, 2_500)), vec![(None, Some(2501)), (Some(2501), Some(5001)), (Some(5001), Some(7501)), (Some(7501), None)]);
        assert_eq!(ranges(&cut(1, 100, 100, 1_000)), vec![(None, None)]);
        // More ranges asked than keys: one key each at most.
        assert_eq!(cut(5, 7, 1_000, 1).len(), 3);
        // Extreme keys do not overflow.
        let all = cut(i64::MIN, i64::MAX, 1 << 40, 1 << 30);
        assert_eq!(all.len(), 1024);
        assert!(all.windows(2).all(|w| w[0].hi == w[1].lo && w[0].hi.is_some()));
        assert_eq!((all[0].lo, all[1023].hi), (None, None));
    }

    fn check(table: &str, rows: u64, missing: &[&str]) -> TableCheck {
        TableCheck {
            source: table.into(),
            target: table.into(),
            source_rows: rows,
            target_rows: rows - missing.len() as u64,
            method: "server".into(),
            equal: missing.is_empty(),
            missing_rows: missing.len() as u64,
            missing_on_target: missing.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn outcome(table: &str, index: usize, lo: Option<i64>, hi: Option<i64>, c: Option<TableCheck>) -> Outcome {
        Outcome { range: Range { table: table.into(), index, range: KeyRange { lo, hi } }, check: c }
    }

    #[test]
    fn the_verdict_adds_up_the_ranges_and_refuses_a_gap() {
        let tables = vec!["a".to_string()];
        let whole = [outcome("a", 0, None, Some(10), Some(check("a", 9, &[]))), outcome("a", 1, Some(10), None, Some(check("a", 5, &["(12)"])))];
        let v = assemble(&tables, &whole).unwrap();
        let t = &v.tables[0];
        assert!(!t.equal && !v.ok());
        assert_eq!((t.source_rows, t.target_rows, t.missing_rows), (14, 13, 1));
        assert_eq!(t.missing_on_target, vec!["(12)"]);

        // A range nobody compared, a range missing, a plan without the table.
        let open = [whole[0].clone(), outcome("a", 1, Some(10), None, None)];
        assert!(assemble(&tables, &open).unwrap_err().to_string().contains("range 1 (key ≥ 10) was not compared"));
        assert!(assemble(&tables, &whole[..1]).unwrap_err().to_string().contains("does not reach the end"));
        assert!(assemble(&tables, &whole[1..]).unwrap_err().to_string().contains("range 0 is missing"));
        let skipped = [whole[0].clone(), outcome("a", 1, Some(11), None, Some(check("a", 5, &[])))];
        assert!(assemble(&tables, &skipped).is_err());
        assert!(assemble(&["b".to_string()], &whole).unwrap_err().to_string().contains("no range"));
    }
}
