//! A builder of small synthetic VMFS5/VMFS6 partitions, written from structure values by
//! this project's own code (no bytes of real volumes): LVM header and PE table, filesystem
//! descriptor, the system files (`.vh.sf`, `.fdc.sf`, `.fbb.sf`, `.pbc.sf`, `.sbc.sf`,
//! `.pb2.sf`) and two regular files, one with direct blocks and one through a pointer block.
//! Used by the tests and to write the fuzz seed corpus.
#![allow(dead_code)]

/// File block size of the synthetic volumes.
pub const FBS: u64 = 64 << 10;
/// Partition offset of the logical volume.
pub const PE_OFFSET: u64 = 0x19_0000;
/// Bytes after the logical volume.
pub const TAIL: u64 = 4096;

/// What was built and which logical blocks hold something.
pub struct Synthetic {
    pub bytes: Vec<u8>,
    /// Logical blocks used by files (data, system files).
    pub used_blocks: Vec<u64>,
    /// Blocks of the logical volume.
    pub blocks: u64,
    /// First block of `.fdc.sf`.
    pub fdc_block: u64,
    /// Block of `.fbb.sf`.
    pub fbb_block: u64,
}

fn put(b: &mut [u8], off: u64, v: &[u8]) {
    b[off as usize..off as usize + v.len()].copy_from_slice(v);
}
fn p32(b: &mut [u8], off: u64, v: u32) {
    put(b, off, &v.to_le_bytes());
}
fn p64(b: &mut [u8], off: u64, v: u64) {
    put(b, off, &v.to_le_bytes());
}

struct Fd {
    slot: u64,
    kind: u32,
    zla: u32,
    length: u64,
    block_size: u64,
    addrs: Vec<u64>,
}

