//! End-to-end tests of the `lifeboat` binary: fixture disks are made at test time by the real
//! tools (sfdisk, sgdisk, mke2fs -d, losetup), saved, restored onto targets full of random
//! garbage, and verified with e2fsck, debugfs and byte comparisons of every boot area.
//!
//! Tests that need a missing tool or root skip loudly, and fail when CI=true.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MBR_TOOLS: &[&str] = &["mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk"];
const GPT_TOOLS: &[&str] = &[
    "mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk", "sgdisk",
];

/// The manifest's description of a saved disk matches the fixture: table kind, sector size,
/// every partition's position, filesystem, mode and used bytes (as dumpe2fs counts them),
/// and every boot area of the fixture lies inside the saved boot regions.
fn assert_manifest_describes(m: &Value, disk: usize, fx: &Fixture) {
    let d = &m["disks"][disk];
    assert_eq!(d["size"], fx.size, "disk size");
    assert_eq!(d["logical_sector_size"], fx.sector, "sector size");
    assert_eq!(d["table"]["kind"], fx.label, "table kind");
    let parts = d["table"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), fx.parts.len(), "partition count: {parts:#?}");
    for p in &fx.parts {
        let j = manifest_partition(m, disk, p.number);
        assert_eq!(j["start"], p.start, "partition {} start", p.number);
        assert_eq!(j["size"], p.size, "partition {} size", p.number);
        match &p.fill {
            Fill::Ext { fstype, .. } => {
                assert_eq!(
                    j["filesystem"], *fstype,
                    "partition {} filesystem",
                    p.number
                );
                assert_eq!(j["mode"], "used-blocks", "partition {} mode", p.number);
                assert_eq!(
                    j["used_bytes"], p.used_bytes,
                    "partition {}: stored bytes differ from dumpe2fs's used blocks",
                    p.number
                );
            }
            Fill::Random { .. } => {
                assert_eq!(j["mode"], "raw", "partition {} mode", p.number);
                assert_eq!(
                    j["used_bytes"], p.size,
                    "raw partition {} stored whole",
                    p.number
                );
            }
            Fill::Extended => unreachable!(),
        }
    }
    let regions: Vec<(u64, u64)> = d["boot_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["offset"].as_u64().unwrap(), r["len"].as_u64().unwrap()))
        .collect();
    for a in &fx.areas {
        // Every byte of the area lies in some saved region (regions are sorted, disjoint).
        let mut at = a.off;
        for &(o, l) in &regions {
            if o <= at && at < o + l {
                at = o + l;
            }
        }
        assert!(
            at >= a.off + a.len,
            "boot area {} ({}+{}) is not saved; regions {regions:?}",
            a.what,
            a.off,
            a.len
        );
    }
}

/// Stored bytes are the used bytes (plus boot areas), not the disk size; the image files
/// are no larger than the data they hold.
fn assert_stores_used_only(m: &Value, repo: &Path, image: &str, fx: &[&Fixture]) {
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    let expected: u64 = fx.iter().map(|f| f.expected_stored()).sum();
    let disks: u64 = fx.iter().map(|f| f.size).sum();
    let partsum: u64 = m["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["table"]["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["saved"] == true)
                .map(|p| p["used_bytes"].as_u64().unwrap())
                .sum::<u64>()
                + d["boot_regions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["len"].as_u64().unwrap())
                    .sum::<u64>()
        })
        .sum();
    assert_eq!(
        stored, partsum,
        "stored bytes ≠ partitions' used bytes + boot regions"
    );
    assert!(
        stored >= expected && stored <= expected + 2 * MIB,
        "stored {stored} bytes, expected about {expected} (used blocks + boot areas)"
    );
    assert!(
        stored * 3 < disks,
        "stored {stored} of {disks} disk bytes: not only used blocks"
    );
    let files = dir_bytes(&repo.join(image));
    assert!(
        files <= stored + stored / 50 + MIB,
        "image files hold {files} bytes for {stored} data bytes"
    );
}

// ───────────────────────────── 1. MBR ─────────────────────────────

