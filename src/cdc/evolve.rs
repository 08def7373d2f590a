//! Source DDL during change capture: what changed in a captured table's
//! columns, whether barge can carry it without losing or inventing data,
//! and the target statements that carry it (converted by the same schema
//! engine as the full load, so a column added at the source lands with the
//! type, name and default the full load would have given it).
//!
//! Carried: a column added (with no default, or a constant one), dropped
//! (unless it is part of the key) or renamed, and a type widened so every
//! old value still fits. Anything else stops only the changed table: a
//! type narrowed or changed, a key changed, a column added with values the
//! source computed per row (those values are not in the change stream).

use crate::model::{Column, ColumnType, DefaultValue, Dialect, Schema, Table};
use crate::schema::convert::{self, ConvertOptions};
use crate::schema::ddl;
use crate::schema::naming::{quote_ident, NamePlan};
use crate::schema::report::Report;
use crate::schema::target::TargetTable;
use crate::task::mapping::Mapping;

/// One change to a table's columns, in source names.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnChange {
    Add { column: Box<Column> },
    Drop { name: String },
    Rename { from: String, to: String },
    Retype { name: String, from: ColumnType, to: ColumnType },
}

impl ColumnChange {
    /// For messages: `added column c (integer)`.
    pub fn describe(&self) -> String {
        match self {
            ColumnChange::Add { column } => format!("added column {} ({})", column.name, column.source_type),
            ColumnChange::Drop { name } => format!("dropped column {name}"),
            ColumnChange::Rename { from, to } => format!("renamed column {from} to {to}"),
            ColumnChange::Retype { name, from, to } => format!("widened column {name} from {} to {}", from.describe(), to.describe()),
        }
    }
}

/// Why a change cannot be carried (the table then stops).
pub type Unsupported = String;

/// The changes that turn `old` into `new`. `renames` are (old, new) pairs
/// the source knows to be renames (a parsed `RENAME COLUMN`, or the
/// PostgreSQL catalog); any other name that disappears is a drop, any new
/// one an add.
pub fn diff(old: &Table, new: &Table, renames: &[(String, String)]) -> Result<Vec<ColumnChange>, Unsupported> {
    let mut out = Vec::new();
    let find = |t: &Table, n: &str| t.columns.iter().position(|c| c.name == n);
    let renamed_from = |n: &str| renames.iter().find(|(_, to)| to == n).map(|(from, _)| from.as_str()).filter(|from| find(old, from).is_some() && find(new, from).is_none());
    let renamed_to = |n: &str| renames.iter().find(|(from, _)| from == n).map(|(_, to)| to.as_str()).filter(|to| find(new, to).is_some() && find(old, to).is_none());
    for c in &old.columns {
        if find(new, &c.name).is_some() || renamed_to(&c.name).is_some() {
            continue;
        }
        if key_columns(old).iter().any(|k| k == &c.name) {
            return Err(format!("key column {} was dropped at the source; changes can no longer be matched to rows", c.name));
        }
        out.push(ColumnChange::Drop { name: c.name.clone() });
    }
    for c in &new.columns {
        let before = match renamed_from(&c.name) {
            Some(from) => {
                out.push(ColumnChange::Rename { from: from.to_string(), to: c.name.clone() });
                old.columns.iter().find(|o| o.name == from)
            }
            None => old.columns.iter().find(|o| o.name == c.name),
        };
        match before {
            None => {
                check_added(c)?;
                out.push(ColumnChange::Add { column: Box::new(c.clone()) });
            }
            Some(o) if same_type(o, c) => {}
            Some(o) if widens(&o.ty, &c.ty) => out.push(ColumnChange::Retype { name: c.name.clone(), from: o.ty.clone(), to: c.ty.clone() }),
            Some(o) => {
                return Err(format!(
                    "column {} changed type from {} to {}, which barge carries only when every old value fits the new type",
                    c.name, o.source_type, c.source_type
                ))
            }
        }
    }
    // The key must stay the key (renamed columns follow their new names).
    let old_key: Vec<String> = key_columns(old).into_iter().map(|k| renames.iter().find(|(f, _)| *f == k).map(|(_, t)| t.clone()).unwrap_or(k)).collect();
    if old_key != key_columns(new) {
        return Err(format!("its primary key changed from ({}) to ({})", key_columns(old).join(", "), key_columns(new).join(", ")));
    }
    Ok(out)
}

fn key_columns(t: &Table) -> Vec<String> {
    crate::source::key_columns(t, crate::source::KeyChoice::Primary)
}

