//! Table inheritance and declarative partitions (PostgreSQL), shaped for
//! one target before the tables are planned.
//!
//! - **Inheritance.** A child lists only its own columns in the source;
//!   every target gets the parents' columns and checks copied in, so keys
//!   and indexes on inherited columns find them. PostgreSQL also keeps the
//!   `INHERITS` clause (it merges the repeated definitions); elsewhere the
//!   inheritance is lost and the report says so.
//! - **Partitions.** PostgreSQL keeps them: the parent is created
//!   partitioned and each partition attached, without the indexes the
//!   parent's own indexes already give it. Elsewhere the rows live in the
//!   parent: the partitions' indexes and foreign keys move there (one per
//!   distinct definition), foreign keys that pointed at a partition point
//!   at the parent, and MySQL gets `PARTITION BY RANGE|LIST COLUMNS` or
//!   `HASH` where the partitions can be expressed that way.

use std::collections::HashMap;

use super::report::{codes, ObjectKind, Report, Status};
use super::tokens::Tokens;
use crate::model::*;

/// What the planner needs to know beyond the reshaped schema.
#[derive(Debug, Default)]
pub struct Hierarchy {
    /// The reshaped schema, when anything changed.
    pub schema: Option<Schema>,
    /// Partitioning of a parent table (by `naming::key`), to print.
    pub partitioning: HashMap<String, Partitioning>,
    /// PostgreSQL: the parents a child keeps inheriting from (by key).
    pub inherits: HashMap<String, Vec<QualifiedName>>,
    /// PostgreSQL: a partition's parent and bound (by the child's key).
    pub attach: HashMap<String, (QualifiedName, String)>,
}

#[derive(Debug, Clone)]
pub struct Partitioning {
    /// `RANGE`, `LIST` or `HASH`.
    pub method: String,
    /// The key: source column names, or None for an expression key kept
    /// as written (`PARTITION BY` text without the keywords).
    pub columns: Option<Vec<String>>,
    pub written: String,
    /// MySQL: one partition per source partition, in order.
    pub mysql: Option<MysqlPartitions>,
}

#[derive(Debug, Clone)]
pub enum MysqlPartitions {
    /// (partition table, upper bound literal or MAXVALUE)
    Range(Vec<(QualifiedName, String)>),
    /// (partition table, value list)
    List(Vec<(QualifiedName, Vec<String>)>),
    Hash(u64),
}

pub fn resolve(schema: &Schema, target: Dialect, report: &mut Report) -> Hierarchy {
    let mut h = Hierarchy::default();
    let has_children = schema.tables.iter().any(|t| !t.inherits.is_empty() || t.partition_of.is_some());
    let has_partitioned = schema.tables.iter().any(|t| t.options.partitioning.is_some() && schema.dialect == Some(Dialect::Postgres));
    if !has_children && !has_partitioned {
        return h;
    }
    let mut s = schema.clone();
    flatten_inheritance(&mut s, target, &mut h, report);
    if target == Dialect::Postgres {
        keep_partitions(&mut s, &mut h, report);
    } else {
        merge_partitions(&mut s, target, &mut h, report);
    }
    h.schema = Some(s);
    h
}

fn key(q: &QualifiedName) -> String {
    super::naming::key(q)
}

/// Columns and checks of `name` including what it inherits (parents
/// first, as PostgreSQL orders them).
fn effective(schema: &Schema, name: &QualifiedName, depth: usize) -> Option<(Vec<Column>, Vec<Check>)> {
    let t = schema.table(name)?;
    if depth > 32 {
        return Some((t.columns.clone(), t.checks.clone()));
    }
    let mut cols: Vec<Column> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let mut parents: Vec<&QualifiedName> = t.inherits.iter().collect();
    if t.columns.is_empty() {
        // `CREATE TABLE p1 PARTITION OF p …` names no columns.
        if let Some(po) = &t.partition_of {
            parents.push(&po.parent);
        }
    }
    for p in parents {
        let Some((pc, pk)) = effective(schema, p, depth + 1) else { continue };
        for c in pc {
            if !cols.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name)) {
                cols.push(c);
            }
        }
        for ch in pk {
            if !checks.iter().any(|x| x.expr == ch.expr) {
                checks.push(ch);
            }
        }
    }
    for c in &t.columns {
        match cols.iter_mut().find(|x| x.name.eq_ignore_ascii_case(&c.name)) {
            // A redeclared column: the child's definition (NOT NULL,
            // default) in the parent's position.
            Some(x) => *x = c.clone(),
            None => cols.push(c.clone()),
        }
    }
    for ch in &t.checks {
        if !checks.iter().any(|x| x.expr == ch.expr) {
            checks.push(ch.clone());
        }
    }
    Some((cols, checks))
}

