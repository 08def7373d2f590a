//! Compression of pack segments (format version 2): each segment's
//! plaintext is compressed with zstd before it is sealed, and kept as it is
//! when that does not pay. The choice is one byte at the front of the
//! sealed segment (see `docs/FORMAT.md`, section 2), so a reader needs no
//! other state, and every segment decompresses on its own into at most one
//! segment of plaintext: memory stays bounded whatever the pack's size.
//!
//! Deciding what to try:
//! - a tree's file is sampled once ([`Sampler::incompressible`]); the
//!   segments holding only such files' bytes are stored raw without trying;
//! - every other segment is tried, and kept raw when the saving is under
//!   1/32 (about 3 %). Inside one chunk, after two misses in a row only one
//!   segment in [`PROBE_EVERY`] is tried, so a table of already compressed
//!   blobs costs little more than storing it.

use std::fmt;
use std::str::FromStr;

/// Segment kind byte: the body is the plaintext itself.
pub const KIND_RAW: u8 = 0;
/// Segment kind byte: the body is one zstd frame holding the plaintext.
pub const KIND_ZSTD: u8 = 1;

/// Chunk header codec byte: every segment is raw.
pub const CODEC_NONE: u8 = 0;
/// Chunk header codec byte: segments may be zstd frames.
pub const CODEC_ZSTD: u8 = 1;

/// Segments tried once a chunk's segments stopped compressing: one in this many.
pub const PROBE_EVERY: u32 = 16;
/// Misses in a row after which a chunk's segments are only probed.
const MISSES_BEFORE_PROBING: u32 = 2;
/// Bytes read from a file to judge it (three spots of a third each).
pub const SAMPLE_BYTES: usize = 48 * 1024;
/// Files smaller than this are not sampled: they share segments with others.
pub const SAMPLE_MIN_FILE: u64 = 256 * 1024;

/// How `barge pack` compresses chunk data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd { level: i32 },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd { level: 3 }
    }
}

impl Compression {
    /// The codec byte of the chunk headers written with this setting.
    pub fn codec(self) -> u8 {
        match self {
            Compression::None => CODEC_NONE,
            Compression::Zstd { .. } => CODEC_ZSTD,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    /// `none`, `zstd` (level 3) or `zstd:LEVEL` with LEVEL in 1..=19.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a compression: use none, zstd or zstd:LEVEL (LEVEL 1 to 19; 3 is the default)");
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "zstd" => Ok(Compression::default()),
            other => {
                let level = other.strip_prefix("zstd:").ok_or_else(bad)?;
                let level: i32 = level.parse().map_err(|_| bad())?;
                if !(1..=19).contains(&level) {
                    return Err(bad());
                }
                Ok(Compression::Zstd { level })
            }
        }
    }
}

/// Whether a compressed form of `compressed` bytes is worth keeping over
/// `raw` bytes: it must save at least 1/32 of them.
pub fn worth_it(compressed: usize, raw: usize) -> bool {
    compressed + raw / 32 < raw
}

/// One writer's compressor: encodes segments, and remembers within a chunk
/// whether its segments compress.
pub struct SegmentEncoder {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    misses: u32,
    skipped: u32,
}

impl SegmentEncoder {
    pub fn new(c: Compression) -> Self {
        let zstd = match c {
            Compression::None => None,
            Compression::Zstd { level } => Some(zstd::bulk::Compressor::new(level).expect("a zstd level in range")),
        };
        SegmentEncoder { zstd, scratch: Vec::new(), misses: 0, skipped: 0 }
    }

    /// A new chunk: its segments get tried afresh.
    pub fn new_chunk(&mut self) {
        self.misses = 0;
        self.skipped = 0;
    }