#[test]
fn mbr_disk_with_extended_and_logical_partitions() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("mbr");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        200,
        11,
        &[
            bootable(ext("ext4", 48, TreeSpec::new(101, 8))),
            ext("ext2", 24, TreeSpec::new(102, 3)),
            extended(),
            ext("ext3", 32, TreeSpec::new(105, 4)),
            ext_bs("ext4", 40, 4096, TreeSpec::new(106, 6)),
            raw(6, "da", 107),
        ],
    );
    assert_eq!(
        fx.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 5, 6, 7]
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let before = sha_all(&fx.path);

    savedisk(&repo, "node01", &[&fx.path], &[])
        .ok()
        .says(&["saved image node01"]);
    assert_eq!(
        sha_all(&fx.path),
        before,
        "savedisk changed the source disk"
    );

    // list: complete.
    assert_eq!(list_status(&repo, "node01"), "complete");
    let l = list_json(&repo);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["image"], "node01");
    assert_eq!(l[0]["complete"], true);
    assert_eq!(l[0]["disks"][0]["source"], s(&fx.path));
    assert_eq!(l[0]["disks"][0]["size"], fx.size);

    // info: partitions, filesystems, modes, used bytes, boot areas.
    let text = lifeboat(&["info", "--repo", s(&repo), "--image", "node01"]).ok();
    let text = text.says(&["ext4", "ext2", "ext3", "used-blocks", "raw", "mbr"]);
    for n in ["1", "2", "5", "6", "7"] {
        assert!(
            text.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(n)),
            "info lists no partition {n}:\n{}",
            text.stdout
        );
    }
    let m = info_json(&repo, "node01");
    assert_manifest_describes(&m, 0, &fx);
    assert_eq!(manifest_partition(&m, 0, 1)["bootable"], true);
    assert_eq!(manifest_partition(&m, 0, 2)["bootable"], false);
    for n in [5, 6, 7] {
        assert_eq!(
            manifest_partition(&m, 0, n)["kind"],
            "logical",
            "partition {n}"
        );
    }
    assert_eq!(
        m["disks"][0]["table"]["disk_id"],
        fx.table.as_ref().unwrap().id
    );
    assert_stores_used_only(&m, &repo, "node01", &[&fx]);

    // check.
    let c = lifeboat(&["check", "--repo", s(&repo), "--image", "node01"])
        .ok()
        .says(&["intact"]);
    assert!(!c.stdout.contains(" 0 chunk(s)"), "{}", c.stdout);

    // restore onto garbage.
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 12);
    restoredisk(&repo, "node01", &[&target], &[])
        .ok()
        .says(&["restored image node01"]);
    verify_restored(&fx, &target, d);
    assert_eq!(sha_all(&fx.path), before, "restore changed the source disk");
}

// ───────────────────────────── 2. GPT ─────────────────────────────

const UNKNOWN_GUID: &str = "6A2D9C41-5E3B-4F7A-9C8D-1B2E3F405162";

#[test]
fn gpt_disk_onto_same_size_and_larger_targets() {
    if !need(GPT_TOOLS) {
        return;
    }
    let t = tempdir("gpt");
    let d = t.path();
    let fx = gpt_disk(
        d,
        "gpt.img",
        160,
        512,
        21,
        &[
            raw(1, "ef02", 201),
            ext("ext4", 64, TreeSpec::new(202, 10)),
            raw(8, UNKNOWN_GUID, 203),
            ext_bs("ext4", 48, 4096, TreeSpec::new(204, 5)),
        ],
    );
    assert_sgdisk_clean(&fx.path);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "gpt-node", &[&fx.path], &[]).ok();
    let m = info_json(&repo, "gpt-node");
    assert_manifest_describes(&m, 0, &fx);
    assert_stores_used_only(&m, &repo, "gpt-node", &[&fx]);
    for n in 1..=4 {
        assert_eq!(manifest_partition(&m, 0, n)["kind"], "gpt");
    }
    assert!(
        manifest_partition(&m, 0, 3)["type_code"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(UNKNOWN_GUID),
        "{:#}",
        manifest_partition(&m, 0, 3)
    );
    lifeboat(&["check", "--repo", s(&repo), "--image", "gpt-node"]).ok();

    // Same size.
    let same = d.join("same.img");
    garbage_file(&same, fx.size, 22);
    restoredisk(&repo, "gpt-node", &[&same], &[]).ok();
    verify_restored(&fx, &same, d);
    assert_sgdisk_clean(&same);
    fs::remove_file(&same).unwrap();

    // Larger: the backup GPT moves to the new end, partitions stay.
    let big = d.join("big.img");
    // Not a whole number of MiB: the new last LBA is not aligned to anything.
    garbage_file(&big, fx.size + 64 * MIB + 3 * 512, 23);
    restoredisk(&repo, "gpt-node", &[&big], &[])
        .ok()
        .says(&["backup GPT was moved"]);
    verify_restored(&fx, &big, d);
    verify_gpt_grown(&fx, &big);
    assert_sgdisk_clean(&big);
    let got = read_table(&big);
    assert_eq!(
        got.parts,
        fx.table.as_ref().unwrap().parts,
        "partitions changed"
    );
    assert_eq!(got.id, fx.table.as_ref().unwrap().id, "disk GUID changed");
}

// ───────────────────────────── 3. whole-disk filesystem ─────────────────────────────

#[test]
fn whole_disk_ext4_without_partition_table() {
    if !need(EXT_TOOLS) {
        return;
    }
    let t = tempdir("whole");
    let d = t.path();
    let fx = whole_disk(d, "whole.img", 96, "ext4", TreeSpec::new(301, 12));
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "whole", &[&fx.path], &[]).ok();
    let m = info_json(&repo, "whole");
    assert_manifest_describes(&m, 0, &fx);
    assert_eq!(manifest_partition(&m, 0, 0)["kind"], "whole-disk");
    assert!(m["disks"][0]["boot_regions"].as_array().unwrap().is_empty());
    assert_stores_used_only(&m, &repo, "whole", &[&fx]);
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 31);
    restoredisk(&repo, "whole", &[&target], &[]).ok();
    verify_restored(&fx, &target, d);
}

