//! What the MQTT source keeps in the state directory between runs: which
//! messages it handed out that the broker still waits to hear about.
//!
//! MQTT gives a message no id of its own. A resent message keeps its
//! packet id ([MQTT-4.4.0-1]), and a broker resends in the order it first
//! sent, so the messages held per packet id, oldest first, name the
//! messages it resends. The journal lists the messages handed out and not
//! yet acknowledged, with the counter each was given as its offset; a
//! rerun that finds the destination already holds a counter acknowledges
//! the resend instead of landing it twice.
//!
//! **Format.** JSON lines. The first line is the whole journal (a
//! [`Journal`]), written whole (temporary file, synced, renamed); each
//! later line is one save: what changed since the line before (an
//! [`Update`]), appended in one `write` and synced before the save returns.
//! A save happens before a batch leaves the source and before any
//! acknowledgement goes to the broker, so the journal never lists a
//! message the broker may have let go of, nor lacks one the destination
//! may hold. Appending keeps a save in proportion to what changed, not to
//! how many messages are held; the file is written whole again (compacted)
//! at the first save of a run, after the session is lost, and once the
//! appended lines outgrow the whole journal many times over.
//!
//! **A torn last line.** A save that did not finish (the machine lost
//! power during it, or the disk filled) leaves at most a last line without
//! its newline: it is ignored, as its save never returned, so nothing was
//! acted on. Every line that ends in a newline must read, or the journal
//! is reported damaged. A file of one line without a newline is a whole
//! journal written by an earlier barge (it was renamed into place whole).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub client_id: String,
    /// The topic filter the session is subscribed to (empty: not yet).
    pub filter: String,
    /// The highest counter ever handed out: a new message gets a higher one.
    pub handed: u64,
    /// `(counter, packet id)` of the messages handed out and not yet acknowledged.
    pub held: Vec<(u64, u16)>,
    /// `(old counter, packet id)` of messages an earlier run handed out and
    /// the destination never took, whose counters have since been passed:
    /// handed out again, with new counters, when the broker resends them
    /// (the old counter only keeps their order).
    #[serde(default)]
    pub resend: Vec<(u64, u16)>,
}

/// How the journal lists a message (by its counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// In `held`, with its packet id.
    Held(u16),
    /// In `resend`, with its packet id.
    Resend(u16),
}

/// What changed since the last save: the counter the source has reached,
/// the filter subscribed, and per counter how the journal is to list it
/// now (`None`: not at all).
#[derive(Debug, Clone, Copy)]
pub struct Update<'a> {
    pub handed: u64,
    pub filter: &'a str,
    pub entries: &'a BTreeMap<u64, Option<Listed>>,
}

/// One appended line: an [`Update`] as stored. Each counter appears in one
/// list at most, so the order within a line does not matter.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Line {
    handed: u64,
    filter: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    held: Vec<(u64, u16)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resend: Vec<(u64, u16)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gone: Vec<u64>,
}

/// The journal is written whole again once the lines appended since it
/// last was are this many times its size, and at least COMPACT_MIN bytes:
/// a rerun reads little, and a compaction's cost is spread over many saves.
const COMPACT_RATIO: u64 = 8;
const COMPACT_MIN: u64 = 4 << 20;

pub fn path(state_dir: &Path, shard: &str) -> PathBuf {
    state_dir.join(format!("mqtt-{shard}.json"))
}

fn damaged(path: &Path, line: usize, e: impl std::fmt::Display) -> Error {
    Error::Input {
        file: path.display().to_string(),
        line,
        message: format!("not an MQTT session journal: {e}"),
        hint: Some("it lists the messages barge read and has not acknowledged yet; if you delete it, those messages land again (duplicates) when the broker resends them".into()),
    }
}

impl Journal {
    /// The journal at `path`, or none (the first run of this client id).
    pub fn load(path: &Path) -> Result<Option<Journal>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Read { path: path.to_path_buf(), source: e }),
        };
        let mut lines = bytes.split_inclusive(|&b| b == b'\n').enumerate();
        let Some((_, first)) = lines.next() else { return Err(damaged(path, 1, "the file is empty")) };
        let mut j: Journal = serde_json::from_slice(first).map_err(|e| damaged(path, 1, e))?;
        let mut listed: BTreeMap<u64, Listed> = j.held.iter().map(|&(c, p)| (c, Listed::Held(p))).chain(j.resend.iter().map(|&(c, p)| (c, Listed::Resend(p)))).collect();
        for (i, line) in lines {
            if !line.ends_with(b"\n") {
                // A torn last line: its save never returned.
                break;
            }
            let l: Line = serde_json::from_slice(line).map_err(|e| damaged(path, i + 1, e))?;
            j.handed = l.handed;
            j.filter = l.filter;
            for c in l.gone {
                listed.remove(&c);
            }
            listed.extend(l.held.into_iter().map(|(c, p)| (c, Listed::Held(p))));
            listed.extend(l.resend.into_iter().map(|(c, p)| (c, Listed::Resend(p))));
        }
        j.held.clear();
        j.resend.clear();
        for (c, l) in listed {
            match l {
                Listed::Held(p) => j.held.push((c, p)),
                Listed::Resend(p) => j.resend.push((c, p)),
            }
        }
        Ok(Some(j))
    }
}

