//! Reads a DDL script into the schema model: split, classify, rewrite,
//! parse with sqlparser (the source dialect first, then a permissive one),
//! and map the AST straight into the IR. It keeps going after a failure:
//! an unparsable statement becomes a report item, never an abort.

use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, Expr, GeneratedAs, ObjectName,
    ReferentialAction, Statement as Ast, TableConstraint,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::Token;

use super::expr;
use super::report::{codes, ObjectKind, Report, Status};
use super::rewrite::{self, Prepared, COMPUTED_PLACEHOLDER};
use super::script::{self, leading_words, Statement};
use super::tokens::Tokens;
use super::typetext;
use crate::model::*;

/// A script read into the model, with what was found along the way.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub schema: Schema,
    pub report: Report,
    /// Statements that could not be used, kept so the output can carry
    /// them as comments: (line, text, reason).
    pub leftovers: Vec<Leftover>,
    /// Statements in the input (client commands included).
    pub statements: usize,
    /// Of those, the ones recognised as SQL or client commands of the
    /// dialect (whether converted, skipped or flagged). Zero means the
    /// input is not a script in that dialect at all.
    pub recognized: usize,
}

#[derive(Debug, Clone)]
pub struct Leftover {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

type Parsed = (Prepared, Result<Vec<Ast>, String>);

/// Stack for the threads that parse and rewrite: deep but legitimate
/// nesting (generated CASE chains) recurses far; the memory is only
/// reserved, not used, until needed.
pub const STACK_SIZE: usize = 256 << 20;

pub fn read_script(text: &str, dialect: Dialect) -> ReadOutcome {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("barge-read".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, || read_script_here(text, dialect))
            .expect("spawn the DDL reader thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn read_script_here(text: &str, dialect: Dialect) -> ReadOutcome {
    let split = script::split_script(text, dialect);
    let mut r = Reader::new(dialect);
    r.out.schema.dialect = Some(dialect);
    for _ in 0..split.client_commands {
        r.out.report.skip(codes::SESSION_SKIPPED);
    }
    r.out.statements = split.statements.len() + split.client_commands;
    r.out.recognized = split.client_commands;
    let mut hidden: Option<(usize, usize)> = None;
    // In batches, so only a batch of syntax trees is alive at a time.
    for batch in split.statements.chunks(1024) {
        let pre = preparse(batch, dialect);
        for (st, p) in batch.iter().zip(pre) {
            if let Some(opened) = st.hidden_by {
                let e = hidden.get_or_insert((opened, 0));
                e.1 += r.hidden(st) as usize;
                continue;
            }
            r.pending = p;
            r.statement(st);
        }
    }
    if let Some((opened, creates)) = hidden {
        let last = text.lines().count();
        let head = format!("/* at line {opened}");
        let msg = format!(
            "a /* comment opened at line {opened} is never closed, so lines {opened}–{last} are a comment to the client{}; close it and convert again",
            if creates > 0 { format!(" (it hides {creates} CREATE statements, listed as manual items)") } else { String::new() }
        );
        r.out.report.push(ObjectKind::Statement, head, Status::Manual, Some(codes::UNTERMINATED), opened, msg.clone());
        r.out.leftovers.push(Leftover { line: opened, text: String::new(), reason: msg });
    }
    r.finish();
    r.out
}

/// Tokenizing and parsing CREATE TABLE/INDEX dominate on big dumps and
/// need no shared state, so they run on every core; the model is then
/// built in script order.
fn preparse(statements: &[Statement], dialect: Dialect) -> Vec<Option<Parsed>> {
    let work = |st: &Statement| -> Option<Parsed> {
        if st.problem.is_some() || st.hidden_by.is_some() || !matches!(classify(st, dialect), Class::Table | Class::Index) {
            return None;
        }
        let r = Reader::new(dialect);
        let mut p = rewrite::prepare(dialect, &st.text);
        let asts = r.parse_prepared_owned(&mut p, &st.text);
        Some((p, asts))
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if threads < 2 || statements.len() < 256 {
        return statements.iter().map(work).collect();
    }
    let chunk = statements.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = statements
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new()
                    .stack_size(STACK_SIZE)
                    .spawn_scoped(scope, move || part.iter().map(work).collect::<Vec<_>>())
                    .expect("spawn a DDL parser thread")
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

struct Reader {
    dialect: Dialect,
    out: ReadOutcome,
    /// The current statement, already parsed by `preparse`.
    pending: Option<Parsed>,
    /// Table positions by exact name: lookups stay O(1) on big dumps.
    table_pos: std::collections::HashMap<QualifiedName, usize>,
}

impl Reader {
    fn new(dialect: Dialect) -> Self {
        Reader { dialect, out: ReadOutcome::default(), pending: None, table_pos: Default::default() }
    }

    fn table_index(&self, name: &QualifiedName) -> Option<usize> {
        self.table_pos.get(name).copied().or_else(|| self.out.schema.tables.iter().position(|t| t.name.loosely_eq(name)))
    }

    fn table(&self, name: &QualifiedName) -> Option<&Table> {
        self.table_index(name).map(|i| &self.out.schema.tables[i])
    }

    fn table_mut(&mut self, name: &QualifiedName) -> Option<&mut Table> {
        self.table_index(name).map(|i| &mut self.out.schema.tables[i])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Data,
    Session,
    Namespace,
    Routine(RoutineKind),
    Table,
    AlterTable,
    Index,
    View,
    Sequence,
    AlterSequence,
    Type,
    Domain,
    Comment,
    ExtendedProperty,
    SetVal,
    Unknown,
}

impl Class {
    /// Statements that define an object the report must account for.
    fn creates_object(self) -> bool {
        matches!(self, Class::Table | Class::Index | Class::View | Class::Sequence | Class::Type | Class::Domain | Class::Routine(_) | Class::AlterTable)
    }
}

fn classify(st: &Statement, dialect: Dialect) -> Class {
    let w = leading_words(&st.text, 10);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    let first = w.first().copied().unwrap_or("");
    let has = |x: &str| w.contains(&x);
    match first {
        "INSERT" | "REPLACE" | "COPY" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE" => return Class::Data,
        "SET" | "USE" | "LOCK" | "UNLOCK" | "BEGIN" | "COMMIT" | "START" | "ROLLBACK" | "PRAGMA" | "DROP"
        | "GRANT" | "REVOKE" | "ANALYZE" | "VACUUM" | "CHECKPOINT" | "PRINT" | "DBCC" | "RAISERROR" | "SAVEPOINT"
        | "RESET" | "DISCARD" | "CLUSTER" | "REINDEX" | "DEALLOCATE" | "SECURITY" | "EXPLAIN" | "SPOOL" | "PURGE"
        | "END" | "GO" | "SOURCE" | "CALL" | "CHECKSUM" | "OPTIMIZE" | "FLUSH" | "WAITFOR" | "RECONFIGURE" | "BACKUP"
        | "RESTORE" | "SHUTDOWN" | "KILL" | "SHOW" | "DESCRIBE" | "AUDIT" | "NOAUDIT" | "REFRESH" => {
            return Class::Session
        }
        "SELECT" => {
            let lower = st.text.to_ascii_lowercase();
            if lower.contains("setval(") {
                return Class::SetVal;
            }
            return Class::Session;
        }
        "EXEC" | "EXECUTE" => {
            let lower = st.text.to_ascii_lowercase();
            if lower.contains("sp_addextendedproperty") {
                return Class::ExtendedProperty;
            }
            if lower.contains("create schema") {
                return Class::Namespace;
            }
            return Class::Session;
        }
        "DECLARE" => return Class::Routine(RoutineKind::Other),
        "COMMENT" => {
            if w.get(2).is_some_and(|x| matches!(*x, "TABLE" | "COLUMN" | "VIEW" | "MATERIALIZED")) {
                return Class::Comment;
            }
            return Class::Session;
        }
        _ => {}
    }
    if first == "ALTER" {
        let second = w.get(1).copied().unwrap_or("");
        let lower = st.text.to_ascii_lowercase();
        return match second {
            "TABLE" if lower.contains(" owner to ") => Class::Session,
            "TABLE" if (has("CHECK") || has("NOCHECK")) && has("CONSTRAINT") && !has("ADD") => Class::Session,
            "TABLE" if (has("ENABLE") || has("DISABLE")) && !has("MODIFY") => {
                if has("ADD") {
                    Class::AlterTable
                } else {
                    Class::Session
                }
            }
            "TABLE" if lower.contains("replica identity") || lower.contains("cluster on") => Class::Session,
            "TABLE" => Class::AlterTable,
            "SEQUENCE" if lower.contains("owner to") => Class::Session,
            "SEQUENCE" => Class::AlterSequence,
            _ => Class::Session,
        };
    }
    if first != "CREATE" {
        return Class::Unknown;
    }
    // CREATE [OR REPLACE] [DEFINER=...] [ALGORITHM=...] [FORCE] ... KIND
    for (i, word) in w.iter().enumerate().skip(1) {
        let next = w.get(i + 1).copied().unwrap_or("");
        match *word {
            "TABLE" => return Class::Table,
            "INDEX" => return Class::Index,
            "VIEW" => return Class::View,
            "SEQUENCE" => return Class::Sequence,
            "DOMAIN" => return Class::Domain,
            "SCHEMA" | "DATABASE" if i <= 2 => return Class::Namespace,
            "TYPE" => {
                let lower = st.text.to_ascii_lowercase();
                if lower.contains(" as enum") {
                    return Class::Type;
                }
                return Class::Routine(RoutineKind::Other);
            }
            "PROCEDURE" | "PROC" => return Class::Routine(RoutineKind::Procedure),
            "FUNCTION" => return Class::Routine(RoutineKind::Function),
            "TRIGGER" => return Class::Routine(RoutineKind::Trigger),
            "EVENT" if next != "TRIGGER" => return Class::Routine(RoutineKind::Event),
            "PACKAGE" => return Class::Routine(RoutineKind::Package),
            "RULE" => return Class::Routine(RoutineKind::Rule),
            "AGGREGATE" | "OPERATOR" | "CAST" | "LIBRARY" => return Class::Routine(RoutineKind::Other),
            "EXTENSION" | "USER" | "ROLE" | "LOGIN" | "TABLESPACE" | "PUBLICATION" | "SUBSCRIPTION" | "SYNONYM"
            | "STATISTICS" | "COLLATION" | "SERVER" | "POLICY" | "DIRECTORY" | "CONTEXT" => return Class::Session,
            _ => {}
        }
    }
    let _ = dialect;
    Class::Unknown
}

/// Identifier value of the last part of an object name.
fn ident_parts(name: &ObjectName) -> Vec<String> {
    name.0.iter().map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_else(|| p.to_string())).collect()
}

fn qname(name: &ObjectName) -> QualifiedName {
    let parts = ident_parts(name);
    match parts.len() {
        0 => QualifiedName::bare(""),
        1 => QualifiedName::bare(&parts[0]),
        n => QualifiedName::new(Some(&parts[n - 2]), &parts[n - 1]),
    }
}

impl Reader {
    fn statement(&mut self, st: &Statement) {
        if self.dialect == Dialect::Mssql {
            if let Some(inner) = unwrap_if_exists(st) {
                return self.statement(&inner);
            }
        }
        let class = classify(st, self.dialect);
        // A GO batch may hold several statements without semicolons; the
        // rewrites would take the second for the first one's options.
        if self.dialect == Dialect::Mssql
            && !matches!(class, Class::Routine(_) | Class::View)
            && st.problem.is_none()
            && self.split_batch(st)
        {
            return;
        }
        if class != Class::Unknown {
            self.out.recognized += 1;
        }
        if let Some(problem) = &st.problem {
            let msg = format!("{problem}: the statement was cut there and not converted; fix the quote and convert again");
            return self.leftover(st, codes::UNTERMINATED, &msg);
        }
        match class {
            Class::Data => self.out.report.skip(codes::DATA_SKIPPED),
            Class::Session => self.out.report.skip(codes::SESSION_SKIPPED),
            Class::Namespace => self.namespace(st),
            Class::Routine(kind) => self.routine(st, kind),
            Class::Type => self.enum_type(st),
            Class::Sequence => self.sequence(st),
            Class::AlterSequence => self.alter_sequence(st),
            Class::View => self.view(st),
            Class::ExtendedProperty => self.extended_property(st),
            Class::SetVal => self.setval(st),
            Class::Table | Class::AlterTable | Class::Index | Class::Domain | Class::Comment => {
                if class == Class::AlterTable && self.special_alter(st) {
                    return;
                }
                self.parsed(st, class)
            }
            Class::Unknown => {
                if self.split_batch(st) {
                    return;
                }
                self.leftover(st, codes::UNRECOGNIZED, "not a statement barge converts")
            }
        }
    }

    /// A statement after an unterminated `/*`: the client never sees it,
    /// but a CREATE in it is an object the source meant to have, so it is
    /// listed. Returns whether it was one.
    fn hidden(&mut self, st: &Statement) -> bool {
        let class = classify(st, self.dialect);
        if !class.creates_object() {
            return false;
        }
        let (kind, object) = statement_object(st, class, self.dialect);
        let opened = st.hidden_by.unwrap_or(0);
        self.out.report.push(kind, object, Status::Manual, Some(codes::UNTERMINATED), st.line,
            format!("inside the /* comment opened at line {opened}, which is never closed: not converted"));
        true
    }

    /// Reports a statement barge could not use as a manual item of the
    /// kind of object it defines (a table that did not parse is a table
    /// that needs a person), and keeps its text for the output.
    fn leftover(&mut self, st: &Statement, code: super::report::Code, reason: &str) {
        let class = classify(st, self.dialect);
        let (kind, object) = statement_object(st, class, self.dialect);
        self.out.report.push(kind, object, Status::Manual, Some(code), st.line, reason);
        self.out.leftovers.push(Leftover { line: st.line, text: st.raw.clone(), reason: reason.to_string() });
    }

    /// SQL Server batches (and hand-written scripts) often hold several
    /// statements without semicolons. A batch is cut before each statement
    /// keyword that starts a line at the top level, and the parts are read
    /// one by one. Returns false if there is nothing to cut.
    fn split_batch(&mut self, st: &Statement) -> bool {
        // Only SQL Server runs several statements sent as one; anywhere
        // else the server rejects the text whole, so it stays one item.
        if self.dialect != Dialect::Mssql {
            return false;
        }
        let parts = split_at_statement_starts(st, self.dialect);
        if parts.len() < 2 {
            return false;
        }
        // SQL Server compiles a batch whole: one part it would not accept
        // and none of it runs, so neither is any of it converted.
        if parts.iter().any(|p| classify(p, self.dialect) == Class::Unknown) {
            return false;
        }
        for part in parts {
            self.pending = None;
            self.statement(&part);
        }
        true
    }

    /// Parses with the source dialect, then a permissive one.
    fn parse(&self, sql: &str) -> Result<Vec<Ast>, String> {
        let d = rewrite::sql_dialect(self.dialect);
        match rewrite::parse_sql(&*d, sql) {
            Ok(v) => Ok(v),
            Err(first) => rewrite::parse_sql(&GenericDialect {}, sql).map_err(|_| first.to_string()),
        }
    }

    /// Parses already-tokenized statements, falling back to text.
    fn parse_prepared(&self, p: &Prepared) -> Result<Vec<Ast>, String> {
        if p.tokens.is_empty() {
            return self.parse(&p.sql);
        }
        let d = rewrite::sql_dialect(self.dialect);
        match rewrite::parser(&*d).with_tokens(p.tokens.clone()).parse_statements() {
            Ok(v) => Ok(v),
            Err(first) => rewrite::parser(&GenericDialect {}).with_tokens(p.tokens.clone()).parse_statements().map_err(|_| first.to_string()),
        }
    }

    /// [`Reader::parse_prepared`], moving the tokens into the parser
    /// instead of copying them (they are not needed after); the permissive
    /// retry, which is rare, prepares the text again.
    fn parse_prepared_owned(&self, p: &mut Prepared, text: &str) -> Result<Vec<Ast>, String> {
        if p.tokens.is_empty() {
            return self.parse(&p.sql);
        }
        let d = rewrite::sql_dialect(self.dialect);
        match rewrite::parser(&*d).with_tokens(std::mem::take(&mut p.tokens)).parse_statements() {
            Ok(v) => Ok(v),
            Err(first) => {
                let again = rewrite::prepare(self.dialect, text);
                rewrite::parser(&GenericDialect {}).with_tokens(again.tokens).parse_statements().map_err(|_| first.to_string())
            }
        }
    }

    fn parsed(&mut self, st: &Statement, class: Class) {
        let (prepared, result) = match self.pending.take() {
            Some(done) => done,
            None => {
                let p = rewrite::prepare(self.dialect, &st.text);
                let r = self.parse_prepared(&p);
                (p, r)
            }
        };
        let asts = match result {
            Ok(v) => v,
            Err(e) => {
                if self.split_batch(st) {
                    return;
                }
                let error = e.trim_start_matches("sql parser error: ").to_string();
                if class == Class::Table && self.salvage_table(st, &prepared, &error) {
                    return;
                }
                self.leftover(st, codes::UNPARSABLE, &format!("could not be parsed ({error}); kept as a comment in the output"));
                return;
            }
        };
        for ast in asts {
            match ast {
                Ast::CreateTable(ct) => self.create_table(st, &prepared, ct),
                Ast::AlterTable(at) => self.alter_table(st, &prepared, at),
                Ast::CreateIndex(ci) => self.create_index(st, &prepared, ci),
                Ast::CreateDomain(cd) => self.domain(st, cd),
                Ast::Comment { object_type, object_name, comment, .. } => {
                    self.comment(st, object_type, &object_name, comment)
                }
                other => {
                    let _ = other;
                    self.leftover(st, codes::UNRECOGNIZED, "statement kind not converted")
                }
            }
        }
    }

    // ----- tables --------------------------------------------------------

    fn create_table(&mut self, st: &Statement, p: &Prepared, ct: ast::CreateTable) {
        let name = qname(&ct.name);
        if ct.query.is_some() || ct.like.is_some() {
            self.leftover(st, codes::UNRECOGNIZED, "CREATE TABLE AS/LIKE has no column list to convert; create the table by hand");
            return;
        }
        let mut t = self.new_table(st, p, name);
        if let Some(ast::CommentDef::WithEq(c) | ast::CommentDef::WithoutEq(c)) = &ct.comment {
            t.comment = Some(c.clone());
        }
        t.inherits = ct.inherits.iter().flatten().map(qname).collect();
        for parts in &p.tail.inherits {
            let q = match parts.as_slice() {
                [.., s, n] => QualifiedName::new(Some(s), n),
                [n] => QualifiedName::bare(n),
                [] => continue,
            };
            if !t.inherits.contains(&q) {
                t.inherits.push(q);
            }
        }
        if let Some(parent) = &ct.partition_of {
            let bound = ct.for_values.as_ref().map(|v| v.to_string()).unwrap_or_default();
            t.partition_of = Some(PartitionOf { parent: qname(parent), bound: SqlText::new(bound, self.dialect) });
        }
        // Each column's own line, found in the statement text in order.
        // Newlines are counted as the cursor moves, not from the start for
        // each column (wide tables made that quadratic).
        let (mut cursor, mut newlines) = (0, 0);
        for col in &ct.columns {
            let line = match st.text[cursor..].find(col.name.value.as_str()) {
                Some(pos) => {
                    let end = cursor + pos + col.name.value.len();
                    newlines += st.text[cursor..end].matches('\n').count();
                    cursor = end;
                    st.line + newlines
                }
                None => st.line,
            };
            let c = self.column(&mut t, col, p, line);
            t.columns.push(c);
        }
        for tc in &ct.constraints {
            self.table_constraint(&mut t, tc, p, st.line);
        }
        self.push_table(st, p, t);
    }

    fn new_table(&self, st: &Statement, p: &Prepared, name: QualifiedName) -> Table {
        let mut t = Table::new(name);
        t.origin = Origin { line: st.line };
        t.comment = p.tail.comment.clone();
        t.options.engine = p.tail.engine.clone();
        t.options.charset = p.tail.charset.clone();
        t.options.collation = p.tail.collation.clone();
        t.options.partitioning = p.tail.partitioning.clone();
        t.options.without_rowid = p.tail.without_rowid;
        t.options.auto_increment_start = p.tail.auto_increment;
        t
    }

    fn push_table(&mut self, st: &Statement, p: &Prepared, mut t: Table) {
        // SQLite: an INTEGER primary key is the rowid, which numbers itself,
        // whether the key is written on the column or on the table.
        if self.dialect == Dialect::Sqlite && !t.options.without_rowid {
            if let Some(pk) = t.primary_key.as_ref().filter(|k| k.columns.len() == 1) {
                let col = pk.columns[0].clone();
                if let Some(c) = t.column_mut(&col) {
                    if c.identity.is_none() && c.source_type.trim().eq_ignore_ascii_case("integer") {
                        c.identity = Some(Identity { kind: IdentityKind::AutoIncrement, start: None, increment: None, sequence: None });
                    }
                }
            }
        }
        // A replaced placeholder (mysqldump writes views as tables first)
        // or a repeated definition: the last one wins.
        if !self.out.schema.views.is_empty() {
            self.out.schema.views.retain(|v| v.name != t.name);
        }
        if let Some(&i) = self.table_pos.get(&t.name) {
            self.out.schema.tables.remove(i);
            self.table_pos = self.out.schema.tables.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        }
        self.table_pos.insert(t.name.clone(), self.out.schema.tables.len());
        for note in &p.notes {
            if note.starts_with("ON CONFLICT") {
                self.out.report.push(ObjectKind::Constraint, t.name.to_string(), Status::Warning, Some(codes::INDEX_FEATURE), st.line, format!("SQLite {note}: the target has no per-constraint conflict resolution"));
            }
        }
        self.out.schema.tables.push(t);
    }

    /// A CREATE TABLE that does not parse as a whole is read item by item
    /// (each column or constraint on its own), so one construct barge does
    /// not know costs that item, never the table. A column whose definition
    /// does not parse still gets its name and type. Returns false when no
    /// column could be read.
    fn salvage_table(&mut self, st: &Statement, whole: &Prepared, error: &str) -> bool {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return false };
        let Some(kw) = (0..t.len()).find(|&k| t.is_word(k, "TABLE")) else { return false };
        let mut i = kw + 1;
        if let Some(j) = t.match_words(i, &["IF", "NOT", "EXISTS"]) {
            i = j;
        }
        let Some((name, after)) = read_object_name(&t, i) else { return false };
        let Some(open) = t.next_sig(after).filter(|&o| t.is_char(o, &Token::LParen)) else { return false };
        let Some(close) = t.matching_paren(open) else { return false };
        let mut items: Vec<(usize, usize)> = Vec::new();
        let mut k = open + 1;
        while k < close {
            let end = t.end_of_item(k).min(close);
            items.push((k, end));
            k = end + 1;
        }
        let prefix = t.render_range(0, open);
        let mut table = self.new_table(st, whole, name.clone());
        let mut salvaged = 0;
        let mut lost: Vec<String> = Vec::new();
        let total = items.iter().filter(|(a, b)| !t.render_range(*a, *b).trim().is_empty()).count();
        for (a, b) in items {
            let item = t.render_range(a, b);
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let line = st.line + t.render_range(0, t.next_sig(a).unwrap_or(a)).matches('\n').count();
            let sql = format!("{prefix}({item})");
            let p = rewrite::prepare(self.dialect, &sql);
            if let Ok(asts) = self.parse_prepared(&p) {
                if let Some(Ast::CreateTable(ct)) = asts.into_iter().next() {
                    for col in &ct.columns {
                        let c = self.column(&mut table, col, &p, line);
                        table.columns.push(c);
                    }
                    for tc in &ct.constraints {
                        self.table_constraint(&mut table, tc, &p, line);
                    }
                    salvaged += 1;
                    continue;
                }
            }
            let flat = item.split_whitespace().collect::<Vec<_>>().join(" ");
            match salvage_column(&t, a, b, self.dialect) {
                Some((col_name, type_text, not_null, pk)) => {
                    let spec = typetext::parse(&type_text);
                    let mut c = Column::new(&col_name, self.resolve_type(&spec), &type_text);
                    c.nullable = !not_null && !pk;
                    c.origin = Origin { line };
                    if pk {
                        table.primary_key = Some(Key { name: None, columns: vec![col_name.clone()] });
                    }
                    let shown = if type_text.is_empty() { "(no type)".to_string() } else { type_text.clone() };
                    self.out.report.push(ObjectKind::Column, format!("{name}.{col_name}"), Status::Manual, Some(codes::PARTLY_PARSED), line,
                        format!("column definition `{flat}` did not parse: created as `{col_name} {shown}`{}; its other clauses (default, checks) were left out", if not_null { " NOT NULL" } else { "" }));
                    self.out.leftovers.push(Leftover { line, text: item.to_string(), reason: format!("column {col_name} of {name}: definition not fully converted") });
                    table.columns.push(c);
                    salvaged += 1;
                }
                None => {
                    let kind = if flat.to_ascii_uppercase().contains("REFERENCES") { ObjectKind::ForeignKey } else { ObjectKind::Constraint };
                    self.out.report.push(kind, format!("{name} {}", flat.chars().take(60).collect::<String>()), Status::Manual, Some(codes::PARTLY_PARSED), line,
                        format!("table item `{flat}` did not parse; kept as a comment in the output"));
                    lost.push(item.to_string());
                }
            }
        }
        if table.columns.is_empty() {
            return false;
        }
        self.out.report.push(ObjectKind::Table, name.to_string(), Status::Warning, Some(codes::PARTLY_PARSED), st.line,
            format!("the statement did not parse as a whole ({error}); read item by item: {salvaged} of {total} items converted"));
        if !lost.is_empty() {
            self.out.leftovers.push(Leftover { line: st.line, text: lost.join(",\n"), reason: format!("parts of table {name} that did not parse") });
        }
        self.push_table(st, whole, table);
        true
    }

    fn column(&mut self, t: &mut Table, col: &ast::ColumnDef, p: &Prepared, line: usize) -> Column {
        let type_text = match p.type_overrides.iter().find(|(c, _)| c == &col.name.value) {
            Some((_, original)) => original.clone(),
            None if col.data_type == ast::DataType::Unspecified => String::new(),
            None => col.data_type.to_string(),
        };
        let mut spec = typetext::parse(&type_text);
        if p.binary_collation.iter().any(|c| c == &col.name.value) {
            spec.collation = Some("binary".into());
        }
        let mut c = Column::new(&col.name.value, ColumnType::Other { name: String::new() }, &type_text);
        c.origin = Origin { line };
        let is_serial = self.dialect == Dialect::Postgres && matches!(spec.name.as_str(), "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2");
        if is_serial {
            c.identity = Some(Identity { kind: IdentityKind::Serial, start: None, increment: None, sequence: None });
            c.nullable = false;
        }
        for opt in &col.options {
            match &opt.option {
                ColumnOption::Null => c.nullable = true,
                ColumnOption::NotNull => c.nullable = false,
                ColumnOption::Default(e) => c.default = Some(self.default_value(e)),
                ColumnOption::PrimaryKey(_) => {
                    c.nullable = false;
                    t.primary_key = Some(Key { name: opt.name.as_ref().map(|n| n.value.clone()), columns: vec![c.name.clone()] });
                }
                ColumnOption::Unique(_) => t.uniques.push(Key { name: opt.name.as_ref().map(|n| n.value.clone()), columns: vec![c.name.clone()] }),
                ColumnOption::ForeignKey(fk) => {
                    let mut f = foreign_key(fk, vec![c.name.clone()], p, line);
                    f.name = opt.name.as_ref().map(|n| n.value.clone()).or(f.name);
                    t.foreign_keys.push(f);
                }
                ColumnOption::Check(ch) => t.checks.push(Check {
                    name: opt.name.as_ref().or(ch.name.as_ref()).map(|n| n.value.clone()),
                    expr: self.sql(&ch.expr),
                    origin: Origin { line },
                }),
                ColumnOption::CharacterSet(cs) => spec.charset = Some(cs.to_string().to_ascii_lowercase()),
                ColumnOption::Collation(co) => spec.collation = Some(ident_parts(co).join(".")),
                ColumnOption::Comment(s) => c.comment = Some(s.clone()),
                ColumnOption::OnUpdate(e) => {
                    if matches!(self.default_value(e), DefaultValue::CurrentTimestamp { .. }) {
                        c.on_update_current_timestamp = true;
                    }
                }
                ColumnOption::Generated { generated_as, sequence_options, generation_expr, generation_expr_mode, .. } => {
                    match generation_expr {
                        Some(e) => {
                            let stored = matches!(generated_as, GeneratedAs::ExpStored)
                                || matches!(generation_expr_mode, Some(ast::GeneratedExpressionMode::Stored));
                            c.generated = Some(Generated { expr: self.sql(e), stored });
                        }
                        None => {
                            let kind = if matches!(generated_as, GeneratedAs::Always) { IdentityKind::Always } else { IdentityKind::ByDefault };
                            let (start, increment, sequence) = sequence_opts(sequence_options.as_deref().unwrap_or(&[]));
                            c.identity = Some(Identity { kind, start, increment, sequence });
                        }
                    }
                }
                ColumnOption::Identity(kind) => {
                    let (start, increment) = identity_params(kind);
                    c.identity = Some(Identity { kind: IdentityKind::ByDefault, start, increment, sequence: None });
                }
                ColumnOption::DialectSpecific(toks) if toks.iter().any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("AUTO_INCREMENT") || w.value.eq_ignore_ascii_case("AUTOINCREMENT"))) => {
                    c.identity = Some(Identity { kind: IdentityKind::AutoIncrement, start: t.options.auto_increment_start, increment: None, sequence: None });
                }
                _ => {}
            }
        }
        if p.virtual_columns.iter().any(|v| v == &c.name) {
            if let Some(g) = c.generated.as_mut() {
                g.stored = false;
            }
        }
        if let Some(lifted) = p.identities.iter().find(|i| i.column == c.name) {
            c.identity = Some(Identity { kind: lifted.kind, start: lifted.start, increment: lifted.increment, sequence: None });
        }
        c.ty = if spec.name == COMPUTED_PLACEHOLDER {
            ColumnType::Other { name: COMPUTED_PLACEHOLDER.into() }
        } else {
            self.resolve_type(&spec)
        };
        c.source_type = spec_source_text(&type_text, &spec);
        if let Some(d) = self.out.schema.domains.iter().find(|d| d.name.name.eq_ignore_ascii_case(spec.name.rsplit('.').next().unwrap_or(""))) {
            if d.not_null {
                c.nullable = false;
            }
            if c.default.is_none() {
                c.default = d.default.clone();
            }
            for ch in d.checks.clone() {
                let replaced = replace_value_keyword(&ch.sql, &c.name);
                t.checks.push(Check { name: None, expr: SqlText::new(replaced, ch.dialect), origin: Origin { line } });
            }
        }
        c
    }

    /// The model type for a type name, resolving named enums and domains
    /// defined earlier in the script.
    fn resolve_type(&self, spec: &typetext::TypeSpec) -> ColumnType {
        let bare = spec.name.rsplit('.').next().unwrap_or("");
        if let Some(e) = self.out.schema.enums.iter().find(|e| e.name.name.eq_ignore_ascii_case(bare)) {
            let mut ty = ColumnType::Enum { name: Some(e.name.clone()), values: e.values.clone() };
            for _ in 0..spec.array_dims {
                ty = ColumnType::Array { element: Box::new(ty) };
            }
            return ty;
        }
        if let Some(d) = self.out.schema.domains.iter().find(|d| d.name.name.eq_ignore_ascii_case(bare)) {
            return d.base.clone();
        }
        typetext::recognize(self.dialect, spec)
    }

    fn table_constraint(&mut self, t: &mut Table, tc: &TableConstraint, p: &Prepared, line: usize) {
        match tc {
            TableConstraint::PrimaryKey(pk) => {
                let cols = index_cols(&pk.columns);
                for c in &cols {
                    if let Some(col) = t.column_mut(c) {
                        col.nullable = false;
                    }
                }
                t.primary_key = Some(Key { name: pk.name.as_ref().map(|n| n.value.clone()), columns: cols });
            }
            TableConstraint::Unique(u) => {
                let name = u.name.as_ref().or(u.index_name.as_ref()).map(|n| n.value.clone());
                let parts = self.index_parts(&u.columns);
                if parts.iter().all(|p| matches!(p.key, IndexKey::Column(_)) && p.prefix_len.is_none()) {
                    t.uniques.push(Key { name, columns: index_cols(&u.columns) });
                } else {
                    t.indexes.push(Index { name, unique: true, parts, predicate: None, method: IndexMethod::Default, include: vec![], origin: Origin { line } });
                }
            }
            TableConstraint::ForeignKey(fk) => t.foreign_keys.push(foreign_key(fk, fk.columns.iter().map(|i| i.value.clone()).collect(), p, line)),
            TableConstraint::Check(ch) => t.checks.push(Check {
                name: ch.name.as_ref().map(|n| n.value.clone()),
                expr: self.sql(&ch.expr),
                origin: Origin { line },
            }),
            TableConstraint::Index(ix) => {
                let method = match &ix.index_type {
                    Some(ast::IndexType::Hash) => IndexMethod::Hash,
                    Some(ast::IndexType::BTree) => IndexMethod::Btree,
                    _ => IndexMethod::Default,
                };
                t.indexes.push(Index {
                    name: ix.name.as_ref().map(|n| n.value.clone()),
                    unique: false,
                    parts: self.index_parts(&ix.columns),
                    predicate: None,
                    method,
                    include: vec![],
                    origin: Origin { line },
                })
            }
            TableConstraint::FulltextOrSpatial(f) => t.indexes.push(Index {
                name: f.opt_index_name.as_ref().map(|n| n.value.clone()),
                unique: false,
                parts: self.index_parts(&f.columns),
                predicate: None,
                method: if f.fulltext { IndexMethod::Fulltext } else { IndexMethod::Spatial },
                include: vec![],
                origin: Origin { line },
            }),
            other => {
                self.out.report.push(ObjectKind::Constraint, format!("{} ({})", t.name, other), Status::Manual, Some(codes::CHECK_DROPPED), line, "constraint kind not supported on any target");
            }
        }
    }

    fn index_parts(&self, cols: &[ast::IndexColumn]) -> Vec<IndexPart> {
        cols.iter()
            .map(|ic| {
                let descending = matches!(ic.column.options.sort, Some(ast::OrderBySort::Desc));
                let (key, prefix_len) = match &ic.column.expr {
                    Expr::Identifier(i) => (IndexKey::Column(i.value.clone()), None),
                    Expr::CompoundIdentifier(parts) => (IndexKey::Column(parts.last().map(|i| i.value.clone()).unwrap_or_default()), None),
                    // MySQL prefix: `name(10)` parses as a call.
                    Expr::Function(f) if self.dialect == Dialect::Mysql && prefix_arg(f).is_some() => {
                        (IndexKey::Column(ident_parts(&f.name).join(".")), prefix_arg(f))
                    }
                    Expr::Nested(inner) => (IndexKey::Expression(self.sql(inner)), None),
                    e => (IndexKey::Expression(self.sql(e)), None),
                };
                IndexPart { key, prefix_len, descending }
            })
            .collect()
    }

    fn alter_table(&mut self, st: &Statement, p: &Prepared, at: ast::AlterTable) {
        let name = qname(&at.name);
        if self.table(&name).is_none() {
            self.leftover(st, codes::UNRECOGNIZED, &format!("ALTER TABLE on {name}, which the script never creates"));
            return;
        }
        for op in at.operations {
            let dialect = self.dialect;
            match op {
                AlterTableOperation::AddConstraint { constraint, not_valid } => {
                    let mut p2 = p.clone();
                    p2.not_validated |= not_valid;
                    let mut t = self.table(&name).cloned().expect("checked above");
                    self.table_constraint(&mut t, &constraint, &p2, st.line);
                    *self.table_mut(&name).expect("checked above") = t;
                }
                AlterTableOperation::AddColumn { column_def, .. } => {
                    let mut t = self.table(&name).cloned().expect("checked above");
                    let c = self.column(&mut t, &column_def, p, st.line);
                    t.columns.push(c);
                    *self.table_mut(&name).expect("checked above") = t;
                }
                AlterTableOperation::AlterColumn { column_name, op } => {
                    let default = match &op {
                        AlterColumnOperation::SetDefault { value } => Some(self.default_value(value)),
                        _ => None,
                    };
                    let t = self.table_mut(&name).expect("checked above");
                    let Some(c) = t.column_mut(&column_name.value) else { continue };
                    match op {
                        AlterColumnOperation::SetNotNull => c.nullable = false,
                        AlterColumnOperation::DropNotNull => c.nullable = true,
                        AlterColumnOperation::SetDefault { .. } => {
                            // nextval() on a serial-style column: an identity.
                            if let Some(DefaultValue::Sequence(seq)) = &default {
                                if c.identity.is_none() && c.ty.is_integer() {
                                    c.identity = Some(Identity { kind: IdentityKind::Serial, start: None, increment: None, sequence: Some(seq.clone()) });
                                    continue;
                                }
                            }
                            c.default = default;
                        }
                        AlterColumnOperation::DropDefault => c.default = None,
                        AlterColumnOperation::SetDataType { data_type, .. } => {
                            let spec = typetext::parse(&data_type.to_string());
                            c.ty = typetext::recognize(dialect, &spec);
                            c.source_type = data_type.to_string();
                        }
                        AlterColumnOperation::AddGenerated { generated_as, sequence_options } => {
                            let kind = if matches!(generated_as, Some(GeneratedAs::Always)) { IdentityKind::Always } else { IdentityKind::ByDefault };
                            let (start, increment, sequence) = sequence_opts(sequence_options.as_deref().unwrap_or(&[]));
                            c.identity = Some(Identity { kind, start, increment, sequence });
                        }
                        _ => {}
                    }
                }
                AlterTableOperation::ModifyColumn { col_name, data_type, options, .. } => {
                    let mut t = self.table(&name).cloned().expect("checked above");
                    let def = ast::ColumnDef { name: col_name.clone(), data_type, options: options.into_iter().map(|option| ast::ColumnOptionDef { name: None, option }).collect() };
                    let c = self.column(&mut t, &def, p, st.line);
                    if let Some(old) = t.column_mut(&col_name.value) {
                        let origin = old.origin;
                        *old = c;
                        old.origin = origin;
                    }
                    *self.table_mut(&name).expect("checked above") = t;
                }
                // pg_dump: partitions are plain tables, attached afterwards.
                AlterTableOperation::AttachPartitionOf { partition, for_values } => {
                    let child = qname(&partition);
                    let bound = SqlText::new(for_values.to_string(), self.dialect);
                    match self.table_mut(&child) {
                        Some(c) => c.partition_of = Some(PartitionOf { parent: name.clone(), bound }),
                        None => self.leftover(st, codes::UNRECOGNIZED, &format!("ATTACH PARTITION {child}, which the script never creates")),
                    }
                }
                AlterTableOperation::DropConstraint { .. } | AlterTableOperation::DropColumn { .. } => {}
                other => {
                    let _ = other;
                }
            }
        }
    }

    /// ALTER TABLE forms sqlparser 0.64 rejects, read from tokens:
    /// SQL Server `ADD CONSTRAINT c DEFAULT (x) FOR col`, and PostgreSQL
    /// `ALTER COLUMN c ADD GENERATED ... AS IDENTITY (SEQUENCE NAME s ...)`.
    fn special_alter(&mut self, st: &Statement) -> bool {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return false };
        let Some(tbl_start) = t.match_words(0, &["ALTER", "TABLE"]) else { return false };
        let mut i = tbl_start;
        if let Some(j) = t.match_words(i, &["ONLY"]) {
            i = j;
        }
        if let Some(j) = t.match_words(i, &["IF", "EXISTS"]) {
            i = j;
        }
        let Some((name, after_name)) = read_object_name(&t, i) else { return false };
        let Some(table) = self.table(&name).map(|t| t.name.clone()) else { return false };

        // Oracle `MODIFY ("C" NOT NULL ENABLE)` / `MODIFY (c DEFAULT 0)`.
        if self.dialect == Dialect::Oracle {
            if let Some(m) = t.match_words(after_name, &["MODIFY"]) {
                self.oracle_modify(&t, m, &table);
                return true;
            }
        }
        // SQL Server default constraint.
        let for_at = (after_name..t.len()).find(|&k| t.is_word(k, "FOR"));
        let default_at = (after_name..t.len()).find(|&k| t.is_word(k, "DEFAULT"));
        if let (Some(def), Some(for_at)) = (default_at, for_at) {
            if t.match_words(after_name, &["ADD"]).is_some() || t.match_words(after_name, &["WITH"]).is_some() {
                let expr_sql = t.render_range(def + 1, for_at);
                let col = t.next_sig(for_at + 1).and_then(|k| t.word(k)).map(str::to_string);
                if let (Some(col), Ok(e)) = (col, rewrite::parse_expr(&*d, &expr_sql)) {
                    let value = self.default_value(&e);
                    if let Some(c) = self.table_mut(&table).and_then(|t| t.column_mut(&col)) {
                        c.default = Some(value);
                        return true;
                    }
                }
            }
        }
        // PostgreSQL identity with a named sequence.
        if let Some(gen) = (after_name..t.len()).find(|&k| t.is_word(k, "GENERATED")) {
            if (gen..t.len()).any(|k| t.is_word(k, "IDENTITY")) {
                let col_kw = (after_name..gen).find(|&k| t.is_word(k, "COLUMN"));
                let col_at = match col_kw {
                    Some(k) => t.next_sig(k + 1),
                    None => t.match_words(after_name, &["ALTER"]).and_then(|k| t.next_sig(k)),
                };
                let col = col_at.and_then(|k| t.word(k)).map(str::to_string);
                let kind = if t.match_words(gen + 1, &["ALWAYS"]).is_some() { IdentityKind::Always } else { IdentityKind::ByDefault };
                let mut start = None;
                let mut increment = None;
                let mut sequence = None;
                let mut k = gen;
                while k < t.len() {
                    if let Some(j) = t.match_words(k, &["SEQUENCE", "NAME"]) {
                        if let Some((n, after)) = read_object_name(&t, j) {
                            sequence = Some(n);
                            k = after;
                            continue;
                        }
                    }
                    if let Some(j) = t.match_words(k, &["START", "WITH"]).or_else(|| t.match_words(k, &["START"])) {
                        start = number_at(&t, j);
                    }
                    if let Some(j) = t.match_words(k, &["INCREMENT", "BY"]).or_else(|| t.match_words(k, &["INCREMENT"])) {
                        increment = number_at(&t, j);
                    }
                    k += 1;
                }
                if let Some(c) = col.and_then(|col| self.table_mut(&table).and_then(|t| t.column_mut(&col))) {
                    c.identity = Some(Identity { kind, start, increment, sequence: sequence.clone() });
                    c.default = None;
                    c.nullable = false;
                }
                if let Some(seq) = sequence {
                    self.out.schema.sequences.retain(|s| !s.name.loosely_eq(&seq));
                }
                return true;
            }
        }
        false
    }

