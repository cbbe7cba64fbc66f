//! Errors of the engine. Every message says what failed and where (file, partition, offset).
//! An error that wraps another does not repeat it in its message: a printer walks
//! [`std::error::Error::source`] (see [`chain_text`](lifeboat_container::chain_text)) and then adds the advice of the chain ([`chain_advice`], as data the CLI words in the operator's
//! language).

use lifeboat_blockdev::BlockDevError;
use lifeboat_container::ContainerError;
use lifeboat_parttable::PartError;
use lifeboat_repo::RepoError;
use std::path::PathBuf;

/// Why an operation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A disk could not be opened, read or written.
    #[error(transparent)]
    Disk(#[from] BlockDevError),
    /// The partition table of a disk could not be read.
    #[error("{disk}")]
    Table {
        /// The disk.
        disk: String,
        /// The parser's error.
        #[source]
        source: PartError,
    },
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The image container is damaged or could not be read or written.
    #[error("image {image}, file {file} at byte {offset}")]
    Image {
        /// Image location.
        image: String,
        /// Volume file.
        file: String,
        /// Offset in that file.
        offset: u64,
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Writing the image failed (e.g. the repository filled up).
    #[error("writing image {image} failed")]
    ImageWrite {
        /// Image location.
        image: String,
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Writing a file of the operator's (an extracted disk or partition) failed.
    #[error("writing {path} at byte {offset} failed")]
    FileWrite {
        /// The file.
        path: String,
        /// Where in the file.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the image stream (`--repo -`, standard output) failed, e.g. because the
    /// receiving side closed the pipe.
    #[error("writing the image stream failed")]
    StreamWrite {
        /// The container error.
        #[source]
        source: ContainerError,
    },
    /// Reading the source disk failed.
    #[error("reading {disk} at byte {offset}{} failed", partition.map(|p| format!(" (partition {p})")).unwrap_or_default())]
    SourceRead {
        /// Source disk.
        disk: String,
        /// Partition number, when inside one.
        partition: Option<u32>,
        /// Disk byte offset.
        offset: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A safety check refused the operation; nothing was written.
    #[error("refused, nothing was written: {0}")]
    Refused(Refusal),
    /// The image is internally inconsistent (its parts disagree with each other or with
    /// manifest.json): damaged after it was written.
    #[error("{0}")]
    Damaged(String),
    /// The image does not fit the request (wrong number of disks, missing partition, …).
    #[error("{0}")]
    Mismatch(Mismatch),
    /// The operation was cancelled; what it left behind.
    #[error("cancelled{0}")]
    Cancelled(Aftermath),
    /// A restore failed after it had begun writing its targets, which now hold part of the
    /// image and part of what was there before.
    #[error("the restore stopped after it began writing {}, which now hold(s) a partly written, INCONSISTENT image: restore again from an intact image", targets.join(", "))]
    AfterWrite {
        /// The target disks.
        targets: Vec<String>,
        /// What stopped it.
        #[source]
        source: Box<EngineError>,
    },
    /// No passphrase for an encrypted image (the frontend's words); nothing was written.
    #[error("{0}")]
    Passphrase(String),
    /// A Clonezilla image could not be read, or is damaged (the source names the file, and
    /// the block or byte offset).
    #[error("Clonezilla image {image}")]
    Clonezilla {
        /// Image (directory) name.
        image: String,
        /// The reader's error.
        #[source]
        source: lifeboat_clonezilla::Error,
    },
}

/// Why a safety check refused an operation before anything was written, with the data a
/// frontend needs to word it, and what to do next, in the operator's language. The `Display`
/// is a plain English statement of the fact, without advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A source disk holds a mounted filesystem (save).
    #[error(
        "{} is in use, an image of a mounted filesystem would be inconsistent: {}",
        disk.display(),
        uses.join("; ")
    )]
    SourceMounted {
        /// The source disk.
        disk: PathBuf,
        /// What uses it (mount points), as `lifeboat_blockdev::Usage` words them.
        uses: Vec<String>,
    },
    /// A target is mounted, an active swap, held by device-mapper/md or backs a loop device.
    #[error("{}: {}", disk.display(), uses.join("; "))]
    TargetInUse {
        /// The target.
        disk: PathBuf,
        /// What uses it, as `lifeboat_blockdev::Usage` words them.
        uses: Vec<String>,
    },
    /// A target is one path of a dm-multipath map: writing it would bypass the map.
    #[error(
        "{}: it is one path of the multipath device {} (WWID {wwid}); restore onto {} instead",
        disk.display(),
        map.display(),
        map.display()
    )]
    MultipathPath {
        /// The target.
        disk: PathBuf,
        /// The map to use instead (`/dev/mapper/mpatha`).
        map: PathBuf,
        /// The LUN's WWID.
        wwid: String,
    },
    /// A target holds the repository the image is read from.
    #[error("{}: it holds the repository {repo}", disk.display())]
    HoldsRepository {
        /// The target.
        disk: PathBuf,
        /// The repository's location.
        repo: String,
    },
    /// A target holds the file the image stream is read from.
    #[error(
        "{}: it holds {}, which the image stream is read from",
        disk.display(),
        file.display()
    )]
    HoldsStream {
        /// The target.
        disk: PathBuf,
        /// The stream's file.
        file: PathBuf,
    },
    /// A target is a file inside the image's own directory.
    #[error("{}: it is a file of the image itself", disk.display())]
    ImageFile {
        /// The target.
        disk: PathBuf,
    },
    /// A target is the file the image stream is read from.
    #[error("{}: the image stream is read from it", disk.display())]
    StreamFile {
        /// The target.
        disk: PathBuf,
    },
    /// The spool directory (`--spool`) is on a disk that will be written.
    #[error(
        "{}: the spool directory {} is on it; give a directory on another local disk",
        disk.display(),
        dir.display()
    )]
    SpoolOnTarget {
        /// The target.
        disk: PathBuf,
        /// The spool directory.
        dir: PathBuf,
    },
    /// The spool directory (`--spool`) is not a directory.
    #[error("spool directory {}: not a directory", dir.display())]
    SpoolNotDir {
        /// The spool directory.
        dir: PathBuf,
    },
    /// The same target was given twice.
    #[error("{}: given twice", disk.display())]
    GivenTwice {
        /// The target.
        disk: PathBuf,
    },
    /// The target's logical sector size differs from that of the saved disk (partition
    /// tables count sectors).
    #[error(
        "{}: its logical sectors are {target} bytes but the image was saved from a disk with \
         {image}-byte sectors",
        disk.display()
    )]
    SectorSize {
        /// The target.
        disk: PathBuf,
        /// The target's logical sector size.
        target: u32,
        /// The saved disk's logical sector size.
        image: u32,
    },
    /// The target is smaller than the saved disk (restoredisk).
    #[error(
        "{}: too small: it has {size} bytes, the image needs {needed} (the source disk's size)",
        disk.display()
    )]
    TooSmall {
        /// The target.
        disk: PathBuf,
        /// The target's size in bytes.
        size: u64,
        /// The saved disk's size in bytes.
        needed: u64,
    },
    /// A partition of the image does not fit a smaller target (restoredisk).
    #[error(
        "{}: partition {part} does not fit: it ends at byte {end}, but the target's usable \
         space ends at {usable}; {shortfall} bytes short{}",
        disk.display(),
        match (lvm_pv, pv_end) {
            (true, Some(e)) => format!(
                " (an LVM physical volume: it can shrink only down to its allocated extents \
                 and metadata, which end at byte {e})"
            ),
            (true, None) => " (an LVM physical volume whose metadata could not be read from \
                 the image, so it cannot be shrunk)"
                .to_string(),
            _ => String::new(),
        }
    )]
    PartitionDoesNotFit {
        /// The target.
        disk: PathBuf,
        /// The partition.
        part: u32,
        /// Where it ends on the source (bytes).
        end: u64,
        /// Where the target's usable space ends (before a GPT backup).
        usable: u64,
        /// How many bytes more the target needs: `end - usable`, or `pv_end - usable`.
        shortfall: u64,
        /// The partition is an LVM physical volume.
        lvm_pv: bool,
        /// For an LVM PV at the end of the disk: the byte of the disk where its allocated
        /// extents and metadata end (it could shrink down to there); the shortfall counts
        /// from it.
        pv_end: Option<u64>,
    },
    /// The image's partitions overlap (a damaged table on the source disk), so their places
    /// cannot be changed (`--grow`): each would take the other's bytes along.
    #[error(
        "{}: partitions {a} and {b} of the image overlap; their places cannot be changed",
        disk.display()
    )]
    OverlappingPartitions {
        /// The target.
        disk: PathBuf,
        /// One partition.
        a: u32,
        /// The partition it overlaps.
        b: u32,
    },
    /// The target's partition table cannot be read (restoreparts).
    #[error("{}: its partition table cannot be read ({reason})", disk.display())]
    UnreadableTable {
        /// The target.
        disk: PathBuf,
        /// The partition table's error, with its causes.
        reason: String,
    },
    /// The target has no partition table, so no partition `part` (restoreparts).
    #[error("{}: it has no partition table, so no partition {part}", disk.display())]
    NoTable {
        /// The target.
        disk: PathBuf,
        /// The partition asked for.
        part: u32,
    },
    /// The target has no partition `part` (restoreparts).
    #[error("{}: it has no partition {part}", disk.display())]
    NoPartition {
        /// The target.
        disk: PathBuf,
        /// The partition asked for.
        part: u32,
        /// The saved partition's size in bytes.
        needed: u64,
    },
    /// The target's partition `part` is smaller than the saved one (restoreparts).
    #[error(
        "{}: its partition {part} has {size} bytes but the saved one has {needed}",
        disk.display()
    )]
    PartitionTooSmall {
        /// The target.
        disk: PathBuf,
        /// The partition.
        part: u32,
        /// Its size in bytes.
        size: u64,
        /// The saved partition's size in bytes.
        needed: u64,
    },
    /// The image has no partition `part` (restoreparts).
    #[error("{}: the image has no partition {part}", disk.display())]
    NotInImage {
        /// The target.
        disk: PathBuf,
        /// The partition asked for.
        part: u32,
    },
    /// The image has partition `part` but did not save it (restoreparts).
    #[error("{}: partition {part} was not saved in the image", disk.display())]
    NotSaved {
        /// The target.
        disk: PathBuf,
        /// The partition asked for.
        part: u32,
    },
    /// The system gave no random numbers for the image id (save).
    #[error("no random numbers for the image id: {reason}")]
    NoRandomness {
        /// The system's error.
        reason: String,
    },
}

