//! Ctrl-C, for the commands that stop cleanly on it (migrate: the load
//! saves its state, a running DDL statement is cancelled on the server,
//! change capture finishes the batch in flight). The terminal's signal
//! becomes the library's [`crate::util::interrupt::request`]; commands that
//! do not call [`listen`] keep the default (SIGINT ends the process).

use std::sync::Once;

/// Turns every SIGINT from now on into an interrupt request. Returns once
/// the handler is in place, so a Ctrl-C right after is not lost.
pub fn listen() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("barge-sigint".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    #[cfg(unix)]
                    {
                        let Ok(mut sigint) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) else { return };
                        let _ = ready_tx.send(());
                        while sigint.recv().await.is_some() {
                            crate::util::interrupt::request();
                        }
                    }
                    #[cfg(not(unix))]
                    {
                        let _ = ready_tx.send(());
                        while tokio::signal::ctrl_c().await.is_ok() {
                            crate::util::interrupt::request();
                        }
                    }
                });
            })
            .expect("a thread for Ctrl-C");
        // Without the handler (it failed to install), SIGINT ends barge as usual.
        let _ = ready_rx.recv();
    });
}
