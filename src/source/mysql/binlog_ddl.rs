//! DDL in the MySQL/MariaDB binary log: statements arrive as query events,
//! and row events after them use the new layout, so the change capture
//! keeps each table's model in step by reading the statements, parsed by
//! sqlparser, with column definitions read by the schema engine (the same
//! reader `convert-schema` uses).

use std::collections::HashMap;

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, ColumnDef, MySQLColumnPosition, ObjectName, ObjectType, Statement, TableConstraint};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::model::{Column, Dialect, QualifiedName, Table};
use crate::schema::reader;

/// What one statement does to the captured tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Truncate(QualifiedName),
    /// The table's columns from here on.
    Altered { table: Table, renames: Vec<(String, String)> },
    Created(Table),
    /// A change barge does not carry: the table stops.
    Unsupported { table: QualifiedName, message: String },
    /// DDL that changes no row a change carries (an index, a default, a
    /// table option): named on the console, not applied.
    Ignored { table: QualifiedName, what: String },
}

/// The first words of a statement, lowercased, without quotes.
fn words(sql: &str, n: usize) -> Vec<String> {
    sql.split_whitespace().take(n).map(|w| w.trim_matches(|c| c == '`' || c == ';').to_ascii_lowercase()).collect()
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0.iter().map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_else(|| p.to_string())).collect()
}

/// Resolves a statement's table name: `None` for another database.
fn resolve(name: &ObjectName, database: &str, session_db: &str) -> Option<String> {
    let p = parts(name);
    let (db, table) = match p.as_slice() {
        [t] => (session_db.to_string(), t.clone()),
        [d, t] => (d.clone(), t.clone()),
        _ => return None,
    };
    (database.is_empty() || db.eq_ignore_ascii_case(database) || (db.is_empty() && session_db.is_empty())).then_some(table)
}

fn find<'a>(models: &'a HashMap<QualifiedName, Table>, name: &str) -> Option<(&'a QualifiedName, &'a Table)> {
    models.iter().find(|(k, _)| k.name == name).or_else(|| models.iter().find(|(k, _)| k.name.eq_ignore_ascii_case(name)))
}

/// What `sql` (run in `session_db`) does to the tables of `database`
/// whose current models are `models`. Statements that touch no captured
/// table and create none give nothing.
pub fn interpret(sql: &str, database: &str, session_db: &str, models: &HashMap<QualifiedName, Table>) -> Vec<Effect> {
    let w = words(sql, 4);
    let first = w.first().map(String::as_str).unwrap_or("");
    let relevant = matches!(first, "alter" | "create" | "drop" | "rename" | "truncate");
    if !relevant {
        return Vec::new();
    }
    let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return unparsed(sql, &w, database, session_db, models, &e.to_string()),
    };
    let mut out = Vec::new();
    for st in statements {
        match st {
            Statement::AlterTable(at) => {
                let Some(name) = resolve(&at.name, database, session_db) else { continue };
                let Some((key, model)) = find(models, &name) else { continue };
                out.push(alter(key, model, &at.operations, sql));
            }
            Statement::Truncate(t) => {
                for target in &t.table_names {
                    if let Some((key, _)) = resolve(&target.name, database, session_db).and_then(|n| find(models, &n)) {
                        out.push(Effect::Truncate(key.clone()));
                    }
                }
            }
            Statement::Drop { object_type: ObjectType::Table, names, temporary: false, .. } => {
                for n in &names {
                    if let Some((key, _)) = resolve(n, database, session_db).and_then(|n| find(models, &n)) {
                        out.push(Effect::Unsupported { table: key.clone(), message: "it was dropped at the source".into() });
                    }
                }
            }
            Statement::Drop { object_type: ObjectType::Index, table: Some(t), .. } => {
                if let Some((key, _)) = resolve(&t, database, session_db).and_then(|n| find(models, &n)) {
                    out.push(Effect::Ignored { table: key.clone(), what: "an index was dropped".into() });
                }
            }
            Statement::RenameTable(renames) => {
                for r in &renames {
                    if let Some((key, _)) = resolve(&r.old_name, database, session_db).and_then(|n| find(models, &n)) {
                        out.push(Effect::Unsupported { table: key.clone(), message: format!("it was renamed to {} at the source", parts(&r.new_name).join(".")) });
                    }
                }
            }
            Statement::CreateTable(ct) if !ct.temporary => {
                let Some(name) = resolve(&ct.name, database, session_db) else { continue };
                let table = QualifiedName::bare(&name);
                if find(models, &name).is_some() {
                    // CREATE TABLE IF NOT EXISTS of a table that exists.
                    continue;
                }
                if ct.like.is_some() || ct.clone.is_some() {
                    out.push(Effect::Unsupported { table, message: "it was created with LIKE, which does not list its columns".into() });
                    continue;
                }
                match reader::read_script(sql, Dialect::Mysql).schema.tables.into_iter().next() {
                    Some(mut t) if !t.columns.is_empty() => {
                        t.name = table;
                        out.push(Effect::Created(t));
                    }
                    _ => out.push(Effect::Unsupported { table, message: format!("barge cannot read its definition ({})", crate::db::excerpt(sql)) }),
                }
            }
            Statement::CreateIndex(ci) => {
                if let Some((key, _)) = resolve(&ci.table_name, database, session_db).and_then(|n| find(models, &n)) {
                    out.push(Effect::Ignored { table: key.clone(), what: "an index was created".into() });
                }
            }
            _ => {}
        }
    }
    out
}

