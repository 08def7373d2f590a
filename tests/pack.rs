//! End-to-end tests of `barge pack`, `verify` and `unpack` on real files,
//! running the real binary; plus property tests of the format through the
//! library.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{pseudo_random_bytes, text};
use tempfile::TempDir;

use crate::support;

const PASS: &str = "correct horse battery staple";

/// A scratch area: a passphrase file, a state dir for journals, and helpers
/// that run the real binary with no inherited secrets.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pass"), format!("{PASS}\n")).unwrap();
        fs::write(dir.path().join("wrong"), "not it\n").unwrap();
        Env { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_barge"));
        c.args(args)
            .env_remove("BARGE_PASSPHRASE")
            .env_remove("BARGE_FAULT_ENOSPC_AFTER")
            .env("BARGE_STATE_DIR", self.p("state"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn pass(&self) -> String {
        self.p("pass").display().to_string()
    }

    fn dev(&self, name: &str) -> String {
        let p = self.p(name);
        fs::create_dir_all(&p).unwrap();
        p.display().to_string()
    }
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// Asserts exit `code` and that the output names every string in `needles`.
#[track_caller]
fn fails(o: Output, code: i32, needles: &[&str]) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(code), "{t}");
    for n in needles {
        assert!(t.contains(n), "expected `{n}` in:\n{t}");
    }
    t
}


fn set_mtime(p: &Path, secs: i64) {
    barge::pack::reader::set_mtime(p, barge::pack::catalog::Mtime(secs, 123_456_789), true).unwrap();
}

/// A tree with the awkward cases: empty file, files around the segment
/// size, a multi-chunk file, many small files, a symlink, a dangling
/// symlink, a non-UTF-8 name, odd modes and old mtimes.
fn make_tree(root: &Path, big: usize) {
    fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    fs::create_dir_all(root.join("small")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big.bin"), pseudo_random_bytes(1, big)).unwrap();
    fs::write(root.join("seg-1"), pseudo_random_bytes(2, 65536 - 1)).unwrap();
    fs::write(root.join("seg"), pseudo_random_bytes(3, 65536)).unwrap();
    fs::write(root.join("seg+1"), pseudo_random_bytes(4, 65536 + 1)).unwrap();
    fs::write(root.join("docs/readme.txt"), "hello\n".repeat(1000)).unwrap();
    fs::write(root.join("docs/deep/er/note.md"), "# note\n").unwrap();
    for i in 0..300 {
        fs::write(root.join(format!("small/{i:03}.txt")), format!("small file {i}\n")).unwrap();
    }
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1");
    fs::write(root.join(odd), b"latin-1 name").unwrap();
    std::os::unix::fs::symlink("docs/readme.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", root.join("dangling")).unwrap();
    fs::set_permissions(root.join("seg"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(root.join("docs/readme.txt"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(root.join("docs/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    set_mtime(&root.join("seg-1"), 1_000_000_000);
    set_mtime(&root.join("link"), 1_100_000_000);
    set_mtime(&root.join("docs/deep/er"), 1_200_000_000);
}

#[derive(Debug, PartialEq)]
enum Node {
    Dir { mode: u32, mtime: (i64, i64) },
    File { mode: u32, mtime: (i64, i64), data: Vec<u8> },
    Link { target: PathBuf, mtime: (i64, i64) },
}

/// Everything pack promises to keep, keyed by relative path.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for e in fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let m = fs::symlink_metadata(e.path()).unwrap();
            let mtime = (m.mtime(), m.mtime_nsec());
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.insert(r, Node::Link { target: fs::read_link(e.path()).unwrap(), mtime });
            } else if m.is_dir() {
                out.insert(r.clone(), Node::Dir { mode, mtime });
                walk(root, &r, out);
            } else {
                out.insert(r, Node::File { mode, mtime, data: fs::read(e.path()).unwrap() });
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

#[track_caller]
fn assert_same_tree(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
    for (k, v) in &sa {
        assert!(v == &sb[k], "{} differs", k.display());
    }
}

fn chunk_files(dev: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for pack in fs::read_dir(Path::new(dev).join("barge")).unwrap() {
        for f in fs::read_dir(pack.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "bgc") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Packs the standard tree onto two devices with small chunks and segments.
fn packed(env: &Env) -> (PathBuf, String, String) {
    let src = env.p("src");
    make_tree(&src, 700_000);
    let (d1, d2) = (env.dev("d1"), env.dev("d2"));
    ok(env.run(&[
        "pack",
        src.to_str().unwrap(),
        &d1,
        &d2,
        "--passphrase-file",
        &env.pass(),
        "--chunk-size",
        "200KiB",
        "--segment-size",
        "64KiB",
    ]));
    (src, d1, d2)
}

#[test]
fn round_trip_over_two_devices_keeps_everything() {
    let env = Env::new();
    let (src, d1, d2) = packed(&env);
    // Data really spread over both devices.
    assert!(chunk_files(&d1).len() >= 2, "{:?}", chunk_files(&d1));
    assert!(chunk_files(&d2).len() >= 2, "{:?}", chunk_files(&d2));
    ok(env.run(&["verify", &d1, &d2]));
    ok(env.run(&["verify", "--deep", &d1, &d2, "--passphrase-file", &env.pass()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, &d2, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
    // Also to a file:// URL.
    let out2 = env.p("out2");
    let url = format!("file://{}", out2.display());
    ok(env.run(&["unpack", &d1, &d2, &url, "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out2);
    // No plaintext of a text file is visible on the devices.
    for c in chunk_files(&d1).iter().chain(&chunk_files(&d2)) {
        let b = fs::read(c).unwrap();
        assert!(!b.windows(11).any(|w| w == b"small file "), "{} holds plaintext", c.display());
    }
}

#[test]
fn json_output_is_one_object() {
    let env = Env::new();
    let src = env.p("src");
    make_tree(&src, 10_000);
    let d1 = env.dev("d1");
    let o = ok(env.run(&["--json", "pack", src.to_str().unwrap(), &d1, "--passphrase-file", &env.pass()]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["complete"], true);
    assert_eq!(v["files"], 308);
    assert_eq!(v["symlinks"], 2);
    let o = ok(env.run(&["--json", "verify", &d1]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    // A failing verify still prints exactly one JSON object, and exits 3.
    let c = chunk_files(&d1)[0].clone();
    fs::remove_file(&c).unwrap();
    let o = env.run(&["--json", "verify", &d1]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["findings"].to_string().contains(&name(&c)), "{v}");
}

/// Each corruption, on a fresh copy of a packed pair of devices.
fn with_copy(env: &Env, d1: &str, d2: &str, tag: &str, f: impl FnOnce(&str, &str)) {
    let (c1, c2) = (env.p(&format!("{tag}-1")), env.p(&format!("{tag}-2")));
    for (from, to) in [(d1, &c1), (d2, &c2)] {
        let st = Command::new("cp").args(["-a", from]).arg(to).status().unwrap();
        assert!(st.success());
    }
    f(c1.to_str().unwrap(), c2.to_str().unwrap());
}

#[test]
fn every_fault_is_caught_and_named() {
    let env = Env::new();
    let (_src, d1, d2) = packed(&env);
    let pass = env.pass();
    let deep = |a: &str, b: &str| env.run(&["verify", "--deep", a, b, "--passphrase-file", &pass]);
    let unpack = |a: &str, b: &str, tag: &str| {
        env.run(&["unpack", a, b, env.p(&format!("out-{tag}")).to_str().unwrap(), "--passphrase-file", &pass])
    };

    // A flipped byte in the middle of a chunk.
    with_copy(&env, &d1, &d2, "flip", |a, b| {
        let c = chunk_files(a)[0].clone();
        let mut data = fs::read(&c).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0x01;
        fs::write(&c, data).unwrap();
        let n = name(&c);
        fails(env.run(&["verify", a, b]), 3, &[&n, "SHA-256 does not match"]);
        fails(deep(a, b), 3, &[&n, "does not authenticate"]);
        fails(unpack(a, b, "flip"), 3, &[&n]);
    });

    // A truncated chunk.
    with_copy(&env, &d1, &d2, "trunc", |a, b| {
        let c = chunk_files(b)[0].clone();
        let len = fs::metadata(&c).unwrap().len();
        fs::OpenOptions::new().write(true).open(&c).unwrap().set_len(len - 100).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&c), "truncated"]);
        fails(deep(a, b), 3, &[&name(&c), "truncated"]);
        fails(unpack(a, b, "trunc"), 3, &[&name(&c), "truncated"]);
    });

    // Two chunk files swapped (reordered).
    with_copy(&env, &d1, &d2, "swap", |a, b| {
        let cs = chunk_files(a);
        let (x, y) = (&cs[0], &cs[1]);
        let tmp = x.with_extension("tmp");
        fs::rename(x, &tmp).unwrap();
        fs::rename(y, x).unwrap();
        fs::rename(&tmp, y).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(x), &name(y), "copied or renamed"]);
        let t = fails(deep(a, b), 3, &[&name(x), "copied or renamed"]);
        let named = error_lines(&t).iter().filter(|l| l.contains("copied or renamed")).count();
        assert_eq!(named, 2, "each swapped chunk is named once:\n{t}");
    });

    // A chunk duplicated onto the other device.
    with_copy(&env, &d1, &d2, "dup", |a, b| {
        let c = chunk_files(a)[0].clone();
        let other_dir = chunk_files(b)[0].parent().unwrap().to_path_buf();
        fs::copy(&c, other_dir.join(c.file_name().unwrap())).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&c), "more than once"]);
    });

    // A chunk copied over another one of the same pack.
    with_copy(&env, &d1, &d2, "copy", |a, b| {
        let cs = chunk_files(a);
        fs::copy(&cs[0], &cs[1]).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&cs[1]), "copied or renamed"]);
    });

    // A missing chunk.
    with_copy(&env, &d1, &d2, "missing", |a, b| {
        let c = chunk_files(b).last().unwrap().clone();
        fs::remove_file(&c).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&c), "is missing"]);
        fails(deep(a, b), 3, &[&name(&c), "missing"]);
        fails(unpack(a, b, "missing"), 3, &[&name(&c), "is missing"]);
    });

    // An extra chunk file.
    with_copy(&env, &d1, &d2, "extra", |a, b| {
        let c = chunk_files(a)[0].clone();
        let extra = c.with_file_name("c0000009999.bgc");
        fs::copy(&c, &extra).unwrap();
        fails(env.run(&["verify", a, b]), 3, &["c0000009999.bgc", "not in the manifest"]);
    });

    // A chunk from another pack, under this pack's chunk name.
    with_copy(&env, &d1, &d2, "foreign", |a, b| {
        let other_src = env.p("other-src");
        fs::create_dir_all(&other_src).unwrap();
        fs::write(other_src.join("x"), pseudo_random_bytes(9, 300_000)).unwrap();
        let od = env.dev("other-dev");
        ok(env.run(&["pack", other_src.to_str().unwrap(), &od, "--passphrase-file", &pass, "--chunk-size", "200KiB", "--segment-size", "64KiB"]));
        let theirs = chunk_files(&od)[0].clone();
        let ours = chunk_files(a)[0].clone();
        fs::copy(&theirs, &ours).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&ours), "another pack"]);
        fails(deep(a, b), 3, &[&name(&ours), "another pack"]);
    });

    // Two segments of one chunk swapped in place: sizes still match.
    with_copy(&env, &d1, &d2, "segswap", |a, b| {
        let c = chunk_files(a)[0].clone();
        let data = fs::read(&c).unwrap();
        // Each sealed segment with the length word before it.
        let frames: Vec<_> = barge::pack::format::segment_ranges_v2(&data).into_iter().map(|r| r.start - 4..r.end).collect();
        assert!(frames.len() >= 3, "need two full segments");
        let mut swapped = data[..80].to_vec();
        swapped.extend_from_slice(&data[frames[1].clone()]);
        swapped.extend_from_slice(&data[frames[0].clone()]);
        swapped.extend_from_slice(&data[frames[1].end..]);
        assert_eq!(swapped.len(), data.len());
        fs::write(&c, swapped).unwrap();
        fails(env.run(&["verify", a, b]), 3, &[&name(&c), "SHA-256"]);
        fails(deep(a, b), 3, &[&name(&c), "segments 0, 1 (of"]);
    });

    // The manifest altered: its signature no longer matches.
    with_copy(&env, &d1, &d2, "manifest", |a, b| {
        for dev in [a, b] {
            let m = chunk_files(dev)[0].with_file_name("manifest.bgm");
            let mut data = fs::read(&m).unwrap();
            let i = data.windows(6).position(|w| w == b"\"size\"").unwrap() + 9;
            data[i] = if data[i] == b'1' { b'2' } else { b'1' };
            fs::write(&m, data).unwrap();
        }
        fails(env.run(&["verify", a, b]), 3, &["manifest.bgm", "signature"]);
    });

    // A wrong passphrase.
    let wrong = env.p("wrong").display().to_string();
    fails(env.run(&["verify", "--deep", &d1, &d2, "--passphrase-file", &wrong]), 1, &["wrong passphrase"]);
    fails(env.run(&["unpack", &d1, &d2, env.p("out-wrong").to_str().unwrap(), "--passphrase-file", &wrong]), 1, &["wrong passphrase"]);
    assert!(!env.p("out-wrong").exists() || fs::read_dir(env.p("out-wrong")).unwrap().next().is_none());

    // A missing device.
    fails(env.run(&["verify", &d1]), 3, &["device 2", "is missing", &d2]);
    fails(env.run(&["unpack", &d1, env.p("out-nodev").to_str().unwrap(), "--passphrase-file", &pass]), 3, &["device 2", "is missing"]);

    // The originals were untouched by all that.
    ok(env.run(&["verify", &d1, &d2]));
}

/// Every regular file under `root`, relative path to bytes.
fn files_of(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    snapshot(root)
        .into_iter()
        .filter_map(|(p, n)| match n {
            Node::File { data, .. } => Some((p, data)),
            _ => None,
        })
        .collect()
}

/// Lines of the output that start with `ERROR`.
fn error_lines(t: &str) -> Vec<&str> {
    t.lines().filter(|l| l.starts_with("ERROR")).collect()
}

/// A tree of many small files and a few large ones, packed onto two
/// devices by one writer in 256 KiB chunks of 16 KiB segments.
fn packed_many(env: &Env, extra: &[&str]) -> (PathBuf, String, String) {
    let src = env.p("src");
    fs::create_dir_all(src.join("many")).unwrap();
    for i in 0..400 {
        fs::write(src.join(format!("many/{i:03}")), pseudo_random_bytes(300 + i, 3000 + (i as usize * 7) % 2000)).unwrap();
    }
    fs::write(src.join("large-1"), pseudo_random_bytes(1, 600_000)).unwrap();
    fs::write(src.join("large-2"), pseudo_random_bytes(2, 300_000)).unwrap();
    let (d1, d2) = (env.dev("d1"), env.dev("d2"));
    let mut args = vec!["pack", src.to_str().unwrap(), &d1, &d2, "--chunk-size", "256KiB", "--segment-size", "16KiB", "--threads", "1"];
    let pass = env.pass();
    args.extend(["--passphrase-file", &pass]);
    args.extend_from_slice(extra);
    ok(env.run(&args));
    (src, d1, d2)
}

/// One flipped byte: the unpack restores every file that does not touch
/// the damaged segment (later segments of the same chunk included), never
/// leaves a damaged file under its real name, and its summary counts what
/// was restored and what was not.
#[test]
fn a_flipped_byte_costs_only_the_files_in_its_segment() {
    let env = Env::new();
    let (src, d1, d2) = packed_many(&env, &[]);
    let chunk = chunk_files(&d1)[1].clone();
    let mut data = fs::read(&chunk).unwrap();
    // Inside segment 3 of 16: segments 4.. of this chunk stay intact.
    let seg3 = barge::pack::format::segment_ranges_v2(&data)[3].clone();
    let at = seg3.start + seg3.len() / 2;
    data[at] ^= 0x40;
    fs::write(&chunk, data).unwrap();
    let out = env.p("out");
    let o = env.run(&["unpack", &d1, &d2, out.to_str().unwrap(), "--passphrase-file", &env.pass()]);
    let t = fails(o, 3, &[&name(&chunk), "segment 3", "damaged"]);
    let (want, got) = (files_of(&src), files_of(&out));
    for (p, bytes) in &got {
        assert!(want.get(p) == Some(bytes), "{} is under its real name with the wrong bytes\n{t}", p.display());
    }
    let lost: Vec<_> = want.keys().filter(|p| !got.contains_key(*p)).collect();
    // 16 KiB of 3-5 KB files: a handful, never the rest of the chunk.
    assert!(!lost.is_empty() && lost.len() <= 8, "{} files lost: {lost:?}\n{t}", lost.len());
    for p in &lost {
        assert_eq!(t.matches(&format!("{}: ", out.join(p).display())).count(), 1, "{} is named once\n{t}", p.display());
    }
    assert!(t.contains(&format!("unpacked {} of {} files", want.len() - lost.len(), want.len())), "{t}");
    assert!(t.contains(&format!("{} damaged", lost.len())), "{t}");
    // No temporary file is left behind.
    let names: Vec<_> = snapshot(&out).into_keys().filter(|p| !want.contains_key(p) && !out.join(p).is_dir()).collect();
    assert!(names.is_empty(), "{names:?}");
    // verify --deep names the chunk once (its segment) and the same files.
    let t = fails(env.run(&["verify", "--deep", &d1, &d2, "--passphrase-file", &env.pass()]), 3, &["segment 3"]);
    assert_eq!(error_lines(&t).len(), 1 + lost.len(), "{t}");
}

/// A missing disk is named once, then each file it held, once; the files
/// on the disks at hand are restored.
#[test]
fn a_missing_disk_is_named_once_then_the_files_it_held() {
    let env = Env::new();
    let (src, d1, _d2) = packed_many(&env, &[]);
    let out = env.p("out");
    let o = env.run(&["unpack", &d1, out.to_str().unwrap(), "--passphrase-file", &env.pass()]);
    let t = fails(o, 3, &["device 2", "is missing"]);
    let (want, got) = (files_of(&src), files_of(&out));
    let lost: Vec<_> = want.keys().filter(|p| !got.contains_key(*p)).collect();
    assert!(!got.is_empty() && !lost.is_empty(), "{t}");
    for (p, bytes) in &got {
        assert!(want.get(p) == Some(bytes), "{} differs", p.display());
    }
    let errors = error_lines(&t);
    assert_eq!(errors.len(), 1 + lost.len(), "the disk once, then each file it held:\n{t}");
    assert_eq!(errors.iter().filter(|l| l.contains("is missing")).count(), 1, "{t}");
    assert!(!t.contains(".bgc is missing"), "no line per chunk file:\n{t}");
    for p in &lost {
        assert_eq!(t.matches(&format!("{}: ", out.join(p).display())).count(), 1, "{}\n{t}", p.display());
    }
    assert!(t.contains(&format!("{} skipped", lost.len())), "{t}");
    // verify --deep: the same shape.
    let t = fails(env.run(&["verify", "--deep", &d1, "--passphrase-file", &env.pass()]), 3, &["device 2", "is missing"]);
    assert_eq!(error_lines(&t).len(), 1 + lost.len(), "{t}");
    // And without the key, the disk once.
    let t = fails(env.run(&["verify", &d1]), 3, &["device 2", "is missing"]);
    assert_eq!(error_lines(&t).len(), 1, "{t}");
}

/// The manifest sent apart from the disks wins over damaged copies on
/// them, once its signature checks.
#[test]
fn a_separate_manifest_overrides_damaged_ones_on_the_disks() {
    let env = Env::new();
    let m = env.p("sent.bgm");
    let (src, d1, d2) = packed_many(&env, &["--manifest-out", m.to_str().unwrap()]);
    let on_disk = |d: &str| chunk_files(d)[0].with_file_name("manifest.bgm");
    // One copy altered, the other cut short.
    let mut b = fs::read(on_disk(&d1)).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    fs::write(on_disk(&d1), b).unwrap();
    let len = fs::metadata(on_disk(&d2)).unwrap().len();
    fs::OpenOptions::new().write(true).open(on_disk(&d2)).unwrap().set_len(len / 3).unwrap();
    fails(env.run(&["verify", &d1, &d2]), 3, &["no valid manifest"]);
    let ms = m.to_str().unwrap();
    let t = text(&ok(env.run(&["verify", &d1, &d2, "--manifest", ms])));
    assert!(t.contains("manifest.bgm") && t.contains("--manifest"), "the damaged copies are noted:\n{t}");
    ok(env.run(&["verify", "--deep", &d1, &d2, "--manifest", ms, "--passphrase-file", &env.pass()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, &d2, out.to_str().unwrap(), "--manifest", ms, "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
    // A separate manifest that does not verify is refused.
    let mut b = fs::read(&m).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    fs::write(&m, b).unwrap();
    fails(env.run(&["verify", &d1, &d2, "--manifest", ms]), 3, &["sent.bgm", "signature"]);
}

#[test]
fn full_disk_stops_cleanly_and_resumes_on_a_new_device() {
    let env = Env::new();
    let src = env.p("src");
    make_tree(&src, 3_000_000);
    let (d1, d2) = (env.dev("d1"), env.dev("d2"));
    let o = env
        .cmd(&["pack", src.to_str().unwrap(), &d1, "--passphrase-file", &env.pass(), "--chunk-size", "256KiB", "--segment-size", "64KiB"])
        .env("BARGE_FAULT_ENOSPC_AFTER", "1000000")
        .output()
        .unwrap();
    fails(o, 1, &["is full", &d1, "--resume"]);
    // The journal and the manifest are consistent: verify calls it incomplete, nothing else.
    let t = fails(env.run(&["verify", &d1]), 3, &["incomplete"]);
    assert!(!t.contains("SHA-256 does not match"), "{t}");
    // A fresh pack of the same source is refused while one is interrupted.
    fails(env.run(&["pack", src.to_str().unwrap(), &d2, "--passphrase-file", &env.pass()]), 1, &["--resume"]);
    ok(env.run(&["pack", "--resume", src.to_str().unwrap(), &d2, "--passphrase-file", &env.pass()]));
    ok(env.run(&["verify", "--deep", &d1, &d2, "--passphrase-file", &env.pass()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, &d2, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
}

/// A real full filesystem: a 2 MiB tmpfs (needs root and mount rights;
/// CI runs as root).
#[test]
fn full_tmpfs_is_named_and_resumable() {
    let env = Env::new();
    let small = env.dev("tmpfs");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", &small]).status().is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?); the injected-fault test covers ENOSPC");
        return;
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let src = env.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), pseudo_random_bytes(5, 3_000_000)).unwrap();
    fs::write(src.join("b"), pseudo_random_bytes(6, 1_000_000)).unwrap();
    // 4 MB of data on a 2 MiB filesystem: statvfs must see the limit (or
    // ENOSPC must be caught), and the device must be named.
    let o = env.run(&["pack", src.to_str().unwrap(), &small, "--passphrase-file", &env.pass(), "--chunk-size", "512KiB", "--segment-size", "64KiB"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains(&small), "{t}");
    assert!(t.contains("full"), "{t}");
    let d2 = env.dev("d2");
    ok(env.run(&["pack", "--resume", src.to_str().unwrap(), &d2, "--passphrase-file", &env.pass()]));
    ok(env.run(&["verify", "--deep", &small, &d2, "--passphrase-file", &env.pass()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &small, &d2, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
}

#[test]
fn capacity_spans_devices_across_runs() {
    let env = Env::new();
    let src = env.p("src");
    // ~2.7 MB of data, ~1.1 MB of room per device after the manifest reserve:
    // three devices, and big.bin is cut across the first two.
    make_tree(&src, 2_500_000);
    let (d1, d2, d3) = (env.dev("d1"), env.dev("d2"), env.dev("d3"));
    let args = |devs: &[&str], resume: bool| {
        let mut v = vec!["pack".to_string()];
        if resume {
            v.push("--resume".into());
        }
        v.push(src.display().to_string());
        v.extend(devs.iter().map(|d| d.to_string()));
        v.extend(["--passphrase-file", &env.pass(), "--capacity", "1.5MB", "--chunk-size", "256KiB", "--segment-size", "64KiB"].map(String::from));
        v
    };
    let run = |v: Vec<String>| env.run(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    fails(run(args(&[&d1], false)), 1, &["devices are full", "--resume"]);
    fails(run(args(&[&d2], true)), 1, &["devices are full"]);
    ok(run(args(&[&d3], true)));
    for d in [&d1, &d2, &d3] {
        let used: u64 = chunk_files(d).iter().map(|c| fs::metadata(c).unwrap().len()).sum();
        assert!(used > 0 && used <= 1_500_000, "{d}: {used}");
    }
    ok(env.run(&["verify", &d1, &d2, &d3]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d3, &d1, &d2, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
    fails(env.run(&["verify", &d1, &d3]), 3, &["device 2", "is missing"]);
}

#[test]
fn resume_after_sigkill() {
    let env = Env::new();
    let src = env.p("src");
    fs::create_dir_all(src.join("many")).unwrap();
    for i in 0..40 {
        fs::write(src.join(format!("f{i:02}")), pseudo_random_bytes(100 + i, 1_500_000)).unwrap();
    }
    for i in 0..200 {
        fs::write(src.join(format!("many/{i}")), format!("{i}")).unwrap();
    }
    let d1 = env.dev("d1");
    let journal = env.p("journal");
    let mut child = env
        .cmd(&[
            "pack",
            src.to_str().unwrap(),
            &d1,
            "--passphrase-file",
            &env.pass(),
            "--chunk-size",
            "1MiB",
            "--segment-size",
            "64KiB",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the journal shows finished chunks, then kill -9.
    support::kill_after_chunks(&mut child, &journal, 3);
    ok(env.run(&["pack", "--resume", src.to_str().unwrap(), &d1, "--passphrase-file", &env.pass(), "--journal", journal.to_str().unwrap()]));
    // Nothing left over: no part files, no unexpected chunks.
    let o = ok(env.run(&["verify", &d1]));
    assert!(!text(&o).contains("ERROR"), "{}", text(&o));
    ok(env.run(&["verify", "--deep", &d1, "--passphrase-file", &env.pass()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
}

/// Bytes of chunk files on a device.
fn chunk_bytes(dev: &str) -> u64 {
    chunk_files(dev).iter().map(|c| fs::metadata(c).unwrap().len()).sum()
}

/// kill -9 in the middle of a large file, then --resume on the same disk
/// with little room to spare: the resumed run goes on after the file's last
/// synced chunk and reclaims what it cannot use, so the disk holds the data
/// about once and never reads "devices are full".
#[test]
fn sigkill_mid_file_resumes_on_the_same_disk_without_dead_space() {
    let env = Env::new();
    let src = env.p("src");
    fs::create_dir_all(src.join("small")).unwrap();
    fs::write(src.join("a-big"), pseudo_random_bytes(7, 24 << 20)).unwrap();
    for i in 0..50 {
        fs::write(src.join(format!("small/{i}")), pseudo_random_bytes(200 + i, 20_000)).unwrap();
    }
    fs::write(src.join("z-big"), pseudo_random_bytes(8, 6 << 20)).unwrap();
    let data: u64 = (24 << 20) + 50 * 20_000 + (6 << 20);
    let d1 = env.dev("d1");
    let journal = env.p("journal");
    // Room for the data, the manifest and two spare chunks: a resume that
    // packed the big file again from byte 0 would not fit.
    let capacity = (data + (2 << 20) + (400 << 10)).to_string();
    let args = |resume: bool| {
        let mut v = vec!["pack".to_string(), src.display().to_string(), d1.clone()];
        v.extend(["--passphrase-file", &env.pass(), "--journal", journal.to_str().unwrap(), "--capacity", &capacity].map(String::from));
        v.extend(["--chunk-size", "1MiB", "--segment-size", "64KiB", "--threads", "2"].map(String::from));
        if resume {
            v.push("--resume".into());
        }
        v
    };
    let mut child = env
        .cmd(&args(false).iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    support::kill_after_chunks(&mut child, &journal, 8);
    let killed = chunk_bytes(&d1);
    let o = ok(env.run(&args(true).iter().map(String::as_str).collect::<Vec<_>>()));
    let used = chunk_bytes(&d1);
    // The kill lands in a-big, whose chunks hold nothing else: every chunk
    // on the disk is full of live data (headers and tags aside).
    assert!(used <= data + 64 * 1024, "{used} bytes of chunks for {data} bytes of data ({killed} before the resume)\n{}", text(&o));
    let v = ok(env.run(&["verify", &d1]));
    assert!(!text(&v).contains("ERROR"), "{}", text(&v));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
}

#[test]
fn secrets_come_from_env_or_key_file_never_argv() {
    let env = Env::new();
    let src = env.p("src");
    make_tree(&src, 1000);
    let d1 = env.dev("d1");
    // No passphrase and no terminal: a usage error that names the ways in.
    fails(env.run(&["pack", src.to_str().unwrap(), &d1]), 2, &["--passphrase-file", "BARGE_PASSPHRASE"]);
    let key = env.p("unlock.key");
    let o = env
        .cmd(&["pack", src.to_str().unwrap(), &d1, "--new-key-file", key.to_str().unwrap(), "--manifest-out", env.p("m.bgm").to_str().unwrap()])
        .env("BARGE_PASSPHRASE", PASS)
        .output()
        .unwrap();
    ok(o);
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    ok(env.cmd(&["verify", "--deep", &d1]).env("BARGE_PASSPHRASE", PASS).output().unwrap());
    ok(env.run(&["verify", "--deep", &d1, "--key-file", key.to_str().unwrap()]));
    // The manifest that travelled separately is trusted over the disk copies.
    ok(env.run(&["verify", &d1, "--manifest", env.p("m.bgm").to_str().unwrap()]));
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, out.to_str().unwrap(), "--key-file", key.to_str().unwrap()]));
    assert_same_tree(&src, &out);
    // The passphrase never shows up in output.
    let o = env.cmd(&["--json", "verify", "--deep", &d1]).env("BARGE_PASSPHRASE", "wrong one").output().unwrap();
    assert!(!text(&o).contains("wrong one"));
}

/// Packing from an object store is not there yet, and says so (unpacking
/// to one: tests/pack_s3.rs); a tree does not go into a database, nor a
/// database option onto a tree (databases: tests/pack_db.rs).
#[test]
fn s3_source_and_mismatched_targets_are_refused_clearly() {
    let env = Env::new();
    let d1 = env.dev("d1");
    fails(env.run(&["pack", "s3://bucket/prefix", &d1, "--passphrase-file", &env.pass()]), 2, &["pack from s3://", "not implemented"]);
    let src = env.p("src");
    make_tree(&src, 1000);
    fails(env.run(&["pack", src.to_str().unwrap(), &d1, "--tables", "x", "--passphrase-file", &env.pass()]), 2, &["--tables", "database source"]);
    ok(env.run(&["pack", src.to_str().unwrap(), &d1, "--passphrase-file", &env.pass()]));
    let db = env.p("t.db");
    let url = format!("sqlite:{}", db.display());
    fails(env.run(&["unpack", &d1, &url, "--passphrase-file", &env.pass()]), 2, &["directory tree", "unpack it to a directory"]);
    assert!(!db.exists(), "nothing was created on the target");
    // file:///dir works like a plain directory.
    let out = env.p("out");
    ok(env.run(&["unpack", &d1, &format!("file://{}", out.display()), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
}

/// The frozen pack in fixtures/pack/v1 must stay readable by every later
/// version: verify, verify --deep, and unpack to the recorded tree.
#[test]
fn frozen_v1_fixture_still_reads() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pack/v1");
    let env = Env::new();
    // Copy: the test must not leave anything in the checkout.
    let dev = env.p("dev");
    assert!(Command::new("cp").arg("-a").arg(fx.join("device")).arg(&dev).status().unwrap().success());
    let pass = fx.join("passphrase").display().to_string();
    ok(env.run(&["verify", dev.to_str().unwrap()]));
    ok(env.run(&["verify", "--deep", dev.to_str().unwrap(), "--passphrase-file", &pass]));
    let out = env.p("out");
    ok(env.run(&["unpack", dev.to_str().unwrap(), out.to_str().unwrap(), "--passphrase-file", &pass]));
    // expected.txt: one line per item: kind, mode (octal), mtime seconds, sha256 or target, path.
    let mut got = String::new();
    for (p, n) in snapshot(&out) {
        use sha2::Digest;
        let line = match n {
            Node::Dir { mode, mtime } => format!("dir {mode:o} {} - {}", mtime.0, p.display()),
            Node::File { mode, mtime, data } => {
                format!("file {mode:o} {} {} {}", mtime.0, hex::encode(sha2::Sha256::digest(&data)), p.display())
            }
            Node::Link { target, mtime } => format!("link 0 {} {} {}", mtime.0, target.display(), p.display()),
        };
        got.push_str(&line);
        got.push('\n');
    }
    if std::env::var_os("BARGE_BLESS").is_some() {
        fs::write(fx.join("expected.txt"), &got).unwrap();
        return;
    }
    let expected = fs::read_to_string(fx.join("expected.txt")).unwrap();
    assert_eq!(got, expected);
}

mod format_properties {
    use super::*;
    use barge::pack::crypto::Argon2Params;
    use barge::pack::{reader, KeyInput, PackOptions};
    use barge::progress::Silent;
    use proptest::prelude::*;

    fn pack_lib(src: &Path, devs: &[PathBuf], journal: &Path, seg: u32, chunk: u64, slots: usize) {
        let opts = PackOptions {
            devices: devs.to_vec(),
            capacity: None,
            chunk_size: chunk,
            segment_size: seg,
            slots,
            journal: journal.into(),
            resume: false,
            kdf: Argon2Params { m_kib: 64, t: 1, p: 1 },
            manifest_out: None,
            fault_enospc_after: None,
            compression: barge::pack::Compression::default(),
        };
        let mut keys = |_| Ok(KeyInput { passphrase: Some(b"pw".to_vec()), ..Default::default() });
        let r = barge::pack::pack(&opts, barge::pack::Source::Tree(src), &mut keys, &Silent).unwrap();
        assert!(r.complete);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Any set of file sizes, segment size, chunk size and writer
        /// count: what is unpacked is what was packed.
        #[test]
        fn any_tree_round_trips(
            sizes in prop::collection::vec(prop_oneof![0usize..10, 1000usize..5000, 4090usize..4100, 9000usize..40000], 1..30),
            seg in prop::sample::select(vec![1024u32, 4096]),
            chunk_segments in 1u64..6,
            slots in 1usize..4,
            ndev in 1usize..3,
        ) {
            let t = tempfile::tempdir().unwrap();
            let src = t.path().join("src");
            fs::create_dir_all(src.join("d")).unwrap();
            for (i, n) in sizes.iter().enumerate() {
                let p = if i % 3 == 0 { src.join(format!("d/{i}")) } else { src.join(format!("{i}")) };
                fs::write(p, pseudo_random_bytes(i as u64 + 1, *n)).unwrap();
            }
            let devs: Vec<PathBuf> = (0..ndev).map(|i| { let p = t.path().join(format!("dev{i}")); fs::create_dir_all(&p).unwrap(); p }).collect();
            pack_lib(&src, &devs, &t.path().join("j"), seg, seg as u64 * chunk_segments + 7, slots);
            let l = reader::locate(&devs, None, None).unwrap();
            let checked = reader::check_files(&l, true, &Silent);
            prop_assert!(checked.findings.is_empty(), "{:?}", checked.findings);
            let master = reader::unlock(&l, &barge::pack::crypto::Unlock::Passphrase(b"pw")).unwrap();
            let cat = reader::open_catalog(&l, &master).unwrap();
            let out = t.path().join("out");
            let r = reader::decrypt_all(&l, &checked, &master, &cat, Some(&out), &Silent).unwrap();
            prop_assert!(r.findings.is_empty(), "{:?}", r.findings);
            for (i, n) in sizes.iter().enumerate() {
                let rel = if i % 3 == 0 { format!("d/{i}") } else { format!("{i}") };
                prop_assert_eq!(fs::read(out.join(&rel)).unwrap(), pseudo_random_bytes(i as u64 + 1, *n));
            }
        }
    }

    /// Every single-byte flip anywhere in a chunk file is caught by both
    /// checks, and named.
    #[test]
    fn any_flipped_byte_is_caught() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("a"), pseudo_random_bytes(1, 5000)).unwrap();
        let dev = t.path().join("dev");
        fs::create_dir_all(&dev).unwrap();
        pack_lib(&src, std::slice::from_ref(&dev), &t.path().join("j"), 1024, 1 << 20, 1);
        let chunk = chunk_files(dev.to_str().unwrap())[0].clone();
        let orig = fs::read(&chunk).unwrap();
        let l0 = reader::locate(std::slice::from_ref(&dev), None, None).unwrap();
        let master = reader::unlock(&l0, &barge::pack::crypto::Unlock::Passphrase(b"pw")).unwrap();
        let cat = reader::open_catalog(&l0, &master).unwrap();
        proptest!(ProptestConfig { cases: 64, ..ProptestConfig::default() }, |(pos in 0usize..orig.len(), bit in 0u8..8)| {
            let mut b = orig.clone();
            b[pos] ^= 1 << bit;
            fs::write(&chunk, &b).unwrap();
            let l = reader::locate(std::slice::from_ref(&dev), None, None).unwrap();
            let shallow = reader::check_files(&l, true, &Silent);
            prop_assert!(reader::has_errors(&shallow.findings));
            prop_assert!(shallow.findings.iter().any(|f| f.file.as_deref().is_some_and(|p| p.ends_with(&name(&chunk)))));
            let checked = reader::check_files(&l, false, &Silent);
            let deep = reader::decrypt_all(&l, &checked, &master, &cat, None, &Silent).unwrap();
            prop_assert!(reader::has_errors(&deep.findings), "flip at {} bit {} not caught by --deep", pos, bit);
        });
        fs::write(&chunk, &orig).unwrap();
    }
}

// ---- compression (format version 2) -------------------------------------------

fn dir_bytes(files: &[PathBuf]) -> u64 {
    files.iter().map(|c| fs::metadata(c).unwrap().len()).sum()
}

/// Log-like text: compresses well.
fn log_text(lines: usize) -> String {
    (0..lines).map(|i| format!("2026-01-{:02} 12:{:02}:07 worker {} took job {} from queue default\n", i % 28 + 1, i % 60, i % 7, i * 31)).collect()
}

/// Text shrinks; random bytes (what media and archives look like) are
/// stored raw, so a pack of them is no bigger than the files plus the
/// framing; both come back byte for byte.
#[test]
fn text_is_compressed_and_random_files_are_stored_raw() {
    let env = Env::new();
    let text = env.p("text");
    fs::create_dir_all(text.join("logs")).unwrap();
    for i in 0..3 {
        fs::write(text.join(format!("logs/{i}.log")), log_text(40_000)).unwrap();
    }
    for i in 0..200 {
        fs::write(text.join(format!("logs/small-{i}.txt")), log_text(20)).unwrap();
    }
    let noise = env.p("noise");
    fs::create_dir_all(&noise).unwrap();
    for i in 0..4 {
        // Above and below the size at which files are sampled.
        let n = if i == 0 { 100_000 } else { 1_500_000 + i * 7 };
        fs::write(noise.join(format!("photo-{i}.jpg")), pseudo_random_bytes(40 + i as u64, n)).unwrap();
    }
    let input = |root: &Path| files_of(root).values().map(|b| b.len() as u64).sum::<u64>();
    for (src, tag) in [(&text, "text"), (&noise, "noise")] {
        let dev = env.dev(&format!("dev-{tag}"));
        ok(env.run(&["pack", src.to_str().unwrap(), &dev, "--passphrase-file", &env.pass(), "--chunk-size", "1MiB", "--segment-size", "64KiB"]));
        let (stored, plain) = (dir_bytes(&chunk_files(&dev)), input(src));
        if tag == "text" {
            assert!(stored * 5 < plain, "text: {stored} bytes stored for {plain}");
        } else {
            // 80-byte headers and 21 bytes a segment: well under 1 %.
            assert!(stored >= plain && stored <= plain + plain / 200, "random: {stored} bytes stored for {plain}");
        }
        ok(env.run(&["verify", &dev]));
        ok(env.run(&["verify", "--deep", &dev, "--passphrase-file", &env.pass()]));
        let out = env.p(&format!("out-{tag}"));
        ok(env.run(&["unpack", &dev, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
        assert_same_tree(src, &out);
    }
}

/// `--compression none` stores every segment raw; a bad value is refused
/// at the command line.
#[test]
fn compression_can_be_turned_off_and_bad_values_are_refused() {
    let env = Env::new();
    let src = env.p("src");
    fs::create_dir_all(&src).unwrap();
    let t = log_text(20_000);
    fs::write(src.join("a.log"), &t).unwrap();
    let dev = env.dev("dev");
    ok(env.run(&["pack", src.to_str().unwrap(), &dev, "--passphrase-file", &env.pass(), "--compression", "none"]));
    assert!(dir_bytes(&chunk_files(&dev)) > t.len() as u64, "stored raw");
    let out = env.p("out");
    ok(env.run(&["unpack", &dev, out.to_str().unwrap(), "--passphrase-file", &env.pass()]));
    assert_same_tree(&src, &out);
    let dev2 = env.dev("dev2");
    ok(env.run(&["pack", src.to_str().unwrap(), &dev2, "--passphrase-file", &env.pass(), "--compression", "zstd:19", "--journal", env.p("j2").to_str().unwrap()]));
    assert!(dir_bytes(&chunk_files(&dev2)) * 10 < t.len() as u64);
    for bad in ["gzip", "zstd:0", "zstd:99"] {
        let o = env.run(&["pack", src.to_str().unwrap(), &env.dev("dev3"), "--passphrase-file", &env.pass(), "--compression", bad]);
        fails(o, 2, &["--compression", "zstd:LEVEL"]);
    }
}

/// A flipped byte inside a compressed segment: the keyless check names the
/// chunk file, `verify --deep` and unpack name it and the file, and no
/// damaged file is left under its name.
#[test]
fn a_flipped_byte_in_a_compressed_chunk_is_caught() {
    let env = Env::new();
    let src = env.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big.log"), log_text(60_000)).unwrap();
    fs::write(src.join("other.log"), log_text(100)).unwrap();
    let dev = env.dev("dev");
    ok(env.run(&["pack", src.to_str().unwrap(), &dev, "--passphrase-file", &env.pass(), "--segment-size", "64KiB"]));
    let chunk = chunk_files(&dev)[0].clone();
    let mut data = fs::read(&chunk).unwrap();
    let segs = barge::pack::format::segment_ranges_v2(&data);
    assert!(segs.len() > 10, "{} segments", segs.len());
    // Compressed: far shorter than the 64 KiB it holds.
    let s = segs[segs.len() / 2].clone();
    assert!(s.len() < 32 * 1024, "segment of {} bytes is not compressed", s.len());
    data[s.start + s.len() / 2] ^= 0x04;
    fs::write(&chunk, data).unwrap();
    let n = name(&chunk);
    fails(env.run(&["verify", &dev]), 3, &[&n, "SHA-256 does not match"]);
    fails(env.run(&["verify", "--deep", &dev, "--passphrase-file", &env.pass()]), 3, &[&n, "does not authenticate", "big.log"]);
    let out = env.p("out");
    fails(env.run(&["unpack", &dev, out.to_str().unwrap(), "--passphrase-file", &env.pass()]), 3, &[&n, "big.log"]);
    assert!(!out.join("big.log").exists(), "a damaged file is never left under its name");
}
