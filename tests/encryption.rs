//! Encrypted images (`--encrypt`, docs/FORMAT.md §16) and image digests (§6.1), end to end
//! with the real tools: an MBR disk with ext4 (mke2fs), FAT (mkfs.vfat + mtools) and a raw
//! partition is saved encrypted and restored onto garbage (e2fsck / fsck.vfat clean, files
//! identical); no known plaintext is in any file of the image (and the same grep finds it in
//! an unencrypted image, so the grep can fail); wrong passphrases, world-readable passphrase
//! files, flipped, swapped and foreign segments and a tampered manifest are refused before
//! anything is written; `check --digest` right and wrong; streams and `extract`.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TOOLS: &[&str] = &[
    "mke2fs",
    "e2fsck",
    "debugfs",
    "dumpe2fs",
    "sfdisk",
    "mkfs.vfat",
    "fsck.vfat",
    "mcopy",
    "mtype",
];
const PASS: &str = "correct horse battery staple";
/// A string in the FAT partition's file, and the FAT label.
const FILE_TEXT: &str = "lifeboat-crypt-test: this sentence must never be readable in an image";
const LABEL: &str = "CRYPTLABEL";
/// Random bytes placed in the raw partition (incompressible there, so an unencrypted image
/// stores them verbatim).
const MARKER_SEED: u64 = 0xC0FFEE;
const FULL: usize = 65536 + 16;

/// `lifeboat ARGS` with `LIFEBOAT_PASSPHRASE` set to `pass` (or unset), stdin /dev/null.
fn lb(args: &[&str], pass: Option<&str>) -> Run {
    let mut c = Command::new(bin());
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("LIFEBOAT_PASSPHRASE");
    if let Some(p) = pass {
        c.env("LIFEBOAT_PASSPHRASE", p);
    }
    let out = c.output().expect("spawn lifeboat");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Disk {
    fx: Fixture,
    fat: (u64, u64),
    marker: Vec<u8>,
}

/// ext4 (24 MiB, a tree), FAT16 (16 MiB, labelled, holding FILE_TEXT), raw (8 MiB random
/// with the marker in it).
fn disk(dir: &Path) -> Disk {
    let mut fx = mbr_disk(
        dir,
        "crypt-source-disk.img",
        56,
        77,
        &[
            bootable(ext("ext4", 24, TreeSpec::new(78, 2))),
            raw(16, "06", 79),
            raw(8, "da", 80),
        ],
    );
    let (fs_start, fs_size) = (fx.parts[1].start, fx.parts[1].size);
    let fat = dir.join("fat.img");
    sparse_file(&fat, fs_size);
    run_ok(
        tool("mkfs.vfat")
            .args(["-F", "16", "-n", LABEL, "-h", &(fs_start / 512).to_string()])
            .arg(&fat),
    );
    let text = dir.join("secret.txt");
    fs::write(&text, FILE_TEXT.repeat(3)).unwrap();
    sh("mcopy", &["-i", s(&fat), s(&text), "::/secret.txt"]);
    let bytes = fs::read(&fat).unwrap();
    write_at(&fx.path, fs_start, &bytes);
    fx.parts[1].fill = Fill::Extended; // checked here with fsck.vfat and mtype instead
    let mut rng = Rng::new(MARKER_SEED);
    let marker = rng.bytes(48);
    let rawp = &mut fx.parts[2];
    write_at(&fx.path, rawp.start + 3 * MIB + 12345, &marker);
    rawp.sha = Some(sha_range(&fx.path, rawp.start, rawp.size));
    Disk {
        fx,
        fat: (fs_start, fs_size),
        marker,
    }
}

/// Every byte of every file of `dir`, concatenated per file.
fn files_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The plaintexts that must not be in an encrypted image: file text, label, source path,
/// raw marker.
fn secrets(d: &Disk) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("file content", FILE_TEXT.as_bytes()[..40].to_vec()),
        ("filesystem label", LABEL.as_bytes().to_vec()),
        ("source disk path", b"crypt-source-disk.img".to_vec()),
        ("raw data", d.marker.clone()),
    ]
}

