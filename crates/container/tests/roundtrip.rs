//! Container round trips and damage detection.

use lifeboat_container::*;
use lifeboat_fs::Extent;
use proptest::prelude::*;
use std::sync::atomic::AtomicBool;

/// Builds a disk of `len` bytes with a pattern, and a container storing `extents` of it.
fn build(disks: &[(Vec<u8>, Vec<Extent>)], chunk_size: u32, threads: usize) -> Vec<u8> {
    build_summary(disks, chunk_size, threads).0
}

/// [`build`], with the writer's summary.
fn build_summary(
    disks: &[(Vec<u8>, Vec<Extent>)],
    chunk_size: u32,
    threads: usize,
) -> (Vec<u8>, Summary) {
    let opts = WriterOptions {
        chunk_size,
        threads,
        image_id: [9; 16],
        ..WriterOptions::default()
    };
    let mut w = ImageWriter::new(Vec::new(), opts).unwrap();
    for (i, (data, extents)) in disks.iter().enumerate() {
        w.begin_disk(i as u32, format!("{{\"disk\":{i}}}").into_bytes())
            .unwrap();
        for e in extents {
            w.add_extent(*e, |buf, off| {
                buf.copy_from_slice(&data[off as usize..off as usize + buf.len()]);
                Ok(())
            })
            .unwrap();
        }
    }
    let (out, summary) = w.finish(|_| Ok(b"{\"m\":1}".to_vec())).unwrap();
    assert_eq!(summary.total_bytes, out.len() as u64);
    (out, summary)
}

