//! `barge status --watch`: the state directory of a running task, redrawn
//! every second. Per table its state, rows, changes/s and lag; overall lag
//! with a sparkline of the last five minutes; stopped tables and errors
//! highlighted; `q` quits. Outside a terminal (a pipe, `TERM=dumb`) or
//! under `--json` it prints one plain line (or JSON object) a second.
//!
//! Drawn with the `console` crate indicatif already brings (cursor moves,
//! keys, colours): the view is a dozen lines of text, which a layout
//! engine such as ratatui would not make simpler.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use console::{style, Key, Term};

use crate::commands::cdc::{snapshot, Snapshot};
use crate::commands::output;
use crate::error::{Error, Result};

const EVERY: Duration = Duration::from_secs(1);
/// Lag samples kept for the sparkline: five minutes, one a second.
const HISTORY: usize = 300;
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn run(dir: &Path) -> Result<ExitCode> {
    // A directory with nothing in it fails now, as `barge status` does.
    snapshot(dir)?;
    let term = Term::stdout();
    let dumb = !term.is_term() || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if dumb || output::get().json {
        return plain(dir);
    }
    screen(dir, &term)
}

/// One row of the table: what the load and the replication know of it.
struct Row {
    name: String,
    state: String,
    rows: Option<u64>,
    changes: Option<u64>,
    per_second: Option<f64>,
    lag: Option<f64>,
    error: Option<String>,
}

impl Row {
    fn stopped(&self) -> bool {
        self.state.starts_with("stopped") || self.state.starts_with("failed") || self.error.is_some()
    }
}

fn rows(s: &Snapshot) -> Vec<Row> {
    let mut out: BTreeMap<String, Row> = BTreeMap::new();
    if let Some(l) = &s.load {
        for (name, t) in &l.tables {
            let state = match t.status {
                crate::task::state::TableStatus::Errored => "failed".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            out.insert(name.clone(), Row { name: name.clone(), state, rows: Some(t.rows()), changes: None, per_second: None, lag: None, error: t.error.clone() });
        }
    }
    if let Some((c, _)) = &s.cdc {
        for (name, t) in &c.tables {
            let r = out.entry(name.clone()).or_insert_with(|| Row { name: name.clone(), state: String::new(), rows: None, changes: None, per_second: None, lag: None, error: None });
            r.state = t.state.clone();
            r.changes = Some(t.changes);
            r.per_second = Some(t.changes_per_second);
            r.lag = Some(t.lag_seconds);
            if let Some(reason) = t.state.strip_prefix("stopped: ") {
                r.state = "stopped".into();
                r.error = Some(reason.to_string());
            }
        }
    }
    out.into_values().collect()
}

/// The overall line: running or not, lag, rate, totals.
fn summary(s: &Snapshot) -> (String, bool) {
    match &s.cdc {
        Some((c, live)) => {
            let head = match live {
                Ok(()) => format!("replicating (process {})", c.pid.unwrap_or(0)),
                Err(why) => format!("NOT RUNNING: {why}"),
            };
            let line = format!(
                "{head}  lag {:.3} s{}  {:.0} changes/s  {} applied  position {}{}",
                c.lag_seconds,
                c.lag_bytes.map(|b| format!(" / {b} bytes")).unwrap_or_default(),
                c.changes_per_second,
                c.applied_changes,
                c.position.as_deref().unwrap_or("-"),
                if c.retries > 0 { format!("  retries {}", c.retries) } else { String::new() }
            );
            (line, live.is_ok())
        }
        None => match &s.load {
            Some(l) => (format!("full load: {:?}, {} table(s); no change data capture yet", l.phase, l.tables.len()), true),
            None => (String::new(), false),
        },
    }
}

/// The last minutes of lag in `width` characters, each the worst second of its slot.
fn sparkline(history: &VecDeque<f64>, width: usize) -> String {
    if history.is_empty() || width == 0 {
        return String::new();
    }
    let per = history.len().div_ceil(width).max(1);
    let slots: Vec<f64> = history.iter().copied().collect::<Vec<_>>().chunks(per).map(|c| c.iter().copied().fold(0.0, f64::max)).collect();
    let top = slots.iter().copied().fold(0.0, f64::max);
    slots
        .iter()
        .map(|v| if top <= 0.0 { SPARKS[0] } else { SPARKS[((v / top) * (SPARKS.len() - 1) as f64).round() as usize] })
        .collect()
}

fn num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

/// The lines of one frame, `width` columns wide.
fn frame(dir: &Path, s: &Result<Snapshot>, history: &VecDeque<f64>, width: usize) -> Vec<String> {
    let now = chrono::Local::now().format("%H:%M:%S");
    let mut lines = vec![format!("{}  {}  {now}", style("barge status --watch").bold(), dir.display())];
    let s = match s {
        Ok(s) => s,
        Err(e) => {
            lines.push(style(format!("cannot read the state: {e}")).red().bold().to_string());
            lines.push("q quits".into());
            return lines;
        }
    };
    let (head, running) = summary(s);
    lines.push(if running { head } else { style(head).red().bold().to_string() });
    if s.cdc.is_some() {
        let max = history.iter().copied().fold(0.0, f64::max);
        let spark_width = width.saturating_sub(40).clamp(10, 60);
        lines.push(format!("lag, last {} min  {}  max {max:.3} s", HISTORY / 60, sparkline(history, spark_width)));
    }
    lines.push(String::new());
    let name_width = rows(s).iter().map(|r| r.name.len()).max().unwrap_or(5).clamp(5, 40);
    lines.push(style(format!("{:<name_width$}  {:<13} {:>10} {:>10} {:>10} {:>9}", "table", "state", "rows", "changes", "changes/s", "lag s")).bold().to_string());
    let table = rows(s);
    for r in &table {
        let line = format!(
            "{:<name_width$}  {:<13} {:>10} {:>10} {:>10} {:>9}",
            r.name,
            r.state.chars().take(13).collect::<String>(),
            num(r.rows),
            num(r.changes),
            r.per_second.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()),
            r.lag.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
        );
        lines.push(if r.stopped() { style(line).red().bold().to_string() } else { line });
    }
    let errors: Vec<&Row> = table.iter().filter(|r| r.error.is_some()).collect();
    if !errors.is_empty() {
        lines.push(String::new());
        lines.push(style("errors").red().bold().to_string());
        for r in errors {
            lines.push(style(format!("  {}: {}", r.name, r.error.as_deref().unwrap_or_default())).red().to_string());
        }
    }
    lines.push(String::new());
    lines.push("q quits".into());
    lines
}

