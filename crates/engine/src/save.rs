//! savedisk and saveparts.

use crate::error::{Aftermath, EngineError, Result};
use crate::event::{Event, EventSink, Progress};
use crate::inspect::{describe_layout, open_source_as, open_volumes, read_table, OpenedVolume};
use crate::secret::Passphrase;
use lifeboat_blockdev::Disk;
use lifeboat_container::seal::{KdfParams, Keys, SealWriter};
use lifeboat_container::{
    format::id_hex, ContainerError, DiskRecord, ImageKind, ImageWriter, Manifest, Tool, Totals,
    WriterOptions, MANIFEST_FORMAT, MANIFEST_VERSION,
};
use lifeboat_fs::Extent;
use lifeboat_parttable::Layout;
use lifeboat_repo::{ImageName, Repository};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What to save.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    /// Name of the new image.
    pub image: ImageName,
    /// Source disks (block devices or whole-disk image files), in order.
    pub disks: Vec<PathBuf>,
    /// Partition numbers to save (saveparts); empty saves whole disks (savedisk).
    pub parts: Vec<u32>,
    /// Largest volume file, e.g. 4000 MiB for FAT32 sticks.
    pub split_size: Option<u64>,
    /// zstd level.
    pub level: i32,
    /// Compression threads.
    pub threads: usize,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Encrypt the image with a key derived from this passphrase (`docs/FORMAT.md` §16).
    pub encrypt: Option<Passphrase>,
    /// Argon2id cost of the key derivation of an encrypted image.
    pub kdf: KdfParams,
}

