//! The VMFS scanner: the walk over the file descriptors that finds every block in use, and the
//! stream of used extents of the partition.
//!
//! Every file of a VMFS volume, the system files included, is a file descriptor in
//! `.fdc.sf`. The scanner reads every descriptor slot, and for each descriptor in use (its
//! recorded address equals its slot's address) marks the file blocks it references, directly
//! or through pointer blocks. Sub-blocks, pointer blocks, descriptors, journal blocks and the
//! heartbeat region live inside system files (`.sbc.sf`, `.pbc.sf`, `.pb2.sf`, `.fdc.sf`,
//! `.jbc.sf`, `.vh.sf`), whose blocks are marked like any file's. Everything of the
//! partition outside the logical volume (the LVM header and tables) is always kept.

use std::collections::HashSet;

use crate::address::{
    addr_type, fb5_block, fd_make, fd_parts, lfb6_block, resource_parts, sfb6, AddrType,
};
use crate::bitmap;
use crate::bytes::corrupt;
use crate::descriptor::{self, FdLayout, FileDescriptor, Zla, TYPE_SYSFILE};
use crate::fs_header::{self, FsHeader, Version, FS_HEADER_OFFSET};
use crate::lvm::{self, LogicalVolume, LvmHeader};
use crate::resource::{self, ResourceHeader, HEADER_LEN};
use lifeboat_fs::{
    Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner, SharedVolume, UsedBlocks,
};

/// Descriptor address of `.fdc.sf`.
const FDC_ADDR: u64 = 0x0080_0004;
/// Descriptor address of `.fbb.sf`.
const FBB_ADDR: u64 = 0x0040_0004;
/// Descriptor address of `.pbc.sf`.
const PBC_ADDR: u64 = 0x00C0_0004;
/// Descriptor address of `.sbc.sf`.
const SBC_ADDR: u64 = 0x0100_0004;
/// Descriptor address of `.pb2.sf`.
const PB2_ADDR: u64 = 0x0180_0004;
/// Most file blocks the used-block map may track (16 MiB of bitmap).
const MAX_BLOCKS: u64 = 1 << 27;
/// Largest pointer block or descriptor read at once.
const MAX_RESOURCE: u32 = 1 << 20;

/// A system file that holds resources.
struct ResFile {
    name: &'static str,
    fd: FileDescriptor,
    hdr: ResourceHeader,
}

/// The parsed volume: headers, resource files and the used-block map being built.
struct Volume<'a> {
    lv: LogicalVolume<'a>,
    h: FsHeader,
    layout: FdLayout,
    /// VMFS6: small file blocks per cluster.
    sfb_per_cluster: u64,
    total_blocks: u64,
    used: Vec<u64>,
    fdc: Option<ResFile>,
    pbc: Option<ResFile>,
    sbc: Option<ResFile>,
    pb2: Option<ResFile>,
    /// Pointer blocks read so far, keyed by where they lie ([`Volume::pointer_key`]).
    seen_pointer_blocks: HashSet<(u8, u64)>,
}

/// The most pointer blocks one volume is walked through: more than a volume can hold means a
/// crafted one (each distinct pointer block is read once; this bounds the work in any case).
const MAX_POINTER_BLOCKS: usize = 1 << 24;

impl<'a> Volume<'a> {
    fn mark_block(&mut self, block: u64, count: u64, what: &str) -> Result<(), FsError> {
        let end = block.saturating_add(count);
        if end > self.total_blocks {
            return Err(corrupt(format!(
                "{what} references file block {block}, beyond the {} blocks of the volume",
                self.total_blocks
            )));
        }
        for b in block..end {
            self.used[(b / 64) as usize] |= 1 << (b % 64);
        }
        Ok(())
    }

    /// Marks a data block address; sub-blocks live in `.sbc.sf` and need nothing.
    fn mark_data_addr(&mut self, a: u64, what: &str) -> Result<(), FsError> {
        match (addr_type(a), self.h.version) {
            (AddrType::Invalid, _) if a == 0 => Ok(()),
            (AddrType::SubBlock, _) => Ok(()),
            (AddrType::FileBlock, Version::Vmfs5) => self.mark_block(fb5_block(a), 1, what),
            (AddrType::FileBlock, Version::Vmfs6) => {
                let (c, r) = sfb6(a);
                if r >= self.sfb_per_cluster {
                    return Err(corrupt(format!("{what}: small file block address {a:#x}")));
                }
                self.mark_block(c * self.sfb_per_cluster + r, 1, what)
            }
            (AddrType::LargeFileBlock, Version::Vmfs6) => {
                let n = 1u64 << self.h.sfb_to_lfb_shift;
                self.mark_block(lfb6_block(a).saturating_mul(n), n, what)
            }
            _ => Err(corrupt(format!(
                "{what}: address {a:#x} is not a file block address"
            ))),
        }
    }

