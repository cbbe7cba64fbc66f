//! End-to-end refusals: every unsafe or impossible restore stops with the documented exit
//! code and a message that names the problem, and writes nothing (the whole target is hashed
//! before and after). Damaged images are named down to the volume file and the chunk.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};

const TOOLS: &[&str] = &["mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk"];

/// A small MBR disk saved as image `img` in `<dir>/repo`.
struct Saved {
    fx: Fixture,
    repo: PathBuf,
    image: &'static str,
}

fn saved(dir: &Path, image: &'static str, seed: u64) -> Saved {
    let fx = mbr_disk(
        dir,
        "src.img",
        48,
        seed,
        &[
            bootable(ext("ext4", 24, TreeSpec::new(seed + 1, 4))),
            ext("ext2", 16, TreeSpec::new(seed + 2, 1)),
        ],
    );
    let repo = dir.join("repo");
    fs::create_dir_all(&repo).unwrap();
    save_to(&repo, image, &fx.path);
    Saved { fx, repo, image }
}

fn save_to(repo: &Path, image: &str, disk: &Path) {
    lifeboat(&[
        "savedisk",
        "--repo",
        s(repo),
        "--image",
        image,
        "--disk",
        s(disk),
    ])
    .ok();
}

fn restore(repo: &Path, image: &str, target: &Path, extra: &[&str]) -> Run {
    let mut a = vec![
        "restoredisk",
        "--repo",
        s(repo),
        "--image",
        image,
        "--disk",
        s(target),
    ];
    a.extend_from_slice(extra);
    lifeboat(&a)
}

/// The chunk number named in a message ("… (chunk 7) …", "chunk 7 …").
fn chunk_named(text: &str) -> Option<u64> {
    text.match_indices("chunk ").find_map(|(i, m)| {
        let digits: String = text[i + m.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

/// Remounts read-only: the filesystem writes nothing more (journal checkpoints included),
/// so hashes of its device are stable.
fn remount_ro(m: &Mount) {
    sync();
    run_ok(tool("mount").args(["-o", "remount,ro"]).arg(&m.dir));
}

/// XORs the byte in the middle of `file` (inside the compressed chunk data of a
/// multi-MiB image); returns its offset.
fn flip_middle_byte(file: &Path) -> u64 {
    let len = fs::metadata(file).unwrap().len();
    let off = len / 2;
    let b = read_range(file, off, 1);
    write_at(file, off, &[b[0] ^ 0x5a]);
    off
}

#[test]
fn target_too_small_is_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("small");
    let sv = saved(t.path(), "img", 900);
    let target = t.path().join("small-target.img");
    // The last partition ends 41 MiB into the disk: a 40 MiB target lacks 1 MiB for it (a
    // smaller target where every partition fits is accepted: tests/resize.rs).
    garbage_file(&target, 40 * MIB, 1);
    let before = sha_all(&target);
    restore(&sv.repo, sv.image, &target, &["--yes"])
        .code(3)
        .says(&[
            s(&target),
            "partition 2 does not fit",
            "1048576 bytes",
            "nothing was written",
        ]);
    assert_eq!(
        sha_all(&target),
        before,
        "a refused restore wrote to the target"
    );
}

#[test]
fn restore_without_yes_and_without_terminal_is_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("noyes");
    let sv = saved(t.path(), "img", 910);
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 2);
    let before = sha_all(&target);
    // stdin is /dev/null: no terminal to confirm on.
    restore(&sv.repo, sv.image, &target, &[]).code(3).says(&[
        "confirmation",
        "--yes",
        "nothing was written",
    ]);
    assert_eq!(sha_all(&target), before);
    // And `delete` needs --yes too.
    lifeboat(&["delete", "--repo", s(&sv.repo), "--image", sv.image])
        .code(3)
        .says(&["--yes"]);
    assert!(sv.repo.join(sv.image).join("manifest.json").exists());
}

#[test]
fn invalid_image_names_are_refused_and_create_nothing() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("names");
    let sv = saved(t.path(), "img", 920);
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 3);
    let before = sha_all(&target);
    let listing = |p: &Path| {
        let mut v: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let outer = listing(t.path());
    for bad in [
        "a/b",
        "..",
        "../escape",
        "x/../../y",
        "-rf",
        "--yes",
        ".hidden",
        "a b",
        "",
    ] {
        let arg = format!("--image={bad}");
        lifeboat(&[
            "savedisk",
            "--repo",
            s(&sv.repo),
            &arg,
            "--disk",
            s(&sv.fx.path),
        ])
        .code(2)
        .says(&["invalid image name"]);
        lifeboat(&[
            "restoredisk",
            "--repo",
            s(&sv.repo),
            &arg,
            "--disk",
            s(&target),
            "--yes",
        ])
        .code(2)
        .says(&["invalid image name"]);
        lifeboat(&["check", "--repo", s(&sv.repo), &arg])
            .code(2)
            .says(&["invalid image name"]);
        assert_eq!(
            listing(&sv.repo),
            ["img"],
            "{bad:?} created something in the repository"
        );
        assert_eq!(
            listing(t.path()),
            outer,
            "{bad:?} created something outside the repository"
        );
        assert_eq!(sha_all(&target), before);
    }
}