    /// Oracle's column changes, one item or a parenthesized list: NOT NULL
    /// or NULL, a DEFAULT, a new type. Constraint state words are ignored.
    fn oracle_modify(&mut self, t: &Tokens, from: usize, table: &QualifiedName) {
        let d = rewrite::sql_dialect(self.dialect);
        let (mut k, end) = match t.next_sig(from) {
            Some(o) if t.is_char(o, &Token::LParen) => (o + 1, t.matching_paren(o).unwrap_or(t.len())),
            Some(o) => (o, t.len()),
            None => return,
        };
        while k < end {
            let item_end = t.end_of_item(k).min(end);
            if let Some((col, type_text, not_null, _)) = salvage_column(t, k, item_end, self.dialect) {
                let words: Vec<(usize, String)> = (k..item_end).filter_map(|i| t.word(i).map(|w| (i, w.to_ascii_uppercase()))).collect();
                let null = words.iter().any(|(i, w)| w == "NULL" && !t.prev_sig(*i).is_some_and(|p| t.is_word(p, "NOT")));
                let default = words.iter().find(|(_, w)| w == "DEFAULT").and_then(|(i, _)| {
                    let stop = (i + 1..item_end)
                        .find(|&j| ["NOT", "NULL", "ENABLE", "DISABLE", "CONSTRAINT", "CHECK"].iter().any(|w| t.is_word(j, w)) && t.depth_at(j) == t.depth_at(*i))
                        .unwrap_or(item_end);
                    rewrite::parse_expr(&*d, &t.render_range(i + 1, stop)).ok()
                });
                let default = default.map(|e| self.default_value(&e));
                let ty = (!type_text.is_empty()).then(|| {
                    let spec = typetext::parse(&type_text);
                    (self.resolve_type(&spec), type_text.clone())
                });
                if let Some(c) = self.table_mut(table).and_then(|t| t.column_mut(&col)) {
                    if not_null {
                        c.nullable = false;
                    } else if null {
                        c.nullable = true;
                    }
                    if let Some(dv) = default {
                        c.default = Some(dv);
                    }
                    if let Some((ty, text)) = ty {
                        c.ty = ty;
                        c.source_type = text;
                    }
                }
            }
            k = item_end + 1;
        }
    }

