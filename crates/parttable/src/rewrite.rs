//! Rewriting a restored partition table for a target of another size: partitions moved or
//! grown (MBR primary entries, the extended container and its EBR chain; GPT entries, both
//! headers and their CRCs, the backup table at the new end of the disk).

use crate::gpt_table::{self, relocate_gpt};
use crate::mbr_table::is_extended;
use crate::source::{le32, read, write, SeekSource};
use crate::{check_sector_size, PartError};
use std::io::{Read, Seek, Write};

/// Where one partition goes in a rewritten table (bytes; multiples of the sector size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPlace {
    /// Partition number (MBR: 1-4 primary slot, 5+ logical in chain order; GPT: entry + 1).
    pub number: u32,
    /// First byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The new MBR layout: primaries by slot, and the logical partitions in chain order, each
/// with the offset of its EBR (the sector before it that describes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MbrPlan {
    /// Primary partitions (numbers 1-4): their slot keeps type and boot flag.
    pub primaries: Vec<NewPlace>,
    /// Logical partitions in chain order with their EBR offsets and MBR types.
    pub logicals: Vec<(u64, NewPlace, u8, bool)>,
    /// The extended container `(start, size)` in bytes, when there are logical partitions
    /// or an extended entry to resize.
    pub extended: Option<(u64, u64)>,
}

/// CHS of an LBA in the usual 255 heads / 63 sectors geometry, or the "too large" marker.
fn chs(lba: u64) -> [u8; 3] {
    let (h, s) = (255u64, 63u64);
    let c = lba / (h * s);
    if c > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let head = (lba / s) % h;
    let sector = lba % s + 1;
    [
        head as u8,
        (sector as u8) | (((c >> 8) as u8) << 6),
        c as u8,
    ]
}

/// Fills one 16-byte entry at `at` of a table sector.
fn put_entry(sector: &mut [u8], at: usize, boot: u8, sys: u8, start: u64, sectors: u64) {
    let e = &mut sector[at..at + 16];
    e[0] = boot;
    e[1..4].copy_from_slice(&chs(start));
    e[4] = sys;
    e[5..8].copy_from_slice(&chs(start + sectors.max(1) - 1));
    e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
}

/// Sectors of a byte range, refusing what an MBR entry cannot hold (32-bit LBAs).
fn mbr_lba(v: u64, ss: u64, what: &str) -> Result<u64, PartError> {
    if !v.is_multiple_of(ss) || v / ss > u64::from(u32::MAX) {
        return Err(PartError::Corrupt {
            what: "new MBR".to_string(),
            offset: 0,
            reason: format!(
                "{what} {v} is not a sector multiple or beyond what an MBR can address"
            ),
        });
    }
    Ok(v / ss)
}

/// Rewrites the MBR of `dev` (sector 0 must hold the restored MBR): primary slots named in
/// `plan.primaries` get their new start and size (type and boot flag kept), the extended
/// slot gets `plan.extended`, and a fresh EBR chain is written for `plan.logicals` (the boot
/// bytes 0..446 of each EBR sector are kept: they were restored there). Boot code and disk
/// signature are kept. `disk_size` bounds every entry.
pub fn rewrite_mbr<D: Read + Write + Seek>(
    dev: &mut D,
    sector_size: u32,
    disk_size: u64,
    plan: &MbrPlan,
) -> Result<(), PartError> {
    let ss = check_sector_size(sector_size)?;
    let mut src = SeekSource {
        dev: &mut *dev,
        size: disk_size,
    };
    let mut mbr = read(&mut src, 0, 512, "MBR")?;
    let beyond = |start: u64, size: u64| start.saturating_add(size) > disk_size;
    for p in &plan.primaries {
        if !(1..=4).contains(&p.number) || beyond(p.start, p.size) {
            return Err(PartError::Corrupt {
                what: "new MBR".to_string(),
                offset: 0,
                reason: format!("partition {} does not fit the disk or the MBR", p.number),
            });
        }
        let at = 446 + 16 * (p.number as usize - 1);
        let (boot, sys) = (mbr[at], mbr[at + 4]);
        put_entry(
            &mut mbr,
            at,
            boot,
            sys,
            mbr_lba(p.start, ss, "start")?,
            mbr_lba(p.size, ss, "size")?,
        );
    }
    if let Some((ext_start, ext_size)) = plan.extended {
        if beyond(ext_start, ext_size) {
            return Err(PartError::Corrupt {
                what: "new MBR".to_string(),
                offset: 0,
                reason: "the extended partition does not fit the disk".to_string(),
            });
        }
        let slot = (0..4).find(|i| is_extended(mbr[446 + 16 * i + 4]));
        let Some(slot) = slot else {
            return Err(PartError::Corrupt {
                what: "MBR".to_string(),
                offset: 0,
                reason: "logical partitions but no extended entry".to_string(),
            });
        };
        let at = 446 + 16 * slot;
        let (boot, sys) = (mbr[at], mbr[at + 4]);
        let es = mbr_lba(ext_start, ss, "extended start")?;
        put_entry(
            &mut mbr,
            at,
            boot,
            sys,
            es,
            mbr_lba(ext_size, ss, "extended size")?,
        );
        for (i, (ebr, p, sys, boot)) in plan.logicals.iter().enumerate() {
            if *ebr < ext_start || p.start <= *ebr || beyond(p.start, p.size) {
                return Err(PartError::Corrupt {
                    what: "new EBR chain".to_string(),
                    offset: *ebr,
                    reason: format!(
                        "logical partition {} is not after its EBR inside the extended partition",
                        p.number
                    ),
                });
            }
            let mut src = SeekSource {
                dev: &mut *dev,
                size: disk_size,
            };
            let mut sector = read(&mut src, *ebr, ss as usize, "EBR")?;
            sector[446..510].fill(0);
            sector[510] = 0x55;
            sector[511] = 0xaa;
            let ebr_lba = mbr_lba(*ebr, ss, "EBR")?;
            put_entry(
                &mut sector,
                446,
                if *boot { 0x80 } else { 0 },
                *sys,
                mbr_lba(p.start, ss, "start")? - ebr_lba,
                mbr_lba(p.size, ss, "size")?,
            );
            if let Some((next, np, _, _)) = plan.logicals.get(i + 1) {
                let n = mbr_lba(*next, ss, "EBR")?;
                let end = mbr_lba(np.start + np.size, ss, "end")?;
                put_entry(&mut sector, 462, 0, 0x05, n - es, end - n);
            }
            write(dev, *ebr, &sector, "EBR")?;
        }
    }
    write(dev, 0, &mbr, "MBR")?;
    dev.flush().map_err(|source| PartError::Write {
        what: "MBR (flush)".to_string(),
        offset: 0,
        source,
    })
}

