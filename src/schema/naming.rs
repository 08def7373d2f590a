//! The naming policy: how source names become target names. Case folding
//! (`--identifiers lower|preserve|snake`), schema mapping, length limits,
//! per-schema unique index names, and quoting of reserved words. The plan is
//! computed once for the whole schema, deterministically, and can be written
//! out as JSON (`--name-map`) for later steps.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentCase {
    /// lower-case every identifier (pgloader's and ora2pg's default)
    Lower,
    /// keep names exactly as written (quoted where the target needs it)
    Preserve,
    /// CamelCase and UPPER names become snake_case
    Snake,
}

#[derive(Debug, Clone)]
pub struct NamingOptions {
    pub case: IdentCase,
    /// Source schema (lower case) → target schema; `*` matches any.
    /// An empty target means "no schema" (the connection's default).
    pub schema_map: Vec<(String, String)>,
}

impl Default for NamingOptions {
    fn default() -> Self {
        NamingOptions { case: IdentCase::Lower, schema_map: Vec::new() }
    }
}

/// Every name decided for one conversion.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamePlan {
    #[serde(skip)]
    pub target: Option<Dialect>,
    #[serde(skip)]
    pub case: Option<IdentCase>,
    /// source `schema.table` (as written) → target parts.
    pub tables: BTreeMap<String, Vec<String>>,
    /// source `schema.table.column` → target column.
    pub columns: BTreeMap<String, String>,
    /// source `table:index` → target name (indexes, primary and unique keys).
    pub indexes: RefCell<BTreeMap<String, String>>,
    /// source `table:constraint` → target name (foreign keys, checks).
    pub constraints: RefCell<BTreeMap<String, String>>,
    pub types: BTreeMap<String, Vec<String>>,
    pub sequences: BTreeMap<String, Vec<String>>,
    /// Target schemas that must exist.
    pub schemas: Vec<String>,
    /// Renames worth reporting: (kind, from, to, why).
    #[serde(skip)]
    pub renames: RefCell<Vec<(String, String, String, String)>>,
    #[serde(skip)]
    used_relations: HashMap<(String, String), String>,
    #[serde(skip)]
    used_indexes: RefCell<HashMap<String, BTreeSet<String>>>,
}

pub fn key(q: &QualifiedName) -> String {
    q.to_string()
}

pub fn column_key(t: &QualifiedName, c: &str) -> String {
    format!("{t}.{c}")
}

