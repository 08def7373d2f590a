//! Reading a pack: finding it on the devices, the keyless check (sizes and
//! ciphertext SHA-256 against the signed manifest), and the keyed pass that
//! decrypts (and, in version-2 chunks, decompresses) every chunk segment by
//! segment and checks plaintext hashes, optionally writing the
//! tree out or handing each table's bytes to a [`TableSink`].
//!
//! The keyed pass mirrors the writer: one thread per writer slot decrypts
//! that slot's chunks in id order, and the main thread walks the catalog in
//! pack order, pulling each piece from the slot that holds it. Per slot that
//! order is the order the pieces were written, so files are rebuilt and
//! hashed sequentially with no reordering buffers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, Entry, Mtime, PathBytes, Totals};
use super::compress::SegmentDecoder;
use super::crypto::{self, MasterKey, Opener, Unlock};
use super::device;
use super::format::{self, ChunkHeader, CHUNK_HEADER_LEN, TAG_LEN};
use super::manifest::{self, ChunkRecord, Decoded};
use super::tree::{DirWriter, TreeWriter};
use crate::error::{Error, Result};
use crate::progress::{Progress, Unit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Note,
}

/// One problem found, naming the file it is in.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub file: Option<String>,
    pub message: String,
}

impl Finding {
    fn error(file: Option<&Path>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Error, file: file.map(|p| p.display().to_string()), message: message.into() }
    }
    fn error_at(file: &str, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Error, file: Some(file.to_string()), message: message.into() }
    }
    fn note(file: Option<&Path>, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Note, file: file.map(|p| p.display().to_string()), message: message.into() }
    }
}

pub fn has_errors(f: &[Finding]) -> bool {
    f.iter().any(|x| x.severity == Severity::Error)
}

/// A file in a pack directory: (name, path, size, number in that device's marker).
pub type FoundFile = (String, PathBuf, u64, Option<u32>);

pub struct Located {
    pub decoded: Decoded,
    pub manifest_from: PathBuf,
    /// Every file in the pack's directory on each device.
    pub files: Vec<FoundFile>,
    pub findings: Vec<Finding>,
}

impl Located {
    pub fn pack_id(&self) -> String {
        self.decoded.manifest.identity.pack_id_hex()
    }
}

/// Finds the pack on `devices` and its newest valid manifest (or uses the
/// manifest file that travelled separately).
pub fn locate(devices: &[PathBuf], manifest_file: Option<&Path>, pack: Option<&str>) -> Result<Located> {
    let mut ids = Vec::new();
    for d in devices {
        if !d.is_dir() {
            return Err(Error::usage(format!("device {} does not exist or is not a directory; is it mounted?", d.display())));
        }
        for id in device::packs_on(d).map_err(|source| Error::Read { path: d.clone(), source })? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut findings = Vec::new();
    let explicit = match manifest_file {
        Some(p) => {
            let bytes = fs::read(p).map_err(|source| Error::Read { path: p.into(), source })?;
            let d = manifest::decode(&bytes).map_err(|e| Error::Mismatch(format!("{}: {e}", p.display())))?;
            Some((d, p.to_path_buf()))
        }
        None => None,
    };
    let want = match (&explicit, pack) {
        (Some((d, _)), _) => d.manifest.identity.pack_id_hex(),
        (None, Some(p)) => {
            let m: Vec<_> = ids.iter().filter(|i| i.starts_with(&p.to_ascii_lowercase())).collect();
            match m.as_slice() {
                [one] => one.to_string(),
                [] => return Err(Error::usage(format!("no pack {p} on the given devices"))),
                _ => return Err(Error::usage(format!("pack id prefix {p} is ambiguous"))),
            }
        }
        (None, None) => match ids.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::Mismatch(format!(
                    "no barge pack found on {}",
                    devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                )))
            }
            _ => return Err(Error::usage(format!("several packs are on these devices: {}; choose one with --pack ID", ids.join(", ")))),
        },
    };
    let mut files = Vec::new();
    let mut best: Option<(Decoded, PathBuf)> = None;
    for d in devices {
        let dir = d.join(device::ROOT_DIR).join(&want);
        if !dir.is_dir() {
            continue;
        }
        let marker = device::read_marker(&dir).filter(|m| m.pack_id == want).map(|m| m.number);
        for (name, path, size) in device::list_pack_dir(&dir).map_err(|source| Error::Read { path: dir.clone(), source })? {
            if name == device::MANIFEST_NAME {
                let copy = fs::read(&path).map_err(|e| e.to_string()).and_then(|b| manifest::decode(&b).map_err(|e| e.to_string()));
                match (&explicit, copy) {
                    // The manifest sent apart from the disks exists for when
                    // the copies on them are damaged: it wins, and they are
                    // only noted.
                    (Some((given, from)), copy) => findings.extend(compare_copy(&path, copy, given, from)),
                    (None, Ok(m)) if m.manifest.identity.pack_id_hex() != want => {
                        findings.push(Finding::error(Some(&path), "this manifest belongs to another pack"))
                    }
                    (None, Ok(m)) => {
                        if best.as_ref().is_none_or(|(b, _)| m.manifest.generation > b.manifest.generation) {
                            best = Some((m, path.clone()));
                        }
                    }
                    (None, Err(e)) => findings.push(Finding::error(Some(&path), e)),
                }
            }
            files.push((name, path, size, marker));
        }
    }
    let (decoded, manifest_from) = match explicit.or(best) {
        Some(x) => x,
        None => {
            return Err(Error::Mismatch(format!(
                "pack {want}: no valid manifest on the given devices; if a copy was sent apart from the disks \
                 (pack --manifest-out), pass it with --manifest FILE"
            ))
            .into_with_findings(&findings))
        }
    };
    Ok(Located { decoded, manifest_from, files, findings })
}

