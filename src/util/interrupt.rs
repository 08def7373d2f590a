//! A request to stop, from whoever embeds the library: the CLI turns
//! Ctrl-C into one (`commands::interrupt`), a program using barge as a
//! library calls [`request`]. Long-running work waits on [`requested`]
//! and stops cleanly (state saved, the statement on the server cancelled);
//! the library never installs a signal handler itself.

use std::sync::OnceLock;

use tokio::sync::watch;

fn channel() -> &'static watch::Sender<u64> {
    static TX: OnceLock<watch::Sender<u64>> = OnceLock::new();
    TX.get_or_init(|| watch::channel(0).0)
}

/// Asks every [`requested`] future that exists now to complete.
pub fn request() {
    channel().send_modify(|n| *n += 1);
}

/// Completes at the first [`request`] after this call (not for one made
/// before it, as a signal listener would behave).
pub fn requested() -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = channel().subscribe();
    rx.mark_unchanged();
    async move {
        // The sender lives in a static: `changed` never reports it gone.
        let _ = rx.changed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_reaches_the_waiters_that_exist_and_not_later_ones() {
        let waiting = requested();
        request();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.expect("the waiter saw the request");
        let later = requested();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), later).await.is_err(), "a request made before it does not count");
    }
}
