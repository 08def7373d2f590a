pub mod pgoutput;
pub mod wal;
