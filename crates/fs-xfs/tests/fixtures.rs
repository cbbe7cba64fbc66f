//! The committed fixtures (made by test_data/make.sh with the real mkfs.xfs): every AG's free
//! extents are exactly those xfs_db lists (`freesp -d`, without the AG free list), used bytes
//! add up, and the stored xfs_db output is still what the live xfs_db says.

mod common;

use common::*;
use lifeboat_fs::{FsError, Scanner};
use lifeboat_fs_xfs::XfsScanner;

#[test]
fn fixtures_match_stored_and_live_xfs_db() {
    let dir = tempfile::tempdir().unwrap();
    let mut multi_level = 0;
    for name in FIXTURES {
        let img = fixture_file(name, dir.path());
        let f = std::fs::File::open(&img).unwrap();
        let len = f.metadata().unwrap().len();
        let volume = (f, len);
        let (info, extents) = scan(&volume).unwrap_or_else(|e| panic!("{name}: {e}"));
        let stored = parse_xfs_db(&stored_expect(name));
        assert_matches(&format!("{name} (stored xfs_db)"), &info, &extents, &stored);
        if let Some(live) = run_xfs_db(&img) {
            assert_eq!(
                live,
                stored_expect(name),
                "{name}: live xfs_db output changed"
            );
        }
        multi_level += stored.ags.iter().filter(|a| a.bnolevel >= 2).count();
        assert_eq!(info.fs_type, "xfs");
        assert_eq!(info.uuid.as_deref(), Some(FIXTURE_UUID), "{name}");
        assert_eq!(info.label.as_deref(), Some(&name[..name.len().min(12)]));
        assert_eq!(
            info.files,
            Some(stored.num("icount") - stored.num("ifree")),
            "{name}"
        );
        assert!(info.warnings.is_empty(), "{name}: {:?}", info.warnings);
        let v5 = stored.num("versionnum") & 0xf == 5;
        assert_eq!(name.starts_with("v5"), v5, "{name}");
        std::fs::remove_file(&img).unwrap();
    }
    assert!(
        multi_level >= 4,
        "the fragmented fixtures must have free-space B+trees of two levels or more"
    );
}

#[test]
fn a_volume_larger_than_the_filesystem_reports_only_the_filesystem() {
    let mut bytes = fixture_bytes("v5-default");
    let fs_len = bytes.len() as u64;
    bytes.resize(bytes.len() + 3 * 4096 + 512, 0xAB);
    let (info, extents) = scan(&bytes).unwrap();
    assert_eq!(info.total_bytes, fs_len);
    assert!(extents.last().unwrap().end() <= fs_len);
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("before the end of the volume")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn reads_are_few_and_small() {
    let bytes = fixture_bytes("v5-frag");
    let volume = lifeboat_testkit::CountingReads::new(&bytes);
    let mut s = XfsScanner.open_xfs(&volume).unwrap();
    let t = lifeboat_testkit::drain_checked(&mut s, bytes.len() as u64);
    assert!(!t.is_empty());
    eprintln!("{} reads, {} bytes", volume.reads(), volume.bytes());
    // Two passes of: superblock; per AG one AGF and a few B+tree blocks.
    assert!(volume.reads() < 2 * (2 + 4 * 8), "{} reads", volume.reads());
    assert!(volume.bytes() < 256 * 1024, "{} bytes", volume.bytes());
    assert!(s.memory_bytes() <= 64 * 1024);
}

#[test]
fn probe_rejects_other_content_and_open_fails_cleanly() {
    let zeros = vec![0u8; 1 << 20];
    assert!(!XfsScanner.probe(&zeros));
    assert!(matches!(
        XfsScanner.open_xfs(&zeros).err().unwrap(),
        FsError::NotRecognised { .. }
    ));
    assert!(!XfsScanner.probe(&&zeros[..2]));
    // A truncated image: the filesystem is larger than the volume.
    let bytes = fixture_bytes("v4");
    let short = &bytes[..bytes.len() / 2];
    assert!(XfsScanner.probe(&short));
    let e = XfsScanner.open_xfs(&short).err().unwrap();
    assert!(matches!(e, FsError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("does not fit"), "{e}");
}

#[test]
fn the_comparison_catches_one_block_off() {
    let bytes = fixture_bytes("v5-frag");
    let (info, extents) = scan(&bytes).unwrap();
    let o = parse_xfs_db(&stored_expect("v5-frag"));
    assert_matches("self-test", &info, &extents, &o);
    // One block less in the middle of the list, with the totals left as they are: the
    // per-AG comparison must see it.
    let mut shifted = extents.clone();
    let k = shifted.len() / 2;
    shifted[k].len -= 4096;
    let r = std::panic::catch_unwind(|| assert_matches("self-test", &info, &shifted, &o));
    assert!(r.is_err(), "a missing block went unnoticed");
}
