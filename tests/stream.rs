//! Stream mode (`--repo -`): savedisk/saveparts write one image stream to standard output,
//! restoredisk/restoreparts read it from standard input. Fixtures are made by the real tools
//! (sfdisk, sgdisk, mke2fs -d); restores go onto targets full of random garbage and are
//! verified with e2fsck, every file's SHA-256 and byte comparisons of every boot area. The
//! stream also travels through `udp-sender`/`udp-receiver` (udpcast) on the loopback.
//!
//! Tests that need a missing tool or root skip loudly, and fail when CI=true.

mod common;

use common::*;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MBR_TOOLS: &[&str] = &["mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk"];

/// `lifeboat ARGS` with standard input, output and error as given.
fn spawn(args: &[&str], stdin: Stdio, stdout: Stdio) -> Child {
    Command::new(bin())
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lifeboat")
}

/// Waits for a child at most `secs` seconds (killing it then); returns its exit code and
/// standard error.
fn finish(mut c: Child, secs: u64, what: &str) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut err = String::new();
    let mut stderr = c.stderr.take();
    // Read stderr on a thread so that a chatty child never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            err.push_str(&reader.join().unwrap());
            return (st.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn with_disks<'a>(mut a: Vec<&'a str>, disks: &'a [&'a Path]) -> Vec<&'a str> {
    for d in disks {
        a.push("--disk");
        a.push(s(d));
    }
    a
}

/// `lifeboat SAVE… --repo - | lifeboat RESTORE… --repo - --yes` through a pipe; returns
/// both exit codes and standard errors.
fn pipe(save: &[&str], restore: &[&str]) -> ((i32, String), (i32, String)) {
    let mut saver = spawn(save, Stdio::null(), Stdio::piped());
    let out = saver.stdout.take().unwrap();
    let restorer = spawn(restore, Stdio::from(out), Stdio::piped());
    let r = finish(restorer, 300, "restore from the stream");
    let s = finish(saver, 300, "save to the stream");
    (s, r)
}

/// Saves into a file through standard output.
fn save_to_file(args: &[&str], file: &Path) -> (i32, String) {
    let c = spawn(
        args,
        Stdio::null(),
        Stdio::from(File::create(file).unwrap()),
    );
    finish(c, 300, "save to a file")
}

/// Restores from a file given as standard input.
fn restore_from_file(args: &[&str], file: &Path) -> (i32, String) {
    let c = spawn(args, Stdio::from(File::open(file).unwrap()), Stdio::piped());
    finish(c, 300, "restore from a file")
}

#[track_caller]
fn ok(r: &(i32, String), what: &str) {
    assert_eq!(r.0, 0, "{what} failed:\n{}", r.1);
}

fn mbr_fixture(d: &Path, name: &str, seed: u64) -> Fixture {
    mbr_disk(
        d,
        name,
        96,
        seed,
        &[
            bootable(ext("ext4", 32, TreeSpec::new(seed * 10 + 1, 4))),
            extended(),
            ext("ext3", 24, TreeSpec::new(seed * 10 + 2, 2)),
            raw(8, "da", seed * 10 + 3),
        ],
    )
}

#[test]
fn savedisk_through_a_pipe_restores_identically() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("stream-pipe");
    let d = t.path();
    let fx = mbr_fixture(d, "src.img", 31);
    let target = d.join("dst.img");
    garbage_file(&target, fx.size, 3101);
    let src = [fx.path.as_path()];
    let save = with_disks(vec!["savedisk", "--repo", "-", "--image", "piped"], &src);
    let tgt = [target.as_path()];
    let restore = with_disks(vec!["restoredisk", "--repo", "-", "--yes"], &tgt);
    let (s, r) = pipe(&save, &restore);
    ok(&s, "savedisk --repo -");
    ok(&r, "restoredisk --repo -");
    assert!(
        s.1.contains("saved image piped to standard output"),
        "{}",
        s.1
    );
    verify_restored(&fx, &target, d);
}

