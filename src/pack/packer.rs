//! Writing a pack. One reader thread walks the tree in scan order (or reads
//! a database's tables one after the other, see [`TableSource`]), hashes
//! each item's plaintext and cuts the byte stream into segments, which it
//! deals round-robin (a few segments at a time) to `slots` writer threads.
//! Each writer owns one open chunk file at a time: it seals segments
//! (AES-256-GCM STREAM), hashes the ciphertext and writes, so encryption,
//! hashing and the writes to several devices run at once. Bounded channels
//! keep memory at a few MiB per slot.
//!
//! Each writer also compresses (format version 2): a segment is zstd'd
//! before it is sealed, unless the feeder marked its bytes as coming only
//! from files that do not compress, or the writer's [`SegmentEncoder`]
//! finds it does not pay. A chunk's room on its device is reserved for the
//! worst case (every segment raw) and what compression saved is handed
//! back to the feeder when the chunk is finished.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, Entry, Extent, Mtime, PathBytes, Totals};
use super::source::{TablePlan, TableSource};
use super::compress::{Compression, Sampler, SegmentEncoder, KIND_RAW, KIND_ZSTD};
use super::crypto::{self, Argon2Params, KeySlot, MasterKey, Sealer, Signer, Unlock};
use super::device::{self, Backend, DeviceDir, DeviceMarker, Sink};
use super::format::{self, ChunkHeader, FORMAT_VERSION, FRAME_LEN};
use super::journal::{self, Journal, Partial, Record};
use super::rows;
use super::manifest::{self, ChunkRecord, DeviceRecord, Identity, Manifest};
use super::scan::{self, ScanKind};
use crate::error::{Error, Result};
use crate::progress::{Progress, Task, Unit};

/// Segments dealt to one slot before moving to the next.
const STRIPE_SEGMENTS: u32 = 4;
/// Messages queued per writer.
const CHANNEL_DEPTH: usize = 8;
/// Room at the front of each block for a segment's length word and kind
/// byte, so a raw segment is framed and sealed where it lies, uncopied.
const HEAD: usize = FRAME_LEN + 1;

