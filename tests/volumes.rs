//! End-to-end tests of the volume layer with real LVM2 tools: disks laid out as Red Hat-family
//! installers lay them out (a `/boot` partition and an LVM PV with root, swap and home LVs,
//! free extents full of random bytes; a volume group over two disks with a striped LV), saved,
//! restored onto disks full of garbage, and verified: the PV's label and metadata, the VG and
//! LV UUIDs as `pvs`/`lvs` read them, every filesystem clean (`xfs_repair -n`, `e2fsck -fn`)
//! with every file identical, swap headers identical (`blkid`), and the image no bigger than
//! the used bytes plus the LVM metadata.
//!
//! This kernel has no device-mapper: LVs are made with activation off (`--driverloaded n -an
//! -Zn`) and reached by their offsets (`lvs --segments`, `pvs -o pe_start`), so `vgchange -ay`
//! is not run; each LV's filesystem is made in a file and written at its extents. Tests that
//! need a missing tool or root skip loudly, and fail when CI=true.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

const LVM_TOOLS: &[&str] = &[
    "pvcreate",
    "vgcreate",
    "lvcreate",
    "lvextend",
    "lvs",
    "pvs",
    "vgs",
    "mkfs.xfs",
    "xfs_repair",
    "xfs_db",
    "mkswap",
    "blkid",
    "mke2fs",
    "e2fsck",
    "debugfs",
    "sfdisk",
    "losetup",
    "mount",
];

/// LVM commands restricted to the given devices, activation off, quiet about inherited fds.
fn lvm(devices: &[&LoopDev], args: &[&str]) -> String {
    let list: Vec<&str> = devices.iter().map(|d| d.path()).collect();
    let mut c = tool(args[0]);
    c.env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .arg("--devices")
        .arg(list.join(","));
    c.args(&args[1..]);
    run_ok(&mut c)
}

/// One segment of an LV as `lvs --segments` reports it.
#[derive(Debug, Clone)]
struct Segment {
    lv: String,
    /// First byte of the segment in the LV.
    start: u64,
    size: u64,
    /// Per stripe: (PV device, first PE).
    stripes: Vec<(String, u64)>,
    stripe_size: u64,
}

/// The VG's geometry: extent size, each PV's first PE, every LV's segments.
#[derive(Debug, Clone)]
struct VgMap {
    extent: u64,
    pe_start: Vec<(String, u64)>,
    segments: Vec<Segment>,
    /// VG UUID and every LV's UUID, as `vgs`/`lvs` print them.
    uuids: String,
}

fn vg_map(devices: &[&LoopDev], vg: &str) -> VgMap {
    let num = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
    let extent = num(&lvm(
        devices,
        &[
            "vgs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "vg_extent_size",
            vg,
        ],
    ));
    let pe_start = lvm(
        devices,
        &[
            "pvs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "--separator",
            ",",
            "-o",
            "pv_name,pe_start",
        ],
    )
    .lines()
    .filter_map(|l| {
        let (d, s) = l.trim().split_once(',')?;
        Some((d.to_string(), num(s)))
    })
    .collect();
    let segments = lvm(
        devices,
        &[
            "lvs",
            "--segments",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "--separator",
            ";",
            "-o",
            "lv_name,seg_start,seg_size,seg_pe_ranges,stripe_size",
            vg,
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let f: Vec<&str> = l.trim().split(';').collect();
        let stripes = f[3]
            .split_whitespace()
            .map(|r| {
                let (dev, range) = r.rsplit_once(':').unwrap();
                let first = range.split('-').next().unwrap();
                (dev.to_string(), num(first))
            })
            .collect();
        Segment {
            lv: f[0].to_string(),
            start: num(f[1]),
            size: num(f[2]),
            stripes,
            stripe_size: num(f[4]),
        }
    })
    .collect();
    let uuids = lvm(
        devices,
        &[
            "vgs",
            "--noheadings",
            "-o",
            "vg_name,vg_uuid,pv_count,lv_count,vg_seqno",
            vg,
        ],
    ) + &lvm(
        devices,
        &["lvs", "--noheadings", "-o", "lv_name,lv_uuid,lv_size", vg],
    ) + &lvm(
        devices,
        // Sorted by UUID: the default order is by device name, and loop devices are numbered
        // anew for the check (`/dev/loop10` sorts before `/dev/loop9`).
        &[
            "pvs",
            "--noheadings",
            "-O",
            "pv_uuid",
            "-o",
            "pv_uuid,vg_name,pv_size",
        ],
    );
    VgMap {
        extent,
        pe_start,
        segments,
        uuids,
    }
}