/// How the image does not fit the request, with the data a frontend needs to word it (and
/// what to do next) in the operator's language. The `Display` is a plain English statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// restoredisk of an image that holds only some partitions.
    #[error("{} holds only some partitions", which_image(image))]
    PartsImage {
        /// The image's name; `None` for an image stream.
        image: Option<String>,
    },
    /// The number of targets differs from the number of disks in the image.
    #[error(
        "{} holds {disks} disk(s) but {targets} target(s) were given",
        which_image(image)
    )]
    TargetCount {
        /// The image's name; `None` for an image stream.
        image: Option<String>,
        /// Disks in the image.
        disks: usize,
        /// Targets given.
        targets: usize,
    },
    /// Several targets for a stream that does not list its disks at its start.
    #[error(
        "{targets} targets given, but this stream does not list its disks at its start (it \
         holds one disk, or was written by a lifeboat before image format 1.1); a stream \
         without a disk list restores onto one disk only"
    )]
    StreamWithoutDiskList {
        /// Targets given.
        targets: usize,
    },
    /// A digest to prove with a random-access read (mount, extract) of an image saved
    /// before format 3, whose index holds no chunk digests.
    #[error(
        "image {image} was saved before image format 3: its index holds no chunk digests, so \
         its digest cannot be proved without reading it all; prove it with `lifeboat check \
         --digest HEX`, then extract or mount it without --digest"
    )]
    NoIndexDigests {
        /// The image's name.
        image: String,
    },
    /// An expected image digest given to a restore that cannot prove it before writing.
    #[error("{why}")]
    DigestUnprovable {
        /// Why not.
        why: DigestUnprovable,
    },
    /// A save without a source disk.
    #[error("no source disk given")]
    NoSource,
    /// Anything else, in English.
    #[error("{0}")]
    Other(String),
}

