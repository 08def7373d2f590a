//! `--sql` text → a plan: sqlparser reads the SELECT (PostgreSQL syntax),
//! and each expression is resolved against the input table's columns
//! and typed, so the output table (names, types, key) is known before
//! the first record.

use sqlparser::ast::{self, BinaryOperator, Expr as A, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, SelectItem, SetExpr, Statement, TableFactor, UnaryOperator};

use super::expr::{bigint, kind_of, numeric, text_type, BinOp, Expr, Func, Kind};
use super::window::{Agg, AggSpec, WindowPlan};
use crate::model::value::Interval;
use crate::model::{Column, ColumnType, Key, QualifiedName, Table, Value};

/// What `--sql` does to each row of its input table.
#[derive(Debug, Clone)]
pub struct SqlPlan {
    pub sql: String,
    /// The table read (`FROM`).
    pub input: QualifiedName,
    /// The table written: named by the FROM alias, else the input's name.
    pub output: Table,
    /// `WHERE`, on the input row.
    pub filter: Option<Expr>,
    pub shape: Shape,
}

#[derive(Debug, Clone)]
pub enum Shape {
    /// One output row per input row that passes: an expression per output column.
    Rows { columns: Vec<Expr>, output_names: Vec<String> },
    /// Windowed aggregates.
    Windows(WindowPlan),
}

/// A type as the error messages and docs spell it.
pub fn type_name(t: &ColumnType) -> String {
    use ColumnType as T;
    match t {
        T::Int { bits: 16, .. } => "smallint".into(),
        T::Int { bits: 32, .. } => "integer".into(),
        T::Int { .. } => "bigint".into(),
        T::Decimal { precision: Some(p), scale } => format!("numeric({p},{})", scale.unwrap_or(0)),
        T::Decimal { .. } => "numeric".into(),
        T::Float32 => "real".into(),
        T::Float64 => "double precision".into(),
        T::Bool => "boolean".into(),
        T::Varchar { length: Some(n), .. } => format!("varchar({n})"),
        T::Char { length: Some(n), .. } => format!("char({n})"),
        T::Char { .. } | T::Varchar { .. } | T::Text { .. } => "text".into(),
        T::Date => "date".into(),
        T::Timestamp { tz: true, .. } => "timestamptz".into(),
        T::Timestamp { .. } => "timestamp".into(),
        T::Time { .. } => "time".into(),
        T::Interval { .. } => "interval".into(),
        T::Json => "json".into(),
        T::Jsonb => "jsonb".into(),
        T::Uuid => "uuid".into(),
        T::Binary { .. } | T::Varbinary { .. } | T::Blob { .. } => "bytea".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub type PlanResult<T> = std::result::Result<T, String>;

impl SqlPlan {
    /// Plans `sql` over `input`; `from_names` are the names FROM may use
    /// for it (besides the table's own).
    pub fn new(sql: &str, input: &Table, from_names: &[&str]) -> PlanResult<SqlPlan> {
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        let mut statements = sqlparser::parser::Parser::parse_sql(&dialect, sql).map_err(|e| format!("does not parse: {e}"))?;
        if statements.len() != 1 {
            return Err("give one SELECT statement".into());
        }
        let Statement::Query(q) = statements.remove(0) else { return Err("only a SELECT is allowed".into()) };
        if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
            return Err("WITH, ORDER BY, LIMIT and FETCH have no meaning on a stream; remove them".into());
        }
        let SetExpr::Select(select) = *q.body else { return Err("only a plain SELECT … FROM … [WHERE …] [GROUP BY …] is allowed (no UNION or VALUES)".into()) };
        if select.distinct.is_some() || select.having.is_some() || select.qualify.is_some() {
            return Err("DISTINCT, HAVING and QUALIFY are not supported in --sql".into());
        }
        let out_name = from_clause(&select.from, input, from_names)?;
        let cols = Columns { table: input };
        let filter = match &select.selection {
            Some(w) => {
                let (e, t) = cols.compile(w)?;
                if !matches!(kind_of(&t), Kind::Bool) {
                    return Err(format!("WHERE {w}: a condition is expected, this is a {}", type_name(&t)));
                }
                Some(e)
            }
            None => None,
        };
        let group: Vec<A> = match &select.group_by {
            GroupByExpr::Expressions(e, m) if m.is_empty() => e.clone(),
            GroupByExpr::Expressions(..) | GroupByExpr::All(_) => return Err("GROUP BY takes expressions and one TUMBLE(…) or HOP(…)".into()),
        };
        let mut output = Table::new(QualifiedName { schema: input.name.schema.clone(), name: out_name });
        let shape = if group.is_empty() {
            let mut columns = Vec::new();
            let mut names = Vec::new();
            for item in &select.projection {
                match item {
                    SelectItem::Wildcard(_) => {
                        for (i, c) in input.columns.iter().enumerate() {
                            columns.push(Expr::Column(i));
                            let mut oc = c.clone();
                            oc.default = None;
                            oc.identity = None;
                            oc.generated = None;
                            output.columns.push(oc);
                            names.push(c.name.clone());
                        }
                    }
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        if contains_aggregate(e) {
                            return Err(format!("{e}: an aggregate needs GROUP BY with TUMBLE(…) or HOP(…) (a stream has no end to aggregate up to)"));
                        }
                        let (ce, ty) = cols.compile(e)?;
                        let name = match item {
                            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                            _ => default_name(e).ok_or_else(|| format!("{e}: name this column (… AS name)"))?,
                        };
                        let nullable = match &ce {
                            Expr::Column(i) => input.columns[*i].nullable,
                            _ => true,
                        };
                        let mut c = Column::new(&name, ty.clone(), &type_name(&ty));
                        c.nullable = nullable;
                        output.columns.push(c);
                        columns.push(ce);
                        names.push(name);
                    }
                    other => return Err(format!("{other}: not supported in --sql")),
                }
            }
            // The input's key, where every key column is selected as it is,
            // is the output's: updates and deletes find their rows by it.
            if let Some(pk) = &input.primary_key {
                let mut key = Vec::new();
                for k in &pk.columns {
                    let Some(i) = input.columns.iter().position(|c| c.name.eq_ignore_ascii_case(k)) else { break };
                    if let Some(o) = columns.iter().position(|e| matches!(e, Expr::Column(j) if *j == i)) {
                        key.push(output.columns[o].name.clone());
                    }
                }
                if key.len() == pk.columns.len() {
                    for k in &key {
                        if let Some(c) = output.column_mut(k) {
                            c.nullable = false;
                        }
                    }
                    output.primary_key = Some(Key { name: None, columns: key });
                }
            }
            Shape::Rows { columns, output_names: names }
        } else {
            let (w, out_cols) = plan_windows(&cols, &select.projection, &group)?;
            output.columns = out_cols;
            Shape::Windows(w)
        };
        let mut seen = std::collections::HashSet::new();
        for c in &output.columns {
            if !seen.insert(c.name.to_ascii_lowercase()) {
                return Err(format!("two output columns are named {}: rename one with AS", c.name));
            }
        }
        Ok(SqlPlan { sql: sql.to_string(), input: input.name.clone(), output, filter, shape })
    }

    pub fn windows(&self) -> Option<&WindowPlan> {
        match &self.shape {
            Shape::Windows(w) => Some(w),
            Shape::Rows { .. } => None,
        }
    }
}

