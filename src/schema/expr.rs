//! Expressions: classifying defaults, inferring the type of a computed
//! column, and rewriting expressions and view queries for a target
//! dialect (identifier quoting and case, function names, casts, TOP/LIMIT).
//! What cannot be rewritten safely is refused with a reason, so the caller
//! can flag it instead of emitting SQL the target would reject.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    self, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Value, VisitMut, VisitorMut,
};

use super::rewrite::sql_dialect;
use super::typetext;
use crate::model::*;

/// Reads a column default into the model.
pub fn classify_default(e: &Expr, dialect: Dialect) -> DefaultValue {
    match e {
        Expr::Nested(inner) => classify_default(inner, dialect),
        Expr::Value(v) => match &v.value {
            Value::Null => DefaultValue::Null,
            Value::Number(n, _) => DefaultValue::Number(n.to_string()),
            Value::Boolean(b) => DefaultValue::Bool(*b),
            Value::SingleQuotedString(s)
            | Value::NationalStringLiteral(s)
            | Value::EscapedStringLiteral(s)
            | Value::DoubleQuotedString(s) => DefaultValue::String(s.clone()),
            Value::HexStringLiteral(h) => DefaultValue::Bytes(h.clone()),
            Value::SingleQuotedByteStringLiteral(b) if b.chars().all(|c| c == '0' || c == '1') => {
                // b'0101' is a bit literal.
                DefaultValue::Bits(b.clone())
            }
            _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
        },
        Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => match classify_default(expr, dialect) {
            DefaultValue::Number(n) => DefaultValue::Number(format!("-{n}")),
            _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
        },
        // PostgreSQL writes casts on literal defaults: 'x'::character varying.
        Expr::Cast { expr, data_type, kind: CastKind::DoubleColon | CastKind::Cast, .. } => {
            let inner = classify_default(expr, dialect);
            let ty = data_type.to_string().to_ascii_lowercase().replace('"', "");
            match inner {
                DefaultValue::String(s) if ty == "regclass" => DefaultValue::Sequence(parse_qualified(&s)),
                DefaultValue::String(s) if s.eq_ignore_ascii_case("now") && ty.starts_with("timestamp") => {
                    DefaultValue::CurrentTimestamp { precision: None }
                }
                // pg_dump's spelling of CURRENT_DATE / CURRENT_TIME:
                // ('now'::text)::date.
                DefaultValue::String(s) if s.eq_ignore_ascii_case("now") && ty == "date" => DefaultValue::CurrentDate,
                DefaultValue::String(s) if s.eq_ignore_ascii_case("now") && (ty.starts_with("time") && !ty.starts_with("timestamp")) => DefaultValue::CurrentTime,
                DefaultValue::String(s) if ty == "bytea" => match pg_bytea_literal(&s) {
                    Some(bytes) => DefaultValue::Bytes(hex::encode(bytes)),
                    None => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
                },
                // An array literal ('{}'::integer[]) stays a literal; the
                // target decides its spelling.
                DefaultValue::String(s) if ty.contains("[]") && s.trim_start().starts_with('{') => DefaultValue::String(s),
                DefaultValue::String(s) if ty == "bit" || ty.starts_with("bit(") || ty.starts_with("bit varying") => {
                    DefaultValue::Bits(s)
                }
                DefaultValue::Bits(b) => DefaultValue::Bits(b),
                v @ (DefaultValue::String(_) | DefaultValue::Number(_) | DefaultValue::Bool(_) | DefaultValue::Null) => {
                    // A literal cast to json/array/etc. is still that literal.
                    if ty.contains("[]") {
                        DefaultValue::Expression(SqlText::new(e.to_string(), dialect))
                    } else {
                        v
                    }
                }
                DefaultValue::CurrentTimestamp { .. } | DefaultValue::CurrentDate | DefaultValue::CurrentTime => inner,
                _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
            }
        }
        // MySQL charset introducers: `_utf8mb4'new'`, `_binary'\x01'`.
        Expr::Prefixed { prefix, value } if prefix.value.starts_with('_') => match classify_default(value, dialect) {
            DefaultValue::String(s) if prefix.value.eq_ignore_ascii_case("_binary") => DefaultValue::Bytes(hex::encode(s.as_bytes())),
            v @ (DefaultValue::String(_) | DefaultValue::Bytes(_) | DefaultValue::Bits(_)) => v,
            _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
        },
        Expr::Function(f) => classify_function_default(f, e, dialect),
        Expr::Identifier(i) if i.quote_style.is_none() => match i.value.to_ascii_uppercase().as_str() {
            "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" | "SYSDATE" | "SYSTIMESTAMP" | "NOW" => {
                DefaultValue::CurrentTimestamp { precision: None }
            }
            "CURRENT_DATE" => DefaultValue::CurrentDate,
            "CURRENT_TIME" | "LOCALTIME" => DefaultValue::CurrentTime,
            "USER" | "CURRENT_USER" | "SESSION_USER" => DefaultValue::Expression(SqlText::new("CURRENT_USER", dialect)),
            "TRUE" => DefaultValue::Bool(true),
            "FALSE" => DefaultValue::Bool(false),
            "NULL" => DefaultValue::Null,
            _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
        },
        _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
    }
}

