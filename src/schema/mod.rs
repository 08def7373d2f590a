//! Schema conversion: script front end, AST to IR, type rules, naming,
//! per-target DDL emitters and the assessment report.

pub mod script;
pub mod typetext;
pub mod rewrite;
pub mod tokens;
pub mod expr;
pub mod reader;
pub mod report;
pub mod convert;
pub mod ddl;
pub mod naming;
pub mod rules;
pub mod target;
pub mod typemap;

use crate::model::{Dialect, Schema};

/// Options for a whole script conversion.
pub struct ScriptConversion {
    pub ddl: String,
    pub converted: convert::Converted,
    pub schema: Schema,
}

/// Reads a script in `opts.source` and converts it to `opts.target`:
/// the whole of `convert-schema` minus file handling.
pub fn convert_script(text: &str, input_label: &str, opts: &convert::ConvertOptions) -> ScriptConversion {
    let read = reader::read_script(text, opts.source);
    let mut report = read.report;
    report.input = input_label.to_string();
    let converted = convert::convert(&read.schema, &read.leftovers, report, opts);
    let header = format!(
        "Converted by barge {} from {} to {}\nSource: {}\nRun the statements in order; items marked in the assessment report need review.",
        env!("CARGO_PKG_VERSION"),
        opts.source,
        opts.target,
        input_label
    );
    let ddl = ddl::render(&converted.target, &converted.names, &header);
    ScriptConversion { ddl, converted, schema: read.schema }
}

/// Parses `--from`/`--to` values.
pub fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse()
}
