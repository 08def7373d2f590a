//! JSON lines: one object per record, keys in column order. A value the
//! source did not send (an unchanged large value of an update, the
//! non-key columns of a delete) is left out of the object, never written
//! as null.

use super::{Extra, LineFormat};
use crate::codec::json::write_json;
use crate::sink::shared::record::Record;
use crate::sink::SinkTable;

pub struct JsonLines {
    extra: Extra,
    /// Column names, already JSON-quoted.
    names: Vec<String>,
}

impl JsonLines {
    pub fn new(table: &SinkTable, extra: &Extra) -> Self {
        JsonLines { extra: extra.clone(), names: table.columns.iter().map(|c| quoted(&c.name)).collect() }
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

impl LineFormat for JsonLines {
    fn line(&mut self, rec: &Record, line: &mut String) -> Result<(), String> {
        let mut body = String::new();
        write_object(&self.names, &rec.values, &mut body)?;
        if self.extra.op {
            line.push_str("{\"Op\":\"");
            line.push_str(rec.kind.op_code());
            line.push('"');
            if body.len() > 2 {
                line.push(',');
            }
        } else {
            line.push('{');
        }
        line.push_str(&body[1..body.len() - 1]);
        if let Some(id) = &self.extra.record_id {
            if line.len() > 1 {
                line.push(',');
            }
            line.push_str(&quoted(id));
            line.push_str(":\"");
            line.push_str(&rec.id);
            line.push('"');
        }
        line.push_str("}\n");
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
    fn unknown_values_are_left_out() {
        let t = SinkTable {
            source: QualifiedName::bare("t"),
            schema: "main".into(),
            name: "t".into(),
            columns: vec![SinkColumn { name: "id".into(), ty: ColumnType::int(64) }, SinkColumn { name: "amount".into(), ty: ColumnType::Decimal { precision: Some(30), scale: Some(10) } }],
            key: vec![0],
        };
        let mut w = Box::new(super::super::LineWriter::new(JsonLines::new(&t, &Extra { op: true, record_id: None }), Compression::None, None).unwrap());
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
