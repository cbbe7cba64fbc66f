//! What every backend shares: names, volumes, the manifest-last commit, listing.

use crate::backend::{Backend, BackendRead, BackendWrite};
use crate::{ImageName, LocalBackend, RepoError, Result};
use lifeboat_container::{FileRecord, Manifest};
use lifeboat_fs::ReadAt;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Name of the manifest file, written last: its presence marks a complete image.
pub const MANIFEST_FILE: &str = "manifest.json";
const MAX_MANIFEST: u64 = 64 << 20;

/// Marker file written when an image directory is created, so that listings and
/// `delete --incomplete` only ever consider directories lifeboat made.
pub const MARKER_FILE: &str = ".lifeboat-image";

/// True for the files lifeboat writes into an image directory.
fn is_image_file(name: &str) -> bool {
    let temp_of = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp"));
    name == MANIFEST_FILE
        || name == MARKER_FILE
        || temp_of.is_some_and(|n| n == MANIFEST_FILE || n == MARKER_FILE)
        || is_volume_name(name).is_some()
}

/// Name of volume `i` of the container stream.
fn volume_name(i: usize) -> String {
    format!("data.lbi.{i:03}")
}

fn is_volume_name(s: &str) -> Option<usize> {
    let n = s.strip_prefix("data.lbi.")?;
    if n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()) {
        n.parse().ok()
    } else {
        None
    }
}

/// A repository of images.
pub struct Repository {
    backend: Arc<dyn Backend>,
}

/// State of an image in a listing.
#[derive(Debug)]
pub enum ImageStatus {
    /// The manifest is present and the files match it.
    Complete(Box<Manifest>),
    /// No manifest, or files do not match: the save did not finish or files were damaged.
    Incomplete(String),
}

/// One image in a listing.
#[derive(Debug)]
pub struct ImageEntry {
    /// Directory name.
    pub name: String,
    /// Sum of its file sizes.
    pub bytes: u64,
    /// Whether it is complete.
    pub status: ImageStatus,
}

impl ImageEntry {
    /// True when the image is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self.status, ImageStatus::Complete(_))
    }
}

impl Repository {
    /// Opens a repository from what the operator typed after `--repo`: a local directory or a
    /// network address (see [`crate::remote`]), with nobody to answer prompts.
    pub fn open(spec: &str) -> Result<Self> {
        Self::open_with(spec, &crate::remote::NoInteraction)
    }

    /// Like [`Repository::open`], asking the operator through `ui` for what a network backend
    /// needs (passwords, unknown host keys). `-` (a single stream on stdin/stdout) is not a
    /// repository: the engine's stream functions handle it.
    pub fn open_with(spec: &str, ui: &dyn crate::remote::Interaction) -> Result<Self> {
        if let Some(remote) = crate::remote::RemoteSpec::parse(spec)? {
            return Ok(Self::with_backend(crate::remote::open_backend(
                &remote, ui,
            )?));
        }
        if spec == "-" {
            return Err(RepoError::Unsupported {
                spec: spec.to_string(),
                reason: "`-` is a single image stream on stdin/stdout, not a repository; only savedisk, saveparts, restoredisk and restoreparts accept it".into(),
            });
        }
        Ok(Self::with_backend(Box::new(LocalBackend::open(spec)?)))
    }

