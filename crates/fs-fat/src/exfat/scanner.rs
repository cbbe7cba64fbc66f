//! The exFAT scanner: boot region checks, the root directory walk that finds the allocation
//! bitmap, and the stream of used extents.

use lifeboat_fs::{
    bitmap, read_exact, Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner,
    SharedVolume, UsedBlocks,
};

use super::boot::{verify_boot_region, ExfatBoot, BOOT_REGION_SECTORS, BOOT_SECTOR_SIZE};
use super::chain::FatReader;
use super::directory::{RootInfo, MAX_DIRECTORY_BYTES};
use crate::{serial_string, FatError, EXFAT_NAME};

/// Largest single read of the allocation bitmap or the root directory.
pub const BITMAP_BATCH_BYTES: u64 = 1 << 20;
/// Most fragments of the root directory or the bitmap that are followed.
const MAX_RUNS: usize = 4096;

fn err(e: FatError) -> FsError {
    e.into_fs(EXFAT_NAME)
}

/// Reads and validates the exFAT boot sector of `volume` (not the checksum).
pub fn read_boot(volume: &dyn ReadAt) -> Result<ExfatBoot, FsError> {
    if volume.len() < BOOT_SECTOR_SIZE as u64 {
        return Err(err(FatError::TooShort {
            what: "volume",
            need: BOOT_SECTOR_SIZE,
            got: volume.len() as usize,
        }));
    }
    let mut b = [0u8; BOOT_SECTOR_SIZE];
    read_exact(volume, &mut b, 0)?;
    ExfatBoot::parse(&b).map_err(err)
}

/// The exFAT scanner.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExfatScanner;

impl ExfatScanner {
    /// Like [`Scanner::open`], returning the concrete stream type.
    pub fn open_exfat<V: ReadAt>(&self, volume: V) -> Result<ExfatUsedBlocks<V>, FsError> {
        ExfatUsedBlocks::open(volume)
    }
}

impl Scanner for ExfatScanner {
    fn name(&self) -> &'static str {
        "exfat"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        read_boot(volume).is_ok()
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(ExfatUsedBlocks::open(volume)?))
    }
}

/// The raw used extents of an exFAT volume: the boot regions, the FATs, then the runs of the
/// allocation bitmap.
struct ExfatSource<V> {
    volume: V,
    boot: ExfatBoot,
    /// Fragments `(first cluster, clusters)` of the active bitmap, cut to its needed length.
    bitmap_runs: Vec<(u32, u32)>,
    /// Bytes of bitmap that hold the cluster count's bits.
    bitmap_bytes: u64,
    buf: Vec<u8>,
    /// Bitmap byte at which `buf` starts, and bytes loaded.
    buf_first: u64,
    buf_len: u64,
    /// Next bitmap bit to look at.
    next_bit: u64,
    /// Extents of the head (boot regions, FATs) yielded so far.
    heads: u8,
    used_clusters: u64,
}

/// The stream of used extents of an exFAT volume.
pub struct ExfatUsedBlocks<V> {
    info: FsInfo,
    extents: MergedExtents<ExfatSource<V>>,
}

