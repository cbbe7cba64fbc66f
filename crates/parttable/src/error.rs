//! The crate's error type.

use std::io;

/// Why a partition table could not be read or changed. The parsers never see a device name,
/// so messages say "the disk": the caller adds which one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartError {
    /// Only 512- and 4096-byte logical sectors are handled.
    #[error(
        "unsupported logical sector size {sector_size}: lifeboat handles 512 and 4096-byte \
         sectors; pass the disk's logical sector size"
    )]
    SectorSize {
        /// The size given.
        sector_size: u32,
    },
    /// Reading the disk failed.
    #[error("cannot read the {what} at byte {offset} of the disk")]
    Read {
        /// Which structure was being read.
        what: String,
        /// Byte offset of the read.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the disk failed.
    #[error("cannot write the {what} at byte {offset} of the disk")]
    Write {
        /// Which structure was being written.
        what: String,
        /// Byte offset of the write.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The table is recognisable but inconsistent, so its partitions cannot be trusted.
    #[error(
        "corrupt {what} at byte {offset} of the disk: {reason}; repair the partition table \
         (fdisk, gdisk) or image the whole disk raw"
    )]
    Corrupt {
        /// Which structure.
        what: String,
        /// Byte offset of the structure.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// `relocate_gpt` found no usable GPT.
    #[error(
        "no valid GPT to relocate (primary header at byte {offset}): {reason}; the primary GPT \
         header and its entries must be intact, repair them with gdisk first"
    )]
    NoGpt {
        /// Byte offset of the primary header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The new disk cannot hold the partitions of the GPT.
    #[error(
        "the disk ({disk_size} bytes) is too small for this GPT: it needs at least {needed} \
         bytes to keep every partition and the backup table; use a larger disk"
    )]
    DiskTooSmall {
        /// Size given.
        disk_size: u64,
        /// Smallest size that works.
        needed: u64,
    },
}
