//! Row images of a binlog rows event, read straight into values.
//!
//! mysql_common's own row iterator builds a full column description (name,
//! table, schema, flags) for every column of every row, which cost more than
//! the values themselves. Here each column's type, metadata and signedness
//! are read once per event from its table map, and every value is decoded
//! by mysql_common's own `BinlogValue` decoder, borrowing the event's bytes.

use mysql_async::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_common::io::ParseBuf;

/// One row image: a value (or SQL NULL) per column the image holds, in
/// column order.
pub type Image<'a> = Vec<BinlogValue<'a>>;

/// How to read each column of a table's row images.
pub struct Layout<'t> {
    columns: Vec<(ColumnType, &'t [u8], bool)>,
}

impl<'t> Layout<'t> {
    /// From the table map event that precedes the rows event.
    pub fn new(tme: &'t TableMapEvent<'_>) -> std::io::Result<Layout<'t>> {
        let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
        let mut signedness = meta.iter_signedness();
        let mut columns = Vec::with_capacity(tme.columns_count() as usize);
        for i in 0..tme.columns_count() as usize {
            let ty = match tme.get_column_type(i) {
                Ok(Some(ty)) => ty,
                Ok(None) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no type for column {i} in the table map"))),
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            };
            // Signedness is listed for the numeric columns only, in order.
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            columns.push((ty, tme.get_column_metadata(i).unwrap_or(&[]), unsigned));
        }
        Ok(Layout { columns })
    }
}

/// The (before, after) images of every row of `ev`. Partial JSON updates
/// (MySQL's PARTIAL_UPDATE_ROWS_EVENT) are the caller's to refuse first.
pub fn rows<'a>(ev: &'a RowsEventData<'a>, layout: &Layout<'a>) -> std::io::Result<Vec<(Option<Image<'a>>, Option<Image<'a>>)>> {
    let n = ev.num_columns() as usize;
    let before: Option<Vec<bool>> = ev.columns_before_image().map(|b| (0..n).map(|i| b.get(i).is_some_and(|x| *x)).collect());
    let after: Option<Vec<bool>> = ev.columns_after_image().map(|b| (0..n).map(|i| b.get(i).is_some_and(|x| *x)).collect());
    let mut buf = ParseBuf(ev.rows_data());
    let mut out = Vec::new();
    while !buf.is_empty() {
        let b = match &before {
            Some(cols) => Some(image(&mut buf, cols, layout)?),
            None => None,
        };
        let a = match &after {
            Some(cols) => Some(image(&mut buf, cols, layout)?),
            None => None,
        };
        out.push((b, a));
    }
    Ok(out)
}

/// One row image: a null bitmap over the columns present, then their values.
fn image<'a>(buf: &mut ParseBuf<'a>, present: &[bool], layout: &Layout<'a>) -> std::io::Result<Image<'a>> {
    let count = present.iter().filter(|p| **p).count();
    let nulls: &'a [u8] = buf.parse(count.div_ceil(8))?;
    let mut values = Vec::with_capacity(count);
    for (i, _) in present.iter().enumerate().filter(|(_, p)| **p) {
        let k = values.len();
        if nulls[k / 8] & (1 << (k % 8)) != 0 {
            values.push(BinlogValue::Value(mysql_async::Value::NULL));
            continue;
        }
        let Some(&(ty, meta, unsigned)) = layout.columns.get(i) else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("the row has column {i}, the table map fewer")));
        };
        values.push(buf.parse::<BinlogValue<'a>>((ty, meta, unsigned, false))?);
    }
    Ok(values)
}