impl NamePlan {
    pub fn build(schema: &Schema, target: Dialect, opts: &NamingOptions) -> NamePlan {
        let mut plan = NamePlan { target: Some(target), case: Some(opts.case), ..Default::default() };
        let source = schema.dialect.unwrap_or(target);
        // Relations (tables, views) share one namespace per schema.
        let mut relations: Vec<(QualifiedName, bool)> = schema.tables.iter().map(|t| (t.name.clone(), true)).collect();
        relations.extend(schema.views.iter().map(|v| (v.name.clone(), false)));
        for (name, is_table) in &relations {
            let target_schema = map_schema(source, target, name.schema.as_deref(), opts);
            let base = plan.fold(&name.name);
            let mut final_name = fit(target, &base);
            // Flattening schemas can collide: prefix the source schema.
            let slot = (target_schema.clone().unwrap_or_default(), final_name.to_ascii_lowercase());
            if plan.used_relations.contains_key(&slot) {
                let prefixed = fit(target, &format!("{}_{}", plan.fold(name.schema.as_deref().unwrap_or("x")), base));
                plan.renames.borrow_mut().push(("table".into(), name.to_string(), prefixed.clone(), "name collides after schema mapping".into()));
                final_name = prefixed;
            } else if final_name != base {
                plan.renames.borrow_mut().push(("table".into(), name.to_string(), final_name.clone(), format!("longer than {} bytes", target.max_identifier_len().unwrap_or(0))));
            }
            plan.used_relations.insert((target_schema.clone().unwrap_or_default(), final_name.to_ascii_lowercase()), key(name));
            // On PostgreSQL and SQLite an index shares the namespace of
            // tables and views: an index may not take a relation's name.
            if target.index_names_per_schema() {
                plan.used_indexes.borrow_mut().entry(target_schema.clone().unwrap_or_default()).or_default().insert(final_name.to_ascii_lowercase());
            }
            let mut parts = Vec::new();
            if let Some(s) = &target_schema {
                parts.push(s.clone());
                if !plan.schemas.contains(s) && !(target == Dialect::Postgres && s == "public") {
                    plan.schemas.push(s.clone());
                }
            }
            parts.push(final_name);
            plan.tables.insert(key(name), parts);
            let _ = is_table;
        }
        for t in &schema.tables {
            let mut used = BTreeSet::new();
            for c in &t.columns {
                let base = plan.fold(&c.name);
                let mut n = fit(target, &base);
                let mut i = 2;
                while !used.insert(n.to_ascii_lowercase()) {
                    n = fit(target, &format!("{base}_{i}"));
                    i += 1;
                }
                if n != base {
                    plan.renames.borrow_mut().push(("column".into(), column_key(&t.name, &c.name), n.clone(), "length limit or collision".into()));
                }
                plan.columns.insert(column_key(&t.name, &c.name), n);
            }
        }
        for e in &schema.enums {
            let parts = plan.relation_like(source, target, &e.name, opts);
            plan.types.insert(key(&e.name), parts);
        }
        for s in &schema.sequences {
            let parts = plan.relation_like(source, target, &s.name, opts);
            plan.sequences.insert(key(&s.name), parts);
        }
        plan
    }

