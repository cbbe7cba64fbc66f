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
#     SKIP_STATIC=1  leave out the static (musl) build
#
# Steps, each after `sync; echo 3 > /proc/sys/vm/drop_caches`, each timed to its end
# including a final `sync` (so written data is on disk), peak RSS from /usr/bin/time:
#   save     (a) lifeboat savedisk of the whole disk (a loop device) into a repository
#            (a2) as (a) with --encrypt (target: at most 10% slower than (a))
#            (b) partclone.ext4 -c of the partition (a loop device) | zstd -T0 -3 > file
#            (c) zstd -T0 -3 of a file holding partclone's raw stream (the same used bytes)
#            (a') as (a) with the static rescue binary (musl target, built by the README's
#                 command; needs the x86_64-unknown-linux-musl target and musl-gcc)
#   restore  (d) lifeboat restoredisk --yes onto a second disk (a loop device), and again
#                with --no-precheck (no verification pass before writing; informational)
#            (e) zstd -dc file | partclone.ext4 -r onto a partition of a third disk
#            (d') as (d) with the static binary, onto a fourth disk
# The restores are then checked with e2fsck -fn. Needs: cargo, sfdisk (fdisk), mke2fs
# (e2fsprogs), losetup (util-linux), partclone, zstd, time, python3.
#
# Targets (from the issue): save >= 1.5x the partclone pipeline and >= 0.9x plain zstd;
# restore >= 1.5x the partclone pipeline; lifeboat peak RSS <= 128 MiB; the static build's
# save at most 5% slower than the normal (glibc) build's.
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
static=0
if [ "${SKIP_STATIC:-0}" != 1 ]; then
    echo "== building the static lifeboat (release, x86_64-unknown-linux-musl)"
    (cd "$repo_root" && cargo build --release --locked -q --target x86_64-unknown-linux-musl --bin lifeboat) ||
        die "the static build failed (rustup target add x86_64-unknown-linux-musl; apt-get install musl-tools), or set SKIP_STATIC=1"
    lifeboat_static=$repo_root/target/x86_64-unknown-linux-musl/release/lifeboat
    [ -x "$lifeboat_static" ] || die "no $lifeboat_static"
    static=1
fi

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

export LB=$lifeboat LBS=${lifeboat_static:-} SRC_DISK=$src_disk SRC_PART=$src_part W=$work
mkdir -p "$work/repo" "$work/repo-static" "$work/repo-enc"

# (c) needs partclone's raw stream as a file: made untimed first.
partclone.ext4 -c -q -L "$work/pc-raw.log" -s "$src_part" -o "$work/pc.raw" >/dev/null 2>&1 ||
    die "partclone.ext4 -c failed: see $work/pc-raw.log"

run lifeboat_save '$T "$LB" savedisk --repo "$W/repo" --image bench --disk "$SRC_DISK" >"$W/lb-save.log" 2>&1'
# (a2) the same save encrypted (--encrypt: Argon2id key derivation, AES-256-GCM).
run lifeboat_save_encrypted 'LIFEBOAT_PASSPHRASE=bench-passphrase $T "$LB" savedisk --repo "$W/repo-enc" --image bench --encrypt --disk "$SRC_DISK" >"$W/lb-save-enc.log" 2>&1'
run partclone_save '$T partclone.ext4 -c -q -L "$W/pc-save.log" -s "$SRC_PART" -o - 2>/dev/null | $T zstd -q -T0 -3 >"$W/pc.zst"'
run zstd_save '$T zstd -q -T0 -3 "$W/pc.raw" -o "$W/plain.zst"'
if [ "$static" = 1 ]; then
    run static_save '$T "$LBS" savedisk --repo "$W/repo-static" --image bench --disk "$SRC_DISK" >"$W/lbs-save.log" 2>&1'
fi
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
if [ "$static" = 1 ]; then
    tgt4=$work/target-static.img
    truncate -s "$disk_bytes" "$tgt4"
    attach TGT_DISK4 "$tgt4"
    export TGT_DISK4
    run static_restore '$T "$LBS" restoredisk --repo "$W/repo-static" --image bench --disk "$TGT_DISK4" --yes >"$W/lbs-restore.log" 2>&1'
