//! The partclone reader against the real partclone: images made by `partclone.ext4 -c` and
//! `partclone.vfat -c` of filesystems made by mke2fs/mkfs.vfat (no root needed), in every
//! checksum mode partclone writes, read back and compared with the source filesystem and with
//! what `partclone.* -r` itself restores. Format v1 images, which no current partclone
//! writes, are built from the documented v1 layout (docs/CLONEZILLA.md) by converting the v2
//! image block by block, and proven twice: the v1 reader returns exactly the v2 reader's
//! blocks, and the real partclone restores the converted file to the same bytes.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_clonezilla::writer::{ImageWriter, WriteSpec};
use lifeboat_clonezilla::{
    compress, Checksum, Compression, Error, Format, Limits, PartcloneReader,
};
use lifeboat_testkit::tool;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A source tree with some files, for `mke2fs -d` and `mcopy`.
fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    for i in 0..20u64 {
        let sub = if i % 3 == 0 { "sub/deeper" } else { "sub" };
        fs::write(
            dir.join(sub).join(format!("f{i}")),
            noise(i, 1000 + 3777 * i as usize),
        )
        .unwrap();
    }
    fs::write(dir.join("big"), noise(99, 3 << 20)).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    fs_img: PathBuf,
    tool: PathBuf,
}

/// An ext4 filesystem image (1 KiB blocks: many blocks, odd groups) with files.
fn ext4() -> Option<Fixture> {
    let mke2fs = tool("mke2fs", "e2fsprogs")?;
    let pc = tool("partclone.ext4", "partclone")?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    tree(&dir.join("src"));
    let fs_img = dir.join("fs.img");
    fs::File::create(&fs_img)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    run(Command::new(mke2fs)
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-d"])
        .arg(dir.join("src"))
        .arg(&fs_img));
    Some(Fixture {
        _tmp: tmp,
        dir,
        fs_img,
        tool: pc,
    })
}

fn clone(f: &Fixture, name: &str, extra: &[&str]) -> PathBuf {
    let out = f.dir.join(name);
    run(Command::new(&f.tool)
        .args(["-q", "-c"])
        .args(extra)
        .arg("-s")
        .arg(&f.fs_img)
        .arg("-O")
        .arg(&out));
    out
}

/// Restores `img` with the real partclone onto a zero-filled file of `len` bytes.
fn partclone_restore(f: &Fixture, img: &Path, len: u64) -> Vec<u8> {
    let out = f.dir.join("restored-by-partclone");
    let _ = fs::remove_file(&out);
    fs::File::create(&out).unwrap().set_len(len).unwrap();
    run(Command::new(&f.tool)
        .args(["-q", "-r", "-s"])
        .arg(img)
        .arg("-O")
        .arg(&out));
    let mut v = fs::read(&out).unwrap();
    v.resize(len as usize, 0);
    v
}

/// Bytes read back and the runs `(first block, blocks)`.
type Readback = (Vec<u8>, Vec<(u64, u64)>);

/// Reads the whole image with our reader: the partition it describes (unused blocks zero)
/// and the list of runs.
fn restore_ours(r: impl Read, len: u64) -> Result<Readback, Error> {
    let mut pc = PartcloneReader::new(r, Limits::default())?;
    let bs = u64::from(pc.header().block_size);
    let mut out = vec![0u8; len as usize];
    let mut runs = Vec::new();
    let mut buf = Vec::new();
    // A small read size so that runs split across checksum groups and buffer ends.
    while let Some(run) = pc.read_run(&mut buf, 7 * bs as usize)? {
        let at = (run.first_block * bs) as usize;
        out[at..at + buf.len()].copy_from_slice(&buf);
        runs.push((run.first_block, run.blocks));
    }
    Ok((out, runs))
}

