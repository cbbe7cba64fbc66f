//! The FAT12/16/32 used-cluster walk.
//!
//! Opening reads the boot sector (and on FAT32 the FSInfo sector), then walks the active FAT
//! once to count the used clusters (so [`FsInfo::used_bytes`] is exact before streaming); the
//! stream walks it again. Each walk reads the FAT in batches of [`FAT_BATCH_BYTES`](crate::fat_table::FAT_BATCH_BYTES).

use lifeboat_fs::{
    read_exact, Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner,
    SharedVolume, UsedBlocks,
};

use crate::boot_sector::{BootSector, FatType, BOOT_SECTOR_SIZE};
use crate::fat_table::{entry, FatWalk};
use crate::fsinfo::FsInfoSector;
use crate::{serial_string, FatError, FS_NAME};

/// Most bytes of the root directory searched for the volume label entry.
const LABEL_SEARCH_BYTES: u64 = 64 << 10;

/// Reads and validates the boot sector of `volume`.
pub fn read_boot_sector(volume: &dyn ReadAt) -> Result<BootSector, FsError> {
    if volume.len() < BOOT_SECTOR_SIZE as u64 {
        return Err(FatError::TooShort {
            what: "volume",
            need: BOOT_SECTOR_SIZE,
            got: volume.len() as usize,
        }
        .into_fs(FS_NAME));
    }
    let mut b = [0u8; BOOT_SECTOR_SIZE];
    read_exact(volume, &mut b, 0)?;
    BootSector::parse(&b).map_err(|e| e.into_fs(FS_NAME))
}

/// The volume label from the root directory's label entry (attribute 0x08), which is what
/// operating systems show; `None` when there is none in the first [`LABEL_SEARCH_BYTES`].
/// Public for tools and tests.
pub fn root_label(dir: &[u8]) -> Option<String> {
    for e in dir.chunks_exact(32) {
        match e[0] {
            0 => return None,
            0xE5 => continue,
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3F == 0x0F || attr & 0x18 != 0x08 {
            continue;
        }
        let s: String = e[..11]
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() || c == b' ' {
                    c as char
                } else {
                    '?'
                }
            })
            .collect();
        let s = s.trim_end().to_string();
        return (!s.is_empty()).then_some(s);
    }
    None
}

/// The FAT12/16/32 scanner.
#[derive(Debug, Clone, Copy, Default)]
pub struct FatScanner;

impl FatScanner {
    /// Like [`Scanner::open`], returning the concrete stream type.
    pub fn open_fat<V: ReadAt>(&self, volume: V) -> Result<FatUsedBlocks<V>, FsError> {
        FatUsedBlocks::open(volume)
    }
}

impl Scanner for FatScanner {
    fn name(&self) -> &'static str {
        "fat"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        read_boot_sector(volume).is_ok()
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(FatUsedBlocks::open(volume)?))
    }
}

/// The raw used extents of a FAT volume: the region before the data area, then the runs of
/// used clusters of the active FAT.
struct FatSource<V> {
    bs: BootSector,
    walk: FatWalk<V>,
    started: bool,
    used_clusters: u64,
}

impl<V: ReadAt> ExtentSource for FatSource<V> {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        if !self.started {
            self.started = true;
            // Reserved region, every FAT copy and the FAT12/16 root directory.
            return Ok(Some(Extent::new(0, self.bs.data_offset())));
        }
        Ok(self.walk.next_run()?.map(|(a, b)| {
            self.used_clusters += b - a;
            Extent::new(self.bs.cluster_offset(a), (b - a) * self.bs.cluster_size())
        }))
    }

    fn rewind(&mut self) {
        self.walk.rewind();
        self.started = false;
        self.used_clusters = 0;
    }
}

/// The stream of used extents of a FAT volume.
pub struct FatUsedBlocks<V> {
    info: FsInfo,
    extents: MergedExtents<FatSource<V>>,
}

