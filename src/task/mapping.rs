//! Table mappings, as in AWS DMS: selection rules (include/exclude by
//! schema and table wildcards, with a row filter), and transformation rules
//! (rename or re-case a schema, table or column; add a column with a
//! constant or an expression; drop a column). `--tables` is the short form
//! of selection rules. Files are JSON or TOML; DMS's hyphenated key names
//! (`rule-type`, `object-locator`, `rule-action`, ...) are accepted too.

use std::path::Path;

use serde::Deserialize;

use super::row_filter::{FilterSpec, RowFilter};
use crate::error::{Error, Result};
use crate::model::{Column, Dialect, QualifiedName, Schema, Table};

/// Where a rule was written, for messages that point at it.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File { file: String, line: usize, column: usize },
    /// A `--tables` item, as given.
    Tables(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Locator {
    #[serde(default, alias = "schema")]
    pub schema_name: Option<String>,
    #[serde(default, alias = "table")]
    pub table_name: Option<String>,
    #[serde(default, alias = "column")]
    pub column_name: Option<String>,
}

/// One rule. Unknown keys are refused (a misspelt `"filtr"` must not be
/// dropped), and each rule is checked as it is read, so a mistake is
/// reported at its place in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    pub rule_type: String,
    pub rule_id: Option<serde_json::Value>,
    pub rule_name: Option<String>,
    /// selection: include | exclude. transformation: rename, convert-lowercase,
    /// convert-uppercase, add-prefix, add-suffix, add-column, remove-column.
    pub rule_action: String,
    /// transformation: schema | table | column.
    pub rule_target: Option<String>,
    pub object_locator: Locator,
    /// Rename target, prefix/suffix text.
    pub value: Option<String>,
    /// selection: a row filter, a WHERE condition in the source's SQL
    /// (full load only: changes cannot be checked against SQL).
    pub filter: Option<String>,
    /// selection: DMS source filters (see [`super::row_filter`]).
    pub filters: Vec<FilterSpec>,
    /// add-column: the new column's name, type (in the target's syntax)
    /// and value: a constant, or an expression in the source's SQL.
    pub column: Option<String>,
    pub data_type: Option<String>,
    pub constant: Option<String>,
    pub expression: Option<String>,
    /// Where the rule was written (set after reading).
    pub origin: Option<Origin>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawRule {
    #[serde(alias = "type")]
    rule_type: String,
    #[serde(default, alias = "id")]
    rule_id: Option<serde_json::Value>,
    #[serde(default, alias = "name")]
    rule_name: Option<String>,
    #[serde(alias = "action")]
    rule_action: String,
    #[serde(default, alias = "target")]
    rule_target: Option<String>,
    #[serde(default, alias = "locator")]
    object_locator: Locator,
    #[serde(default)]
    value: Option<String>,
    #[serde(default, alias = "where")]
    filter: Option<String>,
    #[serde(default)]
    filters: Vec<FilterSpec>,
    #[serde(default)]
    column: Option<String>,
    #[serde(default, alias = "data-type")]
    data_type: Option<String>,
    #[serde(default)]
    constant: Option<String>,
    #[serde(default)]
    expression: Option<String>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;
    fn try_from(r: RawRule) -> std::result::Result<Rule, String> {
        let rule = Rule {
            rule_type: r.rule_type,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            rule_action: r.rule_action,
            rule_target: r.rule_target,
            object_locator: r.object_locator,
            value: r.value,
            filter: r.filter,
            filters: r.filters,
            column: r.column,
            data_type: r.data_type,
            constant: r.constant,
            expression: r.expression,
            origin: None,
        };
        rule.check()?;
        Ok(rule)
    }
}

const TRANSFORMATIONS: &str = "rename, convert-lowercase, convert-uppercase, add-prefix, add-suffix, add-column, remove-column";

impl Rule {
    fn check(&self) -> std::result::Result<(), String> {
        let filtered = self.filter.is_some() || !self.filters.is_empty();
        match (self.rule_type.as_str(), self.rule_action.as_str()) {
            ("selection", "include" | "explicit") => {}
            ("selection", "exclude") if filtered => {
                return Err("an exclude rule cannot have filters (they would be ignored); put them on an include rule".into());
            }
            ("selection", "exclude") => {}
            ("transformation", _) if filtered => return Err("filters belong to selection rules, not transformation rules".into()),
            ("transformation", "rename" | "add-prefix" | "add-suffix") if self.value.is_none() => {
                return Err(format!("{} needs a `value`", self.rule_action));
            }
            ("transformation", "add-column") if self.column.is_none() || (self.constant.is_none() && self.expression.is_none()) => {
                return Err("add-column needs `column` and a `constant` or an `expression`".into());
            }
            ("transformation", "rename" | "convert-lowercase" | "convert-uppercase" | "add-prefix" | "add-suffix" | "add-column" | "remove-column") => {}
            ("selection", a) => return Err(format!("unknown selection rule-action `{a}`; use include, explicit or exclude")),
            ("transformation", a) => return Err(format!("unknown transformation rule-action `{a}`; use one of: {TRANSFORMATIONS}")),
            (t, _) => return Err(format!("unknown rule-type `{t}`; use selection or transformation")),
        }
        if let Some(t) = &self.rule_target {
            if !matches!(t.as_str(), "schema" | "table" | "column") {
                return Err(format!("unknown rule-target `{t}`; use schema, table or column"));
            }
        }
        for f in &self.filters {
            f.check()?;
        }
        Ok(())
    }

    /// An error about this rule, pointing at where it was written.
    pub fn error(&self, message: impl Into<String>, hint: Option<String>) -> Error {
        let message = message.into();
        match &self.origin {
            Some(Origin::File { file, line, column }) => Error::At { file: file.clone(), line: *line, column: *column, message, hint },
            Some(Origin::Tables(item)) => Error::Usage(format!("--tables `{item}`: {message}")),
            None => Error::Usage(message),
        }
    }

    /// The rule as a user recognizes it: `include public.order%`.
    fn describe(&self) -> String {
        let l = &self.object_locator;
        let mut what = match (&l.schema_name, &l.table_name) {
            (Some(s), Some(t)) => format!("{s}.{t}"),
            (None, Some(t)) => t.clone(),
            (Some(s), None) => format!("{s}.%"),
            (None, None) => "%".into(),
        };
        if let Some(c) = &l.column_name {
            what.push_str(&format!(" column {c}"));
        }
        format!("{} {what}", self.rule_action)
    }
}

/// A column the load adds: computed on the source as part of the read.
#[derive(Debug, Clone)]
pub struct AddedColumn {
    pub name: String,
    pub data_type: String,
    /// SQL in the source dialect (a quoted literal for a constant).
    pub source_sql: String,
}

#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub rules: Vec<Rule>,
}

