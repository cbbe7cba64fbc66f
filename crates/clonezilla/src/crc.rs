//! partclone's CRC-32.
//!
//! partclone uses the reflected CRC-32 of zlib/Ethernet (polynomial 0xEDB88320), seeded with
//! 0xFFFFFFFF but *without* the final inversion: the value it stores is the raw register.
//! With `crc32fast`, whose `finalize()` inverts the register, the stored value is therefore
//! `!hasher.finalize()`.
//!
//! Format v1 images (partclone 0.2.x) used a broken variant: the loop over a block never
//! advanced its pointer, so each block's checksum is the register updated `block_size` times
//! with the block's *first* byte ([`update_v1`]).

/// The reflected CRC-32 table (polynomial 0xEDB88320).
const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut j = 0;
        while j < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            j += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The seed partclone starts every checksum with.
pub const SEED: u32 = 0xFFFF_FFFF;

/// partclone's `crc32(seed, bytes)`: the register after `bytes`, starting from `reg`.
pub fn update(reg: u32, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!reg);
    h.update(bytes);
    !h.finalize()
}

/// partclone's v1 `crc32_0001(seed, block)`: the register updated `len` times with `first`.
pub fn update_v1(mut reg: u32, first: u8, len: usize) -> u32 {
    for _ in 0..len {
        reg = TABLE[((reg ^ u32::from(first)) & 0xFF) as usize] ^ (reg >> 8);
    }
    reg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_is_the_uninverted_standard_crc() {
        // The standard CRC-32 of "123456789" is 0xCBF43926; partclone stores its inverse.
        assert_eq!(update(SEED, b"123456789"), !0xCBF4_3926);
        // Continuing from a register equals hashing the concatenation.
        assert_eq!(
            update(update(SEED, b"1234"), b"56789"),
            update(SEED, b"123456789")
        );
    }

    #[test]
    fn v1_uses_the_first_byte_only() {
        assert_eq!(update_v1(SEED, b'a', 3), update(SEED, b"aaa"));
        assert_eq!(update_v1(SEED, 0, 0), SEED);
    }
}
