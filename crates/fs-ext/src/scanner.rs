//! The used-block walk: group by group, in increasing block order, with bounded memory.
//!
//! Opening makes up to three passes: (1) with descriptor checksums (where `BLOCK_UNINIT` is
//! honoured) all descriptors are read to find metadata of one group placed inside another
//! group whose bitmap is uninitialised; (2) the bitmaps are walked once to count the used
//! bytes (so [`FsInfo::used_bytes`] is exact before streaming) and compare with the
//! superblock; (3) the stream itself walks them again. Descriptors are read in batches of up
//! to 256 KiB, bitmaps of consecutive groups that lie next to each other (flex_bg) in batches
//! of up to 1 MiB.

use lifeboat_fs::bitmap::{next_run, set_range};
use lifeboat_fs::{
    read_exact, Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner,
    SharedVolume, UsedBlocks,
};

use crate::group_desc::{expected_checksum, GroupDesc};
use crate::layout::Layout;
use crate::superblock::{incompat, state, Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use crate::ExtError;

/// Largest single bitmap read.
const BITMAP_BATCH_BYTES: u64 = 1 << 20;
/// Largest single descriptor read (and so the size of a batch of parsed descriptors).
const DESC_BATCH_BYTES: u64 = 256 << 10;
/// Most metadata ranges of one group lying in another, uninitialised group that are kept.
const MAX_FOREIGN_RANGES: usize = 1 << 16;

/// Reads and decodes the superblock of `volume`.
pub fn read_superblock(volume: &dyn ReadAt) -> Result<Superblock, FsError> {
    if volume.len() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
        return Err(ExtError::TooShort {
            what: "volume",
            need: 2048,
            got: volume.len() as usize,
        }
        .into());
    }
    let mut b = [0u8; SUPERBLOCK_SIZE];
    read_exact(volume, &mut b, SUPERBLOCK_OFFSET)?;
    Ok(Superblock::parse(&b)?)
}

/// The ext2/3/4 scanner.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtScanner;

impl ExtScanner {
    /// Like [`Scanner::open`], returning the concrete stream type.
    pub fn open_ext<V: ReadAt>(&self, volume: V) -> Result<ExtUsedBlocks<V>, FsError> {
        ExtUsedBlocks::open(volume)
    }
}

impl Scanner for ExtScanner {
    fn name(&self) -> &'static str {
        "ext"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        read_superblock(volume)
            .ok()
            .is_some_and(|sb| Layout::new(&sb).is_ok())
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(ExtUsedBlocks::open(volume)?))
    }
}

/// One group's bitmap as handed out by the walker.
#[derive(Debug, Clone, Copy)]
struct GroupBits {
    first_block: u64,
    nbits: u64,
    /// Where the bits are: in the bitmap batch at this byte offset, or (`None`) computed in
    /// the walker's scratch block.
    batch_offset: Option<usize>,
}

/// Walks the groups in order, yielding each group's cluster bitmap.
struct Walker<V> {
    volume: V,
    sb: Superblock,
    layout: Layout,
    honour_uninit: bool,
    csum_seed: u32,
    next_group: u64,
    batch_start: u64,
    descs: Vec<GroupDesc>,
    raw: Vec<u8>,
    bm: Vec<u8>,
    bm_first: u64,
    bm_blocks: u64,
    scratch: Vec<u8>,
    /// Sorted, merged block ranges `[start, end)` of metadata lying in an uninitialised group
    /// other than its own.
    foreign: Vec<(u64, u64)>,
    foreign_pos: usize,
    /// One descriptor block for look-ups outside the current batch: (index, bytes).
    lookup: Option<(u64, Vec<u8>)>,
}

impl<V: ReadAt> Walker<V> {
    fn new(volume: V, sb: Superblock, layout: Layout) -> Self {
        Walker {
            volume,
            honour_uninit: sb.has_group_desc_csum(),
            csum_seed: sb.csum_seed(),
            sb,
            layout,
            next_group: 0,
            batch_start: 0,
            descs: Vec::new(),
            raw: Vec::new(),
            bm: Vec::new(),
            bm_first: 0,
            bm_blocks: 0,
            scratch: Vec::new(),
            foreign: Vec::new(),
            foreign_pos: 0,
            lookup: None,
        }
    }

