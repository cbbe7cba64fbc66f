//! restoredisk and restoreparts: safety checks first, then the verified write.

use crate::error::{Aftermath, EngineError, Mismatch, Refusal, Result};
use crate::event::{Event, EventSink, Progress};
use crate::image_error;
use crate::plan::{self, DiskPlan, Grow, Seg, TableChange};
use lifeboat_blockdev::{disks_holding_path, Disk, OpenMode};
use lifeboat_container::format::Codec;
use lifeboat_container::{
    decode_parallel_with, ContainerError, DecodeError, Decoded, DiskRecord, EncodedChunk,
    ImageKind, Manifest, PartitionRecord, Record, StreamReader,
};
use lifeboat_parttable::{read_layout, relocate_gpt, rewrite_gpt, rewrite_mbr, TableKind};
use lifeboat_repo::{ImageName, ImageSource, Repository};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// What to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The image. Required for [`plan_restore`]; for [`plan_restore_stream`] optional: when
    /// given, the manifest at the end of the stream must name this image.
    pub image: Option<ImageName>,
    /// Target disks, one per disk of the image, in the image's order.
    pub disks: Vec<PathBuf>,
    /// Partition numbers to restore (restoreparts); empty restores whole disks.
    pub parts: Vec<u32>,
    /// Before the first write, read the whole image once and verify every record checksum
    /// (chunk headers, extent tables and payloads, index, tail) and that each disk record
    /// matches the manifest (default true). Decompressed data is verified against its CRC
    /// while writing in any case. A stream can be read only once: there this does not apply.
    pub precheck: bool,
    /// Decompression threads.
    pub threads: usize,
    /// How partitions use a larger target (restoredisk).
    pub grow: Grow,
    /// Plan only: targets are opened read-only and [`RestorePlan::execute`] is not to be
    /// called; [`RestorePlan::plan_event`] tells what a restore would do.
    pub dry_run: bool,
    /// Restore only this disk of a multi-disk image (onto the one target given).
    pub from_disk: Option<u32>,
    /// Where the pre-check's reads are kept for the write pass (see [`crate::SpoolOptions`]).
    pub spool: crate::SpoolOptions,
    /// The passphrase of an encrypted image, asked only when the image is encrypted (a
    /// wrong one is refused before anything is written).
    pub passphrase: crate::PassphraseSource,
    /// The image digest the operator noted after the save (64 hex digits): the pre-check
    /// recomputes the image digest from the data and nothing is written unless it is this
    /// one. Needs the pre-check of a repository image (refused with `precheck` off, for a
    /// stream and for a Clonezilla image). Without it the pre-check still compares the
    /// digest with the manifest's.
    pub digest: Option<String>,
}

impl RestoreOptions {
    /// Defaults for a whole-disk restore.
    pub fn new(image: ImageName, disks: Vec<PathBuf>) -> Self {
        let mut o = Self::from_stream(disks);
        o.image = Some(image);
        o
    }

    /// Defaults for a whole-disk restore from an image stream (no image name needed).
    pub fn from_stream(disks: Vec<PathBuf>) -> Self {
        RestoreOptions {
            image: None,
            disks,
            parts: Vec::new(),
            precheck: true,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            grow: Grow::None,
            dry_run: false,
            from_disk: None,
            spool: crate::SpoolOptions::default(),
            passphrase: crate::PassphraseSource::none(),
            digest: None,
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
    /// Index of its disk in the image.
    image_disk: u32,
    /// What will happen to it.
    plan: DiskPlan,
    /// restoredisk onto a changed layout: where the data goes.
    segs: Option<Vec<Seg>>,
    /// The table change after the data.
    change: Option<TableChange>,
}

impl Target {
    /// What the restore will do to this target.
    pub fn plan(&self) -> &DiskPlan {
        &self.plan
    }

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

/// Where a restore reads the image from.
enum Input {
    /// A complete image of a repository; its manifest is known before the first write.
    Repo {
        source: ImageSource,
        repo: String,
        /// A network repository (no local root): the default memory spool applies.
        network: bool,
    },
    /// A stream, read once: its disk records were read while planning (the first `DISK`
    /// record, when there is no disk list, is kept in `first_disk` for the write pass); its
    /// manifest comes at its end.
    Stream {
        reader: StreamReader<Box<dyn Read + Send>>,
        first_disk: Option<(u32, Vec<u8>)>,
    },
    /// A Clonezilla image directory of a repository, converted on the fly into an image
    /// stream ([`crate::import`]): read once to verify it (the pre-check), then again to
    /// write it.
    Clonezilla {
        conv: Box<crate::SavePlan>,
        repo: String,
        /// Bytes of the image directory's files.
        image_bytes: u64,
    },
}

/// A restore whose safety checks passed; nothing has been written yet.
pub struct RestorePlan {
    /// Disks in the image (with `from_disk`, more than targets).
    image_disks: usize,
    input: Input,
    targets: Vec<Target>,
    opts: RestoreOptions,
}

/// Where a stream restore reads from, for events and messages.
const STREAM_IN: &str = "- (standard input)";

/// Checks everything that can be checked before writing: the image is complete, each target
/// exists, is not mounted or otherwise in use, does not hold the repository, has the source's
/// sector size and is large enough (or, for restoreparts, has partitions large enough).
/// Targets are opened exclusively so that nothing mounts them meanwhile.
pub fn plan_restore(repo: &Repository, opts: &RestoreOptions) -> Result<RestorePlan> {
    let name = opts.image.as_ref().ok_or_else(|| {
        EngineError::Mismatch(Mismatch::Other(
            "no image name given; say which image to restore".into(),
        ))
    })?;
    if crate::clonezilla::is_clonezilla(repo, name.as_str()) {
        if opts.digest.is_some() {
            return Err(EngineError::Mismatch(Mismatch::DigestUnprovable {
                why: crate::DigestUnprovable::Clonezilla,
            }));
        }
        return plan_restore_clonezilla(repo, name, opts);
    }
    if opts.digest.is_some() && !opts.precheck {
        return Err(EngineError::Mismatch(Mismatch::DigestUnprovable {
            why: crate::DigestUnprovable::NoPrecheck,
        }));
    }
    let source = crate::secret::open_image(repo, name, &opts.passphrase)?;
    let m = source.manifest().clone();
    if opts.parts.is_empty() && m.kind == ImageKind::Parts {
        return Err(EngineError::Mismatch(Mismatch::PartsImage {
            image: Some(name.to_string()),
        }));
    }
    let wanted = chosen_disks(&m.disks, opts, Some(name))?;
    let guard = repo_guard(repo, name)?;
    crate::spool::refuse_on_targets(&opts.spool, &opts.disks)?;
    // Reading an LVM PV's metadata from the image, when its partition must shrink.
    let reader = std::sync::OnceLock::new();
    let pv_limit = |disk: u32, p: &PartitionRecord| -> Option<u64> {
        let r = reader
            .get_or_init(|| crate::reader::ImageReader::open(repo, name, &opts.passphrase).ok())
            .as_ref()?;
        let view = ImagePart {
            reader: r,
            disk,
            start: p.start,
            len: p.size,
        };
        match lifeboat_volume::lvm::pv_shrink_limit(&view) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(partition = p.number, "the LVM PV's metadata: {e}");
                None
            }
        }
    };
    let targets = plan_targets(&wanted, opts, &guard, &pv_limit)?;
    Ok(RestorePlan {
        image_disks: m.disks.len(),
        input: Input::Repo {
            source,
            repo: repo.location(),
            network: repo.backend().local_root().is_none(),
        },
        targets,
        opts: opts.clone(),
    })
}

/// What a restore from image `name` of `repo` must not write to: the disks holding a local
/// repository and the image directory.
fn repo_guard(repo: &Repository, name: &ImageName) -> Result<Guard<'static>> {
    let repo_disks = match repo.backend().local_root() {
        Some(root) => disks_holding_path(root)?,
        None => Vec::new(),
    };
    let image_dir = repo
        .backend()
        .local_root()
        .and_then(|r| r.join(name.as_str()).canonicalize().ok());
    let location = repo.location();
    Ok(Guard {
        disks: repo_disks,
        holder: Some(Box::new(move |disk| Refusal::HoldsRepository {
            disk,
            repo: location.clone(),
        })),
        path: image_dir,
        path_is_dir: true,
    })
}

