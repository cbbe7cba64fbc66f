//! The used-block walk: AG by AG, the by-block free-space B+tree from its leftmost leaf
//! along the right siblings, one block in memory at a time; used ranges are the gaps
//! between the free records.
//!
//! Opening reads the whole walk once to count the used bytes (so [`FsInfo::used_bytes`] is
//! exact, and any inconsistency is refused before the caller streams), then the stream walks
//! again. Each AG's free records must be in order, inside the AG and outside its headers and
//! the internal log, and add up to the AGF's free count.

use lifeboat_fs::{
    read_exact, Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner,
    SharedVolume, UsedBlocks,
};

use crate::agf::Agf;
use crate::btree::{leaf_record, BtreeBlock, NULL_BLOCK};
use crate::superblock::{Superblock, MAGIC, SB_MIN_BYTES};
use crate::XfsError;

/// Most warnings kept about single AGs (more are summed up in one line).
const MAX_AG_NOTES: usize = 8;

/// Reads and decodes the primary superblock of `volume`, and checks its v5 CRC.
pub fn read_superblock(volume: &dyn ReadAt) -> Result<Superblock, FsError> {
    let len = volume.len();
    let mut b = vec![0u8; (SB_MIN_BYTES as u64).min(len) as usize];
    read_exact(volume, &mut b, 0)?;
    let sb = Superblock::parse(&b)?;
    let ss = u64::from(sb.sector_size);
    if len < ss {
        return Err(XfsError::TooShort {
            what: "volume",
            need: ss,
            got: len,
        }
        .into());
    }
    let mut sector = vec![0u8; ss as usize];
    read_exact(volume, &mut sector, 0)?;
    sb.crc_ok(&sector).map_err(|computed| XfsError::Checksum {
        what: "superblock".into(),
        stored: sb.crc,
        computed,
    })?;
    Ok(sb)
}

/// The XFS scanner.
#[derive(Debug, Clone, Copy, Default)]
pub struct XfsScanner;

impl XfsScanner {
    /// Like [`Scanner::open`], returning the concrete stream type.
    pub fn open_xfs<V: ReadAt>(&self, volume: V) -> Result<XfsUsedBlocks<V>, FsError> {
        XfsUsedBlocks::open(volume)
    }
}

impl Scanner for XfsScanner {
    fn name(&self) -> &'static str {
        "xfs"
    }

    /// The `XFSB` magic at byte 0 (anything else is left to [`Scanner::open`], which says
    /// why it refuses).
    fn probe(&self, volume: &dyn ReadAt) -> bool {
        let mut m = [0u8; 4];
        volume.read_exact_at(&mut m, 0).is_ok() && u32::from_be_bytes(m) == MAGIC
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(XfsUsedBlocks::open(volume)?))
    }
}

/// Where the walk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Read the AGF of the current AG and descend to its leftmost leaf.
    StartAg,
    /// In a leaf (held in the buffer): its block, next record, records, right sibling.
    Leaf {
        block: u32,
        idx: u16,
        numrecs: u16,
        right: u32,
    },
    /// The AG's records are done: check the count, report the AG's tail.
    EndAg,
    /// Past the last AG.
    Done,
}

/// The raw used extents of an XFS volume.
struct Walk<V> {
    volume: V,
    sb: Superblock,
    /// One B+tree block.
    buf: Vec<u8>,
    state: State,
    ag: u32,
    agf: Option<Agf>,
    /// First block of the AG not yet reported or listed free.
    pos: u32,
    /// Free blocks of the current AG's records so far.
    free: u64,
    /// Leaves of the current AG read so far.
    leaves: u64,
    longest: u32,
    /// Sum of `agf_freeblks` of the AGs done.
    free_total: u64,
    /// Warnings about single AGs, and how many more were not kept.
    notes: Vec<String>,
    more_notes: u64,
}

impl<V: ReadAt> Walk<V> {
    fn new(volume: V, sb: Superblock) -> Self {
        Walk {
            volume,
            buf: Vec::new(),
            sb,
            state: State::StartAg,
            ag: 0,
            agf: None,
            pos: 0,
            free: 0,
            leaves: 0,
            longest: 0,
            free_total: 0,
            notes: Vec::new(),
            more_notes: 0,
        }
    }

    fn bad(&self, block: u32, field: impl Into<String>, reason: impl Into<String>) -> FsError {
        XfsError::Btree {
            ag: self.ag,
            block,
            field: field.into(),
            reason: reason.into(),
        }
        .into()
    }

    fn agf(&self) -> Agf {
        self.agf.expect("the AGF is read when the AG starts")
    }

