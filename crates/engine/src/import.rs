//! Clonezilla images as a save source: [`plan_import`] turns one into a [`SavePlan`] whose
//! execution writes a lifeboat image (the `import` command), and a restore from a Clonezilla
//! image reads the same conversion as its image stream (`restore.rs`).
//!
//! Each saved disk becomes one disk record: its boot areas rebuilt where they lay
//! ([`DiskHead`]: MBR, the boot loader's gap, GPT copies, the EBR chain), its partition table
//! read back from them by the same parser a save uses, and each partition's content from its
//! image — partclone's used blocks (every checksum verified while reading), a raw `dd` image,
//! or for swap the header page `mkswap` would write with the saved UUID and label. NTFS's
//! backup boot sector, which partclone's bitmap leaves out, is written from the boot sector,
//! as `ntfsclone` and Windows keep it.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lifeboat_clonezilla::{
    swap_header, CloneImage, DiskHead, Limits, PartContent, PartImage, PartcloneReader,
};
use lifeboat_container::{
    DiskRecord, Identity, ImageKind, ImageWriter, Manifest, PartitionRecord, TableRecord, Tool,
    Totals, MANIFEST_FORMAT, MANIFEST_VERSION,
};
use lifeboat_fs::{Extent, ReadAt};
use lifeboat_parttable::read_layout;
use lifeboat_repo::{ImageName, Repository};

use crate::clonezilla::{cz_err, open_clonezilla};
use crate::error::{Aftermath, EngineError, Result};
use crate::event::{Event, EventSink, Progress};
use crate::save::{SaveOptions, SavePlan, Source, StreamError};

/// A bounded in-memory pipe: what the writer end writes, the reader end reads, in buffers
/// of up to 1 MiB, at most `depth` of them in flight. Dropping the reader makes every later
/// write fail (`BrokenPipe`); dropping the writer ends the reader's stream.
pub(crate) fn pipe(depth: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = std::sync::mpsc::sync_channel(depth);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(PIPE_BUF),
        },
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

const PIPE_BUF: usize = 1 << 20;

/// The writing end of [`pipe`].
pub(crate) struct PipeWriter {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_BUF));
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader has gone"))
    }
}

impl io::Write for PipeWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(PIPE_BUF - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == PIPE_BUF {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// The reading end of [`pipe`].
pub(crate) struct PipeReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Largest run of partclone blocks read at once.
const RUN_BYTES: usize = 4 << 20;

/// One saved disk of a Clonezilla image, ready to be streamed into an image.
pub(crate) struct CzSource {
    img: Arc<CloneImage>,
    image: String,
    head: Arc<DiskHead>,
    volumes: Vec<CzVolume>,
}

/// A partition of a [`CzSource`] with an image.
struct CzVolume {
    number: u32,
    start: u64,
    size: u64,
    part: PartImage,
    fs: String,
}

/// The rebuilt boot areas as a volume the partition table parser reads.
struct HeadAt(Arc<DiskHead>);

impl ReadAt for HeadAt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.size
    }
}

/// lifeboat's name of a filesystem Clonezilla named `file_fs` (from the image file's name)
/// and partclone `header_fs` (from its header).
fn fs_name(file_fs: &str, header_fs: &str) -> String {
    let f = file_fs.to_ascii_lowercase();
    match f.as_str() {
        "vfat" | "fat" | "fat12" | "fat16" | "fat32" => {
            let h = header_fs.to_ascii_lowercase();
            match h.as_str() {
                "fat12" | "fat16" | "fat32" => h,
                _ => "vfat".into(),
            }
        }
        _ => f,
    }
}

/// Where NTFS keeps its backup boot sector (offset in the volume, length), read from the
/// boot sector `boot`, when it lies inside a partition of `size` bytes.
fn ntfs_backup(boot: &[u8], size: u64) -> Option<(u64, u64)> {
    if boot.get(3..11)? != b"NTFS    " {
        return None;
    }
    let bps = u64::from(u16::from_le_bytes(boot.get(0x0b..0x0d)?.try_into().ok()?));
    let sectors = u64::from_le_bytes(boot.get(0x28..0x30)?.try_into().ok()?);
    if !(256..=4096).contains(&bps) || !bps.is_power_of_two() || (boot.len() as u64) < bps {
        return None;
    }
    let at = sectors.checked_mul(bps)?;
    (at.checked_add(bps)? <= size).then_some((at, bps))
}

