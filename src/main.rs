//! barge: move databases and bulk data between systems.
//!
//! `main` only parses, runs and maps the outcome to an exit code; everything
//! else lives in the library crate so tests and other front ends can reuse it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = barge::cli::parse();
    let json = cli.global.json;
    match barge::run(cli) {
        Ok(code) => code,
        Err(err) => barge::commands::output::report_error(&err, json),
    }
}