fn flatten_inheritance(s: &mut Schema, target: Dialect, h: &mut Hierarchy, report: &mut Report) {
    let original = s.clone();
    for t in s.tables.iter_mut() {
        let partition_without_columns = t.partition_of.is_some() && t.columns.is_empty();
        if t.inherits.is_empty() && !partition_without_columns {
            continue;
        }
        let Some((mut cols, checks)) = effective(&original, &t.name, 0) else { continue };
        let copied = cols.len().saturating_sub(t.columns.len());
        let line = t.origin.line;
        for c in cols.iter_mut() {
            if c.origin.line == 0 || !t.columns.iter().any(|o| o.name == c.name) {
                c.origin = Origin { line };
            }
        }
        t.columns = cols;
        // PostgreSQL gives an INHERITS child its parents' checks itself.
        if target != Dialect::Postgres || t.inherits.is_empty() {
            t.checks = checks;
        }
        if t.inherits.is_empty() {
            continue;
        }
        let parents = t.inherits.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        if target == Dialect::Postgres {
            h.inherits.insert(key(&t.name), t.inherits.clone());
        } else {
            report.push(ObjectKind::Table, t.name.to_string(), Status::Warning, Some(codes::INHERITANCE), line, format!(
                "inherits {parents}: the {copied} inherited columns and the parents' checks were copied in; the inheritance itself is lost (queries on {parents} no longer see this table's rows)"
            ));
        }
        t.inherits.clear();
    }
}

fn same_index(a: &Index, b: &Index) -> bool {
    a.unique == b.unique && a.parts == b.parts && a.predicate == b.predicate && a.method == b.method
}

/// The written key of a PostgreSQL partitioned table: method and plain
/// columns (`RANGE (created_at)`).
fn parse_key(text: &str) -> Option<(String, Option<Vec<String>>, String)> {
    let rest = text.trim().strip_prefix("PARTITION BY").or_else(|| text.trim().strip_prefix("partition by"))?.trim();
    let d = sqlparser::dialect::PostgreSqlDialect {};
    let t = Tokens::new(&d, rest)?;
    let m = t.next_sig(0)?;
    let method = t.word(m)?.to_ascii_uppercase();
    let open = t.next_sig(m + 1).filter(|&o| t.is_char(o, &sqlparser::tokenizer::Token::LParen))?;
    let close = t.matching_paren(open)?;
    let inner = t.render_range(open + 1, close);
    let mut cols = Vec::new();
    let mut plain = true;
    let mut k = open + 1;
    while k < close {
        let end = t.end_of_item(k).min(close);
        let sig: Vec<usize> = (k..end).filter(|&i| !Tokens::is_space(&t.toks[i])).collect();
        match sig.as_slice() {
            [one] if t.word(*one).is_some() => cols.push(t.word(*one).unwrap_or_default().to_string()),
            _ => plain = false,
        }
        k = end + 1;
    }
    Some((method, plain.then_some(cols), inner.trim().to_string()))
}

fn keep_partitions(s: &mut Schema, h: &mut Hierarchy, report: &mut Report) {
    for t in &s.tables {
        if let Some((method, columns, written)) = t.options.partitioning.as_deref().and_then(parse_key) {
            h.partitioning.insert(key(&t.name), Partitioning { method, columns, written, mysql: None });
        }
    }
    let parents: HashMap<String, Vec<Index>> = s.tables.iter().filter(|t| t.options.partitioning.is_some()).map(|t| (key(&t.name), t.indexes.clone())).collect();
    for t in s.tables.iter_mut() {
        let Some(po) = t.partition_of.clone() else { continue };
        h.attach.insert(key(&t.name), (po.parent.clone(), po.bound.sql.clone()));
        let Some(parent_indexes) = parents.get(&key(&po.parent)).or_else(|| parents.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key(&po.parent))).map(|(_, v)| v)) else { continue };
        let tname = t.name.to_string();
        t.indexes.retain(|ix| {
            let covered = parent_indexes.iter().any(|p| same_index(p, ix));
            if covered {
                report.push(ObjectKind::Index, format!("{tname}.{}", ix.name.as_deref().unwrap_or("unnamed")), Status::Converted, Some(codes::INHERITANCE), ix.origin.line,
                    format!("the parent {}'s own index covers it: PostgreSQL creates it on every partition", po.parent));
            }
            !covered
        });
    }
}

