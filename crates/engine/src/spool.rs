//! The restore spool: what the verifying pass read, kept so that the write pass does not
//! read it again.
//!
//! A restore from a repository reads the whole image once to verify it before the first byte
//! is written (the pre-check), then decodes it again to write it. Over a network that is
//! twice the image on the wire. The spool keeps the container bytes the pre-check read, in
//! the order it read them: first in memory (up to [`SpoolOptions::memory`] bytes, in 1 MiB
//! pieces), then in an unlinked temporary file in [`SpoolOptions::dir`] (a local directory
//! that is not on a target disk; until its filesystem is full). Whatever did not fit is read
//! again from the repository. The write pass reads the spool front to back, releasing each
//! memory piece as it is consumed, then the rest from the repository.
//!
//! The safety promise is unchanged: the write pass starts only after the pre-check verified
//! every record of the whole image, and it verifies every chunk's checksums again while
//! writing (so a spool file damaged on its local disk is caught as the image would be).
//!
//! Memory bound: `memory` bytes of spool (plus less than one 1 MiB piece), default
//! [`default_memory`] for a network repository, none for a local one unless asked for.

use crate::error::{EngineError, Refusal, Result};
use lifeboat_blockdev::{disks_holding_path, Disk, OpenMode};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Size of one memory piece (and of the file spool's write buffer).
const PIECE: usize = 1 << 20;
/// Upper limit of the default memory spool.
pub const DEFAULT_MEMORY_MAX: u64 = 4 << 30;

/// Where a restore may keep what its pre-check read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes kept in memory at most; `None`: [`default_memory`] for a network repository, 0
    /// for a local one.
    pub memory: Option<u64>,
    /// A local directory for what does not fit in memory (an unlinked temporary file, gone
    /// when the restore ends, however it ends). Refused on a target disk.
    pub dir: Option<PathBuf>,
}

/// The default memory spool: a quarter of the memory available now, at most
/// [`DEFAULT_MEMORY_MAX`] (4 GiB).
pub fn default_memory() -> u64 {
    let avail = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(1 << 30, |kib| kib * 1024);
    (avail / 4).min(DEFAULT_MEMORY_MAX)
}

/// How a restore will read its image: told before it starts (the `read_plan` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// Bytes of the image (all volumes).
    pub image_bytes: u64,
    /// Memory spool bound.
    pub spool_memory: u64,
    /// Free bytes in the spool directory (0 without one).
    pub spool_dir_free: u64,
    /// Bytes the restore expects to read from the repository in all.
    pub read_bytes: u64,
}

impl ReadPlan {
    /// `once` (the spool holds the whole image), `spooled` (part of it is read twice) or
    /// `twice` (no spool).
    pub fn mode(&self) -> &'static str {
        if self.read_bytes <= self.image_bytes {
            "once"
        } else if self.spool_memory + self.spool_dir_free > 0 {
            "spooled"
        } else {
            "twice"
        }
    }
}

/// Refuses a spool directory on a disk that will be written (checked before any target is
/// opened for writing), and one that is not a directory.
pub(crate) fn refuse_on_targets(opts: &SpoolOptions, targets: &[PathBuf]) -> Result<()> {
    let Some(dir) = &opts.dir else { return Ok(()) };
    if !dir.is_dir() {
        return Err(EngineError::Refused(Refusal::SpoolNotDir {
            dir: dir.clone(),
        }));
    }
    let holders = disks_holding_path(dir)?;
    for t in targets {
        let Ok(disk) = Disk::open(t, OpenMode::Read) else {
            continue; // the target's own checks report it
        };
        if disk.is_one_of(&holders) {
            return Err(EngineError::Refused(Refusal::SpoolOnTarget {
                disk: t.clone(),
                dir: dir.clone(),
            }));
        }
    }
    Ok(())
}

