//! Value codecs for the full-load data path: the bytes each engine reads
//! and writes in bulk ↔ [`Value`](crate::model::Value). Pure functions
//! and one buffer-owning parser; no IO, no async, no connections.
//!
//! - [`pgtext`]: PostgreSQL COPY text format. [`pgtext::CopyTextParser`]
//!   splits a `COPY ... TO STDOUT` stream into rows of fields;
//!   [`pgtext::decode`] reads a field as a value; [`pgtext::encode`]
//!   writes a field for `COPY ... FROM STDIN`.
//! - [`mysqltext`]: MySQL/MariaDB text-protocol values in
//!   ([`mysqltext::decode`]) and `LOAD DATA LOCAL INFILE` fields out
//!   ([`mysqltext::encode_load_data`]).
//! - [`sqlite`]: SQLite storage classes ([`sqlite::Cell`]) both ways.
//! - [`pgbinary`]: PostgreSQL binary COPY fields, written straight from
//!   packed values (an unpack into PostgreSQL).
//!
//! Every decoder takes the column's [`ColumnType`](crate::model::ColumnType)
//! (as the source describes it) and every encoder the target column's
//! type, which may differ: an encoder converts where nothing is lost
//! (an integer 0/1 to a boolean, a SET to `text[]`, an instant to its UTC
//! wall clock) and returns an error otherwise. Errors are plain strings
//! that quote the value (cut to 64 characters) and name the type; the
//! caller adds table, row and column.
//!
//! Conventions every codec keeps, so values compare equal across engines:
//! - Integers are `Value::Int` unless they only fit `Value::UInt`
//!   (above `i64::MAX`).
//! - Decimals are canonical text ([`normalize_decimal`](crate::model::value::normalize_decimal)),
//!   never a float on the way through.
//! - Time of day `24:00:00` (PostgreSQL `time`, MySQL `TIME`) is carried
//!   in chrono's leap-second form (23:59:59 plus 1 000 000 000 ns) and
//!   written back as `24:00:00`.
//! - `TimeTz` offsets are seconds east of UTC (`+02` is 7200).
//! - Fractions of a second are written with up to 6 digits, or 9 when a
//!   value carries nanoseconds (SQLite text can); PostgreSQL and MySQL
//!   round those to their column precision on input.
//! - Years before 1 are astronomical (chrono): 1 BC is year 0, 44 BC is
//!   year -43.
//!
//! What the IO around these codecs must set up:
//! - PostgreSQL reader: `DateStyle=ISO, YMD`, `TimeZone=UTC`,
//!   `IntervalStyle=iso_8601`, `bytea_output=hex`, `extra_float_digits=3`,
//!   `client_encoding=UTF8`. Writer: `TimeZone=UTC` (zone-less literals for
//!   `timestamptz` columns are then UTC).
//! - MySQL reader and writer: `time_zone='+00:00'`, `NAMES utf8mb4`; BIT
//!   columns load through `@v` and `SET col = CAST(@v AS UNSIGNED)`.
//! - [`pgtext::decode_field`] and [`mysqltext::decode_owned`] take the
//!   bytes by value and move text and blobs instead of copying them.
//! - NULL never reaches a decoder: the COPY parser yields `None`, the MySQL
//!   driver its own NULL, SQLite [`sqlite::Cell::Null`] (which decodes to
//!   NULL anyway).

mod common;
pub mod json;
pub mod text;
pub mod mysqltext;
pub mod pgbinary;
pub mod pgtext;
pub mod sqlite;

#[cfg(test)]
mod testgen;
