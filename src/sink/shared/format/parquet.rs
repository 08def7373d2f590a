//! Parquet through the arrow and parquet crates. Every column gets the
//! logical type that says what it is; nothing is turned into a float or a
//! string where Parquet has a type for it:
//!
//! | model type | Parquet |
//! |---|---|
//! | decimal(p ≤ 38, s) | DECIMAL(p, s) on INT32/INT64/FIXED (arrow Decimal128) |
//! | decimal(38 < p ≤ 76, s) | DECIMAL(p, s), 32-byte FIXED (arrow Decimal256) |
//! | decimal(p > 76) | STRING with the exact digits: no reader takes a wider DECIMAL |
//! | decimal without precision (PostgreSQL `numeric`) | DECIMAL(38 or 76, s), s = the largest scale in the file's first row group |
//! | timestamp | TIMESTAMP(MICROS or NANOS, isAdjustedToUTC=false) |
//! | timestamp with zone | TIMESTAMP(MICROS or NANOS, isAdjustedToUTC=true) |
//! | time / time with zone | TIME(MICROS or NANOS), the zone one normalized to UTC |
//! | date | DATE |
//! | uuid | UUID (16-byte FIXED) |
//! | json, jsonb | JSON (annotated STRING) |
//! | interval | a group {months INT32, days INT32, microseconds INT64}: Parquet's INTERVAL keeps milliseconds only |
//! | arrays, SET | LIST |
//! | integers | INT(8/16/32/64, signed or not) |
//!
//! A value that its column's type cannot hold exactly (`NaN` in a decimal,
//! `infinity` in a timestamp, nanoseconds in a microsecond column) makes
//! the record fail; the caller sends it to `errors/` with the reason.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder};
use arrow_array::types::{Decimal128Type, Decimal256Type, Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType, TimestampNanosecondType};
use arrow_array::{ArrayRef, ListArray, PrimitiveArray, StructArray, Time64MicrosecondArray, Time64NanosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{Datelike, NaiveTime, Timelike};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use super::jobs::OrderedJobs;
use super::{Extra, RecordWriter};
use crate::model::{ColumnType, Value};
use crate::sink::shared::record::Record;
use crate::sink::{Compression, SinkTable};

/// Rows per row group; also how many rows decide the scale of an
/// unbounded decimal column.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// How one column is written.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Bool,
    Int { bits: u8, unsigned: bool },
    F32,
    F64,
    /// `precision: None`: decided from the first row group.
    Decimal { precision: Option<u8>, scale: i8, decided: bool },
    Text,
    Json,
    Binary,
    Uuid,
    Date,
    Time { nanos: bool, utc: bool },
    Timestamp { nanos: bool, utc: bool },
    Interval,
    Year,
    List(Box<Plan>),
}

impl Plan {
    fn of(ty: &ColumnType) -> Plan {
        match ty {
            ColumnType::Bool => Plan::Bool,
            ColumnType::Int { bits, unsigned } => Plan::Int { bits: *bits, unsigned: *unsigned },
            ColumnType::Float32 => Plan::F32,
            ColumnType::Float64 => Plan::F64,
            ColumnType::Decimal { precision: Some(p), scale } if *p <= 76 => Plan::Decimal { precision: Some((*p).max(1) as u8), scale: scale.unwrap_or(0).min(*p) as i8, decided: true },
            ColumnType::Decimal { precision: Some(_), .. } => Plan::Text,
            ColumnType::Decimal { precision: None, .. } => Plan::Decimal { precision: None, scale: 0, decided: false },
            ColumnType::Json | ColumnType::Jsonb => Plan::Json,
            ColumnType::Binary { .. } | ColumnType::Varbinary { .. } | ColumnType::Blob { .. } => Plan::Binary,
            ColumnType::Uuid => Plan::Uuid,
            ColumnType::Date => Plan::Date,
            ColumnType::Time { precision, tz } => Plan::Time { nanos: precision.is_some_and(|p| p > 6), utc: *tz },
            ColumnType::Timestamp { precision, tz } => Plan::Timestamp { nanos: precision.is_some_and(|p| p > 6), utc: *tz },
            ColumnType::Interval { .. } => Plan::Interval,
            ColumnType::Year => Plan::Year,
            ColumnType::Array { element } => Plan::List(Box::new(Plan::of(element))),
            ColumnType::Set { .. } => Plan::List(Box::new(Plan::Text)),
            _ => Plan::Text,
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Plan::Bool => DataType::Boolean,
            Plan::Int { bits, unsigned } => match (bits, unsigned) {
                (8, false) => DataType::Int8,
                (16, false) => DataType::Int16,
                (32, false) => DataType::Int32,
                (8, true) => DataType::UInt8,
                (16, true) => DataType::UInt16,
                (32, true) => DataType::UInt32,
                (_, true) => DataType::UInt64,
                _ => DataType::Int64,
            },
            Plan::F32 => DataType::Float32,
            Plan::F64 => DataType::Float64,
            Plan::Decimal { precision, scale, .. } => {
                let p = precision.unwrap_or(38);
                if p <= 38 {
                    DataType::Decimal128(p, *scale)
                } else {
                    DataType::Decimal256(p, *scale)
                }
            }
            Plan::Text | Plan::Json => DataType::Utf8,
            Plan::Binary => DataType::Binary,
            Plan::Uuid => DataType::FixedSizeBinary(16),
            Plan::Date => DataType::Date32,
            Plan::Time { nanos, .. } => DataType::Time64(if *nanos { TimeUnit::Nanosecond } else { TimeUnit::Microsecond }),
            Plan::Timestamp { nanos, utc } => DataType::Timestamp(if *nanos { TimeUnit::Nanosecond } else { TimeUnit::Microsecond }, utc.then(|| "UTC".into())),
            Plan::Interval => DataType::Struct(interval_fields()),
            Plan::Year => DataType::Int16,
            Plan::List(inner) => DataType::List(Arc::new(inner.field("element"))),
        }
    }

