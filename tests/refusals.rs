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
    // It stopped after writing began: the operator is told the target is now inconsistent.
    r.says(&["INCONSISTENT", s(&target)]);
}

/// The first chunk record at or after `from` in a volume file whose header CRC holds: its
/// offset, extent count and payload length.
fn next_chunk(v: &[u8], from: usize) -> Option<(usize, usize, usize)> {
    let u32_at = |o: usize| u32::from_le_bytes(v[o..o + 4].try_into().unwrap()) as usize;
    let mut at = from;
    while let Some(i) = v[at..].windows(4).position(|w| w == b"CHNK") {
        let o = at + i;
        at = o + 4;
        if o + 48 > v.len() {
            return None;
        }
        let (n, payload) = (u32_at(o + 16), u32_at(o + 24));
        if n == 0 || o + 48 + 16 * n + payload > v.len() {
            continue;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&v[o..o + 44]);
        h.update(&v[o + 48..o + 48 + 16 * n]);
        if h.finalize() as usize == u32_at(o + 44) {
            return Some((o, n, payload));
        }
    }
    None
}

/// Changes a byte in the middle of the payload of the chunk record `(offset, extent count,
/// payload length)` of `v`, the single volume of image directory `dir`, and makes every
/// checksum that covers it agree again — the payload CRC, the data CRC too when the chunk is
/// stored (its payload is its data), the header CRC, the volume's CRC32 in manifest.json — as
/// someone who can write to the repository could. Writes the volume back; returns the
/// chunk's sequence number.
fn rewrite_chunk(dir: &Path, mut v: Vec<u8>, (o, n, payload): (usize, usize, usize)) -> u64 {
    let p = o + 48 + 16 * n;
    v[p + payload / 2] ^= 0x20;
    let crc = crc32fast::hash(&v[p..p + payload]).to_le_bytes();
    if v[o + 28] == 0 {
        v[o + 32..o + 36].copy_from_slice(&crc); // data CRC
    }
    v[o + 36..o + 40].copy_from_slice(&crc); // payload CRC
    let mut h = crc32fast::Hasher::new();
    h.update(&v[o..o + 44]);
    h.update(&v[o + 48..o + 48 + 16 * n]);
    v[o + 44..o + 48].copy_from_slice(&h.finalize().to_le_bytes());
    fs::write(dir.join("data.lbi.000"), &v).unwrap();
    let mpath = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&mpath).unwrap()).unwrap();
    m["files"][0]["crc32"] = serde_json::Value::String(format!("{:08x}", crc32fast::hash(&v)));
    fs::write(&mpath, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    u64::from_le_bytes(v[o + 8..o + 16].try_into().unwrap())
}

/// Someone who can write to the repository changes a chunk's stored bytes and makes every
/// record checksum and the volume CRC in manifest.json agree again: only decompressing the
/// chunk (or its data CRC) shows it. The restore's pre-check does that before the first write,
/// so the target stays untouched (before, the pre-check passed and the write pass stopped
/// halfway, leaving the target inconsistent).
#[test]
fn resealed_chunk_is_refused_before_writing() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("reseal");
    let sv = saved(t.path(), "img", 945);
    let dir = sv.repo.join(sv.image);
    let vol = dir.join("data.lbi.000");
    let v = fs::read(&vol).unwrap();
    // The last chunk with a payload: the chunks before it would already be on the target.
    let mut at = 0;
    let mut found = Vec::new();
    while let Some((o, n, payload)) = next_chunk(&v, at) {
        at = o + 4;
        if payload >= 64 {
            found.push((o, n, payload));
        }
    }
    assert!(
        found.len() >= 2,
        "the image has {} chunks with payloads",
        found.len()
    );
    let seq = rewrite_chunk(&dir, v, *found.last().unwrap());
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 9);
    let before = sha_all(&target);
    let r = restore(&sv.repo, sv.image, &target, &["--yes"]);
    assert_eq!(
        sha_all(&target),
        before,
        "the pre-check let a resealed chunk through; the target was written:\n{}",
        r.all()
    );
    let r = r.code(4);
    assert_eq!(chunk_named(&r.all()), Some(seq), "{}", r.all());
    assert!(!r.all().contains("INCONSISTENT"), "{}", r.all());
}

