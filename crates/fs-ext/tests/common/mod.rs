//! Helpers shared by the integration tests: fixtures, e2fsprogs tools, dumpe2fs parsing.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_fs::{Extent, FsError, FsInfo, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_ext::ExtScanner;

/// Names of the committed fixtures (test_data/NAME.img.zst).
pub const FIXTURES: &[&str] = &[
    "ext2-1k",
    "ext3-1k",
    "ext3-4k",
    "ext4-default",
    "ext4-1k",
    "ext4-2k",
    "ext4-4k-many-groups",
    "ext4-noflex",
    "ext4-nosparse",
    "ext4-sparse2",
    "ext4-metabg",
    "ext4-metabg-32",
    "ext4-64bit",
    "ext4-no64bit",
    "ext4-bigalloc16k",
    "ext4-bigalloc64k",
    "ext4-bigalloc-1k",
    "ext4-uninit_bg",
    "ext4-nocsum",
    "ext4-64k",
];

pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// Full path of an oracle tool, or `None` (after a loud message) when it is missing locally.
/// In CI (`CI=true`) a missing tool fails the test.
pub fn tool(name: &str) -> Option<PathBuf> {
    lifeboat_testkit::tool(name, "e2fsprogs")
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

/// The stored `dumpe2fs` output of fixture `name`.
pub fn stored_dumpe2fs(name: &str) -> String {
    let src = test_data().join(format!("{name}.dumpe2fs.zst"));
    String::from_utf8(zstd::decode_all(File::open(&src).unwrap()).unwrap()).unwrap()
}

/// "Key: value" lines of `dumpe2fs -h` output (or of a stored .expect file).
pub fn header_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with("Group "))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// (Block count − Free blocks) × Block size from `dumpe2fs -h` style text.
pub fn expected_used_bytes(text: &str) -> u64 {
    let h = header_fields(text);
    let n = |k: &str| -> u64 {
        h.get(k)
            .unwrap_or_else(|| panic!("no {k:?} in dumpe2fs output"))
            .parse()
            .unwrap()
    };
    (n("Block count") - n("Free blocks")) * n("Block size")
}

/// Runs `dumpe2fs` (with `-h` when `header_only`) on `img`; `None` when the tool is missing
/// locally.
pub fn run_dumpe2fs(img: &Path, header_only: bool) -> Option<String> {
    let exe = tool("dumpe2fs")?;
    let mut c = Command::new(exe);
    if header_only {
        c.arg("-h");
    }
    let out = c.arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "dumpe2fs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The set of used blocks according to a full `dumpe2fs` output, as sorted block ranges
/// `[start, end)`: every group's blocks minus its "Free blocks:" ranges (for bigalloc these
/// name the first block of each free cluster), plus the blocks before group 0.
pub fn used_blocks_from_dumpe2fs(text: &str) -> (u64, Vec<(u64, u64)>) {
    let h = header_fields(text);
    let bs: u64 = h["Block size"].parse().unwrap();
    let ratio = h
        .get("Cluster size")
        .map_or(1, |c| c.parse::<u64>().unwrap() / bs);
    let mut used = Vec::new();
    let mut group: Option<(u64, u64)> = None;
    let mut first_group_start = None;
    for line in text.lines() {
        if let Some(r) = line
            .strip_prefix("Group ")
            .and_then(|rest| rest.split("(Blocks ").nth(1))
        {
            let r = r.split(')').next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            first_group_start.get_or_insert(a);
            group = Some((a, b + 1));
        } else if !line.starts_with("  ") {
            continue;
        } else if let Some(list) = line.trim().strip_prefix("Free blocks: ") {
            let (a, b) = group.take().expect("Free blocks line outside a group");
            let mut pos = a;
            for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                let (x, y) = r.split_once('-').unwrap_or((r, r));
                let (x, y): (u64, u64) = (x.parse().unwrap(), y.parse().unwrap());
                if x > pos {
                    used.push((pos, x));
                }
                pos = (y + ratio).min(b);
            }
            if pos < b {
                used.push((pos, b));
            }
        } else if line.trim() == "Free blocks:" {
            let (a, b) = group.take().expect("Free blocks line outside a group");
            used.push((a, b));
        }
    }
    if let Some(s) = first_group_start.filter(|&s| s > 0) {
        used.insert(0, (0, s));
    }
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in used {
        match merged.last_mut() {
            Some(l) if s <= l.1 => l.1 = l.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    (bs, merged)
}

/// Drains a stream, checking the stream contract (`lifeboat_testkit::drain_checked`) and that
/// the first extent starts the volume (boot block and superblock).
pub fn drain_checked(stream: &mut dyn UsedBlocks, volume_len: u64) -> Vec<Extent> {
    let v = lifeboat_testkit::drain_checked(stream, volume_len);
    assert!(
        !v.is_empty() && v[0].offset == 0 && v[0].len >= 2048,
        "boot block and superblock must be kept: {:?}",
        v.first()
    );
    v
}

/// Opens `volume` with the ext scanner and drains it (checked).
pub fn scan(volume: &dyn ReadAt) -> Result<(FsInfo, Vec<Extent>), FsError> {
    let s = ExtScanner;
    assert!(s.probe(volume), "probe rejected the volume");
    let mut st = s.open_ext(volume)?;
    let info = st.info().clone();
    let v = drain_checked(&mut st, volume.len());
    Ok((info, v))
}

/// Compares extents (bytes) with used block ranges from dumpe2fs, exactly.
pub fn assert_same_coverage(
    name: &str,
    extents: &[Extent],
    bs: u64,
    used: &[(u64, u64)],
    total: u64,
) {
    let want: Vec<(u64, u64)> = used
        .iter()
        .map(|&(s, e)| (s * bs, (e * bs).min(total)))
        .collect();
    let got: Vec<(u64, u64)> = extents.iter().map(|e| (e.offset, e.end())).collect();
    if want != got {
        let first = want
            .iter()
            .zip(&got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        panic!(
            "{name}: used ranges differ from dumpe2fs at index {first}: dumpe2fs {:?}, scanner {:?} ({} vs {} ranges)",
            want.get(first),
            got.get(first),
            want.len(),
            got.len()
        );
    }
}

/// Runs mke2fs with the fixtures' mke2fs.conf; `None` when it is missing locally.
pub fn mke2fs(img: &Path, size: u64, opts: &[&str], tree: Option<&Path>) -> Option<()> {
    let exe = tool("mke2fs")?;
    let f = File::create(img).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let mut c = Command::new(exe);
    c.env("MKE2FS_CONFIG", test_data().join("mke2fs.conf"))
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args(["-q", "-F"])
        .args(opts);
    if let Some(t) = tree {
        c.arg("-d").arg(t);
    }
    let out = c.arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "mke2fs {opts:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// A small tree of files of a few sizes for `mke2fs -d`.
pub fn make_tree(dir: &Path) -> PathBuf {
    let t = dir.join("tree");
    std::fs::create_dir_all(t.join("a/b")).unwrap();
    std::fs::write(t.join("small.txt"), b"lifeboat\n").unwrap();
    let pattern: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(t.join("a/big.bin"), &pattern).unwrap();
    std::fs::write(t.join("a/b/odd.bin"), &pattern[..12_345]).unwrap();
    for i in 0..30 {
        std::fs::write(t.join(format!("a/f{i}")), format!("file {i}\n")).unwrap();
    }
    t
}
