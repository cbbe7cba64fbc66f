//! Reading an image at random: any byte of any saved disk, without restoring it.
//!
//! [`ImageReader`] opens a complete image of a repository through its trailing index and
//! serves `read_at(disk, offset, buf)`: it finds the chunks that hold the range, decompresses
//! only those (each checked by its CRCs and, in format 3, by the SHA-256 digest its
//! index entry holds; [`ImageReader::verify_digest`] proves the index), and keeps the last few decoded chunks in a small
//! cache ([`CACHE_CHUNKS`] chunks, at most `CACHE_CHUNKS × chunk size` bytes: 32 MiB with the
//! default 4 MiB chunks), so memory does not grow with the image. When reads go through a
//! disk in order, the next [`READ_AHEAD`] chunks are decoded in the background while the
//! current one is served, so that reading and checking a chunk (its SHA-256 digest and
//! CRCs) overlaps with serving the one before (at most [`READ_AHEAD`] chunks more in
//! memory). A chunk is decoded once however many threads ask for it. Bytes the image did not
//! store (blocks no filesystem used) read as zeros. [`ImageReader::extract`] writes one disk
//! or partition as a sparse file.

use crate::error::{EngineError, Result};
use crate::image_error;
use lifeboat_container::{DiskRecord, IndexEntry, IndexedImage, Manifest};
use lifeboat_fs::Extent;
use lifeboat_repo::{ImageName, ImageSource, Repository};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Decoded chunks kept by an [`ImageReader`].
pub const CACHE_CHUNKS: usize = 8;
/// Chunks an [`ImageReader`] decodes ahead of a sequential reader.
pub const READ_AHEAD: usize = 2;

/// A decoded chunk: where its bytes go and the bytes.
struct Decoded {
    extents: Vec<Extent>,
    data: Vec<u8>,
}

/// An image opened for random reads of its disks.
pub struct ImageReader {
    name: ImageName,
    manifest: Manifest,
    /// Shared with the read-ahead threads.
    inner: Arc<Chunks>,
}

/// The index and the decoded chunks.
struct Chunks {
    index: IndexedImage<ImageSource>,
    /// Most recently used last; keyed by the chunk's position in the image.
    cache: Mutex<Vec<(u64, Arc<Decoded>)>>,
    /// The disk, position and end offset of the last chunk read: reading the chunk that
    /// follows it is a sequential read, which decodes the next ones ahead.
    last: Mutex<Option<(u32, u64, u64)>>,
    /// Chunks being decoded, by position: a read that needs one waits for it instead of
    /// decoding it a second time (FUSE serves reads on several threads, and the kernel's
    /// read-ahead sends neighbouring reads of one chunk at once).
    inflight: Mutex<HashMap<u64, Arc<Once>>>,
}

/// One decoding of a chunk: its result once done (`None`: it failed).
type Once = OnceLock<Option<Arc<Decoded>>>;

impl std::fmt::Debug for ImageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageReader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What [`ImageReader::extract`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    /// Size of the file written (the disk's or partition's size).
    pub size: u64,
    /// Bytes of data written (the rest of the file is holes).
    pub data_bytes: u64,
}

impl Chunks {
    fn damaged(&self, e: lifeboat_container::ContainerError) -> EngineError {
        image_error(self.index.source(), e)
    }

    /// Whether the chunk at `pos` is cached (without making it the most recently used).
    fn cached_quiet(&self, pos: u64) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(p, _)| *p == pos)
    }

    /// The cached decoded chunk at image position `pos`, made the most recently used.
    fn cached(&self, pos: u64) -> Option<Arc<Decoded>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let i = cache.iter().position(|(p, _)| *p == pos)?;
        let hit = cache.remove(i);
        let d = Arc::clone(&hit.1);
        cache.push(hit);
        Some(d)
    }

    fn remember(&self, pos: u64, d: &Arc<Decoded>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.iter().any(|(p, _)| *p == pos) {
            return;
        }
        if cache.len() >= CACHE_CHUNKS {
            cache.remove(0);
        }
        cache.push((pos, Arc::clone(d)));
    }

    /// The chunk of an index entry, decoded once however many threads ask for it at the same
    /// time (then kept in the cache).
    fn decode_once(&self, e: &IndexEntry) -> Result<Arc<Decoded>> {
        if let Some(d) = self.cached(e.pos) {
            return Ok(d);
        }
        let cell = {
            let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(m.entry(e.pos).or_default())
        };
        let mut failed = None;
        let got = cell
            .get_or_init(|| match self.decode(e) {
                Ok(d) => {
                    self.remember(e.pos, &d);
                    Some(d)
                }
                Err(x) => {
                    failed = Some(x);
                    None
                }
            })
            .clone();
        {
            let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if m.get(&e.pos).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                m.remove(&e.pos);
            }
        }
        match (got, failed) {
            (Some(d), _) => Ok(d),
            (None, Some(x)) => Err(x),
            // Another thread's decoding failed: decode again for an error of our own.
            (None, None) => self.decode(e),
        }
    }

    /// Reads, checks (CRCs, digest) and decompresses the chunk of an index entry.
    fn decode(&self, e: &IndexEntry) -> Result<Arc<Decoded>> {
        let mut data = Vec::new();
        let c = self
            .index
            .read_data(e, &mut data)
            .map_err(|x| self.damaged(x))?;
        Ok(Arc::new(Decoded {
            extents: c.extents,
            data,
        }))
    }
}

