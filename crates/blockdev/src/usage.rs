//! Is a disk in use, and which disks hold a given path.

use crate::error::{BlockDevError, Result};
use crate::sysfs::{
    dev_dir, dir_names, multipath_of_dir, parse_dev, read_attr, split_dev, whole_disk_dir,
    Multipath,
};
use std::fmt;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One reason why a disk, partition or image file must not be overwritten now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The device (e.g. `/dev/sdc2`) or file that is in use.
    pub device: PathBuf,
    /// How it is used.
    pub kind: UsageKind,
}

/// How a device or file is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageKind {
    /// A filesystem on it is mounted.
    Mounted {
        /// Where.
        mountpoint: PathBuf,
    },
    /// It is an active swap area.
    Swap,
    /// Another block device (device-mapper, md) is stacked on it.
    HeldBy {
        /// Kernel name of the holder, e.g. `dm-0` or `md127`.
        holder: String,
    },
    /// The file is the backing file of a loop device.
    BackingFile {
        /// The loop device, e.g. `/dev/loop3`.
        loop_device: PathBuf,
    },
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.device.display();
        match &self.kind {
            UsageKind::Mounted { mountpoint } => {
                write!(
                    f,
                    "{d} is mounted on {}: unmount it first",
                    mountpoint.display()
                )
            }
            UsageKind::Swap => write!(f, "{d} is an active swap area: run `swapoff {d}` first"),
            UsageKind::HeldBy { holder } => write!(
                f,
                "{d} is held by /dev/{holder} (device-mapper, LVM or md RAID): deactivate \
                 {holder} first (e.g. `vgchange -an`, `cryptsetup close`, `mdadm --stop`)"
            ),
            UsageKind::BackingFile { loop_device } => write!(
                f,
                "{d} is the backing file of {l}: detach it first (`losetup -d {l}`)",
                l = loop_device.display()
            ),
        }
    }
}

/// A whole disk (or a loop/dm/md device) found under a path by [`disks_holding_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRef {
    /// Kernel name, e.g. `sda`, `loop0`, `dm-1`.
    pub name: String,
    /// (major, minor).
    pub dev: (u32, u32),
    /// For a loop device: its backing file.
    pub backing_file: Option<PathBuf>,
    /// The partitions of this disk (major, minor) that the path lies on, directly or through
    /// dm/md; empty when it is the whole disk itself.
    pub partitions: Vec<(u32, u32)>,
}

impl DiskRef {
    /// `/dev/<name>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/{}", self.name))
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
pub(crate) struct MountEntry {
    dev: (u32, u32),
    mount_point: PathBuf,
    /// Device number of the mount source when it is a block device node (btrfs reports an
    /// anonymous device number in field 3).
    source_dev: Option<(u32, u32)>,
    source: String,
    fstype: String,
    read_only: bool,
}

impl MountEntry {
    /// The fields, for [`crate::fuzzing`].
    pub(crate) fn into_parts(self) -> crate::fuzzing::MountLine {
        (
            self.dev,
            self.mount_point,
            self.source_dev,
            self.source,
            self.fstype,
            self.read_only,
        )
    }
}

/// A mounted filesystem, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFilesystem {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The mount source (`/dev/sdb1` for a filesystem on a block device).
    pub source: String,
    /// Filesystem type (`ext4`, `vfat`, …).
    pub fstype: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The mounted filesystems of this process's mount namespace, in mount order.
pub fn mounted_filesystems() -> Result<Vec<MountedFilesystem>> {
    let text = fs::read_to_string(MOUNTINFO).map_err(|source| BlockDevError::System {
        path: MOUNTINFO.into(),
        source,
    })?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .map(|m| MountedFilesystem {
            mount_point: m.mount_point,
            source: m.source,
            fstype: m.fstype,
            read_only: m.read_only,
        })
        .collect())
}

/// Undoes the octal escapes (`\040` for a space) of mountinfo and /proc/swaps.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(c) = u8::try_from(v) {
                out.push(c);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Device number of a path that is a block device node.
