//! The image manifest: the JSON document written last (see `docs/FORMAT.md`).

use crate::error::{ContainerError, Result};
use serde::{Deserialize, Serialize};

/// Value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "lifeboat-image";
/// Manifest version written by this crate.
pub const MANIFEST_VERSION: u32 = 1;

/// Everything known about an image. Written as the last record of the container and, by the
/// repository, as `manifest.json` beside it (with [`Manifest::files`] filled in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Manifest version.
    pub version: u32,
    /// Image name.
    pub image: String,
    /// `disks` (savedisk) or `parts` (saveparts).
    pub kind: ImageKind,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Tool that wrote the image.
    pub tool: Tool,
    /// Host name of the machine that saved the image.
    pub host: String,
    /// Image id, hex (matches the container header).
    pub image_id: String,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Compression, e.g. `zstd-3`.
    pub compression: String,
    /// The disks, in `--disk` order.
    pub disks: Vec<DiskRecord>,
    /// Totals over all disks.
    pub totals: Totals,
    /// Files of the image in the repository, with sizes and checksums (empty inside the
    /// container itself, which cannot list its own checksum).
    #[serde(default)]
    pub files: Vec<FileRecord>,
    /// The image digest (`docs/FORMAT.md` §6.1), 64 hex digits; absent in images written
    /// before format 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// For an encrypted image, in `manifest.json` only: the full manifest sealed with the
    /// image's metadata key, hex (§16.4). The clear fields beside it are the public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// Kind of image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    /// Whole disks (savedisk).
    Disks,
    /// Selected partitions (saveparts).
    Parts,
}

/// Tool name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// `lifeboat`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// One disk of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskRecord {
    /// Position in `--disk` order, from 0.
    pub index: u32,
    /// Device or file it was read from.
    pub source: String,
    /// Model, vendor, serial, WWN where known.
    pub identity: Identity,
    /// Size in bytes.
    pub size: u64,
    /// Logical sector size in bytes.
    pub logical_sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
    /// The partition table.
    pub table: TableRecord,
    /// Areas outside partitions that are stored (boot code, gaps, EBRs, GPT copies).
    pub boot_regions: Vec<RegionRecord>,
    /// Data bytes stored for this disk (filled in the manifest; 0 in the DISK record).
    #[serde(default)]
    pub stored_bytes: u64,
    /// Payload bytes after compression (manifest only).
    #[serde(default)]
    pub compressed_bytes: u64,
    /// Chunk records (manifest only).
    #[serde(default)]
    pub chunks: u64,
    /// CRC32 of all stored data of this disk in order, hex (manifest only).
    #[serde(default)]
    pub data_crc32: String,
}

/// Disk identity as reported by the system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Model.
    pub model: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// World wide name.
    pub wwn: Option<String>,
}

/// The partition table of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRecord {
    /// `gpt`, `mbr` or `none`.
    pub kind: String,
    /// GPT disk GUID or MBR disk signature.
    pub disk_id: Option<String>,
    /// Partitions (for `none`: one pseudo-partition 0 covering the whole disk).
    pub partitions: Vec<PartitionRecord>,
    /// Notes about the table.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One partition (or the whole disk when there is no table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRecord {
    /// Partition number (0 for a whole-disk filesystem).
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// `primary`, `logical`, `gpt` or `whole-disk`.
    pub kind: String,
    /// MBR type (`0x83`) or GPT type GUID.
    pub type_code: String,
    /// Human name of the type.
    pub type_name: String,
    /// GPT partition name.
    pub name: String,
    /// GPT partition GUID.
    pub guid: Option<String>,
    /// MBR active flag.
    pub bootable: bool,
    /// Whether its data is in this image (saveparts stores only the chosen ones).
    pub saved: bool,
    /// Detected filesystem (`ext4`, `unknown`, …).
    pub filesystem: String,
    /// `used-blocks` or `raw`.
    pub mode: String,
    /// Filesystem label.
    pub label: Option<String>,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// Allocation unit in bytes.
    pub block_size: u32,
    /// Bytes the filesystem uses (= bytes stored for it).
    pub used_bytes: u64,
    /// Notes for the operator (why raw, dirty, …).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Number of files the filesystem holds, where its scanner counts them (VMFS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// For a volume manager's member (`LVM2_member`, `linux_raid_member`): the logical
    /// volumes that lie on it, each with what its scanner found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeRecord>,
    /// For a volume manager's member: bytes in no logical volume and no metadata (LVM free
    /// extents), not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unallocated_bytes: Option<u64>,
}

