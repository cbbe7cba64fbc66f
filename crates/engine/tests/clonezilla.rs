//! Clonezilla image directories in a repository: listing, info and check. The directory is
//! laid out as ocs-sr lays it out (`disk`, `parts`, `<disk>-pt.sf` from `sfdisk -d`,
//! `<disk>-mbr`, `<part>.ext4-ptcl-img.zst` made by the real `partclone.ext4 -c | zstd`, a raw
//! `<part>.dd-ptcl-img.gz` split into pieces); crates/clonezilla/tests/ocs_sr.rs reads images
//! made by ocs-sr itself. Checked: a clean image passes check, one flipped byte inside the
//! compressed partclone data fails it as damage (exit status 4's class) naming the file and
//! block, and a compression lifeboat cannot read is named.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use lifeboat_engine::{
    clonezilla_check, clonezilla_info, is_clonezilla, list_clonezilla, ErrorClass, Repository,
};
use lifeboat_testkit::tool;

fn sh(cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Clonezilla-style image `img` in `repo`: disk "sdz" with sdz1 (ext4, partclone, zstd) and
/// sdz2 (raw, gzip, split in 64 KiB pieces).
fn make(repo: &Path, img: &str) -> Option<()> {
    for (t, p) in [
        ("mke2fs", "e2fsprogs"),
        ("partclone.ext4", "partclone"),
        ("sfdisk", "fdisk"),
        ("zstd", "zstd"),
        ("gzip", "gzip"),
        ("split", "coreutils"),
    ] {
        tool(t, p)?;
    }
    let dir = repo.join(img);
    fs::create_dir_all(&dir).unwrap();
    let w = repo.join("work");
    fs::create_dir_all(w.join("tree")).unwrap();
    for i in 0..10 {
        fs::write(
            w.join("tree").join(format!("f{i}")),
            vec![i as u8 ^ 0x5a; 20_000 * (i + 1)],
        )
        .unwrap();
    }
    let d = dir.display();
    let wd = w.display();
    sh(&format!(
        "cd {wd} && truncate -s 20M disk.img && printf 'label: dos\\nstart=2048, size=8M, type=83\\nsize=4M, type=83\\n' | sfdisk -q disk.img \
         && truncate -s 8M p1.fs && mke2fs -q -F -t ext4 -d tree p1.fs \
         && head -c 4M /dev/urandom > p2.raw \
         && partclone.ext4 -q -c -s p1.fs -o - 2>/dev/null | zstd -q -c > {d}/sdz1.ext4-ptcl-img.zst \
         && gzip -c p2.raw | split -b 65536 - {d}/sdz2.dd-ptcl-img.gz. \
         && dd if=disk.img of={d}/sdz-mbr bs=512 count=1 status=none \
         && sfdisk -d disk.img | sed 's#{wd}/disk.img#/dev/sdz#' > {d}/sdz-pt.sf \
         && echo sdz > {d}/disk && echo 'sdz1 sdz2' > {d}/parts && echo clonezilla > {d}/clonezilla-img"
    ));
    Some(())
}

#[test]
fn list_info_and_check_of_a_clonezilla_image() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    fs::create_dir_all(&repo_dir).unwrap();
    if make(&repo_dir, "2026-12-01-10-img").is_none() {
        return;
    }
    let repo = Repository::open(repo_dir.to_str().unwrap()).unwrap();
    assert!(is_clonezilla(&repo, "2026-12-01-10-img"));
    assert!(!is_clonezilla(&repo, "work"));
    let l = list_clonezilla(&repo).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].parts, ["sdz1", "sdz2"]);
    assert!(l[0].error.is_none(), "{:?}", l[0].error);

    let info = clonezilla_info(&repo, "2026-12-01-10-img").unwrap();
    assert_eq!(info.disks[0].table, "dos");
    assert_eq!(info.disks[0].partitions.len(), 2);
    assert_eq!(info.parts[0].mode, "partclone");
    assert_eq!(info.parts[0].compression, "zstd");
    let pc = info.parts[0].partclone.as_ref().unwrap();
    assert!(pc.used_blocks > 0 && pc.used_blocks < pc.total_blocks);
    assert_eq!(info.parts[1].mode, "raw");
    assert_eq!(info.parts[1].compression, "gzip");
    assert!(info.parts[1].files.len() > 10, "{:?}", info.parts[1].files);

    let events = std::sync::Mutex::new(Vec::new());
    let r = clonezilla_check(
        &repo,
        "2026-12-01-10-img",
        &|e| events.lock().unwrap().push(e),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.parts, 2);
    assert_eq!(r.blocks, pc.used_blocks);
    assert_eq!(
        r.data_bytes,
        pc.used_blocks * u64::from(pc.block_size) + (4 << 20)
    );
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, lifeboat_engine::Event::Done { .. })));
}

#[test]
fn check_names_the_file_and_block_of_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    fs::create_dir_all(&repo_dir).unwrap();
    if make(&repo_dir, "img").is_none() {
        return;
    }
    let f = repo_dir.join("img/sdz1.ext4-ptcl-img.zst");
    // Flip one byte deep in the partclone data (not in the header or bitmap), recompressed
    // so that only partclone's own checksum can see it.
    let raw = zstd::decode_all(fs::File::open(&f).unwrap()).unwrap();
    let mut bad = raw.clone();
    let at = raw.len() - 5000;
    bad[at] ^= 0x20;
    fs::write(&f, zstd::encode_all(&bad[..], 3).unwrap()).unwrap();
    let repo = Repository::open(repo_dir.to_str().unwrap()).unwrap();
    let e = clonezilla_check(&repo, "img", &|_| {}, &AtomicBool::new(false)).unwrap_err();
    let text = lifeboat_engine::chain_text(&e);
    assert_eq!(e.class(), ErrorClass::Damaged, "{text}");
    assert!(
        text.contains("sdz1.ext4-ptcl-img.zst") && text.contains("block"),
        "{text}"
    );

    // A compression lifeboat cannot read (lzop) is named, with the file.
    fs::write(&f, b"\x89LZO\0\r\n\x1a\nrest").unwrap();
    let e = clonezilla_check(&repo, "img", &|_| {}, &AtomicBool::new(false)).unwrap_err();
    let text = lifeboat_engine::chain_text(&e);
    assert!(
        text.contains("sdz1.ext4-ptcl-img.zst") && text.contains("lzop"),
        "{text}"
    );

    // A missing piece of a split image is named.
    fs::write(&f, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();
    fs::remove_file(repo_dir.join("img/sdz2.dd-ptcl-img.gz.ab")).unwrap();
    let e = clonezilla_check(&repo, "img", &|_| {}, &AtomicBool::new(false)).unwrap_err();
    let text = lifeboat_engine::chain_text(&e);
    assert!(text.contains("sdz2.dd-ptcl-img.gz.ab"), "{text}");
    assert_eq!(e.class(), ErrorClass::Damaged, "{text}");
}
