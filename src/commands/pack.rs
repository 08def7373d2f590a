//! `barge pack`, `barge unpack` and `barge verify`: the CLI over
//! [`crate::pack`] (and, for databases, [`crate::task::pack_source`] and
//! [`crate::task::unpack_db`]). Secrets come from a file, the environment
//! or a prompt, never from argv.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::advise::{fmt_bytes, parse_size};
use crate::endpoint::{Endpoint, Secret};
use crate::error::{exit, Error, Result};
use crate::commands::output;
use crate::pack::crypto::{Argon2Params, Unlock};
use crate::pack::format::{DEFAULT_CHUNK_SIZE, DEFAULT_SEGMENT_SIZE};
use crate::pack::reader::{self, Finding, Output, Severity};
use crate::pack::{self, KeyInput, PackOptions, Source};
use crate::progress;
use crate::task::pack_source::DatabaseSource;
use crate::task::target_schema::SchemaMode;
use crate::task::unpack_db::{self, UnpackOptions, UnpackReport};
use crate::task::unpack_objects::ObjectWriter;
use crate::transfer::{OnError, ZeroDates};

/// Where the passphrase or key comes from. Never argv.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Read the passphrase from the first line of FILE (else $BARGE_PASSPHRASE, else a prompt on a terminal)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Unlock with this key file (written by `pack --new-key-file`) instead of the passphrase
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// What to pack: a directory tree, or a database URL (postgres://, mysql://, sqlite:)
    pub source: String,
    /// Mount points of the attached disks to fill; data spreads across them
    #[arg(required_unless_present = "disk")]
    pub dest: Vec<PathBuf>,
    /// A disk (mount point) to fill, as a flag: repeat it for each disk. With --coordinator, each worker names its own disks this way
    #[arg(long = "disk", value_name = "DIR")]
    pub disk: Vec<PathBuf>,
    /// Write at most SIZE on each device (e.g. 8TB, 500GiB); default: its free space
    #[arg(long, value_name = "SIZE")]
    pub capacity: Option<String>,
    /// Continue an interrupted or full pack, onto the devices named now
    #[arg(long)]
    pub resume: bool,
    /// The resume journal (default: under $BARGE_STATE_DIR, $XDG_STATE_HOME/barge or ~/.local/state/barge)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Also write a copy of the signed manifest to FILE, to send apart from the disks
    #[arg(long, value_name = "FILE")]
    pub manifest_out: Option<PathBuf>,
    /// Create an unlock key file at FILE (a second way to unlock, to send apart from the disks)
    #[arg(long, value_name = "FILE")]
    pub new_key_file: Option<PathBuf>,
    /// Largest chunk file
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub chunk_size: String,
    /// Compress chunk data before it is encrypted: zstd, zstd:LEVEL (1 to 19) or none. Files and chunks that do not compress are stored as they are
    #[arg(long, value_name = "CODEC", default_value = "zstd:3", value_parser = parse_compression)]
    pub compression: pack::Compression,
    /// Encryption segment size (advanced)
    #[arg(long, value_name = "SIZE", default_value = "1MiB", hide = true)]
    pub segment_size: String,
    /// Writer threads (default: one per core, at least one per device)
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    pub threads: usize,
    /// Database source: tables to pack, comma-separated [schema.]table patterns (% and * are wildcards); prefix ! to exclude
    #[arg(long, value_name = "PATTERNS")]
    pub tables: Option<String>,
    /// Database source: do not set up change capture, so no CDC start position is recorded
    #[arg(long)]
    pub no_cdc: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub metrics: crate::commands::metrics::MetricsArgs,
    #[command(flatten)]
    pub shared: super::pack_shared::SharedPackArgs,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// Mount points holding the image, then the target: a directory, file:///dir or
    /// s3://bucket/prefix for a tree; a database URL (postgres://, mysql://, sqlite:) for a database
    #[arg(required = true, num_args = 1.., value_name = "DEVICE... TARGET")]
    pub paths: Vec<String>,
    /// A disk holding the image, as a flag: repeat it for each (a pack made by several hosts: every host's disks, mounted from wherever)
    #[arg(long = "disk", value_name = "DIR")]
    pub disk: Vec<PathBuf>,
    /// Trust this manifest file (sent apart from the disks) instead of the copies on them
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Which pack, when the devices hold several (an id prefix)
    #[arg(long, value_name = "ID")]
    pub pack: Option<String>,
    /// Database target: what to do with its tables before loading
    #[arg(long, value_enum, default_value_t = SchemaMode::Create)]
    pub target_schema: SchemaMode,
    /// Database target: what a row the target cannot take does to the unpack
    #[arg(long, value_enum, default_value_t = OnError::Stop)]
    pub on_error: OnError,
    /// Database target: what MySQL zero dates (0000-00-00) become on other engines
    #[arg(long, value_enum, default_value_t = ZeroDates::Null)]
    pub zero_dates: ZeroDates,
    /// Database target: tables whose keys and indexes are built at once after the rows
    /// (one connection each, as pg_restore -j); the rows themselves load in pack order
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// Database target: where the run keeps its state, assessment report and rejected rows
    /// (default .barge/unpack-HASH of the pack and target); the same command after a failure
    /// resumes from it
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub schema: crate::commands::convert::SchemaArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub metrics: crate::commands::metrics::MetricsArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Decrypt everything and check plaintext hashes (needs the passphrase or key file)
    #[arg(long)]
    pub deep: bool,
    /// Mount points holding the image
    #[arg(required_unless_present = "disk")]
    pub devices: Vec<PathBuf>,
    /// A disk holding the image, as a flag: repeat it for each (a pack made by several hosts: every host's disks, mounted from wherever)
    #[arg(long = "disk", value_name = "DIR")]
    pub disk: Vec<PathBuf>,
    /// Trust this manifest file (sent apart from the disks) instead of the copies on them
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Which pack, when the devices hold several (an id prefix)
    #[arg(long, value_name = "ID")]
    pub pack: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
}

