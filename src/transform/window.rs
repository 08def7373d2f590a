//! Windowed aggregates: `GROUP BY key, TUMBLE(t, size)` or `HOP(t,
//! slide, size)`. Windows are aligned on the epoch (a one-minute window
//! starts on the minute), a record at time t belongs to every window with
//! start ≤ t < end, and a window's rows are emitted once the watermark
//! (the latest event time seen, less `--allowed-lateness`) reaches its
//! end. A record whose every window was already emitted is late: it is
//! counted and set aside, never added to a result already delivered.
//!
//! The state (open windows, the latest event time) is plain data that
//! serializes to JSON, so it can be saved with the source position it
//! belongs to (see [`super::changes`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::decimal::Dec;
use super::expr::{arith, bigint, compare, kind_of, num, numeric, BinOp, Expr, Kind, Num, Row};
use crate::model::{ColumnType, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Agg {
    pub fn named(name: &str) -> Option<Agg> {
        Some(match name {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            _ => return None,
        })
    }
}

/// How an aggregate adds values up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adds {
    /// Integers summed as integers (bigint).
    Int,
    /// Exact decimals (PostgreSQL sums bigints as numeric).
    Dec,
    Float,
}

#[derive(Debug, Clone)]
pub struct AggSpec {
    pub agg: Agg,
    /// None: count(*).
    pub arg: Option<Expr>,
    pub output_type: ColumnType,
    adds: Adds,
}

impl AggSpec {
    /// Types as PostgreSQL gives them: count bigint; sum of smallint and
    /// integer bigint, of bigint and numeric numeric; avg numeric (double
    /// for floats); min and max the argument's type.
    pub fn new(agg: Agg, arg: Option<Expr>, arg_type: &ColumnType) -> std::result::Result<AggSpec, String> {
        let k = kind_of(arg_type);
        let adds = match (k, arg_type) {
            (Kind::Int, ColumnType::Int { bits, .. }) if *bits < 64 => Adds::Int,
            (Kind::Int | Kind::Dec, _) => Adds::Dec,
            (Kind::Float, _) => Adds::Float,
            _ => Adds::Int,
        };
        let output_type = match agg {
            Agg::Count => bigint(),
            Agg::Sum | Agg::Avg if !matches!(k, Kind::Int | Kind::Dec | Kind::Float) => return Err("sums and averages take numbers; cast the value, e.g. (data->>'amount')::numeric".into()),
            Agg::Sum => match adds {
                Adds::Int => bigint(),
                Adds::Dec => numeric(),
                Adds::Float => ColumnType::Float64,
            },
            Agg::Avg => match adds {
                Adds::Float => ColumnType::Float64,
                _ => numeric(),
            },
            Agg::Min | Agg::Max => {
                if matches!(k, Kind::Json | Kind::Bytes | Kind::Other) {
                    return Err("min and max take numbers, text, dates and times".into());
                }
                arg_type.clone()
            }
        };
        Ok(AggSpec { agg, arg, output_type, adds })
    }
}

#[derive(Debug, Clone)]
pub struct WindowPlan {
    /// The event time, on the input row.
    pub time: Expr,
    pub slide_us: i64,
    pub size_us: i64,
    /// window_start and window_end are timestamptz (else timestamp).
    pub tz: bool,
    /// GROUP BY keys, on the input row.
    pub keys: Vec<Expr>,
    pub aggs: Vec<AggSpec>,
    /// The SELECT, on [keys…, window_start, window_end, aggregates…].
    pub outputs: Vec<Expr>,
}

/// One aggregate's running value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    Count(i64),
    /// The sum so far (None: no value yet, so the sum is NULL).
    Sum(Option<Value>),
    Avg { sum: Option<Value>, n: i64 },
    Best(Option<Value>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub keys: Vec<Value>,
    pub accs: Vec<Acc>,
}

/// The open windows and how far event time has gone: all a restart needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// The latest event time seen, in microseconds since the epoch.
    pub max_time: Option<i64>,
    /// Open windows by start (µs), then groups by their keys' text.
    pub windows: BTreeMap<i64, BTreeMap<String, Group>>,
}

/// What one record did.
pub enum Fed {
    Added,
    /// Every window it belongs to was already emitted.
    Late { time: i64, watermark: i64 },
}

fn to_micros(v: &Value) -> std::result::Result<i64, String> {
    let t: NaiveDateTime = match v {
        Value::Timestamp(t) => *t,
        Value::TimestampTz(t) => t.naive_utc(),
        Value::Date(d) => d.and_time(chrono::NaiveTime::MIN),
        Value::Null => return Err("the event time is NULL".into()),
        other => return Err(format!("the event time is a {} value, not a timestamp", other.kind())),
    };
    Ok(t.and_utc().timestamp_micros())
}

pub fn micros_text(us: i64) -> String {
    DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)).unwrap_or_else(|| us.to_string())
}

