//! Checked big-endian field access (XFS stores every field big-endian, except the CRCs),
//! over [`lifeboat_fs::bytes::array_at`]: a field outside the buffer is an
//! [`XfsError::Field`] naming the structure, never a panic.

use lifeboat_fs::bytes::array_at;

use crate::XfsError;

fn field<const N: usize>(buf: &[u8], off: usize, what: &'static str) -> Result<[u8; N], XfsError> {
    array_at::<N>(buf, off).map_err(|at| XfsError::Field { what, at })
}

/// The byte at `off` of the structure `what`.
pub fn u8_at(buf: &[u8], off: usize, what: &'static str) -> Result<u8, XfsError> {
    Ok(field::<1>(buf, off, what)?[0])
}

/// The big-endian `u16` at `off` of the structure `what`.
pub fn be16(buf: &[u8], off: usize, what: &'static str) -> Result<u16, XfsError> {
    field(buf, off, what).map(u16::from_be_bytes)
}

/// The big-endian `u32` at `off` of the structure `what`.
pub fn be32(buf: &[u8], off: usize, what: &'static str) -> Result<u32, XfsError> {
    field(buf, off, what).map(u32::from_be_bytes)
}

/// The big-endian `u64` at `off` of the structure `what`.
pub fn be64(buf: &[u8], off: usize, what: &'static str) -> Result<u64, XfsError> {
    field(buf, off, what).map(u64::from_be_bytes)
}

/// The little-endian `u32` at `off` (the on-disk CRC fields) of the structure `what`.
pub fn le32(buf: &[u8], off: usize, what: &'static str) -> Result<u32, XfsError> {
    field(buf, off, what).map(u32::from_le_bytes)
}

/// The 16 bytes at `off` (a UUID) of the structure `what`.
pub fn uuid_at(buf: &[u8], off: usize, what: &'static str) -> Result<[u8; 16], XfsError> {
    field(buf, off, what)
}

/// A UUID in the usual 8-4-4-4-12 lower-case notation (bytes in on-disk order).
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_big_endian_and_bounded() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(be16(&b, 0, "t"), Ok(0x0102));
        assert_eq!(be32(&b, 4, "t"), Ok(0x0506_0708));
        assert_eq!(be64(&b, 0, "t"), Ok(0x0102_0304_0506_0708));
        assert_eq!(le32(&b, 0, "t"), Ok(0x0403_0201));
        assert_eq!(u8_at(&b, 7, "t"), Ok(8));
        let e = be32(&b, 6, "agf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "agf: field at byte 6 lies outside the structure"
        );
        assert!(be64(&b, usize::MAX, "t").is_err());
        let u: [u8; 16] = core::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(uuid_string(&u), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
