//! The assessment report: one line per object with a status, a stable
//! action code, the source line and an effort estimate; a summary with the
//! share converted automatically per object kind. Rendered as Markdown or
//! JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::model::Dialect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Type,
    Sequence,
    Table,
    Column,
    Constraint,
    ForeignKey,
    Index,
    View,
    Routine,
    Comment,
    Statement,
}

impl ObjectKind {
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schema",
            ObjectKind::Type => "type",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::ForeignKey => "foreign key",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::Routine => "routine",
            ObjectKind::Comment => "comment",
            ObjectKind::Statement => "statement",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Converted,
    /// Converted, but something changed that a person should know.
    Warning,
    /// Not converted: someone must do it by hand.
    Manual,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Converted => "converted",
            Status::Warning => "converted with warning",
            Status::Manual => "needs manual action",
        }
    }
}

/// Rough effort to resolve an item by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    None,
    /// Minutes: review and accept.
    Low,
    /// Up to an hour: rewrite an expression or a view.
    Medium,
    /// Hours or more: port procedural code.
    High,
}

impl Effort {
    pub fn minutes(self) -> u32 {
        match self {
            Effort::None => 0,
            Effort::Low => 5,
            Effort::Medium => 60,
            Effort::High => 240,
        }
    }
}

/// A stable action code with its meaning. Codes never change meaning, so
/// scripts and spreadsheets can key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub title: &'static str,
    pub effort: Effort,
}

macro_rules! codes {
    ($($name:ident = $code:literal, $effort:ident, $title:literal;)*) => {
        pub mod codes {
            use super::{Code, Effort};
            $(pub const $name: Code = Code { code: $code, title: $title, effort: Effort::$effort };)*
            pub const ALL: &[Code] = &[$($name),*];
        }
    };
}

codes! {
    UNPARSABLE = "B001", Medium, "statement could not be parsed; kept as a comment";
    UNRECOGNIZED = "B002", Low, "statement is not schema DDL barge converts; kept as a comment";
    PARTLY_PARSED = "B003", Medium, "statement parsed only in part: the rest was converted, what did not parse is kept as a comment";
    UNTERMINATED = "B004", Medium, "unterminated string or comment: the text it swallowed was not converted";
    TARGET_REFUSED = "B005", Medium, "statement refused by the target when checked; kept as a comment";
    DATA_SKIPPED = "B010", None, "data statement (INSERT/COPY) skipped; move data with `barge migrate`";
    SESSION_SKIPPED = "B011", None, "client or session statement skipped";
    TYPE_MAPPED = "B100", None, "type mapped";
    TYPE_CHANGED = "B101", Low, "type mapped with a change in range, precision or semantics";
    TYPE_UNKNOWN = "B102", Medium, "type has no equivalent on the target; mapped to text";
    UNSIGNED_WIDENED = "B103", None, "unsigned integer widened to the next signed size";
    ZERO_DATE = "B104", Low, "zero-date default dropped and NOT NULL relaxed; zero dates load as NULL";
    ON_UPDATE_TRIGGER = "B105", Low, "ON UPDATE CURRENT_TIMESTAMP emulated with a trigger";
    ENUM_CONVERTED = "B106", None, "enum converted to a named type or a CHECK constraint";
    SET_CONVERTED = "B107", Low, "SET converted; values become an array or comma-separated text";
    TIME_ZONE = "B108", Low, "date/time zone semantics stated";
    PRECISION_REDUCED = "B109", Low, "fractional-second precision reduced to the target maximum";
    BOOLEAN = "B110", None, "integer flag mapped to boolean";
    EXACT_NUMERIC = "B111", None, "exact numeric kept exact";
    DEFAULT_DROPPED = "B120", Medium, "default expression could not be converted; dropped";
    GENERATED_DROPPED = "B121", Medium, "generated column expression could not be converted; created as a plain column";
    GENERATED_STORED = "B122", None, "virtual generated column stored on the target";
    CHECK_DROPPED = "B130", Medium, "check constraint could not be converted; left out";
    INDEX_FEATURE = "B140", Low, "index feature not supported on the target; index adapted";
    INDEX_DROPPED = "B141", Medium, "index could not be created on the target; left out";
    FK_FEATURE = "B150", Low, "foreign key option not supported on the target; dropped";
    VIEW_REWRITTEN = "B160", Low, "view query rewritten for the target; review it";
    VIEW_MANUAL = "B161", Medium, "view query could not be rewritten; kept as a comment";
    ROUTINE = "B170", High, "procedural code is not converted; source kept as a comment";
    RENAMED = "B180", None, "identifier renamed for the target";
    SCHEMA_MAPPED = "B181", None, "source schema mapped to the target";
    TABLE_OPTION = "B190", Low, "table option not carried over (partitioning, storage, engine)";
    COMMENT_DROPPED = "B191", None, "target has no comments; comment kept in the report";
    TARGET_LIMIT = "B192", High, "beyond a limit of the target (columns per table, row size); needs a redesign";
    INHERITANCE = "B193", Low, "table inheritance or partitioning flattened: the target gets plain tables";
    NOT_CREATED = "B194", None, "not created because the table it belongs to is not (the effort is counted on the table)";
    SEQUENCE_EMULATED = "B200", Low, "sequence emulated on a target without sequences";
    IDENTITY = "B201", None, "auto-increment/identity converted";
    RULE_APPLIED = "B300", None, "user or dialect mapping rule applied";
}

