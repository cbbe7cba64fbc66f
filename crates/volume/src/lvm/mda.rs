//! A metadata area: a 512-byte header, then a circular buffer holding the VG metadata text.
//!
//! Header layout (little-endian): CRC (u32, LVM2's CRC over bytes 4..512), magic
//! `" LVM2 x[5A%r0N*>"` (16 bytes), version 1 (u32), the area's start on the PV (u64, bytes)
//! and size (u64, bytes, header included), then raw locations of 24 bytes each, ended by one
//! whose offset is 0: offset of the text from the area start (u64), its size (u64, the final
//! NUL included), the CRC of the text (u32) and flags (u32; 1: this area is ignored). The first
//! raw location is the committed metadata. The text may wrap: what does not fit before the end
//! of the area continues right after the header.

use super::label::{lvm_crc, CRC_INITIAL};
use super::LvmError;
use lifeboat_fs::{bytes, read_exact, FsError, ReadAt};

/// Bytes of the header.
pub const MDA_HEADER_SIZE: u64 = 512;
/// The header's magic.
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `flags` bit of a raw location whose metadata is to be ignored (`pvchange
/// --metadataignore`).
pub const RAW_LOCN_IGNORED: u32 = 1;
/// Metadata text larger than this is refused (LVM's own limit is far below).
pub const MAX_TEXT: u64 = 64 << 20;

/// Where the text lies in the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLocn {
    /// Offset from the area start.
    pub offset: u64,
    /// Bytes of text.
    pub size: u64,
    /// LVM2 CRC of the text.
    pub checksum: u32,
    /// Flags.
    pub flags: u32,
}

/// A decoded metadata area header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    /// Start of the area on the PV (bytes).
    pub start: u64,
    /// Size of the area (bytes, header included).
    pub size: u64,
    /// The committed text's location (`None`: the area holds no metadata yet).
    pub committed: Option<RawLocn>,
}

impl MdaHeader {
    /// Decodes and checks the header read at byte `at` of the PV.
    pub fn parse(buf: &[u8], at: u64) -> Result<MdaHeader, LvmError> {
        if buf.len() < MDA_HEADER_SIZE as usize {
            return Err(LvmError::Mda {
                offset: at,
                reason: "header is shorter than 512 bytes".into(),
            });
        }
        if &buf[4..20] != MDA_MAGIC {
            return Err(LvmError::Mda {
                offset: at,
                reason: "no metadata area magic".into(),
            });
        }
        let stored = bytes::u32_at(buf, 0)?;
        let computed = lvm_crc(CRC_INITIAL, &buf[4..MDA_HEADER_SIZE as usize]);
        if stored != computed {
            return Err(LvmError::Checksum {
                what: "metadata area header",
                offset: at,
                stored,
                computed,
            });
        }
        let version = bytes::u32_at(buf, 20)?;
        if version != 1 {
            return Err(LvmError::Mda {
                offset: at,
                reason: format!("version {version} (only 1 is known)"),
            });
        }
        let start = bytes::u64_at(buf, 24)?;
        let size = bytes::u64_at(buf, 32)?;
        if start != at {
            return Err(LvmError::Mda {
                offset: at,
                reason: format!("header says it starts at byte {start}"),
            });
        }
        if size <= MDA_HEADER_SIZE {
            return Err(LvmError::Mda {
                offset: at,
                reason: format!("size {size} leaves no room for metadata"),
            });
        }
        let offset = bytes::u64_at(buf, 40)?;
        let committed = if offset == 0 {
            None
        } else {
            Some(RawLocn {
                offset,
                size: bytes::u64_at(buf, 48)?,
                checksum: bytes::u32_at(buf, 56)?,
                flags: bytes::u32_at(buf, 60)?,
            })
        };
        Ok(MdaHeader {
            start,
            size,
            committed,
        })
    }

    /// The two pieces `(offset from the area start, len)` that hold the committed text: one,
    /// or two when it wraps around the end of the circular buffer.
    pub fn pieces(&self, r: &RawLocn) -> Result<[(u64, u64); 2], LvmError> {
        let bad = |reason: String| LvmError::Mda {
            offset: self.start,
            reason,
        };
        if r.offset < MDA_HEADER_SIZE || r.offset >= self.size {
            return Err(bad(format!(
                "text offset {} lies outside the buffer of {} bytes",
                r.offset, self.size
            )));
        }
        let room = self.size - MDA_HEADER_SIZE;
        if r.size == 0 || r.size > room || r.size > MAX_TEXT {
            return Err(bad(format!("text size {} (buffer {room})", r.size)));
        }
        let first = r.size.min(self.size - r.offset);
        let wrap = r.size - first;
        Ok([(r.offset, first), (MDA_HEADER_SIZE, wrap)])
    }
}

