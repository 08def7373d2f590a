//! Typed errors. Each one says what failed and where; `hint` says what to do
//! next. `commands::output::report_error` prints them and maps them to exit
//! codes through [`Error::exit_code`].

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, stable for scripts.
pub mod exit {
    pub const FAILURE: u8 = 1;
    /// Bad usage, or a command that is not implemented yet.
    pub const USAGE: u8 = 2;
    /// The command ran, and found a difference or corruption.
    pub const MISMATCH: u8 = 3;
    /// Stopped by Ctrl-C; rerun the same command to resume.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    /// A usage error with advice of its own (instead of "see --help").
    #[error("{message}")]
    UsageWithHint { message: String, hint: String },

    #[error("`barge {command}` is not implemented yet")]
    NotImplemented { command: &'static str },

    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error("invalid endpoint URL `{url}`: {reason}")]
    Url { url: String, reason: String, hint: Option<String> },

    /// A problem in a file the user gave us, with its position.
    #[error("{file}:{line}: {message}")]
    Input { file: String, line: usize, message: String, hint: Option<String> },

    /// A mistake at a known place in a file the user wrote to configure a
    /// run (a table mapping): `file:line:column`, as compilers print it.
    #[error("{file}:{line}:{column}: {message}")]
    At { file: String, line: usize, column: usize, message: String, hint: Option<String> },

    /// A failure talking to a database, bucket or stream. `endpoint` is
    /// always the redacted URL.
    #[error("{endpoint}: {message}")]
    Endpoint { endpoint: String, message: String, hint: Option<String> },

    /// A failure tied to one table (and maybe one row) during a data move.
    #[error("table {table}{}: {message}", row.as_ref().map(|r| format!(", row {r}")).unwrap_or_default())]
    Table { table: String, row: Option<String>, message: String, hint: Option<String> },

    /// The data on both sides, or a packed image, does not match.
    #[error("{0}")]
    Mismatch(String),

    #[error("interrupted; rerun the same command to resume")]
    Interrupted,

    #[error("{message}")]
    Other { message: String, hint: Option<String> },

    /// A worker's lease passed to another worker, which wrote first: the
    /// target refused this one's writes (see `coord::fence`).
    #[error("task {task}, unit {unit}: this worker's lease (epoch {epoch}) was taken over (the target holds epoch {found}); its writes were refused")]
    Fenced { task: String, unit: i64, epoch: i64, found: String },

    /// An error that may pass if the work is tried again (a connection
    /// refused or lost, a server restarting, a deadlock), marked where a
    /// driver's error becomes barge's, from the driver's codes (see
    /// `util::retry`). Shown, hinted and exited as the error it wraps.
    #[error(transparent)]
    Retriable(Box<Error>),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn other(msg: impl Into<String>) -> Self {
        Error::Other { message: msg.into(), hint: None }
    }

    /// Marks the error as one that may pass if retried, when `transient`
    /// says so (from `util::retry::Retriable`, or barge's own timeout).
    pub fn retriable_if(self, transient: bool) -> Self {
        match self {
            Error::Retriable(_) => self,
            e if transient => Error::Retriable(Box::new(e)),
            e => e,
        }
    }

    /// May the work that failed succeed if tried again?
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Retriable(_))
    }

    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        if let Error::Retriable(inner) = self {
            return Error::Retriable(Box::new(inner.with_hint(h)));
        }
        if let Error::Usage(message) = self {
            return Error::UsageWithHint { message, hint: h.into() };
        }
        let h = Some(h.into());
        match &mut self {
            Error::Url { hint, .. }
            | Error::Input { hint, .. }
            | Error::At { hint, .. }
            | Error::Endpoint { hint, .. }
            | Error::Table { hint, .. }
            | Error::Other { hint, .. } => *hint = h,
            _ => {}
        }
        self
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Retriable(inner) => inner.hint(),
            Error::Url { hint, .. }
            | Error::Input { hint, .. }
            | Error::At { hint, .. }
            | Error::Endpoint { hint, .. }
            | Error::Table { hint, .. }
            | Error::Other { hint, .. } => hint.clone(),
            Error::NotImplemented { .. } => {
                Some("this subcommand is planned; see README.md for what works today".into())
            }
            Error::Usage(_) => Some("run with --help for usage".into()),
            Error::UsageWithHint { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Retriable(inner) => inner.exit_code(),
            Error::Usage(_) | Error::UsageWithHint { .. } | Error::NotImplemented { .. } | Error::Url { .. } | Error::At { .. } => exit::USAGE,
            Error::Mismatch(_) => exit::MISMATCH,
            Error::Interrupted => exit::INTERRUPTED,
            _ => exit::FAILURE,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Retriable(inner) => inner.kind(),
            Error::Usage(_) | Error::UsageWithHint { .. } => "usage",
            Error::NotImplemented { .. } => "not-implemented",
            Error::Read { .. } => "read",
            Error::Write { .. } => "write",
            Error::Url { .. } => "url",
            Error::Input { .. } | Error::At { .. } => "input",
            Error::Endpoint { .. } => "endpoint",
            Error::Table { .. } => "table",
            Error::Mismatch(_) => "mismatch",
            Error::Interrupted => "interrupted",
            Error::Other { .. } => "error",
            Error::Fenced { .. } => "fenced",
        }
    }
}


#[cfg(test)]
mod usage_hint_tests {
    use super::*;

    #[test]
    fn a_usage_error_keeps_the_advice_given_to_it() {
        let e = Error::usage("--report x.pdf: unknown").with_hint("name the report FILE.md");
        assert_eq!(e.hint().as_deref(), Some("name the report FILE.md"));
        assert_eq!(e.exit_code(), exit::USAGE);
        assert_eq!(e.kind(), "usage");
        assert_eq!(e.to_string(), "--report x.pdf: unknown");
        assert_eq!(Error::usage("x").hint().as_deref(), Some("run with --help for usage"));
    }
}