fn merge_partitions(s: &mut Schema, target: Dialect, h: &mut Hierarchy, report: &mut Report) {
    let children: Vec<Table> = s.tables.iter().filter(|t| t.partition_of.is_some()).cloned().collect();
    if children.is_empty() {
        for t in &s.tables {
            if t.options.partitioning.is_some() && s.dialect == Some(Dialect::Postgres) {
                report.push(ObjectKind::Table, t.name.to_string(), Status::Warning, Some(codes::INHERITANCE), t.origin.line,
                    format!("partitioned with no partitions in the script: created as one table on {target}"));
            }
        }
        for t in s.tables.iter_mut() {
            t.options.partitioning = None;
        }
        return;
    }
    // A partition of a partition: its rows end in the topmost table.
    let root = |name: &QualifiedName| -> QualifiedName {
        let mut n = name.clone();
        for _ in 0..32 {
            match children.iter().find(|c| c.name.loosely_eq(&n)).and_then(|c| c.partition_of.as_ref()) {
                Some(p) => n = p.parent.clone(),
                None => break,
            }
        }
        n
    };
    let mut moved_index: HashMap<String, Vec<Index>> = HashMap::new();
    let mut moved_fk: HashMap<String, Vec<ForeignKey>> = HashMap::new();
    for c in &children {
        let r = key(&root(&c.name));
        moved_index.entry(r.clone()).or_default().extend(c.indexes.iter().cloned());
        moved_fk.entry(r).or_default().extend(c.foreign_keys.iter().cloned());
    }
    for t in s.tables.iter_mut().filter(|t| t.partition_of.is_none()) {
        let k = key(&t.name);
        for ix in moved_index.remove(&k).unwrap_or_default() {
            if !t.indexes.iter().any(|x| same_index(x, &ix)) {
                report.push(ObjectKind::Index, format!("{}.{}", t.name, ix.name.as_deref().unwrap_or("unnamed")), Status::Warning, Some(codes::INHERITANCE), ix.origin.line,
                    "index of a partition, moved to the table that holds the rows");
                t.indexes.push(ix);
            }
        }
        for fk in moved_fk.remove(&k).unwrap_or_default() {
            if !t.foreign_keys.iter().any(|x| x.columns == fk.columns && x.ref_table.loosely_eq(&fk.ref_table)) {
                report.push(ObjectKind::ForeignKey, super::convert::fk_object(&t.name.to_string(), &fk), Status::Warning, Some(codes::INHERITANCE), fk.origin.line,
                    "foreign key of a partition, moved to the table that holds the rows");
                t.foreign_keys.push(fk);
            }
        }
    }
    // Keys that pointed at a partition point at the table holding its rows.
    for t in s.tables.iter_mut() {
        for fk in t.foreign_keys.iter_mut() {
            if children.iter().any(|c| c.name.loosely_eq(&fk.ref_table)) {
                fk.ref_table = root(&fk.ref_table);
            }
        }
    }
    let mut parents_done: Vec<QualifiedName> = Vec::new();
    for c in &children {
        let parent = root(&c.name);
        if !parents_done.iter().any(|p| p.loosely_eq(&parent)) {
            parents_done.push(parent.clone());
            if target == Dialect::Mysql {
                match mysql_partitioning(s, &parent, &children) {
                    Ok(p) => {
                        h.partitioning.insert(key(&parent), p);
                    }
                    Err(why) => report.push(ObjectKind::Table, parent.to_string(), Status::Warning, Some(codes::INHERITANCE), s.table(&parent).map(|t| t.origin.line).unwrap_or(0),
                        format!("partitioned in the source: created as one table holding every partition's rows ({why})")),
                }
            } else {
                report.push(ObjectKind::Table, parent.to_string(), Status::Warning, Some(codes::INHERITANCE), s.table(&parent).map(|t| t.origin.line).unwrap_or(0),
                    format!("partitioned in the source: {target} has no partitions, so it is one table holding every partition's rows"));
            }
        }
        let as_partition = h.partitioning.get(&key(&parent)).is_some_and(|p| p.mysql.is_some());
        let whereto = if as_partition { format!("its rows are in {parent}, as MySQL partition {}", c.name.name) } else { format!("its rows are in {parent}") };
        report.push(ObjectKind::Table, c.name.to_string(), Status::Manual, Some(codes::INHERITANCE), c.origin.line,
            format!("partition of {parent}: not a table of its own on {target}; {whereto}; its indexes and foreign keys moved there"));
        for col in &c.columns {
            report.push(ObjectKind::Column, format!("{}.{}", c.name, col.name), Status::Manual, Some(codes::NOT_CREATED), col.origin.line.max(c.origin.line),
                format!("column of partition {}: it is {parent}.{} on the target", c.name, col.name));
        }
    }
    s.tables.retain(|t| t.partition_of.is_none());
    for t in s.tables.iter_mut() {
        if !h.partitioning.contains_key(&key(&t.name)) && s.dialect == Some(Dialect::Postgres) {
            t.options.partitioning = None;
        }
    }
}

