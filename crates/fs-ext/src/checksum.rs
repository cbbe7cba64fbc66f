//! The two checksums ext uses for its superblock and group descriptors: CRC-32C (Castagnoli,
//! `metadata_csum`) and CRC-16 (the reflected 0x8005 polynomial, `gdt_csum`/`uninit_bg`).
//!
//! Both are "raw" register updates: no final inversion, the caller chooses the seed, exactly as
//! the ext4 on-disk format documentation describes.

const fn crc16_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xA001
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC16: [u16; 256] = crc16_table();

/// Updates a CRC-32C register with `data` (no pre- or post-inversion): the one register of
/// [`lifeboat_fs::checksum`].
pub use lifeboat_fs::checksum::crc32c_update as crc32c;

/// Updates a CRC-16 register with `data` (no pre- or post-inversion).
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc = CRC16[((crc ^ u16::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The standard check values of CRC-32C and CRC-16/ARC over "123456789".
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }
}
