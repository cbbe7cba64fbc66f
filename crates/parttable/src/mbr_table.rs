//! MBR: the primary table (decoded by `mbrman`) and the chain of EBRs behind an extended
//! partition (walked here: bounded, loop-checked, overflow-free).

use crate::source::{le32, read, Source};
use crate::types::mbr_type_name;
use crate::{PartError, Partition, PartitionKind, Region, MIB};
use std::collections::BTreeSet;
use std::io::Cursor;

/// Most EBRs followed in one extended partition before the chain counts as corrupt.
pub(crate) const MAX_LOGICAL: usize = 128;

/// One slot of a partition table sector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Slot number, 1..=4.
    pub(crate) slot: u32,
    pub(crate) boot: u8,
    pub(crate) sys: u8,
    pub(crate) start: u32,
    pub(crate) sectors: u32,
}

/// A decoded MBR.
#[derive(Debug, Clone)]
pub(crate) struct Mbr {
    pub(crate) signature: u32,
    pub(crate) entries: Vec<Entry>,
}

/// Extended partition container types: DOS (0x05), LBA (0x0F), Linux (0x85).
pub(crate) fn is_extended(sys: u8) -> bool {
    matches!(sys, 0x05 | 0x0f | 0x85)
}

/// Decodes sector 0 with `mbrman`. `None` without the 0x55AA signature or with a boot
/// indicator other than 0x00/0x80 (then it is not a partition table: e.g. a FAT boot sector).
pub(crate) fn decode(sector0: &[u8]) -> Option<Mbr> {
    let first = sector0.get(..512)?;
    let hdr = mbrman::MBRHeader::read_from(&mut Cursor::new(first)).ok()?;
    let entries = hdr
        .iter()
        .map(|(i, e)| Entry {
            slot: i as u32,
            boot: e.boot,
            sys: e.sys,
            start: e.starting_lba,
            sectors: e.sectors,
        })
        .collect();
    Some(Mbr {
        signature: u32::from_le_bytes(hdr.disk_signature),
        entries,
    })
}

/// The four raw entries of an EBR sector (no validation: EBRs carry odd boot bytes).
fn raw_entries(sector: &[u8]) -> Vec<Entry> {
    (0..4)
        .map(|i| {
            let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
            Entry {
                slot: i as u32 + 1,
                boot: e[0],
                sys: e[4],
                start: le32(e, 8),
                sectors: le32(e, 12),
            }
        })
        .collect()
}

impl Mbr {
    /// True when an entry has type 0xEE (GPT protective).
    pub(crate) fn is_protective(&self) -> bool {
        self.entries.iter().any(|e| e.sys == 0xee)
    }

    /// True when some entry is in use.
    pub(crate) fn has_used(&self) -> bool {
        self.entries.iter().any(|e| e.sys != 0)
    }

    /// True when every used entry lies inside a disk of `disk_sectors` sectors, after the MBR.
    pub(crate) fn plausible(&self, disk_sectors: u64) -> bool {
        self.has_used()
            && self.entries.iter().filter(|e| e.sys != 0).all(|e| {
                e.start >= 1
                    && e.sectors >= 1
                    && u64::from(e.start) + u64::from(e.sectors) <= disk_sectors
            })
    }
}

/// True when sector 0 is the boot sector of a filesystem that spans the whole disk (NTFS,
/// exFAT, BitLocker, FAT with a sane BIOS parameter block).
pub(crate) fn looks_like_vbr(s: &[u8]) -> bool {
    if s.len() < 512 {
        return false;
    }
    if matches!(&s[3..11], b"NTFS    " | b"EXFAT   " | b"-FVE-FS-") {
        return true;
    }
    let jump = (s[0] == 0xeb && s[2] == 0x90) || s[0] == 0xe9;
    let bps = u16::from_le_bytes([s[11], s[12]]);
    let spc = s[13];
    let reserved = u16::from_le_bytes([s[14], s[15]]);
    let fats = s[16];
    let media = s[21];
    let fat_name = &s[54..59] == b"FAT12" || &s[54..59] == b"FAT16" || &s[82..87] == b"FAT32";
    jump && fat_name
        && matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && reserved >= 1
        && matches!(fats, 1 | 2)
        && (media == 0xf0 || media >= 0xf8)
}

/// Partitions, EBR regions and warnings of an MBR disk.
pub(crate) struct MbrParse {
    pub(crate) partitions: Vec<Partition>,
    pub(crate) regions: Vec<Region>,
    pub(crate) warnings: Vec<String>,
}

fn partition(number: u32, kind: PartitionKind, e: &Entry, start_lba: u64, ss: u64) -> Partition {
    Partition {
        number,
        start: start_lba * ss,
        size: u64::from(e.sectors) * ss,
        kind,
        type_code: format!("0x{:02x}", e.sys),
        type_name: mbr_type_name(e.sys).to_string(),
        name: String::new(),
        guid: None,
        bootable: e.boot == 0x80,
    }
}

