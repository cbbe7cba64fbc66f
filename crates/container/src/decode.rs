//! Parallel decompression of a container stream, delivered in stream order.

use crate::error::ContainerError;
use crate::reader::{EncodedChunk, Record, StreamReader};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

/// A record delivered by [`decode_parallel`].
#[derive(Debug)]
pub enum Decoded<'a> {
    /// The descriptions of all disks (format 1.1; only in images of two or more disks).
    DiskList {
        /// Number of disks.
        disks: u32,
        /// A JSON array of disk descriptions.
        json: &'a [u8],
    },
    /// Disk `index` starts.
    Disk {
        /// Disk index.
        index: u32,
        /// Its description JSON.
        json: &'a [u8],
    },
    /// A decompressed, checksum-verified chunk.
    Chunk {
        /// The chunk as stored (extents, header, position); its payload has already been
        /// handed back to the reader and is empty here.
        chunk: &'a EncodedChunk,
        /// Its data, `chunk.header.data_len` bytes, laid out extent after extent.
        data: &'a [u8],
    },
    /// The manifest JSON.
    Manifest(&'a [u8]),
    /// The end of the stream; everything was verified.
    End(crate::format::Tail),
}

/// Why [`decode_parallel`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError<E> {
    /// The container is damaged or could not be read.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The consumer returned an error.
    #[error("{0}")]
    Sink(E),
}

/// Work done on a decompressing thread for each verified chunk (see
/// [`decode_parallel_with`]).
pub type ChunkWorker<'a, E> =
    dyn Fn(&EncodedChunk, &[u8]) -> std::result::Result<(), E> + Sync + 'a;

enum Out<E> {
    Rec(Record),
    Chunk(EncodedChunk, Vec<u8>),
    Err(ContainerError),
    WorkerErr(E),
}

/// Reads `reader` to its end, decompressing chunks on `threads` threads, and hands every
/// record to `sink` in stream order in the calling thread. Stops at the first damaged record,
/// when `sink` fails, or when `cancel` becomes true. Memory is bounded by a few chunks per
/// thread.
pub fn decode_parallel<R, E>(
    reader: StreamReader<R>,
    threads: usize,
    cancel: &AtomicBool,
    sink: impl FnMut(Decoded<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(), DecodeError<E>>
where
    R: Read + Send,
    E: Send,
{
    decode_parallel_with(reader, threads, cancel, &|_, _| Ok(()), sink)
}

/// Like [`decode_parallel`], and also calls `worker(chunk, data)` on the decompressing
/// thread for each verified chunk, as soon as it is decoded and in no particular order —
/// for work that need not wait its turn, such as writing the chunk's extents to disjoint
/// places of a disk. `sink` still sees every record in order, after `worker` is done with it.
pub fn decode_parallel_with<R, E>(
    reader: StreamReader<R>,
    threads: usize,
    cancel: &AtomicBool,
    worker: &ChunkWorker<'_, E>,
    mut sink: impl FnMut(Decoded<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(), DecodeError<E>>
where
    R: Read + Send,
    E: Send,
{
    let threads = threads.max(1);
    // The channels live inside the scope's closure: when it returns early (a damaged chunk, a
    // failing sink), they are dropped before the scope joins the threads, which then see
    // their peers gone and stop instead of blocking forever.
    std::thread::scope(|s| {
        let (job_tx, job_rx) = bounded::<(u64, EncodedChunk, Vec<u8>)>(threads);
        let (out_tx, out_rx) = bounded::<(u64, Out<E>)>(threads * 2);
        let (free_tx, free_rx) = bounded::<Vec<u8>>(threads * 3);
        // Payload buffers go back to the reader once their chunk is decoded.
        let (spent_tx, spent_rx) = bounded::<Vec<u8>>(threads * 3);
        // One token per chunk in flight (queued, decompressing, or waiting for its turn);
        // the consumer hands a token back for every chunk it has processed.
        let in_flight = threads * 3 + 2;
        let (permit_tx, permit_rx) = bounded::<()>(in_flight);
        for _ in 0..in_flight {
            permit_tx.send(()).expect("the permit channel has room");
        }
        for _ in 0..threads {
            let job_rx: Receiver<(u64, EncodedChunk, Vec<u8>)> = job_rx.clone();
            let out_tx: Sender<(u64, Out<E>)> = out_tx.clone();
            let spent_tx = spent_tx.clone();
            s.spawn(move || {
                for (order, mut chunk, mut buf) in job_rx {
                    let out = match chunk.take_decoded(&mut buf) {
                        Ok(()) => match worker(&chunk, &buf) {
                            Ok(()) => {
                                let _ = spent_tx.try_send(std::mem::take(&mut chunk.payload));
                                Out::Chunk(chunk, buf)
                            }
                            Err(e) => Out::WorkerErr(e),
                        },
                        Err(e) => Out::Err(e),
                    };
                    if out_tx.send((order, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(job_rx);
        drop(spent_tx);
        let reader_tx = out_tx.clone();
        drop(out_tx);
        s.spawn(move || {
            let mut reader = reader;
            let mut order = 0u64;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    let _ = reader_tx.send((order, Out::Err(ContainerError::Cancelled)));
                    return;
                }
                while let Ok(b) = spent_rx.try_recv() {
                    reader.recycle(b);
                }
                let rec = reader.next_record();
                let sent = match rec {
                    Ok(Some(Record::Chunk(c))) => {
                        if permit_rx.recv().is_err() {
                            return;
                        }
                        let buf = free_rx.try_recv().unwrap_or_default();
                        job_tx.send((order, c, buf)).is_ok()
                    }
                    Ok(Some(r)) => reader_tx.send((order, Out::Rec(r))).is_ok(),
                    Ok(None) => return,
                    Err(e) => {
                        let _ = reader_tx.send((order, Out::Err(e)));
                        return;
                    }
                };
                if !sent {
                    return;
                }
                order += 1;
            }
        });
        let mut next = 0u64;
        let mut waiting: BTreeMap<u64, Out<E>> = BTreeMap::new();
        let mut ended = false;
        for (order, out) in out_rx.iter() {
            waiting.insert(order, out);
            while let Some(out) = waiting.remove(&next) {
                next += 1;
                let r = match out {
                    Out::Err(e) => return Err(DecodeError::Container(e)),
                    Out::WorkerErr(e) => return Err(DecodeError::Sink(e)),
                    Out::Chunk(chunk, data) => {
                        let r = sink(Decoded::Chunk {
                            chunk: &chunk,
                            data: &data,
                        });
                        let _ = free_tx.try_send(data);
                        let _ = permit_tx.try_send(());
                        r
                    }
                    Out::Rec(Record::Disk { index, json }) => {
                        sink(Decoded::Disk { index, json: &json })
                    }
                    Out::Rec(Record::Manifest(json)) => sink(Decoded::Manifest(&json)),
                    Out::Rec(Record::DiskList { disks, json }) => {
                        sink(Decoded::DiskList { disks, json: &json })
                    }
                    Out::Rec(Record::Tail(t)) => {
                        ended = true;
                        sink(Decoded::End(t))
                    }
                    Out::Rec(_) => Ok(()),
                };
                r.map_err(DecodeError::Sink)?;
            }
        }
        if ended {
            Ok(())
        } else {
            Err(DecodeError::Container(ContainerError::Usage(
                "the container reader stopped before the end of the stream".into(),
            )))
        }
    })
}
