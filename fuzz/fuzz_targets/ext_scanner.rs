//! Fuzzes the ext scanner: the input bytes are the volume. Probe, open and drain every extent;
//! nothing may panic, and the stream must end within a bounded number of calls with sorted
//! extents inside the volume.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_fs::Scanner;
use lifeboat_fs_ext::ExtScanner;

fuzz_target!(|data: &[u8]| {
    let volume: Vec<u8> = data.to_vec();
    let scanner = ExtScanner;
    let _ = scanner.probe(&volume);
    let Ok(mut stream) = scanner.open(&volume) else {
        return;
    };
    let info = stream.info().clone();
    assert!(info.total_bytes <= volume.len() as u64);
    let bound = info.total_bytes / 1024 + 2;
    let mut prev_end = None;
    let mut sum = 0u64;
    for _ in 0..bound {
        match stream.next_extent() {
            Ok(Some(e)) => {
                assert!(e.len > 0 && e.end() <= volume.len() as u64);
                if let Some(p) = prev_end {
                    assert!(e.offset > p, "extents not sorted and merged");
                }
                prev_end = Some(e.end());
                sum += e.len;
            }
            Ok(None) => {
                assert_eq!(sum, info.used_bytes);
                return;
            }
            Err(_) => return,
        }
    }
    panic!("stream did not end within {bound} calls");
});
