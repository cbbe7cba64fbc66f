//! The parsers and the scanner never panic and always terminate, whatever the bytes; and
//! inconsistent structures are refused (so the caller copies raw) instead of guessed.

mod common;

use std::collections::BTreeMap;

use common::fixture_bytes;
use lifeboat_fs::{FsError, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_ext::checksum::crc32c;
use lifeboat_fs_ext::{ExtScanner, GroupDesc, Layout, Superblock};
use proptest::prelude::*;

/// A volume that is a base image with some bytes replaced.
struct Patched<'a> {
    base: &'a [u8],
    len: u64,
    patches: BTreeMap<u64, u8>,
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
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Probes, opens and drains; checks the invariants of whatever comes out, and that the
/// stream ends within a bounded number of calls.
fn run(volume: &dyn ReadAt) -> bool {
    let s = ExtScanner;
    let _ = s.probe(volume);
    let Ok(mut st) = s.open_ext(volume) else {
        return false;
    };
    let info = st.info().clone();
    let bound = info.total_bytes / 1024 + 2;
    let mut prev_end = None;
    let mut sum = 0u64;
    for _ in 0..bound {
        match st.next_extent() {
            Ok(Some(e)) => {
                assert!(e.len > 0 && e.end() <= volume.len());
                if let Some(p) = prev_end {
                    assert!(e.offset > p, "unsorted extents");
                }
                prev_end = Some(e.end());
                sum += e.len;
            }
            Ok(None) => {
                assert_eq!(sum, info.used_bytes);
                return true;
            }
            Err(_) => return true,
        }
    }
    panic!("stream did not end within {bound} calls");
}

fn fix_superblock_checksum(base: &[u8], patches: &mut BTreeMap<u64, u8>) {
    let mut sb = base[1024..2048].to_vec();
    for (&o, &v) in patches.range(1024..2048) {
        sb[(o - 1024) as usize] = v;
    }
    let c = crc32c(!0, &sb[..0x3FC]).to_le_bytes();
    for (i, b) in c.iter().enumerate() {
        patches.insert(1024 + 0x3FC + i as u64, *b);
    }
}

fn with_magic(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(1024, 0);
    b[0x38] = 0x53;
    b[0x39] = 0xEF;
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn superblock_and_layout_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1100), magic in any::<bool>()) {
        let b = if magic { with_magic(b) } else { b };
        if let Ok(sb) = Superblock::parse(&b) {
            let _ = (sb.fs_type(), sb.label(), sb.uuid_string(), sb.checksum_ok(), sb.csum_seed());
            if let Ok(l) = Layout::new(&sb) {
                for g in [0, 1, l.group_count / 2, l.group_count - 1] {
                    let _ = (l.has_super(g), l.base_meta_blocks(g), l.desc_location(g), l.group_clusters(g));
                }
                let _ = l.group_of_block(u64::MAX);
            }
        }
    }

    #[test]
    fn small_field_values_never_panic_the_layout(
        vals in proptest::collection::vec((0usize..0x280, any::<u32>()), 0..12),
        small in proptest::collection::vec((0usize..0x280, 0u32..64), 0..12),
    ) {
        // Start from a real superblock and change a few fields, to get past the magic and
        // into the geometry checks.
        static SB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let mut b = SB.get_or_init(|| fixture_bytes("ext2-1k")[1024..2048].to_vec()).clone();
        for (o, v) in vals.into_iter().chain(small) {
            let o = o & !3;
            b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
        if let Ok(sb) = Superblock::parse(&b) {
            if let Ok(l) = Layout::new(&sb) {
                for g in [0, 1, l.group_count - 1] {
                    let _ = (l.has_super(g), l.base_meta_blocks(g), l.desc_location(g));
                }
            }
        }
    }

    #[test]
    fn group_desc_parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80), is64 in any::<bool>()) {
        if let Ok(d) = GroupDesc::parse(&b, is64) {
            let _ = d.block_uninit();
        }
    }

    #[test]
    fn scanner_over_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..70_000), magic in any::<bool>()) {
        let mut b = b;
        if magic && b.len() >= 2048 {
            b[1080] = 0x53;
            b[1081] = 0xEF;
        }
        let _ = run(&b);
    }
}

