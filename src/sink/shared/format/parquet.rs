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

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder};
use arrow_array::types::{Decimal128Type, Decimal256Type};
use arrow_array::{ArrayRef, ListArray, PrimitiveArray, RecordBatch, StructArray, Time64MicrosecondArray, Time64NanosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{NaiveTime, Timelike};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

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

pub struct ParquetWriter {
    names: Vec<String>,
    plans: Vec<Plan>,
    extra: Extra,
    props: WriterProperties,
    rows: Vec<Vec<Option<Value>>>,
    ops: Vec<&'static str>,
    ids: Vec<String>,
    writer: Option<ArrowWriter<Vec<u8>>>,
    schema: Option<SchemaRef>,
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
        let props = WriterProperties::builder().set_compression(codec).set_max_row_group_row_count(Some(ROW_GROUP_ROWS)).set_created_by(format!("barge {}", env!("CARGO_PKG_VERSION"))).build();
        Ok(ParquetWriter {
            names: table.columns.iter().map(|c| c.name.clone()).collect(),
            plans: table.columns.iter().map(|c| Plan::of(&c.ty)).collect(),
            extra: extra.clone(),
            props,
            rows: Vec::new(),
            ops: Vec::new(),
            ids: Vec::new(),
            writer: None,
            schema: None,
            bytes: 0,
            records: 0,
        })
    }

    /// Fixes the type of unbounded decimal columns from the buffered rows:
    /// the largest scale seen, and 38 digits if they fit, else 76.
    fn decide(&mut self) {
        for (i, plan) in self.plans.iter_mut().enumerate() {
            let Plan::Decimal { precision, scale, decided } = plan else { continue };
            if *decided {
                continue;
            }
            let (mut int_digits, mut frac_digits) = (1usize, 0usize);
            for row in &self.rows {
                if let Some(Some(Value::Decimal(d))) = row.get(i) {
                    if let Ok((_, int, frac)) = decimal_parts(d) {
                        int_digits = int_digits.max(int.len());
                        frac_digits = frac_digits.max(frac.trim_end_matches('0').len());
                    }
                }
            }
            let frac_digits = frac_digits.min(76);
            *scale = frac_digits as i8;
            *precision = Some(if int_digits + frac_digits <= 38 { 38 } else { 76 });
            *decided = true;
        }
    }

    fn flush_group(&mut self) -> Result<(), String> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            self.decide();
            let mut fields = Vec::new();
            if self.extra.op {
                fields.push(Field::new("Op", DataType::Utf8, false));
            }
            fields.extend(self.plans.iter().zip(&self.names).map(|(p, n)| p.field(n)));
            if let Some(id) = &self.extra.record_id {
                fields.push(Field::new(id, DataType::Utf8, false));
            }
            let schema: SchemaRef = Arc::new(Schema::new(fields));
            self.writer = Some(ArrowWriter::try_new(Vec::new(), schema.clone(), Some(self.props.clone())).map_err(|e| e.to_string())?);
            self.schema = Some(schema);
        }
        let mut columns: Vec<ArrayRef> = Vec::new();
        if self.extra.op {
            columns.push(Arc::new(arrow_array::StringArray::from(std::mem::take(&mut self.ops))));
        }
        for (i, plan) in self.plans.iter().enumerate() {
            let col: Vec<Option<&Value>> = self.rows.iter().map(|r| r[i].as_ref()).collect();
            columns.push(build(plan, &col)?);
        }
        if self.extra.record_id.is_some() {
            columns.push(Arc::new(arrow_array::StringArray::from(std::mem::take(&mut self.ids))));
        }
        self.rows.clear();
        self.ops.clear();
        self.ids.clear();
        let schema = self.schema.clone().ok_or("no schema")?;
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
        self.writer.as_mut().ok_or("no writer")?.write(&batch).map_err(|e| e.to_string())
    }
}

impl RecordWriter for ParquetWriter {
    fn write(&mut self, rec: &Record) -> Result<(), String> {
        let mut weight = 0;
        for ((plan, v), name) in self.plans.iter().zip(&rec.values).zip(&self.names) {
            if let Some(v) = v {
                check(plan, v).map_err(|e| format!("column {name}: {e}"))?;
                weight += v.weight();
            }
        }
        self.rows.push(rec.values.iter().map(|v| v.cloned()).collect());
        self.ops.push(rec.kind.op_code());
        if self.extra.record_id.is_some() {
            self.ids.push(rec.id.clone());
        }
        self.bytes += weight;
        self.records += 1;
        if self.rows.len() >= ROW_GROUP_ROWS {
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
        match self.writer.take() {
            Some(w) => w.into_inner().map_err(|e| e.to_string()),
            None => Err("an empty Parquet file".into()),
        }
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
}
