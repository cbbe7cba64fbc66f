//! The primary superblock (sector 0 of AG 0): geometry, version and features.
//!
//! Offsets and feature bits are those of the public XFS on-disk format ("XFS Algorithms &
//! Data Structures", `struct xfs_dsb`). [`Superblock::parse`] checks the geometry and refuses
//! what the scanner does not understand; it never trusts a count to size an allocation.

use crate::bytes::{be16, be32, be64, le32, u8_at, uuid_at, uuid_string};
use crate::crc::xfs_crc;
use crate::XfsError;

/// `XFSB`.
pub const MAGIC: u32 = 0x5846_5342;
/// Bytes of the superblock fields this scanner reads (the rest of the sector is padding,
/// or fields of features it refuses).
pub const SB_MIN_BYTES: usize = 264;
/// Offset of the v5 CRC.
pub const CRC_OFFSET: usize = 224;
/// Smallest allocation group (`XFS_MIN_AG_BLOCKS`).
pub const MIN_AG_BLOCKS: u32 = 64;
/// Largest allocation group in bytes (`XFS_MAX_AG_BYTES`, 1 TiB).
pub const MAX_AG_BYTES: u64 = 1 << 40;

/// Bits of `sb_versionnum`.
pub mod version {
    /// The version number proper (low four bits).
    pub const NUMBITS: u16 = 0x000f;
    /// Shared (multi-host) filesystem, never supported by Linux.
    pub const SHAREDBIT: u16 = 0x0200;
    /// Directories version 2 (every v4 filesystem Linux mounts has it).
    pub const DIRV2BIT: u16 = 0x2000;
    /// `sb_features2` is valid.
    pub const MOREBITSBIT: u16 = 0x8000;
}

/// Bits of `sb_features2` (v4 and v5).
pub mod features2 {
    /// Lazy superblock counters.
    pub const LAZYSBCOUNT: u32 = 0x0002;
    /// Attributes version 2.
    pub const ATTR2: u32 = 0x0008;
    /// 32-bit project ids.
    pub const PROJID32: u32 = 0x0080;
    /// Metadata CRCs (set on v5).
    pub const CRC: u32 = 0x0100;
    /// File type in directory entries.
    pub const FTYPE: u32 = 0x0200;
    /// Every bit this scanner knows; none changes how free space is recorded.
    pub const KNOWN: u32 = LAZYSBCOUNT | ATTR2 | PROJID32 | CRC | FTYPE;
}

/// v5 read-only-compatible features: none changes the free-space B+trees, but an unknown one
/// might (read-only compatible means "files can be read", not "allocation is understood").
pub mod ro_compat {
    /// Free-inode B+tree.
    pub const FINOBT: u32 = 1 << 0;
    /// Reverse-mapping B+tree.
    pub const RMAPBT: u32 = 1 << 1;
    /// Shared extents (reference-count B+tree).
    pub const REFLINK: u32 = 1 << 2;
    /// Inode B+tree block counters in the AGI.
    pub const INOBTCNT: u32 = 1 << 3;
    /// Every bit this scanner knows.
    pub const KNOWN: u32 = FINOBT | RMAPBT | REFLINK | INOBTCNT;
}

/// v5 incompatible features.
pub mod incompat {
    /// File type in directory entries.
    pub const FTYPE: u32 = 1 << 0;
    /// Sparse inode chunks.
    pub const SPINODES: u32 = 1 << 1;
    /// Metadata UUID differs from the user-visible UUID.
    pub const META_UUID: u32 = 1 << 2;
    /// Timestamps past 2038.
    pub const BIGTIME: u32 = 1 << 3;
    /// `xfs_repair` must run before the filesystem is mounted: refused.
    pub const NEEDSREPAIR: u32 = 1 << 4;
    /// 64-bit extent counters.
    pub const NREXT64: u32 = 1 << 5;
    /// Atomic file mapping exchange.
    pub const EXCHRANGE: u32 = 1 << 6;
    /// Directory parent pointers.
    pub const PARENT: u32 = 1 << 7;
    /// Metadata directory tree (and realtime groups): refused, not understood here.
    pub const METADIR: u32 = 1 << 8;
    /// The features that do not change how free space on the data device is recorded.
    pub const UNDERSTOOD: u32 =
        FTYPE | SPINODES | META_UUID | BIGTIME | NREXT64 | EXCHRANGE | PARENT;
}

