//! Fuzzes the XFS scanner: the input bytes are the volume (see `lifeboat_fuzz::drain`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_fuzz::drain(&lifeboat_fs_xfs::XfsScanner, data);
});