/// What a manifest copy on a disk says next to the one given with
/// `--manifest`: damaged or older copies are noted; one signed by another
/// key is an error, as one of the two was replaced.
fn compare_copy(path: &Path, copy: std::result::Result<Decoded, String>, given: &Decoded, from: &Path) -> Option<Finding> {
    let used = format!("the manifest given with --manifest ({}) is used", from.display());
    let g = &given.manifest;
    match copy {
        Err(e) => Some(Finding::note(Some(path), format!("{e}; ignored: {used}"))),
        Ok(m) if m.manifest.identity.pack_id != g.identity.pack_id => None,
        Ok(m) if m.manifest.identity.signer != g.identity.signer => Some(Finding::error(
            Some(path),
            format!(
                "signed by another key (signer {}) than the given manifest (signer {}): one of the two was replaced; {used}",
                m.manifest.identity.signer_fingerprint(),
                g.identity.signer_fingerprint()
            ),
        )),
        Ok(m) if m.manifest.generation > g.generation => Some(Finding::note(
            Some(path),
            format!("this copy is newer (run {}) than the given manifest (run {}); {used}", m.manifest.generation, g.generation),
        )),
        Ok(_) => None,
    }
}

trait WithFindings {
    fn into_with_findings(self, f: &[Finding]) -> Self;
}
impl WithFindings for Error {
    fn into_with_findings(self, f: &[Finding]) -> Self {
        match self {
            Error::Mismatch(m) if !f.is_empty() => Error::Mismatch(format!(
                "{m} ({})",
                f.iter().map(|x| format!("{}: {}", x.file.as_deref().unwrap_or("-"), x.message)).collect::<Vec<_>>().join("; ")
            )),
            e => e,
        }
    }
}

/// What is wrong with one chunk file, as the keyless check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFault {
    /// No file: the chunk file, or its whole device, is not there.
    Missing,
    /// A file the keyed pass cannot use: unreadable, or its header is not
    /// this chunk's.
    Unusable,
    /// Its size or ciphertext SHA-256 differs from the manifest: the keyed
    /// pass still uses every segment that authenticates.
    Altered,
}

/// What the keyless check found: where each chunk is, and what is wrong.
pub struct Checked {
    pub findings: Vec<Finding>,
    pub locations: HashMap<u64, PathBuf>,
    pub faults: HashMap<u64, ChunkFault>,
    /// Devices none of whose chunk files were found.
    pub missing_devices: BTreeSet<u32>,
    pub bytes: u64,
}