    /// Volume offset of a file block address (for reading system files).
    fn block_offset(&self, a: u64, what: &str) -> Result<(u64, u64), FsError> {
        let fbs = self.h.file_block_size;
        let (start, len) = match (addr_type(a), self.h.version) {
            (AddrType::FileBlock, Version::Vmfs5) => (fb5_block(a), fbs),
            (AddrType::FileBlock, Version::Vmfs6) => {
                let (c, r) = sfb6(a);
                if r >= self.sfb_per_cluster {
                    return Err(corrupt(format!("{what}: small file block address {a:#x}")));
                }
                (c * self.sfb_per_cluster + r, fbs)
            }
            (AddrType::LargeFileBlock, Version::Vmfs6) => {
                let n = 1u64 << self.h.sfb_to_lfb_shift;
                (
                    lfb6_block(a).saturating_mul(n),
                    fbs << self.h.sfb_to_lfb_shift,
                )
            }
            _ => {
                return Err(corrupt(format!(
                    "{what}: address {a:#x} is not a file block address"
                )))
            }
        };
        let off = start
            .checked_mul(fbs)
            .filter(|o| o.saturating_add(len) <= self.lv.len())
            .ok_or_else(|| corrupt(format!("{what}: block address {a:#x} beyond the volume")))?;
        Ok((off, len))
    }

    /// Reads `len` bytes at `off` of a system file (blocks or pointer blocks of blocks).
    fn read_file(
        &mut self,
        fd: &FileDescriptor,
        off: u64,
        len: usize,
        depth: u32,
        what: &str,
    ) -> Result<Vec<u8>, FsError> {
        if depth > 3 {
            return Err(corrupt(format!("{what}: pointer blocks nest too deep")));
        }
        let bs = fd.block_size;
        if bs != self.h.file_block_size {
            return Err(corrupt(format!(
                "{what}: file block size {bs} differs from the volume's"
            )));
        }
        let end = off.saturating_add(len as u64);
        if end > fd.length {
            return Err(corrupt(format!(
                "{what}: read of bytes {off}..{end} beyond the file length {}",
                fd.length
            )));
        }
        let mut out = Vec::with_capacity(len);
        let mut pos = off;
        while pos < end {
            let (a, in_block, block_len) = self.locate(fd, pos, depth, what)?;
            let take = (block_len - in_block).min(end - pos);
            if a == 0 {
                out.resize(out.len() + take as usize, 0);
            } else {
                let (boff, _) = self.block_offset(a, what)?;
                out.extend(lvm::read(&self.lv, boff + in_block, take as usize)?);
            }
            pos += take;
        }
        Ok(out)
    }

    /// The data block address that holds byte `pos` of a file, the offset in it and its size.
    fn locate(
        &mut self,
        fd: &FileDescriptor,
        pos: u64,
        depth: u32,
        what: &str,
    ) -> Result<(u64, u64, u64), FsError> {
        let bs = fd.block_size;
        let idx = pos / bs;
        let ppb = self.layout.ptrs_per_block as u64;
        let entry = |i: u64| -> Result<u64, FsError> {
            fd.addrs
                .get(i as usize)
                .copied()
                .ok_or_else(|| corrupt(format!("{what}: file offset beyond its block array")))
        };
        let a = match fd.zla {
            Zla::FileBlock => entry(idx)?,
            Zla::PointerBlock | Zla::Pointer2Block => {
                let pb = entry(idx / ppb)?;
                if pb == 0 {
                    0
                } else {
                    let ptrs = self.read_pointer_block(pb, depth + 1, what)?;
                    ptrs[(idx % ppb) as usize]
                }
            }
            _ => {
                return Err(corrupt(format!(
                    "{what}: system file with block layout {:#x} is not understood",
                    fd.zla_raw
                )))
            }
        };
        if addr_type(a) == AddrType::LargeFileBlock {
            let lbs = bs << self.h.sfb_to_lfb_shift;
            // Large blocks cover several small block indices: the address repeats.
            return Ok((a, pos % lbs, lbs));
        }
        Ok((a, pos % bs, bs))
    }

