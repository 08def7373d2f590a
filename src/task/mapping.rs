//! Table mappings, as in AWS DMS: selection rules (include/exclude by
//! schema and table wildcards, with a row filter), and transformation rules
//! (rename or re-case a schema, table or column; add a column with a
//! constant or an expression; drop a column). `--tables` is the short form
//! of selection rules. Files are JSON or TOML; DMS's hyphenated key names
//! (`rule-type`, `object-locator`, `rule-action`, ...) are accepted too.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Column, QualifiedName, Schema, Table};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MappingFile {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Locator {
    #[serde(default, alias = "schema")]
    pub schema_name: Option<String>,
    #[serde(default, alias = "table")]
    pub table_name: Option<String>,
    #[serde(default, alias = "column")]
    pub column_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rule {
    #[serde(alias = "type")]
    pub rule_type: String,
    #[serde(default, alias = "id")]
    pub rule_id: Option<serde_json::Value>,
    /// selection: include | exclude. transformation: rename, convert-lowercase,
    /// convert-uppercase, add-prefix, add-suffix, add-column, remove-column.
    #[serde(alias = "action")]
    pub rule_action: String,
    /// transformation: schema | table | column.
    #[serde(default, alias = "target")]
    pub rule_target: Option<String>,
    #[serde(default, alias = "locator")]
    pub object_locator: Locator,
    /// Rename target, prefix/suffix text.
    #[serde(default)]
    pub value: Option<String>,
    /// selection: a row filter, a WHERE condition in the source's SQL.
    #[serde(default, alias = "where")]
    pub filter: Option<String>,
    /// add-column: the new column's name, type (in the target's syntax)
    /// and value: a constant, or an expression in the source's SQL.
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default, alias = "data-type")]
    pub data_type: Option<String>,
    #[serde(default)]
    pub constant: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
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
        let schema_ok = match (&self.schema_name, &t.schema) {
            (None, _) => true,
            (Some(p), Some(s)) => wildcard(p, s),
            (Some(p), None) => p == "%" || p == "*",
        };
        schema_ok && self.table_name.as_deref().is_none_or(|p| wildcard(p, &t.name))
    }
    fn matches_schema(&self, s: Option<&str>) -> bool {
        match (&self.schema_name, s) {
            (None, _) => true,
            (Some(p), Some(s)) => wildcard(p, s),
            (Some(p), None) => p == "%" || p == "*",
        }
    }
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        let file: MappingFile = if path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| Error::Input {
                file: path.display().to_string(),
                line: e.line(),
                message: format!("not a valid mapping: {e}"),
                hint: Some("see README.md, section Table mappings".into()),
            })?
        } else {
            toml::from_str(&text).map_err(|e| Error::Input {
                file: path.display().to_string(),
                line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0),
                message: format!("not a valid mapping: {}", e.message()),
                hint: Some("see README.md, section Table mappings".into()),
            })?
        };
        let m = Mapping { rules: file.rules };
        m.check().map_err(|message| Error::Input { file: path.display().to_string(), line: 0, message, hint: None })?;
        Ok(m)
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
                rule_action: action.into(),
                rule_target: None,
                object_locator: Locator { schema_name: schema, table_name: Some(table), column_name: None },
                value: None,
                filter: None,
                column: None,
                data_type: None,
                constant: None,
                expression: None,
            });
        }
        Mapping { rules }
    }

    pub fn extend(&mut self, other: Mapping) {
        self.rules.extend(other.rules);
    }

    fn check(&self) -> std::result::Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            let n = i + 1;
            match (r.rule_type.as_str(), r.rule_action.as_str()) {
                ("selection", "include" | "exclude" | "explicit") => {}
                ("transformation", "rename" | "add-prefix" | "add-suffix") if r.value.is_none() => {
                    return Err(format!("rule {n}: {} needs a `value`", r.rule_action));
                }
                ("transformation", "add-column") if r.column.is_none() || (r.constant.is_none() && r.expression.is_none()) => {
                    return Err(format!("rule {n}: add-column needs `column` and a `constant` or an `expression`"));
                }
                ("transformation", "rename" | "convert-lowercase" | "convert-uppercase" | "add-prefix" | "add-suffix" | "add-column" | "remove-column") => {}
                (t, a) => return Err(format!("rule {n}: unknown rule `{t}` / `{a}`; selection takes include|exclude, transformation takes rename, convert-lowercase, convert-uppercase, add-prefix, add-suffix, add-column, remove-column")),
            }
        }
        Ok(())
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

    /// The row filter for a table (several filters are ANDed).
    pub fn filter(&self, t: &QualifiedName) -> Option<String> {
        let parts: Vec<String> = self
            .selections()
            .filter(|r| r.rule_action != "exclude" && r.object_locator.matches_table(t))
            .filter_map(|r| r.filter.clone())
            .map(|f| format!("({f})"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
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

    /// [`Mapping::select`], refusing a selection with no table in it: the
    /// error names the patterns and the tables the source has.
    pub fn select_some(&self, schema: &Schema, src: &crate::endpoint::Endpoint) -> crate::error::Result<Schema> {
        let selected = self.select(schema);
        if !selected.tables.is_empty() {
            return Ok(selected);
        }
        let names: Vec<String> = schema.tables.iter().take(30).map(|t| t.name.to_string()).collect();
        let patterns: Vec<String> = self.selections().map(|r| format!("{}{}", if r.rule_action == "exclude" { "!" } else { "" }, r.object_locator.table_name.clone().unwrap_or_default())).collect();
        if schema.tables.is_empty() {
            // Not a usage error: the command was right, the database is empty.
            return Err(crate::error::Error::Other {
                message: format!("the source {src} has no tables: nothing to move or compare"),
                hint: Some("check the database name in the URL (and ?schema= for PostgreSQL), and that the user can see its tables".into()),
            });
        }
        Err(crate::error::Error::Usage(format!("no table matches {}; the source has: {}", patterns.join(", "), names.join(", "))))
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
        assert_eq!(m.filter(&t).as_deref(), Some("(status <> 'cancelled')"));
        std::fs::write(&p, r#"{"rules":[{"rule-type":"transformation","rule-action":"rename","object-locator":{}}]}"#).unwrap();
        assert!(Mapping::load(&p).unwrap_err().to_string().contains("needs a `value`"));
    }
}
