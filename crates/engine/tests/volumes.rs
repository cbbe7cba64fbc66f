//! The volume layer driven through the engine as a library, over disk image files (no root,
//! no LVM tools: the PV is written by the volume crate's generator, the ext4 inside it by
//! mke2fs): a partition holding an LVM2 PV is saved by what its logical volumes use, its
//! free extents are neither stored nor written, and the restore gives the LV back whole.

#[allow(dead_code)] // this file uses part of the shared fixtures
mod common;

use common::*;
use lifeboat_engine::{plan_restore, plan_save, RestoreOptions, SaveOptions};
use lifeboat_repo::{ImageName, Repository};
use lifeboat_testkit::run_checked;
use std::fs;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::atomic::AtomicBool;

static NO_CANCEL: AtomicBool = AtomicBool::new(false);
const EXTENT: u64 = 4 * MIB;
/// The partition starts at 1 MiB; the PV's first extent 1 MiB into it.
const PART: u64 = MIB;
const PE_START: u64 = MIB;

/// VG `vg0`: `root` (ext4, 16 MiB) in two segments, the second before the first on the PV
/// (extents 5–6, then 1–2); `pool` a thin pool (not mapped) whose data LV `pool_tdata` lies on
/// extents 8–9 (copied whole);
/// extents 0, 3, 4, 7 and 10 free.
const METADATA: &str = r#"vg0 {
id = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"
seqno = 3
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 8192
max_lv = 0
max_pv = 0
metadata_copies = 0
physical_volumes {
pv0 {
id = "0ABCDE-FGHI-JKLM-NOPQ-RSTU-VWXY-Zabcde"
device = "/dev/sda1"
status = ["ALLOCATABLE"]
flags = []
dev_size = 98304
pe_start = 2048
pe_count = 11
}
}
logical_volumes {
root {
id = "N91I4m-FN1S-bbzK-r2Aw-rOiF-CTc9-PCrnLV"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 2
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 5]
}
segment2 {
start_extent = 2
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 1]
}
}
pool {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
}
}
pool_tdata {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000004"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 8]
}
}
}
}
"#;

/// Where LV byte `off` of root lies in the partition.
fn root_at(off: u64) -> u64 {
    let extent = if off < 2 * EXTENT { 5 } else { 1 };
    PART + PE_START + extent * EXTENT + off % (2 * EXTENT)
}

