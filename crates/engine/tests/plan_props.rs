//! Properties of the whole-disk restore plan (through `lifeboat_engine::fuzzing`, the entry
//! the `restore_plan` fuzz target uses): for any valid disk layout — MBR with primary and
//! logical partitions or GPT, partitions of every kind of content — and any target size and
//! `--grow` mode, a plan that is made keeps every partition and every written byte inside the
//! target, without overlaps, and keeps sizes unless growing; a target at least as large as
//! the disk is always planned.

use lifeboat_engine::fuzzing::plan_whole_disk;
use proptest::prelude::*;
use serde_json::json;

const MIB: u64 = 1 << 20;
const FILESYSTEMS: &[&str] = &["ext4", "ntfs", "xfs", "LVM2_member", "vfat", "", "swap"];

#[derive(Debug, Clone)]
struct Layout {
    gpt: bool,
    /// (gap before in MiB, size in MiB, filesystem, logical)
    parts: Vec<(u64, u64, usize, bool)>,
    tail_mib: u64,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        prop::collection::vec(
            (0u64..4, 1u64..64, 0..FILESYSTEMS.len(), any::<bool>()),
            1..7,
        ),
        0u64..16,
    )
        .prop_map(|(gpt, parts, tail_mib)| Layout {
            gpt,
            parts,
            tail_mib,
        })
}

/// The disk record JSON of `l` and the disk's size.
fn record(l: &Layout) -> (String, u64) {
    let mut at = MIB;
    let mut parts = Vec::new();
    let mut regions = vec![
        json!({"offset": 0, "len": if l.gpt { 34 * 512 } else { 512 }, "what": if l.gpt { "GPT primary" } else { "MBR" }}),
    ];
    let mut number = 1;
    let mut logical = 5;
    // MBR: the logical partitions come last, after at most three primaries.
    let mut ps = l.parts.clone();
    if !l.gpt {
        ps.sort_by_key(|p| p.3);
        let primaries = ps.iter().filter(|p| !p.3).count();
        for p in ps.iter_mut().skip(3.min(primaries)) {
            p.3 = true;
        }
    }
    for (gap, size, fs, is_logical) in ps {
        let logical_here = !l.gpt && is_logical;
        at += gap * MIB;
        if logical_here {
            // Each logical partition has its EBR one MiB before it.
            at += MIB;
            regions.push(json!({"offset": at - MIB, "len": 512, "what": format!("EBR of logical partition {logical}")}));
        }
        let n = if logical_here {
            logical += 1;
            logical - 1
        } else {
            number += 1;
            number - 1
        };
        parts.push(json!({
            "number": n, "start": at, "size": size * MIB,
            "kind": if l.gpt { "gpt" } else if logical_here { "logical" } else { "primary" },
            "type_code": if l.gpt { "0FC63DAF-8483-4772-8E79-3D69D8477DE4" } else { "0x83" },
            "type_name": "Linux", "name": "", "guid": null, "bootable": false, "saved": true,
            "filesystem": FILESYSTEMS[fs], "mode": "used-blocks", "label": null, "uuid": null,
            "block_size": 4096, "used_bytes": size * MIB / 2, "notes": []
        }));
        at += size * MIB;
    }
    let size = at + l.tail_mib * MIB + if l.gpt { MIB } else { 0 };
    if l.gpt {
        regions.push(json!({"offset": size - 33 * 512, "len": 33 * 512, "what": "GPT backup"}));
    }
    let rec = json!({
        "index": 0, "source": "/dev/prop", "identity": {"model": null, "vendor": null, "serial": null, "wwn": null},
        "size": size, "logical_sector_size": 512, "physical_sector_size": 512,
        "table": {"kind": if l.gpt { "gpt" } else { "mbr" }, "disk_id": "0x12345678", "partitions": parts, "warnings": []},
        "boot_regions": regions, "stored_bytes": 0, "compressed_bytes": 0, "chunks": 0, "data_crc32": ""
    });
    (rec.to_string(), size)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_plan_keeps_partitions_and_data_inside_the_target(
        l in layout(),
        factor in 0.5f64..3.0,
        odd in 0u64..4096,
        grow in 0u8..3,
    ) {
        let (json, size) = record(&l);
        let target = ((size as f64 * factor) as u64 / 512 * 512).saturating_sub(odd / 512 * 512);
        let r = plan_whole_disk(json.as_bytes(), target, grow);
        prop_assert!(r.is_ok(), "{:?}\n{}", r, json);
        if target >= size {
            prop_assert_eq!(r, Ok(true), "a target as large as the disk was refused: {}", json);
        }
    }

    #[test]
    fn mutated_records_never_panic(l in layout(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), target in any::<u64>(), grow in any::<u8>()) {
        let (json, _) = record(&l);
        let mut b = json.into_bytes();
        for (at, v) in edits {
            let i = at.index(b.len());
            b[i] = v;
        }
        let r = plan_whole_disk(&b, target, grow);
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}