/// The journal file a run writes: whole at first, then appended to.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    /// Open for appending once it was written whole in this run; `None`
    /// after a failed append too (it may have left a partial line, which
    /// nothing may follow).
    append: Option<File>,
    whole_len: u64,
    appended: u64,
    /// COMPACT_MIN (smaller in tests).
    compact_min: u64,
}

impl JournalFile {
    /// The journal at `path`; the first save writes it whole.
    pub fn new(path: PathBuf) -> JournalFile {
        JournalFile { path, append: None, whole_len: 0, appended: 0, compact_min: COMPACT_MIN }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the journal say what `update` says on top of what it said.
    /// `whole` gives the entire journal, for when it is written whole
    /// (first save of the run, compaction) or must be (`must_be_whole`:
    /// what it said is void).
    pub fn save(&mut self, update: Update<'_>, must_be_whole: bool, whole: impl FnOnce() -> Journal) -> Result<()> {
        let compact = self.appended >= self.compact_min.max(COMPACT_RATIO.saturating_mul(self.whole_len));
        match self.append.as_mut() {
            Some(file) if !must_be_whole && !compact => {
                let mut l = Line { handed: update.handed, filter: update.filter.to_string(), ..Line::default() };
                for (&c, e) in update.entries {
                    match e {
                        Some(Listed::Held(p)) => l.held.push((c, *p)),
                        Some(Listed::Resend(p)) => l.resend.push((c, *p)),
                        None => l.gone.push(c),
                    }
                }
                let mut bytes = serde_json::to_vec(&l).expect("a journal line serializes");
                bytes.push(b'\n');
                match file.write_all(&bytes).and_then(|()| file.sync_data()) {
                    Ok(()) => {
                        self.appended += bytes.len() as u64;
                        Ok(())
                    }
                    Err(source) => {
                        self.append = None;
                        Err(Error::Write { path: self.path.clone(), source })
                    }
                }
            }
            _ => self.write_whole(&whole()),
        }
    }

    fn write_whole(&mut self, j: &Journal) -> Result<()> {
        self.append = None;
        let mut body = serde_json::to_vec(j).expect("a journal serializes");
        body.push(b'\n');
        crate::util::fs::write_durably(&self.path, &body)?;
        let file = OpenOptions::new().append(true).open(&self.path).map_err(|source| Error::Write { path: self.path.clone(), source })?;
        self.append = Some(file);
        self.whole_len = body.len() as u64;
        self.appended = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update<'a>(handed: u64, entries: &'a BTreeMap<u64, Option<Listed>>) -> Update<'a> {
        Update { handed, filter: "a/#", entries }
    }