#[test]
fn flipped_byte_is_found_by_check_and_blocks_restore() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("flip");
    let sv = saved(t.path(), "img", 930);
    let vol = sv.repo.join(sv.image).join("data.lbi.000");
    assert!(fs::metadata(&vol).unwrap().len() > 2 * MIB);
    flip_middle_byte(&vol);
    let r = lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image])
        .code(4)
        .says(&["data.lbi.000", "damaged", "restore from another copy"]);
    let chunk = chunk_named(&r.all());
    assert!(
        chunk.is_some(),
        "check does not name the chunk:\n{}",
        r.all()
    );
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 4);
    let before = sha_all(&target);
    let r = restore(&sv.repo, sv.image, &target, &["--yes"])
        .code(4)
        .says(&["data.lbi.000"]);
    assert_eq!(
        chunk_named(&r.all()),
        chunk,
        "restore names another chunk:\n{}",
        r.all()
    );
    assert_eq!(
        sha_all(&target),
        before,
        "the precheck let a damaged image write"
    );
}

#[test]
fn flipped_byte_with_no_precheck_stops_naming_the_chunk() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("noprecheck");
    let sv = saved(t.path(), "img", 940);
    let vol = sv.repo.join(sv.image).join("data.lbi.000");
    flip_middle_byte(&vol);
    let c = lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image]).code(4);
    let chunk = chunk_named(&c.all()).expect("check names the chunk");
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 5);
    let r = restore(&sv.repo, sv.image, &target, &["--yes", "--no-precheck"]);
    assert_ne!(
        r.code,
        0,
        "a damaged image restored without error:\n{}",
        r.all()
    );
    assert_eq!(r.code, 4, "{}", r.all());
    let r = r.says(&["data.lbi.000", "damaged"]);
    assert_eq!(chunk_named(&r.all()), Some(chunk), "{}", r.all());
    assert!(!r.all().contains("restored image"), "{}", r.all());
}

#[test]
fn truncated_volume_is_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("trunc");
    let sv = saved(t.path(), "img", 950);
    let vol = sv.repo.join(sv.image).join("data.lbi.000");
    let len = fs::metadata(&vol).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&vol)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image])
        .code(4)
        .says(&["data.lbi.000", "truncated"]);
    let l = list_json(&sv.repo);
    assert_eq!(l[0]["complete"], false, "{l:?}");
    assert!(l[0]["reason"].as_str().unwrap().contains("data.lbi.000"));
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 6);
    let before = sha_all(&target);
    restore(&sv.repo, sv.image, &target, &["--yes"])
        .code(4)
        .says(&["data.lbi.000"]);
    assert_eq!(sha_all(&target), before);
}

#[test]
fn missing_manifest_means_incomplete() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("nomanifest");
    let sv = saved(t.path(), "img", 960);
    fs::remove_file(sv.repo.join(sv.image).join("manifest.json")).unwrap();
    assert_eq!(list_status(&sv.repo, "img"), "INCOMPLETE");
    let l = list_json(&sv.repo);
    assert_eq!(l[0]["complete"], false);
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 7);
    let before = sha_all(&target);
    restore(&sv.repo, sv.image, &target, &["--yes"])
        .code(4)
        .says(&["img", "incomplete", "manifest.json"]);
    assert_eq!(sha_all(&target), before);
    lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image]).code(4);
    lifeboat(&["info", "--repo", s(&sv.repo), "--image", sv.image]).code(4);
}

