//! Counts, sizes and rates as people read them: `798k rows/s`, `12.4 MB/s`,
//! `3.0M rows`. One formatter, so the progress bars and the reports print
//! the same figure the same way. Sizes are decimal (SI: 1 kB = 1000 B), as
//! disks and links are sold.

/// What a figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Rows,
    Bytes,
    /// Files, chunks, tables: a bare number.
    Items,
}

const COUNT_SUFFIXES: [&str; 6] = ["", "k", "M", "G", "T", "P"];
const BYTE_SUFFIXES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// `v` scaled by powers of 1000 to at most three significant digits, and
/// the index of its suffix. The suffix is chosen after rounding, so 999,960
/// is `1.0M`, never `1000k`.
fn scaled(v: f64, steps: usize, keep_small_exact: bool) -> (String, usize) {
    if !v.is_finite() || v <= 0.0 {
        return ("0".into(), 0);
    }
    let mut s = v;
    let mut i = 0;
    loop {
        let text = if i == 0 && keep_small_exact {
            format!("{:.0}", s)
        } else if s < 0.1 {
            "<0.1".into()
        } else if s >= 99.95 {
            format!("{:.0}", s)
        } else {
            format!("{:.1}", s)
        };
        let shown: f64 = text.trim_start_matches('<').parse().unwrap_or(0.0);
        if shown < 1000.0 || i + 1 == steps {
            return (text, i);
        }
        s /= 1000.0;
        i += 1;
    }
}

/// A count: exact below a thousand (`999`), then `1.0k`, `3.0M`.
pub fn count(n: u64) -> String {
    let (text, i) = scaled(n as f64, COUNT_SUFFIXES.len(), true);
    format!("{text}{}", COUNT_SUFFIXES[i])
}

/// A size in bytes: `512 B`, `12.4 MB`.
pub fn bytes(n: u64) -> String {
    let (text, i) = scaled(n as f64, BYTE_SUFFIXES.len(), true);
    format!("{text} {}", BYTE_SUFFIXES[i])
}

/// An amount of `what`, with its unit: `3.0M rows`, `12.4 MB`, `7`.
pub fn amount(n: u64, what: Measure) -> String {
    match what {
        Measure::Rows => format!("{} rows", count(n)),
        Measure::Bytes => bytes(n),
        Measure::Items => count(n),
    }
}

/// A figure that need not be whole, such as a rate in a column already
/// headed `rows/s`: `798k`, `6.0`.
pub fn figure(v: f64) -> String {
    let (text, i) = scaled(v, COUNT_SUFFIXES.len(), false);
    format!("{text}{}", COUNT_SUFFIXES[i])
}

/// A rate per second: `798k rows/s`, `12.4 MB/s`, `0.5/s`.
pub fn rate(per_sec: f64, what: Measure) -> String {
    match what {
        Measure::Bytes => {
            let (text, i) = scaled(per_sec, BYTE_SUFFIXES.len(), false);
            format!("{text} {}/s", BYTE_SUFFIXES[i])
        }
        Measure::Rows => format!("{} rows/s", figure(per_sec)),
        Measure::Items => format!("{}/s", figure(per_sec)),
    }
}

/// A duration: `0.4s`, `12s`, `1m 15s`, `2h 05m`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "0.0s".into();
    }
    if secs < 9.95 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_three_digits_at_most() {
        assert_eq!(rate(797_945.578_5, Measure::Rows), "798k rows/s");
        assert_eq!(rate(6.0366, Measure::Rows), "6.0 rows/s");
        assert_eq!(rate(12_400_000.0, Measure::Bytes), "12.4 MB/s");
        assert_eq!(rate(1_500.0, Measure::Items), "1.5k/s");
        assert_eq!(figure(797_945.578_5), "798k");
    }

    #[test]
    fn zero_and_slow_rates() {
        assert_eq!(rate(0.0, Measure::Rows), "0 rows/s");
        assert_eq!(rate(f64::NAN, Measure::Rows), "0 rows/s");
        assert_eq!(rate(0.5, Measure::Rows), "0.5 rows/s");
        assert_eq!(rate(0.01, Measure::Rows), "<0.1 rows/s");
        assert_eq!(rate(0.2, Measure::Bytes), "0.2 B/s");
    }

    #[test]
    fn rounding_moves_to_the_next_unit() {
        assert_eq!(rate(999.9, Measure::Rows), "1.0k rows/s");
        assert_eq!(rate(999.4, Measure::Rows), "999 rows/s");
        assert_eq!(rate(999_940.0, Measure::Rows), "1.0M rows/s");
        assert_eq!(rate(999_400.0, Measure::Rows), "999k rows/s");
        assert_eq!(rate(99.96, Measure::Rows), "100 rows/s");
        assert_eq!(rate(99.94, Measure::Rows), "99.9 rows/s");
        assert_eq!(count(999_960), "1.0M");
        assert_eq!(bytes(999_999_999), "1.0 GB");
    }

    #[test]
    fn counts_are_exact_below_a_thousand() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1.0k");
        assert_eq!(count(3_000_000), "3.0M");
        assert_eq!(amount(3_000_000, Measure::Rows), "3.0M rows");
        assert_eq!(amount(7, Measure::Items), "7");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0.0s");
        assert_eq!(duration(3.76), "3.8s");
        assert_eq!(duration(9.96), "10s");
        assert_eq!(duration(12.4), "12s");
        assert_eq!(duration(75.0), "1m 15s");
        assert_eq!(duration(7500.0), "2h 05m");
    }

    #[test]
    fn bytes_and_rows_differ_in_unit_only() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1_000), "1.0 kB");
        assert_eq!(amount(12_400_000, Measure::Bytes), "12.4 MB");
        assert_eq!(amount(12_400_000, Measure::Rows), "12.4M rows");
        assert_eq!(rate(12_400_000.0, Measure::Rows), "12.4M rows/s");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
    }
}
