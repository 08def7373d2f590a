//! Schema conversion: script front end, AST to IR, type rules, naming,
//! per-target DDL emitters and the assessment report.

pub mod script;
pub mod typetext;
pub mod rewrite;
pub mod tokens;
pub mod expr;
pub mod reader;
pub mod report;
