//! End-to-end tests of the `lifeboat` binary on XFS: an XFS v5 partition on an MBR disk,
//! filled through a kernel mount (random files, a large one, a sparse one, many small ones
//! with every other deleted), and an XFS v4 partition on a GPT disk, filled through a mkfs.xfs
//! prototype file (the kernel refuses to mount v4). Both are saved, restored onto targets
//! full of random garbage, and verified with `xfs_repair -n`, `blkid`, `xfs_db`, every file's
//! SHA-256 (v5, through a read-only mount) or every used block (v4, from `xfs_db freesp -d`),
//! and the image holds about the used blocks only.
//!
//! Needs root, loop devices and xfsprogs; skips loudly without them, fails when CI=true.

mod common;

use common::*;
use std::fs;
use std::path::Path;

const XFS_TOOLS: &[&str] = &[
    "mkfs.xfs",
    "xfs_repair",
    "xfs_db",
    "blkid",
    "mount",
    "umount",
];

/// `blkid -o value -s UUID`.
/// The UUID as the device holds it now: `-p` probes the device itself, since
/// blkid's cache is keyed by device name and trusted for two seconds, and a
/// loop device name is reused by the test running beside this one.
fn blkid_uuid(dev: &Path) -> String {
    sh(
        "blkid",
        &[
            OsStr("-p"),
            OsStr("-o"),
            OsStr("value"),
            OsStr("-s"),
            OsStr("UUID"),
            dev.as_os_str(),
        ],
    )
    .trim()
    .to_string()
}

#[allow(non_snake_case)]
fn OsStr(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn assert_repair_clean(dev: &Path, what: &str) {
    let out = tool("xfs_repair").arg("-n").arg(dev).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: xfs_repair -n is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (block size, data blocks, AG blocks, free extents per `freesp -d` as (AG, block, blocks)).
fn freesp(dev: &Path) -> (u64, u64, u64, Vec<(u64, u64, u64)>) {
    let text = sh(
        "xfs_db",
        &[
            OsStr("-r"),
            OsStr("-c"),
            OsStr("sb 0"),
            OsStr("-c"),
            OsStr("print blocksize dblocks agblocks"),
            OsStr("-c"),
            OsStr("freesp -d"),
            dev.as_os_str(),
        ],
    );
    let field = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("{k}: {text}"))
            .parse()
            .unwrap()
    };
    let mut free: Vec<(u64, u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<u64> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            (w.len() == 3).then(|| (w[0], w[1], w[2]))
        })
        .collect();
    free.sort();
    (
        field("blocksize"),
        field("dblocks"),
        field("agblocks"),
        free,
    )
}

/// Used bytes according to xfs_db (every block `freesp` does not list).
fn xfs_db_used_bytes(dev: &Path) -> u64 {
    let (bs, dblocks, _, free) = freesp(dev);
    (dblocks - free.iter().map(|f| f.2).sum::<u64>()) * bs
}

/// The used byte ranges of the filesystem on `dev`: the complement of `freesp -d`.
fn used_ranges(dev: &Path) -> Vec<(u64, u64)> {
    let (bs, dblocks, agb, free) = freesp(dev);
    let mut used = Vec::new();
    let mut pos = 0;
    for (ag, b, n) in free {
        let s = (ag * agb + b) * bs;
        if s > pos {
            used.push((pos, s - pos));
        }
        pos = s + n * bs;
    }
    if pos < dblocks * bs {
        used.push((pos, dblocks * bs - pos));
    }
    used
}

/// Fills a mounted XFS: random files in nested directories, one large file, a sparse file,
/// a symlink, and many small files of which every other one is deleted (fragmented free
/// space).
fn fill(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    for d in ["docs", "docs/old", "bin", "data/a/b", "empty"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..120 {
        let d = ["docs", "docs/old", "bin", "data/a/b"][i % 4];
        let n = rng.below(200 * 1024) as usize + 1;
        fs::write(root.join(d).join(format!("f{i}.bin")), rng.bytes(n)).unwrap();
    }
    fs::write(root.join("large.bin"), rng.bytes(40 * MIB as usize)).unwrap();
    let sparse = root.join("sparse.img");
    fs::File::create(&sparse)
        .unwrap()
        .set_len(300 * MIB)
        .unwrap();
    for k in 0..5u64 {
        write_at(&sparse, k * 61 * MIB + 12345, &rng.bytes(300 * 1024));
    }
    std::os::unix::fs::symlink("large.bin", root.join("link")).unwrap();
    fs::create_dir(root.join("many")).unwrap();
    for i in 0..1500 {
        fs::write(root.join(format!("many/{i}")), rng.bytes(3000)).unwrap();
    }
    sync();
    for i in (0..1500).step_by(2) {
        fs::remove_file(root.join(format!("many/{i}"))).unwrap();
    }
    fs::write(root.join("zero-length"), b"").unwrap();
    sync();
}

/// The partition's stored bytes in the manifest and checks of what it says.
fn check_manifest(repo: &Path, image: &str, n: u32, used_db: u64) -> u64 {
    let m = info_json(repo, image);
    let p = manifest_partition(&m, 0, n);
    assert_eq!(p["filesystem"], "xfs", "{p:#}");
    assert_eq!(p["mode"], "used-blocks", "{p:#}");
    let used = p["used_bytes"].as_u64().unwrap();
    // The scanner also keeps the AG free lists' blocks, which freesp counts as free.
    assert!(
        used >= used_db && used <= used_db + MIB,
        "manifest used {used}, xfs_db {used_db}"
    );
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored <= used_db + 4 * MIB,
        "stored {stored} bytes for {used_db} used bytes"
    );
    let files = dir_bytes(&repo.join(image));
    assert!(files <= stored + stored / 20 + MIB, "image files {files}");
    stored
}