/// The output table's name from `FROM name [AS alias]`.
fn from_clause(from: &[ast::TableWithJoins], input: &Table, names: &[&str]) -> PlanResult<String> {
    let [only] = from else { return Err("FROM names one table (the records, or the source table)".into()) };
    if !only.joins.is_empty() {
        return Err("joins are not supported in --sql".into());
    }
    let TableFactor::Table { name, alias, .. } = &only.relation else { return Err("FROM names one table (the records, or the source table)".into()) };
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
    let last = parts.last().cloned().unwrap_or_default();
    let matches = last.eq_ignore_ascii_case(&input.name.name)
        && match (parts.len(), &input.name.schema) {
            (1, _) => true,
            (2, Some(s)) => parts[0].eq_ignore_ascii_case(s),
            _ => false,
        };
    if !matches && !(parts.len() == 1 && names.iter().any(|n| n.eq_ignore_ascii_case(&last))) {
        let mut allowed: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        allowed.push(input.name.to_string());
        return Err(format!("FROM {name}: this run reads {}; write FROM {}", input.name, allowed.join(" or FROM ")));
    }
    Ok(match alias {
        Some(a) => a.name.value.clone(),
        None => input.name.name.clone(),
    })
}

/// The name PostgreSQL would give an unnamed output column, where that
/// name is a usable column name.
fn default_name(e: &A) -> Option<String> {
    match e {
        A::Identifier(i) => Some(i.value.clone()),
        A::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()),
        A::Nested(e) | A::Cast { expr: e, .. } => default_name(e),
        A::BinaryOp { op: BinaryOperator::Arrow | BinaryOperator::LongArrow, right, .. } => match right.as_ref() {
            A::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        },
        A::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()),
        A::Extract { field, .. } => Some(field.to_string().to_lowercase()),
        A::Substring { .. } => Some("substring".into()),
        A::Trim { .. } => Some("btrim".into()),
        _ => None,
    }
}

fn func_name(f: &ast::Function) -> String {
    f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()).unwrap_or_default()
}

fn contains_aggregate(e: &A) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x: &A| {
        if let A::Function(f) = x {
            if Agg::named(&func_name(f)).is_some() {
                found = true;
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

fn args(f: &ast::Function) -> PlanResult<Vec<&A>> {
    match &f.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(format!("{}: argument {other} is not supported", f.name)),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(format!("{}: subqueries are not supported", f.name)),
    }
}

/// Resolves names against the input table's columns.
pub struct Columns<'a> {
    pub table: &'a Table,
}

/// Resolves one expression: to an input column, or (in a windowed query's
/// SELECT) to a group key, a window bound or an aggregate.
trait Scope {
    fn column(&self, name: &str) -> PlanResult<(Expr, ColumnType)>;
    /// A whole subexpression the scope knows (a GROUP BY key, an aggregate).
    fn known(&self, _e: &A) -> PlanResult<Option<(Expr, ColumnType)>> {
        Ok(None)
    }
}

impl Scope for Columns<'_> {
    fn column(&self, name: &str) -> PlanResult<(Expr, ColumnType)> {
        let i = self.table.columns.iter().position(|c| c.name == name).or_else(|| self.table.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)));
        match i {
            Some(i) => Ok((Expr::Column(i), self.table.columns[i].ty.clone())),
            None => Err(format!("no column {name} in {} (columns: {})", self.table.name, self.table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))),
        }
    }
}

