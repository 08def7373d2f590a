//! Where an unpacked tree goes. The keyed pass in [`super::reader`]
//! decrypts, reassembles and hashes every file once; a [`TreeWriter`] only
//! places what it is handed. [`DirWriter`] writes a directory; an object
//! store writer lives outside this module (it needs an async runtime, which
//! the pack library does without).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::catalog::{Mtime, PathBytes};
use super::reader::set_mtime;
use crate::error::{Error, Result};

/// Takes the entries of a tree in catalog order. A file arrives as
/// `begin_file`, its bytes in order through `data`, then `end_file` once its
/// plaintext SHA-256 has been checked. A damaged file's bytes stop at the
/// first lost piece; the writer must then leave nothing under its name.
pub trait TreeWriter {
    /// The target as the user named it, for messages.
    fn describe(&self) -> String;
    /// How findings name the item at `path` in the target.
    fn name(&self, path: &PathBytes) -> String;
    /// Called once, after the pack is known to hold a tree, before any entry.
    fn prepare(&mut self) -> Result<()>;
    fn dir(&mut self, path: &PathBytes, mode: u32, mtime: Mtime) -> Result<()>;
    fn symlink(&mut self, path: &PathBytes, target: &PathBytes, mtime: Mtime) -> Result<()>;
    fn begin_file(&mut self, path: &PathBytes, mode: u32, mtime: Mtime, size: u64, sha256: &[u8; 32]) -> Result<()>;
    fn data(&mut self, bytes: &[u8]) -> Result<()>;
    /// `damage` says why the file's bytes are not whole and authentic.
    /// Returns a problem with this one file that does not stop the run
    /// (the target cannot hold its name, say), to be reported as a finding.
    fn end_file(&mut self, damage: Option<&str>) -> Result<Option<String>>;
    /// After the last entry.
    fn finish(&mut self) -> Result<()>;
}

/// Writes the tree into a new or empty directory, keeping modes, mtimes
/// and symlinks. Each file is written under a temporary name in its
/// directory and renamed to its own only once its SHA-256 matched, so a
/// name in the target always holds the packed bytes; a damaged file leaves
/// nothing behind (the reader names it).
pub struct DirWriter<'a> {
    target: &'a Path,
    /// Parents already made: saves two syscalls per file on trees of small files.
    made: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, u32, Mtime)>,
    links: Vec<(PathBuf, PathBuf, Mtime)>,
    file: Option<OpenFile>,
    /// Numbers the temporary names.
    files: u64,
}

/// A file being written: its temporary path, then what it becomes.
struct OpenFile {
    w: io::BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    mode: u32,
    mtime: Mtime,
}

impl<'a> DirWriter<'a> {
    pub fn new(target: &'a Path) -> Self {
        DirWriter { target, made: HashSet::new(), dirs: Vec::new(), links: Vec::new(), file: None, files: 0 }
    }
}

/// A run that stops with an error mid-file leaves no temporary file.
impl Drop for DirWriter<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            drop(f.w);
            let _ = fs::remove_file(&f.tmp);
        }
    }
}

impl TreeWriter for DirWriter<'_> {
    fn describe(&self) -> String {
        self.target.display().to_string()
    }

    fn name(&self, path: &PathBytes) -> String {
        self.target.join(path.to_path()).display().to_string()
    }

    fn prepare(&mut self) -> Result<()> {
        let t = self.target;
        if t.exists() {
            let mut rd = fs::read_dir(t).map_err(|source| Error::Read { path: t.into(), source })?;
            if rd.next().is_some() {
                return Err(Error::usage(format!("target {} is not empty; unpack into a new or empty directory", t.display())));
            }
        } else {
            fs::create_dir_all(t).map_err(|source| Error::Write { path: t.into(), source })?;
        }
        Ok(())
    }

    fn dir(&mut self, path: &PathBytes, mode: u32, mtime: Mtime) -> Result<()> {
        let p = self.target.join(path.to_path());
        fs::create_dir_all(&p).map_err(|source| Error::Write { path: p.clone(), source })?;
        self.made.insert(p.clone());
        self.dirs.push((p, mode, mtime));
        Ok(())
    }

    fn symlink(&mut self, path: &PathBytes, target: &PathBytes, mtime: Mtime) -> Result<()> {
        self.links.push((self.target.join(path.to_path()), target.to_path(), mtime));
        Ok(())
    }

    fn begin_file(&mut self, path: &PathBytes, mode: u32, mtime: Mtime, _size: u64, _sha256: &[u8; 32]) -> Result<()> {
        let p = self.target.join(path.to_path());
        let parent = p.parent().unwrap_or(self.target).to_path_buf();
        if !self.made.contains(&parent) {
            fs::create_dir_all(&parent).map_err(|source| Error::Write { path: parent.clone(), source })?;
            self.made.insert(parent.clone());
        }
        // Hidden, owner-only, and never an existing name (create_new).
        self.files += 1;
        let tmp = parent.join(format!(".barge-unpack-{}-{}.tmp", std::process::id(), self.files));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|source| Error::Write { path: tmp.clone(), source })?;
        self.file = Some(OpenFile { w: io::BufWriter::with_capacity(1 << 20, f), tmp, path: p, mode, mtime });
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("begin_file comes first");
        f.w.write_all(bytes).map_err(|source| Error::Write { path: f.tmp.clone(), source })
    }

    fn end_file(&mut self, damage: Option<&str>) -> Result<Option<String>> {
        let OpenFile { w, tmp, path, mode, mtime } = self.file.take().expect("begin_file comes first");
        if damage.is_some() {
            drop(w);
            fs::remove_file(&tmp).map_err(|source| Error::Write { path: tmp.clone(), source })?;
            return Ok(None);
        }
        let done = (|| -> io::Result<()> {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.set_times(fs::FileTimes::new().set_accessed(system_time(mtime)).set_modified(system_time(mtime)))?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        done.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            Error::Write { path, source }
        })?;
        Ok(None)
    }

    /// Symlinks last, so no file is ever written through one; directory
    /// modes and times last of all, deepest first.
    fn finish(&mut self) -> Result<()> {
        for (p, to, mtime) in self.links.drain(..) {
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.into(), source })?;
            }
            std::os::unix::fs::symlink(&to, &p).map_err(|source| Error::Write { path: p.clone(), source })?;
            set_mtime(&p, mtime, true).map_err(|source| Error::Write { path: p.clone(), source })?;
        }
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
        for (p, mode, mtime) in self.dirs.drain(..) {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(|source| Error::Write { path: p.clone(), source })?;
            set_mtime(&p, mtime, false).map_err(|source| Error::Write { path: p.clone(), source })?;
        }
        // What is reported as restored is on the disk, not in its cache.
        sync_filesystem(self.target).map_err(|source| Error::Write { path: self.target.into(), source })
    }
}

/// syncfs(2) on the filesystem holding `dir`: one call instead of a sync
/// per file.
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    // SAFETY: syncfs on a file descriptor we own.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn system_time(m: Mtime) -> std::time::SystemTime {
    let base = if m.0 >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.0 as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(m.0.unsigned_abs())
    };
    base + std::time::Duration::from_nanos(m.1 as u64)
}