    fn relation_like(&mut self, source: Dialect, target: Dialect, name: &QualifiedName, opts: &NamingOptions) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(s) = map_schema(source, target, name.schema.as_deref(), opts) {
            if !self.schemas.contains(&s) && !(target == Dialect::Postgres && s == "public") {
                self.schemas.push(s.clone());
            }
            parts.push(s);
        }
        parts.push(fit(target, &self.fold(&name.name)));
        parts
    }

    pub fn target(&self) -> Dialect {
        self.target.unwrap_or(Dialect::Postgres)
    }

    /// Applies the case policy to one identifier.
    pub fn fold(&self, name: &str) -> String {
        match self.case.unwrap_or(IdentCase::Lower) {
            IdentCase::Preserve => name.to_string(),
            IdentCase::Lower => name.to_lowercase(),
            IdentCase::Snake => snake(name),
        }
    }

    /// Target parts for a table or view (unknown ones get the policy).
    pub fn relation(&self, name: &QualifiedName) -> Vec<String> {
        if let Some(p) = self.tables.get(&key(name)) {
            return p.clone();
        }
        // Loose lookup: the script may refer without a schema or in another case.
        for (k, v) in &self.tables {
            let (ks, kn) = k.rsplit_once('.').map(|(a, b)| (Some(a), b)).unwrap_or((None, k.as_str()));
            if kn.eq_ignore_ascii_case(&name.name)
                && (name.schema.is_none() || ks.is_none() || ks.is_some_and(|s| name.schema.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(s))))
            {
                return v.clone();
            }
        }
        vec![fit(self.target(), &self.fold(&name.name))]
    }

    pub fn column(&self, table: &QualifiedName, col: &str) -> String {
        self.columns
            .get(&column_key(table, col))
            .cloned()
            .or_else(|| {
                self.columns
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&column_key(table, col)))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| fit(self.target(), &self.fold(col)))
    }

    pub fn enum_type(&self, name: &QualifiedName) -> Vec<String> {
        self.types.get(&key(name)).cloned().unwrap_or_else(|| vec![fit(self.target(), &self.fold(&name.name))])
    }

    pub fn sequence(&self, name: &QualifiedName) -> Vec<String> {
        self.sequences.get(&key(name)).cloned().unwrap_or_else(|| vec![fit(self.target(), &self.fold(&name.name))])
    }

    /// A unique name for an index or constraint. On targets where index
    /// names share a schema-wide namespace, a clash gets a numeric suffix,
    /// deterministically in the order objects are emitted.
    pub fn index_name(&self, table: &QualifiedName, source_name: Option<&str>, fallback: &str) -> String {
        self.index_name_why(table, source_name, fallback).0
    }

    /// [`Self::index_name`], and why the source's name could not be kept
    /// (None when it was kept, or the source had no name).
    pub fn index_name_why(&self, table: &QualifiedName, source_name: Option<&str>, fallback: &str) -> (String, Option<String>) {
        let target = self.target();
        let table_parts = self.relation(table);
        let ns = if target.index_names_per_schema() {
            table_parts.iter().rev().nth(1).cloned().unwrap_or_default()
        } else {
            table_parts.join(".")
        };
        let named = source_name.is_some_and(|n| !n.is_empty());
        let base = match source_name {
            Some(n) if !n.is_empty() => self.fold(n),
            _ => self.fold(fallback),
        };
        let mut name = fit(target, &base);
        let mut all = self.used_indexes.borrow_mut();
        let used = all.entry(ns).or_default();
        let clash = used.contains(&name.to_ascii_lowercase());
        let mut i = 1;
        while used.contains(&name.to_ascii_lowercase()) {
            name = fit(target, &format!("{base}_{i}"));
            i += 1;
        }
        used.insert(name.to_ascii_lowercase());
        let key = format!("{table}:{}", source_name.unwrap_or(fallback));
        self.indexes.borrow_mut().insert(key, name.clone());
        let why = if !named || name == base {
            None
        } else if clash && target.index_names_per_schema() {
            Some(format!("on {target} index names share one namespace per schema with tables and other indexes, and `{base}` is taken"))
        } else if clash {
            Some(format!("`{base}` is taken on this table"))
        } else {
            Some(format!("longer than {} bytes", target.max_identifier_len().unwrap_or(0)))
        };
        (name, why)
    }

    /// A name for a foreign key or check constraint. They are not indexes:
    /// PostgreSQL and SQLite want them unique per table, MySQL per
    /// database; a foreign key may share its name with an index (InnoDB
    /// names the index it creates after the key).
    pub fn constraint_name(&self, table: &QualifiedName, source_name: Option<&str>, fallback: &str) -> String {
        let target = self.target();
        let table_parts = self.relation(table);
        let ns = if target == Dialect::Mysql {
            format!("constraint:{}", table_parts.iter().rev().nth(1).cloned().unwrap_or_default())
        } else {
            format!("constraint:{}", table_parts.join("."))
        };
        let base = match source_name {
            Some(n) if !n.is_empty() => self.fold(n),
            _ => self.fold(fallback),
        };
        let mut name = fit(target, &base);
        let mut all = self.used_indexes.borrow_mut();
        let used = all.entry(ns).or_default();
        let mut i = 1;
        while used.contains(&name.to_ascii_lowercase()) {
            name = fit(target, &format!("{base}_{i}"));
            i += 1;
        }
        used.insert(name.to_ascii_lowercase());
        self.constraints.borrow_mut().insert(format!("{table}:{}", source_name.unwrap_or(fallback)), name.clone());
        name
    }

    /// A generated name that is not recorded as a rename.
    pub fn generated_name(&self, parts: &[&str]) -> String {
        fit(self.target(), &self.fold(&parts.join("_")))
    }

    /// Quotes one identifier for the target if it must be.
    pub fn quote(&self, ident: &str) -> String {
        quote_ident(self.target(), ident)
    }

    /// `"schema"."name"` from parts.
    pub fn quote_parts(&self, parts: &[String]) -> String {
        parts.iter().map(|p| self.quote(p)).collect::<Vec<_>>().join(".")
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tables": self.tables.iter().map(|(k, v)| (k.clone(), v.join("."))).collect::<BTreeMap<_, _>>(),
            "columns": self.columns,
            "indexes": *self.indexes.borrow(),
            "constraints": *self.constraints.borrow(),
            "types": self.types.iter().map(|(k, v)| (k.clone(), v.join("."))).collect::<BTreeMap<_, _>>(),
            "sequences": self.sequences.iter().map(|(k, v)| (k.clone(), v.join("."))).collect::<BTreeMap<_, _>>(),
        })
    }
}

