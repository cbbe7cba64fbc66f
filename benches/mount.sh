#!/usr/bin/env bash
# Reading through `lifeboat mount` against reading the same file from a plain disk image.
#
# Run by hand, as root (loop devices, FUSE, drop_caches), from anywhere in the repository:
#     sudo benches/mount.sh               # FILE_MIB=1024, FS=ext4
#     sudo FS=ntfs benches/mount.sh       # the same with NTFS (mkntfs, ntfscp, ntfs-3g)
# Makes a disk image with one ext4 (or NTFS) partition holding a FILE_MIB random file, saves
# it with lifeboat, then times `cat FILE > /dev/null` after dropping the caches:
#   (a) from the partition of the plain disk image, mounted read-only (loop; NTFS: ntfs-3g);
#   (b) from disk0p1 of `lifeboat mount`, mounted the same way.
# Each is read twice, alternating; the second time of each is reported.
# Target (issue 17): (b) at least 0.5x the speed of (a). Needs: cargo, sfdisk, mke2fs,
# losetup, mount, fusermount, python3.
set -euo pipefail
FILE_MIB=${FILE_MIB:-1024}
FS=${FS:-ext4}
case $FS in ext4|ntfs) ;; *) echo "mount.sh: FS is ext4 or ntfs" >&2; exit 1 ;; esac
repo_root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "mount.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
work=$(mktemp -d /var/tmp/lifeboat-mount-bench.XXXXXX)
lb_pid=
cleanup() {
    umount "$work/a" "$work/b" 2>/dev/null || true
    sleep 0.5   # ntfs-3g lets go of its device once unmounted
    for l in "${lo:-}" "${lo2:-}"; do [ -n "$l" ] && losetup -d "$l" 2>/dev/null || true; done
    [ -n "$lb_pid" ] && kill -INT "$lb_pid" 2>/dev/null && wait "$lb_pid" 2>/dev/null || true
    umount -l "$work/img" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
(cd "$repo_root" && cargo build --release -q -p lifeboat-cli)
lb=$repo_root/target/release/lifeboat
disk=$work/disk.img
size_mib=$((FILE_MIB + FILE_MIB / 4 + 64))
truncate -s "${size_mib}M" "$disk"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$disk"
part_off=$((2048 * 512))
mkdir -p "$work/tree" "$work/a" "$work/b" "$work/img" "$work/repo"
head -c "$((FILE_MIB << 20))" /dev/urandom > "$work/tree/big.bin"
if [ "$FS" = ext4 ]; then
    mke2fs -q -F -t ext4 -d "$work/tree" -E offset=$part_off "$disk" "$((size_mib - 2))M"
else
    # mkntfs and ntfscp work on a device: the partition through a loop device.
    lo=$(losetup -f --show -o $part_off "$disk")
    mkntfs -q -f -F "$lo" >/dev/null
    ntfscp "$lo" "$work/tree/big.bin" big.bin >/dev/null
    losetup -d "$lo"; lo=
fi
rm -rf "$work/tree"
"$lb" savedisk --repo "$work/repo" --image bench --disk "$disk" --level 1 >/dev/null
"$lb" mount --repo "$work/repo" --image bench "$work/img" >/dev/null &
lb_pid=$!
for _ in $(seq 100); do [ -e "$work/img/disk0p1" ] && break; sleep 0.1; done
[ -e "$work/img/disk0p1" ] || die "the mount did not come up"
if [ "$FS" = ext4 ]; then
    mount -o ro,loop,offset=$part_off "$disk" "$work/a"
    mount -o ro,loop "$work/img/disk0p1" "$work/b"
else
    lo=$(losetup -f --show -r -o $part_off "$disk")
    ntfs-3g -o ro "$lo" "$work/a"
    lo2=$(losetup -f --show -r "$work/img/disk0p1")
    ntfs-3g -o ro "$lo2" "$work/b"
fi
timed() { sync; echo 3 > /proc/sys/vm/drop_caches; local t0 t1; t0=$(date +%s.%N); cat "$1" > /dev/null; t1=$(date +%s.%N); python3 -c "print(f'{$t1 - $t0:.2f}')"; }
# Each read twice, alternating, so that neither side profits from running second (caches
# below the guest); the second reading of each is reported.
timed "$work/b/big.bin" >/dev/null
timed "$work/a/big.bin" >/dev/null
tb=$(timed "$work/b/big.bin")
ta=$(timed "$work/a/big.bin")
cmp "$work/a/big.bin" "$work/b/big.bin" || die "the file differs through the mount"
python3 - "$FILE_MIB" "$ta" "$tb" <<'PY'
import sys
mib, ta, tb = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"plain image:     {ta:6.2f} s  {mib / ta:7.1f} MiB/s")
print(f"lifeboat mount:  {tb:6.2f} s  {mib / tb:7.1f} MiB/s")
r = ta / tb
print(f"mount / plain = {r:.2f}x  (target >= 0.5x: {'ok' if r >= 0.5 else 'MISSED'})")
PY