    fn index_from_ast(&self, p: &Prepared, ci: &ast::CreateIndex, line: usize) -> (QualifiedName, Index) {
        let table = qname(&ci.table_name);
        let method = p.index_method.clone().unwrap_or(match &ci.using {
            Some(ast::IndexType::BTree) => IndexMethod::Btree,
            Some(ast::IndexType::Hash) => IndexMethod::Hash,
            Some(ast::IndexType::GIN) => IndexMethod::Gin,
            Some(ast::IndexType::GiST) => IndexMethod::Gist,
            Some(ast::IndexType::BRIN) => IndexMethod::Brin,
            Some(other) => IndexMethod::Other(other.to_string().to_ascii_lowercase()),
            None => IndexMethod::Default,
        });
        let idx = Index {
            name: ci.name.as_ref().map(|n| ident_parts(n).last().cloned().unwrap_or_default()),
            unique: ci.unique,
            parts: self.index_parts(&ci.columns),
            predicate: ci.predicate.as_ref().map(|e| self.sql(e)),
            method,
            include: ci.include.iter().map(|i| i.value.clone()).collect(),
            origin: Origin { line },
        };
        (table, idx)
    }

    fn create_index(&mut self, st: &Statement, p: &Prepared, ci: ast::CreateIndex) {
        let (table, idx) = self.index_from_ast(p, &ci, st.line);
        let on_view = self.table(&table).is_none() && self.out.schema.views.iter().any(|v| v.materialized && v.name.loosely_eq(&table));
        match self.table_mut(&table) {
            Some(t) => t.indexes.push(idx),
            None if on_view => self.out.schema.view_indexes.push((table, idx)),
            None => self.leftover(st, codes::UNRECOGNIZED, &format!("index on {table}, which the script never creates")),
        }
    }

