//! Shared helpers of the end-to-end tests: tool discovery (skip locally, fail in CI),
//! running the `lifeboat` binary, seeded random data, fixture disks made by the real tools
//! (sfdisk, sgdisk, mke2fs), loop-device and mount guards, and the verification of a
//! restored disk (byte-identical boot areas, e2fsck, every file's SHA-256).
#![allow(dead_code)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod net;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;

// ───────────────────────────── environment and tools ─────────────────────────────

/// True when running in CI (`CI=true`): a missing tool is then a failure, not a skip.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn unavailable(what: &str) -> bool {
    unavailable_in(ci(), what)
}

/// The skip-or-fail rule, with CI given (so that the rule itself can be tested).
pub fn unavailable_in(ci: bool, what: &str) -> bool {
    if ci {
        panic!("CI=true but {what}: this end-to-end test cannot run; install it on the CI machine");
    }
    eprintln!(
        "\n################################################################\n\
         ### SKIPPING THIS TEST: {what}\n\
         ### (with CI=true this is a failure)\n\
         ################################################################\n"
    );
    false
}

/// Absolute path of an external tool, searching `PATH` and the sbin directories (which a
/// non-login environment may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// True when `name` is installed; otherwise skips loudly (or panics when `CI=true`).
pub fn require_tool(name: &str) -> bool {
    find_tool(name).is_some() || unavailable(&format!("the tool `{name}` is not installed"))
}

/// True when running as root; otherwise skips loudly (or panics when `CI=true`).
#[allow(unsafe_code)] // a libc call the standard library does not offer
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0) || unavailable("this test needs root")
}

/// Root, `losetup` and the loop driver.
pub fn require_loop() -> bool {
    require_root()
        && require_tool("losetup")
        && require_tool("blockdev")
        && (Path::new("/dev/loop-control").exists()
            || unavailable("/dev/loop-control is missing (no loop device support)"))
}

/// Checks every requirement: tool names, plus the pseudo-names `root` and `loop`.
pub fn need(what: &[&str]) -> bool {
    what.iter().all(|w| match *w {
        "root" => require_root(),
        "loop" => require_loop(),
        tool => require_tool(tool),
    })
}

/// The e2fsprogs tools every filesystem fixture needs.
pub const EXT_TOOLS: &[&str] = &["mke2fs", "e2fsck", "debugfs", "dumpe2fs"];

/// A command for an external tool (resolved to an absolute path).
pub fn tool(name: &str) -> Command {
    let p = find_tool(name).unwrap_or_else(|| panic!("tool {name} not found"));
    let mut c = Command::new(p);
    c.stdin(Stdio::null());
    c
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "command {:?} {:?}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command and panics with its output unless it succeeds; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{}", describe(cmd, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a tool with arguments, expecting success; returns stdout.
pub fn sh<S: AsRef<OsStr>>(name: &str, args: &[S]) -> String {
    run_ok(tool(name).args(args))
}

/// `sync(2)`.
#[allow(unsafe_code)] // a libc call the standard library does not offer
pub fn sync() {
    // SAFETY: no preconditions.
    unsafe { libc::sync() };
}

// ───────────────────────────── the lifeboat binary ─────────────────────────────

/// The `lifeboat` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lifeboat")
}

/// A finished `lifeboat` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics (with the output) unless the exit code is `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "lifeboat {:?} exited {} instead of {code}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        if code != 0 {
            self.assert_error_not_repeated();
        }
        self
    }
    /// The error message (text or JSON `error` event) does not say the same clause twice:
    /// an operator reading it at 3 a.m. gets each fact once.
    #[track_caller]
    pub fn assert_error_not_repeated(&self) {
        let mut msgs: Vec<String> = self
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("lifeboat: error: "))
            .map(str::to_string)
            .collect();
        msgs.extend(
            self.stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v["event"] == "error")
                .filter_map(|v| v["message"].as_str().map(str::to_string)),
        );
        for m in msgs {
            let clauses: Vec<&str> = m
                .split(": ")
                .map(str::trim)
                .filter(|c| c.len() >= 16)
                .collect();
            for (i, c) in clauses.iter().enumerate() {
                assert!(
                    !clauses[i + 1..].contains(c),
                    "lifeboat {:?}: the error message repeats {c:?}:\n{m}",
                    self.args
                );
            }
        }
    }
    /// Panics unless the exit code is 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code(0)
    }
    /// stdout + stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// Panics unless stdout or stderr contains every phrase (case-insensitive).
    #[track_caller]
    pub fn says(self, phrases: &[&str]) -> Self {
        let all = self.all().to_lowercase();
        for p in phrases {
            assert!(
                all.contains(&p.to_lowercase()),
                "lifeboat {:?}: output lacks {p:?}\nstdout:\n{}\nstderr:\n{}",
                self.args,
                self.stdout,
                self.stderr
            );
        }
        self
    }
    /// Every stdout line parsed as JSON (panics on a line that is not).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!(
                        "lifeboat {:?}: stdout line is not JSON ({e}): {l:?}\nstderr:\n{}",
                        self.args, self.stderr
                    )
                })
            })
            .collect()
    }
}

