//! The ext2/3/4 superblock: 1024 bytes at byte 1024 of the volume.
//!
//! [`Superblock::parse`] only decodes the fields the scanner needs and checks the magic; the
//! geometry is validated by [`crate::Layout::new`].

use lifeboat_fs::bytes;

use crate::checksum::crc32c;
use crate::ExtError;

/// Byte offset of the superblock in the volume.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock in bytes.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT_MAGIC: u16 = 0xEF53;

/// `s_feature_compat` bits.
pub mod compat {
    /// A journal (inode or external device) exists.
    pub const HAS_JOURNAL: u32 = 0x4;
    /// Reserved GDT blocks for online growth (resize inode).
    pub const RESIZE_INODE: u32 = 0x10;
    /// Superblock backups only in the groups listed in `s_backup_bgs`.
    pub const SPARSE_SUPER2: u32 = 0x200;
}

/// `s_feature_incompat` bits.
pub mod incompat {
    /// Compression (never finished; not supported).
    pub const COMPRESSION: u32 = 0x1;
    /// Directory entries record the file type.
    pub const FILETYPE: u32 = 0x2;
    /// The journal needs recovery.
    pub const RECOVER: u32 = 0x4;
    /// This is an external journal device, not a filesystem.
    pub const JOURNAL_DEV: u32 = 0x8;
    /// Meta block groups (descriptor blocks spread over the volume).
    pub const META_BG: u32 = 0x10;
    /// Extent-mapped files.
    pub const EXTENTS: u32 = 0x40;
    /// 64-bit block numbers (and possibly 64-byte descriptors).
    pub const BIT64: u32 = 0x80;
    /// Multiple-mount protection.
    pub const MMP: u32 = 0x100;
    /// Flexible block groups (bitmaps and tables of several groups packed together).
    pub const FLEX_BG: u32 = 0x200;
    /// Large extended attributes in inodes.
    pub const EA_INODE: u32 = 0x400;
    /// Data in directory entries.
    pub const DIRDATA: u32 = 0x1000;
    /// The metadata checksum seed is stored in the superblock.
    pub const CSUM_SEED: u32 = 0x2000;
    /// Directories larger than 2 GiB / 3-level htree.
    pub const LARGEDIR: u32 = 0x4000;
    /// Data stored in inodes.
    pub const INLINE_DATA: u32 = 0x8000;
    /// Encrypted inodes.
    pub const ENCRYPT: u32 = 0x10000;
    /// Case-insensitive directories.
    pub const CASEFOLD: u32 = 0x20000;

    /// Every bit this scanner understands well enough to trust the block bitmaps.
    pub const UNDERSTOOD: u32 = FILETYPE
        | RECOVER
        | META_BG
        | EXTENTS
        | BIT64
        | MMP
        | FLEX_BG
        | EA_INODE
        | DIRDATA
        | CSUM_SEED
        | LARGEDIR
        | INLINE_DATA
        | ENCRYPT
        | CASEFOLD;
}

/// `s_feature_ro_compat` bits.
pub mod ro_compat {
    /// Superblock backups only in groups 0, 1 and powers of 3, 5, 7.
    pub const SPARSE_SUPER: u32 = 0x1;
    /// Files larger than 2 GiB.
    pub const LARGE_FILE: u32 = 0x2;
    /// (Unused) B-tree directories.
    pub const BTREE_DIR: u32 = 0x4;
    /// Huge files.
    pub const HUGE_FILE: u32 = 0x8;
    /// Group descriptor checksums (CRC-16) and uninitialised groups.
    pub const GDT_CSUM: u32 = 0x10;
    /// More than 65000 subdirectories.
    pub const DIR_NLINK: u32 = 0x20;
    /// Large inodes.
    pub const EXTRA_ISIZE: u32 = 0x40;
    /// Snapshots (next3).
    pub const HAS_SNAPSHOT: u32 = 0x80;
    /// Quota inodes.
    pub const QUOTA: u32 = 0x100;
    /// Allocation in clusters of several blocks.
    pub const BIGALLOC: u32 = 0x200;
    /// CRC-32C checksums of all metadata (implies descriptor checksums).
    pub const METADATA_CSUM: u32 = 0x400;
    /// Replicas.
    pub const REPLICA: u32 = 0x800;
    /// Read-only filesystem image.
    pub const READONLY: u32 = 0x1000;
    /// Project quotas.
    pub const PROJECT: u32 = 0x2000;
    /// Shared (deduplicated) blocks.
    pub const SHARED_BLOCKS: u32 = 0x4000;
    /// fs-verity files.
    pub const VERITY: u32 = 0x8000;
    /// Orphan file has entries.
    pub const ORPHAN_PRESENT: u32 = 0x10000;

