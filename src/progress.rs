//! Progress reporting as a trait, so the data-moving code never touches a
//! terminal. The CLI picks its progress bars (`commands::bars`) on a TTY,
//! [`Silent`] otherwise (`--json`, pipes, CI). Messages go the other way,
//! as `tracing` events that `commands::output` prints.
//!
//! Three shapes of progress: a [`Progress::task`] per unit of work (a
//! table's rows), one [`Progress::overall`] for the whole job (drawn above
//! the tasks, fed through [`also`]), and a [`Progress::phase`] for a step
//! with nothing to count (keys, ANALYZE), which the terminal draws as a
//! spinner with its elapsed time.

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
    /// The whole job, shown above its tasks with an estimate of the time
    /// left. It counts only what it is given: feed it with [`also`].
    fn overall(&self, name: &str, total: Option<u64>, unit: Unit) -> Arc<dyn Task> {
        self.task(name, total, unit)
    }
    /// A step with nothing to count (building keys, ANALYZE, creating
    /// views), shown while it runs and with its time once finished.
    fn phase(&self, name: &str) -> Arc<dyn Task> {
        self.task(name, None, Unit::Items)
    }
}

/// A task whose advance also advances `whole` (a table's rows counted in
/// the overall bar too). Its total, message and end stay its own.
pub fn also(part: Arc<dyn Task>, whole: Arc<dyn Task>) -> Arc<dyn Task> {
    Arc::new(Also { part, whole })
}

struct Also {
    part: Arc<dyn Task>,
    whole: Arc<dyn Task>,
}

impl Task for Also {
    fn inc(&self, n: u64) {
        self.part.inc(n);
        self.whole.inc(n);
    }
    fn set_total(&self, total: u64) {
        self.part.set_total(total)
    }
    fn set_message(&self, msg: &str) {
        self.part.set_message(msg)
    }
    fn finish(&self, msg: &str) {
        self.part.finish(msg)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Counted(AtomicU64, AtomicU64);
    impl Task for Counted {
        fn inc(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn set_total(&self, t: u64) {
            self.1.store(t, Ordering::Relaxed);
        }
        fn set_message(&self, _: &str) {}
        fn finish(&self, _: &str) {}
    }

    #[test]
    fn a_part_feeds_the_whole_but_keeps_its_total() {
        let (part, whole) = (Arc::new(Counted::default()), Arc::new(Counted::default()));
        let t = also(part.clone(), whole.clone());
        t.inc(5);
        t.set_total(9);
        assert_eq!((part.0.load(Ordering::Relaxed), whole.0.load(Ordering::Relaxed)), (5, 5));
        assert_eq!((part.1.load(Ordering::Relaxed), whole.1.load(Ordering::Relaxed)), (9, 0));
    }
}