// ───────────────────────────── 4. loop devices ─────────────────────────────

#[test]
fn save_from_and_restore_to_loop_devices() {
    if !need(MBR_TOOLS) || !need(&["loop", "mount", "umount"]) {
        return;
    }
    let t = tempdir("loop");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        128,
        41,
        &[
            bootable(ext("ext4", 40, TreeSpec::new(401, 6))),
            extended(),
            ext("ext3", 32, TreeSpec::new(405, 3)),
            ext("ext2", 24, TreeSpec::new(406, 2)),
        ],
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 42);
    {
        let src = LoopDev::attach(&fx.path, None);
        savedisk(&repo, "from-loop", &[&src.dev], &[]).ok();
        let m = info_json(&repo, "from-loop");
        assert_eq!(m["disks"][0]["source"], src.path());
        assert_manifest_describes(&m, 0, &fx);
        let dst = LoopDev::attach(&target, None);
        restoredisk(&repo, "from-loop", &[&dst.dev], &[]).ok();
        // The kernel reads the restored table through the device too.
        let table = read_table(&dst.dev);
        assert_eq!(table.parts, fx.table.as_ref().unwrap().parts);
    }
    verify_restored(&fx, &target, d);
    // And the kernel mounts every restored filesystem and reads the same files.
    for p in &fx.parts {
        let lo = LoopDev::attach_range(&target, None, Some((p.start, p.size)));
        let mnt = d.join(format!("mnt{}", p.number));
        let mount = Mount::new(&lo.dev, &mnt, "ro");
        let mut got = tree_listing(&mount.dir);
        got.remove("lost+found");
        assert_same_tree(
            &format!("kernel mount of restored partition {}", p.number),
            p.tree.as_ref().unwrap(),
            &got,
        );
        drop(mount);
        drop(lo);
    }
}

// ───────────────────────────── 5. 4K sectors ─────────────────────────────

#[test]
fn four_k_sector_gpt_disk_and_refusal_onto_512_byte_sectors() {
    if !need(GPT_TOOLS) || !need(&["loop"]) {
        return;
    }
    let t = tempdir("4k");
    let d = t.path();
    let fx = gpt_disk(
        d,
        "4k.img",
        128,
        4096,
        51,
        &[
            raw(1, "ef02", 501),
            ext_bs("ext4", 48, 4096, TreeSpec::new(502, 6)),
            ext_bs("ext4", 40, 4096, TreeSpec::new(503, 3)),
        ],
    );
    // LBAs count 4K sectors: the first partition starts at a multiple of 4096 and the
    // table says so.
    assert_eq!(fx.table.as_ref().unwrap().sector, 4096);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 52);
    {
        let src = LoopDev::attach(&fx.path, Some(4096));
        assert_sgdisk_clean(&src.dev);
        savedisk(&repo, "four-k", &[&src.dev], &[]).ok();
        let m = info_json(&repo, "four-k");
        assert_manifest_describes(&m, 0, &fx);
        let dst = LoopDev::attach(&target, Some(4096));
        restoredisk(&repo, "four-k", &[&dst.dev], &[]).ok();
        assert_sgdisk_clean(&dst.dev);
        let table = read_table(&dst.dev);
        assert_eq!(table.sector, 4096);
        assert_eq!(table.parts, fx.table.as_ref().unwrap().parts);
    }
    verify_restored(&fx, &target, d);

    // A 512-byte-sector target is refused: its LBAs would point elsewhere.
    let t512 = d.join("t512.img");
    garbage_file(&t512, fx.size, 53);
    let lo = LoopDev::attach(&t512, Some(512));
    let before = sha_all(&lo.dev);
    restoredisk(&repo, "four-k", &[&lo.dev], &[])
        .code(3)
        .says(&[lo.path(), "4096", "512", "nothing was written"]);
    assert_eq!(
        sha_all(&lo.dev),
        before,
        "a refused restore wrote to the target"
    );
}

// ───────────────────────────── 6. saveparts / restoreparts ─────────────────────────────