fn block_rdev(p: &Path) -> Option<(u32, u32)> {
    let m = fs::metadata(p).ok()?;
    m.file_type().is_block_device().then(|| split_dev(m.rdev()))
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split_whitespace().collect();
            let dev = parse_dev(f.get(2)?)?;
            let mount_point = PathBuf::from(unescape(f.get(4)?));
            let read_only = f.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro"));
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("").to_string();
            let source = unescape(r.next().unwrap_or(""));
            let source_dev = if source.starts_with("/dev/") {
                block_rdev(Path::new(&source))
            } else {
                None
            };
            Some(MountEntry {
                dev,
                mount_point,
                source_dev,
                source,
                fstype,
                read_only,
            })
        })
        .collect()
}

/// Active swap areas: (path, device number when it is a block device node).
pub(crate) fn parse_swaps(text: &str) -> Vec<(PathBuf, Option<(u32, u32)>)> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| {
            let p = PathBuf::from(unescape(p));
            let d = block_rdev(&p);
            (p, d)
        })
        .collect()
}

/// A view of the system: a sysfs root plus mount and swap tables.
pub(crate) struct System {
    pub(crate) sys_root: PathBuf,
    mounts: Vec<MountEntry>,
    swaps: Vec<(PathBuf, Option<(u32, u32)>)>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

impl System {
    /// The running system: `/sys`, `/proc/self/mountinfo`, `/proc/swaps`.
    pub(crate) fn live() -> Result<System> {
        let mi = fs::read_to_string(MOUNTINFO).map_err(|source| BlockDevError::System {
            path: MOUNTINFO.into(),
            source,
        })?;
        // Without swap support in the kernel /proc/swaps does not exist: no swap is active.
        let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
        Ok(System::from_text(Path::new("/sys"), &mi, &swaps))
    }

    pub(crate) fn from_text(sys_root: &Path, mountinfo: &str, swaps: &str) -> System {
        System {
            sys_root: sys_root.to_path_buf(),
            mounts: parse_mountinfo(mountinfo),
            swaps: parse_swaps(swaps),
        }
    }

    /// Mount points of the block device `dev` (whose node is `dev_path`).
    pub(crate) fn mountpoints_of(&self, dev_path: &Path, dev: (u32, u32)) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .mounts
            .iter()
            .filter(|m| {
                m.dev == dev || m.source_dev == Some(dev) || Path::new(&m.source) == dev_path
            })
            .map(|m| m.mount_point.clone())
            .collect();
        v.dedup();
        v
    }

    /// True when `dev` (node `dev_path`) is an active swap area.
    pub(crate) fn is_swap(&self, dev_path: &Path, dev: (u32, u32)) -> bool {
        self.swaps
            .iter()
            .any(|(p, d)| p == dev_path || *d == Some(dev))
    }

    fn device_usages(&self, dir: &Path, out: &mut Vec<Usage>) {
        self.device_usages_at(dir, out, 0);
    }

    /// Usages of the device whose sysfs directory is `dir`; for each device stacked on it
    /// (an LVM LV, dm-crypt, an md array, …), also that device's own usages, down the stack
    /// (`depth` bounds it): a partition whose LV is mounted is in use even though the
    /// partition itself is mounted nowhere.
    fn device_usages_at(&self, dir: &Path, out: &mut Vec<Usage>, depth: u32) {
        let Some(dev) = read_attr(&dir.join("dev")).and_then(|s| parse_dev(&s)) else {
            return;
        };
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let device = PathBuf::from(format!("/dev/{name}"));
        for mountpoint in self.mountpoints_of(&device, dev) {
            out.push(Usage {
                device: device.clone(),
                kind: UsageKind::Mounted { mountpoint },
            });
        }
        if self.is_swap(&device, dev) {
            out.push(Usage {
                device: device.clone(),
                kind: UsageKind::Swap,
            });
        }
        for holder in dir_names(&dir.join("holders")) {
            out.push(Usage {
                device: device.clone(),
                kind: UsageKind::HeldBy {
                    holder: holder.clone(),
                },
            });
            if depth < 8 {
                let hdir = self.sys_root.join("class/block").join(&holder);
                let hdir = fs::canonicalize(&hdir).unwrap_or(hdir);
                self.device_usages_at(&hdir, out, depth + 1);
                // A partitioned md array: its partitions are used too.
                for name in dir_names(&hdir) {
                    let sub = hdir.join(&name);
                    if sub.join("partition").exists() {
                        self.device_usages_at(&sub, out, depth + 1);
                    }
                }
            }
        }
    }