/// The superblock fields the scanner uses, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Bytes per block (`sb_blocksize`).
    pub block_size: u32,
    /// Blocks of the data device (`sb_dblocks`).
    pub dblocks: u64,
    /// Realtime blocks (`sb_rblocks`).
    pub rblocks: u64,
    /// Realtime extents (`sb_rextents`).
    pub rextents: u64,
    /// User-visible UUID (`sb_uuid`).
    pub uuid: [u8; 16],
    /// First block of the internal log (`sb_logstart`, an AG-encoded block number); 0 for an
    /// external log.
    pub logstart: u64,
    /// Blocks per AG (`sb_agblocks`).
    pub agblocks: u32,
    /// Number of AGs (`sb_agcount`).
    pub agcount: u32,
    /// Blocks of the log (`sb_logblocks`).
    pub logblocks: u32,
    /// `sb_versionnum`.
    pub versionnum: u16,
    /// Bytes per sector (`sb_sectsize`): the AG headers are one sector each.
    pub sector_size: u16,
    /// Label (`sb_fname`), raw.
    pub fname: [u8; 12],
    /// log2 of the block size (`sb_blocklog`).
    pub blocklog: u8,
    /// log2 of the AG size, rounded up (`sb_agblklog`): AG-encoded block numbers are
    /// `agno << agblklog | agbno`.
    pub agblklog: u8,
    /// Non-zero while mkfs has not finished (`sb_inprogress`).
    pub inprogress: u8,
    /// Inodes allocated (`sb_icount`).
    pub icount: u64,
    /// Inodes free (`sb_ifree`).
    pub ifree: u64,
    /// `sb_features2` OR `sb_bad_features2` (old kernels wrote the latter by mistake).
    pub features2: u32,
    /// v5 compatible features.
    pub features_compat: u32,
    /// v5 read-only compatible features.
    pub features_ro_compat: u32,
    /// v5 incompatible features.
    pub features_incompat: u32,
    /// v5 log-incompatible features (set while the log holds records that need them).
    pub features_log_incompat: u32,
    /// The stored CRC (v5).
    pub crc: u32,
    /// UUID stamped in metadata blocks (`sb_meta_uuid` with META_UUID, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
}

fn invalid(field: &'static str, value: impl Into<u64>, reason: &'static str) -> XfsError {
    XfsError::Superblock {
        field,
        value: value.into(),
        reason,
    }
}

fn pow2_log(v: u64) -> Option<u8> {
    v.is_power_of_two().then(|| v.trailing_zeros() as u8)
}

impl Superblock {
    /// Decodes and checks a superblock from the first bytes of the volume (at least
    /// [`SB_MIN_BYTES`]; the v5 CRC is checked separately, over a whole sector, by
    /// [`Superblock::crc_ok`]).
    pub fn parse(b: &[u8]) -> Result<Superblock, XfsError> {
        const W: &str = "superblock";
        if b.len() < 4 {
            return Err(XfsError::TooShort {
                what: W,
                need: SB_MIN_BYTES as u64,
                got: b.len() as u64,
            });
        }
        let magic = be32(b, 0, W)?;
        if magic != MAGIC {
            return Err(XfsError::BadMagic(magic));
        }
        if b.len() < SB_MIN_BYTES {
            return Err(XfsError::TooShort {
                what: W,
                need: SB_MIN_BYTES as u64,
                got: b.len() as u64,
            });
        }
        let mut fname = [0u8; 12];
        fname.copy_from_slice(&b[108..120]);
        let mut sb = Superblock {
            block_size: be32(b, 4, W)?,
            dblocks: be64(b, 8, W)?,
            rblocks: be64(b, 16, W)?,
            rextents: be64(b, 24, W)?,
            uuid: uuid_at(b, 32, W)?,
            logstart: be64(b, 48, W)?,
            agblocks: be32(b, 84, W)?,
            agcount: be32(b, 88, W)?,
            logblocks: be32(b, 96, W)?,
            versionnum: be16(b, 100, W)?,
            sector_size: be16(b, 102, W)?,
            fname,
            blocklog: u8_at(b, 120, W)?,
            agblklog: u8_at(b, 124, W)?,
            inprogress: u8_at(b, 126, W)?,
            icount: be64(b, 128, W)?,
            ifree: be64(b, 136, W)?,
            features2: 0,
            features_compat: 0,
            features_ro_compat: 0,
            features_incompat: 0,
            features_log_incompat: 0,
            crc: 0,
            meta_uuid: [0; 16],
        };
        if sb.versionnum & version::MOREBITSBIT != 0 {
            sb.features2 = be32(b, 200, W)? | be32(b, 204, W)?;
        }
        if sb.is_v5() {
            sb.features_compat = be32(b, 208, W)?;
            sb.features_ro_compat = be32(b, 212, W)?;
            sb.features_incompat = be32(b, 216, W)?;
            sb.features_log_incompat = be32(b, 220, W)?;
            sb.crc = le32(b, CRC_OFFSET, W)?;
        }
        sb.meta_uuid = if sb.features_incompat & incompat::META_UUID != 0 {
            uuid_at(b, 248, W)?
        } else {
            sb.uuid
        };
        sb.check()?;
        Ok(sb)
    }

