//! `lifeboat mount`: an image shown as read-only files through FUSE, checked as an operator
//! would: the files have the saved sizes, `e2fsck -fn` reads a partition file clean, a
//! partition file loop-mounted read-only holds every file of the source, and both `umount`
//! and Ctrl-C end the mount with status 0 and nothing left mounted.
//!
//! Needs root, /dev/fuse, fusermount and loop devices; skips loudly without them, fails with
//! CI=true.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `lifeboat mount`: ended with SIGINT (then a lazy umount) if a test fails first.
struct Running {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Running {
    #[allow(unsafe_code)] // kill(2) with SIGINT
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            for _ in 0..100 {
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if mounted(&self.dir) {
            let _ = tool("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Starts `lifeboat --json mount` of image `img` (plus `extra` arguments) and waits (at most
/// 30 s) for its `ready` event.
fn start_mount(repo: &Path, dir: &Path, extra: &[&str]) -> (Running, serde_json::Value) {
    let mut child = Command::new(bin())
        .args([
            "--json",
            "mount",
            "--repo",
            s(repo),
            "--image",
            "img",
            s(dir),
        ])
        .args(extra)
        .env_remove("LIFEBOAT_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let running = Running {
        child,
        dir: dir.to_path_buf(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no ready event within 30 s"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "ready" {
            return (running, v);
        }
    }
}

/// Waits (at most 30 s) for the mount process to end; returns its exit code.
fn wait_end(r: &mut Running) -> Option<i32> {
    let child = &mut r.child;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(
            Instant::now() < deadline,
            "the mount did not end within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mounted(dir: &Path) -> bool {
    let dir = fs::canonicalize(dir).unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
}

#[test]
#[allow(unsafe_code)] // kill(2) with SIGINT: std::process::Child::kill sends only SIGKILL
fn an_image_is_browsed_through_fuse_and_both_umount_and_ctrl_c_end_it() {
    if !need(&[
        "fusermount",
        "mke2fs",
        "e2fsck",
        "debugfs",
        "sfdisk",
        "mount",
    ]) || !require_loop()
    {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        assert!(!ci(), "/dev/fuse is missing");
        eprintln!("SKIPPED: /dev/fuse is missing");
        return;
    }
    let dir = tempdir("mount");
    let d = dir.path();
    let disk = d.join("src.img");
    sparse_file(&disk, 96 * MIB);
    fill_random(&disk, 0, 96 * MIB, 5);
    sfdisk(
        &disk,
        "label: dos\nstart=2048, size=65536, type=83\nstart=67584, type=83\n",
    );
    let t = read_table(&disk);
    let trees: Vec<_> = (0..2)
        .map(|i| {
            let tree = d.join(format!("tree{i}"));
            populate_tree(&tree, TreeSpec::new(60 + i, 6));
            let p = &t.parts[i as usize];
            mkfs_ext(&disk, p.start, p.size, "ext4", None, Some(&tree), "m");
            tree_listing(&tree)
        })
        .collect();
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    savedisk(&repo, "img", &[&disk], &[]).ok();

    let mnt = d.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let (mut child, ready) = start_mount(&repo, &mnt, &[]);
    let names: Vec<&str> = ready["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["disk0", "disk0p1", "disk0p2"], "{ready:#}");
    assert_eq!(fs::metadata(mnt.join("disk0")).unwrap().len(), 96 * MIB);
    for (i, p) in t.parts.iter().enumerate() {
        let f = mnt.join(format!("disk0p{}", i + 1));
        assert_eq!(fs::metadata(&f).unwrap().len(), p.size);
        assert!(
            fs::write(&f, b"x").is_err(),
            "a mounted image file is writable"
        );
    }
    // The MBR and the gap before the first partition as saved.
    assert_eq!(
        sha_range(&mnt.join("disk0"), 0, MIB),
        sha_range(&disk, 0, MIB)
    );
    assert_fsck_clean(&mnt.join("disk0p1"), "disk0p1 through the mount");
    {
        let lo = LoopDev::attach(&mnt.join("disk0p2"), None);
        let m = Mount::new(&lo.dev, &d.join("p2"), "ro");
        let mut got = tree_listing(&m.dir);
        assert!(got.remove("lost+found").is_some(), "mke2fs's lost+found");
        assert_same_tree("disk0p2 through the mount", &trees[1], &got);
    }
    assert_same_tree(
        "disk0p1 through debugfs",
        &trees[0],
        &ext_listing(&mnt.join("disk0p1"), d, "disk0p1"),
    );
    // `umount DIR` ends it.
    run_ok(tool("umount").arg(&mnt));
    assert_eq!(wait_end(&mut child), Some(0), "after umount");
    assert!(!mounted(&mnt));

    // Ctrl-C ends it too, and leaves nothing mounted.
    let (mut child, _) = start_mount(&repo, &mnt, &[]);
    assert!(mounted(&mnt));
    assert_eq!(
        unsafe { libc::kill(child.child.id() as i32, libc::SIGINT) },
        0
    );
    assert_eq!(wait_end(&mut child), Some(0), "after Ctrl-C");
    assert!(!mounted(&mnt), "still mounted after Ctrl-C");

    // A directory that does not exist: a clear error, exit 1.
    lifeboat(&[
        "mount",
        "--repo",
        s(&repo),
        "--image",
        "img",
        s(&d.join("nowhere")),
    ])
    .code(1)
    .says(&["cannot mount the image"]);

    // A digest other than the image's: refused before anything is mounted (exit 4).
    let wrong = "0".repeat(64);
    lifeboat(&[
        "mount",
        "--repo",
        s(&repo),
        "--image",
        "img",
        s(&mnt),
        "--digest",
        &wrong,
    ])
    .code(4)
    .says(&["not the expected", &wrong]);
    assert!(!mounted(&mnt));

    // An encrypted image of the same disk mounts with its passphrase (every segment read is
    // checked against its tag on the way), and shows the same bytes.
    let key = d.join("lb.key");
    fs::write(&key, "mount-test-passphrase\n").unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let sealed = d.join("sealed");
    fs::create_dir(&sealed).unwrap();
    savedisk(
        &sealed,
        "img",
        &[&disk],
        &["--encrypt", "--passphrase-file", s(&key)],
    )
    .ok();
    let (mut child, ready) = start_mount(&sealed, &mnt, &["--passphrase-file", s(&key)]);
    assert_eq!(ready["files"].as_array().unwrap().len(), 3, "{ready:#}");
    assert_eq!(
        sha_range(&mnt.join("disk0"), 0, MIB),
        sha_range(&disk, 0, MIB),
        "the MBR and the gap through the mount of the encrypted image"
    );
    assert_fsck_clean(&mnt.join("disk0p1"), "disk0p1 of the encrypted image");
    {
        let lo = LoopDev::attach(&mnt.join("disk0p2"), None);
        let m = Mount::new(&lo.dev, &d.join("p2"), "ro");
        let mut got = tree_listing(&m.dir);
        assert!(got.remove("lost+found").is_some(), "mke2fs's lost+found");
        assert_same_tree("disk0p2 of the encrypted image", &trees[1], &got);
    }
    run_ok(tool("umount").arg(&mnt));
    assert_eq!(wait_end(&mut child), Some(0), "after umount");
    // Without the passphrase, or with a wrong one: exit 3, nothing mounted.
    let wrong_key = d.join("wrong.key");
    fs::write(&wrong_key, "not-the-passphrase\n").unwrap();
    fs::set_permissions(
        &wrong_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    for extra in [vec![], vec!["--passphrase-file", s(&wrong_key)]] {
        let mut a = vec!["mount", "--repo", s(&sealed), "--image", "img", s(&mnt)];
        a.extend(extra);
        lifeboat(&a).code(3).says(&["passphrase"]);
        assert!(!mounted(&mnt));
    }
}
