//! LVM2 made by the real tools (pvcreate, vgcreate, lvcreate, lvextend, vgcfgrestore) on
//! loop devices with activation off, compared with what `lvs`, `pvs` and `vgs` report.
//!
//! Each logical volume's extents are filled with a pattern through the offsets the LVM tools
//! report (an independent model of the mapping); the layouts must then read every byte back
//! through their mapped views and map the used bytes back onto the same member offsets.

mod common;

use common::*;
use lifeboat_fs::{Extent, FsError, FsInfo, ReadAt, SharedVolume, UsedBlocks};
use lifeboat_volume::{
    detect, lvm, member_used, Content, LogicalVolume, MemberLayout, Scan, VolumeManager,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 4096;

fn tools() -> [(&'static str, &'static str); 6] {
    [
        ("pvcreate", "lvm2"),
        ("vgcreate", "lvm2"),
        ("lvcreate", "lvm2"),
        ("lvs", "lvm2"),
        ("vgcfgrestore", "lvm2"),
        ("losetup", "util-linux"),
    ]
}

/// One segment as `lvs --segments` reports it.
#[derive(Debug, Clone)]
struct Seg {
    start: u64,
    size: u64,
    stripes: u64,
    stripe_size: u64,
    /// (device, first PE) per stripe.
    ranges: Vec<(String, u64)>,
}

/// The VG as the LVM tools report it.
struct Model {
    extent: u64,
    seqno: u64,
    vg_uuid: String,
    /// device -> (pe_start bytes, PV UUID)
    pvs: HashMap<String, (u64, String)>,
    lvs: HashMap<String, Vec<Seg>>,
}

impl Model {
    fn read(lvm: &Lvm, vg: &str) -> Model {
        let v = &lvm.report("vgs", &["-o", "vg_extent_size,seqno,vg_uuid", vg])[0];
        let pvs = lvm
            .report("pvs", &["-o", "pv_name,pe_start,pv_uuid,vg_name"])
            .into_iter()
            .filter(|r| r[3] == vg)
            .map(|r| (r[0].clone(), (r[1].parse().unwrap(), r[2].clone())))
            .collect();
        let mut lvs: HashMap<String, Vec<Seg>> = HashMap::new();
        for r in lvm.report(
            "lvs",
            &[
                "-a",
                "--segments",
                "-o",
                "lv_name,seg_start,seg_size,stripes,stripe_size,seg_pe_ranges",
                vg,
            ],
        ) {
            let ranges = r[5]
                .split_whitespace()
                .filter_map(|x| {
                    let (dev, pe) = x.rsplit_once(':')?;
                    let first = pe.split('-').next()?.parse().ok()?;
                    Some((dev.to_string(), first))
                })
                .collect();
            let name = r[0].trim_matches(|c| c == '[' || c == ']').to_string();
            lvs.entry(name).or_default().push(Seg {
                start: r[1].parse().unwrap(),
                size: r[2].parse().unwrap(),
                stripes: r[3].parse().unwrap(),
                stripe_size: r[4].parse().unwrap(),
                ranges,
            });
        }
        Model {
            extent: v[0].parse().unwrap(),
            seqno: v[1].parse().unwrap(),
            vg_uuid: v[2].clone(),
            pvs,
            lvs,
        }
    }

    fn size(&self, lv: &str) -> u64 {
        self.lvs[lv].iter().map(|s| s.start + s.size).max().unwrap()
    }

    /// Where byte `x` of `lv` lies: (device, byte on it), from the tools' report alone.
    fn locate(&self, lv: &str, x: u64) -> (String, u64) {
        let s = self.lvs[lv]
            .iter()
            .find(|s| s.start <= x && x < s.start + s.size)
            .unwrap();
        let rel = x - s.start;
        let (k, within) = if s.stripes <= 1 {
            (0, rel)
        } else {
            let chunk = rel / s.stripe_size;
            let row = chunk / s.stripes;
            (
                (chunk % s.stripes) as usize,
                row * s.stripe_size + rel % s.stripe_size,
            )
        };
        let (dev, pe) = &s.ranges[k];
        (dev.clone(), self.pvs[dev].0 + pe * self.extent + within)
    }
}

/// The content written into `lv`: each 4 KiB block names the volume and its offset.
fn pattern(lv: &str, x: u64) -> Vec<u8> {
    let mut b = vec![(x / BLOCK % 251) as u8; BLOCK as usize];
    let tag = format!("{lv}@{x}");
    b[..tag.len()].copy_from_slice(tag.as_bytes());
    b
}

/// Writes every block of the given LVs into the images at the offsets the model gives.
fn fill(model: &Model, images: &HashMap<String, PathBuf>, lvs: &[&str]) {
    let mut data: HashMap<String, Vec<u8>> = images
        .iter()
        .map(|(d, p)| (d.clone(), std::fs::read(p).unwrap()))
        .collect();
    for lv in lvs {
        let mut x = 0;
        while x < model.size(lv) {
            let (dev, at) = model.locate(lv, x);
            data.get_mut(&dev).unwrap()[at as usize..(at + BLOCK) as usize]
                .copy_from_slice(&pattern(lv, x));
            x += BLOCK;
        }
    }
    for (d, p) in images {
        std::fs::write(p, &data[d]).unwrap();
    }
}

/// Reads `lv` whole through its mapped view, in reads that cross chunk and segment edges.
fn check_view(lv: &LogicalVolume, short: &str, model: &Model) {
    assert_eq!(lv.size, model.size(short), "{}", lv.name);
    let Content::Mapped(view) = &lv.content else {
        panic!("{} is not mapped: {:?}", lv.name, lv.content)
    };
    let expect: Vec<u8> = (0..lv.size / BLOCK)
        .flat_map(|b| pattern(short, b * BLOCK))
        .collect();
    let mut x = 0u64;
    let step = 3 * MIB / 2 + 1234;
    while x < lv.size {
        let n = step.min(lv.size - x) as usize;
        assert!(
            read(view.as_ref(), x, n) == expect[x as usize..x as usize + n],
            "{}: bytes {x}..{} differ from what the tools' offsets hold",
            lv.name,
            x + n as u64
        );
        x += n as u64;
    }
}

/// A scanner that calls every byte of a volume used.
struct AllUsed(FsInfo, Option<Extent>);
impl UsedBlocks for AllUsed {
    fn info(&self) -> &FsInfo {
        &self.0
    }
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        Ok(self.1.take())
    }
}
fn all_used() -> Scan {
    Arc::new(|v: SharedVolume| {
        let info = FsInfo {
            fs_type: "all".into(),
            total_bytes: v.len(),
            used_bytes: v.len(),
            ..FsInfo::default()
        };
        (
            Box::new(AllUsed(info, Some(Extent::new(0, v.len())))) as Box<dyn UsedBlocks>,
            false,
        )
    })
}

