//! Filesystems made fresh with the real mke2fs at test time, in many variants, compared with
//! dumpe2fs exactly; and a sparse 1 TiB ext4 to check that scanning stays bounded and quick.

mod common;

use std::time::Instant;

use common::*;
use lifeboat_fs::UsedBlocks;
use lifeboat_fs_ext::ExtScanner;

const MIB: u64 = 1024 * 1024;

/// (size, mke2fs options)
const VARIANTS: &[(u64, &str)] = &[
    (12 * MIB + 700 * 1024, "-t ext2 -b 1024 -g 256"),
    (200 * MIB, "-t ext2 -b 4096"),
    (8 * MIB, "-t ext2 -r 0 -b 1024"),
    (40 * MIB, "-t ext3 -b 2048 -g 1024"),
    (
        300 * MIB + 300 * 1024,
        "-t ext4 -b 4096 -g 512 -E packed_meta_blocks=1",
    ),
    (64 * MIB, "-t ext4 -b 1024 -g 256 -G 64"),
    (32 * MIB, "-t ext4 -O ^has_journal,inline_data"),
    (64 * MIB, "-t ext4 -O quota,project"),
    (64 * MIB, "-t ext4 -O mmp"),
    (
        96 * MIB,
        "-t ext4 -b 1024 -O sparse_super2 -E num_backup_sb=0",
    ),
    (
        96 * MIB,
        "-t ext4 -b 1024 -O sparse_super2 -E num_backup_sb=1",
    ),
    (
        256 * MIB + 3 * MIB,
        "-t ext4 -b 4096 -g 256 -O meta_bg,^resize_inode",
    ),
    (
        48 * MIB,
        "-t ext4 -b 1024 -g 512 -O meta_bg,^resize_inode,^flex_bg",
    ),
    (
        48 * MIB,
        "-t ext4 -b 1024 -g 512 -O meta_bg,^resize_inode,^flex_bg,^metadata_csum,uninit_bg",
    ),
    (64 * MIB, "-t ext4 -I 128 -N 5000"),
    (
        80 * MIB,
        "-t ext4 -b 2048 -O ^64bit,^metadata_csum,uninit_bg",
    ),
    (
        40 * MIB,
        "-t ext4 -b 1024 -O ^flex_bg,^metadata_csum,uninit_bg",
    ),
    (500 * MIB, "-t ext4 -T huge"),
    (160 * MIB, "-t ext4 -b 65536"),
    (
        64 * MIB + 512 * 1024,
        "-t ext4 -b 4096 -g 1024 -O ^sparse_super,^resize_inode",
    ),
    (128 * MIB, "-t ext4 -b 4096 -O bigalloc -C 32768"),
    (64 * MIB, "-t ext4 -b 1024 -O bigalloc -C 4096"),
    (
        300 * MIB,
        "-t ext4 -b 4096 -O bigalloc,^metadata_csum,uninit_bg -C 65536",
    ),
    (
        96 * MIB,
        "-t ext4 -b 4096 -g 1024 -O 64bit,metadata_csum_seed -E desc_size=128",
    ),
];

#[test]
fn fresh_filesystems_match_dumpe2fs_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(dir.path());
    let img = dir.path().join("fs.img");
    let mut failures = Vec::new();
    for &(size, opts) in VARIANTS {
        let args: Vec<&str> = opts.split_whitespace().collect();
        // Revision 0 cannot hold the tree's features; leave it empty.
        let t = (!opts.contains("-r 0")).then_some(tree.as_path());
        if mke2fs(&img, size, &args, t).is_none() {
            return;
        }
        let Some(full) = run_dumpe2fs(&img, false) else {
            return;
        };
        let header = run_dumpe2fs(&img, true).unwrap();
        let f = std::fs::File::open(&img).unwrap();
        let volume = (f, size);
        let (info, extents) = match scan(&volume) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{opts}: {e}"));
                continue;
            }
        };
        if info.used_bytes != expected_used_bytes(&header) {
            failures.push(format!(
                "{opts}: used {} but dumpe2fs -h says {}",
                info.used_bytes,
                expected_used_bytes(&header)
            ));
            continue;
        }
        let (bs, used) = used_blocks_from_dumpe2fs(&full);
        if let Err(p) = std::panic::catch_unwind(|| {
            assert_same_coverage(opts, &extents, bs, &used, info.total_bytes)
        }) {
            failures.push(format!("{opts}: {:?}", p.downcast_ref::<String>()));
        }
        std::fs::remove_file(&img).unwrap();
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn one_tib_sparse_ext4_scans_quickly_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    let size = 1u64 << 40;
    let opts = [
        "-t",
        "ext4",
        "-T",
        "largefile4",
        "-E",
        "lazy_itable_init=1,lazy_journal_init=1",
    ];
    if mke2fs(&img, size, &opts, None).is_none() {
        return;
    }
    let Some(header) = run_dumpe2fs(&img, true) else {
        return;
    };
    let f = std::fs::File::open(&img).unwrap();
    let volume = (f, size);
    let t = Instant::now();
    let mut s = ExtScanner.open_ext(&volume).unwrap();
    assert_eq!(s.info().used_bytes, expected_used_bytes(&header));
    let extents = drain_checked(&mut s, size);
    let elapsed = t.elapsed();
    let mem = s.memory_bytes();
    eprintln!(
        "1 TiB: {} groups, {} extents, {:?}, {} bytes of buffers",
        s.layout().group_count,
        extents.len(),
        elapsed,
        mem
    );
    assert!(mem < 4 * 1024 * 1024, "buffers grew to {mem} bytes");
    assert!(elapsed.as_secs() < 60, "scan took {elapsed:?}");
    let full = run_dumpe2fs(&img, false).unwrap();
    let (bs, used) = used_blocks_from_dumpe2fs(&full);
    assert_same_coverage("1 TiB", &extents, bs, &used, s.info().total_bytes);
}
