//! The md superblock, versions 0.90 and 1.x, as `mdadm --examine` reads it.
//!
//! - 1.x (little-endian): 256 bytes of fields then one u16 role per device (`max_dev`); at
//!   offset 0 (1.1), 4096 (1.2), or 8 KiB before the end rounded down to 4 KiB (1.0). The
//!   checksum is the sum of the little-endian u32 words of the first `256 + 2 * max_dev`
//!   bytes (with the checksum field zero, a last u16 added alone), its upper 32 bits folded
//!   onto the lower ones.
//! - 0.90 (host byte order; little-endian read here): 4096 bytes at the end, the device size
//!   rounded down to 64 KiB minus 64 KiB; 1024 u32 words; the checksum the same fold of the
//!   sum of all words. The data starts at offset 0 and its `size` is in KiB.

use super::MdError;
use lifeboat_fs::bytes;

/// The md magic.
pub const MD_MAGIC: u32 = 0xa92b_4efc;
/// Bytes read for a superblock.
pub const SB_BYTES: usize = 4096;
/// Largest `max_dev` of a 1.x superblock that fits in its 4 KiB.
pub const MAX_DEV: u32 = ((SB_BYTES - 256) / 2) as u32;

/// 1.x `feature_map` bits.
pub mod feature {
    /// An internal write-intent bitmap at `bitmap_offset`.
    pub const BITMAP_OFFSET: u32 = 1;
    /// The device is being recovered: `recovery_offset` sectors are in sync.
    pub const RECOVERY_OFFSET: u32 = 2;
    /// A reshape is in progress.
    pub const RESHAPE_ACTIVE: u32 = 4;
    /// A bad-block log at `bblog_offset`.
    pub const BAD_BLOCKS: u32 = 8;
    /// The device is replacing another.
    pub const REPLACEMENT: u32 = 16;
    /// A reshape running backwards.
    pub const RESHAPE_BACKWARDS: u32 = 32;
    /// A reshape moving the data offset.
    pub const NEW_OFFSET: u32 = 64;
    /// A journal device (RAID4/5/6).
    pub const JOURNAL: u32 = 512;
    /// A partial parity log (RAID5).
    pub const PPL: u32 = 1024;
}

/// Which superblock format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 0.90, at the end.
    V0_90,
    /// 1.0, at the end.
    V1_0,
    /// 1.1, at the start.
    V1_1,
    /// 1.2, 4 KiB from the start.
    V1_2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V0_90 => "0.90",
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        })
    }
}

impl Version {
    /// Where this version's superblock lies on a member of `len` bytes (`None`: too small).
    pub fn offset(self, len: u64) -> Option<u64> {
        match self {
            Version::V1_1 => Some(0),
            Version::V1_2 => Some(4096),
            Version::V1_0 => len.checked_sub(8192).map(|o| o & !4095),
            Version::V0_90 => (len & !65535).checked_sub(65536),
        }
        .filter(|o| o.saturating_add(SB_BYTES as u64) <= len)
    }
}

/// The fields lifeboat uses. Sizes and offsets are in 512-byte sectors, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The format.
    pub version: Version,
    /// Where it lies on the member (bytes).
    pub offset: u64,
    /// The array UUID as stored (16 bytes; for 0.90 the four words in memory order).
    pub set_uuid: [u8; 16],
    /// The array name (1.x), e.g. `host:0`.
    pub set_name: String,
    /// The RAID level (-1 linear, 0, 1, 4, 5, 6, 10, -4 multipath).
    pub level: i32,
    /// The level's layout.
    pub layout: u32,
    /// Sectors of each member the array uses.
    pub size: u64,
    /// Chunk size in sectors.
    pub chunk_sectors: u32,
    /// Members of the array.
    pub raid_disks: u32,
    /// `feature_map` (1.x).
    pub feature_map: u32,
    /// Where the data starts on the member (sectors).
    pub data_offset: u64,
    /// Sectors available for data (0.90: up to the superblock).
    pub data_size: u64,
    /// The write-intent bitmap's offset from the superblock (sectors), when there is one.
    pub bitmap_offset: Option<i64>,
    /// Sectors of data in sync on a member being recovered.
    pub recovery_offset: Option<u64>,
    /// The bad-block log `(offset from the superblock, sectors)`, when there is one.
    pub bad_block_log: Option<(i64, u64)>,
    /// This member's number.
    pub dev_number: u32,
    /// This member's role (1.x: slot, or 0xffff spare, 0xfffe faulty, 0xfffd journal).
    pub role: Option<u16>,
    /// 0.90: this member's state bits (1 faulty, 2 active, 4 sync, ...).
    pub disk_state: Option<u32>,
    /// The event count.
    pub events: u64,
    /// The array's resync checkpoint (u64::MAX: clean).
    pub resync_offset: u64,
    /// The checksum stored.
    pub checksum: u32,
}

