//! Schema conversion: script front end, AST to IR, type rules, naming,
//! per-target DDL emitters and the assessment report.