    /// A repository over any backend.
    pub fn with_backend(backend: Box<dyn Backend>) -> Self {
        Repository {
            backend: Arc::from(backend),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Location for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// All images, complete or not, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageEntry>> {
        let mut out = Vec::new();
        for name in self.backend.list_images()? {
            let files = self.backend.list_files(&name)?;
            if !files.iter().any(|(f, _)| is_image_file(f)) {
                continue;
            }
            let bytes = files.iter().map(|f| f.1).sum();
            let status = match ImageName::new(&name) {
                Err(e) => ImageStatus::Incomplete(e.to_string()),
                Ok(n) => match self.read_manifest(&n) {
                    Ok(m) => match check_files(&m, &files) {
                        Ok(()) => ImageStatus::Complete(Box::new(m)),
                        Err(reason) => ImageStatus::Incomplete(reason),
                    },
                    Err(RepoError::Incomplete { reason, .. }) => ImageStatus::Incomplete(reason),
                    Err(e) => ImageStatus::Incomplete(e.to_string()),
                },
            };
            out.push(ImageEntry {
                name,
                bytes,
                status,
            });
        }
        Ok(out)
    }

    /// Reads and validates an image's `manifest.json`.
    pub fn read_manifest(&self, name: &ImageName) -> Result<Manifest> {
        let files = match self.backend.list_files(name.as_str()) {
            Ok(f) => f,
            Err(_) => {
                return Err(RepoError::NotFound {
                    name: name.to_string(),
                    repo: self.location(),
                })
            }
        };
        if !files.iter().any(|f| f.0 == MANIFEST_FILE) {
            return Err(self.incomplete(
                name,
                "it has no manifest.json: the save did not finish (lifeboat delete --incomplete removes such leftovers)",
            ));
        }
        let b = self
            .backend
            .get(name.as_str(), MANIFEST_FILE, MAX_MANIFEST)?;
        let m = Manifest::from_json(&b, 0)
            .map_err(|e| self.incomplete(name, &format!("manifest.json: {e}")))?;
        if m.image != name.as_str() {
            return Err(self.incomplete(name, &format!("manifest.json names image {:?}", m.image)));
        }
        Ok(m)
    }

    fn incomplete(&self, name: &ImageName, reason: &str) -> RepoError {
        RepoError::Incomplete {
            name: name.to_string(),
            repo: self.location(),
            reason: reason.to_string(),
        }
    }

    /// Starts a new image. `split_size` limits each volume file (e.g. 4000 MiB for FAT32).
    pub fn create_image(&self, name: &ImageName, split_size: Option<u64>) -> Result<ImageSink> {
        if let Some(s) = split_size {
            if s < 1 << 20 {
                return Err(RepoError::Unsupported {
                    spec: self.location(),
                    reason: format!("split size {s} is below the minimum of 1 MiB"),
                });
            }
        }
        self.backend.create_image(name.as_str())?;
        self.backend
            .put_atomic(name.as_str(), MARKER_FILE, b"lifeboat image\n")?;
        Ok(ImageSink {
            backend: Arc::clone(&self.backend),
            name: name.clone(),
            split: split_size.unwrap_or(u64::MAX),
            current: None,
            done: Vec::new(),
        })
    }

    /// Opens a complete image for reading: its manifest, and its volumes as one stream.
    pub fn open_image(&self, name: &ImageName) -> Result<ImageSource> {
        let manifest = self.read_manifest(name)?;
        let files = self.backend.list_files(name.as_str())?;
        check_files(&manifest, &files).map_err(|r| self.incomplete(name, &r))?;
        let mut volumes = Vec::new();
        let mut start = 0u64;
        for f in &manifest.files {
            let r = self.backend.open(name.as_str(), &f.name)?;
            volumes.push(Volume {
                name: f.name.clone(),
                start,
                len: f.size,
                reader: r,
            });
            start += f.size;
        }
        Ok(ImageSource {
            manifest,
            volumes,
            len: start,
            location: format!("{}/{}", self.location(), name),
        })
    }

    /// Deletes an image: its volumes, manifest and marker, then its directory. A directory
    /// holding anything else is left alone with an error.
    pub fn delete(&self, name: &ImageName) -> Result<()> {
        let files = match self.backend.list_files(name.as_str()) {
            Ok(f) if f.iter().any(|(f, _)| is_image_file(f)) => f,
            _ => {
                return Err(RepoError::NotFound {
                    name: name.to_string(),
                    repo: self.location(),
                })
            }
        };
        if let Some((other, _)) = files.iter().find(|(f, _)| !is_image_file(f)) {
            return Err(self.incomplete(
                name,
                &format!("it holds {other:?}, which lifeboat did not write; delete it by hand"),
            ));
        }
        // The manifest goes first: from then on the image is incomplete, never half-valid.
        let mut order: Vec<&String> = files.iter().map(|(f, _)| f).collect();
        order.sort_by_key(|f| (f.as_str() != MANIFEST_FILE, f.as_str() == MARKER_FILE));
        for f in order {
            self.backend.delete_file(name.as_str(), f)?;
        }
        self.backend.remove_image_dir(name.as_str())
    }

    /// Deletes every incomplete image (leftovers of saves that did not finish) and returns
    /// their names.
    pub fn delete_incomplete(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for e in self.list()? {
            if !e.is_complete() {
                self.delete(
                    &ImageName::new(&e.name).map_err(|_| RepoError::InvalidName {
                        name: e.name.clone(),
                        reason: "not a lifeboat image name; delete it by hand".into(),
                    })?,
                )?;
                gone.push(e.name);
            }
        }
        Ok(gone)
    }
}

/// Compares the files of an image with its manifest's file list.
fn check_files(m: &Manifest, files: &[(String, u64)]) -> std::result::Result<(), String> {
    if m.files.is_empty() {
        return Err("manifest.json lists no data files".into());
    }
    for (i, f) in m.files.iter().enumerate() {
        if f.name != volume_name(i) {
            return Err(format!("manifest.json lists unexpected file {:?}", f.name));
        }
        match files.iter().find(|x| x.0 == f.name) {
            None => return Err(format!("volume {} is missing", f.name)),
            Some((_, size)) if *size != f.size => {
                return Err(format!(
                    "volume {} has {size} bytes, the manifest says {} (truncated or damaged)",
                    f.name, f.size
                ))
            }
            _ => {}
        }
    }
    if let Some((extra, _)) = files
        .iter()
        .find(|x| is_volume_name(&x.0).is_some_and(|i| i >= m.files.len()))
    {
        return Err(format!("volume {extra} is not in the manifest"));
    }
    Ok(())
}

struct OpenVolume {
    name: String,
    w: Box<dyn BackendWrite>,
    len: u64,
    crc: crc32fast::Hasher,
}

/// A new image being written: `Write` the container stream into it, then [`ImageSink::commit`].
/// Dropping it without committing leaves an incomplete image.
pub struct ImageSink {
    backend: Arc<dyn Backend>,
    name: ImageName,
    split: u64,
    current: Option<OpenVolume>,
    done: Vec<FileRecord>,
}

impl ImageSink {
    fn close_current(&mut self) -> Result<()> {
        if let Some(v) = self.current.take() {
            v.w.finish()?;
            self.done.push(FileRecord {
                name: v.name,
                size: v.len,
                crc32: format!("{:08x}", v.crc.finalize()),
            });
        }
        Ok(())
    }