impl<V: ReadAt> FatUsedBlocks<V> {
    fn open(volume: V) -> Result<Self, FsError> {
        let bs = read_boot_sector(&volume)?;
        let volume_len = volume.len();
        let corrupt = |e: FatError| e.into_fs(FS_NAME);
        if bs.total_bytes() > volume_len {
            return Err(corrupt(FatError::TooLarge {
                fs_bytes: bs.total_bytes(),
                volume_bytes: volume_len,
            }));
        }
        let mut warnings = Vec::new();
        if bs.state & 1 != 0 {
            warnings.push(
                "the dirty flag of the boot sector is set (not cleanly unmounted)".to_string(),
            );
        }
        // Entry 1 of the FAT: on FAT16/32 its two top bits say "clean" and "no I/O error".
        let mut head = [0u8; 8];
        read_exact(&volume, &mut head, bs.fat_offset(bs.active_fat))?;
        let e1 = entry(&head, 1, bs.fat_type).unwrap_or(0);
        let (clean, no_error) = match bs.fat_type {
            FatType::Fat12 => (None, None),
            FatType::Fat16 => (Some(0x8000), Some(0x4000)),
            FatType::Fat32 => (Some(0x0800_0000), Some(0x0400_0000)),
        };
        if clean.is_some_and(|m| e1 & m == 0) {
            warnings.push("the FAT's clean-shutdown bit is clear (volume dirty)".to_string());
        }
        if no_error.is_some_and(|m| e1 & m == 0) {
            warnings.push("the FAT's hard-error bit says a disk I/O error occurred".to_string());
        }
        let fsinfo = match bs.fsinfo_sector {
            Some(s) => {
                let mut b = vec![0u8; bs.bytes_per_sector as usize];
                read_exact(&volume, &mut b, u64::from(s) * bs.sector_size())?;
                match FsInfoSector::parse(&b) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        warnings.push(format!("FSInfo sector {s}: {e}; ignored"));
                        None
                    }
                }
            }
            None => None,
        };
        let label = Self::read_label(&volume, &bs)?.or_else(|| bs.label.clone());
        let walk = FatWalk::new(volume, &bs, bs.active_fat);
        let mut extents = MergedExtents::new(FatSource {
            bs,
            walk,
            started: false,
            used_clusters: 0,
        });
        let used_bytes = extents.count_bytes()?;
        let src = extents.source();
        let free = src.walk.free;
        if src.walk.bad > 0 {
            warnings.push(format!(
                "{} clusters are marked bad; they are not saved",
                src.walk.bad
            ));
        }
        if let Some(fc) = fsinfo.and_then(|f| f.free_count) {
            if u64::from(fc) != free {
                warnings.push(format!(
                    "FSInfo free cluster count {fc} disagrees with the FAT ({free} free); \
                     the FAT is used"
                ));
            }
        }
        let bs = &src.bs;
        if bs.total_bytes() < volume_len {
            warnings.push(format!(
                "the filesystem ends at byte {}, {} bytes before the end of the volume; \
                 those bytes are not saved",
                bs.total_bytes(),
                volume_len - bs.total_bytes()
            ));
        }
        let info = FsInfo {
            fs_type: bs.fat_type.name().to_string(),
            label,
            uuid: bs.volume_id.map(serial_string),
            block_size: u32::try_from(bs.cluster_size()).map_err(|_| {
                corrupt(FatError::Invalid {
                    field: "cluster size",
                    value: bs.cluster_size(),
                    reason: "does not fit in 32 bits",
                })
            })?,
            total_bytes: bs.total_bytes(),
            used_bytes,
            files: None,
            warnings,
            ..FsInfo::default()
        };
        extents.rewind();
        Ok(FatUsedBlocks { info, extents })
    }

    /// The label entry of the root directory (fixed region on FAT12/16, first cluster on
    /// FAT32), searched in its first [`LABEL_SEARCH_BYTES`].
    fn read_label(volume: &dyn ReadAt, bs: &BootSector) -> Result<Option<String>, FsError> {
        let (off, len) = match bs.fat_type {
            FatType::Fat32 => (
                bs.cluster_offset(u64::from(bs.root_cluster)),
                bs.cluster_size(),
            ),
            _ => (bs.root_dir_offset(), bs.root_dir_sectors * bs.sector_size()),
        };
        let mut b = vec![0u8; len.min(LABEL_SEARCH_BYTES) as usize];
        read_exact(volume, &mut b, off)?;
        Ok(root_label(&b))
    }

    /// The validated boot sector.
    pub fn boot_sector(&self) -> &BootSector {
        &self.extents.source().bs
    }

    /// Used data clusters seen so far by the stream (all of them once it has ended).
    pub fn used_clusters(&self) -> u64 {
        self.extents.source().used_clusters
    }

    /// Bytes of buffers this stream holds (at most [`FAT_BATCH_BYTES`](crate::fat_table::FAT_BATCH_BYTES) and a little).
    pub fn memory_bytes(&self) -> usize {
        self.extents.source().walk.memory_bytes()
    }
}

impl<V: ReadAt> UsedBlocks for FatUsedBlocks<V> {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}
