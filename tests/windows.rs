//! End-to-end tests of Windows disks: NTFS volumes made by mkntfs and populated through the
//! ntfs-3g FUSE driver (fragmented files, alternate data streams, compressed and sparse
//! files), put into MBR disks made by sfdisk, saved by the `lifeboat` binary, restored onto
//! targets full of random garbage and verified with ntfsfix, ntfsinfo and a read-only ntfs-3g
//! mount that hashes every file and every alternate data stream. Boot code, boot sectors and
//! backup boot sectors must come back byte-identical, and the image must hold about the used
//! clusters only.
//!
//! Tests that need a missing tool or root skip loudly, and fail when CI=true.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const NTFS_TOOLS: &[&str] = &[
    "root", "mkntfs", "ntfs-3g", "ntfsfix", "ntfsinfo", "sfdisk", "setfattr", "getfattr", "umount",
];

// ───────────────────────────── NTFS helpers ─────────────────────────────

/// An ntfs-3g FUSE mount; unmounted on drop.
struct FuseMount {
    dir: PathBuf,
}

impl FuseMount {
    fn new(volume: &Path, dir: &Path, opts: &str) -> FuseMount {
        fs::create_dir_all(dir).unwrap();
        let mut c = tool("ntfs-3g");
        if !opts.is_empty() {
            c.args(["-o", opts]);
        }
        run_ok(c.arg(volume).arg(dir));
        FuseMount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        sync();
        for _ in 0..50 {
            let st = tool("umount").arg(&self.dir).status();
            if st.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not unmount {}", self.dir.display());
    }
}

/// What to put on a volume.
#[derive(Clone, Copy)]
struct Content {
    seed: u64,
    /// Size of the large random file, KiB.
    big_kib: u64,
    /// Make a compressed directory (clusters of at most 4 KiB).
    compressed: bool,
    /// Add a `hiberfil.sys` holding a hibernation header.
    hibernated: bool,
}

/// Makes an NTFS volume file of `size` bytes (as if at sector `start_sector` of a disk).
fn mkntfs(path: &Path, size: u64, cluster: u32, label: &str, start_sector: u64) {
    sparse_file(path, size);
    run_ok(tool("mkntfs").args([
        "-F",
        "-f",
        "-Q",
        "-q",
        "-c",
        &cluster.to_string(),
        "-L",
        label,
        "-p",
        &start_sector.to_string(),
        "-H",
        "255",
        "-S",
        "63",
        s(path),
    ]));
}

/// Fills a mounted volume: random and text files, many entries in one directory, a file
/// fragmented on purpose (small files written, every other one deleted, then a large file
/// written into the gaps, then rewritten), alternate data streams, a sparse file and a
/// compressed directory.
fn populate(root: &Path, c: Content, cluster: u64) {
    let mut rng = Rng::new(c.seed);
    let w = |p: &Path, data: &[u8]| {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    };
    let mut big = File::create(root.join("big.bin")).unwrap();
    for _ in 0..c.big_kib / 64 {
        big.write_all(&rng.bytes(64 << 10)).unwrap();
    }
    big.write_all(&rng.bytes(777)).unwrap();
    drop(big);
    for i in 0..30 {
        let n = rng.below(30_000) as usize;
        w(&root.join(format!("docs/file-{i:02}.dat")), &rng.bytes(n));
    }
    for i in 0..120 {
        let n = rng.below(200) as usize;
        w(
            &root.join(format!("many/an-entry-with-a-long-name-{i:04}.txt")),
            &rng.bytes(n),
        );
    }
    w(
        &root.join("names/with space é.txt"),
        b"unicode and spaces\n",
    );
    // Fragmentation.
    let frag = root.join("frag");
    fs::create_dir_all(&frag).unwrap();
    for i in 0..60 {
        w(
            &frag.join(format!("gap-{i}")),
            &rng.bytes(2 * cluster as usize),
        );
    }
    sync();
    for i in (0..60).step_by(2) {
        fs::remove_file(frag.join(format!("gap-{i}"))).unwrap();
    }
    sync();
    w(
        &frag.join("fragmented.bin"),
        &rng.bytes(50 * cluster as usize),
    );
    sync();
    let f = OpenOptions::new()
        .write(true)
        .open(frag.join("fragmented.bin"))
        .unwrap();
    f.write_all_at(&rng.bytes(10 * cluster as usize), 7 * cluster)
        .unwrap();
    f.set_len(58 * cluster + 99).unwrap();
    f.write_all_at(&rng.bytes(8 * cluster as usize), 50 * cluster)
        .unwrap();
    drop(f);
    // Alternate data streams (ntfs-3g shows named $DATA streams as user.* attributes).
    w(&root.join("ads.txt"), b"the main stream\n");
    for (name, len) in [("user.small", 40usize), ("user.large", 20_000)] {
        let v = hex(&rng.bytes(len / 2));
        run_ok(
            tool("setfattr")
                .args(["-n", name, "-v", &v])
                .arg(root.join("ads.txt")),
        );
    }
    // A sparse file.
    let sp = File::create(root.join("sparse.bin")).unwrap();
    sp.set_len(5 << 20).unwrap();
    sp.write_all_at(&rng.bytes(3000), 1 << 20).unwrap();
    sp.write_all_at(&rng.bytes(100), (4 << 20) + 5).unwrap();
    drop(sp);
    if c.compressed {
        let d = root.join("compressed");
        fs::create_dir_all(&d).unwrap();
        run_ok(
            tool("setfattr")
                .args(["-h", "-v", "0x00000800", "-n", "system.ntfs_attrib_be"])
                .arg(&d),
        );
        let text: Vec<u8> = (0..400_000)
            .map(|_| b"compressible text \n"[rng.below(19) as usize])
            .collect();
        w(&d.join("text.txt"), &text);
        w(&d.join("random.bin"), &rng.bytes(50_000));
    }
    if c.hibernated {
        let mut v = b"HIBR".to_vec();
        v.extend(rng.bytes(100_000));
        w(&root.join("hiberfil.sys"), &v);
    }
}

/// Checks that files and streams were really made the way the test wants them.
fn assert_attributes(root: &Path, c: Content) {
    let attr = |p: &Path| -> u32 {
        let out = run_ok(
            tool("getfattr")
                .args(["-h", "-e", "hex", "-n", "system.ntfs_attrib_be"])
                .arg(p),
        );
        let v = out
            .lines()
            .find_map(|l| l.split_once("=0x").map(|(_, v)| v.to_string()))
            .unwrap_or_else(|| panic!("no ntfs_attrib_be for {}: {out}", p.display()));
        u32::from_str_radix(v.trim(), 16).unwrap()
    };
    assert_ne!(
        attr(&root.join("sparse.bin")) & 0x200,
        0,
        "sparse.bin is not sparse"
    );
    if c.compressed {
        assert_ne!(
            attr(&root.join("compressed/text.txt")) & 0x800,
            0,
            "compressed/text.txt is not compressed"
        );
    }
}

/// Makes, fills and checks one NTFS volume file.
fn ntfs_volume(path: &Path, size: u64, cluster: u32, label: &str, start: u64, c: Content) {
    mkntfs(path, size, cluster, label, start / 512);
    let m = path.with_extension("mnt");
    {
        let mount = FuseMount::new(path, &m, if c.compressed { "compression" } else { "" });
        populate(&mount.dir, c, u64::from(cluster));
        assert_attributes(&mount.dir, c);
    }
    fs::remove_dir(&m).unwrap();
    assert_ntfsfix_clean(path, label);
}

/// `ntfsfix -n`: panics unless it finds nothing to fix.
#[track_caller]
fn assert_ntfsfix_clean(volume: &Path, what: &str) {
    let out = tool("ntfsfix").arg("-n").arg(volume).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("FAILED") && !text.contains("rror"),
        "{what}: ntfsfix -n is not clean:\n{text}"
    );
}

