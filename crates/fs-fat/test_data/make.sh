#!/usr/bin/env bash
# Regenerates the FAT and exFAT fixtures of lifeboat-fs-fat with the real tools.
#
# For each variant NAME it writes, next to this script:
#   NAME.img.zst   the image (sparse file, compressed with zstd -19)
#   NAME.fsck      `fsck.fat -v -n` output on the finished FAT image (geometry and the
#                  "F files, U/T clusters" line), or
#   NAME.dump      `dump.exfat` output on the finished exFAT image (cluster size, total
#                  and free clusters)
# so the tests can compare with the tools where they are missing.
#
# FAT volumes are made with mkfs.vfat (dosfstools) and populated with mtools (mcopy, mmd,
# mdel: files are deleted and a large file written afterwards, so it is fragmented). exFAT
# volumes are made with mkfs.exfat (exfatprogs) on a loop device (for the 4096-byte sector
# variant) and populated through exfat-fuse, which needs a block device. Needs root, loop
# devices and /dev/fuse. Also writes the fuzz seed corpora (small volumes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
loops=()
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"

# Trees of files of a few sizes (compressible content keeps the fixtures small).
tree=$work/tree
mkdir -p "$tree/dir/sub" "$tree/empty"
echo "hello from lifeboat" > "$tree/hello.txt"
head -c 1234567 < <(yes "lifeboat fixture line") > "$tree/big.txt"
head -c 70001 < <(yes "0123456789abcdef") > "$tree/dir/medium.bin"
seq 1 3000 > "$tree/dir/sub/numbers.txt"
for i in $(seq 1 40); do echo "file $i" > "$tree/dir/f$i"; done
small=$work/small
mkdir -p "$small/dir"
echo "hello from lifeboat" > "$small/hello.txt"
seq 1 20000 > "$small/dir/numbers.txt"
for i in $(seq 1 12); do echo "file $i" > "$small/dir/f$i"; done
# Files that are deleted to leave holes, then a file written across them.
holes=$work/holes
mkdir -p "$holes"
for i in $(seq 1 16); do head -c $((3000 + i * 517)) < <(yes "hole $i") > "$holes/h$i"; done
head -c 300000 < <(seq 1 100000) > "$work/frag.txt"

# FAT: name | size in KiB | mkfs.vfat options | tree
fat_variants=(
  "fat12-floppy|1440|-F 12|$small"
  "fat12-4k|12288|-F 12 -s 8|$tree"
  "fat16-2k|40960|-F 16 -s 4|$tree"
  "fat16-4kS|65536|-F 16 -S 4096 -s 1|$tree"
  "fat16-64k|262144|-F 16 -s 128|$tree"
  "fat32-512|65536|-F 32 -s 1|$tree"
  "fat32-4k|307200|-F 32 -s 8|$tree"
  "fat32-4kS|307200|-F 32 -S 4096 -s 1|$tree"
  "fat32-1fat-bad|65536|-F 32 -s 1 -f 1 -l $work/badblocks|$small"
)
printf '5000\n5001\n9000\n30000\n' > "$work/badblocks"

