//! `barge pack`, `barge unpack` and `barge verify`: the CLI over
//! [`crate::pack`]. Secrets come from a file, the environment or a prompt,
//! never from argv.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::advise::{fmt_bytes, parse_size};
use crate::endpoint::{Endpoint, Secret};
use crate::error::{exit, Error, Result};
use crate::output;
use crate::pack::crypto::{Argon2Params, Unlock};
use crate::pack::format::{DEFAULT_CHUNK_SIZE, DEFAULT_SEGMENT_SIZE};
use crate::pack::reader::{self, Finding, Severity};
use crate::pack::{self, KeyInput, PackOptions};
use crate::progress;

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
    /// A directory tree to pack (a database URL is planned)
    pub source: String,
    /// Mount points of the attached disks to fill; data spreads across them
    #[arg(required = true)]
    pub dest: Vec<PathBuf>,
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
    /// Encryption segment size (advanced)
    #[arg(long, value_name = "SIZE", default_value = "1MiB", hide = true)]
    pub segment_size: String,
    /// Writer threads (default: one per core, at least one per device)
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    pub threads: usize,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// Mount points holding the image, then the target: a directory or file:///dir (s3:// and databases are planned)
    #[arg(required = true, num_args = 2.., value_name = "DEVICE... TARGET")]
    pub paths: Vec<String>,
    /// Trust this manifest file (sent apart from the disks) instead of the copies on them
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Which pack, when the devices hold several (an id prefix)
    #[arg(long, value_name = "ID")]
    pub pack: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Decrypt everything and check plaintext hashes (needs the passphrase or key file)
    #[arg(long)]
    pub deep: bool,
    /// Mount points holding the image
    #[arg(required = true)]
    pub devices: Vec<PathBuf>,
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

fn default_journal(source: &Path) -> PathBuf {
    let canon = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    let h = Sha256::digest(canon.as_os_str().as_encoded_bytes());
    state_dir().join(format!("pack-{}.journal", hex::encode(&h[..8])))
}

/// A local path from a plain path or a `file://` URL; other URLs are
/// databases or object stores, which pack does not handle yet.
fn local_path(arg: &str, what: &'static str, planned: &'static str) -> Result<PathBuf> {
    let looks_like_url = arg.contains("://") || arg.starts_with("sqlite:");
    if !looks_like_url {
        return Ok(PathBuf::from(arg));
    }
    match Endpoint::parse(arg)? {
        Endpoint::Dir(d) => Ok(d.path),
        e if e.kind().is_database() || matches!(e, Endpoint::S3(_)) => Err(Error::NotImplemented { command: planned }),
        e => Err(Error::usage(format!("{what} cannot be {e}: use a directory or file:///dir"))),
    }
}

fn size_arg(s: &str, flag: &str) -> Result<u64> {
    parse_size(s).map_err(|e| Error::usage(format!("{flag} {s}: {e}")))
}