fn save(repo: &Path, image: &str, d: &Disk, extra: &[&str], pass: Option<&str>) -> Run {
    let mut a = vec![
        "savedisk",
        "--repo",
        s(repo),
        "--image",
        image,
        "--disk",
        s(&d.fx.path),
    ];
    a.extend_from_slice(extra);
    lb(&a, pass)
}

fn restore(repo: &Path, image: &str, target: &Path, pass: Option<&str>) -> Run {
    lb(
        &[
            "restoredisk",
            "--repo",
            s(repo),
            "--image",
            image,
            "--disk",
            s(target),
            "--yes",
        ],
        pass,
    )
}

fn check(repo: &Path, image: &str, extra: &[&str], pass: Option<&str>) -> Run {
    let mut a = vec!["check", "--repo", s(repo), "--image", image];
    a.extend_from_slice(extra);
    lb(&a, pass)
}

/// The FAT partition of `disk` is clean for fsck.vfat and holds FILE_TEXT ×3.
fn verify_fat(disk: &Path, at: (u64, u64), scratch: &Path) {
    let img = scratch.join("fat-check.img");
    extract(disk, at.0, at.1, &img);
    let out = tool("fsck.vfat").args(["-n"]).arg(&img).output().unwrap();
    assert!(
        out.status.success(),
        "fsck.vfat -n on the restored FAT: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = sh("mtype", &["-i", s(&img), "::/secret.txt"]);
    assert_eq!(text, FILE_TEXT.repeat(3), "the restored FAT file differs");
    fs::remove_file(img).unwrap();
}

fn digest_of(info: &Run) -> String {
    let d = info
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest    "))
        .unwrap_or_else(|| panic!("info prints no digest:\n{}", info.stdout))
        .trim()
        .to_string();
    assert_eq!(d.len(), 64, "digest {d:?}");
    d
}

#[test]
fn encrypted_image_round_trip_hides_everything() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("crypt");
    let d = disk(t.path());
    let repo = t.path().join("repo");
    fs::create_dir(&repo).unwrap();

    // Control: an unencrypted image holds every one of these plaintexts, so the grep below
    // is able to find them.
    save(&repo, "plain", &d, &[], None).ok();
    let plain = files_of(&repo.join("plain"));
    for (what, needle) in secrets(&d) {
        assert!(
            plain.iter().any(|(_, b)| contains(b, &needle)),
            "control: the unencrypted image does not hold the {what}; the grep proves nothing"
        );
    }

    save(&repo, "sealed", &d, &["--encrypt"], Some(PASS)).ok();
    for (path, bytes) in files_of(&repo.join("sealed")) {
        for (what, needle) in secrets(&d) {
            assert!(
                !contains(&bytes, &needle),
                "{} holds the {what} in clear",
                path.display()
            );
        }
    }
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join("sealed/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["disks"],
        serde_json::json!([]),
        "manifest.json lists disks"
    );
    assert_eq!(m["host"], "", "manifest.json names the host");
    assert!(m["sealed"].is_string());

    // list works without the passphrase; info needs it.
    let listed = list_json(&repo);
    assert!(listed
        .iter()
        .any(|e| e["image"] == "sealed" && e["complete"] == true));
    lb(&["info", "--repo", s(&repo), "--image", "sealed"], None)
        .code(3)
        .says(&["encrypted", "passphrase"]);
    let info = lb(
        &["info", "--repo", s(&repo), "--image", "sealed"],
        Some(PASS),
    )
    .ok();
    let digest = digest_of(&info);
    assert!(
        info.stdout.contains("crypt-source-disk.img"),
        "{}",
        info.stdout
    );
    let j = lb(
        &["info", "--repo", s(&repo), "--image", "sealed", "--json"],
        Some(PASS),
    )
    .ok();
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["digest"], digest.as_str());

    // The same data gives the same digest, encrypted or not.
    let plain_digest = digest_of(&lb(&["info", "--repo", s(&repo), "--image", "plain"], None).ok());
    assert_eq!(plain_digest, digest);

    check(&repo, "sealed", &["--digest", &digest], Some(PASS))
        .ok()
        .says(&[&digest, "expected"]);
    let mut wrong = digest.clone().into_bytes();
    wrong[10] = if wrong[10] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    check(&repo, "sealed", &["--digest", &wrong], Some(PASS))
        .code(4)
        .says(&["not the image that was saved"]);
    check(&repo, "plain", &["--digest", &wrong], None).code(4);
    check(&repo, "plain", &["--digest", &digest], None).ok();

    // Wrong passphrase: exit 3, the target untouched (en and ja).
    let target = t.path().join("target.img");
    garbage_file(&target, d.fx.size, 5);
    let before = sha_all(&target);
    restore(&repo, "sealed", &target, Some("not it"))
        .code(3)
        .says(&["wrong passphrase", "nothing was written"]);
    let mut ja = vec!["--lang", "ja"];
    ja.extend_from_slice(&[
        "restoredisk",
        "--repo",
        s(&repo),
        "--image",
        "sealed",
        "--disk",
        s(&target),
        "--yes",
    ]);
    lb(&ja, Some("not it"))
        .code(3)
        .says(&["パスフレーズが違います"]);
    check(&repo, "sealed", &[], Some("not it")).code(3);
    assert_eq!(
        sha_all(&target),
        before,
        "a wrong passphrase wrote to the target"
    );

    // A passphrase file others may read is refused; a private one works.
    let key = t.path().join("lb.key");
    fs::write(&key, format!("{PASS}\n")).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    check(&repo, "sealed", &["--passphrase-file", s(&key)], None)
        .code(3)
        .says(&["0644", "chmod 600"]);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    check(&repo, "sealed", &["--passphrase-file", s(&key)], None).ok();

    // check reads the volumes once: the sealed bytes that the decryption reads in order also
    // give the volume files' CRC32s (they used to be read a second time for them).
    for image in ["sealed", "plain"] {
        let volumes: u64 = files_of(&repo.join(image))
            .iter()
            .filter(|(p, _)| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("data.lbi")
            })
            .map(|(_, b)| b.len() as u64)
            .sum();
        let read = bytes_read_by(&["check", "--repo", s(&repo), "--image", image], PASS);
        assert!(
            read >= volumes && read < volumes * 3 / 2,
            "check of {image} read {read} bytes for {volumes} bytes of volumes"
        );
    }

    // The restore onto garbage.
    restore(&repo, "sealed", &target, Some(PASS)).ok();
    let scratch = t.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    verify_restored(&d.fx, &target, &scratch);
    verify_fat(&target, d.fat, &scratch);

    // extract (the random-access reader `lifeboat mount` uses) reads the right bytes.
    let out = t.path().join("disk0.img");
    lb(
        &[
            "extract",
            "--repo",
            s(&repo),
            "--image",
            "sealed",
            "--out",
            s(&out),
        ],
        Some(PASS),
    )
    .ok();
    let rawp = &d.fx.parts[2];
    assert_eq!(
        sha_range(&out, rawp.start, rawp.size),
        rawp.sha.clone().unwrap(),
        "extract of the encrypted image read other bytes"
    );
    verify_fat(&out, d.fat, &scratch);
}

