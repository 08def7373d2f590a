//! The few SQLite C calls the bulk paths need, on the connection sqlx
//! opened. sqlx hands each row across threads with allocations of its
//! own, which costs more than the rows themselves on a bulk copy; stepping
//! a prepared statement directly is several times faster.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::codec::sqlite::Cell;

pub struct Db(pub NonNull<ffi::sqlite3>);

// SAFETY: the handle is only used by the task holding sqlx's connection
// lock (`LockedSqliteHandle`), one call at a time.
unsafe impl Send for Db {}
// SAFETY: as above: never used from two threads at once.
unsafe impl Sync for Db {}

impl Db {
    fn errmsg(&self) -> String {
        // SAFETY: a live connection always has an error message (maybe "not an error").
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0.as_ptr())).to_string_lossy().into_owned() }
    }

    pub fn exec(&self, sql: &str) -> Result<(), String> {
        let c = CString::new(sql).map_err(|_| "SQL contains a NUL byte".to_string())?;
        // SAFETY: valid handle and NUL-terminated SQL; no callback.
        let rc = unsafe { ffi::sqlite3_exec(self.0.as_ptr(), c.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.errmsg())
        }
    }

    pub fn prepare<'a>(&'a self, sql: &str) -> Result<Stmt<'a>, String> {
        let c = CString::new(sql).map_err(|_| "SQL contains a NUL byte".to_string())?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: valid handle; `stmt` receives a statement we finalize in Drop.
        let rc = unsafe { ffi::sqlite3_prepare_v2(self.0.as_ptr(), c.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(self.errmsg());
        }
        Ok(Stmt { db: self, stmt })
    }
}

pub struct Stmt<'a> {
    db: &'a Db,
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
                Cell::Text(s) => ffi::sqlite3_bind_text(self.stmt, i, s.as_ptr() as *const _, s.len() as i32, ffi::SQLITE_TRANSIENT()),
                Cell::Blob(b) => ffi::sqlite3_bind_blob(self.stmt, i, b.as_ptr() as *const _, b.len() as i32, ffi::SQLITE_TRANSIENT()),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.db.errmsg())
        }
    }
}

/// Runs blocking SQLite work without stalling the async runtime's other
/// tasks (where the runtime allows it).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
