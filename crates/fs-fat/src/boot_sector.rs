//! The FAT boot sector and its BIOS parameter block (BPB), FAT12/16 and FAT32 forms.
//!
//! The FAT type is decided by the count of data clusters, as the Microsoft FAT specification
//! requires (fewer than 4085: FAT12; fewer than 65525: FAT16; otherwise FAT32), never by the
//! informational type string at byte 54 or 82.

use crate::FatError;
use lifeboat_fs::bytes::{u16_at, u32_at};

/// Size of the part of the boot sector that is parsed.
pub const BOOT_SECTOR_SIZE: usize = 512;

/// Most clusters a FAT32 volume may have (28-bit entries, minus the reserved values).
pub const MAX_FAT32_CLUSTERS: u64 = 0x0FFF_FFF5;

/// The three FAT variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit FAT entries (fewer than 4085 clusters).
    Fat12,
    /// 16-bit FAT entries (fewer than 65525 clusters).
    Fat16,
    /// 32-bit FAT entries of which the low 28 bits are used.
    Fat32,
}

impl FatType {
    /// The variant for a volume of `clusters` data clusters.
    pub fn from_cluster_count(clusters: u64) -> FatType {
        if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        }
    }
    /// Bits per FAT entry as stored (FAT32 entries take 32 bits, 28 of them meaningful).
    pub fn entry_bits(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
    /// The bad-cluster mark.
    pub fn bad_mark(self) -> u32 {
        match self {
            FatType::Fat12 => 0xFF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        }
    }
    /// Name shown to operators.
    pub fn name(self) -> &'static str {
        match self {
            FatType::Fat12 => "fat12",
            FatType::Fat16 => "fat16",
            FatType::Fat32 => "fat32",
        }
    }
}

/// The decoded and validated boot sector of a FAT volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    /// OEM name (bytes 3..11), informational.
    pub oem_name: [u8; 8],
    /// Bytes per sector: 512, 1024, 2048 or 4096.
    pub bytes_per_sector: u32,
    /// Sectors per cluster: a power of two from 1 to 128.
    pub sectors_per_cluster: u32,
    /// Sectors before the first FAT (boot sector, FSInfo, backup boot sector, ...).
    pub reserved_sectors: u32,
    /// Number of FAT copies.
    pub num_fats: u32,
    /// Entries of the fixed root directory (0 on FAT32).
    pub root_entries: u32,
    /// Sectors in the volume.
    pub total_sectors: u64,
    /// Media descriptor byte.
    pub media: u8,
    /// Sectors per FAT.
    pub fat_sectors: u64,
    /// Sectors of the fixed root directory (0 on FAT32).
    pub root_dir_sectors: u64,
    /// Data clusters (numbered 2 .. `cluster_count + 2`).
    pub cluster_count: u64,
    /// The variant, from the cluster count.
    pub fat_type: FatType,
    /// Index of the FAT in use (FAT32 with mirroring disabled may use another than 0).
    pub active_fat: u32,
    /// FAT32: first cluster of the root directory.
    pub root_cluster: u32,
    /// FAT32: sector of the FSInfo structure (`None` when absent).
    pub fsinfo_sector: Option<u32>,
    /// FAT32: sector of the backup boot sector (`None` when absent).
    pub backup_boot_sector: Option<u32>,
    /// Volume serial number, when the extended boot signature is present.
    pub volume_id: Option<u32>,
    /// Volume label from the BPB (trimmed; `None` when empty or `NO NAME`).
    pub label: Option<String>,
    /// The "dirty" flag byte of the extended BPB (bit 0: not cleanly unmounted).
    pub state: u8,
}

fn invalid(field: &'static str, value: u64, reason: &'static str) -> FatError {
    FatError::Invalid {
        field,
        value,
        reason,
    }
}

