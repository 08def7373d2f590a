//! Keys and ciphers of the pack format, all on `ring`:
//!
//! - a random 32-byte master key, wrapped in key slots (Argon2id passphrase,
//!   or an unlock key file);
//! - one AES-256-GCM key per chunk file, HKDF-SHA256(master, salt) with a
//!   fresh random salt in each chunk header, so a rewritten chunk never
//!   reuses a key and nonce;
//! - the STREAM construction inside a chunk: nonce = segment counter plus a
//!   last-segment flag, with the chunk header as associated data;
//! - an Ed25519 key that signs the manifest, its seed wrapped by the master key.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};


pub const KEY_LEN: usize = 32;
pub const TAG_LEN: usize = 16;
pub const NONCE_LEN: usize = 12;

/// Fills an array from the system CSPRNG.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).expect("the system random generator failed");
    b
}

/// The key every other key derives from. It never leaves memory unwrapped.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(random())
    }
    pub fn from_bytes(b: [u8; KEY_LEN]) -> Self {
        MasterKey(b)
    }
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HKDF-SHA256 with the given salt and an info string bound to the pack.
    pub fn derive(&self, salt: &[u8], label: &str, pack_id: &[u8; 16], extra: &[u8]) -> [u8; KEY_LEN] {
        hkdf_bytes(salt, &self.0, &[b"barge/v1/", label.as_bytes(), b"/", pack_id, extra])
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0 = [0; KEY_LEN];
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_bytes(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; KEY_LEN] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let okm = prk.expand(info, Len(KEY_LEN)).expect("HKDF output length is valid");
    let mut out = [0u8; KEY_LEN];
    okm.fill(&mut out).expect("HKDF output length is valid");
    out
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES key"))
}

/// The nonce of segment `counter` of a chunk: 3 zero bytes, the counter as
/// big-endian u64, then 1 if it is the chunk's last segment, else 0.
pub fn stream_nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    Nonce::assume_unique_for_key(n)
}

/// The per-chunk key: HKDF(salt = header salt, ikm = master,
/// info = "barge/v1/chunk/" ‖ pack id ‖ chunk id as u64 LE).
pub fn chunk_key(master: &MasterKey, pack_id: &[u8; 16], chunk_id: u64, salt: &[u8; 32]) -> [u8; KEY_LEN] {
    master.derive(salt, "chunk", pack_id, &chunk_id.to_le_bytes())
}

/// Seals the segments of one chunk, in order.
pub struct Sealer {
    key: LessSafeKey,
    aad: Vec<u8>,
    counter: u64,
    done: bool,
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN], header: &[u8]) -> Self {
        Sealer { key: aead_key(key), aad: header.to_vec(), counter: 0, done: false }
    }

    /// Encrypts `buf` in place and appends the 16-byte tag.
    pub fn seal(&mut self, buf: &mut Vec<u8>, last: bool) {
        assert!(!self.done, "segment sealed after the last one");
        let tag = self
            .key
            .seal_in_place_separate_tag(stream_nonce(self.counter, last), Aad::from(&self.aad[..]), buf)
            .expect("AES-GCM seal cannot fail for in-range lengths");
        buf.extend_from_slice(tag.as_ref());
        self.counter += 1;
        self.done = last;
    }

    /// Encrypts `buf` in place and returns the 16-byte tag.
    pub fn seal_slice(&mut self, buf: &mut [u8], last: bool) -> [u8; TAG_LEN] {
        assert!(!self.done, "segment sealed after the last one");
        let tag = self
            .key
            .seal_in_place_separate_tag(stream_nonce(self.counter, last), Aad::from(&self.aad[..]), buf)
            .expect("AES-GCM seal cannot fail for in-range lengths");
        self.counter += 1;
        self.done = last;
        tag.as_ref().try_into().expect("a 16-byte tag")
    }
}

/// Opens the segments of one chunk. Each segment authenticates on its own
/// (its index and last flag are in its nonce), so a damaged one does not
/// take the segments after it along.
pub struct Opener {
    key: LessSafeKey,
    aad: Vec<u8>,
}

impl Opener {
    pub fn new(key: &[u8; KEY_LEN], header: &[u8]) -> Self {
        Opener { key: aead_key(key), aad: header.to_vec() }
    }

    /// Decrypts segment `index` (ciphertext then tag) in place; returns the
    /// plaintext length, or `None` if it does not authenticate as that
    /// segment of this chunk.
    pub fn open(&self, index: u64, buf: &mut [u8], last: bool) -> Option<usize> {
        Some(self.key.open_in_place(stream_nonce(index, last), Aad::from(&self.aad[..]), buf).ok()?.len())
    }
}

