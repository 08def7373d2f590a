//! Views, materialized views, routines and triggers on a migration's
//! target. They are created after the rows are loaded, so no trigger
//! fires during the load, and in an order their dependencies allow
//! (functions, then views in dependency order, then triggers; a step that
//! still finds something missing is tried again once the rest is there).
//!
//! - Same engine: each object is recreated from the engine's own
//!   definition (`pg_get_functiondef`, `pg_get_viewdef`,
//!   `pg_get_triggerdef`; `SHOW CREATE PROCEDURE/FUNCTION/TRIGGER` and
//!   the view body; SQLite's stored statements). Every statement replaces
//!   what an interrupted run left (OR REPLACE, or DROP … IF EXISTS first).
//!   MySQL events are not created (they would run twice, on both
//!   servers): they are listed for a person.
//! - Across engines: views are converted by convert-schema's rewriter and
//!   created; routines and triggers are listed for a person with their
//!   source in the report (the converter's items).

use super::ddl_steps::{Kind, Probe, Step};
use super::shape::Note;
use super::target_schema::Plan;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::model::{Dialect, QualifiedName, RoutineKind, Schema, View};
use crate::schema::ddl;
use crate::schema::report::{codes, ObjectKind, Status};

/// Source definitions the model does not carry: the indexes of
/// PostgreSQL materialized views (`pg_get_indexdef`), and the extensions
/// a PostgreSQL copy needs before its tables (their types, functions).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extras {
    pub matview_indexes: Vec<(QualifiedName, String, String)>,
    pub extensions: Vec<String>,
}

impl Extras {
    /// Reads what a copy needs beyond the model (PostgreSQL sources only).
    pub async fn read(src: &Endpoint, schema: &Schema) -> Result<Extras> {
        let Endpoint::Postgres(ep) = src else { return Ok(Extras::default()) };
        let (extensions, matview_indexes) = crate::source::postgres::extensions_and_matview_indexes(ep, schema).await?;
        Ok(Extras { matview_indexes, extensions })
    }
}