impl WindowPlan {
    fn watermark(&self, s: &WindowState, lateness_us: i64) -> Option<i64> {
        s.max_time.map(|m| m.saturating_sub(lateness_us))
    }

    /// Adds one input row (that passed WHERE) to its windows.
    pub fn feed(&self, s: &mut WindowState, row: &Row<'_>, lateness_us: i64) -> std::result::Result<Fed, String> {
        let t = to_micros(&self.time.eval_in(row)?)?;
        let keys = self.keys.iter().map(|k| k.eval_in(row)).collect::<std::result::Result<Vec<_>, _>>()?;
        let args = self.aggs.iter().map(|a| a.arg.as_ref().map(|e| e.eval_in(row)).transpose()).collect::<std::result::Result<Vec<_>, _>>()?;
        let watermark = self.watermark(s, lateness_us);
        // Windows containing t: starts aligned on the slide, in (t - size, t].
        let last = t.div_euclid(self.slide_us) * self.slide_us;
        let mut start = last - self.size_us + self.slide_us;
        let key_text = serde_json::to_string(&keys).map_err(|e| e.to_string())?;
        let mut added = false;
        while start <= last {
            let end = start + self.size_us;
            if watermark.is_none_or(|w| end > w) {
                let groups = s.windows.entry(start).or_default();
                let g = match groups.get_mut(&key_text) {
                    Some(g) => g,
                    None => groups.entry(key_text.clone()).or_insert(Group { keys: keys.clone(), accs: self.aggs.iter().map(AggSpec::empty).collect() }),
                };
                for ((acc, spec), v) in g.accs.iter_mut().zip(&self.aggs).zip(&args) {
                    spec.add(acc, v.as_ref())?;
                }
                added = true;
            }
            start += self.slide_us;
        }
        if !added {
            return Ok(Fed::Late { time: t, watermark: watermark.unwrap_or(i64::MIN) });
        }
        s.max_time = Some(s.max_time.map_or(t, |m| m.max(t)));
        Ok(Fed::Added)
    }

    /// The rows of every window the watermark has passed (all of them
    /// when `all`: a bounded input's end), oldest window first, groups in
    /// key order; the windows are dropped from the state.
    pub fn emit(&self, s: &mut WindowState, lateness_us: i64, all: bool) -> std::result::Result<Vec<Vec<Value>>, String> {
        let watermark = if all { Some(i64::MAX) } else { self.watermark(s, lateness_us) };
        let Some(w) = watermark else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        while let Some((&start, _)) = s.windows.first_key_value() {
            if start.saturating_add(self.size_us) > w {
                break;
            }
            let groups = s.windows.remove(&start).unwrap_or_default();
            let bound = |us: i64| -> Value {
                let t = DateTime::from_timestamp_micros(us).unwrap_or_default();
                if self.tz {
                    Value::TimestampTz(t)
                } else {
                    Value::Timestamp(t.naive_utc())
                }
            };
            for g in groups.into_values() {
                let mut virt = g.keys;
                virt.push(bound(start));
                virt.push(bound(start + self.size_us));
                for (acc, spec) in g.accs.iter().zip(&self.aggs) {
                    virt.push(spec.result(acc)?);
                }
                out.push(self.outputs.iter().map(|e| e.eval(&virt)).collect::<std::result::Result<Vec<_>, _>>()?);
            }
        }
        Ok(out)
    }
}

impl AggSpec {
    fn empty(&self) -> Acc {
        match self.agg {
            Agg::Count => Acc::Count(0),
            Agg::Sum => Acc::Sum(None),
            Agg::Avg => Acc::Avg { sum: None, n: 0 },
            Agg::Min | Agg::Max => Acc::Best(None),
        }
    }

    fn plus(&self, sum: &Option<Value>, v: &Value) -> std::result::Result<Value, String> {
        let x = match (self.adds, num(v)?) {
            (_, None) => return Ok(sum.clone().unwrap_or(Value::Null)),
            (Adds::Dec, Some(Num::I(i))) => Num::D(Dec::from_i64(i)),
            (_, Some(n)) => n,
        };
        let total = match sum.as_ref().map(num).transpose()?.flatten() {
            None => x,
            Some(s) => arith(BinOp::Add, s, x)?,
        };
        Ok(match total {
            Num::I(i) => Value::Int(i),
            Num::D(d) => Value::Decimal(d.to_string()),
            Num::F(f) => Value::Float64(f),
        })
    }