    fn field(&self, name: &str) -> Field {
        let f = Field::new(name, self.data_type(), true);
        match self {
            Plan::Json => f.with_extension_type(arrow_schema::extension::Json::default()),
            Plan::Uuid => f.with_extension_type(arrow_schema::extension::Uuid),
            // Parquet's TIME(isAdjustedToUTC=true): the arrow writer reads this key.
            Plan::Time { utc: true, .. } => f.with_metadata([("adjusted_to_utc".to_string(), String::new())].into()),
            _ => f,
        }
    }
}

fn interval_fields() -> Fields {
    Fields::from(vec![Field::new("months", DataType::Int32, false), Field::new("days", DataType::Int32, false), Field::new("microseconds", DataType::Int64, false)])
}

/// Digits of a canonical decimal: sign, integer digits, fraction digits.
fn decimal_parts(d: &str) -> Result<(bool, &str, &str), String> {
    if matches!(d, "NaN" | "Infinity" | "-Infinity") {
        return Err(format!("{d} has no Parquet DECIMAL form"));
    }
    let (neg, body) = match d.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, d),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    Ok((neg, int.trim_start_matches('0'), frac))
}

/// The unscaled integer of `d` at `scale`, as decimal digits (with sign);
/// an error if `d` has more fraction digits or more digits in all than
/// the column holds.
fn unscaled(d: &str, precision: u8, scale: i8) -> Result<String, String> {
    let (neg, int, frac) = decimal_parts(d)?;
    let scale = scale.max(0) as usize;
    if frac.trim_end_matches('0').len() > scale {
        return Err(format!("{d} has more than {scale} fraction digits: DECIMAL({precision},{scale}) would round it"));
    }
    if int.len() + scale > precision as usize {
        return Err(format!("{d} has {} integer digits: DECIMAL({precision},{scale}) holds {}", int.len(), precision as usize - scale));
    }
    let mut s = String::with_capacity(int.len() + scale + 1);
    if neg {
        s.push('-');
    }
    s.push_str(int);
    let frac = if frac.len() > scale { &frac[..scale] } else { frac };
    s.push_str(frac);
    for _ in frac.len()..scale {
        s.push('0');
    }
    let digits = s.trim_start_matches('-').trim_start_matches('0');
    Ok(match (digits.is_empty(), neg) {
        (true, _) => "0".into(),
        (false, true) => format!("-{digits}"),
        (false, false) => digits.to_string(),
    })
}

fn time_units(t: &NaiveTime, nanos: bool) -> Result<i64, String> {
    let secs = t.num_seconds_from_midnight() as i64;
    let mut ns = t.nanosecond() as i64;
    // chrono's leap second form: 24:00:00.
    let secs = if ns >= 1_000_000_000 {
        ns -= 1_000_000_000;
        secs + 1
    } else {
        secs
    };
    if nanos {
        Ok(secs * 1_000_000_000 + ns)
    } else if ns % 1000 != 0 {
        Err(format!("{t} has nanoseconds; the column keeps microseconds"))
    } else {
        Ok(secs * 1_000_000 + ns / 1000)
    }
}

fn timestamp_units(v: &Value, nanos: bool) -> Result<i64, String> {
    let dt = match v {
        Value::Timestamp(t) => t.and_utc(),
        Value::TimestampTz(t) => *t,
        Value::Infinity { negative } => return Err(format!("{}infinity has no Parquet TIMESTAMP form", if *negative { "-" } else { "" })),
        other => return Err(mismatch(other, "a timestamp")),
    };
    if nanos {
        dt.timestamp_nanos_opt().ok_or_else(|| format!("{dt} is outside the nanosecond timestamp range (1677–2262)"))
    } else if dt.timestamp_subsec_nanos() % 1000 != 0 {
        Err(format!("{dt} has nanoseconds; the column keeps microseconds"))
    } else {
        Ok(dt.timestamp_micros())
    }
}

fn mismatch(v: &Value, want: &str) -> String {
    format!("a {} value where the column holds {want}", v.kind())
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        Value::Year(y) => Some(*y as i128),
        Value::Bool(b) => Some(*b as i128),
        _ => None,
    }
}