    /// The geometry and feature checks.
    fn check(&self) -> Result<(), XfsError> {
        let v = self.versionnum & version::NUMBITS;
        if v != 4 && v != 5 {
            return Err(XfsError::Unsupported(format!(
                "superblock version {v} (only versions 4 and 5 are understood)"
            )));
        }
        if self.versionnum & version::SHAREDBIT != 0 {
            return Err(XfsError::Unsupported(
                "shared filesystem (versionnum bit 0x200)".into(),
            ));
        }
        if v == 4 && self.versionnum & version::DIRV2BIT == 0 {
            return Err(XfsError::Unsupported(
                "version 4 without version 2 directories".into(),
            ));
        }
        let unknown2 = self.features2 & !features2::KNOWN;
        if unknown2 != 0 {
            return Err(XfsError::Unsupported(format!(
                "unknown features2 bits {unknown2:#x}"
            )));
        }
        if (v == 5) != (self.features2 & features2::CRC != 0) {
            return Err(invalid(
                "features2",
                self.features2,
                "the CRC feature bit disagrees with the version number",
            ));
        }
        if v == 5 {
            if self.features_incompat & incompat::NEEDSREPAIR != 0 {
                return Err(XfsError::Unsupported(
                    "the filesystem needs repair (incompat flag NEEDSREPAIR): run xfs_repair"
                        .into(),
                ));
            }
            if self.features_incompat & incompat::METADIR != 0 {
                return Err(XfsError::Unsupported(
                    "metadata directory tree (incompat flag METADIR) is not understood".into(),
                ));
            }
            let unknown = self.features_incompat & !incompat::UNDERSTOOD;
            if unknown != 0 {
                return Err(XfsError::Unsupported(format!(
                    "unknown incompatible features {unknown:#x}"
                )));
            }
            let unknown = self.features_ro_compat & !ro_compat::KNOWN;
            if unknown != 0 {
                return Err(XfsError::Unsupported(format!(
                    "unknown read-only compatible features {unknown:#x}"
                )));
            }
        }
        if self.inprogress != 0 {
            return Err(XfsError::Unsupported(
                "mkfs did not finish (sb_inprogress is set)".into(),
            ));
        }
        let bs = u64::from(self.block_size);
        let min_bs = if v == 5 { 1024 } else { 512 };
        if !(min_bs..=65536).contains(&bs) || pow2_log(bs) != Some(self.blocklog) {
            return Err(invalid(
                "blocksize",
                bs,
                "not a power of two in 512..=65536 (1024.. on v5) matching blocklog",
            ));
        }
        let ss = u64::from(self.sector_size);
        if !(512..=32768).contains(&ss) || !ss.is_power_of_two() || ss > bs {
            return Err(invalid(
                "sectsize",
                ss,
                "not a power of two in 512..=32768 and at most the block size",
            ));
        }
        let ag = u64::from(self.agblocks);
        if self.agblocks < MIN_AG_BLOCKS || ag * bs > MAX_AG_BYTES {
            return Err(invalid(
                "agblocks",
                ag,
                "AG smaller than 64 blocks or larger than 1 TiB",
            ));
        }
        let want_log = 64 - (ag - 1).leading_zeros() as u8;
        if self.agblklog != want_log {
            return Err(invalid(
                "agblklog",
                self.agblklog,
                "not log2 of agblocks rounded up",
            ));
        }
        if self.agcount == 0 {
            return Err(invalid("agcount", 0u32, "no allocation group"));
        }
        let n = u64::from(self.agcount);
        let min = (n - 1) * ag + u64::from(MIN_AG_BLOCKS);
        if self.dblocks < min || self.dblocks > n * ag {
            return Err(invalid(
                "dblocks",
                self.dblocks,
                "does not match agcount × agblocks (the last AG must hold 64..=agblocks blocks)",
            ));
        }
        if self.dblocks.checked_mul(bs).is_none() {
            return Err(invalid("dblocks", self.dblocks, "more than 2^64 bytes"));
        }
        if self.rblocks != 0 || self.rextents != 0 {
            return Err(XfsError::Unsupported(format!(
                "realtime device of {} blocks (its data is not on this volume)",
                self.rblocks
            )));
        }
        if self.logstart != 0 {
            let (la, lb) = self.split_fsblock(self.logstart);
            let end = u64::from(lb) + u64::from(self.logblocks);
            if la >= self.agcount || self.logblocks == 0 || end > self.ag_len(la) {
                return Err(invalid(
                    "logstart",
                    self.logstart,
                    "the internal log does not lie inside one AG of the filesystem",
                ));
            }
        }
        Ok(())
    }

