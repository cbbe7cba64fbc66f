//! The restore plan of one target disk: where every partition of the image goes (kept,
//! moved, grown), which boot regions are written where, whether the partition table is
//! rewritten and the GPT backup moved, and which filesystem tool grows what. Computed
//! before anything is written; shown by `--dry-run` and before the confirmation, and then
//! followed exactly by the restore.

use crate::error::Refusal;
use lifeboat_container::DiskRecord;
use lifeboat_parttable::{MbrPlan, NewPlace};
use serde::Serialize;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// How partitions use a larger target (`--grow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grow {
    /// The layout stays as saved (the extra space is unallocated).
    #[default]
    None,
    /// The last partition (the one that ends last) fills the disk.
    Last,
    /// The extra space is shared among the partitions whose content can grow (ext2/3/4,
    /// NTFS, XFS, LVM PVs), in proportion to their sizes; later partitions move.
    Proportional,
}

impl Grow {
    /// The `--grow` value.
    pub fn parse(s: &str) -> Option<Grow> {
        match s {
            "none" => Some(Grow::None),
            "last" => Some(Grow::Last),
            "proportional" => Some(Grow::Proportional),
            _ => None,
        }
    }
}

/// A disk's identity as the plan shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentityPlan {
    /// Model.
    pub model: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// World wide name.
    pub wwn: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// The filesystem tool that grows a grown partition's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsGrow {
    /// `resize2fs`, `ntfsresize`, `xfs_growfs`, `pvresize`, `fatresize`; `None` when
    /// lifeboat cannot grow this content (the partition still grows).
    pub tool: Option<String>,
    /// Whether the tool was found on PATH.
    pub installed: bool,
}

/// One partition of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartPlan {
    /// Partition number.
    pub number: u32,
    /// `primary`, `logical`, `gpt` or `whole-disk`.
    pub kind: String,
    /// Filesystem as saved.
    pub filesystem: String,
    /// `used-blocks` or `raw`.
    pub mode: String,
    /// Bytes written for it.
    pub bytes: u64,
    /// Start and size on the source disk (as saved).
    pub start_before: u64,
    /// Size on the source.
    pub size_before: u64,
    /// Start on the target.
    pub start: u64,
    /// Size on the target.
    pub size: u64,
    /// `keep`, `grow`, `move`, `move_grow`, or `shrink` (an LVM PV at the end of a smaller
    /// target, down to its last allocated extent or further).
    pub action: String,
    /// For a grown partition, or a shrunk LVM PV: the tool that resizes its content.
    pub fs_grow: Option<FsGrow>,
}

/// One boot region (bytes outside the partitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionPlan {
    /// Offset on the source.
    pub offset_before: u64,
    /// Offset on the target.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// What it is.
    pub what: String,
    /// `write` (same place), `move` (with the partition after it) or `skip` (a GPT backup
    /// that is rebuilt at the target's end, or bytes past the partitions of a rewritten table).
    pub action: String,
}

/// An MBR extended container after the rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What a restore does to one target disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskPlan {
    /// Index of the disk in the image.
    pub disk: u32,
    /// The target.
    pub target: String,
    /// The target's identity and size.
    pub target_identity: IdentityPlan,
    /// The source disk (device it was saved from).
    pub source: String,
    /// The source's identity and size as recorded in the image.
    pub source_identity: IdentityPlan,
    /// Differences worth a look: `smaller`, `larger`, `model`.
    pub differences: Vec<String>,
    /// `gpt`, `mbr` or `none`.
    pub table: String,
    /// Logical sector size.
    pub sector_size: u32,
    /// `restoredisk` (whole disk) or `restoreparts`.
    pub operation: String,
    /// The `--grow` mode.
    pub grow: Grow,
    /// Whether the partition table is rewritten after the data (partitions moved or grown,
    /// or a smaller disk).
    pub table_rewritten: bool,
    /// Partitions, in disk order.
    pub partitions: Vec<PartPlan>,
    /// MBR: the extended container as rewritten.
    pub extended: Option<Span>,
    /// Boot regions.
    pub boot_regions: Vec<RegionPlan>,
    /// GPT: the byte offset of the backup header on the target when it is moved (from the
    /// source's last sector).
    pub gpt_backup_moved_to: Option<u64>,
    /// Bytes the restore writes (data of partitions and boot regions).
    pub bytes_to_write: u64,
}

