#!/usr/bin/env bash
# How test_data/format-1.2-image.tar.zst was made: an image of two small disks written by the
# format-1.2 writer (lifeboat at commit 20b010c, the last one before index entries carried
# chunk digests), kept so that every later lifeboat is tested on reading images saved before
# format 3 (tests/e2e.rs `an_image_saved_before_format_3_still_reads`). Running it with a newer
# lifeboat makes a format-3 image, which is NOT what the file must hold: check out 20b010c and
# build it first, then pass its binary.
# Needs: sfdisk (fdisk), mke2fs (e2fsprogs), tar, zstd.
#     test_data/make-format-1.2-image.sh /path/to/lifeboat-at-20b010c
# The tests compare the extracted disks with these SHA-256 sums of the source disks:
#     disk 0 (24 MiB): 198b52c05390e8520516e08ab79263ce041395f9f8e1777491d8926654914e11
#     disk 1 (8 MiB):  4b2ecadad216e0a4a6d4c98e654c55dd81ec3ec78d88085b78b2e8ebe9dd6644
# (they depend on mke2fs's random UUIDs, so a new run gives new sums: update the test).
set -euo pipefail
lb=${1:?usage: make-format-1.2-image.sh LIFEBOAT_BINARY_AT_20b010c}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/repo"
cp -a "$here/../docs" "$work/src/"
yes "lifeboat format 1.2 fixture" | head -c 6M > "$work/src/pattern.txt"
for d in e:24M d:8M; do
    name=${d%%:*} size=${d##*:}
    truncate -s "$size" "$work/$name.img"
    echo 'start=2048, type=83' | sfdisk -q "$work/$name.img"
done
mke2fs -q -t ext4 -F -E offset=1048576 -d "$work/src" "$work/e.img" 23M
mke2fs -q -t ext4 -F -E offset=1048576 -d "$here/../docs" "$work/d.img" 7M
"$lb" savedisk --repo "$work/repo" --image fmt12 --disk "$work/e.img" --disk "$work/d.img"
sha256sum "$work/e.img" "$work/d.img"
tar -C "$work/repo" -cf - fmt12 | zstd -19 -q -f -o "$here/format-1.2-image.tar.zst"
