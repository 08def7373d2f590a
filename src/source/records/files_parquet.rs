//! Parquet files as records: each row a [`RecordFormat::Fields`] object,
//! each value in the text form PostgreSQL writes for it, so the table's
//! column types read it back exactly: the inverse of barge's Parquet
//! writer (`sink::shared::format::parquet`). Decimals keep their unscaled
//! digits and scale, zoned timestamps their instant (UTC), plain ones
//! their wall-clock time, UUIDs, JSON, intervals ({months, days,
//! microseconds}) and lists their own forms.
//!
//! [`RecordFormat::Fields`]: super::shape::RecordFormat::Fields

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, DecimalType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

/// The rows of a Parquet file, in order, a record batch at a time, each
/// row a JSON object of column name to text form (null for NULL); `emit`
/// returns false to stop early.
pub fn each_batch<R: ChunkReader + 'static>(file: R, mut emit: impl FnMut(Vec<Vec<u8>>) -> bool) -> std::result::Result<(), String> {
    let unreadable = |e: parquet::errors::ParquetError| format!("not a readable Parquet file: {e}");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?.build().map_err(unreadable)?;
    let mut row = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let schema = batch.schema();
        let mut out = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            row += 1;
            let mut obj = serde_json::Map::with_capacity(batch.num_columns());
            for (field, col) in schema.fields().iter().zip(batch.columns()) {
                let uuid = field.metadata().get("ARROW:extension:name").is_some_and(|n| n == "arrow.uuid");
                let v = text(col, i, uuid).map_err(|e| format!("row {row}, column {}: {e}", field.name()))?;
                obj.insert(field.name().clone(), v.map(serde_json::Value::String).unwrap_or(serde_json::Value::Null));
            }
            out.push(serde_json::to_vec(&obj).map_err(|e| e.to_string())?);
        }
        if !emit(out) {
            break;
        }
    }
    Ok(())
}

fn date(days: i64) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.checked_add_signed(chrono::Duration::days(days))).ok_or_else(|| format!("date {days} days from 1970 is out of range"))
}

fn time(nanos: i64) -> Result<String, String> {
    let t = NaiveTime::from_num_seconds_from_midnight_opt((nanos / 1_000_000_000) as u32, (nanos % 1_000_000_000) as u32).ok_or_else(|| format!("time {nanos} ns is not within a day"))?;
    Ok(t.format("%H:%M:%S%.f").to_string())
}

/// A timestamp `n` units from the epoch: with a zone, the instant in UTC
/// (`+00`); without, the wall-clock time.
fn timestamp(n: i64, unit: &TimeUnit, zoned: bool) -> Result<String, String> {
    let nanos: i128 = n as i128
        * match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        };
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let t = DateTime::from_timestamp(secs, sub).ok_or_else(|| format!("timestamp {n} is out of range"))?;
    let text = t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string();
    Ok(if zoned { format!("{text}+00") } else { text })
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

/// Value `i` of `a` as PostgreSQL's text form, `None` for NULL.
/// `uuid`: a 16-byte column annotated UUID.
fn text(a: &ArrayRef, i: usize, uuid: bool) -> Result<Option<String>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    let s = match a.data_type() {
        DataType::Boolean => if a.as_boolean().value(i) { "t" } else { "f" }.to_string(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).to_string(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).to_string(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).to_string(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).to_string(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::Float32 => match a.as_primitive::<Float32Type>().value(i) {
            // f32's own shortest digits, not those of its f64 widening.
            f if f.is_finite() => f.to_string(),
            f => float(f as f64),
        },
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(p, s) => Decimal128Type::format_decimal(a.as_primitive::<Decimal128Type>().value(i), *p, *s),
        DataType::Decimal256(p, s) => Decimal256Type::format_decimal(a.as_primitive::<Decimal256Type>().value(i), *p, *s),
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        DataType::Binary => format!("\\x{}", hex::encode(a.as_binary::<i32>().value(i))),
        DataType::LargeBinary => format!("\\x{}", hex::encode(a.as_binary::<i64>().value(i))),
        DataType::BinaryView => format!("\\x{}", hex::encode(a.as_binary_view().value(i))),
        DataType::FixedSizeBinary(16) if uuid => uuid::Uuid::from_slice(a.as_fixed_size_binary().value(i)).map_err(|e| e.to_string())?.hyphenated().to_string(),
        DataType::FixedSizeBinary(_) => format!("\\x{}", hex::encode(a.as_fixed_size_binary().value(i))),
        DataType::Date32 => date(a.as_primitive::<Date32Type>().value(i) as i64)?.format("%Y-%m-%d").to_string(),
        DataType::Date64 => date(a.as_primitive::<Date64Type>().value(i).div_euclid(86_400_000))?.format("%Y-%m-%d").to_string(),
        DataType::Time32(TimeUnit::Second) => time(a.as_primitive::<Time32SecondType>().value(i) as i64 * 1_000_000_000)?,
        DataType::Time32(_) => time(a.as_primitive::<Time32MillisecondType>().value(i) as i64 * 1_000_000)?,
        DataType::Time64(TimeUnit::Nanosecond) => time(a.as_primitive::<Time64NanosecondType>().value(i))?,
        DataType::Time64(_) => time(a.as_primitive::<Time64MicrosecondType>().value(i) * 1_000)?,
        DataType::Timestamp(unit, tz) => {
            let n = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            timestamp(n, unit, tz.is_some())?
        }
        DataType::Struct(fields) if fields.len() == 3 && fields.iter().map(|f| f.name().as_str()).eq(["months", "days", "microseconds"]) => {
            // barge's interval: ISO 8601, which the interval reader takes.
            let s = a.as_struct();
            let months = s.column(0).as_primitive::<Int32Type>().value(i);
            let days = s.column(1).as_primitive::<Int32Type>().value(i);
            let us = s.column(2).as_primitive::<Int64Type>().value(i);
            let sign = if us < 0 { "-" } else { "" };
            format!("P{months}M{days}DT{sign}{}.{:06}S", us.unsigned_abs() / 1_000_000, us.unsigned_abs() % 1_000_000)
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let items = match a.data_type() {
                DataType::List(_) => a.as_list::<i32>().value(i),
                _ => a.as_list::<i64>().value(i),
            };
            let mut out = String::from("{");
            for j in 0..items.len() {
                if j > 0 {
                    out.push(',');
                }
                match text(&items, j, false)? {
                    None => out.push_str("NULL"),
                    Some(t) if matches!(items.data_type(), DataType::List(_) | DataType::LargeList(_)) => out.push_str(&t),
                    Some(t) => {
                        out.push('"');
                        for c in t.chars() {
                            if c == '"' || c == '\\' {
                                out.push('\\');
                            }
                            out.push(c);
                        }
                        out.push('"');
                    }
                }
            }
            out.push('}');
            out
        }
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let key = d.normalized_keys()[i];
            return text(d.values(), key, uuid);
        }
        other => return Err(format!("Parquet type {other} is not read; declare the column in another type in the writer")),
    };
    Ok(Some(s))
}