    /// Reads block `block` of the current AG into the buffer and checks its header.
    fn load(&mut self, block: u32) -> Result<BtreeBlock<'_>, FsError> {
        let agf = self.agf();
        let hdr = self.sb.header_blocks();
        if block < hdr || block >= agf.length {
            return Err(self.bad(
                block,
                "block number",
                format!("outside blocks {hdr}..{} of the AG", agf.length),
            ));
        }
        let bs = self.sb.block_size as usize;
        self.buf.resize(bs, 0);
        let off = self.sb.byte_of(self.ag, u64::from(block));
        read_exact(&self.volume, &mut self.buf, off)?;
        Ok(BtreeBlock::parse(&self.buf, &self.sb, self.ag, block)?)
    }

    /// Reads the current AG's AGF and descends from the root to the leftmost leaf.
    fn start_ag(&mut self) -> Result<State, FsError> {
        let ag = self.ag;
        let ss = u64::from(self.sb.sector_size);
        // A sector is at least 512 bytes: the whole AGF.
        let mut b = vec![0u8; ss as usize];
        read_exact(&self.volume, &mut b, self.sb.byte_of(ag, 0) + ss)?;
        let agf = Agf::parse(&b, &self.sb, ag)?;
        self.agf = Some(agf);
        self.pos = 0;
        self.free = 0;
        self.leaves = 1;
        self.longest = 0;
        let mut block = agf.bno_root;
        let mut level = agf.bno_level - 1;
        loop {
            let (lvl, numrecs, left, right, child) = {
                let b = self.load(block)?;
                let child = if b.level > 0 && b.numrecs > 0 {
                    Some(b.ptr(0)?)
                } else {
                    None
                };
                (b.level, b.numrecs, b.leftsib, b.rightsib, child)
            };
            if u32::from(lvl) != level {
                return Err(self.bad(block, "level", format!("{lvl}, expected {level}")));
            }
            if left != NULL_BLOCK {
                return Err(self.bad(
                    block,
                    "leftsib",
                    format!("{left}: the leftmost block of its level has a left sibling"),
                ));
            }
            if level == 0 {
                if numrecs == 0 && (agf.bno_level > 1 || right != NULL_BLOCK) {
                    return Err(self.bad(block, "numrecs", "an empty leaf in a larger tree"));
                }
                return Ok(State::Leaf {
                    block,
                    idx: 0,
                    numrecs,
                    right,
                });
            }
            match child {
                Some(c) => block = c,
                None => return Err(self.bad(block, "numrecs", "an empty node")),
            }
            level -= 1;
        }
    }

    /// Moves to the right sibling of leaf `block`.
    fn next_leaf(&mut self, block: u32, right: u32) -> Result<State, FsError> {
        if right == NULL_BLOCK {
            return Ok(State::EndAg);
        }
        self.leaves += 1;
        let agf = self.agf();
        if self.leaves > u64::from(agf.length) {
            return Err(self.bad(
                right,
                "rightsib",
                "the chain of leaves is longer than the AG has blocks",
            ));
        }
        let (lvl, numrecs, left, next) = {
            let b = self.load(right)?;
            (b.level, b.numrecs, b.leftsib, b.rightsib)
        };
        if lvl != 0 {
            return Err(self.bad(right, "level", format!("{lvl} in the leaf level")));
        }
        if left != block {
            return Err(self.bad(
                right,
                "leftsib",
                format!("{left}, but it is the right sibling of block {block}"),
            ));
        }
        if numrecs == 0 {
            return Err(self.bad(right, "numrecs", "an empty leaf in a larger tree"));
        }
        Ok(State::Leaf {
            block: right,
            idx: 0,
            numrecs,
            right: next,
        })
    }

    /// Checks record `idx` of leaf `block` and returns the used range before it.
    fn record(&mut self, block: u32, idx: u16) -> Result<Option<Extent>, FsError> {
        let (start, len) = leaf_record(&self.buf, self.sb.is_v5(), idx)?;
        let agf = self.agf();
        let field = || format!("record {idx} ({start}, {len})");
        let end = u64::from(start) + u64::from(len);
        if len == 0 {
            return Err(self.bad(block, field(), "an empty free extent"));
        }
        if start < self.sb.header_blocks() || end > u64::from(agf.length) {
            return Err(self.bad(
                block,
                field(),
                format!(
                    "outside blocks {}..{} of the AG",
                    self.sb.header_blocks(),
                    agf.length
                ),
            ));
        }
        if start < self.pos {
            return Err(self.bad(
                block,
                field(),
                format!(
                    "out of order or overlapping: the previous record ends at block {}",
                    self.pos
                ),
            ));
        }
        if let Some((la, lb, ln)) = self.sb.internal_log() {
            if la == self.ag && u64::from(start) < u64::from(lb) + u64::from(ln) && end > lb.into()
            {
                return Err(self.bad(
                    block,
                    field(),
                    format!("overlaps the internal log (blocks {lb}..{})", lb + ln),
                ));
            }
        }
        self.free += u64::from(len);
        self.longest = self.longest.max(len);
        let used = (start > self.pos).then(|| self.extent(self.pos, start));
        self.pos = end as u32;
        Ok(used)
    }

    /// Checks the AG's counts and returns its last used range.
    fn end_ag(&mut self) -> Result<Option<Extent>, FsError> {
        let agf = self.agf();
        if self.free != u64::from(agf.freeblks) {
            return Err(XfsError::FreeCount {
                ag: self.ag,
                agf: agf.freeblks,
                counted: self.free,
            }
            .into());
        }
        if self.longest != agf.longest {
            self.note(format!(
                "AG {}: the AGF's longest free extent is {} blocks, the free-space B+tree's \
                 is {}",
                self.ag, agf.longest, self.longest
            ));
        }
        self.free_total += self.free;
        let tail = (self.pos < agf.length).then(|| self.extent(self.pos, agf.length));
        self.ag += 1;
        self.agf = None;
        Ok(tail)
    }

    fn note(&mut self, text: String) {
        if self.notes.len() < MAX_AG_NOTES {
            self.notes.push(text);
        } else {
            self.more_notes += 1;
        }
    }

    /// Blocks `[start, end)` of the current AG, in bytes of the volume.
    fn extent(&self, start: u32, end: u32) -> Extent {
        let bs = u64::from(self.sb.block_size);
        Extent::new(
            self.sb.byte_of(self.ag, u64::from(start)),
            u64::from(end - start) * bs,
        )
    }
}