/// The keyless check: presence, size and header of every chunk file, and
/// with `hash` its ciphertext SHA-256; unexpected files; missing devices.
pub fn check_files(l: &Located, hash: bool, progress: &dyn Progress) -> Checked {
    let m = &l.decoded.manifest;
    let mut findings = l.findings.clone();
    if !m.complete {
        findings.push(Finding::error(
            Some(&l.manifest_from),
            format!("the pack is incomplete (run {} stopped early); finish it with `barge pack --resume`", m.generation),
        ));
    }
    let expected: HashMap<String, &ChunkRecord> = m.chunks.iter().map(|c| (device::chunk_name(c.id), c)).collect();
    let mut found: HashMap<&str, Vec<&FoundFile>> = HashMap::new();
    for f in &l.files {
        found.entry(f.0.as_str()).or_default().push(f);
    }
    // Unexpected files.
    for (name, path, _, _) in &l.files {
        if expected.contains_key(name) || name == device::MANIFEST_NAME || name == device::DEVICE_NAME {
            continue;
        }
        let leftover = device::parse_part_name(name).or(device::parse_chunk_name(name).filter(|id| m.abandoned.contains(id)));
        if leftover.is_some() {
            findings.push(Finding::note(Some(path), "leftover of an interrupted pack run; not part of the pack, safe to delete"));
        } else if device::parse_chunk_name(name).is_some() {
            findings.push(Finding::error(Some(path), "unexpected chunk file: it is not in the manifest"));
        } else {
            findings.push(Finding::error(Some(path), "unexpected file in the pack directory"));
        }
    }
    // Missing chunks, grouped by device so a missing disk reads as one line.
    let mut missing: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut jobs = Vec::new();
    let mut locations = HashMap::new();
    let mut faults = HashMap::new();
    for c in &m.chunks {
        let name = device::chunk_name(c.id);
        let copies = found.get(name.as_str()).map(|v| v.as_slice()).unwrap_or(&[]);
        match copies {
            [] => {
                missing.entry(c.device).or_default().push(c.id);
                faults.insert(c.id, ChunkFault::Missing);
                continue;
            }
            [_] => {}
            many => findings.push(Finding::error(
                Some(&many[0].1),
                format!(
                    "chunk {name} is present more than once: {}; the first is used",
                    many.iter().map(|f| f.1.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
        locations.insert(c.id, copies[0].1.clone());
        jobs.push((*c).clone());
    }
    let mut missing_devices = BTreeSet::new();
    let device_of = |dev: u32| m.devices.iter().find(|d| d.number == dev);
    let describe = |dev: u32| device_of(dev).map_or(format!("device {dev}"), |d| d.describe());
    for (dev, ids) in &missing {
        if ids.len() == m.chunks.iter().filter(|c| c.device == *dev).count() {
            missing_devices.insert(*dev);
        }
    }
    // A pack made by several hosts: a host none of whose disks holding
    // chunks was given reads as one line, naming the host.
    let mut hosts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for d in &m.devices {
        if let Some(h) = &d.host {
            if m.chunks.iter().any(|c| c.device == d.number) {
                hosts.entry(h.as_str()).or_default().push(d.number);
            }
        }
    }
    let mut told = BTreeSet::new();
    for (host, devs) in hosts {
        if !devs.iter().all(|d| missing_devices.contains(d)) {
            continue;
        }
        let ids: Vec<u64> = devs.iter().flat_map(|d| missing[d].iter().copied()).collect();
        findings.push(Finding::error(
            None,
            format!(
                "host {host}'s disks are missing: {} hold {}: {}; mount them (from any machine) and name them with the others",
                devs.iter().map(|d| describe(*d)).collect::<Vec<_>>().join(", "),
                plural_n(ids.len(), "chunk file", "chunk files"),
                name_list(&ids)
            ),
        ));
        told.extend(devs);
    }
    for (dev, ids) in missing.into_iter().filter(|(d, _)| !told.contains(d)) {
        let total = m.chunks.iter().filter(|c| c.device == dev).count();
        let marked = l.files.iter().any(|f| f.3 == Some(dev));
        let span = || format!("{} to {}", device::chunk_name(ids[0]), device::chunk_name(*ids.last().unwrap()));
        let label = device_of(dev).map(|d| d.label.clone()).unwrap_or_default();
        if ids.len() == total {
            findings.push(Finding::error(
                None,
                if marked {
                    format!("{} is mounted, but all its {total} chunk files ({}) are missing", describe(dev), span())
                } else {
                    format!(
                        "{} is missing: its {total} chunk files ({}) are not on the given devices; \
                         mount it and name it with the others",
                        describe(dev),
                        span()
                    )
                },
            ));
        } else {
            let names: Vec<String> = ids.iter().map(|id| device::chunk_name(*id)).collect();
            let short = match device_of(dev).and_then(|d| d.host.as_deref()) {
                Some(h) => format!("device {dev} on host {h}, {label}"),
                None => format!("device {dev}, {label}"),
            };
            findings.push(Finding::error(
                None,
                match names.as_slice() {
                    [one] => format!("chunk file {one} ({short}) is missing"),
                    _ => format!("{} of the {total} chunk files of device {dev} ({label}) are missing: {}", names.len(), names.join(", ")),
                },
            ));
        }
    }
    // Size, header and (with `hash`) content of each present chunk.
    let total: u64 = jobs.iter().map(|c| c.size).sum();
    let task = progress.task(if hash { "verify" } else { "check" }, Some(if hash { total } else { jobs.len() as u64 }), if hash { Unit::Bytes } else { Unit::Items });
    let queue = Mutex::new(jobs.into_iter());
    let out = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let pid = m.identity.pack_id;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some(c) = queue.lock().unwrap().next() else { break };
                let path = &locations[&c.id];
                if let Some(f) = check_one(path, &c, &pid, hash, &|n| task.inc(n)) {
                    out.lock().unwrap().push((c.id, f));
                }
                if !hash {
                    task.inc(1);
                }
            });
        }
    });
    task.finish("done");
    let mut out = out.into_inner().unwrap();
    out.sort_by(|a, b| a.1 .1.file.cmp(&b.1 .1.file));
    let hosted = |id: u64| m.chunks.iter().find(|c| c.id == id).and_then(|c| device_of(c.device)).filter(|d| d.host.is_some());
    for (id, (fault, mut finding)) in out {
        // Disks from several hosts: say which host's disk it is.
        if let Some(d) = hosted(id) {
            finding.message = format!("{} ({} on {})", finding.message, device::chunk_name(id), d.describe());
        }
        faults.insert(id, fault);
        findings.push(finding);
    }
    Checked { findings, locations, faults, missing_devices, bytes: total }
}

