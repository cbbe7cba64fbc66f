//! Random access through the trailing index: find one disk block without reading everything.

use crate::error::{ContainerError, Result};
use crate::format::*;
use crate::reader::EncodedChunk;
use lifeboat_fs::ReadAt;

/// A complete container opened for random access (a file or any other [`ReadAt`], owned or
/// borrowed: `IndexedImage::open(&bytes)` or `IndexedImage::open(source)`).
pub struct IndexedImage<R: ReadAt> {
    src: R,
    header: FileHeader,
    tail: Tail,
    directory: Vec<DirEntry>,
    /// The segment [`find`](Self::find) and [`find_from`](Self::find_from) read last: reads
    /// that go forward through a disk ask for the same one again and again.
    last_segment: std::sync::Mutex<Option<(usize, std::sync::Arc<Vec<IndexEntry>>)>>,
}

fn read(src: &dyn ReadAt, pos: u64, len: usize, what: &'static str) -> Result<Vec<u8>> {
    if pos.checked_add(len as u64).is_none_or(|e| e > src.len()) {
        return Err(ContainerError::Truncated { pos, what });
    }
    let mut b = vec![0u8; len];
    src.read_exact_at(&mut b, pos)
        .map_err(|source| ContainerError::Io { pos, source })?;
    Ok(b)
}

fn record(
    src: &dyn ReadAt,
    pos: u64,
    want: [u8; 4],
    what: &'static str,
    max_body: u64,
    body_len: impl Fn(&RecordHeader) -> u64,
) -> Result<(RecordHeader, Vec<u8>)> {
    let h = read(src, pos, RECORD_HEADER_LEN, what)?;
    if h[0..4] != want {
        return Err(ContainerError::BadMagic {
            pos,
            what,
            found: [h[0], h[1], h[2], h[3]],
        });
    }
    let rh = RecordHeader::decode(&h, pos, what)?;
    let len = body_len(&rh);
    if len > max_body {
        return Err(ContainerError::Invalid {
            what,
            pos,
            detail: format!("length {len} exceeds {max_body}"),
        });
    }
    let body = read(src, pos + RECORD_HEADER_LEN as u64, len as usize, what)?;
    if crc32fast::hash(&body) != rh.body_crc {
        return Err(ContainerError::Checksum {
            what,
            pos,
            chunk: None,
        });
    }
    Ok((rh, body))
}

impl<R: ReadAt> IndexedImage<R> {
    /// Opens a complete container: reads the header, the tail and the index directory.
    pub fn open(src: R) -> Result<Self> {
        let header = FileHeader::decode(&read(&src, 0, FILE_HEADER_LEN, "file header")?)?;
        let len = src.len();
        if len < (FILE_HEADER_LEN + TAIL_LEN) as u64 {
            return Err(ContainerError::Truncated {
                pos: len,
                what: "tail",
            });
        }
        let tpos = len - TAIL_LEN as u64;
        let tail = Tail::decode(&read(&src, tpos, TAIL_LEN, "tail")?, tpos)?;
        if tail.image_id != header.image_id
            || tail.directory_pos >= tpos
            || tail.manifest_pos >= tpos
        {
            return Err(ContainerError::Invalid {
                what: "tail",
                pos: tpos,
                detail: "does not match the header".into(),
            });
        }
        let (rh, body) = record(
            &src,
            tail.directory_pos,
            tag::DIRECTORY,
            "index directory",
            u64::from(MAX_INDEX_ENTRIES) * DIR_ENTRY_LEN as u64,
            |rh| u64::from(rh.a) * DIR_ENTRY_LEN as u64,
        )?;
        let directory = body
            .chunks_exact(DIR_ENTRY_LEN)
            .map(DirEntry::decode)
            .collect::<Vec<_>>();
        debug_assert_eq!(directory.len(), rh.a as usize);
        Ok(IndexedImage {
            src,
            header,
            tail,
            directory,
            last_segment: std::sync::Mutex::new(None),
        })
    }