/// The full-screen view, on the terminal's alternate screen (what was on
/// the terminal comes back when it quits).
fn screen(dir: &Path, term: &Term) -> Result<ExitCode> {
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    // Reading a key puts the terminal in raw mode for that read only.
    std::thread::spawn(move || loop {
        match Term::stdout().read_key() {
            Ok(Key::Char('q' | 'Q') | Key::Escape | Key::CtrlC) | Err(_) => {
                q.store(true, Ordering::Relaxed);
                break;
            }
            Ok(_) => {}
        }
    });
    let io = |e: std::io::Error| Error::other(format!("drawing the status: {e}"));
    term.write_str("\x1b[?1049h").map_err(io)?;
    let _ = term.hide_cursor();
    let mut history: VecDeque<f64> = VecDeque::new();
    let drawn = (|| -> std::io::Result<()> {
        while !quit.load(Ordering::Relaxed) {
            let s = snapshot(dir);
            if let Ok(Snapshot { cdc: Some((c, _)), .. }) = &s {
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(c.lag_seconds);
            }
            let (height, width) = term.size();
            let mut out = String::from("\x1b[H");
            for line in frame(dir, &s, &history, width as usize).into_iter().take(height as usize) {
                out.push_str(&line);
                out.push_str("\x1b[K\r\n");
            }
            out.push_str("\x1b[J");
            term.write_str(&out)?;
            let next = Instant::now() + EVERY;
            while Instant::now() < next && !quit.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    })();
    let _ = term.show_cursor();
    term.write_str("\x1b[?1049l").map_err(io)?;
    drawn.map_err(io)?;
    Ok(ExitCode::SUCCESS)
}

/// One line a second (a JSON object under `--json`), until interrupted
/// or the reader goes away.
fn plain(dir: &Path) -> Result<ExitCode> {
    let json = output::get().json;
    let stdout = std::io::stdout();
    loop {
        let line = match snapshot(dir) {
            Ok(s) if json => serde_json::json!({
                "time": chrono::Utc::now().to_rfc3339(),
                "running": s.cdc.as_ref().is_some_and(|(_, live)| live.is_ok()),
                "load": s.load,
                "cdc": s.cdc.as_ref().map(|(c, _)| c),
            })
            .to_string(),
            Ok(s) => {
                let tables: Vec<String> = rows(&s)
                    .iter()
                    .map(|r| match (&r.error, r.changes) {
                        (Some(e), _) => format!("{} {}: {e}", r.name, r.state),
                        (None, Some(n)) => format!("{} {} {n} changes {:.0}/s lag {:.3} s", r.name, r.state, r.per_second.unwrap_or(0.0), r.lag.unwrap_or(0.0)),
                        (None, None) => format!("{} {} {} rows", r.name, r.state, num(r.rows)),
                    })
                    .collect();
                format!("{} {}; {}", chrono::Local::now().format("%H:%M:%S"), summary(&s).0, tables.join("; "))
            }
            Err(e) => format!("{} cannot read the state: {e}", chrono::Local::now().format("%H:%M:%S")),
        };
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        drop(out);
        std::thread::sleep(EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sparkline_scales_to_the_worst_second_shown() {
        let h: VecDeque<f64> = [0.0, 0.0, 1.0, 4.0, 2.0, 0.0].into_iter().collect();
        assert_eq!(sparkline(&h, 6), "▁▁▃█▅▁");
        // Two seconds per character: the worse of each pair.
        assert_eq!(sparkline(&h, 3), "▁█▅");
        assert_eq!(sparkline(&[0.0; 4].into_iter().collect(), 4), "▁▁▁▁");
    }
}
