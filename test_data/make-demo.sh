#!/usr/bin/env bash
# Regenerates test_data/demo-disk.img.zst, the small disk that `lifeboat demo` saves and
# restores. Made once with real tools (sfdisk, mke2fs -d) and committed; run again only to
# change it. Needs: sfdisk (fdisk), mke2fs (e2fsprogs), zstd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
img=$work/demo.img
truncate -s 48M "$img"
# MBR: a bootable primary ext4, and an extended partition holding a logical ext2.
sfdisk -q "$img" <<'TABLE'
label: dos
label-id: 0x4c1fb0a7
start=2048, size=40960, type=83, bootable
start=43008, size=51200, type=5
start=45056, size=49152, type=83
TABLE
# Stand-in for boot-loader code: random bytes in the MBR boot code area and the gap after it.
head -c 440 /dev/urandom | dd of="$img" conv=notrunc status=none
head -c 65536 /dev/urandom | dd of="$img" bs=512 seek=1 conv=notrunc status=none
# Populated trees.
mkdir -p "$work/root/etc" "$work/root/srv/www" "$work/data/reports"
for i in $(seq 1 40); do
  seq $((i * 1000)) $((i * 1000 + 4000)) | sed "s/^/line of report $i: /" > "$work/data/reports/report-$i.txt"
done
head -c 100000 /dev/urandom > "$work/data/reports/archive.bin"
printf 'demo host\n' > "$work/root/etc/hostname"
for i in $(seq 1 20); do
  seq 3000 | sed "s|.*|<p>page $i of the demo web site, line &</p>|" > "$work/root/srv/www/page-$i.html"
done
head -c 60000 /dev/urandom > "$work/root/srv/www/logo.bin"
mke2fs -q -F -t ext4 -L demo-root -U 2b1c7e0e-3f4a-4b59-9d1e-6a0c2f3b4d5e \
  -E offset=$((2048 * 512)) -d "$work/root" "$img" 20M
mke2fs -q -F -t ext2 -L demo-data -U 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d \
  -E offset=$((45056 * 512)) -d "$work/data" "$img" 24M
zstd -q -19 -f "$img" -o "$here/demo-disk.img.zst"
ls -l "$here/demo-disk.img.zst"
