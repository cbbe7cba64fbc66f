//! The typed DISK and disk-list record bodies: what `to_json` writes parses back to the same
//! record, lists are checked against the count their header announces, and no input makes
//! the parsers panic or read past their bound.

use lifeboat_container::format::MAX_JSON_LEN;
use lifeboat_container::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./_\u{e9}\"\\\\-]{0,12}"
}

fn partition(disk_size: u64) -> impl Strategy<Value = PartitionRecord> {
    (
        (0..disk_size, any::<u32>(), any::<bool>(), any::<bool>()),
        (text(), text(), proptest::option::of(text()), any::<u64>()),
        (
            proptest::collection::vec(text(), 0..3),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(volume(), 0..3),
        ),
    )
        .prop_map(
            move |(
                (start, n, bootable, saved),
                (name, label, uuid, used),
                (notes, files, volumes),
            )| {
                PartitionRecord {
                    number: n % 130,
                    start,
                    size: (disk_size - start) / 2,
                    kind: "gpt".into(),
                    type_code: "0x83".into(),
                    type_name: name.clone(),
                    name,
                    guid: uuid.clone(),
                    bootable,
                    saved,
                    filesystem: "ext4".into(),
                    mode: "used-blocks".into(),
                    label: Some(label),
                    uuid,
                    block_size: 4096,
                    used_bytes: used,
                    notes,
                    files,
                    unallocated_bytes: (!volumes.is_empty()).then_some(used / 2),
                    volumes,
                }
            },
        )
}

fn volume() -> impl Strategy<Value = VolumeRecord> {
    (
        text(),
        any::<u64>(),
        proptest::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(name, size, label, raw)| VolumeRecord {
            name: format!("vg/{name}"),
            layout: "linear".into(),
            size,
            filesystem: "xfs".into(),
            mode: if raw { "raw" } else { "used-blocks" }.into(),
            label,
            uuid: None,
            used_bytes: size / 3,
            notes: Vec::new(),
            volumes: if raw {
                Vec::new()
            } else {
                vec![VolumeRecord {
                    name: "inner".into(),
                    layout: "linear".into(),
                    size: size / 2,
                    filesystem: "ext4".into(),
                    mode: "used-blocks".into(),
                    label: None,
                    uuid: None,
                    used_bytes: 0,
                    notes: vec!["n".into()],
                    volumes: Vec::new(),
                }]
            },
        })
}

fn disk(index: u32) -> impl Strategy<Value = DiskRecord> {
    (1u64..1 << 50, 9u32..17, text()).prop_flat_map(move |(size, shift, source)| {
        (
            proptest::collection::vec(partition(size), 0..5),
            proptest::collection::vec((0..size, text()), 0..4),
            proptest::option::of(text()),
        )
            .prop_map(move |(mut partitions, regions, serial)| {
                // A valid record: each partition number once, boot regions outside the
                // partitions (here: after the last partition's end).
                for (i, p) in partitions.iter_mut().enumerate() {
                    p.number = p.number / 8 * 8 + i as u32;
                }
                let end = partitions
                    .iter()
                    .map(|p| p.start + p.size)
                    .max()
                    .unwrap_or(0);
                DiskRecord {
                    index,
                    source: source.clone(),
                    identity: Identity {
                        serial,
                        ..Identity::default()
                    },
                    size,
                    logical_sector_size: 1 << shift,
                    physical_sector_size: 1 << shift,
                    table: TableRecord {
                        kind: "gpt".into(),
                        disk_id: None,
                        partitions,
                        warnings: vec![],
                    },
                    boot_regions: regions
                        .into_iter()
                        .map(|(offset, what)| {
                            let offset = end + offset % (size - end + 1);
                            RegionRecord {
                                offset,
                                len: size - offset,
                                what,
                            }
                        })
                        .collect(),
                    stored_bytes: 0,
                    compressed_bytes: 0,
                    chunks: 0,
                    data_crc32: String::new(),
                }
            })
    })
}

