//! Hand-made hostile and unusual tables.

use lifeboat_parttable::{read_layout, relocate_gpt, PartError, PartitionKind, TableKind};

const SS: usize = 512;

fn entry(disk: &mut [u8], sector: usize, slot: usize, boot: u8, sys: u8, start: u32, size: u32) {
    let at = sector * SS + 446 + 16 * slot;
    disk[at] = boot;
    disk[at + 4] = sys;
    disk[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
    disk[at + 12..at + 16].copy_from_slice(&size.to_le_bytes());
    disk[sector * SS + 510] = 0x55;
    disk[sector * SS + 511] = 0xaa;
}

/// An MBR with one primary and an extended partition at LBA 100 holding `n` logicals whose
/// EBRs sit every 10 sectors.
fn chain(n: usize) -> Vec<u8> {
    let mut d = vec![0u8; 2000 * SS];
    entry(&mut d, 0, 0, 0x80, 0x83, 10, 80);
    entry(&mut d, 0, 1, 0, 0x05, 100, 1800);
    for i in 0..n {
        let ebr = 100 + 10 * i;
        entry(&mut d, ebr, 0, 0, 0x83, 2, 8);
        if i + 1 < n {
            entry(&mut d, ebr, 1, 0, 0x05, 10 * (i as u32 + 1), 10);
        }
    }
    d
}

#[test]
fn an_ebr_chain_is_walked_in_order() {
    let d = chain(4);
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.kind, TableKind::Mbr);
    let nums: Vec<u32> = l.partitions.iter().map(|p| p.number).collect();
    assert_eq!(nums, [1, 5, 6, 7, 8]);
    assert_eq!(l.partitions[1].start, 102 * 512);
    assert_eq!(l.partitions[1].kind, PartitionKind::Logical);
    assert!(l.partitions[0].bootable);
    // MBR + gap, the gap between partition 1 and the first EBR, every EBR with its gap.
    let ebr: Vec<(u64, u64)> = l
        .boot_regions
        .iter()
        .filter(|r| r.what.contains("EBR"))
        .map(|r| (r.offset / 512, r.len / 512))
        .collect();
    // The first EBR region also holds the gap after partition 1 (LBA 90..100).
    assert_eq!(ebr, [(90, 12), (110, 2), (120, 2), (130, 2)]);
    assert_eq!(
        (l.boot_regions[0].offset, l.boot_regions[0].len),
        (0, 10 * 512)
    );
}

#[test]
fn a_looping_ebr_chain_is_an_error() {
    let mut d = chain(3);
    // The third EBR links back to the second.
    entry(&mut d, 120, 1, 0, 0x05, 10, 10);
    let e = read_layout(&d, 512).unwrap_err();
    assert!(matches!(e, PartError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("loops"), "{e}");
    // A self-link.
    let mut d = chain(1);
    entry(&mut d, 100, 1, 0, 0x05, 0, 10);
    assert!(read_layout(&d, 512)
        .unwrap_err()
        .to_string()
        .contains("loops"));
}

#[test]
fn a_too_long_or_escaping_chain_is_an_error() {
    let mut d = vec![0u8; 4000 * SS];
    entry(&mut d, 0, 0, 0, 0x0f, 1, 3990);
    for i in 0..200usize {
        let ebr = 1 + 2 * i;
        entry(&mut d, ebr, 0, 0, 0x83, 1, 1);
        entry(&mut d, ebr, 1, 0, 0x05, 2 * (i as u32 + 1), 2);
    }
    let e = read_layout(&d, 512).unwrap_err();
    assert!(e.to_string().contains("more than 128"), "{e}");

    let mut d = chain(2);
    entry(&mut d, 110, 1, 0, 0x05, 5000, 10);
    let e = read_layout(&d, 512).unwrap_err();
    assert!(
        e.to_string().contains("outside its extended partition"),
        "{e}"
    );

    let mut d = chain(2);
    d[110 * SS + 510] = 0;
    let e = read_layout(&d, 512).unwrap_err();
    assert!(e.to_string().contains("0x55AA"), "{e}");
}

#[test]
fn an_empty_extended_partition_has_no_logicals() {
    let mut d = vec![0u8; 300 * SS];
    entry(&mut d, 0, 0, 0, 0x05, 100, 100);
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.kind, TableKind::Mbr);
    assert!(l.partitions.is_empty());
}

