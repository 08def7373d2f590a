//! Token-level rewrites that make real dump syntax acceptable to sqlparser
//! 0.64 without losing what it says. Anything removed that matters is
//! captured in [`Prepared`] so the reader can put it into the model.
//!
//! Handled here (each one fails in sqlparser 0.64 as written):
//! - MySQL: table options and `PARTITION BY` after the column list,
//!   `VARCHAR(n) BINARY`, `CREATE FULLTEXT|SPATIAL INDEX`.
//! - SQL Server: `CLUSTERED`/`NONCLUSTERED`, `WITH (PAD_INDEX ...)`,
//!   `ON [PRIMARY]`, `TEXTIMAGE_ON`, `ROWGUIDCOL`, `NOT FOR REPLICATION`,
//!   computed columns (`[Total] AS ([Qty]*[Price]) PERSISTED`),
//!   `WITH CHECK|NOCHECK ADD`.
//! - Oracle: `NUMBER(*,0)`, `CHAR(1 BYTE)`, `GENERATED ... ON NULL AS
//!   IDENTITY <sequence options>`, `ENABLE NOVALIDATE`, `USING INDEX ...`,
//!   storage clauses, `DEFAULT ON NULL`.
//! - SQLite: `ON CONFLICT <resolution>` on constraints, `WITHOUT ROWID`.

use sqlparser::tokenizer::{Token, Whitespace};

use super::tokens::{words, Tokens};
use crate::model::{Dialect, IdentityKind, IndexMethod};

/// Options written after a table's column list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableTail {
    pub engine: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    pub comment: Option<String>,
    pub auto_increment: Option<i128>,
    pub partitioning: Option<String>,
    /// PostgreSQL `INHERITS (parent, …)`: name parts of each parent.
    pub inherits: Vec<Vec<String>>,
    pub without_rowid: bool,
    /// Clauses dropped because they only matter to the source engine
    /// (storage, tablespace, filegroup...).
    pub dropped: Vec<String>,
}

/// An identity column whose options were lifted out of Oracle syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftedIdentity {
    pub column: String,
    pub kind: IdentityKind,
    pub start: Option<i128>,
    pub increment: Option<i128>,
}

#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub sql: String,
    /// The rewritten statement as parser-ready tokens (see `Tokens::for_parser`).
    pub tokens: Vec<Token>,
    pub tail: TableTail,
    /// `NOVALIDATE`, `WITH NOCHECK`, `DISABLE`: existing rows unchecked.
    pub not_validated: bool,
    pub index_method: Option<IndexMethod>,
    pub identities: Vec<LiftedIdentity>,
    /// Computed columns written without a type (SQL Server).
    pub untyped_computed: Vec<String>,
    /// Columns declared `BINARY` (MySQL binary collation).
    pub binary_collation: Vec<String>,
    /// Column types sqlparser cannot read, replaced by a stand-in; the
    /// reader uses the original text: (column, type as written).
    pub type_overrides: Vec<(String, String)>,
    /// Generated columns that are virtual in the source (PostgreSQL 18).
    pub virtual_columns: Vec<String>,
    /// What was dropped, for the report.
    pub notes: Vec<String>,
}

/// Words that end a column's type and start its clauses.
pub const COLUMN_CLAUSE_WORDS: &[&str] = &[
    "NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "CHECK", "REFERENCES", "CONSTRAINT", "COLLATE", "GENERATED", "AS",
    "AUTO_INCREMENT", "AUTOINCREMENT", "IDENTITY", "COMMENT", "ON", "CHARACTER", "CHARSET", "KEY", "ENABLE", "DISABLE",
    "INVISIBLE", "VISIBLE", "WITH", "ROWGUIDCOL", "SPARSE", "STORED", "VIRTUAL", "PERSISTED", "ENCODE", "MASKED",
];

/// The placeholder type given to untyped computed columns; the reader
/// infers a real type from the expression.
pub const COMPUTED_PLACEHOLDER: &str = "barge_computed";

pub fn sql_dialect(d: Dialect) -> Box<dyn sqlparser::dialect::Dialect> {
    use sqlparser::dialect::{MsSqlDialect, MySqlDialect, OracleDialect, PostgreSqlDialect, SQLiteDialect};
    match d {
        Dialect::Mysql => Box::new(MySqlDialect {}),
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
        Dialect::Mssql => Box::new(MsSqlDialect {}),
        Dialect::Oracle => Box::new(OracleDialect {}),
    }
}

/// How deeply expressions may nest (a CASE inside a CASE, parentheses).
/// sqlparser's own default of 50 refuses legitimate generated SQL; its
/// `recursive-protection` grows the stack as needed, so the limit only
/// bounds the work hostile input can cause.
pub const MAX_NESTING: usize = 1000;