/// Merged extents.
fn merged(mut v: Vec<Extent>) -> Vec<Extent> {
    v.sort_by_key(|e| e.offset);
    let mut out: Vec<Extent> = Vec::new();
    for e in v.into_iter().filter(|e| e.len > 0) {
        match out.last_mut() {
            Some(p) if e.offset <= p.end() => p.len = p.end().max(e.end()) - p.offset,
            _ => out.push(e),
        }
    }
    out
}

/// What a member must store when every LV byte is used: its kept metadata and every PE
/// range the tools report on `dev`.
fn expected_used(model: &Model, dev: &str, kept: &[Extent]) -> Vec<Extent> {
    let mut v = kept.to_vec();
    for segs in model.lvs.values() {
        for s in segs {
            for (d, pe) in &s.ranges {
                if d == dev {
                    v.push(Extent::new(
                        model.pvs[d].0 + pe * model.extent,
                        s.size / s.stripes.max(1),
                    ));
                }
            }
        }
    }
    merged(v)
}

fn drain(member: &SharedVolume, layout: MemberLayout) -> Vec<Extent> {
    let mut used = member_used(member, layout, all_used()).unwrap();
    lifeboat_testkit::drain_checked(&mut used, member.len())
}

fn lvm2() -> &'static dyn VolumeManager {
    lifeboat_volume::managers()
        .iter()
        .copied()
        .find(|m| m.name() == "lvm2")
        .unwrap()
}

