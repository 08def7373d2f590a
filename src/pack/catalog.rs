//! The catalog: every packed item with its metadata, plaintext SHA-256 and
//! where its bytes sit in the chunks. It travels encrypted inside the manifest.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};


/// A relative path as raw bytes: a JSON string when it is UTF-8, else
/// `{"hex": "..."}`, so no file name is ever lost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathBytes(pub Vec<u8>);

impl PathBytes {
    pub fn from_path(p: &Path) -> Self {
        PathBytes(p.as_os_str().as_bytes().to_vec())
    }

    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(std::ffi::OsStr::from_bytes(&self.0))
    }

    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// A relative path that stays inside the target: no root, no `..`.
    pub fn is_safe_relative(&self) -> bool {
        let p = self.to_path();
        p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    }
}

impl Serialize for PathBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("hex", &hex::encode(&self.0))?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for PathBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex { hex: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(PathBytes(t.into_bytes())),
            Repr::Hex { hex } => hex::decode(hex).map(PathBytes).map_err(serde::de::Error::custom),
        }
    }
}

/// Modification time as `[seconds, nanoseconds]` since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mtime(pub i64, pub u32);

/// A run of bytes of one item inside one chunk's plaintext:
/// `[chunk id, offset in the chunk plaintext, length]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent(pub u64, pub u64, pub u64);

impl Extent {
    pub fn chunk(&self) -> u64 {
        self.0
    }
    pub fn offset(&self) -> u64 {
        self.1
    }
    pub fn len(&self) -> u64 {
        self.2
    }
    pub fn is_empty(&self) -> bool {
        self.2 == 0
    }
}

/// One catalog item. Paths are relative to the packed root; the root itself
/// is the directory with the empty path. Readers refuse kinds they do not
/// know, naming them, rather than skipping data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    Dir {
        path: PathBytes,
        mode: u32,
        mtime: Mtime,
    },
    File {
        path: PathBytes,
        mode: u32,
        mtime: Mtime,
        size: u64,
        #[serde(with = "hex")]
        sha256: [u8; 32],
        extents: Vec<Extent>,
    },
    Symlink {
        path: PathBytes,
        target: PathBytes,
        mtime: Mtime,
    },
    /// A database table: `schema` is the table in barge's schema IR
    /// (`model::Table` as JSON), `encoding` names how its rows are laid out
    /// in the extents ([`super::rows::ENCODING`]), `rows` is their count,
    /// `cdc_start` the source position change capture starts at (absent
    /// when the pack was made without one).
    Table {
        name: String,
        schema: serde_json::Value,
        encoding: String,
        rows: u64,
        size: u64,
        #[serde(with = "hex")]
        sha256: [u8; 32],
        extents: Vec<Extent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cdc_start: Option<String>,
    },
}

impl Entry {
    pub fn path_display(&self) -> String {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                let p = path.display();
                if p.is_empty() { ".".into() } else { p }
            }
            Entry::Table { name, .. } => format!("table {name}"),
        }
    }

    pub fn extents(&self) -> &[Extent] {
        match self {
            Entry::File { extents, .. } | Entry::Table { extents, .. } => extents,
            _ => &[],
        }
    }

    pub fn data_len(&self) -> u64 {
        match self {
            Entry::File { size, .. } | Entry::Table { size, .. } => *size,
            _ => 0,
        }
    }
}

/// What a database pack knows beyond its tables: the source engine, the
/// schema objects that are not tables, and where change capture starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// The source engine: `postgres`, `mysql` or `sqlite`.
    pub dialect: String,
    /// barge's schema IR (`model::Schema` as JSON) with an empty table
    /// list: enum types, domains, sequences, views and routines. The
    /// tables are in their catalog entries.
    pub schema: serde_json::Value,
    /// The `--tables` patterns the pack was made with, if any: the CDC
    /// that follows an unpack must follow the same tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// Change capture set up before the first table was read; absent when
    /// the pack was made without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdc: Option<CdcStart>,
    /// What an unpack needs beyond the IR (a PostgreSQL source's
    /// extensions and materialized-view indexes); absent in packs made
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<crate::task::objects::Extras>,
}

/// Where `barge migrate --mode cdc` picks up after the pack is unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdcStart {
    /// Text form of `model::Position`, e.g. `pg:16/B374D848`.
    pub position: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
}

/// The decrypted catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// What was packed: a directory as given on the command line, or a
    /// database URL (redacted).
    pub source: String,
    /// Items in pack order: the order their bytes entered the stream.
    pub entries: Vec<Entry>,
    /// Items found but not packed (sockets, devices, unreadable files), with why.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Set for a pack of a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Totals {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
}

impl Catalog {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in &self.entries {
            match e {
                Entry::Dir { .. } => t.dirs += 1,
                Entry::File { size, .. } => {
                    t.files += 1;
                    t.bytes += size
                }
                Entry::Symlink { .. } => t.symlinks += 1,
                Entry::Table { size, rows, .. } => {
                    t.tables += 1;
                    t.rows += rows;
                    t.bytes += size
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_bytes_round_trip(bytes in prop::collection::vec(1u8..=255, 0..64)) {
            let p = PathBytes(bytes);
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<PathBytes>(&json).unwrap(), p);
        }
    }

    #[test]
    fn entries_round_trip_and_unknown_kinds_fail() {
        let e = Entry::File {
            path: PathBytes(b"a/b".to_vec()),
            mode: 0o644,
            mtime: Mtime(1, 2),
            size: 3,
            sha256: [4; 32],
            extents: vec![Extent(1, 0, 3)],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
        let err = serde_json::from_str::<Entry>(r#"{"kind":"hologram","path":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("hologram"), "{err}");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(PathBytes(b"a/b".to_vec()).is_safe_relative());
        assert!(PathBytes(b"".to_vec()).is_safe_relative());
        assert!(!PathBytes(b"../x".to_vec()).is_safe_relative());
        assert!(!PathBytes(b"/etc/passwd".to_vec()).is_safe_relative());
        assert!(!PathBytes(b"a/../../x".to_vec()).is_safe_relative());
    }
}