/// One AEAD message under a key derived from the master key with a fresh
/// salt: used for the catalog and the signing seed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    #[serde(with = "hex")]
    pub salt: Vec<u8>,
    #[serde(with = "hex")]
    pub nonce: Vec<u8>,
}

pub fn seal_blob(master: &MasterKey, label: &str, pack_id: &[u8; 16], plain: &[u8]) -> (Sealed, Vec<u8>) {
    let salt: [u8; 32] = random();
    let nonce: [u8; NONCE_LEN] = random();
    let key = aead_key(&master.derive(&salt, label, pack_id, &[]));
    let mut buf = plain.to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&pack_id[..]), &mut buf)
        .expect("AES-GCM seal");
    buf.extend_from_slice(tag.as_ref());
    (Sealed { salt: salt.to_vec(), nonce: nonce.to_vec() }, buf)
}

pub fn open_blob(master: &MasterKey, label: &str, pack_id: &[u8; 16], s: &Sealed, ct: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = s.nonce.as_slice().try_into().ok()?;
    let key = aead_key(&master.derive(&s.salt, label, pack_id, &[]));
    let mut buf = ct.to_vec();
    let n = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&pack_id[..]), &mut buf).ok()?.len();
    buf.truncate(n);
    Some(buf)
}

/// Argon2id cost, stored in each passphrase slot so a reader uses the same.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Argon2Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Argon2Params {
    /// ~0.4 s on one core of the reference machine.
    fn default() -> Self {
        Argon2Params { m_kib: 64 * 1024, t: 3, p: 4 }
    }
}

/// A way to unlock the master key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeySlot {
    /// KEK = Argon2id(passphrase, salt, params).
    Passphrase {
        kdf: String,
        params: Argon2Params,
        #[serde(with = "hex")]
        salt: Vec<u8>,
        #[serde(with = "hex")]
        nonce: Vec<u8>,
        #[serde(with = "hex")]
        wrapped: Vec<u8>,
    },
    /// KEK = HKDF-SHA256(salt, key file bytes, "barge/v1/key-file").
    KeyFile {
        #[serde(with = "hex")]
        salt: Vec<u8>,
        #[serde(with = "hex")]
        nonce: Vec<u8>,
        #[serde(with = "hex")]
        wrapped: Vec<u8>,
    },
}

/// What the user brought to unlock a pack.
pub enum Unlock<'a> {
    Passphrase(&'a [u8]),
    KeyFile(&'a [u8]),
}

fn argon2_kek(pass: &[u8], salt: &[u8], p: Argon2Params) -> Result<[u8; KEY_LEN], String> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(KEY_LEN)).map_err(|e| e.to_string())?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; KEY_LEN];
    a.hash_password_into(pass, salt, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn keyfile_kek(bytes: &[u8], salt: &[u8]) -> [u8; KEY_LEN] {
    hkdf_bytes(salt, bytes, &[b"barge/v1/key-file"])
}

fn wrap(kek: &[u8; KEY_LEN], pack_id: &[u8; 16], master: &MasterKey) -> (Vec<u8>, Vec<u8>) {
    let nonce: [u8; NONCE_LEN] = random();
    let mut buf = master.0.to_vec();
    let tag = aead_key(kek)
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&pack_id[..]), &mut buf)
        .expect("AES-GCM seal");
    buf.extend_from_slice(tag.as_ref());
    (nonce.to_vec(), buf)
}

fn unwrap(kek: &[u8; KEY_LEN], pack_id: &[u8; 16], nonce: &[u8], wrapped: &[u8]) -> Option<MasterKey> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let mut buf = wrapped.to_vec();
    let plain =
        aead_key(kek).open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&pack_id[..]), &mut buf).ok()?;
    Some(MasterKey(plain.try_into().ok()?))
}

impl KeySlot {
    pub fn passphrase(master: &MasterKey, pack_id: &[u8; 16], pass: &[u8], params: Argon2Params) -> Result<Self, String> {
        let salt: [u8; 32] = random();
        let kek = argon2_kek(pass, &salt, params)?;
        let (nonce, wrapped) = wrap(&kek, pack_id, master);
        Ok(KeySlot::Passphrase { kdf: "argon2id".into(), params, salt: salt.to_vec(), nonce, wrapped })
    }

    pub fn key_file(master: &MasterKey, pack_id: &[u8; 16], key: &[u8]) -> Self {
        let salt: [u8; 32] = random();
        let (nonce, wrapped) = wrap(&keyfile_kek(key, &salt), pack_id, master);
        KeySlot::KeyFile { salt: salt.to_vec(), nonce, wrapped }
    }

