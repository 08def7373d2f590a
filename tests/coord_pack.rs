//! One pack made by workers on several hosts through a PostgreSQL
//! coordinator: real worker processes, each with its own host name and
//! its own disk directory; one is killed (SIGKILL) in the middle of a
//! table. Then `verify` and `unpack` read every host's disks: the tables
//! come back equal to the source, a corrupted byte is named by host, disk
//! and chunk, and a host whose disks are missing is named with its chunks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const PASS: &str = "shared pack passphrase";

/// One big table (several chunk files of 256 KiB) and a few small ones,
/// with a key, a foreign key and awkward values.
const SOURCE_SQL: &str = "
    CREATE TABLE a_big (id bigint PRIMARY KEY, label text NOT NULL, amount numeric(14,4), at timestamptz);
    INSERT INTO a_big SELECT g, repeat(md5(g::text), 3), g / 7.0, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
      FROM generate_series(1, 150000) g;
    CREATE TABLE b_customers (id int PRIMARY KEY, name text, tags text[], doc jsonb);
    INSERT INTO b_customers SELECT g, 'cust ' || g, ARRAY['x', g::text], jsonb_build_object('n', g) FROM generate_series(1, 20000) g;
    CREATE TABLE c_orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES b_customers (id), total numeric(10,2), note text);
    INSERT INTO c_orders SELECT g, 1 + g % 20000, (g % 997) / 3.0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END FROM generate_series(1, 40000) g;
    CREATE TABLE d_blobs (id int PRIMARY KEY, data bytea);
    INSERT INTO d_blobs SELECT g, decode(md5(g::text) || md5((g + 1)::text), 'hex') FROM generate_series(1, 30000) g;
    CREATE TABLE e_empty (id int PRIMARY KEY, v text);
    CREATE TABLE f_events (id bigint PRIMARY KEY, kind text, at date);
    INSERT INTO f_events SELECT g, 'k' || (g % 13), DATE '2020-01-01' + g % 2000 FROM generate_series(1, 50000) g;
    ANALYZE;";

const TABLES: &[(&str, &str)] = &[("a_big", "150000"), ("b_customers", "20000"), ("c_orders", "40000"), ("d_blobs", "30000"), ("e_empty", "0"), ("f_events", "50000")];

struct Hosts {
    dir: tempfile::TempDir,
    ctl: TestDb,
    task: String,
}

impl Hosts {
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn disk(&self, host: &str) -> PathBuf {
        self.p(&format!("{host}/d1"))
    }

    fn pass(&self) -> String {
        self.p("pass").display().to_string()
    }

