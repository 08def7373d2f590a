//! `barge pack DBURL --disk DIR... --coordinator URL --task NAME` and
//! `barge worker --disk DIR...` on a pack task: one pack made by workers
//! on many hosts, each filling its own disks (the units and counters are
//! in [`crate::coord::pack`]).
//!
//! Every worker runs the same loop: wait for the plan (or make it, if it
//! leases the plan unit first), unlock the pack's master key with its own
//! copy of the passphrase, number its disks, then lease tables and pack
//! each whole onto its disks until none is left. The worker that leases
//! the merge unit then builds the one signed manifest from what every
//! table's finisher reported; each worker writes a copy of it on its own
//! disks and deletes what it wrote that the manifest does not list.
//!
//! A table whose worker died is leased again and packed again by another
//! worker; the dead worker's files are never in the manifest (it lists
//! only what a lease's finisher reported). Every chunk id ever handed out
//! and not listed is in the manifest's `abandoned` list, so `verify` notes
//! such a file on a disk as a leftover, not as tampering.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::coord::lease::Kind;

use crate::advise::fmt_bytes;
use crate::commands::output;
use crate::coord::lease::Lease;
use crate::coord::pack::{CHUNK_IDS, DEVICE_NUMBERS, POLL};
use crate::coord::{Session, Settings};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::pack::catalog::{Catalog, DatabaseInfo, Entry};
use crate::pack::crypto::{MasterKey, Sealed, Signer};
use crate::pack::device::{self, Backend, DeviceDir, DeviceMarker};
use crate::pack::format::{self, FORMAT_VERSION};
use crate::pack::manifest::{self, ChunkRecord, DeviceRecord, Identity, Manifest};
use crate::pack::packer::{self, PartOptions};
use crate::pack::source::{TablePlan, TableSource};
use crate::pack::{KeyInput, PackOptions};
use crate::task::pack_source::DatabaseSource;

/// What `pack` takes to share its work with other workers.
#[derive(Debug, Args, Clone, Default)]
pub struct SharedPackArgs {
    /// Share this pack with workers on other hosts (`barge worker --coordinator URL --task NAME --disk DIR...`): each packs the tables it leases onto its own disks, and one signed manifest covers them all. A PostgreSQL database holds the plan and the leases (schema barge_control). Database sources only. Password from BARGE_COORDINATOR_PASSWORD or ?password_file=
    #[arg(long, value_name = "URL", requires = "task")]
    pub coordinator: Option<String>,
    /// The shared pack's name in the coordinator: workers join it by this name
    #[arg(long, value_name = "NAME", requires = "coordinator")]
    pub task: Option<String>,
    /// Seconds a worker's lease on a table lasts without a heartbeat: a worker that stops for longer loses the table to the others, which pack it again
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_timeout: u64,
    /// The host name this worker's disks are recorded under in the manifest, which verify and unpack name [default: the machine's host name]
    #[arg(long, value_name = "NAME", requires = "coordinator")]
    pub host_name: Option<String>,
    /// The task's stored command line, when `barge worker` runs it.
    #[arg(skip)]
    pub stored: Option<Vec<String>>,
}

/// The plan unit's result: what every worker needs to pack its share.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    identity: Identity,
    source: String,
    database: DatabaseInfo,
    tables: Vec<PlannedTable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlannedTable {
    name: String,
    schema: Value,
    estimated_rows: u64,
    estimated_bytes: u64,
}

impl PlannedTable {
    fn plan(&self) -> TablePlan {
        TablePlan { name: self.name.clone(), schema: self.schema.clone(), estimated_rows: self.estimated_rows, estimated_bytes: self.estimated_bytes }
    }
}

/// A `pack` unit's result: one table's entry and the chunk files that
/// hold it, on the finisher's disks.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Packed {
    worker: String,
    host: String,
    entry: Entry,
    chunks: Vec<ChunkRecord>,
    devices: Vec<DeviceRecord>,
}

