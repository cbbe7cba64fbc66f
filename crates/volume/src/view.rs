//! A logical volume read through its areas on its members.

use crate::Area;
use lifeboat_fs::{ReadAt, SharedVolume};
use std::io;

/// A logical volume as one readable volume: every read is cut at area and chunk boundaries
/// and sent to the member that holds the bytes. Bytes that no area covers read as an error
/// (they cannot be known), so a scanner refuses rather than reads zeros.
pub struct MappedVolume {
    len: u64,
    /// Areas with the member holding each, sorted by `lv_start` (the stripes of one segment
    /// share it).
    areas: Vec<(Area, SharedVolume)>,
}

impl std::fmt::Debug for MappedVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedVolume")
            .field("len", &self.len)
            .field("areas", &self.areas.iter().map(|a| a.0).collect::<Vec<_>>())
            .finish()
    }
}

impl MappedVolume {
    /// A volume of `len` bytes made of `areas`, each read from the member given with it.
    pub fn new(len: u64, mut areas: Vec<(Area, SharedVolume)>) -> Self {
        areas.sort_by_key(|(a, _)| (a.lv_start, a.stripe));
        MappedVolume { len, areas }
    }

    /// True when every byte of `[0, len)` lies in some area and every area is valid and lies
    /// within its member.
    pub fn is_complete(&self) -> bool {
        let mut covered = 0u64;
        for (a, m) in &self.areas {
            if !a.is_valid() || a.member_end() > m.len() {
                return false;
            }
            if a.lv_start > covered {
                return false;
            }
            covered = covered.max(a.lv_start + a.lv_len);
        }
        covered >= self.len
    }

    /// The area holding logical byte `offset`, and how many bytes from there lie in the same
    /// area contiguously.
    fn locate(&self, offset: u64) -> Option<(&Area, &SharedVolume, u64, u64)> {
        let i = self.areas.partition_point(|(a, _)| a.lv_start <= offset);
        // Stripes of one segment share lv_start: look at every area starting at or before.
        self.areas[..i].iter().rev().find_map(|(a, m)| {
            if offset >= a.lv_start + a.lv_len {
                return None;
            }
            let run_end = if a.stripes <= 1 {
                a.lv_start + a.lv_len
            } else {
                let rel = offset - a.lv_start;
                if (rel / a.chunk) % u64::from(a.stripes) != u64::from(a.stripe) {
                    return None;
                }
                a.lv_start + (rel / a.chunk + 1) * a.chunk
            };
            let (mo, _) = a.map(offset, 1)?;
            Some((a, m, mo, run_end - offset))
        })
    }
}

impl ReadAt for MappedVolume {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} beyond the logical volume's {} bytes",
                    buf.len(),
                    self.len
                ),
            ));
        }
        while !buf.is_empty() {
            let (_, member, member_offset, run) = self.locate(offset).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("byte {offset} of the logical volume lies on no member"),
                )
            })?;
            let n = (run.min(buf.len() as u64)) as usize;
            let (head, tail) = buf.split_at_mut(n);
            member.read_exact_at(head, member_offset)?;
            buf = tail;
            offset += n as u64;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn striped_reads_come_back_in_logical_order() {
        // Two members, 2 stripes of 4-byte chunks: logical bytes 0..32 are 0,1,2,...
        let logical: Vec<u8> = (0..32).collect();
        let mut m0 = vec![0xEEu8; 20];
        let mut m1 = vec![0xEEu8; 20];
        for (i, b) in logical.iter().enumerate() {
            let chunk = i / 4;
            let row = chunk / 2;
            let at = 2 + row * 4 + i % 4;
            if chunk % 2 == 0 {
                m0[at] = *b;
            } else {
                m1[at] = *b;
            }
        }
        let area = |stripe| Area {
            lv: 0,
            lv_start: 0,
            lv_len: 32,
            stripes: 2,
            stripe,
            chunk: 4,
            member_offset: 2,
        };
        let v = MappedVolume::new(
            32,
            vec![
                (area(1), Arc::new(m1) as SharedVolume),
                (area(0), Arc::new(m0) as SharedVolume),
            ],
        );
        assert!(v.is_complete());
        let mut out = vec![0u8; 29];
        v.read_exact_at(&mut out, 3).unwrap();
        assert_eq!(out, logical[3..32]);
        assert!(v.read_exact_at(&mut out, 4).is_err());
    }

    #[test]
    fn holes_are_errors_not_zeros() {
        let m: SharedVolume = Arc::new(vec![1u8; 100]);
        let v = MappedVolume::new(
            100,
            vec![
                (Area::linear(0, 0, 40, 0), Arc::clone(&m)),
                (Area::linear(0, 50, 50, 50), m),
            ],
        );
        assert!(!v.is_complete());
        let mut b = [0u8; 20];
        assert!(v.read_exact_at(&mut b, 30).is_err());
        v.read_exact_at(&mut b, 50).unwrap();
    }
}
