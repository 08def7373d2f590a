#!/usr/bin/env bash
# Benchmark: barge pack / verify --deep / unpack against restic and tar | age,
# in the same run, on the same ~2 GB mixed tree.
#
#   bash bench/pack.sh [WORKDIR]      (default: a fresh directory under /tmp)
#
# Knobs (environment): BENCH_SMALL_FILES (default 100000), BENCH_RANDOM_MB
# (per random file, 4 files, default 300), BENCH_TEXT_MB (per text file, 3
# files, default 130), BARGE (path to a barge binary; default: release build).
#
# Prints a table and writes it to bench/results/pack.md. CPU time is
# user+sys of the whole command (all its threads and child processes), from
# /usr/bin/time. The tree is read once before timing, so every tool reads it
# from the page cache; all outputs go to the same filesystem.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/barge-bench.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/barge-target}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "installing $2" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null
    }
}
need restic restic
need age age
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null

if [ -z "${BARGE:-}" ]; then
    (cd "$here" && cargo build --release --quiet)
    BARGE=$CARGO_TARGET_DIR/release/barge
fi

src=$work/src
if [ ! -f "$work/.tree-done" ]; then
    echo "generating the tree in $src" >&2
    rm -rf "$src"
    python3 - "$src" "${BENCH_SMALL_FILES:-100000}" "${BENCH_RANDOM_MB:-300}" "${BENCH_TEXT_MB:-130}" <<'EOF'
