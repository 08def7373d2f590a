//! `barge status --coordinator URL`: every worker, its leases and the
//! age of its heartbeat, and progress per table.