/// Restores every disk from the container into zero-filled buffers of the given sizes.
fn restore(image: &[u8], sizes: &[usize]) -> Result<Vec<Vec<u8>>, String> {
    let mut out: Vec<Vec<u8>> = sizes.iter().map(|s| vec![0u8; *s]).collect();
    let mut cur = None;
    let cancel = AtomicBool::new(false);
    let r = StreamReader::new(image).map_err(|e| e.to_string())?;
    decode_parallel(r, 3, &cancel, |d| -> Result<(), String> {
        match d {
            Decoded::Disk { index, .. } => cur = Some(index as usize),
            Decoded::Chunk { chunk, data } => {
                let disk = &mut out[cur.unwrap()];
                let mut p = 0usize;
                for e in &chunk.extents {
                    let n = e.len as usize;
                    disk[e.offset as usize..e.offset as usize + n].copy_from_slice(&data[p..p + n]);
                    p += n;
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn extents_strategy(len: u64) -> impl Strategy<Value = Vec<Extent>> {
    proptest::collection::vec((0..len, 1u64..20_000), 0..30).prop_map(move |mut v| {
        v.sort();
        let mut m = lifeboat_fs::ExtentMerger::new();
        let mut out = Vec::new();
        for (o, l) in v {
            let l = l.min(len - o);
            out.extend(m.push(Extent::new(o, l)));
        }
        out.extend(m.finish());
        out
    })
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if (i / 3000) % 3 == 0 {
                0
            } else {
                (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn round_trip_restores_exactly_the_stored_extents(
        e0 in extents_strategy(200_000),
        e1 in extents_strategy(90_000),
        chunk_kib in 4u32..40,
        threads in 1usize..4,
    ) {
        let d0 = pattern(200_000, 7);
        let d1 = pattern(90_000, 13);
        let (img, summary) = build_summary(&[(d0.clone(), e0.clone()), (d1.clone(), e1.clone())], chunk_kib * 1024, threads);
        let got = restore(&img, &[200_000, 90_000]).unwrap();
        for (disk, (src, ext)) in [(&d0, &e0), (&d1, &e1)].iter().enumerate() {
            let mut want = vec![0u8; src.len()];
            for e in ext.iter() {
                let r = e.offset as usize..e.end() as usize;
                want[r.clone()].copy_from_slice(&src[r]);
            }
            prop_assert_eq!(&got[disk], &want);
        }
        // Random access through the index agrees with the source.
        let idx = IndexedImage::open(&img).unwrap();
        for (disk, (src, ext)) in [(&d0, &e0), (&d1, &e1)].iter().enumerate() {
            for e in ext.iter() {
                let mut b = vec![0u8; e.len.min(5000) as usize];
                prop_assert!(idx.read_disk(disk as u32, e.offset, &mut b).unwrap());
                prop_assert_eq!(&b[..], &src[e.offset as usize..e.offset as usize + b.len()]);
            }
        }
        prop_assert_eq!(idx.manifest().unwrap(), b"{\"m\":1}".to_vec());
        // The index alone gives the writer's image digest.
        prop_assert_eq!(idx.image_digest().unwrap(), Some(summary.digest));
    }

    #[test]
    fn reader_never_panics_on_mutated_images(flips in proptest::collection::vec((0usize..1_000_000, any::<u8>()), 1..4), cut in 0usize..1_000_000) {
        let d = pattern(60_000, 5);
        let mut img = build(&[(d, vec![Extent::new(0, 60_000)])], 8192, 2);
        for (at, v) in flips { let n = img.len(); img[at % n] ^= v | 1; }
        let n = img.len();
        img.truncate(n - cut % 64);
        let _ = restore(&img, &[60_000]);
        let _ = IndexedImage::open(&img).and_then(|i| i.find(0, 100));
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let d = pattern(100_000, 3);
    let img = build(&[(d, vec![Extent::new(512, 90_000)])], 16384, 2);
    assert!(restore(&img, &[100_000]).is_ok());
    for at in (0..img.len()).step_by(97) {
        let mut bad = img.clone();
        bad[at] ^= 0x20;
        assert!(
            restore(&bad, &[100_000]).is_err(),
            "flip at {at} not detected"
        );
    }
}

#[test]
fn truncation_is_detected_and_named() {
    let d = pattern(100_000, 3);
    let img = build(&[(d, vec![Extent::new(0, 100_000)])], 16384, 2);
    for cut in [1, 30, 64, 65, 200, img.len() / 2, img.len() - 64] {
        let err = restore(&img[..img.len() - cut], &[100_000]).unwrap_err();
        assert!(
            err.contains("truncated") || err.contains("tail"),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn zero_chunks_cost_no_payload() {
    let d = vec![0u8; 1 << 20];
    let img = build(&[(d, vec![Extent::new(0, 1 << 20)])], 65536, 2);
    assert!(img.len() < 4096, "a MiB of zeros took {} bytes", img.len());
}

#[test]
fn damaged_chunk_error_names_the_chunk() {
    let d = pattern(100_000, 3);
    let img = build(&[(d, vec![Extent::new(0, 100_000)])], 16384, 2);
    let idx = IndexedImage::open(&img).unwrap();
    let e = idx.segment(0).unwrap()[2];
    let mut bad = img.clone();
    bad[e.pos as usize + e.record_len as usize - 10] ^= 1;
    let err = restore(&bad, &[100_000]).unwrap_err();
    assert!(err.contains("chunk 2"), "{err}");
}

#[test]
fn early_stop_does_not_hang() {
    // A sink that fails on the first chunk of a long image must return, not deadlock.
    let d = pattern(400_000, 11);
    let img = build(&[(d, vec![Extent::new(0, 400_000)])], 4096, 2);
    let cancel = AtomicBool::new(false);
    let r = StreamReader::new(&img[..]).unwrap();
    let res = decode_parallel(r, 2, &cancel, |d| match d {
        Decoded::Chunk { .. } => Err("stop"),
        _ => Ok(()),
    });
    assert!(matches!(res, Err(DecodeError::Sink("stop"))));
}

/// An index entry may not ask for more than a chunk of the image's chunk size can take:
/// checked before anything is read or allocated (on a large network share the end-of-file
/// check alone would let it ask for a 4 GiB record).
#[test]
fn a_record_length_beyond_the_chunk_size_is_refused_before_reading() {
    let d = pattern(100_000, 5);
    let img = build(&[(d, vec![Extent::new(0, 100_000)])], 16384, 2);
    let idx = IndexedImage::open(&img).unwrap();
    let mut e = idx.segment(0).unwrap()[1];
    assert!(idx.read_chunk(&e).is_ok());
    for len in [u32::MAX, 300_000] {
        e.record_len = len;
        let err = idx.read_chunk(&e).unwrap_err();
        assert!(
            matches!(&err, lifeboat_container::ContainerError::Invalid { detail, .. } if detail.contains("above")),
            "{len}: {err}"
        );
    }
}

/// Random bytes (a xorshift stream): zstd cannot shrink them, so chunks are stored as they are.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A chunk whose data was changed and whose every CRC was computed again passes every CRC
/// check (a sequential restore writes it), but not the digest its index entry holds; and an
/// index entry whose digest was changed (index CRCs computed again) changes the image digest
/// derived from the index, so it no longer equals the one noted at save time.
#[test]
fn chunk_digests_in_the_index_catch_what_crcs_cannot() {
    let d = noise(100_000, 77);
    let (img, summary) = build_summary(&[(d.clone(), vec![Extent::new(0, 100_000)])], 16384, 2);
    let idx = IndexedImage::open(&img).unwrap();
    assert_eq!(
        (idx.header().major, idx.header().minor),
        (format::VERSION_MAJOR, format::VERSION_MINOR)
    );
    let seg = idx.segment(0).unwrap();
    assert!(seg.iter().all(|e| e.digest.is_some()));
    let e = seg[2];
    let c = idx.read_chunk(&e).unwrap();
    assert_eq!(
        c.header.codec,
        format::Codec::Stored,
        "test needs a stored chunk"
    );

    // Change one data byte of chunk 2, then recompute its data, payload and header CRCs.
    let mut bad = img.clone();
    let tend = e.pos as usize + format::CHUNK_HEADER_LEN + c.extents.len() * format::EXTENT_LEN;
    bad[tend + 100] ^= 0x40;
    let payload = &bad[tend..e.pos as usize + e.record_len as usize];
    let mut h = c.header;
    h.data_crc = crc32fast::hash(payload);
    h.payload_crc = h.data_crc;
    let head = h.encode(&c.extents);
    bad[e.pos as usize..tend].copy_from_slice(&head);
    let mut changed = d.clone();
    changed[c.extents[0].offset as usize + 100] ^= 0x40;
    assert_eq!(
        restore(&bad, &[100_000]).unwrap()[0],
        changed,
        "every CRC passes: the sequential restore writes the changed byte"
    );
    let idx_bad = IndexedImage::open(&bad[..]).unwrap();
    let mut buf = vec![0u8; 64];
    let err = idx_bad
        .read_disk(0, c.extents[0].offset + 80, &mut buf)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ContainerError::Checksum {
                what: "chunk digest",
                chunk: Some(2),
                ..
            }
        ),
        "{err}"
    );
    // The untouched chunks still read.
    assert!(idx_bad.read_disk(0, 0, &mut buf).unwrap());
    assert_eq!(&buf[..], &d[..64]);

    // Change the digest of entry 1 in the index segment and recompute the segment's CRCs.
    let mut bad = img.clone();
    // The only INDX record (one segment): the last "INDX" of the stream, after every chunk.
    let seg_pos = bad.windows(4).rposition(|w| w == b"INDX").unwrap();
    let h = format::RecordHeader::decode(&bad[seg_pos..seg_pos + 24], seg_pos as u64, "t").unwrap();
    let body = seg_pos + 24..seg_pos + 24 + h.a as usize * format::INDEX_ENTRY_DIGEST_LEN;
    bad[body.start + format::INDEX_ENTRY_DIGEST_LEN + 40] ^= 1;
    let rh = format::RecordHeader {
        body_crc: crc32fast::hash(&bad[body.clone()]),
        ..h
    };
    bad[seg_pos..seg_pos + 24].copy_from_slice(&rh.encode());
    let idx_bad = IndexedImage::open(&bad[..]).unwrap();
    let from_index = idx_bad.image_digest().unwrap().unwrap();
    assert_ne!(from_index, summary.digest);
    // ... and that chunk no longer reads against its (changed) entry.
    let e1 = idx_bad.segment(0).unwrap()[1];
    assert!(matches!(
        idx_bad.read_data(&e1, &mut Vec::new()),
        Err(ContainerError::Checksum {
            what: "chunk digest",
            ..
        })
    ));
    assert_eq!(idx.image_digest().unwrap().unwrap(), summary.digest);
}

/// A stored chunk's payload is its data, so the random-access reader moves it instead of
/// copying it and takes the payload CRC as the data CRC: a header whose data CRC differs
/// (header CRC computed again, so the header itself passes) is refused as "chunk data", as
/// the sequential restore refuses it; an intact stored chunk reads as saved.
#[test]
fn a_stored_chunk_whose_data_crc_disagrees_is_refused() {
    let d = noise(60_000, 5);
    let img = build(&[(d.clone(), vec![Extent::new(0, 60_000)])], 16384, 1);
    let idx = IndexedImage::open(&img).unwrap();
    let e = idx.segment(0).unwrap()[1];
    let c = idx.read_chunk(&e).unwrap();
    assert_eq!(
        c.header.codec,
        format::Codec::Stored,
        "test needs a stored chunk"
    );
    let mut data = Vec::new();
    let back = idx.read_data(&e, &mut data).unwrap();
    assert!(
        back.payload.is_empty(),
        "the stored payload was moved (out was empty)"
    );
    assert!(
        data == d[c.extents[0].offset as usize..][..data.len()],
        "chunk 1 reads as saved"
    );

    let mut bad = img.clone();
    let tend = e.pos as usize + format::CHUNK_HEADER_LEN + c.extents.len() * format::EXTENT_LEN;
    let mut h = c.header;
    h.data_crc ^= 1;
    bad[e.pos as usize..tend].copy_from_slice(&h.encode(&c.extents));
    let idx_bad = IndexedImage::open(&bad[..]).unwrap();
    let err = idx_bad.read_data(&e, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            ContainerError::Checksum {
                what: "chunk data",
                chunk: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        restore(&bad, &[60_000]).is_err(),
        "the sequential restore refuses it too"
    );
}
