//! Fuzzes the restore-side checks of a disk record: the plan of a whole-disk restore (through
//! `lifeboat_engine::fuzzing`). Input: the target size (8 bytes, little-endian), the `--grow`
//! mode (1 byte: 0 none, 1 last, 2 proportional), then the disk record JSON as an image
//! stores it.
//!
//! Nothing may panic (no overflow, no slice out of range), and every plan that is made keeps
//! each partition and each written byte inside the target, partitions and moved data apart,
//! and sizes as saved unless grown (`plan_whole_disk` returns `Err` describing a broken rule).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap());
    if let Err(broken) = lifeboat_engine::fuzzing::plan_whole_disk(&data[9..], size, data[8]) {
        panic!("{broken}");
    }
});
