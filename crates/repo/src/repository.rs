//! What every backend shares: names, volumes, the manifest-last commit, listing.

use crate::backend::{Backend, BackendRead, BackendWrite};
use crate::lease::{Lease, HEARTBEAT, MAX_LEASE};
use crate::{FileKind, ImageName, IncompleteReason, LocalBackend, RepoError, Result};
use lifeboat_container::seal::{Keys, OpenAt, SealHeader, SEAL_HEADER_LEN};
use lifeboat_container::{chain_text, FileRecord, Manifest};
use lifeboat_fs::ReadAt;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;

const MAX_MANIFEST: u64 = 64 << 20;

/// True for the files lifeboat writes into an image directory.
fn is_image_file(name: &str) -> bool {
    FileKind::parse(name).is_some()
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
    /// The lease of a save still writing it (a live lease; see [`Lease::is_live`]).
    pub lease: Option<Lease>,
}

impl ImageEntry {
    /// True when the image is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self.status, ImageStatus::Complete(_))
    }
}

impl Repository {
    /// Opens the repository in the local directory `dir`, which must exist. Network
    /// addresses (and the choice between a directory and an address) are `lifeboat-remote`'s.
    pub fn open(dir: &str) -> Result<Self> {
        Ok(Self::with_backend(Box::new(LocalBackend::open(dir)?)))
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

    /// A shared handle on the backend, for readers that outlive a borrow of the repository.
    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
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
                    Err(RepoError::Incomplete { reason, .. }) => {
                        ImageStatus::Incomplete(reason.to_string())
                    }
                    Err(e) => ImageStatus::Incomplete(chain_text(&e)),
                },
            };
            let lease = match (&status, ImageName::new(&name)) {
                (ImageStatus::Incomplete(_), Ok(n)) => self.live_lease(&n, &files),
                _ => None,
            };
            out.push(ImageEntry {
                name,
                bytes,
                status,
                lease,
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
        if !files
            .iter()
            .any(|f| FileKind::parse(&f.0) == Some(FileKind::Manifest))
        {
            return Err(self.incomplete(name, IncompleteReason::Unfinished));
        }
        let b = self.backend.get(name, FileKind::Manifest, MAX_MANIFEST)?;
        let m = Manifest::from_json(&b, 0)
            .map_err(|e| self.damaged(name, format!("manifest.json: {}", chain_text(&e))))?;
        if m.image != name.as_str() {
            return Err(self.damaged(name, format!("manifest.json names image {:?}", m.image)));
        }
        Ok(m)
    }

    /// The live lease of an image whose files are `files`, if it has one. A lease that cannot
    /// be read or parsed is no lease: it cannot keep an image from being deleted forever.
    fn live_lease(&self, name: &ImageName, files: &[(String, u64)]) -> Option<Lease> {
        if !files
            .iter()
            .any(|(f, _)| FileKind::parse(f) == Some(FileKind::Lease))
        {
            return None;
        }
        let bytes = self.backend.get(name, FileKind::Lease, MAX_LEASE).ok()?;
        Lease::parse(&bytes).ok().filter(Lease::is_live)
    }

    fn incomplete(&self, name: &ImageName, reason: IncompleteReason) -> RepoError {
        RepoError::Incomplete {
            name: name.to_string(),
            repo: self.location(),
            reason,
        }
    }

    fn damaged(&self, name: &ImageName, why: String) -> RepoError {
        self.incomplete(name, IncompleteReason::Damaged(why))
    }

    /// Starts a new image. `split_size` limits each volume file (e.g. 4000 MiB for FAT32).
    pub fn create_image(&self, name: &ImageName, split_size: Option<u64>) -> Result<ImageSink> {
        if let Some(s) = split_size {
            if s < 1 << 20 {
                return Err(RepoError::SplitSize {
                    bytes: s,
                    min: 1 << 20,
                });
            }
        }
        self.backend.create_image(name)?;
        let lease = self.claim(name)?;
        self.backend
            .put_atomic(name, FileKind::Marker, b"lifeboat image\n")?;
        let heartbeat = Heartbeat::start(Arc::clone(&self.backend), name.clone(), lease.clone());
        Ok(ImageSink {
            backend: Arc::clone(&self.backend),
            name: name.clone(),
            split: split_size.unwrap_or(u64::MAX),
            current: None,
            done: Vec::new(),
            lease,
            heartbeat: Some(heartbeat),
            committed: false,
        })
    }

    /// Creates the image's lease exclusively: of two saves to one name, only one creates it
    /// (on backends without directories, S3, this is what keeps them apart).
    fn claim(&self, name: &ImageName) -> Result<Lease> {
        let lease = Lease::new_for_this_process();
        let exists = || RepoError::Exists {
            name: name.to_string(),
            repo: self.location(),
        };
        let written = self
            .backend
            .create(name, FileKind::Lease)
            .and_then(|mut w| {
                w.write_all(&lease.to_bytes())
                    .map_err(|source| RepoError::Io {
                        path: format!("{}/{}/{}", self.location(), name, FileKind::Lease),
                        source,
                    })?;
                w.finish()
            });
        match written {
            Ok(()) => {}
            // A retried create may have found the lease its own lost first attempt wrote:
            // the read-back below tells.
            Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Read back: the lease must be ours (a backend that let two creates through shows it).
        let back = self.backend.get(name, FileKind::Lease, MAX_LEASE)?;
        match Lease::parse(&back) {
            Ok(l) if l.token == lease.token => Ok(lease),
            _ => Err(exists()),
        }
    }

    /// Opens a complete image for reading: its manifest, and its volumes as one stream.
    pub fn open_image(&self, name: &ImageName) -> Result<ImageSource> {
        let manifest = self.read_manifest(name)?;
        let files = self.backend.list_files(name.as_str())?;
        check_files(&manifest, &files).map_err(|r| self.damaged(name, r))?;
        let mut volumes = Vec::new();
        let mut start = 0u64;
        for (i, f) in manifest.files.iter().enumerate() {
            // check_files made sure the manifest lists volumes 0, 1, … in order.
            let r = self.backend.open(name, FileKind::Volume(i))?;
            volumes.push(Volume {
                name: f.name.clone(),
                start,
                len: f.size,
                reader: r,
            });
            start += f.size;
        }
        Ok(ImageSource {
            encrypted: manifest.is_sealed(),
            manifest,
            volumes: Arc::new(Volumes {
                list: volumes,
                len: start,
                tap: std::sync::Mutex::new(None),
            }),
            open: None,
            location: format!("{}/{}", self.location(), name),
        })
    }

    /// Deletes an image: its volumes, manifest, lease and marker, then its directory. A
    /// directory holding anything else is left alone with an error, and so is an image that a
    /// save is writing (its lease is live: [`RepoError::Leased`]).
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
            return Err(RepoError::Foreign {
                name: name.to_string(),
                repo: self.location(),
                file: other.clone(),
            });
        }
        if let Some(lease) = self.live_lease(name, &files) {
            return Err(RepoError::Leased {
                name: name.to_string(),
                repo: self.location(),
                lease: Box::new(lease),
            });
        }
        // The manifest goes first: from then on the image is incomplete, never half-valid.
        // The lease and the marker go last, so that what is left of an interrupted delete is
        // still listed and can be deleted again.
        let mut order: Vec<FileKind> = files
            .iter()
            .filter_map(|(f, _)| FileKind::parse(f))
            .collect();
        order.sort_by_key(|&k| {
            (
                k != FileKind::Manifest,
                matches!(k, FileKind::Lease | FileKind::LeaseTemp),
                k == FileKind::Marker,
            )
        });
        for k in order {
            self.backend.delete_file(name, k)?;
        }
        self.backend.remove_image_dir(name)
    }

    /// Deletes every incomplete image (leftovers of saves that did not finish), except those
    /// that a save is still writing (their lease is live).
    pub fn delete_incomplete(&self) -> Result<Cleanup> {
        let mut out = Cleanup::default();
        for e in self.list()? {
            if e.is_complete() {
                continue;
            }
            if let Some(lease) = e.lease {
                out.busy.push((e.name, lease));
                continue;
            }
            let name = ImageName::new(&e.name).map_err(|_| RepoError::InvalidName {
                name: e.name.clone(),
                reason: "not a lifeboat image name; delete it by hand".into(),
            })?;
            match self.delete(&name) {
                Ok(()) => out.deleted.push(e.name),
                // The save started writing it after the listing.
                Err(RepoError::Leased { lease, .. }) => out.busy.push((e.name, *lease)),
                Err(err) => return Err(err),
            }
        }
        Ok(out)
    }
}

