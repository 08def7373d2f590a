//! Binary layouts: the chunk file header and the manifest file framing.
//! Every byte is described in `docs/FORMAT.md`; all integers little-endian.

/// The version barge writes: 2 adds compressed, length-framed segments.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest version barge still reads.
pub const OLDEST_READABLE: u16 = 1;
pub const CHUNK_MAGIC: [u8; 8] = *b"BARGECHK";
pub const MANIFEST_MAGIC: [u8; 8] = *b"BARGEMAN";
pub const CHUNK_HEADER_LEN: usize = 80;
/// Version 2: the little-endian u32 before each sealed segment, giving its
/// sealed length without the tag.
pub const FRAME_LEN: usize = 4;
pub const MANIFEST_PREAMBLE_LEN: usize = 16;
pub const SIGNATURE_LEN: usize = 64;
pub use super::crypto::TAG_LEN;

pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 20;
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 30;
pub const MIN_SEGMENT_SIZE: u32 = 1024;
/// Segments are held in memory whole; 64 MiB bounds that.
pub const MAX_SEGMENT_SIZE: u32 = 64 << 20;

/// The plaintext header of a chunk file; authenticated as the associated
/// data of every segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHeader {
    /// 1 or 2 (see `docs/FORMAT.md`): how the segments are laid out.
    pub version: u16,
    /// Version 2: `compress::CODEC_NONE` or `CODEC_ZSTD`; 0 in version 1.
    pub codec: u8,
    pub segment_size: u32,
    pub pack_id: [u8; 16],
    pub chunk_id: u64,
    pub salt: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    TooShort,
    BadMagic,
    /// Made by a newer barge.
    Version(u16),
    BadField(&'static str),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort => f.write_str("too short for a chunk header"),
            HeaderError::BadMagic => f.write_str("not a barge chunk file (bad magic)"),
            HeaderError::Version(v) => write!(f, "format version {v} is newer than this barge reads ({FORMAT_VERSION})"),
            HeaderError::BadField(what) => write!(f, "invalid header field: {what}"),
        }
    }
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[0..8].copy_from_slice(&CHUNK_MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&(CHUNK_HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.segment_size.to_le_bytes());
        b[16..32].copy_from_slice(&self.pack_id);
        b[32..40].copy_from_slice(&self.chunk_id.to_le_bytes());
        b[40..72].copy_from_slice(&self.salt);
        b[72] = self.codec;
        // 73..80: reserved, zero.
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < 12 {
            return Err(HeaderError::TooShort);
        }
        if b[0..8] != CHUNK_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(HeaderError::Version(version));
        }
        if u16::from_le_bytes([b[10], b[11]]) as usize != CHUNK_HEADER_LEN {
            return Err(HeaderError::BadField("header length"));
        }
        if b.len() < CHUNK_HEADER_LEN {
            return Err(HeaderError::TooShort);
        }
        let segment_size = u32::from_le_bytes(b[12..16].try_into().unwrap());
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(HeaderError::BadField("segment size"));
        }
        let codec = b[72];
        let known_codec = match version {
            1 => codec == 0,
            _ => codec == super::compress::CODEC_NONE || codec == super::compress::CODEC_ZSTD,
        };
        if !known_codec {
            return Err(HeaderError::BadField("compression codec"));
        }
        if b[73..80].iter().any(|&x| x != 0) {
            return Err(HeaderError::BadField("reserved bytes"));
        }
        Ok(ChunkHeader {
            version,
            codec,
            segment_size,
            pack_id: b[16..32].try_into().unwrap(),
            chunk_id: u64::from_le_bytes(b[32..40].try_into().unwrap()),
            salt: b[40..72].try_into().unwrap(),
        })
    }
}

/// Number of segments a chunk of `plain` bytes has: at least one, so an
/// empty chunk still carries a last-segment tag.
pub fn segment_count(plain: u64, segment_size: u32) -> u64 {
    plain.div_ceil(segment_size as u64).max(1)
}

/// The most a version-2 chunk of `plain` plaintext bytes can take on disk:
/// every segment stored raw (a compressed segment is only kept when smaller).
pub fn chunk_file_bound(plain: u64, segment_size: u32) -> u64 {
    CHUNK_HEADER_LEN as u64 + plain + (FRAME_LEN + 1 + TAG_LEN) as u64 * segment_count(plain, segment_size)
}

/// The largest plaintext whose version-2 bound fits in `room` bytes.
pub fn plain_fitting_bound(room: u64, segment_size: u32) -> u64 {
    let s = segment_size as u64;
    let per = (FRAME_LEN + 1 + TAG_LEN) as u64;
    let Some(body) = room.checked_sub(CHUNK_HEADER_LEN as u64) else { return 0 };
    let full = body / (s + per);
    let rest = body - full * (s + per);
    full * s + rest.saturating_sub(per)
}

/// Where the sealed segments of a version-2 chunk file lie: for each, the
/// byte range of its ciphertext and tag (after its length word). Stops at
/// the first length word that runs past the end.
pub fn segment_ranges_v2(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = CHUNK_HEADER_LEN;
    while at + FRAME_LEN <= file.len() {
        let n = u32::from_le_bytes(file[at..at + FRAME_LEN].try_into().unwrap()) as usize;
        let end = at + FRAME_LEN + n + TAG_LEN;
        if end > file.len() {
            break;
        }
        out.push(at + FRAME_LEN..end);
        at = end;
    }
    out
}