    /// Starts again from group 0 and drops the batch buffers, so that a stream kept
    /// between its count and its streaming holds no bitmap or descriptor block.
    fn rewind(&mut self) {
        self.next_group = 0;
        self.foreign_pos = 0;
        self.batch_start = 0;
        self.descs = Vec::new();
        self.raw = Vec::new();
        self.bm = Vec::new();
        self.bm_first = 0;
        self.bm_blocks = 0;
        self.scratch = Vec::new();
        self.lookup = None;
    }

    fn memory_bytes(&self) -> usize {
        self.descs.capacity() * std::mem::size_of::<GroupDesc>()
            + self.raw.capacity()
            + self.bm.capacity()
            + self.scratch.capacity()
            + self.foreign.capacity() * 16
            + self.lookup.as_ref().map_or(0, |(_, v)| v.capacity())
    }

    /// Decodes and checks the descriptor of group `g` from its `desc_size` bytes.
    fn decode(&self, g: u64, raw: &[u8]) -> Result<GroupDesc, ExtError> {
        let d = GroupDesc::parse(raw, self.layout.is_64bit)?;
        if let Some(want) = expected_checksum(&self.sb, self.csum_seed, g as u32, raw) {
            if want != d.checksum {
                return Err(ExtError::Checksum(format!(
                    "group {g} descriptor has {:#06x}, expected {want:#06x}",
                    d.checksum
                )));
            }
        }
        self.check_locations(g, &d)?;
        Ok(d)
    }

