//! On-disk structures of the container, byte for byte as in `docs/FORMAT.md`.
//! All integers are little-endian.

use crate::error::{ContainerError, Result};
use byteorder::{ByteOrder, LittleEndian as LE};
use lifeboat_fs::Extent;

/// Magic at the start of every container stream.
pub const FILE_MAGIC: [u8; 8] = *b"LIFEBOAT";
/// Major format version written by this crate: 3, a stream whose index entries carry each
/// chunk's SHA-256 digest ([`INDEX_ENTRY_DIGEST_LEN`]-byte entries). The major version
/// changed (rather than the minor) so that a lifeboat that reads only 1.x refuses such a stream
/// at its header ("use a newer lifeboat") instead of finding its index damaged. Major 2 is
/// the sealed (encrypted) stream ([`crate::seal`]).
pub const VERSION_MAJOR: u16 = 3;
/// Minor format version written with [`VERSION_MAJOR`].
pub const VERSION_MINOR: u16 = 0;
/// The major version of streams written before chunk digests (index entries of
/// [`INDEX_ENTRY_LEN`] bytes): still read. Minor 0, or 1 when it holds a [`tag::DISK_LIST`].
pub const VERSION_MAJOR_V1: u16 = 1;
/// Size of the file header.
pub const FILE_HEADER_LEN: usize = 64;
/// Size of a chunk record header (before the extent table).
pub const CHUNK_HEADER_LEN: usize = 48;
/// Size of one extent table entry.
pub const EXTENT_LEN: usize = 16;
/// Size of the header of DISK, INDX, IDXD and MANI records.
pub const RECORD_HEADER_LEN: usize = 24;
/// Size of one index entry of a format 1.x stream (no digest).
pub const INDEX_ENTRY_LEN: usize = 32;
/// Size of one index entry of a format 3 stream: the 32 bytes of [`INDEX_ENTRY_LEN`], then the
/// chunk's SHA-256 digest (`docs/FORMAT.md` §5.4, §6.1).
pub const INDEX_ENTRY_DIGEST_LEN: usize = 64;
/// Size of one index directory entry.
pub const DIR_ENTRY_LEN: usize = 32;
/// Size of the tail record, the last bytes of a complete container.
pub const TAIL_LEN: usize = 64;

/// Smallest allowed chunk size.
pub const MIN_CHUNK_SIZE: u32 = 4096;
/// Largest allowed chunk size (bounds every allocation a reader makes for a chunk).
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;
/// Largest extent count in one chunk.
pub const MAX_EXTENTS: u32 = 1 << 17;
/// Largest JSON payload of a DISK or MANI record.
pub const MAX_JSON_LEN: u32 = 64 << 20;
/// Largest number of entries in one INDX segment or in the IDXD directory.
pub const MAX_INDEX_ENTRIES: u32 = 1 << 20;
/// Chunks per index segment written by this crate.
pub const INDEX_SEGMENT_CHUNKS: u32 = 8192;

/// Record tags.
pub mod tag {
    /// A data chunk.
    pub const CHUNK: [u8; 4] = *b"CHNK";
    /// The description of the disk whose chunks follow.
    pub const DISK: [u8; 4] = *b"DISK";
    /// The descriptions of all disks, before the first `DISK` (format 1.1, optional).
    pub const DISK_LIST: [u8; 4] = *b"DLST";
    /// An index segment.
    pub const INDEX: [u8; 4] = *b"INDX";
    /// The index directory.
    pub const DIRECTORY: [u8; 4] = *b"IDXD";
    /// The manifest.
    pub const MANIFEST: [u8; 4] = *b"MANI";
    /// The tail.
    pub const TAIL: [u8; 4] = *b"TAIL";
}

/// How a chunk's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Payload is the data itself.
    Stored = 0,
    /// Payload is one zstd frame.
    Zstd = 1,
    /// All data bytes are zero; no payload.
    Zero = 2,
}

