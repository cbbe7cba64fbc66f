//! End-to-end tests of the `lifeboat` binary on FAT12/16/32, exFAT and the Windows UEFI
//! layout: fixtures are made at test time by the real tools (mkfs.vfat + mtools, mkfs.exfat +
//! exfat-fuse, mkntfs + ntfscp, sfdisk, sgdisk), saved, restored onto targets full of random
//! garbage, and verified with fsck.fat / fsck.exfat / ntfsfix, file-by-file hashes (mcopy,
//! exfat-fuse, ntfscat) and byte comparisons of the boot sectors, backup boot sectors, FATs
//! and partition tables.
//!
//! Tests that need a missing tool or root skip loudly, and fail when CI=true.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const FAT_TOOLS: &[&str] = &["mkfs.vfat", "fsck.fat", "mcopy", "mmd", "mdel"];
const EXFAT_TOOLS: &[&str] = &[
    "mkfs.exfat",
    "fsck.exfat",
    "dump.exfat",
    "mount.exfat-fuse",
    "umount",
];
const NTFS_TOOLS: &[&str] = &["mkntfs", "ntfscp", "ntfscat", "ntfsls", "ntfsfix"];

// ───────────────────────────── helpers ─────────────────────────────

/// A tree of random (incompressible) files in nested directories, `kib` KiB in all.
fn make_tree(dir: &Path, seed: u64, kib: u64) -> PathBuf {
    let root = dir.join(format!("tree-{seed}"));
    let mut rng = Rng::new(seed);
    let dirs = ["", "docs", "docs/old", "bin", "data/a/b"];
    for d in dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::create_dir_all(root.join("empty")).unwrap();
    let mut left = kib * 1024;
    let mut i = 0;
    while left > 0 {
        let n = (rng.below(96 * 1024) + 1).min(left);
        let d = dirs[rng.below(dirs.len() as u64) as usize];
        fs::write(
            root.join(d).join(format!("f{i}.bin")),
            rng.bytes(n as usize),
        )
        .unwrap();
        left -= n;
        i += 1;
    }
    fs::write(root.join("zero-length"), b"").unwrap();
    root
}

/// Files (SHA-256) and directories (`None`) under `root`, by relative path.
fn listing(root: &Path) -> BTreeMap<String, Option<String>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                m.insert(rel, None);
                stack.push(p);
            } else {
                m.insert(rel, Some(sha_bytes(&fs::read(&p).unwrap())));
            }
        }
    }
    m
}

fn assert_same_listing(
    what: &str,
    want: &BTreeMap<String, Option<String>>,
    got: &BTreeMap<String, Option<String>>,
) {
    for (k, v) in want {
        match got.get(k) {
            None => panic!("{what}: {k} is missing"),
            Some(g) => assert_eq!(g, v, "{what}: {k} differs"),
        }
    }
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(extra.is_empty(), "{what}: unexpected entries {extra:?}");
    assert!(want.len() > 5, "{what}: only {} entries", want.len());
}

/// `mkfs.vfat` on a file, then populated with mtools so that a file is fragmented: small
/// files, the tree, every other small file deleted, then a file written across the holes.
fn make_fat(img: &Path, size: u64, opts: &[&str], hidden: u64, tree: &Path, seed: u64) {
    sparse_file(img, size);
    let mut c = tool("mkfs.vfat");
    c.args(opts)
        .args(["-h", &hidden.to_string(), "-n", "LIFEBOAT"])
        .arg(img);
    run_ok(&mut c);
    let i = s(img);
    let mut rng = Rng::new(seed);
    let holes = img.with_extension("holes");
    fs::create_dir_all(&holes).unwrap();
    for k in 0..10 {
        fs::write(holes.join(format!("h{k}")), rng.bytes(2000 + 3000 * k)).unwrap();
    }
    sh("mmd", &["-i", i, "::/holes"]);
    for k in 0..10 {
        sh(
            "mcopy",
            &["-i", i, s(&holes.join(format!("h{k}"))), "::/holes/"],
        );
    }
    let mut args = vec!["-s".to_string(), "-i".into(), i.into()];
    for e in fs::read_dir(tree).unwrap() {
        args.push(e.unwrap().path().to_string_lossy().into_owned());
    }
    args.push("::/".into());
    sh("mcopy", &args);
    for k in (0..10).step_by(2) {
        sh("mdel", &["-i", i, &format!("::/holes/h{k}")]);
        fs::remove_file(holes.join(format!("h{k}"))).unwrap();
    }
    let frag = tree.join("fragmented.bin");
    fs::write(&frag, rng.bytes(60_000)).unwrap();
    sh("mcopy", &["-i", i, s(&frag), "::/"]);
    fs::rename(&holes, tree.join("holes")).unwrap();
}

