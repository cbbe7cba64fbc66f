//! End-to-end tests of VMware ESXi disks with the `lifeboat` binary: real VMFS5 and VMFS6
//! volumes made by ESXi (the test data of the pinned `dissect.vmfs` source distribution,
//! downloaded at test time into a cache outside the repository) are placed into GPT disks,
//! saved, restored onto targets full of random garbage, and compared through the oracle
//! (vmfs-tools / vmfs6-tools FUSE mounts: same files, same content hashes), byte by byte for
//! the LVM and filesystem headers, and with fsck.fat / mtools for FAT boot banks.
//!
//! A missing download or oracle skips loudly, and fails when CI=true.

mod common;
#[path = "../crates/fs-vmfs/tests/common/fixture.rs"]
mod fixture;
#[path = "../crates/fs-vmfs/tests/common/oracle.rs"]
mod oracle;

use common::*;
use oracle::Gen;
use std::path::Path;

const VMFS_GUID: &str = "AA31E02A-400F-11DB-9590-000C2911D1B8";
const DIAG_GUID: &str = "9D275380-40AD-11DB-BF97-000C2911D1B8";
const OSDATA_GUID: &str = "4EB2EA39-7855-4790-A79E-FAE495E21F8D";
const SECTOR: u64 = 512;

/// Copies `src` into `disk` at byte `off`, leaving holes where `src` has zeros.
fn place(src: &Path, disk: &Path, off: u64) {
    sh(
        "dd",
        &[
            format!("if={}", s(src)),
            format!("of={}", s(disk)),
            "bs=1M".into(),
            format!("seek={off}"),
            "oflag=seek_bytes".into(),
            "conv=notrunc,sparse".into(),
            "status=none".into(),
        ],
    );
}

/// What a partition is filled with.
enum Content<'a> {
    Vmfs(&'a Path),
    Random(u64),
    Fat(&'a Path),
}

struct Part {
    number: u32,
    start: u64,
    size: u64,
}

/// Builds a GPT disk with the partitions (1 MiB aligned, in order) and fills them.
fn build_disk(disk: &Path, parts: &mut [(u32, u64, &str, Content)]) -> Vec<Part> {
    let mut start = MIB;
    let mut layout = Vec::new();
    for (n, size, _, _) in parts.iter() {
        layout.push((*n, start, *size));
        start += size.div_ceil(MIB) * MIB;
    }
    let total = start + MIB;
    sparse_file(disk, total);
    let mut args: Vec<String> = Vec::new();
    for ((n, size, guid, _), (_, st, _)) in parts.iter().zip(&layout) {
        args.push(format!(
            "-n={n}:{}:{}",
            st / SECTOR,
            (st + size) / SECTOR - 1
        ));
        args.push(format!("-t={n}:{guid}"));
    }
    args.push(s(disk).to_string());
    sh("sgdisk", &args);
    sh("sgdisk", &["-v", s(disk)]);
    let mut out = Vec::new();
    for ((n, size, _, content), (_, st, _)) in parts.iter_mut().zip(&layout) {
        match content {
            Content::Vmfs(p) | Content::Fat(p) => place(p, disk, *st),
            Content::Random(seed) => fill_random(disk, *st, *size, *seed),
        }
        out.push(Part {
            number: *n,
            start: *st,
            size: *size,
        });
    }
    out
}

/// Size of the stored image files.
fn stored_files(repo: &Path, image: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![repo.join(image)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len();
            }
        }
    }
    total
}

/// The oracle's view of a VMFS partition inside a disk (extracted to `work/name`).
fn vmfs_tree(disk: &Path, start: u64, size: u64, g: Gen, work: &Path, name: &str) -> oracle::Tree {
    let part = work.join(format!("{name}.bin"));
    extract(disk, start, size, &part);
    let m = oracle::Mount::new(&part, g, work, name);
    let t = oracle::tree(&m.dir);
    drop(m);
    std::fs::remove_file(&part).ok();
    t
}

fn need_all() -> bool {
    need(&["sgdisk", "dd", "mkfs.vfat", "fsck.fat", "mcopy"]) && fixture::need_oracle()
}

