//! VMFS block addresses: opaque 32-bit (VMFS5) or 64-bit (VMFS6) words whose low three bits
//! give the address type and whose other bits select a block, or a cluster and a resource in
//! one of the resource files.

use crate::fs_header::Version;

/// Address types (low three bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    /// Null / invalid.
    Invalid,
    /// File block (VMFS5) or small file block (VMFS6).
    FileBlock,
    /// Sub-block (in `.sbc.sf`).
    SubBlock,
    /// Pointer block (in `.pbc.sf`).
    PointerBlock,
    /// File descriptor (in `.fdc.sf`).
    FileDescriptor,
    /// Second-level pointer block (in `.pb2.sf`).
    Pointer2Block,
    /// Journal block (in `.jbc.sf`).
    JournalBlock,
    /// VMFS6 large file block.
    LargeFileBlock,
}

/// The type of an address.
pub fn addr_type(a: u64) -> AddrType {
    match a & 7 {
        1 => AddrType::FileBlock,
        2 => AddrType::SubBlock,
        3 => AddrType::PointerBlock,
        4 => AddrType::FileDescriptor,
        5 => AddrType::Pointer2Block,
        6 => AddrType::JournalBlock,
        7 => AddrType::LargeFileBlock,
        _ => AddrType::Invalid,
    }
}

/// VMFS5 file block number.
pub fn fb5_block(a: u64) -> u64 {
    (a >> 6) & 0x3FF_FFFF
}

/// VMFS6 small file block: (cluster, resource).
pub fn sfb6(a: u64) -> (u64, u64) {
    ((a >> 15) & 0x7FFF_FFFF, (a >> 51) & 0x1FFF)
}

/// VMFS6 large file block number.
pub fn lfb6_block(a: u64) -> u64 {
    (a >> 15) & 0x7FFF_FFFF
}

/// (cluster, resource) of a file descriptor address.
pub fn fd_parts(a: u64) -> (u64, u64) {
    ((a >> 6) & 0xFFFF, (a >> 22) & 0x3FF)
}

/// A file descriptor address from its cluster and resource (both must fit their fields).
pub fn fd_make(cluster: u64, resource: u64) -> Option<u64> {
    (cluster <= 0xFFFF && resource <= 0x3FF).then_some(4 | (cluster << 6) | (resource << 22))
}

/// (cluster, resource) of a sub-block, pointer block or second-level pointer block address.
pub fn resource_parts(a: u64, version: Version, dense_sbpc: bool) -> (u64, u64) {
    match version {
        Version::Vmfs5 => {
            let cluster = (a >> 6) & 0x3F_FFFF;
            let mut resource = (a >> 28) & 0xF;
            if dense_sbpc && addr_type(a) == AddrType::SubBlock {
                resource |= (a & 0b11000) << 1;
            }
            (cluster, resource)
        }
        Version::Vmfs6 => ((a >> 6) & 0xF_FFFF_FFFF, (a >> 56) & 0xFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_addresses_decode() {
        // The root directory and the system file descriptors of every VMFS volume.
        assert_eq!(fd_parts(0x0000_0004), (0, 0));
        assert_eq!(fd_parts(0x0080_0004), (0, 2));
        assert_eq!(fd_make(0, 2), Some(0x0080_0004));
        assert_eq!(addr_type(0x0180_0004), AddrType::FileDescriptor);
        assert_eq!(fb5_block(1 | (77 << 6) | 0x20), 77);
        assert_eq!(sfb6(1 | (3 << 15) | (193 << 51)), (3, 193));
        assert_eq!(
            resource_parts(2 | (35 << 6) | (1 << 56), Version::Vmfs6, false),
            (35, 1)
        );
        assert_eq!(
            resource_parts(2 | 0b11000 | (5 << 6) | (3 << 28), Version::Vmfs5, true),
            (5, 3 | 0b110000)
        );
    }

    proptest! {
        #[test]
        fn fd_addresses_round_trip(c in 0u64..=0xFFFF, r in 0u64..=0x3FF) {
            let a = fd_make(c, r).unwrap();
            prop_assert_eq!(addr_type(a), AddrType::FileDescriptor);
            prop_assert_eq!(fd_parts(a), (c, r));
        }
    }
}