/// DMS wildcards: `%` and `*` match any run, `_` and `?` one character;
/// case-insensitive.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    crate::model::pattern::matches(pattern, text, crate::model::pattern::DMS)
}

impl Locator {
    fn matches_table(&self, t: &QualifiedName) -> bool {
        self.matches_schema(t.schema.as_deref()) && self.table_name.as_deref().is_none_or(|p| wildcard(p, &t.name))
    }
    fn matches_schema(&self, s: Option<&str>) -> bool {
        match (&self.schema_name, s) {
            (None, _) => true,
            (Some(p), Some(s)) => wildcard(p, s),
            (Some(p), None) => p == "%" || p == "*",
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// serde_json's message without its trailing " at line L column C".
fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

const MAPPING_HINT: &str = "see README.md, section Table mappings";

/// The rules of a JSON mapping, each with its position in the file.
fn read_json(text: &str, file: &str) -> Result<Vec<Rule>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct JsonFile<'a> {
        #[serde(borrow, default)]
        rules: Vec<&'a serde_json::value::RawValue>,
    }
    let at = |line: usize, column: usize, message: String| Error::At { file: file.to_string(), line, column, message: format!("not a valid mapping: {message}"), hint: Some(MAPPING_HINT.into()) };
    let parsed: JsonFile = serde_json::from_str(text).map_err(|e| at(e.line(), e.column(), json_message(&e)))?;
    let mut rules = Vec::new();
    for raw in parsed.rules {
        // The raw value borrows from `text`: its address gives its offset.
        let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let (line, column) = line_column(text, offset);
        let mut rule: Rule = serde_json::from_str(raw.get()).map_err(|e| {
            let (l, c) = if e.line() <= 1 { (line, column + e.column().saturating_sub(1)) } else { (line + e.line() - 1, e.column()) };
            at(l, c, json_message(&e))
        })?;
        rule.origin = Some(Origin::File { file: file.to_string(), line, column });
        rules.push(rule);
    }
    Ok(rules)
}

fn read_toml(text: &str, file: &str) -> Result<Vec<Rule>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TomlFile {
        #[serde(default)]
        rules: Vec<toml::Spanned<Rule>>,
    }
    let parsed: TomlFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_column(text, s.start)).unwrap_or((1, 1));
        Error::At { file: file.to_string(), line, column, message: format!("not a valid mapping: {}", e.message()), hint: Some(MAPPING_HINT.into()) }
    })?;
    Ok(parsed
        .rules
        .into_iter()
        .map(|spanned| {
            let (line, column) = line_column(text, spanned.span().start);
            let mut rule = spanned.into_inner();
            rule.origin = Some(Origin::File { file: file.to_string(), line, column });
            rule
        })
        .collect())
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        let file = path.display().to_string();
        let rules = if path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{') {
            read_json(&text, &file)?
        } else {
            read_toml(&text, &file)?
        };
        Ok(Mapping { rules })
    }

    /// `--tables 'public.orders,customers,!audit_%'`.
    pub fn from_tables_arg(arg: &str) -> Mapping {
        let mut rules = Vec::new();
        for item in arg.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (action, pat) = match item.strip_prefix('!') {
                Some(p) => ("exclude", p),
                None => ("include", item),
            };
            let (schema, table) = match pat.split_once('.') {
                Some((s, t)) => (Some(s.to_string()), t.to_string()),
                None => (None, pat.to_string()),
            };
            rules.push(Rule {
                rule_type: "selection".into(),
                rule_id: None,
                rule_name: None,
                rule_action: action.into(),
                rule_target: None,
                object_locator: Locator { schema_name: schema, table_name: Some(table), column_name: None },
                value: None,
                filter: None,
                filters: Vec::new(),
                column: None,
                data_type: None,
                constant: None,
                expression: None,
                origin: Some(Origin::Tables(item.to_string())),
            });
        }
        Mapping { rules }
    }

    pub fn extend(&mut self, other: Mapping) {
        self.rules.extend(other.rules);
    }

    fn selections(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.rule_type == "selection")
    }

    /// Is the table selected? With no include rule, everything is.
    pub fn selects(&self, t: &QualifiedName) -> bool {
        let mut any_include = false;
        let mut included = false;
        for r in self.selections() {
            let hit = r.object_locator.matches_table(t);
            match r.rule_action.as_str() {
                "exclude" if hit => return false,
                "include" | "explicit" => {
                    any_include = true;
                    included |= hit;
                }
                _ => {}
            }
        }
        !any_include || included
    }

    /// Every filter the include rules matching `t` give it (DMS `filters`
    /// and SQL `filter`s, all ANDed), compiled for `t`'s columns. A filter
    /// naming a column `t` lacks is an error that points at its rule.
    pub fn row_filter(&self, t: &Table, dialect: Dialect) -> Result<Option<RowFilter>> {
        let rules: Vec<&Rule> = self
            .selections()
            .filter(|r| r.rule_action != "exclude" && r.object_locator.matches_table(&t.name))
            .filter(|r| r.filter.is_some() || !r.filters.is_empty())
            .collect();
        if rules.is_empty() {
            return Ok(None);
        }
        for r in &rules {
            let specs: Vec<&FilterSpec> = r.filters.iter().collect();
            RowFilter::compile(t, dialect, &specs, Vec::new()).map_err(|m| r.error(format!("rule {}: {m}", r.describe()), Some(MAPPING_HINT.into())))?;
        }
        let specs: Vec<&FilterSpec> = rules.iter().flat_map(|r| r.filters.iter()).collect();
        let sql: Vec<String> = rules.iter().filter_map(|r| r.filter.clone()).collect();
        Ok(Some(RowFilter::compile(t, dialect, &specs, sql).expect("each rule's filters compiled above")))
    }

    /// The row filter of `t` as a WHERE condition in the source's SQL.
    pub fn filter_sql(&self, t: &Table, dialect: Dialect) -> Result<Option<String>> {
        Ok(self.row_filter(t, dialect)?.map(|f| f.to_sql()))
    }

    /// The row filter that changes to `t` go through. A SQL `filter` can
    /// only be evaluated by the source database, so it is refused here
    /// rather than left out.
    pub fn change_filter(&self, t: &Table, dialect: Dialect) -> Result<Option<RowFilter>> {
        let f = self.row_filter(t, dialect)?;
        if f.as_ref().is_some_and(RowFilter::has_sql) {
            let rule = self
                .selections()
                .find(|r| r.rule_action != "exclude" && r.filter.is_some() && r.object_locator.matches_table(&t.name))
                .expect("a SQL filter comes from a rule");
            return Err(rule.error(
                format!("rule {}: its SQL `filter` cannot be applied to changes (only the source database can evaluate SQL), so table {} would replicate unfiltered rows", rule.describe(), t.name),
                Some(format!("write it as DMS `filters` (operators: {}), or load with --mode full-load", super::row_filter::OPERATORS)),
            ));
        }
        Ok(f)
    }

    /// Rules that match nothing: a selection rule no source table matches,
    /// a transformation rule no selected table (or column) matches. Each
    /// is a typo until proven otherwise.
    fn unmatched(&self, full: &Schema, selected: &Schema) -> Vec<&Rule> {
        let column_hit = |r: &Rule, t: &Table| {
            let pat = r.object_locator.column_name.as_deref().unwrap_or("%");
            t.columns.iter().any(|c| wildcard(pat, &c.name))
        };
        self.rules
            .iter()
            .filter(|r| {
                let l = &r.object_locator;
                let hit = if r.rule_type == "selection" {
                    full.tables.iter().any(|t| l.matches_table(&t.name))
                } else {
                    match (r.rule_action.as_str(), r.rule_target.as_deref()) {
                        ("remove-column", _) | (_, Some("column")) => selected.tables.iter().filter(|t| l.matches_table(&t.name)).any(|t| column_hit(r, t))
                            // remove-column has already dropped what it matched.
                            || (r.rule_action == "remove-column" && full.tables.iter().filter(|t| l.matches_table(&t.name) && selected.tables.iter().any(|s| s.name == t.name)).any(|t| column_hit(r, t))),
                        (_, Some("schema")) => selected.tables.iter().any(|t| l.matches_schema(t.name.schema.as_deref())),
                        _ => selected.tables.iter().any(|t| l.matches_table(&t.name)),
                    }
                };
                !hit
            })
            .collect()
    }

    fn transformations(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.rule_type == "transformation")
    }

    /// Applies selection and column removal to a copy of the source schema.
    pub fn select(&self, schema: &Schema) -> Schema {
        let mut s = schema.clone();
        s.tables.retain(|t| self.selects(&t.name));
        s.views.clear(); // a data move copies tables; views come with convert-schema
        s.routines.clear();
        for r in self.transformations().filter(|r| r.rule_action == "remove-column") {
            for t in s.tables.iter_mut().filter(|t| r.object_locator.matches_table(&t.name)) {
                let pat = r.object_locator.column_name.clone().unwrap_or_default();
                drop_columns(t, |c| wildcard(&pat, &c.name));
            }
        }
        // Foreign keys to tables left out cannot be created.
        let names: Vec<QualifiedName> = s.tables.iter().map(|t| t.name.clone()).collect();
        for t in s.tables.iter_mut() {
            t.foreign_keys.retain(|fk| names.iter().any(|n| n.loosely_eq(&fk.ref_table)));
        }
        s
    }

    /// [`Mapping::select`], refusing what would move other rows than the
    /// user asked for: a rule or `--tables` pattern that matches nothing
    /// (a typo), a selection with no table in it, and a filter that cannot
    /// be compiled for its table (an unknown column, a value of the wrong
    /// type). Each error names the rule or pattern, and the tables there are.
    pub fn select_some(&self, schema: &Schema, src: &crate::endpoint::Endpoint) -> crate::error::Result<Schema> {
        let selected = self.select(schema);
        let names: Vec<String> = schema.tables.iter().take(30).map(|t| t.name.to_string()).collect();
        let more = if schema.tables.len() > 30 { format!(" (and {} more)", schema.tables.len() - 30) } else { String::new() };
        let listing = format!("the source {src} has: {}{more}", names.join(", "));
        let unmatched = self.unmatched(schema, &selected);
        if let Some(first) = unmatched.first() {
            let what = |r: &Rule| match &r.origin {
                Some(Origin::Tables(item)) => format!("`{item}`"),
                _ => format!("rule {}", r.describe()),
            };
            let all: Vec<String> = unmatched.iter().map(|r| what(r)).collect();
            let noun = if first.rule_type == "selection" { "table" } else { "selected table or column" };
            let message = if unmatched.len() == 1 { format!("matches no {noun}") } else { format!("matches no {noun}; nor do {}", all[1..].join(", ")) };
            return Err(match &first.origin {
                Some(Origin::Tables(item)) => Error::Usage(format!("--tables: `{item}` {message}; {listing}")),
                _ => first.error(format!("{} {message}", what(first)), Some(listing)),
            });
        }
        if selected.tables.is_empty() {
            let patterns: Vec<String> = self.selections().map(|r| format!("{}{}", if r.rule_action == "exclude" { "!" } else { "" }, r.object_locator.table_name.clone().unwrap_or_default())).collect();
            if schema.tables.is_empty() {
                // Not a usage error: the command was right, the database is empty.
                return Err(crate::error::Error::Other {
                    message: format!("the source {src} has no tables: nothing to move or compare"),
                    hint: Some("check the database name in the URL (and ?schema= for PostgreSQL), and that the user can see its tables".into()),
                });
            }
            return Err(crate::error::Error::Usage(format!("no table is left once {} are applied; {listing}", patterns.join(", "))));
        }
        let dialect = schema.dialect.unwrap_or(Dialect::Postgres);
        for t in &selected.tables {
            self.row_filter(t, dialect)?;
        }
        Ok(selected)
    }

    /// Columns to add to a table, computed on read.
    pub fn added_columns(&self, t: &QualifiedName) -> Vec<AddedColumn> {
        self.transformations()
            .filter(|r| r.rule_action == "add-column" && r.object_locator.matches_table(t))
            .map(|r| AddedColumn {
                name: r.column.clone().unwrap_or_default(),
                data_type: r.data_type.clone().unwrap_or_else(|| "text".into()),
                source_sql: match (&r.expression, &r.constant) {
                    (Some(e), _) => e.clone(),
                    (None, Some(c)) => format!("'{}'", c.replace('\'', "''")),
                    (None, None) => "NULL".into(),
                },
            })
            .collect()
    }

    /// Renames and re-casing, applied to the naming plan's target names.
    pub fn apply_names(&self, schema: &Schema, plan: &mut crate::schema::naming::NamePlan) {
        for r in self.transformations() {
            let target = r.rule_target.as_deref().unwrap_or("table");
            let rename = |current: &str| -> String {
                match r.rule_action.as_str() {
                    "rename" => r.value.clone().unwrap_or_else(|| current.to_string()),
                    "convert-lowercase" => current.to_lowercase(),
                    "convert-uppercase" => current.to_uppercase(),
                    "add-prefix" => format!("{}{current}", r.value.as_deref().unwrap_or("")),
                    "add-suffix" => format!("{current}{}", r.value.as_deref().unwrap_or("")),
                    _ => current.to_string(),
                }
            };
            if !matches!(r.rule_action.as_str(), "rename" | "convert-lowercase" | "convert-uppercase" | "add-prefix" | "add-suffix") {
                continue;
            }
            for t in &schema.tables {
                let key = crate::schema::naming::key(&t.name);
                match target {
                    "schema" if r.object_locator.matches_schema(t.name.schema.as_deref()) => {
                        if let Some(parts) = plan.tables.get_mut(&key) {
                            if parts.len() == 2 {
                                parts[0] = rename(&parts[0]);
                            } else {
                                parts.insert(0, rename(t.name.schema.as_deref().unwrap_or("public")));
                            }
                            let s = parts[0].clone();
                            if !plan.schemas.contains(&s) && s != "public" {
                                plan.schemas.push(s);
                            }
                        }
                    }
                    "table" if r.object_locator.matches_table(&t.name) => {
                        if let Some(parts) = plan.tables.get_mut(&key) {
                            if let Some(last) = parts.last_mut() {
                                *last = rename(last);
                            }
                        }
                    }
                    "column" if r.object_locator.matches_table(&t.name) => {
                        let pat = r.object_locator.column_name.clone().unwrap_or_else(|| "%".into());
                        for c in &t.columns {
                            if wildcard(&pat, &c.name) {
                                let ck = crate::schema::naming::column_key(&t.name, &c.name);
                                if let Some(v) = plan.columns.get_mut(&ck) {
                                    *v = rename(v);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn drop_columns(t: &mut Table, drop: impl Fn(&Column) -> bool) {
    let gone: Vec<String> = t.columns.iter().filter(|c| drop(c)).map(|c| c.name.clone()).collect();
    if gone.is_empty() {
        return;
    }
    let uses = |cols: &[String]| cols.iter().any(|c| gone.iter().any(|g| g.eq_ignore_ascii_case(c)));
    t.columns.retain(|c| !drop(c));
    if t.primary_key.as_ref().is_some_and(|k| uses(&k.columns)) {
        t.primary_key = None;
    }
    t.uniques.retain(|k| !uses(&k.columns));
    t.foreign_keys.retain(|f| !uses(&f.columns));
    t.indexes.retain(|i| {
        !i.parts.iter().any(|p| match &p.key {
            crate::model::IndexKey::Column(c) => gone.iter().any(|g| g.eq_ignore_ascii_case(c)),
            crate::model::IndexKey::Expression(e) => gone.iter().any(|g| e.sql.contains(g.as_str())),
        })
    });
    t.checks.retain(|c| !gone.iter().any(|g| c.expr.sql.contains(g.as_str())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("order%", "orders"));
        assert!(wildcard("%", "x"));
        assert!(wildcard("a_c", "ABC"));
        assert!(!wildcard("order_", "orders_x"));
    }

    #[test]
    fn tables_arg_includes_and_excludes() {
        let m = Mapping::from_tables_arg("public.order%,customers,!orders_archive");
        assert!(m.selects(&QualifiedName::new(Some("public"), "orders")));
        assert!(!m.selects(&QualifiedName::new(Some("public"), "orders_archive")));
        assert!(m.selects(&QualifiedName::bare("customers")));
        assert!(!m.selects(&QualifiedName::bare("products")));
        let only_exclude = Mapping::from_tables_arg("!audit%");
        assert!(only_exclude.selects(&QualifiedName::bare("orders")));
        assert!(!only_exclude.selects(&QualifiedName::bare("audit_log")));
    }

    #[test]
    fn dms_json_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(
            &p,
            r#"{"rules":[
              {"rule-type":"selection","rule-id":"1","rule-action":"include","object-locator":{"schema-name":"%","table-name":"orders"},"filter":"status <> 'cancelled'"},
              {"rule-type":"transformation","rule-action":"rename","rule-target":"table","object-locator":{"table-name":"orders"},"value":"sales_orders"}
            ]}"#,
        )
        .unwrap();
        let m = Mapping::load(&p).unwrap();
        let t = QualifiedName::bare("orders");
        assert!(m.selects(&t));
        let mut table = Table::new(t.clone());
        table.columns.push(Column::new("status", crate::model::ColumnType::text(), "text"));
        assert_eq!(m.filter_sql(&table, Dialect::Postgres).unwrap().as_deref(), Some("(status <> 'cancelled')"));
        std::fs::write(&p, r#"{"rules":[{"rule-type":"transformation","rule-action":"rename","object-locator":{}}]}"#).unwrap();
        let err = Mapping::load(&p).unwrap_err().to_string();
        assert!(err.contains("needs a `value`") && err.starts_with(&format!("{}:1:", p.display())), "{err}");
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn unknown_keys_anywhere_are_refused_at_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            // A misspelt filters key on line 3.
            ("a.json", "{\"rules\": [\n  {\"rule-type\": \"selection\", \"rule-action\": \"include\",\n   \"object-locator\": {\"table-name\": \"t\"}, \"filtr\": []}\n]}", "filtr", 3),
            // In the locator.
            ("b.json", "{\"rules\": [{\"rule-type\": \"selection\", \"rule-action\": \"include\", \"object-locator\": {\"tabel-name\": \"t\"}}]}", "tabel-name", 1),
            // In a filter condition, on line 5.
            ("c.json", "{\"rules\": [\n {\"rule-type\": \"selection\", \"rule-action\": \"include\", \"object-locator\": {\"table-name\": \"t\"},\n  \"filters\": [{\"filter-type\": \"source\", \"column-name\": \"bid\",\n    \"filter-conditions\": [\n      {\"filter-operator\": \"lte\", \"valeu\": \"2\"}]}]}\n]}", "valeu", 5),
            // At the top.
            ("d.json", "{\"rule\": []}", "rule", 1),
            ("e.toml", "[[rules]]\nrule-type = \"selection\"\nrule-action = \"include\"\nfiltr = \"x\"\n", "filtr", 4),
            ("f.toml", "[[rules]]\nrule-type = \"selection\"\nrule-action = \"include\"\n[rules.object-locator]\ntable-name = \"t\"\n[[rules.filters]]\nfilter-type = \"source\"\ncolumn-name = \"bid\"\n[[rules.filters.filter-conditions]]\nfilter-operator = \"lte\"\nvalu = \"2\"\n", "valu", 0),
        ];
        for (name, text, key, line) in cases {
            let p = write(&dir, name, text);
            let err = Mapping::load(&p).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(key), "{name}: {msg}");
            assert!(!msg.contains(":0:"), "{name}: {msg}");
            let Error::At { line: l, column, .. } = &err else { panic!("{name}: {err:?}") };
            assert!(*column > 0, "{name}: {msg}");
            if line > 0 {
                assert_eq!(*l, line, "{name}: {msg}");
            }
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        }
    }

    #[test]
    fn rule_mistakes_point_at_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "m.json", "{\"rules\": [\n  {\"rule-type\": \"selection\", \"rule-action\": \"include\", \"object-locator\": {\"table-name\": \"%\"}},\n  {\"rule-type\": \"selection\", \"rule-action\": \"exclude\", \"object-locator\": {\"table-name\": \"t\"},\n   \"filters\": [{\"filter-type\": \"source\", \"column-name\": \"bid\", \"filter-conditions\": [{\"filter-operator\": \"eq\", \"value\": \"1\"}]}]}\n]}");
        let err = Mapping::load(&p).unwrap_err().to_string();
        assert!(err.contains(":3:") && err.contains("exclude rule cannot have filters"), "{err}");
        let p = write(&dir, "n.json", r#"{"rules": [{"rule-type": "selection", "rule-action": "include", "object-locator": {"table-name": "t"}, "filters": [{"filter-type": "source", "column-name": "bid", "filter-conditions": [{"filter-operator": "lessthan", "value": "1"}]}]}]}"#);
        assert!(Mapping::load(&p).unwrap_err().to_string().contains("unknown filter-operator `lessthan`"));
    }

    fn schema() -> Schema {
        let mut s = Schema { dialect: Some(Dialect::Postgres), ..Default::default() };
        for name in ["orders", "customers", "audit_log"] {
            let mut t = Table::new(QualifiedName::new(Some("public"), name));
            t.columns.push(Column::new("id", crate::model::ColumnType::int(64), "bigint"));
            t.columns.push(Column::new("ssn", crate::model::ColumnType::text(), "text"));
            s.tables.push(t);
        }
        s
    }

    #[test]
    fn patterns_and_rules_that_match_nothing_are_errors() {
        let src = crate::endpoint::Endpoint::parse("sqlite::memory:").unwrap();
        let err = Mapping::from_tables_arg("orders,nosuch").select_some(&schema(), &src).unwrap_err().to_string();
        assert!(err.contains("`nosuch` matches no table") && err.contains("public.orders"), "{err}");
        let err = Mapping::from_tables_arg("orders,!adit_%").select_some(&schema(), &src).unwrap_err().to_string();
        assert!(err.contains("`!adit_%`"), "{err}");
        assert_eq!(Mapping::from_tables_arg("order%,!audit_%").select_some(&schema(), &src).unwrap().tables.len(), 1);

        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "m.json", "{\"rules\": [\n{\"rule-type\": \"transformation\", \"rule-action\": \"remove-column\", \"object-locator\": {\"table-name\": \"customers\", \"column-name\": \"snn\"}}]}");
        let err = Mapping::load(&p).unwrap().select_some(&schema(), &src).unwrap_err().to_string();
        assert!(err.contains(":2:1:") && err.contains("remove-column customers column snn") && err.contains("matches no"), "{err}");
        let p = write(&dir, "ok.json", "{\"rules\": [{\"rule-type\": \"transformation\", \"rule-action\": \"remove-column\", \"object-locator\": {\"table-name\": \"customers\", \"column-name\": \"ssn\"}}]}");
        let kept = Mapping::load(&p).unwrap().select_some(&schema(), &src).unwrap();
        assert!(kept.tables.iter().find(|t| t.name.name == "customers").unwrap().column("ssn").is_none());
    }

    #[test]
    fn a_filter_on_a_missing_or_removed_column_is_an_error() {
        let src = crate::endpoint::Endpoint::parse("sqlite::memory:").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let filter = |col: &str| format!(r#"{{"rule-type": "selection", "rule-action": "include", "object-locator": {{"table-name": "orders"}}, "filters": [{{"filter-type": "source", "column-name": "{col}", "filter-conditions": [{{"filter-operator": "lte", "value": "2"}}]}}]}}"#);
        let p = write(&dir, "m.json", &format!("{{\"rules\": [{}]}}", filter("bid")));
        let err = Mapping::load(&p).unwrap().select_some(&schema(), &src).unwrap_err().to_string();
        assert!(err.contains("`bid` is not a column of table public.orders"), "{err}");
        let p = write(&dir, "n.json", &format!("{{\"rules\": [{}, {{\"rule-type\": \"transformation\", \"rule-action\": \"remove-column\", \"object-locator\": {{\"table-name\": \"orders\", \"column-name\": \"id\"}}}}]}}", filter("id")));
        let err = Mapping::load(&p).unwrap().select_some(&schema(), &src).unwrap_err().to_string();
        assert!(err.contains("`id` is not a column of table public.orders"), "{err}");
        let p = write(&dir, "o.json", &format!("{{\"rules\": [{}]}}", filter("id")));
        let m = Mapping::load(&p).unwrap();
        let selected = m.select_some(&schema(), &src).unwrap();
        let orders = selected.tables.iter().find(|t| t.name.name == "orders").unwrap();
        assert_eq!(m.filter_sql(orders, Dialect::Postgres).unwrap().as_deref(), Some("(\"id\" <= 2)"));
        let customers = schema().tables.into_iter().find(|t| t.name.name == "customers").unwrap();
        assert_eq!(m.filter_sql(&customers, Dialect::Postgres).unwrap(), None);
    }
}
