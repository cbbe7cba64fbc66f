#!/usr/bin/env bash
# Regenerates the NTFS fixtures of lifeboat-fs-ntfs with the real mkntfs and ntfs-3g.
#
# For each variant NAME it writes, next to this script:
#   NAME.img.zst      the volume (sparse file, compressed with zstd -19)
#   NAME.expect       "Cluster Size", "Volume Size in Clusters" and "Free Clusters" as printed
#                     by `ntfsinfo -m` on the finished volume
#   NAME.bitmap.zst   the $Bitmap stream as read by ntfs-3g (`ntfscat -i 6`), so the tests can
#                     compare the scanner's extents with an independent reading of the bitmap
#
# Needs mkntfs, ntfs-3g (FUSE), ntfsinfo, ntfscat, ntfsresize (ntfs-3g package), setfattr
# (attr), zstd, and root for FUSE mounts. The content is made from seeded generators, so
# reruns give the same files (mkntfs picks a random serial number, so the bytes differ).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

# Deterministic pseudo-random bytes: N bytes from seed S.
prng() {
  head -c "$2" < <(openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 -in /dev/zero 2> /dev/null)
}

# Populates the mounted volume: plain files, a directory with many entries, a fragmented
# file (small files written, every other deleted, then a large file written into the gaps),
# an alternate data stream, a sparse file and (with clusters <= 4 KiB) a compressed file.
populate() {
  local cs=$1
  echo "hello from lifeboat" > "$mnt/hello.txt"
  mkdir -p "$mnt/dir/sub"
  head -c 300000 < <(yes "lifeboat ntfs fixture line") > "$mnt/dir/text.txt"
  seq 1 2000 > "$mnt/dir/sub/numbers.txt"
  for i in $(seq 1 80); do echo "entry $i" > "$mnt/dir/entry-with-a-longish-name-$i"; done
  mkdir -p "$mnt/frag"
  for i in $(seq 1 40); do head -c $((3 * cs)) < <(yes "gap $i") > "$mnt/frag/g$i"; done
  sync
  for i in $(seq 1 2 40); do rm "$mnt/frag/g$i"; done
  sync
  head -c $((50 * cs)) < <(yes "fragmented file content") > "$mnt/frag/fragmented.txt"
  echo "main stream" > "$mnt/ads.txt"
  setfattr -n user.secret -v "an alternate data stream" "$mnt/ads.txt"
  truncate -s 2M "$mnt/sparse.bin"
  printf 'in the middle' | dd of="$mnt/sparse.bin" bs=1 seek=1000000 conv=notrunc status=none
  if [ "$cs" -le 4096 ]; then
    mkdir "$mnt/compressed"
    setfattr -h -v 0x00000800 -n system.ntfs_attrib_be "$mnt/compressed"
    head -c 200000 < <(yes "compress me please") > "$mnt/compressed/c.txt"
  fi
}

# name | volume size | cluster size | extra step
variants=(
  "ntfs-512|$((24 << 20))|512|"
  "ntfs-4k|$((48 << 20))|4096|"
  "ntfs-64k|$((96 << 20))|65536|"
  "ntfs-2m|$((1 << 30))|2097152|"
  "ntfs-grown|$((40 << 20))|4096|grow"
  "ntfs-hiber|$((16 << 20))|4096|hiber"
)

for v in "${variants[@]}"; do
  IFS='|' read -r name size cs extra <<< "$v"
  img=$work/$name.img
  truncate -s "$size" "$img"
  mkntfs -F -f -Q -q -c "$cs" -L "$name" "$img" 2> /dev/null
  ntfs-3g -o compression "$img" "$mnt"
  populate "$cs"
  if [ "$extra" = hiber ]; then
    { printf 'HIBR'; prng hiber 60000; } > "$mnt/hiberfil.sys"
  fi
  umount "$mnt"
  if [ "$extra" = grow ]; then
    # Enlarge the volume: $Bitmap grows and gets a second run elsewhere on the volume.
    # ntfsresize leaves the volume marked dirty (a check is scheduled): kept so.
    truncate -s $((size * 3)) "$img"
    ntfsresize -f -f -P "$img" > /dev/null
    ntfs-3g "$img" "$mnt"
    prng grow 300000 > "$mnt/after-grow.bin"
    umount "$mnt"
  fi
  ntfsfix -n "$img" > /dev/null
  ntfsinfo -f -m "$img" | grep -E '^\s*(Cluster Size|Volume Size in Clusters|Free Clusters):' \
    | sed -e 's/^\s*//' -e 's/ (.*//' > "$here/$name.expect"
  ntfscat -f -i 6 "$img" | zstd -q -19 -f -o "$here/$name.bitmap.zst"
  zstd -q -19 -f "$img" -o "$here/$name.img.zst"
  echo "$name: $(tr '\n' ' ' < "$here/$name.expect")"
done
