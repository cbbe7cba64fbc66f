//! Shared checks of the scanner fuzz targets.

use lifeboat_fs::Scanner;

/// Runs `scanner` over `data` as a volume: probe, open, and drain every extent. Nothing may
/// panic; the stream must end within a bounded number of calls; extents must be non-empty,
/// sorted, merged and inside the volume, and add up to the reported used bytes.
pub fn drain(scanner: &dyn Scanner, data: &[u8]) {
    let volume = std::sync::Arc::new(data.to_vec());
    let _ = scanner.probe(&*volume);
    let Ok(mut stream) = scanner.open(volume.clone()) else {
        return;
    };
    let info = stream.info().clone();
    assert!(info.total_bytes <= volume.len() as u64);
    let bound = volume.len() as u64 / 512 + 2;
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
}
