//! The volume layer of lifeboat: volume managers between partitions and filesystems.
//!
//! One job: for a volume that belongs to a volume manager (an LVM2 physical volume, a Linux md
//! RAID member), say which of its bytes must be kept. A [`VolumeManager`] recognises its
//! members, groups them (the PVs of one volume group, wherever they lie) and lays each one out
//! as a [`MemberLayout`]: the manager's own metadata (kept whole), and the [`Area`]s where the
//! logical volumes lie, each volume readable as one [`SharedVolume`] through its mapped view
//! ([`MappedVolume`]). [`member_used`] then scans each logical volume with the caller's
//! filesystem scanners and maps the used extents back onto the member, so a 1 TB PV with 30 GB
//! of files is stored as 30 GB plus its metadata.
//!
//! The layer knows no filesystem: the caller hands [`member_used`] a [`Scan`] (the engine's
//! "what is used in this volume", which may itself find a volume manager: LVM on md). A new
//! manager (LUKS, Windows LDM) is one more [`VolumeManager`] in [`managers`]; the engine
//! does not change.
//!
//! ```
//! use lifeboat_fs::{SharedVolume, UsedBlocks};
//! use lifeboat_volume::{member_used, Area, Content, LogicalVolume, MemberLayout, Scan};
//! use lifeboat_fs::Extent;
//! use std::sync::Arc;
//!
//! // A member of 1 MiB: 4 KiB of metadata, then one 64 KiB logical volume at byte 8192
//! // whose scanner finds its first 4 KiB used.
//! let member: SharedVolume = Arc::new(vec![0u8; 1 << 20]);
//! let lv: SharedVolume = Arc::new(lifeboat_fs::Slice::new(member.clone(), 8192, 65536));
//! let layout = MemberLayout {
//!     kind: "example_member",
//!     label: None,
//!     uuid: None,
//!     kept: vec![Extent::new(0, 4096)],
//!     volumes: vec![LogicalVolume {
//!         name: "lv0".into(),
//!         layout: "linear".into(),
//!         size: 65536,
//!         content: Content::Mapped(lv),
//!     }],
//!     areas: vec![Area::linear(0, 0, 65536, 8192)],
//!     unallocated_bytes: Some((1 << 20) - 65536 - 8192),
//!     warnings: vec![],
//! };
//! struct FirstPage(lifeboat_fs::FsInfo, Option<Extent>);
//! impl UsedBlocks for FirstPage {
//!     fn info(&self) -> &lifeboat_fs::FsInfo { &self.0 }
//!     fn next_extent(&mut self) -> Result<Option<Extent>, lifeboat_fs::FsError> {
//!         Ok(self.1.take())
//!     }
//! }
//! let scan: Scan = Arc::new(|_volume| {
//!     let info = lifeboat_fs::FsInfo { used_bytes: 4096, ..Default::default() };
//!     let first = Some(Extent::new(0, 4096));
//!     (Box::new(FirstPage(info, first)) as Box<dyn UsedBlocks>, false)
//! });
//! let mut used = member_used(&member, layout, scan).unwrap();
//! assert_eq!(used.info().used_bytes, 8192);
//! assert_eq!(used.next_extent().unwrap(), Some(Extent::new(0, 4096)));
//! assert_eq!(used.next_extent().unwrap(), Some(Extent::new(8192, 4096)));
//! assert_eq!(used.next_extent().unwrap(), None);
//! ```
#![forbid(unsafe_code)]

mod area;
mod compose;
pub mod lvm;
pub mod md;
mod view;

pub use area::Area;
pub use compose::{member_used, LayoutError, MemberUsedBlocks};
pub use view::MappedVolume;

use lifeboat_fs::{Extent, FsError, ReadAt, SharedVolume, UsedBlocks};
use std::sync::Arc;

/// The caller's scan of a volume's content: its used-extent stream, and true when it is
/// copied whole (no scanner recognised it, or one refused it).
pub type Scan = Arc<dyn Fn(SharedVolume) -> (Box<dyn UsedBlocks>, bool) + Send + Sync>;

/// What a logical volume's bytes are to the layer.
#[derive(Clone)]
pub enum Content {
    /// Readable as one volume: its content is scanned.
    Mapped(SharedVolume),
    /// Copied whole wherever it lies, for the reason given (a layout that is not mapped, such
    /// as a thin pool or a snapshot, or a part on a member that is not in the image).
    Raw(String),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Mapped(v) => write!(f, "Mapped({} bytes)", v.len()),
            Content::Raw(r) => write!(f, "Raw({r:?})"),
        }
    }
}

/// A logical volume of a group.
#[derive(Debug, Clone)]
pub struct LogicalVolume {
    /// Its name as operators know it, e.g. `vg_web01/root`, `md0`.
    pub name: String,
    /// How it is mapped: `linear`, `striped`, `raid1`, or the manager's name for a layout it
    /// does not map (`thin-pool`, `snapshot`, ...).
    pub layout: String,
    /// Its size in bytes.
    pub size: u64,
    /// How its bytes are kept.
    pub content: Content,
}

/// One member of a group as its manager lays it out. Offsets are bytes of the member.
#[derive(Debug, Clone)]
pub struct MemberLayout {
    /// What the member is, as `blkid` names it: `LVM2_member`, `linux_raid_member`.
    pub kind: &'static str,
    /// The group's name (volume group, array name).
    pub label: Option<String>,
    /// The member's UUID (PV UUID, array UUID).
    pub uuid: Option<String>,
    /// The manager's own structures on this member (labels, headers, metadata areas,
    /// superblocks, bitmaps), always kept whole.
    pub kept: Vec<Extent>,
    /// Every logical volume that has an area on this member ([`Area::lv`] indexes it).
    pub volumes: Vec<LogicalVolume>,
    /// Where the logical volumes lie on this member.
    pub areas: Vec<Area>,
    /// Bytes that belong to no logical volume and no metadata (not stored), when the manager
    /// knows.
    pub unallocated_bytes: Option<u64>,
    /// Things the operator should know (unmapped layouts, missing members, ...).
    pub warnings: Vec<String>,
}

/// A volume manager: recognises its members and lays them out.
pub trait VolumeManager: Send + Sync {
    /// Short name, e.g. `lvm2`.
    fn name(&self) -> &'static str;
    /// Cheap check of the signature: is this volume one of our members?
    fn probe(&self, volume: &dyn ReadAt) -> bool;
    /// The group this member belongs to: members with the same key are laid out together
    /// by one [`assemble`](Self::assemble) (the PVs of one volume group). A member that
    /// stands alone returns a key of its own.
    fn group_key(&self, volume: &dyn ReadAt) -> Result<String, FsError>;
    /// Lays out the members of one group, one result per member in the order given. A
    /// member that cannot be laid out gets an error (the caller copies it whole); the others
    /// still get their layouts.
    fn assemble(&self, members: &[SharedVolume]) -> Vec<Result<MemberLayout, FsError>>;
}

/// The volume managers built in, in probing order (md first: a RAID member with its
/// superblock at the end holds the array's content, maybe an LVM label, at its start).
pub fn managers() -> &'static [&'static dyn VolumeManager] {
    &[&md::Md, &lvm::Lvm2]
}

/// The first manager whose probe accepts `volume`.
pub fn detect(volume: &dyn ReadAt) -> Option<&'static dyn VolumeManager> {
    managers().iter().copied().find(|m| m.probe(volume))
}
