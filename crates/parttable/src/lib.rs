//! Partition tables for lifeboat.
//!
//! One job: understand how a disk is partitioned, so that the rest of lifeboat can save and
//! restore it partition by partition. [`read_layout`] reads an MBR (primary partitions and the
//! logical partitions behind an extended one) or a GPT (primary header, or the backup when the
//! primary is damaged) into a [`Layout`]: the partitions and the [`Region`]s outside them that a
//! bootable disk still needs (boot code, bootloader gaps, EBRs, the GPT backup). After a GPT
//! disk was restored onto a larger disk, [`relocate_gpt`] moves the backup table to the new end,
//! like `sgdisk -e`.
//!
//! Parsers only read through [`ReadAt`] (or `Read + Seek` for relocation); they never open
//! devices and treat every byte as hostile: offsets are bounds-checked, sizes are capped, EBR
//! chains are bounded and loop-checked, and the `mbrman` and `gpt` crates only decode bytes
//! that were validated here first.
#![forbid(unsafe_code)]

mod error;
mod gpt_table;
mod mbr_table;
mod regions;
mod rewrite;
mod source;
mod types;

pub use error::PartError;
pub use gpt_table::relocate_gpt;
pub use rewrite::{rewrite_gpt, rewrite_mbr, MbrPlan, NewPlace};
pub use types::{gpt_type_name, mbr_type_name};

use lifeboat_fs::{Extent, ReadAt};
use source::{read, DynSource, Source};

/// One mebibyte.
pub(crate) const MIB: u64 = 1 << 20;

/// Which kind of partition table a disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// No valid table: a filesystem on the whole disk, or an empty disk.
    None,
    /// A DOS/MBR table.
    Mbr,
    /// A GUID partition table.
    Gpt,
}

/// Where a partition is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKind {
    /// One of the four entries of the MBR.
    Primary,
    /// A logical partition inside an extended partition (described by an EBR).
    Logical,
    /// A GPT entry.
    Gpt,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// MBR: 1-4 for primary (the slot), 5+ for logical in chain order; GPT: entry index + 1.
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Primary, logical or GPT.
    pub kind: PartitionKind,
    /// `0x83` style for MBR; the uppercase type GUID for GPT.
    pub type_code: String,
    /// Human name of the type (`Linux`, `EFI System`, `Microsoft basic data`, ...), `unknown`
    /// when not known.
    pub type_name: String,
    /// GPT partition name (label); empty for MBR.
    pub name: String,
    /// GPT unique partition GUID, uppercase.
    pub guid: Option<String>,
    /// MBR active flag; GPT legacy BIOS bootable attribute (bit 2).
    pub bootable: bool,
}

impl Partition {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
    /// The partition as an [`Extent`] of the disk.
    pub fn extent(&self) -> Extent {
        Extent::new(self.start, self.size)
    }
}

/// Bytes outside the partitions that a bootable disk needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// First byte on the disk.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// What lives there, for operators.
    pub what: String,
}

impl Region {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
    /// The region as an [`Extent`] of the disk.
    pub fn extent(&self) -> Extent {
        Extent::new(self.offset, self.len)
    }
}

/// How a disk is partitioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Kind of table.
    pub kind: TableKind,
    /// Logical sector size the table was read with.
    pub sector_size: u32,
    /// Size of the disk in bytes.
    pub disk_size: u64,
    /// GPT disk GUID (uppercase), or MBR disk signature as `0x%08x`.
    pub disk_id: Option<String>,
    /// Partitions by number (extended containers are not listed: their EBRs are in
    /// `boot_regions`).
    pub partitions: Vec<Partition>,
    /// Bytes outside the partitions a bootable disk needs, sorted, non-overlapping, inside
    /// the disk.
    pub boot_regions: Vec<Region>,
    /// Things the operator should know: backup GPT damaged, disk larger than the table, ...
    pub warnings: Vec<String>,
}