import os, random, sys
root, nsmall, rand_mb, text_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(42)
words = "the of and to in is was for that with as on by at from his her this are be or an have not which one had but were all".split()
os.makedirs(root)
# Many small files (mostly text, some binary), 100 per directory.
for i in range(nsmall):
    d = os.path.join(root, "small", f"{i // 10000:02}", f"{(i // 100) % 100:02}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    n = int(rng.lognormvariate(7.0, 1.0))  # median ~1.1 kB
    with open(os.path.join(d, f"f{i}.txt" if i % 5 else f"b{i}.bin"), "wb") as f:
        if i % 5:
            f.write((" ".join(rng.choice(words) for _ in range(n // 4 + 1)))[:n].encode())
        else:
            f.write(os.urandom(n))
# Large random files.
os.makedirs(os.path.join(root, "large"))
for k in range(4):
    with open(os.path.join(root, "large", f"random{k}.bin"), "wb") as f:
        for _ in range(rand_mb):
            f.write(os.urandom(1 << 20))
# Large text files (log-like lines).
for k in range(3):
    with open(os.path.join(root, "large", f"text{k}.log"), "w") as f:
        written = 0
        while written < text_mb << 20:
            line = f"2024-01-{rng.randint(1, 28):02} {rng.randint(0, 23):02}:{rng.randint(0, 59):02} " + " ".join(rng.choice(words) for _ in range(12)) + f" id={rng.getrandbits(48)}\n"
            f.write(line)
            written += len(line)
EOF
    touch "$work/.tree-done"
fi
bytes=$(du -sb --apparent-size "$src" | cut -f1)
files=$(find "$src" -type f | wc -l)
mb=$(python3 -c "print($bytes / 1e6)")
echo "tree: $files files, $mb MB" >&2
# Reads of the packed copies start cold for every tool, as at a receiving
# site that just attached the disks (needs root; skipped, and said so, if not).
cold=no
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then cold=yes; fi
drop_caches() {
    [ "$cold" = yes ] && sync && echo 3 > /proc/sys/vm/drop_caches
    return 0
}

# Warm the page cache so no tool pays for the first read.
# (Through a pipe: GNU tar skips reading file contents when writing to /dev/null.)
tar -cf - -C "$src" . | wc -c >/dev/null

results=$work/results.tsv
: > "$results"
run() { # name op command...
    local name=$1 op=$2
    shift 2
    sync
    case $op in verify*|unpack) drop_caches ;; esac
    /usr/bin/time -f "%e %U %S" -o "$work/time.out" "$@" > "$work/$name-$op.log" 2>&1 || {
        echo "FAILED: $name $op (see $work/$name-$op.log)" >&2
        cat "$work/$name-$op.log" >&2
        exit 1
    }
    read -r wall user sys < "$work/time.out"
    printf '%s\t%s\t%s\t%s\n' "$op" "$name" "$wall" "$(python3 -c "print($user + $sys)")" >> "$results"
    echo "$op $name: wall ${wall}s cpu $(python3 -c "print(round($user + $sys, 2))")s" >&2
}

export BARGE_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase
rm -rf "$work"/dev "$work"/restic "$work"/out-* "$work"/tar.age "$work"/journal "$work"/age.key
mkdir -p "$work/dev"

# pack (BARGE_PACK_ARGS: e.g. "--compression none" for the figure without compression)
# shellcheck disable=SC2086
run barge pack "$BARGE" -q pack "$src" "$work/dev" --journal "$work/journal" ${BARGE_PACK_ARGS:-}
restic init --repo "$work/restic" >/dev/null
run restic pack restic --repo "$work/restic" backup -q "$src"
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
run "tar|age" pack bash -c "tar -cf - -C '$src' . | age -e -r '$recipient' -o '$work/tar.age'"
# What each pack takes on disk (apparent size, bytes).
{
    printf 'barge\t%s\n' "$(du -sb --apparent-size "$work/dev" | cut -f1)"
    printf 'restic\t%s\n' "$(du -sb --apparent-size "$work/restic" | cut -f1)"
    printf 'tar|age\t%s\n' "$(du -sb --apparent-size "$work/tar.age" | cut -f1)"
} > "$work/sizes.tsv"

# verify --deep (every byte decrypted and checked)
run barge verify-deep "$BARGE" -q verify --deep "$work/dev"
run restic verify-deep restic --repo "$work/restic" check --read-data
run "tar|age" verify-deep bash -c "age -d -i '$work/age.key' '$work/tar.age' | tar -tf - >/dev/null"

# keyless verify (barge only: sizes and ciphertext SHA-256 against the signed manifest)
run barge verify "$BARGE" -q verify "$work/dev"

# unpack
run barge unpack "$BARGE" -q unpack "$work/dev" "$work/out-barge"
run restic unpack restic --repo "$work/restic" restore latest --target "$work/out-restic"
mkdir -p "$work/out-tar"
run "tar|age" unpack bash -c "age -d -i '$work/age.key' '$work/tar.age' | tar -xf - -C '$work/out-tar'"

# The restore must be right before its speed counts.
diff -r "$src" "$work/out-barge" >/dev/null || { echo "barge unpack differs from the source" >&2; exit 1; }

out=$here/bench/results/pack.md
mkdir -p "$(dirname "$out")"
python3 - "$results" "$bytes" "$files" "$out" "$(nproc)" "$(restic version | cut -d' ' -f2)" "$(age --version)" "$cold" "$work/sizes.tsv" "${BARGE_PACK_ARGS:-}" <<'EOF'
import sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
sizes = dict((n, int(b)) for n, b in (l.rstrip("\n").split("\t") for l in open(sys.argv[9])))
pack_args = sys.argv[10] or "default: --compression zstd:3"
nbytes, files, out, cores, restic_v, age_v, cold = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
mb = nbytes / 1e6
by = {(op, name): (float(w), float(c)) for op, name, w, c in rows}
lines = [
    "# barge pack benchmark",
    "",
    f"Run {datetime.date.today()} by `bench/pack.sh` on {cores} cores; tree of {files} files, {mb:.0f} MB",
    f"(100k small files, 4 random and 3 text large files). restic {restic_v} (repository v2, its default",
    f"compression), age {age_v} with an X25519 recipient. MB = 10^6 bytes. CPU = user + sys.",
    "Pack reads the tree from the page cache; " + ("verify and unpack start with the page cache dropped, for every tool." if cold == "yes" else "the page cache could not be dropped (not root), so verify and unpack may read from it."),
    "barge writes chunk files with O_DIRECT, so it pays its own write-back in its CPU time; the others write",
    "through the page cache, and the kernel threads that write it back are not counted in their CPU time.",
    "",
    "| operation | tool | wall s | CPU s | MB/s wall | MB/s per CPU-s | barge ÷ restic, per CPU-s | barge ÷ restic, wall |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]
for op in ["pack", "verify-deep", "verify", "unpack"]:
    for name in ["barge", "restic", "tar|age"]:
        if (op, name) not in by:
            continue
        w, c = by[(op, name)]
        ratio_c = ratio_w = ""
        if name == "barge" and (op, "restic") in by:
            rw, rc = by[(op, "restic")]
            ratio_c = f"{(mb / c) / (mb / rc):.1f}×"
            ratio_w = f"{(mb / w) / (mb / rw):.1f}×"
        label = {"verify-deep": "verify --deep / check --read-data / decrypt+list", "verify": "verify (no key)"}.get(op, op)
        shown = name.replace("|", "\\|")
        lines.append(f"| {label} | {shown} | {w:.2f} | {c:.2f} | {mb / w:.0f} | {mb / c:.0f} | {ratio_c} | {ratio_w} |")
lines += [
    "",
    f"Output on disk (barge pack {pack_args}): " + ", ".join(f"{n} {b / 1e6:.0f} MB ({b / nbytes:.2f}× the tree)" for n, b in sizes.items())
    + f"; barge ÷ restic = {sizes['barge'] / sizes['restic']:.2f}×.",
    "",
    "Crypto limit for pack (FACTS.md, per CPU-second): SHA-256 of the plaintext (1.43 GB/s),",
    "AES-256-GCM (5.6 GB/s) and SHA-256 of the ciphertext (1.43 GB/s) give",
    f"{1 / (1 / 1430 + 1 / 5600 + 1 / 1430):.0f} MB/s per CPU-second before any I/O.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