/// Rewrites the GPT of `dev` for a disk of `disk_size` bytes: each entry named in `places`
/// gets its new first and last LBA (type, GUID, name and attributes kept), the entry array
/// CRC and the primary header are resealed, then [`relocate_gpt`] puts the backup entries
/// and header at the new end (last usable LBA and protective MBR updated).
pub fn rewrite_gpt<D: Read + Write + Seek>(
    dev: &mut D,
    sector_size: u32,
    disk_size: u64,
    places: &[NewPlace],
) -> Result<(), PartError> {
    let ss = check_sector_size(sector_size)?;
    let total = disk_size / ss;
    let primary = {
        let mut src = SeekSource {
            dev: &mut *dev,
            size: total * ss,
        };
        gpt_table::parse_at(&mut src, ss, 1)?
    };
    let primary = primary.map_err(|reason| PartError::NoGpt { offset: ss, reason })?;
    let mut entries = primary.entries.clone();
    let count = entries.len() / 128;
    for p in places {
        let i = p.number as usize;
        if i == 0
            || i > count
            || !p.start.is_multiple_of(ss)
            || !p.size.is_multiple_of(ss)
            || p.size == 0
        {
            return Err(PartError::Corrupt {
                what: "new GPT".to_string(),
                offset: ss,
                reason: format!("partition {} cannot be placed there", p.number),
            });
        }
        let at = (i - 1) * 128;
        entries[at + 32..at + 40].copy_from_slice(&(p.start / ss).to_le_bytes());
        entries[at + 40..at + 48].copy_from_slice(&((p.start + p.size) / ss - 1).to_le_bytes());
    }
    let mut head = primary.sector.clone();
    head[88..92].copy_from_slice(&crc32fast::hash(&entries).to_le_bytes());
    // Last usable LBA: the new end (relocate_gpt sets the exact value).
    let size = le32(&head, 12) as usize;
    head[16..20].fill(0);
    let crc = crc32fast::hash(&head[..size]);
    head[16..20].copy_from_slice(&crc.to_le_bytes());
    let array_at = u64::from_le_bytes(head[72..80].try_into().unwrap_or([0; 8]));
    write(dev, array_at * ss, &entries, "GPT partition entries")?;
    write(dev, ss, &head, "GPT primary header")?;
    relocate_gpt(dev, sector_size, disk_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_layout_from, PartitionKind, TableKind};
    use proptest::prelude::*;
    use std::io::Cursor;

    const MIB: u64 = 1 << 20;

    /// A layout: sizes (MiB) of primaries then logicals, gaps (MiB) before each.
    fn places(
        prim: &[(u64, u64)],
        logi: &[(u64, u64)],
    ) -> (Vec<NewPlace>, Vec<(u64, NewPlace)>, u64) {
        let mut at = MIB;
        let mut p = Vec::new();
        for (i, (gap, size)) in prim.iter().enumerate() {
            at += gap * MIB;
            p.push(NewPlace {
                number: i as u32 + 1,
                start: at,
                size: size * MIB,
            });
            at += size * MIB;
        }
        let mut l = Vec::new();
        for (i, (gap, size)) in logi.iter().enumerate() {
            let ebr = at + gap * MIB;
            let start = ebr + MIB;
            l.push((
                ebr,
                NewPlace {
                    number: i as u32 + 5,
                    start,
                    size: size * MIB,
                },
            ));
            at = start + size * MIB;
        }
        (p, l, at)
    }

    fn no_overlap(parts: &[(u64, u64)]) {
        let mut v = parts.to_vec();
        v.sort();
        for w in v.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap: {w:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn mbr_rewrite_parses_back(
            prim in proptest::collection::vec((0u64..3, 1u64..6), 1..4),
            logi in proptest::collection::vec((0u64..3, 1u64..6), 0..5),
            extra in 0u64..4,
        ) {
            let (p, l, end) = places(&prim, &logi);
            let size = end + extra * MIB;
            let mut disk = vec![0u8; size as usize];
            disk[510] = 0x55;
            disk[511] = 0xaa;
            for q in &p {
                disk[446 + 16 * (q.number as usize - 1) + 4] = 0x83;
            }
            let ext = l.first().map(|(ebr, _)| (*ebr, end - ebr));
            if ext.is_some() {
                disk[446 + 16 * 3 + 4] = 0x05;
            }
            let plan = MbrPlan {
                primaries: p.clone(),
                logicals: l.iter().map(|(e, q)| (*e, *q, 0x83, false)).collect(),
                extended: ext,
            };
            let mut c = Cursor::new(disk);
            rewrite_mbr(&mut c, 512, size, &plan).unwrap();
            c.set_position(0);
            let layout = read_layout_from(c, 512).unwrap();
            prop_assert_eq!(layout.kind, TableKind::Mbr);
            prop_assert!(layout.warnings.is_empty(), "{:?}", layout.warnings);
            let want: Vec<(u32, u64, u64)> = p.iter().chain(l.iter().map(|(_, q)| q))
                .map(|q| (q.number, q.start, q.size)).collect();
            let got: Vec<(u32, u64, u64)> = layout.partitions.iter()
                .map(|q| (q.number, q.start, q.size)).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(layout.partitions.iter().filter(|q| q.kind == PartitionKind::Logical).count(), l.len());
            no_overlap(&layout.partitions.iter().map(|q| (q.start, q.size)).collect::<Vec<_>>());
        }

        #[test]
        fn gpt_rewrite_parses_back(
            sizes in proptest::collection::vec((0u64..3, 1u64..6), 1..6),
            extra in 0u64..6,
            ss in prop_oneof![Just(512u64), Just(4096u64)],
        ) {
            let (p, _, end) = places(&sizes, &[]);
            let size = end + MIB + extra * MIB;
            let mut disk = vec![0u8; size as usize];
            fresh_gpt(&mut disk, ss, p.len());
            let mut c = Cursor::new(disk);
            rewrite_gpt(&mut c, ss as u32, size, &p).unwrap();
            c.set_position(0);
            let layout = read_layout_from(c, ss as u32).unwrap();
            prop_assert_eq!(layout.kind, TableKind::Gpt);
            prop_assert!(layout.warnings.is_empty(), "{:?}", layout.warnings);
            let want: Vec<(u32, u64, u64)> = p.iter().map(|q| (q.number, q.start, q.size)).collect();
            let got: Vec<(u32, u64, u64)> = layout.partitions.iter()
                .map(|q| (q.number, q.start, q.size)).collect();
            prop_assert_eq!(got, want);
            no_overlap(&layout.partitions.iter().map(|q| (q.start, q.size)).collect::<Vec<_>>());
        }
    }

    /// A valid GPT of `n` placeholder entries (1 sector each) on a disk twice too small in
    /// its header (backup at a wrong place), as a restored source table would be.
    fn fresh_gpt(disk: &mut [u8], ss: u64, n: usize) {
        let total = disk.len() as u64 / ss;
        disk[446 + 4] = 0xee;
        disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&((total - 1) as u32).to_le_bytes());
        disk[510] = 0x55;
        disk[511] = 0xaa;
        let esec = (128 * 128) / ss;
        let mut entries = vec![0u8; 128 * 128];
        for i in 0..n {
            let e = &mut entries[i * 128..(i + 1) * 128];
            e[0..16].copy_from_slice(&[
                0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
                0x7d, 0xe4,
            ]);
            e[16] = i as u8 + 1;
            e[17] = 0x5a;
            e[32..40].copy_from_slice(&(2 + esec + i as u64).to_le_bytes());
            e[40..48].copy_from_slice(&(2 + esec + i as u64).to_le_bytes());
        }
        let mut h = vec![0u8; ss as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&1u64.to_le_bytes());
        h[32..40].copy_from_slice(&(total / 2).to_le_bytes());
        h[40..48].copy_from_slice(&(2 + esec).to_le_bytes());
        h[48..56].copy_from_slice(&(total / 2 - esec - 1).to_le_bytes());
        h[56] = 0x11;
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&crc32fast::hash(&entries).to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        let ss = ss as usize;
        disk[ss..2 * ss].copy_from_slice(&h);
        disk[2 * ss..2 * ss + entries.len()].copy_from_slice(&entries);
    }
}
