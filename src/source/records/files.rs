//! `s3://bucket/prefix` and `file:///dir` as a record source, as DMS's S3
//! source reads a bucket: the files under the prefix, in key order, each
//! row a record of the table `--schema` defines.
//!
//! - `--record-format json`: JSON lines (`.jsonl`, `.ndjson`, `.json`);
//!   `csv`: CSV (`.csv`) whose header line names the columns (with
//!   `--no-header`, fields in the order of the table's columns);
//!   `parquet`: Parquet (`.parquet`), columns by name. `.gz` and `.zst`
//!   files are decompressed. Other files are named on the console and
//!   left alone.
//! - A file is streamed, not held: read on a thread of its own (one GET
//!   on S3), decompressed as it arrives and cut into records a block at a
//!   time (`files_feed`), so memory does not grow with its size. A Parquet
//!   object is first copied into the state directory: Parquet is read from
//!   its end.
//! - A record's shard is its file's key and its offset the line (the row
//!   for Parquet) it starts on, so the default layout's key is the same
//!   on every run.
//! - The position is one shard, [`SHARD`]: the number of files finished
//!   times 10^20, plus the byte offset after the last record handed out
//!   in the file being read (the row for Parquet). It only grows, and a
//!   file counts as done once a position past it is acknowledged.
//! - A number is not a key: the state directory keeps which file had
//!   which number ([`JOURNAL`], written before the file's first record
//!   goes out). A restart resumes after the last finished file by key, and
//!   refuses a file that sorts before what was read but was not read (it
//!   appeared later: reading it now would break key order, skipping it
//!   would lose it), naming it. Finished files may be deleted.
//! - With `--mode cdc` the listing is polled for new files, which must
//!   sort after the last one read in their folder (time-stamped names do).
//! - barge's and DMS's S3 layout is read as it was written: in each
//!   folder the full-load files (`LOAD00000001.csv`, and any other name)
//!   come before the CDC files (named by time, `20240131-235959123-….csv`),
//!   and CDC files of every folder are read in the order of their times.
//!   [`RecordSource::table_of`] names a file's table by its folders
//!   (`schema/table/file`), and rows with an `Op` column are applied as
//!   inserts, updates and deletes (see `changes`). The `errors/` folder
//!   barge writes beside the tables holds records set aside, not rows:
//!   it is named on the console and left alone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::files_feed::{self, compression_of, Feed, Origin, Piece, Reading};
use super::shape::RecordFormat;
use super::{OpenOptions, Record, RecordBatch, RecordSource, StartAt};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::sink::store::ObjectTarget;
use crate::sink::BoxFuture;

/// The position's one shard.
pub const SHARD: &str = "files";
/// Files finished count in units of this (a byte offset stays below it).
const STRIDE: u128 = 100_000_000_000_000_000_000;
/// Which file had which number, one JSON line per file opened.
pub const JOURNAL: &str = "files-read.jsonl";
/// Most bytes of records handed out in one batch.
const BATCH_BYTES: usize = 1 << 20;
/// Small enough that a large file spans several batches, so its progress
/// is saved inside it.
const BATCH_RECORDS: usize = 2_000;
/// The longest record cut from a text file (a CSV quote that never
/// closes would otherwise hold the rest of the file in memory).
const MAX_RECORD: usize = 256 << 20;
/// How often the listing is read again when following.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    JsonLines,
    /// CSV with a header line: rows become [`RecordFormat::Fields`] objects.
    CsvNamed,
    /// CSV without one: each record's raw text, fields by place.
    CsvPlaced,
    Parquet,
}

impl Kind {
    fn of(format: RecordFormat) -> Option<Kind> {
        match format {
            RecordFormat::Json | RecordFormat::Dms | RecordFormat::Debezium => Some(Kind::JsonLines),
            RecordFormat::Fields => Some(Kind::CsvNamed),
            RecordFormat::Csv => Some(Kind::CsvPlaced),
            RecordFormat::Parquet => Some(Kind::Parquet),
            RecordFormat::Text | RecordFormat::Bytes => None,
        }
    }

    /// Whether a file named `name` (compression suffix removed) is of this kind.
    fn reads(self, name: &str) -> bool {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        match self {
            Kind::JsonLines => matches!(ext.as_str(), "jsonl" | "ndjson" | "json"),
            Kind::CsvNamed | Kind::CsvPlaced => ext == "csv",
            Kind::Parquet => ext == "parquet",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::JsonLines => "JSON lines (.jsonl, .ndjson, .json)",
            Kind::CsvNamed | Kind::CsvPlaced => "CSV (.csv)",
            Kind::Parquet => "Parquet (.parquet)",
        }
    }
}

/// One line of the journal: the `index`-th file read (from 0) is `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Started {
    index: u64,
    key: String,
    /// Its size and version when it was opened (absent in journals of
    /// earlier barges): a file that differs later was changed after
    /// barge read it, and is refused rather than half read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// A listed file: its key, its path, its size and version.
type Listed = (String, Path, u64, Option<String>);

/// One record's place in a block of text.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The line it starts on, from 1 at the block's first line.
    line: u64,
    start: u64,
    /// Where the next record starts.
    end: u64,
}

/// A record cut from its file, not yet handed out.
struct Ready {
    /// The line it starts on (Parquet: its row), from 1.
    line: u64,
    /// Where the next record starts in the (decompressed) file: the
    /// in-file part of the position once this one is handed out.
    end: u64,
    /// Its raw text (a Parquet row: its `Fields` object).
    data: Vec<u8>,
}

/// The file being read: text arrives in blocks from its [`Feed`] and is
/// cut into records; a record cut across two blocks waits for the second.
struct Current {
    key: String,
    feed: Feed,
    /// The feed said it handed over everything.
    ended: bool,
    /// Text received and not yet cut: it starts at byte `base` of the
    /// file, after `lines` lines, on a record's start (or the header's).
    text: Vec<u8>,
    base: u64,
    lines: u64,
    /// CSV header names, once read.
    header: Option<Vec<String>>,
    /// Parquet rows received.
    rows: u64,
    ready: VecDeque<Ready>,
    /// Where the last record handed out ends.
    end: u64,
    /// Resuming: records that end at or before this were acknowledged by
    /// an earlier run, and one must end exactly there.
    skip_to: u64,
}

