//! Writes the seed corpora of the `lvm_metadata` and `md_superblock` fuzz targets (run by
//! hand, as root for the real LVM2 metadata):
//!
//! ```text
//! cargo test -p lifeboat-volume --test fuzz_seeds -- --ignored
//! ```

mod common;

use common::*;
use lifeboat_volume::lvm;
use lifeboat_volume::md::superblock::testgen::Spec;
use lifeboat_volume::md::Version;
use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_fuzz_seeds() {
    // md: a small member of each version, with and without a bitmap, and a RAID5 one.
    let out = corpus("md_superblock");
    let seeds = [
        (Version::V0_90, 128 * 1024, 1, Some(4096)),
        (Version::V1_0, 32 * 1024, 1, Some(4096)),
        (Version::V1_1, 32 * 1024, 1, None),
        (Version::V1_2, 32 * 1024, 1, Some(4096)),
        (Version::V1_2, 32 * 1024, 5, None),
    ];
    for (version, len, level, bitmap) in seeds {
        let mut spec = Spec::raid1(version, len);
        spec.data_offset = 24;
        spec.bitmap_chunk = bitmap;
        spec.level = level;
        spec.raid_disks = if level == 5 { 3 } else { 2 };
        let (at, sb, bm) = spec.build();
        let mut img = vec![0u8; len as usize];
        img[at as usize..at as usize + sb.len()].copy_from_slice(&sb);
        if let Some((b, bytes)) = bm {
            img[b as usize..b as usize + bytes.len()].copy_from_slice(&bytes);
        }
        let kind = if bitmap.is_some() { "bitmap" } else { "plain" };
        std::fs::write(out.join(format!("{version}-raid{level}-{kind}")), img).unwrap();
    }

    // LVM2: a generated PV with linear, striped and thin-pool volumes.
    let out = corpus("lvm_metadata");
    let text = r#"vgf {
id = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"
seqno = 4
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 8
physical_volumes {
pv0 {
id = "0ABCDE-FGHI-JKLM-NOPQ-RSTU-VWXY-Zabcde"
device = "/dev/sda2"	# Hint only
status = ["ALLOCATABLE"]
dev_size = 160
pe_start = 24
pe_count = 16
}
}
logical_volumes {
root {
id = "N91I4m-FN1S-bbzK-r2Aw-rOiF-CTc9-PCrnLV"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 2
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 4]
}
segment2 {
start_extent = 2
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
}
pool {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001"
status = ["READ", "WRITE", "VISIBLE"]
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
contents = "Text Format Volume Group"
version = 1
"#;
    std::fs::write(out.join("metadata-generated.txt"), text).unwrap();
    let img = lvm::testgen::pv_image("0ABCDEFGHIJKLMNOPQRSTUVWXYZabcde", 80 * 1024, 24, text);
    std::fs::write(out.join("pv-generated"), img).unwrap();

    // Real metadata text and label sector from pvcreate/vgcreate/lvcreate.
    if !can_run(
        "real seeds",
        &[("pvcreate", "lvm2"), ("losetup", "util-linux")],
        true,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ia, ib) = (
        blank(dir.path(), "a.img", 16 << 20),
        blank(dir.path(), "b.img", 16 << 20),
    );
    let (la, lb) = (Loop::attach(&ia), Loop::attach(&ib));
    let l = Lvm::new(&[&la, &lb]);
    l.run(&["pvcreate", &la.0, &lb.0]);
    l.run(&["vgcreate", "-s", "1m", "vgreal", &la.0, &lb.0]);
    l.run(&["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "root", "vgreal"]);
    l.run(&[
        "lvcreate", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "8m", "-n", "data", "vgreal",
    ]);
    l.run(&["lvextend", "-L", "+2m", "vgreal/root"]);
    let a = open(&ia);
    let text = lvm::mda::read_text(a.as_ref(), 4096).unwrap().unwrap();
    std::fs::write(out.join("metadata-real.txt"), &text).unwrap();
    // The label sector and metadata area of the real PV (64 KiB of it).
    let head = read(a.as_ref(), 0, 64 * 1024);
    std::fs::write(out.join("pv-real-head"), head).unwrap();
}
