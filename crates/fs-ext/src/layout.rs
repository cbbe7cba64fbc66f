//! The geometry of an ext filesystem, derived from its superblock and checked for sanity:
//! block and cluster sizes, groups, where each group's superblock backup and descriptor blocks
//! are (sparse_super, sparse_super2, meta_bg), and how many blocks each group starts with.
//!
//! Every number here is bounded, so later arithmetic on group and block numbers cannot
//! overflow.

use crate::superblock::{compat, incompat, ro_compat, Superblock};
use crate::ExtError;

/// Largest supported block size (64 KiB).
pub const MAX_LOG_BLOCK_SIZE: u32 = 6;
/// Largest supported cluster size with bigalloc (256 MiB, far above what mke2fs allows).
pub const MAX_LOG_CLUSTER_SIZE: u32 = 18;

/// Validated geometry of an ext filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Block size in bytes (1 KiB to 64 KiB).
    pub block_size: u64,
    /// Blocks per cluster (1 without bigalloc).
    pub cluster_ratio: u64,
    /// Total blocks (`s_blocks_count`).
    pub blocks_count: u64,
    /// First block of group 0 (`s_first_data_block`, 0 or 1).
    pub first_data_block: u64,
    /// Blocks per group.
    pub blocks_per_group: u64,
    /// Clusters per group (bits in a full group's bitmap).
    pub clusters_per_group: u64,
    /// Number of groups.
    pub group_count: u64,
    /// Size of one group descriptor in bytes (32, or 64+ with 64bit).
    pub desc_size: u64,
    /// Descriptors per block.
    pub descs_per_block: u64,
    /// Number of blocks the whole descriptor table takes.
    pub gdt_blocks: u64,
    /// Descriptor blocks kept the traditional way (before the first meta group); all of them
    /// without meta_bg.
    pub first_meta_bg: u64,
    /// `s_reserved_gdt_blocks`.
    pub reserved_gdt_blocks: u64,
    /// Blocks of one group's inode table.
    pub inode_table_blocks: u64,
    /// meta_bg feature.
    pub meta_bg: bool,
    /// flex_bg feature (a group's bitmaps and inode table may live in another group).
    pub flex_bg: bool,
    /// 64bit feature (descriptor high words).
    pub is_64bit: bool,
    sparse_super: bool,
    sparse_super2: bool,
    backup_bgs: [u64; 2],
}

fn invalid(field: &'static str, value: u64, reason: &'static str) -> ExtError {
    ExtError::Invalid {
        field,
        value,
        reason,
    }
}

fn is_power_of_three_five_or_seven(g: u64) -> bool {
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            p *= base;
        }
        p == g
    })
}

