//! What a person sees in a terminal: `barge migrate` runs inside tmux (a
//! real pseudo-terminal) and the test reads the screen back. Rates are
//! human-sized, the load has an overall line, keys and ANALYZE have phase
//! lines, and `--json` draws nothing. Then a rerun of a finished migration:
//! it is complete, exits 0 without touching the target, and the command it
//! prints to start over works when run as printed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// `s` as one word for `sh`.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A tmux server of the test's own (its own socket), 200×50.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        Tmux { socket: format!("barge-{tag}-{}", std::process::id()) }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Runs `argv` in a fresh pane and returns everything the pane showed
    /// (scrollback included) once the command has exited.
    fn run(&self, argv: &[&str]) -> String {
        let line = format!("NO_COLOR=1 {}; echo \"EXIT=$?\"; sleep 600", argv.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" "));
        let ok = self.cmd().args(["new-session", "-d", "-x", "200", "-y", "50", "-s", "t", &line]).status().expect("tmux runs");
        assert!(ok.success(), "tmux new-session failed");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self.cmd().args(["capture-pane", "-p", "-S", "-", "-t", "t"]).output().expect("capture-pane");
            // Rows as drawn, without the blanks that pad them to the width.
            let screen: String = String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("{}\n", l.trim_end())).collect();
            if screen.contains("EXIT=") {
                let _ = self.cmd().args(["kill-session", "-t", "t"]).status();
                return screen;
            }
            assert!(Instant::now() < deadline, "barge did not finish in the terminal:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

async fn shop(tag: &str) -> TestDb {
    let src = TestDb::new(Engine::Postgres, tag).await;
    exec(
        &src,
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 30000) g;
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(12,2));
         INSERT INTO orders SELECT g, 1 + g % 30000, g / 7.0 FROM generate_series(1, 50000) g;
         CREATE INDEX orders_customer ON orders (customer_id);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
         ANALYZE",
    )
    .await;
    src
}

/// A figure with three or more decimals (`6.0366`), outside the file paths.
fn has_long_fraction(screen: &str) -> bool {
    let b = screen.as_bytes();
    (0..b.len().saturating_sub(4)).any(|i| b[i].is_ascii_digit() && b[i + 1] == b'.' && b[i + 2..i + 5].iter().all(u8::is_ascii_digit))
}