impl Columns<'_> {
    pub fn compile(&self, e: &A) -> PlanResult<(Expr, ColumnType)> {
        compile(self, e)
    }
}

fn is_string_literal(e: &A) -> Option<&str> {
    match e {
        A::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) | ast::Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => Some(s),
            _ => None,
        },
        A::Nested(e) => is_string_literal(e),
        _ => None,
    }
}

/// A string literal next to a typed value takes that type (PostgreSQL's
/// "unknown" literals): `ts > '2026-01-01'` compares timestamps.
fn coerce_literal(e: Expr, t: ColumnType, lit: Option<&str>, other: &ColumnType) -> PlanResult<(Expr, ColumnType)> {
    let Some(s) = lit else { return Ok((e, t)) };
    if matches!(kind_of(other), Kind::Text | Kind::Json | Kind::Null) {
        return Ok((e, t));
    }
    let v = super::expr::cast(Value::Text(s.to_string()), other).map_err(|why| format!("'{s}': {why}"))?;
    Ok((Expr::Literal(v), other.clone()))
}

fn numeric_result(a: &ColumnType, b: &ColumnType) -> Option<ColumnType> {
    match (kind_of(a), kind_of(b)) {
        (Kind::Int, Kind::Int) => Some(bigint()),
        (Kind::Float, Kind::Int | Kind::Dec | Kind::Float) | (Kind::Int | Kind::Dec, Kind::Float) => Some(ColumnType::Float64),
        (Kind::Int | Kind::Dec, Kind::Int | Kind::Dec) => Some(numeric()),
        _ => None,
    }
}

fn comparable(a: Kind, b: Kind) -> bool {
    let num = |k| matches!(k, Kind::Int | Kind::Dec | Kind::Float);
    let time = |k| matches!(k, Kind::Date | Kind::Timestamp | Kind::TimestampTz);
    a == b || a == Kind::Null || b == Kind::Null || (num(a) && num(b)) || (time(a) && time(b))
}

fn null_type() -> ColumnType {
    ColumnType::Other { name: "unknown".into() }
}

