//! Fuzzes the lease file of an image being saved (`.lifeboat-lease`, docs/FORMAT.md §12.3):
//! whatever a repository holds, parsing is bounded and never panics, and what parses writes
//! back to a lease that parses to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_repo::Lease;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Lease::parse(data) {
        let again = Lease::parse(&l.to_bytes()).expect("a written lease parses");
        assert_eq!(
            (again.pid, again.started, again.heartbeat),
            (l.pid, l.started, l.heartbeat)
        );
        let _ = l.is_live();
    }
});
