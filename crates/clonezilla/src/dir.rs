//! A Clonezilla (or MIRACLE System Savior) image directory: which disks and partitions it
//! holds, the files of their partition tables and boot areas, and each partition's image
//! file(s).
//!
//! The directory is read through [`ImageFiles`], so that it can live on a local disk
//! ([`LocalDir`]) or in any repository that lists and opens named files.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compress::{self, Compression};
use crate::error::{Error, Result};
use crate::partclone::{Limits, PartcloneReader};
use crate::sfdisk::SfdiskTable;

/// The largest text file (`disk`, `parts`, `*-pt.sf`, `swappt-*.info`, …) read.
pub const MAX_TEXT_LEN: u64 = 1 << 20;
/// The largest boot-area file (`*-mbr`, `*-hidden-data-after-mbr`, `*-gpt-1st`, …) read.
pub const MAX_BOOT_FILE_LEN: u64 = 64 << 20;
/// The most files listed in one image directory.
pub const MAX_FILES: usize = 100_000;

/// Named files of one image directory.
pub trait ImageFiles: Send + Sync {
    /// Where the directory is, for messages.
    fn location(&self) -> String;
    /// The names of the files in the directory (no subdirectories).
    fn names(&self) -> io::Result<Vec<String>>;
    /// Opens a file for sequential reading.
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;
    /// The length of a file in bytes.
    fn len(&self, name: &str) -> io::Result<u64>;
}

/// An image directory on a local filesystem.
#[derive(Debug, Clone)]
pub struct LocalDir {
    path: PathBuf,
}

impl LocalDir {
    /// The directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ImageFiles for LocalDir {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn names(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.path)? {
            let e = e?;
            if e.file_type()?.is_file() {
                if let Some(n) = e.file_name().to_str() {
                    out.push(n.to_string());
                }
            }
            if out.len() > MAX_FILES {
                return Err(io::Error::other(format!(
                    "more than {MAX_FILES} files in {}",
                    self.path.display()
                )));
            }
        }
        out.sort();
        Ok(out)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.path.join(name))?))
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path.join(name))?.len())
    }
}

/// What a partition's image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartContent {
    /// A partclone image of a filesystem of this type (as in the file name: "ext4", "ntfs",
    /// "vfat", …).
    Partclone {
        /// Filesystem type from the file name.
        fs: String,
    },
    /// The whole partition, raw (`*.dd-ptcl-img.*`, written by partclone.dd, or the older
    /// `*.dd-img.*`).
    Raw,
    /// A swap partition: only its UUID and label are kept (`swappt-<part>.info`).
    Swap {
        /// UUID to give the new swap area.
        uuid: Option<String>,
        /// Label to give it.
        label: Option<String>,
    },
}

/// One saved partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartImage {
    /// Kernel name of the partition when it was saved ("sda1", "nvme0n1p2", "loop0p5").
    pub name: String,
    /// The disk it belongs to ("sda"), when known.
    pub disk: Option<String>,
    /// Its partition number.
    pub number: Option<u32>,
    /// What was saved.
    pub content: PartContent,
    /// The image file, or its pieces `.aa`, `.ab`, … in order (empty for swap).
    pub pieces: Vec<String>,
}

/// One saved disk and the files that describe its layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskInfo {
    /// Kernel name when saved ("sda").
    pub name: String,
    /// `<disk>-pt.sf`, parsed.
    pub table: Option<SfdiskTable>,
    /// `<disk>-mbr`: the first sector (boot code, table, signature).
    pub mbr: Option<String>,
    /// `<disk>-hidden-data-after-mbr`: the sectors between the MBR and the first partition.
    pub hidden_data: Option<String>,
    /// `<disk>-gpt-1st`: the protective MBR, GPT header and entries (first 34 sectors).
    pub gpt_first: Option<String>,
    /// `<disk>-gpt-2nd`: the backup entries and header (last 33 sectors).
    pub gpt_second: Option<String>,
    /// `<disk>-gpt.gdisk`: `sgdisk --backup` of the GPT.
    pub gdisk: Option<String>,
    /// `<part>-ebr` files: the extended boot records.
    pub ebrs: Vec<String>,
}

/// A Clonezilla image directory, opened.
pub struct CloneImage {
    files: Arc<dyn ImageFiles>,
    /// Every file name in the directory.
    pub names: Vec<String>,
    /// The saved disks (empty for a `saveparts` image without disk files).
    pub disks: Vec<DiskInfo>,
    /// The saved partitions, in the order of the `parts` file.
    pub parts: Vec<PartImage>,
}