fn by_name<'a>(l: &'a MemberLayout, name: &str) -> &'a LogicalVolume {
    l.volumes
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", l.volumes))
}

fn images(pairs: &[(&Loop, &Path)]) -> HashMap<String, PathBuf> {
    pairs
        .iter()
        .map(|(l, p)| (l.0.clone(), p.to_path_buf()))
        .collect()
}

#[test]
fn one_pv_linear_volumes_with_out_of_order_segments() {
    if !can_run("one_pv_linear_volumes", &tools(), true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "pv.img", 64 * MIB);
    let lp = Loop::attach(&img);
    let lvm = Lvm::new(&[&lp]);
    lvm.run(&["pvcreate", &lp.0]);
    lvm.run(&["vgcreate", "-s", "1m", "vgt1", &lp.0]);
    for (n, s) in [
        ("pad", "4m"),
        ("root", "8m"),
        ("swap", "4m"),
        ("home", "8m"),
    ] {
        lvm.run(&["lvcreate", "-an", "-Zn", "-L", s, "-n", n, "vgt1"]);
    }
    lvm.run(&["lvremove", "-f", "vgt1/pad"]);
    // The free extents before root's first segment take its second.
    lvm.run(&[
        "lvextend",
        "-L",
        "12m",
        "vgt1/root",
        &format!("{}:0-3", lp.0),
    ]);
    let model = Model::read(&lvm, "vgt1");
    let root = &model.lvs["root"];
    assert_eq!(root.len(), 2);
    assert!(root[1].ranges[0].1 < root[0].ranges[0].1, "{root:?}");
    fill(&model, &images(&[(&lp, &img)]), &["root", "swap", "home"]);

    let member = open(&img);
    let m = detect(member.as_ref()).expect("an LVM2 member is detected");
    assert_eq!(m.name(), "lvm2");
    assert_eq!(
        m.group_key(member.as_ref()).unwrap(),
        format!("lvm2:vg:{}", model.vg_uuid)
    );
    let (uuid, vg) = lvm::pv_metadata(member.as_ref()).unwrap();
    assert_eq!(vg.unwrap().seqno, model.seqno);
    let layout = m.assemble(std::slice::from_ref(&member)).remove(0).unwrap();
    assert_eq!(layout.kind, "LVM2_member");
    assert_eq!(layout.label.as_deref(), Some("vgt1"));
    assert_eq!(layout.uuid.as_deref(), Some(uuid.as_str()));
    assert_eq!(layout.uuid.as_ref(), Some(&model.pvs[&lp.0].1));
    assert_eq!(layout.volumes.len(), 3);
    for short in ["root", "swap", "home"] {
        let lv = by_name(&layout, &format!("vgt1/{short}"));
        assert_eq!(lv.layout, "linear");
        check_view(lv, short, &model);
    }
    let pe_start = model.pvs[&lp.0].0;
    assert_eq!(layout.kept, vec![Extent::new(0, pe_start)]);
    assert_eq!(
        layout.unallocated_bytes,
        Some(64 * MIB - pe_start - 24 * MIB)
    );
    assert!(layout.warnings.is_empty(), "{:?}", layout.warnings);
    let used = drain(&member, layout.clone());
    assert_eq!(used, expected_used(&model, &lp.0, &layout.kept));
}

