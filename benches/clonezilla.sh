#!/usr/bin/env bash
# Clonezilla restore speed: lifeboat's partclone reader against Clonezilla's own pipeline
# (`zstd -dc IMAGE | partclone.ext4 -r -s - -O TARGET`), on the same zstd-compressed partclone
# image of an ext4 filesystem (SIZE_MIB, default 2048, about 70 % filled with incompressible
# files by `mke2fs -d`), both writing into a regular file on the same filesystem (page cache;
# each target is removed first). Run by hand (needs partclone, zstd, e2fsprogs):
#     benches/clonezilla.sh [WORKDIR]
# Prints the wall time of each (best of RUNS, default 3) and the ratio partclone / lifeboat
# (≥ 1.0: lifeboat at least as fast). Then the whole restore: the same image in a Clonezilla
# image directory (one MBR disk, the filesystem as partition 1) restored by
# `lifeboat restoredisk` onto a disk file, with its default pre-check (the image is read and
# verified once, then read again and written) and with --no-precheck, against the same
# pipeline writing the partition.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
size=${SIZE_MIB:-2048}
runs=${RUNS:-3}
mkdir -p "$work/tree"
cargo build -q --release -p lifeboat-clonezilla --example restore_to_file
cargo build -q --release -p lifeboat-cli --bin lifeboat
ours=target/release/examples/restore_to_file
lb=target/release/lifeboat
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

# The whole restore from a Clonezilla image directory.
dir="$work/repo/bench-img"
if [ ! -f "$dir/parts" ]; then
    mkdir -p "$dir"
    truncate -s "$((size + 1))M" "$work/layout.img"
    printf 'label: dos\nstart=2048, size=%s, type=83\n' "$((size * 2048))" | sfdisk -q "$work/layout.img"
    sfdisk -d "$work/layout.img" | sed "s#$work/layout.img#/dev/sdz#" > "$dir/sdz-pt.sf"
    dd if="$work/layout.img" of="$dir/sdz-mbr" bs=512 count=1 status=none
    echo sdz > "$dir/disk"; echo sdz1 > "$dir/parts"; echo clonezilla > "$dir/clonezilla-img"
    ln -f "$work/img.zst" "$dir/sdz1.ext4-ptcl-img.zst"
fi
disk_bytes=$(((size + 1) * 1048576))
restore_with() {
    for _ in $(seq "$runs"); do
        rm -f "$work/t3"; truncate -s "$disk_bytes" "$work/t3"
        time_of "$lb" restoredisk --repo "$work/repo" --image bench-img --disk "$work/t3" --yes "$@"
    done | best
}
checked=$(restore_with)
unchecked=$(restore_with --no-precheck)
cmp <(dd if="$work/t3" bs=1M skip=1 status=none) "$work/t1" && echo "restored partition identical"
echo "partclone pipeline: ${theirs}s   lifeboat restoredisk: ${checked}s (ratio $(echo "scale=2; $theirs / $checked" | bc)), with --no-precheck: ${unchecked}s (ratio $(echo "scale=2; $theirs / $unchecked" | bc))"