/// Why a restore cannot prove an expected image digest (`--digest`) before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestUnprovable {
    /// The pre-check, which recomputes the digest, is turned off.
    #[error("--digest needs the pre-check, which proves the digest before the first write; drop --no-precheck")]
    NoPrecheck,
    /// An image stream is read once, while it is written.
    #[error("--digest cannot be proved for an image stream, which is read only once, while it is written; save the stream into a repository (or check it there) first")]
    Stream,
    /// A Clonezilla image has no lifeboat digest.
    #[error("--digest applies to lifeboat images; a Clonezilla image has no image digest (its partclone checksums are verified before writing)")]
    Clonezilla,
}

/// "image NAME", or "the image in the stream".
fn which_image(image: &Option<String>) -> String {
    match image {
        Some(name) => format!("image {name}"),
        None => "the image in the stream".into(),
    }
}

/// What a cancelled operation left behind, for the frontend to tell the operator (the
/// `Display` text is the English clause appended to "cancelled").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aftermath {
    /// Nothing to add.
    Unstated,
    /// Nothing was written.
    NothingWritten,
    /// Target disks were partly written: inconsistent, they must be restored again before
    /// use.
    TargetInconsistent,
    /// The image in the repository is left incomplete; `delete --incomplete` removes it.
    ImageIncomplete,
    /// An image stream was cut off: the receiving side holds an incomplete image.
    StreamCutOff,
}

