//! A saved disk's boot areas rebuilt from the image directory: the bytes outside the
//! partitions that a restore writes, laid out where they were on the source disk.
//!
//! Clonezilla keeps them in separate files: the first sector (`<disk>-mbr`), the sectors after
//! it up to the first partition (`<disk>-hidden-data-after-mbr`), the GPT's first 34 and last
//! 33 sectors (`<disk>-gpt-1st`, `<disk>-gpt-2nd`), the first extended boot record
//! (`<part>-ebr`) and the table as `sfdisk --dump` text (`<disk>-pt.sf`). Its restore writes
//! the table with `sfdisk`, which builds the chain of extended boot records itself; only the
//! first EBR is saved. [`DiskHead::build`] puts the saved files where they belong and
//! rebuilds the EBRs that were not saved as `sfdisk` (util-linux libfdisk) places them: the
//! first at the start of the extended partition, every later one one alignment grain
//! (1 MiB) before its logical partition, or in the sector just before it when the previous
//! logical partition leaves no room for a grain. Each EBR's first entry describes its
//! logical partition relative to the EBR; its second entry links to the next EBR relative
//! to the start of the extended partition (type `0x05`), as `sfdisk` writes them.
//!
//! The size of the source disk comes from `<disk>-pt.parted` (`Disk /dev/sda: 41943040s`),
//! else from the GPT header's backup LBA, else from the end of the last partition (noted).
//!
//! Nothing here reads a device; [`DiskHead::read_at`] answers zeros outside the rebuilt
//! areas.

use crate::dir::{CloneImage, DiskInfo};
use crate::sfdisk::{SfdiskPartition, SfdiskTable};
use crate::{Error, Result};

/// Maximum number of pieces a head holds (the boot files plus one EBR per logical
/// partition; [`crate::sfdisk::MAX_PARTITIONS`] bounds the latter).
const MAX_PIECES: usize = crate::sfdisk::MAX_PARTITIONS + 16;

/// One saved disk's boot areas, rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskHead {
    /// Kernel name when saved (`sda`).
    pub name: String,
    /// Size of the source disk in bytes.
    pub size: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// The table as saved.
    pub table: SfdiskTable,
    /// What the operator should know (the disk size was guessed, an EBR was rebuilt, …).
    pub notes: Vec<String>,
    /// Bytes at offsets, in the order they were laid down (a later piece wins where two
    /// overlap).
    pieces: Vec<(u64, Vec<u8>)>,
}

/// The sector holding byte `lba * ss`, as a byte offset, or an error naming the table.
fn bytes(lba: u64, ss: u32, file: &str) -> Result<u64> {
    lba.checked_mul(u64::from(ss))
        .ok_or_else(|| Error::Unsupported {
            file: file.to_string(),
            reason: format!("sector {lba} lies beyond 2^64 bytes"),
        })
}

/// The disk size in sectors that `parted -s DISK unit s print` reported
/// (`Disk /dev/sda: 41943040s`).
pub fn parted_sectors(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Disk /")?;
        let (_, size) = rest.rsplit_once(": ")?;
        size.trim().strip_suffix('s')?.parse().ok()
    })
}

/// The backup header's LBA in a GPT header read from `first` (a copy of the disk's first
/// sectors), when its signature is there.
fn gpt_alternate_lba(first: &[u8], ss: usize) -> Option<u64> {
    let h = first.get(ss..ss + 92)?;
    if &h[..8] != b"EFI PART" {
        return None;
    }
    Some(u64::from_le_bytes(h[32..40].try_into().ok()?))
}

/// The primary GPT entry array (from `first`, a copy of the disk's first sectors) and the
/// LBA where the backup header at the end of `second` (a copy of the disk's last sectors)
/// places its copy — when both headers are there and name the same array (count, size, CRC).
fn backup_entries(first: &[u8], second: &[u8], ss: usize) -> Option<(u64, Vec<u8>)> {
    let primary = first.get(ss..ss + 92)?;
    let backup = second.get(second.len().checked_sub(ss)?..)?.get(..92)?;
    if &primary[..8] != b"EFI PART" || &backup[..8] != b"EFI PART" {
        return None;
    }
    let u32_at =
        |h: &[u8], o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap_or_default());
    let u64_at =
        |h: &[u8], o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or_default());
    if (80..92)
        .step_by(4)
        .any(|o| u32_at(primary, o) != u32_at(backup, o))
    {
        return None;
    }
    let len =
        usize::try_from(u64::from(u32_at(primary, 80)) * u64::from(u32_at(primary, 84))).ok()?;
    let start = usize::try_from(u64_at(primary, 72)).ok()?.checked_mul(ss)?;
    let array = first.get(start..start.checked_add(len)?)?;
    Some((u64_at(backup, 72), array.to_vec()))
}

