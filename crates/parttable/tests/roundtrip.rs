//! Property tests: partition sets written by independent writers (`mbrman` for MBR with
//! logical partitions, the `gpt` crate for GPT) read back exactly; arbitrary and mutated
//! bytes never make `read_layout` panic, and every layout it returns keeps its invariants.

use lifeboat_parttable::{
    gpt_type_name, mbr_type_name, read_layout, Layout, Partition, PartitionKind, TableKind,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Cursor;

/// Regions sorted, non-overlapping, inside the disk, outside every partition.
fn assert_invariants(l: &Layout) {
    for w in l.boot_regions.windows(2) {
        assert!(w[0].end() <= w[1].offset, "regions overlap: {w:?}");
    }
    for r in &l.boot_regions {
        assert!(
            r.len > 0 && r.end() <= l.disk_size,
            "{r:?} on {} bytes",
            l.disk_size
        );
        for p in &l.partitions {
            assert!(
                r.end() <= p.start || r.offset >= p.end(),
                "{r:?} overlaps {p:?}"
            );
        }
    }
    if l.kind == TableKind::None {
        assert!(l.partitions.is_empty() && l.boot_regions.is_empty());
    }
}

#[derive(Debug, Clone)]
struct Piece {
    gap: u32,
    size: u32,
    sys: u8,
    boot: bool,
}

fn data_type() -> impl Strategy<Value = u8> {
    // Anything but empty, extended (including mbrman's 0xC5/0xD5) and GPT protective.
    any::<u8>().prop_filter("data partition type", |t| {
        !matches!(t, 0x00 | 0x05 | 0x0f | 0x85 | 0xc5 | 0xd5 | 0xee)
    })
}

fn piece(min_gap: u32) -> impl Strategy<Value = Piece> {
    (min_gap..16u32, 1..64u32, data_type(), any::<bool>()).prop_map(|(gap, size, sys, boot)| {
        Piece {
            gap,
            size,
            sys,
            boot,
        }
    })
}

#[derive(Debug, Clone)]
struct MbrSpec {
    ss: u32,
    signature: u32,
    slots: Vec<u32>,
    primaries: Vec<Piece>,
    logicals: Vec<Piece>,
    ext_gap: u32,
    ext_slack: u32,
}

fn mbr_spec() -> impl Strategy<Value = MbrSpec> {
    (
        prop_oneof![Just(512u32), Just(4096u32)],
        any::<u32>(),
        Just(vec![1u32, 2, 3, 4]).prop_shuffle(),
        prop::collection::vec(piece(0), 0..=3),
        prop::collection::vec(piece(1), 0..8),
        0..8u32,
        0..8u32,
    )
        .prop_map(
            |(ss, signature, slots, primaries, logicals, ext_gap, ext_slack)| MbrSpec {
                ss,
                signature,
                slots,
                primaries,
                logicals,
                ext_gap,
                ext_slack,
            },
        )
}

/// Writes the spec with mbrman; returns the disk and the partitions expected back.
fn build_mbr(spec: &MbrSpec) -> (Vec<u8>, Vec<Partition>) {
    let ss = u64::from(spec.ss);
    let mut expected = Vec::new();
    let mut cursor = 1u32;
    let mut primaries = Vec::new();
    for (i, p) in spec.primaries.iter().enumerate() {
        let start = cursor + p.gap;
        cursor = start + p.size;
        primaries.push((spec.slots[i], start, p));
    }
    // Logicals: EBR, gap of at least one sector, partition.
    let mut logicals = Vec::new();
    let ext_start = cursor + spec.ext_gap;
    let mut at = ext_start;
    for (i, p) in spec.logicals.iter().enumerate() {
        let ebr = if i == 0 { ext_start } else { at + p.gap };
        let start = ebr + p.gap.max(1);
        at = start + p.size;
        logicals.push((ebr, start, p));
    }
    let ext_end = at + spec.ext_slack;
    let end = if logicals.is_empty() {
        cursor
    } else {
        ext_end.max(ext_start + 1)
    };
    let disk_sectors = end + 4;
    let mut dev = Cursor::new(vec![0u8; disk_sectors as usize * spec.ss as usize]);
    let mut mbr = mbrman::MBR::new_from(&mut dev, spec.ss, spec.signature.to_le_bytes()).unwrap();
    let entry = |sys: u8, boot: bool, start: u32, sectors: u32| mbrman::MBRPartitionEntry {
        boot: if boot {
            mbrman::BOOT_ACTIVE
        } else {
            mbrman::BOOT_INACTIVE
        },
        first_chs: mbrman::CHS::empty(),
        sys,
        last_chs: mbrman::CHS::empty(),
        starting_lba: start,
        sectors,
    };
    for (slot, start, p) in &primaries {
        mbr[*slot as usize] = entry(p.sys, p.boot, *start, p.size);
        expected.push(Partition {
            number: *slot,
            start: u64::from(*start) * ss,
            size: u64::from(p.size) * ss,
            kind: PartitionKind::Primary,
            type_code: format!("0x{:02x}", p.sys),
            type_name: mbr_type_name(p.sys).to_string(),
            name: String::new(),
            guid: None,
            bootable: p.boot,
        });
    }
    if !logicals.is_empty() {
        let slot = spec.slots[primaries.len()] as usize;
        mbr[slot] = entry(0x0f, false, ext_start, ext_end - ext_start);
    }
    for (i, (ebr, start, p)) in logicals.iter().enumerate() {
        let next_ebr_sectors = start + p.size - ebr;
        mbr.logical_partitions.push(mbrman::LogicalPartition {
            partition: entry(p.sys, p.boot, *start, p.size),
            absolute_ebr_lba: *ebr,
            ebr_sectors: (i > 0).then_some(next_ebr_sectors),
            bootstrap_code: [0; 446],
            ebr_first_chs: mbrman::CHS::empty(),
            ebr_last_chs: (i > 0).then_some(mbrman::CHS::empty()),
        });
        expected.push(Partition {
            number: 5 + i as u32,
            start: u64::from(*start) * ss,
            size: u64::from(p.size) * ss,
            kind: PartitionKind::Logical,
            type_code: format!("0x{:02x}", p.sys),
            type_name: mbr_type_name(p.sys).to_string(),
            name: String::new(),
            guid: None,
            bootable: p.boot,
        });
    }
    mbr.write_into(&mut dev).unwrap();
    expected.sort_by_key(|p| p.number);
    (dev.into_inner(), expected)
}

#[derive(Debug, Clone)]
struct GptPart {
    gap: u64,
    size: u64,
    type_guid: String,
    guid: [u8; 16],
    name: String,
    flags: u64,
}

fn guid_string(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn gpt_part() -> impl Strategy<Value = GptPart> {
    let known = prop::sample::select(vec![
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        "AA31E02A-400F-11DB-9590-000C2911D1B8",
    ])
    .prop_map(String::from);
    let random = any::<[u8; 16]>()
        .prop_filter("non-nil", |b| b.iter().any(|x| *x != 0))
        .prop_map(|b| guid_string(&b));
    (
        0..16u64,
        1..64u64,
        prop_oneof![known, random],
        any::<[u8; 16]>(),
        "[a-zA-Z0-9 äöüÆ€_-]{0,36}",
        any::<u64>(),
    )
        .prop_map(|(gap, size, type_guid, guid, name, flags)| GptPart {
            gap,
            size,
            type_guid,
            guid,
            name,
            flags,
        })
}

/// Writes a GPT with the `gpt` crate; returns the disk and the partitions expected back.
fn build_gpt(
    ss: u64,
    disk_guid: [u8; 16],
    parts: &[GptPart],
    slack: u64,
) -> (Vec<u8>, Vec<Partition>) {
    let esec = 16384 / ss;
    let first_usable = 2 + esec;
    let mut at = first_usable;
    let mut placed = Vec::new();
    for p in parts {
        let first = at + p.gap;
        let last = first + p.size - 1;
        at = last + 1;
        placed.push((first, last, p));
    }
    // At least one usable sector: the gpt crate refuses a table with an empty usable range.
    let total = (at + slack).max(first_usable + 1) + esec + 1;
    let mut dev = Cursor::new(vec![0u8; (total * ss) as usize]);
    gpt::mbr::ProtectiveMBR::with_lb_size((total - 1) as u32)
        .overwrite_lba0(&mut dev)
        .unwrap();
    let lb = if ss == 4096 {
        gpt::disk::LogicalBlockSize::Lb4096
    } else {
        gpt::disk::LogicalBlockSize::Lb512
    };
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(lb)
        .create_from_device(dev, Some(guid_string(&disk_guid).parse().unwrap()))
        .unwrap();
    let mut map = BTreeMap::new();
    let mut expected = Vec::new();
    for (i, (first, last, p)) in placed.iter().enumerate() {
        let guid = guid_string(&p.guid);
        map.insert(
            i as u32 + 1,
            gpt::partition::Partition {
                part_type_guid: p.type_guid.parse().unwrap(),
                part_guid: guid.parse().unwrap(),
                first_lba: *first,
                last_lba: *last,
                flags: p.flags,
                name: p.name.clone(),
            },
        );
        expected.push(Partition {
            number: i as u32 + 1,
            start: first * ss,
            size: (last - first + 1) * ss,
            kind: PartitionKind::Gpt,
            type_code: p.type_guid.clone(),
            type_name: gpt_type_name(&p.type_guid).to_string(),
            name: p.name.clone(),
            guid: Some(guid),
            bootable: p.flags & 4 != 0,
        });
    }
    disk.update_partitions(map).unwrap();
    let dev = disk.write().unwrap();
    (dev.into_inner(), expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mbr_round_trips(spec in mbr_spec()) {
        let (disk, expected) = build_mbr(&spec);
        let l = read_layout(&disk, spec.ss).unwrap();
        prop_assert_eq!(l.kind, TableKind::Mbr);
        prop_assert_eq!(l.disk_id.clone(), Some(format!("0x{:08x}", spec.signature)));
        prop_assert_eq!(&l.partitions, &expected);
        prop_assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_invariants(&l);
        let ss = u64::from(spec.ss);
        if let Some(first) = expected.iter().map(|p| p.start).min() {
            prop_assert_eq!(l.boot_regions[0].offset, 0);
            prop_assert_eq!(l.boot_regions[0].end(), first.min(l.boot_regions[0].end()));
            prop_assert!(l.boot_regions[0].end() >= ss);
        }
        // Every EBR sector is in a region.
        let ebrs = l.partitions.iter().filter(|p| p.kind == PartitionKind::Logical).count();
        let ebr_regions = l.boot_regions.iter().filter(|r| r.what.contains("EBR")).count();
        prop_assert!(ebr_regions >= ebrs.min(1) && ebr_regions <= ebrs);
    }

    #[test]
    fn gpt_round_trips(
        ss in prop_oneof![Just(512u64), Just(4096u64)],
        disk_guid in any::<[u8; 16]>(),
        parts in prop::collection::vec(gpt_part(), 0..8),
        slack in 0..32u64,
    ) {
        let (disk, expected) = build_gpt(ss, disk_guid, &parts, slack);
        let l = read_layout(&disk, ss as u32).unwrap();
        prop_assert_eq!(l.kind, TableKind::Gpt);
        prop_assert_eq!(l.disk_id.clone(), Some(guid_string(&disk_guid)));
        prop_assert_eq!(&l.partitions, &expected);
        prop_assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_invariants(&l);
        let sectors = disk.len() as u64 / ss;
        let last = l.boot_regions.last().unwrap();
        prop_assert_eq!(last.end(), sectors * ss);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        for ss in [512, 4096] {
            if let Ok(l) = read_layout(&bytes, ss) {
                assert_invariants(&l);
            }
        }
    }

    #[test]
    fn mutated_tables_never_panic(
        spec in mbr_spec(),
        gpt_parts in prop::collection::vec(gpt_part(), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        use_gpt in any::<bool>(),
    ) {
        let (mut disk, ss) = if use_gpt {
            (build_gpt(512, [7; 16], &gpt_parts, 3).0, 512)
        } else {
            (build_mbr(&spec).0, spec.ss)
        };
        // Mutate the table areas: the first sectors and the last ones.
        let n = disk.len();
        let hot = 3 * ss as usize;
        for (idx, v) in flips {
            let i = idx.index(2 * hot);
            let at = if i < hot { i } else { n.saturating_sub(2 * hot - i) };
            if at < n {
                disk[at] = v;
            }
        }
        for s in [512, 4096] {
            if let Ok(l) = read_layout(&disk, s) {
                assert_invariants(&l);
            }
        }
    }
}