    /// The resource file that holds the resource at address `a`, and the resource's offset in
    /// that file.
    fn resource_location(&self, a: u64, what: &str) -> Result<(&ResFile, u64), FsError> {
        let t = addr_type(a);
        let slot = match t {
            AddrType::PointerBlock => &self.pbc,
            AddrType::SubBlock => &self.sbc,
            AddrType::Pointer2Block => &self.pb2,
            AddrType::FileDescriptor => &self.fdc,
            _ => {
                return Err(corrupt(format!(
                    "{what}: address {a:#x} does not name a resource"
                )))
            }
        };
        let rf = slot.as_ref().ok_or_else(|| {
            corrupt(format!(
                "{what}: address {a:#x} needs a missing system file"
            ))
        })?;
        let (c, r) = if t == AddrType::FileDescriptor {
            fd_parts(a)
        } else {
            resource_parts(a, self.h.version, self.h.dense_sbpc())
        };
        Ok((rf, rf.hdr.offset_of(c, r, rf.name)?))
    }

    /// The slot of the resource file for resources of type `t` (file descriptors for any type
    /// that is not a pointer block, sub-block or second-level pointer block).
    fn slot_mut(&mut self, t: AddrType) -> &mut Option<ResFile> {
        match t {
            AddrType::PointerBlock => &mut self.pbc,
            AddrType::SubBlock => &mut self.sbc,
            AddrType::Pointer2Block => &mut self.pb2,
            _ => &mut self.fdc,
        }
    }

    /// Reads a resource (a pointer block, sub-block...) by address from its resource file.
    fn read_resource(&mut self, a: u64, depth: u32, what: &str) -> Result<Vec<u8>, FsError> {
        let off = self.resource_location(a, what)?.1;
        let t = addr_type(a);
        // Taken out while reading: read_file needs `self` mutably.
        let rf = self.slot_mut(t).take().ok_or_else(|| {
            corrupt(format!(
                "{what}: address {a:#x} needs a missing system file"
            ))
        })?;
        let res = self.read_file(&rf.fd, off, rf.hdr.resource_size as usize, depth, rf.name);
        *self.slot_mut(t) = Some(rf);
        res
    }

    /// Reads a pointer block and returns its entries.
    fn read_pointer_block(&mut self, a: u64, depth: u32, what: &str) -> Result<Vec<u64>, FsError> {
        if depth > 3 {
            return Err(corrupt(format!("{what}: pointer blocks nest too deep")));
        }
        let raw = match addr_type(a) {
            AddrType::FileBlock | AddrType::LargeFileBlock => {
                let (off, _) = self.block_offset(a, what)?;
                let n = self.layout.ptrs_per_block * self.layout.addr_size;
                lvm::read(&self.lv, off, n)?
            }
            _ => self.read_resource(a, depth, what)?,
        };
        let n = self.layout.ptrs_per_block;
        let w = self.layout.addr_size;
        if raw.len() < n * w {
            return Err(corrupt(format!(
                "{what}: pointer block {a:#x} of {} bytes is shorter than {n} entries",
                raw.len()
            )));
        }
        Ok(raw
            .chunks_exact(w)
            .take(n)
            .map(|c| {
                if w == 4 {
                    u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                } else {
                    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                }
            })
            .collect())
    }

    /// Marks every block a file uses.
    fn mark_file(&mut self, fd: &FileDescriptor, what: &str) -> Result<(), FsError> {
        match fd.zla {
            Zla::None | Zla::Resident => Ok(()),
            Zla::FileBlock | Zla::SubBlock => {
                for &a in &fd.addrs {
                    self.mark_data_addr(a, what)?;
                }
                Ok(())
            }
            Zla::PointerBlock | Zla::Pointer2Block | Zla::PointerBlockDouble => {
                let double = fd.zla == Zla::PointerBlockDouble;
                for &pb in &fd.addrs {
                    self.mark_pointer_tree(pb, double, what)?;
                }
                Ok(())
            }
        }
    }