impl<V: ReadAt> ExfatUsedBlocks<V> {
    fn open(volume: V) -> Result<Self, FsError> {
        let first = read_boot(&volume)?;
        let volume_len = volume.len();
        let ss = first.sector_size();
        let region_bytes = (BOOT_REGION_SECTORS * ss) as usize;
        let total = first.total_bytes();
        if total > volume_len || 2 * region_bytes as u64 > volume_len {
            return Err(err(FatError::TooLarge {
                fs_bytes: total,
                volume_bytes: volume_len,
            }));
        }
        let mut region = vec![0u8; region_bytes];
        read_exact(&volume, &mut region, 0)?;
        let boot = verify_boot_region(&region, ss as usize).map_err(err)?;
        let mut warnings = Vec::new();
        read_exact(&volume, &mut region, region_bytes as u64)?;
        match verify_boot_region(&region, ss as usize) {
            Ok(backup) => {
                let mut a = backup.clone();
                a.volume_flags = boot.volume_flags;
                a.percent_in_use = boot.percent_in_use;
                if a != boot {
                    warnings.push(
                        "the backup boot region describes another geometry than the main one"
                            .to_string(),
                    );
                }
            }
            Err(e) => warnings.push(format!("backup boot region: {e}")),
        }
        if boot.is_dirty() {
            warnings.push("the volume is marked dirty (not cleanly unmounted)".to_string());
        }
        if boot.media_failure() {
            warnings.push("the volume records a media failure".to_string());
        }
        let mut fat = FatReader::new(&volume, &boot);
        let cs = boot.cluster_size();
        let root = Self::walk_root(&volume, &boot, &mut fat)?;
        let want_flag = boot.active_fat();
        let expected = usize::from(boot.num_fats);
        if root.bitmaps.len() != expected {
            return Err(err(FatError::Corrupt(format!(
                "the root directory holds {} allocation bitmap entries; {expected} expected",
                root.bitmaps.len()
            ))));
        }
        let &(_, bm_first, bm_len) = root
            .bitmaps
            .iter()
            .find(|b| b.0 & 1 == want_flag)
            .ok_or_else(|| {
                err(FatError::Corrupt(format!(
                    "no allocation bitmap entry for the active FAT {want_flag}"
                )))
            })?;
        let bitmap_bytes = u64::from(boot.cluster_count).div_ceil(8);
        if bm_len < bitmap_bytes {
            return Err(err(FatError::Corrupt(format!(
                "allocation bitmap of {bm_len} bytes is too small for {} clusters",
                boot.cluster_count
            ))));
        }
        let need_clusters = bitmap_bytes.div_ceil(cs);
        if !boot.is_cluster(bm_first) {
            return Err(err(FatError::Corrupt(format!(
                "allocation bitmap starts at cluster {bm_first}, not in the heap"
            ))));
        }
        let mut runs = if fat.entry(bm_first)? == 0 {
            // No chain recorded: the bitmap is contiguous.
            let end = u64::from(bm_first) + need_clusters;
            if end > u64::from(boot.cluster_count) + 2 {
                return Err(err(FatError::Corrupt(
                    "allocation bitmap passes the end of the heap".to_string(),
                )));
            }
            vec![(bm_first, need_clusters as u32)]
        } else {
            fat.chain_runs(
                "allocation bitmap",
                bm_first,
                u64::from(boot.cluster_count),
                MAX_RUNS,
            )?
        };
        // Keep only the clusters that hold the needed bytes.
        let mut left = need_clusters;
        runs.retain_mut(|r| {
            if left == 0 {
                return false;
            }
            let take = u64::from(r.1).min(left);
            r.1 = take as u32;
            left -= take;
            true
        });
        if left > 0 {
            return Err(err(FatError::Corrupt(format!(
                "the allocation bitmap's chain is {left} clusters short"
            ))));
        }
        let mut extents = MergedExtents::new(ExfatSource {
            volume,
            boot,
            bitmap_runs: runs,
            bitmap_bytes,
            buf: Vec::new(),
            buf_first: 0,
            buf_len: 0,
            next_bit: 0,
            heads: 0,
            used_clusters: 0,
        });
        let used_bytes = extents.count_bytes()?;
        let b = &extents.source().boot;
        if b.total_bytes() < volume_len {
            warnings.push(format!(
                "the filesystem ends at byte {}, {} bytes before the end of the volume; \
                 those bytes are not saved",
                b.total_bytes(),
                volume_len - b.total_bytes()
            ));
        }
        let info = FsInfo {
            fs_type: "exfat".to_string(),
            label: root.label,
            uuid: Some(serial_string(b.serial)),
            block_size: b.cluster_size() as u32,
            total_bytes: b.total_bytes(),
            used_bytes,
            files: None,
            warnings,
            ..FsInfo::default()
        };
        extents.rewind();
        Ok(ExfatUsedBlocks { info, extents })
    }

