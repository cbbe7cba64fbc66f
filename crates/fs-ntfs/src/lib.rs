//! The NTFS scanner of lifeboat.
//!
//! One job: tell which byte ranges of an NTFS volume are in use, by reading its boot sector,
//! the `$MFT` records it needs and the cluster bitmap `$Bitmap`, so that only those ranges are
//! saved.
//!
//! [`NtfsScanner`] implements [`lifeboat_fs::Scanner`]. Opening a volume reads the boot
//! sector, `$MFT` record 0 (to locate the other records), record 3 (`$Volume`: label, version,
//! dirty flag), record 6 (`$Bitmap`, including the extension records named by an
//! `$ATTRIBUTE_LIST` when the bitmap is very fragmented) and the root directory (record 5) to
//! look for a hibernation file. The bitmap is then streamed in reads of up to 4 MiB, so memory
//! stays constant whatever the volume size. The padding bits past the last cluster are ignored,
//! and the backup boot sector, which lies in the last sector of the volume beyond the last
//! cluster, is always kept. Anything not understood (bad fixups, unknown attribute layout,
//! runs outside the volume, geometry out of range) is an error, so the caller copies the
//! volume whole instead.
//!
//! Why own code rather than the `ntfs` crate: the scanner needs four small structures (boot
//! sector, update-sequence fixups, attribute records, mapping pairs) and must stream the bitmap
//! in large sequential reads with bounded memory and refuse, not guess, on anything unusual.
//! A general NTFS reader brings file and index APIs this job does not use, its own error and
//! allocation policy for untrusted length fields, and reads through a `Read + Seek` object
//! rather than positional reads shared between threads. The parsers here take bytes, are
//! public, and are fuzzed and property-tested directly.
//!
//! The on-disk parsers ([`BootSector::parse`], [`mft_record::apply_fixups`],
//! [`mft_record::MftRecord::parse`], [`runlist::decode`]) take bytes and are public for fuzzing
//! and other tools. The library prints nothing and opens no file: volumes are read through
//! [`lifeboat_fs::ReadAt`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot_sector;
pub mod index;
pub mod mft_record;
pub mod runlist;
pub mod scanner;

pub use boot_sector::BootSector;
pub use mft_record::MftRecord;
pub use runlist::Run;
pub use scanner::{NtfsScanner, NtfsUsedBlocks};

use lifeboat_fs::FsError;

/// Name of the filesystem family in errors.
pub const FS_NAME: &str = "ntfs";

/// Errors of the NTFS parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtfsError {
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
    /// The boot sector does not carry the `NTFS    ` OEM id.
    #[error("no NTFS signature in the boot sector")]
    BadSignature,
    /// A boot sector field is out of range or inconsistent.
    #[error("boot sector field {field} = {value}: {reason}")]
    BadBootSector {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An MFT record (or another multi-sector protected structure) is damaged.
    #[error("{what}: {reason}")]
    BadRecord {
        /// The structure, e.g. `MFT record 6`.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A mapping-pairs array (runlist) is malformed.
    #[error("runlist: {0}")]
    BadRunlist(String),
    /// Something legal that this scanner does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The layout is legal but beyond what this scanner handles in bounded memory.
    #[error("too complex: {0}")]
    TooComplex(String),
    /// Structures found through the metadata disagree with each other or with the volume.
    #[error("{0}")]
    Inconsistent(String),
    /// A field lies outside the structure that should hold it.
    #[error(transparent)]
    Field(#[from] lifeboat_fs::bytes::OutOfBounds),
}

impl From<NtfsError> for FsError {
    fn from(e: NtfsError) -> FsError {
        match e {
            NtfsError::TooShort { .. } | NtfsError::BadSignature => {
                FsError::not_recognised(FS_NAME, e)
            }
            _ => FsError::corrupt(FS_NAME, e),
        }
    }
}
