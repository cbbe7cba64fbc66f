//! Resource files (`.fdc.sf`, `.sbc.sf`, `.pbc.sf`, `.pb2.sf`, `.fbb.sf`, `.jbc.sf`): a header
//! (`FS3_ResFileMetadata`) followed by cluster groups. Each group starts with a lock block and
//! a metadata block (holding the allocation bitmap) per cluster, then the resources of its
//! clusters. This module computes where a resource lies inside its resource file.

use crate::bytes::{corrupt, field};
use crate::fs_header::{FsHeader, Version};
use lifeboat_fs::bytes::u32_at;
use lifeboat_fs::FsError;

/// Signature of a VMFS6 resource file header (`rfmd`).
pub const RFMD_SIGNATURE: u32 = 0x7266_6D64;
/// Bytes of the header that are read.
pub const HEADER_LEN: usize = 0x58;

/// The resource file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceHeader {
    /// Resources per cluster.
    pub resources_per_cluster: u32,
    /// Clusters per cluster group.
    pub clusters_per_group: u32,
    /// Offset of the first cluster group in the file.
    pub cluster_group_offset: u32,
    /// Size of one resource.
    pub resource_size: u32,
    /// Size of one cluster group.
    pub cluster_group_size: u32,
    /// Total number of resources.
    pub num_resources: u64,
    /// Number of cluster groups.
    pub num_cluster_groups: u32,
    /// Flags (bit 1: the clusters nest inside a parent resource's groups).
    pub flags: u32,
    /// VMFS6: offset of a child header in the same file (`.fbb.sf`: small file blocks).
    pub child_meta_offset: u32,
    /// Size of the per-cluster lock and metadata blocks.
    pub cluster_header_size: u64,
}

/// Parses a resource file header.
pub fn parse(b: &[u8], h: &FsHeader, name: &str) -> Result<ResourceHeader, FsError> {
    let what = format!("{name} resource header");
    let w = what.as_str();
    let sig = field(u32_at, b, 0x20, w)?;
    if h.version == Version::Vmfs6 && sig != RFMD_SIGNATURE {
        return Err(corrupt(format!(
            "{name}: resource header signature {sig:#010x} is not `rfmd`"
        )));
    }
    let r = ResourceHeader {
        resources_per_cluster: field(u32_at, b, 0x00, w)?,
        clusters_per_group: field(u32_at, b, 0x04, w)?,
        cluster_group_offset: field(u32_at, b, 0x08, w)?,
        resource_size: field(u32_at, b, 0x0c, w)?,
        cluster_group_size: field(u32_at, b, 0x10, w)?,
        num_resources: u64::from(field(u32_at, b, 0x14, w)?)
            | (u64::from(field(u32_at, b, 0x1c, w)?) << 32),
        num_cluster_groups: field(u32_at, b, 0x18, w)?,
        flags: field(u32_at, b, 0x28, w)?,
        child_meta_offset: field(u32_at, b, 0x34, w)?,
        cluster_header_size: match h.version {
            Version::Vmfs5 => 1024,
            Version::Vmfs6 => 2 * u64::from(h.md_alignment),
        },
    };
    Ok(r)
}

impl ResourceHeader {
    /// Checks that the resources can be located with the plain group layout and that the
    /// layout stays inside a file of `file_len` bytes.
    pub fn check_layout(&self, file_len: u64, name: &str) -> Result<(), FsError> {
        if self.resources_per_cluster == 0 || self.clusters_per_group == 0 {
            return Err(corrupt(format!(
                "{name}: resource header has empty clusters"
            )));
        }
        if self.flags & 2 != 0 {
            return Err(corrupt(format!(
                "{name}: nested cluster groups (flags {:#x}) are not understood",
                self.flags
            )));
        }
        let cluster_bytes = u128::from(self.resources_per_cluster) * u128::from(self.resource_size);
        let need = u128::from(self.clusters_per_group)
            * (u128::from(self.cluster_header_size) + cluster_bytes);
        if self.resource_size == 0 || need > u128::from(self.cluster_group_size) {
            return Err(corrupt(format!(
                "{name}: cluster group of {} bytes cannot hold {} clusters of {} resources of {} \
                 bytes",
                self.cluster_group_size,
                self.clusters_per_group,
                self.resources_per_cluster,
                self.resource_size
            )));
        }
        let capacity = u64::from(self.num_cluster_groups)
            * u64::from(self.clusters_per_group)
            * u64::from(self.resources_per_cluster);
        if self.num_resources > capacity {
            return Err(corrupt(format!(
                "{name}: {} resources do not fit {} cluster groups",
                self.num_resources, self.num_cluster_groups
            )));
        }
        // The last cluster group may be cut short: the last resource must fit the file.
        if self.num_resources > 0 {
            let last = self.num_resources - 1;
            let rpc = u64::from(self.resources_per_cluster);
            let end = self.offset_of(last / rpc, last % rpc, name)? + u64::from(self.resource_size);
            if end > file_len {
                return Err(corrupt(format!(
                    "{name}: {} resources end at byte {end}, beyond the file ({file_len} bytes)",
                    self.num_resources
                )));
            }
        }
        Ok(())
    }

