//! Sealed (encrypted and authenticated) image streams, format 2.0 (`docs/FORMAT.md` §16).
//!
//! A sealed stream is a 128-byte [`SealHeader`] followed by the complete 1.x container stream
//! cut into segments of `segment_size` bytes, each encrypted with AES-256-GCM and followed by
//! its 16-byte tag. The nonce of segment *i* is *i* (u64) plus a "final segment" flag; the
//! associated data is the whole header. So a segment cannot be changed, moved, swapped with
//! another, dropped from the end or taken from another image (every image has its own random
//! salt, hence its own key) without its tag failing. The key comes from the passphrase through
//! Argon2id (parameters and salt in the header); HKDF-SHA256 derives separate keys for the
//! segments, for the sealed manifest and a key-check value that tells a wrong passphrase from a
//! damaged image before anything is decrypted.

use crate::error::{ContainerError, Result};
use crate::format::FILE_MAGIC;
use byteorder::{ByteOrder, LittleEndian as LE};
use lifeboat_fs::ReadAt;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Major format version of sealed streams.
pub const SEALED_MAJOR: u16 = 2;
/// Minor format version of sealed streams.
pub const SEALED_MINOR: u16 = 0;
/// Size of the sealed stream header.
pub const SEAL_HEADER_LEN: usize = 128;
/// Size of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Segment size written by this crate (plaintext bytes per sealed segment).
pub const DEFAULT_SEGMENT: u32 = 64 << 10;
/// Smallest segment size a reader accepts.
pub const MIN_SEGMENT: u32 = 4096;
/// Largest segment size a reader accepts (bounds the reader's buffer).
pub const MAX_SEGMENT: u32 = 16 << 20;
/// AEAD identifier: AES-256-GCM.
pub const AEAD_AES256_GCM: u8 = 1;
/// KDF identifier: Argon2id, version 0x13.
pub const KDF_ARGON2ID: u8 = 1;
/// Largest Argon2 memory cost a reader accepts, in KiB (256 MiB: fits a rescue system).
pub const MAX_KDF_MEMORY_KIB: u32 = 256 << 10;
/// Largest Argon2 pass count a reader accepts.
pub const MAX_KDF_PASSES: u32 = 16;
/// Largest Argon2 lane count a reader accepts.
pub const MAX_KDF_LANES: u32 = 8;
/// Flag in the nonce of the last segment.
const FINAL: u32 = 1;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (`docs/PERFORMANCE.md` has the time on a test machine).
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 << 10,
            passes: 3,
            lanes: 1,
        }
    }
}

/// The header of a sealed stream (128 bytes at position 0, §16.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealHeader {
    /// Minor version.
    pub minor: u16,
    /// Plaintext bytes per segment.
    pub segment_size: u32,
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// Image id (the same as in the inner container's header).
    pub image_id: [u8; 16],
    /// Argon2 salt, random per image.
    pub salt: [u8; 32],
    /// Key-check value: detects a wrong passphrase before anything is decrypted.
    pub key_check: [u8; 32],
}

/// True when `b` (at least the first 12 bytes of a stream) starts a sealed stream.
pub fn is_sealed(b: &[u8]) -> bool {
    b.len() >= 12 && b[0..8] == FILE_MAGIC && LE::read_u16(&b[8..10]) == SEALED_MAJOR
}

fn invalid(detail: String) -> ContainerError {
    ContainerError::Invalid {
        what: "sealed image header",
        pos: 0,
        detail,
    }
}

impl SealHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEAL_HEADER_LEN] {
        let mut b = [0u8; SEAL_HEADER_LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        LE::write_u16(&mut b[8..10], SEALED_MAJOR);
        LE::write_u16(&mut b[10..12], self.minor);
        LE::write_u32(&mut b[12..16], SEAL_HEADER_LEN as u32);
        LE::write_u32(&mut b[16..20], self.segment_size);
        b[20] = AEAD_AES256_GCM;
        b[21] = KDF_ARGON2ID;
        LE::write_u32(&mut b[24..28], self.kdf.memory_kib);
        LE::write_u32(&mut b[28..32], self.kdf.passes);
        LE::write_u32(&mut b[32..36], self.kdf.lanes);
        b[40..56].copy_from_slice(&self.image_id);
        b[56..88].copy_from_slice(&self.salt);
        b[88..120].copy_from_slice(&self.key_check);
        let crc = crc32fast::hash(&b[0..124]);
        LE::write_u32(&mut b[124..128], crc);
        b
    }