/// Reads the primary partitions and walks every extended partition's EBR chain.
pub(crate) fn read_partitions(
    src: &mut dyn Source,
    ss: u64,
    mbr: &Mbr,
) -> Result<MbrParse, PartError> {
    let mut out = MbrParse {
        partitions: Vec::new(),
        regions: Vec::new(),
        warnings: Vec::new(),
    };
    let mut next_logical = 5u32;
    let mut extended_seen = 0;
    for e in mbr.entries.iter().filter(|e| e.sys != 0) {
        if e.sectors == 0 {
            out.warnings.push(format!(
                "MBR entry {} has type 0x{:02x} but no sectors; ignored",
                e.slot, e.sys
            ));
            continue;
        }
        if is_extended(e.sys) {
            extended_seen += 1;
            if extended_seen > 1 {
                out.warnings.push(format!(
                    "MBR entry {} is a second extended partition; its logical partitions are \
                     numbered after the first one's",
                    e.slot
                ));
            }
            walk_chain(src, ss, e, &mut next_logical, &mut out)?;
            continue;
        }
        if e.start == 0 {
            out.warnings.push(format!(
                "partition {} starts at LBA 0, on top of the MBR",
                e.slot
            ));
        }
        out.partitions.push(partition(
            e.slot,
            PartitionKind::Primary,
            e,
            u64::from(e.start),
            ss,
        ));
    }
    Ok(out)
}

/// Follows the EBR chain of extended partition `ext`.
fn walk_chain(
    src: &mut dyn Source,
    ss: u64,
    ext: &Entry,
    next_number: &mut u32,
    out: &mut MbrParse,
) -> Result<(), PartError> {
    let ext_start = u64::from(ext.start);
    let ext_end = ext_start + u64::from(ext.sectors);
    let mut cur = ext_start;
    let mut visited = BTreeSet::new();
    for hop in 0.. {
        let offset = cur * ss;
        let corrupt = |reason: String| PartError::Corrupt {
            what: "EBR chain".to_string(),
            offset,
            reason,
        };
        if hop >= MAX_LOGICAL {
            return Err(corrupt(format!(
                "more than {MAX_LOGICAL} logical partitions; the chain is probably corrupt"
            )));
        }
        if !visited.insert(cur) {
            return Err(corrupt(format!(
                "the chain loops back to the EBR at LBA {cur}"
            )));
        }
        if offset.checked_add(512).is_none_or(|end| end > src.size()) {
            if hop == 0 {
                out.warnings.push(format!(
                    "extended partition {} starts past the end of the disk (LBA {cur})",
                    ext.slot
                ));
                return Ok(());
            }
            return Err(corrupt(format!(
                "the EBR at LBA {cur} is past the end of the disk"
            )));
        }
        let sector = read(src, offset, 512, "EBR")?;
        if sector[510..512] != [0x55, 0xaa] {
            if hop == 0 {
                // An extended partition without logical partitions needs no EBR.
                return Ok(());
            }
            return Err(corrupt(format!(
                "the EBR at LBA {cur} lacks the 0x55AA signature"
            )));
        }
        let entries = raw_entries(&sector);
        let mut first_data: Option<(u64, u32)> = None;
        for (i, e) in entries.iter().enumerate() {
            if e.sys == 0 || e.sectors == 0 || is_extended(e.sys) {
                continue;
            }
            let start = cur + u64::from(e.start);
            let end = start + u64::from(e.sectors);
            let inside = start > ext_start && end <= ext_end;
            // Slots 3 and 4 of an EBR often hold garbage: only trust them when they fit.
            if i >= 2 && !inside {
                continue;
            }
            let number = *next_number;
            *next_number += 1;
            if !inside {
                out.warnings.push(format!(
                    "logical partition {number} (LBA {start}..{end}) is not inside its extended \
                     partition (LBA {ext_start}..{ext_end})"
                ));
            }
            if start <= cur {
                out.warnings.push(format!(
                    "logical partition {number} starts at LBA {start}, not after its EBR at LBA {cur}"
                ));
            }
            out.partitions
                .push(partition(number, PartitionKind::Logical, e, start, ss));
            if first_data.is_none_or(|(s, _)| start < s) {
                first_data = Some((start, number));
            }
        }
        // The EBR sector and the gap after it up to its logical partition (at most 1 MiB).
        let ebr_end = match first_data {
            Some((s, _)) if s * ss > offset => (s * ss).min(offset + MIB).max(offset + ss),
            _ => offset + ss,
        };
        out.regions.push(Region {
            offset,
            len: ebr_end - offset,
            what: match first_data {
                Some((_, n)) => format!("EBR of logical partition {n}"),
                None => "EBR without logical partition".to_string(),
            },
        });
        let Some(link) = entries.iter().find(|e| is_extended(e.sys) && e.sectors > 0) else {
            return Ok(());
        };
        let next = ext_start + u64::from(link.start);
        if next >= ext_end {
            return Err(corrupt(format!(
                "the EBR at LBA {cur} links to LBA {next}, outside its extended partition \
                 (LBA {ext_start}..{ext_end})"
            )));
        }
        cur = next;
    }
    Ok(())
}