#[test]
fn saveparts_and_restoreparts_touch_only_that_partition() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("parts");
    let d = t.path();
    let specs = |seed: u64, filled: bool| {
        if filled {
            vec![
                ext("ext4", 24, TreeSpec::new(seed + 1, 2)),
                ext("ext4", 32, TreeSpec::new(seed + 2, 5)),
                ext("ext2", 24, TreeSpec::new(seed + 3, 2)),
            ]
        } else {
            vec![
                raw(24, "83", seed + 1),
                raw(32, "83", seed + 2),
                raw(24, "83", seed + 3),
            ]
        }
    };
    let fx = mbr_disk(d, "src.img", 96, 61, &specs(610, true));
    let dst = mbr_disk(d, "dst.img", 96, 62, &specs(620, false));
    let p2 = fx.part(2).clone();
    let tp2 = dst.part(2).clone();
    assert_eq!((tp2.start, tp2.size), (p2.start, p2.size));
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let r = lifeboat(&[
        "saveparts",
        "--repo",
        s(&repo),
        "--image",
        "p2",
        "--disk",
        s(&fx.path),
        "--part",
        "2",
        "--json",
    ])
    .ok();
    let ev = check_events(&r, &["saveparts"]);
    let started: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "partition_start")
        .collect();
    assert_eq!(
        started.len(),
        1,
        "only partition 2 is streamed: {started:?}"
    );
    assert_eq!(started[0]["partition"], 2);
    let m = info_json(&repo, "p2");
    assert_eq!(m["kind"], "parts");
    assert_eq!(manifest_partition(&m, 0, 2)["saved"], true);
    assert_eq!(manifest_partition(&m, 0, 1)["saved"], false);
    assert_eq!(manifest_partition(&m, 0, 3)["saved"], false);
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    assert_eq!(
        stored, p2.used_bytes,
        "saveparts stores partition 2's used blocks only"
    );
    lifeboat(&["info", "--repo", s(&repo), "--image", "p2"])
        .ok()
        .says(&["not saved"]);

    let outside = |p: &Path| {
        (
            sha_range(p, 0, tp2.start),
            sha_range(p, tp2.start + tp2.size, dst.size - tp2.start - tp2.size),
        )
    };
    let before = outside(&dst.path);
    let whole_before = sha_all(&dst.path);
    // restoredisk of a partitions image is refused, nothing written.
    let r = restoredisk(&repo, "p2", &[&dst.path], &[]).says(&["restoreparts"]);
    assert_ne!(r.code, 0);
    assert_eq!(sha_all(&dst.path), whole_before);

    let r = lifeboat(&[
        "restoreparts",
        "--repo",
        s(&repo),
        "--image",
        "p2",
        "--disk",
        s(&dst.path),
        "--part",
        "2",
        "--yes",
        "--json",
    ])
    .ok();
    check_events(&r, &["verify", "restoreparts"]);
    verify_part(&dst.path, tp2.start, &p2, d, "restoreparts");
    assert_eq!(
        outside(&dst.path),
        before,
        "restoreparts wrote outside partition 2"
    );
}

// ───────────────────────────── 7. several disks ─────────────────────────────

#[test]
fn multi_disk_image_restores_in_order() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("multi");
    let d = t.path();
    let a = mbr_disk(
        d,
        "a.img",
        64,
        71,
        &[
            bootable(ext("ext4", 24, TreeSpec::new(701, 3))),
            ext("ext3", 24, TreeSpec::new(702, 2)),
        ],
    );
    let b = whole_disk(d, "b.img", 48, "ext4", TreeSpec::new(703, 4));
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "pair", &[&a.path, &b.path], &[]).ok();
    let m = info_json(&repo, "pair");
    assert_eq!(m["disks"].as_array().unwrap().len(), 2);
    assert_eq!(m["disks"][0]["source"], s(&a.path));
    assert_eq!(m["disks"][1]["source"], s(&b.path));
    assert_manifest_describes(&m, 0, &a);
    assert_manifest_describes(&m, 1, &b);
    assert_stores_used_only(&m, &repo, "pair", &[&a, &b]);
    lifeboat(&["check", "--repo", s(&repo), "--image", "pair"]).ok();

    let ta = d.join("ta.img");
    let tb = d.join("tb.img");
    garbage_file(&ta, a.size, 72);
    garbage_file(&tb, b.size, 73);
    let (ha, hb) = (sha_all(&ta), sha_all(&tb));
    // In the wrong order the 64 MiB disk does not fit the 48 MiB target: refused, and
    // neither target is touched.
    restoredisk(&repo, "pair", &[&tb, &ta], &[])
        .code(3)
        .says(&[s(&tb), "does not fit"]);
    assert_eq!((sha_all(&ta), sha_all(&tb)), (ha.clone(), hb));
    // One target for two disks: refused.
    let r = restoredisk(&repo, "pair", &[&ta], &[]).says(&["2 disk(s)"]);
    assert_ne!(r.code, 0);
    assert_eq!(sha_all(&ta), ha);

    restoredisk(&repo, "pair", &[&ta, &tb], &[]).ok();
    verify_restored(&a, &ta, d);
    verify_restored(&b, &tb, d);
}

// ───────────────────────────── 8. split volumes ─────────────────────────────