    /// Where a pointer block lies, as a key that every address naming it shares. Address
    /// words have bits that the decoding ignores (VMFS6 resource addresses: 17 of them): keyed
    /// by the raw word, a crafted volume could have one block read and walked 2^17 times.
    fn pointer_key(&self, a: u64, what: &str) -> Result<(u8, u64), FsError> {
        let t = addr_type(a);
        let off = if matches!(t, AddrType::FileBlock | AddrType::LargeFileBlock) {
            self.block_offset(a, what)?.0
        } else {
            self.resource_location(a, what)?.1
        };
        Ok((t as u8, off))
    }

    fn mark_pointer_tree(&mut self, pb: u64, double: bool, what: &str) -> Result<(), FsError> {
        if pb == 0 {
            return Ok(());
        }
        let key = self.pointer_key(pb, what)?;
        if !self.seen_pointer_blocks.insert(key) {
            return Ok(());
        }
        if self.seen_pointer_blocks.len() > MAX_POINTER_BLOCKS {
            return Err(corrupt(format!(
                "{what}: more than {MAX_POINTER_BLOCKS} pointer blocks"
            )));
        }
        // A pointer block stored in a file block belongs to that block.
        if matches!(
            addr_type(pb),
            AddrType::FileBlock | AddrType::LargeFileBlock
        ) {
            self.mark_data_addr(pb, what)?;
        }
        let ptrs = self.read_pointer_block(pb, 0, what)?;
        for a in ptrs {
            if double {
                self.mark_pointer_tree(a, false, what)?;
            } else {
                self.mark_data_addr(a, what)?;
            }
        }
        Ok(())
    }

    /// Marks every file block the VMFS5 file block bitmap says is allocated.
    fn mark_bitmap(&mut self, rf: &ResFile) -> Result<(), FsError> {
        let hd = &rf.hdr;
        let rpc = hd.resources_per_cluster;
        if rpc == 0 || rpc > bitmap::MAX_ITEMS || hd.num_resources > self.total_blocks {
            return Err(corrupt(format!(
                ".fbb.sf: {} blocks in clusters of {rpc} do not describe a volume of {} blocks",
                hd.num_resources, self.total_blocks
            )));
        }
        let clusters = hd.num_resources.div_ceil(u64::from(rpc));
        for c in 0..clusters {
            let off = bitmap::cluster_header_offset(hd, c);
            let buf = self.read_file(&rf.fd, off, 1024, 0, ".fbb.sf")?;
            let mut items = Vec::new();
            bitmap::allocated_items(&buf, c, rpc, |i| items.push(i))?;
            for i in items {
                let block = c * u64::from(rpc) + u64::from(i);
                if block < hd.num_resources {
                    self.mark_block(block, 1, ".fbb.sf bitmap")?;
                }
            }
        }
        Ok(())
    }

    /// Reads the descriptor at `addr` through `.fdc.sf`.
    fn read_fd(&mut self, addr: u64, what: &str) -> Result<FileDescriptor, FsError> {
        let raw = self.read_resource(addr, 0, what)?;
        descriptor::parse(&raw, &self.layout)
    }

    /// Opens a system file's resource header (`at` = offset of the header in the file).
    fn open_res(
        &mut self,
        fd: FileDescriptor,
        at: u64,
        name: &'static str,
    ) -> Result<ResFile, FsError> {
        let b = self.read_file(&fd, at, HEADER_LEN, 0, name)?;
        let hdr = resource::parse(&b, &self.h, name)?;
        Ok(ResFile { name, fd, hdr })
    }
}

fn check_sysfile(fd: &FileDescriptor, addr: u64, h: &FsHeader, name: &str) -> Result<(), FsError> {
    if u64::from(fd.desc_addr) != addr
        || fd.kind != TYPE_SYSFILE
        || fd.block_size != h.file_block_size
    {
        return Err(corrupt(format!(
            "{name}: system file descriptor not found where expected (address {:#x}, type {}, \
             block size {})",
            fd.desc_addr, fd.kind, fd.block_size
        )));
    }
    Ok(())
}

/// Logical volume offset of a system file descriptor before `.fdc.sf` can be read.
fn sfd_offset(h: &FsHeader, addr: u64) -> u64 {
    let (_, r) = fd_parts(addr);
    let cgo = u64::from(h.fdc_cluster_group_offset);
    let cpg = u64::from(h.fdc_clusters_per_group);
    match h.version {
        Version::Vmfs6 => {
            let md = u64::from(h.md_alignment);
            let base = ((md << 10) + 0x3F_FFFF) & !0xF_FFFF;
            base + cgo + cpg * 2 * md + r * 2 * md
        }
        Version::Vmfs5 => {
            if !h.dense_sbpc() && addr == u64::from(h.pb2_fd_addr) && h.pb2_vol_addr != 0 {
                return h.pb2_vol_addr;
            }
            if !h.dense_sbpc() && addr == u64::from(h.sdd_fd_addr) && h.sdd_vol_addr != 0 {
                return h.sdd_vol_addr;
            }
            let fbs = h.file_block_size;
            fbs * ((fbs + 0x3F_FFFF) / fbs) + cgo + cpg * 1024 + (r << 11)
        }
    }
}

