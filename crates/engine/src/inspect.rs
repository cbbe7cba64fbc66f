//! Reading a source disk: its table, its partitions and what each holds.

use crate::error::{EngineError, Result};
use lifeboat_blockdev::Disk;
use lifeboat_container::{
    DiskRecord, Identity, PartitionRecord, RegionRecord, TableRecord, VolumeRecord,
};
use lifeboat_fs::{
    detect, Detection, FsError, InnerVolume, RawVolume, Scanner, SharedVolume, Slice, UsedBlocks,
};
use lifeboat_parttable::{
    read_layout, sniff_sector_size, Layout, PartError, PartitionKind, TableKind,
};
use lifeboat_volume::{member_used, MemberLayout, Scan, VolumeManager};
use std::collections::BTreeMap;
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
        &lifeboat_fs::swap::SwapScanner,
    ]
}

/// The engine's scan of a volume's content, for the volume layer: [`open_volume`], so a
/// logical volume may itself hold a volume manager's member (LVM on md RAID).
fn scan() -> Scan {
    std::sync::Arc::new(open_volume)
}

/// The stream of a volume copied whole because `what` refused it.
fn raw_because(len: u64, what: &str, e: &FsError) -> (Box<dyn UsedBlocks>, bool) {
    (
        Box::new(RawVolume::new(
            len,
            what,
            &format!("{}; copied whole", crate::chain_text(e)),
        )),
        true,
    )
}

/// The stream of a volume manager's member from its layout (or whole, when the layout
/// cannot be followed).
fn open_member(
    manager: &dyn VolumeManager,
    volume: SharedVolume,
    layout: Result<MemberLayout, FsError>,
) -> (Box<dyn UsedBlocks>, bool) {
    let len = volume.len();
    match layout.and_then(|l| member_used(&volume, l, scan())) {
        Ok(u) => (Box::new(u), false),
        Err(e) => raw_because(len, manager.name(), &e),
    }
}

