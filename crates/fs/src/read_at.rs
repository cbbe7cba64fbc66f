//! Positional reads of a volume.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// Positional, shareable reads of a volume of known length.
///
/// Reads past the end fail with [`io::ErrorKind::UnexpectedEof`].
pub trait ReadAt: Send + Sync {
    /// Fills `buf` from byte `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Length of the volume in bytes.
    fn len(&self) -> u64;
    /// True when the volume has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_bounds(len: u64, offset: u64, n: usize) -> io::Result<()> {
    match offset.checked_add(n as u64) {
        Some(end) if end <= len => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read of {n} bytes at offset {offset} passes the end ({len} bytes)"),
        )),
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.len() as u64, offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self[o..o + buf.len()]);
        Ok(())
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

/// A file (regular file or block device) whose length the caller knows (block devices report
/// a zero length in their metadata).
impl ReadAt for (File, u64) {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.1, offset, buf.len())?;
        FileExt::read_exact_at(&self.0, buf, offset)
    }
    fn len(&self) -> u64 {
        self.1
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::sync::Arc<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
}

/// A window `[offset, offset + len)` of another volume `R`, e.g. one partition of a disk.
/// `R` is a borrow (`&Disk`) for a window used in place, or a shared handle
/// (`Arc<Disk>`) for a window that owns its share of the volume and can outlive the caller's
/// borrow, e.g. under a used-block stream kept from planning to streaming.
#[derive(Debug, Clone, Copy)]
pub struct Slice<R> {
    inner: R,
    offset: u64,
    len: u64,
}

impl<R: ReadAt> Slice<R> {
    /// The window of `inner` starting at `offset`, `len` bytes long (clipped to `inner`).
    pub fn new(inner: R, offset: u64, len: u64) -> Self {
        let avail = inner.len().saturating_sub(offset);
        Slice {
            inner,
            offset,
            len: len.min(avail),
        }
    }
    /// Where the window starts in the inner volume.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl<R: ReadAt> ReadAt for Slice<R> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.len, offset, buf.len())?;
        self.inner.read_exact_at(buf, self.offset + offset)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// Adapts any `Read + Seek` (a cursor, a file) to [`ReadAt`]; reads are serialised.
pub struct ReadSeekAt<R> {
    inner: Mutex<R>,
    len: u64,
}

impl<R: Read + Seek> ReadSeekAt<R> {
    /// Wraps `inner`, measuring its length by seeking to the end.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        Ok(ReadSeekAt {
            inner: Mutex::new(inner),
            len,
        })
    }
}

impl<R: Read + Seek + Send> ReadAt for ReadSeekAt<R> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_bounds(self.len, offset, buf.len())?;
        let mut g = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("reader poisoned by an earlier panic"))?;
        g.seek(SeekFrom::Start(offset))?;
        g.read_exact(buf)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_is_bounded_and_shifted() {
        let data: Vec<u8> = (0..100u8).collect();
        let s = Slice::new(&data, 10, 20);
        let mut b = [0u8; 5];
        s.read_exact_at(&mut b, 15).unwrap();
        assert_eq!(b, [25, 26, 27, 28, 29]);
        assert!(s.read_exact_at(&mut b, 16).is_err());
        let clipped = Slice::new(&data, 90, 50);
        assert_eq!(ReadAt::len(&clipped), 10);
        let shared = Slice::new(std::sync::Arc::new(data.clone()), 10, 20);
        shared.read_exact_at(&mut b, 15).unwrap();
        assert_eq!(b, [25, 26, 27, 28, 29]);
    }

    #[test]
    fn read_seek_adapter_matches_slice_reads() {
        let data: Vec<u8> = (0..=255u8).collect();
        let r = ReadSeekAt::new(io::Cursor::new(data.clone())).unwrap();
        let mut b = [0u8; 4];
        r.read_exact_at(&mut b, 252).unwrap();
        assert_eq!(b, [252, 253, 254, 255]);
        assert!(r.read_exact_at(&mut b, 253).is_err());
    }
}