/// [`plan_restore`] of a Clonezilla image directory: the image is converted as `import`
/// would convert it (disk records from its tables and boot files, partition data from its
/// partclone, raw and swap images), and every check of a restore runs on that description.
fn plan_restore_clonezilla(
    repo: &Repository,
    name: &ImageName,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let img = std::sync::Arc::new(crate::clonezilla::open_clonezilla(repo, name.as_str())?);
    let mut conv_opts = crate::SaveOptions::new(name.clone(), Vec::new());
    // Decoded again at once by the write pass: stored, not compressed.
    conv_opts.level = 0;
    conv_opts.threads = opts.threads.clamp(1, 2);
    let parts_image = !img.names.iter().any(|n| n == "disk");
    let image_bytes = img
        .names
        .iter()
        .filter_map(|n| img.files().len(n).ok())
        .sum();
    let conv = crate::import::plan_from_clonezilla(
        std::sync::Arc::clone(&img),
        name.as_str(),
        &conv_opts,
        "convert",
    )?;
    if opts.parts.is_empty() && parts_image {
        return Err(EngineError::Mismatch(Mismatch::PartsImage {
            image: Some(name.to_string()),
        }));
    }
    let wanted = chosen_disks(conv.disks(), opts, Some(name))?;
    let guard = repo_guard(repo, name)?;
    let targets = plan_targets(&wanted, opts, &guard, &|_, _| None)?;
    Ok(RestorePlan {
        image_disks: conv.disks().len(),
        input: Input::Clonezilla {
            conv: Box::new(conv),
            repo: repo.location(),
            image_bytes,
        },
        targets,
        opts: opts.clone(),
    })
}

/// Plans a restore from an image stream (standard input, a pipe), running every safety
/// check of [`plan_restore`] before anything is written. The disks are known from the start
/// of the stream: the disk list record of an image of two or more disks, or the first
/// `DISK` record of a single-disk image (a stream without a disk list — written before
/// format 1.1 — is accepted for one target only). Whether the image is `parts` is told by
/// its disk records (a `disks` image saves every partition and the boot regions). What
/// only the end of the stream carries — the manifest, the per-disk data CRC32s — is checked
/// when it arrives, after the data was written.
///
/// `stream_file` is the file the stream is read from, if it is one (e.g. standard input
/// redirected from a file): the disks holding it, and the file itself, are refused as
/// targets.
pub fn plan_restore_stream<R: Read + Send + 'static>(
    reader: R,
    stream_file: Option<&Path>,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let nothing = |e: ContainerError| stream_damaged(e, false);
    if opts.digest.is_some() {
        return Err(EngineError::Mismatch(Mismatch::DigestUnprovable {
            why: crate::DigestUnprovable::Stream,
        }));
    }
    let plain = crate::secret::open_stream(reader, &opts.passphrase)?;
    let mut r = StreamReader::new(plain).map_err(nothing)?;
    let unreadable = |what: String| {
        EngineError::Damaged(format!(
            "the image stream is damaged: {what}; nothing was written"
        ))
    };
    let (records, first_disk) = match r.next_record().map_err(nothing)? {
        Some(Record::DiskList { disks, json }) => {
            let list = DiskRecord::list_from_json(&json, disks, 0).map_err(|e| {
                unreadable(format!(
                    "its disk list is unreadable: {}",
                    crate::chain_text(&e)
                ))
            })?;
            (list, None)
        }
        Some(Record::Disk { index, json }) => {
            let rec = DiskRecord::from_json(&json, 0).map_err(|e| {
                unreadable(format!(
                    "its disk record {index} is unreadable: {}",
                    crate::chain_text(&e)
                ))
            })?;
            if opts.disks.len() > 1 {
                return Err(EngineError::Mismatch(Mismatch::StreamWithoutDiskList {
                    targets: opts.disks.len(),
                }));
            }
            (vec![rec], Some((index, json)))
        }
        _ => {
            return Err(unreadable(
                "it does not start with a disk description".into(),
            ))
        }
    };
    let parts_image = records.iter().any(|d| {
        d.table.partitions.iter().any(|p| !p.saved)
            || (d.boot_regions.is_empty() && d.table.kind != "none")
    });
    if opts.parts.is_empty() && parts_image {
        return Err(EngineError::Mismatch(Mismatch::PartsImage { image: None }));
    }
    let wanted = chosen_disks(&records, opts, None)?;
    let guard = match stream_file {
        Some(f) => Guard {
            disks: disks_holding_path(f)?,
            holder: Some(Box::new(move |disk| Refusal::HoldsStream {
                disk,
                file: f.to_path_buf(),
            })),
            path: f.canonicalize().ok(),
            path_is_dir: false,
        },
        None => Guard {
            disks: Vec::new(),
            holder: None,
            path: None,
            path_is_dir: false,
        },
    };
    // A stream cannot be read ahead: an LVM PV that does not fit is refused.
    let targets = plan_targets(&wanted, opts, &guard, &|_, _| None)?;
    Ok(RestorePlan {
        image_disks: records.len(),
        input: Input::Stream {
            reader: r,
            first_disk,
        },
        targets,
        opts: opts.clone(),
    })
}

