//! The local backend and the repository rules: volumes, manifest-last commit, listing,
//! deleting.

use lifeboat_container::{ImageKind, Manifest, Tool, Totals, MANIFEST_FORMAT, MANIFEST_VERSION};
use lifeboat_fs::ReadAt;
use lifeboat_repo::{
    ImageName, ImageStatus, Lease, RepoError, Repository, LEASE_FILE, MANIFEST_FILE,
};
use std::io::{Read, Write};

fn manifest(name: &str) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        image: name.into(),
        kind: ImageKind::Disks,
        created: "2026-11-25T00:00:00Z".into(),
        created_unix: 0,
        tool: Tool {
            name: "lifeboat".into(),
            version: "test".into(),
        },
        host: "h".into(),
        image_id: "00".into(),
        chunk_size: 4096,
        compression: "zstd-3".into(),
        disks: Vec::new(),
        totals: Totals::default(),
        files: Vec::new(),
        digest: None,
        sealed: None,
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn split_volumes_commit_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("img").unwrap();
    let bytes = data(3 * (1 << 20) + 12345);
    let mut sink = repo.create_image(&name, Some(1 << 20)).unwrap();
    for piece in bytes.chunks(70_001) {
        sink.write_all(piece).unwrap();
    }
    // Before the commit the image is listed, but incomplete.
    let l = repo.list().unwrap();
    assert_eq!(l.len(), 1);
    assert!(matches!(&l[0].status, ImageStatus::Incomplete(r) if r.contains("manifest")));
    assert!(matches!(
        repo.open_image(&name),
        Err(RepoError::Incomplete { .. })
    ));
    let m = sink.commit(&manifest("img")).unwrap();
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "data.lbi.000",
            "data.lbi.001",
            "data.lbi.002",
            "data.lbi.003"
        ]
    );
    assert!(m.files[..3].iter().all(|f| f.size == 1 << 20));
    assert_eq!(m.files[3].size, 12345);
    assert!(repo.list().unwrap()[0].is_complete());

    let src = repo.open_image(&name).unwrap();
    assert_eq!(src.len(), bytes.len() as u64);
    let mut back = Vec::new();
    src.reader().read_to_end(&mut back).unwrap();
    assert_eq!(back, bytes);
    // Small reads through the reader's buffer and large ones straight into the caller's,
    // mixed, across volume ends: the same bytes.
    let mut r = src.reader_at(7);
    let mut back = bytes[..7].to_vec();
    for size in [1000usize, 300 << 10, 5, 2 << 20, 999_999, 64 << 10, 3 << 20]
        .iter()
        .cycle()
    {
        let mut b = vec![0u8; *size];
        let n = r.read(&mut b).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&b[..n]);
    }
    assert!(back == bytes, "mixed reads returned other bytes");
    let mut mid = vec![0u8; 100];
    src.read_exact_at(&mut mid, (1 << 20) - 50).unwrap();
    assert_eq!(&mid[..], &bytes[(1 << 20) - 50..(1 << 20) + 50]);
    assert_eq!(src.locate((2 << 20) + 5), ("data.lbi.002".to_string(), 5));
    src.verify_files().unwrap();

    // The volume CRCs from the reads of one pass in order (reads that overlap what was
    // already seen are fine)...
    src.tap_volume_crcs().unwrap();
    let mut r = src.reader();
    let mut head = vec![0u8; 3000];
    r.read_exact(&mut head).unwrap();
    src.read_exact_at(&mut head[..1000], 500).unwrap();
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    assert_eq!(src.tapped_volume_crcs(), Some(Ok(())));
    // ...and none when the reads skipped bytes or stopped early.
    src.tap_volume_crcs().unwrap();
    src.read_exact_at(&mut head, 0).unwrap();
    src.read_exact_at(&mut head, 5000).unwrap();
    std::io::copy(&mut src.reader_at(8000), &mut std::io::sink()).unwrap();
    assert_eq!(src.tapped_volume_crcs(), None);
    src.tap_volume_crcs().unwrap();
    src.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(src.tapped_volume_crcs(), None);
    // Without a tap, nothing.
    assert_eq!(src.tapped_volume_crcs(), None);
}