impl VgMap {
    /// Where `len` bytes at byte `off` of `lv` lie: (PV device, byte on the PV, length) runs.
    fn runs(&self, lv: &str) -> Vec<(u64, String, u64, u64)> {
        let mut out = Vec::new();
        for s in self.segments.iter().filter(|s| s.lv == lv) {
            let n = s.stripes.len() as u64;
            let pe = |dev: &str| self.pe_start.iter().find(|p| p.0 == dev).unwrap().1;
            if n == 1 {
                let (dev, first) = &s.stripes[0];
                out.push((s.start, dev.clone(), pe(dev) + first * self.extent, s.size));
                continue;
            }
            let chunk = s.stripe_size;
            for c in 0..s.size / chunk {
                let (dev, first) = &s.stripes[(c % n) as usize];
                let row = c / n;
                out.push((
                    s.start + c * chunk,
                    dev.clone(),
                    pe(dev) + first * self.extent + row * chunk,
                    chunk,
                ));
            }
        }
        out
    }

    /// Copies an LV's content between a file holding the LV and the files holding its PVs
    /// (`pvs`: device name → file and the byte where the PV starts in it).
    fn copy(&self, lv: &str, lv_file: &Path, pvs: &[(String, PathBuf, u64)], to_pv: bool) {
        for (lv_off, dev, pv_off, len) in self.runs(lv) {
            let (_, file, base) = pvs.iter().find(|p| p.0 == dev).unwrap();
            if to_pv {
                write_at(file, base + pv_off, &read_range(lv_file, lv_off, len));
            } else {
                write_at(lv_file, lv_off, &read_range(file, base + pv_off, len));
            }
        }
    }
}

/// What an LV holds in these fixtures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Content {
    Xfs,
    Ext4,
    Swap,
}

/// Makes `content` in a file of `size` bytes filled from a seeded tree; returns what must be
/// found again after the restore.
fn make_content(file: &Path, size: u64, content: Content, seed: u64, scratch: &Path) -> Expect {
    sparse_file(file, size);
    let tree = scratch.join(format!("tree-{seed}"));
    match content {
        Content::Xfs => {
            run_ok(
                tool("mkfs.xfs")
                    .args(["-q", "-f", "-L", "xfsvol"])
                    .arg(file),
            );
            let mnt = scratch.join(format!("mnt-{seed}"));
            {
                let lo = LoopDev::attach(file, None);
                let _m = Mount::new(&lo.dev, &mnt, "");
                populate_tree(&mnt, TreeSpec::new(seed, 24));
                sync();
            }
        }
        Content::Ext4 => {
            populate_tree(&tree, TreeSpec::new(seed, 16));
            mkfs_ext(file, 0, size, "ext4", None, Some(&tree), "extvol");
        }
        Content::Swap => {
            run_ok(
                tool("mkswap")
                    .args([
                        "-L",
                        "swapvol",
                        "-U",
                        "5a1e5a1e-0000-4000-8000-0000000000aa",
                    ])
                    .arg(file),
            );
        }
    }
    expect_of(file, content, scratch)
}

/// What a filesystem in a file holds, as the real tools read it.
#[derive(Debug, PartialEq)]
struct Expect {
    blkid: String,
    listing: Option<std::collections::BTreeMap<String, Node>>,
    used: u64,
    header: Option<String>,
}

fn blkid(file: &Path) -> String {
    let out = sh(
        "blkid",
        &[
            OsStr::new("-p"),
            OsStr::new("-o"),
            OsStr::new("export"),
            file.as_os_str(),
        ],
    );
    out.lines()
        .filter(|l| !l.starts_with("DEVNAME="))
        .collect::<Vec<_>>()
        .join("\n")
}

fn xfs_used(file: &Path) -> u64 {
    let out = sh(
        "xfs_db",
        &[
            OsStr::new("-r"),
            OsStr::new("-c"),
            OsStr::new("sb 0"),
            OsStr::new("-c"),
            OsStr::new("p dblocks fdblocks blocksize"),
            file.as_os_str(),
        ],
    );
    let f = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("xfs_db lacks {name}: {out}"))
            .trim()
            .parse()
            .unwrap()
    };
    (f("dblocks") - f("fdblocks")) * f("blocksize")
}