fn same_type(a: &Column, b: &Column) -> bool {
    a.ty == b.ty || a.source_type.eq_ignore_ascii_case(&b.source_type)
}

/// A column the source filled in per row when it was added (a sequence, a
/// clock, an expression, an identity) gave existing rows values that no
/// change carries: the target could only make up different ones.
fn check_added(c: &Column) -> Result<(), Unsupported> {
    let per_row = match &c.default {
        None | Some(DefaultValue::Null | DefaultValue::Number(_) | DefaultValue::String(_) | DefaultValue::Bool(_) | DefaultValue::Bytes(_) | DefaultValue::Bits(_)) => None,
        Some(DefaultValue::Sequence(s)) => Some(format!("nextval of {s}")),
        Some(DefaultValue::CurrentTimestamp { .. } | DefaultValue::CurrentDate | DefaultValue::CurrentTime) => Some("the current time".to_string()),
        Some(DefaultValue::Expression(e)) => Some(e.sql.clone()),
    };
    if let Some(what) = per_row.or_else(|| c.identity.as_ref().map(|_| "an identity".to_string())) {
        return Err(format!(
            "column {} was added with a default computed for each existing row ({what}); those values are not in the change stream",
            c.name
        ));
    }
    Ok(())
}

/// Whether every value of `old` fits `new` unchanged.
pub fn widens(old: &ColumnType, new: &ColumnType) -> bool {
    use ColumnType as T;
    let len_ok = |a: &Option<u32>, b: &Option<u32>| match (a, b) {
        (_, None) => true,
        (Some(a), Some(b)) => b >= a,
        (None, Some(_)) => false,
    };
    match (old, new) {
        (T::Int { bits: a, unsigned: ua }, T::Int { bits: b, unsigned: ub }) => (ua == ub && b >= a) || (*ua && !ub && b > a),
        (T::Int { bits, unsigned }, T::Decimal { precision, scale }) => {
            let digits = match (bits, unsigned) {
                (8, _) => 3,
                (16, _) => 5,
                (32, _) => 10,
                (_, false) => 19,
                (_, true) => 20,
            };
            precision.is_none_or(|p| p.saturating_sub(scale.unwrap_or(0)) >= digits)
        }
        (T::Decimal { precision: p1, scale: s1 }, T::Decimal { precision: p2, scale: s2 }) => match (p1, p2) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(p1), Some(p2)) => {
                let (s1, s2) = (s1.unwrap_or(0), s2.unwrap_or(0));
                s2 >= s1 && p2.saturating_sub(s2) >= p1.saturating_sub(s1)
            }
        },
        (T::Float32, T::Float64) => true,
        (T::Char { length: a, .. } | T::Varchar { length: a, .. }, T::Varchar { length: b, .. }) => len_ok(a, b),
        (T::Char { .. } | T::Varchar { .. }, T::Text { .. }) => true,
        (T::Text { size: a, .. }, T::Text { size: b, .. }) => b >= a,
        (T::Binary { length: a } | T::Varbinary { length: a }, T::Varbinary { length: b }) => len_ok(a, b),
        (T::Binary { .. } | T::Varbinary { .. }, T::Blob { .. }) => true,
        (T::Blob { size: a }, T::Blob { size: b }) => b >= a,
        (T::Timestamp { precision: a, tz: ta }, T::Timestamp { precision: b, tz: tb }) | (T::Time { precision: a, tz: ta }, T::Time { precision: b, tz: tb }) => {
            ta == tb && b.unwrap_or(6) >= a.unwrap_or(6)
        }
        (T::Bit { length: a, varying: false }, T::Bit { length: b, varying: true }) => len_ok(a, b),
        (T::Bit { length: a, varying: va }, T::Bit { length: b, varying: vb }) if va == vb && *va => len_ok(a, b),
        (T::Enum { values: a, .. }, T::Enum { values: b, .. }) | (T::Set { values: a }, T::Set { values: b }) => b.starts_with(a),
        (T::Json, T::Jsonb) => false,
        (a, b) => a == b,
    }
}

/// Turns source tables into target tables with the run's conversion
/// options and mapping rules, one table at a time.
#[derive(Debug, Clone)]
pub struct Converter {
    pub convert: ConvertOptions,
    pub mapping: Mapping,
}

impl Converter {
    pub fn target(&self) -> Dialect {
        self.convert.target
    }

    /// Whether the selection rules include a table created at the source.
    pub fn selects(&self, t: &Table) -> bool {
        self.mapping.selects(&t.name)
    }

