//! Fuzzes the parsers of `/proc/self/mountinfo` and `/proc/swaps` (crates/blockdev/src/
//! usage.rs), which decide whether a disk is in use before it is written. Nothing may panic on
//! any text; every entry comes from one line, and a path whose line has no escape is taken as
//! written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_blockdev::fuzzing::{mountinfo, swaps};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let mounts = mountinfo(&text);
    assert!(mounts.len() <= lines);
    for (_, point, _, source, fstype, _) in &mounts {
        assert!(!fstype.contains(char::is_whitespace));
        assert!(!source.contains([' ', '\t']) || text.contains('\\'));
        assert!(point.as_os_str().len() <= text.len());
    }
    let swap = swaps(&text);
    assert!(swap.len() <= lines.saturating_sub(1));
    for ((path, _), line) in swap.iter().zip(
        text.lines()
            .skip(1)
            .filter(|l| l.split_whitespace().next().is_some()),
    ) {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.contains('\\') {
            assert_eq!(path, Path::new(first));
        }
    }
});
