//! The pre-scan of a directory tree: every item in a fixed order (parents
//! before children, names sorted bytewise), with the total byte count that
//! drives the progress bar's ETA.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::catalog::{Mtime, PathBytes};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum ScanKind {
    Dir,
    File { size: u64 },
    Symlink { target: PathBytes },
}

#[derive(Debug, Clone)]
pub struct ScanItem {
    /// Relative to the root; empty for the root itself.
    pub rel: PathBuf,
    pub kind: ScanKind,
    pub mode: u32,
    pub mtime: Mtime,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub items: Vec<ScanItem>,
    pub bytes: u64,
    /// Sockets, FIFOs and device nodes: named, not packed.
    pub skipped: Vec<String>,
}

pub fn mtime_of(m: &fs::Metadata) -> Mtime {
    Mtime(m.mtime(), m.mtime_nsec().clamp(0, 999_999_999) as u32)
}

/// Walks `root`. `exclude` holds absolute paths (the pack's own devices and
/// journal, if they sit inside the source) that are left out.
pub fn scan(root: &Path, exclude: &[PathBuf], mut on_item: impl FnMut(&ScanItem)) -> Result<Scan> {
    let meta = fs::metadata(root).map_err(|source| Error::Read { path: root.into(), source })?;
    if !meta.is_dir() {
        return Err(Error::usage(format!("{} is not a directory", root.display())));
    }
    let mut out = Scan::default();
    let root_item = ScanItem { rel: PathBuf::new(), kind: ScanKind::Dir, mode: meta.permissions().mode() & 0o7777, mtime: mtime_of(&meta) };
    on_item(&root_item);
    out.items.push(root_item);
    walk(root, Path::new(""), exclude, &mut out, &mut on_item)?;
    Ok(out)
}

fn walk(root: &Path, rel: &Path, exclude: &[PathBuf], out: &mut Scan, on_item: &mut impl FnMut(&ScanItem)) -> Result<()> {
    let dir = root.join(rel);
    let rd = fs::read_dir(&dir).map_err(|source| Error::Read { path: dir.clone(), source })?;
    let mut names: Vec<_> = rd
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|source| Error::Read { path: dir.clone(), source })?;
    names.sort_by(|a, b| {
        use std::os::unix::ffi::OsStrExt;
        a.as_bytes().cmp(b.as_bytes())
    });
    for name in names {
        let child_rel = rel.join(&name);
        let abs = root.join(&child_rel);
        if exclude.iter().any(|x| x == &abs) {
            continue;
        }
        let m = fs::symlink_metadata(&abs).map_err(|source| Error::Read { path: abs.clone(), source })?;
        let ft = m.file_type();
        let mode = m.permissions().mode() & 0o7777;
        let mtime = mtime_of(&m);
        let kind = if ft.is_dir() {
            ScanKind::Dir
        } else if ft.is_file() {
            out.bytes += m.len();
            ScanKind::File { size: m.len() }
        } else if ft.is_symlink() {
            let t = fs::read_link(&abs).map_err(|source| Error::Read { path: abs.clone(), source })?;
            ScanKind::Symlink { target: PathBytes::from_path(&t) }
        } else {
            out.skipped.push(format!("{}: not a regular file, directory or symlink", child_rel.display()));
            continue;
        };
        let item = ScanItem { rel: child_rel.clone(), kind, mode, mtime };
        on_item(&item);
        let is_dir = matches!(item.kind, ScanKind::Dir);
        out.items.push(item);
        if is_dir {
            walk(root, &child_rel, exclude, out, on_item)?;
        }
    }
    Ok(())
}
