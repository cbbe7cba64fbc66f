//! Fuzzes the partclone image reader (format v1 and v2) and the Clonezilla text parsers: the
//! input is a partclone image stream. Nothing may panic or allocate past the bitmap limit; the
//! runs returned must be non-empty, in increasing order, inside the bitmap and made only of
//! used blocks, each filling the buffer exactly; once the reader reports the end, the runs
//! cover exactly the used blocks. A second pass recomputes the v2 header and bitmap CRCs so
//! that mutations reach the bitmap and data decoding. The input is also fed to the sfdisk
//! dump parser and, as a compressed file, to the decoders (output capped).
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use lifeboat_clonezilla::{compress, Limits, PartcloneReader, SfdiskTable};

fn crc(bytes: &[u8]) -> u32 {
    // partclone stores the uninverted register.
    !crc32fast::hash(bytes)
}

fn check(data: &[u8]) {
    let limits = Limits {
        max_bitmap_bytes: 1 << 20,
    };
    let Ok(mut r) = PartcloneReader::new(data, limits) else {
        return;
    };
    let bs = u64::from(r.header().block_size);
    let used = r.bitmap().used();
    let mut buf = Vec::new();
    let mut next = 0u64;
    let mut seen = 0u64;
    // Each call returns at least one block: the loop is bounded by the used blocks.
    for _ in 0..=used {
        match r.read_run(&mut buf, 1 << 16) {
            Ok(Some(run)) => {
                assert!(run.blocks > 0 && run.first_block >= next);
                assert_eq!(buf.len() as u64, run.blocks * bs);
                for b in run.first_block..run.first_block + run.blocks {
                    assert!(r.bitmap().is_used(b));
                }
                next = run.first_block + run.blocks;
                seen += run.blocks;
            }
            Ok(None) => {
                assert_eq!(seen, used);
                return;
            }
            Err(_) => return,
        }
    }
    panic!("the reader did not end after every used block");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 110 && &data[30..34] == b"0002" {
        let mut fixed = data.to_vec();
        let c = crc(&fixed[..106]);
        fixed[106..110].copy_from_slice(&c.to_le_bytes());
        let total = u64::from_le_bytes(fixed[60..68].try_into().unwrap());
        if let Some(end) = total
            .div_ceil(8)
            .checked_add(110)
            .and_then(|e| usize::try_from(e).ok())
            .filter(|&e| e + 4 <= fixed.len())
        {
            let c = crc(&fixed[110..end]);
            fixed[end..end + 4].copy_from_slice(&c.to_le_bytes());
        }
        check(&fixed);
    }
    let _ = SfdiskTable::parse("fuzz", &String::from_utf8_lossy(data));
    if let Ok((_, r)) = compress::open("fuzz", data) {
        let _ = r.take(1 << 20).read_to_end(&mut Vec::new());
    }
});