fi

echo "== checking the restored filesystems (e2fsck -fn)"
attach chk1 "$tgt1" -r -o "$part_off" --sizelimit "$part_bytes"
e2fsck -fn "$chk1" >"$work/fsck1.log" 2>&1 && echo "   lifeboat restore: clean" || {
    echo "   lifeboat restore: e2fsck FAILED"; tail -5 "$work/fsck1.log"; }
e2fsck -fn "$TGT_PART" >"$work/fsck2.log" 2>&1 && echo "   partclone restore: clean" || {
    echo "   partclone restore: e2fsck FAILED"; tail -5 "$work/fsck2.log"; }
cmp -s -n $((part_off - 512)) -i 512 "$disk" "$tgt1" && echo "   lifeboat restore: boot area identical" ||
    echo "   lifeboat restore: boot area DIFFERS"
if [ "$static" = 1 ]; then
    attach chk4 "$tgt4" -r -o "$part_off" --sizelimit "$part_bytes"
    e2fsck -fn "$chk4" >"$work/fsck4.log" 2>&1 && echo "   static lifeboat restore: clean" || {
        echo "   static lifeboat restore: e2fsck FAILED"; tail -5 "$work/fsck4.log"; }
fi

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
for k in ("lifeboat_save", "lifeboat_save_encrypted", "partclone_save", "zstd_save", "static_save", "lifeboat_restore",
          "lifeboat_restore_noprecheck", "partclone_restore", "static_restore"):
    if k not in secs:
        continue
    out = f"{size[k] / MiB:.0f}" if k in size else "-"
    print(f"{k:<28} {secs[k]:>8.2f} {stored / 1e6 / secs[k]:>8.1f} {rss[k]:>13} {out:>11}")
r1 = secs["partclone_save"] / secs["lifeboat_save"]
r_enc = secs["lifeboat_save_encrypted"] / secs["lifeboat_save"]
r2 = secs["zstd_save"] / secs["lifeboat_save"]
r3 = secs["partclone_restore"] / secs["lifeboat_restore"]
r4 = secs["partclone_restore"] / secs["lifeboat_restore_noprecheck"]
peak = max(rss["lifeboat_save"], rss["lifeboat_restore"], rss["lifeboat_restore_noprecheck"])
ok = lambda b: "ok" if b else "MISSED"
print()
print(f"save:    lifeboat / partclone+zstd speed = {r1:.2f}x  (target >= 1.5x: {ok(r1 >= 1.5)})")
print(f"save:    encrypted / unencrypted time = {r_enc:.2f}x  (target <= 1.10x: {ok(r_enc <= 1.10)})")
print(f"save:    lifeboat / plain zstd speed     = {r2:.2f}x  (target >= 0.9x: {ok(r2 >= 0.9)})")
print(f"restore: lifeboat / zstd+partclone speed = {r3:.2f}x  (target >= 1.5x: {ok(r3 >= 1.5)})")
print(f"restore: same, lifeboat --no-precheck  = {r4:.2f}x  (informational)")
print(f"lifeboat peak RSS = {peak} MiB  (target <= 128 MiB: {ok(peak <= 128)})")
if "static_save" in secs:
    r5 = secs["static_save"] / secs["lifeboat_save"]
    r6 = secs["static_restore"] / secs["lifeboat_restore"]
    print(f"save:    static / glibc build time      = {r5:.2f}  (target <= 1.05: {ok(r5 <= 1.05)})")
    print(f"restore: static / glibc build time      = {r6:.2f}  (informational)")
PY

