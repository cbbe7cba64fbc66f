//! The scanner on real volumes made by mkntfs and populated through ntfs-3g
//! (`test_data/make.sh`): used bytes must equal ntfsinfo's count exactly, and the extents must
//! be exactly the set bits of `$Bitmap` as ntfs-3g reads it (`ntfscat -i 6`), plus the backup
//! boot sector.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use lifeboat_fs::{Extent, ExtentMerger, FsError, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_ntfs::mft_record::{apply_fixups, attr_type, protect};
use lifeboat_fs_ntfs::runlist::{decode, encode, Run};
use lifeboat_fs_ntfs::scanner::{Ntfs, Stream, BITMAP_CHUNK_BYTES};
use lifeboat_fs_ntfs::{BootSector, NtfsScanner};

const NAMES: &[&str] = &[
    "ntfs-512",
    "ntfs-4k",
    "ntfs-64k",
    "ntfs-2m",
    "ntfs-grown",
    "ntfs-hiber",
];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name)
}

/// Decompresses a fixture into a sparse temporary file (all-zero blocks become holes).
fn unpack(name: &str) -> (tempfile::NamedTempFile, u64) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let len = lifeboat_testkit::unpack_sparse(&data(&format!("{name}.img.zst")), tmp.path());
    (tmp, len)
}

fn expect(name: &str) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(data(&format!("{name}.expect"))).unwrap();
    let field = |f: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(f).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("{name}.expect lacks {f}"))
    };
    (
        field("Cluster Size:"),
        field("Volume Size in Clusters:"),
        field("Free Clusters:"),
    )
}

fn bitmap(name: &str) -> Vec<u8> {
    lifeboat_testkit::decompress(&data(&format!("{name}.bitmap.zst")))
}

fn drain(s: &mut dyn UsedBlocks) -> Vec<Extent> {
    let mut v = Vec::new();
    while let Some(e) = s.next_extent().unwrap() {
        v.push(e);
    }
    v
}

#[test]
fn used_bytes_match_ntfsinfo_and_extents_match_the_bitmap() {
    for name in NAMES {
        let (tmp, len) = unpack(name);
        let vol = (File::open(tmp.path()).unwrap(), len);
        assert!(NtfsScanner.probe(&vol), "{name}: probe");
        let mut s = NtfsScanner.open_ntfs(&vol).unwrap();
        let info = s.info().clone();
        let (cs, clusters, free) = expect(name);
        let bps = u64::from(s.boot_sector().bytes_per_sector);
        assert_eq!(info.fs_type, "ntfs");
        assert_eq!(u64::from(info.block_size), cs, "{name}: cluster size");
        assert_eq!(
            s.boot_sector().clusters(),
            clusters,
            "{name}: cluster count"
        );
        let backup_bytes: u64 = s.backup_sectors().iter().map(|e| e.len).sum();
        assert_eq!(
            info.used_bytes,
            (clusters - free) * cs + backup_bytes,
            "{name}: used bytes must be ntfsinfo's used clusters plus the backup boot sector(s)"
        );
        // mkntfs: the backup boot sector is the last sector of the volume; ntfsresize rounds
        // the sector count down to whole clusters and writes it to the last sector.
        let n_backups = if *name == "ntfs-grown" { 2 } else { 1 };
        assert_eq!(s.backup_sectors().len(), n_backups, "{name}");
        assert_eq!(info.label.as_deref(), Some(*name), "{name}: label");
        assert_eq!(info.uuid.as_deref().map(str::len), Some(16));
        assert_eq!(info.total_bytes, s.boot_sector().total_bytes());
        assert!(info.total_bytes <= len);
        assert!(s.memory_bytes() <= BITMAP_CHUNK_BYTES as usize + (1 << 20));

        // The extents are the set bits of ntfs-3g's reading of $Bitmap (padding bits past the
        // last cluster ignored), plus the backup boot sector.
        let bits = bitmap(name);
        assert!(bits.len() as u64 * 8 >= clusters);
        let mut m = ExtentMerger::new();
        let mut want = Vec::new();
        for c in 0..clusters {
            if bits[(c / 8) as usize] & (1 << (c % 8)) != 0 {
                want.extend(m.push(Extent::new(c * cs, cs)));
            }
        }
        let backups = s.boot_sector().backup_offset();
        assert_eq!(s.backup_sectors()[0], Extent::new(backups, bps));
        for e in s.backup_sectors() {
            assert!(e.offset >= clusters * cs && e.end() <= len, "{name}: {e:?}");
            want.extend(m.push(*e));
        }
        want.extend(m.finish());
        let got = drain(&mut s);
        assert_eq!(got, want, "{name}: extents differ from ntfs-3g's bitmap");
        assert_eq!(got.iter().map(|e| e.len).sum::<u64>(), info.used_bytes);

        // The backup boot sector really is in the last kept sector and equals the primary.
        let last = *s.backup_sectors().last().unwrap();
        assert_eq!(
            last.end(),
            len / bps * bps,
            "{name}: last sector of the volume kept"
        );
        let mut a = vec![0u8; 512];
        let mut b = vec![0u8; 512];
        vol.read_exact_at(&mut a, 0).unwrap();
        vol.read_exact_at(&mut b, last.offset).unwrap();
        assert_eq!(a, b, "{name}: backup boot sector");

        // Warnings: exactly the expected ones.
        let w = info.warnings.join("\n");
        assert_eq!(w.contains("dirty"), *name == "ntfs-grown", "{name}: {w}");
        assert_eq!(
            w.contains("hibernated"),
            *name == "ntfs-hiber",
            "{name}: {w}"
        );
        assert!(!w.contains("could not check"), "{name}: {w}");
    }
}

