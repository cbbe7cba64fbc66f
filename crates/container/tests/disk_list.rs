//! The optional disk list record (`DLST`, format 1.1 on): written only when asked for, read and
//! cross-checked by the sequential reader and delivered by `decode_parallel`.

use lifeboat_container::format::{self, tag, FileHeader, RecordHeader, FILE_HEADER_LEN};
use lifeboat_container::*;
use lifeboat_fs::Extent;
use std::sync::atomic::AtomicBool;

const LIST: &[u8] = b"[{\"disk\":0},{\"disk\":1}]";

fn opts() -> WriterOptions {
    WriterOptions {
        chunk_size: 4096,
        threads: 2,
        image_id: [5; 16],
        ..WriterOptions::default()
    }
}

/// A container of `disks` disks of 64 KiB each, every byte stored; with a disk list of
/// `list` disks when given.
fn build(disks: u32, list: Option<u32>) -> Result<Vec<u8>> {
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = match list {
        Some(n) => ImageWriter::with_disk_list(Vec::new(), opts(), n, LIST.to_vec())?,
        None => ImageWriter::new(Vec::new(), opts())?,
    };
    for i in 0..disks {
        w.begin_disk(i, format!("{{\"disk\":{i}}}").into_bytes())?;
        w.add_extent(Extent::new(0, data.len() as u64), |buf, off| {
            buf.copy_from_slice(&data[off as usize..off as usize + buf.len()]);
            Ok(())
        })?;
    }
    let (out, _) = w.finish(|_| Ok(b"{}".to_vec()))?;
    Ok(out)
}

fn records(image: &[u8]) -> Result<Vec<Record>> {
    let mut r = StreamReader::new(image)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec);
    }
    Ok(out)
}

fn minor(image: &[u8]) -> u16 {
    FileHeader::decode(&image[..FILE_HEADER_LEN]).unwrap().minor
}

#[test]
fn without_a_list_the_first_record_is_the_first_disk() {
    let image = build(2, None).unwrap();
    assert_eq!(minor(&image), format::VERSION_MINOR);
    let recs = records(&image).unwrap();
    assert!(matches!(recs[0], Record::Disk { index: 0, .. }));
    assert!(!recs.iter().any(|r| matches!(r, Record::DiskList { .. })));
}

#[test]
fn the_list_is_the_first_record() {
    let image = build(2, Some(2)).unwrap();
    assert_eq!(minor(&image), format::VERSION_MINOR);
    assert_eq!(
        &image[FILE_HEADER_LEN..FILE_HEADER_LEN + 4],
        &tag::DISK_LIST
    );
    let recs = records(&image).unwrap();
    assert_eq!(
        recs[0],
        Record::DiskList {
            disks: 2,
            json: LIST.to_vec()
        }
    );
    assert!(matches!(recs[1], Record::Disk { index: 0, .. }));
    let disks = recs
        .iter()
        .filter(|r| matches!(r, Record::Disk { .. }))
        .count();
    assert_eq!(disks, 2);
    // The random-access reader is unaffected by the extra record.
    let src: &[u8] = &image;
    let idx = IndexedImage::open(&src).unwrap();
    assert_eq!(idx.manifest().unwrap(), b"{}".to_vec());
    // Nor is the image digest derived from the index (the list is not part of it).
    assert!(idx.image_digest().unwrap().is_some());

    // decode_parallel hands the list over first.
    let cancel = AtomicBool::new(false);
    let mut seen = Vec::new();
    decode_parallel(
        StreamReader::new(&image[..]).unwrap(),
        2,
        &cancel,
        |d| -> std::result::Result<(), ()> {
            seen.push(match d {
                Decoded::DiskList { disks, json } => format!("list {disks} {}", json.len()),
                Decoded::Disk { index, .. } => format!("disk {index}"),
                Decoded::Chunk { .. } => "chunk".into(),
                Decoded::Manifest(_) => "manifest".into(),
                Decoded::End(_) => "end".into(),
            });
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(seen[0], format!("list 2 {}", LIST.len()));
    assert_eq!(seen[1], "disk 0");
    assert_eq!(seen.last().unwrap(), "end");
}

#[test]
fn the_writer_keeps_the_announced_count() {
    let fewer = build(1, Some(2)).unwrap_err();
    assert!(fewer.to_string().contains("announced 2"), "{fewer}");
    let more = build(3, Some(2)).unwrap_err();
    assert!(more.to_string().contains("announced only 2"), "{more}");
    assert!(ImageWriter::with_disk_list(Vec::new(), opts(), 0, b"[]".to_vec()).is_err());
}

/// Rewrites the `a` field of the record header at `pos` (and its header CRC).
fn set_a(image: &mut [u8], pos: usize, a: u32) {
    let mut h = RecordHeader::decode(&image[pos..pos + 24], pos as u64, "test").unwrap();
    h.a = a;
    image[pos..pos + 24].copy_from_slice(&h.encode());
}

#[test]
fn the_reader_refuses_a_list_that_disagrees_with_the_disks() {
    // Announces 3 disks, holds 2: found at the index directory.
    let mut image = build(2, Some(2)).unwrap();
    set_a(&mut image, FILE_HEADER_LEN, 3);
    let e = records(&image).unwrap_err();
    assert!(e.to_string().contains("announces 3 disk(s)"), "{e}");

    // Announces 1 disk, holds 2: found at the second DISK record.
    let mut image = build(2, Some(2)).unwrap();
    set_a(&mut image, FILE_HEADER_LEN, 1);
    let e = records(&image).unwrap_err();
    assert!(e.to_string().contains("not in the disk list"), "{e}");

    // A list anywhere but first.
    let plain = build(1, None).unwrap();
    let listed = build(2, Some(2)).unwrap();
    let list_len = 24 + LIST.len();
    let first_disk_len = 24 + b"{\"disk\":0}".len();
    let mut moved = plain[..FILE_HEADER_LEN + first_disk_len].to_vec();
    moved.extend_from_slice(&listed[FILE_HEADER_LEN..FILE_HEADER_LEN + list_len]);
    moved.extend_from_slice(&plain[FILE_HEADER_LEN + first_disk_len..]);
    let e = records(&moved).unwrap_err();
    assert!(e.to_string().contains("not the first record"), "{e}");
}

#[test]
fn a_damaged_list_is_a_checksum_error() {
    let mut image = build(2, Some(2)).unwrap();
    image[FILE_HEADER_LEN + 24 + 3] ^= 0x20;
    let e = records(&image).unwrap_err();
    assert!(
        matches!(
            e,
            ContainerError::Checksum {
                what: "disk list",
                ..
            }
        ),
        "{e}"
    );
}
