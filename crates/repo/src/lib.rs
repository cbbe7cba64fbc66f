//! Image repositories of lifeboat.
//!
//! One job: keep named images somewhere and say which of them are complete. A repository is a
//! [`Backend`] (a flat store of files grouped by image: the local directory backend here;
//! the network backends of `lifeboat-remote` plug in behind the same trait) wrapped by [`Repository`], which adds what
//! every backend shares: validated [`ImageName`]s, splitting the container stream into volumes
//! (`data.lbi.000`, `data.lbi.001`, …; `--split-size`), per-volume CRC32s, and the commit rule:
//! `manifest.json` is written last and atomically, so an image without it is incomplete.
//!
//! ```
//! use lifeboat_repo::{Repository, ImageName};
//! use std::io::Write;
//! let dir = tempfile::tempdir().unwrap();
//! let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
//! let name = ImageName::new("web01-2026-11-25").unwrap();
//! let mut sink = repo.create_image(&name, None).unwrap();
//! sink.write_all(b"container bytes").unwrap();
//! assert!(!repo.list().unwrap()[0].is_complete());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod file;
mod lease;
mod local;
mod name;
mod repository;

pub use backend::{plain_names, Backend, BackendRead, BackendWrite};
pub use file::{FileKind, LEASE_FILE, MANIFEST_FILE, MARKER_FILE};
pub use lease::{Lease, LeaseParseError, HEARTBEAT, LEASE_TTL};
pub use local::LocalBackend;
pub use name::ImageName;
pub use repository::{
    Cleanup, ImageEntry, ImageSink, ImageSource, ImageStatus, Repository, SourceReader,
};

use std::fmt;
use std::io;

/// What kind of failure a [`RepoError`] is, for exit codes and for callers that decide what
/// to do next without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The operator gave an invalid image name.
    Usage,
    /// Refused to protect data (deleting a directory that holds files lifeboat did not write).
    Refused,
    /// An image is incomplete or damaged.
    Damaged,
    /// Anything else: I/O errors, a missing or existing image, a split size below the
    /// minimum, an address that cannot be used.
    Failed,
}

/// Why an image is not a complete image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncompleteReason {
    /// It has no `manifest.json`: the save did not finish (`delete --incomplete` removes such
    /// leftovers).
    Unfinished,
    /// Its manifest or files are wrong: what is wrong.
    Damaged(String),
}

impl fmt::Display for IncompleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncompleteReason::Unfinished => {
                f.write_str("it has no manifest.json: the save did not finish")
            }
            IncompleteReason::Damaged(why) => f.write_str(why),
        }
    }
}

/// Errors of a repository. The messages say what and where; what to do about it (which
/// command to run) is the caller's to add, in the operator's language.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// An I/O error on a named file.
    #[error("{path}")]
    Io {
        /// The file or directory, as the operator would name it.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The image name is not allowed.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// An image of that name exists already.
    #[error("image {name:?} already exists in {repo}")]
    Exists {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
    },
    /// No image of that name.
    #[error("no image {name:?} in {repo}")]
    NotFound {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
    },
    /// The image exists but is not complete or its files do not match the manifest.
    #[error("image {name:?} in {repo} is incomplete or damaged: {reason}")]
    Incomplete {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
        /// What is missing or wrong.
        reason: IncompleteReason,
    },
    /// An image directory holds a file lifeboat did not write; nothing was deleted.
    #[error("image {name:?} in {repo} holds {file:?}, which lifeboat did not write; nothing was deleted")]
    Foreign {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
        /// The foreign file.
        file: String,
    },
    /// The volume size limit (`--split-size`) is below the minimum.
    #[error("split size {bytes} is below the minimum of {min} bytes (1 MiB)")]
    SplitSize {
        /// The size asked for, in bytes.
        bytes: u64,
        /// The smallest allowed size, in bytes.
        min: u64,
    },
    /// A network scheme whose backend was not built into this program.
    #[error("repository {spec:?}: {scheme}:// repositories are not built into this binary (cargo feature `{feature}`)")]
    NotBuiltIn {
        /// What the operator gave (without any password).
        spec: String,
        /// The scheme, e.g. `smb`.
        scheme: &'static str,
        /// The cargo feature that builds it in.
        feature: &'static str,
    },
    /// The repository address is not understood or not supported.
    #[error("repository {spec:?}: {reason}")]
    Unsupported {
        /// What the operator gave.
        spec: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A save is writing the image (its lease is live); nothing was deleted.
    #[error("image {name:?} in {repo} is being written by a save ({lease}); nothing was deleted")]
    Leased {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
        /// The live lease.
        lease: Box<Lease>,
    },
    /// The files of an image changed under the save writing it (deleted, replaced, or the
    /// lease taken by another save): the image was not committed.
    #[error("the files of image {name:?} in {repo} changed during the save ({what}); the image was not committed")]
    Changed {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
        /// What changed.
        what: String,
    },
    /// The manifest could not be read.
    #[error(transparent)]
    Container(#[from] lifeboat_container::ContainerError),
}

impl RepoError {
    /// The kind of failure (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            RepoError::InvalidName { .. } => ErrorClass::Usage,
            RepoError::Foreign { .. } | RepoError::Leased { .. } => ErrorClass::Refused,
            RepoError::Incomplete { .. } => ErrorClass::Damaged,
            RepoError::Container(
                lifeboat_container::ContainerError::WrongPassphrase
                | lifeboat_container::ContainerError::Encrypted,
            ) => ErrorClass::Refused,
            RepoError::Container(lifeboat_container::ContainerError::Tampered { .. }) => {
                ErrorClass::Damaged
            }
            RepoError::Io { .. }
            | RepoError::Exists { .. }
            | RepoError::NotFound { .. }
            | RepoError::SplitSize { .. }
            | RepoError::NotBuiltIn { .. }
            | RepoError::Unsupported { .. }
            | RepoError::Changed { .. }
            | RepoError::Container(_) => ErrorClass::Failed,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;
