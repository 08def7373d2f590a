//! Rows as the comparison sees them, and what it found. Both comparison
//! strategies ([`super::merge`], [`super::buckets`]) share these.

use tokio::sync::mpsc;

use super::canon::{canonical, key_text, same, shown_pair, KeyPart, Normalizer};
use crate::model::Value;
use crate::model::RowBatch as Batch;

/// Keys shown per kind of difference.
pub(super) const SHOW_KEYS: usize = 10;

/// What is compared in one table: the column names (for messages), which
/// columns form the key, and how each side's values are normalized.
pub(super) struct Plan {
    pub names: Vec<String>,
    /// Indexes of the key columns; empty when the table has no key (rows
    /// are then matched on all their values).
    pub key: Vec<usize>,
    pub source: Normalizer,
    pub target: Normalizer,
}

/// One row, normalized.
pub(super) struct Row {
    pub values: Vec<Value>,
}

impl Row {
    pub fn new(norm: &Normalizer, raw: Vec<Value>) -> Row {
        Row { values: norm.apply(raw) }
    }

    /// The canonical text of every value (for hashing).
    pub fn canon(&self) -> Vec<String> {
        self.values.iter().map(canonical).collect()
    }

    pub fn key(&self, key: &[usize]) -> Vec<KeyPart> {
        key.iter().map(|&i| KeyPart::of(&self.values[i])).collect()
    }

    pub fn same(&self, other: &Row) -> bool {
        self.values.len() == other.values.len() && self.values.iter().zip(&other.values).all(|(a, b)| same(a, b))
    }

    /// How the row is named in messages: its key, or all its values.
    pub fn name(&self, key: &[usize]) -> String {
        if key.is_empty() {
            key_text(&self.values.iter().collect::<Vec<_>>())
        } else {
            key_text(&key.iter().map(|&i| &self.values[i]).collect::<Vec<_>>())
        }
    }

    /// The columns that differ, as `name: 'a' ≠ 'b'`.
    pub fn changes(&self, other: &Row, names: &[String]) -> String {
        self.values
            .iter()
            .zip(&other.values)
            .enumerate()
            .filter(|(_, (x, y))| !same(x, y))
            .map(|(i, (x, y))| {
                let (a, b) = shown_pair(x, y);
                format!("{}: {a} ≠ {b}", names.get(i).map(String::as_str).unwrap_or("?"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The rows of one side, a batch at a time.
pub(super) struct Rows<'a> {
    rx: mpsc::Receiver<Batch>,
    batch: std::vec::IntoIter<Vec<Value>>,
    norm: &'a Normalizer,
    pub count: u64,
}

impl<'a> Rows<'a> {
    pub fn new(rx: mpsc::Receiver<Batch>, norm: &'a Normalizer) -> Self {
        Rows { rx, batch: Vec::new().into_iter(), norm, count: 0 }
    }

    pub async fn next(&mut self) -> Option<Row> {
        loop {
            if let Some(raw) = self.batch.next() {
                self.count += 1;
                return Some(Row::new(self.norm, raw));
            }
            self.batch = self.rx.recv().await?.rows.into_iter();
        }
    }
}

/// The differences found in one table: totals, and the first keys of each
/// kind.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub source_rows: u64,
    pub target_rows: u64,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub changed: Vec<String>,
    pub missing_rows: u64,
    pub extra_rows: u64,
    pub changed_rows: u64,
}

impl Findings {
    pub fn missing(&mut self, name: String) {
        self.missing_rows += 1;
        push_limited(&mut self.missing, name);
    }

    pub fn extra(&mut self, name: String) {
        self.extra_rows += 1;
        push_limited(&mut self.extra, name);
    }

    pub fn changed(&mut self, name: String) {
        self.changed_rows += 1;
        push_limited(&mut self.changed, name);
    }

    pub fn any(&self) -> bool {
        self.missing_rows + self.extra_rows + self.changed_rows > 0
    }

    /// Adds the differences of another part of the same table.
    pub fn absorb(&mut self, other: Findings) {
        self.missing_rows += other.missing_rows;
        self.extra_rows += other.extra_rows;
        self.changed_rows += other.changed_rows;
        for k in other.missing {
            push_limited(&mut self.missing, k);
        }
        for k in other.extra {
            push_limited(&mut self.extra, k);
        }
        for k in other.changed {
            push_limited(&mut self.changed, k);
        }
    }

    pub fn shown_enough(&self) -> bool {
        self.missing.len() + self.extra.len() + self.changed.len() >= SHOW_KEYS * 3
    }
}

fn push_limited(v: &mut Vec<String>, k: String) {
    if v.len() < SHOW_KEYS {
        v.push(k);
    }
}
