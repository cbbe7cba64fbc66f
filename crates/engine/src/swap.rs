//! After a restore's data: the scratch space of every restored swap area is zeroed.
//!
//! A swap area is saved as its header page only (the rest is pages the kernel wrote out and
//! will overwrite at will). On the target the rest would otherwise keep whatever the disk held
//! before — another machine's swapped-out memory, or garbage — so it is zeroed (a punched hole
//! in an image file, `BLKZEROOUT` on a device): a swap partition, and a swap LV inside a
//! restored LVM2 PV, also inside an md RAID1 member (found through the restored metadata;
//! linear areas).

use crate::error::Result;
use crate::plan::PartPlan;
use lifeboat_blockdev::{Disk, OpenMode};
use lifeboat_container::{PartitionRecord, VolumeRecord};
use lifeboat_fs::{SharedVolume, Slice};
use std::sync::Arc;

/// Zeroes the swap areas among the partitions `parts` (as placed on the target) of `disk`,
/// whose records are `records`. Returns the bytes zeroed.
pub(crate) fn clear_swap_areas(
    disk: &Disk,
    parts: &[PartPlan],
    records: &[PartitionRecord],
) -> Result<u64> {
    let mut zeroed = 0u64;
    for p in parts {
        let Some(rec) = records.iter().find(|r| r.number == p.number) else {
            continue;
        };
        if !rec.saved || rec.mode != "used-blocks" {
            continue;
        }
        if rec.filesystem == "swap" {
            let page = rec.used_bytes;
            if page > 0 && page < p.size {
                disk.write_zeroes(p.start + page, p.size - page)?;
                zeroed += p.size - page;
            }
            continue;
        }
        let swaps: Vec<&VolumeRecord> = rec.volumes.iter().filter(|v| holds_swap(v)).collect();
        if swaps.is_empty() {
            continue;
        }
        zeroed += clear_swap_lvs(disk, p, &swaps)?;
    }
    Ok(zeroed)
}

/// True when `v` is, or holds, a swap area that was saved by its header.
fn holds_swap(v: &VolumeRecord) -> bool {
    (v.filesystem == "swap" && v.mode == "used-blocks") || v.volumes.iter().any(holds_swap)
}

/// Bytes of the disk behind a range of a volume: (offset, length) runs.
type ToDisk<'a> = &'a dyn Fn(u64, u64) -> Vec<(u64, u64)>;

/// The swap volumes among `records` (and inside them: LVM on md RAID) of the volume manager's
/// member restored as partition `p`: everything after each one's header page, found through
/// the metadata as now on the target.
fn clear_swap_lvs(disk: &Disk, p: &PartPlan, records: &[&VolumeRecord]) -> Result<u64> {
    disk.sync()?;
    // A fresh read handle; clean cached pages of the device are dropped first, so the
    // metadata is read as just written.
    let reader = Disk::open(disk.path(), OpenMode::Read)?;
    let _ = rustix::fs::fadvise(reader.file(), 0, None, rustix::fs::Advice::DontNeed);
    let reader: SharedVolume = Arc::new(reader);
    let member: SharedVolume = Arc::new(Slice::new(reader, p.start, p.size));
    let start = p.start;
    let records: Vec<VolumeRecord> = records.iter().map(|v| (*v).clone()).collect();
    clear_in(
        disk,
        &member,
        &records,
        &move |o, l| vec![(start + o, l)],
        0,
    )
}

/// [`clear_swap_lvs`] for one member, at nesting `depth`.
fn clear_in(
    disk: &Disk,
    member: &SharedVolume,
    records: &[VolumeRecord],
    to_disk: ToDisk<'_>,
    depth: u32,
) -> Result<u64> {
    if depth > 4 {
        return Ok(0);
    }
    let Some(m) = lifeboat_volume::detect(&**member) else {
        return Ok(0);
    };
    let Some(Ok(layout)) = m.assemble(std::slice::from_ref(member)).pop() else {
        return Ok(0);
    };
    let mut zeroed = 0u64;
    for v in records {
        let Some(i) = layout.volumes.iter().position(|l| l.name == v.name) else {
            continue;
        };
        let areas: Vec<&lifeboat_volume::Area> = layout
            .areas
            .iter()
            .filter(|a| a.lv == i && a.stripes == 1)
            .collect();
        let lv_to_disk = |lo: u64, len: u64| -> Vec<(u64, u64)> {
            areas
                .iter()
                .filter_map(|a| a.map(lo, len))
                .flat_map(|(o, l)| to_disk(o, l))
                .collect()
        };
        if v.filesystem == "swap" && v.mode == "used-blocks" {
            let page = v.used_bytes;
            if page < v.size {
                for (off, len) in lv_to_disk(page, v.size - page) {
                    disk.write_zeroes(off, len)?;
                    zeroed += len;
                }
            }
        } else if !v.volumes.is_empty() {
            if let lifeboat_volume::Content::Mapped(view) = &layout.volumes[i].content {
                zeroed += clear_in(disk, view, &v.volumes, &lv_to_disk, depth + 1)?;
            }
        }
    }
    Ok(zeroed)
}