#[test]
fn every_checksum_mode_reads_back_as_partclone_restores_it() {
    let Some(f) = ext4() else { return };
    let source = fs::read(&f.fs_img).unwrap();
    let len = source.len() as u64;
    let modes: &[(&str, &[&str])] = &[
        ("default.pc", &[]),
        ("none.pc", &["-a0"]),
        ("k1.pc", &["-a1", "-k1"]),
        ("k8.pc", &["-a1", "-k8"]),
        ("k7.pc", &["-a1", "-k7"]),
        ("noreseed.pc", &["-a1", "-k5", "-K"]),
    ];
    for (name, args) in modes {
        let img = clone(&f, name, args);
        let (ours, runs) = restore_ours(fs::File::open(&img).unwrap(), len)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // partclone 0.3.23 itself corrupts its heap restoring an image whose blocks per
        // checksum do not divide its buffer ("free(): invalid next size"): k7 is compared
        // with the source only.
        if *name != "k7.pc" {
            let theirs = partclone_restore(&f, &img, len);
            assert!(
                ours == theirs,
                "{name}: our reading differs from partclone's restore"
            );
        }
        // Every used block equals the source filesystem's block.
        let h = PartcloneReader::new(fs::File::open(&img).unwrap(), Limits::default()).unwrap();
        let bs = h.header().block_size as usize;
        assert_eq!(h.header().format, Format::V2);
        assert_eq!(h.header().fs, "EXTFS");
        let used: u64 = runs.iter().map(|r| r.1).sum();
        assert_eq!(used, h.bitmap().used(), "{name}");
        assert!(
            used > 1000 && used < h.bitmap().blocks(),
            "{name}: {used} used"
        );
        for (first, n) in runs {
            let r = first as usize * bs..(first + n) as usize * bs;
            assert!(
                ours[r.clone()] == source[r],
                "{name}: blocks {first}+{n} differ"
            );
        }
        match *name {
            "none.pc" => assert_eq!(h.header().checksum, Checksum::None),
            "noreseed.pc" => assert!(!h.header().reseed && h.header().blocks_per_checksum == 5),
            "k7.pc" => assert_eq!(h.header().blocks_per_checksum, 7),
            _ => assert_eq!(h.header().checksum, Checksum::Crc32),
        }
    }
    // The filesystem rebuilt from the image alone (unused blocks zero) is clean.
    if let Some(e2fsck) = tool("e2fsck", "e2fsprogs") {
        let img = f.dir.join("default.pc");
        let (ours, _) = restore_ours(fs::File::open(&img).unwrap(), len).unwrap();
        let p = f.dir.join("ours.img");
        fs::write(&p, &ours).unwrap();
        run(Command::new(e2fsck).arg("-fn").arg(&p));
    }
}