#[test]
fn whole_disk_filesystems_are_not_tables() {
    // NTFS boot sector whose boot code happens to look like valid entries.
    let mut d = vec![0u8; 100 * SS];
    d[3..11].copy_from_slice(b"NTFS    ");
    entry(&mut d, 0, 0, 0, 0x07, 5000, 5000);
    assert_eq!(read_layout(&d, 512).unwrap().kind, TableKind::None);
    // A FAT32 boot sector with boot-flag garbage.
    let mut d = vec![0u8; 100 * SS];
    d[0] = 0xeb;
    d[2] = 0x90;
    d[11..13].copy_from_slice(&512u16.to_le_bytes());
    d[13] = 8;
    d[14] = 32;
    d[16] = 2;
    d[21] = 0xf8;
    d[82..87].copy_from_slice(b"FAT32");
    d[446] = 0x4e;
    d[510] = 0x55;
    d[511] = 0xaa;
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.kind, TableKind::None);
    assert!(l.boot_regions.is_empty());
}

#[test]
fn odd_entries_give_warnings_not_panics() {
    let mut d = vec![0u8; 100 * SS];
    entry(&mut d, 0, 0, 0, 0x83, 10, 1000);
    entry(&mut d, 0, 1, 0, 0x83, 20, 10);
    entry(&mut d, 0, 2, 0, 0x83, 30, 0);
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.partitions.len(), 2);
    let w = l.warnings.join("\n");
    assert!(w.contains("passes the end"), "{w}");
    assert!(w.contains("overlap"), "{w}");
    assert!(w.contains("no sectors"), "{w}");
    for r in &l.boot_regions {
        assert!(r.end() <= l.disk_size);
    }
}

#[test]
fn tiny_and_empty_disks() {
    for n in [0usize, 1, 511, 512, 513, 1024, 4096] {
        let d = vec![0u8; n];
        for ss in [512, 4096] {
            assert_eq!(read_layout(&d, ss).unwrap().kind, TableKind::None);
        }
    }
    let mut d = vec![0u8; 512];
    entry(&mut d, 0, 0, 0, 0xee, 1, 0xffff_ffff);
    assert!(read_layout(&d, 512).is_err());
    let e = read_layout(&d, 1000).unwrap_err();
    assert!(matches!(e, PartError::SectorSize { sector_size: 1000 }));
}

#[test]
fn an_empty_mbr_keeps_its_first_mebibyte() {
    let mut d = vec![0u8; 4 << 20];
    d[440..444].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xaa;
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.kind, TableKind::Mbr);
    assert_eq!(l.disk_id.as_deref(), Some("0xdeadbeef"));
    assert_eq!(l.boot_regions.len(), 1);
    assert_eq!(l.boot_regions[0].len, 1 << 20);
}

/// A GPT made by hand with correct CRCs: `entries` are (type GUID bytes, first, last).
fn hand_gpt(
    ss: usize,
    sectors: usize,
    entries: &[([u8; 16], u64, u64)],
    tweak: impl Fn(&mut [u8]),
) -> Vec<u8> {
    let mut d = vec![0u8; ss * sectors];
    entry(&mut d, 0, 0, 0, 0xee, 1, (sectors - 1) as u32);
    let esec = 16384 / ss;
    let mut array = vec![0u8; 16384];
    for (i, (ty, first, last)) in entries.iter().enumerate() {
        let e = &mut array[128 * i..128 * (i + 1)];
        e[..16].copy_from_slice(ty);
        e[16] = i as u8 + 1;
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
    }
    d[2 * ss..2 * ss + 16384].copy_from_slice(&array);
    let h = &mut d[ss..2 * ss];
    h[..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&(sectors as u64 - 1).to_le_bytes());
    h[40..48].copy_from_slice(&(2 + esec as u64).to_le_bytes());
    h[48..56].copy_from_slice(&((sectors - 2 - esec) as u64).to_le_bytes());
    h[56] = 0x42;
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    h[88..92].copy_from_slice(&crc32fast::hash(&array).to_le_bytes());
    tweak(h);
    let size = (u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize).clamp(92, ss);
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h[..size]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    d
}

const LINUX: [u8; 16] = [
    0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
];

#[test]
fn hand_made_gpt_reads_back_and_hostile_ranges_are_ignored() {
    let d = hand_gpt(
        512,
        200,
        &[(LINUX, 40, 99), (LINUX, 0, u64::MAX), (LINUX, 90, 10)],
        |_| {},
    );
    let l = read_layout(&d, 512).unwrap();
    assert_eq!(l.kind, TableKind::Gpt);
    assert_eq!(l.partitions.len(), 1);
    assert_eq!(l.partitions[0].type_name, "Linux filesystem");
    assert_eq!(
        (l.partitions[0].start, l.partitions[0].size),
        (40 * 512, 60 * 512)
    );
    let w = l.warnings.join("\n");
    assert!(w.contains("entry 2 has an impossible range"), "{w}");
    assert!(w.contains("entry 3 has an impossible range"), "{w}");
    // The backup header is missing: a warning, the primary is used.
    assert!(w.contains("backup"), "{w}");
}