fn check_one(path: &Path, c: &ChunkRecord, pid: &[u8; 16], hash: bool, inc: &dyn Fn(u64)) -> Option<(ChunkFault, Finding)> {
    let unusable = |msg: String| Some((ChunkFault::Unusable, Finding::error(Some(path), msg)));
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return unusable(format!("cannot read: {e}")),
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return unusable(format!("cannot read: {e}")),
    };
    let mut hb = [0u8; CHUNK_HEADER_LEN];
    if let Err(e) = f.read_exact(&mut hb) {
        return unusable(format!("cannot read the header: {e}"));
    }
    match ChunkHeader::decode(&hb) {
        Err(e) => return unusable(e.to_string()),
        Ok(h) if &h.pack_id != pid => return unusable(format!("belongs to another pack ({})", hex::encode(h.pack_id))),
        Ok(h) if h.chunk_id != c.id => {
            return unusable(format!("holds chunk {} of this pack, not chunk {}: a copied or renamed chunk file", h.chunk_id, c.id))
        }
        Ok(_) => {}
    }
    if meta.len() != c.size {
        let how = if meta.len() < c.size { "truncated" } else { "too long" };
        return Some((ChunkFault::Altered, Finding::error(Some(path), format!("{how}: {} bytes, the manifest says {}", meta.len(), c.size))));
    }
    if !hash {
        return None;
    }
    let mut h = Sha256::new();
    h.update(hb);
    inc(hb.len() as u64);
    let mut buf = vec![0u8; 4 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                inc(n as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return unusable(format!("cannot read: {e}")),
        }
    }
    let got: [u8; 32] = h.finalize().into();
    (got != c.sha256).then(|| {
        (ChunkFault::Altered, Finding::error(Some(path), "SHA-256 does not match the manifest: the chunk file was altered"))
    })
}

/// Opens the pack's key slots with what the user brought.
pub fn unlock(l: &Located, u: &Unlock) -> Result<MasterKey> {
    let id = &l.decoded.manifest.identity;
    crypto::open_slots(&id.key_slots, &id.pack_id, u).ok_or_else(|| super::packer::wrong_secret(u))
}

pub fn open_catalog(l: &Located, master: &MasterKey) -> Result<Catalog> {
    let id = &l.decoded.manifest.identity;
    if id.open_signer(master).is_none() {
        return Err(Error::Mismatch(format!(
            "{}: the manifest's signing key is not this pack's: the manifest was replaced",
            l.manifest_from.display()
        )));
    }
    match manifest::open_catalog(&l.decoded, master) {
        None => Err(Error::Mismatch(format!("{}: the catalog does not decrypt", l.manifest_from.display()))),
        Some(Err(e)) => Err(Error::Mismatch(format!("{}: {e}", l.manifest_from.display()))),
        Some(Ok(c)) => Ok(c),
    }
}

/// How many items (files or tables) came through whole, and how many not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ItemCounts {
    /// Whole and authentic (and, when writing, placed under their names).
    pub intact: u64,
    pub intact_bytes: u64,
    /// Their bytes lie in damaged chunk files, or do not hash right.
    pub damaged: u64,
    /// Their bytes lie in missing chunk files, or the target cannot name them.
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeepReport {
    #[serde(flatten)]
    pub totals: Totals,
    pub chunks: u64,
    pub items: ItemCounts,
    pub findings: Vec<Finding>,
}

/// Why bytes an item needs did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Missing,
    Damaged,
}

struct Piece {
    chunk: u64,
    offset: u64,
    len: u64,
    data: std::result::Result<(Arc<Vec<u8>>, Range<usize>), Loss>,
}

/// Where the bytes of packed tables go (a database loader). Each table's
/// bytes arrive in order, between `begin` and `end`.
pub trait TableSink {
    fn begin(&mut self, entry: &Entry) -> Result<()>;
    fn data(&mut self, bytes: &[u8]) -> Result<()>;
    /// `damage` says why the table's bytes are not whole and authentic
    /// (damaged or missing chunks, a hash mismatch); the sink must then not
    /// keep them.
    fn end(&mut self, damage: Option<String>) -> Result<()>;
}