for v in "${fat_variants[@]}"; do
  IFS='|' read -r name kib opts src <<< "$v"
  img=$work/$name.img
  rm -f "$img"
  truncate -s "${kib}K" "$img"
  # shellcheck disable=SC2086
  mkfs.vfat --invariant -i 4c1f0a4e -n "$(echo "${name:0:11}" | tr a-z- A-Z_)" $opts "$img" > /dev/null
  # Holes first, then the tree, then delete every other hole file and write a file that
  # has to fill them (fragmented).
  mmd -i "$img" ::/holes
  mcopy -m -i "$img" "$holes"/* ::/holes/
  mcopy -s -m -i "$img" "$src"/* ::/
  for i in $(seq 1 2 16); do mdel -i "$img" "::/holes/h$i"; done
  mcopy -m -i "$img" "$work/frag.txt" ::/frag.txt
  # (exit status 1 for the bad-block variant: mkfs.vfat leaves the FSInfo free count
  # unaware of the bad clusters, which fsck.fat reports)
  { fsck.fat -v -n "$img" || true; } | sed "s|$work/||" > "$here/$name.fsck"
  zstd -q -19 -f "$img" -o "$here/$name.img.zst"
  echo "$name: $(grep clusters "$here/$name.fsck" | tail -1)"
done

# exFAT: name | size in MiB | logical sector size | mkfs.exfat options | tree
exfat_variants=(
  "exfat-4k|64|512||$tree"
  "exfat-512|32|512|-c 512|$tree"
  "exfat-32k|128|512|-c 32K|$tree"
  "exfat-4kS|64|4096||$tree"
  "exfat-pack|64|512|--pack-bitmap|$tree"
)
for v in "${exfat_variants[@]}"; do
  IFS='|' read -r name mib ss opts src <<< "$v"
  img=$work/$name.img
  rm -f "$img"
  truncate -s "${mib}M" "$img"
  dev=$(losetup -b "$ss" -f --show "$img")
  loops+=("$dev")
  # shellcheck disable=SC2086
  mkfs.exfat -L "$(echo "${name:0:11}" | tr a-z- A-Z_)" $opts "$dev" > /dev/null
  tune.exfat -I 0x4c1f0a4e "$dev" > /dev/null
  mount.exfat-fuse "$dev" "$mnt"
  mkdir "$mnt/holes"
  cp "$holes"/* "$mnt/holes/"
  cp -r "$src"/* "$mnt/"
  for i in $(seq 1 2 16); do rm "$mnt/holes/h$i"; done
  cp "$work/frag.txt" "$mnt/frag.txt"
  umount "$mnt"
  losetup -d "$dev"
  loops=("${loops[@]/$dev}")
  dump.exfat "$img" | sed "s|$work/||" > "$here/$name.dump"
  fsck.exfat -n "$img" > /dev/null
  zstd -q -19 -f "$img" -o "$here/$name.img.zst"
  echo "$name: $(grep -E 'Free Clusters' "$here/$name.dump")"
done
du -ch "$here"/*.zst | tail -1

# Seed corpora of the fuzz targets: whole tiny volumes, so the fuzzer starts from inputs
# that get past the boot sector checks.
fcorpus=$here/../../../fuzz/corpus/fat_scanner
ecorpus=$here/../../../fuzz/corpus/exfat_scanner
mkdir -p "$fcorpus" "$ecorpus"
rm -f "$fcorpus"/* "$ecorpus"/*
for s in "fat12|-F 12 -s 1 -r 16|64" "fat12-4kS|-F 12 -S 4096 -s 1 -r 128|256" "fat12-1fat|-F 12 -s 2 -f 1 -r 32|160"; do
  IFS='|' read -r name opts kib <<< "$s"
  f=$work/seed-$name
  truncate -s "${kib}K" "$f"
  # shellcheck disable=SC2086
  mkfs.vfat --invariant -i 4c1f0a4e $opts "$f" > /dev/null
  mmd -i "$f" ::/d
  seq 1 3000 | mcopy -i "$f" - ::/d/seed.txt
  echo "seed" | mcopy -i "$f" - ::/small.txt
  mdel -i "$f" ::/d/seed.txt
  seq 1 2000 | mcopy -i "$f" - ::/d/again.txt
  cp "$f" "$fcorpus/$name"
done
# FAT16 and FAT32 need at least 4085 and 65525 clusters (2 MiB and 32 MiB at the least):
# too large for seeds; their parsing is covered by the proptests of tests/robustness.rs.
for s in "exfat-256k|256K|" "exfat-512k-pack|512K|--pack-bitmap"; do
  IFS='|' read -r name size opts <<< "$s"
  f=$work/seed-$name
  truncate -s "$size" "$f"
  # shellcheck disable=SC2086
  mkfs.exfat -b 4K -c 512 $opts "$f" > /dev/null
  cp "$f" "$ecorpus/$name"
done
du -ch "$fcorpus" "$ecorpus" | tail -1