/// What to pack.
pub enum Source<'a> {
    /// A directory tree.
    Tree(&'a Path),
    /// A database's tables.
    Database(&'a mut dyn TableSource),
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub devices: Vec<PathBuf>,
    /// Most bytes to write on each device (besides its free space).
    pub capacity: Option<u64>,
    pub chunk_size: u64,
    pub segment_size: u32,
    /// Writer threads; 0 picks one per core (at least one per device, at most 8).
    pub slots: usize,
    pub journal: PathBuf,
    pub resume: bool,
    pub kdf: Argon2Params,
    pub manifest_out: Option<PathBuf>,
    /// Test hook: each device reports ENOSPC after this many bytes in this run.
    pub fault_enospc_after: Option<u64>,
    /// How chunk data is compressed before it is sealed.
    pub compression: Compression,
}

/// Secrets for a pack: a passphrase (always for a new pack), or a key file
/// to unlock a pack being resumed; `new_key_file` adds an unlock-key slot.
#[derive(Default)]
pub struct KeyInput {
    pub passphrase: Option<Vec<u8>>,
    pub key_file: Option<Vec<u8>>,
    pub new_key_file: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    pub number: u32,
    pub path: String,
    pub chunks_written: u64,
    pub bytes_written: u64,
    /// Bytes of this pack on the device, all runs.
    pub bytes_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackReport {
    pub pack_id: String,
    pub signer: String,
    pub generation: u64,
    pub complete: bool,
    #[serde(flatten)]
    pub totals: Totals,
    pub chunks: u64,
    /// Items and bytes still to pack (after running out of room).
    pub remaining_items: u64,
    pub remaining_bytes: u64,
    /// Chunk files an interrupted run had finished that nothing kept
    /// refers to: dropped from the pack and deleted from the devices.
    pub reclaimed_chunks: u64,
    pub reclaimed_bytes: u64,
    pub devices: Vec<DeviceReport>,
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
    pub manifest_sha256: String,
    pub journal: String,
    /// A database pack's CDC start position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdc_start: Option<String>,
}

struct Dev {
    backend: Arc<dyn Backend>,
    number: u32,
    room: u64,
    open: u32,
    /// Bytes handed to this device in this run, to spread data evenly.
    assigned: u64,
    task: Arc<dyn Task>,
}

enum Msg {
    Open { id: u64, dev: usize },
    /// One segment's plaintext after [`HEAD`] bytes of room; false when it
    /// is known not to compress.
    Data(Vec<u8>, bool),
    End,
}

/// A finished chunk's bytes that its reservation no longer needs: (device
/// index, bytes), sent by a writer to the feeder.
type Slack = (usize, u64);

enum Stop {
    OutOfSpace,
    Failed,
    Error(Error),
}

/// A device as the writers see it: backend, device number, progress bar.
type WriterDev = (Arc<dyn Backend>, u32, Arc<dyn Task>);

struct Shared<'a> {
    devs: Vec<WriterDev>,
    journal: Mutex<Journal>,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    master: &'a MasterKey,
    identity: &'a Identity,
    resume_hint: String,
    compression: Compression,
}

impl Shared<'_> {
    fn fail(&self, e: Error) {
        let mut f = self.failure.lock().unwrap();
        if f.is_none() {
            *f = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    fn journal(&self, r: &Record, sync: bool) -> Result<()> {
        let mut j = self.journal.lock().unwrap();
        let path = j.path().to_path_buf();
        j.append(r, sync).map_err(|source| Error::Write { path, source })
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn write_error(b: &dyn Backend, file: &str, e: io::Error, hint: &str) -> Error {
    if device::is_no_space(&e) {
        Error::Other {
            message: format!(
                "device {} is full ({e}) while writing {}; the pack stopped cleanly and its journal is consistent",
                b.mount().display(),
                file
            ),
            hint: Some(hint.to_string()),
        }
    } else {
        Error::Write { path: b.dir().join(file), source: e }
    }
}

fn unlock_existing(identity: &Identity, k: &KeyInput) -> Result<MasterKey> {
    let unlock = match (&k.key_file, &k.passphrase) {
        (Some(kf), _) => Unlock::KeyFile(kf),
        (None, Some(p)) => Unlock::Passphrase(p),
        (None, None) => return Err(Error::usage("a passphrase or key file is needed to unlock this pack")),
    };
    crypto::open_slots(&identity.key_slots, &identity.pack_id, &unlock).ok_or_else(|| wrong_secret(&unlock))
}

pub fn wrong_secret(u: &Unlock) -> Error {
    let what = match u {
        Unlock::Passphrase(_) => "wrong passphrase",
        Unlock::KeyFile(_) => "wrong key file",
    };
    Error::Other {
        message: format!("{what}: no key slot of this pack opens with it"),
        hint: Some("check --passphrase-file / BARGE_PASSPHRASE, or use --key-file with the pack's unlock key".into()),
    }
}

/// The source after its pre-scan: what there is to pack.
enum Work<'a> {
    Tree { root: PathBuf, scanned: scan::Scan },
    Database { db: &'a mut dyn TableSource, plans: Vec<TablePlan> },
}

impl Work<'_> {
    /// Items and bytes not yet in the journal's entries.
    fn remaining(&self, st: &journal::State) -> (u64, u64) {
        match self {
            Work::Tree { scanned, .. } => {
                let done = st.kept_paths();
                scanned
                    .items
                    .iter()
                    .filter(|i| !done.contains(&PathBytes::from_path(&i.rel)))
                    .fold((0, 0), |(n, b), i| (n + 1, b + if let ScanKind::File { size } = i.kind { size } else { 0 }))
            }
            Work::Database { plans, .. } => {
                let done = st.kept_tables();
                plans.iter().filter(|t| !done.contains(&t.name)).fold((0, 0), |(n, b), t| (n + 1, b + t.estimated_bytes))
            }
        }
    }
}

/// A new pack's identity and master key: a random pack id and key, a
/// passphrase slot (and a key-file slot), and a signing key sealed under
/// the master key.
pub fn new_identity(segment_size: u32, chunk_size: u64, passphrase: &[u8], new_key_file: Option<&[u8]>, kdf: Argon2Params) -> Result<(Identity, MasterKey)> {
    let master = MasterKey::generate();
    let pack_id: [u8; 16] = crypto::random();
    let mut key_slots = vec![KeySlot::passphrase(&master, &pack_id, passphrase, kdf).map_err(Error::other)?];
    if let Some(kf) = new_key_file {
        key_slots.push(KeySlot::key_file(&master, &pack_id, kf));
    }
    let (_, seed) = Signer::generate();
    let signer = Signer::from_seed(&seed).expect("valid seed");
    let (signing_seed, signing_seed_ct) = crypto::seal_blob(&master, "signing-seed", &pack_id, &seed);
    let identity = Identity {
        pack_id,
        created: now(),
        segment_size,
        chunk_size,
        key_slots,
        signer: signer.public_key(),
        signing_seed,
        signing_seed_ct,
    };
    Ok((identity, master))
}

/// Opens a pack's master key with a passphrase or key file.
pub fn unlock_identity(identity: &Identity, keys: &KeyInput) -> Result<MasterKey> {
    unlock_existing(identity, keys)
}

pub fn pack(opts: &PackOptions, source: Source<'_>, keys: &mut dyn FnMut(bool) -> Result<KeyInput>, progress: &dyn Progress) -> Result<PackReport> {
    let (root, mut db) = match source {
        Source::Tree(p) => {
            let root = std::fs::canonicalize(p).map_err(|source| Error::Read { path: p.into(), source })?;
            if !root.is_dir() {
                return Err(Error::usage(format!("{} is not a directory", root.display())));
            }
            (Some(root), None)
        }
        Source::Database(db) => (None, Some(db)),
    };
    let source_label = match (&root, &db) {
        (Some(r), _) => r.display().to_string(),
        (None, Some(db)) => db.label(),
        (None, None) => unreachable!("one source"),
    };
    if opts.devices.is_empty() {
        return Err(Error::usage("name at least one destination device (a mounted directory)"));
    }
    // Checked before the journal exists, so a typo does not leave an
    // "interrupted" pack behind.
    let mut seen_dirs = HashSet::new();
    for path in &opts.devices {
        if !path.is_dir() {
            return Err(Error::usage(format!("device {} is not a directory; is the disk mounted?", path.display())));
        }
        let canon = std::fs::canonicalize(path).map_err(|source| Error::Read { path: path.clone(), source })?;
        if !seen_dirs.insert(canon) {
            return Err(Error::usage(format!("device {} is named twice", path.display())));
        }
    }
    let seg = opts.segment_size;
    if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&seg) {
        return Err(Error::usage(format!(
            "segment size must be between {} and {} bytes",
            format::MIN_SEGMENT_SIZE,
            format::MAX_SEGMENT_SIZE
        )));
    }
    if opts.chunk_size < seg as u64 {
        return Err(Error::usage("chunk size must be at least one segment"));
    }
    let resume_hint = format!(
        "mount another device (or free space) and run `barge pack --resume {} DEVICE...`",
        shell_quote(&source_label)
    );

    // The journal: a new pack, or the one to resume.
    let (mut state, journal, master) = if opts.resume {
        if !opts.journal.exists() {
            return Err(Error::usage(format!(
                "there is no interrupted pack to resume: {} does not exist (pass --journal FILE if the pack was started with one)",
                opts.journal.display()
            )));
        }
        let st = journal::load(&opts.journal).map_err(Error::other)?;
        if st.complete {
            return Err(Error::usage(format!(
                "the pack recorded in {} is already complete; nothing to resume",
                opts.journal.display()
            )));
        }
        if st.source != source_label {
            return Err(Error::usage(format!(
                "the journal {} is for source {}, not {}",
                opts.journal.display(),
                st.source,
                source_label
            )));
        }
        let k = keys(true)?;
        let master = unlock_existing(&st.identity, &k)?;
        let j = Journal::open_append(&opts.journal).map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
        (st, j, master)
    } else {
        if opts.journal.exists() {
            if let Ok(st) = journal::load(&opts.journal) {
                if !st.complete {
                    return Err(Error::Other {
                        message: format!(
                            "an interrupted pack of {} (pack {}) is recorded in {}",
                            st.source,
                            st.identity.pack_id_hex(),
                            opts.journal.display()
                        ),
                        hint: Some(
                            "add --resume to continue it (onto the same or new devices), or delete the journal to start over"
                                .into(),
                        ),
                    });
                }
            }
        }
        let k = keys(false)?;
        let pass = k.passphrase.as_deref().ok_or_else(|| Error::usage("a new pack needs a passphrase"))?;
        // Change capture starts before any row is read, and before the
        // journal exists: a source that refuses leaves nothing to resume.
        let database = match db.as_mut() {
            Some(db) => Some(db.begin()?),
            None => None,
        };
        let (identity, master) = new_identity(seg, opts.chunk_size, pass, k.new_key_file.as_deref(), opts.kdf)?;
        let mut j = Journal::create(&opts.journal, &identity, &source_label)
            .map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
        if let Some(info) = database {
            j.append(&Record::Database(info), true).map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
        }
        let st = journal::load(&opts.journal).map_err(Error::other)?;
        (st, j, master)
    };
    let identity = state.identity.clone();
    let signer = identity
        .open_signer(&master)
        .ok_or_else(|| Error::other("the signing key in the journal does not match the pack's public key"))?;
    let seg = identity.segment_size;
    let chunk_size = identity.chunk_size;
    let generation = state.generation + 1;
    let pid_hex = identity.pack_id_hex();
    let mut warnings = Vec::new();

    // Scan first: the total drives the ETA, and the entry count sizes the
    // room kept for the manifest on each device.
    let mut work = match (root, db) {
        (Some(root), _) => {
            let mut exclude: Vec<PathBuf> = opts.devices.iter().filter_map(|d| std::fs::canonicalize(d).ok()).collect();
            if let Ok(j) = std::fs::canonicalize(&opts.journal) {
                exclude.push(j);
            }
            let scan_task = progress.task("scan", None, Unit::Items);
            let scanned = scan::scan(&root, &exclude, |_| scan_task.inc(1))?;
            scan_task.set_total(scanned.items.len() as u64);
            scan_task.finish(&format!("{} items", scanned.items.len()));
            Work::Tree { root, scanned }
        }
        (None, Some(db)) => {
            if state.database.is_none() {
                return Err(Error::usage(format!("the journal {} is for a directory tree, not a database", opts.journal.display())));
            }
            let plans = db.tables().to_vec();
            Work::Database { db, plans }
        }
        (None, None) => unreachable!("one source"),
    };
    let (_, todo_bytes) = work.remaining(&state); // sizes the manifest reserve
    let manifest_reserve = match &work {
        Work::Tree { scanned, .. } => {
            256 * 1024
                + 300 * scanned.items.len() as u64
                + 200 * (scanned.bytes / chunk_size.min(64 << 20) + scanned.items.len() as u64 / 64 + 16)
        }
        // Table entries carry their schema; extents are few per table.
        Work::Database { plans, .. } => {
            let schemas: u64 = plans.iter().map(|t| t.schema.to_string().len() as u64 + 400).sum();
            let db_info = state.database.as_ref().map_or(0, |d| d.schema.to_string().len() as u64);
            256 * 1024 + 2 * (schemas + db_info) + 200 * (todo_bytes / chunk_size.min(64 << 20) + plans.len() as u64 + 16)
        }
    };

    // Devices.
    let mut journal = journal;
    journal.append(&Record::Run { generation }, false).map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
    // At most one file continues where an earlier run left it: the first
    // begun, if unchanged. Any other starts over, and says so in the
    // journal, so its old prefix can never be taken up after bytes this run
    // writes (each slot must meet its bytes in chunk order).
    let resumed = match &work {
        Work::Tree { scanned, .. } => state.partials.iter().find(|p| scanned.items.iter().any(|i| resumable(p, i))).cloned(),
        Work::Database { .. } => None,
    };
    for p in state.partials.iter().filter(|p| resumed.as_ref().is_none_or(|r| r.path != p.path)) {
        let reset = journal::Progress { path: p.path.clone(), size: p.size, mtime: p.mtime, at: 0, extents: Vec::new() };
        journal.append(&Record::Progress(reset), false).map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
    }
    let mut device_recs = state.devices.clone();
    let mut dirs = Vec::new();
    for path in &opts.devices {
        let d = DeviceDir::new(path, &pid_hex).with_fault_after(opts.fault_enospc_after);
        d.ensure_dir().map_err(|source| Error::Write { path: d.dir().to_path_buf(), source })?;
        let number = match device::read_marker(d.dir()) {
            Some(m) if m.pack_id == pid_hex => m.number,
            _ => {
                let n = device_recs.iter().map(|r| r.number).max().unwrap_or(0) + 1;
                let label = path.display().to_string();
                let marker = DeviceMarker { pack_id: pid_hex.clone(), number: n, label: label.clone(), host: None };
                d.write_atomic(device::DEVICE_NAME, &serde_json::to_vec_pretty(&marker).unwrap())
                    .map_err(|e| write_error(&d, device::DEVICE_NAME, e, &resume_hint))?;
                let rec = DeviceRecord { number: n, label, host: None };
                journal.append(&Record::Device(rec.clone()), true).map_err(|source| Error::Write {
                    path: opts.journal.clone(),
                    source,
                })?;
                device_recs.push(rec);
                n
            }
        };
        dirs.push((path, d, number));
    }
    // What a killed run finished of an item that is packed again now is
    // dead weight: drop it before counting each device's room (the chunk
    // files go with the other leftovers below).
    let present: HashSet<u32> = dirs.iter().map(|d| d.2).collect();
    let dead = reclaim(&mut state, resumed.as_ref(), &present);
    let reclaimed_bytes: u64 = dead.iter().map(|id| state.chunks[id].size).sum();
    for (i, id) in dead.iter().enumerate() {
        journal
            .append(&Record::Drop { id: *id }, i + 1 == dead.len())
            .map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
        state.chunks.remove(id);
    }
    let (todo_items, todo_bytes) = work.remaining(&state);
    let mut devs: Vec<Dev> = Vec::new();
    for (path, d, number) in dirs {
        // Leftovers of an interrupted run: partial chunks and chunks whose
        // completion never reached the journal. Their ids are never reused.
        for (name, _, _) in device::list_pack_dir(d.dir()).map_err(|source| Error::Read { path: d.dir().into(), source })? {
            let stale = device::parse_part_name(&name).is_some()
                || device::parse_chunk_name(&name).is_some_and(|id| !state.chunks.contains_key(&id));
            if stale {
                d.remove(&name).map_err(|source| Error::Write { path: d.dir().join(&name), source })?;
            }
        }
        let used: u64 = state.chunks.values().filter(|c| c.device == number).map(|c| c.size).sum();
        let free = d.free_space().map_err(|source| Error::Read { path: path.clone(), source })?;
        let mut room = free.saturating_sub(manifest_reserve);
        if let Some(cap) = opts.capacity {
            room = room.min(cap.saturating_sub(used + manifest_reserve));
        }
        crate::metrics::pack_device(number, path);
        let task = progress.task(&format!("device {number}"), Some(room), Unit::Bytes);
        task.set_message(&path.display().to_string());
        devs.push(Dev { backend: Arc::new(d), number, room, open: 0, assigned: 0, task });
    }

    let slots = if opts.slots == 0 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        cores.max(devs.len()).clamp(1, 8)
    } else {
        opts.slots
    };

    let shared = Shared {
        devs: devs.iter().map(|d| (d.backend.clone(), d.number, d.task.clone())).collect(),
        journal: Mutex::new(journal),
        failure: Mutex::new(None),
        failed: AtomicBool::new(false),
        master: &master,
        identity: &identity,
        resume_hint: resume_hint.clone(),
        compression: opts.compression,
    };
    // A database's sizes are estimates: the bar counts rows against the
    // catalog's row estimates, and bytes without a total.
    let (bytes_task, rows_task) = match &work {
        Work::Tree { .. } => (progress.task("pack", Some(todo_bytes), Unit::Bytes), None),
        Work::Database { plans, .. } => {
            let done = state.kept_tables();
            let rows: u64 = plans.iter().filter(|t| !done.contains(&t.name)).map(|t| t.estimated_rows).sum();
            let rows_task = progress.task("rows", Some(rows), Unit::Rows);
            rows_task.set_message(&format!("{todo_items} tables"));
            (progress.task("pack", None, Unit::Bytes), Some(rows_task))
        }
    };
    let written: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());
    let mut next_id = state.next_chunk_id();
    let mut ids = move || {
        let id = next_id;
        next_id += 1;
        Ok(id)
    };

    let stop = std::thread::scope(|s| {
        let (pool_tx, pool_rx) = channel::<Vec<u8>>();
        let (slack_tx, slack_rx) = channel::<Slack>();
        let mut txs = Vec::new();
        for slot in 0..slots {
            let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
            txs.push(tx);
            let pool = pool_tx.clone();
            let slack = slack_tx.clone();
            let sh = &shared;
            let written = &written;
            s.spawn(move || writer(slot as u32, rx, pool, slack, sh, written));
        }
        drop(pool_tx);
        drop(slack_tx);
        let mut f = Feeder {
            slots: txs.into_iter().map(|tx| SlotState { tx, chunk: None }).collect(),
            cur: 0,
            stripe: 0,
            block: None,
            used: 0,
            seg: seg as usize,
            chunk_size,
            pool_rx,
            slack_rx,
            in_flight: 0,
            compressible: false,
            sampler: Sampler::new(opts.compression),
            devs: &mut devs,
            ids: &mut ids,
            sh: &shared,
            task: bytes_task.as_ref(),
            tracked: None,
        };
        let stop = match &mut work {
            Work::Tree { root, scanned } => {
                let kept = state.kept_paths();
                let mut todo: Vec<&scan::ScanItem> =
                    scanned.items.iter().filter(|i| !kept.contains(&PathBytes::from_path(&i.rel))).collect();
                // The file an earlier run began goes first: its packed
                // prefix lies in that run's chunks, and each slot must meet
                // its bytes in chunk order (docs/FORMAT.md, section 5).
                todo.sort_by_key(|i| !resumed.as_ref().is_some_and(|p| resumable(p, i)));
                feed(&mut f, root, &todo, resumed.as_ref())
            }
            Work::Database { db, plans } => {
                let kept = state.kept_tables();
                let todo: Vec<&TablePlan> = plans.iter().filter(|t| !kept.contains(&t.name)).collect();
                let cdc_start = state.database.as_ref().and_then(|d| d.cdc.as_ref()).map(|c| c.position.clone());
                feed_tables(&mut f, &mut **db, &todo, rows_task.as_deref().expect("a rows bar"), cdc_start)
            }
        };
        f.finish();
        stop
        // Dropping the feeder closes the channels; the scope joins the writers.
    });
    bytes_task.finish(if stop.is_none() { "done" } else { "stopped" });
    if let Some(t) = &rows_task {
        t.finish(if stop.is_none() { "done" } else { "stopped" });
    }
    for d in &devs {
        d.task.finish("");
    }

    let mut journal = shared.journal.into_inner().unwrap();
    let failure = shared.failure.into_inner().unwrap();
    let out_of_space = matches!(stop, Some(Stop::OutOfSpace));
    let complete = stop.is_none() && failure.is_none();
    let stop_error = match stop {
        Some(Stop::Error(e)) => Some(e),
        _ => None,
    };

    // Build the manifest from what the journal now says is durable.
    let st = journal::load(&opts.journal).map_err(Error::other)?;
    let skipped = match &work {
        Work::Tree { scanned, .. } => scanned.skipped.clone(),
        Work::Database { .. } => Vec::new(),
    };
    let catalog = Catalog { source: source_label.clone(), entries: st.entries.clone(), skipped: skipped.clone(), database: st.database.clone() };
    let (remaining_items, remaining_bytes) = work.remaining(&st);
    let complete = complete && remaining_items == 0;
    let m = Manifest {
        format: FORMAT_VERSION,
        identity: identity.clone(),
        generation,
        complete,
        written: now(),
        devices: st.devices.clone(),
        chunks: st.chunks.values().cloned().collect(),
        abandoned: st.abandoned(),
        catalog: crypto::Sealed { salt: vec![], nonce: vec![] },
    };
    let enc = manifest::encode(&m, &catalog, &master, &signer);
    let mut manifest_copies = 0;
    for d in &devs {
        match d.backend.write_atomic(device::MANIFEST_NAME, &enc.bytes) {
            Ok(()) => manifest_copies += 1,
            Err(e) => warnings.push(format!("could not write the manifest on {}: {e}", d.backend.mount().display())),
        }
    }
    if let Some(out) = &opts.manifest_out {
        crate::util::fs::write_durably(out, &enc.bytes)?;
        manifest_copies += 1;
    }
    if manifest_copies == 0 {
        if let Some(e) = failure.or(stop_error) {
            return Err(e);
        }
        return Err(Error::other("the manifest could not be written on any device")
            .with_hint("free some space or pass --manifest-out FILE, then rerun with --resume"));
    }
    if complete {
        journal.append(&Record::Complete, true).map_err(|source| Error::Write { path: opts.journal.clone(), source })?;
    }
    if let Some(e) = failure.or(stop_error) {
        return Err(e);
    }
    let written = written.into_inner().unwrap();
    let report = PackReport {
        pack_id: pid_hex,
        signer: identity.signer_fingerprint(),
        generation,
        complete,
        totals: catalog.totals(),
        chunks: st.chunks.len() as u64,
        remaining_items,
        remaining_bytes,
        reclaimed_chunks: dead.len() as u64,
        reclaimed_bytes,
        devices: devs
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceReport {
                number: d.number,
                path: d.backend.mount().display().to_string(),
                chunks_written: written.iter().filter(|w| w.0 == i).count() as u64,
                bytes_written: written.iter().filter(|w| w.0 == i).map(|w| w.1).sum(),
                bytes_total: st.chunks.values().filter(|c| c.device == d.number).map(|c| c.size).sum(),
            })
            .collect(),
        skipped,
        warnings,
        manifest_sha256: hex::encode(enc.sha256),
        journal: opts.journal.display().to_string(),
        cdc_start: st.database.as_ref().and_then(|d| d.cdc.as_ref()).map(|c| c.position.clone()),
    };
    debug_assert!(complete || out_of_space || remaining_items > 0);
    Ok(report)
}

