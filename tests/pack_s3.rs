//! `barge unpack DEVICE... s3://bucket/prefix` against the S3 test server
//! (moto), read back with boto3: every file of the tree is one object with
//! its exact bytes; a damaged file is named and leaves no object; a
//! database pack is refused before anything is written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support;
use support::sinks::{create_bucket, env, py, unique_name};
use support::{pseudo_random_bytes, text};

const PASS: &str = "correct horse battery staple";
const BIG: usize = 21 << 20;

/// A scratch area with a passphrase file and its own state directory.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pass"), format!("{PASS}\n")).unwrap();
        Env { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pass(&self) -> String {
        self.p("pass").display().to_string()
    }

    fn dev(&self) -> String {
        let d = self.p("dev");
        fs::create_dir_all(&d).unwrap();
        d.display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_barge"))
            .args(args)
            .env_remove("BARGE_PASSPHRASE")
            .env("BARGE_STATE_DIR", self.p("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}


fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Small files in a few directories, names S3 advises against included,
/// an empty file, one file large enough to go up in parts, a symlink and
/// an empty directory.
fn make_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |rel: &str, data: Vec<u8>| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &data).unwrap();
        files.insert(rel.to_string(), data);
    };
    put("big.bin", pseudo_random_bytes(1, BIG));
    put("empty", Vec::new());
    put("readme.txt", b"hello\n".repeat(1000));
    put("docs/deep/er/note.md", b"# note\n".to_vec());
    put("odd name #1 %20 [x].txt", b"awkward key".to_vec());
    for i in 0..40 {
        put(&format!("small/{i:03}.txt"), pseudo_random_bytes(100 + i, 3000 + i as usize * 97));
    }
    std::os::unix::fs::symlink("readme.txt", root.join("link")).unwrap();
    fs::create_dir_all(root.join("hollow")).unwrap();
    files
}

/// Packs `src` onto one device with 4 MiB chunks and 64 KiB segments.
fn pack(env: &Env, src: &Path) -> String {
    let dev = env.dev();
    ok(env.run(&["pack", src.to_str().unwrap(), &dev, "--passphrase-file", &env.pass(), "--chunk-size", "4MiB", "--segment-size", "64KiB"]));
    dev
}

fn s3_url(bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix}?endpoint={}&region=us-east-1", env("BARGE_TEST_S3_ENDPOINT"))
}