#[test]
fn split_image_volumes_and_a_missing_volume() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("split");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        64,
        81,
        &[ext("ext4", 40, TreeSpec::new(801, 6)), raw(2, "da", 802)],
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    // One thread each way: the single-threaded pipeline is exercised here.
    savedisk(
        &repo,
        "split",
        &[&fx.path],
        &["--split-size", "1M", "--threads", "1"],
    )
    .ok();
    let dir = repo.join("split");
    let mut vols: Vec<(String, u64)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("data.lbi."))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    vols.sort();
    assert!(vols.len() >= 5, "expected several volumes: {vols:?}");
    for (i, (name, len)) in vols.iter().enumerate() {
        assert_eq!(name, &format!("data.lbi.{i:03}"));
        assert!(*len <= MIB, "{name} has {len} bytes, above the split size");
        if i + 1 < vols.len() {
            assert_eq!(*len, MIB, "{name}: only the last volume may be short");
        }
    }
    let m = info_json(&repo, "split");
    assert_eq!(m["files"].as_array().unwrap().len(), vols.len());
    lifeboat(&["check", "--repo", s(&repo), "--image", "split"])
        .ok()
        .says(&[&format!("{} file(s) verified", vols.len())]);
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 82);
    restoredisk(&repo, "split", &[&target], &["--threads", "1"]).ok();
    verify_restored(&fx, &target, d);

    // A volume disappears: check and restore say which, with exit 4; nothing is written.
    fs::remove_file(dir.join("data.lbi.002")).unwrap();
    lifeboat(&["check", "--repo", s(&repo), "--image", "split"])
        .code(4)
        .says(&["data.lbi.002"]);
    garbage_file(&target, fx.size, 83);
    let before = sha_all(&target);
    restoredisk(&repo, "split", &[&target], &[])
        .code(4)
        .says(&["data.lbi.002"]);
    assert_eq!(sha_all(&target), before);
    let l = list_json(&repo);
    assert_eq!(l[0]["complete"], false);
    assert!(l[0]["reason"].as_str().unwrap().contains("data.lbi.002"));
    assert_eq!(list_status(&repo, "split"), "INCOMPLETE");
}

// ───────────────────────────── 11. --json ─────────────────────────────

/// Checks an NDJSON event stream against docs/EVENTS.md: `ops` phases, each start →
/// (partition_start → progress* → partition_done | progress | warning)* → done, the first
/// line a start (after a restore's `plan`), progress monotonic within a phase, bounded by and ending at its start's
/// total, then one `result` line. Returns the events.
fn check_events(r: &Run, ops: &[&str]) -> Vec<Value> {
    let ev = r.json_lines();
    assert!(!ev.is_empty(), "no JSON lines");
    let kind = |v: &Value| {
        v["event"]
            .as_str()
            .unwrap_or_else(|| panic!("no event field: {v}"))
            .to_string()
    };
    // A restore starts with its plan and then says how it will read the image
    // (docs/EVENTS.md), before the first phase.
    let mut i = 0;
    for first in ["plan", "read_plan"] {
        if i < ev.len() && kind(&ev[i]) == first {
            i += 1;
        }
    }
    // Warnings, and notes (the image digest `check` reports), carry a message each.
    let skip_warnings = |i: &mut usize| {
        while *i < ev.len() && matches!(kind(&ev[*i]).as_str(), "warning" | "note") {
            assert!(ev[*i]["message"].is_string());
            *i += 1;
        }
    };
    for (k, op) in ops.iter().enumerate() {
        // Warnings come after the first start (docs/EVENTS.md), maybe between phases.
        if k > 0 {
            skip_warnings(&mut i);
        }
        assert_eq!(kind(&ev[i]), "start", "event {i}: {:?}", &ev[i]);
        assert_eq!(ev[i]["operation"], *op, "{}", ev[i]);
        let total = ev[i]["bytes_total"].as_u64().unwrap();
        i += 1;
        let mut last = 0u64;
        let mut open: Option<u64> = None;
        loop {
            let e = &ev[i];
            match kind(e).as_str() {
                "progress" => {
                    let done = e["bytes_done"].as_u64().unwrap();
                    assert!(done >= last, "progress went back: {last} → {done}");
                    assert_eq!(e["bytes_total"].as_u64().unwrap(), total, "{e}");
                    assert!(done <= total, "progress {done} beyond total {total}");
                    last = done;
                }
                "partition_start" => {
                    assert!(open.is_none(), "partition_start inside a partition: {e}");
                    open = Some(e["partition"].as_u64().unwrap());
                    assert!(e["mode"] == "used-blocks" || e["mode"] == "raw", "{e}");
                }
                "partition_done" => {
                    assert_eq!(open.take(), e["partition"].as_u64(), "unmatched {e}");
                }
                "warning" => assert!(e["message"].is_string()),
                "done" => {
                    assert!(open.is_none(), "done inside a partition");
                    assert_eq!(e["operation"], *op);
                    assert_eq!(
                        e["bytes_done"].as_u64().unwrap(),
                        last,
                        "done ≠ last progress"
                    );
                    assert_eq!(last, total, "{op}: finished at {last} of {total} bytes");
                    i += 1;
                    break;
                }
                other => panic!("unexpected event {other} inside {op}: {e}"),
            }
            i += 1;
        }
    }
    skip_warnings(&mut i);
    assert_eq!(kind(&ev[i]), "result", "{:?}", &ev[i]);
    assert_eq!(
        i + 1,
        ev.len(),
        "lines after the result: {:?}",
        &ev[i + 1..]
    );
    ev
}