    /// Decodes and validates a header: magic, CRC, version, algorithms, and every cost bound
    /// (so a hostile header cannot make the key derivation take unbounded memory or time).
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < SEAL_HEADER_LEN {
            return Err(ContainerError::Truncated {
                pos: b.len() as u64,
                what: "sealed image header",
            });
        }
        if b[0..8] != FILE_MAGIC {
            return Err(ContainerError::BadMagic {
                pos: 0,
                what: "sealed image header",
                found: [b[0], b[1], b[2], b[3]],
            });
        }
        if crc32fast::hash(&b[0..124]) != LE::read_u32(&b[124..128]) {
            return Err(ContainerError::Checksum {
                what: "sealed image header",
                pos: 0,
                chunk: None,
            });
        }
        let (major, minor) = (LE::read_u16(&b[8..10]), LE::read_u16(&b[10..12]));
        if major != SEALED_MAJOR {
            return Err(ContainerError::Version {
                major,
                minor,
                supported: SEALED_MAJOR,
            });
        }
        let hlen = LE::read_u32(&b[12..16]);
        if hlen as usize != SEAL_HEADER_LEN {
            return Err(invalid(format!("header length {hlen}")));
        }
        let segment_size = LE::read_u32(&b[16..20]);
        if !(MIN_SEGMENT..=MAX_SEGMENT).contains(&segment_size) {
            return Err(invalid(format!("segment size {segment_size}")));
        }
        if b[20] != AEAD_AES256_GCM {
            return Err(invalid(format!("unknown cipher {}", b[20])));
        }
        if b[21] != KDF_ARGON2ID {
            return Err(invalid(format!("unknown key derivation {}", b[21])));
        }
        let kdf = KdfParams {
            memory_kib: LE::read_u32(&b[24..28]),
            passes: LE::read_u32(&b[28..32]),
            lanes: LE::read_u32(&b[32..36]),
        };
        if !(1..=MAX_KDF_LANES).contains(&kdf.lanes)
            || !(1..=MAX_KDF_PASSES).contains(&kdf.passes)
            || kdf.memory_kib < 8 * kdf.lanes
            || kdf.memory_kib > MAX_KDF_MEMORY_KIB
        {
            return Err(invalid(format!(
                "Argon2id cost m={} KiB t={} p={} outside the accepted bounds \
                 (m ≤ {MAX_KDF_MEMORY_KIB} KiB, t ≤ {MAX_KDF_PASSES}, p ≤ {MAX_KDF_LANES})",
                kdf.memory_kib, kdf.passes, kdf.lanes
            )));
        }
        let mut h = SealHeader {
            minor,
            segment_size,
            kdf,
            image_id: [0; 16],
            salt: [0; 32],
            key_check: [0; 32],
        };
        h.image_id.copy_from_slice(&b[40..56]);
        h.salt.copy_from_slice(&b[56..88]);
        h.key_check.copy_from_slice(&b[88..120]);
        Ok(h)
    }

    /// Length of the plaintext (the inner container stream) of a sealed stream of
    /// `sealed_len` bytes, or an error when no sequence of segments has that length.
    pub fn plain_len(&self, sealed_len: u64) -> Result<u64> {
        let body =
            sealed_len
                .checked_sub(SEAL_HEADER_LEN as u64)
                .ok_or(ContainerError::Truncated {
                    pos: sealed_len,
                    what: "sealed image header",
                })?;
        let full = u64::from(self.segment_size) + TAG_LEN as u64;
        let (n, rest) = (body / full, body % full);
        match rest {
            0 if n > 0 => Ok(n * u64::from(self.segment_size)),
            r if r >= TAG_LEN as u64 => Ok(n * u64::from(self.segment_size) + r - TAG_LEN as u64),
            _ => Err(ContainerError::Truncated {
                pos: sealed_len,
                what: "sealed segment",
            }),
        }
    }
}

/// Length of the sealed stream that holds `plain_len` plaintext bytes in segments of
/// `segment_size` bytes (the inverse of [`SealHeader::plain_len`]).
pub fn sealed_len(plain_len: u64, segment_size: u32) -> u64 {
    let seg = u64::from(segment_size.max(1));
    let segments = plain_len.div_ceil(seg).max(1);
    SEAL_HEADER_LEN as u64 + plain_len + segments * TAG_LEN as u64
}

