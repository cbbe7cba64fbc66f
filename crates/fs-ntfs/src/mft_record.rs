//! MFT records: update-sequence fixups, the record header and its attributes.
//!
//! Multi-sector structures (MFT records, index records, log restart pages) end every 512-byte
//! stride with the update sequence number; the real last two bytes of each stride are kept in
//! the update sequence array. [`apply_fixups`] checks and restores them.

use crate::NtfsError;
use lifeboat_fs::bytes::{u16_at, u32_at, u64_at};

/// Stride of the update sequence protection (always 512 bytes, whatever the sector size).
pub const FIXUP_STRIDE: usize = 512;

/// Attribute type codes used by the scanner.
pub mod attr_type {
    /// `$STANDARD_INFORMATION`.
    pub const STANDARD_INFORMATION: u32 = 0x10;
    /// `$ATTRIBUTE_LIST`.
    pub const ATTRIBUTE_LIST: u32 = 0x20;
    /// `$FILE_NAME`.
    pub const FILE_NAME: u32 = 0x30;
    /// `$VOLUME_NAME`.
    pub const VOLUME_NAME: u32 = 0x60;
    /// `$VOLUME_INFORMATION`.
    pub const VOLUME_INFORMATION: u32 = 0x70;
    /// `$DATA`.
    pub const DATA: u32 = 0x80;
    /// `$INDEX_ROOT`.
    pub const INDEX_ROOT: u32 = 0x90;
    /// `$INDEX_ALLOCATION`.
    pub const INDEX_ALLOCATION: u32 = 0xA0;
    /// `$BITMAP` (of an index: which index records are in use).
    pub const BITMAP: u32 = 0xB0;
    /// End of the attribute list of a record.
    pub const END: u32 = 0xFFFF_FFFF;
}

/// Checks and undoes the update-sequence fixups of a multi-sector structure in place.
/// `magic` is the expected 4-byte signature (`FILE`, `INDX`, `RSTR`); `what` names the
/// structure in errors.
pub fn apply_fixups(buf: &mut [u8], magic: &[u8; 4], what: &str) -> Result<(), NtfsError> {
    let err = |reason: String| NtfsError::BadRecord {
        what: what.to_string(),
        reason,
    };
    if buf.len() < FIXUP_STRIDE || !buf.len().is_multiple_of(FIXUP_STRIDE) {
        return Err(err(format!("size {} is not a multiple of 512", buf.len())));
    }
    if &buf[0..4] != magic {
        return Err(err(format!(
            "signature {:02x?} is not {:?}",
            &buf[0..4],
            String::from_utf8_lossy(magic)
        )));
    }
    let usa_ofs = usize::from(u16_at(buf, 4)?);
    let usa_count = usize::from(u16_at(buf, 6)?);
    let strides = buf.len() / FIXUP_STRIDE;
    if usa_count != strides + 1 {
        return Err(err(format!(
            "update sequence has {usa_count} entries, expected {}",
            strides + 1
        )));
    }
    if usa_ofs % 2 != 0 || usa_ofs < 8 || usa_ofs + 2 * usa_count > FIXUP_STRIDE - 2 {
        return Err(err(format!(
            "update sequence offset {usa_ofs} out of range"
        )));
    }
    let usn = [buf[usa_ofs], buf[usa_ofs + 1]];
    for i in 0..strides {
        let end = (i + 1) * FIXUP_STRIDE - 2;
        if buf[end..end + 2] != usn {
            return Err(err(format!(
                "torn write: stride {i} ends in {:02x?}, update sequence number is {usn:02x?}",
                &buf[end..end + 2]
            )));
        }
    }
    for i in 0..strides {
        let end = (i + 1) * FIXUP_STRIDE - 2;
        let src = usa_ofs + 2 * (i + 1);
        let (a, b) = (buf[src], buf[src + 1]);
        buf[end] = a;
        buf[end + 1] = b;
    }
    Ok(())
}