#[test]
fn json_event_streams() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("json");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        96,
        111,
        &[
            ext("ext4", 40, TreeSpec::new(1101, 12)),
            extended(),
            ext("ext2", 24, TreeSpec::new(1105, 4)),
            raw(2, "da", 1106),
        ],
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let r = savedisk(&repo, "j", &[&fx.path], &["--json"]).ok();
    assert!(
        r.stderr.trim().is_empty(),
        "--json printed on stderr: {}",
        r.stderr
    );
    let ev = check_events(&r, &["savedisk"]);
    let starts: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "partition_start")
        .map(|e| e["partition"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [1, 5, 6], "partitions in disk order");
    // The raw partition is announced as a warning event, not on stderr.
    assert!(
        ev.iter()
            .any(|e| e["event"] == "warning"
                && e["message"].as_str().unwrap().contains("partition 6")),
        "no warning about the raw partition 6: {ev:?}"
    );
    let part_bytes: u64 = ev
        .iter()
        .filter(|e| e["event"] == "partition_done")
        .map(|e| e["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        part_bytes,
        fx.part(1).used_bytes + fx.part(5).used_bytes + fx.part(6).size
    );
    assert!(ev.iter().filter(|e| e["event"] == "progress").count() >= 1);

    let r = lifeboat(&["check", "--json", "--repo", s(&repo), "--image", "j"]).ok();
    check_events(&r, &["check"]);
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 112);
    let r = restoredisk(&repo, "j", &[&target], &["--json"]).ok();
    check_events(&r, &["verify", "restoredisk"]);
    verify_restored(&fx, &target, d);

    // Errors: every line is still JSON and the last one is an `error` event.
    let small = d.join("small.img");
    // Half the source: its last partition does not fit (a smaller disk that holds every
    // partition is accepted: tests/resize.rs).
    garbage_file(&small, fx.size / 2, 113);
    for (r, code) in [
        (restoredisk(&repo, "j", &[&small], &["--json"]), 3),
        (restoredisk(&repo, "nope", &[&small], &["--json"]), 1),
        (
            lifeboat(&["check", "--json", "--repo", s(&repo), "--image", "nope"]),
            1,
        ),
    ] {
        let r = r.code(code);
        let ev = r.json_lines();
        let last = ev.last().expect("an error line");
        assert_eq!(last["event"], "error", "{:?}", r);
        assert!(!last["message"].as_str().unwrap().is_empty());
        assert_eq!(
            ev.iter().filter(|e| e["event"] == "error").count(),
            1,
            "one error line: {ev:?}"
        );
        assert!(!ev
            .iter()
            .any(|e| e["event"] == "done" || e["event"] == "result"));
    }
}

// ───────────────────────────── 12. kill -9 ─────────────────────────────

