//! check: read a whole image and verify everything without writing anywhere.

use crate::error::{Aftermath, EngineError, Result};
use crate::event::{Event, EventSink, Progress};
use crate::image_error;
use crate::secret::PassphraseSource;
use lifeboat_container::digest::{chunk_digest, ImageDigest};
use lifeboat_container::{
    decode_parallel_with, DecodeError, Decoded, DiskRecord, EncodedChunk, IndexedImage, Manifest,
    StreamReader,
};
use lifeboat_repo::{ImageName, ImageSource, Repository};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

/// How to check an image.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Decompression threads.
    pub threads: usize,
    /// The passphrase, asked only when the image is encrypted.
    pub passphrase: PassphraseSource,
    /// The image digest the operator expects (`docs/FORMAT.md` §6.1, 64 hex digits): the
    /// check fails (damaged) when the image's differs.
    pub digest: Option<String>,
}

impl CheckOptions {
    /// `threads` threads, no passphrase, no expected digest.
    pub fn new(threads: usize) -> Self {
        CheckOptions {
            threads,
            passphrase: PassphraseSource::none(),
            digest: None,
        }
    }
}

/// What `check` verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Chunks decompressed and verified.
    pub chunks: u64,
    /// Data bytes verified.
    pub data_bytes: u64,
    /// Volume files whose CRC32 matched the manifest.
    pub files: usize,
    /// The image digest computed from the data (64 hex digits).
    pub digest: String,
    /// Whether the image is encrypted (every sealed segment's tag was verified).
    pub encrypted: bool,
}

/// Why an image whose digest is `got` is not the one the operator expects (`--digest`), if it
/// is not (compared case-insensitively); `None` when nothing is expected or it matches.
pub(crate) fn unexpected_digest(got: &str, expected: Option<&str>) -> Option<String> {
    expected
        .filter(|want| !want.eq_ignore_ascii_case(got))
        .map(|want| {
            format!(
                "its digest is {got}, not the expected {want}: it is not the image that was saved"
            )
        })
}

/// The image digest recomputed during a decoding pass (`check`, the restore's pre-check):
/// each chunk's digest on the decompressing thread that decoded it ([`Self::digest_chunk`],
/// a [`decode_parallel_with`] worker), combined with the disk records in stream order as the
/// records arrive ([`Self::disk`], [`Self::chunk`]).
#[derive(Default)]
pub(crate) struct DigestPass {
    chunks: Mutex<HashMap<u64, [u8; 32]>>,
    image: Mutex<ImageDigest>,
}

impl DigestPass {
    /// On a decompressing thread: the digest of a decoded chunk.
    pub(crate) fn digest_chunk(&self, c: &EncodedChunk, data: &[u8]) {
        let d = chunk_digest(c.header.disk, c.header.seq, &c.extents, data);
        self.chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.header.seq, d);
    }

    /// A `DISK` record, in stream order.
    pub(crate) fn disk(&self, index: u32, json: &[u8]) {
        self.image
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .disk(index, json);
    }

    /// Chunk `seq`, in stream order (its digest was computed by its worker).
    pub(crate) fn chunk(&self, seq: u64) -> std::result::Result<(), String> {
        let d = self
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&seq)
            .ok_or_else(|| format!("chunk {seq} has no digest"))?;
        self.image
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .chunk(&d);
        Ok(())
    }

    /// The image digest, 64 hex digits.
    pub(crate) fn hex(self) -> String {
        self.image
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .hex()
    }
}

