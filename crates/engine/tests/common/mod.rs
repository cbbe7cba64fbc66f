//! Fixtures of the engine tests: partitioned disk image files holding ext4 filesystems with
//! real files, built without root by `sfdisk` and `mke2fs -d`, and the oracles that judge a
//! restore (every used byte equal, `e2fsck -fn` clean).
//!
//! A missing tool skips the test loudly on a workstation and fails it with `CI=true` (see
//! `lifeboat_testkit::tool`).

use lifeboat_blockdev::{Disk, OpenMode};
use lifeboat_engine::{open_volume, Event};
use lifeboat_fs::{ReadAt, Slice};
use lifeboat_parttable::{read_layout, Layout};
use lifeboat_testkit::run_checked;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// GPT type GUID of a Linux filesystem.
const LINUX_FS_GUID: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// The partition table of a fixture disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// MBR.
    Dos,
    /// GPT.
    Gpt,
}

/// `count` bytes of seeded, poorly compressible data.
pub fn noise(count: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut b = Vec::with_capacity(count as usize + 8);
    while (b.len() as u64) < count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.truncate(count as usize);
    b
}

/// A file of `size` bytes of noise: a target disk full of garbage.
pub fn garbage_disk(path: &Path, size: u64, seed: u64) {
    fs::write(path, noise(size, seed)).unwrap();
}

/// The tools the fixtures need, or `None` (after a loud message) when one is missing on a
/// workstation.
pub fn tools() -> Option<()> {
    for (name, pkg) in [
        ("sfdisk", "fdisk (util-linux)"),
        ("mke2fs", "e2fsprogs"),
        ("e2fsck", "e2fsprogs"),
    ] {
        lifeboat_testkit::tool(name, pkg)?;
    }
    Some(())
}

/// Writes a partition table onto the file `disk`: partitions given as (start, size) in MiB.
pub fn partition(disk: &Path, label: Label, parts: &[(u64, u64)]) {
    let (name, type_code) = match label {
        Label::Dos => ("dos", "83"),
        Label::Gpt => ("gpt", LINUX_FS_GUID),
    };
    let mut script = format!("label: {name}\nunit: sectors\n\n");
    for (start, size) in parts {
        script += &format!(
            "start={}, size={}, type={type_code}\n",
            start * MIB / 512,
            size * MIB / 512
        );
    }
    run_checked(
        Command::new("sfdisk")
            .args(["--no-reread", "--no-tell-kernel", "-q"])
            .arg(disk),
        Some(&script),
    );
}

/// An ext4 filesystem image of `size_mib` MiB in `dir`, holding a small tree of files
/// (a few hundred KiB of noise, a text file, an empty directory) made from `seed`.
fn ext4(dir: &Path, size_mib: u64, seed: u64) -> PathBuf {
    let tree = dir.join(format!("tree-{seed}"));
    fs::create_dir_all(tree.join("sub/empty")).unwrap();
    fs::write(tree.join("noise.bin"), noise(300_000 + seed * 4096, seed)).unwrap();
    fs::write(
        tree.join("sub/readme.txt"),
        format!("partition made from seed {seed}\n").repeat(100),
    )
    .unwrap();
    let img = dir.join(format!("fs-{seed}.img"));
    run_checked(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(&tree)
            .arg(&img)
            .arg(format!("{size_mib}M")),
        None,
    );
    img
}

/// A disk image file of `size_mib` MiB with a `label` table whose partitions, (start, size)
/// in MiB, each hold an ext4 filesystem with files.
pub fn ext4_disk(
    dir: &Path,
    name: &str,
    size_mib: u64,
    label: Label,
    parts: &[(u64, u64)],
) -> PathBuf {
    let disk = dir.join(name);
    fs::File::create(&disk)
        .unwrap()
        .set_len(size_mib * MIB)
        .unwrap();
    partition(&disk, label, parts);
    let out = OpenOptions::new().write(true).open(&disk).unwrap();
    for (i, (start, size)) in parts.iter().enumerate() {
        let fs_image = ext4(dir, *size, i as u64 + 1);
        out.write_all_at(&fs::read(&fs_image).unwrap(), start * MIB)
            .unwrap();
    }
    disk
}

/// The partition table of a disk image file with 512-byte sectors.
pub fn layout(disk: &Path) -> Layout {
    read_layout(&Disk::open(disk, OpenMode::Read).unwrap(), 512).unwrap()
}

/// Asserts that every byte `source` uses is equal on `target`: the boot regions (when
/// `with_boot_regions`) and, per partition, each extent its filesystem uses (as lifeboat's
/// scanner reports it). Returns the partition bytes compared.
pub fn assert_used_bytes_equal(source: &Path, target: &Path, with_boot_regions: bool) -> u64 {
    let a = Arc::new(Disk::open(source, OpenMode::Read).unwrap());
    let b = Disk::open(target, OpenMode::Read).unwrap();
    let l = read_layout(&a, 512).unwrap();
    let same = |offset: u64, len: u64, what: &str| {
        let (mut x, mut y) = (vec![0u8; len as usize], vec![0u8; len as usize]);
        ReadAt::read_exact_at(&a, &mut x, offset).unwrap();
        ReadAt::read_exact_at(&b, &mut y, offset).unwrap();
        assert!(x == y, "{what}: {len} bytes at {offset} differ");
    };
    if with_boot_regions {
        for r in &l.boot_regions {
            same(r.offset, r.len, &r.what);
        }
    }
    let mut compared = 0;
    for p in &l.partitions {
        let slice = Slice::new(Arc::clone(&a), p.start, p.size);
        let (mut stream, raw) = open_volume(Arc::new(slice));
        assert!(!raw, "partition {} was not recognised", p.number);
        while let Some(e) = stream.next_extent().unwrap() {
            same(
                p.start + e.offset,
                e.len,
                &format!("partition {}", p.number),
            );
            compared += e.len;
        }
    }
    compared
}

/// Runs `e2fsck -fn` over partition `number` of `disk`; panics unless it is clean.
pub fn assert_fsck_clean(disk: &Path, number: u32) {
    let l = layout(disk);
    let p = l.partition(number).unwrap();
    let d = Disk::open(disk, OpenMode::Read).unwrap();
    let mut bytes = vec![0u8; p.size as usize];
    ReadAt::read_exact_at(&d, &mut bytes, p.start).unwrap();
    let copy = disk.with_extension(format!("part{number}"));
    fs::write(&copy, bytes).unwrap();
    run_checked(Command::new("e2fsck").arg("-fn").arg(&copy), None);
    fs::remove_file(copy).unwrap();
}

/// Collects events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Event>>);

impl Events {
    /// A sink that keeps every event but `Progress`.
    pub fn sink(&self) -> impl Fn(Event) + Sync + '_ {
        |e| {
            if !matches!(e, Event::Progress { .. }) {
                self.0.lock().unwrap().push(e)
            }
        }
    }

    /// The events kept, in order.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}