    /// Tries this slot; `None` if it does not match what was given.
    pub fn open(&self, pack_id: &[u8; 16], unlock: &Unlock) -> Option<MasterKey> {
        match (self, unlock) {
            (KeySlot::Passphrase { kdf, params, salt, nonce, wrapped }, Unlock::Passphrase(p)) if kdf == "argon2id" => {
                let kek = argon2_kek(p, salt, *params).ok()?;
                unwrap(&kek, pack_id, nonce, wrapped)
            }
            (KeySlot::KeyFile { salt, nonce, wrapped }, Unlock::KeyFile(k)) => {
                unwrap(&keyfile_kek(k, salt), pack_id, nonce, wrapped)
            }
            _ => None,
        }
    }
}

/// Opens the first slot that accepts `unlock`.
pub fn open_slots(slots: &[KeySlot], pack_id: &[u8; 16], unlock: &Unlock) -> Option<MasterKey> {
    slots.iter().find_map(|s| s.open(pack_id, unlock))
}

/// The manifest signer: an Ed25519 key whose seed travels wrapped by the
/// master key, so only a key holder can sign, and anyone can check.
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    pub fn generate() -> (Self, [u8; 32]) {
        let seed: [u8; 32] = random();
        (Signer::from_seed(&seed).expect("valid seed"), seed)
    }
    pub fn from_seed(seed: &[u8]) -> Option<Self> {
        Ed25519KeyPair::from_seed_unchecked(seed).ok().map(|pair| Signer { pair })
    }
    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.pair.sign(msg).as_ref().try_into().expect("Ed25519 signatures are 64 bytes")
    }
}

pub fn verify_signature(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key).verify(msg, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_detects_reorder_truncation_and_flag() {
        let master = MasterKey::generate();
        let pid = [7u8; 16];
        let key = chunk_key(&master, &pid, 1, &[1u8; 32]);
        let header = b"hdr".to_vec();
        let mut s = Sealer::new(&key, &header);
        let mut a = b"first".to_vec();
        let mut b = b"second".to_vec();
        s.seal(&mut a, false);
        s.seal(&mut b, true);
        // In order: fine.
        let o = Opener::new(&key, &header);
        assert_eq!(o.open(0, &mut a.clone(), false), Some(5));
        assert_eq!(o.open(1, &mut b.clone(), true), Some(6));
        // Each on its own: the second opens even if the first was damaged.
        let mut bad = a.clone();
        bad[0] ^= 1;
        assert_eq!(o.open(0, &mut bad, false), None);
        assert_eq!(o.open(1, &mut b.clone(), true), Some(6));
        // Swapped.
        assert_eq!(o.open(0, &mut b.clone(), false), None);
        assert_eq!(o.open(1, &mut a.clone(), true), None);
        // Truncated after the first segment: it was not sealed as last.
        assert_eq!(o.open(0, &mut a.clone(), true), None);
        // Other header.
        let o = Opener::new(&key, b"other");
        assert_eq!(o.open(0, &mut a.clone(), false), None);
        // Other chunk id gives another key.
        assert_ne!(chunk_key(&master, &pid, 2, &[1u8; 32]), key);
    }

    #[test]
    fn slots_open_only_with_the_right_secret() {
        let master = MasterKey::generate();
        let pid = [1u8; 16];
        let weak = Argon2Params { m_kib: 64, t: 1, p: 1 };
        let slots = vec![KeySlot::passphrase(&master, &pid, b"right", weak).unwrap(), KeySlot::key_file(&master, &pid, b"kf")];
        assert_eq!(open_slots(&slots, &pid, &Unlock::Passphrase(b"right")).unwrap().bytes(), master.bytes());
        assert_eq!(open_slots(&slots, &pid, &Unlock::KeyFile(b"kf")).unwrap().bytes(), master.bytes());
        assert!(open_slots(&slots, &pid, &Unlock::Passphrase(b"wrong")).is_none());
        assert!(open_slots(&slots, &[2u8; 16], &Unlock::Passphrase(b"right")).is_none());
    }

    #[test]
    fn signatures_check() {
        let (s, seed) = Signer::generate();
        let sig = s.sign(b"msg");
        assert!(verify_signature(&s.public_key(), b"msg", &sig));
        assert!(!verify_signature(&s.public_key(), b"msh", &sig));
        assert_eq!(Signer::from_seed(&seed).unwrap().public_key(), s.public_key());
    }
}
