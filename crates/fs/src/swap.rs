//! Linux swap areas: only the header page is kept.
//!
//! A swap area (made by `mkswap`) starts with one page (4 KiB on x86; up to 64 KiB on other
//! architectures) that holds, from byte 1024: the header version (`u32`, 1), the last page
//! number (`u32`), the number of bad pages (`u32`), the UUID (16 bytes), the label (16 bytes,
//! NUL-padded), then the bad-page list; the page ends with the 10-byte magic `SWAPSPACE2`
//! (`SWAP-SPACE` for the obsolete version 0). Fields are in the byte order of the machine that
//! made the area. Everything after the header page is scratch space that the kernel rewrites
//! at will, so the header page is the only used extent: a restored area has the same UUID,
//! label and size, and `swapon` accepts it.
//!
//! An area that holds a hibernation image (its magic replaced by `S1SUSPEND`, `S2SUSPEND`,
//! `ULSUSPEND` or `LINHIB0001`) is refused, so it is copied whole: a header without the image
//! behind it would have the kernel try to resume from garbage.

use crate::Extent;
use crate::{read_exact, FsError, FsInfo, ReadAt, Scanner, SharedVolume, UsedBlocks};

const NAME: &str = "swap";
/// Page sizes the header is looked for at (the magic ends the first page).
const PAGE_SIZES: [u64; 5] = [4096, 8192, 16384, 32768, 65536];
const MAGIC: &[u8; 10] = b"SWAPSPACE2";
const HIBERNATION: [&[u8]; 4] = [b"S1SUSPEND", b"S2SUSPEND", b"ULSUSPEND", b"LINHIB0001"];

/// Why a swap header is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SwapError {
    /// No `SWAPSPACE2` magic at the end of any possible first page.
    #[error("no SWAPSPACE2 magic at the end of the first page")]
    NoMagic,
    /// The area holds a hibernation image.
    #[error(
        "the swap area holds a hibernation image (magic {magic}); copied whole so that the \
         image is not cut off from its header"
    )]
    Hibernation {
        /// The magic found.
        magic: String,
    },
    /// The obsolete version-0 format (`SWAP-SPACE`).
    #[error("version 0 swap area (SWAP-SPACE) is not supported")]
    Version0,
    /// A header field out of range.
    #[error("swap header at page size {page_size}: {field} is {value}, {reason}")]
    Invalid {
        /// The page size the magic was found at.
        page_size: u64,
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The parsed header page of a swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapHeader {
    /// The page size the magic was found at: the size of the header page.
    pub page_size: u64,
    /// Number of the last usable page.
    pub last_page: u64,
    /// Number of bad pages listed.
    pub bad_pages: u32,
    /// The UUID, formatted 8-4-4-4-12 (`None` when all zero).
    pub uuid: Option<String>,
    /// The label (`None` when empty).
    pub label: Option<String>,
    /// True when the fields are big-endian.
    pub big_endian: bool,
}

impl SwapHeader {
    /// Bytes of the area as the header declares them: `(last_page + 1) × page_size`.
    pub fn area_bytes(&self) -> u64 {
        self.last_page
            .saturating_add(1)
            .saturating_mul(self.page_size)
    }
}

fn magic_at(volume: &dyn ReadAt, page: u64) -> Option<[u8; 10]> {
    if volume.len() < page {
        return None;
    }
    let mut m = [0u8; 10];
    volume.read_exact_at(&mut m, page - 10).ok().map(|_| m)
}

/// Reads the header of the swap area at the start of `volume`.
pub fn read_header(volume: &dyn ReadAt) -> Result<SwapHeader, FsError> {
    let bad = |e: SwapError| FsError::corrupt(NAME, e);
    let mut found = None;
    for page in PAGE_SIZES {
        let Some(m) = magic_at(volume, page) else {
            break;
        };
        if &m == MAGIC {
            found = Some(page);
            break;
        }
        if &m == b"SWAP-SPACE" {
            return Err(bad(SwapError::Version0));
        }
        if let Some(h) = HIBERNATION.iter().find(|h| m.ends_with(h)) {
            return Err(bad(SwapError::Hibernation {
                magic: String::from_utf8_lossy(h).into_owned(),
            }));
        }
    }
    let page_size = found.ok_or_else(|| FsError::not_recognised(NAME, SwapError::NoMagic))?;
    let mut h = [0u8; 1024 + 44];
    read_exact(volume, &mut h, 0)?;
    let f = &h[1024..];
    let le = |o: usize| u32::from_le_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let be = |o: usize| u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]);
    let big_endian = le(0) != 1 && be(0) == 1;
    let word = |o: usize| if big_endian { be(o) } else { le(o) };
    let invalid = |field, value: u64, reason| {
        bad(SwapError::Invalid {
            page_size,
            field,
            value,
            reason,
        })
    };
    if word(0) != 1 {
        return Err(invalid("version", u64::from(word(0)), "not 1"));
    }
    let last_page = u64::from(word(4));
    if last_page == 0 {
        return Err(invalid("last page", 0, "an area of one page holds nothing"));
    }
    let bad_pages = word(8);
    // The bad-page list must fit in the header page after its 1024 + 512 bytes of fields.
    let max_bad = (page_size - 1024 - 512 - 10) / 4;
    if u64::from(bad_pages) > max_bad {
        return Err(invalid(
            "bad-page count",
            u64::from(bad_pages),
            "more than the header page holds",
        ));
    }
    let uuid_bytes = &f[12..28];
    let uuid = uuid_bytes.iter().any(|b| *b != 0).then(|| {
        let x: String = uuid_bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &x[0..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..32]
        )
    });
    let raw_label = &f[28..44];
    let end = raw_label.iter().position(|b| *b == 0).unwrap_or(16);
    let label = (end > 0).then(|| String::from_utf8_lossy(&raw_label[..end]).into_owned());
    Ok(SwapHeader {
        page_size,
        last_page,
        bad_pages,
        uuid,
        label,
        big_endian,
    })
}