/// A logical volume inside a partition that is a volume manager's member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRecord {
    /// Its name, e.g. `vg_web01/root` or `md0`.
    pub name: String,
    /// How the manager maps it: `linear`, `striped`, `raid1`, or an unmapped layout
    /// (`thin-pool`, `snapshot`, …).
    pub layout: String,
    /// Its size in bytes.
    pub size: u64,
    /// Detected content (`xfs`, `swap`, `LVM2_member`, `unknown`, …).
    pub filesystem: String,
    /// `used-blocks` or `raw`.
    pub mode: String,
    /// Content label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Content UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Bytes its content uses (of the whole logical volume).
    pub used_bytes: u64,
    /// Notes (why raw, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Volumes inside it (LVM on md RAID).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeRecord>,
}

/// A stored area outside the partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionRecord {
    /// First byte.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// What it is.
    pub what: String,
}

/// Totals of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Data bytes stored.
    pub stored_bytes: u64,
    /// Payload bytes after compression.
    pub compressed_bytes: u64,
    /// Chunk records.
    pub chunks: u64,
    /// Container bytes up to the manifest record.
    pub container_bytes_before_manifest: u64,
}

/// One file of an image in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// File name inside the image directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 of the whole file, hex.
    pub crc32: String,
}

impl Manifest {
    /// Serialises as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }

    /// True for the `manifest.json` of an encrypted image (its full manifest is sealed).
    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// The public `manifest.json` of an encrypted image (`docs/FORMAT.md` §16.4): the whole
    /// manifest sealed with the image's metadata key, beside the fields that are not secret
    /// (name, kind, times, tool, image id, chunk size, compression, totals, files). Host name,
    /// disks and digest appear only inside the sealed part.
    pub fn seal(&self, keys: &crate::seal::Keys) -> Manifest {
        let mut full = self.clone();
        full.files.clear();
        full.sealed = None;
        let sealed = keys.seal_blob(self.image.as_bytes(), &full.to_json());
        Manifest {
            host: String::new(),
            disks: Vec::new(),
            digest: None,
            sealed: Some(sealed.iter().map(|b| format!("{b:02x}")).collect()),
            ..self.clone()
        }
    }

    /// The full manifest of an encrypted image from its public `manifest.json` (`self`), with
    /// `files` taken from `self`. Fails when the sealed part does not open with `keys` or does
    /// not belong to this image.
    pub fn unseal(&self, keys: &crate::seal::Keys) -> Result<Manifest> {
        let bad = |detail: String| ContainerError::Invalid {
            what: "sealed manifest",
            pos: 0,
            detail,
        };
        let hex = self.sealed.as_deref().ok_or(ContainerError::Invalid {
            what: "sealed manifest",
            pos: 0,
            detail: "the manifest is not sealed".into(),
        })?;
        if hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("not hexadecimal".into()));
        }
        let bytes: Vec<u8> = hex
            .as_bytes()
            .chunks(2)
            .map(|p| {
                let d = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                d(p[0]) << 4 | d(p[1])
            })
            .collect();
        let plain = keys.open_blob(self.image.as_bytes(), &bytes)?;
        let mut m = Manifest::from_json(&plain, 0)?;
        if m.image != self.image || m.image_id != self.image_id || m.sealed.is_some() {
            return Err(bad(format!(
                "the sealed manifest describes image {:?} ({}), not {:?} ({})",
                m.image, m.image_id, self.image, self.image_id
            )));
        }
        m.files = self.files.clone();
        Ok(m)
    }

    /// Parses and validates a manifest (`pos` is where it was found, for errors).
    pub fn from_json(b: &[u8], pos: u64) -> Result<Self> {
        let m: Manifest = parse_bounded(b, "manifest", pos)?;
        let bad = |detail: String| ContainerError::Invalid {
            what: "manifest",
            pos,
            detail,
        };
        if m.format != MANIFEST_FORMAT {
            return Err(bad(format!("format is {:?}", m.format)));
        }
        if m.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "manifest version {} is not supported",
                m.version
            )));
        }
        for (i, d) in m.disks.iter().enumerate() {
            if d.index as usize != i {
                return Err(bad(format!("disk {i} has index {}", d.index)));
            }
            d.validate().map_err(bad)?;
        }
        Ok(m)
    }
}

