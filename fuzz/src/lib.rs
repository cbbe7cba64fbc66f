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

/// Runs a volume manager over `data` as one member: probe, group key, layout, and when laid
/// out, the member's used extents through [`lifeboat_volume::member_used`] with a scanner
/// that reads the first and last sector of each logical volume and calls it all used. Nothing
/// may panic; extents stay inside the member, sorted and merged, and end.
pub fn volume_member(manager: &dyn lifeboat_volume::VolumeManager, data: &[u8]) {
    use lifeboat_fs::{Extent, FsError, FsInfo, ReadAt, SharedVolume, UsedBlocks};
    struct All(FsInfo, Option<Extent>);
    impl UsedBlocks for All {
        fn info(&self) -> &FsInfo {
            &self.0
        }
        fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
            Ok(self.1.take())
        }
    }
    let volume: SharedVolume = std::sync::Arc::new(data.to_vec());
    let _ = manager.probe(&*volume);
    let _ = manager.group_key(&*volume);
    let scan: lifeboat_volume::Scan = std::sync::Arc::new(|v: SharedVolume| {
        let mut b = [0u8; 512];
        let n = v.len();
        let _ = v.read_exact_at(&mut b[..n.min(512) as usize], 0);
        let _ = v.read_exact_at(&mut b[..n.min(512) as usize], n.saturating_sub(512));
        let info = FsInfo {
            total_bytes: n,
            used_bytes: n,
            ..FsInfo::default()
        };
        let all = (n > 0).then(|| Extent::new(0, n));
        (Box::new(All(info, all)) as Box<dyn UsedBlocks>, false)
    });
    for layout in manager.assemble(std::slice::from_ref(&volume)) {
        let Ok(layout) = layout else { continue };
        let Ok(mut used) = lifeboat_volume::member_used(&volume, layout, scan.clone()) else {
            continue;
        };
        let mut prev: Option<u64> = None;
        for _ in 0..(data.len() / 512 + 4) {
            match used.next_extent() {
                Ok(Some(e)) => {
                    assert!(e.len > 0 && e.end() <= data.len() as u64, "{e:?}");
                    assert!(prev.is_none_or(|p| e.offset > p), "not sorted and merged");
                    prev = Some(e.end());
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
}