/// A source byte range written at another target offset (or dropped).
#[derive(Debug, Clone)]
pub(crate) struct Seg {
    pub src_start: u64,
    pub src_end: u64,
    pub dst_start: u64,
}

/// The table change after the data is written.
#[derive(Debug, Clone)]
pub(crate) enum TableChange {
    /// An MBR rewritten.
    Mbr(MbrPlan),
    /// GPT entries placed, backup at the end.
    Gpt(Vec<NewPlace>),
    /// Only the GPT backup moves to the end (same layout, larger disk).
    Relocate,
}

/// The computed layout of a whole-disk restore.
pub(crate) struct Layout {
    pub plan: DiskPlan,
    /// Where data goes when it does not go to the same offsets.
    pub segs: Option<Vec<Seg>>,
    pub change: Option<TableChange>,
}

/// Identity of the image's source disk.
pub(crate) fn source_identity(rec: &DiskRecord) -> IdentityPlan {
    IdentityPlan {
        model: rec.identity.model.clone(),
        vendor: rec.identity.vendor.clone(),
        serial: rec.identity.serial.clone(),
        wwn: rec.identity.wwn.clone(),
        size: rec.size,
    }
}

/// Identity of a target.
pub(crate) fn target_identity(disk: &lifeboat_blockdev::Disk) -> IdentityPlan {
    let id = disk.identity();
    IdentityPlan {
        model: id.model,
        vendor: id.vendor,
        serial: id.serial,
        wwn: id.wwn,
        size: disk.size(),
    }
}

/// `smaller` / `larger` / `model` differences of a target from its source.
pub(crate) fn differences(src: &IdentityPlan, dst: &IdentityPlan) -> Vec<String> {
    let mut d = Vec::new();
    if dst.size < src.size {
        d.push("smaller".into());
    } else if dst.size > src.size {
        d.push("larger".into());
    }
    if src.model.is_some() && dst.model.is_some() && src.model != dst.model {
        d.push("model".into());
    }
    d
}

/// The tool that grows `filesystem`, if lifeboat knows one.
pub(crate) fn grow_tool(filesystem: &str) -> Option<&'static str> {
    match filesystem {
        "ext2" | "ext3" | "ext4" => Some("resize2fs"),
        "ntfs" => Some("ntfsresize"),
        "xfs" => Some("xfs_growfs"),
        "LVM2_member" => Some("pvresize"),
        "fat12" | "fat16" | "fat32" | "vfat" => Some("fatresize"),
        _ => None,
    }
}

/// A program on PATH.
pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/sbin", "/usr/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Content proportional growth shares the extra space with.
fn proportional_candidate(filesystem: &str) -> bool {
    matches!(
        filesystem,
        "ext2" | "ext3" | "ext4" | "ntfs" | "xfs" | "LVM2_member"
    )
}

/// Bytes at the end of a GPT source disk that hold its backup (entries + header).
fn gpt_backup_len(rec: &DiskRecord) -> u64 {
    let ss = u64::from(rec.logical_sector_size);
    let tail: u64 = rec
        .boot_regions
        .iter()
        .filter(|r| r.what.contains("GPT backup") && r.offset + r.len == rec.size)
        .map(|r| r.len)
        .sum();
    if tail >= 2 * ss {
        tail
    } else {
        16384 + ss
    }
}

/// The logical partition whose EBR a region is, from `EBR of logical partition N`.
fn next_partition_after(rec: &DiskRecord, offset: u64) -> Option<u32> {
    rec.table
        .partitions
        .iter()
        .filter(|p| p.start >= offset)
        .min_by_key(|p| p.start)
        .map(|p| p.number)
}

