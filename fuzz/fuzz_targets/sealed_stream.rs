//! Fuzzes the sealed (encrypted) image stream of format 2.0: the header parser on the raw
//! input, then the input as the segments of a stream under a fixed key, read both front to
//! back (`OpenReader`) and by position (`OpenAt`).
//!
//! Nothing may panic or allocate beyond the header's bounds, and nothing the fuzzer makes may
//! open: without the key, no segment can pass its tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_container::seal::{KdfParams, Keys, OpenAt, OpenReader, SealHeader};
use lifeboat_fs::ReadAt;
use std::io::Read;
use std::sync::{Arc, OnceLock};

fn keys() -> Arc<Keys> {
    static KEYS: OnceLock<Arc<Keys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cheap = KdfParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        };
        Arc::new(Keys::create(b"fuzz", [0x5e; 16], cheap).expect("keys"))
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = SealHeader::decode(data) {
        let _ = h.plain_len(data.len() as u64);
        let _ = h.plain_len(u64::MAX);
        assert_eq!(SealHeader::decode(&h.encode()).ok(), Some(h));
    }
    let k = keys();
    let mut plain = Vec::new();
    let read = OpenReader::new(data, Arc::clone(&k)).read_to_end(&mut plain);
    assert!(read.is_err(), "a forged stream opened");
    let mut sealed = k.header().encode().to_vec();
    sealed.extend_from_slice(data);
    if let Ok(at) = OpenAt::new(sealed, k) {
        let n = (at.len() as usize).min(1 << 16);
        let mut buf = vec![0u8; n];
        if n > 0 {
            assert!(
                at.read_exact_at(&mut buf, 0).is_err(),
                "a forged segment opened"
            );
        }
    }
});
