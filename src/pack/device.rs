//! Where pack files live: one directory per pack on each device
//! (`MOUNT/barge/PACK-ID/`). The [`Backend`] trait is all the pack code
//! needs from a device, so tests can inject faults such as a full disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const ROOT_DIR: &str = "barge";
pub const MANIFEST_NAME: &str = "manifest.bgm";
pub const DEVICE_NAME: &str = "device.json";
pub const PART_SUFFIX: &str = ".part";

pub fn chunk_name(id: u64) -> String {
    format!("c{id:010}.bgc")
}

pub fn parse_chunk_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('c')?.strip_suffix(".bgc")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

pub fn part_name(id: u64) -> String {
    format!(".{}{PART_SUFFIX}", chunk_name(id))
}

pub fn parse_part_name(name: &str) -> Option<u64> {
    parse_chunk_name(name.strip_prefix('.')?.strip_suffix(PART_SUFFIX)?)
}

/// A file being written; `finish` makes it durable.
pub trait Sink: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// The operations the pack writer and reader need from one device.
pub trait Backend: Send + Sync {
    /// The mount point, for messages.
    fn mount(&self) -> &Path;
    /// The pack's directory on this device.
    fn dir(&self) -> &Path;
    /// Bytes available to an unprivileged writer.
    fn free_space(&self) -> io::Result<u64>;
    fn create(&self, name: &str) -> io::Result<Box<dyn Sink>>;
    /// Renames `from` to `to` inside the pack directory, then syncs the directory.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Writes a small file atomically (temp file, sync, rename).
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = format!(".{name}.tmp");
        let mut s = self.create(&tmp)?;
        s.write_all(bytes)?;
        s.finish()?;
        self.rename(&tmp, name)
    }
}

/// A directory on a mounted disk.
pub struct DeviceDir {
    mount: PathBuf,
    dir: PathBuf,
    /// Test hook: the number of bytes this device accepts before it reports
    /// ENOSPC, shared by every file written on it.
    fault_budget: Option<Arc<AtomicU64>>,
}

impl DeviceDir {
    pub fn new(mount: &Path, pack_id_hex: &str) -> Self {
        DeviceDir { mount: mount.to_path_buf(), dir: mount.join(ROOT_DIR).join(pack_id_hex), fault_budget: None }
    }

    pub fn with_fault_after(mut self, bytes: Option<u64>) -> Self {
        self.fault_budget = bytes.map(|b| Arc::new(AtomicU64::new(b)));
        self
    }

    pub fn ensure_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)
    }
}

