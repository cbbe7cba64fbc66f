//! File descriptors (the inodes of VMFS): a lock block, the file metadata and the block
//! address array or resident data. They live in the `.fdc.sf` resource file.

use crate::bytes::{corrupt, field};
use crate::fs_header::{FsHeader, Version};
use lifeboat_fs::bytes::{u32_at, u64_at};
use lifeboat_fs::FsError;

/// Descriptor types.
pub const TYPE_DIRECTORY: u32 = 2;
/// Regular file.
pub const TYPE_REGFILE: u32 = 3;
/// Symbolic link.
pub const TYPE_SYMLINK: u32 = 4;
/// System file.
pub const TYPE_SYSFILE: u32 = 5;
/// Raw device mapping.
pub const TYPE_RDM: u32 = 6;

/// How the block address array is read ("zero level address" type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zla {
    /// No blocks (raw device mappings, empty files).
    None,
    /// The array holds file blocks (or sub-blocks) directly.
    FileBlock,
    /// The array holds sub-blocks.
    SubBlock,
    /// The array holds pointer blocks whose entries are file blocks.
    PointerBlock,
    /// As `PointerBlock`, with second-level pointer block addresses.
    Pointer2Block,
    /// The array holds pointer blocks whose entries are pointer blocks of file blocks.
    PointerBlockDouble,
    /// The data lives inside the descriptor.
    Resident,
}

/// Sizes and offsets of a file descriptor for one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLayout {
    /// Size of a descriptor in bytes.
    pub size: usize,
    /// Offset of the file metadata.
    pub meta_offset: usize,
    /// Offset of the block address array.
    pub addrs_offset: usize,
    /// Number of block addresses.
    pub num_addrs: usize,
    /// Size of one address (4 or 8).
    pub addr_size: usize,
    /// Entries of a pointer block.
    pub ptrs_per_block: usize,
}

impl FdLayout {
    /// The layout used by a filesystem.
    pub fn for_fs(h: &FsHeader) -> FdLayout {
        match h.version {
            Version::Vmfs5 => FdLayout {
                size: 2048,
                meta_offset: 512,
                addrs_offset: 1024,
                num_addrs: 256,
                addr_size: 4,
                ptrs_per_block: 1024,
            },
            Version::Vmfs6 => {
                let md = h.md_alignment as usize;
                let size = 2 * md;
                let addrs_size = if md <= 0x1000 { 2560 } else { md >> 1 };
                FdLayout {
                    size,
                    meta_offset: md,
                    addrs_offset: size - addrs_size,
                    num_addrs: if md <= 0x1000 { 320 } else { md >> 4 },
                    addr_size: 8,
                    ptrs_per_block: if md < 0x1_0000 { 8192 } else { md >> 3 },
                }
            }
        }
    }
}

/// A parsed file descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDescriptor {
    /// Address recorded in the descriptor itself (equals its slot's address when in use).
    pub desc_addr: u32,
    /// Link count.
    pub link_count: u32,
    /// Descriptor type.
    pub kind: u32,
    /// File length in bytes.
    pub length: u64,
    /// The file's block size.
    pub block_size: u64,
    /// Zero level address type.
    pub zla: Zla,
    /// The raw zero level address type.
    pub zla_raw: u32,
    /// The block address array (empty for resident data and device mappings).
    pub addrs: Vec<u64>,
}

/// Parses a descriptor; `buf` is one descriptor of `layout.size` bytes.
pub fn parse(buf: &[u8], layout: &FdLayout) -> Result<FileDescriptor, FsError> {
    let what = "file descriptor";
    if buf.len() < layout.size {
        return Err(corrupt("short file descriptor"));
    }
    let m = layout.meta_offset;
    let zla_raw = field(u32_at, buf, m + 0x44, what)?;
    let kind = field(u32_at, buf, m + 0x0c, what)?;
    let zla = match zla_raw {
        0 => Zla::None,
        1 => Zla::FileBlock,
        2 => Zla::SubBlock,
        3 => Zla::PointerBlock,
        5 => Zla::Pointer2Block,
        0x10D0 => Zla::PointerBlockDouble,
        0x10D1 => Zla::Resident,
        _ => Zla::None,
    };
    let has_addrs = !matches!(zla, Zla::None | Zla::Resident) && kind != TYPE_RDM;
    let mut addrs = Vec::new();
    if has_addrs {
        addrs.reserve(layout.num_addrs);
        for i in 0..layout.num_addrs {
            let off = layout.addrs_offset + i * layout.addr_size;
            addrs.push(if layout.addr_size == 4 {
                u64::from(field(u32_at, buf, off, what)?)
            } else {
                field(u64_at, buf, off, what)?
            });
        }
    }
    Ok(FileDescriptor {
        desc_addr: field(u32_at, buf, m, what)?,
        link_count: field(u32_at, buf, m + 0x08, what)?,
        kind,
        length: field(u64_at, buf, m + 0x14, what)?,
        block_size: field(u64_at, buf, m + 0x1c, what)?,
        zla,
        zla_raw,
        addrs,
    })
}

impl FileDescriptor {
    /// Is the zero level address type one this scanner knows?
    pub fn zla_known(&self) -> bool {
        matches!(self.zla_raw, 0 | 1 | 2 | 3 | 5 | 0x10D0 | 0x10D1)
    }
}
