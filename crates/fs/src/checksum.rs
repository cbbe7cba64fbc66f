//! CRC-32C (Castagnoli), the metadata checksum of ext4 (`metadata_csum`) and XFS v5: one
//! table-driven register update shared by the scanners.

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
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

static TABLE: [u32; 256] = table();

/// Updates a CRC-32C register with `data`: no pre- or post-inversion, the caller chooses the
/// seed (the standard CRC-32C of `b` is `!crc32c_update(!0, b)`).
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        assert_eq!(!super::crc32c_update(!0, b"123456789"), 0xE306_9283);
    }
}