/// What the keyed pass does with what it decrypts.
pub enum Output<'a> {
    /// Only check every hash (`verify --deep`).
    Check,
    /// Hand the tree to a writer (a directory, an object store).
    Tree(&'a mut dyn TreeWriter),
    /// Hand each table to the sink.
    Tables(&'a mut dyn TableSink),
}

/// Decrypts every chunk and checks each item's plaintext SHA-256; with
/// `target`, also writes the tree there.
pub fn decrypt_all(
    l: &Located,
    checked: &Checked,
    master: &MasterKey,
    catalog: &Catalog,
    target: Option<&Path>,
    progress: &dyn Progress,
) -> Result<DeepReport> {
    match target {
        Some(t) => decrypt_to(l, checked, master, catalog, Output::Tree(&mut DirWriter::new(t)), progress),
        None => decrypt_to(l, checked, master, catalog, Output::Check, progress),
    }
}

/// The keyed pass: decrypts what `output` needs (everything when checking)
/// and checks each item's plaintext SHA-256. Chunks the keyless check
/// found missing or unusable are not read again (and not reported again);
/// in a chunk whose bytes were altered, every segment that authenticates
/// is used.
pub fn decrypt_to(
    l: &Located,
    checked: &Checked,
    master: &MasterKey,
    catalog: &Catalog,
    mut output: Output<'_>,
    progress: &dyn Progress,
) -> Result<DeepReport> {
    let m = &l.decoded.manifest;
    let seg = m.identity.segment_size;
    let pid = m.identity.pack_id;
    let chunk_of: HashMap<u64, &ChunkRecord> = m.chunks.iter().map(|c| (c.id, c)).collect();
    let has_tables = catalog.entries.iter().any(|e| matches!(e, Entry::Table { .. }));
    match (&output, has_tables) {
        (Output::Tree(t), true) => {
            return Err(Error::usage(format!(
                "this pack holds database tables (from {}), not a directory tree; unpack it to a database URL \
                 (postgres://, mysql:// or sqlite:), not to {}",
                catalog.source,
                t.describe()
            )))
        }
        (Output::Tables(_), false) => {
            return Err(Error::usage(format!(
                "this pack holds a directory tree (from {}), not database tables; unpack it to a directory, file:///dir or s3://bucket/prefix",
                catalog.source
            )))
        }
        _ => {}
    }
    let mut needs: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    for e in &catalog.entries {
        if let Entry::Table { encoding, name, .. } = e {
            if encoding != super::rows::ENCODING {
                return Err(Error::Mismatch(format!(
                    "table {name} is stored as `{encoding}`, which this barge does not read (it reads {}); use a newer barge",
                    super::rows::ENCODING
                )));
            }
        }
        for x in e.extents() {
            if !chunk_of.contains_key(&x.chunk()) {
                return Err(Error::Mismatch(format!(
                    "{}: the catalog names chunk {} that the manifest does not list",
                    e.path_display(),
                    x.chunk()
                )));
            }
            needs.entry(x.chunk()).or_default().push((x.offset(), x.len()));
        }
    }
    for v in needs.values_mut() {
        v.sort_unstable();
    }
    let mut by_slot: BTreeMap<u32, Vec<&ChunkRecord>> = BTreeMap::new();
    for c in &m.chunks {
        by_slot.entry(c.slot).or_default().push(c);
    }
    for v in by_slot.values_mut() {
        v.sort_by_key(|c| c.id);
    }
    let slot_index: HashMap<u32, usize> = by_slot.keys().enumerate().map(|(i, s)| (*s, i)).collect();
    let totals = catalog.totals();
    let verify_all = matches!(output, Output::Check);
    let task = progress.task(if verify_all { "verify --deep" } else { "unpack" }, Some(totals.bytes), Unit::Bytes);
    let findings = Mutex::new(Vec::new());

    if let Output::Tree(t) = &mut output {
        t.prepare()?;
    }
    let mut counts = ItemCounts::default();
    let result = std::thread::scope(|s| -> Result<()> {
        let mut rxs = Vec::new();
        for chunks in by_slot.values() {
            let (tx, rx) = sync_channel::<Piece>(64);
            rxs.push(rx);
            let (needs, findings, chunks) = (&needs, &findings, chunks.clone());
            s.spawn(move || {
                for c in chunks {
                    let want = needs.get(&c.id).map(|v| v.as_slice()).unwrap_or(&[]);
                    if want.is_empty() && !verify_all {
                        continue;
                    }
                    let place = (checked.locations.get(&c.id), checked.faults.get(&c.id).copied());
                    if let Some(f) = decrypt_chunk(place, c, &pid, seg, master, want, &tx) {
                        findings.lock().unwrap().push(f);
                    }
                }
            });
        }
        let pieces = Pieces { rxs: &rxs, slot_index: &slot_index, chunk_of: &chunk_of, manifest: m, missing_devices: &checked.missing_devices };
        let r = assemble(catalog, &pieces, &mut output, &findings, &mut counts, &|n| task.inc(n));
        drop(rxs);
        r
    });
    task.finish("done");
    result?;
    let mut findings = findings.into_inner().unwrap();
    findings.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(DeepReport { totals, chunks: m.chunks.len() as u64, items: counts, findings })
}

/// Hands one chunk's wanted pieces to the assembler, in offset order.
struct PieceSender<'a> {
    chunk: u64,
    want: &'a [(u64, u64)],
    /// Index into `want`, and bytes of `want[next]` already sent.
    next: usize,
    done_in: u64,
    tx: &'a SyncSender<Piece>,
}

impl PieceSender<'_> {
    /// Sends the wanted bytes that lie in plaintext `[start, end)`, from
    /// `data` (which holds exactly that range) or as lost. False once the
    /// assembler stopped listening.
    fn send(&mut self, start: u64, end: u64, data: std::result::Result<&Arc<Vec<u8>>, Loss>) -> std::result::Result<bool, String> {
        while self.next < self.want.len() {
            let (o, l) = self.want[self.next];
            let from = o + self.done_in;
            if from >= end {
                break;
            }
            if from < start {
                return Err("catalog extents overlap".into());
            }
            let to = (o + l).min(end);
            let data = data.map(|b| (b.clone(), (from - start) as usize..(to - start) as usize));
            if self.tx.send(Piece { chunk: self.chunk, offset: from, len: to - from, data }).is_err() {
                return Ok(false);
            }
            if to == o + l {
                self.next += 1;
                self.done_in = 0;
            } else {
                self.done_in = to - o;
            }
        }
        Ok(true)
    }

    /// Everything not sent yet is lost.
    fn lose_rest(&mut self, loss: Loss) {
        let _ = self.send(0, u64::MAX, Err(loss));
    }
}