impl BootSector {
    /// Decodes and validates the first 512 bytes of a FAT volume.
    ///
    /// The checks are strict enough that a random sector is not taken for FAT: jump
    /// instruction, boot signature 0x55AA, sector size a power of two 512..4096, cluster
    /// size a power of two, reserved sectors, FAT count, media byte, a FAT large enough for
    /// its clusters, and the FAT32-only fields consistent with the type the cluster count
    /// gives. exFAT and NTFS boot sectors are rejected.
    pub fn parse(b: &[u8]) -> Result<BootSector, FatError> {
        if b.len() < BOOT_SECTOR_SIZE {
            return Err(FatError::TooShort {
                what: "FAT boot sector",
                need: BOOT_SECTOR_SIZE,
                got: b.len(),
            });
        }
        let mut oem_name = [0u8; 8];
        oem_name.copy_from_slice(&b[3..11]);
        if &oem_name == b"EXFAT   " || &oem_name == b"NTFS    " || &oem_name == b"-FVE-FS-" {
            return Err(FatError::NoSignature(format!(
                "OEM name {:?} belongs to another filesystem",
                String::from_utf8_lossy(&oem_name)
            )));
        }
        if !(b[0] == 0xEB && b[2] == 0x90 || b[0] == 0xE9) {
            return Err(FatError::NoSignature(format!(
                "no jump instruction at byte 0 ({:02x} {:02x} {:02x})",
                b[0], b[1], b[2]
            )));
        }
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err(FatError::NoSignature(
                "no boot signature 0x55AA at byte 510".to_string(),
            ));
        }
        let bps = u32::from(u16_at(b, 11)?);
        if !bps.is_power_of_two() || !(512..=4096).contains(&bps) {
            return Err(FatError::NoSignature(format!(
                "bytes per sector {bps} is not a power of two from 512 to 4096"
            )));
        }
        let spc = u32::from(b[13]);
        if !spc.is_power_of_two() {
            return Err(FatError::NoSignature(format!(
                "sectors per cluster {spc} is not a power of two"
            )));
        }
        let reserved = u32::from(u16_at(b, 14)?);
        if reserved == 0 {
            return Err(FatError::NoSignature("no reserved sectors".to_string()));
        }
        let num_fats = u32::from(b[16]);
        if num_fats == 0 {
            return Err(FatError::NoSignature("FAT count is 0".to_string()));
        }
        let media = b[21];
        if media != 0xF0 && media < 0xF8 {
            return Err(FatError::NoSignature(format!(
                "media descriptor {media:#04x} is not 0xF0 or 0xF8..0xFF"
            )));
        }
        let root_entries = u32::from(u16_at(b, 17)?);
        let total16 = u64::from(u16_at(b, 19)?);
        let total32 = u64::from(u32_at(b, 32)?);
        let total_sectors = if total16 != 0 { total16 } else { total32 };
        if total_sectors == 0 {
            return Err(invalid("total sectors", 0, "is zero"));
        }
        let fat16_size = u64::from(u16_at(b, 22)?);
        let fat32_size = u64::from(u32_at(b, 36)?);
        let fat_sectors = if fat16_size != 0 {
            fat16_size
        } else {
            fat32_size
        };
        if fat_sectors == 0 {
            return Err(invalid("sectors per FAT", 0, "is zero"));
        }
        let root_dir_sectors = (u64::from(root_entries) * 32).div_ceil(u64::from(bps));
        let meta = u64::from(reserved) + u64::from(num_fats) * fat_sectors + root_dir_sectors;
        if meta >= total_sectors {
            return Err(invalid(
                "total sectors",
                total_sectors,
                "leaves no room for a data area after the reserved sectors, FATs and root",
            ));
        }
        let cluster_count = (total_sectors - meta) / u64::from(spc);
        if cluster_count == 0 {
            return Err(invalid("cluster count", 0, "is zero"));
        }
        if cluster_count > MAX_FAT32_CLUSTERS {
            return Err(invalid(
                "cluster count",
                cluster_count,
                "exceeds the FAT32 limit",
            ));
        }
        let fat_type = FatType::from_cluster_count(cluster_count);
        let fat_bytes_needed = ((cluster_count + 2) * fat_type.entry_bits()).div_ceil(8);
        if fat_sectors * u64::from(bps) < fat_bytes_needed {
            return Err(invalid(
                "sectors per FAT",
                fat_sectors,
                "too few for the cluster count",
            ));
        }
        let mut bs = BootSector {
            oem_name,
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            reserved_sectors: reserved,
            num_fats,
            root_entries,
            total_sectors,
            media,
            fat_sectors,
            root_dir_sectors,
            cluster_count,
            fat_type,
            active_fat: 0,
            root_cluster: 0,
            fsinfo_sector: None,
            backup_boot_sector: None,
            volume_id: None,
            label: None,
            state: 0,
        };
        let ext = if fat_type == FatType::Fat32 {
            if fat16_size != 0 {
                return Err(invalid(
                    "16-bit sectors per FAT",
                    fat16_size,
                    "must be 0 on FAT32",
                ));
            }
            if root_entries != 0 {
                return Err(invalid(
                    "root directory entries",
                    u64::from(root_entries),
                    "must be 0 on FAT32",
                ));
            }
            let version = u16_at(b, 42)?;
            if version != 0 {
                return Err(invalid(
                    "FAT32 version",
                    u64::from(version),
                    "only version 0.0 is known",
                ));
            }
            let flags = u16_at(b, 40)?;
            if flags & 0x80 != 0 {
                bs.active_fat = u32::from(flags & 0x0F);
                if bs.active_fat >= num_fats {
                    return Err(invalid(
                        "active FAT",
                        u64::from(bs.active_fat),
                        "is not one of the FATs",
                    ));
                }
            }
            bs.root_cluster = u32_at(b, 44)?;
            if u64::from(bs.root_cluster) < 2 || u64::from(bs.root_cluster) >= cluster_count + 2 {
                return Err(invalid(
                    "root cluster",
                    u64::from(bs.root_cluster),
                    "is not a data cluster",
                ));
            }
            let sector = |v: u16, field: &'static str| -> Result<Option<u32>, FatError> {
                match v {
                    0 | 0xFFFF => Ok(None),
                    s if u32::from(s) < reserved => Ok(Some(u32::from(s))),
                    s => Err(invalid(
                        field,
                        u64::from(s),
                        "lies outside the reserved region",
                    )),
                }
            };
            bs.fsinfo_sector = sector(u16_at(b, 48)?, "FSInfo sector")?;
            bs.backup_boot_sector = sector(u16_at(b, 50)?, "backup boot sector")?;
            64
        } else {
            if fat16_size == 0 {
                return Err(invalid(
                    "16-bit sectors per FAT",
                    0,
                    "is zero on a FAT12/16 volume",
                ));
            }
            if root_entries == 0 {
                return Err(invalid(
                    "root directory entries",
                    0,
                    "is zero on a FAT12/16 volume",
                ));
            }
            36
        };
        bs.state = b[ext + 1];
        if b[ext + 2] == 0x29 {
            bs.volume_id = Some(u32_at(b, ext + 3)?);
            let raw = &b[ext + 7..ext + 18];
            let label: String = raw
                .iter()
                .map(|&c| {
                    if c.is_ascii_graphic() || c == b' ' {
                        c as char
                    } else {
                        '?'
                    }
                })
                .collect();
            let label = label.trim_end().to_string();
            if !label.is_empty() && label != "NO NAME" {
                bs.label = Some(label);
            }
        }
        Ok(bs)
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        u64::from(self.bytes_per_sector) * u64::from(self.sectors_per_cluster)
    }
    /// Bytes per sector as `u64`.
    pub fn sector_size(&self) -> u64 {
        u64::from(self.bytes_per_sector)
    }
    /// Byte offset of FAT number `n`.
    pub fn fat_offset(&self, n: u32) -> u64 {
        (u64::from(self.reserved_sectors) + u64::from(n) * self.fat_sectors) * self.sector_size()
    }
    /// Byte offset of the fixed root directory (FAT12/16), i.e. the end of the FATs.
    pub fn root_dir_offset(&self) -> u64 {
        self.fat_offset(self.num_fats)
    }
    /// Byte offset of the data area (cluster 2).
    pub fn data_offset(&self) -> u64 {
        self.root_dir_offset() + self.root_dir_sectors * self.sector_size()
    }
    /// Byte offset of data cluster `c` (2 or more).
    pub fn cluster_offset(&self, c: u64) -> u64 {
        self.data_offset() + (c - 2) * self.cluster_size()
    }
    /// End of the last data cluster.
    pub fn data_end(&self) -> u64 {
        self.data_offset() + self.cluster_count * self.cluster_size()
    }
    /// Size of the filesystem in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_sectors * self.sector_size()
    }
    /// Bytes of the FAT that hold the entries of clusters 0 .. `cluster_count + 2`.
    pub fn fat_bytes_used(&self) -> u64 {
        ((self.cluster_count + 2) * self.fat_type.entry_bits()).div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector as mkfs.vfat writes it for a 40 MiB volume.
    fn fat16() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&4u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&0u16.to_le_bytes());
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&80u16.to_le_bytes());
        b[32..36].copy_from_slice(&81920u32.to_le_bytes());
        b[38] = 0x29;
        b[39..43].copy_from_slice(&0x1234_ABCDu32.to_le_bytes());
        b[43..54].copy_from_slice(b"LIFEBOAT   ");
        b[54..62].copy_from_slice(b"FAT16   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn decodes_a_fat16_boot_sector() {
        let bs = BootSector::parse(&fat16()).unwrap();
        assert_eq!(bs.fat_type, FatType::Fat16);
        // (81920 - 4 - 160 - 32) / 4
        assert_eq!(bs.cluster_count, 20431);
        assert_eq!(bs.cluster_size(), 2048);
        assert_eq!(bs.data_offset(), (4 + 160 + 32) * 512);
        assert_eq!(bs.label.as_deref(), Some("LIFEBOAT"));
        assert_eq!(bs.volume_id, Some(0x1234_ABCD));
    }

    #[test]
    fn type_comes_from_the_cluster_count_not_the_string() {
        let mut b = fat16();
        b[54..62].copy_from_slice(b"FAT12   ");
        assert_eq!(BootSector::parse(&b).unwrap().fat_type, FatType::Fat16);
        // 64 sectors per cluster: 1276 clusters, FAT12 whatever the string says.
        b[13] = 64;
        assert_eq!(BootSector::parse(&b).unwrap().fat_type, FatType::Fat12);
    }

    #[test]
    fn rejects_other_boot_sectors() {
        for (i, v) in [
            (0usize, 0u8),
            (12, 0),
            (12, 3),
            (13, 3),
            (16, 0),
            (21, 0x12),
            (510, 0),
        ] {
            let mut b = fat16();
            b[i] = v;
            assert!(BootSector::parse(&b).is_err(), "byte {i} = {v:#x}");
        }
        let mut b = fat16();
        b[3..11].copy_from_slice(b"EXFAT   ");
        assert!(BootSector::parse(&b).is_err());
        // A FAT too small for its clusters.
        let mut b = fat16();
        b[22..24].copy_from_slice(&8u16.to_le_bytes());
        assert!(BootSector::parse(&b).is_err());
        assert!(BootSector::parse(&fat16()[..511]).is_err());
    }
}