    fn domain(&mut self, st: &Statement, cd: ast::CreateDomain) {
        let source_type = cd.data_type.to_string();
        let spec = typetext::parse(&source_type);
        let base = typetext::recognize(self.dialect, &spec);
        let mut d = Domain {
            name: qname(&cd.name),
            base,
            source_type,
            not_null: false,
            default: cd.default.as_ref().map(|e| self.default_value(e)),
            checks: vec![],
            origin: Origin { line: st.line },
        };
        for c in &cd.constraints {
            if let TableConstraint::Check(ch) = c { d.checks.push(self.sql(&ch.expr)) }
        }
        if st.text.to_ascii_uppercase().contains("NOT NULL") {
            d.not_null = true;
        }
        self.out.schema.domains.push(d);
    }

    fn comment(&mut self, st: &Statement, kind: ast::CommentObject, name: &ObjectName, text: Option<String>) {
        let parts = ident_parts(name);
        match kind {
            ast::CommentObject::Table | ast::CommentObject::View | ast::CommentObject::MaterializedView => {
                let qn = qname(name);
                if let Some(t) = self.table_mut(&qn) {
                    t.comment = text;
                } else if let Some(v) = self.out.schema.views.iter_mut().find(|v| v.name.loosely_eq(&qn)) {
                    v.comment = text;
                } else {
                    self.leftover(st, codes::UNRECOGNIZED, "comment on an object the script never creates");
                }
            }
            ast::CommentObject::Column if parts.len() >= 2 => {
                let col = parts[parts.len() - 1].clone();
                let tname = if parts.len() >= 3 {
                    QualifiedName::new(Some(&parts[parts.len() - 3]), &parts[parts.len() - 2])
                } else {
                    QualifiedName::bare(&parts[0])
                };
                if let Some(c) = self.table_mut(&tname).and_then(|t| t.column_mut(&col)) {
                    c.comment = text;
                } else {
                    self.leftover(st, codes::UNRECOGNIZED, "comment on a column the script never creates");
                }
            }
            _ => self.out.report.skip(codes::SESSION_SKIPPED),
        }
    }

