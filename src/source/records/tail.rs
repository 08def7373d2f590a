//! `tail:///dir/pattern`: the lines of every file that matches, as the
//! Kinesis Agent sends them, each line a record.
//!
//! Each file is a shard named by its inode (and birth time), and its offset is the byte
//! after the last whole line delivered, so a restart neither skips nor
//! repeats a line:
//! - a file renamed away (log rotation by rename) is still the same
//!   inode: it is read to its end, also when barge was down across the
//!   rotation (it is found again by inode in the same directory), then
//!   dropped;
//! - a file cut shorter than its offset (rotation by truncation,
//!   `copytruncate`) is read again from its start, as a new generation
//!   of the shard (`<inode>.<n>`), so its lines do not take the keys of
//!   the lines it held before;
//! - a last line without its newline waits for the newline, until the
//!   file is rotated away.
//!
//! Only the file name may hold wildcards (`*`, `?`), not the directories.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{OpenOptions, Record, RecordBatch, RecordSource, StartAt};
use crate::endpoint::SinkEndpoint;
use crate::error::{Error, Result};
use crate::model::pattern;
use crate::sink::BoxFuture;

/// Most bytes of lines handed out in one batch.
const BATCH_BYTES: usize = 1 << 20;
/// How long to wait before looking again when no file grew: a directory
/// listing and a stat per file, cheap enough to bound the lag at 50 ms.
const POLL: Duration = Duration::from_millis(50);

struct Tracked {
    file: File,
    /// How many times the file was truncated while followed.
    generation: u32,
    path: PathBuf,
    /// Where the next unread line starts.
    offset: u64,
    /// The path no longer names this file (renamed away or deleted).
    rotated: bool,
}

pub struct TailSource {
    dir: PathBuf,
    pattern: String,
    display: String,
    start: StartAt,
    follow: bool,
    /// By the file's identity (see [`shard_of`]).
    files: BTreeMap<String, Tracked>,
    /// Offsets saved by an earlier run for files not opened yet, by
    /// identity: the latest generation and its offset.
    saved: BTreeMap<String, (u32, u64)>,
    first_scan: bool,
    /// JSON and CSV lines: a blank line holds no record (as for files
    /// sources); for text, an empty line is a record of its own.
    skip_blank: bool,
}

/// A file's identity across renames: device and inode, and its birth
/// time where the file system keeps one, so a later file that reuses a
/// deleted file's inode is not taken for it.
fn shard_of(meta: &std::fs::Metadata) -> String {
    let born = meta.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos());
    match born {
        Some(b) => format!("{}-{}-{b}", meta.dev(), meta.ino()),
        None => format!("{}-{}", meta.dev(), meta.ino()),
    }
}

