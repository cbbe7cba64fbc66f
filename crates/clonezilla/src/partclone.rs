//! partclone image files, format v1 ("0001", partclone 0.2.x) and v2 ("0002", partclone 0.3.x
//! and later): header, block bitmap and the used blocks with their checksums. The layouts, with
//! byte offsets, are in docs/CLONEZILLA.md.
//!
//! [`PartcloneReader`] reads one image front to back from any [`Read`] (images are sequential:
//! they usually come out of a decompressor), verifying every checksum on the way.

use std::io::{self, Read};

use crate::crc;
use crate::error::{Error, Result};

/// The signature at byte 0 of every partclone image.
pub const SIGNATURE: &[u8; 15] = b"partclone-image";
/// Length of a v1 header (36-byte head, 28-byte filesystem info, 4096 unused bytes).
pub const V1_HEADER_LEN: usize = 4160;
/// Length of a v2 header, including its CRC-32.
pub const V2_HEADER_LEN: usize = 110;
/// The marker after a v1 bitmap.
pub const V1_BITMAP_MAGIC: &[u8; 8] = b"BiTmAgIc";
/// The largest block size accepted (partclone's own limit).
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;

/// Checksum mode numbers of a v2 header.
const CSM_NONE: u16 = 0x00;
const CSM_CRC32: u16 = 0x20;
const CSM_XXH64: u16 = 0x30;
const CSM_XXH128: u16 = 0x31;
/// Bitmap mode numbers of a v2 header.
const BM_NONE: u8 = 0x00;
const BM_BIT: u8 = 0x01;

/// The image format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// "0001": partclone before 0.3.0.
    V1,
    /// "0002": partclone 0.3.0 and later.
    V2,
}

/// How the data blocks are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// No checksums between the blocks.
    None,
    /// partclone's CRC-32 (the uninverted register) every `blocks_per_checksum` blocks.
    Crc32,
    /// Format v1: the broken CRC-32 over each block's first byte, after every block, never
    /// reseeded.
    Crc32V1,
    /// XXH64 (seed 0) every `blocks_per_checksum` blocks, stored in 8 bytes (partclone ≥ 0.3.24
    /// built with xxhash, `-a2`).
    Xxh64,
    /// XXH3-128 every `blocks_per_checksum` blocks, stored in 16 bytes, low half first
    /// (partclone ≥ 0.3.24 built with xxhash, `-a3`).
    Xxh128,
}

impl Checksum {
    /// The checksum mode number of a v2 header.
    pub fn mode(self) -> u16 {
        match self {
            Checksum::None | Checksum::Crc32V1 => CSM_NONE,
            Checksum::Crc32 => CSM_CRC32,
            Checksum::Xxh64 => CSM_XXH64,
            Checksum::Xxh128 => CSM_XXH128,
        }
    }

    /// Bytes of one stored checksum.
    pub fn size(self) -> u16 {
        match self {
            Checksum::None => 0,
            Checksum::Crc32 | Checksum::Crc32V1 => 4,
            Checksum::Xxh64 => 8,
            Checksum::Xxh128 => 16,
        }
    }

    /// A short name for reports: `none`, `crc32`, `crc32 (v1)`, `xxh64`, `xxh128`.
    pub fn name(self) -> &'static str {
        match self {
            Checksum::None => "none",
            Checksum::Crc32 => "crc32",
            Checksum::Crc32V1 => "crc32 (v1)",
            Checksum::Xxh64 => "xxh64",
            Checksum::Xxh128 => "xxh128",
        }
    }
}

/// How the block bitmap is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitmapMode {
    /// One bit per block, least significant bit first, then a CRC-32 (v2).
    Bit,
    /// One byte per block (1 = used), then "BiTmAgIc" (v1).
    Byte,
    /// No bitmap: every block is stored (v2).
    None,
}

