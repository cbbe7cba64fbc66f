//! Reading Clonezilla and MIRACLE System Savior images.
//!
//! One job: read what Clonezilla saved — an image *directory* with the lists of disks and
//! partitions (`disk`, `parts`), each disk's partition table and boot areas (`*-pt.sf`,
//! `*-mbr`, `*-hidden-data-after-mbr`, `*-gpt-1st`/`*-gpt-2nd`, `*-ebr`) and each partition's
//! image: a partclone image (format v1 or v2) of its used blocks, a raw `dd` copy, or, for
//! swap, just its UUID and label — compressed with gzip, zstd, xz, bzip2 or lz4 and possibly
//! split into `.aa`, `.ab`, … pieces.
//!
//! - [`CloneImage`] opens a directory through [`ImageFiles`] ([`LocalDir`] for a local one)
//!   and describes its [`DiskInfo`]s and [`PartImage`]s.
//! - [`PartcloneReader`] reads one partclone image from any [`std::io::Read`]: [`Header`],
//!   [`Bitmap`], then the used blocks run by run, verifying every checksum.
//! - [`DiskHead`] rebuilds a saved disk's boot areas (MBR, boot loader gap, GPT copies,
//!   the EBR chain) where they lay, for a restore or an import.
//! - [`compress::open`] picks the decoder from a file's magic bytes (pure-Rust decoders).
//! - [`writer::ImageWriter`] writes partclone images (v1 or v2) for tests and conversion.
//!
//! Everything here parses untrusted bytes: lengths are checked before use, memory is bounded
//! ([`Limits`] for the bitmap, fixed caps for text files), errors are typed and name the file
//! and byte offset, and nothing panics or prints.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lifeboat_clonezilla::{CloneImage, Limits, LocalDir};
//!
//! let img = CloneImage::open(Arc::new(LocalDir::new("/home/partimag/2026-12-01-10-img")))?;
//! for part in &img.parts {
//!     let mut r = img.partclone(part, Limits::default())?;
//!     println!("{}: {} of {} blocks used", part.name, r.bitmap().used(), r.bitmap().blocks());
//!     r.verify_rest()?;
//! }
//! # Ok::<(), lifeboat_clonezilla::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod ahead;
pub mod compress;
mod crc;
mod dir;
mod error;
pub mod layout;
pub mod partclone;
pub mod sfdisk;
pub mod writer;

pub use compress::Compression;
pub use dir::{
    looks_like_clonezilla, split_part_name, CloneImage, DiskInfo, ImageFiles, LocalDir,
    PartContent, PartImage, MAX_BOOT_FILE_LEN, MAX_TEXT_LEN,
};
pub use error::{Error, Result};
pub use layout::{swap_header, DiskHead};
pub use partclone::{Bitmap, BitmapMode, Checksum, Format, Header, Limits, PartcloneReader, Run};
pub use sfdisk::{SfdiskPartition, SfdiskTable};
