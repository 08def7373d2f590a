//! Unpacking a directory-tree pack into an object store (`s3://bucket/prefix`):
//! every file of the tree becomes the object `prefix/<relative path>`,
//! byte for byte. Decryption, hashing and damage reporting stay in
//! [`crate::pack::reader`]; this is only the [`TreeWriter`] that puts what
//! it is handed.
//!
//! An object appears under its name only once its bytes matched the
//! catalog's plaintext SHA-256: a small file is held in memory and sent in
//! one PUT after the check; a large one streams as a multipart upload that
//! is completed after the check, or aborted. A damaged file leaves no object
//! under its name: one an earlier run put there is deleted, as this run can
//! no longer vouch for it.
//!
//! Symlinks and empty directories have no object equivalent and are
//! skipped (and counted). Modes and mtimes are kept only as object metadata
//! (`x-amz-meta-barge-mode`, `-barge-mtime`, with `-barge-sha256`).
//!
//! Resume: a rerun rewrites every object (the prefix need not be empty);
//! objects an interrupted run completed were verified, and are overwritten
//! with the same bytes.

use std::collections::HashSet;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{Attribute, Attributes, WriteMultipart};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::pack::catalog::{Mtime, PathBytes};
use crate::pack::tree::TreeWriter;
use crate::sink::object::store::{ObjectTarget, MULTIPART_THRESHOLD};

/// Small PUTs in flight at once: trees are often many small files, and one
/// round trip each in turn would make the unpack crawl.
const PUTS_IN_FLIGHT: usize = 16;
/// Parts of one multipart upload in flight (each `PART_SIZE` in memory).
const PARTS_IN_FLIGHT: usize = 4;

/// What went where, and what had no place.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ObjectsReport {
    pub objects: u64,
    pub bytes: u64,
    pub skipped_symlinks: u64,
    pub skipped_empty_dirs: u64,
    /// Files whose name cannot be an object key (not placed; also findings).
    pub unnamed: u64,
}

enum Body {
    Small(Vec<u8>),
    Large(WriteMultipart),
    /// The name cannot be a key: the bytes are checked and dropped.
    Unplaceable(String),
}

struct Current {
    key: Option<Path>,
    body: Body,
    attributes: Attributes,
    size: u64,
}

pub struct ObjectWriter {
    rt: Runtime,
    target: ObjectTarget,
    /// `s3://bucket/prefix`, to name objects in findings.
    base: String,
    puts: JoinSet<Result<()>>,
    current: Option<Current>,
    dirs: Vec<Vec<u8>>,
    /// Every directory that holds a file, at any depth.
    full_dirs: HashSet<Vec<u8>>,
    pub report: ObjectsReport,
}

impl ObjectWriter {
    /// `base` names the target in messages, without options or secrets.
    pub fn new(target: ObjectTarget, base: String) -> Result<Self> {
        let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
        Ok(ObjectWriter {
            rt,
            target,
            base,
            puts: JoinSet::new(),
            current: None,
            dirs: Vec::new(),
            full_dirs: HashSet::new(),
            report: ObjectsReport::default(),
        })
    }

    /// Fails early when the bucket is missing or out of reach.
    pub fn probe(&self) -> Result<()> {
        self.rt.block_on(self.target.probe())
    }

    /// Waits for small PUTs until at most `limit` are in flight; the first
    /// that failed fails the unpack.
    fn drain_to(&mut self, limit: usize) -> Result<()> {
        while self.puts.len() > limit {
            match self.rt.block_on(self.puts.join_next()) {
                Some(Ok(r)) => r?,
                Some(Err(e)) => return Err(Error::other(format!("an upload task failed: {e}"))),
                None => break,
            }
        }
        Ok(())
    }

    fn spawn(&mut self, f: impl std::future::Future<Output = Result<()>> + Send + 'static) -> Result<()> {
        self.drain_to(PUTS_IN_FLIGHT - 1)?;
        self.puts.spawn_on(f, self.rt.handle());
        Ok(())
    }
}

/// A run that stops with an error mid-file aborts that file's multipart
/// upload, so S3 keeps no invisible parts of it. (In-flight small PUTs are
/// cancelled with the runtime; a PUT is whole or absent.)
impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(Current { body: Body::Large(w), .. }) = self.current.take() {
            let _ = self.rt.block_on(w.abort());
        }
    }
}