/// Decrypts one chunk, segment by segment, and sends the wanted pieces;
/// those in a segment that does not authenticate, or that cannot be read,
/// are sent as lost. Returns a finding for what the keyless check did not
/// already report.
fn decrypt_chunk(
    place: (Option<&PathBuf>, Option<ChunkFault>),
    c: &ChunkRecord,
    pid: &[u8; 16],
    seg: u32,
    master: &MasterKey,
    want: &[(u64, u64)],
    tx: &SyncSender<Piece>,
) -> Option<Finding> {
    let mut sender = PieceSender { chunk: c.id, want, next: 0, done_in: 0, tx };
    let path = match place {
        (Some(p), None | Some(ChunkFault::Altered)) => p,
        (Some(_), Some(ChunkFault::Unusable)) => {
            sender.lose_rest(Loss::Damaged);
            return None;
        }
        _ => {
            sender.lose_rest(Loss::Missing);
            return None;
        }
    };
    let mut bad = Vec::new();
    let mut undecodable = Vec::new();
    let mut nseg = 0;
    let r = (|| -> std::result::Result<(), String> {
        let mut f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let mut hb = [0u8; CHUNK_HEADER_LEN];
        f.read_exact(&mut hb).map_err(|e| format!("cannot read the header: {e}"))?;
        let h = ChunkHeader::decode(&hb).map_err(|e| e.to_string())?;
        if &h.pack_id != pid {
            return Err(format!("belongs to another pack ({})", hex::encode(h.pack_id)));
        }
        if h.chunk_id != c.id || h.segment_size != seg {
            return Err(format!("holds chunk {} of this pack, not chunk {}: a copied or renamed chunk file", h.chunk_id, c.id));
        }
        // The signed manifest's sizes, not the file's: a chunk cut short
        // still gives the segments before the cut.
        let plain = match h.version {
            1 => format::plain_len_of(c.size, seg).ok_or_else(|| format!("the manifest's size {} is not a whole chunk", c.size))?,
            _ => c.plain.ok_or("the manifest does not give this version-2 chunk's plaintext size")?,
        };
        nseg = format::segment_count(plain, seg);
        let key = crypto::chunk_key(master, pid, c.id, &h.salt);
        let opener = Opener::new(&key, &hb);
        let mut decoder = SegmentDecoder::new();
        let mut f = io::BufReader::with_capacity(64 * 1024, f);
        for i in 0..nseg {
            let start = i * seg as u64;
            let pt_len = (plain - start).min(seg as u64) as usize;
            let cut = |e: io::Error| match e.kind() {
                io::ErrorKind::UnexpectedEof => format!("cut short in segment {i} of {nseg}: the segments from there on are lost"),
                _ => format!("cannot read segment {i} of {nseg}: {e}"),
            };
            // Version 1: fixed places; version 2: a length word before each
            // (at most a raw segment: anything longer is damage, and the
            // segments after it cannot be found).
            let sealed_len = match h.version {
                1 => pt_len,
                _ => {
                    let mut w = [0u8; format::FRAME_LEN];
                    f.read_exact(&mut w).map_err(cut)?;
                    let n = u32::from_le_bytes(w) as usize;
                    if n > pt_len + 1 {
                        return Err(format!(
                            "segment {i} of {nseg} has a damaged length word ({n} bytes for {pt_len} of plaintext): the segments from there on are lost"
                        ));
                    }
                    n
                }
            };
            let mut buf = vec![0u8; sealed_len + TAG_LEN];
            f.read_exact(&mut buf).map_err(cut)?;
            let end = start + pt_len as u64;
            let opened = match opener.open(i, &mut buf, i + 1 == nseg) {
                Some(n) if h.version == 1 => {
                    buf.truncate(n);
                    Some(buf)
                }
                Some(n) => {
                    let mut out = Vec::new();
                    match decoder.decode(h.codec, &buf[..n], pt_len, &mut out) {
                        Ok(()) => Some(out),
                        Err(e) => {
                            undecodable.push(format!("segment {i} authenticates but {}", e.0));
                            None
                        }
                    }
                }
                None => {
                    bad.push(i);
                    None
                }
            };
            let listening = match opened {
                Some(plain) => sender.send(start, end, Ok(&Arc::new(plain)))?,
                None => sender.send(start, end, Err(Loss::Damaged))?,
            };
            if !listening {
                return Ok(());
            }
        }
        if sender.next < want.len() {
            return Err("the catalog points past the end of this chunk".into());
        }
        Ok(())
    })();
    let mut problems = Vec::new();
    if !bad.is_empty() {
        problems.push(bad_segments(&bad, nseg));
    }
    problems.extend(undecodable);
    if let Err(e) = r {
        sender.lose_rest(Loss::Damaged);
        problems.push(e);
    }
    (!problems.is_empty()).then(|| Finding::error(Some(path), problems.join("; ")))
}

