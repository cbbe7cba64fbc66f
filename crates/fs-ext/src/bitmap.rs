//! Block (cluster) bitmaps: bit `i` is bit `i % 8` of byte `i / 8` (least significant bit
//! first); a set bit means the cluster is in use.
//!
//! All functions take the number of meaningful bits, so the padding bits past the end of a
//! partial last group (which mke2fs sets) are ignored.

/// Number of set bits among the first `nbits` bits of `bits` (bits past the slice count as
/// clear).
pub fn count_set(bits: &[u8], nbits: u64) -> u64 {
    let nbits = nbits.min(bits.len() as u64 * 8);
    let full = (nbits / 8) as usize;
    let mut n: u64 = bits[..full].iter().map(|b| u64::from(b.count_ones())).sum();
    let rest = nbits % 8;
    if rest != 0 {
        n += u64::from((bits[full] & ((1u8 << rest) - 1)).count_ones());
    }
    n
}

#[cfg(test)]
fn test(bits: &[u8], i: u64) -> bool {
    bits[(i / 8) as usize] & (1 << (i % 8)) != 0
}

/// Bits `64 * wi .. 64 * wi + 64` as a word (bits past the slice read as clear).
fn load_word(bits: &[u8], wi: usize) -> u64 {
    let s = wi * 8;
    let e = (s + 8).min(bits.len());
    let mut b = [0u8; 8];
    b[..e - s].copy_from_slice(&bits[s..e]);
    u64::from_le_bytes(b)
}

/// The first bit at or after `from` (and before `nbits`, which must not pass the slice)
/// whose value is `set`; `nbits` when there is none.
fn find(bits: &[u8], nbits: u64, from: u64, set: bool) -> u64 {
    let mut i = from;
    while i < nbits {
        let wi = (i / 64) as usize;
        let mut w = load_word(bits, wi);
        if !set {
            w = !w;
        }
        w &= !0u64 << (i % 64);
        if w != 0 {
            return (wi as u64 * 64 + u64::from(w.trailing_zeros())).min(nbits);
        }
        i = (wi as u64 + 1) * 64;
    }
    nbits
}

/// The first run `[start, end)` of set bits with `start >= from`, among the first `nbits`
/// bits.
pub fn next_run(bits: &[u8], nbits: u64, from: u64) -> Option<(u64, u64)> {
    let nbits = nbits.min(bits.len() as u64 * 8);
    let start = find(bits, nbits, from, true);
    if start >= nbits {
        return None;
    }
    Some((start, find(bits, nbits, start, false)))
}

/// Sets bits `[start, end)`, clipped to the slice.
pub fn set_range(bits: &mut [u8], start: u64, end: u64) {
    let end = end.min(bits.len() as u64 * 8);
    let mut i = start;
    while i < end {
        if i % 8 == 0 && end - i >= 8 {
            bits[(i / 8) as usize] = 0xFF;
            i += 8;
        } else {
            bits[(i / 8) as usize] |= 1 << (i % 8);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn runs_and_counts_match_a_naive_walk(
            bits in proptest::collection::vec(any::<u8>(), 0..64),
            nbits_frac in 0u64..=100,
        ) {
            let nbits = bits.len() as u64 * 8 * nbits_frac / 100;
            let naive: Vec<bool> = (0..nbits).map(|i| test(&bits, i)).collect();
            prop_assert_eq!(count_set(&bits, nbits), naive.iter().filter(|&&b| b).count() as u64);
            let mut got = vec![false; nbits as usize];
            let mut from = 0;
            while let Some((s, e)) = next_run(&bits, nbits, from) {
                prop_assert!(s >= from && e > s && e <= nbits);
                for i in s..e { got[i as usize] = true; }
                from = e;
            }
            prop_assert_eq!(got, naive);
        }

        #[test]
        fn set_range_sets_exactly(start in 0u64..300, len in 0u64..300) {
            let mut b = vec![0u8; 32];
            set_range(&mut b, start, start + len);
            for i in 0..256u64 {
                prop_assert_eq!(test(&b, i), i >= start && i < start + len);
            }
        }
    }
}
