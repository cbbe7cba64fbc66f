//! The sequential, parallel-compressing container writer.

use crate::digest::{chunk_digest, ImageDigest};
use crate::error::{ContainerError, Result};
use crate::format::*;
use crossbeam_channel::{bounded, Receiver, Sender};
use lifeboat_fs::Extent;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::thread::JoinHandle;

/// Settings of an [`ImageWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Largest uncompressed data length of a chunk.
    pub chunk_size: u32,
    /// zstd level (1..=19); 0 stores every chunk uncompressed (codec `Stored`, all-zero
    /// chunks still `Zero`): for a stream that is decoded again at once, e.g. a converted
    /// Clonezilla image fed to a restore.
    pub level: i32,
    /// Compression threads (at least 1).
    pub threads: usize,
    /// Random image id stored in the header and tail.
    pub image_id: [u8; 16],
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            chunk_size: 4 << 20,
            level: 3,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            image_id: [0; 16],
            created_unix: 0,
        }
    }
}

/// Per-disk figures gathered while writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskTotals {
    /// Uncompressed bytes stored.
    pub data_bytes: u64,
    /// Payload bytes written (after compression).
    pub payload_bytes: u64,
    /// Chunk records.
    pub chunks: u64,
    /// Chunks that were all zeros (stored without payload).
    pub zero_chunks: u64,
    /// CRC32 of all stored data of the disk, in order.
    pub data_crc32: u32,
}

/// Figures of a finished container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Totals per disk index.
    pub disks: BTreeMap<u32, DiskTotals>,
    /// Chunk records in all.
    pub chunks: u64,
    /// Uncompressed bytes in all.
    pub data_bytes: u64,
    /// Container bytes before the manifest record.
    pub bytes_before_manifest: u64,
    /// Container bytes in all.
    pub total_bytes: u64,
    /// The image digest (`docs/FORMAT.md` §6.1), 64 hex digits; set by `finish`.
    pub digest: String,
}

struct Job {
    order: u64,
    seq: u64,
    disk: u32,
    extents: Vec<Extent>,
    data: Vec<u8>,
}

struct Encoded {
    seq: u64,
    disk: u32,
    extents: Vec<Extent>,
    codec: Codec,
    data_len: u32,
    data_crc: u32,
    digest: [u8; 32],
    payload: Vec<u8>,
}

enum Item {
    Disk(u32, Vec<u8>),
    Chunk(Encoded),
    Failed(ContainerError),
}

struct Pending {
    disk: u32,
    extents: Vec<Extent>,
    /// A whole chunk's worth of buffer (recycled, so its bytes are stale past `len`).
    data: Vec<u8>,
    /// Bytes filled so far.
    len: usize,
}

struct Output<W> {
    out: W,
    pos: u64,
    summary: Summary,
    segment: Vec<IndexEntry>,
    segment_first_seq: u64,
    directory: Vec<DirEntry>,
    disk_crc: BTreeMap<u32, crc32fast::Hasher>,
    digest: ImageDigest,
}