/// Used clusters × cluster size, from ntfsinfo, plus the backup boot sector.
fn ntfsinfo_used_bytes(volume: &Path) -> (u64, u64) {
    let out = sh("ntfsinfo", &["-f", "-m", s(volume)]);
    let field = |f: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(f)
                    .and_then(|x| x.split_whitespace().next())
                    .map(|x| x.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("ntfsinfo lacks {f}:\n{out}"))
    };
    let cs = field("Cluster Size:");
    let used = field("Volume Size in Clusters:") - field("Free Clusters:");
    (used * cs + 512, cs)
}

/// Every file of a volume with its hash (through a read-only ntfs-3g mount), and every
/// alternate data stream as `getfattr` dumps it.
fn ntfs_listing(volume: &Path, what: &str) -> (BTreeMap<String, Node>, String) {
    let m = volume.with_extension("ro");
    let mount = FuseMount::new(volume, &m, "ro");
    let files = tree_listing(&mount.dir);
    assert!(files.len() > 150, "{what}: suspiciously few files");
    let out = tool("getfattr")
        .current_dir(&mount.dir)
        .args(["-R", "-d", "-m", "^user\\.", "-e", "hex", "."])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{what}: getfattr failed");
    let ads = String::from_utf8(out.stdout).unwrap();
    assert!(
        ads.contains("user.large=0x"),
        "{what}: no alternate data stream seen:\n{ads}"
    );
    drop(mount);
    fs::remove_dir(&m).unwrap();
    (files, ads)
}

