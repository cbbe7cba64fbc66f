//! md members built by lifeboat's own superblock generator (this kernel may have no md
//! driver, so `mdadm --create` cannot run), checked by the real `mdadm --examine` as the
//! oracle: it must accept each one and print the fields the parser reads.

mod common;

use common::*;
use lifeboat_fs::{Extent, ReadAt, SharedVolume};
use lifeboat_volume::md::superblock::testgen::Spec;
use lifeboat_volume::md::{self, Version};
use lifeboat_volume::{detect, Content};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn write_member(path: &Path, spec: &Spec) -> Vec<u8> {
    let mut img = vec![0u8; spec.dev_len as usize];
    // The array's content: every 4 KiB block names its offset.
    for (i, b) in img.chunks_mut(4096).enumerate() {
        let tag = format!("block {i}");
        b[..tag.len()].copy_from_slice(tag.as_bytes());
    }
    let (at, sb, bitmap) = spec.build();
    img[at as usize..at as usize + sb.len()].copy_from_slice(&sb);
    if let Some((bat, bm)) = bitmap {
        img[bat as usize..bat as usize + 4096].fill(0);
        img[bat as usize..bat as usize + bm.len()].copy_from_slice(&bm);
    }
    std::fs::write(path, &img).unwrap();
    img
}

