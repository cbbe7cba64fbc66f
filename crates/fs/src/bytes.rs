//! Checked little-endian field access: reading a field that does not lie wholly inside the
//! buffer is an [`OutOfBounds`] error, never a panic. On-disk structures of every filesystem
//! scanner are read through these.

/// A field that does not lie wholly inside the buffer it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("field at byte {offset} lies outside the structure")]
pub struct OutOfBounds {
    /// Byte offset of the field in the buffer.
    pub offset: usize,
    /// Size of the field in bytes.
    pub size: usize,
    /// Length of the buffer.
    pub len: usize,
}

/// The `N` bytes at `offset` in `buf`.
pub fn array_at<const N: usize>(buf: &[u8], offset: usize) -> Result<[u8; N], OutOfBounds> {
    offset
        .checked_add(N)
        .and_then(|end| buf.get(offset..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(OutOfBounds {
            offset,
            size: N,
            len: buf.len(),
        })
}

/// The byte at `offset`.
pub fn u8_at(buf: &[u8], offset: usize) -> Result<u8, OutOfBounds> {
    Ok(array_at::<1>(buf, offset)?[0])
}

/// The little-endian `u16` at `offset`.
pub fn u16_at(buf: &[u8], offset: usize) -> Result<u16, OutOfBounds> {
    array_at(buf, offset).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `offset`.
pub fn u32_at(buf: &[u8], offset: usize) -> Result<u32, OutOfBounds> {
    array_at(buf, offset).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `offset`.
pub fn u64_at(buf: &[u8], offset: usize) -> Result<u64, OutOfBounds> {
    array_at(buf, offset).map(u64::from_le_bytes)
}

/// The little-endian `u16`s of `buf` (e.g. UTF-16 text); a last odd byte is ignored.
pub fn u16s(buf: &[u8]) -> impl Iterator<Item = u16> + '_ {
    buf.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// The little-endian `u32`s of `buf`; last bytes that do not fill one are ignored.
pub fn u32s(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    buf.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_outside_the_buffer_are_errors() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u8_at(&b, 8), Ok(9));
        assert_eq!(u16_at(&b, 0), Ok(0x0201));
        assert_eq!(u32_at(&b, 4), Ok(0x0807_0605));
        assert_eq!(u64_at(&b, 1), Ok(0x0908_0706_0504_0302));
        let e = u32_at(&b, 6).unwrap_err();
        assert_eq!((e.offset, e.size, e.len), (6, 4, 9));
        assert_eq!(e.to_string(), "field at byte 6 lies outside the structure");
        assert!(u64_at(&b, usize::MAX).is_err());
        assert!(u8_at(&[], 0).is_err());
        assert_eq!(
            u16s(&b).collect::<Vec<_>>(),
            [0x0201, 0x0403, 0x0605, 0x0807]
        );
        assert_eq!(u32s(&b).collect::<Vec<_>>(), [0x0403_0201, 0x0807_0605]);
    }
}