impl TailSource {
    pub async fn open(ep: &SinkEndpoint, opts: OpenOptions) -> Result<TailSource> {
        let path = PathBuf::from(&ep.location);
        let (dir, pattern) = match (path.parent(), path.file_name()) {
            (Some(d), Some(f)) if !d.as_os_str().is_empty() => (d.to_path_buf(), f.to_string_lossy().into_owned()),
            _ => return Err(Error::usage(format!("{}: give a file or a pattern in a directory, e.g. tail:///var/log/app/*.log", ep.display))),
        };
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(Error::usage(format!("{}: only the file name may hold wildcards, not the directories", ep.display)));
        }
        if !dir.is_dir() {
            return Err(Error::usage(format!("{}: directory {} does not exist", ep.display, dir.display())));
        }
        let mut saved: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        for (shard, offset) in &opts.from {
            let n = offset.parse::<u64>().map_err(|_| Error::usage(format!("{}: saved offset {offset} of file {shard} is not a byte offset", ep.display)))?;
            let (base, generation) = split_generation(shard);
            if saved.get(base).is_none_or(|(g, _)| *g <= generation) {
                saved.insert(base.to_string(), (generation, n));
            }
        }
        let mut me = TailSource { dir, pattern, display: ep.display.clone(), start: opts.start, follow: opts.follow, files: BTreeMap::new(), saved, first_scan: true, skip_blank: matches!(opts.format, super::shape::RecordFormat::Json | super::shape::RecordFormat::Csv) };
        me.find_rotated_while_down()?;
        Ok(me)
    }

    /// Files an earlier run was reading that no longer match (rotated
    /// while barge was down): found by inode in the directory, read to
    /// their end first.
    fn find_rotated_while_down(&mut self) -> Result<()> {
        if self.saved.is_empty() {
            return Ok(());
        }
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.io_error(&self.dir.clone(), e))? {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            let shard = shard_of(&meta);
            let name = entry.file_name().to_string_lossy().into_owned();
            if meta.is_file() && !pattern::matches(&self.pattern, &name, pattern::GLOB) {
                if let Some((generation, offset)) = self.saved.remove(&shard) {
                    let file = File::open(entry.path()).map_err(|e| self.io_error(&entry.path(), e))?;
                    tracing::info!("{}: reading the rest of {} (rotated while barge was stopped)", self.display, entry.path().display());
                    self.files.insert(shard, Tracked { file, generation, path: entry.path(), offset, rotated: true });
                }
            }
        }
        Ok(())
    }

    fn io_error(&self, path: &Path, e: std::io::Error) -> Error {
        Error::other(format!("{}: {}: {e}", self.display, path.display()))
    }

    /// Opens the files that match now and are not tracked; marks tracked
    /// files whose path names another file now as rotated.
    fn scan(&mut self) -> Result<()> {
        let mut matched = BTreeMap::new();
        let dir = self.dir.clone();
        for entry in std::fs::read_dir(&dir).map_err(|e| self.io_error(&dir, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !pattern::matches(&self.pattern, &name, pattern::GLOB) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                matched.insert(shard_of(&meta), (entry.path(), meta.len()));
            }
        }
        for (shard, t) in self.files.iter_mut() {
            if !matched.contains_key(shard) {
                t.rotated = true;
            }
        }
        for (shard, (path, len)) in matched {
            if self.files.contains_key(&shard) {
                continue;
            }
            let (generation, offset) = match self.saved.remove(&shard) {
                Some(saved) => saved,
                // Files there before the first run: from their start, or
                // their end for `latest`; files that appear later are
                // new, so from their start.
                None if self.first_scan && self.start == StartAt::Latest => (0, len),
                None => (0, 0),
            };
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io_error(&path, e).with_hint("barge needs read access to every file the pattern matches")),
            };
            self.files.insert(shard, Tracked { file, generation, path, offset, rotated: false });
        }
        self.first_scan = false;
        Ok(())
    }

    /// Whole lines from each file, up to BATCH_BYTES in all.
    fn read_lines(&mut self) -> Result<RecordBatch> {
        let mut batch = RecordBatch::default();
        let mut budget = BATCH_BYTES;
        let mut finished = Vec::new();
        for (id, t) in self.files.iter_mut() {
            let len = t.file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < t.offset {
                tracing::warn!("{}: {} is shorter than what was read ({len} < {} bytes): truncated (copytruncate rotation?); reading it again from its start", self.display, t.path.display(), t.offset);
                t.offset = 0;
                t.generation += 1;
            }
            let shard = &if t.generation == 0 { id.clone() } else { format!("{id}.{}", t.generation) };
            let want = (len - t.offset).min(budget as u64) as usize;
            if want > 0 {
                let mut buf = vec![0u8; want];
                t.file.seek(SeekFrom::Start(t.offset)).map_err(|e| Error::other(format!("{}: {e}", t.path.display())))?;
                let got = read_full(&mut t.file, &mut buf).map_err(|e| Error::other(format!("{}: {e}", t.path.display())))?;
                buf.truncate(got);
                let mut start = 0;
                while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                    let line = &buf[start..start + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if self.skip_blank && line.iter().all(u8::is_ascii_whitespace) {
                        start += nl + 1;
                        continue;
                    }
                    batch.records.push(Record {
                        shard: shard.clone(),
                        offset: (t.offset + start as u64).to_string(),
                        stream: t.path.display().to_string(),
                        key: None,
                        time: None,
                        data: line.to_vec(),
                    });
                    start += nl + 1;
                }
                // A rotated file ends with what it has, newline or not.
                let at_end = t.offset + got as u64 >= len;
                if t.rotated && at_end && start < buf.len() {
                    batch.records.push(Record { shard: shard.clone(), offset: (t.offset + start as u64).to_string(), stream: t.path.display().to_string(), key: None, time: None, data: buf[start..].to_vec() });
                    start = buf.len();
                }
                if start == 0 && got == budget && budget == BATCH_BYTES {
                    return Err(Error::other(format!("{}: {} has a line longer than {} MiB at byte {}", self.display, t.path.display(), BATCH_BYTES >> 20, t.offset)));
                }
                t.offset += start as u64;
                budget -= start;
            }
            batch.position.insert(shard.clone(), t.offset.to_string());
            if t.rotated && t.offset >= len {
                finished.push(id.clone());
            }
            if budget == 0 {
                break;
            }
        }
        for shard in finished {
            // Read to its end and no longer matched: its offset is not
            // needed again (a restart will not find it among the matches).
            self.files.remove(&shard);
        }
        Ok(batch)
    }
}

/// `<identity>.<generation>` → its parts (generation 0 has no suffix).
fn split_generation(shard: &str) -> (&str, u32) {
    match shard.rsplit_once('.') {
        Some((base, g)) => match g.parse() {
            Ok(g) => (base, g),
            Err(_) => (shard, 0),
        },
        None => (shard, 0),
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl RecordSource for TailSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(async move {
            let mut waited = Duration::ZERO;
            loop {
                self.scan()?;
                let batch = self.read_lines()?;
                if !batch.records.is_empty() {
                    return Ok(Some(batch));
                }
                if !self.follow {
                    return Ok(None);
                }
                if waited >= Duration::from_secs(1) {
                    // Nothing new for a while: an empty batch lets the
                    // caller tick its buffers and status.
                    return Ok(Some(batch));
                }
                tokio::time::sleep(POLL).await;
                waited += POLL;
            }
        })
    }
}