/// One worker's share of a pack that many workers make together
/// (`barge pack --coordinator`): the identity and master key come from the
/// task's plan, chunk ids from the coordinator, and the tables leased to
/// this worker go whole onto its own devices. What the part wrote is
/// returned for the merged manifest; nothing is journaled for a resume
/// (the coordinator is the journal: a table cut short is packed again).
pub struct PartOptions<'a> {
    pub identity: &'a Identity,
    pub master: &'a MasterKey,
    /// This worker's devices: mount point and the pack-wide device number
    /// its marker holds (written by the caller).
    pub devices: &'a [(PathBuf, u32)],
    pub capacity: Option<u64>,
    /// Writer threads; 0 picks one per core (at least one per device, at most 8).
    pub slots: usize,
    pub compression: Compression,
    /// A scratch journal for this part, deleted when it ends.
    pub journal: PathBuf,
    pub cdc_start: Option<String>,
    /// Room kept on each device for the merged manifest.
    pub manifest_reserve: u64,
    /// What to do when the devices fill up, for the error.
    pub full_hint: String,
}

/// What a part wrote: its chunk files and one entry per table.
pub struct PartResult {
    pub chunks: Vec<ChunkRecord>,
    pub entries: Vec<Entry>,
}

pub fn pack_part(
    o: &PartOptions,
    db: &mut dyn TableSource,
    tables: &[TablePlan],
    ids: &mut dyn FnMut() -> Result<u64>,
    progress: &dyn Progress,
) -> Result<PartResult> {
    let pid_hex = o.identity.pack_id_hex();
    let journal = Journal::create(&o.journal, o.identity, &db.label()).map_err(|source| Error::Write { path: o.journal.clone(), source })?;
    let mut devs: Vec<Dev> = Vec::new();
    for (path, number) in o.devices {
        let d = DeviceDir::new(path, &pid_hex);
        d.ensure_dir().map_err(|source| Error::Write { path: d.dir().to_path_buf(), source })?;
        let used: u64 = device::list_pack_dir(d.dir())
            .map_err(|source| Error::Read { path: d.dir().into(), source })?
            .iter()
            .filter(|f| device::parse_chunk_name(&f.0).is_some())
            .map(|f| f.2)
            .sum();
        let free = d.free_space().map_err(|source| Error::Read { path: path.clone(), source })?;
        let mut room = free.saturating_sub(o.manifest_reserve);
        if let Some(cap) = o.capacity {
            room = room.min(cap.saturating_sub(used + o.manifest_reserve));
        }
        crate::metrics::pack_device(*number, path);
        let task = progress.task(&format!("device {number}"), Some(room), Unit::Bytes);
        task.set_message(&path.display().to_string());
        devs.push(Dev { backend: Arc::new(d), number: *number, room, open: 0, assigned: 0, task });
    }
    let slots = if o.slots == 0 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        cores.max(devs.len()).clamp(1, 8)
    } else {
        o.slots
    };
    let shared = Shared {
        devs: devs.iter().map(|d| (d.backend.clone(), d.number, d.task.clone())).collect(),
        journal: Mutex::new(journal),
        failure: Mutex::new(None),
        failed: AtomicBool::new(false),
        master: o.master,
        identity: o.identity,
        resume_hint: o.full_hint.clone(),
        compression: o.compression,
    };
    let rows_task = progress.task("rows", Some(tables.iter().map(|t| t.estimated_rows).sum()), Unit::Rows);
    let bytes_task = progress.task("pack", None, Unit::Bytes);
    let written: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());
    let todo: Vec<&TablePlan> = tables.iter().collect();
    let stop = std::thread::scope(|s| {
        let (pool_tx, pool_rx) = channel::<Vec<u8>>();
        let (slack_tx, slack_rx) = channel::<Slack>();
        let mut txs = Vec::new();
        for slot in 0..slots {
            let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
            txs.push(tx);
            let (pool, slack, sh, written) = (pool_tx.clone(), slack_tx.clone(), &shared, &written);
            s.spawn(move || writer(slot as u32, rx, pool, slack, sh, written));
        }
        drop(pool_tx);
        drop(slack_tx);
        let mut f = Feeder {
            slots: txs.into_iter().map(|tx| SlotState { tx, chunk: None }).collect(),
            cur: 0,
            stripe: 0,
            block: None,
            used: 0,
            seg: o.identity.segment_size as usize,
            chunk_size: o.identity.chunk_size,
            pool_rx,
            slack_rx,
            in_flight: 0,
            compressible: false,
            sampler: Sampler::new(o.compression),
            devs: &mut devs,
            ids,
            sh: &shared,
            task: bytes_task.as_ref(),
            tracked: None,
        };
        let stop = feed_tables(&mut f, db, &todo, rows_task.as_ref(), o.cdc_start.clone());
        f.finish();
        stop
    });
    let outcome = if stop.is_none() { "done" } else { "stopped" };
    bytes_task.finish(outcome);
    rows_task.finish(outcome);
    for d in &devs {
        d.task.finish("");
    }
    drop(shared.journal.into_inner().unwrap());
    let failure = shared.failure.into_inner().unwrap();
    let st = journal::load(&o.journal).map_err(Error::other);
    let _ = std::fs::remove_file(&o.journal);
    let st = st?;
    let result = match (failure, stop) {
        (Some(e), _) | (None, Some(Stop::Error(e))) => Err(e),
        (None, Some(Stop::OutOfSpace)) => Err(Error::Other {
            message: format!(
                "the disks of this worker are full ({})",
                devs.iter().map(|d| d.backend.mount().display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            hint: Some(o.full_hint.clone()),
        }),
        (None, Some(Stop::Failed)) => Err(Error::other("a chunk writer stopped without saying why")),
        (None, None) if st.entries.len() != tables.len() => Err(Error::other(format!(
            "{} of the {} tables leased were packed; the rest have no entry",
            st.entries.len(),
            tables.len()
        ))),
        (None, None) => Ok(PartResult { chunks: st.chunks.values().cloned().collect(), entries: st.entries.clone() }),
    };
    if result.is_err() {
        // What this part finished is part of nothing: the table goes back
        // to the coordinator whole.
        for c in st.chunks.values() {
            if let Some(d) = devs.iter().find(|d| d.number == c.device) {
                let _ = d.backend.remove(&device::chunk_name(c.id));
            }
        }
    }
    result
}

/// `s` as one shell word (quoted only when it needs to be).
pub fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

struct SlotState {
    tx: SyncSender<Msg>,
    chunk: Option<OpenChunk>,
}

struct OpenChunk {
    id: u64,
    dev: usize,
    cap: u64,
    fill: u64,
    reserved: u64,
}

struct Feeder<'a, 'b> {
    slots: Vec<SlotState>,
    cur: usize,
    stripe: u32,
    block: Option<Vec<u8>>,
    used: usize,
    seg: usize,
    chunk_size: u64,
    pool_rx: Receiver<Vec<u8>>,
    /// What finished chunks did not need of their reservation.
    slack_rx: Receiver<Slack>,
    /// Chunks ended whose slack has not come back yet.
    in_flight: u32,
    /// Whether the block holds bytes worth trying to compress.
    compressible: bool,
    sampler: Sampler,
    devs: &'a mut Vec<Dev>,
    /// Hands out chunk ids: the journal's next, or (a pack shared by many
    /// workers) the coordinator's.
    ids: &'a mut dyn FnMut() -> Result<u64>,
    sh: &'a Shared<'b>,
    task: &'a dyn Task,
    /// The file being packed, if any: each chunk closed in its middle
    /// journals where its bytes went so far.
    tracked: Option<Tracked>,
}

/// A file being packed, and how much of it `progress` records describe.
struct Tracked {
    path: PathBytes,
    size: u64,
    mtime: Mtime,
    journaled: u64,
}

impl Feeder<'_, '_> {
    /// Gives back to each device what finished chunks did not use; with
    /// `wait`, first waits for one (a device may have room only then).
    fn take_slack(&mut self, wait: bool) -> Result<(), Stop> {
        let mut first = wait;
        loop {
            let got = if first {
                match self.slack_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                    Ok(x) => Some(x),
                    Err(RecvTimeoutError::Timeout) if !self.sh.failed.load(Ordering::Relaxed) => continue,
                    Err(_) => return Err(Stop::Failed),
                }
            } else {
                self.slack_rx.try_recv().ok()
            };
            let Some((dev, bytes)) = got else { return Ok(()) };
            first = false;
            self.in_flight -= 1;
            let d = &mut self.devs[dev];
            d.room += bytes;
            d.assigned -= bytes;
        }
    }

    fn open_chunk(&mut self, slot: usize) -> Result<(), Stop> {
        let seg = self.seg as u32;
        let min_plain = (self.seg as u64).min(64 * 1024);
        self.take_slack(false)?;
        let dev = loop {
            let pick = (0..self.devs.len())
                .filter(|&i| format::plain_fitting_bound(self.devs[i].room, seg) >= min_plain)
                .min_by_key(|&i| (self.devs[i].open, self.devs[i].assigned, i));
            match pick {
                Some(dev) => break dev,
                // Chunks being finished may give room back.
                None if self.in_flight > 0 => self.take_slack(true)?,
                None => return Err(Stop::OutOfSpace),
            }
        };
        let d = &mut self.devs[dev];
        let cap = self.chunk_size.min(format::plain_fitting_bound(d.room, seg));
        let reserved = format::chunk_file_bound(cap, seg);
        d.room -= reserved;
        d.assigned += reserved;
        d.open += 1;
        let id = (self.ids)().map_err(Stop::Error)?;
        self.sh.journal(&Record::Open { id }, false).map_err(Stop::Error)?;
        self.slots[slot].chunk = Some(OpenChunk { id, dev, cap, fill: 0, reserved });
        self.send(slot, Msg::Open { id, dev })
    }

    fn send(&mut self, slot: usize, m: Msg) -> Result<(), Stop> {
        self.slots[slot].tx.send(m).map_err(|_| Stop::Failed)
    }

    fn ensure_block(&mut self) -> Result<(), Stop> {
        if self.block.is_some() {
            return Ok(());
        }
        if self.sh.failed.load(Ordering::Relaxed) {
            return Err(Stop::Failed);
        }
        if self.slots[self.cur].chunk.is_none() {
            self.open_chunk(self.cur)?;
        }
        let mut b = self.pool_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(HEAD + self.seg + crypto::TAG_LEN));
        b.resize(HEAD + self.seg, 0);
        self.block = Some(b);
        self.used = 0;
        self.compressible = false;
        Ok(())
    }

    fn room(&self) -> usize {
        let ch = self.slots[self.cur].chunk.as_ref().expect("open chunk");
        (self.seg - self.used).min((ch.cap - ch.fill) as usize - self.used)
    }

    /// Sends the block to its slot; true if that closed the slot's chunk.
    fn flush_block(&mut self) -> Result<bool, Stop> {
        let Some(mut b) = self.block.take() else { return Ok(false) };
        b.truncate(HEAD + self.used);
        let cur = self.cur;
        let used = self.used as u64;
        self.used = 0;
        let compressible = self.compressible;
        self.send(cur, Msg::Data(b, compressible))?;
        let ch = self.slots[cur].chunk.as_mut().expect("open chunk");
        ch.fill += used;
        self.stripe += 1;
        let full = ch.fill == ch.cap;
        if full {
            self.end_chunk(cur)?;
        }
        if full || self.stripe >= STRIPE_SEGMENTS {
            self.cur = (self.cur + 1) % self.slots.len();
            self.stripe = 0;
        }
        Ok(full)
    }

    /// Journals where the tracked file's bytes since the last record went.
    fn note_progress(&mut self, extents: &[Extent], total: u64) -> Result<(), Stop> {
        let Some(t) = self.tracked.as_mut() else { return Ok(()) };
        if total <= t.journaled {
            return Ok(());
        }
        let rec = journal::Progress {
            path: t.path.clone(),
            size: t.size,
            mtime: t.mtime,
            at: t.journaled,
            extents: last_bytes(extents, total - t.journaled),
        };
        t.journaled = total;
        self.sh.journal(&Record::Progress(rec), false).map_err(Stop::Error)
    }

    fn end_chunk(&mut self, slot: usize) -> Result<(), Stop> {
        let Some(ch) = self.slots[slot].chunk.take() else { return Ok(()) };
        let d = &mut self.devs[ch.dev];
        // The writer gives back, once it is done, what compression saved
        // of the rest.
        let unused = ch.reserved - format::chunk_file_bound(ch.fill, self.seg as u32);
        d.room += unused;
        d.assigned -= unused;
        d.open -= 1;
        self.in_flight += 1;
        self.send(slot, Msg::End)
    }

    /// Closes every open chunk, so each ends with a proper last segment.
    fn finish(&mut self) {
        let _ = self.close_chunks();
    }

    /// Closes every open chunk; what comes next starts new ones.
    fn close_chunks(&mut self) -> Result<(), Stop> {
        let mut r = Ok(());
        if self.used > 0 {
            r = self.flush_block().map(|_| ());
        } else if let Some(b) = self.block.take() {
            drop(b);
        }
        for i in 0..self.slots.len() {
            r = r.and(self.end_chunk(i));
        }
        r
    }

    /// Packs one file from byte `skip` on (the bytes before it were packed
    /// by an earlier run and are only hashed), adding to `extents`; returns
    /// the bytes now packed.
    fn pack_file(
        &mut self,
        abs: &Path,
        size_hint: u64,
        skip: u64,
        hasher: &mut Sha256,
        extents: &mut Vec<Extent>,
        total: &mut u64,
    ) -> Result<(), Stop> {
        if size_hint == 0 {
            return Ok(());
        }
        let mut f = File::open(abs).map_err(|source| Stop::Error(Error::Read { path: abs.into(), source }))?;
        // Decided per file: media and archives go in raw, at no cost.
        let raw = self.sampler.incompressible(&f, size_hint);
        if skip > 0 {
            let mut prefix = Read::by_ref(&mut f).take(skip);
            let n = io::copy(&mut prefix, &mut HashWriter(hasher))
                .map_err(|source| Stop::Error(Error::Read { path: abs.into(), source }))?;
            if n != skip {
                return Err(Stop::Error(Error::Other {
                    message: format!("{} shrank while it was being packed", abs.display()),
                    hint: Some("rerun the same command: the file is packed again from the start".into()),
                }));
            }
            *total = skip;
        }
        let mut read = |buf: &mut [u8]| loop {
            match f.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(Stop::Error(Error::Read { path: abs.into(), source })),
            }
        };
        self.pack_stream(&mut read, !raw, hasher, extents, total)
    }

    /// Packs what `read` yields until it returns 0: hashed, cut into
    /// segments, and recorded in `extents`; `total` counts the bytes.
    fn pack_stream(
        &mut self,
        read: &mut dyn FnMut(&mut [u8]) -> Result<usize, Stop>,
        compressible: bool,
        hasher: &mut Sha256,
        extents: &mut Vec<Extent>,
        total: &mut u64,
    ) -> Result<(), Stop> {
        loop {
            self.ensure_block()?;
            let room = self.room();
            let at = HEAD + self.used;
            let b = self.block.as_mut().expect("block");
            let n = read(&mut b[at..at + room])?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&b[at..at + n]);
            let used = self.used;
            self.compressible |= compressible;
            let ch = self.slots[self.cur].chunk.as_ref().expect("open chunk");
            let off = ch.fill + used as u64;
            match extents.last_mut() {
                Some(Extent(c, o, l)) if *c == ch.id && *o + *l == off => *l += n as u64,
                _ => extents.push(Extent(ch.id, off, n as u64)),
            }
            self.used += n;
            *total += n as u64;
            self.task.inc(n as u64);
            if self.room() == 0 && self.flush_block()? {
                self.note_progress(extents, *total)?;
            }
        }
    }
}

