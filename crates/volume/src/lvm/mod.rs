//! LVM2: physical volumes, their volume group's metadata, and the logical volumes on them.
//!
//! A PV holds a label in one of its first four sectors ([`label`]), a PV header in that sector
//! ([`pv_header`]) listing its metadata areas, each a header and a circular buffer of VG
//! metadata text ([`mda`]), which is parsed into a [`VolumeGroup`] ([`metadata`]). Of every
//! copy on every PV of the group, the one with the highest `seqno` whose checksums verify is
//! used. Linear and striped segments are mapped exactly; every other layout (thin pools and
//! thin volumes, snapshots, cache, RAID and mirror, VDO, integrity, writecache, unknown types,
//! and hidden sub-volumes such as `*_tdata`, `*_tmeta`, `*_rimage_N`) is copied whole.
//!
//! What is kept on each PV: everything before the first physical extent (label, PV header,
//! the first metadata area, a bootloader area), every metadata area (a second one at the
//! end) and bootloader area the PV header lists. The extents no logical volume uses are not
//! stored, nor the bytes past the last whole extent outside a metadata area: LVM2 neither
//! reads nor writes there (the metadata areas it does use are listed in the PV header).

pub mod label;
pub mod mda;
pub mod metadata;
#[cfg(test)]
mod model_tests;
pub mod pv_header;
#[doc(hidden)]
pub mod testgen;