fn free_bytes(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir).map_or(0, |s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// The plan for an image of `image_bytes` bytes with `opts`, `network` telling whether the
/// repository is a network one (the default memory spool applies to those only).
pub(crate) fn plan(
    opts: &SpoolOptions,
    image_bytes: u64,
    precheck: bool,
    network: bool,
) -> ReadPlan {
    let memory = match opts.memory {
        Some(m) => m,
        None if network => default_memory(),
        None => 0,
    };
    let dir_free = opts.dir.as_deref().map_or(0, free_bytes);
    let (memory, dir_free) = if precheck { (memory, dir_free) } else { (0, 0) };
    let kept = image_bytes.min(memory.saturating_add(dir_free));
    let read_bytes = if precheck {
        image_bytes + (image_bytes - kept)
    } else {
        image_bytes
    };
    ReadPlan {
        image_bytes,
        spool_memory: memory,
        spool_dir_free: dir_free,
        read_bytes,
    }
}

/// Plans the spool of a repository restore, tells it (`read_plan` event) and returns it.
pub(crate) fn announce(
    opts: &crate::RestoreOptions,
    image_bytes: u64,
    network: bool,
    sink: &dyn crate::EventSink,
) -> Spool {
    let p = plan(&opts.spool, image_bytes, opts.precheck, network);
    sink.event(crate::Event::ReadPlan {
        mode: p.mode().into(),
        image_bytes,
        read_bytes: p.read_bytes,
        spool_memory: p.spool_memory,
        spool_dir: opts.spool.dir.as_ref().map(|d| d.display().to_string()),
        spool_dir_free: p.spool_dir_free,
    });
    let dir = opts.spool.dir.clone().filter(|_| opts.precheck);
    Spool::new(p.spool_memory, dir)
}

/// The bytes kept, contiguous from the start of the container stream.
pub(crate) struct Spool {
    mem: VecDeque<Vec<u8>>,
    mem_len: u64,
    mem_limit: u64,
    dir: Option<PathBuf>,
    file: Option<io::BufWriter<File>>,
    /// The spool file, settled and rewound.
    reading: Option<File>,
    file_len: u64,
    /// Set once a byte could not be kept: nothing after it is kept either.
    full: bool,
}

impl Spool {
    pub(crate) fn new(memory: u64, dir: Option<PathBuf>) -> Self {
        Spool {
            mem: VecDeque::new(),
            mem_len: 0,
            mem_limit: memory,
            dir,
            file: None,
            reading: None,
            file_len: 0,
            full: false,
        }
    }

    /// Bytes kept in all.
    pub(crate) fn len(&self) -> u64 {
        self.mem_len + self.file_len
    }

    /// Whether every byte given so far was kept (before [`Spool::settle`]).
    pub(crate) fn holds_all(&self) -> bool {
        !self.full
    }

    fn keep(&mut self, mut data: &[u8]) {
        if self.full {
            return;
        }
        if self.file.is_none() {
            while !data.is_empty() && self.mem_len < self.mem_limit {
                let room_total = (self.mem_limit - self.mem_len) as usize;
                if self.mem.back().is_none_or(|p| p.len() == p.capacity()) {
                    let cap = PIECE.min(room_total);
                    self.mem.push_back(Vec::with_capacity(cap));
                }
                let p = self.mem.back_mut().expect("a piece was just pushed");
                let n = (p.capacity() - p.len()).min(data.len()).min(room_total);
                p.extend_from_slice(&data[..n]);
                self.mem_len += n as u64;
                data = &data[n..];
            }
            if data.is_empty() {
                return;
            }
            let Some(dir) = &self.dir else {
                self.full = true;
                return;
            };
            match tempfile::tempfile_in(dir) {
                Ok(f) => self.file = Some(io::BufWriter::with_capacity(PIECE, f)),
                Err(_) => {
                    self.full = true;
                    return;
                }
            }
        }
        let w = self.file.as_mut().expect("opened above");
        if w.write_all(data).is_ok() {
            self.file_len += data.len() as u64;
        } else {
            // The directory's filesystem is full (or failing): what the file holds may end
            // anywhere after the last whole flush, so keep only what is known written.
            self.full = true;
            self.file_len = 0;
            self.file = None;
        }
    }

    /// Ends the keeping: flushes the spool file and rewinds it for reading; a file that
    /// cannot be flushed or rewound is dropped (its bytes will be read from the source
    /// again). [`Spool::len`] is final afterwards.
    pub(crate) fn settle(&mut self) {
        self.full = true;
        let Some(w) = self.file.take() else { return };
        let rewound = w
            .into_inner()
            .ok()
            .and_then(|mut f| f.seek(SeekFrom::Start(0)).ok().map(|_| f));
        match rewound {
            Some(f) => self.reading = Some(f),
            None => self.file_len = 0,
        }
    }

    /// A reader of the kept bytes followed by `rest` (the source from byte [`Spool::len`]
    /// on, after [`Spool::settle`]). Errors of the spool file are reported as they come.
    pub(crate) fn replay<R: Read>(mut self, rest: R) -> Replay<R> {
        self.settle();
        let file = self
            .reading
            .take()
            .map(|f| BufReader::with_capacity(PIECE, f.take(self.file_len)));
        Replay {
            mem: self.mem,
            at: 0,
            file,
            rest,
        }
    }
}

/// Plans the spool of a restore from a converted (Clonezilla) image, tells it (`read_plan`)
/// and returns it. The spool keeps the converted stream the pre-check produced (about
/// `converted` bytes: the used blocks, stored); when all of it fits, the write pass reads it
/// from there and the image's files are read and decompressed once, else the conversion runs
/// again. The default memory spool applies to local repositories too: the second conversion
/// costs the decompression of every file (gzip, xz, bzip2 …), not only the reading.
pub(crate) fn announce_converted(
    opts: &crate::RestoreOptions,
    image_bytes: u64,
    converted: u64,
    sink: &dyn crate::EventSink,
) -> Spool {
    let memory = opts.spool.memory.unwrap_or_else(default_memory);
    let dir = opts.spool.dir.clone().filter(|_| opts.precheck);
    let dir_free = dir.as_deref().map_or(0, free_bytes);
    let (memory, dir_free) = if opts.precheck {
        (memory, dir_free)
    } else {
        (0, 0)
    };
    // The converted stream is a little larger than the data it holds (records, index).
    let fits = converted + converted / 64 + (1 << 20) <= memory.saturating_add(dir_free);
    let once = !opts.precheck || fits;
    sink.event(crate::Event::ReadPlan {
        mode: if once { "once" } else { "twice" }.into(),
        image_bytes,
        read_bytes: if once { image_bytes } else { 2 * image_bytes },
        spool_memory: memory,
        spool_dir: dir.as_ref().map(|d| d.display().to_string()),
        spool_dir_free: dir_free,
    });
    // Nothing is kept when it cannot all be kept: the write pass converts again anyway.
    if fits {
        Spool::new(memory, dir)
    } else {
        Spool::new(0, None)
    }
}

/// Keeps what is written to it in a shared [`Spool`] (the converted stream of a Clonezilla
/// pre-check, written from the image writer's thread).
pub(crate) struct SpoolWriter(pub(crate) std::sync::Arc<std::sync::Mutex<Spool>>);

impl Write for SpoolWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).keep(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads what the pre-check read, and keeps it in a [`Spool`].
pub(crate) struct Tee<'a, R> {
    pub(crate) inner: R,
    pub(crate) spool: &'a mut Spool,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.spool.keep(&buf[..n]);
        Ok(n)
    }
}

