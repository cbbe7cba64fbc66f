//! Benchmarks of lifeboat (no library code): `cargo bench -p lifeboat-benches`; see `benches/`.