/// Mode in octal; mtime as the catalog keeps it, seconds and nanoseconds
/// since the epoch.
fn metadata(mode: u32, mtime: Mtime, sha256: &[u8; 32]) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::Metadata("barge-sha256".into()), hex::encode(sha256).into());
    a.insert(Attribute::Metadata("barge-mode".into()), format!("{:o}", mode & 0o7777).into());
    a.insert(Attribute::Metadata("barge-mtime".into()), format!("{}.{:09}", mtime.0, mtime.1).into());
    a
}

impl TreeWriter for ObjectWriter {
    fn describe(&self) -> String {
        self.base.clone()
    }

    fn name(&self, path: &PathBytes) -> String {
        format!("{}/{}", self.base.trim_end_matches('/'), path.display().trim_start_matches("./"))
    }

    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    fn dir(&mut self, path: &PathBytes, _mode: u32, _mtime: Mtime) -> Result<()> {
        self.dirs.push(path.0.clone());
        Ok(())
    }

    fn symlink(&mut self, _path: &PathBytes, _target: &PathBytes, _mtime: Mtime) -> Result<()> {
        self.report.skipped_symlinks += 1;
        Ok(())
    }

    fn begin_file(&mut self, path: &PathBytes, mode: u32, mtime: Mtime, size: u64, sha256: &[u8; 32]) -> Result<()> {
        mark_parents(&mut self.full_dirs, &path.0);
        let attributes = metadata(mode, mtime, sha256);
        let (key, body) = match self.target.key(&path.0) {
            Err(why) => (None, Body::Unplaceable(why)),
            Ok(key) if size < MULTIPART_THRESHOLD as u64 => (Some(key), Body::Small(Vec::with_capacity(size as usize))),
            Ok(key) => {
                let w = self.rt.block_on(self.target.upload(&key, attributes.clone()))?;
                (Some(key), Body::Large(w))
            }
        };
        self.current = Some(Current { key, body, attributes, size });
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        let c = self.current.as_mut().expect("begin_file comes first");
        match &mut c.body {
            Body::Small(buf) => buf.extend_from_slice(bytes),
            Body::Large(w) => {
                // WriteMultipart spawns each full part onto the runtime.
                let _in_runtime = self.rt.enter();
                w.write(bytes);
                self.rt.block_on(w.wait_for_capacity(PARTS_IN_FLIGHT)).map_err(|e| self.target.error_at(c.key.as_ref().expect("a large body has a key"), e))?;
            }
            Body::Unplaceable(_) => {}
        }
        Ok(())
    }

    fn end_file(&mut self, damage: Option<&str>) -> Result<Option<String>> {
        let Current { key, body, attributes, size } = self.current.take().expect("begin_file comes first");
        let Some(key) = key else {
            let Body::Unplaceable(why) = body else { unreachable!("only an unplaceable body has no key") };
            self.report.unnamed += 1;
            return Ok(Some(format!("not unpacked: {why}; unpack to a directory to keep it")));
        };
        if damage.is_some() {
            if let Body::Large(w) = body {
                self.rt.block_on(w.abort()).map_err(|e| self.target.error_at(&key, e))?;
            }
            let t = self.target.clone();
            self.spawn(async move { t.delete(&key).await })?;
            return Ok(None);
        }
        match body {
            Body::Small(buf) => {
                let t = self.target.clone();
                self.spawn(async move { t.put_with(&key, Bytes::from(buf), attributes).await })?;
            }
            Body::Large(w) => {
                self.rt.block_on(w.finish()).map_err(|e| self.target.error_at(&key, e))?;
            }
            Body::Unplaceable(_) => unreachable!("an unplaceable body has no key"),
        }
        self.report.objects += 1;
        self.report.bytes += size;
        Ok(None)
    }

    fn finish(&mut self) -> Result<()> {
        self.drain_to(0)?;
        let full = &self.full_dirs;
        // The root is no directory of its own in a bucket.
        self.report.skipped_empty_dirs = self.dirs.iter().filter(|d| !is_root(d) && !full.contains(normal(d))).count() as u64;
        Ok(())
    }
}

fn is_root(d: &[u8]) -> bool {
    normal(d).is_empty()
}

/// Without a leading `./` or trailing `/`.
fn normal(d: &[u8]) -> &[u8] {
    let d = d.strip_prefix(b"./").unwrap_or(d);
    let d = if d == b"." { &d[..0] } else { d };
    d.strip_suffix(b"/").unwrap_or(d)
}

/// Records every ancestor directory of the file at `path` as holding one
/// (a directory of only symlinks stays empty: no object shows it).
fn mark_parents(full: &mut HashSet<Vec<u8>>, path: &[u8]) {
    let p = normal(path);
    for (i, b) in p.iter().enumerate() {
        if *b == b'/' {
            full.insert(p[..i].to_vec());
        }
    }
}