use crate::{Area, Content, LogicalVolume, MappedVolume, MemberLayout, VolumeManager};
use lifeboat_fs::{bytes::OutOfBounds, Extent, FsError, ReadAt, SharedVolume};
pub use metadata::{LvMeta, PhysicalVolume, Segment, VolumeGroup};
pub use pv_header::{format_uuid, DiskLocn, PvHeader};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Why LVM2 structures are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LvmError {
    /// None of the first four sectors holds a label.
    #[error("no LVM2 label in the first 4 sectors")]
    NoLabel,
    /// The label is damaged or of another type.
    #[error("label: {0}")]
    Label(String),
    /// A checksum does not match.
    #[error("{what} at byte {offset}: checksum {stored:#010x} stored, {computed:#010x} computed")]
    Checksum {
        /// Which structure.
        what: &'static str,
        /// Where it lies on the PV.
        offset: u64,
        /// The checksum stored.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// The PV header is damaged.
    #[error("PV header: {0}")]
    PvHeader(String),
    /// A metadata area header is damaged.
    #[error("metadata area at byte {offset}: {reason}")]
    Mda {
        /// Where the area starts on the PV.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The metadata text is not valid config syntax.
    #[error("metadata text, line {line}: {reason}")]
    Parse {
        /// Line number (from 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The metadata does not describe a volume group lifeboat can follow.
    #[error("metadata: {0}")]
    Metadata(String),
    /// A field lies outside its structure.
    #[error(transparent)]
    OutOfBounds(#[from] OutOfBounds),
}

/// The LVM2 volume manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lvm2;

/// What one PV says about itself.
struct PvInfo {
    header: PvHeader,
    /// PV UUID, 6-4-4-4-4-4-6.
    uuid: String,
    /// Every metadata copy that verifies and parses, in the PV header's order.
    copies: Vec<VolumeGroup>,
    /// Copies that did not.
    warnings: Vec<String>,
}

fn read_pv(volume: &dyn ReadAt) -> Result<PvInfo, FsError> {
    let label = label::find(volume)?;
    let header = PvHeader::parse(label.header()).map_err(|e| FsError::corrupt("lvm2", e))?;
    let uuid = format_uuid(&header.uuid);
    let mut copies = Vec::new();
    let mut warnings = Vec::new();
    let mut first_error = None;
    for m in &header.metadata_areas {
        let got = mda::read_text(volume, m.offset).and_then(|text| {
            text.map(|t| VolumeGroup::parse(&t).map_err(|e| FsError::corrupt("lvm2", e)))
                .transpose()
        });
        match got {
            Ok(Some(vg)) => copies.push(vg),
            Ok(None) => {}
            Err(e) => {
                warnings.push(format!(
                    "metadata area at byte {} is not used: {e}",
                    m.offset
                ));
                first_error.get_or_insert(e);
            }
        }
    }
    if copies.is_empty() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(PvInfo {
        header,
        uuid,
        copies,
        warnings,
    })
}

/// The newest volume group metadata on this PV alone (of its metadata areas, the valid copy
/// with the highest seqno), and its PV UUID; `None` for a PV in no volume group.
pub fn pv_metadata(volume: &dyn ReadAt) -> Result<(String, Option<VolumeGroup>), FsError> {
    let pv = read_pv(volume)?;
    let vg = newest(pv.copies.iter()).cloned();
    Ok((pv.uuid, vg))
}

/// How small a PV can become without losing anything, as `pvresize
/// --setphysicalvolumesize` would shrink it: the end of its last allocated extent, of its
/// label and metadata areas (a second metadata area at its end keeps it whole), and of its
/// bootloader area. The newest metadata copy decides; a PV in no volume group needs its
/// header and metadata areas only.
pub fn pv_shrink_limit(volume: &dyn ReadAt) -> Result<u64, FsError> {
    let pv = read_pv(volume)?;
    let mut need = 0u64;
    for a in pv
        .header
        .metadata_areas
        .iter()
        .chain(&pv.header.bootloader_areas)
    {
        need = need.max(a.offset.saturating_add(a.size));
    }
    let Some(vg) = newest(pv.copies.iter()) else {
        return Ok(need);
    };
    let me = vg
        .pvs
        .iter()
        .find(|p| p.id == pv.uuid)
        .ok_or_else(|| corrupt(format!("the metadata does not list PV {}", pv.uuid)))?;
    let extent = vg.extent_size.saturating_mul(512);
    let pe_start = me.pe_start.saturating_mul(512);
    need = need.max(pe_start);
    for seg in vg.lvs.iter().flat_map(|lv| &lv.segments) {
        let on_pv = seg
            .areas
            .iter()
            .filter(|(k, _)| vg.pvs.iter().any(|p| &p.key == k));
        let n = on_pv.clone().count() as u64;
        if n == 0 {
            continue;
        }
        // Striped: the segment's extents are shared among its stripes; mirror legs and
        // RAID images are LVs of their own (not PV areas).
        let per_area = seg.extent_count.div_ceil(n);
        for (_, first) in on_pv.filter(|(k, _)| k == &me.key) {
            let end = first
                .saturating_add(per_area)
                .saturating_mul(extent)
                .saturating_add(pe_start);
            need = need.max(end);
        }
    }
    Ok(need)
}

/// The copy with the highest seqno (the first of equals).
fn newest<'a>(copies: impl Iterator<Item = &'a VolumeGroup>) -> Option<&'a VolumeGroup> {
    copies.fold(None, |best: Option<&VolumeGroup>, c| match best {
        Some(b) if b.seqno >= c.seqno => Some(b),
        _ => Some(c),
    })
}

fn corrupt(e: impl Into<String>) -> FsError {
    FsError::corrupt("lvm2", LvmError::Metadata(e.into()))
}

/// Sorted, merged, non-empty extents.
fn merge(mut v: Vec<Extent>) -> Vec<Extent> {
    v.retain(|e| e.len > 0);
    v.sort_by_key(|e| e.offset);
    let mut out: Vec<Extent> = Vec::new();
    for e in v {
        match out.last_mut() {
            Some(p) if e.offset <= p.end() => {
                let end = p.end().max(e.end());
                p.len = end - p.offset;
            }
            _ => out.push(e),
        }
    }
    out
}

/// What is kept of a PV of `len` bytes whose data area starts at byte `data_start`: an area
/// that leaves the PV is an error.
fn kept_of(h: &PvHeader, data_start: u64, len: u64) -> Result<Vec<Extent>, FsError> {
    let mut kept = vec![Extent::new(0, data_start)];
    for a in h.metadata_areas.iter().chain(&h.bootloader_areas) {
        kept.push(Extent::new(a.offset, a.size));
    }
    for e in &kept {
        if e.offset.checked_add(e.len).is_none_or(|end| end > len) {
            return Err(FsError::corrupt(
                "lvm2",
                LvmError::PvHeader(format!(
                    "an area of {} bytes at byte {} leaves the PV of {len} bytes",
                    e.len, e.offset
                )),
            ));
        }
    }
    Ok(merge(kept))
}

fn total(v: impl Iterator<Item = u64>) -> u64 {
    v.fold(0u64, u64::saturating_add)
}

/// One logical volume as planned across the members of the group.
struct LvPlan {
    name: String,
    layout: String,
    size: u64,
    content: Content,
    /// `(member, area)` with `area.lv` still 0.
    areas: Vec<(usize, Area)>,
}

impl VolumeManager for Lvm2 {
    fn name(&self) -> &'static str {
        "lvm2"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        label::looks_like_label(volume)
    }

    fn group_key(&self, volume: &dyn ReadAt) -> Result<String, FsError> {
        let pv = read_pv(volume)?;
        Ok(match newest(pv.copies.iter()) {
            Some(vg) => format!("lvm2:vg:{}", vg.id),
            // A PV in no VG (or without metadata areas, whose VG the PV alone cannot tell).
            None => format!("lvm2:pv:{}", pv.uuid),
        })
    }

    fn assemble(&self, members: &[SharedVolume]) -> Vec<Result<MemberLayout, FsError>> {
        let infos: Vec<Result<PvInfo, FsError>> =
            members.iter().map(|m| read_pv(m.as_ref())).collect();
        // The first copy of each PV UUID is laid out with the group; a second copy (a cloned
        // disk) is laid out on its own.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut primary = Vec::new();
        let mut duplicates = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            if let Ok(info) = info {
                if let Some(&first) = seen.get(&info.uuid) {
                    duplicates.push((i, first));
                    continue;
                }
                seen.insert(info.uuid.clone(), i);
            }
            primary.push(i);
        }
        let mut out: Vec<Option<Result<MemberLayout, FsError>>> =
            (0..members.len()).map(|_| None).collect();
        let mut infos: Vec<Option<Result<PvInfo, FsError>>> = infos.into_iter().map(Some).collect();
        let group: Vec<(usize, SharedVolume, Result<PvInfo, FsError>)> = primary
            .iter()
            .map(|&i| {
                (
                    i,
                    members[i].clone(),
                    infos[i].take().expect("each member once"),
                )
            })
            .collect();
        let dup_uuids: Vec<String> = duplicates
            .iter()
            .filter_map(|(i, _)| infos[*i].as_ref().and_then(|r| r.as_ref().ok()))
            .map(|p| p.uuid.clone())
            .collect();
        for (i, r) in assemble_group(group) {
            out[i] = Some(r.map(|mut l| {
                if let Some(u) = l.uuid.as_ref().filter(|u| dup_uuids.contains(u)) {
                    l.warnings.push(format!(
                        "PV {u} appears more than once in this image (a cloned disk?): each \
                         copy is laid out on its own"
                    ));
                }
                l
            }));
        }
        for (i, _) in duplicates {
            let info = infos[i].take().expect("each member once");
            for (j, r) in assemble_group(vec![(i, members[i].clone(), info)]) {
                out[j] = Some(r.map(|mut l| {
                    l.warnings.push(format!(
                        "PV {} appears more than once in this image (a cloned disk?): this \
                         copy is laid out on its own",
                        l.uuid.as_deref().unwrap_or("?")
                    ));
                    l
                }));
            }
        }
        out.into_iter()
            .map(|r| r.expect("every member laid out"))
            .collect()
    }
}