/// Runs `lifeboat ARGS` with stdin from /dev/null.
pub fn lifeboat<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut c = Command::new(bin());
    c.args(args).stdin(Stdio::null());
    let out = c.output().expect("spawn lifeboat");
    Run {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `lifeboat savedisk` of `disks` into `repo` as `image`, with `extra` arguments.
pub fn savedisk(repo: &Path, image: &str, disks: &[&Path], extra: &[&str]) -> Run {
    let mut a: Vec<String> = vec![
        "savedisk".into(),
        "--repo".into(),
        s(repo).into(),
        "--image".into(),
        image.into(),
    ];
    for d in disks {
        a.push("--disk".into());
        a.push(s(d).into());
    }
    a.extend(extra.iter().map(|x| x.to_string()));
    lifeboat(&a)
}

/// `lifeboat restoredisk --yes` of `image` onto `targets`, with `extra` arguments.
pub fn restoredisk(repo: &Path, image: &str, targets: &[&Path], extra: &[&str]) -> Run {
    let mut a: Vec<String> = vec![
        "restoredisk".into(),
        "--repo".into(),
        s(repo).into(),
        "--image".into(),
        image.into(),
        "--yes".into(),
    ];
    for d in targets {
        a.push("--disk".into());
        a.push(s(d).into());
    }
    a.extend(extra.iter().map(|x| x.to_string()));
    lifeboat(&a)
}

/// Partition `n` of disk `disk` in a manifest (`info --json`).
pub fn manifest_partition(m: &Value, disk: usize, n: u32) -> &Value {
    m["disks"][disk]["table"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == n)
        .unwrap_or_else(|| panic!("manifest has no partition {n}: {m:#}"))
}

/// `p` as &str (temp paths are ASCII).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `lifeboat info --json`: the manifest.
pub fn info_json(repo: &Path, image: &str) -> serde_json::Value {
    let r = lifeboat(&["info", "--json", "--repo", s(repo), "--image", image]).ok();
    serde_json::from_str(r.stdout.trim()).expect("info --json prints one JSON object")
}

/// `lifeboat list --json`.
pub fn list_json(repo: &Path) -> Vec<serde_json::Value> {
    let r = lifeboat(&["list", "--json", "--repo", s(repo)]).ok();
    match serde_json::from_str(r.stdout.trim()).expect("list --json prints one JSON array") {
        serde_json::Value::Array(v) => v,
        other => panic!("list --json is not an array: {other}"),
    }
}

/// The STATUS column of `lifeboat list` (text) for `image`.
#[track_caller]
pub fn list_status(repo: &Path, image: &str) -> String {
    let r = lifeboat(&["list", "--repo", s(repo)]).ok();
    r.stdout
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(image)).then(|| w.next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("list does not show {image}:\n{}", r.stdout))
}

// ───────────────────────────── random data ─────────────────────────────

/// xoshiro256** seeded by splitmix64: reproducible random bytes.
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let v = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Writes `len` random bytes at `off` of `path` (an image file or a block device).
pub fn fill_random(path: &Path, off: u64, len: u64, seed: u64) {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for random fill");
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; MIB as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(MIB) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all_at(&buf[..n], off + done).expect("random fill");
        done += n as u64;
    }
    f.sync_all().ok();
}

/// Creates (or replaces) `path` as a file of `size` bytes of random garbage: a restore
/// target on which any block the restore forgets shows up.
pub fn garbage_file(path: &Path, size: u64, seed: u64) {
    let f = File::create(path).expect("create target");
    f.set_len(size).expect("size target");
    drop(f);
    fill_random(path, 0, size, seed ^ 0x6a5b_4c3d_2e1f);
}

/// Creates a sparse file of `size` bytes.
pub fn sparse_file(path: &Path, size: u64) {
    let f = File::create(path).expect("create");
    f.set_len(size).expect("set_len");
}

// ───────────────────────────── bytes and hashes ─────────────────────────────

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn read_range(path: &Path, off: u64, len: u64) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut v = vec![0u8; len as usize];
    f.read_exact_at(&mut v, off)
        .unwrap_or_else(|e| panic!("read {} at {off}+{len}: {e}", path.display()));
    v
}

pub fn write_at(path: &Path, off: u64, data: &[u8]) {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for write");
    f.write_all_at(data, off).expect("write");
    f.sync_all().ok();
}

/// SHA-256 of `len` bytes at `off` of a file or block device.
pub fn sha_range(path: &Path, off: u64, len: u64) -> String {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], off + done)
            .unwrap_or_else(|e| panic!("read {} at {}: {e}", path.display(), off + done));
        h.update(&buf[..n]);
        done += n as u64;
    }
    hex(&h.finalize())
}

/// Size of a file or block device.
pub fn dev_size(path: &Path) -> u64 {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).expect("seek end")
}

/// SHA-256 of a whole file or block device.
pub fn sha_all(path: &Path) -> String {
    sha_range(path, 0, dev_size(path))
}

pub fn sha_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Copies `len` bytes at `off` of `src` into a new file `dst`.
pub fn extract(src: &Path, off: u64, len: u64, dst: &Path) {
    let f = File::open(src).expect("open source");
    let mut out = File::create(dst).expect("create extract");
    let mut buf = vec![0u8; 4 * MIB as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], off + done).expect("read");
        out.write_all(&buf[..n]).expect("write");
        done += n as u64;
    }
}

/// Total size of the regular files in a directory.
pub fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

// ───────────────────────────── file trees ─────────────────────────────

/// What a populated tree holds.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    pub seed: u64,
    /// Size of the one large random file, MiB.
    pub big_mib: u64,
    /// Number of small files in one directory (enough to need an indexed directory).
    pub many: usize,
}

impl TreeSpec {
    pub fn new(seed: u64, big_mib: u64) -> TreeSpec {
        TreeSpec {
            seed,
            big_mib,
            many: 150,
        }
    }
}

