//! `barge migrate` and `barge validate`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to read from: postgres://, mysql://, sqlite:
    pub source: String,
    /// Where to write to: postgres://, mysql://, sqlite:, s3://, file://, kinesis://, kafka://
    pub target: String,
    /// What to move: the existing rows, then (with CDC) the changes that follow
    #[arg(long, value_enum, default_value_t = Mode::FullLoad)]
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    FullLoad,
    FullLoadAndCdc,
    Cdc,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The source database URL
    pub source: String,
    /// The target database URL
    pub target: String,
}

pub fn run(_args: MigrateArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "migrate" })
}

pub fn run_validate(_args: ValidateArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "validate" })
}