fn read_passphrase(file: Option<&Path>, confirm: bool) -> Result<Secret> {
    let p = if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|source| Error::Read { path: f.into(), source })?;
        text.lines().next().unwrap_or("").to_string()
    } else if let Ok(p) = std::env::var("BARGE_PASSPHRASE") {
        p
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password("Passphrase: ").map_err(|e| Error::other(format!("cannot read the passphrase: {e}")))?;
        if confirm {
            let again = rpassword::prompt_password("Passphrase again: ")
                .map_err(|e| Error::other(format!("cannot read the passphrase: {e}")))?;
            if again != p {
                return Err(Error::usage("the two passphrases differ"));
            }
        }
        p
    } else {
        return Err(Error::usage(
            "no passphrase given, and there is no terminal to ask on: pass --passphrase-file FILE or set BARGE_PASSPHRASE",
        ));
    };
    if p.is_empty() {
        return Err(Error::usage("the passphrase is empty"));
    }
    Ok(Secret::new(p))
}

const KEY_FILE_PREFIX: &str = "barge-unlock-key-v1:";

fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let hex_part = text.trim().strip_prefix(KEY_FILE_PREFIX).ok_or_else(|| Error::Input {
        file: path.display().to_string(),
        line: 1,
        message: "not a barge unlock key file".into(),
        hint: None,
    })?;
    hex::decode(hex_part).ok().filter(|k| k.len() == 32).ok_or_else(|| Error::Input {
        file: path.display().to_string(),
        line: 1,
        message: "the key is not 64 hex digits".into(),
        hint: None,
    })
}

fn write_key_file(path: &Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let key: [u8; 32] = pack::crypto::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Write { path: path.into(), source })?;
    writeln!(f, "{KEY_FILE_PREFIX}{}", hex::encode(key))
        .and_then(|_| f.sync_all())
        .map_err(|source| Error::Write { path: path.into(), source })?;
    Ok(key.to_vec())
}

fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BARGE_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("barge");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/barge")
}

