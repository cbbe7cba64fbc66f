//! Positional reads over a network with a small read-ahead window for sequential access.
//!
//! The restore reads an image's volumes front to back in 1 MiB pieces (and the container index
//! at random places). Each network round trip costs latency, so when reads follow each other,
//! the next few blocks are fetched in the background while the caller decompresses the current
//! one. Memory is bounded: at most `depth` blocks of `block` bytes are held per open file.
//! Random reads go straight to the server and leave the window alone.
//!
//! Shared by the four backends (and usable by any backend with a ranged-read primitive).

use lifeboat_fs::ReadAt;
use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

/// The bytes of one fetched range, in order, in one or more pieces: a backend whose protocol
/// answers a range in several messages hands on each message's data as it came, instead of
/// joining them into a new buffer only to copy them out again.
pub(crate) type Pieces = Vec<Vec<u8>>;

/// Fetches `len` bytes at `offset` (the whole range, or an error).
pub(crate) type Fetch = dyn Fn(u64, usize) -> io::Result<Pieces> + Send + Sync;

fn total(pieces: &[Vec<u8>]) -> usize {
    pieces.iter().map(Vec::len).sum()
}

/// Copies `dst.len()` bytes from `pieces`, starting `from` bytes into them; the caller
/// checked that they hold that many.
fn copy_out(pieces: &[Vec<u8>], mut from: usize, dst: &mut [u8]) {
    let mut at = 0;
    for p in pieces {
        if at == dst.len() {
            break;
        }
        if from >= p.len() {
            from -= p.len();
            continue;
        }
        let n = (p.len() - from).min(dst.len() - at);
        dst[at..at + n].copy_from_slice(&p[from..from + n]);
        at += n;
        from = 0;
    }
}

enum Block {
    Pending(Receiver<io::Result<Pieces>>),
    Ready(Pieces),
}

struct Slot {
    off: u64,
    len: usize,
    block: Block,
}

impl Slot {
    fn data(&mut self) -> io::Result<&[Vec<u8>]> {
        if let Block::Pending(rx) = &self.block {
            let got = rx
                .recv()
                .map_err(|_| io::Error::other("background read ended without an answer"))??;
            if total(&got) != self.len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "server returned {} bytes at offset {}, expected {}",
                        total(&got),
                        self.off,
                        self.len
                    ),
                ));
            }
            self.block = Block::Ready(got);
        }
        match &self.block {
            Block::Ready(v) => Ok(v),
            Block::Pending(_) => unreachable!("just made ready"),
        }
    }
}

#[derive(Default)]
struct Window {
    /// End of the last read, to recognise the next sequential one.
    last_end: u64,
    /// Blocks in file order, contiguous.
    slots: VecDeque<Slot>,
}

/// A [`ReadAt`] over a ranged-read function, with read-ahead for sequential reads.
pub(crate) struct ReadAhead {
    fetch: Arc<Fetch>,
    len: u64,
    block: usize,
    depth: usize,
    window: Mutex<Window>,
}

impl ReadAhead {
    /// `block` bytes per background fetch, at most `depth` blocks held.
    pub(crate) fn new(fetch: Arc<Fetch>, len: u64, block: usize, depth: usize) -> Self {
        ReadAhead {
            fetch,
            len,
            block: block.max(4096),
            depth: depth.max(1),
            window: Mutex::new(Window::default()),
        }
    }

    fn spawn(&self, off: u64) -> Slot {
        let len = (self.len - off).min(self.block as u64) as usize;
        let (tx, rx) = sync_channel(1);
        let fetch = Arc::clone(&self.fetch);
        std::thread::spawn(move || {
            let _ = tx.send(fetch(off, len));
        });
        Slot {
            off,
            len,
            block: Block::Pending(rx),
        }
    }

    /// Keeps blocks from `pos` on, scheduled up to `depth` blocks.
    fn top_up(&self, w: &mut Window, pos: u64) {
        while w.slots.front().is_some_and(|s| s.off + s.len as u64 <= pos) {
            w.slots.pop_front();
        }
        if w.slots.front().is_some_and(|s| s.off > pos) {
            w.slots.clear();
        }
        let mut next = match w.slots.back() {
            Some(s) => s.off + s.len as u64,
            None => pos,
        };
        while w.slots.len() < self.depth && next < self.len {
            let s = self.spawn(next);
            next += s.len as u64;
            w.slots.push_back(s);
        }
    }
}

