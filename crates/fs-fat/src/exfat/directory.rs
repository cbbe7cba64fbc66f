//! exFAT directory entries and the root directory walk that finds the allocation
//! bitmap(s) and the volume label.
//!
//! The root directory is a cluster chain through the FAT (it has no stream extension entry,
//! so the NoFatChain flag never applies to it). Its entries are 32 bytes; type 0x00 ends the
//! directory. Critical primary entries this walk does not know make the volume unsupported.

use crate::FatError;
use lifeboat_fs::bytes::{u16s, u32_at, u64_at};

/// Size of one directory entry.
pub const ENTRY_SIZE: usize = 32;
/// Largest directory the specification allows (256 MiB).
pub const MAX_DIRECTORY_BYTES: u64 = 256 << 20;

/// One decoded directory entry, as far as the root walk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEntry {
    /// Type 0x00: no entries follow.
    EndOfDirectory,
    /// An entry whose in-use bit is clear (deleted or never used).
    Unused,
    /// Type 0x81: an allocation bitmap.
    Bitmap {
        /// Bit 0: 0 for the first bitmap, 1 for the second (TexFAT).
        flags: u8,
        /// First cluster of the bitmap.
        first_cluster: u32,
        /// Length in bytes.
        data_length: u64,
    },
    /// Type 0x82: the up-case table.
    UpcaseTable {
        /// First cluster of the table.
        first_cluster: u32,
        /// Length in bytes.
        data_length: u64,
    },
    /// Type 0x83: the volume label.
    VolumeLabel(String),
    /// A known entry type this walk does not need (file, stream, name, GUID, padding,
    /// vendor entries).
    Other(u8),
}

impl DirEntry {
    /// Decodes one 32-byte entry. Unknown critical primary entries (type importance and
    /// category both 0) are an error, as the specification asks.
    pub fn parse(e: &[u8]) -> Result<DirEntry, FatError> {
        if e.len() < ENTRY_SIZE {
            return Err(FatError::TooShort {
                what: "exFAT directory entry",
                need: ENTRY_SIZE,
                got: e.len(),
            });
        }
        let t = e[0];
        if t == 0 {
            return Ok(DirEntry::EndOfDirectory);
        }
        if t & 0x80 == 0 {
            return Ok(DirEntry::Unused);
        }
        Ok(match t {
            0x81 => DirEntry::Bitmap {
                flags: e[1],
                first_cluster: u32_at(e, 20)?,
                data_length: u64_at(e, 24)?,
            },
            0x82 => DirEntry::UpcaseTable {
                first_cluster: u32_at(e, 20)?,
                data_length: u64_at(e, 24)?,
            },
            0x83 => {
                let n = usize::from(e[1]);
                if n > 11 {
                    return Err(FatError::Corrupt(format!(
                        "volume label entry claims {n} characters (at most 11)"
                    )));
                }
                let units: Vec<u16> = u16s(&e[2..2 + 2 * n]).collect();
                DirEntry::VolumeLabel(String::from_utf16_lossy(&units))
            }
            // Critical primary entries other than the above (0x85 is a file).
            0x85 => DirEntry::Other(t),
            t if t & 0x60 == 0 => {
                return Err(FatError::Corrupt(format!(
                    "unknown critical primary directory entry type {t:#04x}"
                )))
            }
            t => DirEntry::Other(t),
        })
    }
}

/// What the root directory walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootInfo {
    /// The allocation bitmap entries (`flags`, first cluster, length), at most two.
    pub bitmaps: Vec<(u8, u32, u64)>,
    /// The volume label, if any.
    pub label: Option<String>,
    /// True once the end-of-directory entry was seen.
    pub ended: bool,
}

impl RootInfo {
    /// Feeds the next bytes of the root directory (whole entries). Returns `false` once the
    /// end-of-directory entry has been seen (nothing more needs to be read).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<bool, FatError> {
        for e in bytes.chunks_exact(ENTRY_SIZE) {
            match DirEntry::parse(e)? {
                DirEntry::EndOfDirectory => {
                    self.ended = true;
                    return Ok(false);
                }
                DirEntry::Bitmap {
                    flags,
                    first_cluster,
                    data_length,
                } => {
                    if self.bitmaps.len() >= 2 {
                        return Err(FatError::Corrupt(
                            "more than two allocation bitmap entries in the root directory"
                                .to_string(),
                        ));
                    }
                    self.bitmaps.push((flags, first_cluster, data_length));
                }
                DirEntry::VolumeLabel(l) => {
                    if !l.is_empty() {
                        self.label = Some(l);
                    }
                }
                DirEntry::UpcaseTable { .. } | DirEntry::Unused | DirEntry::Other(_) => {}
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap_entry(flags: u8, first: u32, len: u64) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[0] = 0x81;
        e[1] = flags;
        e[20..24].copy_from_slice(&first.to_le_bytes());
        e[24..32].copy_from_slice(&len.to_le_bytes());
        e
    }

    #[test]
    fn finds_bitmaps_and_label_until_the_end_entry() {
        let mut dir = Vec::new();
        let mut label = [0u8; 32];
        label[0] = 0x83;
        label[1] = 3;
        label[2..8].copy_from_slice(&[b'L', 0, b'B', 0, b'X', 0]);
        dir.extend_from_slice(&label);
        dir.extend_from_slice(&bitmap_entry(0, 2, 1984));
        dir.extend_from_slice(&bitmap_entry(1, 3, 1984));
        let mut deleted = bitmap_entry(0, 9, 9);
        deleted[0] = 0x01;
        dir.extend_from_slice(&deleted);
        dir.extend_from_slice(&[0u8; 32]);
        dir.extend_from_slice(&bitmap_entry(0, 7, 7));
        let mut r = RootInfo::default();
        assert!(!r.feed(&dir).unwrap());
        assert_eq!(r.label.as_deref(), Some("LBX"));
        assert_eq!(r.bitmaps, vec![(0, 2, 1984), (1, 3, 1984)]);
    }

    #[test]
    fn unknown_critical_primary_entries_are_refused() {
        let mut e = [0u8; 32];
        e[0] = 0x84;
        assert!(DirEntry::parse(&e).is_err());
        e[0] = 0xA0; // volume GUID: benign
        assert_eq!(DirEntry::parse(&e).unwrap(), DirEntry::Other(0xA0));
        e[0] = 0xC0; // stream extension: critical secondary
        assert_eq!(DirEntry::parse(&e).unwrap(), DirEntry::Other(0xC0));
    }
}