    /// The zstd frame to store for `plain`, or `None` to store it raw.
    /// `try_compress` is false when the feeder knows the bytes do not
    /// compress.
    pub fn compress(&mut self, plain: &[u8], try_compress: bool) -> Option<&[u8]> {
        let z = self.zstd.as_mut()?;
        if !try_compress || plain.is_empty() {
            return None;
        }
        if self.misses >= MISSES_BEFORE_PROBING && self.skipped + 1 < PROBE_EVERY {
            self.skipped += 1;
            return None;
        }
        self.skipped = 0;
        self.scratch.clear();
        self.scratch.reserve(zstd::zstd_safe::compress_bound(plain.len()));
        match z.compress_to_buffer(plain, &mut self.scratch) {
            Ok(n) if worth_it(n, plain.len()) => {
                self.misses = 0;
                Some(&self.scratch[..n])
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    /// Appends the kind byte and body of `plain` to `out`.
    pub fn encode(&mut self, plain: &[u8], try_compress: bool, out: &mut Vec<u8>) {
        match self.compress(plain, try_compress) {
            Some(z) => {
                out.push(KIND_ZSTD);
                out.extend_from_slice(z);
            }
            None => {
                out.push(KIND_RAW);
                out.extend_from_slice(plain);
            }
        }
    }
}

/// Why a segment's stored form does not give its plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Reverses [`SegmentEncoder::encode`]: `stored` is the kind byte and body,
/// `plain_len` the plaintext length the segment must have (known from the
/// signed manifest). Never allocates more than `plain_len` bytes.
pub struct SegmentDecoder {
    zstd: zstd::bulk::Decompressor<'static>,
}

impl Default for SegmentDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentDecoder {
    pub fn new() -> Self {
        SegmentDecoder { zstd: zstd::bulk::Decompressor::new().expect("a zstd context") }
    }

    /// The plaintext, written into `out` (cleared first).
    pub fn decode(&mut self, codec: u8, stored: &[u8], plain_len: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        out.clear();
        let (&kind, body) = stored.split_first().ok_or_else(|| DecodeError("it has no kind byte".into()))?;
        match kind {
            KIND_RAW => {
                if body.len() != plain_len {
                    return Err(DecodeError(format!("it holds {} bytes, not the {plain_len} its place says", body.len())));
                }
                out.extend_from_slice(body);
            }
            KIND_ZSTD if codec == CODEC_ZSTD => {
                out.reserve_exact(plain_len);
                let n = self
                    .zstd
                    .decompress_to_buffer(body, out)
                    .map_err(|e| DecodeError(format!("it does not decompress: {e}")))?;
                if n != plain_len {
                    return Err(DecodeError(format!("it decompresses to {n} bytes, not the {plain_len} its place says")));
                }
            }
            k => return Err(DecodeError(format!("unknown segment kind {k}"))),
        }
        Ok(())
    }
}

/// Judges whether a file is worth compressing, from a sample.
pub struct Sampler {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    buf: Vec<u8>,
}

impl Sampler {
    pub fn new(c: Compression) -> Self {
        // Level 1: the sample only has to tell media from text, fast.
        let zstd = (c != Compression::None).then(|| zstd::bulk::Compressor::new(1).expect("zstd level 1"));
        Sampler { zstd, buf: Vec::new() }
    }

    /// True when the file at `f` (of `size` bytes) should be stored raw:
    /// compression is off, or a sample from its start, middle and end does
    /// not shrink by 1/32. Small files are never judged incompressible.
    pub fn incompressible(&mut self, f: &std::fs::File, size: u64) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(z) = self.zstd.as_mut() else { return true };
        if size < SAMPLE_MIN_FILE {
            return false;
        }
        let part = SAMPLE_BYTES / 3;
        self.buf.clear();
        self.buf.resize(SAMPLE_BYTES, 0);
        let mut got = 0;
        for at in [0, size / 2, size - part as u64] {
            match f.read_at(&mut self.buf[got..got + part], at) {
                Ok(n) => got += n,
                // The packer's own read reports any error; compress then.
                Err(_) => return false,
            }
        }
        match z.compress(&self.buf[..got]) {
            Ok(c) => !worth_it(c.len(), got),
            Err(_) => false,
        }
    }
}

/// Compressed size ÷ original size of `sample` the way `barge pack` would
/// store it with `c` (segments of `segment` bytes, each kept raw when it
/// does not pay); 1.0 for an empty sample.
pub fn estimate_ratio(sample: &[u8], c: Compression, segment: usize) -> f64 {
    if sample.is_empty() {
        return 1.0;
    }
    let mut enc = SegmentEncoder::new(c);
    let mut out = Vec::new();
    let mut stored = 0usize;
    for piece in sample.chunks(segment.max(1)) {
        out.clear();
        enc.encode(piece, true, &mut out);
        stored += out.len() - 1;
    }
    stored as f64 / sample.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flag_values_parse() {
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd { level: 3 });
        assert_eq!("zstd:19".parse::<Compression>().unwrap(), Compression::Zstd { level: 19 });
        for bad in ["zstd:0", "zstd:20", "gzip", "zstd:x", ""] {
            assert!(bad.parse::<Compression>().unwrap_err().contains("zstd:LEVEL"), "{bad}");
        }
        assert_eq!(Compression::Zstd { level: 7 }.to_string(), "zstd:7");
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn text_compresses_and_noise_stays_raw() {
        let mut e = SegmentEncoder::new(Compression::default());
        let text = "a line of a log file, id=12345\n".repeat(4000);
        let mut out = Vec::new();
        e.encode(text.as_bytes(), true, &mut out);
        assert_eq!(out[0], KIND_ZSTD);
        assert!(out.len() < text.len() / 10);
        let n = noise(100_000, 7);
        out.clear();
        e.encode(&n, true, &mut out);
        assert_eq!(out[0], KIND_RAW);
        assert_eq!(out.len(), n.len() + 1);
        assert!(estimate_ratio(&n, Compression::default(), 1 << 20) == 1.0);
        assert!(estimate_ratio(text.as_bytes(), Compression::default(), 1 << 20) < 0.1);
    }

    /// After two misses only one segment in PROBE_EVERY is tried; a hit
    /// brings every segment back.
    #[test]
    fn a_chunk_of_noise_is_only_probed() {
        let mut e = SegmentEncoder::new(Compression::default());
        let n = noise(4096, 3);
        let text = "abc".repeat(2000);
        let mut kinds = Vec::new();
        for i in 0..40 {
            let mut out = Vec::new();
            // Segment 20 onwards compress; the encoder notices at its next probe.
            e.encode(if i < 20 { &n } else { text.as_bytes() }, true, &mut out);
            kinds.push(out[0]);
        }
        assert!(kinds[..20].iter().all(|&k| k == KIND_RAW));
        let first_hit = kinds.iter().position(|&k| k == KIND_ZSTD).unwrap();
        assert!(first_hit < 20 + PROBE_EVERY as usize, "{kinds:?}");
        assert!(kinds[first_hit..].iter().all(|&k| k == KIND_ZSTD), "{kinds:?}");
    }

    proptest! {
        #[test]
        fn segments_round_trip(data in prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, b'a', 255]), 0..20_000), try_it: bool) {
            let mut e = SegmentEncoder::new(Compression::Zstd { level: 1 });
            let mut stored = Vec::new();
            e.encode(&data, try_it, &mut stored);
            let mut back = Vec::new();
            SegmentDecoder::new().decode(CODEC_ZSTD, &stored, data.len(), &mut back).unwrap();
            prop_assert_eq!(&back, &data);
            // A wrong length is refused, never grown into.
            prop_assert!(SegmentDecoder::new().decode(CODEC_ZSTD, &stored, data.len() + 1, &mut back).is_err());
            if stored[0] == KIND_ZSTD {
                prop_assert!(SegmentDecoder::new().decode(CODEC_NONE, &stored, data.len(), &mut back).is_err());
            }
        }
    }
}