/// Checks that `v` fits `plan` exactly, without building anything: a
/// record is checked whole before any of it is buffered.
fn check(plan: &Plan, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    match plan {
        Plan::Bool => matches!(v, Value::Bool(_)).then_some(()).ok_or_else(|| mismatch(v, "booleans")),
        Plan::Int { bits, unsigned } => {
            let n = int_of(v).ok_or_else(|| mismatch(v, "integers"))?;
            let ok = match (bits, unsigned) {
                (8, false) => i8::try_from(n).is_ok(),
                (16, false) => i16::try_from(n).is_ok(),
                (32, false) => i32::try_from(n).is_ok(),
                (8, true) => u8::try_from(n).is_ok(),
                (16, true) => u16::try_from(n).is_ok(),
                (32, true) => u32::try_from(n).is_ok(),
                (_, true) => u64::try_from(n).is_ok(),
                _ => i64::try_from(n).is_ok(),
            };
            ok.then_some(()).ok_or_else(|| format!("{n} is out of range for a {}{bits}-bit integer", if *unsigned { "unsigned " } else { "" }))
        }
        Plan::F32 | Plan::F64 => matches!(v, Value::Float32(_) | Value::Float64(_) | Value::Int(_)).then_some(()).ok_or_else(|| mismatch(v, "floats")),
        Plan::Decimal { precision, scale, decided } => match v {
            Value::Decimal(d) if *decided => unscaled(d, precision.unwrap_or(38), *scale).map(drop),
            Value::Decimal(d) => decimal_parts(d).map(drop),
            Value::Int(_) | Value::UInt(_) => Ok(()),
            other => Err(mismatch(other, "decimals")),
        },
        Plan::Text | Plan::Json => match v {
            Value::Bytes(b) => std::str::from_utf8(b).map(drop).map_err(|_| "bytes that are not UTF-8 in a text column".to_string()),
            other => crate::codec::text::write_text(other, &mut String::new()),
        },
        Plan::Binary => matches!(v, Value::Bytes(_) | Value::Text(_)).then_some(()).ok_or_else(|| mismatch(v, "bytes")),
        Plan::Uuid => matches!(v, Value::Uuid(_)).then_some(()).ok_or_else(|| mismatch(v, "uuids")),
        Plan::Date => match v {
            Value::Date(_) => Ok(()),
            Value::Infinity { negative } => Err(format!("{}infinity has no Parquet DATE form", if *negative { "-" } else { "" })),
            Value::ZeroDate => Err("a zero date (0000-00-00) has no Parquet DATE form".into()),
            other => Err(mismatch(other, "dates")),
        },
        Plan::Time { nanos, .. } => match v {
            Value::Time(t) | Value::TimeTz(t, _) => time_units(t, *nanos).map(drop),
            other => Err(mismatch(other, "times of day")),
        },
        Plan::Timestamp { nanos, .. } => timestamp_units(v, *nanos).map(drop),
        Plan::Interval => matches!(v, Value::Interval(_)).then_some(()).ok_or_else(|| mismatch(v, "intervals")),
        Plan::Year => match int_of(v) {
            Some(n) if i16::try_from(n).is_ok() => Ok(()),
            _ => Err(mismatch(v, "years")),
        },
        Plan::List(inner) => match v {
            Value::Array(items) => items.iter().try_for_each(|i| check(inner, i)),
            Value::Set(_) => Ok(()),
            other => Err(mismatch(other, "arrays")),
        },
    }
}

