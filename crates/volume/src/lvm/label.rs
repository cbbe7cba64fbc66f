//! The LVM2 label: a 512-byte sector in one of the first four sectors of a physical volume.
//!
//! Layout (little-endian): `LABELONE` (8 bytes), the sector's own number (u64), a CRC (u32)
//! over bytes 20..512 of the sector, the offset of the PV header in the sector (u32), and the
//! label type `LVM2 001` (8 bytes).

use super::LvmError;
use lifeboat_fs::{bytes, read_exact, FsError, ReadAt};

/// Bytes of a sector as LVM2 counts them.
pub const SECTOR: usize = 512;
/// The label lies in one of this many sectors from the start.
pub const LABEL_SCAN_SECTORS: u64 = 4;
/// The label's identifier.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// The label type of an LVM2 text-format PV.
pub const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// The initial value of LVM2's CRC.
pub const CRC_INITIAL: u32 = 0xf597_a6cf;

/// LVM2's CRC-32: the reflected IEEE polynomial (as zlib) started from `initial`, with no
/// final inversion (so it is zlib's CRC of the same bytes with both ends inverted).
pub fn lvm_crc(initial: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!initial);
    h.update(data);
    !h.finalize()
}

/// A label found on a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The sector holding it (0..4).
    pub sector: u64,
    /// Where the PV header starts, in bytes from the start of that sector.
    pub header_offset: u32,
    /// The whole sector (the PV header lies in it).
    pub bytes: Vec<u8>,
}

impl Label {
    /// Parses `sector` (512 bytes) read from sector number `number`: `Ok(None)` when it holds
    /// no label, an error when it holds a damaged one.
    pub fn parse(sector: &[u8], number: u64) -> Result<Option<Label>, LvmError> {
        if sector.len() < SECTOR || &sector[..8] != LABEL_ID {
            return Ok(None);
        }
        let field = |o| bytes::u64_at(sector, o).map_err(LvmError::from);
        let stored_sector = field(8)?;
        if stored_sector != number {
            return Err(LvmError::Label(format!(
                "LABELONE in sector {number} says it is in sector {stored_sector}"
            )));
        }
        let stored = bytes::u32_at(sector, 16)?;
        let computed = lvm_crc(CRC_INITIAL, &sector[20..SECTOR]);
        if stored != computed {
            return Err(LvmError::Checksum {
                what: "label",
                offset: number * SECTOR as u64,
                stored,
                computed,
            });
        }
        let header_offset = bytes::u32_at(sector, 20)?;
        if &sector[24..32] != LABEL_TYPE {
            return Err(LvmError::Label(format!(
                "label type {:?} is not \"LVM2 001\"",
                String::from_utf8_lossy(&sector[24..32])
            )));
        }
        if !(32..SECTOR as u32).contains(&header_offset) {
            return Err(LvmError::Label(format!(
                "PV header offset {header_offset} lies outside the label sector"
            )));
        }
        Ok(Some(Label {
            sector: number,
            header_offset,
            bytes: sector[..SECTOR].to_vec(),
        }))
    }

    /// The PV header's bytes (to the end of the sector).
    pub fn header(&self) -> &[u8] {
        &self.bytes[self.header_offset as usize..]
    }
}

/// True when one of the first four sectors starts with `LABELONE` and has type `LVM2 001`
/// (the cheap probe; [`find`] also checks the CRC).
pub fn looks_like_label(volume: &dyn ReadAt) -> bool {
    let mut buf = [0u8; SECTOR * LABEL_SCAN_SECTORS as usize];
    if volume.len() < buf.len() as u64 || volume.read_exact_at(&mut buf, 0).is_err() {
        return false;
    }
    buf.chunks(SECTOR)
        .any(|s| &s[..8] == LABEL_ID && &s[24..32] == LABEL_TYPE)
}

/// The label of `volume`: the first of its first four sectors that holds one.
pub fn find(volume: &dyn ReadAt) -> Result<Label, FsError> {
    let n = LABEL_SCAN_SECTORS.min(volume.len() / SECTOR as u64);
    let mut sector = [0u8; SECTOR];
    for number in 0..n {
        read_exact(volume, &mut sector, number * SECTOR as u64)?;
        match Label::parse(&sector, number) {
            Ok(Some(l)) => return Ok(l),
            Ok(None) => {}
            Err(e) => return Err(FsError::corrupt("lvm2", e)),
        }
    }
    Err(FsError::not_recognised("lvm2", LvmError::NoLabel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_a_real_pvcreate_label() {
        // Sector 1 of a PV made by pvcreate (LVM 2.03.16): stored CRC 0xa8c0b858.
        let mut s = vec![0u8; SECTOR];
        s[..8].copy_from_slice(LABEL_ID);
        s[8] = 1;
        s[16..20].copy_from_slice(&0xa8c0_b858u32.to_le_bytes());
        s[20] = 0x20;
        s[24..32].copy_from_slice(LABEL_TYPE);
        s[32..64].copy_from_slice(b"haWJ1tLDYFEaDZkXbj6CjLz1MA917FDN");
        s[64..72].copy_from_slice(&(64u64 << 20).to_le_bytes());
        s[72..80].copy_from_slice(&(1u64 << 20).to_le_bytes());
        s[104..112].copy_from_slice(&4096u64.to_le_bytes());
        s[112..120].copy_from_slice(&0xff000u64.to_le_bytes());
        s[136] = 2;
        s[140] = 1;
        let l = Label::parse(&s, 1).unwrap().unwrap();
        assert_eq!(l.header_offset, 32);
        s[200] ^= 1;
        assert!(matches!(
            Label::parse(&s, 1),
            Err(LvmError::Checksum { .. })
        ));
    }

    #[test]
    fn crc_of_nothing_is_the_initial_value() {
        assert_eq!(lvm_crc(CRC_INITIAL, &[]), CRC_INITIAL);
    }
}
