//! What the file-protocol backends (SMB, NFS) share: a writer that keeps several positional
//! writes in flight while the caller produces the next bytes, a reader with a small
//! read-ahead for sequential access, and bounded retries with backoff.
//!
//! Memory is bounded: a writer holds at most `(QUEUE + WORKERS + 1) × chunk` bytes, a reader
//! one read-ahead window.

use lifeboat_fs::ReadAt;
use lifeboat_repo::BackendWrite;
use lifeboat_repo::{RepoError, Result};
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Chunks waiting in the queue of a writer.
const QUEUE: usize = 4;
/// Threads of a writer, each with one request in flight.
const WORKERS: usize = 4;
/// Read-ahead window for sequential reads.
const READ_AHEAD: usize = 4 << 20;
/// Smallest request of a non-sequential read (small reads are rounded up to it).
const MIN_READ: usize = 64 << 10;

/// How often a failed operation is tried again, and the pause before the first retry
/// (doubled each time): 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s ≈ 6 s in all.
pub(crate) const RETRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Whether a failure may go away by reconnecting and trying again.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Connection reset, timeout, server restarting: reconnect and retry.
    Transient(io::Error),
    /// The server answered with an error (no such file, permission denied, …): give up.
    Permanent(io::Error),
}

impl Fault {
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Fault::Transient(e) | Fault::Permanent(e) => e,
        }
    }
}

/// Runs `op` (given the attempt number, 0 first) until it succeeds, fails permanently, or
/// has failed transiently `RETRIES + 1` times; sleeps with exponential backoff in between.
pub(crate) fn retry<T>(mut op: impl FnMut(u32) -> std::result::Result<T, Fault>) -> io::Result<T> {
    let mut pause = FIRST_BACKOFF;
    let mut attempt = 0;
    loop {
        match op(attempt) {
            Ok(v) => return Ok(v),
            Err(Fault::Permanent(e)) => return Err(e),
            Err(Fault::Transient(e)) if attempt >= RETRIES => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{e} (gave up after {} attempts)", attempt + 1),
                ))
            }
            Err(Fault::Transient(_)) => {
                std::thread::sleep(pause);
                pause *= 2;
                attempt += 1;
            }
        }
    }
}

/// One open remote file, positional I/O with reconnect-and-retry inside.
pub(crate) trait RemoteFile: Send + Sync + 'static {
    /// Writes all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Fills `buf` from `offset` (the caller keeps within the file's length).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Makes what was written durable (SMB flush, NFS commit) and closes the file.
    fn finish(&self) -> io::Result<()>;
    /// The file as the operator would name it (address + path), for errors.
    fn label(&self) -> String;
}

pub(crate) fn io_err(path: String, source: io::Error) -> RepoError {
    RepoError::Io { path, source }
}

type Job = (u64, Vec<u8>);