/// The bytes of a PostgreSQL bytea literal: hex (`\xdeadbeef`) or the
/// escape format (`\000` octal, `\\` a backslash, other bytes as is).
pub fn pg_bytea_literal(s: &str) -> Option<Vec<u8>> {
    if let Some(h) = s.strip_prefix("\\x") {
        return hex::decode(h.trim()).ok();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            let oct = b.get(i + 1..i + 4)?;
            if !oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                return None;
            }
            out.push(((oct[0] - b'0') as u32 * 64 + (oct[1] - b'0') as u32 * 8 + (oct[2] - b'0') as u32) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Some(out)
}

/// A PostgreSQL array literal (`{1,2}`, `{"a b",NULL}`, `{{1,2},{3,4}}`)
/// as JSON text, for targets that store arrays as JSON. Elements of a
/// numeric or boolean array become JSON numbers and booleans.
pub fn pg_array_to_json(literal: &str, element: &ColumnType) -> Option<String> {
    fn value(raw: &str, quoted: bool, element: &ColumnType) -> serde_json::Value {
        if !quoted && raw.eq_ignore_ascii_case("null") {
            return serde_json::Value::Null;
        }
        match element {
            ColumnType::Int { .. } | ColumnType::Decimal { .. } | ColumnType::Float32 | ColumnType::Float64 if !quoted => {
                serde_json::from_str::<serde_json::Number>(raw).map(serde_json::Value::Number).unwrap_or_else(|_| serde_json::Value::String(raw.into()))
            }
            ColumnType::Bool if !quoted => serde_json::Value::Bool(matches!(raw.to_ascii_lowercase().as_str(), "t" | "true" | "1" | "y" | "yes" | "on")),
            _ => serde_json::Value::String(raw.into()),
        }
    }
    fn parse(chars: &mut std::iter::Peekable<std::str::Chars>, element: &ColumnType, depth: usize) -> Option<serde_json::Value> {
        if depth > 64 || chars.next()? != '{' {
            return None;
        }
        let mut items = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match *chars.peek()? {
                '}' => {
                    chars.next();
                    return Some(serde_json::Value::Array(items));
                }
                '{' => items.push(parse(chars, element, depth + 1)?),
                '"' => {
                    chars.next();
                    let mut v = String::new();
                    loop {
                        match chars.next()? {
                            '\\' => v.push(chars.next()?),
                            '"' => break,
                            c => v.push(c),
                        }
                    }
                    items.push(value(&v, true, element));
                }
                _ => {
                    let mut v = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == ',' || c == '}' {
                            break;
                        }
                        v.push(c);
                        chars.next();
                    }
                    items.push(value(v.trim(), false, element));
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
    }
    let mut chars = literal.trim().chars().peekable();
    let v = parse(&mut chars, element, 0)?;
    chars.all(char::is_whitespace).then(|| v.to_string())
}

fn classify_function_default(f: &Function, e: &Expr, dialect: Dialect) -> DefaultValue {
    let name = f.name.to_string().to_ascii_lowercase();
    let name = name.trim_start_matches("pg_catalog.");
    let args = function_args(f);
    match name {
        "current_timestamp" | "now" | "getdate" | "sysdatetime" | "localtimestamp" | "sysdate" | "systimestamp"
        | "getutcdate" | "sysutcdatetime" | "statement_timestamp" | "transaction_timestamp" | "sysdatetimeoffset" => {
            let precision = args.first().and_then(|a| a.to_string().parse().ok());
            DefaultValue::CurrentTimestamp { precision }
        }
        "current_date" | "curdate" => DefaultValue::CurrentDate,
        "current_time" | "curtime" | "localtime" => DefaultValue::CurrentTime,
        "datetime" | "strftime" if dialect == Dialect::Sqlite => {
            let a: Vec<String> = args.iter().map(|a| a.to_string().to_ascii_lowercase()).collect();
            if a == ["'now'"] || a == ["'now'", "'localtime'"] {
                DefaultValue::CurrentTimestamp { precision: None }
            } else {
                DefaultValue::Expression(SqlText::new(e.to_string(), dialect))
            }
        }
        "date" if dialect == Dialect::Sqlite && args.len() == 1 && args[0].to_string().eq_ignore_ascii_case("'now'") => {
            DefaultValue::CurrentDate
        }
        "nextval" if args.len() == 1 => match classify_default(&args[0], dialect) {
            DefaultValue::String(s) => DefaultValue::Sequence(parse_qualified(&s)),
            DefaultValue::Sequence(s) => DefaultValue::Sequence(s),
            _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
        },
        _ => DefaultValue::Expression(SqlText::new(e.to_string(), dialect)),
    }
}

fn function_args(f: &Function) -> Vec<Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_qualified(s: &str) -> QualifiedName {
    let parts: Vec<&str> = s.split('.').map(|p| p.trim_matches('"')).collect();
    match parts.as_slice() {
        [schema, name] => QualifiedName::new(Some(schema), name),
        _ => QualifiedName::bare(parts.last().copied().unwrap_or(s)),
    }
}

/// A type for a computed column written without one: the widest numeric
/// type among the columns it uses, else text.
pub fn infer_type(expr_sql: &str, table: &Table) -> ColumnType {
    let mut best: Option<ColumnType> = None;
    let lower = expr_sql.to_ascii_lowercase();
    for c in &table.columns {
        let needle = c.name.to_ascii_lowercase();
        let mentioned = lower
            .match_indices(&needle)
            .any(|(i, _)| {
                let before = lower[..i].chars().last();
                let after = lower[i + needle.len()..].chars().next();
                let is_ident = |ch: Option<char>| ch.is_some_and(|ch| ch.is_alphanumeric() || ch == '_');
                !is_ident(before) && !is_ident(after)
            });
        if !mentioned || c.generated.is_some() {
            continue;
        }
        let ty = c.ty.clone();
        best = Some(match (best, ty) {
            (None, t) => t,
            (Some(ColumnType::Decimal { .. }), _) | (_, ColumnType::Decimal { .. }) => {
                ColumnType::Decimal { precision: Some(38), scale: Some(6) }
            }
            (Some(ColumnType::Float64), _) | (_, ColumnType::Float64) => ColumnType::Float64,
            (Some(a @ ColumnType::Int { .. }), ColumnType::Int { .. }) => match a {
                ColumnType::Int { .. } => ColumnType::int(64),
                other => other,
            },
            (Some(a), _) => a,
        });
    }
    match best {
        Some(t @ (ColumnType::Int { .. } | ColumnType::Decimal { .. } | ColumnType::Float32 | ColumnType::Float64)) => {
            if lower.contains('/') {
                ColumnType::Decimal { precision: Some(38), scale: Some(6) }
            } else if lower.contains('*') && matches!(t, ColumnType::Int { .. }) {
                ColumnType::int(64)
            } else {
                t
            }
        }
        Some(t) if t.is_textual() => ColumnType::text(),
        Some(t) if t.is_temporal() => t,
        _ => ColumnType::text(),
    }
}

/// How identifiers are spelled on the target: the naming policy's output,
/// provided by the caller.
pub trait NameMapper {
    /// A table (or view) reference, as target name parts.
    fn relation(&self, name: &QualifiedName) -> Vec<String>;
    /// Any other identifier (column, alias).
    fn ident(&self, name: &str) -> String;
    /// Quotes one name part if the target needs it.
    fn quote(&self, part: &str) -> String;
    fn target(&self) -> Dialect;
    /// Renders a type for casts.
    fn cast_type(&self, source: Dialect, ty: &str) -> Option<String>;
    /// Is this column a character type? (SQL Server's `+` concatenates those.)
    fn is_textual(&self, _name: &str) -> bool {
        false
    }
    /// Is this column boolean on the target? (0/1 comparisons become false/true.)
    fn is_bool(&self, _name: &str) -> bool {
        false
    }
}

fn bool_column(e: &Expr, names: &dyn NameMapper) -> bool {
    match e {
        Expr::Identifier(i) => names.is_bool(&i.value),
        Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| names.is_bool(&i.value)),
        Expr::Nested(inner) => bool_column(inner, names),
        _ => false,
    }
}

/// `0`/`1` (possibly parenthesized) as a boolean literal.
fn as_bool_literal(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Nested(inner) => as_bool_literal(inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) if *n == "0" => Some(Expr::value(Value::Boolean(false))),
            Value::Number(n, _) if *n == "1" => Some(Expr::value(Value::Boolean(true))),
            _ => None,
        },
        _ => None,
    }
}

