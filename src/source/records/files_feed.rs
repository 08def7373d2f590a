//! One file of a files source, read on a thread of its own so that a file
//! of any size costs a few blocks of memory: the object is streamed from
//! S3 (or read from the disk) through its decompressor and handed over in
//! blocks of text; a Parquet file's rows come a record batch at a time.
//!
//! The feed ends with [`Piece::End`]; a feed that closes without it lost
//! its thread, and the reader says so rather than take a short file as
//! whole.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use object_store::path::Path;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::sink::store::ObjectTarget;

/// Decompressed text handed over at a time.
pub const BLOCK: usize = 1 << 20;

pub enum Piece {
    /// The next bytes of the (decompressed) file.
    Text(Vec<u8>),
    /// The next Parquet rows, as `Fields` objects.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    Rows(Vec<Vec<u8>>),
    /// Everything was handed over.
    End,
}

pub type Feed = mpsc::Receiver<Result<Piece>>;

/// Where a file's bytes come from.
pub enum Origin {
    /// A file of a `file://` directory, read straight from the disk.
    Local(PathBuf),
    /// An object, streamed by GET.
    Store(ObjectTarget, Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A file's compression by its name's suffix, and the name without it.
pub fn compression_of(name: &str) -> (Compression, &str) {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".gz") {
        (Compression::Gzip, &name[..name.len() - 3])
    } else if lower.ends_with(".zst") {
        (Compression::Zstd, &name[..name.len() - 4])
    } else {
        (Compression::None, name)
    }
}

/// What to read a file as.
pub enum Reading {
    /// Text, decompressed, in blocks of `block` bytes.
    Text {
        compression: Compression,
        block: usize,
    },
    /// Parquet rows. An object is first copied to `spool` (Parquet is read
    /// from its end), which is removed afterwards.
    Parquet { spool: PathBuf },
}

/// Starts reading `origin` (named `full` in errors); two pieces are read
/// ahead of the consumer.
pub fn start(origin: Origin, reading: Reading, full: String) -> Feed {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let done = match reading {
            Reading::Text { compression, block } => text(origin, compression, block, &full, &tx),
            Reading::Parquet { spool } => rows(origin, &spool, &full, &tx),
        };
        // A consumer that went away wants nothing more.
        let _ = match done {
            Ok(true) => tx.blocking_send(Ok(Piece::End)),
            Ok(false) => Ok(()),
            Err(e) => tx.blocking_send(Err(e)),
        };
    });
    rx
}

#[cfg(feature = "parquet")]
const FIX_HINT: &str = "fix the file, or move it out from under the prefix, and rerun";

fn open(origin: Origin, full: &str) -> Result<Box<dyn Read + Send>> {
    match origin {
        Origin::Local(p) => {
            let f = std::fs::File::open(&p)
                .map_err(|e| Error::other(format!("{full}: cannot open: {e}")))?;
            Ok(Box::new(f))
        }
        Origin::Store(store, path) => {
            let handle = tokio::runtime::Handle::current();
            let stream = handle.block_on(store.get_stream(&path))?;
            Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                tokio_util::io::StreamReader::new(stream),
                handle,
            )))
        }
    }
}

/// Sends the decompressed text; `Ok(false)` when the consumer went away.
fn text(
    origin: Origin,
    compression: Compression,
    block: usize,
    full: &str,
    tx: &mpsc::Sender<Result<Piece>>,
) -> Result<bool> {
    let raw = open(origin, full)?;
    let mut r: Box<dyn Read + Send> = match compression {
        Compression::None => raw,
        // A gzip file may be many members (barge writes them so): read all.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 18,
            raw,
        ))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(raw)
                .map_err(|e| Error::other(format!("{full}: cannot decompress: {e}")))?,
        ),
    };
    let bad = |e: std::io::Error| {
        Error::other(format!("{full}: cannot read it to its end: {e}")).with_hint("check that the file was uploaded whole (a .gz or .zst file must be complete), or move it out from under the prefix, and rerun")
    };
    loop {
        let mut buf = vec![0u8; block];
        let mut n = 0;
        while n < block {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(e)),
            }
        }
        let last = n < block;
        buf.truncate(n);
        if n > 0 && tx.blocking_send(Ok(Piece::Text(buf))).is_err() {
            return Ok(false);
        }
        if last {
            return Ok(true);
        }
    }
}

/// Removes the spooled copy however reading ends.
#[cfg(feature = "parquet")]
struct Spooled(PathBuf);

#[cfg(feature = "parquet")]
impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(feature = "parquet")]
fn rows(
    origin: Origin,
    spool: &std::path::Path,
    full: &str,
    tx: &mpsc::Sender<Result<Piece>>,
) -> Result<bool> {
    let (file, _guard) = match origin {
        Origin::Local(p) => (
            std::fs::File::open(&p)
                .map_err(|e| Error::other(format!("{full}: cannot open: {e}")))?,
            None,
        ),
        origin @ Origin::Store(..) => {
            let guard = Spooled(spool.to_path_buf());
            let mut from = open(origin, full)?;
            let mut to = std::fs::File::create(spool).map_err(|source| Error::Write {
                path: spool.to_path_buf(),
                source,
            })?;
            std::io::copy(&mut from, &mut to).map_err(|e| {
                Error::other(format!(
                    "{full}: copying it to {} to read: {e}",
                    spool.display()
                ))
            })?;
            let f = std::fs::File::open(spool)
                .map_err(|e| Error::other(format!("{}: {e}", spool.display())))?;
            (f, Some(guard))
        }
    };
    let mut gone = false;
    super::files_parquet::each_batch(file, |rows| {
        gone = tx.blocking_send(Ok(Piece::Rows(rows))).is_err();
        !gone
    })
    .map_err(|e| Error::other(format!("{full}: {e}")).with_hint(FIX_HINT))?;
    Ok(!gone)
}

#[cfg(not(feature = "parquet"))]
fn rows(
    _: Origin,
    _: &std::path::Path,
    full: &str,
    _: &mpsc::Sender<Result<Piece>>,
) -> Result<bool> {
    Err(Error::other(format!(
        "{full}: this barge was built without the `parquet` feature"
    )))
}
