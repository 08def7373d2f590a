use chrono::{NaiveDate, NaiveTime};
use proptest::prelude::*;

use super::*;
use crate::codec::testgen::{self as g, same, Pair};
use crate::model::Interval;

fn dec(c: Cell, ty: &ColumnType) -> Value {
    let shown = format!("{c:?}");
    decode(c, ty).unwrap_or_else(|e| panic!("decode {shown}: {e}"))
}

fn enc(v: &Value, ty: &ColumnType) -> Cell {
    encode(v, ty).unwrap_or_else(|e| panic!("encode {v:?}: {e}"))
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> chrono::NaiveDateTime {
    date(y, mo, d).and_time(NaiveTime::from_hms_micro_opt(h, mi, s, us).unwrap())
}

fn dec_n(p: u32, s: u32) -> ColumnType {
    ColumnType::Decimal { precision: Some(p), scale: Some(s) }
}

// ---------------------------------------------------------------- decode

#[test]
fn decodes_integers_from_every_class_that_holds_one() {
    let i64ty = ColumnType::int(64);
    assert_eq!(dec(Cell::Integer(i64::MIN), &i64ty), Value::Int(i64::MIN));
    assert_eq!(dec(text(" 42 "), &i64ty), Value::Int(42));
    assert_eq!(dec(Cell::Real(3.0), &i64ty), Value::Int(3));
    assert!(decode(Cell::Real(3.5), &i64ty).is_err());
    assert!(decode(Cell::Integer(300), &ColumnType::int(8)).unwrap_err().contains("out of range"));
    let u64ty = ColumnType::Int { bits: 64, unsigned: true };
    assert_eq!(dec(text("18446744073709551615"), &u64ty), Value::UInt(u64::MAX));
    assert!(decode(Cell::Blob(vec![1]), &i64ty).is_err());
}

#[test]
fn decodes_booleans() {
    for (c, b) in [(Cell::Integer(1), true), (Cell::Integer(0), false), (text("t"), true), (text("FALSE"), false), (text("true"), true), (text("f"), false)] {
        assert_eq!(dec(c, &ColumnType::Bool), Value::Bool(b));
    }
    assert!(decode(Cell::Integer(2), &ColumnType::Bool).is_err());
}

#[test]
fn decodes_decimals_without_floats_and_regains_the_scale() {
    let big = "1234567890123456789012345678.9012345678";
    assert_eq!(dec(text(big), &dec_n(38, 10)), Value::Decimal(big.into()));
    assert_eq!(dec(text("1.5e-3"), &g::decimal()), Value::Decimal("0.0015".into()));
    assert_eq!(dec(Cell::Integer(3), &dec_n(10, 2)), Value::Decimal("3.00".into()));
    assert_eq!(dec(Cell::Real(1.5), &dec_n(10, 2)), Value::Decimal("1.50".into()));
    assert_eq!(dec(Cell::Real(0.1), &g::decimal()), Value::Decimal("0.1".into()));
    assert_eq!(dec(Cell::Real(1e20), &g::decimal()), Value::Decimal("100000000000000000000".into()));
    assert_eq!(dec(Cell::Real(f64::INFINITY), &g::decimal()), Value::Decimal("Infinity".into()));
    assert_eq!(dec(text("NaN"), &g::decimal()), Value::Decimal("NaN".into()));
    let e = decode(text("twelve"), &dec_n(10, 2)).unwrap_err();
    assert!(e.contains("\"twelve\"") && e.contains("decimal(10,2)"), "{e}");
}

#[test]
fn decodes_floats_texts_and_blobs_across_classes() {
    assert_eq!(dec(Cell::Integer(7), &ColumnType::Float64), Value::Float64(7.0));
    assert!(matches!(dec(text("NaN"), &ColumnType::Float64), Value::Float64(x) if x.is_nan()));
    assert_eq!(dec(Cell::Real(0.1), &ColumnType::Float32), Value::Float32(0.1));
    assert_eq!(dec(Cell::Integer(7), &ColumnType::text()), Value::Text("7".into()));
    assert_eq!(dec(Cell::Real(0.1), &ColumnType::text()), Value::Text("0.1".into()));
    assert_eq!(dec(Cell::Blob(b"ok".to_vec()), &ColumnType::text()), Value::Text("ok".into()));
    assert!(decode(Cell::Blob(vec![0xff]), &ColumnType::text()).is_err());
    assert_eq!(dec(text("é"), &g::blob()), Value::Bytes("é".as_bytes().to_vec()));
    assert_eq!(dec(text(""), &ColumnType::text()), Value::Text(String::new()));
}

#[test]
fn decodes_dates_from_text_epochs_and_julian_days() {
    assert_eq!(dec(text("2024-01-31"), &ColumnType::Date), Value::Date(date(2024, 1, 31)));
    assert_eq!(dec(Cell::Integer(1_706_659_200), &ColumnType::Date), Value::Date(date(2024, 1, 31)));
    assert_eq!(dec(Cell::Real(2_460_340.5), &ColumnType::Date), Value::Date(date(2024, 1, 31)));
    assert_eq!(dec(text("-0043-03-15"), &ColumnType::Date), Value::Date(date(-43, 3, 15)));
    assert_eq!(dec(text("infinity"), &ColumnType::Date), Value::Infinity { negative: false });
    assert!(decode(Cell::Integer(1_706_659_201), &ColumnType::Date).unwrap_err().contains("time of day"));
    assert!(decode(text("2024-01-31 10:00:00"), &ColumnType::Date).is_err());
}

#[test]
fn decodes_timestamps_with_and_without_zone() {
    let wall = dt(2024, 1, 31, 10, 0, 0, 0);
    assert_eq!(dec(text("2024-01-31 10:00:00"), &g::ts(false)), Value::Timestamp(wall));
    assert_eq!(dec(text("2024-01-31T10:00"), &g::ts(false)), Value::Timestamp(wall));
    assert_eq!(dec(text("2024-01-31"), &g::ts(false)), Value::Timestamp(dt(2024, 1, 31, 0, 0, 0, 0)));
    assert_eq!(dec(text("2024-01-31T10:00:00.123Z"), &g::ts(false)), Value::TimestampTz(dt(2024, 1, 31, 10, 0, 0, 123_000).and_utc()));
    assert_eq!(dec(text("2024-01-31 12:00:00+02:00"), &g::ts(false)), Value::TimestampTz(wall.and_utc()));
    assert_eq!(dec(text("2024-01-31 10:00:00"), &g::ts(true)), Value::TimestampTz(wall.and_utc()));
    assert_eq!(dec(Cell::Integer(1_706_695_200), &g::ts(false)), Value::Timestamp(wall));
    assert_eq!(dec(Cell::Integer(1_706_695_200), &g::ts(true)), Value::TimestampTz(wall.and_utc()));
    // A Julian day carries milliseconds at best.
    assert_eq!(dec(Cell::Real(2_460_340.5 + 10.0 / 24.0), &g::ts(false)), Value::Timestamp(wall));
    assert_eq!(dec(text("2024-01-31 10:00:00.123456789"), &g::ts(false)), Value::Timestamp(date(2024, 1, 31).and_hms_nano_opt(10, 0, 0, 123_456_789).unwrap()));
    let e = decode(text("next tuesday at noon, probably, if it does not rain"), &g::ts(false)).unwrap_err();
    assert!(e.contains("\"next tuesday at noon, probably, if it does not rain\"") && e.contains("timestamp"), "{e}");
    let long = "x".repeat(500);
    let e = decode(text(&long), &g::ts(false)).unwrap_err();
    assert!(e.len() < 300 && e.contains('…'), "{e}");
}

#[test]
fn decodes_times_json_uuid_enum_set_bits_year_arrays() {
    let t = NaiveTime::from_hms_micro_opt(13, 45, 0, 500_000).unwrap();
    assert_eq!(dec(text("13:45:00.5"), &g::time(false)), Value::Time(t));
    assert_eq!(dec(text("13:45"), &g::time(false)), Value::Time(NaiveTime::from_hms_opt(13, 45, 0).unwrap()));
    assert_eq!(dec(text("24:00:00"), &g::time(false)), Value::Time(g::leap()));
    assert_eq!(dec(text("13:45:00.5+02:00"), &g::time(true)), Value::TimeTz(t, 7200));
    assert_eq!(dec(text("13:45:00.5"), &g::time(true)), Value::TimeTz(t, 0));
    assert_eq!(dec(Cell::Integer(3600), &g::time(false)), Value::Time(NaiveTime::from_hms_opt(1, 0, 0).unwrap()));
    assert_eq!(dec(text("{\"a\":1}"), &ColumnType::Json), Value::Json("{\"a\":1}".into()));
    assert_eq!(dec(Cell::Integer(5), &ColumnType::Json), Value::Json("5".into()));
    let u = [7u8; 16];
    assert_eq!(dec(Cell::Blob(u.to_vec()), &ColumnType::Uuid), Value::Uuid(u));
    assert_eq!(dec(text("07070707-0707-0707-0707-070707070707"), &ColumnType::Uuid), Value::Uuid(u));
    assert_eq!(dec(text("sad"), &g::enum_ty()), Value::Enum("sad".into()));
    assert_eq!(dec(text("a,b"), &g::set_ty()), Value::Set(vec!["a".into(), "b".into()]));
    assert_eq!(dec(text(""), &g::set_ty()), Value::Set(vec![]));
    let bit4 = ColumnType::Bit { length: Some(4), varying: false };
    assert_eq!(dec(Cell::Integer(5), &bit4), Value::Bits(vec![false, true, false, true]));
    assert!(decode(Cell::Integer(16), &bit4).is_err());
    assert_eq!(dec(text("101"), &ColumnType::Bit { length: Some(8), varying: true }), Value::Bits(vec![true, false, true]));
    assert_eq!(dec(Cell::Integer(2024), &ColumnType::Year), Value::Year(2024));
    let arr = g::array(ColumnType::int(64));
    assert_eq!(dec(text("[1, null, [2]]"), &arr), Value::Array(vec![Value::Int(1), Value::Null, Value::Array(vec![Value::Int(2)])]));
    assert_eq!(
        dec(text(r#"[12345678901234567890.12345, "NaN"]"#), &g::array(g::decimal())),
        Value::Array(vec![Value::Decimal("12345678901234567890.12345".into()), Value::Decimal("NaN".into())])
    );
    assert_eq!(dec(text(r#"[{"a":[1]}, [1, 2]]"#), &g::array(ColumnType::Jsonb)), Value::Array(vec![Value::Json(r#"{"a":[1]}"#.into()), Value::Json("[1, 2]".into())]));
    assert!(decode(text("[1,"), &arr).is_err());
    assert!(decode(text("{}"), &arr).is_err());
}

// ---------------------------------------------------------------- encode

#[test]
fn encodes_to_the_storage_class_that_keeps_the_value() {
    assert_eq!(enc(&Value::Bool(true), &ColumnType::Bool), Cell::Integer(1));
    assert_eq!(enc(&Value::Int(-5), &ColumnType::int(64)), Cell::Integer(-5));
    assert_eq!(enc(&Value::UInt(u64::MAX), &ColumnType::text()), text("18446744073709551615"));
    assert_eq!(enc(&Value::Decimal("0.10".into()), &dec_n(10, 2)), Cell::Real(0.1));
    assert_eq!(enc(&Value::Decimal("42.00".into()), &dec_n(10, 2)), text("42.00"));
    assert_eq!(enc(&Value::Decimal("1234567890123456789.5".into()), &ColumnType::text()), text("1234567890123456789.5"));
    assert_eq!(enc(&Value::Decimal("7.000".into()), &ColumnType::int(64)), Cell::Integer(7));
    assert_eq!(enc(&Value::Float64(0.1), &ColumnType::Float64), Cell::Real(0.1));
    assert_eq!(enc(&Value::Float64(f64::INFINITY), &ColumnType::Float64), Cell::Real(f64::INFINITY));
    assert_eq!(enc(&Value::Float64(f64::NAN), &ColumnType::Float64), text("NaN"));
    assert_eq!(enc(&Value::Float32(0.1), &ColumnType::text()), text("0.1"));
    assert_eq!(enc(&Value::Bytes(vec![0, 1]), &g::blob()), Cell::Blob(vec![0, 1]));
    assert_eq!(enc(&Value::Year(1999), &ColumnType::Year), Cell::Integer(1999));
}

#[test]
fn encodes_temporal_values_as_iso_text() {
    assert_eq!(enc(&Value::Date(date(2024, 1, 31)), &ColumnType::Date), text("2024-01-31"));
    assert_eq!(enc(&Value::Date(date(-43, 3, 15)), &ColumnType::Date), text("-0043-03-15"));
    assert_eq!(enc(&Value::Timestamp(dt(2024, 1, 31, 10, 0, 0, 123_456)), &g::ts(false)), text("2024-01-31 10:00:00.123456"));
    assert_eq!(enc(&Value::TimestampTz(dt(2024, 1, 31, 10, 0, 0, 0).and_utc()), &g::ts(true)), text("2024-01-31 10:00:00+00:00"));
    assert_eq!(enc(&Value::Time(g::leap()), &g::time(false)), text("24:00:00"));
    assert_eq!(enc(&Value::TimeTz(NaiveTime::from_hms_opt(1, 2, 3).unwrap(), -3600), &g::time(true)), text("01:02:03-01:00"));
    assert_eq!(enc(&Value::Infinity { negative: true }, &g::ts(false)), text("-infinity"));
    assert_eq!(enc(&Value::Interval(Interval { months: 1, days: 0, micros: 0 }), &ColumnType::text()), text("P1M"));
    assert!(encode(&Value::ZeroDate, &ColumnType::Date).unwrap_err().contains("zero date"));
}

#[test]
fn encodes_the_rest() {
    assert_eq!(enc(&Value::Uuid([1; 16]), &ColumnType::Uuid), text("01010101-0101-0101-0101-010101010101"));
    assert_eq!(enc(&Value::Uuid([1; 16]), &g::blob()), Cell::Blob(vec![1; 16]));
    assert_eq!(enc(&Value::Json("[1]".into()), &ColumnType::Json), text("[1]"));
    assert_eq!(enc(&Value::Set(vec!["a".into(), "b".into()]), &g::set_ty()), text("a,b"));
    assert_eq!(enc(&Value::Enum("sad".into()), &g::enum_ty()), text("sad"));
    assert!(encode(&Value::Enum("mad".into()), &g::enum_ty()).is_err());
    let bit = |n| ColumnType::Bit { length: Some(n), varying: false };
    assert_eq!(enc(&Value::Bits(vec![true, false, true]), &bit(3)), Cell::Integer(5));
    assert_eq!(enc(&Value::Bits(vec![true; 63]), &bit(63)), Cell::Integer(i64::MAX));
    assert_eq!(enc(&Value::Bits(vec![true; 64]), &bit(64)), text(&"1".repeat(64)));
    assert_eq!(enc(&Value::Bits(vec![false, true]), &ColumnType::Bit { length: Some(8), varying: true }), text("01"));
    assert_eq!(enc(&Value::Bits(vec![true]), &ColumnType::Bool), Cell::Integer(1));
    let arr = Value::Array(vec![Value::Int(1), Value::Null, Value::Text("tab\t\"q\"".into()), Value::Float64(f64::NAN)]);
    assert_eq!(enc(&arr, &ColumnType::Json), text(r#"[1,null,"tab\t\"q\"","NaN"]"#));
}

// ---------------------------------------------------------------- properties

fn sqlite_scalars() -> Vec<(ColumnType, BoxedStrategy<Value>)> {
    use Value as V;
    vec![
        (ColumnType::Bool, any::<bool>().prop_map(V::Bool).boxed()),
        (g::decimal(), g::decimal_text(true).prop_map(V::Decimal).boxed()),
        (ColumnType::Float64, g::f64_any().prop_map(V::Float64).boxed()),
        (ColumnType::text(), g::text(true).prop_map(V::Text).boxed()),
        (g::blob(), g::bytes().prop_map(V::Bytes).boxed()),
        (
            ColumnType::Date,
            prop_oneof![8 => g::date(-262_000..=262_000).prop_map(V::Date), 1 => any::<bool>().prop_map(|negative| V::Infinity { negative })].boxed(),
        ),
        (g::time(false), prop_oneof![9 => g::tod().prop_map(V::Time), 1 => Just(V::Time(g::leap()))].boxed()),
        (
            g::ts(true),
            prop_oneof![8 => g::datetime(-262_000..=262_000).prop_map(|d| V::TimestampTz(d.and_utc())), 1 => any::<bool>().prop_map(|negative| V::Infinity { negative })].boxed(),
        ),
        (g::interval(), g::interval_any().prop_map(V::Interval).boxed()),
        (ColumnType::Uuid, any::<[u8; 16]>().prop_map(V::Uuid).boxed()),
    ]
}

fn sqlite_pairs() -> BoxedStrategy<Pair> {
    use Value as V;
    let mut parts = g::int_pairs();
    for (ty, values) in sqlite_scalars() {
        parts.push(g::pair(ty.clone(), values.clone()));
        parts.extend(g::arrays_of(ty, values));
    }
    parts.extend([
        g::pair(ColumnType::Float32, g::f32_any().prop_map(V::Float32).boxed()),
        g::pair(dec_n(15, 4), g::decimal_text(false).prop_map(V::Decimal).boxed()),
        g::pair(g::varchar(), g::text(true).prop_map(V::Text).boxed()),
        g::pair(g::time(true), (g::tod(), -57_599i32..=57_599).prop_map(|(t, o)| V::TimeTz(t, o)).boxed()),
        g::pair(g::ts(false), g::datetime(-262_000..=262_000).prop_map(V::Timestamp).boxed()),
        g::pair(g::ts(false), g::datetime(-262_000..=262_000).prop_map(|d| V::TimestampTz(d.and_utc())).boxed()),
        g::pair(ColumnType::Json, g::json_text().prop_map(V::Json).boxed()),
        g::pair(g::array(ColumnType::Json), proptest::collection::vec(g::json_text().prop_map(V::Json), 0..4).prop_map(V::Array).boxed()),
        g::pair(g::enum_ty(), g::label().prop_map(V::Enum).boxed()),
        g::pair(g::set_ty(), g::members().prop_map(V::Set).boxed()),
        g::pair(ColumnType::Year, any::<i16>().prop_map(V::Year).boxed()),
    ]);
    for n in [1usize, 8, 63, 64, 100] {
        parts.push(g::pair(ColumnType::Bit { length: Some(n as u32), varying: false }, g::bits(n..=n).prop_map(V::Bits).boxed()));
        parts.push(g::pair(ColumnType::Bit { length: Some(n as u32), varying: true }, g::bits(0..=n).prop_map(V::Bits).boxed()));
    }
    g::union(parts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn values_round_trip_through_cells((ty, v) in sqlite_pairs()) {
        // A decimal NUMERIC affinity would round is refused, not stored.
        if let (Value::Decimal(_), Err(e)) = (&v, encode(&v, &ty)) {
            prop_assert!(e.contains("NUMERIC affinity"), "{e}");
            return Ok(());
        }
        let cell = encode(&v, &ty).map_err(|e| TestCaseError::fail(format!("encode {v:?}: {e}")))?;
        let shown = format!("{cell:?}");
        let back = decode(cell, &ty).map_err(|e| TestCaseError::fail(format!("decode {v:?} from {shown}: {e}")))?;
        // NUMERIC affinity keeps a decimal's value, not its trailing zeros.
        let value_of = |x: &Value| match x {
            Value::Decimal(d) if d.contains('.') => Value::Decimal(d.trim_end_matches('0').trim_end_matches('.').to_string()),
            other => other.clone(),
        };
        prop_assert!(same(&value_of(&back), &value_of(&v)), "{:?} came back as {:?} via {}", v, back, shown);
    }

    #[test]
    fn null_round_trips((ty, _) in sqlite_pairs()) {
        prop_assert_eq!(encode(&Value::Null, &ty).unwrap(), Cell::Null);
        prop_assert_eq!(decode(Cell::Null, &ty).unwrap(), Value::Null);
    }
}

#[test]
fn decimals_numeric_affinity_would_round_are_refused() {
    let ty = ColumnType::Decimal { precision: Some(30), scale: Some(10) };
    // A double holds these: they read back as the same digits.
    for ok in ["123456789012345", "-0.000123456789012345", "9223372036854775807", "1.5000000000000000000", "12345678901234.123000", "0.1234567890123456"] {
        assert!(encode(&Value::Decimal(ok.into()), &ty).is_ok(), "{ok}");
    }
    for bad in ["1234567890123456.1", "9223372036854775808", "0.1000000000000000055", "99999999999999999.99"] {
        let e = encode(&Value::Decimal(bad.into()), &ty).unwrap_err();
        assert!(e.contains("NUMERIC affinity") && e.contains(bad), "{e}");
    }
    assert!(encode(&Value::UInt(u64::MAX), &ty).is_err());
}