impl SaveOptions {
    /// Defaults for a whole-disk save of `disks` into `image`.
    pub fn new(image: ImageName, disks: Vec<PathBuf>) -> Self {
        let d = WriterOptions::default();
        SaveOptions {
            image,
            disks,
            parts: Vec::new(),
            split_size: None,
            level: d.level,
            threads: d.threads,
            chunk_size: d.chunk_size,
            encrypt: None,
            kdf: KdfParams::default(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A save whose checks passed: every source disk opened, its partition table read and each
/// volume's filesystem recognised and measured, its used-block stream kept open for
/// streaming. Nothing has been written yet; what will be
/// saved is told by [`SavePlan::disks`], [`SavePlan::warnings`] and [`SavePlan::bytes_total`].
/// [`SavePlan::execute`] writes it into a repository, [`SavePlan::execute_to_stream`] into a
/// byte stream.
pub struct SavePlan {
    opts: SaveOptions,
    operation: &'static str,
    sources: Vec<Source>,
    records: Vec<DiskRecord>,
    warnings: Vec<String>,
    total: u64,
    /// Image id and creation time, chosen by the first write: a plan written twice (a
    /// converted Clonezilla image, verified before a restore and then restored) writes the
    /// same container both times when its source reads the same.
    identity: Option<([u8; 16], SystemTime)>,
}

/// What one disk of the image is read from.
pub(crate) enum Source {
    /// A source disk with the used-block streams of its saved volumes, opened while
    /// planning (each scanner is opened once: its stream measured the volume for the plan
    /// and is then streamed by [`SavePlan::execute`]).
    Disk {
        disk: Arc<Disk>,
        volumes: Vec<OpenedVolume>,
    },
    /// A disk of a Clonezilla image (`import`, or a restore from one); streamed again each
    /// time the plan is written.
    Clonezilla(crate::import::CzSource),
}

/// Opens and describes every source disk and runs the checks that come before any write:
/// not mounted, not given twice, the requested partitions exist. Each partition table is
/// read and each volume's scanner opened once; the plan keeps the opened streams of the
/// saved volumes for [`SavePlan::execute`].
pub fn plan_save(opts: &SaveOptions) -> Result<SavePlan> {
    let operation = if opts.parts.is_empty() {
        "savedisk"
    } else {
        "saveparts"
    };
    if opts.disks.is_empty() {
        return Err(EngineError::Mismatch(crate::Mismatch::NoSource));
    }
    let mut disks = Vec::new();
    for path in &opts.disks {
        // Mounted, or stacked on (an active LV, dm-crypt mapping or md array, mounted or
        // not: its filesystem may change under the save); checked before the exclusive open
        // below, which the kernel refuses in these cases with a less telling error.
        let busy: Vec<String> = lifeboat_blockdev::in_use(path)?
            .into_iter()
            .filter(|u| {
                matches!(
                    u.kind,
                    lifeboat_blockdev::UsageKind::Mounted { .. }
                        | lifeboat_blockdev::UsageKind::HeldBy { .. }
                )
            })
            .map(|u| u.to_string())
            .collect();
        if !busy.is_empty() {
            return Err(EngineError::Refused(crate::Refusal::SourceMounted {
                disk: path.clone(),
                uses: busy,
            }));
        }
        // The exclusive claim keeps anyone from mounting it while the save reads it.
        let disk = open_source_as(path, lifeboat_blockdev::OpenMode::ReadExclusive)?;
        if disks.iter().any(|d: &Arc<Disk>| d.is_same_disk(&disk)) {
            return Err(EngineError::Mismatch(crate::Mismatch::Other(format!(
                "{} is given twice",
                path.display()
            ))));
        }
        disks.push(Arc::new(disk));
    }
    let saved = (!opts.parts.is_empty()).then_some(opts.parts.as_slice());
    let mut sources = Vec::new();
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    let layouts = disks
        .iter()
        .map(|d| read_table(d))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(&Arc<Disk>, &Layout)> = disks.iter().zip(&layouts).collect();
    let all_volumes = open_volumes(&pairs);
    for (i, ((disk, layout), mut volumes)) in
        disks.into_iter().zip(layouts).zip(all_volumes).enumerate()
    {
        let rec = describe_layout(&disk, &layout, &volumes, i as u32, saved);
        for n in &opts.parts {
            if !rec.table.partitions.iter().any(|p| p.number == *n) {
                return Err(EngineError::Mismatch(crate::Mismatch::Other(format!(
                    "{} has no partition {n} (it has: {})",
                    disk.path().display(),
                    rec.table
                        .partitions
                        .iter()
                        .map(|p| p.number.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))));
            }
        }
        for p in &rec.table.partitions {
            for note in &p.notes {
                warnings.push(format!(
                    "{} partition {}: {note}",
                    disk.path().display(),
                    p.number
                ));
            }
        }
        for w in &rec.table.warnings {
            warnings.push(format!("{}: {w}", disk.path().display()));
        }
        volumes.retain(|v| {
            rec.table
                .partitions
                .iter()
                .any(|p| p.number == v.plan.number && p.saved)
        });
        records.push(rec);
        sources.push(Source::Disk { disk, volumes });
    }
    Ok(SavePlan::from_parts(
        opts.clone(),
        operation,
        sources,
        records,
        warnings,
    ))
}

impl SavePlan {
    /// A plan of these sources and records.
    pub(crate) fn from_parts(
        opts: SaveOptions,
        operation: &'static str,
        sources: Vec<Source>,
        records: Vec<DiskRecord>,
        warnings: Vec<String>,
    ) -> SavePlan {
        let total: u64 = records.iter().map(crate::expected_bytes).sum();
        SavePlan {
            opts,
            operation,
            sources,
            records,
            warnings,
            total,
            identity: None,
        }
    }

    /// `savedisk`, `saveparts` or `import`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// What will be saved, one record per source disk in order: geometry, table, every
    /// partition with its filesystem, mode (`used-blocks` or `raw`), used bytes and whether
    /// it is saved, and the boot regions. These are the image's `DISK` records.
    pub fn disks(&self) -> &[DiskRecord] {
        &self.records
    }

    /// Notes for the operator (partitions copied raw and why, table warnings), each naming
    /// its disk; emitted as `Warning` events when the plan is executed.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Data bytes the save will read and store: the used bytes of the saved partitions plus
    /// the boot regions.
    pub fn bytes_total(&self) -> u64 {
        self.total
    }

    /// `Start`, then one `Warning` per partition note and table warning.
    fn announce(&self, repo: String, sink: &dyn EventSink) {
        sink.event(Event::Start {
            operation: self.operation.into(),
            image: self.opts.image.to_string(),
            repo,
            bytes_total: self.total,
            disks: self
                .opts
                .disks
                .iter()
                .map(|d| d.display().to_string())
                .collect(),
        });
        for message in &self.warnings {
            sink.event(Event::Warning {
                message: message.clone(),
            });
        }
    }

    /// Saves into a new image named `image` of the options in `repo`, streaming the volumes
    /// from the streams opened while planning. The manifest is
    /// committed last; on any error or cancellation the image stays incomplete.
    pub fn execute(
        mut self,
        repo: &Repository,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<Manifest> {
        let started = Instant::now();
        self.announce(repo.location(), sink);
        let image_sink = repo.create_image(&self.opts.image, self.opts.split_size)?;
        let location = format!("{}/{}", repo.location(), self.opts.image);
        let write_err = |source: ContainerError| EngineError::ImageWrite {
            image: location.clone(),
            source,
        };
        let written = self.write_image(image_sink, sink, cancel, &write_err)?;
        let public = match &written.keys {
            Some(k) => written.manifest.seal(k),
            None => written.manifest.clone(),
        };
        let committed = written.out.commit(&public)?;
        let image_bytes = committed.files.iter().map(|f| f.size).sum();
        let mut full = written.manifest;
        full.files = committed.files;
        sink.event(Event::Done {
            operation: self.operation.into(),
            bytes_done: written.bytes_done,
            image_bytes,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        Ok(full)
    }

    /// Writes the whole container into `out` (no `Start`/`Done` events; `Progress` and
    /// partition events go to `sink`) and returns its manifest. A Clonezilla plan can be
    /// written again: its sources are read anew each time, and the image id and creation
    /// time of the first write are kept.
    pub(crate) fn write_container<W: io::Write + Send + 'static>(
        &mut self,
        out: W,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<Manifest> {
        let write_err = |source: ContainerError| EngineError::StreamWrite { source };
        Ok(self.write_image(out, sink, cancel, &write_err)?.manifest)
    }

    /// The pre-check of a restore from a converted (Clonezilla) image: the whole
    /// conversion is run into `out` (nothing, or the restore's spool), reading and verifying
    /// every source file, with `verify` events. Returns the manifest the write pass must then
    /// see again.
    pub(crate) fn verify<W: io::Write + Send + 'static>(
        &mut self,
        out: W,
        image: &str,
        repo: &str,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<Manifest> {
        let started = Instant::now();
        sink.event(Event::Start {
            operation: "verify".into(),
            image: image.to_string(),
            repo: repo.into(),
            bytes_total: self.total,
            disks: Vec::new(),
        });
        let progress_only = |e: Event| {
            if matches!(e, Event::Progress { .. }) {
                sink.event(e)
            }
        };
        let m = self
            .write_container(out, &progress_only, cancel)
            .map_err(|e| match e {
                EngineError::Cancelled(_) => EngineError::Cancelled(Aftermath::NothingWritten),
                other => other,
            })?;
        sink.event(Event::Done {
            operation: "verify".into(),
            bytes_done: m.totals.stored_bytes,
            image_bytes: self.total,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        Ok(m)
    }

    /// Saves as one sequential image stream into `out`: see [`save_to_stream`].
    pub fn execute_to_stream<W: io::Write + Send + 'static>(
        mut self,
        out: W,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<(W, Manifest)> {
        let started = Instant::now();
        self.announce(STREAM_OUT.into(), sink);
        let write_err = |source: ContainerError| EngineError::StreamWrite { source };
        let written = self
            .write_image(out, sink, cancel, &write_err)
            .map_err(|e| match e {
                EngineError::Cancelled(_) => EngineError::Cancelled(Aftermath::StreamCutOff),
                other => other,
            })?;
        sink.event(Event::Done {
            operation: self.operation.into(),
            bytes_done: written.bytes_done,
            image_bytes: written.stream_bytes,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        Ok((written.out, written.manifest))
    }
}

/// Saves disks (or some of their partitions) into a new image in `repo`: [`plan_save`]
/// then [`SavePlan::execute`]. The manifest is committed last; on any error or
/// cancellation the image stays incomplete.
pub fn save(
    repo: &Repository,
    opts: &SaveOptions,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<Manifest> {
    plan_save(opts)?.execute(repo, sink, cancel)
}

/// Saves disks (or some of their partitions) as one sequential image stream into `out`
/// (standard output, a pipe, a socket): [`plan_save`] then [`SavePlan::execute_to_stream`].
/// The stream holds exactly the container bytes an image in a repository holds, ending with
/// its manifest. Images of two or more disks start with the disk list record, so that a
/// restore from the stream can check every target before its first write.
/// `opts.split_size` does not apply. Returns `out` (flushed) and the manifest (without a
/// file list). A stream cut off by an error or cancellation has no tail: every reader
/// refuses it as truncated.
pub fn save_to_stream<W: io::Write + Send + 'static>(
    out: W,
    opts: &SaveOptions,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<(W, Manifest)> {
    plan_save(opts)?.execute_to_stream(out, sink, cancel)
}

/// Where a stream save goes, for events and messages.
pub(crate) const STREAM_OUT: &str = "- (standard output)";

/// A container written to its end.
struct Written<W> {
    out: W,
    /// The full manifest (an encrypted image's `manifest.json` gets its sealed form).
    manifest: Manifest,
    keys: Option<Arc<Keys>>,
    bytes_done: u64,
    stream_bytes: u64,
}

impl SavePlan {
    /// Writes the whole container of the planned disks into `out`: header (and disk list for
    /// two or more disks), each disk's boot regions and partitions, index, manifest, tail.
    fn write_image<W: io::Write + Send + 'static>(
        &mut self,
        out: W,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
        write_err: &dyn Fn(ContainerError) -> EngineError,
    ) -> Result<Written<W>> {
        let records = &self.records;
        let (image_id, now) = match self.identity {
            Some(x) => x,
            None => {
                let mut id = [0u8; 16];
                getrandom::fill(&mut id).map_err(|e| {
                    EngineError::Refused(crate::Refusal::NoRandomness {
                        reason: e.to_string(),
                    })
                })?;
                // Whole seconds: the manifest keeps no more.
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                (id, UNIX_EPOCH + std::time::Duration::from_secs(secs))
            }
        };
        self.identity = Some((image_id, now));
        let created_unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let keys = match &self.opts.encrypt {
            Some(p) => Some(Arc::new(
                Keys::create(p.bytes(), image_id, self.opts.kdf).map_err(write_err)?,
            )),
            None => None,
        };
        let out = match &keys {
            Some(k) => MaybeSealed::Sealed(
                SealWriter::new(out, Arc::clone(k))
                    .map_err(|source| write_err(ContainerError::Io { pos: 0, source }))?,
            ),
            None => MaybeSealed::Plain(out),
        };
        let wopts = WriterOptions {
            chunk_size: self.opts.chunk_size,
            level: self.opts.level,
            threads: self.opts.threads,
            image_id,
            created_unix,
        };
        let mut writer = if records.len() > 1 {
            let list = DiskRecord::list_to_json(records);
            ImageWriter::with_disk_list(out, wopts, records.len() as u32, list)
        } else {
            ImageWriter::new(out, wopts)
        }
        .map_err(write_err)?;
        let mut progress = Progress::new(sink, self.total);
        let mut stored_per_part: Vec<Vec<(u32, u64)>> = Vec::new();
        for (i, src) in self.sources.iter_mut().enumerate() {
            progress.disk = i as u32;
            let rec = &records[i];
            writer
                .begin_disk(i as u32, rec.to_json())
                .map_err(write_err)?;
            let streamed = match src {
                Source::Disk { disk, volumes } => {
                    stream_disk(disk, volumes, rec, &mut writer, &mut progress, sink, cancel)
                }
                Source::Clonezilla(cz) => cz.stream(rec, &mut writer, &mut progress, sink, cancel),
            };
            let stored = streamed.map_err(|e| match e {
                StreamError::Engine(e) => e,
                StreamError::Container(e) => write_err(e),
            })?;
            stored_per_part.push(stored);
        }
        progress.emit();
        let manifest_base = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            image: self.opts.image.to_string(),
            kind: if self.opts.parts.is_empty() {
                ImageKind::Disks
            } else {
                ImageKind::Parts
            },
            created: humantime::format_rfc3339_seconds(now).to_string(),
            created_unix,
            tool: Tool {
                name: "lifeboat".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            host: hostname(),
            image_id: id_hex(&image_id),
            chunk_size: self.opts.chunk_size,
            compression: match self.opts.level {
                0 => "stored".into(),
                l => format!("zstd-{l}"),
            },
            disks: Vec::new(),
            totals: Totals::default(),
            files: Vec::new(),
            digest: None,
            sealed: None,
        };
        let mut final_manifest = None;
        let (out, summary) = writer
            .finish(|s| {
                let mut m = manifest_base.clone();
                m.disks = records.clone();
                for (i, d) in m.disks.iter_mut().enumerate() {
                    let t = s.disks.get(&(i as u32)).cloned().unwrap_or_default();
                    d.stored_bytes = t.data_bytes;
                    d.compressed_bytes = t.payload_bytes;
                    d.chunks = t.chunks;
                    d.data_crc32 = format!("{:08x}", t.data_crc32);
                    for p in d.table.partitions.iter_mut() {
                        if let Some((_, n)) =
                            stored_per_part[i].iter().find(|(k, _)| *k == p.number)
                        {
                            p.used_bytes = *n;
                        }
                    }
                }
                m.totals = Totals {
                    stored_bytes: s.data_bytes,
                    compressed_bytes: s.disks.values().map(|t| t.payload_bytes).sum(),
                    chunks: s.chunks,
                    container_bytes_before_manifest: s.bytes_before_manifest,
                };
                m.digest = Some(s.digest.clone());
                let json = m.to_json();
                final_manifest = Some(m);
                Ok(json)
            })
            .map_err(write_err)?;
        let stream_bytes = match &out {
            MaybeSealed::Sealed(_) => lifeboat_container::seal::sealed_len(
                summary.total_bytes,
                keys.as_ref().map_or(0, |k| k.header().segment_size),
            ),
            MaybeSealed::Plain(_) => summary.total_bytes,
        };
        let out = out.finish().map_err(|source| {
            write_err(ContainerError::Io {
                pos: summary.total_bytes,
                source,
            })
        })?;
        Ok(Written {
            out,
            manifest: final_manifest.expect("manifest was built"),
            keys,
            bytes_done: progress.done,
            stream_bytes,
        })
    }
}

/// The container stream as written: plain, or sealed (encrypted image).
enum MaybeSealed<W: io::Write> {
    Plain(W),
    Sealed(SealWriter<W>),
}

impl<W: io::Write> MaybeSealed<W> {
    /// Seals the last segment of a sealed stream; returns the inner writer.
    fn finish(self) -> io::Result<W> {
        match self {
            MaybeSealed::Plain(w) => Ok(w),
            MaybeSealed::Sealed(s) => s.finish(),
        }
    }
}

impl<W: io::Write> io::Write for MaybeSealed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeSealed::Plain(w) => w.write(buf),
            MaybeSealed::Sealed(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeSealed::Plain(w) => w.flush(),
            MaybeSealed::Sealed(s) => s.flush(),
        }
    }
}

/// Why streaming a disk into the writer stopped.
pub(crate) enum StreamError {
    Engine(EngineError),
    Container(ContainerError),
}

/// Streams one disk's boot regions and saved partitions into the writer, in disk order.
/// Returns the bytes stored per partition.
fn stream_disk<W: io::Write + Send + 'static>(
    disk: &Disk,
    volumes: &mut [OpenedVolume],
    rec: &DiskRecord,
    writer: &mut ImageWriter<W>,
    progress: &mut Progress<'_>,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> std::result::Result<Vec<(u32, u64)>, StreamError> {
    enum Item<'v> {
        Region(Extent),
        Part(&'v mut OpenedVolume),
    }
    let mut items: Vec<(u64, Item)> = rec
        .boot_regions
        .iter()
        .map(|r| (r.offset, Item::Region(Extent::new(r.offset, r.len))))
        .collect();
    for v in volumes.iter_mut() {
        items.push((v.plan.start, Item::Part(v)));
    }
    items.sort_by_key(|(o, _)| *o);
    let mut last_end = 0u64;
    let mut stored = Vec::new();
    let path = disk.path().display().to_string();
    for (_, item) in items {
        match item {
            Item::Region(e) => {
                progress.partition = None;
                add(
                    disk,
                    &path,
                    None,
                    e,
                    &mut last_end,
                    writer,
                    progress,
                    cancel,
                )?;
            }
            Item::Part(v) => {
                let (number, start, size) = (v.plan.number, v.plan.start, v.plan.size);
                let (stream, raw) = (&mut v.stream, v.raw);
                let info = stream.info().clone();
                sink.event(Event::PartitionStart {
                    disk: progress.disk,
                    partition: number,
                    filesystem: info.fs_type.clone(),
                    mode: if raw { "raw" } else { "used-blocks" }.into(),
                    bytes: info.used_bytes,
                });
                progress.partition = Some(number);
                let before = progress.done;
                loop {
                    let next = stream.next_extent().map_err(|e| {
                        StreamError::Engine(EngineError::SourceRead {
                            disk: path.clone(),
                            partition: Some(number),
                            offset: start,
                            source: io::Error::other(format!(
                                "{} scanner failed while streaming: {}",
                                info.fs_type,
                                crate::chain_text(&e)
                            )),
                        })
                    })?;
                    let Some(e) = next else { break };
                    let s = start.saturating_add(e.offset).min(start + size);
                    let end = start.saturating_add(e.end()).min(start + size);
                    if end > s {
                        add(
                            disk,
                            &path,
                            Some(number),
                            Extent::new(s, end - s),
                            &mut last_end,
                            writer,
                            progress,
                            cancel,
                        )?;
                    }
                }
                let n = progress.done - before;
                stored.push((number, n));
                sink.event(Event::PartitionDone {
                    disk: progress.disk,
                    partition: number,
                    bytes: n,
                });
            }
        }
    }
    Ok(stored)
}

#[allow(clippy::too_many_arguments)]
fn add<W: io::Write + Send + 'static>(
    disk: &Disk,
    path: &str,
    partition: Option<u32>,
    e: Extent,
    last_end: &mut u64,
    writer: &mut ImageWriter<W>,
    progress: &mut Progress<'_>,
    cancel: &AtomicBool,
) -> std::result::Result<(), StreamError> {
    let start = e.offset.max(*last_end);
    let end = e.end().min(disk.size());
    if end <= start {
        return Ok(());
    }
    *last_end = end;
    writer
        .add_extent(Extent::new(start, end - start), |buf, off| {
            if cancel.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
            }
            // A hole of a sparse image file reads as zeros: no need to read it.
            if disk.is_hole(off, buf.len() as u64) {
                buf.fill(0);
            } else {
                disk.read_exact_at(buf, off).map_err(io::Error::other)?;
            }
            progress.add(buf.len() as u64);
            Ok(())
        })
        .map_err(|e| {
            extent_error(e, cancel, &|offset, source| EngineError::SourceRead {
                disk: path.to_string(),
                partition,
                offset,
                source,
            })
        })
}

/// What a failed [`ImageWriter::add_extent`] means: a cancellation, a source that could not
/// be read at a disk offset (`source_err` words it), or the writer's own failure.
pub(crate) fn extent_error(
    e: ContainerError,
    cancel: &AtomicBool,
    source_err: &dyn Fn(u64, io::Error) -> EngineError,
) -> StreamError {
    match e {
        ContainerError::Source { .. } if cancel.load(Ordering::Relaxed) => {
            StreamError::Engine(EngineError::Cancelled(Aftermath::ImageIncomplete))
        }
        ContainerError::Source { offset, source } => {
            StreamError::Engine(source_err(offset, source))
        }
        other => StreamError::Container(other),
    }
}