    // ----- objects read from tokens -------------------------------------

    fn namespace(&mut self, st: &Statement) {
        let lower = st.text.to_ascii_lowercase();
        let d = rewrite::sql_dialect(self.dialect);
        let text = if lower.starts_with("exec") {
            // EXEC sys.sp_executesql N'CREATE SCHEMA [sales]'
            match lower.find("create schema") {
                Some(i) => st.text[i..].trim_end_matches(['\'', ';', ' ']).to_string(),
                None => return,
            }
        } else {
            st.text.clone()
        };
        if let Some(t) = Tokens::new(&*d, &text) {
            let kw = (0..t.len()).find(|&k| t.is_word(k, "SCHEMA") || t.is_word(k, "DATABASE"));
            if let Some(kw) = kw {
                let mut i = kw + 1;
                if let Some(j) = t.match_words(i, &["IF", "NOT", "EXISTS"]) {
                    i = j;
                }
                if let Some(k) = t.next_sig(i) {
                    if let Some(name) = t.word(k) {
                        if !self.out.schema.namespaces.iter().any(|n| n == name) {
                            self.out.schema.namespaces.push(name.to_string());
                        }
                    }
                }
            }
        }
        self.out.report.skip(codes::SESSION_SKIPPED);
    }

    fn routine(&mut self, st: &Statement, kind: RoutineKind) {
        let d = rewrite::sql_dialect(self.dialect);
        let name = Tokens::new(&*d, &st.text)
            .and_then(|t| {
                let kw = (0..t.len()).find(|&k| {
                    ["PROCEDURE", "PROC", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE", "TYPE", "AGGREGATE", "OPERATOR", "RULE", "BLOCK"]
                        .iter()
                        .any(|w| t.is_word(k, w))
                })?;
                let mut i = kw + 1;
                if let Some(j) = t.match_words(i, &["BODY"]) {
                    i = j;
                }
                if let Some(j) = t.match_words(i, &["IF", "NOT", "EXISTS"]) {
                    i = j;
                }
                read_object_name(&t, i).map(|(n, _)| n)
            })
            .unwrap_or_else(|| QualifiedName::bare("anonymous block"));
        // A package body belongs with its specification: one object.
        if let Some(r) = self.out.schema.routines.iter_mut().find(|r| r.kind == kind && r.name == name && kind == RoutineKind::Package) {
            r.source.push_str("\n/\n");
            r.source.push_str(&st.raw);
            return;
        }
        self.out.schema.routines.push(Routine { kind, name, table: None, source: st.raw.clone(), origin: Origin { line: st.line } });
    }

    fn enum_type(&mut self, st: &Statement) {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return self.leftover(st, codes::UNPARSABLE, "cannot tokenize") };
        let Some(kw) = (0..t.len()).find(|&k| t.is_word(k, "TYPE")) else { return };
        let Some((name, _)) = read_object_name(&t, kw + 1) else { return self.leftover(st, codes::UNPARSABLE, "type has no name") };
        let values: Vec<String> = t
            .toks
            .iter()
            .filter_map(|tok| match tok {
                Token::SingleQuotedString(s) => Some(s.replace("''", "'")),
                _ => None,
            })
            .collect();
        self.out.schema.enums.retain(|e| e.name != name);
        self.out.schema.enums.push(EnumType { name, values, origin: Origin { line: st.line } });
    }

