//! The global allocator of the `lifeboat` binary: mimalloc.
//!
//! The save and restore pipelines allocate and free 4 MiB chunk buffers on several threads
//! at once. musl's allocator serialises that behind one lock and returns freed chunks to the
//! kernel, which made the static (musl) build 20–30 % slower than the glibc build on a save;
//! mimalloc keeps per-thread heaps and is as fast as glibc's allocator or faster, so both
//! builds use it and behave the same (docs/PERFORMANCE.md has the numbers).

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;