fn compile(s: &dyn Scope, e: &A) -> PlanResult<(Expr, ColumnType)> {
    if let Some(k) = s.known(e)? {
        return Ok(k);
    }
    let c = |x: &A| compile(s, x);
    Ok(match e {
        A::Identifier(i) => s.column(&i.value)?,
        A::CompoundIdentifier(parts) => s.column(&parts.last().map(|i| i.value.clone()).unwrap_or_default())?,
        A::Nested(x) => c(x)?,
        A::Value(v) => literal(&v.value)?,
        A::TypedString(t) => {
            let ty = parse_type(&t.data_type.to_string())?;
            let text = match &t.value.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                other => other.to_string(),
            };
            let v = super::expr::cast(Value::Text(text), &ty)?;
            (Expr::Literal(v), ty)
        }
        A::Interval(i) => (Expr::Literal(Value::Interval(interval_literal(i)?)), ColumnType::Interval { fields: None, precision: None }),
        A::UnaryOp { op, expr } => {
            let (x, t) = c(expr)?;
            match op {
                UnaryOperator::Not => (Expr::Not(Box::new(x)), ColumnType::Bool),
                UnaryOperator::Minus => (Expr::Neg(Box::new(x)), t),
                UnaryOperator::Plus => (x, t),
                other => return Err(format!("operator {other} is not supported")),
            }
        }
        A::BinaryOp { left, op, right } => {
            let (l, lt) = c(left)?;
            let (r, rt) = c(right)?;
            match op {
                BinaryOperator::Arrow | BinaryOperator::LongArrow => {
                    if !matches!(kind_of(&lt), Kind::Json | Kind::Text) {
                        return Err(format!("{e}: -> and ->> read JSON; {left} is {}", type_name(&lt)));
                    }
                    let text = *op == BinaryOperator::LongArrow;
                    (Expr::JsonGet { base: Box::new(l), key: Box::new(r), text }, if text { text_type() } else { ColumnType::Jsonb })
                }
                BinaryOperator::And | BinaryOperator::Or => {
                    for (side, t) in [(left, &lt), (right, &rt)] {
                        if !matches!(kind_of(t), Kind::Bool | Kind::Null) && !is_null_type(t) {
                            return Err(format!("{side}: AND and OR take conditions, this is {}", type_name(t)));
                        }
                    }
                    (Expr::Binary(if *op == BinaryOperator::And { BinOp::And } else { BinOp::Or }, Box::new(l), Box::new(r)), ColumnType::Bool)
                }
                BinaryOperator::StringConcat => (Expr::Binary(BinOp::Concat, Box::new(l), Box::new(r)), text_type()),
                BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq => {
                    let (l, lt2) = coerce_literal(l, lt.clone(), is_string_literal(left), &rt)?;
                    let (r, rt2) = coerce_literal(r, rt.clone(), is_string_literal(right), &lt)?;
                    if !comparable(kind_of_or_null(&lt2), kind_of_or_null(&rt2)) {
                        return Err(format!("{e}: cannot compare {} with {}; cast one side (x::type)", type_name(&lt2), type_name(&rt2)));
                    }
                    let bop = match op {
                        BinaryOperator::Eq => BinOp::Eq,
                        BinaryOperator::NotEq => BinOp::Ne,
                        BinaryOperator::Lt => BinOp::Lt,
                        BinaryOperator::LtEq => BinOp::Le,
                        BinaryOperator::Gt => BinOp::Gt,
                        _ => BinOp::Ge,
                    };
                    (Expr::Binary(bop, Box::new(l), Box::new(r)), ColumnType::Bool)
                }
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Divide | BinaryOperator::Modulo => {
                    let bop = match op {
                        BinaryOperator::Plus => BinOp::Add,
                        BinaryOperator::Minus => BinOp::Sub,
                        BinaryOperator::Multiply => BinOp::Mul,
                        BinaryOperator::Divide => BinOp::Div,
                        _ => BinOp::Mod,
                    };
                    let t = arith_type(bop, &lt, &rt).ok_or_else(|| format!("{e}: {} {op} {} is not defined; cast the text first, e.g. (data->>'qty')::numeric", type_name(&lt), type_name(&rt)))?;
                    (Expr::Binary(bop, Box::new(l), Box::new(r)), t)
                }
                other => return Err(format!("operator {other} is not supported in --sql")),
            }
        }
        A::IsNull(x) => (Expr::IsNull(Box::new(c(x)?.0), false), ColumnType::Bool),
        A::IsNotNull(x) => (Expr::IsNull(Box::new(c(x)?.0), true), ColumnType::Bool),
        A::IsTrue(x) => (Expr::IsBool(Box::new(c(x)?.0), true, false), ColumnType::Bool),
        A::IsNotTrue(x) => (Expr::IsBool(Box::new(c(x)?.0), true, true), ColumnType::Bool),
        A::IsFalse(x) => (Expr::IsBool(Box::new(c(x)?.0), false, false), ColumnType::Bool),
        A::IsNotFalse(x) => (Expr::IsBool(Box::new(c(x)?.0), false, true), ColumnType::Bool),
        A::Between { expr, negated, low, high } => {
            let (x, xt) = c(expr)?;
            let (lo, _) = coerce_literal(c(low)?.0, null_type(), is_string_literal(low), &xt)?;
            let (hi, _) = coerce_literal(c(high)?.0, null_type(), is_string_literal(high), &xt)?;
            let both = Expr::Binary(BinOp::And, Box::new(Expr::Binary(BinOp::Ge, Box::new(x.clone()), Box::new(lo))), Box::new(Expr::Binary(BinOp::Le, Box::new(x), Box::new(hi))));
            (if *negated { Expr::Not(Box::new(both)) } else { both }, ColumnType::Bool)
        }
        A::In { expr, target: ast::InTarget::List(list), negated, .. } => {
            let (x, xt) = c(expr)?;
            let mut items = Vec::new();
            for i in list {
                let (ie, it) = c(i)?;
                items.push(coerce_literal(ie, it, is_string_literal(i), &xt)?.0);
            }
            (Expr::InList { expr: Box::new(x), list: items, negated: *negated }, ColumnType::Bool)
        }
        A::Like { negated, expr, pattern, escape_char: None, any: false } => (Expr::Like { expr: Box::new(c(expr)?.0), pattern: Box::new(c(pattern)?.0), negated: *negated, insensitive: false }, ColumnType::Bool),
        A::ILike { negated, expr, pattern, escape_char: None, any: false } => (Expr::Like { expr: Box::new(c(expr)?.0), pattern: Box::new(c(pattern)?.0), negated: *negated, insensitive: true }, ColumnType::Bool),
        A::Case { operand, conditions, else_result, .. } => {
            let operand = match operand {
                Some(o) => Some(c(o)?),
                None => None,
            };
            let mut whens = Vec::new();
            let mut ty: Option<ColumnType> = None;
            let mut unify = |t: ColumnType| -> PlanResult<()> {
                if is_null_type(&t) {
                    return Ok(());
                }
                ty = Some(match ty.take() {
                    None => t,
                    Some(prev) if kind_of(&prev) == kind_of(&t) => prev,
                    Some(prev) => numeric_result(&prev, &t).ok_or_else(|| format!("{e}: its results are {} and {}; cast them to one type", type_name(&prev), type_name(&t)))?,
                });
                Ok(())
            };
            for w in conditions {
                let (cond, ct) = c(&w.condition)?;
                let cond = match &operand {
                    Some((_, ot)) => coerce_literal(cond, ct, is_string_literal(&w.condition), ot)?.0,
                    None => cond,
                };
                let (then, tt) = c(&w.result)?;
                unify(tt)?;
                whens.push((cond, then));
            }
            let otherwise = match else_result {
                Some(x) => {
                    let (x, xt) = c(x)?;
                    unify(xt)?;
                    Some(Box::new(x))
                }
                None => None,
            };
            let ty = ty.unwrap_or_else(text_type);
            // Mixed numeric results take the wider type.
            let whens = whens.into_iter().map(|(w, t)| (w, Expr::Cast(Box::new(t), ty.clone()))).collect();
            let otherwise = otherwise.map(|o| Box::new(Expr::Cast(o, ty.clone())));
            (Expr::Case { operand: operand.map(|(o, _)| Box::new(o)), whens, otherwise }, ty)
        }
        A::Cast { expr, data_type, format: None, .. } => {
            let ty = parse_type(&data_type.to_string())?;
            let (x, _) = c(expr)?;
            (Expr::Cast(Box::new(x), ty.clone()), ty)
        }
        A::Substring { expr, substring_from, substring_for, .. } => {
            let mut a = vec![c(expr)?.0, match substring_from {
                Some(f) => c(f)?.0,
                None => Expr::Literal(Value::Int(1)),
            }];
            if let Some(n) = substring_for {
                a.push(c(n)?.0);
            }
            (Expr::Func(Func::Substring, a), text_type())
        }
        A::Trim { expr, trim_where, trim_what, trim_characters } => {
            let side = match trim_where {
                Some(ast::TrimWhereField::Leading) => 1,
                Some(ast::TrimWhereField::Trailing) => 2,
                _ => 0,
            };
            let mut a = vec![c(expr)?.0];
            if let Some(w) = trim_what {
                a.push(c(w)?.0);
            } else if let Some(chars) = trim_characters.as_ref().and_then(|v| v.first()) {
                a.push(c(chars)?.0);
            }
            (Expr::Func(Func::Trim(side), a), text_type())
        }
        A::Extract { field, expr, .. } => {
            let (x, xt) = c(expr)?;
            if !matches!(kind_of(&xt), Kind::Date | Kind::Timestamp | Kind::TimestampTz | Kind::Interval) {
                return Err(format!("{e}: extract reads a date, timestamp or interval, not {}", type_name(&xt)));
            }
            let name = match field {
                ast::DateTimeField::Custom(i) => i.value.to_lowercase(),
                other => other.to_string().to_lowercase(),
            };
            (Expr::Func(Func::Extract, vec![Expr::Literal(Value::Text(name)), x]), numeric())
        }
        A::Function(f) => function(s, f)?,
        other => return Err(format!("{other}: not supported in --sql (see `barge migrate --help`, --sql)")),
    })
}