/// The result of a scan: what is used, in logical volume blocks.
pub(crate) struct Scan {
    pub lvm: LvmHeader,
    pub h: FsHeader,
    pub used: Vec<u64>,
    pub total_blocks: u64,
    pub files: u64,
}

/// Parses the volume and marks every used block.
pub(crate) fn scan(part: &dyn ReadAt) -> Result<Scan, FsError> {
    let lvm = lvm::parse(part)?;
    let (h, used, total_blocks, files) = {
        let lv = LogicalVolume::new(part, &lvm);
        let h = fs_header::parse(&lv)?;
        let fbs = h.file_block_size;
        let total_blocks = lvm.logical_size.div_ceil(fbs);
        if total_blocks > MAX_BLOCKS {
            return Err(corrupt(format!(
                "{total_blocks} file blocks exceed the {MAX_BLOCKS} this scanner tracks"
            )));
        }
        let layout = FdLayout::for_fs(&h);
        let mut v = Volume {
            lv,
            h: h.clone(),
            layout,
            sfb_per_cluster: 1,
            total_blocks,
            used: vec![0u64; total_blocks.div_ceil(64) as usize],
            fdc: None,
            pbc: None,
            sbc: None,
            pb2: None,
            seen_pointer_blocks: HashSet::new(),
        };
        if h.version == Version::Vmfs6 {
            // Small file blocks per cluster; checked against the .fbb.sf header below.
            v.sfb_per_cluster = (0x2000u64).min(0x2000_0000 / fbs);
        }
        // Everything up to the end of the filesystem descriptor (LVM-reserved area, volume
        // header) is kept whatever the system files say.
        let head_blocks = (FS_HEADER_OFFSET + 0x1_0000)
            .div_ceil(fbs)
            .min(total_blocks);
        v.mark_block(0, head_blocks, "volume header")?;

        // .fdc.sf, found by its fixed place.
        let off = sfd_offset(&h, FDC_ADDR);
        let raw = lvm::read(&v.lv, off, layout.size)?;
        let fdc_fd = descriptor::parse(&raw, &layout)?;
        check_sysfile(&fdc_fd, FDC_ADDR, &h, ".fdc.sf")?;
        let fdc = v.open_res(fdc_fd, 0, ".fdc.sf")?;
        fdc.hdr.check_layout(fdc.fd.length, ".fdc.sf")?;
        if fdc.hdr.resource_size as usize != layout.size {
            return Err(corrupt(format!(
                ".fdc.sf: descriptors of {} bytes, expected {}",
                fdc.hdr.resource_size, layout.size
            )));
        }
        v.fdc = Some(fdc);

        // VMFS6: the small file block header, a child of the large file block header.
        if h.version == Version::Vmfs6 {
            let fbb = v.read_fd(FBB_ADDR, ".fbb.sf")?;
            check_sysfile(&fbb, FBB_ADDR, &h, ".fbb.sf")?;
            let lfb = v.open_res(fbb.clone(), 0, ".fbb.sf")?;
            let sfb = v.open_res(fbb, u64::from(lfb.hdr.child_meta_offset), ".fbb.sf")?;
            let spc = u64::from(sfb.hdr.resources_per_cluster);
            if spc != v.sfb_per_cluster
                || u64::from(lfb.hdr.resources_per_cluster) == 0
                || lfb.hdr.child_meta_offset == 0
            {
                return Err(corrupt(format!(
                    ".fbb.sf: {spc} small file blocks per cluster, expected {}",
                    v.sfb_per_cluster
                )));
            }
        }

        // Resource files holding pointer blocks and sub-blocks.
        let pb2_addr = match h.version {
            Version::Vmfs6 => PB2_ADDR,
            Version::Vmfs5 => u64::from(h.pb2_fd_addr),
        };
        let mut sys = Vec::new();
        // .pb2.sf first: the others may use second-level pointer blocks.
        for (addr, name, slot) in [
            (pb2_addr, ".pb2.sf", 2u8),
            (PBC_ADDR, ".pbc.sf", 0),
            (SBC_ADDR, ".sbc.sf", 1),
        ] {
            if slot == 2 && (addr == 0 || (h.version == Version::Vmfs5 && h.pb2_vol_addr == 0)) {
                continue;
            }
            let fd = if h.version == Version::Vmfs5 && slot == 2 && !h.dense_sbpc() {
                let raw = lvm::read(&v.lv, sfd_offset(&h, addr), layout.size)?;
                descriptor::parse(&raw, &layout)?
            } else {
                v.read_fd(addr, name)?
            };
            check_sysfile(&fd, addr, &h, name)?;
            sys.push(fd.clone());
            let rf = v.open_res(fd, 0, name)?;
            if rf.hdr.num_resources == 0 {
                // VMFS6 keeps no pointer blocks in .pbc.sf.
                continue;
            }
            if rf.hdr.resource_size > MAX_RESOURCE {
                return Err(corrupt(format!(
                    "{name}: resource size {}",
                    rf.hdr.resource_size
                )));
            }
            rf.hdr.check_layout(rf.fd.length, name)?;
            match slot {
                0 => v.pbc = Some(rf),
                1 => v.sbc = Some(rf),
                _ => v.pb2 = Some(rf),
            }
        }
        // VMFS5 without dense sub-blocks keeps .sdd.sf outside .fdc.sf.
        if h.version == Version::Vmfs5 && !h.dense_sbpc() && h.sdd_vol_addr != 0 {
            let raw = lvm::read(&v.lv, sfd_offset(&h, u64::from(h.sdd_fd_addr)), layout.size)?;
            let fd = descriptor::parse(&raw, &layout)?;
            check_sysfile(&fd, u64::from(h.sdd_fd_addr), &h, ".sdd.sf")?;
            sys.push(fd);
        }
        for fd in &sys {
            v.mark_file(fd, "system file")?;
        }

        // VMFS5: every block the file block bitmap marks allocated.
        if h.version == Version::Vmfs5 {
            let fbb = v.read_fd(FBB_ADDR, ".fbb.sf")?;
            check_sysfile(&fbb, FBB_ADDR, &h, ".fbb.sf")?;
            v.mark_file(&fbb, ".fbb.sf")?;
            let rf = v.open_res(fbb, 0, ".fbb.sf")?;
            v.mark_bitmap(&rf)?;
        }

        // Every descriptor slot.
        let fdc_hdr = v
            .fdc
            .as_ref()
            .map(|f| f.hdr)
            .ok_or_else(|| corrupt("no .fdc.sf"))?;
        let rpc = u64::from(fdc_hdr.resources_per_cluster);
        let mut files = 0u64;
        for i in 0..fdc_hdr.num_resources {
            let (c, r) = (i / rpc, i % rpc);
            let addr = fd_make(c, r)
                .ok_or_else(|| corrupt(".fdc.sf: more descriptors than addresses can name"))?;
            let fd = v.read_fd(addr, ".fdc.sf")?;
            if u64::from(fd.desc_addr) != addr || fd.kind == 0 || fd.kind > 6 {
                continue;
            }
            if !fd.zla_known() {
                return Err(corrupt(format!(
                    "file descriptor {addr:#x}: block layout {:#x} is not understood",
                    fd.zla_raw
                )));
            }
            let what = format!("file descriptor {addr:#x}");
            v.mark_file(&fd, &what)?;
            if fd.kind != TYPE_SYSFILE && fd.kind != 1 {
                files += 1;
            }
        }
        (h, v.used, total_blocks, files)
    };
    Ok(Scan {
        lvm,
        h,
        used,
        total_blocks,
        files,
    })
}