/// The committed metadata text of the area at `at` (its header read from the PV), with the
/// trailing NULs removed: `Ok(None)` when the area holds none or is ignored.
pub fn read_text(volume: &dyn ReadAt, at: u64) -> Result<Option<Vec<u8>>, FsError> {
    let corrupt = |e: LvmError| FsError::corrupt("lvm2", e);
    let mut head = vec![0u8; MDA_HEADER_SIZE as usize];
    read_exact(volume, &mut head, at)?;
    let h = MdaHeader::parse(&head, at).map_err(corrupt)?;
    let Some(r) = h.committed else {
        return Ok(None);
    };
    if r.flags & RAW_LOCN_IGNORED != 0 {
        return Ok(None);
    }
    let pieces = h.pieces(&r).map_err(corrupt)?;
    if at.checked_add(h.size).is_none_or(|end| end > volume.len()) {
        return Err(corrupt(LvmError::Mda {
            offset: at,
            reason: format!("area of {} bytes runs past the end of the PV", h.size),
        }));
    }
    let mut text = vec![0u8; r.size as usize];
    let (a, b) = text.split_at_mut(pieces[0].1 as usize);
    read_exact(volume, a, at + pieces[0].0)?;
    read_exact(volume, b, at + pieces[1].0)?;
    let computed = lvm_crc(CRC_INITIAL, &text);
    if computed != r.checksum {
        return Err(corrupt(LvmError::Checksum {
            what: "metadata text",
            offset: at + r.offset,
            stored: r.checksum,
            computed,
        }));
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    Ok(Some(text))
}

/// Builds a metadata area of `size` bytes at `at` holding `text` (its NUL added) from
/// `offset` on, wrapping when needed: for tests and fuzz seeds.
pub fn build(at: u64, size: u64, offset: u64, text: &[u8]) -> Vec<u8> {
    let mut area = vec![0u8; size as usize];
    let mut t = text.to_vec();
    t.push(0);
    for (i, b) in t.iter().enumerate() {
        let mut o = offset + i as u64;
        if o >= size {
            o = o - size + MDA_HEADER_SIZE;
        }
        area[o as usize] = *b;
    }
    area[4..20].copy_from_slice(MDA_MAGIC);
    area[20..24].copy_from_slice(&1u32.to_le_bytes());
    area[24..32].copy_from_slice(&at.to_le_bytes());
    area[32..40].copy_from_slice(&size.to_le_bytes());
    area[40..48].copy_from_slice(&offset.to_le_bytes());
    area[48..56].copy_from_slice(&(t.len() as u64).to_le_bytes());
    area[56..60].copy_from_slice(&lvm_crc(CRC_INITIAL, &t).to_le_bytes());
    let crc = lvm_crc(CRC_INITIAL, &area[4..MDA_HEADER_SIZE as usize]);
    area[..4].copy_from_slice(&crc.to_le_bytes());
    area
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_that_wraps_is_read_whole() {
        let text = b"vg { seqno = 7 }\n".repeat(10);
        // 2048-byte area: 1536 bytes of buffer; start 100 bytes before its end.
        let mut disk = vec![0u8; 4096];
        let area = build(4096, 2048, 2048 - 100, &text);
        disk.extend_from_slice(&area);
        let got = read_text(&disk, 4096).unwrap().unwrap();
        assert_eq!(got, text);
        // The wrapped part lies right after the header.
        assert_eq!(&area[512..520], &text[100..108]);
    }

    #[test]
    fn a_damaged_text_or_header_is_refused() {
        let text = b"vg { seqno = 1 }\n";
        let mut disk = build(0, 4096, 512, text);
        disk[520] ^= 1;
        assert!(read_text(&disk, 0).is_err());
        let mut disk = build(0, 4096, 512, text);
        disk[100] ^= 1;
        assert!(read_text(&disk, 0).is_err());
    }

    proptest! {
        #[test]
        fn any_offset_round_trips(len in 1usize..3000, off in 0u64..4000) {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let size = 4096u64;
            let offset = MDA_HEADER_SIZE + off % (size - MDA_HEADER_SIZE);
            let disk = build(0, size, offset, &text);
            prop_assert_eq!(read_text(&disk, 0).unwrap().unwrap(), text);
        }

        #[test]
        fn arbitrary_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let _ = read_text(&bytes, 0);
            let _ = MdaHeader::parse(&bytes, 0);
        }
    }
}
