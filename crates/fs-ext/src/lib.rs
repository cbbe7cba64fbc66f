//! The ext2/ext3/ext4 scanner of lifeboat.
//!
//! One job: tell which byte ranges of an ext2/3/4 volume are in use, by reading its superblock,
//! group descriptors and block (cluster) bitmaps, so that only those ranges are saved.
//!
//! [`ExtScanner`] implements [`lifeboat_fs::Scanner`]. The stream it opens walks the groups in
//! order, reading one descriptor batch and one bitmap batch at a time, so memory stays at a
//! few MiB whatever the filesystem size. Groups whose bitmap is not initialised on disk
//! (`BLOCK_UNINIT`) get their in-use blocks computed from the layout. Anything not understood
//! (unknown incompatible features, descriptors pointing outside the filesystem, bad checksums,
//! inconsistent geometry) is an error, so the caller copies the volume whole instead.
//!
//! The on-disk parsers ([`Superblock::parse`], [`GroupDesc::parse`], [`Layout::new`]) take
//! bytes and are public for fuzzing and other tools. The library prints nothing and opens no
//! file: volumes are read through [`lifeboat_fs::ReadAt`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod group_desc;
pub mod layout;
pub mod scanner;
pub mod superblock;

pub use group_desc::GroupDesc;
pub use layout::Layout;
pub use scanner::{ExtScanner, ExtUsedBlocks};
pub use superblock::Superblock;

use lifeboat_fs::FsError;

/// Name of the filesystem family in errors.
pub const FS_NAME: &str = "ext";

/// Errors of the ext parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
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
    /// The superblock magic is not 0xEF53.
    #[error("superblock magic {0:#06x} is not 0xef53")]
    BadMagic(u16),
    /// A superblock field is out of range or inconsistent.
    #[error("superblock field {field} = {value}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A feature this scanner does not understand.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A checksum does not match.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// A group descriptor is inconsistent.
    #[error("group {group} descriptor: {reason}")]
    BadDescriptor {
        /// The group.
        group: u64,
        /// What is wrong.
        reason: String,
    },
    /// The filesystem claims more bytes than the volume has.
    #[error("filesystem of {fs_bytes} bytes does not fit in the volume of {volume_bytes} bytes")]
    TooLarge {
        /// Size claimed by the superblock.
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

impl From<ExtError> for FsError {
    fn from(e: ExtError) -> FsError {
        match e {
            ExtError::TooShort { .. } | ExtError::BadMagic(_) => {
                FsError::not_recognised(FS_NAME, e)
            }
            _ => FsError::corrupt(FS_NAME, e),
        }
    }
}