/// Lays out members with distinct PV UUIDs as one volume group.
fn assemble_group(
    group: Vec<(usize, SharedVolume, Result<PvInfo, FsError>)>,
) -> Vec<(usize, Result<MemberLayout, FsError>)> {
    let mut out = Vec::new();
    let mut ok: Vec<(usize, SharedVolume, PvInfo)> = Vec::new();
    for (i, m, info) in group {
        match info {
            Ok(p) => ok.push((i, m, p)),
            Err(e) => out.push((i, Err(e))),
        }
    }
    let Some(vg) = newest(ok.iter().flat_map(|(_, _, p)| p.copies.iter())).cloned() else {
        // PVs in no volume group.
        for (i, m, p) in ok {
            out.push((i, orphan(&m, p)));
        }
        return out;
    };
    let mut members: Vec<(usize, SharedVolume, PvInfo)> = Vec::new();
    for (i, m, p) in ok {
        match newest(p.copies.iter()) {
            None if p.header.metadata_areas.is_empty() => members.push((i, m, p)),
            None => out.push((i, orphan(&m, p))),
            Some(own) if own.id != vg.id => out.push((
                i,
                Err(corrupt(format!(
                    "PV {} belongs to VG {} ({}), not to VG {} ({}) of the other members",
                    p.uuid, own.name, own.id, vg.name, vg.id
                ))),
            )),
            Some(_) => members.push((i, m, p)),
        }
    }
    let layouts = lay_out_vg(&vg, &members);
    out.extend(members.iter().map(|(i, _, _)| *i).zip(layouts));
    out
}