    /// True for a version 5 (CRC) superblock.
    pub fn is_v5(&self) -> bool {
        self.versionnum & version::NUMBITS == 5
    }

    /// The CRC of the superblock sector `sector` (its first `sector_size` bytes) matches the
    /// stored one; always true on v4. Returns the computed CRC on a mismatch.
    pub fn crc_ok(&self, sector: &[u8]) -> Result<(), u32> {
        if !self.is_v5() {
            return Ok(());
        }
        let want = sector
            .get(..usize::from(self.sector_size))
            .and_then(|s| xfs_crc(s, CRC_OFFSET))
            .unwrap_or(!self.crc);
        if want == self.crc {
            Ok(())
        } else {
            Err(want)
        }
    }

    /// Blocks of AG `ag` (the last one may be shorter); 0 past the last AG.
    pub fn ag_len(&self, ag: u32) -> u64 {
        if ag >= self.agcount {
            return 0;
        }
        let start = u64::from(ag) * u64::from(self.agblocks);
        (self.dblocks - start).min(u64::from(self.agblocks))
    }

    /// Splits an AG-encoded block number (`agno << agblklog | agbno`) into (AG, block).
    pub fn split_fsblock(&self, fsb: u64) -> (u32, u32) {
        let ag = fsb >> self.agblklog;
        let b = fsb & ((1u64 << self.agblklog) - 1);
        (u32::try_from(ag).unwrap_or(u32::MAX), b as u32)
    }

    /// Byte offset of block `b` of AG `ag` on the volume.
    pub fn byte_of(&self, ag: u32, b: u64) -> u64 {
        (u64::from(ag) * u64::from(self.agblocks) + b) * u64::from(self.block_size)
    }

    /// Size of the filesystem in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.dblocks * u64::from(self.block_size)
    }

    /// Blocks at the start of every AG that hold its four header sectors (superblock, AGF,
    /// AGI, AGFL): never free.
    pub fn header_blocks(&self) -> u32 {
        (4 * u32::from(self.sector_size)).div_ceil(self.block_size)
    }

    /// The internal log as (AG, first block, blocks), or `None` for an external log.
    pub fn internal_log(&self) -> Option<(u32, u32, u32)> {
        (self.logstart != 0).then(|| {
            let (a, b) = self.split_fsblock(self.logstart);
            (a, b, self.logblocks)
        })
    }

    /// The label, if not empty.
    pub fn label(&self) -> Option<String> {
        let end = self.fname.iter().position(|&c| c == 0).unwrap_or(12);
        let s = String::from_utf8_lossy(&self.fname[..end])
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    }

    /// The UUID as `blkid` shows it.
    pub fn uuid_string(&self) -> String {
        uuid_string(&self.uuid)
    }

    /// The format version (4 or 5).
    pub fn version(&self) -> u16 {
        self.versionnum & version::NUMBITS
    }
}