/// Size on disk of a version-1 chunk holding `plain` plaintext bytes.
pub fn chunk_file_size(plain: u64, segment_size: u32) -> u64 {
    CHUNK_HEADER_LEN as u64 + plain + TAG_LEN as u64 * segment_count(plain, segment_size)
}

/// The largest plaintext that fits in a chunk file of at most `room` bytes.
pub fn plain_fitting(room: u64, segment_size: u32) -> u64 {
    let s = segment_size as u64;
    let Some(body) = room.checked_sub(CHUNK_HEADER_LEN as u64) else { return 0 };
    let full = body / (s + TAG_LEN as u64);
    let rest = body - full * (s + TAG_LEN as u64);
    full * s + rest.saturating_sub(TAG_LEN as u64)
}

/// Inverse of [`chunk_file_size`] for a well-formed file: its plaintext
/// length, or `None` if no plaintext gives this size.
pub fn plain_len_of(file_size: u64, segment_size: u32) -> Option<u64> {
    let p = plain_fitting(file_size, segment_size);
    (chunk_file_size(p, segment_size) == file_size).then_some(p)
}

/// The manifest file: preamble, JSON body, encrypted catalog, signature.
pub struct ManifestFrame<'a> {
    pub body: &'a [u8],
    pub catalog: &'a [u8],
}

/// Lays out everything the signature covers.
pub fn manifest_signed_bytes(f: &ManifestFrame) -> Vec<u8> {
    let mut out = Vec::with_capacity(MANIFEST_PREAMBLE_LEN + f.body.len() + 8 + f.catalog.len() + SIGNATURE_LEN);
    out.extend_from_slice(&MANIFEST_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(f.body.len() as u32).to_le_bytes());
    out.extend_from_slice(f.body);
    out.extend_from_slice(&(f.catalog.len() as u64).to_le_bytes());
    out.extend_from_slice(f.catalog);
    out
}

/// The parts of a manifest file: (signed bytes, body, catalog, signature).
pub type ManifestParts<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8]);

/// Splits a manifest file into its parts.
pub fn parse_manifest(b: &[u8]) -> Result<ManifestParts<'_>, HeaderError> {
    if b.len() < MANIFEST_PREAMBLE_LEN {
        return Err(HeaderError::TooShort);
    }
    if b[0..8] != MANIFEST_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderError::Version(version));
    }
    if b[10..12] != [0, 0] {
        return Err(HeaderError::BadField("flags"));
    }
    let body_len = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let body_end = MANIFEST_PREAMBLE_LEN.checked_add(body_len).ok_or(HeaderError::TooShort)?;
    if b.len() < body_end + 8 + SIGNATURE_LEN {
        return Err(HeaderError::TooShort);
    }
    let cat_len = u64::from_le_bytes(b[body_end..body_end + 8].try_into().unwrap());
    let cat_end = (body_end as u64 + 8).checked_add(cat_len).ok_or(HeaderError::TooShort)?;
    if b.len() as u64 != cat_end + SIGNATURE_LEN as u64 {
        return Err(HeaderError::BadField("length"));
    }
    let cat_end = cat_end as usize;
    Ok((&b[..cat_end], &b[MANIFEST_PREAMBLE_LEN..body_end], &b[body_end + 8..cat_end], &b[cat_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_round_trips(seg in MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE, id: u64, pid: [u8; 16], salt: [u8; 32]) {
            let h = ChunkHeader { version: 2, codec: (id % 2) as u8, segment_size: seg, pack_id: pid, chunk_id: id, salt };
            prop_assert_eq!(ChunkHeader::decode(&h.encode()).unwrap(), h);
        }

        #[test]
        fn header_rejects_any_flipped_fixed_byte(i in 0usize..12, bit in 0u8..8) {
            let h = ChunkHeader { version: 2, codec: 1, segment_size: 4096, pack_id: [1; 16], chunk_id: 3, salt: [2; 32] };
            let mut b = h.encode();
            b[i] ^= 1 << bit;
            prop_assert!(ChunkHeader::decode(&b).is_err());
        }

        #[test]
        fn v2_bounds_invert(plain in 0u64..50_000_000, seg in prop::sample::select(vec![1024u32, 4096, 1 << 20])) {
            let size = chunk_file_bound(plain, seg);
            prop_assert_eq!(plain_fitting_bound(size, seg), plain);
            prop_assert!(chunk_file_bound(plain_fitting_bound(size + 7, seg), seg) <= size + 7);
        }

        #[test]
        fn sizes_invert(plain in 0u64..50_000_000, seg in prop::sample::select(vec![1024u32, 4096, 1 << 20])) {
            let size = chunk_file_size(plain, seg);
            prop_assert_eq!(plain_len_of(size, seg), Some(plain));
            prop_assert!(plain_fitting(size, seg) == plain);
            prop_assert!(chunk_file_size(plain_fitting(size + 7, seg), seg) <= size + 7);
        }

        #[test]
        fn manifest_frame_round_trips(body in prop::collection::vec(any::<u8>(), 0..300), cat in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut f = manifest_signed_bytes(&ManifestFrame { body: &body, catalog: &cat });
            let signed_len = f.len();
            f.extend_from_slice(&[9u8; SIGNATURE_LEN]);
            let (signed, b, c, s) = parse_manifest(&f).unwrap();
            prop_assert_eq!(signed.len(), signed_len);
            prop_assert_eq!(b, &body[..]);
            prop_assert_eq!(c, &cat[..]);
            prop_assert_eq!(s, &[9u8; SIGNATURE_LEN][..]);
            // Truncation anywhere is refused.
            prop_assert!(parse_manifest(&f[..f.len() - 1]).is_err());
        }
    }
}