    #[test]
    fn a_journal_reads_back_as_written_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "barge-1");
        assert_eq!(Journal::load(&p).unwrap(), None);
        let j = Journal { client_id: "c".into(), filter: "a/#".into(), handed: 41, held: vec![(40, 7), (41, 9)], resend: vec![(39, 3)] };
        let mut f = JournalFile::new(p.clone());
        f.save(update(41, &BTreeMap::new()), false, || j.clone()).unwrap();
        assert_eq!(Journal::load(&p).unwrap(), Some(j));
        std::fs::write(&p, b"{\"client_id\":").unwrap();
        let e = Journal::load(&p).unwrap_err();
        assert!(e.to_string().contains("mqtt-barge-1.json") && e.hint().unwrap().contains("duplicates"), "{e}");
    }

    #[test]
    fn updates_are_appended_and_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "s");
        let mut f = JournalFile::new(p.clone());
        let first = Journal { client_id: "c".into(), filter: String::new(), handed: 3, held: vec![(2, 5), (3, 6)], resend: vec![(1, 4)] };
        f.save(update(3, &BTreeMap::new()), false, || first.clone()).unwrap();
        let whole_len = std::fs::metadata(&p).unwrap().len();
        // 1 is resent under 4; 2 is acknowledged; 7 and 8 are new.
        let step: BTreeMap<_, _> = [(1, None), (2, None), (4, Some(Listed::Held(4))), (7, Some(Listed::Held(9))), (8, Some(Listed::Held(10)))].into();
        f.save(update(8, &step), false, || unreachable!("appended, not written whole")).unwrap();
        // 3 was passed: it waits for its resend; 7 is acknowledged.
        let step: BTreeMap<_, _> = [(3, Some(Listed::Resend(6))), (7, None)].into();
        f.save(update(8, &step), false, || unreachable!()).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > whole_len, "appended");
        let want = Journal { client_id: "c".into(), filter: "a/#".into(), handed: 8, held: vec![(4, 4), (8, 10)], resend: vec![(3, 6)] };
        assert_eq!(Journal::load(&p).unwrap(), Some(want.clone()));
        // A session lost: what the file said is void.
        f.save(update(8, &BTreeMap::new()), true, || Journal { held: vec![], resend: vec![], ..want.clone() }).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 1, "written whole");
        assert_eq!(Journal::load(&p).unwrap().unwrap().held, vec![]);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_the_next_run_writes_the_journal_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "s");
        let mut f = JournalFile::new(p.clone());
        let first = Journal { client_id: "c".into(), filter: "a/#".into(), handed: 1, held: vec![(1, 1)], resend: vec![] };
        f.save(update(1, &BTreeMap::new()), false, || first.clone()).unwrap();
        let step: BTreeMap<_, _> = [(2, Some(Listed::Held(2)))].into();
        f.save(update(2, &step), false, || unreachable!()).unwrap();
        let complete = std::fs::read(&p).unwrap();
        let after_two = Journal::load(&p).unwrap().unwrap();
        assert_eq!(after_two.held, vec![(1, 1), (2, 2)]);
        // A third save cut short at every length: the journal reads as after the second.
        let step: BTreeMap<_, _> = [(1, None), (3, Some(Listed::Held(3)))].into();
        f.save(update(3, &step), false, || unreachable!()).unwrap();
        let with_third = std::fs::read(&p).unwrap();
        for cut in complete.len()..with_third.len() {
            std::fs::write(&p, &with_third[..cut]).unwrap();
            assert_eq!(Journal::load(&p).unwrap().as_ref(), Some(&after_two), "cut at {cut} of {}", with_third.len());
        }
        // A run that recovers from the torn file writes it whole before appending.
        std::fs::write(&p, &with_third[..with_third.len() - 3]).unwrap();
        let mut f = JournalFile::new(p.clone());
        let step: BTreeMap<_, _> = [(4, Some(Listed::Held(4)))].into();
        f.save(update(4, &step), false, || Journal { handed: 4, held: vec![(1, 1), (2, 2), (4, 4)], ..after_two.clone() }).unwrap();
        let step: BTreeMap<_, _> = [(5, Some(Listed::Held(5)))].into();
        f.save(update(5, &step), false, || unreachable!()).unwrap();
        assert_eq!(Journal::load(&p).unwrap().unwrap().held, vec![(1, 1), (2, 2), (4, 4), (5, 5)]);
        // A complete line that does not read is damage, named by its line.
        let mut bad = std::fs::read(&p).unwrap();
        bad.extend_from_slice(b"{\"handed\":\n");
        std::fs::write(&p, &bad).unwrap();
        let e = Journal::load(&p).unwrap_err();
        assert!(e.to_string().contains("mqtt-s.json:3:"), "{e}");
    }

    #[test]
    fn a_journal_of_one_line_without_newline_from_an_earlier_barge_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "s");
        let j = Journal { client_id: "c".into(), filter: "a/#".into(), handed: 9, held: vec![(8, 1)], resend: vec![(7, 2)] };
        std::fs::write(&p, serde_json::to_vec(&j).unwrap()).unwrap();
        assert_eq!(Journal::load(&p).unwrap(), Some(j));
    }

    #[test]
    fn appended_lines_are_compacted_into_a_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "s");
        let mut f = JournalFile::new(p.clone());
        f.compact_min = 4096;
        let mut live = Journal { client_id: "c".into(), filter: "a/#".into(), ..Journal::default() };
        f.save(update(0, &BTreeMap::new()), false, || live.clone()).unwrap();
        let mut wholes = 0;
        // Each save lists a new message and drops the one before: the
        // journal stays small while the lines pile up.
        for c in 1..=500u64 {
            let step: BTreeMap<_, _> = [(c - 1, None), (c, Some(Listed::Held((c % 65_535) as u16 + 1)))].into();
            live.handed = c;
            live.held = vec![(c, (c % 65_535) as u16 + 1)];
            f.save(update(c, &step), false, || {
                wholes += 1;
                live.clone()
            })
            .unwrap();
        }
        assert!(wholes >= 3, "compacted {wholes} times");
        assert!(std::fs::metadata(&p).unwrap().len() <= 4096 + 1024, "{}", std::fs::metadata(&p).unwrap().len());
        assert_eq!(Journal::load(&p).unwrap(), Some(live));
    }
}
