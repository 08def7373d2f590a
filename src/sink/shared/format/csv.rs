//! RFC 4180 CSV: a header line (by default), CRLF line ends, fields quoted
//! when they hold a comma, quote or line break. NULL is an empty field; an
//! empty string is `""`, so the two stay apart.

use super::{Extra, LineFormat};
use crate::codec::text::write_text;
use crate::sink::shared::record::Record;
use crate::sink::SinkTable;

/// The header line: `Op` first when asked for, the record id last.
pub fn header(table: &SinkTable, extra: &Extra) -> String {
    let mut names: Vec<&str> = Vec::new();
    if extra.op {
        names.push("Op");
    }
    names.extend(table.columns.iter().map(|c| c.name.as_str()));
    if let Some(id) = &extra.record_id {
        names.push(id);
    }
    let mut line = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_field(n, false, &mut line);
    }
    line.push_str("\r\n");
    line
}

/// Appends one field, quoted if it must be (or if it is an empty string).
fn push_field(s: &str, quote_empty: bool, out: &mut String) {
    let needs = (quote_empty && s.is_empty()) || s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if !needs {
        out.push_str(s);
        return;
    }
    out.push('"');
    for ch in s.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

pub struct CsvLines {
    extra: Extra,
    field: String,
}

impl CsvLines {
    pub fn new(extra: &Extra) -> Self {
        CsvLines { extra: extra.clone(), field: String::new() }
    }
}

impl LineFormat for CsvLines {
    fn line(&mut self, rec: &Record, line: &mut String) -> Result<(), String> {
        let mut first = true;
        let mut sep = |line: &mut String| {
            if !first {
                line.push(',');
            }
            first = false;
        };
        if self.extra.op {
            sep(line);
            line.push_str(rec.kind.op_code());
        }
        for v in &rec.values {
            sep(line);
            match v {
                // Text is its own text form: no copy through `field`.
                Some(crate::model::Value::Text(s) | crate::model::Value::Enum(s)) => push_field(s, true, line),
                Some(v) => {
                    self.field.clear();
                    write_text(v, &mut self.field)?;
                    push_field(&self.field, false, line);
                }
                None => {}
            }
        }
        if self.extra.record_id.is_some() {
            sep(line);
            line.push_str(&rec.id);
        }
        line.push_str("\r\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::RecordWriter;
    use super::*;
    use crate::cdc::{Change, Op};
    use crate::model::{ColumnType, Position, QualifiedName, Value};
    use crate::sink::{Compression, SinkColumn};

    #[test]
    fn quoting_nulls_and_ops() {
        let t = SinkTable {
            source: QualifiedName::bare("t"),
            schema: "main".into(),
            name: "t".into(),
            columns: vec![SinkColumn { name: "id".into(), ty: ColumnType::int(64) }, SinkColumn { name: "note, \"quoted\"".into(), ty: ColumnType::text() }],
            key: vec![0],
        };
        let extra = Extra { op: true, record_id: Some("rid".into()) };
        let mut w = Box::new(super::super::LineWriter::new(CsvLines::new(&extra), Compression::None, Some(header(&t, &extra))).unwrap());
        let rows = [vec![Value::Int(1), Value::Text("a,b\n\"c\"".into())], vec![Value::Int(2), Value::Null], vec![Value::Int(3), Value::Text(String::new())]];
        for row in rows {
            let c = Change { table: t.source.clone(), op: Op::Insert { row }, txid: None, commit_time: None, position: Position::Snapshot };
            w.write(&Record::new(&t, &c, "x".into())).unwrap();
        }
        let d = Change { table: t.source.clone(), op: Op::Delete { key: vec![Value::Int(4)] }, txid: None, commit_time: None, position: Position::pg(1) };
        w.write(&Record::new(&t, &d, "y".into())).unwrap();
        assert_eq!(w.records(), 4);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text, "Op,id,\"note, \"\"quoted\"\"\",rid\r\nI,1,\"a,b\n\"\"c\"\"\",x\r\nI,2,,x\r\nI,3,\"\",x\r\nD,4,,y\r\n");
    }
}