impl std::fmt::Display for Aftermath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Aftermath::Unstated => "",
            Aftermath::NothingWritten => "; nothing was written",
            Aftermath::TargetInconsistent => {
                "; the target disk is now inconsistent and must be restored again"
            }
            Aftermath::ImageIncomplete => {
                "; the image is left incomplete (lifeboat delete --incomplete removes it)"
            }
            Aftermath::StreamCutOff => {
                "; the stream was cut off, so the receiving side holds an incomplete image"
            }
        })
    }
}

/// What kind of failure an error is, for a frontend to act on (an exit status, a colour, a
/// next step) without matching the variants of several crates' error enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request itself is invalid (e.g. an image name with forbidden characters).
    Usage,
    /// A safety check refused the operation, or the operator said no; nothing was written.
    Refused,
    /// The image is damaged or incomplete.
    Damaged,
    /// The operation was cancelled.
    Cancelled,
    /// Anything else: a disk, the repository or the system failed.
    Failed,
}

impl ErrorClass {
    /// The class's name as the `kind` of an `error` event: `usage`, `refused`, `damaged`,
    /// `cancelled` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Usage => "usage",
            ErrorClass::Refused => "refused",
            ErrorClass::Damaged => "damaged",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::Failed => "failed",
        }
    }

    /// The class of a repository error (as [`RepoError::class`] sorts it).
    pub fn of_repo(e: &RepoError) -> ErrorClass {
        e.class().into()
    }
}

impl From<lifeboat_repo::ErrorClass> for ErrorClass {
    fn from(c: lifeboat_repo::ErrorClass) -> Self {
        match c {
            lifeboat_repo::ErrorClass::Usage => ErrorClass::Usage,
            lifeboat_repo::ErrorClass::Refused => ErrorClass::Refused,
            lifeboat_repo::ErrorClass::Damaged => ErrorClass::Damaged,
            lifeboat_repo::ErrorClass::Failed => ErrorClass::Failed,
        }
    }
}

impl EngineError {
    /// What the operator can do, for the variants whose advice follows their source
    /// (including a disk error, whose advice the transparent [`EngineError::Disk`] passes
    /// on; see [`chain_advice`] for a whole chain).
    pub fn advice(&self) -> Option<Advice> {
        match self {
            EngineError::Disk(e) => Advice::of_disk(e),
            EngineError::ImageWrite { .. } => Some(Advice::RepositorySpace),
            EngineError::StreamWrite { .. } => Some(Advice::StreamIncomplete),
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::Repo(e) => ErrorClass::of_repo(e),
            EngineError::AfterWrite { source, .. } => source.class(),
            EngineError::Refused(_) | EngineError::Passphrase(_) => ErrorClass::Refused,
            EngineError::Image {
                source: ContainerError::WrongPassphrase | ContainerError::Encrypted,
                ..
            } => ErrorClass::Refused,
            EngineError::Cancelled(_) => ErrorClass::Cancelled,
            EngineError::Image { .. } | EngineError::Damaged(_) => ErrorClass::Damaged,
            EngineError::Clonezilla { source, .. } if source.is_damage() => ErrorClass::Damaged,
            EngineError::Clonezilla { .. } => ErrorClass::Failed,
            EngineError::Disk(_)
            | EngineError::Table { .. }
            | EngineError::ImageWrite { .. }
            | EngineError::StreamWrite { .. }
            | EngineError::FileWrite { .. }
            | EngineError::SourceRead { .. }
            | EngineError::Mismatch(_) => ErrorClass::Failed,
        }
    }
}

/// What the operator can do, as data: the CLI words it in the operator's language; the
/// `Display` text is English.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Advice {
    /// The path could not be examined: check that it exists.
    CheckPathExists,
    /// Opening failed: check that it exists and that the program runs as root.
    CheckExistsAndRoot,
    /// An ioctl failed: the driver may not support it.
    DriverUnsupported,
    /// A read failed: the device may be failing or gone, or the image file truncated.
    DeviceFailing,
    /// A write failed: check that the device is writable, present and not failing.
    CheckWritable,
    /// A flush failed: the data may not be on the disk.
    NotFlushed,
    /// The kernel could not re-read the partition table of this disk.
    PartitionInUse {
        /// The disk.
        disk: PathBuf,
    },
    /// /sys or /proc is missing.
    SysMissing,
    /// Writing the image failed: check free space on the repository.
    RepositorySpace,
    /// Writing the stream failed: the receiver holds an incomplete image.
    StreamIncomplete,
    /// Reading a partition table failed.
    DiskReadable,
    /// Writing a partition table failed.
    TargetWritable,
}