/// Plans a whole-disk restore of `rec` onto `target` (of `size` bytes). Refuses, naming the
/// partition and the shortfall, when a partition does not fit.
pub(crate) fn whole_disk(
    index: u32,
    rec: &DiskRecord,
    target: &Path,
    target_id: IdentityPlan,
    grow: Grow,
    pv_limit: &dyn Fn(&lifeboat_container::PartitionRecord) -> Option<u64>,
) -> Result<Layout, Refusal> {
    let size = target_id.size;
    let ss = u64::from(rec.logical_sector_size).max(512);
    let source_id = source_identity(rec);
    let mut plan = DiskPlan {
        disk: index,
        target: target.display().to_string(),
        differences: differences(&source_id, &target_id),
        target_identity: target_id,
        source: rec.source.clone(),
        source_identity: source_id,
        table: rec.table.kind.clone(),
        sector_size: rec.logical_sector_size,
        operation: "restoredisk".into(),
        grow,
        table_rewritten: false,
        partitions: Vec::new(),
        extended: None,
        boot_regions: Vec::new(),
        gpt_backup_moved_to: None,
        bytes_to_write: if rec.stored_bytes > 0 {
            rec.stored_bytes
        } else {
            crate::expected_bytes(rec)
        },
    };
    let mut parts: Vec<_> = rec.table.partitions.iter().collect();
    parts.sort_by_key(|p| p.start);
    let region_plan =
        |r: &lifeboat_container::RegionRecord, offset: u64, action: &str| RegionPlan {
            offset_before: r.offset,
            offset,
            len: r.len,
            what: r.what.clone(),
            action: action.into(),
        };
    if rec.table.kind == "none" || parts.is_empty() {
        if size < rec.size {
            return Err(Refusal::TooSmall {
                disk: target.to_path_buf(),
                size,
                needed: rec.size,
            });
        }
        plan.partitions = parts
            .iter()
            .map(|p| part_plan(p, p.start, p.size, false))
            .collect();
        plan.boot_regions = rec
            .boot_regions
            .iter()
            .map(|r| region_plan(r, r.offset, "write"))
            .collect();
        return Ok(Layout {
            plan,
            segs: None,
            change: None,
        });
    }
    let gpt = rec.table.kind == "gpt";
    let limit = if gpt {
        (size / ss * ss).saturating_sub(gpt_backup_len(rec))
    } else {
        size.min((1u64 << 32) * ss)
    };
    // Fit: every partition ends within the usable area of the target; only the last one may
    // end beyond it when it is an LVM PV whose allocated extents and metadata fit (it then
    // shrinks to the usable end, as `pvresize --setphysicalvolumesize` would).
    let last_end = parts.iter().map(|p| p.start + p.size).max().unwrap_or(0);
    let mut shrink: Option<(u32, u64)> = None;
    if let Some(p) = parts
        .iter()
        .filter(|p| p.start + p.size > limit)
        .max_by_key(|p| p.start + p.size)
    {
        let lvm_pv = p.filesystem == "LVM2_member";
        let overflowing = parts.iter().filter(|q| q.start + q.size > limit).count();
        let pv_need = (lvm_pv && overflowing == 1 && p.start + p.size == last_end && p.saved)
            .then(|| pv_limit(p))
            .flatten();
        let new_size = limit.saturating_sub(p.start) / ss * ss;
        match pv_need {
            Some(need) if need <= new_size && p.start < limit => {
                shrink = Some((p.number, new_size));
            }
            _ => {
                let pv_end = pv_need.map(|n| p.start + n);
                let needed_end = pv_end.unwrap_or(p.start + p.size);
                return Err(Refusal::PartitionDoesNotFit {
                    disk: target.to_path_buf(),
                    part: p.number,
                    end: p.start + p.size,
                    usable: limit,
                    shortfall: needed_end.saturating_sub(limit).max(1),
                    lvm_pv,
                    pv_end,
                });
            }
        }
    }
    // New sizes.
    let aligned_limit = limit / MIB * MIB;
    let free = aligned_limit.saturating_sub(last_end);
    let mut growth: Vec<u64> = vec![0; parts.len()];
    match grow {
        Grow::None => {}
        Grow::Last => {
            if let Some(i) = parts.iter().position(|p| p.start + p.size == last_end) {
                growth[i] = free;
            }
        }
        Grow::Proportional => {
            let cands: Vec<usize> = (0..parts.len())
                .filter(|&i| proportional_candidate(&parts[i].filesystem))
                .collect();
            let weight: u128 = cands.iter().map(|&i| u128::from(parts[i].size)).sum();
            let shares: Option<Vec<u128>> = cands
                .iter()
                .map(|&i| (u128::from(free) * u128::from(parts[i].size)).checked_div(weight))
                .collect();
            match shares.filter(|s| !s.is_empty()) {
                None => {
                    if let Some(i) = parts.iter().position(|p| p.start + p.size == last_end) {
                        growth[i] = free;
                    }
                }
                Some(shares) => {
                    for (&i, share) in cands.iter().zip(shares) {
                        growth[i] = (share as u64) / MIB * MIB;
                    }
                    // What rounding left goes to the last candidate.
                    let used: u64 = growth.iter().sum();
                    if let Some(&i) = cands.last() {
                        growth[i] += (free - used) / MIB * MIB;
                    }
                }
            }
        }
    }
    // Shifts: the growth of every partition before it on the disk.
    let mut shift = vec![0u64; parts.len()];
    let mut acc = 0;
    for i in 0..parts.len() {
        shift[i] = acc;
        acc += growth[i];
    }
    let changed = growth.iter().any(|&g| g > 0);
    // Partitions that overlap on the source (a damaged table) keep their bytes only where
    // nothing moves: a partition that grows or moves would take its neighbour's bytes along.
    if changed {
        if let Some(w) = parts
            .windows(2)
            .find(|w| w[0].start + w[0].size > w[1].start)
        {
            return Err(Refusal::OverlappingPartitions {
                disk: target.to_path_buf(),
                a: w[0].number,
                b: w[1].number,
            });
        }
    }
    let smaller = size < rec.size;
    plan.table_rewritten = changed || smaller;
    let tools_for = |fs: &str| {
        let tool = grow_tool(fs);
        FsGrow {
            tool: tool.map(str::to_string),
            installed: tool.is_some_and(|t| which(t).is_some()),
        }
    };
    // The size of each partition on the target.
    let new_size = |i: usize| match shrink {
        Some((n, size)) if parts[i].number == n => size,
        _ => parts[i].size + growth[i],
    };
    for (i, p) in parts.iter().enumerate() {
        let mut pp = part_plan(p, p.start + shift[i], new_size(i), growth[i] > 0);
        if growth[i] > 0 || new_size(i) < p.size {
            pp.fs_grow = Some(tools_for(&p.filesystem));
        }
        plan.partitions.push(pp);
    }
    let shift_of = |n: u32| {
        parts
            .iter()
            .position(|p| p.number == n)
            .map_or(0, |i| shift[i])
    };
    let mut segs = Vec::new();
    for r in &rec.boot_regions {
        let after_all = r.offset >= last_end;
        if after_all && (gpt || plan.table_rewritten) {
            // A GPT backup is rebuilt at the end; nothing else lives past the partitions.
            plan.boot_regions.push(region_plan(r, r.offset, "skip"));
            continue;
        }
        let d = next_partition_after(rec, r.offset).map_or(0, shift_of);
        plan.boot_regions.push(region_plan(
            r,
            r.offset + d,
            if d > 0 { "move" } else { "write" },
        ));
        segs.push(Seg {
            src_start: r.offset,
            src_end: r.offset + r.len,
            dst_start: r.offset + d,
        });
    }
    for (i, p) in parts.iter().enumerate() {
        segs.push(Seg {
            src_start: p.start,
            // The partition's own source bytes only: a grown partition's range must not
            // reach into the next partition's source bytes (they would be written a second
            // time, into this one's new free space); a shrunk PV: nothing past its new end
            // is written (nothing is stored there).
            src_end: p.start + new_size(i).min(p.size),
            dst_start: p.start + shift[i],
        });
    }
    let skipped: u64 = plan
        .boot_regions
        .iter()
        .filter(|r| r.action == "skip")
        .map(|r| r.len)
        .sum();
    plan.bytes_to_write = plan.bytes_to_write.saturating_sub(skipped);
    let change = if plan.table_rewritten {
        if gpt {
            Some(TableChange::Gpt(
                plan.partitions
                    .iter()
                    .map(|p| NewPlace {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                    })
                    .collect(),
            ))
        } else {
            let mut m = MbrPlan::default();
            for p in &plan.partitions {
                let place = NewPlace {
                    number: p.number,
                    start: p.start,
                    size: p.size,
                };
                if p.kind == "logical" {
                    let src = parts.iter().find(|q| q.number == p.number);
                    let ebr = rec
                        .boot_regions
                        .iter()
                        .filter(|r| r.offset + r.len <= p.start_before)
                        .filter_map(|r| {
                            // The EBR is the first sector of the region right before it.
                            (next_partition_after(rec, r.offset) == Some(p.number))
                                .then_some(r.offset)
                        })
                        .max()
                        .unwrap_or(p.start_before - ss);
                    let sys = src
                        .and_then(|q| {
                            u8::from_str_radix(q.type_code.trim_start_matches("0x"), 16).ok()
                        })
                        .unwrap_or(0x83);
                    let boot = src.is_some_and(|q| q.bootable);
                    m.logicals
                        .push((ebr + (p.start - p.start_before), place, sys, boot));
                } else {
                    m.primaries.push(place);
                }
            }
            if let (Some(first), Some(last)) = (m.logicals.first(), m.logicals.last()) {
                let start = first.0;
                let end = last.1.start + last.1.size;
                m.extended = Some((start, end - start));
                plan.extended = Some(Span {
                    start,
                    size: end - start,
                });
            }
            Some(TableChange::Mbr(m))
        }
    } else if gpt && size > rec.size {
        Some(TableChange::Relocate)
    } else {
        None
    };
    if gpt && (plan.table_rewritten || size > rec.size) {
        plan.gpt_backup_moved_to = Some(size / ss * ss - ss);
    }
    let needs_segs = plan.table_rewritten;
    Ok(Layout {
        plan,
        segs: needs_segs.then_some(segs),
        change,
    })
}