/// Builds one column of a row group.
fn build(plan: &Plan, values: &[Option<&Value>]) -> Result<ArrayRef, String> {
    macro_rules! prim {
        ($builder:ty, $conv:expr) => {{
            let mut b = <$builder>::with_capacity(values.len());
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => b.append_value($conv(v)?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let int = |v: &Value| int_of(v).ok_or_else(|| mismatch(v, "integers"));
    Ok(match plan {
        Plan::Bool => prim!(BooleanBuilder, |v: &Value| match v {
            Value::Bool(b) => Ok::<_, String>(*b),
            o => Err(mismatch(o, "booleans")),
        }),
        Plan::Int { bits, unsigned } => match (bits, unsigned) {
            (8, false) => prim!(Int8Builder, |v| int(v).map(|n| n as i8)),
            (16, false) => prim!(Int16Builder, |v| int(v).map(|n| n as i16)),
            (32, false) => prim!(Int32Builder, |v| int(v).map(|n| n as i32)),
            (8, true) => prim!(UInt8Builder, |v| int(v).map(|n| n as u8)),
            (16, true) => prim!(UInt16Builder, |v| int(v).map(|n| n as u16)),
            (32, true) => prim!(UInt32Builder, |v| int(v).map(|n| n as u32)),
            (_, true) => prim!(UInt64Builder, |v| int(v).map(|n| n as u64)),
            _ => prim!(Int64Builder, |v| int(v).map(|n| n as i64)),
        },
        Plan::F32 => prim!(Float32Builder, |v: &Value| match v {
            Value::Float32(x) => Ok::<_, String>(*x),
            Value::Float64(x) => Ok(*x as f32),
            Value::Int(i) => Ok(*i as f32),
            o => Err(mismatch(o, "floats")),
        }),
        Plan::F64 => prim!(Float64Builder, |v: &Value| match v {
            Value::Float64(x) => Ok::<_, String>(*x),
            Value::Float32(x) => Ok(f64::from(*x)),
            Value::Int(i) => Ok(*i as f64),
            o => Err(mismatch(o, "floats")),
        }),
        Plan::Decimal { precision, scale, .. } => {
            let p = precision.unwrap_or(38);
            let digits = |v: &Value| -> Result<String, String> {
                match v {
                    Value::Decimal(d) => unscaled(d, p, *scale),
                    o => unscaled(&int_of(o).ok_or_else(|| mismatch(o, "decimals"))?.to_string(), p, *scale),
                }
            };
            if p <= 38 {
                let mut out: Vec<Option<i128>> = Vec::with_capacity(values.len());
                for v in values {
                    out.push(match v {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(digits(v)?.parse::<i128>().map_err(|e| e.to_string())?),
                    });
                }
                Arc::new(PrimitiveArray::<Decimal128Type>::from(out).with_precision_and_scale(p, *scale).map_err(|e| e.to_string())?)
            } else {
                let mut out: Vec<Option<arrow_buffer::i256>> = Vec::with_capacity(values.len());
                for v in values {
                    out.push(match v {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(parse_i256(&digits(v)?)?),
                    });
                }
                Arc::new(PrimitiveArray::<Decimal256Type>::from(out).with_precision_and_scale(p, *scale).map_err(|e| e.to_string())?)
            }
        }
        Plan::Text => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 16);
            let mut s = String::new();
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bytes(bytes)) => b.append_value(std::str::from_utf8(bytes).map_err(|_| "bytes that are not UTF-8 in a text column".to_string())?),
                    Some(v) => {
                        s.clear();
                        crate::codec::text::write_text(v, &mut s)?;
                        b.append_value(&s);
                    }
                }
            }
            Arc::new(b.finish())
        }
        Plan::Json => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 32);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Json(j) | Value::Text(j)) => b.append_value(j),
                    Some(o) => return Err(mismatch(o, "JSON")),
                }
            }
            Arc::new(b.finish())
        }
        Plan::Binary => {
            let mut b = BinaryBuilder::with_capacity(values.len(), values.len() * 32);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bytes(bytes)) => b.append_value(bytes),
                    Some(Value::Text(t)) => b.append_value(t.as_bytes()),
                    Some(o) => return Err(mismatch(o, "bytes")),
                }
            }
            Arc::new(b.finish())
        }
        Plan::Uuid => {
            let mut b = FixedSizeBinaryBuilder::with_capacity(values.len(), 16);
            for v in values {
                match v {
                    Some(Value::Uuid(u)) => b.append_value(u).map_err(|e| e.to_string())?,
                    None | Some(Value::Null) => b.append_null(),
                    Some(o) => return Err(mismatch(o, "uuids")),
                }
            }
            Arc::new(b.finish())
        }
        Plan::Date => prim!(Date32Builder, |v: &Value| match v {
            Value::Date(d) => Ok::<_, String>((d.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()) as i32),
            o => Err(mismatch(o, "dates")),
        }),
        Plan::Time { nanos, utc } => {
            let mut out: Vec<Option<i64>> = Vec::with_capacity(values.len());
            for v in values {
                out.push(match v {
                    None | Some(Value::Null) => None,
                    Some(Value::Time(t)) => Some(time_units(t, *nanos)?),
                    Some(Value::TimeTz(t, off)) => {
                        let units = time_units(t, *nanos)?;
                        let per_sec = if *nanos { 1_000_000_000 } else { 1_000_000 };
                        let day = 86_400 * per_sec;
                        // TIME(isAdjustedToUTC): the wall time minus its offset, within one day.
                        Some(if *utc { (units - *off as i64 * per_sec).rem_euclid(day) } else { units })
                    }
                    Some(o) => return Err(mismatch(o, "times of day")),
                });
            }
            if *nanos {
                Arc::new(Time64NanosecondArray::from(out))
            } else {
                Arc::new(Time64MicrosecondArray::from(out))
            }
        }
        Plan::Timestamp { nanos, utc } => {
            let mut out: Vec<Option<i64>> = Vec::with_capacity(values.len());
            for v in values {
                out.push(match v {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(timestamp_units(v, *nanos)?),
                });
            }
            let tz = utc.then_some("UTC");
            if *nanos {
                Arc::new(TimestampNanosecondArray::from(out).with_timezone_opt(tz))
            } else {
                Arc::new(TimestampMicrosecondArray::from(out).with_timezone_opt(tz))
            }
        }
        Plan::Interval => {
            let (mut m, mut d, mut us, mut valid) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for v in values {
                let iv = match v {
                    Some(Value::Interval(iv)) => Some(*iv),
                    None | Some(Value::Null) => None,
                    Some(o) => return Err(mismatch(o, "intervals")),
                };
                valid.push(iv.is_some());
                let iv = iv.unwrap_or_default();
                m.push(iv.months);
                d.push(iv.days);
                us.push(iv.micros);
            }
            let arrays: Vec<ArrayRef> = vec![Arc::new(arrow_array::Int32Array::from(m)), Arc::new(arrow_array::Int32Array::from(d)), Arc::new(arrow_array::Int64Array::from(us))];
            Arc::new(StructArray::try_new(interval_fields(), arrays, Some(valid.into())).map_err(|e| e.to_string())?)
        }
        Plan::Year => prim!(Int16Builder, |v: &Value| int_of(v).map(|n| n as i16).ok_or_else(|| mismatch(v, "years"))),
        Plan::List(inner) => {
            let set_items: Vec<Vec<Value>> = values.iter().map(|v| match v {
                Some(Value::Set(members)) => members.iter().map(|m| Value::Text(m.clone())).collect(),
                _ => Vec::new(),
            }).collect();
            let mut offsets = vec![0i32];
            let mut flat: Vec<Option<&Value>> = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for (v, set) in values.iter().zip(&set_items) {
                match v {
                    Some(Value::Array(items)) => flat.extend(items.iter().map(Some)),
                    Some(Value::Set(_)) => flat.extend(set.iter().map(Some)),
                    None | Some(Value::Null) => {}
                    Some(o) => return Err(mismatch(o, "arrays")),
                }
                valid.push(!matches!(v, None | Some(Value::Null)));
                offsets.push(i32::try_from(flat.len()).map_err(|_| "a row group's arrays hold more than 2^31 elements".to_string())?);
            }
            let child = build(inner, &flat)?;
            let field = Arc::new(inner.field("element"));
            Arc::new(ListArray::try_new(field, arrow_buffer_offsets(offsets), child, Some(valid.into())).map_err(|e| e.to_string())?)
        }
    })
}

fn arrow_buffer_offsets(offsets: Vec<i32>) -> arrow_buffer::OffsetBuffer<i32> {
    arrow_buffer::OffsetBuffer::new(offsets.into())
}

fn parse_i256(s: &str) -> Result<arrow_buffer::i256, String> {
    arrow_buffer::i256::from_string(s).ok_or_else(|| format!("{s} is not a 256-bit integer"))
}

/// A value made ready for its column's builder: converted and checked, so
/// that a record is either added whole or not at all. Text and bytes stay
/// where they are (in the record, or in the writer's scratch text) until
/// they are appended.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Null,
    Bool(bool),
    /// Integers, dates (days), times and timestamps (units), unscaled decimals.
    Int(i128),
    F32(f32),
    F64(f64),
    /// The record's own text or bytes.
    Borrowed,
    /// Text written into the scratch string, at this range.
    Scratch(usize, usize),
    Uuid([u8; 16]),
    /// Kept as a value, for a column built at the end of the row group.
    Keep,
}

