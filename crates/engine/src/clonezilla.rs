//! Clonezilla / MIRACLE System Savior image directories in a repository: recognising them in
//! a listing, describing them (`info`) and verifying every byte of them (`check`). The
//! formats themselves are `lifeboat-clonezilla`'s; this module reads their files through the
//! repository's [`Backend::open_named`].

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lifeboat_clonezilla::{
    looks_like_clonezilla, CloneImage, ImageFiles, Limits, PartContent, PartImage,
};
use lifeboat_repo::{Backend, BackendRead, Repository};
use serde::Serialize;

use crate::error::{Aftermath, EngineError, Result};
use crate::event::{Event, EventSink, Progress};

/// The files of one image directory of a repository, as `lifeboat-clonezilla` reads them.
pub struct RepoImageFiles {
    backend: Arc<dyn Backend>,
    image: String,
    files: Vec<(String, u64)>,
}

impl RepoImageFiles {
    /// The directory `image` of `repo` (its listing is read once, here).
    pub fn new(repo: &Repository, image: &str) -> Result<Self> {
        let backend = repo.shared_backend();
        let files = backend.list_files(image)?;
        Ok(RepoImageFiles {
            backend,
            image: image.to_string(),
            files,
        })
    }
}

/// Sequential reads over a positional file, in large requests.
struct Sequential {
    file: Box<dyn BackendRead>,
    pos: u64,
}

impl Read for Sequential {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.file.len().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ImageFiles for RepoImageFiles {
    fn location(&self) -> String {
        format!("{}/{}", self.backend.location(), self.image)
    }

    fn names(&self) -> io::Result<Vec<String>> {
        Ok(self.files.iter().map(|f| f.0.clone()).collect())
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let file = self
            .backend
            .open_named(&self.image, name)
            .map_err(|e| io::Error::other(lifeboat_container::chain_text(&e)))?;
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            Sequential { file, pos: 0 },
        )))
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        self.files
            .iter()
            .find(|f| f.0 == name)
            .map(|f| f.1)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file")))
    }
}

/// True when the directory `image` of `repo` is a Clonezilla image.
pub fn is_clonezilla(repo: &Repository, image: &str) -> bool {
    repo.backend()
        .list_files(image)
        .map(|f| looks_like_clonezilla(&f.into_iter().map(|x| x.0).collect::<Vec<_>>()))
        .unwrap_or(false)
}

pub(crate) fn cz_err(image: &str, source: lifeboat_clonezilla::Error) -> EngineError {
    EngineError::Clonezilla {
        image: image.to_string(),
        source,
    }
}

/// Opens the Clonezilla image directory `image` of `repo`.
pub fn open_clonezilla(repo: &Repository, image: &str) -> Result<CloneImage> {
    let files = RepoImageFiles::new(repo, image)?;
    CloneImage::open(Arc::new(files)).map_err(|e| cz_err(image, e))
}

/// One Clonezilla image in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClonezillaEntry {
    /// Directory name.
    pub name: String,
    /// Sum of its file sizes.
    pub bytes: u64,
    /// Disks it holds (names when saved).
    pub disks: Vec<String>,
    /// Partitions it holds (names when saved).
    pub parts: Vec<String>,
    /// Why it cannot be read, when it cannot.
    pub error: Option<String>,
}

/// The Clonezilla images of a repository, sorted by name.
pub fn list_clonezilla(repo: &Repository) -> Result<Vec<ClonezillaEntry>> {
    let mut out = Vec::new();
    for name in repo.backend().list_images()? {
        let files = repo.backend().list_files(&name)?;
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        if !looks_like_clonezilla(&names) {
            continue;
        }
        let bytes = files.iter().map(|f| f.1).sum();
        let (disks, parts, error) = match open_clonezilla(repo, &name) {
            Ok(img) => (
                img.disks.iter().map(|d| d.name.clone()).collect(),
                img.parts.iter().map(|p| p.name.clone()).collect(),
                None,
            ),
            Err(e) => (
                Vec::new(),
                Vec::new(),
                Some(lifeboat_container::chain_text(&e)),
            ),
        };
        out.push(ClonezillaEntry {
            name,
            bytes,
            disks,
            parts,
            error,
        });
    }
    Ok(out)
}

/// A Clonezilla image described: its disks and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClonezillaInfo {
    /// Image (directory) name.
    pub image: String,
    /// Always `clonezilla`.
    pub kind: &'static str,
    /// The saved disks.
    pub disks: Vec<CzDisk>,
    /// The saved partitions.
    pub parts: Vec<CzPart>,
}

/// A disk of a Clonezilla image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CzDisk {
    /// Name when saved ("sda").
    pub name: String,
    /// "dos", "gpt", or "none" without a saved table.
    pub table: String,
    /// Bytes per sector.
    pub sector_size: u32,
    /// The partitions of the table: number, first sector, sectors, type.
    pub partitions: Vec<(u32, u64, u64, String)>,
    /// Boot-area files saved with it (MBR, hidden data, GPT copies, EBRs).
    pub boot_files: Vec<String>,
}

