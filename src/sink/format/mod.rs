//! File formats: each turns records into the bytes of one file.

pub mod csv;
pub mod jsonl;
#[cfg(feature = "parquet")]
pub mod parquet;

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

/// A writer for one file of `table`.
pub fn writer(format: FileFormat, compression: Compression, table: &SinkTable, extra: &Extra, csv_header: bool) -> Result<Box<dyn RecordWriter>, String> {
    match format {
        FileFormat::Csv => Ok(Box::new(csv::CsvWriter::new(table, extra, compression, csv_header)?)),
        FileFormat::Jsonl => Ok(Box::new(jsonl::JsonlWriter::new(table, extra, compression)?)),
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
