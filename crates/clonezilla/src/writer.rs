//! Writes partclone images, format v1 or v2, byte for byte as partclone lays them out (see
//! docs/CLONEZILLA.md). lifeboat reads Clonezilla images; this writer exists to produce the
//! images its readers are tested and fuzzed with — in particular format v1, which no current
//! partclone writes any more — and to convert an image between the two formats.

use std::io::{self, Write};

use crate::crc;
use crate::partclone::{
    Bitmap, Checksum, Format, Running, V1_BITMAP_MAGIC, V1_HEADER_LEN, V2_HEADER_LEN,
};

/// What the header of a written image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSpec {
    /// Format version. V1 always uses [`Checksum::Crc32V1`] after every block.
    pub format: Format,
    /// Filesystem type, at most 15 bytes ("EXTFS", "NTFS", …).
    pub fs: String,
    /// Bytes per block.
    pub block_size: u32,
    /// Size of the source partition in bytes (at least blocks × block size).
    pub device_size: u64,
    /// Checksum mode of a v2 image ([`Checksum::None`], [`Checksum::Crc32`],
    /// [`Checksum::Xxh64`] or [`Checksum::Xxh128`]).
    pub checksum: Checksum,
    /// Blocks per checksum of a v2 image with checksums (at least 1).
    pub blocks_per_checksum: u32,
    /// Whether a v2 checksum restarts after each stored value.
    pub reseed: bool,
}

/// Writes one image: the header and bitmap at [`ImageWriter::new`], then the used blocks in
/// order through [`ImageWriter::write_blocks`], then [`ImageWriter::finish`].
pub struct ImageWriter<W: Write> {
    out: W,
    block_size: usize,
    per: u64,
    in_group: u64,
    reseed: bool,
    checksum: Checksum,
    sum: Running,
    left: u64,
}

fn put_text(dst: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(dst.len());
    dst[..n].copy_from_slice(&b[..n]);
}

impl<W: Write> ImageWriter<W> {
    /// Writes the header and the bitmap.
    pub fn new(mut out: W, spec: &WriteSpec, bitmap: &Bitmap) -> io::Result<Self> {
        let total = bitmap.blocks();
        let used = bitmap.used();
        let (checksum, per, reseed) = match spec.format {
            Format::V1 => {
                let mut h = vec![0u8; V1_HEADER_LEN];
                put_text(&mut h[0..15], "partclone-image");
                put_text(&mut h[15..30], &spec.fs);
                put_text(&mut h[30..34], "0001");
                h[36..40].copy_from_slice(&spec.block_size.to_le_bytes());
                h[40..48].copy_from_slice(&spec.device_size.to_le_bytes());
                h[48..56].copy_from_slice(&total.to_le_bytes());
                h[56..64].copy_from_slice(&used.to_le_bytes());
                out.write_all(&h)?;
                let mut bytes = vec![0u8; 1 << 16];
                let mut at = 0;
                while at < total {
                    let k = (total - at).min(bytes.len() as u64) as usize;
                    for (i, b) in bytes[..k].iter_mut().enumerate() {
                        *b = u8::from(bitmap.is_used(at + i as u64));
                    }
                    out.write_all(&bytes[..k])?;
                    at += k as u64;
                }
                out.write_all(V1_BITMAP_MAGIC)?;
                (Checksum::Crc32V1, 1, false)
            }
            Format::V2 => {
                let mut h = [0u8; V2_HEADER_LEN];
                put_text(&mut h[0..16], "partclone-image");
                put_text(&mut h[16..30], "0.3.23");
                put_text(&mut h[30..34], "0002");
                h[34..36].copy_from_slice(&0xC0DEu16.to_le_bytes());
                put_text(&mut h[36..52], &spec.fs);
                h[52..60].copy_from_slice(&spec.device_size.to_le_bytes());
                h[60..68].copy_from_slice(&total.to_le_bytes());
                h[68..76].copy_from_slice(&used.to_le_bytes());
                h[76..84].copy_from_slice(&used.to_le_bytes());
                h[84..88].copy_from_slice(&spec.block_size.to_le_bytes());
                h[88..92].copy_from_slice(&18u32.to_le_bytes());
                h[92..94].copy_from_slice(&2u16.to_le_bytes());
                h[94..96].copy_from_slice(&64u16.to_le_bytes());
                let (mode, size, per) = match spec.checksum {
                    c @ (Checksum::Crc32 | Checksum::Xxh64 | Checksum::Xxh128) => {
                        (c.mode(), c.size(), spec.blocks_per_checksum.max(1))
                    }
                    Checksum::None | Checksum::Crc32V1 => (0, 0, 0),
                };
                h[96..98].copy_from_slice(&mode.to_le_bytes());
                h[98..100].copy_from_slice(&size.to_le_bytes());
                h[100..104].copy_from_slice(&per.to_le_bytes());
                h[104] = u8::from(spec.reseed || per == 0);
                h[105] = 1;
                let c = crc::update(crc::SEED, &h[..106]);
                h[106..110].copy_from_slice(&c.to_le_bytes());
                out.write_all(&h)?;
                let bits = bitmap.to_bits();
                out.write_all(&bits)?;
                out.write_all(&crc::update(crc::SEED, &bits).to_le_bytes())?;
                if per == 0 {
                    (Checksum::None, 0, true)
                } else {
                    (spec.checksum, u64::from(per), spec.reseed)
                }
            }
        };
        Ok(ImageWriter {
            out,
            block_size: spec.block_size as usize,
            per,
            in_group: 0,
            reseed,
            checksum,
            sum: Running::new(checksum),
            left: used,
        })
    }

    /// Writes whole used blocks, in block order (`data.len()` a multiple of the block size).
    pub fn write_blocks(&mut self, data: &[u8]) -> io::Result<()> {
        if self.block_size == 0 || !data.len().is_multiple_of(self.block_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "data is not a whole number of blocks",
            ));
        }
        for block in data.chunks_exact(self.block_size) {
            if self.left == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "more blocks than the bitmap marks used",
                ));
            }
            self.left -= 1;
            self.out.write_all(block)?;
            if self.checksum == Checksum::None {
                continue;
            }
            self.sum.update(block, self.block_size);
            self.in_group += 1;
            if self.in_group == self.per {
                self.emit()?;
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.checksum == Checksum::None {
            return Ok(());
        }
        let v = self.sum.value();
        if self.reseed {
            self.sum = Running::new(self.checksum);
        }
        self.in_group = 0;
        self.out.write_all(&v)
    }

    /// Writes the checksum of a last, partial group and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if self.left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} used blocks were not written", self.left),
            ));
        }
        if self.in_group > 0 {
            self.emit()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