    /// Usages of block device `dev` and, when it is a whole disk, of its partitions; for a
    /// loop device, also those of every other loop device over the same backing file (e.g.
    /// `losetup -o` views of its partitions): they share its bytes.
    /// `node` names the device when sysfs does not know it.
    pub(crate) fn block_usages(&self, dev: (u32, u32), node: &Path) -> Vec<Usage> {
        let mut out = self.own_block_usages(dev, node);
        let backing =
            dev_dir(&self.sys_root, dev).and_then(|dir| loop_backing_file(&whole_disk_dir(&dir)));
        if let Some(backing) = backing {
            let backing = fs::canonicalize(&backing).unwrap_or(backing);
            for (other, odev) in self.loops_backed_by(&backing) {
                if let Some(odev) = odev.filter(|d| *d != dev) {
                    out.extend(self.own_block_usages(odev, &other));
                }
            }
        }
        out
    }

    /// The loop devices whose backing file is `file` (canonical path), with their device
    /// numbers.
    fn loops_backed_by(&self, file: &Path) -> Vec<(PathBuf, Option<(u32, u32)>)> {
        let block = self.sys_root.join("block");
        dir_names(&block)
            .into_iter()
            .filter(|n| n.starts_with("loop"))
            .filter_map(|name| {
                let dir = block.join(&name);
                let backing = loop_backing_file(&dir)?;
                let backing = fs::canonicalize(&backing).unwrap_or(backing);
                (backing == file).then(|| {
                    (
                        PathBuf::from(format!("/dev/{name}")),
                        read_attr(&dir.join("dev")).and_then(|s| parse_dev(&s)),
                    )
                })
            })
            .collect()
    }

    /// Usages of block device `dev` itself and, when it is a whole disk, of its partitions.
    fn own_block_usages(&self, dev: (u32, u32), node: &Path) -> Vec<Usage> {
        let mut out = Vec::new();
        let Some(dir) = dev_dir(&self.sys_root, dev) else {
            for mountpoint in self.mountpoints_of(node, dev) {
                out.push(Usage {
                    device: node.to_path_buf(),
                    kind: UsageKind::Mounted { mountpoint },
                });
            }
            if self.is_swap(node, dev) {
                out.push(Usage {
                    device: node.to_path_buf(),
                    kind: UsageKind::Swap,
                });
            }
            return out;
        };
        self.device_usages(&dir, &mut out);
        if !dir.join("partition").exists() {
            for name in dir_names(&dir) {
                let sub = dir.join(&name);
                if sub.join("partition").exists() {
                    self.device_usages(&sub, &mut out);
                }
            }
        }
        out
    }

    /// Usages of the regular file `file` (canonical path): loop devices backed by it (and
    /// their own usages) and swap.
    pub(crate) fn file_usages(&self, file: &Path) -> Vec<Usage> {
        let mut out = Vec::new();
        for (loop_device, dev) in self.loops_backed_by(file) {
            out.push(Usage {
                device: file.to_path_buf(),
                kind: UsageKind::BackingFile {
                    loop_device: loop_device.clone(),
                },
            });
            if let Some(dev) = dev {
                out.extend(self.own_block_usages(dev, &loop_device));
            }
        }
        if self.swaps.iter().any(|(p, _)| p == file) {
            out.push(Usage {
                device: file.to_path_buf(),
                kind: UsageKind::Swap,
            });
        }
        out
    }

    /// Adds the disks under filesystem device number `st_dev` to `out`.
    pub(crate) fn disks_under_fs(&self, st_dev: (u32, u32), depth: u32, out: &mut Vec<DiskRef>) {
        if dev_dir(&self.sys_root, st_dev).is_some() {
            self.disks_under(st_dev, depth, out);
            return;
        }
        // btrfs and friends report an anonymous device number: use the mount source.
        let sources: Vec<(u32, u32)> = self
            .mounts
            .iter()
            .filter(|m| m.dev == st_dev)
            .filter_map(|m| m.source_dev)
            .collect();
        for d in sources {
            self.disks_under(d, depth, out);
        }
    }

