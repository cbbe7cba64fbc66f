//! Following cluster chains through the exFAT FAT, reading the FAT through a small window.

use lifeboat_fs::{read_exact, FsError, ReadAt};

use super::boot::ExfatBoot;
use crate::{FatError, EXFAT_NAME};
use lifeboat_fs::bytes::u32_at;

/// Bytes of the FAT window kept while following a chain.
const WINDOW_BYTES: u64 = 64 << 10;
/// End-of-chain mark.
pub const END_OF_CHAIN: u32 = 0xFFFF_FFFF;
/// Bad-cluster mark.
pub const BAD_CLUSTER: u32 = 0xFFFF_FFF7;

/// Reads entries of one FAT through a cached window.
pub struct FatReader<'a> {
    volume: &'a dyn ReadAt,
    fat_offset: u64,
    cluster_count: u32,
    window: Vec<u8>,
    window_first: u64,
}

impl<'a> FatReader<'a> {
    /// A reader of the active FAT of the volume `boot` describes.
    pub fn new(volume: &'a dyn ReadAt, boot: &ExfatBoot) -> Self {
        FatReader {
            volume,
            fat_offset: boot.fat_byte_offset(boot.active_fat()),
            cluster_count: boot.cluster_count,
            window: Vec::new(),
            window_first: 0,
        }
    }

    /// The FAT entry of cluster `c` (2 .. cluster_count + 2).
    pub fn entry(&mut self, c: u32) -> Result<u32, FsError> {
        let byte = u64::from(c) * 4;
        let have = self.window.len() as u64;
        if byte < self.window_first || byte + 4 > self.window_first + have {
            let first = byte - byte % WINDOW_BYTES;
            let fat_bytes = (u64::from(self.cluster_count) + 2) * 4;
            let n = WINDOW_BYTES.min(fat_bytes - first);
            self.window.clear();
            self.window.resize(n as usize, 0);
            if let Err(e) = read_exact(self.volume, &mut self.window, self.fat_offset + first) {
                self.window.clear();
                return Err(e);
            }
            self.window_first = first;
        }
        u32_at(&self.window, (byte - self.window_first) as usize)
            .map_err(|e| FatError::from(e).into_fs(EXFAT_NAME))
    }

    /// The runs `(first cluster, clusters)` of the chain starting at `first`, covering at
    /// least `need` clusters (the chain may end there or go on to its end mark, which is
    /// followed up to `max` clusters). At most `max_runs` runs are kept.
    pub fn chain_runs(
        &mut self,
        what: &str,
        first: u32,
        max: u64,
        max_runs: usize,
    ) -> Result<Vec<(u32, u32)>, FsError> {
        let corrupt = |s: String| FatError::Corrupt(s).into_fs(crate::EXFAT_NAME);
        let count = u64::from(self.cluster_count);
        let valid = |c: u32| c >= 2 && u64::from(c) < count + 2;
        if !valid(first) {
            return Err(corrupt(format!(
                "{what} starts at cluster {first}, not in the heap"
            )));
        }
        let mut runs: Vec<(u32, u32)> = Vec::new();
        let mut c = first;
        let mut n = 0u64;
        loop {
            n += 1;
            match runs.last_mut() {
                Some(r) if r.0 + r.1 == c => r.1 += 1,
                _ => {
                    if runs.len() >= max_runs {
                        return Err(FatError::TooComplex(format!(
                            "{what} has more than {max_runs} fragments"
                        ))
                        .into_fs(crate::EXFAT_NAME));
                    }
                    runs.push((c, 1));
                }
            }
            let next = self.entry(c)?;
            if next == END_OF_CHAIN {
                return Ok(runs);
            }
            if !valid(next) {
                return Err(corrupt(format!(
                    "{what}: FAT entry of cluster {c} is {next:#010x}, neither a heap cluster \
                     nor the end of the chain"
                )));
            }
            if n >= max {
                return Err(corrupt(format!(
                    "{what}: chain longer than {max} clusters (a loop?)"
                )));
            }
            c = next;
        }
    }
}
