//! Fuzzes the container readers: the input bytes are a container stream.
//!
//! 1. `StreamReader` reads record after record until the tail, an error or a bound; every
//!    chunk is decoded (`EncodedChunk::decode_into`).
//! 2. `decode_parallel` (2 threads) reads the same bytes and must deliver exactly the same
//!    records and succeed or fail where the sequential reader does.
//! 3. `IndexedImage::open` on the same bytes, then the manifest, every index segment, `find`
//!    at a few offsets, `read_chunk`, `read_data` (format 3: the chunk digest) and `read_disk`
//!    of what the index points to, and the image digest derived from the index.
//!
//! Each input is also run a second time with every checksum recomputed (header, records,
//! chunk payload and data CRCs, found by walking the records front to back and from the
//! tail), so that mutated lengths, extents, index entries and zstd payloads get past the CRCs
//! and reach the decoders.
//!
//! Nothing may panic or hang, and memory stays bounded (every length the readers allocate
//! for is capped by the format: 64 MiB per chunk, JSON body or index body). When
//! the stream reader accepted the whole container, the index must agree with it chunk for
//! chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_container::format::ChunkHeader;
use lifeboat_container::{
    decode_parallel, ContainerError, DecodeError, Decoded, IndexEntry, IndexedImage, Record,
    StreamReader,
};
use lifeboat_fs::Extent;
use std::sync::atomic::AtomicBool;

/// Upper bound on records read from one input (each record takes at least 24 bytes, so a
/// well-formed input can never reach it; it only guards against a reader that loops).
fn record_bound(len: usize) -> usize {
    len / 24 + 2
}

/// What a reader saw, in stream order; equal for the sequential and the parallel reader.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    DiskList(u32, Vec<u8>),
    Disk(u32, Vec<u8>),
    Chunk {
        header: ChunkHeader,
        pos: u64,
        extents: Vec<Extent>,
        data_crc: u32,
    },
    Manifest(Vec<u8>),
    End,
}

/// Sequential pass: the events up to the first error, and whether the tail was reached.
fn sequential(data: &[u8]) -> (Vec<Event>, bool, Vec<IndexEntry>) {
    let mut events = Vec::new();
    let mut entries = Vec::new();
    let Ok(mut r) = StreamReader::new(data) else {
        return (events, false, entries);
    };
    let mut buf = Vec::new();
    for _ in 0..record_bound(data.len()) {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => panic!("next_record returned None before the tail"),
            Err(_) => return (events, false, entries),
        };
        match rec {
            Record::Disk { index, json } => events.push(Event::Disk(index, json)),
            Record::Chunk(c) => {
                assert!(!c.extents.is_empty());
                assert!(r.position() > c.pos);
                if c.decode_into(&mut buf).is_err() {
                    return (events, false, entries);
                }
                assert_eq!(buf.len(), c.header.data_len as usize);
                let covered: u64 = c.extents.iter().map(|e| e.len).sum();
                assert_eq!(covered, u64::from(c.header.data_len));
                entries.push(c.index_entry());
                events.push(Event::Chunk {
                    header: c.header,
                    pos: c.pos,
                    extents: c.extents,
                    data_crc: crc32fast::hash(&buf),
                });
            }
            Record::Index { .. } | Record::Directory { .. } => {}
            Record::DiskList { disks, json } => events.push(Event::DiskList(disks, json)),
            Record::Manifest(json) => events.push(Event::Manifest(json)),
            Record::Tail(t) => {
                assert_eq!(t.chunks, entries.len() as u64);
                assert_eq!(r.position() as usize, data.len());
                assert!(matches!(r.next_record(), Ok(None)));
                events.push(Event::End);
                return (events, true, entries);
            }
        }
    }
    panic!(
        "stream did not end within {} records",
        record_bound(data.len())
    );
}

/// Parallel pass: the events delivered up to the first error, and whether it succeeded.
fn parallel(data: &[u8]) -> (Vec<Event>, bool) {
    let mut events = Vec::new();
    let Ok(r) = StreamReader::new(data) else {
        return (events, false);
    };
    let cancel = AtomicBool::new(false);
    let res = decode_parallel(r, 2, &cancel, |d| -> Result<(), ()> {
        events.push(match d {
            Decoded::DiskList { disks, json } => Event::DiskList(disks, json.to_vec()),
            Decoded::Disk { index, json } => Event::Disk(index, json.to_vec()),
            Decoded::Chunk { chunk, data } => {
                assert_eq!(data.len(), chunk.header.data_len as usize);
                Event::Chunk {
                    header: chunk.header,
                    pos: chunk.pos,
                    extents: chunk.extents.clone(),
                    data_crc: crc32fast::hash(data),
                }
            }
            Decoded::Manifest(json) => Event::Manifest(json.to_vec()),
            Decoded::End(_) => Event::End,
        });
        Ok(())
    });
    match res {
        Ok(()) => (events, true),
        Err(DecodeError::Container(_)) => (events, false),
        Err(DecodeError::Sink(())) => unreachable!("the sink never fails"),
    }
}

