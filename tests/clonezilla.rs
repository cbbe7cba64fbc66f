//! `lifeboat list`, `info` and `check` of a Clonezilla image directory in a repository. The
//! directory is laid out as ocs-sr lays it out, with a partition image made by the real
//! `partclone.ext4 -c | zstd` and a raw one split by `split` (crates/clonezilla/tests/ocs_sr.rs
//! reads images made by ocs-sr itself). Check: exit 0 and the ok message in English and
//! Japanese on a clean image; exit 4 naming the file and the block on one flipped byte.
//!
//! Then restore and import of images made by the real `ocs-sr` on loop devices (root): an
//! MBR disk with logical partitions (zstd) and a GPT disk with NTFS, FAT32 and swap (gzip,
//! split), each restored onto garbage and checked with the real tools.

mod common;

use common::*;
use std::fs;
use std::path::Path;

#[test]
fn list_info_check_and_damage_of_a_clonezilla_image() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("partimag");
    fs::create_dir_all(&repo).unwrap();
    let name = "2026-12-01-10-img";
    let Some(source) = clonezilla_dir(&repo, name) else {
        return;
    };
    let r = s(&repo);
    let l = lifeboat(&["list", "--repo", r]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let line = l
        .stdout
        .lines()
        .find(|x| x.starts_with(name))
        .unwrap_or_else(|| panic!("{}", l.stdout));
    assert!(
        line.contains("clonezilla") && line.contains("sdz1 sdz2"),
        "{line}"
    );
    let j = lifeboat(&["--json", "list", "--repo", r]);
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v[0]["format"], "clonezilla");
    assert_eq!(v[0]["complete"], true);

    let i = lifeboat(&["--json", "info", "--repo", r, "--image", name]);
    assert_eq!(i.code, 0, "{}", i.stderr);
    let v: serde_json::Value = serde_json::from_str(i.stdout.trim()).unwrap();
    assert_eq!(v["kind"], "clonezilla");
    assert_eq!(v["parts"][0]["compression"], "zstd");
    assert_eq!(v["parts"][1]["mode"], "raw");
    let i = lifeboat(&["info", "--repo", r, "--image", name]);
    assert!(
        i.stdout.contains("sdz1") && i.stdout.contains("partclone"),
        "{}",
        i.stdout
    );

    let c = lifeboat(&["check", "--repo", r, "--image", name]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stdout.contains("is intact") || c.stderr.contains("is intact"),
        "{c:?}",
        c = c.stdout
    );
    let c = lifeboat(&["--lang", "ja", "check", "--repo", r, "--image", name]);
    assert_eq!(c.code, 0);
    assert!(format!("{}{}", c.stdout, c.stderr).contains("は正常です"));

    // Restored onto garbage: table, MBR, the ext4 (fsck, every file), the raw partition.
    let target = tmp.path().join("target.img");
    garbage_file(&target, 20 << 20, 0xc20);
    restoredisk(&repo, name, &[&target], &[]).ok();
    let scratch = tmp.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    verify_clonezilla_dir_restore(&source, &target, &scratch);

    // restoreparts of partition 2 onto a disk partitioned alike: its bytes come back, the
    // rest of the disk is left as it was.
    let other = tmp.path().join("other.img");
    garbage_file(&other, 20 << 20, 0xc27);
    sfdisk(
        &other,
        &sh("sfdisk", &[std::ffi::OsStr::new("-d"), source.as_os_str()]),
    );
    let p1_before = sha_range(&other, 0, 9 << 20);
    lifeboat(&[
        "restoreparts",
        "--repo",
        r,
        "--image",
        name,
        "--part",
        "2",
        "--disk",
        s(&other),
        "--yes",
    ])
    .ok();
    assert_same_bytes(
        &source,
        &other,
        9 << 20,
        4 << 20,
        "restoreparts of partition 2",
    );
    assert_eq!(
        sha_range(&other, 0, 9 << 20),
        p1_before,
        "restoreparts wrote outside partition 2"
    );

    // One flipped byte deep in the partclone data, recompressed: only partclone's checksum
    // sees it. Exit 4, naming the file and the block.
    let f = repo.join(name).join("sdz1.ext4-ptcl-img.zst");
    let mut raw = zstd::decode_all(fs::File::open(&f).unwrap()).unwrap();
    let at = raw.len() - 3000;
    raw[at] ^= 1;
    fs::write(&f, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();
    let c = lifeboat(&["check", "--repo", r, "--image", name]);
    assert_eq!(c.code, 4, "{}", c.stderr);
    assert!(
        c.stderr.contains("sdz1.ext4-ptcl-img.zst") && c.stderr.contains("block"),
        "{}",
        c.stderr
    );
}

