//! The VMFS logical volume manager header: the device metadata at 1 MiB (magic `0xC001D00D`),
//! the volume table and the physical-extent (PE) table that maps the logical volume (where the
//! filesystem lives) onto this partition.
//!
//! Only what a single partition can describe on its own is accepted: one logical volume that
//! lives entirely on this device (one device in the volume, physical extents that cover the
//! logical volume from byte 0 without holes, in the same order on the device as in the volume,
//! all inside the partition). A volume spanning several extents (devices) is refused.

use crate::bytes::{c_string, corrupt, field, vmware_uuid, VmfsError, FS_NAME};
use lifeboat_fs::bytes::{u32_at, u64_at, u8_at};
use lifeboat_fs::{read_exact, FsError, ReadAt};

/// Byte offset of the device metadata in the partition.
pub const DEV_HEADER_OFFSET: u64 = 0x10_0000;
/// LVM magic number.
pub const LVM_MAGIC: u32 = 0xC001_D00D;
const PES_PER_MAP: u64 = 8192;
const PE_ENTRY_SIZE: u64 = 128;
const VOL_ENTRY_SIZE: u64 = 512;
const SD_TABLE_SIZE: u64 = 256 * 32;
/// Most PE maps (of 8192 entries each) in the primary metadata area.
const MAX_PE_MAPS: u32 = 8;

/// One physical extent: `len` bytes of the logical volume from `logical` live at `physical`
/// in the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysExtent {
    /// Offset in the partition.
    pub physical: u64,
    /// Offset in the logical volume.
    pub logical: u64,
    /// Length in bytes.
    pub len: u64,
}

/// What the LVM header says about this device and its one logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmHeader {
    /// LVM major version (5 for VMFS5 volumes, 6 for VMFS6).
    pub major_version: u32,
    /// Device UUID.
    pub device_uuid: String,
    /// Logical volume name (ESXi stores the filesystem UUID here).
    pub volume_name: String,
    /// Logical volume size in bytes.
    pub logical_size: u64,
    /// The physical extents, in logical (and physical) order, covering the volume.
    pub extents: Vec<PhysExtent>,
}

/// Is the LVM magic at its place?
pub fn has_magic(volume: &dyn ReadAt) -> bool {
    let mut b = [0u8; 4];
    volume.read_exact_at(&mut b, DEV_HEADER_OFFSET).is_ok() && u32::from_le_bytes(b) == LVM_MAGIC
}

/// Reads `len` bytes at `offset` of `volume`.
pub(crate) fn read(volume: &dyn ReadAt, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
    let mut b = vec![0u8; len];
    read_exact(volume, &mut b, offset)?;
    Ok(b)
}