/// A literal MySQL can take as a partition bound: a number, or a date or
/// datetime string without a zone.
fn mysql_bound(v: &str) -> Option<String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("MAXVALUE") {
        return Some("MAXVALUE".into());
    }
    if v.parse::<f64>().is_ok() && !v.contains(['e', 'E']) {
        return Some(v.to_string());
    }
    let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
    let ok = inner.len() >= 10
        && inner.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ' || c == 'T',
            13 | 16 => c == ':',
            19 => c == '.',
            _ => c.is_ascii_digit(),
        });
    ok.then(|| format!("'{}'", inner.replace('T', " ")))
}

/// Splits `FOR VALUES FROM (a) TO (b)` / `IN (…)` / `WITH (MODULUS m, …)`.
fn bound_parts(bound: &str) -> Option<(String, Vec<Vec<String>>)> {
    let d = sqlparser::dialect::PostgreSqlDialect {};
    let t = Tokens::new(&d, bound)?;
    let mut kind = String::new();
    let mut groups = Vec::new();
    let mut k = 0;
    while let Some(i) = t.next_sig(k) {
        if let Some(w) = t.word(i) {
            let w = w.to_ascii_uppercase();
            if matches!(w.as_str(), "FROM" | "TO" | "IN" | "WITH" | "DEFAULT") && kind.is_empty() || w == "DEFAULT" {
                kind = if w == "TO" { kind } else { w };
            }
            k = i + 1;
            continue;
        }
        if t.is_char(i, &sqlparser::tokenizer::Token::LParen) {
            let close = t.matching_paren(i)?;
            let mut items = Vec::new();
            let mut j = i + 1;
            while j < close {
                let end = t.end_of_item(j).min(close);
                items.push(t.render_range(j, end).trim().to_string());
                j = end + 1;
            }
            groups.push(items);
            k = close + 1;
            continue;
        }
        k = i + 1;
    }
    Some((kind, groups))
}