impl ReadAt for ReadAhead {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at offset {offset} passes the end ({} bytes)",
                        buf.len(),
                        self.len
                    ),
                )
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let in_window = w
            .slots
            .front()
            .is_some_and(|s| s.off <= offset && offset < s.off + s.len as u64);
        if offset != w.last_end && !in_window {
            // Random access: straight to the server, window untouched.
            drop(w);
            let got = (self.fetch)(offset, buf.len())?;
            if total(&got) != buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short read at offset {offset}"),
                ));
            }
            copy_out(&got, 0, buf);
            return Ok(());
        }
        let mut pos = offset;
        while pos < end {
            self.top_up(&mut w, pos);
            let slot = match w.slots.front_mut() {
                Some(s) => s,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("byte {pos} is past the end"),
                    ))
                }
            };
            let (s_off, s_len) = (slot.off, slot.len);
            let data = match slot.data() {
                Ok(d) => d,
                Err(e) => {
                    w.slots.clear();
                    w.last_end = u64::MAX;
                    return Err(e);
                }
            };
            let from = (pos - s_off) as usize;
            let n = (s_len - from).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            copy_out(data, from, &mut buf[at..at + n]);
            pos += n as u64;
        }
        w.last_end = end;
        self.top_up(&mut w, end);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn source(n: usize) -> (Arc<Vec<u8>>, Arc<AtomicUsize>, ReadAhead) {
        let data: Arc<Vec<u8>> = Arc::new((0..n).map(|i| (i * 7 % 251) as u8).collect());
        let calls = Arc::new(AtomicUsize::new(0));
        let (d, c) = (Arc::clone(&data), Arc::clone(&calls));
        let f: Arc<Fetch> = Arc::new(move |off, len| {
            c.fetch_add(1, Ordering::SeqCst);
            // In uneven pieces, as a backend answering in several messages returns them.
            let range = &d[off as usize..off as usize + len];
            Ok(range.chunks(1000).map(<[u8]>::to_vec).collect())
        });
        let ra = ReadAhead::new(f, n as u64, 4096, 3);
        (data, calls, ra)
    }

    #[test]
    fn sequential_and_random_reads_return_the_bytes() {
        let (data, calls, ra) = source(100_000);
        let total = Vec::len(&data);
        let mut pos = 0usize;
        let mut buf = vec![0u8; 1000];
        while pos < total {
            let n = (total - pos).min(1000);
            ra.read_exact_at(&mut buf[..n], pos as u64).unwrap();
            assert_eq!(&buf[..n], &data[pos..pos + n]);
            pos += n;
        }
        // 100 000 bytes in 4096-byte blocks: 25 fetches, not 100.
        assert!(calls.load(Ordering::SeqCst) <= 26, "{calls:?}");
        for off in [99_000u64, 5, 50_000, 4095] {
            ra.read_exact_at(&mut buf[..1000], off).unwrap();
            assert_eq!(&buf[..1000], &data[off as usize..off as usize + 1000]);
        }
        assert!(ra.read_exact_at(&mut buf[..2], 99_999).is_err());
    }

    #[test]
    fn errors_reach_the_caller() {
        let f: Arc<Fetch> = Arc::new(|_, _| Err(io::Error::other("gone")));
        let ra = ReadAhead::new(f, 10_000, 4096, 2);
        let mut b = [0u8; 10];
        assert!(ra.read_exact_at(&mut b, 0).is_err());
        assert!(ra.read_exact_at(&mut b, 10).is_err());
    }

    proptest::proptest! {
        /// Any range of any cut into pieces comes out as the same range of the joined bytes.
        #[test]
        fn copy_out_reads_across_pieces(
            sizes in proptest::collection::vec(0usize..50, 0..12),
            start in 0usize..600,
            want in 0usize..600,
        ) {
            let mut n = 0u8;
            let pieces: Pieces = sizes
                .iter()
                .map(|&k| (0..k).map(|_| { n = n.wrapping_add(1); n }).collect())
                .collect();
            let joined: Vec<u8> = pieces.concat();
            let from = start.min(joined.len());
            let len = want.min(joined.len() - from);
            let mut dst = vec![0u8; len];
            copy_out(&pieces, from, &mut dst);
            proptest::prop_assert_eq!(&dst[..], &joined[from..from + len]);
        }
    }
}
