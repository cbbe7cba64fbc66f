//! The image digest (`docs/FORMAT.md` §6.1): SHA-256 over the disk descriptions and the
//! per-chunk digests, in stream order. It covers every byte a restore writes and where it
//! goes, so an operator who noted it after the save can prove later that an image is the one
//! saved (`lifeboat check --digest HEX`), which CRC32s cannot: anyone can recompute those.

use lifeboat_fs::Extent;
use ring::digest::{Context, SHA256};

/// Domain separation of the image digest.
const IMAGE_DOMAIN: &[u8] = b"lifeboat image digest 1\n";
/// Domain separation of a chunk digest.
const CHUNK_DOMAIN: &[u8] = b"lifeboat chunk digest 1\n";

/// SHA-256 of one chunk: its disk, sequence number, extent table and uncompressed data.
pub fn chunk_digest(disk: u32, seq: u64, extents: &[Extent], data: &[u8]) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(CHUNK_DOMAIN);
    c.update(&disk.to_le_bytes());
    c.update(&seq.to_le_bytes());
    c.update(&(extents.len() as u64).to_le_bytes());
    for e in extents {
        c.update(&e.offset.to_le_bytes());
        c.update(&e.len.to_le_bytes());
    }
    c.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// Accumulates the image digest record by record, in stream order.
#[derive(Clone)]
pub struct ImageDigest(Context);

impl Default for ImageDigest {
    fn default() -> Self {
        let mut c = Context::new(&SHA256);
        c.update(IMAGE_DOMAIN);
        ImageDigest(c)
    }
}

impl ImageDigest {
    /// A `DISK` record: its index and JSON body.
    pub fn disk(&mut self, index: u32, json: &[u8]) {
        self.0.update(b"D");
        self.0.update(&index.to_le_bytes());
        self.0.update(&(json.len() as u64).to_le_bytes());
        self.0.update(json);
    }

    /// A chunk, by its [`chunk_digest`].
    pub fn chunk(&mut self, digest: &[u8; 32]) {
        self.0.update(b"C");
        self.0.update(digest);
    }

    /// The digest as 64 lowercase hex digits.
    pub fn hex(self) -> String {
        self.0
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for ImageDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageDigest(..)")
    }
}
