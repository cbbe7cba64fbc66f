//! Fuzzes the disk list record body (`DLST`): the first input byte is the number of disks the
//! record header announces, the rest is the JSON body.
//!
//! Nothing may panic; a list that parses has exactly the announced number of valid records,
//! numbered in order, serialises again and parses back to an equal list, and the second
//! serialisation is byte-identical to the first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_container::DiskRecord;

fuzz_target!(|data: &[u8]| {
    let Some((&disks, json)) = data.split_first() else {
        return;
    };
    if let Ok(list) = DiskRecord::list_from_json(json, u32::from(disks), 0) {
        assert_eq!(list.len(), usize::from(disks));
        for (i, d) in list.iter().enumerate() {
            assert_eq!(d.index as usize, i, "disk list out of order");
            assert!(d.validate().is_ok(), "an invalid disk record was accepted");
        }
        let again = DiskRecord::list_to_json(&list);
        let back = DiskRecord::list_from_json(&again, u32::from(disks), 0)
            .expect("a serialised disk list parses again");
        assert_eq!(list, back, "disk list does not round-trip");
        assert_eq!(
            again,
            DiskRecord::list_to_json(&back),
            "serialisation is not stable"
        );
    }
});
