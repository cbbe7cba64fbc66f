//! Filesystems made fresh with the real mkfs.xfs at test time, in many variants (filled
//! through a prototype file, free space fragmented with xfs_db + xfs_repair, no root
//! needed), compared with xfs_db extent by extent; and a sparse 1 TiB XFS to check that
//! scanning stays bounded and quick.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::*;
use lifeboat_fs::UsedBlocks;
use lifeboat_fs_xfs::XfsScanner;

const MIB: u64 = 1024 * 1024;

/// mkfs.xfs refuses filesystems under 300 MB unless these are all set (its fstests escape).
const SMALL_FS_ENV: [(&str, &str); 3] =
    [("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")];

/// (size, mkfs.xfs options, files to create then delete every other one of)
const VARIANTS: &[(u64, &str, u32)] = &[
    (400 * MIB, "", 0),
    (320 * MIB, "-m crc=0", 0),
    (512 * MIB, "-b size=1024 -d agcount=7", 600),
    (300 * MIB, "-m crc=0 -b size=512 -d agcount=3", 600),
    (333 * MIB + 12 * 1024, "-d agcount=5", 1300),
    (400 * MIB, "-s size=4096 -b size=8192", 0),
    (600 * MIB, "-b size=65536", 0),
    (200 * MIB, "-m rmapbt=1,reflink=1,finobt=0 -i sparse=1", 300),
    (200 * MIB, "-m bigtime=1,inobtcount=1 -i nrext64=1", 0),
    (200 * MIB, "-m crc=0 -n ftype=0 -s size=4096", 200),
    (256 * MIB, "-l agnum=2 -d agcount=4", 0),
];

/// Writes a prototype file: the root holds `n` small files in `many/` and a larger one.
fn proto(dir: &Path, n: u32) -> std::path::PathBuf {
    let small = dir.join("small.txt");
    std::fs::write(&small, b"lifeboat xfs\n").unwrap();
    let big = dir.join("big.bin");
    let pattern: Vec<u8> = (0..3_000_017u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&big, pattern).unwrap();
    let mut p = format!(
        "/dev/null\n0 0\nd--755 0 0\nbig ---644 0 0 {}\nmany d--755 0 0\n",
        big.display()
    );
    for i in 0..n {
        p += &format!("f{i} ---644 0 0 {}\n", small.display());
    }
    p += "$\n$\n";
    let path = dir.join("proto");
    std::fs::write(&path, p).unwrap();
    path
}

fn mkfs(img: &Path, size: u64, opts: &str, proto: &Path) -> Option<()> {
    let exe = tool("mkfs.xfs")?;
    let f = std::fs::File::create(img).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let mut c = Command::new(exe);
    c.envs(SMALL_FS_ENV)
        .args(["-q", "-f", "-p"])
        .arg(proto)
        .args(opts.split_whitespace())
        .arg(img);
    lifeboat_testkit::run_checked(&mut c, None);
    Some(())
}

/// Deletes every other file of /many without the kernel: zeroes their inode mode with xfs_db
/// (expert mode), then xfs_repair frees them and rebuilds the free-space B+trees.
fn fragment(img: &Path) -> Option<()> {
    let db = tool("xfs_db")?;
    let repair = tool("xfs_repair")?;
    let ls = lifeboat_testkit::run_checked(
        Command::new(&db)
            .args(["-r", "-c", "path /many", "-c", "ls"])
            .arg(img),
        None,
    );
    let mut c = Command::new(&db);
    c.arg("-x");
    for l in ls.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let odd = w
            .get(5)
            .and_then(|n| n.strip_prefix('f'))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n % 2 == 1);
        if w.get(2) == Some(&"regular") && odd {
            c.args(["-c", &format!("inode {}", w[1]), "-c", "write core.mode 0"]);
        }
    }
    lifeboat_testkit::run_checked(c.arg(img), None);
    lifeboat_testkit::run_checked(Command::new(&repair).arg(img), None);
    Some(())
}

fn repair_clean(img: &Path) -> Option<()> {
    let repair = tool("xfs_repair")?;
    lifeboat_testkit::run_checked(Command::new(repair).arg("-n").arg(img), None);
    Some(())
}

#[test]
fn fresh_filesystems_match_xfs_db_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mut failures = Vec::new();
    let mut multi_level = 0;
    for &(size, opts, files) in VARIANTS {
        let p = proto(dir.path(), files);
        if mkfs(&img, size, opts, &p).is_none() {
            return;
        }
        if files > 0 && fragment(&img).is_none() {
            return;
        }
        if repair_clean(&img).is_none() {
            return;
        }
        let Some(text) = run_xfs_db(&img) else {
            return;
        };
        let o = parse_xfs_db(&text);
        multi_level += o.ags.iter().filter(|a| a.bnolevel >= 2).count();
        let f = std::fs::File::open(&img).unwrap();
        let volume = (f, size);
        match scan(&volume) {
            Ok((info, extents)) => {
                if let Err(p) = std::panic::catch_unwind(|| {
                    assert_matches(opts, &info, &extents, &o);
                    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
                }) {
                    failures.push(format!("{opts}: {:?}", p.downcast_ref::<String>()));
                }
            }
            Err(e) => failures.push(format!("{opts}: {e}")),
        }
        std::fs::remove_file(&img).unwrap();
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert!(
        multi_level >= 3,
        "only {multi_level} AGs with a 2-level free-space tree"
    );
}

#[test]
fn an_external_log_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let log = dir.path().join("log.img");
    std::fs::File::create(&log)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    let p = proto(dir.path(), 10);
    let opts = format!("-l logdev={}", log.display());
    if mkfs(&img, 200 * MIB, &opts, &p).is_none() {
        return;
    }
    let Some(text) = run_xfs_db(&img) else { return };
    let o = parse_xfs_db(&text);
    assert_eq!(o.num("logstart"), 0);
    let f = std::fs::File::open(&img).unwrap();
    let (info, extents) = scan(&(f, 200 * MIB)).unwrap();
    assert_matches("external log", &info, &extents, &o);
    assert!(
        info.warnings.iter().any(|w| w.contains("external device")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn one_tib_sparse_xfs_scans_quickly_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    let size = 1u64 << 40;
    let p = proto(dir.path(), 0);
    // A small log keeps the sparse file small (mkfs writes the whole log).
    if mkfs(&img, size, "-K -l size=64m", &p).is_none() {
        return;
    }
    let Some(text) = run_xfs_db(&img) else { return };
    let o = parse_xfs_db(&text);
    let f = std::fs::File::open(&img).unwrap();
    let volume = (f, size);
    let t = Instant::now();
    let mut s = XfsScanner.open_xfs(&volume).unwrap();
    let extents = lifeboat_testkit::drain_checked(&mut s, size);
    let elapsed = t.elapsed();
    let mem = s.memory_bytes();
    eprintln!(
        "1 TiB: {} AGs, {} extents, {} used bytes, {elapsed:?}, {mem} bytes of buffers",
        o.ags.len(),
        extents.len(),
        s.info().used_bytes
    );
    assert!(mem <= 64 * 1024, "buffers grew to {mem} bytes");
    assert!(elapsed.as_secs() < 10, "scan took {elapsed:?}");
    assert_matches("1 TiB", &s.info().clone(), &extents, &o);
}
