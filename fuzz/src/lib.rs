//! Shared checks of the scanner fuzz targets.

use lifeboat_fs::Scanner;

/// Runs `scanner` over `data` as a volume: probe, open, and drain every extent. Nothing may
/// panic; the stream must end within a bounded number of calls; extents must be non-empty,
/// sorted, merged and inside the volume, and add up to the reported used bytes.
pub fn drain(scanner: &dyn Scanner, data: &[u8]) {
    drain_volume(scanner, std::sync::Arc::new(data.to_vec()));
}

/// [`drain`] over a volume described by [`SparseVolume`] pieces (for file systems whose
/// metadata lies megabytes apart: libFuzzer keeps inputs under 1 MiB).
pub fn drain_sparse(scanner: &dyn Scanner, data: &[u8]) {
    if let Some(v) = SparseVolume::parse(data) {
        drain_volume(scanner, std::sync::Arc::new(v));
    }
}

/// A volume given as sparse pieces: an 8-byte little-endian volume length (at most
/// [`SparseVolume::MAX_LEN`]), then pieces of a 4-byte little-endian block number (4 KiB
/// blocks), a 2-byte little-endian length (at most 4096) and that many bytes, placed at the
/// block's start (a later piece replaces an earlier one of the same block); bytes no piece
/// covers read as zeros.
pub struct SparseVolume {
    len: u64,
    blocks: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl SparseVolume {
    /// The largest volume a fuzz input may describe.
    pub const MAX_LEN: u64 = 64 << 20;
    const BLOCK: u64 = 4096;

    /// Parses an input; `None` when it is too short or the length is out of range.
    pub fn parse(data: &[u8]) -> Option<SparseVolume> {
        let len = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        if len > Self::MAX_LEN {
            return None;
        }
        let mut blocks = std::collections::BTreeMap::new();
        let mut rest = &data[8..];
        while rest.len() >= 6 {
            let block = u64::from(u32::from_le_bytes(rest[..4].try_into().ok()?));
            let n = usize::from(u16::from_le_bytes([rest[4], rest[5]])).min(Self::BLOCK as usize);
            let bytes = &rest[6..(6 + n).min(rest.len())];
            rest = &rest[(6 + n).min(rest.len())..];
            if block * Self::BLOCK < len {
                blocks.insert(block, bytes.to_vec());
            }
        }
        Some(SparseVolume { len, blocks })
    }

    /// The input describing `volume` (its non-zero 4 KiB blocks), for making seeds.
    pub fn encode(volume: &[u8]) -> Vec<u8> {
        let mut out = (volume.len() as u64).to_le_bytes().to_vec();
        for (i, b) in volume.chunks(Self::BLOCK as usize).enumerate() {
            if b.iter().any(|&x| x != 0) {
                out.extend_from_slice(&(i as u32).to_le_bytes());
                out.extend_from_slice(&(b.len() as u16).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
        out
    }
}

impl lifeboat_fs::ReadAt for SparseVolume {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.fill(0);
        let end = offset + buf.len() as u64;
        let first = offset / Self::BLOCK;
        for (&b, bytes) in self.blocks.range(first..end.div_ceil(Self::BLOCK)) {
            let start = b * Self::BLOCK;
            let lo = start.max(offset);
            let hi = (start + bytes.len() as u64).min(end);
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&bytes[(lo - start) as usize..(hi - start) as usize]);
            }
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// [`drain`] over any volume.
pub fn drain_volume(scanner: &dyn Scanner, volume: lifeboat_fs::SharedVolume) {
    let _ = scanner.probe(&*volume);
    let Ok(mut stream) = scanner.open(volume.clone()) else {
        return;
    };
    let info = stream.info().clone();
    assert!(info.total_bytes <= volume.len());
    let bound = volume.len() / 512 + 2;
    let mut prev_end = None;
    let mut sum = 0u64;
    for _ in 0..bound {
        match stream.next_extent() {
            Ok(Some(e)) => {
                assert!(e.len > 0 && e.end() <= volume.len());
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