#[test]
fn striped_and_spanning_volumes_across_two_pvs_and_a_missing_pv() {
    if !can_run("striped_across_two_pvs", &tools(), true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ia, ib) = (
        blank(dir.path(), "a.img", 32 * MIB),
        blank(dir.path(), "b.img", 32 * MIB),
    );
    let (la, lb) = (Loop::attach(&ia), Loop::attach(&ib));
    let lvm = Lvm::new(&[&la, &lb]);
    lvm.run(&["pvcreate", &la.0, &lb.0]);
    lvm.run(&["vgcreate", "-s", "1m", "vgt2", &la.0, &lb.0]);
    lvm.run(&[
        "lvcreate", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "16m", "-n", "data", "vgt2",
    ]);
    lvm.run(&[
        "lvcreate", "-an", "-Zn", "-L", "4m", "-n", "solo", "vgt2", &lb.0,
    ]);
    // The rest of A and a part of B: one linear volume on two members.
    lvm.run(&[
        "lvcreate", "-an", "-Zn", "-l", "100%FREE", "-n", "span", "vgt2",
    ]);
    let model = Model::read(&lvm, "vgt2");
    assert_eq!(model.lvs["data"][0].stripes, 2);
    assert_eq!(model.lvs["span"].len(), 2, "{:?}", model.lvs["span"]);
    fill(
        &model,
        &images(&[(&la, &ia), (&lb, &ib)]),
        &["data", "solo", "span"],
    );

    let (a, b) = (open(&ia), open(&ib));
    let m = lvm2();
    assert_eq!(
        m.group_key(a.as_ref()).unwrap(),
        m.group_key(b.as_ref()).unwrap()
    );
    // Either order.
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let layouts: Vec<MemberLayout> =
            m.assemble(&order).into_iter().map(|r| r.unwrap()).collect();
        for (l, member) in layouts.iter().zip(&order) {
            let dev = if Arc::ptr_eq(member, &a) {
                &la.0
            } else {
                &lb.0
            };
            assert_eq!(l.uuid.as_ref(), Some(&model.pvs[dev].1));
            assert!(l.warnings.is_empty(), "{:?}", l.warnings);
            for v in &l.volumes {
                let short = v.name.strip_prefix("vgt2/").unwrap();
                check_view(v, short, &model);
            }
            assert_eq!(by_name(l, "vgt2/data").layout, "striped");
            let used = drain(member, l.clone());
            assert_eq!(used, expected_used(&model, dev, &l.kept), "{dev}");
        }
    }

    // B alone: what lies partly on A is copied whole, with A named.
    let l = m.assemble(std::slice::from_ref(&b)).remove(0).unwrap();
    let a_uuid = &model.pvs[&la.0].1;
    for name in ["vgt2/data", "vgt2/span"] {
        match &by_name(&l, name).content {
            Content::Raw(r) => assert_eq!(
                r,
                &format!("part on PV {a_uuid} which is not in this image")
            ),
            c => panic!("{name}: {c:?}"),
        }
    }
    check_view(by_name(&l, "vgt2/solo"), "solo", &model);
    assert!(
        l.warnings.iter().any(|w| w.contains(a_uuid.as_str())),
        "{:?}",
        l.warnings
    );
    // Everything of B's areas is stored (raw or used).
    let used = drain(&b, l.clone());
    assert_eq!(used, expected_used(&model, &lb.0, &l.kept));

    // A cloned disk: B twice. Both copies laid out, each with a warning.
    let c = open(&ib);
    let two = m.assemble(&[b.clone(), c]);
    for r in two {
        let l = r.unwrap();
        assert!(
            l.warnings.iter().any(|w| w.contains("more than once")),
            "{:?}",
            l.warnings
        );
    }
}

#[test]
fn newest_metadata_wins_also_when_the_text_wraps_and_a_second_area_is_kept() {
    if !can_run("newest_metadata_wins", &tools(), true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "pv.img", 48 * MIB);
    let lp = Loop::attach(&img);
    let lvm = Lvm::new(&[&lp]);
    lvm.run(&[
        "pvcreate",
        "--pvmetadatacopies",
        "2",
        "--metadatasize",
        "32k",
        "--dataalignment",
        "64k",
        &lp.0,
    ]);
    lvm.run(&["vgcreate", "-s", "1m", "vgt3", &lp.0]);
    let member = open(&img);
    let mut wrapped = false;
    for i in 0..40 {
        lvm.run(&[
            "lvcreate",
            "-an",
            "-Zn",
            "-L",
            "1m",
            "-n",
            &format!("lv{i}"),
            "vgt3",
        ]);
        if i % 4 == 0 {
            lvm.run(&["lvextend", "-L", "+1m", "vgt3/lv0"]);
        }
        // The first metadata area: is the committed text wrapped around its end?
        let head = read(member.as_ref(), 4096, 512);
        let h = lvm::mda::MdaHeader::parse(&head, 4096).unwrap();
        let r = h.committed.unwrap();
        let pieces = h.pieces(&r).unwrap();
        if pieces[1].1 > 0 {
            wrapped = true;
            let (_, vg) = lvm::pv_metadata(member.as_ref()).unwrap();
            let model = Model::read(&lvm, "vgt3");
            assert_eq!(vg.unwrap().seqno, model.seqno);
            break;
        }
    }
    assert!(wrapped, "the metadata text never wrapped");
    let model = Model::read(&lvm, "vgt3");
    let (_, vg) = lvm::pv_metadata(member.as_ref()).unwrap();
    let vg = vg.unwrap();
    assert_eq!(vg.seqno, model.seqno);
    assert_eq!(vg.lvs.len(), model.lvs.len());
    // Both areas are kept: the one before the data, the second near the end.
    let l = lvm2()
        .assemble(std::slice::from_ref(&member))
        .remove(0)
        .unwrap();
    let label = lvm::label::find(member.as_ref()).unwrap();
    let h = lvm::PvHeader::parse(label.header()).unwrap();
    assert_eq!(h.metadata_areas.len(), 2);
    let mda2 = h.metadata_areas[1];
    assert!(mda2.offset > 40 * MIB);
    assert!(l
        .kept
        .iter()
        .any(|e| e.offset == mda2.offset && e.len == mda2.size));
    assert_eq!(l.kept[0], Extent::new(0, model.pvs[&lp.0].0));
}

