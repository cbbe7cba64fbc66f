//! What the file-protocol backends (SMB, NFS) share: a writer that keeps several positional
//! writes in flight while the caller produces the next bytes, and bounded retries with
//! backoff. (Their readers use the read-ahead of [`crate::readahead`].)
//!
//! Memory is bounded: a writer holds at most `(QUEUE + WORKERS + 1) × chunk` bytes.

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

/// One remote file open for writing, positional writes with reconnect-and-retry inside.
pub(crate) trait RemoteFile: Send + Sync + 'static {
    /// Writes all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// An in-memory remote file whose first `fail` operations fail transiently.
    struct MemFile {
        data: Mutex<Vec<u8>>,
        fail: AtomicU32,
        finished: AtomicU32,
    }

    impl MemFile {
        fn new(len: usize, fail: u32) -> Self {
            MemFile {
                data: Mutex::new(vec![0; len]),
                fail: AtomicU32::new(fail),
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
}