impl Layout {
    /// Checks the superblock's geometry and features; fails on anything not understood.
    pub fn new(sb: &Superblock) -> Result<Layout, ExtError> {
        if sb.rev_level > 1 {
            return Err(invalid(
                "s_rev_level",
                sb.rev_level.into(),
                "unknown revision",
            ));
        }
        if sb.has_incompat(incompat::JOURNAL_DEV) {
            return Err(ExtError::Unsupported(
                "external journal device (no block groups)".into(),
            ));
        }
        if sb.has_incompat(incompat::COMPRESSION) {
            return Err(ExtError::Unsupported("compression feature".into()));
        }
        let unknown = sb.feature_incompat & !incompat::UNDERSTOOD;
        if unknown != 0 {
            return Err(ExtError::Unsupported(format!(
                "unknown incompatible feature bits {unknown:#x}"
            )));
        }
        let unknown = sb.feature_ro_compat & !ro_compat::UNDERSTOOD;
        if unknown != 0 {
            return Err(ExtError::Unsupported(format!(
                "unknown read-only-compatible feature bits {unknown:#x}"
            )));
        }
        if sb.log_block_size > MAX_LOG_BLOCK_SIZE {
            return Err(invalid(
                "s_log_block_size",
                sb.log_block_size.into(),
                "block size above 64 KiB",
            ));
        }
        let block_size = 1024u64 << sb.log_block_size;
        let bits_per_block = block_size * 8;
        let bigalloc = sb.has_ro_compat(ro_compat::BIGALLOC);
        let blocks_per_group = u64::from(sb.blocks_per_group);
        let (cluster_ratio, clusters_per_group) = if bigalloc {
            if sb.log_cluster_size < sb.log_block_size || sb.log_cluster_size > MAX_LOG_CLUSTER_SIZE
            {
                return Err(invalid(
                    "s_log_cluster_size",
                    sb.log_cluster_size.into(),
                    "cluster size below the block size or above 256 MiB",
                ));
            }
            let ratio = 1u64 << (sb.log_cluster_size - sb.log_block_size);
            let cpg = u64::from(sb.clusters_per_group);
            if cpg == 0 || cpg > bits_per_block {
                return Err(invalid(
                    "s_clusters_per_group",
                    cpg,
                    "zero or more than one bitmap block holds",
                ));
            }
            if cpg * ratio != blocks_per_group {
                return Err(invalid(
                    "s_blocks_per_group",
                    blocks_per_group,
                    "not clusters per group times blocks per cluster",
                ));
            }
            (ratio, cpg)
        } else {
            if blocks_per_group == 0 || blocks_per_group > bits_per_block {
                return Err(invalid(
                    "s_blocks_per_group",
                    blocks_per_group,
                    "zero or more than one bitmap block holds",
                ));
            }
            (1, blocks_per_group)
        };
        let first_data_block = u64::from(sb.first_data_block);
        let want_fdb = u64::from(block_size == 1024 && !bigalloc);
        if first_data_block != want_fdb {
            return Err(invalid(
                "s_first_data_block",
                first_data_block,
                "must be 1 for 1 KiB blocks and 0 otherwise",
            ));
        }
        let blocks_count = sb.blocks_count;
        if blocks_count <= first_data_block + 1 || blocks_count.checked_mul(block_size).is_none() {
            return Err(invalid(
                "s_blocks_count",
                blocks_count,
                "too small or too large",
            ));
        }
        let group_count = (blocks_count - first_data_block).div_ceil(blocks_per_group);
        if group_count > u64::from(u32::MAX) {
            return Err(invalid("group count", group_count, "more than 2^32 groups"));
        }
        let inodes_per_group = u64::from(sb.inodes_per_group);
        if inodes_per_group == 0 || inodes_per_group > bits_per_block {
            return Err(invalid(
                "s_inodes_per_group",
                inodes_per_group,
                "zero or more than one bitmap block holds",
            ));
        }
        if u64::from(sb.inodes_count) != inodes_per_group * group_count {
            return Err(invalid(
                "s_inodes_count",
                sb.inodes_count.into(),
                "not inodes per group times the group count",
            ));
        }
        let inode_size = u64::from(sb.inode_size);
        if !inode_size.is_power_of_two() || inode_size < 128 || inode_size > block_size {
            return Err(invalid(
                "s_inode_size",
                inode_size,
                "not a power of two between 128 and the block size",
            ));
        }
        let is_64bit = sb.has_incompat(incompat::BIT64);
        let desc_size = if is_64bit {
            let d = u64::from(sb.desc_size);
            if !d.is_power_of_two() || !(64..=1024).contains(&d) || d > block_size {
                return Err(invalid(
                    "s_desc_size",
                    d,
                    "not a power of two between 64 and 1024",
                ));
            }
            d
        } else {
            32
        };
        let descs_per_block = block_size / desc_size;
        let gdt_blocks = group_count.div_ceil(descs_per_block);
        let meta_bg = sb.has_incompat(incompat::META_BG);
        let first_meta_bg = if meta_bg {
            let f = u64::from(sb.first_meta_bg);
            if f > gdt_blocks {
                return Err(invalid("s_first_meta_bg", f, "beyond the descriptor table"));
            }
            f
        } else {
            gdt_blocks
        };
        let reserved_gdt_blocks = u64::from(sb.reserved_gdt_blocks);
        if reserved_gdt_blocks > block_size / 4 {
            return Err(invalid(
                "s_reserved_gdt_blocks",
                reserved_gdt_blocks,
                "more than a block of block numbers",
            ));
        }
        if sb.has_metadata_csum() && sb.checksum_type != 1 {
            return Err(invalid(
                "s_checksum_type",
                sb.checksum_type.into(),
                "unknown checksum type",
            ));
        }
        let layout = Layout {
            block_size,
            cluster_ratio,
            blocks_count,
            first_data_block,
            blocks_per_group,
            clusters_per_group,
            group_count,
            desc_size,
            descs_per_block,
            gdt_blocks,
            first_meta_bg,
            reserved_gdt_blocks,
            inode_table_blocks: (inodes_per_group * inode_size).div_ceil(block_size),
            meta_bg,
            flex_bg: sb.has_incompat(incompat::FLEX_BG),
            is_64bit,
            sparse_super: sb.has_ro_compat(ro_compat::SPARSE_SUPER),
            sparse_super2: sb.has_compat(compat::SPARSE_SUPER2),
            backup_bgs: [sb.backup_bgs[0].into(), sb.backup_bgs[1].into()],
        };
        // Group 0 must hold the superblock, the traditional descriptor table and its reserve.
        if layout.base_meta_blocks(0) > layout.group_blocks(0) {
            return Err(invalid(
                "s_reserved_gdt_blocks",
                reserved_gdt_blocks,
                "superblock and descriptor table do not fit in group 0",
            ));
        }
        Ok(layout)
    }