/// The header of a partclone image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub format: Format,
    /// Filesystem type as partclone names it ("EXTFS", "NTFS", "FAT32", …).
    pub fs: String,
    /// Version of partclone that wrote the image (v2 only).
    pub partclone_version: Option<String>,
    /// Size of the source partition in bytes.
    pub device_size: u64,
    /// Blocks in the filesystem (bits in the bitmap).
    pub total_blocks: u64,
    /// Used blocks according to the filesystem's superblock.
    pub used_blocks: u64,
    /// Used blocks according to the bitmap, as recorded in a v2 header.
    pub used_blocks_bitmap: Option<u64>,
    /// Bytes per block.
    pub block_size: u32,
    /// 32 or 64: the platform that wrote a v2 image.
    pub cpu_bits: Option<u16>,
    /// Checksum algorithm of the data blocks.
    pub checksum: Checksum,
    /// Bytes per stored checksum.
    pub checksum_size: u16,
    /// Blocks covered by one checksum (0 without checksums).
    pub blocks_per_checksum: u32,
    /// Whether the checksum restarts from the seed after each stored checksum.
    pub reseed: bool,
    /// How the bitmap is stored.
    pub bitmap_mode: BitmapMode,
}

impl Header {
    /// Bytes the filesystem covers: `total_blocks × block_size`.
    pub fn fs_bytes(&self) -> u64 {
        // Checked when parsing: never overflows and never exceeds device_size.
        self.total_blocks * u64::from(self.block_size)
    }

    /// Length of the header on disk.
    pub fn len(&self) -> usize {
        match self.format {
            Format::V1 => V1_HEADER_LEN,
            Format::V2 => V2_HEADER_LEN,
        }
    }

    /// Always false: a header has a length.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes the bitmap (with its CRC or marker) takes on disk.
    pub fn bitmap_len(&self) -> u64 {
        match self.bitmap_mode {
            BitmapMode::Bit => self.total_blocks.div_ceil(8) + 4,
            BitmapMode::Byte => self.total_blocks + V1_BITMAP_MAGIC.len() as u64,
            BitmapMode::None => 0,
        }
    }

    /// Reads and validates a header from the start of `r`.
    pub fn read<R: Read>(r: &mut R) -> Result<Header> {
        let mut c = Counted::new(r);
        Header::read_counted(&mut c)
    }