/// One column of the row group being filled: typed builders where Arrow has
/// one for the type, values kept for the few types built at the end
/// (intervals, lists, wide decimals, and the decimals whose scale waits for
/// the first row group).
enum Column {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec128(Decimal128Builder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    /// Time and timestamp units; the array gets its unit and zone when the
    /// row group is finished.
    Units(Int64Builder),
    Values(Vec<Option<Value>>),
}

impl Column {
    fn new(plan: &Plan) -> Column {
        let n = ROW_GROUP_ROWS;
        match plan {
            Plan::Bool => Column::Bool(BooleanBuilder::with_capacity(n)),
            Plan::Int { bits, unsigned } => match (bits, unsigned) {
                (8, false) => Column::I8(Int8Builder::with_capacity(n)),
                (16, false) => Column::I16(Int16Builder::with_capacity(n)),
                (32, false) => Column::I32(Int32Builder::with_capacity(n)),
                (8, true) => Column::U8(UInt8Builder::with_capacity(n)),
                (16, true) => Column::U16(UInt16Builder::with_capacity(n)),
                (32, true) => Column::U32(UInt32Builder::with_capacity(n)),
                (_, true) => Column::U64(UInt64Builder::with_capacity(n)),
                _ => Column::I64(Int64Builder::with_capacity(n)),
            },
            Plan::Year => Column::I16(Int16Builder::with_capacity(n)),
            Plan::F32 => Column::F32(Float32Builder::with_capacity(n)),
            Plan::F64 => Column::F64(Float64Builder::with_capacity(n)),
            Plan::Decimal { precision: Some(p), decided: true, .. } if *p <= 38 => Column::Dec128(Decimal128Builder::with_capacity(n)),
            Plan::Text | Plan::Json => Column::Str(StringBuilder::with_capacity(n, n * 16)),
            Plan::Binary => Column::Bin(BinaryBuilder::with_capacity(n, n * 16)),
            Plan::Uuid => Column::Uuid(FixedSizeBinaryBuilder::with_capacity(n, 16)),
            Plan::Date => Column::Date(Date32Builder::with_capacity(n)),
            Plan::Time { .. } | Plan::Timestamp { .. } => Column::Units(Int64Builder::with_capacity(n)),
            Plan::Decimal { .. } | Plan::Interval | Plan::List(_) => Column::Values(Vec::with_capacity(n)),
        }
    }

    /// Converts and checks `v` for this column, without adding it.
    fn prep(&self, plan: &Plan, v: &Value, scratch: &mut String) -> Result<Cell, String> {
        if v.is_null() {
            return Ok(Cell::Null);
        }
        if let Column::Values(_) = self {
            return check(plan, v).map(|()| Cell::Keep);
        }
        Ok(match plan {
            Plan::Bool => match v {
                Value::Bool(b) => Cell::Bool(*b),
                o => return Err(mismatch(o, "booleans")),
            },
            Plan::Int { .. } | Plan::Year => {
                check(plan, v)?;
                Cell::Int(int_of(v).ok_or_else(|| mismatch(v, "integers"))?)
            }
            Plan::F32 => match v {
                Value::Float32(x) => Cell::F32(*x),
                Value::Float64(x) => Cell::F32(*x as f32),
                Value::Int(i) => Cell::F32(*i as f32),
                o => return Err(mismatch(o, "floats")),
            },
            Plan::F64 => match v {
                Value::Float64(x) => Cell::F64(*x),
                Value::Float32(x) => Cell::F64(f64::from(*x)),
                Value::Int(i) => Cell::F64(*i as f64),
                o => return Err(mismatch(o, "floats")),
            },
            Plan::Decimal { precision, scale, .. } => {
                let p = precision.unwrap_or(38);
                Cell::Int(match v {
                    Value::Decimal(d) => decimal_i128(d, p, *scale)?,
                    o => decimal_i128(&int_of(o).ok_or_else(|| mismatch(o, "decimals"))?.to_string(), p, *scale)?,
                })
            }
            Plan::Text => match v {
                Value::Text(_) => Cell::Borrowed,
                Value::Bytes(b) => std::str::from_utf8(b).map(|_| Cell::Borrowed).map_err(|_| "bytes that are not UTF-8 in a text column".to_string())?,
                other => {
                    let start = scratch.len();
                    crate::codec::text::write_text(other, scratch)?;
                    Cell::Scratch(start, scratch.len())
                }
            },
            Plan::Json => match v {
                Value::Json(_) | Value::Text(_) => Cell::Borrowed,
                o => return Err(mismatch(o, "JSON")),
            },
            Plan::Binary => match v {
                Value::Bytes(_) | Value::Text(_) => Cell::Borrowed,
                o => return Err(mismatch(o, "bytes")),
            },
            Plan::Uuid => match v {
                Value::Uuid(u) => Cell::Uuid(*u),
                o => return Err(mismatch(o, "uuids")),
            },
            Plan::Date => match v {
                Value::Date(d) => Cell::Int(i128::from(d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)),
                other => return check(plan, other).and(Err(mismatch(other, "dates"))),
            },
            Plan::Time { nanos, utc } => match v {
                Value::Time(t) => Cell::Int(i128::from(time_units(t, *nanos)?)),
                Value::TimeTz(t, off) => {
                    let units = time_units(t, *nanos)?;
                    let per_sec = if *nanos { 1_000_000_000 } else { 1_000_000 };
                    // TIME(isAdjustedToUTC): the wall time minus its offset, within one day.
                    Cell::Int(i128::from(if *utc { (units - i64::from(*off) * per_sec).rem_euclid(86_400 * per_sec) } else { units }))
                }
                o => return Err(mismatch(o, "times of day")),
            },
            Plan::Timestamp { nanos, .. } => Cell::Int(i128::from(timestamp_units(v, *nanos)?)),
            Plan::Interval | Plan::List(_) => return check(plan, v).map(|()| Cell::Keep),
        })
    }