fn is_textual_expr(e: &Expr, names: &dyn NameMapper) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::SingleQuotedString(_) | Value::NationalStringLiteral(_)),
        Expr::Identifier(i) => names.is_textual(&i.value),
        Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| names.is_textual(&i.value)),
        Expr::Nested(inner) => is_textual_expr(inner, names),
        Expr::BinaryOp { op: ast::BinaryOperator::StringConcat, .. } => true,
        Expr::Function(f) => f.name.to_string().eq_ignore_ascii_case("concat"),
        _ => false,
    }
}

fn concat_chain(args: Vec<Expr>) -> Expr {
    let mut it = args.into_iter();
    let first = it.next().unwrap_or_else(|| Expr::value(Value::SingleQuotedString(String::new())));
    it.fold(first, |acc, e| Expr::BinaryOp { left: Box::new(acc), op: ast::BinaryOperator::StringConcat, right: Box::new(e) })
}

/// Function names and their spelling per target. `None`: no equivalent.
fn function_for(target: Dialect, name: &str, argc: usize) -> Option<&'static str> {
    use Dialect::*;
    let n = name.to_ascii_lowercase();
    Some(match (n.as_str(), target) {
        ("nvl" | "ifnull" | "isnull" | "coalesce", _) if argc >= 2 => "coalesce",
        ("getdate" | "sysdatetime" | "now" | "current_timestamp" | "sysdate" | "systimestamp" | "localtimestamp", Sqlite) => {
            "CURRENT_TIMESTAMP"
        }
        ("getdate" | "sysdatetime" | "now" | "current_timestamp" | "sysdate" | "systimestamp" | "localtimestamp", _) => {
            "CURRENT_TIMESTAMP"
        }
        ("getutcdate" | "sysutcdatetime" | "utc_timestamp", Postgres) => "CURRENT_TIMESTAMP",
        ("getutcdate" | "sysutcdatetime" | "utc_timestamp", Mysql) => "utc_timestamp",
        ("curdate" | "current_date", _) => "CURRENT_DATE",
        ("len" | "length" | "char_length" | "character_length", Mysql) => "char_length",
        ("len" | "length" | "char_length" | "character_length", _) => "length",
        ("lower" | "lcase", _) => "lower",
        ("upper" | "ucase", _) => "upper",
        ("substr" | "substring", Sqlite) => "substr",
        ("substr" | "substring", _) => "substr",
        ("trim", _) => "trim",
        ("ltrim", _) => "ltrim",
        ("rtrim", _) => "rtrim",
        ("abs", _) => "abs",
        ("round", _) => "round",
        ("floor", _) => "floor",
        ("ceil" | "ceiling", Sqlite) => return None,
        ("ceil" | "ceiling", _) => "ceil",
        ("replace", _) => "replace",
        ("count", _) => "count",
        ("sum", _) => "sum",
        ("avg", _) => "avg",
        ("min", _) => "min",
        ("max", _) => "max",
        ("greatest", Sqlite) => "max",
        ("least", Sqlite) => "min",
        ("greatest", _) => "greatest",
        ("least", _) => "least",
        ("nullif", _) => "nullif",
        ("if", Mysql) => "if",
        ("concat", Sqlite) => return None,
        ("concat", _) => "concat",
        ("mod", Sqlite) => return None,
        ("mod", _) => "mod",
        ("power" | "pow", _) => "power",
        ("sqrt", _) => "sqrt",
        ("sign", _) => "sign",
        ("suser_sname" | "suser_name" | "user_name" | "current_user" | "session_user", Postgres) => "CURRENT_USER",
        ("suser_sname" | "suser_name" | "user_name" | "current_user" | "session_user", Mysql) => "current_user",
        ("gen_random_uuid" | "newid" | "sys_guid" | "uuid", Postgres) => "gen_random_uuid",
        ("gen_random_uuid" | "newid" | "sys_guid" | "uuid", Mysql) => "uuid",
        _ => return None,
    })
}

