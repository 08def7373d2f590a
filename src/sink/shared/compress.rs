//! Whole-file compression for the text formats (CSV, JSON lines), into
//! memory: a file is only written once it is complete.
//!
//! gzip and zstd compress on every core, the way pigz does: the text is cut
//! into blocks, each block becomes a complete gzip member (zstd frame) of
//! its own on another thread, and the members are joined in order. Every
//! gzip reader (RFC 1952 §2.2, `gzip -d`, Python's `gzip`, zlib's
//! `inflate` in gzip mode with member continuation) and every zstd reader
//! reads concatenated members as one stream, so the file decompresses to
//! exactly the text written. Blocks are large enough that restarting the
//! compressor's window at each costs well under 1% of the ratio.

use std::io::Write;

use super::format::jobs::OrderedJobs;
use super::Compression;

/// Plain bytes per gzip member: deflate's window is 32 KiB, so a 1 MiB
/// block loses almost nothing to starting afresh.
const GZIP_BLOCK: usize = 1 << 20;
/// Plain bytes per zstd frame: zstd's window at level 3 is larger, so are
/// its blocks.
const ZSTD_BLOCK: usize = 4 << 20;
/// gzip's own default, the level `gzip -6` and pigz use.
const GZIP_LEVEL: u32 = 6;
/// zstd's default: most of the ratio at a fraction of the CPU.
const ZSTD_LEVEL: i32 = 3;

/// An in-memory file being compressed as it is written.
pub enum Encoder {
    Plain(Vec<u8>),
    Blocks(Blocks),
    Snappy(Box<snap::write::FrameEncoder<Vec<u8>>>),
}

/// Which block compressor [`Blocks`] runs.
#[derive(Debug, Clone, Copy)]
enum BlockCodec {
    Gzip,
    Zstd,
}

impl BlockCodec {
    fn block_size(self) -> usize {
        match self {
            BlockCodec::Gzip => GZIP_BLOCK,
            BlockCodec::Zstd => ZSTD_BLOCK,
        }
    }

    /// One complete, independent member (frame) holding `plain`.
    fn compress(self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            BlockCodec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 3 + 64), flate2::Compression::new(GZIP_LEVEL));
                e.write_all(plain)?;
                e.finish()
            }
            BlockCodec::Zstd => zstd::bulk::compress(plain, ZSTD_LEVEL),
        }
    }
}

/// Blocks compressed on other threads, joined in order into `out`.
pub struct Blocks {
    codec: BlockCodec,
    block: Vec<u8>,
    out: Vec<u8>,
    members: usize,
    jobs: OrderedJobs<std::io::Result<Vec<u8>>>,
}

impl Blocks {
    fn new(codec: BlockCodec) -> Blocks {
        Blocks { codec, block: Vec::with_capacity(codec.block_size()), out: Vec::new(), members: 0, jobs: OrderedJobs::new() }
    }

    fn write_all(&mut self, mut b: &[u8]) -> std::io::Result<()> {
        let size = self.codec.block_size();
        while !b.is_empty() {
            let take = (size - self.block.len()).min(b.len());
            self.block.extend_from_slice(&b[..take]);
            b = &b[take..];
            if self.block.len() >= size {
                self.send()?;
            }
        }
        Ok(())
    }

    /// Hands the current block to a thread.
    fn send(&mut self) -> std::io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(self.codec.block_size()));
        let codec = self.codec;
        self.members += 1;
        if let Some(done) = self.jobs.submit(move || codec.compress(&block)).map_err(std::io::Error::other)? {
            self.out.extend_from_slice(&done?);
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<Vec<u8>> {
        // An empty file is still one (empty) member: a valid .gz / .zst.
        if !self.block.is_empty() || self.members == 0 {
            self.send()?;
        }
        for done in self.jobs.drain().map_err(std::io::Error::other)? {
            self.out.extend_from_slice(&done?);
        }
        Ok(self.out)
    }
}

impl Encoder {
    pub fn new(c: Compression) -> std::io::Result<Encoder> {
        Ok(match c {
            Compression::None => Encoder::Plain(Vec::new()),
            Compression::Gzip => Encoder::Blocks(Blocks::new(BlockCodec::Gzip)),
            Compression::Zstd => Encoder::Blocks(Blocks::new(BlockCodec::Zstd)),
            Compression::Snappy => Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(Vec::new()))),
        })
    }

    pub fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(v) => {
                v.extend_from_slice(b);
                Ok(())
            }
            Encoder::Blocks(e) => e.write_all(b),
            Encoder::Snappy(e) => e.write_all(b),
        }
    }

    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Plain(v) => Ok(v),
            Encoder::Blocks(e) => e.finish(),
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
                Compression::Gzip => drop(flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut back).unwrap()),
                Compression::Zstd => back = String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap(),
                Compression::Snappy => drop(snap::read::FrameDecoder::new(&bytes[..]).read_to_string(&mut back).unwrap()),
            }
            assert_eq!(back, text, "{c:?}");
        }
    }

    /// Count of gzip members: each starts with the magic bytes and deflate
    /// method, and a single-member decoder stops after the first.
    fn gzip_members(bytes: &[u8]) -> usize {
        let mut n = 0;
        let mut rest = bytes;
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            std::io::copy(&mut d, &mut std::io::sink()).unwrap();
            rest = d.into_inner();
            n += 1;
        }
        n
    }

    #[test]
    fn large_files_become_many_members_that_read_back_as_one_text() {
        // Several blocks, with a line cut across each block boundary.
        let text: String = (0..200_000).map(|i| format!("{i},{:x},ü\r\n", i * 7919)).collect();
        assert!(text.len() > 3 * GZIP_BLOCK);
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut e = Encoder::new(c).unwrap();
            for piece in text.as_bytes().chunks(777) {
                e.write_all(piece).unwrap();
            }
            let bytes = e.finish().unwrap();
            let back = match c {
                Compression::Gzip => {
                    assert_eq!(gzip_members(&bytes), text.len().div_ceil(GZIP_BLOCK));
                    let mut back = Vec::new();
                    flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap();
                    back
                }
                _ => zstd::stream::decode_all(&bytes[..]).unwrap(),
            };
            assert!(back == text.as_bytes(), "{c:?}: the members join to the exact text");
        }
    }

    #[test]
    fn an_empty_file_is_still_valid() {
        let bytes = Encoder::new(Compression::Gzip).unwrap().finish().unwrap();
        assert_eq!(gzip_members(&bytes), 1);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
        let z = Encoder::new(Compression::Zstd).unwrap().finish().unwrap();
        assert!(zstd::stream::decode_all(&z[..]).unwrap().is_empty());
    }
}
