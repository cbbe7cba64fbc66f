//! The FAT12/16/32 and exFAT scanners of lifeboat.
//!
//! One job: tell which byte ranges of a FAT or exFAT volume are in use, so that only those
//! ranges are saved.
//!
//! * [`FatScanner`] (FAT12, FAT16, FAT32): the reserved region (boot sector, FSInfo, backup
//!   boot sector), every copy of the FAT and the FAT12/16 root directory are always kept; a
//!   data cluster is kept when its entry in the active FAT is non-zero and not the
//!   bad-cluster mark. The FAT type is decided by the cluster count, as the Microsoft
//!   specification says, never by the type string.
//! * [`ExfatScanner`]: the main and backup boot regions, the FAT(s), and the clusters marked in
//!   the active allocation bitmap (found through the root directory).
//!
//! The FAT and the bitmap are read in large sequential batches (a few MiB), so memory stays
//! constant whatever the volume size. Anything not understood is an error, so that the caller
//! copies the volume whole instead of guessing.
//!
//! The on-disk parsers ([`BootSector::parse`], [`fat_table::entry`],
//! [`exfat::ExfatBoot::parse`], [`exfat::directory::DirEntry::parse`]) take bytes and are
//! public for fuzzing and other tools. The library prints nothing and opens no file: volumes
//! are read through [`lifeboat_fs::ReadAt`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot_sector;
pub mod exfat;
pub mod fat_table;
pub mod fsinfo;
pub mod scanner;

pub use boot_sector::{BootSector, FatType};
pub use exfat::{ExfatBoot, ExfatScanner, ExfatUsedBlocks};
pub use scanner::{FatScanner, FatUsedBlocks};

use lifeboat_fs::FsError;

/// Name of the FAT family in errors.
pub const FS_NAME: &str = "fat";
/// Name of exFAT in errors.
pub const EXFAT_NAME: &str = "exfat";

/// Errors of the FAT and exFAT parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FatError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: need {need} bytes, got {got}")]
    TooShort {
        /// The structure.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A signature or magic value is missing: this is not the filesystem looked for.
    #[error("{0}")]
    NoSignature(String),
    /// A field is out of range or inconsistent with the others.
    #[error("{field} = {value}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A structure found through the metadata is inconsistent.
    #[error("{0}")]
    Corrupt(String),
    /// A checksum does not match.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// The filesystem claims more bytes than the volume has.
    #[error("filesystem of {fs_bytes} bytes does not fit in the volume of {volume_bytes} bytes")]
    TooLarge {
        /// Size claimed by the boot sector.
        fs_bytes: u64,
        /// Size of the volume.
        volume_bytes: u64,
    },
    /// The layout is legal but beyond what this scanner handles in bounded memory.
    #[error("too complex: {0}")]
    TooComplex(String),
    /// A field lies outside the structure that should hold it.
    #[error(transparent)]
    Field(#[from] lifeboat_fs::bytes::OutOfBounds),
}

impl FatError {
    /// Converts to the common error type, naming the filesystem family `fs`.
    pub fn into_fs(self, fs: &'static str) -> FsError {
        match self {
            FatError::TooShort { .. } | FatError::NoSignature(_) => {
                FsError::not_recognised(fs, self)
            }
            _ => FsError::corrupt(fs, self),
        }
    }
}

/// A volume serial number in the usual `XXXX-XXXX` notation.
pub(crate) fn serial_string(serial: u32) -> String {
    format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)
}