    /// Adds the whole disk of block device `dev`, and the disks it is built on, to `out`.
    fn disks_under(&self, dev: (u32, u32), depth: u32, out: &mut Vec<DiskRef>) {
        if depth > 8 {
            return;
        }
        let Some(dir) = dev_dir(&self.sys_root, dev) else {
            return;
        };
        let disk = whole_disk_dir(&dir);
        let Some(ddev) = read_attr(&disk.join("dev")).and_then(|s| parse_dev(&s)) else {
            return;
        };
        let partition = (disk != dir).then_some(dev);
        if let Some(known) = out.iter_mut().find(|r| r.dev == ddev) {
            if let Some(p) = partition.filter(|p| !known.partitions.contains(p)) {
                known.partitions.push(p);
            }
            return;
        }
        let backing_file = loop_backing_file(&disk);
        out.push(DiskRef {
            name: disk
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            dev: ddev,
            backing_file: backing_file.clone(),
            partitions: partition.into_iter().collect(),
        });
        // dm and md: the devices it is built on (they may be partitions).
        let class = self.sys_root.join("class/block");
        for slave in dir_names(&disk.join("slaves")) {
            if let Some(sdev) =
                read_attr(&class.join(&slave).join("dev")).and_then(|s| parse_dev(&s))
            {
                self.disks_under(sdev, depth + 1, out);
            }
        }
        // A loop device lives on the disk that holds its backing file.
        if let Some(meta) = backing_file.and_then(|b| fs::metadata(b).ok()) {
            self.disks_under_fs(split_dev(meta.dev()), depth + 1, out);
        }
    }
}

/// The backing file of a loop device directory, unless it has been deleted.
fn loop_backing_file(dir: &Path) -> Option<PathBuf> {
    let b = read_attr(&dir.join("loop/backing_file"))?;
    (!b.ends_with("(deleted)")).then(|| PathBuf::from(b))
}

