#!/usr/bin/env bash
# Regenerates the XFS fixtures of lifeboat-fs-xfs with the real mkfs.xfs (and, for the
# fragmented ones, the kernel: a loop mount, as root).
#
# For each variant NAME it writes, next to this script:
#   NAME.img.zst   the image (compressed with zstd -19)
#   NAME.expect    what xfs_db -r says about it: the superblock geometry, `freesp -d` (every
#                  free extent, the AG free list's blocks included), and per AG the AGF
#                  counts and the AGFL's block list
#
# Needs mkfs.xfs and xfs_db (xfsprogs), zstd, and for the *-frag variants root, mount and a
# kernel that mounts XFS v5. The kernel refuses v4 (crc=0): those are filled through a mkfs
# prototype file (-p) instead. Fixed UUIDs; file contents are compressible, so the fixtures
# stay small.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT
# mkfs.xfs refuses filesystems under 300 MB unless all three are set (its escape hatch for
# fstests); small fixtures keep test_data small.
export TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1
uuid=5b0c2a9e-41d7-4c3b-9f1e-7a6d8c2b3e40

# A small tree with files of a few sizes.
tree=$work/tree
mkdir -p "$tree/dir/sub" "$tree/empty"
echo "hello from lifeboat" > "$tree/hello.txt"
head -c 1234567 < <(yes "lifeboat xfs fixture line") > "$tree/big.txt"
head -c 70001 < <(yes "0123456789abcdef") > "$tree/dir/medium.bin"
seq 1 3000 > "$tree/dir/sub/numbers.txt"
for i in $(seq 1 40); do echo "file $i" > "$tree/dir/f$i"; done
ln -s hello.txt "$tree/link"

# Writes the mkfs.xfs prototype entries of directory $1 (see mkfs.xfs(8), "-p").
proto_dir() {
  local d=$1 e name
  for e in "$d"/*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    name=$(basename "$e")
    if [ -L "$e" ]; then
      echo "$name l--777 0 0 $(readlink "$e")"
    elif [ -d "$e" ]; then
      echo "$name d--755 0 0"
      proto_dir "$e"
      echo '$'
    else
      echo "$name ---644 0 0 $e"
    fi
  done
}
proto=$work/proto
{ echo "/dev/null"; echo "0 0"; echo "d--755 0 0"; proto_dir "$tree"; echo '$'; } > "$proto"

# The same tree plus a directory of N one-line files, for the v4 fragmented variants.
proto_many() {
  local n=$1 i
  mkdir -p "$work/many"
  for i in $(seq 1 "$n"); do echo "small file $i" > "$work/many/$i"; done
  { echo "/dev/null"; echo "0 0"; echo "d--755 0 0"; proto_dir "$tree"
    echo "many d--755 0 0"; proto_dir "$work/many"; echo '$'; echo '$'; } > "$work/proto-many"
}

# Fragments the free space of a v4 image without the kernel: the mode of every other file of
# /many is zeroed with xfs_db (expert mode), then xfs_repair frees those inodes and their
# blocks and rebuilds the free-space B+trees.
zap_odd() {
  local img=$1 inos n args=()
  inos=$(xfs_db -r -c 'path /many' -c ls "$img" | awk '$3 == "regular" && $6 % 2 == 1 {print $2}')
  for n in $inos; do args+=(-c "inode $n" -c "write core.mode 0"); done
  xfs_db -x "${args[@]}" "$img" > /dev/null
  xfs_repair "$img" > /dev/null 2>&1
}

# Fills a v5 image through a loop mount with fragmented free space: many one-block files,
# every other one deleted, so that the by-block free-space B+tree grows past one leaf.
fragment() {
  local img=$1 files=$2 bs=$3
  mkdir -p "$mnt"
  mount -o loop "$img" "$mnt"
  cp -a "$tree/." "$mnt/"
  for d in a b; do
    mkdir "$mnt/$d"
    for i in $(seq 1 "$files"); do
      head -c "$bs" < <(yes "$d $i") > "$mnt/$d/$i"
    done
  done
  sync
  for d in a b; do
    for i in $(seq 1 2 "$files"); do rm "$mnt/$d/$i"; done
  done
  umount "$mnt"
}

# name | size | mkfs.xfs options | fill (proto or frag:FILES)
variants=(
  "v5-default|64m|-m crc=1|proto"
  "v5-frag|128m|-d agcount=4|frag:1400"
  "v5-1k-frag|48m|-b size=1024 -d agcount=3|frag:500"
  "v5-sect4k|64m|-s size=4096|proto"
  "v5-rmap|80m|-m rmapbt=1,reflink=1,finobt=1 -d agcount=5|proto"
  "v4|64m|-m crc=0|proto"
  "v4-512|40m|-m crc=0 -b size=512|proto"
  "v4-sect4k|64m|-m crc=0 -s size=4096 -d agcount=2|proto"
  "v4-512-frag|40m|-m crc=0 -b size=512|zap:300"
)

for v in "${variants[@]}"; do
  IFS='|' read -r name size opts fill <<< "$v"
  img=$work/$name.img
  rm -f "$img"
  truncate -s "$size" "$img"
  popt=()
  [ "$fill" = proto ] && popt=(-p "$proto")
  if [ "${fill%%:*}" = zap ]; then
    proto_many "${fill#zap:}"
    popt=(-p "$work/proto-many")
  fi
  uopt=uuid=$uuid
  # shellcheck disable=SC2086
  mkfs.xfs -q -f $opts -m "$uopt" -L "${name:0:12}" "${popt[@]}" "$img" 2>&1 \
    | grep -v 'V4 filesystems are deprecated' || true
  case $fill in
    frag:*)
      bs=$(xfs_db -r -c 'sb 0' -c 'print blocksize' "$img" | awk '{print $3}')
      fragment "$img" "${fill#frag:}" "$bs"
      ;;
    zap:*) zap_odd "$img" ;;
  esac
  xfs_repair -n "$img" > /dev/null 2>&1 || { echo "$name: xfs_repair -n is not clean" >&2; exit 1; }
  agcount=$(xfs_db -r -c 'sb 0' -c 'print agcount' "$img" | awk '{print $3}')
  args=(-c 'sb 0' -c 'print dblocks blocksize sectsize agcount agblocks versionnum logstart uuid fname icount ifree' -c 'freesp -d')
  for ((a = 0; a < agcount; a++)); do
    args+=(-c "agf $a" -c 'print seqno length freeblks flcount flfirst fllast bnolevel longest' -c "agfl $a" -c 'print bno')
  done
  xfs_db -r "${args[@]}" "$img" > "$here/$name.expect"
  zstd -q -19 -f "$img" -o "$here/$name.img.zst"
  echo "$name: agcount $agcount, bno levels $(grep '^bnolevel' "$here/$name.expect" | awk '{print $3}' | tr '\n' ' ')"
done
du -ch "$here"/*.zst | tail -1