#[test]
fn thin_pool_parts_are_copied_whole_and_named() {
    if !can_run("thin_pool_parts", &tools(), true) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = blank(dir.path(), "pv.img", 32 * MIB);
    let lp = Loop::attach(&img);
    let lvm = Lvm::new(&[&lp]);
    lvm.run(&["pvcreate", &lp.0]);
    lvm.run(&["vgcreate", "-s", "1m", "vgt4", &lp.0]);
    lvm.run(&["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "plain", "vgt4"]);
    // lvcreate cannot make a thin pool without device-mapper: add one (as lvcreate writes
    // it) to the metadata and have vgcfgrestore write it back.
    let backup = dir.path().join("vgt4.vg");
    lvm.run(&["vgcfgbackup", "-f", backup.to_str().unwrap(), "vgt4"]);
    let text = std::fs::read_to_string(&backup).unwrap();
    let thin = r#"
pool {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 8
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
discards = "passdown"
zero_new_blocks = 0
}
}
thin1 {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000002"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 16
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
pool_tmeta {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000003"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv0", 4]
}
}
pool_tdata {
id = "Aaaaaa-bbbb-cccc-dddd-eeee-ffff-000004"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 8
type = "striped"
stripe_count = 1
stripes = ["pv0", 5]
}
}
"#;
    let at = text.find("logical_volumes {").unwrap() + "logical_volumes {".len();
    std::fs::write(&backup, format!("{}{thin}{}", &text[..at], &text[at..])).unwrap();
    lvm.run(&[
        "vgcfgrestore",
        "--force",
        "-f",
        backup.to_str().unwrap(),
        "vgt4",
    ]);
    let model = Model::read(&lvm, "vgt4");
    assert_eq!(
        model.lvs["pool_tdata"][0].ranges[0].1, 5,
        "lvs reads the pool"
    );

    let member = open(&img);
    let l = lvm2()
        .assemble(std::slice::from_ref(&member))
        .remove(0)
        .unwrap();
    let names: Vec<&str> = l.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let tdata = by_name(&l, "vgt4/pool_tdata");
    assert_eq!(tdata.layout, "thin-pool");
    match &tdata.content {
        Content::Raw(r) => assert!(r.contains("vgt4/pool") && r.contains("thin-pool"), "{r}"),
        c => panic!("{c:?}"),
    }
    assert!(matches!(
        by_name(&l, "vgt4/pool_tmeta").content,
        Content::Raw(_)
    ));
    fill(&model, &images(&[(&lp, &img)]), &["plain"]);
    check_view(by_name(&l, "vgt4/plain"), "plain", &model);
    // Raw parts are stored whole: every extent of the three volumes.
    let used = drain(&member, l.clone());
    assert_eq!(used, expected_used(&model, &lp.0, &l.kept));
    let mut used = member_used(&member, l, all_used()).unwrap();
    let w = &used.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("pool_tdata") && w.contains("thin-pool")),
        "{w:?}"
    );
    while used.next_extent().unwrap().is_some() {}
}
