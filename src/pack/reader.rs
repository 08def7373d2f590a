//! Reading a pack: finding it on the devices, the keyless check (sizes and
//! ciphertext SHA-256 against the signed manifest), and the keyed pass that
//! decrypts every chunk and checks plaintext hashes, optionally writing the
//! tree out or handing each table's bytes to a [`TableSink`].
//!
//! The keyed pass mirrors the writer: one thread per writer slot decrypts
//! that slot's chunks in id order, and the main thread walks the catalog in
//! pack order, pulling each piece from the slot that holds it. Per slot that
//! order is the order the pieces were written, so files are rebuilt and
//! hashed sequentially with no reordering buffers.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, Entry, Mtime, PathBytes, Totals};
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
                match fs::read(&path).map_err(|e| e.to_string()).and_then(|b| manifest::decode(&b).map_err(|e| e.to_string())) {
                    Ok(m) if m.manifest.identity.pack_id_hex() != want => {
                        findings.push(Finding::error(Some(&path), "this manifest belongs to another pack"))
                    }
                    Ok(m) => {
                        if best.as_ref().is_none_or(|(b, _)| m.manifest.generation > b.manifest.generation) {
                            best = Some((m, path.clone()));
                        }
                    }
                    Err(e) => findings.push(Finding::error(Some(&path), e)),
                }
            }
            files.push((name, path, size, marker));
        }
    }
    let (decoded, manifest_from) = match explicit.or(best) {
        Some(x) => x,
        None => {
            return Err(Error::Mismatch(format!("pack {want}: no valid manifest on the given devices")).into_with_findings(&findings))
        }
    };
    Ok(Located { decoded, manifest_from, files, findings })
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

/// Where each chunk of the manifest was found.
pub struct Checked {
    pub findings: Vec<Finding>,
    pub locations: HashMap<u64, PathBuf>,
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
    for c in &m.chunks {
        let name = device::chunk_name(c.id);
        match found.get(name.as_str()).map(|v| v.as_slice()).unwrap_or(&[]) {
            [] => missing.entry(c.device).or_default().push(c.id),
            [one] => {
                locations.insert(c.id, one.1.clone());
                jobs.push((*c).clone());
            }
            many => findings.push(Finding::error(
                Some(&many[0].1),
                format!(
                    "chunk {name} is present more than once: {}",
                    many.iter().map(|f| f.1.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    for (dev, ids) in missing {
        let total = m.chunks.iter().filter(|c| c.device == dev).count();
        let present = l.files.iter().any(|f| f.3 == Some(dev));
        let label = m.devices.iter().find(|d| d.number == dev).map(|d| d.label.clone()).unwrap_or_default();
        if ids.len() == total && !present {
            findings.push(Finding::error(
                None,
                format!(
                    "device {dev} (first written at {label}) is missing: its {} chunk files ({} to {}) are not on the given devices",
                    ids.len(),
                    device::chunk_name(ids[0]),
                    device::chunk_name(*ids.last().unwrap())
                ),
            ));
        } else {
            for id in ids {
                findings.push(Finding::error(
                    None,
                    format!("chunk file {} (device {dev}, {label}) is missing", device::chunk_name(id)),
                ));
            }
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
                    out.lock().unwrap().push(f);
                }
                if !hash {
                    task.inc(1);
                }
            });
        }
    });
    task.finish("done");
    let mut out = out.into_inner().unwrap();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    findings.extend(out);
    Checked { findings, locations, bytes: total }
}

fn check_one(path: &Path, c: &ChunkRecord, pid: &[u8; 16], hash: bool, inc: &dyn Fn(u64)) -> Option<Finding> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(Finding::error(Some(path), format!("cannot read: {e}"))),
    };
    if meta.len() != c.size {
        let how = if meta.len() < c.size { "truncated" } else { "too long" };
        return Some(Finding::error(Some(path), format!("{how}: {} bytes, the manifest says {}", meta.len(), c.size)));
    }
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(Finding::error(Some(path), format!("cannot read: {e}"))),
    };
    let mut hb = [0u8; CHUNK_HEADER_LEN];
    if let Err(e) = f.read_exact(&mut hb) {
        return Some(Finding::error(Some(path), format!("cannot read the header: {e}")));
    }
    match ChunkHeader::decode(&hb) {
        Err(e) => return Some(Finding::error(Some(path), e.to_string())),
        Ok(h) if &h.pack_id != pid => {
            return Some(Finding::error(Some(path), format!("belongs to another pack ({})", hex::encode(h.pack_id))))
        }
        Ok(h) if h.chunk_id != c.id => {
            return Some(Finding::error(
                Some(path),
                format!("holds chunk {} of this pack, not chunk {}: a copied or renamed chunk file", h.chunk_id, c.id),
            ))
        }
        Ok(_) => {}
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
            Err(e) => return Some(Finding::error(Some(path), format!("cannot read: {e}"))),
        }
    }
    let got: [u8; 32] = h.finalize().into();
    (got != c.sha256)
        .then(|| Finding::error(Some(path), "SHA-256 does not match the manifest: the chunk file was altered"))
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