/// Segment and metadata keys of one image, wiped when dropped.
pub struct Keys {
    data: LessSafeKey,
    meta: LessSafeKey,
    header: [u8; SEAL_HEADER_LEN],
    parsed: SealHeader,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(&[info], Len(32))
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 yields 32 bytes");
    out
}

fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"))
}

/// A derived 32-byte key, wiped when dropped.
type Subkey = Zeroizing<[u8; 32]>;

/// Master key → [data key, metadata key, key-check value].
fn derive(
    passphrase: &[u8],
    kdf: &KdfParams,
    image_id: &[u8; 16],
    salt: &[u8; 32],
) -> Result<[Subkey; 3]> {
    let params = argon2::Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(32))
        .map_err(|e| invalid(format!("Argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut master = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut master[..])
        .map_err(|e| invalid(format!("Argon2id: {e}")))?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, image_id).extract(&master[..]);
    Ok([
        expand(&prk, b"lifeboat sealed image 2: segments"),
        expand(&prk, b"lifeboat sealed image 2: manifest"),
        expand(&prk, b"lifeboat sealed image 2: key check"),
    ])
}

impl Keys {
    /// Keys for a new image: a random salt, the passphrase through Argon2id with `kdf`.
    pub fn create(passphrase: &[u8], image_id: [u8; 16], kdf: KdfParams) -> Result<Self> {
        use ring::rand::SecureRandom;
        let mut salt = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| invalid("no random numbers from the system".into()))?;
        let [data, meta, check] = derive(passphrase, &kdf, &image_id, &salt)?;
        let parsed = SealHeader {
            minor: SEALED_MINOR,
            segment_size: DEFAULT_SEGMENT,
            kdf,
            image_id,
            salt,
            key_check: *check,
        };
        Ok(Keys {
            data: aes_key(&data),
            meta: aes_key(&meta),
            header: parsed.encode(),
            parsed,
        })
    }

    /// The keys of an existing image from its header and the passphrase;
    /// [`ContainerError::WrongPassphrase`] when the key-check value differs.
    pub fn open(passphrase: &[u8], header: &SealHeader) -> Result<Self> {
        let [data, meta, check] = derive(passphrase, &header.kdf, &header.image_id, &header.salt)?;
        if !constant_time_eq(&check[..], &header.key_check) {
            return Err(ContainerError::WrongPassphrase);
        }
        Ok(Keys {
            data: aes_key(&data),
            meta: aes_key(&meta),
            header: header.encode(),
            parsed: *header,
        })
    }

    /// The header these keys belong to.
    pub fn header(&self) -> &SealHeader {
        &self.parsed
    }

    fn nonce(segment: u64, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        LE::write_u64(&mut n[0..8], segment);
        LE::write_u32(&mut n[8..12], if last { FINAL } else { 0 });
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts one segment in place and appends its tag.
    fn seal_segment(&self, segment: u64, last: bool, buf: &mut Vec<u8>) {
        let tag = self
            .data
            .seal_in_place_separate_tag(Self::nonce(segment, last), Aad::from(&self.header), buf)
            .expect("AES-GCM seals a segment of at most 16 MiB");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Checks and decrypts one sealed segment (ciphertext ‖ tag) in place; returns the
    /// plaintext length.
    fn open_segment(&self, segment: u64, last: bool, buf: &mut [u8]) -> Option<usize> {
        self.data
            .open_in_place(Self::nonce(segment, last), Aad::from(&self.header), buf)
            .ok()
            .map(|p| p.len())
    }

    /// Encrypts a metadata document (the manifest); `ad` is bound to it.
    pub fn seal_blob(&self, ad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        let mut a = self.header.to_vec();
        a.extend_from_slice(ad);
        let tag = self
            .meta
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&a[..]),
                &mut buf,
            )
            .expect("AES-GCM seals the manifest");
        buf.extend_from_slice(tag.as_ref());
        buf
    }

    /// Checks and decrypts a document made by [`Keys::seal_blob`] with the same `ad`.
    pub fn open_blob(&self, ad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        let mut a = self.header.to_vec();
        a.extend_from_slice(ad);
        let n = self
            .meta
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&a[..]),
                &mut buf[..],
            )
            .map_err(|_| ContainerError::Tampered {
                what: "sealed manifest",
                pos: 0,
                segment: None,
                chunk: None,
            })?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The error a sealed reader returns (inside an [`io::Error`] of kind `InvalidData`) when a
