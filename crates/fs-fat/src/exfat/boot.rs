//! The exFAT boot sector and the boot region checksum.
//!
//! A boot region is 12 sectors: the boot sector, 8 extended boot sectors, the OEM parameters,
//! a reserved sector and the checksum sector, which repeats a 32-bit checksum of the 11
//! sectors before it. The volume holds a main boot region (sectors 0..12) and a backup
//! (sectors 12..24).

use crate::FatError;
use lifeboat_fs::bytes::{u16_at, u32_at, u32s, u64_at};

/// Sectors in one boot region.
pub const BOOT_REGION_SECTORS: u64 = 12;
/// Bytes of the boot sector that are parsed.
pub const BOOT_SECTOR_SIZE: usize = 512;
/// Largest cluster number + 1 allowed by the specification (0xFFFFFFF5 clusters, from 2).
pub const MAX_CLUSTER_COUNT: u32 = 0xFFFF_FFF5;

/// The decoded and validated exFAT boot sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExfatBoot {
    /// Sector of the partition on its disk, as recorded (informational).
    pub partition_offset: u64,
    /// Sectors in the volume.
    pub volume_length: u64,
    /// First sector of the first FAT.
    pub fat_offset: u32,
    /// Sectors per FAT.
    pub fat_length: u32,
    /// First sector of the cluster heap (cluster 2).
    pub cluster_heap_offset: u32,
    /// Clusters in the heap.
    pub cluster_count: u32,
    /// First cluster of the root directory.
    pub root_cluster: u32,
    /// Volume serial number.
    pub serial: u32,
    /// File system revision (major in the high byte).
    pub revision: u16,
    /// Volume flags: bit 0 active FAT, bit 1 dirty, bit 2 media failure.
    pub volume_flags: u16,
    /// log2 of the sector size (9..=12).
    pub bytes_per_sector_shift: u8,
    /// log2 of the sectors per cluster.
    pub sectors_per_cluster_shift: u8,
    /// Number of FATs and allocation bitmaps (1, or 2 with TexFAT).
    pub num_fats: u8,
    /// Percentage of the heap in use as recorded (0xFF: unknown).
    pub percent_in_use: u8,
}

fn invalid(field: &'static str, value: u64, reason: &'static str) -> FatError {
    FatError::Invalid {
        field,
        value,
        reason,
    }
}