fn is_null_type(t: &ColumnType) -> bool {
    matches!(t, ColumnType::Other { name } if name == "unknown")
}

fn kind_of_or_null(t: &ColumnType) -> Kind {
    if is_null_type(t) {
        Kind::Null
    } else {
        kind_of(t)
    }
}

fn arith_type(op: BinOp, a: &ColumnType, b: &ColumnType) -> Option<ColumnType> {
    if is_null_type(a) {
        return Some(b.clone());
    }
    if is_null_type(b) {
        return Some(a.clone());
    }
    let (ka, kb) = (kind_of(a), kind_of(b));
    let add_sub = matches!(op, BinOp::Add | BinOp::Sub);
    match (ka, kb) {
        (Kind::Timestamp | Kind::TimestampTz, Kind::Interval) if add_sub => Some(a.clone()),
        (Kind::Interval, Kind::Timestamp | Kind::TimestampTz) if op == BinOp::Add => Some(b.clone()),
        (Kind::Date, Kind::Int) if add_sub => Some(ColumnType::Date),
        (Kind::Date, Kind::Interval) if add_sub => Some(ColumnType::Timestamp { precision: Some(6), tz: false }),
        (Kind::Timestamp, Kind::Timestamp) | (Kind::TimestampTz, Kind::TimestampTz) if op == BinOp::Sub => Some(ColumnType::Interval { fields: None, precision: None }),
        (Kind::Date, Kind::Date) if op == BinOp::Sub => Some(bigint()),
        (Kind::Interval, Kind::Interval) if add_sub => Some(a.clone()),
        _ => numeric_result(a, b),
    }
}

fn literal(v: &ast::Value) -> PlanResult<(Expr, ColumnType)> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => (Expr::Literal(Value::Int(i)), bigint()),
            Err(_) => {
                let d = super::decimal::Dec::parse(n).ok_or_else(|| format!("{n}: not a number"))?;
                (Expr::Literal(Value::Decimal(d.to_string())), numeric())
            }
        },
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => (Expr::Literal(Value::Text(s.clone())), text_type()),
        ast::Value::DollarQuotedString(d) => (Expr::Literal(Value::Text(d.value.clone())), text_type()),
        ast::Value::Boolean(b) => (Expr::Literal(Value::Bool(*b)), ColumnType::Bool),
        ast::Value::Null => (Expr::Literal(Value::Null), null_type()),
        other => return Err(format!("{other}: literal not supported")),
    })
}

/// A type as written in CAST / `::`, read the way a PostgreSQL column
/// type is.
pub fn parse_type(text: &str) -> PlanResult<ColumnType> {
    let spec = crate::schema::typetext::parse(text);
    match crate::schema::typetext::recognize(crate::model::Dialect::Postgres, &spec) {
        ColumnType::Other { name } => Err(format!("CAST to {name}: not a type --sql knows (use numeric, integer, bigint, text, varchar(n), boolean, date, timestamp, timestamptz, interval, jsonb, uuid, double precision)")),
        t => Ok(t),
    }
}

