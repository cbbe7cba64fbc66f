//! Partition tables made by the real tools (`sfdisk`, `sgdisk`, `losetup -b 4096` for 4Kn
//! disks), read back with `read_layout` and compared with what the tools themselves print.
//!
//! Needs util-linux (sfdisk, losetup), gdisk (sgdisk), e2fsprogs, and root for loop devices.
//! Locally a test that cannot run says so loudly and passes; with `CI=true` it fails.

use lifeboat_parttable::{
    gpt_type_name, mbr_type_name, read_layout, relocate_gpt, Layout, PartError, PartitionKind,
    TableKind,
};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<String> = path
        .split(':')
        .map(str::to_string)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(String::from))
        .collect();
    dirs.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// True when the test can run; otherwise skips loudly, or panics under CI=true.
fn can_run(test: &str, tools: &[&str], root: bool) -> bool {
    let mut why = Vec::new();
    if root && !is_root() {
        why.push("not running as root (needed for loop devices)".to_string());
    }
    for t in tools {
        if find_tool(t).is_none() {
            why.push(format!("`{t}` not installed"));
        }
    }
    if why.is_empty() {
        return true;
    }
    let why = why.join(", ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run under CI=true: {why}");
    }
    eprintln!("\n!!!!! SKIPPED {test}: {why} !!!!!\n");
    false
}

fn run_with_input(tool: &str, args: &[&str], input: Option<&str>) -> String {
    let exe = find_tool(tool).unwrap_or_else(|| PathBuf::from(tool));
    lifeboat_testkit::run_checked(Command::new(&exe).args(args), input)
}

fn run(tool: &str, args: &[&str]) -> String {
    run_with_input(tool, args, None)
}

fn blank(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    File::create(&p).unwrap().set_len(size).unwrap();
    p
}

/// Opens a file or block device as a `ReadAt` of its full length.
fn open(p: &Path) -> (File, u64) {
    let mut f = File::open(p).unwrap();
    let len = f.seek(SeekFrom::End(0)).unwrap();
    (f, len)
}

/// A loop device detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach_4k(img: &Path) -> Loop {
        let out = run(
            "losetup",
            &["-b", "4096", "-f", "--show", img.to_str().unwrap()],
        );
        Loop(PathBuf::from(out.trim()))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new(find_tool("losetup").unwrap())
            .arg("-d")
            .arg(&self.0)
            .status();
    }
}

/// Checks the invariants every layout has: regions sorted, non-overlapping, inside the disk
/// and outside every partition.
fn check_regions(l: &Layout) {
    for w in l.boot_regions.windows(2) {
        assert!(w[0].end() <= w[1].offset, "regions overlap: {w:?}");
    }
    for r in &l.boot_regions {
        assert!(r.len > 0 && r.end() <= l.disk_size, "{r:?}");
        for p in &l.partitions {
            assert!(
                r.end() <= p.start || r.offset >= p.end(),
                "{r:?} overlaps {p:?}"
            );
        }
    }
}

/// True when the boot regions (adjacent ones joined) cover `[from, to)`.
fn covered(l: &Layout, from: u64, to: u64) -> bool {
    let mut at = from;
    for r in &l.boot_regions {
        if r.offset <= at && r.end() > at {
            at = r.end();
        }
    }
    at >= to
}

const MBR_SCRIPT: &str = "label: dos
label-id: 0x1234abcd
start=1MiB, size=8MiB, type=83, bootable
size=8MiB, type=82
size=8MiB, type=7
type=5
size=4MiB, type=83
size=4MiB, type=8e
size=4MiB, type=b
";

