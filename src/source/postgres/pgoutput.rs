//! The pgoutput logical decoding format (protocol version 1), decoded by
//! hand: the messages inside each XLogData frame of a logical replication
//! stream. Begin and Commit are decoded by the replication client; this
//! module handles Relation, Type, Insert, Update, Delete, Truncate and
//! Origin. Values arrive in PostgreSQL's text format and are turned into
//! model values by the same codec the full load uses.

use std::fmt;

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// An unchanged TOASTed value: the server did not send it, and the
    /// target's value must be kept.
    Unchanged,
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A table's description, sent before its first change in a session and
/// again whenever its definition changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

/// Which old values an UPDATE or DELETE carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKind {
    /// Only the replica identity (key) columns; the others are null.
    Key,
    /// The whole old row (replica identity full).
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Relation(Relation),
    Type { oid: u32, schema: String, name: String },
    Insert { relation: u32, new: Vec<Datum> },
    Update { relation: u32, old: Option<(OldKind, Vec<Datum>)>, new: Vec<Datum> },
    Delete { relation: u32, old: (OldKind, Vec<Datum>) },
    Truncate { relations: Vec<u32>, cascade: bool, restart_identity: bool },
    Origin { lsn: u64, name: String },
    /// Begin, Commit, Message and anything newer: handled elsewhere or not needed.
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed pgoutput message at byte {}: {}", self.offset, self.message)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError { message: message.into(), offset: self.pos })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return self.fail(format!("needs {n} more bytes, has {}", self.buf.len() - self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == 0) else { return self.fail("string without its NUL terminator") };
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let n = self.i16()?;
        if n < 0 {
            return self.fail(format!("negative column count {n}"));
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.i32()?;
                    if len < 0 {
                        return self.fail(format!("negative value length {len}"));
                    }
                    let bytes = self.take(len as usize)?.to_vec();
                    if kind == b't' {
                        Datum::Text(bytes)
                    } else {
                        Datum::Binary(bytes)
                    }
                }
                other => return self.fail(format!("unknown column kind {:?}", other as char)),
            });
        }
        Ok(out)
    }

    fn old_kind(&mut self, tag: u8) -> Result<OldKind, DecodeError> {
        match tag {
            b'K' => Ok(OldKind::Key),
            b'O' => Ok(OldKind::Full),
            other => self.fail(format!("expected K or O, found {:?}", other as char)),
        }
    }
}

/// Decodes one pgoutput message (the payload of an XLogData frame).
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8()?;
    let msg = match tag {
        b'R' => {
            let oid = r.u32()?;
            let schema = r.string()?;
            let name = r.string()?;
            let replica_identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.string()?;
                let type_oid = r.u32()?;
                let type_modifier = r.i32()?;
                columns.push(RelationColumn { key: flags & 1 == 1, name, type_oid, type_modifier });
            }
            Message::Relation(Relation { oid, schema, name, replica_identity, columns })
        }
        b'Y' => {
            let oid = r.u32()?;
            let schema = r.string()?;
            let name = r.string()?;
            Message::Type { oid, schema, name }
        }
        b'I' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert { relation, new: r.tuple()? },
                other => return r.fail(format!("INSERT: expected N, found {:?}", other as char)),
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut t = r.u8()?;
            if t == b'K' || t == b'O' {
                let kind = r.old_kind(t)?;
                old = Some((kind, r.tuple()?));
                t = r.u8()?;
            }
            if t != b'N' {
                return r.fail(format!("UPDATE: expected N, found {:?}", t as char));
            }
            Message::Update { relation, old, new: r.tuple()? }
        }
        b'D' => {
            let relation = r.u32()?;
            let t = r.u8()?;
            let kind = r.old_kind(t)?;
            Message::Delete { relation, old: (kind, r.tuple()?) }
        }
        b'T' => {
            let n = r.i32()?;
            let options = r.u8()?;
            let mut relations = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                relations.push(r.u32()?);
            }
            Message::Truncate { relations, cascade: options & 1 != 0, restart_identity: options & 2 != 0 }
        }
        b'O' => {
            let lsn = r.u64()?;
            let name = r.string()?;
            Message::Origin { lsn, name }
        }
        other => Message::Other(other),
    };
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds messages the way the server writes them.
    struct W(Vec<u8>);
    impl W {
        fn new(tag: u8) -> Self {
            W(vec![tag])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn s(mut self, v: &str) -> Self {
            self.0.extend_from_slice(v.as_bytes());
            self.0.push(0);
            self
        }
        fn text(self, v: &str) -> Self {
            let mut w = self.u8(b't').i32(v.len() as i32);
            w.0.extend_from_slice(v.as_bytes());
            w
        }
    }

    #[test]
    fn relation_and_changes() {
        let rel = W::new(b'R').i32(16384).s("public").s("items").u8(b'd').i16(2).u8(1).s("id").i32(23).i32(-1).u8(0).s("body").i32(25).i32(-1);
        let Message::Relation(r) = decode(&rel.0).unwrap() else { panic!() };
        assert_eq!((r.oid, r.schema.as_str(), r.name.as_str(), r.replica_identity), (16384, "public", "items", b'd'));
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_oid, 25);

        let ins = W::new(b'I').i32(16384).u8(b'N').i16(2).text("1").u8(b'n');
        assert_eq!(decode(&ins.0).unwrap(), Message::Insert { relation: 16384, new: vec![Datum::Text(b"1".to_vec()), Datum::Null] });

        // An update that changed the key sends the old key first; an
        // unchanged TOAST value is 'u'.
        let upd = W::new(b'U').i32(16384).u8(b'K').i16(2).text("1").u8(b'n').u8(b'N').i16(2).text("2").u8(b'u');
        assert_eq!(
            decode(&upd.0).unwrap(),
            Message::Update {
                relation: 16384,
                old: Some((OldKind::Key, vec![Datum::Text(b"1".to_vec()), Datum::Null])),
                new: vec![Datum::Text(b"2".to_vec()), Datum::Unchanged]
            }
        );
        let upd = W::new(b'U').i32(7).u8(b'N').i16(1).text("x");
        assert_eq!(decode(&upd.0).unwrap(), Message::Update { relation: 7, old: None, new: vec![Datum::Text(b"x".to_vec())] });

        let del = W::new(b'D').i32(16384).u8(b'O').i16(1).text("9");
        assert_eq!(decode(&del.0).unwrap(), Message::Delete { relation: 16384, old: (OldKind::Full, vec![Datum::Text(b"9".to_vec())]) });

        let tr = W::new(b'T').i32(2).u8(3).i32(1).i32(2);
        assert_eq!(decode(&tr.0).unwrap(), Message::Truncate { relations: vec![1, 2], cascade: true, restart_identity: true });
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error_not_a_panic() {
        let ins = W::new(b'I').i32(1).u8(b'N').i16(1).text("hello");
        for cut in 1..ins.0.len() {
            assert!(decode(&ins.0[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&W::new(b'I').i32(1).u8(b'X').0).is_err());
        assert!(decode(&W::new(b'I').i32(1).u8(b'N').i16(1).u8(b'q').0).is_err());
        assert!(decode(&W::new(b'I').i32(1).u8(b'N').i16(1).u8(b't').i32(-5).0).is_err());
        assert!(decode(&[]).is_err());
        assert_eq!(decode(b"Bxxxx").unwrap(), Message::Other(b'B'));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