struct HashWriter<'a>(&'a mut Sha256);
impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn feed(f: &mut Feeder, root: &Path, todo: &[&scan::ScanItem], resumed: Option<&Partial>) -> Option<Stop> {
    for item in todo {
        let path = PathBytes::from_path(&item.rel);
        let entry = match &item.kind {
            ScanKind::Dir => Entry::Dir { path, mode: item.mode, mtime: item.mtime },
            ScanKind::Symlink { target } => Entry::Symlink { path, target: target.clone(), mtime: item.mtime },
            ScanKind::File { size } => {
                let mut h = Sha256::new();
                // A file an earlier run had begun continues where it stopped.
                let (skip, mut extents) = match resumed.filter(|p| resumable(p, item)) {
                    Some(p) => (p.done, p.extents.clone()),
                    None => (0, Vec::new()),
                };
                f.tracked = Some(Tracked { path: path.clone(), size: *size, mtime: item.mtime, journaled: skip });
                let mut got = 0;
                let r = f.pack_file(&root.join(&item.rel), *size, skip, &mut h, &mut extents, &mut got);
                if let Err(stop) = r {
                    // Whatever stopped the run, the next one continues this
                    // file after what lies in finished chunks.
                    return Some(match f.note_progress(&extents, got) {
                        Ok(()) => stop,
                        Err(e) => e,
                    });
                }
                f.tracked = None;
                Entry::File { path, mode: item.mode, mtime: item.mtime, size: got, sha256: h.finalize().into(), extents }
            }
        };
        if let Err(e) = f.sh.journal(&Record::Entry(entry), false) {
            return Some(Stop::Error(e));
        }
    }
    None
}