    /// Offset in the resource file of resource `resource` of cluster `cluster`.
    pub fn offset_of(&self, cluster: u64, resource: u64, name: &str) -> Result<u64, FsError> {
        let rpc = u64::from(self.resources_per_cluster);
        let cpg = u64::from(self.clusters_per_group);
        if resource >= rpc || cluster >= u64::from(self.num_cluster_groups) * cpg {
            return Err(corrupt(format!(
                "{name}: address of cluster {cluster} resource {resource} lies outside the file"
            )));
        }
        let rs = u128::from(self.resource_size);
        let (cpg, rpc) = (u128::from(cpg), u128::from(rpc));
        let (cluster, resource) = (u128::from(cluster), u128::from(resource));
        let off = u128::from(self.cluster_group_offset)
            + (cluster / cpg) * u128::from(self.cluster_group_size)
            + cpg * u128::from(self.cluster_header_size)
            + (cluster % cpg) * rpc * rs
            + resource * rs;
        u64::try_from(off).map_err(|_| corrupt(format!("{name}: resource offset overflows")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(v: Version) -> FsHeader {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(&crate::fs_header::VMFS_MAGIC.to_le_bytes());
        let major: u32 = if v == Version::Vmfs5 { 14 } else { 24 };
        b[4..8].copy_from_slice(&major.to_le_bytes());
        b[0xa1..0xa9].copy_from_slice(&(1u64 << 20).to_le_bytes());
        b[0xd5..0xd9].copy_from_slice(&64u32.to_le_bytes());
        b[0x134..0x138].copy_from_slice(&4096u32.to_le_bytes());
        crate::fs_header::parse_bytes(&b).unwrap()
    }

    #[test]
    fn resource_offsets_follow_the_group_layout() {
        // The VMFS5 file descriptor resource file of a 2 GiB ESXi volume.
        let mut b = vec![0u8; HEADER_LEN];
        for (off, v) in [
            (0x00, 200u32),
            (0x04, 64),
            (0x08, 65536),
            (0x0c, 2048),
            (0x10, 26_279_936),
            (0x14, 20352),
            (0x18, 2),
        ] {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        let r = parse(&b, &header(Version::Vmfs5), "fdc").unwrap();
        r.check_layout(41_877_504, "fdc").unwrap();
        assert_eq!(r.offset_of(0, 0, "fdc").unwrap(), 65536 + 64 * 1024);
        assert_eq!(
            r.offset_of(65, 3, "fdc").unwrap(),
            65536 + 26_279_936 + 64 * 1024 + 200 * 2048 + 3 * 2048
        );
        assert!(r.offset_of(0, 200, "fdc").is_err());
        assert!(r.offset_of(128, 0, "fdc").is_err());
        assert!(r.check_layout(40_000_000, "fdc").is_err());
        let mut v6 = b.clone();
        v6[0x20..0x24].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse(&v6, &header(Version::Vmfs6), "fdc").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120),
                                         c in any::<u64>(), r in any::<u64>()) {
            for v in [Version::Vmfs5, Version::Vmfs6] {
                if let Ok(h) = parse(&b, &header(v), "x") {
                    let _ = h.check_layout(u64::MAX, "x");
                    let _ = h.offset_of(c, r, "x");
                }
            }
        }
    }
}
