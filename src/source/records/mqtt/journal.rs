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
//! Written whole (temporary file, synced, renamed) before a batch leaves
//! the source, and before any acknowledgement goes to the broker, so it
//! never lists a message the broker may have let go of.

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

pub fn path(state_dir: &Path, shard: &str) -> PathBuf {
    state_dir.join(format!("mqtt-{shard}.json"))
}

impl Journal {
    /// The journal at `path`, or none (the first run of this client id).
    pub fn load(path: &Path) -> Result<Option<Journal>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Input {
                file: path.display().to_string(),
                line: e.line(),
                message: format!("not an MQTT session journal: {e}"),
                hint: Some("it lists the messages barge read and has not acknowledged yet; if you delete it, those messages land again (duplicates) when the broker resends them".into()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Read { path: path.to_path_buf(), source: e }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let body = serde_json::to_vec(self).expect("a journal serializes");
        crate::util::fs::write_durably(path, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_reads_back_as_written_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "barge-1");
        assert_eq!(Journal::load(&p).unwrap(), None);
        let j = Journal { client_id: "c".into(), filter: "a/#".into(), handed: 41, held: vec![(40, 7), (41, 9)], resend: vec![(39, 3)] };
        j.save(&p).unwrap();
        assert_eq!(Journal::load(&p).unwrap(), Some(j));
        std::fs::write(&p, b"{\"client_id\":").unwrap();
        let e = Journal::load(&p).unwrap_err();
        assert!(e.to_string().contains("mqtt-barge-1.json") && e.hint().unwrap().contains("duplicates"), "{e}");
    }
}