/// One piece of the partition, in partition order.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Bytes outside the logical volume: always kept.
    Keep { start: u64, len: u64 },
    /// A physical extent of the logical volume.
    Mapped {
        physical: u64,
        logical: u64,
        len: u64,
    },
}

/// The raw used extents of a VMFS partition: the pieces outside the logical volume whole,
/// and the runs of used blocks of the mapped pieces.
struct VmfsSource {
    pieces: Vec<Piece>,
    used: Vec<u64>,
    total_blocks: u64,
    block_size: u64,
    piece: usize,
    /// Next logical block to look at inside the current mapped piece.
    cursor: u64,
}

impl VmfsSource {
    fn used_block(&self, b: u64) -> bool {
        b < self.total_blocks && self.used[(b / 64) as usize] & (1 << (b % 64)) != 0
    }
}

impl ExtentSource for VmfsSource {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        while let Some(p) = self.pieces.get(self.piece).copied() {
            match p {
                Piece::Keep { start, len } => {
                    self.piece += 1;
                    self.cursor = 0;
                    return Ok(Some(Extent::new(start, len)));
                }
                Piece::Mapped {
                    physical,
                    logical,
                    len,
                } => {
                    let bs = self.block_size;
                    let first = logical / bs;
                    let last = (logical + len).div_ceil(bs);
                    let mut b = first.max(self.cursor);
                    while b < last && !self.used_block(b) {
                        if self.used[(b / 64) as usize] == 0 {
                            b = (b / 64 + 1) * 64;
                        } else {
                            b += 1;
                        }
                    }
                    if b >= last {
                        self.piece += 1;
                        self.cursor = 0;
                        continue;
                    }
                    let mut e = b;
                    while e < last && self.used_block(e) {
                        e += 1;
                    }
                    self.cursor = e;
                    let lstart = (b * bs).max(logical);
                    let lend = (e * bs).min(logical + len);
                    return Ok(Some(Extent::new(
                        physical + (lstart - logical),
                        lend - lstart,
                    )));
                }
            }
        }
        Ok(None)
    }

    fn rewind(&mut self) {
        self.piece = 0;
        self.cursor = 0;
    }
}