pub fn run_pack(args: PackArgs) -> Result<ExitCode> {
    let source = local_path(&args.source, "the pack source", "pack <database URL>")?;
    let journal = args.journal.clone().unwrap_or_else(|| default_journal(&source));
    let segment_size = size_arg(&args.segment_size, "--segment-size")?;
    let opts = PackOptions {
        source,
        devices: args.dest.clone(),
        capacity: args.capacity.as_deref().map(|c| size_arg(c, "--capacity")).transpose()?,
        chunk_size: size_arg(&args.chunk_size, "--chunk-size")?,
        segment_size: u32::try_from(segment_size).map_err(|_| Error::usage("--segment-size is too large"))?,
        slots: args.threads,
        journal,
        resume: args.resume,
        kdf: Argon2Params::default(),
        manifest_out: args.manifest_out.clone(),
        fault_enospc_after: std::env::var("BARGE_FAULT_ENOSPC_AFTER").ok().and_then(|v| v.parse().ok()),
    };
    debug_assert_eq!(DEFAULT_CHUNK_SIZE, 1 << 30);
    debug_assert_eq!(DEFAULT_SEGMENT_SIZE, 1 << 20);
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
    let progress = progress::for_cli();
    let report = pack::pack(&opts, &mut keys, progress.as_ref())?;
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
        println!("{v}");
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
    w(&mut out, format!(
        "  {} files, {} dirs, {} symlinks, {} in {} chunk files",
        report.totals.files,
        report.totals.dirs,
        report.totals.symlinks,
        fmt_bytes(report.totals.bytes),
        report.chunks
    ))?;
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

fn unlock_input(s: &SecretArgs) -> Result<(Vec<u8>, bool)> {
    if let Some(kf) = &s.key_file {
        return Ok((read_key_file(kf)?, true));
    }
    Ok((read_passphrase(s.passphrase_file.as_deref(), false)?.expose().as_bytes().to_vec(), false))
}

/// Prints findings and turns errors into exit code 3 (one JSON object with --json).
fn finish(mut v: serde_json::Value, findings: &[Finding], what: &str) -> Result<ExitCode> {
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let o = output::get();
    if o.json {
        v["ok"] = json!(errors == 0);
        v["findings"] = serde_json::to_value(findings).expect("findings serialize");
        println!("{v}");
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

pub fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    let progress = progress::for_cli();
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
        return finish(base, &checked.findings, "verify");
    }
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    // Sizes and headers without hashing: AES-GCM authenticates every byte below.
    let checked = reader::check_files(&located, false, progress.as_ref());
    let deep = reader::decrypt_all(&located, &checked.locations, &master, &catalog, None, progress.as_ref())?;
    let mut findings = checked.findings;
    findings.extend(deep.findings);
    base["files"] = json!(deep.totals.files);
    base["bytes"] = json!(deep.totals.bytes);
    base["summary"] = json!(format!(
        "pack {}: {} files, {} dirs, {} symlinks, {} decrypted and checked",
        located.pack_id(),
        deep.totals.files,
        deep.totals.dirs,
        deep.totals.symlinks,
        fmt_bytes(deep.totals.bytes)
    ));
    finish(base, &findings, "verify --deep")
}

pub fn run_unpack(args: UnpackArgs) -> Result<ExitCode> {
    let (target_arg, devices) = args.paths.split_last().expect("clap requires two paths");
    let target = local_path(target_arg, "the unpack target", "unpack to s3:// or a database")?;
    let devices: Vec<PathBuf> = devices.iter().map(PathBuf::from).collect();
    let progress = progress::for_cli();
    let located = reader::locate(&devices, args.manifest.as_deref(), args.pack.as_deref())?;
    let checked = reader::check_files(&located, false, progress.as_ref());
    if reader::has_errors(&checked.findings) {
        return finish(json!({"pack_id": located.pack_id(), "target": target.display().to_string()}), &checked.findings, "unpack (before writing anything)");
    }
    let (secret, is_file) = unlock_input(&args.secret)?;
    let u = if is_file { Unlock::KeyFile(&secret) } else { Unlock::Passphrase(&secret) };
    let master = reader::unlock(&located, &u)?;
    let catalog = reader::open_catalog(&located, &master)?;
    let deep = reader::decrypt_all(&located, &checked.locations, &master, &catalog, Some(&target), progress.as_ref())?;
    let mut findings = checked.findings;
    findings.extend(deep.findings);
    let v = json!({
        "pack_id": located.pack_id(),
        "target": target.display().to_string(),
        "files": deep.totals.files,
        "dirs": deep.totals.dirs,
        "symlinks": deep.totals.symlinks,
        "bytes": deep.totals.bytes,
        "summary": format!(
            "unpacked {} files, {} dirs, {} symlinks ({}) into {}",
            deep.totals.files, deep.totals.dirs, deep.totals.symlinks, fmt_bytes(deep.totals.bytes), target.display()
        ),
    });
    finish(v, &findings, "unpack")
}
