//! Splits a DDL script into statements the way each dialect's own client
//! would: `;` everywhere, `DELIMITER` blocks (mysql), `GO` batches (SSMS),
//! `/` after PL/SQL blocks (SQL*Plus), psql backslash lines and `COPY`
//! data, and SQLite trigger bodies. It never fails: whatever it cannot make
//! sense of still comes out as a statement for the parser to reject.

use crate::model::Dialect;

/// One statement of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement with comments blanked out and MySQL conditional
    /// comments (`/*!40101 ... */`) unwrapped: what the parser sees.
    pub text: String,
    /// The original text, comments included, for routines kept verbatim.
    pub raw: String,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// Why the splitter could not read the statement whole (an
    /// unterminated string, say): it is reported, never converted.
    pub problem: Option<String>,
    /// Set for text after an unterminated `/*` (the line it opened on):
    /// the client would read it as a comment, so it is only counted.
    pub hidden_by: Option<usize>,
}

impl Statement {
    pub fn new(text: String, raw: String, line: usize) -> Self {
        Statement { text, raw, line, problem: None, hidden_by: None }
    }
}

/// A script split into statements, with what the splitter noticed.
#[derive(Debug, Default)]
pub struct Split {
    pub statements: Vec<Statement>,
    /// Client commands that are not SQL (SQL*Plus `SET ECHO OFF`, psql
    /// `\connect`, mysql `source`, sqlite3 `.mode`), skipped and counted.
    pub client_commands: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Ends at the current delimiter.
    Plain,
    /// A SQLite trigger: `;` ends it only right after `END`.
    SqliteTrigger,
    /// PL/SQL: ends only at a `/` line.
    PlSql,
    /// T-SQL module (procedure, function, trigger, view): ends only at `GO`.
    TsqlModule,
}

pub fn split(input: &str, dialect: Dialect) -> Vec<Statement> {
    split_script(input, dialect).statements
}

pub fn split_script(input: &str, dialect: Dialect) -> Split {
    Splitter::new(input, dialect).run()
}

struct Splitter<'a> {
    src: &'a str,
    dialect: Dialect,
    pos: usize,
    line: usize,
    delimiter: String,
    out: Vec<Statement>,
    text: String,
    raw_start: Option<usize>,
    start_line: usize,
    block: Option<Block>,
    /// Inside `/*! ... */`: its closing `*/` must be dropped.
    in_conditional: bool,
    /// A `COPY ... FROM stdin` statement just ended: skip its data lines.
    copy_data_pending: bool,
    client_commands: usize,
    /// Why the statement being read cannot be read whole.
    problem: Option<String>,
    /// After an unterminated `/*`: the line it opened on.
    hidden_by: Option<usize>,
    /// The last byte offset of each quote character seen so far: an opener
    /// at or after it cannot be closed.
    unclosed_from: Vec<(char, usize)>,
}