pub struct FilesSource {
    store: ObjectTarget,
    /// `s3://bucket/` or `/dir/`: a key's full name is this and the key.
    base: String,
    display: String,
    kind: Kind,
    follow: bool,
    journal: PathBuf,
    /// Files finished (the position's count).
    count: u64,
    /// Keys of finished files.
    done: BTreeSet<String>,
    /// The last file opened (finished or being read) in each folder, by
    /// its [`order`].
    last: BTreeMap<String, Order>,
    /// The prefix's part of every key (`prefix/`, or empty).
    prefix: String,
    /// Rows with an `Op` column are applied as changes (else refused).
    changes: bool,
    /// The file an earlier run was reading, and where to go on in it.
    resume: Option<(String, u64)>,
    queue: VecDeque<Listed>,
    /// Size and version of each file opened (finished or being read), as
    /// the journal has them.
    opened: HashMap<String, (u64, Option<String>)>,
    current: Option<Current>,
    /// Files of another kind, named once.
    skipped: HashSet<String>,
    /// A `file://` directory, whose files are read straight from the disk.
    local: Option<PathBuf>,
    /// Where a Parquet object is copied to be read.
    spool: PathBuf,
    /// Decompressed text taken from a file at a time.
    block: usize,
}

fn parse_offset(s: &str) -> Option<(u64, u64)> {
    let n: u128 = s.parse().ok()?;
    Some(((n / STRIDE).try_into().ok()?, (n % STRIDE) as u64))
}

fn offset(count: u64, within: u64) -> String {
    (count as u128 * STRIDE + within as u128).to_string()
}

impl FilesSource {
    pub async fn open(ep: &Endpoint, opts: OpenOptions) -> Result<FilesSource> {
        let display = ep.to_string();
        let kind = Kind::of(opts.format).ok_or_else(|| Error::usage(format!("{display}: files are read as --record-format json (JSON lines), csv or parquet")))?;
        if opts.start != StartAt::Earliest {
            return Err(Error::usage(format!("{display}: files are read from the first one in key order; --start-position applies to streams"))
                .with_hint("leave --start-position out; to skip files, move them out from under the prefix"));
        }
        let base = match ep {
            Endpoint::Dir(d) => {
                // The target side creates a missing directory; a source
                // must not pretend an empty one was read.
                if !d.path.is_dir() {
                    return Err(Error::usage(format!("{display}: directory {} does not exist", d.path.display())));
                }
                format!("{}/", d.path.display().to_string().trim_end_matches('/'))
            }
            Endpoint::S3(s) => format!("s3://{}/", s.bucket),
            other => return Err(Error::usage(format!("{other} is not a files source"))),
        };
        let prefix = match ep {
            Endpoint::S3(s) => s.prefix.split('/').filter(|p| !p.is_empty()).map(|p| format!("{p}/")).collect(),
            _ => String::new(),
        };
        let store = ObjectTarget::open(ep)?;
        let local = match ep {
            Endpoint::Dir(d) => Some(d.path.clone()),
            _ => None,
        };
        let (count, within) = match opts.from.iter().find(|(k, _)| k.as_str() != SHARD) {
            Some((k, _)) => return Err(Error::usage(format!("{display}: the saved position has shard {k}, which a files source does not keep (only {SHARD}=…)"))),
            None => match opts.from.get(SHARD) {
                Some(o) => parse_offset(o).ok_or_else(|| Error::usage(format!("{display}: saved position {SHARD}={o} is not a files position")))?,
                None => (0, 0),
            },
        };
        let journal = opts.state_dir.join(JOURNAL);
        let started = read_journal(&journal)?;
        let mut me = FilesSource {
            store,
            base,
            display,
            kind,
            follow: opts.follow,
            journal,
            count,
            done: BTreeSet::new(),
            last: BTreeMap::new(),
            prefix,
            changes: opts.changes,
            resume: None,
            queue: VecDeque::new(),
            current: None,
            skipped: HashSet::new(),
            local,
            opened: HashMap::new(),
            spool: opts.state_dir.join("files-spool.parquet"),
            block: files_feed::BLOCK,
        };
        me.restore(started, within)?;
        Ok(me)
    }

    /// Takes back what an earlier run finished (files numbered below the
    /// saved count) and the file it was in, and drops the rest from the
    /// journal: those files were not acknowledged and are read again.
    fn restore(&mut self, started: Vec<Started>, within: u64) -> Result<()> {
        let mut kept = Vec::new();
        for s in started {
            if s.index < self.count || (s.index == self.count && within > 0) {
                if s.index < self.count {
                    self.done.insert(s.key.clone());
                } else {
                    self.resume = Some((s.key.clone(), within));
                }
                self.note_last(&s.key);
                if let Some(size) = s.size {
                    self.opened.insert(s.key.clone(), (size, s.version.clone()));
                }
                kept.push(s);
            }
        }
        if (within > 0 && self.resume.is_none()) || self.done.len() as u64 != self.count {
            return Err(Error::usage(format!("{}: the target has a saved position ({SHARD}={}) but the state directory does not say which files it covers ({} is missing or shorter)", self.display, offset(self.count, within), self.journal.display()))
                .with_hint("rerun with the --state-dir of the earlier run; to read every file again, delete the records from the target (or use a new target table) and a new --state-dir"));
        }
        let mut body = Vec::new();
        for s in &kept {
            serde_json::to_writer(&mut body, s).map_err(|e| Error::other(e.to_string()))?;
            body.push(b'\n');
        }
        crate::util::fs::write_durably(&self.journal, &body)
    }

    fn full_name(&self, key: &str) -> String {
        format!("{}{key}", self.base)
    }