fn mbr_type(p: &SfdiskPartition, file: &str) -> Result<u8> {
    u8::from_str_radix(p.kind.trim_start_matches("0x"), 16).map_err(|_| Error::BadText {
        file: file.to_string(),
        line: 0,
        reason: format!("{}: type={:?} is not an MBR type", p.device, p.kind),
    })
}

/// The disk geometry CHS fields are computed with: heads and sectors per track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    heads: u64,
    sectors: u64,
}

impl Geometry {
    /// sfdisk's geometry when the device reports none (a disk image file): 255 heads, 63
    /// sectors per track.
    const DEFAULT: Geometry = Geometry {
        heads: 255,
        sectors: 63,
    };

    /// The geometry in Clonezilla's `<disk>-chs.sf` (`heads=255`, `sectors=63` among its
    /// words), when it gives a usable one.
    fn parse(text: &str) -> Option<Geometry> {
        let field = |k: &str| {
            text.split(|c: char| c.is_whitespace() || c == ',')
                .find_map(|w| w.strip_prefix(k)?.trim().parse::<u64>().ok())
        };
        let (heads, sectors) = (field("heads=")?, field("sectors=")?);
        ((1..=255).contains(&heads) && (1..=63).contains(&sectors))
            .then_some(Geometry { heads, sectors })
    }

    /// The 3-byte CHS address of sector `lba`, as sfdisk writes it; (1023, 254, 63) beyond
    /// cylinder 1023.
    fn chs(self, lba: u64) -> [u8; 3] {
        let cyl = lba / (self.heads * self.sectors);
        if cyl > 1023 {
            return [0xfe, 0xff, 0xff];
        }
        let head = (lba / self.sectors) % self.heads;
        let sector = lba % self.sectors + 1;
        [
            head as u8,
            (sector as u8) | (((cyl >> 8) as u8) << 6),
            cyl as u8,
        ]
    }
}

/// Writes one 16-byte MBR/EBR entry: LBA fields `rel_start` (relative to the sector that
/// holds the table) and `size`; CHS fields of the absolute sectors `abs_start` and its last.
#[allow(clippy::too_many_arguments)]
fn entry(
    out: &mut [u8],
    slot: usize,
    boot: bool,
    kind: u8,
    abs_start: u64,
    start: u64,
    size: u64,
    geo: Geometry,
    file: &str,
) -> Result<()> {
    let too_big = |v: u64| Error::Unsupported {
        file: file.to_string(),
        reason: format!("{v} sectors do not fit an MBR entry (32 bits)"),
    };
    let start = u32::try_from(start).map_err(|_| too_big(start))?;
    let size = u32::try_from(size).map_err(|_| too_big(size))?;
    let e = &mut out[446 + 16 * slot..446 + 16 * (slot + 1)];
    e[0] = if boot { 0x80 } else { 0 };
    e[1..4].copy_from_slice(&geo.chs(abs_start));
    e[4] = kind;
    e[5..8].copy_from_slice(&geo.chs(abs_start + u64::from(size).max(1) - 1));
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&size.to_le_bytes());
    Ok(())
}

