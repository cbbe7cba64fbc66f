//! Generated volume groups (linear and striped segments on 1-3 PVs, allocated out of order)
//! laid out and driven through [`crate::member_used`] with a fake scanner, against a
//! brute-force model of where each logical byte lies.

use super::Lvm2;
use crate::{member_used, Content, Scan, VolumeManager};
use lifeboat_fs::{Extent, FsError, FsInfo, ReadAt, SharedVolume, UsedBlocks};
use proptest::prelude::*;
use std::sync::Arc;

const UNIT: u64 = 512;
const EXTENT_SECTORS: u64 = 8; // 4 KiB extents
const EXT: u64 = EXTENT_SECTORS * UNIT;
const PE_START: u64 = 24; // sectors: label, then a metadata area at 4096 of 8192 bytes
const PE_COUNT: u64 = 16;
const DEV: u64 = PE_START * UNIT + PE_COUNT * EXT + 1024;

fn pv_image(uuid: &str, dev_len: u64, text: &str) -> Vec<u8> {
    super::testgen::pv_image(uuid, dev_len, PE_START, text)
}

fn uuid(i: usize) -> String {
    format!("{i}ABCDEFGHIJKLMNOPQRSTUVWXYZabcde")[..32].to_string()
}

#[derive(Debug, Clone)]
struct Seg {
    extents_per_stripe: u64,
    /// (pv, first PE) per stripe.
    stripes: Vec<(usize, u64)>,
    stripe_sectors: u64,
}

/// Where LV unit `u` lies: (pv, byte).
fn locate(segs: &[Seg], u: u64) -> (usize, u64) {
    let mut x = u * UNIT;
    for s in segs {
        let len = s.extents_per_stripe * EXT * s.stripes.len() as u64;
        if x < len {
            let n = s.stripes.len() as u64;
            let c = s.stripe_sectors * UNIT;
            let (k, within) = if n == 1 {
                (0, x)
            } else {
                ((x / c) % n, (x / c / n) * c + x % c)
            };
            let (pv, pe) = s.stripes[k as usize];
            return (pv, PE_START * UNIT + pe * EXT + within);
        }
        x -= len;
    }
    unreachable!("unit beyond the LV")
}

fn text(npv: usize, lvs: &[Vec<Seg>]) -> String {
    let mut t = String::from("vgm {\nid = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\"\nseqno = 3\n");
    t += &format!("extent_size = {EXTENT_SECTORS}\nphysical_volumes {{\n");
    for i in 0..npv {
        t += &format!(
            "pv{i} {{\nid = \"{}\"\ndev_size = {}\npe_start = {PE_START}\npe_count = {PE_COUNT}\n}}\n",
            uuid(i),
            DEV / UNIT
        );
    }
    t += "}\nlogical_volumes {\n";
    for (l, segs) in lvs.iter().enumerate() {
        t += &format!("lv{l} {{\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n");
        let mut start = 0;
        for (j, s) in segs.iter().enumerate() {
            let count = s.extents_per_stripe * s.stripes.len() as u64;
            let list: Vec<String> = s
                .stripes
                .iter()
                .map(|(p, e)| format!("\"pv{p}\", {e}"))
                .collect();
            t += &format!(
                "segment{} {{\nstart_extent = {start}\nextent_count = {count}\ntype = \"striped\"\n\
                 stripe_count = {}\nstripe_size = {}\nstripes = [{}]\n}}\n",
                j + 1,
                s.stripes.len(),
                s.stripe_sectors,
                list.join(", ")
            );
            start += count;
        }
        t += "}\n";
    }
    t + "}\n}\ncontents = \"Text Format Volume Group\"\nversion = 1\n"
}

/// Reads the view unit by unit: each must carry its (lv, unit) tag; a unit is used when its
/// tag byte says so.
struct TagScan {
    info: FsInfo,
    used: std::vec::IntoIter<Extent>,
}
impl UsedBlocks for TagScan {
    fn info(&self) -> &FsInfo {
        &self.info
    }
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        Ok(self.used.next())
    }
}
fn tag_scan() -> Scan {
    Arc::new(|v: SharedVolume| {
        let mut all = vec![0u8; v.len() as usize];
        v.read_exact_at(&mut all, 0).unwrap();
        let lv = all[0];
        let mut used: Vec<Extent> = Vec::new();
        for (u, b) in all.chunks(UNIT as usize).enumerate() {
            assert_eq!(b[0], lv, "unit {u} belongs to another volume");
            assert_eq!(u32::from_le_bytes(b[1..5].try_into().unwrap()), u as u32);
            if b[5] == 1 {
                match used.last_mut() {
                    Some(e) if e.end() == u as u64 * UNIT => e.len += UNIT,
                    _ => used.push(Extent::new(u as u64 * UNIT, UNIT)),
                }
            }
        }
        let n = used.iter().map(|e| e.len).sum();
        let info = FsInfo {
            used_bytes: n,
            total_bytes: v.len(),
            ..FsInfo::default()
        };
        (
            Box::new(TagScan {
                info,
                used: used.into_iter(),
            }) as Box<dyn UsedBlocks>,
            false,
        )
    })
}

