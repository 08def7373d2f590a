//! `barge status --watch` against a running CDC task: in a tmux pane of a
//! fixed size (a real terminal: the screen is read back with
//! capture-pane, `q` is sent with send-keys), and through a pipe, where it
//! falls back to plain lines.

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }
    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "watch"]).output().expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Polls the pane until `ok` holds for its text.
    fn wait_screen(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "the pane never showed {what}:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_view_shows_each_table_live_with_its_lag_and_q_quits() {
    let src = TestDb::new(Engine::Postgres, "watch").await;
    exec(&src, "CREATE TABLE orders (id integer PRIMARY KEY, v text); CREATE TABLE customers (id integer PRIMARY KEY, name text); INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 40) g; INSERT INTO customers VALUES (1, 'ann')").await;
    let dst = TestDb::new(Engine::Postgres, "watch").await;
    let state = tempfile::tempdir().unwrap();
    let mut child = start_cdc(&src.url, &dst.url, state.path(), &["--tables", "orders,customers"]);
    wait_replicating(&mut child, state.path());
    exec(&src, "INSERT INTO orders SELECT g, 'new' FROM generate_series(41, 90) g").await;
    wait_for(&dst, "SELECT COUNT(*) FROM orders", "90", &mut child).await;

    // A 100x30 terminal; the shell line after barge says how it exited.
    let tmux = Tmux { socket: format!("barge-watch-{}", std::process::id()) };
    let bin = env!("CARGO_BIN_EXE_barge");
    let cmd = format!("{bin} status --watch --state-dir '{}'; echo \"EXITED $?\"; sleep 60", state.path().display());
    let out = tmux.cmd().args(["new-session", "-d", "-s", "watch", "-x", "100", "-y", "30"]).arg(cmd).env("TERM", "xterm-256color").env_remove("NO_COLOR").output().expect("tmux new-session");
    assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));

    let screen = tmux.wait_screen("both tables live with 50 changes", |s| {
        s.lines().any(|l| l.starts_with("public.orders") && l.contains("live") && l.split_whitespace().any(|w| w == "50"))
            && s.lines().any(|l| l.starts_with("public.customers") && l.contains("live"))
    });
    assert!(screen.contains("replicating (process"), "{screen}");
    let lag = screen.lines().find(|l| l.contains("replicating")).and_then(|l| l.split("lag ").nth(1)).and_then(|l| l.split(' ').next()).and_then(|v| v.parse::<f64>().ok());
    assert!(lag.is_some_and(|v| v < 5.0), "no overall lag on the screen:\n{screen}");
    assert!(screen.contains("lag, last 5 min"), "{screen}");
    let orders = screen.lines().find(|l| l.starts_with("public.orders")).unwrap();
    assert!(orders.split_whitespace().any(|w| w == "40"), "the loaded rows: {orders}");

    // A table stopped by the task is shown as such, with its reason.
    exec(&src, "DROP TABLE customers").await;
    let screen = tmux.wait_screen("customers stopped", |s| s.lines().any(|l| l.starts_with("public.customers") && l.contains("stopped")));
    assert!(screen.contains("errors"), "{screen}");

    tmux.cmd().args(["send-keys", "-t", "watch", "q"]).output().unwrap();
    tmux.wait_screen("barge exiting 0 after q", |s| s.contains("EXITED 0"));

    // Through a pipe: plain lines, one a second, no terminal codes.
    let mut plain = barge().args(["status", "--watch", "--state-dir"]).arg(state.path()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = plain.kill();
    let out = plain.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(text.lines().count() >= 2, "{text}");
    assert!(text.lines().all(|l| l.contains("public.orders live 50 changes") && !l.contains('\x1b')), "{text}");

    stop_and_clean_up(child, state.path(), src, dst).await;
}