/// Plans the import of the Clonezilla image `image` of `repo`: reads its lists, tables, boot
/// files and every partclone header and bitmap, and describes the lifeboat image it becomes
/// ([`SavePlan::disks`]). [`SavePlan::execute`] then writes it into a repository, reading
/// every partition image once and verifying partclone's checksums on the way; a damaged
/// source fails the import, which leaves no complete image behind.
pub fn plan_import(repo: &Repository, image: &str, opts: &SaveOptions) -> Result<SavePlan> {
    let img = Arc::new(open_clonezilla(repo, image)?);
    plan_from_clonezilla(img, image, opts, "import")
}

/// The Clonezilla image `image` of `repo` described as the lifeboat image its import would
/// make (its disk records; no files, totals or digest; `created` is `clonezilla`): for
/// frontends that choose targets from the disk records before they restore it.
pub fn clonezilla_manifest(repo: &Repository, image: &str) -> Result<Manifest> {
    let name = ImageName::new(image)?;
    let plan = plan_import(repo, image, &SaveOptions::new(name, Vec::new()))?;
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        image: image.to_string(),
        kind: if plan
            .disks()
            .iter()
            .all(|d| d.table.partitions.iter().all(|p| p.saved))
        {
            ImageKind::Disks
        } else {
            ImageKind::Parts
        },
        created: "clonezilla".into(),
        created_unix: 0,
        tool: Tool {
            name: "clonezilla".into(),
            version: String::new(),
        },
        host: String::new(),
        image_id: String::new(),
        chunk_size: 0,
        compression: String::new(),
        disks: plan.disks().to_vec(),
        totals: Totals::default(),
        files: Vec::new(),
        digest: None,
        sealed: None,
    })
}

