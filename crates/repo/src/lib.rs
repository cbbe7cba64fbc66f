//! Image repositories of lifeboat.
//!
//! One job: keep named images somewhere and say which of them are complete. A repository is a
//! [`Backend`] (a flat store of files grouped by image: the local directory backend here;
//! network backends plug in behind the same trait) wrapped by [`Repository`], which adds what
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
mod local;
mod name;
pub mod remote;
mod repository;

pub use backend::{Backend, BackendRead, BackendWrite};
pub use local::LocalBackend;
pub use name::ImageName;
pub use repository::{
    ImageEntry, ImageSink, ImageSource, ImageStatus, Repository, SourceReader, MANIFEST_FILE,
    MARKER_FILE,
};

use std::io;

/// Errors of a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
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
    #[error("image {name:?} already exists in {repo}; choose another name or delete it first")]
    Exists {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
    },
    /// No image of that name.
    #[error("no image {name:?} in {repo} (lifeboat list --repo {repo} shows what is there)")]
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
        reason: String,
    },
    /// An image directory holds a file lifeboat did not write; nothing was deleted.
    #[error("image {name:?} in {repo} holds {file:?}, which lifeboat did not write; nothing was deleted (remove it by hand if it is yours to remove)")]
    Foreign {
        /// Image name.
        name: String,
        /// Repository location.
        repo: String,
        /// The foreign file.
        file: String,
    },
    /// The repository address is not understood or not supported.
    #[error("repository {spec:?}: {reason}")]
    Unsupported {
        /// What the operator gave.
        spec: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The manifest could not be read.
    #[error(transparent)]
    Container(#[from] lifeboat_container::ContainerError),
}

/// Result alias of this crate.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;