/// Copies a volume file into a disk file at `offset`, skipping all-zero blocks (the disk file
/// is sparse and reads zero there already).
fn place(volume: &Path, disk: &Path, offset: u64) {
    let mut src = File::open(volume).unwrap();
    let dst = OpenOptions::new().write(true).open(disk).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut at = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            let k = src.read(&mut buf[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], offset + at).unwrap();
        }
        at += n as u64;
    }
    dst.sync_all().unwrap();
}

/// Sets the dirty flag in `$Volume`'s `$VOLUME_INFORMATION` (record 3 and its copy in
/// `$MFTMirr`), as Windows leaves it after a crash.
fn mark_dirty(volume: &Path) {
    let boot = read_range(volume, 0, 512);
    let le = |b: &[u8], o: usize, n: usize| -> u64 {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&b[o..o + n]);
        u64::from_le_bytes(a)
    };
    let cs = le(&boot, 0x0B, 2) * le(&boot, 0x0D, 1);
    let rs = {
        let v = boot[0x40] as i8;
        if v < 0 {
            1u64 << (-v)
        } else {
            v as u64 * cs
        }
    };
    for lcn in [le(&boot, 0x30, 8), le(&boot, 0x38, 8)] {
        let at = lcn * cs + 3 * rs;
        let mut rec = read_range(volume, at, rs);
        assert_eq!(&rec[..4], b"FILE");
        let mut pos = le(&rec, 0x14, 2) as usize;
        while le(&rec, pos, 4) != 0x70 {
            assert_ne!(le(&rec, pos, 4), 0xFFFF_FFFF, "no $VOLUME_INFORMATION");
            pos += le(&rec, pos + 4, 4) as usize;
        }
        let flags = pos + le(&rec, pos + 20, 2) as usize + 10;
        assert!(
            flags % 512 < 510,
            "flags lie under an update sequence fixup"
        );
        rec[flags] |= 1;
        write_at(volume, at, &rec);
    }
}

// ───────────────────────────── disks ─────────────────────────────

enum Content2 {
    Ntfs {
        listing: BTreeMap<String, Node>,
        ads: String,
        used: u64,
        cluster: u64,
    },
    Raw {
        sha: String,
    },
}

struct Part {
    number: u32,
    start: u64,
    size: u64,
    content: Content2,
}

/// `(start, size, type, bootable)` partitions in an MBR disk with random boot code and a
/// random bootloader gap.
fn mbr_layout(disk: &Path, size: u64, parts: &[(u64, u64, &str, bool)], seed: u64) {
    sparse_file(disk, size);
    let mut script = format!("label: dos\nlabel-id: 0x{:08x}\n", seed as u32 | 1);
    for (start, len, ty, boot) in parts {
        script += &format!(
            "start={}, size={}, type={ty}{}\n",
            start / 512,
            len / 512,
            if *boot { ", bootable" } else { "" }
        );
    }
    let mut c = tool("sfdisk");
    c.args(["-q", "--no-reread", "--no-tell-kernel", "--wipe", "never"])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "sfdisk: {o:?}");
    // Boot code (first 440 bytes) and a bootloader in the gap before the first partition.
    let mut rng = Rng::new(seed);
    write_at(disk, 0, &rng.bytes(440));
    write_at(disk, 512, &rng.bytes(200 * 1024));
}

/// An NTFS partition: made, filled, checked and described.
#[allow(clippy::too_many_arguments)]
fn ntfs_part(
    dir: &Path,
    disk: &Path,
    number: u32,
    start: u64,
    size: u64,
    cluster: u32,
    label: &str,
    c: Content,
) -> Part {
    let vol = dir.join(format!("p{number}.ntfs"));
    ntfs_volume(&vol, size, cluster, label, start, c);
    part_from_volume(&vol, disk, number, start, size)
}

