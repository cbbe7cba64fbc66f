//! Fuzzes the manifest and disk-record JSON parsers: the input bytes are the JSON.
//!
//! Nothing may panic; whatever parses and validates must serialise again and parse back to an
//! equal value, and the second serialisation must be byte-identical to the first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_container::{DiskRecord, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data, 0) {
        let json = m.to_json();
        let again = Manifest::from_json(&json, 0).expect("a serialised manifest parses again");
        assert_eq!(m, again, "manifest does not round-trip");
        assert_eq!(
            json,
            again.to_json(),
            "manifest serialisation is not stable"
        );
        for d in &m.disks {
            let dj = serde_json::to_vec(d).expect("disk record serialises");
            let back = DiskRecord::from_json(&dj, 0).expect("a manifest's disk parses alone");
            assert_eq!(d, &back);
        }
    }
    if let Ok(d) = DiskRecord::from_json(data, 0) {
        let json = serde_json::to_vec(&d).expect("disk record serialises");
        let again = DiskRecord::from_json(&json, 0).expect("a serialised disk record parses");
        assert_eq!(d, again, "disk record does not round-trip");
        assert_eq!(json, serde_json::to_vec(&again).unwrap());
    }
});