/// [`plan_import`] of an opened image; `operation` names it in events.
pub(crate) fn plan_from_clonezilla(
    img: Arc<CloneImage>,
    image: &str,
    opts: &SaveOptions,
    operation: &'static str,
) -> Result<SavePlan> {
    let whole = img.names.iter().any(|n| n == "disk");
    let unplaced = |what: String| {
        EngineError::Mismatch(crate::Mismatch::Other(format!(
            "Clonezilla image {image}: {what}; lifeboat cannot tell where its data goes"
        )))
    };
    if img.disks.is_empty() {
        return Err(unplaced(
            "it holds no partition table (no <disk>-pt.sf file)".into(),
        ));
    }
    if let Some(p) = img.parts.iter().find(|p| {
        !img.disks
            .iter()
            .any(|d| p.disk.as_deref() == Some(d.name.as_str()))
    }) {
        return Err(unplaced(format!(
            "partition {} belongs to no disk whose table it saved",
            p.name
        )));
    }
    let mut records = Vec::new();
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut saved_numbers = Vec::new();
    for (index, d) in img.disks.iter().enumerate() {
        let head = Arc::new(DiskHead::build(&img, d).map_err(|e| cz_err(image, e))?);
        for n in &head.notes {
            warnings.push(format!("{image}: {n}"));
        }
        let layout = read_layout(&HeadAt(Arc::clone(&head)), head.sector_size).map_err(|e| {
            EngineError::Damaged(format!(
                "Clonezilla image {image}: the partition table of disk {} rebuilt from {}-pt.sf and its boot files cannot be read: {}",
                d.name,
                d.name,
                crate::chain_text(&e)
            ))
        })?;
        for w in &layout.warnings {
            warnings.push(format!("{image}, disk {}: {w}", d.name));
        }
        let mut partitions = Vec::new();
        let mut volumes = Vec::new();
        for p in &layout.partitions {
            // Swap partitions are not in `parts`: only their swappt-*.info tells of them.
            let swap = img
                .swap_part(&CloneImage::part_name(&d.name, p.number))
                .map_err(|e| cz_err(image, e))?;
            let part = img
                .parts
                .iter()
                .find(|x| x.disk.as_deref() == Some(d.name.as_str()) && x.number == Some(p.number))
                .or(swap.as_ref());
            let mut notes = Vec::new();
            let (mut filesystem, mut mode, mut block_size, mut used) =
                ("unknown".to_string(), "used-blocks", 0u32, 0u64);
            let (mut label, mut uuid) = (None, None);
            match part.map(|x| (x, &x.content)) {
                None if whole => notes.push(
                    "Clonezilla saved no image of this partition: nothing is written to it".into(),
                ),
                None => {}
                Some((x, PartContent::Partclone { fs })) => {
                    let r = img
                        .partclone(x, Limits::default())
                        .map_err(|e| cz_err(image, e))?;
                    let h = r.header();
                    if h.fs_bytes() > p.size {
                        return Err(EngineError::Damaged(format!(
                            "Clonezilla image {image}, file {}: the filesystem ({} bytes) is larger than partition {} ({} bytes)",
                            x.pieces.first().map_or("", |s| s.as_str()),
                            h.fs_bytes(),
                            x.name,
                            p.size
                        )));
                    }
                    filesystem = fs_name(fs, &h.fs);
                    block_size = h.block_size;
                    used = r.bitmap().used().saturating_mul(u64::from(h.block_size));
                    volumes.push(CzVolume {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        part: x.clone(),
                        fs: filesystem.clone(),
                    });
                }
                Some((x, PartContent::Raw)) => {
                    mode = "raw";
                    used = p.size;
                    notes.push("saved whole by Clonezilla (partclone.dd)".into());
                    volumes.push(CzVolume {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        part: x.clone(),
                        fs: filesystem.clone(),
                    });
                }
                Some((x, PartContent::Swap { uuid: u, label: l })) => {
                    filesystem = "swap".into();
                    used = 4096.min(p.size);
                    label = l.clone();
                    uuid = u.clone();
                    notes.push(
                        "Clonezilla kept only the swap area's UUID and label: its header is made as mkswap does".into(),
                    );
                    volumes.push(CzVolume {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                        part: x.clone(),
                        fs: filesystem.clone(),
                    });
                }
            }
            let saved = whole || part.is_some();
            if saved && !whole {
                saved_numbers.push(p.number);
            }
            partitions.push(PartitionRecord {
                number: p.number,
                start: p.start,
                size: p.size,
                kind: crate::inspect::partition_kind_name(Some(p.kind)).into(),
                type_code: p.type_code.clone(),
                type_name: p.type_name.clone(),
                name: p.name.clone(),
                guid: p.guid.clone(),
                bootable: p.bootable,
                saved,
                filesystem,
                mode: mode.into(),
                label,
                uuid,
                block_size,
                used_bytes: used,
                notes,
                files: None,
                volumes: Vec::new(),
                unallocated_bytes: None,
            });
        }
        if let Some(x) = img.parts.iter().find(|x| {
            x.disk.as_deref() == Some(d.name.as_str())
                && !layout.partitions.iter().any(|p| Some(p.number) == x.number)
        }) {
            return Err(unplaced(format!(
                "partition {} is not in the partition table of disk {}",
                x.name, d.name
            )));
        }
        for p in &partitions {
            for n in &p.notes {
                warnings.push(format!("{image}, {}{}: {n}", d.name, p.number));
            }
        }
        records.push(DiskRecord {
            index: index as u32,
            source: format!("/dev/{}", d.name),
            identity: Identity::default(),
            size: head.size,
            logical_sector_size: head.sector_size,
            physical_sector_size: head.sector_size,
            table: TableRecord {
                kind: crate::inspect::table_kind_name(layout.kind).into(),
                disk_id: layout.disk_id.clone(),
                partitions,
                warnings: layout.warnings.clone(),
            },
            boot_regions: if whole {
                crate::inspect::region_records(&layout)
            } else {
                Vec::new()
            },
            stored_bytes: 0,
            compressed_bytes: 0,
            chunks: 0,
            data_crc32: String::new(),
        });
        volumes.sort_by_key(|v| v.start);
        sources.push(Source::Clonezilla(CzSource {
            img: Arc::clone(&img),
            image: image.to_string(),
            head,
            volumes,
        }));
    }
    let mut opts = opts.clone();
    opts.disks = img
        .disks
        .iter()
        .map(|d| format!("/dev/{}", d.name).into())
        .collect();
    saved_numbers.dedup();
    opts.parts = saved_numbers;
    Ok(SavePlan::from_parts(
        opts, operation, sources, records, warnings,
    ))
}

/// Adds `e` (clipped to what was not written yet) through `fill`, mapping a failing fill to
/// the engine's error.
fn put<W: io::Write + Send + 'static>(
    writer: &mut ImageWriter<W>,
    e: Extent,
    last_end: &mut u64,
    cancel: &AtomicBool,
    fill: &mut dyn FnMut(&mut [u8], u64) -> io::Result<()>,
    source_err: &dyn Fn(u64, io::Error) -> EngineError,
) -> std::result::Result<(), StreamError> {
    let start = e.offset.max(*last_end);
    if e.end() <= start {
        return Ok(());
    }
    *last_end = e.end();
    writer
        .add_extent(Extent::new(start, e.end() - start), |buf, off| {
            if cancel.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
            }
            fill(buf, off)
        })
        .map_err(|err| crate::save::extent_error(err, cancel, source_err))
}