/// Starts `savedisk --json` of `disk` and returns once it is mid-way: a progress event
/// says 0 < done < total and the first volume file has bytes. The reader thread returns
/// every event. Level 19 makes compression slow, so the window is wide on any machine.
fn save_until_mid_way(
    repo: &Path,
    image: &str,
    disk: &Path,
) -> (
    std::process::Child,
    std::thread::JoinHandle<Vec<Value>>,
    u64,
    u64,
) {
    let mut child = Command::new(bin())
        .args([
            "savedisk",
            "--json",
            "--level",
            "19",
            "--repo",
            s(repo),
            "--image",
            image,
            "--disk",
            s(disk),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            let _ = tx.send(v.clone());
            all.push(v);
        }
        all
    });
    let vol = repo.join(image).join("data.lbi.000");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut progress = None;
    loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("savedisk made no progress in 120 s");
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "savedisk finished before it could be stopped"
        );
        while let Ok(v) = rx.try_recv() {
            if v["event"] == "progress" {
                progress = Some((
                    v["bytes_done"].as_u64().unwrap(),
                    v["bytes_total"].as_u64().unwrap(),
                ));
            }
        }
        let written = fs::metadata(&vol).map(|m| m.len()).unwrap_or(0);
        if let Some((done, total)) = progress {
            if done > 0 && done < total && written > 0 {
                return (child, reader, done, total);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[allow(unsafe_code)] // kill(2) with SIGINT: std::process::Child::kill sends only SIGKILL
fn killed_save_leaves_an_incomplete_image_that_is_refused_and_deletable() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("kill");
    let d = t.path();
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    // A complete image that must survive `delete --incomplete`.
    let small = mbr_disk(
        d,
        "small.img",
        32,
        121,
        &[ext("ext4", 24, TreeSpec::new(1201, 1))],
    );
    savedisk(&repo, "keep", &[&small.path], &[]).ok();
    // A disk with about 200 MiB of used, incompressible blocks.
    let big = whole_disk(d, "big.img", 280, "ext4", TreeSpec::new(1202, 200));
    assert!(big.part(0).used_bytes > 200 * MIB);

    // Ctrl-C (SIGINT) mid-way: cancelled, exit 130, the image is left incomplete.
    let (child, reader, done, total) = save_until_mid_way(&repo, "interrupted", &big.path);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let events: Vec<Value> = reader.join().unwrap();
    eprintln!("interrupted savedisk at {done} of {total} bytes");
    assert_eq!(out.status.code(), Some(130), "SIGINT exit code");
    let err = events.last().expect("an error event after SIGINT");
    assert_eq!(err["event"], "error", "{events:?}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("cancelled") && msg.contains("delete --incomplete"),
        "{msg}"
    );

    // kill -9 mid-way: no chance to clean up at all.
    let (mut child, reader, done, total) = save_until_mid_way(&repo, "big", &big.path);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let st = child.wait().unwrap();
    assert!(!st.success());
    reader.join().unwrap();
    eprintln!("killed savedisk at {done} of {total} bytes");

    let l = list_json(&repo);
    let entry = |name: &str| {
        l.iter()
            .find(|e| e["image"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {l:?}"))
            .clone()
    };
    for name in ["big", "interrupted"] {
        assert_eq!(entry(name)["complete"], false, "{name}");
        assert!(entry(name)["bytes"].as_u64().unwrap() > 0, "{name}");
    }
    assert_eq!(entry("keep")["complete"], true);
    assert_eq!(list_status(&repo, "big"), "INCOMPLETE");
    assert_eq!(list_status(&repo, "interrupted"), "INCOMPLETE");
    assert_eq!(list_status(&repo, "keep"), "complete");

    let target = d.join("target.img");
    garbage_file(&target, big.size, 122);
    let before = sha_all(&target);
    restoredisk(&repo, "big", &[&target], &[])
        .code(4)
        .says(&["big", "incomplete"]);
    assert_eq!(
        sha_all(&target),
        before,
        "restore of an incomplete image wrote"
    );
    lifeboat(&["check", "--repo", s(&repo), "--image", "big"]).code(4);

    lifeboat(&["delete", "--repo", s(&repo), "--incomplete", "--yes"])
        .ok()
        .says(&["deleted 2 incomplete image(s)", "big", "interrupted"]);
    assert!(!repo.join("interrupted").exists());
    assert!(
        !repo.join("big").exists(),
        "the incomplete image is still there"
    );
    let l = list_json(&repo);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["image"], "keep");
    lifeboat(&["check", "--repo", s(&repo), "--image", "keep"]).ok();
}

// ───────────────────────────── the checks themselves ─────────────────────────────

/// The verification used by every test above must catch a single wrong byte in the boot
/// gap, in an EBR, and in a file's data block; otherwise the other tests prove nothing.
#[test]
fn verification_catches_single_wrong_bytes() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("meta");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        80,
        131,
        &[
            bootable(ext("ext4", 32, TreeSpec::new(1301, 3))),
            extended(),
            ext("ext2", 24, TreeSpec::new(1305, 1)),
        ],
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "meta", &[&fx.path], &[]).ok();
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 132);
    restoredisk(&repo, "meta", &[&target], &[]).ok();
    verify_restored(&fx, &target, d);

    // A data block of /big.bin in partition 1.
    let p1 = fx.part(1);
    let img = d.join("p1.img");
    extract(&target, p1.start, p1.size, &img);
    let out = sh(
        "debugfs",
        &[
            std::ffi::OsStr::new("-R"),
            "bmap /big.bin 100".as_ref(),
            img.as_os_str(),
        ],
    );
    let block: u64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bmap said {out:?}"));
    let bs: u64 = dumpe2fs(&img)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Block size:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    fs::remove_file(&img).unwrap();
    let ebr = ebr_offsets(&fx.path, 512)[0];
    for (what, off) in [
        ("boot gap", 512 + 4321),
        ("boot code", 17),
        ("EBR", ebr + 100),
        ("file data block", p1.start + block * bs + 123),
    ] {
        let b = read_range(&target, off, 1)[0];
        write_at(&target, off, &[b ^ 1]);
        let caught = std::panic::catch_unwind(|| verify_restored(&fx, &target, d)).is_err();
        write_at(&target, off, &[b]);
        assert!(
            caught,
            "one wrong byte in the {what} (offset {off}) went unnoticed"
        );
    }
    verify_restored(&fx, &target, d);
}

// ───────────────────────────── ext feature variants ─────────────────────────────

