//! restoredisk and restoreparts: safety checks first, then the verified write.

use crate::error::{EngineError, Result};
use crate::event::{Event, EventSink, Progress};
use crate::image_error;
use lifeboat_blockdev::{disks_holding_path, Disk, OpenMode};
use lifeboat_container::format::Codec;
use lifeboat_container::{
    decode_parallel_with, DecodeError, Decoded, DiskRecord, EncodedChunk, ImageKind, Manifest,
    Record, StreamReader,
};
use lifeboat_parttable::{read_layout, relocate_gpt, TableKind};
use lifeboat_repo::{ImageName, ImageSource, Repository};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The image.
    pub image: ImageName,
    /// Target disks, one per disk of the image, in the image's order.
    pub disks: Vec<PathBuf>,
    /// Partition numbers to restore (restoreparts); empty restores whole disks.
    pub parts: Vec<u32>,
    /// Before the first write, read the whole image once and verify every record checksum
    /// (chunk headers, extent tables and payloads, index, tail) and that each disk record
    /// matches the manifest (default true). Decompressed data is verified against its CRC
    /// while writing in any case.
    pub precheck: bool,
    /// Decompression threads.
    pub threads: usize,
}

impl RestoreOptions {
    /// Defaults for a whole-disk restore.
    pub fn new(image: ImageName, disks: Vec<PathBuf>) -> Self {
        RestoreOptions {
            image,
            disks,
            parts: Vec::new(),
            precheck: true,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Where a source partition goes on its target.
#[derive(Debug, Clone)]
struct PartMap {
    number: u32,
    src_start: u64,
    src_end: u64,
    dst_start: u64,
}

/// One target disk and what will happen to it.
pub struct Target {
    /// The opened target (exclusively for a block device).
    pub disk: Disk,
    /// The image's description of the source disk.
    pub source: DiskRecord,
    maps: Option<Vec<PartMap>>,
}

impl Target {
    /// Plain words for the confirmation: what will be overwritten.
    pub fn describe(&self) -> String {
        let id = self.disk.identity();
        let what = match &self.maps {
            None => "the WHOLE disk will be overwritten".to_string(),
            Some(m) => format!(
                "partition(s) {} will be overwritten",
                m.iter()
                    .map(|p| p.number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "{} ({} bytes{}{}): {what} with disk {} of the image (saved from {}, {} bytes)",
            self.disk.path().display(),
            self.disk.size(),
            id.model.map(|m| format!(", model {m}")).unwrap_or_default(),
            id.serial
                .map(|s| format!(", serial {s}"))
                .unwrap_or_default(),
            self.source.index,
            self.source.source,
            self.source.size
        )
    }
}

/// A restore whose safety checks passed; nothing has been written yet.
pub struct RestorePlan {
    source: ImageSource,
    targets: Vec<Target>,
    opts: RestoreOptions,
    repo: String,
}

/// Checks everything that can be checked before writing: the image is complete, each target
/// exists, is not mounted or otherwise in use, does not hold the repository, has the source's
/// sector size and is large enough (or, for restoreparts, has partitions large enough).
/// Targets are opened exclusively so that nothing mounts them meanwhile.
pub fn plan_restore(repo: &Repository, opts: &RestoreOptions) -> Result<RestorePlan> {
    let source = repo.open_image(&opts.image)?;
    let m = source.manifest().clone();
    if opts.parts.is_empty() && m.kind == ImageKind::Parts {
        return Err(EngineError::Mismatch(format!(
            "image {} holds only some partitions; use restoreparts",
            opts.image
        )));
    }
    if opts.disks.len() != m.disks.len() {
        return Err(EngineError::Mismatch(format!(
            "image {} holds {} disk(s) but {} --disk given; give one target per disk, in order",
            opts.image,
            m.disks.len(),
            opts.disks.len()
        )));
    }
    let repo_disks = match repo.backend().local_root() {
        Some(root) => disks_holding_path(root)?,
        None => Vec::new(),
    };
    let image_dir = repo
        .backend()
        .local_root()
        .and_then(|r| r.join(opts.image.as_str()).canonicalize().ok());
    let mut targets: Vec<Target> = Vec::new();
    for (path, rec) in opts.disks.iter().zip(&m.disks) {
        let refuse = |why: String| EngineError::Refused(format!("{}: {why}", path.display()));
        let usage = lifeboat_blockdev::in_use(path)?;
        if !usage.is_empty() {
            return Err(refuse(
                usage
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let mut disk = Disk::open(path, OpenMode::ReadWriteExclusive)?;
        if !disk.is_block_device() && disk.logical_sector_size() != rec.logical_sector_size {
            // An image file takes the sector size of the disk it will hold.
            disk = disk.with_logical_sector_size(rec.logical_sector_size)?;
        }
        if disk.is_one_of(&repo_disks) {
            return Err(refuse(format!(
                "it holds the repository {}; choose another target disk",
                repo.location()
            )));
        }
        if let (Some(dir), Ok(me)) = (&image_dir, path.canonicalize()) {
            if me.starts_with(dir) {
                return Err(refuse("it is a file of the image itself".into()));
            }
        }
        if targets.iter().any(|t| crate::same_disk(&t.disk, &disk)) {
            return Err(refuse("given twice".into()));
        }
        if rec.table.kind != "none" && disk.logical_sector_size() != rec.logical_sector_size {
            return Err(refuse(format!(
                "its logical sectors are {} bytes but the image was saved from a disk with {}-byte sectors; partition tables count sectors, so use a target with {}-byte sectors",
                disk.logical_sector_size(),
                rec.logical_sector_size,
                rec.logical_sector_size
            )));
        }
        let maps = if opts.parts.is_empty() {
            if disk.size() < rec.size {
                return Err(refuse(format!(
                    "too small: it has {} bytes, the image needs {} (the source disk's size); use a disk at least as large",
                    disk.size(),
                    rec.size
                )));
            }
            None
        } else {
            Some(map_parts(&disk, rec, &opts.parts).map_err(refuse)?)
        };
        targets.push(Target {
            disk,
            source: rec.clone(),
            maps,
        });
    }
    Ok(RestorePlan {
        source,
        targets,
        opts: opts.clone(),
        repo: repo.location(),
    })
}

/// Matches the requested partitions of the image with the target's own partitions.
fn map_parts(
    disk: &Disk,
    rec: &DiskRecord,
    parts: &[u32],
) -> std::result::Result<Vec<PartMap>, String> {
    let layout = read_layout(disk, disk.logical_sector_size()).map_err(|e| {
        format!("its partition table cannot be read ({e}); create the partitions first or use restoredisk")
    })?;
    let mut out = Vec::new();
    for n in parts {
        let src = rec
            .table
            .partitions
            .iter()
            .find(|p| p.number == *n)
            .ok_or_else(|| format!("the image has no partition {n}"))?;
        if !src.saved {
            return Err(format!("partition {n} was not saved in the image"));
        }
        let (dst_start, dst_size) = if layout.kind == TableKind::None {
            if *n != 0 {
                return Err(format!(
                    "it has no partition table, so no partition {n}; create the partitions first or use restoredisk"
                ));
            }
            (0, disk.size())
        } else {
            let p = layout.partition(*n).ok_or_else(|| {
                format!(
                    "it has no partition {n}; create it (at least {} bytes) first",
                    src.size
                )
            })?;
            (p.start, p.size)
        };
        if dst_size < src.size {
            return Err(format!(
                "its partition {n} has {dst_size} bytes but the saved one has {}; enlarge it first",
                src.size
            ));
        }
        out.push(PartMap {
            number: *n,
            src_start: src.start,
            src_end: src.start + src.size,
            dst_start,
        });
    }
    Ok(out)
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Data bytes written.
    pub bytes_written: u64,
    /// Per target: whether the GPT backup was moved to the end of a larger disk.
    pub gpt_relocated: Vec<bool>,
}

impl RestorePlan {
    /// The targets, for the confirmation.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The image's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.source.manifest()
    }

    /// Verifies the image (unless `precheck` is off), then writes it. Checksums are verified
    /// while streaming too; a mismatch stops with an error naming the chunk and file.
    pub fn execute(self, sink: &dyn EventSink, cancel: &AtomicBool) -> Result<RestoreReport> {
        let started = Instant::now();
        let operation = if self.opts.parts.is_empty() {
            "restoredisk"
        } else {
            "restoreparts"
        };
        let image_bytes: u64 = self.manifest().files.iter().map(|f| f.size).sum();
        if self.opts.precheck {
            precheck(&self.source, &self.opts.image, &self.repo, sink, cancel)?;
        }
        let total: u64 = self
            .targets
            .iter()
            .map(|t| match &t.maps {
                None => t.source.stored_bytes,
                Some(m) => t
                    .source
                    .table
                    .partitions
                    .iter()
                    .filter(|p| m.iter().any(|x| x.number == p.number))
                    .map(|p| p.used_bytes)
                    .sum(),
            })
            .sum();
        sink.event(Event::Start {
            operation: operation.into(),
            image: self.opts.image.to_string(),
            repo: self.repo.clone(),
            bytes_total: total,
            disks: self
                .targets
                .iter()
                .map(|t| t.disk.path().display().to_string())
                .collect(),
        });
        let mut progress = Progress::new(sink, total);
        let mut current: Option<usize> = None;
        let mut crcs: Vec<crc32fast::Hasher> = vec![crc32fast::Hasher::new(); self.targets.len()];
        let manifest = self.manifest().clone();
        let reader =
            StreamReader::new(self.source.reader()).map_err(|e| image_error(&self.source, e))?;
        // Chunks are written by the decompressing threads as soon as they are verified
        // (their extents never overlap); the ordered pass below checks the stream's structure
        // and counts progress.
        let targets = &self.targets;
        let write = move |chunk: &EncodedChunk, data: &[u8]| -> Result<()> {
            let t = targets.get(chunk.header.disk as usize).ok_or_else(|| {
                EngineError::Damaged(format!(
                    "chunk {} names disk {}, which the manifest does not list",
                    chunk.header.seq, chunk.header.disk
                ))
            })?;
            place_chunk(t, chunk, data, true).map(|_| ())
        };
        let r = decode_parallel_with(
            reader,
            self.opts.threads,
            cancel,
            &write,
            |d| -> Result<()> {
                match d {
                    Decoded::Disk { index, json } => {
                        let rec: DiskRecord = serde_json::from_slice(json).map_err(|e| {
                            EngineError::Damaged(format!(
                                "disk record {index} of the image is unreadable: {e}"
                            ))
                        })?;
                        let t = self.targets.get(index as usize).ok_or_else(|| {
                            EngineError::Damaged(format!(
                                "the image has a disk {index} its manifest does not list"
                            ))
                        })?;
                        if !crate::same_layout(&rec, &t.source) {
                            return Err(EngineError::Damaged(format!(
                            "disk {index} of the image differs from its manifest; the image is damaged"
                        )));
                        }
                        current = Some(index as usize);
                        progress.disk = index;
                    }
                    Decoded::Chunk { chunk, data } => {
                        let i = current.ok_or_else(|| {
                            EngineError::Damaged("a chunk before any disk record".into())
                        })?;
                        let t = &self.targets[i];
                        crcs[i].combine(&crc32fast::Hasher::new_with_initial_len(
                            chunk.header.data_crc,
                            u64::from(chunk.header.data_len),
                        ));
                        let (bytes, part) = place_chunk(t, chunk, data, false)?;
                        if part.is_some() {
                            progress.partition = part;
                        }
                        progress.add(bytes);
                    }
                    Decoded::Manifest(json) => {
                        let mut embedded = Manifest::from_json(json, 0).map_err(|e| {
                            EngineError::Damaged(format!(
                                "the manifest inside the image is unreadable: {e}"
                            ))
                        })?;
                        embedded.files = manifest.files.clone();
                        if embedded != manifest {
                            return Err(EngineError::Damaged(
                                "manifest.json differs from the manifest inside the image".into(),
                            ));
                        }
                    }
                    Decoded::End(_) => {}
                }
                if cancel.load(Ordering::Relaxed) {
                    return Err(EngineError::Cancelled(
                        "; the target disk is now inconsistent and must be restored again",
                    ));
                }
                Ok(())
            },
        );
        match r {
            Ok(()) => {}
            Err(DecodeError::Sink(e)) => return Err(e),
            Err(DecodeError::Container(lifeboat_container::ContainerError::Cancelled)) => {
                return Err(EngineError::Cancelled(
                    "; the target disk is now inconsistent and must be restored again",
                ))
            }
            Err(DecodeError::Container(e)) => return Err(image_error(&self.source, e)),
        }
        let mut report = RestoreReport {
            bytes_written: progress.done,
            gpt_relocated: Vec::new(),
        };
        for (i, t) in self.targets.iter().enumerate() {
            let crc = format!("{:08x}", crcs[i].clone().finalize());
            if t.maps.is_none() && crc != t.source.data_crc32 {
                return Err(EngineError::Damaged(format!(
                    "disk {i}: the data written has CRC32 {crc} but the manifest says {}; the image is inconsistent, restore from another copy",
                    t.source.data_crc32
                )));
            }
            let mut moved = false;
            if t.maps.is_none() && t.source.table.kind == "gpt" && t.disk.size() > t.source.size {
                let mut f = t.disk.file();
                relocate_gpt(&mut f, t.disk.logical_sector_size(), t.disk.size()).map_err(
                    |source| EngineError::Table {
                        disk: t.disk.path().display().to_string(),
                        source,
                    },
                )?;
                moved = true;
                sink.event(Event::Warning {
                    message: format!(
                        "{} is larger than the source disk: the backup GPT was moved to its end; the extra space is unallocated",
                        t.disk.path().display()
                    ),
                });
            }
            t.disk.sync()?;
            report.gpt_relocated.push(moved);
        }
        for t in &self.targets {
            let _ = t.disk.reread_partitions();
        }
        progress.emit();
        sink.event(Event::Done {
            operation: operation.into(),
            bytes_done: report.bytes_written,
            image_bytes,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        Ok(report)
    }
}

/// Puts one verified chunk onto its target: the whole disk at the same offsets, or only the
/// parts inside the restored partitions, moved to the target's partitions. Zero chunks are
/// zeroed cheaply. With `write` false only counts. Returns the bytes placed and the last
/// partition touched (restoreparts).
fn place_chunk(
    t: &Target,
    chunk: &EncodedChunk,
    data: &[u8],
    write: bool,
) -> Result<(u64, Option<u32>)> {
    let zero = chunk.header.codec == Codec::Zero;
    let put = |bytes: &[u8], at: u64| -> Result<()> {
        if !write {
            return Ok(());
        }
        if zero {
            t.disk.write_zeroes(at, bytes.len() as u64)?;
        } else {
            t.disk.write_all_at(bytes, at)?;
        }
        Ok(())
    };
    let (mut placed, mut part) = (0u64, None);
    let mut p = 0usize;
    for e in &chunk.extents {
        let bytes = &data[p..p + e.len as usize];
        p += e.len as usize;
        match &t.maps {
            None => {
                if e.end() > t.disk.size() {
                    return Err(EngineError::Damaged(format!(
                        "chunk {} writes past the end of {}",
                        chunk.header.seq,
                        t.disk.path().display()
                    )));
                }
                put(bytes, e.offset)?;
                placed += e.len;
            }
            Some(maps) => {
                for m in maps {
                    let s = e.offset.max(m.src_start);
                    let end = e.end().min(m.src_end);
                    if s < end {
                        let b = &bytes[(s - e.offset) as usize..(end - e.offset) as usize];
                        put(b, m.dst_start + (s - m.src_start))?;
                        placed += end - s;
                        part = Some(m.number);
                    }
                }
            }
        }
    }
    Ok((placed, part))
}

/// Reads the whole image once, checking every record checksum, the index and the tail,
/// before anything is written.
fn precheck(
    source: &ImageSource,
    image: &ImageName,
    repo: &str,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<()> {
    let started = Instant::now();
    let total: u64 = source.manifest().files.iter().map(|f| f.size).sum();
    sink.event(Event::Start {
        operation: "verify".into(),
        image: image.to_string(),
        repo: repo.into(),
        bytes_total: total,
        disks: Vec::new(),
    });
    let mut progress = Progress::new(sink, total);
    let mut r = StreamReader::new(source.reader()).map_err(|e| image_error(source, e))?;
    let manifest = source.manifest();
    if lifeboat_container::format::id_hex(&r.header().image_id) != manifest.image_id
        || r.header().chunk_size != manifest.chunk_size
    {
        return Err(EngineError::Damaged(format!(
            "image {image}: the container header (image id, chunk size) does not match manifest.json; nothing was written"
        )));
    }
    let mut last = 0;
    let mut disks = 0usize;
    while let Some(rec) = r.next_record().map_err(|e| image_error(source, e))? {
        if let Record::Disk { index, json } = &rec {
            disks += 1;
            let same = DiskRecord::from_json(json, 0)
                .ok()
                .zip(manifest.disks.get(*index as usize))
                .is_some_and(|(d, m)| crate::same_layout(&d, m));
            if !same {
                return Err(EngineError::Damaged(format!(
                    "image {image}: disk record {index} does not match manifest.json; the image is damaged, nothing was written"
                )));
            }
        }
        if let Record::Manifest(json) = &rec {
            let same = Manifest::from_json(json, 0).is_ok_and(|mut m| {
                m.files = manifest.files.clone();
                &m == manifest
            });
            if !same {
                return Err(EngineError::Damaged(format!(
                    "image {image}: manifest.json differs from the manifest inside the image; the image is damaged, nothing was written"
                )));
            }
        }
        progress.add(r.position() - last);
        last = r.position();
        if let Record::Chunk(c) = rec {
            r.recycle(c.payload);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled("; nothing was written"));
        }
    }
    if disks != manifest.disks.len() {
        return Err(EngineError::Damaged(format!(
            "image {image}: {disks} disk record(s) in the image, manifest.json lists {}; nothing was written",
            manifest.disks.len()
        )));
    }
    progress.emit();
    sink.event(Event::Done {
        operation: "verify".into(),
        bytes_done: progress.done,
        image_bytes: total,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(())
}