/// Builds a synthetic volume; `v6` selects VMFS6.
pub fn build(v6: bool) -> Synthetic {
    // .fdc.sf lies where ESXi's bootstrap looks for it: 4 MiB (VMFS5, 64 KiB blocks) or
    // 7 MiB (VMFS6, 4 KiB metadata blocks) into the volume.
    let md: u64 = 4096;
    let boot = if v6 {
        ((md << 10) + 0x3F_FFFF) & !0xF_FFFF
    } else {
        FBS * ((FBS + 0x3F_FFFF) / FBS)
    };
    let fdc0 = boot / FBS;
    let blocks: u64 = fdc0 + 32;
    let lsize = blocks * FBS;
    let mut b = vec![0u8; (PE_OFFSET + lsize + TAIL) as usize];
    // LVM device header.
    let dev = 0x10_0000u64;
    let md_lvm: u64 = if v6 { 4096 } else { 512 };
    p32(&mut b, dev, 0xC001_D00D);
    p32(&mut b, dev + 4, if v6 { 6 } else { 5 });
    p32(&mut b, dev + 8, 21);
    p32(&mut b, dev + 0x66, 1);
    p32(&mut b, dev + 0x6a, 1);
    p64(&mut b, dev + 0x7a, PE_OFFSET);
    p32(&mut b, dev + 0xBE, if v6 { 0 } else { 1 });
    if v6 {
        p32(&mut b, dev + 0xCA, md_lvm as u32);
    }
    put(&mut b, dev + 0x82, b"synthetic-dev-id");
    let vt = dev + md_lvm;
    p64(&mut b, vt, lsize);
    put(&mut b, vt + 0x14, b"synthetic-volume");
    p32(&mut b, vt + 0x70, 0);
    p32(&mut b, vt + 0x74, 1);
    p32(&mut b, vt + 0x90, 1);
    let max_vol: u64 = if v6 { 1 } else { 512 };
    let bitmap = dev + md_lvm + max_vol * 512 + ((1024 - max_vol) * 512 - 8192) + 8192;
    let table = bitmap + if v6 { md_lvm.max(1024) } else { 1024 };
    assert!(table + 128 <= PE_OFFSET);
    b[table as usize] = 1;
    p64(&mut b, table + 0x09, PE_OFFSET);
    p64(&mut b, table + 0x11, 0);
    p64(&mut b, table + 0x19, lsize);

    // Filesystem descriptor at logical 2 MiB.
    let lv = PE_OFFSET;
    let fsd = lv + 0x20_0000;
    p32(&mut b, fsd, 0x2FAB_F15E);
    p32(&mut b, fsd + 4, if v6 { 24 } else { 14 });
    b[(fsd + 8) as usize] = if v6 { 82 } else { 81 };
    put(&mut b, fsd + 9, b"synthetic-fs-id!");
    p32(&mut b, fsd + 0x19, 0x4);
    put(
        &mut b,
        fsd + 0x1d,
        if v6 { b"synthetic6" } else { b"synthetic5" },
    );
    p64(&mut b, fsd + 0xa1, FBS);
    p32(&mut b, fsd + 0xd9, 8192);
    p32(&mut b, fsd + 0xd1, 0x1_0000);
    p32(&mut b, fsd + 0xd5, 1);
    if v6 {
        p32(&mut b, fsd + 0x134, 4096);
        b[(fsd + 0x138) as usize] = 4;
    }

    let (fd_size, meta, addrs_at, addr_w) = if v6 {
        (2 * md, md, 2 * md - 2560, 8u64)
    } else {
        (2048, 512, 1024, 4)
    };
    let hdr_size = if v6 { 2 * md } else { 1024 };
    let sfb_rpc = 0x2000u64.min(0x2000_0000 / FBS);
    let fb = |block: u64| -> u64 {
        if v6 {
            1 | ((block / sfb_rpc) << 15) | ((block % sfb_rpc) << 51)
        } else {
            1 | (block << 6)
        }
    };
    let blk = |n: u64| lv + n * FBS;
    // Resource header writer.
    let res_hdr = |b: &mut Vec<u8>, at: u64, rpc: u32, cpg: u32, cgo: u32, rs: u32, n: u64| {
        let cgs = u64::from(cpg) * (hdr_size + u64::from(rpc) * u64::from(rs));
        p32(b, at, rpc);
        p32(b, at + 4, cpg);
        p32(b, at + 8, cgo);
        p32(b, at + 0xc, rs);
        p32(b, at + 0x10, cgs as u32);
        p32(b, at + 0x14, n as u32);
        p32(b, at + 0x18, u32::from(n > 0));
        if v6 {
            p32(b, at + 0x20, 0x7266_6D64);
            p32(b, at + 0x24, 1);
        }
    };

    // Block plan (64 KiB blocks): .vh.sf 0..63, .fdc.sf from 64, then .fbb.sf, .pbc.sf,
    // .sbc.sf (two blocks), .pb2.sf, file "data" (two blocks); file "sparse" reaches blocks
    // 80 and 82 through a pointer block (VMFS5: in .pbc.sf; VMFS6: a sub-block).
    let fdc_len = 0x1_0000 + hdr_size + 16 * fd_size;
    let fdc_blocks: Vec<u64> = (fdc0..fdc0 + fdc_len.div_ceil(FBS)).collect();
    let next = fdc0 + fdc_blocks.len() as u64;
    let (fbb, pbc, sbc, sbc2, pb2, data) = (next, next + 1, next + 2, next + 3, next + 4, next + 5);
    let fdc_file = blk(fdc0);
    res_hdr(&mut b, fdc_file, 16, 1, 0x1_0000, fd_size as u32, 16);
    // A pointer block: 1024 four-byte (VMFS5) or 8192 eight-byte (VMFS6) entries.
    let pb_len: u64 = if v6 { 8192 * 8 } else { 4096 };
    let sbc_res: u64 = if v6 { pb_len } else { 8192 };
    let sbc_count: u64 = if v6 { 1 } else { 4 };
    let sbc_len = 0x1000 + hdr_size + sbc_count * sbc_res;
    let mut fds = vec![
        Fd {
            slot: 0,
            kind: 2,
            zla: 0x10D1,
            length: 0,
            block_size: 8192,
            addrs: vec![],
        },
        Fd {
            slot: 1,
            kind: 5,
            zla: 1,
            length: 1024 + 2 * hdr_size,
            block_size: FBS,
            addrs: vec![fb(fbb)],
        },
        Fd {
            slot: 2,
            kind: 5,
            zla: 1,
            length: fdc_len,
            block_size: FBS,
            addrs: fdc_blocks.iter().map(|&n| fb(n)).collect(),
        },
        Fd {
            slot: 3,
            kind: 5,
            zla: 1,
            length: 0x1000 + hdr_size + 4 * 4096,
            block_size: FBS,
            addrs: vec![fb(pbc)],
        },
        Fd {
            slot: 4,
            kind: 5,
            zla: 1,
            length: sbc_len,
            block_size: FBS,
            addrs: vec![fb(sbc), fb(sbc2)],
        },
        Fd {
            slot: 5,
            kind: 5,
            zla: 1,
            length: 0x40_0000,
            block_size: FBS,
            addrs: (0..64).map(fb).collect(),
        },
        Fd {
            slot: 6,
            kind: 5,
            zla: 1,
            length: 0x1000 + 0x58,
            block_size: FBS,
            addrs: vec![fb(pb2)],
        },
        Fd {
            slot: 7,
            kind: 3,
            zla: 1,
            length: FBS + 10,
            block_size: FBS,
            addrs: vec![fb(data), fb(data + 1)],
        },
    ];
    let mut used: Vec<u64> = (0..64)
        .chain(fdc_blocks.iter().copied())
        .chain([fbb, pbc, sbc, sbc2, pb2, data, data + 1, 80, 82])
        .collect();
    // .sbc.sf: one cluster of one (VMFS6: a pointer block) or four sub-blocks.
    res_hdr(
        &mut b,
        blk(sbc),
        sbc_count as u32,
        1,
        0x1000,
        sbc_res as u32,
        sbc_count,
    );
    if v6 {
        // .fbb.sf: the large file block header with the small file block header as child.
        res_hdr(&mut b, blk(fbb), 16, 1, 0x1000, 8192, 1);
        p32(&mut b, blk(fbb) + 0x34, 1024);
        res_hdr(
            &mut b,
            blk(fbb) + 1024,
            sfb_rpc as u32,
            1,
            0x1000,
            0,
            blocks,
        );
        // No pointer blocks in .pbc.sf, no second-level ones in .pb2.sf.
        res_hdr(&mut b, blk(pbc), 0, 1, 0x1000, 65536, 0);
        res_hdr(&mut b, blk(pb2), 0, 1, 0x1000, 65536, 0);
        // The pointer block of "sparse" is sub-block (cluster 0, resource 0), spanning the
        // two blocks of .sbc.sf.
        let pb_file_off = 0x1000 + hdr_size;
        for (i, v) in [(0u64, fb(80)), (2, fb(82))] {
            let off = pb_file_off + i * 8;
            let (n, inb) = if off < FBS {
                (sbc, off)
            } else {
                (sbc2, off - FBS)
            };
            p64(&mut b, blk(n) + inb, v);
        }
        fds.push(Fd {
            slot: 8,
            kind: 3,
            zla: 3,
            length: 40 * FBS,
            block_size: FBS,
            addrs: vec![2],
        });
    } else {
        res_hdr(&mut b, blk(pbc), 4, 1, 0x1000, 4096, 4);
        let pb = blk(pbc) + 0x1000 + hdr_size;
        p32(&mut b, pb, fb(80) as u32);
        p32(&mut b, pb + 8, fb(82) as u32);
        fds.push(Fd {
            slot: 8,
            kind: 3,
            zla: 3,
            length: 40 * FBS,
            block_size: FBS,
            addrs: vec![3],
        });
        // No .pb2.sf on this VMFS5 volume (its address in the descriptor is 0).
        fds[6].kind = 0;
        used.retain(|&n| n != pb2);
        // The file block bitmap: one cluster; a set bit is a free block.
        res_hdr(&mut b, blk(fbb), blocks as u32, 1, 0x200, 0, blocks);
        let c = blk(fbb) + 0x200 + 512;
        p32(&mut b, c, 0);
        p32(&mut b, c + 4, blocks as u32);
        p32(&mut b, c + 8, (blocks - used.len() as u64) as u32);
        for n in 0..blocks {
            if !used.contains(&n) {
                b[(c + 16 + n / 8) as usize] |= 1 << (n % 8);
            }
        }
    }
    // Write the descriptors into .fdc.sf.
    for fd in &fds {
        if fd.kind == 0 {
            continue;
        }
        let addr = 4 | (fd.slot << 22);
        let off = fdc_file + 0x1_0000 + hdr_size + fd.slot * fd_size;
        p32(&mut b, off + meta, addr as u32);
        p32(&mut b, off + meta + 8, 1);
        p32(&mut b, off + meta + 0xc, fd.kind);
        p64(&mut b, off + meta + 0x14, fd.length);
        p64(&mut b, off + meta + 0x1c, fd.block_size);
        p32(&mut b, off + meta + 0x44, fd.zla);
        for (i, a) in fd.addrs.iter().enumerate() {
            let at = off + addrs_at + i as u64 * addr_w;
            if addr_w == 4 {
                p32(&mut b, at, *a as u32);
            } else {
                p64(&mut b, at, *a);
            }
        }
    }
    // Recognisable contents in the data blocks.
    for n in [data, data + 1, 80, 82] {
        let off = blk(n) as usize;
        b[off..off + FBS as usize].fill(n as u8);
    }
    used.sort_unstable();
    used.dedup();
    Synthetic {
        bytes: b,
        used_blocks: used,
        blocks,
        fdc_block: fdc0,
        fbb_block: fbb,
    }
}
