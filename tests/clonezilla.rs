//! `lifeboat list`, `info` and `check` of a Clonezilla image directory in a repository. The
//! directory is laid out as ocs-sr lays it out, with a partition image made by the real
//! `partclone.ext4 -c | zstd` and a raw one split by `split` (crates/clonezilla/tests/ocs_sr.rs
//! reads images made by ocs-sr itself). Check: exit 0 and the ok message in English and
//! Japanese on a clean image; exit 4 naming the file and the block on one flipped byte.

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn make(repo: &Path, img: &str) -> bool {
    if !need(&[
        "mke2fs",
        "partclone.ext4",
        "sfdisk",
        "zstd",
        "gzip",
        "split",
    ]) {
        return false;
    }
    let dir = repo.join(img);
    fs::create_dir_all(&dir).unwrap();
    let w = repo.parent().unwrap().join("work");
    fs::create_dir_all(w.join("tree")).unwrap();
    for i in 0..10 {
        fs::write(
            w.join("tree").join(format!("f{i}")),
            vec![i as u8 ^ 0x33; 30_000 * (i + 1)],
        )
        .unwrap();
    }
    let (d, wd) = (dir.display(), w.display());
    let script = format!(
        "set -e; cd {wd}; truncate -s 20M disk.img; printf 'label: dos\\nstart=2048, size=8M, type=83\\nsize=4M, type=83\\n' | sfdisk -q disk.img; \
         truncate -s 8M p1.fs; mke2fs -q -F -t ext4 -d tree p1.fs; head -c 4M /dev/urandom > p2.raw; \
         partclone.ext4 -q -c -s p1.fs -o - 2>/dev/null | zstd -q -c > {d}/sdz1.ext4-ptcl-img.zst; \
         gzip -c p2.raw | split -b 65536 - {d}/sdz2.dd-ptcl-img.gz.; \
         dd if=disk.img of={d}/sdz-mbr bs=512 count=1 status=none; \
         sfdisk -d disk.img | sed 's#{wd}/disk.img#/dev/sdz#' > {d}/sdz-pt.sf; \
         echo sdz > {d}/disk; echo 'sdz1 sdz2' > {d}/parts; echo clonezilla > {d}/clonezilla-img"
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn list_info_check_and_damage_of_a_clonezilla_image() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("partimag");
    fs::create_dir_all(&repo).unwrap();
    let name = "2026-12-01-10-img";
    if !make(&repo, name) {
        return;
    }
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
