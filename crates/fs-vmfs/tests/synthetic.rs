//! The scanner on synthetic VMFS5/VMFS6 volumes written by this project's own builder
//! (`common/synthetic.rs`): exact used extents, refusals of broken structures, no panic on
//! damaged bytes. With `VMFS_FUZZ_SEEDS=DIR` the volumes are also written to DIR as fuzz
//! seeds (`fuzz/corpus/vmfs_scanner` holds them).

#[path = "common/synthetic.rs"]
mod synthetic;

use lifeboat_fs::{Extent, FsError, Scanner, UsedBlocks};
use lifeboat_fs_vmfs::{VmfsError, VmfsScanner};
use proptest::prelude::*;
use synthetic::{build, FBS, PE_OFFSET, TAIL};

fn scan(bytes: &[u8]) -> Result<(lifeboat_fs::FsInfo, Vec<Extent>, u64), FsError> {
    let mut s = VmfsScanner.open_vmfs(&bytes)?;
    let info = s.info().clone();
    let files = s.file_count();
    let mut v = Vec::new();
    while let Some(e) = s.next_extent()? {
        v.push(e);
    }
    Ok((info, v, files))
}

fn expected(used_blocks: &[u64], blocks: u64) -> Vec<Extent> {
    let mut out = vec![Extent::new(0, PE_OFFSET)];
    for &n in used_blocks {
        let e = Extent::new(PE_OFFSET + n * FBS, FBS);
        match out.last_mut() {
            Some(l) if l.end() == e.offset => l.len += e.len,
            _ => out.push(e),
        }
    }
    let tail = Extent::new(PE_OFFSET + blocks * FBS, TAIL);
    match out.last_mut() {
        Some(l) if l.end() == tail.offset => l.len += tail.len,
        _ => out.push(tail),
    }
    out
}

#[test]
fn synthetic_volumes_yield_exactly_their_used_blocks() {
    for v6 in [false, true] {
        let s = build(v6);
        assert!(VmfsScanner.probe(&s.bytes.as_slice()));
        let (info, ext, files) = scan(&s.bytes).unwrap_or_else(|e| panic!("v6={v6}: {e}"));
        assert_eq!(info.fs_type, if v6 { "vmfs6" } else { "vmfs5" });
        assert_eq!(
            info.label.as_deref(),
            Some(if v6 { "synthetic6" } else { "synthetic5" })
        );
        assert_eq!(info.block_size as u64, FBS);
        assert_eq!(info.total_bytes, s.blocks * FBS);
        assert_eq!(files, 3, "root directory and two files");
        assert_eq!(ext, expected(&s.used_blocks, s.blocks), "v6={v6}");
        assert_eq!(info.used_bytes, ext.iter().map(|e| e.len).sum::<u64>());
        if let Some(dir) = std::env::var_os("VMFS_FUZZ_SEEDS") {
            let name = if v6 {
                "synthetic-vmfs6"
            } else {
                "synthetic-vmfs5"
            };
            std::fs::write(std::path::Path::new(&dir).join(name), &s.bytes).unwrap();
        }
    }
}