/// Fills `dir` with a variety of files made from a seeded PRNG: small, large, empty,
/// block-boundary sizes, sparse-ish, deeply nested, many in one directory, odd names and
/// modes, fast and slow symlinks (one dangling), a hard link.
pub fn populate_tree(dir: &Path, spec: TreeSpec) {
    let mut rng = Rng::new(spec.seed);
    fs::create_dir_all(dir).unwrap();
    let w = |p: &Path, data: &[u8]| {
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, data).unwrap();
    };
    // One large random file.
    if spec.big_mib > 0 {
        let mut f = File::create(dir.join("big.bin")).unwrap();
        let mut buf = vec![0u8; MIB as usize];
        for _ in 0..spec.big_mib {
            rng.fill(&mut buf);
            f.write_all(&buf).unwrap();
        }
        // And a tail that is not a multiple of any block size.
        let tail = rng.bytes(12_345);
        f.write_all(&tail).unwrap();
    }
    // Small files of random sizes, random and text-like contents.
    for i in 0..40 {
        let n = rng.below(20_000) as usize;
        let data = if i % 3 == 0 {
            (0..n)
                .map(|_| b"abcdefghij \n"[rng.below(12) as usize])
                .collect()
        } else {
            rng.bytes(n)
        };
        w(&dir.join(format!("small/f{i:02}.dat")), &data);
    }
    // Sizes around block boundaries.
    for n in [1usize, 1023, 1024, 1025, 4095, 4096, 4097, 65_536, 65_537] {
        w(&dir.join(format!("edges/size-{n}")), &rng.bytes(n));
    }
    // Empty file and empty directory.
    w(&dir.join("empty"), b"");
    fs::create_dir_all(dir.join("empty-dir")).unwrap();
    // Sparse-ish: a 6 MiB file with a few random islands and holes between them.
    {
        let f = File::create(dir.join("sparse.bin")).unwrap();
        f.set_len(6 * MIB + 777).unwrap();
        for k in 0..5u64 {
            let len = 1 + rng.below(64 * KIB) as usize;
            let off = k * (6 * MIB / 5) + rng.below(100_000);
            f.write_all_at(&rng.bytes(len), off).unwrap();
        }
    }
    // Deep nesting.
    let mut deep = dir.join("nested");
    for level in 0..12 {
        deep = deep.join(format!("level-{level}"));
    }
    w(&deep.join("deep.txt"), b"at the bottom\n");
    w(&dir.join("nested/level-0/mid.bin"), &rng.bytes(30_000));
    // Many files in one directory (an indexed, multi-block directory).
    for i in 0..spec.many {
        let n = rng.below(300) as usize;
        w(
            &dir.join(format!("many/entry-with-a-longish-name-{i:05}")),
            &rng.bytes(n),
        );
    }
    // Odd names and modes.
    w(&dir.join("names/with space ü.txt"), b"unicode and spaces\n");
    w(&dir.join("names/-leading-dash"), b"dash\n");
    let secret = dir.join("names/secret");
    w(&secret, &rng.bytes(2000));
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let script = dir.join("names/run.sh");
    w(&script, b"#!/bin/sh\necho lifeboat\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // Symlinks: relative, to a directory, dangling absolute, and a slow one (target longer
    // than the 60 bytes that fit in the inode, so it lives in a data block).
    symlink("small/f01.dat", dir.join("link-rel")).unwrap();
    symlink("nested/level-0", dir.join("link-dir")).unwrap();
    symlink("/nonexistent/lifeboat/target", dir.join("link-dangling")).unwrap();
    let long: String = (0..30)
        .map(|i| format!("seg{}{}/", i, rng.below(10)))
        .collect::<String>()
        + "end";
    symlink(&long, dir.join("link-slow")).unwrap();
    // A hard link.
    fs::hard_link(dir.join("small/f02.dat"), dir.join("hardlink-to-f02")).unwrap();
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, len: u64, sha: String },
    Symlink { target: PathBuf },
}

/// Every entry under `root` by relative path, with file SHA-256s and symlink targets.
pub fn tree_listing(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            if ft.is_symlink() {
                out.insert(
                    rel,
                    Node::Symlink {
                        target: fs::read_link(&p).unwrap(),
                    },
                );
            } else if ft.is_dir() {
                out.insert(
                    rel,
                    Node::Dir {
                        mode: m.permissions().mode() & 0o7777,
                    },
                );
                walk(root, &p, out);
            } else {
                let mut h = Sha256::new();
                let mut f = File::open(&p).unwrap();
                let mut buf = vec![0u8; MIB as usize];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                out.insert(
                    rel,
                    Node::File {
                        mode: m.permissions().mode() & 0o7777,
                        len: m.len(),
                        sha: hex(&h.finalize()),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Panics with the differences unless the two listings are equal.
#[track_caller]
pub fn assert_same_tree(what: &str, want: &BTreeMap<String, Node>, got: &BTreeMap<String, Node>) {
    if want == got {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diffs.push(format!("missing: {k}")),
            Some(g) if g != v => diffs.push(format!("differs: {k}: want {v:?}, got {g:?}")),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("unexpected: {k}"));
    }
    panic!(
        "{what}: restored files differ from the source tree ({} difference(s)):\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ───────────────────────────── ext filesystems ─────────────────────────────

/// Makes an ext2/3/4 filesystem of `size` bytes at byte `offset` of `file`, populated from
/// `tree` (mke2fs -d), with `block_size` when given.
pub fn mkfs_ext(
    file: &Path,
    offset: u64,
    size: u64,
    fstype: &str,
    block_size: Option<u32>,
    tree: Option<&Path>,
    label: &str,
) {
    mkfs_ext_opts(file, offset, size, fstype, block_size, tree, label, &[]);
}

/// [`mkfs_ext`] with more mke2fs options.
#[allow(clippy::too_many_arguments)]
pub fn mkfs_ext_opts(
    file: &Path,
    offset: u64,
    size: u64,
    fstype: &str,
    block_size: Option<u32>,
    tree: Option<&Path>,
    label: &str,
    extra: &[&str],
) {
    let mut c = tool("mke2fs");
    c.args(["-q", "-F", "-t", fstype, "-L", label]);
    c.args(extra);
    if let Some(b) = block_size {
        c.args(["-b", &b.to_string()]);
    }
    if let Some(t) = tree {
        c.arg("-d").arg(t);
    }
    c.args([
        "-E",
        &format!("offset={offset},nodiscard,lazy_itable_init=0,lazy_journal_init=0"),
    ]);
    c.arg(file).arg(format!("{}k", size / KIB));
    run_ok(&mut c);
}

/// Block count × block size − free blocks × block size, from `dumpe2fs -h` of a
/// filesystem image file.
pub fn ext_used_bytes(fs_image: &Path) -> u64 {
    let out = sh("dumpe2fs", &[OsStr::new("-h"), fs_image.as_os_str()]);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim().parse::<u64>().unwrap())
            })
            .unwrap_or_else(|| panic!("dumpe2fs lacks {name}:\n{out}"))
    };
    (field("Block count:") - field("Free blocks:")) * field("Block size:")
}

/// `dumpe2fs` of a filesystem image (superblock, every group, free counts): two identical
/// filesystems give identical output.
pub fn dumpe2fs(fs_image: &Path) -> String {
    sh("dumpe2fs", &[fs_image.as_os_str()])
}

/// `e2fsck -fn`: panics unless the filesystem is clean.
#[track_caller]
pub fn assert_fsck_clean(fs_image: &Path, what: &str) {
    let mut c = tool("e2fsck");
    c.arg("-fn").arg(fs_image);
    let out = c.output().unwrap();
    assert!(
        out.status.code() == Some(0),
        "{what}: e2fsck -fn is not clean\n{}",
        describe(&c, &out)
    );
}

/// Extracts every file of an ext filesystem image with `debugfs rdump` and lists them
/// (the `lost+found` made by mke2fs is checked and left out).
pub fn ext_listing(fs_image: &Path, scratch: &Path, what: &str) -> BTreeMap<String, Node> {
    let out = scratch.join("rdump");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let mut c = tool("debugfs");
    c.arg("-R")
        .arg(format!("rdump / {}", out.display()))
        .arg(fs_image);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let bad: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    assert!(
        o.status.success() && bad.is_empty(),
        "{what}: debugfs rdump reported problems\n{}",
        describe(&c, &o)
    );
    let mut l = tree_listing(&out);
    assert!(
        matches!(l.remove("lost+found"), Some(Node::Dir { .. })),
        "{what}: no lost+found directory in the restored filesystem"
    );
    fs::remove_dir_all(&out).unwrap();
    l
}

// ───────────────────────────── partition tables ─────────────────────────────

/// Writes a partition table with `sfdisk` from `script` (its input format) onto a file.
pub fn sfdisk(path: &Path, script: &str) {
    let mut c = tool("sfdisk");
    c.args(["-q", "--no-reread", "--no-tell-kernel", "--wipe", "never"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "sfdisk failed on {script}\n{}",
        describe(&c, &o)
    );
}

/// One partition as sfdisk reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePart {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub type_: String,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub bootable: bool,
}

/// A partition table as `sfdisk --json` reports it (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub label: String,
    pub id: String,
    pub sector: u64,
    pub parts: Vec<TablePart>,
}

