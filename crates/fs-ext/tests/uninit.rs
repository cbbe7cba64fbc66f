//! Groups whose block bitmap is not initialised on disk (BLOCK_UNINIT): what is in use there
//! is computed, including other groups' bitmaps and inode tables placed inside them.

mod common;

use common::{drain_checked, fixture_bytes};
use lifeboat_fs::{Extent, Slice, UsedBlocks};
use lifeboat_fs_ext::group_desc::expected_checksum;
use lifeboat_fs_ext::{ExtScanner, GroupDesc, Layout, Superblock};

fn covered(extents: &[Extent], start: u64, end: u64) -> bool {
    extents.iter().any(|e| e.offset <= start && e.end() >= end)
}

/// Sets `flags` in group `g`'s descriptor and fixes its checksum.
fn set_flags(img: &mut [u8], g: u64, flags: u16) -> (Superblock, Layout) {
    let sb = Superblock::parse(&img[1024..2048]).unwrap();
    let l = Layout::new(&sb).unwrap();
    let (blk, off) = l.desc_location(g);
    let at = (blk * l.block_size + off) as usize;
    let ds = l.desc_size as usize;
    img[at + 0x12..at + 0x14].copy_from_slice(&flags.to_le_bytes());
    if let Some(c) = expected_checksum(&sb, sb.csum_seed(), g as u32, &img[at..at + ds]) {
        img[at + 0x1E..at + 0x20].copy_from_slice(&c.to_le_bytes());
    }
    (sb, l)
}

fn desc(img: &[u8], l: &Layout, g: u64) -> GroupDesc {
    let (blk, off) = l.desc_location(g);
    let at = (blk * l.block_size + off) as usize;
    GroupDesc::parse(&img[at..at + l.desc_size as usize], l.is_64bit).unwrap()
}

#[test]
fn metadata_of_other_groups_inside_an_uninit_group_is_kept() {
    // flex_bg: the bitmaps and inode tables of groups 0..15 all lie in group 0. Pretend group
    // 0's bitmap is uninitialised: all of them must still be reported as used.
    let mut img = fixture_bytes("ext4-4k-many-groups");
    let (_, l) = set_flags(&mut img, 0, 0x2 | 0x4);
    let mut st = ExtScanner.open_ext(&img).unwrap();
    let extents = drain_checked(&mut st, img.len() as u64);
    let bs = l.block_size;
    let g0_end = l.group_blocks(0) * bs;
    assert!(covered(&extents, 0, l.base_meta_blocks(0) * bs));
    let mut foreign = 0;
    for g in 0..l.group_count {
        let d = desc(&img, &l, g);
        for (s, n) in [
            (d.block_bitmap, 1),
            (d.inode_bitmap, 1),
            (d.inode_table, l.inode_table_blocks),
        ] {
            let (start, end) = (s * bs, (s + n) * bs);
            assert!(
                covered(&extents, start, end),
                "group {g} metadata at block {s}+{n} not kept"
            );
            foreign += u64::from(g != 0 && start < g0_end);
        }
    }
    assert!(
        foreign >= 2 * 15,
        "expected the flex group's metadata in group 0, found {foreign}"
    );
}

#[test]
fn uninit_flag_is_ignored_without_descriptor_checksums() {
    // ext2 has no descriptor checksums: the kernel ignores bg_flags, so must we.
    let img = fixture_bytes("ext2-1k");
    let before: Vec<Extent> = {
        let mut st = ExtScanner.open_ext(&img).unwrap();
        drain_checked(&mut st, img.len() as u64)
    };
    let mut patched = img.clone();
    set_flags(&mut patched, 1, 0x2);
    let mut st = ExtScanner.open_ext(&patched).unwrap();
    assert_eq!(drain_checked(&mut st, img.len() as u64), before);
}

#[test]
fn scans_a_filesystem_inside_a_partition_window() {
    // The same fixture behind 1 MiB of something else, read through a Slice.
    let fs = fixture_bytes("ext4-1k");
    let mut disk = vec![0xAAu8; 1 << 20];
    disk.extend_from_slice(&fs);
    disk.extend_from_slice(&[0x55; 4096]);
    let part = Slice::new(&disk, 1 << 20, fs.len() as u64);
    let mut a = ExtScanner.open_ext(&fs).unwrap();
    let mut b = ExtScanner.open_ext(&part).unwrap();
    assert_eq!(a.info(), b.info());
    assert_eq!(
        drain_checked(&mut a, fs.len() as u64),
        drain_checked(&mut b, fs.len() as u64)
    );
}

#[test]
fn an_opened_stream_holds_no_bitmap_until_it_streams() {
    // A stream is counted in `open` and may then be kept (by a save plan) before it streams:
    // meanwhile it holds no descriptor or bitmap block.
    let img = fixture_bytes("ext4-4k-many-groups");
    let mut st = ExtScanner.open_ext(&img).unwrap();
    assert!(st.memory_bytes() < 4096, "{}", st.memory_bytes());
    let extents = drain_checked(&mut st, img.len() as u64);
    assert_eq!(
        extents.iter().map(|e| e.len).sum::<u64>(),
        st.info().used_bytes
    );
}