    /// Reads the listing again: files after the last one opened in their
    /// folder join the queue; one before it that was never read is refused.
    async fn refresh(&mut self) -> Result<()> {
        let queued: HashSet<String> = self.queue.iter().map(|(k, ..)| k.clone()).collect();
        let listed = self.store.list_versions().await?;
        for (path, size, version) in listed {
            let key = path.as_ref().to_string();
            let reading = self.current.as_ref().is_some_and(|c| c.key == key);
            let resumed = self.resume.as_ref().is_some_and(|(k, _)| *k == key);
            if (self.done.contains(&key) || resumed) && !reading {
                self.refuse_changed(&key, size, version.as_deref())?;
            }
            if self.done.contains(&key) || queued.contains(&key) || reading || self.skipped.contains(&key) {
                continue;
            }
            if key.strip_prefix(&self.prefix).is_some_and(|rel| rel.starts_with("errors/")) {
                tracing::warn!("{}: skipping {}: barge's errors/ folder holds records set aside with their reasons, not rows", self.display, self.full_name(&key));
                self.skipped.insert(key);
                continue;
            }
            let name = path.filename().unwrap_or("");
            let (_, plain) = compression_of(name);
            let why = if name.starts_with('.') {
                Some("a hidden file (writers stage unfinished files under such names)".to_string())
            } else if self.local.is_some() && name.contains('#') {
                // object_store stages a local multipart upload as NAME#N.
                Some("a name with '#' is how an unfinished upload into a directory is staged; rename it without '#' to have it read".to_string())
            } else if !self.kind.reads(plain) {
                Some(format!("not a {} file", self.kind.name()))
            } else {
                None
            };
            if let Some(why) = why {
                tracing::warn!("{}: skipping {}: {why}", self.display, self.full_name(&key));
                self.skipped.insert(key);
                continue;
            }
            let at = order(&key);
            let resumed = self.resume.as_ref().is_some_and(|(k, _)| *k == key);
            if let Some(last) = self.last.get(folder(&key)).filter(|l| at <= **l && !resumed) {
                return Err(Error::Endpoint {
                    endpoint: self.display.clone(),
                    message: format!(
                        "{} appeared after barge had read past it: in its folder it comes before {}, which was already read, and files are read once, in order (full-load files, then CDC files by time)",
                        self.full_name(&key),
                        self.full_name(&last.2)
                    ),
                    hint: Some(format!("give it a name that sorts after {} (rename or copy it there, e.g. with a time-stamped name) and rerun; or, to read everything again, use a new --state-dir and an emptied target table", last.2)),
                });
            }
            self.queue.push_back((key, path, size, version));
        }
        self.queue.make_contiguous().sort_by_cached_key(|(k, ..)| order(k));
        if let Some((want, at)) = &self.resume {
            // The file the last run was in goes first; files that joined
            // other folders meanwhile come after it.
            match self.queue.iter().position(|(k, ..)| k == want) {
                Some(i) => {
                    let f = self.queue.remove(i).expect("in the queue");
                    self.queue.push_front(f);
                }
                None => {
                    let msg = format!("{}, which the last run was reading (up to byte {at}), is gone", self.full_name(want));
                    return Err(Error::Endpoint { endpoint: self.display.clone(), message: msg, hint: Some(format!("put {} back and rerun", self.full_name(want))) });
                }
            }
        }
        Ok(())
    }

    fn note_last(&mut self, key: &str) {
        let at = order(key);
        let last = self.last.entry(folder(key).to_string()).or_insert_with(|| at.clone());
        if at > *last {
            *last = at;
        }
    }

    /// Opens the next queued file: numbered in the journal first, so a
    /// position inside it always has its key on record. Its reading starts
    /// on a thread of its own.
    async fn open_next(&mut self) -> Result<()> {
        let (key, path, size, version) = self.queue.pop_front().expect("a queued file");
        let within = match self.resume.take() {
            Some((k, at)) if k == key => at,
            _ => {
                self.note_started(&key, size, version.clone())?;
                0
            }
        };
        self.opened.insert(key.clone(), (size, version));
        let name = path.filename().unwrap_or("").to_string();
        let origin = match &self.local {
            Some(root) => Origin::Local(root.join(key.as_str())),
            None => Origin::Store(self.store.clone(), path),
        };
        let reading = match self.kind {
            Kind::Parquet => Reading::Parquet { spool: self.spool.clone() },
            _ => Reading::Text { compression: compression_of(&name).0, block: self.block },
        };
        let feed = files_feed::start(origin, reading, self.full_name(&key));
        self.note_last(&key);
        self.current = Some(Current { key, feed, ended: false, text: Vec::new(), base: 0, lines: 0, header: None, rows: 0, ready: VecDeque::new(), end: within, skip_to: within });
        Ok(())
    }

    /// A bounded run that found files, none of them of the kind it reads,
    /// has done nothing the user asked for: it fails, saying what it saw.
    /// No file at all is said, and is not an error (nothing there yet).
    fn nothing_read(&self) -> Result<()> {
        if self.count > 0 || !self.opened.is_empty() {
            return Ok(());
        }
        if self.skipped.is_empty() {
            tracing::warn!("{}: no files to read", self.display);
            return Ok(());
        }
        let mut kinds: Vec<String> = self.skipped.iter().filter_map(|k| compression_of(k).1.rsplit_once('.').map(|(_, e)| format!(".{}", e.to_ascii_lowercase()))).collect();
        kinds.sort();
        kinds.dedup();
        Err(Error::Endpoint {
            endpoint: self.display.clone(),
            message: format!("none of its {} files is a {} file (it has {})", self.skipped.len(), self.kind.name(), if kinds.is_empty() { "files without an extension".to_string() } else { kinds.join(", ") }),
            hint: Some("say how to read them: --record-format csv (.csv), json (.jsonl, .ndjson, .json) or parquet (.parquet); .gz and .zst are read as the kind they compress".into()),
        })
    }

