//! Mounted filesystems that can hold a repository, with their free space.

use std::path::{Path, PathBuf};

/// One mounted filesystem on a block device.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The device (`/dev/sdb1`).
    pub source: String,
    /// Filesystem type.
    pub fstype: String,
    /// Bytes available to an unprivileged writer.
    pub free: u64,
    /// Size of the filesystem.
    pub size: u64,
}

/// Undoes the octal escapes of mountinfo (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(oct) = s.get(i + 1..i + 4) {
                if oct.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                    if let Ok(v) = u8::from_str_radix(oct, 8) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of `/proc/self/mountinfo` into (mount point, fstype, source, read-only)
/// of the filesystems on block devices (`/dev/…` sources).
pub fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String, String, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 2 {
            continue;
        }
        let source = unescape(r[1]);
        if !source.starts_with("/dev/") {
            continue;
        }
        let ro = l[5].split(',').any(|o| o == "ro");
        out.push((PathBuf::from(unescape(l[4])), r[0].to_string(), source, ro));
    }
    out
}

/// Free and total bytes of the filesystem holding `path`.
pub fn space(path: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

/// The writable filesystems on block devices, each mount point once, with free space.
pub fn writable_mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<Mount> = Vec::new();
    for (mp, fstype, source, ro) in parse_mountinfo(&text) {
        if ro || out.iter().any(|m| m.mount_point == mp) {
            continue;
        }
        let Some((free, size)) = space(&mp) else {
            continue;
        };
        out.push(Mount {
            mount_point: mp,
            source,
            fstype,
            free,
            size,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    23 22 0:5 / /proc rw - proc proc rw\n\
                    24 22 8:17 / /mnt/usb\\040stick ro,relatime - vfat /dev/sdb1 ro\n\
                    bad line\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, PathBuf::from("/"));
        assert_eq!(m[0].2, "/dev/sda1");
        assert!(!m[0].3);
        assert_eq!(m[1].0, PathBuf::from("/mnt/usb stick"));
        assert!(m[1].3);
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("tail\\04"), "tail\\04");
    }
}