/// `fsck.fat -v -n`: (clean, data area offset, used clusters, cluster size).
fn fsck_fat(img: &Path) -> (bool, u64, u64, u64) {
    let out = tool("fsck.fat")
        .args(["-v", "-n"])
        .arg(img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let num = |suffix: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.contains(suffix))
            .unwrap_or_else(|| panic!("{suffix}: {text}"));
        l[..l.find(suffix).unwrap()]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Data area starts at byte "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let last = text.lines().rfind(|l| l.ends_with(" clusters")).unwrap();
    let used = last
        .split_whitespace()
        .rev()
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let clean = out.status.success() && !text.contains("Dirty") && !text.contains("wrong");
    (clean, data, used, num(" bytes per cluster"))
}

/// Every file of a FAT image, extracted with `mcopy -s`.
fn fat_listing(img: &Path, out: &Path) -> BTreeMap<String, Option<String>> {
    fs::create_dir_all(out).unwrap();
    sh("mcopy", &["-s", "-n", "-i", s(img), "::/", s(out)]);
    listing(out)
}

/// Checks a restored FAT partition against the source one (both extracted to files).
fn verify_fat(src: &Path, dst: &Path, tree: &Path, what: &str) -> (u64, u64) {
    let (clean_src, data, used, cs) = fsck_fat(src);
    assert!(clean_src, "{what}: the source is not clean");
    let (clean, data2, used2, cs2) = fsck_fat(dst);
    assert!(
        clean,
        "{what}: fsck.fat -n on the restored partition is not clean"
    );
    assert_eq!((data, used, cs), (data2, used2, cs2), "{what}");
    // Boot sector, FSInfo, backup boot sector, every FAT and the FAT12/16 root directory.
    assert_same_bytes(
        src,
        dst,
        0,
        data,
        &format!("{what}: reserved region, FATs and root"),
    );
    let got = fat_listing(dst, &dst.with_extension("files"));
    assert_same_listing(what, &listing(tree), &got);
    (data, used * cs)
}

/// A FUSE mount made by this test; unmounted on drop.
struct FuseMount(PathBuf);

impl FuseMount {
    fn exfat(dev: &Path, dir: &Path, ro: bool) -> FuseMount {
        fs::create_dir_all(dir).unwrap();
        let mut c = tool("mount.exfat-fuse");
        if ro {
            c.args(["-o", "ro"]);
        }
        run_ok(c.arg(dev).arg(dir));
        FuseMount(dir.to_path_buf())
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        sync();
        for _ in 0..20 {
            if tool("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success())
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not unmount {}", self.0.display());
    }
}

/// Copies `tree` into a mounted directory (files and directories only).
fn copy_tree(tree: &Path, to: &Path) {
    for e in fs::read_dir(tree).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            fs::create_dir_all(&t).unwrap();
            copy_tree(&p, &t);
        } else {
            fs::copy(&p, &t).unwrap();
        }
    }
}

