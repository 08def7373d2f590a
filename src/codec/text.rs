//! Values as plain text, for text file formats (CSV): the same spellings
//! as [`json`](super::json) uses, without JSON's quotes. Decimals keep
//! their digits; arrays and SETs are written as JSON.

use super::common;
use super::json;
use crate::model::Value;

/// Appends `v` as text. NULL writes nothing: the caller decides how a
/// NULL is shown (CSV leaves the field empty).
pub fn write_text(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => {}
        Value::Text(s) | Value::Enum(s) | Value::Json(s) | Value::Decimal(s) => out.push_str(s),
        Value::Float32(x) => match common::nonfinite_name(f64::from(*x)) {
            Some(name) => out.push_str(name),
            None => common::write_f32(*x, out),
        },
        Value::Float64(x) => match common::nonfinite_name(*x) {
            Some(name) => out.push_str(name),
            None => common::write_f64(*x, out),
        },
        Value::ZeroDate => return Err("a zero date (0000-00-00) has no text form outside MySQL".into()),
        other => match json::scalar_text(other) {
            Some(s) => out.push_str(&s),
            // Numbers, booleans, arrays and SETs: their JSON form.
            None => json::write_json(other, out)?,
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn text(v: Value) -> String {
        let mut s = String::new();
        write_text(&v, &mut s).unwrap();
        s
    }

    #[test]
    fn plain_spellings() {
        assert_eq!(text(Value::Decimal("-12.3400".into())), "-12.3400");
        assert_eq!(text(Value::Text("a,\"b\"".into())), "a,\"b\"");
        assert_eq!(text(Value::Float64(f64::NAN)), "NaN");
        assert_eq!(text(Value::Int(-7)), "-7");
        assert_eq!(text(Value::Bool(true)), "true");
        let ts = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_micro_opt(23, 59, 1, 500).unwrap();
        assert_eq!(text(Value::Timestamp(ts)), "2024-02-29T23:59:01.0005");
        assert_eq!(text(Value::TimestampTz(ts.and_utc())), "2024-02-29T23:59:01.0005+00:00");
        assert_eq!(text(Value::Array(vec![Value::Int(1), Value::Null])), "[1,null]");
        assert_eq!(text(Value::Bytes(vec![1, 255])), "\\x01ff");
        assert_eq!(text(Value::Null), "");
        assert!(write_text(&Value::ZeroDate, &mut String::new()).is_err());
    }
}
