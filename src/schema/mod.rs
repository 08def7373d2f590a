//! Schema conversion: script front end, AST to IR, type rules, naming,
//! per-target DDL emitters and the assessment report.

pub mod check;
pub mod script;
pub mod typetext;
pub mod rewrite;
pub mod tokens;
pub mod expr;
pub mod hierarchy;
pub mod reader;
pub mod report;
pub mod report_html;
pub mod convert;
pub mod ddl;
pub mod naming;
pub mod rules;
pub mod target;
pub mod typemap;

use crate::model::{Dialect, Schema};

/// A whole script conversion: the output, the plan behind it and the
/// model read from the input.
pub struct ScriptConversion {
    pub ddl: String,
    pub converted: convert::Converted,
    pub schema: Schema,
    /// Read counts (statements seen and recognised), to tell DDL from
    /// input that is not a script in the source dialect.
    pub statements: usize,
    pub recognized: usize,
    /// Set when the output could not be checked (the check, not a
    /// statement, failed).
    pub check_error: Option<String>,
    header: String,
}

/// Reads a script in `opts.source` and converts it to `opts.target`:
/// the whole of `convert-schema` minus file handling. Output for SQLite
/// is checked in an in-memory database, which costs nothing; other
/// targets are checked with [`ScriptConversion::check_against`].
pub fn convert_script(text: &str, input_label: &str, opts: &convert::ConvertOptions) -> ScriptConversion {
    // Deeply nested expressions recurse while they are rewritten too.
    let (read, converted) = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("barge-convert".into())
            .stack_size(reader::STACK_SIZE)
            .spawn_scoped(scope, || {
                let read = reader::read_script(text, opts.source);
                let mut report = read.report;
                report.input = input_label.to_string();
                let converted = convert::convert(&read.schema, &read.leftovers, report, opts);
                ((read.schema, read.statements, read.recognized), converted)
            })
            .expect("spawn the conversion thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let header = format!(
        "Converted by barge {} from {} to {}\nSource: {}\nRun the statements in order; items marked in the assessment report need review.",
        env!("CARGO_PKG_VERSION"),
        opts.source,
        opts.target,
        input_label
    );
    let mut out = ScriptConversion { ddl: String::new(), converted, schema: read.0, statements: read.1, recognized: read.2, check_error: None, header };
    if opts.target == Dialect::Sqlite {
        let statements = out.statements_sql();
        match check::in_memory_sqlite_blocking(&statements) {
            Ok(refusals) => out.apply(&refusals),
            Err(e) => out.check_error = Some(e.to_string()),
        }
    }
    out.ddl = ddl::render(&out.converted.target, &out.converted.names, &out.header);
    out
}

impl ScriptConversion {
    /// The output's statements, in order, as they would run.
    pub fn statements_sql(&self) -> Vec<String> {
        ddl::emitted(&self.converted.target, &self.converted.names).into_iter().map(|e| e.sql).collect()
    }

    fn apply(&mut self, refusals: &[check::Refusal]) {
        let emitted = ddl::emitted(&self.converted.target, &self.converted.names);
        convert::apply_refusals(&mut self.converted, &emitted, refusals);
    }

    /// Checks the output on a real target server (`--check URL`) and
    /// records what it refused; the DDL is printed again to match.
    pub fn check_against(&mut self, url: &str) -> crate::error::Result<usize> {
        let statements = self.statements_sql();
        let refusals = check::against_url_blocking(url, self.converted.target.target, &statements)?;
        self.apply(&refusals);
        self.ddl = ddl::render(&self.converted.target, &self.converted.names, &self.header);
        Ok(refusals.len())
    }
}

/// Parses `--from`/`--to` values.
pub fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse()
}