/// Whether `p`, an earlier run's packed prefix, is of this file as it is now.
fn resumable(p: &Partial, item: &scan::ScanItem) -> bool {
    matches!(item.kind, ScanKind::File { size } if size == p.size) && p.mtime == item.mtime && p.path == PathBytes::from_path(&item.rel)
}

/// The extents that hold the last `n` bytes of `extents`.
fn last_bytes(extents: &[Extent], n: u64) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut left = n;
    for x in extents.iter().rev() {
        if left == 0 {
            break;
        }
        let take = x.len().min(left);
        out.push(Extent(x.chunk(), x.offset() + x.len() - take, take));
        left -= take;
    }
    out.reverse();
    out
}

/// The finished chunks to drop on resume; the kept entries that lie in
/// them are removed from `st`, to be packed again.
///
/// A killed run leaves bytes of items packed again from the start (a table,
/// a file that changed, a file's bytes past its kept prefix) in finished
/// chunks. A chunk no kept entry and not the continued file refers to is
/// dropped. On the devices at hand, a chunk holding such dead bytes is
/// dropped too when the kept entries in it lie only in chunks dropped
/// with it: packing those few again (they are small: every chunk they touch
/// holds dead bytes) frees the whole chunk.
fn reclaim(st: &mut journal::State, resumed: Option<&Partial>, present: &HashSet<u32>) -> Vec<u64> {
    let seg = st.identity.segment_size;
    let chunks_of = |e: &Entry| e.extents().iter().map(|x| x.chunk()).collect::<Vec<u64>>();
    let mut live: HashMap<u64, u64> = HashMap::new();
    let prefix: Vec<Extent> = resumed.map(|p| p.extents.clone()).unwrap_or_default();
    for x in st.entries.iter().flat_map(|e| e.extents().iter()).chain(&prefix) {
        *live.entry(x.chunk()).or_default() += x.len();
    }
    let prefix: HashSet<u64> = prefix.iter().map(|x| x.chunk()).collect();
    let mut free: HashSet<u64> = st
        .chunks
        .values()
        .filter(|c| !prefix.contains(&c.id))
        .filter(|c| {
            let live = live.get(&c.id).copied().unwrap_or(0);
            let plain = c.plain_len(seg).unwrap_or(u64::MAX);
            live == 0 || (present.contains(&c.device) && live < plain)
        })
        .map(|c| c.id)
        .collect();
    // An entry that also lies in a chunk kept anyway stays, and so do the
    // chunks it lies in.
    loop {
        let mut held = HashSet::new();
        for e in &st.entries {
            let ch = chunks_of(e);
            if ch.iter().any(|c| free.contains(c)) && ch.iter().any(|c| !free.contains(c)) {
                held.extend(ch.into_iter().filter(|c| free.contains(c)));
            }
        }
        if held.is_empty() {
            break;
        }
        free.retain(|c| !held.contains(c));
    }
    st.entries.retain(|e| !chunks_of(e).iter().any(|c| free.contains(c)));
    let mut out: Vec<u64> = free.into_iter().collect();
    out.sort_unstable();
    out
}

