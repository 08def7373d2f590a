//! barge as a library: the CLI binary is a thin shell over [`run`].

pub mod advise;
pub mod cdc;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod coord;
pub mod db;
pub mod endpoint;
pub mod error;
pub mod metrics;
pub mod model;
pub mod output;
pub mod pack;
pub mod progress;
pub mod schema;
pub mod sink;
pub mod source;
pub mod task;
pub mod transform;
pub mod transfer;
pub mod util;

use std::process::ExitCode;

pub use error::{Error, Result};

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> Result<ExitCode> {
    commands::output::init(&cli.global);
    commands::dispatch(cli)
}
