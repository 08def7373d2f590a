//! Generators for the codecs' property tests: pairs of a column type and
//! a value in the canonical form the codec's decoder produces for it.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

use super::common::{canonical_int, end_of_day};
use crate::model::value::normalize_decimal;
use crate::model::{ColumnType, Interval, LobSize, TextAttrs, Value};

pub type Pair = (ColumnType, Value);

/// Equality with NaN equal to itself (and -0.0 distinct from 0.0).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Float32(x), Value::Float32(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        _ => a == b,
    }
}

pub fn varchar() -> ColumnType {
    ColumnType::Varchar { length: Some(100), text: TextAttrs::default() }
}
pub fn blob() -> ColumnType {
    ColumnType::Blob { size: LobSize::Long }
}
pub fn ts(tz: bool) -> ColumnType {
    ColumnType::Timestamp { precision: Some(6), tz }
}
pub fn time(tz: bool) -> ColumnType {
    ColumnType::Time { precision: Some(6), tz }
}
pub fn interval() -> ColumnType {
    ColumnType::Interval { fields: None, precision: None }
}
pub fn decimal() -> ColumnType {
    ColumnType::Decimal { precision: None, scale: None }
}
pub fn array(elem: ColumnType) -> ColumnType {
    ColumnType::Array { element: Box::new(elem) }
}
pub fn enum_ty() -> ColumnType {
    ColumnType::Enum { name: None, values: LABELS.iter().map(|s| s.to_string()).collect() }
}
pub fn set_ty() -> ColumnType {
    ColumnType::Set { values: MEMBERS.iter().map(|s| s.to_string()).collect() }
}

pub const LABELS: &[&str] = &["happy", "sad", "it's", "so-so", "Ünï"];
pub const MEMBERS: &[&str] = &["a", "b", "c d", "é"];

/// Text with the characters codecs must escape or quote, emoji, and
/// arbitrary Unicode; NUL only if the engine stores it.
pub fn text(nul: bool) -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[ a-z\\\\\t\n\r\"{},'Nx\u{1F600}é\u{0B}]{0,16}",
        1 => Just(String::new()),
        1 => Just("NULL".to_string()),
        1 => Just("\\N".to_string()),
        1 => Just("\\.".to_string()),
    ]
    .prop_map(move |s| if nul { s } else { s.replace('\0', "") })
    .boxed()
}

pub fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..40), Just((0..=255u8).collect::<Vec<u8>>())].boxed()
}

pub fn decimal_text(special: bool) -> BoxedStrategy<String> {
    let plain = "-?[0-9]{1,40}(\\.[0-9]{1,12})?".prop_map(|s| normalize_decimal(&s).expect("valid decimal"));
    if special {
        prop_oneof![8 => plain, 1 => Just("NaN".to_string()), 1 => Just("Infinity".to_string()), 1 => Just("-Infinity".to_string())]
            .boxed()
    } else {
        plain.boxed()
    }
}

pub fn f64_any() -> BoxedStrategy<f64> {
    prop_oneof![
        6 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        2 => -1e6f64..1e6,
    ]
    .boxed()
}

pub fn f32_any() -> BoxedStrategy<f32> {
    prop_oneof![6 => any::<f32>(), 1 => Just(f32::NAN), 1 => Just(f32::INFINITY), 1 => Just(-0.0f32)].boxed()
}

pub fn date(years: std::ops::RangeInclusive<i32>) -> BoxedStrategy<NaiveDate> {
    (years, 1u32..=12, 1u32..=31).prop_filter_map("a real date", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)).boxed()
}

/// A time of day to the microsecond.
pub fn tod() -> BoxedStrategy<NaiveTime> {
    prop_oneof![
        (0u32..86_400, 0u32..1_000_000)
            .prop_map(|(s, us)| NaiveTime::from_num_seconds_from_midnight_opt(s, us * 1000).expect("in range")),
        (0u32..86_400).prop_map(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, 0).expect("in range")),
    ]
    .boxed()
}

pub fn datetime(years: std::ops::RangeInclusive<i32>) -> BoxedStrategy<NaiveDateTime> {
    (date(years), tod()).prop_map(|(d, t)| d.and_time(t)).boxed()
}

pub fn interval_any() -> BoxedStrategy<Interval> {
    prop_oneof![
        (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, micros)| Interval { months, days, micros }),
        (-30i32..30, -60i32..60, -100_000_000_000i64..100_000_000_000)
            .prop_map(|(months, days, micros)| Interval { months, days, micros }),
    ]
    .boxed()
}

pub fn json_text() -> BoxedStrategy<String> {
    prop_oneof![
        Just("{}".to_string()),
        Just("[1, 2.50, \"x\"]".to_string()),
        Just("{\"a\": {\"b\": [true, null]}, \"c\": \"tab\\there\"}".to_string()),
        "[a-z]{0,8}".prop_map(|s| format!("{{\"k\": \"{s}\"}}")),
        any::<i64>().prop_map(|i| i.to_string()),
    ]
    .boxed()
}

pub fn label() -> BoxedStrategy<String> {
    prop::sample::select(LABELS).prop_map(str::to_string).boxed()
}

pub fn members() -> BoxedStrategy<Vec<String>> {
    prop::sample::subsequence(MEMBERS, 0..=MEMBERS.len())
        .prop_map(|m| m.into_iter().map(str::to_string).collect())
        .boxed()
}

pub fn bits(len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<bool>> {
    len.prop_flat_map(|n| vec(any::<bool>(), n)).boxed()
}

/// Integers of every width, signed and unsigned, in their canonical form.
pub fn int_pairs() -> Vec<BoxedStrategy<Pair>> {
    let mut out = Vec::new();
    for bits in [8u8, 16, 32, 64] {
        for unsigned in [false, true] {
            let ty = ColumnType::Int { bits, unsigned };
            let (lo, hi): (i128, i128) = if unsigned {
                (0, (1i128 << bits) - 1)
            } else {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            };
            let strat = prop_oneof![
                (lo..=hi),
                Just(lo),
                Just(hi),
                Just(0i128),
            ];
            out.push(strat.prop_map(move |n| (ty.clone(), canonical_int(n))).boxed());
        }
    }
    out
}

/// Wraps a value strategy as pairs for one type.
pub fn pair(ty: ColumnType, values: BoxedStrategy<Value>) -> BoxedStrategy<Pair> {
    values.prop_map(move |v| (ty.clone(), v)).boxed()
}

/// 1-D arrays with NULL elements, and 2-D rectangular arrays, of `elem`.
pub fn arrays_of(elem: ColumnType, values: BoxedStrategy<Value>) -> Vec<BoxedStrategy<Pair>> {
    let one = vec(prop::option::weighted(0.85, values.clone()), 0..5)
        .prop_map(|items| Value::Array(items.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()));
    let two = (1usize..3, 1usize..3)
        .prop_flat_map(move |(r, c)| vec(vec(values.clone(), c), r))
        .prop_map(|rows| Value::Array(rows.into_iter().map(Value::Array).collect()));
    vec![
        pair(array(elem.clone()), one.boxed()),
        pair(array(elem.clone()), two.clone().boxed()),
        pair(array(array(elem)), two.boxed()),
    ]
}

pub fn union(parts: Vec<BoxedStrategy<Pair>>) -> BoxedStrategy<Pair> {
    Union::new(parts).boxed()
}

pub fn leap() -> NaiveTime {
    end_of_day()
}
