//! The committed fixtures (made by test_data/make.sh with the real mke2fs): used bytes equal
//! dumpe2fs's (Block count − Free blocks) × Block size, and the extents cover exactly the
//! blocks dumpe2fs lists as not free.

mod common;

use common::*;
use lifeboat_fs::{Scanner, UsedBlocks};
use lifeboat_fs_ext::ExtScanner;

#[test]
fn used_bytes_match_stored_and_live_dumpe2fs() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let expect = std::fs::read_to_string(test_data().join(format!("{name}.expect"))).unwrap();
        let want = expected_used_bytes(&expect);
        let img = fixture_file(name, dir.path());
        let f = std::fs::File::open(&img).unwrap();
        let len = f.metadata().unwrap().len();
        let volume = (f, len);
        let (info, _) = scan(&volume).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            info.used_bytes, want,
            "{name}: used bytes vs stored dumpe2fs -h"
        );
        if let Some(live) = run_dumpe2fs(&img, true) {
            assert_eq!(
                expected_used_bytes(&live),
                want,
                "{name}: live dumpe2fs -h disagrees with the stored values"
            );
        }
        // Name, label, UUID and size as mke2fs wrote them.
        let h = header_fields(&expect);
        let bs: u64 = h["Block size"].parse().unwrap();
        let cluster: u64 = h.get("Cluster size").map_or(bs, |c| c.parse().unwrap());
        assert_eq!(u64::from(info.block_size), cluster, "{name}");
        assert_eq!(
            info.total_bytes,
            h["Block count"].parse::<u64>().unwrap() * bs,
            "{name}"
        );
        assert_eq!(
            info.label.as_deref(),
            Some(&name[..name.len().min(16)]),
            "{name}"
        );
        assert_eq!(
            info.uuid.as_deref(),
            Some("6c1f0a4e-8d2b-4f57-9a3e-2b7c5d10e9f1")
        );
        let want_type = &name[..4];
        assert_eq!(info.fs_type, want_type, "{name}");
        assert!(
            info.warnings
                .iter()
                .all(|w| w.contains("bytes before the end of the volume")),
            "{name}: unexpected warnings {:?}",
            info.warnings
        );
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn extents_cover_exactly_the_blocks_dumpe2fs_marks_used() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let img = fixture_file(name, dir.path());
        let f = std::fs::File::open(&img).unwrap();
        let len = f.metadata().unwrap().len();
        let volume = (f, len);
        let (info, extents) = scan(&volume).unwrap();
        let mut outputs = vec![("stored", stored_dumpe2fs(name))];
        if let Some(live) = run_dumpe2fs(&img, false) {
            outputs.push(("live", live));
        }
        for (which, text) in outputs {
            let (bs, used) = used_blocks_from_dumpe2fs(&text);
            assert_same_coverage(
                &format!("{name} ({which} dumpe2fs)"),
                &extents,
                bs,
                &used,
                info.total_bytes,
            );
        }
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn flex_bg_bitmaps_are_read_in_batches() {
    // 33 groups of 2048 4 KiB blocks, flex_bg: the block bitmaps of 16 groups are adjacent.
    let bytes = fixture_bytes("ext4-4k-many-groups");
    let volume = lifeboat_testkit::CountingReads::new(&bytes);
    let mut s = ExtScanner.open_ext(&volume).unwrap();
    let groups = s.layout().group_count;
    while s.next_extent().unwrap().is_some() {}
    let reads = volume.reads();
    eprintln!("{groups} groups: {reads} reads, {} bytes", volume.bytes());
    // superblock + per pass (3): descriptors (1) + bitmap batches (3 flex groups at most).
    assert!(
        reads <= 1 + 3 * (1 + 3),
        "{reads} reads for {groups} groups"
    );
    assert!(volume.bytes() < 3 * 1024 * 1024);
}

#[test]
fn probe_rejects_other_content_and_open_fails_cleanly() {
    let zeros = vec![0u8; 1 << 20];
    assert!(!ExtScanner.probe(&zeros));
    assert!(matches!(
        ExtScanner.open_ext(&zeros).err().unwrap(),
        lifeboat_fs::FsError::NotRecognised { .. }
    ));
    // A truncated image: the filesystem is larger than the volume.
    let bytes = fixture_bytes("ext4-1k");
    let short = &bytes[..bytes.len() / 2];
    assert!(matches!(
        ExtScanner.open_ext(&short).err().unwrap(),
        lifeboat_fs::FsError::Corrupt { .. }
    ));
}