impl<W: Write> Output<W> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(|source| ContainerError::Io {
            pos: self.pos,
            source,
        })?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn record(&mut self, tag: [u8; 4], a: u32, b: u64, body: &[u8]) -> Result<()> {
        let h = RecordHeader {
            tag,
            a,
            b,
            body_crc: crc32fast::hash(body),
        };
        self.write(&h.encode())?;
        self.write(body)
    }

    fn chunk(&mut self, c: Encoded) -> Result<()> {
        let header = ChunkHeader {
            disk: c.disk,
            seq: c.seq,
            extent_count: c.extents.len() as u32,
            data_len: c.data_len,
            payload_len: c.payload.len() as u32,
            codec: c.codec,
            data_crc: c.data_crc,
            payload_crc: crc32fast::hash(&c.payload),
        };
        let head = header.encode(&c.extents);
        let entry = IndexEntry {
            pos: self.pos,
            first: c.extents[0].offset,
            end: c.extents[c.extents.len() - 1].end(),
            disk: c.disk,
            record_len: (head.len() + c.payload.len()) as u32,
            digest: Some(c.digest),
        };
        self.write(&head)?;
        self.write(&c.payload)?;
        if self.segment.is_empty() {
            self.segment_first_seq = c.seq;
        }
        self.segment.push(entry);
        let t = self.summary.disks.entry(c.disk).or_default();
        t.data_bytes += u64::from(c.data_len);
        t.payload_bytes += c.payload.len() as u64;
        t.chunks += 1;
        if c.codec == Codec::Zero {
            t.zero_chunks += 1;
        }
        self.disk_crc
            .entry(c.disk)
            .or_default()
            .combine(&crc32fast::Hasher::new_with_initial_len(
                c.data_crc,
                u64::from(c.data_len),
            ));
        self.digest.chunk(&c.digest);
        self.summary.chunks += 1;
        self.summary.data_bytes += u64::from(c.data_len);
        if self.segment.len() as u32 >= INDEX_SEGMENT_CHUNKS {
            self.flush_segment()?;
        }
        Ok(())
    }

    fn flush_segment(&mut self) -> Result<()> {
        if self.segment.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(self.segment.len() * INDEX_ENTRY_DIGEST_LEN);
        for e in &self.segment {
            e.encode(&mut body);
        }
        let first = self.segment[0];
        self.directory.push(DirEntry {
            pos: self.pos,
            first_seq: self.segment_first_seq,
            first_disk: first.disk,
            entries: self.segment.len() as u32,
            first_offset: first.first,
        });
        let n = self.segment.len() as u32;
        let first_seq = self.segment_first_seq;
        self.segment.clear();
        self.record(tag::INDEX, n, first_seq, &body)
    }
}

/// Writes a container strictly sequentially into any `Write` (a file, a pipe, an upload).
///
/// The caller announces each disk with [`ImageWriter::begin_disk`], then hands it the used
/// extents of that disk in increasing order with [`ImageWriter::add_extent`]; the writer packs
/// them into chunks, compresses chunks on `threads` worker threads, and a writer thread puts
/// them out in order. Memory is bounded by a few chunks per thread, whatever the disk size.
pub struct ImageWriter<W: Write + Send + 'static> {
    opts: WriterOptions,
    order: u64,
    seq: u64,
    pending: Option<Pending>,
    job_tx: Option<Sender<Job>>,
    item_tx: Option<Sender<(u64, Item)>>,
    /// One token per chunk that may be in flight (queued, compressing, or waiting to be
    /// written in order); the output thread hands a token back for every chunk it writes.
    /// This bounds memory even when one worker is much slower than the others.
    permits: Receiver<()>,
    free_rx: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    output: Option<JoinHandle<Result<Output<W>>>>,
    current_disk: Option<u32>,
    disk_end: u64,
    /// Disks announced by the disk list, if one was written.
    announced: Option<u32>,
}

