//! Test support shared by the scanner crates' tests — one job: the fixture and oracle
//! plumbing every scanner test needs, written once. Not part of lifeboat's API (a
//! dev-dependency only).
//!
//! - [`tool`]: find an oracle tool; skip loudly when it is missing locally, fail with
//!   `CI=true`.
//! - [`unpack_sparse`], [`decompress`]: committed zstd fixtures, unpacked into sparse files
//!   (all-zero 64 KiB blocks become holes) or into memory.
//! - [`drain_checked`]: read a used-extent stream to its end, asserting the stream contract.
//! - [`CountingReads`]: a volume that counts the reads made of it (few, large reads).
//! - [`run_checked`]: run a fixture-making tool, feeding its standard input, and insist that
//!   it succeeds.
//!
//! ```no_run
//! let tmp = std::env::temp_dir().join("fixture.img");
//! let len = lifeboat_testkit::unpack_sparse("test_data/ext4-default.img.zst".as_ref(), &tmp);
//! assert!(len > 0);
//! ```
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use lifeboat_fs::{Extent, ReadAt, UsedBlocks};

/// True when the tests run in CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Full path of the tool `name` (searched in PATH and the sbin directories), or `None` after
/// a loud message when it is missing locally; with `CI=true` a missing tool fails the test.
/// `install` names what provides it (e.g. `e2fsprogs`).
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/sbin", "/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(p);
    }
    if in_ci() {
        panic!("{name} is required in CI (CI=true) but was not found: install {install}");
    }
    eprintln!("!!!!! SKIPPING part of this test: {name} not found (install {install}) !!!!!");
    None
}

/// Decompresses the zstd file `src` into `out` as a sparse file; returns its length.
pub fn unpack_sparse(src: &Path, out: &Path) -> u64 {
    let f = File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut dec = zstd::stream::read::Decoder::new(f).unwrap();
    let mut w = File::create(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match dec.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            w.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            w.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    w.set_len(len).unwrap();
    w.flush().unwrap();
    len
}

/// Decompresses the zstd file `src` into memory.
pub fn decompress(src: &Path) -> Vec<u8> {
    let f = File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    zstd::decode_all(f).unwrap()
}

/// Reads `stream` to its end, asserting the stream contract: extents non-empty, inside the
/// volume (`volume_len`) and the filesystem, sorted and merged (a gap between neighbours), the
/// end stays the end, and their sum equals `info().used_bytes`.
pub fn drain_checked(stream: &mut dyn UsedBlocks, volume_len: u64) -> Vec<Extent> {
    let info = stream.info().clone();
    let mut v: Vec<Extent> = Vec::new();
    while let Some(e) = stream.next_extent().unwrap() {
        assert!(e.len > 0, "empty extent {e:?}");
        assert!(
            e.end() <= volume_len,
            "{e:?} past the volume end {volume_len}"
        );
        assert!(
            e.end() <= info.total_bytes,
            "{e:?} past the fs end {}",
            info.total_bytes
        );
        if let Some(p) = v.last() {
            assert!(p.end() < e.offset, "not sorted/merged: {p:?} then {e:?}");
        }
        v.push(e);
    }
    assert!(
        stream.next_extent().unwrap().is_none(),
        "stream restarted after its end"
    );
    let sum: u64 = v.iter().map(|e| e.len).sum();
    assert_eq!(
        sum, info.used_bytes,
        "info().used_bytes differs from the extents' sum"
    );
    v
}

/// A volume that counts the reads made through it and their bytes, to check that a scanner
/// reads little and in few I/Os.
pub struct CountingReads<'a> {
    inner: &'a dyn ReadAt,
    reads: AtomicU64,
    bytes: AtomicU64,
}

impl<'a> CountingReads<'a> {
    /// Counts the reads made through it of `inner`.
    pub fn new(inner: &'a dyn ReadAt) -> Self {
        CountingReads {
            inner,
            reads: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Reads made so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl ReadAt for CountingReads<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_exact_at(buf, offset)
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }
}

/// Runs `cmd` (its standard input is `stdin`, or empty), panics with the command and its
/// output unless it succeeds, and returns its standard output.
pub fn run_checked(cmd: &mut std::process::Command, stdin: Option<&str>) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    // Dropping the pipe after writing closes the tool's standard input.
    let mut pipe = child.stdin.take().expect("piped standard input");
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
