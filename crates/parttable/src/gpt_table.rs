//! GPT: header and entry array validation (own code: CRCs, bounds, sizes), field decoding by
//! the `gpt` crate on validated bytes only, and relocation of the backup table.

use crate::source::{fits, le32, le64, read, write, SeekSource, Source};
use crate::types::gpt_type_name;
use crate::{check_sector_size, PartError, Partition, PartitionKind};
use gpt::disk::LogicalBlockSize;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

/// Largest entry array accepted (8192 entries of 128 bytes).
const MAX_ENTRY_BYTES: u64 = 1 << 20;
const ENTRY_SIZE: u32 = 128;
const HEADER_SIZE: u32 = 92;

/// A validated GPT header with its entry array.
pub(crate) struct Table {
    /// LBA the header was read from.
    pub(crate) lba: u64,
    pub(crate) header: gpt::header::Header,
    /// The whole header sector as read.
    pub(crate) sector: Vec<u8>,
    /// The entry array as read (`num_parts * 128` bytes).
    pub(crate) entries: Vec<u8>,
    pub(crate) partitions: Vec<Partition>,
    pub(crate) warnings: Vec<String>,
}

impl Table {
    /// Sectors the entry array occupies.
    pub(crate) fn entry_sectors(&self, ss: u64) -> u64 {
        (self.entries.len() as u64).div_ceil(ss)
    }
}

fn lb_size(ss: u64) -> LogicalBlockSize {
    if ss == 4096 {
        LogicalBlockSize::Lb4096
    } else {
        LogicalBlockSize::Lb512
    }
}

/// CRC32 of a header's first `size` bytes with its CRC field taken as zero.
fn header_crc(sector: &[u8], size: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&sector[..16]);
    h.update(&[0; 4]);
    h.update(&sector[20..size]);
    h.finalize()
}