#[test]
fn an_lvm_pv_is_saved_by_what_its_lvs_use_and_restored_whole() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let pv_len = 48 * MIB;
    let mut pv = lifeboat_volume::lvm::testgen::pv_image(
        "0ABCDEFGHIJKLMNOPQRSTUVWXYZabcde",
        pv_len,
        PE_START / 512,
        METADATA,
    );
    // Every extent starts as noise: free ones must not be stored.
    for e in 0..11u64 {
        let at = (PE_START + e * EXTENT) as usize;
        pv[at..at + EXTENT as usize].copy_from_slice(&noise(EXTENT, 100 + e));
    }
    let disk = t.path().join("src.img");
    garbage_disk(&disk, 50 * MIB, 1);
    partition(&disk, Label::Dos, &[(1, 48)]);
    let out = fs::OpenOptions::new().write(true).open(&disk).unwrap();
    out.write_all_at(&pv, PART).unwrap();
    // root: ext4 with files, written at its two segments.
    let tree = t.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "web01\n").unwrap();
    fs::write(tree.join("big.bin"), noise(3 * MIB, 9)).unwrap();
    let root = t.path().join("root.img");
    run_checked(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", "root", "-d"])
            .arg(&tree)
            .arg(&root)
            .arg("16M"),
        None,
    );
    let root_bytes = fs::read(&root).unwrap();
    for half in 0..2u64 {
        let off = half * 2 * EXTENT;
        let piece = &root_bytes[off as usize..(off + 2 * EXTENT) as usize];
        out.write_all_at(piece, root_at(off)).unwrap();
    }
    drop(out);

    let repo_dir = t.path().join("repo");
    fs::create_dir_all(&repo_dir).unwrap();
    let repo = Repository::open(repo_dir.to_str().unwrap()).unwrap();
    let name = ImageName::new("lvm").unwrap();
    let mut opts = SaveOptions::new(name.clone(), vec![disk.clone()]);
    opts.threads = 2;
    let plan = plan_save(&opts).unwrap();
    let p = &plan.disks()[0].table.partitions[0];
    assert_eq!(
        (p.filesystem.as_str(), p.mode.as_str(), p.label.as_deref()),
        ("LVM2_member", "used-blocks", Some("vg0")),
        "{p:#?}"
    );
    let names: Vec<(&str, &str)> = p
        .volumes
        .iter()
        .map(|v| (v.filesystem.as_str(), v.mode.as_str()))
        .collect();
    assert_eq!(
        names,
        [("ext4", "used-blocks"), ("unknown", "raw")],
        "{p:#?}"
    );
    assert_eq!(p.volumes[0].name, "vg0/root");
    assert!(p.volumes[1].name.contains("pool"), "{p:#?}");
    // Five free extents, and the 3 MiB after the last extent that LVM never uses.
    let slack = pv_len - PE_START - 11 * EXTENT;
    assert_eq!(p.unallocated_bytes, Some(5 * EXTENT + slack), "{p:#?}");
    let root_used = p.volumes[0].used_bytes;
    assert!(root_used > 3 * MIB && root_used < 8 * MIB, "{p:#?}");
    // The label and metadata before the first extent, root's used blocks, the pool whole.
    assert_eq!(p.used_bytes, PE_START + root_used + 2 * EXTENT, "{p:#?}");
    assert!(
        plan.warnings().iter().any(|w| w.contains("thin-pool")),
        "{:?}",
        plan.warnings()
    );
    plan.execute(&repo, &|_| {}, &NO_CANCEL).unwrap();

    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 50 * MIB, 2);
    let before = fs::read(&dst).unwrap();
    let mut ropts = RestoreOptions::new(name, vec![dst.clone()]);
    ropts.threads = 2;
    plan_restore(&repo, &ropts)
        .unwrap()
        .execute(&|_| {}, &NO_CANCEL)
        .unwrap();
    let after = fs::read(&dst).unwrap();
    let src = fs::read(&disk).unwrap();
    let range = |b: &[u8], at: u64, len: u64| b[at as usize..(at + len) as usize].to_vec();
    // Label and metadata, and the pool, byte for byte.
    assert!(range(&after, PART, PE_START) == range(&src, PART, PE_START));
    let pool = PART + PE_START + 8 * EXTENT;
    assert!(range(&after, pool, 2 * EXTENT) == range(&src, pool, 2 * EXTENT));
    // Free extents: not written (the target's own bytes are still there).
    for e in [0u64, 3, 4, 7, 10] {
        let at = PART + PE_START + e * EXTENT;
        assert!(
            range(&after, at, EXTENT) == range(&before, at, EXTENT),
            "free extent {e} was written"
        );
    }
    // root, read back through its segments, is a clean ext4 with the same files.
    let mut back = Vec::new();
    for half in 0..2u64 {
        back.extend(range(&after, root_at(half * 2 * EXTENT), 2 * EXTENT));
    }
    let back_path = t.path().join("root-back.img");
    fs::write(&back_path, &back).unwrap();
    run_checked(Command::new("e2fsck").arg("-fn").arg(&back_path), None);
    let cat = |img: &std::path::Path| {
        run_checked(
            Command::new("debugfs")
                .args(["-R", "cat /etc/hostname"])
                .arg(img),
            None,
        )
    };
    assert_eq!(cat(&back_path), "web01\n");
    assert_eq!(
        assert_used_bytes_equal(&disk, &dst, true),
        PE_START + root_used + 2 * EXTENT
    );
}