fn expect_of(file: &Path, content: Content, scratch: &Path) -> Expect {
    match content {
        Content::Xfs => {
            run_ok(tool("xfs_repair").args(["-n", "-f"]).arg(file));
            let mnt = scratch.join("check-mnt");
            let lo = LoopDev::attach(file, None);
            let m = Mount::new(&lo.dev, &mnt, "ro");
            let listing = tree_listing(&m.dir);
            drop(m);
            Expect {
                blkid: blkid(file),
                listing: Some(listing),
                used: xfs_used(file),
                header: None,
            }
        }
        Content::Ext4 => {
            assert_fsck_clean(file, "ext4 LV");
            Expect {
                blkid: blkid(file),
                listing: Some(ext_listing(file, scratch, "ext4 LV")),
                used: ext_used_bytes(file),
                header: None,
            }
        }
        Content::Swap => Expect {
            blkid: blkid(file),
            listing: None,
            used: 4096,
            header: Some(sha_range(file, 0, 4096)),
        },
    }
}

/// One LV of a fixture.
struct Lv {
    name: &'static str,
    mib: u64,
    content: Content,
    /// Extra MiB added by `lvextend` after every LV was made (a second segment further on).
    extend_mib: u64,
    /// `-i N -I 64k` stripes over N PVs.
    stripes: u32,
}

const fn lv(name: &'static str, mib: u64, content: Content) -> Lv {
    Lv {
        name,
        mib,
        content,
        extend_mib: 0,
        stripes: 1,
    }
}

/// One disk of a fixture: an MBR table, an optional `/boot`, then the PV partition.
struct DiskSpec {
    size: u64,
    boot: Option<(u64, Content)>,
}

struct Built {
    disks: Vec<PathBuf>,
    /// Per disk: byte where its PV partition starts, and its size.
    pv_part: Vec<(u64, u64)>,
    boots: Vec<Option<(u64, u64, Content, Expect)>>,
    map: VgMap,
    lvs: Vec<(String, Content, Expect, u64)>,
}

/// Builds the disks: each PV partition is made in a file of its own full of random bytes, on
/// a loop device, by pvcreate/vgcreate/lvcreate (activation off), every LV's content written
/// at its extents; then the PV files are written into the disks at their partitions.
fn build(dir: &Path, vg: &str, disks: &[DiskSpec], lvs: &[Lv], seed: u64) -> Built {
    let mut out_disks = Vec::new();
    let mut pv_part = Vec::new();
    let mut boots = Vec::new();
    let mut pv_files = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let disk = dir.join(format!("src{i}.img"));
        sparse_file(&disk, d.size);
        let script = match d.boot {
            Some((mib, _)) => format!(
                "label: dos\nstart=2048, size={}, type=83\ntype=8e\n",
                mib * 2048
            ),
            None => "label: dos\nstart=2048, type=8e\n".to_string(),
        };
        sfdisk(&disk, &script);
        let t = read_table(&disk);
        let pv = t.parts.last().unwrap();
        let (pv_start, pv_size) = (pv.start, pv.size);
        let boot = d.boot.map(|(mib, content)| {
            let f = dir.join(format!("boot{i}.img"));
            let e = make_content(&f, mib * MIB, content, seed + 100 + i as u64, dir);
            write_at(&disk, t.parts[0].start, &fs::read(&f).unwrap());
            (t.parts[0].start, mib * MIB, content, e)
        });
        boots.push(boot);
        let pvf = dir.join(format!("pv{i}.img"));
        sparse_file(&pvf, pv_size);
        fill_random(&pvf, 0, pv_size, seed + i as u64);
        pv_files.push(pvf);
        pv_part.push((pv_start, pv_size));
        out_disks.push(disk);
    }
    let loops: Vec<LoopDev> = pv_files.iter().map(|f| LoopDev::attach(f, None)).collect();
    let refs: Vec<&LoopDev> = loops.iter().collect();
    let names: Vec<&str> = loops.iter().map(|l| l.path()).collect();
    let mut a = vec!["pvcreate", "-q"];
    a.extend(&names);
    lvm(&refs, &a);
    let mut a = vec!["vgcreate", "-q", vg];
    a.extend(&names);
    lvm(&refs, &a);
    for l in lvs {
        let size = format!("{}m", l.mib);
        let mut a = vec![
            "lvcreate",
            "-q",
            "--driverloaded",
            "n",
            "-an",
            "-Zn",
            "-L",
            &size,
            "-n",
            l.name,
        ];
        let stripes = l.stripes.to_string();
        if l.stripes > 1 {
            a.extend(["-i", &stripes, "-I", "64k"]);
        }
        a.push(vg);
        lvm(&refs, &a);
    }
    for l in lvs.iter().filter(|l| l.extend_mib > 0) {
        let size = format!("+{}m", l.extend_mib);
        let name = format!("{vg}/{}", l.name);
        lvm(
            &refs,
            &["lvextend", "-q", "--driverloaded", "n", "-L", &size, &name],
        );
    }
    let map = vg_map(&refs, vg);
    drop(refs);
    let pvs: Vec<(String, PathBuf, u64)> = loops
        .iter()
        .zip(&pv_files)
        .map(|(l, f)| (l.path().to_string(), f.clone(), 0))
        .collect();
    let mut built_lvs = Vec::new();
    for (i, l) in lvs.iter().enumerate() {
        let size = (l.mib + l.extend_mib) * MIB;
        let f = dir.join(format!("lv-{}.img", l.name));
        let e = make_content(&f, size, l.content, seed + 10 + i as u64, dir);
        map.copy(l.name, &f, &pvs, true);
        built_lvs.push((l.name.to_string(), l.content, e, size));
    }
    drop(loops);
    for ((pvf, disk), (start, _)) in pv_files.iter().zip(&out_disks).zip(&pv_part) {
        write_at(disk, *start, &fs::read(pvf).unwrap());
        fs::remove_file(pvf).unwrap();
    }
    // The map names loop devices; from here on PVs are named by disk index.
    let mut map = map;
    for (i, (dev, _, _)) in pvs.iter().enumerate() {
        let name = format!("disk{i}");
        for p in &mut map.pe_start {
            if &p.0 == dev {
                p.0 = name.clone();
            }
        }
        for s in &mut map.segments {
            for st in &mut s.stripes {
                if &st.0 == dev {
                    st.0 = name.clone();
                }
            }
        }
        map.uuids = map.uuids.replace(dev.as_str(), &name);
    }
    Built {
        disks: out_disks,
        pv_part,
        boots,
        map,
        lvs: built_lvs,
    }
}