#[test]
fn xfs_v5_on_an_mbr_disk_round_trips() {
    if !need(&[&["root", "loop", "sfdisk", "losetup"], XFS_TOOLS].concat()) {
        return;
    }
    let t = tempdir("xfs5");
    let d = t.path();
    let size = 420 * MIB;
    let disk = d.join("disk.img");
    sparse_file(&disk, size);
    sfdisk(&disk, "label: dos\nlabel-id: 0x5bf1a7c0\n,360MiB,83\n");
    let part = read_table(&disk).parts[0].clone();
    write_at(&disk, 0, &Rng::new(51).bytes(440));
    let (uuid, want, used_db) = {
        let lo = LoopDev::attach_range(&disk, None, Some((part.start, part.size)));
        sh(
            "mkfs.xfs",
            &[
                OsStr("-q"),
                OsStr("-f"),
                OsStr("-L"),
                OsStr("lbxfs5"),
                lo.dev.as_os_str(),
            ],
        );
        let want = {
            let m = Mount::new(&lo.dev, &d.join("src"), "");
            fill(&m.dir, 52);
            tree_listing(&m.dir)
        };
        assert_repair_clean(&lo.dev, "source");
        (blkid_uuid(&lo.dev), want, xfs_db_used_bytes(&lo.dev))
    };
    assert!(want.len() > 700, "{} entries", want.len());

    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "xfs5", &[&disk], &[]).ok();
    lifeboat(&["info", "--repo", s(&repo), "--image", "xfs5"])
        .ok()
        .says(&["xfs", "used-blocks", "lbxfs5"]);
    let stored = check_manifest(&repo, "xfs5", 1, used_db);
    eprintln!("xfs v5: {used_db} bytes used per xfs_db, {stored} stored");

    let target = d.join("target.img");
    garbage_file(&target, size, 53);
    restoredisk(&repo, "xfs5", &[&target], &[]).ok();
    assert_same_bytes(&disk, &target, 0, 512, "MBR");
    let lo = LoopDev::attach_range(&target, None, Some((part.start, part.size)));
    assert_repair_clean(&lo.dev, "restored");
    assert_eq!(blkid_uuid(&lo.dev), uuid, "UUID");
    assert_eq!(xfs_db_used_bytes(&lo.dev), used_db);
    let m = Mount::new(&lo.dev, &d.join("dst"), "ro");
    let got = tree_listing(&m.dir);
    assert_eq!(got.len(), want.len(), "entries");
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "restored {k}");
    }
}

#[test]
fn xfs_v4_on_a_gpt_disk_round_trips() {
    if !need(&[&["root", "loop", "sgdisk", "sfdisk", "losetup"], XFS_TOOLS].concat()) {
        return;
    }
    let t = tempdir("xfs4");
    let d = t.path();
    let size = 400 * MIB;
    let disk = d.join("disk.img");
    sparse_file(&disk, size);
    run_ok(
        tool("sgdisk")
            .args(["-o", "-n1:0:+340M", "-t1:8300", "-c1:xfs-v4"])
            .arg(&disk),
    );
    let part = read_table(&disk).parts[0].clone();
    // A prototype file: a tree of random files, and many small ones.
    let tree = d.join("tree");
    let mut rng = Rng::new(41);
    let mut proto = String::from("/dev/null\n0 0\nd--755 0 0\nsub d--755 0 0\n");
    fs::create_dir_all(&tree).unwrap();
    for i in 0..300 {
        let f = tree.join(format!("f{i}"));
        let n = rng.below(64 * 1024) as usize + 1;
        fs::write(&f, rng.bytes(n)).unwrap();
        proto += &format!("f{i} ---644 0 0 {}\n", f.display());
    }
    proto += "$\n";
    let big = tree.join("big");
    fs::write(&big, rng.bytes(30 * MIB as usize)).unwrap();
    proto += &format!("big ---644 0 0 {}\nlink l--777 0 0 big\n$\n", big.display());
    let proto_path = d.join("proto");
    fs::write(&proto_path, proto).unwrap();
    let (uuid, used_db, used, src_hashes) = {
        let lo = LoopDev::attach_range(&disk, None, Some((part.start, part.size)));
        let out = tool("mkfs.xfs")
            .args(["-q", "-f", "-m", "crc=0", "-L", "lbxfs4", "-p"])
            .arg(&proto_path)
            .arg(&lo.dev)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_repair_clean(&lo.dev, "source");
        let used = used_ranges(&lo.dev);
        let hashes: Vec<String> = used
            .iter()
            .map(|&(o, l)| sha_range(&lo.dev, o, l))
            .collect();
        (
            blkid_uuid(&lo.dev),
            xfs_db_used_bytes(&lo.dev),
            used,
            hashes,
        )
    };
    assert!(used_db > 30 * MIB);

    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "xfs4", &[&disk], &[]).ok();
    check_manifest(&repo, "xfs4", 1, used_db);

    let target = d.join("target.img");
    garbage_file(&target, size, 43);
    restoredisk(&repo, "xfs4", &[&target], &[]).ok();
    assert_sgdisk_clean(&target);
    let lo = LoopDev::attach_range(&target, None, Some((part.start, part.size)));
    assert_repair_clean(&lo.dev, "restored");
    assert_eq!(blkid_uuid(&lo.dev), uuid);
    let (_, _, _, free_src) = {
        let src = LoopDev::attach_range(&disk, None, Some((part.start, part.size)));
        freesp(&src.dev)
    };
    assert_eq!(freesp(&lo.dev).3, free_src, "freesp -d differs");
    for (k, &(o, l)) in used.iter().enumerate() {
        assert_eq!(
            sha_range(&lo.dev, o, l),
            src_hashes[k],
            "used range {o}+{l} differs"
        );
    }
}
