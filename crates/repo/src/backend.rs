//! The backend trait: a flat store of files grouped by image.

use crate::Result;
use lifeboat_fs::ReadAt;
use std::io::Write;
use std::path::Path;

/// A file being written to a backend. Bytes are durable only after [`BackendWrite::finish`].
pub trait BackendWrite: Write + Send {
    /// Flushes and makes the file durable (fsync, upload completion, …).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A file opened for reading: positional reads of known length.
pub trait BackendRead: ReadAt {}
impl<T: ReadAt> BackendRead for T {}

/// Where images are kept. Implementations: [`crate::LocalBackend`]; network backends
/// (SMB, NFS, SFTP, S3) implement the same trait.
pub trait Backend: Send + Sync {
    /// Location for messages (never with credentials).
    fn location(&self) -> String;
    /// The local directory holding the repository, if it is on this machine's filesystems
    /// (used to refuse restoring onto the disk that holds the repository).
    fn local_root(&self) -> Option<&Path>;
    /// Names of the image directories (valid or not; the caller validates).
    fn list_images(&self) -> Result<Vec<String>>;
    /// Files of an image with their sizes.
    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>>;
    /// Creates the image's directory; fails with `RepoError::Exists` if it exists.
    fn create_image(&self, image: &str) -> Result<()>;
    /// Creates a new file (it must not exist) and returns a writer.
    fn create(&self, image: &str, file: &str) -> Result<Box<dyn BackendWrite>>;
    /// Opens a file for positional reads.
    fn open(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>>;
    /// Writes a whole small file atomically: either the old state or all of `data` is seen,
    /// never a part, also after a crash.
    fn put_atomic(&self, image: &str, file: &str, data: &[u8]) -> Result<()>;
    /// Reads a whole small file, refusing files larger than `max` bytes.
    fn get(&self, image: &str, file: &str, max: u64) -> Result<Vec<u8>>;
    /// Deletes one file of an image.
    fn delete_file(&self, image: &str, file: &str) -> Result<()>;
    /// Removes an image's directory, which must be empty (never deletes anything else).
    fn remove_image_dir(&self, image: &str) -> Result<()>;
}