    /// Finishes the last volume and writes `manifest.json` (with the file list filled in)
    /// atomically, as the very last step. Returns the manifest as written.
    pub fn commit(mut self, manifest: &Manifest) -> Result<Manifest> {
        if self.current.is_none() && self.done.is_empty() {
            self.open_next().map_err(|e| RepoError::Io {
                path: self.name.to_string(),
                source: e,
            })?;
        }
        self.close_current()?;
        let mut m = manifest.clone();
        m.files = std::mem::take(&mut self.done);
        self.backend
            .put_atomic(self.name.as_str(), MANIFEST_FILE, &m.to_json())?;
        Ok(m)
    }

    /// The image name.
    pub fn name(&self) -> &ImageName {
        &self.name
    }

    fn open_next(&mut self) -> io::Result<()> {
        let name = volume_name(self.done.len());
        let w = self
            .backend
            .create(self.name.as_str(), &name)
            .map_err(io::Error::other)?;
        self.current = Some(OpenVolume {
            name,
            w,
            len: 0,
            crc: crc32fast::Hasher::new(),
        });
        Ok(())
    }
}

impl Write for ImageSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_some_and(|v| v.len >= self.split) {
            self.close_current().map_err(io::Error::other)?;
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let v = self.current.as_mut().expect("a volume is open");
        let room = (self.split - v.len).min(buf.len() as u64) as usize;
        let n = v.w.write(&buf[..room])?;
        v.crc.update(&buf[..n]);
        v.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(v) => v.w.flush(),
            None => Ok(()),
        }
    }
}

struct Volume {
    name: String,
    start: u64,
    len: u64,
    reader: Box<dyn BackendRead>,
}

/// A complete image opened for reading: the manifest, and the volumes as one logical stream
/// (random access through [`ReadAt`], sequential through [`ImageSource::reader`]).
pub struct ImageSource {
    manifest: Manifest,
    volumes: Vec<Volume>,
    len: u64,
    location: String,
}

impl ImageSource {
    /// The manifest from `manifest.json`.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the image is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Which volume file holds container byte `pos`, and where in it.
    pub fn locate(&self, pos: u64) -> (String, u64) {
        for v in &self.volumes {
            if pos < v.start + v.len {
                return (v.name.clone(), pos.saturating_sub(v.start));
            }
        }
        match self.volumes.last() {
            Some(v) => (v.name.clone(), pos.saturating_sub(v.start)),
            None => (String::new(), pos),
        }
    }

    /// A sequential reader over the whole container stream (1 MiB reads).
    pub fn reader(&self) -> SourceReader<'_> {
        SourceReader {
            src: self,
            pos: 0,
            buf: Vec::new(),
            at: 0,
        }
    }

    /// Checks each volume's CRC32 against the manifest; returns the first mismatching volume.
    pub fn verify_files(&self) -> Result<(), String> {
        let mut buf = vec![0u8; 1 << 20];
        for (v, f) in self.volumes.iter().zip(&self.manifest.files) {
            let mut h = crc32fast::Hasher::new();
            let mut off = 0u64;
            while off < v.len {
                let n = (v.len - off).min(buf.len() as u64) as usize;
                v.reader
                    .read_exact_at(&mut buf[..n], off)
                    .map_err(|e| format!("{}: read error at byte {off}: {e}", v.name))?;
                h.update(&buf[..n]);
                off += n as u64;
            }
            let got = format!("{:08x}", h.finalize());
            if got != f.crc32 {
                return Err(format!(
                    "{}: CRC32 is {got}, the manifest says {}",
                    v.name, f.crc32
                ));
            }
        }
        Ok(())
    }
}

impl ReadAt for ImageSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let v = self
                .volumes
                .iter()
                .find(|v| pos >= v.start && pos < v.start + v.len)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("byte {pos} is past the image end"),
                    )
                })?;
            let n = ((v.start + v.len - pos) as usize).min(buf.len() - done);
            v.reader
                .read_exact_at(&mut buf[done..done + n], pos - v.start)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", v.name)))?;
            done += n;
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Sequential reader returned by [`ImageSource::reader`].
pub struct SourceReader<'a> {
    src: &'a ImageSource,
    pos: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.buf.len() {
            let n = (self.src.len - self.pos).min(1 << 20) as usize;
            if n == 0 {
                return Ok(0);
            }
            self.buf.resize(n, 0);
            self.src.read_exact_at(&mut self.buf, self.pos)?;
            self.pos += n as u64;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
