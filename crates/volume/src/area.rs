//! Where the bytes of a logical volume lie on a member: linear and striped areas.

/// One area of a logical volume on one member: the part of the segment
/// `[lv_start, lv_start + lv_len)` of logical volume `lv` that this member holds.
///
/// With `stripes == 1` (linear, or an md RAID1 member's data) the whole segment lies here,
/// from `member_offset` on. With `stripes > 1` the segment is cut into chunks of `chunk`
/// bytes dealt round-robin to the stripes; this area holds stripe `stripe`, whose chunks lie
/// one after another from `member_offset` on (the layout of LVM2 `striped` segments and of
/// RAID0). For stripes, `lv_len` is a whole number of rows (`stripes × chunk` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// Index of the logical volume (into [`crate::MemberLayout::volumes`]).
    pub lv: usize,
    /// First byte of the segment in the logical volume.
    pub lv_start: u64,
    /// Bytes of the segment in the logical volume (all stripes).
    pub lv_len: u64,
    /// Number of stripes of the segment (1: linear).
    pub stripes: u32,
    /// The stripe this area holds (`0..stripes`).
    pub stripe: u32,
    /// Bytes of one stripe chunk (ignored when `stripes == 1`).
    pub chunk: u64,
    /// Where the area starts on the member, in bytes.
    pub member_offset: u64,
}

impl Area {
    /// A linear area: `len` bytes from `lv_start` of the volume at `member_offset`.
    pub fn linear(lv: usize, lv_start: u64, len: u64, member_offset: u64) -> Self {
        Area {
            lv,
            lv_start,
            lv_len: len,
            stripes: 1,
            stripe: 0,
            chunk: len.max(1),
            member_offset,
        }
    }

    /// True when the fields describe a mapping this module can follow: at least one
    /// stripe, `stripe < stripes`, a non-zero chunk dividing the segment into whole rows, and
    /// no arithmetic overflow.
    pub fn is_valid(&self) -> bool {
        if self.stripes == 0 || self.stripe >= self.stripes {
            return false;
        }
        if self.lv_start.checked_add(self.lv_len).is_none()
            || self.member_offset.checked_add(self.member_len()).is_none()
        {
            return false;
        }
        if self.stripes == 1 {
            return true;
        }
        let row = match self.chunk.checked_mul(u64::from(self.stripes)) {
            Some(r) if self.chunk > 0 => r,
            _ => return false,
        };
        self.lv_len.is_multiple_of(row)
    }

    /// Bytes of the area on the member.
    pub fn member_len(&self) -> u64 {
        if self.stripes <= 1 {
            self.lv_len
        } else {
            self.lv_len / u64::from(self.stripes)
        }
    }

    /// One past the area's last byte on the member.
    pub fn member_end(&self) -> u64 {
        self.member_offset.saturating_add(self.member_len())
    }

    /// The bytes of the logical-volume range `[start, start + len)` that lie in this area, as
    /// one member range `(offset, len)`: the chunks of one stripe that a contiguous range
    /// touches are contiguous on the member. `None` when none lie here.
    pub fn map(&self, start: u64, len: u64) -> Option<(u64, u64)> {
        let lo = start.max(self.lv_start);
        let hi = start.saturating_add(len).min(self.lv_start + self.lv_len);
        if lo >= hi {
            return None;
        }
        let (a, b) = (lo - self.lv_start, hi - self.lv_start);
        if self.stripes <= 1 {
            return Some((self.member_offset + a, b - a));
        }
        let (s, k, c) = (u64::from(self.stripes), u64::from(self.stripe), self.chunk);
        // Rows whose chunk of this stripe meets [a, b).
        let first_chunk = a / c;
        let r0 = if first_chunk > k {
            (first_chunk - k).div_ceil(s)
        } else {
            0
        };
        let last_chunk = (b - 1) / c;
        if last_chunk < k {
            return None;
        }
        let r1 = (last_chunk - k) / s;
        if r0 > r1 {
            return None;
        }
        let chunk_start = |r: u64| (r * s + k) * c;
        let off0 = a.saturating_sub(chunk_start(r0));
        let end1 = (b - chunk_start(r1)).min(c);
        let m0 = r0 * c + off0;
        let m1 = r1 * c + end1;
        Some((self.member_offset + m0, m1 - m0))
    }

    /// The logical-volume byte that member byte `offset` of this area holds (`None` outside
    /// the area).
    pub fn lv_offset(&self, offset: u64) -> Option<u64> {
        if offset < self.member_offset || offset >= self.member_end() {
            return None;
        }
        let m = offset - self.member_offset;
        if self.stripes <= 1 {
            return Some(self.lv_start + m);
        }
        let (s, k, c) = (u64::from(self.stripes), u64::from(self.stripe), self.chunk);
        Some(self.lv_start + ((m / c) * s + k) * c + m % c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn striped(stripes: u32, stripe: u32, chunk: u64, rows: u64) -> Area {
        Area {
            lv: 0,
            lv_start: 1 << 20,
            lv_len: rows * chunk * u64::from(stripes),
            stripes,
            stripe,
            chunk,
            member_offset: 4096,
        }
    }

    #[test]
    fn linear_maps_by_offset() {
        let a = Area::linear(0, 100, 50, 1000);
        assert_eq!(a.map(0, 120), Some((1000, 20)));
        assert_eq!(a.map(140, 100), Some((1040, 10)));
        assert_eq!(a.map(150, 10), None);
        assert_eq!(a.lv_offset(1049), Some(149));
    }

    #[test]
    fn a_range_over_several_rows_is_one_member_run() {
        // 3 stripes of 4-byte chunks; stripe 1 holds LV bytes 4..8, 16..20, 28..32, ...
        let a = Area {
            lv_start: 0,
            member_offset: 0,
            ..striped(3, 1, 4, 4)
        };
        assert_eq!(a.map(5, 20), Some((1, 7))); // 5..8 and 16..20
        assert_eq!(a.map(0, 4), None);
        assert_eq!(a.map(8, 8), None);
        assert_eq!(a.map(0, 48), Some((0, 16)));
    }

    proptest! {
        /// Every byte of a mapped range maps back to the LV byte it came from, and every LV
        /// byte of the range that belongs to this stripe is inside the mapped run.
        #[test]
        fn map_and_inverse_agree(
            stripes in 1u32..6, chunk_pow in 0u32..6, rows in 1u64..8,
            start in 0u64..4096, len in 0u64..4096, pick in 0u32..6,
        ) {
            let chunk = 1u64 << chunk_pow;
            let a = striped(stripes, pick % stripes, chunk, rows);
            prop_assert!(a.is_valid());
            let start = a.lv_start.saturating_sub(64) + start % (a.lv_len + 128);
            let mapped = a.map(start, len);
            let mut expect = Vec::new();
            for m in a.member_offset..a.member_end() {
                let l = a.lv_offset(m).unwrap();
                prop_assert!(l >= a.lv_start && l < a.lv_start + a.lv_len);
                if l >= start && l < start + len {
                    expect.push(m);
                }
            }
            match mapped {
                None => prop_assert!(expect.is_empty()),
                Some((off, n)) => {
                    prop_assert_eq!(expect.first().copied(), Some(off));
                    prop_assert_eq!(expect.len() as u64, n);
                    prop_assert_eq!(*expect.last().unwrap(), off + n - 1);
                }
            }
        }
    }
}