fn mysql_partitioning(s: &Schema, parent: &QualifiedName, children: &[Table]) -> Result<Partitioning, String> {
    let t = s.table(parent).ok_or("parent not in the script")?;
    let (method, columns, written) = t.options.partitioning.as_deref().and_then(parse_key).ok_or("partition key not understood")?;
    let cols = columns.ok_or("partitioned on an expression")?;
    let [col] = cols.as_slice() else { return Err("partitioned on several columns".into()) };
    // InnoDB: no foreign keys on or to a partitioned table, and every
    // unique key must hold the partitioning column.
    if !t.foreign_keys.is_empty() || s.tables.iter().any(|o| o.foreign_keys.iter().any(|f| f.ref_table.loosely_eq(parent))) {
        return Err("MySQL does not partition tables with foreign keys".into());
    }
    let keys = t.primary_key.iter().chain(t.uniques.iter());
    if keys.into_iter().any(|k| !k.columns.iter().any(|c| c.eq_ignore_ascii_case(col))) || t.indexes.iter().any(|i| i.unique && !i.parts.iter().any(|p| matches!(&p.key, IndexKey::Column(c) if c.eq_ignore_ascii_case(col)))) {
        return Err(format!("a unique key does not include {col}, which MySQL requires of a partitioned table"));
    }
    let mine: Vec<&Table> = children.iter().filter(|c| c.partition_of.as_ref().is_some_and(|p| p.parent.loosely_eq(parent))).collect();
    if mine.iter().any(|c| children.iter().any(|g| g.partition_of.as_ref().is_some_and(|p| p.parent.loosely_eq(&c.name)))) {
        return Err("sub-partitioned".into());
    }
    let mysql = match method.as_str() {
        "RANGE" => {
            let mut parts: Vec<(QualifiedName, String)> = Vec::new();
            let mut default = None;
            for c in &mine {
                let (kind, groups) = bound_parts(&c.partition_of.as_ref().map(|p| p.bound.sql.clone()).unwrap_or_default()).ok_or("bound not understood")?;
                if kind == "DEFAULT" {
                    default = Some(c.name.clone());
                    continue;
                }
                let upper = groups.get(1).and_then(|g| g.first()).ok_or("range bound not understood")?;
                parts.push((c.name.clone(), mysql_bound(upper).ok_or_else(|| format!("bound {upper} is not a MySQL literal"))?));
            }
            let num = |v: &str| v.parse::<f64>().ok();
            parts.sort_by(|a, b| match (a.1.as_str(), b.1.as_str()) {
                ("MAXVALUE", _) => std::cmp::Ordering::Greater,
                (_, "MAXVALUE") => std::cmp::Ordering::Less,
                (x, y) => match (num(x), num(y)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    _ => x.cmp(y),
                },
            });
            if let Some(d) = default {
                if parts.last().is_some_and(|p| p.1 == "MAXVALUE") {
                    return Err("both a DEFAULT partition and one up to MAXVALUE".into());
                }
                parts.push((d, "MAXVALUE".into()));
            }
            if parts.windows(2).any(|w| w[0].1 == w[1].1) {
                return Err("two partitions end at the same bound".into());
            }
            MysqlPartitions::Range(parts)
        }
        "LIST" => {
            let mut parts = Vec::new();
            for c in &mine {
                let (kind, groups) = bound_parts(&c.partition_of.as_ref().map(|p| p.bound.sql.clone()).unwrap_or_default()).ok_or("bound not understood")?;
                if kind == "DEFAULT" {
                    return Err("MySQL LIST partitioning has no DEFAULT partition".into());
                }
                let values = groups.first().ok_or("list bound not understood")?.iter().map(|v| mysql_bound(v).filter(|b| b != "MAXVALUE").ok_or_else(|| format!("value {v} is not a MySQL literal"))).collect::<Result<Vec<_>, _>>()?;
                parts.push((c.name.clone(), values));
            }
            MysqlPartitions::List(parts)
        }
        "HASH" => {
            let ty = &t.column(col).ok_or("partition column not found")?.ty;
            if !ty.is_integer() {
                return Err("MySQL hash-partitions only on integers".into());
            }
            MysqlPartitions::Hash(mine.len() as u64)
        }
        other => return Err(format!("{other} partitioning")),
    };
    if mine.len() > 8192 {
        return Err("more than 8192 partitions".into());
    }
    Ok(Partitioning { method, columns: Some(cols), written, mysql: Some(mysql) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_keys() {
        assert_eq!(parse_key("PARTITION BY RANGE (created_at)").map(|k| (k.0, k.1)), Some(("RANGE".into(), Some(vec!["created_at".to_string()]))));
        assert_eq!(parse_key("PARTITION BY LIST (lower(a))").and_then(|k| k.1), None);
        let (kind, g) = bound_parts("FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')").unwrap();
        assert_eq!((kind.as_str(), g[1][0].as_str()), ("FROM", "'2024-02-01'"));
        assert_eq!(bound_parts("DEFAULT").unwrap().0, "DEFAULT");
        assert_eq!(mysql_bound("'2024-01-01 00:00:00+00'"), None);
        assert_eq!(mysql_bound("'2024-01-01'").as_deref(), Some("'2024-01-01'"));
        assert_eq!(mysql_bound("MAXVALUE").as_deref(), Some("MAXVALUE"));
    }
}
