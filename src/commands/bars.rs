//! Progress bars (indicatif) on stderr: the terminal side of the library's
//! [`Progress`] trait.
//!
//! The live area holds the overall bar on top, then the tables in flight,
//! then the phase running now (a spinner). A finished bar or phase leaves
//! the live area and is printed once above it as a line of its own
//! (`public.orders   3.0M rows in 3.8s, 798k rows/s`), so a run of
//! thousands of tables does not outgrow the screen. Figures are formatted
//! by [`crate::util::human`], through template keys of our own.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::progress::{Progress, Silent, Task, Unit};
use crate::util::human::{self, Measure};

/// The one live area of the process: `migrate --validate` draws the load
/// and then the validation in it, and [`suspend`] keeps status lines from
/// tearing through the bars.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)))
}

/// Runs `f` (which writes to stderr) with the bars cleared, then redraws
/// them. Without bars on screen it just runs `f`.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    if super::output::get().progress {
        multi().suspend(f)
    } else {
        f()
    }
}

/// indicatif multi-progress on stderr.
#[derive(Default)]
pub struct Bars;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Task,
    Overall,
    Phase,
}

struct BarTask {
    bar: ProgressBar,
    unit: Unit,
    shape: Shape,
}

fn measure(unit: Unit) -> Measure {
    match unit {
        Unit::Rows => Measure::Rows,
        Unit::Bytes => Measure::Bytes,
        Unit::Items => Measure::Items,
    }
}

/// The line a finished task or phase leaves above the live area.
fn done_line(name: &str, shape: Shape, unit: Unit, pos: u64, elapsed: Duration, msg: &str) -> String {
    let took = human::duration(elapsed.as_secs_f64());
    let mut line = match shape {
        Shape::Phase => format!("{name:<28} done in {took}"),
        Shape::Task | Shape::Overall => {
            let secs = elapsed.as_secs_f64();
            let mut l = format!("{name:<28} {} in {took}", human::amount(pos, measure(unit)));
            if secs > 0.0 && unit != Unit::Items {
                l.push_str(", ");
                l.push_str(&human::rate(pos as f64 / secs, measure(unit)));
            }
            l
        }
    };
    if !msg.is_empty() {
        line.push_str("  ");
        line.push_str(msg);
    }
    line
}

impl Task for BarTask {
    fn inc(&self, n: u64) {
        self.bar.inc(n)
    }
    fn set_total(&self, total: u64) {
        self.bar.set_length(total)
    }
    fn set_message(&self, msg: &str) {
        self.bar.set_message(msg.to_string())
    }
    fn finish(&self, msg: &str) {
        if self.bar.is_finished() {
            return;
        }
        let line = done_line(&self.bar.prefix(), self.shape, self.unit, self.bar.position(), self.bar.elapsed(), msg);
        self.bar.finish_and_clear();
        multi().remove(&self.bar);
        let _ = multi().println(line);
    }
}

/// `done/total unit` with the total never below what is done (a catalog's
/// estimate is often short), or `done unit` without a total.
fn amount_key(unit: Unit) -> impl Fn(&ProgressState, &mut dyn std::fmt::Write) + Clone + Send + Sync + 'static {
    move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let pos = s.pos();
        let _ = match s.len() {
            Some(len) if len > 0 => {
                let total = human::amount(len.max(pos), measure(unit));
                let done = match unit {
                    Unit::Bytes => human::bytes(pos),
                    _ => human::count(pos),
                };
                write!(w, "{done}/{total}")
            }
            _ => write!(w, "{}", human::amount(pos, measure(unit))),
        };
    }
}

fn rate_key(unit: Unit) -> impl Fn(&ProgressState, &mut dyn std::fmt::Write) + Clone + Send + Sync + 'static {
    move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", human::rate(s.per_sec(), measure(unit)));
    }
}

fn took_key(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{}", human::duration(s.elapsed().as_secs_f64()));
}

fn style(template: &str, unit: Unit) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("amount", amount_key(unit))
        .with_key("rate", rate_key(unit))
        .with_key("took", took_key)
}

impl Bars {
    fn add(&self, name: &str, total: Option<u64>, unit: Unit, shape: Shape) -> Arc<dyn Task> {
        let template = match (shape, total) {
            (Shape::Phase, _) => "{spinner} {prefix}  {took}  {msg}",
            (Shape::Overall, _) => "{prefix:28!} {bar:30} {amount}  {rate}  eta {eta}  {msg}",
            (Shape::Task, Some(_)) => "{prefix:28!} {bar:30} {amount}  {rate}  eta {eta}  {msg}",
            (Shape::Task, None) => "{spinner} {prefix:26!} {amount}  {rate}  {took}  {msg}",
        };
        let bar = ProgressBar::new(total.unwrap_or(0));
        // The overall bar stays on top, whatever was drawn before it.
        let bar = if shape == Shape::Overall { multi().insert(0, bar) } else { multi().add(bar) };
        bar.set_style(style(template, unit));
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(125));
        Arc::new(BarTask { bar, unit, shape })
    }
}

impl Progress for Bars {
    fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Arc<dyn Task> {
        self.add(name, total, unit, Shape::Task)
    }
    fn overall(&self, name: &str, total: Option<u64>, unit: Unit) -> Arc<dyn Task> {
        self.add(name, total, unit, Shape::Overall)
    }
    fn phase(&self, name: &str) -> Arc<dyn Task> {
        self.add(name, None, Unit::Items, Shape::Phase)
    }
}

/// The progress sink the global flags ask for.
pub fn for_cli() -> Arc<dyn Progress> {
    if super::output::get().progress {
        Arc::new(Bars)
    } else {
        Arc::new(Silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_lines_state_the_count_once() {
        let line = done_line("public.orders", Shape::Task, Unit::Rows, 3_000_000, Duration::from_millis(3760), "");
        assert_eq!(line, format!("{:<28} 3.0M rows in 3.8s, 798k rows/s", "public.orders"));
        assert_eq!(done_line("keys and indexes", Shape::Phase, Unit::Items, 0, Duration::from_secs(75), ""), format!("{:<28} done in 1m 15s", "keys and indexes"));
        assert_eq!(done_line("t", Shape::Task, Unit::Rows, 5, Duration::ZERO, "DIFFERENT"), format!("{:<28} 5 rows in 0.0s  DIFFERENT", "t"));
        assert_eq!(done_line("pack", Shape::Task, Unit::Bytes, 12_400_000, Duration::from_secs(1), ""), format!("{:<28} 12.4 MB in 1.0s, 12.4 MB/s", "pack"));
    }
}