struct FileSink {
    file: File,
    budget: Option<Arc<AtomicU64>>,
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(b) = &self.budget {
            let left = b.load(Ordering::Relaxed);
            if left == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = self.file.write(&buf[..buf.len().min(left as usize)])?;
            b.fetch_sub(n as u64, Ordering::Relaxed);
            return Ok(n);
        }
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Sink for FileSink {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// Chunk files are written with O_DIRECT where the filesystem allows it:
/// terabytes written once and shipped away gain nothing from the page
/// cache, and copying them through it (then writing it back) costs more CPU
/// than all the crypto. Data goes through an aligned staging buffer; the
/// last block is padded, then the file is cut to its real length.
struct DirectSink {
    file: File,
    buf: AlignedBuf,
    len: usize,
    written: u64,
    /// O_DIRECT was refused at the first write and turned off.
    buffered: bool,
}

const DIRECT_ALIGN: usize = 4096;
const DIRECT_BUF: usize = 8 << 20;

struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

// SAFETY: the buffer is owned and only reached through &mut self.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn new(size: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(size, DIRECT_ALIGN).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = std::ptr::NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to layout.size() initialized (zeroed) bytes we own.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl DirectSink {
    fn flush_full(&mut self, upto: usize) -> io::Result<()> {
        let data = &self.buf.as_mut_slice()[..upto];
        let mut done = 0;
        while done < upto {
            match self.file.write(&data[done..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Some filesystems accept O_DIRECT at open and refuse the
                // write: carry on through the page cache.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !self.buffered => {
                    self.buffered = true;
                    use std::os::fd::AsRawFd;
                    let fd = self.file.as_raw_fd();
                    // SAFETY: fcntl on a file descriptor we own.
                    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.written += upto as u64;
        Ok(())
    }
}

impl Write for DirectSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(DIRECT_BUF - self.len);
        let len = self.len;
        self.buf.as_mut_slice()[len..len + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == DIRECT_BUF {
            self.flush_full(DIRECT_BUF)?;
            self.len = 0;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for DirectSink {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        if self.len > 0 {
            let real = self.len;
            let padded = real.next_multiple_of(DIRECT_ALIGN);
            self.buf.as_mut_slice()[real..padded].fill(0);
            self.flush_full(padded)?;
            let size = self.written - (padded - real) as u64;
            self.file.set_len(size)?;
        }
        self.file.sync_all()
    }
}

impl Backend for DeviceDir {
    fn mount(&self) -> &Path {
        &self.mount
    }
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn free_space(&self) -> io::Result<u64> {
        free_space(&self.mount)
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn Sink>> {
        let path = self.dir.join(name);
        // The fault hook fills the disk with chunk data only: in a real full
        // disk, deleting the cut-short chunk frees room for the manifest.
        let budget = self.fault_budget.clone().filter(|_| parse_part_name(name).is_some());
        if budget.is_none() && parse_part_name(name).is_some() && std::env::var_os("BARGE_NO_DIRECT_IO").is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            let direct =
                OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(&path);
            match direct {
                Ok(file) => return Ok(Box::new(DirectSink { file, buf: AlignedBuf::new(DIRECT_BUF), len: 0, written: 0, buffered: false })),
                // tmpfs and some others refuse O_DIRECT: write through the page cache.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        Ok(Box::new(FileSink { file, budget }))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))?;
        File::open(&self.dir)?.sync_all()
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}

/// Free bytes for an unprivileged user on the filesystem holding `path` (statvfs).
pub fn free_space(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path has a NUL byte"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
}

/// Files found in a pack directory on a device: (name, full path, size).
pub fn list_pack_dir(dir: &Path) -> io::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        if meta.is_file() {
            out.push((e.file_name().to_string_lossy().into_owned(), e.path(), meta.len()));
        } else {
            out.push((e.file_name().to_string_lossy().into_owned(), e.path(), u64::MAX));
        }
    }
    out.sort();
    Ok(out)
}

/// Pack ids (hex) present on a device.
pub fn packs_on(mount: &Path) -> io::Result<Vec<String>> {
    let root = mount.join(ROOT_DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The marker each device carries so a resumed pack recognizes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DeviceMarker {
    pub pack_id: String,
    pub number: u32,
    pub label: String,
    /// The worker's host, in a pack made by several (`pack --coordinator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

pub fn read_marker(dir: &Path) -> Option<DeviceMarker> {
    let text = fs::read(dir.join(DEVICE_NAME)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_chunk_name(&chunk_name(42)), Some(42));
        assert_eq!(parse_part_name(&part_name(42)), Some(42));
        assert_eq!(parse_chunk_name("c42.bgc"), None);
        assert_eq!(parse_chunk_name(&part_name(1)), None);
    }

    #[test]
    fn direct_writes_keep_exact_bytes() {
        let t = tempfile::tempdir().unwrap();
        let d = DeviceDir::new(t.path(), "00");
        d.ensure_dir().unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, DIRECT_BUF - 1, DIRECT_BUF, DIRECT_BUF + 80] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut s = d.create(&part_name(1)).unwrap();
            for piece in data.chunks(1_048_592) {
                s.write_all(piece).unwrap();
            }
            s.finish().unwrap();
            assert_eq!(fs::read(d.dir().join(part_name(1))).unwrap(), data, "length {len}");
        }
    }

    #[test]
    fn fault_budget_gives_enospc() {
        let t = tempfile::tempdir().unwrap();
        let d = DeviceDir::new(t.path(), "00").with_fault_after(Some(10));
        d.ensure_dir().unwrap();
        let mut s = d.create(&part_name(1)).unwrap();
        let err = s.write_all(&[0u8; 20]).unwrap_err();
        assert!(is_no_space(&err));
    }
}