/// `dump.exfat`: (sector size, FAT offset and length in bytes, used clusters, cluster size).
fn dump_exfat(img: &Path) -> (u64, u64, u64, u64, u64) {
    let text = sh("dump.exfat", &[img]);
    let f = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(k))
            .unwrap_or_else(|| panic!("{k}: {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    let ss = 1 << f("Sector Size Bits:");
    (
        ss,
        f("FAT Offset(sector offset):") * ss,
        f("FAT Length(sectors):") * ss,
        f("Total Clusters:") - f("Free Clusters:"),
        f("Cluster size:"),
    )
}

/// Image files are about the size of the data they hold.
fn assert_image_close_to(repo: &Path, image: &str, data_bytes: u64) {
    let files = dir_bytes(&repo.join(image));
    assert!(
        files <= data_bytes + data_bytes / 20 + MIB,
        "image files hold {files} bytes for about {data_bytes} bytes of used data"
    );
}

// ───────────────────────────── 1. FAT12 floppy ─────────────────────────────

#[test]
fn fat12_floppy_image_without_partition_table() {
    if !need(FAT_TOOLS) {
        return;
    }
    let t = tempdir("fat12");
    let d = t.path();
    let tree = make_tree(d, 1201, 700);
    let floppy = d.join("floppy.img");
    make_fat(&floppy, 1440 * KIB, &["-F", "12"], 0, &tree, 1202);
    let (clean, data, used, cs) = fsck_fat(&floppy);
    assert!(clean);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "floppy", &[&floppy], &[])
        .ok()
        .says(&["saved image floppy"]);
    let text = lifeboat(&["info", "--repo", s(&repo), "--image", "floppy"]).ok();
    text.says(&["fat12", "used-blocks"]);
    let m = info_json(&repo, "floppy");
    let p = manifest_partition(&m, 0, 0);
    assert_eq!(p["kind"], "whole-disk");
    assert_eq!(p["filesystem"], "fat12");
    assert_eq!(p["mode"], "used-blocks");
    assert_eq!(p["block_size"], cs);
    assert_eq!(
        p["used_bytes"],
        data + used * cs,
        "used bytes vs fsck.fat -v"
    );
    assert_eq!(p["label"], "LIFEBOAT");
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    assert_eq!(stored, data + used * cs);
    assert_image_close_to(&repo, "floppy", stored);

    let target = d.join("target.img");
    garbage_file(&target, 1440 * KIB, 1203);
    restoredisk(&repo, "floppy", &[&target], &[])
        .ok()
        .says(&["restored image floppy"]);
    verify_fat(&floppy, &target, &tree, "floppy");
}

// ───────────────────────────── 2. FAT16 + FAT32 on MBR ─────────────────────────────

/// An MBR disk of `size` with the given (type, size in MiB) partitions, made by sfdisk.
fn sfdisk_mbr(disk: &Path, size: u64, parts: &[(&str, u64)]) -> Vec<(u64, u64)> {
    sparse_file(disk, size);
    let mut script = "label: dos\nlabel-id: 0x1bfa7c03\n".to_string();
    for (ty, mib) in parts {
        script += &format!(",{mib}MiB,{ty}\n");
    }
    let mut c = tool("sfdisk");
    c.args(["-q", "--no-reread", "--no-tell-kernel", "--wipe", "never"])
        .arg(disk)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(
        child.wait_with_output().unwrap().status.success(),
        "sfdisk {script}"
    );
    let t = read_table(disk);
    t.parts.iter().map(|p| (p.start, p.size)).collect()
}

/// Writes the non-zero 64 KiB blocks of `part` into `disk` at `off`.
fn place(part: &Path, disk: &Path, off: u64) {
    let len = fs::metadata(part).unwrap().len();
    let mut done = 0;
    while done < len {
        let n = (len - done).min(64 * KIB);
        let b = read_range(part, done, n);
        if b.iter().any(|&x| x != 0) {
            write_at(disk, off + done, &b);
        }
        done += n;
    }
}

