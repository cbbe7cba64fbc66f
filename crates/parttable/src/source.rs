//! Byte access for the parsers: a [`ReadAt`] for reading layouts, a `Read + Write + Seek`
//! device for relocation. Every read is bounds-checked against the disk size first, so
//! hostile offsets never reach the reader.

use crate::PartError;
use lifeboat_fs::ReadAt;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub(crate) trait Source {
    /// Size of the disk in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset` (already bounds-checked).
    fn read_into(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

pub(crate) struct DynSource<'a>(pub(crate) &'a dyn ReadAt);

impl Source for DynSource<'_> {
    fn size(&self) -> u64 {
        self.0.len()
    }
    fn read_into(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

pub(crate) struct SeekSource<'a, D> {
    pub(crate) dev: &'a mut D,
    pub(crate) size: u64,
}

impl<D: Read + Seek> Source for SeekSource<'_, D> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_into(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.dev.seek(SeekFrom::Start(offset))?;
        self.dev.read_exact(buf)
    }
}

/// True when `[offset, offset + len)` lies inside the disk.
pub(crate) fn fits(src: &dyn Source, offset: u64, len: u64) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= src.size())
}

/// Reads `len` bytes at `offset`; `what` names the structure for the error message.
pub(crate) fn read(
    src: &mut dyn Source,
    offset: u64,
    len: usize,
    what: &str,
) -> Result<Vec<u8>, PartError> {
    let err = |source: io::Error| PartError::Read {
        what: what.to_string(),
        offset,
        source,
    };
    if !fits(src, offset, len as u64) {
        return Err(err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{len} bytes would pass the end of the disk ({} bytes)",
                src.size()
            ),
        )));
    }
    let mut buf = vec![0u8; len];
    src.read_into(&mut buf, offset).map_err(err)?;
    Ok(buf)
}

/// Writes `bytes` at `offset` of `dev`.
pub(crate) fn write<D: Write + Seek>(
    dev: &mut D,
    offset: u64,
    bytes: &[u8],
    what: &str,
) -> Result<(), PartError> {
    let r = dev
        .seek(SeekFrom::Start(offset))
        .and_then(|_| dev.write_all(bytes));
    r.map_err(|source| PartError::Write {
        what: what.to_string(),
        offset,
        source,
    })
}

/// Little-endian u32 at `at` (the caller guarantees the bounds).
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Little-endian u64 at `at` (the caller guarantees the bounds).
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