#[test]
fn two_disks_mbr_and_gpt_stream_with_a_disk_list() {
    if !need(&[
        "mke2fs", "e2fsck", "debugfs", "dumpe2fs", "sfdisk", "sgdisk",
    ]) {
        return;
    }
    let t = tempdir("stream-two");
    let d = t.path();
    let a = mbr_fixture(d, "a.img", 32);
    let b = gpt_disk(
        d,
        "b.img",
        64,
        512,
        33,
        &[ext("ext4", 24, TreeSpec::new(331, 3)), raw(8, "8300", 332)],
    );
    let stream = d.join("two.lbs");
    let srcs = [a.path.as_path(), b.path.as_path()];
    let r = save_to_file(
        &with_disks(vec!["savedisk", "--repo", "-", "--image", "two"], &srcs),
        &stream,
    );
    ok(&r, "savedisk of two disks --repo -");
    // The disk list is the first record (format 1.1 on), so both targets are checked before
    // the first write.
    let head = read_range(&stream, 0, 68);
    assert_eq!(&head[..8], b"LIFEBOAT");
    assert_eq!(u16::from_le_bytes([head[8], head[9]]), 3, "major version");
    assert_eq!(&head[64..68], b"DLST");

    // A second target too small for its partitions: refused before anything is written, also on the first.
    let ta = d.join("ta.img");
    let tb = d.join("tb.img");
    garbage_file(&ta, a.size, 3201);
    garbage_file(&tb, b.size / 4, 3202);
    let before = (sha_all(&ta), sha_all(&tb));
    let tgts = [ta.as_path(), tb.as_path()];
    let r = restore_from_file(
        &with_disks(vec!["restoredisk", "--repo", "-", "--yes"], &tgts),
        &stream,
    );
    assert_eq!(r.0, 3, "too small second target must be refused:\n{}", r.1);
    assert!(r.1.contains("does not fit"), "{}", r.1);
    assert_eq!(
        (sha_all(&ta), sha_all(&tb)),
        before,
        "a refused restore wrote"
    );

    // One target for two disks: refused.
    let r = restore_from_file(
        &with_disks(vec!["restoredisk", "--repo", "-", "--yes"], &[ta.as_path()]),
        &stream,
    );
    assert_ne!(r.0, 0);
    assert!(r.1.contains("holds 2 disk(s)"), "{}", r.1);

    garbage_file(&tb, b.size, 3203);
    let r = restore_from_file(
        &with_disks(vec!["restoredisk", "--repo", "-", "--yes"], &tgts),
        &stream,
    );
    ok(&r, "restoredisk of two disks from a stream file");
    verify_restored(&a, &ta, d);
    verify_restored(&b, &tb, d);
    assert_sgdisk_clean(&tb);

    // A repository image of the same disks is the same kind of container: its volume, fed
    // to standard input, is a stream too.
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let mut args = vec!["savedisk", "--repo", s(&repo), "--image", "two"];
    args = with_disks(args, &srcs);
    lifeboat(&args).code(0);
    lifeboat(&["check", "--repo", s(&repo), "--image", "two"]).code(0);
    let volume = repo.join("two").join("data.lbi.000");
    assert_eq!(&read_range(&volume, 64, 4), b"DLST");
    garbage_file(&ta, a.size, 3204);
    garbage_file(&tb, b.size, 3205);
    let r = restore_from_file(
        &with_disks(vec!["restoredisk", "--repo", "-", "--yes"], &tgts),
        &volume,
    );
    ok(&r, "restoredisk --repo - < data.lbi.000");
    verify_restored(&a, &ta, d);
    verify_restored(&b, &tb, d);
}