impl<V: ReadAt> ExtentSource for Walk<V> {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::StartAg => {
                    if self.ag >= self.sb.agcount {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    self.state = self.start_ag()?;
                }
                State::Leaf {
                    block,
                    idx,
                    numrecs,
                    right,
                } => {
                    if idx >= numrecs {
                        self.state = self.next_leaf(block, right)?;
                        continue;
                    }
                    self.state = State::Leaf {
                        block,
                        idx: idx + 1,
                        numrecs,
                        right,
                    };
                    if let Some(e) = self.record(block, idx)? {
                        return Ok(Some(e));
                    }
                }
                State::EndAg => {
                    let tail = self.end_ag()?;
                    self.state = State::StartAg;
                    if tail.is_some() {
                        return Ok(tail);
                    }
                }
            }
        }
    }

    fn rewind(&mut self) {
        self.state = State::StartAg;
        self.ag = 0;
        self.agf = None;
        self.pos = 0;
        self.free = 0;
        self.leaves = 0;
        self.longest = 0;
        self.free_total = 0;
        self.notes.clear();
        self.more_notes = 0;
    }
}

/// The stream of used extents of an XFS volume.
pub struct XfsUsedBlocks<V> {
    info: FsInfo,
    extents: MergedExtents<Walk<V>>,
}

impl<V: ReadAt> XfsUsedBlocks<V> {
    fn open(volume: V) -> Result<Self, FsError> {
        let sb = read_superblock(&volume)?;
        let volume_len = volume.len();
        let total = sb.total_bytes();
        if total > volume_len {
            return Err(XfsError::TooLarge {
                fs_bytes: total,
                volume_bytes: volume_len,
            }
            .into());
        }
        let mut extents = MergedExtents::new(Walk::new(volume, sb.clone()));
        // Pass 1: count, so that `used_bytes` is exact (and the walk checked) before the
        // caller streams.
        let used_bytes = extents.count_bytes()?;
        let walk = extents.source();
        let bs = u64::from(sb.block_size);
        if used_bytes != total - walk.free_total * bs {
            return Err(XfsError::Unsupported(format!(
                "the walk found {used_bytes} used bytes, but the AGFs count {} free blocks \
                 of {}",
                walk.free_total, sb.dblocks
            ))
            .into());
        }
        let mut warnings = Vec::new();
        if sb.features_log_incompat != 0 {
            warnings.push(format!(
                "the log holds records of log-incompatible features ({:#x}): the filesystem \
                 was probably not cleanly unmounted, and blocks allocated by transactions \
                 not yet replayed from the log are not seen in the free-space B+trees",
                sb.features_log_incompat
            ));
        }
        if sb.internal_log().is_none() {
            warnings.push(
                "the log is on an external device: it is not part of this volume and is not \
                 saved with it"
                    .to_string(),
            );
        }
        warnings.extend(walk.notes.iter().cloned());
        if walk.more_notes > 0 {
            warnings.push(format!("and {} more such AGs", walk.more_notes));
        }
        if total < volume_len {
            warnings.push(format!(
                "the filesystem ends at byte {total}, {} bytes before the end of the volume; \
                 those bytes are not saved",
                volume_len - total
            ));
        }
        let info = FsInfo {
            fs_type: "xfs".to_string(),
            label: sb.label(),
            uuid: Some(sb.uuid_string()),
            block_size: sb.block_size,
            total_bytes: total,
            used_bytes,
            files: sb.icount.checked_sub(sb.ifree),
            warnings,
            ..FsInfo::default()
        };
        extents.rewind();
        Ok(XfsUsedBlocks { info, extents })
    }

    /// The checked superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.extents.source().sb
    }

    /// Bytes of buffers this stream holds (one B+tree block, whatever the filesystem size).
    pub fn memory_bytes(&self) -> usize {
        let w = self.extents.source();
        w.buf.capacity() + w.notes.iter().map(|n| n.capacity()).sum::<usize>()
    }
}

impl<V: ReadAt> UsedBlocks for XfsUsedBlocks<V> {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}
