#!/usr/bin/env python3
"""Writes the seed corpus of the xfs_scanner fuzz target (fuzz/corpus/xfs_scanner) from the
committed fixtures: each fixture's AG 0 shrunk to a whole filesystem of 64 blocks (the smallest AG) (one AG,
external log, the by-block B+tree root leaf's records clipped to the AG, the AGF counts and
the v5 CRCs recomputed), so that the fuzzer starts from inputs that get through every check.
Needs zstd. Run from anywhere: python3 crates/fs-xfs/test_data/make_seeds.py"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "..", "fuzz", "corpus", "xfs_scanner")
BLOCKS = 64


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def set_crc(buf, off, length, at):
    blk = bytearray(buf[off:off + length])
    blk[at:at + 4] = b"\0\0\0\0"
    buf[off + at:off + at + 4] = struct.pack("<I", crc32c(bytes(blk)))


def shrink(name):
    img = subprocess.run(["zstd", "-dc", os.path.join(HERE, name + ".img.zst")],
                         check=True, capture_output=True).stdout
    bs, = struct.unpack_from(">I", img, 4)
    ss, = struct.unpack_from(">H", img, 102)
    v5 = struct.unpack_from(">H", img, 100)[0] & 0xF == 5
    buf = bytearray(img[:BLOCKS * bs])
    struct.pack_into(">Q", buf, 8, BLOCKS)        # dblocks
    struct.pack_into(">Q", buf, 48, 0)            # logstart: external log
    struct.pack_into(">I", buf, 84, BLOCKS)       # agblocks
    struct.pack_into(">I", buf, 88, 1)            # agcount
    buf[124] = BLOCKS.bit_length() - 1            # agblklog
    agf = ss
    struct.pack_into(">I", buf, agf + 12, BLOCKS)  # length
    root, = struct.unpack_from(">I", buf, agf + 16)
    level, = struct.unpack_from(">I", buf, agf + 28)
    hdr = 56 if v5 else 16
    if level == 2:
        # The leftmost leaf becomes the root, without siblings.
        maxrecs = (bs - hdr) // 12
        root, = struct.unpack_from(">I", buf, root * bs + hdr + maxrecs * 8)
        assert root < BLOCKS, name
        struct.pack_into(">I", buf, agf + 16, root)
        struct.pack_into(">I", buf, agf + 28, 1)
        struct.pack_into(">I", buf, root * bs + 12, 0xFFFFFFFF)
    else:
        assert level == 1, name
    leaf = root * bs
    n, = struct.unpack_from(">H", buf, leaf + 6)
    recs = []
    for i in range(n):
        s, l = struct.unpack_from(">II", buf, leaf + hdr + 8 * i)
        if s < BLOCKS:
            recs.append((s, min(l, BLOCKS - s)))
    struct.pack_into(">H", buf, leaf + 6, len(recs))
    for i, (s, l) in enumerate(recs):
        struct.pack_into(">II", buf, leaf + hdr + 8 * i, s, l)
    struct.pack_into(">I", buf, agf + 52, sum(l for _, l in recs))     # freeblks
    struct.pack_into(">I", buf, agf + 56, max([l for _, l in recs] or [0]))  # longest
    if v5:
        set_crc(buf, 0, ss, 224)
        set_crc(buf, agf, ss, 216)
        set_crc(buf, leaf, bs, 52)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf)
    print(name, len(buf), "bytes,", len(recs), "free extents")


os.makedirs(OUT, exist_ok=True)
# Fixtures with small blocks only, so that the seeds stay under 64 KiB.
for fixture in ["v5-1k-frag", "v4-512"]:
    shrink(fixture)
# And the first 16 KiB of two fixtures as they are (a volume cut short: superblock paths).
for fixture in ["v5-default", "v4"]:
    img = subprocess.run(["zstd", "-dc", os.path.join(HERE, fixture + ".img.zst")],
                         check=True, capture_output=True).stdout
    with open(os.path.join(OUT, fixture + "-head"), "wb") as f:
        f.write(img[:16384])