#[derive(Debug, Clone, Serialize)]
pub struct DeepReport {
    #[serde(flatten)]
    pub totals: Totals,
    pub chunks: u64,
    pub findings: Vec<Finding>,
}

struct Piece {
    chunk: u64,
    offset: u64,
    len: u64,
    data: Option<(Arc<Vec<u8>>, Range<usize>)>,
}

/// Where the bytes of packed tables go (a database loader). Each table's
/// bytes arrive in order, between `begin` and `end`.
pub trait TableSink {
    fn begin(&mut self, entry: &Entry) -> Result<()>;
    fn data(&mut self, bytes: &[u8]) -> Result<()>;
    /// `damage` says why the table's bytes are not whole and authentic
    /// (damaged chunks, a hash mismatch); the sink must then not keep them.
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
    locations: &HashMap<u64, PathBuf>,
    master: &MasterKey,
    catalog: &Catalog,
    target: Option<&Path>,
    progress: &dyn Progress,
) -> Result<DeepReport> {
    match target {
        Some(t) => decrypt_to(l, locations, master, catalog, Output::Tree(&mut DirWriter::new(t)), progress),
        None => decrypt_to(l, locations, master, catalog, Output::Check, progress),
    }
}

/// The keyed pass: decrypts what `output` needs (everything when checking)
/// and checks each item's plaintext SHA-256.
pub fn decrypt_to(
    l: &Located,
    locations: &HashMap<u64, PathBuf>,
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
                    let path = locations.get(&c.id);
                    if let Err(f) = decrypt_chunk(path, c, &pid, seg, master, want, &tx) {
                        findings.lock().unwrap().push(f);
                    }
                }
            });
        }
        let r = assemble(catalog, &slot_index, &chunk_of, &rxs, &mut output, &findings, &|n| task.inc(n));
        drop(rxs);
        r
    });
    task.finish("done");
    result?;
    let mut findings = findings.into_inner().unwrap();
    findings.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(DeepReport { totals, chunks: m.chunks.len() as u64, findings })
}