#[test]
fn fat16_and_fat32_partitions_on_an_mbr_disk() {
    if !need(&[FAT_TOOLS, &["sfdisk"]].concat()) {
        return;
    }
    let t = tempdir("fatmbr");
    let d = t.path();
    let disk = d.join("disk.img");
    let parts = sfdisk_mbr(&disk, 168 * MIB, &[("6", 48), ("c", 112)]);
    let specs: [(&str, &[&str], u64); 2] = [
        ("fat16", &["-F", "16", "-s", "4"], 1601),
        ("fat32", &["-F", "32", "-s", "1"], 1602),
    ];
    let mut trees = Vec::new();
    let mut expected = Vec::new();
    for (k, (name, opts, seed)) in specs.iter().enumerate() {
        let (start, size) = parts[k];
        let tree = make_tree(d, *seed, 3000);
        let img = d.join(format!("{name}.img"));
        make_fat(&img, size, opts, start / 512, &tree, seed + 10);
        let (clean, data, used, cs) = fsck_fat(&img);
        assert!(clean, "{name}");
        expected.push((data + used * cs, cs));
        place(&img, &disk, start);
        fs::remove_file(&img).unwrap();
        trees.push(tree);
    }
    // Random boot code, as a boot loader would leave.
    write_at(&disk, 0, &Rng::new(16).bytes(440));
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "fatmbr", &[&disk], &[]).ok();
    let text = lifeboat(&["info", "--repo", s(&repo), "--image", "fatmbr"]).ok();
    text.says(&["fat16", "fat32", "used-blocks", "mbr"]);
    let m = info_json(&repo, "fatmbr");
    let mut total = 0;
    for (k, (name, _, _)) in specs.iter().enumerate() {
        let p = manifest_partition(&m, 0, k as u32 + 1);
        assert_eq!(p["filesystem"], *name);
        assert_eq!(p["mode"], "used-blocks");
        assert_eq!(
            p["used_bytes"], expected[k].0,
            "{name}: used bytes vs fsck.fat -v"
        );
        assert_eq!(p["block_size"], expected[k].1, "{name}");
        total += expected[k].0;
    }
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored >= total && stored <= total + MIB,
        "stored {stored}, used {total}"
    );
    assert_image_close_to(&repo, "fatmbr", stored);

    let target = d.join("target.img");
    garbage_file(&target, 168 * MIB, 1603);
    restoredisk(&repo, "fatmbr", &[&target], &[]).ok();
    assert_same_bytes(&disk, &target, 0, 512, "MBR");
    assert_eq!(read_table(&target), read_table(&disk));
    for (k, (name, _, _)) in specs.iter().enumerate() {
        let (start, size) = parts[k];
        let a = d.join(format!("{name}-src.part"));
        let b = d.join(format!("{name}-dst.part"));
        extract(&disk, start, size, &a);
        extract(&target, start, size, &b);
        verify_fat(&a, &b, &trees[k], name);
        fs::remove_file(&a).unwrap();
        fs::remove_file(&b).unwrap();
    }
}

// ───────────────────────────── 3. exFAT in a 0x07 partition ─────────────────────────────

#[test]
fn exfat_in_an_mbr_partition_typed_0x07() {
    if !need(&[EXFAT_TOOLS, &["sfdisk", "loop"]].concat()) {
        return;
    }
    let t = tempdir("exfat");
    let d = t.path();
    let disk = d.join("disk.img");
    let parts = sfdisk_mbr(&disk, 100 * MIB, &[("7", 96)]);
    let (start, size) = parts[0];
    let tree = make_tree(d, 1701, 4000);
    {
        let lo = LoopDev::attach_range(&disk, None, Some((start, size)));
        sh("mkfs.exfat", &["-L", "LIFEBOAT", lo.path()]);
        let m = FuseMount::exfat(&lo.dev, &d.join("mnt"), false);
        let holes = d.join("holes");
        fs::create_dir_all(&holes).unwrap();
        let mut rng = Rng::new(1702);
        fs::create_dir_all(m.0.join("holes")).unwrap();
        for k in 0..10u64 {
            let b = rng.bytes((5000 + 7000 * k) as usize);
            fs::write(m.0.join(format!("holes/h{k}")), &b).unwrap();
            if k % 2 == 1 {
                fs::write(holes.join(format!("h{k}")), &b).unwrap();
            }
        }
        copy_tree(&tree, &m.0);
        for k in (0..10).step_by(2) {
            fs::remove_file(m.0.join(format!("holes/h{k}"))).unwrap();
        }
        let frag = rng.bytes(150_000);
        fs::write(m.0.join("fragmented.bin"), &frag).unwrap();
        fs::write(tree.join("fragmented.bin"), &frag).unwrap();
        fs::rename(&holes, tree.join("holes")).unwrap();
    }
    let src_part = d.join("src.part");
    extract(&disk, start, size, &src_part);
    sh("fsck.exfat", &["-n", s(&src_part)]);
    let (ss, fat_off, fat_len, used, cs) = dump_exfat(&src_part);
    let want_used = 24 * ss + fat_len + used * cs;

    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "ex", &[&disk], &[]).ok();
    let text = lifeboat(&["info", "--repo", s(&repo), "--image", "ex"]).ok();
    text.says(&["exfat", "used-blocks"]);
    let m = info_json(&repo, "ex");
    let p = manifest_partition(&m, 0, 1);
    assert_eq!(
        p["type_code"].as_str().map(str::to_lowercase).as_deref(),
        Some("0x07"),
        "{p}"
    );
    assert_eq!(
        p["filesystem"], "exfat",
        "a 0x07 partition holding exFAT is exFAT"
    );
    assert_eq!(p["mode"], "used-blocks");
    assert_eq!(p["used_bytes"], want_used, "used bytes vs dump.exfat");
    assert_eq!(p["block_size"], cs);
    assert_eq!(p["label"], "LIFEBOAT");
    assert_image_close_to(&repo, "ex", want_used);

    let target = d.join("target.img");
    garbage_file(&target, 100 * MIB, 1703);
    restoredisk(&repo, "ex", &[&target], &[]).ok();
    assert_same_bytes(&disk, &target, 0, 512, "MBR");
    let dst_part = d.join("dst.part");
    extract(&target, start, size, &dst_part);
    let o = tool("fsck.exfat")
        .arg("-n")
        .arg(&dst_part)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fsck.exfat -n: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(dump_exfat(&dst_part), (ss, fat_off, fat_len, used, cs));
    // Main and backup boot regions, and the FAT.
    assert_same_bytes(&src_part, &dst_part, 0, 24 * ss, "boot regions");
    assert_same_bytes(&src_part, &dst_part, fat_off, fat_len, "FAT");
    let lo = LoopDev::attach(&dst_part, None);
    let mnt = FuseMount::exfat(&lo.dev, &d.join("check"), true);
    assert_same_listing("exfat", &listing(&tree), &listing(&mnt.0));
}