/// A read-only view that places `data` at byte `base` of an otherwise empty device, so the
/// `gpt` crate can decode an entry array that was read (and checked) here.
struct Window {
    base: u64,
    data: Vec<u8>,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rel = self
            .pos
            .checked_sub(self.base)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "read before the window"))?;
        let rel = usize::try_from(rel)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let n = buf.len().min(self.data.len() - rel);
        buf[..n].copy_from_slice(&self.data[rel..rel + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let end = self.base + self.data.len() as u64;
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => end.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

/// Reads and validates the GPT header at `lba` and its entry array. The outer error is an I/O
/// failure; the inner one says why the bytes are not a valid GPT header.
pub(crate) fn parse_at(
    src: &mut dyn Source,
    ss: u64,
    lba: u64,
) -> Result<Result<Table, String>, PartError> {
    let Some(offset) = lba.checked_mul(ss).filter(|o| fits(src, *o, ss)) else {
        return Ok(Err(format!("LBA {lba} is past the end of the disk")));
    };
    let sector = read(src, offset, ss as usize, "GPT header")?;
    if &sector[..8] != b"EFI PART" {
        return Ok(Err("no \"EFI PART\" signature".to_string()));
    }
    let hsize = le32(&sector, 12);
    if hsize < HEADER_SIZE || u64::from(hsize) > ss {
        return Ok(Err(format!("header size {hsize} is out of range")));
    }
    if header_crc(&sector, hsize as usize) != le32(&sector, 16) {
        return Ok(Err("header CRC mismatch".to_string()));
    }
    if hsize != HEADER_SIZE {
        return Ok(Err(format!(
            "header size {hsize} is not supported (only {HEADER_SIZE})"
        )));
    }
    let my_lba = le64(&sector, 24);
    if my_lba != lba {
        return Ok(Err(format!("the header says it is at LBA {my_lba}")));
    }
    let first_usable = le64(&sector, 40);
    let last_usable = le64(&sector, 48);
    if first_usable > last_usable.saturating_add(1) {
        return Ok(Err(format!(
            "first usable LBA {first_usable} is after last usable LBA {last_usable}"
        )));
    }
    let part_start = le64(&sector, 72);
    let num_parts = le32(&sector, 80);
    let entry_size = le32(&sector, 84);
    if entry_size != ENTRY_SIZE {
        return Ok(Err(format!(
            "partition entry size {entry_size} is not supported (only {ENTRY_SIZE})"
        )));
    }
    let array_len = u64::from(num_parts) * u64::from(ENTRY_SIZE);
    if array_len > MAX_ENTRY_BYTES {
        return Ok(Err(format!("{num_parts} partition entries are too many")));
    }
    let array_sectors = array_len.div_ceil(ss);
    let Some(array_off) = part_start
        .checked_mul(ss)
        .filter(|o| fits(src, *o, array_len))
    else {
        return Ok(Err(format!(
            "the entry array at LBA {part_start} is past the end of the disk"
        )));
    };
    let array_end = part_start + array_sectors;
    if part_start == 0 || (part_start <= lba && lba < array_end) {
        return Ok(Err(format!(
            "the entry array at LBA {part_start} overlaps the MBR or the header"
        )));
    }
    if first_usable <= last_usable && part_start <= last_usable && array_end > first_usable {
        return Ok(Err(format!(
            "the entry array (LBA {part_start}..{array_end}) overlaps the usable area"
        )));
    }
    let entries = read(src, array_off, array_len as usize, "GPT partition entries")?;
    if crc32fast::hash(&entries) != le32(&sector, 88) {
        return Ok(Err("partition entry array CRC mismatch".to_string()));
    }

    // Decode with the gpt crate, on bytes that passed every check above.
    let mut two = vec![0u8; ss as usize];
    two.extend_from_slice(&sector);
    let header =
        match gpt::header::read_header_from_arbitrary_device(&mut Cursor::new(two), lb_size(ss)) {
            Ok(h) => h,
            Err(e) => return Ok(Err(format!("header rejected: {e}"))),
        };
    let mut window = Window {
        base: array_off,
        data: entries.clone(),
        pos: 0,
    };
    let decoded = match gpt::partition::file_read_partitions(&mut window, &header, lb_size(ss)) {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("partition entries rejected: {e}"))),
    };
    let mut warnings = Vec::new();
    let mut partitions = Vec::new();
    for (number, p) in decoded {
        if p.part_type_guid.guid.is_nil() {
            continue;
        }
        let bytes = p.first_lba.checked_mul(ss).zip(
            p.last_lba
                .checked_sub(p.first_lba)
                .and_then(|n| n.checked_add(1)?.checked_mul(ss)),
        );
        let Some((start, size)) = bytes.filter(|(s, n)| s.checked_add(*n).is_some()) else {
            warnings.push(format!(
                "GPT entry {number} has an impossible range LBA {}..={}; ignored",
                p.first_lba, p.last_lba
            ));
            continue;
        };
        if p.first_lba < first_usable || p.last_lba > last_usable {
            warnings.push(format!(
                "partition {number} (LBA {}..={}) is outside the usable area (LBA \
                 {first_usable}..={last_usable})",
                p.first_lba, p.last_lba
            ));
        }
        let type_code = p.part_type_guid.guid.to_string().to_uppercase();
        partitions.push(Partition {
            number,
            start,
            size,
            kind: PartitionKind::Gpt,
            type_name: gpt_type_name(&type_code).to_string(),
            type_code,
            name: p.name.clone(),
            guid: Some(p.part_guid.to_string().to_uppercase()),
            bootable: p.flags & 4 != 0,
        });
    }
    Ok(Ok(Table {
        lba,
        header,
        sector,
        entries,
        partitions,
        warnings,
    }))
}