/// The journal of a source: a tree by its canonical path, a database by
/// its (redacted) URL.
fn default_journal(source: &Place) -> PathBuf {
    let key = match source {
        Place::Dir(p) => std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).into_os_string(),
        Place::Database(e) | Place::Objects(e) => e.to_string().into(),
    };
    let h = Sha256::digest(key.as_encoded_bytes());
    state_dir().join(format!("pack-{}.journal", hex::encode(&h[..8])))
}

/// Where a pack comes from or an unpack goes.
enum Place {
    Dir(PathBuf),
    Database(Endpoint),
    /// An object store (`s3://`): an unpack target only.
    Objects(Endpoint),
}

/// A plain path or `file://` URL is a directory; a database URL a
/// database; `s3://` an object store; streams are refused clearly.
fn place(arg: &str, what: &str) -> Result<Place> {
    let looks_like_url = arg.contains("://") || arg.starts_with("sqlite:");
    if !looks_like_url {
        return Ok(Place::Dir(PathBuf::from(arg)));
    }
    match Endpoint::parse(arg)? {
        Endpoint::Dir(d) => Ok(Place::Dir(d.path)),
        e if e.kind().is_database() => Ok(Place::Database(e)),
        e @ Endpoint::S3(_) => Ok(Place::Objects(e)),
        e => Err(Error::usage(format!("{what} cannot be {e}: use a directory, file:///dir, s3://bucket/prefix or a database URL"))),
    }
}

fn parse_compression(s: &str) -> std::result::Result<pack::Compression, String> {
    s.parse()
}

fn size_arg(s: &str, flag: &str) -> Result<u64> {
    parse_size(s).map_err(|e| Error::usage(format!("{flag} {s}: {e}")))
}

