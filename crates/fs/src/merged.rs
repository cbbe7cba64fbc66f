//! The used-extent stream every bitmap scanner builds on: a source of raw extents underneath,
//! merged and fused on top.

use crate::{Extent, ExtentMerger, FsError};

/// Raw used extents of a volume, in increasing order, not necessarily merged (adjacent and
/// overlapping extents and empty ones are allowed).
pub trait ExtentSource {
    /// The next raw extent, or `None` at the end.
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError>;
    /// Starts again from the first extent.
    fn rewind(&mut self);
}

/// Merges the extents of an [`ExtentSource`] (adjacent or overlapping ones become one, empty
/// ones are dropped) and fuses the stream: once it returned `None` or an error, it keeps
/// returning `None` until [`rewind`](Self::rewind). Holds one pending extent besides the
/// source, so memory does not grow with the volume.
#[derive(Debug)]
pub struct MergedExtents<S> {
    source: S,
    merger: ExtentMerger,
    ended: bool,
}

impl<S: ExtentSource> MergedExtents<S> {
    /// A stream over `source`, from where `source` stands.
    pub fn new(source: S) -> Self {
        MergedExtents {
            source,
            merger: ExtentMerger::new(),
            ended: false,
        }
    }

    /// The source underneath (e.g. for the counters it keeps while it is read).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The next merged extent, or `None` at the end (and after an error).
    pub fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            match self.source.next_raw() {
                Ok(Some(e)) => {
                    if let Some(x) = self.merger.push(e) {
                        return Ok(Some(x));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    return Ok(self.merger.finish());
                }
                Err(e) => {
                    self.ended = true;
                    self.merger = ExtentMerger::new();
                    return Err(e);
                }
            }
        }
    }

    /// Reads the stream to its end and returns the bytes it held; the source is left at its
    /// end (its counters complete) until [`rewind`](Self::rewind).
    pub fn count_bytes(&mut self) -> Result<u64, FsError> {
        let mut bytes = 0u64;
        while let Some(e) = self.next_extent()? {
            bytes += e.len;
        }
        Ok(bytes)
    }

    /// Starts the stream again from the first extent.
    pub fn rewind(&mut self) {
        self.source.rewind();
        self.merger = ExtentMerger::new();
        self.ended = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields its extents, then an error if `fail`, then `None`.
    struct Listed {
        extents: Vec<Extent>,
        at: usize,
        fail: bool,
    }

    impl ExtentSource for Listed {
        fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
            if let Some(e) = self.extents.get(self.at) {
                self.at += 1;
                return Ok(Some(*e));
            }
            if self.fail {
                return Err(FsError::io(7, std::io::Error::other("gone")));
            }
            Ok(None)
        }
        fn rewind(&mut self) {
            self.at = 0;
        }
    }

    fn listed(fail: bool) -> MergedExtents<Listed> {
        let extents = [(0, 10), (10, 5), (20, 0), (30, 4), (32, 8)]
            .map(|(o, l)| Extent::new(o, l))
            .to_vec();
        MergedExtents::new(Listed {
            extents,
            at: 0,
            fail,
        })
    }

    #[test]
    fn merges_then_stays_ended_and_rewinds() {
        let mut m = listed(false);
        assert_eq!(m.next_extent().unwrap(), Some(Extent::new(0, 15)));
        assert_eq!(m.next_extent().unwrap(), Some(Extent::new(30, 10)));
        assert_eq!(m.next_extent().unwrap(), None);
        assert_eq!(m.next_extent().unwrap(), None);
        m.rewind();
        assert_eq!(m.count_bytes().unwrap(), 25);
        assert_eq!(m.source().at, 5);
    }

    #[test]
    fn an_error_drops_the_pending_extent_and_ends_the_stream() {
        let mut m = listed(true);
        assert_eq!(m.next_extent().unwrap(), Some(Extent::new(0, 15)));
        assert!(m.next_extent().is_err());
        assert_eq!(m.next_extent().unwrap(), None);
    }
}