impl<'a> Splitter<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
        // A UTF-8 byte-order mark is not part of the first statement.
        let pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Splitter {
            src,
            dialect,
            pos,
            line: 1,
            delimiter: ";".into(),
            out: Vec::new(),
            text: String::new(),
            raw_start: None,
            start_line: 1,
            block: None,
            in_conditional: false,
            copy_data_pending: false,
            client_commands: 0,
            problem: None,
            hidden_by: None,
            unclosed_from: Vec::new(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.src[..self.pos].ends_with('\n')
    }

    /// The current line, without its newline.
    fn current_line(&self) -> &'a str {
        let rest = self.rest();
        rest.split('\n').next().unwrap_or("").trim_end_matches('\r')
    }

    fn skip_line(&mut self) {
        match self.rest().find('\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.src.len(),
        }
    }

    fn statement_is_empty(&self) -> bool {
        self.raw_start.is_none()
    }

    fn push_char(&mut self, c: char) {
        if self.raw_start.is_none() && !c.is_whitespace() {
            self.raw_start = Some(self.pos);
            self.start_line = self.line;
        }
        if self.raw_start.is_some() {
            self.text.push(c);
        }
    }

    fn advance(&mut self, n: usize) {
        for c in self.src[self.pos..self.pos + n].chars() {
            if c == '\n' {
                self.line += 1;
            }
        }
        self.pos += n;
    }

    /// Copies `n` bytes of the source into the statement text verbatim.
    fn take(&mut self, n: usize) {
        let chunk = &self.src[self.pos..self.pos + n];
        for c in chunk.chars() {
            self.push_char(c);
            if c == '\n' {
                self.line += 1;
            }
            self.pos += c.len_utf8();
        }
    }

    fn finish_statement(&mut self, raw_end: usize) {
        if let Some(start) = self.raw_start.take() {
            let text = std::mem::take(&mut self.text).trim().to_string();
            let raw = self.src[start..raw_end].trim().to_string();
            if !text.is_empty() {
                if self.dialect == Dialect::Postgres && is_copy_from_stdin(&text) {
                    self.copy_data_pending = true;
                }
                self.out.push(Statement { text, raw, line: self.start_line, problem: self.problem.take(), hidden_by: self.hidden_by });
            }
        }
        self.problem = None;
        self.text.clear();
        self.block = None;
    }

    fn run(mut self) -> Split {
        while self.pos < self.src.len() {
            if self.at_line_start() && self.line_directive() {
                continue;
            }
            let rest = self.rest();
            let c = rest.chars().next().unwrap();

            if self.at_delimiter() {
                let end = self.pos;
                let n = self.delimiter.len();
                self.advance(n);
                self.finish_statement(end);
                continue;
            }

            match c {
                '-' if rest.starts_with("--") => self.skip_line_comment(),
                '#' if self.dialect == Dialect::Mysql => self.skip_line_comment(),
                '/' if rest.starts_with("/*") => self.block_comment(),
                '*' if self.in_conditional && rest.starts_with("*/") => {
                    self.in_conditional = false;
                    self.advance(2);
                    self.push_char(' ');
                }
                '\'' => self.quoted('\'', self.backslash_escapes()),
                '"' => self.quoted('"', self.dialect == Dialect::Mysql),
                '`' => self.quoted('`', false),
                '[' if matches!(self.dialect, Dialect::Mssql | Dialect::Sqlite) => self.quoted_until(']'),
                '$' if self.dialect == Dialect::Postgres => self.dollar_quoted(),
                'E' | 'e' if self.dialect == Dialect::Postgres && rest[1..].starts_with('\'') => {
                    self.take(1);
                    self.quoted('\'', true)
                }
                _ => self.take(c.len_utf8()),
            }
        }
        let end = self.src.len();
        if self.in_conditional && self.problem.is_none() {
            self.problem = Some("a MySQL conditional comment /*! ... is never closed".into());
        }
        self.finish_statement(end);
        Split { statements: self.out, client_commands: self.client_commands }
    }

    fn backslash_escapes(&self) -> bool {
        self.dialect == Dialect::Mysql
    }

    /// Handles whole-line client directives. Returns true if it consumed
    /// the line.
    fn line_directive(&mut self) -> bool {
        let line = self.current_line();
        let trimmed = line.trim();
        if self.copy_data_pending {
            // COPY data runs until a line holding only `\.`.
            if trimmed == "\\." {
                self.copy_data_pending = false;
            }
            self.skip_line();
            return true;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let second = trimmed.split_whitespace().nth(1).unwrap_or("").to_ascii_uppercase();
        match self.dialect {
            Dialect::Mysql if self.statement_is_empty() => {
                if first == "DELIMITER" {
                    if let Some(d) = trimmed.split_whitespace().nth(1) {
                        self.delimiter = d.to_string();
                    }
                    self.skip_line();
                    return true;
                }
                // mysql client commands end at the end of the line, with or
                // without a delimiter (`source f.sql`, `\. f.sql`, `use db`).
                let client = trimmed.starts_with('\\')
                    || matches!(first.as_str(), "SOURCE" | "CHARSET" | "CONNECT" | "REHASH" | "WARNINGS" | "NOWARNING" | "TEE" | "NOTEE" | "PAGER" | "NOPAGER" | "SYSTEM" | "PROMPT" | "EXIT" | "QUIT" | "EGO")
                    || (first == "USE" && !trimmed.contains('('));
                if client {
                    self.client_commands += 1;
                    self.skip_line();
                    return true;
                }
            }
            Dialect::Mssql => {
                let mut words = trimmed.split_whitespace();
                let is_go = words.next().is_some_and(|w| w.eq_ignore_ascii_case("go"))
                    && words.next().is_none_or(|n| n.chars().all(|c| c.is_ascii_digit()))
                    && words.next().is_none();
                if is_go {
                    let end = self.pos;
                    self.skip_line();
                    self.finish_statement(end);
                    return true;
                }
                // sqlcmd commands (`:setvar`, `:on error exit`).
                if self.statement_is_empty() && trimmed.starts_with(':') {
                    self.client_commands += 1;
                    self.skip_line();
                    return true;
                }
            }
            Dialect::Oracle => {
                if trimmed == "/" {
                    let end = self.pos;
                    self.skip_line();
                    self.finish_statement(end);
                    return true;
                }
                // SQL*Plus commands are not SQL and need no semicolon: left
                // in, they would swallow the statement that follows.
                if self.statement_is_empty() && (is_sqlplus_command(&first, &second) || trimmed.starts_with('@')) {
                    self.client_commands += 1;
                    self.skip_line();
                    return true;
                }
            }
            Dialect::Postgres if self.statement_is_empty() && trimmed.starts_with('\\') => {
                // psql meta-command (\connect, \restrict, \set ...).
                self.client_commands += 1;
                self.skip_line();
                return true;
            }
            Dialect::Sqlite if self.statement_is_empty() && trimmed.starts_with('.') => {
                // sqlite3 dot-command.
                self.client_commands += 1;
                self.skip_line();
                return true;
            }
            _ => {}
        }
        false
    }

    fn classify_block(&self) -> Block {
        let words = leading_words(&self.text, 6);
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let create_kind = |w: &[&str]| -> Option<String> {
            let mut i = 0;
            if w.first() != Some(&"CREATE") {
                return None;
            }
            i += 1;
            if w.get(i) == Some(&"OR") {
                i += 2; // OR REPLACE / OR ALTER
            }
            while matches!(w.get(i), Some(&"EDITIONABLE") | Some(&"NONEDITIONABLE") | Some(&"TEMP") | Some(&"TEMPORARY")) {
                i += 1;
            }
            w.get(i).map(|s| s.to_string())
        };
        match self.dialect {
            Dialect::Oracle => {
                let plsql = matches!(w.first(), Some(&"DECLARE") | Some(&"BEGIN"))
                    || matches!(
                        create_kind(&w).as_deref(),
                        Some("PROCEDURE" | "FUNCTION" | "PACKAGE" | "TRIGGER" | "TYPE" | "LIBRARY" | "JAVA")
                    );
                if plsql {
                    Block::PlSql
                } else {
                    Block::Plain
                }
            }
            Dialect::Mssql => {
                let module = matches!(w.first(), Some(&"CREATE") | Some(&"ALTER"))
                    && matches!(
                        create_kind(&w).or_else(|| w.get(1).map(|s| s.to_string())).as_deref(),
                        Some("PROC" | "PROCEDURE" | "FUNCTION" | "TRIGGER" | "VIEW")
                    );
                if module {
                    Block::TsqlModule
                } else {
                    Block::Plain
                }
            }
            Dialect::Sqlite if create_kind(&w).as_deref() == Some("TRIGGER") => Block::SqliteTrigger,
            _ => Block::Plain,
        }
    }

    fn at_delimiter(&mut self) -> bool {
        if self.in_conditional {
            return false;
        }
        if !self.rest().starts_with(self.delimiter.as_str()) {
            return false;
        }
        // Decided at the first delimiter, when the leading words are known.
        let block = match self.block {
            Some(b) => b,
            None => self.classify_block(),
        };
        self.block = Some(block);
        match block {
            Block::Plain => true,
            Block::PlSql | Block::TsqlModule => false,
            Block::SqliteTrigger => last_word(&self.text).eq_ignore_ascii_case("end"),
        }
    }

    fn skip_line_comment(&mut self) {
        // Keep the newline: it separates tokens.
        match self.rest().find('\n') {
            Some(i) => self.pos += i,
            None => self.pos = self.src.len(),
        }
        if !self.statement_is_empty() {
            self.text.push(' ');
        }
    }

    fn block_comment(&mut self) {
        let rest = self.rest();
        if self.dialect == Dialect::Mysql && (rest.starts_with("/*!") || rest.starts_with("/*M!")) {
            // Executable comment: its body is SQL, unless it is MariaDB's
            // client-only sandbox marker.
            let skip = if rest.starts_with("/*M!") { 4 } else { 3 };
            let digits = rest[skip..].chars().take_while(|c| c.is_ascii_digit()).count();
            let body = &rest[skip + digits..];
            if body.trim_start().starts_with("\\-") {
                self.skip_block_comment();
                return;
            }
            self.advance(skip + digits);
            self.in_conditional = true;
            return;
        }
        self.skip_block_comment();
    }

    fn skip_block_comment(&mut self) {
        let rest = self.rest();
        match rest[2..].find("*/") {
            Some(i) => self.advance(i + 4),
            None => {
                // Unterminated: the client would read the rest of the file
                // as a comment. The statement before it stands; what follows
                // is only split, so the reader can count what it hides.
                let opened = self.line;
                let end = self.pos;
                self.finish_statement(end);
                if self.hidden_by.is_none() {
                    self.hidden_by = Some(opened);
                }
                self.skip_line();
                return;
            }
        }
        if !self.statement_is_empty() {
            self.text.push(' ');
        }
    }

    /// The closing quote was never found: the statement is cut before the
    /// opening quote and marked, and reading resumes on the next line, so
    /// one stray quote does not swallow the rest of the file.
    fn unterminated(&mut self, what: &str, quote: char, start_pos: usize, start_line: usize, text_len: usize) {
        let _ = quote;
        self.pos = start_pos;
        self.line = start_line;
        self.text.truncate(text_len);
        if self.raw_start.is_none() {
            self.raw_start = Some(start_pos);
            self.start_line = start_line;
        }
        self.problem = Some(format!("unterminated {what} starting at line {start_line}"));
        self.finish_statement(start_pos);
        self.skip_line();
    }

    /// True when no `quote` follows the opener at all, so it cannot be
    /// closed: answered without scanning to the end once per opener.
    fn known_unclosed(&mut self, quote: char) -> bool {
        let last = match self.unclosed_from.iter().find(|(q, _)| *q == quote) {
            Some(&(_, last)) => last,
            None => {
                let last = self.src.rfind(quote).unwrap_or(0);
                self.unclosed_from.push((quote, last));
                last
            }
        };
        self.pos >= last
    }

    /// A string or quoted identifier closed by `q`, where a doubled `q`
    /// escapes it (and a backslash does too, where the dialect says so).
    fn quoted(&mut self, q: char, backslash: bool) {
        let (start_pos, start_line, text_len) = (self.pos, self.line, self.text.len());
        let what = if q == '\'' { "string" } else { "quoted name" };
        if self.known_unclosed(q) {
            return self.unterminated(what, q, start_pos, start_line, text_len);
        }
        self.take(1);
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return self.unterminated(what, q, start_pos, start_line, text_len);
            };
            if backslash && c == '\\' {
                let n = 1 + rest[1..].chars().next().map(char::len_utf8).unwrap_or(0);
                self.take(n);
                continue;
            }
            if c == q {
                if rest[1..].starts_with(q) {
                    self.take(2);
                    continue;
                }
                self.take(1);
                return;
            }
            self.take(c.len_utf8());
        }
    }

    fn quoted_until(&mut self, close: char) {
        let (start_pos, start_line, text_len) = (self.pos, self.line, self.text.len());
        if self.known_unclosed(close) {
            return self.unterminated("bracketed name", close, start_pos, start_line, text_len);
        }
        self.take(1);
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return self.unterminated("bracketed name", close, start_pos, start_line, text_len);
            };
            if c == close {
                if rest[1..].starts_with(close) {
                    self.take(2);
                    continue;
                }
                self.take(1);
                return;
            }
            self.take(c.len_utf8());
        }
    }

    fn dollar_quoted(&mut self) {
        let rest = self.rest();
        // $tag$ where tag is empty or an identifier.
        let tag_len = rest[1..].find('$').filter(|&i| {
            rest[1..1 + i].chars().all(|c| c.is_alphanumeric() || c == '_')
                && !rest[1..].starts_with(|c: char| c.is_ascii_digit())
        });
        let Some(tag_len) = tag_len else {
            self.take(1);
            return;
        };
        let tag = &rest[..tag_len + 2];
        match rest[tag.len()..].find(tag) {
            Some(i) => self.take(tag.len() + i + tag.len()),
            None => {
                let (start_pos, start_line, text_len) = (self.pos, self.line, self.text.len());
                self.unterminated("dollar-quoted string", '$', start_pos, start_line, text_len);
            }
        }
    }
}

