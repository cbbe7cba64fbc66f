//! The exFAT allocation bitmap: bit `i` (least significant bit first in each byte) tells
//! whether heap cluster `i + 2` is in use. Bits past the cluster count are padding and are
//! ignored.

/// Bits `64 * wi .. 64 * wi + 64` of `bits` as a word (bits past the slice read as clear).
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
/// bits (clipped to the slice).
pub fn next_run(bits: &[u8], nbits: u64, from: u64) -> Option<(u64, u64)> {
    let nbits = nbits.min(bits.len() as u64 * 8);
    let start = find(bits, nbits, from, true);
    if start >= nbits {
        return None;
    }
    Some((start, find(bits, nbits, start, false)))
}

/// Number of set bits among the first `nbits` bits.
pub fn count_set(bits: &[u8], nbits: u64) -> u64 {
    let mut n = 0;
    let mut from = 0;
    while let Some((s, e)) = next_run(bits, nbits, from) {
        n += e - s;
        from = e;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn runs_match_a_bit_by_bit_reading(
            bits in proptest::collection::vec(any::<u8>(), 0..40),
            nbits in 0u64..400,
        ) {
            let mut want = Vec::new();
            let lim = nbits.min(bits.len() as u64 * 8);
            let mut i = 0;
            while i < lim {
                if bits[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                    let s = i;
                    while i < lim && bits[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                        i += 1;
                    }
                    want.push((s, i));
                } else {
                    i += 1;
                }
            }
            let mut got = Vec::new();
            let mut from = 0;
            while let Some((s, e)) = next_run(&bits, nbits, from) {
                got.push((s, e));
                from = e;
            }
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(count_set(&bits, nbits), want.iter().map(|(s, e)| e - s).sum::<u64>());
        }
    }
}