    /// A file read (or partly read) before that is not as it was then:
    /// appended to, rewritten or replaced. Reading it again would repeat
    /// rows, and not reading it would lose them, so the run stops.
    fn refuse_changed(&self, key: &str, size: u64, version: Option<&str>) -> Result<()> {
        let Some((was, was_version)) = self.opened.get(key) else { return Ok(()) };
        let changed = *was != size || (was_version.is_some() && version.is_some() && was_version.as_deref() != version);
        if !changed {
            return Ok(());
        }
        let how = if *was != size { format!("{was} bytes when barge read it, {size} now") } else { "rewritten since barge read it (same size, new version)".to_string() };
        Err(Error::Endpoint {
            endpoint: self.display.clone(),
            message: format!("{} changed after barge read it ({how}): files are read once, so its new content would be lost, or its rows repeated", self.full_name(key)),
            hint: Some("put the file back as it was, and give new content a new name that sorts after the last file (e.g. time-stamped); writers should write a file whole, under a temporary name, then rename it in place".into()),
        })
    }

    fn note_started(&self, key: &str, size: u64, version: Option<String>) -> Result<()> {
        let mut line = serde_json::to_vec(&Started { index: self.count, key: key.to_string(), size: Some(size), version }).map_err(|e| Error::other(e.to_string()))?;
        line.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.journal)?;
            f.write_all(&line)?;
            f.sync_data()
        };
        write().map_err(|source| Error::Write { path: self.journal.clone(), source })
    }

    /// The current file's next records, up to the batch limits.
    async fn take(&mut self) -> Result<Vec<Record>> {
        let kind = self.kind;
        let (display, changes) = (self.display.clone(), self.changes);
        let stream = self.full_name(&self.current.as_ref().expect("a file").key);
        let cur = self.current.as_mut().expect("a file");
        let mut records = Vec::new();
        let mut bytes = 0;
        while bytes < BATCH_BYTES && records.len() < BATCH_RECORDS {
            let Some(r) = cur.ready.pop_front() else {
                if cur.ended {
                    break;
                }
                cur.receive(kind, &stream, &display).await?;
                continue;
            };
            let data = match kind {
                Kind::CsvNamed => named_fields(cur.header.as_deref().unwrap_or(&[]), &r.data, &stream, r.line)?,
                _ => r.data,
            };
            if !changes && data.windows(4).any(|w| w == b"\"Op\"") {
                if let Ok(obj) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&data) {
                    refuse_changes(&obj).map_err(|why| {
                        Error::other(format!("{stream} line {}: {why}", r.line)).with_hint("give --schema FILE with the table's CREATE TABLE: rows with Op U and D are then applied as updates and deletes by key")
                    })?;
                }
            }
            bytes += data.len();
            cur.end = r.end;
            records.push(Record { shard: cur.key.clone(), offset: r.line.to_string(), stream: stream.clone(), key: None, time: None, data });
        }
        Ok(records)
    }

    fn position(&self) -> std::collections::BTreeMap<String, String> {
        let within = self.current.as_ref().map_or(0, |c| c.end);
        [(SHARD.to_string(), offset(self.count, within))].into()
    }
}

impl Current {
    /// Takes the feed's next piece and cuts what it can into records.
    async fn receive(&mut self, kind: Kind, file: &str, display: &str) -> Result<()> {
        match self.feed.recv().await {
            None => Err(Error::other(format!("{file}: the thread reading it stopped before the end of the file")).with_hint("rerun: the file is read again from the last record the target acknowledged")),
            Some(Err(e)) => Err(e),
            Some(Ok(Piece::Text(block))) => {
                if self.text.is_empty() {
                    self.text = block;
                } else {
                    self.text.extend_from_slice(&block);
                }
                if kind == Kind::JsonLines && self.base == 0 && self.text.starts_with(b"\xEF\xBB\xBF") {
                    // A UTF-8 byte-order mark is not part of the first
                    // record (JSON has none); offsets stay the file's own.
                    self.text.drain(..3);
                    self.base = 3;
                }
                self.cut(kind, false, file, display)
            }
            Some(Ok(Piece::Rows(rows))) => {
                for data in rows {
                    self.rows += 1;
                    self.offer(Ready { line: self.rows, end: self.rows, data }, file, display)?;
                }
                Ok(())
            }
            Some(Ok(Piece::End)) => {
                self.ended = true;
                if kind != Kind::Parquet {
                    self.cut(kind, true, file, display)?;
                }
                if self.skip_to > 0 {
                    return Err(changed(file, display, self.skip_to));
                }
                Ok(())
            }
        }
    }

    /// Cuts the text received into records. Until the file ended, the
    /// last record found may go on in the next block, so it stays, with
    /// everything after it.
    fn cut(&mut self, kind: Kind, last: bool, file: &str, display: &str) -> Result<()> {
        let (header, spans) = match kind {
            Kind::JsonLines => (None, line_spans(&self.text)),
            Kind::CsvNamed | Kind::CsvPlaced => {
                let want_header = kind == Kind::CsvNamed && self.header.is_none();
                let bad = |line: u64, why: String| Error::other(format!("{file}: line {line}: {why}")).with_hint("fix the file, or move it out from under the prefix, and rerun");
                csv_spans(&self.text, want_header).map_err(|(line, why)| bad(self.lines + line, why))?
            }
            Kind::Parquet => unreachable!("Parquet rows are not cut"),
        };
        let keep = if last { spans.len() } else { spans.len().saturating_sub(1) };
        if keep == 0 && !last {
            // Not one whole record yet (nor a header known to be whole),
            // unless one runs on without end.
            if self.text.len() > MAX_RECORD {
                let hint = if kind == Kind::JsonLines { "a JSON line this long is not a record barge reads: split it" } else { "look for a quote that opens a field and never closes (from that line on, every line is one field)" };
                return Err(Error::other(format!("{file}: line {}: one record runs past {} MiB without ending", self.lines + 1, MAX_RECORD >> 20)).with_hint(hint));
            }
            return Ok(());
        }
        if last && kind != Kind::JsonLines {
            // The CSV reader takes a quote that never closes as a field
            // that runs to the end of the file, and says nothing.
            if let Some(s) = spans.last().filter(|s| quote_left_open(&self.text[s.start as usize..s.end as usize])) {
                return Err(Error::other(format!("{file}: line {}: a quoted field opens and never closes before the end of the file", self.lines + s.line))
                    .with_hint("close the quote (a quote inside a quoted field is written twice: \"\"), or check that the file was written whole, then rerun"));
            }
        }
        if let Some(h) = header {
            // Whole: a record follows it, or the file ended.
            self.header = Some(header_names(&h).map_err(|why| Error::other(format!("{file}: line {}: {why}", self.lines + 1)).with_hint("fix the file, or move it out from under the prefix, and rerun"))?);
        }
        let (base, lines) = (self.base, self.lines);
        for s in &spans[..keep] {
            let data = self.text[s.start as usize..s.end as usize].to_vec();
            self.offer(Ready { line: lines + s.line, end: base + s.end, data }, file, display)?;
        }
        match spans.get(keep) {
            Some(rest) => {
                self.text.drain(..rest.start as usize);
                self.base += rest.start;
                self.lines += rest.line - 1;
            }
            None => {
                self.base += self.text.len() as u64;
                self.text.clear();
            }
        }
        Ok(())
    }