    fn read_counted<R: Read>(c: &mut Counted<R>) -> Result<Header> {
        let mut b = [0u8; V2_HEADER_LEN];
        c.fill(&mut b, "header")?;
        if &b[..15] != SIGNATURE {
            return Err(Error::NotPartclone);
        }
        match &b[30..34] {
            b"0001" => {
                // The rest of the v1 header is an unused 4096-byte buffer.
                c.skip((V1_HEADER_LEN - V2_HEADER_LEN) as u64, "header")?;
                parse_v1(&b)
            }
            b"0002" => parse_v2(&b),
            v => Err(Error::UnsupportedVersion(
                String::from_utf8_lossy(v).into_owned(),
            )),
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A NUL-terminated (or full-width) text field.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}

fn bad(offset: u64, reason: impl Into<String>) -> Error {
    Error::BadHeader {
        offset,
        reason: reason.into(),
    }
}

/// The sizes every format must keep consistent.
fn check_sizes(h: &Header, at: [u64; 4]) -> Result<()> {
    let [bs_at, dev_at, total_at, used_at] = at;
    if h.block_size == 0 || h.block_size > MAX_BLOCK_SIZE {
        return Err(bad(
            bs_at,
            format!("block size {} is not in 1..={MAX_BLOCK_SIZE}", h.block_size),
        ));
    }
    if h.used_blocks > h.total_blocks {
        return Err(bad(
            used_at,
            format!(
                "{} used blocks of {} in total",
                h.used_blocks, h.total_blocks
            ),
        ));
    }
    match h.total_blocks.checked_mul(u64::from(h.block_size)) {
        Some(n) if n <= h.device_size => Ok(()),
        Some(n) => Err(bad(
            dev_at,
            format!(
                "the filesystem ({n} bytes) is larger than the device ({} bytes)",
                h.device_size
            ),
        )),
        None => Err(bad(total_at, "total blocks × block size overflows")),
    }
}

fn parse_v1(b: &[u8; V2_HEADER_LEN]) -> Result<Header> {
    let block_size = le32(b, 36);
    let h = Header {
        format: Format::V1,
        fs: text(&b[15..30]),
        partclone_version: None,
        device_size: le64(b, 40),
        total_blocks: le64(b, 48),
        used_blocks: le64(b, 56),
        used_blocks_bitmap: None,
        // A C `int`: negative values are out of range like too large ones.
        block_size: if (block_size as i32) < 0 {
            0
        } else {
            block_size
        },
        cpu_bits: None,
        checksum: Checksum::Crc32V1,
        checksum_size: 4,
        blocks_per_checksum: 1,
        reseed: false,
        bitmap_mode: BitmapMode::Byte,
    };
    check_sizes(&h, [36, 40, 48, 56])?;
    Ok(h)
}

fn parse_v2(b: &[u8; V2_HEADER_LEN]) -> Result<Header> {
    let stored = le32(b, 106);
    let computed = crc::update(crc::SEED, &b[..106]);
    if stored != computed {
        return Err(Error::HeaderChecksum { stored, computed });
    }
    match le16(b, 34) {
        0xC0DE => {}
        0xDEC0 => return Err(Error::BigEndian),
        e => return Err(bad(34, format!("endianness marker {e:#06x}"))),
    }
    let image_version = le16(b, 92);
    if image_version != 2 {
        return Err(bad(
            92,
            format!("binary image version {image_version}, text \"0002\""),
        ));
    }
    let checksum = match le16(b, 96) {
        CSM_NONE => Checksum::None,
        CSM_CRC32 => Checksum::Crc32,
        CSM_XXH64 => Checksum::Xxh64,
        CSM_XXH128 => Checksum::Xxh128,
        m => return Err(Error::UnsupportedChecksum(m)),
    };
    let checksum_size = le16(b, 98);
    if checksum_size != checksum.size() {
        return Err(bad(
            98,
            format!(
                "checksum size {checksum_size} for checksum mode {:#x}",
                le16(b, 96)
            ),
        ));
    }
    let blocks_per_checksum = if checksum == Checksum::None {
        0
    } else {
        le32(b, 100)
    };
    if checksum != Checksum::None && blocks_per_checksum == 0 {
        return Err(bad(100, "0 blocks per checksum with checksums on"));
    }
    let bitmap_mode = match b[105] {
        BM_BIT => BitmapMode::Bit,
        BM_NONE => BitmapMode::None,
        m => return Err(Error::UnsupportedBitmap(m)),
    };
    let h = Header {
        format: Format::V2,
        fs: text(&b[36..52]),
        partclone_version: Some(text(&b[16..30])),
        device_size: le64(b, 52),
        total_blocks: le64(b, 60),
        used_blocks: le64(b, 68),
        used_blocks_bitmap: Some(le64(b, 76)),
        block_size: le32(b, 84),
        cpu_bits: Some(le16(b, 94)),
        checksum,
        checksum_size,
        blocks_per_checksum,
        reseed: b[104] != 0,
        bitmap_mode,
    };
    check_sizes(&h, [84, 52, 60, 68])?;
    Ok(h)
}

/// Limits that keep memory bounded whatever the header claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest bitmap kept in memory, in bytes (one bit per block). The default, 512 MiB,
    /// covers 2^32 blocks: a 16 TiB filesystem of 4 KiB blocks.
    pub max_bitmap_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bitmap_bytes: 512 << 20,
        }
    }
}

/// Which blocks of the filesystem the image holds: one bit per block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    blocks: u64,
    used: u64,
}

impl Bitmap {
    /// A bitmap of `blocks` blocks, none used.
    ///
    /// Panics when `blocks` does not fit in memory; readers use [`Limits`] first.
    pub fn new(blocks: u64) -> Bitmap {
        let words = usize::try_from(blocks.div_ceil(64)).expect("bitmap fits in memory");
        Bitmap {
            words: vec![0; words],
            blocks,
            used: 0,
        }
    }

    /// A bitmap from the blocks for which `used(block)` is true.
    pub fn from_fn(blocks: u64, mut used: impl FnMut(u64) -> bool) -> Bitmap {
        let mut b = Bitmap::new(blocks);
        for i in 0..blocks {
            if used(i) {
                b.set(i);
            }
        }
        b
    }

    /// Marks `block` used (ignored past the end).
    pub fn set(&mut self, block: u64) {
        if block < self.blocks && !self.is_used(block) {
            self.words[(block / 64) as usize] |= 1 << (block % 64);
            self.used += 1;
        }
    }

