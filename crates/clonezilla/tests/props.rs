//! Properties of the partclone reader: whatever the writer produces (v1 or v2, every checksum
//! mode, any blocks per checksum, reseeded or not, any bitmap) reads back to the same blocks
//! whatever the read size; any damage to a checksummed v2 image is an error, never different
//! data; and arbitrary bytes never panic.

use lifeboat_clonezilla::writer::{ImageWriter, WriteSpec};
use lifeboat_clonezilla::{Bitmap, Checksum, Format, Limits, PartcloneReader, SfdiskTable};
use proptest::prelude::*;

#[derive(Debug)]
struct Case {
    spec: WriteSpec,
    bitmap: Bitmap,
    data: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(any::<bool>(), 0..300),
        prop::sample::select(vec![1u32, 16, 512]),
        0u8..4,
        1u32..20,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(used, bs, mode, per, reseed, seed)| {
            let bitmap = Bitmap::from_fn(used.len() as u64, |b| used[b as usize]);
            let (format, checksum) = match mode {
                0 => (Format::V1, Checksum::Crc32V1),
                1 => (Format::V2, Checksum::None),
                _ => (Format::V2, Checksum::Crc32),
            };
            let mut x = seed | 1;
            let data = (0..bitmap.used() * u64::from(bs))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Case {
                spec: WriteSpec {
                    format,
                    fs: "EXTFS".into(),
                    block_size: bs,
                    device_size: used.len() as u64 * u64::from(bs) + 4096,
                    checksum,
                    blocks_per_checksum: per,
                    reseed,
                },
                bitmap,
                data,
            }
        })
}

fn write(c: &Case) -> Vec<u8> {
    let mut w = ImageWriter::new(Vec::new(), &c.spec, &c.bitmap).unwrap();
    w.write_blocks(&c.data).unwrap();
    w.finish().unwrap()
}

/// Bytes read back and the runs `(first block, blocks)`.
type Readback = (Vec<u8>, Vec<(u64, u64)>);

/// All used blocks, in order, and the runs.
fn read(bytes: &[u8], max: usize) -> Result<Readback, lifeboat_clonezilla::Error> {
    let mut r = PartcloneReader::new(bytes, Limits::default())?;
    let mut all = Vec::new();
    let mut runs = Vec::new();
    let mut buf = Vec::new();
    while let Some(run) = r.read_run(&mut buf, max)? {
        assert_eq!(
            buf.len() as u64,
            run.blocks * u64::from(r.header().block_size)
        );
        all.extend_from_slice(&buf);
        runs.push((run.first_block, run.blocks));
    }
    Ok((all, runs))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn written_images_read_back(c in case(), max in 1usize..5000) {
        let bytes = write(&c);
        let (all, runs) = read(&bytes, max).unwrap();
        prop_assert_eq!(&all, &c.data);
        // The runs cover exactly the used blocks, in order.
        let mut covered = Vec::new();
        for (s, n) in &runs {
            prop_assert!(*n > 0);
            covered.extend(*s..s + n);
        }
        let used: Vec<u64> = (0..c.bitmap.blocks()).filter(|&b| c.bitmap.is_used(b)).collect();
        prop_assert_eq!(covered, used);
        let r = PartcloneReader::new(&bytes[..], Limits::default()).unwrap();
        prop_assert_eq!(r.data_len() as usize + r.position() as usize, bytes.len());
    }

    #[test]
    fn damage_to_a_checksummed_image_is_an_error(c in case(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        prop_assume!(c.spec.format == Format::V2 && c.spec.checksum == Checksum::Crc32);
        let mut bytes = write(&c);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(read(&bytes, 4096).is_err(), "flip at {} not detected", i);
    }

    #[test]
    fn v1_damage_to_a_first_byte_or_checksum_is_an_error(c in case(), k in any::<prop::sample::Index>()) {
        prop_assume!(c.spec.format == Format::V1 && c.bitmap.used() > 0);
        let mut bytes = write(&c);
        let bs = c.spec.block_size as usize;
        let data_at = 4160 + c.bitmap.blocks() as usize + 8;
        let block = k.index(c.bitmap.used() as usize);
        // The v1 checksum covers each block's first byte (partclone 0.2.x's bug) and itself.
        bytes[data_at + block * (bs + 4)] ^= 0x10;
        prop_assert!(read(&bytes, 4096).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..6000)) {
        let _ = read(&bytes, 1000);
        let _ = SfdiskTable::parse("x", &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_valid_images_never_panic(c in case(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = write(&c);
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let _ = read(&bytes, 777);
    }
}

#[test]
fn a_bitmap_over_the_limit_is_refused_before_allocating() {
    let c = Case {
        spec: WriteSpec {
            format: Format::V2,
            fs: "NTFS".into(),
            block_size: 4096,
            device_size: 1 << 40,
            checksum: Checksum::Crc32,
            blocks_per_checksum: 1,
            reseed: true,
        },
        bitmap: Bitmap::new(1 << 20),
        data: Vec::new(),
    };
    let bytes = write(&c);
    let small = Limits {
        max_bitmap_bytes: 1 << 16,
    };
    assert!(matches!(
        PartcloneReader::new(&bytes[..], small),
        Err(lifeboat_clonezilla::Error::BitmapTooLarge { .. })
    ));
    assert!(PartcloneReader::new(&bytes[..], Limits::default()).is_ok());
}