#[test]
fn target_that_is_a_file_of_the_image_is_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("selfimg");
    let sv = saved(t.path(), "img", 970);
    let vol = sv.repo.join(sv.image).join("data.lbi.000");
    let before = sha_all(&vol);
    restore(&sv.repo, sv.image, &vol, &["--yes"])
        .code(3)
        .says(&[
            "data.lbi.000",
            "file of the image itself",
            "nothing was written",
        ]);
    assert_eq!(sha_all(&vol), before);
}

#[test]
fn restoreparts_onto_a_smaller_partition_is_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("partsmall");
    let d = t.path();
    let sv = saved(d, "img", 980);
    lifeboat(&[
        "saveparts",
        "--repo",
        s(&sv.repo),
        "--image",
        "p1",
        "--disk",
        s(&sv.fx.path),
        "--part",
        "1",
    ])
    .ok();
    let dst = mbr_disk(d, "dst.img", 48, 981, &[raw(16, "83", 1), raw(24, "83", 2)]);
    let before = sha_all(&dst.path);
    lifeboat(&[
        "restoreparts",
        "--repo",
        s(&sv.repo),
        "--image",
        "p1",
        "--disk",
        s(&dst.path),
        "--part",
        "1",
        "--yes",
    ])
    .code(3)
    .says(&[s(&dst.path), "partition 1", "enlarge"]);
    assert_eq!(sha_all(&dst.path), before);
}

#[test]
fn mounted_target_is_refused() {
    if !need(TOOLS) || !need(&["loop", "mount", "umount"]) {
        return;
    }
    let t = tempdir("mounted");
    let d = t.path();
    let sv = saved(d, "img", 990);
    let fsimg = d.join("mounted.img");
    sparse_file(&fsimg, sv.fx.size + 16 * MIB);
    mkfs_ext(&fsimg, 0, sv.fx.size + 16 * MIB, "ext4", None, None, "busy");
    let lo = LoopDev::attach(&fsimg, None);
    let mnt = d.join("mnt");
    let m = Mount::new(&lo.dev, &mnt, "");
    remount_ro(&m);
    let before = sha_all(&lo.dev);
    restore(&sv.repo, sv.image, &lo.dev, &["--yes"])
        .code(3)
        .says(&[
            lo.path(),
            "mounted",
            s(&mnt),
            "unmount",
            "nothing was written",
        ]);
    // Saving a mounted disk is refused too (the image would be inconsistent).
    lifeboat(&[
        "savedisk",
        "--repo",
        s(&sv.repo),
        "--image",
        "busy",
        "--disk",
        lo.path(),
    ])
    .code(3)
    .says(&[lo.path(), "mounted"]);
    assert!(
        !sv.repo.join("busy").exists(),
        "a refused save left an image directory"
    );
    sync();
    assert_eq!(
        sha_all(&lo.dev),
        before,
        "a refused restore wrote to a mounted disk"
    );
    // The backing file of the mounted loop device is refused as a target as well.
    let fbefore = sha_all(&fsimg);
    restore(&sv.repo, sv.image, &fsimg, &["--yes"])
        .code(3)
        .says(&["mounted.img", lo.path()]);
    assert_eq!(sha_all(&fsimg), fbefore);
    drop(m);
}

