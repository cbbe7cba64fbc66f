//! VMFS5 allocation bitmaps: every cluster of a resource file has a lock block and a
//! metadata block; the metadata block holds the cluster number, its total and free item
//! counts and a bitmap in which a set bit is a FREE item. The file block bitmap (`.fbb.sf`)
//! tells which file blocks are allocated.

use crate::bytes::{corrupt, field};
use crate::resource::ResourceHeader;
use lifeboat_fs::bytes::u32_at;
use lifeboat_fs::FsError;

/// Offset of the bitmap metadata inside a cluster's header (after the lock block).
pub const META_OFFSET: usize = 512;
/// Most items one cluster bitmap can describe (bitmap of 0x1f0 bytes).
pub const MAX_ITEMS: u32 = 0x1f0 * 8;

/// Offset of cluster `cluster`'s header in the resource file.
pub fn cluster_header_offset(h: &ResourceHeader, cluster: u64) -> u64 {
    let cpg = u64::from(h.clusters_per_group.max(1));
    u64::from(h.cluster_group_offset)
        + (cluster / cpg) * u64::from(h.cluster_group_size)
        + (cluster % cpg) * h.cluster_header_size
}

/// Decodes one cluster header (`buf` starts at the header, at least 1024 bytes) and calls
/// `used(item)` for every allocated item of the cluster (item numbers relative to the
/// cluster). Checks the counters against the bits.
pub fn allocated_items(
    buf: &[u8],
    cluster: u64,
    items_per_cluster: u32,
    mut used: impl FnMut(u32),
) -> Result<(), FsError> {
    let what = "file block bitmap cluster";
    let id = field(u32_at, buf, META_OFFSET, what)?;
    let total = field(u32_at, buf, META_OFFSET + 4, what)?;
    let free = field(u32_at, buf, META_OFFSET + 8, what)?;
    if u64::from(id) != cluster || total > items_per_cluster || total > MAX_ITEMS || free > total {
        return Err(corrupt(format!(
            "file block bitmap: cluster {cluster} header says cluster {id}, {total} items, \
             {free} free"
        )));
    }
    let bits = buf
        .get(META_OFFSET + 16..META_OFFSET + 16 + total.div_ceil(8) as usize)
        .ok_or_else(|| corrupt("file block bitmap: short cluster header"))?;
    let mut free_bits = 0u32;
    for item in 0..total {
        if bits[(item / 8) as usize] & (1 << (item % 8)) != 0 {
            free_bits += 1;
        } else {
            used(item);
        }
    }
    if free_bits != free {
        return Err(corrupt(format!(
            "file block bitmap: cluster {cluster} counts {free} free items but its bitmap has \
             {free_bits}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cluster(id: u32, total: u32, free_items: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[512..516].copy_from_slice(&id.to_le_bytes());
        b[516..520].copy_from_slice(&total.to_le_bytes());
        b[520..524].copy_from_slice(&(free_items.len() as u32).to_le_bytes());
        for &i in free_items {
            b[528 + (i / 8) as usize] |= 1 << (i % 8);
        }
        b
    }

    #[test]
    fn clear_bits_are_allocated_and_counters_must_agree() {
        let b = cluster(3, 10, &[0, 2, 9]);
        let mut got = Vec::new();
        allocated_items(&b, 3, 200, |i| got.push(i)).unwrap();
        assert_eq!(got, vec![1, 3, 4, 5, 6, 7, 8]);
        assert!(allocated_items(&b, 4, 200, |_| {}).is_err());
        let mut bad = b.clone();
        bad[520] = 2;
        assert!(allocated_items(&bad, 3, 200, |_| {}).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_cluster_headers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1200),
                                                 c in any::<u64>(), n in any::<u32>()) {
            let _ = allocated_items(&b, c, n, |_| {});
        }
    }
}
