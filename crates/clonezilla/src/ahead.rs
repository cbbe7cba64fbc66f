//! Decompression ahead of the reader, on its own thread: Clonezilla's own pipeline runs the
//! decompressor as a separate process (`zstd -dc … | partclone.<fs> -r`), so that decoding
//! and checking/writing use two cores; [`ReadAhead`] does the same within one process.
//! Memory is bounded: at most `DEPTH` buffers of `BUF` bytes are in flight.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per buffer handed from the decoding thread.
pub const BUF: usize = 1 << 20;
/// Buffers in flight.
pub const DEPTH: usize = 4;

/// A reader whose source is read on a background thread.
pub struct ReadAhead {
    rx: Receiver<io::Result<Vec<u8>>>,
    /// Buffers are sent back to be reused.
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
    done: bool,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading `src` on a new thread.
    pub fn new(mut src: Box<dyn Read + Send>) -> io::Result<ReadAhead> {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        let (back, spare) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let thread = std::thread::Builder::new()
            .name("clonezilla-decode".into())
            .spawn(move || loop {
                let mut buf = spare.try_recv().unwrap_or_default();
                buf.resize(BUF, 0);
                let mut n = 0;
                let res = loop {
                    if n == buf.len() {
                        break Ok(());
                    }
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n == 0;
                let msg = match res {
                    Err(e) => Err(e),
                    Ok(()) => Ok(buf),
                };
                let failed = msg.is_err();
                // The reader was dropped: stop.
                if tx.send(msg).is_err() || end || failed {
                    return;
                }
            })?;
        Ok(ReadAhead {
            rx,
            back,
            cur: Vec::new(),
            at: 0,
            done: false,
            thread: Some(thread),
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) if buf.is_empty() => self.done = true,
                Ok(Ok(buf)) => {
                    let old = std::mem::replace(&mut self.cur, buf);
                    let _ = self.back.try_send(old);
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decoding thread stopped"));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.at);
        out[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Unblock the thread (its send fails once the receiver is gone), then wait for it.
        let (_, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_everything_in_order_and_errors() {
        let data: Vec<u8> = (0..(3 * BUF + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut r = ReadAhead::new(Box::new(io::Cursor::new(data.clone()))).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(out == data);
        struct Bad;
        impl Read for Bad {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "bad"))
            }
        }
        let mut r = ReadAhead::new(Box::new(Bad)).unwrap();
        assert_eq!(
            r.read(&mut [0; 10]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Dropped early: the thread ends.
        drop(ReadAhead::new(Box::new(io::repeat(1))).unwrap());
    }
}
