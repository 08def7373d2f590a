//! `barge convert-schema`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source dialect: mysql (or mariadb), postgres, sqlite, mssql, oracle
    #[arg(long)]
    pub from: String,
    /// Target dialect: postgres, mysql, sqlite
    #[arg(long)]
    pub to: String,
    /// DDL script to convert, or - for stdin
    pub input: PathBuf,
}

pub fn run(_args: ConvertArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "convert-schema" })
}
