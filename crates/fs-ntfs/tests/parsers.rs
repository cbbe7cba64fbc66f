//! Properties of the on-disk parsers: no panic on any bytes, and round trips.

use lifeboat_fs::{ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_ntfs::mft_record::{apply_fixups, parse_attribute_list, protect, MftRecord};
use lifeboat_fs_ntfs::runlist::{decode, encode, Run};
use lifeboat_fs_ntfs::{BootSector, NtfsScanner};
use proptest::prelude::*;

fn runs_strategy() -> impl Strategy<Value = Vec<Run>> {
    proptest::collection::vec(
        (
            1u64..(1 << 40),
            proptest::option::weighted(0.8, 0u64..(1 << 48)),
        ),
        0..40,
    )
    .prop_map(|v| {
        let mut vcn = 0;
        v.into_iter()
            .map(|(len, lcn)| {
                let r = Run { vcn, len, lcn };
                vcn += len;
                r
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn runlist_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200), vcn in any::<u64>()) {
        let mut n = 0;
        for r in decode(&b, vcn) {
            n += 1;
            prop_assert!(n <= b.len() + 1);
            if let Ok(r) = r {
                prop_assert!(r.len > 0);
            }
        }
    }

    #[test]
    fn runlist_round_trip(runs in runs_strategy()) {
        let bytes = encode(&runs);
        let back: Vec<Run> = decode(&bytes, 0).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(back, runs);
    }

    #[test]
    fn fixups_round_trip(
        body in proptest::collection::vec(any::<u8>(), 4096),
        strides in 1usize..=8,
        usn in 1u16..,
    ) {
        let len = strides * 512;
        let mut rec = body[..len].to_vec();
        rec[0..4].copy_from_slice(b"FILE");
        let orig = rec.clone();
        protect(&mut rec, 0x30, usn);
        apply_fixups(&mut rec, b"FILE", "test").unwrap();
        // Header bytes 4..8 (the array position and size) and the array itself are rewritten.
        prop_assert_eq!(&rec[..4], &orig[..4]);
        let usa_end = 0x30 + 2 * (strides + 1);
        prop_assert_eq!(&rec[usa_end..], &orig[usa_end..]);
    }

    #[test]
    fn fixups_and_records_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if b.len() >= 4 {
            b[0..4].copy_from_slice(b"FILE");
        }
        let _ = apply_fixups(&mut b, b"FILE", "test");
        if let Ok(r) = MftRecord::parse(&b, "test") {
            let mut n = 0;
            for a in r.attributes() {
                n += 1;
                prop_assert!(n <= b.len() / 16 + 1);
                if a.is_err() { break; }
            }
        }
        let _ = parse_attribute_list(&b, None, 100);
    }

    #[test]
    fn boot_sector_parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600), spc in any::<u8>()) {
        let mut b = b;
        if b.len() >= 512 {
            b[3..11].copy_from_slice(b"NTFS    ");
            b[0x0D] = spc;
        }
        if let Ok(bs) = BootSector::parse(&b) {
            prop_assert!(bs.cluster_size.is_power_of_two() && bs.cluster_size <= 2 << 20);
            prop_assert!(bs.clusters() > 0);
        }
    }

    /// Random damage to the metadata at the start of a real volume: never a panic; when
    /// accepted, a well-formed stream.
    #[test]
    fn damaged_volume_never_panics(flips in proptest::collection::vec((0usize..(1 << 16), any::<u8>()), 1..8)) {
        let mut v = volume().to_vec();
        for (at, x) in flips {
            v[at] ^= x | 1;
        }
        let opened = NtfsScanner.open_ntfs(&v);
        if let Ok(mut s) = opened {
            let used = s.info().used_bytes;
            let mut sum = 0;
            let mut prev = None;
            while let Some(e) = s.next_extent().unwrap_or(None) {
                prop_assert!(e.end() <= v.len() as u64);
                if let Some(p) = prev { prop_assert!(e.offset > p); }
                prev = Some(e.end());
                sum += e.len;
            }
            prop_assert!(sum <= used);
        }
    }
}

/// A small real volume (the 4 KiB-cluster fixture), decompressed once.
fn volume() -> &'static [u8] {
    static V: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/ntfs-hiber.img.zst");
        let v = zstd::decode_all(std::fs::File::open(p).unwrap()).unwrap();
        assert!(v.len() > 1 << 16 && NtfsScanner.probe(&v));
        v
    })
}

#[test]
fn the_damage_test_volume_is_accepted_undamaged() {
    let v = volume();
    let s = NtfsScanner.open_ntfs(&v).unwrap();
    assert!(s.info().used_bytes > 0);
    assert!(v.len() as u64 >= s.info().total_bytes);
    let mut b = [0u8; 8];
    v.read_exact_at(&mut b, 3).unwrap();
    assert_eq!(&b, b"NTFS    ");
}
