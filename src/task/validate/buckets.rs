//! The comparison that does not rely on order, for tables without a key
//! and for keys an engine cannot sort the way barge compares them. Rows
//! are spread over a fixed number of buckets by a hash of their key (of
//! the whole row without one); each side keeps a row count and a sum of
//! row hashes per bucket, so memory stays flat. Buckets that differ are
//! read again, and only their rows are held and compared one by one.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use tokio::sync::mpsc;

use super::rows::{Findings, Plan, Row, Rows};
use super::side::Side;
use crate::error::Result;
use crate::progress::Task;
use crate::task::state::KeyRange;
use crate::transfer::{Batch, CHANNEL_DEPTH};

const BUCKETS: usize = 1 << 14;
/// Rows per side held at most in the second pass.
const HELD_ROWS: u64 = 20_000;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    rows: u64,
    sum: u64,
}

fn hash_of(parts: &[String]) -> u64 {
    // SipHash with fixed keys: the same on both sides of one run.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

fn bucket_of(canon: &[String], key: &[usize]) -> usize {
    let h = if key.is_empty() { hash_of(canon) } else { hash_of(&key.iter().map(|&i| canon[i].clone()).collect::<Vec<_>>()) };
    (h as usize) % BUCKETS
}

/// The differences, and a note when only some of them were looked at.
pub(super) async fn compare(src: &mut Side, dst: &mut Side, plan: &Plan, range: KeyRange, progress: &dyn Task) -> Result<(Findings, Option<String>)> {
    // Pass 1: sums per bucket on both sides at once.
    let (txa, rxa) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (txb, rxb) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (ra, rb) = (src.spawn_read(range, false, txa), dst.spawn_read(range, false, txb));
    let (sa, sb) = tokio::join!(sums(Rows::new(rxa, &plan.source), &plan.key, Some(progress)), sums(Rows::new(rxb, &plan.target), &plan.key, None));
    let (ra, rb) = (src.join_read(ra).await, dst.join_read(rb).await);
    ra?;
    rb?;
    let (sa, na) = sa;
    let (sb, nb) = sb;
    let mut f = Findings { source_rows: na, target_rows: nb, ..Default::default() };
    let differing: Vec<usize> = (0..BUCKETS).filter(|&i| sa[i] != sb[i]).collect();
    if differing.is_empty() {
        return Ok((f, None));
    }

    // Pass 2: the rows of the first differing buckets, compared one by one.
    let mut chosen = vec![false; BUCKETS];
    let mut held = 0u64;
    let mut taken = 0usize;
    for &i in &differing {
        let n = sa[i].rows.max(sb[i].rows);
        if taken > 0 && held + n > HELD_ROWS {
            break;
        }
        chosen[i] = true;
        held += n;
        taken += 1;
    }
    let (txa, rxa) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (txb, rxb) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (ra, rb) = (src.spawn_read(range, false, txa), dst.spawn_read(range, false, txb));
    let (left, right) = tokio::join!(hold(Rows::new(rxa, &plan.source), &plan.key, &chosen), hold(Rows::new(rxb, &plan.target), &plan.key, &chosen));
    let (ra, rb) = (src.join_read(ra).await, dst.join_read(rb).await);
    ra?;
    rb?;
    diff_held(&left, &right, plan, &mut f);
    let mut note = None;
    if taken < differing.len() {
        note = Some(format!("differences shown from {taken} of {} differing hash buckets; the counts are a lower bound", differing.len()));
    }
    if plan.key.is_empty() {
        let n = "the table has no key: rows are named by their values".to_string();
        note = Some(match note {
            Some(o) => format!("{n}; {o}"),
            None => n,
        });
    }
    Ok((f, note))
}

async fn sums(mut rows: Rows<'_>, key: &[usize], progress: Option<&dyn Task>) -> (Vec<Bucket>, u64) {
    let mut b = vec![Bucket::default(); BUCKETS];
    let mut shown = 0;
    while let Some(r) = rows.next().await {
        let canon = r.canon();
        let i = bucket_of(&canon, key);
        b[i].rows += 1;
        b[i].sum = b[i].sum.wrapping_add(hash_of(&canon));
        if let Some(p) = progress {
            if rows.count - shown >= 4096 {
                p.inc(rows.count - shown);
                shown = rows.count;
            }
        }
    }
    if let Some(p) = progress {
        p.inc(rows.count - shown);
    }
    (b, rows.count)
}

/// Rows of the chosen buckets, by key text (all values without a key).
type Held = BTreeMap<Vec<String>, Vec<Row>>;

async fn hold(mut rows: Rows<'_>, key: &[usize], chosen: &[bool]) -> Held {
    let mut out: Held = BTreeMap::new();
    while let Some(r) = rows.next().await {
        let canon = r.canon();
        if chosen[bucket_of(&canon, key)] {
            let k = if key.is_empty() { canon } else { key.iter().map(|&i| canon[i].clone()).collect() };
            out.entry(k).or_default().push(r);
        }
    }
    out
}

fn diff_held(left: &Held, right: &Held, plan: &Plan, f: &mut Findings) {
    let copies = |n: usize| if n == 1 { "1 copy".to_string() } else { format!("{n} copies") };
    for (k, rows) in left {
        let name = rows[0].name(&plan.key);
        match right.get(k) {
            None => (0..rows.len()).for_each(|_| f.missing(name.clone())),
            Some(other) if plan.key.is_empty() && other.len() != rows.len() => {
                let label = format!("{name} (source has {}, target {})", copies(rows.len()), copies(other.len()));
                if other.len() < rows.len() {
                    (other.len()..rows.len()).for_each(|_| f.missing(label.clone()));
                } else {
                    (rows.len()..other.len()).for_each(|_| f.extra(label.clone()));
                }
            }
            Some(other) => {
                // One row per key: compare it; more than one (a key the
                // target does not enforce): the surplus is extra.
                let (a, b) = (&rows[0], &other[0]);
                if !a.same(b) {
                    f.changed(format!("{name} ({})", a.changes(b, &plan.names)));
                }
                for _ in rows.len()..other.len() {
                    f.extra(format!("{name} (duplicate key)"));
                }
                for _ in other.len()..rows.len() {
                    f.missing(format!("{name} (duplicate key)"));
                }
            }
        }
    }
    for (k, rows) in right {
        if !left.contains_key(k) {
            let name = rows[0].name(&plan.key);
            rows.iter().for_each(|_| f.extra(name.clone()));
        }
    }
}