/// Checks restored disks: LVM reads the same VG, LVs and UUIDs; every LV's and `/boot`'s
/// content is clean and identical.
fn verify(b: &Built, targets: &[PathBuf], vg: &str, dir: &Path) {
    let pv_files: Vec<PathBuf> = targets
        .iter()
        .zip(&b.pv_part)
        .enumerate()
        .map(|(i, (t, (start, size)))| {
            let f = dir.join(format!("restored-pv{i}.img"));
            extract(t, *start, *size, &f);
            f
        })
        .collect();
    {
        let loops: Vec<LoopDev> = pv_files.iter().map(|f| LoopDev::attach(f, None)).collect();
        let refs: Vec<&LoopDev> = loops.iter().collect();
        let mut again = vg_map(&refs, vg);
        for (i, l) in loops.iter().enumerate() {
            again.uuids = again.uuids.replace(l.path(), &format!("disk{i}"));
        }
        assert_eq!(
            again.uuids, b.map.uuids,
            "LVM reads another VG after the restore"
        );
    }
    let pvs: Vec<(String, PathBuf, u64)> = pv_files
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("disk{i}"), f.clone(), 0))
        .collect();
    for (name, content, want, size) in &b.lvs {
        let f = dir.join(format!("restored-lv-{name}.img"));
        sparse_file(&f, *size);
        b.map.copy(name, &f, &pvs, false);
        let got = expect_of(&f, *content, dir);
        assert_eq!(&got, want, "LV {vg}/{name} after the restore");
        if *content == Content::Swap {
            assert_zero_after_header(&f, &format!("swap LV {vg}/{name}"));
        }
    }
    for (t, boot) in targets.iter().zip(&b.boots) {
        if let Some((start, size, content, want)) = boot {
            let f = dir.join("restored-boot.img");
            extract(t, *start, *size, &f);
            assert_eq!(
                &expect_of(&f, *content, dir),
                want,
                "/boot after the restore"
            );
        }
    }
}

/// A restored swap area holds zeros after its header page (the target was garbage there).
fn assert_zero_after_header(file: &Path, what: &str) {
    let b = fs::read(file).unwrap();
    let bad = b[4096..].iter().position(|x| *x != 0);
    assert!(
        bad.is_none(),
        "{what}: byte {} after the header page is not zero",
        bad.unwrap_or(0) + 4096
    );
}

