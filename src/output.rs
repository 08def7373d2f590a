//! Moved to `commands::output` (step 1 of the move).
pub use crate::commands::output::*;