    fn sequence(&mut self, st: &Statement) {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return self.leftover(st, codes::UNPARSABLE, "cannot tokenize") };
        let Some(kw) = (0..t.len()).find(|&k| t.is_word(k, "SEQUENCE")) else { return };
        let mut i = kw + 1;
        if let Some(j) = t.match_words(i, &["IF", "NOT", "EXISTS"]) {
            i = j;
        }
        let Some((name, after)) = read_object_name(&t, i) else { return self.leftover(st, codes::UNPARSABLE, "sequence has no name") };
        let mut s = Sequence::new(name);
        s.origin = Origin { line: st.line };
        read_sequence_options(&t, after, &mut s);
        self.out.schema.sequences.retain(|x| x.name != s.name);
        self.out.schema.sequences.push(s);
    }

    fn alter_sequence(&mut self, st: &Statement) {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return };
        let Some(i) = t.match_words(0, &["ALTER", "SEQUENCE"]) else { return };
        let i = t.match_words(i, &["IF", "EXISTS"]).unwrap_or(i);
        let Some((name, after)) = read_object_name(&t, i) else { return };
        let Some(seq) = self.out.schema.sequences.iter_mut().find(|s| s.name.loosely_eq(&name)) else {
            self.out.report.skip(codes::SESSION_SKIPPED);
            return;
        };
        if let Some(j) = (after..t.len()).find_map(|k| t.match_words(k, &["OWNED", "BY"])) {
            let d2 = rewrite::sql_dialect(self.dialect);
            let _ = d2;
            if let Some((full, _)) = read_object_name_parts(&t, j) {
                if full.len() >= 2 {
                    let col = full[full.len() - 1].clone();
                    let table = if full.len() >= 3 {
                        QualifiedName::new(Some(&full[full.len() - 3]), &full[full.len() - 2])
                    } else {
                        QualifiedName::bare(&full[0])
                    };
                    seq.owned_by = Some((table, col));
                }
            }
        } else {
            read_sequence_options(&t, after, seq);
        }
    }

    fn view(&mut self, st: &Statement) {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return self.leftover(st, codes::UNPARSABLE, "cannot tokenize") };
        let Some(kw) = (0..t.len()).find(|&k| t.is_word(k, "VIEW")) else { return };
        let materialized = (0..kw).any(|k| t.is_word(k, "MATERIALIZED"));
        let mut i = kw + 1;
        if let Some(j) = t.match_words(i, &["IF", "NOT", "EXISTS"]) {
            i = j;
        }
        let Some((name, mut after)) = read_object_name(&t, i) else { return self.leftover(st, codes::UNPARSABLE, "view has no name") };
        let mut columns = Vec::new();
        if let Some(o) = t.next_sig(after).filter(|&o| t.is_char(o, &Token::LParen)) {
            if let Some(c) = t.matching_paren(o) {
                for k in o + 1..c {
                    if let Token::Word(w) = &t.toks[k] {
                        columns.push(w.value.clone());
                    }
                }
                after = c + 1;
            }
        }
        let Some(as_at) = (after..t.len()).find(|&k| t.is_word(k, "AS") && t.depth_at(k) == 0) else {
            return self.leftover(st, codes::UNPARSABLE, "view has no AS query");
        };
        let mut end = t.len();
        // Trailing options that are not part of the query.
        for k in as_at..t.len() {
            if t.depth_at(k) == 0
                && t.is_word(k, "WITH")
                && ["READ", "CHECK", "NO", "DATA", "LOCAL", "CASCADED"].iter().any(|w| t.next_sig(k + 1).is_some_and(|n| t.is_word(n, w)))
            {
                end = k;
                break;
            }
        }
        let query = t.render_range(as_at + 1, end).trim().trim_end_matches(';').trim().to_string();
        self.out.schema.views.retain(|v| v.name != name);
        self.out.schema.views.push(View {
            name,
            columns,
            query: SqlText::new(query, self.dialect),
            materialized,
            comment: None,
            origin: Origin { line: st.line },
        });
    }

    /// SQL Server's MS_Description extended properties are its comments.
    fn extended_property(&mut self, st: &Statement) {
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return };
        // Collect @name=value pairs.
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut k = 0;
        while k < t.len() {
            if let Some(Token::Word(w)) = t.toks.get(k) {
                if w.value.starts_with('@') {
                    let key = w.value.trim_start_matches('@').to_ascii_lowercase();
                    if let Some(eq) = t.next_sig(k + 1).filter(|&e| t.is_char(e, &Token::Eq)) {
                        if let Some(v) = t.next_sig(eq + 1) {
                            let val = match &t.toks[v] {
                                Token::NationalStringLiteral(s) | Token::SingleQuotedString(s) => s.replace("''", "'"),
                                Token::Word(w) => w.value.clone(),
                                other => other.to_string(),
                            };
                            pairs.push((key, val));
                            k = v + 1;
                            continue;
                        }
                    }
                }
            }
            k += 1;
        }
        let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        if get("name").is_some_and(|n| !n.eq_ignore_ascii_case("MS_Description")) {
            return self.out.report.skip(codes::SESSION_SKIPPED);
        }
        let (Some(value), Some(schema), Some(table)) = (get("value"), get("level0name"), get("level1name")) else {
            return self.out.report.skip(codes::SESSION_SKIPPED);
        };
        let tname = QualifiedName::new(Some(&schema), &table);
        let column = get("level2name");
        match self.table_mut(&tname) {
            Some(t) => match column {
                Some(c) => {
                    if let Some(col) = t.column_mut(&c) {
                        col.comment = Some(value);
                    }
                }
                None => t.comment = Some(value),
            },
            None => self.out.report.skip(codes::SESSION_SKIPPED),
        }
    }

    /// `SELECT pg_catalog.setval('seq', 42, true)`: where a sequence resumes.
    fn setval(&mut self, st: &Statement) {
        self.out.report.skip(codes::DATA_SKIPPED);
        let d = rewrite::sql_dialect(self.dialect);
        let Some(t) = Tokens::new(&*d, &st.text) else { return };
        let name = t.toks.iter().find_map(|x| match x {
            Token::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        });
        let value = t.toks.iter().find_map(|x| match x {
            Token::Number(n, _) => n.parse::<i128>().ok(),
            _ => None,
        });
        let called = !st.text.to_ascii_lowercase().contains("false");
        if let (Some(name), Some(v)) = (name, value) {
            let parts: Vec<&str> = name.split('.').map(|p| p.trim_matches('"')).collect();
            let qn = match parts.as_slice() {
                [s, n] => QualifiedName::new(Some(s), n),
                [n] => QualifiedName::bare(n),
                _ => return,
            };
            let next = if called { v + 1 } else { v };
            if let Some(seq) = self.out.schema.sequence_mut(&qn) {
                seq.start = Some(next);
            } else {
                // An identity's own sequence (`ADD GENERATED … AS IDENTITY
                // (SEQUENCE NAME …)`) lives in its column.
                let identity = self.out.schema.tables.iter_mut().flat_map(|t| t.columns.iter_mut()).filter_map(|c| c.identity.as_mut()).find(|i| i.sequence.as_ref().is_some_and(|s| s.loosely_eq(&qn)));
                if let Some(id) = identity {
                    id.start = Some(next);
                }
            }
        }
    }

    fn finish(&mut self) {
        // Sequences owned by a column are that column's serial/identity.
        let seqs = std::mem::take(&mut self.out.schema.sequences);
        for s in seqs {
            let mut absorbed = false;
            if let Some((tname, col)) = &s.owned_by {
                if let Some(c) = self.table_mut(tname).and_then(|t| t.column_mut(col)) {
                    if let Some(id) = c.identity.as_mut() {
                        id.start = id.start.or(s.start);
                        id.increment = id.increment.or(s.increment);
                        id.sequence = Some(s.name.clone());
                        absorbed = true;
                    } else if matches!(&c.default, Some(DefaultValue::Sequence(n)) if n.loosely_eq(&s.name)) {
                        c.identity = Some(Identity { kind: IdentityKind::Serial, start: s.start, increment: s.increment, sequence: Some(s.name.clone()) });
                        c.default = None;
                        absorbed = true;
                    }
                }
            }
            if !absorbed {
                self.out.schema.sequences.push(s);
            }
        }
        self.absorb_unowned_sequences();
        // `REFERENCES t` without columns (PostgreSQL, Oracle, SQLite)
        // means t's primary key; MySQL needs the columns named.
        let mut implied = Vec::new();
        for (ti, t) in self.out.schema.tables.iter().enumerate() {
            for (fi, fk) in t.foreign_keys.iter().enumerate() {
                if fk.ref_columns.is_empty() {
                    if let Some(pk) = self.table(&fk.ref_table).and_then(|rt| rt.primary_key.as_ref()).filter(|pk| pk.columns.len() == fk.columns.len()) {
                        implied.push((ti, fi, pk.columns.clone()));
                    }
                }
            }
        }
        for (ti, fi, cols) in implied {
            self.out.schema.tables[ti].foreign_keys[fi].ref_columns = cols;
        }
        // MariaDB writes JSON columns as longtext + CHECK (json_valid(col)).
        for t in &mut self.out.schema.tables {
            let mut json_cols = Vec::new();
            t.checks.retain(|ch| {
                let flat: String = ch.expr.sql.chars().filter(|c| !c.is_whitespace() && *c != '`' && *c != '"').collect::<String>().to_ascii_lowercase();
                let inner = flat.trim_start_matches('(').trim_end_matches(')');
                match inner.strip_prefix("json_valid(") {
                    Some(col) if !col.contains(['(', ')', ',']) => {
                        json_cols.push(col.to_string());
                        false
                    }
                    _ => true,
                }
            });
            for jc in json_cols {
                if let Some(c) = t.column_mut(&jc) {
                    if c.ty.is_textual() {
                        c.ty = ColumnType::Json;
                        c.source_type = "json".into();
                    }
                }
            }
        }
        // Computed columns without a type get one from their expression.
        let has_computed = self.out.schema.tables.iter().any(|t| t.columns.iter().any(|c| matches!(&c.ty, ColumnType::Other { name } if name == COMPUTED_PLACEHOLDER)));
        let tables = if has_computed { self.out.schema.tables.clone() } else { Vec::new() };
        for t in &mut self.out.schema.tables {
            for i in 0..t.columns.len() {
                if matches!(&t.columns[i].ty, ColumnType::Other { name } if name == COMPUTED_PLACEHOLDER) {
                    let expr = t.columns[i].generated.as_ref().map(|g| g.expr.sql.clone()).unwrap_or_default();
                    let table = tables.iter().find(|x| x.name == t.name);
                    t.columns[i].ty = table.map(|tb| expr::infer_type(&expr, tb)).unwrap_or_else(ColumnType::text);
                    t.columns[i].source_type = format!("computed: {}", t.columns[i].ty.describe());
                }
            }
        }
    }

    /// pg_dump writes `CREATE SEQUENCE x_seq` and `DEFAULT nextval('x_seq')`
    /// without `OWNED BY` for sequences made by hand. One that feeds
    /// nothing but a table's single-column key is that table's
    /// auto-increment, and becomes its identity (MySQL AUTO_INCREMENT,
    /// SQLite rowid); a shared sequence stays a sequence.
    fn absorb_unowned_sequences(&mut self) {
        if self.out.schema.sequences.is_empty() {
            return;
        }
        let mut users: std::collections::HashMap<usize, Vec<(usize, usize)>> = Default::default();
        for (ti, t) in self.out.schema.tables.iter().enumerate() {
            for (ci, c) in t.columns.iter().enumerate() {
                let used = match (&c.default, &c.identity) {
                    (Some(DefaultValue::Sequence(n)), _) => Some(n),
                    (_, Some(Identity { sequence: Some(n), .. })) => Some(n),
                    _ => None,
                };
                if let Some(n) = used {
                    if let Some(si) = self.out.schema.sequences.iter().position(|s| s.name.loosely_eq(n)) {
                        users.entry(si).or_default().push((ti, ci));
                    }
                }
            }
        }
        let mut absorbed = Vec::new();
        for (si, uses) in users {
            let [(ti, ci)] = uses.as_slice() else { continue };
            let seq = &self.out.schema.sequences[si];
            let t = &mut self.out.schema.tables[*ti];
            let name = t.columns[*ci].name.clone();
            let keyed = t.primary_key.as_ref().is_some_and(|k| k.columns == [name.clone()]) || t.uniques.iter().any(|k| k.columns == [name.clone()]);
            let c = &mut t.columns[*ci];
            let whole = c.ty.is_integer() || matches!(c.ty, ColumnType::Decimal { scale: Some(0) | None, .. });
            if !keyed || !whole {
                continue;
            }
            c.identity = Some(Identity { kind: IdentityKind::Serial, start: seq.start, increment: seq.increment, sequence: Some(seq.name.clone()) });
            c.default = None;
            absorbed.push(si);
        }
        absorbed.sort_unstable();
        for si in absorbed.into_iter().rev() {
            self.out.schema.sequences.remove(si);
        }
    }

    // ----- values ----------------------------------------------------------

    fn sql(&self, e: &Expr) -> SqlText {
        SqlText::new(e.to_string(), self.dialect)
    }

    fn default_value(&self, e: &Expr) -> DefaultValue {
        expr::classify_default(e, self.dialect)
    }
}

