//! CRC32C (Castagnoli), the checksum of every v5 metadata block.
//!
//! XFS computes the CRC of the whole structure with its CRC field counted as zero, starting
//! from `!0` and inverting the result (the standard CRC-32C), and stores it little-endian.

use lifeboat_fs::checksum::crc32c_update as update;

/// The standard CRC-32C of `bytes` (`crc32c(b"123456789") == 0xE3069283`).
pub fn crc32c(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// The CRC XFS stores in `buf` at `crc_off`: the CRC-32C of `buf` with the four bytes at
/// `crc_off` counted as zero. `None` when the field does not lie inside `buf`.
pub fn xfs_crc(buf: &[u8], crc_off: usize) -> Option<u32> {
    let end = crc_off.checked_add(4).filter(|&e| e <= buf.len())?;
    let c = update(!0, &buf[..crc_off]);
    let c = update(c, &[0; 4]);
    Some(!update(c, &buf[end..]))
}

/// Stores the CRC of `buf` at `crc_off` (little-endian), as XFS does; for tests and tools
/// that build or patch metadata. Does nothing when the field does not lie inside `buf`.
pub fn set_xfs_crc(buf: &mut [u8], crc_off: usize) {
    if let Some(c) = xfs_crc(buf, crc_off) {
        buf[crc_off..crc_off + 4].copy_from_slice(&c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        let mut b = b"0123XXXX456789".to_vec();
        set_xfs_crc(&mut b, 4);
        let mut z = b.clone();
        z[4..8].fill(0);
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), crc32c(&z));
        assert_eq!(xfs_crc(&b, 11), None);
    }
}