/// Scanner of VMFS5 and VMFS6 datastores.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmfsScanner;

impl VmfsScanner {
    /// Opens the concrete stream (gives access to [`VmfsUsedBlocks::file_count`]).
    pub fn open_vmfs(&self, volume: &dyn ReadAt) -> Result<VmfsUsedBlocks, FsError> {
        VmfsUsedBlocks::open(volume)
    }
}

impl Scanner for VmfsScanner {
    fn name(&self) -> &'static str {
        "vmfs"
    }
    fn probe(&self, volume: &dyn ReadAt) -> bool {
        lvm::has_magic(volume)
    }
    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(VmfsUsedBlocks::open(&*volume)?))
    }
}

/// The used extents of a VMFS partition.
pub struct VmfsUsedBlocks {
    info: FsInfo,
    files: u64,
    extents: MergedExtents<VmfsSource>,
}

impl VmfsUsedBlocks {
    /// Scans `part`.
    pub fn open(part: &dyn ReadAt) -> Result<VmfsUsedBlocks, FsError> {
        let s = scan(part)?;
        let mut pieces = Vec::new();
        let mut pos = 0u64;
        for e in &s.lvm.extents {
            if e.physical > pos {
                pieces.push(Piece::Keep {
                    start: pos,
                    len: e.physical - pos,
                });
            }
            pieces.push(Piece::Mapped {
                physical: e.physical,
                logical: e.logical,
                len: e.len,
            });
            pos = e.physical + e.len;
        }
        if part.len() > pos {
            pieces.push(Piece::Keep {
                start: pos,
                len: part.len() - pos,
            });
        }
        let fbs = s.h.file_block_size;
        let mut extents = MergedExtents::new(VmfsSource {
            pieces,
            used: s.used,
            total_blocks: s.total_blocks,
            block_size: fbs,
            piece: 0,
            cursor: 0,
        });
        let used_bytes = extents.count_bytes()?;
        extents.rewind();
        let info = FsInfo {
            fs_type: s.h.fs_type().to_string(),
            label: (!s.h.label.is_empty()).then(|| s.h.label.clone()),
            uuid: Some(s.h.uuid.clone()),
            block_size: u32::try_from(fbs).unwrap_or(u32::MAX),
            total_bytes: s.lvm.logical_size,
            used_bytes,
            files: Some(s.files),
            warnings: Vec::new(),
            ..FsInfo::default()
        };
        Ok(VmfsUsedBlocks {
            info,
            files: s.files,
            extents,
        })
    }

    /// Number of files, directories, links and device mappings in use (system files not
    /// counted).
    pub fn file_count(&self) -> u64 {
        self.files
    }
}

impl UsedBlocks for VmfsUsedBlocks {
    fn info(&self) -> &FsInfo {
        &self.info
    }
    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}
