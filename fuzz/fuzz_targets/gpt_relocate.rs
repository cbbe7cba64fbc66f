//! Fuzzes the relocation of the backup GPT after a restore onto a larger disk
//! (`relocate_gpt`). Input: one control byte (bit 0: 4096-byte sectors, else 512; bit 1: the
//! next 8 bytes are the new disk size in bytes, else the next 4 are a count of sectors added
//! to the input disk), then the disk's first bytes; the rest of the new disk reads as zeros.
//!
//! The disk is a sparse in-memory device, so a new size of terabytes costs no memory: only
//! written sectors are kept (the entry array is capped at 1 MiB by the parser). Nothing may
//! panic or write outside the new disk; when the relocation succeeds, the disk must read as a
//! GPT whose backup header is valid and at the last LBA, with the partitions the primary had
//! before, and a second relocation to the same size must change nothing.
//!
//! Each input whose disk holds a GPT header at LBA 1 is also run a second time with that
//! header's entry-array and header CRCs recomputed, so that mutated fields reach the code
//! behind the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_fs::ReadAt;
use lifeboat_parttable::{read_layout, relocate_gpt, TableKind};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

const BLOCK: u64 = 512;

/// A disk of `len` bytes: `base` at its start, zeros after it, written 512-byte blocks in
/// `written`.
#[derive(Clone)]
struct Sparse {
    base: Vec<u8>,
    written: BTreeMap<u64, Vec<u8>>,
    len: u64,
    pos: u64,
}

impl Sparse {
    fn block(&self, n: u64) -> Vec<u8> {
        if let Some(b) = self.written.get(&n) {
            return b.clone();
        }
        let mut b = vec![0u8; BLOCK as usize];
        let start = n * BLOCK;
        if start < self.base.len() as u64 {
            let s = start as usize;
            let e = (s + BLOCK as usize).min(self.base.len());
            b[..e - s].copy_from_slice(&self.base[s..e]);
        }
        b
    }

    fn read_into(&self, buf: &mut [u8], offset: u64) -> usize {
        let n = (buf.len() as u64).min(self.len.saturating_sub(offset)) as usize;
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let block = self.block(at / BLOCK);
            let inner = (at % BLOCK) as usize;
            let take = (BLOCK as usize - inner).min(n - done);
            buf[done..done + take].copy_from_slice(&block[inner..inner + take]);
            done += take;
        }
        n
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_into(buf, self.pos);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Sparse {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos.checked_add(buf.len() as u64);
        assert!(
            end.is_some_and(|e| e <= self.len),
            "write of {} bytes at {} past the end of a {}-byte disk",
            buf.len(),
            self.pos,
            self.len
        );
        let mut done = 0;
        while done < buf.len() {
            let at = self.pos + done as u64;
            let mut block = self.block(at / BLOCK);
            let inner = (at % BLOCK) as usize;
            let take = (BLOCK as usize - inner).min(buf.len() - done);
            block[inner..inner + take].copy_from_slice(&buf[done..done + take]);
            self.written.insert(at / BLOCK, block);
            done += take;
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

impl ReadAt for Sparse {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.read_into(buf, offset) == buf.len() {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Recomputes the entry-array and header CRCs of the GPT header at LBA 1, if there is one.
fn fix_crcs(disk: &mut [u8], ss: usize) -> bool {
    if disk.len() < 2 * ss || &disk[ss..ss + 8] != b"EFI PART" {
        return false;
    }
    let part_start = u64::from_le_bytes(disk[ss + 72..ss + 80].try_into().unwrap());
    let array_len = u64::from(le32(disk, ss + 80)) * u64::from(le32(disk, ss + 84));
    if array_len <= 1 << 20 {
        if let Some(entries) = part_start
            .checked_mul(ss as u64)
            .and_then(|a| usize::try_from(a).ok())
            .and_then(|a| disk.get(a..a.checked_add(array_len as usize)?))
        {
            let crc = crc32fast::hash(entries);
            disk[ss + 88..ss + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let hsize = (le32(disk, ss + 12) as usize).clamp(92, ss);
    disk[ss + 16..ss + 20].fill(0);
    let crc = crc32fast::hash(&disk[ss..ss + hsize]);
    disk[ss + 16..ss + 20].copy_from_slice(&crc.to_le_bytes());
    true
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let ss: u32 = if control & 1 != 0 { 4096 } else { 512 };
    let (new_size, disk) = if control & 2 != 0 {
        let Some((size, disk)) = rest.split_first_chunk::<8>() else {
            return;
        };
        (u64::from_le_bytes(*size), disk)
    } else {
        let Some((extra, disk)) = rest.split_first_chunk::<4>() else {
            return;
        };
        let sectors = u64::from(u32::from_le_bytes(*extra));
        let whole = disk.len() as u64 / u64::from(ss) * u64::from(ss);
        (whole + sectors * u64::from(ss), disk)
    };
    check(disk.to_vec(), ss, new_size);
    let mut fixed = disk.to_vec();
    if fix_crcs(&mut fixed, ss as usize) && fixed != disk {
        check(fixed, ss, new_size);
    }
});

/// Relocates the GPT of `disk` to a disk of `new_size` bytes and checks the result.
fn check(disk: Vec<u8>, ss: u32, new_size: u64) {
    let before = Sparse {
        len: disk.len() as u64,
        base: disk,
        written: BTreeMap::new(),
        pos: 0,
    };
    let old = read_layout(&before, ss).ok();
    let mut dev = Sparse {
        len: new_size,
        ..before
    };
    if relocate_gpt(&mut dev, ss, new_size).is_err() {
        return;
    }
    let after = read_layout(&dev, ss);
    let old_gpt = old.filter(|l| l.kind == TableKind::Gpt);
    if old_gpt.is_some() {
        assert!(
            after.is_ok(),
            "a relocated GPT does not read back: {after:?}"
        );
    }
    if let Some(after) = after.ok().filter(|l| l.kind == TableKind::Gpt) {
        assert!(
            !after.warnings.iter().any(|w| w.contains("GPT backup")),
            "backup not valid after relocation: {:?}",
            after.warnings
        );
        if let Some(old) = old_gpt {
            if !old
                .warnings
                .iter()
                .any(|w| w.contains("primary GPT header"))
            {
                assert_eq!(old.partitions, after.partitions, "partitions changed");
            }
        }
    }
    let once = dev.clone();
    relocate_gpt(&mut dev, ss, new_size).expect("a relocated GPT relocates again");
    for n in once.written.keys().chain(dev.written.keys()) {
        assert!(
            once.block(*n) == dev.block(*n),
            "a second relocation changed block {n}"
        );
    }
}
