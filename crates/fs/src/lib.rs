//! The common filesystem layer of lifeboat.
//!
//! One job: describe, for any volume (a partition or a whole disk), which byte ranges hold data
//! that must be kept. A filesystem driver ("scanner", e.g. `lifeboat-fs-ext`) implements
//! [`Scanner`]; opening it on a volume yields a [`UsedBlocks`] stream of [`Extent`]s in
//! increasing order, never the whole map at once, so memory does not grow with the volume size.
//! A volume that no scanner recognises is copied whole: [`detect`] returns [`Detection::Raw`]
//! with the reason, and [`RawVolume`] streams the single extent that covers it.
//!
//! Volumes are read through [`ReadAt`] (positional reads, shareable between threads), which is
//! implemented for files, byte slices and windows ([`Slice`]) of another volume. A scanner
//! opens a [`SharedVolume`] (a shared handle, not a borrow), so the stream it returns owns
//! what it reads and can be kept, e.g. from planning a save to streaming it.
//!
//! What every scanner crate builds on: [`MergedExtents`] turns an [`ExtentSource`] (raw
//! extents, in increasing order, not merged) into the merged, fused stream a [`UsedBlocks`]
//! returns; [`bitmap`] reads allocation bitmaps; [`bytes`] reads little-endian fields without
//! panicking on short buffers; and [`FsError`] carries the scanner's own typed error as the
//! [`Cause`] of a refusal.
#![forbid(unsafe_code)]

pub mod bitmap;
pub mod bytes;
pub mod checksum;
mod detect;
mod extent;
mod merged;
mod read_at;
mod summary;

pub use detect::{
    content_type, detect, identify_signature, md_superblock_at, signatures, Detection, Signature,
};
pub use extent::{Extent, ExtentMerger};
pub use merged::{ExtentSource, MergedExtents};
pub use read_at::{ReadAt, ReadSeekAt, Slice};
pub use summary::{tally, Tally};
pub mod swap;

use std::io;
use std::sync::Arc;

/// A volume shared by handle: what [`Scanner::open`] takes, so that the stream it returns
/// borrows nothing (e.g. `Arc::new(Slice::new(Arc::clone(&disk), start, len))`).
pub type SharedVolume = Arc<dyn ReadAt>;

/// Why a scanner refused a volume, in the scanner's own typed error (e.g. `ExtError` of
/// `lifeboat-fs-ext`): a caller can `downcast_ref` it to learn which structure failed, where,
/// and with which values; its text is the reason shown to operators.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of a filesystem scanner. The kind tells a caller what to do: [`FsError::Io`] is a
/// failed read, [`FsError::NotRecognised`] means another scanner (or a raw copy) applies, and
/// [`FsError::Corrupt`] means "recognised but not understood: copy the volume raw, with this
/// reason".
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Reading the volume failed.
    #[error("read error at byte {offset} of the volume")]
    Io {
        /// Byte offset (relative to the volume start) of the failed read.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The bytes do not describe a filesystem this scanner understands.
    #[error("not a {fs} filesystem: {cause}")]
    NotRecognised {
        /// Filesystem family the scanner looked for.
        fs: &'static str,
        /// What did not match.
        cause: Cause,
    },
    /// The filesystem was recognised but a structure is inconsistent or unsupported; the
    /// caller must fall back to copying the volume raw.
    #[error("{fs}: {cause}")]
    Corrupt {
        /// Filesystem family.
        fs: &'static str,
        /// What is wrong, with the structure and offset where known.
        cause: Cause,
    },
}

impl FsError {
    /// Builds an [`FsError::Io`] for a read at `offset`.
    pub fn io(offset: u64, source: io::Error) -> Self {
        FsError::Io { offset, source }
    }

    /// Builds an [`FsError::NotRecognised`] of the `fs` scanner.
    pub fn not_recognised(fs: &'static str, cause: impl Into<Cause>) -> Self {
        FsError::NotRecognised {
            fs,
            cause: cause.into(),
        }
    }

    /// Builds an [`FsError::Corrupt`] of the `fs` scanner.
    pub fn corrupt(fs: &'static str, cause: impl Into<Cause>) -> Self {
        FsError::Corrupt {
            fs,
            cause: cause.into(),
        }
    }

    /// The scanner's typed error behind a refusal (`None` for a failed read); downcast it to
    /// the scanner crate's error type.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            FsError::Io { .. } => None,
            FsError::NotRecognised { cause, .. } | FsError::Corrupt { cause, .. } => {
                Some(cause.as_ref())
            }
        }
    }
}