impl Advice {
    /// The advice that goes with a disk error, for the variants that carry an underlying
    /// error (the others say what to do in their message).
    pub fn of_disk(e: &BlockDevError) -> Option<Advice> {
        Some(match e {
            BlockDevError::Stat { .. } => Advice::CheckPathExists,
            BlockDevError::Open { .. } => Advice::CheckExistsAndRoot,
            BlockDevError::Ioctl { .. } => Advice::DriverUnsupported,
            BlockDevError::Read { .. } => Advice::DeviceFailing,
            BlockDevError::Write { .. } => Advice::CheckWritable,
            BlockDevError::Sync { .. } => Advice::NotFlushed,
            BlockDevError::Reread { path, .. } => Advice::PartitionInUse { disk: path.clone() },
            BlockDevError::System { .. } => Advice::SysMissing,
            _ => return None,
        })
    }

    /// The advice that goes with a partition-table error.
    pub fn of_table(e: &PartError) -> Option<Advice> {
        match e {
            PartError::Read { .. } => Some(Advice::DiskReadable),
            PartError::Write { .. } => Some(Advice::TargetWritable),
            _ => None,
        }
    }
}

impl std::fmt::Display for Advice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Advice::CheckPathExists => f.write_str("check that the path exists"),
            Advice::CheckExistsAndRoot => {
                f.write_str("check that it exists and that you run as root")
            }
            Advice::DriverUnsupported => f.write_str("the device driver may not support it"),
            Advice::DeviceFailing => f.write_str(
                "the device may be failing or was removed, or the image file is truncated",
            ),
            Advice::CheckWritable => {
                f.write_str("check that the device is writable, present and not failing")
            }
            Advice::NotFlushed => f.write_str(
                "the data may not be on the disk, do not remove or power off the device and retry",
            ),
            Advice::PartitionInUse { disk } => write!(
                f,
                "a partition is probably still in use: unmount it, or run `partx -u {}` or reboot",
                disk.display()
            ),
            Advice::SysMissing => f.write_str("is /sys (and /proc) mounted?"),
            Advice::RepositorySpace => {
                f.write_str("check free space on the repository, then save again")
            }
            Advice::StreamIncomplete => {
                f.write_str("the receiving side holds an incomplete image, save again")
            }
            Advice::DiskReadable => {
                f.write_str("check that the disk is readable and the image file complete")
            }
            Advice::TargetWritable => {
                f.write_str("check that the target is writable and not failing")
            }
        }
    }
}

/// What the operator can do about an error, from the errors of its chain that carry advice
/// apart from their message (the engine's, the disks' and the partition tables'), outermost
/// first.
pub fn chain_advice(e: &(dyn std::error::Error + 'static)) -> Vec<Advice> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let a = if let Some(e) = err.downcast_ref::<EngineError>() {
            e.advice()
        } else if let Some(e) = err.downcast_ref::<BlockDevError>() {
            Advice::of_disk(e)
        } else if let Some(e) = err.downcast_ref::<PartError>() {
            Advice::of_table(e)
        } else {
            None
        };
        if let Some(a) = a {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        next = err.source();
    }
    out
}

/// Result alias of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_what_a_cancellation_left() {
        let refused = EngineError::Refused(Refusal::GivenTwice {
            disk: "/dev/sdb".into(),
        });
        assert_eq!(refused.class(), ErrorClass::Refused);
        assert_eq!(
            EngineError::Damaged("x".into()).class(),
            ErrorClass::Damaged
        );
        assert_eq!(
            EngineError::Mismatch(Mismatch::NoSource).class(),
            ErrorClass::Failed
        );
        let c = EngineError::Cancelled(Aftermath::ImageIncomplete);
        assert_eq!(c.class(), ErrorClass::Cancelled);
        assert_eq!(c.class().as_str(), "cancelled");
        assert!(c
            .to_string()
            .starts_with("cancelled; the image is left incomplete"));
        assert_eq!(
            EngineError::Cancelled(Aftermath::Unstated).to_string(),
            "cancelled"
        );
    }
}