    /// Every bit this scanner understands.
    pub const UNDERSTOOD: u32 = SPARSE_SUPER
        | LARGE_FILE
        | BTREE_DIR
        | HUGE_FILE
        | GDT_CSUM
        | DIR_NLINK
        | EXTRA_ISIZE
        | HAS_SNAPSHOT
        | QUOTA
        | BIGALLOC
        | METADATA_CSUM
        | REPLICA
        | READONLY
        | PROJECT
        | SHARED_BLOCKS
        | VERITY
        | ORPHAN_PRESENT;
}

/// `s_state` bits.
pub mod state {
    /// Cleanly unmounted.
    pub const VALID: u16 = 0x1;
    /// Errors detected.
    pub const ERROR: u16 = 0x2;
    /// Orphans being recovered.
    pub const ORPHAN: u16 = 0x4;
}

/// The fields of the superblock that the scanner uses, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// Block count (`s_blocks_count_lo`, plus `_hi` with 64bit).
    pub blocks_count: u64,
    /// Free block count (`s_free_blocks_count_lo`, plus `_hi` with 64bit); in blocks even
    /// with bigalloc.
    pub free_blocks_count: u64,
    /// `s_first_data_block`.
    pub first_data_block: u32,
    /// `s_log_block_size` (block size = 1024 << this).
    pub log_block_size: u32,
    /// `s_log_cluster_size` (cluster size = 1024 << this with bigalloc).
    pub log_cluster_size: u32,
    /// `s_blocks_per_group`.
    pub blocks_per_group: u32,
    /// `s_clusters_per_group`.
    pub clusters_per_group: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// `s_magic`.
    pub magic: u16,
    /// `s_state`.
    pub state: u16,
    /// `s_rev_level`.
    pub rev_level: u32,
    /// `s_inode_size` (128 for revision 0).
    pub inode_size: u16,
    /// `s_feature_compat` (0 for revision 0).
    pub feature_compat: u32,
    /// `s_feature_incompat` (0 for revision 0).
    pub feature_incompat: u32,
    /// `s_feature_ro_compat` (0 for revision 0).
    pub feature_ro_compat: u32,
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// `s_volume_name` (NUL padded).
    pub volume_name: [u8; 16],
    /// `s_reserved_gdt_blocks`.
    pub reserved_gdt_blocks: u16,
    /// `s_desc_size` (meaningful with 64bit only).
    pub desc_size: u16,
    /// `s_first_meta_bg`.
    pub first_meta_bg: u32,
    /// `s_backup_bgs` (sparse_super2).
    pub backup_bgs: [u32; 2],
    /// `s_checksum_seed` (with the csum_seed feature).
    pub checksum_seed: u32,
    /// `s_checksum_type` (1 = CRC-32C).
    pub checksum_type: u8,
    /// `s_checksum`.
    pub checksum: u32,
    /// CRC-32C of the first 1020 bytes, as computed over the parsed bytes.
    pub computed_checksum: u32,
}

impl Superblock {
    /// Decodes a superblock from its 1024 bytes (more are ignored).
    ///
    /// Fails with [`ExtError::TooShort`] or [`ExtError::BadMagic`]; the geometry is not checked
    /// here (see [`crate::Layout::new`]).
    pub fn parse(b: &[u8]) -> Result<Superblock, ExtError> {
        if b.len() < SUPERBLOCK_SIZE {
            return Err(ExtError::TooShort {
                what: "superblock",
                need: SUPERBLOCK_SIZE,
                got: b.len(),
            });
        }
        let b = &b[..SUPERBLOCK_SIZE];
        let u16_at = |o: usize| bytes::u16_at(b, o);
        let u32_at = |o: usize| bytes::u32_at(b, o);
        let magic = u16_at(0x38)?;
        if magic != EXT_MAGIC {
            return Err(ExtError::BadMagic(magic));
        }
        let rev_level = u32_at(0x4C)?;
        let dynamic = rev_level >= 1;
        let (feature_compat, feature_incompat, feature_ro_compat) = if dynamic {
            (u32_at(0x5C)?, u32_at(0x60)?, u32_at(0x64)?)
        } else {
            (0, 0, 0)
        };
        let is64 = feature_incompat & incompat::BIT64 != 0;
        let hi = |o: usize| -> Result<u64, ExtError> {
            Ok(if is64 { u64::from(u32_at(o)?) << 32 } else { 0 })
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[0x78..0x88]);
        Ok(Superblock {
            inodes_count: u32_at(0x0)?,
            blocks_count: u64::from(u32_at(0x4)?) | hi(0x150)?,
            free_blocks_count: u64::from(u32_at(0xC)?) | hi(0x158)?,
            first_data_block: u32_at(0x14)?,
            log_block_size: u32_at(0x18)?,
            log_cluster_size: u32_at(0x1C)?,
            blocks_per_group: u32_at(0x20)?,
            clusters_per_group: u32_at(0x24)?,
            inodes_per_group: u32_at(0x28)?,
            magic,
            state: u16_at(0x3A)?,
            rev_level,
            inode_size: if dynamic { u16_at(0x58)? } else { 128 },
            feature_compat,
            feature_incompat,
            feature_ro_compat,
            uuid,
            volume_name,
            reserved_gdt_blocks: if dynamic { u16_at(0xCE)? } else { 0 },
            desc_size: u16_at(0xFE)?,
            first_meta_bg: u32_at(0x104)?,
            backup_bgs: [u32_at(0x24C)?, u32_at(0x250)?],
            checksum_type: b[0x175],
            checksum_seed: u32_at(0x270)?,
            checksum: u32_at(0x3FC)?,
            computed_checksum: crc32c(!0, &b[..0x3FC]),
        })
    }