/// Packs each table whole. A table cut short (the devices filled, or the
/// pack was killed) has no entry, so the next run reads it again from the
/// start, in that run's snapshot.
fn feed_tables(f: &mut Feeder, db: &mut dyn TableSource, todo: &[&TablePlan], rows_task: &dyn Task, cdc_start: Option<String>) -> Option<Stop> {
    let names: Vec<String> = todo.iter().map(|t| t.name.clone()).collect();
    if let Err(e) = db.start(&names) {
        return Some(Stop::Error(e));
    }
    for plan in todo {
        // A large table starts in chunks of its own: if a kill cuts it
        // short, the next run reads it again and reclaims every chunk it
        // had filled, none being shared with a table that is kept.
        // (A catalog without a byte figure gets a modest guess per row.)
        let estimate = if plan.estimated_bytes > 0 { plan.estimated_bytes } else { plan.estimated_rows.saturating_mul(64) };
        if estimate >= f.chunk_size / 8 {
            if let Err(stop) = f.close_chunks() {
                return Some(stop);
            }
        }
        let mut stream = match db.open(&plan.name) {
            Ok(s) => s,
            Err(e) => return Some(Stop::Error(e)),
        };
        let mut h = Sha256::new();
        let mut extents = Vec::new();
        let mut size = 0;
        let mut counted = 0;
        let mut read = |buf: &mut [u8]| {
            let n = stream.read(buf).map_err(Stop::Error)?;
            let rows = stream.rows();
            rows_task.inc(rows - counted);
            counted = rows;
            Ok(n)
        };
        if let Err(stop) = f.pack_stream(&mut read, true, &mut h, &mut extents, &mut size) {
            return Some(stop);
        }
        let entry = Entry::Table {
            name: plan.name.clone(),
            schema: plan.schema.clone(),
            encoding: rows::ENCODING.into(),
            rows: stream.rows(),
            size,
            sha256: h.finalize().into(),
            extents,
            cdc_start: cdc_start.clone(),
        };
        if let Err(e) = f.sh.journal(&Record::Entry(entry), false) {
            return Some(Stop::Error(e));
        }
    }
    None
}