/// What the shared run needs of `pack`'s own flags.
pub struct Run<'a> {
    pub args: &'a SharedPackArgs,
    pub source: &'a Endpoint,
    pub source_arg: &'a str,
    pub disks: Vec<PathBuf>,
    pub tables: Option<&'a str>,
    pub capture: bool,
    pub opts: PackOptions,
    pub passphrase: &'a dyn Fn(bool) -> Result<Vec<u8>>,
}

/// This process's command line after the `pack` word.
fn pack_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.iter().position(|a| a == "pack") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

pub fn run(r: Run) -> Result<ExitCode> {
    let (Some(url), Some(task)) = (&r.args.coordinator, &r.args.task) else { return Err(Error::usage("--coordinator needs --task NAME")) };
    if !r.source.kind().is_database() {
        return Err(Error::usage(format!("pack --coordinator shares a database's tables among workers; {} is not a database", r.source_arg))
            .with_hint("pack a directory tree with one `barge pack DIR DISK...`"));
    }
    if r.disks.is_empty() {
        return Err(Error::usage("name this worker's disks with --disk DIR (one flag per disk)"));
    }
    for d in &r.disks {
        if !d.is_dir() {
            return Err(Error::usage(format!("disk {} is not a directory; is it mounted?", d.display())));
        }
    }
    let seg = r.opts.segment_size;
    if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&seg) || r.opts.chunk_size < seg as u64 {
        return Err(Error::usage("--segment-size or --chunk-size is out of range"));
    }
    let host = r.args.host_name.clone().unwrap_or_else(crate::coord::host_name);
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
    let settings = Settings { url: url.clone(), task: task.clone(), lease: Duration::from_secs(r.args.lease_timeout) };
    let session = rt.block_on(Session::open(&settings))?;
    let line = match &r.args.stored {
        Some(line) => line.clone(),
        None => crate::commands::worker::shared_args(&pack_argv()),
    };
    let published = rt.block_on(session.publish_pack(&line, &r.source.to_string()))?;
    if !published.created && published.args != line {
        return Err(Error::Usage(format!(
            "task {task} in {} was started with other arguments:\n  stored:  {}\n  yours:   {}",
            session.display,
            published.args.join(" "),
            line.join(" ")
        ))
        .with_hint(format!("join it with `barge worker --coordinator URL --task {task} --disk DIR...`, or choose another --task name")));
    }
    if published.created {
        output::info(format!("task {task}: created in the coordinator {}; more workers join with `barge worker --coordinator URL --task {task} --disk DIR...`", session.display));
    } else {
        output::info(format!("task {task}: joined as worker {} (host {host})", session.worker));
    }
    let passphrase = (r.passphrase)(published.created)?;
    rt.block_on(session.register())?;
    // The heartbeat is a task of this runtime: spawned from inside it.
    let heartbeat = {
        let _inside = rt.enter();
        session.start_heartbeat()
    };
    let outcome = work(&r, &rt, &session, &host, &passphrase);
    if let Err(e) = &outcome {
        rt.block_on(session.give_back_pack_units(e));
    }
    heartbeat.abort();
    rt.block_on(session.sign_off(if outcome.is_ok() { "finished" } else { "failed" }));
    outcome
}

fn check_task(p: &crate::coord::pack::PackProgress, task: &str) -> Result<()> {
    if p.state == "failed" {
        return Err(crate::coord::lease::task_failed(task, p.error.as_deref()));
    }
    Ok(())
}

