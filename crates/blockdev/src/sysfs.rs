//! Reading sysfs (and udev's database): disk enumeration and identity.

use crate::error::{BlockDevError, Result};
use crate::usage::System;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Trimmed content of a sysfs attribute; `None` when missing, unreadable or empty.
pub(crate) fn read_attr(p: &Path) -> Option<String> {
    let s = fs::read(p).ok()?;
    let s = String::from_utf8_lossy(&s).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// A numeric sysfs attribute.
pub(crate) fn read_num<T: FromStr>(p: &Path) -> Option<T> {
    read_attr(p)?.parse().ok()
}

/// Parses `MAJ:MIN`.
pub(crate) fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits a Linux `dev_t` into (major, minor).
pub(crate) fn split_dev(d: u64) -> (u32, u32) {
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Sorted entry names of a directory; empty when it is missing.
pub(crate) fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(p) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// udev's database directory that belongs to a sysfs root: `<root>/../run/udev/data`, which is
/// `/run/udev/data` for `/sys`.
pub(crate) fn udev_dir(sys_root: &Path) -> PathBuf {
    sys_root
        .parent()
        .unwrap_or_else(|| Path::new("/"))
        .join("run/udev/data")
}

/// The `E:KEY=VALUE` properties udev recorded for a block device (empty when udev is absent).
pub(crate) fn udev_props(sys_root: &Path, dev: (u32, u32)) -> HashMap<String, String> {
    let p = udev_dir(sys_root).join(format!("b{}:{}", dev.0, dev.1));
    let Ok(text) = fs::read(p) else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Who a disk says it is. Every field is best effort: virtual disks often have none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskIdentity {
    /// Model name.
    pub model: Option<String>,
    /// Vendor name or id.
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// World wide name / WWID.
    pub wwn: Option<String>,
}

/// The sysfs directory of a block device: `<root>/dev/block/MAJ:MIN` resolved.
pub(crate) fn dev_dir(sys_root: &Path, dev: (u32, u32)) -> Option<PathBuf> {
    fs::canonicalize(sys_root.join(format!("dev/block/{}:{}", dev.0, dev.1))).ok()
}

/// The whole-disk directory for a device directory (its parent when it is a partition).
pub(crate) fn whole_disk_dir(dir: &Path) -> PathBuf {
    if dir.join("partition").exists() {
        if let Some(parent) = dir.parent() {
            return parent.to_path_buf();
        }
    }
    dir.to_path_buf()
}

/// Identity of the disk at sysfs directory `dir` (a whole disk) with device number `dev`.
pub(crate) fn identity_of(sys_root: &Path, dir: &Path, dev: (u32, u32)) -> DiskIdentity {
    let udev = udev_props(sys_root, dev);
    let device = dir.join("device");
    let u = |k: &str| udev.get(k).cloned();
    DiskIdentity {
        model: read_attr(&device.join("model")).or_else(|| u("ID_MODEL")),
        vendor: read_attr(&device.join("vendor")).or_else(|| u("ID_VENDOR")),
        serial: read_attr(&device.join("serial"))
            .or_else(|| read_attr(&dir.join("serial")))
            .or_else(|| u("ID_SERIAL_SHORT")),
        wwn: read_attr(&device.join("wwid"))
            .or_else(|| read_attr(&dir.join("wwid")))
            .or_else(|| u("ID_WWN")),
    }
}

/// What kind of block device a disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskKind {
    /// A SCSI/SATA/USB/virtio/Xen disk (`sd*`, `vd*`, `hd*`, `xvd*`).
    Disk,
    /// An NVMe namespace.
    Nvme,
    /// An SD/eMMC card.
    Mmc,
    /// A loop device backed by a file.
    Loop,
    /// A Linux software RAID array.
    Md,
    /// A device-mapper device (LVM, LUKS, multipath).
    Dm,
    /// An optical drive.
    Optical,
    /// Anything else (nbd, rbd, ...).
    Other,
}

impl DiskKind {
    /// Short lowercase name (`disk`, `nvme`, `loop`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskKind::Disk => "disk",
            DiskKind::Nvme => "nvme",
            DiskKind::Mmc => "mmc",
            DiskKind::Loop => "loop",
            DiskKind::Md => "md",
            DiskKind::Dm => "dm",
            DiskKind::Optical => "optical",
            DiskKind::Other => "other",
        }
    }

    fn detect(name: &str, dir: &Path) -> DiskKind {
        let starts = |p: &str| name.starts_with(p);
        if starts("loop") {
            DiskKind::Loop
        } else if starts("md") || dir.join("md").is_dir() {
            DiskKind::Md
        } else if starts("dm-") || dir.join("dm").is_dir() {
            DiskKind::Dm
        } else if starts("nvme") {
            DiskKind::Nvme
        } else if starts("mmcblk") {
            DiskKind::Mmc
        } else if starts("sr") {
            DiskKind::Optical
        } else if starts("sd") || starts("vd") || starts("hd") || starts("xvd") {
            DiskKind::Disk
        } else {
            DiskKind::Other
        }
    }
}

