#!/usr/bin/env bash
# Compares lifeboat with the partclone + zstd pipeline and with plain zstd, on one disk image
# holding an MBR and one ext4 partition filled with generated, deterministic data.
#
# Run by hand, as root (loop devices, drop_caches), from anywhere in the repository:
#     sudo benches/compare.sh
#     DISK_GIB=2 DATA_GIB=1 benches/compare.sh        # smaller and quicker
#
# Environment:
#     DISK_GIB   size of the disk image (default 4)
#     DATA_GIB   data written into its ext4 partition (default 3; fractions work: 0.5)
#     WORK       work directory (default: a new one under /var/tmp, removed at the end);
#                needs about 5 x DISK_GIB of free space
#     KEEP=1     keep the work directory
#
# Steps, each after `sync; echo 3 > /proc/sys/vm/drop_caches`, each timed to its end
# including a final `sync` (so written data is on disk), peak RSS from /usr/bin/time:
#   save     (a) lifeboat savedisk of the whole disk (a loop device) into a repository
#            (b) partclone.ext4 -c of the partition (a loop device) | zstd -T0 -3 > file
#            (c) zstd -T0 -3 of a file holding partclone's raw stream (the same used bytes)
#   restore  (d) lifeboat restoredisk --yes onto a second disk (a loop device), and again
#                with --no-precheck (no verification pass before writing; informational)
#            (e) zstd -dc file | partclone.ext4 -r onto a partition of a third disk
# Both restores are then checked with e2fsck -fn. Needs: cargo, sfdisk (fdisk), mke2fs
# (e2fsprogs), losetup (util-linux), partclone, zstd, time, python3.
#
# Targets (from the issue): save >= 1.5x the partclone pipeline and >= 0.9x plain zstd;
# restore >= 1.5x the partclone pipeline; lifeboat peak RSS <= 128 MiB.
set -euo pipefail

DISK_GIB=${DISK_GIB:-4}
DATA_GIB=${DATA_GIB:-3}
repo_root=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "compare.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (loop devices, drop_caches)"
for t in cargo sfdisk mke2fs e2fsck losetup partclone.ext4 zstd python3 /usr/bin/time; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install fdisk e2fsprogs util-linux partclone zstd time python3)"
done

disk_bytes=$(python3 -c "print(int(float('$DISK_GIB') * 2**30) // 2**20 * 2**20)")
data_bytes=$(python3 -c "print(int(float('$DATA_GIB') * 2**30))")
part_off=$((2048 * 512))
part_bytes=$((disk_bytes - part_off))
[ "$data_bytes" -lt $((part_bytes * 9 / 10)) ] || die "DATA_GIB must stay below 90% of DISK_GIB"

if [ -n "${WORK:-}" ]; then
    mkdir -p "$WORK"
    work=$WORK
else
    work=$(mktemp -d /var/tmp/lifeboat-compare.XXXXXX)