    /// The group's bitmaps and inode table must lie inside the filesystem (inside the group
    /// itself without flex_bg) and not on the primary superblock.
    fn check_locations(&self, g: u64, d: &GroupDesc) -> Result<(), ExtError> {
        let l = &self.layout;
        let (lo, hi) = if l.flex_bg {
            (l.superblock_block() + 1, l.blocks_count)
        } else {
            let first = l.group_first_block(g);
            (
                first.max(l.superblock_block() + 1),
                first + l.group_blocks(g),
            )
        };
        let within =
            |start: u64, n: u64| start >= lo && start.checked_add(n).is_some_and(|e| e <= hi);
        for (what, start, n) in [
            ("block bitmap", d.block_bitmap, 1),
            ("inode bitmap", d.inode_bitmap, 1),
            ("inode table", d.inode_table, l.inode_table_blocks),
        ] {
            if !within(start, n) {
                return Err(ExtError::BadDescriptor {
                    group: g,
                    reason: format!(
                        "{what} at block {start} (+{n}) lies outside blocks {lo}..{hi}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Loads the batch of descriptors starting at group `start`.
    fn load_batch(&mut self, start: u64) -> Result<(), FsError> {
        let l = self.layout.clone();
        let bs = l.block_size;
        let per_batch = l.descs_per_block * (DESC_BATCH_BYTES / bs).max(1);
        let start = start - start % l.descs_per_block;
        let end = (start + per_batch).min(l.group_count);
        self.descs.clear();
        self.batch_start = start;
        let first_idx = start / l.descs_per_block;
        let last_idx = (end - 1) / l.descs_per_block;
        let mut raw = std::mem::take(&mut self.raw);
        let mut i = first_idx;
        while i <= last_idx {
            let loc = l.desc_block_location(i);
            let mut n = 1;
            while i + n <= last_idx && l.desc_block_location(i + n) == loc + n {
                n += 1;
            }
            if loc + n > l.blocks_count {
                return Err(ExtError::BadDescriptor {
                    group: i * l.descs_per_block,
                    reason: format!("descriptor block {loc} lies outside the filesystem"),
                }
                .into());
            }
            raw.resize((n * bs) as usize, 0);
            read_exact(&self.volume, &mut raw, loc * bs)?;
            for k in 0..n {
                let block = &raw[(k * bs) as usize..((k + 1) * bs) as usize];
                let g0 = (i + k) * l.descs_per_block;
                for j in 0..l.descs_per_block {
                    let g = g0 + j;
                    if g >= end {
                        break;
                    }
                    let off = (j * l.desc_size) as usize;
                    let d = self.decode(g, &block[off..off + l.desc_size as usize])?;
                    self.descs.push(d);
                }
            }
            i += n;
        }
        self.raw = raw;
        Ok(())
    }

    /// The descriptor of group `g`, from the current batch or a one-block look-up.
    fn desc_of(&mut self, g: u64) -> Result<GroupDesc, FsError> {
        if g >= self.batch_start && g < self.batch_start + self.descs.len() as u64 {
            return Ok(self.descs[(g - self.batch_start) as usize]);
        }
        let l = &self.layout;
        let idx = g / l.descs_per_block;
        let bs = l.block_size as usize;
        if self.lookup.as_ref().map(|(i, _)| *i) != Some(idx) {
            let loc = l.desc_block_location(idx);
            if loc >= l.blocks_count {
                return Err(ExtError::BadDescriptor {
                    group: g,
                    reason: format!("descriptor block {loc} lies outside the filesystem"),
                }
                .into());
            }
            let mut v = self.lookup.take().map(|(_, v)| v).unwrap_or_default();
            v.resize(bs, 0);
            read_exact(&self.volume, &mut v, loc * l.block_size)?;
            self.lookup = Some((idx, v));
        }
        let off = ((g % self.layout.descs_per_block) * self.layout.desc_size) as usize;
        let ds = self.layout.desc_size as usize;
        let raw = self
            .lookup
            .as_ref()
            .map(|(_, v)| v[off..off + ds].to_vec())
            .unwrap_or_default();
        Ok(self.decode(g, &raw)?)
    }

    /// Pass 1: finds the metadata of any group lying inside another group whose block bitmap
    /// is uninitialised, so that it is counted as in use there.
    fn find_foreign_metadata(&mut self) -> Result<(), FsError> {
        if !self.honour_uninit {
            return Ok(());
        }
        let l = self.layout.clone();
        let mut g = 0;
        while g < l.group_count {
            if g < self.batch_start || g >= self.batch_start + self.descs.len() as u64 {
                self.load_batch(g)?;
            }
            let d = self.descs[(g - self.batch_start) as usize];
            for (start, n) in [
                (d.block_bitmap, 1),
                (d.inode_bitmap, 1),
                (d.inode_table, l.inode_table_blocks),
            ] {
                let end = start + n;
                let mut b = start;
                while b < end {
                    let Some(h) = l.group_of_block(b) else { break };
                    let h_end = (l.group_first_block(h) + l.group_blocks(h)).min(end);
                    if h != g {
                        // Keep our batch: look the other group up without replacing it.
                        let other = self.desc_of(h)?;
                        if other.block_uninit() {
                            // Flex groups pack tables back to back: extend the last range.
                            if let Some(last) = self.foreign.last_mut().filter(|r| r.1 == b) {
                                last.1 = h_end;
                                b = h_end;
                                continue;
                            }
                            if self.foreign.len() >= MAX_FOREIGN_RANGES {
                                return Err(ExtError::TooComplex(format!(
                                    "more than {MAX_FOREIGN_RANGES} metadata ranges lie in \
                                     other groups with uninitialised bitmaps"
                                ))
                                .into());
                            }
                            self.foreign.push((b, h_end));
                        }
                    }
                    b = h_end;
                }
            }
            g += 1;
        }
        self.foreign.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.foreign.len());
        for &(s, e) in &self.foreign {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.foreign = merged;
        self.lookup = None;
        Ok(())
    }

    /// The bitmap block of a group returned by [`Walker::next_group`] (bits past `nbits`
    /// are meaningless).
    fn bits(&self, gb: &GroupBits) -> &[u8] {
        let bs = self.layout.block_size as usize;
        match gb.batch_offset {
            Some(off) => &self.bm[off..off + bs],
            None => &self.scratch[..bs],
        }
    }

    /// Moves to the next group and makes its bitmap available through [`Walker::bits`].
    fn next_group(&mut self) -> Result<Option<GroupBits>, FsError> {
        let l = self.layout.clone();
        let g = self.next_group;
        if g >= l.group_count {
            return Ok(None);
        }
        if g < self.batch_start || g >= self.batch_start + self.descs.len() as u64 {
            self.load_batch(g)?;
        }
        let idx = (g - self.batch_start) as usize;
        let d = self.descs[idx];
        let bs = l.block_size;
        let first_block = l.group_first_block(g);
        let nbits = l.group_clusters(g);
        let batch_offset = if self.honour_uninit && d.block_uninit() {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            out.resize(bs as usize, 0);
            self.compute_uninit(g, &d, &mut out);
            self.scratch = out;
            None
        } else {
            let b = d.block_bitmap;
            if !(b >= self.bm_first && b < self.bm_first + self.bm_blocks) {
                let max = (BITMAP_BATCH_BYTES / bs).max(1);
                let mut n = 1;
                while n < max
                    && idx + (n as usize) < self.descs.len()
                    && self.descs[idx + n as usize].block_bitmap == b + n
                {
                    n += 1;
                }
                self.bm.resize((n * bs) as usize, 0);
                // Invalidate first: a failed read must not leave stale bytes looking valid.
                self.bm_blocks = 0;
                read_exact(&self.volume, &mut self.bm, b * bs)?;
                self.bm_first = b;
                self.bm_blocks = n;
            }
            Some(((b - self.bm_first) * bs) as usize)
        };
        self.next_group = g + 1;
        Ok(Some(GroupBits {
            first_block,
            nbits,
            batch_offset,
        }))
    }

    /// The bitmap of an uninitialised group: its superblock copy, descriptor blocks and
    /// reserve, and every group's bitmaps and inode table lying inside it.
    fn compute_uninit(&mut self, g: u64, d: &GroupDesc, out: &mut [u8]) {
        let l = &self.layout;
        let r = l.cluster_ratio;
        let first = l.group_first_block(g);
        let end = first + l.group_blocks(g);
        let mark = |out: &mut [u8], s: u64, e: u64| {
            let (s, e) = (s.max(first), e.min(end));
            if s < e {
                set_range(out, (s - first) / r, (e - first).div_ceil(r));
            }
        };
        mark(out, first, first + l.base_meta_blocks(g));
        mark(out, d.block_bitmap, d.block_bitmap + 1);
        mark(out, d.inode_bitmap, d.inode_bitmap + 1);
        mark(out, d.inode_table, d.inode_table + l.inode_table_blocks);
        while self.foreign_pos < self.foreign.len() && self.foreign[self.foreign_pos].1 <= first {
            self.foreign_pos += 1;
        }
        for &(s, e) in &self.foreign[self.foreign_pos..] {
            if s >= end {
                break;
            }
            mark(out, s, e);
        }
    }
}

/// The raw used extents of an ext volume: the head, then each group's bitmap runs.
struct ExtSource<V> {
    layout: Layout,
    walker: Walker<V>,
    cur_group: Option<GroupBits>,
    cur_bit: u64,
    started: bool,
    used_clusters: u64,
    total_clusters: u64,
}

impl<V: ReadAt> ExtentSource for ExtSource<V> {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        let l = &self.layout;
        if !self.started {
            self.started = true;
            let head = (l.first_data_block * l.block_size).max(2048);
            return Ok(Some(Extent::new(0, head.min(l.total_bytes()))));
        }
        loop {
            if let Some(gb) = self.cur_group {
                if let Some((s, e)) = next_run(self.walker.bits(&gb), gb.nbits, self.cur_bit) {
                    self.cur_bit = e;
                    self.used_clusters += e - s;
                    let l = &self.layout;
                    let sb = gb.first_block + s * l.cluster_ratio;
                    let eb = (gb.first_block + e * l.cluster_ratio).min(l.blocks_count);
                    return Ok(Some(Extent::new(
                        sb * l.block_size,
                        (eb - sb) * l.block_size,
                    )));
                }
                self.cur_group = None;
            }
            match self.walker.next_group()? {
                Some(gb) => {
                    self.total_clusters += gb.nbits;
                    self.cur_group = Some(gb);
                    self.cur_bit = 0;
                }
                None => return Ok(None),
            }
        }
    }

    fn rewind(&mut self) {
        self.walker.rewind();
        self.cur_group = None;
        self.cur_bit = 0;
        self.started = false;
        self.used_clusters = 0;
        self.total_clusters = 0;
    }
}

/// The stream of used extents of an ext volume.
pub struct ExtUsedBlocks<V> {
    info: FsInfo,
    extents: MergedExtents<ExtSource<V>>,
}

impl<V: ReadAt> ExtUsedBlocks<V> {
    fn open(volume: V) -> Result<Self, FsError> {
        let sb = read_superblock(&volume)?;
        let volume_len = volume.len();
        let layout = Layout::new(&sb)?;
        if !sb.checksum_ok() {
            return Err(ExtError::Checksum(format!(
                "superblock has {:#010x}, expected {:#010x}",
                sb.checksum, sb.computed_checksum
            ))
            .into());
        }
        if layout.total_bytes() > volume_len {
            return Err(ExtError::TooLarge {
                fs_bytes: layout.total_bytes(),
                volume_bytes: volume_len,
            }
            .into());
        }
        let mut walker = Walker::new(volume, sb.clone(), layout.clone());
        walker.find_foreign_metadata()?;
        let mut extents = MergedExtents::new(ExtSource {
            layout,
            walker,
            cur_group: None,
            cur_bit: 0,
            started: false,
            used_clusters: 0,
            total_clusters: 0,
        });
        // Pass 2: count, so that `used_bytes` is exact before the caller streams.
        let used_bytes = extents.count_bytes()?;
        let src = extents.source();
        let l = &src.layout;
        let mut warnings = Vec::new();
        if sb.state & state::VALID == 0 {
            warnings.push("not cleanly unmounted".to_string());
        }
        if sb.state & state::ERROR != 0 {
            warnings.push("errors were detected on this filesystem (run e2fsck)".to_string());
        }
        if sb.has_incompat(incompat::RECOVER) {
            warnings.push(
                "needs recovery: journal not empty (blocks allocated by unreplayed \
                 transactions are not seen in the bitmaps)"
                    .to_string(),
            );
        }
        let bitmap_free_blocks = (src.total_clusters - src.used_clusters) * l.cluster_ratio;
        if bitmap_free_blocks != sb.free_blocks_count {
            warnings.push(format!(
                "superblock free block count {} disagrees with the bitmaps ({} free); \
                 the bitmaps are used",
                sb.free_blocks_count, bitmap_free_blocks
            ));
        }
        if l.total_bytes() < volume_len {
            warnings.push(format!(
                "the filesystem ends at byte {}, {} bytes before the end of the volume; \
                 those bytes are not saved",
                l.total_bytes(),
                volume_len - l.total_bytes()
            ));
        }
        let info = FsInfo {
            fs_type: sb.fs_type().to_string(),
            label: sb.label(),
            uuid: sb.uuid_string(),
            block_size: l.cluster_size() as u32,
            total_bytes: l.total_bytes(),
            used_bytes,
            files: None,
            warnings,
            ..FsInfo::default()
        };
        extents.rewind();
        Ok(ExtUsedBlocks { info, extents })
    }

    /// The validated geometry.
    pub fn layout(&self) -> &Layout {
        &self.extents.source().layout
    }

    /// Bytes of buffers this stream holds (bounded whatever the filesystem size).
    pub fn memory_bytes(&self) -> usize {
        self.extents.source().walker.memory_bytes()
    }
}

impl<V: ReadAt> UsedBlocks for ExtUsedBlocks<V> {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}
