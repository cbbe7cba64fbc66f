//! The parsers and the scanner never panic, always terminate and never size an allocation
//! by an on-disk count, whatever the bytes; inconsistent structures are refused (so the
//! caller copies raw) instead of guessed.

mod common;

use std::collections::BTreeMap;

use common::fixture_bytes;
use lifeboat_fs::{FsError, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_xfs::crc::set_xfs_crc;
use lifeboat_fs_xfs::{Agf, BtreeBlock, Superblock, XfsError, XfsScanner};
use proptest::prelude::*;

/// A volume that is a base image with some bytes replaced; with `fix_crc`, the v5 CRC of
/// every superblock sector, AGF and free-space B+tree block read is recomputed after the
/// patches, so that mutations reach the checks behind the CRCs.
struct Patched<'a> {
    base: &'a [u8],
    len: u64,
    patches: BTreeMap<u64, u8>,
    fix_crc: bool,
}

impl ReadAt for Patched<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past end"))?;
        buf.copy_from_slice(&self.base[offset as usize..end as usize]);
        for (&o, &v) in self.patches.range(offset..end) {
            buf[(o - offset) as usize] = v;
        }
        if self.fix_crc && buf.len() >= 512 {
            match &buf[..4] {
                b"XFSB" => set_xfs_crc(buf, 224),
                b"XAGF" => set_xfs_crc(buf, 216),
                b"AB3B" => set_xfs_crc(buf, 52),
                _ => {}
            }
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Probes, opens and drains; checks the invariants of whatever comes out, and that the
/// stream ends within a bounded number of calls. True when the volume opened.
fn run(volume: &dyn ReadAt) -> bool {
    let _ = XfsScanner.probe(volume);
    let Ok(mut st) = XfsScanner.open_xfs(volume) else {
        return false;
    };
    let info = st.info().clone();
    assert!(info.total_bytes <= volume.len());
    let bound = info.total_bytes / 512 + 2;
    let mut prev_end = None;
    let mut sum = 0u64;
    for _ in 0..bound {
        match st.next_extent() {
            Ok(Some(e)) => {
                assert!(e.len > 0 && e.end() <= info.total_bytes);
                if let Some(p) = prev_end {
                    assert!(e.offset > p, "unsorted extents");
                }
                prev_end = Some(e.end());
                sum += e.len;
            }
            Ok(None) => {
                assert_eq!(sum, info.used_bytes);
                assert!(st.memory_bytes() <= 128 * 1024);
                return true;
            }
            Err(_) => return true,
        }
    }
    panic!("stream did not end within {bound} calls");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1100), magic in any::<bool>(), ag in 0u32..4, block in any::<u32>()) {
        let mut b = b;
        if magic && b.len() >= 4 {
            b[..4].copy_from_slice(b"XFSB");
        }
        if let Ok(sb) = Superblock::parse(&b) {
            let _ = (sb.label(), sb.uuid_string(), sb.crc_ok(&b), sb.internal_log(), sb.header_blocks());
            let _ = Agf::parse(&b, &sb, ag);
            let _ = BtreeBlock::parse(&b, &sb, ag, block);
        }
    }

    #[test]
    fn scanner_over_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..20_000), magic in any::<bool>()) {
        let mut b = b;
        if magic && b.len() >= 4 {
            b[..4].copy_from_slice(b"XFSB");
        }
        let _ = run(&b);
    }
}