/// Parses the LVM header of `volume` (a partition) and checks that the logical volume lies
/// wholly inside it.
pub fn parse(volume: &dyn ReadAt) -> Result<LvmHeader, FsError> {
    let dev = read(volume, DEV_HEADER_OFFSET, 512)?;
    let what = "LVM device header";
    let magic = field(u32_at, &dev, 0, what)?;
    if magic != LVM_MAGIC {
        return Err(FsError::not_recognised(
            FS_NAME,
            VmfsError::NoMagic {
                offset: DEV_HEADER_OFFSET,
                found: magic,
            },
        ));
    }
    let major = field(u32_at, &dev, 0x04, what)?;
    let num_volumes = field(u32_at, &dev, 0x66, what)?;
    let num_pes = field(u32_at, &dev, 0x6a, what)?;
    let num_pe_maps = field(u32_at, &dev, 0xBE, what)?;
    let ext_meta = field(u64_at, &dev, 0xC2, what)?;
    let md_alignment = field(u32_at, &dev, 0xCA, what)?;
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&dev[0x82..0x92]);
    let device_uuid = vmware_uuid(&uuid);

    let (devmeta_size, max_volumes, pe_bitmap_size) = match major {
        3..=5 => (512u64, 512u64, 1024u64),
        6 => {
            if !(512..=0x10000).contains(&md_alignment) || !md_alignment.is_power_of_two() {
                return Err(corrupt(format!(
                    "LVM6 metadata alignment {md_alignment} is not understood"
                )));
            }
            let a = u64::from(md_alignment);
            (a, 1, a.max(1024))
        }
        v => return Err(corrupt(format!("LVM major version {v} is not understood"))),
    };
    if num_volumes != 1 {
        return Err(corrupt(format!(
            "the LVM header lists {num_volumes} logical volumes; exactly one is understood"
        )));
    }
    if ext_meta != 0 {
        return Err(corrupt(
            "the LVM header links extended metadata (more than 65536 physical extents)",
        ));
    }
    let maps = num_pe_maps.max(1);
    if maps > MAX_PE_MAPS || u64::from(num_pes) > u64::from(maps) * PES_PER_MAP || num_pes == 0 {
        return Err(corrupt(format!(
            "LVM header: {num_pes} physical extents in {num_pe_maps} maps is not understood"
        )));
    }

    let vt_off = DEV_HEADER_OFFSET + devmeta_size;
    let vol = read(volume, vt_off, VOL_ENTRY_SIZE as usize)?;
    let what = "LVM volume descriptor";
    let logical_size = field(u64_at, &vol, 0x00, what)?;
    let volume_name = c_string(&vol[0x14..0x54]);
    let volume_id = field(u32_at, &vol, 0x70, what)?;
    let first_pe = field(u64_at, &vol, 0x78, what)?;
    let num_devs = field(u32_at, &vol, 0x90, what)?;
    if num_devs != 1 || first_pe != 0 {
        return Err(corrupt(format!(
            "the logical volume spans {num_devs} devices (first PE {first_pe}); only a volume \
             on this partition alone is understood"
        )));
    }

    let unused_md = (1024 - max_volumes) * 512;
    let reserved = unused_md - SD_TABLE_SIZE;
    let pe_bitmap_off =
        DEV_HEADER_OFFSET + devmeta_size + max_volumes * VOL_ENTRY_SIZE + reserved + SD_TABLE_SIZE;

    let mut extents = Vec::new();
    let mut remaining = u64::from(num_pes);
    for map in 0..u64::from(maps) {
        if remaining == 0 {
            break;
        }
        let table_off =
            pe_bitmap_off + map * (pe_bitmap_size + PES_PER_MAP * PE_ENTRY_SIZE) + pe_bitmap_size;
        let n = remaining.min(PES_PER_MAP);
        // n <= 8192 entries of 128 bytes: at most 1 MiB.
        let table = read(volume, table_off, (n * PE_ENTRY_SIZE) as usize)?;
        for e in table.chunks_exact(PE_ENTRY_SIZE as usize) {
            let what = "LVM PE table entry";
            if field(u8_at, e, 0, what)? == 0 || field(u32_at, e, 5, what)? != volume_id {
                continue;
            }
            extents.push(PhysExtent {
                physical: field(u64_at, e, 0x09, what)?,
                logical: field(u64_at, e, 0x11, what)?,
                len: field(u64_at, e, 0x19, what)?,
            });
        }
        remaining -= n;
    }
    extents.sort_by_key(|e| e.logical);
    let mut expect = 0u64;
    let mut last_phys_end = 0u64;
    for e in &extents {
        if e.logical != expect || e.len == 0 {
            return Err(corrupt(format!(
                "LVM physical extents leave a hole or overlap at logical byte {expect:#x}"
            )));
        }
        let pend = e
            .physical
            .checked_add(e.len)
            .ok_or_else(|| corrupt("LVM physical extent overflows"))?;
        if e.physical < last_phys_end || e.physical < DEV_HEADER_OFFSET {
            return Err(corrupt(
                "LVM physical extents are not in volume order on the device",
            ));
        }
        if pend > volume.len() {
            return Err(corrupt(format!(
                "the logical volume extends to byte {pend:#x}, beyond this partition ({} bytes)",
                volume.len()
            )));
        }
        last_phys_end = pend;
        expect += e.len;
    }
    if expect != logical_size || logical_size == 0 {
        return Err(corrupt(format!(
            "the physical extents on this partition cover {expect} of the {logical_size} bytes \
             of the logical volume (spanned volume?)"
        )));
    }
    Ok(LvmHeader {
        major_version: major,
        device_uuid,
        volume_name,
        logical_size,
        extents,
    })
}

impl LvmHeader {
    /// Maps a logical volume offset to a partition offset.
    pub fn to_physical(&self, logical: u64) -> Option<u64> {
        let i = self
            .extents
            .partition_point(|e| e.logical + e.len <= logical);
        let e = self.extents.get(i)?;
        (logical >= e.logical).then(|| e.physical + (logical - e.logical))
    }
}

/// The logical volume as a [`ReadAt`]: reads are mapped through the physical extents.
pub struct LogicalVolume<'a> {
    part: &'a dyn ReadAt,
    lvm: &'a LvmHeader,
}

impl<'a> LogicalVolume<'a> {
    /// A reader of the logical volume described by `lvm` inside `part`.
    pub fn new(part: &'a dyn ReadAt, lvm: &'a LvmHeader) -> Self {
        LogicalVolume { part, lvm }
    }
}

impl ReadAt for LogicalVolume<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset
                .checked_add(done as u64)
                .ok_or_else(|| std::io::Error::other("offset overflow"))?;
            let i = self
                .lvm
                .extents
                .partition_point(|e| e.logical + e.len <= pos);
            let e = self.lvm.extents.get(i).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "read beyond the logical volume",
                )
            })?;
            let in_e = pos - e.logical;
            let n = ((e.len - in_e).min((buf.len() - done) as u64)) as usize;
            self.part
                .read_exact_at(&mut buf[done..done + n], e.physical + in_e)?;
            done += n;
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.lvm.logical_size
    }
}