/// An MBR built from the dump, for an image without `<disk>-mbr` (no boot code).
fn mbr_from_table(t: &SfdiskTable, geo: Geometry, file: &str) -> Result<Vec<u8>> {
    let mut s = vec![0u8; 512];
    if let Some(id) = &t.label_id {
        let v =
            u32::from_str_radix(id.trim_start_matches("0x"), 16).map_err(|_| Error::BadText {
                file: file.to_string(),
                line: 0,
                reason: format!("label-id {id:?} is not an MBR disk signature"),
            })?;
        s[440..444].copy_from_slice(&v.to_le_bytes());
    }
    for p in t.partitions.iter().filter(|p| (1..=4).contains(&p.number)) {
        let kind = mbr_type(p, file)?;
        entry(
            &mut s,
            p.number as usize - 1,
            p.bootable,
            kind,
            p.start,
            p.start,
            p.size,
            geo,
            file,
        )?;
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    Ok(s)
}

/// Where each logical partition's EBR lies (sectors), as `sfdisk` places them; `first_link`
/// is the link of a saved first EBR (the second EBR's sector), used when it is consistent.
fn ebr_sectors(
    ext: &SfdiskPartition,
    logical: &[&SfdiskPartition],
    grain: u64,
    first_link: Option<u64>,
    file: &str,
) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = Vec::with_capacity(logical.len());
    for (i, p) in logical.iter().enumerate() {
        let at = if i == 0 {
            ext.start
        } else {
            let prev = logical[i - 1];
            let prev_end = prev.start + prev.size.max(1) - 1;
            match first_link.filter(|l| i == 1 && *l > prev_end && *l < p.start) {
                Some(l) => l,
                None if p.start >= grain && p.start - grain > prev_end => p.start - grain,
                None if p.start >= 1 && p.start - 1 > prev_end => p.start - 1,
                None => {
                    return Err(Error::Unsupported {
                        file: file.to_string(),
                        reason: format!(
                        "{} starts right after {}: there is no sector for its extended boot record",
                        p.device, prev.device
                    ),
                    })
                }
            }
        };
        if at < ext.start || at >= p.start || p.start + p.size > ext.start + ext.size {
            return Err(Error::Unsupported {
                file: file.to_string(),
                reason: format!(
                    "logical partition {} (sectors {}..{}) does not lie inside its extended partition {} (sectors {}..{})",
                    p.device,
                    p.start,
                    p.start + p.size,
                    ext.device,
                    ext.start,
                    ext.start + ext.size
                ),
            });
        }
        out.push(at);
    }
    Ok(out)
}