    /// The mapping's row filter for a table that joined the capture while
    /// changes flow (checked on the new row; see `row_filter::for_changes`).
    pub fn filter(&self, t: &Table) -> crate::error::Result<Option<std::sync::Arc<crate::task::row_filter::RowFilter>>> {
        Ok(self.mapping.change_filter(t, self.convert.source)?.map(std::sync::Arc::new))
    }

    /// The target table for `t` (mapping rules applied: removed columns,
    /// renames). `keep` is the table's current target, whose name stays
    /// (the full load may have resolved a collision).
    pub fn convert(&self, t: &Table, keep: Option<&TargetTable>) -> Option<ConvertedTable> {
        let schema = Schema { dialect: Some(self.convert.source), tables: vec![t.clone()], ..Default::default() };
        let selected = self.mapping.select(&schema);
        if selected.tables.is_empty() {
            return None;
        }
        let mut names = NamePlan::build(&selected, self.convert.target, &self.convert.naming);
        self.mapping.apply_names(&selected, &mut names);
        let converted = convert::convert_with(&selected, &[], Report::default(), &self.convert, names);
        let mut table = converted.target.tables.into_iter().next()?;
        if let Some(k) = keep {
            table.name = k.name.clone();
            table.sql_name = k.sql_name.clone();
            // Columns mapping rules add (constants, expressions) stay.
            for c in k.columns.iter().filter(|c| c.source.starts_with('\u{0}')) {
                if !table.columns.iter().any(|x| x.name == c.name) {
                    table.columns.push(c.clone());
                }
            }
        }
        let target = self.convert.target;
        let names = converted.names;
        let mut create = Vec::new();
        if target == Dialect::Postgres {
            for s in &names.schemas {
                create.push(format!("CREATE SCHEMA IF NOT EXISTS {}", names.quote(s)));
            }
        }
        create.push(ddl::create_table_sql(target, &names, &table));
        create.extend(converted.target.indexes.iter().map(|ix| ddl::index_sql(target, &names, ix)));
        let create = create.into_iter().map(|s| s.trim_end().trim_end_matches(';').to_string()).collect();
        Some(ConvertedTable { table, create })
    }
}

/// One source table converted for the target.
#[derive(Debug, Clone)]
pub struct ConvertedTable {
    pub table: TargetTable,
    /// The statements that create it with its keys and indexes.
    pub create: Vec<String>,
}