/// The spool, then the rest of the source.
pub(crate) struct Replay<R> {
    mem: VecDeque<Vec<u8>>,
    at: usize,
    file: Option<BufReader<io::Take<File>>>,
    rest: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(p) = self.mem.front() {
            if self.at < p.len() {
                let n = (p.len() - self.at).min(buf.len());
                buf[..n].copy_from_slice(&p[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            self.mem.pop_front(); // released as soon as it is consumed
            self.at = 0;
        }
        if let Some(f) = &mut self.file {
            let n = f.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.file = None;
        }
        self.rest.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
    }

    fn run(memory: u64, dir: Option<PathBuf>, n: usize, read: usize) -> (u64, Vec<u8>) {
        let src = data(n);
        let mut spool = Spool::new(memory, dir);
        let mut tee = Tee {
            inner: &src[..],
            spool: &mut spool,
        };
        let mut seen = Vec::new();
        let mut buf = vec![0u8; read];
        loop {
            let k = tee.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..k]);
        }
        assert_eq!(seen, src);
        spool.settle();
        let kept = spool.len();
        assert!(spool.mem_len <= memory);
        let mut r = spool.replay(&src[kept as usize..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, src);
        (kept, out)
    }

    #[test]
    fn memory_only_keeps_up_to_the_bound_and_replays_all() {
        assert_eq!(run(0, None, 3 << 20, 4096).0, 0);
        assert_eq!(run(1_500_000, None, 3 << 20, 7777).0, 1_500_000);
        assert_eq!(run(64 << 20, None, 3 << 20, 100_000).0, 3 << 20);
    }

    #[test]
    fn a_directory_takes_what_memory_does_not() {
        let d = tempfile::tempdir().unwrap();
        let (kept, _) = run(1 << 20, Some(d.path().to_path_buf()), 5 << 20, 65536);
        assert_eq!(kept, 5 << 20);
        let (kept, _) = run(0, Some(d.path().to_path_buf()), 2 << 20, 999);
        assert_eq!(kept, 2 << 20);
        // The file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unusable_directory_falls_back_to_reading_again() {
        let (kept, _) = run(
            1 << 20,
            Some(PathBuf::from("/nonexistent/spool")),
            3 << 20,
            4096,
        );
        assert_eq!(kept, 1 << 20);
    }

    #[test]
    fn the_plan_counts_what_is_read_twice() {
        let o = SpoolOptions {
            memory: Some(100),
            dir: None,
        };
        let p = plan(&o, 1000, true, true);
        assert_eq!((p.read_bytes, p.mode()), (1900, "spooled"));
        let p = plan(&o, 100, true, true);
        assert_eq!((p.read_bytes, p.mode()), (100, "once"));
        let p = plan(&o, 1000, false, true);
        assert_eq!((p.read_bytes, p.mode()), (1000, "once"));
        let none = SpoolOptions {
            memory: Some(0),
            dir: None,
        };
        assert_eq!(plan(&none, 1000, true, true).mode(), "twice");
        assert_eq!(
            plan(&SpoolOptions::default(), 1000, true, false).read_bytes,
            2000
        );
    }
}