fn part_from_volume(vol: &Path, disk: &Path, number: u32, start: u64, size: u64) -> Part {
    let (used, cluster) = ntfsinfo_used_bytes(vol);
    let (listing, ads) = ntfs_listing(vol, &format!("source partition {number}"));
    place(vol, disk, start);
    fs::remove_file(vol).unwrap();
    Part {
        number,
        start,
        size,
        content: Content2::Ntfs {
            listing,
            ads,
            used,
            cluster,
        },
    }
}

/// Saves `disk`, checks the manifest, restores onto a garbage target and verifies it.
fn round_trip(dir: &Path, disk: &Path, parts: &[Part]) -> Value {
    let repo = dir.join("repo");
    fs::create_dir_all(&repo).unwrap();
    lifeboat(&[
        "savedisk",
        "--repo",
        s(&repo),
        "--image",
        "win",
        "--disk",
        s(disk),
    ])
    .ok();
    let m = info_json(&repo, "win");
    let size = dev_size(disk);
    let mut stored_max = 0;
    for p in parts {
        let j = m["disks"][0]["table"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["number"] == p.number)
            .unwrap_or_else(|| panic!("no partition {} in {m:#}", p.number))
            .clone();
        match &p.content {
            Content2::Ntfs { used, cluster, .. } => {
                assert_eq!(j["filesystem"], "ntfs", "partition {}: {j:#}", p.number);
                assert_eq!(j["mode"], "used-blocks", "partition {}: {j:#}", p.number);
                assert_eq!(j["block_size"], *cluster, "partition {} cluster", p.number);
                assert_eq!(
                    j["used_bytes"], *used,
                    "partition {}: stored bytes differ from ntfsinfo's used clusters \
                     plus the backup boot sector",
                    p.number
                );
                stored_max += used;
            }
            Content2::Raw { .. } => {
                assert_eq!(j["mode"], "raw", "partition {}: {j:#}", p.number);
                assert_eq!(j["used_bytes"], p.size);
                stored_max += p.size;
            }
        }
    }
    // The image holds the used clusters (compressed), far less than the disk.
    let image_bytes = dir_bytes(&repo.join("win"));
    assert!(
        image_bytes < stored_max + 4 * MIB && image_bytes < size / 3,
        "image of {image_bytes} bytes for {stored_max} used bytes on a {size}-byte disk"
    );
    let target = dir.join("target.img");
    garbage_file(&target, size, 0x5eed);
    lifeboat(&[
        "restoredisk",
        "--repo",
        s(&repo),
        "--image",
        "win",
        "--yes",
        "--disk",
        s(&target),
    ])
    .ok();
    let first = parts.iter().map(|p| p.start).min().unwrap();
    assert_same_bytes(disk, &target, 0, first, "MBR, boot code and bootloader gap");
    for p in parts {
        let what = format!("restored partition {}", p.number);
        match &p.content {
            Content2::Ntfs { listing, ads, .. } => {
                assert_same_bytes(disk, &target, p.start, 512, &format!("{what} boot sector"));
                assert_same_bytes(
                    disk,
                    &target,
                    p.start + p.size - 512,
                    512,
                    &format!("{what} backup boot sector"),
                );
                assert_eq!(
                    read_range(&target, p.start, 512),
                    read_range(&target, p.start + p.size - 512, 512),
                    "{what}: backup boot sector differs from the boot sector"
                );
                let vol = dir.join(format!("restored-p{}.ntfs", p.number));
                extract(&target, p.start, p.size, &vol);
                assert_ntfsfix_clean(&vol, &what);
                let (got, got_ads) = ntfs_listing(&vol, &what);
                assert_same_tree(&what, listing, &got);
                assert_eq!(&got_ads, ads, "{what}: alternate data streams differ");
                fs::remove_file(&vol).unwrap();
            }
            Content2::Raw { sha } => {
                assert_eq!(&sha_range(&target, p.start, p.size), sha, "{what} bytes");
            }
        }
    }
    m
}

// ───────────────────────────── tests ─────────────────────────────