/// Fills `buf` from byte `offset` of `volume`; a failed read is an [`FsError::Io`] at `offset`.
pub fn read_exact(volume: &dyn ReadAt, buf: &mut [u8], offset: u64) -> Result<(), FsError> {
    volume
        .read_exact_at(buf, offset)
        .map_err(|e| FsError::io(offset, e))
}

/// What a scanner learned about a volume. Shown per partition by `lifeboat info` and stored in
/// the image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsInfo {
    /// Filesystem name as shown to operators, e.g. `ext4`.
    pub fs_type: String,
    /// Volume label, if any.
    pub label: Option<String>,
    /// Volume UUID or serial, if any, in the filesystem's usual notation.
    pub uuid: Option<String>,
    /// Allocation unit in bytes (block or cluster size).
    pub block_size: u32,
    /// Size of the filesystem in bytes (may be smaller than the volume).
    pub total_bytes: u64,
    /// Bytes the scanner will report as used (the sum of all extents it yields).
    pub used_bytes: u64,
    /// Number of files (including directories and links) the filesystem holds, where the
    /// scanner learns it without extra reads.
    pub files: Option<u64>,
    /// Things the operator should know (dirty volume, stale counters, ...).
    pub warnings: Vec<String>,
    /// For a volume manager's member (an LVM2 PV, an md RAID member): the logical volumes that
    /// lie on it, each with what its own scanner learned. Empty for a filesystem.
    pub volumes: Vec<InnerVolume>,
    /// For a volume manager's member: bytes that belong to no logical volume and to no
    /// metadata (LVM free extents), which are not stored.
    pub unallocated_bytes: Option<u64>,
}

/// A logical volume inside a volume manager's member (see [`FsInfo::volumes`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InnerVolume {
    /// Its name, e.g. `vg_web01/root` or `md0`.
    pub name: String,
    /// How the manager maps it, e.g. `linear`, `striped`, `raid1`, `thin-pool`.
    pub layout: String,
    /// Its size in bytes.
    pub size: u64,
    /// True when it is copied whole (no scanner, or a layout not mapped); the reason is the
    /// first of `info.warnings`.
    pub raw: bool,
    /// What the scanner of its content learned (its `used_bytes` count the whole logical
    /// volume, wherever its parts lie).
    pub info: FsInfo,
}

/// A stream of the used byte ranges of one volume, in increasing, non-overlapping order.
pub trait UsedBlocks: Send {
    /// What the scanner learned about the volume.
    fn info(&self) -> &FsInfo;
    /// The next used extent, or `None` at the end.
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError>;
}

/// A filesystem driver: recognises its filesystem and opens a [`UsedBlocks`] stream on it.
pub trait Scanner: Send + Sync {
    /// Short name, e.g. `ext`.
    fn name(&self) -> &'static str;
    /// Cheap check of the signature: does this volume look like our filesystem?
    fn probe(&self, volume: &dyn ReadAt) -> bool;
    /// Parses the filesystem's metadata and returns the stream of used extents, which keeps
    /// its share of `volume`. Must fail (not guess) when any structure it relies on is not
    /// understood.
    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError>;
}

/// The fallback: the whole volume is one used extent.
#[derive(Debug, Clone)]
pub struct RawVolume {
    info: FsInfo,
    done: bool,
}

impl RawVolume {
    /// A raw stream over a volume of `len` bytes; `fs_type` names what was detected (or
    /// `unknown`), and `reason` says why it is copied raw.
    pub fn new(len: u64, fs_type: &str, reason: &str) -> Self {
        RawVolume {
            info: FsInfo {
                fs_type: fs_type.to_string(),
                block_size: 512,
                total_bytes: len,
                used_bytes: len,
                warnings: vec![reason.to_string()],
                ..FsInfo::default()
            },
            done: len == 0,
        }
    }
}

impl UsedBlocks for RawVolume {
    fn info(&self) -> &FsInfo {
        &self.info
    }
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(Extent::new(0, self.info.total_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bad field {0}")]
    struct Typed(u32);

    #[test]
    fn refusals_keep_their_typed_cause_and_read_as_before() {
        let e = FsError::corrupt("x", Typed(7));
        assert!(matches!(e, FsError::Corrupt { fs: "x", .. }));
        assert_eq!(e.to_string(), "x: bad field 7");
        assert_eq!(
            e.cause()
                .and_then(|c| c.downcast_ref::<Typed>())
                .map(|t| t.0),
            Some(7)
        );
        let e = FsError::not_recognised("x", "no magic");
        assert_eq!(e.to_string(), "not a x filesystem: no magic");
        assert!(FsError::io(3, io::Error::other("gone")).cause().is_none());
    }
}