/// True when `tool` is installed; otherwise skips loudly (a failure when `CI=true`).
fn have(tool: &str) -> bool {
    lifeboat_testkit::tool(tool, "ntfs-3g").is_some()
}

fn le16(b: &[u8], o: usize) -> usize {
    usize::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

fn le32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

/// Moves the second half of `$Bitmap` to free clusters far away, marking them used and the
/// old ones free, and rewrites record 6's mapping pairs to two runs. Returns the new runs.
fn fragment_bitmap(v: &mut [u8]) -> Vec<Run> {
    let boot = BootSector::parse(&v[..512]).unwrap();
    let cs = boot.cluster_size as usize;
    let rs = boot.record_size as usize;
    let at = (boot.mft_lcn as usize) * cs + 6 * rs;
    let mut rec = v[at..at + rs].to_vec();
    apply_fixups(&mut rec, b"FILE", "record 6").unwrap();
    // Find the $DATA attribute.
    let mut pos = le16(&rec, 0x14);
    while le32(&rec, pos) != 0x80 {
        pos += le32(&rec, pos + 4);
    }
    let alen = le32(&rec, pos + 4);
    let mp_off = le16(&rec, pos + 32);
    let runs: Vec<Run> = decode(&rec[pos + mp_off..pos + alen], 0)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs.len(), 1, "fixture bitmap already fragmented: {runs:?}");
    let (n, old) = (runs[0].len as usize, runs[0].lcn.unwrap() as usize);
    assert!(n >= 2, "bitmap of one cluster cannot be split");
    let h = n / 2;
    let mut bits = v[old * cs..(old + n) * cs].to_vec();
    let clusters = boot.clusters() as usize;
    let get = |b: &[u8], c: usize| b[c / 8] & (1 << (c % 8)) != 0;
    let new = (clusters / 2..clusters - (n - h))
        .find(|&c| (c..c + n - h).all(|k| !get(&bits, k)))
        .expect("free space for the moved half");
    for c in old + h..old + n {
        bits[c / 8] &= !(1 << (c % 8));
    }
    for c in new..new + n - h {
        bits[c / 8] |= 1 << (c % 8);
    }
    v[old * cs..(old + h) * cs].copy_from_slice(&bits[..h * cs]);
    v[new * cs..(new + n - h) * cs].copy_from_slice(&bits[h * cs..]);
    let new_runs = vec![
        Run {
            vcn: 0,
            len: h as u64,
            lcn: Some(old as u64),
        },
        Run {
            vcn: h as u64,
            len: (n - h) as u64,
            lcn: Some(new as u64),
        },
    ];
    let mut mp = encode(&new_runs);
    mp.resize(mp.len().div_ceil(8) * 8, 0);
    let new_len = mp_off + mp.len();
    let in_use = le32(&rec, 0x18);
    let delta = new_len as isize - alen as isize;
    let mut out = rec[..pos + mp_off].to_vec();
    out.extend_from_slice(&mp);
    out.extend_from_slice(&rec[pos + alen..in_use]);
    let new_in_use = out.len();
    assert_eq!(new_in_use as isize, in_use as isize + delta);
    assert!(
        new_in_use <= rs - 8,
        "record 6 has no room for the longer runlist"
    );
    out.resize(rs, 0);
    out[pos + 4..pos + 8].copy_from_slice(&(new_len as u32).to_le_bytes());
    out[0x18..0x1C].copy_from_slice(&(new_in_use as u32).to_le_bytes());
    let usa_ofs = le16(&out, 4);
    let usn = le16(&rec, usa_ofs) as u16;
    protect(&mut out, usa_ofs, usn.wrapping_add(1).max(1));
    v[at..at + rs].copy_from_slice(&out);
    new_runs
}