/// An MBR disk with 3 primary and 3 logical partitions, read back and compared with
/// `sfdisk --json`.
fn mbr_matches_sfdisk(ss: u64) {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "mbr.img", 64 << 20);
    let lp = (ss == 4096).then(|| Loop::attach_4k(&img));
    let dev = lp
        .as_ref()
        .map_or(img.to_str().unwrap(), |l| l.path())
        .to_string();
    run_with_input("sfdisk", &["-q", &dev], Some(MBR_SCRIPT));
    let json: serde_json::Value = serde_json::from_str(&run("sfdisk", &["--json", &dev])).unwrap();
    let table = &json["partitiontable"];
    assert_eq!(table["sectorsize"].as_u64().unwrap_or(512), ss);
    let layout = read_layout(&open(Path::new(&dev)), ss as u32).unwrap();
    assert_eq!(layout.kind, TableKind::Mbr);
    assert_eq!(layout.disk_id.as_deref(), table["id"].as_str());
    assert!(layout.warnings.is_empty(), "{:?}", layout.warnings);

    let mut extended_start = None;
    let mut compared = 0;
    for p in table["partitions"].as_array().unwrap() {
        let node = p["node"].as_str().unwrap();
        let digits: String = node
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let number: u32 = digits.parse().unwrap();
        let ty = u8::from_str_radix(p["type"].as_str().unwrap(), 16).unwrap();
        let start = p["start"].as_u64().unwrap() * ss;
        let size = p["size"].as_u64().unwrap() * ss;
        if matches!(ty, 0x05 | 0x0f | 0x85) {
            extended_start = Some(start);
            assert!(layout.partition(number).is_none(), "extended is not listed");
            continue;
        }
        let ours = layout
            .partition(number)
            .unwrap_or_else(|| panic!("partition {number} missing from {layout:#?}"));
        assert_eq!((ours.start, ours.size), (start, size), "partition {number}");
        assert_eq!(ours.type_code, format!("0x{ty:02x}"));
        assert_eq!(ours.type_name, mbr_type_name(ty));
        assert_eq!(ours.bootable, p["bootable"].as_bool().unwrap_or(false));
        assert_eq!(
            ours.kind,
            if number <= 4 {
                PartitionKind::Primary
            } else {
                PartitionKind::Logical
            }
        );
        compared += 1;
    }
    assert_eq!(compared, 6);
    assert_eq!(layout.partitions.len(), 6);

    // Boot regions: the MBR and the gap up to the first partition, and every EBR.
    check_regions(&layout);
    let first = layout.partitions.iter().map(|p| p.start).min().unwrap();
    assert_eq!(first, 1 << 20);
    assert!(covered(&layout, 0, first), "{:#?}", layout.boot_regions);
    let ext = extended_start.unwrap();
    assert!(covered(&layout, ext, ext + ss), "first EBR");
    let (mut f, _) = open(Path::new(&dev));
    for p in layout
        .partitions
        .iter()
        .filter(|p| p.kind == PartitionKind::Logical)
    {
        let r = layout
            .boot_regions
            .iter()
            .find(|r| r.end() == p.start)
            .unwrap_or_else(|| panic!("no region before logical {}", p.number));
        let mut sig = [0u8; 2];
        f.seek(SeekFrom::Start(r.offset + 510)).unwrap();
        f.read_exact(&mut sig).unwrap();
        assert_eq!(
            sig,
            [0x55, 0xaa],
            "the region before {} starts with its EBR",
            p.number
        );
    }
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk_512() {
    if can_run(
        "mbr_with_logical_partitions_matches_sfdisk_512",
        &["sfdisk"],
        false,
    ) {
        mbr_matches_sfdisk(512);
    }
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk_4096() {
    if can_run(
        "mbr_with_logical_partitions_matches_sfdisk_4096",
        &["sfdisk", "losetup"],
        true,
    ) {
        mbr_matches_sfdisk(4096);
    }
}

#[test]
fn mbr_bootable_flag_is_on_the_right_partition() {
    if !can_run(
        "mbr_bootable_flag_is_on_the_right_partition",
        &["sfdisk"],
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "boot.img", 16 << 20);
    let script = "label: dos\nstart=2048, size=4MiB, type=c\nsize=4MiB, type=83, bootable\n";
    run_with_input("sfdisk", &["-q", img.to_str().unwrap()], Some(script));
    let json: serde_json::Value =
        serde_json::from_str(&run("sfdisk", &["--json", img.to_str().unwrap()])).unwrap();
    let parts = json["partitiontable"]["partitions"].as_array().unwrap();
    let layout = read_layout(&open(&img), 512).unwrap();
    for (p, ours) in parts.iter().zip(&layout.partitions) {
        assert_eq!(ours.bootable, p["bootable"].as_bool().unwrap_or(false));
    }
    assert!(!layout.partitions[0].bootable && layout.partitions[1].bootable);
    assert_eq!(layout.partitions[0].type_name, "W95 FAT32 (LBA)");
}

/// What `sgdisk -i N` says about one partition.
struct SgdiskPart {
    type_guid: String,
    unique_guid: String,
    first: u64,
    last: u64,
    attrs: u64,
    name: String,
}

fn sgdisk_numbers(dev: &str) -> Vec<u32> {
    let out = run("sgdisk", &["-p", dev]);
    out.lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn sgdisk_disk_guid(dev: &str) -> String {
    let out = run("sgdisk", &["-p", dev]);
    out.lines()
        .find_map(|l| l.strip_prefix("Disk identifier (GUID): "))
        .unwrap()
        .trim()
        .to_string()
}

fn sgdisk_info(dev: &str, n: u32) -> SgdiskPart {
    let out = run("sgdisk", &["-i", &n.to_string(), dev]);
    let field = |key: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in {out}"))
            .trim()
            .to_string()
    };
    let first_word = |s: String| s.split_whitespace().next().unwrap().to_string();
    let name = field("Partition name:");
    SgdiskPart {
        type_guid: first_word(field("Partition GUID code:")),
        unique_guid: field("Partition unique GUID:"),
        first: first_word(field("First sector:")).parse().unwrap(),
        last: first_word(field("Last sector:")).parse().unwrap(),
        attrs: u64::from_str_radix(&field("Attribute flags:"), 16).unwrap(),
        name: name.trim_matches('\'').to_string(),
    }
}

fn make_gpt(dev: &str) {
    run(
        "sgdisk",
        &[
            "-o",
            "-n",
            "1:1MiB:+1MiB",
            "-t",
            "1:ef02",
            "-c",
            "1:bios grub",
            "-n",
            "2:0:+8MiB",
            "-t",
            "2:ef00",
            "-c",
            "2:ESP",
            "-n",
            "3:0:+8MiB",
            "-t",
            "3:8300",
            "-c",
            "3:root",
            "-n",
            "4:0:+4MiB",
            "-t",
            "4:8200",
            "-c",
            "4:swap",
            "-n",
            "6:0:+4MiB",
            "-t",
            "6:0700",
            "-c",
            "6:Data Ümlaut",
            "-n",
            "7:0:+2MiB",
            "-t",
            "7:fb00",
            "-c",
            "7:vmfs",
            "-A",
            "3:set:2",
            dev,
        ],
    );
}

/// Compares `read_layout` with `sgdisk -p` / `sgdisk -i N`.
fn compare_with_sgdisk(dev: &str, layout: &Layout, ss: u64) {
    assert_eq!(layout.kind, TableKind::Gpt);
    assert_eq!(
        layout.disk_id.as_deref(),
        Some(sgdisk_disk_guid(dev).as_str())
    );
    let numbers = sgdisk_numbers(dev);
    let ours: Vec<u32> = layout.partitions.iter().map(|p| p.number).collect();
    assert_eq!(ours, numbers);
    for n in numbers {
        let s = sgdisk_info(dev, n);
        let p = layout.partition(n).unwrap();
        assert_eq!(p.start, s.first * ss, "partition {n}");
        assert_eq!(p.size, (s.last - s.first + 1) * ss, "partition {n}");
        assert_eq!(p.type_code, s.type_guid, "partition {n}");
        assert_eq!(p.guid.as_deref(), Some(s.unique_guid.as_str()));
        assert_eq!(p.name, s.name);
        assert_eq!(p.bootable, s.attrs & 4 != 0);
        assert_eq!(p.kind, PartitionKind::Gpt);
        assert_eq!(p.type_name, gpt_type_name(&s.type_guid));
    }
}

fn gpt_matches_sgdisk(ss: u64) {
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "gpt.img", 64 << 20);
    let lp = (ss == 4096).then(|| Loop::attach_4k(&img));
    let dev = lp
        .as_ref()
        .map_or(img.to_str().unwrap(), |l| l.path())
        .to_string();
    make_gpt(&dev);
    let layout = read_layout(&open(Path::new(&dev)), ss as u32).unwrap();
    assert!(layout.warnings.is_empty(), "{:?}", layout.warnings);
    compare_with_sgdisk(&dev, &layout, ss);
    let names: Vec<&str> = layout
        .partitions
        .iter()
        .map(|p| p.type_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "BIOS boot",
            "EFI System",
            "Linux filesystem",
            "Linux swap",
            "Microsoft basic data",
            "VMware VMFS"
        ]
    );

    check_regions(&layout);
    assert!(
        covered(&layout, 0, 1 << 20),
        "MBR, GPT header, entries, gap"
    );
    // Backup: 128 entries of 128 bytes before the last sector.
    let sectors = layout.disk_size / ss;
    let esec = 16384 / ss;
    assert!(
        covered(&layout, (sectors - 1 - esec) * ss, (sectors - 1) * ss)
            && covered(&layout, (sectors - 1) * ss, sectors * ss),
        "{:#?}",
        layout.boot_regions
    );
    // Wrong sector size: a helpful error.
    let other = if ss == 512 { 4096 } else { 512 };
    let e = read_layout(&open(Path::new(&dev)), other).unwrap_err();
    assert!(e.to_string().contains(&format!("{ss}-byte sectors")), "{e}");
}

