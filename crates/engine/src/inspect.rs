//! Reading a source disk: its table, its partitions and what each holds.

use crate::error::{EngineError, Result};
use lifeboat_blockdev::Disk;
use lifeboat_container::{DiskRecord, Identity, PartitionRecord, RegionRecord, TableRecord};
use lifeboat_fs::{detect, Detection, RawVolume, Scanner, SharedVolume, Slice, UsedBlocks};
use lifeboat_parttable::{
    read_layout, sniff_sector_size, Layout, PartError, PartitionKind, TableKind,
};
use std::sync::Arc;

/// The filesystem scanners built in, in probing order.
pub fn scanners() -> &'static [&'static dyn Scanner] {
    &[
        &lifeboat_fs_ext::ExtScanner,
        &lifeboat_fs_xfs::XfsScanner,
        &lifeboat_fs_ntfs::NtfsScanner,
        &lifeboat_fs_fat::FatScanner,
        &lifeboat_fs_fat::ExfatScanner,
        &lifeboat_fs_vmfs::VmfsScanner,
    ]
}

/// Opens the used-block stream of a volume: the first scanner that recognises it, or the
/// whole volume raw when none does or the scanner refuses the metadata. The flag is true for
/// raw. The stream keeps its share of `volume`, so it can be kept and streamed later.
pub fn open_volume(volume: SharedVolume) -> (Box<dyn UsedBlocks>, bool) {
    let len = volume.len();
    match detect(&*volume, scanners()) {
        Detection::Scanner(s) => match s.open(volume) {
            Ok(u) => (u, false),
            Err(e) => (
                Box::new(RawVolume::new(
                    len,
                    s.name(),
                    &format!("{}; copied whole", crate::chain_text(&e)),
                )),
                true,
            ),
        },
        Detection::Raw { fs_type, reason } => {
            (Box::new(RawVolume::new(len, &fs_type, &reason)), true)
        }
    }
}

/// Opens a source disk for reading. An image file has no sector size of its own: when it
/// holds a GPT written for 4096-byte sectors (header signature at byte 4096, none at 512), it
/// is read as a 4096-byte-sector disk; otherwise as 512.
pub fn open_source(path: &std::path::Path) -> Result<Disk> {
    let disk = Disk::open(path, lifeboat_blockdev::OpenMode::Read)?;
    if disk.is_block_device() {
        return Ok(disk);
    }
    match sniff_sector_size(&disk) {
        Some(ss) if ss != disk.logical_sector_size() => Ok(disk.with_logical_sector_size(ss)?),
        _ => Ok(disk),
    }
}

/// A disk's table read leniently: a damaged table is reported and the disk is then treated
/// as having none (its whole surface is imaged raw or as one filesystem).
pub fn read_table(disk: &Disk) -> Result<Layout> {
    let ss = disk.logical_sector_size();
    match read_layout(disk, ss) {
        Ok(l) => Ok(l),
        Err(e @ PartError::Corrupt { .. }) => Ok(Layout {
            kind: TableKind::None,
            sector_size: ss,
            disk_size: disk.size(),
            disk_id: None,
            partitions: Vec::new(),
            boot_regions: Vec::new(),
            warnings: vec![format!("{e}; the disk is imaged as a whole")],
        }),
        Err(source) => Err(EngineError::Table {
            disk: disk.path().display().to_string(),
            source,
        }),
    }
}

/// One volume to image: a partition, or the whole disk when there is no table.
#[derive(Debug, Clone)]
pub(crate) struct VolumePlan {
    pub number: u32,
    pub start: u64,
    pub size: u64,
}

/// The volumes of a layout, sorted by start.
fn volumes(layout: &Layout, disk_size: u64) -> Vec<VolumePlan> {
    if layout.kind == TableKind::None {
        return vec![VolumePlan {
            number: 0,
            start: 0,
            size: disk_size,
        }];
    }
    let mut v: Vec<VolumePlan> = layout
        .partitions
        .iter()
        .map(|p| VolumePlan {
            number: p.number,
            start: p.start,
            size: p.size.min(disk_size.saturating_sub(p.start)),
        })
        .collect();
    v.sort_by_key(|p| p.start);
    v
}

