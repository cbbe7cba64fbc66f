//! Fuzzes md: the input is a member (superblock at any of the four places, bitmap, layout,
//! used extents). A second pass recomputes the checksum of every superblock found so that
//! mutations reach the fields behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_volume::md::{self, superblock, Version};

fn fix_csums(data: &mut [u8]) {
    let len = data.len() as u64;
    for v in [Version::V1_2, Version::V1_1, Version::V1_0, Version::V0_90] {
        let Some(at) = v.offset(len) else { continue };
        let at = at as usize;
        let sb = &mut data[at..at + superblock::SB_BYTES];
        if u32::from_le_bytes(sb[0..4].try_into().unwrap()) != superblock::MD_MAGIC {
            continue;
        }
        if v == Version::V0_90 {
            let c = superblock::csum_0_90(sb).unwrap();
            sb[152..156].copy_from_slice(&c.to_le_bytes());
        } else {
            let max_dev = u32::from_le_bytes(sb[220..224].try_into().unwrap());
            if let Some(c) = superblock::csum_1(sb, max_dev) {
                sb[216..220].copy_from_slice(&c.to_le_bytes());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    lifeboat_fuzz::volume_member(&md::Md, data);
    let mut fixed = data.to_vec();
    fix_csums(&mut fixed);
    if fixed != data {
        lifeboat_fuzz::volume_member(&md::Md, &fixed);
    }
});