impl ExfatBoot {
    /// Decodes and validates the first 512 bytes of an exFAT volume.
    pub fn parse(b: &[u8]) -> Result<ExfatBoot, FatError> {
        if b.len() < BOOT_SECTOR_SIZE {
            return Err(FatError::TooShort {
                what: "exFAT boot sector",
                need: BOOT_SECTOR_SIZE,
                got: b.len(),
            });
        }
        if &b[3..11] != b"EXFAT   " {
            return Err(FatError::NoSignature(
                "no \"EXFAT   \" file system name at byte 3".to_string(),
            ));
        }
        if b[0..3] != [0xEB, 0x76, 0x90] {
            return Err(FatError::NoSignature(
                "no EB 76 90 jump instruction at byte 0".to_string(),
            ));
        }
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err(FatError::NoSignature(
                "no boot signature 0x55AA at byte 510".to_string(),
            ));
        }
        if b[11..64].iter().any(|&x| x != 0) {
            return Err(FatError::NoSignature(
                "bytes 11..64 (the FAT BPB area) are not zero".to_string(),
            ));
        }
        let boot = ExfatBoot {
            partition_offset: u64_at(b, 64)?,
            volume_length: u64_at(b, 72)?,
            fat_offset: u32_at(b, 80)?,
            fat_length: u32_at(b, 84)?,
            cluster_heap_offset: u32_at(b, 88)?,
            cluster_count: u32_at(b, 92)?,
            root_cluster: u32_at(b, 96)?,
            serial: u32_at(b, 100)?,
            revision: u16_at(b, 104)?,
            volume_flags: u16_at(b, 106)?,
            bytes_per_sector_shift: b[108],
            sectors_per_cluster_shift: b[109],
            num_fats: b[110],
            percent_in_use: b[112],
        };
        boot.validate()?;
        Ok(boot)
    }

    fn validate(&self) -> Result<(), FatError> {
        if self.revision >> 8 != 1 {
            return Err(invalid(
                "file system revision",
                u64::from(self.revision),
                "only major revision 1 is known",
            ));
        }
        if !(9..=12).contains(&self.bytes_per_sector_shift) {
            return Err(invalid(
                "bytes per sector shift",
                u64::from(self.bytes_per_sector_shift),
                "is not 9..=12",
            ));
        }
        if self.sectors_per_cluster_shift > 25 - self.bytes_per_sector_shift {
            return Err(invalid(
                "sectors per cluster shift",
                u64::from(self.sectors_per_cluster_shift),
                "makes clusters larger than 32 MiB",
            ));
        }
        if !(1..=2).contains(&self.num_fats) {
            return Err(invalid(
                "number of FATs",
                u64::from(self.num_fats),
                "is not 1 or 2",
            ));
        }
        if self.fat_offset < 24 {
            return Err(invalid(
                "FAT offset",
                u64::from(self.fat_offset),
                "lies inside the boot regions",
            ));
        }
        if self.cluster_count == 0 || self.cluster_count > MAX_CLUSTER_COUNT {
            return Err(invalid(
                "cluster count",
                u64::from(self.cluster_count),
                "is out of range",
            ));
        }
        let fat_need = ((u64::from(self.cluster_count) + 2) * 4).div_ceil(self.sector_size());
        if u64::from(self.fat_length) < fat_need {
            return Err(invalid(
                "FAT length",
                u64::from(self.fat_length),
                "too few sectors for the cluster count",
            ));
        }
        let fats_end =
            u64::from(self.fat_offset) + u64::from(self.num_fats) * u64::from(self.fat_length);
        if u64::from(self.cluster_heap_offset) < fats_end {
            return Err(invalid(
                "cluster heap offset",
                u64::from(self.cluster_heap_offset),
                "overlaps the FATs",
            ));
        }
        let heap_end = u64::from(self.cluster_heap_offset)
            + (u64::from(self.cluster_count) << self.sectors_per_cluster_shift);
        if heap_end > self.volume_length {
            return Err(invalid(
                "volume length",
                self.volume_length,
                "is smaller than the end of the cluster heap",
            ));
        }
        if self.volume_length.checked_mul(self.sector_size()).is_none() {
            return Err(invalid(
                "volume length",
                self.volume_length,
                "overflows 64 bits",
            ));
        }
        if !self.is_cluster(self.root_cluster) {
            return Err(invalid(
                "root directory cluster",
                u64::from(self.root_cluster),
                "is not a heap cluster",
            ));
        }
        Ok(())
    }

    /// Bytes per sector.
    pub fn sector_size(&self) -> u64 {
        1u64 << self.bytes_per_sector_shift
    }
    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        1u64 << (self.bytes_per_sector_shift + self.sectors_per_cluster_shift)
    }
    /// True when `c` names a cluster of the heap (2 .. cluster_count + 2).
    pub fn is_cluster(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < u64::from(self.cluster_count) + 2
    }
    /// Byte offset of heap cluster `c`.
    pub fn cluster_offset(&self, c: u32) -> u64 {
        u64::from(self.cluster_heap_offset) * self.sector_size()
            + u64::from(c - 2) * self.cluster_size()
    }
    /// The FAT in use (bit 0 of the volume flags; always 0 with one FAT).
    pub fn active_fat(&self) -> u8 {
        if self.num_fats == 2 {
            (self.volume_flags & 1) as u8
        } else {
            0
        }
    }
    /// Byte offset of FAT number `n`.
    pub fn fat_byte_offset(&self, n: u8) -> u64 {
        (u64::from(self.fat_offset) + u64::from(n) * u64::from(self.fat_length))
            * self.sector_size()
    }
    /// Byte range `[start, end)` of all FATs.
    pub fn fats_range(&self) -> (u64, u64) {
        (self.fat_byte_offset(0), self.fat_byte_offset(self.num_fats))
    }
    /// Size of the filesystem in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.volume_length * self.sector_size()
    }
    /// Bytes of both boot regions.
    pub fn boot_regions_bytes(&self) -> u64 {
        2 * BOOT_REGION_SECTORS * self.sector_size()
    }
    /// True when the volume is marked dirty.
    pub fn is_dirty(&self) -> bool {
        self.volume_flags & 2 != 0
    }
    /// True when the volume records a media failure.
    pub fn media_failure(&self) -> bool {
        self.volume_flags & 4 != 0
    }
}