    /// Queues a record, or passes over it when an earlier run's target
    /// already has it.
    fn offer(&mut self, r: Ready, file: &str, display: &str) -> Result<()> {
        if self.skip_to > 0 {
            if r.end < self.skip_to {
                return Ok(());
            }
            if r.end > self.skip_to {
                return Err(changed(file, display, self.skip_to));
            }
            self.skip_to = 0;
            return Ok(());
        }
        self.ready.push_back(r);
        Ok(())
    }
}

/// An earlier run's position inside a file that is not where a record
/// ends now: the file changed.
fn changed(file: &str, display: &str, within: u64) -> Error {
    Error::Endpoint {
        endpoint: display.to_string(),
        message: format!("{file} changed since the last run read it up to offset {within}: that is not where a record ends now"),
        hint: Some("files must not change once written; put the original back, or give the new content a new key after the last file".into()),
    }
}

/// A file's place in reading order: full-load files (and any other
/// name) by key, then CDC files (named by time, as barge and DMS name
/// them) by that time across folders; the key last.
type Order = (u8, String, String);

fn order(key: &str) -> Order {
    let name = key.rsplit('/').next().unwrap_or(key);
    let b = name.as_bytes();
    let timed = b.len() > 15 && b[..8].iter().all(u8::is_ascii_digit) && b[8] == b'-' && b[9..15].iter().all(u8::is_ascii_digit);
    if timed {
        (1, name.to_string(), key.to_string())
    } else {
        (0, key.to_string(), key.to_string())
    }
}

/// The folder of a key (empty for a key at the top).
fn folder(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(f, _)| f)
}

fn read_journal(path: &std::path::Path) -> Result<Vec<Started>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::other(format!("reading {}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Started>(line) {
            Ok(s) => out.push(s),
            // A crash in the middle of appending the last line: that file
            // had no record out yet.
            Err(_) if i + 1 == text.lines().count() => {}
            Err(e) => return Err(Error::other(format!("{} line {}: {e}", path.display(), i + 1)).with_hint("the state directory is damaged; rerun with a new --state-dir and an emptied target table to read every file again")),
        }
    }
    Ok(out)
}

/// Non-blank lines (a record each), with where each starts and ends.
fn line_spans(data: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut line = 0;
    while start < data.len() {
        line += 1;
        let end = data[start..].iter().position(|&b| b == b'\n').map(|i| start + i + 1).unwrap_or(data.len());
        if data[start..end].iter().any(|b| !b.is_ascii_whitespace()) {
            spans.push(Span { line, start: start as u64, end: end as u64 });
        }
        start = end;
    }
    spans
}

/// CSV records (a quoted field may span lines), after the header line
/// when `header`, which is returned as it is; an error says on which line
/// (from 1 at the start of `data`) and why.
fn csv_spans(data: &[u8], header: bool) -> std::result::Result<(Option<csv::ByteRecord>, Vec<Span>), (u64, String)> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(data);
    let mut rec = csv::ByteRecord::new();
    let mut spans = Vec::new();
    let mut names = None;
    // Lines counted by hand, from where each record starts.
    let (mut line, mut counted) = (1u64, 0usize);
    loop {
        // The reader stops before a record's line end: skip it (and
        // blank lines) to where the next record starts.
        let mut start = r.position().byte() as usize;
        while start < data.len() && matches!(data[start], b'\r' | b'\n') {
            start += 1;
        }
        line += data[counted..start].iter().filter(|&&b| b == b'\n').count() as u64;
        counted = start;
        match r.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let end = r.position().byte();
                if header && names.is_none() {
                    names = Some(rec.clone());
                    continue;
                }
                spans.push(Span { line, start: start as u64, end });
            }
            Err(e) => return Err((line, format!("not CSV: {e}"))),
        }
    }
    Ok((names, spans))
}

/// Whether a CSV record ends inside a quoted field: a quote opens one
/// only at a field's start, `""` inside it is a quote, and the next lone
/// quote closes it (a quote inside an unquoted field is a character).
fn quote_left_open(raw: &[u8]) -> bool {
    let (mut quoted, mut at_start, mut i) = (false, true, 0);
    while i < raw.len() {
        let b = raw[i];
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if at_start && b == b'"' {
            quoted = true;
            at_start = false;
        } else {
            at_start = matches!(b, b',' | b'\n' | b'\r');
        }
        i += 1;
    }
    quoted
}

/// A header line's names, as text.
fn header_names(rec: &csv::ByteRecord) -> std::result::Result<Vec<String>, String> {
    rec.iter().map(|f| std::str::from_utf8(f).map(|s| s.trim_start_matches('\u{feff}').to_string())).collect::<std::result::Result<_, _>>().map_err(|_| "the header line is not UTF-8".to_string())
}

