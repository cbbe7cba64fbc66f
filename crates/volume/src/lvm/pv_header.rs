//! The PV header, inside the label sector: the PV's UUID and size, and where its data and
//! metadata areas lie.
//!
//! Layout (little-endian, from the label's header offset): the PV UUID (32 characters, no
//! dashes), the device size in bytes (u64), a list of data areas and then a list of metadata
//! areas, each an array of `(offset, size)` u64 pairs in bytes ended by a pair whose offset is
//! 0; then (LVM2 2.02.116+) an extension: version (u32), flags (u32) and a list of bootloader
//! areas in the same form.

use super::LvmError;
use lifeboat_fs::bytes;

/// One `(offset, size)` pair of a PV header list, in bytes from the start of the PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    /// First byte.
    pub offset: u64,
    /// Bytes (0: up to the end, for a data area).
    pub size: u64,
}

/// A decoded PV header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeader {
    /// The PV UUID as stored (32 characters).
    pub uuid: String,
    /// The device size recorded by pvcreate/pvresize, in bytes.
    pub device_size: u64,
    /// Data areas (one: from pe_start on).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas (at the start, and optionally one at the end).
    pub metadata_areas: Vec<DiskLocn>,
    /// The extension's version (0: no extension).
    pub ext_version: u32,
    /// The extension's flags (1: the PV is used in a VG).
    pub ext_flags: u32,
    /// Bootloader areas (from `pvcreate --bootloaderareasize`).
    pub bootloader_areas: Vec<DiskLocn>,
}

/// At most this many entries in one list (a label sector holds at most 29 pairs).
const MAX_LIST: usize = 32;

fn list(buf: &[u8], at: &mut usize, what: &'static str) -> Result<Vec<DiskLocn>, LvmError> {
    let mut out = Vec::new();
    loop {
        let offset = bytes::u64_at(buf, *at)?;
        let size = bytes::u64_at(buf, *at + 8)?;
        *at += 16;
        if offset == 0 {
            return Ok(out);
        }
        if out.len() >= MAX_LIST {
            return Err(LvmError::PvHeader(format!("{what} list has no end")));
        }
        out.push(DiskLocn { offset, size });
    }
}

/// Formats a 32-character LVM UUID as LVM prints it: 6-4-4-4-4-4-6.
pub fn format_uuid(raw: &str) -> String {
    let raw: String = raw.chars().filter(|c| *c != '-').collect();
    if raw.len() != 32 || !raw.is_ascii() {
        return raw;
    }
    let cuts = [6, 4, 4, 4, 4, 4, 6];
    let mut out = String::with_capacity(38);
    let mut i = 0;
    for (n, len) in cuts.iter().enumerate() {
        if n > 0 {
            out.push('-');
        }
        out.push_str(&raw[i..i + len]);
        i += len;
    }
    out
}

impl PvHeader {
    /// Decodes the PV header from `buf` (the label sector from the header offset on).
    pub fn parse(buf: &[u8]) -> Result<PvHeader, LvmError> {
        let raw = bytes::array_at::<32>(buf, 0)?;
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(LvmError::PvHeader("PV UUID is not printable text".into()));
        }
        let uuid = String::from_utf8_lossy(&raw).into_owned();
        let device_size = bytes::u64_at(buf, 32)?;
        let mut at = 40;
        let data_areas = list(buf, &mut at, "data area")?;
        let metadata_areas = list(buf, &mut at, "metadata area")?;
        // The extension is there when the label sector has room for it and it is non-zero.
        let (mut ext_version, mut ext_flags, mut bootloader_areas) = (0, 0, Vec::new());
        if let (Ok(v), Ok(f)) = (bytes::u32_at(buf, at), bytes::u32_at(buf, at + 4)) {
            if v != 0 {
                ext_version = v;
                ext_flags = f;
                at += 8;
                bootloader_areas = list(buf, &mut at, "bootloader area").unwrap_or_default();
            }
        }
        Ok(PvHeader {
            uuid,
            device_size,
            data_areas,
            metadata_areas,
            ext_version,
            ext_flags,
            bootloader_areas,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_prints_like_pvs() {
        assert_eq!(
            format_uuid("haWJ1tLDYFEaDZkXbj6CjLz1MA917FDN"),
            "haWJ1t-LDYF-EaDZ-kXbj-6CjL-z1MA-917FDN"
        );
    }

    #[test]
    fn lists_end_at_a_zero_offset_and_are_bounded() {
        let mut b = vec![b'A'; 32];
        b.extend_from_slice(&(64u64 << 20).to_le_bytes());
        for v in [1u64 << 20, 0, 0, 0, 4096, 0xff000, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        let h = PvHeader::parse(&b).unwrap();
        assert_eq!(
            h.data_areas,
            vec![DiskLocn {
                offset: 1 << 20,
                size: 0
            }]
        );
        assert_eq!(
            h.metadata_areas,
            vec![DiskLocn {
                offset: 4096,
                size: 0xff000
            }]
        );
        assert_eq!((h.ext_version, h.ext_flags), (2, 1));
        // No terminator: an error, not a panic.
        let mut c = vec![b'A'; 32];
        c.extend(std::iter::repeat_n(1u8, 480));
        assert!(PvHeader::parse(&c).is_err());
    }
}
