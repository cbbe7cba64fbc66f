//! Signature detection: which filesystem (or other content) a volume holds.

use crate::{ReadAt, Scanner};

/// Content recognised by its on-disk signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// ext2/3/4 (magic 0xEF53 at byte 1080).
    Ext,
    /// NTFS (`NTFS    ` OEM id at byte 3).
    Ntfs,
    /// exFAT (`EXFAT   ` at byte 3).
    Exfat,
    /// FAT12/16/32 (boot signature and `FAT` type string).
    Fat,
    /// BitLocker (`-FVE-FS-` at byte 3).
    BitLocker,
    /// XFS (`XFSB` at byte 0).
    Xfs,
    /// Btrfs (`_BHRfS_M` at byte 65600).
    Btrfs,
    /// Linux swap (`SWAPSPACE2` / `SWAP-SPACE` before byte 4096).
    Swap,
    /// LVM2 physical volume (`LABELONE` in one of the first four sectors).
    Lvm2,
    /// LUKS encrypted volume.
    Luks,
    /// VMware VMFS volume (LVM magic 0xC001D00D at 1 MiB).
    Vmfs,
    /// Linux MD RAID member (superblock magic 0xa92b4efc: version 1.1 at byte 0, 1.2 at byte
    /// 4096, 0.90 and 1.0 near the end).
    MdRaid,
    /// ISO 9660 (`CD001` at byte 32769).
    Iso9660,
}

impl Signature {
    /// Name shown to operators.
    pub fn name(self) -> &'static str {
        match self {
            Signature::Ext => "ext",
            Signature::Ntfs => "ntfs",
            Signature::Exfat => "exfat",
            Signature::Fat => "fat",
            Signature::BitLocker => "bitlocker",
            Signature::Xfs => "xfs",
            Signature::Btrfs => "btrfs",
            Signature::Swap => "swap",
            Signature::Lvm2 => "LVM2_member",
            Signature::Luks => "crypto_LUKS",
            Signature::Vmfs => "vmfs",
            Signature::MdRaid => "linux_raid_member",
            Signature::Iso9660 => "iso9660",
        }
    }
}

fn read(volume: &dyn ReadAt, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    volume.read_exact_at(&mut b, offset).ok().map(|_| b)
}

fn at(volume: &dyn ReadAt, offset: u64, magic: &[u8]) -> bool {
    read(volume, offset, magic.len()).is_some_and(|b| b == magic)
}

/// Where an md RAID superblock lies on `volume`, if any: version 1.1 at byte 0, 1.2 at 4096,
/// 1.0 at 8 KiB before the end (rounded down to 4 KiB), 0.90 at 64 KiB before the end
/// (rounded down to 64 KiB). The superblocks at the end are looked for first: a member with
/// one there holds the array's own content (maybe a filesystem) at its start.
pub fn md_superblock_at(volume: &dyn ReadAt) -> Option<u64> {
    let magic = 0xa92b_4efcu32.to_le_bytes();
    let len = volume.len();
    let mut candidates = Vec::with_capacity(4);
    if len >= 128 * 1024 {
        candidates.push((len & !0xFFFF) - 0x10000);
    }
    if len >= 12 * 1024 {
        candidates.push((len - 8192) & !4095);
    }
    candidates.extend([0, 4096]);
    candidates.into_iter().find(|o| {
        // Version 1 superblocks say major version 1 right after the magic; 0.90 says 0.
        read(volume, *o, 8).is_some_and(|b| {
            b[0..4] == magic && (b[4..8] == 1u32.to_le_bytes() || b[4..8] == 0u32.to_le_bytes())
        })
    })
}

/// The content of a volume named as `blkid`/`lsblk -f` name it (`ext2`, `ext3`, `ext4`,
/// `vfat`, `ntfs`, `exfat`, `xfs`, `swap`, `LVM2_member`, `linux_raid_member`,
/// `crypto_LUKS`, `vmfs`, …), from signatures and the few superblock fields that tell the
/// variants apart; `None` when nothing is recognised.
pub fn content_type(volume: &dyn ReadAt) -> Option<String> {
    let sig = identify_signature(volume)?;
    Some(match sig {
        Signature::Ext => ext_variant(volume).to_string(),
        Signature::Fat => "vfat".to_string(),
        other => other.name().to_string(),
    })
}

/// ext2, ext3 or ext4 from the superblock's feature flags, as blkid tells them apart: a
/// feature only ext4 has makes it ext4, a journal makes it ext3.
fn ext_variant(volume: &dyn ReadAt) -> &'static str {
    let Some(sb) = read(volume, 1024, 1024) else {
        return "ext2";
    };
    let word = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    let (compat, incompat, ro_compat) = (word(0x5C), word(0x60), word(0x64));
    // Incompat: anything beyond filetype (0x2), recover (0x4), journal_dev (0x8), meta_bg
    // (0x10); ro_compat: anything beyond sparse_super (0x1), large_file (0x2), btree_dir (0x4).
    if incompat & !0x1E != 0 || ro_compat & !0x7 != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    }
}