/// A CSV record read by its file's header, as a [`RecordFormat::Fields`]
/// object: an empty field is NULL.
fn named_fields(header: &[String], raw: &[u8], file: &str, line: u64) -> Result<Vec<u8>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(raw);
    let mut rec = csv::StringRecord::new();
    let bad = |why: String| Error::other(format!("{file} line {line}: {why}")).with_hint("fix the line (or move the file out from under the prefix) and rerun");
    r.read_record(&mut rec).map_err(|e| bad(format!("not CSV: {e}")))?;
    if rec.len() != header.len() {
        return Err(bad(format!("{} fields, and the header line names {}", rec.len(), header.len())));
    }
    // An empty field is NULL; `""` is an empty string (read as NULL by
    // columns that hold no text).
    let quoted = super::shape::quoted_fields(raw);
    let mut obj = serde_json::Map::with_capacity(header.len());
    for ((name, v), q) in header.iter().zip(rec.iter()).zip(quoted.into_iter().chain(std::iter::repeat(false))) {
        obj.insert(name.clone(), if v.is_empty() && !q { serde_json::Value::Null } else { serde_json::Value::String(v.to_string()) });
    }
    serde_json::to_vec(&obj).map_err(|e| Error::other(e.to_string()))
}

/// A row with an `Op` column (barge's and DMS's CDC files) other than `I`
/// is an update or a delete: storing it as a row (the default layout)
/// would put a deleted row back.
fn refuse_changes(obj: &serde_json::Map<String, serde_json::Value>) -> std::result::Result<(), String> {
    match obj.get("Op").and_then(|v| v.as_str()) {
        Some(op) if op != "I" => Err(format!(
            "Op is {op}: this row is a change (an update or a delete, from a CDC file), and a files source reads rows as inserts only; read the LOAD files, or files with Op I only"
        )),
        _ => Ok(()),
    }
}

impl RecordSource for FilesSource {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<RecordBatch>>> {
        Box::pin(async move {
            loop {
                if self.current.is_none() {
                    if self.queue.is_empty() {
                        self.refresh().await?;
                    }
                    if self.queue.is_empty() {
                        if !self.follow {
                            self.nothing_read()?;
                            return Ok(None);
                        }
                        tokio::time::sleep(POLL).await;
                        return Ok(Some(RecordBatch { records: Vec::new(), position: self.position() }));
                    }
                    self.open_next().await?;
                }
                let records = self.take().await?;
                let finished = self.current.as_ref().is_some_and(|c| c.ended && c.ready.is_empty());
                if finished {
                    let key = self.current.take().expect("a file").key;
                    self.done.insert(key);
                    self.count += 1;
                }
                if !records.is_empty() || finished {
                    return Ok(Some(RecordBatch { records, position: self.position() }));
                }
            }
        })
    }

    fn table_of(&self, r: &Record) -> Option<(Option<String>, String)> {
        let rel = r.shard.strip_prefix(&self.prefix)?;
        let parts: Vec<&str> = rel.split('/').collect();
        match parts.len() {
            0..=1 => None,
            2 => Some((None, parts[0].to_string())),
            n => Some((Some(parts[n - 3].to_string()), parts[n - 2].to_string())),
        }
    }

    fn names_its_table(&self, r: &Record) -> bool {
        let name = r.shard.rsplit('/').next().unwrap_or("");
        let load = name.strip_prefix("LOAD").is_some_and(|n| n.as_bytes().first().is_some_and(u8::is_ascii_digit));
        load || order(&r.shard).0 == 1
    }

    fn describe(&self, r: &Record) -> String {
        let unit = if self.kind == Kind::Parquet { "row" } else { "line" };
        format!("{} {unit} {}", r.stream, r.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_only_grows() {
        assert_eq!(offset(0, 17), "17");
        assert_eq!(offset(3, 0), "300000000000000000000");
        assert_eq!(parse_offset(&offset(12, 99_999)), Some((12, 99_999)));
        let a: u128 = offset(1, u32::MAX as u64 * 1000).parse().unwrap();
        let b: u128 = offset(2, 0).parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn csv_records_span_lines_and_skip_the_header() {
        let data = b"id,note\r\n1,\"a\nb\"\r\n2,plain\r\n";
        let (h, spans) = csv_spans(data, true).unwrap();
        assert_eq!(h.unwrap(), vec!["id", "note"]);
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].line, spans[1].line), (2, 4));
        assert!(data[spans[1].start as usize..spans[1].end as usize].starts_with(b"2,plain"));
        let obj = named_fields(&h_names(), &data[spans[0].start as usize..spans[0].end as usize], "f", 2).unwrap();
        assert_eq!(String::from_utf8(obj).unwrap(), r#"{"id":"1","note":"a\nb"}"#);
        assert!(named_fields(&h_names(), b"1,2,3\n", "in/f.csv", 7).unwrap_err().to_string().contains("in/f.csv line 7"));
    }

    fn h_names() -> Vec<String> {
        vec!["id".into(), "note".into()]
    }

    fn opts(state: &std::path::Path, from: std::collections::BTreeMap<String, String>) -> OpenOptions {
        OpenOptions { from, start: StartAt::Earliest, state_dir: state.to_path_buf(), follow: false, format: RecordFormat::Json, changes: false }
    }

    /// Every record's (file, line) from `from` on, and the position after each batch.
    async fn read_all(ep: &Endpoint, state: &std::path::Path, from: std::collections::BTreeMap<String, String>, stop_after: Option<usize>) -> (Vec<(String, String)>, std::collections::BTreeMap<String, String>) {
        read_all_in(ep, state, from, stop_after, files_feed::BLOCK).await
    }

    /// [`read_all`], taking `block` bytes of text from a file at a time.
    async fn read_all_in(ep: &Endpoint, state: &std::path::Path, from: std::collections::BTreeMap<String, String>, stop_after: Option<usize>, block: usize) -> (Vec<(String, String)>, std::collections::BTreeMap<String, String>) {
        let mut src = FilesSource::open(ep, opts(state, from)).await.unwrap();
        src.block = block;
        let (mut seen, mut pos) = (Vec::new(), Default::default());
        let mut batches = 0;
        while let Some(b) = src.next().await.unwrap() {
            seen.extend(b.records.iter().map(|r| (r.shard.clone(), r.offset.clone())));
            pos = b.position;
            batches += 1;
            if stop_after == Some(batches) {
                break;
            }
        }
        (seen, pos)
    }

    #[tokio::test]
    async fn a_restart_inside_a_file_goes_on_after_the_last_record_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("in");
        std::fs::create_dir(&data).unwrap();
        let lines = BATCH_RECORDS * 2 + 7;
        for f in ["a.jsonl", "b.jsonl"] {
            std::fs::write(data.join(f), (0..lines).map(|i| format!("{{\"i\": {i}}}\n")).collect::<String>()).unwrap();
        }
        let ep = Endpoint::parse(&format!("file://{}", data.display())).unwrap();
        let state = dir.path().join("st");
        std::fs::create_dir(&state).unwrap();
        let (all, _) = read_all(&ep, &state, Default::default(), None).await;
        assert_eq!(all.len(), lines * 2);
        // Stop after the first batch of b.jsonl (a.jsonl is three batches).
        let state = dir.path().join("st2");
        std::fs::create_dir(&state).unwrap();
        let (first, pos) = read_all(&ep, &state, Default::default(), Some(4)).await;
        let (count, within) = parse_offset(&pos[SHARD]).unwrap();
        assert_eq!(count, 1, "{pos:?}");
        assert!(within > 0, "inside b.jsonl: {pos:?}");
        let (rest, _) = read_all(&ep, &state, pos.clone(), None).await;
        assert_eq!(rest.first(), Some(&("b.jsonl".to_string(), (BATCH_RECORDS + 1).to_string())), "goes on at the next line");
        assert_eq!([first, rest].concat(), all, "nothing lost, nothing repeated");
        // A file that sorts before b.jsonl appears: refused, by name.
        std::fs::write(data.join("a2.jsonl"), "{}\n").unwrap();
        let err = FilesSource::open(&ep, opts(&state, pos)).await.unwrap().next().await.unwrap_err().to_string();
        assert!(err.contains("a2.jsonl") && err.contains("b.jsonl"), "{err}");
    }