impl DiskHead {
    /// Rebuilds the boot areas of the saved disk `disk` of `img`. Fails naming the file when
    /// the table dump is missing or does not describe a disk that can be rebuilt.
    pub fn build(img: &CloneImage, disk: &DiskInfo) -> Result<DiskHead> {
        let pt = format!("{}-pt.sf", disk.name);
        let table = disk.table.clone().ok_or_else(|| Error::Missing {
            dir: img.location(),
            file: pt.clone(),
            why: "the partition table of a saved disk",
        })?;
        let ss = table.sector_size;
        let mut notes = Vec::new();
        let read = |n: &Option<String>| -> Result<Option<Vec<u8>>> {
            n.as_deref().map(|n| img.read_boot_file(n)).transpose()
        };
        let mbr = read(&disk.mbr)?;
        let hidden = read(&disk.hidden_data)?;
        let gpt_first = read(&disk.gpt_first)?;
        let gpt_second = read(&disk.gpt_second)?;
        // The disk's size: parted's report, the GPT's backup header, the table's end.
        let parted = format!("{}-pt.parted", disk.name);
        let parted_size = if img.names.contains(&parted) {
            let text = img.read_small(&parted, crate::dir::MAX_TEXT_LEN)?;
            parted_sectors(&String::from_utf8_lossy(&text))
        } else {
            None
        };
        let table_end = table
            .partitions
            .iter()
            .map(|p| p.start + p.size)
            .max()
            .unwrap_or(0);
        let sectors = match parted_size {
            Some(s) => s,
            None => match gpt_first
                .as_deref()
                .and_then(|g| gpt_alternate_lba(g, ss as usize))
            {
                Some(alt) => alt.saturating_add(1),
                None => match table.last_lba {
                    Some(last) if table.is_gpt() => last.saturating_add(34),
                    _ => {
                        notes.push(format!(
                            "the size of disk {} is not recorded in the image ({parted} is missing): \
                             the smallest disk that holds every partition ({} sectors) is assumed",
                            disk.name, table_end
                        ));
                        table_end
                    }
                },
            },
        };
        if sectors < table_end {
            return Err(Error::Unsupported {
                file: pt,
                reason: format!(
                    "the partitions end at sector {table_end}, beyond the disk's {sectors} sectors"
                ),
            });
        }
        let size = bytes(sectors, ss, &pt)?;
        let mut head = DiskHead {
            name: disk.name.clone(),
            size,
            sector_size: ss,
            table,
            notes,
            pieces: Vec::new(),
        };
        match mbr {
            Some(m) => head.put(0, m, disk.mbr.as_deref().unwrap_or_default())?,
            None if !head.table.is_gpt() => {
                let m = mbr_from_table(&head.table, head.geometry(img, disk)?, &pt)?;
                head.notes.push(format!(
                    "{}-mbr is missing: the MBR was rebuilt from {pt} without boot code",
                    disk.name
                ));
                head.put(0, m, &pt)?;
            }
            None => {}
        }
        if let Some(h) = hidden {
            head.put(
                u64::from(ss),
                h,
                disk.hidden_data.as_deref().unwrap_or_default(),
            )?;
        }
        if head.table.is_gpt() {
            let g = gpt_first.ok_or_else(|| Error::Missing {
                dir: img.location(),
                file: format!("{}-gpt-1st", disk.name),
                why: "the GPT of a saved GPT disk",
            })?;
            head.put(0, g.clone(), disk.gpt_first.as_deref().unwrap_or_default())?;
            let g2 = gpt_second.ok_or_else(|| Error::Missing {
                dir: img.location(),
                file: format!("{}-gpt-2nd", disk.name),
                why: "the backup GPT of a saved GPT disk",
            })?;
            let name = disk.gpt_second.as_deref().unwrap_or_default();
            let at = size
                .checked_sub(g2.len() as u64)
                .ok_or_else(|| Error::Unsupported {
                    file: name.to_string(),
                    reason: format!("{} bytes, more than the disk's {size}", g2.len()),
                })?;
            // Clonezilla's `-gpt-2nd` is the disk's last 32 sectors: the backup header and
            // all but the first sector of the backup entry array. The array is the primary
            // one (its CRC is in both headers): laid down again from `-gpt-1st` where the
            // backup header says it lies.
            let entries = backup_entries(&g, &g2, ss as usize);
            head.put(at, g2, name)?;
            if let Some((lba, array)) = entries {
                head.put(bytes(lba, ss, name)?, array, name)?;
            }
        } else {
            head.rebuild_ebrs(img, disk)?;
        }
        Ok(head)
    }

    /// Lays down the EBR chain of an MBR disk's extended partition.
    fn rebuild_ebrs(&mut self, img: &CloneImage, disk: &DiskInfo) -> Result<()> {
        let pt = format!("{}-pt.sf", disk.name);
        let ss = self.sector_size;
        let Some(ext) = self
            .table
            .partitions
            .iter()
            .find(|p| p.number <= 4 && p.is_extended())
            .cloned()
        else {
            return Ok(());
        };
        let mut owned: Vec<SfdiskPartition> = self
            .table
            .partitions
            .iter()
            .filter(|p| p.number > 4)
            .cloned()
            .collect();
        owned.sort_by_key(|p| p.number);
        let logical: Vec<&SfdiskPartition> = owned.iter().collect();
        let saved_name = format!("{}-ebr", ext.device.rsplit('/').next().unwrap_or_default());
        let saved = match disk.ebrs.iter().find(|n| **n == saved_name) {
            Some(n) => Some(img.read_boot_file(n)?),
            None => None,
        };
        if logical.is_empty() {
            if let Some(s) = saved {
                self.put(bytes(ext.start, ss, &pt)?, s, &saved_name)?;
            }
            return Ok(());
        }
        let first_link = saved.as_deref().and_then(|s| {
            let e = s.get(446 + 16..446 + 32)?;
            let rel = u64::from(u32::from_le_bytes(e[8..12].try_into().ok()?));
            (e[4] != 0 && rel != 0).then_some(ext.start + rel)
        });
        let grain = (1u64 << 20) / u64::from(ss).max(1);
        let geo = self.geometry(img, disk)?;
        let at = ebr_sectors(&ext, &logical, grain.max(1), first_link, &pt)?;
        let mut rebuilt = 0usize;
        for (i, p) in logical.iter().enumerate() {
            // The saved first EBR is written as it is when the chain rebuilt here goes on
            // where its link points.
            if let (Some(b), 0) = (&saved, i) {
                if b.len() >= 512 && first_link == at.get(1).copied() {
                    let mut sector = vec![0u8; ss as usize];
                    let n = b.len().min(sector.len());
                    sector[..n].copy_from_slice(&b[..n]);
                    self.put(bytes(at[0], ss, &pt)?, sector, &saved_name)?;
                    continue;
                }
            }
            rebuilt += 1;
            let mut s = vec![0u8; 512];
            let kind = mbr_type(p, &pt)?;
            entry(
                &mut s,
                0,
                p.bootable,
                kind,
                p.start,
                p.start - at[i],
                p.size,
                geo,
                &pt,
            )?;
            if let (Some(next), Some(np)) = (at.get(i + 1), logical.get(i + 1)) {
                entry(
                    &mut s,
                    1,
                    false,
                    0x05,
                    *next,
                    next - ext.start,
                    np.start + np.size - next,
                    geo,
                    &pt,
                )?;
            }
            s[510] = 0x55;
            s[511] = 0xaa;
            let mut sector = vec![0u8; ss as usize];
            sector[..512].copy_from_slice(&s);
            self.put(bytes(at[i], ss, &pt)?, sector, &pt)?;
        }
        if rebuilt > 0 {
            self.notes.push(format!(
                "{rebuilt} extended boot record(s) of disk {} rebuilt from {pt} as sfdisk writes them",
                self.name
            ));
        }
        Ok(())
    }

