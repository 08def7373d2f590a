//! The few SQLite C calls the bulk paths need, on the connection sqlx
//! opened. sqlx hands each row across threads with allocations of its
//! own, which costs more than the rows themselves on a bulk copy; stepping
//! a prepared statement directly is several times faster.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::codec::sqlite::Cell;

/// The raw connection, for as long as sqlx's lock on it is held: it
/// borrows the `LockedSqliteHandle` it came from, so it cannot outlive it.
pub struct Db<'g> {
    raw: NonNull<ffi::sqlite3>,
    _lock: PhantomData<&'g mut ()>,
}

// SAFETY: the handle is only used by the task holding sqlx's connection
// lock (`LockedSqliteHandle`, borrowed for 'g), one call at a time.
unsafe impl Send for Db<'_> {}
// SAFETY: as above: never used from two threads at once.
unsafe impl Sync for Db<'_> {}

impl<'g> Db<'g> {
    pub fn new(lock: &'g mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Db<'g> {
        Db { raw: lock.as_raw_handle(), _lock: PhantomData }
    }

    fn errmsg(&self) -> String {
        // SAFETY: a live connection always has an error message (maybe "not an error").
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.raw.as_ptr())).to_string_lossy().into_owned() }
    }

    pub fn exec(&self, sql: &str) -> Result<(), String> {
        let c = CString::new(sql).map_err(|_| "SQL contains a NUL byte".to_string())?;
        // SAFETY: valid handle and NUL-terminated SQL; no callback.
        let rc = unsafe { ffi::sqlite3_exec(self.raw.as_ptr(), c.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.errmsg())
        }
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>, String> {
        let c = CString::new(sql).map_err(|_| "SQL contains a NUL byte".to_string())?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: valid handle; `stmt` receives a statement we finalize in Drop.
        let rc = unsafe { ffi::sqlite3_prepare_v2(self.raw.as_ptr(), c.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(self.errmsg());
        }
        Ok(Stmt { db: self, stmt })
    }
}

pub struct Stmt<'a> {
    db: &'a Db<'a>,
    stmt: *mut ffi::sqlite3_stmt,
}

// SAFETY: like `Db`: used by one task at a time, under sqlx's lock.
unsafe impl Send for Stmt<'_> {}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared by us, finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

impl Stmt<'_> {
    pub fn columns(&self) -> usize {
        // SAFETY: valid statement.
        unsafe { ffi::sqlite3_column_count(self.stmt) as usize }
    }

    /// Steps once: `Ok(true)` when a row is ready.
    pub fn step(&mut self) -> Result<bool, String> {
        // SAFETY: valid statement.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(self.db.errmsg()),
        }
    }

    pub fn reset(&mut self) {
        // SAFETY: valid statement; errors resurface on the next step.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
    }

    /// The current row's column `i` as a storage-class cell.
    pub fn cell(&self, i: usize) -> Cell {
        let i = i as i32;
        // SAFETY: called only after `step` returned a row; pointers from
        // column_text/blob are valid until the next step, and copied here.
        unsafe {
            match ffi::sqlite3_column_type(self.stmt, i) {
                ffi::SQLITE_INTEGER => Cell::Integer(ffi::sqlite3_column_int64(self.stmt, i)),
                ffi::SQLITE_FLOAT => Cell::Real(ffi::sqlite3_column_double(self.stmt, i)),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_column_text(self.stmt, i);
                    let n = ffi::sqlite3_column_bytes(self.stmt, i) as usize;
                    let bytes = if p.is_null() { &[][..] } else { std::slice::from_raw_parts(p, n) };
                    match std::str::from_utf8(bytes) {
                        Ok(s) => Cell::Text(s.to_owned()),
                        // Text that is not UTF-8: keep the bytes.
                        Err(_) => Cell::Blob(bytes.to_vec()),
                    }
                }
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_column_blob(self.stmt, i) as *const u8;
                    let n = ffi::sqlite3_column_bytes(self.stmt, i) as usize;
                    Cell::Blob(if p.is_null() { Vec::new() } else { std::slice::from_raw_parts(p, n).to_vec() })
                }
                _ => Cell::Null,
            }
        }
    }

    /// Binds parameter `i` (1-based).
    pub fn bind(&mut self, i: usize, c: &Cell) -> Result<(), String> {
        let i = i as i32;
        // SAFETY: valid statement; SQLITE_TRANSIENT makes SQLite copy the
        // text/blob before the call returns.
        let rc = unsafe {
            match c {
                Cell::Null => ffi::sqlite3_bind_null(self.stmt, i),
                Cell::Integer(v) => ffi::sqlite3_bind_int64(self.stmt, i, *v),
                Cell::Real(v) => ffi::sqlite3_bind_double(self.stmt, i, *v),
                Cell::Text(s) => ffi::sqlite3_bind_text64(self.stmt, i, s.as_ptr() as *const _, byte_len(s.as_bytes()), ffi::SQLITE_TRANSIENT(), ffi::SQLITE_UTF8 as u8),
                Cell::Blob(b) => ffi::sqlite3_bind_blob64(self.stmt, i, b.as_ptr() as *const _, byte_len(b), ffi::SQLITE_TRANSIENT()),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.db.errmsg())
        }
    }
}

