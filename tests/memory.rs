//! Memory: saving (and checking) the image of a 1 TiB disk must not need memory in
//! proportion to the disk. The disk is a sparse file holding a real ext4 filesystem made by
//! mke2fs; the peak RSS of the `lifeboat` process is measured with wait4(2).
//!
//! Run with `--nocapture` to see the measured values.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const TIB: u64 = 1 << 40;
const LIMIT_KIB: u64 = 256 * 1024;

/// Runs `lifeboat ARGS`; returns (exit code, peak RSS in KiB, stderr).
fn run_measured(args: &[&str], scratch: &Path) -> (i32, u64, String) {
    let mut c = Command::new(bin());
    c.args(args).stdin(Stdio::null());
    run_peak_rss(c, scratch)
}

#[test]
fn saving_a_sparse_1_tib_disk_stays_below_256_mib_of_memory() {
    if !need(&["mke2fs", "dumpe2fs"]) {
        return;
    }
    let t = tempdir("memory");
    let d = t.path();
    let disk = d.join("huge.img");
    sparse_file(&disk, TIB);
    let tree = d.join("tree");
    populate_tree(&tree, TreeSpec::new(1300, 4));
    run_ok(
        tool("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-T", "largefile4", "-d"])
            .arg(&tree)
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
            .arg(&disk),
    );
    assert_eq!(dev_size(&disk), TIB, "mke2fs changed the disk size");
    let used = ext_used_bytes(&disk);
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();

    let started = Instant::now();
    let (code, rss, err) = run_measured(
        &[
            "savedisk",
            "--repo",
            s(&repo),
            "--image",
            "huge",
            "--disk",
            s(&disk),
        ],
        d,
    );
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "savedisk failed:\n{err}");
    eprintln!(
        "savedisk of a 1 TiB disk ({} MiB used): peak RSS {:.1} MiB, {secs:.1} s",
        used / MIB,
        rss as f64 / 1024.0
    );
    assert!(rss > 1024, "implausible RSS {rss} KiB: measurement broken");
    assert!(
        rss < LIMIT_KIB,
        "savedisk of a 1 TiB disk peaked at {:.1} MiB of RSS (limit 256 MiB)",
        rss as f64 / 1024.0
    );

    // The image is what it should be: the 1 TiB disk, ext4 in used-blocks mode, only the
    // used blocks stored.
    let m = info_json(&repo, "huge");
    assert_eq!(m["disks"][0]["size"], TIB);
    let p = &m["disks"][0]["table"]["partitions"][0];
    assert_eq!(p["filesystem"], "ext4");
    assert_eq!(p["mode"], "used-blocks");
    assert_eq!(
        p["used_bytes"], used,
        "stored bytes ≠ dumpe2fs's used blocks"
    );
    assert_eq!(m["totals"]["stored_bytes"], used);
    assert!(dir_bytes(&repo.join("huge")) < used);

    // Reading it back (check) is bounded too.
    let (code, rss, err) = run_measured(&["check", "--repo", s(&repo), "--image", "huge"], d);
    assert_eq!(code, 0, "check failed:\n{err}");
    eprintln!(
        "check of that image: peak RSS {:.1} MiB",
        rss as f64 / 1024.0
    );
    assert!(
        rss < LIMIT_KIB,
        "check peaked at {:.1} MiB",
        rss as f64 / 1024.0
    );
}