    /// The CHS geometry of rebuilt entries: `<disk>-chs.sf` when it gives one, else sfdisk's
    /// default.
    fn geometry(&self, img: &CloneImage, disk: &DiskInfo) -> Result<Geometry> {
        let name = format!("{}-chs.sf", disk.name);
        if !img.names.contains(&name) {
            return Ok(Geometry::DEFAULT);
        }
        let text = img.read_small(&name, crate::dir::MAX_TEXT_LEN)?;
        Ok(Geometry::parse(&String::from_utf8_lossy(&text)).unwrap_or(Geometry::DEFAULT))
    }

    fn put(&mut self, offset: u64, data: Vec<u8>, file: &str) -> Result<()> {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(Error::Unsupported {
                file: file.to_string(),
                reason: format!(
                    "{} bytes at byte {offset} pass the end of the {}-byte disk",
                    data.len(),
                    self.size
                ),
            });
        }
        if self.pieces.len() >= MAX_PIECES {
            return Err(Error::Unsupported {
                file: file.to_string(),
                reason: format!("more than {MAX_PIECES} boot areas"),
            });
        }
        if !data.is_empty() {
            self.pieces.push((offset, data));
        }
        Ok(())
    }

    /// Fills `buf` with the disk's bytes from `offset`: the rebuilt areas, zeros elsewhere.
    /// Reads past the disk's end fail.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.size)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} bytes at byte {offset} pass the end of the {}-byte disk",
                        buf.len(),
                        self.size
                    ),
                )
            })?;
        buf.fill(0);
        for (at, data) in &self.pieces {
            let (s, e) = ((*at).max(offset), (at + data.len() as u64).min(end));
            if s < e {
                buf[(s - offset) as usize..(e - offset) as usize]
                    .copy_from_slice(&data[(s - at) as usize..(e - at) as usize]);
            }
        }
        Ok(())
    }
}