// ───────────────────────────── 4. Windows UEFI layout ─────────────────────────────

/// `mkntfs -Q` on a loop device over `disk[start..start+size]`, then `files` copied in with
/// ntfscp.
fn make_ntfs(
    disk: &Path,
    start: u64,
    size: u64,
    label: &str,
    files: &[(String, Vec<u8>)],
    scratch: &Path,
) {
    let lo = LoopDev::attach_range(disk, None, Some((start, size)));
    sh(
        "mkntfs",
        &[
            "-Q",
            "-q",
            "-F",
            "-L",
            label,
            "-p",
            &(start / 512).to_string(),
            "-H",
            "255",
            "-S",
            "63",
            lo.path(),
        ],
    );
    for (name, data) in files {
        let f = scratch.join(name);
        fs::write(&f, data).unwrap();
        sh("ntfscp", &[lo.path(), s(&f), name.as_str()]);
    }
}

#[test]
fn windows_uefi_layout_esp_msr_ntfs_recovery() {
    if !need(&[FAT_TOOLS, NTFS_TOOLS, &["sgdisk", "loop"]].concat()) {
        return;
    }
    let t = tempdir("uefi");
    let d = t.path();
    let disk = d.join("disk.img");
    let size = 260 * MIB;
    sparse_file(&disk, size);
    sh(
        "sgdisk",
        &[
            "-n",
            "1:2048:+64M",
            "-t",
            "1:ef00",
            "-c",
            "1:EFI system partition",
            "-n",
            "2:0:+16M",
            "-t",
            "2:0c01",
            "-c",
            "2:Microsoft reserved partition",
            "-n",
            "3:0:+120M",
            "-t",
            "3:0700",
            "-c",
            "3:Basic data partition",
            "-n",
            "4:0:+40M",
            "-t",
            "4:2700",
            "-c",
            "4:Recovery",
            s(&disk),
        ],
    );
    let table = read_table(&disk);
    let parts: Vec<(u64, u64)> = table.parts.iter().map(|p| (p.start, p.size)).collect();
    assert_eq!(parts.len(), 4);

    // ESP: FAT32 with a boot loader tree.
    let tree = make_tree(d, 1901, 2500);
    let esp = d.join("esp.img");
    make_fat(
        &esp,
        parts[0].1,
        &["-F", "32", "-s", "1"],
        parts[0].0 / 512,
        &tree,
        1902,
    );
    let (clean, data, used, cs) = fsck_fat(&esp);
    assert!(clean);
    let esp_used = data + used * cs;
    place(&esp, &disk, parts[0].0);
    // NTFS "C:" and the recovery partition.
    let mut rng = Rng::new(1903);
    let c_files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("file{i}.bin"), rng.bytes(50_000 + 150_000 * i)))
        .collect();
    let r_files: Vec<(String, Vec<u8>)> = vec![("Winre.wim".into(), rng.bytes(700_000))];
    make_ntfs(&disk, parts[2].0, parts[2].1, "Windows", &c_files, d);
    make_ntfs(&disk, parts[3].0, parts[3].1, "Recovery", &r_files, d);
    sh("sgdisk", &["-v", s(&disk)]);

    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "win", &[&disk], &[]).ok();
    let text = lifeboat(&["info", "--repo", s(&repo), "--image", "win"]).ok();
    eprintln!("{}", text.stdout);
    text.says(&["fat32", "ntfs", "gpt"]);
    let m = info_json(&repo, "win");
    let p1 = manifest_partition(&m, 0, 1);
    assert_eq!(p1["filesystem"], "fat32");
    assert_eq!(p1["mode"], "used-blocks");
    assert_eq!(p1["used_bytes"], esp_used, "ESP used bytes vs fsck.fat -v");
    let p2 = manifest_partition(&m, 0, 2);
    assert_eq!(p2["size"], 16 * MIB);
    for n in [3, 4] {
        assert_eq!(
            manifest_partition(&m, 0, n)["filesystem"],
            "ntfs",
            "partition {n}"
        );
    }
    // The MSR (16 MiB of zeros) costs almost nothing: the image files are about the size
    // of the ESP's and the NTFS volumes' used data, whatever the MSR's mode.
    let ntfs_used: u64 = [3, 4]
        .iter()
        .map(|&n| {
            let p = manifest_partition(&m, 0, n);
            if p["mode"] == "used-blocks" {
                p["used_bytes"].as_u64().unwrap()
            } else {
                // Copied whole: only its non-zero content costs space.
                c_files
                    .iter()
                    .chain(&r_files)
                    .map(|f| f.1.len() as u64)
                    .sum::<u64>()
                    / 2
                    + 8 * MIB
            }
        })
        .sum();
    let files = dir_bytes(&repo.join("win"));
    assert!(
        files < esp_used + ntfs_used + 2 * MIB,
        "image files of {files} bytes for {esp_used} + {ntfs_used} used bytes: the MSR is not free"
    );

    let target = d.join("target.img");
    garbage_file(&target, size, 1904);
    restoredisk(&repo, "win", &[&target], &[]).ok();
    // GPT: protective MBR, primary header and entries, backup entries and header.
    assert_same_bytes(
        &disk,
        &target,
        0,
        34 * 512,
        "protective MBR and primary GPT",
    );
    assert_same_bytes(&disk, &target, size - 33 * 512, 33 * 512, "backup GPT");
    sh("sgdisk", &["-v", s(&target)]);
    assert_eq!(read_table(&target), table);
    // ESP.
    let a = d.join("esp-src.part");
    let b = d.join("esp-dst.part");
    extract(&disk, parts[0].0, parts[0].1, &a);
    extract(&target, parts[0].0, parts[0].1, &b);
    verify_fat(&a, &b, &tree, "ESP");
    // MSR: zeros again (the garbage under it is gone).
    assert_eq!(
        sha_range(&target, parts[1].0, parts[1].1),
        sha_bytes(&vec![0u8; parts[1].1 as usize]),
        "MSR is not zeros after the restore"
    );
    // NTFS volumes: consistent, same files, same boot sector and backup boot sector.
    for (n, files) in [(2usize, &c_files), (3, &r_files)] {
        let (start, len) = parts[n];
        let a = d.join(format!("ntfs{n}-src.part"));
        let b = d.join(format!("ntfs{n}-dst.part"));
        extract(&disk, start, len, &a);
        extract(&target, start, len, &b);
        sh("ntfsfix", &["-n", s(&b)]);
        assert_same_bytes(&a, &b, 0, 512, "NTFS boot sector");
        assert_same_bytes(&a, &b, len - 512, 512, "NTFS backup boot sector");
        let ls = sh("ntfsls", &[s(&b)]);
        for (name, data) in files.iter() {
            assert!(
                ls.lines().any(|l| l.trim() == name),
                "{name} not listed: {ls}"
            );
            let raw = tool("ntfscat").arg(&b).arg(name).output().unwrap();
            assert!(raw.status.success());
            assert_eq!(sha_bytes(&raw.stdout), sha_bytes(data), "NTFS {name}");
        }
    }
}
