//! The local journal that lets an interrupted pack continue: JSON lines,
//! appended as the pack goes. A chunk counts only once its `chunk` line is
//! written (after the chunk file was synced and renamed); a file counts only
//! if every chunk it lies in counts. A torn last line is ignored.
//!
//! The journal stays on the packing machine (it holds file names in the
//! clear, like the source itself); key material in it is wrapped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::{DatabaseInfo, Entry, Extent, Mtime, PathBytes};
use super::manifest::{ChunkRecord, DeviceRecord, Identity};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Record {
    /// First line: the pack's identity and what it packs.
    Header { identity: Identity, source: String },
    /// A run of `barge pack` started.
    Run { generation: u64 },
    /// A database pack: what the first run learnt about the source (its
    /// schema objects and change-capture start). Later runs reuse it, so
    /// the pack keeps one start position however often it is resumed.
    Database(DatabaseInfo),
    Device(DeviceRecord),
    /// A chunk id was handed out; it is never used again.
    Open { id: u64 },
    Chunk(ChunkRecord),
    Entry(Entry),
    /// A file cut short when the devices filled up: its first `done` bytes
    /// are in `extents`; the next run hashes them again and goes on.
    Partial(Partial),
    /// Everything in the source was packed.
    Complete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial {
    pub path: PathBytes,
    pub size: u64,
    pub mtime: Mtime,
    pub done: u64,
    pub extents: Vec<Extent>,
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    pub fn create(path: &Path, identity: &Identity, source: &str) -> io::Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        let mut j = Journal { path: path.to_path_buf(), file };
        j.append(&Record::Header { identity: identity.clone(), source: source.to_string() }, true)?;
        Ok(j)
    }

    pub fn open_append(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One record, one `write` call; `sync` makes it and all before it durable.
    pub fn append(&mut self, r: &Record, sync: bool) -> io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// What a journal says, after replay.
#[derive(Debug)]
pub struct State {
    pub identity: Identity,
    pub source: String,
    pub generation: u64,
    pub devices: Vec<DeviceRecord>,
    pub opened: BTreeSet<u64>,
    pub chunks: BTreeMap<u64, ChunkRecord>,
    /// Entries whose bytes all lie in finished chunks, in pack order, one per path.
    pub entries: Vec<Entry>,
    /// Files begun and not finished, whose packed part is in finished chunks.
    pub partials: HashMap<PathBytes, Partial>,
    pub database: Option<DatabaseInfo>,
    pub complete: bool,
}

impl State {
    /// Chunk ids handed out but never finished.
    pub fn abandoned(&self) -> Vec<u64> {
        self.opened.iter().copied().filter(|id| !self.chunks.contains_key(id)).collect()
    }

    pub fn next_chunk_id(&self) -> u64 {
        self.opened.iter().chain(self.chunks.keys()).max().map_or(1, |m| m + 1)
    }

    pub fn kept_paths(&self) -> HashSet<PathBytes> {
        self.entries.iter().filter_map(entry_path).cloned().collect()
    }

    pub fn kept_tables(&self) -> HashSet<String> {
        self.entries.iter().filter_map(|e| if let Entry::Table { name, .. } = e { Some(name.clone()) } else { None }).collect()
    }
}

pub fn entry_path(e: &Entry) -> Option<&PathBytes> {
    match e {
        Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => Some(path),
        Entry::Table { .. } => None,
    }
}

/// What makes an entry unique within a pack: a path, or a table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ItemId {
    Path(PathBytes),
    Table(String),
}

fn item_id(e: &Entry) -> ItemId {
    match e {
        Entry::Table { name, .. } => ItemId::Table(name.clone()),
        other => ItemId::Path(entry_path(other).expect("tree entries have a path").clone()),
    }
}

pub fn load(path: &Path) -> Result<State, String> {
    let f = File::open(path).map_err(|e| format!("cannot read the journal {}: {e}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read the journal {}: {e}", path.display()))?;
    let mut header = None;
    let mut st_devices = Vec::new();
    let mut opened = BTreeSet::new();
    let mut chunks = BTreeMap::new();
    let mut raw_entries = Vec::new();
    let mut raw_partials = Vec::new();
    let mut complete = false;
    let mut generation = 0;
    let mut database = None;
    let n = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let rec: Record = match serde_json::from_str(line) {
            Ok(r) => r,
            // A kill or power cut can leave the last line half written.
            Err(_) if i + 1 == n => break,
            Err(e) => return Err(format!("the journal {} is damaged at line {}: {e}", path.display(), i + 1)),
        };
        match rec {
            Record::Header { identity, source } => header = Some((identity, source)),
            Record::Run { generation: g } => {
                generation = g;
                complete = false
            }
            Record::Database(d) => database = Some(d),
            Record::Device(d) => {
                if !st_devices.iter().any(|x: &DeviceRecord| x.number == d.number) {
                    st_devices.push(d)
                }
            }
            Record::Open { id } => {
                opened.insert(id);
            }
            Record::Chunk(c) => {
                chunks.insert(c.id, c);
            }
            Record::Entry(e) => raw_entries.push(e),
            Record::Partial(p) => raw_partials.push(p),
            Record::Complete => complete = true,
        }
    }
    let (identity, source) = header.ok_or_else(|| format!("the journal {} has no header line", path.display()))?;
    // Keep the first complete entry for each path: pack order is stream
    // order, which readers rely on.
    let mut seen: HashSet<ItemId> = HashSet::new();
    let mut entries = Vec::new();
    for e in raw_entries {
        if !e.extents().iter().all(|x| chunks.contains_key(&x.chunk())) {
            continue;
        }
        if seen.insert(item_id(&e)) {
            entries.push(e);
        }
    }
    let mut partials = HashMap::new();
    for p in raw_partials {
        if !seen.contains(&ItemId::Path(p.path.clone())) && p.extents.iter().all(|x| chunks.contains_key(&x.chunk())) {
            partials.insert(p.path.clone(), p);
        }
    }
    Ok(State {
        identity,
        source,
        generation,
        devices: st_devices,
        opened,
        chunks,
        entries,
        partials,
        database,
        complete,
    })
}