/// Bytes that `lifeboat ARGS` (passphrase `pass`) read through read(2)/pread(2) (`rchar`: a
/// shell runs it and reports its own counters, which take in those of the children it
/// waited for).
fn bytes_read_by(args: &[&str], pass: &str) -> u64 {
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" >/dev/null 2>&1 || exit 99; cat /proc/$$/io"#)
        .arg(bin())
        .args(args)
        .env("LIFEBOAT_PASSPHRASE", pass)
        .stdin(Stdio::null())
        .output()
        .expect("spawn sh");
    assert!(out.status.success(), "lifeboat {args:?} failed");
    let io = String::from_utf8_lossy(&out.stdout);
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rchar in {io}"))
}

/// Saves `d` encrypted as `image`; returns its data.lbi.000.
fn sealed(repo: &Path, image: &str, d: &Disk) -> PathBuf {
    save(repo, image, d, &["--encrypt"], Some(PASS)).ok();
    repo.join(image).join("data.lbi.000")
}

/// check exits 4 and restore refuses (exit 4) with the target unchanged.
fn refused_everywhere(repo: &Path, image: &str, target: &Path, what: &str, chunk: bool) {
    let r = check(repo, image, &[], Some(PASS)).code(4);
    if chunk {
        assert!(
            r.all().contains("chunk "),
            "{what}: check does not name the chunk:\n{}",
            r.all()
        );
    }
    let before = sha_all(target);
    restore(repo, image, target, Some(PASS)).code(4);
    assert_eq!(sha_all(target), before, "{what}: the restore wrote");
}