/// Random access pass. `verified` holds the chunks of a container the stream reader accepted
/// whole (empty otherwise); the index must then agree with them.
fn indexed(data: &[u8], complete: bool, streamed: &[Event], verified: &[IndexEntry]) {
    let volume: Vec<u8> = data.to_vec();
    let img = match IndexedImage::open(&volume) {
        Ok(img) => img,
        Err(e) => {
            assert!(
                !complete,
                "stream reader accepted what IndexedImage rejects: {e}"
            );
            return;
        }
    };
    let manifest = img.manifest();
    if complete {
        let streamed_manifest = streamed.iter().find_map(|e| match e {
            Event::Manifest(m) => Some(m),
            _ => None,
        });
        assert_eq!(manifest.as_ref().ok(), streamed_manifest);
    }
    // Every index segment (a bounded number of entries, so an input cannot make this slow).
    let mut budget = 256usize;
    let mut entries = Vec::new();
    for i in 0..img.segments() {
        match img.segment(i) {
            Ok(seg) => {
                for e in seg {
                    if budget == 0 {
                        break;
                    }
                    budget -= 1;
                    entries.push(e);
                }
            }
            Err(_) => assert!(!complete, "segment {i} of a verified container fails"),
        }
        if budget == 0 {
            break;
        }
    }
    assert!(img.segment(img.segments()).is_err());
    if complete && verified.len() <= 256 {
        let located: Vec<IndexEntry> = entries.iter().map(IndexEntry::located).collect();
        assert_eq!(located, verified, "index differs from the chunks streamed");
        assert!(
            entries
                .iter()
                .all(|e| e.digest.is_some() == img.header().has_digests()),
            "digests in the index of a stream whose major version says otherwise"
        );
    }
    // The image digest from the index alone (bounded by the index and the disk records).
    let _ = img.image_digest();
    for off in [0u64, 1, 511, 4096, 1 << 20, u64::MAX] {
        let _ = img.find(0, off);
    }
    let _ = img.find(u32::MAX, u64::MAX);
    // What the index points to, looked up again and read.
    let mut buf = Vec::new();
    for e in entries.iter().take(32) {
        for off in [e.first, e.end.wrapping_sub(1), e.end] {
            let _ = img.find(e.disk, off);
        }
        if let Ok(c) = img.read_chunk(e) {
            assert_eq!(c.pos, e.pos);
            let _ = c.decode_into(&mut buf);
        }
        if let Ok(c) = img.read_data(e, &mut buf) {
            assert_eq!(buf.len(), c.header.data_len as usize);
        }
        let mut small = [0u8; 600];
        let _ = img.read_disk(e.disk, e.first, &mut small);
    }
    if complete {
        let chunks = streamed.iter().filter_map(|ev| match ev {
            Event::Chunk {
                header,
                pos,
                extents,
                data_crc,
            } => Some((header, pos, extents, data_crc)),
            _ => None,
        });
        for (entry, (header, pos, extents, data_crc)) in verified.iter().zip(chunks).take(32) {
            let found = img
                .find(entry.disk, entry.first)
                .expect("find in a verified container")
                .expect("every stored chunk is found by its first byte");
            assert_eq!(&found.located(), entry);
            let c = img
                .read_chunk(entry)
                .expect("read_chunk of a verified chunk");
            assert_eq!((&c.header, &c.pos, &c.extents), (header, pos, extents));
            c.decode_into(&mut buf).expect("decode of a verified chunk");
            assert_eq!(crc32fast::hash(&buf), *data_crc);
            let x = extents[0];
            let n = x.len.min(4096) as usize;
            let mut out = vec![0u8; n];
            // Format 3: data whose CRCs were recomputed (the second run of each input) no
            // longer has the digest its index entry holds, and the random reader refuses it.
            let digest_ok = !matches!(
                img.read_data(&found, &mut Vec::new()),
                Err(ContainerError::Checksum {
                    what: "chunk digest",
                    ..
                })
            );
            if !digest_ok {
                assert!(found.digest.is_some(), "a digest error without a digest");
                assert!(img.read_disk(entry.disk, x.offset, &mut out).is_err());
                continue;
            }
            assert!(img
                .read_disk(entry.disk, x.offset, &mut out)
                .expect("read_disk of stored bytes"));
            assert_eq!(out, buf[..n]);
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Largest data length whose data CRC the fixer recomputes (keeps each run fast).
const FIX_DATA_MAX: usize = 1 << 20;

/// Recomputes the CRCs of the record at `pos` (index entries of `entry_len` bytes); returns
/// where the next record starts.
fn fix_record(d: &mut [u8], pos: usize, entry_len: usize) -> Option<usize> {
    let tag: [u8; 4] = d.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
    match &tag {
        b"CHNK" => {
            let h = pos.checked_add(48)?;
            d.get(pos..h)?;
            let count = le32(d, pos + 16) as usize;
            let data_len = le32(d, pos + 20) as usize;
            let payload_len = le32(d, pos + 24) as usize;
            let tend = h.checked_add(count.checked_mul(16)?)?;
            let end = tend.checked_add(payload_len)?;
            if let Some(payload) = d.get(tend..end) {
                let payload_crc = crc32fast::hash(payload);
                let data_crc = match d[pos + 28] {
                    0 => Some(payload_crc),
                    1 if data_len <= FIX_DATA_MAX => zstd::bulk::decompress(payload, data_len)
                        .ok()
                        .map(|v| crc32fast::hash(&v)),
                    2 if data_len <= FIX_DATA_MAX => Some(crc32fast::hash(&vec![0; data_len])),
                    _ => None,
                };
                put32(d, pos + 36, payload_crc);
                if let Some(c) = data_crc {
                    put32(d, pos + 32, c);
                }
            }
            let table = d.get(h..tend)?;
            let mut hs = crc32fast::Hasher::new();
            hs.update(&d[pos..pos + 44]);
            hs.update(table);
            let crc = hs.finalize();
            put32(d, pos + 44, crc);
            Some(end)
        }
        b"DISK" | b"INDX" | b"IDXD" | b"MANI" => {
            let h = pos.checked_add(24)?;
            d.get(pos..h)?;
            let len = match &tag {
                b"DISK" | b"MANI" => usize::try_from(le64(d, pos + 8)).ok()?,
                b"INDX" => (le32(d, pos + 4) as usize).checked_mul(entry_len)?,
                _ => (le32(d, pos + 4) as usize).checked_mul(32)?,
            };
            let end = h.checked_add(len)?;
            if let Some(body) = d.get(h..end) {
                let crc = crc32fast::hash(body);
                put32(d, pos + 16, crc);
            }
            let crc = crc32fast::hash(&d[pos..pos + 20]);
            put32(d, pos + 20, crc);
            Some(end)
        }
        b"TAIL" => {
            d.get(pos..pos.checked_add(64)?)?;
            let crc = crc32fast::hash(&d[pos..pos + 60]);
            put32(d, pos + 60, crc);
            Some(pos + 64)
        }
        _ => None,
    }
}

/// A copy of `data` with every CRC the readers check recomputed, or None when nothing
/// changed.
fn fix_crcs(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 64 || &data[0..8] != b"LIFEBOAT" {
        return None;
    }
    let mut d = data.to_vec();
    // Format 3 (major 3) has 64-byte index entries, 1.x 32-byte ones.
    let entry_len = if u16::from_le_bytes([d[8], d[9]]) == 3 {
        64
    } else {
        32
    };
    let crc = crc32fast::hash(&d[0..60]);
    put32(&mut d, 60, crc);
    // Front to back, as the stream reader goes.
    let mut pos = 64;
    for _ in 0..record_bound(d.len()) {
        match fix_record(&mut d, pos, entry_len) {
            Some(next) if next > pos => pos = next,
            _ => break,
        }
    }
    // From the tail, as IndexedImage goes: the directory, its segments, the manifest.
    if d.len() >= 128 {
        let t = d.len() - 64;
        fix_record(&mut d, t, entry_len);
        if &d[t..t + 4] == b"TAIL" {
            let dir = usize::try_from(le64(&d, t + 8)).unwrap_or(usize::MAX);
            let man = usize::try_from(le64(&d, t + 16)).unwrap_or(usize::MAX);
            // Segments first: the directory's own CRC covers nothing of theirs.
            if let Some(end) = dir.checked_add(24).filter(|&e| e <= d.len()) {
                let n = le32(&d, dir + 4) as usize;
                for i in 0..n.min(64) {
                    let at = end + i * 32;
                    if at + 32 > d.len() {
                        break;
                    }
                    if let Ok(seg) = usize::try_from(le64(&d, at)) {
                        fix_record(&mut d, seg, entry_len);
                    }
                }
            }
            fix_record(&mut d, dir, entry_len);
            fix_record(&mut d, man, entry_len);
        }
    }
    (d != data).then_some(d)
}

fn check(data: &[u8]) {
    let (events, complete, entries) = sequential(data);
    let (pevents, pcomplete) = parallel(data);
    assert_eq!(
        complete, pcomplete,
        "sequential and parallel readers disagree"
    );
    assert_eq!(events, pevents, "sequential and parallel readers disagree");
    indexed(data, complete, &events, &entries);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = fix_crcs(data) {
        check(&fixed);
    }
});
