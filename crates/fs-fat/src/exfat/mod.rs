//! The exFAT used-cluster scanner.
//!
//! Kept: the main and backup boot regions (12 sectors each), the FAT(s), and the heap
//! clusters marked in the active allocation bitmap, which is found through the root
//! directory. Opening checks the main boot region's checksum, walks the root directory once,
//! and walks the bitmap once to count the used clusters; the stream walks the bitmap again,
//! reading it in batches of [`BITMAP_BATCH_BYTES`].

pub mod boot;
pub mod chain;
pub mod directory;
mod scanner;

pub use boot::ExfatBoot;
pub use scanner::{read_boot, ExfatScanner, ExfatUsedBlocks, BITMAP_BATCH_BYTES};