/// Adds `data` as the disk's bytes at `at` (clipped to what was not written yet).
fn put_bytes<W: io::Write + Send + 'static>(
    writer: &mut ImageWriter<W>,
    at: u64,
    data: &[u8],
    last_end: &mut u64,
    progress: &mut Progress<'_>,
    cancel: &AtomicBool,
    source_err: &dyn Fn(u64, io::Error) -> EngineError,
) -> std::result::Result<(), StreamError> {
    let mut fill = |out: &mut [u8], off: u64| {
        let i = (off - at) as usize;
        out.copy_from_slice(&data[i..i + out.len()]);
        progress.add(out.len() as u64);
        Ok(())
    };
    put(
        writer,
        Extent::new(at, data.len() as u64),
        last_end,
        cancel,
        &mut fill,
        source_err,
    )
}

impl CzSource {
    /// The error of a failed read at `offset` of the disk.
    fn read_err(&self, partition: Option<u32>) -> impl Fn(u64, io::Error) -> EngineError + '_ {
        move |offset, source| EngineError::SourceRead {
            disk: format!("{} (Clonezilla image {})", self.head.name, self.image),
            partition,
            offset,
            source,
        }
    }

    fn err(&self, e: lifeboat_clonezilla::Error) -> StreamError {
        StreamError::Engine(cz_err(&self.image, e))
    }

    /// Streams the disk's boot regions and partitions into `writer`, in disk order, reading
    /// each partition image once. Returns the bytes stored per partition.
    pub(crate) fn stream<W: io::Write + Send + 'static>(
        &self,
        rec: &DiskRecord,
        writer: &mut ImageWriter<W>,
        progress: &mut Progress<'_>,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> std::result::Result<Vec<(u32, u64)>, StreamError> {
        enum Item<'v> {
            Region(Extent),
            Volume(&'v CzVolume),
        }
        let mut items: Vec<(u64, Item)> = rec
            .boot_regions
            .iter()
            .map(|r| (r.offset, Item::Region(Extent::new(r.offset, r.len))))
            .collect();
        items.extend(self.volumes.iter().map(|v| (v.start, Item::Volume(v))));
        items.sort_by_key(|(o, _)| *o);
        let mut last_end = 0u64;
        let mut stored = Vec::new();
        for (_, item) in items {
            match item {
                Item::Region(e) => {
                    progress.partition = None;
                    let head = &self.head;
                    let mut fill = |buf: &mut [u8], off: u64| {
                        head.read_at(buf, off)?;
                        progress.add(buf.len() as u64);
                        Ok(())
                    };
                    let name = format!("{}-pt.sf", self.head.name);
                    put(
                        writer,
                        e,
                        &mut last_end,
                        cancel,
                        &mut fill,
                        &|offset, source| {
                            cz_err(
                                &self.image,
                                lifeboat_clonezilla::Error::Io {
                                    offset,
                                    what: "boot area",
                                    source,
                                }
                                .in_file(&name),
                            )
                        },
                    )?;
                }
                Item::Volume(v) => {
                    let rec_part = rec.table.partitions.iter().find(|p| p.number == v.number);
                    sink.event(Event::PartitionStart {
                        disk: progress.disk,
                        partition: v.number,
                        filesystem: v.fs.clone(),
                        mode: rec_part.map_or("used-blocks".into(), |p| p.mode.clone()),
                        bytes: rec_part.map_or(0, |p| p.used_bytes),
                    });
                    progress.partition = Some(v.number);
                    let before = progress.done;
                    match &v.part.content {
                        PartContent::Partclone { .. } => {
                            self.stream_partclone(v, writer, &mut last_end, progress, cancel)?
                        }
                        PartContent::Raw => {
                            self.stream_raw(v, writer, &mut last_end, progress, cancel)?
                        }
                        PartContent::Swap { uuid, label } => {
                            if let Some(h) = swap_header(v.size, uuid.as_deref(), label.as_deref())
                            {
                                put_bytes(
                                    writer,
                                    v.start,
                                    &h,
                                    &mut last_end,
                                    progress,
                                    cancel,
                                    &self.read_err(Some(v.number)),
                                )?;
                            }
                        }
                    }
                    let n = progress.done - before;
                    stored.push((v.number, n));
                    sink.event(Event::PartitionDone {
                        disk: progress.disk,
                        partition: v.number,
                        bytes: n,
                    });
                }
            }
        }
        Ok(stored)
    }

    fn stream_partclone<W: io::Write + Send + 'static>(
        &self,
        v: &CzVolume,
        writer: &mut ImageWriter<W>,
        last_end: &mut u64,
        progress: &mut Progress<'_>,
        cancel: &AtomicBool,
    ) -> std::result::Result<(), StreamError> {
        let first = v.part.pieces.first().cloned().unwrap_or_default();
        let mut r: PartcloneReader<_> = self
            .img
            .partclone(&v.part, Limits::default())
            .map_err(|e| self.err(e))?;
        let bs = u64::from(r.header().block_size);
        let end = v.start + v.size;
        let mut buf = Vec::new();
        let mut boot: Option<Vec<u8>> = None;
        while let Some(run) = r
            .read_run(&mut buf, RUN_BYTES)
            .map_err(|e| self.err(e.in_file(&first)))?
        {
            if cancel.load(Ordering::Relaxed) {
                return Err(StreamError::Engine(EngineError::Cancelled(
                    Aftermath::ImageIncomplete,
                )));
            }
            if v.fs == "ntfs" && run.first_block == 0 {
                boot = Some(buf[..buf.len().min(4096)].to_vec());
            }
            let s = v.start.saturating_add(run.first_block.saturating_mul(bs));
            let e = s.saturating_add(run.blocks.saturating_mul(bs)).min(end);
            if e <= s {
                continue;
            }
            put_bytes(
                writer,
                s,
                &buf[..(e - s) as usize],
                last_end,
                progress,
                cancel,
                &self.read_err(Some(v.number)),
            )?;
        }
        // partclone's bitmap leaves NTFS's backup boot sector out: write the boot sector
        // there again.
        if let Some((at, len)) = boot.as_deref().and_then(|b| ntfs_backup(b, v.size)) {
            let b = boot.unwrap_or_default();
            put_bytes(
                writer,
                v.start + at,
                &b[..len as usize],
                last_end,
                progress,
                cancel,
                &self.read_err(Some(v.number)),
            )?;
        }
        Ok(())
    }

    fn stream_raw<W: io::Write + Send + 'static>(
        &self,
        v: &CzVolume,
        writer: &mut ImageWriter<W>,
        last_end: &mut u64,
        progress: &mut Progress<'_>,
        cancel: &AtomicBool,
    ) -> std::result::Result<(), StreamError> {
        let first = v.part.pieces.first().cloned().unwrap_or_default();
        let (_, mut r) = self.img.open_part(&v.part).map_err(|e| self.err(e))?;
        let mut pos = 0u64;
        let mut fill = |out: &mut [u8], off: u64| -> io::Result<()> {
            let want = off - v.start;
            if want > pos {
                io::copy(&mut (&mut r).take(want - pos), &mut io::sink())?;
                pos = want;
            }
            r.read_exact(out).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the raw image ends before the end of its {}-byte partition",
                            v.size
                        ),
                    )
                } else {
                    e
                }
            })?;
            pos += out.len() as u64;
            progress.add(out.len() as u64);
            Ok(())
        };
        let image = self.image.clone();
        let file = first.clone();
        put(
            writer,
            Extent::new(v.start, v.size),
            last_end,
            cancel,
            &mut fill,
            &|offset, source| {
                cz_err(
                    &image,
                    lifeboat_clonezilla::Error::Io {
                        offset: offset - v.start,
                        what: "raw partition image",
                        source,
                    }
                    .in_file(&file),
                )
            },
        )?;
        let mut more = [0u8; 1];
        if r.read(&mut more).map_err(|source| {
            self.err(
                lifeboat_clonezilla::Error::Io {
                    offset: v.size,
                    what: "raw partition image",
                    source,
                }
                .in_file(&first),
            )
        })? > 0
        {
            return Err(StreamError::Engine(EngineError::Damaged(format!(
                "Clonezilla image {}, file {first}: the raw image is larger than partition {} ({} bytes)",
                self.image, v.part.name, v.size
            ))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntfs_backup_sector() {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        b[0x28..0x30].copy_from_slice(&2047u64.to_le_bytes());
        assert_eq!(ntfs_backup(&b, 2048 * 512), Some((2047 * 512, 512)));
        // Outside the partition: nothing.
        assert_eq!(ntfs_backup(&b, 2047 * 512), None);
        b[3] = b'X';
        assert_eq!(ntfs_backup(&b, 2048 * 512), None);
    }

    #[test]
    fn fat_names() {
        assert_eq!(fs_name("vfat", "FAT32"), "fat32");
        assert_eq!(fs_name("vfat", "FAT"), "vfat");
        assert_eq!(fs_name("ext4", "EXTFS"), "ext4");
    }
}
