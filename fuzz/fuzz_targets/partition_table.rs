//! Fuzzes the partition table reader: the input bytes are a whole disk, read with 512- and
//! 4096-byte sectors. Nothing may panic, and every layout returned must keep its invariants:
//! boot regions sorted, non-overlapping, non-empty, inside the disk and outside every
//! partition; no table means no partitions and no regions.
//!
//! Each input is also read a second time with the CRCs of any GPT headers and entry arrays
//! recomputed, so that mutated header fields get past the checksums and reach the decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_parttable::{read_layout, TableKind};

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Recomputes the entry-array and header CRCs of a GPT header at `lba`, if there is one.
fn fix_crcs(disk: &mut [u8], ss: u64, lba: u64) -> Option<u64> {
    let off = usize::try_from(lba.checked_mul(ss)?).ok()?;
    let ssz = ss as usize;
    if disk.len() < off.checked_add(ssz)? || &disk[off..off + 8] != b"EFI PART" {
        return None;
    }
    let part_start = le64(disk, off + 72);
    let array_len = u64::from(le32(disk, off + 80)) * u64::from(le32(disk, off + 84));
    if array_len <= 1 << 20 {
        let a = usize::try_from(part_start.checked_mul(ss)?).ok()?;
        if let Some(entries) = disk.get(a..a.checked_add(array_len as usize)?) {
            let crc = crc32fast::hash(entries);
            disk[off + 88..off + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let hsize = (le32(disk, off + 12) as usize).clamp(92, ssz);
    disk[off + 16..off + 20].fill(0);
    let crc = crc32fast::hash(&disk[off..off + hsize]);
    disk[off + 16..off + 20].copy_from_slice(&crc.to_le_bytes());
    Some(le64(disk, off + 32))
}

fn check(disk: &[u8]) {
    for sector_size in [512u32, 4096] {
        let Ok(layout) = read_layout(&disk, sector_size) else {
            continue;
        };
        assert_eq!(layout.disk_size, disk.len() as u64);
        for w in layout.boot_regions.windows(2) {
            assert!(w[0].end() <= w[1].offset, "regions overlap: {w:?}");
        }
        for r in &layout.boot_regions {
            assert!(r.len > 0 && r.end() <= layout.disk_size, "{r:?}");
            for p in &layout.partitions {
                assert!(r.end() <= p.start || r.offset >= p.end(), "{r:?} in {p:?}");
            }
        }
        for p in &layout.partitions {
            assert!(p.size > 0, "{p:?}");
        }
        if layout.kind == TableKind::None {
            assert!(layout.partitions.is_empty() && layout.boot_regions.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    let mut any = false;
    for ss in [512u64, 4096] {
        let last = (fixed.len() as u64 / ss).saturating_sub(1);
        if let Some(alt) = fix_crcs(&mut fixed, ss, 1) {
            any = true;
            fix_crcs(&mut fixed, ss, alt);
        }
        any |= fix_crcs(&mut fixed, ss, last).is_some();
    }
    if any {
        check(&fixed);
    }
});
