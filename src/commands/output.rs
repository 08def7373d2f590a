//! Where human-readable messages go, decided once from the global flags.
//! Results go to stdout; progress, warnings and chatter go to stderr, so
//! `--json` output and piped DDL stay clean.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::cli::{ColorChoice, GlobalArgs};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub verbosity: i8,
    pub color: bool,
    /// Progress bars only make sense on a terminal, and never with --json.
    pub progress: bool,
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

pub fn init(g: &GlobalArgs) {
    let tty = std::io::stderr().is_terminal();
    let color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
    };
    let verbosity = if g.quiet { -1 } else { g.verbose.min(3) as i8 };
    let _ = OUTPUT.set(Output { json: g.json, verbosity, color, progress: tty && !g.json && !g.quiet });
}

pub fn get() -> Output {
    *OUTPUT.get_or_init(|| Output { json: false, verbosity: 0, color: false, progress: false })
}

/// A normal status line on stderr; silenced by -q.
pub fn info(msg: impl AsRef<str>) {
    if get().verbosity >= 0 {
        eprintln!("{}", msg.as_ref());
    }
}

/// Detail shown with -v.
pub fn verbose(msg: impl AsRef<str>) {
    if get().verbosity >= 1 {
        eprintln!("{}", msg.as_ref());
    }
}

/// A warning on stderr; silenced by -q.
pub fn warn(msg: impl AsRef<str>) {
    if get().verbosity >= 0 {
        let o = get();
        if o.color {
            eprintln!("\x1b[33mwarning:\x1b[0m {}", msg.as_ref());
        } else {
            eprintln!("warning: {}", msg.as_ref());
        }
    }
}