fn work(r: &Run, rt: &tokio::runtime::Runtime, session: &Arc<Session>, host: &str, passphrase: &[u8]) -> Result<ExitCode> {
    let mapping = crate::commands::migrate::build_mapping(r.tables, None)?;
    let mut db = DatabaseSource::open(r.source, &mapping, r.tables, r.capture)?;
    let progress = super::bars::for_cli();

    // The plan: made once, by whichever worker leases it first.
    let mut said = false;
    let plan: Plan = loop {
        let p = rt.block_on(session.pack_progress())?;
        check_task(&p, &session.task)?;
        if let Some(v) = rt.block_on(session.pack_plan())? {
            break serde_json::from_value(v).map_err(|e| Error::other(format!("task {}: the plan in the coordinator does not parse with this barge ({e})", session.task)).with_hint("run the same barge version on every worker"))?;
        }
        if let Some(lease) = rt.block_on(session.lease(Kind::Schema))? {
            let plan = make_plan(&mut db, r, passphrase)?;
            let names: Vec<String> = plan.tables.iter().map(|t| t.name.clone()).collect();
            let v = serde_json::to_value(&plan).expect("plan serializes");
            if rt.block_on(session.finish_pack_plan(&lease, &v, &names))? {
                output::info(format!("task {}: planned {} tables; pack {}", session.task, names.len(), plan.identity.pack_id_hex()));
            }
            continue;
        }
        if !said {
            output::info(format!("task {}: waiting for the plan", session.task));
            said = true;
        }
        std::thread::sleep(POLL);
    };
    let master = packer::unlock_identity(&plan.identity, &KeyInput { passphrase: Some(passphrase.to_vec()), ..Default::default() })?;
    let signer = plan.identity.open_signer(&master).ok_or_else(|| Error::other("the pack's signing key does not open with its master key"))?;
    let pid = plan.identity.pack_id_hex();

    // This worker's disks, numbered pack-wide.
    let mut disks: Vec<(PathBuf, u32)> = Vec::new();
    let mut records = Vec::new();
    for path in &r.disks {
        let d = DeviceDir::new(path, &pid);
        d.ensure_dir().map_err(|source| Error::Write { path: d.dir().to_path_buf(), source })?;
        let marker = match device::read_marker(d.dir()) {
            Some(m) if m.pack_id == pid => m,
            _ => {
                let number = rt.block_on(session.take_number(DEVICE_NUMBERS))? as u32;
                let m = DeviceMarker { pack_id: pid.clone(), number, label: path.display().to_string(), host: Some(host.to_string()) };
                d.write_atomic(device::DEVICE_NAME, &serde_json::to_vec_pretty(&m).expect("marker serializes"))
                    .map_err(|source| Error::Write { path: d.dir().join(device::DEVICE_NAME), source })?;
                m
            }
        };
        if disks.iter().any(|(_, n)| *n == marker.number) {
            return Err(Error::usage(format!("disk {} is named twice (or holds a copy of another disk's marker)", path.display())));
        }
        records.push(DeviceRecord { number: marker.number, label: marker.label.clone(), host: marker.host.clone().or_else(|| Some(host.to_string())) });
        disks.push((path.clone(), marker.number));
    }
    let plan_len = serde_json::to_vec(&plan).map_or(0, |v| v.len() as u64);
    let est_bytes: u64 = plan.tables.iter().map(|t| t.estimated_bytes).sum();
    let manifest_reserve = 256 * 1024 + 2 * plan_len + 200 * (est_bytes / plan.identity.chunk_size.min(64 << 20) + plan.tables.len() as u64 + 16);
    let mine = db.tables().to_vec();

    // Tables, one lease at a time; then the merge.
    let mut packed_here: Vec<(String, u64)> = Vec::new();
    let mut said_wait = false;
    let merged = loop {
        let p = rt.block_on(session.pack_progress())?;
        check_task(&p, &session.task)?;
        if p.merge_done {
            break rt.block_on(session.merged())?.ok_or_else(|| Error::other("the merge unit is done but holds no manifest"))?;
        }
        if let Some(lease) = rt.block_on(session.lease(Kind::Pack))? {
            let table = pack_one(r, rt, session, &lease, &plan, &mine, &mut db, &master, &disks, &records, host, manifest_reserve, progress.as_ref())?;
            if let Some(t) = table {
                packed_here.push(t);
            }
            continue;
        }
        if p.packs_left == 0 {
            if let Some(lease) = rt.block_on(session.lease(Kind::Merge))? {
                let v = merge(rt, session, &plan, &master, &signer)?;
                if rt.block_on(session.finish_with(&lease, &v, host, 0))? {
                    rt.block_on(session.finish_task(None))?;
                }
                continue;
            }
        }
        if !said_wait {
            output::info(format!("task {}: waiting for the other workers' tables", session.task));
            said_wait = true;
        }
        std::thread::sleep(POLL);
    };

    // The merged manifest, checked, on each of this worker's disks.
    let bytes = merged
        .get("manifest")
        .and_then(|m| m.as_str())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or_else(|| Error::other("the merged manifest in the coordinator is not readable"))?;
    let decoded = manifest::decode(&bytes).map_err(|e| Error::Mismatch(format!("task {}: the merged manifest in the coordinator: {e}", session.task)))?;
    if decoded.manifest.identity.signer != plan.identity.signer {
        return Err(Error::Mismatch(format!("task {}: the merged manifest is signed by another key than the plan's", session.task)));
    }
    let listed: std::collections::HashSet<u64> = decoded.manifest.chunks.iter().map(|c| c.id).collect();
    let mut removed = 0u64;
    for (path, _) in &disks {
        let d = DeviceDir::new(path, &pid);
        d.write_atomic(device::MANIFEST_NAME, &bytes).map_err(|source| Error::Write { path: d.dir().join(device::MANIFEST_NAME), source })?;
        // Leftovers of a table this worker lost (killed, or its lease
        // taken over): part of nothing.
        for (name, _, _) in device::list_pack_dir(d.dir()).map_err(|source| Error::Read { path: d.dir().into(), source })? {
            let stale = device::parse_part_name(&name).is_some() || device::parse_chunk_name(&name).is_some_and(|id| !listed.contains(&id));
            if stale {
                d.remove(&name).map_err(|source| Error::Write { path: d.dir().join(&name), source })?;
                removed += 1;
            }
        }
    }
    if let Some(out) = &r.opts.manifest_out {
        crate::util::fs::write_durably(out, &bytes)?;
    }
    report(&decoded.manifest, &plan, session, host, &disks, &packed_here, removed, &bytes)
}

