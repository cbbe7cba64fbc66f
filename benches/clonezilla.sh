#!/usr/bin/env bash
# Clonezilla restore speed: lifeboat's partclone reader against Clonezilla's own pipeline
# (`zstd -dc IMAGE | partclone.ext4 -r -s - -O TARGET`), on the same zstd-compressed partclone
# image of an ext4 filesystem (SIZE_MIB, default 2048, about 70 % filled with incompressible
# files by `mke2fs -d`), both writing into a regular file on the same filesystem (page cache;
# each target is removed first). Run by hand (needs partclone, zstd, e2fsprogs):
#     benches/clonezilla.sh [WORKDIR]
# Prints the wall time of each (best of RUNS, default 3) and the ratio partclone / lifeboat
# (≥ 1.0: lifeboat at least as fast).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
size=${SIZE_MIB:-2048}
runs=${RUNS:-3}
mkdir -p "$work/tree"
cargo build -q --release -p lifeboat-clonezilla --example restore_to_file
ours=target/release/examples/restore_to_file
if [ ! -f "$work/img.zst" ]; then
    n=$((size * 7 / 10 / 64))
    for i in $(seq 1 "$n"); do head -c 64M /dev/urandom > "$work/tree/f$i"; done
    truncate -s "${size}M" "$work/fs.img"
    mke2fs -q -F -t ext4 -d "$work/tree" "$work/fs.img"
    rm -rf "$work/tree"
    partclone.ext4 -q -c -s "$work/fs.img" -o - 2>/dev/null | zstd -q -T0 -c > "$work/img.zst"
fi
best() { sort -n | head -1; }
time_of() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
theirs=$(for _ in $(seq "$runs"); do
    rm -f "$work/t1"; truncate -s "${size}M" "$work/t1"
    time_of sh -c "zstd -dc '$work/img.zst' | partclone.ext4 -q -r -s - -O '$work/t1'"
done | best)
mine=$(for _ in $(seq "$runs"); do
    rm -f "$work/t2"; truncate -s "${size}M" "$work/t2"
    time_of "$ours" "$work/img.zst" "$work/t2"
done | best)
cmp "$work/t1" "$work/t2" && echo "targets identical"
echo "partclone pipeline: ${theirs}s   lifeboat reader: ${mine}s   ratio: $(echo "scale=2; $theirs / $mine" | bc)"
