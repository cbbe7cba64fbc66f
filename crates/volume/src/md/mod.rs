//! Linux md RAID: members of RAID1 arrays are laid out (each holds the whole array); members
//! of other levels are copied whole.
//!
//! A RAID1 member is its superblock (and write-intent bitmap, bad-block log), kept whole, and
//! the array's data, one linear area from `data_offset` on. Each member stands alone in its
//! own group: mirrors are copies, and each is scanned and stored as it is.

pub mod superblock;

use crate::{Area, Content, LogicalVolume, MemberLayout, VolumeManager};
use lifeboat_fs::{bytes::OutOfBounds, read_exact, Extent, FsError, ReadAt, SharedVolume, Slice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
pub use superblock::{Superblock, Version};

/// The write-intent bitmap superblock's magic (`bitm`).
pub const BITMAP_MAGIC: u32 = 0x6d74_6962;
/// A bitmap larger than this is not believed (a 16 TiB member at the smallest chunk of 4 KiB
/// needs 512 MiB; mdadm picks far larger chunks).
pub const MAX_BITMAP_BYTES: u64 = 1 << 30;

/// Why an md member is refused (and so copied whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MdError {
    /// No superblock at any of the four places.
    #[error("no md superblock (0.90, 1.0, 1.1 or 1.2)")]
    NoSuperblock,
    /// The checksum does not match.
    #[error(
        "superblock at byte {offset}: checksum {stored:#010x} stored, {computed:#010x} computed"
    )]
    Checksum {
        /// Where the superblock lies.
        offset: u64,
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// A field is out of range.
    #[error("superblock: {0}")]
    Invalid(String),
    /// Something lifeboat does not lay out.
    #[error("{0}")]
    Unsupported(String),
    /// The array's level is not RAID1.
    #[error("RAID level {0} is copied whole")]
    Level(String),
    /// A field lies outside its structure.
    #[error(transparent)]
    OutOfBounds(#[from] OutOfBounds),
}

/// The md volume manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct Md;

/// The level as mdadm names it.
pub fn level_name(level: i32) -> String {
    match level {
        -1 => "linear".into(),
        -4 => "multipath".into(),
        -5 => "faulty".into(),
        l => l.to_string(),
    }
}

/// The superblock of `volume`: 1.2, 1.1, 1.0, then 0.90 (a member carries one).
pub fn find(volume: &dyn ReadAt) -> Result<Superblock, FsError> {
    let len = volume.len();
    let mut buf = vec![0u8; superblock::SB_BYTES];
    for v in [Version::V1_2, Version::V1_1, Version::V1_0, Version::V0_90] {
        let Some(at) = v.offset(len) else { continue };
        read_exact(volume, &mut buf, at)?;
        match Superblock::parse(&buf, v, at) {
            Ok(Some(sb)) => return Ok(sb),
            Ok(None) => {}
            Err(e) => return Err(FsError::corrupt("md", e)),
        }
    }
    Err(FsError::not_recognised("md", MdError::NoSuperblock))
}

/// Bytes of the write-intent bitmap whose superblock is at `at`, read from its `bitm` header:
/// 256 bytes of header then one bit per chunk of the synced size, rounded up to 512 bytes.
pub fn bitmap_bytes(volume: &dyn ReadAt, at: u64) -> Result<u64, FsError> {
    let mut b = [0u8; 256];
    read_exact(volume, &mut b, at)?;
    let bad = |r: String| FsError::corrupt("md", MdError::Invalid(r));
    let f = |o| lifeboat_fs::bytes::u32_at(&b, o).unwrap_or(0);
    if f(0) != BITMAP_MAGIC {
        return Err(bad(format!("no bitmap magic at byte {at}")));
    }
    let sync = lifeboat_fs::bytes::u64_at(&b, 40).unwrap_or(0);
    let chunk = u64::from(f(52));
    if chunk < 512 || !chunk.is_power_of_two() {
        return Err(bad(format!("bitmap chunk size {chunk}")));
    }
    let bits = sync.saturating_mul(512).div_ceil(chunk);
    let total = 256 + bits.div_ceil(8);
    if total > MAX_BITMAP_BYTES {
        return Err(bad(format!("bitmap of {total} bytes")));
    }
    Ok(total.div_ceil(512) * 512)
}

static MEMBER_SERIAL: AtomicU64 = AtomicU64::new(0);

impl VolumeManager for Md {
    fn name(&self) -> &'static str {
        "md"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        let len = volume.len();
        let mut m = [0u8; 4];
        [Version::V1_2, Version::V1_1, Version::V1_0, Version::V0_90]
            .into_iter()
            .filter_map(|v| v.offset(len))
            .any(|at| {
                volume.read_exact_at(&mut m, at).is_ok()
                    && u32::from_le_bytes(m) == superblock::MD_MAGIC
            })
    }

    /// Each member is a group of its own (RAID1 members are copies, laid out one by one):
    /// the array UUID and member number, with a serial that keeps two copies of one member
    /// (a cloned disk) apart.
    fn group_key(&self, volume: &dyn ReadAt) -> Result<String, FsError> {
        let sb = find(volume)?;
        Ok(format!(
            "md:{}:{}:#{}",
            sb.uuid(),
            sb.dev_number,
            MEMBER_SERIAL.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn assemble(&self, members: &[SharedVolume]) -> Vec<Result<MemberLayout, FsError>> {
        members.iter().map(lay_out).collect()
    }
}

fn invalid(r: String) -> FsError {
    FsError::corrupt("md", MdError::Invalid(r))
}

/// Lays out one md member.
pub fn lay_out(member: &SharedVolume) -> Result<MemberLayout, FsError> {
    let sb = find(member.as_ref())?;
    let len = member.len();
    if sb.level != 1 {
        return Err(FsError::corrupt("md", MdError::Level(level_name(sb.level))));
    }
    use superblock::feature;
    for (bit, what) in [
        (feature::RESHAPE_ACTIVE, "a reshape is in progress"),
        (feature::NEW_OFFSET, "a reshape is moving the data"),
        (feature::JOURNAL, "a journal"),
    ] {
        if sb.feature_map & bit != 0 {
            return Err(FsError::corrupt(
                "md",
                MdError::Unsupported(format!("{what}: copied whole")),
            ));
        }
    }
    let mut warnings = Vec::new();
    let in_array = match (sb.role, sb.disk_state) {
        (Some(superblock::ROLE_FAULTY), _) => {
            return Err(FsError::corrupt(
                "md",
                MdError::Unsupported("the member is marked faulty: copied whole".into()),
            ))
        }
        (Some(superblock::ROLE_SPARE | superblock::ROLE_JOURNAL), _) => false,
        (Some(_), _) => true,
        // 0.90: faulty bit 0; active 1, sync 2.
        (None, Some(state)) if state & 1 != 0 => {
            return Err(FsError::corrupt(
                "md",
                MdError::Unsupported("the member is marked faulty: copied whole".into()),
            ))
        }
        (None, Some(state)) => state & 4 != 0,
        (None, None) => false,
    };
    if let Some(r) = sb.recovery_offset {
        warnings.push(format!(
            "the member is being recovered ({r} of {} sectors in sync): the copy may not \
             match its mirror",
            sb.size
        ));
    }
    if sb.resync_offset != u64::MAX {
        warnings.push(format!(
            "the array was not clean (resync at sector {}): the mirrors may differ",
            sb.resync_offset
        ));
    }
    let data_start = sb
        .data_offset
        .checked_mul(512)
        .ok_or_else(|| invalid("data_offset overflows".into()))?;
    let array = sb
        .size
        .checked_mul(512)
        .ok_or_else(|| invalid("size overflows".into()))?;
    let data_room = sb.data_size.saturating_mul(512);
    if array > data_room {
        return Err(invalid(format!(
            "the array uses {} sectors of each member, which has {} for data",
            sb.size, sb.data_size
        )));
    }
    let data_end = data_start.saturating_add(data_room);
    if data_end > len {
        return Err(invalid(format!(
            "the data ends at byte {data_end}, beyond the member's {len} bytes"
        )));
    }
    // Kept: the superblock, the bitmap and bad-block log, and every byte outside the data
    // area (where they all lie: before the data for 1.1/1.2, after it for 1.0/0.90).
    let mut own = vec![Extent::new(sb.offset, superblock::SB_BYTES as u64)];
    let rel = |off: i64| -> Option<u64> { sb.offset.checked_add_signed(off.checked_mul(512)?) };
    if let Some(b) = sb.bitmap_offset {
        let at = rel(b).ok_or_else(|| invalid(format!("bitmap offset {b}")))?;
        own.push(Extent::new(at, bitmap_bytes(member.as_ref(), at)?));
    } else if sb.version == Version::V0_90
        && bitmap_bytes(member.as_ref(), sb.offset + 4096).is_ok()
    {
        own.push(Extent::new(
            sb.offset + 4096,
            bitmap_bytes(member.as_ref(), sb.offset + 4096)?,
        ));
    }
    if let Some((o, n)) = sb.bad_block_log {
        let at = rel(o).ok_or_else(|| invalid(format!("bad-block log offset {o}")))?;
        own.push(Extent::new(at, n.saturating_mul(512)));
    }
    for e in &own {
        if e.end() > len || (e.offset < data_start + array && e.end() > data_start) {
            return Err(invalid(format!(
                "metadata at bytes {}..{} overlaps the data ({data_start}..{}) or leaves \
                 the member",
                e.offset,
                e.end(),
                data_start + array
            )));
        }
    }
    let mut kept = vec![
        Extent::new(0, data_start),
        Extent::new(data_end, len - data_end),
    ];
    for e in own {
        if !kept
            .iter()
            .any(|k| k.offset <= e.offset && e.end() <= k.end())
        {
            // Between the array's end and the end of the data room.
            kept.push(e);
        }
    }
    kept.retain(|e| e.len > 0);
    kept.sort_by_key(|e| e.offset);
    let kept_bytes: u64 = kept.iter().map(|e| e.len).sum();
    let name = if sb.set_name.is_empty() {
        format!("md-{}", sb.uuid())
    } else {
        sb.set_name.clone()
    };
    let (volumes, areas) = if in_array {
        let view: SharedVolume = Arc::new(Slice::new(member.clone(), data_start, array));
        (
            vec![LogicalVolume {
                name: name.clone(),
                layout: "raid1".into(),
                size: array,
                content: Content::Mapped(view),
            }],
            vec![Area::linear(0, 0, array, data_start)],
        )
    } else {
        warnings.push(
            "the member is a spare: it holds none of the array's data, which is not stored".into(),
        );
        (Vec::new(), Vec::new())
    };
    let area_bytes: u64 = areas.iter().map(|a| a.member_len()).sum();
    Ok(MemberLayout {
        kind: "linux_raid_member",
        label: (!sb.set_name.is_empty() && sb.version != Version::V0_90)
            .then(|| sb.set_name.clone()),
        uuid: Some(sb.uuid()),
        kept,
        volumes,
        areas,
        unallocated_bytes: Some(len.saturating_sub(kept_bytes + area_bytes)),
        warnings,
    })
}
