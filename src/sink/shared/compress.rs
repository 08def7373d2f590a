//! Whole-file compression for the text formats (CSV, JSON lines), into
//! memory: a file is only written once it is complete.

use std::io::Write;

use super::Compression;

/// An in-memory file being compressed as it is written.
pub enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
}

impl Encoder {
    pub fn new(c: Compression) -> std::io::Result<Encoder> {
        Ok(match c {
            Compression::None => Encoder::Plain(Vec::new()),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())),
            // Level 3 is zstd's default: most of the ratio at a fraction of the CPU.
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3)?),
            Compression::Snappy => Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(Vec::new()))),
        })
    }

    pub fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(v) => {
                v.extend_from_slice(b);
                Ok(())
            }
            Encoder::Gzip(e) => e.write_all(b),
            Encoder::Zstd(e) => e.write_all(b),
            Encoder::Snappy(e) => e.write_all(b),
        }
    }

    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Plain(v) => Ok(v),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Snappy(e) => e.into_inner().map_err(|e| std::io::Error::other(e.to_string())),
        }
    }
}

/// The file name suffix a compression adds (`.csv.gz`).
pub fn suffix(c: Compression) -> &'static str {
    match c {
        Compression::None => "",
        Compression::Gzip => ".gz",
        Compression::Zstd => ".zst",
        Compression::Snappy => ".snappy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_compression_round_trips() {
        let text = "id,name\r\n1,ä\r\n".repeat(1000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd, Compression::Snappy] {
            let mut e = Encoder::new(c).unwrap();
            e.write_all(text.as_bytes()).unwrap();
            let bytes = e.finish().unwrap();
            let mut back = String::new();
            match c {
                Compression::None => back = String::from_utf8(bytes).unwrap(),
                Compression::Gzip => drop(flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut back).unwrap()),
                Compression::Zstd => back = String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap(),
                Compression::Snappy => drop(snap::read::FrameDecoder::new(&bytes[..]).read_to_string(&mut back).unwrap()),
            }
            assert_eq!(back, text, "{c:?}");
        }
    }
}
