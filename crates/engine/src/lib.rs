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