    /// Blocks in the bitmap.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Blocks marked used.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Whether `block` is used (false past the end).
    pub fn is_used(&self, block: u64) -> bool {
        block < self.blocks && self.words[(block / 64) as usize] >> (block % 64) & 1 == 1
    }

    /// The first used block at or after `from`.
    pub fn next_used(&self, from: u64) -> Option<u64> {
        self.next_with(from, false)
    }

    /// The first unused block at or after `from`, or [`Bitmap::blocks`] when there is none.
    pub fn next_unused(&self, from: u64) -> u64 {
        self.next_with(from, true).unwrap_or(self.blocks)
    }

    fn next_with(&self, from: u64, unused: bool) -> Option<u64> {
        if from >= self.blocks {
            return None;
        }
        let mut w = (from / 64) as usize;
        let flip = if unused { !0 } else { 0 };
        let mut bits = (self.words[w] ^ flip) & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                let b = w as u64 * 64 + u64::from(bits.trailing_zeros());
                return (b < self.blocks).then_some(b);
            }
            w += 1;
            if w >= self.words.len() {
                return None;
            }
            bits = self.words[w] ^ flip;
        }
    }

    /// The used blocks as `(first, count)` runs, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let start = self.next_used(at)?;
            let end = self.next_unused(start);
            at = end;
            Some((start, end - start))
        })
    }

    /// The bitmap as partclone v2 stores it: one bit per block, LSB first, `⌈blocks/8⌉` bytes.
    pub fn to_bits(&self) -> Vec<u8> {
        let n = self.blocks.div_ceil(8) as usize;
        let mut out: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        out.truncate(n);
        out
    }
}

/// A reader that counts the bytes it has delivered, for error offsets.
pub(crate) struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counted<R> {
    pub(crate) fn new(inner: R) -> Self {
        Counted { inner, pos: 0 }
    }

    /// Fills `buf` completely, or fails with the exact offset where the stream ended.
    pub(crate) fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        offset: self.pos,
                        what,
                    })
                }
                Ok(n) => {
                    done += n;
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        offset: self.pos,
                        what,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<()> {
        let mut buf = [0u8; 4096];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.fill(&mut buf[..k], what)?;
            n -= k as u64;
        }
        Ok(())
    }
}

/// Reads the bitmap that follows `h`, keeping at most `limits.max_bitmap_bytes` in memory.
fn read_bitmap<R: Read>(c: &mut Counted<R>, h: &Header, limits: &Limits) -> Result<Bitmap> {
    let bytes = h.total_blocks.div_ceil(64).saturating_mul(8);
    if bytes > limits.max_bitmap_bytes {
        return Err(Error::BitmapTooLarge {
            blocks: h.total_blocks,
            bytes,
            limit: limits.max_bitmap_bytes,
        });
    }
    let mut map = Bitmap {
        words: Vec::new(),
        blocks: h.total_blocks,
        used: 0,
    };
    const CHUNK: usize = 1 << 16;
    let mut buf = vec![0u8; CHUNK];
    match h.bitmap_mode {
        BitmapMode::None => {
            map.words = vec![!0u64; h.total_blocks.div_ceil(64) as usize];
            if let Some(last) = map.words.last_mut() {
                if !h.total_blocks.is_multiple_of(64) {
                    *last = (1u64 << (h.total_blocks % 64)) - 1;
                }
            }
            map.used = h.total_blocks;
        }
        BitmapMode::Bit => {
            // Grows only as bytes arrive: a short stream fails before a large allocation.
            let mut left = h.total_blocks.div_ceil(8);
            let mut reg = crc::SEED;
            let mut pending: Vec<u8> = Vec::with_capacity(8);
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                c.fill(&mut buf[..k], "block bitmap")?;
                reg = crc::update(reg, &buf[..k]);
                for &byte in &buf[..k] {
                    pending.push(byte);
                    if pending.len() == 8 {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&pending);
                        map.words.push(u64::from_le_bytes(a));
                        pending.clear();
                    }
                }
                left -= k as u64;
            }
            if !pending.is_empty() {
                pending.resize(8, 0);
                let mut a = [0u8; 8];
                a.copy_from_slice(&pending);
                map.words.push(u64::from_le_bytes(a));
            }
            // Bits past the last block are not blocks.
            if !h.total_blocks.is_multiple_of(64) {
                if let Some(last) = map.words.last_mut() {
                    *last &= (1u64 << (h.total_blocks % 64)) - 1;
                }
            }
            let at = c.pos;
            let mut s = [0u8; 4];
            c.fill(&mut s, "block bitmap checksum")?;
            let stored = u32::from_le_bytes(s);
            if stored != reg {
                return Err(Error::BitmapChecksum {
                    offset: at,
                    stored,
                    computed: reg,
                });
            }
            map.used = map.words.iter().map(|w| u64::from(w.count_ones())).sum();
        }
        BitmapMode::Byte => {
            let mut left = h.total_blocks;
            let mut word = 0u64;
            let mut bit = 0u32;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                c.fill(&mut buf[..k], "block map")?;
                for &byte in &buf[..k] {
                    // partclone counts a block as present only when its byte is exactly 1.
                    if byte == 1 {
                        word |= 1 << bit;
                        map.used += 1;
                    }
                    bit += 1;
                    if bit == 64 {
                        map.words.push(word);
                        word = 0;
                        bit = 0;
                    }
                }
                left -= k as u64;
            }
            if bit > 0 {
                map.words.push(word);
            }
            let at = c.pos;
            let mut m = [0u8; 8];
            c.fill(&mut m, "block map marker")?;
            if &m != V1_BITMAP_MAGIC {
                return Err(Error::BitmapMagic { offset: at });
            }
        }
    }
    Ok(map)
}

