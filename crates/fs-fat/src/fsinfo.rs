//! The FAT32 FSInfo sector: a hint of the free cluster count and the next free cluster.

use crate::FatError;
use lifeboat_fs::bytes::u32_at;

/// Lead signature at byte 0.
pub const LEAD_SIGNATURE: u32 = 0x4161_5252;
/// Structure signature at byte 484.
pub const STRUCT_SIGNATURE: u32 = 0x6141_7272;
/// Trail signature at byte 508.
pub const TRAIL_SIGNATURE: u32 = 0xAA55_0000;

/// The decoded FSInfo sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsInfoSector {
    /// Last known free cluster count (`None` when unknown, 0xFFFFFFFF).
    pub free_count: Option<u32>,
    /// Hint of the next free cluster (`None` when unknown).
    pub next_free: Option<u32>,
}

impl FsInfoSector {
    /// Decodes the first 512 bytes of an FSInfo sector, checking its three signatures.
    pub fn parse(b: &[u8]) -> Result<FsInfoSector, FatError> {
        if b.len() < 512 {
            return Err(FatError::TooShort {
                what: "FSInfo sector",
                need: 512,
                got: b.len(),
            });
        }
        if u32_at(b, 0)? != LEAD_SIGNATURE
            || u32_at(b, 484)? != STRUCT_SIGNATURE
            || u32_at(b, 508)? != TRAIL_SIGNATURE
        {
            return Err(FatError::Corrupt(
                "FSInfo sector signatures are missing".to_string(),
            ));
        }
        let opt = |v: u32| (v != 0xFFFF_FFFF).then_some(v);
        Ok(FsInfoSector {
            free_count: opt(u32_at(b, 488)?),
            next_free: opt(u32_at(b, 492)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_checks_signatures() {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(&LEAD_SIGNATURE.to_le_bytes());
        b[484..488].copy_from_slice(&STRUCT_SIGNATURE.to_le_bytes());
        b[488..492].copy_from_slice(&1234u32.to_le_bytes());
        b[492..496].copy_from_slice(&u32::MAX.to_le_bytes());
        b[508..512].copy_from_slice(&TRAIL_SIGNATURE.to_le_bytes());
        let f = FsInfoSector::parse(&b).unwrap();
        assert_eq!(f.free_count, Some(1234));
        assert_eq!(f.next_free, None);
        b[0] = 0;
        assert!(FsInfoSector::parse(&b).is_err());
    }
}
