//! `barge advise`: network or disks?

use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// Amount of data, e.g. 80TB
    #[arg(long)]
    pub size: Option<String>,
    /// Link speed, e.g. 1Gbps
    #[arg(long)]
    pub bandwidth: Option<String>,
}

pub fn run(_args: AdviseArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "advise" })
}