fn part_plan(
    p: &lifeboat_container::PartitionRecord,
    start: u64,
    size: u64,
    grown: bool,
) -> PartPlan {
    let moved = start != p.start;
    let action = match (moved, grown) {
        _ if size < p.size => "shrink",
        (false, false) => "keep",
        (false, true) => "grow",
        (true, false) => "move",
        (true, true) => "move_grow",
    };
    PartPlan {
        number: p.number,
        kind: p.kind.clone(),
        filesystem: p.filesystem.clone(),
        mode: p.mode.clone(),
        bytes: if p.saved { p.used_bytes } else { 0 },
        start_before: p.start,
        size_before: p.size,
        start,
        size,
        action: action.into(),
        fs_grow: None,
    }
}

/// The plan of a restoreparts target: each requested partition written into the target's
/// same-numbered partition.
pub(crate) fn parts_plan(
    index: u32,
    rec: &DiskRecord,
    target: &Path,
    target_id: IdentityPlan,
    maps: &[(u32, u64)],
) -> DiskPlan {
    let source_id = source_identity(rec);
    let partitions: Vec<PartPlan> = maps
        .iter()
        .filter_map(|(n, dst)| {
            let p = rec.table.partitions.iter().find(|p| p.number == *n)?;
            Some(part_plan(p, *dst, p.size, false))
        })
        .collect();
    DiskPlan {
        disk: index,
        target: target.display().to_string(),
        differences: differences(&source_id, &target_id),
        target_identity: target_id,
        source: rec.source.clone(),
        source_identity: source_id,
        table: rec.table.kind.clone(),
        sector_size: rec.logical_sector_size,
        operation: "restoreparts".into(),
        grow: Grow::None,
        table_rewritten: false,
        bytes_to_write: partitions.iter().map(|p| p.bytes).sum(),
        partitions,
        extended: None,
        boot_regions: Vec::new(),
        gpt_backup_moved_to: None,
    }
}