/// `mdadm --examine` of a file, as `key : value` pairs.
fn examine(path: &Path) -> HashMap<String, String> {
    let mdadm = lifeboat_testkit::tool("mdadm", "mdadm").unwrap();
    let out = Command::new(mdadm)
        .arg("--examine")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mdadm --examine refused {}: {text}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.split_once(" : "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `mdadm --examine-bitmap` of a file attached to a loop device (of a regular file, mdadm
/// reads a bitmap file).
fn examine_bitmap(path: &Path) -> HashMap<String, String> {
    let mdadm = lifeboat_testkit::tool("mdadm", "mdadm").unwrap();
    let lp = Loop::attach(path);
    let text = lifeboat_testkit::run_checked(Command::new(mdadm).arg("-X").arg(&lp.0), None);
    text.lines()
        .filter_map(|l| l.split_once(" : "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn generated_superblocks_read_the_same_as_mdadm_examine() {
    if !can_run("generated_superblocks", &[("mdadm", "mdadm")], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for version in [Version::V0_90, Version::V1_0, Version::V1_1, Version::V1_2] {
        for bitmap in [None, Some(64 * 1024)] {
            let mut spec = Spec::raid1(version, 8 * MIB + 12 * 1024);
            spec.bitmap_chunk = bitmap;
            let path = dir
                .path()
                .join(format!("m-{version}-{}.img", bitmap.is_some()));
            let img = write_member(&path, &spec);
            let ex = examine(&path);
            let member: SharedVolume = Arc::new(img.clone());
            let sb = md::find(member.as_ref()).unwrap();
            assert_eq!(sb.version, version);
            assert_eq!(ex["Raid Level"], "raid1");
            let uuid_key = if version == Version::V0_90 {
                "UUID"
            } else {
                "Array UUID"
            };
            assert_eq!(ex[uuid_key], sb.mdadm_uuid(), "{version}");
            if version == Version::V0_90 {
                assert_eq!(ex["Version"], "0.90.00");
            } else {
                assert_eq!(ex["Version"], format!("{version}"));
                assert_eq!(ex["Name"], sb.set_name);
                // (1.0: data at 0, not printed.)
                if version != Version::V1_0 {
                    assert_eq!(
                        ex["Data Offset"],
                        format!("{} sectors", sb.data_offset),
                        "{version}"
                    );
                }
                assert!(
                    ex["Avail Dev Size"].starts_with(&format!("{} sectors", sb.data_size)),
                    "{version}: {ex:?}"
                );
                assert!(
                    ex["Array Size"].starts_with(&format!("{} KiB", sb.size / 2)),
                    "{version}: {ex:?}"
                );
                assert_eq!(
                    ex["Super Offset"],
                    format!("{} sectors", sb.offset / 512),
                    "{version}"
                );
            }
            if let Some(chunk) = bitmap {
                let bits = (sb.size * 512).div_ceil(u64::from(chunk));
                if version == Version::V0_90 {
                    assert_eq!(ex["Internal Bitmap"], "present");
                } else {
                    assert_eq!(
                        ex["Internal Bitmap"],
                        format!("{} sectors from superblock", sb.bitmap_offset.unwrap())
                    );
                }
                if version != Version::V0_90
                    && can_run("mdadm -X", &[("losetup", "util-linux")], true)
                {
                    // mdadm reads the bitmap where the superblock says it lies.
                    let x = examine_bitmap(&path);
                    assert_eq!(x["Chunksize"], format!("{} KB", chunk / 1024), "{x:?}");
                    assert!(x["Bitmap"].starts_with(&format!("{bits} bits")), "{x:?}");
                }
                let bat = sb
                    .offset
                    .checked_add_signed(sb.bitmap_offset.unwrap() * 512)
                    .unwrap();
                let n = md::bitmap_bytes(member.as_ref(), bat).unwrap();
                assert_eq!(n, (256 + bits.div_ceil(8)).div_ceil(512) * 512);
            }

            let m = detect(member.as_ref()).expect("detected");
            assert_eq!(m.name(), "md");
            let l = m.assemble(std::slice::from_ref(&member)).remove(0).unwrap();
            assert_eq!(l.kind, "linux_raid_member");
            assert_eq!(l.uuid.as_deref(), Some(sb.uuid().as_str()));
            assert_eq!(l.volumes.len(), 1);
            let v = &l.volumes[0];
            assert_eq!(v.layout, "raid1");
            assert_eq!(v.size, sb.size * 512);
            let Content::Mapped(view) = &v.content else {
                panic!()
            };
            let data = sb.data_offset * 512;
            let mut b = vec![0u8; 4096];
            view.read_exact_at(&mut b, 4096).unwrap();
            assert_eq!(&b[..], &img[(data + 4096) as usize..(data + 8192) as usize]);
            assert_eq!(
                l.areas,
                vec![lifeboat_volume::Area::linear(0, 0, v.size, data)]
            );
            // Kept: everything outside the data, which holds superblock and bitmap.
            let sb_ext = Extent::new(sb.offset, 4096);
            assert!(l
                .kept
                .iter()
                .any(|k| k.offset <= sb_ext.offset && sb_ext.end() <= k.end()));
            let kept: u64 = l.kept.iter().map(|e| e.len).sum();
            assert_eq!(kept + v.size + l.unallocated_bytes.unwrap(), member.len());
        }
    }
}

#[test]
fn other_levels_and_bad_checksums_are_refused_with_the_reason() {
    if !can_run("other_levels", &[("mdadm", "mdadm")], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for version in [Version::V0_90, Version::V1_2] {
        let mut spec = Spec::raid1(version, 8 * MIB);
        spec.level = 5;
        spec.raid_disks = 3;
        let path = dir.path().join(format!("r5-{version}.img"));
        let img = write_member(&path, &spec);
        assert_eq!(examine(&path)["Raid Level"], "raid5");
        let member: SharedVolume = Arc::new(img);
        let m = detect(member.as_ref()).unwrap();
        let e = m.assemble(&[member]).remove(0).unwrap_err();
        assert_eq!(e.to_string(), "md: RAID level 5 is copied whole");
    }
    // A flipped byte in the superblock: mdadm and the parser both see the checksum fail.
    for version in [Version::V0_90, Version::V1_0, Version::V1_2] {
        let spec = Spec::raid1(version, 8 * MIB);
        let path = dir.path().join(format!("bad-{version}.img"));
        let mut img = write_member(&path, &spec);
        let (at, _, _) = spec.build();
        img[at as usize + 100] ^= 0x40;
        std::fs::write(&path, &img).unwrap();
        let ex = examine(&path);
        assert!(ex["Checksum"].contains("expected"), "{version}: {ex:?}");
        let member: SharedVolume = Arc::new(img);
        let e = md::find(member.as_ref()).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}

#[test]
fn a_smaller_array_a_spare_and_each_member_in_its_own_group() {
    let mut spec = Spec::raid1(Version::V1_2, 8 * MIB);
    spec.size = 4096; // 2 MiB of the member's 7 MiB of data room
    let (at, sb, _) = spec.build();
    let mut img = vec![0u8; 8 * MIB as usize];
    img[at as usize..at as usize + sb.len()].copy_from_slice(&sb);
    let member: SharedVolume = Arc::new(img.clone());
    let l = md::lay_out(&member).unwrap();
    assert_eq!(l.volumes[0].size, 2 * MIB);
    assert_eq!(l.kept, vec![Extent::new(0, MIB)]);
    assert_eq!(l.unallocated_bytes, Some(5 * MIB));
    let m = detect(member.as_ref()).unwrap();
    let k1 = m.group_key(member.as_ref()).unwrap();
    let k2 = m.group_key(member.as_ref()).unwrap();
    assert_ne!(k1, k2, "each member stands alone");
    assert!(k1.starts_with(&format!("md:{}:0:", l.uuid.unwrap())));

    // A spare (member 2 of a 2-disk array): no data is stored.
    let mut spec = Spec::raid1(Version::V1_2, 8 * MIB);
    spec.dev_number = 2;
    let (at, sb, _) = spec.build();
    img[at as usize..at as usize + sb.len()].copy_from_slice(&sb);
    let member: SharedVolume = Arc::new(img);
    let l = md::lay_out(&member).unwrap();
    assert!(l.volumes.is_empty());
    assert!(
        l.warnings.iter().any(|w| w.contains("spare")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn an_lvm_pv_inside_an_end_superblock_member_is_seen_as_md() {
    // A 0.90 or 1.0 member holds the array's content from byte 0: an LVM label there.
    for version in [Version::V0_90, Version::V1_0] {
        let spec = Spec::raid1(version, 8 * MIB);
        let (at, sb, _) = spec.build();
        let mut img = vec![0u8; 8 * MIB as usize];
        img[512..520].copy_from_slice(b"LABELONE");
        img[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        img[at as usize..at as usize + sb.len()].copy_from_slice(&sb);
        let m = detect(&img).unwrap();
        assert_eq!(m.name(), "md", "{version}");
    }
}