/// The file format of a report, from its file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Json,
    /// One self-contained page (see `report_html`).
    Html,
}

impl ReportFormat {
    pub fn of(path: &std::path::Path) -> Option<ReportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "json" => Some(ReportFormat::Json),
            "html" | "htm" => Some(ReportFormat::Html),
            _ => None,
        }
    }

    /// The extension barge writes it under in a state directory.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "md",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }
}

pub fn code_by_name(code: &str) -> Option<Code> {
    codes::ALL.iter().copied().find(|c| c.code == code)
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub kind: ObjectKind,
    /// The source object's name (`table`, `table.column`, `index on table`).
    pub object: String,
    pub status: Status,
    /// Action code, e.g. `B104` (empty for a plain conversion).
    pub code: String,
    /// 1-based line in the input (0 when unknown).
    pub line: usize,
    pub message: String,
    pub effort: Effort,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub source: Option<Dialect>,
    pub target: Option<Dialect>,
    pub input: String,
    pub items: Vec<Item>,
    /// Statements that were not objects (INSERT, SET ...), by code.
    pub skipped: BTreeMap<String, usize>,
    /// Every distinct type mapping: (source type, target type) → count and
    /// the reason, so the report states each mapping once.
    pub mappings: BTreeMap<(String, String), Mapping>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Mapping {
    pub columns: usize,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KindSummary {
    pub total: usize,
    pub converted: usize,
    pub warning: usize,
    pub manual: usize,
    /// converted + warning, as a percentage of total.
    pub automatic_percent: f64,
}

impl Report {
    pub fn push(&mut self, kind: ObjectKind, object: impl Into<String>, status: Status, code: Option<Code>, line: usize, message: impl Into<String>) {
        let effort = match status {
            Status::Converted => Effort::None,
            _ => code.map(|c| c.effort).unwrap_or(Effort::Low),
        };
        self.items.push(Item {
            kind,
            object: object.into(),
            status,
            code: code.map(|c| c.code.to_string()).unwrap_or_default(),
            line,
            message: message.into(),
            effort,
        });
    }

    /// Marks an object the target refused: a manual item on the line the
    /// object came from.
    pub fn refuse(&mut self, kind: ObjectKind, object: &str, message: &str) {
        let line = self.items.iter().find(|i| i.kind == kind && i.object == object).map(|i| i.line).unwrap_or(0);
        self.push(kind, object, Status::Manual, Some(codes::TARGET_REFUSED), line, message);
    }

    /// Marks a refused table and everything the report lists under it
    /// (columns `t.c`, keys and checks `t …`, indexes `t.i`, foreign keys
    /// `t(c) → r`): none of it exists on the target.
    pub fn refuse_table(&mut self, table: &str, message: &str) {
        let belongs = |o: &str| o == table || o.strip_prefix(table).is_some_and(|rest| rest.starts_with(['.', ' ', '(']));
        let mut seen = std::collections::BTreeSet::new();
        let hits: Vec<(ObjectKind, String, usize)> = self
            .items
            .iter()
            .filter(|i| i.kind != ObjectKind::Statement && belongs(&i.object))
            .filter(|i| seen.insert((i.kind, i.object.clone())))
            .map(|i| (i.kind, i.object.clone(), i.line))
            .collect();
        if !hits.iter().any(|(k, _, _)| *k == ObjectKind::Table) {
            self.push(ObjectKind::Table, table, Status::Manual, Some(codes::TARGET_REFUSED), 0, message);
        }
        for (kind, object, line) in hits {
            if kind == ObjectKind::Table {
                self.push(kind, object, Status::Manual, Some(codes::TARGET_REFUSED), line, message);
            } else {
                self.push(kind, object, Status::Manual, Some(codes::NOT_CREATED), line, format!("not created: its table was refused ({message})"));
            }
        }
    }

    pub fn mapping(&mut self, source: &str, target: &str, note: &str) {
        let m = self.mappings.entry((source.to_ascii_lowercase(), target.to_string())).or_default();
        m.columns += 1;
        if m.note.is_empty() {
            m.note = note.to_string();
        }
    }

    pub fn skip(&mut self, code: Code) {
        *self.skipped.entry(code.code.to_string()).or_default() += 1;
    }

    /// Per-kind status counts. Each object counts once, at its worst
    /// status: a table with one warning item is "converted with warning".
    pub fn summary(&self) -> BTreeMap<ObjectKind, KindSummary> {
        // Hashed: a big dump's report has tens of thousands of objects, and
        // only the counts per kind below need an order.
        let mut worst: std::collections::HashMap<(ObjectKind, &str), Status> = std::collections::HashMap::with_capacity(self.items.len());
        for it in &self.items {
            if it.kind == ObjectKind::Statement && it.status == Status::Converted {
                continue;
            }
            let e = worst.entry((it.kind, it.object.as_str())).or_insert(it.status);
            if it.status > *e {
                *e = it.status;
            }
        }
        let mut out: BTreeMap<ObjectKind, KindSummary> = BTreeMap::new();
        for ((kind, _), status) in worst {
            let s = out.entry(kind).or_insert(KindSummary { total: 0, converted: 0, warning: 0, manual: 0, automatic_percent: 0.0 });
            s.total += 1;
            match status {
                Status::Converted => s.converted += 1,
                Status::Warning => s.warning += 1,
                Status::Manual => s.manual += 1,
            }
        }
        for s in out.values_mut() {
            s.automatic_percent = percent(s.converted + s.warning, s.total);
        }
        out
    }

    pub fn overall_percent(&self) -> f64 {
        overall_percent_of(&self.summary())
    }

    pub fn manual_minutes(&self) -> u32 {
        self.items.iter().filter(|i| i.status != Status::Converted).map(|i| i.effort.minutes()).sum()
    }

    pub fn count(&self, status: Status) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }

    /// The report as one JSON document (built without an intermediate
    /// tree, so reports of thousands of tables stream straight out).
    pub fn json_view(&self) -> JsonReport<'_> {
        let sum = self.summary();
        JsonReport {
            source: self.source,
            target: self.target,
            input: &self.input,
            summary: JsonSummary {
                automatic_percent: floor1(overall_percent_of(&sum)),
                converted: self.count(Status::Converted),
                warnings: self.count(Status::Warning),
                manual: self.count(Status::Manual),
                estimated_manual_minutes: self.manual_minutes(),
                by_kind: sum.into_iter().map(|(k, v)| (k.label().replace(' ', "_"), v)).collect(),
                skipped_statements: &self.skipped,
            },
            type_mappings: self.mappings.iter().map(|((s, t), m)| JsonMapping { source: s, target: t, columns: m.columns, note: &m.note }).collect(),
            items: &self.items,
            codes: codes::ALL.iter().map(|c| JsonCode { code: c.code, title: c.title, effort: c.effort }).collect(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_view()).unwrap_or_default()
    }

    pub fn write_json(&self, w: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(std::io::BufWriter::new(w), &self.json_view()).map_err(std::io::Error::other)
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let src = self.source.map(|d| d.name()).unwrap_or("?");
        let dst = self.target.map(|d| d.name()).unwrap_or("?");
        let _ = writeln!(s, "# Schema conversion assessment: {src} → {dst}\n");
        let _ = writeln!(s, "Input: `{}`\n", self.input);
        let _ = writeln!(
            s,
            "**{} converted automatically.** {} converted, {} with warnings, {} need manual action (about {} of work).\n",
            percent_text(self.overall_percent()),
            self.count(Status::Converted),
            self.count(Status::Warning),
            self.count(Status::Manual),
            human_minutes(self.manual_minutes())
        );
        let _ = writeln!(s, "## Summary by object kind\n");
        let _ = writeln!(s, "| kind | total | converted | with warning | manual | automatic |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        for (k, v) in self.summary() {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} | {} |", k.label(), v.total, v.converted, v.warning, v.manual, percent_text(v.automatic_percent));
        }
        if !self.mappings.is_empty() {
            let _ = writeln!(s, "\n## Type mappings\n");
            let _ = writeln!(s, "| source type | target type | columns | note |");
            let _ = writeln!(s, "|---|---|---:|---|");
            for ((src, tgt), m) in &self.mappings {
                let _ = writeln!(s, "| `{}` | `{}` | {} | {} |", src.replace('|', "\\|"), tgt.replace('|', "\\|"), m.columns, m.note.replace('|', "\\|"));
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "\n## Statements skipped\n");
            let _ = writeln!(s, "| code | count | meaning |");
            let _ = writeln!(s, "|---|---:|---|");
            for (c, n) in &self.skipped {
                let title = code_by_name(c).map(|c| c.title).unwrap_or("");
                let _ = writeln!(s, "| {c} | {n} | {title} |");
            }
        }
        for (status, heading) in [(Status::Manual, "Needs manual action"), (Status::Warning, "Converted with warnings")] {
            let rows: Vec<&Item> = self.items.iter().filter(|i| i.status == status).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n## {heading}\n");
            let _ = writeln!(s, "| line | kind | object | code | effort | detail |");
            let _ = writeln!(s, "|---:|---|---|---|---|---|");
            for i in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | `{}` | {} | {:?} | {} |",
                    i.line,
                    i.kind.label(),
                    i.object.replace('|', "\\|"),
                    i.code,
                    i.effort,
                    i.message.replace('|', "\\|").replace('\n', " ")
                );
            }
        }
        let converted = self.items.iter().filter(|i| i.status == Status::Converted).count();
        let _ = writeln!(s, "\n## Converted without remarks\n\n{converted} objects; see the JSON report for the full list.");
        s
    }
}

