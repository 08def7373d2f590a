//! Type-mapping rules as data. Built-in rules live in `dialects/<from>-<to>.toml`
//! (compiled in); users add `--rules FILE` and `--cast 'from=to'`, which
//! take precedence. The first rule that matches a column wins; a column no
//! rule matches gets the generic mapping in [`super::typemap`].

use std::path::Path;

use serde::Deserialize;

use super::typetext::{self, TypeSpec};
use crate::error::{Error, Result};
use crate::model::{Column, ColumnType, DefaultValue, Dialect};

/// What a rule does to a column besides changing its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transform {
    /// Drop the column default.
    DropDefault,
    /// Make the column nullable.
    RelaxNotNull,
    /// Emulate `ON UPDATE CURRENT_TIMESTAMP` with a trigger.
    OnUpdateTrigger,
    /// Zero dates (`0000-00-00`) load as NULL.
    ZeroDatesToNull,
    /// Keep the default even if the target type changed.
    KeepDefault,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Source type name(s), lower case, as `TypeSpec::name` spells them.
    #[serde(rename = "type", default, deserialize_with = "one_or_many")]
    pub types: Vec<String>,
    /// Exact arguments, e.g. `["1"]` for `tinyint(1)`.
    pub args: Option<Vec<String>>,
    /// Range on the first argument (length or precision): `"1"`, `"1..4"`, `"..9"`, `"19.."`.
    #[serde(alias = "length")]
    pub precision: Option<String>,
    /// Range on the second argument (scale); a missing scale counts as 0
    /// when a precision is given.
    pub scale: Option<String>,
    /// Number of arguments written.
    pub arg_count: Option<usize>,
    pub unsigned: Option<bool>,
    pub auto_increment: Option<bool>,
    /// Glob on the default's literal text (`0000-00-00*`), or `none` / `any`
    /// / `current_timestamp`.
    pub default: Option<String>,
    pub nullable: Option<bool>,
    pub on_update: Option<bool>,
    /// Glob on `table.column` (case-insensitive).
    pub column: Option<String>,
    /// Target type, in the target's syntax; `{p}` `{s}` `{n}` are the source
    /// arguments; `keep` keeps the generic mapping.
    pub target: String,
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// Action code for the report.
    pub code: Option<String>,
    /// `converted` (default), `warning` or `manual`.
    pub status: Option<String>,
    pub note: Option<String>,
    /// Where the rule came from, for the report (not read from files).
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s.to_ascii_lowercase()],
        OneOrMany::Many(v) => v.into_iter().map(|s| s.to_ascii_lowercase()).collect(),
    })
}

macro_rules! builtin {
    ($($from:literal, $to:literal;)*) => {
        /// The compiled-in rule files, one per dialect pair.
        pub const BUILTIN: &[(&str, &str, &str)] = &[
            $(($from, $to, include_str!(concat!("../../dialects/", $from, "-", $to, ".toml"))),)*
        ];
    };
}

builtin! {
    "mysql", "postgres"; "mysql", "mysql"; "mysql", "sqlite";
    "postgres", "postgres"; "postgres", "mysql"; "postgres", "sqlite";
    "sqlite", "postgres"; "sqlite", "mysql"; "sqlite", "sqlite";
    "mssql", "postgres"; "mssql", "mysql"; "mssql", "sqlite";
    "oracle", "postgres"; "oracle", "mysql"; "oracle", "sqlite";
}

/// The ordered rules for one conversion.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// User casts first, then user rule files, then the built-in file.
    pub fn load(from: Dialect, to: Dialect, casts: &[String], files: &[std::path::PathBuf]) -> Result<RuleSet> {
        let mut rules = Vec::new();
        for c in casts {
            rules.push(parse_cast(c)?);
        }
        for f in files {
            rules.extend(load_file(f)?);
        }
        let builtin = BUILTIN
            .iter()
            .find(|(a, b, _)| *a == from.name() && *b == to.name())
            .map(|(_, _, text)| *text)
            .unwrap_or("");
        let label = format!("dialects/{}-{}.toml", from.name(), to.name());
        rules.extend(parse_rules(builtin, &label).map_err(|e| Error::other(format!("built-in rules are broken: {e}")))?);
        Ok(RuleSet { rules })
    }

    pub fn first_match(&self, table: &str, col: &Column, spec: &TypeSpec) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(table, col, spec))
    }
}

