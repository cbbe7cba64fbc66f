//! Helpers shared by the integration tests: fixtures, the dosfstools/exfatprogs oracles and
//! their output parsing, and a checked drain of a used-extent stream.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_fs::{Extent, ReadAt, UsedBlocks};

/// FAT fixtures (test_data/NAME.img.zst with NAME.fsck).
pub const FAT_FIXTURES: &[&str] = &[
    "fat12-floppy",
    "fat12-4k",
    "fat16-2k",
    "fat16-4kS",
    "fat16-64k",
    "fat32-512",
    "fat32-4k",
    "fat32-4kS",
    "fat32-1fat-bad",
];

/// exFAT fixtures (test_data/NAME.img.zst with NAME.dump).
pub const EXFAT_FIXTURES: &[&str] = &[
    "exfat-4k",
    "exfat-512",
    "exfat-32k",
    "exfat-4kS",
    "exfat-pack",
];

/// Serial number make.sh gives every fixture.
pub const SERIAL: &str = "4C1F-0A4E";

pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// Full path of an oracle tool, or `None` (after a loud message) when it is missing locally.
/// In CI (`CI=true`) a missing tool fails the test.
pub fn tool(name: &str) -> Option<PathBuf> {
    lifeboat_testkit::tool(name, "dosfstools, mtools, exfatprogs")
}

/// Decompresses fixture `name` into a sparse file in `dir`; returns its path.
pub fn fixture_file(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.img"));
    lifeboat_testkit::unpack_sparse(&test_data().join(format!("{name}.img.zst")), &out);
    out
}

/// Decompresses fixture `name` into memory.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    lifeboat_testkit::decompress(&test_data().join(format!("{name}.img.zst")))
}

/// A stored oracle output (NAME.fsck or NAME.dump).
pub fn stored(name: &str, ext: &str) -> String {
    std::fs::read_to_string(test_data().join(format!("{name}.{ext}"))).unwrap()
}

/// What `fsck.fat -v -n` says about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckFat {
    pub cluster_size: u64,
    pub data_offset: u64,
    pub data_clusters: u64,
    pub used_clusters: u64,
    pub total_clusters: u64,
}

fn number_before(text: &str, suffix: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.trim_end().ends_with(suffix) || l.contains(suffix))
        .unwrap_or_else(|| panic!("no line with {suffix:?} in:\n{text}"));
    let head = &line[..line.find(suffix).unwrap()];
    head.split_whitespace().last().unwrap().parse().unwrap()
}

/// Parses `fsck.fat -v -n` output.
pub fn parse_fsck_fat(text: &str) -> FsckFat {
    let last = text
        .lines()
        .rfind(|l| l.ends_with(" clusters"))
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let frac = last.split_whitespace().rev().nth(1).unwrap();
    let (u, t) = frac.split_once('/').unwrap();
    let data = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Data area starts at byte "))
        .unwrap();
    FsckFat {
        cluster_size: number_before(text, " bytes per cluster"),
        data_offset: data.split_whitespace().next().unwrap().parse().unwrap(),
        data_clusters: number_before(text, " data clusters"),
        used_clusters: u.parse().unwrap(),
        total_clusters: t.parse().unwrap(),
    }
}

/// Runs `fsck.fat -v -n` (any exit status); `None` when the tool is missing locally.
pub fn run_fsck_fat(img: &Path) -> Option<(bool, String)> {
    let out = Command::new(tool("fsck.fat")?)
        .args(["-v", "-n"])
        .arg(img)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// What `dump.exfat` says about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpExfat {
    pub cluster_size: u64,
    pub total_clusters: u64,
    pub free_clusters: u64,
    pub fat_offset_sectors: u64,
    pub fat_length_sectors: u64,
    pub sector_bits: u64,
    pub label: String,
}

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
        .trim()
        .to_string()
}

/// Parses `dump.exfat` output.
pub fn parse_dump_exfat(text: &str) -> DumpExfat {
    let n = |k: &str| -> u64 { field(text, k).parse().unwrap() };
    DumpExfat {
        cluster_size: n("Cluster size:"),
        total_clusters: n("Total Clusters:"),
        free_clusters: n("Free Clusters:"),
        fat_offset_sectors: n("FAT Offset(sector offset):"),
        fat_length_sectors: n("FAT Length(sectors):"),
        sector_bits: n("Sector Size Bits:"),
        label: field(text, "Volume label:"),
    }
}

/// Runs `dump.exfat`; `None` when the tool is missing locally.
pub fn run_dump_exfat(img: &Path) -> Option<String> {
    let out = Command::new(tool("dump.exfat")?).arg(img).output().unwrap();
    assert!(out.status.success(), "dump.exfat failed");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Drains a stream, checking the stream contract (`lifeboat_testkit::drain_checked`) and that
/// the first extent starts the volume (the boot sector).
pub fn drain_checked(stream: &mut dyn UsedBlocks, volume_len: u64) -> Vec<Extent> {
    let v = lifeboat_testkit::drain_checked(stream, volume_len);
    assert!(
        !v.is_empty() && v[0].offset == 0 && v[0].len >= 512,
        "the boot sector must be kept: {:?}",
        v.first()
    );
    v
}

/// Writes only the `extents` of `src` into a new sparse file `dst` of the same size
/// (everything else reads as zeros), as a restore onto a zeroed disk would.
pub fn copy_extents(src: &Path, extents: &[Extent], dst: &Path) {
    let f = File::open(src).unwrap();
    let len = f.metadata().unwrap().len();
    let volume = (f, len);
    let out = File::create(dst).unwrap();
    out.set_len(len).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for e in extents {
        let mut off = e.offset;
        while off < e.end() {
            let n = (e.end() - off).min(buf.len() as u64) as usize;
            volume.read_exact_at(&mut buf[..n], off).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&out, &buf[..n], off).unwrap();
            off += n as u64;
        }
    }
}

/// Every file below `root` (relative path → contents), directories as empty entries.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let mut m = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                m.insert(rel, None);
                stack.push(p);
            } else {
                m.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    m
}

/// Extracts every file of a FAT image with `mcopy -s`; `None` when mtools is missing.
pub fn mcopy_all(
    img: &Path,
    out: &Path,
) -> Option<std::collections::BTreeMap<String, Option<Vec<u8>>>> {
    let exe = tool("mcopy")?;
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new(exe)
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-n", "-i"])
        .arg(img)
        .arg("::/")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mcopy failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(tree(out))
}
