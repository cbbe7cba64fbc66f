//! Fuzzes filesystem detection: the signatures of a volume, its blkid-style content type and
//! the choice between a scanner and a raw copy (which only probes) never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_fs::{content_type, detect, md_superblock_at, signatures, Scanner};

fuzz_target!(|data: &[u8]| {
    let _ = signatures(&data);
    let _ = content_type(&data);
    let _ = md_superblock_at(&data);
    let scanners: [&dyn Scanner; 4] = [
        &lifeboat_fs_ext::ExtScanner,
        &lifeboat_fs_ntfs::NtfsScanner,
        &lifeboat_fs_fat::FatScanner,
        &lifeboat_fs_xfs::XfsScanner,
    ];
    let _ = detect(&data, &scanners);
});
