//! Progress reporting as a trait, so the data-moving code never touches a
//! terminal. The CLI picks its progress bars (`commands::bars`) on a TTY,
//! [`Silent`] otherwise (`--json`, pipes, CI). Messages go the other way,
//! as `tracing` events that `commands::output` prints.

use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Rows,
    Bytes,
    Items,
}

/// One unit of work (a table, a device, a file set) whose advance is shown.
pub trait Task: Send + Sync {
    fn inc(&self, n: u64);
    fn set_total(&self, total: u64);
    fn set_message(&self, msg: &str);
    fn finish(&self, msg: &str);
}

pub trait Progress: Send + Sync {
    fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Arc<dyn Task>;
}

/// Shows nothing.
pub struct Silent;

struct SilentTask;
impl Task for SilentTask {
    fn inc(&self, _: u64) {}
    fn set_total(&self, _: u64) {}
    fn set_message(&self, _: &str) {}
    fn finish(&self, _: &str) {}
}

impl Progress for Silent {
    fn task(&self, _: &str, _: Option<u64>, _: Unit) -> Arc<dyn Task> {
        Arc::new(SilentTask)
    }
}