/// The boot checksum of the first 11 sectors of a boot region (`region` holds at least
/// 11 × `sector_size` bytes); the volume flags and percent-in-use bytes are left out.
pub fn boot_checksum(region: &[u8], sector_size: usize) -> Option<u32> {
    let n = sector_size.checked_mul(11)?;
    let bytes = region.get(..n)?;
    let mut sum = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        if i == 106 || i == 107 || i == 112 {
            continue;
        }
        sum = sum.rotate_right(1).wrapping_add(u32::from(b));
    }
    Some(sum)
}

/// Checks a whole boot region (12 sectors): its boot sector parses and the checksum sector
/// repeats the checksum of the other 11.
pub fn verify_boot_region(region: &[u8], sector_size: usize) -> Result<ExfatBoot, FatError> {
    let need = sector_size * BOOT_REGION_SECTORS as usize;
    if region.len() < need {
        return Err(FatError::TooShort {
            what: "exFAT boot region",
            need,
            got: region.len(),
        });
    }
    let boot = ExfatBoot::parse(region)?;
    let sum = boot_checksum(region, sector_size).unwrap_or(0);
    let cs = &region[11 * sector_size..12 * sector_size];
    if let Some(bad) = u32s(cs).find(|&v| v != sum) {
        return Err(FatError::Checksum(format!(
            "boot region checksum sector holds {bad:#010x}, the region sums to {sum:#010x}"
        )));
    }
    Ok(boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boot region as mkfs.exfat writes it for 64 MiB with 4 KiB clusters.
    pub(crate) fn region() -> Vec<u8> {
        let mut r = vec![0u8; 12 * 512];
        let b = &mut r[..512];
        b[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
        b[3..11].copy_from_slice(b"EXFAT   ");
        b[72..80].copy_from_slice(&131072u64.to_le_bytes());
        b[80..84].copy_from_slice(&2048u32.to_le_bytes());
        b[84..88].copy_from_slice(&128u32.to_le_bytes());
        b[88..92].copy_from_slice(&4096u32.to_le_bytes());
        b[92..96].copy_from_slice(&15872u32.to_le_bytes());
        b[96..100].copy_from_slice(&5u32.to_le_bytes());
        b[100..104].copy_from_slice(&0x6F6F_F980u32.to_le_bytes());
        b[104..106].copy_from_slice(&0x0100u16.to_le_bytes());
        b[108] = 9;
        b[109] = 3;
        b[110] = 1;
        b[510] = 0x55;
        b[511] = 0xAA;
        let sum = boot_checksum(&r, 512).unwrap();
        for c in r[11 * 512..].chunks_exact_mut(4) {
            c.copy_from_slice(&sum.to_le_bytes());
        }
        r
    }

    #[test]
    fn decodes_and_verifies_a_boot_region() {
        let r = region();
        let b = verify_boot_region(&r, 512).unwrap();
        assert_eq!(b.cluster_size(), 4096);
        assert_eq!(b.cluster_offset(2), 4096 * 512);
        assert_eq!(b.fats_range(), (2048 * 512, 2176 * 512));
        // The volume flags are outside the checksum.
        let mut r2 = r.clone();
        r2[106] = 2;
        assert!(verify_boot_region(&r2, 512).unwrap().is_dirty());
        let mut r3 = r.clone();
        r3[200] = 1;
        assert!(matches!(
            verify_boot_region(&r3, 512),
            Err(FatError::Checksum(_))
        ));
    }

    #[test]
    fn rejects_inconsistent_geometry() {
        for (i, v) in [
            (108usize, 8u8),
            (109, 20),
            (110, 3),
            (93, 0),
            (96, 1),
            (105, 2),
        ] {
            let mut r = region();
            r[i] = v;
            assert!(ExfatBoot::parse(&r).is_err(), "byte {i} = {v}");
        }
        let mut r = region();
        r[11] = 1;
        assert!(ExfatBoot::parse(&r).is_err());
    }
}