/// A statement sqlparser cannot read: a captured table it names stops.
fn unparsed(sql: &str, w: &[String], database: &str, session_db: &str, models: &HashMap<QualifiedName, Table>, why: &str) -> Vec<Effect> {
    let name_at = |i: usize| w.get(i).map(|x| x.rsplit('.').next().unwrap_or(x).to_string());
    let named = match (w.first().map(String::as_str), w.get(1).map(String::as_str)) {
        (Some("truncate"), Some("table")) => name_at(2),
        (Some("truncate"), _) => name_at(1),
        (Some("alter" | "drop" | "rename"), Some("table")) => name_at(2),
        (Some("alter"), Some("online" | "ignore")) => name_at(3),
        _ => None,
    };
    let _ = (database, session_db);
    let Some((key, _)) = named.as_deref().and_then(|n| find(models, n)) else { return Vec::new() };
    if w.first().map(String::as_str) == Some("truncate") {
        return vec![Effect::Truncate(key.clone())];
    }
    vec![Effect::Unsupported { table: key.clone(), message: format!("barge cannot read the statement that changed it ({}: {why})", crate::db::excerpt(sql)) }]
}

/// A column definition read by the schema engine.
fn column(def: &str) -> Option<Column> {
    let t = reader::read_script(&format!("CREATE TABLE barge_probe ({def})"), Dialect::Mysql).schema.tables.into_iter().next()?;
    t.columns.into_iter().next()
}

/// CHANGE/MODIFY COLUMN: column `i` takes its new definition (named
/// `name`), in its place or where `at` puts it, keeping a default MySQL
/// does not repeat. Returns the column's name now.
fn redefine(columns: &mut Vec<Column>, i: usize, name: &sqlparser::ast::Ident, data_type: &sqlparser::ast::DataType, options: &[sqlparser::ast::ColumnOption], at: &Option<MySQLColumnPosition>) -> Result<String, String> {
    let def = ColumnDef { name: name.clone(), data_type: data_type.clone(), options: options.iter().map(|o| sqlparser::ast::ColumnOptionDef { name: None, option: o.clone() }).collect() };
    let c = column(&def.to_string()).ok_or_else(|| format!("barge cannot read the new definition of column {}", columns[i].name))?;
    let c = keep_default(&columns[i], c);
    let now = c.name.clone();
    columns.remove(i);
    if at.is_none() {
        columns.insert(i, c);
    } else {
        place(columns, c, at)?;
    }
    Ok(now)
}

fn place(columns: &mut Vec<Column>, c: Column, at: &Option<MySQLColumnPosition>) -> Result<(), String> {
    match at {
        None => columns.push(c),
        Some(MySQLColumnPosition::First) => columns.insert(0, c),
        Some(MySQLColumnPosition::After(a)) => {
            let i = columns.iter().position(|x| x.name.eq_ignore_ascii_case(&a.value)).ok_or_else(|| format!("AFTER names column {}, which barge does not know", a.value))?;
            columns.insert(i + 1, c);
        }
    }
    Ok(())
}