    /// Every record (file, line, text) and every position handed out,
    /// reading `block` bytes of text at a time.
    async fn cut_in(ep: &Endpoint, format: RecordFormat, block: usize) -> (Vec<(String, String, Vec<u8>)>, Vec<String>) {
        let state = tempfile::tempdir().unwrap();
        let mut o = opts(state.path(), Default::default());
        o.format = format;
        let mut src = FilesSource::open(ep, o).await.unwrap();
        src.block = block;
        let (mut seen, mut positions) = (Vec::new(), Vec::new());
        while let Some(b) = src.next().await.unwrap() {
            seen.extend(b.records.into_iter().map(|r| (r.shard, r.offset, r.data)));
            positions.push(b.position[SHARD].clone());
        }
        (seen, positions)
    }

    fn gzip_members(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(p).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    /// A record cut across two blocks (a line, a quoted CSV field with a
    /// line end in it, a CRLF, a multi-byte character, a header) comes out
    /// whole, on its line, with the same positions, whatever the block.
    #[tokio::test]
    async fn records_are_the_same_whatever_the_block_they_arrive_in() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("json");
        std::fs::create_dir(&json).unwrap();
        // A byte-order mark first, as some Windows tools write.
        std::fs::write(json.join("a.jsonl"), "\u{feff}{\"n\":\"é😀\"}\r\n\n   \n{\"n\":2}\n{\"n\":3}").unwrap();
        std::fs::write(json.join("b.jsonl.gz"), gzip_members(&[b"{\"m\":1}\n{\"m\"", b":2}\n\n{\"m\":3}\n"])).unwrap();
        std::fs::write(json.join("c.ndjson.zst"), zstd::stream::encode_all(&b"{\"z\":1}\n{\"z\":2}\n"[..], 3).unwrap()).unwrap();
        let csv = dir.path().join("csv");
        std::fs::create_dir(&csv).unwrap();
        std::fs::write(csv.join("a.csv"), "id,\u{feff}note\r\n1,\"a\r\nb \"\"q\"\"\"\r\n\r\n2,é😀\r\n3,\n").unwrap();
        std::fs::write(csv.join("b.csv.gz"), gzip_members(&[b"id,note\n4,\"x", b"\ny\"\n5,z"])).unwrap();
        for (dir, formats) in [(&json, vec![RecordFormat::Json]), (&csv, vec![RecordFormat::Fields, RecordFormat::Csv])] {
            let ep = Endpoint::parse(&format!("file://{}", dir.display())).unwrap();
            for format in formats {
                let whole = cut_in(&ep, format, files_feed::BLOCK).await;
                assert!(whole.0.len() >= 5, "{format:?}: {:?}", whole.0);
                for block in [1, 2, 3, 5, 8, 13] {
                    assert_eq!(cut_in(&ep, format, block).await, whole, "{format:?}, {block}-byte blocks");
                }
            }
        }
        let ep = Endpoint::parse(&format!("file://{}", json.display())).unwrap();
        let lines: Vec<(String, String)> = cut_in(&ep, RecordFormat::Json, 4).await.0.into_iter().map(|(f, l, _)| (f, l)).collect();
        let want = [("a.jsonl", "1"), ("a.jsonl", "4"), ("a.jsonl", "5"), ("b.jsonl.gz", "1"), ("b.jsonl.gz", "2"), ("b.jsonl.gz", "4"), ("c.ndjson.zst", "1"), ("c.ndjson.zst", "2")];
        assert_eq!(lines, want.map(|(f, l)| (f.to_string(), l.to_string())));
        let ep = Endpoint::parse(&format!("file://{}", csv.display())).unwrap();
        let rows: Vec<(String, String)> = cut_in(&ep, RecordFormat::Fields, 3).await.0.into_iter().map(|(f, l, d)| (format!("{f}:{l}"), String::from_utf8(d).unwrap())).collect();
        assert_eq!(rows[0], ("a.csv:2".into(), r#"{"id":"1","note":"a\r\nb \"q\""}"#.into()));
        assert_eq!(rows[1], ("a.csv:5".into(), r#"{"id":"2","note":"é😀"}"#.into()));
        assert_eq!(rows.last().unwrap(), &("b.csv.gz:4".into(), r#"{"id":"5","note":"z"}"#.into()));
    }

    /// A restart inside a file whose records cross block boundaries goes
    /// on at the next record; a truncated gzip file is named, not taken
    /// as whole.
    #[tokio::test]
    async fn a_restart_across_blocks_and_a_cut_gzip_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("in");
        std::fs::create_dir(&data).unwrap();
        let lines = BATCH_RECORDS * 2 + 7;
        let body: String = (0..lines).map(|i| format!("{{\"i\": {i}}}\n")).collect();
        std::fs::write(data.join("a.jsonl.gz"), gzip_members(&[body.as_bytes()])).unwrap();
        let ep = Endpoint::parse(&format!("file://{}", data.display())).unwrap();
        let state = dir.path().join("st");
        std::fs::create_dir(&state).unwrap();
        let (first, pos) = read_all_in(&ep, &state, Default::default(), Some(1), 1000).await;
        assert_eq!(first.len(), BATCH_RECORDS);
        let (rest, _) = read_all_in(&ep, &state, pos, None, 777).await;
        assert_eq!(rest.first().map(|r| r.1.as_str()), Some((BATCH_RECORDS + 1).to_string().as_str()));
        assert_eq!(first.len() + rest.len(), lines, "nothing lost, nothing repeated");

        let gz = gzip_members(&[body.as_bytes()]);
        std::fs::write(data.join("a.jsonl.gz"), &gz[..gz.len() / 2]).unwrap();
        let state = dir.path().join("st2");
        std::fs::create_dir(&state).unwrap();
        let mut src = FilesSource::open(&ep, opts(&state, Default::default())).await.unwrap();
        let err = loop {
            match src.next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a cut gzip file was read as whole"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("a.jsonl.gz") && err.contains("cannot read it to its end"), "{err}");
    }

    /// Hidden files, a directory's staged uploads (`NAME#N`) and files of
    /// another kind are left alone (each named in a warning); the rest
    /// are read.
    #[tokio::test]
    async fn hidden_staged_and_other_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.jsonl", ".tmp.jsonl", "b.jsonl#1", "c#d.jsonl", "notes.txt"] {
            std::fs::write(dir.path().join(f), "{\"x\":1}\n").unwrap();
        }
        let ep = Endpoint::parse(&format!("file://{}", dir.path().display())).unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut src = FilesSource::open(&ep, opts(state.path(), Default::default())).await.unwrap();
        let mut read = Vec::new();
        while let Some(b) = src.next().await.unwrap() {
            read.extend(b.records.into_iter().map(|r| r.shard));
        }
        assert_eq!(read, vec!["a.jsonl".to_string()]);
        let mut skipped: Vec<&str> = src.skipped.iter().map(String::as_str).collect();
        skipped.sort();
        // object_store's listing leaves out its own staging names (`b.jsonl#1`).
        assert_eq!(skipped, vec![".tmp.jsonl", "c#d.jsonl", "notes.txt"]);
    }

    #[test]
    fn a_quote_left_open_is_found_and_quotes_inside_fields_are_not() {
        assert!(quote_left_open(b"1,V,\"oops\n2,V,x\n"));
        assert!(quote_left_open(b"1,\"a \"\"b\"\" c"));
        assert!(!quote_left_open(b"1,\"a \"\"b\"\" c\",d\r\n"));
        assert!(!quote_left_open(b"2,15\" screen,x"), "a quote inside an unquoted field is a character");
        assert!(!quote_left_open(b"3,\"multi\nline\",y"));
    }

    #[tokio::test]
    async fn a_csv_quote_that_never_closes_is_named_not_taken_as_one_long_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.csv"), "id,note\n1,\"oops\n2,x\n3,y\n").unwrap();
        let ep = Endpoint::parse(&format!("file://{}", dir.path().display())).unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut o = opts(state.path(), Default::default());
        o.format = RecordFormat::Fields;
        let mut src = FilesSource::open(&ep, o).await.unwrap();
        let err = loop {
            match src.next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("an unclosed quote was read as data"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("f.csv: line 2: a quoted field opens and never closes"), "{err}");
    }

    /// A file read before and changed since (appended to, rewritten) is
    /// refused by name, not half read or skipped.
    #[tokio::test]
    async fn a_file_changed_after_it_was_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("in");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("a.jsonl"), "{\"i\":1}\n{\"i\":2}\n").unwrap();
        let ep = Endpoint::parse(&format!("file://{}", data.display())).unwrap();
        let state = dir.path().join("st");
        std::fs::create_dir(&state).unwrap();
        let (first, pos) = read_all(&ep, &state, Default::default(), None).await;
        assert_eq!(first.len(), 2);
        let (again, _) = read_all(&ep, &state, pos.clone(), None).await;
        assert!(again.is_empty(), "nothing new, nothing repeated");
        let mut f = std::fs::OpenOptions::new().append(true).open(data.join("a.jsonl")).unwrap();
        f.write_all(b"{\"i\":3}\n").unwrap();
        drop(f);
        let mut src = FilesSource::open(&ep, opts(&state, pos)).await.unwrap();
        let err = src.next().await.unwrap_err().to_string();
        assert!(err.contains("a.jsonl changed after barge read it") && err.contains("bytes when barge read it"), "{err}");
    }

    /// Files that are all of another kind fail the run, naming what
    /// they are and the flag that reads them; no file at all does not.
    #[tokio::test]
    async fn files_all_of_another_kind_fail_with_the_flag_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let ep = Endpoint::parse(&format!("file://{}", dir.path().display())).unwrap();
        let (none, _) = read_all(&ep, tempfile::tempdir().unwrap().path(), Default::default(), None).await;
        assert!(none.is_empty());
        std::fs::write(dir.path().join("a.csv"), "id\n1\n").unwrap();
        std::fs::write(dir.path().join("b.csv.gz"), gzip_members(&[b"id\n2\n"])).unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut src = FilesSource::open(&ep, opts(state.path(), Default::default())).await.unwrap();
        let err = src.next().await.unwrap_err();
        let text = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(text.contains("none of its 2 files is a JSON lines") && text.contains(".csv") && text.contains("--record-format csv"), "{text}");
    }

    #[test]
    fn blank_lines_are_not_records() {
        let spans = line_spans(b"{\"a\":1}\n\n  \n{\"a\":2}");
        assert_eq!(spans.iter().map(|s| s.line).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(spans[1].end, 19);
    }
}
