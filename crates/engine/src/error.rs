//! Errors of the engine. Every message says what failed, where (file, partition, offset) and
//! what to do next.

use lifeboat_blockdev::BlockDevError;
use lifeboat_container::ContainerError;
use lifeboat_parttable::PartError;
use lifeboat_repo::RepoError;

/// Why an operation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A disk could not be opened, read or written.
    #[error(transparent)]
    Disk(#[from] BlockDevError),
    /// The partition table of a disk could not be read.
    #[error("{disk}: {source}")]
    Table {
        /// The disk.
        disk: String,
        /// The parser's error.
        #[source]
        source: PartError,
    },
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The image container is damaged or could not be read or written.
    #[error("image {image}, file {file} at byte {offset}: {source}")]
    Image {
        /// Image location.
        image: String,
        /// Volume file.
        file: String,
        /// Offset in that file.
        offset: u64,
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Writing the image failed (e.g. the repository filled up).
    #[error("writing image {image} failed: {source}; check free space on the repository, then save again")]
    ImageWrite {
        /// Image location.
        image: String,
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Writing the image stream (`--repo -`, standard output) failed, e.g. because the
    /// receiving side closed the pipe.
    #[error("writing the image stream failed: {source}; the receiving side holds an incomplete image, save again")]
    StreamWrite {
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Reading the source disk failed.
    #[error("reading {disk} at byte {offset}{} failed: {source}", partition.map(|p| format!(" (partition {p})")).unwrap_or_default())]
    SourceRead {
        /// Source disk.
        disk: String,
        /// Partition number, when inside one.
        partition: Option<u32>,
        /// Disk byte offset.
        offset: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A safety check refused the operation; nothing was written.
    #[error("refused, nothing was written: {0}")]
    Refused(String),
    /// The image is internally inconsistent (its parts disagree with each other or with
    /// manifest.json): damaged after it was written.
    #[error("{0}")]
    Damaged(String),
    /// The image does not fit the request (wrong number of disks, missing partition, …).
    #[error("{0}")]
    Mismatch(String),
    /// The operation was cancelled.
    #[error("cancelled{0}")]
    Cancelled(&'static str),
}

/// Result alias of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