/// The table after `ALTER TABLE … ops`.
fn alter(key: &QualifiedName, model: &Table, ops: &[AlterTableOperation], sql: &str) -> Effect {
    let mut t = model.clone();
    let mut renames = Vec::new();
    let mut ignored = Vec::new();
    let stop = |message: String| Effect::Unsupported { table: key.clone(), message };
    let pos = |t: &Table, n: &str| t.columns.iter().position(|c| c.name.eq_ignore_ascii_case(n));
    for op in ops {
        match op {
            AlterTableOperation::AddColumn { column_def, column_position, if_not_exists, .. } => {
                if pos(&t, &column_def.name.value).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return stop(format!("it was altered to add column {}, which it already has", column_def.name.value));
                }
                let Some(c) = column(&column_def.to_string()) else { return stop(format!("barge cannot read the definition of column {}", column_def.name.value)) };
                if let Err(e) = place(&mut t.columns, c, column_position) {
                    return stop(e);
                }
            }
            AlterTableOperation::DropColumn { column_names, if_exists, .. } => {
                for n in column_names {
                    match pos(&t, &n.value) {
                        Some(i) => {
                            t.columns.remove(i);
                        }
                        None if *if_exists => {}
                        None => return stop(format!("column {} was dropped, which barge does not know", n.value)),
                    }
                }
            }
            AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                let Some(i) = pos(&t, &old_column_name.value) else { return stop(format!("column {} was renamed, which barge does not know", old_column_name.value)) };
                renames.push((t.columns[i].name.clone(), new_column_name.value.clone()));
                t.columns[i].name = new_column_name.value.clone();
            }
            AlterTableOperation::ChangeColumn { old_name, new_name, data_type, options, column_position } => {
                let Some(i) = pos(&t, &old_name.value) else { return stop(format!("column {} was changed, which barge does not know", old_name.value)) };
                let was = t.columns[i].name.clone();
                match redefine(&mut t.columns, i, new_name, data_type, options, column_position) {
                    Ok(now) if now != was => renames.push((was, now)),
                    Ok(_) => {}
                    Err(e) => return stop(e),
                }
            }
            AlterTableOperation::ModifyColumn { col_name, data_type, options, column_position } => {
                let Some(i) = pos(&t, &col_name.value) else { return stop(format!("column {} was modified, which barge does not know", col_name.value)) };
                if let Err(e) = redefine(&mut t.columns, i, col_name, data_type, options, column_position) {
                    return stop(e);
                }
            }
            AlterTableOperation::AlterColumn { column_name, op } => match op {
                AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropDefault => ignored.push(format!("the default of column {} changed", column_name.value)),
                AlterColumnOperation::SetDataType { .. } | AlterColumnOperation::SetNotNull | AlterColumnOperation::DropNotNull => {
                    return stop(format!("barge cannot follow `{op}` on column {}", column_name.value))
                }
                _ => return stop(format!("barge cannot follow `{op}` on column {}", column_name.value)),
            },
            AlterTableOperation::AddConstraint { constraint: TableConstraint::PrimaryKey(_), .. } | AlterTableOperation::DropPrimaryKey { .. } => {
                return stop("its primary key changed at the source".into());
            }
            AlterTableOperation::AddConstraint { .. } => ignored.push("a constraint or index was added".into()),
            AlterTableOperation::DropConstraint { .. } | AlterTableOperation::DropIndex { .. } | AlterTableOperation::DropForeignKey { .. } => ignored.push("a constraint or index was dropped".into()),
            AlterTableOperation::RenameConstraint { .. } => ignored.push("a constraint was renamed".into()),
            AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. } => {}
            AlterTableOperation::AutoIncrement { .. } => ignored.push("its AUTO_INCREMENT counter changed".into()),
            AlterTableOperation::RenameTable { .. } => return stop("it was renamed at the source".into()),
            other => return stop(format!("barge cannot follow `{other}` ({})", crate::db::excerpt(sql))),
        }
    }
    if t.columns == model.columns && renames.is_empty() {
        return Effect::Ignored { table: key.clone(), what: if ignored.is_empty() { "its table options changed".into() } else { ignored.join(", ") } };
    }
    // The key follows renamed columns.
    if let Some(k) = t.primary_key.as_mut() {
        for c in k.columns.iter_mut() {
            if let Some((_, to)) = renames.iter().find(|(from, _)| from.eq_ignore_ascii_case(c)) {
                *c = to.clone();
            }
        }
    }
    Effect::Altered { table: t, renames }
}