/// The statements that make a target table follow `changes`, skipping
/// what the target already has (`have`: its column names now), so a
/// change replayed after a crash applies once.
pub fn alter_statements(dialect: Dialect, old: &TargetTable, new: &TargetTable, changes: &[ColumnChange], have: &[String]) -> Vec<String> {
    // Column definitions only quote names.
    let mut names = NamePlan::default();
    names.target = Some(dialect);
    let names = &names;
    let has = |n: &str| have.iter().any(|h| h.eq_ignore_ascii_case(n));
    let q = |n: &str| quote_ident(dialect, n);
    let table = &new.sql_name;
    let mut out = Vec::new();
    for ch in changes {
        match ch {
            ColumnChange::Add { column } => {
                let Some(tc) = new.column_by_source(&column.name) else { continue };
                if !has(&tc.name) {
                    out.push(format!("ALTER TABLE {table} ADD COLUMN {}", ddl::column_sql(dialect, names, tc)));
                }
            }
            ColumnChange::Drop { name } => {
                let Some(tc) = old.column_by_source(name) else { continue };
                if has(&tc.name) && !new.columns.iter().any(|c| c.name.eq_ignore_ascii_case(&tc.name)) {
                    out.push(format!("ALTER TABLE {table} DROP COLUMN {}", q(&tc.name)));
                }
            }
            ColumnChange::Rename { from, to } => {
                let (Some(a), Some(b)) = (old.column_by_source(from), new.column_by_source(to)) else { continue };
                if a.name != b.name && has(&a.name) && !has(&b.name) {
                    out.push(format!("ALTER TABLE {table} RENAME COLUMN {} TO {}", q(&a.name), q(&b.name)));
                }
            }
            ColumnChange::Retype { name, .. } => {
                let (Some(a), Some(b)) = (old.column_by_source(name), new.column_by_source(name)) else { continue };
                if a.sql_type == b.sql_type && a.ty == b.ty {
                    continue;
                }
                match dialect {
                    Dialect::Postgres => out.push(format!("ALTER TABLE {table} ALTER COLUMN {} TYPE {} USING {}::{}", q(&b.name), b.sql_type, q(&b.name), b.sql_type)),
                    Dialect::Mysql => out.push(format!("ALTER TABLE {table} MODIFY COLUMN {}", ddl::column_sql(dialect, names, b))),
                    // SQLite keeps any value in any column: nothing to widen.
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Key, QualifiedName};
    use crate::schema::typetext;

    fn col(name: &str, ty: &str) -> Column {
        Column::new(name, typetext::recognize(Dialect::Postgres, &typetext::parse(ty)), ty)
    }

    fn table(cols: &[(&str, &str)]) -> Table {
        let mut t = Table::new(QualifiedName::new(Some("public"), "t"));
        t.columns = cols.iter().map(|(n, ty)| col(n, ty)).collect();
        t.primary_key = Some(Key { name: None, columns: vec!["id".into()] });
        t
    }

    #[test]
    fn adds_drops_renames_and_widenings_are_carried() {
        let old = table(&[("id", "integer"), ("v", "integer"), ("s", "character varying(10)"), ("gone", "text")]);
        let new = table(&[("id", "integer"), ("val", "bigint"), ("s", "text"), ("c", "integer")]);
        let changes = diff(&old, &new, &[("v".into(), "val".into())]).unwrap();
        assert!(changes.contains(&ColumnChange::Drop { name: "gone".into() }), "{changes:?}");
        assert!(changes.contains(&ColumnChange::Rename { from: "v".into(), to: "val".into() }), "{changes:?}");
        assert!(changes.iter().any(|c| matches!(c, ColumnChange::Retype { name, .. } if name == "val")), "a rename and a widening at once: {changes:?}");
        assert!(changes.iter().any(|c| matches!(c, ColumnChange::Retype { name, .. } if name == "s")), "{changes:?}");
        assert!(changes.iter().any(|c| matches!(c, ColumnChange::Add { column } if column.name == "c")), "{changes:?}");
        assert_eq!(diff(&old, &old, &[]).unwrap(), vec![]);
    }

    #[test]
    fn narrowing_key_changes_and_per_row_defaults_stop_the_table() {
        let old = table(&[("id", "integer"), ("v", "bigint")]);
        let err = diff(&old, &table(&[("id", "integer"), ("v", "integer")]), &[]).unwrap_err();
        assert!(err.contains("column v changed type from bigint to integer"), "{err}");
        let mut no_key = table(&[("id", "integer"), ("v", "bigint")]);
        no_key.columns.remove(0);
        assert!(diff(&old, &no_key, &[]).unwrap_err().contains("key column id was dropped"));
        let mut new_key = old.clone();
        new_key.primary_key = Some(Key { name: None, columns: vec!["id".into(), "v".into()] });
        assert!(diff(&old, &new_key, &[]).unwrap_err().contains("primary key changed"));
        let mut stamped = old.clone();
        let mut c = col("at", "timestamp with time zone");
        c.default = Some(DefaultValue::CurrentTimestamp { precision: None });
        stamped.columns.push(c);
        assert!(diff(&old, &stamped, &[]).unwrap_err().contains("computed for each existing row"));
        let mut constant = old.clone();
        let mut c = col("n", "integer");
        c.default = Some(DefaultValue::Number("5".into()));
        constant.columns.push(c);
        assert!(diff(&old, &constant, &[]).is_ok(), "a constant default is the same on both sides");
    }

    #[test]
    fn widening_is_judged_by_what_old_values_need() {
        let t = |s: &str| typetext::recognize(Dialect::Postgres, &typetext::parse(s));
        let m = |s: &str| typetext::recognize(Dialect::Mysql, &typetext::parse(s));
        for (a, b) in [("integer", "bigint"), ("smallint", "integer"), ("numeric(10,2)", "numeric(12,2)"), ("numeric(10,2)", "numeric"), ("real", "double precision"), ("varchar(10)", "varchar(20)"), ("varchar(10)", "text"), ("integer", "numeric(12,0)"), ("timestamp(3)", "timestamp(6)")] {
            assert!(widens(&t(a), &t(b)), "{a} -> {b}");
        }
        for (a, b) in [("bigint", "integer"), ("numeric(10,2)", "numeric(10,3)"), ("varchar(20)", "varchar(10)"), ("text", "varchar(10)"), ("integer", "numeric(5,0)"), ("timestamp", "timestamp with time zone"), ("integer", "text")] {
            assert!(!widens(&t(a), &t(b)), "{a} -> {b}");
        }
        assert!(widens(&m("int unsigned"), &m("bigint")));
        assert!(!widens(&m("int unsigned"), &m("int")));
        assert!(widens(&m("enum('a','b')"), &m("enum('a','b','c')")));
        assert!(!widens(&m("enum('a','b')"), &m("enum('b','a')")));
    }
}