pub fn parse_rules(text: &str, origin: &str) -> std::result::Result<Vec<Rule>, String> {
    let file: RuleFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = file.rule;
    for (i, r) in rules.iter_mut().enumerate() {
        r.origin = format!("{origin} rule {}", i + 1);
        for range in [&r.precision, &r.scale].into_iter().flatten() {
            Range::parse(range).ok_or_else(|| format!("rule {}: bad range `{range}`; write 5, 1..4, ..9 or 19..", i + 1))?;
        }
        if r.types.is_empty() && r.column.is_none() {
            return Err(format!("rule {} has neither `type` nor `column`", i + 1));
        }
    }
    Ok(rules)
}

fn load_file(path: &Path) -> Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    parse_rules(&text, &path.display().to_string()).map_err(|message| Error::Input {
        file: path.display().to_string(),
        line: 0,
        message,
        hint: Some("see dialects/*.toml for the rule format".into()),
    })
}

/// `--cast 'tinyint(1)=boolean'`, `--cast 'bigint unsigned=numeric(20)'`,
/// `--cast 'orders.status=text'`.
pub fn parse_cast(s: &str) -> Result<Rule> {
    let Some((from, to)) = s.split_once('=') else {
        return Err(Error::usage(format!("--cast `{s}`: expected FROM=TO, e.g. 'tinyint(1)=boolean'")));
    };
    let (from, to) = (from.trim(), to.trim());
    if from.is_empty() || to.is_empty() {
        return Err(Error::usage(format!("--cast `{s}`: both sides must be non-empty")));
    }
    let mut rule = Rule { target: to.to_string(), origin: format!("--cast {s}"), code: Some("B300".into()), ..Default::default() };
    let looks_like_column = from.contains('.') && !from.contains('(');
    if looks_like_column {
        rule.column = Some(from.to_ascii_lowercase());
    } else {
        let spec = typetext::parse(from);
        if spec.name.is_empty() {
            return Err(Error::usage(format!("--cast `{s}`: `{from}` is not a type name")));
        }
        rule.types = vec![spec.name.clone()];
        if !spec.args.is_empty() {
            rule.args = Some(spec.args.clone());
        }
        if spec.unsigned {
            rule.unsigned = Some(true);
        }
        if from.to_ascii_lowercase().contains("auto_increment") {
            rule.auto_increment = Some(true);
        }
    }
    Ok(rule)
}

#[derive(Debug, Clone, Copy)]
struct Range {
    lo: Option<i64>,
    hi: Option<i64>,
}

