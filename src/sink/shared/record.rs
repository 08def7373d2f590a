//! One change as sinks see it: an operation, the values by column (with
//! "not sent" kept apart from NULL), and a deterministic id.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Scope, SinkTable};
use crate::cdc::{Change, Op};
use crate::model::{Position, Value};

/// What a record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A row of the full load.
    Load,
    Insert,
    Update,
    Delete,
    Truncate,
}

impl RecordKind {
    /// DMS's `Op` column: I, U, D (full-load rows are inserts); T for a
    /// truncate, which DMS does not write.
    pub fn op_code(self) -> &'static str {
        match self {
            RecordKind::Load | RecordKind::Insert => "I",
            RecordKind::Update => "U",
            RecordKind::Delete => "D",
            RecordKind::Truncate => "T",
        }
    }

    /// DMS's metadata `operation`.
    pub fn dms_operation(self) -> &'static str {
        match self {
            RecordKind::Load => "load",
            RecordKind::Insert => "insert",
            RecordKind::Update => "update",
            RecordKind::Delete => "delete",
            RecordKind::Truncate => "truncate-table",
        }
    }

    /// Debezium's `op`: r (snapshot read), c, u, d, t.
    pub fn debezium_op(self) -> &'static str {
        match self {
            RecordKind::Load => "r",
            RecordKind::Insert => "c",
            RecordKind::Update => "u",
            RecordKind::Delete => "d",
            RecordKind::Truncate => "t",
        }
    }
}