#[test]
fn disk_holding_the_repository_is_refused() {
    if !need(TOOLS) || !need(&["loop", "mount", "umount"]) {
        return;
    }
    let t = tempdir("repodisk");
    let d = t.path();
    let src = mbr_disk(
        d,
        "src.img",
        32,
        1000,
        &[ext("ext4", 24, TreeSpec::new(1001, 2))],
    );
    let fsimg = d.join("usb.img");
    sparse_file(&fsimg, 96 * MIB);
    mkfs_ext(&fsimg, 0, 96 * MIB, "ext4", None, None, "usb");
    let lo = LoopDev::attach(&fsimg, None);
    let m = Mount::new(&lo.dev, &d.join("usb"), "");
    let repo = m.dir.join("images");
    fs::create_dir(&repo).unwrap();
    save_to(&repo, "img", &src.path);
    remount_ro(&m);
    let before = sha_all(&lo.dev);
    let r = restore(&repo, "img", &lo.dev, &["--yes"]).code(3);
    let r = r.says(&[lo.path(), "nothing was written"]);
    let all = r.all();
    assert!(
        all.contains("mounted") || all.contains("repository"),
        "the refusal says neither mounted nor repository:\n{all}"
    );
    sync();
    assert_eq!(sha_all(&lo.dev), before);
    drop(m);
}

/// `--spool DIR` with DIR on a target disk is refused before anything is written.
#[test]
fn spool_directory_on_a_target_is_refused() {
    if !need(TOOLS) || !need(&["loop", "mount", "umount"]) {
        return;
    }
    let t = tempdir("spooldisk");
    let d = t.path();
    let sv = saved(d, "img", 1020);
    let fsimg = d.join("spool.img");
    sparse_file(&fsimg, sv.fx.size.max(96 * MIB));
    mkfs_ext(
        &fsimg,
        0,
        sv.fx.size.max(96 * MIB),
        "ext4",
        None,
        None,
        "spool",
    );
    let lo = LoopDev::attach(&fsimg, None);
    let m = Mount::new(&lo.dev, &d.join("spool"), "");
    remount_ro(&m);
    let before = sha_all(&lo.dev);
    let r = restore(&sv.repo, "img", &lo.dev, &["--yes", "--spool", s(&m.dir)]).code(3);
    let _ = r.says(&[lo.path(), "spool", "nothing was written"]);
    sync();
    assert_eq!(sha_all(&lo.dev), before);
    drop(m);
}

/// This kernel makes no partition nodes for loop devices, so a partition is mounted through
/// a second loop device over the same file at the partition's offset. The whole-disk loop
/// device then holds the mounted filesystem and the repository on it: it must be refused.
/// (The image only covers the first 48 MiB and the mounted partition starts at 61 MiB, so a
/// wrong restore shows in the hash without damaging the mounted filesystem.)
#[test]
fn whole_disk_loop_sharing_a_file_with_the_mounted_partition_holding_the_repo_is_refused() {
    if !need(TOOLS) || !need(&["loop", "mount", "umount"]) {
        return;
    }
    let t = tempdir("sharedloop");
    let d = t.path();
    let sv = saved(d, "img", 1010);
    let host = mbr_disk(
        d,
        "host.img",
        128,
        1011,
        &[
            raw(60, "da", 1012),
            ext(
                "ext4",
                64,
                TreeSpec {
                    seed: 1013,
                    big_mib: 0,
                    many: 0,
                },
            ),
        ],
    );
    let p2 = host.part(2).clone();
    assert!(p2.start >= sv.fx.size + MIB);
    let whole = LoopDev::attach(&host.path, None);
    let part = LoopDev::attach_range(&host.path, None, Some((p2.start, p2.size)));
    let m = Mount::new(&part.dev, &d.join("usb"), "");
    let repo = m.dir.join("images");
    fs::create_dir(&repo).unwrap();
    save_to(&repo, "img", &sv.fx.path);
    remount_ro(&m);
    let before = sha_all(&whole.dev);
    let r = restore(&repo, "img", &whole.dev, &["--yes"]);
    sync();
    let after = sha_all(&whole.dev);
    assert_eq!(
        r.code,
        3,
        "restoring onto {} (same backing file as the mounted {} holding the repository) was not refused:\n{}",
        whole.path(),
        part.path(),
        r.all()
    );
    assert_eq!(after, before, "{} was written", whole.path());
    let _ = r.says(&[whole.path(), part.path(), "mounted", "nothing was written"]);
    drop(m);
}

