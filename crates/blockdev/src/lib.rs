//! Disks for lifeboat: block devices and whole-disk image files.
//!
//! One job: give the rest of lifeboat safe, typed access to the disks of the machine. A
//! [`Disk`] opens a block device or an image file (buffered or with direct I/O through
//! [`AlignedBuf`]), reports its size, sector sizes and identity, and does positional reads and
//! writes; [`list_disks`] enumerates the whole disks from sysfs; [`in_use`] tells whether a disk
//! or image is mounted, swapped on, held by dm/md or backing a loop device; and
//! [`disks_holding_path`] finds the disks under a directory, so that nobody restores onto the
//! disk that holds the image repository.
//!
//! Linux only. The only unsafe code is the small `ioctl` module (three block-device ioctls).
#![deny(unsafe_code)]

mod aligned;
mod disk;
mod error;
#[cfg(test)]
mod fake_sys;
#[allow(unsafe_code)]
mod ioctl;
mod sysfs;
mod usage;

pub use aligned::AlignedBuf;
pub use disk::{Disk, OpenMode, RereadOutcome};
pub use error::{BlockDevError, Result};
pub use sysfs::{
    list_disks, list_disks_at, DiskIdentity, DiskInfo, DiskKind, Multipath, PartitionInfo,
};
pub use usage::{
    disks_holding_path, in_use, mounted_filesystems, multipath_path_of, DiskRef, MountedFilesystem,
    Usage, UsageKind,
};

/// Entry points for the fuzz targets (`fuzz/`) into the parsers of `/proc/self/mountinfo` and
/// `/proc/swaps`, which are otherwise private. **Not API**: hidden from the documentation, no
/// stability promise; nothing in lifeboat uses it.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::PathBuf;

    /// One parsed mountinfo line: device number (field 3), mount point, the source's device
    /// number when it is a block device node, source, filesystem type, read-only.
    pub type MountLine = (
        (u32, u32),
        PathBuf,
        Option<(u32, u32)>,
        String,
        String,
        bool,
    );

    /// The parser of `/proc/self/mountinfo`.
    pub fn mountinfo(text: &str) -> Vec<MountLine> {
        crate::usage::parse_mountinfo(text)
            .into_iter()
            .map(|m| m.into_parts())
            .collect()
    }

    /// The parser of `/proc/swaps`: path and device number when it is a block device node.
    pub fn swaps(text: &str) -> Vec<(PathBuf, Option<(u32, u32)>)> {
        crate::usage::parse_swaps(text)
    }
}
