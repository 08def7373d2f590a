//! The manifest: what a receiving site needs to check the disks without the
//! key (every chunk file with its size and ciphertext SHA-256), the key
//! slots, and the encrypted catalog; signed with Ed25519.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::Catalog;
use super::crypto::{self, KeySlot, MasterKey, Sealed, Signer};
use super::format::{self, HeaderError, ManifestFrame};

/// What stays fixed for the life of a pack: written in the journal first,
/// then in every manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    #[serde(with = "hex")]
    pub pack_id: [u8; 16],
    pub created: String,
    pub segment_size: u32,
    pub chunk_size: u64,
    pub key_slots: Vec<KeySlot>,
    /// Ed25519 public key that signs every manifest of this pack.
    #[serde(with = "hex")]
    pub signer: Vec<u8>,
    /// The signer's seed, sealed under the master key ("signing-seed").
    pub signing_seed: Sealed,
    #[serde(with = "hex")]
    pub signing_seed_ct: Vec<u8>,
}

impl Identity {
    pub fn pack_id_hex(&self) -> String {
        hex::encode(self.pack_id)
    }

    /// First 16 hex digits of SHA-256(public key): short enough to read
    /// over the phone, to compare with what the sender printed.
    pub fn signer_fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(&self.signer)[..8])
    }

    /// The signer, if this master key really is the pack's.
    pub fn open_signer(&self, master: &MasterKey) -> Option<Signer> {
        let seed = crypto::open_blob(master, "signing-seed", &self.pack_id, &self.signing_seed, &self.signing_seed_ct)?;
        let s = Signer::from_seed(&seed)?;
        (s.public_key() == self.signer).then_some(s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRecord {
    pub number: u32,
    /// The mount point it had when first written, for messages.
    pub label: String,
    /// The host it was attached to, in a pack made by several workers
    /// (`barge pack --coordinator`), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl DeviceRecord {
    /// "device 3 (host h2, first written at /mnt/a)", for messages.
    pub fn describe(&self) -> String {
        match &self.host {
            Some(h) => format!("device {} (host {h}, first written at {})", self.number, self.label),
            None => format!("device {} (first written at {})", self.number, self.label),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkRecord {
    pub id: u64,
    /// The writer stream it belongs to; readers replay each slot in id order.
    pub slot: u32,
    pub device: u32,
    /// Size of the chunk file in bytes.
    pub size: u64,
    /// SHA-256 of the whole chunk file (header and ciphertext).
    #[serde(with = "hex")]
    pub sha256: [u8; 32],
    /// Plaintext bytes in the chunk. Present for version-2 chunks, whose
    /// compressed size does not tell it; a version-1 chunk's follows from
    /// `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<u64>,
}

impl ChunkRecord {
    /// Plaintext bytes in the chunk, if the record gives them or its size
    /// implies them (version 1).
    pub fn plain_len(&self, segment_size: u32) -> Option<u64> {
        self.plain.or_else(|| format::plain_len_of(self.size, segment_size))
    }
}

/// The manifest's JSON body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u16,
    #[serde(flatten)]
    pub identity: Identity,
    /// Grows by one each run of `barge pack`; readers prefer the highest.
    pub generation: u64,
    /// False while a pack waits for `--resume`.
    pub complete: bool,
    pub written: String,
    pub devices: Vec<DeviceRecord>,
    pub chunks: Vec<ChunkRecord>,
    /// Chunk ids that were started and never finished (an interrupted run);
    /// files with these names are leftovers, not tampering.
    #[serde(default)]
    pub abandoned: Vec<u64>,
    /// Key material of the catalog ciphertext that follows the body.
    pub catalog: Sealed,
}

pub struct Encoded {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

pub fn encode(m: &Manifest, catalog: &Catalog, master: &MasterKey, signer: &Signer) -> Encoded {
    let plain = serde_json::to_vec(catalog).expect("catalog serializes");
    let (sealed, ct) = crypto::seal_blob(master, "catalog", &m.identity.pack_id, &plain);
    let mut m = m.clone();
    m.catalog = sealed;
    let body = serde_json::to_vec_pretty(&m).expect("manifest serializes");
    let mut bytes = format::manifest_signed_bytes(&ManifestFrame { body: &body, catalog: &ct });
    let sig = signer.sign(&bytes);
    bytes.extend_from_slice(&sig);
    let sha256 = Sha256::digest(&bytes).into();
    Encoded { bytes, sha256 }
}

#[derive(Debug)]
pub enum ManifestError {
    Frame(HeaderError),
    Json(String),
    Signature,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::Frame(e) => write!(f, "not a valid manifest: {e}"),
            ManifestError::Json(e) => write!(f, "manifest body does not parse: {e}"),
            ManifestError::Signature => f.write_str("manifest signature does not match: it was altered"),
        }
    }
}

/// A manifest whose signature checked against its own public key.
pub struct Decoded {
    pub manifest: Manifest,
    pub catalog_ct: Vec<u8>,
    pub sha256: [u8; 32],
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, ManifestError> {
    let (signed, body, cat, sig) = format::parse_manifest(bytes).map_err(ManifestError::Frame)?;
    let manifest: Manifest = serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
    if !(format::OLDEST_READABLE..=format::FORMAT_VERSION).contains(&manifest.format) {
        return Err(ManifestError::Frame(HeaderError::Version(manifest.format)));
    }
    if !crypto::verify_signature(&manifest.identity.signer, signed, sig) {
        return Err(ManifestError::Signature);
    }
    Ok(Decoded { manifest, catalog_ct: cat.to_vec(), sha256: Sha256::digest(bytes).into() })
}

/// Decrypts the catalog; `None` if the key is not this pack's.
pub fn open_catalog(d: &Decoded, master: &MasterKey) -> Option<Result<Catalog, String>> {
    let plain = crypto::open_blob(master, "catalog", &d.manifest.identity.pack_id, &d.manifest.catalog, &d.catalog_ct)?;
    Some(serde_json::from_slice(&plain).map_err(|e| {
        if e.to_string().contains("unknown variant") {
            format!("the catalog holds an item kind this barge does not know ({e}); use a newer barge")
        } else {
            format!("the catalog does not parse: {e}")
        }
    }))
}