#[test]
fn saving_under_an_existing_name_leaves_the_existing_image_alone() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("exists");
    let sv = saved(t.path(), "img", 1020);
    let dir = sv.repo.join(sv.image);
    let hashes = |dir: &Path| {
        let mut v: Vec<(String, String)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    sha_all(&p),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = hashes(&dir);
    let r = lifeboat(&[
        "savedisk",
        "--repo",
        s(&sv.repo),
        "--image",
        sv.image,
        "--disk",
        s(&sv.fx.path),
    ])
    .says(&["already exists"]);
    assert_ne!(r.code, 0);
    r.assert_error_not_repeated();
    assert_eq!(hashes(&dir), before, "the existing image was modified");
    lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image]).ok();
}

/// manifest.json is plain JSON: a changed value must be caught by `check` (the manifest
/// inside the container is the reference), with the "damaged" exit code.
#[test]
fn tampered_manifest_is_caught_by_check() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("tamper");
    let sv = saved(t.path(), "img", 1030);
    let path = sv.repo.join(sv.image).join("manifest.json");
    let text = fs::read_to_string(&path).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["host"] = serde_json::Value::String("some-other-host".into());
    fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image])
        .code(4)
        .says(&["manifest.json differs"]);
    // A wrong volume CRC in the manifest: the volume or the manifest is damaged.
    m["host"] = serde_json::from_str::<serde_json::Value>(&text).unwrap()["host"].clone();
    let crc = m["files"][0]["crc32"].as_str().unwrap().to_string();
    let flipped = format!("{:08x}", u32::from_str_radix(&crc, 16).unwrap() ^ 1);
    m["files"][0]["crc32"] = serde_json::Value::String(flipped);
    fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    lifeboat(&["check", "--repo", s(&sv.repo), "--image", sv.image])
        .code(4)
        .says(&["data.lbi.000", "CRC32"]);
}

/// A manifest.json that disagrees with the manifest inside the container (here: the data
/// CRC of the disk, as after a flipped bit) is found by the precheck, before anything is
/// written, and reported as a damaged image.
#[test]
fn restore_checks_manifest_json_against_the_image_before_writing() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("tampercrc");
    let sv = saved(t.path(), "img", 1040);
    let path = sv.repo.join(sv.image).join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let crc = m["disks"][0]["data_crc32"].as_str().unwrap().to_string();
    let flipped = format!("{:08x}", u32::from_str_radix(&crc, 16).unwrap() ^ 0x10);
    m["disks"][0]["data_crc32"] = serde_json::Value::String(flipped);
    fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 8);
    let before = sha_all(&target);
    let r = restore(&sv.repo, sv.image, &target, &["--yes"]);
    let after = sha_all(&target);
    assert_eq!(
        after,
        before,
        "written before the disagreement was noticed:\n{}",
        r.all()
    );
    r.code(4).says(&["manifest"]);
}

/// The repository's filesystem fills up during a save (a small USB stick): the save fails
/// with a message about free space, leaves an incomplete image, and changes nothing else.
#[test]
fn full_repository_fails_cleanly() {
    if !need(TOOLS) || !need(&["root", "mount", "umount"]) {
        return;
    }
    let t = tempdir("full");
    let d = t.path();
    let fx = mbr_disk(
        d,
        "src.img",
        48,
        1050,
        &[ext("ext4", 40, TreeSpec::new(1051, 12))],
    );
    let before = sha_all(&fx.path);
    let stick = d.join("stick");
    fs::create_dir(&stick).unwrap();
    run_ok(
        tool("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "lifeboat-test-stick"])
            .arg(&stick),
    );
    let m = Mount { dir: stick.clone() };
    let r = lifeboat(&[
        "savedisk",
        "--repo",
        s(&stick),
        "--image",
        "full",
        "--disk",
        s(&fx.path),
    ]);
    assert_ne!(
        r.code,
        0,
        "a save into a full repository succeeded:\n{}",
        r.all()
    );
    assert!(
        ![0, 2, 3, 4].contains(&r.code),
        "exit {}: {}",
        r.code,
        r.all()
    );
    r.assert_error_not_repeated();
    let _ = r.says(&["free space"]);
    let l = list_json(&stick);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["complete"], false);
    assert_eq!(sha_all(&fx.path), before, "the source changed");
    lifeboat(&["delete", "--repo", s(&stick), "--incomplete", "--yes"]).ok();
    assert!(list_json(&stick).is_empty());
    drop(m);
}