/// `changes` as sinks that write records write them: an update that
/// changes a row's key becomes a delete of the old key and an insert of
/// the new row (as Debezium writes it). A reader that applies records by
/// key then ends where the source did: files carry no old row, and a
/// stream spreads the two keys over its shards or partitions, where the
/// old key's history is not ordered with the new key's.
pub fn split_key_changes<'c>(tables: &crate::cdc::Tables, changes: &'c [Change]) -> std::borrow::Cow<'c, [Change]> {
    // The key indexes of an update that moves its row to another key.
    let moves = |c: &Change| -> Option<&[usize]> {
        let Op::Update { before: Some(before), after } = &c.op else { return None };
        let key = &tables.get(&c.table)?.key;
        let moved = key.iter().any(|&i| matches!((after.get(i), before.get(i)), (Some(Some(new)), Some(old)) if new != old));
        moved.then_some(key.as_slice())
    };
    if !changes.iter().any(|c| moves(c).is_some()) {
        return std::borrow::Cow::Borrowed(changes);
    }
    let mut out = Vec::with_capacity(changes.len() + 1);
    for c in changes {
        match (moves(c), &c.op) {
            (Some(key), Op::Update { before: Some(before), after }) => {
                let row = after.iter().enumerate().map(|(i, v)| v.clone().unwrap_or_else(|| before.get(i).cloned().unwrap_or(Value::Null))).collect();
                let old_key = key.iter().map(|&i| before.get(i).cloned().unwrap_or(Value::Null)).collect();
                let with = |op| Change { table: c.table.clone(), op, txid: c.txid.clone(), commit_time: c.commit_time, position: c.position.clone() };
                out.push(with(Op::Delete { key: old_key }));
                out.push(with(Op::Insert { row }));
            }
            _ => out.push(c.clone()),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A change, laid out by the table's columns.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub kind: RecordKind,
    /// One slot per column: `None` when the source did not send the value
    /// (an unchanged large value of an update; the non-key columns of a
    /// delete), never to be written as NULL where the format can tell.
    pub values: Vec<Option<&'a Value>>,
    /// The old row of an update, when the source sent it.
    pub before: Option<&'a [Value]>,
    pub change: &'a Change,
    pub id: String,
}

impl<'a> Record<'a> {
    /// Lays out `change` for `table`. Update slots the source left out are
    /// filled from the old row when it has them (an unchanged value is the
    /// old value).
    pub fn new(table: &SinkTable, change: &'a Change, id: String) -> Record<'a> {
        let n = table.columns.len();
        let (kind, values, before) = match &change.op {
            Op::Insert { row } => {
                let kind = if change.position == Position::Snapshot { RecordKind::Load } else { RecordKind::Insert };
                (kind, row.iter().map(Some).collect(), None)
            }
            Op::Update { before, after } => {
                let values = after.iter().enumerate().map(|(i, v)| v.as_ref().or_else(|| before.as_ref().and_then(|b| b.get(i)))).collect();
                (RecordKind::Update, values, before.as_deref())
            }
            Op::Delete { key } => {
                let mut values = vec![None; n];
                if key.len() == n || table.key.is_empty() {
                    for (i, v) in key.iter().enumerate().take(n) {
                        values[i] = Some(v);
                    }
                } else {
                    for (&i, v) in table.key.iter().zip(key) {
                        if i < n {
                            values[i] = Some(v);
                        }
                    }
                }
                (RecordKind::Delete, values, None)
            }
            Op::Truncate => (RecordKind::Truncate, vec![None; n], None),
        };
        Record { kind, values, before, change, id }
    }

    /// The key text: `col=value` pairs, for messages.
    pub fn key_text(&self, table: &SinkTable) -> String {
        let idx: Vec<usize> = if table.key.is_empty() { (0..table.columns.len().min(3)).collect() } else { table.key.clone() };
        idx.iter().map(|&i| format!("{}={}", table.columns[i].name, self.values.get(i).copied().flatten().map(short).unwrap_or_else(|| "?".into()))).collect::<Vec<_>>().join(", ")
    }

    /// The partition key for the primary-key mode: the key values joined by
    /// `|` (a table without a key: schema.table, which keeps its order).
    pub fn partition_key(&self, table: &SinkTable) -> String {
        if table.key.is_empty() {
            return table.display();
        }
        let mut s = String::new();
        for (n, &i) in table.key.iter().enumerate() {
            if n > 0 {
                s.push('|');
            }
            if let Some(v) = self.values.get(i).copied().flatten() {
                let _ = crate::codec::text::write_text(v, &mut s);
            }
        }
        s
    }
}

fn short(v: &Value) -> String {
    let mut s = String::new();
    let _ = crate::codec::text::write_text(v, &mut s);
    if s.chars().count() > 40 {
        s = format!("{}…", s.chars().take(40).collect::<String>());
    }
    s
}

/// Deterministic record ids: the same change read again (a resumed chunk,
/// a replayed transaction) gets the same id, so consumers can drop
/// duplicates.
///
/// - full-load rows of a table with a key: the table and the key values;
/// - full-load rows without a key: the table, the chunk and the row's
///   ordinal in it (stable while the source returns rows in the same order);
/// - changes: the source position of their transaction and their ordinal
///   among that transaction's changes.
pub struct RecordIds {
    scope: Scope,
    ordinals: HashMap<String, u64>,
    last_position: Option<Position>,
    /// Its text, made once per position (a stream's names every shard).
    last_position_text: String,
    in_position: u64,
}

impl RecordIds {
    pub fn new(scope: Scope) -> Self {
        RecordIds { scope, ordinals: HashMap::new(), last_position: None, last_position_text: String::new(), in_position: 0 }
    }

    pub fn next(&mut self, table: &SinkTable, change: &Change) -> String {
        let mut h = Sha256::new();
        h.update(table.source.to_string().as_bytes());
        h.update([0]);
        match (&change.op, &change.position) {
            (Op::Insert { row }, Position::Snapshot) if !table.key.is_empty() => {
                h.update(b"load-key\0");
                for &i in &table.key {
                    let mut s = String::new();
                    if let Some(v) = row.get(i) {
                        let _ = crate::codec::json::write_json(v, &mut s);
                    }
                    h.update(s.as_bytes());
                    h.update([0]);
                }
            }
            (_, Position::Snapshot) => {
                let chunk = match self.scope {
                    Scope::Load { chunk } => chunk as u64,
                    Scope::Cdc => u64::MAX,
                };
                let n = self.ordinals.entry(table.display()).or_default();
                *n += 1;
                h.update(b"load-row\0");
                h.update(chunk.to_be_bytes());
                h.update(n.to_be_bytes());
            }
            (_, position) => {
                if self.last_position.as_ref() != Some(position) {
                    self.last_position = Some(position.clone());
                    self.last_position_text = position.to_string();
                    self.in_position = 0;
                }
                self.in_position += 1;
                h.update(b"change\0");
                h.update(self.last_position_text.as_bytes());
                h.update([0]);
                h.update(self.in_position.to_be_bytes());
            }
        }
        hex::encode(&h.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QualifiedName;
    use crate::sink::SinkColumn;
    use crate::model::ColumnType;

    fn table(key: Vec<usize>) -> SinkTable {
        SinkTable {
            source: QualifiedName::new(Some("public"), "t"),
            schema: "public".into(),
            name: "t".into(),
            columns: vec![SinkColumn { name: "id".into(), ty: ColumnType::int(32) }, SinkColumn { name: "doc".into(), ty: ColumnType::text() }],
            key,
        }
    }

    fn change(op: Op, position: Position) -> Change {
        Change { table: QualifiedName::new(Some("public"), "t"), op, txid: None, commit_time: None, position }
    }

    #[test]
    fn unchanged_values_come_from_the_old_row_or_stay_unknown() {
        let t = table(vec![0]);
        let with_before = change(Op::Update { before: Some(vec![Value::Int(1), Value::Text("old".into())]), after: vec![Some(Value::Int(1)), None] }, Position::pg(5));
        let r = Record::new(&t, &with_before, String::new());
        assert_eq!(r.kind, RecordKind::Update);
        assert_eq!(r.values[1], Some(&Value::Text("old".into())));
        let without = change(Op::Update { before: None, after: vec![Some(Value::Int(1)), None] }, Position::pg(5));
        let r = Record::new(&t, &without, String::new());
        assert_eq!(r.values[1], None, "an unsent value is unknown, not NULL");
        let del = change(Op::Delete { key: vec![Value::Int(9)] }, Position::pg(6));
        let r = Record::new(&t, &del, String::new());
        assert_eq!((r.kind, r.values[0], r.values[1]), (RecordKind::Delete, Some(&Value::Int(9)), None));
        assert_eq!(r.partition_key(&t), "9");
        assert_eq!(Record::new(&t, &change(Op::Truncate, Position::pg(7)), String::new()).kind, RecordKind::Truncate);
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let t = table(vec![0]);
        let row = |i| change(Op::Insert { row: vec![Value::Int(i), Value::Null] }, Position::Snapshot);
        let a = RecordIds::new(Scope::Load { chunk: 0 }).next(&t, &row(1));
        let b = RecordIds::new(Scope::Load { chunk: 3 }).next(&t, &row(1));
        assert_eq!(a, b, "a keyed row's id depends on its key only");
        assert_ne!(a, RecordIds::new(Scope::Load { chunk: 0 }).next(&t, &row(2)));
        // Changes: position plus ordinal within the transaction.
        let mut ids = RecordIds::new(Scope::Cdc);
        let c1 = ids.next(&t, &change(Op::Delete { key: vec![Value::Int(1)] }, Position::pg(10)));
        let c2 = ids.next(&t, &change(Op::Delete { key: vec![Value::Int(1)] }, Position::pg(10)));
        let mut again = RecordIds::new(Scope::Cdc);
        assert_eq!(c1, again.next(&t, &change(Op::Delete { key: vec![Value::Int(1)] }, Position::pg(10))));
        assert_ne!(c1, c2);
        // Keyless full-load rows: by ordinal in the chunk.
        let keyless = table(vec![]);
        let mut ids = RecordIds::new(Scope::Load { chunk: 1 });
        let (x, y) = (ids.next(&keyless, &row(1)), ids.next(&keyless, &row(1)));
        assert_ne!(x, y, "identical keyless rows are still two records");
        assert_eq!(x.len(), 32);
    }
}
