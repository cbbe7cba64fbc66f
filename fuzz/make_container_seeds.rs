//! Regenerates the seed corpus of the `container_reader` fuzz target (small, real containers
//! written with `ImageWriter`: 4 KiB chunks, one or two disks, zstd, stored and zero chunks)
//! and the generated part of the `manifest` seeds (their manifests and disk records).
//! Deterministic: the same bytes every run.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_container_seeds
use lifeboat_container::{
    DiskRecord, Identity, ImageKind, ImageWriter, Manifest, PartitionRecord, RegionRecord, Summary,
    TableRecord, Tool, Totals, WriterOptions, MANIFEST_FORMAT, MANIFEST_VERSION,
};
use lifeboat_fs::Extent;
use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift64*).
fn random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compressible, text-like bytes.
fn text(len: usize, tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("{tag} line {i}: the quick brown fox\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn partition(number: u32, start: u64, size: u64, gpt: bool, used: u64) -> PartitionRecord {
    PartitionRecord {
        number,
        start,
        size,
        kind: if gpt { "gpt" } else { "primary" }.into(),
        type_code: if gpt {
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4".into()
        } else {
            "0x83".into()
        },
        type_name: "Linux".into(),
        name: if gpt { "root".into() } else { String::new() },
        guid: gpt.then(|| "6F1E4C2A-1B2C-4D3E-8F90-A1B2C3D4E5F6".into()),
        bootable: !gpt,
        saved: true,
        filesystem: "ext4".into(),
        mode: "used-blocks".into(),
        label: Some("seed".into()),
        uuid: Some("2b1c7e0e-3f4a-4b59-9d1e-6a0c2f3b4d5e".into()),
        block_size: 4096,
        used_bytes: used,
        notes: vec![],
        files: None,
    }
}

fn disk_record(index: u32, size: u64, gpt: bool) -> DiskRecord {
    DiskRecord {
        index,
        source: format!("/dev/seed{index}"),
        identity: Identity {
            model: gpt.then(|| "QEMU HARDDISK".into()),
            serial: gpt.then(|| "QM0001".into()),
            ..Identity::default()
        },
        size,
        logical_sector_size: 512,
        physical_sector_size: if gpt { 4096 } else { 512 },
        table: TableRecord {
            kind: if gpt { "gpt" } else { "mbr" }.into(),
            disk_id: Some(if gpt {
                "A1B2C3D4-0000-4000-8000-000000000001".into()
            } else {
                "0x5eed0001".into()
            }),
            partitions: vec![partition(1, 1 << 20, size - (2 << 20), gpt, 16384)],
            warnings: vec![],
        },
        boot_regions: vec![RegionRecord {
            offset: 0,
            len: 512,
            what: "MBR".into(),
        }],
        stored_bytes: 0,
        compressed_bytes: 0,
        chunks: 0,
        data_crc32: String::new(),
    }
}

fn manifest(name: &str, disks: &[DiskRecord], s: &Summary) -> Manifest {
    let disks = disks
        .iter()
        .map(|d| {
            let t = s.disks.get(&d.index).cloned().unwrap_or_default();
            DiskRecord {
                stored_bytes: t.data_bytes,
                compressed_bytes: t.payload_bytes,
                chunks: t.chunks,
                data_crc32: format!("{:08x}", t.data_crc32),
                ..d.clone()
            }
        })
        .collect::<Vec<_>>();
    Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        image: name.into(),
        kind: if disks.len() == 1 {
            ImageKind::Parts
        } else {
            ImageKind::Disks
        },
        created: "2025-01-01T00:00:00Z".into(),
        created_unix: 1_735_689_600,
        tool: Tool {
            name: "lifeboat".into(),
            version: "0.1.0".into(),
        },
        host: "seed".into(),
        image_id: "5eed5eed5eed5eed5eed5eed5eed5eed".into(),
        chunk_size: 4096,
        compression: "zstd-3".into(),
        totals: Totals {
            stored_bytes: s.data_bytes,
            compressed_bytes: s.disks.values().map(|t| t.payload_bytes).sum(),
            chunks: s.chunks,
            container_bytes_before_manifest: s.bytes_before_manifest,
        },
        disks,
        files: vec![],
        digest: None,
        sealed: None,
    }
}

