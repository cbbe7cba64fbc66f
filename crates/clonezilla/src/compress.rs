//! Decompression of Clonezilla image files, chosen by the magic bytes at their start:
//! gzip (also pigz, several members), zstd (also zstdmt, several frames, long windows), xz
//! (several streams), bzip2 (also pbzip2, several streams) and lz4 (frame format), all with
//! pure-Rust decoders. Uncompressed files are recognised by the `.uncomp` name Clonezilla gives
//! them or by partclone's own signature.

use std::fmt;
use std::io::{self, Cursor, Read};

use crate::error::{Error, Result};
use crate::partclone::SIGNATURE;

/// The compression of an image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip / pigz.
    Gzip,
    /// zstd / zstdmt.
    Zstd,
    /// xz / pxz / pixz.
    Xz,
    /// bzip2 / pbzip2 / lbzip2.
    Bzip2,
    /// lz4 (frame format).
    Lz4,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Lz4 => "lz4",
        })
    }
}

/// Bytes looked at to recognise a format.
pub const MAGIC_LEN: usize = 15;

/// The compression the first bytes of a file show, or a description of what they are when no
/// decoder here reads them. `name` is the file name (`.uncomp` marks uncompressed data).
pub fn detect(name: &str, head: &[u8]) -> Result<Compression, String> {
    if name.contains(".uncomp") || head.starts_with(SIGNATURE) {
        return Ok(Compression::None);
    }
    let known: &[(&[u8], Compression)] = &[
        (&[0x1f, 0x8b], Compression::Gzip),
        (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], Compression::Xz),
        (b"BZh", Compression::Bzip2),
        (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
    ];
    if let Some((_, c)) = known.iter().find(|(m, _)| head.starts_with(m)) {
        return Ok(*c);
    }
    let other: &[(&[u8], &str)] = &[
        (&[0x89, b'L', b'Z', b'O'], "lzop"),
        (b"LZIP", "lzip"),
        (b"LRZI", "lrzip"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4 legacy"),
        (&[0x5d, 0, 0], "lzma (legacy .lzma)"),
    ];
    if let Some((_, what)) = other.iter().find(|(m, _)| head.starts_with(m)) {
        return Err((*what).to_string());
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Err(format!("unknown (first bytes {})", hex.join(" ")))
}

/// Reads the first bytes of `r`, recognises the compression and returns a reader of the
/// decompressed data. `name` names the file in errors.
pub fn open<'a, R: Read + Send + 'a>(
    name: &str,
    mut r: R,
) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut head = [0u8; MAGIC_LEN];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    offset: n as u64,
                    what: "first bytes",
                    source,
                }
                .in_file(name))
            }
        }
    }
    let head = head[..n].to_vec();
    let c = detect(name, &head).map_err(|what| Error::UnsupportedCompression {
        file: name.to_string(),
        what,
    })?;
    let whole = Cursor::new(head).chain(r);
    let out: Box<dyn Read + Send + 'a> = match c {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(whole).map_err(|source| {
                Error::Io {
                    offset: 0,
                    what: "zstd decoder",
                    source,
                }
                .in_file(name)
            })?;
            // zstd --long writes windows up to 2 GiB.
            d.window_log_max(31).map_err(|source| {
                Error::Io {
                    offset: 0,
                    what: "zstd decoder",
                    source,
                }
                .in_file(name)
            })?;
            Box::new(d)
        }
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(whole, true)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
        Compression::Lz4 => Box::new(Lz4Frames {
            dec: Some(lz4_flex::frame::FrameDecoder::new(PushBack {
                byte: None,
                inner: Box::new(whole),
            })),
        }),
    };
    Ok((c, out))
}

/// A reader with one byte pushed back in front of it.
struct PushBack<'a> {
    byte: Option<u8>,
    inner: Box<dyn Read + Send + 'a>,
}

impl Read for PushBack<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.byte.take(), buf.is_empty()) {
            (Some(b), false) => {
                buf[0] = b;
                Ok(1)
            }
            (b, _) => {
                self.byte = b.or(self.byte);
                self.inner.read(buf)
            }
        }
    }
}

/// lz4 frames one after the other (lz4_flex's decoder stops after the first).
struct Lz4Frames<'a> {
    dec: Option<lz4_flex::frame::FrameDecoder<PushBack<'a>>>,
}

impl Read for Lz4Frames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // End of a frame: another one follows unless the input ends here.
            let Some(dec) = self.dec.take() else {
                return Ok(0);
            };
            let mut inner = dec.into_inner();
            let mut one = [0u8; 1];
            let got = loop {
                match inner.read(&mut one) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            if got == 0 {
                return Ok(0);
            }
            inner.byte = Some(one[0]);
            self.dec = Some(lz4_flex::frame::FrameDecoder::new(inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_and_names() {
        assert_eq!(detect("a.gz", &[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(detect("a.uncomp", &[0x1f, 0x8b]), Ok(Compression::None));
        assert_eq!(detect("a", b"partclone-image\0"), Ok(Compression::None));
        assert_eq!(
            detect("a.lzo", &[0x89, b'L', b'Z', b'O', 0]),
            Err("lzop".into())
        );
        assert!(detect("a", &[1, 2, 3]).unwrap_err().contains("01 02 03"));
        assert!(detect("a", &[]).is_err());
    }

    #[test]
    fn unsupported_is_named() {
        let e = match open("sda1.ext4-ptcl-img.lzo", &b"\x89LZO\0\r\n\x1a\n"[..]) {
            Err(e) => e,
            Ok(_) => panic!("lzop accepted"),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("sda1.ext4-ptcl-img.lzo") && msg.contains("lzop"),
            "{msg}"
        );
    }
}
