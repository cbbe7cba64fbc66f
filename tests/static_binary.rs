//! The static rescue binary: `cargo build --release --locked --target
//! x86_64-unknown-linux-musl --bin lifeboat` makes one statically linked file (no program
//! interpreter, at most 25 MiB stripped) that works in an empty chroot holding only itself
//! and /dev, /proc and /sys: `disks`, `savedisk` of a whole-disk image file, `check`,
//! `restoredisk --yes` onto a garbage-filled file (verified outside: boot areas byte for
//! byte, e2fsck, dumpe2fs, every file), and the console's first screen on a pseudo-terminal.
//!
//! The build takes minutes; it runs once per test run, with the default target directory
//! (cargo releases its build lock before it runs the tests), so that a binary already built
//! by the same command is only checked to be up to date.

mod common;

use common::*;
use rexpect::process::wait::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::spawn_with_options;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const MUSL: &str = "x86_64-unknown-linux-musl";
/// The issue's limit for the stripped static binary.
const MAX_STRIPPED: u64 = 25 * MIB;
/// Host tools the tests use (the chroot itself holds none).
const TOOLS: &[&str] = &[
    "root", "musl-gcc", "strip", "file", "unshare", "chroot", "mount", "sfdisk", "mke2fs",
    "e2fsck", "debugfs", "dumpe2fs",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when the Rust standard library for the musl target is installed.
fn musl_target_installed() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", MUSL])
        .output();
    let dir = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => return false,
    };
    fs::read_dir(&dir).is_ok_and(|mut d| {
        d.any(|e| {
            e.is_ok_and(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with("libstd-") && n.ends_with(".rlib")
            })
        })
    })
}

/// Builds the static binary (once per test run) and returns its path, or `None` when
/// something it needs is missing (skipped locally, a failure with `CI=true`).
fn static_binary() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !need(TOOLS) {
                return None;
            }
            if !musl_target_installed() {
                unavailable_in(
                    ci(),
                    &format!("the Rust target {MUSL} is not installed (rustup target add {MUSL})"),
                );
                return None;
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut c = Command::new(cargo);
            c.current_dir(workspace())
                .args(["build", "--release", "--locked", "--target", MUSL])
                .args(["--bin", "lifeboat"])
                .stdin(Stdio::null());
            eprintln!("building the static binary (several minutes unless up to date): {c:?}");
            run_ok(&mut c);
            Some(workspace().join(format!("target/{MUSL}/release/lifeboat")))
        })
        .as_deref()
}

/// The ELF program header types of `bin` (64-bit little-endian).
fn program_header_types(bin: &[u8]) -> Vec<u32> {
    assert!(
        bin.len() >= 64 && &bin[..4] == b"\x7fELF" && bin[4] == 2 && bin[5] == 1,
        "not a 64-bit little-endian ELF file"
    );
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([bin[o], bin[o + 1]]));
    let phoff = u64::from_le_bytes(bin[0x20..0x28].try_into().unwrap());
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| {
            let o = usize::try_from(phoff + i * entsize).unwrap();
            u32::from_le_bytes(bin[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn static_binary_has_no_interpreter_and_fits_the_size_limit() {
    let Some(bin) = static_binary() else { return };
    const PT_INTERP: u32 = 3;
    let types = program_header_types(&fs::read(bin).unwrap());
    assert!(!types.is_empty(), "no program headers");
    assert!(
        !types.contains(&PT_INTERP),
        "{} has a program interpreter (PT_INTERP): it is dynamically linked",
        bin.display()
    );
    let file = sh("file", &[bin]);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file(1) does not call it static: {file}"
    );
    let dir = tempdir("static-size");
    let stripped = dir.path().join("lifeboat");
    sh(
        "strip",
        &[bin.as_os_str(), "-o".as_ref(), stripped.as_os_str()],
    );
    let size = fs::metadata(&stripped).unwrap().len();
    eprintln!(
        "static binary: {:.1} MiB as built, {:.1} MiB stripped",
        fs::metadata(bin).unwrap().len() as f64 / MIB as f64,
        size as f64 / MIB as f64
    );
    assert!(
        size <= MAX_STRIPPED,
        "the stripped static binary is {size} bytes, over the limit of {MAX_STRIPPED}"
    );
}

/// An empty root directory holding only `/lifeboat`, `/dev`, `/proc`, `/sys` and `/work`.
///
/// Each command runs in a mount namespace of its own (`unshare --mount`, private
/// propagation) that bind-mounts /dev and mounts proc and sysfs into the root, then
/// `chroot`s: the mounts vanish with the command, whatever happens to it or to the test.
/// On drop the directory is removed, but only after checking that nothing is mounted in it
/// from this namespace (otherwise it is kept, and the mounts named).
struct Chroot {
    root: Option<tempfile::TempDir>,
}

impl Chroot {
    fn new(bin: &Path) -> Chroot {
        let root = tempfile::Builder::new()
            .prefix("lifeboat-static-chroot-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        for d in ["dev", "proc", "sys", "work"] {
            fs::create_dir(root.path().join(d)).unwrap();
        }
        fs::copy(bin, root.path().join("lifeboat")).unwrap();
        Chroot { root: Some(root) }
    }

    fn root(&self) -> &Path {
        self.root.as_ref().unwrap().path()
    }

    /// The host path of `p`, a path inside the chroot.
    fn host(&self, p: &str) -> PathBuf {
        self.root().join(p.trim_start_matches('/'))
    }

    /// `lifeboat ARGS` inside the chroot, with an empty environment but `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        const SCRIPT: &str = r#"set -e
r=$1 mount=$2 chroot=$3
shift 3
"$mount" --bind /dev "$r/dev"
"$mount" -t proc proc "$r/proc"
"$mount" -t sysfs sysfs "$r/sys"
exec "$chroot" "$r" /lifeboat "$@""#;
        // Not `tool()`: that sets standard input to /dev/null, which would override the
        // pseudo-terminal the console test gives the command.
        let mut c = Command::new(find_tool("unshare").expect("unshare"));
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .args([SCRIPT, "sh"])
            .arg(self.root())
            .arg(find_tool("mount").unwrap())
            .arg(find_tool("chroot").unwrap())
            .args(args);
        c
    }

    /// Runs `lifeboat ARGS` inside the chroot (stdin from /dev/null), expecting success.
    fn run_ok(&self, args: &[&str]) -> String {
        let mut c = self.command(args, &[("LANG", "C.UTF-8")]);
        c.stdin(Stdio::null());
        run_ok(&mut c)
    }

    /// Mount points at or below the root, as this process's namespace sees them.
    fn mounts_inside(&self) -> Vec<String> {
        let root = self.root().to_string_lossy().into_owned();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| *m == root || m.starts_with(&format!("{root}/")))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let mounted = self.mounts_inside();
        let root = self.root.take().unwrap();
        if mounted.is_empty() {
            drop(root);
        } else {
            let kept = root.keep();
            eprintln!(
                "warning: {} still has mounts {mounted:?}; the directory is kept",
                kept.display()
            );
        }
    }
}

