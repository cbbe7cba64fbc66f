//! Robustness: FAT12 entry packing round trip; the scanners never panic on mutated fixture
//! bytes; probes are strict; damaged volumes are refused with a typed error; dirty flags
//! become warnings.

mod common;

use std::collections::BTreeMap;

use common::*;
use lifeboat_fs::{FsError, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_fat::fat_table::{entry, set_fat12_entry};
use lifeboat_fs_fat::{ExfatScanner, FatScanner, FatType};
use proptest::prelude::*;

/// A volume whose bytes are `base` with some bytes replaced, and optionally cut short.
struct Overlay<'a> {
    base: &'a [u8],
    changes: BTreeMap<u64, u8>,
    len: u64,
}

impl ReadAt for Overlay<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past end"))?;
        self.base.read_exact_at(buf, offset)?;
        for (&o, &v) in self.changes.range(offset..end) {
            buf[(o - offset) as usize] = v;
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Opens `volume` (borrowed) with `scanner`, one of the two scanners of this crate.
fn open<'a>(
    scanner: &dyn Scanner,
    volume: &'a dyn ReadAt,
) -> Result<Box<dyn UsedBlocks + 'a>, FsError> {
    Ok(if scanner.name() == ExfatScanner.name() {
        Box::new(ExfatScanner.open_exfat(volume)?)
    } else {
        Box::new(FatScanner.open_fat(volume)?)
    })
}

/// Probes, opens and drains; checks the stream invariants when it opens.
fn exercise(scanner: &dyn Scanner, volume: &dyn ReadAt) -> Result<u64, FsError> {
    let _ = scanner.probe(volume);
    let mut s = open(scanner, volume)?;
    let info = s.info().clone();
    assert!(info.total_bytes <= volume.len());
    let mut prev: Option<u64> = None;
    let mut sum = 0;
    let bound = volume.len() / 512 + 4;
    for _ in 0..bound {
        match s.next_extent()? {
            Some(e) => {
                assert!(e.len > 0 && e.end() <= info.total_bytes);
                assert!(prev.is_none_or(|p| p < e.offset), "unsorted");
                prev = Some(e.end());
                sum += e.len;
            }
            None => {
                assert_eq!(sum, info.used_bytes);
                return Ok(sum);
            }
        }
    }
    panic!("stream did not end");
}

fn fixture(name: &str) -> &'static [u8] {
    use std::sync::OnceLock;
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, &'static [u8]>>> = OnceLock::new();
    let m = CACHE.get_or_init(Default::default);
    let mut g = m.lock().unwrap();
    g.entry(name.to_string())
        .or_insert_with(|| Box::leak(fixture_bytes(name).into_boxed_slice()))
}

/// Byte range holding a fixture's metadata (boot region, FATs, root, bitmap) plus a little.
fn meta_end(name: &str) -> u64 {
    let b = fixture(name);
    if name.starts_with("exfat") {
        let boot = lifeboat_fs_fat::ExfatBoot::parse(b).unwrap();
        boot.cluster_offset(2) + 8 * boot.cluster_size()
    } else {
        let bs = lifeboat_fs_fat::BootSector::parse(b).unwrap();
        bs.data_offset() + 4 * bs.cluster_size()
    }
}