/// `INTERVAL '1' MINUTE`, `INTERVAL '90 seconds'`, `INTERVAL '1 hour 30 minutes'`.
pub fn interval_literal(i: &ast::Interval) -> PlanResult<Interval> {
    let text = match i.value.as_ref() {
        A::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            other => return Err(format!("INTERVAL {other}: write INTERVAL '5' MINUTE or INTERVAL '5 minutes'")),
        },
        other => return Err(format!("INTERVAL {other}: write INTERVAL '5' MINUTE or INTERVAL '5 minutes'")),
    };
    let text = match &i.leading_field {
        Some(f) => format!("{text} {}", f.to_string().to_lowercase()),
        None => text,
    };
    parse_duration_words(&text).ok_or_else(|| format!("INTERVAL '{text}': write e.g. INTERVAL '5' MINUTE or INTERVAL '1 hour 30 minutes'"))
}

/// `1 hour 30 minutes`, `90s`, `5 min`, `2 days`: an interval.
pub fn parse_duration_words(text: &str) -> Option<Interval> {
    let mut out = Interval::default();
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(rest.len());
        let (n, tail) = rest.split_at(num_end);
        let tail = tail.trim_start();
        let unit_end = tail.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        rest = tail.trim_start();
        let n = super::decimal::Dec::parse(n)?;
        let us = |per: i64| -> Option<i64> { n.mul(&super::decimal::Dec::from_i64(per)).to_i64() };
        match unit.to_ascii_lowercase().as_str() {
            "us" | "microsecond" | "microseconds" => out.micros += us(1)?,
            "ms" | "millisecond" | "milliseconds" => out.micros += us(1_000)?,
            "" | "s" | "sec" | "secs" | "second" | "seconds" => out.micros += us(1_000_000)?,
            "m" | "min" | "mins" | "minute" | "minutes" => out.micros += us(60_000_000)?,
            "h" | "hour" | "hours" => out.micros += us(3_600_000_000)?,
            "d" | "day" | "days" => out.days += i32::try_from(n.to_i64()?).ok()?,
            "week" | "weeks" => out.days += i32::try_from(n.to_i64()? * 7).ok()?,
            "mon" | "month" | "months" => out.months += i32::try_from(n.to_i64()?).ok()?,
            "year" | "years" => out.months += i32::try_from(n.to_i64()? * 12).ok()?,
            _ => return None,
        }
    }
    Some(out)
}

fn function(s: &dyn Scope, f: &ast::Function) -> PlanResult<(Expr, ColumnType)> {
    let name = func_name(f);
    if f.over.is_some() || f.filter.is_some() {
        return Err(format!("{f}: OVER and FILTER are not supported; windows are GROUP BY TUMBLE(…) or HOP(…)"));
    }
    let a = args(f)?;
    let compiled = a.iter().map(|x| compile(s, x)).collect::<PlanResult<Vec<_>>>()?;
    let want = |n: std::ops::RangeInclusive<usize>| -> PlanResult<()> {
        if n.contains(&a.len()) {
            Ok(())
        } else {
            Err(format!("{f}: {name} takes {} argument(s)", if n.start() == n.end() { n.start().to_string() } else { format!("{} to {}", n.start(), n.end()) }))
        }
    };
    let exprs = || compiled.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>();
    let first_type = || compiled.first().map(|(_, t)| t.clone()).unwrap_or_else(text_type);
    Ok(match name.as_str() {
        "lower" | "upper" => {
            want(1..=1)?;
            (Expr::Func(if name == "lower" { Func::Lower } else { Func::Upper }, exprs()), text_type())
        }
        "length" | "char_length" | "character_length" => {
            want(1..=1)?;
            (Expr::Func(Func::Length, exprs()), bigint())
        }
        "substr" | "substring" => {
            want(2..=3)?;
            (Expr::Func(Func::Substring, exprs()), text_type())
        }
        "concat" => (Expr::Func(Func::ConcatFn, exprs()), text_type()),
        "trim" | "btrim" | "ltrim" | "rtrim" => {
            want(1..=2)?;
            let side = match name.as_str() {
                "ltrim" => 1,
                "rtrim" => 2,
                _ => 0,
            };
            (Expr::Func(Func::Trim(side), exprs()), text_type())
        }
        "replace" => {
            want(3..=3)?;
            (Expr::Func(Func::Replace, exprs()), text_type())
        }
        "coalesce" => {
            let t = compiled.iter().map(|(_, t)| t.clone()).find(|t| !is_null_type(t)).unwrap_or_else(text_type);
            (Expr::Func(Func::Coalesce, compiled.into_iter().map(|(e, _)| Expr::Cast(Box::new(e), t.clone())).collect()), t)
        }
        "nullif" => {
            want(2..=2)?;
            (Expr::Func(Func::NullIf, exprs()), first_type())
        }
        "abs" => {
            want(1..=1)?;
            (Expr::Func(Func::Abs, exprs()), first_type())
        }
        "round" => {
            want(1..=2)?;
            let t = if kind_of(&first_type()) == Kind::Float && a.len() == 1 { ColumnType::Float64 } else { numeric() };
            (Expr::Func(Func::Round, exprs()), t)
        }
        "date_trunc" => {
            want(2..=2)?;
            let t = match kind_of(&compiled[1].1) {
                Kind::Date => ColumnType::Timestamp { precision: Some(6), tz: false },
                Kind::Timestamp | Kind::TimestampTz => compiled[1].1.clone(),
                _ => return Err(format!("{f}: date_trunc takes a timestamp, not {}", type_name(&compiled[1].1))),
            };
            (Expr::Func(Func::DateTrunc, exprs()), t)
        }
        "date_part" => {
            want(2..=2)?;
            (Expr::Func(Func::Extract, exprs()), numeric())
        }
        "tumble" | "hop" => return Err(format!("{f}: {name}(…) goes in GROUP BY; select window_start and window_end for its bounds")),
        other if Agg::named(other).is_some() => return Err(format!("{f}: an aggregate needs GROUP BY with TUMBLE(…) or HOP(…)")),
        other => return Err(format!("{f}: function {other} is not supported in --sql (lower, upper, substring, concat, trim, length, replace, coalesce, nullif, abs, round, date_trunc, extract; count, sum, avg, min, max with windows)")),
    })
}