impl Codec {
    fn from_u8(v: u8, pos: u64) -> Result<Self> {
        match v {
            0 => Ok(Codec::Stored),
            1 => Ok(Codec::Zstd),
            2 => Ok(Codec::Zero),
            _ => Err(ContainerError::Invalid {
                what: "chunk codec",
                pos,
                detail: format!("unknown codec {v}"),
            }),
        }
    }
}

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Largest uncompressed data length of a chunk.
    pub chunk_size: u32,
    /// Random image identifier.
    pub image_id: [u8; 16],
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

impl FileHeader {
    /// Whether the stream's index entries carry chunk digests (format 3).
    pub fn has_digests(&self) -> bool {
        self.major == VERSION_MAJOR
    }

    /// Size of one index entry of this stream.
    pub fn index_entry_len(&self) -> usize {
        if self.has_digests() {
            INDEX_ENTRY_DIGEST_LEN
        } else {
            INDEX_ENTRY_LEN
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        LE::write_u16(&mut b[8..10], self.major);
        LE::write_u16(&mut b[10..12], self.minor);
        LE::write_u32(&mut b[12..16], FILE_HEADER_LEN as u32);
        LE::write_u32(&mut b[16..20], self.chunk_size);
        b[24..40].copy_from_slice(&self.image_id);
        LE::write_u64(&mut b[40..48], self.created_unix);
        let crc = crc32fast::hash(&b[0..60]);
        LE::write_u32(&mut b[60..64], crc);
        b
    }

    /// Decodes and validates a header read from stream position 0.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < FILE_HEADER_LEN {
            return Err(ContainerError::Truncated {
                pos: 0,
                what: "file header",
            });
        }
        if b[0..8] != FILE_MAGIC {
            return Err(ContainerError::BadMagic {
                pos: 0,
                what: "image file header",
                found: [b[0], b[1], b[2], b[3]],
            });
        }
        if crate::seal::is_sealed(b) {
            return Err(ContainerError::Encrypted);
        }
        if crc32fast::hash(&b[0..60]) != LE::read_u32(&b[60..64]) {
            return Err(ContainerError::Checksum {
                what: "file header",
                pos: 0,
                chunk: None,
            });
        }
        let major = LE::read_u16(&b[8..10]);
        let minor = LE::read_u16(&b[10..12]);
        if major != VERSION_MAJOR && major != VERSION_MAJOR_V1 {
            return Err(ContainerError::Version {
                major,
                minor,
                supported: VERSION_MAJOR,
            });
        }
        let hlen = LE::read_u32(&b[12..16]);
        if hlen as usize != FILE_HEADER_LEN {
            return Err(ContainerError::Invalid {
                what: "file header length",
                pos: 0,
                detail: format!("{hlen}"),
            });
        }
        let chunk_size = LE::read_u32(&b[16..20]);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(ContainerError::Invalid {
                what: "chunk size",
                pos: 0,
                detail: format!("{chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
            });
        }
        let mut image_id = [0u8; 16];
        image_id.copy_from_slice(&b[24..40]);
        Ok(FileHeader {
            major,
            minor,
            chunk_size,
            image_id,
            created_unix: LE::read_u64(&b[40..48]),
        })
    }
}

/// The fixed part of a chunk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Disk index the chunk belongs to.
    pub disk: u32,
    /// Sequence number (0, 1, 2, … over the whole image).
    pub seq: u64,
    /// Number of extents in the table.
    pub extent_count: u32,
    /// Uncompressed data length.
    pub data_len: u32,
    /// Stored payload length.
    pub payload_len: u32,
    /// Payload codec.
    pub codec: Codec,
    /// CRC32 of the uncompressed data.
    pub data_crc: u32,
    /// CRC32 of the payload.
    pub payload_crc: u32,
}