fn refused(bytes: &[u8]) -> String {
    match scan(bytes) {
        Err(FsError::Corrupt { cause, .. }) => {
            assert!(cause.downcast_ref::<VmfsError>().is_some(), "{cause}");
            cause.to_string()
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

#[test]
fn broken_synthetic_structures_are_refused() {
    for v6 in [false, true] {
        let s = build(v6);
        let fdc = (PE_OFFSET + s.fdc_block * FBS) as usize;
        // Resource header of .fdc.sf claims more descriptors than the file holds.
        let mut b = s.bytes.clone();
        b[fdc + 0x14..fdc + 0x18].copy_from_slice(&100_000u32.to_le_bytes());
        let r = refused(&b);
        assert!(r.contains(".fdc.sf"), "v6={v6}: {r}");
        // A file block beyond the volume.
        let mut b = s.bytes.clone();
        let (fd_size, meta, addrs) = if v6 {
            (8192, 4096, 8192 - 2560)
        } else {
            (2048, 512, 1024)
        };
        let hdr = if v6 { 8192 } else { 1024 };
        let data_fd = fdc + 0x1_0000 + hdr + 7 * fd_size;
        let far: u64 = if v6 {
            1 | (5000 << 15)
        } else {
            1 | (5000 << 6)
        };
        b[data_fd + addrs..data_fd + addrs + if v6 { 8 } else { 4 }]
            .copy_from_slice(&far.to_le_bytes()[..if v6 { 8 } else { 4 }]);
        let r = refused(&b);
        assert!(r.contains("beyond"), "v6={v6}: {r}");
        // An unknown block layout of a file in use.
        let mut b = s.bytes.clone();
        b[data_fd + meta + 0x44..data_fd + meta + 0x48].copy_from_slice(&0x77u32.to_le_bytes());
        let r = refused(&b);
        assert!(r.contains("not understood"), "v6={v6}: {r}");
        // The .fdc.sf descriptor is not where the bootstrap expects it.
        let mut b = s.bytes.clone();
        let boot = fdc + 0x1_0000 + hdr + 2 * fd_size;
        b[boot + meta..boot + meta + 4].copy_from_slice(&0u32.to_le_bytes());
        let r = refused(&b);
        assert!(r.contains("system file"), "v6={v6}: {r}");
    }
    // VMFS5: the bitmap's free count disagrees with its bits.
    let s = build(false);
    let mut b = s.bytes.clone();
    let fbb_cluster = (PE_OFFSET + s.fbb_block * FBS + 0x200 + 512) as usize;
    b[fbb_cluster + 8] ^= 1;
    let r = refused(&b);
    assert!(r.contains("bitmap"), "{r}");
}

/// Counts the reads the scanner makes.
struct Counting<'a>(&'a [u8], std::sync::atomic::AtomicU64);

impl lifeboat_fs::ReadAt for Counting<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

fn scan_counting(bytes: &[u8]) -> (Vec<Extent>, u64) {
    let c = Counting(bytes, 0.into());
    let mut s = VmfsScanner.open_vmfs(&c).unwrap();
    let mut v = Vec::new();
    while let Some(e) = s.next_extent().unwrap() {
        v.push(e);
    }
    (v, c.1.into_inner())
}

/// Every address slot of the file that goes through a pointer block names that same block,
/// each time with other bits that the decoding ignores: the block is read and walked once,
/// not once per spelling (keyed by the raw word, a crafted VMFS6 volume could have one block
/// walked 2^17 times).
#[test]
fn one_pointer_block_spelled_many_ways_is_walked_once() {
    for v6 in [false, true] {
        let s = build(v6);
        let (plain, plain_reads) = scan_counting(&s.bytes);
        let fdc = (PE_OFFSET + s.fdc_block * FBS) as usize;
        let (fd_size, addrs, hdr, width) = if v6 {
            (8192, 8192 - 2560, 8192, 8)
        } else {
            (2048, 1024, 1024, 4)
        };
        let fd = fdc + 0x1_0000 + hdr + 8 * fd_size;
        let slots = (fd_size - addrs) / width;
        let mut b = s.bytes.clone();
        for k in 0..slots as u64 {
            // VMFS6: the sub-block (cluster 0, resource 0) with bits 42.. set; VMFS5: the
            // pointer block (cluster 0, resource 0) with bits 3..5 set (8 spellings).
            let a = if v6 {
                2 | (k << 42)
            } else {
                3 | ((k % 8) << 3)
            };
            let at = fd + addrs + k as usize * width;
            b[at..at + width].copy_from_slice(&a.to_le_bytes()[..width]);
        }
        let (crafted, crafted_reads) = scan_counting(&b);
        assert_eq!(crafted, plain, "v6={v6}: the same blocks are used");
        assert!(
            crafted_reads <= plain_reads + 1,
            "v6={v6}: {crafted_reads} reads for the crafted volume, {plain_reads} for the plain one"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_synthetic_volumes_never_panic(
        v6 in any::<bool>(),
        hits in proptest::collection::vec((any::<u64>(), any::<u8>()), 1..12),
        cut in proptest::option::of(0usize..12_000_000),
    ) {
        let built = build(v6);
        let fdc = PE_OFFSET + built.fdc_block * FBS;
        let mut b = built.bytes;
        for (at, v) in hits {
            // Aim most damage at the metadata: LVM header, FS descriptor, system files.
            let at = match at % 4 {
                0 => 0x10_0000 + at % 0x1000,
                1 => PE_OFFSET + 0x20_0000 + at % 0x200,
                _ => fdc + at % (8 * FBS),
            } as usize;
            if at < b.len() { b[at] = v; }
        }
        if let Some(c) = cut { b.truncate(c.min(b.len())); }
        let vol: &[u8] = &b;
        let opened = VmfsScanner.open_vmfs(&vol);
        if let Ok(mut s) = opened {
            let mut last = 0u64;
            let mut sum = 0u64;
            while let Ok(Some(e)) = s.next_extent() {
                prop_assert!(e.offset >= last && e.len > 0 && e.end() <= b.len() as u64);
                last = e.end();
                sum += e.len;
            }
            prop_assert_eq!(sum, s.info().used_bytes);
        };
    }
}