struct Current {
    id: u64,
    dev: usize,
    sink: Box<dyn Sink>,
    sealer: Sealer,
    /// The segment held back until the next one (or the end) says whether it is the last.
    pending: Option<(Vec<u8>, bool)>,
    hasher: Sha256,
    size: u64,
    plain: u64,
}

/// One writer thread's tools, kept across its chunks.
struct WriterTools<'a> {
    slot: u32,
    pool: Sender<Vec<u8>>,
    slack: Sender<Slack>,
    encoder: SegmentEncoder,
    /// The framed, sealed segment being written.
    frame: Vec<u8>,
    sh: &'a Shared<'a>,
    written: &'a Mutex<Vec<(usize, u64)>>,
}

fn writer<'a>(slot: u32, rx: Receiver<Msg>, pool: Sender<Vec<u8>>, slack: Sender<Slack>, sh: &'a Shared<'a>, written: &'a Mutex<Vec<(usize, u64)>>) {
    let mut t = WriterTools { slot, pool, slack, encoder: SegmentEncoder::new(sh.compression), frame: Vec::new(), sh, written };
    let mut cur: Option<Current> = None;
    let mut broken = false;
    for msg in rx {
        if broken {
            if let Msg::Data(b, _) = msg {
                let _ = t.pool.send(b);
            }
            continue;
        }
        let r = handle(msg, &mut cur, &mut t);
        if let Err(e) = r {
            broken = true;
            if let Some(c) = cur.take() {
                let (backend, _, _) = &sh.devs[c.dev];
                drop(c.sink);
                let _ = backend.remove(&device::part_name(c.id));
            }
            sh.fail(e);
        }
    }
}