/// Every object under `prefix/` (key relative to it) with its SHA-256, size,
/// ETag and metadata, and the multipart uploads left open in the bucket,
/// as boto3 sees them.
fn objects(bucket: &str, prefix: &str) -> (BTreeMap<String, Value>, Vec<Value>) {
    let out = py(
        "import boto3,hashlib,json,os,sys
s3 = boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
b, pre = sys.argv[1], sys.argv[2] + '/'
objs = {}
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=b, Prefix=pre):
    for o in page.get('Contents', []):
        r = s3.get_object(Bucket=b, Key=o['Key'])
        body = r['Body'].read()
        objs[o['Key'][len(pre):]] = {'sha256': hashlib.sha256(body).hexdigest(), 'size': len(body), 'etag': r['ETag'], 'meta': r.get('Metadata', {})}
uploads = s3.list_multipart_uploads(Bucket=b).get('Uploads', [])
print(json.dumps({'objects': objs, 'uploads': [u['Key'] for u in uploads]}))",
        &[bucket, prefix],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let objs = v["objects"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    (objs, v["uploads"].as_array().unwrap().clone())
}

#[test]
fn a_tree_unpacks_to_s3_one_object_per_file() {
    let env = Env::new();
    let src = env.p("src");
    let files = make_tree(&src);
    let dev = pack(&env, &src);
    let bucket = unique_name("unpack");
    create_bucket(&bucket);
    let prefix = "restore/run1";
    let out = ok(env.run(&["unpack", &dev, &s3_url(&bucket, prefix), "--passphrase-file", &env.pass()]));
    assert!(out.contains("1 symlink and 1 empty directory are not objects; skipped"), "{out}");
    assert!(out.contains(&format!("unpacked {} files (", files.len())), "{out}");
    assert!(!out.contains(PASS), "{out}");

    let (objs, uploads) = objects(&bucket, prefix);
    assert_eq!(objs.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>(), "one object per file, no more");
    for (rel, data) in &files {
        let o = &objs[rel];
        assert_eq!(o["size"], data.len(), "{rel}");
        assert_eq!(o["sha256"], sha(data), "{rel}");
        assert_eq!(o["meta"]["barge-sha256"], sha(data), "{rel}: the checked hash travels as metadata");
    }
    assert!(objs["big.bin"]["etag"].as_str().unwrap().trim_matches('"').ends_with("-3"), "21 MiB in 8 MiB parts: {}", objs["big.bin"]);
    assert!(uploads.is_empty(), "no multipart upload left open: {uploads:?}");

    // A rerun (as after an interruption) rewrites the objects: same keys, same bytes.
    ok(env.run(&["unpack", &dev, &s3_url(&bucket, prefix), "--passphrase-file", &env.pass()]));
    let (again, _) = objects(&bucket, prefix);
    assert_eq!(again.iter().map(|(k, v)| (k, &v["sha256"])).collect::<Vec<_>>(), objs.iter().map(|(k, v)| (k, &v["sha256"])).collect::<Vec<_>>());
}

/// Flips one byte in the middle of the stored data of `rel` (inside the
/// chunk file and segment that hold it); returns the chunk file's name.
fn flip_within(dev: &str, rel: &str) -> String {
    use barge::pack::{catalog::Entry, crypto::Unlock, device, format::CHUNK_HEADER_LEN, reader};
    let l = reader::locate(&[PathBuf::from(dev)], None, None).unwrap();
    let master = reader::unlock(&l, &Unlock::Passphrase(PASS.as_bytes())).unwrap();
    let cat = reader::open_catalog(&l, &master).unwrap();
    let seg = l.decoded.manifest.identity.segment_size as u64;
    let extents = cat
        .entries
        .iter()
        .find_map(|e| match e {
            Entry::File { path, extents, .. } if path.0 == rel.as_bytes() => Some(extents.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{rel} is not in the catalog"));
    let x = &extents[extents.len() / 2];
    let plain = x.offset() + x.len() / 2;
    let name = device::chunk_name(x.chunk());
    let path = l.files.iter().find(|f| f.0 == name).unwrap().1.clone();
    let mut data = fs::read(&path).unwrap();
    // The middle of the sealed segment that holds `plain` (segments may be
    // compressed, so their places come from their length words).
    let r = barge::pack::format::segment_ranges_v2(&data)[(plain / seg) as usize].clone();
    assert!(r.start > CHUNK_HEADER_LEN);
    data[r.start + r.len() / 2] ^= 0x01;
    fs::write(&path, data).unwrap();
    name
}

#[test]
fn a_damaged_file_is_named_and_leaves_no_object() {
    let env = Env::new();
    let src = env.p("src");
    let files = make_tree(&src);
    let dev = pack(&env, &src);
    // One large file (a multipart upload that must be aborted) and one small one.
    let c1 = flip_within(&dev, "big.bin");
    let c2 = flip_within(&dev, "small/007.txt");
    let bucket = unique_name("unpack-bad");
    create_bucket(&bucket);
    let prefix = "restore";
    let o = env.run(&["unpack", &dev, &s3_url(&bucket, prefix), "--passphrase-file", &env.pass()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    for n in [&c1, &c2] {
        assert!(t.contains(n.as_str()), "the damaged chunk {n} is named: {t}");
    }
    let named = |rel: &str| t.contains(&format!("s3://{bucket}/{prefix}/{rel}: "));
    assert!(named("big.bin") && named("small/007.txt"), "{t}");

    let (objs, uploads) = objects(&bucket, prefix);
    assert!(!objs.contains_key("big.bin") && !objs.contains_key("small/007.txt"), "{:?}", objs.keys());
    assert!(uploads.is_empty(), "the damaged file's multipart upload was aborted: {uploads:?}");
    // Whatever was not damaged is there, whole; whatever is missing was named.
    for (rel, data) in &files {
        match objs.get(rel) {
            Some(obj) => assert_eq!(obj["sha256"], sha(data), "{rel}"),
            None => assert!(named(rel), "{rel} is missing but not named: {t}"),
        }
    }
    assert!(objs.contains_key("readme.txt") || named("readme.txt"));
    // Two 64 KiB segments lost: the files in them, not the rest of their
    // chunk; the summary counts both sides.
    let lost = files.len() - objs.len();
    assert!(lost <= 1 + 64 * 1024 / 3000 + 1, "{lost} files lost for two damaged segments: {t}");
    assert!(t.contains(&format!("unpacked {} of {} files", objs.len(), files.len())) && t.contains(&format!("{lost} damaged files")), "{t}");
}

#[test]
fn a_database_pack_is_refused_for_s3() {
    let env = Env::new();
    let db = env.p("shop.db");
    fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/shop.db"), &db).unwrap();
    let dev = env.dev();
    ok(env.run(&["pack", &format!("sqlite:{}", db.display()), &dev, "--passphrase-file", &env.pass(), "--no-cdc"]));
    let bucket = unique_name("unpack-db");
    create_bucket(&bucket);
    let o = env.run(&["unpack", &dev, &s3_url(&bucket, "tables"), "--passphrase-file", &env.pass()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("database tables") && t.contains("unpack it into a database URL"), "{t}");
    let (objs, _) = objects(&bucket, "tables");
    assert!(objs.is_empty(), "nothing was written: {objs:?}");
}

/// S3 keys are UTF-8: a file whose name is not cannot be put, and is named
/// (non-zero exit) rather than renamed; the rest still arrives.
#[test]
fn a_name_that_cannot_be_a_key_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let src = env.p("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("fine.txt"), b"fine").unwrap();
    fs::write(src.join(std::ffi::OsStr::from_bytes(b"caf\xe9-latin1")), b"latin-1 name").unwrap();
    let dev = pack(&env, &src);
    let bucket = unique_name("unpack-name");
    create_bucket(&bucket);
    let o = env.run(&["unpack", &dev, &s3_url(&bucket, "p"), "--passphrase-file", &env.pass()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("-latin1: not unpacked: the name is not UTF-8"), "{t}");
    let (objs, _) = objects(&bucket, "p");
    assert_eq!(objs.keys().collect::<Vec<_>>(), ["fine.txt"]);
}
