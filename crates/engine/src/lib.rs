//! The lifeboat engine.
//!
//! One job: compose the other crates into the operations an operator runs — [`plan_save`] +
//! [`SavePlan::execute`] (savedisk / saveparts; [`save`] does both), [`plan_restore`] +
//! [`RestorePlan::execute`] (restoredisk /
//! restoreparts, with every safety check before the first write), [`check`], and
//! [`describe_disk`], [`list_disks`], [`describe_source`] and [`compare_stored`] for
//! listings and verification. [`save_to_stream`] and [`plan_restore_stream`] do the same
//! with one sequential image stream (a pipe, `ssh`, `udp-sender`) instead of a repository.
//! Reading, compressing and writing overlap in a pipeline; progress is reported only through
//! [`Event`]s; every operation takes a cancellation flag. [`EngineError::class`] tells a
//! frontend what kind of failure an error is ([`ErrorClass`]).
//!
//! See `examples/save_restore.rs` for a complete save and restore of a disk image file, and
//! `tests/save_restore.rs` for plans, refusals and round trips driven as a library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod clonezilla;
mod error;
mod event;
mod grow;
mod import;
mod inspect;
mod listing;
mod plan;
mod reader;
mod restore;
mod save;
mod secret;
mod spool;
mod swap;

pub use check::{check, CheckOptions, CheckReport};
pub use clonezilla::{
    clonezilla_check, clonezilla_info, is_clonezilla, list_clonezilla, open_clonezilla,
    ClonezillaCheck, ClonezillaEntry, ClonezillaInfo, CzDisk, CzPart, CzPartclone, RepoImageFiles,
};
pub use error::{
    chain_advice, Advice, Aftermath, DigestUnprovable, EngineError, ErrorClass, Mismatch, Refusal,
    Result,
};
pub use event::{Event, EventSink};
pub use import::{clonezilla_manifest, plan_import};
pub use inspect::{describe_disk, open_source, open_volume, read_table, scanners};
pub use lifeboat_clonezilla;
pub use lifeboat_container::{
    chain_text, ContainerError, ImageKind, Manifest, PartitionRecord, VolumeRecord,
};
pub use lifeboat_repo::{ImageName, ImageStatus, RepoError, Repository};
pub use listing::{
    compare_stored, describe_source, disks_holding_path, filesystem_at, list_disks,
    mounted_filesystems, source_partitions, Comparison, DiskIdentity, DiskInfo, DiskKind, DiskRef,
    MountedFilesystem, Multipath, PartitionInfo, SourcePartition, SourceSummary,
};
pub use plan::{DiskPlan, FsGrow, Grow, IdentityPlan, PartPlan, RegionPlan, Span};
pub use reader::{Extracted, ImageReader, CACHE_CHUNKS};
pub use restore::{
    plan_restore, plan_restore_stream, RestoreOptions, RestorePlan, RestoreReport, Target,
};
pub use save::{plan_save, save, save_to_stream, SaveOptions, SavePlan};
pub use secret::{image_manifest, open_image, Passphrase, PassphraseSource};
pub use spool::{default_memory, SpoolOptions};

use lifeboat_repo::ImageSource;

/// Turns a container error into one that names the image file and the offset in it.
pub(crate) fn image_error(source: &ImageSource, e: ContainerError) -> EngineError {
    let (file, offset) = source.locate(e.position().unwrap_or(0));
    EngineError::Image {
        image: source.location().to_string(),
        file,
        offset,
        source: e,
    }
}

/// True when two descriptions of a disk agree on everything a restore relies on: size,
/// sector size, table, partition places and types, which partitions were saved, and the boot
/// regions. (Used-byte figures may differ: the DISK record carries the scanner's estimate,
/// the manifest the bytes actually stored.)
pub(crate) fn same_layout(
    a: &lifeboat_container::DiskRecord,
    b: &lifeboat_container::DiskRecord,
) -> bool {
    let parts = |d: &lifeboat_container::DiskRecord| {
        d.table
            .partitions
            .iter()
            .map(|p| (p.number, p.start, p.size, p.type_code.clone(), p.saved))
            .collect::<Vec<_>>()
    };
    a.size == b.size
        && a.logical_sector_size == b.logical_sector_size
        && a.table.kind == b.table.kind
        && a.table.disk_id == b.table.disk_id
        && parts(a) == parts(b)
        && a.boot_regions == b.boot_regions
}

/// Bytes a disk record says will be stored: its boot regions plus the used bytes of its
/// saved partitions.
pub(crate) fn expected_bytes(r: &lifeboat_container::DiskRecord) -> u64 {
    r.boot_regions.iter().map(|b| b.len).sum::<u64>()
        + r.table
            .partitions
            .iter()
            .filter(|p| p.saved)
            .map(|p| p.used_bytes)
            .sum::<u64>()
}

