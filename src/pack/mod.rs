//! The barge pack format: encrypted, checksummed images of a directory tree
//! or a database spread over several disks. A library with no CLI:
//! [`packer`] writes, [`reader`] verifies and restores (a tree through a
//! [`tree::TreeWriter`]: a directory here, an object store in
//! `crate::task::unpack_objects`). The byte layout is
//! documented in `docs/FORMAT.md`.
//!
//! Layers, bottom up: [`format`] (binary headers), [`device`] (the backend
//! that stores files on a mounted disk), [`crypto`] (keys, STREAM, slots,
//! signatures), [`catalog`] and [`manifest`] (what is in the pack),
//! [`compress`] (zstd per segment), [`journal`] (resume), [`scan`] (the pre-scan of a tree), [`source`]
//! (what a database offers the packer) and [`rows`] (how table rows are
//! laid out).

pub mod catalog;
pub mod compress;
pub mod crypto;
pub mod device;
pub mod format;
pub mod journal;
pub mod manifest;
pub mod packer;
pub mod reader;
pub mod rows;
pub mod scan;
pub mod source;
pub mod tree;

pub use compress::Compression;
pub use packer::{pack, KeyInput, PackOptions, PackReport, Source};
