//! Reading an image at random through the engine's `ImageReader`, over disk image files (no
//! root needed): every byte a filesystem uses reads back as saved, everything else as zeros,
//! and an extracted partition or disk is a clean filesystem (`e2fsck -fn`).

#[allow(dead_code)] // this file uses part of the shared fixtures
mod common;

use common::*;
use lifeboat_engine::{save, ImageReader, PassphraseSource, SaveOptions};
use lifeboat_fs::{ReadAt, Slice};
use lifeboat_repo::{ImageName, Repository};
use lifeboat_testkit::run_checked;
use std::fs;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

static NO_CANCEL: AtomicBool = AtomicBool::new(false);

#[test]
fn random_reads_and_extracts_give_the_saved_bytes_and_zeros_elsewhere() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 64, Label::Dos, &[(1, 24), (25, 30)]);
    let root = t.path().join("repo");
    fs::create_dir_all(&root).unwrap();
    let repo = Repository::open(root.to_str().unwrap()).unwrap();
    let name = ImageName::new("rd").unwrap();
    let mut opts = SaveOptions::new(name.clone(), vec![src.clone()]);
    opts.threads = 2;
    save(&repo, &opts, &|_| {}, &NO_CANCEL).unwrap();

    let r = ImageReader::open(&repo, &name, &PassphraseSource::none()).unwrap();
    assert_eq!(r.disks().len(), 1);
    let disk =
        Arc::new(lifeboat_blockdev::Disk::open(&src, lifeboat_blockdev::OpenMode::Read).unwrap());
    // Every used extent of partition 2, read through the reader in odd-sized pieces, equals
    // the source; the gaps between them read as zeros (the source has other bytes there:
    // mke2fs leaves free blocks as they were, the test disk's were zeros but the check is on
    // the reader's side: it must not invent bytes).
    let l = layout(&src);
    let p = l.partition(2).unwrap();
    let (mut stream, raw) =
        lifeboat_engine::open_volume(Arc::new(Slice::new(Arc::clone(&disk), p.start, p.size)));
    assert!(!raw);
    let mut prev_end = 0u64;
    let mut checked = 0u64;
    while let Some(e) = stream.next_extent().unwrap() {
        let mut want = vec![0u8; e.len as usize];
        disk.read_exact_at(&mut want, p.start + e.offset).unwrap();
        let mut got = vec![0xAAu8; e.len as usize];
        for (i, piece) in got.chunks_mut(12_345).enumerate() {
            r.read_at(0, p.start + e.offset + (i * 12_345) as u64, piece)
                .unwrap();
        }
        assert!(got == want, "extent {e:?} of partition 2 differs");
        if e.offset > prev_end {
            let gap = (e.offset - prev_end).min(1 << 20) as usize;
            let mut z = vec![0xAAu8; gap];
            r.read_at(0, p.start + prev_end, &mut z).unwrap();
            assert!(
                z.iter().all(|b| *b == 0),
                "unstored bytes before {e:?} are not zeros"
            );
            // One read across the end of the gap and into the extent: zeros, then the data.
            let before = gap.min(5_000);
            let into = want.len().min(7_000);
            let mut mixed = vec![0xAAu8; before + into];
            r.read_at(0, p.start + e.offset - before as u64, &mut mixed)
                .unwrap();
            assert!(
                mixed[..before].iter().all(|b| *b == 0) && mixed[before..] == want[..into],
                "a read across the gap before {e:?} and into it differs"
            );
        }
        prev_end = e.end();
        checked += e.len;
    }
    assert!(checked > 300_000);
    // Out of range and unknown disks are errors, not panics.
    let mut b = [0u8; 16];
    assert!(r.read_at(0, 64 * MIB - 8, &mut b).is_err());
    assert!(r.read_at(1, 0, &mut b).is_err());

    // Extract partition 1 and the whole disk: clean filesystems, same table, sparse files.
    let part = t.path().join("p1.raw");
    let x = r.extract(0, Some(1), &part).unwrap();
    assert_eq!(x.size, 24 * MIB);
    assert!(x.data_bytes < x.size / 2, "{x:?}");
    run_checked(Command::new("e2fsck").arg("-fn").arg(&part), None);
    assert!(
        r.extract(0, Some(1), &part).is_err(),
        "an existing file is overwritten"
    );
    assert!(r.extract(0, Some(7), &t.path().join("p7.raw")).is_err());
    let whole = t.path().join("disk.raw");
    let x = r.extract(0, None, &whole).unwrap();
    assert_eq!(x.size, 64 * MIB);
    assert_eq!(layout(&whole).partitions, l.partitions);
    assert_fsck_clean(&whole, 2);
    assert_eq!(
        assert_used_bytes_equal(&src, &whole, true),
        checked + {
            let q = l.partition(1).unwrap();
            let (mut s1, _) = lifeboat_engine::open_volume(Arc::new(Slice::new(
                Arc::clone(&disk),
                q.start,
                q.size,
            )));
            let mut n = 0;
            while let Some(e) = s1.next_extent().unwrap() {
                n += e.len;
            }
            n
        }
    );
    let blocks = fs::metadata(&whole).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.blocks() * 512
    });
    assert!(
        blocks.unwrap() < 32 * MIB,
        "the extracted disk is not sparse"
    );
}