fn disks() -> impl Strategy<Value = Vec<DiskRecord>> {
    (1u32..4).prop_flat_map(|n| (0..n).map(disk).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_disk_record_round_trips(d in disk(0)) {
        let json = d.to_json();
        let back = DiskRecord::from_json(&json, 0).unwrap();
        prop_assert_eq!(&back, &d);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn a_disk_list_round_trips_and_must_match_its_count(list in disks()) {
        let n = list.len() as u32;
        let json = DiskRecord::list_to_json(&list);
        prop_assert_eq!(DiskRecord::list_from_json(&json, n, 0).unwrap(), list);
        prop_assert!(DiskRecord::list_from_json(&json, n + 1, 0).is_err());
        prop_assert!(DiskRecord::list_from_json(&json, n - 1, 0).is_err());
    }

    #[test]
    fn mutated_bodies_never_panic(d in disk(0), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut json = d.to_json();
        for (at, b) in flips {
            let i = at.index(json.len());
            json[i] = b;
        }
        if let Ok(back) = DiskRecord::from_json(&json, 0) {
            prop_assert!(back.validate().is_ok());
        }
        let _ = DiskRecord::list_from_json(&json, 1, 0);
    }
}

#[test]
fn lists_out_of_order_and_invalid_records_are_refused() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let a = disk(0).new_tree(&mut runner).unwrap().current();
    let mut b = a.clone();
    b.index = 1;
    let json = DiskRecord::list_to_json(&[b.clone(), a.clone()]);
    let e = DiskRecord::list_from_json(&json, 2, 77).unwrap_err();
    assert!(e.to_string().contains("index"), "{e}");
    assert_eq!(e.position(), Some(77));
    b.logical_sector_size = 1000;
    let json = DiskRecord::list_to_json(&[a.clone(), b]);
    assert!(DiskRecord::list_from_json(&json, 2, 0).is_err());
    assert!(DiskRecord::list_from_json(b"{}", 1, 0).is_err());
    assert!(DiskRecord::list_from_json(b"[]", 0, 0).unwrap().is_empty());
}

#[test]
fn a_record_with_a_partition_number_twice_or_a_region_inside_a_partition_is_invalid() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut d = disk(0).new_tree(&mut runner).unwrap().current();
    while d.table.partitions.len() < 2 || d.table.partitions[0].size == 0 {
        d = disk(0).new_tree(&mut runner).unwrap().current();
    }
    assert_eq!(d.validate(), Ok(()));
    let mut twice = d.clone();
    twice.table.partitions[1].number = twice.table.partitions[0].number;
    assert!(twice.validate().unwrap_err().contains("appears twice"));
    // A region inside the first partition, and one that only touches its end (valid).
    let p = d.table.partitions[0].clone();
    let mut inside = d.clone();
    inside.boot_regions = vec![RegionRecord {
        offset: p.start + p.size / 2,
        len: 1,
        what: "EBR of logical partition 5".into(),
    }];
    assert!(inside
        .validate()
        .unwrap_err()
        .contains("inside a partition"));
    let mut overlapping_start = d.clone();
    overlapping_start.boot_regions = vec![RegionRecord {
        offset: p.start.saturating_sub(1),
        len: 2,
        what: "gap".into(),
    }];
    assert!(overlapping_start.validate().is_err());
    let mut touching = d.clone();
    let end = d
        .table
        .partitions
        .iter()
        .map(|p| p.start + p.size)
        .max()
        .unwrap();
    touching.boot_regions = vec![RegionRecord {
        offset: end,
        len: d.size - end,
        what: "after".into(),
    }];
    assert_eq!(touching.validate(), Ok(()));
}

#[test]
fn bodies_past_the_bound_are_refused_unread() {
    // Valid JSON (whitespace) one byte past the bound: refused for its size, not parsed.
    let mut big = vec![b' '; MAX_JSON_LEN as usize + 1];
    big[0] = b'[';
    *big.last_mut().unwrap() = b']';
    for e in [
        DiskRecord::list_from_json(&big, 0, 0).unwrap_err(),
        DiskRecord::from_json(&big, 0).unwrap_err(),
    ] {
        assert!(e.to_string().contains("too large"), "{e}");
    }
}