/// A swap partition: only its header page is stored; after the restore onto garbage the
/// header (UUID, label) is back and the rest of the area is zeros.
#[test]
fn a_swap_partition_is_stored_as_its_header_and_restored_as_zeros_behind_it() {
    if !need(&["mkswap", "blkid", "sfdisk"]) {
        return;
    }
    let dir = tempdir("swap");
    let d = dir.path();
    let disk = d.join("src.img");
    sparse_file(&disk, 160 * MIB);
    fill_random(&disk, 0, 160 * MIB, 8);
    sfdisk(
        &disk,
        "label: dos\nstart=2048, size=131072, type=82\ntype=83\n",
    );
    let t = read_table(&disk);
    let sw = d.join("swap.img");
    make_content(&sw, t.parts[0].size, Content::Swap, 1, d);
    // Old swapped-out pages behind the header: not to be stored, not to come back.
    fill_random(&sw, 8192, 1 << 20, 3);
    write_at(&disk, t.parts[0].start, &fs::read(&sw).unwrap());
    let want = blkid(&sw);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "img", &[&disk], &[]).ok();
    let m = info_json(&repo, "img");
    let p1 = &m["disks"][0]["table"]["partitions"][0];
    assert_eq!(p1["filesystem"], "swap", "{p1:#}");
    assert_eq!(p1["used_bytes"], 4096, "{p1:#}");
    assert_eq!(p1["uuid"], "5a1e5a1e-0000-4000-8000-0000000000aa", "{p1:#}");
    let target = d.join("target.img");
    garbage_file(&target, 160 * MIB, 9);
    restoredisk(&repo, "img", &[&target], &[]).ok();
    let back = d.join("swap-back.img");
    extract(&target, t.parts[0].start, t.parts[0].size, &back);
    assert_eq!(blkid(&back), want, "blkid of the restored swap");
    assert_eq!(sha_range(&back, 0, 4096), sha_range(&sw, 0, 4096));
    assert_zero_after_header(&back, "the restored swap partition");
}

fn stored_bytes(m: &Value) -> u64 {
    m["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["stored_bytes"].as_u64().unwrap())
        .sum()
}

/// The used bytes the real tools count, plus the LVM metadata (everything before the first
/// PE, and the table's boot region) and a few MiB of slack.
fn used_bound(b: &Built) -> u64 {
    let lvs: u64 = b.lvs.iter().map(|l| l.2.used).sum();
    let boots: u64 = b.boots.iter().flatten().map(|x| x.3.used).sum();
    let meta: u64 = b.map.pe_start.iter().map(|p| p.1).sum::<u64>() + b.disks.len() as u64 * MIB;
    lvs + boots + meta + 4 * MIB
}

fn save_restore_verify(tag: &str, vg: &str, disks: &[DiskSpec], lvs: &[Lv]) -> Value {
    let dir = tempdir(tag);
    let b = build(dir.path(), vg, disks, lvs, 7);
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let srcs: Vec<&Path> = b.disks.iter().map(|p| p.as_path()).collect();
    savedisk(&repo, "img", &srcs, &[]).ok();
    let m = info_json(&repo, "img");
    let stored = stored_bytes(&m);
    let bound = used_bound(&b);
    assert!(
        stored <= bound,
        "the image stores {stored} bytes, more than the used bytes and metadata ({bound}): \
         free extents or unused blocks were stored\n{m:#}"
    );
    let targets: Vec<PathBuf> = b
        .disks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = dir.path().join(format!("target{i}.img"));
            garbage_file(&t, dev_size(s), 900 + i as u64);
            t
        })
        .collect();
    let tr: Vec<&Path> = targets.iter().map(|p| p.as_path()).collect();
    restoredisk(&repo, "img", &tr, &[]).ok();
    verify(&b, &targets, vg, dir.path());
    m
}

fn pv_partition(m: &Value, disk: usize) -> &Value {
    let parts = m["disks"][disk]["table"]["partitions"].as_array().unwrap();
    parts.last().unwrap()
}

fn volume<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["volumes"]
        .as_array()
        .unwrap_or_else(|| panic!("no volumes in {p:#}"))
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name} in {p:#}"))
}

