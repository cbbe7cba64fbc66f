#!/bin/sh
# Regenerates the seed corpus of the `partition_table` fuzz target: small disks made with
# sfdisk and sgdisk (512- and 4096-byte sectors, the latter through `losetup -b 4096`, so
# run as root), plus larger ones squeezed to their first 20 KiB and last 33 sectors.
# Usage: fuzz/make_partition_table_seeds.sh   (from anywhere; overwrites the seeds)
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/partition_table
mkdir -p "$out"
work=$(mktemp -d)
loops=""
cleanup() {
    for l in $loops; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Tiny MBR: two primaries (the first bootable), an extended partition with three logicals.
mbr_script='label: dos
label-id: 0x5eed0001
start=1, size=2, type=83, bootable
start=3, size=2, type=7
start=5, size=12, type=5
start=6, size=2, type=83
start=9, size=2, type=82
start=12, size=2, type=8e
'
truncate -s $((18 * 512)) "$work/mbr512.img"
printf '%s' "$mbr_script" | sfdisk -q "$work/mbr512.img"
cp "$work/mbr512.img" "$out/mbr-logicals-512"

truncate -s $((18 * 4096)) "$work/mbr4k.img"
l=$(losetup -b 4096 -f --show "$work/mbr4k.img"); loops="$loops $l"
printf '%s' "$mbr_script" | sfdisk -q "$l"
losetup -d "$l"
cp "$work/mbr4k.img" "$out/mbr-logicals-4096"

# MBR with the bootable flag on the second primary and a gap before the first.
truncate -s 64K "$work/boot.img"
printf 'label: dos\nstart=16, size=40, type=c\nstart=64, size=60, type=83, bootable\n' |
    sfdisk -q "$work/boot.img"
cp "$work/boot.img" "$out/mbr-bootable-512"

# Tiny GPTs, partitions aligned to one sector.
truncate -s 64K "$work/gpt512.img"
sgdisk -a 1 -n 1:34:+8 -t 1:ef02 -c 1:bios -n 2:0:+16 -t 2:ef00 -c 2:ESP \
    -n 4:0:+20 -t 4:8300 -c 4:root -A 4:set:2 "$work/gpt512.img" >/dev/null
cp "$work/gpt512.img" "$out/gpt-512"

truncate -s $((24 * 4096)) "$work/gpt4k.img"
l=$(losetup -b 4096 -f --show "$work/gpt4k.img"); loops="$loops $l"
sgdisk -a 1 -n 1:6:+2 -t 1:ef00 -c 1:ESP -n 3:0:+4 -t 3:0700 -c 3:data "$l" >/dev/null 2>&1
losetup -d "$l"
cp "$work/gpt4k.img" "$out/gpt-4096"

# A realistic GPT and MBR, squeezed: first 20 KiB + last 33 sectors.
squeeze() {
    size=$(stat -c %s "$1")
    { head -c 20480 "$1"; tail -c $((33 * 512)) "$1"; } >"$2"
    : "$size"
}
truncate -s 16M "$work/big-gpt.img"
sgdisk -n 1:1MiB:+1MiB -t 1:ef02 -n 2:0:+4MiB -t 2:ef00 -c 2:EFI -n 3:0:0 -t 3:8e00 \
    "$work/big-gpt.img" >/dev/null
squeeze "$work/big-gpt.img" "$out/gpt-squeezed-512"

truncate -s 16M "$work/big-mbr.img"
printf 'label: dos\nstart=1MiB, size=4MiB, type=83\ntype=f\nsize=2MiB, type=83\n' |
    sfdisk -q "$work/big-mbr.img"
squeeze "$work/big-mbr.img" "$out/mbr-squeezed-512"

# No table: an ext4 superblock on the whole disk; an empty MBR.
truncate -s 4M "$work/ext4.img"
mkfs.ext4 -q -F "$work/ext4.img"
head -c 4096 "$work/ext4.img" >"$out/none-ext4"
truncate -s 4K "$work/empty.img"
printf 'label: dos\n' | sfdisk -q "$work/empty.img"
cp "$work/empty.img" "$out/mbr-empty"
ls -l "$out"