    /// Adds a value [`Column::prep`] made ready.
    fn push(&mut self, cell: Cell, v: Option<&Value>, scratch: &str) {
        macro_rules! int {
            ($b:expr, $t:ty) => {
                match cell {
                    Cell::Int(n) => $b.append_value(n as $t),
                    _ => $b.append_null(),
                }
            };
        }
        match self {
            Column::Bool(b) => match cell {
                Cell::Bool(x) => b.append_value(x),
                _ => b.append_null(),
            },
            Column::I8(b) => int!(b, i8),
            Column::I16(b) => int!(b, i16),
            Column::I32(b) => int!(b, i32),
            Column::I64(b) => int!(b, i64),
            Column::U8(b) => int!(b, u8),
            Column::U16(b) => int!(b, u16),
            Column::U32(b) => int!(b, u32),
            Column::U64(b) => int!(b, u64),
            Column::Date(b) => int!(b, i32),
            Column::Units(b) => int!(b, i64),
            Column::Dec128(b) => int!(b, i128),
            Column::F32(b) => match cell {
                Cell::F32(x) => b.append_value(x),
                _ => b.append_null(),
            },
            Column::F64(b) => match cell {
                Cell::F64(x) => b.append_value(x),
                _ => b.append_null(),
            },
            Column::Str(b) => match (cell, v) {
                (Cell::Scratch(from, to), _) => b.append_value(&scratch[from..to]),
                (Cell::Borrowed, Some(Value::Text(s) | Value::Json(s))) => b.append_value(s),
                (Cell::Borrowed, Some(Value::Bytes(bytes))) => b.append_value(std::str::from_utf8(bytes).unwrap_or_default()),
                _ => b.append_null(),
            },
            Column::Bin(b) => match (cell, v) {
                (Cell::Borrowed, Some(Value::Bytes(bytes))) => b.append_value(bytes),
                (Cell::Borrowed, Some(Value::Text(t))) => b.append_value(t.as_bytes()),
                _ => b.append_null(),
            },
            Column::Uuid(b) => match cell {
                // 16 bytes into a 16-byte column: cannot fail.
                Cell::Uuid(u) => b.append_value(u).unwrap_or_default(),
                _ => b.append_null(),
            },
            Column::Values(values) => values.push(match cell {
                Cell::Null => None,
                _ => v.cloned(),
            }),
        }
    }

    /// The column's array; the builder starts the next row group empty.
    fn finish(&mut self, plan: &Plan) -> Result<ArrayRef, String> {
        Ok(match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::I8(b) => Arc::new(b.finish()),
            Column::I16(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b) => Arc::new(b.finish()),
            Column::U8(b) => Arc::new(b.finish()),
            Column::U16(b) => Arc::new(b.finish()),
            Column::U32(b) => Arc::new(b.finish()),
            Column::U64(b) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Str(b) => Arc::new(b.finish()),
            Column::Bin(b) => Arc::new(b.finish()),
            Column::Uuid(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Dec128(b) => {
                let Plan::Decimal { precision, scale, .. } = plan else { return Err("a decimal column without a decimal plan".into()) };
                Arc::new(b.finish().with_precision_and_scale(precision.unwrap_or(38), *scale).map_err(|e| e.to_string())?)
            }
            Column::Units(b) => {
                let units = b.finish();
                match plan {
                    Plan::Time { nanos: true, .. } => Arc::new(units.reinterpret_cast::<Time64NanosecondType>()),
                    Plan::Time { nanos: false, .. } => Arc::new(units.reinterpret_cast::<Time64MicrosecondType>()),
                    Plan::Timestamp { nanos, utc } => {
                        let tz = utc.then_some("UTC");
                        if *nanos {
                            Arc::new(units.reinterpret_cast::<TimestampNanosecondType>().with_timezone_opt(tz))
                        } else {
                            Arc::new(units.reinterpret_cast::<TimestampMicrosecondType>().with_timezone_opt(tz))
                        }
                    }
                    _ => return Err("a time column without a time plan".into()),
                }
            }
            Column::Values(values) => {
                let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
                let array = build(plan, &refs)?;
                values.clear();
                array
            }
        })
    }
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01: Parquet's DATE counts days
/// from there.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The unscaled value of `d` at `scale` (at most 38 digits), read straight
/// from its digits; refuses what [`unscaled`] refuses.
fn decimal_i128(d: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (neg, int, frac) = decimal_parts(d)?;
    let scale_digits = scale.max(0) as usize;
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale_digits {
        return Err(format!("{d} has more than {scale_digits} fraction digits: DECIMAL({precision},{scale}) would round it"));
    }
    if int.len() + scale_digits > precision as usize || precision > 38 {
        return Err(format!("{d} has {} integer digits: DECIMAL({precision},{scale}) holds {}", int.len(), (precision as usize).saturating_sub(scale_digits)));
    }
    let mut n: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return Err(format!("{d} is not a decimal number"));
        }
        n = n * 10 + i128::from(b - b'0');
    }
    for _ in frac.len()..scale_digits {
        n *= 10;
    }
    Ok(if neg { -n } else { n })
}

/// Values sampled from a column's first row group to judge its dictionary.
const DICTIONARY_SAMPLE: usize = 4096;

