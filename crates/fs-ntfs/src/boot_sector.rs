//! The NTFS boot sector (sector 0, copied to the last sector of the volume).

use crate::NtfsError;
use lifeboat_fs::bytes::{u16_at, u64_at};

/// Bytes of the boot sector that are parsed.
pub const BOOT_SECTOR_SIZE: usize = 512;
/// The OEM id at byte 3.
pub const OEM_ID: &[u8; 8] = b"NTFS    ";
/// Largest cluster size accepted (the 2 MiB clusters of newer Windows).
pub const MAX_CLUSTER_SIZE: u64 = 2 << 20;
/// Largest MFT record size accepted.
pub const MAX_RECORD_SIZE: u64 = 64 << 10;

/// The decoded fields of an NTFS boot sector that the scanner relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSector {
    /// Bytes per sector (256 … 4096, a power of two).
    pub bytes_per_sector: u32,
    /// Bytes per cluster (a power of two, at most 2 MiB).
    pub cluster_size: u64,
    /// Sectors in the volume, not counting the sector that holds the backup boot sector.
    pub total_sectors: u64,
    /// Cluster number of the start of `$MFT`.
    pub mft_lcn: u64,
    /// Cluster number of the start of `$MFTMirr`.
    pub mftmirr_lcn: u64,
    /// Bytes per MFT record.
    pub record_size: u64,
    /// Bytes per index record.
    pub index_record_size: u64,
    /// Volume serial number.
    pub serial: u64,
}

/// A size given as a signed byte: clusters when positive, `2^-v` bytes when negative.
fn clusters_or_log(v: u8, cluster_size: u64) -> Option<u64> {
    let s = v as i8;
    if s > 0 {
        u64::from(s as u8).checked_mul(cluster_size)
    } else if s < 0 {
        let shift = u32::from(s.unsigned_abs());
        (shift < 32).then(|| 1u64 << shift)
    } else {
        None
    }
}

