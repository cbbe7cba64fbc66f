//! FAT entries: decoding 12-, 16- and 32-bit entries from bytes, and a streaming walk over
//! the active FAT that reads it in large sequential batches and yields the runs of used
//! data clusters.
//!
//! A data cluster is used when its entry is non-zero and not the bad-cluster mark. FAT32
//! entries keep their meaning in the low 28 bits; the high 4 bits are reserved and ignored.

use lifeboat_fs::bytes::{u16_at, u32_at};
use lifeboat_fs::{read_exact, FsError, ReadAt};

use crate::boot_sector::{BootSector, FatType};

/// Bytes read from the FAT at once: a multiple of 12, so that no 12-, 16- or 32-bit entry
/// straddles two batches (two FAT12 entries take 3 bytes).
pub const FAT_BATCH_BYTES: usize = 3 << 20;

/// Entry `index` of a FAT held in `fat` (which starts with entry 0), or `None` when the
/// entry lies past the end of the slice. FAT32 entries are masked to their low 28 bits.
pub fn entry(fat: &[u8], index: u64, t: FatType) -> Option<u32> {
    match t {
        FatType::Fat12 => {
            let off = usize::try_from(index.checked_mul(3)? / 2).ok()?;
            let v = u16_at(fat, off).ok()?;
            Some(u32::from(if index.is_multiple_of(2) {
                v & 0x0FFF
            } else {
                v >> 4
            }))
        }
        FatType::Fat16 => {
            let off = usize::try_from(index.checked_mul(2)?).ok()?;
            u16_at(fat, off).ok().map(u32::from)
        }
        FatType::Fat32 => {
            let off = usize::try_from(index.checked_mul(4)?).ok()?;
            Some(u32_at(fat, off).ok()? & 0x0FFF_FFFF)
        }
    }
}

/// Writes entry `index` of a FAT12 held in `fat`, leaving the neighbouring entry's nibbles
/// alone. Returns false (and writes nothing) when the entry lies past the slice or `value`
/// does not fit in 12 bits.
pub fn set_fat12_entry(fat: &mut [u8], index: u64, value: u16) -> bool {
    if value > 0x0FFF {
        return false;
    }
    let Some(off) = index
        .checked_mul(3)
        .and_then(|x| usize::try_from(x / 2).ok())
    else {
        return false;
    };
    let Ok(old) = u16_at(fat, off) else {
        return false;
    };
    let new = if index.is_multiple_of(2) {
        (old & 0xF000) | value
    } else {
        (old & 0x000F) | (value << 4)
    };
    fat[off..off + 2].copy_from_slice(&new.to_le_bytes());
    true
}

/// True when an entry value marks its cluster as used (non-zero, not bad).
pub fn is_used(value: u32, t: FatType) -> bool {
    value != 0 && value != t.bad_mark()
}

/// Walks the data-cluster entries (clusters 2 .. `cluster_count + 2`) of one FAT in order.
pub struct FatWalk<V> {
    volume: V,
    fat_type: FatType,
    fat_offset: u64,
    /// Entries 0 .. end_entry are meaningful.
    end_entry: u64,
    buf: Vec<u8>,
    /// Entry index of the first entry in `buf`.
    buf_first: u64,
    /// Entries in `buf`.
    buf_entries: u64,
    next: u64,
    /// Entries seen so far with value zero (free).
    pub free: u64,
    /// Entries seen so far with the bad-cluster mark.
    pub bad: u64,
}

impl<V: ReadAt> FatWalk<V> {
    /// A walk over FAT number `fat` (normally the active one) of the volume `bs` describes.
    pub fn new(volume: V, bs: &BootSector, fat: u32) -> Self {
        FatWalk {
            volume,
            fat_type: bs.fat_type,
            fat_offset: bs.fat_offset(fat),
            end_entry: bs.cluster_count + 2,
            buf: Vec::new(),
            buf_first: 0,
            buf_entries: 0,
            next: 2,
            free: 0,
            bad: 0,
        }
    }

    /// Starts again from cluster 2 and drops the buffer, so that a walk kept between two
    /// passes holds no part of the FAT.
    pub fn rewind(&mut self) {
        self.buf = Vec::new();
        self.buf_first = 0;
        self.buf_entries = 0;
        self.next = 2;
        self.free = 0;
        self.bad = 0;
    }

    /// Bytes of buffer held.
    pub fn memory_bytes(&self) -> usize {
        self.buf.capacity()
    }

    fn entries_per_batch(&self) -> u64 {
        FAT_BATCH_BYTES as u64 * 8 / self.fat_type.entry_bits()
    }

    /// Makes entry `i` available in the buffer.
    fn load(&mut self, i: u64) -> Result<(), FsError> {
        let per = self.entries_per_batch();
        let first = i - i % per;
        let n = per.min(self.end_entry - first);
        let bytes = (n * self.fat_type.entry_bits()).div_ceil(8);
        // FAT12 decoding reads two bytes per entry: keep one spare byte readable.
        let alloc = bytes as usize + 1;
        self.buf.clear();
        self.buf.resize(alloc, 0);
        let start = first * self.fat_type.entry_bits() / 8;
        // Invalidate first: a failed read must not leave stale bytes looking valid.
        self.buf_entries = 0;
        read_exact(
            &self.volume,
            &mut self.buf[..bytes as usize],
            self.fat_offset + start,
        )?;
        self.buf_first = first;
        self.buf_entries = n;
        Ok(())
    }

    fn value(&mut self, i: u64) -> Result<u32, FsError> {
        if i < self.buf_first || i >= self.buf_first + self.buf_entries {
            self.load(i)?;
        }
        // `buf_first` is a multiple of the batch entry count, itself even, so FAT12 pairs
        // decode from the buffer start.
        Ok(entry(&self.buf, i - self.buf_first, self.fat_type).unwrap_or(0))
    }

    /// The next run `[first, end)` of used clusters, or `None` after the last cluster.
    pub fn next_run(&mut self) -> Result<Option<(u64, u64)>, FsError> {
        let t = self.fat_type;
        while self.next < self.end_entry {
            let v = self.value(self.next)?;
            if is_used(v, t) {
                break;
            }
            if v == 0 {
                self.free += 1;
            } else {
                self.bad += 1;
            }
            self.next += 1;
        }
        if self.next >= self.end_entry {
            return Ok(None);
        }
        let start = self.next;
        self.next += 1;
        while self.next < self.end_entry {
            let v = self.value(self.next)?;
            if !is_used(v, t) {
                break;
            }
            self.next += 1;
        }
        Ok(Some((start, self.next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_packed_fat12_entries() {
        // Entries 0xFF8, 0xFFF, 0x003, 0x004 packed as mkfs writes them.
        let fat = [0xF8, 0xFF, 0xFF, 0x03, 0x40, 0x00];
        let got: Vec<u32> = (0..4)
            .map(|i| entry(&fat, i, FatType::Fat12).unwrap())
            .collect();
        assert_eq!(got, [0xFF8, 0xFFF, 0x003, 0x004]);
        assert_eq!(entry(&fat, 4, FatType::Fat12), None);
    }

    #[test]
    fn fat32_uses_the_low_28_bits() {
        let fat = [0, 0, 0, 0, 0xF7, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0x10];
        assert_eq!(entry(&fat, 1, FatType::Fat32), Some(0x0FFF_FFF7));
        assert!(!is_used(0x0FFF_FFF7, FatType::Fat32));
        // High bits alone: the cluster is free.
        assert_eq!(entry(&fat, 2, FatType::Fat32), Some(0));
        assert_eq!(entry(&fat, 3, FatType::Fat32), None);
    }
}
