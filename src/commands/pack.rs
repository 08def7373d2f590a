//! `barge pack`, `barge unpack` and `barge verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct PackArgs {
    /// A directory tree or a database URL to pack
    pub source: String,
    /// Mount points of the attached disks to fill, in order
    #[arg(required = true)]
    pub dest: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// Mount points holding the image, then the target (a directory, s3://, file:// or a database URL)
    #[arg(required = true, num_args = 2..)]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Decrypt everything and check plaintext hashes (needs the passphrase)
    #[arg(long)]
    pub deep: bool,
    /// Mount points holding the image
    #[arg(required = true)]
    pub devices: Vec<PathBuf>,
}

pub fn run_pack(_args: PackArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "pack" })
}

pub fn run_unpack(_args: UnpackArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "unpack" })
}

pub fn run_verify(_args: VerifyArgs) -> Result<ExitCode> {
    Err(Error::NotImplemented { command: "verify" })
}