    /// True when `bit` is set in `s_feature_compat`.
    pub fn has_compat(&self, bit: u32) -> bool {
        self.feature_compat & bit != 0
    }
    /// True when `bit` is set in `s_feature_incompat`.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.feature_incompat & bit != 0
    }
    /// True when `bit` is set in `s_feature_ro_compat`.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.feature_ro_compat & bit != 0
    }

    /// True with `metadata_csum`.
    pub fn has_metadata_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::METADATA_CSUM)
    }

    /// True when group descriptors carry checksums (and so the `*_UNINIT` flags are honoured).
    pub fn has_group_desc_csum(&self) -> bool {
        self.has_metadata_csum() || self.has_ro_compat(ro_compat::GDT_CSUM)
    }

    /// The seed of every `metadata_csum` checksum: `s_checksum_seed` with csum_seed, else the
    /// CRC-32C of the UUID.
    pub fn csum_seed(&self) -> u32 {
        if self.has_incompat(incompat::CSUM_SEED) {
            self.checksum_seed
        } else {
            crc32c(!0, &self.uuid)
        }
    }

    /// With `metadata_csum`: does the stored superblock checksum match? (True without it.)
    pub fn checksum_ok(&self) -> bool {
        !self.has_metadata_csum() || self.checksum == self.computed_checksum
    }

    /// `ext2`, `ext3` or `ext4`, decided by the features the way the usual tools do: anything
    /// beyond what ext3 knows makes it ext4; a journal makes it ext3.
    pub fn fs_type(&self) -> &'static str {
        let ext3_incompat = incompat::FILETYPE | incompat::RECOVER | incompat::META_BG;
        let ext3_ro = ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE | ro_compat::BTREE_DIR;
        if self.feature_incompat & !ext3_incompat != 0 || self.feature_ro_compat & !ext3_ro != 0 {
            "ext4"
        } else if self.has_compat(compat::HAS_JOURNAL) {
            "ext3"
        } else {
            "ext2"
        }
    }

    /// The volume label, if not empty.
    pub fn label(&self) -> Option<String> {
        let end = self.volume_name.iter().position(|&c| c == 0).unwrap_or(16);
        let s = String::from_utf8_lossy(&self.volume_name[..end]).into_owned();
        (!s.is_empty()).then_some(s)
    }

    /// The UUID in 8-4-4-4-12 notation, if not all zero.
    pub fn uuid_string(&self) -> Option<String> {
        if self.uuid == [0; 16] {
            return None;
        }
        let h: Vec<String> = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!(
            "{}-{}-{}-{}-{}",
            h[0..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..16].concat()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_and_bad_magic() {
        assert!(matches!(
            Superblock::parse(&[0u8; 100]),
            Err(ExtError::TooShort { .. })
        ));
        assert!(matches!(
            Superblock::parse(&[0u8; 1024]),
            Err(ExtError::BadMagic(0))
        ));
    }

    #[test]
    fn uuid_and_label() {
        let mut b = vec![0u8; 1024];
        b[0x38] = 0x53;
        b[0x39] = 0xEF;
        b[0x4C] = 1;
        for (i, x) in b[0x68..0x78].iter_mut().enumerate() {
            *x = i as u8 * 17;
        }
        b[0x78..0x7B].copy_from_slice(b"abc");
        let sb = Superblock::parse(&b).unwrap();
        assert_eq!(
            sb.uuid_string().unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(sb.label().as_deref(), Some("abc"));
        assert_eq!(sb.fs_type(), "ext2");
    }
}
