//! The lifeboat image container.
//!
//! One job: turn the used extents of one or more disks into a single byte stream and back.
//! The stream is written strictly sequentially (it works into a pipe or an object upload),
//! holds the data in independently zstd-compressed chunks with CRC32s, compressed and
//! decompressed in parallel, streams its block map chunk by chunk (memory does not grow with
//! the disk size), ends with an index so one block can be found without reading everything,
//! and carries the JSON [`Manifest`] as its last record. The byte layout is specified in
//! `docs/FORMAT.md`.
//!
//! ```
//! use lifeboat_container::{ImageWriter, WriterOptions, StreamReader, Record};
//! use lifeboat_fs::Extent;
//! let disk = vec![7u8; 1 << 16];
//! let mut w = ImageWriter::new(Vec::new(), WriterOptions::default()).unwrap();
//! w.begin_disk(0, b"{}".to_vec()).unwrap();
//! w.add_extent(Extent::new(4096, 8192), |buf, off| {
//!     buf.copy_from_slice(&disk[off as usize..off as usize + buf.len()]);
//!     Ok(())
//! }).unwrap();
//! let (bytes, summary) = w.finish(|_| Ok(b"{}".to_vec())).unwrap();
//! assert_eq!(summary.data_bytes, 8192);
//! let mut r = StreamReader::new(&bytes[..]).unwrap();
//! let mut records = 0;
//! while let Some(rec) = r.next_record().unwrap() {
//!     if let Record::Chunk(c) = &rec { assert_eq!(c.extents, vec![Extent::new(4096, 8192)]); }
//!     records += 1;
//! }
//! assert!(records >= 4);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decode;
pub mod digest;
mod error;
pub mod format;
mod index;
mod manifest;
mod reader;
pub mod seal;
mod writer;

pub use decode::{decode_parallel, decode_parallel_with, ChunkWorker, DecodeError, Decoded};
pub use error::{chain_text, ContainerError, Result};
pub use format::{IndexEntry, Tail};
pub use index::IndexedImage;
pub use manifest::*;
pub use reader::{EncodedChunk, Record, StreamReader};
pub use writer::{is_zero, DiskTotals, ImageWriter, Summary, WriterOptions};
