//! The local directory backend: `<root>/<image>/<file>`.

use crate::backend::{Backend, BackendRead, BackendWrite};
use crate::{FileKind, ImageName, RepoError, Result};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Images hold whole disks (password hashes, keys): their directories are the owner's only,
/// whatever the umask.
const DIR_MODE: u32 = 0o700;
/// … and so are their files.
const FILE_MODE: u32 = 0o600;

/// Opens a new file that must not exist, readable and writable by the owner only.
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// A repository in a local directory (a USB disk, a mounted share, …).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

fn io_err(path: &Path, source: io::Error) -> RepoError {
    RepoError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LocalBackend {
    /// Opens the repository at `root`, which must be an existing directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let md = fs::metadata(&root).map_err(|e| {
            io_err(
                &root,
                io::Error::new(
                    e.kind(),
                    format!("{e}; the repository directory must exist (create it, or mount the disk that holds it)"),
                ),
            )
        })?;
        if !md.is_dir() {
            return Err(io_err(
                &root,
                io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
            ));
        }
        let root = root.canonicalize().map_err(|e| io_err(&root, e))?;
        Ok(LocalBackend { root })
    }

    fn dir(&self, image: &str) -> PathBuf {
        self.root.join(image)
    }

    fn path(&self, image: &ImageName, file: FileKind) -> PathBuf {
        self.root.join(image.as_str()).join(file.name())
    }
}

struct LocalWriter {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl BackendWrite for LocalWriter {
    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path;
        let f = self
            .w
            .into_inner()
            .map_err(|e| io_err(&path, e.into_error()))?;
        f.sync_all().map_err(|e| io_err(&path, e))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn list_images(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(|e| io_err(&self.root, e))? {
            let e = e.map_err(|e| io_err(&self.root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>> {
        let dir = self.dir(image);
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let e = e.map_err(|e| io_err(&dir, e))?;
            // Every entry is listed (directories and links with size 0), so that a directory
            // holding anything lifeboat did not write is never taken for one of its images.
            let md = fs::symlink_metadata(e.path()).map_err(|err| io_err(&e.path(), err))?;
            let size = if md.is_file() { md.len() } else { 0 };
            out.push((e.file_name().to_string_lossy().into_owned(), size));
        }
        out.sort();
        Ok(out)
    }

    fn create_image(&self, image: &ImageName) -> Result<()> {
        let dir = self.dir(image.as_str());
        match DirBuilder::new().mode(DIR_MODE).create(&dir) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(RepoError::Exists {
                name: image.to_string(),
                repo: self.location(),
            }),
            Err(e) => Err(io_err(&dir, e)),
        }
    }

    fn create(&self, image: &ImageName, file: FileKind) -> Result<Box<dyn BackendWrite>> {
        let path = self.path(image, file);
        let f = create_private(&path).map_err(|e| io_err(&path, e))?;
        Ok(Box::new(LocalWriter {
            w: BufWriter::with_capacity(1 << 20, f),
            path,
        }))
    }

    fn open_named(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>> {
        crate::plain_names(image, file)?;
        let path = self.dir(image).join(file);
        let f = File::open(&path).map_err(|e| io_err(&path, e))?;
        let md = f.metadata().map_err(|e| io_err(&path, e))?;
        if !md.is_file() {
            return Err(io_err(
                &path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        Ok(Box::new((f, md.len())))
    }

    fn open(&self, image: &ImageName, file: FileKind) -> Result<Box<dyn BackendRead>> {
        let path = self.path(image, file);
        let f = File::open(&path).map_err(|e| io_err(&path, e))?;
        let len = f.metadata().map_err(|e| io_err(&path, e))?.len();
        Ok(Box::new((f, len)))
    }

    fn put_atomic(&self, image: &ImageName, file: FileKind, data: &[u8]) -> Result<()> {
        let dir = self.dir(image.as_str());
        let tmp = dir.join(file.temp_name());
        let path = dir.join(file.name());
        // A temporary file left by an earlier crash is replaced.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&tmp, e)),
            _ => {}
        }
        let mut f = create_private(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(data).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        sync_dir(&dir)
    }

    fn get(&self, image: &ImageName, file: FileKind, max: u64) -> Result<Vec<u8>> {
        let path = self.path(image, file);
        let f = File::open(&path).map_err(|e| io_err(&path, e))?;
        let mut v = Vec::new();
        f.take(max + 1)
            .read_to_end(&mut v)
            .map_err(|e| io_err(&path, e))?;
        if v.len() as u64 > max {
            return Err(io_err(
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {max} bytes"),
                ),
            ));
        }
        Ok(v)
    }

    fn delete_file(&self, image: &ImageName, file: FileKind) -> Result<()> {
        let path = self.path(image, file);
        fs::remove_file(&path).map_err(|e| io_err(&path, e))
    }

    fn remove_image_dir(&self, image: &ImageName) -> Result<()> {
        let dir = self.dir(image.as_str());
        fs::remove_dir(&dir).map_err(|e| io_err(&dir, e))?;
        sync_dir(&self.root)
    }
}