/// Where a source schema goes on the target. `None` = unqualified.
fn map_schema(source: Dialect, target: Dialect, schema: Option<&str>, opts: &NamingOptions) -> Option<String> {
    let s = schema.map(|s| s.to_string());
    for (from, to) in &opts.schema_map {
        let hit = from == "*" || s.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(from)) || (s.is_none() && from.is_empty());
        if hit {
            return if to.is_empty() { None } else { Some(to.clone()) };
        }
    }
    if !target.supports_schemas() {
        // MySQL databases and SQLite files have no schema level: flatten.
        return None;
    }
    let s = s?;
    let lower = s.to_lowercase();
    match (source, lower.as_str()) {
        (Dialect::Mssql, "dbo") => Some("public".into()),
        (Dialect::Mysql, _) => None,
        (_, "public") => None,
        _ => Some(lower),
    }
}

/// Fits a name into the target's length limit: truncate and add 8 hex
/// digits of a hash of the full name, so two long names never collapse
/// into one and reruns give the same result.
pub fn fit(target: Dialect, name: &str) -> String {
    let Some(max) = target.max_identifier_len() else { return name.to_string() };
    if name.len() <= max {
        return name.to_string();
    }
    let hash = Sha256::digest(name.as_bytes());
    let suffix = format!("_{}", hex::encode(&hash[..4]));
    let mut cut = max - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &name[..cut], suffix)
}

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_uppercase()) && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == ' ' || c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

pub fn quote_ident(target: Dialect, ident: &str) -> String {
    match target {
        // MySQL: always backquote, as mysqldump does; it sidesteps the long
        // and version-dependent reserved word list.
        Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
        Dialect::Postgres => {
            if needs_quotes(ident, PG_RESERVED, true) {
                format!("\"{}\"", ident.replace('"', "\"\""))
            } else {
                ident.to_string()
            }
        }
        _ => {
            if needs_quotes(ident, SQLITE_KEYWORDS, false) {
                format!("\"{}\"", ident.replace('"', "\"\""))
            } else {
                ident.to_string()
            }
        }
    }
}

fn needs_quotes(ident: &str, reserved: &[&str], fold_lower: bool) -> bool {
    let mut chars = ident.chars();
    let Some(first) = chars.next() else { return true };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return true;
    }
    if !ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return true;
    }
    if fold_lower && ident.chars().any(|c| c.is_ascii_uppercase()) {
        return true;
    }
    let upper = ident.to_ascii_uppercase();
    reserved.binary_search(&upper.as_str()).is_ok()
}