#[test]
fn gpt_matches_sgdisk_512() {
    if can_run("gpt_matches_sgdisk_512", &["sgdisk"], false) {
        gpt_matches_sgdisk(512);
    }
}

#[test]
fn gpt_matches_sgdisk_4096() {
    if can_run("gpt_matches_sgdisk_4096", &["sgdisk", "losetup"], true) {
        gpt_matches_sgdisk(4096);
    }
}

fn zero_sector(img: &Path, lba: u64, ss: u64) {
    let mut f = OpenOptions::new().write(true).open(img).unwrap();
    f.seek(SeekFrom::Start(lba * ss)).unwrap();
    f.write_all(&vec![0u8; ss as usize]).unwrap();
}

#[test]
fn damaged_gpt_headers_fall_back_or_fail_clearly() {
    if !can_run(
        "damaged_gpt_headers_fall_back_or_fail_clearly",
        &["sgdisk"],
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "gpt.img", 32 << 20);
    make_gpt(img.to_str().unwrap());
    let good = read_layout(&open(&img), 512).unwrap();
    let last = good.disk_size / 512 - 1;

    zero_sector(&img, last, 512);
    let l = read_layout(&open(&img), 512).unwrap();
    assert_eq!(l.partitions, good.partitions);
    assert!(
        l.warnings.iter().any(|w| w.contains("backup")),
        "{:?}",
        l.warnings
    );
    check_regions(&l);
    assert!(
        covered(&l, last * 512, (last + 1) * 512),
        "damaged backup kept"
    );

    let img2 = blank(dir.path(), "gpt2.img", 32 << 20);
    make_gpt(img2.to_str().unwrap());
    let good2 = read_layout(&open(&img2), 512).unwrap();
    zero_sector(&img2, 1, 512);
    let l = read_layout(&open(&img2), 512).unwrap();
    assert_eq!(l.partitions, good2.partitions);
    assert_eq!(l.disk_id, good2.disk_id);
    assert!(
        l.warnings.iter().any(|w| w.contains("primary")),
        "{:?}",
        l.warnings
    );
    check_regions(&l);

    zero_sector(&img2, last, 512);
    let e = read_layout(&open(&img2), 512).unwrap_err();
    assert!(matches!(e, PartError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("protective"), "{e}");
}

#[test]
fn disks_without_a_table_have_no_partitions_and_no_regions() {
    if !can_run(
        "disks_without_a_table_have_no_partitions_and_no_regions",
        &["mkfs.ext4"],
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "ext4.img", 16 << 20);
    let zero = read_layout(&open(&img), 512).unwrap();
    assert_eq!(zero.kind, TableKind::None);
    run("mkfs.ext4", &["-q", "-F", img.to_str().unwrap()]);
    for ss in [512, 4096] {
        let l = read_layout(&open(&img), ss).unwrap();
        assert_eq!(l.kind, TableKind::None);
        assert!(l.partitions.is_empty() && l.boot_regions.is_empty());
        assert!(l.warnings.is_empty());
    }
}

fn partition_rows(dev: &str) -> Vec<String> {
    run("sgdisk", &["-p", dev])
        .lines()
        .skip_while(|l| !l.starts_with("Number"))
        .map(str::to_string)
        .collect()
}

fn verify_ok(dev: &str) -> String {
    let out = run("sgdisk", &["-v", dev]);
    assert!(out.contains("No problems found"), "sgdisk -v {dev}:\n{out}");
    out
}

/// Copies `small` into the start of a new file of `size` bytes.
fn grow_copy(small: &Path, big: &Path, size: u64) {
    std::fs::copy(small, big).unwrap();
    OpenOptions::new()
        .write(true)
        .open(big)
        .unwrap()
        .set_len(size)
        .unwrap();
}

#[test]
fn relocate_gpt_onto_a_larger_disk_512() {
    if !can_run("relocate_gpt_onto_a_larger_disk_512", &["sgdisk"], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = blank(dir.path(), "small.img", 40 << 20);
    make_gpt(small.to_str().unwrap());
    let before = partition_rows(small.to_str().unwrap());
    let small_layout = read_layout(&open(&small), 512).unwrap();
    let big = dir.path().join("big.img");
    grow_copy(&small, &big, 100 << 20);
    let grown = read_layout(&open(&big), 512).unwrap();
    assert!(
        grown
            .warnings
            .iter()
            .any(|w| w.contains("larger than its table")),
        "{:?}",
        grown.warnings
    );

    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&big)
        .unwrap();
    relocate_gpt(&mut f, 512, 100 << 20).unwrap();
    drop(f);
    let dev = big.to_str().unwrap();
    verify_ok(dev);
    assert_eq!(partition_rows(dev), before);
    let after = read_layout(&open(&big), 512).unwrap();
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    assert_eq!(after.partitions, small_layout.partitions);
    assert_eq!(after.disk_id, small_layout.disk_id);
    let out = run("sgdisk", &["-p", dev]);
    assert!(
        out.contains(&format!("last usable sector is {}", (100 << 20) / 512 - 34)),
        "{out}"
    );
    // The old backup header is gone.
    let mut old = vec![0u8; 512];
    let mut f = File::open(&big).unwrap();
    f.seek(SeekFrom::Start((40 << 20) - 512)).unwrap();
    f.read_exact(&mut old).unwrap();
    assert!(old.iter().all(|b| *b == 0));

    // Too small for the partitions.
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&big)
        .unwrap();
    let e = relocate_gpt(&mut f, 512, 20 << 20).unwrap_err();
    assert!(matches!(e, PartError::DiskTooSmall { .. }), "{e}");
}

