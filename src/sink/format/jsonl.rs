//! JSON lines: one object per record, keys in column order. A value the
//! source did not send (an unchanged large value of an update, the
//! non-key columns of a delete) is left out of the object, never written
//! as null.

use super::{Extra, RecordWriter};
use crate::codec::json::write_json;
use crate::sink::compress::Encoder;
use crate::sink::record::Record;
use crate::sink::{Compression, SinkTable};

pub struct JsonlWriter {
    out: Encoder,
    extra: Extra,
    /// Column names, already JSON-quoted.
    names: Vec<String>,
    line: String,
    bytes: usize,
    records: u64,
}

impl JsonlWriter {
    pub fn new(table: &SinkTable, extra: &Extra, compression: Compression) -> Result<Self, String> {
        Ok(JsonlWriter {
            out: Encoder::new(compression).map_err(|e| e.to_string())?,
            extra: extra.clone(),
            names: table.columns.iter().map(|c| quoted(&c.name)).collect(),
            line: String::new(),
            bytes: 0,
            records: 0,
        })
    }
}

pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Appends `{"col": value, ...}` for the values that are known.
pub(crate) fn write_object(names: &[String], values: &[Option<&crate::model::Value>], out: &mut String) -> Result<(), String> {
    out.push('{');
    let mut first = true;
    for (name, v) in names.iter().zip(values) {
        let Some(v) = v else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push(':');
        write_json(v, out)?;
    }
    out.push('}');
    Ok(())
}

impl RecordWriter for JsonlWriter {
    fn write(&mut self, rec: &Record) -> Result<(), String> {
        self.line.clear();
        let mut body = String::new();
        write_object(&self.names, &rec.values, &mut body)?;
        if self.extra.op {
            self.line.push_str("{\"Op\":\"");
            self.line.push_str(rec.kind.op_code());
            self.line.push('"');
            if body.len() > 2 {
                self.line.push(',');
            }
        } else {
            self.line.push('{');
        }
        self.line.push_str(&body[1..body.len() - 1]);
        if let Some(id) = &self.extra.record_id {
            if self.line.len() > 1 {
                self.line.push(',');
            }
            self.line.push_str(&quoted(id));
            self.line.push_str(":\"");
            self.line.push_str(&rec.id);
            self.line.push('"');
        }
        self.line.push_str("}\n");
        self.out.write_all(self.line.as_bytes()).map_err(|e| e.to_string())?;
        self.bytes += self.line.len();
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
    use crate::sink::SinkColumn;

    #[test]
    fn unknown_values_are_left_out() {
        let t = SinkTable {
            source: QualifiedName::bare("t"),
            schema: "main".into(),
            name: "t".into(),
            columns: vec![SinkColumn { name: "id".into(), ty: ColumnType::int(64) }, SinkColumn { name: "amount".into(), ty: ColumnType::Decimal { precision: Some(30), scale: Some(10) } }],
            key: vec![0],
        };
        let mut w = Box::new(JsonlWriter::new(&t, &Extra { op: true, record_id: None }, Compression::None).unwrap());
        let up = Change { table: t.source.clone(), op: Op::Update { before: None, after: vec![Some(Value::Int(1)), None] }, txid: None, commit_time: None, position: Position::pg(1) };
        w.write(&Record::new(&t, &up, "a".into())).unwrap();
        let ins = Change { table: t.source.clone(), op: Op::Insert { row: vec![Value::Int(2), Value::Decimal("12345678901234567890.0000000001".into())] }, txid: None, commit_time: None, position: Position::pg(2) };
        w.write(&Record::new(&t, &ins, "b".into())).unwrap();
        let tr = Change { table: t.source.clone(), op: Op::Truncate, txid: None, commit_time: None, position: Position::pg(3) };
        w.write(&Record::new(&t, &tr, "c".into())).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text, "{\"Op\":\"U\",\"id\":1}\n{\"Op\":\"I\",\"id\":2,\"amount\":12345678901234567890.0000000001}\n{\"Op\":\"T\"}\n");
    }
}