    /// A worker on `host`: the first one is `pack --coordinator`, which
    /// creates the task; the others are `barge worker`.
    fn spawn(&self, src: &TestDb, host: &str, first: bool) -> Child {
        fs::create_dir_all(self.disk(host)).unwrap();
        let mut c = barge();
        if first {
            c.args(["pack", &src.url, "--chunk-size", "256KiB", "--segment-size", "16KiB", "--lease-timeout", "3", "--no-cdc"]);
        } else {
            c.args(["worker", "--wait", "60"]);
        }
        c.args(["--coordinator", &self.ctl.url, "--task", &self.task, "--host-name", host, "--passphrase-file", &self.pass()])
            .arg("--disk")
            .arg(self.disk(host))
            .env_remove("BARGE_PASSPHRASE")
            .env("BARGE_STATE_DIR", self.p("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn with_disks(&self, args: &[&str], hosts: &[&str]) -> Output {
        let mut c = barge();
        c.args(args);
        for h in hosts {
            c.arg("--disk").arg(self.disk(h));
        }
        c.args(["--passphrase-file", &self.pass()]).env_remove("BARGE_PASSPHRASE").stdin(Stdio::null());
        run(&mut c)
    }
}

fn chunk_files(disk: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pack in fs::read_dir(disk.join("barge")).into_iter().flatten().flatten() {
        for f in fs::read_dir(pack.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|e| e == "bgc") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Waits until some worker holds the lease on `a_big` and has finished a
/// chunk file of it; returns that worker's pid.
async fn holder_of_big_table(h: &Hosts, workers: &mut [(String, Child)]) -> u32 {
    let started = Instant::now();
    loop {
        let row = h
            .ctl
            .try_query_row(&format!(
                "SELECT w.pid::text, w.host FROM barge_control.units u JOIN barge_control.workers w ON w.task = u.task AND w.id = u.owner
                  WHERE u.task = '{}' AND u.kind = 'pack' AND u.table_key = 'public.a_big' AND u.status = 'leased'",
                h.task
            ))
            .await;
        if let Ok([Some(pid), Some(_)]) = row.as_deref() {
            let pid: u32 = pid.parse().unwrap();
            let host = &workers.iter().find(|w| w.1.id() == pid).expect("a worker of this test holds it").0;
            if !chunk_files(&h.disk(host)).is_empty() {
                return pid;
            }
        }
        for (host, c) in workers.iter_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!("worker {host} ended ({st:?}) before the big table was half packed");
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no worker took the big table");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_pack_one_database_one_dies_and_every_disk_set_is_checked_by_host() {
    let src = TestDb::new(Engine::Postgres, "cpack_src").await;
    exec(&src, SOURCE_SQL).await;
    let ctl = TestDb::new(Engine::Postgres, "cpack_ctl").await;
    let h = Hosts { dir: tempfile::tempdir().unwrap(), ctl, task: "pack-three-hosts".into() };
    fs::write(h.p("pass"), format!("{PASS}\n")).unwrap();

    let mut workers = vec![("h1".to_string(), h.spawn(&src, "h1", true))];
    workers.push(("h2".to_string(), h.spawn(&src, "h2", false)));
    workers.push(("h3".to_string(), h.spawn(&src, "h3", false)));
    let victim = holder_of_big_table(&h, &mut workers).await;
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let mut dead = String::new();
    let mut alive = Vec::new();
    for (host, c) in workers {
        let killed = c.id() == victim;
        let out = c.wait_with_output().unwrap();
        if killed {
            dead = host;
            continue;
        }
        assert_ok(&out, &format!("worker {host}"));
        let t = stdout(&out);
        assert!(t.contains("complete") && t.contains("6 tables"), "worker {host}:\n{t}");
        alive.push(host);
    }
    let all = ["h1", "h2", "h3"];

    // The dead worker's table was packed again by another; whatever it
    // left on its disk is a leftover, not part of the pack.
    let taken_over = h
        .ctl
        .query_row(&format!("SELECT attempts::text, host FROM barge_control.units WHERE task = '{}' AND table_key = 'public.a_big'", h.task))
        .await;
    assert_eq!(taken_over[0].as_deref(), Some("2"), "a_big was leased twice");
    assert_ne!(taken_over[1].as_deref(), Some(dead.as_str()), "a_big is recorded on a live host");
    let out = h.with_disks(&["verify"], &all);
    assert_ok(&out, "verify over every host's disks");
    let t = text(&out);
    if !chunk_files(&h.disk(&dead)).is_empty() {
        assert!(t.contains("leftover"), "the dead worker's files are noted as leftovers:\n{t}");
    }
    let out = h.with_disks(&["verify", "--deep"], &all);
    assert_ok(&out, "verify --deep over every host's disks");

    // Unpacked from every host's disks: the tables equal the source.
    let dst = TestDb::new(Engine::Postgres, "cpack_dst").await;
    let state = h.p("unpack-state").display().to_string();
    let out = h.with_disks(&["unpack", &dst.url, "--state-dir", &state], &all);
    assert_ok(&out, "unpack from every host's disks");
    assert_ok(&run(barge().args(["validate", &src.url, &dst.url])), "validate the unpacked copy");
    for (table, n) in TABLES {
        assert_eq!(dst.query_row(&format!("SELECT count(*) FROM {table}")).await[0].as_deref(), Some(*n), "{table}");
    }
    exec(&dst, "INSERT INTO c_orders (id, customer_id, total) VALUES (40001, 1, 1.00)").await;

    // A live host whose disk holds chunks of the pack.
    let bad = alive.iter().find(|x| *x == "h2" && !chunk_files(&h.disk(x)).is_empty()).or_else(|| alive.iter().find(|x| !chunk_files(&h.disk(x)).is_empty())).expect("a live host holds chunks").clone();
    let disk = h.disk(&bad).display().to_string();

    // A host's disks missing: named, with the chunks they hold.
    let rest: Vec<&str> = all.iter().copied().filter(|x| *x != bad).collect();
    let out = h.with_disks(&["verify"], &rest);
    assert!(!out.status.success(), "verify without {bad}'s disks must fail");
    let t = text(&out);
    let first = chunk_files(&h.disk(&bad))[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(t.contains(&format!("host {bad}'s disks are missing")) && t.contains(&disk) && t.contains(&first), "names the host, its disk and its chunks:\n{t}");
    let dst2 = TestDb::new(Engine::Postgres, "cpack_dst2").await;
    let out = h.with_disks(&["unpack", &dst2.url, "--state-dir", &h.p("unpack-2").display().to_string()], &rest);
    assert!(!out.status.success(), "unpack without {bad}'s disks must fail");
    assert!(text(&out).contains(&format!("host {bad}")), "unpack names the missing host:\n{}", text(&out));

    // One corrupted byte in a chunk on that host's disk.
    let chunk = chunk_files(&h.disk(&bad))[0].clone();
    let mut bytes = fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&chunk, bytes).unwrap();
    let name = chunk.file_name().unwrap().to_string_lossy().into_owned();
    for args in [&["verify"][..], &["verify", "--deep"][..]] {
        let out = h.with_disks(args, &all);
        assert!(!out.status.success(), "{args:?} must fail on a corrupted chunk");
        let t = text(&out);
        assert!(t.contains(&format!("host {bad}")) && t.contains(&disk) && t.contains(&name), "{args:?} names the host, the disk and the chunk:\n{t}");
    }
    let dst3 = TestDb::new(Engine::Postgres, "cpack_dst3").await;
    let out = h.with_disks(&["unpack", &dst3.url, "--state-dir", &h.p("unpack-3").display().to_string()], &all);
    assert!(!out.status.success(), "unpack must refuse a corrupted chunk");
    let t = text(&out);
    assert!(t.contains(&format!("host {bad}")) && t.contains(&name), "unpack names the host and the chunk:\n{t}");

    for db in [src, dst, dst2, dst3, h.ctl] {
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_pack_refuses_what_it_cannot_share() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().display().to_string();
    let ctl = "postgres://nobody@127.0.0.1:1/x";
    for (args, want) in [
        (vec!["pack", &disk, "--disk", &disk, "--coordinator", ctl, "--task", "t"], "is a directory"),
        (vec!["pack", "postgres://u@127.0.0.1:1/db", &disk, "--coordinator", ctl, "--task", "t"], "--disk DIR"),
        (vec!["pack", "postgres://u@127.0.0.1:1/db", "--disk", &disk, "--resume", "--coordinator", ctl, "--task", "t"], "--resume"),
    ] {
        let out = run(barge().args(&args).env("BARGE_PASSPHRASE", "x"));
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(want), "{args:?}:\n{}", text(&out));
    }
}
