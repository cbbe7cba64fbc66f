//! Errors of the container reader and writer.

use std::io;

/// An error reading or writing an image container. Positions are byte offsets in the logical
/// container stream (the concatenation of all volumes). A variant with a source does not
/// repeat it in its message: walk [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The underlying reader or writer failed.
    #[error("I/O error at container byte {pos}")]
    Io {
        /// Position in the container stream.
        pos: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The stream ended inside a record, or before the tail: the image is truncated.
    #[error("the image is truncated at container byte {pos} (inside {what}); it was not saved completely — save it again")]
    Truncated {
        /// Position where more bytes were expected.
        pos: u64,
        /// Which structure was being read.
        what: &'static str,
    },
    /// A structure does not start with its magic bytes.
    #[error("not a lifeboat {what} at container byte {pos} (found bytes {found:02x?}); the image is damaged or not a lifeboat image")]
    BadMagic {
        /// Position of the structure.
        pos: u64,
        /// Which structure was expected.
        what: &'static str,
        /// The bytes found instead.
        found: [u8; 4],
    },
    /// The container was written by a newer, incompatible format version.
    #[error("image format version {major}.{minor} is not supported by this lifeboat (it reads up to {supported}.x); use a newer lifeboat")]
    Version {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
        /// Highest major version this code reads (of this kind of stream).
        supported: u16,
    },
    /// A checksum did not match: the bytes were damaged after they were written.
    #[error("checksum mismatch in {what} at container byte {pos}{}: the image is damaged; restore from another copy", chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default())]
    Checksum {
        /// Which checksum failed.
        what: &'static str,
        /// Position of the record.
        pos: u64,
        /// Chunk sequence number, for chunk records.
        chunk: Option<u64>,
    },
    /// A field holds a value outside what the format allows.
    #[error("invalid {what} at container byte {pos}: {detail}")]
    Invalid {
        /// Which field or structure.
        what: &'static str,
        /// Position of the record.
        pos: u64,
        /// What is wrong.
        detail: String,
    },
    /// The manifest or a disk record is not valid JSON of the expected shape.
    #[error("invalid {what} JSON at container byte {pos}")]
    Json {
        /// Which record.
        what: &'static str,
        /// Position of the record.
        pos: u64,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// zstd could not compress or decompress a chunk.
    #[error("zstd failed on chunk {chunk} at container byte {pos}")]
    Codec {
        /// Chunk sequence number.
        chunk: u64,
        /// Position of the chunk record.
        pos: u64,
        /// The codec's error.
        #[source]
        source: io::Error,
    },
    /// Reading the source disk failed (reported by the caller's fill function).
    #[error("reading the source at disk byte {offset} failed")]
    Source {
        /// Disk byte offset of the failed read.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The caller used the API out of order (a bug in the caller).
    #[error("container writer misuse: {0}")]
    Usage(String),
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The image is sealed (encrypted, format 2.0) and was read without its passphrase.
    #[error("the image is encrypted: its passphrase is needed to read it")]
    Encrypted,
    /// The passphrase does not open the image (its key-check value differs).
    #[error("wrong passphrase: it does not open this encrypted image")]
    WrongPassphrase,
    /// Authenticated encryption found a modified, moved or foreign part of a sealed image.
    #[error("authentication failed in {what} at container byte {pos}{}{}: the encrypted image was modified, cut or mixed with another image; restore from another copy", chunk.map(|c| format!(" (chunk {c})")).unwrap_or_default(), segment.map(|s| format!(", sealed segment {s}")).unwrap_or_default())]
    Tampered {
        /// Which structure was being read.
        what: &'static str,
        /// Position in the (decrypted) container stream.
        pos: u64,
        /// The sealed segment that failed.
        segment: Option<u64>,
        /// Chunk sequence number, when a chunk record was being read.
        chunk: Option<u64>,
    },
}

impl ContainerError {
    /// The container position the error refers to, when there is one.
    pub fn position(&self) -> Option<u64> {
        match self {
            ContainerError::Io { pos, .. }
            | ContainerError::Truncated { pos, .. }
            | ContainerError::BadMagic { pos, .. }
            | ContainerError::Checksum { pos, .. }
            | ContainerError::Invalid { pos, .. }
            | ContainerError::Json { pos, .. }
            | ContainerError::Codec { pos, .. }
            | ContainerError::Tampered { pos, .. } => Some(*pos),
            _ => None,
        }
    }
}

/// The message of `e` followed by those of its sources, joined with ": " (how an error is
/// embedded in a warning or in another error's text; the workspace's errors do not repeat
/// their source in their own message).
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Result alias of this crate.
pub type Result<T, E = ContainerError> = std::result::Result<T, E>;
