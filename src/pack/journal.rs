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
    /// Written by barge before `progress` existed; still read.
    Partial(Partial),
    /// Where more of a file went: its bytes from offset `at` on lie in
    /// `extents`. Written whenever the packer closes a chunk in the middle
    /// of a file, and when it stops; a run killed mid-file continues after
    /// the longest prefix that lies in finished chunks.
    Progress(Progress),
    /// A finished chunk that nothing kept refers to (a killed run's bytes
    /// of an item that is packed again): no longer part of the pack, its
    /// file deleted where the device is at hand, its id never reused.
    Drop { id: u64 },
    /// Everything in the source was packed.
    Complete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub path: PathBytes,
    pub size: u64,
    pub mtime: Mtime,
    pub at: u64,
    pub extents: Vec<Extent>,
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
    /// Files begun and not finished, whose packed part is in finished
    /// chunks, in the order their bytes entered the stream.
    pub partials: Vec<Partial>,
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

/// Adds a `progress` record to what is known of its file: it continues the
/// file where the last record ended, or starts it over (offset 0, or the
/// file changed between runs).
fn add_progress(files: &mut Vec<Partial>, p: Progress) {
    let i = files.iter().position(|x| x.path == p.path);
    // A resumed run goes on from the prefix that was kept, which may be
    // shorter than what the killed run had recorded.
    let continues = i.is_some_and(|i| {
        let f = &files[i];
        p.at > 0 && f.size == p.size && f.mtime == p.mtime && p.at <= f.done
    });
    if continues {
        let f = &mut files[i.expect("continues")];
        truncate_extents(&mut f.extents, p.at);
        f.done = p.at;
    } else {
        if let Some(i) = i {
            files.remove(i);
        }
        if p.at > 0 {
            // Nothing is known of the bytes before `at`: the file is
            // packed again from the start.
            return;
        }
        files.push(Partial { path: p.path.clone(), size: p.size, mtime: p.mtime, done: 0, extents: Vec::new() });
    }
    let f = files.iter_mut().find(|x| x.path == p.path).expect("just added");
    for x in p.extents {
        f.done += x.len();
        match f.extents.last_mut() {
            Some(Extent(c, o, l)) if *c == x.0 && *o + *l == x.1 => *l += x.2,
            _ => f.extents.push(x),
        }
    }
}