/// Reads a partition table with `sfdisk --json` (on a file or device).
pub fn read_table(dev: &Path) -> Table {
    let out = sh("sfdisk", &[OsStr::new("--json"), dev.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("sfdisk json");
    let t = &v["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    let parts = t["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let node = p["node"].as_str().unwrap();
                    let digits: String = node
                        .chars()
                        .rev()
                        .take_while(|c| c.is_ascii_digit())
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    TablePart {
                        number: digits.parse().unwrap(),
                        start: p["start"].as_u64().unwrap() * sector,
                        size: p["size"].as_u64().unwrap() * sector,
                        type_: p["type"].as_str().unwrap().to_string(),
                        uuid: p["uuid"].as_str().map(str::to_string),
                        name: p["name"].as_str().map(str::to_string),
                        bootable: p["bootable"].as_bool().unwrap_or(false),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Table {
        label: t["label"].as_str().unwrap().to_string(),
        id: t["id"].as_str().unwrap_or("").to_string(),
        sector,
        parts,
    }
}

/// `sgdisk -v`: panics unless it finds no problems.
#[track_caller]
pub fn assert_sgdisk_clean(dev: &Path) {
    let mut c = tool("sgdisk");
    c.arg("-v").arg(dev);
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("No problems found"),
        "sgdisk -v finds problems\n{}",
        describe(&c, &o)
    );
}

/// Walks the EBR chain of an MBR disk image: the byte offset of every EBR, in order.
pub fn ebr_offsets(disk: &Path, ss: u64) -> Vec<u64> {
    let mbr = read_range(disk, 0, 512);
    let le32 = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
    let ext = (0..4)
        .map(|i| &mbr[446 + 16 * i..462 + 16 * i])
        .find(|e| matches!(e[4], 0x05 | 0x0f | 0x85));
    let Some(ext) = ext else { return Vec::new() };
    let ext_start = le32(ext, 8);
    let mut out = Vec::new();
    let mut cur = ext_start;
    for _ in 0..64 {
        let off = cur * ss;
        let sec = read_range(disk, off, 512);
        assert_eq!(
            &sec[510..],
            &[0x55, 0xaa],
            "EBR at {off} lacks its signature"
        );
        out.push(off);
        let link = &sec[446 + 16..462 + 16];
        if link[4] == 0 || le32(link, 12) == 0 {
            break;
        }
        cur = ext_start + le32(link, 8);
    }
    out
}

// ───────────────────────────── fixture disks ─────────────────────────────

/// What goes into a partition.
#[derive(Debug, Clone)]
pub enum Fill {
    /// An ext filesystem (`ext2`/`ext3`/`ext4`) populated with a tree.
    Ext {
        fstype: &'static str,
        block_size: Option<u32>,
        tree: TreeSpec,
        /// More mke2fs options (e.g. `-O bigalloc`).
        extra: &'static [&'static str],
    },
    /// Random bytes over the whole partition (saved raw).
    Random { seed: u64 },
    /// The extended container of an MBR (its logical partitions follow in the spec list).
    Extended,
}

/// One partition of a fixture: size (None: the rest), MBR type / GPT type code, contents.
#[derive(Debug, Clone)]
pub struct PartSpec {
    pub size_mib: Option<u64>,
    pub type_code: &'static str,
    pub bootable: bool,
    pub fill: Fill,
}

pub fn ext(fstype: &'static str, size_mib: u64, tree: TreeSpec) -> PartSpec {
    PartSpec {
        size_mib: Some(size_mib),
        type_code: "83",
        bootable: false,
        fill: Fill::Ext {
            fstype,
            block_size: None,
            tree,
            extra: &[],
        },
    }
}

/// An ext filesystem made with more mke2fs options (features).
pub fn ext_opts(
    fstype: &'static str,
    size_mib: u64,
    extra: &'static [&'static str],
    tree: TreeSpec,
) -> PartSpec {
    let mut p = ext(fstype, size_mib, tree);
    if let Fill::Ext { extra: e, .. } = &mut p.fill {
        *e = extra;
    }
    p
}

/// An ext filesystem with a given block size.
pub fn ext_bs(fstype: &'static str, size_mib: u64, block_size: u32, tree: TreeSpec) -> PartSpec {
    let mut p = ext(fstype, size_mib, tree);
    if let Fill::Ext { block_size: b, .. } = &mut p.fill {
        *b = Some(block_size);
    }
    p
}

/// The same partition, marked bootable.
pub fn bootable(mut p: PartSpec) -> PartSpec {
    p.bootable = true;
    p
}

pub fn raw(size_mib: u64, type_code: &'static str, seed: u64) -> PartSpec {
    PartSpec {
        size_mib: Some(size_mib),
        type_code,
        bootable: false,
        fill: Fill::Random { seed },
    }
}

pub fn extended() -> PartSpec {
    PartSpec {
        size_mib: None,
        type_code: "5",
        bootable: false,
        fill: Fill::Extended,
    }
}

/// A byte range of the source disk outside every partition that a restore must reproduce
/// byte for byte.
#[derive(Debug, Clone)]
pub struct Area {
    pub off: u64,
    pub len: u64,
    pub what: String,
}

/// A partition of a fixture with what it holds.
#[derive(Debug, Clone)]
pub struct FixPart {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub fill: Fill,
    /// For ext: the source tree's listing; for random: the SHA-256 of the partition.
    pub tree: Option<BTreeMap<String, Node>>,
    pub sha: Option<String>,
    /// ext: dumpe2fs of the source filesystem; used bytes per dumpe2fs.
    pub dumpe2fs: Option<String>,
    pub used_bytes: u64,
}

/// A source disk image made by the real tools.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub path: PathBuf,
    pub size: u64,
    pub sector: u64,
    /// "mbr", "gpt" or "none".
    pub label: &'static str,
    pub table: Option<Table>,
    pub parts: Vec<FixPart>,
    /// Boot areas (boot code, boot gap, EBRs, GPT headers and arrays).
    pub areas: Vec<Area>,
}

