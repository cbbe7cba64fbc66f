//! Sequential reading of a container stream, with every checksum and the index verified.

use crate::error::{ContainerError, Result};
use crate::format::*;
use lifeboat_fs::Extent;
use std::io::{self, Read};

thread_local! {
    /// One zstd decompression context per thread, reused for every chunk.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// One chunk record as stored (payload not yet decompressed; header and payload CRCs checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedChunk {
    /// Position of the record in the container stream.
    pub pos: u64,
    /// The fixed header.
    pub header: ChunkHeader,
    /// Where the data goes on the disk.
    pub extents: Vec<Extent>,
    /// The stored payload.
    pub payload: Vec<u8>,
}

impl EncodedChunk {
    /// Decompresses into `out` (cleared first) and verifies the data CRC.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let h = &self.header;
        out.clear();
        match h.codec {
            Codec::Zero => out.resize(h.data_len as usize, 0),
            Codec::Stored => out.extend_from_slice(&self.payload),
            Codec::Zstd => {
                out.reserve(h.data_len as usize);
                let n = DECOMPRESSOR
                    .with(|d| {
                        let mut d = d.borrow_mut();
                        if d.is_none() {
                            *d = Some(zstd::bulk::Decompressor::new()?);
                        }
                        d.as_mut()
                            .expect("decompressor was just made")
                            .decompress_to_buffer(&self.payload, out)
                    })
                    .map_err(|source| ContainerError::Codec {
                        chunk: h.seq,
                        pos: self.pos,
                        source,
                    })?;
                if n != h.data_len as usize {
                    return Err(ContainerError::Invalid {
                        what: "chunk payload",
                        pos: self.pos,
                        detail: format!(
                            "chunk {} decompressed to {n} bytes, {} expected",
                            h.seq, h.data_len
                        ),
                    });
                }
            }
        }
        if crc32fast::hash(out) != h.data_crc {
            return Err(ContainerError::Checksum {
                what: "chunk data",
                pos: self.pos,
                chunk: Some(h.seq),
            });
        }
        Ok(())
    }

    /// Like [`EncodedChunk::decode_into`], but a stored (uncompressed) payload is moved into
    /// `out` instead of copied, and `payload` is left holding `out`'s former buffer (for
    /// reuse; its contents mean nothing). A stored payload is the data, so its CRC32, checked
    /// when the record was read, is the data's: the header must say so.
    pub fn take_decoded(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let h = &self.header;
        if h.codec != Codec::Stored {
            return self.decode_into(out);
        }
        if h.data_crc != h.payload_crc || self.payload.len() as u64 != u64::from(h.data_len) {
            return Err(ContainerError::Checksum {
                what: "chunk data",
                pos: self.pos,
                chunk: Some(h.seq),
            });
        }
        std::mem::swap(out, &mut self.payload);
        Ok(())
    }

    /// The index entry that describes this chunk (without a digest: that needs the data).
    pub fn index_entry(&self) -> IndexEntry {
        IndexEntry {
            pos: self.pos,
            first: self.extents[0].offset,
            end: self.extents[self.extents.len() - 1].end(),
            disk: self.header.disk,
            record_len: (CHUNK_HEADER_LEN + self.extents.len() * EXTENT_LEN + self.payload.len())
                as u32,
            digest: None,
        }
    }
}

/// A record of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The descriptions of all disks of the image (format 1.1): the first record after the
    /// file header, present in images of two or more disks, so that a reader of a stream
    /// knows every disk before the first chunk. The reader checks that exactly `disks`
    /// `DISK` records follow.
    DiskList {
        /// Number of disks.
        disks: u32,
        /// A JSON array of `disks` disk descriptions (see `DiskRecord` in the manifest).
        json: Vec<u8>,
    },
    /// Disk `index` starts; `json` describes it.
    Disk {
        /// Disk index.
        index: u32,
        /// The description (see `DiskRecord` in the manifest).
        json: Vec<u8>,
    },
    /// A data chunk.
    Chunk(EncodedChunk),
    /// An index segment (already compared with the chunks it lists).
    Index {
        /// Number of entries.
        entries: u32,
    },
    /// The index directory (already compared with the segments read).
    Directory {
        /// Number of segments.
        segments: u32,
    },
    /// The manifest JSON.
    Manifest(Vec<u8>),
    /// The tail; nothing follows.
    Tail(Tail),
}