/// PostgreSQL reserved key words (and those reserved as names of types or
/// functions), sorted.
pub const PG_RESERVED: &[&str] = &[
    "ALL", "ANALYSE", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "ASYMMETRIC", "AUTHORIZATION", "BETWEEN",
    "BIGINT", "BINARY", "BIT", "BOOLEAN", "BOTH", "CASE", "CAST", "CHAR", "CHARACTER", "CHECK", "COALESCE",
    "COLLATE", "COLLATION", "COLUMN", "CONCURRENTLY", "CONSTRAINT", "CREATE", "CROSS", "CURRENT_CATALOG",
    "CURRENT_DATE", "CURRENT_ROLE", "CURRENT_SCHEMA", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "DEC",
    "DECIMAL", "DEFAULT", "DEFERRABLE", "DESC", "DISTINCT", "DO", "ELSE", "END", "EXCEPT", "EXISTS", "EXTRACT",
    "FALSE", "FETCH", "FLOAT", "FOR", "FOREIGN", "FREEZE", "FROM", "FULL", "GRANT", "GREATEST", "GROUP",
    "GROUPING", "HAVING", "ILIKE", "IN", "INITIALLY", "INNER", "INOUT", "INT", "INTEGER", "INTERSECT", "INTERVAL",
    "INTO", "IS", "ISNULL", "JOIN", "LATERAL", "LEADING", "LEAST", "LEFT", "LIKE", "LIMIT", "LOCALTIME",
    "LOCALTIMESTAMP", "NATIONAL", "NATURAL", "NCHAR", "NONE", "NORMALIZE", "NOT", "NOTNULL", "NULL", "NULLIF",
    "NUMERIC", "OFFSET", "ON", "ONLY", "OR", "ORDER", "OUT", "OUTER", "OVERLAPS", "OVERLAY", "PLACING", "POSITION",
    "PRECISION", "PRIMARY", "REAL", "REFERENCES", "RETURNING", "RIGHT", "ROW", "SELECT", "SESSION_USER", "SETOF",
    "SIMILAR", "SMALLINT", "SOME", "SUBSTRING", "SYMMETRIC", "SYSTEM_USER", "TABLE", "TABLESAMPLE", "THEN", "TIME",
    "TIMESTAMP", "TO", "TRAILING", "TREAT", "TRIM", "TRUE", "UNION", "UNIQUE", "USER", "USING", "VALUES", "VARCHAR",
    "VARIADIC", "VERBOSE", "WHEN", "WHERE", "WINDOW", "WITH", "XMLATTRIBUTES", "XMLCONCAT", "XMLELEMENT",
    "XMLEXISTS", "XMLFOREST", "XMLNAMESPACES", "XMLPARSE", "XMLPI", "XMLROOT", "XMLSERIALIZE", "XMLTABLE",
];

