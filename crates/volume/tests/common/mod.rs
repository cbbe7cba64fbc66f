//! Fixtures for the real-tool tests: loop devices detached on drop, and LVM2 run with a
//! private configuration (only our loop devices, activation off: this kernel may have no
//! device-mapper) so that it never touches the machine's own volume groups.
#![allow(dead_code)]

use lifeboat_fs::{ReadAt, SharedVolume};
use lifeboat_testkit::{in_ci, run_checked, tool};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// True when `tools` are there and we are root (loop devices); otherwise skip loudly, or
/// fail with `CI=true`.
pub fn can_run(test: &str, tools: &[(&str, &str)], root: bool) -> bool {
    let mut ok = true;
    for (t, pkg) in tools {
        ok &= tool(t, pkg).is_some();
    }
    if root && !is_root() {
        if in_ci() {
            panic!("{test} needs root (loop devices) in CI");
        }
        eprintln!("!!!!! SKIPPING {test}: not root (loop devices) !!!!!");
        ok = false;
    }
    ok
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A sparse file of `len` bytes.
pub fn blank(dir: &Path, name: &str, len: u64) -> PathBuf {
    let p = dir.join(name);
    File::create(&p).unwrap().set_len(len).unwrap();
    p
}

/// A file as a shared volume.
pub fn open(p: &Path) -> SharedVolume {
    let f = File::open(p).unwrap();
    let len = f.metadata().unwrap().len();
    Arc::new((f, len))
}

/// Reads `len` bytes at `offset`.
pub fn read(v: &dyn ReadAt, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    v.read_exact_at(&mut b, offset).unwrap();
    b
}

/// A loop device, detached on drop.
pub struct Loop(pub String);

impl Loop {
    pub fn attach(img: &Path) -> Loop {
        let losetup = tool("losetup", "util-linux").unwrap();
        let out = run_checked(Command::new(losetup).args(["-f", "--show"]).arg(img), None);
        Loop(out.trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(l) = tool("losetup", "util-linux") {
            let _ = Command::new(l).arg("-d").arg(&self.0).status();
        }
    }
}

/// LVM2 with a private configuration directory that accepts only the given devices.
pub struct Lvm {
    dir: tempfile::TempDir,
}

impl Lvm {
    pub fn new(devices: &[&Loop]) -> Lvm {
        let dir = tempfile::tempdir().unwrap();
        let accept: Vec<String> = devices
            .iter()
            .map(|l| format!("\"a|^{}$|\"", l.0))
            .collect();
        let conf = format!(
            "devices {{ filter = [{}, \"r|.*|\"] obtain_device_list_from_udev = 0 \
             use_devicesfile = 0 }}\n\
             global {{ activation = 0 locking_dir = \"{}/lock\" }}\n\
             activation {{ udev_sync = 0 udev_rules = 0 monitoring = 0 }}\n\
             backup {{ backup = 0 archive = 0 }}\n",
            accept.join(", "),
            dir.path().display()
        );
        std::fs::create_dir_all(dir.path().join("lock")).unwrap();
        std::fs::write(dir.path().join("lvm.conf"), conf).unwrap();
        Lvm { dir }
    }

    /// Runs an LVM command (e.g. `["lvcreate", "-an", ...]`), insisting that it succeeds;
    /// its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let path = tool(args[0], "lvm2").unwrap();
        run_checked(
            Command::new(path)
                .args(&args[1..])
                .env("LVM_SYSTEM_DIR", self.dir.path())
                .env("LVM_SUPPRESS_FD_WARNINGS", "1"),
            None,
        )
    }

    /// A report as rows of fields (`--noheadings --separator | --units b --nosuffix`).
    pub fn report(&self, cmd: &str, args: &[&str]) -> Vec<Vec<String>> {
        let mut a = vec![
            cmd,
            "--noheadings",
            "--separator",
            "|",
            "--units",
            "b",
            "--nosuffix",
        ];
        a.extend_from_slice(args);
        self.run(&a)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('|').map(|f| f.trim().to_string()).collect())
            .collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
