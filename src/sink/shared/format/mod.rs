//! File formats: each turns records into the bytes of one file.

pub mod csv;
pub mod jobs;
pub mod jsonl;
#[cfg(feature = "parquet")]
pub mod parquet;

use super::compress::Encoder;
use super::record::Record;
use super::{Compression, FileFormat, SinkTable};

/// The columns a file has besides the table's.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// A first column `Op` (I/U/D).
    pub op: bool,
    /// A last column holding the record id.
    pub record_id: Option<String>,
}

/// One file being filled.
pub trait RecordWriter: Send {
    /// Adds a record. An `Err` is the reason the record cannot be written in
    /// this format; nothing of it was added, and the caller sends it to
    /// `errors/`.
    fn write(&mut self, rec: &Record) -> Result<(), String>;
    /// Bytes taken so far (before compression): what the buffer size counts.
    fn buffered(&self) -> usize;
    fn records(&self) -> u64;
    /// The complete file.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, String>;
}

/// A text format with one record per line (CSV, JSON lines).
pub trait LineFormat: Send {
    /// Appends `rec`'s line, line end included, to the empty `out`.
    fn line(&mut self, rec: &Record, out: &mut String) -> Result<(), String>;
}

/// A file of lines, compressed as it is written.
pub struct LineWriter<F> {
    format: F,
    out: Encoder,
    line: String,
    bytes: usize,
    records: u64,
}

impl<F: LineFormat> LineWriter<F> {
    /// `header` is written first when given (CSV's column names).
    pub fn new(format: F, compression: Compression, header: Option<String>) -> Result<Self, String> {
        let mut w = LineWriter { format, out: Encoder::new(compression).map_err(|e| e.to_string())?, line: String::new(), bytes: 0, records: 0 };
        if let Some(h) = header {
            w.out.write_all(h.as_bytes()).map_err(|e| e.to_string())?;
            w.bytes += h.len();
        }
        Ok(w)
    }
}

impl<F: LineFormat> RecordWriter for LineWriter<F> {
    fn write(&mut self, rec: &Record) -> Result<(), String> {
        self.line.clear();
        self.format.line(rec, &mut self.line)?;
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

/// A writer for one file of `table`.
pub fn writer(format: FileFormat, compression: Compression, table: &SinkTable, extra: &Extra, csv_header: bool) -> Result<Box<dyn RecordWriter>, String> {
    match format {
        FileFormat::Csv => Ok(Box::new(LineWriter::new(csv::CsvLines::new(extra), compression, csv_header.then(|| csv::header(table, extra)))?)),
        FileFormat::Jsonl => Ok(Box::new(LineWriter::new(jsonl::JsonLines::new(table, extra), compression, None)?)),
        #[cfg(feature = "parquet")]
        FileFormat::Parquet => Ok(Box::new(parquet::ParquetWriter::new(table, extra, compression)?)),
        #[cfg(not(feature = "parquet"))]
        FileFormat::Parquet => Err("this barge was built without the `parquet` feature".into()),
    }
}

/// The file name extension, compression included (`csv.gz`; Parquet
/// compresses inside the file).
pub fn extension(format: FileFormat, compression: Compression) -> String {
    match format {
        FileFormat::Parquet => "parquet".into(),
        f => format!("{}{}", f.extension(), super::compress::suffix(compression)),
    }
}