/// Compresses (or not), seals and writes one segment: its sealed length
/// as a u32, then ciphertext and tag (docs/FORMAT.md, section 2). `buf`
/// holds the plaintext after [`HEAD`] bytes of room; a raw segment is
/// framed and sealed in place.
fn seal_write(c: &mut Current, mut buf: Vec<u8>, compressible: bool, last: bool, t: &mut WriterTools) -> Result<()> {
    let plain_len = buf.len() - HEAD;
    let frame = match t.encoder.compress(&buf[HEAD..], compressible) {
        Some(z) => {
            let frame = &mut t.frame;
            frame.clear();
            frame.extend_from_slice(&((z.len() + 1) as u32).to_le_bytes());
            frame.push(KIND_ZSTD);
            frame.extend_from_slice(z);
            frame
        }
        None => {
            buf[..FRAME_LEN].copy_from_slice(&((plain_len + 1) as u32).to_le_bytes());
            buf[FRAME_LEN] = KIND_RAW;
            &mut buf
        }
    };
    let tag = c.sealer.seal_slice(&mut frame[FRAME_LEN..], last);
    frame.extend_from_slice(&tag);
    c.hasher.update(&frame[..]);
    let (backend, number, task) = &t.sh.devs[c.dev];
    crate::metrics::pack_written(*number, frame.len());
    c.sink.write_all(frame).map_err(|e| write_error(backend.as_ref(), &device::part_name(c.id), e, &t.sh.resume_hint))?;
    c.size += frame.len() as u64;
    task.inc(frame.len() as u64);
    c.plain += plain_len as u64;
    let _ = t.pool.send(buf);
    Ok(())
}

fn handle(msg: Msg, cur: &mut Option<Current>, t: &mut WriterTools) -> Result<()> {
    let sh = t.sh;
    match msg {
        Msg::Open { id, dev } => {
            let header = ChunkHeader {
                version: FORMAT_VERSION,
                codec: sh.compression.codec(),
                segment_size: sh.identity.segment_size,
                pack_id: sh.identity.pack_id,
                chunk_id: id,
                salt: crypto::random(),
            };
            let hb = header.encode();
            let key = crypto::chunk_key(sh.master, &header.pack_id, id, &header.salt);
            let (backend, _, task) = &sh.devs[dev];
            let part = device::part_name(id);
            let mut sink = backend.create(&part).map_err(|e| write_error(backend.as_ref(), &part, e, &sh.resume_hint))?;
            sink.write_all(&hb).map_err(|e| write_error(backend.as_ref(), &part, e, &sh.resume_hint))?;
            task.inc(hb.len() as u64);
            crate::metrics::pack_written(sh.devs[dev].1, hb.len());
            let mut hasher = Sha256::new();
            hasher.update(hb);
            t.encoder.new_chunk();
            *cur = Some(Current { id, dev, sink, sealer: Sealer::new(&key, &hb), pending: None, hasher, size: hb.len() as u64, plain: 0 });
        }
        Msg::Data(b, compressible) => {
            let c = cur.as_mut().expect("data before open");
            if let Some((prev, prev_compressible)) = c.pending.replace((b, compressible)) {
                seal_write(c, prev, prev_compressible, false, t)?;
            }
        }
        Msg::End => {
            let mut c = cur.take().expect("end before open");
            let (last, compressible) = c.pending.take().unwrap_or_else(|| (vec![0; HEAD], false));
            let r = seal_write(&mut c, last, compressible, true, t);
            if let Err(e) = r {
                *cur = Some(c);
                return Err(e);
            }
            let (backend, number, _) = &sh.devs[c.dev];
            let part = device::part_name(c.id);
            let name = device::chunk_name(c.id);
            let (id, dev, size, plain) = (c.id, c.dev, c.size, c.plain);
            let sha256: [u8; 32] = c.hasher.finalize().into();
            c.sink.finish().map_err(|e| write_error(backend.as_ref(), &part, e, &sh.resume_hint))?;
            backend.rename(&part, &name).map_err(|e| write_error(backend.as_ref(), &name, e, &sh.resume_hint))?;
            sh.journal(&Record::Chunk(ChunkRecord { id, slot: t.slot, device: *number, size, sha256, plain: Some(plain) }), true)?;
            t.written.lock().unwrap().push((dev, size));
            let _ = t.slack.send((dev, format::chunk_file_bound(plain, sh.identity.segment_size) - size));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::catalog::Mtime;
    use crate::pack::crypto::Sealed;

    fn state(chunks: &[(u64, u32, u64)], entries: Vec<Entry>) -> journal::State {
        journal::State {
            identity: Identity {
                pack_id: [7; 16],
                created: String::new(),
                segment_size: 1024,
                chunk_size: 8192,
                key_slots: vec![],
                signer: vec![],
                signing_seed: Sealed { salt: vec![], nonce: vec![] },
                signing_seed_ct: vec![],
            },
            source: "/src".into(),
            generation: 1,
            devices: vec![],
            opened: chunks.iter().map(|c| c.0).collect(),
            chunks: chunks
                .iter()
                .map(|&(id, device, plain)| {
                    (id, ChunkRecord { id, slot: 0, device, size: format::chunk_file_size(plain, 1024), sha256: [0; 32], plain: None })
                })
                .collect(),
            entries,
            partials: vec![],
            database: None,
            complete: false,
        }
    }

    fn file(name: &str, extents: &[(u64, u64, u64)]) -> Entry {
        Entry::File {
            path: PathBytes(name.as_bytes().to_vec()),
            mode: 0o644,
            mtime: Mtime(1, 0),
            size: extents.iter().map(|x| x.2).sum(),
            sha256: [0; 32],
            extents: extents.iter().map(|&(c, o, l)| Extent(c, o, l)).collect(),
        }
    }

    fn names(st: &journal::State) -> Vec<String> {
        st.entries.iter().map(|e| e.path_display()).collect()
    }

    /// Chunk 1 is full of live bytes; chunk 2 holds a small kept file and
    /// the bytes of a lost one; chunk 3 only lost bytes; chunk 4 is shared
    /// with a file that also fills chunk 1, so it stays.
    #[test]
    fn chunks_with_dead_bytes_are_freed_when_what_they_keep_is_small() {
        let present: HashSet<u32> = [1].into();
        let mut st = state(
            &[(1, 1, 4000), (2, 1, 4000), (3, 1, 4000), (4, 1, 4000)],
            vec![file("whole", &[(1, 0, 3000)]), file("spans", &[(1, 3000, 1000), (4, 0, 500)]), file("small", &[(2, 0, 100)])],
        );
        assert_eq!(reclaim(&mut st, None, &present), vec![2, 3]);
        assert_eq!(names(&st), ["whole", "spans"], "the small file is packed again");
        // On a device not at hand, only what nothing refers to is dropped.
        let mut st = state(&[(2, 2, 4000), (3, 2, 4000)], vec![file("small", &[(2, 0, 100)])]);
        assert_eq!(reclaim(&mut st, None, &present), vec![3]);
        assert_eq!(names(&st), ["small"]);
        // The continued file's prefix holds its chunks.
        let mut st = state(&[(2, 1, 4000)], vec![]);
        let p = Partial { path: PathBytes(b"big".to_vec()), size: 9000, mtime: Mtime(1, 0), done: 100, extents: vec![Extent(2, 0, 100)] };
        assert!(reclaim(&mut st, Some(&p), &present).is_empty());
    }
}
