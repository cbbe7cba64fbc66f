//! A fake sysfs tree (plus udev database) for unit tests.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

pub(crate) struct FakeSys {
    _dir: tempfile::TempDir,
    pub(crate) sys: PathBuf,
}

fn put(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, format!("{text}\n")).unwrap();
}

fn link(target: &Path, link: &Path) {
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(target, link).unwrap();
}

/// A whole disk `name` under `devices/<parent>/block`, linked from `block/`, `class/block/`
/// and `dev/block/`.
fn make_disk(sys: &Path, name: &str, parent: &str, dev: &str, size: u64) -> PathBuf {
    let d = sys.join("devices").join(parent).join("block").join(name);
    put(&d.join("dev"), dev);
    put(&d.join("size"), &size.to_string());
    put(&d.join("removable"), "0");
    put(&d.join("ro"), "0");
    put(&d.join("queue/logical_block_size"), "512");
    put(&d.join("queue/physical_block_size"), "512");
    put(&d.join("queue/rotational"), "0");
    fs::create_dir_all(d.join("holders")).unwrap();
    fs::create_dir_all(d.join("slaves")).unwrap();
    link(&d, &sys.join("block").join(name));
    link(&d, &sys.join("class/block").join(name));
    link(&d, &sys.join("dev/block").join(dev));
    d
}

impl FakeSys {
    /// The WWID of the LUN of [`FakeSys::with_multipath`].
    pub(crate) const WWID: &'static str = "3600a098038303053453f463045727a41";

    /// A SAN LUN reached over two Fibre Channel paths as a multipath system shows it
    /// (device-mapper-multipath with `user_friendly_names`, kpartx partition maps): `sdc`
    /// and `sdd` (FC, same LUN, no partitions of their own, both held by `dm-1`), `dm-1` =
    /// map `mpatha` (`dm/uuid` `mpath-<WWID>`, slaves sdc and sdd), `dm-2` = its partition
    /// map `mpatha1` (`part1-mpath-<WWID>`, on dm-1); plus a local SATA disk `sda`.
    pub(crate) fn with_multipath() -> FakeSys {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let size = 20_971_520; // 10 GiB
        make_disk(
            &sys,
            "sda",
            "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0",
            "8:0",
            2_097_152,
        );
        let fc = |host: u32| {
            format!(
                "pci0000:00/0000:00:03.0/0000:05:00.0/host{host}/rport-{host}:0-0/target{host}:0:0/{host}:0:0:1"
            )
        };
        let mut paths = Vec::new();
        for (name, host, dev) in [("sdc", 3, "8:32"), ("sdd", 4, "8:48")] {
            let d = make_disk(&sys, name, &fc(host), dev, size);
            let scsi = sys.join("devices").join(fc(host));
            put(&scsi.join("model"), "LUN C-Mode      ");
            put(&scsi.join("vendor"), "NETAPP  ");
            put(&scsi.join("wwid"), &format!("naa.{}", &Self::WWID[1..]));
            link(&scsi, &d.join("device"));
            paths.push(d);
        }
        let map = make_disk(&sys, "dm-1", "virtual", "254:1", size);
        put(&map.join("dm/name"), "mpatha");
        put(&map.join("dm/uuid"), &format!("mpath-{}", Self::WWID));
        let part = make_disk(&sys, "dm-2", "virtual", "254:2", size - 2048);
        put(&part.join("dm/name"), "mpatha1");
        put(
            &part.join("dm/uuid"),
            &format!("part1-mpath-{}", Self::WWID),
        );
        for p in &paths {
            let name = p.file_name().unwrap();
            link(&map, &p.join("holders/dm-1"));
            link(p, &map.join("slaves").join(name));
        }
        link(&part, &map.join("holders/dm-2"));
        link(&map, &part.join("slaves/dm-1"));
        FakeSys { _dir: dir, sys }
    }

    /// `sdz` (SATA, 1 GiB, sdz1 mounted on /boot, sdz2 held by dm-0), `sdy` (USB stick,
    /// sdy1 mounted on /media/usb), `loop0` (backed by /images/disk.img, active swap),
    /// `loop1` (unbound), `zram0`, `dm-0` (on sdz2, mounted on /data), `sdx` (no medium).
    pub(crate) fn new() -> FakeSys {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let disk = |name: &str, parent: &str, dev: &str, size: u64| -> PathBuf {
            make_disk(&sys, name, parent, dev, size)
        };
        let sata = "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0";
        let sdz = disk("sdz", sata, "8:0", 2_097_152);
        put(&sdz.join("queue/physical_block_size"), "4096");
        put(&sdz.join("queue/rotational"), "1");
        let scsi = sys.join("devices").join(sata);
        put(&scsi.join("model"), "FAKE DISK 1TB   ");
        put(&scsi.join("vendor"), "ATA     ");
        link(&scsi, &sdz.join("device"));
        let usb = "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0";
        let sdy = disk("sdy", usb, "8:16", 31_250_000);
        put(&sdy.join("removable"), "1");
        let sdx = disk("sdx", usb, "8:32", 0);
        let _ = sdx;
        let loop0 = disk("loop0", "virtual", "7:0", 2048);
        put(&loop0.join("loop/backing_file"), "/images/disk.img");
        disk("loop1", "virtual", "7:1", 0);
        disk("zram0", "virtual", "252:0", 100);
        let dm0 = disk("dm-0", "virtual", "254:0", 1_000_000);
        put(&dm0.join("dm/name"), "vg-data");
        let part = |disk: &Path, name: &str, n: u32, start: u64, size: u64, dev: &str| {
            let p = disk.join(name);
            put(&p.join("partition"), &n.to_string());
            put(&p.join("start"), &start.to_string());
            put(&p.join("size"), &size.to_string());
            put(&p.join("dev"), dev);
            fs::create_dir_all(p.join("holders")).unwrap();
            link(&p, &sys.join("class/block").join(name));
            link(&p, &sys.join("dev/block").join(dev));
            p
        };
        part(&sdz, "sdz1", 1, 2048, 1_024_000, "8:1");
        let sdz2 = part(&sdz, "sdz2", 2, 1_026_048, 1_000_000, "8:2");
        part(&sdy, "sdy1", 1, 2048, 31_000_000, "8:17");
        link(&dm0, &sdz2.join("holders/dm-0"));
        link(&sdz2, &dm0.join("slaves/sdz2"));
        put(
            &dir.path().join("run/udev/data/b8:0"),
            "S:disk/by-id/ata-FAKE\nE:ID_SERIAL_SHORT=ZSERIAL123\nE:ID_WWN=0x5000c500abcdef01\nE:ID_BUS=ata",
        );
        FakeSys { _dir: dir, sys }
    }

    pub(crate) const MOUNTINFO: &'static str = "\
27 1 254:0 / /data rw,relatime - ext4 /dev/mapper/vg-data rw
28 27 8:17 / /media/usb rw - vfat /dev/sdy1 rw
29 27 8:1 / /boot rw - ext4 /dev/sdz1 rw
30 27 0:45 / /tmp rw - tmpfs tmpfs rw
";

    pub(crate) const SWAPS: &'static str = "\
Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/loop0                              partition\t1020\t\t0\t\t-2
";
}
