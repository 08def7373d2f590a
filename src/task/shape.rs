//! Shapes the selected source schema for one target before it is
//! converted, for what a copy must keep that a DDL conversion alone does
//! not decide:
//!
//! - **Declarative partitions** (PostgreSQL). A PostgreSQL target keeps
//!   them: the parent is created partitioned, each partition attached (see
//!   [`super::target_schema`]). Other targets get one table per partitioned
//!   table holding every row; the partitions' own indexes and foreign keys
//!   move to it (one per distinct definition), and the report says so.
//! - **Inheritance children** (PostgreSQL). Kept as children on PostgreSQL;
//!   elsewhere a child becomes a table of its own with its parents' columns
//!   and checks too.
//! - **Sequences** a key column's default draws from. Targets without
//!   sequences get an AUTO_INCREMENT column (or SQLite's rowid alias) that
//!   starts past the source's last value.
//! - **Domains.** A column of a domain type arrives with the base type and
//!   the domain's checks copied onto it (as the DDL reader resolves a
//!   domain); on PostgreSQL the domain itself is created instead and the
//!   copies are dropped.
//!
//! Each change is a [`Note`] for the assessment report.

use std::collections::BTreeSet;

use crate::model::*;
use crate::schema::report::{codes, Code, ObjectKind, Status};

/// A report line about a change made here.
#[derive(Debug, Clone)]
pub struct Note {
    pub kind: ObjectKind,
    pub object: String,
    pub status: Status,
    pub code: Option<Code>,
    pub message: String,
}

/// Shapes `schema` (already selected) for a `target` database; returns
/// what changed.
pub fn for_target(schema: &mut Schema, source: Dialect, target: Dialect) -> Vec<Note> {
    let mut notes = Vec::new();
    if target != Dialect::Postgres {
        merge_partitions(schema, target, &mut notes);
        flatten_inheritance(schema, &mut notes);
        sequences_to_identities(schema, target, &mut notes);
    }
    if source == Dialect::Postgres && target == Dialect::Postgres {
        drop_domain_check_copies(schema);
    }
    notes
}

/// The tables whose rows a target holds: on a target without declarative
/// partitions, a partitioned table holds its partitions' rows (what
/// validation compares).
pub fn for_validation(schema: &mut Schema, target: Dialect) {
    if target != Dialect::Postgres {
        merge_partitions(schema, target, &mut Vec::new());
    }
}

/// Shapes `schema` for files and streams: one dataset per logical table,
/// so partitions merge into their table and a child is read whole.
pub fn for_files(schema: &mut Schema, source: Dialect) -> Vec<Note> {
    let mut notes = Vec::new();
    merge_partitions(schema, source, &mut notes);
    flatten_inheritance(schema, &mut notes);
    notes
}

/// A partition or inheritance child selected without its parent is a
/// table of its own: a partition has every column already; a child gets
/// its parents' columns and checks, read from `full` (the whole source).
/// Call before shaping.
pub fn detach_orphans(schema: &mut Schema, full: &Schema) -> Vec<Note> {
    let mut notes = Vec::new();
    let names: Vec<QualifiedName> = schema.tables.iter().map(|t| t.name.clone()).collect();
    let present = |q: &QualifiedName| names.iter().any(|n| n == q);
    for t in schema.tables.iter_mut() {
        if !(t.partition_of.as_ref().is_some_and(|p| !present(&p.parent)) || t.inherits.iter().any(|p| !present(p))) {
            continue;
        }
        let (cols, checks) = match full.table(&t.name) {
            Some(orig) if t.partition_of.is_none() => inherited(full, orig, 0),
            _ => (Vec::new(), Vec::new()),
        };
        let parent = t.partition_of.take().map(|p| p.parent.to_string()).into_iter().chain(t.inherits.drain(..).map(|p| p.to_string())).collect::<Vec<_>>().join(", ");
        let mut all: Vec<Column> = cols.into_iter().filter(|c| !t.columns.iter().any(|x| x.name == c.name)).collect();
        all.append(&mut t.columns);
        t.columns = all;
        for ch in checks {
            if !t.checks.iter().any(|x| x.expr == ch.expr) {
                t.checks.push(ch);
            }
        }
        notes.push(Note {
            kind: ObjectKind::Table,
            object: t.name.to_string(),
            status: Status::Warning,
            code: Some(codes::TABLE_OPTION),
            message: format!("selected without {parent}: created as a table of its own"),
        });
    }
    notes
}