/// Reads a container front to back from any `Read` (a file, a pipe, a download), verifying
/// the header, every record CRC, chunk order, the index against the chunks, and that nothing
/// follows the tail. Memory is bounded by one chunk and one index segment.
pub struct StreamReader<R> {
    r: R,
    pos: u64,
    header: FileHeader,
    next_seq: u64,
    disk: Option<u32>,
    last_end: u64,
    segment: Vec<IndexEntry>,
    directory: Vec<DirEntry>,
    segment_first_seq: u64,
    directory_pos: Option<u64>,
    manifest_pos: Option<u64>,
    /// Disks announced by a `DLST` record.
    disk_list: Option<u32>,
    data_bytes: u64,
    done: bool,
    spare: Vec<Vec<u8>>,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8], pos: u64, what: &'static str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(ContainerError::Truncated {
                    pos: pos + got as u64,
                    what,
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                let pos = pos + got as u64;
                return Err(match crate::seal::segment_error(&source) {
                    Some(s) => ContainerError::Tampered {
                        what,
                        pos,
                        segment: Some(s.segment),
                        chunk: None,
                    },
                    None => ContainerError::Io { pos, source },
                });
            }
        }
    }
    Ok(())
}

impl<R: Read> StreamReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut r: R) -> Result<Self> {
        let mut b = [0u8; FILE_HEADER_LEN];
        read_full(&mut r, &mut b, 0, "file header")?;
        let header = FileHeader::decode(&b)?;
        Ok(StreamReader {
            r,
            pos: FILE_HEADER_LEN as u64,
            header,
            next_seq: 0,
            disk: None,
            last_end: 0,
            segment: Vec::new(),
            directory: Vec::new(),
            segment_first_seq: 0,
            directory_pos: None,
            manifest_pos: None,
            disk_list: None,
            data_bytes: 0,
            done: false,
            spare: Vec::new(),
        })
    }

    /// Gives back a chunk's payload buffer for reuse by a later chunk (saves an allocation
    /// and a clearing per chunk).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 8 {
            self.spare.push(buf);
        }
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Current position in the stream.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn read(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        read_full(&mut self.r, buf, self.pos, what).map_err(|e| match e {
            ContainerError::Tampered {
                what, pos, segment, ..
            } => ContainerError::Tampered {
                what,
                pos,
                segment,
                chunk: what.starts_with("chunk").then_some(self.next_seq),
            },
            e => e,
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn invalid(&self, pos: u64, what: &'static str, detail: String) -> ContainerError {
        ContainerError::Invalid { what, pos, detail }
    }

    /// Reads the body of a DISK/INDX/IDXD/MANI record, bounded by `max`.
    fn body(
        &mut self,
        len: u64,
        max: u64,
        crc: u32,
        pos: u64,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        if len > max {
            return Err(self.invalid(pos, what, format!("length {len} exceeds {max}")));
        }
        let mut b = vec![0u8; len as usize];
        self.read(&mut b, what)?;
        if crc32fast::hash(&b) != crc {
            return Err(ContainerError::Checksum {
                what,
                pos,
                chunk: None,
            });
        }
        Ok(b)
    }

    /// The next record, or `None` after the tail.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let pos = self.pos;
        let mut t = [0u8; 4];
        self.read(&mut t, "record tag")?;
        match t {
            tag::CHUNK => self.chunk(pos).map(|c| Some(Record::Chunk(c))),
            tag::TAIL => {
                let mut b = [0u8; TAIL_LEN];
                b[0..4].copy_from_slice(&t);
                self.read(&mut b[4..], "tail")?;
                let tail = Tail::decode(&b, pos)?;
                self.check_tail(&tail, pos)?;
                let mut probe = [0u8; 1];
                loop {
                    match self.r.read(&mut probe) {
                        Ok(0) => break,
                        Ok(_) => {
                            return Err(self.invalid(
                                pos + TAIL_LEN as u64,
                                "stream end",
                                "bytes follow the tail".into(),
                            ))
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(source) => {
                            return Err(ContainerError::Io {
                                pos: self.pos,
                                source,
                            })
                        }
                    }
                }
                self.done = true;
                Ok(Some(Record::Tail(tail)))
            }
            tag::DISK | tag::DISK_LIST | tag::INDEX | tag::DIRECTORY | tag::MANIFEST => {
                let mut h = [0u8; RECORD_HEADER_LEN];
                h[0..4].copy_from_slice(&t);
                self.read(&mut h[4..], "record header")?;
                let rh = RecordHeader::decode(&h, pos, "record header")?;
                self.other(rh, pos).map(Some)
            }
            _ => Err(ContainerError::BadMagic {
                pos,
                what: "record",
                found: t,
            }),
        }
    }

    fn chunk(&mut self, pos: u64) -> Result<EncodedChunk> {
        if self.manifest_pos.is_some() || self.directory_pos.is_some() {
            return Err(self.invalid(pos, "chunk", "chunk after the index directory".into()));
        }
        let mut fixed = [0u8; CHUNK_HEADER_LEN];
        fixed[0..4].copy_from_slice(&tag::CHUNK);
        self.read(&mut fixed[4..], "chunk header")?;
        let header = ChunkHeader::decode(&fixed, pos, self.header.chunk_size)?;
        let mut table = vec![0u8; header.extent_count as usize * EXTENT_LEN];
        self.read(&mut table, "chunk extent table")?;
        let extents = header.decode_extents(&fixed, &table, pos)?;
        if Some(header.disk) != self.disk {
            return Err(self.invalid(
                pos,
                "chunk",
                format!(
                    "chunk {} of disk {} outside that disk's section",
                    header.seq, header.disk
                ),
            ));
        }
        if header.seq != self.next_seq {
            return Err(self.invalid(
                pos,
                "chunk sequence",
                format!(
                    "chunk {} where chunk {} was expected (a chunk is missing)",
                    header.seq, self.next_seq
                ),
            ));
        }
        if extents[0].offset < self.last_end {
            return Err(self.invalid(
                pos,
                "chunk",
                format!("chunk {} goes back on the disk", header.seq),
            ));
        }
        let mut payload = self.spare.pop().unwrap_or_default();
        let want = header.payload_len as usize;
        if payload.len() > want {
            payload.truncate(want);
        } else {
            payload.resize(want, 0);
        }
        self.read(&mut payload, "chunk payload")?;
        if crc32fast::hash(&payload) != header.payload_crc {
            return Err(ContainerError::Checksum {
                what: "chunk payload",
                pos,
                chunk: Some(header.seq),
            });
        }
        self.next_seq += 1;
        self.last_end = extents[extents.len() - 1].end();
        self.data_bytes += u64::from(header.data_len);
        let c = EncodedChunk {
            pos,
            header,
            extents,
            payload,
        };
        if self.segment.is_empty() {
            self.segment_first_seq = header.seq;
        }
        if self.segment.len() as u32 >= MAX_INDEX_ENTRIES {
            return Err(self.invalid(
                pos,
                "index",
                "too many chunks without an index segment".into(),
            ));
        }
        self.segment.push(c.index_entry());
        Ok(c)
    }

    fn other(&mut self, rh: RecordHeader, pos: u64) -> Result<Record> {
        match rh.tag {
            tag::DISK_LIST => {
                if pos != FILE_HEADER_LEN as u64 || rh.a == 0 {
                    return Err(self.invalid(
                        pos,
                        "disk list",
                        "not the first record, or an empty list".into(),
                    ));
                }
                let json =
                    self.body(rh.b, u64::from(MAX_JSON_LEN), rh.body_crc, pos, "disk list")?;
                self.disk_list = Some(rh.a);
                Ok(Record::DiskList { disks: rh.a, json })
            }
            tag::DISK => {
                let expected = self.disk.map_or(0, |d| d + 1);
                if rh.a != expected || self.directory_pos.is_some() {
                    return Err(self.invalid(
                        pos,
                        "disk record",
                        format!("disk {} where disk {expected} was expected", rh.a),
                    ));
                }
                if self.disk_list.is_some_and(|n| rh.a >= n) {
                    return Err(self.invalid(
                        pos,
                        "disk record",
                        format!(
                            "disk {} is not in the disk list at the start of the stream",
                            rh.a
                        ),
                    ));
                }
                let json = self.body(
                    rh.b,
                    u64::from(MAX_JSON_LEN),
                    rh.body_crc,
                    pos,
                    "disk record",
                )?;
                self.disk = Some(rh.a);
                self.last_end = 0;
                Ok(Record::Disk { index: rh.a, json })
            }
            tag::INDEX => {
                if rh.a == 0 || self.directory_pos.is_some() {
                    return Err(self.invalid(
                        pos,
                        "index segment",
                        "empty or after the index directory".into(),
                    ));
                }
                let entry_len = self.header.index_entry_len();
                let body = self.body(
                    u64::from(rh.a) * entry_len as u64,
                    u64::from(MAX_INDEX_ENTRIES) * entry_len as u64,
                    rh.body_crc,
                    pos,
                    "index segment",
                )?;
                let seen = std::mem::take(&mut self.segment);
                // The digests are compared with the data by whoever decompresses it (`check`,
                // the random-access reader); a sequential read sees only where chunks lie.
                let listed: Vec<IndexEntry> = body
                    .chunks_exact(entry_len)
                    .map(|b| IndexEntry::decode(b).located())
                    .collect();
                if listed != seen || rh.b != self.segment_first_seq {
                    return Err(self.invalid(
                        pos,
                        "index segment",
                        "does not match the chunks before it".into(),
                    ));
                }
                let first = seen.first().copied();
                if let Some(f) = first {
                    self.directory.push(DirEntry {
                        pos,
                        first_seq: rh.b,
                        first_disk: f.disk,
                        entries: rh.a,
                        first_offset: f.first,
                    });
                }
                if self.directory.len() as u32 > MAX_INDEX_ENTRIES {
                    return Err(self.invalid(pos, "index directory", "too many segments".into()));
                }
                Ok(Record::Index { entries: rh.a })
            }
            tag::DIRECTORY => {
                if self.directory_pos.is_some() || rh.b != 0 {
                    return Err(self.invalid(
                        pos,
                        "index directory",
                        "repeated, or reserved field not zero".into(),
                    ));
                }
                if !self.segment.is_empty() {
                    return Err(self.invalid(
                        pos,
                        "index directory",
                        "chunks are not covered by an index segment".into(),
                    ));
                }
                let disks = self.disk.map_or(0, |d| d + 1);
                if let Some(n) = self.disk_list.filter(|n| *n != disks) {
                    return Err(self.invalid(
                        pos,
                        "index directory",
                        format!("the disk list announces {n} disk(s), the stream holds {disks}"),
                    ));
                }
                let body = self.body(
                    u64::from(rh.a) * DIR_ENTRY_LEN as u64,
                    u64::from(MAX_INDEX_ENTRIES) * DIR_ENTRY_LEN as u64,
                    rh.body_crc,
                    pos,
                    "index directory",
                )?;
                let listed: Vec<DirEntry> = body
                    .chunks_exact(DIR_ENTRY_LEN)
                    .map(DirEntry::decode)
                    .collect();
                if listed != self.directory {
                    return Err(self.invalid(
                        pos,
                        "index directory",
                        "does not match the index segments".into(),
                    ));
                }
                self.directory = Vec::new();
                self.directory_pos = Some(pos);
                Ok(Record::Directory { segments: rh.a })
            }
            _ => {
                if self.directory_pos.is_none() || self.manifest_pos.is_some() || rh.a != 0 {
                    return Err(self.invalid(pos, "manifest", "manifest out of place".into()));
                }
                let json =
                    self.body(rh.b, u64::from(MAX_JSON_LEN), rh.body_crc, pos, "manifest")?;
                self.manifest_pos = Some(pos);
                Ok(Record::Manifest(json))
            }
        }
    }

    fn check_tail(&self, tail: &Tail, pos: u64) -> Result<()> {
        let ok = Some(tail.directory_pos) == self.directory_pos
            && Some(tail.manifest_pos) == self.manifest_pos
            && tail.chunks == self.next_seq
            && tail.data_bytes == self.data_bytes
            && tail.image_id == self.header.image_id;
        if ok {
            Ok(())
        } else {
            Err(self.invalid(pos, "tail", "does not match the records before it".into()))
        }
    }
}