/// Reads the image once: every volume's CRC32, every record checksum, every chunk
/// decompressed and its data CRC checked, the index, the disk records and the embedded
/// manifest compared with `manifest.json`.
///
/// The image digest is recomputed from the data and compared with the manifest's (images
/// saved before format 1.2 have none) and with `opts.digest`. An encrypted image is opened
/// with a passphrase from `opts.passphrase`; every sealed segment's tag is verified (a
/// modified byte is named by the chunk being read).
pub fn check(
    repo: &Repository,
    image: &ImageName,
    opts: &CheckOptions,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<CheckReport> {
    let started = Instant::now();
    let source = crate::secret::open_image(repo, image, &opts.passphrase)?;
    let mut report = check_source(
        &source,
        image,
        &repo.location(),
        opts.threads,
        sink,
        cancel,
        started,
    )?;
    let mismatch = |what: String| EngineError::Damaged(format!("image {image}: {what}"));
    if let Some(saved) = &source.manifest().digest {
        if *saved != report.digest {
            return Err(mismatch(format!(
                "its data has digest {}, the manifest says {saved}",
                report.digest
            )));
        }
    }
    // The index's chunk digests (format 3), which a mount or an extract trusts chunk by
    // chunk, must describe the same data.
    let from_index = IndexedImage::open(&source)
        .and_then(|i| i.image_digest())
        .map_err(|e| image_error(&source, e))?;
    if let Some(d) = from_index.filter(|d| *d != report.digest) {
        return Err(mismatch(format!(
            "its index gives digest {d}, its data has digest {}",
            report.digest
        )));
    }
    if let Some(why) = unexpected_digest(&report.digest, opts.digest.as_deref()) {
        return Err(mismatch(why));
    }
    report.encrypted = source.is_encrypted();
    Ok(report)
}

fn check_source(
    source: &ImageSource,
    image: &ImageName,
    repo: &str,
    threads: usize,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
    started: Instant,
) -> Result<CheckReport> {
    let manifest = source.manifest().clone();
    let total: u64 = manifest.totals.stored_bytes;
    sink.event(Event::Start {
        operation: "check".into(),
        image: image.to_string(),
        repo: repo.into(),
        bytes_total: total,
        disks: manifest.disks.iter().map(|d| d.source.clone()).collect(),
    });
    // The volume CRC32s are of the stored (for an encrypted image: sealed) bytes: computed
    // from the volume reads of this pass (the decryption reads the sealed bytes in order).
    source
        .tap_volume_crcs()
        .map_err(|e| EngineError::Damaged(format!("image {image}: {e}")))?;
    let mut reader = source.reader();
    let mut progress = Progress::new(sink, total);
    let mut report = CheckReport::default();
    let mut disk_crcs: Vec<crc32fast::Hasher> = Vec::new();
    let digest = DigestPass::default();
    let mismatch = |what: String| EngineError::Damaged(format!("image {image}: {what}"));
    {
        let stream = StreamReader::new(&mut reader).map_err(|e| image_error(source, e))?;
        let id = lifeboat_container::format::id_hex(&stream.header().image_id);
        if id != manifest.image_id || stream.header().chunk_size != manifest.chunk_size {
            return Err(mismatch(format!(
                "the container header (image id {id}, chunk size {}) does not match manifest.json",
                stream.header().chunk_size
            )));
        }
        let worker = |c: &EncodedChunk, data: &[u8]| -> Result<()> {
            digest.digest_chunk(c, data);
            Ok(())
        };
        let r = decode_parallel_with(stream, threads, cancel, &worker, |d| -> Result<()> {
            match d {
                Decoded::DiskList { disks, json } => {
                    let list = DiskRecord::list_from_json(json, disks, 0)
                        .map_err(|e| mismatch(format!("disk list: {}", crate::chain_text(&e))))?;
                    let same = list.len() == manifest.disks.len()
                        && list
                            .iter()
                            .zip(&manifest.disks)
                            .all(|(d, m)| crate::same_layout(d, m));
                    if !same {
                        return Err(mismatch("the disk list differs from the manifest".into()));
                    }
                }
                Decoded::Disk { index, json } => {
                    let rec = DiskRecord::from_json(json, 0).map_err(|e| {
                        mismatch(format!("disk record {index}: {}", crate::chain_text(&e)))
                    })?;
                    let m = manifest
                        .disks
                        .get(index as usize)
                        .ok_or_else(|| mismatch(format!("disk {index} is not in the manifest")))?;
                    if !crate::same_layout(&rec, m) {
                        return Err(mismatch(format!(
                            "disk record {index} differs from the manifest"
                        )));
                    }
                    disk_crcs.push(crc32fast::Hasher::new());
                    digest.disk(index, json);
                    progress.disk = index;
                }
                Decoded::Chunk { chunk, data } => {
                    digest.chunk(chunk.header.seq).map_err(mismatch)?;
                    if let Some(h) = disk_crcs.last_mut() {
                        h.update(data);
                    }
                    report.chunks += 1;
                    report.data_bytes += data.len() as u64;
                    progress.add(data.len() as u64);
                }
                Decoded::Manifest(json) => {
                    let mut embedded = Manifest::from_json(json, 0).map_err(|e| {
                        mismatch(format!("embedded manifest: {}", crate::chain_text(&e)))
                    })?;
                    embedded.files = manifest.files.clone();
                    if embedded != manifest {
                        return Err(mismatch(
                            "manifest.json differs from the manifest inside the image".into(),
                        ));
                    }
                }
                Decoded::End(_) => {}
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(DecodeError::Sink(e)) => return Err(e),
            Err(DecodeError::Container(lifeboat_container::ContainerError::Cancelled)) => {
                return Err(EngineError::Cancelled(Aftermath::Unstated))
            }
            Err(DecodeError::Container(e)) => return Err(image_error(source, e)),
        }
    }
    if disk_crcs.len() != manifest.disks.len() {
        return Err(mismatch(format!(
            "{} disk records, the manifest lists {}",
            disk_crcs.len(),
            manifest.disks.len()
        )));
    }
    for (i, (h, d)) in disk_crcs.into_iter().zip(&manifest.disks).enumerate() {
        let got = format!("{:08x}", h.finalize());
        if got != d.data_crc32 {
            return Err(mismatch(format!(
                "disk {i}: data CRC32 {got}, the manifest says {}",
                d.data_crc32
            )));
        }
    }
    // Read again only if this pass did not read every volume byte in order.
    match source.tapped_volume_crcs() {
        Some(r) => r,
        None => source.verify_files(),
    }
    .map_err(mismatch)?;
    report.files = manifest.files.len();
    report.digest = digest.hex();
    progress.emit();
    sink.event(Event::Done {
        operation: "check".into(),
        bytes_done: report.data_bytes,
        image_bytes: manifest.files.iter().map(|f| f.size).sum(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(report)
}
