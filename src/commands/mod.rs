//! One module per subcommand. Each owns its clap `Args` struct and a `run`
//! function; `dispatch` is the only place that knows them all. The terminal
//! is here too, and only here: `output` (messages, the subscriber that
//! prints the library's events, errors and exit codes), `bars` (progress)
//! and `interrupt` (Ctrl-C becomes the library's stop request).

pub mod advise;
pub mod bars;
pub mod cdc;
pub mod convert;
pub mod generate;
pub mod interrupt;
pub mod metrics;
pub mod migrate;
pub mod output;
pub mod pack;
pub mod pack_shared;
pub mod records;
pub mod sink_args;
pub mod sql_args;
pub mod validate_shared;
pub mod watch;
pub mod worker;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::Result;

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::ConvertSchema(args) => convert::run(args),
        Command::Migrate(args) => migrate::run(*args),
        Command::Validate(args) => migrate::run_validate(args),
        Command::Pack(args) => pack::run_pack(args),
        Command::Unpack(args) => pack::run_unpack(args),
        Command::Verify(args) => pack::run_verify(args),
        Command::Advise(args) => advise::run(args),
        Command::Status(args) => cdc::run_status(args),
        Command::Worker(args) => worker::run(args),
        Command::Cleanup(args) => cdc::run_cleanup(args),
        Command::Generate(args) => generate::run(args),
    }
}
