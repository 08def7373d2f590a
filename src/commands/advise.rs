//! `barge advise`: network or disks? Either from figures given
//! (`--size 80TB --bandwidth 1Gbps`) or by measuring a SOURCE: a
//! directory (its size, a compressibility sample and this machine's pack
//! speed) or a database (catalog size, a sample read with the pack's
//! reader; see [`crate::task::measure_db`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::advise::{self, fmt_bytes, fmt_duration, parse_bandwidth, parse_rate, parse_size, DeviceProfile, Inputs};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::commands::output;
use crate::task::measure_db::{self, DbMeasured};

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// A directory or database URL to measure (size, read speed, compressibility, pack speed here); or give --size
    pub source: Option<String>,
    /// Database SOURCE: tables a pack would carry, comma-separated [schema.]table patterns (% and * are wildcards); prefix ! to exclude
    #[arg(long, value_name = "LIST")]
    pub tables: Option<String>,
    /// Amount of data, e.g. 80TB
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Link speed, e.g. 1Gbps, 100Mbps, 10g (preset), 4x10Gbps (several links)
    #[arg(long, value_name = "RATE")]
    pub bandwidth: String,
    /// Share of the link the transfer can use
    #[arg(long, default_value_t = 0.8)]
    pub utilization: f64,
    /// Changes at the source while the move runs, e.g. 50GB/day
    #[arg(long, value_name = "RATE")]
    pub change_rate: Option<String>,
    /// Device profile: snowball, snowball-storage, databox, truck (default: the fastest that fits)
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Devices that can be on site at once (default: as many as needed)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub devices_at_once: u32,
    /// How fast the source reads, e.g. 2GB/s (default: measured with SOURCE, else unbounded)
    #[arg(long, value_name = "RATE")]
    pub source_read: Option<String>,
    /// Pack speed, e.g. 1GB/s (default: measured on this machine)
    #[arg(long, value_name = "RATE")]
    pub pack_speed: Option<String>,
    /// TOML file of device profiles that add to or replace the defaults ([[device]] tables)
    #[arg(long, value_name = "FILE")]
    pub profiles: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ProfileFile {
    device: Vec<ProfileToml>,
}

#[derive(Deserialize)]
struct ProfileToml {
    name: String,
    #[serde(default)]
    description: String,
    usable: String,
    write: String,
    delivery_days: f64,
    ship_days: f64,
    ingest: Option<String>,
    min_size: Option<String>,
}

fn load_profiles(path: Option<&Path>) -> Result<Vec<DeviceProfile>> {
    let mut profiles = advise::default_profiles();
    let Some(path) = path else { return Ok(profiles) };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let bad = |m: String| Error::Input { file: path.display().to_string(), line: 0, message: m, hint: None };
    let f: ProfileFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    for t in f.device {
        let write = parse_rate(&t.write).map_err(&bad)?;
        let p = DeviceProfile {
            description: if t.description.is_empty() { t.name.clone() } else { t.description },
            name: t.name,
            usable: parse_size(&t.usable).map_err(&bad)? as f64,
            write,
            delivery_days: t.delivery_days,
            ship_days: t.ship_days,
            ingest: t.ingest.as_deref().map(parse_rate).transpose().map_err(&bad)?.unwrap_or(write),
            min_size: t.min_size.as_deref().map(parse_size).transpose().map_err(&bad)?.unwrap_or(0) as f64,
        };
        match profiles.iter_mut().find(|x| x.name == p.name) {
            Some(x) => *x = p,
            None => profiles.push(p),
        }
    }
    Ok(profiles)
}

/// What was measured at SOURCE, as printed and as `measured` in --json.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Measured {
    Dir(DirMeasured),
    Db {
        #[serde(flatten)]
        db: DbMeasured,
        /// Stored / original on the encoded sample, compressed the way
        /// `barge pack` does by default (zstd:3 per 1 MiB segment).
        compress_ratio: f64,
        pack_rate: f64,
        /// The read rate advise plans with, in catalog bytes per second
        /// ([`DbMeasured::source_read`]).
        source_read: f64,
    },
}

impl Measured {
    fn bytes(&self) -> u64 {
        match self {
            Measured::Dir(d) => d.bytes,
            Measured::Db { db, .. } => db.bytes,
        }
    }