/// What [`Repository::delete_incomplete`] did.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Images deleted.
    pub deleted: Vec<String>,
    /// Incomplete images left alone because a save is writing them, with its lease.
    pub busy: Vec<(String, Lease)>,
}

/// The thread that renews a save's lease every [`HEARTBEAT`], and notices when the lease is
/// no longer the save's own (deleted, or replaced by another save).
struct Heartbeat {
    stop: mpsc::Sender<Stop>,
    thread: JoinHandle<Option<String>>,
}

/// How long a failing save waits for its lease to be given up.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a heartbeat ends.
enum Stop {
    /// The save is about to commit: stop renewing.
    Commit,
    /// The save failed or was cancelled: give the lease up (delete it if it is still ours),
    /// on the heartbeat's own thread, so that a dead server does not hold the failing save.
    Abandon,
}

impl Heartbeat {
    fn start(backend: Arc<dyn Backend>, name: ImageName, lease: Lease) -> Heartbeat {
        let (stop, rx) = mpsc::channel::<Stop>();
        let thread = std::thread::Builder::new()
            .name("lifeboat-lease".into())
            .spawn(move || loop {
                match rx.recv_timeout(HEARTBEAT) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(Stop::Abandon) => {
                        let ours = backend
                            .get(&name, FileKind::Lease, MAX_LEASE)
                            .ok()
                            .and_then(|b| Lease::parse(&b).ok())
                            .is_some_and(|l| l.token == lease.token);
                        if ours {
                            let _ = backend.delete_file(&name, FileKind::Lease);
                        }
                        return None;
                    }
                    Ok(Stop::Commit) | Err(RecvTimeoutError::Disconnected) => return None,
                }
                match backend.get(&name, FileKind::Lease, MAX_LEASE) {
                    Ok(b) => match Lease::parse(&b) {
                        Ok(l) if l.token == lease.token => {
                            // A failed renewal is retried at the next beat; the check before
                            // the commit is what decides.
                            let _ = backend.put_atomic(
                                &name,
                                FileKind::Lease,
                                &lease.renewed().to_bytes(),
                            );
                        }
                        Ok(l) => return Some(format!("another save took the lease ({l})")),
                        Err(e) => return Some(format!("the lease was overwritten ({e})")),
                    },
                    Err(RepoError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        return Some("the lease was deleted".into())
                    }
                    // Network trouble: try again at the next beat.
                    Err(_) => {}
                }
            })
            .expect("spawning the lease thread");
        Heartbeat { stop, thread }
    }

    /// Stops the thread; `Some(what)` when it found the lease was no longer ours.
    fn stop(self) -> Option<String> {
        let _ = self.stop.send(Stop::Commit);
        self.thread.join().unwrap_or(None)
    }

    /// Tells the thread to give the lease up and waits a few seconds at most: a save that
    /// fails because its server died is not held by it (if the process then ends first, the
    /// lease stays behind and is stale as soon as the process is gone).
    fn abandon(self) {
        let _ = self.stop.send(Stop::Abandon);
        let until = std::time::Instant::now() + ABANDON_WAIT;
        while !self.thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Compares the files of an image with its manifest's file list.
fn check_files(m: &Manifest, files: &[(String, u64)]) -> std::result::Result<(), String> {
    if m.files.is_empty() {
        return Err("manifest.json lists no data files".into());
    }
    for (i, f) in m.files.iter().enumerate() {
        if FileKind::parse(&f.name) != Some(FileKind::Volume(i)) {
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
        .find(|x| matches!(FileKind::parse(&x.0), Some(FileKind::Volume(i)) if i >= m.files.len()))
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
/// Dropping it without committing leaves an incomplete image (and gives up its lease, so that
/// `delete --incomplete` may remove it).
pub struct ImageSink {
    backend: Arc<dyn Backend>,
    name: ImageName,
    split: u64,
    current: Option<OpenVolume>,
    done: Vec<FileRecord>,
    lease: Lease,
    heartbeat: Option<Heartbeat>,
    committed: bool,
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
        self.verify_unchanged()?;
        let mut m = manifest.clone();
        m.files = std::mem::take(&mut self.done);
        self.backend
            .put_atomic(&self.name, FileKind::Manifest, &m.to_json())?;
        self.committed = true;
        // The image is complete now; a lease left behind by a failed delete is stale at once
        // (its process ends) and never keeps a complete image from being listed.
        let _ = self.backend.delete_file(&self.name, FileKind::Lease);
        Ok(m)
    }

    /// Before the commit: the lease is still this save's, and every volume it wrote is there
    /// with the size it wrote (nothing deleted, replaced or added under it).
    fn verify_unchanged(&mut self) -> Result<()> {
        let changed = |what: String| RepoError::Changed {
            name: self.name.to_string(),
            repo: self.backend.location(),
            what,
        };
        if let Some(what) = self.heartbeat.take().and_then(Heartbeat::stop) {
            return Err(changed(what));
        }
        let lease = self
            .backend
            .get(&self.name, FileKind::Lease, MAX_LEASE)
            .map_err(|e| changed(format!("its lease cannot be read: {}", chain_text(&e))))?;
        match Lease::parse(&lease) {
            Ok(l) if l.token == self.lease.token => {}
            Ok(l) => return Err(changed(format!("another save took the lease ({l})"))),
            Err(e) => return Err(changed(format!("the lease was overwritten ({e})"))),
        }
        let files = self
            .backend
            .list_files(self.name.as_str())
            .map_err(|e| changed(format!("its files cannot be listed: {}", chain_text(&e))))?;
        for f in &self.done {
            match files.iter().find(|(n, _)| *n == f.name) {
                None => return Err(changed(format!("volume {} was deleted", f.name))),
                Some((_, size)) if *size != f.size => {
                    return Err(changed(format!(
                        "volume {} has {size} bytes, the save wrote {}",
                        f.name, f.size
                    )))
                }
                Some(_) => {}
            }
        }
        if let Some((extra, _)) = files.iter().find(|(n, _)| {
            matches!(FileKind::parse(n), Some(FileKind::Volume(i)) if i >= self.done.len())
                || FileKind::parse(n) == Some(FileKind::Manifest)
        }) {
            return Err(changed(format!(
                "{extra} appeared, the save did not write it"
            )));
        }
        Ok(())
    }

    /// The image name.
    pub fn name(&self) -> &ImageName {
        &self.name
    }

    fn open_next(&mut self) -> io::Result<()> {
        let kind = FileKind::Volume(self.done.len());
        let w = self
            .backend
            .create(&self.name, kind)
            .map_err(io::Error::other)?;
        self.current = Some(OpenVolume {
            name: kind.name(),
            w,
            len: 0,
            crc: crc32fast::Hasher::new(),
        });
        Ok(())
    }
}

impl Drop for ImageSink {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Not committed (an error, or cancelled): the heartbeat gives up the lease if it is
        // still ours. (After a failed pre-commit check there is no heartbeat and the lease is
        // not ours to delete.)
        if let Some(h) = self.heartbeat.take() {
            h.abandon();
        }
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

/// The volume files of an image as one stream (sealed, for an encrypted image).
struct Volumes {
    list: Vec<Volume>,
    len: u64,
    /// The volumes' CRC32s, computed from the bytes as they are read (see
    /// [`ImageSource::tap_volume_crcs`]).
    tap: std::sync::Mutex<Option<CrcTap>>,
}

/// CRC32s of the volume files computed from reads that go through the stream in order: a read
/// that starts where the last one ended (or overlaps it) adds its new bytes; one that skips
/// ahead leaves a hole, and the tap can no longer tell.
struct CrcTap {
    next: u64,
    hashers: Vec<crc32fast::Hasher>,
    hole: bool,
}

impl Volumes {
    fn observe(&self, buf: &[u8], offset: u64) {
        let mut tap = self.tap.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tap.as_mut() else { return };
        if t.hole {
            return;
        }
        if offset > t.next {
            t.hole = true;
            return;
        }
        let end = offset + buf.len() as u64;
        while t.next < end {
            let Some((i, v)) = self
                .list
                .iter()
                .enumerate()
                .find(|(_, v)| t.next >= v.start && t.next < v.start + v.len)
            else {
                return;
            };
            let upto = end.min(v.start + v.len);
            t.hashers[i].update(&buf[(t.next - offset) as usize..(upto - offset) as usize]);
            t.next = upto;
        }
    }
}

impl ReadAt for Volumes {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let v = self
                .list
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
        self.observe(buf, offset);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Shared handle on the volumes, for the decrypting layer.
struct SharedVolumes(Arc<Volumes>);

impl ReadAt for SharedVolumes {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.len
    }
}

/// A complete image opened for reading: the manifest, and the volumes as one logical stream
/// (random access through [`ReadAt`], sequential through [`ImageSource::reader`]). An
/// encrypted image reads as its sealed bytes until [`ImageSource::unlock`]; from then on,
/// reads return the checked plaintext container stream and [`ImageSource::manifest`] is the
/// full manifest.
pub struct ImageSource {
    manifest: Manifest,
    volumes: Arc<Volumes>,
    encrypted: bool,
    open: Option<Box<OpenAt<SharedVolumes>>>,
    location: String,
}

impl ImageSource {
    /// The manifest from `manifest.json` (for an encrypted image: only its public fields
    /// until [`ImageSource::unlock`], the full manifest after it).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the image is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// True for an encrypted (sealed) image.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// True for an encrypted image not unlocked yet.
    pub fn is_locked(&self) -> bool {
        self.encrypted && self.open.is_none()
    }

    /// The header of an encrypted image's sealed stream.
    pub fn seal_header(&self) -> Result<SealHeader> {
        let mut b = [0u8; SEAL_HEADER_LEN];
        self.volumes
            .read_exact_at(&mut b, 0)
            .map_err(|source| RepoError::Io {
                path: self.location.clone(),
                source,
            })?;
        Ok(SealHeader::decode(&b)?)
    }

    /// Opens an encrypted image with its passphrase: derives the keys (Argon2id, a fraction
    /// of a second), checks them against the header's key-check value
    /// ([`lifeboat_container::ContainerError::WrongPassphrase`] otherwise) and opens the
    /// sealed manifest. A no-op for an image that is not encrypted.
    pub fn unlock(&mut self, passphrase: &[u8]) -> Result<()> {
        if !self.is_locked() {
            return Ok(());
        }
        let header = self.seal_header()?;
        let keys = Arc::new(Keys::open(passphrase, &header)?);
        let full = self
            .manifest
            .unseal(&keys)
            .map_err(|e| RepoError::Incomplete {
                name: self.manifest.image.clone(),
                repo: self.location.clone(),
                reason: IncompleteReason::Damaged(format!("manifest.json: {}", chain_text(&e))),
            })?;
        self.open = Some(Box::new(OpenAt::new(
            SharedVolumes(Arc::clone(&self.volumes)),
            keys,
        )?));
        self.manifest = full;
        Ok(())
    }

    /// Which volume file holds container byte `pos`, and where in it (for an unlocked
    /// image, `pos` is a position in the plaintext stream).
    pub fn locate(&self, pos: u64) -> (String, u64) {
        let pos = match &self.open {
            Some(o) => o.sealed_position(pos),
            None => pos,
        };
        for v in &self.volumes.list {
            if pos < v.start + v.len {
                return (v.name.clone(), pos.saturating_sub(v.start));
            }
        }
        match self.volumes.list.last() {
            Some(v) => (v.name.clone(), pos.saturating_sub(v.start)),
            None => (String::new(), pos),
        }
    }

    /// A sequential reader over the whole container stream (reads of 1 MiB, or of what the
    /// caller asks when that is larger).
    pub fn reader(&self) -> SourceReader<'_> {
        self.reader_at(0)
    }

    /// A sequential reader over the container stream from byte `pos` on (as
    /// [`ImageSource::reader`]).
    pub fn reader_at(&self, pos: u64) -> SourceReader<'_> {
        SourceReader {
            src: self,
            pos: pos.min(self.len()),
            buf: Vec::new(),
            at: 0,
        }
    }

    /// Starts computing the volume files' CRC32s from the reads that follow (for an
    /// encrypted image, the sealed bytes that the decryption reads), so that a pass that
    /// reads the whole image in order also checks its files without reading them again; see
    /// [`ImageSource::tapped_volume_crcs`]. Reads the sealed header of an encrypted image
    /// once more (it was read when the image was unlocked), so that the tap starts at byte 0.
    pub fn tap_volume_crcs(&self) -> Result<()> {
        *self.volumes.tap.lock().unwrap_or_else(|p| p.into_inner()) = Some(CrcTap {
            next: 0,
            hashers: vec![crc32fast::Hasher::new(); self.volumes.list.len()],
            hole: false,
        });
        if self.encrypted {
            self.seal_header()?;
        }
        Ok(())
    }

    /// Ends what [`ImageSource::tap_volume_crcs`] started: `Some` with the check of each
    /// volume's CRC32 against the manifest (as [`ImageSource::verify_files`] does) when the
    /// reads since covered every byte of every volume in order, `None` when they did not
    /// (then only [`ImageSource::verify_files`] can tell).
    pub fn tapped_volume_crcs(&self) -> Option<Result<(), String>> {
        let t = self
            .volumes
            .tap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        if t.hole || t.next != self.volumes.len {
            return None;
        }
        let got = t
            .hashers
            .into_iter()
            .map(|h| h.finalize())
            .collect::<Vec<_>>();
        Some(self.compare_crcs(&got))
    }

    fn compare_crcs(&self, got: &[u32]) -> Result<(), String> {
        for ((v, f), got) in self.volumes.list.iter().zip(&self.manifest.files).zip(got) {
            let got = format!("{got:08x}");
            if got != f.crc32 {
                return Err(format!(
                    "{}: CRC32 is {got}, the manifest says {}",
                    v.name, f.crc32
                ));
            }
        }
        Ok(())
    }

    /// Checks each volume's CRC32 against the manifest; returns the first mismatching volume.
    pub fn verify_files(&self) -> Result<(), String> {
        let mut buf = vec![0u8; 1 << 20];
        let mut got = Vec::with_capacity(self.volumes.list.len());
        for v in &self.volumes.list {
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
            got.push(h.finalize());
        }
        self.compare_crcs(&got)
    }
}

impl ReadAt for ImageSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.open {
            Some(o) => o.read_exact_at(buf, offset),
            None => self.volumes.read_exact_at(buf, offset),
        }
    }
    fn len(&self) -> u64 {
        match &self.open {
            Some(o) => o.len(),
            None => self.volumes.len,
        }
    }
}

/// Sequential reader returned by [`ImageSource::reader`].
pub struct SourceReader<'a> {
    src: &'a ImageSource,
    pos: u64,
    buf: Vec<u8>,
    at: usize,
}

/// Reads of at least this many bytes of a plain image go straight into the caller's buffer
/// (the payloads of large chunks) instead of through the reader's own 1 MiB buffer.
const DIRECT_READ: usize = 256 << 10;

impl Read for SourceReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.buf.len() && self.src.open.is_none() && out.len() >= DIRECT_READ {
            let n = (self.src.len() - self.pos).min(out.len() as u64) as usize;
            self.src.read_exact_at(&mut out[..n], self.pos)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.at >= self.buf.len() {
            // An encrypted image is read a segment at a time, so that a segment that fails
            // its tag is reported with the record that reaches it (the sealed layer reads
            // ahead from the volumes in large pieces itself).
            let step = self
                .src
                .open
                .as_ref()
                .map_or(1 << 20, |o| u64::from(o.segment_size()));
            let n = (self.src.len() - self.pos).min(step) as usize;
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