#[test]
fn a_fragmented_bitmap_is_followed_across_its_runs() {
    let name = "ntfs-512";
    let (tmp, len) = unpack(name);
    let mut v = vec![0u8; len as usize];
    File::open(tmp.path()).unwrap().read_exact(&mut v).unwrap();
    let before = NtfsScanner.open_ntfs(&v).unwrap().info().used_bytes;
    let runs = fragment_bitmap(&mut v);
    let mut s = NtfsScanner.open_ntfs(&v).unwrap();
    assert_eq!(
        s.info().used_bytes,
        before,
        "moving clusters keeps the count"
    );
    let ntfs = Ntfs::open(&v).unwrap();
    match ntfs.stream(6, attr_type::DATA, &[]).unwrap().unwrap() {
        Stream::NonResident { runs: got, .. } => assert_eq!(got, runs),
        other => panic!("resident $Bitmap: {other:?}"),
    }
    // The extents include the moved half and not the old place.
    let ext = drain(&mut s);
    let cs = u64::from(s.info().block_size);
    let covered = |c: u64| ext.iter().any(|e| e.offset <= c * cs && c * cs < e.end());
    let moved = runs[1].lcn.unwrap();
    assert!((moved..moved + runs[1].len).all(covered));
    let old_end = runs[0].lcn.unwrap() + runs[0].len + runs[1].len;
    assert!(!(runs[0].lcn.unwrap() + runs[0].len..old_end).any(covered));
    // ntfs-3g agrees: same free count, and the bitmap it reads matches the extents.
    if have("ntfsinfo") && have("ntfscat") {
        let path = tmp.path().with_extension("frag");
        std::fs::write(&path, &v).unwrap();
        let out = std::process::Command::new("ntfsinfo")
            .args(["-f", "-m"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |f: &str| -> u64 {
            text.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(f)
                        .map(|x| x.split_whitespace().next().unwrap().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("ntfsinfo lacks {f}:\n{text}"))
        };
        let used = field("Volume Size in Clusters:") - field("Free Clusters:");
        assert_eq!(s.info().used_bytes, used * cs + 512);
        let cat = std::process::Command::new("ntfscat")
            .args(["-f", "-i", "6"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(cat.status.success());
        let bits = cat.stdout;
        let clusters = s.boot_sector().clusters();
        for c in 0..clusters {
            let set = bits[(c / 8) as usize] & (1 << (c % 8)) != 0;
            assert_eq!(set, covered(c), "cluster {c}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}

/// A volume given as bytes, to damage in place.
fn load(name: &str) -> Vec<u8> {
    let (tmp, len) = unpack(name);
    let mut v = vec![0u8; len as usize];
    File::open(tmp.path()).unwrap().read_exact(&mut v).unwrap();
    v
}

fn open_err(v: &[u8]) -> FsError {
    match NtfsScanner.open_ntfs(&v) {
        Ok(_) => panic!("damaged volume was accepted"),
        Err(e) => e,
    }
}

#[test]
fn damage_is_refused_not_guessed() {
    let good = load("ntfs-4k");
    let boot = BootSector::parse(&good[..512]).unwrap();
    let mft = (boot.mft_lcn * boot.cluster_size) as usize;
    let rs = boot.record_size as usize;

    // Truncated volume: the backup boot sector is missing.
    let v = &good[..good.len() - 512];
    assert!(!NtfsScanner.probe(&v));
    assert!(matches!(open_err(v), FsError::Corrupt { .. }));

    // A torn $Bitmap record (fixup mismatch).
    let mut v = good.clone();
    v[mft + 6 * rs + 510] ^= 0xFF;
    assert!(
        matches!(open_err(&v), FsError::Corrupt { .. }),
        "torn record 6"
    );

    // $MFT record 0 not a FILE record.
    let mut v = good.clone();
    v[mft..mft + 4].copy_from_slice(b"BAAD");
    assert!(matches!(open_err(&v), FsError::Corrupt { .. }));

    // Unknown sectors-per-cluster value.
    let mut v = good.clone();
    v[0x0D] = 3;
    assert!(!NtfsScanner.probe(&v));
    assert!(open_err(&v).to_string().contains("sectors per cluster"));

    // $Bitmap with cluster 0 clear.
    let bits = bitmap("ntfs-4k");
    let first = bits[0];
    let at = good
        .windows(bits.len().min(4096))
        .position(|w| w == &bits[..bits.len().min(4096)])
        .expect("bitmap on disk");
    let mut v = good.clone();
    v[at] = first & !1;
    assert!(open_err(&v).to_string().contains("cluster 0"));

    // Not NTFS at all.
    let mut v = good.clone();
    v[3..11].copy_from_slice(b"MSDOS5.0");
    assert!(matches!(open_err(&v), FsError::NotRecognised { .. }));
}

#[test]
fn padding_bits_past_the_last_cluster_are_ignored() {
    let name = "ntfs-512";
    let mut v = load(name);
    let bits = bitmap(name);
    let (_, clusters, _) = expect(name);
    assert!(
        bits.len() as u64 * 8 > clusters,
        "fixture must have padding bits"
    );
    let at = v
        .windows(bits.len())
        .position(|w| w == &bits[..])
        .expect("bitmap on disk");
    // Set every padding bit (as mkntfs may) and check nothing past the clusters appears.
    for b in clusters..bits.len() as u64 * 8 {
        v[at + (b / 8) as usize] |= 1 << (b % 8);
    }
    let mut s = NtfsScanner.open_ntfs(&v).unwrap();
    let cs = u64::from(s.info().block_size);
    let backups = s.backup_sectors().to_vec();
    let ext = drain(&mut s);
    for e in &ext {
        assert!(
            e.end() <= clusters * cs || backups.contains(e),
            "{e:?} lies past the last cluster"
        );
    }
}