fn mutate_fixture(name: &str, cases: u32, meta_bytes: u64) {
    let base = fixture_bytes(name);
    let base_len = base.len() as u64;
    let strategy = (
        proptest::collection::vec((0u64..512, any::<u8>()), 0..4),
        proptest::collection::vec((0u64..meta_bytes, any::<u8>()), 0..12),
        any::<bool>(),
        prop_oneof![4 => Just(base_len), 1 => 0..base_len],
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let opened = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(sb_muts, meta_muts, fix_crc, len)| {
            let mut patches = BTreeMap::new();
            for (o, v) in sb_muts.into_iter().chain(meta_muts) {
                patches.insert(o, v);
            }
            if run(&Patched {
                base: &base,
                len,
                patches,
                fix_crc,
            }) {
                opened.set(opened.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{name}: {} of {cases} mutated images opened", opened.get());
    assert!(
        opened.get() > cases / 20,
        "too few mutated images got past open: the walk itself was not exercised"
    );
}

#[test]
fn scanner_over_mutated_v5_never_panics() {
    // AG 0's headers and its free-space B+tree blocks lie in the first 64 KiB.
    mutate_fixture("v5-1k-frag", 400, 64 * 1024);
}

#[test]
fn scanner_over_mutated_v4_never_panics() {
    mutate_fixture("v4-512-frag", 400, 32 * 1024);
}

// ───────────── targeted corruptions: each must be refused, not guessed ─────────────

fn be32(img: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(img[off..off + 4].try_into().unwrap())
}

fn set_be32(img: &mut [u8], off: usize, v: u32) {
    img[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Geometry of a fixture: (block size, sector size, AG blocks).
fn geometry(img: &[u8]) -> (usize, usize, usize) {
    let ss = u16::from_be_bytes([img[102], img[103]]) as usize;
    (be32(img, 4) as usize, ss, be32(img, 84) as usize)
}

/// Byte offset of AG `ag`'s AGF.
fn agf_off(img: &[u8], ag: usize) -> usize {
    let (bs, ss, agb) = geometry(img);
    ag * agb * bs + ss
}

/// The first AG whose free-space B+tree has two levels or more, its root's byte offset and
/// its first two leaves' byte offsets and block numbers.
fn two_level_ag(img: &[u8]) -> (usize, usize, [(usize, u32); 2]) {
    let (bs, _, agb) = geometry(img);
    let v5 = &img[..4] == b"XFSB" && u16::from_be_bytes([img[100], img[101]]) & 0xf == 5;
    let hdr = if v5 { 56 } else { 16 };
    for ag in 0..be32(img, 88) as usize {
        let agf = agf_off(img, ag);
        if be32(img, agf + 28) < 2 {
            continue;
        }
        let ag_start = ag * agb * bs;
        let root = ag_start + be32(img, agf + 16) as usize * bs;
        let maxrecs = (bs - hdr) / 12;
        let ptr = |i: usize| be32(img, root + hdr + maxrecs * 8 + 4 * i);
        let leaves = [ptr(0), ptr(1)].map(|b| (ag_start + b as usize * bs, b));
        return (ag, root, leaves);
    }
    panic!("no AG with a two-level free-space B+tree");
}

fn fix(img: &mut [u8], off: usize, len: usize, crc_at: usize) {
    if u16::from_be_bytes([img[100], img[101]]) & 0xf == 5 {
        set_xfs_crc(&mut img[off..off + len], crc_at);
    }
}

fn open_err(img: &[u8]) -> FsError {
    match XfsScanner.open_xfs(&img) {
        Ok(_) => panic!("a corrupt image was accepted"),
        Err(e) => e,
    }
}

fn cause(e: &FsError) -> XfsError {
    e.cause()
        .and_then(|c| c.downcast_ref::<XfsError>())
        .unwrap_or_else(|| panic!("no typed cause: {e}"))
        .clone()
}

#[test]
fn a_sibling_cycle_is_refused() {
    for name in ["v5-1k-frag", "v4-512-frag"] {
        let mut img = fixture_bytes(name);
        let (bs, _, _) = geometry(&img);
        let (ag, _, [(l0, b0), (l1, _)]) = two_level_ag(&img);
        // The second leaf points back to the first: right sibling = first leaf.
        set_be32(&mut img, l1 + 12, b0);
        fix(&mut img, l1, bs, 52);
        let e = open_err(&img);
        match cause(&e) {
            XfsError::Btree {
                ag: a,
                block,
                field,
                ..
            } => {
                assert_eq!(a as usize, ag, "{e}");
                assert_eq!(block, b0, "{e}");
                assert_eq!(field, "leftsib", "{e}");
            }
            other => panic!("{name}: {other}"),
        }
        // A leaf that is its own right sibling, with its left sibling made to match.
        let mut img = fixture_bytes(name);
        let (_, _, [(_, _), (l1, b1)]) = two_level_ag(&img);
        set_be32(&mut img, l1 + 12, b1);
        set_be32(&mut img, l1 + 8, b1);
        fix(&mut img, l1, bs, 52);
        let e = open_err(&img);
        assert!(matches!(cause(&e), XfsError::Btree { .. }), "{e}");
        let _ = l0;
    }
}

#[test]
fn records_out_of_order_are_refused() {
    for name in ["v5-1k-frag", "v4-512-frag"] {
        let mut img = fixture_bytes(name);
        let (bs, _, _) = geometry(&img);
        let (_, _, [(l0, _), _]) = two_level_ag(&img);
        let hdr = if name.starts_with("v5") { 56 } else { 16 };
        let r0 = img[l0 + hdr..l0 + hdr + 8].to_vec();
        let r1 = img[l0 + hdr + 8..l0 + hdr + 16].to_vec();
        img[l0 + hdr..l0 + hdr + 8].copy_from_slice(&r1);
        img[l0 + hdr + 8..l0 + hdr + 16].copy_from_slice(&r0);
        fix(&mut img, l0, bs, 52);
        let e = open_err(&img);
        assert!(e.to_string().contains("out of order"), "{name}: {e}");
    }
}

#[test]
fn a_wrong_free_count_is_refused() {
    for name in ["v5-default", "v4"] {
        let mut img = fixture_bytes(name);
        let (_, ss, _) = geometry(&img);
        let agf = agf_off(&img, 1);
        // Make the longest extent fit the count, so that only the sum disagrees.
        let free = be32(&img, agf + 52);
        set_be32(&mut img, agf + 52, free - 1);
        set_be32(&mut img, agf + 56, 1);
        fix(&mut img, agf, ss, 216);
        let e = open_err(&img);
        assert!(
            matches!(cause(&e), XfsError::FreeCount { ag: 1, .. }),
            "{name}: {e}"
        );
    }
}

#[test]
fn bad_crcs_magic_and_levels_are_refused() {
    let base = fixture_bytes("v5-1k-frag");
    let (bs, ss, _) = geometry(&base);
    let (_, root, [(l0, _), _]) = two_level_ag(&base);
    // A flipped bit in a leaf, CRC not fixed.
    let mut img = base.clone();
    img[l0 + 100] ^= 1;
    assert!(matches!(cause(&open_err(&img)), XfsError::Checksum { .. }));
    // The same in an AGF, and in the superblock.
    let mut img = base.clone();
    let agf2 = agf_off(&img, 2);
    img[agf2 + 60] ^= 1;
    assert!(matches!(cause(&open_err(&img)), XfsError::Checksum { .. }));
    let mut img = base.clone();
    img[110] ^= 1; // the label
    assert!(matches!(cause(&open_err(&img)), XfsError::Checksum { .. }));
    // A root that claims to be a leaf.
    let mut img = base.clone();
    img[root + 5] = 0;
    fix(&mut img, root, bs, 52);
    let e = open_err(&img);
    assert!(e.to_string().contains("level"), "{e}");
    // A leaf of the cnt B+tree where a bno leaf should be.
    let mut img = base.clone();
    img[l0 + 3] = b'C';
    fix(&mut img, l0, bs, 52);
    assert!(open_err(&img).to_string().contains("magic"));
    // AGF of the wrong AG.
    let mut img = base.clone();
    let agf = agf_off(&img, 1);
    set_be32(&mut img, agf + 8, 2);
    fix(&mut img, agf, ss, 216);
    assert!(matches!(
        cause(&open_err(&img)),
        XfsError::Agf {
            ag: 1,
            field: "seqno",
            ..
        }
    ));
}

#[test]
fn huge_geometry_in_a_corrupt_superblock_allocates_nothing() {
    for name in ["v5-default", "v4"] {
        let base = fixture_bytes(name);
        let (_, ss, _) = geometry(&base);
        // agcount of 4 billion: inconsistent with dblocks.
        let mut img = base.clone();
        set_be32(&mut img, 88, u32::MAX);
        fix(&mut img, 0, ss, 224);
        let e = open_err(&img);
        assert!(
            matches!(
                cause(&e),
                XfsError::Superblock {
                    field: "dblocks",
                    ..
                }
            ),
            "{e}"
        );
        // Consistent but enormous: 4 billion AGs of 1 TiB claim more than 2^64 bytes.
        let mut img = base.clone();
        set_be32(&mut img, 88, u32::MAX);
        img[8..16]
            .copy_from_slice(&(u64::from(u32::MAX) * u64::from(be32(&base, 84))).to_be_bytes());
        fix(&mut img, 0, ss, 224);
        let e = open_err(&img);
        assert!(matches!(e, FsError::Corrupt { .. }), "{e}");
        // Twice the AGs: consistent, larger than the volume.
        let mut img = base.clone();
        let n = be32(&base, 88);
        set_be32(&mut img, 88, 2 * n);
        let dblocks = u64::from_be_bytes(base[8..16].try_into().unwrap());
        img[8..16].copy_from_slice(&(2 * dblocks).to_be_bytes());
        fix(&mut img, 0, ss, 224);
        assert!(matches!(cause(&open_err(&img)), XfsError::TooLarge { .. }));
    }
}

#[test]
fn unsupported_features_and_states_are_refused() {
    let base = fixture_bytes("v5-default");
    let (_, ss, _) = geometry(&base);
    let cases: [(usize, u32, &str); 5] = [
        (216, 1 << 4, "needs repair"),
        (216, 1 << 8, "METADIR"),
        (216, 1 << 20, "unknown incompatible"),
        (212, 1 << 9, "unknown read-only compatible"),
        (24, 5, "realtime"),
    ];
    for (off, bit, want) in cases {
        let mut img = base.clone();
        let v = be32(&img, off);
        set_be32(&mut img, off, v | bit);
        fix(&mut img, 0, ss, 224);
        assert!(!matches!(cause(&open_err(&img)), XfsError::Checksum { .. }));
        let e = open_err(&img);
        assert!(e.to_string().contains(want), "{want}: {e}");
        assert!(XfsScanner.probe(&img));
    }
    let mut img = base.clone();
    img[126] = 1; // sb_inprogress
    fix(&mut img, 0, ss, 224);
    assert!(open_err(&img).to_string().contains("did not finish"));
    // A v4 superblock claiming a feature bit nobody defined.
    let mut img = fixture_bytes("v4");
    let f2 = be32(&img, 200);
    set_be32(&mut img, 200, f2 | 0x1);
    assert!(open_err(&img).to_string().contains("features2"));
}

#[test]
fn a_log_incompat_feature_is_a_warning_not_a_refusal() {
    let mut img = fixture_bytes("v5-default");
    let (_, ss, _) = geometry(&img);
    set_be32(&mut img, 220, 1);
    fix(&mut img, 0, ss, 224);
    let st = XfsScanner.open_xfs(&img).unwrap();
    let w = st.info().warnings.join("\n");
    assert!(w.contains("not cleanly unmounted"), "{w}");
}
