//! Block group descriptors: 32 bytes each, or `s_desc_size` (64+) with the 64bit feature,
//! packed in descriptor blocks.

use lifeboat_fs::bytes::{u16_at, u32_at};

use crate::checksum::{crc16, crc32c};
use crate::superblock::Superblock;
use crate::ExtError;

/// `bg_flags` bits.
pub mod flags {
    /// The inode bitmap and table are not initialised.
    pub const INODE_UNINIT: u16 = 0x1;
    /// The block bitmap is not initialised on disk: its content follows from the layout.
    pub const BLOCK_UNINIT: u16 = 0x2;
    /// The inode table is zeroed.
    pub const ITABLE_ZEROED: u16 = 0x4;
}

/// Offset of `bg_checksum` in a descriptor.
const CHECKSUM_OFFSET: usize = 0x1E;

/// The fields of a group descriptor the scanner uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupDesc {
    /// Block of the group's block (cluster) bitmap.
    pub block_bitmap: u64,
    /// Block of the group's inode bitmap.
    pub inode_bitmap: u64,
    /// First block of the group's inode table.
    pub inode_table: u64,
    /// Free clusters in the group.
    pub free_clusters: u32,
    /// `bg_flags`.
    pub flags: u16,
    /// `bg_checksum`.
    pub checksum: u16,
}

impl GroupDesc {
    /// Decodes one descriptor. `b` must hold the descriptor (32 bytes, or at least 64 when
    /// `is_64bit`, in which case the high words are used).
    pub fn parse(b: &[u8], is_64bit: bool) -> Result<GroupDesc, ExtError> {
        let need = if is_64bit { 64 } else { 32 };
        if b.len() < need {
            return Err(ExtError::TooShort {
                what: "group descriptor",
                need,
                got: b.len(),
            });
        }
        // A 32-bit field split in a low half at `lo` and, with 64-bit descriptors, a high
        // half at `hi`.
        let split32 = |lo: usize, hi: usize| -> Result<u64, ExtError> {
            let high = if is_64bit { u32_at(b, hi)? } else { 0 };
            Ok(u64::from(u32_at(b, lo)?) | u64::from(high) << 32)
        };
        let split16 = |lo: usize, hi: usize| -> Result<u32, ExtError> {
            let high = if is_64bit { u16_at(b, hi)? } else { 0 };
            Ok(u32::from(u16_at(b, lo)?) | u32::from(high) << 16)
        };
        Ok(GroupDesc {
            block_bitmap: split32(0x0, 0x20)?,
            inode_bitmap: split32(0x4, 0x24)?,
            inode_table: split32(0x8, 0x28)?,
            free_clusters: split16(0xC, 0x2C)?,
            flags: u16_at(b, 0x12)?,
            checksum: u16_at(b, CHECKSUM_OFFSET)?,
        })
    }

    /// True when the block bitmap is flagged uninitialised (only meaningful when the
    /// filesystem has descriptor checksums).
    pub fn block_uninit(&self) -> bool {
        self.flags & flags::BLOCK_UNINIT != 0
    }
}

/// The checksum a descriptor of group `group` should carry, or `None` when the filesystem
/// has no descriptor checksums. `raw` is the descriptor's `desc_size` bytes.
pub fn expected_checksum(sb: &Superblock, csum_seed: u32, group: u32, raw: &[u8]) -> Option<u16> {
    let le_group = group.to_le_bytes();
    let (head, tail) = if raw.len() >= CHECKSUM_OFFSET + 2 {
        (&raw[..CHECKSUM_OFFSET], &raw[CHECKSUM_OFFSET + 2..])
    } else {
        (raw, &[][..])
    };
    if sb.has_metadata_csum() {
        let mut c = crc32c(csum_seed, &le_group);
        c = crc32c(c, head);
        c = crc32c(c, &[0, 0]);
        c = crc32c(c, tail);
        Some((c & 0xFFFF) as u16)
    } else if sb.has_group_desc_csum() {
        let mut c = crc16(!0, &sb.uuid);
        c = crc16(c, &le_group);
        c = crc16(c, head);
        if sb.has_incompat(crate::superblock::incompat::BIT64) {
            c = crc16(c, tail);
        }
        Some(c)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hi_words_only_with_64bit() {
        let mut b = [0u8; 64];
        b[0] = 5;
        b[0x20] = 1;
        b[0x12] = 2;
        let d32 = GroupDesc::parse(&b, false).unwrap();
        assert_eq!(d32.block_bitmap, 5);
        assert!(d32.block_uninit());
        let d64 = GroupDesc::parse(&b, true).unwrap();
        assert_eq!(d64.block_bitmap, (1 << 32) | 5);
        assert!(GroupDesc::parse(&b[..40], true).is_err());
    }
}
