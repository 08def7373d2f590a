use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::codec::testgen::{self as g, same, Pair};
use crate::model::{Interval, LobSize};

fn enc(v: &Value, ty: &ColumnType) -> String {
    let mut out = Vec::new();
    encode(v, ty, &mut out).unwrap_or_else(|e| panic!("encode {v:?} as {ty:?}: {e}"));
    String::from_utf8(out).unwrap()
}

fn enc_err(v: &Value, ty: &ColumnType) -> String {
    let mut out = Vec::new();
    encode(v, ty, &mut out).expect_err("should not encode")
}

fn dec(s: &str, ty: &ColumnType) -> Value {
    decode(s.as_bytes(), ty).unwrap_or_else(|e| panic!("decode {s:?}: {e}"))
}

fn rows_of(data: &[u8]) -> Vec<CopyRow> {
    let mut p = CopyTextParser::new();
    p.feed(data);
    let mut rows = Vec::new();
    p.drain_rows(&mut rows).unwrap();
    p.finish().unwrap();
    rows
}

fn f(s: &[u8]) -> Option<Vec<u8>> {
    Some(s.to_vec())
}

fn int(bits: u8) -> ColumnType {
    ColumnType::int(bits)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn hms_micro(h: u32, m: u32, s: u32, us: u32) -> NaiveTime {
    NaiveTime::from_hms_micro_opt(h, m, s, us).unwrap()
}

// ---------------------------------------------------------------- parser

#[test]
fn parser_unescapes_every_escape() {
    let rows = rows_of(b"a\\\\b\t\\t\\n\\r\\b\\f\\v\t\\101\\0\\7777\t\\x41\\x4a2\\xg\t\\q\\.\\N\n");
    assert_eq!(
        rows,
        vec![vec![
            f(b"a\\b"),
            f(b"\t\n\r\x08\x0c\x0b"),
            f(b"A\x00\xff7"),
            f(b"AJ2xg"),
            f(b"q.N"),
        ]]
    );
}

#[test]
fn parser_tells_null_from_empty_and_from_escaped_n() {
    let rows = rows_of(b"\\N\t\t\\\\N\tx\\N\n\n\\N\n");
    assert_eq!(rows[0], vec![None, f(b""), f(b"\\N"), f(b"xN")]);
    assert_eq!(rows[1], vec![f(b"")]);
    assert_eq!(rows[2], vec![None]);
}

#[test]
fn parser_waits_for_the_newline_and_keeps_partial_rows() {
    let mut p = CopyTextParser::new();
    p.feed(b"12\tab");
    assert_eq!(p.next_row().unwrap(), None);
    assert!(p.finish().is_err());
    p.feed(b"c\\");
    assert_eq!(p.next_row().unwrap(), None);
    p.feed(b"t\n3");
    assert_eq!(p.next_row().unwrap(), Some(vec![f(b"12"), f(b"abc\t")]));
    assert_eq!(p.next_row().unwrap(), None);
    assert_eq!(p.buffered(), 1);
    p.feed(b"\t\\N\n\\.\nignored\n");
    assert_eq!(p.next_row().unwrap(), Some(vec![f(b"3"), None]));
    assert_eq!(p.next_row().unwrap(), None);
    p.feed(b"more\n");
    assert_eq!(p.next_row().unwrap(), None);
    p.finish().unwrap();
    assert_eq!(p.rows(), 2);
}

#[test]
fn parser_reports_a_lone_backslash_and_goes_on() {
    let mut p = CopyTextParser::new();
    p.feed(b"ok\n1\tbad\\\n2\n");
    assert_eq!(p.next_row().unwrap(), Some(vec![f(b"ok")]));
    let e = p.next_row().unwrap_err();
    assert!(e.contains("row 2") && e.contains("field 2"), "{e}");
    assert_eq!(p.next_row().unwrap(), Some(vec![f(b"2")]));
}

#[test]
fn parser_handles_long_fields_and_many_columns() {
    let long = "x".repeat(10_000);
    let line = format!("{long}\t{}\\t{long}\n", long);
    let rows = rows_of(line.as_bytes());
    assert_eq!(rows[0][0].as_deref(), Some(long.as_bytes()));
    assert_eq!(rows[0][1].as_ref().unwrap().len(), 20_001);
    let wide: String = (0..500).map(|i| i.to_string()).collect::<Vec<_>>().join("\t") + "\n";
    assert_eq!(rows_of(wide.as_bytes())[0].len(), 500);
}

#[test]
fn swar_search_finds_the_first_match_at_every_offset() {
    for len in 0..40 {
        for at in 0..len {
            let mut hay = vec![b'a'; len];
            hay[at] = b'\t';
            if at + 1 < len {
                hay[at + 1] = b'\\';
            }
            assert_eq!(find1(&hay, b'\t'), Some(at));
            assert_eq!(find2(&hay, b'\\', b'\t'), Some(at));
            // 0x80-ish bytes must not confuse the bit trick.
            let mut high = vec![0x89u8; len];
            high[at] = b'\n';
            assert_eq!(find1(&high, b'\n'), Some(at));
        }
        assert_eq!(find1(&vec![b'a'; len], b'\n'), None);
    }
}

// ---------------------------------------------------------------- decode

#[test]
fn decodes_booleans_and_integers() {
    assert_eq!(dec("t", &ColumnType::Bool), Value::Bool(true));
    assert_eq!(dec("f", &ColumnType::Bool), Value::Bool(false));
    // PostgreSQL's input takes yes/no/on/off too (see below); not this.
    assert!(decode(b"yep", &ColumnType::Bool).is_err());
    assert_eq!(dec("-32768", &int(16)), Value::Int(-32768));
    assert!(decode(b"32768", &int(16)).unwrap_err().contains("out of range"));
    assert_eq!(dec("-9223372036854775808", &int(64)), Value::Int(i64::MIN));
    let u64ty = ColumnType::Int { bits: 64, unsigned: true };
    assert_eq!(dec("18446744073709551615", &u64ty), Value::UInt(u64::MAX));
    assert_eq!(dec("9223372036854775807", &u64ty), Value::Int(i64::MAX));
    assert!(decode(b"18446744073709551616", &u64ty).is_err());
    assert!(decode(b"1.5", &int(32)).is_err());
    assert!(decode(b"", &int(32)).is_err());
}

#[test]
fn decodes_numerics_exactly() {
    let ty = ColumnType::Decimal { precision: Some(38), scale: Some(10) };
    let big = "1234567890123456789012345678.9012345678";
    assert_eq!(dec(big, &ty), Value::Decimal(big.into()));
    assert_eq!(dec("-0.0000000001", &ty), Value::Decimal("-0.0000000001".into()));
    assert_eq!(dec("12.3400", &ty), Value::Decimal("12.3400".into()));
    for s in ["NaN", "Infinity", "-Infinity"] {
        assert_eq!(dec(s, &g::decimal()), Value::Decimal(s.into()));
    }
    assert_eq!(dec("1e5", &ty), Value::Decimal("100000".into()), "as PostgreSQL reads it");
    assert!(decode(b"1e", &ty).is_err());
}

#[test]
fn decodes_floats_with_extra_digits_and_specials() {
    assert_eq!(dec("0.1", &ColumnType::Float64), Value::Float64(0.1));
    assert_eq!(dec("1e+20", &ColumnType::Float64), Value::Float64(1e20));
    assert_eq!(dec("1.7976931348623157e+308", &ColumnType::Float64), Value::Float64(f64::MAX));
    assert_eq!(dec("Infinity", &ColumnType::Float64), Value::Float64(f64::INFINITY));
    assert_eq!(dec("-Infinity", &ColumnType::Float32), Value::Float32(f32::NEG_INFINITY));
    assert!(matches!(dec("NaN", &ColumnType::Float64), Value::Float64(x) if x.is_nan()));
    assert!(matches!(dec("-0", &ColumnType::Float64), Value::Float64(x) if x == 0.0 && x.is_sign_negative()));
    assert_eq!(dec("3.4028235e+38", &ColumnType::Float32), Value::Float32(f32::MAX));
    assert!(decode(b"0x10", &ColumnType::Float64).is_err());
}

#[test]
fn decodes_text_types_and_unknowns_as_text() {
    for ty in [g::varchar(), ColumnType::text(), ColumnType::Xml, ColumnType::Other { name: "inet".into() }] {
        assert_eq!(dec("a b\t😀", &ty), Value::Text("a b\t😀".into()));
    }
    assert_eq!(dec("", &g::varchar()), Value::Text(String::new()));
    assert!(decode(b"\xff", &ColumnType::text()).unwrap_err().contains("UTF-8"));
    assert_eq!(decode_field(None, &ColumnType::text()).unwrap(), Value::Null);
    assert_eq!(decode_field(Some(b"x".to_vec()), &ColumnType::Jsonb).unwrap(), Value::Json("x".into()));
}

#[test]
fn decodes_bytea_hex_and_escape_formats() {
    let all: Vec<u8> = (0..=255).collect();
    let mut text = b"\\x".to_vec();
    crate::codec::common::push_hex(&all, &mut text);
    assert_eq!(decode(&text, &g::blob()).unwrap(), Value::Bytes(all));
    assert_eq!(dec("\\x", &g::blob()), Value::Bytes(vec![]));
    assert_eq!(dec("\\xDEADbeef", &g::blob()), Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(dec("a\\\\b\\001\\377", &g::blob()), Value::Bytes(b"a\\b\x01\xff".to_vec()));
    assert!(decode(b"\\x0", &g::blob()).is_err());
}

#[test]
fn decodes_dates_with_bc_and_infinity() {
    assert_eq!(dec("2024-01-31", &ColumnType::Date), Value::Date(date(2024, 1, 31)));
    assert_eq!(dec("0044-03-15 BC", &ColumnType::Date), Value::Date(date(-43, 3, 15)));
    assert_eq!(dec("0001-01-01 BC", &ColumnType::Date), Value::Date(date(0, 1, 1)));
    assert_eq!(dec("4713-11-24 BC", &ColumnType::Date), Value::Date(date(-4712, 11, 24)));
    assert_eq!(dec("10000-01-01", &ColumnType::Date), Value::Date(date(10000, 1, 1)));
    assert_eq!(dec("infinity", &ColumnType::Date), Value::Infinity { negative: false });
    assert_eq!(dec("-infinity", &ColumnType::Date), Value::Infinity { negative: true });
    assert!(decode(b"5874897-12-31", &ColumnType::Date).unwrap_err().contains("262142 AD"), "beyond chrono's range");
    assert!(decode(b"01/31/2024", &ColumnType::Date).unwrap_err().contains("DateStyle"));
}

#[test]
fn decodes_times_and_timetz() {
    assert_eq!(dec("13:45:00.123456", &g::time(false)), Value::Time(hms_micro(13, 45, 0, 123_456)));
    assert_eq!(dec("00:00:00", &g::time(false)), Value::Time(NaiveTime::MIN));
    assert_eq!(dec("24:00:00", &g::time(false)), Value::Time(g::leap()));
    assert_eq!(dec("13:45:00+02", &g::time(true)), Value::TimeTz(hms_micro(13, 45, 0, 0), 7200));
    assert_eq!(dec("13:45:00.5-05:30", &g::time(true)), Value::TimeTz(hms_micro(13, 45, 0, 500_000), -19_800));
    assert_eq!(dec("01:02:03+05:53:28", &g::time(true)), Value::TimeTz(hms_micro(1, 2, 3, 0), 21_208));
    assert!(decode(b"13:45:00", &g::time(true)).is_err());
    assert!(decode(b"25:00:00", &g::time(false)).is_err());
}

#[test]
fn decodes_timestamps_at_full_precision() {
    let t = date(2024, 1, 31).and_time(hms_micro(10, 0, 0, 123_456));
    assert_eq!(dec("2024-01-31 10:00:00.123456", &g::ts(false)), Value::Timestamp(t));
    assert_eq!(dec("2024-01-31 10:00:00.123456+00", &g::ts(true)), Value::TimestampTz(t.and_utc()));
    assert_eq!(dec("2024-01-31 12:00:00.123456+02", &g::ts(true)), Value::TimestampTz(date(2024, 1, 31).and_time(hms_micro(10, 0, 0, 123_456)).and_utc()));
    assert_eq!(
        dec("0044-03-15 10:00:00+00 BC", &g::ts(true)),
        Value::TimestampTz(Utc.from_utc_datetime(&date(-43, 3, 15).and_hms_opt(10, 0, 0).unwrap()))
    );
    assert_eq!(dec("infinity", &g::ts(true)), Value::Infinity { negative: false });
    assert_eq!(dec("-infinity", &g::ts(false)), Value::Infinity { negative: true });
    assert!(decode(b"2024-01-31 10:00:00", &g::ts(true)).unwrap_err().contains("TimeZone"));
}

#[test]
fn decodes_iso_intervals() {
    assert_eq!(
        dec("P1Y2M3DT4H5M6.5S", &g::interval()),
        Value::Interval(Interval { months: 14, days: 3, micros: 14_706_500_000 })
    );
    assert_eq!(dec("P-1Y-2M3DT-4H-5M-6.5S", &g::interval()), Value::Interval(Interval { months: -14, days: 3, micros: -14_706_500_000 }));
    assert_eq!(dec("PT0S", &g::interval()), Value::Interval(Interval::default()));
    assert!(decode(b"1 year 2 mons", &g::interval()).unwrap_err().contains("IntervalStyle"));
}

#[test]
fn decodes_json_uuid_enum_bits_year() {
    assert_eq!(dec("{\"a\": [1, 2.50]}", &ColumnType::Jsonb), Value::Json("{\"a\": [1, 2.50]}".into()));
    let u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    let Value::Uuid(bytes) = dec(u, &ColumnType::Uuid) else { panic!() };
    assert_eq!(crate::codec::common::uuid_text(&bytes), u);
    assert_eq!(dec("happy", &g::enum_ty()), Value::Enum("happy".into()));
    assert_eq!(dec("0101", &ColumnType::Bit { length: Some(4), varying: false }), Value::Bits(vec![false, true, false, true]));
    assert_eq!(dec("", &ColumnType::Bit { length: None, varying: true }), Value::Bits(vec![]));
    assert_eq!(dec("1999", &ColumnType::Year), Value::Year(1999));
    assert_eq!(dec("{a,\"c d\"}", &g::set_ty()), Value::Set(vec!["a".into(), "c d".into()]));
    assert_eq!(dec("{}", &g::set_ty()), Value::Set(vec![]));
}

#[test]
fn decodes_arrays() {
    let ints = g::array(int(32));
    assert_eq!(dec("{1,2,NULL}", &ints), Value::Array(vec![Value::Int(1), Value::Int(2), Value::Null]));
    assert_eq!(dec("{}", &ints), Value::Array(vec![]));
    assert_eq!(
        dec("{{1,2},{3,4}}", &ints),
        Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(2)]), Value::Array(vec![Value::Int(3), Value::Int(4)])])
    );
    assert_eq!(dec("{{1},{2}}", &g::array(ints.clone())), dec("{{1},{2}}", &ints));
    let texts = g::array(ColumnType::text());
    assert_eq!(
        dec(r#"{"a,b","c\"d",NULL,"NULL",""," x ",plain,"back\\slash"}"#, &texts),
        Value::Array(vec![
            Value::Text("a,b".into()),
            Value::Text("c\"d".into()),
            Value::Null,
            Value::Text("NULL".into()),
            Value::Text(String::new()),
            Value::Text(" x ".into()),
            Value::Text("plain".into()),
            Value::Text("back\\slash".into()),
        ])
    );
    assert_eq!(dec(r#"{"\\x00ff"}"#, &g::array(g::blob())), Value::Array(vec![Value::Bytes(vec![0, 255])]));
    assert_eq!(
        dec(r#"{"2024-01-31 10:00:00+00",infinity}"#, &g::array(g::ts(true))),
        Value::Array(vec![Value::TimestampTz(date(2024, 1, 31).and_hms_opt(10, 0, 0).unwrap().and_utc()), Value::Infinity { negative: false }])
    );
    assert!(decode(b"[0:1]={1,2}", &ints).unwrap_err().contains("bounds"));
    assert!(decode(b"{1,2", &ints).is_err());
    assert!(decode(b"{1,x}", &ints).is_err());
    assert!(decode(b"{1}x", &ints).is_err());
}

// ---------------------------------------------------------------- encode

#[test]
fn encodes_null_text_and_escapes() {
    assert_eq!(enc(&Value::Null, &ColumnType::text()), "\\N");
    assert_eq!(enc(&Value::Text(String::new()), &ColumnType::text()), "");
    assert_eq!(enc(&Value::Text("\\N".into()), &ColumnType::text()), "\\\\N");
    assert_eq!(enc(&Value::Text("a\tb\nc\rd\\e😀".into()), &ColumnType::text()), "a\\tb\\nc\\rd\\\\e😀");
    assert!(enc_err(&Value::Text("a\0b".into()), &ColumnType::text()).contains("NUL"));
    // Text passes through to anything PostgreSQL parses.
    assert_eq!(enc(&Value::Text("42".into()), &int(32)), "42");
}

#[test]
fn encodes_bytea_with_a_doubled_backslash() {
    assert_eq!(enc(&Value::Bytes(vec![0, 0xab, b'\\']), &g::blob()), "\\\\x00ab5c");
    assert_eq!(enc(&Value::Bytes(vec![]), &g::blob()), "\\\\x");
    assert_eq!(enc(&Value::Text("é".into()), &g::blob()), "\\\\xc3a9");
    assert_eq!(enc(&Value::Uuid([1; 16]), &g::blob()), "\\\\x01010101010101010101010101010101");
    assert_eq!(enc(&Value::Bytes(b"plain".to_vec()), &ColumnType::text()), "plain");
    assert!(enc_err(&Value::Bytes(vec![0xff]), &ColumnType::text()).contains("UTF-8"));
    let all: Vec<u8> = (0..=255).collect();
    let field = enc(&Value::Bytes(all.clone()), &g::blob());
    let row = rows_of(format!("{field}\n").as_bytes()).remove(0);
    assert_eq!(decode_field(row[0].clone(), &g::blob()).unwrap(), Value::Bytes(all));
}

#[test]
fn encodes_integers_to_numeric_and_boolean_targets() {
    let u = Value::UInt(u64::MAX);
    let numeric20 = ColumnType::Decimal { precision: Some(20), scale: Some(0) };
    assert_eq!(enc(&u, &numeric20), "18446744073709551615");
    assert!(enc_err(&u, &int(64)).contains("out of range"));
    assert!(enc_err(&Value::Int(40_000), &int(16)).contains("out of range"));
    assert_eq!(enc(&Value::Int(0), &ColumnType::Bool), "f");
    assert_eq!(enc(&Value::Int(1), &ColumnType::Bool), "t");
    assert!(enc_err(&Value::Int(2), &ColumnType::Bool).contains("not a boolean"));
    assert_eq!(enc(&Value::Bool(true), &int(16)), "1");
    assert_eq!(enc(&Value::Bool(false), &ColumnType::text()), "false");
    assert_eq!(enc(&Value::Decimal("12.000".into()), &int(32)), "12");
    assert!(enc_err(&Value::Decimal("12.5".into()), &int(32)).contains("whole"));
    assert!(enc_err(&Value::Decimal("NaN".into()), &int(32)).contains("whole"));
    assert_eq!(enc(&Value::Year(2024), &int(16)), "2024");
    assert_eq!(enc(&Value::Float64(3.0), &int(32)), "3");
    assert!(enc_err(&Value::Date(date(2024, 1, 1)), &int(32)).contains("cannot write a date"));
}

#[test]
fn encodes_floats_shortest_and_special() {
    assert_eq!(enc(&Value::Float64(0.1), &ColumnType::Float64), "0.1");
    assert_eq!(enc(&Value::Float64(1e300), &ColumnType::Float64), "1e300");
    assert_eq!(enc(&Value::Float64(-1.5e-7), &ColumnType::Float64), "-1.5e-7");
    assert_eq!(enc(&Value::Float64(-0.0), &ColumnType::Float64), "-0");
    assert_eq!(enc(&Value::Float64(f64::NAN), &ColumnType::Float64), "NaN");
    assert_eq!(enc(&Value::Float64(f64::INFINITY), &ColumnType::Float64), "Infinity");
    assert_eq!(enc(&Value::Float32(f32::NEG_INFINITY), &ColumnType::Float32), "-Infinity");
    assert_eq!(enc(&Value::Float32(0.1), &ColumnType::Float64), "0.1");
    assert_eq!(enc(&Value::Float64(1e20), &g::decimal()), "100000000000000000000");
    assert_eq!(enc(&Value::Float64(f64::NAN), &g::decimal()), "NaN");
    assert_eq!(enc(&Value::Decimal("-Infinity".into()), &ColumnType::Float64), "-Infinity");
}

#[test]
fn encodes_dates_times_and_zones() {
    assert_eq!(enc(&Value::Date(date(-43, 3, 15)), &ColumnType::Date), "0044-03-15 BC");
    assert_eq!(enc(&Value::Date(date(12345, 1, 2)), &ColumnType::Date), "12345-01-02");
    assert_eq!(enc(&Value::Infinity { negative: true }, &g::ts(true)), "-infinity");
    assert_eq!(enc(&Value::Time(g::leap()), &g::time(false)), "24:00:00");
    assert_eq!(enc(&Value::Time(hms_micro(1, 2, 3, 450_000)), &g::time(false)), "01:02:03.45");
    assert_eq!(enc(&Value::TimeTz(hms_micro(1, 2, 3, 0), -19_800), &g::time(true)), "01:02:03-05:30");
    assert_eq!(enc(&Value::TimeTz(hms_micro(1, 2, 3, 0), 7200), &g::time(false)), "01:02:03");
    let wall = date(2024, 1, 31).and_time(hms_micro(10, 0, 0, 5));
    assert_eq!(enc(&Value::Timestamp(wall), &g::ts(false)), "2024-01-31 10:00:00.000005");
    assert_eq!(enc(&Value::Timestamp(wall), &g::ts(true)), "2024-01-31 10:00:00.000005+00");
    assert_eq!(enc(&Value::TimestampTz(wall.and_utc()), &g::ts(true)), "2024-01-31 10:00:00.000005+00");
    assert_eq!(enc(&Value::TimestampTz(wall.and_utc()), &g::ts(false)), "2024-01-31 10:00:00.000005");
    let bc = date(-43, 3, 15).and_hms_opt(10, 0, 0).unwrap();
    assert_eq!(enc(&Value::TimestampTz(bc.and_utc()), &g::ts(true)), "0044-03-15 10:00:00+00 BC");
    assert_eq!(enc(&Value::Timestamp(date(2024, 1, 31).and_time(NaiveTime::MIN)), &ColumnType::Date), "2024-01-31");
    assert!(enc_err(&Value::Timestamp(wall), &ColumnType::Date).contains("time of day"));
    assert!(enc_err(&Value::ZeroDate, &ColumnType::Date).contains("zero date"));
}

#[test]
fn encodes_intervals_json_uuid_enum_set_bits() {
    let iv = Interval { months: 14, days: 3, micros: 14_706_500_000 };
    assert_eq!(enc(&Value::Interval(iv), &g::interval()), "P1Y2M3DT4H5M6.5S");
    assert_eq!(enc(&Value::Interval(Interval { months: 0, days: 0, micros: 3_600_000_000 }), &g::time(false)), "01:00:00");
    assert!(enc_err(&Value::Interval(Interval { months: 0, days: 0, micros: -1 }), &g::time(false)).contains("time of day"));
    assert_eq!(enc(&Value::Time(hms_micro(1, 0, 0, 0)), &g::interval()), "01:00:00");
    assert_eq!(enc(&Value::Json("{\"a\":\"x\\ny\"}".into()), &ColumnType::Jsonb), "{\"a\":\"x\\\\ny\"}");
    assert_eq!(enc(&Value::Uuid([0xab; 16]), &ColumnType::Uuid), "abababab-abab-abab-abab-abababababab");
    assert_eq!(enc(&Value::Bytes(vec![0xab; 16]), &ColumnType::Uuid), "abababab-abab-abab-abab-abababababab");
    assert_eq!(enc(&Value::Enum("sad".into()), &g::enum_ty()), "sad");
    assert!(enc_err(&Value::Enum("angry".into()), &g::enum_ty()).contains("not a label"));
    let set = Value::Set(vec!["a".into(), "c d".into()]);
    assert_eq!(enc(&set, &g::array(ColumnType::text())), "{a,\"c d\"}");
    assert_eq!(enc(&set, &ColumnType::text()), "a,c d");
    let bit4 = ColumnType::Bit { length: Some(4), varying: false };
    assert_eq!(enc(&Value::Bits(vec![true, false]), &bit4), "0010");
    assert_eq!(enc(&Value::Bits(vec![false, false, true, false, true, true]), &bit4), "1011");
    assert!(enc_err(&Value::Bits(vec![true, false, false, false, false]), &bit4).contains("does not fit"));
    assert_eq!(enc(&Value::Bits(vec![true]), &ColumnType::Bool), "t");
    assert_eq!(enc(&Value::Bits(vec![true, true]), &int(32)), "3");
}

#[test]
fn encodes_arrays_with_quoting_and_nesting() {
    let texts = g::array(ColumnType::text());
    let v = Value::Array(vec![
        Value::Text("a,b".into()),
        Value::Text("c\"d".into()),
        Value::Null,
        Value::Text("NULL".into()),
        Value::Text(String::new()),
        Value::Text("tab\there".into()),
        Value::Text("back\\slash".into()),
        Value::Text("plain".into()),
    ]);
    let field = enc(&v, &texts);
    // COPY escaping on top of array quoting: backslashes doubled twice.
    assert_eq!(field, r#"{"a,b","c\\"d",NULL,"NULL","","tab\there","back\\\\slash",plain}"#);
    let row = rows_of(format!("{field}\n").as_bytes()).remove(0);
    assert_eq!(decode_field(row[0].clone(), &texts).unwrap(), v);
    let nested = Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Null]), Value::Array(vec![Value::Int(3), Value::Int(4)])]);
    assert_eq!(enc(&nested, &g::array(int(32))), "{{1,NULL},{3,4}}");
    assert_eq!(enc(&Value::Array(vec![]), &g::array(int(32))), "{}");
    assert_eq!(enc(&Value::Array(vec![Value::Bytes(vec![1])]), &g::array(g::blob())), r#"{"\\\\x01"}"#);
    assert_eq!(enc(&nested, &ColumnType::Jsonb), "[[1,null],[3,4]]");
    assert!(enc_err(&Value::Array(vec![Value::ZeroDate]), &g::array(ColumnType::Date)).contains("zero date"));
}

// ---------------------------------------------------------------- properties

fn pg_scalar_pairs() -> Vec<(ColumnType, BoxedStrategy<Value>)> {
    use Value as V;
    vec![
        (ColumnType::Bool, any::<bool>().prop_map(V::Bool).boxed()),
        (g::decimal(), g::decimal_text(true).prop_map(V::Decimal).boxed()),
        (ColumnType::Float64, g::f64_any().prop_map(V::Float64).boxed()),
        (ColumnType::Float32, g::f32_any().prop_map(V::Float32).boxed()),
        (ColumnType::text(), g::text(false).prop_map(V::Text).boxed()),
        (g::varchar(), g::text(false).prop_map(V::Text).boxed()),
        (g::blob(), g::bytes().prop_map(V::Bytes).boxed()),
        (
            ColumnType::Date,
            prop_oneof![
                8 => g::date(-4712..=200_000).prop_map(V::Date),
                1 => any::<bool>().prop_map(|negative| V::Infinity { negative }),
            ]
            .boxed(),
        ),
        (g::time(false), prop_oneof![9 => g::tod().prop_map(V::Time), 1 => Just(V::Time(g::leap()))].boxed()),
        (g::time(true), (g::tod(), -57_599i32..=57_599).prop_map(|(t, o)| V::TimeTz(t, o)).boxed()),
        (
            g::ts(false),
            prop_oneof![
                8 => g::datetime(-4712..=200_000).prop_map(V::Timestamp),
                1 => any::<bool>().prop_map(|negative| V::Infinity { negative }),
            ]
            .boxed(),
        ),
        (
            g::ts(true),
            prop_oneof![
                8 => g::datetime(-4712..=200_000).prop_map(|d| V::TimestampTz(d.and_utc())),
                1 => any::<bool>().prop_map(|negative| V::Infinity { negative }),
            ]
            .boxed(),
        ),
        (g::interval(), g::interval_any().prop_map(V::Interval).boxed()),
        (ColumnType::Jsonb, g::json_text().prop_map(V::Json).boxed()),
        (ColumnType::Uuid, any::<[u8; 16]>().prop_map(V::Uuid).boxed()),
        (g::enum_ty(), g::label().prop_map(V::Enum).boxed()),
    ]
}

fn pg_pairs() -> BoxedStrategy<Pair> {
    use Value as V;
    let mut parts = g::int_pairs();
    for (ty, values) in pg_scalar_pairs() {
        parts.push(g::pair(ty.clone(), values.clone()));
        parts.extend(g::arrays_of(ty, values));
    }
    parts.push(g::pair(g::set_ty(), g::members().prop_map(V::Set).boxed()));
    parts.push(g::pair(ColumnType::Year, any::<i16>().prop_map(V::Year).boxed()));
    parts.push(g::pair(ColumnType::Xml, g::text(false).prop_map(V::Text).boxed()));
    parts.push(g::pair(ColumnType::Other { name: "tsvector".into() }, g::text(false).prop_map(V::Text).boxed()));
    for n in [1usize, 8, 13, 64, 80] {
        parts.push(g::pair(ColumnType::Bit { length: Some(n as u32), varying: false }, g::bits(n..=n).prop_map(V::Bits).boxed()));
        parts.push(g::pair(ColumnType::Bit { length: Some(n as u32), varying: true }, g::bits(0..=n).prop_map(V::Bits).boxed()));
    }
    g::union(parts)
}

/// A row of values, with some NULLs.
fn pg_row() -> impl Strategy<Value = Vec<Pair>> {
    proptest::collection::vec(
        prop_oneof![8 => pg_pairs(), 1 => pg_pairs().prop_map(|(ty, _)| (ty, Value::Null))],
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    /// encode → COPY line → parser → decode gives back every value.
    #[test]
    fn values_round_trip_through_copy(row in pg_row()) {
        let mut line = Vec::new();
        for (k, (ty, v)) in row.iter().enumerate() {
            if k > 0 {
                line.push(b'\t');
            }
            encode(v, ty, &mut line).map_err(|e| TestCaseError::fail(format!("encode {v:?}: {e}")))?;
        }
        line.push(b'\n');
        let mut p = CopyTextParser::new();
        p.feed(&line);
        let fields = p.next_row().map_err(TestCaseError::fail)?.expect("a whole row");
        prop_assert_eq!(fields.len(), row.len());
        for ((ty, v), field) in row.iter().zip(fields) {
            let back = decode_field(field, ty).map_err(|e| TestCaseError::fail(format!("decode {v:?}: {e}")))?;
            prop_assert!(same(&back, v), "{:?} came back as {:?} ({})", v, back, String::from_utf8_lossy(&line));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The same stream split at any chunk boundaries gives the same rows.
    #[test]
    fn chunking_never_changes_rows(
        rows in proptest::collection::vec(proptest::collection::vec(proptest::option::of(g::text(false)), 1..5), 0..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for row in &rows {
            for (k, field) in row.iter().enumerate() {
                if k > 0 {
                    stream.push(b'\t');
                }
                match field {
                    Some(s) => encode(&Value::Text(s.clone()), &ColumnType::text(), &mut stream).unwrap(),
                    None => stream.extend_from_slice(b"\\N"),
                }
            }
            stream.push(b'\n');
        }
        let whole = rows_of(&stream);
        let expected: Vec<CopyRow> = rows
            .iter()
            .map(|r| r.iter().map(|f| f.as_ref().map(|s| s.as_bytes().to_vec())).collect())
            .collect();
        prop_assert_eq!(&whole, &expected);

        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut p = CopyTextParser::new();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in points.into_iter().chain([stream.len()]) {
            p.feed(&stream[at..cut]);
            at = cut;
            p.drain_rows(&mut got).map_err(TestCaseError::fail)?;
        }
        p.finish().map_err(TestCaseError::fail)?;
        prop_assert_eq!(got, whole);
    }
}

#[test]
fn lob_sizes_do_not_matter_to_the_codec() {
    let tiny = ColumnType::Blob { size: LobSize::Tiny };
    assert_eq!(enc(&Value::Bytes(vec![1]), &tiny), "\\\\x01");
}

/// Text from files and streams spells booleans and numbers as their
/// writers do: every spelling PostgreSQL's own input takes is read.
#[test]
fn other_writers_spellings_of_booleans_and_decimals_are_read() {
    for (s, b) in [("True", true), ("FALSE", false), ("yes", true), ("off", false), ("Y", true), (" on ", true)] {
        assert_eq!(decode(s.as_bytes(), &ColumnType::Bool), Ok(Value::Bool(b)), "{s}");
    }
    assert!(decode(b"maybe", &ColumnType::Bool).unwrap_err().contains("not a boolean"));
    let dec = ColumnType::Decimal { precision: Some(20), scale: Some(10) };
    assert_eq!(decode(b"1e-7", &dec), Ok(Value::Decimal("0.0000001".into())));
    assert_eq!(decode(b"1.5E+3", &dec), Ok(Value::Decimal("1500".into())));
}
