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
    let mut out: Vec<Mount> = Vec::new();
    for m in lifeboat_engine::mounted_filesystems().unwrap_or_default() {
        if m.read_only
            || !m.source.starts_with("/dev/")
            || out.iter().any(|o| o.mount_point == m.mount_point)
        {
            continue;
        }
        let Some((free, size)) = space(&m.mount_point) else {
            continue;
        };
        out.push(Mount {
            mount_point: m.mount_point,
            source: m.source,
            fstype: m.fstype,
            free,
            size,
        });
    }
    out
}