impl ChunkHeader {
    /// Encodes header and extent table, with the header CRC over both.
    pub fn encode(&self, extents: &[Extent]) -> Vec<u8> {
        let mut b = vec![0u8; CHUNK_HEADER_LEN + extents.len() * EXTENT_LEN];
        b[0..4].copy_from_slice(&tag::CHUNK);
        LE::write_u32(&mut b[4..8], self.disk);
        LE::write_u64(&mut b[8..16], self.seq);
        LE::write_u32(&mut b[16..20], self.extent_count);
        LE::write_u32(&mut b[20..24], self.data_len);
        LE::write_u32(&mut b[24..28], self.payload_len);
        b[28] = self.codec as u8;
        LE::write_u32(&mut b[32..36], self.data_crc);
        LE::write_u32(&mut b[36..40], self.payload_crc);
        for (i, e) in extents.iter().enumerate() {
            let o = CHUNK_HEADER_LEN + i * EXTENT_LEN;
            LE::write_u64(&mut b[o..o + 8], e.offset);
            LE::write_u64(&mut b[o + 8..o + 16], e.len);
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&b[0..44]);
        h.update(&b[CHUNK_HEADER_LEN..]);
        let crc = h.finalize();
        LE::write_u32(&mut b[44..48], crc);
        b
    }

    /// Decodes the fixed part (48 bytes, tag already checked by the caller) and validates the
    /// bounds that do not need the extent table. `chunk_size` is the image's chunk size.
    pub fn decode(b: &[u8], pos: u64, chunk_size: u32) -> Result<Self> {
        let h = ChunkHeader {
            disk: LE::read_u32(&b[4..8]),
            seq: LE::read_u64(&b[8..16]),
            extent_count: LE::read_u32(&b[16..20]),
            data_len: LE::read_u32(&b[20..24]),
            payload_len: LE::read_u32(&b[24..28]),
            codec: Codec::from_u8(b[28], pos)?,
            data_crc: LE::read_u32(&b[32..36]),
            payload_crc: LE::read_u32(&b[36..40]),
        };
        let bad = |detail: String| ContainerError::Invalid {
            what: "chunk header",
            pos,
            detail,
        };
        if h.data_len > chunk_size || h.data_len == 0 {
            return Err(bad(format!(
                "data length {} outside 1..={chunk_size}",
                h.data_len
            )));
        }
        if h.extent_count == 0 || h.extent_count > MAX_EXTENTS || h.extent_count > h.data_len {
            return Err(bad(format!("extent count {}", h.extent_count)));
        }
        let max_payload = zstd_bound(h.data_len);
        match h.codec {
            Codec::Zero if h.payload_len != 0 => {
                return Err(bad("zero chunk with a payload".into()));
            }
            Codec::Stored if h.payload_len != h.data_len => {
                return Err(bad("stored chunk whose payload length differs".into()));
            }
            Codec::Zstd if h.payload_len > max_payload => {
                return Err(bad(format!("payload length {}", h.payload_len)));
            }
            _ => {}
        }
        Ok(h)
    }

    /// Checks the header CRC (stored at bytes 44..48 of `fixed`) over the fixed part and the
    /// extent table, then decodes and validates the table.
    pub fn decode_extents(&self, fixed: &[u8], table: &[u8], pos: u64) -> Result<Vec<Extent>> {
        let mut hs = crc32fast::Hasher::new();
        hs.update(&fixed[0..44]);
        hs.update(table);
        if hs.finalize() != LE::read_u32(&fixed[44..48]) {
            return Err(ContainerError::Checksum {
                what: "chunk header",
                pos,
                chunk: Some(self.seq),
            });
        }
        let mut out = Vec::with_capacity(self.extent_count as usize);
        let mut total = 0u64;
        let mut prev_end = 0u64;
        for i in 0..self.extent_count as usize {
            let o = i * EXTENT_LEN;
            let e = Extent::new(
                LE::read_u64(&table[o..o + 8]),
                LE::read_u64(&table[o + 8..o + 16]),
            );
            if e.len == 0 || e.offset.checked_add(e.len).is_none() || (i > 0 && e.offset < prev_end)
            {
                return Err(ContainerError::Invalid {
                    what: "chunk extent table",
                    pos,
                    detail: format!("extent {i} {e:?} is empty, overflows or is out of order"),
                });
            }
            prev_end = e.end();
            total += e.len;
            out.push(e);
        }
        if total != u64::from(self.data_len) {
            return Err(ContainerError::Invalid {
                what: "chunk extent table",
                pos,
                detail: format!(
                    "extents cover {total} bytes but the chunk holds {}",
                    self.data_len
                ),
            });
        }
        Ok(out)
    }
}

