//! The one error type of this crate.

use std::io;

/// Everything that can go wrong reading a partclone image or a Clonezilla image directory.
///
/// Offsets are byte offsets in the *decompressed* partclone stream (the stream partclone itself
/// wrote), so that `zstd -dc FILE | dd skip=OFFSET iflag=skip_bytes` shows the bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the underlying file or stream failed.
    #[error("read error at byte {offset} ({what}): {source}")]
    Io {
        /// Offset where the read started.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The stream ended before the structure that was being read.
    #[error("the image ends early at byte {offset}, inside the {what}")]
    Truncated {
        /// Offset where the stream ended.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// The stream does not start with the partclone signature.
    #[error("not a partclone image: no \"partclone-image\" signature at byte 0")]
    NotPartclone,
    /// A partclone image of a format version this reader does not know.
    #[error("partclone image format version {0:?} is not supported (known: 0001, 0002)")]
    UnsupportedVersion(String),
    /// A header field is out of range or inconsistent.
    #[error("invalid partclone header at byte {offset}: {reason}")]
    BadHeader {
        /// Offset of the field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The CRC-32 of a v2 header does not match.
    #[error(
        "partclone header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    HeaderChecksum {
        /// The value in the image.
        stored: u32,
        /// The value of the bytes read.
        computed: u32,
    },
    /// The image was written on a big-endian machine.
    #[error("the partclone image was written on a big-endian machine; only little-endian images are supported")]
    BigEndian,
    /// A checksum algorithm this reader does not implement.
    #[error(
        "partclone checksum mode {0:#x} is not supported (supported: none, CRC32, XXH64, XXH128)"
    )]
    UnsupportedChecksum(u16),
    /// A bitmap mode this reader does not implement.
    #[error("partclone bitmap mode {0:#x} is not supported (supported: bit, byte, none)")]
    UnsupportedBitmap(u8),
    /// The block bitmap would need more memory than allowed.
    #[error("the block bitmap of {blocks} blocks needs {bytes} bytes, more than the limit of {limit} bytes")]
    BitmapTooLarge {
        /// Blocks in the filesystem.
        blocks: u64,
        /// Bytes needed.
        bytes: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The CRC-32 after a v2 bitmap does not match.
    #[error("block bitmap checksum mismatch at byte {offset} (stored {stored:#010x}, computed {computed:#010x})")]
    BitmapChecksum {
        /// Offset of the stored checksum.
        offset: u64,
        /// The value in the image.
        stored: u32,
        /// The value of the bitmap read.
        computed: u32,
    },
    /// The "BiTmAgIc" marker after a v1 bitmap is missing.
    #[error("no \"BiTmAgIc\" marker after the v1 block bitmap at byte {offset}")]
    BitmapMagic {
        /// Offset where the marker was expected.
        offset: u64,
    },
    /// A data checksum does not match: the image is damaged.
    #[error("checksum mismatch for the data blocks ending with block {block} (stored at byte {offset}: {stored}, computed {computed})")]
    BlockChecksum {
        /// Filesystem block number of the last block the checksum covers.
        block: u64,
        /// Offset of the stored checksum.
        offset: u64,
        /// The stored checksum, hex.
        stored: String,
        /// The computed checksum, hex.
        computed: String,
    },
    /// Compressed data that none of the decoders can read.
    #[error("{file}: {what} compression is not supported (supported: gzip, zstd, xz, bzip2, lz4, uncompressed)")]
    UnsupportedCompression {
        /// The file.
        file: String,
        /// What its first bytes look like.
        what: String,
    },
    /// An error about one file of an image directory (its `Display` names the file; the
    /// error itself is its source).
    #[error("{file}")]
    InFile {
        /// The file (name inside the image directory).
        file: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A file the image directory needs is missing.
    #[error("{dir}: missing {file} ({why})")]
    Missing {
        /// The image directory.
        dir: String,
        /// The missing file.
        file: String,
        /// Why it is needed.
        why: &'static str,
    },
    /// A text file of the image directory (`disk`, `parts`, `*-pt.sf`, …) cannot be understood.
    #[error("{file} line {line}: {reason}")]
    BadText {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Something in the image directory that this reader does not support.
    #[error("{file}: {reason}")]
    Unsupported {
        /// The file.
        file: String,
        /// What is not supported.
        reason: String,
    },
}

impl Error {
    /// Wraps `self` with the name of the file it is about (once: an error already naming a
    /// file is returned unchanged).
    pub fn in_file(self, file: &str) -> Error {
        match self {
            e @ (Error::InFile { .. }
            | Error::UnsupportedCompression { .. }
            | Error::BadText { .. }
            | Error::Missing { .. }
            | Error::Unsupported { .. }) => e,
            e => Error::InFile {
                file: file.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// True when the error means the image is damaged or incomplete (checksum, truncation,
    /// inconsistent header, a missing file or piece, an unreadable list), as opposed to an
    /// I/O failure or an unsupported feature.
    pub fn is_damage(&self) -> bool {
        match self {
            Error::InFile { source, .. } => source.is_damage(),
            Error::Truncated { .. }
            | Error::BadHeader { .. }
            | Error::HeaderChecksum { .. }
            | Error::BitmapChecksum { .. }
            | Error::BitmapMagic { .. }
            | Error::BlockChecksum { .. }
            | Error::Missing { .. }
            | Error::BadText { .. } => true,
            Error::Io { source, .. } => {
                // Decoders report corrupt compressed data as InvalidData.
                source.kind() == io::ErrorKind::InvalidData
            }
            _ => false,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