#[test]
fn relocate_gpt_onto_a_larger_disk_4096() {
    if !can_run(
        "relocate_gpt_onto_a_larger_disk_4096",
        &["sgdisk", "losetup"],
        true,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = blank(dir.path(), "small.img", 40 << 20);
    let before = {
        let lp = Loop::attach_4k(&small);
        make_gpt(lp.path());
        let rows = partition_rows(lp.path());
        let l = read_layout(&open(&lp.0), 4096).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        rows
    };
    let big = dir.path().join("big.img");
    grow_copy(&small, &big, 100 << 20);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&big)
        .unwrap();
    relocate_gpt(&mut f, 4096, 100 << 20).unwrap();
    drop(f);
    let lp = Loop::attach_4k(&big);
    verify_ok(lp.path());
    assert_eq!(partition_rows(lp.path()), before);
    let l = read_layout(&open(&big), 4096).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let sectors = (100u64 << 20) / 4096;
    assert!(covered(&l, (sectors - 5) * 4096, sectors * 4096));
}

#[test]
fn type_names_agree_with_sfdisk() {
    if !can_run("type_names_agree_with_sfdisk", &["sfdisk"], false) {
        return;
    }
    let mut checked = 0;
    for line in run("sfdisk", &["-T", "-X", "gpt"]).lines() {
        let Some((guid, name)) = line.split_once("  ") else {
            continue;
        };
        if guid.len() != 36 {
            continue;
        }
        let ours = gpt_type_name(guid);
        if ours != "unknown" {
            assert_eq!(ours, name.trim(), "{guid}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} GPT names checked");
    let mut checked = 0;
    for line in run("sfdisk", &["-T", "-X", "dos"]).lines() {
        let line = line.trim();
        let Some((code, name)) = line.split_once("  ") else {
            continue;
        };
        let Ok(code) = u8::from_str_radix(code.trim(), 16) else {
            continue;
        };
        let ours = mbr_type_name(code);
        if ours != "unknown" {
            assert_eq!(ours, name.trim(), "0x{code:02x}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} MBR names checked");
}
