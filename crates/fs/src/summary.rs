//! Reading a whole used-extent stream once and summing it up, and a readable form of
//! [`FsInfo`]: what tools, examples and benchmarks print about a scan.

use std::fmt;

use crate::{Extent, FsError, FsInfo, UsedBlocks};

/// What a whole stream held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Number of extents.
    pub extents: u64,
    /// Their bytes in all.
    pub bytes: u64,
    /// The largest one.
    pub largest: u64,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (largest {} bytes, {} bytes in all)",
            self.extents, self.largest, self.bytes
        )
    }
}

/// Reads `stream` to its end, handing each extent to `each`.
pub fn tally(
    stream: &mut (impl UsedBlocks + ?Sized),
    mut each: impl FnMut(&Extent),
) -> Result<Tally, FsError> {
    let mut t = Tally::default();
    while let Some(e) = stream.next_extent()? {
        each(&e);
        t.extents += 1;
        t.bytes += e.len;
        t.largest = t.largest.max(e.len);
    }
    Ok(t)
}

/// One `name: value` line per field, then one line per warning.
impl fmt::Display for FsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        writeln!(f, "type:        {}", self.fs_type)?;
        writeln!(f, "label:       {}", dash(&self.label))?;
        writeln!(f, "uuid:        {}", dash(&self.uuid))?;
        writeln!(f, "block size:  {}", self.block_size)?;
        writeln!(f, "total bytes: {}", self.total_bytes)?;
        write!(
            f,
            "used bytes:  {} ({:.2}%)",
            self.used_bytes,
            100.0 * self.used_bytes as f64 / self.total_bytes.max(1) as f64
        )?;
        if let Some(n) = self.files {
            write!(f, "\nfiles:       {n}")?;
        }
        for w in &self.warnings {
            write!(f, "\nwarning:     {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawVolume;

    #[test]
    fn tally_sums_a_stream_and_info_prints_every_field() {
        let mut raw = RawVolume::new(3 << 20, "unknown", "no signature");
        let mut seen = Vec::new();
        let t = tally(&mut raw, |e| seen.push(*e)).unwrap();
        assert_eq!(t.bytes, 3 << 20);
        assert_eq!(t.extents, seen.len() as u64);
        assert_eq!(t.largest, seen.iter().map(|e| e.len).max().unwrap());
        let text = raw.info().to_string();
        for want in [
            "type:        unknown",
            "used bytes:  3145728 (100.00%)",
            "warning:     no signature",
        ] {
            assert!(text.contains(want), "{text}");
        }
    }
}