/// Keeps the extents that hold the first `len` bytes.
fn truncate_extents(extents: &mut Vec<Extent>, len: u64) {
    let mut left = len;
    let mut keep = 0;
    for x in extents.iter_mut() {
        if left == 0 {
            break;
        }
        x.2 = x.2.min(left);
        left -= x.2;
        keep += 1;
    }
    extents.truncate(keep);
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
    // Per path: the file as it was being packed and its extents so far.
    let mut progress: Vec<Partial> = Vec::new();
    // Per path: the run and line of its latest progress record.
    let mut progress_at: HashMap<PathBytes, (u64, usize)> = HashMap::new();
    let mut dropped = BTreeSet::new();
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
            Record::Entry(e) => raw_entries.push((generation, i, e)),
            Record::Partial(p) => {
                progress_at.insert(p.path.clone(), (generation, i));
                progress.retain(|x| x.path != p.path);
                progress.push(p);
            }
            Record::Progress(p) => {
                progress_at.insert(p.path.clone(), (generation, i));
                add_progress(&mut progress, p)
            }
            Record::Drop { id } => {
                dropped.insert(id);
            }
            Record::Complete => complete = true,
        }
    }
    let (identity, source) = header.ok_or_else(|| format!("the journal {} has no header line", path.display()))?;
    for id in &dropped {
        chunks.remove(id);
    }
    // Keep the first complete entry for each path: pack order is stream
    // order, which readers rely on. Within a run, an item with bytes in an
    // unfinished chunk also drops the items with bytes that run packed
    // after it: they are packed again anyway when the chunks they share
    // with it are reclaimed, and keeping them would hold those chunks,
    // with the dropped item's bytes in them as dead weight.
    let mut seen: HashSet<ItemId> = HashSet::new();
    let mut entries = Vec::new();
    let mut cut_in_run = None;
    // Items lost to an unfinished chunk: (run, line, item).
    let mut lost = Vec::new();
    for (run, line, e) in raw_entries {
        let whole = e.extents().iter().all(|x| chunks.contains_key(&x.chunk()));
        if !whole {
            cut_in_run = Some(run);
            lost.push((run, line, item_id(&e)));
            continue;
        }
        if cut_in_run == Some(run) && !e.extents().is_empty() {
            continue;
        }
        if seen.insert(item_id(&e)) {
            entries.push(e);
        }
    }
    // A file begun and not finished continues after the longest prefix of
    // its bytes that lies in finished chunks.
    let mut partials = Vec::new();
    for mut p in progress {
        let id = ItemId::Path(p.path.clone());
        if seen.contains(&id) {
            continue;
        }
        // Like an entry, a file begun after an item its run lost is not
        // continued: its prefix would hold chunks full of that item's bytes.
        let (run, line) = progress_at[&p.path];
        if lost.iter().any(|(r, l, other)| *r == run && *l < line && *other != id) {
            continue;
        }
        let mut kept = p.extents.iter().take_while(|x| chunks.contains_key(&x.chunk())).count();
        // A finished chunk that also holds bytes past the prefix would keep
        // those as dead weight: end the prefix before the chunk's first
        // bytes instead, so the chunk can be reclaimed (at most one chunk
        // per writer is packed again).
        let past: HashSet<u64> = p.extents[kept..].iter().map(|x| x.chunk()).collect();
        if let Some(cut) = p.extents[..kept].iter().position(|x| past.contains(&x.chunk())) {
            kept = cut;
        }
        p.extents.truncate(kept);
        p.done = p.extents.iter().map(|x| x.len()).sum();
        if p.done > 0 {
            partials.push(p);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::crypto::Sealed;

    fn identity() -> Identity {
        Identity {
            pack_id: [7; 16],
            created: "2026-01-01T00:00:00Z".into(),
            segment_size: 1024,
            chunk_size: 4096,
            key_slots: vec![],
            signer: vec![1; 32],
            signing_seed: Sealed { salt: vec![2; 32], nonce: vec![3; 12] },
            signing_seed_ct: vec![4; 48],
        }
    }

    fn chunk(id: u64) -> Record {
        Record::Chunk(ChunkRecord { id, slot: (id % 2) as u32, device: 1, size: 100, sha256: [0; 32], plain: None })
    }

    fn progress(at: u64, extents: &[(u64, u64, u64)]) -> Record {
        Record::Progress(Progress {
            path: PathBytes(b"big".to_vec()),
            size: 10_000,
            mtime: Mtime(5, 0),
            at,
            extents: extents.iter().map(|&(c, o, l)| Extent(c, o, l)).collect(),
        })
    }

    fn replay(records: &[Record]) -> State {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        let mut j = Journal::create(&path, &identity(), "/src").unwrap();
        for r in records {
            j.append(r, false).unwrap();
        }
        load(&path).unwrap()
    }

    fn prefix(st: &State) -> Option<(u64, Vec<Extent>)> {
        st.partials.iter().find(|p| p.path.0 == b"big").map(|p| (p.done, p.extents.clone()))
    }

    /// Two writers: stripes alternate between chunks 1 and 2, then 3 and 4.
    #[test]
    fn a_killed_file_continues_after_its_finished_chunks() {
        let striped = [progress(0, &[(1, 0, 100), (2, 0, 100), (1, 100, 100), (2, 100, 100)]), progress(400, &[(3, 0, 100), (4, 0, 100), (3, 100, 50)])];
        // Chunks 1 and 2 finished, 3 and 4 cut off by the kill.
        let st = replay(&[&striped[..], &[chunk(1), chunk(2)]].concat());
        assert_eq!(prefix(&st), Some((400, vec![Extent(1, 0, 100), Extent(2, 0, 100), Extent(1, 100, 100), Extent(2, 100, 100)])));
        // Chunk 3 finished and 4 not: the prefix ends before chunk 3, which
        // holds bytes past it and can then be reclaimed whole.
        let st = replay(&[&striped[..], &[chunk(1), chunk(2), chunk(3)]].concat());
        assert_eq!(prefix(&st).unwrap().0, 400);
        // Chunk 1 finished, 2 not: nothing is kept of the file.
        let st = replay(&[&striped[..], &[chunk(1)]].concat());
        assert_eq!(prefix(&st), None);
    }

    fn file(name: &str, extents: &[(u64, u64, u64)]) -> Record {
        Record::Entry(Entry::File {
            path: PathBytes(name.as_bytes().to_vec()),
            mode: 0o644,
            mtime: Mtime(1, 0),
            size: extents.iter().map(|x| x.2).sum(),
            sha256: [0; 32],
            extents: extents.iter().map(|&(c, o, l)| Extent(c, o, l)).collect(),
        })
    }

    fn kept(st: &State) -> Vec<String> {
        st.entries.iter().map(|e| e.path_display()).collect()
    }

    /// An item with bytes in an unfinished chunk drops the items its run
    /// packed after it, so the chunks they share can be reclaimed; the next
    /// run's items count again.
    #[test]
    fn nothing_after_a_lost_item_of_the_same_run_is_kept() {
        let st = replay(&[
            Record::Run { generation: 1 },
            file("a", &[(1, 0, 10)]),
            file("b", &[(1, 10, 10), (2, 0, 10)]),
            file("c", &[(1, 20, 10)]),
            Record::Entry(Entry::Dir { path: PathBytes(b"d".to_vec()), mode: 0o755, mtime: Mtime(1, 0) }),
            chunk(1),
            Record::Run { generation: 2 },
            file("b", &[(3, 0, 20)]),
            chunk(3),
        ]);
        assert_eq!(kept(&st), ["a", "d", "b"]);
        // A file begun after a lost one does not continue either.
        let st = replay(&[
            Record::Run { generation: 1 },
            file("a", &[(1, 0, 10), (2, 0, 10)]),
            progress(0, &[(1, 10, 100)]),
            chunk(1),
        ]);
        assert_eq!(prefix(&st), None);
    }

    #[test]
    fn a_resumed_run_goes_on_from_the_kept_prefix() {
        let st = replay(&[
            progress(0, &[(1, 0, 100), (2, 0, 100), (1, 100, 100), (2, 100, 100)]),
            progress(400, &[(3, 0, 100), (4, 0, 100)]),
            chunk(1),
            chunk(2),
            Record::Run { generation: 2 },
            Record::Drop { id: 3 },
            // The second run continues at 400, not 600, in chunk 5.
            progress(400, &[(5, 0, 300)]),
            chunk(5),
        ]);
        assert!(!st.chunks.contains_key(&3), "a dropped chunk no longer counts");
        assert_eq!(prefix(&st).unwrap(), (700, vec![Extent(1, 0, 100), Extent(2, 0, 100), Extent(1, 100, 100), Extent(2, 100, 100), Extent(5, 0, 300)]));
        // The file changed: a record at 0 starts it over.
        let st = replay(&[progress(0, &[(1, 0, 100)]), chunk(1), progress(0, &[(2, 0, 50)]), chunk(2)]);
        assert_eq!(prefix(&st).unwrap(), (50, vec![Extent(2, 0, 50)]));
        // A gap (a record that continues nothing known) is not trusted.
        let st = replay(&[progress(0, &[(1, 0, 100)]), chunk(1), progress(300, &[(2, 0, 50)]), chunk(2)]);
        assert_eq!(prefix(&st), None);
    }
}
