//! Where an unpacked tree goes. The keyed pass in [`super::reader`]
//! decrypts, reassembles and hashes every file once; a [`TreeWriter`] only
//! places what it is handed. [`DirWriter`] writes a directory; an object
//! store writer lives outside this module (it needs an async runtime, which
//! the pack library does without).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::catalog::{Mtime, PathBytes};
use super::reader::set_mtime;
use crate::error::{Error, Result};

/// Takes the entries of a tree in catalog order. A file arrives as
/// `begin_file`, its bytes in order through `data`, then `end_file` once its
/// plaintext SHA-256 has been checked.
pub trait TreeWriter {
    /// The target as the user named it, for messages.
    fn describe(&self) -> String;
    /// How findings name the item at `path` in the target.
    fn name(&self, path: &PathBytes) -> String;
    /// Whether a damaged file keeps the bytes that could be saved. When
    /// false, nothing after the first damaged piece is handed over.
    fn keeps_damaged(&self) -> bool;
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
/// and symlinks. A damaged file keeps what could be saved, under its name,
/// and is reported.
pub struct DirWriter<'a> {
    target: &'a Path,
    /// Parents already made: saves two syscalls per file on trees of small files.
    made: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, u32, Mtime)>,
    links: Vec<(PathBuf, PathBuf, Mtime)>,
    file: Option<(io::BufWriter<File>, PathBuf, u32, Mtime)>,
}

impl<'a> DirWriter<'a> {
    pub fn new(target: &'a Path) -> Self {
        DirWriter { target, made: HashSet::new(), dirs: Vec::new(), links: Vec::new(), file: None }
    }
}

impl TreeWriter for DirWriter<'_> {
    fn describe(&self) -> String {
        self.target.display().to_string()
    }

    fn name(&self, path: &PathBytes) -> String {
        self.target.join(path.to_path()).display().to_string()
    }

    fn keeps_damaged(&self) -> bool {
        true
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
        if let Some(parent) = p.parent().filter(|d| !self.made.contains(*d)) {
            fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.into(), source })?;
            self.made.insert(parent.to_path_buf());
        }
        let f = OpenOptions::new().write(true).create_new(true).open(&p).map_err(|source| Error::Write { path: p.clone(), source })?;
        self.file = Some((io::BufWriter::with_capacity(1 << 20, f), p, mode, mtime));
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        let (w, p, _, _) = self.file.as_mut().expect("begin_file comes first");
        w.write_all(bytes).map_err(|source| Error::Write { path: p.clone(), source })
    }

    fn end_file(&mut self, _damage: Option<&str>) -> Result<Option<String>> {
        let (w, p, mode, mtime) = self.file.take().expect("begin_file comes first");
        let f = w.into_inner().map_err(|e| Error::Write { path: p.clone(), source: e.into_error() })?;
        f.set_permissions(fs::Permissions::from_mode(mode)).map_err(|source| Error::Write { path: p.clone(), source })?;
        f.set_times(fs::FileTimes::new().set_accessed(system_time(mtime)).set_modified(system_time(mtime)))
            .map_err(|source| Error::Write { path: p.clone(), source })?;
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
        Ok(())
    }
}

pub fn system_time(m: Mtime) -> std::time::SystemTime {
    let base = if m.0 >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.0 as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(m.0.unsigned_abs())
    };
    base + std::time::Duration::from_nanos(m.1 as u64)
}