/// A [`BackendWrite`] that cuts the stream into chunks and writes them from worker threads,
/// so that up to `WORKERS` writes are on the wire while the caller compresses the next bytes.
pub(crate) struct PipelinedWriter<F: RemoteFile> {
    file: Arc<F>,
    chunk: usize,
    buf: Vec<u8>,
    next: u64,
    tx: Option<SyncSender<Job>>,
    free: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<F: RemoteFile> PipelinedWriter<F> {
    pub(crate) fn new(file: F, chunk: usize) -> Self {
        let file = Arc::new(file);
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let (free_tx, free) = sync_channel::<Vec<u8>>(QUEUE + WORKERS + 1);
        let rx = Arc::new(Mutex::new(rx));
        let error: Arc<Mutex<Option<io::Error>>> = Arc::new(Mutex::new(None));
        let workers = (0..WORKERS)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let file = Arc::clone(&file);
                let error = Arc::clone(&error);
                let free_tx = free_tx.clone();
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok((off, data)) = job else { return };
                    let failed = error.lock().map(|e| e.is_some()).unwrap_or(true);
                    if !failed {
                        if let Err(e) = file.write_all_at(&data, off) {
                            if let Ok(mut slot) = error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                    let _ = free_tx.try_send(data);
                })
            })
            .collect();
        PipelinedWriter {
            file,
            chunk,
            buf: Vec::with_capacity(chunk),
            next: 0,
            tx: Some(tx),
            free,
            workers,
            error,
        }
    }

    fn take_error(&self) -> Option<io::Error> {
        match self.error.lock() {
            Ok(mut e) => e.take(),
            Err(_) => Some(io::Error::other("a writer thread panicked")),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if let Some(e) = self.take_error() {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", self.file.label()),
            ));
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut fresh = self.free.try_recv().unwrap_or_default();
        fresh.clear();
        fresh.reserve(self.chunk);
        let data = std::mem::replace(&mut self.buf, fresh);
        let len = data.len() as u64;
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("writer already finished"))?;
        tx.send((self.next, data))
            .map_err(|_| io::Error::other("the writer threads stopped"))?;
        self.next += len;
        Ok(())
    }

    fn stop_workers(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<F: RemoteFile> Write for PipelinedWriter<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: RemoteFile> BackendWrite for PipelinedWriter<F> {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let label = self.file.label();
        if let Some(e) = self.take_error() {
            self.stop_workers();
            return Err(io_err(label, e));
        }
        let sent = self.send_buf();
        self.stop_workers();
        if let Some(e) = self.take_error() {
            return Err(io_err(label, e));
        }
        sent.map_err(|e| io_err(label.clone(), e))?;
        self.file.finish().map_err(|e| io_err(label, e))
    }
}

impl<F: RemoteFile> Drop for PipelinedWriter<F> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

struct Window {
    start: u64,
    data: Vec<u8>,
}

/// A [`ReadAt`] over a remote file: sequential reads are served from a read-ahead window
/// fetched in `piece`-sized requests by up to `WORKERS` threads at once.
pub(crate) struct ReadAhead<F: RemoteFile> {
    file: Arc<F>,
    len: u64,
    piece: usize,
    window: Mutex<Window>,
}

impl<F: RemoteFile> ReadAhead<F> {
    pub(crate) fn new(file: F, len: u64, piece: usize) -> Self {
        ReadAhead {
            file: Arc::new(file),
            len,
            piece: piece.max(4096),
            window: Mutex::new(Window {
                start: 0,
                data: Vec::new(),
            }),
        }
    }