const MUTATED: &[&str] = &[
    "fat12-floppy",
    "fat16-2k",
    "fat32-512",
    "exfat-4k",
    "exfat-4kS",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn fat12_entries_round_trip(values in proptest::collection::vec(0u16..0x1000, 1..300),
                                order_seed in any::<u64>()) {
        let n = values.len() as u64;
        let mut fat = vec![0u8; (n * 3).div_ceil(2) as usize + 1];
        // Write in a scrambled order: neighbours sharing a byte must survive.
        let mut idx: Vec<u64> = (0..n).collect();
        let mut x = order_seed | 1;
        for i in (1..idx.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            idx.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for &i in &idx {
            prop_assert!(set_fat12_entry(&mut fat, i, values[i as usize]));
        }
        for i in 0..n {
            prop_assert_eq!(entry(&fat, i, FatType::Fat12), Some(u32::from(values[i as usize])));
        }
        prop_assert!(!set_fat12_entry(&mut fat, 0, 0x1000));
    }

    #[test]
    fn scanners_never_panic_on_mutated_fixtures(
        which in 0..MUTATED.len(),
        muts in proptest::collection::vec((any::<u64>(), any::<u8>()), 1..24),
        cut in proptest::option::weighted(0.1, any::<u64>()),
    ) {
        let name = MUTATED[which];
        let base = fixture(name);
        let end = meta_end(name);
        let mut changes = BTreeMap::new();
        for (o, v) in muts {
            // Mostly the boot sector and the start of the FAT, sometimes anywhere in the
            // metadata.
            let o = if o % 2 == 0 { o % 4096 } else { o % end };
            changes.insert(o, v);
        }
        let len = cut.map_or(base.len() as u64, |c| c % base.len() as u64);
        let v = Overlay { base, changes, len };
        let _ = exercise(&FatScanner, &v);
        let _ = exercise(&ExfatScanner, &v);
    }
}

#[test]
fn probes_are_strict() {
    // Random sectors, even with a jump instruction and the boot signature, are not FAT.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut accepted = 0;
    for i in 0..20_000 {
        let mut b = vec![0u8; 4096];
        for c in b.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        if i % 2 == 0 {
            b[0] = 0xEB;
            b[2] = 0x90;
            b[510] = 0x55;
            b[511] = 0xAA;
        }
        accepted += usize::from(FatScanner.probe(&b)) + usize::from(ExfatScanner.probe(&b));
    }
    assert_eq!(accepted, 0);
    // An NTFS boot sector (no FATs, "NTFS    ") and zeros are not FAT.
    let mut ntfs = vec![0u8; 4096];
    ntfs[0..3].copy_from_slice(&[0xEB, 0x52, 0x90]);
    ntfs[3..11].copy_from_slice(b"NTFS    ");
    ntfs[11..13].copy_from_slice(&512u16.to_le_bytes());
    ntfs[13] = 8;
    ntfs[21] = 0xF8;
    ntfs[510] = 0x55;
    ntfs[511] = 0xAA;
    assert!(!FatScanner.probe(&ntfs));
    assert!(!FatScanner.probe(&vec![0u8; 4096]));
    // exFAT is exFAT only, FAT is FAT only.
    for name in EXFAT_FIXTURES {
        let b = fixture(name);
        assert!(ExfatScanner.probe(&b) && !FatScanner.probe(&b), "{name}");
    }
    for name in ["fat12-floppy", "fat16-2k", "fat32-512"] {
        let b = fixture(name);
        assert!(FatScanner.probe(&b) && !ExfatScanner.probe(&b), "{name}");
    }
}

fn open_err(scanner: &dyn Scanner, v: &dyn ReadAt) -> FsError {
    match open(scanner, v) {
        Ok(_) => panic!("opened a damaged volume"),
        Err(e) => e,
    }
}

#[test]
fn damaged_volumes_are_refused_with_a_typed_error() {
    let fat = fixture("fat16-2k");
    // Cut short: the filesystem does not fit.
    let short = &fat[..fat.len() / 2];
    assert!(matches!(
        open_err(&FatScanner, &short),
        FsError::Corrupt { .. }
    ));
    // FAT32 with an unknown version.
    let f32 = fixture("fat32-512");
    let v = Overlay {
        base: f32,
        changes: [(42, 1)].into(),
        len: f32.len() as u64,
    };
    assert!(matches!(open_err(&FatScanner, &v), FsError::Corrupt { .. }));
    let ex = fixture("exfat-4k");
    // A byte of the boot region changed: the checksum no longer matches.
    let v = Overlay {
        base: ex,
        changes: [(300, 0x5A)].into(),
        len: ex.len() as u64,
    };
    let e = open_err(&ExfatScanner, &v);
    assert!(e.to_string().contains("checksum"), "{e}");
    // The root directory's bitmap entry wiped: no allocation bitmap.
    let boot = lifeboat_fs_fat::ExfatBoot::parse(ex).unwrap();
    let root = boot.cluster_offset(boot.root_cluster);
    let pos = (0..64)
        .map(|i| root + 32 * i)
        .find(|&o| ex[o as usize] == 0x81)
        .unwrap();
    let v = Overlay {
        base: ex,
        changes: [(pos, 0x01)].into(),
        len: ex.len() as u64,
    };
    let e = open_err(&ExfatScanner, &v);
    assert!(e.to_string().contains("allocation bitmap"), "{e}");
    // The root directory's FAT entry pointing outside the heap.
    let fat_entry = boot.fat_byte_offset(0) + 4 * u64::from(boot.root_cluster);
    let v = Overlay {
        base: ex,
        changes: [
            (fat_entry, 0x00),
            (fat_entry + 1, 0x00),
            (fat_entry + 2, 0xF0),
            (fat_entry + 3, 0x00),
        ]
        .into(),
        len: ex.len() as u64,
    };
    assert!(matches!(
        open_err(&ExfatScanner, &v),
        FsError::Corrupt { .. }
    ));
}

fn warnings(scanner: &dyn Scanner, v: &dyn ReadAt) -> Vec<String> {
    open(scanner, v).unwrap().info().warnings.clone()
}

#[test]
fn dirty_flags_become_warnings() {
    // FAT16: entry 1's clean bit (0x8000) cleared, and the boot sector's dirty flag.
    let f16 = fixture("fat16-2k");
    let bs = lifeboat_fs_fat::BootSector::parse(f16).unwrap();
    let e1 = bs.fat_offset(0) + 3;
    let v = Overlay {
        base: f16,
        changes: [(e1, 0x7F)].into(),
        len: f16.len() as u64,
    };
    assert!(warnings(&FatScanner, &v)
        .iter()
        .any(|w| w.contains("clean-shutdown")));
    let v = Overlay {
        base: f16,
        changes: [(37, 1)].into(),
        len: f16.len() as u64,
    };
    assert!(warnings(&FatScanner, &v)
        .iter()
        .any(|w| w.contains("dirty flag")));
    // FAT32: bit 27 of entry 1.
    let f32 = fixture("fat32-512");
    let bs = lifeboat_fs_fat::BootSector::parse(f32).unwrap();
    let e1 = bs.fat_offset(0) + 7;
    let v = Overlay {
        base: f32,
        changes: [(e1, 0x07)].into(),
        len: f32.len() as u64,
    };
    let w = warnings(&FatScanner, &v);
    assert!(w.iter().any(|w| w.contains("clean-shutdown")), "{w:?}");
    // exFAT: VolumeDirty is outside the boot checksum.
    let ex = fixture("exfat-4k");
    let v = Overlay {
        base: ex,
        changes: [(106, 2)].into(),
        len: ex.len() as u64,
    };
    let w = warnings(&ExfatScanner, &v);
    assert!(w.iter().any(|w| w.contains("dirty")), "{w:?}");
    // Mutations never change what is kept.
    assert_eq!(
        exercise(&ExfatScanner, &v).unwrap(),
        exercise(&ExfatScanner, &ex).unwrap()
    );
}

#[test]
fn memory_stays_bounded() {
    let b = fixture("fat32-512");
    let s = FatScanner.open_fat(&b).unwrap();
    assert!(s.memory_bytes() <= 4 << 20, "{}", s.memory_bytes());
    let e = fixture("exfat-512");
    let s = ExfatScanner.open_exfat(&e).unwrap();
    assert!(s.memory_bytes() <= 2 << 20, "{}", s.memory_bytes());
}
