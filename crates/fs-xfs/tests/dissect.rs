//! XFS images made elsewhere: the test images shipped in the source distribution of the
//! Python package `dissect.xfs` (pinned version, fetched with `pip download` at test time
//! into a temporary directory, never committed). Every image must be scanned without a
//! panic, and where xfs_db reads it, the scan must match xfs_db extent by extent.
//!
//! Without network or pip the test skips loudly; with `CI=true` it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The pinned release of dissect.xfs.
const VERSION: &str = "3.13";

fn skip(why: &str) -> Option<PathBuf> {
    if lifeboat_testkit::in_ci() {
        panic!("dissect.xfs {VERSION} test images are required in CI (CI=true): {why}");
    }
    eprintln!("!!!!! SKIPPING the dissect.xfs images test: {why} !!!!!");
    None
}

/// Downloads and unpacks the sdist; returns the directory of its test images.
fn fetch(dir: &Path) -> Option<PathBuf> {
    let Some(pip) = ["pip3", "pip"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        return skip("pip is not installed");
    };
    let out = Command::new(pip)
        .args(["download", "--no-binary", ":all:", "--no-deps", "--dest"])
        .arg(dir)
        .arg(format!("dissect.xfs=={VERSION}"))
        .output()
        .unwrap();
    if !out.status.success() {
        return skip(&format!(
            "pip download failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let sdist = dir.join(format!("dissect_xfs-{VERSION}.tar.gz"));
    lifeboat_testkit::run_checked(
        Command::new("tar")
            .arg("xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(dir),
        None,
    );
    Some(dir.join(format!("dissect_xfs-{VERSION}/tests/_data")))
}

#[test]
fn dissect_xfs_images_match_xfs_db() {
    let dir = tempfile::tempdir().unwrap();
    let Some(data) = fetch(dir.path()) else {
        return;
    };
    let mut images = Vec::new();
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "gz") {
            lifeboat_testkit::run_checked(Command::new("gunzip").arg("-f").arg(&p), None);
            images.push(p.with_extension(""));
        }
    }
    images.sort();
    assert!(
        images.len() >= 5,
        "only {} images in {}",
        images.len(),
        data.display()
    );
    let mut compared = 0;
    for img in &images {
        let name = img.file_name().unwrap().to_string_lossy().into_owned();
        let f = std::fs::File::open(img).unwrap();
        let len = f.metadata().unwrap().len();
        let volume = (f, len);
        // Must not panic, whatever the image; these are all clean filesystems, so refusing
        // one is a failure too.
        let (info, extents) = scan(&volume).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "{name}: {} of {} bytes used",
            info.used_bytes, info.total_bytes
        );
        let Some(text) = run_xfs_db(img) else {
            return;
        };
        assert_matches(&name, &info, &extents, &parse_xfs_db(&text));
        compared += 1;
    }
    assert_eq!(compared, images.len());
}