#[test]
fn rhel7_like_disk_boot_xfs_and_lvm_with_xfs_root_swap_and_ext4_home() {
    if !need(LVM_TOOLS) || !require_loop() {
        return;
    }
    let lvs = [
        Lv {
            extend_mib: 40,
            ..lv("root", 360, Content::Xfs)
        },
        lv("swap", 64, Content::Swap),
        lv("home", 96, Content::Ext4),
    ];
    let m = save_restore_verify(
        "rhel7",
        "vg_web01",
        &[DiskSpec {
            size: 1536 * MIB,
            boot: Some((320, Content::Xfs)),
        }],
        &lvs,
    );
    let p = pv_partition(&m, 0);
    assert_eq!(p["filesystem"], "LVM2_member", "{p:#}");
    assert_eq!(p["mode"], "used-blocks");
    assert_eq!(p["label"], "vg_web01");
    assert_eq!(volume(p, "vg_web01/root")["filesystem"], "xfs");
    assert_eq!(volume(p, "vg_web01/swap")["filesystem"], "swap");
    assert_eq!(volume(p, "vg_web01/swap")["used_bytes"], 4096);
    assert_eq!(volume(p, "vg_web01/home")["filesystem"], "ext4");
    assert!(
        p["unallocated_bytes"].as_u64().unwrap() > 300 * MIB,
        "free extents not counted: {p:#}"
    );
    let boot = &m["disks"][0]["table"]["partitions"][0];
    assert_eq!(boot["filesystem"], "xfs", "{boot:#}");
    assert_eq!(boot["mode"], "used-blocks");
}

#[test]
fn rhel6_like_disk_boot_ext4_and_lvm_with_ext4_root_and_swap() {
    if !need(LVM_TOOLS) || !require_loop() {
        return;
    }
    let m = save_restore_verify(
        "rhel6",
        "VolGroup",
        &[DiskSpec {
            size: 768 * MIB,
            boot: Some((128, Content::Ext4)),
        }],
        &[
            lv("lv_root", 300, Content::Ext4),
            lv("lv_swap", 64, Content::Swap),
        ],
    );
    let p = pv_partition(&m, 0);
    assert_eq!(volume(p, "VolGroup/lv_root")["filesystem"], "ext4");
    assert_eq!(volume(p, "VolGroup/lv_root")["mode"], "used-blocks");
}

#[test]
fn volume_group_over_two_disks_with_a_striped_lv_and_an_lv_spanning_both() {
    if !need(LVM_TOOLS) || !require_loop() {
        return;
    }
    let m = save_restore_verify(
        "twodisks",
        "vg_data",
        &[disk_spec(400), disk_spec(400)],
        &[
            Lv {
                stripes: 2,
                ..lv("striped", 200, Content::Ext4)
            },
            lv("spanning", 440, Content::Xfs),
        ],
    );
    for d in 0..2 {
        let p = pv_partition(&m, d);
        assert_eq!(p["filesystem"], "LVM2_member");
        assert_eq!(volume(p, "vg_data/striped")["layout"], "striped");
        assert_eq!(volume(p, "vg_data/striped")["mode"], "used-blocks");
        assert_eq!(volume(p, "vg_data/spanning")["mode"], "used-blocks");
    }
}

fn disk_spec(mib: u64) -> DiskSpec {
    DiskSpec {
        size: mib * MIB,
        boot: None,
    }
}

/// One disk of a two-disk VG saved alone: the LVs with a part on the other disk are copied
/// whole where they lie on this one, and the image says why.
#[test]
fn a_pv_whose_vg_has_a_pv_outside_the_image_copies_those_lvs_whole() {
    if !need(LVM_TOOLS) || !require_loop() {
        return;
    }
    let dir = tempdir("halfvg");
    let b = build(
        dir.path(),
        "vg_half",
        &[disk_spec(300), disk_spec(300)],
        &[
            lv("local", 100, Content::Ext4),
            lv("spanning", 400, Content::Ext4),
        ],
        11,
    );
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "img", &[&b.disks[0]], &[]).ok();
    let m = info_json(&repo, "img");
    let p = pv_partition(&m, 0);
    assert_eq!(volume(p, "vg_half/local")["mode"], "used-blocks", "{p:#}");
    let spanning = volume(p, "vg_half/spanning");
    assert_eq!(spanning["mode"], "raw", "{p:#}");
    let notes = p["notes"].to_string();
    assert!(
        notes.contains("not in this image") || notes.contains("missing"),
        "{p:#}"
    );
    // Every byte of the spanning LV on this disk is restored.
    let t = dir.path().join("target.img");
    garbage_file(&t, dev_size(&b.disks[0]), 5);
    restoredisk(&repo, "img", &[&t], &[]).ok();
    let (start, _) = b.pv_part[0];
    for (lv_off, dev, pv_off, len) in b.map.runs("spanning") {
        let _ = lv_off;
        if dev == "disk0" {
            assert_eq!(
                sha_range(&t, start + pv_off, len),
                sha_range(&b.disks[0], start + pv_off, len),
                "spanning LV bytes at {pv_off} of the PV"
            );
        }
    }
}