/// Opens the used-block stream of a volume: the first scanner that recognises it, or the
/// whole volume raw when none does or the scanner refuses the metadata. The flag is true for
/// raw. The stream keeps its share of `volume`, so it can be kept and streamed later.
///
/// A volume that belongs to a volume manager (an LVM2 PV, an md RAID member) is laid out on
/// its own here (a volume group's other PVs are not known: their parts are copied whole); the
/// members of the source disks are laid out together by [`open_volumes`].
pub fn open_volume(volume: SharedVolume) -> (Box<dyn UsedBlocks>, bool) {
    let len = volume.len();
    if let Some(m) = lifeboat_volume::detect(&*volume) {
        let layout = m
            .assemble(std::slice::from_ref(&volume))
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(FsError::not_recognised(m.name(), "no layout")));
        return open_member(m, volume, layout);
    }
    match detect(&*volume, scanners()) {
        Detection::Scanner(s) => match s.open(volume) {
            Ok(u) => (u, false),
            Err(e) => raw_because(len, s.name(), &e),
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
    open_source_as(path, lifeboat_blockdev::OpenMode::Read)
}

/// [`open_source`] in the given mode (a save claims its block devices exclusively:
/// [`lifeboat_blockdev::OpenMode::ReadExclusive`]).
pub(crate) fn open_source_as(
    path: &std::path::Path,
    mode: lifeboat_blockdev::OpenMode,
) -> Result<Disk> {
    let disk = Disk::open(path, mode)?;
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

/// Opens the used-block stream of every volume of every disk (see [`volumes`]), each on a
/// window of its disk that shares the disk; one list per disk, in the order given.
///
/// The members of volume managers are laid out together first: the PVs of one volume group
/// on any of the disks form one group, so a logical volume spread over several disks is
/// scanned as one volume. Every other volume is opened by [`open_volume`].
pub(crate) fn open_volumes(disks: &[(&Arc<Disk>, &Layout)]) -> Vec<Vec<OpenedVolume>> {
    let mut slots: Vec<Vec<(VolumePlan, SharedVolume)>> = disks
        .iter()
        .map(|(disk, layout)| {
            volumes(layout, disk.size())
                .into_iter()
                .map(|plan| {
                    let slice: SharedVolume =
                        Arc::new(Slice::new(Arc::clone(disk), plan.start, plan.size));
                    (plan, slice)
                })
                .collect()
        })
        .collect();
    // Group the members: (manager index, group key) → their (disk, volume) positions.
    let mut groups: BTreeMap<(usize, String), Vec<(usize, usize)>> = BTreeMap::new();
    let mut opened: BTreeMap<(usize, usize), (Box<dyn UsedBlocks>, bool)> = BTreeMap::new();
    let managers = lifeboat_volume::managers();
    for (d, list) in slots.iter().enumerate() {
        for (v, (_, volume)) in list.iter().enumerate() {
            let Some(mi) = managers.iter().position(|m| m.probe(&**volume)) else {
                continue;
            };
            match managers[mi].group_key(&**volume) {
                Ok(key) => groups.entry((mi, key)).or_default().push((d, v)),
                Err(e) => {
                    let r = raw_because(volume.len(), managers[mi].name(), &e);
                    opened.insert((d, v), r);
                }
            }
        }
    }
    for ((mi, _), members) in groups {
        let m = managers[mi];
        let vols: Vec<SharedVolume> = members
            .iter()
            .map(|(d, v)| Arc::clone(&slots[*d][*v].1))
            .collect();
        let mut layouts = m.assemble(&vols).into_iter();
        for ((d, v), volume) in members.into_iter().zip(vols) {
            let layout = layouts
                .next()
                .unwrap_or_else(|| Err(FsError::not_recognised(m.name(), "no layout")));
            opened.insert((d, v), open_member(m, volume, layout));
        }
    }
    slots
        .iter_mut()
        .enumerate()
        .map(|(d, list)| {
            list.drain(..)
                .enumerate()
                .map(|(v, (plan, volume))| {
                    let (stream, raw) = opened
                        .remove(&(d, v))
                        .unwrap_or_else(|| open_volume(volume));
                    OpenedVolume { plan, stream, raw }
                })
                .collect()
        })
        .collect()
}

/// The records of the logical volumes a scanner found inside a volume manager's member.
fn volume_records(inner: &[InnerVolume]) -> Vec<VolumeRecord> {
    inner
        .iter()
        .map(|v| VolumeRecord {
            name: v.name.clone(),
            layout: v.layout.clone(),
            size: v.size,
            filesystem: v.info.fs_type.clone(),
            mode: if v.raw { "raw" } else { "used-blocks" }.into(),
            label: v.info.label.clone(),
            uuid: v.info.uuid.clone(),
            used_bytes: v.info.used_bytes,
            notes: v.info.warnings.clone(),
            volumes: volume_records(&v.info.volumes),
        })
        .collect()
}

/// Describes a disk as stored in an image: identity, geometry, table, every partition's
/// filesystem and used bytes. `saved` says which partition numbers will be stored (`None`:
/// all).
pub fn describe_disk(disk: &Arc<Disk>, index: u32, saved: Option<&[u32]>) -> Result<DiskRecord> {
    let layout = read_table(disk)?;
    let opened = open_volumes(&[(disk, &layout)]).pop().unwrap_or_default();
    Ok(describe_layout(disk, &layout, &opened, index, saved))
}

/// [`describe_disk`] with the disk's table read and its volumes opened (`opened`, from
/// [`open_volumes`]).
/// How a partition record names a partition's kind (`whole-disk` for none).
pub(crate) fn partition_kind_name(kind: Option<PartitionKind>) -> &'static str {
    match kind {
        None => "whole-disk",
        Some(PartitionKind::Primary) => "primary",
        Some(PartitionKind::Logical) => "logical",
        Some(PartitionKind::Gpt) => "gpt",
    }
}

/// How a table record names a table's kind.
pub(crate) fn table_kind_name(kind: TableKind) -> &'static str {
    match kind {
        TableKind::None => "none",
        TableKind::Mbr => "mbr",
        TableKind::Gpt => "gpt",
    }
}

/// A layout's boot regions as the records of an image.
pub(crate) fn region_records(layout: &Layout) -> Vec<RegionRecord> {
    layout
        .boot_regions
        .iter()
        .map(|r| RegionRecord {
            offset: r.offset,
            len: r.len,
            what: r.what.clone(),
        })
        .collect()
}

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
            kind: partition_kind_name(p.map(|p| p.kind)).into(),
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
            volumes: volume_records(&info.volumes),
            unallocated_bytes: info.unallocated_bytes,
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
            kind: table_kind_name(layout.kind).into(),
            disk_id: layout.disk_id.clone(),
            partitions: parts,
            warnings: layout.warnings.clone(),
        },
        boot_regions: if saved.is_some() {
            Vec::new()
        } else {
            region_records(layout)
        },
        stored_bytes: 0,
        compressed_bytes: 0,
        chunks: 0,
        data_crc32: String::new(),
    }
}