#[test]
fn damaged_truncated_or_missing_volumes_make_an_image_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("img").unwrap();
    let mut sink = repo.create_image(&name, Some(1 << 20)).unwrap();
    sink.write_all(&data(2 << 20)).unwrap();
    sink.commit(&manifest("img")).unwrap();
    let v1 = dir.path().join("img/data.lbi.001");

    // A flipped byte: still listed complete (sizes match), but the CRC check names the file.
    let mut b = std::fs::read(&v1).unwrap();
    b[1000] ^= 1;
    std::fs::write(&v1, &b).unwrap();
    let err = repo.open_image(&name).unwrap().verify_files().unwrap_err();
    assert!(err.contains("data.lbi.001"), "{err}");
    // The same from the CRC tap of one sequential read.
    let src = repo.open_image(&name).unwrap();
    src.tap_volume_crcs().unwrap();
    std::io::copy(&mut src.reader(), &mut std::io::sink()).unwrap();
    let err = src.tapped_volume_crcs().unwrap().unwrap_err();
    assert!(err.contains("data.lbi.001"), "{err}");

    // Truncated.
    std::fs::write(&v1, &b[..1000]).unwrap();
    let l = repo.list().unwrap();
    assert!(matches!(&l[0].status, ImageStatus::Incomplete(r) if r.contains("data.lbi.001")));
    // Missing.
    std::fs::remove_file(&v1).unwrap();
    let e = repo.open_image(&name).err().unwrap().to_string();
    assert!(e.contains("data.lbi.001 is missing"), "{e}");
}

#[test]
fn names_are_validated_and_existing_images_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("a").unwrap();
    drop(repo.create_image(&name, None).unwrap());
    assert!(matches!(
        repo.create_image(&name, None),
        Err(RepoError::Exists { .. })
    ));
    assert!(ImageName::new("../etc").is_err());
}

#[test]
fn listing_and_deleting_touch_only_lifeboat_images() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    // Other directories an operator keeps there.
    std::fs::create_dir(dir.path().join("lost+found")).unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    std::fs::write(dir.path().join("photos/cat.jpg"), b"meow").unwrap();
    // A complete image and an incomplete one.
    let good = ImageName::new("good").unwrap();
    let mut s = repo.create_image(&good, None).unwrap();
    s.write_all(b"x").unwrap();
    s.commit(&manifest("good")).unwrap();
    let bad = ImageName::new("bad").unwrap();
    repo.create_image(&bad, None)
        .unwrap()
        .write_all(b"y")
        .unwrap();

    let names: Vec<String> = repo.list().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["bad", "good"]);
    let done = repo.delete_incomplete().unwrap();
    assert_eq!(done.deleted, ["bad"]);
    assert!(done.busy.is_empty(), "{:?}", done.busy);
    assert!(dir.path().join("lost+found").is_dir());
    assert!(dir.path().join("photos/cat.jpg").is_file());
    assert!(dir.path().join("good").join(MANIFEST_FILE).is_file());
    assert!(!dir.path().join("bad").exists());

    // A stranger's file inside an image directory stops the deletion.
    std::fs::write(dir.path().join("good/notes.txt"), b"mine").unwrap();
    assert!(repo.delete(&good).is_err());
    assert!(dir.path().join("good/notes.txt").is_file());
    std::fs::remove_file(dir.path().join("good/notes.txt")).unwrap();
    repo.delete(&good).unwrap();
    assert!(!dir.path().join("good").exists());
    assert!(matches!(
        repo.delete(&good),
        Err(RepoError::NotFound { .. })
    ));
}

/// A directory that does not exist is refused naming it.
#[test]
fn a_missing_directory_is_refused_naming_it() {
    let e = Repository::open("/nonexistent/dir")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/dir"), "{e}");
}