impl Range {
    fn parse(s: &str) -> Option<Range> {
        let s = s.trim();
        if let Some((a, b)) = s.split_once("..") {
            let b = b.trim_start_matches('=');
            let lo = if a.is_empty() { None } else { Some(a.trim().parse().ok()?) };
            let hi = if b.is_empty() { None } else { Some(b.trim().parse().ok()?) };
            Some(Range { lo, hi })
        } else {
            let v = s.parse().ok()?;
            Some(Range { lo: Some(v), hi: Some(v) })
        }
    }
    fn contains(&self, v: i64) -> bool {
        self.lo.is_none_or(|lo| v >= lo) && self.hi.is_none_or(|hi| v <= hi)
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    crate::model::pattern::matches(pattern, text, crate::model::pattern::GLOB)
}

/// The default as the text rules match on.
pub fn default_text(d: &Option<DefaultValue>) -> Option<String> {
    Some(match d.as_ref()? {
        DefaultValue::Null => "null".into(),
        DefaultValue::Number(n) => n.clone(),
        DefaultValue::String(s) => s.clone(),
        DefaultValue::Bool(b) => b.to_string(),
        DefaultValue::Bytes(h) => format!("x'{h}'"),
        DefaultValue::Bits(b) => format!("b'{b}'"),
        DefaultValue::CurrentTimestamp { .. } => "current_timestamp".into(),
        DefaultValue::CurrentDate => "current_date".into(),
        DefaultValue::CurrentTime => "current_time".into(),
        DefaultValue::Sequence(s) => format!("nextval({s})"),
        DefaultValue::Expression(e) => e.sql.clone(),
    })
}

impl Rule {
    pub fn matches(&self, table: &str, col: &Column, spec: &TypeSpec) -> bool {
        if !self.types.is_empty() && !self.types.iter().any(|t| t == "*" || *t == spec.name) {
            return false;
        }
        if let Some(pat) = &self.column {
            if !glob(pat, &format!("{table}.{}", col.name)) && !glob(pat, &col.name) {
                return false;
            }
        }
        if let Some(args) = &self.args {
            if args.len() != spec.args.len() || !args.iter().zip(&spec.args).all(|(a, b)| a.eq_ignore_ascii_case(b)) {
                return false;
            }
        }
        if let Some(n) = self.arg_count {
            if spec.args.len() != n {
                return false;
            }
        }
        if let Some(r) = &self.precision {
            let Some(range) = Range::parse(r) else { return false };
            let v = spec.args.first().and_then(|a| if a == "*" { Some(38) } else { a.parse().ok() });
            if !v.is_some_and(|v| range.contains(v)) {
                return false;
            }
        }
        if let Some(r) = &self.scale {
            let Some(range) = Range::parse(r) else { return false };
            let v = match spec.args.get(1) {
                Some(a) => a.parse().ok(),
                None if !spec.args.is_empty() => Some(0),
                None => None,
            };
            if !v.is_some_and(|v| range.contains(v)) {
                return false;
            }
        }
        if self.unsigned.is_some_and(|u| u != spec.unsigned) {
            return false;
        }
        if self.auto_increment.is_some_and(|a| a != col.identity.is_some()) {
            return false;
        }
        if self.nullable.is_some_and(|n| n != col.nullable) {
            return false;
        }
        if self.on_update.is_some_and(|o| o != col.on_update_current_timestamp) {
            return false;
        }
        if let Some(pat) = &self.default {
            let d = default_text(&col.default);
            let ok = match (pat.as_str(), &d) {
                ("any", _) => d.is_some(),
                ("none", _) => d.is_none(),
                (_, Some(text)) => glob(pat, text),
                (_, None) => false,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// The target type text with `{p}` `{s}` `{n}` filled in.
    pub fn target_text(&self, spec: &TypeSpec) -> String {
        let p = spec.args.first().map(|a| if a == "*" { "38".to_string() } else { a.clone() }).unwrap_or_default();
        let s = spec.args.get(1).cloned().unwrap_or_else(|| "0".into());
        self.target.replace("{p}", &p).replace("{n}", &p).replace("{s}", &s)
    }

    /// The target type as a model type, read in the target's dialect.
    pub fn target_type(&self, spec: &TypeSpec, target: Dialect) -> Option<ColumnType> {
        if self.target.eq_ignore_ascii_case("keep") {
            return None;
        }
        let text = self.target_text(spec);
        let mut ts = typetext::parse(&text);
        // Carry text attributes over when the rule does not name them.
        ts.charset = ts.charset.or(spec.charset.clone());
        ts.collation = ts.collation.or(spec.collation.clone());
        Some(typetext::recognize(target, &ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: &str) -> (Column, TypeSpec) {
        let spec = typetext::parse(ty);
        let mut c = Column::new("c", typetext::recognize(Dialect::Mysql, &spec), ty);
        c.nullable = false;
        (c, spec)
    }

    #[test]
    fn builtin_files_parse() {
        for (a, b, text) in BUILTIN {
            parse_rules(text, &format!("{a}-{b}")).unwrap_or_else(|e| panic!("{a}-{b}: {e}"));
        }
    }

    #[test]
    fn cast_matches_exact_args() {
        let r = parse_cast("tinyint(1)=boolean").unwrap();
        let (c, s) = col("tinyint(1)");
        assert!(r.matches("t", &c, &s));
        let (c, s) = col("tinyint(4)");
        assert!(!r.matches("t", &c, &s));
        assert_eq!(r.target_type(&s, Dialect::Postgres), Some(ColumnType::Bool));
    }

    #[test]
    fn ranges_and_globs() {
        let rules = parse_rules(
            "[[rule]]\ntype = \"number\"\nprecision = \"1..4\"\nscale = \"0\"\ntarget = \"smallint\"\n[[rule]]\ntype=\"datetime\"\ndefault=\"0000-00-00*\"\ntarget=\"timestamp\"\ntransforms=[\"drop-default\",\"relax-not-null\"]\n",
            "t",
        )
        .unwrap();
        let spec = typetext::parse("NUMBER(3)");
        let c = Column::new("c", ColumnType::int(16), "NUMBER(3)");
        assert!(rules[0].matches("t", &c, &spec));
        let spec5 = typetext::parse("NUMBER(5)");
        assert!(!rules[0].matches("t", &c, &spec5));
        let (mut c, s) = col("datetime");
        c.default = Some(DefaultValue::String("0000-00-00 00:00:00".into()));
        assert!(rules[1].matches("t", &c, &s));
        assert!(glob("orders.*", "ORDERS.status"));
        assert!(!glob("a*b", "ac"));
    }

    #[test]
    fn bad_rules_are_explained() {
        assert!(parse_rules("[[rule]]\ntype=\"x\"\nprecision=\"a..b\"\ntarget=\"y\"", "f").unwrap_err().contains("bad range"));
        assert!(parse_rules("[[rule]]\ntarget=\"y\"", "f").unwrap_err().contains("neither"));
        assert!(parse_cast("nonsense").is_err());
    }
}