impl std::fmt::Display for DiskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One partition of a listed disk, as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Kernel name, e.g. `sda2`.
    pub name: String,
    /// `/dev/<name>`.
    pub path: PathBuf,
    /// (major, minor).
    pub dev: (u32, u32),
    /// Partition number.
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Devices stacked on it (dm/md names).
    pub holders: Vec<String>,
    /// Where it is mounted.
    pub mountpoints: Vec<PathBuf>,
    /// True when it is an active swap area.
    pub swap: bool,
}

/// One whole disk found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// Kernel name, e.g. `sda`.
    pub name: String,
    /// `/dev/<name>`.
    pub path: PathBuf,
    /// (major, minor).
    pub dev: (u32, u32),
    /// Size in bytes.
    pub size: u64,
    /// Logical sector size in bytes.
    pub logical_sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
    /// Model name.
    pub model: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// World wide name.
    pub wwn: Option<String>,
    /// Bus it hangs on (`usb`, `sata`, `nvme`, `virtio`, `scsi`, ...), best effort.
    pub transport: Option<String>,
    /// Removable media.
    pub removable: bool,
    /// Read-only.
    pub read_only: bool,
    /// Spinning disk.
    pub rotational: bool,
    /// What kind of device it is.
    pub kind: DiskKind,
    /// For loop devices: the file behind it.
    pub loop_backing_file: Option<PathBuf>,
    /// Devices stacked on the whole disk (dm/md names).
    pub holders: Vec<String>,
    /// Devices this one is stacked on (for dm/md).
    pub slaves: Vec<String>,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
    /// Where the whole disk itself is mounted (a filesystem without partition table).
    pub mountpoints: Vec<PathBuf>,
    /// True when the whole disk is an active swap area.
    pub swap: bool,
    /// Its part in dm-multipath: a map (one disk reached over several paths) or one path
    /// of a map (not a disk to write on its own).
    pub multipath: Option<Multipath>,
}

/// A disk's part in dm-multipath, from sysfs: a map is a device-mapper device whose
/// `dm/uuid` is `mpath-<WWID>`; its `slaves` are its paths, and each path has the map among
/// its `holders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Multipath {
    /// A multipath map.
    Map {
        /// The map's device-mapper name (`mpatha`, or the WWID), from `dm/name`.
        name: Option<String>,
        /// The WWID of the LUN (from `dm/uuid`).
        wwid: String,
        /// Kernel names of its path devices (`sdc`, `sdd`).
        paths: Vec<String>,
    },
    /// One path of a map.
    Path {
        /// The map's kernel name (`dm-3`).
        map: String,
        /// The map's device-mapper name.
        name: Option<String>,
        /// The WWID of the LUN.
        wwid: String,
    },
}

impl Multipath {
    /// For a path: `/dev/mapper/<name>` (or `/dev/<dm-N>` without a name), the device to use.
    pub fn map_device(&self) -> Option<PathBuf> {
        match self {
            Multipath::Map { .. } => None,
            Multipath::Path { map, name, .. } => Some(match name {
                Some(n) => PathBuf::from(format!("/dev/mapper/{n}")),
                None => PathBuf::from(format!("/dev/{map}")),
            }),
        }
    }
}

/// The multipath map a device-mapper device directory `dir` is: its name, WWID and paths.
pub(crate) fn multipath_map_at(dir: &Path) -> Option<(Option<String>, String, Vec<String>)> {
    let uuid = read_attr(&dir.join("dm/uuid"))?;
    let wwid = uuid.strip_prefix("mpath-")?.to_string();
    Some((
        read_attr(&dir.join("dm/name")),
        wwid,
        dir_names(&dir.join("slaves")),
    ))
}