/// Applies update-sequence protection to `buf` (the inverse of [`apply_fixups`]), with the
/// update sequence array at `usa_ofs` and number `usn`. Used to build test structures.
pub fn protect(buf: &mut [u8], usa_ofs: usize, usn: u16) {
    let strides = buf.len() / FIXUP_STRIDE;
    buf[4..6].copy_from_slice(&(usa_ofs as u16).to_le_bytes());
    buf[6..8].copy_from_slice(&((strides + 1) as u16).to_le_bytes());
    buf[usa_ofs..usa_ofs + 2].copy_from_slice(&usn.to_le_bytes());
    for i in 0..strides {
        let end = (i + 1) * FIXUP_STRIDE - 2;
        let dst = usa_ofs + 2 * (i + 1);
        buf[dst] = buf[end];
        buf[dst + 1] = buf[end + 1];
        buf[end..end + 2].copy_from_slice(&usn.to_le_bytes());
    }
}

/// Record header flags.
pub mod record_flags {
    /// The record is in use.
    pub const IN_USE: u16 = 0x0001;
    /// The record is a directory.
    pub const DIRECTORY: u16 = 0x0002;
}

/// A fixed-up MFT record.
#[derive(Debug, Clone, Copy)]
pub struct MftRecord<'a> {
    /// The record bytes (fixups applied).
    pub bytes: &'a [u8],
    /// Sequence number.
    pub sequence: u16,
    /// `record_flags`.
    pub flags: u16,
    /// Offset of the first attribute.
    pub attrs_offset: usize,
    /// Bytes of the record in use.
    pub bytes_in_use: usize,
    /// Reference of the base record (0 for a base record).
    pub base_record: u64,
}

/// The part of an attribute specific to its form.
#[derive(Debug, Clone, Copy)]
pub enum AttrForm<'a> {
    /// The value lies in the record.
    Resident {
        /// The value.
        value: &'a [u8],
    },
    /// The value lies in clusters described by mapping pairs.
    NonResident {
        /// First VCN described by this attribute extent.
        lowest_vcn: u64,
        /// Last VCN described by this attribute extent.
        highest_vcn: u64,
        /// Allocated bytes (meaningful in the first extent only).
        allocated_size: u64,
        /// Logical size in bytes (meaningful in the first extent only).
        data_size: u64,
        /// Initialised bytes (meaningful in the first extent only).
        initialized_size: u64,
        /// Compression unit (log2 of clusters); 0 when not compressed.
        compression_unit: u8,
        /// The mapping pairs.
        mapping_pairs: &'a [u8],
    },
}

/// One attribute of a record.
#[derive(Debug, Clone, Copy)]
pub struct Attribute<'a> {
    /// Type code (`attr_type`).
    pub type_code: u32,
    /// Name as UTF-16LE bytes (empty for the unnamed attribute).
    pub name: &'a [u8],
    /// Attribute flags (0x0001 compressed, 0x4000 encrypted, 0x8000 sparse).
    pub flags: u16,
    /// Attribute instance number.
    pub instance: u16,
    /// Resident value or non-resident description.
    pub form: AttrForm<'a>,
}

impl Attribute<'_> {
    /// True for the unnamed attribute.
    pub fn is_unnamed(&self) -> bool {
        self.name.is_empty()
    }
}