/// Per segment: extents per stripe, stripes, stripe size (power of 2 sectors), first PV.
type Shape = Vec<Vec<(u64, usize, u64, u64)>>;

fn plan() -> impl Strategy<Value = (usize, Shape, Vec<u8>, u64)> {
    // (pvs, per LV: segments (extents per stripe, stripes, stripe size pow, first pv),
    //  allocation order keys, used-unit seed)
    (1usize..4).prop_flat_map(|npv| {
        (
            Just(npv),
            proptest::collection::vec(
                proptest::collection::vec((1u64..3, 1usize..=npv, 0u64..4, 0u64..3), 1..4),
                1..4,
            ),
            proptest::collection::vec(any::<u8>(), 12),
            any::<u64>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_used_byte_lands_once_where_the_model_says(
        (npv, shape, order, seed) in plan()
    ) {
        // Allocate every segment's stripes on distinct PVs, in a shuffled order.
        let mut lvs: Vec<Vec<Option<Seg>>> =
            shape.iter().map(|s| vec![None; s.len()]).collect();
        let mut jobs: Vec<(usize, usize)> = shape
            .iter()
            .enumerate()
            .flat_map(|(l, s)| (0..s.len()).map(move |j| (l, j)))
            .collect();
        jobs.sort_by_key(|(l, j)| order[(l * 3 + j) % order.len()]);
        let mut cursor = vec![0u64; npv];
        for (l, j) in jobs {
            let (eps, n, pow, first) = shape[l][j];
            let mut stripes = Vec::new();
            for k in 0..n {
                let pv = (first as usize + k) % npv;
                if cursor[pv] + eps > PE_COUNT {
                    return Ok(()); // does not fit: nothing to check
                }
                stripes.push((pv, cursor[pv]));
                cursor[pv] += eps;
            }
            lvs[l][j] = Some(Seg { extents_per_stripe: eps, stripes, stripe_sectors: 1 << pow });
        }
        let lvs: Vec<Vec<Seg>> = lvs.into_iter().map(|s| s.into_iter().map(Option::unwrap).collect()).collect();
        let t = text(npv, &lvs);
        let mut imgs: Vec<Vec<u8>> = (0..npv).map(|i| pv_image(&uuid(i), DEV, &t)).collect();
        // Tag every unit of every LV at the model's place; mark some used.
        let mut expect: Vec<Vec<Extent>> = vec![Vec::new(); npv];
        let mut rng = seed;
        for (l, segs) in lvs.iter().enumerate() {
            let units: u64 = segs.iter().map(|s| s.extents_per_stripe * EXT * s.stripes.len() as u64).sum::<u64>() / UNIT;
            for u in 0..units {
                let (pv, at) = locate(segs, u);
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let used = (rng >> 33) % 3 != 0;
                let b = &mut imgs[pv][at as usize..(at + UNIT) as usize];
                b[0] = l as u8 + 1;
                b[1..5].copy_from_slice(&(u as u32).to_le_bytes());
                b[5] = used as u8;
                if used {
                    expect[pv].push(Extent::new(at, UNIT));
                }
            }
        }
        let members: Vec<SharedVolume> = imgs.into_iter().map(|i| Arc::new(i) as SharedVolume).collect();
        let layouts = Lvm2.assemble(&members);
        for (pv, (member, layout)) in members.iter().zip(layouts).enumerate() {
            let layout = layout.unwrap();
            prop_assert_eq!(&layout.kept, &vec![Extent::new(0, PE_START * UNIT)]);
            for v in &layout.volumes {
                prop_assert!(matches!(v.content, Content::Mapped(_)), "{:?}", v);
            }
            let mut used = member_used(member, layout, tag_scan()).unwrap();
            let got = lifeboat_testkit::drain_checked(&mut used, member.len());
            let mut want = expect[pv].clone();
            want.push(Extent::new(0, PE_START * UNIT));
            want.sort_by_key(|e| e.offset);
            let mut merged: Vec<Extent> = Vec::new();
            for e in want {
                match merged.last_mut() {
                    Some(p) if p.end() == e.offset => p.len += e.len,
                    _ => merged.push(e),
                }
            }
            prop_assert_eq!(got, merged);
        }
    }
}

#[test]
fn a_pv_missing_from_the_group_makes_its_volumes_raw() {
    let segs = vec![
        vec![Seg {
            extents_per_stripe: 2,
            stripes: vec![(0, 0), (1, 0)],
            stripe_sectors: 4,
        }],
        vec![Seg {
            extents_per_stripe: 2,
            stripes: vec![(0, 2)],
            stripe_sectors: 1,
        }],
    ];
    let t = text(2, &segs);
    let a: SharedVolume = Arc::new(pv_image(&uuid(0), DEV, &t));
    let l = Lvm2.assemble(&[a]).remove(0).unwrap();
    assert_eq!(l.volumes.len(), 2);
    assert!(
        matches!(&l.volumes[0].content, Content::Raw(r) if r.contains("abcde")),
        "{:?}",
        l.volumes[0]
    );
    assert!(matches!(l.volumes[1].content, Content::Mapped(_)));
    assert!(
        l.warnings.iter().any(|w| w.contains("pv1")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn a_pv_whose_vg_is_unknown_is_copied_whole_and_a_true_orphan_is_not() {
    // No metadata in the area (an orphan): label and area kept, the rest unallocated.
    let mut img = pv_image(&uuid(0), DEV, "");
    let mda = super::mda::build(4096, 8192, 512, b"");
    img[4096..4096 + 8192].copy_from_slice(&mda);
    // Clear the committed location: the area holds no metadata.
    img[4096 + 40..4096 + 64].fill(0);
    let crc = super::label::lvm_crc(super::label::CRC_INITIAL, &img[4096 + 4..4096 + 512]);
    img[4096..4100].copy_from_slice(&crc.to_le_bytes());
    let orphan: SharedVolume = Arc::new(img.clone());
    let l = Lvm2.assemble(&[orphan]).remove(0).unwrap();
    assert!(l.volumes.is_empty());
    assert_eq!(l.kept, vec![Extent::new(0, PE_START * UNIT)]);
    // The same PV flagged as used by a VG (PV header extension, flag 1): refused.
    let s = &mut img[512..1024];
    s[136..140].copy_from_slice(&2u32.to_le_bytes());
    s[140..144].copy_from_slice(&1u32.to_le_bytes());
    let crc = super::label::lvm_crc(super::label::CRC_INITIAL, &s[20..512]);
    s[16..20].copy_from_slice(&crc.to_le_bytes());
    let used: SharedVolume = Arc::new(img);
    let e = Lvm2.assemble(&[used]).remove(0).unwrap_err();
    assert!(e.to_string().contains("copied whole"), "{e}");
}

#[test]
fn a_pv_shrinks_down_to_its_last_allocated_extent_and_metadata() {
    // lv0: linear on pv0 extents 2..6; lv1: striped over pv0 from extent 10 and pv1 from
    // extent 1, 3 extents per stripe.
    let lvs = vec![
        vec![Seg {
            extents_per_stripe: 4,
            stripes: vec![(0, 2)],
            stripe_sectors: 0,
        }],
        vec![Seg {
            extents_per_stripe: 3,
            stripes: vec![(0, 10), (1, 1)],
            stripe_sectors: 8,
        }],
    ];
    let t = text(2, &lvs);
    let pv0 = pv_image(&uuid(0), DEV, &t);
    let pv1 = pv_image(&uuid(1), DEV, &t);
    assert_eq!(
        super::pv_shrink_limit(&pv0).unwrap(),
        PE_START * UNIT + 13 * EXT
    );
    assert_eq!(
        super::pv_shrink_limit(&pv1).unwrap(),
        PE_START * UNIT + 4 * EXT
    );
    // No LV: the label, the metadata area (4096 + 8192) and pe_start.
    let empty = pv_image(&uuid(0), DEV, &text(1, &[]));
    assert_eq!(super::pv_shrink_limit(&empty).unwrap(), PE_START * UNIT);
    // Not a PV at all.
    assert!(super::pv_shrink_limit(&vec![0u8; DEV as usize]).is_err());
}
