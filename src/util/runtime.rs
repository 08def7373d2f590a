//! The one place a tokio runtime is built. The commands are synchronous at
//! their edge and block on one runtime each.

use tokio::runtime::{Builder, Runtime};

use crate::error::{Error, Result};

/// How many threads the runtime runs its tasks on.
#[derive(Debug, Clone, Copy)]
pub enum Workers {
    /// One per core: a load or a change capture, with many connections.
    PerCore,
    /// A fixed few: async work inside a run that already keeps the cores
    /// busy with its own threads (packing, unpacking, hashing).
    Fixed(usize),
    /// The calling thread only: a short exchange with one server.
    Caller,
}

pub fn build(workers: Workers) -> Result<Runtime> {
    let mut builder = match workers {
        Workers::Caller => Builder::new_current_thread(),
        Workers::PerCore => Builder::new_multi_thread(),
        Workers::Fixed(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
    };
    builder.enable_all().build().map_err(|e| Error::other(format!("cannot start the async runtime: {e}")))
}