/// The steps that create the source's views, routines and triggers, and
/// the items for a person about those that cannot be created.
pub fn plan(p: &Plan, extras: &Extras, excluded: &[QualifiedName]) -> (Vec<Step>, Vec<Note>) {
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let target = p.converted.target.target;
    let same = p.source == target;
    let views = selected_views(&p.schema.views, excluded, &mut notes);
    if !same {
        // The converter rewrote the views; they are created as it wrote them.
        for v in &p.converted.target.views {
            let Some(src) = views.iter().find(|s| p.relation_sql(&s.name) == v.name) else { continue };
            let kind = if src.materialized { Kind::MaterializedView } else { Kind::View };
            let sql = ddl::view_sql(target, &p.converted.names, v);
            // Replace what an interrupted run left: in place where the
            // engine can (a view on this one keeps it from being dropped).
            let step = match (target, sql.strip_prefix("CREATE VIEW ")) {
                (Dialect::Postgres | Dialect::Mysql, Some(rest)) => Step::new(kind, src.name.to_string(), format!("CREATE OR REPLACE VIEW {rest}")),
                _ => Step::new(kind, src.name.to_string(), sql).before(format!("DROP VIEW IF EXISTS {}", v.name)),
            };
            steps.push(step.probe(Probe::Idempotent).source(view_source(p.source, src)));
        }
        for (view, name, def) in &extras.matview_indexes {
            notes.push(Note {
                kind: ObjectKind::Index,
                object: format!("{view}.{name}"),
                status: Status::Manual,
                code: Some(codes::INDEX_DROPPED),
                message: format!("not created: materialized view {view} is a plain view on {target}, which cannot be indexed ({def})"),
            });
        }
        return (steps, notes);
    }
    // Rules after the views (a rule may be on a view), triggers last.
    let routines: Vec<_> = p.schema.routines.iter().filter(|r| r.kind != RoutineKind::Trigger && r.kind != RoutineKind::Rule).collect();
    let rules: Vec<_> = p.schema.routines.iter().filter(|r| r.kind == RoutineKind::Rule).collect();
    match target {
        Dialect::Postgres => {
            if !routines.is_empty() {
                // Function bodies may use views that come later.
                steps.push(Step::new(Kind::Setting, "check_function_bodies", "SET check_function_bodies = off").probe(Probe::Idempotent));
            }
            for r in &routines {
                if r.source.trim_start().starts_with("--") {
                    notes.push(manual(ObjectKind::Routine, format!("{} {}", r.kind.label(), r.name), &r.source));
                    continue;
                }
                steps.push(Step::new(Kind::Routine, format!("{} {}", r.kind.label(), r.name), r.source.clone()).probe(Probe::Idempotent).source(r.source.clone()));
            }
            for v in &views {
                let name = p.relation_sql(&v.name);
                let (kind, sql) = if v.materialized {
                    (Kind::MaterializedView, format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {name} AS\n{};", v.query.sql))
                } else {
                    (Kind::View, format!("CREATE OR REPLACE VIEW {name} AS\n{};", v.query.sql))
                };
                steps.push(Step::new(kind, v.name.to_string(), sql).probe(Probe::Idempotent).source(view_source(p.source, v)));
                for (_, ix_name, def) in extras.matview_indexes.iter().filter(|(m, _, _)| *m == v.name) {
                    let sql = if_not_exists_index(def);
                    steps.push(Step::new(Kind::Index, format!("{}.{ix_name}", v.name), format!("{sql};")).probe(Probe::Idempotent).source(def.clone()));
                }
            }
            for r in &rules {
                let sql = r.source.trim_start();
                // pg_get_ruledef's CREATE RULE, made to replace an earlier run's.
                let sql = match sql.strip_prefix("CREATE RULE ") {
                    Some(rest) => format!("CREATE OR REPLACE RULE {rest}"),
                    None => sql.to_string(),
                };
                steps.push(Step::new(Kind::Rule, format!("rule {}", r.name), sql).probe(Probe::Idempotent).source(r.source.clone()));
            }
        }
        Dialect::Mysql => {
            for r in &routines {
                let what = match r.kind {
                    RoutineKind::Procedure => "PROCEDURE",
                    RoutineKind::Function => "FUNCTION",
                    RoutineKind::Event => {
                        notes.push(Note {
                            kind: ObjectKind::Routine,
                            object: format!("event {}", r.name),
                            status: Status::Manual,
                            code: Some(codes::ROUTINE),
                            message: "events are not created on the copy, so they do not run on both servers; create it when the copy takes over (source in the report)".into(),
                        });
                        continue;
                    }
                    _ => {
                        notes.push(manual(ObjectKind::Routine, format!("{} {}", r.kind.label(), r.name), &r.source));
                        continue;
                    }
                };
                let q = crate::schema::naming::quote_ident(target, &r.name.name);
                steps.push(
                    Step::new(Kind::Routine, format!("{} {}", r.kind.label(), r.name), without_definer(&r.source))
                        .before(format!("DROP {what} IF EXISTS {q}"))
                        .probe(Probe::Idempotent)
                        .source(r.source.clone()),
                );
            }
            for v in &views {
                let name = p.relation_sql(&v.name);
                steps.push(Step::new(Kind::View, v.name.to_string(), format!("CREATE OR REPLACE VIEW {name} AS {}", v.query.sql)).probe(Probe::Idempotent).source(view_source(p.source, v)));
            }
            for r in &rules {
                notes.push(manual(ObjectKind::Routine, format!("rule {}", r.name), &r.source));
            }
        }
        _ => {
            for r in routines.iter().chain(&rules) {
                notes.push(manual(ObjectKind::Routine, format!("{} {}", r.kind.label(), r.name), &r.source));
            }
            for v in &views {
                let name = p.relation_sql(&v.name);
                let cols = if v.columns.is_empty() { String::new() } else { format!("({})", v.columns.iter().map(|c| p.converted.names.quote(c)).collect::<Vec<_>>().join(", ")) };
                steps.push(
                    Step::new(Kind::View, v.name.to_string(), format!("CREATE VIEW {name}{cols} AS {}", v.query.sql))
                        .before(format!("DROP VIEW IF EXISTS {name}"))
                        .probe(Probe::Idempotent)
                        .source(view_source(p.source, v)),
                );
            }
        }
    }
    // Triggers last: they fire on the tables and may call the routines.
    for r in p.schema.routines.iter().filter(|r| r.kind == RoutineKind::Trigger) {
        let Some(table) = &r.table else { continue };
        if !p.schema.tables.iter().any(|t| t.name.loosely_eq(table)) {
            continue;
        }
        let name = crate::schema::naming::quote_ident(target, &r.name.name);
        let (sql, drop) = match target {
            Dialect::Postgres => (r.source.clone(), format!("DROP TRIGGER IF EXISTS {name} ON {}", p.relation_sql(table))),
            Dialect::Mysql => (without_definer(&r.source), format!("DROP TRIGGER IF EXISTS {name}")),
            _ => (r.source.clone(), format!("DROP TRIGGER IF EXISTS {name}")),
        };
        steps.push(Step::new(Kind::Trigger, format!("trigger {} on {table}", r.name), sql).before(drop).probe(Probe::Idempotent).source(r.source.clone()));
    }
    (steps, notes)
}

fn manual(kind: ObjectKind, object: String, source: &str) -> Note {
    let first = source.lines().next().unwrap_or("").trim_start_matches("--").trim();
    Note { kind, object, status: Status::Manual, code: Some(codes::ROUTINE), message: format!("not created: {first}") }
}

/// Views in an order their dependencies allow: one that mentions another
/// comes after it. Views on tables the selection leaves out are items.
fn selected_views(views: &[View], excluded: &[QualifiedName], notes: &mut Vec<Note>) -> Vec<View> {
    let mut keep: Vec<View> = Vec::new();
    for v in views {
        match excluded.iter().find(|t| mentions(&v.query.sql, &t.name)) {
            Some(t) => notes.push(Note {
                kind: ObjectKind::View,
                object: v.name.to_string(),
                status: Status::Manual,
                code: Some(codes::VIEW_MANUAL),
                message: format!("not created: it reads {t}, which --tables left out"),
            }),
            None => keep.push(v.clone()),
        }
    }
    let mut order: Vec<View> = Vec::new();
    while !keep.is_empty() {
        let ready: Vec<usize> = (0..keep.len()).filter(|&i| keep.iter().enumerate().all(|(j, o)| j == i || !mentions(&keep[i].query.sql, &o.name.name))).collect();
        if ready.is_empty() {
            order.append(&mut keep);
            break;
        }
        let mut batch: Vec<View> = ready.into_iter().rev().map(|i| keep.remove(i)).collect();
        batch.reverse();
        order.append(&mut batch);
    }
    order
}

/// Whether `sql` names `name` as a word (any case, outside nothing fancy).
pub fn mentions(sql: &str, name: &str) -> bool {
    let lower = sql.to_lowercase();
    let needle = name.to_lowercase();
    lower.match_indices(&needle).any(|(i, _)| {
        let before = lower[..i].chars().last();
        let after = lower[i + needle.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

fn view_source(d: Dialect, v: &View) -> String {
    let kw = if v.materialized { "MATERIALIZED VIEW" } else { "VIEW" };
    let _ = d;
    format!("CREATE {kw} {} AS\n{}", v.name, v.query.sql)
}

/// `CREATE [UNIQUE] INDEX name ON …` → `… INDEX IF NOT EXISTS name ON …`.
fn if_not_exists_index(def: &str) -> String {
    match def.find(" INDEX ") {
        Some(i) if !def[i..].starts_with(" INDEX IF NOT EXISTS") => format!("{} INDEX IF NOT EXISTS {}", &def[..i], &def[i + 7..]),
        _ => def.to_string(),
    }
}

/// `CREATE DEFINER=`u`@`h` PROCEDURE …` → `CREATE PROCEDURE …`: the copy's
/// objects belong to the user that creates them (the source's definer may
/// not exist there, and naming another user needs SUPER).
pub fn without_definer(sql: &str) -> String {
    let upper = sql.to_ascii_uppercase();
    let Some(at) = upper.find("DEFINER=").or_else(|| upper.find("DEFINER =")) else { return sql.to_string() };
    // Only in the statement's head, before the body.
    if ["BEGIN", " AS ", " FOR EACH ROW"].iter().any(|w| upper[..at].contains(w)) {
        return sql.to_string();
    }
    let bytes: Vec<char> = sql[at..].chars().collect();
    let mut i = bytes.iter().position(|c| *c == '=').map(|p| p + 1).unwrap_or(0);
    while i < bytes.len() && bytes[i] == ' ' {
        i += 1;
    }
    let skip_token = |mut i: usize| -> usize {
        match bytes.get(i) {
            Some(q @ ('`' | '\'' | '"')) => {
                let q = *q;
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        return i + 1;
                    }
                    i += 1;
                }
                i
            }
            _ => {
                while i < bytes.len() && !bytes[i].is_whitespace() && bytes[i] != '@' && bytes[i] != '(' {
                    i += 1;
                }
                if bytes.get(i) == Some(&'(') && bytes.get(i + 1) == Some(&')') {
                    i += 2; // CURRENT_USER()
                }
                i
            }
        }
    };
    i = skip_token(i);
    if bytes.get(i) == Some(&'@') {
        i = skip_token(i + 1);
    }
    while i < bytes.len() && bytes[i].is_whitespace() {
        i += 1;
    }
    let rest: String = bytes[i..].iter().collect();
    format!("{}{}", &sql[..at], rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definer_goes() {
        assert_eq!(without_definer("CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT 1; END"), "CREATE PROCEDURE `p`() BEGIN SELECT 1; END");
        assert_eq!(without_definer("CREATE DEFINER='a''b'@'%' TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1"), "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1");
        assert_eq!(without_definer("CREATE DEFINER=CURRENT_USER() FUNCTION f() RETURNS int RETURN 1"), "CREATE FUNCTION f() RETURNS int RETURN 1");
        let body = "CREATE PROCEDURE p() BEGIN SELECT 'DEFINER=`x`@`y`'; END";
        assert_eq!(without_definer(body), body, "never inside the body");
    }

    #[test]
    fn views_follow_what_they_read() {
        let v = |n: &str, q: &str| View { name: QualifiedName::bare(n), columns: vec![], query: crate::model::SqlText::new(q, Dialect::Postgres), materialized: false, comment: None, origin: Default::default() };
        let mut notes = Vec::new();
        let order = selected_views(&[v("top", "SELECT * FROM mid"), v("mid", "SELECT * FROM base_v"), v("base_v", "SELECT 1 FROM t"), v("gone", "SELECT * FROM secret")], &[QualifiedName::bare("secret")], &mut notes);
        let names: Vec<&str> = order.iter().map(|v| v.name.name.as_str()).collect();
        assert_eq!(names, ["base_v", "mid", "top"]);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn matview_index_becomes_idempotent() {
        assert_eq!(if_not_exists_index("CREATE UNIQUE INDEX mv_ix ON public.mv USING btree (id)"), "CREATE UNIQUE INDEX IF NOT EXISTS mv_ix ON public.mv USING btree (id)");
    }
}