/// A SQLite GLOB pattern as an anchored regular expression (`*` any
/// run, `?` one character, `[...]` a class, the rest literal). Literal
/// metacharacters are written as one-character classes, so the pattern
/// needs no backslash (which MySQL string literals would eat); `^` and
/// `\` have no such spelling, and give None.
pub fn glob_to_regex(glob: &str) -> Option<String> {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` first in the class is literal; so it is in a regex.
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        return None;
                    }
                    out.push(c);
                }
                if !closed {
                    return None;
                }
                out.push(']');
            }
            '^' | '\\' => return None,
            '.' | '$' | '+' | '(' | ')' | '{' | '}' | '|' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out.push('$');
    Some(out)
}

/// Functions whose value changes from one call to the next: MariaDB
/// refuses them in CHECK constraints (error 1901), SQLite fails every
/// write to a table whose CHECK uses them.
const NON_DETERMINISTIC: &[&str] = &[
    "current_timestamp", "current_date", "current_time", "localtime", "localtimestamp", "now", "sysdate", "systimestamp",
    "getdate", "getutcdate", "sysdatetime", "sysutcdatetime", "sysdatetimeoffset", "curdate", "curtime", "utc_timestamp",
    "utc_date", "utc_time", "unix_timestamp", "rand", "random", "uuid", "newid", "sys_guid", "gen_random_uuid", "user",
    "current_user", "session_user", "suser_sname", "connection_id", "clock_timestamp", "statement_timestamp",
    "transaction_timestamp", "timeofday",
];

/// The first non-deterministic function an expression calls, if any.
pub fn non_deterministic(text: &SqlText) -> Option<String> {
    let d = sql_dialect(text.dialect);
    let e = super::rewrite::parse_expr(&*d, &text.sql).ok()?;
    let mut found = None;
    let _ = ast::visit_expressions(&e, |x| {
        let name = match x {
            Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()),
            Expr::Identifier(i) if i.quote_style.is_none() => Some(i.value.to_ascii_lowercase()),
            _ => None,
        };
        match name {
            Some(n) if NON_DETERMINISTIC.contains(&n.as_str()) => {
                found = Some(n);
                ControlFlow::Break(())
            }
            // SQLite's date('now'), datetime('now', ...), strftime(f, 'now').
            _ if matches!(x, Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s.eq_ignore_ascii_case("now"))) => {
                found = Some("'now'".into());
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        }
    });
    found
}

/// Reads an expression written for `target` (used to build rewrites that
/// are easier to spell than to assemble node by node).
fn target_expr(target: Dialect, sql: &str) -> Result<Expr, String> {
    let d = sql_dialect(target);
    super::rewrite::parse_expr(&*d, sql).map_err(|e| format!("internal rewrite `{sql}` does not parse: {e}"))
}

/// Rewrites an expression for the target. Errors say why it could not be.
pub fn render_expr(text: &SqlText, names: &dyn NameMapper) -> Result<String, String> {
    let d = sql_dialect(text.dialect);
    let mut e = super::rewrite::parse_expr(&*d, &text.sql)
        .map_err(|err| format!("cannot re-read expression `{}`: {err}", text.sql))?;
    let mut v = Rewriter::new(text.dialect, names);
    if let ControlFlow::Break(reason) = e.visit(&mut v) {
        return Err(reason);
    }
    Ok(strip_outer_parens_once(&e.to_string()))
}

/// Rewrites a view query for the target.
pub fn render_query(text: &SqlText, names: &dyn NameMapper) -> Result<String, String> {
    let d = sql_dialect(text.dialect);
    let mut stmts = super::rewrite::parse_sql(&*d, &text.sql).map_err(|err| format!("cannot re-read the query: {err}"))?;
    if stmts.len() != 1 {
        return Err("the view body is not a single query".into());
    }
    let mut v = Rewriter::new(text.dialect, names);
    if let ast::Statement::Query(q) = &mut stmts[0] {
        top_to_limit(q)?;
    } else {
        return Err("the view body is not a query".into());
    }
    if let ControlFlow::Break(reason) = stmts[0].visit(&mut v) {
        return Err(reason);
    }
    Ok(stmts[0].to_string())
}

fn strip_outer_parens_once(s: &str) -> String {
    s.to_string()
}

/// SQL Server `SELECT TOP n` becomes `LIMIT n`; `TOP (100) PERCENT` (the
/// idiom that lets a view carry ORDER BY) is every row.
fn top_to_limit(q: &mut ast::Query) -> Result<(), String> {
    if let ast::SetExpr::Select(sel) = q.body.as_mut() {
        if let Some(top) = sel.top.take() {
            if top.with_ties {
                return Err("SELECT TOP ... WITH TIES has no LIMIT equivalent".into());
            }
            if top.percent {
                let all = matches!(&top.quantity, Some(ast::TopQuantity::Constant(100)))
                    || matches!(&top.quantity, Some(ast::TopQuantity::Expr(e)) if e.to_string().trim_matches(['(', ')']) == "100");
                if all {
                    return Ok(());
                }
                return Err("SELECT TOP n PERCENT has no LIMIT equivalent".into());
            }
            if let Some(ast::TopQuantity::Constant(n)) = top.quantity {
                q.limit_clause = Some(ast::LimitClause::LimitOffset {
                    limit: Some(Expr::value(Value::Number(n.to_string(), false))),
                    offset: None,
                    limit_by: vec![],
                });
            } else if let Some(ast::TopQuantity::Expr(e)) = top.quantity {
                q.limit_clause = Some(ast::LimitClause::LimitOffset { limit: Some(e), offset: None, limit_by: vec![] });
            }
        }
    }
    Ok(())
}

struct Rewriter<'a> {
    source: Dialect,
    names: &'a dyn NameMapper,
    /// Table aliases seen, which must not be renamed as tables.
    _aliases: HashMap<String, ()>,
}

impl<'a> Rewriter<'a> {
    fn new(source: Dialect, names: &'a dyn NameMapper) -> Self {
        Rewriter { source, names, _aliases: HashMap::new() }
    }

    fn fix_ident(&self, i: &mut Ident) {
        let mapped = self.names.ident(&i.value);
        set_ident(i, &mapped, self.names);
    }
}

impl Rewriter<'_> {
    /// Rewrites that replace a whole node: globs, charset introducers,
    /// string aggregation, IF/IIF. None when the node is not one of them.
    fn special(&self, expr: &mut Expr) -> Option<Result<(), String>> {
        let target = self.names.target();
        match expr {
            Expr::BinaryOp { left, op: ast::BinaryOperator::Glob, right } if target != Dialect::Sqlite => {
                let (l, r) = (left.to_string(), right.as_ref().clone());
                Some(self.glob(expr, l, r, false))
            }
            Expr::Like { negated, expr: inner, pattern, .. }
                if matches!(pattern.as_ref(), Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s.starts_with(super::rewrite::GLOB_MARK))) =>
            {
                let neg = *negated;
                let l = inner.to_string();
                let Expr::Value(v) = pattern.as_ref() else { return None };
                let Value::SingleQuotedString(s) = &v.value else { return None };
                let pat = Expr::value(Value::SingleQuotedString(s.trim_start_matches(super::rewrite::GLOB_MARK).to_string()));
                if target == Dialect::Sqlite {
                    return Some(target_expr(target, &format!("NOT ({l} GLOB {pat})")).map(|e| *expr = e));
                }
                Some(self.glob(expr, l, pat, neg))
            }
            // MySQL's `a DIV b`: the quotient truncated toward zero, an
            // integer, which no other target spells so.
            Expr::BinaryOp { left, op: ast::BinaryOperator::MyIntegerDivide, right } if target != Dialect::Mysql => {
                let (l, r) = (left.to_string(), right.to_string());
                let sql = match target {
                    Dialect::Postgres => format!("CAST(trunc(CAST({l} AS numeric) / ({r})) AS bigint)"),
                    _ => format!("CAST(({l}) / ({r}) AS INTEGER)"),
                };
                Some(target_expr(target, &sql).map(|e| *expr = e))
            }
            // PostgreSQL's ILIKE: case-insensitive whatever the target's
            // collation (MySQL has no ILIKE; SQLite's LIKE ignores only ASCII case).
            Expr::ILike { negated, expr: inner, pattern, escape_char, any: false } if target != Dialect::Postgres => {
                let not = if *negated { "NOT " } else { "" };
                let escape = escape_char.as_ref().map(|e| format!(" ESCAPE {e}")).unwrap_or_default();
                let sql = format!("LOWER({inner}) {not}LIKE LOWER({pattern}){escape}");
                Some(target_expr(target, &sql).map(|e| *expr = e))
            }
            Expr::Prefixed { prefix, value } if prefix.value.starts_with('_') && target != Dialect::Mysql => {
                let binary = prefix.value.eq_ignore_ascii_case("_binary");
                let inner = std::mem::replace(value.as_mut(), Expr::value(Value::Null));
                *expr = match (&inner, binary) {
                    (Expr::Value(v), true) => match &v.value {
                        Value::SingleQuotedString(s) => {
                            let h = hex::encode(s.as_bytes());
                            match target_expr(target, &if target == Dialect::Postgres { format!("'\\x{h}'::bytea") } else { format!("X'{h}'") }) {
                                Ok(e) => e,
                                Err(why) => return Some(Err(why)),
                            }
                        }
                        _ => inner,
                    },
                    _ => inner,
                };
                Some(Ok(()))
            }
            Expr::Function(f) => {
                let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default();
                match name.as_str() {
                    // Same engine: its own function (PostgreSQL dumps may
                    // define a group_concat aggregate of their own).
                    "group_concat" | "string_agg" | "listagg" if self.source != target => Some(self.string_agg(expr)),
                    "if" | "iif" if function_args(f).len() == 3 && !(target == Dialect::Mysql && name == "if") => {
                        let a: Vec<String> = function_args(f).iter().map(|x| x.to_string()).collect();
                        let sql = if target == Dialect::Mysql {
                            format!("IF({}, {}, {})", a[0], a[1], a[2])
                        } else {
                            format!("CASE WHEN {} THEN {} ELSE {} END", a[0], a[1], a[2])
                        };
                        Some(target_expr(target, &sql).map(|e| *expr = e))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `x GLOB 'p'` as a case-sensitive regular-expression match.
    fn glob(&self, expr: &mut Expr, left: String, pattern: Expr, negated: bool) -> Result<(), String> {
        let target = self.names.target();
        let Expr::Value(v) = &pattern else { return Err("GLOB with a pattern that is not a literal".into()) };
        let Value::SingleQuotedString(glob) = &v.value else { return Err("GLOB with a pattern that is not a string".into()) };
        let Some(re) = glob_to_regex(glob) else { return Err(format!("GLOB pattern `{glob}` has no portable regular-expression spelling")) };
        let sql = match target {
            Dialect::Postgres => format!("{left} {} {}", if negated { "!~" } else { "~" }, super::ddl::string_literal(target, &re)),
            // Binary collation: GLOB is case-sensitive.
            _ => format!("CAST({left} AS CHAR) COLLATE utf8mb4_bin {}REGEXP {}", if negated { "NOT " } else { "" }, super::ddl::string_literal(target, &re)),
        };
        *expr = target_expr(target, &sql)?;
        Ok(())
    }

    /// GROUP_CONCAT / string_agg / LISTAGG for the target, with their
    /// separator, DISTINCT and ORDER BY.
    fn string_agg(&self, expr: &mut Expr) -> Result<(), String> {
        let target = self.names.target();
        let Expr::Function(f) = expr else { return Ok(()) };
        let FunctionArguments::List(list) = &f.args else { return Err("string aggregate without arguments".into()) };
        let args: Vec<String> = list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e.to_string(),
                other => other.to_string(),
            })
            .collect();
        let Some(value) = args.first().cloned() else { return Err("string aggregate without arguments".into()) };
        let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
        let mut separator = args.get(1).cloned();
        let mut order: Vec<String> = Vec::new();
        for c in &list.clauses {
            match c {
                ast::FunctionArgumentClause::Separator(v) => separator = Some(v.to_string()),
                ast::FunctionArgumentClause::OrderBy(o) => order.extend(o.iter().map(|x| x.to_string())),
                _ => {}
            }
        }
        for w in &f.within_group {
            order.push(w.to_string());
        }
        let sep = separator.unwrap_or_else(|| "','".into());
        let d = if distinct { "DISTINCT " } else { "" };
        let ob = if order.is_empty() { String::new() } else { format!(" ORDER BY {}", order.join(", ")) };
        let sql = match target {
            Dialect::Postgres => format!("string_agg({d}CAST({value} AS text), {sep}{ob})"),
            Dialect::Mysql => format!("group_concat({d}{value}{ob} SEPARATOR {sep})"),
            _ if distinct && sep == "','" => format!("group_concat(DISTINCT {value}{ob})"),
            _ if distinct => return Err("SQLite's group_concat cannot take DISTINCT and a separator together".into()),
            _ => format!("group_concat({value}, {sep}{ob})"),
        };
        *expr = target_expr(target, &sql)?;
        Ok(())
    }
}

fn set_ident(i: &mut Ident, value: &str, names: &dyn NameMapper) {
    let quoted = names.quote(value);
    i.value = value.to_string();
    i.quote_style = if quoted.len() != value.len() { quoted.chars().next() } else { None };
}

impl VisitorMut for Rewriter<'_> {
    type Break = String;

    fn pre_visit_select(&mut self, select: &mut ast::Select) -> ControlFlow<Self::Break> {
        for item in select.projection.iter_mut() {
            match item {
                ast::SelectItem::ExprWithAlias { alias, .. } => self.fix_ident(alias),
                ast::SelectItem::ExprWithAliases { aliases, .. } => aliases.iter_mut().for_each(|a| self.fix_ident(a)),
                // `Customer.*` names the table as its columns do.
                ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                    for part in name.0.iter_mut() {
                        if let ObjectNamePart::Identifier(i) = part {
                            self.fix_ident(i);
                        }
                    }
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &mut ast::TableFactor) -> ControlFlow<Self::Break> {
        let alias = match tf {
            ast::TableFactor::Table { alias, .. } | ast::TableFactor::Derived { alias, .. } => alias,
            _ => return ControlFlow::Continue(()),
        };
        if let Some(a) = alias {
            self.fix_ident(&mut a.name);
            for c in a.columns.iter_mut() {
                self.fix_ident(&mut c.name);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<Self::Break> {
        let parts: Vec<String> =
            relation.0.iter().map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default()).collect();
        let q = match parts.len() {
            0 => return ControlFlow::Continue(()),
            1 => QualifiedName::bare(&parts[0]),
            n => QualifiedName::new(Some(&parts[n - 2]), &parts[n - 1]),
        };
        let mapped = self.names.relation(&q);
        relation.0 = mapped
            .iter()
            .map(|p| {
                let mut i = Ident::new(p.clone());
                set_ident(&mut i, p, self.names);
                ObjectNamePart::Identifier(i)
            })
            .collect();
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Self::Break> {
        let target = self.names.target();
        if let Some(done) = self.special(expr) {
            return match done {
                Ok(()) => ControlFlow::Continue(()),
                Err(why) => ControlFlow::Break(why),
            };
        }
        match expr {
            Expr::BinaryOp { left, op: ast::BinaryOperator::Eq | ast::BinaryOperator::NotEq, right } if target == Dialect::Postgres && bool_column(left, self.names) => {
                if let Some(b) = as_bool_literal(right) {
                    **right = b;
                }
            }
            Expr::In { expr: inner, target: ast::InTarget::List(list), .. } if target == Dialect::Postgres && bool_column(inner, self.names) => {
                for item in list.iter_mut() {
                    if let Some(b) = as_bool_literal(item) {
                        *item = b;
                    }
                }
            }
            Expr::BinaryOp { op, .. }
                if matches!(op, ast::BinaryOperator::PGRegexMatch | ast::BinaryOperator::PGRegexIMatch | ast::BinaryOperator::PGRegexNotMatch | ast::BinaryOperator::PGRegexNotIMatch)
                    && target != Dialect::Postgres =>
            {
                if target == Dialect::Mysql {
                    let negated = matches!(op, ast::BinaryOperator::PGRegexNotMatch | ast::BinaryOperator::PGRegexNotIMatch);
                    if let Expr::BinaryOp { left, right, .. } = expr {
                        let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
                        let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                        *expr = Expr::RLike { negated, expr: Box::new(l), regexp: true, pattern: Box::new(r) };
                    }
                } else {
                    return ControlFlow::Break("regular-expression match has no SQLite equivalent without an extension".into());
                }
            }
            Expr::AnyOp { left, compare_op: ast::BinaryOperator::Eq, right, .. } if target != Dialect::Postgres => {
                // PostgreSQL writes IN lists as `x = ANY (ARRAY[...])`.
                let inner = match right.as_ref() {
                    Expr::Nested(e) => e.as_ref(),
                    e => e,
                };
                if let Expr::Array(arr) = inner {
                    let list = arr.elem.clone();
                    let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
                    *expr = Expr::In { expr: Box::new(l), target: ast::InTarget::List(list), negated: false, global: false };
                } else {
                    return ControlFlow::Break("= ANY(...) over a non-literal array".into());
                }
            }
            Expr::Collate { expr: inner, collation } => {
                let c = collation.to_string().trim_matches('"').to_ascii_lowercase();
                let same = self.source == target;
                if !same {
                    let e = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                    *expr = match (c.as_str(), target) {
                        // Case-insensitive comparison: lower() on PostgreSQL;
                        // MySQL's default collations already ignore case.
                        ("nocase", Dialect::Postgres) => call("lower", vec![e]),
                        _ => e,
                    };
                }
            }
            Expr::Identifier(i) if i.quote_style.is_none() && matches!(i.value.to_ascii_uppercase().as_str(), "USER" | "CURRENT_USER" | "SESSION_USER") => {
                match target {
                    Dialect::Postgres => *expr = Expr::Identifier(Ident::new("CURRENT_USER")),
                    Dialect::Mysql => *expr = call("current_user", vec![]),
                    _ => return ControlFlow::Break("SQLite has no notion of the current user".into()),
                }
            }
            Expr::Cast { expr: inner, data_type, .. }
                if target != Dialect::Postgres
                    && matches!(inner.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
                    && matches!(typetext::recognize(self.source, &typetext::parse(&data_type.to_string())), ColumnType::Text { .. } | ColumnType::Varchar { .. } | ColumnType::Char { .. }) =>
            {
                // 'I'::text is just 'I' outside PostgreSQL.
                *expr = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            }
            Expr::Cast { kind, data_type, .. } => {
                let text = data_type.to_string();
                match self.names.cast_type(self.source, &text) {
                    Some(t) => *data_type = DataType::Custom(ObjectName(vec![ObjectNamePart::Identifier(Ident::new(t))]), vec![]),
                    None => return ControlFlow::Break(format!("cast to `{text}` has no equivalent on {target}")),
                }
                // `x::type` is PostgreSQL syntax; others need CAST(x AS type).
                if target != Dialect::Postgres && matches!(kind, CastKind::DoubleColon) {
                    *kind = CastKind::Cast;
                }
            }
            Expr::Identifier(i) => {
                let upper = i.value.to_ascii_uppercase();
                if i.quote_style.is_none() && matches!(upper.as_str(), "SYSDATE" | "SYSTIMESTAMP" | "CURRENT_TIMESTAMP") {
                    *expr = Expr::Identifier(Ident::new("CURRENT_TIMESTAMP"));
                } else if i.quote_style == Some('"') && self.source == Dialect::Mysql {
                    // A double-quoted "identifier" in MySQL is a string.
                    *expr = Expr::value(Value::SingleQuotedString(i.value.clone()));
                } else {
                    self.fix_ident(i);
                }
            }
            Expr::CompoundIdentifier(parts) => {
                for p in parts.iter_mut() {
                    self.fix_ident(p);
                }
            }
            Expr::Function(f)
                if target != Dialect::Mysql
                    && self.source != target
                    && f.name.to_string().eq_ignore_ascii_case("concat") =>
            {
                // MySQL CONCAT() is NULL if any argument is NULL, like `||`.
                let args = function_args(f);
                *expr = Expr::Nested(Box::new(concat_chain(args)));
            }
            Expr::BinaryOp { op: ast::BinaryOperator::Plus, left, right }
                if self.source == Dialect::Mssql && (is_textual_expr(left, self.names) || is_textual_expr(right, self.names)) =>
            {
                let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
                let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                *expr = if target == Dialect::Mysql { call("concat", vec![l, r]) } else { concat_chain(vec![l, r]) };
            }
            Expr::Convert { expr: inner, data_type: Some(dt), target_before_value: true, styles, .. } if styles.is_empty() => {
                let text = dt.to_string();
                let Some(t) = self.names.cast_type(self.source, &text) else {
                    return ControlFlow::Break(format!("CONVERT to `{text}` has no equivalent on {target}"));
                };
                let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(inner),
                    data_type: DataType::Custom(ObjectName(vec![ObjectNamePart::Identifier(Ident::new(t))]), vec![]),
                    format: None,
                };
            }
            Expr::Function(f) => {
                let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default();
                let argc = match &f.args {
                    FunctionArguments::List(l) => l.args.len(),
                    _ => 0,
                };
                match function_for(target, &name, argc) {
                    Some(new) => {
                        if new == "CURRENT_USER" {
                            *expr = Expr::Identifier(Ident::new("CURRENT_USER"));
                        } else if new == "CURRENT_TIMESTAMP" {
                            *expr = Expr::Identifier(Ident::new("CURRENT_TIMESTAMP"));
                        } else if new == "CURRENT_DATE" {
                            *expr = Expr::Identifier(Ident::new("CURRENT_DATE"));
                        } else {
                            f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(new))]);
                        }
                    }
                    None => {
                        // The same engine family keeps its own functions.
                        let same = self.source == target;
                        if !same {
                            return ControlFlow::Break(format!(
                                "function `{}` has no known equivalent on {target}",
                                f.name
                            ));
                        }
                    }
                }
            }
            Expr::BinaryOp { op: ast::BinaryOperator::StringConcat, left, right } if target == Dialect::Mysql => {
                // `||` is OR in MySQL: use CONCAT().
                let l = std::mem::replace(left.as_mut(), Expr::value(Value::Null));
                let r = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                *expr = call("concat", vec![l, r]);
            }
            Expr::Value(v) => {
                if let Value::NationalStringLiteral(s) = &v.value {
                    v.value = Value::SingleQuotedString(s.clone());
                }
                if let Value::DoubleQuotedString(s) = &v.value {
                    v.value = Value::SingleQuotedString(s.clone());
                }
            }
            Expr::TypedString(_) => {}
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Is a type name one the target dialect knows (used for casts)?
pub fn type_known(target: Dialect, ty: &str) -> bool {
    !matches!(typetext::recognize(target, &typetext::parse(ty)), ColumnType::Other { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::parser::Parser;

    fn d(sql: &str, dialect: Dialect) -> DefaultValue {
        let sd = sql_dialect(dialect);
        let e = Parser::new(&*sd).try_with_sql(sql).unwrap().parse_expr().unwrap();
        classify_default(&e, dialect)
    }

    #[test]
    fn globs_become_anchored_regexes() {
        assert_eq!(glob_to_regex("[0-9]*").as_deref(), Some("^[0-9].*$"));
        assert_eq!(glob_to_regex("a?c.txt").as_deref(), Some("^a.c[.]txt$"));
        assert_eq!(glob_to_regex("[^a-z]*").as_deref(), Some("^[^a-z].*$"));
        assert_eq!(glob_to_regex("x^y"), None);
    }

    #[test]
    fn defaults() {
        assert_eq!(d("current_timestamp()", Dialect::Mysql), DefaultValue::CurrentTimestamp { precision: None });
        assert_eq!(d("CURRENT_TIMESTAMP(3)", Dialect::Mysql), DefaultValue::CurrentTimestamp { precision: Some(3) });
        assert_eq!(d("((0))", Dialect::Mssql), DefaultValue::Number("0".into()));
        assert_eq!(d("(getdate())", Dialect::Mssql), DefaultValue::CurrentTimestamp { precision: None });
        assert_eq!(d("(N'abc')", Dialect::Mssql), DefaultValue::String("abc".into()));
        assert_eq!(d("'x'::character varying", Dialect::Postgres), DefaultValue::String("x".into()));
        assert_eq!(
            d("nextval('public.t_id_seq'::regclass)", Dialect::Postgres),
            DefaultValue::Sequence(QualifiedName::new(Some("public"), "t_id_seq"))
        );
        assert_eq!(d("SYSDATE", Dialect::Oracle), DefaultValue::CurrentTimestamp { precision: None });
        assert_eq!(d("(datetime('now'))", Dialect::Sqlite), DefaultValue::CurrentTimestamp { precision: None });
        assert_eq!(d("-1.50", Dialect::Mysql), DefaultValue::Number("-1.50".into()));
        assert!(matches!(d("lower('X')", Dialect::Postgres), DefaultValue::Expression(_)));
        assert_eq!(d("('now'::text)::date", Dialect::Postgres), DefaultValue::CurrentDate);
        assert_eq!(d("'\\xdeadbeef'::bytea", Dialect::Postgres), DefaultValue::Bytes("deadbeef".into()));
        assert_eq!(d("'a\\000\\\\'::bytea", Dialect::Postgres), DefaultValue::Bytes("61005c".into()));
        assert_eq!(d("'{}'::integer[]", Dialect::Postgres), DefaultValue::String("{}".into()));
        assert_eq!(d("_utf8mb4'new'", Dialect::Mysql), DefaultValue::String("new".into()));
        assert_eq!(d("_binary'ab'", Dialect::Mysql), DefaultValue::Bytes("6162".into()));
    }

    #[test]
    fn pg_arrays_as_json() {
        let int = ColumnType::int(32);
        assert_eq!(pg_array_to_json("{}", &int).as_deref(), Some("[]"));
        assert_eq!(pg_array_to_json("{1,2,NULL}", &int).as_deref(), Some("[1,2,null]"));
        assert_eq!(pg_array_to_json("{{1,2},{3,4}}", &int).as_deref(), Some("[[1,2],[3,4]]"));
        assert_eq!(pg_array_to_json("{a,\"b c\",\"d\\\"e\"}", &ColumnType::text()).as_deref(), Some("[\"a\",\"b c\",\"d\\\"e\"]"));
        assert_eq!(pg_array_to_json("{1,2", &int), None);
    }
}
