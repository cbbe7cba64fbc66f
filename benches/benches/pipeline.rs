//! Throughput of the chunk pipeline: `ImageWriter` packing, compressing (zstd-3) and writing
//! mixed data to `io::sink()`, and `decode_parallel` reading the container back, each with 1
//! and 2 threads.
//!
//! The data is `BENCH_MIB` MiB (default 64), laid out in 4 MiB pieces, one chunk each: half
//! text-like (compressible), a quarter random (stored as is), a quarter zeros (zero chunks).
//!
//!     cargo bench -p lifeboat-benches --bench pipeline
//!     BENCH_MIB=256 cargo bench -p lifeboat-benches --bench pipeline -- write
// criterion_group! generates a public function without documentation.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lifeboat_container::{decode_parallel, Decoded, ImageWriter, StreamReader, WriterOptions};
use lifeboat_fs::Extent;
use std::hint::black_box;
use std::io;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const PIECE: usize = 4 << 20;

/// Deterministic pseudo-random bytes (xorshift64*).
fn fill_random(out: &mut [u8], mut seed: u64) {
    for c in out.chunks_mut(8) {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let v = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

/// Log-like text: repetitive words with changing numbers (zstd-3 gets roughly 4-6x on it).
fn fill_text(out: &mut [u8], seed: u64) {
    const WORDS: [&str; 12] = [
        "kernel",
        "usb",
        "device",
        "mounted",
        "error",
        "info",
        "connection",
        "from",
        "port",
        "session",
        "opened",
        "closed",
    ];
    let mut s = seed | 1;
    let mut text = Vec::with_capacity(out.len() + 128);
    let mut line = 0u64;
    while text.len() < out.len() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        text.extend_from_slice(
            format!("2025-01-01T00:{:02}:{:02} host ", line / 60 % 60, line % 60).as_bytes(),
        );
        for k in 0..6 {
            text.extend_from_slice(WORDS[((s >> (k * 5)) % 12) as usize].as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(format!("id={}\n", s % 100_000).as_bytes());
        line += 1;
    }
    out.copy_from_slice(&text[..out.len()]);
}

/// `mib` MiB of mixed data: per 4 MiB piece, text, random, text, zeros, repeating.
fn mixed(mib: usize) -> Vec<u8> {
    let mut data = vec![0u8; mib << 20];
    for (i, piece) in data.chunks_mut(PIECE).enumerate() {
        match i % 4 {
            0 | 2 => fill_text(piece, i as u64 + 1),
            1 => fill_random(piece, i as u64 + 1),
            _ => {}
        }
    }
    data
}

fn options(threads: usize) -> WriterOptions {
    WriterOptions {
        threads,
        image_id: [7; 16],
        ..WriterOptions::default()
    }
}

/// Writes `data` as one disk of one extent into `out` with `threads` compression threads.
fn write<W: io::Write + Send + 'static>(out: W, data: &[u8], threads: usize) -> W {
    let mut w = ImageWriter::new(out, options(threads)).expect("writer starts");
    w.begin_disk(0, b"{}".to_vec()).expect("disk begins");
    w.add_extent(Extent::new(0, data.len() as u64), |buf, off| {
        let o = off as usize;
        buf.copy_from_slice(&data[o..o + buf.len()]);
        Ok(())
    })
    .expect("data is added");
    w.finish(|_| Ok(b"{}".to_vec()))
        .expect("container finishes")
        .0
}

fn pipeline(c: &mut Criterion) {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let data = mixed(mib);
    let image = write(Vec::new(), &data, 2);
    eprintln!(
        "pipeline: {mib} MiB of mixed data -> {} bytes of container ({:.2}x)",
        image.len(),
        data.len() as f64 / image.len() as f64
    );

    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for threads in [1, 2] {
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &t| {
            b.iter(|| write(io::sink(), black_box(&data), t))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decode_parallel");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for threads in [1, 2] {
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &t| {
            b.iter(|| {
                let cancel = AtomicBool::new(false);
                let r = StreamReader::new(black_box(&image[..])).expect("header reads");
                let mut bytes = 0u64;
                decode_parallel(r, t, &cancel, |d| -> Result<(), ()> {
                    if let Decoded::Chunk { data, .. } = d {
                        bytes += black_box(data).len() as u64;
                    }
                    Ok(())
                })
                .expect("container decodes");
                assert_eq!(bytes, data.len() as u64);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