/// Objects converted automatically (with or without a warning), in
/// percent of all, from a [`Report::summary`].
fn overall_percent_of(sum: &BTreeMap<ObjectKind, KindSummary>) -> f64 {
    let total: usize = sum.values().map(|s| s.total).sum();
    let auto: usize = sum.values().map(|s| s.converted + s.warning).sum();
    percent(auto, total)
}

fn percent(part: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// A share cut (never rounded up) to one decimal: 20 manual objects among
/// 95,000 are 99.9 %, never "100.0 %", which would claim that nothing
/// needs a person. The nudge keeps 29/100*100 = 28.999… at 29.0.
pub fn floor1(x: f64) -> f64 {
    ((x * 10.0) + 1e-6).floor() / 10.0
}

/// [`floor1`] as text: `99.9%`.
pub fn percent_text(p: f64) -> String {
    format!("{:.1}%", floor1(p))
}

pub(crate) fn human_minutes(m: u32) -> String {
    if m < 60 {
        format!("{m} min")
    } else {
        format!("{:.1} h", m as f64 / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_object_once_at_its_worst() {
        let mut r = Report::default();
        r.push(ObjectKind::Table, "a", Status::Converted, None, 1, "");
        r.push(ObjectKind::Table, "a", Status::Warning, Some(codes::TABLE_OPTION), 1, "");
        r.push(ObjectKind::Table, "b", Status::Converted, None, 2, "");
        r.push(ObjectKind::Routine, "p", Status::Manual, Some(codes::ROUTINE), 3, "");
        let s = r.summary();
        assert_eq!(s[&ObjectKind::Table], KindSummary { total: 2, converted: 1, warning: 1, manual: 0, automatic_percent: 100.0 });
        assert_eq!(s[&ObjectKind::Routine].manual, 1);
        assert!((r.overall_percent() - 66.666).abs() < 0.1);
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in codes::ALL {
            assert!(seen.insert(c.code), "duplicate {}", c.code);
        }
    }
}

#[derive(Serialize)]
pub struct JsonReport<'a> {
    source: Option<Dialect>,
    target: Option<Dialect>,
    input: &'a str,
    summary: JsonSummary<'a>,
    type_mappings: Vec<JsonMapping<'a>>,
    items: &'a [Item],
    codes: Vec<JsonCode>,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    automatic_percent: f64,
    converted: usize,
    warnings: usize,
    manual: usize,
    estimated_manual_minutes: u32,
    by_kind: BTreeMap<String, KindSummary>,
    skipped_statements: &'a BTreeMap<String, usize>,
}

#[derive(Serialize)]
struct JsonMapping<'a> {
    source: &'a str,
    target: &'a str,
    columns: usize,
    note: &'a str,
}

#[derive(Serialize)]
struct JsonCode {
    code: &'static str,
    title: &'static str,
    effort: Effort,
}