    /// What the container is read from.
    pub fn source(&self) -> &R {
        &self.src
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The tail.
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// The manifest JSON stored in the container.
    pub fn manifest(&self) -> Result<Vec<u8>> {
        let (_, body) = record(
            &self.src,
            self.tail.manifest_pos,
            tag::MANIFEST,
            "manifest",
            u64::from(MAX_JSON_LEN),
            |rh| rh.b,
        )?;
        Ok(body)
    }

    /// The entries of index segment `i`.
    pub fn segment(&self, i: usize) -> Result<Vec<IndexEntry>> {
        let d = self
            .directory
            .get(i)
            .ok_or_else(|| ContainerError::Usage(format!("no index segment {i}")))?;
        let (rh, body) = record(
            &self.src,
            d.pos,
            tag::INDEX,
            "index segment",
            u64::from(MAX_INDEX_ENTRIES) * self.header.index_entry_len() as u64,
            |rh| u64::from(rh.a) * self.header.index_entry_len() as u64,
        )?;
        if rh.a != d.entries || rh.b != d.first_seq {
            return Err(ContainerError::Invalid {
                what: "index segment",
                pos: d.pos,
                detail: "does not match the index directory".into(),
            });
        }
        Ok(body
            .chunks_exact(self.header.index_entry_len())
            .map(IndexEntry::decode)
            .collect())
    }

    /// The image digest (`docs/FORMAT.md` §6.1) computed from the index alone — the chunk
    /// digests of its entries and the `DISK` records between the chunks — without reading or
    /// decompressing any chunk; `None` for a stream before format 3 (no digests in its
    /// index). Equal to the manifest's `digest` when the index is the one the writer made:
    /// an operator who compares it with the digest noted at save time can then trust every
    /// chunk [`IndexedImage::read_data`] verifies against its entry.
    pub fn image_digest(&self) -> Result<Option<String>> {
        if !self.header.has_digests() {
            return Ok(None);
        }
        let mut digest = crate::digest::ImageDigest::default();
        let mut at = FILE_HEADER_LEN as u64;
        for i in 0..self.directory.len() {
            for e in self.segment(i)?.iter() {
                self.digest_records_between(&mut digest, at, e.pos)?;
                let d = e.digest.as_ref().ok_or(ContainerError::Invalid {
                    what: "index entry",
                    pos: e.pos,
                    detail: "no chunk digest".into(),
                })?;
                digest.chunk(d);
                at = e.pos + u64::from(e.record_len);
            }
        }
        self.digest_records_between(&mut digest, at, self.tail.directory_pos)?;
        Ok(Some(digest.hex()))
    }

    /// Walks the records in `[at, end)`, a stretch between two chunks the index lists (or
    /// after the last one): each must be a `DLST`, `DISK` or `INDX` record (a chunk here would
    /// be one the index leaves out); `DISK` records go into `digest`.
    fn digest_records_between(
        &self,
        digest: &mut crate::digest::ImageDigest,
        mut at: u64,
        end: u64,
    ) -> Result<()> {
        let misplaced = |pos: u64, detail: String| ContainerError::Invalid {
            what: "index",
            pos,
            detail,
        };
        if at > end {
            return Err(misplaced(
                end,
                format!("the index lists records that overlap or are out of order (a record ends at {at})"),
            ));
        }
        while at < end {
            let h = read(&self.src, at, RECORD_HEADER_LEN, "record")?;
            let found = [h[0], h[1], h[2], h[3]];
            let rh = RecordHeader::decode(&h, at, "record")?;
            let body_len = match found {
                tag::DISK | tag::DISK_LIST => {
                    if rh.b > u64::from(MAX_JSON_LEN) {
                        return Err(misplaced(at, format!("JSON length {} is too large", rh.b)));
                    }
                    rh.b
                }
                tag::INDEX => u64::from(rh.a) * self.header.index_entry_len() as u64,
                _ => {
                    return Err(misplaced(
                        at,
                        format!(
                            "a {} record lies between the chunks the index lists (a chunk the index leaves out?)",
                            String::from_utf8_lossy(&found)
                        ),
                    ))
                }
            };
            let next = at + RECORD_HEADER_LEN as u64 + body_len;
            if next > end {
                return Err(misplaced(
                    at,
                    "a record runs into the next chunk the index lists".into(),
                ));
            }
            if found == tag::DISK {
                let body = read(
                    &self.src,
                    at + RECORD_HEADER_LEN as u64,
                    body_len as usize,
                    "disk record",
                )?;
                if crc32fast::hash(&body) != rh.body_crc {
                    return Err(ContainerError::Checksum {
                        what: "disk record",
                        pos: at,
                        chunk: None,
                    });
                }
                digest.disk(rh.a, &body);
            }
            at = next;
        }
        Ok(())
    }

    /// Reads the chunk an index entry points to, decompresses it into `out` (its data, extent
    /// after extent) and verifies it: the record's CRCs, the data's CRC32 and — in a format 3
    /// stream — the chunk digest of the entry (`ContainerError::Checksum` "chunk digest":
    /// the data is not what the writer indexed, even if every CRC matches). When the chunk
    /// was stored uncompressed its payload was moved into `out`, and the returned chunk's
    /// payload is `out`'s former buffer.
    pub fn read_data(&self, e: &IndexEntry, out: &mut Vec<u8>) -> Result<EncodedChunk> {
        let mut c = self.read_chunk(e)?;
        c.take_decoded(out)?;
        if let Some(want) = &e.digest {
            let got = crate::digest::chunk_digest(c.header.disk, c.header.seq, &c.extents, out);
            if &got != want {
                return Err(ContainerError::Checksum {
                    what: "chunk digest",
                    pos: e.pos,
                    chunk: Some(c.header.seq),
                });
            }
        }
        Ok(c)
    }

    /// Segment `i`, from the one-segment cache or the container.
    fn segment_cached(&self, i: usize) -> Result<std::sync::Arc<Vec<IndexEntry>>> {
        let mut last = self.last_segment.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((j, seg)) = last.as_ref() {
            if *j == i {
                return Ok(std::sync::Arc::clone(seg));
            }
        }
        let seg = std::sync::Arc::new(self.segment(i)?);
        *last = Some((i, std::sync::Arc::clone(&seg)));
        Ok(seg)
    }

    /// Number of index segments.
    pub fn segments(&self) -> usize {
        self.directory.len()
    }

    /// The chunk that holds byte `offset` of disk `disk`, if that byte was stored.
    pub fn find(&self, disk: u32, offset: u64) -> Result<Option<IndexEntry>> {
        let key = (disk, offset);
        let i = self
            .directory
            .partition_point(|d| (d.first_disk, d.first_offset) <= key);
        if i == 0 {
            return Ok(None);
        }
        let seg = self.segment_cached(i - 1)?;
        let j = seg.partition_point(|e| (e.disk, e.first) <= key);
        if j == 0 {
            return Ok(None);
        }
        let e = seg[j - 1];
        Ok((e.disk == disk && offset < e.end).then_some(e))
    }

    /// The first chunk of disk `disk` that holds a byte at or after `offset` (its `end` is
    /// beyond `offset`; its `first` may lie after `offset`), if any.
    pub fn find_from(&self, disk: u32, offset: u64) -> Result<Option<IndexEntry>> {
        let key = (disk, offset);
        let mut i = self
            .directory
            .partition_point(|d| (d.first_disk, d.first_offset) <= key)
            .saturating_sub(1);
        while i < self.directory.len() {
            let seg = self.segment_cached(i)?;
            let j = seg.partition_point(|e| (e.disk, e.end) <= key);
            if let Some(e) = seg.get(j) {
                return Ok((e.disk == disk).then_some(*e));
            }
            i += 1;
        }
        Ok(None)
    }

    /// Reads and verifies the chunk record an index entry points to.
    pub fn read_chunk(&self, e: &IndexEntry) -> Result<EncodedChunk> {
        if (e.record_len as usize) < CHUNK_HEADER_LEN {
            return Err(ContainerError::Invalid {
                what: "index entry",
                pos: e.pos,
                detail: format!(
                    "record length {} is below the chunk header size",
                    e.record_len
                ),
            });
        }
        // The largest chunk record this image's chunk size allows: a record length beyond it
        // is refused before anything is allocated (an image on a network share can be large
        // enough for a 4 GiB read to pass the end-of-file check).
        let cs = self.header.chunk_size;
        let max_record = CHUNK_HEADER_LEN as u64
            + u64::from(cs.min(MAX_EXTENTS)) * EXTENT_LEN as u64
            + u64::from(zstd_bound(cs).max(cs));
        if u64::from(e.record_len) > max_record {
            return Err(ContainerError::Invalid {
                what: "index entry",
                pos: e.pos,
                detail: format!(
                    "record length {} is above the {max_record} bytes a chunk of {cs} bytes can take",
                    e.record_len
                ),
            });
        }
        let rec = read(&self.src, e.pos, e.record_len as usize, "chunk")?;
        if rec[0..4] != tag::CHUNK {
            return Err(ContainerError::BadMagic {
                pos: e.pos,
                what: "chunk",
                found: [rec[0], rec[1], rec[2], rec[3]],
            });
        }
        let header = ChunkHeader::decode(&rec[..CHUNK_HEADER_LEN], e.pos, self.header.chunk_size)?;
        let tend = CHUNK_HEADER_LEN + header.extent_count as usize * EXTENT_LEN;
        if tend + header.payload_len as usize != rec.len() {
            return Err(ContainerError::Invalid {
                what: "chunk",
                pos: e.pos,
                detail: "record length differs from the index".into(),
            });
        }
        let extents = header.decode_extents(
            &rec[..CHUNK_HEADER_LEN],
            &rec[CHUNK_HEADER_LEN..tend],
            e.pos,
        )?;
        let payload = rec[tend..].to_vec();
        if crc32fast::hash(&payload) != header.payload_crc {
            return Err(ContainerError::Checksum {
                what: "chunk payload",
                pos: e.pos,
                chunk: Some(header.seq),
            });
        }
        Ok(EncodedChunk {
            pos: e.pos,
            header,
            extents,
            payload,
        })
    }

    /// Reads `buf.len()` bytes of disk `disk` at `offset`; the bytes must all have been stored.
    /// Returns false (and leaves `buf` partly filled) when some byte was not stored.
    pub fn read_disk(&self, disk: u32, offset: u64, buf: &mut [u8]) -> Result<bool> {
        let mut done = 0usize;
        let mut data = Vec::new();
        while done < buf.len() {
            let at = offset + done as u64;
            let Some(e) = self.find(disk, at)? else {
                return Ok(false);
            };
            let c = self.read_data(&e, &mut data)?;
            let mut dpos = 0u64;
            let mut progressed = false;
            for x in &c.extents {
                if at >= x.offset && at < x.end() {
                    let skip = (at - x.offset) as usize;
                    let n = ((x.len as usize) - skip).min(buf.len() - done);
                    let s = dpos as usize + skip;
                    buf[done..done + n].copy_from_slice(&data[s..s + n]);
                    done += n;
                    progressed = true;
                    break;
                }
                dpos += x.len;
            }
            if !progressed {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