/// SSMS "check for object existence" wraps each statement in
/// `IF [NOT] EXISTS (...) [BEGIN] stmt [END]`; the statement is what counts.
fn unwrap_if_exists(st: &Statement) -> Option<Statement> {
    let d = sqlparser::dialect::MsSqlDialect {};
    let t = Tokens::new(&d, &st.text)?;
    let first = t.next_sig(0)?;
    if !t.is_word(first, "IF") {
        return None;
    }
    let mut k = t.next_sig(first + 1)?;
    if t.is_word(k, "NOT") {
        k = t.next_sig(k + 1)?;
    }
    if !t.is_word(k, "EXISTS") {
        return None;
    }
    let open = t.next_sig(k + 1).filter(|&o| t.is_char(o, &Token::LParen))?;
    let close = t.matching_paren(open)?;
    let mut body = t.render_range(close + 1, t.len()).trim().to_string();
    // `IF ... BEGIN stmt; END`: a semicolon inside the block splits the
    // END off into a statement of its own, so BEGIN may come alone.
    let upper = body.to_ascii_uppercase();
    let word_at = |s: &str, w: &str| s.starts_with(w) && !s[w.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
    if word_at(&upper, "BEGIN") && !word_at(upper[5..].trim_start(), "TRAN") && !word_at(upper[5..].trim_start(), "TRANSACTION") {
        body = body[5..].trim().to_string();
        let up = body.to_ascii_uppercase();
        if up.ends_with("END") && !up[..up.len() - 3].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            body = body[..body.len() - 3].trim().trim_end_matches(';').trim().to_string();
        }
    }
    if body.is_empty() {
        return None;
    }
    // The body's first 20 bytes (cut on a character boundary: barge
    // builds with Rust 1.85, before `floor_char_boundary`) locate it.
    let head = (0..=body.len().min(20)).rev().find(|&i| body.is_char_boundary(i)).unwrap_or(0);
    let offset = st.text[..st.text.len().min(st.text.find(&body[..head]).unwrap_or(0))].matches('\n').count();
    let mut inner = Statement::new(body.clone(), body, st.line + offset);
    inner.problem = st.problem.clone();
    Some(inner)
}

/// The object a statement defines, as the report names it elsewhere
/// (`schema.table`, `table.index`, `table → referenced`), read from its
/// tokens so that even a statement that does not parse is named.
fn statement_object(st: &Statement, class: Class, dialect: Dialect) -> (ObjectKind, String) {
    let head = || {
        let h: String = st.text.chars().take(60).collect();
        h.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let d = rewrite::sql_dialect(dialect);
    let Some(t) = Tokens::new(&*d, &st.text) else { return (ObjectKind::Statement, head()) };
    let name_after = |kw: &[&str]| -> Option<(QualifiedName, usize)> {
        let k = (0..t.len()).find(|&k| t.depth_at(k) == 0 && kw.iter().any(|w| t.is_word(k, w)))?;
        let mut i = k + 1;
        for skip in [&["IF", "NOT", "EXISTS"][..], &["IF", "EXISTS"], &["CONCURRENTLY"], &["ONLY"], &["BODY"]] {
            if let Some(j) = t.match_words(i, skip) {
                i = j;
            }
        }
        read_object_name(&t, i)
    };
    let named = |kind: ObjectKind, kw: &[&str]| match name_after(kw) {
        Some((n, _)) => (kind, n.to_string()),
        None => (ObjectKind::Statement, head()),
    };
    match class {
        Class::Table => named(ObjectKind::Table, &["TABLE"]),
        Class::View => named(ObjectKind::View, &["VIEW"]),
        Class::Sequence => named(ObjectKind::Sequence, &["SEQUENCE"]),
        Class::Type => named(ObjectKind::Type, &["TYPE"]),
        Class::Domain => named(ObjectKind::Type, &["DOMAIN"]),
        Class::Routine(kind) => match name_after(&["PROCEDURE", "PROC", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE", "TYPE", "AGGREGATE", "OPERATOR", "RULE", "CAST", "LIBRARY"]) {
            Some((n, _)) => (ObjectKind::Routine, format!("{} {n}", kind.label())),
            None => (ObjectKind::Routine, format!("{} {}", kind.label(), head())),
        },
        Class::Index => {
            let index = name_after(&["INDEX"]).filter(|(n, _)| !n.name.eq_ignore_ascii_case("ON")).map(|(n, _)| n.name);
            let table = (0..t.len()).find(|&k| t.is_word(k, "ON")).and_then(|k| read_object_name(&t, k + 1)).map(|(n, _)| n);
            match table {
                Some(tb) => (ObjectKind::Index, format!("{tb}.{}", index.unwrap_or_else(|| "unnamed".into()))),
                None => (ObjectKind::Index, index.unwrap_or_else(head)),
            }
        }
        Class::AlterTable => {
            let Some((table, _)) = name_after(&["TABLE"]) else { return (ObjectKind::Statement, head()) };
            if let Some(r) = (0..t.len()).find(|&k| t.is_word(k, "REFERENCES")) {
                let target = read_object_name(&t, r + 1).map(|(n, _)| n.to_string()).unwrap_or_default();
                return (ObjectKind::ForeignKey, format!("{table} → {target}"));
            }
            if (0..t.len()).any(|k| t.is_word(k, "PRIMARY")) {
                return (ObjectKind::Constraint, format!("{table} primary key"));
            }
            if (0..t.len()).any(|k| t.is_word(k, "UNIQUE") || t.is_word(k, "CHECK")) {
                let cname = (0..t.len()).find(|&k| t.is_word(k, "CONSTRAINT")).and_then(|k| read_object_name(&t, k + 1)).map(|(n, _)| n.name);
                return (ObjectKind::Constraint, format!("{table} constraint {}", cname.unwrap_or_default()));
            }
            (ObjectKind::Statement, head())
        }
        Class::Comment => (ObjectKind::Comment, head()),
        _ => (ObjectKind::Statement, head()),
    }
}

/// The name, type text, NOT NULL and PRIMARY KEY of a column definition
/// that does not parse (tokens `a..b`); None for table constraints.
fn salvage_column(t: &Tokens, a: usize, b: usize, dialect: Dialect) -> Option<(String, String, bool, bool)> {
    let first = t.next_sig(a).filter(|&f| f < b)?;
    let name = match &t.toks[first] {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) if !["CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "EXCLUDE", "PERIOD", "LIKE"].iter().any(|k| w.value.eq_ignore_ascii_case(k)) => w.value.clone(),
        _ => return None,
    };
    let mut end = first + 1;
    let mut k = first + 1;
    while let Some(n) = t.next_sig(k).filter(|&n| n < b) {
        match &t.toks[n] {
            Token::Word(w) if w.quote_style.is_none() && rewrite::COLUMN_CLAUSE_WORDS.iter().any(|x| w.value.eq_ignore_ascii_case(x)) && !rewrite::is_type_word(t, n) => break,
            Token::Word(_) | Token::Number(..) => end = n + 1,
            Token::LParen => {
                end = t.matching_paren(n).map(|c| c + 1).unwrap_or(b).min(b);
            }
            Token::LBracket | Token::RBracket | Token::Period => end = n + 1,
            _ => break,
        }
        k = end.max(n + 1);
    }
    let type_text = t.render_range(first + 1, end).trim().to_string();
    let rest: Vec<String> = (end..b).filter_map(|i| t.word(i).map(|w| w.to_ascii_uppercase())).collect();
    let not_null = rest.windows(2).any(|w| w[0] == "NOT" && w[1] == "NULL");
    let pk = rest.windows(2).any(|w| w[0] == "PRIMARY" && w[1] == "KEY");
    let _ = dialect;
    Some((name, type_text, not_null, pk))
}

/// Words that start a statement in a batch without semicolons.
const STATEMENT_STARTS: &[&str] = &[
    "CREATE", "ALTER", "INSERT", "UPDATE", "DELETE", "DROP", "GRANT", "REVOKE", "EXEC", "EXECUTE", "SET", "PRINT", "DECLARE",
    "USE", "COMMENT", "TRUNCATE", "MERGE", "DENY",
];

/// Cuts a statement before each statement keyword that begins a line at
/// paren depth 0 (strings and quoted names are single tokens, so they are
/// never cut). `IF ... BEGIN ... END` blocks are left whole.
fn split_at_statement_starts(st: &Statement, dialect: Dialect) -> Vec<Statement> {
    let d = rewrite::sql_dialect(dialect);
    let Some(t) = Tokens::new(&*d, &st.text) else { return Vec::new() };
    if t.next_sig(0).is_some_and(|f| ["IF", "BEGIN", "WHILE"].iter().any(|w| t.is_word(f, w))) {
        return Vec::new();
    }
    let mut cuts = vec![0usize];
    let mut depth = 0i32;
    let mut line_start = true;
    for (i, tok) in t.toks.iter().enumerate() {
        match tok {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Whitespace(sqlparser::tokenizer::Whitespace::Newline) => {
                line_start = true;
                continue;
            }
            Token::Whitespace(_) => continue,
            _ => {}
        }
        if line_start && depth == 0 && i > 0 && STATEMENT_STARTS.iter().any(|w| t.is_word(i, w)) {
            // Not the second half of a two-word clause (`ON DELETE SET NULL`).
            let prev_is_keyword = t.prev_sig(i).is_some_and(|p| ["ON", "DELETE", "UPDATE", "FOR", "WITH"].iter().any(|w| t.is_word(p, w)));
            if !prev_is_keyword {
                cuts.push(i);
            }
        }
        line_start = false;
    }
    if cuts.len() < 2 {
        return Vec::new();
    }
    cuts.push(t.len());
    cuts.windows(2)
        .map(|w| {
            let text = t.render_range(w[0], w[1]).trim().trim_end_matches(';').trim().to_string();
            let line = st.line + t.render_range(0, w[0]).matches('\n').count();
            let leading = t.render_range(w[0], w[1]);
            let skipped = leading.len() - leading.trim_start().len();
            let line = line + leading[..skipped].matches('\n').count();
            Statement::new(text.clone(), text, line)
        })
        .filter(|s| !s.text.is_empty())
        .collect()
}

/// Reads one `CREATE INDEX` statement (as `pg_get_indexdef` or
/// `sqlite_master` give it) into the model: the table it is on, and the index.
pub fn parse_index_definition(sql: &str, dialect: Dialect) -> Option<(QualifiedName, Index)> {
    let r = Reader::new(dialect);
    let p = rewrite::prepare(dialect, sql);
    let asts = r.parse_prepared(&p).ok()?;
    match asts.into_iter().next()? {
        Ast::CreateIndex(ci) => Some(r.index_from_ast(&p, &ci, 0)),
        _ => None,
    }
}

/// Reads a column default as the catalog gives it (`pg_get_expr`,
/// `sqlite_master`) into the model.
pub fn parse_default(sql: &str, dialect: Dialect) -> DefaultValue {
    let d = rewrite::sql_dialect(dialect);
    match rewrite::parse_expr(&*d, sql) {
        Ok(e) => expr::classify_default(&e, dialect),
        Err(_) => DefaultValue::Expression(SqlText::new(sql, dialect)),
    }
}

fn spec_source_text(type_text: &str, spec: &typetext::TypeSpec) -> String {
    // Keep the type as written, plus attributes the rules may match on.
    let mut s = type_text.to_string();
    if spec.collation.as_deref() == Some("binary") && !s.to_ascii_lowercase().contains("binary") {
        s.push_str(" BINARY");
    }
    s
}

fn replace_value_keyword(check: &str, column: &str) -> String {
    // Domain checks say VALUE; on a column they say the column's name.
    let mut out = String::new();
    let mut word = String::new();
    for ch in check.chars().chain(std::iter::once(' ')) {
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
        } else {
            if word.eq_ignore_ascii_case("value") {
                out.push_str(column);
            } else {
                out.push_str(&word);
            }
            word.clear();
            out.push(ch);
        }
    }
    out.pop();
    out
}

fn prefix_arg(f: &ast::Function) -> Option<u32> {
    match &f.args {
        ast::FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
                ast::Value::Number(n, _) => n.to_string().parse().ok(),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn index_cols(cols: &[ast::IndexColumn]) -> Vec<String> {
    cols.iter()
        .map(|ic| match &ic.column.expr {
            Expr::Identifier(i) => i.value.clone(),
            Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
            Expr::Function(f) => ident_parts(&f.name).join("."),
            e => e.to_string(),
        })
        .collect()
}

/// A foreign key from either its column or its table form.
fn foreign_key(fk: &ast::ForeignKeyConstraint, columns: Vec<String>, p: &Prepared, line: usize) -> ForeignKey {
    let (deferrable, initially_deferred) = characteristics(&fk.characteristics);
    ForeignKey {
        name: fk.name.as_ref().map(|n| n.value.clone()),
        columns,
        ref_table: qname(&fk.foreign_table),
        ref_columns: fk.referred_columns.iter().map(|i| i.value.clone()).collect(),
        on_delete: fk.on_delete.map(ref_action),
        on_update: fk.on_update.map(ref_action),
        deferrable,
        initially_deferred,
        validated: !p.not_validated,
        origin: Origin { line },
    }
}

fn ref_action(a: ReferentialAction) -> RefAction {
    match a {
        ReferentialAction::Restrict => RefAction::Restrict,
        ReferentialAction::Cascade => RefAction::Cascade,
        ReferentialAction::SetNull => RefAction::SetNull,
        ReferentialAction::NoAction => RefAction::NoAction,
        ReferentialAction::SetDefault => RefAction::SetDefault,
    }
}

fn characteristics(c: &Option<ast::ConstraintCharacteristics>) -> (bool, bool) {
    match c {
        Some(c) => (
            c.deferrable == Some(true),
            matches!(c.initially, Some(ast::DeferrableInitial::Deferred)),
        ),
        None => (false, false),
    }
}

fn expr_i128(e: &Expr) -> Option<i128> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.to_string().parse().ok(),
            _ => None,
        },
        Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => expr_i128(expr).map(|v| -v),
        _ => None,
    }
}