/// The first page (4096 bytes) of a Linux swap area of `size` bytes with this UUID and
/// label, as `mkswap` writes it (version 1, no bad pages, magic `SWAPSPACE2` at the page's
/// end): what Clonezilla's restore makes of a swap partition it kept only the UUID and label
/// of. `None` when the area is smaller than two pages.
pub fn swap_header(size: u64, uuid: Option<&str>, label: Option<&str>) -> Option<Vec<u8>> {
    const PAGE: usize = 4096;
    let pages = size / PAGE as u64;
    if pages < 2 {
        return None;
    }
    let mut p = vec![0u8; PAGE];
    p[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    let last = u32::try_from(pages - 1).unwrap_or(u32::MAX);
    p[1028..1032].copy_from_slice(&last.to_le_bytes());
    if let Some(u) = uuid.and_then(parse_uuid) {
        p[1036..1052].copy_from_slice(&u);
    }
    if let Some(l) = label {
        let b = l.as_bytes();
        let n = b.len().min(16);
        p[1052..1052 + n].copy_from_slice(&b[..n]);
    }
    p[PAGE - 10..].copy_from_slice(b"SWAPSPACE2");
    Some(p)
}

/// `0a1b2c3d-1111-2222-3333-444455556666` → its 16 bytes.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(device: &str, number: u32, start: u64, size: u64, kind: &str) -> SfdiskPartition {
        SfdiskPartition {
            device: device.into(),
            number,
            start,
            size,
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn parted_size() {
        let t = "BYT;\nModel: Loopback device (loopback)\nDisk /dev/loop3: 409600s\nSector size (logical/physical): 512B/512B\n";
        assert_eq!(parted_sectors(t), Some(409600));
        assert_eq!(parted_sectors("Disk /dev/sda: 12GB\n"), None);
        assert_eq!(parted_sectors(""), None);
    }

    #[test]
    fn ebrs_as_sfdisk_places_them() {
        // Facts from sfdisk 2.38 (the real tool writes the same for these dumps; the
        // integration test tests/layout.rs compares byte by byte).
        let ext = part("x2", 2, 110000, 400000, "5");
        let l = [
            part("x5", 5, 120000, 50000, "83"),
            part("x6", 6, 180000, 60000, "83"),
            part("x7", 7, 250001, 30000, "83"),
        ];
        let refs: Vec<&SfdiskPartition> = l.iter().collect();
        assert_eq!(
            ebr_sectors(&ext, &refs, 2048, None, "t").unwrap(),
            vec![110000, 177952, 247953]
        );
        let tight = [
            part("x5", 5, 110001, 50000, "83"),
            part("x6", 6, 160002, 60000, "7"),
            part("x7", 7, 221000, 30000, "83"),
        ];
        let refs: Vec<&SfdiskPartition> = tight.iter().collect();
        assert_eq!(
            ebr_sectors(&ext, &refs, 2048, None, "t").unwrap(),
            vec![110000, 160001, 220999]
        );
        // No room at all: refused, naming the partition.
        let none = [
            part("x5", 5, 110001, 50000, "83"),
            part("x6", 6, 160001, 100, "83"),
        ];
        let refs: Vec<&SfdiskPartition> = none.iter().collect();
        let e = ebr_sectors(&ext, &refs, 2048, None, "t").unwrap_err();
        assert!(e.to_string().contains("x6"), "{e}");
    }

    #[test]
    fn chs_as_sfdisk_writes_it() {
        // Entries sfdisk 2.38 wrote for a 64 MiB image file (see ebrs_as_sfdisk_places_them).
        let g = Geometry::DEFAULT;
        assert_eq!(g.chs(75776), [0xb6, 0x33, 0x04]);
        assert_eq!(g.chs(86015), [0x5a, 0x15, 0x05]);
        assert_eq!(g.chs(73728), [0x96, 0x13, 0x04]);
        assert_eq!(g.chs(2048), [0x20, 0x21, 0x00]);
        assert_eq!(g.chs(1 << 30), [0xfe, 0xff, 0xff]);
        assert_eq!(
            Geometry::parse("cylinders=8\nheads=64\nsectors=32\n"),
            Some(Geometry {
                heads: 64,
                sectors: 32
            })
        );
        assert_eq!(Geometry::parse("heads=0\nsectors=32"), None);
    }

    #[test]
    fn swap_header_fields() {
        let h = swap_header(
            64 << 20,
            Some("0a1b2c3d-1111-2222-3333-444455556666"),
            Some("sw"),
        )
        .unwrap();
        assert_eq!(&h[4086..], b"SWAPSPACE2");
        assert_eq!(u32::from_le_bytes(h[1024..1028].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(h[1028..1032].try_into().unwrap()),
            (64 << 20) / 4096 - 1
        );
        assert_eq!(h[1036], 0x0a);
        assert_eq!(h[1051], 0x66);
        assert_eq!(&h[1052..1055], b"sw\0");
        assert!(swap_header(4096, None, None).is_none());
    }
}