    fn add(&self, acc: &mut Acc, v: Option<&Value>) -> std::result::Result<(), String> {
        match acc {
            Acc::Count(n) => {
                if v.is_none_or(|v| !v.is_null()) {
                    *n += 1;
                }
            }
            Acc::Sum(sum) => {
                if let Some(v) = v.filter(|v| !v.is_null()) {
                    *sum = Some(self.plus(sum, v)?);
                }
            }
            Acc::Avg { sum, n } => {
                if let Some(v) = v.filter(|v| !v.is_null()) {
                    *sum = Some(self.plus(sum, v)?);
                    *n += 1;
                }
            }
            Acc::Best(best) => {
                if let Some(v) = v.filter(|v| !v.is_null()) {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let o = compare(v, b)?;
                            if self.agg == Agg::Min {
                                o == Some(std::cmp::Ordering::Less)
                            } else {
                                o == Some(std::cmp::Ordering::Greater)
                            }
                        }
                    };
                    if better {
                        *best = Some(v.clone());
                    }
                }
            }
        }
        Ok(())
    }

    fn result(&self, acc: &Acc) -> std::result::Result<Value, String> {
        Ok(match acc {
            Acc::Count(n) => Value::Int(*n),
            Acc::Sum(s) | Acc::Best(s) => s.clone().unwrap_or(Value::Null),
            Acc::Avg { sum: None, .. } | Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum: Some(s), n } => match num(s)? {
                Some(Num::F(f)) => Value::Float64(f / *n as f64),
                Some(Num::D(d)) => Value::Decimal(d.div(&Dec::from_i64(*n)).unwrap_or(d).to_string()),
                Some(Num::I(i)) => Value::Decimal(Dec::from_i64(i).div(&Dec::from_i64(*n)).unwrap_or(Dec::from_i64(i)).to_string()),
                None => Value::Null,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, QualifiedName, Table};
    use crate::transform::plan::SqlPlan;

    fn plan(sql: &str) -> SqlPlan {
        let mut t = Table::new(QualifiedName::bare("r"));
        t.columns = vec![Column::new("k", super::super::expr::text_type(), "text"), Column::new("t", ColumnType::Timestamp { precision: None, tz: false }, "timestamp"), Column::new("v", ColumnType::Decimal { precision: None, scale: None }, "numeric")];
        SqlPlan::new(sql, &t, &["records"]).unwrap()
    }

    fn row(k: &str, t: &str, v: &str) -> Vec<Value> {
        vec![Value::Text(k.into()), Value::Timestamp(t.parse().unwrap()), Value::Decimal(v.into())]
    }

    #[test]
    fn tumbling_windows_emit_when_the_watermark_passes_and_set_late_records_aside() {
        let p = plan("SELECT k, window_start, count(*) AS n, sum(v) AS s, avg(v) AS a, max(v) AS m FROM records GROUP BY k, TUMBLE(t, INTERVAL '1' MINUTE)");
        let w = p.windows().unwrap();
        let mut s = WindowState::default();
        let lateness = 10_000_000;
        for (k, t, v) in [("a", "2026-01-01T00:00:05", "1.5"), ("b", "2026-01-01T00:00:30", "2"), ("a", "2026-01-01T00:00:59", "1.25")] {
            assert!(matches!(w.feed(&mut s, &Row::new(&row(k, t, v)), lateness).unwrap(), Fed::Added));
        }
        // 00:01:05 moves the watermark to 00:00:55: the first minute stays open.
        w.feed(&mut s, &Row::new(&row("a", "2026-01-01T00:01:05", "9")), lateness).unwrap();
        assert!(w.emit(&mut s, lateness, false).unwrap().is_empty());
        // Within the lateness: still counted.
        assert!(matches!(w.feed(&mut s, &Row::new(&row("a", "2026-01-01T00:00:58", "0.25")), lateness).unwrap(), Fed::Added));
        w.feed(&mut s, &Row::new(&row("b", "2026-01-01T00:01:11", "1")), lateness).unwrap();
        let rows = w.emit(&mut s, lateness, false).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][0], Value::Text("a".into()));
        assert_eq!(rows[0][2..], [Value::Int(3), Value::Decimal("3.00".into()), Value::Decimal("1.00000000000000000000".into()), Value::Decimal("1.5".into())]);
        // The first minute is closed: a record for it is late.
        assert!(matches!(w.feed(&mut s, &Row::new(&row("a", "2026-01-01T00:00:40", "1")), lateness).unwrap(), Fed::Late { .. }));
        let rest = w.emit(&mut s, lateness, true).unwrap();
        assert_eq!(rest.len(), 2, "the second minute, at the end of a bounded input");
    }

    #[test]
    fn hopping_windows_hold_a_record_in_each_window_it_falls_in() {
        let p = plan("SELECT window_start, window_end, count(*) AS n FROM records GROUP BY HOP(t, INTERVAL '20' SECOND, INTERVAL '1' MINUTE)");
        let w = p.windows().unwrap();
        let mut s = WindowState::default();
        w.feed(&mut s, &Row::new(&row("a", "2026-01-01T00:00:45", "1")), 0).unwrap();
        assert_eq!(s.windows.len(), 3, "windows starting at -00:00:20, 00:00:00 and 00:00:20 hold 00:00:45");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<WindowState>(&json).unwrap(), s, "the state survives a round trip");
        let rows = w.emit(&mut s, 0, true).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r[2] == Value::Int(1)));
    }
}