/// A partition of a Clonezilla image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CzPart {
    /// Name when saved ("sda1").
    pub name: String,
    /// Its partition number.
    pub number: Option<u32>,
    /// `partclone`, `raw` or `swap`.
    pub mode: &'static str,
    /// Filesystem type from the file name ("ext4"), or `-`.
    pub filesystem: String,
    /// Compression of its image file(s).
    pub compression: String,
    /// Its image file(s).
    pub files: Vec<String>,
    /// Bytes of those files in the repository.
    pub stored_bytes: u64,
    /// partclone format ("v1"/"v2"), block size, blocks, used blocks, checksum.
    pub partclone: Option<CzPartclone>,
}

/// What a partclone header and bitmap say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CzPartclone {
    /// "v1" or "v2".
    pub format: &'static str,
    /// Filesystem as partclone names it.
    pub fs: String,
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub total_blocks: u64,
    /// Blocks stored.
    pub used_blocks: u64,
    /// Checksum mode.
    pub checksum: String,
}

fn files_size(img: &CloneImage, names: &[String]) -> u64 {
    names.iter().filter_map(|n| img.files().len(n).ok()).sum()
}

/// Describes the Clonezilla image `image`: the disks and partition tables, and for each
/// partition its files, compression and (partclone) header and bitmap figures.
pub fn clonezilla_info(repo: &Repository, image: &str) -> Result<ClonezillaInfo> {
    let img = open_clonezilla(repo, image)?;
    let disks = img
        .disks
        .iter()
        .map(|d| CzDisk {
            name: d.name.clone(),
            table: d.table.as_ref().map_or("none".into(), |t| t.label.clone()),
            sector_size: d.table.as_ref().map_or(512, |t| t.sector_size),
            partitions: d
                .table
                .as_ref()
                .map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (p.number, p.start, p.size, p.kind.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            boot_files: [
                &d.mbr,
                &d.hidden_data,
                &d.gpt_first,
                &d.gpt_second,
                &d.gdisk,
            ]
            .into_iter()
            .flatten()
            .cloned()
            .chain(d.ebrs.iter().cloned())
            .collect(),
        })
        .collect();
    let mut parts = Vec::new();
    for p in &img.parts {
        let stored_bytes = files_size(&img, &p.pieces);
        let (mode, filesystem) = match &p.content {
            PartContent::Partclone { fs } => ("partclone", fs.clone()),
            PartContent::Raw => ("raw", "-".into()),
            PartContent::Swap { .. } => ("swap", "swap".into()),
        };
        let (compression, partclone) = match &p.content {
            PartContent::Swap { .. } => ("-".to_string(), None),
            PartContent::Raw => {
                let (c, _) = img.open_part(p).map_err(|e| cz_err(image, e))?;
                (c.to_string(), None)
            }
            PartContent::Partclone { .. } => {
                let (c, _) = img.open_part(p).map_err(|e| cz_err(image, e))?;
                let r = img
                    .partclone(p, Limits::default())
                    .map_err(|e| cz_err(image, e))?;
                let h = r.header();
                (
                    c.to_string(),
                    Some(CzPartclone {
                        format: match h.format {
                            lifeboat_clonezilla::Format::V1 => "v1",
                            lifeboat_clonezilla::Format::V2 => "v2",
                        },
                        fs: h.fs.clone(),
                        block_size: h.block_size,
                        total_blocks: h.total_blocks,
                        used_blocks: r.bitmap().used(),
                        checksum: match h.checksum {
                            lifeboat_clonezilla::Checksum::None => "none".into(),
                            lifeboat_clonezilla::Checksum::Crc32V1 => {
                                "crc32 (v1) every block".into()
                            }
                            c => format!("{} every {} blocks", c.name(), h.blocks_per_checksum),
                        },
                    }),
                )
            }
        };
        parts.push(CzPart {
            name: p.name.clone(),
            number: p.number,
            mode,
            filesystem,
            compression,
            files: p.pieces.clone(),
            stored_bytes,
            partclone,
        });
    }
    Ok(ClonezillaInfo {
        image: image.to_string(),
        kind: "clonezilla",
        disks,
        parts,
    })
}

/// What a check of a Clonezilla image verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClonezillaCheck {
    /// Partitions read to their end.
    pub parts: usize,
    /// partclone blocks whose checksums were verified (or read, without checksums).
    pub blocks: u64,
    /// Bytes of partition data read (partclone blocks and raw images).
    pub data_bytes: u64,
    /// Files read.
    pub files: usize,
}

/// The size of the partition `p` in the image's saved table, when known.
fn part_size(img: &CloneImage, p: &PartImage) -> Option<u64> {
    let d = img
        .disks
        .iter()
        .find(|d| Some(&d.name) == p.disk.as_ref())?;
    let t = d.table.as_ref()?;
    let e = t.partitions.iter().find(|e| Some(e.number) == p.number)?;
    e.size.checked_mul(u64::from(t.sector_size))
}