#[test]
fn tampering_with_an_encrypted_image_is_found_before_writing() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("crypt-tamper");
    let d = disk(t.path());
    let repo = t.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let target = t.path().join("target.img");
    garbage_file(&target, d.fx.size, 6);

    // A flipped byte in a chunk's segment.
    let v = sealed(&repo, "flip", &d);
    let len = fs::metadata(&v).unwrap().len();
    assert!(len > 8 * FULL as u64);
    let b = read_range(&v, len / 2, 1);
    write_at(&v, len / 2, &[b[0] ^ 0x40]);
    refused_everywhere(&repo, "flip", &target, "flipped chunk byte", true);

    // A flipped byte near the end: the index, the manifest record, the tail.
    let v = sealed(&repo, "flip-end", &d);
    let len = fs::metadata(&v).unwrap().len();
    let b = read_range(&v, len - 40, 1);
    write_at(&v, len - 40, &[b[0] ^ 1]);
    refused_everywhere(&repo, "flip-end", &target, "flipped index byte", false);

    // The sealed manifest in manifest.json.
    sealed(&repo, "mani", &d);
    let mp = repo.join("mani/manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&mp).unwrap()).unwrap();
    let mut hex = m["sealed"].as_str().unwrap().to_string().into_bytes();
    hex[20] = if hex[20] == b'a' { b'b' } else { b'a' };
    m["sealed"] = serde_json::Value::String(String::from_utf8(hex).unwrap());
    fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    refused_everywhere(&repo, "mani", &target, "tampered manifest", false);

    // Two segments swapped.
    let v = sealed(&repo, "swap", &d);
    let a = read_range(&v, 128 + 3 * FULL as u64, FULL as u64);
    let b = read_range(&v, 128 + 4 * FULL as u64, FULL as u64);
    assert_ne!(a, b);
    write_at(&v, 128 + 3 * FULL as u64, &b);
    write_at(&v, 128 + 4 * FULL as u64, &a);
    refused_everywhere(&repo, "swap", &target, "swapped segments", true);

    // A segment of another image with the same passphrase and the same data.
    let v = sealed(&repo, "mixed", &d);
    let other = sealed(&repo, "donor", &d);
    let seg = read_range(&other, 128 + 5 * FULL as u64, FULL as u64);
    write_at(&v, 128 + 5 * FULL as u64, &seg);
    refused_everywhere(&repo, "mixed", &target, "foreign segment", true);

    // The donor itself is fine.
    check(&repo, "donor", &[], Some(PASS)).ok();
}

#[test]
fn encrypted_stream_restores_and_refuses_a_wrong_passphrase() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("crypt-stream");
    let d = disk(t.path());
    let stream = t.path().join("image.stream");
    let out = fs::File::create(&stream).unwrap();
    let st = Command::new(bin())
        .args([
            "savedisk",
            "--repo",
            "-",
            "--image",
            "s",
            "--encrypt",
            "--disk",
        ])
        .arg(&d.fx.path)
        .env("LIFEBOAT_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = fs::read(&stream).unwrap();
    for (what, needle) in secrets(&d) {
        assert!(!contains(&bytes, &needle), "the stream holds the {what}");
    }
    let target = t.path().join("target.img");
    garbage_file(&target, d.fx.size, 7);
    let run = |pass: &str| {
        Command::new(bin())
            .args(["restoredisk", "--repo", "-", "--yes", "--disk"])
            .arg(&target)
            .env("LIFEBOAT_PASSPHRASE", pass)
            .stdin(fs::File::open(&stream).unwrap())
            .output()
            .unwrap()
    };
    let before = sha_all(&target);
    let o = run("wrong");
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(sha_all(&target), before);
    let o = run(PASS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let scratch = t.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    verify_restored(&d.fx, &target, &scratch);
    verify_fat(&target, d.fat, &scratch);
}