// ───────────────── restore and import of images made by the real ocs-sr ─────────────────

/// ocs-sr keeps state in fixed places: one run at a time.
static OCS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `ocs-sr … savedisk NAME loopN` of the disk file `disk` (attached with its partitions).
fn ocs_savedisk(repo: &Path, name: &str, disk: &Path, opts: &[&str]) {
    let _one = OCS.lock().unwrap_or_else(|e| e.into_inner());
    let dev = run_ok(tool("losetup").args(["-f", "--show", "-P"]).arg(disk))
        .trim()
        .to_string();
    let _ = tool("partx").args(["-a", &dev]).output();
    let out = tool("ocs-sr")
        .args(["-b", "-q2", "-j2"])
        .args(opts)
        .args(["-sfsck", "-scs", "-senc", "-p", "true", "-or"])
        .arg(repo)
        .args(["savedisk", name, dev.trim_start_matches("/dev/")])
        .output()
        .unwrap();
    let _ = tool("partx").args(["-d", &dev]).output();
    let _ = tool("losetup").args(["-d", &dev]).output();
    assert!(
        out.status.success() && repo.join(name).join("parts").is_file(),
        "ocs-sr savedisk failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a restore of the MBR fixture `fx` from its Clonezilla image must give: the MBR with
/// its boot code and the boot gap as saved; the EBRs where sfdisk put them on the source,
/// with the same entries (the first one whole: Clonezilla keeps it); the same table; every
/// partition verified (ext: e2fsck, dumpe2fs, every file; raw: every byte).
fn verify_cz_mbr(fx: &Fixture, target: &Path, scratch: &Path) {
    let a = &fx.areas[0];
    assert_same_bytes(&fx.path, target, a.off, a.len, "MBR and boot gap");
    let (want, got) = (ebr_offsets(&fx.path, 512), ebr_offsets(target, 512));
    assert_eq!(got, want, "EBR places");
    for (i, off) in want.iter().enumerate() {
        let from = if i == 0 { 0 } else { 446 };
        assert_same_bytes(&fx.path, target, off + from, 512 - from, "EBR");
    }
    assert_eq!(
        read_table(target),
        fx.table.clone().unwrap(),
        "partition table"
    );
    for p in &fx.parts {
        verify_part(
            target,
            p.start,
            p,
            scratch,
            &format!("{}", target.display()),
        );
    }
}

#[test]
fn restore_and_import_an_ocs_sr_mbr_image() {
    if !need(&[
        "root",
        "loop",
        "ocs-sr",
        "partclone.ext4",
        "partx",
        "sfdisk",
        "zstd",
    ]) || !need(EXT_TOOLS)
    {
        return;
    }
    let tmp = tempdir("cz-mbr");
    let dir = tmp.path();
    let fx = mbr_disk(
        dir,
        "src.img",
        64,
        0xc2,
        &[
            bootable(ext("ext4", 20, TreeSpec::new(0xc21, 2))),
            extended(),
            ext("ext4", 14, TreeSpec::new(0xc22, 1)),
            raw(5, "83", 0xc23),
        ],
    );
    let scratch = dir.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let repo = dir.join("partimag");
    fs::create_dir_all(&repo).unwrap();
    ocs_savedisk(&repo, "mbr-img", &fx.path, &["-z9p", "-i", "0"]);
    let r = s(&repo);

    // The plan, then the restore onto garbage (pre-check on, the default).
    let t1 = dir.join("t1.img");
    garbage_file(&t1, fx.size, 0xc24);
    let plan = lifeboat(&[
        "--json",
        "restoredisk",
        "--repo",
        r,
        "--image",
        "mbr-img",
        "--disk",
        s(&t1),
        "--dry-run",
    ])
    .ok();
    let v = plan.json_lines();
    let p = v.iter().find(|e| e["event"] == "plan").expect("plan event");
    assert_eq!(
        p["disks"][0]["partitions"].as_array().unwrap().len(),
        3,
        "{p}"
    );
    let before = sha_all(&t1);
    // The converted image fits the default memory spool: the files are read and
    // decompressed once, the write pass reads the spool.
    let run = restoredisk(&repo, "mbr-img", &[&t1], &["--json"]).ok();
    let events = run.json_lines();
    let plan = events
        .iter()
        .find(|e| e["event"] == "read_plan")
        .expect("read_plan event");
    assert_eq!(plan["mode"], "once", "{plan}");
    assert_ne!(sha_all(&t1), before);
    verify_cz_mbr(&fx, &t1, &scratch);

    // Import into a lifeboat repository: check passes, used blocks only, and its restore
    // gives the same disk.
    let lb = dir.join("lb");
    fs::create_dir_all(&lb).unwrap();
    lifeboat(&[
        "import",
        "--repo",
        r,
        "--image",
        "mbr-img",
        "--to",
        s(&lb),
        "--as",
        "web01-cz",
    ])
    .ok()
    .says(&["web01-cz"]);
    lifeboat(&["check", "--repo", s(&lb), "--image", "web01-cz"]).ok();
    let m = info_json(&lb, "web01-cz");
    let stored = m["totals"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored <= fx.expected_stored() + (2 << 20),
        "the import stored {stored} bytes, the source uses {}",
        fx.expected_stored()
    );
    let p1 = manifest_partition(&m, 0, 1);
    assert_eq!(p1["filesystem"], "ext4", "{p1}");
    assert_eq!(manifest_partition(&m, 0, 6)["mode"], "raw");
    let t2 = dir.join("t2.img");
    garbage_file(&t2, fx.size, 0xc25);
    restoredisk(&lb, "web01-cz", &[&t2], &[]).ok();
    verify_cz_mbr(&fx, &t2, &scratch);

    // One flipped byte in the logical ext4's partclone data: refused before the first
    // write (exit 4, the file named), the target untouched; the import fails too.
    let f = fs::read_dir(repo.join("mbr-img"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("p5.ext4-ptcl-img.zst"))
        .expect("the logical partition's image");
    let mut data = zstd::decode_all(fs::File::open(&f).unwrap()).unwrap();
    let at = data.len() - 5000;
    data[at] ^= 0x10;
    fs::write(&f, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
    let t3 = dir.join("t3.img");
    garbage_file(&t3, fx.size, 0xc26);
    let before = sha_all(&t3);
    let bad = restoredisk(&repo, "mbr-img", &[&t3], &[]).code(4);
    assert!(
        bad.stderr.contains("p5.ext4-ptcl-img.zst"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        sha_all(&t3),
        before,
        "a byte was written before the damage was found"
    );
    lifeboat(&[
        "import",
        "--repo",
        r,
        "--image",
        "mbr-img",
        "--to",
        s(&lb),
        "--as",
        "bad-cz",
    ])
    .code(4);
    assert_ne!(list_status(&lb, "bad-cz"), "complete");
}

/// A filesystem image of `mib` MiB of `kind` (ntfs, vfat, swap) holding `files`.
fn cz_fs(dir: &Path, kind: &str, mib: u64, files: &[(String, Vec<u8>)]) -> std::path::PathBuf {
    let f = dir.join(format!("{kind}.fs"));
    fs::File::create(&f).unwrap().set_len(mib << 20).unwrap();
    match kind {
        "ntfs" => {
            run_ok(
                tool("mkntfs")
                    .args(["-F", "-Q", "-q", "-L", "czntfs"])
                    .arg(&f),
            );
            for (name, data) in files {
                let src = dir.join(name);
                fs::write(&src, data).unwrap();
                run_ok(tool("ntfscp").arg("-f").arg(&f).arg(&src).arg(name));
            }
        }
        "vfat" => {
            run_ok(tool("mkfs.vfat").args(["-F", "32", "-n", "CZFAT"]).arg(&f));
            for (name, data) in files {
                let src = dir.join(name);
                fs::write(&src, data).unwrap();
                run_ok(
                    tool("mcopy")
                        .arg("-i")
                        .arg(&f)
                        .arg(&src)
                        .arg(format!("::{name}")),
                );
            }
        }
        _ => {
            run_ok(
                tool("mkswap")
                    .args(["-L", "czswap", "-U", "0a1b2c3d-1111-2222-3333-444455556666"])
                    .arg(&f),
            );
        }
    }
    f
}

#[test]
fn restore_an_ocs_sr_gpt_image_gzip_split_with_ntfs_fat_and_swap() {
    if !need(&[
        "root",
        "loop",
        "ocs-sr",
        "partclone.ntfs",
        "partclone.vfat",
        "partx",
        "sgdisk",
        "mkntfs",
        "ntfscp",
        "ntfscat",
        "ntfsfix",
        "mkfs.vfat",
        "mcopy",
        "fsck.vfat",
        "mkswap",
        "blkid",
    ]) {
        return;
    }
    let tmp = tempdir("cz-gpt");
    let dir = tmp.path();
    let mut rng = Rng::new(0xc3);
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("file{i}.bin"), rng.bytes(20_000 + 150_000 * i)))
        .collect();
    let ntfs = cz_fs(dir, "ntfs", 24, &files);
    let fat = cz_fs(dir, "vfat", 40, &files);
    let swap = cz_fs(dir, "swap", 8, &[]);
    let src = dir.join("src.img");
    sparse_file(&src, 96 << 20);
    run_ok(
        tool("sgdisk")
            .args([
                "-n1:2048:+24M",
                "-t1:0700",
                "-c1:data",
                "-n2:0:+40M",
                "-t2:0700",
                "-n3:0:+8M",
                "-t3:8200",
            ])
            .arg(&src),
    );
    let table = read_table(&src);
    for (n, f) in [(1u32, &ntfs), (2, &fat), (3, &swap)] {
        let p = table.parts.iter().find(|p| p.number == n).unwrap();
        write_at(&src, p.start, &fs::read(f).unwrap());
    }
    let repo = dir.join("partimag");
    fs::create_dir_all(&repo).unwrap();
    ocs_savedisk(&repo, "gpt-img", &src, &["-z1p", "-i", "1"]);
    assert!(
        fs::read_dir(repo.join("gpt-img")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".ab")),
        "ocs-sr did not split the images"
    );
    let t = dir.join("t.img");
    garbage_file(&t, 96 << 20, 0xc31);
    // Without a spool the conversion runs a second time for the write pass.
    let run = restoredisk(&repo, "gpt-img", &[&t], &["--json", "--spool-memory", "0"]).ok();
    let events = run.json_lines();
    let plan = events
        .iter()
        .find(|e| e["event"] == "read_plan")
        .expect("read_plan event");
    assert_eq!(plan["mode"], "twice", "{plan}");
    assert_sgdisk_clean(&t);
    assert_eq!(read_table(&t), table, "partition table");
    assert_same_bytes(
        &src,
        &t,
        0,
        34 * 512,
        "protective MBR, GPT header and entries",
    );
    assert_same_bytes(&src, &t, (96 << 20) - 33 * 512, 33 * 512, "backup GPT");
    let part = |n: u32, name: &str| {
        let p = table.parts.iter().find(|p| p.number == n).unwrap();
        let out = dir.join(name);
        extract(&t, p.start, p.size, &out);
        (out, p.start, p.size)
    };
    // NTFS: clean, every file, and the backup boot sector (outside partclone's bitmap) back.
    let (n, start, size) = part(1, "ntfs.out");
    run_ok(tool("ntfsfix").arg("-n").arg(&n));
    for (name, data) in &files {
        let got = run_ok_bytes(tool("ntfscat").arg(&n).arg(name));
        assert!(got == *data, "NTFS file {name} differs");
    }
    assert_same_bytes(&src, &t, start + size - 512, 512, "NTFS backup boot sector");
    // FAT32: clean and every file.
    let (f, _, _) = part(2, "fat.out");
    run_ok(tool("fsck.vfat").arg("-n").arg(&f));
    for (name, data) in &files {
        let got = run_ok_bytes(
            tool("mcopy")
                .arg("-i")
                .arg(&f)
                .arg(format!("::{name}"))
                .arg("-"),
        );
        assert!(got == *data, "FAT file {name} differs");
    }
    // Swap: the header mkswap made, as Clonezilla kept it (UUID and label).
    let (w, _, _) = part(3, "swap.out");
    let id = run_ok(tool("blkid").args(["-p", "-o", "export"]).arg(&w));
    assert!(
        id.contains("UUID=0a1b2c3d-1111-2222-3333-444455556666") && id.contains("LABEL=czswap"),
        "{id}"
    );
}

/// Runs a command and returns its raw stdout (panics unless it succeeds).
fn run_ok_bytes(c: &mut std::process::Command) -> Vec<u8> {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
