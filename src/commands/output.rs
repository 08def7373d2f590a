//! Where human-readable messages go, decided once from the global flags.
//! Results go to stdout; progress, warnings and chatter go to stderr, so
//! `--json` output and piped DDL stay clean.
//!
//! The library never prints: it emits `tracing` events, and [`init`]
//! installs [`Console`], which prints barge's own events (not its
//! dependencies') as the lines below: `info!` as a status line, `debug!` with
//! -v, `warn!` with the "warning:" prefix; -q silences them all.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{span, Event, Level, Metadata, Subscriber};

use crate::cli::{ColorChoice, GlobalArgs};
use crate::error::Error;

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
    // A second call (tests running several commands in one process) keeps the first.
    let _ = tracing::subscriber::set_global_default(Console);
}

pub fn get() -> Output {
    *OUTPUT.get_or_init(|| Output { json: false, verbosity: 0, color: false, progress: false })
}

/// One line of a command's answer on stdout. A reader that went away
/// (`barge status --json | head`) ends the command quietly, as a closed
/// pipe ends any Unix tool, where `println!` would panic.
pub fn out_line(text: &str) {
    use std::io::Write;
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `println!` for a command's answer: [`out_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::commands::output::out_line(&format!($($arg)*)) };
}

/// A normal status line on stderr; silenced by -q.
pub fn info(msg: impl AsRef<str>) {
    if get().verbosity >= 0 {
        line(msg.as_ref());
    }
}

/// Detail shown with -v.
pub fn verbose(msg: impl AsRef<str>) {
    if get().verbosity >= 1 {
        line(msg.as_ref());
    }
}

/// A warning on stderr; silenced by -q.
pub fn warn(msg: impl AsRef<str>) {
    if get().verbosity >= 0 {
        let o = get();
        if o.color {
            line(&format!("\x1b[33mwarning:\x1b[0m {}", msg.as_ref()));
        } else {
            line(&format!("warning: {}", msg.as_ref()));
        }
    }
}

/// One line on stderr, above the progress bars when they are drawn (so
/// neither tears the other).
fn line(text: &str) {
    super::bars::suspend(|| eprintln!("{text}"));
}

/// Prints the error (and its hint) the way the user asked for, and returns
/// the exit code. With `--json`, stdout also gets one JSON object, so a
/// script reading stdout always gets a parseable answer.
pub fn report_error(err: &Error, json: bool) -> ExitCode {
    let hint = err.hint();
    if json {
        let v = serde_json::json!({
            "ok": false,
            "error": { "kind": err.kind(), "message": err.to_string(), "hint": hint },
        });
        out_line(&v.to_string());
    }
    // Broken pipes on stdout are not worth an error message.
    if let Error::Write { path, source } = err {
        if path.as_os_str() == "-" && source.kind() == io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
    }
    line(&format!("error: {err}"));
    if let Some(h) = hint {
        line(&format!("  hint: {h}"));
    }
    ExitCode::from(err.exit_code())
}

/// The subscriber that turns the library's events into the lines above.
/// Hand-written: tracing-subscriber's formatter and filters would be built
/// only to print one line per event, and spans are not used.
pub struct Console;

impl Console {
    fn shown(level: &Level) -> bool {
        let needed = match *level {
            Level::ERROR | Level::WARN | Level::INFO => 0,
            Level::DEBUG => 1,
            Level::TRACE => 2,
        };
        get().verbosity >= needed
    }
}

/// The event's message, then any other fields as `name=value`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

impl Subscriber for Console {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target().starts_with("barge") && Console::shown(meta.level())
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match get().verbosity {
            i8::MIN..=-1 => LevelFilter::OFF,
            0 => LevelFilter::INFO,
            1 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        match *event.metadata().level() {
            Level::ERROR | Level::WARN => warn(msg.0),
            Level::INFO => info(msg.0),
            _ => verbose(msg.0),
        }
    }
    // Spans carry nothing barge prints.
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}