#[test]
fn saveparts_and_restoreparts_through_a_pipe() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("stream-parts");
    let d = t.path();
    let specs = |seed: u64, filled: bool| {
        if filled {
            vec![
                ext("ext4", 24, TreeSpec::new(seed + 1, 2)),
                ext("ext4", 32, TreeSpec::new(seed + 2, 4)),
            ]
        } else {
            vec![raw(24, "83", seed + 1), raw(32, "83", seed + 2)]
        }
    };
    let fx = mbr_disk(d, "src.img", 64, 34, &specs(340, true));
    let dst = mbr_disk(d, "dst.img", 64, 35, &specs(350, false));
    let p2 = fx.part(2).clone();
    let tp1 = dst.part(1).clone();
    let before_p1 = sha_range(&dst.path, tp1.start, tp1.size);
    let save = [
        "saveparts",
        "--repo",
        "-",
        "--image",
        "p2",
        "--disk",
        s(&fx.path),
        "--part",
        "2",
    ];
    let restore = [
        "restoreparts",
        "--repo",
        "-",
        "--yes",
        "--disk",
        s(&dst.path),
        "--part",
        "2",
    ];
    // restoredisk of a partitions-only stream is refused before any write.
    let whole = [
        "restoredisk",
        "--repo",
        "-",
        "--yes",
        "--disk",
        s(&dst.path),
    ];
    let before = sha_all(&dst.path);
    let (sv, r) = pipe(&save, &whole);
    assert_ne!(r.0, 0, "restoredisk of a saveparts stream must be refused");
    assert!(r.1.contains("use restoreparts"), "{}", r.1);
    assert_eq!(sha_all(&dst.path), before);
    // The saver sees its reader go away: a clear error, not a success.
    assert_ne!(sv.0, 0, "save into a closed pipe must fail:\n{}", sv.1);
    assert!(sv.1.contains("writing the image stream failed"), "{}", sv.1);

    let (sv, r) = pipe(&save, &restore);
    ok(&sv, "saveparts --repo -");
    ok(&r, "restoreparts --repo -");
    verify_part(&dst.path, p2.start, &p2, d, "restoreparts from a stream");
    assert_eq!(
        sha_range(&dst.path, tp1.start, tp1.size),
        before_p1,
        "restoreparts touched partition 1"
    );
}

#[test]
fn damaged_and_truncated_streams_stop_with_a_clear_error() {
    if !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("stream-damaged");
    let d = t.path();
    let fx = mbr_fixture(d, "src.img", 36);
    let stream = d.join("one.lbs");
    ok(
        &save_to_file(
            &[
                "savedisk",
                "--repo",
                "-",
                "--image",
                "one",
                "--disk",
                s(&fx.path),
            ],
            &stream,
        ),
        "savedisk --repo - > file",
    );
    let len = fs::metadata(&stream).unwrap().len();
    let target = d.join("dst.img");
    let restore = ["restoredisk", "--repo", "-", "--yes", "--disk", s(&target)];

    // A flipped byte in the middle of the data.
    let flipped = d.join("flipped.lbs");
    fs::copy(&stream, &flipped).unwrap();
    let mid = len / 2;
    let b = read_range(&flipped, mid, 1)[0];
    write_at(&flipped, mid, &[b ^ 0x10]);
    garbage_file(&target, fx.size, 3601);
    let r = restore_from_file(&restore, &flipped);
    assert_eq!(r.0, 4, "a damaged stream must end with exit 4:\n{}", r.1);
    assert!(r.1.contains("stream byte"), "position named: {}", r.1);
    assert!(
        r.1.contains("INCONSISTENT") && r.1.contains("restore them again"),
        "the target's state is said: {}",
        r.1
    );

    // Cut off before its end (as when the sender dies).
    let cut = d.join("cut.lbs");
    fs::write(&cut, &fs::read(&stream).unwrap()[..(len * 2 / 3) as usize]).unwrap();
    garbage_file(&target, fx.size, 3602);
    let r = restore_from_file(&restore, &cut);
    assert_eq!(r.0, 4, "a truncated stream must end with exit 4:\n{}", r.1);
    assert!(r.1.contains("truncated"), "{}", r.1);
    assert!(r.1.contains("INCONSISTENT"), "{}", r.1);

    // Cut off inside the first record: nothing was written.
    let head = d.join("head.lbs");
    fs::write(&head, &fs::read(&stream).unwrap()[..100]).unwrap();
    garbage_file(&target, fx.size, 3603);
    let before = sha_all(&target);
    let r = restore_from_file(&restore, &head);
    assert_eq!(r.0, 4, "{}", r.1);
    assert!(r.1.contains("nothing was written"), "{}", r.1);
    assert_eq!(sha_all(&target), before);

    // A target too small for the partitions: refused before any write.
    let small = d.join("small.img");
    garbage_file(&small, fx.size / 4, 3604);
    let before = sha_all(&small);
    let r = restore_from_file(
        &["restoredisk", "--repo", "-", "--yes", "--disk", s(&small)],
        &stream,
    );
    assert_eq!(r.0, 3, "{}", r.1);
    assert!(r.1.contains("does not fit"), "{}", r.1);
    assert_eq!(sha_all(&small), before, "a refused restore wrote");

    // The intact stream restores.
    garbage_file(&target, fx.size, 3605);
    ok(
        &restore_from_file(&restore, &stream),
        "restore of the intact stream",
    );
    verify_restored(&fx, &target, d);
}