/// A volume of a source disk with its used-block stream, opened once: described from the
/// stream's [`UsedBlocks::info`], then streamed from the same stream.
pub(crate) struct OpenedVolume {
    pub plan: VolumePlan,
    pub stream: Box<dyn UsedBlocks>,
    pub raw: bool,
}

/// Opens the used-block stream of every volume of `layout` (see [`volumes`]), each on a
/// window of `disk` that shares the disk.
pub(crate) fn open_volumes(disk: &Arc<Disk>, layout: &Layout) -> Vec<OpenedVolume> {
    volumes(layout, disk.size())
        .into_iter()
        .map(|plan| {
            let slice = Slice::new(Arc::clone(disk), plan.start, plan.size);
            let (stream, raw) = open_volume(Arc::new(slice));
            OpenedVolume { plan, stream, raw }
        })
        .collect()
}

/// Describes a disk as stored in an image: identity, geometry, table, every partition's
/// filesystem and used bytes. `saved` says which partition numbers will be stored (`None`:
/// all).
pub fn describe_disk(disk: &Arc<Disk>, index: u32, saved: Option<&[u32]>) -> Result<DiskRecord> {
    let layout = read_table(disk)?;
    let opened = open_volumes(disk, &layout);
    Ok(describe_layout(disk, &layout, &opened, index, saved))
}

/// [`describe_disk`] with the disk's table read and its volumes opened (`opened`, from
/// [`open_volumes`]).
pub(crate) fn describe_layout(
    disk: &Disk,
    layout: &Layout,
    opened: &[OpenedVolume],
    index: u32,
    saved: Option<&[u32]>,
) -> DiskRecord {
    let id = disk.identity();
    let mut parts = Vec::new();
    for OpenedVolume {
        plan: v,
        stream,
        raw,
    } in opened
    {
        let raw = *raw;
        let info = stream.info();
        let p = layout.partition(v.number);
        parts.push(PartitionRecord {
            number: v.number,
            start: v.start,
            size: v.size,
            kind: match p.map(|p| p.kind) {
                None => "whole-disk".into(),
                Some(PartitionKind::Primary) => "primary".into(),
                Some(PartitionKind::Logical) => "logical".into(),
                Some(PartitionKind::Gpt) => "gpt".into(),
            },
            type_code: p.map(|p| p.type_code.clone()).unwrap_or_default(),
            type_name: p.map(|p| p.type_name.clone()).unwrap_or_default(),
            name: p.map(|p| p.name.clone()).unwrap_or_default(),
            guid: p.and_then(|p| p.guid.clone()),
            bootable: p.is_some_and(|p| p.bootable),
            saved: saved.is_none_or(|s| s.contains(&v.number)),
            filesystem: info.fs_type.clone(),
            mode: if raw { "raw" } else { "used-blocks" }.into(),
            label: info.label.clone(),
            uuid: info.uuid.clone(),
            block_size: info.block_size,
            used_bytes: info.used_bytes,
            notes: info.warnings.clone(),
            files: info.files,
        });
    }
    DiskRecord {
        index,
        source: disk.path().display().to_string(),
        identity: Identity {
            model: id.model,
            vendor: id.vendor,
            serial: id.serial,
            wwn: id.wwn,
        },
        size: disk.size(),
        logical_sector_size: disk.logical_sector_size(),
        physical_sector_size: disk.physical_sector_size(),
        table: TableRecord {
            kind: match layout.kind {
                TableKind::None => "none",
                TableKind::Mbr => "mbr",
                TableKind::Gpt => "gpt",
            }
            .into(),
            disk_id: layout.disk_id.clone(),
            partitions: parts,
            warnings: layout.warnings.clone(),
        },
        boot_regions: if saved.is_some() {
            Vec::new()
        } else {
            layout
                .boot_regions
                .iter()
                .map(|r| RegionRecord {
                    offset: r.offset,
                    len: r.len,
                    what: r.what.clone(),
                })
                .collect()
        },
        stored_bytes: 0,
        compressed_bytes: 0,
        chunks: 0,
        data_crc32: String::new(),
    }
}