impl<W: Write + Send + 'static> ImageWriter<W> {
    /// Writes the file header (format 1.0) and starts the worker threads.
    pub fn new(out: W, opts: WriterOptions) -> Result<Self> {
        Self::start(out, opts, None)
    }

    /// Like [`ImageWriter::new`], and writes a disk list record (`DLST`, format 1.1) right
    /// after the header: `list_json` describes all `disks` disks, so that a reader of the
    /// stream knows every disk before the first data. Exactly `disks` disks must then be
    /// begun before [`ImageWriter::finish`].
    pub fn with_disk_list(
        out: W,
        opts: WriterOptions,
        disks: u32,
        list_json: Vec<u8>,
    ) -> Result<Self> {
        if disks == 0 {
            return Err(ContainerError::Usage("a disk list needs a disk".into()));
        }
        if list_json.len() as u64 > u64::from(MAX_JSON_LEN) {
            return Err(ContainerError::Usage("disk list too large".into()));
        }
        Self::start(out, opts, Some((disks, list_json)))
    }

    fn start(out: W, opts: WriterOptions, list: Option<(u32, Vec<u8>)>) -> Result<Self> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&opts.chunk_size) {
            return Err(ContainerError::Usage(format!(
                "chunk size {} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}",
                opts.chunk_size
            )));
        }
        let threads = opts.threads.max(1);
        let (job_tx, job_rx) = bounded::<Job>(threads * 2);
        let (item_tx, item_rx) = bounded::<(u64, Item)>(threads * 2);
        let in_flight = threads * 3 + 2;
        let (permit_tx, permits) = bounded::<()>(in_flight);
        for _ in 0..in_flight {
            permit_tx.send(()).expect("the permit channel has room");
        }
        let (free_tx, free_rx) = bounded::<Vec<u8>>(threads + 2);
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let job_rx = job_rx.clone();
            let item_tx = item_tx.clone();
            let free_tx = free_tx.clone();
            let level = opts.level;
            workers.push(std::thread::spawn(move || {
                compress_worker(level, job_rx, item_tx, free_tx)
            }));
        }
        let header = FileHeader {
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            chunk_size: opts.chunk_size,
            image_id: opts.image_id,
            created_unix: opts.created_unix,
        };
        let mut output = Output {
            out,
            pos: 0,
            summary: Summary::default(),
            segment: Vec::new(),
            segment_first_seq: 0,
            directory: Vec::new(),
            disk_crc: BTreeMap::new(),
            digest: ImageDigest::default(),
        };
        output.write(&header.encode())?;
        let announced = match list {
            Some((n, json)) => {
                output.record(tag::DISK_LIST, n, json.len() as u64, &json)?;
                Some(n)
            }
            None => None,
        };
        let output = std::thread::spawn(move || output_thread(output, item_rx, permit_tx));
        Ok(ImageWriter {
            opts,
            order: 0,
            seq: 0,
            pending: None,
            job_tx: Some(job_tx),
            item_tx: Some(item_tx),
            permits,
            free_rx,
            workers,
            output: Some(output),
            current_disk: None,
            disk_end: 0,
            announced,
        })
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.opts.chunk_size
    }

    /// Starts disk `index` (indices increase by one from 0) and writes its description record.
    pub fn begin_disk(&mut self, index: u32, description_json: Vec<u8>) -> Result<()> {
        let expected = self.current_disk.map_or(0, |d| d + 1);
        if index != expected {
            return Err(ContainerError::Usage(format!(
                "disk {index} begun, disk {expected} expected"
            )));
        }
        if description_json.len() as u64 > u64::from(MAX_JSON_LEN) {
            return Err(ContainerError::Usage("disk description too large".into()));
        }
        if self.announced.is_some_and(|n| index >= n) {
            return Err(ContainerError::Usage(format!(
                "disk {index} begun, but the disk list announced only {} disk(s)",
                self.announced.unwrap_or(0)
            )));
        }
        self.flush_pending()?;
        self.current_disk = Some(index);
        self.disk_end = 0;
        self.send_item(Item::Disk(index, description_json))
    }

    /// Adds the bytes of `extent` of the current disk. `fill(buf, offset)` must fill `buf`
    /// with the disk's bytes starting at `offset`; it is called with pieces of at most one
    /// chunk; `buf` holds stale bytes and must be overwritten entirely. Extents must come in increasing, non-overlapping order.
    pub fn add_extent(
        &mut self,
        extent: Extent,
        mut fill: impl FnMut(&mut [u8], u64) -> io::Result<()>,
    ) -> Result<()> {
        let disk = self
            .current_disk
            .ok_or_else(|| ContainerError::Usage("add_extent before begin_disk".into()))?;
        let cs = self.opts.chunk_size as usize;
        let mut off = extent.offset;
        let end = extent.end();
        if extent.offset < self.disk_end || extent.offset.checked_add(extent.len).is_none() {
            return Err(ContainerError::Usage(format!(
                "extent {extent:?} overlaps or precedes byte {} already written",
                self.disk_end
            )));
        }
        if extent.len > 0 {
            self.disk_end = end;
        }
        while off < end {
            if self.pending.is_none() {
                let mut data = self.free_rx.try_recv().unwrap_or_default();
                // A recycled buffer still holds its last chunk: only a shorter one needs to
                // grow, so full chunks are never cleared between uses.
                data.resize(cs, 0);
                self.pending = Some(Pending {
                    disk,
                    extents: Vec::new(),
                    data,
                    len: 0,
                });
            }
            let p = self.pending.as_mut().expect("pending chunk exists");
            let n = (end - off).min((cs - p.len) as u64) as usize;
            let start = p.len;
            fill(&mut p.data[start..start + n], off).map_err(|source| ContainerError::Source {
                offset: off,
                source,
            })?;
            p.len += n;
            match p.extents.last_mut() {
                Some(l) if l.end() == off => l.len += n as u64,
                _ => p.extents.push(Extent::new(off, n as u64)),
            }
            off += n as u64;
            if p.len == cs || p.extents.len() as u32 >= MAX_EXTENTS {
                self.flush_pending()?;
            }
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        if p.len == 0 {
            return Ok(());
        }
        p.data.truncate(p.len);
        let job = Job {
            order: self.order,
            seq: self.seq,
            disk: p.disk,
            extents: p.extents,
            data: p.data,
        };
        self.order += 1;
        self.seq += 1;
        if self.permits.recv().is_err() {
            return Err(self.failure());
        }
        let tx = self.job_tx.as_ref().expect("writer is open");
        if tx.send(job).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    fn send_item(&mut self, item: Item) -> Result<()> {
        let order = self.order;
        self.order += 1;
        let tx = self.item_tx.as_ref().expect("writer is open");
        if tx.send((order, item)).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// The output thread stopped early: join everything and return its error.
    fn failure(&mut self) -> ContainerError {
        self.job_tx = None;
        self.item_tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.output.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            _ => ContainerError::Usage("the container writer thread stopped unexpectedly".into()),
        }
    }

    /// Writes the last chunk, the index, the manifest made by `manifest(&summary)` and the
    /// tail, and returns the output and the final figures. The manifest is the last record
    /// before the tail: a stream that ends earlier is an incomplete image.
    pub fn finish(
        mut self,
        manifest: impl FnOnce(&Summary) -> Result<Vec<u8>>,
    ) -> Result<(W, Summary)> {
        let begun = self.current_disk.map_or(0, |d| d + 1);
        if let Some(n) = self.announced.filter(|n| *n != begun) {
            return Err(ContainerError::Usage(format!(
                "the disk list announced {n} disk(s), {begun} were written"
            )));
        }
        self.flush_pending()?;
        self.job_tx = None;
        self.item_tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut o = match self.output.take().map(|h| h.join()) {
            Some(Ok(r)) => r?,
            _ => {
                return Err(ContainerError::Usage(
                    "the container writer thread panicked".into(),
                ))
            }
        };
        o.flush_segment()?;
        let mut body = Vec::with_capacity(o.directory.len() * DIR_ENTRY_LEN);
        for d in &o.directory {
            d.encode(&mut body);
        }
        let directory_pos = o.pos;
        let n = o.directory.len() as u32;
        o.record(tag::DIRECTORY, n, 0, &body)?;
        for (disk, h) in std::mem::take(&mut o.disk_crc) {
            if let Some(t) = o.summary.disks.get_mut(&disk) {
                t.data_crc32 = h.finalize();
            }
        }
        o.summary.bytes_before_manifest = o.pos;
        o.summary.digest = std::mem::take(&mut o.digest).hex();
        let json = manifest(&o.summary)?;
        if json.len() as u64 > u64::from(MAX_JSON_LEN) {
            return Err(ContainerError::Usage("manifest too large".into()));
        }
        let manifest_pos = o.pos;
        o.record(tag::MANIFEST, 0, json.len() as u64, &json)?;
        let tail = Tail {
            directory_pos,
            manifest_pos,
            chunks: o.summary.chunks,
            data_bytes: o.summary.data_bytes,
            image_id: self.opts.image_id,
        };
        o.write(&tail.encode())?;
        o.out
            .flush()
            .map_err(|source| ContainerError::Io { pos: o.pos, source })?;
        o.summary.total_bytes = o.pos;
        Ok((o.out, o.summary))
    }
}

impl<W: Write + Send + 'static> Drop for ImageWriter<W> {
    fn drop(&mut self) {
        self.job_tx = None;
        self.item_tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
    }
}

