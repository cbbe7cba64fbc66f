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
        0u8..7,
        1u32..20,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(used, bs, mode, per, reseed, seed)| {
            let bitmap = Bitmap::from_fn(used.len() as u64, |b| used[b as usize]);
            let (format, checksum) = match mode {
                // v1 twice as often: its own properties reject every v2 case.
                0 | 1 => (Format::V1, Checksum::Crc32V1),
                2 => (Format::V2, Checksum::None),
                3 => (Format::V2, Checksum::Xxh64),
                4 => (Format::V2, Checksum::Xxh128),
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
        prop_assume!(c.spec.format == Format::V2 && c.spec.checksum != Checksum::None);
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

/// An in-memory image directory.
struct Mem(std::collections::BTreeMap<String, Vec<u8>>);

impl lifeboat_clonezilla::ImageFiles for Mem {
    fn location(&self) -> String {
        "mem".into()
    }
    fn names(&self) -> std::io::Result<Vec<String>> {
        Ok(self.0.keys().cloned().collect())
    }
    fn open(&self, name: &str) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let b = self
            .0
            .get(name)
            .cloned()
            .ok_or(std::io::ErrorKind::NotFound)?;
        Ok(Box::new(std::io::Cursor::new(b)))
    }
    fn len(&self, name: &str) -> std::io::Result<u64> {
        Ok(self.0.get(name).ok_or(std::io::ErrorKind::NotFound)?.len() as u64)
    }
}

/// Logical partitions as (gap before, size) in sectors.
fn logicals() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((2u64..5000, 1u64..100_000), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A dump with an extended partition and logical partitions (any gaps of two sectors or
    /// more between them) gives a head whose EBR chain, walked as a partition table reader
    /// walks it, leads to exactly those logical partitions, in order; the MBR entries come
    /// from the saved MBR.
    #[test]
    fn rebuilt_ebr_chains_lead_to_every_logical_partition(ls in logicals()) {
        let ext_start = 4096u64;
        let mut text = String::from("label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=2048, type=83\n");
        let mut at = ext_start;
        let mut parts = Vec::new();
        for (gap, size) in &ls {
            let start = at + gap;
            parts.push((start, *size));
            at = start + size;
        }
        let ext_size = at - ext_start + 7;
        text += &format!("/dev/sda2 : start={ext_start}, size={ext_size}, type=5\n");
        for (i, (start, size)) in parts.iter().enumerate() {
            text += &format!("/dev/sda{} : start={start}, size={size}, type=83\n", i + 5);
        }
        let total = ext_start + ext_size + 100;
        let mut mbr = vec![0u8; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let files: std::collections::BTreeMap<String, Vec<u8>> = [
            ("disk", b"sda".to_vec()),
            ("parts", Vec::new()),
            ("clonezilla-img", Vec::new()),
            ("sda-pt.sf", text.into_bytes()),
            ("sda-pt.parted", format!("Disk /dev/sda: {total}s\n").into_bytes()),
            ("sda-mbr", mbr),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let img = lifeboat_clonezilla::CloneImage::open(std::sync::Arc::new(Mem(files))).unwrap();
        let head = lifeboat_clonezilla::DiskHead::build(&img, &img.disks[0]).unwrap();
        prop_assert_eq!(head.size, total * 512);
        let sector = |lba: u64| {
            let mut b = vec![0u8; 512];
            head.read_at(&mut b, lba * 512).unwrap();
            b
        };
        let le32 = |b: &[u8], o: usize| u64::from(u32::from_le_bytes(b[o..o + 4].try_into().unwrap()));
        let mut ebr = ext_start;
        for (i, (start, size)) in parts.iter().enumerate() {
            let s = sector(ebr);
            prop_assert_eq!(&s[510..], &[0x55, 0xaa]);
            prop_assert_eq!(s[446 + 4], 0x83);
            prop_assert_eq!(ebr + le32(&s, 446 + 8), *start, "logical {}", i + 5);
            prop_assert_eq!(le32(&s, 446 + 12), *size);
            let link = &s[462..478];
            if i + 1 == parts.len() {
                prop_assert_eq!(link, &[0u8; 16][..]);
            } else {
                prop_assert_eq!(link[4], 0x05);
                let next = ext_start + le32(link, 8);
                prop_assert!(next > start + size - 1 && next < parts[i + 1].0);
                prop_assert_eq!(next + le32(link, 12), parts[i + 1].0 + parts[i + 1].1);
                ebr = next;
            }
        }
    }
}