/// The running checksum of the data blocks.
#[derive(Clone)]
pub(crate) enum Running {
    None,
    Crc32(crc32fast::Hasher),
    Crc32V1(u32),
    Xxh64(twox_hash::XxHash64),
    Xxh128(Box<twox_hash::XxHash3_128>),
}

/// A run of consecutive used blocks returned by [`PartcloneReader::read_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First block number (byte offset in the partition: `first_block × block_size`).
    pub first_block: u64,
    /// Number of blocks.
    pub blocks: u64,
}

/// Reads a partclone image front to back: header, bitmap, then the used blocks, verifying
/// every checksum on the way (a mismatch is [`Error::BlockChecksum`] naming the block).
pub struct PartcloneReader<R> {
    src: Counted<R>,
    header: Header,
    bitmap: Bitmap,
    /// Next block number to look at in the bitmap.
    cursor: u64,
    /// Blocks in the current checksum group.
    in_group: u64,
    /// The last block read (the one a final, partial checksum group ends with).
    last_block: u64,
    running: Running,
    done: bool,
}

impl<R: Read> PartcloneReader<R> {
    /// Reads the header and the bitmap of the image at the start of `src`.
    pub fn new(src: R, limits: Limits) -> Result<Self> {
        let mut c = Counted::new(src);
        let header = Header::read_counted(&mut c)?;
        let bitmap = read_bitmap(&mut c, &header, &limits)?;
        let running = Running::new(header.checksum);
        Ok(PartcloneReader {
            src: c,
            header,
            bitmap,
            cursor: 0,
            in_group: 0,
            last_block: 0,
            running,
            done: false,
        })
    }

    /// The image's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The image's block bitmap.
    pub fn bitmap(&self) -> &Bitmap {
        &self.bitmap
    }

    /// Bytes read so far from the (decompressed) stream.
    pub fn position(&self) -> u64 {
        self.src.pos
    }

    /// Bytes of block data (with checksums) that follow the bitmap.
    pub fn data_len(&self) -> u64 {
        let h = &self.header;
        let used = self.bitmap.used();
        let sums = if h.blocks_per_checksum == 0 {
            0
        } else {
            used.div_ceil(u64::from(h.blocks_per_checksum))
        };
        used * u64::from(h.block_size) + sums * u64::from(h.checksum_size)
    }

