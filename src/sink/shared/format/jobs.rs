//! CPU work (compressing a block, encoding a row group) handed to other
//! threads while the caller goes on filling the next one; results come
//! back in the order the work was handed in, which is the order the bytes
//! go into the file.

use std::collections::VecDeque;
use std::thread::JoinHandle;

/// At most one job per core runs at a time: more would only queue up
/// memory (each job holds a block or row group) without going faster.
pub struct OrderedJobs<T> {
    running: VecDeque<JoinHandle<T>>,
    limit: usize,
}

impl<T: Send + 'static> OrderedJobs<T> {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        OrderedJobs { running: VecDeque::new(), limit: cores.max(1) }
    }

    /// Starts `job`. When the limit is reached, first waits for the oldest
    /// job and returns its result, which comes before `job`'s.
    pub fn submit(&mut self, job: impl FnOnce() -> T + Send + 'static) -> Result<Option<T>, String> {
        let done = if self.running.len() >= self.limit { self.oldest()? } else { None };
        let handle = std::thread::Builder::new().name("barge-encode".into()).spawn(job).map_err(|e| format!("cannot start an encoding thread: {e}"))?;
        self.running.push_back(handle);
        Ok(done)
    }

    /// Waits for the oldest job still running.
    pub fn oldest(&mut self) -> Result<Option<T>, String> {
        match self.running.pop_front() {
            Some(h) => h.join().map(Some).map_err(|_| "an encoding thread panicked".to_string()),
            None => Ok(None),
        }
    }

    /// Waits for every job, returning the results in order.
    pub fn drain(&mut self) -> Result<Vec<T>, String> {
        let mut out = Vec::with_capacity(self.running.len());
        while let Some(r) = self.oldest()? {
            out.push(r);
        }
        Ok(out)
    }
}

impl<T: Send + 'static> Default for OrderedJobs<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_submission_order() {
        let mut jobs = OrderedJobs { running: VecDeque::new(), limit: 3 };
        let mut got = Vec::new();
        for i in 0..10u64 {
            // Later jobs finish first: order must still hold.
            let done = jobs.submit(move || {
                std::thread::sleep(std::time::Duration::from_millis(10 - i));
                i
            });
            got.extend(done.unwrap());
        }
        got.extend(jobs.drain().unwrap());
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