#[test]
fn unsupported_or_hostile_gpt_headers_are_errors_not_panics() {
    type Tweak = Box<dyn Fn(&mut [u8])>;
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "entry size",
            Box::new(|h| h[84..88].copy_from_slice(&256u32.to_le_bytes())),
        ),
        (
            "too many",
            Box::new(|h| h[80..84].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "header size",
            Box::new(|h| h[12..16].copy_from_slice(&100u32.to_le_bytes())),
        ),
        (
            "past the end",
            Box::new(|h| h[72..80].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
        (
            "overlaps",
            Box::new(|h| h[72..80].copy_from_slice(&1u64.to_le_bytes())),
        ),
        (
            "says it is at",
            Box::new(|h| h[24..32].copy_from_slice(&7u64.to_le_bytes())),
        ),
        (
            "first usable",
            Box::new(|h| h[40..48].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
    ];
    for (want, tweak) in cases {
        let d = hand_gpt(512, 200, &[(LINUX, 40, 99)], tweak);
        let e = read_layout(&d, 512).unwrap_err();
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
}

#[test]
fn read_and_seek_sources_work_too() {
    let d = chain(2);
    let a = read_layout(&d, 512).unwrap();
    let b = lifeboat_parttable::read_layout_from(std::io::Cursor::new(d), 512).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_gpt_signature_tells_the_sector_size_of_an_image() {
    use lifeboat_parttable::sniff_sector_size;
    let mut d = vec![0u8; 16 * 1024];
    assert_eq!(sniff_sector_size(&d), None);
    d[4096..4104].copy_from_slice(b"EFI PART");
    assert_eq!(sniff_sector_size(&d), Some(4096));
    d[512..520].copy_from_slice(b"EFI PART");
    assert_eq!(
        sniff_sector_size(&d),
        Some(512),
        "512 wins when both hold one"
    );
    // Cut inside the signature at 512: no signature, no panic.
    assert_eq!(sniff_sector_size(&d[..519].to_vec()), None);
    assert_eq!(sniff_sector_size(&Vec::<u8>::new()), None);
}

/// The 0xEE entry's sector count (protective MBR, first slot).
fn protective_size(d: &[u8]) -> u32 {
    u32::from_le_bytes(d[446 + 12..446 + 16].try_into().unwrap())
}

/// Relocating the backup GPT resizes the protective MBR's 0xEE entry when it covered the old
/// disk, reaches the new disk's end or runs past it, and leaves it alone otherwise; a second
/// relocation to the same size changes no byte. Found by the fuzzing campaign: a primary
/// header whose backup LBA was garbage left an entry past the new disk's end, which the second
/// relocation (now with a sane backup LBA) shrank.
#[test]
fn gpt_relocation_sizes_the_protective_entry_and_is_idempotent() {
    // (old sectors, 0xEE sector count, backup LBA in the header, new sectors, count expected)
    let cases: [(usize, u32, u64, u64, u32); 6] = [
        (200, 16383, 0x0010_0000_0000_3fff, 300, 299), // past the new end, garbage backup LBA
        (200, 199, 199, 300, 299),                     // covered the old disk: grown
        (200, 100, 199, 300, 100),                     // covered less: left alone
        (200, 298, 150, 300, 299),                     // covered the old disk, near the new end
        (400, 399, 399, 300, 299),                     // a smaller disk: shrunk to it
        (200, 0xffff_ffff, 199, 300, 299),             // "the whole disk": sized to it
    ];
    for (old, ee, alt, new, want) in cases {
        let mut d = hand_gpt(512, old, &[(LINUX, 40, 99)], |h| {
            h[32..40].copy_from_slice(&alt.to_le_bytes())
        });
        entry(&mut d, 0, 0, 0, 0xee, 1, ee);
        d.resize(new as usize * 512, 0);
        let mut dev = std::io::Cursor::new(d);
        relocate_gpt(&mut dev, 512, new * 512).unwrap();
        let once = dev.get_ref().clone();
        assert_eq!(protective_size(&once), want, "case {old} {ee} {alt} {new}");
        relocate_gpt(&mut dev, 512, new * 512).unwrap();
        assert!(
            *dev.get_ref() == once,
            "a second relocation changed bytes: case {old} {ee} {alt} {new}"
        );
        let l = read_layout(&once, 512).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(
            (l.partitions[0].start, l.partitions[0].size),
            (40 * 512, 60 * 512)
        );
    }
}