/// "segment 3 (of 16) does not authenticate …", naming at most ten.
fn bad_segments(bad: &[u64], nseg: u64) -> String {
    if bad.len() as u64 == nseg && nseg > 1 {
        return format!("none of its {nseg} segments authenticates: the chunk was altered (its header or every segment), or mixed with another");
    }
    let mut list: Vec<String> = bad.iter().take(10).map(|i| i.to_string()).collect();
    if bad.len() > 10 {
        list.push(format!("and {} more", bad.len() - 10));
    }
    let (what, verb) = if bad.len() == 1 { ("segment", "does") } else { ("segments", "do") };
    let rest = if nseg > 1 { "; its other segments are intact" } else { "" };
    format!(
        "{what} {} (of {nseg}) {verb} not authenticate: altered, reordered, truncated or mixed with another chunk{rest}",
        list.join(", ")
    )
}

impl ItemCounts {
    fn add(&mut self, lost: &Option<Lost>, size: u64) {
        match lost {
            None => {
                self.intact += 1;
                self.intact_bytes += size;
            }
            Some(l) if l.is_damage() => self.damaged += 1,
            Some(_) => self.skipped += 1,
        }
    }
}

/// Why an item did not come through whole.
#[derive(Default)]
struct Lost {
    missing: Vec<u64>,
    damaged: Vec<u64>,
    mismatch: bool,
}

impl Lost {
    fn is_damage(&self) -> bool {
        self.mismatch || !self.damaged.is_empty()
    }
}

fn assemble(
    catalog: &Catalog,
    pieces: &Pieces,
    output: &mut Output<'_>,
    findings: &Mutex<Vec<Finding>>,
    counts: &mut ItemCounts,
    inc: &dyn Fn(u64),
) -> Result<()> {
    let unsafe_path = |path: &PathBytes| Error::Mismatch(format!("unsafe path in the catalog: {}", path.display()));
    for e in &catalog.entries {
        match e {
            Entry::Dir { path, mode, mtime } => {
                if !path.is_safe_relative() {
                    return Err(unsafe_path(path));
                }
                if let Output::Tree(t) = output {
                    t.dir(path, *mode, *mtime)?;
                }
            }
            Entry::Symlink { path, target: to, mtime } => {
                if !path.is_safe_relative() || path.0.is_empty() {
                    return Err(unsafe_path(path));
                }
                if let Output::Tree(t) = output {
                    t.symlink(path, to, *mtime)?;
                }
            }
            Entry::File { path, mode, mtime, size, sha256, extents } => {
                if !path.is_safe_relative() || path.0.is_empty() {
                    return Err(unsafe_path(path));
                }
                let Output::Tree(t) = output else {
                    let lost = pieces.read_item(&path.display(), extents, *size, sha256, inc, &mut |_| Ok(()))?;
                    if let Some(l) = &lost {
                        let what = if l.is_damage() { "damaged" } else { "not checked" };
                        findings.lock().unwrap().push(Finding::error_at(&path.display(), format!("{what}: {}", pieces.describe(l))));
                    }
                    counts.add(&lost, *size);
                    continue;
                };
                t.begin_file(path, *mode, *mtime, *size, sha256)?;
                let shown = t.name(path);
                let lost = pieces.read_item(&shown, extents, *size, sha256, inc, &mut |b| t.data(b))?;
                let why = lost.as_ref().map(|l| pieces.describe(l));
                let problem = t.end_file(why.as_deref())?;
                match (&why, problem) {
                    (Some(why), _) => {
                        findings.lock().unwrap().push(Finding::error_at(&shown, format!("not restored: {why}")));
                        counts.add(&lost, *size);
                    }
                    (None, Some(problem)) => {
                        findings.lock().unwrap().push(Finding::error_at(&shown, problem));
                        counts.skipped += 1;
                    }
                    (None, None) => counts.add(&None, *size),
                }
            }
            Entry::Table { name, size, sha256, extents, .. } => {
                let label = format!("table {name}");
                let Output::Tables(sink) = output else {
                    // Checking only: hash the table's bytes like a file's.
                    let lost = pieces.read_item(&label, extents, *size, sha256, inc, &mut |_| Ok(()))?;
                    if let Some(l) = &lost {
                        let what = if l.is_damage() { "damaged" } else { "not checked" };
                        findings.lock().unwrap().push(Finding::error(None, format!("{label}: {what}: {}", pieces.describe(l))));
                    }
                    counts.add(&lost, *size);
                    continue;
                };
                sink.begin(e)?;
                let lost = pieces.read_item(&label, extents, *size, sha256, inc, &mut |b| sink.data(b))?;
                let why = lost.as_ref().map(|l| pieces.describe(l));
                if let Some(d) = &why {
                    findings.lock().unwrap().push(Finding::error(None, format!("{label}: {d}")));
                }
                counts.add(&lost, *size);
                sink.end(why)?;
            }
        }
    }
    if let Output::Tree(t) = output {
        t.finish()?;
    }
    Ok(())
}

/// The decrypted pieces, one queue per writer slot, and what names a loss.
struct Pieces<'a, 'b> {
    rxs: &'a [Receiver<Piece>],
    slot_index: &'a HashMap<u32, usize>,
    chunk_of: &'a HashMap<u64, &'b ChunkRecord>,
    manifest: &'a manifest::Manifest,
    missing_devices: &'a BTreeSet<u32>,
}