fn exit_code(screen: &str) -> Option<i32> {
    screen.lines().find_map(|l| l.trim().strip_prefix("EXIT=")).and_then(|c| c.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_in_a_terminal_reads_well() {
    let src = shop("tty").await;
    let dst = TestDb::new(Engine::Postgres, "tty").await;
    let state = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_barge");
    let tmux = Tmux::new("tty");
    let state_arg = state.path().to_str().unwrap();
    let screen = tmux.run(&[bin, "migrate", &src.url, &dst.url, "--state-dir", state_arg, "--chunk-rows", "10000", "--validate"]);
    assert_eq!(exit_code(&screen), Some(0), "{screen}");

    // Rates are human-sized: never `797,945.5785/s`, never 4+ decimals.
    assert!(!has_long_fraction(&screen), "a long fractional figure:\n{screen}");
    let rates: Vec<&str> = screen.split(" rows/s").filter_map(|before| before.rsplit(' ').next()).collect();
    let rates = &rates[..rates.len() - 1];
    assert!(!rates.is_empty(), "no rate:\n{screen}");
    for r in rates {
        assert!(r.len() <= 4 && !r.contains(','), "rate `{r} rows/s` is not human-sized:\n{screen}");
    }
    // A finished table is one line with its count once.
    let orders = screen.lines().find(|l| l.starts_with("orders ")).unwrap_or_else(|| panic!("no line for orders:\n{screen}"));
    assert!(orders.contains("50.0k rows in") && orders.matches("50.0k").count() == 1, "{orders}");
    // The overall line, then phase lines for keys with ANALYZE and for the view.
    let total = screen.lines().find(|l| l.starts_with("total ") && l.contains("rows in")).unwrap_or_else(|| panic!("no overall line:\n{screen}"));
    assert!(total.contains("80.0k rows"), "{total}");
    assert!(screen.lines().any(|l| l.starts_with("keys, indexes and ANALYZE") && l.contains("done in")), "no phase line for keys and ANALYZE:\n{screen}");
    assert!(screen.lines().any(|l| l.starts_with("foreign keys") && l.contains("done in")), "no phase line for foreign keys:\n{screen}");
    assert!(screen.lines().any(|l| l.starts_with("views, routines and triggers") && l.contains("done in")), "no phase line for the view:\n{screen}");
    // Validation: an overall line of tables, each table's rows counted.
    assert!(screen.lines().any(|l| l.starts_with("validated tables") && l.contains("2 in")), "{screen}");
    assert!(screen.lines().any(|l| l.starts_with("public.orders") && l.contains("50.0k rows in") && l.ends_with("equal")), "{screen}");

    // --json in the same terminal draws nothing: stdout is one object.
    let dst2 = TestDb::new(Engine::Postgres, "tty_json").await;
    let state2 = tempfile::tempdir().unwrap();
    let screen = tmux.run(&[bin, "migrate", &src.url, &dst2.url, "--state-dir", state2.path().to_str().unwrap(), "--json"]);
    assert_eq!(exit_code(&screen), Some(0), "{screen}");
    assert!(!screen.contains("rows/s") && !screen.contains("done in") && !screen.contains('█'), "--json drew progress:\n{screen}");
    assert!(screen.lines().any(|l| l.starts_with("{\"ok\":true")), "{screen}");
    src.drop_db().await;
    dst.drop_db().await;
    dst2.drop_db().await;
}

fn migrate(src: &TestDb, dst: &TestDb, state: &Path) -> std::process::Output {
    run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_migration_run_again_is_complete_and_says_how_to_start_over() {
    let src = shop("again").await;
    let dst = TestDb::new(Engine::Postgres, "again").await;
    let state = tempfile::tempdir().unwrap();
    assert_ok(&migrate(&src, &dst, state.path()), "first run");

    // Someone adds a row on the target: a rerun must leave it.
    exec(&dst, "INSERT INTO customers (name) VALUES ('added on the target')").await;
    let out = migrate(&src, &dst, state.path());
    assert_ok(&out, "the same command again");
    let err = stderr(&out);
    assert!(err.contains("the migration is complete") && !err.contains("already exists"), "{}", text(&out));
    assert_eq!(dst.query_row("SELECT count(*) FROM customers").await[0].as_deref(), Some("30001"), "the target was not touched");

    // --json: one object that says so.
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--json", "--state-dir"]).arg(state.path()));
    assert_ok(&out, "--json");
    let j: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!((j["ok"].as_bool(), j["complete"].as_bool(), j["tables"].as_u64()), (Some(true), Some(true), Some(2)), "{j}");

    // The printed command, run as printed, loads everything again.
    let again = err.lines().skip_while(|l| !l.contains("to load everything again")).nth(1).unwrap_or_else(|| panic!("no command:\n{err}")).trim().to_string();
    assert!(again.contains("--restart"), "{again}");
    let out = run(Command::new("sh").args(["-c", &again]).env_remove("BARGE_SOURCE_PASSWORD").env_remove("BARGE_TARGET_PASSWORD").env("NO_COLOR", "1"));
    assert_ok(&out, &format!("the start-over command `{again}`"));
    assert_eq!(dst.query_row("SELECT count(*) FROM customers").await[0].as_deref(), Some("30000"), "emptied, then loaded again");
    assert_ok(&run(barge().args(["validate", &src.url, &dst.url])), "validate after starting over");
    let fks = dst.query_row("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'orders'::regclass").await;
    assert_eq!(fks[0].as_deref(), Some("1"), "the foreign key is still there");
    let ids = dst.query_row("SELECT nextval(pg_get_serial_sequence('customers', 'id'))").await;
    assert_eq!(ids[0].as_deref(), Some("30001"), "the next id follows the loaded rows");
    // ... and that run is complete in turn.
    let out = migrate(&src, &dst, state.path());
    assert_ok(&out, "after starting over");
    assert!(stderr(&out).contains("the migration is complete"), "{}", text(&out));

    // A target that lost a table is not complete: the run says what stands in its way.
    exec(&dst, "DROP VIEW big_orders; DROP TABLE orders").await;
    let out = migrate(&src, &dst, state.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("already exists") && !stderr(&out).contains("is complete"), "{}", text(&out));
    src.drop_db().await;
    dst.drop_db().await;
}