/// A parser for `d` with barge's nesting limit.
pub fn parser(d: &dyn sqlparser::dialect::Dialect) -> sqlparser::parser::Parser<'_> {
    sqlparser::parser::Parser::new(d).with_recursion_limit(MAX_NESTING)
}

/// Parses a whole text with barge's nesting limit.
pub fn parse_sql(d: &dyn sqlparser::dialect::Dialect, sql: &str) -> Result<Vec<sqlparser::ast::Statement>, sqlparser::parser::ParserError> {
    parser(d).try_with_sql(sql)?.parse_statements()
}

/// Parses one expression with barge's nesting limit.
pub fn parse_expr(d: &dyn sqlparser::dialect::Dialect, sql: &str) -> Result<sqlparser::ast::Expr, sqlparser::parser::ParserError> {
    parser(d).try_with_sql(sql)?.parse_expr()
}

pub fn prepare(dialect: Dialect, sql: &str) -> Prepared {
    let sd = sql_dialect(dialect);
    let Some(mut t) = Tokens::new(&*sd, sql) else {
        // The parser will tokenize (and reject) it itself.
        return Prepared { sql: sql.to_string(), ..Default::default() };
    };
    let mut p = Prepared::default();
    let lead = super::script::leading_words(sql, 4);
    let lead: Vec<&str> = lead.iter().map(String::as_str).collect();
    let is_create_table = lead.first() == Some(&"CREATE")
        && lead.iter().take(4).any(|w| *w == "TABLE")
        && !lead.contains(&"INDEX");
    match lead.as_slice() {
        _ if is_create_table => create_table(dialect, &mut t, &mut p),
        ["CREATE", ..] if lead.contains(&"INDEX") => create_index(dialect, &mut t, &mut p),
        ["ALTER", "TABLE", ..] => alter_table(dialect, &mut t, &mut p),
        _ => {}
    }
    // The text form is only for tests and messages; parsing uses tokens.
    if cfg!(test) {
        p.sql = t.render();
    }
    p.tokens = t.into_parser(dialect == Dialect::Mysql);
    p
}

/// Words that make a column-list item need rewriting, per dialect. A table
/// without any of them (most of a big mysqldump) skips the item pass.
fn item_triggers(d: Dialect) -> &'static [&'static str] {
    match d {
        Dialect::Mysql => &["BINARY", "INVISIBLE", "VISIBLE"],
        // SQLite type names are free text: every column is looked at.
        Dialect::Sqlite => &["*"],
        Dialect::Postgres => &["GENERATED"],
        // SQL Server and Oracle dumps almost always need the pass.
        Dialect::Mssql | Dialect::Oracle => &["*"],
    }
}