/// The swap scanner: the header page is the one used extent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwapScanner;

impl Scanner for SwapScanner {
    fn name(&self) -> &'static str {
        NAME
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        PAGE_SIZES
            .iter()
            .any(|p| magic_at(volume, *p).is_some_and(|m| &m == MAGIC))
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        let h = read_header(&*volume)?;
        let len = volume.len();
        let mut warnings = Vec::new();
        if h.area_bytes() > len {
            warnings.push(format!(
                "the swap header declares {} bytes but the volume has {len}; swapon will \
                 refuse it until mkswap is run again",
                h.area_bytes()
            ));
        }
        let info = FsInfo {
            fs_type: NAME.to_string(),
            label: h.label.clone(),
            uuid: h.uuid.clone(),
            block_size: h.page_size as u32,
            total_bytes: h.area_bytes().min(len),
            used_bytes: h.page_size,
            warnings,
            ..FsInfo::default()
        };
        Ok(Box::new(SwapUsedBlocks {
            info,
            next: Some(Extent::new(0, h.page_size.min(len))),
        }))
    }
}

/// The used-extent stream of a swap area: its header page.
#[derive(Debug)]
pub struct SwapUsedBlocks {
    info: FsInfo,
    next: Option<Extent>,
}

impl UsedBlocks for SwapUsedBlocks {
    fn info(&self) -> &FsInfo {
        &self.info
    }
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        Ok(self.next.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn area(page: usize, pages: u32, magic: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; page * 4];
        v[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        v[1028..1032].copy_from_slice(&(pages - 1).to_le_bytes());
        v[1036..1052].copy_from_slice(&[0x11; 16]);
        v[1052..1056].copy_from_slice(b"swp1");
        v[page - magic.len()..page].copy_from_slice(magic);
        v
    }

    #[test]
    fn header_page_is_the_only_extent() {
        let v = area(4096, 4, MAGIC);
        let mut u = SwapScanner.open(Arc::new(v)).unwrap();
        assert_eq!(u.info().label.as_deref(), Some("swp1"));
        assert_eq!(
            u.info().uuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(u.next_extent().unwrap(), Some(Extent::new(0, 4096)));
        assert_eq!(u.next_extent().unwrap(), None);
    }

    #[test]
    fn larger_pages_and_big_endian_are_read() {
        let mut v = area(16384, 3, MAGIC);
        v[1024..1028].copy_from_slice(&1u32.to_be_bytes());
        v[1028..1032].copy_from_slice(&2u32.to_be_bytes());
        let h = read_header(&v).unwrap();
        assert_eq!((h.page_size, h.last_page, h.big_endian), (16384, 2, true));
    }

    #[test]
    fn hibernation_and_garbage_are_refused() {
        let v = area(4096, 4, b"S1SUSPEND");
        assert!(matches!(read_header(&v), Err(FsError::Corrupt { .. })));
        let mut v = area(4096, 4, MAGIC);
        v[1036 - 4..1036].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_header(&v), Err(FsError::Corrupt { .. })));
        assert!(matches!(
            read_header(&vec![0u8; 100]),
            Err(FsError::NotRecognised { .. })
        ));
    }
}