impl ImageReader {
    /// Opens image `name` of `repo` (it must be complete) for random reads; an encrypted
    /// image with a passphrase from `pass` (every read checks the tags of the sealed
    /// segments it touches).
    pub fn open(
        repo: &Repository,
        name: &ImageName,
        pass: &crate::PassphraseSource,
    ) -> Result<ImageReader> {
        let source = crate::secret::open_image(repo, name, pass)?;
        let manifest = source.manifest().clone();
        let index = match IndexedImage::open(source) {
            Ok(i) => i,
            Err(e) => {
                let source = repo.open_image(name)?;
                return Err(image_error(&source, e));
            }
        };
        Ok(ImageReader {
            name: name.clone(),
            manifest,
            inner: Arc::new(Chunks {
                index,
                cache: Mutex::new(Vec::new()),
                last: Mutex::new(None),
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Proves the index before anything is served: the image digest derived from it (its
    /// chunk digests and disk records, `docs/FORMAT.md` §6.1; format 3) must equal the
    /// manifest's and, when given, `expected` (the digest the operator noted after the
    /// save). Every chunk read afterwards is checked against its index entry's digest, so
    /// with `expected` every byte served is the one saved. Returns the digest; `None` for an
    /// image saved before format 3 (its index has no digests), which is refused when
    /// `expected` is given (`lifeboat check --digest` proves such an image).
    pub fn verify_digest(&self, expected: Option<&str>) -> Result<Option<String>> {
        let damaged = |what: String| EngineError::Damaged(format!("image {}: {what}", self.name));
        let Some(got) = self
            .inner
            .index
            .image_digest()
            .map_err(|x| self.damaged(x))?
        else {
            return match expected {
                None => Ok(None),
                Some(_) => Err(EngineError::Mismatch(crate::Mismatch::NoIndexDigests {
                    image: self.name.to_string(),
                })),
            };
        };
        if let Some(saved) = &self.manifest.digest {
            if *saved != got {
                return Err(damaged(format!(
                    "its index gives digest {got}, the manifest says {saved}"
                )));
            }
        }
        if let Some(why) = crate::check::unexpected_digest(&got, expected) {
            return Err(damaged(why));
        }
        Ok(Some(got))
    }

    /// The image's manifest (its disks, partitions, what was saved).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The saved disks, in order.
    pub fn disks(&self) -> &[DiskRecord] {
        &self.manifest.disks
    }

    fn disk(&self, disk: u32) -> Result<&DiskRecord> {
        self.manifest.disks.get(disk as usize).ok_or_else(|| {
            EngineError::Mismatch(crate::Mismatch::Other(format!(
                "image {} has {} disk(s); there is no disk {disk}",
                self.name,
                self.manifest.disks.len()
            )))
        })
    }

    fn damaged(&self, e: lifeboat_container::ContainerError) -> EngineError {
        self.inner.damaged(e)
    }

    /// The decoded chunk an index entry of disk `disk` points to, from the cache or the
    /// image; reading on into the next chunk of a disk starts decoding the ones after it.
    fn chunk(&self, disk: u32, e: &IndexEntry) -> Result<Arc<Decoded>> {
        self.read_ahead(disk, e);
        self.inner.decode_once(e)
    }

    /// When `e` is the chunk after the last one read on `disk`, decodes the next
    /// [`READ_AHEAD`] chunks (those neither cached nor being decoded) on background threads.
    fn read_ahead(&self, disk: u32, e: &IndexEntry) {
        let c = &self.inner;
        let next_after = |end: u64| c.index.find_from(disk, end).ok().flatten();
        {
            let mut last = c.last.lock().unwrap_or_else(|p| p.into_inner());
            let before = last.replace((disk, e.pos, e.end));
            match before {
                Some((d, pos, _)) if d == disk && pos == e.pos => return,
                Some((d, _, end))
                    if d == disk && next_after(end).is_some_and(|n| n.pos == e.pos) => {}
                _ => return,
            }
        }
        let mut end = e.end;
        for _ in 0..READ_AHEAD {
            let Some(n) = next_after(end).filter(|n| n.end > end) else {
                break;
            };
            end = n.end;
            let busy = c
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&n.pos);
            if busy || c.cached_quiet(n.pos) {
                continue;
            }
            let c = Arc::clone(c);
            // A chunk read ahead that fails is not an error yet: it is reported when read.
            std::thread::spawn(move || {
                let _ = c.decode_once(&n);
            });
        }
    }

    /// Calls `each(offset, bytes)` for every stored run of disk `disk` within
    /// `[start, start + len)`, in increasing order.
    fn stored_runs(
        &self,
        disk: u32,
        start: u64,
        len: u64,
        mut each: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let end = start.saturating_add(len);
        let mut pos = start;
        while pos < end {
            let Some(e) = self
                .inner
                .index
                .find_from(disk, pos)
                .map_err(|x| self.damaged(x))?
            else {
                break;
            };
            if e.first >= end {
                break;
            }
            let c = self.chunk(disk, &e)?;
            let mut at = 0usize;
            for x in &c.extents {
                let n = x.len as usize;
                let lo = x.offset.max(pos);
                let hi = x.end().min(end);
                if lo < hi {
                    let s = at + (lo - x.offset) as usize;
                    each(lo, &c.data[s..s + (hi - lo) as usize])?;
                }
                at += n;
            }
            // Go on after this chunk (an empty or malformed chunk still moves forward).
            pos = e.end.max(pos + 1);
        }
        Ok(())
    }

    /// Fills `buf` with the bytes of disk `disk` from `offset` as they were saved; bytes
    /// that were not stored read as zeros. Reading past the disk's end is an error.
    pub fn read_at(&self, disk: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let size = self.disk(disk)?.size;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > size)
        {
            return Err(EngineError::Mismatch(crate::Mismatch::Other(format!(
                "read of {} bytes at {offset} is beyond disk {disk} of image {} ({size} bytes)",
                buf.len(),
                self.name
            ))));
        }
        // Zeros only where no run lands (gaps are zeroed as the runs pass them; a run out
        // of order lands on bytes already zeroed or copied).
        let mut next = 0usize;
        self.stored_runs(disk, offset, buf.len() as u64, |at, bytes| {
            let s = (at - offset) as usize;
            if s > next {
                buf[next..s].fill(0);
            }
            buf[s..s + bytes.len()].copy_from_slice(bytes);
            next = next.max(s + bytes.len());
            Ok(())
        })?;
        buf[next..].fill(0);
        Ok(())
    }

    /// Byte range (start, size) of partition `part` of disk `disk` (`None`: the whole disk).
    pub fn range(&self, disk: u32, part: Option<u32>) -> Result<(u64, u64)> {
        let d = self.disk(disk)?;
        match part {
            None => Ok((0, d.size)),
            Some(n) => d
                .table
                .partitions
                .iter()
                .find(|p| p.number == n)
                .map(|p| (p.start, p.size))
                .ok_or_else(|| {
                    EngineError::Mismatch(crate::Mismatch::Other(format!(
                        "disk {disk} of image {} has no partition {n} (it has: {})",
                        self.name,
                        d.table
                            .partitions
                            .iter()
                            .map(|p| p.number.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }),
        }
    }

    /// Writes disk `disk` (or its partition `part`) into a new sparse file `out`: the stored
    /// bytes at their offsets, holes elsewhere (which read as zeros). Refuses an existing
    /// `out`, so it never overwrites a file or a device.
    pub fn extract(&self, disk: u32, part: Option<u32>, out: &Path) -> Result<Extracted> {
        let (start, size) = self.range(disk, part)?;
        let write_err = |offset: u64, source: std::io::Error| EngineError::FileWrite {
            path: out.display().to_string(),
            offset,
            source,
        };
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    EngineError::Mismatch(crate::Mismatch::Other(format!(
                        "{} exists already; extract writes a new file only",
                        out.display()
                    )))
                } else {
                    write_err(0, e)
                }
            })?;
        let mut data_bytes = 0u64;
        self.stored_runs(disk, start, size, |at, bytes| {
            f.write_all_at(bytes, at - start)
                .map_err(|e| write_err(at - start, e))?;
            data_bytes += bytes.len() as u64;
            Ok(())
        })?;
        f.set_len(size).map_err(|e| write_err(size, e))?;
        f.sync_all().map_err(|e| write_err(size, e))?;
        Ok(Extracted { size, data_bytes })
    }
}
