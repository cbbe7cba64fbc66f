//! The committed fixtures (made by test_data/make.sh with mkfs.vfat/mtools and
//! mkfs.exfat/exfat-fuse): used bytes agree exactly with `fsck.fat -v -n` and `dump.exfat`
//! (stored outputs, and live ones when the tools are installed), and a copy holding only the
//! reported extents passes the checkers and yields the same files.

mod common;

use common::*;
use lifeboat_fs::{Scanner, UsedBlocks};
use lifeboat_fs_fat::{ExfatScanner, FatScanner};

fn open_file(p: &std::path::Path) -> (std::fs::File, u64) {
    let f = std::fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len();
    (f, len)
}

#[test]
fn fat_used_clusters_match_fsck_fat_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in FAT_FIXTURES {
        let want = parse_fsck_fat(&stored(name, "fsck"));
        let img = fixture_file(name, dir.path());
        if let Some((_, live)) = run_fsck_fat(&img) {
            assert_eq!(
                parse_fsck_fat(&live),
                want,
                "{name}: live fsck.fat vs stored"
            );
        }
        let volume = open_file(&img);
        assert!(FatScanner.probe(&volume), "{name}: probe");
        assert!(!ExfatScanner.probe(&volume), "{name}: exFAT probe took FAT");
        let mut s = FatScanner.open_fat(&volume).unwrap();
        let info = s.info().clone();
        let extents = drain_checked(&mut s, volume.1);
        let bs = s.boot_sector().clone();
        // fsck.fat counts bad clusters among the used ones; the scanner does not keep them.
        let bad = info
            .warnings
            .iter()
            .find_map(|w| w.strip_suffix(" clusters are marked bad; they are not saved"))
            .map_or(0, |n| n.parse::<u64>().unwrap());
        assert_eq!(
            s.used_clusters() + bad,
            want.used_clusters,
            "{name}: used clusters"
        );
        assert_eq!(
            bs.cluster_count, want.total_clusters,
            "{name}: cluster count"
        );
        assert_eq!(bs.cluster_count, want.data_clusters, "{name}");
        assert_eq!(bs.data_offset(), want.data_offset, "{name}: data area");
        assert_eq!(u64::from(info.block_size), want.cluster_size, "{name}");
        assert_eq!(
            info.used_bytes,
            want.data_offset + s.used_clusters() * want.cluster_size,
            "{name}: used bytes = reserved + FATs + root + used clusters"
        );
        assert_eq!(extents[0].offset, 0);
        assert!(
            extents[0].len >= want.data_offset,
            "{name}: metadata kept whole"
        );
        assert_eq!(info.fs_type, &name[..5], "{name}");
        assert_eq!(info.uuid.as_deref(), Some(SERIAL), "{name}");
        let label = name[..name.len().min(11)].to_uppercase().replace('-', "_");
        assert_eq!(info.label.as_deref(), Some(label.as_str()), "{name}");
        if name.ends_with("-bad") {
            assert!(
                bad > 0,
                "{name}: bad clusters not reported: {:?}",
                info.warnings
            );
            assert!(
                info.warnings
                    .iter()
                    .any(|w| w.starts_with("FSInfo free cluster count")),
                "{name}: mkfs.vfat's stale FSInfo count (which fsck.fat reports too) not seen"
            );
        } else {
            // mkfs.vfat may leave a few sectors after the filesystem unused.
            assert!(
                info.warnings
                    .iter()
                    .all(|w| w.contains("bytes before the end of the volume")),
                "{name}: {:?}",
                info.warnings
            );
        }
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn exfat_used_clusters_match_dump_exfat_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in EXFAT_FIXTURES {
        let want = parse_dump_exfat(&stored(name, "dump"));
        let img = fixture_file(name, dir.path());
        if let Some(live) = run_dump_exfat(&img) {
            assert_eq!(
                parse_dump_exfat(&live),
                want,
                "{name}: live dump.exfat vs stored"
            );
        }
        let volume = open_file(&img);
        assert!(ExfatScanner.probe(&volume), "{name}: probe");
        assert!(!FatScanner.probe(&volume), "{name}: FAT probe took exFAT");
        let mut s = ExfatScanner.open_exfat(&volume).unwrap();
        let info = s.info().clone();
        drain_checked(&mut s, volume.1);
        let used = want.total_clusters - want.free_clusters;
        assert_eq!(s.used_clusters(), used, "{name}: used clusters");
        let ss = 1u64 << want.sector_bits;
        assert_eq!(s.boot().sector_size(), ss, "{name}");
        assert_eq!(u64::from(info.block_size), want.cluster_size, "{name}");
        assert_eq!(
            info.used_bytes,
            24 * ss + want.fat_length_sectors * ss + used * want.cluster_size,
            "{name}: used bytes = boot regions + FAT + used clusters"
        );
        assert_eq!(u64::from(s.boot().fat_offset), want.fat_offset_sectors);
        assert_eq!(info.fs_type, "exfat");
        assert_eq!(info.uuid.as_deref(), Some(SERIAL), "{name}");
        assert_eq!(info.label.as_deref(), Some(want.label.as_str()), "{name}");
        assert!(info.warnings.is_empty(), "{name}: {:?}", info.warnings);
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn a_copy_of_the_extents_alone_is_clean_and_holds_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    for name in FAT_FIXTURES.iter().chain(EXFAT_FIXTURES) {
        let img = fixture_file(name, dir.path());
        let volume = std::sync::Arc::new(open_file(&img));
        let mut st = if name.starts_with("exfat") {
            ExfatScanner.open(volume.clone()).unwrap()
        } else {
            FatScanner.open(volume.clone()).unwrap()
        };
        let extents = drain_checked(&mut *st, volume.1);
        let copy = dir.path().join(format!("{name}.copy"));
        copy_extents(&img, &extents, &copy);
        if name.starts_with("exfat") {
            let Some(fsck) = tool("fsck.exfat") else {
                continue;
            };
            for p in [&img, &copy] {
                let o = std::process::Command::new(&fsck)
                    .arg("-n")
                    .arg(p)
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{name}: fsck.exfat -n {}: {}",
                    p.display(),
                    String::from_utf8_lossy(&o.stdout)
                );
            }
            // Same used clusters and root directory listing through dump.exfat.
            if let (Some(a), Some(b)) = (run_dump_exfat(&img), run_dump_exfat(&copy)) {
                assert_eq!(
                    a.replace(&*img.display().to_string(), ""),
                    b.replace(&*copy.display().to_string(), ""),
                    "{name}"
                );
            }
        } else {
            let (Some((ok_a, a)), Some((ok_b, b))) = (run_fsck_fat(&img), run_fsck_fat(&copy))
            else {
                continue;
            };
            assert_eq!(ok_a, ok_b, "{name}: fsck.fat verdicts differ:\n{a}\n{b}");
            assert!(ok_a || name.ends_with("-bad"), "{name}: fsck.fat:\n{a}");
            assert_eq!(parse_fsck_fat(&a), parse_fsck_fat(&b), "{name}");
            let fa = mcopy_all(&img, &dir.path().join(format!("{name}.a"))).unwrap();
            let fb = mcopy_all(&copy, &dir.path().join(format!("{name}.b"))).unwrap();
            assert!(fa.len() > 20, "{name}: only {} files extracted", fa.len());
            assert!(fa == fb, "{name}: extracted files differ");
        }
        std::fs::remove_file(&img).unwrap();
        std::fs::remove_file(&copy).unwrap();
    }
}

#[test]
fn the_fat_is_read_in_a_few_large_reads() {
    // 129022 clusters of 512 bytes: a 504 KiB FAT.
    let bytes = fixture_bytes("fat32-512");
    let volume = lifeboat_testkit::CountingReads::new(&bytes);
    let mut s = FatScanner.open_fat(&volume).unwrap();
    while s.next_extent().unwrap().is_some() {}
    let reads = volume.reads();
    let read_bytes = volume.bytes();
    // boot sector, FAT head, FSInfo, root label cluster, then one FAT read per pass (2).
    assert!(reads <= 6, "{reads} reads");
    assert!(read_bytes < 3 * 520_192, "{read_bytes} bytes read");
}