/// The PV header extension flag of a PV that belongs to a volume group.
const PV_EXT_USED: u32 = 1;

/// A PV in no volume group: its label and metadata areas are kept, the rest is unused. A PV
/// whose VG cannot be known from the members given (it has no metadata area, or its header
/// says it is used by a VG) is refused, so that it is copied whole: its extents may hold
/// logical volumes.
fn orphan(member: &SharedVolume, p: PvInfo) -> Result<MemberLayout, FsError> {
    if p.header.metadata_areas.is_empty() || p.header.ext_flags & PV_EXT_USED != 0 {
        return Err(corrupt(format!(
            "PV {} belongs to a volume group whose metadata is on none of the PVs given              (it has {} metadata areas): copied whole",
            p.uuid,
            p.header.metadata_areas.len()
        )));
    }
    let data_start = p
        .header
        .data_areas
        .first()
        .map(|d| d.offset)
        .ok_or_else(|| corrupt(format!("PV {} lists no data area", p.uuid)))?;
    let kept = kept_of(&p.header, data_start, member.len())?;
    let kept_bytes = total(kept.iter().map(|e| e.len));
    let mut warnings = p.warnings;
    warnings.push(format!("PV {} belongs to no volume group", p.uuid));
    Ok(MemberLayout {
        kind: "LVM2_member",
        label: None,
        uuid: Some(p.uuid),
        kept,
        volumes: Vec::new(),
        areas: Vec::new(),
        unallocated_bytes: Some(member.len().saturating_sub(kept_bytes)),
        warnings,
    })
}