    /// Reads the root directory along its chain until the end-of-directory entry.
    fn walk_root(
        volume: &dyn ReadAt,
        boot: &ExfatBoot,
        fat: &mut FatReader<'_>,
    ) -> Result<RootInfo, FsError> {
        let cs = boot.cluster_size();
        let max_clusters = (MAX_DIRECTORY_BYTES / cs).max(1);
        let runs = fat.chain_runs("root directory", boot.root_cluster, max_clusters, MAX_RUNS)?;
        let mut root = RootInfo::default();
        let mut buf = Vec::new();
        for (c, n) in runs {
            let start = boot.cluster_offset(c);
            let len = u64::from(n) * cs;
            let mut off = 0;
            while off < len {
                let k = BITMAP_BATCH_BYTES.min(len - off);
                buf.resize(k as usize, 0);
                read_exact(volume, &mut buf, start + off)?;
                if !root.feed(&buf).map_err(err)? {
                    return Ok(root);
                }
                off += k;
            }
        }
        Ok(root)
    }

    /// The validated boot sector.
    pub fn boot(&self) -> &ExfatBoot {
        &self.extents.source().boot
    }

    /// Fragments `(first cluster, clusters)` of the active allocation bitmap.
    pub fn bitmap_runs(&self) -> &[(u32, u32)] {
        &self.extents.source().bitmap_runs
    }

    /// Used heap clusters seen so far by the stream (all of them once it has ended).
    pub fn used_clusters(&self) -> u64 {
        self.extents.source().used_clusters
    }

    /// Bytes of buffers this stream holds.
    pub fn memory_bytes(&self) -> usize {
        let src = self.extents.source();
        src.buf.capacity() + src.bitmap_runs.capacity() * 8
    }
}

impl<V: ReadAt> ExfatSource<V> {
    /// Loads the bitmap bytes starting at byte `at` (within one fragment, at most one batch).
    fn load(&mut self, at: u64) -> Result<(), FsError> {
        let cs = self.boot.cluster_size();
        let mut base = 0u64;
        for &(c, n) in &self.bitmap_runs {
            let run_bytes = u64::from(n) * cs;
            if at < base + run_bytes {
                let within = at - base;
                let k = BITMAP_BATCH_BYTES
                    .min(run_bytes - within)
                    .min(self.bitmap_bytes - at);
                self.buf.resize(k as usize, 0);
                self.buf_len = 0;
                read_exact(
                    &self.volume,
                    &mut self.buf,
                    self.boot.cluster_offset(c) + within,
                )?;
                self.buf_first = at;
                self.buf_len = k;
                return Ok(());
            }
            base += run_bytes;
        }
        Err(err(FatError::Corrupt(format!(
            "allocation bitmap byte {at} lies past its clusters"
        ))))
    }
}

impl<V: ReadAt> ExtentSource for ExfatSource<V> {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        let b = &self.boot;
        match self.heads {
            0 => {
                self.heads = 1;
                return Ok(Some(Extent::new(0, b.boot_regions_bytes())));
            }
            1 => {
                self.heads = 2;
                let (fs, fe) = b.fats_range();
                return Ok(Some(Extent::new(fs, fe - fs)));
            }
            _ => {}
        }
        let nbits = u64::from(b.cluster_count);
        let cs = b.cluster_size();
        let heap = b.cluster_offset(2);
        while self.next_bit < nbits {
            let byte = self.next_bit / 8;
            if byte < self.buf_first || byte >= self.buf_first + self.buf_len {
                self.load(byte)?;
            }
            let base_bit = self.buf_first * 8;
            let chunk_bits = (self.buf_len * 8).min(nbits - base_bit);
            let local = self.next_bit - base_bit;
            match bitmap::next_run(&self.buf[..self.buf_len as usize], chunk_bits, local) {
                Some((s, e)) => {
                    self.next_bit = base_bit + e;
                    self.used_clusters += e - s;
                    return Ok(Some(Extent::new(heap + (base_bit + s) * cs, (e - s) * cs)));
                }
                None => self.next_bit = base_bit + chunk_bits,
            }
        }
        Ok(None)
    }

    /// Starts again from the boot regions and drops the bitmap buffer, so that a stream
    /// kept between two passes holds no part of the bitmap.
    fn rewind(&mut self) {
        self.buf = Vec::new();
        self.buf_len = 0;
        self.buf_first = 0;
        self.next_bit = 0;
        self.heads = 0;
        self.used_clusters = 0;
    }
}

impl<V: ReadAt> UsedBlocks for ExfatUsedBlocks<V> {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}
