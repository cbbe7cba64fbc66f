//! The exFAT allocation bitmap: bit `i` (least significant bit first in each byte) tells
//! whether heap cluster `i + 2` is in use. Bits past the cluster count are padding and are
//! ignored.

pub use lifeboat_fs::bitmap::{count_set, next_run};