impl Fixture {
    pub fn part(&self, n: u32) -> &FixPart {
        self.parts
            .iter()
            .find(|p| p.number == n)
            .unwrap_or_else(|| panic!("fixture has no partition {n}"))
    }
    /// Bytes the image must at least store: used bytes of ext partitions, raw partitions
    /// whole, boot areas.
    pub fn expected_stored(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match p.fill {
                Fill::Ext { .. } => p.used_bytes,
                Fill::Random { .. } => p.size,
                Fill::Extended => 0,
            })
            .sum::<u64>()
            + self.areas.iter().map(|a| a.len).sum::<u64>()
    }
    pub fn files(&self) -> usize {
        self.parts
            .iter()
            .filter_map(|p| p.tree.as_ref())
            .map(|t| t.len())
            .sum()
    }
}

fn describe_parts(parts: &mut [FixPart], file: &Path, scratch: &Path, trees: &Path) {
    for p in parts.iter_mut() {
        match &p.fill {
            Fill::Ext { tree, .. } => {
                let dir = trees.join(format!("t{}-{}", p.number, tree.seed));
                p.tree = Some(tree_listing(&dir));
                let img = scratch.join("describe-part.img");
                extract(file, p.start, p.size, &img);
                assert_fsck_clean(&img, "source fixture");
                p.dumpe2fs = Some(dumpe2fs(&img));
                p.used_bytes = ext_used_bytes(&img);
                // The fixture itself must round-trip through debugfs, or the check is void.
                let l = ext_listing(&img, scratch, "source fixture");
                assert_same_tree(
                    "source fixture (mke2fs -d vs rdump)",
                    p.tree.as_ref().unwrap(),
                    &l,
                );
                fs::remove_file(&img).unwrap();
            }
            Fill::Random { .. } => p.sha = Some(sha_range(file, p.start, p.size)),
            Fill::Extended => {}
        }
    }
}

/// The fixture partitions of a table made from `specs`, filled as the specs say.
fn make_parts(table: &Table, specs: &[PartSpec], file: &Path, trees: &Path) -> Vec<FixPart> {
    let mut parts: Vec<FixPart> = table
        .parts
        .iter()
        .zip(specs)
        .map(|(t, s)| FixPart {
            number: t.number,
            start: t.start,
            size: t.size,
            fill: s.fill.clone(),
            tree: None,
            sha: None,
            dumpe2fs: None,
            used_bytes: 0,
        })
        .collect();
    fill_parts(&mut parts, file, trees);
    parts
}

fn fill_parts(parts: &mut [FixPart], file: &Path, trees: &Path) {
    for p in parts.iter_mut() {
        match &p.fill {
            Fill::Ext {
                fstype,
                block_size,
                tree,
                extra,
            } => {
                let dir = trees.join(format!("t{}-{}", p.number, tree.seed));
                populate_tree(&dir, *tree);
                mkfs_ext_opts(
                    file,
                    p.start,
                    p.size,
                    fstype,
                    *block_size,
                    Some(&dir),
                    &format!("part{}", p.number),
                    extra,
                );
            }
            Fill::Random { seed } => fill_random(file, p.start, p.size, *seed),
            Fill::Extended => {}
        }
    }
}