impl Layout {
    /// The partition with this number.
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// [`read_layout`] for any `Read + Seek` (a file, a cursor over bytes).
pub fn read_layout_from<R: std::io::Read + std::io::Seek + Send>(
    reader: R,
    sector_size: u32,
) -> Result<Layout, PartError> {
    let disk = lifeboat_fs::ReadSeekAt::new(reader).map_err(|source| PartError::Read {
        what: "disk size (seek to the end)".to_string(),
        offset: 0,
        source,
    })?;
    read_layout(&disk, sector_size)
}

/// Checks the sector size; returns it as u64.
pub(crate) fn check_sector_size(sector_size: u32) -> Result<u64, PartError> {
    match sector_size {
        512 | 4096 => Ok(u64::from(sector_size)),
        _ => Err(PartError::SectorSize { sector_size }),
    }
}

/// The logical sector size a GPT on `disk` was written for, told by where its header
/// signature (`EFI PART`) is: `Some(512)` at byte 512, `Some(4096)` at byte 4096 (and not at
/// 512), `None` when neither holds one. For disk image files, which have no sector size of
/// their own. Reads 16 bytes; never fails: an unreadable position counts as no signature.
pub fn sniff_sector_size(disk: &dyn ReadAt) -> Option<u32> {
    let signature_at = |offset: u64| {
        let mut b = [0u8; 8];
        disk.read_exact_at(&mut b, offset).is_ok() && &b == b"EFI PART"
    };
    if signature_at(512) {
        Some(512)
    } else if signature_at(4096) {
        Some(4096)
    } else {
        None
    }
}

/// Reads the partition table of `disk`, whose logical sectors are `sector_size` bytes (512
/// or 4096; LBAs in the table count those sectors).
///
/// GPT is used when the MBR has a 0xEE (protective) entry, or when there is no MBR but a
/// valid GPT. A damaged primary GPT falls back to the backup at the end of the disk (with a
/// warning). An MBR with an extended partition has its EBR chain walked. A disk with neither
/// (a filesystem on the whole disk, or nothing) gets [`TableKind::None`] and no regions.
///
/// Errors: I/O failures, an unsupported sector size, and tables that are recognisable but
/// inconsistent ([`PartError::Corrupt`]: a protective MBR without any valid GPT header, an EBR
/// chain that loops or leaves its extended partition): the caller should then image the disk
/// raw. Never panics, whatever the bytes.
pub fn read_layout(disk: &dyn ReadAt, sector_size: u32) -> Result<Layout, PartError> {
    let ss = check_sector_size(sector_size)?;
    let src: &mut dyn Source = &mut DynSource(disk);
    let disk_size = src.size();
    let mut layout = Layout {
        kind: TableKind::None,
        sector_size,
        disk_size,
        disk_id: None,
        partitions: Vec::new(),
        boot_regions: Vec::new(),
        warnings: Vec::new(),
    };
    if disk_size < 512 {
        return Ok(layout);
    }
    let sector0 = read(src, 0, 512, "MBR")?;
    let mbr = mbr_table::decode(&sector0);
    let vbr = mbr_table::looks_like_vbr(&sector0);
    let disk_sectors = disk_size / ss;

    if let Some(m) = mbr.as_ref().filter(|m| m.is_protective()) {
        return match gpt_layout(src, ss, &mut layout)? {
            Ok(()) => {
                if m.entries.iter().any(|e| e.sys != 0 && e.sys != 0xee) {
                    layout.warnings.push(
                        "hybrid MBR: the MBR lists partitions besides the GPT protective one; \
                         the GPT is used"
                            .to_string(),
                    );
                }
                Ok(layout)
            }
            Err(reason) => Err(PartError::Corrupt {
                what: "GPT".to_string(),
                offset: ss,
                reason: format!("the MBR is a GPT protective MBR, but {reason}"),
            }),
        };
    }
    if let Some(m) = mbr.as_ref().filter(|m| m.has_used()) {
        if m.plausible(disk_sectors) || !vbr {
            layout.kind = TableKind::Mbr;
            layout.disk_id = Some(format!("0x{:08x}", m.signature));
            let parsed = mbr_table::read_partitions(src, ss, m)?;
            layout.partitions = parsed.partitions;
            layout.warnings = parsed.warnings;
            layout.partitions.sort_by_key(|p| p.number);
            if let Ok(Ok(_)) = gpt_table::parse_at(src, ss, 1) {
                layout.warnings.push(
                    "a valid GPT header is at LBA 1 but the MBR has no protective entry: the \
                     MBR is used (stale GPT?)"
                        .to_string(),
                );
            }
            finish_mbr(&mut layout, parsed.regions);
            return Ok(layout);
        }
    }
    if vbr {
        return Ok(layout);
    }
    if gpt_layout(src, ss, &mut layout)?.is_ok() {
        layout.warnings.push(
            "the disk has a GPT but no protective MBR; restore writes the MBR as found".to_string(),
        );
        return Ok(layout);
    }
    if let Some(m) = mbr {
        layout.kind = TableKind::Mbr;
        layout.disk_id = Some(format!("0x{:08x}", m.signature));
        finish_mbr(&mut layout, Vec::new());
    }
    Ok(layout)
}

fn check_bounds(layout: &mut Layout) {
    let size = layout.disk_size;
    for p in &layout.partitions {
        if p.end() > size {
            layout.warnings.push(format!(
                "partition {} (bytes {}..{}) passes the end of the disk ({size} bytes)",
                p.number,
                p.start,
                p.end()
            ));
        }
    }
    let mut sorted: Vec<&Partition> = layout.partitions.iter().collect();
    sorted.sort_by_key(|p| (p.start, p.number));
    let overlaps: Vec<String> = sorted
        .windows(2)
        .filter(|w| w[1].start < w[0].end())
        .map(|w| format!("partitions {} and {} overlap", w[0].number, w[1].number))
        .collect();
    layout.warnings.extend(overlaps);
}

fn finish_mbr(layout: &mut Layout, ebrs: Vec<Region>) {
    check_bounds(layout);
    layout.boot_regions = regions::boot_regions(
        layout.disk_size,
        &layout.partitions,
        MIB,
        "MBR (boot code, partition table) and the gap before the first partition",
        ebrs,
    );
}

/// Where a valid backup table lives: its entry array and its header.
fn backup_at(b: &gpt_table::Table, ss: u64) -> (Region, Region) {
    (
        Region {
            offset: b.header.part_start * ss,
            len: b.entry_sectors(ss) * ss,
            what: "GPT backup partition entries".to_string(),
        },
        Region {
            offset: b.lba * ss,
            len: ss,
            what: "GPT backup header".to_string(),
        },
    )
}

/// Fills `layout` from the GPT (primary, else backup). `Ok(Err(reason))` when there is no
/// valid GPT.
fn gpt_layout(
    src: &mut dyn Source,
    ss: u64,
    layout: &mut Layout,
) -> Result<Result<(), String>, PartError> {
    let disk_sectors = src.size() / ss;
    if disk_sectors < 3 {
        return Ok(Err("the disk is too small for a GPT".to_string()));
    }
    let last = disk_sectors - 1;
    let mut warnings = Vec::new();
    let mut extra = Vec::new();
    let (table, backup) = match gpt_table::parse_at(src, ss, 1)? {
        Ok(primary) => {
            let alt = primary.header.backup_lba;
            let backup = if alt >= disk_sectors {
                warnings.push(format!(
                    "the GPT backup header should be at LBA {alt} but the disk has only \
                     {disk_sectors} sectors: the disk or image is smaller than its table"
                ));
                None
            } else {
                if alt != last {
                    warnings.push(format!(
                        "the GPT backup header is at LBA {alt}, not at the last LBA {last}: the \
                         disk is larger than its table; relocate the backup (relocate_gpt, \
                         `sgdisk -e`)"
                    ));
                }
                match gpt_table::parse_at(src, ss, alt)? {
                    Ok(b) => {
                        if b.entries != primary.entries {
                            warnings.push(
                                "the GPT backup partition entries differ from the primary ones; \
                                 the primary is used"
                                    .to_string(),
                            );
                        }
                        Some(backup_at(&b, ss))
                    }
                    Err(reason) => {
                        warnings.push(format!(
                            "the GPT backup header at LBA {alt} is invalid ({reason}); repair it \
                             with `sgdisk -e` or gdisk"
                        ));
                        // Keep the bytes where the backup belongs.
                        let esec = primary.entry_sectors(ss);
                        let from = alt.saturating_sub(esec).max(1);
                        extra.push(Region {
                            offset: from * ss,
                            len: (alt + 1 - from) * ss,
                            what: "GPT backup entries and header (damaged)".to_string(),
                        });
                        None
                    }
                }
            };
            (primary, backup)
        }
        Err(primary_reason) => {
            match gpt_table::parse_at(src, ss, last)? {
                Ok(b) => {
                    warnings.push(format!(
                    "the primary GPT header is invalid ({primary_reason}); using the backup at \
                     LBA {last}: repair the disk with gdisk"
                ));
                    let at = backup_at(&b, ss);
                    (b, Some(at))
                }
                Err(backup_reason) => {
                    let other = if ss == 512 { 4096 } else { 512 };
                    let hint = if let Ok(Ok(_)) = gpt_table::parse_at(src, other, 1) {
                        format!("; a GPT for {other}-byte sectors is present: read with that sector size")
                    } else {
                        String::new()
                    };
                    return Ok(Err(format!(
                        "the primary GPT header is invalid ({primary_reason}) and so is the \
                     backup at LBA {last} ({backup_reason}){hint}"
                    )));
                }
            }
        }
    };
    if let Some((entries, header)) = backup {
        extra.push(entries);
        extra.push(header);
    }
    layout.kind = TableKind::Gpt;
    layout.disk_id = Some(table.header.disk_guid.to_string().to_uppercase());
    let first_usable_byte = table.header.first_usable.saturating_mul(ss);
    layout.partitions = table.partitions;
    layout.partitions.sort_by_key(|p| p.number);
    layout.warnings = warnings;
    layout.warnings.extend(table.warnings);
    check_bounds(layout);
    layout.boot_regions = regions::boot_regions(
        layout.disk_size,
        &layout.partitions,
        first_usable_byte.max(MIB),
        "protective MBR, GPT header and entries, and the gap before the first partition",
        extra,
    );
    Ok(Ok(()))
}
