//! A shim for one step of issue 13: the library reports through `tracing`
//! events (`tracing::info!`, `debug!`, `warn!`), which `commands::output`
//! prints; these forward to them for code written before the move. Use the
//! macros directly; this file goes once the branches are merged.

/// A status line (`tracing::info!`).
pub fn info(msg: impl AsRef<str>) {
    tracing::info!("{}", msg.as_ref());
}

/// Detail shown with -v (`tracing::debug!`).
pub fn verbose(msg: impl AsRef<str>) {
    tracing::debug!("{}", msg.as_ref());
}

/// A warning (`tracing::warn!`).
pub fn warn(msg: impl AsRef<str>) {
    tracing::warn!("{}", msg.as_ref());
}
