//! Little-endian field access that never panics: a field outside the buffer reads as an error.

use lifeboat_fs::FsError;

/// Reads a little-endian unsigned integer of `N` bytes at `off` in `buf`.
fn field<const N: usize>(buf: &[u8], off: usize, what: &str) -> Result<[u8; N], FsError> {
    off.checked_add(N)
        .and_then(|end| buf.get(off..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| {
            corrupt(format!(
                "{what}: field at byte {off} lies outside the structure"
            ))
        })
}

pub(crate) fn u8_at(buf: &[u8], off: usize, what: &str) -> Result<u8, FsError> {
    Ok(field::<1>(buf, off, what)?[0])
}

pub(crate) fn u16_at(buf: &[u8], off: usize, what: &str) -> Result<u16, FsError> {
    Ok(u16::from_le_bytes(field(buf, off, what)?))
}

pub(crate) fn u32_at(buf: &[u8], off: usize, what: &str) -> Result<u32, FsError> {
    Ok(u32::from_le_bytes(field(buf, off, what)?))
}

pub(crate) fn u64_at(buf: &[u8], off: usize, what: &str) -> Result<u64, FsError> {
    Ok(u64::from_le_bytes(field(buf, off, what)?))
}

/// An [`FsError::Corrupt`] of the vmfs scanner.
pub(crate) fn corrupt(reason: impl Into<String>) -> FsError {
    FsError::Corrupt {
        fs: "vmfs",
        reason: reason.into(),
    }
}

/// Formats a VMware UUID (`timeLo-timeHi-rand-mac`) as VMware tools print it.
pub(crate) fn vmware_uuid(raw: &[u8; 16]) -> String {
    let lo = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let hi = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
    let rand = u16::from_le_bytes([raw[8], raw[9]]);
    let mac: String = raw[10..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{lo:08x}-{hi:08x}-{rand:04x}-{mac}")
}

/// A NUL-terminated text field.
pub(crate) fn c_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_outside_the_buffer_are_errors_and_uuids_print_like_vmware() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(u32_at(&b, 4, "t").unwrap(), 0x0807_0605);
        assert!(u32_at(&b, 5, "t").is_err());
        assert!(u64_at(&b, usize::MAX, "t").is_err());
        let raw = [
            0xfc, 0x6e, 0x62, 0x68, 0xd0, 0x1c, 0xce, 0x23, 0x8b, 0x1f, 0xbc, 0x24, 0x11, 0xb1,
            0x7e, 0x28,
        ];
        assert_eq!(vmware_uuid(&raw), "68626efc-23ce1cd0-1f8b-bc2411b17e28");
        assert_eq!(c_string(b"vmfs5\0\0junk"), "vmfs5");
    }
}