pub fn run_pack(args: PackArgs) -> Result<ExitCode> {
    let source = place(&args.source, "the pack source")?;
    if matches!(source, Place::Objects(_)) {
        return Err(Error::NotImplemented { command: "pack from s3://" });
    }
    if matches!(source, Place::Dir(_)) && (args.tables.is_some() || args.no_cdc) {
        return Err(Error::usage("--tables and --no-cdc apply to a database source; the source is a directory"));
    }
    let journal = args.journal.clone().unwrap_or_else(|| default_journal(&source));
    let segment_size = size_arg(&args.segment_size, "--segment-size")?;
    let mut devices = args.dest.clone();
    devices.extend(args.disk.iter().cloned());
    let opts = PackOptions {
        devices,
        capacity: args.capacity.as_deref().map(|c| size_arg(c, "--capacity")).transpose()?,
        chunk_size: size_arg(&args.chunk_size, "--chunk-size")?,
        segment_size: u32::try_from(segment_size).map_err(|_| Error::usage("--segment-size is too large"))?,
        slots: args.threads,
        journal,
        resume: args.resume,
        kdf: Argon2Params::default(),
        manifest_out: args.manifest_out.clone(),
        fault_enospc_after: std::env::var("BARGE_FAULT_ENOSPC_AFTER").ok().and_then(|v| v.parse().ok()),
        compression: args.compression,
    };
    debug_assert_eq!(DEFAULT_CHUNK_SIZE, 1 << 30);
    debug_assert_eq!(DEFAULT_SEGMENT_SIZE, 1 << 20);
    if args.shared.coordinator.is_some() {
        return run_shared_pack(&args, &source, opts);
    }
    let secret = &args.secret;
    let new_key_file = args.new_key_file.clone();
    let mut keys = |resuming: bool| -> Result<KeyInput> {
        if resuming {
            if let Some(kf) = &secret.key_file {
                return Ok(KeyInput { key_file: Some(read_key_file(kf)?), ..Default::default() });
            }
            let p = read_passphrase(secret.passphrase_file.as_deref(), false)?;
            return Ok(KeyInput { passphrase: Some(p.expose().as_bytes().to_vec()), ..Default::default() });
        }
        if secret.key_file.is_some() {
            return Err(Error::usage(
                "--key-file unlocks an existing pack; a new pack takes a passphrase \
                 (--new-key-file FILE creates an unlock key file for it)",
            ));
        }
        let p = read_passphrase(secret.passphrase_file.as_deref(), true)?;
        let nk = new_key_file.as_deref().map(write_key_file).transpose()?;
        Ok(KeyInput { passphrase: Some(p.expose().as_bytes().to_vec()), key_file: None, new_key_file: nk })
    };
    args.metrics.start(|| crate::metrics::Metrics::with_names(&super::metrics::task_name(&opts.journal, "pack"), &args.source, &opts.devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",")))?;
    let progress = super::bars::for_cli();
    let mut db = match &source {
        Place::Dir(_) | Place::Objects(_) => None,
        Place::Database(ep) => {
            let mapping = crate::commands::migrate::build_mapping(args.tables.as_deref(), None)?;
            Some(DatabaseSource::open(ep, &mapping, args.tables.as_deref(), !args.no_cdc)?)
        }
    };
    let from = match (&source, db.as_mut()) {
        (Place::Dir(p), _) => Source::Tree(p),
        (Place::Database(_), Some(db)) => Source::Database(db),
        (Place::Database(_), None) => unreachable!("opened above"),
        (Place::Objects(_), _) => unreachable!("refused above"),
    };
    let report = pack::pack(&opts, from, &mut keys, progress.as_ref())?;
    let o = output::get();
    for w in &report.warnings {
        output::warn(w);
    }
    for s in &report.skipped {
        output::warn(format!("not packed: {s}"));
    }
    let incomplete = (!report.complete).then(|| Error::Other {
        message: format!(
            "the devices are full ({}): {} items ({}) remain to pack",
            report.devices.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", "),
            report.remaining_items,
            fmt_bytes(report.remaining_bytes)
        ),
        hint: Some(format!(
            "mount another device and run `barge pack --resume {} DEVICE...` (the journal is {})",
            args.source, report.journal
        )),
    });
    if o.json {
        let mut v = serde_json::to_value(&report).expect("report serializes");
        v["ok"] = json!(report.complete);
        if let Some(e) = &incomplete {
            v["error"] = json!({"kind": e.kind(), "message": e.to_string(), "hint": e.hint()});
        }
        crate::outln!("{v}");
        if let Some(e) = incomplete {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(exit::FAILURE));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock, s: String| writeln!(out, "{s}").map_err(|source| Error::Write { path: "-".into(), source });
    w(&mut out, format!(
        "pack {}  {}  (run {})",
        report.pack_id,
        if report.complete { "complete" } else { "INCOMPLETE" },
        report.generation
    ))?;
    if db.is_some() {
        w(&mut out, format!(
            "  {} {}, {} rows, {} in {} chunk files",
            report.totals.tables,
            if report.totals.tables == 1 { "table" } else { "tables" },
            report.totals.rows,
            fmt_bytes(report.totals.bytes),
            report.chunks
        ))?;
        w(&mut out, match &report.cdc_start {
            Some(p) => format!("  CDC start position {p}"),
            None => "  no CDC start position: the target will be a copy as of the pack".to_string(),
        })?;
    } else {
        w(&mut out, format!(
            "  {} files, {} dirs, {} symlinks, {} in {} chunk files",
            report.totals.files,
            report.totals.dirs,
            report.totals.symlinks,
            fmt_bytes(report.totals.bytes),
            report.chunks
        ))?;
    }
    if report.reclaimed_chunks > 0 {
        w(&mut out, format!(
            "  reclaimed {} ({}) that the interrupted run had written for items packed again",
            plural(report.reclaimed_chunks, "chunk file", "chunk files"),
            fmt_bytes(report.reclaimed_bytes)
        ))?;
    }
    w(&mut out, format!("  {:<8} {:<40} {:>8} {:>12} {:>12}", "device", "path", "chunks", "this run", "on device"))?;
    for d in &report.devices {
        w(&mut out, format!(
            "  {:<8} {:<40} {:>8} {:>12} {:>12}",
            d.number,
            d.path,
            d.chunks_written,
            fmt_bytes(d.bytes_written),
            fmt_bytes(d.bytes_total)
        ))?;
    }
    w(&mut out, format!("  manifest sha256 {}", report.manifest_sha256))?;
    w(&mut out, format!("  signer {}  (compare with `barge verify` at the receiving site)", report.signer))?;
    drop(out);
    match incomplete {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `pack --coordinator`: this process is one worker of a shared pack.
fn run_shared_pack(args: &PackArgs, source: &Place, opts: PackOptions) -> Result<ExitCode> {
    let Place::Database(ep) = source else {
        return Err(Error::usage(format!("pack --coordinator shares a database's tables among workers; {} is a directory", args.source))
            .with_hint("pack a directory tree with one `barge pack DIR DISK...`"));
    };
    let refuse = |flag: &str, why: &str| Err(Error::usage(format!("{flag} does not go with --coordinator: {why}")));
    if !args.dest.is_empty() {
        return refuse("naming disks after the source", "each worker names its own disks with --disk DIR, which the task does not store");
    }
    if args.resume || args.journal.is_some() {
        return refuse("--resume / --journal", "the coordinator keeps the shared pack's progress; start a stopped worker again with the same command");
    }
    if args.new_key_file.is_some() || args.secret.key_file.is_some() {
        return refuse("--new-key-file / --key-file", "every worker unlocks the shared pack with the same passphrase (BARGE_PASSPHRASE or --passphrase-file on each host)");
    }
    let passphrase_file = args.secret.passphrase_file.clone();
    let passphrase = move |new: bool| -> Result<Vec<u8>> { Ok(read_passphrase(passphrase_file.as_deref(), new)?.expose().as_bytes().to_vec()) };
    super::pack_shared::run(super::pack_shared::Run {
        args: &args.shared,
        source: ep,
        source_arg: &args.source,
        disks: args.disk.clone(),
        tables: args.tables.as_deref(),
        capture: !args.no_cdc,
        opts,
        passphrase: &passphrase,
    })
}

fn unlock_input(s: &SecretArgs) -> Result<(Vec<u8>, bool)> {
    if let Some(kf) = &s.key_file {
        return Ok((read_key_file(kf)?, true));
    }
    Ok((read_passphrase(s.passphrase_file.as_deref(), false)?.expose().as_bytes().to_vec(), false))
}

/// Prints findings (one line per file) and turns errors into exit code 3
/// (one JSON object with --json).
fn finish(mut v: serde_json::Value, findings: Vec<Finding>, what: &str) -> Result<ExitCode> {
    let findings = &reader::tidy(findings)[..];
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let o = output::get();
    if o.json {
        v["ok"] = json!(errors == 0);
        v["findings"] = serde_json::to_value(findings).expect("findings serialize");
        crate::outln!("{v}");
        if errors > 0 {
            eprintln!("error: {what} found {errors} problem(s)");
            return Ok(ExitCode::from(exit::MISMATCH));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for f in findings {
        let sev = match f.severity {
            Severity::Error => "ERROR",
            Severity::Note => "note ",
        };
        writeln!(out, "{sev} {}{}", f.file.as_deref().map(|p| format!("{p}: ")).unwrap_or_default(), f.message)
            .map_err(|source| Error::Write { path: "-".into(), source })?;
    }
    if let Some(summary) = v.get("summary").and_then(|s| s.as_str()) {
        writeln!(out, "{summary}").map_err(|source| Error::Write { path: "-".into(), source })?;
    }
    if errors > 0 {
        let first = findings.iter().find(|f| f.severity == Severity::Error).unwrap();
        return Err(Error::Mismatch(format!(
            "{what} found {errors} problem(s); first: {}{}",
            first.file.as_deref().map(|p| format!("{p}: ")).unwrap_or_default(),
            first.message
        )));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_verify(mut args: VerifyArgs) -> Result<ExitCode> {
    args.devices.append(&mut args.disk);
    let progress = super::bars::for_cli();
    let located = reader::locate(&args.devices, args.manifest.as_deref(), args.pack.as_deref())?;
    let m = &located.decoded.manifest;
    let mut base = json!({
        "pack_id": located.pack_id(),
        "deep": args.deep,
        "manifest": located.manifest_from.display().to_string(),
        "generation": m.generation,
        "complete": m.complete,
        "signer": m.identity.signer_fingerprint(),
        "chunks": m.chunks.len(),
    });
    if !args.deep {
        let checked = reader::check_files(&located, true, progress.as_ref());
        base["bytes"] = json!(checked.bytes);
        base["summary"] = json!(format!(
            "pack {}: {} chunk files, {} checked against the signed manifest (signer {})",
            located.pack_id(),
            m.chunks.len(),
            fmt_bytes(checked.bytes),
            m.identity.signer_fingerprint()
        ));
        return finish(base, checked.findings, "verify");
    }
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    // Sizes and headers without hashing: AES-GCM authenticates every byte below.
    let checked = reader::check_files(&located, false, progress.as_ref());
    let mut deep = reader::decrypt_all(&located, &checked, &master, &catalog, None, progress.as_ref())?;
    let mut findings = checked.findings;
    findings.extend(std::mem::take(&mut deep.findings));
    base["files"] = json!(deep.totals.files);
    base["tables"] = json!(deep.totals.tables);
    base["bytes"] = json!(deep.totals.bytes);
    base["intact"] = json!(deep.items.intact);
    base["damaged"] = json!(deep.items.damaged);
    base["not_checked"] = json!(deep.items.skipped);
    let (items, kind) = if catalog.database.is_some() {
        (format!("{} tables ({} rows)", deep.totals.tables, deep.totals.rows), "tables")
    } else {
        (format!("{} files, {} dirs, {} symlinks", deep.totals.files, deep.totals.dirs, deep.totals.symlinks), "files")
    };
    let i = &deep.items;
    base["summary"] = json!(if i.damaged + i.skipped == 0 {
        format!("pack {}: {items}, {} decrypted and checked", located.pack_id(), fmt_bytes(deep.totals.bytes))
    } else {
        let mut parts = vec![format!("{} {kind} intact ({})", i.intact, fmt_bytes(i.intact_bytes))];
        if i.damaged > 0 {
            parts.push(format!("{} damaged", i.damaged));
        }
        if i.skipped > 0 {
            parts.push(format!("{} not checked (their chunks are missing)", i.skipped));
        }
        format!("pack {}: {items}: {}", located.pack_id(), parts.join(", "))
    });
    finish(base, findings, "verify --deep")
}

pub fn run_unpack(args: UnpackArgs) -> Result<ExitCode> {
    let (target_arg, devices) = args.paths.split_last().expect("clap requires a target");
    let mut devices: Vec<PathBuf> = devices.iter().map(PathBuf::from).collect();
    devices.extend(args.disk.iter().cloned());
    if devices.is_empty() {
        return Err(Error::usage("name the disks that hold the pack (before the target, or with --disk DIR), then the target"));
    }
    args.metrics.start(|| crate::metrics::Metrics::with_names("unpack", &devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","), target_arg))?;
    let target = match place(target_arg, "the unpack target")? {
        Place::Dir(p) => p,
        Place::Database(ep) => return unpack_to_database(&args, &devices, &ep),
        Place::Objects(ep) => return unpack_to_objects(&args, &devices, &ep),
    };
    let progress = super::bars::for_cli();
    let located = reader::locate(&devices, args.manifest.as_deref(), args.pack.as_deref())?;
    let shown = target.display().to_string();
    let Some(checked) = check_tree_chunks(&located, &shown, progress.as_ref())? else {
        return Ok(ExitCode::from(exit::MISMATCH));
    };
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    let mut deep = reader::decrypt_all(&located, &checked, &master, &catalog, Some(&target), progress.as_ref())?;
    let mut findings = checked.findings;
    findings.extend(std::mem::take(&mut deep.findings));
    let t = &deep.totals;
    let mut v = tree_counts(&located, &shown, &deep);
    v["dirs"] = json!(t.dirs);
    v["symlinks"] = json!(t.symlinks);
    v["summary"] = json!(format!(
        "{}, {} dirs, {} symlinks into {shown}{}",
        restored_files(&deep),
        t.dirs,
        t.symlinks,
        not_restored(&deep)
    ));
    finish(v, findings, "unpack")
}

/// The keyless check before a tree is written: every chunk's size, header
/// and ciphertext SHA-256 against the signed manifest. Damaged or missing
/// chunks cost only the files whose bytes lie in them: they are named, and
/// the others are restored. An incomplete pack writes nothing (its findings
/// are printed and `None` returned).
fn check_tree_chunks(located: &reader::Located, target: &str, progress: &dyn progress::Progress) -> Result<Option<reader::Checked>> {
    let checked = reader::check_files(located, true, progress);
    if !located.decoded.manifest.complete {
        finish(json!({"pack_id": located.pack_id(), "target": target}), checked.findings, "unpack (before writing anything)")?;
        return Ok(None);
    }
    let bad = checked.faults.len();
    if bad > 0 {
        output::warn(format!(
            "{} of the pack's {} chunk files {} damaged or missing (named at the end): the files with bytes in them are \
             not restored, every other file is",
            bad,
            located.decoded.manifest.chunks.len(),
            if bad == 1 { "is" } else { "are" }
        ));
    }
    Ok(Some(checked))
}

/// The counts of a tree unpack, for --json.
fn tree_counts(located: &reader::Located, target: &str, deep: &reader::DeepReport) -> serde_json::Value {
    json!({
        "pack_id": located.pack_id(),
        "target": target,
        "files": deep.totals.files,
        "restored": deep.items.intact,
        "damaged": deep.items.damaged,
        "skipped": deep.items.skipped,
        "bytes": deep.items.intact_bytes,
    })
}

/// "unpacked 1485 of 3207 files (1.2 GB)", or all of them.
fn restored_files(deep: &reader::DeepReport) -> String {
    let i = &deep.items;
    if i.intact == deep.totals.files {
        format!("unpacked {} files ({})", i.intact, fmt_bytes(i.intact_bytes))
    } else {
        format!("unpacked {} of {} files ({})", i.intact, deep.totals.files, fmt_bytes(i.intact_bytes))
    }
}

/// What was not restored, if anything, and what to do about it:
/// "; not restored (named above): 3 damaged files, …".
fn not_restored(deep: &reader::DeepReport) -> String {
    let i = &deep.items;
    let mut parts = Vec::new();
    if i.damaged > 0 {
        parts.push(format!(
            "{} (their chunks are damaged: take them from another copy of the pack)",
            plural(i.damaged, "damaged file", "damaged files")
        ));
    }
    if i.skipped > 0 {
        parts.push(format!(
            "{} (their chunks are missing, or the target cannot name them: mount the missing devices and unpack again into an empty target)",
            plural(i.skipped, "skipped file", "skipped files")
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("; not restored (named above): {}", parts.join(", "))
}

/// `unpack DEVICE... s3://bucket/prefix`: the same checks and keyed pass
/// as a directory unpack, each file put as an object (see
/// [`crate::task::unpack_objects`] for what is kept and how a rerun goes).
fn unpack_to_objects(args: &UnpackArgs, devices: &[PathBuf], dst: &Endpoint) -> Result<ExitCode> {
    let Endpoint::S3(s3) = dst else { unreachable!("place() makes Objects of s3:// only") };
    let base = if s3.prefix.is_empty() { format!("s3://{}", s3.bucket) } else { format!("s3://{}/{}", s3.bucket, s3.prefix) };
    // Credentials and the bucket first: they fail in a second, the disks' checks take longer.
    let mut writer = ObjectWriter::new(crate::sink::object::store::ObjectTarget::open(dst)?, base.clone())?;
    writer.probe()?;
    let progress = super::bars::for_cli();
    let located = reader::locate(devices, args.manifest.as_deref(), args.pack.as_deref())?;
    let Some(checked) = check_tree_chunks(&located, &base, progress.as_ref())? else {
        return Ok(ExitCode::from(exit::MISMATCH));
    };
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    if catalog.database.is_some() {
        return Err(Error::usage(format!(
            "this pack holds database tables (from {}), not a directory tree, and tables do not go into {base}: \
             unpack it into a database URL (postgres://, mysql:// or sqlite:), then migrate from there",
            catalog.source
        )));
    }
    let mut deep = reader::decrypt_to(&located, &checked, &master, &catalog, Output::Tree(&mut writer), progress.as_ref())?;
    let mut findings = checked.findings;
    findings.extend(std::mem::take(&mut deep.findings));
    let r = &writer.report;
    if r.skipped_symlinks > 0 || r.skipped_empty_dirs > 0 {
        output::warn(format!(
            "{} and {} are not objects; skipped",
            plural(r.skipped_symlinks, "symlink", "symlinks"),
            plural(r.skipped_empty_dirs, "empty directory", "empty directories")
        ));
    }
    let mut v = tree_counts(&located, &base, &deep);
    v["objects"] = json!(r.objects);
    v["skipped_symlinks"] = json!(r.skipped_symlinks);
    v["skipped_empty_dirs"] = json!(r.skipped_empty_dirs);
    v["summary"] = json!(format!("{} into {base} as objects{}", restored_files(&deep), not_restored(&deep)));
    finish(v, findings, "unpack")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `unpack DEVICE... DBURL`: every chunk's ciphertext is checked against
/// the signed manifest before anything is written to the database, then
/// the tables are created and loaded, and the CDC command is printed.
fn unpack_to_database(args: &UnpackArgs, devices: &[PathBuf], dst: &Endpoint) -> Result<ExitCode> {
    let progress = super::bars::for_cli();
    let located = reader::locate(devices, args.manifest.as_deref(), args.pack.as_deref())?;
    let t = std::time::Instant::now();
    let checked = reader::check_files(&located, true, progress.as_ref());
    if reader::has_errors(&checked.findings) {
        return finish(json!({"pack_id": located.pack_id(), "target": dst.to_string()}), checked.findings, "unpack (before writing anything)");
    }
    output::verbose(format!("checked {} chunk files in {:.2}s", checked.locations.len(), t.elapsed().as_secs_f64()));
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    let (schema, _) = unpack_db::packed_schema(&catalog)?;
    let source_dialect = schema.dialect.unwrap_or(crate::model::Dialect::Postgres);
    let target_dialect = crate::task::target_schema::target_dialect(dst)?;
    let state = args.state_dir.clone().unwrap_or_else(|| unpack_state_dir(&located.pack_id(), dst));
    output::info(format!("unpacking {} → {dst} (state in {})", catalog.source, state.display()));
    let opts = UnpackOptions {
        schema_mode: args.target_schema,
        on_error: args.on_error,
        zero_dates: args.zero_dates,
        convert: args.schema.options(source_dialect, target_dialect, None)?,
        state_dir: state,
        parallel: args.parallel,
        progress,
    };
    let (report, deep_findings) = unpack_db::unpack(&located, &checked, &master, &catalog, dst, opts)?;
    let mut findings = checked.findings;
    findings.extend(deep_findings);
    if !output::get().json {
        print_unpack_report(&report)?;
    }
    let mut v = json!({"pack_id": located.pack_id()});
    v["unpack"] = serde_json::to_value(&report).expect("report serializes");
    finish(v, findings, "unpack")
}

/// Where an unpack of `pack_id` into `dst` keeps its state: like
/// migrate's, under `.barge/`, one directory per pack and target, so the
/// same command after a failure resumes.
fn unpack_state_dir(pack_id: &str, dst: &Endpoint) -> PathBuf {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{pack_id}\n{dst}").as_bytes());
    PathBuf::from(".barge").join(format!("unpack-{}", hex::encode(&h[..6])))
}

fn print_unpack_report(r: &UnpackReport) -> Result<()> {
    super::migrate::print_load_table(&r.load);
    let mut out = std::io::stdout().lock();
    let mut w = |s: String| writeln!(out, "{s}").map_err(|source| Error::Write { path: "-".into(), source });
    match &r.migrate_command {
        Some(cmd) => {
            w(format!("the pack's CDC start position is {}; to bring the target up to date with the source, run:", r.cdc_start.as_deref().unwrap_or("?")))?;
            w(format!("  {cmd}"))?;
        }
        None => w("the pack has no CDC start position: the target is a copy of the source as of the pack".into())?,
    }
    Ok(())
}