    /// Reads the next run of consecutive used blocks into `buf` (resized to hold them), at
    /// most `max_bytes` worth but always at least one block. `Ok(None)` once every used
    /// block was read and the last checksum verified.
    pub fn read_run(&mut self, buf: &mut Vec<u8>, max_bytes: usize) -> Result<Option<Run>> {
        if self.done {
            return Ok(None);
        }
        let bs = self.header.block_size as usize;
        let Some(first) = self.bitmap.next_used(self.cursor) else {
            self.finish()?;
            return Ok(None);
        };
        let run_end = self.bitmap.next_unused(first);
        let max_blocks = (max_bytes / bs).max(1) as u64;
        let blocks = (run_end - first).min(max_blocks);
        buf.resize(blocks as usize * bs, 0);
        let per = u64::from(self.header.blocks_per_checksum);
        let mut b = 0u64;
        while b < blocks {
            let k = if per == 0 {
                blocks - b
            } else {
                (per - self.in_group).min(blocks - b)
            };
            let slice = &mut buf[b as usize * bs..(b + k) as usize * bs];
            self.src.fill(slice, "data blocks")?;
            self.running.update(slice, bs);
            b += k;
            if per != 0 {
                self.in_group += k;
                if self.in_group == per {
                    self.check_sum(first + b - 1)?;
                }
            }
        }
        self.cursor = first + blocks;
        self.last_block = first + blocks - 1;
        Ok(Some(Run {
            first_block: first,
            blocks,
        }))
    }

    /// Reads and verifies every remaining block; returns how many blocks were read.
    pub fn verify_rest(&mut self) -> Result<u64> {
        let mut buf = Vec::new();
        let mut n = 0;
        while let Some(run) = self.read_run(&mut buf, 4 << 20)? {
            n += run.blocks;
        }
        Ok(n)
    }

    /// After the last used block: the checksum of a last, partial group.
    fn finish(&mut self) -> Result<()> {
        if self.in_group > 0 {
            self.check_sum(self.last_block)?;
        }
        self.done = true;
        Ok(())
    }

    fn check_sum(&mut self, block: u64) -> Result<()> {
        let at = self.src.pos;
        let size = self.header.checksum_size as usize;
        let mut stored = [0u8; 16];
        let stored = &mut stored[..size];
        self.src.fill(stored, "block checksum")?;
        let computed = self.running.value();
        if *stored != *computed {
            // Shown as the numbers they are (least significant byte stored first).
            let hex = |b: &[u8]| {
                b.iter()
                    .rev()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            };
            return Err(Error::BlockChecksum {
                block,
                offset: at,
                stored: hex(stored),
                computed: hex(&computed),
            });
        }
        self.in_group = 0;
        if self.header.reseed {
            self.running = Running::new(self.header.checksum);
        }
        Ok(())
    }

    /// Gives back the source.
    pub fn into_inner(self) -> R {
        self.src.inner
    }
}

impl Running {
    /// The state before the first block (and after each reseed).
    pub(crate) fn new(c: Checksum) -> Running {
        match c {
            Checksum::None => Running::None,
            Checksum::Crc32 => Running::Crc32(crc32fast::Hasher::new()),
            Checksum::Crc32V1 => Running::Crc32V1(crc::SEED),
            Checksum::Xxh64 => Running::Xxh64(twox_hash::XxHash64::with_seed(0)),
            Checksum::Xxh128 => Running::Xxh128(Box::new(twox_hash::XxHash3_128::new())),
        }
    }

    /// Takes whole blocks of `block_size` bytes.
    pub(crate) fn update(&mut self, blocks: &[u8], block_size: usize) {
        match self {
            Running::None => {}
            Running::Crc32(h) => h.update(blocks),
            Running::Xxh64(h) => std::hash::Hasher::write(h, blocks),
            Running::Xxh128(h) => h.write(blocks),
            Running::Crc32V1(reg) => {
                for block in blocks.chunks_exact(block_size) {
                    *reg = crc::update_v1(*reg, block[0], block_size);
                }
            }
        }
    }

    /// The value as stored after a group of blocks (empty without checksums).
    pub(crate) fn value(&self) -> Vec<u8> {
        match self {
            Running::None => Vec::new(),
            Running::Crc32(h) => (!h.clone().finalize()).to_le_bytes().to_vec(),
            Running::Crc32V1(reg) => reg.to_le_bytes().to_vec(),
            Running::Xxh64(h) => std::hash::Hasher::finish(h).to_le_bytes().to_vec(),
            Running::Xxh128(h) => h.finish_128().to_le_bytes().to_vec(),
        }
    }
}