/// True when `names` (the files of a directory) look like a Clonezilla image: a `parts` or
/// `disk` list and at least one partition image or the `clonezilla-img` marker.
pub fn looks_like_clonezilla(names: &[String]) -> bool {
    let has = |n: &str| names.iter().any(|x| x == n);
    (has("parts") || has("disk"))
        && (has("clonezilla-img")
            || names
                .iter()
                .any(|n| n.contains("-ptcl-img") || n.contains(".dd-img")))
}

/// The disk a partition name belongs to: "sda1" → ("sda", 1), "nvme0n1p2" → ("nvme0n1", 2).
pub fn split_part_name(part: &str) -> Option<(String, u32)> {
    let digits = part.len() - part.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits == part.len() {
        return None;
    }
    let n = part[part.len() - digits..].parse().ok()?;
    let head = &part[..part.len() - digits];
    match head.strip_suffix('p') {
        Some(d) if d.ends_with(|c: char| c.is_ascii_digit()) => Some((d.to_string(), n)),
        _ => Some((head.to_string(), n)),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// GNU split's next suffix of the same length ("aa" → "ab", "az" → "ba").
fn next_suffix(s: &str) -> Option<String> {
    let mut b = s.as_bytes().to_vec();
    for i in (0..b.len()).rev() {
        if b[i] < b'z' {
            b[i] += 1;
            return String::from_utf8(b).ok();
        }
        b[i] = b'a';
    }
    None
}

impl CloneImage {
    /// Reads the directory's lists and layout files. Fails, naming the file, when something
    /// the image needs is missing or cannot be understood.
    pub fn open(files: Arc<dyn ImageFiles>) -> Result<CloneImage> {
        let loc = files.location();
        let names = files.names().map_err(|source| {
            Error::Io {
                offset: 0,
                what: "directory listing",
                source,
            }
            .in_file(&loc)
        })?;
        let mut img = CloneImage {
            files,
            names,
            disks: Vec::new(),
            parts: Vec::new(),
        };
        let has = |n: &str| img.names.iter().any(|x| x == n);
        if !has("parts") && !has("disk") {
            return Err(Error::Missing {
                dir: loc,
                file: "parts".into(),
                why: "the list of saved partitions of a Clonezilla image",
            });
        }
        let disk_names = if has("disk") {
            words(&img.read_text("disk")?)
        } else {
            Vec::new()
        };
        let part_names = if has("parts") {
            words(&img.read_text("parts")?)
        } else {
            Vec::new()
        };
        for d in &disk_names {
            img.disks.push(img.disk_info(d)?);
        }
        // A saveparts image has no `disk` list; its disks are those with a partition table.
        if disk_names.is_empty() {
            let mut seen = BTreeSet::new();
            for p in &part_names {
                if let Some((d, _)) = split_part_name(p) {
                    if seen.insert(d.clone()) && has(&format!("{d}-pt.sf")) {
                        img.disks.push(img.disk_info(&d)?);
                    }
                }
            }
        }
        for p in &part_names {
            let part = img.part_image(p)?;
            img.parts.push(part);
        }
        Ok(img)
    }

    /// Where the image is, for messages.
    pub fn location(&self) -> String {
        self.files.location()
    }

    /// The files of the directory.
    pub fn files(&self) -> &Arc<dyn ImageFiles> {
        &self.files
    }

    fn has(&self, n: &str) -> bool {
        self.names.iter().any(|x| x == n)
    }

    fn opt(&self, n: String) -> Option<String> {
        self.has(&n).then_some(n)
    }

    /// Reads a whole small file (at most `max` bytes).
    pub fn read_small(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        let io = |source| {
            Error::Io {
                offset: 0,
                what: "file",
                source,
            }
            .in_file(name)
        };
        let len = self.files.len(name).map_err(io)?;
        if len > max {
            return Err(Error::Unsupported {
                file: name.to_string(),
                reason: format!("{len} bytes, more than the {max} expected"),
            });
        }
        let mut out = Vec::with_capacity(len as usize);
        self.files
            .open(name)
            .map_err(io)?
            .take(max)
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    }

    /// Reads a boot-area file (`*-mbr`, `*-hidden-data-after-mbr`, `*-gpt-1st`, `*-ebr`, …),
    /// at most [`MAX_BOOT_FILE_LEN`] bytes.
    pub fn read_boot_file(&self, name: &str) -> Result<Vec<u8>> {
        self.read_small(name, MAX_BOOT_FILE_LEN)
    }

    fn read_text(&self, name: &str) -> Result<String> {
        let b = self.read_small(name, MAX_TEXT_LEN)?;
        String::from_utf8(b).map_err(|_| Error::BadText {
            file: name.to_string(),
            line: 0,
            reason: "not UTF-8 text".into(),
        })
    }

    fn disk_info(&self, d: &str) -> Result<DiskInfo> {
        let pt = format!("{d}-pt.sf");
        let table = if self.has(&pt) {
            Some(SfdiskTable::parse(&pt, &self.read_text(&pt)?)?)
        } else {
            None
        };
        let mut ebrs: Vec<String> = self
            .names
            .iter()
            .filter(|n| {
                n.strip_suffix("-ebr")
                    .and_then(split_part_name)
                    .is_some_and(|(disk, _)| disk == d)
            })
            .cloned()
            .collect();
        ebrs.sort();
        Ok(DiskInfo {
            name: d.to_string(),
            table,
            mbr: self.opt(format!("{d}-mbr")),
            hidden_data: self.opt(format!("{d}-hidden-data-after-mbr")),
            gpt_first: self.opt(format!("{d}-gpt-1st")),
            gpt_second: self.opt(format!("{d}-gpt-2nd")),
            gdisk: self.opt(format!("{d}-gpt.gdisk")),
            ebrs,
        })
    }

    fn part_image(&self, p: &str) -> Result<PartImage> {
        let (disk, number) = match split_part_name(p) {
            Some((d, n)) => (Some(d), Some(n)),
            None => (None, None),
        };
        let prefix = format!("{p}.");
        // The image files of this partition, grouped by their name without a split suffix.
        let mut bases = BTreeSet::new();
        for n in self.names.iter().filter(|n| n.starts_with(&prefix)) {
            let rest = &n[prefix.len()..];
            let base = match rest.rsplit_once('.') {
                Some((b, s))
                    if s.len() >= 2
                        && s.bytes().all(|c| c.is_ascii_lowercase())
                        && b.contains("-img.") =>
                {
                    b
                }
                _ => rest,
            };
            if base.contains("-img") {
                bases.insert(base.to_string());
            }
        }
        if bases.is_empty() {
            if let Some(swap) = self.swap_part(p)? {
                return Ok(swap);
            }
            return Err(Error::Missing {
                dir: self.location(),
                file: format!("{p}.*-ptcl-img.*"),
                why: "the image of a partition listed in `parts`",
            });
        }
        if bases.len() > 1 {
            return Err(Error::Unsupported {
                file: format!("{p}.*"),
                reason: format!("several images of one partition: {bases:?}"),
            });
        }
        let base = bases.into_iter().next().unwrap_or_default();
        let (kind, _comp) = base.split_once("-img").unwrap_or((&base, ""));
        let content = if kind == "dd-ptcl" || kind == "dd" {
            PartContent::Raw
        } else if let Some(fs) = kind.strip_suffix("-ptcl") {
            PartContent::Partclone { fs: fs.to_string() }
        } else {
            // partimage (`*.ext4-img.*`) and ntfsclone (`*.ntfs-img.*`) images of old
            // Clonezilla versions.
            return Err(Error::Unsupported {
                file: format!("{prefix}{base}"),
                reason: format!(
                    "{kind}-img is a partimage/ntfsclone image of an old Clonezilla; only partclone \
                     (*-ptcl-img) and dd images can be read"
                ),
            });
        };
        let whole = format!("{prefix}{base}");
        let pieces = if self.has(&whole) {
            vec![whole]
        } else {
            let mut v: Vec<String> = self
                .names
                .iter()
                .filter(|n| {
                    n.strip_prefix(&whole)
                        .and_then(|s| s.strip_prefix('.'))
                        .is_some_and(|s| s.len() >= 2 && s.bytes().all(|c| c.is_ascii_lowercase()))
                })
                .cloned()
                .collect();
            v.sort();
            let suffix = |n: &str| n[whole.len() + 1..].to_string();
            if v.first().map(|n| suffix(n)).as_deref() != Some("aa") {
                return Err(Error::Missing {
                    dir: self.location(),
                    file: format!("{whole}.aa"),
                    why: "the first piece of a split image",
                });
            }
            for w in v.windows(2) {
                let (a, b) = (suffix(&w[0]), suffix(&w[1]));
                if a.len() == b.len() && next_suffix(&a).as_deref() != Some(b.as_str()) {
                    return Err(Error::Missing {
                        dir: self.location(),
                        file: format!("{whole}.{}", next_suffix(&a).unwrap_or_default()),
                        why: "a piece of a split image (the pieces after it exist)",
                    });
                }
            }
            v
        };
        Ok(PartImage {
            name: p.to_string(),
            disk,
            number,
            content,
            pieces,
        })
    }

    /// The swap partition `p` (kernel name, e.g. `sda2`) as its `swappt-<p>.info` describes
    /// it (Clonezilla lists swap partitions there, not in `parts`), if that file exists.
    pub fn swap_part(&self, p: &str) -> Result<Option<PartImage>> {
        let swap = format!("swappt-{p}.info");
        if !self.has(&swap) {
            return Ok(None);
        }
        let text = self.read_text(&swap)?;
        let field = |k: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(|v| v.trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
        };
        let (disk, number) = match split_part_name(p) {
            Some((d, n)) => (Some(d), Some(n)),
            None => (None, None),
        };
        Ok(Some(PartImage {
            name: p.to_string(),
            disk,
            number,
            content: PartContent::Swap {
                uuid: field("UUID="),
                label: field("LABEL="),
            },
            pieces: Vec::new(),
        }))
    }

    /// The kernel name of partition `number` of disk `disk` (`sda` → `sda2`, `nvme0n1` and
    /// `loop0` → `nvme0n1p2`, `loop0p2`).
    pub fn part_name(disk: &str, number: u32) -> String {
        if disk.ends_with(|c: char| c.is_ascii_digit()) {
            format!("{disk}p{number}")
        } else {
            format!("{disk}{number}")
        }
    }

    /// The decompressed contents of a partition's image (its pieces joined). Fails, naming
    /// the file, when the compression is not supported — before anything is read further.
    pub fn open_part(&self, part: &PartImage) -> Result<(Compression, Box<dyn Read + Send>)> {
        let first = part.pieces.first().ok_or_else(|| Error::Unsupported {
            file: part.name.clone(),
            reason: "a swap partition has no image data".into(),
        })?;
        let joined = Pieces {
            files: Arc::clone(&self.files),
            names: part.pieces.clone(),
            next: 0,
            cur: None,
        };
        let (c, r) = compress::open(first, joined)?;
        // Decoding runs on its own thread, ahead of the reader (like Clonezilla's
        // decompressor process in front of partclone).
        let r = crate::ahead::ReadAhead::new(r).map_err(|source| {
            Error::Io {
                offset: 0,
                what: "decoding thread",
                source,
            }
            .in_file(first)
        })?;
        Ok((c, Box::new(r)))
    }

    /// A partclone reader of a partition's image (header and bitmap read and checked).
    pub fn partclone(
        &self,
        part: &PartImage,
        limits: Limits,
    ) -> Result<PartcloneReader<Box<dyn Read + Send>>> {
        let name = part.pieces.first().cloned().unwrap_or_default();
        let (_, r) = self.open_part(part)?;
        PartcloneReader::new(r, limits).map_err(|e| e.in_file(&name))
    }
}

/// The pieces of a split file, read one after the other.
struct Pieces {
    files: Arc<dyn ImageFiles>,
    names: Vec<String>,
    next: usize,
    cur: Option<Box<dyn Read + Send>>,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.cur.is_none() {
                let Some(name) = self.names.get(self.next) else {
                    return Ok(0);
                };
                let f = self
                    .files
                    .open(name)
                    .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
                self.cur = Some(f);
                self.next += 1;
            }
            let n = self.cur.as_mut().map_or(Ok(0), |r| r.read(buf))?;
            if n > 0 {
                return Ok(n);
            }
            self.cur = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names() {
        assert_eq!(split_part_name("sda1"), Some(("sda".into(), 1)));
        assert_eq!(split_part_name("nvme0n1p12"), Some(("nvme0n1".into(), 12)));
        assert_eq!(split_part_name("loop0p5"), Some(("loop0".into(), 5)));
        assert_eq!(split_part_name("sda"), None);
        assert_eq!(split_part_name("12"), None);
    }

    #[test]
    fn split_suffixes() {
        assert_eq!(next_suffix("aa").as_deref(), Some("ab"));
        assert_eq!(next_suffix("az").as_deref(), Some("ba"));
        assert_eq!(next_suffix("zz"), None);
    }
}