/// Converts a v2 image into format v1, block by block, with the documented v1 layout.
fn to_v1(v2: &Path, out: &Path) {
    let mut r = PartcloneReader::new(fs::File::open(v2).unwrap(), Limits::default()).unwrap();
    let h = r.header().clone();
    let spec = WriteSpec {
        format: Format::V1,
        fs: h.fs.clone(),
        block_size: h.block_size,
        device_size: h.device_size,
        checksum: Checksum::Crc32V1,
        blocks_per_checksum: 1,
        reseed: false,
    };
    let bitmap = r.bitmap().clone();
    let mut w = ImageWriter::new(fs::File::create(out).unwrap(), &spec, &bitmap).unwrap();
    let mut buf = Vec::new();
    while r.read_run(&mut buf, 1 << 20).unwrap().is_some() {
        w.write_blocks(&buf).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn format_v1_built_from_the_documented_layout_reads_like_v2_and_partclone_agrees() {
    let Some(f) = ext4() else { return };
    let len = fs::metadata(&f.fs_img).unwrap().len();
    let v2 = clone(&f, "v2.pc", &[]);
    let v1 = f.dir.join("v1.pc");
    to_v1(&v2, &v1);
    let bytes = fs::read(&v1).unwrap();
    assert_eq!(&bytes[30..34], b"0001");
    let (from_v2, runs2) = restore_ours(fs::File::open(&v2).unwrap(), len).unwrap();
    let (from_v1, runs1) = restore_ours(fs::File::open(&v1).unwrap(), len).unwrap();
    assert_eq!(runs1, runs2);
    assert!(from_v1 == from_v2, "v1 and v2 readings differ");
    let h = PartcloneReader::new(&bytes[..], Limits::default()).unwrap();
    assert_eq!(h.header().format, Format::V1);
    assert_eq!(h.header().checksum, Checksum::Crc32V1);
    // The real partclone reads format v1 (and checks its checksums) too.
    let theirs = partclone_restore(&f, &v1, len);
    assert!(
        theirs == from_v2,
        "partclone restores the v1 file differently"
    );

    // A flipped data byte is caught by the v1 checksum, naming the block.
    let mut bad = bytes.clone();
    let data_at = 4160 + h.bitmap().blocks() as usize + 8;
    bad[data_at + 5000] ^= 0x01;
    // v1 sums cover each block's first byte only: flip the first byte of a block.
    let bs = h.header().block_size as usize;
    let mut bad1 = bytes.clone();
    bad1[data_at + 3 * (bs + 4)] ^= 0x40;
    match restore_ours(&bad1[..], len) {
        Err(Error::BlockChecksum { block, .. }) => {
            let third = h
                .bitmap()
                .runs()
                .flat_map(|(s, n)| s..s + n)
                .nth(3)
                .unwrap();
            assert_eq!(block, third);
        }
        other => panic!("flipped v1 byte not detected: {:?}", other.map(|_| ())),
    }
}

#[test]
fn damage_is_named_with_block_and_offset() {
    let Some(f) = ext4() else { return };
    let len = fs::metadata(&f.fs_img).unwrap().len();
    let img = fs::read(clone(&f, "d.pc", &["-a1", "-k16"])).unwrap();
    let h = PartcloneReader::new(&img[..], Limits::default()).unwrap();
    let data_at = 110 + h.bitmap().blocks().div_ceil(8) as usize + 4;
    let bs = h.header().block_size as usize;
    // Flip a byte in the 40th used block: group 2 (blocks 32..48) fails.
    let mut bad = img.clone();
    bad[data_at + 2 * (16 * bs + 4) + 8 * bs + 17] ^= 0x80;
    match restore_ours(&bad[..], len) {
        Err(Error::BlockChecksum { block, offset, .. }) => {
            let used: Vec<u64> = h.bitmap().runs().flat_map(|(s, n)| s..s + n).collect();
            assert_eq!(block, used[47]);
            assert_eq!(offset as usize, data_at + 2 * (16 * bs + 4) + 16 * bs);
        }
        other => panic!("flipped data byte not detected: {:?}", other.map(|_| ())),
    }
    let mut bad = img.clone();
    bad[120] ^= 1;
    assert!(matches!(
        PartcloneReader::new(&bad[..], Limits::default()),
        Err(Error::BitmapChecksum { .. })
    ));
    let mut bad = img.clone();
    bad[60] ^= 1;
    assert!(matches!(
        PartcloneReader::new(&bad[..], Limits::default()),
        Err(Error::HeaderChecksum { .. })
    ));
    let cut = &img[..img.len() - 3];
    match restore_ours(cut, len) {
        Err(Error::Truncated { offset, .. }) => assert_eq!(offset as usize, cut.len()),
        other => panic!("truncation not detected: {:?}", other.map(|_| ())),
    }
    assert!(restore_ours(&img[..], len).is_ok());
}

#[test]
fn every_compressor_clonezilla_uses_decodes_to_the_same_image() {
    let Some(f) = ext4() else { return };
    let img = clone(&f, "c.pc", &[]);
    let raw = fs::read(&img).unwrap();
    let tools: &[(&str, &str, &[&str], Compression)] = &[
        ("gzip", "gzip", &["-c"], Compression::Gzip),
        (
            "zstd",
            "zstd",
            &["-q", "-c", "--long=27"],
            Compression::Zstd,
        ),
        ("xz", "xz-utils", &["-c", "-T2"], Compression::Xz),
        ("bzip2", "bzip2", &["-c"], Compression::Bzip2),
        ("lz4", "lz4", &["-q", "-c"], Compression::Lz4),
    ];
    for (name, pkg, args, expect) in tools {
        let Some(t) = tool(name, pkg) else { continue };
        let out = Command::new(t).args(*args).arg(&img).output().unwrap();
        assert!(out.status.success(), "{name}");
        // Two compressed copies back to back: pigz, pbzip2, zstdmt and split streams can hold
        // several members/frames/streams.
        let mut twice = out.stdout.clone();
        twice.extend_from_slice(&out.stdout);
        let (c, mut r) = compress::open("x.ptcl-img", &twice[..]).unwrap();
        assert_eq!(c, *expect);
        let mut back = Vec::new();
        r.read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            back.len() == 2 * raw.len() && back[..raw.len()] == raw[..],
            "{name}"
        );
        assert!(back[raw.len()..] == raw[..], "{name}: second member");
        // Damage inside the compressed data is an error, never silently different data.
        let mut bad = out.stdout.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let res = compress::open("x", &bad[..]).map(|(_, mut r)| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        });
        if let Ok(Ok(v)) = res {
            assert!(v != raw, "{name}: damage went unnoticed");
            assert!(
                PartcloneReader::new(&v[..], Limits::default())
                    .and_then(|mut p| p.verify_rest())
                    .is_err(),
                "{name}: damaged data passed the partclone checksums"
            );
        }
    }
    let mut f2 = fs::File::create(f.dir.join("w")).unwrap();
    f2.write_all(&raw).unwrap();
}
