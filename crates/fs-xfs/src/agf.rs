//! The AG free-space header (AGF, sector 1 of every AG): where the AG's free-space B+trees
//! start and how many free blocks they hold.

use crate::bytes::{be32, le32, uuid_at};
use crate::crc::xfs_crc;
use crate::superblock::Superblock;
use crate::XfsError;

/// `XAGF`.
pub const MAGIC: u32 = 0x5841_4746;
/// Offset of the v5 CRC.
pub const CRC_OFFSET: usize = 216;
/// Bytes of the AGF fields read (v5; v4 uses the first 64).
pub const AGF_BYTES: usize = 224;

/// The AGF fields the scanner uses, decoded and checked against the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agf {
    /// The AG (`agf_seqno`).
    pub seqno: u32,
    /// Blocks in the AG (`agf_length`).
    pub length: u32,
    /// Root block of the by-block free-space B+tree (`agf_roots[0]`).
    pub bno_root: u32,
    /// Levels of that tree (`agf_levels[0]`).
    pub bno_level: u32,
    /// Blocks on the AG free list (`agf_flcount`).
    pub flcount: u32,
    /// Free blocks in the free-space B+trees (`agf_freeblks`; the free list is not counted).
    pub freeblks: u32,
    /// The longest free extent (`agf_longest`).
    pub longest: u32,
}

impl Agf {
    /// Decodes the AGF of AG `ag` from its sector `b` and checks it: magic, version, AG
    /// number, length, v5 CRC and UUID, root and level of the by-block tree, counts.
    pub fn parse(b: &[u8], sb: &Superblock, ag: u32) -> Result<Agf, XfsError> {
        const W: &str = "AGF";
        let bad = |field: &'static str, value: u64, reason: String| XfsError::Agf {
            ag,
            field,
            value,
            reason,
        };
        let magic = be32(b, 0, W)?;
        if magic != MAGIC {
            return Err(bad("magicnum", magic.into(), "not XAGF".into()));
        }
        let version = be32(b, 4, W)?;
        if version != 1 {
            return Err(bad("versionnum", version.into(), "not 1".into()));
        }
        if sb.is_v5() {
            let stored = le32(b, CRC_OFFSET, W)?;
            let computed = b
                .get(..usize::from(sb.sector_size))
                .and_then(|s| xfs_crc(s, CRC_OFFSET))
                .unwrap_or(!stored);
            if stored != computed {
                return Err(XfsError::Checksum {
                    what: format!("AG {ag} AGF"),
                    stored,
                    computed,
                });
            }
            let uuid = uuid_at(b, 64, W)?;
            if uuid != sb.meta_uuid {
                return Err(bad("uuid", 0, "not the filesystem's UUID".into()));
            }
        }
        let agf = Agf {
            seqno: be32(b, 8, W)?,
            length: be32(b, 12, W)?,
            bno_root: be32(b, 16, W)?,
            bno_level: be32(b, 28, W)?,
            flcount: be32(b, 48, W)?,
            freeblks: be32(b, 52, W)?,
            longest: be32(b, 56, W)?,
        };
        if agf.seqno != ag {
            return Err(bad(
                "seqno",
                agf.seqno.into(),
                "not this AG's number".into(),
            ));
        }
        let want = sb.ag_len(ag);
        if u64::from(agf.length) != want {
            return Err(bad(
                "length",
                agf.length.into(),
                format!("the superblock gives this AG {want} blocks"),
            ));
        }
        let hdr = sb.header_blocks();
        if agf.bno_root < hdr || agf.bno_root >= agf.length {
            return Err(bad(
                "bno_root",
                agf.bno_root.into(),
                format!("outside blocks {hdr}..{} of the AG", agf.length),
            ));
        }
        let max = max_levels(sb);
        if agf.bno_level == 0 || agf.bno_level > max {
            return Err(bad(
                "bno_level",
                agf.bno_level.into(),
                format!("not in 1..={max}"),
            ));
        }
        if agf.freeblks > agf.length - hdr || agf.longest > agf.freeblks {
            return Err(bad(
                "freeblks",
                agf.freeblks.into(),
                format!(
                    "more free blocks than the AG holds, or fewer than the longest free \
                     extent ({})",
                    agf.longest
                ),
            ));
        }
        let agfl_slots = (u32::from(sb.sector_size) - if sb.is_v5() { 36 } else { 0 }) / 4;
        if agf.flcount > agfl_slots {
            return Err(bad(
                "flcount",
                agf.flcount.into(),
                format!("the free list holds at most {agfl_slots} blocks"),
            ));
        }
        Ok(agf)
    }
}

/// The most levels a free-space B+tree of this geometry can have (as XFS computes it: the
/// worst case, every other block free, with half-full blocks).
pub fn max_levels(sb: &Superblock) -> u32 {
    let hdr = crate::btree::header_bytes(sb.is_v5()) as u64;
    let bs = u64::from(sb.block_size);
    let min_leaf = ((bs - hdr) / 8 / 2).max(1);
    let min_node = ((bs - hdr) / 12 / 2).max(2);
    let records = u64::from(sb.agblocks).div_ceil(2);
    let mut blocks = records.div_ceil(min_leaf);
    let mut levels = 1;
    while blocks > 1 {
        blocks = blocks.div_ceil(min_node);
        levels += 1;
    }
    levels
}