/// An MBR disk image of `size_mib` made with sfdisk: `specs` in order (primaries, then an
/// extended, then its logicals), random boot code (bytes 0..440), a random boot gap up to
/// the first partition, and random bytes in each EBR's boot area and in the gap after it.
pub fn mbr_disk(dir: &Path, name: &str, size_mib: u64, seed: u64, specs: &[PartSpec]) -> Fixture {
    let path = dir.join(name);
    sparse_file(&path, size_mib * MIB);
    let mut script = format!("label: dos\nlabel-id: 0x{:08x}\n", (seed as u32) | 1);
    for s in specs {
        let size = s.size_mib.map(|m| format!("{m}MiB")).unwrap_or_default();
        let ty = match s.fill {
            Fill::Extended => "E".to_string(),
            _ => s.type_code.to_string(),
        };
        script += &format!(",{size},{ty}{}\n", if s.bootable { ",*" } else { "" });
    }
    sfdisk(&path, &script);
    let table = read_table(&path);
    assert_eq!(table.label, "dos");
    assert_eq!(
        table.parts.len(),
        specs.len(),
        "sfdisk made {:?}",
        table.parts
    );
    let trees = dir.join(format!("{name}.trees"));
    let mut parts = make_parts(&table, specs, &path, &trees);

    let mut rng = Rng::new(seed ^ 0xb007);
    // Boot code (as GRUB's boot.img), keeping the disk signature and the table.
    write_at(&path, 0, &rng.bytes(440));
    let first = parts.iter().map(|p| p.start).min().unwrap();
    // The boot gap (as GRUB's core.img) between the MBR and the first partition.
    write_at(&path, 512, &rng.bytes((first - 512) as usize));
    let mut areas = vec![Area {
        off: 0,
        len: first,
        what: "MBR and boot gap".into(),
    }];
    let ebrs = ebr_offsets(&path, 512);
    let logicals: Vec<&FixPart> = parts.iter().filter(|p| p.number >= 5).collect();
    assert_eq!(ebrs.len(), logicals.len(), "one EBR per logical partition");
    for (ebr, lp) in ebrs.iter().zip(&logicals) {
        assert!(
            lp.start > *ebr && lp.start - ebr <= MIB,
            "EBR {ebr} and partition {lp:?}"
        );
        write_at(&path, *ebr, &rng.bytes(446));
        write_at(
            &path,
            ebr + 512,
            &rng.bytes((lp.start - ebr - 512) as usize),
        );
        areas.push(Area {
            off: *ebr,
            len: lp.start - ebr,
            what: format!("EBR of partition {} and the gap after it", lp.number),
        });
    }
    // Did the random bytes keep the table intact?
    assert_eq!(
        read_table(&path),
        table,
        "the boot code fill damaged the table"
    );
    parts.retain(|p| !matches!(p.fill, Fill::Extended));
    let scratch = dir.join(format!("{name}.scratch"));
    fs::create_dir_all(&scratch).unwrap();
    describe_parts(&mut parts, &path, &scratch, &trees);
    Fixture {
        path,
        size: size_mib * MIB,
        sector: 512,
        label: "mbr",
        table: Some(table),
        parts,
        areas,
    }
}

/// A GPT disk image made with sgdisk. With `sector == 4096` the table is written through a
/// 4K-sector loop device (detached again before the filesystems are made in the file).
/// Random protective-MBR boot code and a random gap between the entry array and the first
/// partition.
pub fn gpt_disk(
    dir: &Path,
    name: &str,
    size_mib: u64,
    sector: u64,
    seed: u64,
    specs: &[PartSpec],
) -> Fixture {
    let path = dir.join(name);
    sparse_file(&path, size_mib * MIB);
    let mut args: Vec<String> = vec![
        "-o".into(),
        "-U".into(),
        format!("6C1FEB0A-5D1E-4B3C-9A00-{:012X}", seed & 0xffff_ffff_ffff),
    ];
    for (i, s) in specs.iter().enumerate() {
        let n = i + 1;
        let end = s
            .size_mib
            .map(|m| format!("+{m}M"))
            .unwrap_or_else(|| "0".into());
        args.push(format!("-n{n}:0:{end}"));
        let code = if s.type_code == "83" {
            "8300"
        } else {
            s.type_code
        };
        args.push(format!("-t{n}:{code}"));
        args.push(format!("-c{n}:lifeboat-part-{n}"));
        args.push(format!(
            "-u{n}:A1B2C3D4-0000-4000-8000-{:012X}",
            seed * 16 + n as u64
        ));
    }
    let table = {
        let lo = (sector != 512).then(|| LoopDev::attach(&path, Some(sector as u32)));
        let dev: PathBuf = lo.as_ref().map_or(path.clone(), |l| l.dev.clone());
        run_ok(tool("sgdisk").args(&args).arg(&dev));
        let t = read_table(&dev);
        assert_eq!(t.sector, sector);
        t
    };
    assert_eq!(table.label, "gpt");
    assert_eq!(table.parts.len(), specs.len());
    let trees = dir.join(format!("{name}.trees"));
    let mut parts = make_parts(&table, specs, &path, &trees);
    let mut rng = Rng::new(seed ^ 0x9e7);
    write_at(&path, 0, &rng.bytes(440));
    let entries_end = 2 * sector + 16 * KIB; // header at LBA 1, 128 entries of 128 bytes
    let first = parts.iter().map(|p| p.start).min().unwrap();
    assert!(first > entries_end);
    write_at(
        &path,
        entries_end,
        &rng.bytes((first - entries_end) as usize),
    );
    let size = size_mib * MIB;
    let backup_len = sector + 16 * KIB;
    let areas = vec![
        Area {
            off: 0,
            len: first,
            what: "protective MBR, primary GPT and boot gap".into(),
        },
        Area {
            off: size - backup_len,
            len: backup_len,
            what: "backup GPT entries and header".into(),
        },
    ];
    let scratch = dir.join(format!("{name}.scratch"));
    fs::create_dir_all(&scratch).unwrap();
    describe_parts(&mut parts, &path, &scratch, &trees);
    Fixture {
        path,
        size,
        sector,
        label: "gpt",
        table: Some(table),
        parts,
        areas,
    }
}

