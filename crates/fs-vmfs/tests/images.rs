//! The scanner against real ESXi-made VMFS5/VMFS6 volumes (downloaded at test time, see
//! `common/fixture.rs`), with vmfs-tools / vmfs6-tools as the oracle.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/oracle.rs"]
mod oracle;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use lifeboat_fs::{Extent, FsError, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_vmfs::address::{addr_type, fb5_block, lfb6_block, sfb6, AddrType};
use lifeboat_fs_vmfs::{lvm, VmfsError, VmfsScanner};
use oracle::Gen;

/// (image, fs type, file block size)
const IMAGES: &[(&str, &str, u32)] = &[
    ("vmfs5", "vmfs5", 1 << 20),
    ("vmfs6", "vmfs6", 1 << 20),
    ("vmfs5-resource-optimized", "vmfs5", 1 << 19),
    ("vmfs5-no-dense-sbpc", "vmfs5", 1 << 19),
    ("vmfs6-resource-optimized", "vmfs6", 1 << 20),
    ("zero5", "vmfs5", 1 << 20),
    ("zero6", "vmfs6", 1 << 20),
];

fn open_file(path: &Path) -> (File, u64) {
    let f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    (f, len)
}

fn extents(path: &Path) -> (lifeboat_fs::FsInfo, Vec<Extent>, u64) {
    let vol = open_file(path);
    assert!(VmfsScanner.probe(&vol), "{}: probe", path.display());
    let mut s = VmfsScanner
        .open_vmfs(&vol)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let info = s.info().clone();
    let files = s.file_count();
    let mut v = Vec::new();
    while let Some(e) = s.next_extent().unwrap() {
        v.push(e);
    }
    (info, v, files)
}

fn inside(ext: &[Extent], off: u64, len: u64) -> bool {
    let i = ext.partition_point(|e| e.end() <= off);
    ext.get(i)
        .is_some_and(|e| e.offset <= off && off + len <= e.end())
}

#[test]
fn every_esxi_image_is_scanned_and_vmfs5_counts_match_the_oracle_bitmap() {
    for &(name, fs_type, bs) in IMAGES {
        let Some(path) = fixture::image(name) else {
            return;
        };
        let (info, ext, files) = extents(&path);
        let vol = open_file(&path);
        let lvm = lvm::parse(&vol).unwrap();
        assert_eq!(info.fs_type, fs_type, "{name}");
        assert_eq!(info.label.as_deref(), Some(name), "{name}");
        assert_eq!(info.block_size, bs, "{name}");
        assert_eq!(info.total_bytes, lvm.logical_size, "{name}");
        assert!(files > 0, "{name}: no files counted");
        let mut sum = 0;
        for w in ext.windows(2) {
            assert!(
                w[0].end() < w[1].offset,
                "{name}: extents not sorted/merged: {w:?}"
            );
        }
        for e in &ext {
            assert!(e.len > 0 && e.end() <= vol.1, "{name}: {e:?}");
            sum += e.len;
        }
        assert_eq!(sum, info.used_bytes, "{name}");
        // LVM header and tables (before the first physical extent) are kept.
        let first = lvm.extents[0].physical;
        assert!(inside(&ext, 0, first), "{name}: LVM area not kept");
        // The filesystem descriptor is kept.
        let fsd = lvm.to_physical(0x20_0000).unwrap();
        assert!(inside(&ext, fsd, 512), "{name}: descriptor not kept");
        // Used bytes inside the logical volume.
        let in_volume: u64 = lvm
            .extents
            .iter()
            .map(|pe| {
                ext.iter()
                    .map(|e| {
                        let s = e.offset.max(pe.physical);
                        let t = e.end().min(pe.physical + pe.len);
                        t.saturating_sub(s)
                    })
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(in_volume % u64::from(bs), 0, "{name}");
        let ratio = info.used_bytes as f64 / vol.1 as f64;
        eprintln!(
            "{name}: {} of {} bytes used ({:.1} %), {} extents, {files} files",
            info.used_bytes,
            vol.1,
            ratio * 100.0,
            ext.len()
        );
        assert!(
            in_volume < lvm.logical_size,
            "{name}: everything marked used"
        );
        if fs_type == "vmfs5" && fixture::need_oracle() {
            assert_eq!(
                in_volume / u64::from(bs),
                oracle::allocated_blocks(&path),
                "{name}: used file blocks differ from the oracle's allocated count"
            );
        }
    }
}

#[test]
fn every_block_the_oracle_resolves_lies_in_the_used_extents() {
    if !fixture::need_oracle() {
        return;
    }
    for &(name, fs_type, bs) in IMAGES {
        let Some(path) = fixture::image(name) else {
            return;
        };
        let (_, ext, _) = extents(&path);
        let vol = open_file(&path);
        let lvm = lvm::parse(&vol).unwrap();
        let generation = Gen::of(fs_type);
        let tmp = tempfile::tempdir().unwrap();
        let m = oracle::Mount::new(&path, generation, tmp.path(), "m");
        let mut queries = Vec::new();
        let mut stack = vec![m.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let rel = format!("/{}", p.strip_prefix(&m.dir).unwrap().display());
                if md.is_dir() {
                    stack.push(p);
                } else if md.is_file() {
                    let size = md.len();
                    let positions: Vec<u64> = if size <= oracle::WHOLE_LIMIT {
                        (0..size.div_ceil(u64::from(bs)))
                            .map(|i| i * u64::from(bs))
                            .collect()
                    } else {
                        (0..=(size >> 30).min(160)).map(|k| k << 30).collect()
                    };
                    queries.extend(positions.into_iter().map(|p| (rel.clone(), p)));
                }
            }
        }
        drop(m);
        let answers = oracle::file_blocks(&path, generation, &queries);
        assert_eq!(answers.len(), queries.len(), "{name}: oracle answers");
        let fbs = u64::from(bs);
        let (mut checked, mut per_type) = (0u64, HashMap::new());
        for ((file, pos), a) in queries.iter().zip(&answers) {
            let Some(a) = *a else { continue };
            let t = addr_type(a);
            *per_type.entry(format!("{t:?}")).or_insert(0u64) += 1;
            let (logical, len) = match (t, generation) {
                (AddrType::FileBlock, Gen::V5) => (fb5_block(a) * fbs, fbs),
                (AddrType::FileBlock, Gen::V6) => {
                    let (c, r) = sfb6(a);
                    ((c * 512 + r) * fbs, fbs)
                }
                (AddrType::LargeFileBlock, Gen::V6) => (lfb6_block(a) * (fbs << 9), fbs << 9),
                _ => continue,
            };
            let phys = lvm
                .to_physical(logical)
                .unwrap_or_else(|| panic!("{name}: {file}"));
            assert!(
                inside(&ext, phys, len),
                "{name}: {file} at {pos}: block {a:#x} (partition byte {phys:#x}) is not kept"
            );
            checked += 1;
        }
        eprintln!("{name}: {checked} file blocks named by the oracle are kept ({per_type:?})");
        // vmfs-tools resolves only some positions (it answers "Unable to get block info" for
        // many); the content comparison below reads every file whole.
        assert!(checked >= 10, "{name}: the oracle resolved too few blocks");
    }
}

/// Writes a copy of `src` that holds only `ext` and garbage elsewhere (4 KiB of noise at
/// every 64 KiB, so that any missed block reads differently).
fn restore_copy(src: &Path, ext: &[Extent], dst: &Path) {
    let len = open_file(src).1;
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dst)
        .unwrap();
    out.set_len(len).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = vec![0u8; 4096];
    let mut off = 0;
    while off < len {
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8 | 1;
        }
        out.seek(SeekFrom::Start(off)).unwrap();
        out.write_all(&noise[..4096.min((len - off) as usize)])
            .unwrap();
        off += 64 << 10;
    }
    let mut input = File::open(src).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    for e in ext {
        let mut done = 0;
        while done < e.len {
            let n = (e.len - done).min(buf.len() as u64) as usize;
            input.seek(SeekFrom::Start(e.offset + done)).unwrap();
            input.read_exact(&mut buf[..n]).unwrap();
            out.seek(SeekFrom::Start(e.offset + done)).unwrap();
            out.write_all(&buf[..n]).unwrap();
            done += n as u64;
        }
    }
}