/// SQL*Plus (and SQLcl) commands, which end at the end of their line.
/// `SET` is one unless it is SQL's `SET TRANSACTION` / `SET ROLE` /
/// `SET CONSTRAINT(S)`.
fn is_sqlplus_command(first: &str, second: &str) -> bool {
    match first {
        "SET" => !matches!(second, "TRANSACTION" | "ROLE" | "CONSTRAINT" | "CONSTRAINTS"),
        "REM" | "REMARK" | "PROMPT" | "SPOOL" | "WHENEVER" | "SHOW" | "SHO" | "COLUMN" | "COL" | "TTITLE" | "BTITLE"
        | "REPHEADER" | "REPFOOTER" | "BREAK" | "COMPUTE" | "CLEAR" | "DEFINE" | "DEF" | "UNDEFINE" | "CONNECT" | "CONN"
        | "DISCONNECT" | "EXIT" | "QUIT" | "PAUSE" | "HOST" | "ACCEPT" | "VARIABLE" | "VAR" | "PRINT" | "TIMING"
        | "DESCRIBE" | "DESC" | "STORE" | "ARCHIVE" | "ATTRIBUTE" | "PASSWORD" | "STARTUP" | "SHUTDOWN" | "EXEC"
        | "EXECUTE" | "START" | "@" | "@@" => true,
        _ => false,
    }
}