/// Filesystems with the features that change where metadata lives or how blocks are
/// counted: bigalloc clusters, meta_bg, no flex_bg with the old gdt_csum, no journal and
/// 32-bit descriptors, sparse_super2, 2 KiB blocks. (Not inline_data: debugfs 1.47.0's
/// rdump writes inline files as 60-byte blobs, so the file comparison cannot be trusted.)
#[test]
fn ext_feature_variants_round_trip() {
    if !need(GPT_TOOLS) {
        return;
    }
    let t = tempdir("features");
    let d = t.path();
    let tree = |seed| TreeSpec::new(seed, 2);
    let fx = gpt_disk(
        d,
        "feat.img",
        200,
        512,
        141,
        &[
            ext_opts("ext4", 32, &["-O", "bigalloc", "-C", "16384"], tree(1401)),
            ext_opts("ext4", 24, &["-O", "meta_bg,^resize_inode"], tree(1402)),
            ext_opts(
                "ext4",
                24,
                &["-O", "^flex_bg,^metadata_csum,uninit_bg"],
                tree(1403),
            ),
            ext_opts("ext4", 24, &["-O", "^has_journal,^64bit"], tree(1404)),
            ext_opts("ext4", 24, &["-O", "sparse_super2"], tree(1405)),
            ext_bs("ext2", 24, 2048, tree(1407)),
        ],
    );
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "feat", &[&fx.path], &[]).ok();
    let m = info_json(&repo, "feat");
    assert_manifest_describes(&m, 0, &fx);
    assert_stores_used_only(&m, &repo, "feat", &[&fx]);
    let target = d.join("target.img");
    garbage_file(&target, fx.size, 142);
    restoredisk(&repo, "feat", &[&target], &[]).ok();
    verify_restored(&fx, &target, d);
}

/// The rule every test relies on: a missing tool skips locally, fails in CI.
#[test]
fn a_missing_tool_fails_in_ci_and_skips_locally() {
    assert!(find_tool("lifeboat-no-such-tool").is_none());
    assert!(find_tool("sh").is_some());
    assert!(!unavailable_in(
        false,
        "the tool `lifeboat-no-such-tool` is not installed"
    ));
    let r = std::panic::catch_unwind(|| unavailable_in(true, "the tool `x` is not installed"));
    assert!(
        r.is_err(),
        "CI=true must turn a missing tool into a failure"
    );
}

/// An image saved before format 3 (`test_data/format-1.2-image.tar.zst`, made by the
/// committed generator with the format-1.2 writer: two disks, index entries without chunk
/// digests) is still read by everything: info (its digest), check against the digest noted
/// then, extract of each disk (byte for byte the source disks), restoredisk of both disks onto
/// garbage-filled targets (e2fsck clean); extract or mount with `--digest` say why they cannot
/// prove it from the index.
#[test]
fn an_image_saved_before_format_3_still_reads() {
    if !need(&["tar", "zstd", "e2fsck"]) {
        return;
    }
    const DIGEST: &str = "157398b67e698c03bed94f8b331f2136ce8456bb037ed7da49cf6762471b0579";
    const DISKS: [(u64, &str); 2] = [
        (
            24,
            "198b52c05390e8520516e08ab79263ce041395f9f8e1777491d8926654914e11",
        ),
        (
            8,
            "4b2ecadad216e0a4a6d4c98e654c55dd81ec3ec78d88085b78b2e8ebe9dd6644",
        ),
    ];
    let t = tempdir("fmt12");
    let repo = t.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    let archive =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test_data/format-1.2-image.tar.zst");
    run_ok(
        tool("tar")
            .arg("-C")
            .arg(&repo)
            .args(["-I", "zstd", "-xf"])
            .arg(&archive),
    );
    let (r, i) = (s(&repo), "fmt12");
    let info = lifeboat(&["info", "--repo", r, "--image", i, "--json"]).code(0);
    assert_eq!(info.json_lines()[0]["digest"], DIGEST);
    lifeboat(&["check", "--repo", r, "--image", i, "--digest", DIGEST])
        .code(0)
        .says(&["expected"]);
    for (n, (_, sha)) in DISKS.iter().enumerate() {
        let out = t.path().join(format!("disk{n}.img"));
        let d = n.to_string();
        lifeboat(&[
            "extract",
            "--repo",
            r,
            "--image",
            i,
            "--disk",
            &d,
            "--out",
            s(&out),
        ])
        .code(0);
        assert_eq!(sha_all(&out), *sha, "extract of disk {n}");
    }
    let out = t.path().join("refused.img");
    lifeboat(&[
        "extract",
        "--repo",
        r,
        "--image",
        i,
        "--out",
        s(&out),
        "--digest",
        DIGEST,
    ])
    .code(1)
    .says(&["before image format 3", "lifeboat check --digest"]);
    assert!(!out.exists());
    let targets: Vec<_> = DISKS
        .iter()
        .enumerate()
        .map(|(n, (mib, _))| {
            let p = t.path().join(format!("target{n}.img"));
            garbage_file(&p, mib * MIB, 70 + n as u64);
            p
        })
        .collect();
    lifeboat(&[
        "restoredisk",
        "--yes",
        "--repo",
        r,
        "--image",
        i,
        "--disk",
        s(&targets[0]),
        "--disk",
        s(&targets[1]),
    ])
    .code(0);
    for (n, (mib, _)) in DISKS.iter().enumerate() {
        let fs_img = t.path().join(format!("fs{n}.img"));
        extract(&targets[n], MIB, (mib - 1) * MIB, &fs_img);
        assert_fsck_clean(&fs_img, &format!("restored disk {n}"));
    }
}