/// Is `array` mostly distinct values, judged on an even sample? Parquet
/// tries a dictionary for every column of every row group and keeps it
/// until it outgrows its page: for keys, timestamps, hashes and amounts
/// that is hashing every value for nothing (the dictionary holds as many
/// entries as there are rows, or is dropped half way). Such a column is
/// written plain from the first row group on; one with repeats (a
/// status, a customer id) keeps its dictionary.
fn mostly_distinct(array: &ArrayRef) -> bool {
    use arrow_array::cast::AsArray;
    let n = array.len();
    if n < DICTIONARY_SAMPLE {
        // A small file: what the dictionary costs does not matter.
        return false;
    }
    let step = n / DICTIONARY_SAMPLE;
    let mut seen = std::collections::HashSet::with_capacity(DICTIONARY_SAMPLE);
    let mut sampled = 0usize;
    let data = array.to_data();
    let width = array.data_type().primitive_width().filter(|w| *w >= 4);
    for i in (0..n).step_by(step) {
        if array.is_null(i) {
            continue;
        }
        sampled += 1;
        let key: &[u8] = match (array.data_type(), width) {
            (DataType::Utf8, _) => array.as_string::<i32>().value(i).as_bytes(),
            (DataType::Binary, _) => array.as_binary::<i32>().value(i),
            (_, Some(w)) if data.buffers().len() == 1 => {
                let at = (data.offset() + i) * w;
                &data.buffers()[0].as_slice()[at..at + w]
            }
            _ => return false,
        };
        seen.insert(key);
    }
    sampled >= DICTIONARY_SAMPLE / 2 && seen.len() * 2 > sampled
}

/// The encoded column chunks of one row group, in column order.
type EncodedGroup = Result<Vec<ArrowColumnChunk>, String>;

/// The file, once its schema is fixed (at the first row group).
struct File {
    schema: SchemaRef,
    writer: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    groups: usize,
}

impl File {
    /// Appends an encoded row group: row groups go in the order they were made.
    fn append(&mut self, encoded: EncodedGroup) -> Result<(), String> {
        let mut group = self.writer.next_row_group().map_err(|e| e.to_string())?;
        for chunk in encoded? {
            chunk.append_to_row_group(&mut group).map_err(|e| e.to_string())?;
        }
        group.close().map(drop).map_err(|e| e.to_string())
    }
}

/// Encodes (and compresses) the columns of one row group, on the thread it
/// runs on.
fn encode(schema: &SchemaRef, arrays: &[ArrayRef], writers: Vec<ArrowColumnWriter>) -> EncodedGroup {
    let mut writers = writers.into_iter();
    let mut chunks = Vec::with_capacity(writers.len());
    for (field, array) in schema.fields().iter().zip(arrays) {
        // A struct or list has a leaf column per primitive inside it, each with its own writer.
        for leaf in compute_leaves(field, array).map_err(|e| e.to_string())? {
            let mut w = writers.next().ok_or("fewer column writers than leaf columns")?;
            w.write(&leaf).map_err(|e| e.to_string())?;
            chunks.push(w.close().map_err(|e| e.to_string())?);
        }
    }
    Ok(chunks)
}

/// Rows go straight into typed column builders; each full row group is
/// encoded on another thread while the next one fills (see [`OrderedJobs`]),
/// and the encoded groups are appended to the file in order.
pub struct ParquetWriter {
    names: Vec<String>,
    plans: Vec<Plan>,
    columns: Vec<Column>,
    extra: Extra,
    codec: PqCompression,
    ops: Vec<&'static str>,
    ids: Vec<String>,
    /// Per record: the cells and the text converted for it.
    cells: Vec<Cell>,
    scratch: String,
    rows: usize,
    file: Option<File>,
    jobs: OrderedJobs<EncodedGroup>,
    bytes: usize,
    records: u64,
}

impl ParquetWriter {
    pub fn new(table: &SinkTable, extra: &Extra, compression: Compression) -> Result<Self, String> {
        let codec = match compression {
            Compression::None => PqCompression::UNCOMPRESSED,
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::Gzip => PqCompression::GZIP(GzipLevel::default()),
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
        };
        let plans: Vec<Plan> = table.columns.iter().map(|c| Plan::of(&c.ty)).collect();
        Ok(ParquetWriter {
            names: table.columns.iter().map(|c| c.name.clone()).collect(),
            columns: plans.iter().map(Column::new).collect(),
            plans,
            extra: extra.clone(),
            codec,
            ops: Vec::new(),
            ids: Vec::new(),
            cells: Vec::new(),
            scratch: String::new(),
            rows: 0,
            file: None,
            jobs: OrderedJobs::new(),
            bytes: 0,
            records: 0,
        })
    }

    /// Fixes the type of unbounded decimal columns from the buffered rows:
    /// the largest scale seen, and 38 digits if they fit, else 76.
    fn decide(&mut self) {
        for (plan, column) in self.plans.iter_mut().zip(&self.columns) {
            let Plan::Decimal { precision, scale, decided } = plan else { continue };
            if *decided {
                continue;
            }
            let (mut int_digits, mut frac_digits) = (1usize, 0usize);
            if let Column::Values(values) = column {
                for v in values {
                    if let Some(Value::Decimal(d)) = v {
                        if let Ok((_, int, frac)) = decimal_parts(d) {
                            int_digits = int_digits.max(int.len());
                            frac_digits = frac_digits.max(frac.trim_end_matches('0').len());
                        }
                    }
                }
            }
            let frac_digits = frac_digits.min(76);
            *scale = frac_digits as i8;
            *precision = Some(if int_digits + frac_digits <= 38 { 38 } else { 76 });
            *decided = true;
        }
    }