/// What keeps `path` (a block device or a disk image file) busy right now: mounts, swap and
/// stacked devices of the device or any of its partitions; for a regular file, the loop
/// devices backed by it and their usages. Empty when nothing uses it.
pub fn in_use(path: &Path) -> Result<Vec<Usage>> {
    let meta = fs::metadata(path).map_err(|source| BlockDevError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    let sys = System::live()?;
    if meta.file_type().is_block_device() {
        Ok(sys.block_usages(split_dev(meta.rdev()), path))
    } else if meta.is_file() {
        let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(sys.file_usages(&canonical))
    } else {
        Err(BlockDevError::NotADisk {
            path: path.to_path_buf(),
        })
    }
}

/// When `path` is a block device that is one path of a dm-multipath map (or a partition of
/// one): that map ([`Multipath::Path`]). Writing to a path device behind the map's back
/// bypasses it; the map is the disk to use. `None` for anything else (image files too).
pub fn multipath_path_of(path: &Path) -> Result<Option<Multipath>> {
    let meta = fs::metadata(path).map_err(|source| BlockDevError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Ok(None);
    }
    Ok(System::live()?.multipath_path_of(split_dev(meta.rdev())))
}

impl System {
    /// See [`multipath_path_of`].
    pub(crate) fn multipath_path_of(&self, dev: (u32, u32)) -> Option<Multipath> {
        let dir = whole_disk_dir(&dev_dir(&self.sys_root, dev)?);
        match multipath_of_dir(&self.sys_root, &dir)? {
            p @ Multipath::Path { .. } => Some(p),
            Multipath::Map { .. } => None,
        }
    }
}

/// The whole disk(s) under the filesystem that holds `path` (a file or directory): the disk
/// of the partition it is on; for dm/md, also every disk they are built on; for a loop
/// device, the loop device with its backing file and the disks holding that file.
/// Empty when the filesystem is not on a block device (tmpfs, network filesystems).
pub fn disks_holding_path(path: &Path) -> Result<Vec<DiskRef>> {
    let meta = fs::metadata(path).map_err(|source| BlockDevError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    let sys = System::live()?;
    let mut out = Vec::new();
    sys.disks_under_fs(split_dev(meta.dev()), 0, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_is_parsed_with_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw\n\
                    garbage line\n\
                    37 35 8:2 / /data rw - xfs /dev/sdz2 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, (98, 0));
        assert_eq!(m[0].mount_point, Path::new("/mnt/my disk"));
        assert_eq!(m[1].source, "/dev/sdz2");
        assert_eq!(m[1].fstype, "xfs");
        assert!(!m[1].read_only);
        let ro = parse_mountinfo("24 22 8:17 / /mnt/usb ro,relatime - vfat /dev/sdb1 ro\n");
        assert!(ro[0].read_only);
        assert_eq!(ro[0].fstype, "vfat");
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("tail\\04"), "tail\\04");
    }

    #[test]
    fn swaps_are_parsed() {
        let s = parse_swaps(
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sdz3  partition 1 0 -2\n/swap\\040file file 1 0 -3\n",
        );
        assert_eq!(s[0].0, Path::new("/dev/sdz3"));
        assert_eq!(s[1].0, Path::new("/swap file"));
    }

    /// How the kernel writes a path into mountinfo and /proc/swaps (`mangle` in
    /// fs/proc_namespace.c, `seq_escape` in mm/swapfile.c): space, tab, newline and backslash
    /// as three-digit octal escapes.
    fn kernel_escape(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn mount_and_swap_parsers_take_any_text(text in "(?s).{0,400}") {
            let _ = parse_mountinfo(&text);
            let _ = parse_swaps(&text);
            let _ = unescape(&text);
        }

        #[test]
        fn mountinfo_lines_read_back_what_the_kernel_wrote(
            point in r"/[a-z \t\n\\é-]{0,24}",
            source in r"[a-z \\é]{1,12}",
            fstype in "[a-z0-9.]{1,8}",
            ro: bool,
            major in 0u32..4096,
            minor in 0u32..1_048_576,
            optional in proptest::sample::select(vec!["", " shared:1", " master:7 propagate_from:2"]),
        ) {
            let opts = if ro { "ro,relatime" } else { "rw,noatime" };
            let line = format!(
                "36 35 {major}:{minor} / {} {opts}{optional} - {fstype} {} rw\n",
                kernel_escape(&point),
                kernel_escape(&source)
            );
            let m = parse_mountinfo(&format!("garbage\n{line}"));
            proptest::prop_assert_eq!(m.len(), 1);
            proptest::prop_assert_eq!(m[0].dev, (major, minor));
            proptest::prop_assert_eq!(&m[0].mount_point, Path::new(&point));
            proptest::prop_assert_eq!(&m[0].source, &source);
            proptest::prop_assert_eq!(&m[0].fstype, &fstype);
            proptest::prop_assert_eq!(m[0].read_only, ro);
            let s = parse_swaps(&format!(
                "Filename Type Size Used Priority\n{} file 8 0 -2\n",
                kernel_escape(&point)
            ));
            proptest::prop_assert_eq!(s.len(), 1);
            proptest::prop_assert_eq!(&s[0].0, Path::new(&point));
        }
    }

    #[test]
    fn usage_messages_tell_what_to_do() {
        let u = Usage {
            device: "/dev/sdc2".into(),
            kind: UsageKind::Mounted {
                mountpoint: "/mnt/data".into(),
            },
        };
        assert_eq!(
            u.to_string(),
            "/dev/sdc2 is mounted on /mnt/data: unmount it first"
        );
    }
}

#[cfg(test)]
mod fake_tests {
    use super::*;
    use crate::fake_sys::FakeSys;

    fn sys(f: &FakeSys) -> System {
        System::from_text(&f.sys, FakeSys::MOUNTINFO, FakeSys::SWAPS)
    }