/// segment fails authentication: the bytes were changed, moved, cut off or come from another
/// image. [`crate::StreamReader`] turns it into [`ContainerError::Tampered`].
#[derive(Debug, thiserror::Error)]
#[error("sealed segment {segment} (sealed stream bytes {start}..{end}) fails authentication: it was modified, moved, cut off or belongs to another image")]
pub struct SegmentError {
    /// Segment number.
    pub segment: u64,
    /// First byte of the sealed segment in the sealed stream.
    pub start: u64,
    /// End of the sealed segment in the sealed stream.
    pub end: u64,
}

fn tampered(segment: u64, start: u64, end: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        SegmentError {
            segment,
            start,
            end,
        },
    )
}

/// Writes a sealed stream: the header at once, then each segment as it fills up. Call
/// [`SealWriter::finish`] to seal the last segment; a stream without it fails to open.
pub struct SealWriter<W: Write> {
    w: W,
    keys: std::sync::Arc<Keys>,
    buf: Zeroizing<Vec<u8>>,
    segment: u64,
    segment_size: usize,
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed stream into `w` (writes the header).
    pub fn new(mut w: W, keys: std::sync::Arc<Keys>) -> io::Result<Self> {
        w.write_all(&keys.header)?;
        let segment_size = keys.parsed.segment_size as usize;
        Ok(SealWriter {
            w,
            keys,
            buf: Zeroizing::new(Vec::with_capacity(segment_size + TAG_LEN)),
            segment: 0,
            segment_size,
        })
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        self.keys.seal_segment(self.segment, last, &mut self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.segment += 1;
        Ok(())
    }

    /// Seals the last segment (possibly empty) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.w.flush()?;
        Ok(self.w)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.w
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full segment is sealed only when more data comes, so that the final flag can go
        // on the last one.
        if self.buf.len() == self.segment_size && !data.is_empty() {
            self.emit(false)?;
        }
        let n = (self.segment_size - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Reads the plaintext of a sealed stream front to back (header already read by the
/// caller, see [`SealHeader::decode`] and [`Keys::open`]), checking every tag. A stream cut
/// after a segment that is not the final one fails: its last segment does not open as final.
pub struct OpenReader<R: Read> {
    r: R,
    keys: std::sync::Arc<Keys>,
    buf: Zeroizing<Vec<u8>>,
    at: usize,
    segment: u64,
    done: bool,
    /// One byte read ahead to learn whether the current segment is the last.
    ahead: Option<u8>,
}

impl<R: Read> OpenReader<R> {
    /// Reads the plaintext after the header from `r`.
    pub fn new(r: R, keys: std::sync::Arc<Keys>) -> Self {
        OpenReader {
            r,
            keys,
            buf: Zeroizing::new(Vec::new()),
            at: 0,
            segment: 0,
            done: false,
            ahead: None,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let full = self.keys.parsed.segment_size as usize + TAG_LEN;
        self.buf.clear();
        self.buf.resize(full, 0);
        let mut got = 0;
        if let Some(b) = self.ahead.take() {
            self.buf[0] = b;
            got = 1;
        }
        while got < full {
            match self.r.read(&mut self.buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut last = got < full;
        if !last {
            let mut one = [0u8; 1];
            loop {
                match self.r.read(&mut one) {
                    Ok(0) => {
                        last = true;
                        break;
                    }
                    Ok(_) => {
                        self.ahead = Some(one[0]);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let start = SEAL_HEADER_LEN as u64 + self.segment * full as u64;
        if got < TAG_LEN {
            return Err(tampered(self.segment, start, start + got as u64));
        }
        let n = self
            .keys
            .open_segment(self.segment, last, &mut self.buf[..got])
            .ok_or_else(|| tampered(self.segment, start, start + got as u64))?;
        self.buf.truncate(n);
        self.at = 0;
        self.segment += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Random access to the plaintext of a sealed stream held by a [`ReadAt`] (every read opens
/// and checks the segments it touches; the last one opened is kept).
pub struct OpenAt<R: ReadAt> {
    inner: R,
    keys: std::sync::Arc<Keys>,
    plain_len: u64,
    segments: u64,
    cache: Mutex<Option<(u64, Zeroizing<Vec<u8>>)>>,
    /// Sealed bytes read ahead (up to [`READ_AHEAD`] segments), so that a network
    /// repository is read in large pieces: (position in the sealed stream, bytes).
    ahead: Mutex<(u64, Vec<u8>)>,
}

/// Segments read from the sealed stream at once by [`OpenAt`].
const READ_AHEAD: u64 = 16;

impl<R: ReadAt> OpenAt<R> {
    /// Opens the sealed stream in `inner` with keys made from its header.
    pub fn new(inner: R, keys: std::sync::Arc<Keys>) -> Result<Self> {
        let plain_len = keys.parsed.plain_len(inner.len())?;
        let seg = u64::from(keys.parsed.segment_size);
        let segments = plain_len.div_ceil(seg).max(1);
        Ok(OpenAt {
            inner,
            keys,
            plain_len,
            segments,
            cache: Mutex::new(None),
            ahead: Mutex::new((0, Vec::new())),
        })
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u32 {
        self.keys.parsed.segment_size
    }

    /// Copies sealed bytes `start .. start + buf.len()` into `buf`, from the read-ahead
    /// window (refilled with up to [`READ_AHEAD`] segments from `start` when it does not
    /// hold them).
    fn read_sealed(&self, buf: &mut [u8], start: u64) -> io::Result<()> {
        let mut ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let end = start + buf.len() as u64;
        let (at, bytes) = &*ahead;
        if start < *at || end > *at + bytes.len() as u64 {
            let full = u64::from(self.keys.parsed.segment_size) + TAG_LEN as u64;
            let len = (READ_AHEAD * full)
                .max(buf.len() as u64)
                .min(self.inner.len().saturating_sub(start));
            let mut fresh = vec![0u8; len as usize];
            self.inner.read_exact_at(&mut fresh, start)?;
            *ahead = (start, fresh);
        }
        let (at, bytes) = &*ahead;
        let o = (start - at) as usize;
        buf.copy_from_slice(&bytes[o..o + buf.len()]);
        Ok(())
    }

    /// The sealed stream.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Position in the sealed stream of plaintext byte `pos`.
    pub fn sealed_position(&self, pos: u64) -> u64 {
        let seg = u64::from(self.keys.parsed.segment_size);
        SEAL_HEADER_LEN as u64 + pos / seg * (seg + TAG_LEN as u64) + pos % seg
    }

    fn with_segment<T>(&self, i: u64, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, data)) = cache.as_ref() {
            if *n == i {
                return Ok(f(data));
            }
        }
        let seg = u64::from(self.keys.parsed.segment_size);
        let full = seg + TAG_LEN as u64;
        let start = SEAL_HEADER_LEN as u64 + i * full;
        let last = i + 1 == self.segments;
        let len = if last { self.inner.len() - start } else { full };
        let mut buf = Zeroizing::new(vec![0u8; len as usize]);
        self.read_sealed(&mut buf, start)?;
        let n = self
            .keys
            .open_segment(i, last, &mut buf)
            .ok_or_else(|| tampered(i, start, start + len))?;
        buf.truncate(n);
        let out = f(&buf);
        *cache = Some((i, buf));
        Ok(out)
    }
}

impl<R: ReadAt> ReadAt for OpenAt<R> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= self.plain_len => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} passes the end of the image ({} bytes)",
                        buf.len(),
                        self.plain_len
                    ),
                ))
            }
        }
        let seg = u64::from(self.keys.parsed.segment_size);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (i, within) = (pos / seg, (pos % seg) as usize);
            let n = self.with_segment(i, |data| {
                let n = (data.len() - within.min(data.len())).min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&data[within..within + n]);
                n
            })?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment {i} is shorter than its position says"),
                ));
            }
            done += n;
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.plain_len
    }
}

/// Finds a [`SegmentError`] inside an I/O error.
pub fn segment_error(e: &io::Error) -> Option<&SegmentError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<SegmentError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn fast() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        }
    }

    fn sealed(plain: &[u8], keys: &Arc<Keys>) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), Arc::clone(keys)).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap()
    }

    fn open_all(s: &[u8], pass: &[u8]) -> Result<Vec<u8>> {
        let h = SealHeader::decode(s)?;
        let keys = Arc::new(Keys::open(pass, &h)?);
        let mut out = Vec::new();
        OpenReader::new(&s[SEAL_HEADER_LEN..], Arc::clone(&keys))
            .read_to_end(&mut out)
            .map_err(|source| ContainerError::Io { pos: 0, source })?;
        let at = OpenAt::new(s.to_vec(), keys)?;
        let mut again = vec![0u8; at.len() as usize];
        at.read_exact_at(&mut again, 0)
            .map_err(|source| ContainerError::Io { pos: 0, source })?;
        assert_eq!(again, out);
        Ok(out)
    }

    #[test]
    fn round_trip_at_segment_boundaries() {
        let keys = Arc::new(Keys::create(b"pw", [7; 16], fast()).unwrap());
        let seg = DEFAULT_SEGMENT as usize;
        for len in [0, 1, seg - 1, seg, seg + 1, 3 * seg, 3 * seg + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let s = sealed(&plain, &keys);
            assert_eq!(open_all(&s, b"pw").unwrap(), plain, "length {len}");
            let h = SealHeader::decode(&s).unwrap();
            assert_eq!(h.plain_len(s.len() as u64).unwrap(), len as u64);
            assert_eq!(sealed_len(len as u64, h.segment_size), s.len() as u64);
        }
    }

    #[test]
    fn wrong_passphrase_is_told_apart() {
        let keys = Arc::new(Keys::create(b"right", [1; 16], fast()).unwrap());
        let s = sealed(b"secret", &keys);
        assert!(matches!(
            open_all(&s, b"wrong"),
            Err(ContainerError::WrongPassphrase)
        ));
    }

    #[test]
    fn cut_after_a_segment_fails() {
        let keys = Arc::new(Keys::create(b"pw", [1; 16], fast()).unwrap());
        let seg = DEFAULT_SEGMENT as usize;
        let s = sealed(&vec![5u8; 3 * seg], &keys);
        let cut = &s[..SEAL_HEADER_LEN + 2 * (seg + TAG_LEN)];
        assert!(open_all(cut, b"pw").is_err());
    }

    #[test]
    fn swapped_segments_fail() {
        let keys = Arc::new(Keys::create(b"pw", [1; 16], fast()).unwrap());
        let seg = DEFAULT_SEGMENT as usize;
        let plain: Vec<u8> = (0..3 * seg).map(|i| (i / seg) as u8).collect();
        let mut s = sealed(&plain, &keys);
        let full = seg + TAG_LEN;
        let a = s[SEAL_HEADER_LEN..SEAL_HEADER_LEN + full].to_vec();
        let b = s[SEAL_HEADER_LEN + full..SEAL_HEADER_LEN + 2 * full].to_vec();
        s[SEAL_HEADER_LEN..SEAL_HEADER_LEN + full].copy_from_slice(&b);
        s[SEAL_HEADER_LEN + full..SEAL_HEADER_LEN + 2 * full].copy_from_slice(&a);
        assert!(open_all(&s, b"pw").is_err());
    }

    #[test]
    fn segment_from_another_image_fails() {
        let k1 = Arc::new(Keys::create(b"pw", [1; 16], fast()).unwrap());
        let k2 = Arc::new(Keys::create(b"pw", [1; 16], fast()).unwrap());
        let mut s1 = sealed(&[1u8; 100], &k1);
        let s2 = sealed(&[1u8; 100], &k2);
        s1[SEAL_HEADER_LEN..].copy_from_slice(&s2[SEAL_HEADER_LEN..]);
        assert!(open_all(&s1, b"pw").is_err());
    }

    #[test]
    fn hostile_costs_are_refused_before_deriving() {
        let keys = Keys::create(b"pw", [1; 16], fast()).unwrap();
        let mut h = *keys.header();
        h.kdf.memory_kib = MAX_KDF_MEMORY_KIB + 1;
        assert!(SealHeader::decode(&h.encode()).is_err());
        h.kdf = fast();
        h.kdf.passes = 0;
        assert!(SealHeader::decode(&h.encode()).is_err());
    }

    #[test]
    fn blob_round_trip_and_binding() {
        let keys = Keys::create(b"pw", [1; 16], fast()).unwrap();
        let s = keys.seal_blob(b"img", b"{\"a\":1}");
        assert_eq!(&keys.open_blob(b"img", &s).unwrap()[..], b"{\"a\":1}");
        assert!(keys.open_blob(b"other", &s).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_flipped_byte_is_an_error(len in 0usize..200_000, at in proptest::prelude::any::<proptest::sample::Index>(), bit in 0u8..8) {
            let keys = Arc::new(Keys::create(b"pw", [3; 16], fast()).unwrap());
            let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut s = sealed(&plain, &keys);
            let i = at.index(s.len());
            s[i] ^= 1 << bit;
            proptest::prop_assert!(open_all(&s, b"pw").is_err());
        }

        #[test]
        fn header_decode_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = SealHeader::decode(&b);
        }
    }
}