#[test]
fn a_copy_of_only_the_used_extents_reads_identically_through_the_oracle() {
    if !fixture::need_oracle() {
        return;
    }
    for &(name, fs_type, _) in IMAGES {
        let Some(path) = fixture::image(name) else {
            return;
        };
        let (_, ext, _) = extents(&path);
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("restored.bin");
        restore_copy(&path, &ext, &copy);
        let generation = Gen::of(fs_type);
        let want = {
            let m = oracle::Mount::new(&path, generation, tmp.path(), "a");
            oracle::tree(&m.dir)
        };
        let got = {
            let m = oracle::Mount::new(&copy, generation, tmp.path(), "b");
            oracle::tree(&m.dir)
        };
        assert!(
            want.contains_key(".fdc.sf") && want.len() > 6,
            "{name}: oracle listed {want:?}"
        );
        assert_eq!(
            want, got,
            "{name}: restored copy differs through the oracle"
        );
        for (path, v) in &want {
            // Everything but raw device mappings reads without error through the oracle.
            assert!(
                path.ends_with("-rdm.vmdk") || !(v.contains("error") || v.contains("short")),
                "{name}: the oracle cannot read {path}: {v}"
            );
        }
        eprintln!(
            "{name}: {} entries identical through the oracle",
            want.len()
        );
    }
}