fn mutate_fixture(name: &str, cases: u32) {
    let base = fixture_bytes(name);
    let base_len = base.len() as u64;
    let strategy = (
        proptest::collection::vec((0u64..1024, any::<u8>()), 0..6),
        proptest::collection::vec((0u64..300 * 1024, any::<u8>()), 0..12),
        any::<bool>(),
        prop_oneof![Just(base_len), 0..base_len],
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let opened = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(sb_muts, meta_muts, fix_csum, len)| {
            let mut patches = BTreeMap::new();
            for (o, v) in sb_muts {
                patches.insert(1024 + o, v);
            }
            for (o, v) in meta_muts {
                patches.insert(o, v);
            }
            if fix_csum {
                fix_superblock_checksum(&base, &mut patches);
            }
            if run(&Patched {
                base: &base,
                len,
                patches,
            }) {
                opened.set(opened.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{name}: {} of {cases} mutated images opened", opened.get());
    // Most mutations leave a usable filesystem: the walk itself must have been exercised.
    assert!(
        opened.get() > cases / 10,
        "too few mutated images got past open"
    );
}

#[test]
fn scanner_over_mutated_ext2_never_panics() {
    mutate_fixture("ext2-1k", 300);
}

#[test]
fn scanner_over_mutated_meta_bg_never_panics() {
    mutate_fixture("ext4-metabg-32", 300);
}

#[test]
fn scanner_over_mutated_bigalloc_never_panics() {
    mutate_fixture("ext4-bigalloc-1k", 200);
}

#[test]
fn scanner_over_mutated_nocsum_never_panics() {
    mutate_fixture("ext4-nocsum", 200);
}

// Targeted corruptions: each must be refused, not guessed.

fn open_err(img: &[u8]) -> FsError {
    match ExtScanner.open_ext(&img) {
        Ok(_) => panic!("corrupt image was accepted"),
        Err(e) => e,
    }
}

fn set_u32(img: &mut [u8], off: usize, v: u32) {
    img[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn unknown_incompat_feature_is_refused() {
    let mut img = fixture_bytes("ext2-1k");
    let f = u32::from_le_bytes(img[1024 + 0x60..1024 + 0x64].try_into().unwrap());
    set_u32(&mut img, 1024 + 0x60, f | 0x8000_0000);
    assert!(!ExtScanner.probe(&img));
    assert!(matches!(open_err(&img), FsError::Corrupt { .. }));
}

#[test]
fn descriptor_outside_the_filesystem_is_refused() {
    // ext2-1k has no descriptor checksums; its descriptor table is block 2.
    let mut img = fixture_bytes("ext2-1k");
    set_u32(&mut img, 2048 + 32, 10_000_000); // group 1's block bitmap
    let e = open_err(&img);
    assert!(matches!(e, FsError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("group 1"), "{e}");
}

#[test]
fn descriptor_checksum_mismatch_is_refused() {
    let mut img = fixture_bytes("ext4-1k");
    // Flip BLOCK_UNINIT in some group's flags without fixing its checksum.
    let gdt = 2048 + 3 * 64 + 0x12;
    img[gdt] ^= 2;
    let e = open_err(&img);
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn superblock_checksum_mismatch_is_refused() {
    let mut img = fixture_bytes("ext4-1k");
    img[1024 + 0x78] ^= 1; // the label
    assert!(open_err(&img).to_string().contains("checksum"));
}

#[test]
fn bad_block_size_and_group_count_are_refused() {
    let mut img = fixture_bytes("ext2-1k");
    set_u32(&mut img, 1024 + 0x18, 7);
    assert!(matches!(open_err(&img), FsError::Corrupt { .. }));
    let mut img = fixture_bytes("ext2-1k");
    set_u32(&mut img, 1024, 12345); // inode count inconsistent with the groups
    assert!(matches!(open_err(&img), FsError::Corrupt { .. }));
}

#[test]
fn dirty_states_give_warnings() {
    let mut img = fixture_bytes("ext2-1k");
    img[1024 + 0x3A] = 0; // s_state: not clean
    let free = u32::from_le_bytes(img[1024 + 0xC..1024 + 0x10].try_into().unwrap());
    set_u32(&mut img, 1024 + 0xC, free - 5);
    let f = u32::from_le_bytes(img[1024 + 0x60..1024 + 0x64].try_into().unwrap());
    set_u32(&mut img, 1024 + 0x60, f | 0x4); // needs recovery
    let st = ExtScanner.open_ext(&img).unwrap();
    let w = st.info().warnings.join("\n");
    assert!(w.contains("not cleanly unmounted"), "{w}");
    assert!(w.contains("needs recovery: journal not empty"), "{w}");
    assert!(w.contains("disagrees with the bitmaps"), "{w}");
}