#[test]
fn vmfs5_and_vmfs6_datastores_round_trip_through_save_and_restore() {
    if !need_all() {
        return;
    }
    for (name, fs_type) in [("vmfs5", "vmfs5"), ("vmfs6", "vmfs6")] {
        let Some(img) = fixture::image(name) else {
            return;
        };
        let g = Gen::of(fs_type);
        let size = dev_size(&img);
        let tmp = tempfile::tempdir().unwrap();
        let disk = tmp.path().join("disk.img");
        let parts = build_disk(&disk, &mut [(1, size, VMFS_GUID, Content::Vmfs(&img))]);
        let p = &parts[0];
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        savedisk(&repo, "esx", &[&disk], &[]).ok();
        let m = info_json(&repo, "esx");
        let j = manifest_partition(&m, 0, 1);
        assert_eq!(j["filesystem"], fs_type, "{name}: {j:#}");
        assert_eq!(j["mode"], "used-blocks", "{name}: {j:#}");
        assert_eq!(j["label"], name, "{name}: {j:#}");
        assert_eq!(j["type_name"], "VMware VMFS", "{name}: {j:#}");
        let used = j["used_bytes"].as_u64().unwrap();
        assert!(used < size, "{name}: used {used} of {size}");
        let nfiles = j["files"].as_u64().expect("the VMFS scanner counts files");
        assert!(nfiles > 0, "{name}: {j:#}");
        let text = lifeboat(&["info", "--repo", s(&repo), "--image", "esx"])
            .ok()
            .stdout;
        assert!(
            text.contains(&format!("files {nfiles}")) && text.contains(fs_type),
            "{name}: info does not show the VMFS version and file count:\n{text}"
        );
        let files = stored_files(&repo, "esx");
        eprintln!(
            "{name}: volume {size} bytes, used {used} ({:.1} %), image files {files} bytes \
             (1:{:.0} of the volume)",
            used as f64 * 100.0 / size as f64,
            size as f64 / files as f64
        );
        assert!(
            files * 20 < size,
            "{name}: image holds {files} bytes for {size}"
        );

        let target = tmp.path().join("target.img");
        garbage_file(&target, dev_size(&disk), 5);
        restoredisk(&repo, "esx", &[&target], &[]).ok();
        sh("sgdisk", &["-v", s(&target)]);
        // LVM header and tables, and the filesystem descriptor, byte-identical.
        let lvm_end = 17 * MIB;
        assert_eq!(
            sha_range(&disk, p.start, lvm_end),
            sha_range(&target, p.start, lvm_end),
            "{name}: LVM area differs"
        );
        let fsd = p.start + lvm_end + 2 * MIB;
        assert_eq!(
            sha_range(&disk, fsd, 64 * KIB),
            sha_range(&target, fsd, 64 * KIB),
            "{name}: filesystem descriptor differs"
        );
        let want = vmfs_tree(&disk, p.start, p.size, g, tmp.path(), "want");
        let got = vmfs_tree(&target, p.start, p.size, g, tmp.path(), "got");
        assert!(
            want.contains_key("bigger") && want.len() > 100,
            "{name}: {want:?}"
        );
        assert_eq!(
            want, got,
            "{name}: restored files differ through the oracle"
        );
        assert!(
            nfiles as usize <= want.len() + 1,
            "{name}: {nfiles} files counted, the oracle lists {} entries",
            want.len()
        );
        eprintln!(
            "{name}: {} entries identical through the oracle, {nfiles} files counted",
            want.len()
        );
    }
}

fn fat_bank(path: &Path, label: &str, seed: u64, work: &Path) {
    sparse_file(path, 8 * MIB);
    sh("mkfs.vfat", &["-F", "16", "-s", "2", "-n", label, s(path)]);
    let tree = work.join(format!("tree-{label}"));
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let mut rng = Rng::new(seed);
    for i in 0..6 {
        std::fs::write(
            tree.join(format!("mod{i}.tgz")),
            rng.bytes(100_000 + i * 7_000),
        )
        .unwrap();
    }
    std::fs::write(
        tree.join("sub/boot.cfg"),
        b"kernel=b.b00\nmodules=a.b00 --- b.b00\n",
    )
    .unwrap();
    let mut args: Vec<String> = vec!["-s".into(), "-i".into(), s(path).into()];
    for e in std::fs::read_dir(&tree).unwrap() {
        args.push(s(&e.unwrap().path()).into());
    }
    args.push("::/".into());
    sh("mcopy", &args);
}

