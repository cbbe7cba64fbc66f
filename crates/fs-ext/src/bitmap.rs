//! Block (cluster) bitmaps: bit `i` is bit `i % 8` of byte `i / 8` (least significant bit
//! first); a set bit means the cluster is in use.
//!
//! All functions take the number of meaningful bits, so the padding bits past the end of a
//! partial last group (which mke2fs sets) are ignored.

pub use lifeboat_fs::bitmap::{count_set, next_run, set_range};