impl Pieces<'_, '_> {
    /// Pulls one item's bytes, in order, into `out` while hashing them.
    /// Returns why the item did not come through whole, if it did not.
    /// Nothing after the first lost piece reaches `out`: a writer keeps an
    /// item only once it came through whole.
    fn read_item(
        &self,
        label: &str,
        extents: &[super::catalog::Extent],
        size: u64,
        sha256: &[u8; 32],
        inc: &dyn Fn(u64),
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<Option<Lost>> {
        let mut h = Sha256::new();
        let mut lost = Lost::default();
        let mut got = 0u64;
        for x in extents {
            let rx = &self.rxs[self.slot_index[&self.chunk_of[&x.chunk()].slot]];
            let mut off = x.offset();
            let end = x.offset() + x.len();
            while off < end {
                let p = rx.recv().map_err(|_| Error::other("a decrypting thread stopped early"))?;
                if p.chunk != x.chunk() || p.offset != off {
                    return Err(Error::Mismatch(format!(
                        "{label}: the catalog's extents are not in pack order (chunk {} offset {}, expected chunk {} offset {off})",
                        p.chunk,
                        p.offset,
                        x.chunk()
                    )));
                }
                match &p.data {
                    Ok((buf, r)) => {
                        if lost.missing.is_empty() && lost.damaged.is_empty() {
                            let bytes = &buf[r.clone()];
                            h.update(bytes);
                            out(bytes)?;
                        }
                    }
                    Err(loss) => {
                        let list = if *loss == Loss::Missing { &mut lost.missing } else { &mut lost.damaged };
                        if !list.contains(&p.chunk) {
                            list.push(p.chunk)
                        }
                    }
                }
                off += p.len;
                got += p.len;
                inc(p.len);
            }
        }
        if !lost.missing.is_empty() || !lost.damaged.is_empty() {
            return Ok(Some(lost));
        }
        if got != size || <[u8; 32]>::from(h.finalize()) != *sha256 {
            return Ok(Some(Lost { mismatch: true, ..Lost::default() }));
        }
        Ok(None)
    }

    /// Names where an item's bytes were lost: a missing device once, not
    /// each of its chunk files.
    fn describe(&self, lost: &Lost) -> String {
        let names = |ids: &[u64]| ids.iter().map(|c| device::chunk_name(*c)).collect::<Vec<_>>().join(", ");
        let plural = |ids: &[u64]| if ids.len() == 1 { "" } else { "s" };
        let mut parts = Vec::new();
        if lost.mismatch {
            parts.push("its bytes do not match the catalog's SHA-256".to_string());
        }
        if !lost.damaged.is_empty() {
            let mut on = String::new();
            let hosted: Vec<String> = lost
                .damaged
                .iter()
                .filter_map(|id| self.manifest.devices.iter().find(|d| d.number == self.chunk_of[id].device))
                .filter(|d| d.host.is_some())
                .map(|d| d.describe())
                .collect();
            if !hosted.is_empty() {
                let mut hosted = hosted;
                hosted.dedup();
                on = format!(" on {}", hosted.join(", "));
            }
            parts.push(format!("its data lies in damaged chunk file{} {}{on}", plural(&lost.damaged), names(&lost.damaged)));
        }
        let mut by_device: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for id in &lost.missing {
            by_device.entry(self.chunk_of[id].device).or_default().push(*id);
        }
        for (dev, ids) in by_device {
            if self.missing_devices.contains(&dev) {
                let d = self.manifest.devices.iter().find(|d| d.number == dev);
                parts.push(format!("its data lies on missing {}", d.map_or(format!("device {dev}"), |d| d.describe())));
            } else {
                parts.push(format!("its data lies in missing chunk file{} {} (device {dev})", plural(&ids), names(&ids)));
            }
        }
        parts.join("; ")
    }
}

fn plural_n(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Chunk file names, the first ten and a count of the rest.
fn name_list(ids: &[u64]) -> String {
    let mut v: Vec<String> = ids.iter().take(10).map(|id| device::chunk_name(*id)).collect();
    if ids.len() > 10 {
        v.push(format!("and {} more", ids.len() - 10));
    }
    v.join(", ")
}

/// One line per file: findings about the same file are joined, and a
/// repeated one is dropped.
pub fn tidy(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        if out.iter().any(|x| x.severity == f.severity && x.file == f.file && x.message == f.message) {
            continue;
        }
        match out.iter_mut().find(|x| f.file.is_some() && x.file == f.file && x.severity == f.severity) {
            Some(x) => {
                x.message.push_str("; ");
                x.message.push_str(&f.message);
            }
            None => out.push(f),
        }
    }
    out
}

/// Sets access and modification time; `nofollow` for symlinks themselves.
pub fn set_mtime(p: &Path, m: Mtime, nofollow: bool) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("path has a NUL byte"))?;
    let ts = libc::timespec { tv_sec: m.0 as libc::time_t, tv_nsec: m.1 as _ };
    let times = [ts, ts];
    let flags = if nofollow { libc::AT_SYMLINK_NOFOLLOW } else { 0 };
    // SAFETY: valid C string and a two-element timespec array, as utimensat requires.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
