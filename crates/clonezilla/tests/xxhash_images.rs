//! partclone images with XXH64 and XXH128 checksums, written by the real partclone (v0.3.47
//! built with xxhash; Debian's 0.3.23 cannot write these modes). The images and their source
//! volume are committed in `test_data/` (made by `test_data/make-xxhash-images.sh`, which
//! says how to build that partclone). Each is read back and compared block by block with the
//! volume, damage to a block or to a stored checksum is caught and named, and the writer
//! reproduces partclone's bytes after the header exactly.

use std::path::PathBuf;

use lifeboat_clonezilla::partclone::V2_HEADER_LEN;
use lifeboat_clonezilla::writer::{ImageWriter, WriteSpec};
use lifeboat_clonezilla::{Checksum, Error, Format, Limits, PartcloneReader};

fn unzstd(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zstd::decode_all(&raw[..]).unwrap()
}

/// (fixture, checksum, reseeded, blocks per checksum: None = partclone's default)
const IMAGES: &[(&str, Checksum, bool, Option<u32>)] = &[
    ("a2", Checksum::Xxh64, true, Some(16)),
    ("a2K", Checksum::Xxh64, false, Some(16)),
    ("a3", Checksum::Xxh128, true, Some(16)),
    ("a3K", Checksum::Xxh128, false, Some(16)),
    ("a3-default", Checksum::Xxh128, true, None),
];

/// Reads every used block of `image`, comparing each with the volume when given (a damaged
/// image is read without: its damage is returned before the checksum after it is checked);
/// returns the blocks read.
fn read_all(image: &[u8], volume: Option<&[u8]>) -> Result<u64, Error> {
    let mut r = PartcloneReader::new(image, Limits::default())?;
    let bs = r.header().block_size as usize;
    let mut buf = Vec::new();
    let mut n = 0;
    // Small runs so that runs end inside and across checksum groups.
    while let Some(run) = r.read_run(&mut buf, 5 * bs)? {
        let at = run.first_block as usize * bs;
        if let Some(volume) = volume {
            assert!(
                buf[..] == volume[at..at + buf.len()],
                "blocks {}+{} differ from the volume",
                run.first_block,
                run.blocks
            );
        }
        n += run.blocks;
    }
    Ok(n)
}

#[test]
fn xxhash_images_of_real_partclone_read_back_as_the_volume() {
    let volume = unzstd("xxh-ext4.img.zst");
    for &(name, checksum, reseed, per) in IMAGES {
        let image = unzstd(&format!("xxh-ext4.{name}.pc.zst"));
        let r = PartcloneReader::new(&image[..], Limits::default()).unwrap();
        let h = r.header().clone();
        assert_eq!(h.format, Format::V2, "{name}");
        assert_eq!(h.checksum, checksum, "{name}");
        assert_eq!(
            h.checksum_size,
            if checksum == Checksum::Xxh64 { 8 } else { 16 },
            "{name}"
        );
        assert_eq!(h.reseed, reseed, "{name}");
        if let Some(per) = per {
            assert_eq!(h.blocks_per_checksum, per, "{name}");
        }
        assert_eq!(h.block_size, 1024, "{name}");
        assert_eq!(h.fs_bytes(), volume.len() as u64, "{name}");
        let used = r.bitmap().used();
        // Enough groups that reseeding (or not) matters.
        assert!(
            used > 20 * u64::from(h.blocks_per_checksum.min(16)),
            "{name}: {used}"
        );
        // The image is exactly header, bitmap, blocks and checksums: nothing left over.
        assert_eq!(
            h.len() as u64 + h.bitmap_len() + r.data_len(),
            image.len() as u64,
            "{name}"
        );
        assert_eq!(read_all(&image, Some(&volume)).unwrap(), used, "{name}");
    }
}

#[test]
fn damage_in_an_xxhash_image_is_caught_and_named() {
    for &(name, checksum, _, _) in IMAGES {
        let image = unzstd(&format!("xxh-ext4.{name}.pc.zst"));
        let r = PartcloneReader::new(&image[..], Limits::default()).unwrap();
        let h = r.header().clone();
        let bs = h.block_size as u64;
        let per = u64::from(h.blocks_per_checksum);
        let size = u64::from(h.checksum_size);
        let data = h.len() as u64 + h.bitmap_len();
        // Stored block k (0-based among the used blocks) starts after k blocks and the
        // checksums of the groups before it.
        let block_at = |k: u64| data + k * bs + (k / per) * size;
        let nth_used = |k: u64| {
            let mut b = r.bitmap().next_used(0).unwrap();
            for _ in 0..k {
                b = r.bitmap().next_used(b + 1).unwrap();
            }
            b
        };
        let used = r.bitmap().used();
        // A byte in the middle of the 3rd group's second block (or of the last block when
        // there are fewer groups: partclone's default groups are large).
        let k = (2 * per + 1).min(used - 1);
        let last_of_group = ((k / per + 1) * per).min(used) - 1;
        let mut bad = image.clone();
        bad[(block_at(k) + bs / 2) as usize] ^= 0x40;
        match read_all(&bad, None) {
            Err(Error::BlockChecksum {
                block,
                stored,
                computed,
                ..
            }) => {
                // Named by the last block of its group.
                assert_eq!(block, nth_used(last_of_group), "{name}");
                assert_eq!(stored.len(), 2 * size as usize, "{name}: {stored}");
                assert_ne!(stored, computed, "{name}");
            }
            other => panic!("{name} ({checksum:?}): damaged block read as {other:?}"),
        }
        // A byte of the first stored checksum (after the first group, or after every block).
        let first = per.min(used);
        let mut bad = image.clone();
        bad[(data + first * bs + 3) as usize] ^= 0x01;
        match read_all(&bad, None) {
            Err(Error::BlockChecksum { block, .. }) => {
                assert_eq!(block, nth_used(first - 1), "{name}")
            }
            other => panic!("{name}: damaged checksum read as {other:?}"),
        }
    }
}

#[test]
fn the_writer_reproduces_partclone_xxhash_images() {
    for &(name, checksum, reseed, _) in IMAGES {
        let image = unzstd(&format!("xxh-ext4.{name}.pc.zst"));
        let mut r = PartcloneReader::new(&image[..], Limits::default()).unwrap();
        let h = r.header().clone();
        let spec = WriteSpec {
            format: Format::V2,
            fs: h.fs.clone(),
            block_size: h.block_size,
            device_size: h.device_size,
            checksum,
            blocks_per_checksum: h.blocks_per_checksum,
            reseed,
        };
        let bitmap = r.bitmap().clone();
        let mut w = ImageWriter::new(Vec::new(), &spec, &bitmap).unwrap();
        let mut buf = Vec::new();
        while r.read_run(&mut buf, 1 << 20).unwrap().is_some() {
            w.write_blocks(&buf).unwrap();
        }
        let ours = w.finish().unwrap();
        // The header differs (partclone's version text, the used-block count of the
        // filesystem, the header CRC); bitmap, blocks and checksums must be identical.
        assert_eq!(ours.len(), image.len(), "{name}");
        assert!(
            ours[V2_HEADER_LEN..] == image[V2_HEADER_LEN..],
            "{name}: the writer's image differs from partclone's after the header"
        );
    }
}
