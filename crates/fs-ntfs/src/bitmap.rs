//! The cluster bitmap `$Bitmap`: bit `i` is bit `i % 8` of byte `i / 8` (least significant
//! bit first); a set bit means cluster `i` is in use.
//!
//! The functions take the number of meaningful bits, so the padding bits past the last
//! cluster (the bitmap is allocated in whole 8-byte units) are ignored.

pub use lifeboat_fs::bitmap::{count_set, next_run, test};