/// The names of the disks `disks --json` prints, loop devices left out (other tests on the
/// machine attach and detach them at any time).
fn disk_names(json: &str) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("disks --json");
    v.as_array()
        .expect("disks --json prints an array")
        .iter()
        .map(|d| d["name"].as_str().expect("a disk name").to_string())
        .filter(|n| !n.starts_with("loop"))
        .collect()
}

#[test]
fn static_binary_saves_checks_and_restores_in_an_empty_chroot() {
    let Some(bin) = static_binary() else { return };
    let ch = Chroot::new(bin);
    let scratch = tempdir("static-scratch");

    // `disks`: the same disks as the normal build sees from the host.
    let inside = disk_names(&ch.run_ok(&["disks", "--json"]));
    let outside = disk_names(&lifeboat(&["disks", "--json"]).ok().stdout);
    assert_eq!(
        inside, outside,
        "disks in the chroot differ from the host's"
    );
    let text = ch.run_ok(&["disks"]);
    for n in &inside {
        assert!(
            text.contains(n.as_str()),
            "disks does not show {n}:\n{text}"
        );
    }

    // A whole-disk image made outside with sfdisk and mke2fs, saved, checked and restored
    // inside onto a garbage-filled file of the same size.
    let fx = mbr_disk(
        &ch.host("/work"),
        "src.img",
        40,
        21,
        &[
            ext("ext4", 16, TreeSpec::new(211, 2)),
            ext("ext2", 10, TreeSpec::new(212, 1)),
            raw(3, "da", 213),
        ],
    );
    let source_before = sha_all(&fx.path);
    fs::create_dir(ch.host("/work/repo")).unwrap();
    ch.run_ok(&[
        "savedisk",
        "--repo",
        "/work/repo",
        "--image",
        "rescue",
        "--disk",
        "/work/src.img",
    ]);
    assert_eq!(
        sha_all(&fx.path),
        source_before,
        "the save changed the source"
    );
    let check = ch.run_ok(&["check", "--repo", "/work/repo", "--image", "rescue"]);
    assert!(
        check.contains("rescue is intact"),
        "check printed:\n{check}"
    );
    let target = ch.host("/work/target.img");
    garbage_file(&target, fx.size, 214);
    ch.run_ok(&[
        "restoredisk",
        "--repo",
        "/work/repo",
        "--image",
        "rescue",
        "--disk",
        "/work/target.img",
        "--yes",
    ]);
    verify_restored(&fx, &target, scratch.path());
    assert!(
        ch.mounts_inside().is_empty(),
        "a mount leaked out of the chroot"
    );
}

#[test]
fn static_binary_shows_the_console_in_an_empty_chroot() {
    let Some(bin) = static_binary() else { return };
    let ch = Chroot::new(bin);
    let c = ch.command(
        &[],
        &[
            ("LANG", "en_US.UTF-8"),
            ("TERM", "xterm"),
            ("COLUMNS", "160"),
            ("LINES", "50"),
        ],
    );
    let mut p = spawn_with_options(
        c,
        Options::default()
            .timeout_ms(Some(60_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn the console on a pseudo-terminal");
    // The first screen: the language menu (its title is ASCII up to the slash), then the
    // first question in the chosen language; Ctrl-C there cancels cleanly.
    for what in ["Language / ", "English", "Where are the images kept?"] {
        if what.starts_with("Where") {
            p.send("\r").unwrap();
            p.flush().unwrap();
        }
        p.exp_string(what)
            .unwrap_or_else(|e| panic!("the console did not show {what:?}: {e}"));
    }
    p.send_control('c').unwrap();
    p.exp_string("Cancelled; nothing was written.")
        .expect("the cancellation message");
    match p.process_mut().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 130, "exit status after Ctrl-C"),
        other => panic!("the console ended with {other:?}"),
    }
}
