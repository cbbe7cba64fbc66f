//! The global allocator of the `lifeboat` binary: mimalloc.
//!
//! The save and restore pipelines allocate and free 4 MiB chunk buffers on several threads
//! at once. musl's allocator serialises that behind one lock and hands freed chunks back to
//! the kernel, which made the static (musl) build 20–30 % slower than the glibc build on a
//! save. mimalloc keeps per-thread heaps and reuses freed buffers; the static and the glibc
//! build both use it, so they allocate alike (docs/PERFORMANCE.md).

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;