fn lay_out_vg(
    vg: &VolumeGroup,
    members: &[(usize, SharedVolume, PvInfo)],
) -> Vec<Result<MemberLayout, FsError>> {
    // PV key -> (its metadata entry, the member holding it).
    let mut pvs: BTreeMap<&str, (&PhysicalVolume, Option<usize>)> = BTreeMap::new();
    for pv in &vg.pvs {
        let at = members.iter().position(|(_, _, p)| p.uuid == pv.id);
        pvs.insert(pv.key.as_str(), (pv, at));
    }
    let missing: Vec<String> = pvs
        .values()
        .filter(|(_, at)| at.is_none())
        .map(|(pv, _)| {
            format!(
                "VG {}: PV {} ({}{}) is not in this image: logical volumes with a part on it \
                 are copied whole",
                vg.name,
                pv.id,
                pv.key,
                pv.device
                    .as_ref()
                    .map(|d| format!(", last seen on {d}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let ext_bytes = vg.extent_size * 512;
    let plans = match plan_lvs(vg, &pvs, ext_bytes, members) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            return members.iter().map(|_| Err(corrupt(msg.clone()))).collect();
        }
    };
    members
        .iter()
        .enumerate()
        .map(|(mi, (_, member, p))| {
            let Some((pv, _)) = pvs.values().find(|(_, at)| *at == Some(mi)) else {
                return Err(corrupt(format!(
                    "PV {} is not in the newest metadata (seqno {}) of VG {}",
                    p.uuid, vg.seqno, vg.name
                )));
            };
            let data_start = pv
                .pe_start
                .checked_mul(512)
                .ok_or_else(|| corrupt("pe_start overflows"))?;
            let kept = kept_of(&p.header, data_start, member.len())?;
            let mut volumes = Vec::new();
            let mut areas = Vec::new();
            for plan in &plans {
                let here: Vec<Area> = plan
                    .areas
                    .iter()
                    .filter(|(m, _)| *m == mi)
                    .map(|(_, a)| Area {
                        lv: volumes.len(),
                        ..*a
                    })
                    .collect();
                if here.is_empty() {
                    continue;
                }
                areas.extend(here);
                volumes.push(LogicalVolume {
                    name: plan.name.clone(),
                    layout: plan.layout.clone(),
                    size: plan.size,
                    content: plan.content.clone(),
                });
            }
            let used = total(kept.iter().map(|e| e.len))
                .saturating_add(total(areas.iter().map(|a| a.member_len())));
            let mut warnings = p.warnings.clone();
            if let Some(own) = newest(p.copies.iter()) {
                if own.seqno < vg.seqno {
                    warnings.push(format!(
                        "this PV's metadata (seqno {}) is older than another PV's (seqno {}), \
                         which is used",
                        own.seqno, vg.seqno
                    ));
                }
            }
            if member.len() < p.header.device_size {
                warnings.push(format!(
                    "the PV is {} bytes, its label says {}",
                    member.len(),
                    p.header.device_size
                ));
            }
            warnings.extend(missing.iter().cloned());
            Ok(MemberLayout {
                kind: "LVM2_member",
                label: Some(vg.name.clone()),
                uuid: Some(p.uuid.clone()),
                kept,
                volumes,
                areas,
                unallocated_bytes: Some(member.len().saturating_sub(used)),
                warnings,
            })
        })
        .collect()
}

/// The segment types mapped exactly.
fn is_mapped_type(t: &str) -> bool {
    t == "striped" || t == "linear"
}

fn plan_lvs(
    vg: &VolumeGroup,
    pvs: &BTreeMap<&str, (&PhysicalVolume, Option<usize>)>,
    ext_bytes: u64,
    members: &[(usize, SharedVolume, PvInfo)],
) -> Result<Vec<LvPlan>, LvmError> {
    let bytes_of = |extents: u64| {
        extents
            .checked_mul(ext_bytes)
            .ok_or_else(|| LvmError::Metadata(format!("{extents} extents overflow")))
    };
    // Which LV names another LV's segment (its sub-volumes: pool data, metadata, COW store,
    // RAID images, ...). `origin` is not a part: a snapshot's origin is an ordinary volume.
    let mut parent: HashMap<&str, (&str, &str, &str)> = HashMap::new();
    for lv in &vg.lvs {
        for s in &lv.segments {
            let names = s
                .refs
                .iter()
                .filter(|(k, _)| k != "origin" && k != "external_origin")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(s.areas.iter().map(|(n, _)| {
                    (
                        if s.seg_type == "mirror" {
                            "mirrors"
                        } else {
                            "stripes"
                        },
                        n.as_str(),
                    )
                }));
            for (key, name) in names {
                if !pvs.contains_key(name) && name != lv.name {
                    parent
                        .entry(name)
                        .or_insert((lv.name.as_str(), s.seg_type.as_str(), key));
                }
            }
        }
    }
    let mut plans = Vec::new();
    for lv in &vg.lvs {
        let mut size = 0u64;
        let mut raw: Option<String> = None;
        let mut layout = "linear".to_string();
        let mut areas = Vec::new();
        let mut segs: Vec<&Segment> = lv.segments.iter().collect();
        segs.sort_by_key(|s| s.start_extent);
        let mut next = 0u64;
        for s in segs {
            let lv_start = bytes_of(s.start_extent)?;
            let lv_len = bytes_of(s.extent_count)?;
            size = size.max(lv_start.saturating_add(lv_len));
            if s.start_extent != next && raw.is_none() {
                raw = Some(format!(
                    "{} starts at extent {}, not {next}: copied whole",
                    s.name, s.start_extent
                ));
            }
            next = s.start_extent.saturating_add(s.extent_count);
            let mapped = is_mapped_type(&s.seg_type);
            if !mapped {
                raw.get_or_insert(format!(
                    "segment type {} is not mapped: copied whole",
                    s.seg_type
                ));
                if is_mapped_type(&layout) {
                    layout = s.seg_type.clone();
                }
            }
            let stripes = s.stripe_count.unwrap_or(1).max(1);
            if mapped && stripes > 1 && layout == "linear" {
                layout = "striped".into();
            }
            if mapped && s.areas.len() as u64 != stripes && raw.is_none() {
                raw = Some(format!(
                    "{} lists {} stripes, stripe_count is {stripes}: copied whole",
                    s.name,
                    s.areas.len()
                ));
            }
            let per_area = if s.stripe_count.is_some() {
                if s.extent_count % stripes != 0 && raw.is_none() {
                    raw = Some(format!(
                        "{}: {} extents do not divide into {stripes} stripes: copied whole",
                        s.name, s.extent_count
                    ));
                }
                s.extent_count.div_ceil(stripes)
            } else {
                s.extent_count
            };
            let chunk = s.stripe_size.unwrap_or(0).saturating_mul(512);
            for (k, (name, extent)) in s.areas.iter().enumerate() {
                let Some((pv, at)) = pvs.get(name.as_str()) else {
                    raw.get_or_insert(format!(
                        "{} lies on logical volume {name}, not on a PV: copied whole",
                        s.name
                    ));
                    continue;
                };
                let Some(m) = *at else {
                    raw.get_or_insert(format!("part on PV {} which is not in this image", pv.id));
                    continue;
                };
                if extent.saturating_add(per_area) > pv.pe_count && raw.is_none() {
                    raw = Some(format!(
                        "{} reaches past the {} extents of PV {}: copied whole",
                        s.name, pv.pe_count, pv.id
                    ));
                }
                let member_offset = bytes_of(*extent)?
                    .checked_add(pv.pe_start.saturating_mul(512))
                    .ok_or_else(|| LvmError::Metadata("PV offset overflows".into()))?;
                let area = if mapped && stripes > 1 {
                    Area {
                        lv: 0,
                        lv_start,
                        lv_len,
                        stripes: u32::try_from(stripes).unwrap_or(u32::MAX),
                        stripe: u32::try_from(k).unwrap_or(u32::MAX),
                        chunk,
                        member_offset,
                    }
                } else if mapped {
                    Area::linear(0, lv_start, lv_len, member_offset)
                } else {
                    // Not mapped: only where it lies matters (it is copied whole).
                    Area::linear(0, lv_start, bytes_of(per_area)?, member_offset)
                };
                if mapped && !area.is_valid() && raw.is_none() {
                    raw = Some(format!(
                        "{}: stripe size {} sectors does not cut its {} stripes into whole \
                         chunks: copied whole",
                        s.name,
                        s.stripe_size.unwrap_or(0),
                        stripes
                    ));
                }
                let area = if area.is_valid() {
                    area
                } else {
                    Area::linear(0, lv_start, bytes_of(per_area)?, member_offset)
                };
                areas.push((m, area));
            }
        }
        if !lv.visible() {
            let reason = match parent.get(lv.name.as_str()) {
                Some((p, t, key)) => {
                    layout = (*t).to_string();
                    format!("`{key}` of {}/{p} ({t}): copied whole", vg.name)
                }
                None => "hidden logical volume: copied whole".to_string(),
            };
            raw = Some(reason);
        }
        let content = match raw {
            Some(r) => Content::Raw(r),
            None => {
                let view = MappedVolume::new(
                    size,
                    areas
                        .iter()
                        .map(|(m, a)| (*a, members[*m].1.clone()))
                        .collect(),
                );
                if view.is_complete() {
                    Content::Mapped(Arc::new(view))
                } else {
                    Content::Raw(
                        "its segments do not cover it or leave its PV: copied whole".into(),
                    )
                }
            }
        };
        plans.push(LvPlan {
            name: format!("{}/{}", vg.name, lv.name),
            layout,
            size,
            content,
            areas,
        });
    }
    Ok(plans)
}