/// A value's length as the 64-bit binds take it. SQLite refuses one over
/// its SQLITE_MAX_LENGTH with SQLITE_TOOBIG (an error, not a truncation).
fn byte_len(b: &[u8]) -> u64 {
    b.len() as u64
}

/// Runs blocking SQLite work without stalling the async runtime's other
/// tasks (where the runtime allows it).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_db(f: impl FnOnce(&Db<'_>)) {
        let rt = crate::util::runtime::build(crate::util::runtime::Workers::Caller).unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
            let mut lock = conn.lock_handle().await.unwrap();
            let db = Db::new(&mut lock);
            db.exec("CREATE TABLE t (b BLOB, s TEXT)").unwrap();
            f(&db);
        });
    }

    /// A text of 2 GiB + 1 bytes: the 32-bit bind made its length negative,
    /// which SQLite reads as "up to the first NUL" and stored an empty
    /// string. Now SQLite sees the real length and refuses it. The zeroed
    /// allocation is never touched, so it costs address space, not memory.
    #[test]
    fn a_value_past_i32_max_is_refused_not_wrapped() {
        with_db(|db| {
            let mut stmt = db.prepare("INSERT INTO t (s) VALUES (?)").unwrap();
            // SAFETY: NUL bytes are valid UTF-8.
            let huge = unsafe { String::from_utf8_unchecked(vec![0u8; (1 << 31) + 1]) };
            let e = stmt.bind(1, &Cell::Text(huge)).unwrap_err();
            assert!(e.contains("too big"), "{e}");
        });
    }

    #[test]
    fn values_under_the_limit_bind_and_over_it_are_refused() {
        with_db(|db| {
            // SAFETY: a live connection; a 1 MiB limit stands in for SQLite's 1 GB.
            unsafe { ffi::sqlite3_limit(db.raw.as_ptr(), ffi::SQLITE_LIMIT_LENGTH, 1 << 20) };
            let mut stmt = db.prepare("INSERT INTO t VALUES (?, ?)").unwrap();
            let e = stmt.bind(1, &Cell::Blob(vec![7u8; (1 << 20) + 1])).unwrap_err();
            assert!(e.contains("too big"), "{e}");
            stmt.bind(1, &Cell::Blob(vec![1, 2, 3])).unwrap();
            stmt.bind(2, &Cell::Text("é".repeat(1000))).unwrap();
            assert!(!stmt.step().unwrap());
            let mut read = db.prepare("SELECT b, s FROM t").unwrap();
            assert!(read.step().unwrap());
            assert!(matches!(read.cell(0), Cell::Blob(b) if b == [1, 2, 3]));
            assert!(matches!(read.cell(1), Cell::Text(s) if s == "é".repeat(1000)));
        });
    }
}