/// The table a partition's rows belong to on a target without partitions:
/// its topmost partitioned ancestor.
fn root_of(schema: &Schema, t: &Table) -> QualifiedName {
    let mut name = t.name.clone();
    let mut seen = 0;
    while let Some(p) = schema.table(&name).and_then(|t| t.partition_of.as_ref()) {
        name = p.parent.clone();
        seen += 1;
        if seen > 64 {
            break;
        }
    }
    name
}

fn merge_partitions(schema: &mut Schema, target: Dialect, notes: &mut Vec<Note>) {
    let partitions: Vec<Table> = schema.tables.iter().filter(|t| t.partition_of.is_some()).cloned().collect();
    if partitions.is_empty() {
        return;
    }
    let roots: Vec<(QualifiedName, QualifiedName)> = partitions.iter().map(|p| (p.name.clone(), root_of(schema, p))).collect();
    let root_for = |name: &QualifiedName| roots.iter().find(|(p, _)| p == name).map(|(_, r)| r.clone());
    schema.tables.retain(|t| t.partition_of.is_none());
    let mut merged: std::collections::BTreeMap<QualifiedName, (Vec<String>, usize, usize)> = Default::default();
    for p in partitions {
        let Some(root_name) = root_for(&p.name) else { continue };
        let Some(root) = schema.table_mut(&root_name) else { continue };
        let entry = merged.entry(root_name.clone()).or_default();
        entry.0.push(p.name.name.clone());
        for mut ix in p.indexes {
            let same = root.indexes.iter().any(|r| r.unique == ix.unique && r.parts == ix.parts && r.predicate == ix.predicate && r.method == ix.method);
            if same {
                continue;
            }
            // idx_payment_p2022_01_customer → idx_payment_customer
            ix.name = ix.name.map(|n| n.replacen(&p.name.name, &root_name.name, 1));
            root.indexes.push(ix);
            entry.1 += 1;
        }
        for mut fk in p.foreign_keys {
            let same = root.foreign_keys.iter().any(|r| r.columns == fk.columns && r.ref_table.loosely_eq(&fk.ref_table) && r.ref_columns == fk.ref_columns);
            if same {
                continue;
            }
            fk.name = fk.name.map(|n| n.replacen(&p.name.name, &root_name.name, 1));
            root.foreign_keys.push(fk);
            entry.2 += 1;
        }
        for ch in p.checks {
            notes.push(Note {
                kind: ObjectKind::Constraint,
                object: format!("{} check {}", p.name, ch.name.as_deref().unwrap_or(&ch.expr.sql)),
                status: Status::Manual,
                code: Some(codes::CHECK_DROPPED),
                message: format!("check ({}) holds for partition {} only; its rows now share {root_name} on {target}", ch.expr.sql, p.name),
            });
        }
    }
    // Foreign keys that pointed at a partition now point at its table.
    for t in schema.tables.iter_mut() {
        for fk in t.foreign_keys.iter_mut() {
            if let Some(r) = root_for(&fk.ref_table) {
                fk.ref_table = r;
            }
        }
    }
    for (root, (parts, indexes, fks)) in merged {
        notes.push(Note {
            kind: ObjectKind::Table,
            object: root.to_string(),
            status: Status::Warning,
            code: Some(codes::TABLE_OPTION),
            message: format!(
                "{} partitions ({}) merged into one table on {target}, which has no declarative partitions; their rows, {indexes} distinct indexes and {fks} distinct foreign keys moved to it",
                parts.len(),
                parts.join(", ")
            ),
        });
    }
}

/// Every column and check a table has through its parents, parents first.
fn inherited(schema: &Schema, t: &Table, depth: usize) -> (Vec<Column>, Vec<Check>) {
    let mut cols: Vec<Column> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    if depth > 64 {
        return (cols, checks);
    }
    for p in &t.inherits {
        let Some(parent) = schema.table(p) else { continue };
        let (pc, pk) = inherited(schema, parent, depth + 1);
        for c in pc.into_iter().chain(parent.columns.iter().cloned()) {
            if !cols.iter().any(|x| x.name == c.name) {
                cols.push(c);
            }
        }
        for ch in pk.into_iter().chain(parent.checks.iter().cloned()) {
            if !checks.iter().any(|x| x.expr == ch.expr) {
                checks.push(ch);
            }
        }
    }
    (cols, checks)
}

/// The columns `t` has through inheritance (for reading a child whole on
/// a PostgreSQL target, where its DDL names only its own).
pub fn inherited_columns(schema: &Schema, t: &Table) -> Vec<Column> {
    let (cols, _) = inherited(schema, t, 0);
    cols.into_iter().filter(|c| t.column(&c.name).is_none()).collect()
}

