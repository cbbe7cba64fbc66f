//! Real block devices: loop devices set up with `losetup`.
//!
//! Needs root and util-linux/e2fsprogs. Locally a test that cannot run says so loudly and
//! passes; with `CI=true` it fails instead.

use lifeboat_blockdev::{
    disks_holding_path, in_use, list_disks, AlignedBuf, BlockDevError, Disk, OpenMode,
    RereadOutcome, UsageKind,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
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
fn can_run(test: &str, tools: &[&str]) -> bool {
    let mut why = Vec::new();
    if !is_root() {
        why.push("not running as root".to_string());
    }
    for t in tools {
        if find_tool(t).is_none() {
            why.push(format!("`{t}` not installed"));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        why.push("no /dev/loop-control".to_string());
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

fn run(tool: &str, args: &[&str]) -> String {
    let exe = find_tool(tool).unwrap_or_else(|| PathBuf::from(tool));
    let out = Command::new(&exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn image(dir: &Path, size: u64) -> PathBuf {
    let p = dir.join("disk.img");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    p
}

/// A loop device detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach(img: &Path, extra: &[&str]) -> Loop {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["-f", "--show", img.to_str().unwrap()]);
        Loop(PathBuf::from(run("losetup", &args).trim()))
    }
    fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
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

/// A mount undone on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new(find_tool("umount").unwrap())
            .arg(&self.0)
            .status();
    }
}

#[test]
fn loop_devices_report_size_and_sector_sizes() {
    if !can_run("loop_devices_report_size_and_sector_sizes", &["losetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), 32 << 20);
    let lp = Loop::attach(&img, &[]);
    let d = Disk::open(&lp.0, OpenMode::Read).unwrap();
    assert!(d.is_block_device());
    assert_eq!(d.size(), 32 << 20);
    assert_eq!(d.logical_sector_size(), 512);
    assert!(d.physical_sector_size() >= 512);
    let (maj, _) = d.dev().unwrap();
    assert_eq!(maj, 7, "loop devices have major 7");
    let _ = d.identity();
    drop(d);

    let lp4k = Loop::attach(&img, &["-b", "4096"]);
    let d = Disk::open(&lp4k.0, OpenMode::Read).unwrap();
    assert_eq!(d.logical_sector_size(), 4096);
    assert_eq!(d.size(), 32 << 20);
    assert_ne!(d.dev(), Disk::open(&lp.0, OpenMode::Read).unwrap().dev());
}

#[test]
fn list_disks_finds_a_loop_device_with_its_backing_file() {
    if !can_run(
        "list_disks_finds_a_loop_device_with_its_backing_file",
        &["losetup"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), 16 << 20);
    let lp = Loop::attach(&img, &["-b", "4096"]);
    let disks = list_disks().unwrap();
    let me = disks
        .iter()
        .find(|d| d.name == lp.name())
        .unwrap_or_else(|| panic!("{} not in {disks:#?}", lp.name()));
    assert_eq!(me.path, lp.0);
    assert_eq!(me.size, 16 << 20);
    assert_eq!(me.logical_sector_size, 4096);
    assert_eq!(
        me.loop_backing_file.as_deref(),
        Some(std::fs::canonicalize(&img).unwrap().as_path())
    );
    assert!(me.partitions.is_empty());
    assert!(!me.is_busy());
    assert!(disks
        .iter()
        .all(|d| !d.name.starts_with("zram") && d.size > 0));
}

#[test]
fn a_mounted_loop_device_is_in_use_and_holds_its_mount_dir() {
    if !can_run(
        "a_mounted_loop_device_is_in_use_and_holds_its_mount_dir",
        &["losetup", "mkfs.ext4", "mount", "umount"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), 32 << 20);
    let lp = Loop::attach(&img, &[]);
    run("mkfs.ext4", &["-q", "-F", lp.0.to_str().unwrap()]);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run("mount", &[lp.0.to_str().unwrap(), mnt.to_str().unwrap()]);
    let guard = Mounted(mnt.clone());

    let u = in_use(&lp.0).unwrap();
    assert!(
        u.iter().any(|u| u.kind
            == UsageKind::Mounted {
                mountpoint: mnt.clone()
            }),
        "{u:?}"
    );
    let msg = u[0].to_string();
    assert!(
        msg.contains(lp.0.to_str().unwrap()) && msg.contains("unmount"),
        "{msg}"
    );

    let u = in_use(&img).unwrap();
    assert!(
        u.iter().any(|u| u.kind
            == UsageKind::BackingFile {
                loop_device: lp.0.clone()
            }),
        "{u:?}"
    );
    assert!(
        u.iter()
            .any(|u| matches!(u.kind, UsageKind::Mounted { .. })),
        "{u:?}"
    );

    let refs = disks_holding_path(&mnt.join(".")).unwrap();
    assert_eq!(refs[0].name, lp.name(), "{refs:?}");
    assert_eq!(
        refs[0].backing_file.as_deref(),
        Some(std::fs::canonicalize(&img).unwrap().as_path())
    );
    let disk = Disk::open(&lp.0, OpenMode::Read).unwrap();
    assert!(disk.is_one_of(&refs));
    let as_file = Disk::open(&img, OpenMode::Read).unwrap();
    assert!(as_file.is_one_of(&refs));

    let e = Disk::open(&lp.0, OpenMode::ReadWriteExclusive).unwrap_err();
    assert!(matches!(e, BlockDevError::Busy { .. }), "{e}");

    drop(guard);
    assert!(in_use(&lp.0).unwrap().is_empty());
    let u = in_use(&img).unwrap();
    assert_eq!(u.len(), 1, "only the loop device remains: {u:?}");
    Disk::open(&lp.0, OpenMode::ReadWriteExclusive).unwrap();
}

#[test]
fn reread_partitions_reports_loop_devices_without_partition_scanning() {
    if !can_run(
        "reread_partitions_reports_loop_devices_without_partition_scanning",
        &["losetup"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), 8 << 20);
    let plain = Loop::attach(&img, &[]);
    let d = Disk::open(&plain.0, OpenMode::ReadWrite).unwrap();
    assert_eq!(d.reread_partitions().unwrap(), RereadOutcome::NotSupported);
    let scanned = Loop::attach(&img, &["-P"]);
    let d = Disk::open(&scanned.0, OpenMode::ReadWrite).unwrap();
    assert_eq!(d.reread_partitions().unwrap(), RereadOutcome::Reread);
}

#[test]
fn direct_io_on_a_4k_loop_device() {
    if !can_run("direct_io_on_a_4k_loop_device", &["losetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), 8 << 20);
    let lp = Loop::attach(&img, &["-b", "4096"]);
    let d = Disk::open_direct(&lp.0, OpenMode::ReadWrite).unwrap();
    assert!(d.is_direct());
    assert_eq!(d.direct_alignment(), 4096);
    let mut buf = AlignedBuf::new(8192, 4096);
    buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    d.write_all_at(&buf, 4096).unwrap();
    d.sync().unwrap();
    let mut back = AlignedBuf::new(8192, 4096);
    d.read_exact_at(&mut back, 4096).unwrap();
    assert_eq!(&back[..], &buf[..]);
    let e = d.read_exact_at(&mut back[..4096], 512).unwrap_err();
    assert!(
        matches!(e, BlockDevError::Misaligned { align: 4096, .. }),
        "{e}"
    );
    let e = d.write_all_at(&buf, (8 << 20) - 4096).unwrap_err();
    assert!(matches!(e, BlockDevError::OutOfRange { .. }), "{e}");
    drop(d);
    let on_file = std::fs::read(&img).unwrap();
    assert_eq!(&on_file[4096..4096 + 8192], &buf[..]);
}