/// What a target must not be: a disk holding the image's origin, or the origin itself.
struct Guard<'a> {
    disks: Vec<lifeboat_blockdev::DiskRef>,
    /// The refusal of a target among `disks`.
    holder: Option<Box<dyn Fn(PathBuf) -> Refusal + 'a>>,
    /// The image directory (anything inside it is refused) or the stream's file.
    path: Option<PathBuf>,
    path_is_dir: bool,
}

/// The per-target checks shared by repository and stream restores: not in use, opened
/// exclusively, not holding the image, not given twice, same sector size, large enough.
fn plan_targets(
    records: &[(u32, DiskRecord)],
    opts: &RestoreOptions,
    guard: &Guard<'_>,
    pv_limit: &dyn Fn(u32, &PartitionRecord) -> Option<u64>,
) -> Result<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::new();
    for (path, (index, rec)) in opts.disks.iter().zip(records) {
        let disk_path = || path.to_path_buf();
        if let Some(m) = lifeboat_blockdev::multipath_path_of(path)? {
            if let (Some(map), lifeboat_blockdev::Multipath::Path { wwid, .. }) =
                (m.map_device(), &m)
            {
                return Err(EngineError::Refused(Refusal::MultipathPath {
                    disk: disk_path(),
                    map,
                    wwid: wwid.clone(),
                }));
            }
        }
        let usage = lifeboat_blockdev::in_use(path)?;
        if !usage.is_empty() {
            return Err(EngineError::Refused(Refusal::TargetInUse {
                disk: disk_path(),
                uses: usage.iter().map(|u| u.to_string()).collect(),
            }));
        }
        let mode = if opts.dry_run {
            OpenMode::Read
        } else {
            OpenMode::ReadWriteExclusive
        };
        let mut disk = Disk::open(path, mode)?;
        if !disk.is_block_device() && disk.logical_sector_size() != rec.logical_sector_size {
            // An image file takes the sector size of the disk it will hold.
            disk = disk.with_logical_sector_size(rec.logical_sector_size)?;
        }
        if let Some(holder) = &guard.holder {
            if disk.is_one_of(&guard.disks) {
                return Err(EngineError::Refused(holder(disk_path())));
            }
        }
        if let (Some(origin), Ok(me)) = (&guard.path, path.canonicalize()) {
            if guard.path_is_dir && me.starts_with(origin) {
                return Err(EngineError::Refused(Refusal::ImageFile {
                    disk: disk_path(),
                }));
            }
            if !guard.path_is_dir && &me == origin {
                return Err(EngineError::Refused(Refusal::StreamFile {
                    disk: disk_path(),
                }));
            }
        }
        if targets.iter().any(|t| t.disk.is_same_disk(&disk)) {
            return Err(EngineError::Refused(Refusal::GivenTwice {
                disk: disk_path(),
            }));
        }
        if rec.table.kind != "none" && disk.logical_sector_size() != rec.logical_sector_size {
            return Err(EngineError::Refused(Refusal::SectorSize {
                disk: disk_path(),
                target: disk.logical_sector_size(),
                image: rec.logical_sector_size,
            }));
        }
        let id = plan::target_identity(&disk);
        let (maps, layout) = if opts.parts.is_empty() {
            let l = plan::whole_disk(*index, rec, path, id, opts.grow, &|p| pv_limit(*index, p))
                .map_err(EngineError::Refused)?;
            (None, l)
        } else {
            let maps = map_parts(path, &disk, rec, &opts.parts).map_err(EngineError::Refused)?;
            let pairs: Vec<(u32, u64)> = maps.iter().map(|m| (m.number, m.dst_start)).collect();
            let p = plan::parts_plan(*index, rec, path, id, &pairs);
            (
                Some(maps),
                plan::Layout {
                    plan: p,
                    segs: None,
                    change: None,
                },
            )
        };
        targets.push(Target {
            disk,
            source: rec.clone(),
            maps,
            image_disk: *index,
            plan: layout.plan,
            segs: layout.segs,
            change: layout.change,
        });
    }
    Ok(targets)
}

/// One partition of a disk of an image, read through its index (bytes the image did not
/// store read as zeros).
struct ImagePart<'a> {
    reader: &'a crate::reader::ImageReader,
    disk: u32,
    start: u64,
    len: u64,
}

impl lifeboat_fs::ReadAt for ImagePart<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset.saturating_add(buf.len() as u64) > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "past the partition's end",
            ));
        }
        self.reader
            .read_at(self.disk, self.start + offset, buf)
            .map_err(std::io::Error::other)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// The disks of the image to restore (all, or `from_disk` alone), checked against the number
/// of targets given; `image` names the image in the mismatch.
fn chosen_disks(
    all: &[DiskRecord],
    opts: &RestoreOptions,
    image: Option<&ImageName>,
) -> Result<Vec<(u32, DiskRecord)>> {
    let wanted = match opts.from_disk {
        None => all
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u32, d.clone()))
            .collect(),
        Some(n) => match all.get(n as usize) {
            Some(d) => vec![(n, d.clone())],
            None => {
                return Err(EngineError::Mismatch(Mismatch::Other(format!(
                    "--from-disk {n}: the image has {} disk(s), numbered from 0",
                    all.len()
                ))))
            }
        },
    };
    if opts.disks.len() != wanted.len() {
        return Err(EngineError::Mismatch(Mismatch::TargetCount {
            image: image.map(|n| n.to_string()),
            disks: wanted.len(),
            targets: opts.disks.len(),
        }));
    }
    Ok(wanted)
}

