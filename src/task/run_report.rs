//! What a migration did with each kind of source object, for the console
//! and for the report files: per kind, how many the source has and how
//! many are on the target; then every item a person must handle, with
//! the server's message or the reason, and the source text of objects to
//! redo by hand. The Markdown report (`assessment.md`), its JSON twin
//! (`assessment.json`) and a page (`assessment.html`) sit side by side in
//! the state directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ddl_steps::{Done, Kind, Ledger};
use crate::error::{Error, Result};
use crate::model::{Dialect, RoutineKind, Schema};
use crate::schema::convert::Converted;
use crate::schema::report::{codes, ObjectKind, Report, Status};

/// One kind of object: in the source, and on the target.
#[derive(Debug, Clone, Serialize)]
pub struct KindCount {
    pub kind: Kind,
    pub source: usize,
    pub target: usize,
    /// Source objects that became one on the target: a partitioned
    /// table's partitions merged, with their copies of an index or a
    /// foreign key.
    #[serde(skip_serializing_if = "is_zero")]
    pub merged: usize,
    /// How the kind exists on this target when not as itself ("inline",
    /// "merged into their tables").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// An object a person must handle.
#[derive(Debug, Clone, Serialize)]
pub struct PersonItem {
    pub kind: String,
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectSummary {
    pub kinds: Vec<KindCount>,
    pub needs_a_person: Vec<PersonItem>,
    pub report_json: Option<PathBuf>,
}

/// The kinds a source object can be, counted in `selected` (the source
/// schema as selected, before it was shaped for the target).
fn source_counts(selected: &Schema, matview_indexes: usize) -> BTreeMap<Kind, usize> {
    let mut c: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut add = |k: Kind, n: usize| *c.entry(k).or_default() += n;
    for t in &selected.tables {
        add(if t.partition_of.is_some() { Kind::Partition } else { Kind::Table }, 1);
        add(Kind::PrimaryKey, t.primary_key.is_some() as usize);
        add(Kind::UniqueKey, t.uniques.len());
        add(Kind::Index, t.indexes.len());
        add(Kind::ForeignKey, t.foreign_keys.len());
        add(Kind::Comment, t.comment.is_some() as usize + t.columns.iter().filter(|c| c.comment.is_some()).count());
    }
    add(Kind::Index, matview_indexes);
    add(Kind::Sequence, selected.sequences.len());
    add(Kind::Domain, selected.domains.len());
    add(Kind::Enum, selected.enums.len());
    for v in &selected.views {
        add(if v.materialized { Kind::MaterializedView } else { Kind::View }, 1);
        add(Kind::Comment, v.comment.is_some() as usize);
    }
    for r in &selected.routines {
        add(
            match r.kind {
                RoutineKind::Trigger => Kind::Trigger,
                RoutineKind::Rule => Kind::Rule,
                _ => Kind::Routine,
            },
            1,
        );
    }
    c.retain(|_, n| *n > 0);
    c
}

/// Counts and items for a finished (or stopped) run.
pub fn summarize(selected: &Schema, shaped: &Schema, converted: &Converted, ledger: &Ledger, report: &Report, extras: &super::objects::Extras, source: Dialect) -> ObjectSummary {
    let target = converted.target.target;
    let matview_indexes = extras.matview_indexes.len();
    let mut sources = source_counts(selected, matview_indexes);
    if !extras.extensions.is_empty() {
        sources.insert(Kind::Extension, extras.extensions.len());
    }
    let after = source_counts(shaped, matview_indexes);
    let mut made = ledger.made();
    // Keys, foreign keys and comments written inside CREATE TABLE count
    // once their table is there.
    let created: Vec<&str> = ledger.steps.values().filter(|r| r.done.made() && matches!(r.kind, Kind::Table | Kind::Partition)).map(|r| r.object.as_str()).collect();
    for t in converted.target.tables.iter().filter(|t| created.contains(&t.source.to_string().as_str())) {
        if !super::target_schema::defers_keys(target) {
            *made.entry(Kind::PrimaryKey).or_default() += (t.primary_key.is_some() || t.columns.iter().any(|c| c.inline_primary_key)) as usize;
            *made.entry(Kind::UniqueKey).or_default() += t.uniques.len();
        }
        *made.entry(Kind::ForeignKey).or_default() += t.inline_foreign_keys.len();
        if target == Dialect::Mysql {
            *made.entry(Kind::Comment).or_default() += t.comment.is_some() as usize + t.columns.iter().filter(|c| c.comment.is_some()).count();
        }
    }
    let mut kinds = Vec::new();
    for (&kind, &n) in &sources {
        let mut count = KindCount { kind, source: n, target: made.get(&kind).copied().unwrap_or(0), merged: 0, note: None };
        if matches!(kind, Kind::Index | Kind::ForeignKey) && sources.contains_key(&Kind::Partition) && target != Dialect::Postgres {
            // What the partitions' copies became: the dropped foreign keys
            // (to tables left out) are listed, not merged.
            let dropped = if kind == Kind::ForeignKey { report.items.iter().filter(|i| i.kind == ObjectKind::ForeignKey && i.message.contains("--tables left out")).count() } else { 0 };
            count.merged = n.saturating_sub(after.get(&kind).copied().unwrap_or(0) + dropped);
        }
        match kind {
            Kind::Enum if target != Dialect::Postgres => {
                count.target = n;
                count.note = Some(if target == Dialect::Mysql { "inline ENUM columns".into() } else { "TEXT with a CHECK".into() });
            }
            Kind::Domain if !(source == Dialect::Postgres && target == Dialect::Postgres) => {
                count.target = n;
                count.note = Some("as the base type with the domain's CHECK on each column".into());
            }
            Kind::Partition if target != Dialect::Postgres => count.note = Some("merged into their partitioned table".into()),
            Kind::Sequence if !target.supports_sequences() => {
                let became = report.items.iter().filter(|i| i.kind == ObjectKind::Sequence && i.code == codes::IDENTITY.code).count();
                count.target = became;
                count.note = Some(format!("{became} as {}", if target == Dialect::Mysql { "AUTO_INCREMENT" } else { "rowid aliases" }));
            }
            Kind::Comment if target == Dialect::Sqlite => count.note = Some("SQLite has no comments".into()),
            Kind::MaterializedView if target != Dialect::Postgres => count.note = Some("as plain views".into()),
            Kind::Index | Kind::ForeignKey if count.merged > 0 => {
                count.note = Some(format!("{} partitions' copies merged into one", count.merged));
            }
            _ => {}
        }
        kinds.push(count);
    }
    let mut needs = Vec::new();
    for i in report.items.iter().filter(|i| i.status == Status::Manual) {
        needs.push(PersonItem { kind: i.kind.label().to_string(), object: i.object.clone(), reason: i.message.clone() });
    }
    if target != Dialect::Postgres {
        for e in &extras.extensions {
            needs.push(PersonItem {
                kind: "extension".into(),
                object: e.clone(),
                reason: format!("{target} has no PostgreSQL extensions: columns of its types were mapped (see the type mappings), its functions are not there"),
            });
        }
        for v in selected.views.iter().filter(|v| v.comment.is_some()) {
            needs.push(PersonItem { kind: "comment".into(), object: format!("view {}", v.name), reason: format!("{target} views have no comments: {}", v.comment.as_deref().unwrap_or("")) });
        }
    }
    if target == Dialect::Sqlite {
        let on_views = selected.views.iter().filter(|v| v.comment.is_some()).count();
        if let Some(n) = sources.get(&Kind::Comment).map(|n| n - on_views).filter(|n| *n > 0) {
            needs.push(PersonItem { kind: "comment".into(), object: format!("{n} comments"), reason: "SQLite has no comments; they are listed in the report".into() });
        }
    }
    ObjectSummary { kinds, needs_a_person: needs, report_json: None }
}

/// Adds the target's answers to the conversion report: each step the
/// target refused (or could not try) is an item for a person with the
/// server's message; on a same-engine copy, views, routines and triggers
/// are items for what was made (the converter, which translates nothing
/// procedural, listed them all as manual).
pub fn finish_report(report: &mut Report, ledger: &Ledger, same_engine: bool, notes: &[super::shape::Note]) {
    if same_engine {
        report.items.retain(|i| !matches!(i.kind, ObjectKind::Routine | ObjectKind::View));
        for r in ledger.steps.values().filter(|r| r.done.made()) {
            let kind = match r.kind {
                Kind::View | Kind::MaterializedView => ObjectKind::View,
                Kind::Routine | Kind::Trigger => ObjectKind::Routine,
                _ => continue,
            };
            report.push(kind, r.object.clone(), Status::Converted, None, 0, format!("created from the source's own definition ({})", r.kind.one()));
        }
    }
    for n in notes {
        report.push(n.kind, n.object.clone(), n.status, n.code, 0, n.message.clone());
    }
    for r in ledger.failures() {
        let (kind, code) = match r.kind {
            Kind::Table | Kind::Partition => (ObjectKind::Table, codes::UNPARSABLE),
            Kind::PrimaryKey | Kind::UniqueKey => (ObjectKind::Constraint, codes::CHECK_DROPPED),
            Kind::Index => (ObjectKind::Index, codes::INDEX_DROPPED),
            Kind::ForeignKey => (ObjectKind::ForeignKey, codes::FK_FEATURE),
            Kind::View | Kind::MaterializedView => (ObjectKind::View, codes::VIEW_MANUAL),
            Kind::Routine | Kind::Trigger | Kind::Rule | Kind::GeneratedTrigger => (ObjectKind::Routine, codes::ROUTINE),
            Kind::Sequence | Kind::Counter => (ObjectKind::Sequence, codes::SEQUENCE_EMULATED),
            Kind::Comment => (ObjectKind::Comment, codes::COMMENT_DROPPED),
            Kind::Schema | Kind::Extension => (ObjectKind::Schema, codes::SCHEMA_MAPPED),
            Kind::Enum | Kind::Domain => (ObjectKind::Type, codes::TYPE_UNKNOWN),
            Kind::Setting => continue,
        };
        let why = match &r.done {
            Done::Refused { message } => format!("the target refused the {}: {message}", r.kind.one()),
            Done::Skipped { reason } => format!("not created: {reason}"),
            _ => continue,
        };
        report.push(kind, r.object.clone(), Status::Manual, Some(code), 0, why);
    }
}

/// Writes `assessment.md`, `assessment.json` and `assessment.html` into `dir`.
pub fn write(dir: &Path, report: &Report, converted: &Converted, ledger: &Ledger, summary: &ObjectSummary) -> Result<(PathBuf, PathBuf)> {
    let md_path = dir.join("assessment.md");
    let json_path = dir.join("assessment.json");
    let mut sources: Vec<(String, String)> = converted.target.manual.iter().map(|m| (m.title.clone(), m.text.clone())).collect();
    for r in ledger.failures() {
        if let Some(s) = &r.source {
            sources.push((format!("{} {}", r.kind.one(), r.object), s.clone()));
        }
    }
    std::fs::write(&md_path, markdown(report, summary, &sources, &json_path)).map_err(|source| Error::Write { path: md_path.clone(), source })?;
    let html_path = dir.join("assessment.html");
    std::fs::write(&html_path, html(report, summary, &sources)).map_err(|source| Error::Write { path: html_path.clone(), source })?;
    let mut json = report.to_json();
    json["objects"] = serde_json::to_value(&summary.kinds).unwrap_or_default();
    json["needs_a_person"] = serde_json::to_value(&summary.needs_a_person).unwrap_or_default();
    json["manual_sources"] = serde_json::Value::Array(sources.iter().map(|(t, s)| serde_json::json!({"object": t, "source": s})).collect());
    let body = serde_json::to_vec_pretty(&json).map_err(|e| Error::other(e.to_string()))?;
    std::fs::write(&json_path, body).map_err(|source| Error::Write { path: json_path.clone(), source })?;
    Ok((md_path, json_path))
}

/// The page form of the report: a migration reads its source from a
/// database, so items link to the source text of the objects that have
/// one (routines, views, refused statements) instead of script lines.
fn html(report: &Report, summary: &ObjectSummary, sources: &[(String, String)]) -> String {
    use crate::schema::report_html::{render, Context, SourceBlock, TargetCount};
    let on_target = summary.kinds.iter().map(|k| TargetCount { kind: k.kind.label().to_string(), source: k.source, target: k.target, note: k.note.clone().unwrap_or_default() }).collect();
    // Items a person needs that the report's items do not already list.
    let listed = |p: &PersonItem| report.items.iter().any(|i| i.status == Status::Manual && i.object == p.object && i.message == p.reason);
    let also = summary.needs_a_person.iter().filter(|p| !listed(p)).map(|p| (p.kind.clone(), p.object.clone(), p.reason.clone())).collect();
    let ctx = Context {
        title: "Migration report",
        script: None,
        sources: sources.iter().map(|(t, s)| SourceBlock { title: t.clone(), text: s.clone() }).collect(),
        on_target,
        also,
    };
    render(report, &ctx)
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(report: &Report, summary: &ObjectSummary, sources: &[(String, String)], json: &Path) -> String {
    let mut s = String::new();
    let src = report.source.map(|d| d.name()).unwrap_or("?");
    let dst = report.target.map(|d| d.name()).unwrap_or("?");
    let _ = writeln!(s, "# Migration report: {src} → {dst}\n");
    let _ = writeln!(s, "Source: `{}`. Every item is also in `{}`.\n", report.input, json.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let _ = writeln!(
        s,
        "**{} converted automatically.** {} converted, {} with warnings, {} need a person.\n",
        crate::schema::report::percent_text(report.overall_percent()),
        report.count(Status::Converted),
        report.count(Status::Warning),
        summary.needs_a_person.len()
    );
    let _ = writeln!(s, "## Objects on the target\n");
    let _ = writeln!(s, "| kind | in the source | on the target | note |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    for k in &summary.kinds {
        let _ = writeln!(s, "| {} | {} | {} | {} |", k.kind.label(), k.source, k.target, cell(k.note.as_deref().unwrap_or("")));
    }
    if !summary.needs_a_person.is_empty() {
        let _ = writeln!(s, "\n## Needs a person\n");
        let _ = writeln!(s, "| kind | object | detail |");
        let _ = writeln!(s, "|---|---|---|");
        for i in &summary.needs_a_person {
            let _ = writeln!(s, "| {} | `{}` | {} |", i.kind, cell(&i.object), cell(&i.reason));
        }
    }
    let warnings: Vec<_> = report.items.iter().filter(|i| i.status == Status::Warning).collect();
    if !warnings.is_empty() {
        let _ = writeln!(s, "\n## Converted with warnings\n");
        let _ = writeln!(s, "| kind | object | code | detail |");
        let _ = writeln!(s, "|---|---|---|---|");
        for i in warnings {
            let _ = writeln!(s, "| {} | `{}` | {} | {} |", i.kind.label(), cell(&i.object), i.code, cell(&i.message));
        }
    }
    if !report.mappings.is_empty() {
        let _ = writeln!(s, "\n## Type mappings\n");
        let _ = writeln!(s, "| source type | target type | columns | note |");
        let _ = writeln!(s, "|---|---|---:|---|");
        for ((a, b), m) in &report.mappings {
            let _ = writeln!(s, "| `{}` | `{}` | {} | {} |", cell(a), cell(b), m.columns, cell(&m.note));
        }
    }
    if !sources.is_empty() {
        let _ = writeln!(s, "\n## Source of the objects to redo by hand\n");
        for (title, text) in sources {
            let _ = writeln!(s, "### {title}\n\n```sql\n{}\n```\n", text.trim_end());
        }
    }
    s
}

/// The console lines: objects per kind, the first items for a person, and
/// where the reports are.
pub fn console_lines(summary: &ObjectSummary, report_md: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let parts: Vec<String> = summary
        .kinds
        .iter()
        .filter(|k| !matches!(k.kind, Kind::Setting | Kind::Counter | Kind::GeneratedTrigger))
        .map(|k| {
            let mut p = format!("{} of {} {}", k.target, k.source, k.kind.label());
            if let Some(n) = &k.note {
                p.push_str(&format!(" ({n})"));
            }
            p
        })
        .collect();
    if !parts.is_empty() {
        lines.push(format!("objects on the target: {}", parts.join(", ")));
    }
    let n = summary.needs_a_person.len();
    if n == 0 {
        lines.push("needs a person: nothing".into());
    } else {
        lines.push(format!("needs a person: {n} item{}", if n == 1 { "" } else { "s" }));
        for i in summary.needs_a_person.iter().take(8) {
            lines.push(format!("  {} {}: {}", i.kind, i.object, first_line(&i.reason, 160)));
        }
        if n > 8 {
            lines.push(format!("  … and {} more in the report", n - 8));
        }
    }
    let json = summary.report_json.as_ref().map(|p| format!(" (JSON: {}, page: {})", p.display(), p.with_extension("html").display())).unwrap_or_default();
    lines.push(format!("report: {}{json}", report_md.display()));
    lines
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}