/// True when every byte of `data` is zero.
pub fn is_zero(data: &[u8]) -> bool {
    data.chunks(4096)
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

fn compress_worker(
    level: i32,
    jobs: Receiver<Job>,
    items: Sender<(u64, Item)>,
    free: Sender<Vec<u8>>,
) {
    let fail = |j: &Job, source: std::io::Error| {
        let _ = items.send((
            j.order,
            Item::Failed(ContainerError::Codec {
                chunk: j.seq,
                pos: 0,
                source,
            }),
        ));
    };
    let mut compressor = match zstd::bulk::Compressor::new(level) {
        Ok(c) => c,
        Err(source) => {
            if let Ok(j) = jobs.recv() {
                fail(&j, source);
            }
            return;
        }
    };
    for j in jobs {
        let data_len = j.data.len() as u32;
        let data_crc = crc32fast::hash(&j.data);
        let digest = chunk_digest(j.disk, j.seq, &j.extents, &j.data);
        let (codec, payload) = if is_zero(&j.data) {
            let _ = free.try_send(j.data);
            (Codec::Zero, Vec::new())
        } else if level == 0 {
            (Codec::Stored, j.data)
        } else {
            let mut out = Vec::with_capacity(zstd_bound(data_len) as usize);
            match compressor.compress_to_buffer(&j.data, &mut out) {
                Ok(_) if out.len() < j.data.len() => {
                    let _ = free.try_send(j.data);
                    (Codec::Zstd, out)
                }
                Ok(_) => (Codec::Stored, j.data),
                Err(source) => {
                    fail(&j, source);
                    return;
                }
            }
        };
        let enc = Encoded {
            seq: j.seq,
            disk: j.disk,
            extents: j.extents,
            codec,
            data_len,
            data_crc,
            digest,
            payload,
        };
        if items.send((j.order, Item::Chunk(enc))).is_err() {
            return;
        }
    }
}

fn output_thread<W: Write>(
    mut o: Output<W>,
    items: Receiver<(u64, Item)>,
    permits: Sender<()>,
) -> Result<Output<W>> {
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, Item> = BTreeMap::new();
    for (order, item) in items {
        waiting.insert(order, item);
        while let Some(item) = waiting.remove(&next) {
            next += 1;
            match item {
                Item::Disk(index, json) => {
                    o.digest.disk(index, &json);
                    o.record(tag::DISK, index, json.len() as u64, &json)?
                }
                Item::Chunk(c) => {
                    o.chunk(c)?;
                    let _ = permits.try_send(());
                }
                Item::Failed(e) => return Err(e),
            }
        }
    }
    if let Some((_, Item::Failed(e))) = waiting.pop_first() {
        return Err(e);
    }
    if !waiting.is_empty() {
        return Err(ContainerError::Usage(
            "a compression worker stopped before finishing its chunk".into(),
        ));
    }
    Ok(o)
}
