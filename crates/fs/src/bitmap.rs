//! Allocation bitmaps as most filesystems store them: bit `i` is bit `i % 8` of byte `i / 8`
//! (least significant bit first); a set bit means allocation unit `i` is in use.
//!
//! Every function takes the number of meaningful bits, so padding bits past the last unit
//! (which filesystems often set) are ignored; bits past the slice read as clear.

/// Number of set bits among the first `nbits` bits of `bits`.
pub fn count_set(bits: &[u8], nbits: u64) -> u64 {
    let nbits = nbits.min(bits.len() as u64 * 8);
    let full = (nbits / 8) as usize;
    let (words, rest) = bits[..full].split_at(full - full % 8);
    let mut n: u64 = words
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from(u64::from_le_bytes(a).count_ones())
        })
        .sum();
    n += rest.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    let tail = nbits % 8;
    if tail != 0 {
        n += u64::from((bits[full] & ((1u8 << tail) - 1)).count_ones());
    }
    n
}

/// True when bit `i` is set (false past the slice).
pub fn test(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Bits `64 * wi .. 64 * wi + 64` as a word (bits past the slice read as clear).
fn load_word(bits: &[u8], wi: usize) -> u64 {
    let s = wi * 8;
    if s >= bits.len() {
        return 0;
    }
    let e = (s + 8).min(bits.len());
    let mut b = [0u8; 8];
    b[..e - s].copy_from_slice(&bits[s..e]);
    u64::from_le_bytes(b)
}

/// The first bit at or after `from` and before `nbits` whose value is `set`; `nbits` when
/// there is none.
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
/// bits (clamped to the slice).
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
        if i.is_multiple_of(8) && end - i >= 8 {
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
        fn runs_and_counts_match_a_bit_by_bit_walk(
            bits in proptest::collection::vec(any::<u8>(), 0..80),
            nbits in 0u64..700,
        ) {
            let n = nbits.min(bits.len() as u64 * 8);
            let want: Vec<bool> = (0..n).map(|i| test(&bits, i)).collect();
            let mut got = vec![false; n as usize];
            let mut at = 0;
            let mut steps = 0;
            while let Some((s, e)) = next_run(&bits, nbits, at) {
                prop_assert!(s >= at && e > s && e <= n);
                for b in s..e { got[b as usize] = true; }
                at = e;
                steps += 1;
                prop_assert!(steps <= n);
            }
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(count_set(&bits, nbits), want.iter().filter(|b| **b).count() as u64);
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