/// Entry points for the fuzz targets (`fuzz/`) and property tests into the restore planning,
/// which is otherwise private. **Not API**: hidden from the documentation, no stability
/// promise; nothing in lifeboat uses it.
#[doc(hidden)]
pub mod fuzzing {
    use crate::plan::{whole_disk, Grow, IdentityPlan};
    use lifeboat_container::DiskRecord;
    use std::path::Path;

    /// Plans a whole-disk restore of the disk record `json` (as an image stores it; what its
    /// parser refuses is refused here too) onto a target of `target_size` bytes, growing as
    /// `grow` says (0 none, 1 the last partition, 2 proportional), and checks what every
    /// plan must hold: each partition and each written region inside the target, partitions
    /// that do not overlap, data moved only to places inside the target that do not overlap,
    /// sizes kept unless grown (or an LVM PV shrunk). `Ok(true)`: planned; `Ok(false)`: the
    /// record or the target refused; `Err`: a plan that breaks a rule, described.
    pub fn plan_whole_disk(json: &[u8], target_size: u64, grow: u8) -> Result<bool, String> {
        let Ok(rec) = DiskRecord::from_json(json, 0) else {
            return Ok(false);
        };
        if !crate::same_layout(&rec, &rec) {
            return Err("a disk record differs from itself".into());
        }
        let _ = crate::expected_bytes(&rec);
        let grow = match grow % 3 {
            0 => Grow::None,
            1 => Grow::Last,
            _ => Grow::Proportional,
        };
        let target = IdentityPlan {
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            size: target_size,
        };
        let Ok(layout) = whole_disk(0, &rec, Path::new("/dev/target"), target, grow, &|_| None)
        else {
            return Ok(false);
        };
        let plan = &layout.plan;
        let inside = |what: &str, start: u64, len: u64| match start.checked_add(len) {
            Some(end) if end <= target_size => Ok(()),
            _ => Err(format!(
                "{what} at {start}+{len} passes the target's end {target_size}"
            )),
        };
        // (start, size, moved or resized)
        let mut places: Vec<(u64, u64, bool)> = Vec::new();
        for p in &plan.partitions {
            inside(&format!("partition {}", p.number), p.start, p.size)?;
            let lvm_shrunk = p.filesystem == "LVM2_member" && p.size < p.size_before;
            if p.size < p.size_before && !lvm_shrunk {
                return Err(format!("partition {} shrinks", p.number));
            }
            if grow == Grow::None
                && target_size >= rec.size
                && (p.start, p.size) != (p.start_before, p.size_before)
            {
                return Err(format!("partition {} moved without --grow", p.number));
            }
            places.push((
                p.start,
                p.size,
                (p.start, p.size) != (p.start_before, p.size_before),
            ));
        }
        places.sort_unstable();
        // Partitions may overlap only where the source's did and neither moves nor grows.
        for (i, a) in places.iter().enumerate() {
            if let Some(b) = places[i + 1..]
                .iter()
                .take_while(|b| b.0 < a.0 + a.1)
                .find(|b| a.2 || b.2)
            {
                return Err(format!("partitions overlap: {a:?} and {b:?}"));
            }
        }
        for r in plan.boot_regions.iter().filter(|r| r.action != "skip") {
            inside(&format!("region {}", r.what), r.offset, r.len)?;
        }
        if let Some(x) = &plan.extended {
            inside("the extended partition", x.start, x.size)?;
        }
        if let Some(at) = plan.gpt_backup_moved_to {
            inside(
                "the GPT backup",
                at,
                u64::from(rec.logical_sector_size.max(512)),
            )?;
        }
        if let Some(segs) = &layout.segs {
            // (target start, length, source start): places written twice must get the same
            // source bytes (overlapping regions of the record itself do, at the same shift).
            let mut dst: Vec<(u64, u64, u64)> = Vec::new();
            for s in segs {
                if s.src_start > s.src_end || s.src_end > rec.size {
                    return Err(format!(
                        "source range {}..{} outside the saved disk ({})",
                        s.src_start, s.src_end, rec.size
                    ));
                }
                let len = s.src_end - s.src_start;
                inside("moved data", s.dst_start, len)?;
                if len > 0 {
                    dst.push((s.dst_start, len, s.src_start));
                }
            }
            dst.sort_unstable();
            let conflict = |a: &(u64, u64, u64), b: &(u64, u64, u64)| {
                a.0 + a.1 > b.0 && a.0.wrapping_sub(a.2) != b.0.wrapping_sub(b.2)
            };
            for (i, a) in dst.iter().enumerate() {
                if let Some(b) = dst[i + 1..]
                    .iter()
                    .take_while(|b| b.0 < a.0 + a.1)
                    .find(|b| conflict(a, b))
                {
                    return Err(format!(
                        "two sources written to one place: {a:?} and {b:?} (target, length, source)"
                    ));
                }
            }
        }
        Ok(true)
    }
}