/// The plan unit: change capture, the pack's identity, the tables.
fn make_plan(db: &mut DatabaseSource, r: &Run, passphrase: &[u8]) -> Result<Plan> {
    let database = db.begin()?;
    let (identity, _) = packer::new_identity(r.opts.segment_size, r.opts.chunk_size, passphrase, None, r.opts.kdf)?;
    let tables = db
        .tables()
        .iter()
        .map(|t| PlannedTable { name: t.name.clone(), schema: t.schema.clone(), estimated_rows: t.estimated_rows, estimated_bytes: t.estimated_bytes })
        .collect();
    Ok(Plan { identity, source: db.label(), database, tables })
}

/// Packs the leased table onto this worker's disks and reports it. Returns
/// the table and its rows, or `None` when the lease had passed to another
/// worker (what this one wrote is deleted).
#[allow(clippy::too_many_arguments)]
fn pack_one(
    r: &Run,
    rt: &tokio::runtime::Runtime,
    session: &Arc<Session>,
    lease: &Lease,
    plan: &Plan,
    mine: &[TablePlan],
    db: &mut DatabaseSource,
    master: &MasterKey,
    disks: &[(PathBuf, u32)],
    records: &[DeviceRecord],
    host: &str,
    manifest_reserve: u64,
    progress: &dyn crate::progress::Progress,
) -> Result<Option<(String, u64)>> {
    let name = lease.table.clone().unwrap_or_default();
    let fail = |e: Error| -> Error {
        let _ = rt.block_on(session.give_back(lease, &e));
        e
    };
    let planned = plan.tables.iter().find(|t| t.name == name).ok_or_else(|| fail(Error::other(format!("table {name} is leased but not in the plan"))))?;
    // This worker reads the table with its own view of the source: it
    // must be the table the plan describes.
    match mine.iter().find(|t| t.name == name) {
        Some(t) if t.schema == planned.schema => {}
        Some(_) => {
            return Err(fail(Error::Table { table: name.clone(), row: None, message: "its definition on the source differs from the one the task planned".into(), hint: Some("the source changed after the pack started: start the pack again under a new --task name".into()) }))
        }
        None => {
            return Err(fail(Error::Table { table: name.clone(), row: None, message: "this worker does not see it on the source".into(), hint: Some("every worker must reach the same source with the same --tables".into()) }))
        }
    }
    if lease.dirty() {
        output::warn(format!("task {}: packing table {name} again: the worker that had it stopped", session.task));
    }
    let opts = PartOptions {
        identity: &plan.identity,
        master,
        devices: disks,
        capacity: r.opts.capacity,
        slots: r.opts.slots,
        compression: r.opts.compression,
        journal: std::env::temp_dir().join(format!("barge-pack-{}-{}-{}.journal", session.task, session.worker, lease.id)),
        cdc_start: plan.database.cdc.as_ref().map(|c| c.position.clone()),
        manifest_reserve,
        full_hint: format!("table {name} goes back to the other workers; mount more disks on this host (--disk) and start its worker again"),
    };
    let mut ids = || rt.block_on(session.take_number(CHUNK_IDS));
    let part = packer::pack_part(&opts, db, &[planned.plan()], &mut ids, progress).map_err(&fail)?;
    let rows = part.entries.iter().map(|e| if let Entry::Table { rows, .. } = e { *rows } else { 0 }).sum();
    let entry = part.entries.into_iter().next().ok_or_else(|| fail(Error::other(format!("table {name}: packed, but no entry came back"))))?;
    let used: Vec<u32> = part.chunks.iter().map(|c| c.device).collect();
    let result = Packed {
        worker: session.worker.clone(),
        host: host.to_string(),
        entry,
        chunks: part.chunks.clone(),
        devices: records.iter().filter(|d| used.contains(&d.number)).cloned().collect(),
    };
    let v = serde_json::to_value(&result).expect("result serializes");
    if rt.block_on(session.finish_with(lease, &v, host, rows))? {
        return Ok(Some((name, rows)));
    }
    output::warn(format!("task {}: table {name} was taken over by another worker while this one packed it; its chunk files here are deleted", session.task));
    for c in &part.chunks {
        if let Some((path, _)) = disks.iter().find(|d| d.1 == c.device) {
            let _ = DeviceDir::new(path, &plan.identity.pack_id_hex()).remove(&device::chunk_name(c.id));
        }
    }
    Ok(None)
}