    fn source_read(&self) -> f64 {
        match self {
            Measured::Dir(d) => d.read_rate,
            Measured::Db { source_read, .. } => *source_read,
        }
    }

    fn pack_rate(&self) -> f64 {
        match self {
            Measured::Dir(d) => d.pack_rate,
            Measured::Db { pack_rate, .. } => *pack_rate,
        }
    }

    fn compress_ratio(&self) -> f64 {
        match self {
            Measured::Dir(d) => d.compress_ratio,
            Measured::Db { compress_ratio, .. } => *compress_ratio,
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct DirMeasured {
    bytes: u64,
    files: u64,
    sample_bytes: u64,
    /// Stored / original on the sample, compressed the way `barge pack`
    /// does by default; 1.0 = incompressible.
    compress_ratio: f64,
    read_rate: f64,
    pack_rate: f64,
}

/// Stored size / original size of the sample as `barge pack` stores it
/// by default (each 1 MiB segment zstd'd at level 3, or kept raw when
/// that does not pay), and how fast one core compressed it (bytes/s of
/// sample); ratio 1.0 for an empty sample.
fn compress_ratio(sample: &[u8]) -> (f64, f64) {
    let t = Instant::now();
    let ratio = crate::pack::compress::estimate_ratio(sample, crate::pack::Compression::default(), 1 << 20);
    (ratio, sample.len() as f64 / t.elapsed().as_secs_f64().max(1e-6))
}

/// The pack rate once compression is counted: every core hashes,
/// encrypts and compresses, so the times per byte add up.
fn with_compression(crypto_rate: f64, compress_rate_one_core: f64) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    1.0 / (1.0 / crypto_rate + 1.0 / (compress_rate_one_core * cores))
}

/// A database SOURCE: catalog size and a read sample
/// ([`crate::task::measure_db`]), compressed like a directory sample.
fn measure_database(endpoint: &Endpoint, tables: Option<&str>) -> Result<Measured> {
    let mapping = crate::commands::migrate::build_mapping(tables, None)?;
    let mut db = measure_db::measure(endpoint, &mapping)?;
    let sample = std::mem::take(&mut db.sample);
    let (compress_ratio, compress_rate) = compress_ratio(&sample);
    drop(sample);
    let source_read = db.source_read();
    Ok(Measured::Db { db, compress_ratio, pack_rate: with_compression(measure_pack_rate(), compress_rate), source_read })
}

/// Reads up to 64 MiB spread over the tree: 1 MiB from each of up to 64 files.
fn measure_source(root: &Path) -> Result<DirMeasured> {
    let scan = crate::pack::scan::scan(root, &[], |_| {})?;
    let files: Vec<_> = scan
        .items
        .iter()
        .filter_map(|i| match i.kind {
            crate::pack::scan::ScanKind::File { size } if size > 0 => Some(i.rel.clone()),
            _ => None,
        })
        .collect();
    let step = (files.len() / 64).max(1);
    let mut sample = Vec::new();
    let t = Instant::now();
    for rel in files.iter().step_by(step).take(64) {
        let p = root.join(rel);
        let mut f = std::fs::File::open(&p).map_err(|source| Error::Read { path: p.clone(), source })?;
        let mut buf = Vec::new();
        Read::by_ref(&mut f).take(1 << 20).read_to_end(&mut buf).map_err(|source| Error::Read { path: p.clone(), source })?;
        sample.extend_from_slice(&buf);
    }
    let read_secs = t.elapsed().as_secs_f64().max(1e-6);
    let (compress_ratio, compress_rate) = compress_ratio(&sample);
    Ok(DirMeasured {
        bytes: scan.bytes,
        files: files.len() as u64,
        sample_bytes: sample.len() as u64,
        compress_ratio,
        read_rate: sample.len() as f64 / read_secs,
        pack_rate: with_compression(measure_pack_rate(), compress_rate),
    })
}

/// What barge pack does to each byte, on every core: SHA-256 of the
/// plaintext, AES-256-GCM, SHA-256 of the ciphertext.
fn measure_pack_rate() -> f64 {
    use crate::pack::crypto::{chunk_key, MasterKey, Sealer};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = 64usize << 20;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                let key = chunk_key(&MasterKey::generate(), &[0; 16], 1, &[0; 32]);
                let mut sealer = Sealer::new(&key, b"header");
                let mut seg = Vec::with_capacity((1 << 20) + 16);
                let (mut h1, mut h2) = (Sha256::new(), Sha256::new());
                for i in 0..per_thread >> 20 {
                    seg.clear();
                    seg.resize(1 << 20, i as u8);
                    h1.update(&seg);
                    sealer.seal(&mut seg, i + 1 == per_thread >> 20);
                    h2.update(&seg);
                }
                std::hint::black_box((h1.finalize(), h2.finalize()));
            });
        }
    });
    (cores * per_thread) as f64 / t.elapsed().as_secs_f64().max(1e-6)
}

