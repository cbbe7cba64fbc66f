//! Mapping pairs (runlists): where the clusters of a non-resident attribute lie.
//!
//! Each run starts with a header byte: the low nibble is the size in bytes of the run length,
//! the high nibble the size of the signed LCN delta (relative to the previous run's LCN; zero
//! bytes for a sparse run). A zero header ends the list.

use crate::NtfsError;

/// One run: `len` clusters from virtual cluster `vcn`, at logical cluster `lcn` (`None` for a
/// sparse run, which reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First virtual cluster of the run.
    pub vcn: u64,
    /// Number of clusters (never zero).
    pub len: u64,
    /// First logical cluster, or `None` when sparse.
    pub lcn: Option<u64>,
}

/// Iterator decoding mapping pairs, starting at `lowest_vcn`. Stops after the first error.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    vcn: u64,
    lcn: i64,
    done: bool,
}

/// Decodes mapping pairs that begin at virtual cluster `lowest_vcn`.
pub fn decode(bytes: &[u8], lowest_vcn: u64) -> Decoder<'_> {
    Decoder {
        bytes,
        pos: 0,
        vcn: lowest_vcn,
        lcn: 0,
        done: false,
    }
}

fn read_le(b: &[u8], signed: bool) -> i128 {
    let mut v: i128 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= i128::from(x) << (8 * i);
    }
    if signed && !b.is_empty() && b[b.len() - 1] & 0x80 != 0 {
        v -= 1i128 << (8 * b.len());
    }
    v
}

impl Decoder<'_> {
    fn step(&mut self) -> Result<Option<Run>, NtfsError> {
        let bad = |pos: usize, why: String| NtfsError::BadRunlist(format!("at byte {pos}: {why}"));
        let Some(&h) = self.bytes.get(self.pos) else {
            return Err(bad(self.pos, "no terminating zero byte".into()));
        };
        if h == 0 {
            return Ok(None);
        }
        let ln = usize::from(h & 0x0F);
        let on = usize::from(h >> 4);
        if ln == 0 || ln > 8 || on > 8 {
            return Err(bad(self.pos, format!("header byte {h:#04x}")));
        }
        let start = self.pos + 1;
        let Some(field) = self.bytes.get(start..start + ln + on) else {
            return Err(bad(
                self.pos,
                "run passes the end of the mapping pairs".into(),
            ));
        };
        let len = read_le(&field[..ln], true);
        if len <= 0 || len > i128::from(i64::MAX) {
            return Err(bad(self.pos, format!("run length {len}")));
        }
        let len = len as u64;
        let lcn = if on == 0 {
            None
        } else {
            let delta = read_le(&field[ln..], true);
            let l = i128::from(self.lcn) + delta;
            if l < 0 || l > i128::from(i64::MAX) {
                return Err(bad(self.pos, format!("cluster number {l}")));
            }
            self.lcn = l as i64;
            if (l as u64)
                .checked_add(len)
                .is_none_or(|e| e > i64::MAX as u64)
            {
                return Err(bad(self.pos, "run end overflows".into()));
            }
            Some(l as u64)
        };
        let vcn = self.vcn;
        self.vcn = vcn
            .checked_add(len)
            .filter(|&v| v <= i64::MAX as u64)
            .ok_or_else(|| bad(self.pos, "virtual cluster number overflows".into()))?;
        self.pos = start + ln + on;
        Ok(Some(Run { vcn, len, lcn }))
    }

    /// The virtual cluster after the last run decoded so far.
    pub fn next_vcn(&self) -> u64 {
        self.vcn
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<Run, NtfsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Smallest little-endian two's-complement encoding of `v`.
fn encode_signed(v: i64) -> Vec<u8> {
    let bytes = v.to_le_bytes();
    let mut n = 8;
    while n > 1 {
        let top = bytes[n - 1];
        let next_sign = bytes[n - 2] & 0x80 != 0;
        if (top == 0 && !next_sign) || (top == 0xFF && next_sign) {
            n -= 1;
        } else {
            break;
        }
    }
    bytes[..n].to_vec()
}

/// Encodes runs (consecutive VCNs, lengths > 0, LCNs < 2^63) as mapping pairs, with the
/// terminating zero byte. The inverse of [`decode`].
pub fn encode(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev: i64 = 0;
    for r in runs {
        let len = encode_signed(r.len as i64);
        let off = match r.lcn {
            Some(l) => {
                let d = encode_signed((l as i64).wrapping_sub(prev));
                prev = l as i64;
                d
            }
            None => Vec::new(),
        };
        out.push((off.len() as u8) << 4 | len.len() as u8);
        out.extend_from_slice(&len);
        out.extend_from_slice(&off);
    }
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bytes() {
        // 0x18 clusters at 0x5634, then 0x10 clusters at 0x5634 - 0x10 = 0x5624, then sparse.
        let b = [
            0x21, 0x18, 0x34, 0x56, 0x21, 0x10, 0xF0, 0xFF, 0x01, 0x05, 0x00,
        ];
        let runs: Vec<Run> = decode(&b, 0).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            runs,
            vec![
                Run {
                    vcn: 0,
                    len: 0x18,
                    lcn: Some(0x5634)
                },
                Run {
                    vcn: 0x18,
                    len: 0x10,
                    lcn: Some(0x5624)
                },
                Run {
                    vcn: 0x28,
                    len: 5,
                    lcn: None
                },
            ]
        );
        // The encoder writes the shortest fields: -0x10 fits in one byte.
        assert_eq!(
            encode(&runs),
            vec![0x21, 0x18, 0x34, 0x56, 0x11, 0x10, 0xF0, 0x01, 0x05, 0x00]
        );
    }

    #[test]
    fn malformed() {
        for b in [
            &[0x21u8, 0x18][..],
            &[0x11, 0x00, 0x01, 0x00],
            &[0x91, 1, 0],
            &[0x11, 1, 1],
        ] {
            let r: Result<Vec<Run>, _> = decode(b, 0).collect();
            assert!(r.is_err(), "{b:02x?}");
        }
        // Negative LCN.
        let r: Result<Vec<Run>, _> = decode(&[0x11, 1, 0xFF, 0], 0).collect();
        assert!(r.is_err());
    }
}