impl DiskRecord {
    /// Checks the geometry is self-consistent: sector sizes, partitions and boot regions inside
    /// the disk, each partition number once, no boot region inside a partition.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for s in [self.logical_sector_size, self.physical_sector_size] {
            if !(512..=65536).contains(&s) || !s.is_power_of_two() {
                return Err(format!("disk {}: sector size {s}", self.index));
            }
        }
        for p in &self.table.partitions {
            if p.start.checked_add(p.size).is_none_or(|e| e > self.size) {
                return Err(format!(
                    "disk {}: partition {} ends past the disk",
                    self.index, p.number
                ));
            }
        }
        let mut numbers: Vec<u32> = self.table.partitions.iter().map(|p| p.number).collect();
        numbers.sort_unstable();
        if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "disk {}: partition number {} appears twice",
                self.index, w[0]
            ));
        }
        // Boot regions are bytes outside the partitions: (start, end) of the partitions by
        // start, with the largest end so far, find one a region overlaps in O(log n).
        let mut parts: Vec<(u64, u64)> = self
            .table
            .partitions
            .iter()
            .filter(|p| p.size > 0)
            .map(|p| (p.start, p.start + p.size))
            .collect();
        parts.sort_unstable();
        let reach: Vec<u64> = parts
            .iter()
            .scan(0u64, |m, p| {
                *m = (*m).max(p.1);
                Some(*m)
            })
            .collect();
        for r in &self.boot_regions {
            let Some(end) = r.offset.checked_add(r.len).filter(|e| *e <= self.size) else {
                return Err(format!(
                    "disk {}: region {} ends past the disk",
                    self.index, r.what
                ));
            };
            // Partitions that start before the region ends; one of them overlaps it when the
            // furthest end among them passes the region's start.
            let before = parts.partition_point(|p| p.0 < end);
            if r.len > 0 && before > 0 && reach[before - 1] > r.offset {
                return Err(format!(
                    "disk {}: region {} at byte {} lies inside a partition",
                    self.index, r.what, r.offset
                ));
            }
        }
        Ok(())
    }

    /// The body of this disk's `DISK` record: compact JSON (see `docs/FORMAT.md`).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("disk record serialises")
    }

    /// Parses and validates the body of a `DISK` record (`pos` is where it was found, for
    /// errors). Bodies longer than [`MAX_JSON_LEN`](crate::format::MAX_JSON_LEN) are refused
    /// unread.
    pub fn from_json(b: &[u8], pos: u64) -> Result<Self> {
        let d: DiskRecord = parse_bounded(b, "disk record", pos)?;
        d.validate().map_err(|detail| ContainerError::Invalid {
            what: "disk record",
            pos,
            detail,
        })?;
        Ok(d)
    }

    /// The body of the disk list record (`DLST`) of an image of `list.len()` disks: the disk
    /// records in order, as one compact JSON array.
    pub fn list_to_json(list: &[DiskRecord]) -> Vec<u8> {
        serde_json::to_vec(list).expect("disk records serialise")
    }

    /// Parses and validates the body of a disk list record that announces `disks` disks:
    /// exactly that many records, numbered 0, 1, … in order, each valid. Bodies longer than
    /// [`MAX_JSON_LEN`](crate::format::MAX_JSON_LEN) are refused unread.
    pub fn list_from_json(b: &[u8], disks: u32, pos: u64) -> Result<Vec<Self>> {
        let list: Vec<DiskRecord> = parse_bounded(b, "disk list", pos)?;
        let bad = |detail: String| ContainerError::Invalid {
            what: "disk list",
            pos,
            detail,
        };
        if list.len() != disks as usize {
            return Err(bad(format!(
                "it describes {} disk(s), its header announces {disks}",
                list.len()
            )));
        }
        for (i, d) in list.iter().enumerate() {
            if d.index as usize != i {
                return Err(bad(format!("disk {i} has index {}", d.index)));
            }
            d.validate().map_err(bad)?;
        }
        Ok(list)
    }
}

/// Deserialises JSON of at most [`MAX_JSON_LEN`](crate::format::MAX_JSON_LEN) bytes.
fn parse_bounded<T: serde::de::DeserializeOwned>(
    b: &[u8],
    what: &'static str,
    pos: u64,
) -> Result<T> {
    if b.len() as u64 > u64::from(crate::format::MAX_JSON_LEN) {
        return Err(ContainerError::Invalid {
            what,
            pos,
            detail: "too large".into(),
        });
    }
    serde_json::from_slice(b).map_err(|source| ContainerError::Json { what, pos, source })
}
