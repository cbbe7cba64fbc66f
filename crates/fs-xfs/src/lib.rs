//! The XFS scanner of lifeboat.
//!
//! One job: tell which byte ranges of an XFS volume (v4, and v5 with metadata CRCs) are in
//! use, by reading its superblock, the header of every allocation group (AG) and the AG's
//! by-block free-space B+tree (the "bnobt"), so that only those ranges are saved.
//!
//! [`XfsScanner`] implements [`lifeboat_fs::Scanner`]. Everything in an AG that the bnobt does
//! not list as free is in use: the AG headers, the internal log, inodes, directories, file
//! data, every B+tree block and the blocks waiting on the AG free list (AGFL). The stream
//! walks each bnobt from its leftmost leaf along the right-sibling pointers, holding one
//! block at a time, so memory does not grow with the number of free extents. Every loop is
//! bounded and every structure checked (magic numbers, CRC32C on v5, levels, sibling links,
//! record order and bounds, the free-block count of the AGF): anything not understood
//! (unknown incompatible features, a realtime device, a filesystem that needs repair or whose
//! creation did not finish, inconsistent counts) is an error, so the caller copies the volume
//! whole instead.
//!
//! The on-disk parsers ([`Superblock::parse`], [`Agf::parse`], [`BtreeBlock::parse`]) take
//! bytes and are public for fuzzing and other tools. The library prints nothing and opens no
//! file: volumes are read through [`lifeboat_fs::ReadAt`]. All fields are big-endian.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agf;
pub mod btree;
pub mod bytes;
pub mod crc;
pub mod scanner;
pub mod superblock;

pub use agf::Agf;
pub use btree::BtreeBlock;
pub use scanner::{XfsScanner, XfsUsedBlocks};
pub use superblock::Superblock;

use lifeboat_fs::bytes::OutOfBounds;
use lifeboat_fs::FsError;

/// Name of the filesystem family in errors.
pub const FS_NAME: &str = "xfs";

/// Why the XFS scanner refuses a volume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XfsError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: need {need} bytes, got {got}")]
    TooShort {
        /// The structure.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes there.
        got: u64,
    },
    /// The superblock does not start with `XFSB`.
    #[error("superblock magic {0:#010x} is not XFSB")]
    BadMagic(u32),
    /// A field lies outside the structure read for it.
    #[error("{what}: {at}")]
    Field {
        /// The structure.
        what: &'static str,
        /// Where the field was looked for.
        at: OutOfBounds,
    },
    /// A superblock field is out of range or inconsistent.
    #[error("superblock field {field} = {value}: {reason}")]
    Superblock {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A feature or state this scanner does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A CRC32C does not match (v5 metadata).
    #[error("{what}: CRC {stored:#010x} stored, {computed:#010x} computed")]
    Checksum {
        /// The structure and where it is.
        what: String,
        /// The CRC on disk.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// An AG header (AGF) is inconsistent.
    #[error("AG {ag} AGF field {field} = {value}: {reason}")]
    Agf {
        /// The allocation group.
        ag: u32,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong.
        reason: String,
    },
    /// A block of the free-space B+tree is inconsistent.
    #[error("AG {ag} free-space B+tree block {block}: {field}: {reason}")]
    Btree {
        /// The allocation group.
        ag: u32,
        /// The block (AG-relative block number).
        block: u32,
        /// The field or record.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The free blocks listed in the B+tree differ from the AGF's count.
    #[error(
        "AG {ag}: the free-space B+tree lists {counted} free blocks but the AGF says {agf} \
         (unclean or corrupt filesystem)"
    )]
    FreeCount {
        /// The allocation group.
        ag: u32,
        /// `agf_freeblks`.
        agf: u32,
        /// The sum of the B+tree's records.
        counted: u64,
    },
    /// The filesystem claims more bytes than the volume has.
    #[error("filesystem of {fs_bytes} bytes does not fit in the volume of {volume_bytes} bytes")]
    TooLarge {
        /// Size claimed by the superblock.
        fs_bytes: u64,
        /// Size of the volume.
        volume_bytes: u64,
    },
}

impl From<XfsError> for FsError {
    fn from(e: XfsError) -> FsError {
        match e {
            XfsError::TooShort { .. } | XfsError::BadMagic(_) => {
                FsError::not_recognised(FS_NAME, e)
            }
            _ => FsError::corrupt(FS_NAME, e),
        }
    }
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