/// Reads the whole Clonezilla image `image`: every partition image decompressed to its end
/// and every partclone checksum verified; raw images must have their partition's size; every
/// boot-area file is read. A damaged image is an error naming the file and block
/// ([`EngineError::class`] `Damaged`, exit status 4).
pub fn clonezilla_check(
    repo: &Repository,
    image: &str,
    sink: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<ClonezillaCheck> {
    let started = Instant::now();
    let img = open_clonezilla(repo, image)?;
    let mut report = ClonezillaCheck::default();
    for d in &img.disks {
        for f in [
            &d.mbr,
            &d.hidden_data,
            &d.gpt_first,
            &d.gpt_second,
            &d.gdisk,
        ]
        .into_iter()
        .flatten()
        .chain(d.ebrs.iter())
        {
            img.read_boot_file(f).map_err(|e| cz_err(image, e))?;
            report.files += 1;
        }
    }
    let total: u64 = img.parts.iter().map(|p| files_size(&img, &p.pieces)).sum();
    sink.event(Event::Start {
        operation: "check".into(),
        image: image.to_string(),
        repo: repo.location(),
        bytes_total: total,
        disks: img.disks.iter().map(|d| d.name.clone()).collect(),
    });
    let mut progress = Progress::new(sink, total);
    let mut buf = Vec::new();
    for p in &img.parts {
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled(Aftermath::Unstated));
        }
        let stored = files_size(&img, &p.pieces);
        let number = p.number.unwrap_or(0);
        progress.partition = Some(number);
        sink.event(Event::PartitionStart {
            disk: 0,
            partition: number,
            filesystem: match &p.content {
                PartContent::Partclone { fs } => fs.clone(),
                PartContent::Raw => "raw".into(),
                PartContent::Swap { .. } => "swap".into(),
            },
            mode: match &p.content {
                PartContent::Partclone { .. } => "used-blocks".into(),
                _ => "raw".into(),
            },
            bytes: stored,
        });
        let first = p.pieces.first().cloned().unwrap_or_default();
        let before = progress.done;
        match &p.content {
            PartContent::Swap { .. } => {}
            PartContent::Raw => {
                let (_, mut r) = img.open_part(p).map_err(|e| cz_err(image, e))?;
                buf.resize(1 << 20, 0);
                let mut n = 0u64;
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(EngineError::Cancelled(Aftermath::Unstated));
                    }
                    let k = match r.read(&mut buf) {
                        Ok(k) => k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => {
                            let e = lifeboat_clonezilla::Error::Io {
                                offset: n,
                                what: "raw partition image",
                                source,
                            };
                            return Err(cz_err(image, e.in_file(&first)));
                        }
                    };
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                    // Compressed bytes are not known while decoding: progress is the share
                    // of the partition read, scaled to its stored size.
                    if let Some(size) = part_size(&img, p).filter(|s| *s > 0) {
                        let want = before + (stored as u128 * n as u128 / size as u128) as u64;
                        if want > progress.done {
                            progress.add(want - progress.done);
                        }
                    }
                }
                if let Some(size) = part_size(&img, p) {
                    if n != size {
                        return Err(EngineError::Damaged(format!(
                            "image {image}, file {first}: the raw image holds {n} bytes, partition {} has {size}",
                            p.name
                        )));
                    }
                }
                report.data_bytes += n;
            }
            PartContent::Partclone { .. } => {
                let mut r = img
                    .partclone(p, Limits::default())
                    .map_err(|e| cz_err(image, e))?;
                let bs = u64::from(r.header().block_size);
                let used = r.bitmap().used().max(1);
                if let Some(size) = part_size(&img, p) {
                    if r.header().fs_bytes() > size {
                        return Err(EngineError::Damaged(format!(
                            "image {image}, file {first}: the filesystem ({} bytes) is larger than partition {} ({size} bytes)",
                            r.header().fs_bytes(),
                            p.name
                        )));
                    }
                }
                let mut blocks = 0u64;
                while let Some(run) = r
                    .read_run(&mut buf, 4 << 20)
                    .map_err(|e| cz_err(image, e.in_file(&first)))?
                {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(EngineError::Cancelled(Aftermath::Unstated));
                    }
                    blocks += run.blocks;
                    let want = before + (stored as u128 * blocks as u128 / used as u128) as u64;
                    if want > progress.done {
                        progress.add(want - progress.done);
                    }
                }
                report.blocks += blocks;
                report.data_bytes += blocks * bs;
            }
        }
        if progress.done < before + stored {
            progress.add(before + stored - progress.done);
        }
        report.files += p.pieces.len();
        report.parts += 1;
        sink.event(Event::PartitionDone {
            disk: 0,
            partition: number,
            bytes: stored,
        });
    }
    progress.emit();
    sink.event(Event::Done {
        operation: "check".into(),
        bytes_done: report.data_bytes,
        image_bytes: total,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(report)
}