/// A pseudo-terminal pair (controller, terminal side).
#[allow(unsafe_code)] // openpty: the standard library has no pseudo-terminals
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two new file descriptors into the given integers; the other
    // arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

#[test]
fn a_terminal_on_the_stream_side_is_refused() {
    let t = tempdir("stream-tty");
    let d = t.path();
    let disk = d.join("d.img");
    garbage_file(&disk, 8 * MIB, 3701);
    let (_c, term) = pty();
    let c = spawn(
        &[
            "savedisk",
            "--repo",
            "-",
            "--image",
            "x",
            "--disk",
            s(&disk),
        ],
        Stdio::null(),
        Stdio::from(term),
    );
    let (code, err) = finish(c, 60, "savedisk onto a terminal");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("standard output, which is a terminal"),
        "{err}"
    );

    let (_c, term) = pty();
    let c = spawn(
        &["restoredisk", "--repo", "-", "--yes", "--disk", s(&disk)],
        Stdio::from(term),
        Stdio::piped(),
    );
    let (code, err) = finish(c, 60, "restoredisk from a terminal");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("standard input, which is a terminal"), "{err}");

    // --json would mix events into the stream.
    let c = spawn(
        &[
            "--json",
            "savedisk",
            "--repo",
            "-",
            "--image",
            "x",
            "--disk",
            s(&disk),
        ],
        Stdio::null(),
        Stdio::piped(),
    );
    let (code, err) = finish(c, 60, "savedisk --json --repo -");
    assert_eq!(code, 3, "{err}");
}

#[test]
fn multicast_through_udp_sender_and_udp_receiver() {
    if !need(&["udp-sender", "udp-receiver"]) || !need(MBR_TOOLS) {
        return;
    }
    let t = tempdir("stream-udp");
    let d = t.path();
    let fx = mbr_fixture(d, "src.img", 38);
    let target = d.join("dst.img");
    garbage_file(&target, fx.size, 3801);
    let port = (9000 + (std::process::id() % 500) * 2).to_string();
    // Receiver side: udp-receiver | lifeboat restoredisk --repo -
    let mut receiver = Command::new(find_tool("udp-receiver").unwrap())
        .args(["--interface", "lo", "--portbase", &port, "--nokbd"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let restorer = spawn(
        &["restoredisk", "--repo", "-", "--yes", "--disk", s(&target)],
        Stdio::from(receiver.stdout.take().unwrap()),
        Stdio::piped(),
    );
    // Sender side: lifeboat savedisk --repo - | udp-sender
    let mut saver = spawn(
        &[
            "savedisk",
            "--repo",
            "-",
            "--image",
            "multicast",
            "--disk",
            s(&fx.path),
        ],
        Stdio::null(),
        Stdio::piped(),
    );
    let mut sender = Command::new(find_tool("udp-sender").unwrap())
        .args([
            "--interface",
            "lo",
            "--portbase",
            &port,
            "--nokbd",
            "--min-receivers",
            "1",
            "--max-wait",
            "30",
        ])
        .stdin(Stdio::from(saver.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s_res = finish(saver, 300, "savedisk | udp-sender");
    let deadline = Instant::now() + Duration::from_secs(300);
    while sender.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "udp-sender did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r_res = finish(restorer, 300, "udp-receiver | restoredisk");
    let _ = receiver.kill();
    let _ = receiver.wait();
    ok(&s_res, "savedisk --repo - | udp-sender");
    ok(&r_res, "udp-receiver | restoredisk --repo -");
    verify_restored(&fx, &target, d);
}