/// Identifies a volume's content by signature only (no metadata is trusted): the first of
/// [`signatures`].
pub fn identify_signature(volume: &dyn ReadAt) -> Option<Signature> {
    signatures(volume).into_iter().next()
}

/// Every signature found on a volume, most telling first (an md superblock at the end, then
/// the boot-sector signatures, ext, btrfs, swap, LVM2, VMFS, md at the start, ISO 9660).
pub fn signatures(volume: &dyn ReadAt) -> Vec<Signature> {
    let mut out = Vec::new();
    let md = md_superblock_at(volume);
    if md.is_some_and(|o| o != 0 && o != 4096) {
        out.push(Signature::MdRaid);
    }
    if let Some(b) = read(volume, 0, 512) {
        match &b[3..11] {
            b"-FVE-FS-" => out.push(Signature::BitLocker),
            b"NTFS    " => out.push(Signature::Ntfs),
            b"EXFAT   " => out.push(Signature::Exfat),
            _ => {}
        }
        if &b[0..4] == b"XFSB" {
            out.push(Signature::Xfs);
        }
        if &b[0..6] == b"LUKS\xba\xbe" {
            out.push(Signature::Luks);
        }
        let boot_sig = b[510] == 0x55 && b[511] == 0xAA;
        if boot_sig && (&b[54..59] == b"FAT12" || &b[54..59] == b"FAT16" || &b[82..87] == b"FAT32")
        {
            out.push(Signature::Fat);
        }
    }
    if read(volume, 1080, 2).is_some_and(|m| m == [0x53, 0xEF]) {
        out.push(Signature::Ext);
    }
    if at(volume, 65600, b"_BHRfS_M") {
        out.push(Signature::Btrfs);
    }
    if at(volume, 4086, b"SWAPSPACE2") || at(volume, 4086, b"SWAP-SPACE") {
        out.push(Signature::Swap);
    }
    if (0..4u64).any(|sector| at(volume, sector * 512, b"LABELONE")) {
        out.push(Signature::Lvm2);
    }
    if at(volume, 0x10_0000, &0xC001_D00Du32.to_le_bytes()) {
        out.push(Signature::Vmfs);
    }
    if md.is_some_and(|o| o == 0 || o == 4096) {
        out.push(Signature::MdRaid);
    }
    if at(volume, 32769, b"CD001") {
        out.push(Signature::Iso9660);
    }
    out
}

/// Signatures that claim the whole volume for one filesystem (or its encryption): two of them
/// on one volume mean one is a stale leftover of an earlier filesystem. (VMFS and ISO 9660
/// lie deep enough in a volume that file data of another filesystem can hold their magic;
/// LVM2 and md are volume managers, looked at before this.)
fn claims_the_volume(sig: Signature) -> bool {
    matches!(
        sig,
        Signature::Ext
            | Signature::Ntfs
            | Signature::Exfat
            | Signature::Fat
            | Signature::BitLocker
            | Signature::Xfs
            | Signature::Btrfs
            | Signature::Swap
            | Signature::Luks
    )
}

/// What to do with a volume.
pub enum Detection<'s> {
    /// A scanner recognised the volume; store only its used extents.
    Scanner(&'s dyn Scanner),
    /// Copy the volume whole.
    Raw {
        /// What the volume seems to hold (`unknown` when nothing matched).
        fs_type: String,
        /// Why it is copied whole, in words for the operator.
        reason: String,
    },
}

