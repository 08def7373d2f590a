//! `--metrics-addr`: the flag `migrate`, `pack` and `unpack` share, and
//! starting the metrics server before the work does.

use clap::Args;

use crate::commands::output;
use crate::error::Result;
use crate::metrics::Metrics;

#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Monitoring")]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the command runs (e.g. 127.0.0.1:9187; port 0 picks a free one)
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Installs `metrics` as what the task records into and serves it, if
    /// the flag was given; says where on stderr.
    pub fn start(&self, metrics: impl FnOnce() -> Metrics) -> Result<()> {
        let Some(addr) = &self.metrics_addr else { return Ok(()) };
        let m = crate::metrics::install(metrics());
        let bound = crate::metrics::serve::start(addr, m.clone())?;
        output::info(format!("metrics at http://{bound}/metrics"));
        Ok(())
    }
}

/// A task's label: its state directory's name (`migrate-1a2b3c…`).
pub fn task_name(state_dir: &std::path::Path, default: &str) -> String {
    state_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| default.to_string())
}