/// A container error of a stream, as an engine error naming the stream position; `written`
/// says whether targets were already written to.
fn stream_damaged(e: ContainerError, written: bool) -> EngineError {
    if matches!(e, ContainerError::Cancelled) {
        return EngineError::Cancelled(if written {
            Aftermath::TargetInconsistent
        } else {
            Aftermath::NothingWritten
        });
    }
    let at = e
        .position()
        .map(|p| format!(" at stream byte {p}"))
        .unwrap_or_default();
    EngineError::Damaged(format!(
        "the image stream on standard input is damaged or cut off{at}: {}{}",
        crate::chain_text(&e),
        if written { "" } else { "; nothing was written" }
    ))
}

/// Added to every error of a stream restore after its first write.
const STREAM_INCONSISTENT: &str =
    "; the target disk(s) were partly written and are now INCONSISTENT: restore them again from an intact stream or image";

/// Matches the requested partitions of the image with the target's own partitions.
fn map_parts(
    path: &Path,
    disk: &Disk,
    rec: &DiskRecord,
    parts: &[u32],
) -> std::result::Result<Vec<PartMap>, Refusal> {
    let target = || path.to_path_buf();
    let layout =
        read_layout(disk, disk.logical_sector_size()).map_err(|e| Refusal::UnreadableTable {
            disk: target(),
            reason: crate::chain_text(&e),
        })?;
    let mut out = Vec::new();
    for n in parts {
        let src = rec
            .table
            .partitions
            .iter()
            .find(|p| p.number == *n)
            .ok_or_else(|| Refusal::NotInImage {
                disk: target(),
                part: *n,
            })?;
        if !src.saved {
            return Err(Refusal::NotSaved {
                disk: target(),
                part: *n,
            });
        }
        let (dst_start, dst_size) = if layout.kind == TableKind::None {
            if *n != 0 {
                return Err(Refusal::NoTable {
                    disk: target(),
                    part: *n,
                });
            }
            (0, disk.size())
        } else {
            let p = layout.partition(*n).ok_or_else(|| Refusal::NoPartition {
                disk: target(),
                part: *n,
                needed: src.size,
            })?;
            (p.start, p.size)
        };
        if dst_size < src.size {
            return Err(Refusal::PartitionTooSmall {
                disk: target(),
                part: *n,
                size: dst_size,
                needed: src.size,
            });
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
    /// The image's manifest (from a stream: the one at its end).
    pub manifest: Option<Manifest>,
}

impl RestorePlan {
    /// The `plan` event: what the restore will do to every target.
    pub fn plan_event(&self) -> Event {
        let image = match (&self.input, &self.opts.image) {
            (Input::Repo { source, .. }, _) => source.manifest().image.clone(),
            (_, Some(n)) => n.to_string(),
            _ => "-".into(),
        };
        Event::Plan {
            image,
            dry_run: self.opts.dry_run,
            disks: self.targets.iter().map(|t| t.plan.clone()).collect(),
        }
    }

    /// The targets, for the confirmation.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The image's manifest; `None` for a stream, whose manifest comes at its end.
    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.input {
            Input::Repo { source, .. } => Some(source.manifest()),
            Input::Stream { .. } | Input::Clonezilla { .. } => None,
        }
    }

    /// One line naming the image for the confirmation, e.g. `image web01 (saved
    /// 2026-11-25T21:46:03Z on host rescue)` or `the image stream on standard input (saved
    /// 2026-11-25T21:46:03Z)`.
    pub fn describe_image(&self) -> String {
        match &self.input {
            Input::Repo { source, .. } => {
                let m = source.manifest();
                format!("image {} (saved {} on host {})", m.image, m.created, m.host)
            }
            Input::Stream { reader, .. } => {
                let t = UNIX_EPOCH + Duration::from_secs(reader.header().created_unix);
                format!(
                    "the image stream on standard input (saved {})",
                    humantime::format_rfc3339_seconds(t)
                )
            }
            Input::Clonezilla { repo, .. } => format!(
                "Clonezilla image {} of {repo}",
                self.opts.image.as_ref().map_or("-", |n| n.as_str())
            ),
        }
    }

    /// Verifies the image (unless `precheck` is off, or the image is a stream), then writes
    /// it. Checksums are verified while streaming too; a mismatch stops with an error naming
    /// the chunk and file (or stream position).
    pub fn execute(self, sink: &dyn EventSink, cancel: &AtomicBool) -> Result<RestoreReport> {
        if self.opts.dry_run {
            return Err(EngineError::Mismatch(Mismatch::Other(
                "a dry-run plan cannot be executed".into(),
            )));
        }
        sink.event(self.plan_event());
        let RestorePlan {
            image_disks,
            input,
            targets,
            opts,
        } = self;
        match input {
            Input::Repo {
                source,
                repo,
                network,
            } => {
                let name = source.manifest().image.clone();
                let image_bytes = source.manifest().files.iter().map(|f| f.size).sum();
                // The spool (issue 16): the write pass reads what the pre-check kept, then
                // the rest from the repository.
                let mut spool = crate::spool::announce(&opts, image_bytes, network, sink);
                if opts.precheck {
                    precheck(&source, &name, &repo, &opts, &mut spool, sink, cancel)?;
                }
                spool.settle();
                let rest = source.reader_at(spool.len());
                let reader =
                    StreamReader::new(spool.replay(rest)).map_err(|e| image_error(&source, e))?;
                let job = WritePass {
                    image_disks,
                    targets: &targets,
                    opts: &opts,
                    repo: &repo,
                    known: Some(source.manifest()),
                    image_bytes,
                    after_write: true,
                };
                job.run(reader, None, &|e| image_error(&source, e), sink, cancel)
            }
            Input::Stream { reader, first_disk } => {
                let job = WritePass {
                    image_disks,
                    targets: &targets,
                    opts: &opts,
                    repo: STREAM_IN,
                    known: None,
                    image_bytes: 0,
                    after_write: false,
                };
                job.run(
                    reader,
                    first_disk,
                    &|e| stream_damaged(e, true),
                    sink,
                    cancel,
                )
                .map_err(|e| match e {
                    EngineError::Damaged(m) => EngineError::Damaged(m + STREAM_INCONSISTENT),
                    other => other,
                })
            }
            Input::Clonezilla {
                mut conv,
                repo,
                image_bytes,
            } => {
                for w in conv.warnings() {
                    sink.event(Event::Warning { message: w.clone() });
                }
                let name = opts.image.as_ref().map_or("-", |n| n.as_str()).to_string();
                // The pre-check reads and verifies every file (partclone's checksums, the
                // raw images' sizes) into the image the write pass will read, and keeps its
                // manifest: the write pass must then read the very same image. The spool
                // keeps that image; when all of it fits, the write pass reads it from there
                // (every chunk's CRCs checked again), else the conversion runs again.
                let spool =
                    crate::spool::announce_converted(&opts, image_bytes, conv.bytes_total(), sink);
                let spool = std::sync::Arc::new(std::sync::Mutex::new(spool));
                let verified = if opts.precheck {
                    let out = crate::spool::SpoolWriter(std::sync::Arc::clone(&spool));
                    Some(conv.verify(out, &name, &repo, sink, cancel)?)
                } else {
                    None
                };
                let job = WritePass {
                    image_disks,
                    targets: &targets,
                    opts: &opts,
                    repo: &repo,
                    known: verified.as_ref(),
                    image_bytes,
                    after_write: true,
                };
                // The writer has finished with the spool: it is ours again.
                let kept = std::sync::Arc::try_unwrap(spool)
                    .ok()
                    .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
                    .filter(|s| verified.is_some() && s.holds_all());
                match kept {
                    Some(spool) => {
                        let reader = StreamReader::new(spool.replay(std::io::empty()))
                            .map_err(|e| stream_damaged(e, false))?;
                        job.run(reader, None, &|e| stream_damaged(e, true), sink, cancel)
                    }
                    None => run_converted(&job, &mut conv, sink, cancel),
                }
            }
        }
    }
}

/// The write pass of a restore from a Clonezilla image: the conversion runs on its own
/// thread into a bounded in-memory pipe that the write pass reads as an image stream. An
/// error of the conversion (a damaged file found on the second read, …) is the one
/// reported.
fn run_converted(
    job: &WritePass<'_>,
    conv: &mut crate::SavePlan,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<RestoreReport> {
    let (tx, rx) = crate::import::pipe(8);
    std::thread::scope(|s| {
        let quiet = |_: Event| {};
        let converter = s.spawn(move || conv.write_container(tx, &quiet, cancel));
        let written = StreamReader::new(rx)
            .map_err(|e| stream_damaged(e, false))
            .and_then(|reader| job.run(reader, None, &|e| stream_damaged(e, true), sink, cancel));
        let converted = converter.join().unwrap_or_else(|_| {
            Err(EngineError::Damaged(
                "the conversion of the Clonezilla image stopped unexpectedly".into(),
            ))
        });
        match (written, converted) {
            (Ok(r), Ok(_)) => Ok(r),
            (Ok(_), Err(e)) | (Err(_), Err(e @ EngineError::Cancelled(_))) => Err(e),
            // The write pass stopped reading (a failed target): the conversion's broken
            // pipe is only its consequence.
            (Err(e), Ok(_)) | (Err(e), Err(EngineError::StreamWrite { .. })) => Err(e),
            (Err(e), Err(cause)) => Err(match e {
                EngineError::AfterWrite { targets, .. } => EngineError::AfterWrite {
                    targets,
                    source: Box::new(cause),
                },
                EngineError::Cancelled(a) => EngineError::Cancelled(a),
                _ => cause,
            }),
        }
    })
}

/// The write pass of a restore, the same for a repository image and a stream.
struct WritePass<'a> {
    /// Disks in the image (more than targets with `from_disk`).
    image_disks: usize,
    targets: &'a [Target],
    opts: &'a RestoreOptions,
    repo: &'a str,
    /// The manifest, when known before the stream is read (a repository image).
    known: Option<&'a Manifest>,
    /// Image bytes for the `Done` event (a stream counts its own).
    image_bytes: u64,
    /// An error after the first write is [`EngineError::AfterWrite`] (the targets are then
    /// inconsistent); a plain stream says so in its own words instead.
    after_write: bool,
}

impl WritePass<'_> {
    /// Decodes `reader` to its end and writes every chunk onto its target, checking each
    /// record against the targets' disk records and the manifest (known, or the one at the
    /// end of the stream), then each disk's data CRC32; moves a GPT backup to the end of a
    /// larger disk, syncs and rereads the targets. `first_disk` is a `DISK` record the
    /// planning already took from `reader`.
    fn run<R: Read + Send>(
        &self,
        reader: StreamReader<R>,
        first_disk: Option<(u32, Vec<u8>)>,
        container_err: &dyn Fn(ContainerError) -> EngineError,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<RestoreReport> {
        let wrote = AtomicBool::new(false);
        self.run_writing(reader, first_disk, container_err, sink, cancel, &wrote)
            .map_err(|e| match e {
                // A stream restore says so in its own words; a cancel names its aftermath.
                EngineError::Cancelled(_) => e,
                e if self.after_write && wrote.load(Ordering::SeqCst) => EngineError::AfterWrite {
                    targets: self
                        .targets
                        .iter()
                        .map(|t| t.disk.path().display().to_string())
                        .collect(),
                    source: Box::new(e),
                },
                e => e,
            })
    }

    /// [`WritePass::run`]; `wrote` is set at the first write onto a target.
    fn run_writing<R: Read + Send>(
        &self,
        reader: StreamReader<R>,
        first_disk: Option<(u32, Vec<u8>)>,
        container_err: &dyn Fn(ContainerError) -> EngineError,
        sink: &dyn EventSink,
        cancel: &AtomicBool,
        wrote: &AtomicBool,
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        let operation = if self.opts.parts.is_empty() {
            "restoredisk"
        } else {
            "restoreparts"
        };
        let total: u64 = self
            .targets
            .iter()
            .map(|t| match &t.maps {
                None if t.source.stored_bytes > 0 => t.source.stored_bytes,
                None => crate::expected_bytes(&t.source),
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
        let image_name = match (self.known, &self.opts.image) {
            (Some(m), _) => m.image.clone(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "-".to_string(),
        };
        sink.event(Event::Start {
            operation: operation.into(),
            image: image_name,
            repo: self.repo.to_string(),
            bytes_total: total,
            disks: self
                .targets
                .iter()
                .map(|t| t.disk.path().display().to_string())
                .collect(),
        });
        let mut progress = Progress::new(sink, total);
        let mut parts = PartEvents::new(self.targets);
        let mut current: Option<usize> = None;
        let mut disks_seen = 0usize;
        let mut crcs: Vec<crc32fast::Hasher> = vec![crc32fast::Hasher::new(); self.targets.len()];
        let mut embedded: Option<Manifest> = None;
        let mut image_bytes = self.image_bytes;
        let mut manifest_len = 0u64;
        // Chunks are written by the decompressing threads as soon as they are verified
        // (their extents never overlap); the ordered pass below checks the stream's structure
        // and counts progress.
        let targets = self.targets;
        let image_disks = self.image_disks;
        let slot = move |disk: u32| targets.iter().position(|t| t.image_disk == disk);
        let write = move |chunk: &EncodedChunk, data: &[u8]| -> Result<()> {
            let Some(i) = slot(chunk.header.disk) else {
                if (chunk.header.disk as usize) < image_disks {
                    // A disk of the image that is not restored (`from_disk`).
                    return Ok(());
                }
                return Err(EngineError::Damaged(format!(
                    "chunk {} names disk {}, which the image does not describe",
                    chunk.header.seq, chunk.header.disk
                )));
            };
            wrote.store(true, Ordering::SeqCst);
            place_chunk(&targets[i], chunk, data, true).map(|_| ())
        };
        let mut on_record = |d: Decoded<'_>| -> Result<()> {
            match d {
                Decoded::DiskList { disks, json } => {
                    let same = disks as usize == image_disks
                        && DiskRecord::list_from_json(json, disks, 0).is_ok_and(|list| {
                            targets.iter().all(|t| {
                                list.get(t.image_disk as usize)
                                    .is_some_and(|d| crate::same_layout(d, &t.source))
                            })
                        });
                    if !same {
                        return Err(EngineError::Damaged(
                            "the disk list of the image differs from its manifest; the image is damaged".into(),
                        ));
                    }
                }
                Decoded::Disk { index, json } => {
                    let rec = DiskRecord::from_json(json, 0).map_err(|e| {
                        EngineError::Damaged(format!(
                            "disk record {index} of the image is unreadable: {}",
                            crate::chain_text(&e)
                        ))
                    })?;
                    if index as usize >= image_disks {
                        return Err(EngineError::Damaged(format!(
                            "the image has a disk {index}, but only {image_disks} disk(s) were announced"
                        )));
                    }
                    parts.finish_disk(sink);
                    disks_seen += 1;
                    let Some(i) = slot(index) else {
                        current = None;
                        return Ok(());
                    };
                    let t = &targets[i];
                    if !crate::same_layout(&rec, &t.source) {
                        return Err(EngineError::Damaged(format!(
                            "disk {index} of the image differs from its manifest; the image is damaged"
                        )));
                    }
                    current = Some(i);
                    progress.disk = index;
                    progress.partition = None;
                }
                Decoded::Chunk { chunk, data } => {
                    if disks_seen == 0 {
                        return Err(EngineError::Damaged(
                            "a chunk before any disk record".into(),
                        ));
                    }
                    let Some(i) = current else {
                        // A disk that is not restored (`from_disk`).
                        return Ok(());
                    };
                    let t = &targets[i];
                    crcs[i].combine(&crc32fast::Hasher::new_with_initial_len(
                        chunk.header.data_crc,
                        u64::from(chunk.header.data_len),
                    ));
                    parts.chunk(i, chunk, sink);
                    let (bytes, _) = place_chunk(t, chunk, data, false)?;
                    progress.partition = parts.current();
                    progress.add(bytes);
                }
                Decoded::Manifest(json) => {
                    let mut m = Manifest::from_json(json, 0).map_err(|e| {
                        EngineError::Damaged(format!(
                            "the manifest inside the image is unreadable: {}",
                            crate::chain_text(&e)
                        ))
                    })?;
                    manifest_len = json.len() as u64;
                    match self.known {
                        Some(known) => {
                            m.files = known.files.clone();
                            if &m != known {
                                return Err(EngineError::Damaged(
                                    "manifest.json differs from the manifest inside the image"
                                        .into(),
                                ));
                            }
                        }
                        None => {
                            let same = m.disks.len() == image_disks
                                && targets.iter().all(|t| {
                                    m.disks
                                        .get(t.image_disk as usize)
                                        .is_some_and(|d| crate::same_layout(d, &t.source))
                                });
                            if !same {
                                return Err(EngineError::Damaged(
                                    "the manifest at the end of the stream describes other disks than its start; the stream is damaged".into(),
                                ));
                            }
                            if let Some(want) =
                                self.opts.image.as_ref().filter(|n| n.as_str() != m.image)
                            {
                                return Err(EngineError::Mismatch(Mismatch::Other(format!(
                                    "the stream holds image {}, not {want}; the target disk(s) now hold image {}",
                                    m.image, m.image
                                ))));
                            }
                        }
                    }
                    embedded = Some(m);
                }
                Decoded::End(tail) => {
                    if self.known.is_none() {
                        image_bytes = tail.manifest_pos
                            + lifeboat_container::format::RECORD_HEADER_LEN as u64
                            + manifest_len
                            + lifeboat_container::format::TAIL_LEN as u64;
                    }
                }
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled(Aftermath::TargetInconsistent));
            }
            Ok(())
        };
        if let Some((index, json)) = &first_disk {
            on_record(Decoded::Disk {
                index: *index,
                json,
            })?;
        }
        let r = decode_parallel_with(reader, self.opts.threads, cancel, &write, &mut on_record);
        match r {
            Ok(()) => {}
            Err(DecodeError::Sink(e)) => return Err(e),
            Err(DecodeError::Container(ContainerError::Cancelled)) => {
                return Err(EngineError::Cancelled(Aftermath::TargetInconsistent))
            }
            Err(DecodeError::Container(e)) => return Err(container_err(e)),
        }
        parts.finish_disk(sink);
        if disks_seen != self.image_disks {
            return Err(EngineError::Damaged(format!(
                "the image holds {disks_seen} disk record(s), but {} disk(s) were announced; the image is damaged",
                self.image_disks
            )));
        }
        let manifest = embedded
            .ok_or_else(|| EngineError::Damaged("the image ended without its manifest".into()))?;
        let mut report = RestoreReport {
            bytes_written: progress.done,
            gpt_relocated: Vec::new(),
            manifest: None,
        };
        for (i, t) in self.targets.iter().enumerate() {
            let crc = format!("{:08x}", crcs[i].clone().finalize());
            let want = &manifest.disks[t.image_disk as usize].data_crc32;
            if t.maps.is_none() && &crc != want {
                return Err(EngineError::Damaged(format!(
                    "disk {i}: the data written has CRC32 {crc} but the manifest says {want}; the image is inconsistent, restore from another copy"
                )));
            }
            let moved = t.plan.gpt_backup_moved_to.is_some();
            let table_err = |source| EngineError::Table {
                disk: t.disk.path().display().to_string(),
                source,
            };
            let (ss, size) = (t.disk.logical_sector_size(), t.disk.size());
            let mut f = t.disk.file();
            match &t.change {
                None => {}
                Some(TableChange::Relocate) => {
                    relocate_gpt(&mut f, ss, size).map_err(table_err)?;
                    sink.event(Event::Warning {
                        message: format!(
                            "{} is larger than the source disk: the backup GPT was moved to its end; the extra space is unallocated",
                            t.disk.path().display()
                        ),
                    });
                }
                Some(TableChange::Gpt(places)) => {
                    rewrite_gpt(&mut f, ss, size, places).map_err(table_err)?
                }
                Some(TableChange::Mbr(m)) => rewrite_mbr(&mut f, ss, size, m).map_err(table_err)?,
            }
            t.disk.sync()?;
            report.gpt_relocated.push(moved);
        }
        for t in self.targets {
            crate::swap::clear_swap_areas(&t.disk, &t.plan.partitions, &t.source.table.partitions)?;
            if crate::grow::any_growth(&t.plan.partitions) {
                crate::grow::grow_filesystems(t.disk.path(), &t.plan, sink);
                t.disk.sync()?;
            }
            let _ = t.disk.reread_partitions();
        }
        progress.emit();
        sink.event(Event::Done {
            operation: operation.into(),
            bytes_done: report.bytes_written,
            image_bytes,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        report.manifest = Some(manifest);
        Ok(report)
    }
}

/// A restored partition of one target, as the image describes it (source disk offsets).
struct PartSpan {
    number: u32,
    start: u64,
    end: u64,
    filesystem: String,
    mode: String,
    bytes: u64,
}

/// Emits `PartitionStart` / `PartitionDone` while a restore streams: every restored
/// partition of every target gets both, in disk order, with the bytes written for it
/// (partitions without stored data get a pair with 0 bytes).
struct PartEvents {
    spans: Vec<Vec<PartSpan>>,
    /// Image disk index of each target.
    ids: Vec<u32>,
    disk: Option<usize>,
    /// Next partition of `disk` not yet started.
    next: usize,
    /// The partition started and not yet done, with its bytes so far.
    open: Option<(usize, u64)>,
}

impl PartEvents {
    fn new(targets: &[Target]) -> Self {
        let spans = targets
            .iter()
            .map(|t| {
                let mut v: Vec<PartSpan> = t
                    .source
                    .table
                    .partitions
                    .iter()
                    .filter(|p| {
                        p.saved
                            && t.maps
                                .as_ref()
                                .is_none_or(|m| m.iter().any(|x| x.number == p.number))
                    })
                    .map(|p| PartSpan {
                        number: p.number,
                        start: p.start,
                        end: p.start.saturating_add(p.size),
                        filesystem: p.filesystem.clone(),
                        mode: p.mode.clone(),
                        bytes: p.used_bytes,
                    })
                    .collect();
                v.sort_by_key(|p| p.start);
                v
            })
            .collect();
        PartEvents {
            spans,
            ids: targets.iter().map(|t| t.image_disk).collect(),
            disk: None,
            next: 0,
            open: None,
        }
    }

    /// The partition being written, if any.
    fn current(&self) -> Option<u32> {
        let d = self.disk?;
        self.open.map(|(i, _)| self.spans[d][i].number)
    }

    fn close(&mut self, sink: &dyn EventSink) {
        if let (Some(d), Some((i, bytes))) = (self.disk, self.open.take()) {
            sink.event(Event::PartitionDone {
                disk: self.ids[d],
                partition: self.spans[d][i].number,
                bytes,
            });
        }
    }

    fn start(&mut self, i: usize, sink: &dyn EventSink) {
        let Some(d) = self.disk else { return };
        let p = &self.spans[d][i];
        sink.event(Event::PartitionStart {
            disk: self.ids[d],
            partition: p.number,
            filesystem: p.filesystem.clone(),
            mode: p.mode.clone(),
            bytes: p.bytes,
        });
        self.open = Some((i, 0));
        self.next = i + 1;
    }

    /// Closes the current disk: the open partition and those never reached.
    fn finish_disk(&mut self, sink: &dyn EventSink) {
        self.close(sink);
        if let Some(d) = self.disk {
            while self.next < self.spans[d].len() {
                self.start(self.next, sink);
                self.close(sink);
            }
        }
        self.disk = None;
        self.next = 0;
    }

    /// Accounts the extents of one chunk of disk `d` (in stream order).
    fn chunk(&mut self, d: usize, chunk: &EncodedChunk, sink: &dyn EventSink) {
        if d >= self.spans.len() {
            return;
        }
        if self.disk != Some(d) {
            self.finish_disk(sink);
            self.disk = Some(d);
        }
        for e in &chunk.extents {
            let mut s = e.offset;
            let end = e.end();
            while s < end {
                let spans = &self.spans[d];
                // The partition holding byte `s`, else the next one after it.
                let hit = spans.iter().position(|p| p.start <= s && s < p.end);
                let piece_end = match hit {
                    Some(i) => spans[i].end.min(end),
                    None => spans
                        .iter()
                        .map(|p| p.start)
                        .find(|&st| st > s)
                        .unwrap_or(end)
                        .min(end),
                };
                match hit {
                    Some(i) => {
                        if self.open.map(|(o, _)| o) != Some(i) {
                            self.close(sink);
                            while self.next < i {
                                self.start(self.next, sink);
                                self.close(sink);
                            }
                            self.start(i, sink);
                        }
                        if let Some((_, b)) = self.open.as_mut() {
                            *b += piece_end - s;
                        }
                    }
                    None => self.close(sink),
                }
                s = piece_end.max(s + 1);
            }
        }
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
        match t.maps.as_ref().or(t.segs.as_ref().map(|_| &NO_MAPS)) {
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
            Some(_) if t.maps.is_none() => {
                for m in t.segs.iter().flatten() {
                    let s = e.offset.max(m.src_start);
                    let end = e.end().min(m.src_end);
                    if s < end {
                        let b = &bytes[(s - e.offset) as usize..(end - e.offset) as usize];
                        put(b, m.dst_start + (s - m.src_start))?;
                        placed += end - s;
                    }
                }
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

/// Stands for "mapped" when a restoredisk target has segments instead of partition maps.
static NO_MAPS: Vec<PartMap> = Vec::new();

/// Reads the whole image once before anything is written, and proves everything the write
/// pass would otherwise find out only after it began: every record checksum, the index and the
/// tail; every chunk decompresses to data with its CRC32 (on `threads` threads); every chunk
/// belongs to the disk record before it and its extents lie inside that disk; each disk's data
/// CRC32 equals the manifest's; the disk records and the embedded manifest equal
/// manifest.json.
fn precheck(
    source: &ImageSource,
    image: &str,
    repo: &str,
    opts: &RestoreOptions,
    spool: &mut crate::spool::Spool,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<()> {
    let started = Instant::now();
    // The container stream's length (for an encrypted image, of its plaintext).
    let total: u64 = lifeboat_fs::ReadAt::len(source);
    sink.event(Event::Start {
        operation: "verify".into(),
        image: image.to_string(),
        repo: repo.into(),
        bytes_total: total,
        disks: Vec::new(),
    });
    let mut progress = Progress::new(sink, total);
    let tee = crate::spool::Tee {
        inner: source.reader(),
        spool,
    };
    let r = StreamReader::new(tee).map_err(|e| image_error(source, e))?;
    let manifest = source.manifest();
    if lifeboat_container::format::id_hex(&r.header().image_id) != manifest.image_id
        || r.header().chunk_size != manifest.chunk_size
    {
        return Err(EngineError::Damaged(format!(
            "image {image}: the container header (image id, chunk size) does not match manifest.json; nothing was written"
        )));
    }
    let damaged = |what: String| {
        EngineError::Damaged(format!(
            "image {image}: {what}; the image is damaged, nothing was written"
        ))
    };
    let mut disks = 0usize;
    let mut current: Option<usize> = None;
    let mut crcs: Vec<crc32fast::Hasher> = vec![crc32fast::Hasher::new(); manifest.disks.len()];
    let mut position = 0u64;
    // The image digest, recomputed from the data (chunk digests on the decompressing threads).
    let digest = crate::check::DigestPass::default();
    let worker = |c: &EncodedChunk, data: &[u8]| -> Result<()> {
        digest.digest_chunk(c, data);
        Ok(())
    };
    let on_record = |rec: Decoded<'_>| -> Result<()> {
        match rec {
            Decoded::DiskList { disks: n, json } => {
                let same = n as usize == manifest.disks.len()
                    && DiskRecord::list_from_json(json, n, 0).is_ok_and(|list| {
                        list.iter()
                            .zip(&manifest.disks)
                            .all(|(d, m)| crate::same_layout(d, m))
                    });
                if !same {
                    return Err(damaged("the disk list does not match manifest.json".into()));
                }
            }
            Decoded::Disk { index, json } => {
                disks += 1;
                let same = DiskRecord::from_json(json, 0)
                    .ok()
                    .zip(manifest.disks.get(index as usize))
                    .is_some_and(|(d, m)| crate::same_layout(&d, m));
                if !same {
                    return Err(damaged(format!(
                        "disk record {index} does not match manifest.json"
                    )));
                }
                current = Some(index as usize);
                digest.disk(index, json);
            }
            Decoded::Chunk { chunk, .. } => {
                let seq = chunk.header.seq;
                let Some(d) = current.filter(|&d| d == chunk.header.disk as usize) else {
                    return Err(damaged(format!(
                        "chunk {seq} names disk {} but follows the record of disk {}",
                        chunk.header.disk,
                        current.map_or("none".to_string(), |d| d.to_string())
                    )));
                };
                let size = manifest.disks[d].size;
                if let Some(e) = chunk.extents.iter().find(|e| e.end() > size) {
                    return Err(damaged(format!(
                        "chunk {seq} covers bytes {}..{} of disk {d}, which has {size} bytes",
                        e.offset,
                        e.end()
                    )));
                }
                digest.chunk(seq).map_err(damaged)?;
                crcs[d].combine(&crc32fast::Hasher::new_with_initial_len(
                    chunk.header.data_crc,
                    u64::from(chunk.header.data_len),
                ));
                let end = chunk.pos;
                progress.add(end.saturating_sub(position));
                position = end;
            }
            Decoded::Manifest(json) => {
                let same = Manifest::from_json(json, 0).is_ok_and(|mut m| {
                    m.files = manifest.files.clone();
                    &m == manifest
                });
                if !same {
                    return Err(damaged(
                        "manifest.json differs from the manifest inside the image".into(),
                    ));
                }
            }
            Decoded::End(_) => {}
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled(Aftermath::NothingWritten));
        }
        Ok(())
    };
    match lifeboat_container::decode_parallel_with(r, opts.threads, cancel, &worker, on_record) {
        Ok(()) => {}
        Err(DecodeError::Sink(e)) => return Err(e),
        Err(DecodeError::Container(ContainerError::Cancelled)) => {
            return Err(EngineError::Cancelled(Aftermath::NothingWritten))
        }
        Err(DecodeError::Container(e)) => return Err(image_error(source, e)),
    }
    progress.add(total.saturating_sub(position));
    for (d, m) in manifest.disks.iter().enumerate() {
        let crc = format!("{:08x}", crcs[d].clone().finalize());
        if crc != m.data_crc32 {
            return Err(damaged(format!(
                "the data of disk {d} has CRC32 {crc}, manifest.json says {}",
                m.data_crc32
            )));
        }
    }
    if disks != manifest.disks.len() {
        return Err(EngineError::Damaged(format!(
            "image {image}: {disks} disk record(s) in the image, manifest.json lists {}; nothing was written",
            manifest.disks.len()
        )));
    }
    let got = digest.hex();
    if let Some(saved) = manifest.digest.as_ref().filter(|d| **d != got) {
        return Err(damaged(format!(
            "its data has digest {got}, manifest.json says {saved}"
        )));
    }
    if let Some(why) = crate::check::unexpected_digest(&got, opts.digest.as_deref()) {
        return Err(EngineError::Damaged(format!(
            "image {image}: {why}; nothing was written"
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