/// `mdadm --examine` of a member, without the lines that name the device.
fn examine(file: &Path, start: u64, len: u64) -> String {
    let lo = LoopDev::attach_range(file, None, Some((start, len)));
    sh("mdadm", &[OsStr::new("--examine"), lo.dev.as_os_str()])
        .lines()
        .filter(|l| !l.contains(lo.path()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two disks mirrored as servers mirror their system disks: md0 (metadata 1.2, internal
/// bitmap) holding ext4 on the first partitions, md1 (metadata 1.0, at the end) holding an LVM
/// PV with an ext4 root and swap on the second. The md superblocks are written by the volume
/// crate's generator (this kernel has no md driver to assemble arrays) and checked by
/// `mdadm --examine`; the array contents are made by the real tools.
#[test]
fn md_raid1_mirrors_of_ext4_and_of_an_lvm_pv_over_two_disks() {
    use lifeboat_volume::md::superblock::{testgen::Spec, Version};
    let mut tools = LVM_TOOLS.to_vec();
    tools.push("mdadm");
    if !need(&tools) || !require_loop() {
        return;
    }
    let dir = tempdir("mdraid");
    let d = dir.path();
    let size = 640 * MIB;
    let disks: Vec<PathBuf> = (0..2).map(|i| d.join(format!("src{i}.img"))).collect();
    for disk in &disks {
        sparse_file(disk, size);
        fill_random(disk, 0, size, 3);
        sfdisk(
            disk,
            "label: dos\nstart=2048, size=524288, type=fd\ntype=fd\n",
        );
    }
    let t = read_table(&disks[0]);
    let (p1, p2) = (&t.parts[0], &t.parts[1]);

    // md0: ext4 in the data area of each 1.2 member.
    let mut spec0 = Spec::raid1(Version::V1_2, p1.size);
    spec0.bitmap_chunk = Some(64 * 1024);
    spec0.name = "web01:0".into();
    let data0 = spec0.data_offset * 512;
    let ext0 = d.join("md0.img");
    let tree = d.join("tree-md0");
    populate_tree(&tree, TreeSpec::new(21, 12));
    mkfs_ext(
        &ext0,
        0,
        p1.size - data0,
        "ext4",
        None,
        Some(&tree),
        "md0fs",
    );
    let want0 = expect_of(&ext0, Content::Ext4, d);

    // md1: an LVM PV in the data area of each 1.0 member (superblock at the end).
    let mut spec1 = Spec::raid1(Version::V1_0, p2.size);
    spec1.name = "web01:1".into();
    spec1.uuid = *b"\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x01";
    let (sb1_off, _, _) = spec1.build();
    let data1_len = ((sb1_off / 512) & !7) * 512;
    let pvf = d.join("md1-pv.img");
    sparse_file(&pvf, data1_len);
    fill_random(&pvf, 0, data1_len, 4);
    let lvs = [
        lv("root", 200, Content::Ext4),
        lv("swap", 32, Content::Swap),
    ];
    let (map, built_lvs) = {
        let lo = LoopDev::attach(&pvf, None);
        lvm(&[&lo], &["pvcreate", "-q", lo.path()]);
        lvm(&[&lo], &["vgcreate", "-q", "vg_md", lo.path()]);
        for l in &lvs {
            let size = format!("{}m", l.mib);
            lvm(
                &[&lo],
                &[
                    "lvcreate",
                    "-q",
                    "--driverloaded",
                    "n",
                    "-an",
                    "-Zn",
                    "-L",
                    &size,
                    "-n",
                    l.name,
                    "vg_md",
                ],
            );
        }
        let mut map = vg_map(&[&lo], "vg_md");
        let pvs = vec![(lo.path().to_string(), pvf.clone(), 0)];
        let mut built = Vec::new();
        for (i, l) in lvs.iter().enumerate() {
            let f = d.join(format!("lv-{}.img", l.name));
            let e = make_content(&f, l.mib * MIB, l.content, 40 + i as u64, d);
            map.copy(l.name, &f, &pvs, true);
            built.push((l.name.to_string(), l.content, e, l.mib * MIB));
        }
        let dev = lo.path().to_string();
        for p in &mut map.pe_start {
            p.0 = p.0.replace(&dev, "disk0");
        }
        for s in &mut map.segments {
            for st in &mut s.stripes {
                st.0 = st.0.replace(&dev, "disk0");
            }
        }
        map.uuids = map.uuids.replace(&dev, "disk0");
        (map, built)
    };

    for (i, disk) in disks.iter().enumerate() {
        for (spec, part, content, data_at) in [(&spec0, p1, &ext0, data0), (&spec1, p2, &pvf, 0)] {
            let mut s = spec.clone();
            s.dev_number = i as u32;
            let (sb_off, sb, bitmap) = s.build();
            write_at(disk, part.start + data_at, &fs::read(content).unwrap());
            write_at(disk, part.start + sb_off, &sb);
            if let Some((off, b)) = bitmap {
                write_at(disk, part.start + off, &b);
            }
        }
    }
    let examined: Vec<String> = disks
        .iter()
        .flat_map(|disk| {
            [
                examine(disk, p1.start, p1.size),
                examine(disk, p2.start, p2.size),
            ]
        })
        .collect();
    assert!(
        examined[0].contains("Raid Level : raid1"),
        "{}",
        examined[0]
    );

    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let srcs: Vec<&Path> = disks.iter().map(|p| p.as_path()).collect();
    savedisk(&repo, "img", &srcs, &[]).ok();
    let m = info_json(&repo, "img");
    for disk in 0..2 {
        let parts = m["disks"][disk]["table"]["partitions"].as_array().unwrap();
        let (q1, q2) = (&parts[0], &parts[1]);
        assert_eq!(q1["filesystem"], "linux_raid_member", "{q1:#}");
        assert_eq!(q1["mode"], "used-blocks", "{q1:#}");
        assert_eq!(q1["volumes"][0]["layout"], "raid1", "{q1:#}");
        assert_eq!(q1["volumes"][0]["filesystem"], "ext4", "{q1:#}");
        let inner = &q2["volumes"][0];
        assert_eq!(inner["filesystem"], "LVM2_member", "{q2:#}");
        let lv_names: Vec<&str> = inner["volumes"]
            .as_array()
            .unwrap_or_else(|| panic!("no LVs inside md1: {q2:#}"))
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(lv_names, ["vg_md/root", "vg_md/swap"], "{q2:#}");
    }
    // Per disk: ext4's and the LVs' used bytes, the md and LVM metadata, a few MiB of slack.
    let lv_used: u64 = built_lvs.iter().map(|l| l.2.used).sum();
    let per_disk = want0.used + lv_used + data0 + map.pe_start[0].1 + 3 * MIB;
    let stored = stored_bytes(&m);
    assert!(
        stored <= 2 * per_disk,
        "the image stores {stored} bytes, more than twice {per_disk} (used + metadata)\n{m:#}"
    );

    let targets: Vec<PathBuf> = (0..2)
        .map(|i| {
            let t = d.join(format!("target{i}.img"));
            garbage_file(&t, size, 70 + i);
            t
        })
        .collect();
    let tr: Vec<&Path> = targets.iter().map(|p| p.as_path()).collect();
    restoredisk(&repo, "img", &tr, &[]).ok();
    let again: Vec<String> = targets
        .iter()
        .flat_map(|t| [examine(t, p1.start, p1.size), examine(t, p2.start, p2.size)])
        .collect();
    assert_eq!(again, examined, "mdadm --examine differs after the restore");
    for (i, t) in targets.iter().enumerate() {
        let f = d.join(format!("restored-md0-{i}.img"));
        extract(t, p1.start + data0, p1.size - data0, &f);
        assert_eq!(expect_of(&f, Content::Ext4, d), want0, "md0 on disk {i}");
        let pv = d.join(format!("restored-md1-{i}.img"));
        extract(t, p2.start, data1_len, &pv);
        {
            let lo = LoopDev::attach(&pv, None);
            let mut got = vg_map(&[&lo], "vg_md");
            got.uuids = got.uuids.replace(lo.path(), "disk0");
            assert_eq!(got.uuids, map.uuids, "LVM on md1 of disk {i}");
        }
        let pvs = vec![("disk0".to_string(), pv.clone(), 0)];
        for (name, content, want, lv_size) in &built_lvs {
            let f = d.join(format!("restored-{name}-{i}.img"));
            sparse_file(&f, *lv_size);
            map.copy(name, &f, &pvs, false);
            assert_eq!(
                &expect_of(&f, *content, d),
                want,
                "vg_md/{name} on disk {i}"
            );
            if *content == Content::Swap {
                assert_zero_after_header(&f, &format!("swap LV vg_md/{name} on disk {i}"));
            }
        }
    }
}