    /// Reads `buf` at `offset` with requests of at most `piece` bytes, several at once;
    /// errors name the file.
    fn fetch(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fetch_pieces(buf, offset)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.file.label())))
    }

    fn fetch_pieces(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let piece = self.piece;
        if buf.len() <= piece {
            return self.file.read_exact_at(buf, offset);
        }
        let file = &self.file;
        let pieces: Vec<(u64, &mut [u8])> = buf
            .chunks_mut(piece)
            .enumerate()
            .map(|(i, c)| (offset + (i * piece) as u64, c))
            .collect();
        let per = pieces.len().div_ceil(WORKERS);
        let mut groups: Vec<Vec<(u64, &mut [u8])>> = Vec::new();
        let mut it = pieces.into_iter().peekable();
        while it.peek().is_some() {
            groups.push(it.by_ref().take(per).collect());
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|g| {
                    s.spawn(move || -> io::Result<()> {
                        for (off, c) in g {
                            file.read_exact_at(c, off)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            let mut first = Ok(());
            for h in handles {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a reader thread panicked")));
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
    }
}

impl<F: RemoteFile> ReadAt for ReadAhead<F> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: read of {} bytes at offset {offset} passes the end ({} bytes)",
                        self.file.label(),
                        buf.len(),
                        self.len
                    ),
                )
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut w = self
            .window
            .lock()
            .map_err(|_| io::Error::other("read-ahead lock poisoned"))?;
        let w_end = w.start + w.data.len() as u64;
        if offset >= w.start && end <= w_end {
            let at = (offset - w.start) as usize;
            buf.copy_from_slice(&w.data[at..at + buf.len()]);
            return Ok(());
        }
        if buf.len() >= READ_AHEAD {
            drop(w);
            return self.fetch(buf, offset);
        }
        // Sequential (this read starts where the window ends, or inside it): fetch a whole
        // window ahead; otherwise only what was asked, rounded up a little.
        let sequential = !w.data.is_empty() && offset >= w.start && offset <= w_end;
        let want = if sequential {
            READ_AHEAD
        } else {
            buf.len().max(MIN_READ)
        };
        let n = (want as u64).min(self.len - offset) as usize;
        let mut data = std::mem::take(&mut w.data);
        data.clear();
        data.resize(n, 0);
        if let Err(e) = self.fetch(&mut data, offset) {
            w.start = 0;
            return Err(e);
        }
        buf.copy_from_slice(&data[..buf.len()]);
        w.start = offset;
        w.data = data;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An in-memory remote file whose first `fail` operations fail transiently.
    struct MemFile {
        data: Mutex<Vec<u8>>,
        fail: AtomicU32,
        reads: AtomicU32,
        finished: AtomicU32,
    }

    impl MemFile {
        fn new(len: usize, fail: u32) -> Self {
            MemFile {
                data: Mutex::new(vec![0; len]),
                fail: AtomicU32::new(fail),
                reads: AtomicU32::new(0),
                finished: AtomicU32::new(0),
            }
        }
        fn flaky(&self) -> io::Result<()> {
            let left = self.fail.load(Ordering::SeqCst);
            if left > 0 {
                self.fail.store(left - 1, Ordering::SeqCst);
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            Ok(())
        }
    }

    impl RemoteFile for Arc<MemFile> {
        fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
            retry(|_| self.flaky().map_err(Fault::Transient))?;
            let mut d = self.data.lock().unwrap();
            let end = offset as usize + data.len();
            if d.len() < end {
                d.resize(end, 0);
            }
            d[offset as usize..end].copy_from_slice(data);
            Ok(())
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            retry(|_| self.flaky().map_err(Fault::Transient))?;
            self.reads.fetch_add(1, Ordering::SeqCst);
            let d = self.data.lock().unwrap();
            buf.copy_from_slice(&d[offset as usize..offset as usize + buf.len()]);
            Ok(())
        }
        fn finish(&self) -> io::Result<()> {
            self.finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn label(&self) -> String {
            "mem://x/file".into()
        }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn pipelined_writes_land_in_order_despite_transient_faults() {
        let f = Arc::new(MemFile::new(0, 3));
        let mut w = Box::new(PipelinedWriter::new(Arc::clone(&f), 4096));
        let src = pattern(100_000);
        for c in src.chunks(777) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(*f.data.lock().unwrap(), src);
        assert_eq!(f.finished.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_permanent_fault_fails_the_writer_with_the_file_name() {
        let f = Arc::new(MemFile::new(0, 100));
        let mut w = Box::new(PipelinedWriter::new(Arc::clone(&f), 4096));
        let src = pattern(64 << 10);
        let mut failed = None;
        for c in src.chunks(4096) {
            if let Err(e) = w.write_all(c) {
                failed = Some(e.to_string());
                break;
            }
        }
        let msg = match failed {
            Some(m) => m,
            None => w.finish().unwrap_err().to_string(),
        };
        assert!(msg.contains("mem://x/file"), "{msg}");
        assert!(msg.contains("gave up after"), "{msg}");
    }

    #[test]
    fn read_ahead_serves_sequential_and_random_reads() {
        let src = pattern(10 << 20);
        let f = Arc::new(MemFile::new(0, 0));
        *f.data.lock().unwrap() = src.clone();
        let r = ReadAhead::new(Arc::clone(&f), src.len() as u64, 1 << 20);
        let mut buf = vec![0u8; 100_000];
        let mut off = 0usize;
        while off + buf.len() <= src.len() {
            r.read_exact_at(&mut buf, off as u64).unwrap();
            assert_eq!(buf, src[off..off + buf.len()]);
            off += buf.len();
        }
        // About 10 MiB in 1 MiB requests, not one request per 100 kB read.
        let reads = f.reads.load(Ordering::SeqCst);
        assert!(reads <= 16, "{reads} requests for sequential reads");
        let mut small = [0u8; 10];
        r.read_exact_at(&mut small, 12345).unwrap();
        assert_eq!(small, src[12345..12355]);
        assert!(r.read_exact_at(&mut small, src.len() as u64 - 5).is_err());
    }
}
