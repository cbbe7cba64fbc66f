//! The backend trait: a flat store of files grouped by image.

use crate::{FileKind, ImageName, Result};
use lifeboat_fs::ReadAt;
use std::io::Write;
use std::path::Path;

/// Refuses names that are not one plain file name each (empty, `.`, `..`, or holding `/` or
/// NUL): what [`Backend::open_named`] implementations check first.
pub fn plain_names(image: &str, file: &str) -> Result<()> {
    for n in [image, file] {
        if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\0']) {
            return Err(crate::RepoError::Unsupported {
                spec: n.to_string(),
                reason: "not a file name inside an image directory".into(),
            });
        }
    }
    Ok(())
}

/// A file being written to a backend. Bytes are durable only after [`BackendWrite::finish`].
pub trait BackendWrite: Write + Send {
    /// Flushes and makes the file durable (fsync, upload completion, …).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A file opened for reading: positional reads of known length.
pub trait BackendRead: ReadAt {}
impl<T: ReadAt> BackendRead for T {}

/// Where images are kept. Implementations: [`crate::LocalBackend`]; the network backends of
/// `lifeboat-remote` (SMB, NFS, SFTP, S3) implement the same trait.
///
/// Files are named by their [`FileKind`] (the backend stores each under
/// [`FileKind::name`]); listings return every name found, so that files lifeboat did not
/// write are seen and never taken for its own.
pub trait Backend: Send + Sync {
    /// Location for messages (never with credentials).
    fn location(&self) -> String;
    /// The local directory holding the repository, if it is on this machine's filesystems
    /// (used to refuse restoring onto the disk that holds the repository).
    fn local_root(&self) -> Option<&Path>;
    /// Names of the image directories (valid or not; the caller validates).
    fn list_images(&self) -> Result<Vec<String>>;
    /// Every file of an image directory (as named by [`Backend::list_images`], valid or not)
    /// with its size, whether lifeboat wrote it or not.
    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>>;
    /// Creates the image's directory; fails with `RepoError::Exists` if it exists.
    fn create_image(&self, image: &ImageName) -> Result<()>;
    /// Creates a new file (it must not exist) and returns a writer.
    fn create(&self, image: &ImageName, file: FileKind) -> Result<Box<dyn BackendWrite>>;
    /// Opens a file for positional reads.
    fn open(&self, image: &ImageName, file: FileKind) -> Result<Box<dyn BackendRead>>;
    /// Opens any file of an image directory by name for positional reads — also files
    /// lifeboat did not write, such as those of a Clonezilla image directory. `image` and
    /// `file` are names from [`Backend::list_images`] and [`Backend::list_files`]; names
    /// holding `/`, `\0` or being `.`/`..` are refused. Backends that cannot do this return
    /// [`crate::RepoError::Unsupported`].
    fn open_named(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>> {
        plain_names(image, file)?;
        Err(crate::RepoError::Unsupported {
            spec: format!("{}/{image}", self.location()),
            reason: "this kind of repository cannot open files lifeboat did not write (Clonezilla images are read from local directories, SMB and NFS repositories)".into(),
        })
    }
    /// Writes a whole small file atomically: either the old state or all of `data` is seen,
    /// never a part, also after a crash (backends that rename use [`FileKind::temp_name`]).
    fn put_atomic(&self, image: &ImageName, file: FileKind, data: &[u8]) -> Result<()>;
    /// Reads a whole small file, refusing files larger than `max` bytes.
    fn get(&self, image: &ImageName, file: FileKind, max: u64) -> Result<Vec<u8>>;
    /// Deletes one file of an image.
    fn delete_file(&self, image: &ImageName, file: FileKind) -> Result<()>;
    /// Removes an image's directory, which must be empty (never deletes anything else).
    fn remove_image_dir(&self, image: &ImageName) -> Result<()>;
}