#[test]
fn windows_bios_layout_system_reserved_and_c() {
    if !need(NTFS_TOOLS) {
        return;
    }
    let t = tempdir("win-bios");
    let dir = t.path();
    let disk = dir.join("disk.img");
    let (p1, s1) = (MIB, 100 * MIB);
    let (p2, s2) = (p1 + s1, 180 * MIB);
    mbr_layout(
        &disk,
        p2 + s2 + MIB,
        &[(p1, s1, "7", true), (p2, s2, "7", false)],
        11,
    );
    let sysres = Content {
        seed: 1,
        big_kib: 512,
        compressed: false,
        hibernated: false,
    };
    let c = Content {
        seed: 2,
        big_kib: 6 << 10,
        compressed: true,
        hibernated: false,
    };
    let parts = [
        ntfs_part(dir, &disk, 1, p1, s1, 4096, "System Reserved", sysres),
        ntfs_part(dir, &disk, 2, p2, s2, 4096, "C", c),
    ];
    let m = round_trip(dir, &disk, &parts);
    let ps = m["disks"][0]["table"]["partitions"].as_array().unwrap();
    assert_eq!(ps[0]["bootable"], true);
    assert_eq!(ps[0]["label"], "System Reserved");
    assert_eq!(ps[1]["label"], "C");
}

#[test]
fn ntfs_cluster_sizes_512_4k_64k() {
    if !need(NTFS_TOOLS) {
        return;
    }
    let t = tempdir("win-clusters");
    let dir = t.path();
    let disk = dir.join("disk.img");
    let sizes = [(512u32, 64 * MIB), (4096, 72 * MIB), (65536, 96 * MIB)];
    let mut layout = Vec::new();
    let mut at = MIB;
    for (_, sz) in sizes {
        layout.push((at, sz, "7", false));
        at += sz;
    }
    mbr_layout(&disk, at + MIB, &layout, 12);
    let mut parts = Vec::new();
    for (i, (cs, sz)) in sizes.iter().enumerate() {
        let c = Content {
            seed: 100 + i as u64,
            big_kib: 3 << 10,
            compressed: *cs <= 4096,
            hibernated: false,
        };
        parts.push(ntfs_part(
            dir,
            &disk,
            i as u32 + 1,
            layout[i].0,
            *sz,
            *cs,
            &format!("C{cs}"),
            c,
        ));
    }
    round_trip(dir, &disk, &parts);
}

#[test]
fn dirty_hibernated_ntfs_and_a_bitlocker_partition() {
    if !need(NTFS_TOOLS) {
        return;
    }
    let t = tempdir("win-dirty");
    let dir = t.path();
    let disk = dir.join("disk.img");
    let (p1, s1) = (MIB, 64 * MIB);
    let (p2, s2) = (p1 + s1, 16 * MIB);
    mbr_layout(
        &disk,
        p2 + s2 + MIB,
        &[(p1, s1, "7", false), (p2, s2, "7", false)],
        13,
    );
    let vol = dir.join("p1.ntfs");
    let c = Content {
        seed: 7,
        big_kib: 2 << 10,
        compressed: true,
        hibernated: true,
    };
    ntfs_volume(&vol, s1, 4096, "Dirty", p1, c);
    mark_dirty(&vol);
    let dirty = part_from_volume(&vol, &disk, 1, p1, s1);
    // A BitLocker volume: signature at byte 3, the rest looks random.
    let mut rng = Rng::new(99);
    let mut head = rng.bytes(512);
    head[3..11].copy_from_slice(b"-FVE-FS-");
    head[510] = 0x55;
    head[511] = 0xAA;
    fill_random(&disk, p2, s2, 98);
    write_at(&disk, p2, &head);
    let bitlocker = Part {
        number: 2,
        start: p2,
        size: s2,
        content: Content2::Raw {
            sha: sha_range(&disk, p2, s2),
        },
    };
    let m = round_trip(dir, &disk, &[dirty, bitlocker]);
    let ps = m["disks"][0]["table"]["partitions"].as_array().unwrap();
    assert_eq!(ps[1]["filesystem"], "bitlocker");
    lifeboat(&["info", "--repo", s(&dir.join("repo")), "--image", "win"])
        .ok()
        .says(&[
            "marked dirty",
            "hibernated",
            "BitLocker-encrypted volume: copied whole (encrypted blocks cannot be told apart)",
            "ntfs",
            "4.0 KiB",
        ]);
}