/// The multipath part of the whole disk at `dir` (named `name`): a map itself, or a path of
/// one of its holders.
pub(crate) fn multipath_of_dir(sys_root: &Path, dir: &Path) -> Option<Multipath> {
    if let Some((name, wwid, paths)) = multipath_map_at(dir) {
        return Some(Multipath::Map { name, wwid, paths });
    }
    dir_names(&dir.join("holders")).into_iter().find_map(|h| {
        let hdir = sys_root.join("class/block").join(&h);
        let hdir = fs::canonicalize(&hdir).unwrap_or(hdir);
        let (name, wwid, _) = multipath_map_at(&hdir)?;
        Some(Multipath::Path { map: h, name, wwid })
    })
}

impl DiskInfo {
    /// True when the disk, one of its partitions, is mounted, an active swap or held by
    /// another device.
    pub fn is_busy(&self) -> bool {
        !self.mountpoints.is_empty()
            || self.swap
            || !self.holders.is_empty()
            || self
                .partitions
                .iter()
                .any(|p| !p.mountpoints.is_empty() || p.swap || !p.holders.is_empty())
    }
}

/// Guesses the bus from the resolved sysfs path of a disk.
fn transport_from_path(p: &Path) -> Option<String> {
    let s = p.to_string_lossy();
    let has = |n: &str| s.contains(n);
    let t = if has("/usb") {
        "usb"
    } else if has("/nvme") {
        "nvme"
    } else if has("/virtio") {
        "virtio"
    } else if has("/ata") {
        "sata"
    } else if has("/mmc_host") || has("/mmc") {
        "mmc"
    } else if has("/rport-") {
        "fc"
    } else if has("/session") {
        "iscsi"
    } else if has("/xen") || has("/vbd-") {
        "xen"
    } else if has("/host") && has("/target") {
        "scsi"
    } else {
        return None;
    };
    Some(t.to_string())
}

fn bool_attr(p: &Path) -> bool {
    read_num::<u32>(p).is_some_and(|v| v != 0)
}

/// Whole-disk names found under `<root>/block` and `<root>/class/block`.
fn disk_names(sys_root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let block = sys_root.join("block");
    let class = sys_root.join("class/block");
    if !block.is_dir() && !class.is_dir() {
        return Err(BlockDevError::System {
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither block/ nor class/block/ exists",
            ),
            path: block,
        });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for base in [&block, &class] {
        for name in dir_names(base) {
            let dir = base.join(&name);
            if dir.join("partition").exists() || !seen.insert(name.clone()) {
                continue;
            }
            out.push((name, dir));
        }
    }
    out.sort();
    Ok(out)
}

/// Lists the whole disks of the running system: see [`list_disks_at`].
pub fn list_disks() -> Result<Vec<DiskInfo>> {
    System::live()?.list_disks()
}

/// Lists whole disks from a sysfs tree at `sys_root`, with the mount table (the text of
/// `/proc/self/mountinfo`) and swap table (the text of `/proc/swaps`) given as text; udev
/// properties are read from `<sys_root>/../run/udev/data` when present.
///
/// Partitions, `ram*`, `zram*`, loop devices without backing file and devices of size 0 (no
/// medium) are left out.
pub fn list_disks_at(
    sys_root: &Path,
    mountinfo_text: &str,
    swaps_text: &str,
) -> Result<Vec<DiskInfo>> {
    System::from_text(sys_root, mountinfo_text, swaps_text).list_disks()
}

impl System {
    /// See [`list_disks_at`].
    pub(crate) fn list_disks(&self) -> Result<Vec<DiskInfo>> {
        Ok(disk_names(&self.sys_root)?
            .into_iter()
            .filter_map(|(name, dir)| self.disk_info(&name, &dir))
            .collect())
    }