fn flatten_inheritance(schema: &mut Schema, notes: &mut Vec<Note>) {
    let children: Vec<usize> = (0..schema.tables.len()).filter(|&i| !schema.tables[i].inherits.is_empty()).collect();
    let mut plans = Vec::new();
    for &i in &children {
        let t = &schema.tables[i];
        let (cols, checks) = inherited(schema, t, 0);
        plans.push((i, cols, checks));
    }
    for (i, cols, checks) in plans {
        let t = &mut schema.tables[i];
        let parents: Vec<String> = t.inherits.iter().map(ToString::to_string).collect();
        let mut all: Vec<Column> = cols.into_iter().filter(|c| !t.columns.iter().any(|x| x.name == c.name)).collect();
        all.append(&mut t.columns);
        t.columns = all;
        for ch in checks {
            if !t.checks.iter().any(|x| x.expr == ch.expr) {
                t.checks.push(ch);
            }
        }
        t.inherits.clear();
        notes.push(Note {
            kind: ObjectKind::Table,
            object: t.name.to_string(),
            status: Status::Warning,
            code: Some(codes::TABLE_OPTION),
            message: format!("inherits {}: created as a table of its own with the inherited columns; the parent's rows are read without the child's", parents.join(", ")),
        });
    }
}

/// On targets without sequences, a single-column integer key whose
/// default is `nextval` becomes the target's self-numbering column,
/// starting past the source's last value.
fn sequences_to_identities(schema: &mut Schema, target: Dialect, notes: &mut Vec<Note>) {
    let mut used: BTreeSet<QualifiedName> = BTreeSet::new();
    let seqs = schema.sequences.clone();
    for t in schema.tables.iter_mut() {
        // SQLite numbers only a single-column INTEGER PRIMARY KEY; MySQL
        // numbers any key column (one per table).
        let keys: Vec<String> = match &t.primary_key {
            Some(k) if k.columns.len() == 1 || target == Dialect::Mysql => k.columns.clone(),
            _ => continue,
        };
        let Some(pk) = keys.iter().find(|k| t.column(k).is_some_and(|c| matches!(c.default, Some(DefaultValue::Sequence(_))))).cloned() else { continue };
        let tname = t.name.to_string();
        let mut start = None;
        if let Some(c) = t.column_mut(&pk) {
            let Some(DefaultValue::Sequence(seq)) = c.default.clone() else { continue };
            if !c.ty.is_integer() || c.identity.is_some() {
                continue;
            }
            let s = seqs.iter().find(|s| s.name.loosely_eq(&seq));
            start = s.and_then(|s| match s.last_value {
                Some(last) => Some(last + s.increment.unwrap_or(1)),
                None => s.start,
            });
            c.identity = Some(Identity { kind: IdentityKind::AutoIncrement, start, increment: None, sequence: Some(seq.clone()) });
            c.default = None;
            used.insert(s.map(|s| s.name.clone()).unwrap_or(seq.clone()));
            notes.push(Note {
                kind: ObjectKind::Sequence,
                object: seq.to_string(),
                status: Status::Converted,
                code: Some(codes::IDENTITY),
                message: format!(
                    "nextval on the key {tname}.{pk} → {}{}",
                    if target == Dialect::Mysql { "AUTO_INCREMENT" } else { "the rowid (INTEGER PRIMARY KEY)" },
                    start.map(|s| format!(", next value {s}")).unwrap_or_default()
                ),
            });
        }
        if target == Dialect::Mysql {
            if let Some(s) = start.filter(|s| *s > 1) {
                t.options.auto_increment_start = Some(s);
            }
        }
    }
    // A sequence nothing else draws from is now that column's counter.
    let still_used = |name: &QualifiedName, schema: &Schema| {
        schema.tables.iter().flat_map(|t| &t.columns).any(|c| matches!(&c.default, Some(DefaultValue::Sequence(s)) if s.loosely_eq(name)))
    };
    let keep: Vec<bool> = schema.sequences.iter().map(|s| !used.iter().any(|u| u.loosely_eq(&s.name)) || still_used(&s.name, schema)).collect();
    let mut k = keep.into_iter();
    schema.sequences.retain(|_| k.next().unwrap_or(true));
}

/// The domain a column's type names, if any (`year`, `public.year`,
/// `"Year"`), matched on the domain's name.
pub fn domain_of<'a>(schema: &'a Schema, c: &Column) -> Option<&'a Domain> {
    if schema.domains.is_empty() {
        return None;
    }
    let written = c.source_type.rsplit('.').next().unwrap_or("").trim().trim_matches('"');
    schema.domains.iter().find(|d| d.name.name == written || d.name.name.eq_ignore_ascii_case(written) && !c.source_type.contains('"'))
}