    #[test]
    fn a_whole_disk_reports_its_partitions_usages() {
        let f = FakeSys::new();
        let u = sys(&f).block_usages((8, 0), Path::new("/dev/sdz"));
        assert_eq!(
            u,
            [
                Usage {
                    device: "/dev/sdz1".into(),
                    kind: UsageKind::Mounted {
                        mountpoint: "/boot".into()
                    }
                },
                Usage {
                    device: "/dev/sdz2".into(),
                    kind: UsageKind::HeldBy {
                        holder: "dm-0".into()
                    }
                },
                // sdz2 is mounted nowhere, but the LV stacked on it is: the partition is in
                // use through its holder.
                Usage {
                    device: "/dev/dm-0".into(),
                    kind: UsageKind::Mounted {
                        mountpoint: "/data".into()
                    }
                },
            ]
        );
        assert!(u[1].to_string().contains("deactivate dm-0"));
        assert!(u[2].to_string().contains("/dev/dm-0 is mounted on /data"));
        // One partition only reports itself.
        let u = sys(&f).block_usages((8, 1), Path::new("/dev/sdz1"));
        assert_eq!(u.len(), 1);
        assert!(sys(&f).block_usages((8, 16), Path::new("/dev/sdy"))[0]
            .to_string()
            .contains("/dev/sdy1 is mounted on /media/usb"));
    }

    #[test]
    fn an_image_file_reports_its_loop_device_and_that_devices_usage() {
        let f = FakeSys::new();
        let u = sys(&f).file_usages(Path::new("/images/disk.img"));
        assert_eq!(
            u[0].kind,
            UsageKind::BackingFile {
                loop_device: "/dev/loop0".into()
            }
        );
        assert_eq!(u[1].device, Path::new("/dev/loop0"));
        assert_eq!(u[1].kind, UsageKind::Swap);
        assert!(sys(&f)
            .file_usages(Path::new("/images/other.img"))
            .is_empty());
    }

    #[test]
    fn a_multipath_path_names_its_map_and_nothing_else_does() {
        let f = FakeSys::with_multipath();
        let s = System::from_text(&f.sys, "", "");
        for dev in [(8, 32), (8, 48)] {
            match s.multipath_path_of(dev) {
                Some(Multipath::Path { map, name, wwid }) => {
                    assert_eq!(map, "dm-1");
                    assert_eq!(name.as_deref(), Some("mpatha"));
                    assert_eq!(wwid, FakeSys::WWID);
                }
                other => panic!("{dev:?}: {other:?}"),
            }
        }
        // The map itself, its partition map and a local disk are no paths.
        for dev in [(254, 1), (254, 2), (8, 0)] {
            assert_eq!(s.multipath_path_of(dev), None, "{dev:?}");
        }
        // A path is in use (held by its map).
        let u = s.block_usages((8, 32), Path::new("/dev/sdc"));
        assert_eq!(
            u[0].kind,
            UsageKind::HeldBy {
                holder: "dm-1".into()
            }
        );
        let plain = FakeSys::new();
        let s = sys(&plain);
        assert_eq!(
            s.multipath_path_of((8, 2)),
            None,
            "held by an LVM dm, not multipath"
        );
    }

    #[test]
    fn disks_under_follow_partitions_and_dm_slaves() {
        let f = FakeSys::new();
        let s = sys(&f);
        let mut out = Vec::new();
        s.disks_under_fs((8, 1), 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].name.as_str(), out[0].dev), ("sdz", (8, 0)));
        assert_eq!(out[0].partitions, [(8, 1)]);
        let mut out = Vec::new();
        s.disks_under_fs((254, 0), 0, &mut out);
        let names: Vec<&str> = out.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["dm-0", "sdz"]);
        assert!(out[0].partitions.is_empty());
        assert_eq!(out[1].partitions, [(8, 2)]);
        let mut out = Vec::new();
        s.disks_under_fs((7, 0), 0, &mut out);
        assert_eq!(
            out[0].backing_file.as_deref(),
            Some(Path::new("/images/disk.img"))
        );
        assert_eq!(out[0].path(), Path::new("/dev/loop0"));
        let mut out = Vec::new();
        s.disks_under_fs((0, 45), 0, &mut out);
        assert!(out.is_empty(), "tmpfs is on no disk");
    }
}