/// One disk of a seed: its record and its (extent, bytes) pieces.
type Disk = (DiskRecord, Vec<(Extent, Vec<u8>)>);

fn container(name: &str, disks: &[Disk], out: &Path, json_out: &Path) {
    let opts = WriterOptions {
        chunk_size: 4096,
        level: 3,
        threads: 2,
        image_id: *b"5eed5eed5eed5eed",
        created_unix: 1_735_689_600,
    };
    let mut w = ImageWriter::new(Vec::new(), opts).unwrap();
    for (i, (rec, pieces)) in disks.iter().enumerate() {
        w.begin_disk(i as u32, serde_json::to_vec(rec).unwrap())
            .unwrap();
        for (x, bytes) in pieces {
            assert_eq!(x.len as usize, bytes.len());
            w.add_extent(*x, |buf, off| {
                let s = (off - x.offset) as usize;
                buf.copy_from_slice(&bytes[s..s + buf.len()]);
                Ok(())
            })
            .unwrap();
        }
    }
    let records: Vec<DiskRecord> = disks.iter().map(|d| d.0.clone()).collect();
    let mut m = None;
    let (bytes, _) = w
        .finish(|s| {
            let made = manifest(name, &records, s);
            let json = made.to_json();
            m = Some(made);
            Ok(json)
        })
        .unwrap();
    std::fs::write(out.join(format!("{name}.lbi")), &bytes).unwrap();
    let m = m.unwrap();
    std::fs::write(json_out.join(format!("{name}.json")), m.to_json()).unwrap();
    println!("{name}.lbi: {} bytes", bytes.len());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let out = root.join("container_reader");
    let json_out = root.join("manifest");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&json_out).unwrap();
    let mib = 1u64 << 20;

    // One disk, one text extent over two zstd chunks.
    container(
        "one-disk-text",
        &[(
            disk_record(0, 8 * mib, false),
            vec![(Extent::new(mib, 6000), text(6000, "a"))],
        )],
        &out,
        &json_out,
    );

    // Two disks: a zero chunk, a stored (random) chunk, a zstd chunk, and a chunk packing
    // three short extents (the MBR, a boot-code gap, a superblock).
    let mut mixed = text(2048, "b");
    mixed.extend(random(2048, 7));
    container(
        "two-disks-mixed",
        &[
            (
                disk_record(0, 16 * mib, false),
                vec![
                    (Extent::new(0, 512), random(512, 1)),
                    (Extent::new(4096, 1024), text(1024, "boot")),
                    (Extent::new(mib + 1024, 1024), text(1024, "super")),
                    (Extent::new(2 * mib, 4096), vec![0u8; 4096]),
                    (Extent::new(3 * mib, 4096), random(4096, 2)),
                    (Extent::new(4 * mib, 4096), mixed),
                ],
            ),
            (
                disk_record(1, 32 * mib, true),
                vec![
                    (Extent::new(0, 1024), random(1024, 3)),
                    (Extent::new(mib, 8192), text(8192, "c")),
                    (Extent::new(31 * mib, 512), vec![0u8; 512]),
                ],
            ),
        ],
        &out,
        &json_out,
    );

    // A disk with no stored bytes, then one with a single short extent.
    container(
        "empty-then-short",
        &[
            (disk_record(0, 4 * mib, false), vec![]),
            (
                disk_record(1, 4 * mib, true),
                vec![(Extent::new(512, 100), text(100, "d"))],
            ),
        ],
        &out,
        &json_out,
    );

    // No disks at all: header, empty directory, manifest, tail.
    container("no-disks", &[], &out, &json_out);

    // A disk record on its own (the JSON of a DISK record).
    std::fs::write(
        json_out.join("disk-record.json"),
        serde_json::to_vec(&disk_record(0, 16 * mib, true)).unwrap(),
    )
    .unwrap();
}