    /// Cluster size in bytes (the block size without bigalloc).
    pub fn cluster_size(&self) -> u64 {
        self.block_size * self.cluster_ratio
    }

    /// Size of the filesystem in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.blocks_count * self.block_size
    }

    /// The block holding the primary superblock (1 with 1 KiB blocks, else 0).
    pub fn superblock_block(&self) -> u64 {
        1024 / self.block_size
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }

    /// Blocks in group `g` (the last group may be partial).
    pub fn group_blocks(&self, g: u64) -> u64 {
        let first = self.group_first_block(g);
        self.blocks_per_group
            .min(self.blocks_count.saturating_sub(first))
    }

    /// Clusters (bitmap bits) in group `g`.
    pub fn group_clusters(&self, g: u64) -> u64 {
        self.group_blocks(g).div_ceil(self.cluster_ratio)
    }

    /// Does group `g` hold a superblock (primary or backup)?
    pub fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.sparse_super2 {
            return g == self.backup_bgs[0] || g == self.backup_bgs[1];
        }
        if g <= 1 || !self.sparse_super {
            return true;
        }
        g % 2 == 1 && is_power_of_three_five_or_seven(g)
    }

    /// Block of descriptor-table block `i` (0-based), as the primary copy.
    pub fn desc_block_location(&self, i: u64) -> u64 {
        if i < self.first_meta_bg {
            return self.superblock_block() + 1 + i;
        }
        let g = i * self.descs_per_block;
        // With 1 KiB blocks and bigalloc, group 0 starts at block 0 but the superblock is
        // block 1.
        let adjust = u64::from(g == 0 && self.first_data_block == 0 && self.block_size == 1024);
        self.group_first_block(g) + u64::from(self.has_super(g)) + adjust
    }

    /// Number of descriptor-table blocks kept at the start of group `g` (after its
    /// superblock copy).
    fn gdt_blocks_in_group(&self, g: u64) -> u64 {
        let meta_group = g / self.descs_per_block;
        if meta_group < self.first_meta_bg {
            if self.has_super(g) {
                self.first_meta_bg
            } else {
                0
            }
        } else {
            let first = meta_group * self.descs_per_block;
            let last = first + self.descs_per_block - 1;
            u64::from(g == first || g == first + 1 || g == last)
        }
    }

    /// Blocks at the start of group `g` taken by its superblock copy, descriptor blocks and
    /// reserved descriptor blocks (the same rules the kernel uses to initialise a block bitmap).
    pub fn base_meta_blocks(&self, g: u64) -> u64 {
        let sup = u64::from(self.has_super(g));
        let mut n = sup;
        if g / self.descs_per_block < self.first_meta_bg {
            if sup == 1 {
                n += self.gdt_blocks_in_group(g) + self.reserved_gdt_blocks;
            }
        } else {
            n += self.gdt_blocks_in_group(g);
        }
        if g == 0 {
            // Blocks before the superblock inside group 0 (1 KiB blocks with bigalloc).
            n += self.superblock_block() - self.first_data_block.min(self.superblock_block());
        }
        n
    }

    /// Which group block `b` belongs to (`None` for block 0 of a 1 KiB-block filesystem and
    /// blocks past the end).
    pub fn group_of_block(&self, b: u64) -> Option<u64> {
        if b < self.first_data_block || b >= self.blocks_count {
            return None;
        }
        Some((b - self.first_data_block) / self.blocks_per_group)
    }

    /// Block and byte offset in it of group `g`'s descriptor.
    pub fn desc_location(&self, g: u64) -> (u64, u64) {
        let i = g / self.descs_per_block;
        (
            self.desc_block_location(i),
            (g % self.descs_per_block) * self.desc_size,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let want: Vec<u64> = vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343];
        let got: Vec<u64> = (0..400)
            .filter(|&g| g == 0 || g == 1 || (g % 2 == 1 && is_power_of_three_five_or_seven(g)))
            .collect();
        assert_eq!(got, want);
    }
}