/// The SELECT of a windowed query: group keys, window bounds and aggregates.
struct WindowScope<'a> {
    input: &'a Columns<'a>,
    keys: &'a [(A, ColumnType)],
    bound_type: ColumnType,
    aggs: std::cell::RefCell<Vec<AggSpec>>,
}

impl Scope for WindowScope<'_> {
    fn column(&self, name: &str) -> PlanResult<(Expr, ColumnType)> {
        let n = self.keys.len();
        match name.to_ascii_lowercase().as_str() {
            "window_start" => Ok((Expr::Column(n), self.bound_type.clone())),
            "window_end" => Ok((Expr::Column(n + 1), self.bound_type.clone())),
            _ => Err(format!("column {name} must appear in GROUP BY or be used in an aggregate (count, sum, avg, min, max); window_start and window_end name the window")),
        }
    }

    fn known(&self, e: &A) -> PlanResult<Option<(Expr, ColumnType)>> {
        if let Some(i) = self.keys.iter().position(|(k, _)| strip(k) == strip(e)) {
            return Ok(Some((Expr::Column(i), self.keys[i].1.clone())));
        }
        let A::Function(f) = e else { return Ok(None) };
        let Some(agg) = Agg::named(&func_name(f)) else { return Ok(None) };
        let star = matches!(&f.args, FunctionArguments::List(l) if matches!(l.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]));
        let (arg, arg_type) = if star {
            if agg != Agg::Count {
                return Err(format!("{f}: only count takes *"));
            }
            (None, bigint())
        } else {
            let a = args(f)?;
            let [x] = a.as_slice() else { return Err(format!("{f}: takes one argument")) };
            if contains_aggregate(x) {
                return Err(format!("{f}: aggregates cannot be nested"));
            }
            let (x, t) = self.input.compile(x)?;
            (Some(x), t)
        };
        if matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment.is_some()) {
            return Err(format!("{f}: DISTINCT in aggregates is not supported"));
        }
        let spec = AggSpec::new(agg, arg, &arg_type).map_err(|why| format!("{f}: {why}"))?;
        let ty = spec.output_type.clone();
        let mut aggs = self.aggs.borrow_mut();
        aggs.push(spec);
        Ok(Some((Expr::Column(self.keys.len() + 2 + aggs.len() - 1), ty)))
    }
}

/// An expression without the parentheses around it, to match a SELECT
/// item against a GROUP BY key.
fn strip(e: &A) -> &A {
    match e {
        A::Nested(x) => strip(x),
        x => x,
    }
}