    fn disk_info(&self, name: &str, dir: &Path) -> Option<DiskInfo> {
        if name.starts_with("ram") || name.starts_with("zram") {
            return None;
        }
        let size = read_num::<u64>(&dir.join("size"))?.saturating_mul(512);
        if size == 0 {
            return None;
        }
        let kind = DiskKind::detect(name, dir);
        let loop_backing_file = read_attr(&dir.join("loop/backing_file")).map(PathBuf::from);
        if kind == DiskKind::Loop && loop_backing_file.is_none() {
            return None;
        }
        let dev = parse_dev(&read_attr(&dir.join("dev"))?)?;
        let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let id = identity_of(&self.sys_root, &real, dev);
        let udev = udev_props(&self.sys_root, dev);
        let transport = udev
            .get("ID_BUS")
            .map(|b| {
                if b == "ata" {
                    "sata".to_string()
                } else {
                    b.clone()
                }
            })
            .or_else(|| transport_from_path(&real));
        let logical = read_num(&dir.join("queue/logical_block_size")).unwrap_or(512);
        let mut partitions: Vec<PartitionInfo> = dir_names(dir)
            .into_iter()
            .filter_map(|pname| self.partition_info(&pname, &dir.join(&pname)))
            .collect();
        partitions.sort_by_key(|p| (p.number, p.start));
        let dev_path = PathBuf::from(format!("/dev/{name}"));
        let multipath = multipath_of_dir(&self.sys_root, &real);
        // A map has no WWN attribute of its own: its WWID is in its dm UUID.
        let wwn = id.wwn.or_else(|| match &multipath {
            Some(Multipath::Map { wwid, .. }) => Some(wwid.clone()),
            _ => None,
        });
        Some(DiskInfo {
            name: name.to_string(),
            mountpoints: self.mountpoints_of(&dev_path, dev),
            swap: self.is_swap(&dev_path, dev),
            path: dev_path,
            dev,
            size,
            logical_sector_size: logical,
            physical_sector_size: read_num(&dir.join("queue/physical_block_size"))
                .unwrap_or(logical),
            model: id.model,
            vendor: id.vendor,
            serial: id.serial,
            wwn,
            transport,
            removable: bool_attr(&dir.join("removable")),
            read_only: bool_attr(&dir.join("ro")),
            rotational: bool_attr(&dir.join("queue/rotational")),
            kind,
            loop_backing_file,
            holders: dir_names(&dir.join("holders")),
            slaves: dir_names(&dir.join("slaves")),
            partitions,
            multipath,
        })
    }

    fn partition_info(&self, name: &str, dir: &Path) -> Option<PartitionInfo> {
        let number = read_num(&dir.join("partition"))?;
        let dev = parse_dev(&read_attr(&dir.join("dev"))?)?;
        let path = PathBuf::from(format!("/dev/{name}"));
        Some(PartitionInfo {
            name: name.to_string(),
            dev,
            number,
            start: read_num::<u64>(&dir.join("start"))
                .unwrap_or(0)
                .saturating_mul(512),
            size: read_num::<u64>(&dir.join("size"))
                .unwrap_or(0)
                .saturating_mul(512),
            holders: dir_names(&dir.join("holders")),
            mountpoints: self.mountpoints_of(&path, dev),
            swap: self.is_swap(&path, dev),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_split_like_glibc() {
        assert_eq!(split_dev(0x0801), (8, 1));
        assert_eq!(split_dev(0xfe00), (254, 0));
        // major 259, minor 1048575: the large encoding.
        let d: u64 = (259 & 0xfff) << 8 | (0xff) | ((0xfffff & !0xff) << 12);
        assert_eq!(split_dev(d), (259, 0xfffff));
        assert_eq!(parse_dev(" 8:16\n"), Some((8, 16)));
        assert_eq!(parse_dev("8"), None);
    }

    #[test]
    fn transport_is_guessed_from_the_device_path() {
        let t = |s: &str| transport_from_path(Path::new(s));
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdc").as_deref(),
            Some("usb")
        );
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sda")
                .as_deref(),
            Some("sata")
        );
        assert_eq!(
            t("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda").as_deref(),
            Some("virtio")
        );
        assert_eq!(t("/sys/devices/virtual/block/loop0"), None);
    }
}

#[cfg(test)]
mod fake_tests {
    use super::*;
    use crate::fake_sys::FakeSys;

    #[test]
    fn fake_tree_lists_whole_disks_only_with_their_details() {
        let f = FakeSys::new();
        let disks = list_disks_at(&f.sys, FakeSys::MOUNTINFO, FakeSys::SWAPS).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["dm-0", "loop0", "sdy", "sdz"]);