/// MODIFY and CHANGE restate a column; rows keep their values, so a
/// default written again is not a default computed for existing rows.
fn keep_default(old: &Column, mut new: Column) -> Column {
    if new.default.is_some() && old.default.is_some() {
        new.default = old.default.clone();
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Key;

    fn models() -> HashMap<QualifiedName, Table> {
        let t = reader::read_script("CREATE TABLE items (id int PRIMARY KEY, name varchar(20), qty int)", Dialect::Mysql).schema.tables.remove(0);
        let mut t = t;
        t.name = QualifiedName::bare("items");
        if t.primary_key.is_none() {
            t.primary_key = Some(Key { name: None, columns: vec!["id".into()] });
        }
        HashMap::from([(t.name.clone(), t)])
    }

    fn altered(sql: &str) -> (Table, Vec<(String, String)>) {
        match interpret(sql, "shop", "shop", &models()).as_slice() {
            [Effect::Altered { table, renames }] => (table.clone(), renames.clone()),
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn names(t: &Table) -> Vec<&str> {
        t.columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn column_changes_follow_mysql_order_and_renames() {
        let (t, _) = altered("ALTER TABLE items ADD COLUMN note text AFTER id");
        assert_eq!(names(&t), ["id", "note", "name", "qty"]);
        let (t, _) = altered("alter table `shop`.`items` add price decimal(10,2) not null default 0, drop column qty");
        assert_eq!(names(&t), ["id", "name", "price"]);
        assert!(matches!(t.columns[2].ty, crate::model::ColumnType::Decimal { precision: Some(10), scale: Some(2) }));
        let (t, r) = altered("ALTER TABLE items RENAME COLUMN name TO title");
        assert_eq!((names(&t), r), (vec!["id", "title", "qty"], vec![("name".to_string(), "title".to_string())]));
        let (t, r) = altered("ALTER TABLE items CHANGE name label varchar(40)");
        assert_eq!(names(&t), ["id", "label", "qty"]);
        assert_eq!(r, vec![("name".to_string(), "label".to_string())]);
        let (t, _) = altered("ALTER TABLE items MODIFY qty bigint");
        assert_eq!(t.columns[2].ty, crate::model::ColumnType::int(64));
    }

    #[test]
    fn other_ddl_is_named_stopped_or_left_alone() {
        let m = models();
        assert_eq!(interpret("ALTER TABLE items ADD INDEX (name)", "shop", "shop", &m), vec![Effect::Ignored { table: QualifiedName::bare("items"), what: "a constraint or index was added".into() }]);
        assert!(matches!(interpret("ALTER TABLE items DROP PRIMARY KEY", "shop", "shop", &m).as_slice(), [Effect::Unsupported { .. }]));
        assert!(matches!(interpret("RENAME TABLE items TO things", "shop", "shop", &m).as_slice(), [Effect::Unsupported { message, .. }] if message.contains("renamed to things")));
        assert!(matches!(interpret("DROP TABLE items", "shop", "shop", &m).as_slice(), [Effect::Unsupported { .. }]));
        assert_eq!(interpret("TRUNCATE TABLE items", "shop", "shop", &m), vec![Effect::Truncate(QualifiedName::bare("items"))]);
        assert!(interpret("ALTER TABLE items ADD COLUMN x int", "shop", "other", &m).is_empty(), "another database");
        assert!(interpret("ALTER TABLE other ADD COLUMN x int", "shop", "shop", &m).is_empty(), "a table not captured");
        assert!(interpret("INSERT INTO items VALUES (1)", "shop", "shop", &m).is_empty());
        match interpret("CREATE TABLE fresh (id int NOT NULL PRIMARY KEY, v varchar(5))", "shop", "shop", &m).as_slice() {
            [Effect::Created(t)] => assert_eq!((t.name.clone(), names(t)), (QualifiedName::bare("fresh"), vec!["id", "v"])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(interpret("CREATE TABLE copy LIKE items", "shop", "shop", &m).as_slice(), [Effect::Unsupported { .. }]));
        assert!(matches!(interpret("ALTER TABLE items FROBNICATE", "shop", "shop", &m).as_slice(), [Effect::Unsupported { message, .. }] if message.contains("cannot read")));
    }
}
