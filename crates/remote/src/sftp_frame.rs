//! A guard between the SSH channel and the SFTP client: every SFTP packet's length field is
//! checked before the client allocates a buffer of that size. The client library reads
//! packets of any length up to 4 GiB; a hostile or broken server could make each of them cost
//! that much memory.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest SFTP packet accepted from a server: a READ reply of the largest read lifeboat
/// asks for, or a directory listing reply, with room to spare.
pub(crate) const MAX_PACKET: u32 = 4 << 20;

/// Passes a stream through, following the SFTP framing (a big-endian u32 length, then that many
/// bytes) of what is read, and fails the read whose length field is above `max`.
pub(crate) struct Framed<S> {
    inner: S,
    max: u32,
    /// Bytes of the current packet still to pass (0: a length field comes next).
    remaining: u64,
    len: [u8; 4],
    len_have: usize,
}

impl<S> Framed<S> {
    pub(crate) fn new(inner: S, max: u32) -> Self {
        Framed {
            inner,
            max,
            remaining: 0,
            len: [0; 4],
            len_have: 0,
        }
    }

    /// Follows the framing over `bytes`, which were just read.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(bytes.len() as u64)) as usize;
                self.remaining -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            self.len[self.len_have] = bytes[0];
            self.len_have += 1;
            bytes = &bytes[1..];
            if self.len_have == 4 {
                self.len_have = 0;
                let len = u32::from_be_bytes(self.len);
                if len > self.max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the server sent an SFTP packet of {len} bytes (at most {} are accepted)",
                            self.max
                        ),
                    ));
                }
                self.remaining = u64::from(len);
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Framed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled()[before..].to_vec();
                let r = me.follow(&fresh);
                if r.is_err() {
                    // A failed read hands nothing on.
                    buf.set_filled(before);
                }
                Poll::Ready(r)
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Framed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn packet(len: u32, body: u8) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.extend(std::iter::repeat_n(body, len as usize));
        v
    }

    #[test]
    fn packets_within_the_bound_pass_and_a_larger_one_fails() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut ok = packet(10, 1);
            ok.extend(packet(100, 2));
            let mut f = Framed::new(&ok[..], 100);
            let mut out = Vec::new();
            f.read_to_end(&mut out).await.unwrap();
            assert_eq!(out, ok);
            // A length field split over reads, then one above the bound.
            let mut bad = packet(3, 7);
            bad.extend((u32::MAX).to_be_bytes());
            let mut f = Framed::new(tokio::io::BufReader::with_capacity(2, &bad[..]), 100);
            let mut out = Vec::new();
            let e = f.read_to_end(&mut out).await.unwrap_err();
            assert!(e.to_string().contains("4294967295"), "{e}");
        });
    }
}