fn plan_windows(cols: &Columns, projection: &[SelectItem], group: &[A]) -> PlanResult<(WindowPlan, Vec<Column>)> {
    let mut window: Option<(Expr, ColumnType, i64, i64)> = None;
    let mut keys: Vec<(A, ColumnType)> = Vec::new();
    let mut key_exprs = Vec::new();
    for g in group {
        if let A::Function(f) = strip(g) {
            let name = func_name(f);
            if name == "tumble" || name == "hop" {
                if window.is_some() {
                    return Err("GROUP BY takes one TUMBLE(…) or HOP(…)".into());
                }
                let a = args(f)?;
                let want = if name == "tumble" { 2 } else { 3 };
                if a.len() != want {
                    return Err(format!("{f}: write TUMBLE(event_time, INTERVAL '1' MINUTE) or HOP(event_time, INTERVAL slide, INTERVAL size)"));
                }
                let (time, tt) = cols.compile(a[0])?;
                if !matches!(kind_of(&tt), Kind::Timestamp | Kind::TimestampTz | Kind::Date) {
                    return Err(format!("{f}: the event time {} is {}; cast it, e.g. ({})::timestamptz", a[0], type_name(&tt), a[0]));
                }
                let dur = |x: &A| -> PlanResult<i64> {
                    let A::Interval(i) = x else { return Err(format!("{f}: {x} must be an INTERVAL literal")) };
                    let iv = interval_literal(i)?;
                    if iv.months != 0 {
                        return Err(format!("{f}: window lengths are fixed: use days, hours, minutes or seconds, not months"));
                    }
                    let us = i64::from(iv.days) * 86_400_000_000 + iv.micros;
                    if us <= 0 {
                        return Err(format!("{f}: {x} is not a positive length"));
                    }
                    Ok(us)
                };
                let (slide, size) = if name == "tumble" {
                    let s = dur(a[1])?;
                    (s, s)
                } else {
                    (dur(a[1])?, dur(a[2])?)
                };
                if size % slide != 0 {
                    return Err(format!("{f}: the window size must be a whole number of slides"));
                }
                let bound = if kind_of(&tt) == Kind::TimestampTz { super::expr::timestamptz() } else { ColumnType::Timestamp { precision: Some(6), tz: false } };
                window = Some((time, bound, slide, size));
                continue;
            }
        }
        let (e, t) = cols.compile(g)?;
        keys.push((strip(g).clone(), t));
        key_exprs.push(e);
    }
    let Some((time, bound_type, slide, size)) = window else {
        return Err("GROUP BY on a stream needs a window: add TUMBLE(event_time, INTERVAL '1' MINUTE) or HOP(event_time, INTERVAL slide, INTERVAL size)".into());
    };
    let scope = WindowScope { input: cols, keys: &keys, bound_type: bound_type.clone(), aggs: Default::default() };
    let mut outputs = Vec::new();
    let mut columns = Vec::new();
    for item in projection {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            other => return Err(format!("{other}: a windowed SELECT lists group keys, window_start, window_end and aggregates")),
        };
        let (ce, ty) = compile(&scope, e)?;
        let name = match alias.or_else(|| default_name(e)) {
            Some(n) => n,
            None => return Err(format!("{e}: name this column (… AS name)")),
        };
        let mut c = Column::new(&name, ty.clone(), &type_name(&ty));
        c.nullable = !matches!(ce, Expr::Column(i) if i == keys.len() || i == keys.len() + 1);
        columns.push(c);
        outputs.push(ce);
    }
    let aggs = scope.aggs.into_inner();
    Ok((WindowPlan { time, slide_us: slide, size_us: size, tz: kind_of(&bound_type) == Kind::TimestampTz, keys: key_exprs, aggs, outputs }, columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Table {
        let mut t = Table::new(QualifiedName::bare("orders"));
        let mut id = Column::new("id", bigint(), "bigint");
        id.nullable = false;
        t.columns = vec![id, Column::new("amount", ColumnType::Decimal { precision: Some(10), scale: Some(2) }, "numeric(10,2)"), Column::new("data", ColumnType::Jsonb, "jsonb"), Column::new("at", super::super::expr::timestamptz(), "timestamptz")];
        t.primary_key = Some(Key { name: None, columns: vec!["id".into()] });
        t
    }

    #[test]
    fn projections_declare_their_types_and_keep_the_key() {
        let p = SqlPlan::new("SELECT id, amount * 2 AS doubled, data->>'city' AS city, (data->>'n')::int AS n FROM records AS out WHERE amount > 10", &input(), &["records"]).unwrap();
        assert_eq!(p.output.name.name, "out");
        let types: Vec<String> = p.output.columns.iter().map(|c| format!("{} {}", c.name, type_name(&c.ty))).collect();
        assert_eq!(types, ["id bigint", "doubled numeric", "city text", "n integer"]);
        assert_eq!(p.output.primary_key.as_ref().unwrap().columns, ["id"]);
    }

    #[test]
    fn mistakes_are_named_before_any_record() {
        let err = |sql: &str| SqlPlan::new(sql, &input(), &["records"]).unwrap_err();
        assert!(err("SELECT nope FROM records").contains("no column nope"));
        assert!(err("SELECT data->>'n' + 1 AS x FROM records").contains("cast the text"));
        assert!(err("SELECT id FROM other").contains("FROM records"));
        assert!(err("SELECT count(*) FROM records").contains("TUMBLE"));
        assert!(err("SELECT id, count(*) FROM records GROUP BY id").contains("needs a window"));
        assert!(err("SELECT amount, count(*) AS n FROM records GROUP BY id, TUMBLE(at, INTERVAL '1' MINUTE)").contains("GROUP BY"));
        assert!(err("SELECT id + 1 FROM records").contains("AS name"));
    }

    #[test]
    fn windows_plan_keys_bounds_and_aggregates() {
        let p = SqlPlan::new("SELECT data->>'k' AS k, window_start, window_end, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM records GROUP BY data->>'k', HOP(at, INTERVAL '30' SECOND, INTERVAL '1 minute')", &input(), &["records"]).unwrap();
        let w = p.windows().unwrap();
        assert_eq!((w.slide_us, w.size_us), (30_000_000, 60_000_000));
        assert_eq!(w.aggs.len(), 3);
        let types: Vec<String> = p.output.columns.iter().map(|c| type_name(&c.ty)).collect();
        assert_eq!(types, ["text", "timestamptz", "timestamptz", "bigint", "numeric", "numeric"]);
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration_words("1 hour 30 minutes").unwrap().micros, 5_400_000_000);
        assert_eq!(parse_duration_words("90s").unwrap().micros, 90_000_000);
        assert!(parse_duration_words("soon").is_none());
    }
}
