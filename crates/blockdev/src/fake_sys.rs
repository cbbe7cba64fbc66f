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

impl FakeSys {
    /// `sdz` (SATA, 1 GiB, sdz1 mounted on /boot, sdz2 held by dm-0), `sdy` (USB stick,
    /// sdy1 mounted on /media/usb), `loop0` (backed by /images/disk.img, active swap),
    /// `loop1` (unbound), `zram0`, `dm-0` (on sdz2, mounted on /data), `sdx` (no medium).
    pub(crate) fn new() -> FakeSys {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let devices = sys.join("devices");
        let disk = |name: &str, parent: &str, dev: &str, size: u64| -> PathBuf {
            let d = devices.join(parent).join("block").join(name);
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
        };
        let sata = "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0";
        let sdz = disk("sdz", sata, "8:0", 2_097_152);
        put(&sdz.join("queue/physical_block_size"), "4096");
        put(&sdz.join("queue/rotational"), "1");
        let scsi = devices.join(sata);
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