impl<'a> MftRecord<'a> {
    /// Decodes the header of a fixed-up record (see [`apply_fixups`]).
    pub fn parse(bytes: &'a [u8], what: &str) -> Result<MftRecord<'a>, NtfsError> {
        let err = |reason: String| NtfsError::BadRecord {
            what: what.to_string(),
            reason,
        };
        if bytes.len() < 0x30 || &bytes[0..4] != b"FILE" {
            return Err(err("not a FILE record".into()));
        }
        let attrs_offset = usize::from(u16_at(bytes, 0x14)?);
        let bytes_in_use = u32_at(bytes, 0x18)? as usize;
        let allocated = u32_at(bytes, 0x1C)? as usize;
        if allocated != bytes.len() {
            return Err(err(format!(
                "allocated size {allocated} differs from the record size {}",
                bytes.len()
            )));
        }
        if bytes_in_use > bytes.len() || bytes_in_use < attrs_offset + 4 {
            return Err(err(format!("bytes in use {bytes_in_use} out of range")));
        }
        if attrs_offset % 8 != 0 || attrs_offset < 0x2A {
            return Err(err(format!("attribute offset {attrs_offset} out of range")));
        }
        Ok(MftRecord {
            bytes,
            sequence: u16_at(bytes, 0x10)?,
            flags: u16_at(bytes, 0x16)?,
            attrs_offset,
            bytes_in_use,
            base_record: u64_at(bytes, 0x20)?,
        })
    }

    /// True when the record is in use.
    pub fn in_use(&self) -> bool {
        self.flags & record_flags::IN_USE != 0
    }

    /// The attributes, in record order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: &self.bytes[..self.bytes_in_use],
            pos: self.attrs_offset,
            done: false,
        }
    }

    /// The first attribute of `type_code` with the given UTF-16LE name bytes.
    pub fn find(&self, type_code: u32, name: &[u8]) -> Result<Option<Attribute<'a>>, NtfsError> {
        for a in self.attributes() {
            let a = a?;
            if a.type_code == type_code && a.name == name {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}

/// Iterator over the attributes of a record; stops at the first error.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

fn bad_attr(pos: usize, reason: impl Into<String>) -> NtfsError {
    NtfsError::BadRecord {
        what: format!("attribute at record offset {pos}"),
        reason: reason.into(),
    }
}

/// Decodes the attribute at the start of `b` (which ends where the record's used bytes end).
/// `pos` is its offset in the record, for errors. Returns the attribute and its length.
pub fn parse_attribute(b: &[u8], pos: usize) -> Result<(Attribute<'_>, usize), NtfsError> {
    if b.len() < 16 {
        return Err(bad_attr(pos, "header passes the end of the record"));
    }
    let type_code = u32_at(b, 0)?;
    let len = u32_at(b, 4)? as usize;
    if len < 16 || !len.is_multiple_of(8) || len > b.len() {
        return Err(bad_attr(pos, format!("length {len} out of range")));
    }
    let a = &b[..len];
    let non_resident = a[8];
    let name_len = usize::from(a[9]) * 2;
    let name_off = usize::from(u16_at(a, 10)?);
    let flags = u16_at(a, 12)?;
    let instance = u16_at(a, 14)?;
    let name = if name_len == 0 {
        &a[0..0]
    } else {
        a.get(name_off..name_off + name_len)
            .ok_or_else(|| bad_attr(pos, "name passes the end of the attribute"))?
    };
    let form = match non_resident {
        0 => {
            if len < 24 {
                return Err(bad_attr(pos, "resident header too short"));
            }
            let vlen = u32_at(a, 16)? as usize;
            let voff = usize::from(u16_at(a, 20)?);
            let value = a
                .get(voff..voff.saturating_add(vlen))
                .ok_or_else(|| bad_attr(pos, "resident value passes the end of the attribute"))?;
            AttrForm::Resident { value }
        }
        1 => {
            if len < 64 {
                return Err(bad_attr(pos, "non-resident header too short"));
            }
            let mp_off = usize::from(u16_at(a, 32)?);
            if mp_off < 64 || mp_off > len {
                return Err(bad_attr(
                    pos,
                    format!("mapping pairs offset {mp_off} out of range"),
                ));
            }
            let lowest_vcn = u64_at(a, 16)?;
            let highest_vcn = u64_at(a, 24)?;
            // highest = lowest - 1 describes an empty extent (a zero-length stream).
            if highest_vcn.wrapping_add(1) < lowest_vcn || lowest_vcn > i64::MAX as u64 {
                return Err(bad_attr(
                    pos,
                    format!("VCN range {lowest_vcn}..={highest_vcn} is inverted"),
                ));
            }
            AttrForm::NonResident {
                lowest_vcn,
                highest_vcn,
                compression_unit: a[34],
                allocated_size: u64_at(a, 40)?,
                data_size: u64_at(a, 48)?,
                initialized_size: u64_at(a, 56)?,
                mapping_pairs: &a[mp_off..],
            }
        }
        v => return Err(bad_attr(pos, format!("non-resident flag {v}"))),
    };
    Ok((
        Attribute {
            type_code,
            name,
            flags,
            instance,
            form,
        },
        len,
    ))
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, NtfsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        if rest.len() < 4 {
            self.done = true;
            return Some(Err(bad_attr(self.pos, "no end marker")));
        }
        if u32_at(rest, 0) == Ok(attr_type::END) {
            self.done = true;
            return None;
        }
        match parse_attribute(rest, self.pos) {
            Ok((a, len)) => {
                self.pos += len;
                Some(Ok(a))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// One entry of an `$ATTRIBUTE_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Attribute type.
    pub type_code: u32,
    /// Name as UTF-16LE bytes.
    pub name: Vec<u8>,
    /// First VCN of the attribute extent held in `record`.
    pub lowest_vcn: u64,
    /// MFT record number (low 48 bits of the reference) holding the extent.
    pub record: u64,
}

/// Decodes the entries of an `$ATTRIBUTE_LIST` value of `type_code` (all entries if `None`).
/// At most `max` entries are returned; more is an error.
pub fn parse_attribute_list(
    b: &[u8],
    type_code: Option<u32>,
    max: usize,
) -> Result<Vec<ListEntry>, NtfsError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < b.len() {
        let bad = |reason: String| NtfsError::BadRecord {
            what: format!("attribute list entry at offset {pos}"),
            reason,
        };
        if b.len() - pos < 26 {
            return Err(bad("shorter than an entry header".into()));
        }
        let e = &b[pos..];
        let t = u32_at(e, 0)?;
        let len = usize::from(u16_at(e, 4)?);
        if len < 26 || len % 8 != 0 || len > e.len() {
            return Err(bad(format!("length {len} out of range")));
        }
        let name_len = usize::from(e[6]) * 2;
        let name_off = usize::from(e[7]);
        let name = if name_len == 0 {
            Vec::new()
        } else {
            e[..len]
                .get(name_off..name_off + name_len)
                .ok_or_else(|| bad("name passes the end of the entry".into()))?
                .to_vec()
        };
        if type_code.is_none_or(|want| want == t) {
            if out.len() >= max {
                return Err(NtfsError::TooComplex(format!(
                    "attribute list has more than {max} entries"
                )));
            }
            out.push(ListEntry {
                type_code: t,
                name,
                lowest_vcn: u64_at(e, 8)?,
                record: u64_at(e, 16)? & 0x0000_FFFF_FFFF_FFFF,
            });
        }
        pos += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixups_round_trip_and_detect_torn_writes() {
        let mut rec = vec![0u8; 1024];
        rec[0..4].copy_from_slice(b"FILE");
        for (i, b) in rec.iter_mut().enumerate().skip(0x60) {
            *b = (i * 7) as u8;
        }
        let orig = rec.clone();
        protect(&mut rec, 0x30, 0x1234);
        assert_ne!(rec, orig);
        let mut r = rec.clone();
        apply_fixups(&mut r, b"FILE", "t").unwrap();
        assert_eq!(&r[0x38..], &orig[0x38..]);
        let mut torn = rec.clone();
        torn[1022] ^= 1;
        assert!(apply_fixups(&mut torn, b"FILE", "t").is_err());
        assert!(apply_fixups(&mut rec.clone(), b"INDX", "t").is_err());
        assert!(apply_fixups(&mut rec[..1000].to_vec(), b"FILE", "t").is_err());
    }
}