fn sequence_opts(opts: &[ast::SequenceOptions]) -> (Option<i128>, Option<i128>, Option<QualifiedName>) {
    let mut start = None;
    let mut inc = None;
    for o in opts {
        match o {
            ast::SequenceOptions::StartWith(e, _) => start = expr_i128(e),
            ast::SequenceOptions::IncrementBy(e, _) => inc = expr_i128(e),
            _ => {}
        }
    }
    (start, inc, None)
}

fn identity_params(kind: &ast::IdentityPropertyKind) -> (Option<i128>, Option<i128>) {
    let prop = match kind {
        ast::IdentityPropertyKind::Autoincrement(p) | ast::IdentityPropertyKind::Identity(p) => p,
    };
    match &prop.parameters {
        Some(ast::IdentityPropertyFormatKind::FunctionCall(p)) | Some(ast::IdentityPropertyFormatKind::StartAndIncrement(p)) => {
            (expr_i128(&p.seed), expr_i128(&p.increment))
        }
        None => (None, None),
    }
}

/// Reads `a`, `a.b` or `a.b.c` from significant tokens starting at `i`.
fn read_object_name_parts(t: &Tokens, i: usize) -> Option<(Vec<String>, usize)> {
    let mut parts = Vec::new();
    let mut k = t.next_sig(i)?;
    loop {
        match t.toks.get(k) {
            Some(Token::Word(w)) => parts.push(w.value.clone()),
            _ => break,
        }
        let n = k + 1;
        if t.is_char(n, &Token::Period) {
            k = n + 1;
            continue;
        }
        return Some((parts, n));
    }
    if parts.is_empty() {
        None
    } else {
        Some((parts, k))
    }
}

fn read_object_name(t: &Tokens, i: usize) -> Option<(QualifiedName, usize)> {
    let (parts, after) = read_object_name_parts(t, i)?;
    let n = parts.len();
    let q = if n >= 2 { QualifiedName::new(Some(&parts[n - 2]), &parts[n - 1]) } else { QualifiedName::bare(&parts[0]) };
    Some((q, after))
}

fn number_at(t: &Tokens, i: usize) -> Option<i128> {
    let k = t.next_sig(i)?;
    let (neg, k) = if t.is_char(k, &Token::Minus) { (true, t.next_sig(k + 1)?) } else { (false, k) };
    match &t.toks[k] {
        Token::Number(n, _) => n.parse::<i128>().ok().map(|v| if neg { -v } else { v }),
        _ => None,
    }
}

fn read_sequence_options(t: &Tokens, from: usize, s: &mut Sequence) {
    let mut k = from;
    while k < t.len() {
        if let Some(j) = t.match_words(k, &["START", "WITH"]).or_else(|| t.match_words(k, &["START"])) {
            s.start = number_at(t, j).or(s.start);
        } else if let Some(j) = t.match_words(k, &["INCREMENT", "BY"]).or_else(|| t.match_words(k, &["INCREMENT"])) {
            s.increment = number_at(t, j).or(s.increment);
        } else if let Some(j) = t.match_words(k, &["MINVALUE"]) {
            s.min = number_at(t, j);
        } else if let Some(j) = t.match_words(k, &["MAXVALUE"]) {
            s.max = number_at(t, j);
        } else if let Some(j) = t.match_words(k, &["CACHE"]) {
            s.cache = number_at(t, j);
        } else if t.is_word(k, "CYCLE") && !t.prev_sig(k).is_some_and(|p| t.is_word(p, "NO")) {
            s.cycle = true;
        } else if let Some(j) = t.match_words(k, &["RESTART", "WITH"]) {
            s.start = number_at(t, j).or(s.start);
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_mysql_script() {
        let out = read_script(
            "CREATE TABLE `a` (`id` int unsigned NOT NULL AUTO_INCREMENT, `f` tinyint(1) NOT NULL DEFAULT 0, PRIMARY KEY (`id`), KEY `k` (`f`)) ENGINE=InnoDB;\nINSERT INTO a VALUES (1,1);\nCREATE TABLE b (x int, CONSTRAINT fk FOREIGN KEY (x) REFERENCES a (id) ON DELETE CASCADE);",
            Dialect::Mysql,
        );
        let s = &out.schema;
        assert_eq!(s.tables.len(), 2);
        let a = &s.tables[0];
        assert_eq!(a.primary_key.as_ref().unwrap().columns, vec!["id"]);
        assert_eq!(a.columns[0].identity.as_ref().unwrap().kind, IdentityKind::AutoIncrement);
        assert_eq!(a.columns[1].default, Some(DefaultValue::Number("0".into())));
        assert_eq!(a.indexes.len(), 1);
        assert_eq!(s.tables[1].foreign_keys[0].on_delete, Some(RefAction::Cascade));
        assert_eq!(out.report.skipped.get("B010"), Some(&1));
    }

    #[test]
    fn garbage_becomes_an_action_item() {
        let out = read_script("CREATE TABLE (;\nCREATE TABLE ok (a int);", Dialect::Postgres);
        assert_eq!(out.schema.tables.len(), 1);
        assert_eq!(out.leftovers.len(), 1);
        assert_eq!(out.report.items[0].code, "B001");
    }
}
