//! Field access with the structure named in errors (over the checked readers of
//! [`lifeboat_fs::bytes`]), the scanner's error type, and VMware's text formats.

use lifeboat_fs::bytes::OutOfBounds;
use lifeboat_fs::FsError;

/// Name of the filesystem family in errors.
pub const FS_NAME: &str = "vmfs";

/// Why the VMFS scanner refuses a partition it recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmfsError {
    /// A field lies outside the structure read for it.
    #[error("{what}: {at}")]
    Field {
        /// The structure.
        what: String,
        /// Where the field was looked for.
        at: OutOfBounds,
    },
    /// The LVM device header does not carry the LVM magic: not a VMFS partition.
    #[error("no LVM magic at byte {offset:#x}")]
    NoMagic {
        /// Byte offset of the device header.
        offset: u64,
        /// The value found there.
        found: u32,
    },
    /// A structure is inconsistent, unsupported or points outside the volume.
    #[error("{0}")]
    Inconsistent(String),
}

impl From<VmfsError> for FsError {
    fn from(e: VmfsError) -> FsError {
        FsError::corrupt(FS_NAME, e)
    }
}

/// Reads a field with `read` (one of the readers of [`lifeboat_fs::bytes`]) at `off` in
/// `buf`; a field outside the buffer is an error naming the structure `what`.
pub(crate) fn field<T>(
    read: fn(&[u8], usize) -> Result<T, OutOfBounds>,
    buf: &[u8],
    off: usize,
    what: &str,
) -> Result<T, FsError> {
    read(buf, off).map_err(|at| {
        VmfsError::Field {
            what: what.to_string(),
            at,
        }
        .into()
    })
}

/// An [`FsError::Corrupt`] of the vmfs scanner.
pub(crate) fn corrupt(reason: impl Into<String>) -> FsError {
    VmfsError::Inconsistent(reason.into()).into()
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
    use lifeboat_fs::bytes::{u32_at, u64_at};

    #[test]
    fn fields_outside_the_buffer_are_errors_and_uuids_print_like_vmware() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(field(u32_at, &b, 4, "t").unwrap(), 0x0807_0605);
        let e = field(u32_at, &b, 5, "t").unwrap_err();
        assert_eq!(
            e.to_string(),
            "vmfs: t: field at byte 5 lies outside the structure"
        );
        assert!(field(u64_at, &b, usize::MAX, "t").is_err());
        let raw = [
            0xfc, 0x6e, 0x62, 0x68, 0xd0, 0x1c, 0xce, 0x23, 0x8b, 0x1f, 0xbc, 0x24, 0x11, 0xb1,
            0x7e, 0x28,
        ];
        assert_eq!(vmware_uuid(&raw), "68626efc-23ce1cd0-1f8b-bc2411b17e28");
        assert_eq!(c_string(b"vmfs5\0\0junk"), "vmfs5");
    }
}