/// A whole-disk ext filesystem (no partition table) of `size_mib`.
pub fn whole_disk(
    dir: &Path,
    name: &str,
    size_mib: u64,
    fstype: &'static str,
    tree: TreeSpec,
) -> Fixture {
    let path = dir.join(name);
    sparse_file(&path, size_mib * MIB);
    let mut parts = vec![FixPart {
        number: 0,
        start: 0,
        size: size_mib * MIB,
        fill: Fill::Ext {
            fstype,
            block_size: None,
            tree,
            extra: &[],
        },
        tree: None,
        sha: None,
        dumpe2fs: None,
        used_bytes: 0,
    }];
    let trees = dir.join(format!("{name}.trees"));
    fill_parts(&mut parts, &path, &trees);
    let scratch = dir.join(format!("{name}.scratch"));
    fs::create_dir_all(&scratch).unwrap();
    describe_parts(&mut parts, &path, &scratch, &trees);
    Fixture {
        path,
        size: size_mib * MIB,
        sector: 512,
        label: "none",
        table: None,
        parts,
        areas: Vec::new(),
    }
}

// ───────────────────────────── verification ─────────────────────────────

/// Verifies one restored partition (`target` bytes at `start`): ext → e2fsck clean, same
/// dumpe2fs as the source, every file identical; random → identical bytes.
pub fn verify_part(target: &Path, start: u64, p: &FixPart, scratch: &Path, what: &str) {
    let what = format!("{what}, partition {}", p.number);
    match &p.fill {
        Fill::Ext { .. } => {
            let img = scratch.join(format!("verify-p{}.img", p.number));
            extract(target, start, p.size, &img);
            assert_fsck_clean(&img, &what);
            let d = dumpe2fs(&img);
            assert_eq!(
                d,
                *p.dumpe2fs.as_ref().unwrap(),
                "{what}: dumpe2fs of the restored filesystem differs from the source's"
            );
            let got = ext_listing(&img, scratch, &what);
            let want = p.tree.as_ref().unwrap();
            assert!(
                want.len() > 200,
                "{what}: the source tree is suspiciously small"
            );
            assert_same_tree(&what, want, &got);
            fs::remove_file(&img).unwrap();
        }
        Fill::Random { .. } => {
            assert_eq!(
                sha_range(target, start, p.size),
                *p.sha.as_ref().unwrap(),
                "{what}: raw partition bytes differ"
            );
        }
        Fill::Extended => {}
    }
}

/// Panics unless `len` bytes at `off` are identical on `a` and `b`, naming the first
/// differing byte.
#[track_caller]
pub fn assert_same_bytes(a: &Path, b: &Path, off: u64, len: u64, what: &str) {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(4 * MIB);
        let x = read_range(a, off + done, n);
        let y = read_range(b, off + done, n);
        if x != y {
            let i = x.iter().zip(&y).position(|(p, q)| p != q).unwrap();
            panic!(
                "{what}: byte {} differs (source {:#04x}, restored {:#04x})",
                off + done + i as u64,
                x[i],
                y[i]
            );
        }
        done += n;
    }
}

/// Everything the restore of `fx` onto `target` must satisfy (same-size or larger target;
/// `gpt_grown` when the target is larger and holds a GPT, whose backup then moves).
pub fn verify_restored(fx: &Fixture, target: &Path, scratch: &Path) {
    let tsize = dev_size(target);
    assert!(tsize >= fx.size);
    let grown = tsize > fx.size;
    for a in &fx.areas {
        if grown && fx.label == "gpt" {
            continue; // checked field by field by verify_gpt_grown
        }
        assert_same_bytes(
            &fx.path,
            target,
            a.off,
            a.len,
            &format!("boot area {}", a.what),
        );
    }
    for p in &fx.parts {
        verify_part(
            target,
            p.start,
            p,
            scratch,
            &format!("restored {}", target.display()),
        );
    }
    if let Some(t) = &fx.table {
        if fx.sector == 512 {
            // (a 4K-sector table can only be read through a 4K device: checked by the caller)
            let got = read_table(target);
            assert_eq!(got.parts, t.parts, "restored partition table differs");
            assert_eq!(got.id, t.id, "restored disk id differs");
        }
    }
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// For a GPT disk restored onto a larger target: boot code, the primary entry array and the
/// boot gap are identical; the primary header points to a backup at the new last LBA; the
/// backup header there is consistent and its entry array equals the primary one; the
/// header fields other than the backup location and last usable LBA are unchanged.
pub fn verify_gpt_grown(fx: &Fixture, target: &Path) {
    let ss = fx.sector;
    let tsize = dev_size(target);
    let last = tsize / ss - 1;
    assert_same_bytes(&fx.path, target, 0, 440, "protective MBR boot code");
    let src_h = read_range(&fx.path, ss, ss);
    let h = read_range(target, ss, ss);
    assert_eq!(&h[..8], b"EFI PART");
    // Signature, revision, size, (crc differs), reserved, my LBA: same.
    assert_eq!(&h[..16], &src_h[..16]);
    assert_eq!(le64(&h, 24), 1, "primary header's own LBA");
    assert_eq!(
        le64(&h, 32),
        last,
        "primary header must point to the backup at the new end"
    );
    assert_eq!(le64(&h, 40), le64(&src_h, 40), "first usable LBA changed");
    assert_eq!(
        &h[56..92],
        &src_h[56..92],
        "disk GUID / entries location / count / CRC changed"
    );
    let entries_lba = le64(&h, 72);
    let entries_len = u64::from(le32(&h, 80)) * u64::from(le32(&h, 84));
    let esec = entries_len.div_ceil(ss);
    assert_eq!(
        le64(&h, 48),
        last - esec - 1,
        "last usable LBA of the grown disk"
    );
    let first = fx.parts.iter().map(|p| p.start).min().unwrap();
    assert_same_bytes(
        &fx.path,
        target,
        entries_lba * ss,
        first - entries_lba * ss,
        "primary entry array and boot gap",
    );
    let b = read_range(target, last * ss, ss);
    assert_eq!(
        &b[..8],
        b"EFI PART",
        "no backup GPT header at the new last LBA"
    );
    assert_eq!(le64(&b, 24), last, "backup header's own LBA");
    assert_eq!(le64(&b, 32), 1, "backup header's alternate LBA");
    assert_eq!(le64(&b, 72), last - esec, "backup entries location");
    assert_eq!(&b[56..72], &h[56..72], "backup disk GUID");
    assert_eq!(
        read_range(target, (last - esec) * ss, entries_len),
        read_range(target, entries_lba * ss, entries_len),
        "backup entry array differs from the primary"
    );
}

// ───────────────────────────── loop devices and mounts ─────────────────────────────

/// A loop device this test attached; detached on drop.
#[derive(Debug)]
pub struct LoopDev {
    pub dev: PathBuf,
}

impl LoopDev {
    pub fn attach(file: &Path, sector: Option<u32>) -> LoopDev {
        Self::attach_range(file, sector, None)
    }
    /// `losetup [-b SECTOR] [-o OFFSET --sizelimit SIZE] -f --show FILE`.
    pub fn attach_range(file: &Path, sector: Option<u32>, range: Option<(u64, u64)>) -> LoopDev {
        let mut c = tool("losetup");
        if let Some(b) = sector {
            c.args(["-b", &b.to_string()]);
        }
        if let Some((off, len)) = range {
            c.args(["-o", &off.to_string(), "--sizelimit", &len.to_string()]);
        }
        c.args(["-f", "--show"]).arg(file);
        let dev = PathBuf::from(run_ok(&mut c).trim());
        assert!(
            dev.to_string_lossy().starts_with("/dev/loop"),
            "losetup printed {dev:?}"
        );
        let lo = LoopDev { dev };
        if let Some(b) = sector {
            let got = sh("blockdev", &[OsStr::new("--getss"), lo.dev.as_os_str()]);
            assert_eq!(
                got.trim(),
                b.to_string(),
                "{} has the wrong sector size",
                lo.path()
            );
        }
        lo
    }
    pub fn path(&self) -> &str {
        s(&self.dev)
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        sync();
        for _ in 0..20 {
            let st = tool("losetup").arg("-d").arg(&self.dev).status();
            if st.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not detach {}", self.dev.display());
    }
}

/// A mount this test made; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    pub dir: PathBuf,
}

impl Mount {
    pub fn new(dev: &Path, dir: &Path, opts: &str) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let mut c = tool("mount");
        if !opts.is_empty() {
            c.args(["-o", opts]);
        }
        run_ok(c.arg(dev).arg(dir));
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        for _ in 0..20 {
            let st = tool("umount").arg(&self.dir).status();
            if st.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not unmount {}", self.dir.display());
    }
}

/// A temporary directory for one test.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("lifeboat-e2e-{tag}-"))
        .tempdir()
        .expect("tempdir")
}

