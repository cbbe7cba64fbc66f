//! The filesystem descriptor (`FS3_Descriptor`) at byte 0x200000 of the logical volume: magic,
//! version, UUID, label, block sizes and where the system file descriptors live.

use crate::bytes::{c_string, corrupt, field, vmware_uuid};
use lifeboat_fs::bytes::{u16_at, u32_at, u64_at, u8_at};
use lifeboat_fs::{FsError, ReadAt};

/// Offset of the descriptor in the logical volume.
pub const FS_HEADER_OFFSET: u64 = 0x20_0000;
/// Magic of a VMFS datastore.
pub const VMFS_MAGIC: u32 = 0x2FAB_F15E;
/// Magic of a VMFS-L (ESXi system/OSDATA) volume.
pub const VMFSL_MAGIC: u32 = 0x2FAB_F15F;
/// First major version that is VMFS6.
pub const VMFS6_MAJOR: u32 = 24;
/// The DENSE_SBPC configuration bit.
pub const CONFIG_DENSE_SBPC: u32 = 0x4;

/// VMFS major generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// VMFS5 (on-disk major version 14).
    Vmfs5,
    /// VMFS6 (on-disk major version 24).
    Vmfs6,
}

/// The fields of the filesystem descriptor the scanner relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsHeader {
    /// VMFS5 or VMFS6.
    pub version: Version,
    /// On-disk major and minor version.
    pub major: u32,
    /// Minor version.
    pub minor: u8,
    /// Filesystem UUID.
    pub uuid: String,
    /// Configuration flags.
    pub config: u32,
    /// Label.
    pub label: String,
    /// File block size (VMFS6: small file block size) in bytes.
    pub file_block_size: u64,
    /// Sub-block size in bytes.
    pub sub_block_size: u32,
    /// Offset of the first cluster group of the file descriptor resource file.
    pub fdc_cluster_group_offset: u32,
    /// Clusters per group of the file descriptor resource file.
    pub fdc_clusters_per_group: u32,
    /// VMFS5: volume address of the `.pb2.sf` descriptor when not dense.
    pub pb2_vol_addr: u64,
    /// Address of the `.pb2.sf` descriptor.
    pub pb2_fd_addr: u32,
    /// VMFS5: volume address of the `.sdd.sf` descriptor when not dense.
    pub sdd_vol_addr: u64,
    /// Address of the `.sdd.sf` descriptor.
    pub sdd_fd_addr: u32,
    /// VMFS6 metadata alignment (size of a metadata block).
    pub md_alignment: u32,
    /// VMFS6: log2(large file block size / small file block size).
    pub sfb_to_lfb_shift: u16,
}

/// Parses the descriptor from the first 512 bytes at [`FS_HEADER_OFFSET`].
pub fn parse_bytes(b: &[u8]) -> Result<FsHeader, FsError> {
    let what = "VMFS filesystem descriptor";
    let magic = field(u32_at, b, 0, what)?;
    match magic {
        VMFS_MAGIC => {}
        VMFSL_MAGIC => {
            return Err(corrupt(
                "VMFS-L (ESXi system volume): its layout is not read by this scanner",
            ))
        }
        m => {
            return Err(corrupt(format!(
                "filesystem descriptor magic {m:#010x} is not a VMFS magic"
            )))
        }
    }
    let major = field(u32_at, b, 0x04, what)?;
    let minor = field(u8_at, b, 0x08, what)?;
    let version = match major {
        14 => Version::Vmfs5,
        VMFS6_MAJOR => Version::Vmfs6,
        v => {
            return Err(corrupt(format!(
                "VMFS major version {v} is not understood (14 = VMFS5, 24 = VMFS6)"
            )))
        }
    };
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(
        b.get(0x09..0x19)
            .ok_or_else(|| corrupt("short descriptor"))?,
    );
    let label = c_string(
        b.get(0x1d..0x9d)
            .ok_or_else(|| corrupt("short descriptor"))?,
    );
    let h = FsHeader {
        version,
        major,
        minor,
        uuid: vmware_uuid(&uuid),
        config: field(u32_at, b, 0x19, what)?,
        label,
        file_block_size: field(u64_at, b, 0xa1, what)?,
        sub_block_size: field(u32_at, b, 0xd9, what)?,
        fdc_cluster_group_offset: field(u32_at, b, 0xd1, what)?,
        fdc_clusters_per_group: field(u32_at, b, 0xd5, what)?,
        pb2_vol_addr: field(u64_at, b, 0xe1, what)?,
        pb2_fd_addr: field(u32_at, b, 0xe9, what)?,
        sdd_vol_addr: field(u64_at, b, 0x105, what)?,
        sdd_fd_addr: field(u32_at, b, 0x10d, what)?,
        md_alignment: field(u32_at, b, 0x134, what)?,
        sfb_to_lfb_shift: field(u16_at, b, 0x138, what)?,
    };
    let fbs = h.file_block_size;
    if !(0x1_0000..=0x1000_0000).contains(&fbs) || !fbs.is_power_of_two() {
        return Err(corrupt(format!("file block size {fbs} is not understood")));
    }
    if h.fdc_clusters_per_group == 0 || h.fdc_clusters_per_group > 0x1_0000 {
        return Err(corrupt(format!(
            "{} file descriptor clusters per group is not understood",
            h.fdc_clusters_per_group
        )));
    }
    if h.version == Version::Vmfs6 {
        let md = h.md_alignment;
        // Descriptors hold a 2560-byte address array: at least 4096-byte metadata blocks.
        if !(0x1000..=0x1_0000).contains(&md) || !md.is_power_of_two() {
            return Err(corrupt(format!(
                "VMFS6 metadata alignment {md} is not understood"
            )));
        }
        if h.sfb_to_lfb_shift > 16 {
            return Err(corrupt(format!(
                "VMFS6 small-to-large file block shift {} is not understood",
                h.sfb_to_lfb_shift
            )));
        }
    }
    Ok(h)
}

/// Reads and parses the descriptor of a logical volume.
pub fn parse(lv: &dyn ReadAt) -> Result<FsHeader, FsError> {
    let mut b = vec![0u8; 512];
    lv.read_exact_at(&mut b, FS_HEADER_OFFSET)
        .map_err(|e| FsError::io(FS_HEADER_OFFSET, e))?;
    parse_bytes(&b)
}

impl FsHeader {
    /// Operator name of the filesystem.
    pub fn fs_type(&self) -> &'static str {
        match self.version {
            Version::Vmfs5 => "vmfs5",
            Version::Vmfs6 => "vmfs6",
        }
    }
    /// Is the DENSE_SBPC option set?
    pub fn dense_sbpc(&self) -> bool {
        self.config & CONFIG_DENSE_SBPC != 0
    }
    /// log2 of the file block size.
    pub fn block_shift(&self) -> u32 {
        self.file_block_size.trailing_zeros()
    }
}
