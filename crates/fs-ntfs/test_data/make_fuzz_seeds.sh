#!/usr/bin/env bash
# Regenerates the seed corpus of the `ntfs_scanner` fuzz target (fuzz/corpus/ntfs_scanner)
# from real volumes made by mkntfs and populated through ntfs-3g:
#   whole-1m-512.bin          a whole volume with 512-byte clusters and files, cut to 1 MiB
#                             (libFuzzer's default largest input) with the sector count cut
#                             to match and the backup boot sector moved to the new last sector
#   head-*.bin                the first 64 KiB of small volumes, cut the same way (and the
#                             $MFTMirr cluster pointed at $MFT), so that the scanner reads the
#                             boot sector and the MFT records before it meets runs past the end
# Needs mkntfs, ntfs-3g, root (FUSE) and python3. Keeps the corpus well under 2 MiB.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../../../fuzz/corpus/ntfs_scanner
work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt" "$out"
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

make_vol() { # path size cluster
  truncate -s "$2" "$1"
  mkntfs -F -f -Q -q -c "$3" -L seed "$1" 2> /dev/null
  ntfs-3g "$1" "$mnt"
  echo "hello" > "$mnt/hello.txt"
  for i in $(seq 1 30); do echo "file $i" > "$mnt/f$i"; done
  setfattr -n user.stream -v "ads" "$mnt/hello.txt"
  umount "$mnt"
}

cut() { # volume output bytes
  python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = bytearray(open(src, 'rb').read(n))
bps = struct.unpack_from('<H', b, 0x0B)[0]
struct.pack_into('<Q', b, 0x28, n // bps - 1)
mft = struct.unpack_from('<Q', b, 0x30)[0]
struct.pack_into('<Q', b, 0x38, mft)
b[n - bps:] = b[:bps]
open(dst, 'wb').write(bytes(b))
PY
}

rm -f "$out"/*
make_vol "$work/w.img" $(((1 << 20) + 4096)) 512
cut "$work/w.img" "$out/whole-1m-512.bin" $((1 << 20))
cut "$work/w.img" "$out/head-1m-512.bin" 65536
for cs in 1024 4096; do
  make_vol "$work/v$cs.img" $((2 << 20)) "$cs"
  cut "$work/v$cs.img" "$out/head-2m-$cs.bin" 65536
done
du -b "$out"/*
