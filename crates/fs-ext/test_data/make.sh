#!/usr/bin/env bash
# Regenerates the ext fixtures of lifeboat-fs-ext with the real mke2fs.
#
# For each variant NAME it writes, next to this script:
#   NAME.img.zst        the image (sparse file, compressed with zstd -19)
#   NAME.expect         "Block count", "Free blocks", "Block size" (and "Cluster size") as
#                       printed by `dumpe2fs -h` on the fresh image
#   NAME.dumpe2fs.zst   the full `dumpe2fs` output (per-group free ranges), so the coverage
#                       test can run where dumpe2fs is missing
#
# Needs mke2fs/dumpe2fs (e2fsprogs) and zstd. Fixed UUID, hash seed, times and mke2fs.conf:
# reruns give the same layout and dumpe2fs output (only the copied files' inode ctimes,
# which mke2fs -d takes from the host, differ).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export E2FSPROGS_FAKE_TIME=1700000000
# Our own mke2fs.conf (also used by the tests), so the host's defaults do not change the
# fixtures.
export MKE2FS_CONFIG=$here/mke2fs.conf
uuid=6c1f0a4e-8d2b-4f57-9a3e-2b7c5d10e9f1

# A small tree with files of a few sizes (compressible content keeps the fixtures small).
tree=$work/tree
mkdir -p "$tree/dir/sub" "$tree/empty"
echo "hello from lifeboat" > "$tree/hello.txt"
head -c 1234567 < <(yes "lifeboat fixture line") > "$tree/big.txt"
head -c 70001 < <(yes "0123456789abcdef") > "$tree/dir/medium.bin"
seq 1 3000 > "$tree/dir/sub/numbers.txt"
truncate -s 3M "$tree/sparse.bin"
printf 'in the middle' | dd of="$tree/sparse.bin" bs=1 seek=1500000 conv=notrunc status=none
for i in $(seq 1 40); do echo "file $i" > "$tree/dir/f$i"; done
ln -s hello.txt "$tree/link"
find "$tree" -exec touch -h -d @1700000000 {} +

# name | size in bytes | mke2fs options
variants=(
  "ext2-1k|$((20 * 1024 * 1024 + 3000 * 1024))|-t ext2 -b 1024"
  "ext3-1k|$((24 * 1024 * 1024))|-t ext3 -b 1024"
  "ext3-4k|$((160 * 1024 * 1024))|-t ext3 -b 4096 -g 8192"
  "ext4-default|$((600 * 1024 * 1024))|-t ext4"
  "ext4-1k|$((64 * 1024 * 1024))|-t ext4 -b 1024"
  "ext4-2k|$((96 * 1024 * 1024 + 1000 * 1024))|-t ext4 -b 2048"
  "ext4-4k-many-groups|$((256 * 1024 * 1024))|-t ext4 -b 4096 -g 2048"
  "ext4-noflex|$((128 * 1024 * 1024 + 4000 * 1024))|-t ext4 -b 4096 -g 4096 -O ^flex_bg"
  "ext4-nosparse|$((48 * 1024 * 1024))|-t ext4 -b 1024 -O ^sparse_super,^resize_inode"
  "ext4-sparse2|$((100 * 1024 * 1024))|-t ext4 -b 1024 -O sparse_super2"
  "ext4-metabg|$((80 * 1024 * 1024))|-t ext4 -b 1024 -g 1024 -O meta_bg,^resize_inode"
  "ext4-metabg-32|$((40 * 1024 * 1024))|-t ext4 -b 1024 -g 512 -O meta_bg,^resize_inode,^64bit"
  "ext4-64bit|$((64 * 1024 * 1024))|-t ext4 -b 4096 -g 1024 -O 64bit"
  "ext4-no64bit|$((64 * 1024 * 1024))|-t ext4 -b 1024 -O ^64bit"
  "ext4-bigalloc16k|$((256 * 1024 * 1024 + 1000 * 1024))|-t ext4 -b 4096 -O bigalloc -C 16384"
  "ext4-bigalloc64k|$((512 * 1024 * 1024))|-t ext4 -b 4096 -O bigalloc -C 65536"
  "ext4-bigalloc-1k|$((64 * 1024 * 1024))|-t ext4 -b 1024 -O bigalloc -C 16384"
  "ext4-uninit_bg|$((128 * 1024 * 1024))|-t ext4 -b 4096 -g 2048 -O ^metadata_csum,uninit_bg"
  "ext4-nocsum|$((64 * 1024 * 1024))|-t ext4 -b 1024 -O ^uninit_bg,^metadata_csum"
  "ext4-64k|$((100 * 1024 * 1024))|-t ext4 -b 65536"
)

for v in "${variants[@]}"; do
  IFS='|' read -r name size opts <<< "$v"
  img=$work/$name.img
  rm -f "$img"
  truncate -s "$size" "$img"
  # shellcheck disable=SC2086
  mke2fs -q -F $opts -U "$uuid" -E hash_seed=$uuid -L "${name:0:16}" -d "$tree" "$img" 2>&1 \
    | grep -v -e 'blocksize 65536 not usable' -e 'too big for system' -e 'too small for a journal' || true
  dumpe2fs -h "$img" 2>/dev/null \
    | grep -E '^(Block count|Free blocks|Block size|Cluster size):' > "$here/$name.expect"
  dumpe2fs "$img" 2>/dev/null | zstd -q -19 -f -o "$here/$name.dumpe2fs.zst"
  zstd -q -19 -f "$img" -o "$here/$name.img.zst"
  echo "$name: $(tr '\n' ' ' < "$here/$name.expect")"
done
du -ch "$here"/*.zst | tail -1

# Seed corpus of the fuzz target: whole tiny filesystems (under 100 KB each), so the fuzzer
# starts from inputs that get past the superblock checks.
corpus=$here/../../../fuzz/corpus/ext_scanner
mkdir -p "$corpus"
seeds=(
  "ext2-1k|64|-t ext2 -b 1024 -N 16"
  "ext4-1k|96|-t ext4 -b 1024 -N 16 -O ^has_journal"
  "ext4-metabg|96|-t ext4 -b 1024 -N 32 -g 256 -O ^has_journal,meta_bg,^resize_inode"
  "ext4-bigalloc|96|-t ext4 -b 1024 -N 16 -O ^has_journal,bigalloc -C 2048"
  "ext4-uninit-sparse2|90|-t ext4 -b 1024 -N 32 -g 256 -O ^has_journal,^metadata_csum,uninit_bg,sparse_super2"
)
for s in "${seeds[@]}"; do
  IFS='|' read -r name kb opts <<< "$s"
  rm -f "$corpus/$name"
  truncate -s "${kb}K" "$corpus/$name"
  # shellcheck disable=SC2086
  mke2fs -q -F $opts -U "$uuid" -E hash_seed=$uuid "$corpus/$name"
done
