//! What a frontend shows besides the operations themselves: the disks of the machine, what a
//! disk or image file is (opened the way a save opens it), the filesystems under the
//! partitions, the mounted filesystems that can hold a repository, and a byte-for-byte
//! comparison of two disks over the extents an image stores.

use crate::error::{EngineError, Result};
use crate::image_error;
use crate::inspect::{open_source, read_table};
use lifeboat_blockdev::{Disk, OpenMode};
use lifeboat_container::{Record, StreamReader};
use lifeboat_fs::{content_type, SharedVolume, Slice};
use lifeboat_repo::{ImageName, Repository};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lifeboat_blockdev::{
    disks_holding_path, list_disks, mounted_filesystems, DiskIdentity, DiskInfo, DiskKind, DiskRef,
    MountedFilesystem, Multipath, PartitionInfo,
};

/// A source disk (or disk image file) as a frontend names it before an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSummary {
    /// The path given.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Model, serial and WWN, as far as known.
    pub identity: DiskIdentity,
}

/// One partition of a source disk, with the filesystem signature found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePartition {
    /// Partition number (as in `/dev/sdb2` → 2).
    pub number: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// The partition type in words.
    pub type_name: String,
    /// The filesystem signature found (`ext4`, `ntfs`, …), if any.
    pub filesystem: Option<String>,
}

/// Size and identity of a disk or image file, opened as a save opens it (an image file that
/// holds a 4096-byte-sector GPT is read with 4096-byte sectors).
pub fn describe_source(path: &Path) -> Result<SourceSummary> {
    let disk = open_source(path)?;
    Ok(SourceSummary {
        path: path.to_path_buf(),
        size: disk.size(),
        identity: disk.identity(),
    })
}

/// The partitions of a disk or image file, read as a save reads them, each with the
/// filesystem signature in it.
pub fn source_partitions(path: &Path) -> Result<Vec<SourcePartition>> {
    let disk = Arc::new(open_source(path)?);
    let layout = read_table(&disk)?;
    Ok(layout
        .partitions
        .iter()
        .map(|p| SourcePartition {
            number: p.number,
            start: p.start,
            size: p.size,
            type_name: p.type_name.clone(),
            filesystem: signature(&disk, p.start, p.size),
        })
        .collect())
}

/// The filesystem signature in `size` bytes at `start` of a disk (a partition of a listed
/// disk), or `None` when there is none or the disk cannot be read.
pub fn filesystem_at(path: &Path, start: u64, size: u64) -> Option<String> {
    let disk = Arc::new(Disk::open(path, OpenMode::Read).ok()?);
    signature(&disk, start, size)
}

/// What `size` bytes at `start` of `disk` hold, named as `blkid` names it; a volume manager's
/// member with its group's name (`LVM2_member (vg_web01)`).
fn signature(disk: &Arc<Disk>, start: u64, size: u64) -> Option<String> {
    let volume: SharedVolume = Arc::new(Slice::new(Arc::clone(disk), start, size));
    let kind = content_type(&*volume)?;
    let group = lifeboat_volume::detect(&*volume).and_then(|m| {
        m.assemble(std::slice::from_ref(&volume))
            .pop()
            .and_then(|l| l.ok())
            .and_then(|l| l.label)
    });
    Some(match group {
        Some(g) => format!("{kind} ({g})"),
        None => kind,
    })
}

/// The outcome of [`compare_stored`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Bytes compared.
    pub bytes: u64,
    /// Extents compared.
    pub extents: u64,
    /// The first extent (start, end) whose bytes differ, if any; comparing stops there.
    pub first_difference: Option<(u64, u64)>,
}

/// Compares two disks (or image files) over every extent the image `name` stores: after a
/// restore of an image saved from `a` onto `b`, every one of those bytes must agree.
pub fn compare_stored(
    repo: &Repository,
    name: &ImageName,
    a: &Path,
    b: &Path,
) -> Result<Comparison> {
    let open = |p: &Path| {
        File::open(p).map_err(|source| EngineError::SourceRead {
            disk: p.display().to_string(),
            partition: None,
            offset: 0,
            source,
        })
    };
    let read = |f: &File, p: &Path, buf: &mut [u8], offset: u64| {
        f.read_exact_at(buf, offset)
            .map_err(|source| EngineError::SourceRead {
                disk: p.display().to_string(),
                partition: None,
                offset,
                source,
            })
    };
    let (fa, fb) = (open(a)?, open(b)?);
    let source = repo.open_image(name)?;
    let mut reader = StreamReader::new(source.reader()).map_err(|e| image_error(&source, e))?;
    let mut out = Comparison::default();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    while let Some(rec) = reader.next_record().map_err(|e| image_error(&source, e))? {
        let Record::Chunk(c) = rec else { continue };
        for e in &c.extents {
            let len = usize::try_from(e.len).map_err(|_| {
                EngineError::Damaged(format!(
                "image {name}: an extent of {} bytes at {} is larger than this machine can hold",
                e.len, e.offset
            ))
            })?;
            x.resize(len, 0);
            y.resize(len, 0);
            read(&fa, a, &mut x, e.offset)?;
            read(&fb, b, &mut y, e.offset)?;
            if x != y {
                out.first_difference = Some((e.offset, e.end()));
                return Ok(out);
            }
            out.bytes += e.len;
            out.extents += 1;
        }
    }
    Ok(out)
}