        let sdz = &disks[3];
        assert_eq!(sdz.path, Path::new("/dev/sdz"));
        assert_eq!(sdz.dev, (8, 0));
        assert_eq!(sdz.size, 2_097_152 * 512);
        assert_eq!(
            (sdz.logical_sector_size, sdz.physical_sector_size),
            (512, 4096)
        );
        assert_eq!(sdz.model.as_deref(), Some("FAKE DISK 1TB"));
        assert_eq!(sdz.vendor.as_deref(), Some("ATA"));
        assert_eq!(sdz.serial.as_deref(), Some("ZSERIAL123"));
        assert_eq!(sdz.wwn.as_deref(), Some("0x5000c500abcdef01"));
        assert_eq!(sdz.transport.as_deref(), Some("sata"));
        assert!(sdz.rotational && !sdz.removable && !sdz.read_only);
        assert_eq!(sdz.kind, DiskKind::Disk);
        assert!(sdz.mountpoints.is_empty());
        assert_eq!(sdz.partitions.len(), 2);
        let (p1, p2) = (&sdz.partitions[0], &sdz.partitions[1]);
        assert_eq!(
            (p1.number, p1.start, p1.size),
            (1, 2048 * 512, 1_024_000 * 512)
        );
        assert_eq!(p1.mountpoints, [PathBuf::from("/boot")]);
        assert_eq!(p2.holders, ["dm-0"]);
        assert_eq!(p2.dev, (8, 2));
        assert!(sdz.is_busy());

        let sdy = &disks[2];
        assert_eq!(sdy.transport.as_deref(), Some("usb"));
        assert!(sdy.removable);
        assert_eq!(sdy.partitions[0].mountpoints, [PathBuf::from("/media/usb")]);

        let lp = &disks[1];
        assert_eq!(lp.kind, DiskKind::Loop);
        assert_eq!(
            lp.loop_backing_file.as_deref(),
            Some(Path::new("/images/disk.img"))
        );
        assert!(lp.swap);

        let dm = &disks[0];
        assert_eq!(dm.kind, DiskKind::Dm);
        assert_eq!(dm.slaves, ["sdz2"]);
        assert_eq!(dm.mountpoints, [PathBuf::from("/data")]);
        assert_eq!(dm.transport, None);
    }

    #[test]
    fn a_multipath_map_is_one_disk_with_its_wwid_and_paths_and_the_paths_are_marked() {
        let f = FakeSys::with_multipath();
        let disks = list_disks_at(&f.sys, "", "").unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["dm-1", "dm-2", "sda", "sdc", "sdd"]);
        let map = &disks[0];
        assert_eq!(map.kind, DiskKind::Dm);
        assert_eq!(
            map.multipath,
            Some(Multipath::Map {
                name: Some("mpatha".into()),
                wwid: FakeSys::WWID.into(),
                paths: vec!["sdc".into(), "sdd".into()],
            })
        );
        assert_eq!(map.wwn.as_deref(), Some(FakeSys::WWID));
        assert_eq!(map.size, 20_971_520 * 512);
        // Its partition map (kpartx) is no map of its own.
        assert_eq!(disks[1].multipath, None);
        assert_eq!(disks[2].multipath, None, "a local disk");
        for p in &disks[3..] {
            assert_eq!(
                p.multipath,
                Some(Multipath::Path {
                    map: "dm-1".into(),
                    name: Some("mpatha".into()),
                    wwid: FakeSys::WWID.into(),
                }),
                "{}",
                p.name
            );
            assert_eq!(
                p.multipath.as_ref().unwrap().map_device().as_deref(),
                Some(Path::new("/dev/mapper/mpatha"))
            );
            assert_eq!(p.transport.as_deref(), Some("fc"));
            assert_eq!(p.model.as_deref(), Some("LUN C-Mode"));
            assert!(p.is_busy(), "a path is held by its map");
        }
        // The disks of a system without multipath have no multipath part.
        let plain = FakeSys::new();
        let disks = list_disks_at(&plain.sys, FakeSys::MOUNTINFO, FakeSys::SWAPS).unwrap();
        assert!(disks.iter().all(|d| d.multipath.is_none()));
    }

    #[test]
    fn a_missing_sysfs_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let e = list_disks_at(d.path(), "", "").unwrap_err();
        assert!(
            e.to_string().contains(&d.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn identity_prefers_sysfs_and_falls_back_to_udev() {
        let f = FakeSys::new();
        let dir = dev_dir(&f.sys, (8, 0)).unwrap();
        let id = identity_of(&f.sys, &dir, (8, 0));
        assert_eq!(id.model.as_deref(), Some("FAKE DISK 1TB"));
        assert_eq!(id.serial.as_deref(), Some("ZSERIAL123"));
        let part = dev_dir(&f.sys, (8, 2)).unwrap();
        assert_eq!(whole_disk_dir(&part), dir);
    }
}
