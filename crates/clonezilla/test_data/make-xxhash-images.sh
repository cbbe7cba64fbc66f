#!/usr/bin/env bash
# Makes the partclone images with XXH64 and XXH128 checksums that tests/xxhash_images.rs reads.
# Debian's partclone (0.3.23) cannot write these checksum modes; partclone 0.3.24 and later
# can when built with xxhash. Run by hand, as root (mke2fs -d keeps the owners), with
#     PARTCLONE=/path/to/partclone-src/src/partclone.extfs crates/clonezilla/test_data/make-xxhash-images.sh
# where partclone was built from its sources:
#     apt-get install autoconf automake libtool pkg-config autopoint libext2fs-dev uuid-dev \
#         libxxhash-dev libzstd-dev libssl-dev zlib1g-dev
#     ./autogen && ./configure --enable-extfs --enable-xxhash --disable-ncursesw && make
# (the committed files were made with partclone v0.3.47, git 4781f61).
#
# Writes, next to this script, each compressed with zstd:
#   xxh-ext4.img.zst                 the source volume: 4 MiB ext4 (1 KiB blocks) with files
#   xxh-ext4.a2.pc.zst               partclone -a2 (XXH64), 16 blocks per checksum, reseeded
#   xxh-ext4.a2K.pc.zst              -a2 -K: XXH64 not reseeded (each checksum covers all data so far)
#   xxh-ext4.a3.pc.zst               -a3 (XXH128), 16 blocks per checksum, reseeded
#   xxh-ext4.a3K.pc.zst              -a3 -K
#   xxh-ext4.a3-default.pc.zst       -a3 with partclone's default blocks per checksum
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pc=${PARTCLONE:?set PARTCLONE to a partclone.extfs built with xxhash}
help=$("$pc" --help 2>&1 || true)
case $help in *XXH128*) ;; *) echo "$pc cannot write XXH128" >&2; exit 1 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Deterministic content (a fixed seed): one file of random bytes, text files of varied sizes
# (the fixtures stay small once compressed).
mkdir -p "$work/root/dir"
python3 - "$work/root" <<'PY'
import random, sys, os
r = random.Random(17)
root = sys.argv[1]
open(os.path.join(root, "big.bin"), "wb").write(bytes(r.getrandbits(8) for _ in range(96_000)))
words = [b"block", b"bitmap", b"checksum", b"restore", b"image", b"partition", b"\n"]
for i in range(12):
    n = r.randint(100, 40_000)
    open(os.path.join(root, "dir", f"f{i}.txt"), "wb").write(b" ".join(r.choice(words) for _ in range(n // 6)))
PY
vol=$work/xxh-ext4.img
E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -b 1024 -U 7e1f8a52-1c2b-4f0e-9a55-0d4b1f2a3c4d \
    -E hash_seed=2a9e3f0c-6b1d-4e8a-8f7c-5d3a2b1c0e9f,root_owner=0:0 -d "$work/root" -L xxh "$vol" 4M
e2fsck -fn "$vol" >/dev/null
zstd -q -19 -f "$vol" -o "$here/xxh-ext4.img.zst"

save() { # name partclone-args...
    local name=$1; shift
    "$pc" -c -s "$vol" -o "$work/$name.pc" -L "$work/$name.log" "$@" >/dev/null 2>&1 ||
        { cat "$work/$name.log" >&2; exit 1; }
    zstd -q -19 -f "$work/$name.pc" -o "$here/xxh-ext4.$name.pc.zst"
}
save a2 -a2 -k16
save a2K -a2 -k16 -K
save a3 -a3 -k16
save a3K -a3 -k16 -K
save a3-default -a3
ls -l "$here"/xxh-ext4.*
