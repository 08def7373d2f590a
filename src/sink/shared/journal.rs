//! Where change capture into files and streams resumes. A database target
//! keeps its position in the same transaction as the data; a file or a
//! stream has no such place, so the position its sink reports durable is
//! written to a file in the run's state directory. A rerun starts after
//! it: changes the sink had buffered but not written are read again
//! (delivery is at least once, and record ids repeat, so consumers can
//! drop the duplicates).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cdc::{ChangeBatch, Tables};
use crate::error::{Error, Result};
use crate::model::{Position, RowBatch};
use crate::progress::Task;
use crate::sink::{BoxFuture, Capabilities, Destination, RowTable};
use crate::transfer::RowPolicy;

pub const FILE_NAME: &str = "cdc-position";

/// How often the position file is rewritten while changes flow: a stream
/// acknowledges every batch, and a synced file write per batch would cost
/// more than the batch. The source may be acknowledged past the file: what
/// lies between is already durable in the sink, so a crash there only
/// delivers it again.
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// A sink whose durable position survives the process.
pub struct Journaled {
    inner: Box<dyn Destination>,
    path: PathBuf,
    /// The furthest position the sink has reported durable.
    durable: Option<Position>,
    /// What the file holds, and when it was written.
    written: Option<Position>,
    written_at: Option<Instant>,
}

impl Journaled {
    pub fn open(inner: Box<dyn Destination>, state_dir: &std::path::Path) -> Result<Journaled> {
        let path = state_dir.join(FILE_NAME);
        let saved = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<Position>().map_err(|e| Error::Input {
                file: path.display().to_string(),
                line: 1,
                message: e,
                hint: Some("the file holds where change capture resumes; delete it to start again from the capture's start (changes are then delivered again)".into()),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Read { path, source: e }),
        };
        Ok(Journaled { inner, path, durable: saved.clone(), written: saved, written_at: None })
    }

    /// Takes the sink's durable position; writes the file when it moved
    /// and `force` or WRITE_EVERY has passed since the last write.
    async fn refresh(&mut self, force: bool) -> Result<Option<Position>> {
        if let Some(p) = self.inner.committed().await? {
            if self.durable.as_ref().is_none_or(|d| p > *d) {
                self.durable = Some(p);
            }
        }
        let due = force || self.written_at.is_none_or(|t| t.elapsed() >= WRITE_EVERY);
        if due && self.durable != self.written {
            if let Some(p) = &self.durable {
                crate::task::state::write_durably(&self.path, p.to_string().as_bytes())?;
                self.written = self.durable.clone();
                self.written_at = Some(Instant::now());
            }
        }
        Ok(self.durable.clone())
    }

    async fn flush_and_record(&mut self) -> Result<()> {
        self.inner.flush().await?;
        self.refresh(true).await.map(|_| ())
    }
}

impl Destination for Journaled {
    fn capabilities(&self) -> Capabilities {
        Capabilities { buffers: true, ..self.inner.capabilities() }
    }

    fn write_rows<'a>(&'a mut self, table: &'a RowTable, rows: mpsc::Receiver<RowBatch>, policy: &'a RowPolicy, progress: &'a Arc<dyn Task>) -> BoxFuture<'a, Result<u64>> {
        self.inner.write_rows(table, rows, policy, progress)
    }

    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        self.inner.write_changes(tables, batch)
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        Box::pin(self.refresh(false))
    }

    /// Writes what the sink holds, then the position file (at once).
    fn flush<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.flush_and_record())
    }

    fn tick<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        self.inner.tick()
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports whatever position it was last told is durable.
    struct Fake(Option<Position>);

    impl Destination for Fake {
        fn capabilities(&self) -> Capabilities {
            Capabilities::NONE
        }
        fn write_rows<'a>(&'a mut self, _: &'a RowTable, _: mpsc::Receiver<RowBatch>, _: &'a RowPolicy, _: &'a Arc<dyn Task>) -> BoxFuture<'a, Result<u64>> {
            Box::pin(async { Ok(0) })
        }
        fn write_changes<'a>(&'a mut self, _: &'a Tables, _: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
            Box::pin(async move { Ok(self.0.clone()) })
        }
    }

    #[tokio::test]
    async fn the_durable_position_survives_a_restart_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journaled::open(Box::new(Fake(None)), dir.path()).unwrap();
        assert_eq!(j.committed().await.unwrap(), None);
        j.inner = Box::new(Fake(Some(Position::pg(200))));
        assert_eq!(j.committed().await.unwrap(), Some(Position::pg(200)));
        // A new process: the sink knows nothing yet, the file does.
        let mut j = Journaled::open(Box::new(Fake(None)), dir.path()).unwrap();
        assert_eq!(j.committed().await.unwrap(), Some(Position::pg(200)));
        j.inner = Box::new(Fake(Some(Position::pg(100))));
        assert_eq!(j.committed().await.unwrap(), Some(Position::pg(200)), "never moves back");
        std::fs::write(dir.path().join(FILE_NAME), "pg:nonsense").unwrap();
        let e = Journaled::open(Box::new(Fake(None)), dir.path()).err().expect("a damaged file is an error");
        assert!(e.to_string().contains(FILE_NAME), "{e}");
    }

    #[tokio::test]
    async fn the_file_is_rewritten_at_most_once_a_second_and_always_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let mut j = Journaled::open(Box::new(Fake(Some(Position::pg(10)))), dir.path()).unwrap();
        assert_eq!(j.committed().await.unwrap(), Some(Position::pg(10)));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), Position::pg(10).to_string());
        j.inner = Box::new(Fake(Some(Position::pg(20))));
        assert_eq!(j.committed().await.unwrap(), Some(Position::pg(20)), "the source may move on at once");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), Position::pg(10).to_string(), "no second write within a second");
        j.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), Position::pg(20).to_string(), "flush writes it");
    }
}
