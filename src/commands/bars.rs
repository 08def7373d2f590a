//! Progress bars (indicatif) on stderr: the terminal side of the library's
//! [`Progress`] trait.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Silent, Task, Unit};

/// indicatif multi-progress on stderr.
pub struct Bars {
    multi: MultiProgress,
}

impl Default for Bars {
    fn default() -> Self {
        Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)) }
    }
}

struct BarTask(ProgressBar);

impl Task for BarTask {
    fn inc(&self, n: u64) {
        self.0.inc(n)
    }
    fn set_total(&self, total: u64) {
        self.0.set_length(total)
    }
    fn set_message(&self, msg: &str) {
        self.0.set_message(msg.to_string())
    }
    fn finish(&self, msg: &str) {
        self.0.finish_with_message(msg.to_string())
    }
}

impl Progress for Bars {
    fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Arc<dyn Task> {
        let (pos, rate) = match unit {
            Unit::Bytes => ("{bytes}/{total_bytes}", "{bytes_per_sec}"),
            Unit::Rows => ("{human_pos}/{human_len} rows", "{per_sec}"),
            Unit::Items => ("{human_pos}/{human_len}", "{per_sec}"),
        };
        let template = format!("{{prefix:24!}} {{bar:30}} {pos} {rate} eta {{eta}} {{msg}}");
        let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Arc::new(BarTask(bar))
    }
}

/// The progress sink the global flags ask for.
pub fn for_cli() -> Arc<dyn Progress> {
    if super::output::get().progress {
        Arc::new(Bars::default())
    } else {
        Arc::new(Silent)
    }
}