/// Runs `c` (stdout discarded, stderr kept in `scratch/stderr.txt`) and waits for it with
/// wait4(2); returns (exit code or minus the signal, peak RSS in KiB, stderr).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives the rusage
#[allow(unsafe_code)] // a libc call the standard library does not offer
pub fn run_peak_rss(mut c: Command, scratch: &Path) -> (i32, u64, String) {
    let err_path = scratch.join("stderr.txt");
    let err = File::create(&err_path).unwrap();
    let child = c.stdout(Stdio::null()).stderr(err).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    // Linux reports ru_maxrss in KiB.
    (
        code,
        ru.ru_maxrss as u64,
        fs::read_to_string(&err_path).unwrap(),
    )
}

// ───────────────────────────── Clonezilla image directories ─────────────────────────────

/// A Clonezilla image directory `repo/img` laid out as ocs-sr lays it out (`disk`, `parts`,
/// `sdz-pt.sf`, `sdz-mbr`): partition 1 an ext4 filesystem (8 MiB, ten files) imaged by the real
/// `partclone.ext4 -c | zstd`, partition 2 four MiB of random bytes as a raw image compressed
/// by gzip and split into 64 KiB pieces by `split`. Returns the source disk file (both
/// partitions in place), or `None` after a loud skip when a tool is missing.
pub fn clonezilla_dir(repo: &Path, img: &str) -> Option<PathBuf> {
    if !need(&[
        "mke2fs",
        "partclone.ext4",
        "sfdisk",
        "zstd",
        "gzip",
        "split",
    ]) {
        return None;
    }
    let dir = repo.join(img);
    fs::create_dir_all(&dir).unwrap();
    let w = repo.parent().unwrap().join(format!("{img}.work"));
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
         dd if=p1.fs of=disk.img bs=1M seek=1 conv=notrunc status=none; \
         dd if=p2.raw of=disk.img bs=1M seek=9 conv=notrunc status=none; \
         partclone.ext4 -q -c -s p1.fs -o - 2>/dev/null | zstd -q -c > {d}/sdz1.ext4-ptcl-img.zst; \
         gzip -c p2.raw | split -b 65536 - {d}/sdz2.dd-ptcl-img.gz.; \
         dd if=disk.img of={d}/sdz-mbr bs=512 count=1 status=none; \
         sfdisk -d disk.img | sed 's#{wd}/disk.img#/dev/sdz#' > {d}/sdz-pt.sf; \
         echo sdz > {d}/disk; echo 'sdz1 sdz2' > {d}/parts; echo clonezilla > {d}/clonezilla-img"
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(w.join("disk.img"))
}

/// A disk restored from [`clonezilla_dir`]'s image: the table and MBR as the source's,
/// partition 1 passes `e2fsck -fn` with the source's files, partition 2 byte-identical.
pub fn verify_clonezilla_dir_restore(source: &Path, target: &Path, scratch: &Path) {
    assert_eq!(read_table(target), read_table(source), "partition table");
    assert_same_bytes(source, target, 0, 512, "MBR");
    let p1 = scratch.join("cz-p1.fs");
    extract(target, 1 << 20, 8 << 20, &p1);
    assert_fsck_clean(&p1, "restored ext4");
    let src_p1 = scratch.join("cz-src-p1.fs");
    extract(source, 1 << 20, 8 << 20, &src_p1);
    assert_same_tree(
        "restored ext4",
        &ext_listing(&src_p1, scratch, "source ext4"),
        &ext_listing(&p1, scratch, "restored ext4"),
    );
    assert_same_bytes(source, target, 9 << 20, 4 << 20, "raw partition 2");
}
