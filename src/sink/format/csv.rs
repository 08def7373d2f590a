//! RFC 4180 CSV: a header line (by default), CRLF line ends, fields quoted
//! when they hold a comma, quote or line break. NULL is an empty field; an
//! empty string is `""`, so the two stay apart.

use super::{Extra, RecordWriter};
use crate::codec::text::write_text;
use crate::sink::compress::Encoder;
use crate::sink::record::Record;
use crate::sink::{Compression, SinkTable};

pub struct CsvWriter {
    out: Encoder,
    extra: Extra,
    line: String,
    field: String,
    bytes: usize,
    records: u64,
}

impl CsvWriter {
    pub fn new(table: &SinkTable, extra: &Extra, compression: Compression, header: bool) -> Result<Self, String> {
        let mut w = CsvWriter { out: Encoder::new(compression).map_err(|e| e.to_string())?, extra: extra.clone(), line: String::new(), field: String::new(), bytes: 0, records: 0 };
        if header {
            let mut names: Vec<&str> = Vec::new();
            if extra.op {
                names.push("Op");
            }
            names.extend(table.columns.iter().map(|c| c.name.as_str()));
            if let Some(id) = &extra.record_id {
                names.push(id);
            }
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    w.line.push(',');
                }
                push_field(n, false, &mut w.line);
            }
            w.line.push_str("\r\n");
            w.emit()?;
        }
        Ok(w)
    }

    fn emit(&mut self) -> Result<(), String> {
        self.out.write_all(self.line.as_bytes()).map_err(|e| e.to_string())?;
        self.bytes += self.line.len();
        self.line.clear();
        Ok(())
    }
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

impl RecordWriter for CsvWriter {
    fn write(&mut self, rec: &Record) -> Result<(), String> {
        self.line.clear();
        let mut first = true;
        let mut sep = |line: &mut String| {
            if !first {
                line.push(',');
            }
            first = false;
        };
        if self.extra.op {
            sep(&mut self.line);
            self.line.push_str(rec.kind.op_code());
        }
        for v in &rec.values {
            sep(&mut self.line);
            if let Some(v) = v {
                self.field.clear();
                write_text(v, &mut self.field)?;
                let is_string = matches!(v, crate::model::Value::Text(_) | crate::model::Value::Enum(_));
                push_field(&self.field, is_string, &mut self.line);
            }
        }
        if self.extra.record_id.is_some() {
            sep(&mut self.line);
            self.line.push_str(&rec.id);
        }
        self.line.push_str("\r\n");
        self.emit()?;
        self.records += 1;
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.bytes
    }

    fn records(&self) -> u64 {
        self.records
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, String> {
        self.out.finish().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{Change, Op};
    use crate::model::{ColumnType, Position, QualifiedName, Value};
    use crate::sink::record::Record;
    use crate::sink::SinkColumn;

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
        let mut w = Box::new(CsvWriter::new(&t, &extra, Compression::None, true).unwrap());
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