/// Upper bound of a zstd frame's size for `len` input bytes (zstd's ZSTD_COMPRESSBOUND).
pub fn zstd_bound(len: u32) -> u32 {
    let l = len as u64;
    let extra = if l < (128 << 10) {
        ((128 << 10) - l) >> 11
    } else {
        0
    };
    (l + (l >> 8) + extra + 64).min(u64::from(u32::MAX)) as u32
}

/// Header of DISK, INDX, IDXD and MANI records: tag, count or length, an auxiliary u64,
/// CRC32 of the body, CRC32 of the first 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Record tag.
    pub tag: [u8; 4],
    /// DISK: disk index; INDX/IDXD: entry count; MANI: 0.
    pub a: u32,
    /// DISK/MANI: JSON length; INDX: first chunk sequence number; IDXD: 0.
    pub b: u64,
    /// CRC32 of the body that follows.
    pub body_crc: u32,
}

impl RecordHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&self.tag);
        LE::write_u32(&mut h[4..8], self.a);
        LE::write_u64(&mut h[8..16], self.b);
        LE::write_u32(&mut h[16..20], self.body_crc);
        let crc = crc32fast::hash(&h[0..20]);
        LE::write_u32(&mut h[20..24], crc);
        h
    }

    /// Decodes a header whose tag is already known, checking its CRC.
    pub fn decode(h: &[u8], pos: u64, what: &'static str) -> Result<Self> {
        if crc32fast::hash(&h[0..20]) != LE::read_u32(&h[20..24]) {
            return Err(ContainerError::Checksum {
                what,
                pos,
                chunk: None,
            });
        }
        Ok(RecordHeader {
            tag: [h[0], h[1], h[2], h[3]],
            a: LE::read_u32(&h[4..8]),
            b: LE::read_u64(&h[8..16]),
            body_crc: LE::read_u32(&h[16..20]),
        })
    }
}

/// One index entry: where a chunk record is, which disk range it covers and (format 3)
/// the chunk's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Position of the chunk record in the container stream.
    pub pos: u64,
    /// First byte of the disk covered by the chunk's first extent.
    pub first: u64,
    /// One past the last byte covered by the chunk's last extent.
    pub end: u64,
    /// Disk index.
    pub disk: u32,
    /// Total record length (header, extent table, payload).
    pub record_len: u32,
    /// The chunk's digest ([`crate::digest::chunk_digest`]); `None` in format 1.x streams.
    pub digest: Option<[u8; 32]>,
}

impl IndexEntry {
    /// Encodes the entry: [`INDEX_ENTRY_DIGEST_LEN`] bytes with a digest,
    /// [`INDEX_ENTRY_LEN`] without.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; INDEX_ENTRY_DIGEST_LEN];
        LE::write_u64(&mut b[0..8], self.pos);
        LE::write_u64(&mut b[8..16], self.first);
        LE::write_u64(&mut b[16..24], self.end);
        LE::write_u32(&mut b[24..28], self.disk);
        LE::write_u32(&mut b[28..32], self.record_len);
        match &self.digest {
            Some(d) => {
                b[32..64].copy_from_slice(d);
                out.extend_from_slice(&b);
            }
            None => out.extend_from_slice(&b[..INDEX_ENTRY_LEN]),
        }
    }
    /// Decodes one entry of [`INDEX_ENTRY_LEN`] bytes, or of [`INDEX_ENTRY_DIGEST_LEN`] bytes
    /// (with its digest).
    pub fn decode(b: &[u8]) -> Self {
        let digest = b.get(32..64).map(|d| {
            let mut x = [0u8; 32];
            x.copy_from_slice(d);
            x
        });
        IndexEntry {
            pos: LE::read_u64(&b[0..8]),
            first: LE::read_u64(&b[8..16]),
            end: LE::read_u64(&b[16..24]),
            disk: LE::read_u32(&b[24..28]),
            record_len: LE::read_u32(&b[28..32]),
            digest,
        }
    }

    /// The entry without its digest (what a chunk record alone tells).
    pub fn located(&self) -> IndexEntry {
        IndexEntry {
            digest: None,
            ..*self
        }
    }
}