/// Someone who can write to the repository replaces a byte of a stored (incompressible)
/// chunk and makes every CRC agree again: the chunk's data, payload and header CRCs and the
/// volume CRC in manifest.json. No CRC can tell; the chunk's SHA-256 digest in the index
/// (format 3) can: `extract` (and `mount`, through the same reader) refuse the chunk even
/// after the index itself was proved against the digest noted at save time; `check`, which
/// reads everything, fails too.
#[test]
fn a_chunk_rewritten_with_every_crc_is_caught_by_its_digest() {
    if !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("digest");
    let fx = mbr_disk(t.path(), "rnd.img", 11, 960, &[raw(9, "83", 961)]);
    let part_sha = fx.parts[0].sha.clone().unwrap();
    let repo = t.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    let (r, i) = (s(&repo), "img");
    lifeboat(&["savedisk", "--repo", r, "--image", i, "--disk", s(&fx.path)]).code(0);
    let info = lifeboat(&["info", "--repo", r, "--image", i, "--json"]).code(0);
    let digest = info.json_lines()[0]["digest"].as_str().unwrap().to_string();
    let extract = |out: &str, digest: Option<&str>| {
        let out = t.path().join(out);
        let mut a = vec![
            "extract",
            "--repo",
            r,
            "--image",
            i,
            "--part",
            "1",
            "--out",
            s(&out),
        ];
        if let Some(d) = digest {
            a.extend(["--digest", d]);
        }
        (lifeboat(&a), out)
    };
    let (run, out) = extract("good.img", Some(&digest));
    run.code(0).says(&["expected"]);
    assert_eq!(sha_all(&out), part_sha, "extract with the digest");
    // restoredisk proves the digest in its pre-check: another one writes nothing; the right
    // one restores; without the pre-check it cannot be proved and is refused.
    let target = t.path().join("target.img");
    garbage_file(&target, fx.size, 962);
    let before = sha_all(&target);
    let wrong = "0".repeat(64);
    restore(&repo, i, &target, &["--yes", "--digest", &wrong])
        .code(4)
        .says(&["not the expected", "nothing was written"]);
    assert_eq!(
        sha_all(&target),
        before,
        "a wrong digest wrote to the target"
    );
    restore(
        &repo,
        i,
        &target,
        &["--yes", "--no-precheck", "--digest", &digest],
    )
    .code(1)
    .says(&["--no-precheck"]);
    assert_eq!(sha_all(&target), before);
    restore(&repo, i, &target, &["--yes", "--digest", &digest]).code(0);
    let p = &fx.parts[0];
    assert_eq!(
        sha_range(&target, p.start, p.size),
        part_sha,
        "restore with the digest"
    );

    // Rewrite a byte of the last stored chunk (codec 0: the payload is the data itself).
    let dir = repo.join(i);
    let vol = dir.join("data.lbi.000");
    let v = fs::read(&vol).unwrap();
    let mut at = 0;
    let mut stored = None;
    while let Some((o, n, payload)) = next_chunk(&v, at) {
        at = o + 4;
        if v[o + 28] == 0 && payload >= 4096 {
            stored = Some((o, n, payload));
        }
    }
    let seq = rewrite_chunk(
        &dir,
        v,
        stored.expect("a stored chunk (the partition is random bytes)"),
    );

    for (name, d) in [("bad.img", None), ("bad-d.img", Some(digest.as_str()))] {
        let (run, _) = extract(name, d);
        let run = run.code(4).says(&["chunk digest"]);
        assert_eq!(chunk_named(&run.all()), Some(seq), "{}", run.all());
    }
    // check reads it all: the disk's data CRC (and the image digest) no longer match.
    lifeboat(&["check", "--repo", r, "--image", i]).code(4);
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

/// Another program holding a lock (`flock`) on a file or an exclusive claim (`O_EXCL`) on a
/// block device, until dropped.
struct Holder(std::process::Child);

impl Holder {
    fn start(code: &str, path: &Path) -> Holder {
        use std::io::BufRead;
        let mut c = std::process::Command::new("python3")
            .args(["-c", code, s(path)])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held", "the holder did not start");
        Holder(c)
    }
    /// `flock(LOCK_EX)`, as a restore onto the file takes it.
    fn flock(path: &Path) -> Holder {
        Holder::start(
            "import fcntl,sys,time\nf=open(sys.argv[1],'rb')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(600)",
            path,
        )
    }
    /// `open(O_EXCL)` of a block device, as mkfs or a mount would hold it.
    fn exclusive(path: &Path) -> Holder {
        Holder::start(
            "import os,sys,time\nfd=os.open(sys.argv[1],os.O_RDONLY|os.O_EXCL)\nprint('held',flush=True)\ntime.sleep(600)",
            path,
        )
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A restore locks an image-file target as it claims a block device: while another lifeboat
/// (here: anything holding an exclusive `flock`) has it, the restore is refused and writes
/// nothing.
#[test]
fn restore_onto_a_locked_image_file_is_refused() {
    if !need(TOOLS) || !need(&["python3"]) {
        return;
    }
    let t = tempdir("flock");
    let sv = saved(t.path(), "img", 1050);
    let target = t.path().join("target.img");
    garbage_file(&target, sv.fx.size, 10);
    let before = sha_all(&target);
    {
        let _h = Holder::flock(&target);
        let r = restore(&sv.repo, sv.image, &target, &["--yes"]);
        assert_ne!(r.code, 0, "{}", r.all());
        r.says(&[s(&target), "busy"]);
        assert_eq!(sha_all(&target), before, "written while locked");
    }
    restore(&sv.repo, sv.image, &target, &["--yes"]).ok();
}

/// A save claims its block devices exclusively (`O_EXCL`): a device that something else
/// holds exclusively (a mount, mkfs, an active LV or md array) is refused instead of imaged
/// while it changes, and nothing is left in the repository.
#[test]
fn save_of_a_device_held_exclusively_elsewhere_is_refused() {
    if !need(TOOLS) || !need(&["loop", "python3"]) {
        return;
    }
    let t = tempdir("excl");
    let sv = saved(t.path(), "img", 1060);
    let lo = LoopDev::attach(&sv.fx.path, None);
    {
        let _h = Holder::exclusive(&lo.dev);
        let r = lifeboat(&[
            "savedisk",
            "--repo",
            s(&sv.repo),
            "--image",
            "held",
            "--disk",
            lo.path(),
        ]);
        assert_ne!(r.code, 0, "{}", r.all());
        r.says(&[lo.path(), "busy"]);
        assert!(
            !sv.repo.join("held").exists(),
            "a refused save left an image"
        );
    }
    lifeboat(&[
        "savedisk",
        "--repo",
        s(&sv.repo),
        "--image",
        "free",
        "--disk",
        lo.path(),
    ])
    .ok();
}

/// Names from a repository reach the terminal without their control characters: an image
/// directory named with an escape sequence (clear screen, set the window title) is listed
/// with the sequence shown escaped.
#[test]
fn control_characters_from_a_repository_never_reach_the_terminal() {
    let t = tempdir("ctrl");
    let repo = t.path().join("repo");
    let evil = repo.join("evil\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}name");
    fs::create_dir_all(&evil).unwrap();
    fs::write(evil.join(".lifeboat-image"), b"lifeboat image\n").unwrap();
    for args in [
        vec!["list", "--repo", s(&repo)],
        vec!["delete", "--repo", s(&repo), "--incomplete", "--yes"],
    ] {
        let r = lifeboat(&args);
        for c in ['\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(
                !r.stdout.contains(c) && !r.stderr.contains(c),
                "{args:?} printed {c:?}:\n{}",
                r.all()
            );
        }
        r.says(&["evil"]);
    }
}

/// A partition whose bytes carry two filesystem signatures (NTFS made over an ext4 whose
/// superblock survived in the boot-code area; `blkid -p` calls it ambivalent) is copied whole
/// with a warning, not scanned as whichever signature is probed first: only the operator
/// knows which one is current. Restored onto garbage, the partition is byte-identical.
#[test]
fn a_partition_with_two_filesystem_signatures_is_copied_whole() {
    if !need(TOOLS) || !need(&["mkntfs", "ntfsfix", "blkid"]) {
        return;
    }
    let t = tempdir("twosig");
    let d = t.path();
    let (e, p) = (d.join("ext.img"), d.join("part.img"));
    sparse_file(&e, 24 * MIB);
    sparse_file(&p, 24 * MIB);
    run_ok(tool("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(&e));
    run_ok(tool("mkntfs").args(["-Q", "-F", "-q"]).arg(&p));
    let sb = read_range(&e, 1024, 1024);
    write_at(&p, 1024, &sb);
    let blkid = tool("blkid").arg("-p").arg(&p).output().unwrap();
    assert_eq!(
        blkid.status.code(),
        Some(8),
        "blkid does not find two filesystems: {}",
        String::from_utf8_lossy(&blkid.stderr)
    );
    run_ok(tool("ntfsfix").arg("-n").arg(&p));
    let disk = d.join("disk.img");
    sparse_file(&disk, 32 * MIB);
    sfdisk(&disk, "label: dos\nstart=2048, size=49152, type=7\n");
    let part = fs::read(&p).unwrap();
    write_at(&disk, MIB, &part);
    let repo = d.join("repo");
    fs::create_dir_all(&repo).unwrap();
    let r = savedisk(&repo, "two", &[&disk], &["--json"]).ok();
    let warned = r.json_lines().iter().any(|e| {
        e["event"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("stale") && m.contains("ntfs") && m.contains("ext"))
    });
    assert!(warned, "no warning about the two signatures:\n{}", r.all());
    let m = info_json(&repo, "two");
    let p1 = manifest_partition(&m, 0, 1);
    assert_eq!(p1["filesystem"], "ntfs+ext", "{p1:#}");
    assert_eq!(p1["mode"], "raw", "{p1:#}");
    let target = d.join("target.img");
    garbage_file(&target, 32 * MIB, 11);
    restoredisk(&repo, "two", &[&target], &[]).ok();
    assert_eq!(
        sha_range(&target, MIB, 24 * MIB),
        sha_bytes(&part),
        "the partition is not byte-identical"
    );
}