fn create_table(d: Dialect, t: &mut Tokens, p: &mut Prepared) {
    let Some(open) = t.toks.iter().position(|x| *x == Token::LParen) else { return };
    // CREATE TABLE x AS SELECT / LIKE: nothing to do.
    if (0..open).any(|i| t.is_word(i, "AS") || t.is_word(i, "LIKE")) {
        return;
    }
    let Some(close) = t.matching_paren(open) else { return };
    // A comma before the closing parenthesis (SQL Server accepts it).
    if let Some(k) = t.prev_sig(close).filter(|&k| k > open && t.is_char(k, &Token::Comma)) {
        t.blank(k, k + 1);
        p.notes.push("trailing comma in the column list dropped".into());
    }
    p.tail = parse_tail(t, close + 1, d);
    t.toks.truncate(close + 1);
    let triggers = item_triggers(d);
    let needed = triggers.contains(&"*") || t.toks[open..].iter().any(|tok| matches!(tok, Token::Word(w) if w.quote_style.is_none() && triggers.iter().any(|k| w.value.eq_ignore_ascii_case(k))));
    if !needed {
        return;
    }

    // Rewrite each item of the column list on its own.
    let mut items: Vec<Vec<Token>> = Vec::new();
    let mut cur = Vec::new();
    let mut depth = 0;
    for tok in t.toks[open + 1..close].iter().cloned() {
        match tok {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(tok);
    }
    items.push(cur);
    let mut out: Vec<Token> = t.toks[..=open].to_vec();
    for (i, item) in items.into_iter().enumerate() {
        let mut it = Tokens { toks: item };
        rewrite_item(d, &mut it, p);
        if i > 0 {
            out.push(Token::Comma);
        }
        out.extend(it.toks);
    }
    out.push(Token::RParen);
    t.toks = out;
}

/// Rewrites one column definition or table constraint.
fn rewrite_item(d: Dialect, t: &mut Tokens, p: &mut Prepared) {
    match d {
        Dialect::Mssql => {
            mssql_common(t, p);
            // `[Total] AS (expr) [PERSISTED]`: give it a placeholder type.
            if let Some(first) = t.next_sig(0) {
                if let Some(second) = t.next_sig(first + 1) {
                    if t.is_word(second, "AS") && !is_constraint_start(t, first) {
                        let name = t.word(first).unwrap_or_default().to_string();
                        p.untyped_computed.push(name);
                        let persisted = (second..t.len()).find(|&i| t.is_word(i, "PERSISTED"));
                        let mode = if persisted.is_some() { "STORED" } else { "VIRTUAL" };
                        if let Some(i) = persisted {
                            t.blank(i, i + 1);
                        }
                        let open = t.next_sig(second + 1);
                        if let Some(open) = open.filter(|&o| t.is_char(o, &Token::LParen)) {
                            if let Some(close) = t.matching_paren(open) {
                                t.replace(close + 1, close + 1, words(&format!(" {mode}")));
                            }
                        }
                        t.replace(second, second + 1, words(&format!("{COMPUTED_PLACEHOLDER} GENERATED ALWAYS AS")));
                    }
                }
            }
        }
        Dialect::Oracle => oracle_item(t, p),
        Dialect::Sqlite => {
            sqlite_free_type(t, p);
            sqlite_not_glob(t);
            // ON CONFLICT <resolution> is SQLite-only conflict handling.
            let mut i = 0;
            while i < t.len() {
                if t.is_word(i, "ON") {
                    if let Some(j) = t.match_words(i + 1, &["CONFLICT"]) {
                        if let Some(k) = t.next_sig(j) {
                            let what = t.word(k).unwrap_or("").to_ascii_uppercase();
                            p.notes.push(format!("ON CONFLICT {what} clause dropped"));
                            t.blank(i, k + 1);
                            continue;
                        }
                    }
                }
                i += 1;
            }
        }
        Dialect::Mysql => {
            // Index visibility is an optimizer hint, not structure.
            let mut i = 1;
            while i < t.len() {
                if t.is_word(i, "INVISIBLE") || t.is_word(i, "VISIBLE") {
                    t.blank(i, i + 1);
                    continue;
                }
                i += 1;
            }
            // `varchar(40) BINARY`: binary collation, written as an
            // attribute sqlparser does not know.
            let mut i = 0;
            while i < t.len() {
                if t.is_word(i, "BINARY") {
                    if let Some(prev) = t.prev_sig(i) {
                        let after_type = t.is_char(prev, &Token::RParen)
                            || matches!(t.word(prev).map(|w| w.to_ascii_uppercase()).as_deref(),
                                Some("CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT"));
                        if after_type && prev > 0 {
                            if let Some(first) = t.next_sig(0) {
                                p.binary_collation.push(t.word(first).unwrap_or_default().to_string());
                            }
                            t.blank(i, i + 1);
                            continue;
                        }
                    }
                }
                i += 1;
            }
        }
        Dialect::Postgres => postgres_virtual_generated(t, p),
    }
}

/// SQLite accepts any sequence of names as a type (`UNSIGNED BIG INT`,
/// `VARYING CHARACTER(255)`, `BLOB SUB_TYPE TEXT`); sqlparser reads one.
/// A type of several words is replaced by a stand-in, and the reader
/// takes the words as written.
fn sqlite_free_type(t: &mut Tokens, p: &mut Prepared) {
    let Some(first) = t.next_sig(0) else { return };
    if is_constraint_start(t, first) {
        return;
    }
    let Some(Token::Word(name)) = t.toks.get(first) else { return };
    let column = name.value.clone();
    let mut nwords = 0;
    let mut end = first + 1;
    let mut k = first + 1;
    while let Some(n) = t.next_sig(k) {
        match &t.toks[n] {
            Token::Word(w) if w.quote_style.is_none() && (!COLUMN_CLAUSE_WORDS.iter().any(|x| w.value.eq_ignore_ascii_case(x)) || is_type_word(t, n)) => {
                nwords += 1;
                end = n + 1;
            }
            Token::LParen if nwords > 0 => {
                end = t.matching_paren(n).map(|c| c + 1).unwrap_or(t.len());
                k = end;
                break;
            }
            _ => break,
        }
        k = end;
    }
    let _ = k;
    if nwords < 2 {
        return;
    }
    let start = t.next_sig(first + 1).unwrap_or(end);
    p.type_overrides.push((column, t.render_range(start, end).trim().to_string()));
    t.replace(start, end, words("TEXT"));
}

/// `CHARACTER` is a type word unless it starts `CHARACTER SET`.
pub fn is_type_word(t: &Tokens, i: usize) -> bool {
    (t.is_word(i, "CHARACTER") || t.is_word(i, "CHAR")) && !t.next_sig(i + 1).is_some_and(|n| t.is_word(n, "SET"))
}

fn is_constraint_start(t: &Tokens, i: usize) -> bool {
    ["CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "EXCLUDE"]
        .iter()
        .any(|w| t.is_word(i, w))
}

/// SQL Server clauses that only describe physical storage.
fn mssql_common(t: &mut Tokens, p: &mut Prepared) {
    let mut i = 0;
    while i < t.len() {
        if ["CLUSTERED", "NONCLUSTERED", "ROWGUIDCOL", "SPARSE", "FILESTREAM"].iter().any(|w| t.is_word(i, w)) {
            t.blank(i, i + 1);
            continue;
        }
        if t.is_word(i, "NOT") {
            if let Some(j) = t.match_words(i + 1, &["FOR", "REPLICATION"]) {
                t.blank(i, j);
                continue;
            }
        }
        if t.is_word(i, "WITH") {
            if let Some(o) = t.next_sig(i + 1) {
                if t.is_char(o, &Token::LParen) {
                    if let Some(c) = t.matching_paren(o) {
                        p.notes.push("index options WITH (...) dropped".into());
                        t.blank(i, c + 1);
                        continue;
                    }
                }
                if t.is_word(o, "CHECK") || t.is_word(o, "NOCHECK") {
                    if t.is_word(o, "NOCHECK") {
                        p.not_validated = true;
                    }
                    t.blank(i, o + 1);
                    continue;
                }
            }
        }
        // `ON [PRIMARY]` (a filegroup) but not ON DELETE/UPDATE or ON table(...).
        if t.is_word(i, "ON") || t.is_word(i, "TEXTIMAGE_ON") || t.is_word(i, "FILESTREAM_ON") {
            if let Some(j) = t.next_sig(i + 1) {
                let is_action = ["DELETE", "UPDATE"].iter().any(|w| t.is_word(j, w));
                let next = t.next_sig(j + 1);
                let followed_by_more =
                    next.is_some_and(|n| t.is_char(n, &Token::Period) || t.is_char(n, &Token::LParen));
                if !is_action && !followed_by_more && matches!(t.toks.get(j), Some(Token::Word(_))) {
                    t.blank(i, j + 1);
                    continue;
                }
            }
        }
        i += 1;
    }
}

const ORACLE_SEQUENCE_WORDS: &[&str] = &[
    "MINVALUE", "MAXVALUE", "NOMINVALUE", "NOMAXVALUE", "INCREMENT", "START", "WITH", "BY", "CACHE", "NOCACHE",
    "ORDER", "NOORDER", "CYCLE", "NOCYCLE", "KEEP", "NOKEEP", "SCALE", "NOSCALE", "EXTEND", "NOEXTEND", "LIMIT",
    "VALUE", "SESSION", "GLOBAL",
];

fn oracle_item(t: &mut Tokens, p: &mut Prepared) {
    // Types sqlparser cannot read: INTERVAL DAY(n) TO SECOND(m),
    // INTERVAL YEAR(n) TO MONTH, TIMESTAMP(n) WITH LOCAL TIME ZONE.
    let column = t.next_sig(0).and_then(|f| t.word(f)).unwrap_or_default().to_string();
    let mut i = 0;
    while i < t.len() {
        let interval = t.is_word(i, "INTERVAL") && t.next_sig(i + 1).is_some_and(|k| t.is_word(k, "DAY") || t.is_word(k, "YEAR"));
        if interval {
            let mut end = i + 1;
            let mut k = i + 1;
            while let Some(n) = t.next_sig(k) {
                let is_part = ["DAY", "YEAR", "TO", "SECOND", "MONTH"].iter().any(|w| t.is_word(n, w));
                if is_part {
                    end = n + 1;
                    k = n + 1;
                } else if t.is_char(n, &Token::LParen) {
                    end = t.matching_paren(n).map(|c| c + 1).unwrap_or(n + 1);
                    k = end;
                } else {
                    break;
                }
            }
            p.type_overrides.push((column.clone(), t.render_range(i, end)));
            t.replace(i, end, words("INTERVAL"));
            i += 1;
            continue;
        }
        if t.is_word(i, "WITH") {
            if let Some(j) = t.match_words(i + 1, &["LOCAL", "TIME", "ZONE"]) {
                let start = (0..i).rev().find(|&k| t.is_word(k, "TIMESTAMP")).unwrap_or(i);
                p.type_overrides.push((column.clone(), t.render_range(start, j)));
                t.replace(i, j, words("WITH TIME ZONE"));
                continue;
            }
        }
        i += 1;
    }
    // Type arguments: NUMBER(*,0) and CHAR(1 BYTE).
    let mut i = 0;
    while i < t.len() {
        if t.is_char(i, &Token::LParen) {
            if let Some(j) = t.next_sig(i + 1) {
                if t.is_char(j, &Token::Mul) {
                    t.replace(j, j + 1, vec![Token::Number("38".into(), false)]);
                }
            }
        }
        if (t.is_word(i, "BYTE") || t.is_word(i, "CHAR"))
            && t.prev_sig(i).is_some_and(|k| matches!(t.toks[k], Token::Number(..)))
            && t.next_sig(i + 1).is_some_and(|k| t.is_char(k, &Token::RParen))
        {
            t.blank(i, i + 1);
            continue;
        }
        i += 1;
    }
    // Constraint state words.
    let mut i = 0;
    while i < t.len() {
        if t.is_word(i, "NOVALIDATE") || t.is_word(i, "DISABLE") {
            p.not_validated = true;
            t.blank(i, i + 1);
            continue;
        }
        if ["ENABLE", "VALIDATE", "RELY", "NORELY", "VISIBLE", "INVISIBLE"].iter().any(|w| t.is_word(i, w)) {
            t.blank(i, i + 1);
            continue;
        }
        if t.is_word(i, "USING") && t.match_words(i + 1, &["INDEX"]).is_some() {
            // USING INDEX <storage clauses>: up to the end of this item.
            let end = t.end_of_item(i);
            t.blank(i, end);
            continue;
        }
        if t.is_word(i, "DEFAULT") {
            if let Some(j) = t.match_words(i + 1, &["ON", "NULL"]) {
                p.notes.push("DEFAULT ON NULL became DEFAULT".into());
                t.replace(i, j, words("DEFAULT"));
                continue;
            }
        }
        i += 1;
    }
    // GENERATED [ALWAYS | BY DEFAULT [ON NULL]] AS IDENTITY <options>
    let Some(g) = (0..t.len()).find(|&i| t.is_word(i, "GENERATED")) else { return };
    let Some(ident_at) = (g..t.len()).find(|&i| t.is_word(i, "IDENTITY")) else { return };
    let kind = if t.match_words(g + 1, &["ALWAYS"]).is_some() { IdentityKind::Always } else { IdentityKind::ByDefault };
    let mut j = ident_at + 1;
    let mut start = None;
    let mut increment = None;
    let mut has_parens = false;
    loop {
        let Some(k) = t.next_sig(j) else { break };
        if t.is_char(k, &Token::LParen) {
            has_parens = true;
            break;
        }
        let Some(w) = t.word(k) else {
            if matches!(t.toks[k], Token::Number(..)) {
                j = k + 1;
                continue;
            }
            break;
        };
        let w = w.to_ascii_uppercase();
        if !ORACLE_SEQUENCE_WORDS.contains(&w.as_str()) {
            break;
        }
        if w == "START" || w == "INCREMENT" {
            if let Some(n) = t.next_sig(k + 1).and_then(|a| t.next_sig(a + 1)) {
                if let Token::Number(v, _) = &t.toks[n] {
                    let v = v.parse().ok();
                    if w == "START" {
                        start = v
                    } else {
                        increment = v
                    }
                }
            }
        }
        j = k + 1;
    }
    if has_parens {
        return;
    }
    let column = t.next_sig(0).and_then(|f| t.word(f)).unwrap_or_default().to_string();
    p.identities.push(LiftedIdentity { column, kind, start, increment });
    let kw = match kind {
        IdentityKind::Always => "GENERATED ALWAYS AS IDENTITY",
        _ => "GENERATED BY DEFAULT AS IDENTITY",
    };
    t.replace(g, j, words(kw));
    t.toks.insert(g + words(kw).len(), Token::Whitespace(Whitespace::Space));
}

/// Reads the table options after the column list, then drops them.
fn parse_tail(t: &Tokens, from: usize, d: Dialect) -> TableTail {
    let mut tail = TableTail::default();
    let mut i = from;
    let value_after = |i: usize| -> Option<(String, usize)> {
        // KEY [=] value
        let mut j = t.next_sig(i + 1)?;
        if t.is_char(j, &Token::Eq) {
            j = t.next_sig(j + 1)?;
        }
        let v = match &t.toks[j] {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) => s.replace("''", "'").replace("\\'", "'"),
            Token::Number(n, _) => n.clone(),
            other => other.to_string(),
        };
        Some((v, j + 1))
    };
    while let Some(k) = t.next_sig(i) {
        let Some(w) = t.word(k).map(|w| w.to_ascii_uppercase()) else {
            i = k + 1;
            continue;
        };
        match w.as_str() {
            "ENGINE" | "TYPE" => {
                if let Some((v, n)) = value_after(k) {
                    tail.engine = Some(v);
                    i = n;
                    continue;
                }
            }
            "CHARSET" => {
                if let Some((v, n)) = value_after(k) {
                    tail.charset = Some(v);
                    i = n;
                    continue;
                }
            }
            "CHARACTER" => {
                if let Some(s) = t.match_words(k + 1, &["SET"]) {
                    if let Some((v, n)) = value_after(s - 1) {
                        tail.charset = Some(v);
                        i = n;
                        continue;
                    }
                }
            }
            "COLLATE" => {
                if let Some((v, n)) = value_after(k) {
                    tail.collation = Some(v);
                    i = n;
                    continue;
                }
            }
            "COMMENT" => {
                if let Some((v, n)) = value_after(k) {
                    tail.comment = Some(v);
                    i = n;
                    continue;
                }
            }
            "AUTO_INCREMENT" => {
                if let Some((v, n)) = value_after(k) {
                    tail.auto_increment = v.parse().ok();
                    i = n;
                    continue;
                }
            }
            "PARTITION" if t.match_words(k + 1, &["BY"]).is_some() => {
                tail.partitioning = Some(t.render_range(k, t.len()).trim().to_string());
                break;
            }
            "INHERITS" => {
                if let Some(o) = t.next_sig(k + 1).filter(|&o| t.is_char(o, &Token::LParen)) {
                    if let Some(c) = t.matching_paren(o) {
                        let mut parts: Vec<String> = Vec::new();
                        for j in o + 1..c {
                            match &t.toks[j] {
                                Token::Word(w) => parts.push(w.value.clone()),
                                Token::Comma => tail.inherits.push(std::mem::take(&mut parts)),
                                _ => {}
                            }
                        }
                        if !parts.is_empty() {
                            tail.inherits.push(parts);
                        }
                        i = c + 1;
                        continue;
                    }
                }
            }
            "WITHOUT" if t.match_words(k + 1, &["ROWID"]).is_some() => {
                tail.without_rowid = true;
                i = t.match_words(k + 1, &["ROWID"]).unwrap_or(k + 1);
                continue;
            }
            _ => {}
        }
        i = k + 1;
    }
    let rest = t.render_range(from, t.len()).trim().to_string();
    if !rest.is_empty() && tail.partitioning.is_none() && d != Dialect::Mysql {
        tail.dropped.push(rest);
    }
    tail
}

fn create_index(d: Dialect, t: &mut Tokens, p: &mut Prepared) {
    // Index kind words between CREATE and INDEX.
    let Some(index_kw) = (0..t.len()).find(|&i| t.is_word(i, "INDEX")) else { return };
    let mut i = 0;
    while i < index_kw.min(t.len()) {
        let method = if t.is_word(i, "FULLTEXT") {
            Some(IndexMethod::Fulltext)
        } else if t.is_word(i, "SPATIAL") {
            Some(IndexMethod::Spatial)
        } else if t.is_word(i, "BITMAP") {
            Some(IndexMethod::Other("bitmap".into()))
        } else {
            None
        };
        if method.is_some() || t.is_word(i, "CLUSTERED") || t.is_word(i, "NONCLUSTERED") {
            if method.is_some() {
                p.index_method = method;
            }
            t.blank(i, i + 1);
            continue;
        }
        i += 1;
    }
    // The key list is the first parenthesis after ON.
    let Some(on) = (0..t.len()).find(|&i| t.is_word(i, "ON")) else { return };
    // pg_dump's `ON ONLY parent` (an index of a partitioned table, its
    // partitions' indexes attached later): the same index for barge.
    if let Some(only) = t.next_sig(on + 1).filter(|&k| t.is_word(k, "ONLY")) {
        t.blank(only, only + 1);
    }
    let Some(open) = (on..t.len()).find(|&i| t.is_char(i, &Token::LParen)) else { return };
    let Some(close) = t.matching_paren(open) else { return };
    // Keep INCLUDE (...) and WHERE ...; drop storage and options.
    let mut kept: Vec<Token> = Vec::new();
    let mut j = close + 1;
    while let Some(k) = t.next_sig(j) {
        if t.is_word(k, "INCLUDE") {
            if let Some(o) = t.next_sig(k + 1).filter(|&o| t.is_char(o, &Token::LParen)) {
                if let Some(c) = t.matching_paren(o) {
                    kept.push(Token::Whitespace(Whitespace::Space));
                    kept.extend_from_slice(&t.toks[k..=c]);
                    j = c + 1;
                    continue;
                }
            }
        }
        if t.is_word(k, "WHERE") {
            // Up to a trailing WITH (...) / ON [fg] / TABLESPACE.
            let mut end = t.len();
            let mut m = k + 1;
            while m < t.len() {
                if t.depth_at(m) == t.depth_at(k)
                    && (t.is_word(m, "TABLESPACE")
                        || (t.is_word(m, "WITH") && t.next_sig(m + 1).is_some_and(|o| t.is_char(o, &Token::LParen)))
                        || (d == Dialect::Mssql && t.is_word(m, "ON")))
                {
                    end = m;
                    break;
                }
                m += 1;
            }
            kept.push(Token::Whitespace(Whitespace::Space));
            kept.extend_from_slice(&t.toks[k..end]);
            j = end;
            continue;
        }
        if t.is_char(k, &Token::LParen) {
            j = t.matching_paren(k).map(|c| c + 1).unwrap_or(t.len());
        } else {
            j = k + 1;
        }
        p.notes.push("index storage options dropped".into());
    }
    t.toks.truncate(close + 1);
    t.toks.extend(kept);
    if d == Dialect::Oracle {
        // Oracle expression keys are fine; nothing else to do.
    }
}

fn alter_table(d: Dialect, t: &mut Tokens, p: &mut Prepared) {
    expand_parenthesized_add(t);
    match d {
        Dialect::Mssql => mssql_common(t, p),
        Dialect::Oracle => oracle_item(t, p),
        _ => {}
    }
}

/// Oracle (and MySQL) write `ADD ( item, item )`; sqlparser reads
/// `ADD item, ADD item`.
fn expand_parenthesized_add(t: &mut Tokens) {
    let Some(add) = (0..t.len()).find(|&i| t.is_word(i, "ADD") && t.depth_at(i) == 0) else { return };
    let Some(open) = t.next_sig(add + 1).filter(|&o| t.is_char(o, &Token::LParen)) else { return };
    let Some(close) = t.matching_paren(open) else { return };
    let mut out: Vec<Token> = Vec::new();
    let mut k = open + 1;
    let mut first = true;
    while k < close {
        let end = t.end_of_item(k).min(close);
        if !t.render_range(k, end).trim().is_empty() {
            if !first {
                out.push(Token::Comma);
                out.push(Token::Whitespace(Whitespace::Space));
                out.extend(words("ADD"));
            }
            out.push(Token::Whitespace(Whitespace::Space));
            out.extend_from_slice(&t.toks[k..end]);
            first = false;
        }
        k = end + 1;
    }
    t.replace(open, close + 1, out);
}

/// PostgreSQL 18 generated columns are virtual unless STORED is written
/// (and may say VIRTUAL); sqlparser knows only STORED. The column is read
/// as stored and recorded as virtual.
fn postgres_virtual_generated(t: &mut Tokens, p: &mut Prepared) {
    let Some(g) = (0..t.len()).find(|&i| t.is_word(i, "GENERATED")) else { return };
    let Some(as_at) = t.match_words(g + 1, &["ALWAYS", "AS"]) else { return };
    let Some(open) = t.next_sig(as_at).filter(|&o| t.is_char(o, &Token::LParen)) else { return };
    let Some(close) = t.matching_paren(open) else { return };
    let column = t.next_sig(0).and_then(|f| t.word(f)).unwrap_or_default().to_string();
    match t.next_sig(close + 1) {
        Some(k) if t.is_word(k, "STORED") => {}
        Some(k) if t.is_word(k, "VIRTUAL") => {
            t.replace(k, k + 1, words("STORED"));
            p.virtual_columns.push(column);
        }
        _ => {
            let mut stored = vec![Token::Whitespace(Whitespace::Space)];
            stored.extend(words("STORED"));
            t.replace(close + 1, close + 1, stored);
            p.virtual_columns.push(column);
        }
    }
}

/// Marks a `NOT GLOB` pattern: sqlparser reads `x GLOB p` but not its
/// negation, so `x NOT GLOB p` is read as `x NOT LIKE <marked p>` and the
/// expression rewriter turns it back into a glob for each target.
pub const GLOB_MARK: &str = "\u{1}glob\u{1}";

fn sqlite_not_glob(t: &mut Tokens) {
    let mut i = 0;
    while i < t.len() {
        if t.is_word(i, "NOT") {
            if let Some(g) = t.next_sig(i + 1).filter(|&g| t.is_word(g, "GLOB")) {
                if let Some(Token::SingleQuotedString(pat)) = t.next_sig(g + 1).and_then(|s| t.toks.get(s)).cloned() {
                    let s = t.next_sig(g + 1).unwrap_or(g);
                    t.toks[s] = Token::SingleQuotedString(format!("{GLOB_MARK}{pat}"));
                    t.replace(g, g + 1, words("LIKE"));
                }
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_parenthesized_add() {
        let p = prepare(Dialect::Oracle, "ALTER TABLE \"T\" ADD ( CONSTRAINT \"PK\" PRIMARY KEY (\"A\", \"B\") USING INDEX TABLESPACE \"USERS\" ENABLE, CONSTRAINT \"U\" UNIQUE (\"C\") )");
        let flat = p.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("ADD CONSTRAINT \"PK\" PRIMARY KEY (\"A\", \"B\")"), "{flat}");
        assert!(flat.contains(", ADD CONSTRAINT \"U\" UNIQUE (\"C\")"), "{flat}");
        assert!(!flat.contains("TABLESPACE"), "{flat}");
    }

    #[test]
    fn postgres_virtual_columns() {
        let p = prepare(Dialect::Postgres, "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL, c int GENERATED ALWAYS AS (a + 1), d int GENERATED ALWAYS AS (a) STORED)");
        assert_eq!(p.virtual_columns, vec!["b", "c"]);
        assert!(!p.sql.contains("VIRTUAL"), "{}", p.sql);
    }

    #[test]
    fn mysql_tail_and_binary() {
        let p = prepare(
            Dialect::Mysql,
            "CREATE TABLE `t` (`a` varchar(40) BINARY NOT NULL, b int) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4 COMMENT='it''s' PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (1))",
        );
        assert!(!p.sql.contains("BINARY") && !p.sql.contains("ENGINE"), "{}", p.sql);
        assert_eq!(p.tail.engine.as_deref(), Some("InnoDB"));
        assert_eq!(p.tail.auto_increment, Some(7));
        assert_eq!(p.tail.comment.as_deref(), Some("it's"));
        assert!(p.tail.partitioning.as_deref().unwrap().starts_with("PARTITION BY RANGE"));
        assert_eq!(p.binary_collation, vec!["a"]);
    }

    #[test]
    fn mssql_storage_words() {
        let p = prepare(
            Dialect::Mssql,
            "CREATE TABLE [dbo].[V]([Id] [int] IDENTITY(1,1) NOT NULL, [G] [uniqueidentifier] ROWGUIDCOL NOT NULL, [Total]  AS ([Qty]*[Price]) PERSISTED, CONSTRAINT [PK_V] PRIMARY KEY CLUSTERED ([Id] ASC)WITH (PAD_INDEX = OFF) ON [PRIMARY]) ON [PRIMARY] TEXTIMAGE_ON [PRIMARY]",
        );
        for gone in ["ROWGUIDCOL", "CLUSTERED", "PAD_INDEX", "PRIMARY]", "PERSISTED"] {
            assert!(!p.sql.contains(gone), "{gone} in {}", p.sql);
        }
        assert!(p.sql.contains("barge_computed GENERATED ALWAYS AS ([Qty]*[Price]) STORED"), "{}", p.sql);
        assert_eq!(p.untyped_computed, vec!["Total"]);
    }

    #[test]
    fn oracle_identity_and_types() {
        let p = prepare(
            Dialect::Oracle,
            "CREATE TABLE \"F\".\"V\" (\"ID\" NUMBER(*,0) GENERATED BY DEFAULT ON NULL AS IDENTITY MINVALUE 1 MAXVALUE 9999 INCREMENT BY 1 START WITH 5 CACHE 20 NOORDER NOCYCLE NOKEEP NOSCALE NOT NULL ENABLE, \"C\" CHAR(1 BYTE), CONSTRAINT \"PK\" PRIMARY KEY (\"ID\") USING INDEX PCTFREE 10 TABLESPACE \"USERS\" ENABLE) SEGMENT CREATION IMMEDIATE TABLESPACE \"USERS\"",
        );
        let flat = p.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("NUMBER(38,0) GENERATED BY DEFAULT AS IDENTITY NOT NULL"), "{flat}");
        assert!(flat.contains("CHAR(1 )"), "{flat}");
        assert!(!p.sql.contains("TABLESPACE") && !p.sql.contains("ENABLE"), "{}", p.sql);
        assert_eq!(p.identities[0].start, Some(5));
        assert_eq!(p.identities[0].column, "ID");
    }

    #[test]
    fn index_tails() {
        let p = prepare(
            Dialect::Mssql,
            "CREATE UNIQUE NONCLUSTERED INDEX [IX] ON [dbo].[X] ([A] ASC) INCLUDE ([B]) WHERE ([Active]=(1)) WITH (PAD_INDEX = OFF) ON [PRIMARY]",
        );
        assert_eq!(p.sql.split_whitespace().collect::<Vec<_>>().join(" "), "CREATE UNIQUE INDEX [IX] ON [dbo].[X] ([A] ASC) INCLUDE ([B]) WHERE ([Active]=(1))");
        let p = prepare(Dialect::Mysql, "CREATE FULLTEXT INDEX ft ON t (a, b)");
        assert_eq!(p.index_method, Some(IndexMethod::Fulltext));
    }

    #[test]
    fn sqlite_on_conflict() {
        let p = prepare(Dialect::Sqlite, "CREATE TABLE t (a TEXT NOT NULL ON CONFLICT REPLACE, UNIQUE (a) ON CONFLICT IGNORE) WITHOUT ROWID");
        assert!(!p.sql.contains("CONFLICT"), "{}", p.sql);
        assert!(p.tail.without_rowid);
    }
}