/// The tail: where the index directory and the manifest are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// Position of the IDXD record.
    pub directory_pos: u64,
    /// Position of the MANI record.
    pub manifest_pos: u64,
    /// Number of chunk records.
    pub chunks: u64,
    /// Sum of the chunks' uncompressed data lengths.
    pub data_bytes: u64,
    /// The image id from the file header.
    pub image_id: [u8; 16],
}

impl Tail {
    /// Encodes the tail.
    pub fn encode(&self) -> [u8; TAIL_LEN] {
        let mut b = [0u8; TAIL_LEN];
        b[0..4].copy_from_slice(&tag::TAIL);
        LE::write_u64(&mut b[8..16], self.directory_pos);
        LE::write_u64(&mut b[16..24], self.manifest_pos);
        LE::write_u64(&mut b[24..32], self.chunks);
        LE::write_u64(&mut b[32..40], self.data_bytes);
        b[40..56].copy_from_slice(&self.image_id);
        b[56..60].copy_from_slice(b"END!");
        let crc = crc32fast::hash(&b[0..60]);
        LE::write_u32(&mut b[60..64], crc);
        b
    }
    /// Decodes a tail found at `pos`.
    pub fn decode(b: &[u8], pos: u64) -> Result<Self> {
        if b[0..4] != tag::TAIL || &b[56..60] != b"END!" {
            return Err(ContainerError::BadMagic {
                pos,
                what: "tail",
                found: [b[0], b[1], b[2], b[3]],
            });
        }
        if crc32fast::hash(&b[0..60]) != LE::read_u32(&b[60..64]) {
            return Err(ContainerError::Checksum {
                what: "tail",
                pos,
                chunk: None,
            });
        }
        let mut image_id = [0u8; 16];
        image_id.copy_from_slice(&b[40..56]);
        Ok(Tail {
            directory_pos: LE::read_u64(&b[8..16]),
            manifest_pos: LE::read_u64(&b[16..24]),
            chunks: LE::read_u64(&b[24..32]),
            data_bytes: LE::read_u64(&b[32..40]),
            image_id,
        })
    }
}

/// Hex notation of an image id.
pub fn id_hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// One index directory entry: where an index segment is and the key of its first chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry {
    /// Position of the INDX record.
    pub pos: u64,
    /// Sequence number of the segment's first chunk.
    pub first_seq: u64,
    /// Disk of the segment's first chunk.
    pub first_disk: u32,
    /// Number of entries in the segment.
    pub entries: u32,
    /// First disk byte of the segment's first chunk.
    pub first_offset: u64,
}

impl DirEntry {
    /// Encodes the entry.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; DIR_ENTRY_LEN];
        LE::write_u64(&mut b[0..8], self.pos);
        LE::write_u64(&mut b[8..16], self.first_seq);
        LE::write_u32(&mut b[16..20], self.first_disk);
        LE::write_u32(&mut b[20..24], self.entries);
        LE::write_u64(&mut b[24..32], self.first_offset);
        out.extend_from_slice(&b);
    }
    /// Decodes one entry.
    pub fn decode(b: &[u8]) -> Self {
        DirEntry {
            pos: LE::read_u64(&b[0..8]),
            first_seq: LE::read_u64(&b[8..16]),
            first_disk: LE::read_u32(&b[16..20]),
            entries: LE::read_u32(&b[20..24]),
            first_offset: LE::read_u64(&b[24..32]),
        }
    }
}
