//! Byte ranges and their merging.

/// A byte range `[offset, offset + len)` relative to the start of a volume or disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    /// First byte.
    pub offset: u64,
    /// Length in bytes (never zero in a stream).
    pub len: u64,
}

impl Extent {
    /// A new extent.
    pub const fn new(offset: u64, len: u64) -> Self {
        Extent { offset, len }
    }
    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// Coalesces a stream of extents given in increasing order: adjacent or overlapping extents
/// are merged; zero-length extents are dropped. Holds one pending extent only.
#[derive(Debug, Default, Clone)]
pub struct ExtentMerger {
    pending: Option<Extent>,
}

impl ExtentMerger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `e`; returns a finished extent when `e` does not touch the pending one.
    /// Extents that start before the pending one's start are merged into it as well (the
    /// result covers both), so an unsorted input never loses bytes.
    pub fn push(&mut self, e: Extent) -> Option<Extent> {
        if e.len == 0 {
            return None;
        }
        match self.pending {
            None => {
                self.pending = Some(e);
                None
            }
            Some(p) if e.offset <= p.end() && e.end() >= p.offset => {
                let start = p.offset.min(e.offset);
                let end = p.end().max(e.end());
                self.pending = Some(Extent::new(start, end - start));
                None
            }
            Some(p) => {
                self.pending = Some(e);
                Some(p)
            }
        }
    }

    /// Returns the last pending extent.
    pub fn finish(&mut self) -> Option<Extent> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merged_sorted_extents_cover_exactly_the_same_bytes(
            mut v in proptest::collection::vec((0u64..10_000, 0u64..300), 0..60)
        ) {
            v.sort();
            let mut m = ExtentMerger::new();
            let mut out = Vec::new();
            for (o, l) in &v {
                out.extend(m.push(Extent::new(*o, *l)));
            }
            out.extend(m.finish());
            let mut want = std::collections::BTreeSet::new();
            for (o, l) in &v { for b in *o..o + l { want.insert(b); } }
            let mut got = std::collections::BTreeSet::new();
            for w in out.windows(2) {
                prop_assert!(w[0].end() < w[1].offset, "not merged or not sorted: {:?}", w);
            }
            for e in &out { prop_assert!(e.len > 0); for b in e.offset..e.end() { got.insert(b); } }
            prop_assert_eq!(want, got);
        }
    }
}