# ───────────────────────────── NTFS, FAT32 and XFS ─────────────────────────────
# The same data on an NTFS, a FAT32 and an XFS v5 partition (filled from the ext4 partition mounted
# read-only: NTFS through the ntfs-3g FUSE driver, FAT32 with mcopy): lifeboat savedisk /
# restoredisk against partclone.ntfs / partclone.fat32 / partclone.xfs | zstd -T0 -3 and back.
# Restores are checked with ntfsfix -n / fsck.fat -n / xfs_repair -n. Skipped with
# SKIP_NTFS=1 / SKIP_FAT=1 / SKIP_XFS=1 (XFS: mkfs.xfs, xfs_db, xfs_repair from xfsprogs, and
# partclone.xfs). Then the same XFS inside an LVM2 LV (an `8e` partition holding a PV, a VG
# and one LV; partclone.xfs run on the LV, which it reads by offset), skipped with
# SKIP_XFS_LVM=1.
# Needs mkntfs, ntfs-3g, ntfsfix, ntfsinfo (ntfs-3g), mkfs.vfat, fsck.fat (dosfstools), mcopy
# (mtools), partclone.ntfs and partclone.fat32 (partclone).

# used_ntfs DEV / used_fat DEV: used bytes as the filesystem's own tools count them.
used_ntfs() {
    ntfsinfo -m "$1" 2>/dev/null | python3 -c '
import sys, re
t = sys.stdin.read()
f = lambda k: int(re.search(k + r":\s*(\d+)", t).group(1))
print((f("Volume Size in Clusters") - f("Free Clusters")) * f("Cluster Size"))'
}
used_fat() {
    fsck.fat -n -v "$1" 2>/dev/null | python3 -c '
import sys, re
t = sys.stdin.read()
m = re.search(r"(\d+) bytes per cluster", t)
u = re.search(r"(\d+)/(\d+) clusters", t)
print(int(u.group(1)) * int(m.group(1)))'
}
used_xfs() {
    xfs_db -r -c 'sb 0' -c 'print dblocks blocksize' -c 'freesp -s' "$1" 2>/dev/null | python3 -c '
import sys, re
t = sys.stdin.read()
f = lambda k: int(re.search(k + r" = (\d+)", t).group(1))
free = int(re.search(r"total free blocks (\d+)", t).group(1))
print((f("dblocks") - free) * f("blocksize"))'
}
fill_ntfs() { # DEV MOUNTED_SOURCE_TREE
    mkntfs -Q -F -q -c 4096 -L bench -p 2048 -H 255 -S 63 "$1" 2>/dev/null
    mkdir -p "$work/fs-mnt"
    ntfs-3g -o big_writes "$1" "$work/fs-mnt"
    cp -r "$2/." "$work/fs-mnt/"
    rm -rf "$work/fs-mnt/lost+found"
    umount "$work/fs-mnt"
}
fill_fat() { # DEV MOUNTED_SOURCE_TREE
    mkfs.vfat -F 32 -n BENCH -h 2048 "$1" >"$work/mkfs-fat.log" 2>&1 || die "mkfs.vfat failed: see $work/mkfs-fat.log"
    (cd "$2" && MTOOLS_SKIP_CHECK=1 mcopy -s -Q -i "$1" ./* ::/)
}
fill_xfs() { # DEV MOUNTED_SOURCE_TREE
    mkfs.xfs -q -f -L bench "$1"
    mkdir -p "$work/fs-mnt"
    mount "$1" "$work/fs-mnt"
    cp -r "$2/." "$work/fs-mnt/"
    rm -rf "$work/fs-mnt/lost+found"
    umount "$work/fs-mnt"
}

# compare_fs TAG MBR_TYPE FILL USED CHECKER PARTCLONE [lvm]
# With `lvm`, the partition is an LVM2 PV (VG bench_vg) holding one linear LV over all its
# extents, and the filesystem is made in that LV (reached by its offset: no device-mapper
# needed); partclone, which does not read LVM, is run on the LV.
compare_fs() {
    local tag=$1 ptype=$2 fill=$3 usedf=$4 checker=$5 pc=$6 lvm=${7:-} fdisk fpart_rw
    local fs_off=$part_off fs_bytes=$part_bytes
    echo
    echo "== making the $tag disk: ${DISK_GIB} GiB, MBR, one $tag partition"
    fdisk=$work/$tag-disk.img
    truncate -s "$disk_bytes" "$fdisk"
    printf 'label: dos\nlabel-id: 0x1b0a7c0f\nstart=2048, type=%s, bootable\n' "$ptype" | sfdisk -q "$fdisk"
    python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(440))" |
        dd of="$fdisk" conv=notrunc status=none
    attach fpart_rw "$fdisk" -o "$part_off" --sizelimit "$part_bytes"
    if [ "$lvm" = lvm ]; then
        local pe_start extent first
        LVM_SUPPRESS_FD_WARNINGS=1 pvcreate -q --devices "$fpart_rw" "$fpart_rw"
        LVM_SUPPRESS_FD_WARNINGS=1 vgcreate -q --devices "$fpart_rw" bench_vg "$fpart_rw"
        LVM_SUPPRESS_FD_WARNINGS=1 lvcreate -q --devices "$fpart_rw" --driverloaded n -an -Zn \
            -l 100%FREE -n data bench_vg
        pe_start=$(LVM_SUPPRESS_FD_WARNINGS=1 pvs --devices "$fpart_rw" --noheadings --units b \
            --nosuffix -o pe_start | tr -d ' ')
        extent=$(LVM_SUPPRESS_FD_WARNINGS=1 vgs --devices "$fpart_rw" --noheadings --units b \
            --nosuffix -o vg_extent_size bench_vg | tr -d ' ')
        first=$(LVM_SUPPRESS_FD_WARNINGS=1 lvs --devices "$fpart_rw" --noheadings --segments \
            -o seg_pe_ranges bench_vg/data | sed 's/.*://; s/-.*//' | tr -d ' ')
        fs_bytes=$(LVM_SUPPRESS_FD_WARNINGS=1 lvs --devices "$fpart_rw" --noheadings --units b \
            --nosuffix -o lv_size bench_vg/data | tr -d ' ')
        fs_off=$((part_off + pe_start + first * extent))
        losetup -d "$fpart_rw"
        attach fpart_rw "$fdisk" -o "$fs_off" --sizelimit "$fs_bytes"
        echo "   LVM2 PV with LV bench_vg/data at byte $fs_off ($((fs_bytes / 1048576)) MiB)"
    fi
    mkdir -p "$work/ext-mnt"
    mount -o ro,noload "$src_part" "$work/ext-mnt"
    "$fill" "$fpart_rw" "$work/ext-mnt"
    umount "$work/ext-mnt"
    losetup -d "$fpart_rw"
    attach FSRC_DISK "$fdisk" -r
    attach FSRC_PART "$fdisk" -r -o "$fs_off" --sizelimit "$fs_bytes"
    $checker -n "$FSRC_PART" >/dev/null 2>&1 || die "the $tag volume is not clean"
    local used
    used=$("$usedf" "$FSRC_PART")
    echo "   $tag used: $((used / 1048576)) MiB of $((fs_bytes / 1048576)) MiB"
    export FSRC_DISK FSRC_PART PC=$pc TAG=$tag
    mkdir -p "$work/$tag-repo"
    run "${tag}_lifeboat_save" '$T "$LB" savedisk --repo "$W/$TAG-repo" --image bench --disk "$FSRC_DISK" >"$W/$TAG-lb-save.log" 2>&1'
    run "${tag}_partclone_save" '$T $PC -c -q -L "$W/$TAG-pc-save.log" -s "$FSRC_PART" -o - 2>/dev/null | $T zstd -q -T0 -3 >"$W/$TAG-pc.zst"'
    local t1=$work/$tag-target-lifeboat.img t2=$work/$tag-target-partclone.img
    truncate -s "$disk_bytes" "$t1" "$t2"
    sfdisk -q -d "$fdisk" | sfdisk -q "$t2"
    attach FTGT_DISK "$t1"
    attach FTGT_PART "$t2" -o "$fs_off" --sizelimit "$fs_bytes"
    export FTGT_DISK FTGT_PART
    run "${tag}_lifeboat_restore" '$T "$LB" restoredisk --repo "$W/$TAG-repo" --image bench --disk "$FTGT_DISK" --yes >"$W/$TAG-lb-restore.log" 2>&1'
    run "${tag}_partclone_restore" '$T zstd -q -dc "$W/$TAG-pc.zst" | $T $PC -r -q -L "$W/$TAG-pc-restore.log" -s - -o "$FTGT_PART" >/dev/null 2>&1'
    echo "== checking the restored $tag volumes ($checker -n)"
    local chk
    attach chk "$t1" -r -o "$fs_off" --sizelimit "$fs_bytes"
    $checker -n "$chk" >"$work/$tag-fix1.log" 2>&1 && echo "   lifeboat restore: clean" ||
        { echo "   lifeboat restore: $checker FAILED"; tail -5 "$work/$tag-fix1.log"; }
    $checker -n "$FTGT_PART" >"$work/$tag-fix2.log" 2>&1 && echo "   partclone restore: clean" ||
        { echo "   partclone restore: $checker FAILED"; tail -5 "$work/$tag-fix2.log"; }
    local stored lb pcs
    stored=$(python3 -c "import json; print(json.load(open('$work/$tag-repo/bench/manifest.json'))['totals']['stored_bytes'])")
    lb=$(du -sb "$work/$tag-repo/bench" | cut -f1)
    pcs=$(stat -c %s "$work/$tag-pc.zst")
    python3 - "$tag" "$stored" "$used" "$lb" "$pcs" <<PY
import sys
tag = sys.argv[1]
stored, used, lb, pc = (int(x) for x in sys.argv[2:6])
secs = {k: float(v) for k, v in [$(for k in "${!secs[@]}"; do printf '("%s","%s"),' "$k" "${secs[$k]}"; done)]}
rss = {k: int(v) for k, v in [$(for k in "${!rss[@]}"; do printf '("%s","%s"),' "$k" "${rss[$k]}"; done)]}
MiB = 1 << 20
print()
print(f"{tag}: used {used / MiB:.0f} MiB, lifeboat stored {stored / MiB:.0f} MiB; "
      f"image {lb / MiB:.0f} MiB, partclone+zstd {pc / MiB:.0f} MiB")
print(f"{'step':<28} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13}")
for s in ("lifeboat_save", "partclone_save", "lifeboat_restore", "partclone_restore"):
    k = f"{tag}_{s}"
    print(f"{k:<28} {secs[k]:>8.2f} {stored / 1e6 / secs[k]:>8.1f} {rss[k]:>13}")
r1 = secs[f"{tag}_partclone_save"] / secs[f"{tag}_lifeboat_save"]
r2 = secs[f"{tag}_partclone_restore"] / secs[f"{tag}_lifeboat_restore"]
ok = lambda b: "ok" if b else "MISSED"
print()
print(f"{tag} save:    lifeboat / partclone+zstd speed = {r1:.2f}x  (target >= 1.5x: {ok(r1 >= 1.5)})")
print(f"{tag} restore: lifeboat / zstd+partclone speed = {r2:.2f}x  (target >= 1.5x: {ok(r2 >= 1.5)})")
PY
}

if [ "${SKIP_NTFS:-0}" != 1 ]; then
    for t in mkntfs ntfs-3g ntfsfix ntfsinfo partclone.ntfs mount umount; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install ntfs-3g partclone)"
    done
    compare_fs ntfs 7 fill_ntfs used_ntfs ntfsfix partclone.ntfs
fi
if [ "${SKIP_FAT:-0}" != 1 ]; then
    for t in mkfs.vfat fsck.fat mcopy partclone.fat32 mount umount; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install dosfstools mtools partclone)"
    done
    compare_fs fat32 c fill_fat used_fat fsck.fat partclone.fat32
fi
if [ "${SKIP_XFS:-0}" != 1 ]; then
    for t in mkfs.xfs xfs_db xfs_repair partclone.xfs mount umount; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install xfsprogs partclone)"
    done
    compare_fs xfs 83 fill_xfs used_xfs xfs_repair partclone.xfs
fi
if [ "${SKIP_XFS_LVM:-0}" != 1 ]; then
    for t in mkfs.xfs xfs_db xfs_repair partclone.xfs pvcreate vgcreate lvcreate lvs pvs vgs; do
        command -v "$t" >/dev/null || die "missing $t (apt-get install xfsprogs lvm2 partclone)"
    done
    compare_fs xfs_lvm 8e fill_xfs used_xfs xfs_repair partclone.xfs lvm
fi