/// PostgreSQL → PostgreSQL: the domain enforces its checks, so the copies
/// the catalog reader put on each column go.
fn drop_domain_check_copies(schema: &mut Schema) {
    let domains = schema.domains.clone();
    if domains.is_empty() {
        return;
    }
    let probe = Schema { domains, ..Default::default() };
    for t in schema.tables.iter_mut() {
        let copies: Vec<String> = t
            .columns
            .iter()
            .filter_map(|c| domain_of(&probe, c).map(|d| (c, d)))
            .flat_map(|(c, d)| d.checks.iter().map(|ch| crate::db::postgres::domain_check_for_column(&ch.sql, &c.name)).collect::<Vec<_>>())
            .collect();
        t.checks.retain(|ch| ch.name.is_some() || !copies.contains(&ch.expr.sql));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, cols: &[&str]) -> Table {
        let mut t = Table::new(QualifiedName::new(Some("public"), name));
        for c in cols {
            t.columns.push(Column::new(c, ColumnType::int(32), "integer"));
        }
        t
    }

    fn index(name: &str, col: &str) -> Index {
        Index {
            name: Some(name.into()),
            unique: false,
            parts: vec![IndexPart { key: IndexKey::Column(col.into()), prefix_len: None, descending: false }],
            predicate: None,
            method: IndexMethod::Default,
            include: vec![],
            origin: Origin::default(),
        }
    }

    #[test]
    fn partitions_merge_into_their_table_elsewhere() {
        let mut parent = table("payment", &["id", "customer_id"]);
        parent.options.partitioning = Some("RANGE (id)".into());
        let mut s = Schema { tables: vec![parent], ..Default::default() };
        for p in ["payment_p1", "payment_p2"] {
            let mut t = table(p, &["id", "customer_id"]);
            t.partition_of = Some(PartitionOf { parent: QualifiedName::new(Some("public"), "payment"), bound: SqlText::new("DEFAULT", Dialect::Postgres) });
            t.indexes.push(index(&format!("idx_{p}_customer_id"), "customer_id"));
            s.tables.push(t);
        }
        let notes = for_target(&mut s, Dialect::Postgres, Dialect::Mysql);
        assert_eq!(s.tables.len(), 1);
        assert_eq!(s.tables[0].indexes.len(), 1, "one index per distinct definition");
        assert_eq!(s.tables[0].indexes[0].name.as_deref(), Some("idx_payment_customer_id"));
        assert!(notes.iter().any(|n| n.message.contains("2 partitions")));

        let mut kept = Schema { tables: vec![table("a", &["id"])], ..Default::default() };
        kept.tables[0].partition_of = Some(PartitionOf { parent: QualifiedName::new(Some("public"), "b"), bound: SqlText::new("DEFAULT", Dialect::Postgres) });
        for_target(&mut kept, Dialect::Postgres, Dialect::Postgres);
        assert_eq!(kept.tables.len(), 1, "PostgreSQL keeps partitions");
    }

    #[test]
    fn children_get_their_parents_columns_elsewhere() {
        let parent = table("city", &["id", "name"]);
        let mut child = table("capital", &["state"]);
        child.inherits.push(QualifiedName::new(Some("public"), "city"));
        let mut s = Schema { tables: vec![parent, child], ..Default::default() };
        assert_eq!(inherited_columns(&s, &s.tables[1]).len(), 2);
        for_target(&mut s, Dialect::Postgres, Dialect::Sqlite);
        let names: Vec<&str> = s.tables[1].columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "state"]);
        assert!(s.tables[1].inherits.is_empty());
    }

    #[test]
    fn a_key_drawing_from_a_sequence_numbers_itself_elsewhere() {
        let mut t = table("customer", &["id", "n"]);
        t.primary_key = Some(Key { name: None, columns: vec!["id".into()] });
        t.columns[0].default = Some(DefaultValue::Sequence(QualifiedName::bare("customer_id_seq")));
        let mut seq = Sequence::new(QualifiedName::new(Some("public"), "customer_id_seq"));
        seq.last_value = Some(41);
        seq.increment = Some(1);
        let mut s = Schema { tables: vec![t], sequences: vec![seq], ..Default::default() };
        for_target(&mut s, Dialect::Postgres, Dialect::Mysql);
        let c = &s.tables[0].columns[0];
        assert!(c.default.is_none());
        assert_eq!(c.identity.as_ref().and_then(|i| i.start), Some(42));
        assert_eq!(s.tables[0].options.auto_increment_start, Some(42));
        assert!(s.sequences.is_empty(), "the sequence became the column's counter");
    }
}