/// Every file of a FAT partition inside a disk, with its SHA-256 (through mtools).
fn fat_files(disk: &Path, start: u64, size: u64, work: &Path, name: &str) -> Vec<(String, String)> {
    let part = work.join(format!("{name}.fat"));
    extract(disk, start, size, &part);
    let out = sh("fsck.fat", &["-n", s(&part)]);
    assert!(out.contains("files"), "{name}: fsck.fat -n: {out}");
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    sh("mcopy", &["-s", "-n", "-i", s(&part), "::/", s(&dir)]);
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&dir).unwrap().display().to_string();
                files.push((rel, sha_all(&p)));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn esxi_like_gpt_disk_round_trips() {
    if !need_all() {
        return;
    }
    let Some(img) = fixture::image("vmfs6") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (boot, alt) = (w.join("bootbank.img"), w.join("altbootbank.img"));
    fat_bank(&boot, "BOOTBANK1", 1, w);
    fat_bank(&alt, "BOOTBANK2", 2, w);
    let disk = w.join("esxi.img");
    let vmfs_size = dev_size(&img);
    let parts = build_disk(
        &disk,
        &mut [
            (
                5,
                8 * MIB,
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
                Content::Fat(&boot),
            ),
            (
                6,
                8 * MIB,
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
                Content::Fat(&alt),
            ),
            (7, 6 * MIB, OSDATA_GUID, Content::Random(7)),
            (9, 4 * MIB, DIAG_GUID, Content::Random(9)),
            (8, vmfs_size, VMFS_GUID, Content::Vmfs(&img)),
        ],
    );
    let repo = w.join("repo");
    std::fs::create_dir(&repo).unwrap();
    savedisk(&repo, "esxi", &[&disk], &[]).ok();
    let m = info_json(&repo, "esxi");
    // The boot banks are whatever the FAT scanner makes of them; the rest is fixed.
    for (n, mode, type_name) in [
        (7, "raw", "VMware OSDATA (VMFS-L)"),
        (9, "raw", "VMware Diagnostic"),
        (8, "used-blocks", "VMware VMFS"),
    ] {
        let j = manifest_partition(&m, 0, n);
        assert_eq!(j["mode"], mode, "partition {n}: {j:#}");
        assert_eq!(j["type_name"], type_name, "partition {n}: {j:#}");
    }
    assert_eq!(manifest_partition(&m, 0, 8)["filesystem"], "vmfs6");
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    let files = stored_files(&repo, "esxi");
    let size = dev_size(&disk);
    eprintln!(
        "esxi disk: {size} bytes, {stored} stored, image files {files} bytes (1:{:.0})",
        size as f64 / files as f64
    );
    assert!(
        files * 20 < size,
        "image holds {files} bytes for a {size}-byte disk"
    );

    let target = w.join("target.img");
    garbage_file(&target, size, 11);
    restoredisk(&repo, "esxi", &[&target], &[]).ok();
    sh("sgdisk", &["-v", s(&target)]);
    for p in &parts {
        match p.number {
            5 | 6 => {
                let a = fat_files(&disk, p.start, p.size, w, &format!("want{}", p.number));
                let b = fat_files(&target, p.start, p.size, w, &format!("got{}", p.number));
                assert!(a.len() >= 7, "boot bank {}: {a:?}", p.number);
                assert_eq!(a, b, "boot bank {} differs", p.number);
            }
            7 | 9 => assert_eq!(
                sha_range(&disk, p.start, p.size),
                sha_range(&target, p.start, p.size),
                "raw partition {} differs",
                p.number
            ),
            _ => {
                let a = vmfs_tree(&disk, p.start, p.size, Gen::V6, w, "want8");
                let b = vmfs_tree(&target, p.start, p.size, Gen::V6, w, "got8");
                assert!(a.len() > 100, "{a:?}");
                assert_eq!(a, b, "VMFS datastore differs through the oracle");
            }
        }
    }
    // The GPT itself (primary header and entries) is identical.
    assert_eq!(
        sha_range(&disk, 0, 34 * SECTOR),
        sha_range(&target, 0, 34 * SECTOR)
    );
}
