//! Blocks of the by-block free-space B+tree (bnobt): short-form B+tree blocks whose
//! records are free extents `(startblock, blockcount)` of the AG, sorted by start block.
//!
//! Header (v4, 16 bytes): magic, level, numrecs, left sibling, right sibling. v5 adds
//! (to 56 bytes) the block's own disk address, the LSN, the metadata UUID, the owning AG and
//! a CRC32C of the whole block. Leaves (level 0) hold 8-byte records; nodes hold
//! `maxrecs` 8-byte keys, then `maxrecs` 4-byte child pointers.

use crate::bytes::{be16, be32, be64, le32, uuid_at};
use crate::crc::xfs_crc;
use crate::superblock::Superblock;
use crate::XfsError;

/// `ABTB`: v4 by-block free-space B+tree block.
pub const MAGIC_V4: u32 = 0x4142_5442;
/// `AB3B`: v5 (CRC) by-block free-space B+tree block.
pub const MAGIC_V5: u32 = 0x4142_3342;
/// A null sibling (or child) pointer.
pub const NULL_BLOCK: u32 = 0xffff_ffff;
/// Offset of the CRC in a v5 short-form block.
pub const CRC_OFFSET: usize = 52;

/// Bytes of the block header.
pub const fn header_bytes(v5: bool) -> usize {
    if v5 {
        56
    } else {
        16
    }
}

/// One checked block of the tree, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct BtreeBlock<'a> {
    /// Level (0 for a leaf).
    pub level: u16,
    /// Records (leaf) or keys and pointers (node) in use.
    pub numrecs: u16,
    /// Left sibling, or [`NULL_BLOCK`].
    pub leftsib: u32,
    /// Right sibling, or [`NULL_BLOCK`].
    pub rightsib: u32,
    buf: &'a [u8],
    hdr: usize,
    /// Capacity of a node (keys, and so pointers).
    node_max: usize,
    ag: u32,
    block: u32,
}

impl<'a> BtreeBlock<'a> {
    /// Decodes block `block` of AG `ag` (its `block_size` bytes `buf`) and checks its
    /// header: magic, v5 CRC, disk address, UUID and owner, and `numrecs` against the
    /// block's capacity.
    pub fn parse(
        buf: &'a [u8],
        sb: &Superblock,
        ag: u32,
        block: u32,
    ) -> Result<BtreeBlock<'a>, XfsError> {
        const W: &str = "free-space B+tree block";
        let v5 = sb.is_v5();
        let bad = |field: &str, reason: String| XfsError::Btree {
            ag,
            block,
            field: field.to_string(),
            reason,
        };
        if buf.len() != sb.block_size as usize {
            return Err(bad(
                "size",
                format!("{} bytes read for a block of {}", buf.len(), sb.block_size),
            ));
        }
        let magic = be32(buf, 0, W)?;
        let want = if v5 { MAGIC_V5 } else { MAGIC_V4 };
        if magic != want {
            return Err(bad(
                "magic",
                format!("{magic:#010x}, expected {want:#010x}"),
            ));
        }
        if v5 {
            let stored = le32(buf, CRC_OFFSET, W)?;
            let computed = xfs_crc(buf, CRC_OFFSET).unwrap_or(!stored);
            if stored != computed {
                return Err(XfsError::Checksum {
                    what: format!("AG {ag} free-space B+tree block {block}"),
                    stored,
                    computed,
                });
            }
            let daddr = be64(buf, 16, W)?;
            let want = sb.byte_of(ag, u64::from(block)) / 512;
            if daddr != want {
                return Err(bad(
                    "blkno",
                    format!("{daddr}, but the block is at sector {want}"),
                ));
            }
            if uuid_at(buf, 32, W)? != sb.meta_uuid {
                return Err(bad("uuid", "not the filesystem's UUID".into()));
            }
            let owner = be32(buf, 48, W)?;
            if owner != ag {
                return Err(bad("owner", format!("AG {owner}")));
            }
        }
        let hdr = header_bytes(v5);
        let b = BtreeBlock {
            level: be16(buf, 4, W)?,
            numrecs: be16(buf, 6, W)?,
            leftsib: be32(buf, 8, W)?,
            rightsib: be32(buf, 12, W)?,
            buf,
            hdr,
            node_max: (buf.len() - hdr) / 12,
            ag,
            block,
        };
        let max = if b.level == 0 {
            (buf.len() - hdr) / 8
        } else {
            b.node_max
        };
        if usize::from(b.numrecs) > max {
            return Err(bad(
                "numrecs",
                format!("{} records in a block that holds {max}", b.numrecs),
            ));
        }
        Ok(b)
    }

    /// Record `i` of a leaf: a free extent `(first block, blocks)`.
    pub fn record(&self, i: u16) -> Result<(u32, u32), XfsError> {
        self.check_index(i, "record")?;
        leaf_record(self.buf, self.hdr == header_bytes(true), i)
    }

    /// Child pointer `i` of a node.
    pub fn ptr(&self, i: u16) -> Result<u32, XfsError> {
        const W: &str = "free-space B+tree pointer";
        self.check_index(i, "pointer")?;
        be32(
            self.buf,
            self.hdr + 8 * self.node_max + 4 * usize::from(i),
            W,
        )
    }

    fn check_index(&self, i: u16, what: &str) -> Result<(), XfsError> {
        if i >= self.numrecs {
            return Err(XfsError::Btree {
                ag: self.ag,
                block: self.block,
                field: format!("{what} {i}"),
                reason: format!("past numrecs {}", self.numrecs),
            });
        }
        Ok(())
    }
}

/// Record `i` of a leaf block already checked by [`BtreeBlock::parse`] (`buf` is the whole
/// block): a free extent `(first block, blocks)`. The caller keeps `i` below `numrecs`.
pub fn leaf_record(buf: &[u8], v5: bool, i: u16) -> Result<(u32, u32), XfsError> {
    const W: &str = "free-space B+tree record";
    let off = header_bytes(v5) + 8 * usize::from(i);
    Ok((be32(buf, off, W)?, be32(buf, off + 4, W)?))
}