/// Chooses the scanner whose probe accepts `volume`; otherwise names what the volume seems to
/// hold and why it will be copied whole. A volume that carries the signatures of two
/// filesystems (a stale superblock of an earlier one that its successor did not overwrite) is
/// copied whole with a warning: scanning it as either one could drop the other's blocks, and
/// only the operator knows which one is current.
pub fn detect<'s>(volume: &dyn ReadAt, scanners: &'s [&'s dyn Scanner]) -> Detection<'s> {
    let mut claims: Vec<Signature> = Vec::new();
    for s in signatures(volume)
        .into_iter()
        .filter(|s| claims_the_volume(*s))
    {
        if !claims.contains(&s) {
            claims.push(s);
        }
    }
    if claims.len() >= 2 {
        let names: Vec<&str> = claims.iter().map(|s| s.name()).collect();
        return Detection::Raw {
            fs_type: names.join("+"),
            reason: format!(
                "signatures of {} filesystems on one volume ({}): one is a stale leftover of \
                 an earlier filesystem; copied whole (`wipefs --no-act` lists them; after the \
                 restore, `wipefs --offset` removes the stale one)",
                claims.len(),
                names.join(", ")
            ),
        };
    }
    if let Some(s) = scanners.iter().find(|s| s.probe(volume)) {
        return Detection::Scanner(*s);
    }
    match identify_signature(volume) {
        Some(Signature::BitLocker) => Detection::Raw {
            fs_type: Signature::BitLocker.name().to_string(),
            reason: "BitLocker-encrypted volume: copied whole (encrypted blocks cannot be \
                     told apart)"
                .to_string(),
        },
        Some(Signature::Luks) => Detection::Raw {
            fs_type: Signature::Luks.name().to_string(),
            reason: "LUKS-encrypted volume: copied whole (without the key, used and free \
                     blocks cannot be told apart)"
                .to_string(),
        },
        Some(sig) => Detection::Raw {
            fs_type: sig.name().to_string(),
            reason: format!("{}: no used-block scanner for it; copied whole", sig.name()),
        },
        None => Detection::Raw {
            fs_type: "unknown".to_string(),
            reason: "no filesystem signature recognised; copied whole".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(compat: u32, incompat: u32, ro_compat: u32) -> Vec<u8> {
        let mut v = vec![0u8; 4096];
        v[1080..1082].copy_from_slice(&[0x53, 0xEF]);
        v[1024 + 0x5C..1024 + 0x60].copy_from_slice(&compat.to_le_bytes());
        v[1024 + 0x60..1024 + 0x64].copy_from_slice(&incompat.to_le_bytes());
        v[1024 + 0x64..1024 + 0x68].copy_from_slice(&ro_compat.to_le_bytes());
        v
    }

    #[test]
    fn ext_variants_and_blkid_names() {
        assert_eq!(content_type(&ext(0, 0x2, 0x3)).as_deref(), Some("ext2"));
        assert_eq!(content_type(&ext(0x4, 0x2, 0x3)).as_deref(), Some("ext3"));
        // extents + flex_bg, metadata_csum
        assert_eq!(
            content_type(&ext(0x4, 0x2C2, 0x400)).as_deref(),
            Some("ext4")
        );
        assert_eq!(
            content_type(&ext(0x4, 0x2, 0x3 | 0x8)).as_deref(),
            Some("ext4")
        );
        let mut lvm = vec![0u8; 4096];
        lvm[512..520].copy_from_slice(b"LABELONE");
        assert_eq!(content_type(&lvm).as_deref(), Some("LVM2_member"));
    }

    /// A probe that accepts everything: the first scanner any volume would be given to.
    struct Greedy;
    impl crate::Scanner for Greedy {
        fn name(&self) -> &'static str {
            "greedy"
        }
        fn probe(&self, _volume: &dyn ReadAt) -> bool {
            true
        }
        fn open(
            &self,
            _volume: crate::SharedVolume,
        ) -> Result<Box<dyn crate::UsedBlocks>, crate::FsError> {
            unreachable!("detect only probes")
        }
    }

    #[test]
    fn two_filesystem_signatures_are_copied_whole() {
        // An NTFS boot sector over a stale ext superblock: neither scanner may take it.
        let mut v = ext(0x4, 0x2C2, 0x400);
        v[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(signatures(&v), [Signature::Ntfs, Signature::Ext]);
        match detect(&v, &[&Greedy]) {
            Detection::Raw { fs_type, reason } => {
                assert_eq!(fs_type, "ntfs+ext");
                assert!(reason.contains("stale"), "{reason}");
            }
            Detection::Scanner(_) => panic!("a volume with two signatures was scanned"),
        }
        // One filesystem, and a volume manager signature or deep magic, are not two.
        let mut one = ext(0x4, 0x2C2, 0x400);
        one.resize(0x10_0004, 0);
        one[0x10_0000..0x10_0004].copy_from_slice(&0xC001_D00Du32.to_le_bytes());
        assert!(matches!(detect(&one, &[&Greedy]), Detection::Scanner(_)));
    }

    #[test]
    fn md_superblocks_at_the_end_win_over_what_the_member_holds() {
        let magic = 0xa92b_4efcu32.to_le_bytes();
        // A 1.0 member whose array holds an LVM PV: the label shows at the member's start.
        let len = 1 << 20;
        let mut v = ext(0x4, 0x2, 0x3);
        v.resize(len, 0);
        let sb = (len as u64 - 8192) & !4095;
        v[sb as usize..sb as usize + 4].copy_from_slice(&magic);
        v[sb as usize + 4..sb as usize + 8].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(md_superblock_at(&v), Some(sb));
        assert_eq!(identify_signature(&v), Some(Signature::MdRaid));
        // 0.90: 64 KiB before the end rounded down to 64 KiB; major version 0.
        let mut w = vec![0u8; len + 1000];
        let sb = ((len as u64 + 1000) & !0xFFFF) - 0x10000;
        w[sb as usize..sb as usize + 4].copy_from_slice(&magic);
        assert_eq!(md_superblock_at(&w), Some(sb));
        assert_eq!(content_type(&w).as_deref(), Some("linux_raid_member"));
        // A magic with another major version is not a superblock.
        w[sb as usize + 4] = 7;
        assert_eq!(md_superblock_at(&w), None);
    }

    #[test]
    fn recognises_signatures_and_never_panics_on_short_volumes() {
        let mut v = vec![0u8; 70_000];
        assert_eq!(identify_signature(&v), None);
        v[1080] = 0x53;
        v[1081] = 0xEF;
        assert_eq!(identify_signature(&v), Some(Signature::Ext));
        v[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(identify_signature(&v), Some(Signature::Ntfs));
        for n in 0..600 {
            let _ = identify_signature(&&v[..n]);
        }
    }
}