/// The merge unit: every table's report into one signed manifest.
///
/// Readers replay each writer slot's chunks in id order and meet the
/// catalog's extents in that order (docs/FORMAT.md, section 5). Each
/// worker packs one table at a time with chunk ids that only grow, so
/// every (worker, slot) pair is its own slot in the merged manifest, and
/// the entries go in the order of their first chunk.
fn merge(rt: &tokio::runtime::Runtime, session: &Session, plan: &Plan, master: &MasterKey, signer: &Signer) -> Result<Value> {
    let done = rt.block_on(session.done_packs())?;
    let mut results: Vec<Packed> = Vec::new();
    for d in &done {
        let p: Packed = serde_json::from_value(d.result.clone()).map_err(|e| Error::other(format!("table {}: its result in the coordinator does not parse ({e})", d.table)))?;
        results.push(p);
    }
    let planned: std::collections::BTreeSet<&str> = plan.tables.iter().map(|t| t.name.as_str()).collect();
    let got: std::collections::BTreeSet<&str> = results.iter().map(|p| match &p.entry {
        Entry::Table { name, .. } => name.as_str(),
        _ => "",
    }).collect();
    if planned != got {
        let missing: Vec<&str> = planned.difference(&got).copied().collect();
        return Err(Error::other(format!("task {}: the merge found tables not packed: {}", session.task, missing.join(", "))));
    }
    let first = |p: &Packed| p.entry.extents().iter().map(|x| x.chunk()).min().unwrap_or(u64::MAX);
    results.sort_by_key(first);
    let mut slots: HashMap<(String, u32), u32> = HashMap::new();
    let mut chunks: Vec<(String, ChunkRecord)> = results.iter().flat_map(|p| p.chunks.iter().map(|c| (p.worker.clone(), c.clone()))).collect();
    chunks.sort_by_key(|c| c.1.id);
    let chunks: Vec<ChunkRecord> = chunks
        .into_iter()
        .map(|(w, mut c)| {
            let n = slots.len() as u32;
            c.slot = *slots.entry((w, c.slot)).or_insert(n);
            c
        })
        .collect();
    let mut devices: BTreeMap<u32, DeviceRecord> = BTreeMap::new();
    for p in &results {
        for d in &p.devices {
            devices.entry(d.number).or_insert_with(|| d.clone());
        }
    }
    let counters = rt.block_on(session.counters())?;
    let next = counters.get(CHUNK_IDS).and_then(|v| v.as_u64()).unwrap_or(1);
    let listed: std::collections::HashSet<u64> = chunks.iter().map(|c| c.id).collect();
    let abandoned: Vec<u64> = (1..next).filter(|id| !listed.contains(id)).collect();
    let catalog = Catalog { source: plan.source.clone(), entries: results.iter().map(|p| p.entry.clone()).collect(), skipped: Vec::new(), database: Some(plan.database.clone()) };
    let m = Manifest {
        format: FORMAT_VERSION,
        identity: plan.identity.clone(),
        generation: 1,
        complete: true,
        written: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        devices: devices.into_values().collect(),
        chunks,
        abandoned,
        catalog: Sealed { salt: vec![], nonce: vec![] },
    };
    let enc = manifest::encode(&m, &catalog, master, signer);
    output::info(format!("task {}: merged {} tables from {} hosts into one manifest", session.task, catalog.entries.len(), {
        let mut h: Vec<&str> = results.iter().map(|p| p.host.as_str()).collect();
        h.sort();
        h.dedup();
        h.len()
    }));
    Ok(json!({"manifest": base64::engine::general_purpose::STANDARD.encode(&enc.bytes), "sha256": hex::encode(enc.sha256)}))
}