/// SQLite keywords (sqlite3_keyword_name), sorted.
pub const SQLITE_KEYWORDS: &[&str] = &[
    "ABORT", "ACTION", "ADD", "AFTER", "ALL", "ALTER", "ALWAYS", "ANALYZE", "AND", "AS", "ASC", "ATTACH",
    "AUTOINCREMENT", "BEFORE", "BEGIN", "BETWEEN", "BY", "CASCADE", "CASE", "CAST", "CHECK", "COLLATE", "COLUMN",
    "COMMIT", "CONFLICT", "CONSTRAINT", "CREATE", "CROSS", "CURRENT", "CURRENT_DATE", "CURRENT_TIME",
    "CURRENT_TIMESTAMP", "DATABASE", "DEFAULT", "DEFERRABLE", "DEFERRED", "DELETE", "DESC", "DETACH", "DISTINCT",
    "DO", "DROP", "EACH", "ELSE", "END", "ESCAPE", "EXCEPT", "EXCLUDE", "EXCLUSIVE", "EXISTS", "EXPLAIN", "FAIL",
    "FILTER", "FIRST", "FOLLOWING", "FOR", "FOREIGN", "FROM", "FULL", "GENERATED", "GLOB", "GROUP", "GROUPS",
    "HAVING", "IF", "IGNORE", "IMMEDIATE", "IN", "INDEX", "INDEXED", "INITIALLY", "INNER", "INSERT", "INSTEAD",
    "INTERSECT", "INTO", "IS", "ISNULL", "JOIN", "KEY", "LAST", "LEFT", "LIKE", "LIMIT", "MATCH", "MATERIALIZED",
    "NATURAL", "NO", "NOT", "NOTHING", "NOTNULL", "NULL", "NULLS", "OF", "OFFSET", "ON", "OR", "ORDER", "OTHERS",
    "OUTER", "OVER", "PARTITION", "PLAN", "PRAGMA", "PRECEDING", "PRIMARY", "QUERY", "RAISE", "RANGE", "RECURSIVE",
    "REFERENCES", "REGEXP", "REINDEX", "RELEASE", "RENAME", "REPLACE", "RESTRICT", "RETURNING", "RIGHT", "ROLLBACK",
    "ROW", "ROWS", "SAVEPOINT", "SELECT", "SET", "TABLE", "TEMP", "TEMPORARY", "THEN", "TIES", "TO", "TRANSACTION",
    "TRIGGER", "UNBOUNDED", "UNION", "UNIQUE", "UPDATE", "USING", "VACUUM", "VALUES", "VIEW", "VIRTUAL", "WHEN",
    "WHERE", "WINDOW", "WITH", "WITHOUT",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_lists_are_sorted() {
        for list in [PG_RESERVED, SQLITE_KEYWORDS] {
            let mut s = list.to_vec();
            s.sort();
            assert_eq!(s, list);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(Dialect::Postgres, "order"), "\"order\"");
        assert_eq!(quote_ident(Dialect::Postgres, "orders"), "orders");
        assert_eq!(quote_ident(Dialect::Postgres, "Orders"), "\"Orders\"");
        assert_eq!(quote_ident(Dialect::Mysql, "a`b"), "`a``b`");
        assert_eq!(quote_ident(Dialect::Sqlite, "group"), "\"group\"");
    }

    #[test]
    fn snake_case() {
        assert_eq!(snake("VehicleId"), "vehicle_id");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(snake("VIN"), "vin");
        assert_eq!(snake("already_snake"), "already_snake");
        assert_eq!(snake("ISO3166Code"), "iso3166_code");
    }

    #[test]
    fn long_names_fit_deterministically() {
        let long = "a".repeat(100);
        let a = fit(Dialect::Postgres, &long);
        assert_eq!(a.len(), 63);
        assert_eq!(a, fit(Dialect::Postgres, &long));
        assert_ne!(fit(Dialect::Postgres, &format!("{long}x")), a);
        let multi = "é".repeat(40);
        assert!(fit(Dialect::Postgres, &multi).len() <= 63);
    }

    #[test]
    fn pg_index_names_unique_per_schema() {
        let mut s = Schema::default();
        s.tables.push(Table::new(QualifiedName::bare("a")));
        s.tables.push(Table::new(QualifiedName::bare("b")));
        let plan = NamePlan::build(&s, Dialect::Postgres, &NamingOptions::default());
        let x = plan.index_name(&QualifiedName::bare("a"), Some("idx_name"), "f");
        let y = plan.index_name(&QualifiedName::bare("b"), Some("idx_name"), "f");
        assert_ne!(x, y);
        let plan = NamePlan::build(&s, Dialect::Mysql, &NamingOptions::default());
        let x = plan.index_name(&QualifiedName::bare("a"), Some("idx_name"), "f");
        let y = plan.index_name(&QualifiedName::bare("b"), Some("idx_name"), "f");
        assert_eq!(x, y);
    }

    #[test]
    fn schema_defaults() {
        let o = NamingOptions::default();
        assert_eq!(map_schema(Dialect::Mssql, Dialect::Postgres, Some("dbo"), &o), Some("public".into()));
        assert_eq!(map_schema(Dialect::Oracle, Dialect::Postgres, Some("FLEET"), &o), Some("fleet".into()));
        assert_eq!(map_schema(Dialect::Postgres, Dialect::Mysql, Some("billing"), &o), None);
        let o = NamingOptions { schema_map: vec![("*".into(), "app".into())], ..Default::default() };
        assert_eq!(map_schema(Dialect::Oracle, Dialect::Postgres, Some("FLEET"), &o), Some("app".into()));
    }
}
