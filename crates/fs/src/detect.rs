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
    /// Linux MD RAID member (superblock 1.1/1.2 magic 0xa92b4efc).
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
            Signature::Lvm2 => "lvm2-pv",
            Signature::Luks => "luks",
            Signature::Vmfs => "vmfs",
            Signature::MdRaid => "md-raid",
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

/// Identifies a volume's content by signature only (no metadata is trusted).
pub fn identify_signature(volume: &dyn ReadAt) -> Option<Signature> {
    let boot = read(volume, 0, 512);
    if let Some(b) = &boot {
        match &b[3..11] {
            b"-FVE-FS-" => return Some(Signature::BitLocker),
            b"NTFS    " => return Some(Signature::Ntfs),
            b"EXFAT   " => return Some(Signature::Exfat),
            _ => {}
        }
        if &b[0..4] == b"XFSB" {
            return Some(Signature::Xfs);
        }
        if &b[0..6] == b"LUKS\xba\xbe" {
            return Some(Signature::Luks);
        }
        let boot_sig = b[510] == 0x55 && b[511] == 0xAA;
        if boot_sig && (&b[54..59] == b"FAT12" || &b[54..59] == b"FAT16" || &b[82..87] == b"FAT32")
        {
            return Some(Signature::Fat);
        }
    }
    if read(volume, 1080, 2).is_some_and(|m| m == [0x53, 0xEF]) {
        return Some(Signature::Ext);
    }
    if at(volume, 65600, b"_BHRfS_M") {
        return Some(Signature::Btrfs);
    }
    if at(volume, 4086, b"SWAPSPACE2") || at(volume, 4086, b"SWAP-SPACE") {
        return Some(Signature::Swap);
    }
    for sector in 0..4u64 {
        if at(volume, sector * 512, b"LABELONE") {
            return Some(Signature::Lvm2);
        }
    }
    if at(volume, 0x10_0000, &0xC001_D00Du32.to_le_bytes()) {
        return Some(Signature::Vmfs);
    }
    if at(volume, 4096, &0xa92b_4efcu32.to_le_bytes())
        || at(volume, 0, &0xa92b_4efcu32.to_le_bytes())
    {
        return Some(Signature::MdRaid);
    }
    if at(volume, 32769, b"CD001") {
        return Some(Signature::Iso9660);
    }
    None
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

/// Chooses the first scanner whose probe accepts `volume`; otherwise names what the volume
/// seems to hold and why it will be copied whole.
pub fn detect<'s>(volume: &dyn ReadAt, scanners: &'s [&'s dyn Scanner]) -> Detection<'s> {
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