/// A volume with a few bytes replaced.
struct Patched<'a> {
    inner: &'a dyn ReadAt,
    patches: Vec<(u64, Vec<u8>)>,
    len: u64,
}

impl ReadAt for Patched<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if offset + buf.len() as u64 > self.len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.read_exact_at(buf, offset)?;
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= offset && p < offset + buf.len() as u64 {
                    buf[(p - offset) as usize] = *b;
                }
            }
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

fn refused(vol: &dyn ReadAt) -> String {
    match VmfsScanner.open_vmfs(vol) {
        Err(FsError::Corrupt { cause, .. }) => {
            assert!(cause.downcast_ref::<VmfsError>().is_some(), "{cause}");
            cause.to_string()
        }
        Err(e) => panic!("expected a refusal as corrupt, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

#[test]
fn structures_not_understood_are_refused_not_guessed() {
    for name in ["vmfs5", "vmfs6"] {
        let Some(path) = fixture::image(name) else {
            return;
        };
        let vol = open_file(&path);
        let lvm = lvm::parse(&vol).unwrap();
        let fsd = lvm.to_physical(0x20_0000).unwrap();
        let p = |patches: Vec<(u64, Vec<u8>)>| Patched {
            inner: &vol,
            patches,
            len: vol.1,
        };
        let r = refused(&p(vec![(fsd, vec![0x11, 0x22, 0x33, 0x44])]));
        assert!(r.contains("magic"), "{name}: {r}");
        let r = refused(&p(vec![(fsd + 4, 99u32.to_le_bytes().to_vec())]));
        assert!(r.contains("version"), "{name}: {r}");
        let r = refused(&p(vec![(fsd, 0x2FAB_F15Fu32.to_le_bytes().to_vec())]));
        assert!(r.contains("VMFS-L"), "{name}: {r}");
        // A volume spanning two devices.
        let vd = lvm::DEV_HEADER_OFFSET + if name == "vmfs5" { 512 } else { 4096 };
        let r = refused(&p(vec![(vd + 0x90, 2u32.to_le_bytes().to_vec())]));
        assert!(r.contains("devices"), "{name}: {r}");
        // An unknown LVM version.
        let r = refused(&p(vec![(
            lvm::DEV_HEADER_OFFSET + 4,
            9u32.to_le_bytes().to_vec(),
        )]));
        assert!(r.contains("LVM major version"), "{name}: {r}");
        // The partition is shorter than the logical volume.
        let short = Patched {
            inner: &vol,
            patches: vec![],
            len: vol.1 - (64 << 20),
        };
        let r = refused(&short);
        assert!(r.contains("beyond this partition"), "{name}: {r}");
    }
    // The VMFS-L images (ESXi OSDATA) are refused.
    for name in ["vmfs5l", "vmfs6l"] {
        let Some(path) = fixture::image(name) else {
            return;
        };
        let r = refused(&open_file(&path));
        assert!(r.contains("VMFS-L"), "{name}: {r}");
    }
    // One half of a spanned volume is refused.
    let Some(path) = fixture::image("span/vmfs6-span-0") else {
        return;
    };
    let r = refused(&open_file(&path));
    assert!(r.contains("devices") || r.contains("spanned"), "span: {r}");
}