/// Sets a little-endian u64 field of a header sector.
fn put64(sector: &mut [u8], at: usize, v: u64) {
    sector[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the header CRC of a header sector.
fn seal(sector: &mut [u8]) {
    let size = le32(sector, 12) as usize;
    let crc = header_crc(sector, size);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// After a GPT disk was restored onto a larger disk, moves the backup entry array and backup
/// header to the end of the new disk, like `sgdisk -e`: the primary header gets the new
/// alternate and last usable LBAs, every CRC is recomputed, the protective MBR's 0xEE entry
/// is resized to the new disk (at most 0xFFFFFFFF sectors), and the stale old backup header
/// sector is zeroed. Relocating again to the same size changes nothing. `new_disk_size` is
/// the size of `dev` in bytes.
///
/// Works for a disk of the same or a smaller size too, as long as every partition still fits.
pub fn relocate_gpt<D: Read + Write + Seek>(
    dev: &mut D,
    sector_size: u32,
    new_disk_size: u64,
) -> Result<(), PartError> {
    let ss = check_sector_size(sector_size)?;
    let total = new_disk_size / ss;
    let primary = {
        let mut src = SeekSource {
            dev: &mut *dev,
            size: total * ss,
        };
        parse_at(&mut src, ss, 1)?
    };
    let primary = primary.map_err(|reason| PartError::NoGpt { offset: ss, reason })?;
    let h = &primary.header;
    let esec = primary.entry_sectors(ss);
    let max_last = primary
        .partitions
        .iter()
        .map(|p| (p.start + p.size) / ss - 1)
        .max()
        .unwrap_or(0)
        .max(h.first_usable.saturating_sub(1));
    // Layout needed: partitions, then entries (esec sectors), then the header sector.
    let needed = max_last
        .saturating_add(esec + 2)
        .saturating_mul(ss)
        .max((2 * esec + 4) * ss);
    if total * ss < needed {
        return Err(PartError::DiskTooSmall {
            disk_size: new_disk_size,
            needed,
        });
    }
    let new_alt = total - 1;
    let new_entries = new_alt - esec;
    let new_last_usable = new_entries - 1;
    let old_alt = h.backup_lba;

    let mut entries = primary.entries.clone();
    entries.resize((esec * ss) as usize, 0);
    write(
        dev,
        new_entries * ss,
        &entries,
        "GPT backup partition entries",
    )?;

    let mut backup = vec![0u8; ss as usize];
    backup[..HEADER_SIZE as usize].copy_from_slice(&primary.sector[..HEADER_SIZE as usize]);
    put64(&mut backup, 24, new_alt);
    put64(&mut backup, 32, 1);
    put64(&mut backup, 48, new_last_usable);
    put64(&mut backup, 72, new_entries);
    seal(&mut backup);
    write(dev, new_alt * ss, &backup, "GPT backup header")?;

    let mut head = primary.sector.clone();
    put64(&mut head, 32, new_alt);
    put64(&mut head, 48, new_last_usable);
    seal(&mut head);
    write(dev, ss, &head, "GPT primary header")?;

    // Protective MBR: the 0xEE entry is resized to the new disk when it covered the old disk
    // (up to the old backup header), reaches the new disk's last sector already, or runs past
    // the new disk's end (a backup LBA that was garbage says nothing of the old disk). The
    // second and third rules make a second relocation to the same size change nothing.
    let covers = |start: u64, size: u64, alt: u64| {
        size == 0xffff_ffff || start + size >= alt.min(0xffff_ffff)
    };
    let mbr = {
        let mut src = SeekSource {
            dev: &mut *dev,
            size: total * ss,
        };
        read(&mut src, 0, 512, "protective MBR")?
    };
    if mbr[510..512] == [0x55, 0xaa] {
        let mut mbr = mbr;
        let mut changed = false;
        for i in 0..4 {
            let at = 446 + 16 * i;
            if mbr[at + 4] != 0xee {
                continue;
            }
            let start = u64::from(le32(&mbr, at + 8));
            let size = u64::from(le32(&mbr, at + 12));
            let resize = covers(start, size, old_alt)
                || covers(start, size, new_alt)
                || start + size > total;
            if start >= 1 && start < total && resize {
                let new = (total - start).min(0xffff_ffff) as u32;
                mbr[at + 12..at + 16].copy_from_slice(&new.to_le_bytes());
                changed = true;
            }
        }
        if changed {
            write(dev, 0, &mbr, "protective MBR")?;
        }
    }

    // Zero the old backup header when it is a GPT header outside every partition.
    let inside_partition = primary
        .partitions
        .iter()
        .any(|p| (p.start / ss..(p.start + p.size) / ss).contains(&old_alt));
    if old_alt != new_alt && old_alt > 1 && old_alt < new_entries && !inside_partition {
        let old = {
            let mut src = SeekSource {
                dev: &mut *dev,
                size: total * ss,
            };
            read(&mut src, old_alt * ss, ss as usize, "old GPT backup header")?
        };
        if &old[..8] == b"EFI PART" {
            write(
                dev,
                old_alt * ss,
                &vec![0u8; ss as usize],
                "old GPT backup header",
            )?;
        }
    }
    dev.flush().map_err(|source| PartError::Write {
        what: "GPT (flush)".to_string(),
        offset: 0,
        source,
    })
}