    /// Fixes the schema, and which columns go without a dictionary, from the
    /// first row group (`arrays`, in schema order).
    fn open_file(&mut self, schema: SchemaRef, arrays: &[ArrayRef]) -> Result<(), String> {
        let mut props = WriterProperties::builder().set_compression(self.codec).set_max_row_group_row_count(Some(ROW_GROUP_ROWS)).set_created_by(format!("barge {}", env!("CARGO_PKG_VERSION")));
        for (field, array) in schema.fields().iter().zip(arrays) {
            if mostly_distinct(array) {
                props = props.set_column_dictionary_enabled(ColumnPath::new(vec![field.name().clone()]), false);
            }
        }
        // ArrowWriter writes the Arrow schema into the file's metadata (time
        // zones, extension types); its lower half then takes row groups encoded elsewhere.
        let (writer, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.build())).and_then(ArrowWriter::into_serialized_writer).map_err(|e| e.to_string())?;
        self.file = Some(File { schema, writer, factory, groups: 0 });
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        let mut fields = Vec::new();
        if self.extra.op {
            fields.push(Field::new("Op", DataType::Utf8, false));
        }
        fields.extend(self.plans.iter().zip(&self.names).map(|(p, n)| p.field(n)));
        if let Some(id) = &self.extra.record_id {
            fields.push(Field::new(id, DataType::Utf8, false));
        }
        Arc::new(Schema::new(fields))
    }

    fn flush_group(&mut self) -> Result<(), String> {
        if self.rows == 0 {
            return Ok(());
        }
        if self.file.is_none() {
            self.decide();
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 2);
        if self.extra.op {
            arrays.push(Arc::new(arrow_array::StringArray::from(std::mem::take(&mut self.ops))));
        }
        for (column, plan) in self.columns.iter_mut().zip(&self.plans) {
            arrays.push(column.finish(plan)?);
            // A decimal whose scale was waiting is typed from now on.
            if matches!(column, Column::Values(_)) {
                *column = Column::new(plan);
            }
        }
        if self.extra.record_id.is_some() {
            arrays.push(Arc::new(arrow_array::StringArray::from(std::mem::take(&mut self.ids))));
        }
        self.rows = 0;
        if self.file.is_none() {
            self.open_file(self.schema(), &arrays)?;
        }
        let file = self.file.as_mut().ok_or("no file")?;
        let writers = file.factory.create_column_writers(file.groups).map_err(|e| e.to_string())?;
        file.groups += 1;
        let schema = file.schema.clone();
        if let Some(done) = self.jobs.submit(move || encode(&schema, &arrays, writers))? {
            file.append(done)?;
        }
        Ok(())
    }
}

impl RecordWriter for ParquetWriter {
    fn write(&mut self, rec: &Record) -> Result<(), String> {
        self.cells.clear();
        self.scratch.clear();
        let mut weight = 0;
        for (i, (column, plan)) in self.columns.iter().zip(&self.plans).enumerate() {
            let cell = match rec.values.get(i).copied().flatten() {
                None => Cell::Null,
                Some(v) => {
                    weight += v.weight();
                    column.prep(plan, v, &mut self.scratch).map_err(|e| format!("column {}: {e}", self.names[i]))?
                }
            };
            self.cells.push(cell);
        }
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.push(self.cells[i], rec.values.get(i).copied().flatten(), &self.scratch);
        }
        if self.extra.op {
            self.ops.push(rec.kind.op_code());
        }
        if self.extra.record_id.is_some() {
            self.ids.push(rec.id.clone());
        }
        self.bytes += weight;
        self.records += 1;
        self.rows += 1;
        if self.rows >= ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.bytes
    }

    fn records(&self) -> u64 {
        self.records
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, String> {
        self.flush_group()?;
        let encoded = self.jobs.drain()?;
        let mut file = self.file.take().ok_or("an empty Parquet file")?;
        for group in encoded {
            file.append(group)?;
        }
        file.writer.into_inner().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_exactly_or_refuse() {
        assert_eq!(unscaled("-12.5", 10, 3).unwrap(), "-12500");
        assert_eq!(unscaled("0.000", 10, 3).unwrap(), "0");
        assert_eq!(unscaled("12345678901234567890123456789012345.123", 38, 3).unwrap(), "12345678901234567890123456789012345123");
        assert!(unscaled("1.2345", 10, 3).unwrap_err().contains("round"));
        assert!(unscaled("123456789", 10, 3).is_err());
        assert!(unscaled("NaN", 10, 3).is_err());
    }

    #[test]
    fn types_map_to_logical_types() {
        assert_eq!(Plan::of(&ColumnType::Decimal { precision: Some(20), scale: Some(4) }).data_type(), DataType::Decimal128(20, 4));
        assert_eq!(Plan::of(&ColumnType::Decimal { precision: Some(60), scale: Some(10) }).data_type(), DataType::Decimal256(60, 10));
        assert_eq!(Plan::of(&ColumnType::Decimal { precision: Some(100), scale: Some(10) }), Plan::Text);
        assert_eq!(Plan::of(&ColumnType::Timestamp { precision: Some(6), tz: true }).data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        assert_eq!(Plan::of(&ColumnType::Timestamp { precision: None, tz: false }).data_type(), DataType::Timestamp(TimeUnit::Microsecond, None));
        assert!(check(&Plan::Timestamp { nanos: false, utc: true }, &Value::Infinity { negative: false }).is_err());
        assert!(check(&Plan::Int { bits: 16, unsigned: false }, &Value::Int(40_000)).is_err());
    }

    #[test]
    fn unique_columns_go_without_a_dictionary_and_repeating_ones_keep_it() {
        let n = 65_536i64;
        let ids: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..n));
        let customers: ArrayRef = Arc::new(arrow_array::Int32Array::from_iter_values((0..n).map(|i| (i % 5000) as i32)));
        let hashes: ArrayRef = Arc::new(arrow_array::StringArray::from_iter_values((0..n).map(|i| format!("{:032x}", i * 7919))));
        let statuses: ArrayRef = Arc::new(arrow_array::StringArray::from_iter_values((0..n).map(|i| ["new", "paid", "shipped"][i as usize % 3])));
        let flags: ArrayRef = Arc::new(arrow_array::BooleanArray::from_iter((0..n).map(|i| Some(i % 2 == 0))));
        assert!(mostly_distinct(&ids) && mostly_distinct(&hashes));
        assert!(!mostly_distinct(&customers) && !mostly_distinct(&statuses) && !mostly_distinct(&flags));
        let small: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..100));
        assert!(!mostly_distinct(&small), "a small file keeps parquet's default");
    }
}