/// 1.x role: a spare.
pub const ROLE_SPARE: u16 = 0xffff;
/// 1.x role: faulty.
pub const ROLE_FAULTY: u16 = 0xfffe;
/// 1.x role: a journal.
pub const ROLE_JOURNAL: u16 = 0xfffd;

/// Folds a 64-bit word sum into the md checksum.
fn fold(sum: u64) -> u32 {
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

/// The 1.x checksum of `sb` (its `sb_csum` field counted as zero) for `max_dev` roles.
pub fn csum_1(sb: &[u8], max_dev: u32) -> Option<u32> {
    let size = 256 + 2 * max_dev as usize;
    let b = sb.get(..size)?;
    let mut sum = 0u64;
    for (i, w) in bytes::u32s(b).enumerate() {
        if i != 216 / 4 {
            sum += u64::from(w);
        }
    }
    if size % 4 == 2 {
        sum += u64::from(u16::from_le_bytes([b[size - 2], b[size - 1]]));
    }
    Some(fold(sum))
}

/// The 0.90 checksum of `sb` (its `sb_csum` word counted as zero).
pub fn csum_0_90(sb: &[u8]) -> Option<u32> {
    let b = sb.get(..SB_BYTES)?;
    let sum: u64 = bytes::u32s(b)
        .enumerate()
        .filter(|(i, _)| *i != 38)
        .map(|(_, w)| u64::from(w))
        .sum();
    Some(fold(sum))
}

impl Superblock {
    /// Decodes and checks the superblock of format `version` read at byte `offset` of the
    /// member (`buf`: 4096 bytes). `Ok(None)` when the magic is not there.
    pub fn parse(buf: &[u8], version: Version, offset: u64) -> Result<Option<Self>, MdError> {
        let magic = bytes::u32_at(buf, 0)?;
        if magic != MD_MAGIC {
            if magic.swap_bytes() == MD_MAGIC && version == Version::V0_90 {
                return Err(MdError::Unsupported(
                    "0.90 superblock in big-endian byte order".into(),
                ));
            }
            return Ok(None);
        }
        let major = bytes::u32_at(buf, 4)?;
        match version {
            Version::V0_90 => {
                if major != 0 {
                    return Ok(None);
                }
                Self::parse_0_90(buf, offset).map(Some)
            }
            _ => {
                if major != 1 {
                    return Ok(None);
                }
                Self::parse_1(buf, version, offset).map(Some)
            }
        }
    }

    fn parse_0_90(buf: &[u8], offset: u64) -> Result<Self, MdError> {
        let w = |i: usize| bytes::u32_at(buf, i * 4);
        let minor = w(2)?;
        if minor != 90 && minor != 91 {
            return Err(MdError::Unsupported(format!(
                "superblock version 0.{minor}"
            )));
        }
        let stored = w(38)?;
        let computed = csum_0_90(buf).ok_or(MdError::Invalid("superblock is short".into()))?;
        if stored != computed {
            return Err(MdError::Checksum {
                offset,
                stored,
                computed,
            });
        }
        let mut set_uuid = [0u8; 16];
        for (k, word) in [5, 13, 14, 15].into_iter().enumerate() {
            set_uuid[k * 4..k * 4 + 4].copy_from_slice(&w(word)?.to_le_bytes());
        }
        let events = u64::from(w(40)?) << 32 | u64::from(w(39)?);
        let recovery_cp = w(43)?;
        let md_minor = w(11)?;
        Ok(Superblock {
            version: Version::V0_90,
            offset,
            set_uuid,
            set_name: format!("md{md_minor}"),
            level: w(7)? as i32,
            layout: w(64)?,
            size: u64::from(w(8)?) * 2,
            chunk_sectors: w(65)? / 512,
            raid_disks: w(10)?,
            feature_map: 0,
            data_offset: 0,
            data_size: offset / 512,
            // A 0.90 bitmap (state bit 8) lies right after the superblock, inside the
            // reserved 64 KiB.
            bitmap_offset: (w(33)? & (1 << 8) != 0).then_some(8),
            recovery_offset: None,
            bad_block_log: None,
            dev_number: w(992)?,
            role: None,
            disk_state: Some(w(992 + 4)?),
            events,
            resync_offset: if recovery_cp == u32::MAX {
                u64::MAX
            } else {
                u64::from(recovery_cp)
            },
            checksum: stored,
        })
    }

    fn parse_1(buf: &[u8], version: Version, offset: u64) -> Result<Self, MdError> {
        let u32_ = |o| bytes::u32_at(buf, o);
        let u64_ = |o| bytes::u64_at(buf, o);
        let max_dev = u32_(220)?;
        if max_dev > MAX_DEV {
            return Err(MdError::Invalid(format!(
                "max_dev {max_dev} (at most {MAX_DEV} fit)"
            )));
        }
        let stored = u32_(216)?;
        let computed =
            csum_1(buf, max_dev).ok_or(MdError::Invalid("superblock is short".into()))?;
        if stored != computed {
            return Err(MdError::Checksum {
                offset,
                stored,
                computed,
            });
        }
        let super_offset = u64_(144)?;
        if super_offset.checked_mul(512) != Some(offset) {
            return Err(MdError::Invalid(format!(
                "super_offset {super_offset} sectors, but it lies at byte {offset} (version \
                 {version})"
            )));
        }
        let feature_map = u32_(8)?;
        let dev_number = u32_(160)?;
        let role = if dev_number < max_dev {
            Some(bytes::u16_at(buf, 256 + 2 * dev_number as usize)?)
        } else {
            None
        };
        let name = bytes::array_at::<32>(buf, 32)?;
        let name_len = name.iter().position(|&b| b == 0).unwrap_or(32);
        let bblog_size = u64::from(bytes::u16_at(buf, 186)?);
        Ok(Superblock {
            version,
            offset,
            set_uuid: bytes::array_at(buf, 16)?,
            set_name: String::from_utf8_lossy(&name[..name_len]).into_owned(),
            level: u32_(72)? as i32,
            layout: u32_(76)?,
            size: u64_(80)?,
            chunk_sectors: u32_(88)?,
            raid_disks: u32_(92)?,
            feature_map,
            data_offset: u64_(128)?,
            data_size: u64_(136)?,
            bitmap_offset: (feature_map & feature::BITMAP_OFFSET != 0)
                .then(|| i64::from(u32_(96).unwrap_or(0) as i32)),
            recovery_offset: (feature_map & feature::RECOVERY_OFFSET != 0)
                .then(|| u64_(152).unwrap_or(0)),
            bad_block_log: (bblog_size != 0)
                .then(|| (i64::from(u32_(188).unwrap_or(0) as i32), bblog_size)),
            dev_number,
            role,
            disk_state: None,
            events: u64_(200)?,
            resync_offset: u64_(208)?,
            checksum: stored,
        })
    }

    /// The array UUID as `blkid` prints it (8-4-4-4-12 of the stored bytes).
    pub fn uuid(&self) -> String {
        let h: String = self.set_uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// The array UUID as `mdadm --examine` prints it (four groups of 8 hex digits).
    pub fn mdadm_uuid(&self) -> String {
        let words: Vec<String> = self
            .set_uuid
            .chunks(4)
            .map(|c| {
                if self.version == Version::V0_90 {
                    format!("{:08x}", u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                } else {
                    c.iter().map(|b| format!("{b:02x}")).collect()
                }
            })
            .collect();
        words.join(":")
    }
}

/// Generates superblocks for tests and fuzz seeds (an independent writer of the format, read
/// back by `mdadm --examine` in the tests).
#[doc(hidden)]
pub mod testgen {
    use super::*;

    /// A generated member's superblock offset and bytes, and its bitmap's if any.
    pub type Built = (u64, Vec<u8>, Option<(u64, Vec<u8>)>);

    /// What to put in a generated superblock.
    #[derive(Debug, Clone)]
    pub struct Spec {
        /// The format.
        pub version: Version,
        /// The member's size in bytes.
        pub dev_len: u64,
        /// The RAID level.
        pub level: i32,
        /// The array's members.
        pub raid_disks: u32,
        /// This member's number (and role).
        pub dev_number: u32,
        /// The array UUID (stored bytes).
        pub uuid: [u8; 16],
        /// The array name (1.x).
        pub name: String,
        /// 1.1/1.2: data offset in sectors.
        pub data_offset: u64,
        /// Sectors of each member used by the array (0: all there is).
        pub size: u64,
        /// With an internal bitmap of this chunk size in bytes.
        pub bitmap_chunk: Option<u32>,
    }

    impl Spec {
        /// A RAID1 of two members of `dev_len` bytes.
        pub fn raid1(version: Version, dev_len: u64) -> Spec {
            Spec {
                version,
                dev_len,
                level: 1,
                raid_disks: 2,
                dev_number: 0,
                uuid: *b"\x3b\x1f\x5e\x01\xa2\xc4\x4d\x09\x8e\x7f\x10\x22\x33\x44\x55\x66",
                name: "lifeboat:0".into(),
                data_offset: 2048,
                size: 0,
                bitmap_chunk: None,
            }
        }

        /// The superblock's offset and bytes, and the bitmap's offset and bytes if any.
        pub fn build(&self) -> Built {
            let sb_off = self.version.offset(self.dev_len).expect("member too small");
            if self.version == Version::V0_90 {
                return self.build_0_90(sb_off);
            }
            let mut b = vec![0u8; SB_BYTES];
            let put32 =
                |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
            let put64 =
                |b: &mut Vec<u8>, o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
            let dev_sectors = self.dev_len / 512;
            let bitmap_sectors: u64 = if self.bitmap_chunk.is_some() { 8 } else { 0 };
            let (data_offset, data_size, bitmap_offset) = match self.version {
                Version::V1_0 => {
                    let ds = (sb_off / 512 - bitmap_sectors) & !7;
                    (0, ds, -(bitmap_sectors as i64))
                }
                _ => (self.data_offset, dev_sectors - self.data_offset, 8),
            };
            let size = if self.size == 0 { data_size } else { self.size };
            put32(&mut b, 0, MD_MAGIC);
            put32(&mut b, 4, 1);
            let features = if self.bitmap_chunk.is_some() {
                feature::BITMAP_OFFSET
            } else {
                0
            };
            put32(&mut b, 8, features);
            b[16..32].copy_from_slice(&self.uuid);
            let n = self.name.len().min(32);
            b[32..32 + n].copy_from_slice(&self.name.as_bytes()[..n]);
            put64(&mut b, 64, 1_700_000_000);
            put32(&mut b, 72, self.level as u32);
            put32(&mut b, 76, if self.level == 5 { 2 } else { 0 });
            put64(&mut b, 80, size);
            put32(&mut b, 88, if self.level == 1 { 0 } else { 1024 });
            put32(&mut b, 92, self.raid_disks);
            if self.bitmap_chunk.is_some() {
                put32(&mut b, 96, bitmap_offset as i32 as u32);
            }
            put64(&mut b, 128, data_offset);
            put64(&mut b, 136, data_size);
            put64(&mut b, 144, sb_off / 512);
            put32(&mut b, 160, self.dev_number);
            b[168..184].copy_from_slice(&[0x5a; 16]);
            put64(&mut b, 192, 1_700_000_100);
            put64(&mut b, 200, 42);
            put64(&mut b, 208, u64::MAX);
            let max_dev = self.raid_disks.max(self.dev_number + 1);
            put32(&mut b, 220, max_dev);
            for i in 0..max_dev {
                let role = if i < self.raid_disks {
                    i as u16
                } else {
                    ROLE_SPARE
                };
                b[256 + 2 * i as usize..258 + 2 * i as usize].copy_from_slice(&role.to_le_bytes());
            }
            let c = csum_1(&b, max_dev).unwrap();
            put32(&mut b, 216, c);
            let bitmap = self.bitmap_chunk.map(|chunk| {
                let at = (sb_off as i64 + bitmap_offset * 512) as u64;
                (at, bitmap_super(&self.uuid, chunk, size))
            });
            (sb_off, b, bitmap)
        }

        fn build_0_90(&self, sb_off: u64) -> Built {
            let mut w = vec![0u32; SB_BYTES / 4];
            let u = |k: usize| u32::from_le_bytes(self.uuid[k * 4..k * 4 + 4].try_into().unwrap());
            w[0] = MD_MAGIC;
            w[2] = 90;
            w[4] = 0;
            w[5] = u(0);
            w[6] = 1_700_000_000;
            w[7] = self.level as u32;
            let size_kb = if self.size == 0 {
                sb_off / 1024
            } else {
                self.size / 2
            };
            w[8] = size_kb as u32;
            w[9] = self.raid_disks;
            w[10] = self.raid_disks;
            w[11] = 0;
            w[13] = u(1);
            w[14] = u(2);
            w[15] = u(3);
            w[32] = 1_700_000_100;
            w[33] = 1 | if self.bitmap_chunk.is_some() {
                1 << 8
            } else {
                0
            }; // clean, bitmap
            w[34] = self.raid_disks;
            w[35] = self.raid_disks;
            w[39] = 42;
            w[43] = u32::MAX;
            w[64] = if self.level == 5 { 2 } else { 0 };
            w[65] = if self.level == 1 { 0 } else { 64 * 1024 };
            for i in 0..self.raid_disks as usize {
                let d = 128 + i * 32;
                w[d] = i as u32;
                w[d + 1] = 7;
                w[d + 2] = i as u32;
                w[d + 3] = i as u32;
                w[d + 4] = 6; // active, sync
            }
            let me = 128 + self.dev_number as usize * 32;
            for k in 0..5 {
                w[992 + k] = w[me + k];
            }
            let mut b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            let c = csum_0_90(&b).unwrap();
            b[152..156].copy_from_slice(&c.to_le_bytes());
            let bitmap = self
                .bitmap_chunk
                .map(|chunk| (sb_off + 4096, bitmap_super(&self.uuid, chunk, size_kb * 2)));
            (sb_off, b, bitmap)
        }
    }

    /// A write-intent bitmap superblock (`bitm`, version 4) with all bits clear.
    pub fn bitmap_super(uuid: &[u8; 16], chunk: u32, sync_sectors: u64) -> Vec<u8> {
        let mut b = vec![0u8; 256];
        b[0..4].copy_from_slice(&super::super::BITMAP_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&4u32.to_le_bytes());
        b[8..24].copy_from_slice(uuid);
        b[24..32].copy_from_slice(&42u64.to_le_bytes());
        b[32..40].copy_from_slice(&42u64.to_le_bytes());
        b[40..48].copy_from_slice(&sync_sectors.to_le_bytes());
        b[52..56].copy_from_slice(&chunk.to_le_bytes());
        b[56..60].copy_from_slice(&5u32.to_le_bytes());
        b
    }
}
