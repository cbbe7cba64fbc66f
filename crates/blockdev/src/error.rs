//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with a disk. Each message names the device or file and the
/// offset where one applies; it does not repeat its source, nor advise (the engine's
/// `Advice::of_disk` says what the operator can do).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockDevError {
    /// The path could not be examined.
    #[error("cannot examine {path}")]
    Stat {
        /// The path given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path is neither a block device nor a regular file.
    #[error(
        "{path} is neither a block device nor a regular file; give a whole disk such as \
         /dev/sdb or a disk image file"
    )]
    NotADisk {
        /// The path given.
        path: PathBuf,
    },
    /// Opening failed.
    #[error("cannot open {path} ({mode})")]
    Open {
        /// The path given.
        path: PathBuf,
        /// How it was being opened.
        mode: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An exclusive open was refused because something else holds the device.
    #[error(
        "{path} is busy (mounted, an active swap, held by device-mapper/md, or opened \
         exclusively by another program); unmount or stop whatever uses it first"
    )]
    Busy {
        /// The device.
        path: PathBuf,
    },
    /// A block-device ioctl failed.
    #[error("ioctl {op} on {path} failed")]
    Ioctl {
        /// The device.
        path: PathBuf,
        /// The ioctl's name.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A read failed.
    #[error("read of {len} bytes at offset {offset} of {path} failed")]
    Read {
        /// The device or file.
        path: PathBuf,
        /// Byte offset of the read.
        offset: u64,
        /// Length of the read.
        len: usize,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A write failed.
    #[error("write of {len} bytes at offset {offset} of {path} failed")]
    Write {
        /// The device or file.
        path: PathBuf,
        /// Byte offset of the write.
        offset: u64,
        /// Length of the write.
        len: usize,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A read or write would pass the end of the disk.
    #[error(
        "{op} of {len} bytes at offset {offset} passes the end of {path} ({size} bytes); \
         use a larger target or check the offsets"
    )]
    OutOfRange {
        /// The device or file.
        path: PathBuf,
        /// `read` or `write`.
        op: &'static str,
        /// Byte offset requested.
        offset: u64,
        /// Length requested.
        len: usize,
        /// Size of the disk in bytes.
        size: u64,
    },
    /// A write on a disk opened read-only.
    #[error(
        "{path} was opened read-only, so the write at offset {offset} was refused; open it \
         with OpenMode::ReadWrite"
    )]
    ReadOnly {
        /// The device or file.
        path: PathBuf,
        /// Byte offset of the refused write.
        offset: u64,
    },
    /// Direct I/O with an offset, length or buffer that is not aligned.
    #[error(
        "direct I/O on {path}: the {what} is not a multiple of {align} bytes (offset {offset}, \
         length {len}); use an AlignedBuf and offsets and lengths that are multiples of {align}"
    )]
    Misaligned {
        /// The device or file.
        path: PathBuf,
        /// `offset`, `length` or `buffer address`.
        what: &'static str,
        /// Byte offset requested.
        offset: u64,
        /// Length requested.
        len: usize,
        /// Required alignment in bytes.
        align: u32,
    },
    /// fsync failed.
    #[error("flushing {path} to stable storage failed")]
    Sync {
        /// The device or file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused to re-read a partition table.
    #[error("the kernel refused to re-read the partition table of {path}")]
    Reread {
        /// The device.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A sysfs or procfs file could not be read.
    #[error("cannot read {path}")]
    System {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An unsupported logical sector size was requested for an image file.
    #[error(
        "{path}: logical sector size {requested} is not usable here ({reason}); use 512 or \
         4096 for image files, or the device's own size for block devices"
    )]
    SectorSize {
        /// The device or file.
        path: PathBuf,
        /// The size asked for.
        requested: u32,
        /// Why it was refused.
        reason: String,
    },
}

/// Result with a [`BlockDevError`].
pub type Result<T> = std::result::Result<T, BlockDevError>;