fn is_copy_from_stdin(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.starts_with("COPY ") && upper.contains("FROM STDIN")
}

/// The first `n` bare words of a statement, upper-cased, skipping quoted
/// identifiers' quotes. Used to recognise what a statement is.
pub fn leading_words(text: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == '$' || c == '#' {
            cur.push(c.to_ascii_uppercase());
        } else if c == '@' {
            // DEFINER=`x`@`y` is one token for our purposes.
            continue;
        } else {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
                if words.len() == n {
                    return words;
                }
            }
            if c == '(' {
                // Words inside parentheses are not leading words.
                break;
            }
        }
    }
    if !cur.is_empty() && words.len() < n {
        words.push(cur);
    }
    words
}

fn last_word(text: &str) -> &str {
    let t = text.trim_end();
    let start = t.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map(|i| i + 1).unwrap_or(0);
    &t[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str, d: Dialect) -> Vec<String> {
        split(s, d).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn mysql_conditional_comments_and_delimiter() {
        let s = "/*!40101 SET NAMES utf8 */;\n-- c\nCREATE TABLE t (a int) /*!50100 PARTITION BY HASH (a) */;\nDELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END ;;\nDELIMITER ;\nSELECT 1;";
        let v = texts(s, Dialect::Mysql);
        assert_eq!(v.len(), 4, "{v:#?}");
        assert_eq!(v[0], "SET NAMES utf8");
        assert!(v[1].contains("PARTITION BY HASH (a)") && !v[1].contains("*/"));
        assert!(v[2].starts_with("CREATE TRIGGER") && v[2].contains("SET NEW.a = 1; END"));
        assert_eq!(v[3], "SELECT 1");
    }

    #[test]
    fn mysql_strings_hide_delimiters() {
        let v = texts("INSERT INTO t VALUES ('a;b', 'it\\'s;'); SELECT \"x;\";", Dialect::Mysql);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn mssql_go_batches_and_modules() {
        let s = "SET ANSI_NULLS ON\nGO\nCREATE PROCEDURE p AS BEGIN SELECT 1; SELECT 2; END\nGO\n/****** Object ******/\nCREATE TABLE [a;b] (x int)\ngo\n";
        let v = split(s, Dialect::Mssql);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(v[1].text.contains("SELECT 2; END"));
        assert_eq!(v[2].text, "CREATE TABLE [a;b] (x int)");
        assert_eq!(v[2].line, 6);
    }

    #[test]
    fn oracle_slash_ends_plsql() {
        let s = "CREATE TABLE t (a NUMBER);\nCREATE OR REPLACE PROCEDURE p IS BEGIN NULL; END;\n/\nALTER TRIGGER x ENABLE;\n";
        let v = texts(s, Dialect::Oracle);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(v[1].ends_with("END;"));
    }

    #[test]
    fn postgres_copy_data_and_meta_commands() {
        let s = "\\connect db\nCOPY t (a) FROM stdin;\n1\n2;3\n\\.\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT 'x';";
        let v = texts(s, Dialect::Postgres);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(v[1].contains("SELECT 1; $$"));
    }

    #[test]
    fn sqlite_trigger_body() {
        let s = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; DELETE FROM u; END;\nCREATE TABLE x(a);";
        let v = texts(s, Dialect::Sqlite);
        assert_eq!(v.len(), 2, "{v:#?}");
    }

    #[test]
    fn line_numbers_point_at_first_token() {
        let v = split("\n\n-- hi\n  CREATE TABLE a (x int);\n\nCREATE TABLE b (y int);", Dialect::Postgres);
        assert_eq!(v[0].line, 4);
        assert_eq!(v[1].line, 6);
    }

    #[test]
    fn sqlplus_commands_without_semicolons_are_not_sql() {
        let s = "SET ECHO OFF\nSET DEFINE OFF\nPROMPT creating\nCREATE TABLE t (a NUMBER);\nSET TRANSACTION READ ONLY;\n";
        let out = split_script(s, Dialect::Oracle);
        let v: Vec<&str> = out.statements.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(v, vec!["CREATE TABLE t (a NUMBER)", "SET TRANSACTION READ ONLY"]);
        assert_eq!(out.client_commands, 3);
    }

    #[test]
    fn an_unterminated_string_costs_one_statement() {
        let s = "CREATE TABLE a (x int);\nCREATE TABLE b (y text DEFAULT 'oops);\nCREATE TABLE c (z int);\n";
        let v = split(s, Dialect::Postgres);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert!(v[1].problem.as_deref().is_some_and(|p| p.contains("line 2")), "{v:#?}");
        assert_eq!(v[2].text, "CREATE TABLE c (z int)");
        assert_eq!(v[2].line, 3);
    }

    #[test]
    fn an_unterminated_block_comment_hides_the_rest() {
        let v = split("CREATE TABLE a (x int);\n/* old\nCREATE TABLE b (y int);\n", Dialect::Mysql);
        assert_eq!(v.len(), 2, "{v:#?}");
        assert_eq!(v[0].hidden_by, None);
        assert_eq!(v[1].hidden_by, Some(2));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["'abc", "/* x", "$$ a", "[abc", "`x", "DELIMITER", "\\", "E'", "$a"] {
            for d in Dialect::ALL {
                let _ = split(s, d);
            }
        }
    }
}