/// A save holds a lease on its image: a second save to the name is refused, and neither
/// `delete` nor `delete --incomplete` removes the image while the save is alive; after the
/// commit the lease is gone.
#[test]
fn a_save_in_progress_is_neither_shared_nor_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("busy").unwrap();
    let mut sink = repo.create_image(&name, Some(1 << 20)).unwrap();
    sink.write_all(&data(1 << 20)).unwrap();
    assert!(matches!(
        repo.create_image(&name, None),
        Err(RepoError::Exists { .. })
    ));
    let l = repo.list().unwrap();
    let lease = l[0]
        .lease
        .as_ref()
        .expect("the listing shows the live lease");
    assert_eq!(lease.pid, std::process::id());
    let done = repo.delete_incomplete().unwrap();
    assert!(done.deleted.is_empty());
    assert_eq!(done.busy.len(), 1);
    assert!(matches!(repo.delete(&name), Err(RepoError::Leased { .. })));
    assert!(dir.path().join("busy/data.lbi.000").is_file());
    sink.write_all(&data(5000)).unwrap();
    sink.commit(&manifest("busy")).unwrap();
    assert!(!dir.path().join("busy").join(LEASE_FILE).exists());
    assert!(repo.list().unwrap()[0].is_complete());
}

/// A lease left by a save that died (its process is gone) keeps nothing: the leftovers are
/// deleted.
#[test]
fn a_dead_saves_lease_does_not_keep_its_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("dead").unwrap();
    let mut sink = repo.create_image(&name, None).unwrap();
    sink.write_all(b"partial").unwrap();
    // What kill -9 leaves: the lease of a process that no longer exists.
    let mut l = Lease::new_for_this_process();
    l.pid = u32::MAX;
    std::mem::forget(sink);
    std::fs::write(dir.path().join("dead").join(LEASE_FILE), l.to_bytes()).unwrap();
    assert!(repo.list().unwrap()[0].lease.is_none());
    assert_eq!(repo.delete_incomplete().unwrap().deleted, ["dead"]);
    assert!(!dir.path().join("dead").exists());
}

/// A volume deleted (or replaced) under a running save makes the commit fail: the image is
/// never listed as complete with a volume missing.
#[test]
fn files_changed_under_the_save_fail_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("gone").unwrap();
    let mut sink = repo.create_image(&name, Some(1 << 20)).unwrap();
    sink.write_all(&data(2 * (1 << 20) + 100)).unwrap();
    std::fs::remove_file(dir.path().join("gone/data.lbi.000")).unwrap();
    let e = sink.commit(&manifest("gone")).unwrap_err();
    assert!(
        matches!(&e, RepoError::Changed { what, .. } if what.contains("data.lbi.000")),
        "{e}"
    );
    assert!(!dir.path().join("gone").join(MANIFEST_FILE).exists());

    // Another save took the lease over (its token is not this save's).
    let name = ImageName::new("taken").unwrap();
    let mut sink = repo.create_image(&name, None).unwrap();
    sink.write_all(b"data").unwrap();
    let other = Lease::new_for_this_process();
    std::fs::write(dir.path().join("taken").join(LEASE_FILE), other.to_bytes()).unwrap();
    let e = sink.commit(&manifest("taken")).unwrap_err();
    assert!(
        matches!(&e, RepoError::Changed { what, .. } if what.contains("another save")),
        "{e}"
    );
    assert!(!dir.path().join("taken").join(MANIFEST_FILE).exists());
    // The failed save left the other save's lease alone.
    assert_eq!(
        std::fs::read(dir.path().join("taken").join(LEASE_FILE)).unwrap(),
        other.to_bytes()
    );
}

/// Images hold whole disks: directories 0700 and files 0600 whatever the umask allows.
#[test]
fn images_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path().to_str().unwrap()).unwrap();
    let name = ImageName::new("private").unwrap();
    let mut sink = repo.create_image(&name, Some(1 << 20)).unwrap();
    sink.write_all(&data((1 << 20) + 10)).unwrap();
    sink.commit(&manifest("private")).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("private"), 0o700);
    for f in [
        "data.lbi.000",
        "data.lbi.001",
        "manifest.json",
        ".lifeboat-image",
    ] {
        assert_eq!(mode(&format!("private/{f}")), 0o600, "{f}");
    }
}
