//! The oracle: Debian's vmfs-tools (VMFS5) and vmfs6-tools (VMFS6). `vmfs-fuse` /
//! `vmfs6-fuse` mount a volume image read-only to list and read its files; `debugvmfs` /
//! `debugvmfs6` answer which block holds a file position and how many blocks are allocated.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// VMFS generation of an image, as the oracle tools are split by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    /// VMFS5: vmfs-tools.
    V5,
    /// VMFS6: vmfs6-tools.
    V6,
}

impl Gen {
    /// From an `info` fs type.
    pub fn of(fs_type: &str) -> Gen {
        if fs_type == "vmfs6" {
            Gen::V6
        } else {
            Gen::V5
        }
    }
    fn fuse(self) -> &'static str {
        match self {
            Gen::V5 => "vmfs-fuse",
            Gen::V6 => "vmfs6-fuse",
        }
    }
    fn debug(self) -> &'static str {
        match self {
            Gen::V5 => "debugvmfs",
            Gen::V6 => "debugvmfs6",
        }
    }
}

/// A read-only FUSE mount of a VMFS image, unmounted on drop.
pub struct Mount {
    /// Mount point.
    pub dir: PathBuf,
}

impl Mount {
    /// Mounts `image` (a partition image or block device) at a new directory under `parent`.
    pub fn new(image: &Path, generation: Gen, parent: &Path, name: &str) -> Mount {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(generation.fuse())
            .arg(image)
            .arg(&dir)
            .output()
            .expect("run the vmfs fuse oracle");
        assert!(
            out.status.success(),
            "{} {} failed: {}{}",
            generation.fuse(),
            image.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Mount { dir }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("fusermount").arg("-u").arg(&self.dir).status();
        }
    }
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Files up to this size are hashed whole; larger ones (thin VMDKs of many TiB) are
/// sampled: 1 MiB at every GiB up to 160 GiB.
pub const WHOLE_LIMIT: u64 = 1 << 30;

fn digest_file(path: &Path, size: u64) -> String {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("open error {:?}", e.kind()),
    };
    let mut h = Sha256::new();
    let mut problems = String::new();
    let mut buf = vec![0u8; MIB as usize];
    let ranges: Vec<(u64, u64)> = if size <= WHOLE_LIMIT {
        vec![(0, size)]
    } else {
        (0..=(size / GIB).min(160))
            .map(|k| (k * GIB, MIB.min(size - k * GIB)))
            .collect()
    };
    for (off, len) in ranges {
        if f.seek(SeekFrom::Start(off)).is_err() {
            return "seek error".into();
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(MIB) as usize;
            match f.read(&mut buf[..n]) {
                Ok(0) => {
                    problems.push_str(&format!(" short-at-{}", off + len - left));
                    break;
                }
                Ok(k) => {
                    h.update(&buf[..k]);
                    left -= k as u64;
                }
                Err(e) => {
                    problems.push_str(&format!(" error-{:?}-at-{}", e.kind(), off + len - left));
                    break;
                }
            }
        }
    }
    format!("{:x}{problems}", h.finalize())
}

/// Path → kind, size and content digest (or link target).
pub type Tree = BTreeMap<String, String>;

/// Every entry under the mount: path → (kind, size, content digest or link target).
pub fn tree(root: &Path) -> Tree {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("oracle cannot list {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let v = if ft.is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if ft.is_file() {
                format!("file {} {}", md.len(), digest_file(&p, md.len()))
            } else {
                format!("special {}", md.len())
            };
            out.insert(rel, v);
        }
    }
    out
}

/// Asks the oracle which block address holds each `(path, position)`; answers are `None`
/// where the oracle could not resolve the position.
pub fn file_blocks(image: &Path, generation: Gen, queries: &[(String, u64)]) -> Vec<Option<u64>> {
    // Answers go to stdout, the separators to stderr: both unbuffered into one pipe.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "stdbuf -o0 -e0 {} \"$0\" shell 2>&1",
            generation.debug()
        ))
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the debugvmfs oracle");
    let mut input = String::new();
    for (p, pos) in queries {
        // An unknown command separates the answers in the output.
        input.push_str(&format!("get_file_block {p} {pos}\nzz\n"));
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut chunks: Vec<&str> = text.split("Unknown command: zz").collect();
    chunks.pop();
    chunks
        .iter()
        .map(|c| {
            c.split(|ch: char| !ch.is_ascii_alphanumeric())
                .find_map(|w| w.strip_prefix("0x"))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// The oracle's count of allocated file blocks (`debugvmfs df`), VMFS5 only.
pub fn allocated_blocks(image: &Path) -> u64 {
    let out = Command::new("debugvmfs")
        .arg(image)
        .arg("df")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Allocated blocks :"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("debugvmfs df said: {text}"))
}
