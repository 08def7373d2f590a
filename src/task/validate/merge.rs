//! The comparison of a table with a key: both sides are read at the same
//! time, sorted by the key in the same order, and walked side by side like
//! a merge join. Memory holds a few batches per side, whatever the table's
//! size, and every difference is found in one pass.

use std::cmp::Ordering;

use tokio::sync::mpsc;

use super::canon::KeyPart;
use super::rows::{Findings, Plan, Row, Rows};
use super::side::Side;
use crate::error::Result;
use crate::progress::Task;
use crate::task::state::KeyRange;
use crate::transfer::{Batch, CHANNEL_DEPTH};

pub(super) enum Merged {
    Done(Findings),
    /// A side did not come back in the order asked for (a collation or a
    /// storage class the ORDER BY does not sort as barge compares): the
    /// caller compares without relying on order.
    OutOfOrder(String),
}

pub(super) async fn merge(src: &mut Side, dst: &mut Side, range: KeyRange, plan: &Plan, progress: &dyn Task) -> Result<Merged> {
    let (txa, rxa) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (txb, rxb) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let (ra, rb) = (src.spawn_read(range, true, txa), dst.spawn_read(range, true, txb));
    let out = walk(rxa, rxb, plan, progress, (&src.label, &dst.label)).await;
    // A reader that failed ended its stream early: its error is the news.
    let (ra, rb) = (src.join_read(ra).await, dst.join_read(rb).await);
    ra?;
    rb?;
    Ok(out)
}

/// A side's rows, checked to come in non-decreasing key order.
struct Ordered<'a> {
    rows: Rows<'a>,
    key: &'a [usize],
    last: Option<Vec<KeyPart>>,
    label: &'a str,
}

impl Ordered<'_> {
    async fn next(&mut self) -> std::result::Result<Option<(Vec<KeyPart>, Row)>, String> {
        let Some(row) = self.rows.next().await else { return Ok(None) };
        let k = row.key(self.key);
        if let Some(prev) = &self.last {
            if k < *prev {
                return Err(format!("{} did not return its rows in key order (at {})", self.label, row.name(self.key)));
            }
        }
        self.last = Some(k.clone());
        Ok(Some((k, row)))
    }
}

async fn walk(rxa: mpsc::Receiver<Batch>, rxb: mpsc::Receiver<Batch>, plan: &Plan, progress: &dyn Task, labels: (&str, &str)) -> Merged {
    let mut a = Ordered { rows: Rows::new(rxa, &plan.source), key: &plan.key, last: None, label: labels.0 };
    let mut b = Ordered { rows: Rows::new(rxb, &plan.target), key: &plan.key, last: None, label: labels.1 };
    let mut f = Findings::default();
    let step = |r| match r {
        Ok(v) => Ok(v),
        Err(why) => Err(Merged::OutOfOrder(why)),
    };
    let run = async {
        let mut x = step(a.next().await)?;
        let mut y = step(b.next().await)?;
        let mut shown = 0u64;
        loop {
            match (&x, &y) {
                (None, None) => break,
                (Some((_, r)), None) => {
                    f.missing(r.name(&plan.key));
                    x = step(a.next().await)?;
                }
                (None, Some((_, r))) => {
                    f.extra(r.name(&plan.key));
                    y = step(b.next().await)?;
                }
                (Some((ka, ra)), Some((kb, rb))) => match ka.cmp(kb) {
                    Ordering::Less => {
                        f.missing(ra.name(&plan.key));
                        x = step(a.next().await)?;
                    }
                    Ordering::Greater => {
                        f.extra(rb.name(&plan.key));
                        y = step(b.next().await)?;
                    }
                    Ordering::Equal => {
                        if !ra.same(rb) {
                            f.changed(format!("{} ({})", ra.name(&plan.key), ra.changes(rb, &plan.names)));
                        }
                        x = step(a.next().await)?;
                        y = step(b.next().await)?;
                    }
                },
            }
            let n = a.rows.count;
            if n - shown >= 4096 {
                progress.inc(n - shown);
                shown = n;
            }
        }
        progress.inc(a.rows.count - shown);
        Ok(())
    };
    match run.await {
        Ok(()) => {
            f.source_rows = a.rows.count;
            f.target_rows = b.rows.count;
            Merged::Done(f)
        }
        Err(m) => m,
    }
}