impl BootSector {
    /// Decodes and checks the first 512 bytes of a volume.
    pub fn parse(b: &[u8]) -> Result<BootSector, NtfsError> {
        if b.len() < BOOT_SECTOR_SIZE {
            return Err(NtfsError::TooShort {
                what: "boot sector",
                need: BOOT_SECTOR_SIZE,
                got: b.len(),
            });
        }
        if &b[3..11] != OEM_ID {
            return Err(NtfsError::BadSignature);
        }
        let bad = |field, value: u64, reason| NtfsError::BadBootSector {
            field,
            value,
            reason,
        };
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err(bad(
                "end marker",
                u64::from(u16_at(b, 510)?),
                "is not 0xaa55",
            ));
        }
        let bps = u32::from(u16_at(b, 0x0B)?);
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad(
                "bytes per sector",
                u64::from(bps),
                "must be a power of two from 256 to 4096",
            ));
        }
        let spc_raw = b[0x0D];
        let spc: u64 = if spc_raw > 0x80 {
            // Newer Windows: 2^(256 - v) sectors per cluster.
            let shift = 256 - u32::from(spc_raw);
            if shift > 31 {
                return Err(bad(
                    "sectors per cluster",
                    u64::from(spc_raw),
                    "shift out of range",
                ));
            }
            1u64 << shift
        } else {
            u64::from(spc_raw)
        };
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad(
                "sectors per cluster",
                u64::from(spc_raw),
                "must be a power of two",
            ));
        }
        let cluster_size = spc * u64::from(bps);
        if cluster_size > MAX_CLUSTER_SIZE {
            return Err(bad("cluster size", cluster_size, "larger than 2 MiB"));
        }
        // Fields that are zero on every NTFS volume (Windows checks them too).
        for (field, off, len) in [
            ("reserved sectors", 0x0E, 2),
            ("FAT count", 0x10, 1),
            ("root entries", 0x11, 2),
            ("16-bit sector count", 0x13, 2),
            ("sectors per FAT", 0x16, 2),
            ("32-bit sector count", 0x20, 4),
        ] {
            if b[off..off + len].iter().any(|&x| x != 0) {
                let mut v = [0u8; 8];
                v[..len].copy_from_slice(&b[off..off + len]);
                return Err(bad(field, u64::from_le_bytes(v), "must be zero on NTFS"));
            }
        }
        let total_sectors = u64_at(b, 0x28)?;
        let clusters = total_sectors / spc;
        if clusters == 0 {
            return Err(bad(
                "total sectors",
                total_sectors,
                "smaller than one cluster",
            ));
        }
        if total_sectors
            .checked_add(1)
            .and_then(|n| n.checked_mul(u64::from(bps)))
            .is_none()
        {
            return Err(bad("total sectors", total_sectors, "overflows"));
        }
        let mft_lcn = u64_at(b, 0x30)?;
        let mftmirr_lcn = u64_at(b, 0x38)?;
        if mft_lcn >= clusters {
            return Err(bad("$MFT cluster", mft_lcn, "outside the volume"));
        }
        if mftmirr_lcn >= clusters {
            return Err(bad("$MFTMirr cluster", mftmirr_lcn, "outside the volume"));
        }
        let record_size = clusters_or_log(b[0x40], cluster_size)
            .filter(|&s| (512..=MAX_RECORD_SIZE).contains(&s) && s.is_power_of_two())
            .ok_or_else(|| {
                bad(
                    "MFT record size",
                    u64::from(b[0x40]),
                    "must give a power of two from 512 bytes to 64 KiB",
                )
            })?;
        let index_record_size = clusters_or_log(b[0x44], cluster_size)
            .filter(|&s| (512..=MAX_RECORD_SIZE).contains(&s) && s.is_power_of_two())
            .ok_or_else(|| {
                bad(
                    "index record size",
                    u64::from(b[0x44]),
                    "must give a power of two from 512 bytes to 64 KiB",
                )
            })?;
        Ok(BootSector {
            bytes_per_sector: bps,
            cluster_size,
            total_sectors,
            mft_lcn,
            mftmirr_lcn,
            record_size,
            index_record_size,
            serial: u64_at(b, 0x48)?,
        })
    }

    /// Number of clusters the bitmap covers.
    pub fn clusters(&self) -> u64 {
        self.total_sectors * u64::from(self.bytes_per_sector) / self.cluster_size
    }

    /// Bytes covered by clusters.
    pub fn cluster_bytes(&self) -> u64 {
        self.clusters() * self.cluster_size
    }

    /// Byte offset of the backup boot sector (the sector after the last counted one).
    pub fn backup_offset(&self) -> u64 {
        self.total_sectors * u64::from(self.bytes_per_sector)
    }

    /// Size of the filesystem in bytes, including the sector of the backup boot sector.
    pub fn total_bytes(&self) -> u64 {
        self.backup_offset() + u64::from(self.bytes_per_sector)
    }

    /// The serial number as 16 upper-case hex digits (the notation of `blkid`).
    pub fn serial_string(&self) -> String {
        format!("{:016X}", self.serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(OEM_ID);
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = 8;
        b[0x28..0x30].copy_from_slice(&131_071u64.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&8191u64.to_le_bytes());
        b[0x40] = 0xF6; // 2^10
        b[0x44] = 1;
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn geometry() {
        let bs = BootSector::parse(&sample()).unwrap();
        assert_eq!(bs.cluster_size, 4096);
        assert_eq!(bs.record_size, 1024);
        assert_eq!(bs.index_record_size, 4096);
        assert_eq!(bs.clusters(), 16383);
        assert_eq!(bs.backup_offset(), 131_071 * 512);
        assert_eq!(bs.total_bytes(), 64 << 20);
    }

    #[test]
    fn two_mib_clusters() {
        let mut b = sample();
        b[0x0D] = 0xF4; // 2^12 sectors of 512
        b[0x30..0x38].copy_from_slice(&1u64.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&2u64.to_le_bytes());
        b[0x40] = 0xF6;
        b[0x44] = 0xF4;
        b[0x28..0x30].copy_from_slice(&((1u64 << 21) - 1).to_le_bytes());
        let bs = BootSector::parse(&b).unwrap();
        assert_eq!(bs.cluster_size, 2 << 20);
        assert_eq!(bs.clusters(), 511);
        b[0x0D] = 0xF3; // 4 MiB
        assert!(BootSector::parse(&b).is_err());
    }

    #[test]
    fn refusals() {
        let mut b = sample();
        b[3] = b'X';
        assert_eq!(BootSector::parse(&b), Err(NtfsError::BadSignature));
        let mut b = sample();
        b[0x0D] = 3;
        assert!(BootSector::parse(&b).is_err());
        let mut b = sample();
        b[0x10] = 2;
        assert!(BootSector::parse(&b).is_err());
        let mut b = sample();
        b[0x30..0x38].copy_from_slice(&16383u64.to_le_bytes());
        assert!(BootSector::parse(&b).is_err());
        let mut b = sample();
        b[0x40] = 0;
        assert!(BootSector::parse(&b).is_err());
        assert!(BootSector::parse(&sample()[..100]).is_err());
    }
}
