//! The command-line definition. One clap definition drives `--help`, the man
//! pages in `man/` and shell completions, so they can never disagree.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands;

/// Move databases and bulk data between systems: convert schemas between SQL
/// dialects, copy a live database with full load plus change data capture,
/// and ship terabytes on encrypted disks.
#[derive(Debug, Parser)]
#[command(name = "barge", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print a machine-readable JSON result on stdout instead of tables and progress bars
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to use colors and progress bars
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert DDL from one SQL dialect to another and write an assessment report
    #[command(name = "convert-schema")]
    ConvertSchema(commands::convert::ConvertArgs),
    /// Copy a database to another database, S3 or a stream: full load, then change data capture
    Migrate(commands::migrate::MigrateArgs),
    /// Compare a source and a target: row counts and per-range checksums
    Validate(commands::migrate::ValidateArgs),
    /// Write a directory tree or a database onto attached disks as an encrypted, checksummed image
    Pack(commands::pack::PackArgs),
    /// Restore a packed image to a directory, object storage or a database
    Unpack(commands::pack::UnpackArgs),
    /// Check a packed image: sizes and checksums without the key, or every byte with --deep
    Verify(commands::pack::VerifyArgs),
    /// Estimate whether to send data over the network or ship it on disks
    Advise(commands::advise::AdviseArgs),
    /// Show a migration's progress: tables loaded, changes applied, lag
    Status(commands::cdc::StatusArgs),
    /// Remove what change capture installed on a source (PostgreSQL slot and publication, SQLite triggers)
    Cleanup(commands::cdc::CleanupArgs),
    /// Generate man pages or shell completions from this command-line definition
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Write one man page per command into DIR
    Man { dir: std::path::PathBuf },
    /// Print a completion script for SHELL on stdout
    Completions { shell: clap_complete::Shell },
}

pub fn parse() -> Cli {
    Cli::parse()
}

/// The clap command tree, for generators and tests.
pub fn command() -> clap::Command {
    Cli::command()
}