enum SourceArg {
    Dir(PathBuf),
    Database(Endpoint),
}

/// A plain path or file:// URL is a directory, a database URL a database;
/// other URLs are refused: advise measures what pack can read.
fn source_arg(src: &str) -> Result<SourceArg> {
    if !(src.contains("://") || src.starts_with("sqlite:")) {
        return Ok(SourceArg::Dir(PathBuf::from(src)));
    }
    match Endpoint::parse(src)? {
        Endpoint::Dir(d) => Ok(SourceArg::Dir(d.path)),
        e if e.kind().is_database() => Ok(SourceArg::Database(e)),
        e => Err(Error::usage(format!("advise cannot measure {e}: give a directory, a database URL, or --size"))),
    }
}

pub fn run(args: AdviseArgs) -> Result<ExitCode> {
    let usage = |e: String| Error::usage(e);
    if !(args.utilization > 0.0 && args.utilization <= 1.0) {
        return Err(Error::usage("--utilization must be in (0, 1]"));
    }
    let measured = match (&args.source, &args.size) {
        (Some(_), Some(_)) => return Err(Error::usage("give either SOURCE or --size, not both")),
        (None, None) => return Err(Error::usage("give SOURCE (a directory or database URL to measure) or --size")),
        (Some(src), None) => match source_arg(src)? {
            SourceArg::Database(ep) => Some(measure_database(&ep, args.tables.as_deref())?),
            SourceArg::Dir(_) if args.tables.is_some() => return Err(Error::usage("--tables applies to a database SOURCE; the source is a directory")),
            SourceArg::Dir(p) => Some(Measured::Dir(measure_source(&p)?)),
        },
        (None, Some(_)) if args.tables.is_some() => return Err(Error::usage("--tables applies to a database SOURCE, not --size")),
        (None, Some(_)) => None,
    };
    let size = match (&args.size, &measured) {
        (Some(s), _) => parse_size(s).map_err(usage)? as f64,
        (None, Some(m)) => m.bytes() as f64,
        _ => unreachable!(),
    };
    let pack_speed = match &args.pack_speed {
        Some(r) => parse_rate(r).map_err(usage)?,
        None => measured.as_ref().map(|m| m.pack_rate()).unwrap_or_else(measure_pack_rate),
    };
    let inputs = Inputs {
        size,
        bandwidth_bps: parse_bandwidth(&args.bandwidth).map_err(usage)?,
        utilization: args.utilization,
        change_rate: args.change_rate.as_deref().map(parse_rate).transpose().map_err(usage)?.unwrap_or(0.0),
        source_read: match (&args.source_read, &measured) {
            (Some(r), _) => parse_rate(r).map_err(usage)?,
            (None, Some(m)) => m.source_read(),
            (None, None) => f64::INFINITY,
        },
        pack_speed,
        devices_at_once: args.devices_at_once,
        compress_ratio: measured.as_ref().map_or(1.0, |m| m.compress_ratio()),
    };
    let profiles = load_profiles(args.profiles.as_deref())?;
    let a = advise::advise(&inputs, &profiles, args.device.as_deref()).map_err(usage)?;

    if output::get().json {
        let mut v = serde_json::to_value(&a).expect("advice serializes");
        v["ok"] = serde_json::json!(true);
        if let Some(m) = &measured {
            v["measured"] = serde_json::to_value(m).expect("serializes");
        }
        crate::outln!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = std::io::stdout().lock();
    let mut w = |s: String| writeln!(o, "{s}").map_err(|source| Error::Write { path: "-".into(), source });
    match &measured {
        Some(Measured::Dir(m)) => w(format!(
            "measured: {} in {} files; sample of {} compresses to {:.0} %; read {}/s, pack {}/s on this machine",
            fmt_bytes(m.bytes),
            m.files,
            fmt_bytes(m.sample_bytes),
            m.compress_ratio * 100.0,
            fmt_bytes(m.read_rate as u64),
            fmt_bytes(m.pack_rate as u64)
        ))?,
        Some(Measured::Db { db, compress_ratio, pack_rate, source_read }) => {
            w(format!(
                "measured: {} {}, ~{} rows, {} of table data{} (size from the {})",
                db.tables,
                if db.tables == 1 { "table" } else { "tables" },
                db.rows,
                fmt_bytes(db.bytes),
                db.index_bytes.map(|i| format!(" + {} of indexes, not moved", fmt_bytes(i))).unwrap_or_default(),
                db.size_from
            ))?;
            w(format!(
                "          sample of {} rows from {} {} in {:.1} s: {} encoded, compresses to {:.0} %; read {}/s ({} rows/s, {}/s of table data), pack {}/s on this machine",
                db.sample_rows,
                db.sample_tables,
                if db.sample_tables == 1 { "table" } else { "tables" },
                db.sample_secs,
                fmt_bytes(db.sample_bytes),
                compress_ratio * 100.0,
                fmt_bytes(db.read_rate as u64),
                db.read_rows_per_sec.round(),
                fmt_bytes(*source_read as u64),
                fmt_bytes(*pack_rate as u64)
            ))?;
        }
        None => {}
    }
    if let Some(Measured::Db { db, .. }) = &measured {
        if db.unanalyzed_tables > 0 {
            output::warn(format!(
                "{} of {} tables have no row statistics yet, so the row estimate leaves them out; run ANALYZE (PostgreSQL) or ANALYZE TABLE (MySQL)",
                db.unanalyzed_tables, db.tables
            ));
        }
    }
    if let Some(m) = &measured {
        w(format!(
            "packed with zstd:3: {:.0} % of the source = {} on the devices (compression ratio {:.2}); the network moves it as it is",
            m.compress_ratio() * 100.0,
            fmt_bytes((size * m.compress_ratio()) as u64),
            1.0 / m.compress_ratio().max(1e-9)
        ))?;
    }
    let n = &a.network;
    w(format!(
        "data {}; link {:.3} Gbps at {:.0} % = {}/s",
        fmt_bytes(size as u64),
        inputs.bandwidth_bps / 1e9,
        inputs.utilization * 100.0,
        fmt_bytes(n.effective_rate as u64)
    ))?;
    w(format!(
        "{:<10} {:>12}   transfer {}, CDC catch-up {}",
        "network",
        fmt_duration(n.total_secs),
        fmt_duration(n.transfer_secs),
        fmt_duration(n.catch_up_secs)
    ))?;
    let d = &a.devices;
    w(format!(
        "{:<10} {:>12}   {} × {}: delivery {}, fill {} in {} wave(s) ({}), turnaround {}, ship {}, ingest {}, CDC catch-up {} ({} of changes)",
        "devices",
        fmt_duration(d.total_secs),
        d.devices,
        d.device,
        fmt_duration(d.delivery_secs),
        fmt_duration(d.fill_secs),
        d.waves.len(),
        d.waves[0].bound,
        fmt_duration(d.turnaround_secs),
        fmt_duration(d.ship_secs),
        fmt_duration(d.ingest_secs),
        fmt_duration(d.catch_up_secs),
        fmt_bytes(d.backlog as u64)
    ))?;
    for alt in &a.alternatives {
        w(format!("{:<10} {:>12}   {} × {}", "", fmt_duration(alt.total_secs), alt.devices, alt.device))?;
    }
    w(format!("recommendation: {} — {}", a.recommendation, a.reason))?;
    for warning in &a.warnings {
        output::warn(warning);
    }
    Ok(ExitCode::SUCCESS)
}