#[allow(clippy::too_many_arguments)]
fn report(m: &Manifest, plan: &Plan, session: &Session, host: &str, disks: &[(PathBuf, u32)], packed: &[(String, u64)], removed: u64, bytes: &[u8]) -> Result<ExitCode> {
    use sha2::{Digest, Sha256};
    let sha = hex::encode(Sha256::digest(bytes));
    let signer = plan.identity.signer_fingerprint();
    let mut hosts: Vec<&str> = m.devices.iter().filter_map(|d| d.host.as_deref()).collect();
    hosts.sort();
    hosts.dedup();
    let size: u64 = m.chunks.iter().map(|c| c.size).sum();
    if output::get().json {
        let v = json!({
            "ok": true,
            "pack_id": plan.identity.pack_id_hex(),
            "task": session.task,
            "host": host,
            "hosts": hosts,
            "tables": plan.tables.len(),
            "chunks": m.chunks.len(),
            "bytes": size,
            "packed_here": packed.iter().map(|(t, r)| json!({"table": t, "rows": r})).collect::<Vec<_>>(),
            "disks": disks.iter().map(|(p, n)| json!({"number": n, "path": p.display().to_string()})).collect::<Vec<_>>(),
            "leftovers_removed": removed,
            "manifest_sha256": sha,
            "signer": signer,
            "cdc_start": plan.database.cdc.as_ref().map(|c| c.position.clone()),
        });
        crate::outln!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let mut w = |s: String| writeln!(out, "{s}").map_err(|source| Error::Write { path: "-".into(), source });
    w(format!("pack {}  complete  (task {}, {} hosts: {})", plan.identity.pack_id_hex(), session.task, hosts.len(), hosts.join(", ")))?;
    w(format!("  {} tables in {} chunk files ({})", plan.tables.len(), m.chunks.len(), fmt_bytes(size)))?;
    w(format!(
        "  this worker (host {host}) packed {} of them ({} rows) onto {}",
        packed.len(),
        packed.iter().map(|p| p.1).sum::<u64>(),
        disks.iter().map(|(p, n)| format!("device {n} {}", p.display())).collect::<Vec<_>>().join(", ")
    ))?;
    if removed > 0 {
        w(format!("  removed {removed} leftover files of tables this worker lost to another"))?;
    }
    w(match plan.database.cdc.as_ref() {
        Some(c) => format!("  CDC start position {}", c.position),
        None => "  no CDC start position: the target will be a copy as of the pack".to_string(),
    })?;
    w(format!("  manifest sha256 {sha}  (the same copy on every worker's disks)"))?;
    w(format!("  signer {signer}  (compare with `barge verify` at the receiving site)"))?;
    Ok(ExitCode::SUCCESS)
}