/// Decrypts one chunk and sends the wanted pieces; on failure, sends the
/// rest as missing and returns the finding.
fn decrypt_chunk(
    path: Option<&PathBuf>,
    c: &ChunkRecord,
    pid: &[u8; 16],
    seg: u32,
    master: &MasterKey,
    want: &[(u64, u64)],
    tx: &SyncSender<Piece>,
) -> Result<(), Finding> {
    let mut next = 0usize; // index into want
    let mut done_in = 0u64; // bytes of want[next] already sent
    let fail = |next: usize, done_in: u64, f: Finding| {
        for (i, &(o, l)) in want.iter().enumerate().skip(next) {
            let skip = if i == next { done_in } else { 0 };
            let _ = tx.send(Piece { chunk: c.id, offset: o + skip, len: l - skip, data: None });
        }
        Err(f)
    };
    let Some(path) = path else {
        return fail(next, done_in, Finding::error(None, format!("chunk {} is missing; its data cannot be checked", device::chunk_name(c.id))));
    };
    let r = (|| -> std::result::Result<(), String> {
        let mut f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let size = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
        let mut hb = [0u8; CHUNK_HEADER_LEN];
        f.read_exact(&mut hb).map_err(|e| format!("cannot read the header: {e}"))?;
        let h = ChunkHeader::decode(&hb).map_err(|e| e.to_string())?;
        if &h.pack_id != pid {
            return Err(format!("belongs to another pack ({})", hex::encode(h.pack_id)));
        }
        if h.chunk_id != c.id || h.segment_size != seg {
            return Err(format!("holds chunk {} of this pack, not chunk {}: a copied or renamed chunk file", h.chunk_id, c.id));
        }
        let plain = format::plain_len_of(size, seg).ok_or_else(|| format!("size {size} is not a whole chunk: truncated"))?;
        let nseg = format::segment_count(plain, seg);
        let key = crypto::chunk_key(master, pid, c.id, &h.salt);
        let mut opener = Opener::new(&key, &hb);
        for i in 0..nseg {
            let start = i * seg as u64;
            let pt_len = (plain - start).min(seg as u64) as usize;
            let mut buf = vec![0u8; pt_len + TAG_LEN];
            f.read_exact(&mut buf).map_err(|e| format!("cannot read segment {i}: {e}"))?;
            let last = i + 1 == nseg;
            opener.open(&mut buf, last).ok_or_else(|| {
                format!("segment {i} does not authenticate: the chunk was altered, reordered, truncated or mixed with another")
            })?;
            buf.truncate(pt_len);
            let buf = Arc::new(buf);
            let end = start + pt_len as u64;
            while next < want.len() {
                let (o, l) = want[next];
                let from = o + done_in;
                if from >= end {
                    break;
                }
                if from < start {
                    return Err("catalog extents overlap".into());
                }
                let to = (o + l).min(end);
                let r = (from - start) as usize..(to - start) as usize;
                if tx.send(Piece { chunk: c.id, offset: from, len: to - from, data: Some((buf.clone(), r)) }).is_err() {
                    return Ok(());
                }
                if to == o + l {
                    next += 1;
                    done_in = 0;
                } else {
                    done_in = to - o;
                }
            }
        }
        if next < want.len() {
            return Err("the catalog points past the end of this chunk".into());
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(()),
        Err(msg) => fail(next, done_in, Finding::error(Some(path), msg)),
    }
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    catalog: &Catalog,
    slot_index: &HashMap<u32, usize>,
    chunk_of: &HashMap<u64, &ChunkRecord>,
    rxs: &[Receiver<Piece>],
    output: &mut Output<'_>,
    findings: &Mutex<Vec<Finding>>,
    inc: &dyn Fn(u64),
) -> Result<()> {
    let pieces = Pieces { rxs, slot_index, chunk_of };
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
                let (shown, stop_at_damage) = match output {
                    Output::Tree(t) => {
                        t.begin_file(path, *mode, *mtime, *size, sha256)?;
                        (t.name(path), !t.keeps_damaged())
                    }
                    _ => (path.display(), false),
                };
                let damage = match output {
                    Output::Tree(t) => pieces.read_item(&shown, stop_at_damage, extents, *size, sha256, inc, &mut |b| t.data(b))?,
                    _ => pieces.read_item(&shown, false, extents, *size, sha256, inc, &mut |_| Ok(()))?,
                };
                if let Output::Tree(t) = output {
                    if let Some(problem) = t.end_file(damage.as_deref())? {
                        findings.lock().unwrap().push(Finding::error_at(&shown, problem));
                    }
                }
                if let Some(damage) = damage {
                    findings.lock().unwrap().push(Finding::error_at(&shown, damage));
                }
            }
            Entry::Table { name, size, sha256, extents, .. } => {
                let Output::Tables(sink) = output else {
                    // Checking only: hash the table's bytes like a file's.
                    if let Some(damage) = pieces.read_item(&format!("table {name}"), false, extents, *size, sha256, inc, &mut |_| Ok(()))? {
                        findings.lock().unwrap().push(Finding::error(None, format!("table {name}: {damage}")));
                    }
                    continue;
                };
                sink.begin(e)?;
                let damage = pieces.read_item(&format!("table {name}"), true, extents, *size, sha256, inc, &mut |b| sink.data(b))?;
                if let Some(d) = &damage {
                    findings.lock().unwrap().push(Finding::error(None, format!("table {name}: {d}")));
                }
                sink.end(damage)?;
            }
        }
    }
    if let Output::Tree(t) = output {
        t.finish()?;
    }
    Ok(())
}

/// The decrypted pieces, one queue per writer slot.
struct Pieces<'a, 'b> {
    rxs: &'a [Receiver<Piece>],
    slot_index: &'a HashMap<u32, usize>,
    chunk_of: &'a HashMap<u64, &'b ChunkRecord>,
}

impl Pieces<'_, '_> {
    /// Pulls one item's bytes, in order, into `out` while hashing them.
    /// Returns why the item is damaged, if it is. Pieces in damaged or
    /// missing chunks are skipped; with `stop_at_damage` nothing after the
    /// first one reaches `out` either (a row stream cannot resume mid-way;
    /// a file keeps what can be saved).
    #[allow(clippy::too_many_arguments)]
    fn read_item(
        &self,
        label: &str,
        stop_at_damage: bool,
        extents: &[super::catalog::Extent],
        size: u64,
        sha256: &[u8; 32],
        inc: &dyn Fn(u64),
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<Option<String>> {
        let mut h = Sha256::new();
        let mut bad_chunks = Vec::new();
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
                    Some((buf, r)) if !stop_at_damage || bad_chunks.is_empty() => {
                        let bytes = &buf[r.clone()];
                        h.update(bytes);
                        out(bytes)?;
                    }
                    Some(_) => {}
                    None => {
                        if !bad_chunks.contains(&p.chunk) {
                            bad_chunks.push(p.chunk)
                        }
                    }
                }
                off += p.len;
                got += p.len;
                inc(p.len);
            }
        }
        if !bad_chunks.is_empty() {
            return Ok(Some(format!(
                "cannot be restored: its data lies in damaged or missing chunk(s) {}",
                bad_chunks.iter().map(|c| device::chunk_name(*c)).collect::<Vec<_>>().join(", ")
            )));
        }
        if got != size || <[u8; 32]>::from(h.finalize()) != *sha256 {
            return Ok(Some("plaintext SHA-256 does not match the catalog".into()));
        }
        Ok(None)
    }
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
