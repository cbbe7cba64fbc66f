//! Real VMFS5/VMFS6 volumes made by ESXi, from the pinned `dissect.vmfs` source distribution.
//!
//! The sdist (AGPL-3.0 test data) is downloaded at test time into a cache directory outside
//! the repository (`$LIFEBOAT_TEST_DATA`, else `$XDG_CACHE_HOME/lifeboat-test-data`, else
//! `/var/cache/lifeboat-test-data`), checked against its pinned SHA-256, and the wanted
//! `*.bin.gz` images are unpacked there (sparse). Nothing of it is ever written into the
//! repository. With `CI=true` a failed download is a test failure; otherwise the test skips
//! loudly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Pinned package version.
pub const SDIST_VERSION: &str = "3.13";
/// SHA-256 of `dissect_vmfs-3.13.tar.gz`.
pub const SDIST_SHA256: &str = "904a4116b944acfc6a7a9de013ae1db14c760cb76138fd77c6a5b510b98c828d";

static LOCK: Mutex<()> = Mutex::new(());

/// True when running in CI (`CI=true`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails in CI, prints a loud skip note otherwise; returns `None` for the caller to skip.
pub fn unavailable<T>(what: &str) -> Option<T> {
    if ci() {
        panic!("CI=true and {what}");
    }
    eprintln!("SKIPPED (not in CI): {what}");
    None
}

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LIFEBOAT_TEST_DATA") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("lifeboat-test-data");
    }
    PathBuf::from("/var/cache/lifeboat-test-data")
}

fn sha256(path: &Path) -> Option<String> {
    let out = Command::new("sha256sum").arg(path).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_whitespace().next().map(str::to_string)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{cmd:?}: {e}")),
    }
}

fn sdist_dir() -> Result<PathBuf, String> {
    let cache = cache_dir().join("dissect.vmfs");
    let dir = cache.join(format!("dissect_vmfs-{SDIST_VERSION}"));
    if dir.join("tests/_data/vmfs").is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let tarball = cache.join(format!("dissect_vmfs-{SDIST_VERSION}.tar.gz"));
    if sha256(&tarball).as_deref() != Some(SDIST_SHA256) {
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:"])
            .arg(format!("dissect.vmfs=={SDIST_VERSION}"))
            .arg("-d")
            .arg(&cache))?;
    }
    match sha256(&tarball) {
        Some(h) if h == SDIST_SHA256 => {}
        other => {
            return Err(format!(
                "{}: sha256 {other:?}, expected {SDIST_SHA256}",
                tarball.display()
            ))
        }
    }
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&cache))?;
    Ok(dir)
}

/// Path of the unpacked image `name` (e.g. `vmfs5`, `vmfs6`, `span/vmfs5-span-0`), or
/// `None` when it cannot be had outside CI.
pub fn image(name: &str) -> Option<PathBuf> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let result = (|| -> Result<PathBuf, String> {
        let dir = sdist_dir()?;
        let gz = dir.join("tests/_data/vmfs").join(format!("{name}.bin.gz"));
        let out = cache_dir()
            .join("dissect.vmfs/images")
            .join(format!("{name}.bin"));
        if out.is_file() {
            return Ok(out);
        }
        std::fs::create_dir_all(out.parent().unwrap()).map_err(|e| e.to_string())?;
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        run(Command::new("sh").arg("-c").arg(format!(
            "gzip -dc '{}' | cp --sparse=always /dev/stdin '{}'",
            gz.display(),
            tmp.display()
        )))?;
        std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
        Ok(out)
    })();
    match result {
        Ok(p) => Some(p),
        Err(e) => unavailable(&format!(
            "the ESXi-made VMFS test image {name} is unavailable: {e}"
        )),
    }
}

/// Is `tool` on the PATH (or in /usr/sbin, /sbin)?
pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|d| Path::new(d).join(tool).is_file());
    found
}

/// Requires the oracle tools (vmfs-tools, vmfs6-tools): false (skip) when missing outside
/// CI, a failure in CI.
pub fn need_oracle() -> bool {
    if !Path::new("/dev/fuse").exists() {
        return unavailable::<()>("/dev/fuse is missing (the oracle mounts through FUSE)")
            .is_some();
    }
    for t in [
        "debugvmfs",
        "debugvmfs6",
        "vmfs-fuse",
        "vmfs6-fuse",
        "stdbuf",
    ] {
        if !have_tool(t) {
            return unavailable::<()>(&format!("the oracle tool {t} is missing")).is_some();
        }
    }
    true
}