fi
loops=()
cleanup() {
    local l
    for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

attach() { # attach VAR FILE [losetup options...]: attaches FILE, sets VAR to the device
    local l
    l=$(losetup -f --show "${@:3}" "$2")
    loops+=("$l")
    printf -v "$1" '%s' "$l"
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

echo "== building lifeboat (release)"
(cd "$repo_root" && cargo build --release -q -p lifeboat-cli)
lifeboat=$repo_root/target/release/lifeboat
[ -x "$lifeboat" ] || die "no $lifeboat"

echo "== generating $DATA_GIB GiB of data in $work/tree"
python3 - "$work/tree" "$data_bytes" <<'PY'
import os, random, sys, zlib

root, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(20251125)
MiB = 1 << 20

# A 32 MiB pool of log-like text; text files are random slices of it (zstd-3: about 4-5x).
hosts = [f"host-{i:02d}" for i in range(40)]
procs = ["sshd", "cron", "kernel", "nginx", "postgres", "systemd", "dockerd", "smartd"]
verbs = ["accepted", "closed", "started", "stopped", "failed", "retrying", "connected",
         "timeout", "reloaded", "GET", "POST", "checkpoint"]
users = [f"user{i}" for i in range(300)]
lines, size = [], 0
while size < 32 * MiB:
    t = rng.randrange(86400)
    s = (f"2025-11-{rng.randrange(1, 29):02d}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}."
         f"{rng.randrange(1000):03d}Z {rng.choice(hosts)} {rng.choice(procs)}"
         f"[{rng.randrange(100, 65000)}]: {rng.choice(verbs)} {rng.choice(users)} from "
         f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} port "
         f"{rng.randrange(1024, 65536)} took {rng.randrange(100000) / 1000:.3f} ms\n")
    lines.append(s)
    size += len(s)
pool = "".join(lines).encode()

def text(n):
    out, got = [], 0
    while got < n:
        k = min(rng.randrange(4096, 65536), n - got)
        o = rng.randrange(len(pool) - k)
        out.append(pool[o:o + k])
        got += k
    return b"".join(out)

def rand(n):
    return rng.randbytes(n)

def compressed(n):  # real deflate streams, as in .gz archives
    out, got = [], 0
    while got < n:
        z = zlib.compress(text(4 * MiB), 1)
        out.append(z)
        got += len(z)
    return b"".join(out)[:n]

def dbpages(n):  # 8 KiB pages: a header, some text records, zero padding
    pages = []
    for _ in range(n // 8192):
        fill = rng.choice((0, 0, 1024, 3000, 6000, 8168))
        body = text(fill) if fill else b""
        pages.append(rng.randbytes(24) + body + bytes(8168 - len(body)))
    return b"".join(pages)

def write_big(path, n, gen):
    with open(path, "wb") as f:
        left = n
        while left > 0:
            k = min(left, 8 * MiB)
            f.write(gen(k))
            left -= k

def big_files(name, share, lo, hi, gen, ext):
    budget = int(total * share)
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    i = 0
    while budget > 0:
        n = min(budget, rng.randrange(lo, hi) // 8192 * 8192 or 8192)
        write_big(os.path.join(d, f"{name}-{i:03d}{ext}"), n, gen)
        budget -= n
        i += 1

big_files("logs", 0.35, 16 * MiB, 256 * MiB, text, ".log")
big_files("blobs", 0.20, 8 * MiB, 256 * MiB, rand, ".bin")
big_files("archives", 0.15, 1 * MiB, 32 * MiB, compressed, ".gz")
big_files("db", 0.20, 16 * MiB, 128 * MiB, dbpages, ".db")
# Many small files: source-like text, 200 B .. 32 KiB, 500 per directory.
budget, i = int(total * 0.10), 0
while budget > 0:
    d = os.path.join(root, "src", f"d{i // 500:04d}")
    if i % 500 == 0:
        os.makedirs(d, exist_ok=True)
    n = min(budget, int(rng.lognormvariate(8.5, 1.0)) % (32 * 1024) + 200)
    with open(os.path.join(d, f"f{i:06d}.txt"), "wb") as f:
        f.write(text(n))
    budget -= n
    i += 1
print(f"generated {total / MiB:.0f} MiB, {i} small files")
PY

echo "== making the disk: ${DISK_GIB} GiB, MBR, one ext4 partition"
disk=$work/disk.img
truncate -s "$disk_bytes" "$disk"
printf 'label: dos\nlabel-id: 0x1b0a7c0e\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
# Stand-in boot loader: bytes in the MBR boot code and the gap before the partition.
python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(440))" |
    dd of="$disk" conv=notrunc status=none
python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(2).randbytes(65536))" |
    dd of="$disk" bs=512 seek=1 conv=notrunc status=none
mke2fs -q -F -t ext4 -L bench -E offset=$part_off -d "$work/tree" "$disk" $((part_bytes / 1024))k
rm -rf "$work/tree"

attach src_disk "$disk" -r
attach src_part "$disk" -r -o "$part_off" --sizelimit "$part_bytes"
e2fsck -fn "$src_part" >/dev/null 2>&1 || die "the generated filesystem is not clean"
used_fs=$(dumpe2fs -h "$src_part" 2>/dev/null | python3 -c '
import sys
f = dict(l.split(":", 1) for l in sys.stdin if ":" in l)
bc, fb, bs = (int(f[k]) for k in ("Block count", "Free blocks", "Block size"))
print((bc - fb) * bs)')
echo "   ext4 used: $((used_fs / 1048576)) MiB of $((part_bytes / 1048576)) MiB"

# run NAME CMD: times CMD (a bash snippet) to its end plus a sync; CMD wraps each process whose
# RSS counts in "$T" (= /usr/bin/time -f %M -a -o FILE), whose peaks are summed (they run at
# the same time in a pipeline).
declare -A secs rss
run() {
    local name=$1 cmd=$2 rssf=$work/rss.$1 t0 t1
    rm -f "$rssf"
    drop_caches
    echo "== $name"
    t0=$(now)
    T="/usr/bin/time -f %M -a -o $rssf" bash -c "set -euo pipefail; $cmd"
    sync
    t1=$(now)
    secs[$name]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
    rss[$name]=$(awk '/^[0-9]+$/ {s += $1} END {printf "%.0f", s / 1024}' "$rssf")
    echo "   ${secs[$name]} s, peak RSS ${rss[$name]} MiB"
}

export LB=$lifeboat SRC_DISK=$src_disk SRC_PART=$src_part W=$work
mkdir -p "$work/repo"

# (c) needs partclone's raw stream as a file: made untimed first.
partclone.ext4 -c -q -L "$work/pc-raw.log" -s "$src_part" -o "$work/pc.raw" >/dev/null 2>&1 ||
    die "partclone.ext4 -c failed: see $work/pc-raw.log"

run lifeboat_save '$T "$LB" savedisk --repo "$W/repo" --image bench --disk "$SRC_DISK" >"$W/lb-save.log" 2>&1'
run partclone_save '$T partclone.ext4 -c -q -L "$W/pc-save.log" -s "$SRC_PART" -o - 2>/dev/null | $T zstd -q -T0 -3 >"$W/pc.zst"'
run zstd_save '$T zstd -q -T0 -3 "$W/pc.raw" -o "$W/plain.zst"'
rm -f "$work/pc.raw"

tgt1=$work/target-lifeboat.img
tgt2=$work/target-partclone.img
tgt3=$work/target-lifeboat-noprecheck.img
truncate -s "$disk_bytes" "$tgt1" "$tgt2" "$tgt3"
sfdisk -q -d "$disk" | sfdisk -q "$tgt2"
attach TGT_DISK "$tgt1"
attach TGT_DISK3 "$tgt3"
attach TGT_PART "$tgt2" -o "$part_off" --sizelimit "$part_bytes"
export TGT_DISK TGT_DISK3 TGT_PART
run lifeboat_restore '$T "$LB" restoredisk --repo "$W/repo" --image bench --disk "$TGT_DISK" --yes >"$W/lb-restore.log" 2>&1'
# The same without the verification pass that restoredisk makes before writing.
run lifeboat_restore_noprecheck '$T "$LB" restoredisk --repo "$W/repo" --image bench --disk "$TGT_DISK3" --yes --no-precheck >"$W/lb-restore2.log" 2>&1'
run partclone_restore '$T zstd -q -dc "$W/pc.zst" | $T partclone.ext4 -r -q -L "$W/pc-restore.log" -s - -o "$TGT_PART" >/dev/null 2>&1'

echo "== checking the restored filesystems (e2fsck -fn)"
attach chk1 "$tgt1" -r -o "$part_off" --sizelimit "$part_bytes"
e2fsck -fn "$chk1" >"$work/fsck1.log" 2>&1 && echo "   lifeboat restore: clean" || {
    echo "   lifeboat restore: e2fsck FAILED"; tail -5 "$work/fsck1.log"; }
e2fsck -fn "$TGT_PART" >"$work/fsck2.log" 2>&1 && echo "   partclone restore: clean" || {
    echo "   partclone restore: e2fsck FAILED"; tail -5 "$work/fsck2.log"; }
cmp -s -n $((part_off - 512)) -i 512 "$disk" "$tgt1" && echo "   lifeboat restore: boot area identical" ||
    echo "   lifeboat restore: boot area DIFFERS"

stored=$(python3 -c "import json; print(json.load(open('$work/repo/bench/manifest.json'))['totals']['stored_bytes'])")
lb_size=$(du -sb "$work/repo/bench" | cut -f1)
pc_size=$(stat -c %s "$work/pc.zst")
z_size=$(stat -c %s "$work/plain.zst")

python3 - "$stored" "$used_fs" <<PY
import sys
stored, used_fs = int(sys.argv[1]), int(sys.argv[2])
secs = {k: float(v) for k, v in [$(for k in "${!secs[@]}"; do printf '("%s","%s"),' "$k" "${secs[$k]}"; done)]}
rss = {k: int(v) for k, v in [$(for k in "${!rss[@]}"; do printf '("%s","%s"),' "$k" "${rss[$k]}"; done)]}
size = {"lifeboat_save": $lb_size, "partclone_save": $pc_size, "zstd_save": $z_size}
MiB = 1 << 20
print()
print(f"disk {float('$DISK_GIB'):g} GiB, data {float('$DATA_GIB'):g} GiB; ext4 used {used_fs / MiB:.0f} MiB, "
      f"lifeboat stored {stored / MiB:.0f} MiB (MB/s below = used bytes / seconds)")
print(f"{'step':<28} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'output MiB':>11}")
for k in ("lifeboat_save", "partclone_save", "zstd_save", "lifeboat_restore",
          "lifeboat_restore_noprecheck", "partclone_restore"):
    out = f"{size[k] / MiB:.0f}" if k in size else "-"
    print(f"{k:<28} {secs[k]:>8.2f} {stored / 1e6 / secs[k]:>8.1f} {rss[k]:>13} {out:>11}")
r1 = secs["partclone_save"] / secs["lifeboat_save"]
r2 = secs["zstd_save"] / secs["lifeboat_save"]
r3 = secs["partclone_restore"] / secs["lifeboat_restore"]
r4 = secs["partclone_restore"] / secs["lifeboat_restore_noprecheck"]
peak = max(rss["lifeboat_save"], rss["lifeboat_restore"], rss["lifeboat_restore_noprecheck"])
ok = lambda b: "ok" if b else "MISSED"
print()
print(f"save:    lifeboat / partclone+zstd speed = {r1:.2f}x  (target >= 1.5x: {ok(r1 >= 1.5)})")
print(f"save:    lifeboat / plain zstd speed     = {r2:.2f}x  (target >= 0.9x: {ok(r2 >= 0.9)})")
print(f"restore: lifeboat / zstd+partclone speed = {r3:.2f}x  (target >= 1.5x: {ok(r3 >= 1.5)})")
print(f"restore: same, lifeboat --no-precheck  = {r4:.2f}x  (informational)")
print(f"lifeboat peak RSS = {peak} MiB  (target <= 128 MiB: {ok(peak <= 128)})")
PY

# ───────────────────────────── NTFS ─────────────────────────────
# The same data on an NTFS partition (mkntfs, filled through the ntfs-3g FUSE driver from the
# ext4 partition mounted read-only): lifeboat savedisk / restoredisk against
# partclone.ntfs | zstd -T0 -3 and back. Both restores are checked with ntfsfix -n.
# Skipped with SKIP_NTFS=1. Needs mkntfs, ntfs-3g, ntfsfix (ntfs-3g) and partclone.ntfs.
if [ "${SKIP_NTFS:-0}" != 1 ]; then
    for t in mkntfs ntfs-3g ntfsfix ntfsinfo partclone.ntfs mount umount; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install ntfs-3g partclone)"
    done
    echo
    echo "== making the NTFS disk: ${DISK_GIB} GiB, MBR, one NTFS partition"
    ndisk=$work/ntfs-disk.img
    truncate -s "$disk_bytes" "$ndisk"
    printf 'label: dos\nlabel-id: 0x1b0a7c0f\nstart=2048, type=7, bootable\n' | sfdisk -q "$ndisk"
    python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(440))" |
        dd of="$ndisk" conv=notrunc status=none
    attach npart_rw "$ndisk" -o "$part_off" --sizelimit "$part_bytes"
    mkntfs -Q -F -q -c 4096 -L bench -p 2048 -H 255 -S 63 "$npart_rw" 2>/dev/null
    mkdir -p "$work/ext-mnt" "$work/ntfs-mnt"
    mount -o ro,noload "$src_part" "$work/ext-mnt"
    ntfs-3g -o big_writes "$npart_rw" "$work/ntfs-mnt"
    cp -a "$work/ext-mnt/." "$work/ntfs-mnt/" 2>/dev/null || cp -r "$work/ext-mnt/." "$work/ntfs-mnt/"
    rm -rf "$work/ntfs-mnt/lost+found"
    umount "$work/ntfs-mnt"
    umount "$work/ext-mnt"
    losetup -d "$npart_rw"
    attach nsrc_disk "$ndisk" -r
    attach nsrc_part "$ndisk" -r -o "$part_off" --sizelimit "$part_bytes"
    ntfsfix -n "$nsrc_part" >/dev/null || die "the NTFS volume is not clean"
    nused=$(ntfsinfo -m "$nsrc_part" 2>/dev/null | python3 -c '
import sys, re
t = sys.stdin.read()
f = lambda k: int(re.search(k + r":\s*(\d+)", t).group(1))
print((f("Volume Size in Clusters") - f("Free Clusters")) * f("Cluster Size"))')
    echo "   ntfs used: $((nused / 1048576)) MiB of $((part_bytes / 1048576)) MiB"
    export NSRC_DISK=$nsrc_disk NSRC_PART=$nsrc_part
    mkdir -p "$work/nrepo"
    run ntfs_lifeboat_save '$T "$LB" savedisk --repo "$W/nrepo" --image bench --disk "$NSRC_DISK" >"$W/nlb-save.log" 2>&1'
    run ntfs_partclone_save '$T partclone.ntfs -c -q -L "$W/npc-save.log" -s "$NSRC_PART" -o - 2>/dev/null | $T zstd -q -T0 -3 >"$W/npc.zst"'
    ntgt1=$work/ntarget-lifeboat.img
    ntgt2=$work/ntarget-partclone.img
    truncate -s "$disk_bytes" "$ntgt1" "$ntgt2"
    sfdisk -q -d "$ndisk" | sfdisk -q "$ntgt2"
    attach NTGT_DISK "$ntgt1"
    attach NTGT_PART "$ntgt2" -o "$part_off" --sizelimit "$part_bytes"
    export NTGT_DISK NTGT_PART
    run ntfs_lifeboat_restore '$T "$LB" restoredisk --repo "$W/nrepo" --image bench --disk "$NTGT_DISK" --yes >"$W/nlb-restore.log" 2>&1'
    run ntfs_partclone_restore '$T zstd -q -dc "$W/npc.zst" | $T partclone.ntfs -r -q -L "$W/npc-restore.log" -s - -o "$NTGT_PART" >/dev/null 2>&1'
    echo "== checking the restored NTFS volumes (ntfsfix -n)"
    attach nchk1 "$ntgt1" -r -o "$part_off" --sizelimit "$part_bytes"
    ntfsfix -n "$nchk1" >"$work/nfix1.log" 2>&1 && echo "   lifeboat restore: clean" ||
        { echo "   lifeboat restore: ntfsfix FAILED"; tail -5 "$work/nfix1.log"; }
    ntfsfix -n "$NTGT_PART" >"$work/nfix2.log" 2>&1 && echo "   partclone restore: clean" ||
        { echo "   partclone restore: ntfsfix FAILED"; tail -5 "$work/nfix2.log"; }
    cmp -s -n "$part_bytes" "$nsrc_part" "$nchk1" && echo "   lifeboat restore: partition identical" ||
        echo "   lifeboat restore: partition bytes differ (expected only in unused clusters)"
    nstored=$(python3 -c "import json; print(json.load(open('$work/nrepo/bench/manifest.json'))['totals']['stored_bytes'])")
    nlb_size=$(du -sb "$work/nrepo/bench" | cut -f1)
    npc_size=$(stat -c %s "$work/npc.zst")
    python3 - "$nstored" "$nused" "$nlb_size" "$npc_size" <<PY
import sys
stored, used, lb, pc = (int(x) for x in sys.argv[1:5])
secs = {k: float(v) for k, v in [$(for k in "${!secs[@]}"; do printf '("%s","%s"),' "$k" "${secs[$k]}"; done)]}
rss = {k: int(v) for k, v in [$(for k in "${!rss[@]}"; do printf '("%s","%s"),' "$k" "${rss[$k]}"; done)]}
MiB = 1 << 20
print()
print(f"NTFS: used {used / MiB:.0f} MiB, lifeboat stored {stored / MiB:.0f} MiB; "
      f"image {lb / MiB:.0f} MiB, partclone+zstd {pc / MiB:.0f} MiB")
print(f"{'step':<28} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13}")
for k in ("ntfs_lifeboat_save", "ntfs_partclone_save", "ntfs_lifeboat_restore",
          "ntfs_partclone_restore"):
    print(f"{k:<28} {secs[k]:>8.2f} {stored / 1e6 / secs[k]:>8.1f} {rss[k]:>13}")
r1 = secs["ntfs_partclone_save"] / secs["ntfs_lifeboat_save"]
r2 = secs["ntfs_partclone_restore"] / secs["ntfs_lifeboat_restore"]
ok = lambda b: "ok" if b else "MISSED"
print()
print(f"NTFS save:    lifeboat / partclone.ntfs+zstd speed = {r1:.2f}x  (target >= 1.5x: {ok(r1 >= 1.5)})")
print(f"NTFS restore: lifeboat / zstd+partclone.ntfs speed = {r2:.2f}x  (target >= 1.5x: {ok(r2 >= 1.5)})")
PY
fi
