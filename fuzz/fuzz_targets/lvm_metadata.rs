//! Fuzzes LVM2: the input is parsed as metadata text, and read as a PV (label, PV header,
//! metadata areas, layout, used extents). A second pass recomputes the label, metadata area
//! header and metadata text CRCs so that mutations reach the parsers behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_volume::lvm::{self, label, mda};

fn fix_crcs(data: &mut [u8]) {
    let crc = |b: &[u8]| label::lvm_crc(label::CRC_INITIAL, b);
    for s in 0..4usize {
        let at = s * 512;
        if data.len() < at + 512 || &data[at..at + 8] != label::LABEL_ID {
            continue;
        }
        data[at + 8..at + 16].copy_from_slice(&(s as u64).to_le_bytes());
        let c = crc(&data[at + 20..at + 512]);
        data[at + 16..at + 20].copy_from_slice(&c.to_le_bytes());
        let Ok(Some(l)) = label::Label::parse(&data[at..at + 512], s as u64) else {
            return;
        };
        let Ok(h) = lvm::PvHeader::parse(l.header()) else {
            return;
        };
        for m in h.metadata_areas.iter().take(4) {
            let Ok(o) = usize::try_from(m.offset) else {
                continue;
            };
            if o.checked_add(512).is_none_or(|e| e > data.len()) {
                continue;
            }
            // The text's CRC, when its location lies in the input.
            let r = |k: usize| u64::from_le_bytes(data[o + k..o + k + 8].try_into().unwrap());
            let (size, off, len) = (r(32), r(40), r(48));
            let n = data.len() as u64;
            if off >= 512 && off < size && len > 0 && len <= size - 512 && len <= n {
                let first = len.min(size - off);
                let (a, b) = ((o as u64).saturating_add(off), o as u64 + 512);
                if a.saturating_add(first) <= n && b + (len - first) <= n {
                    let (a, b, first) = (a as usize, b as usize, first as usize);
                    let mut t = data[a..a + first].to_vec();
                    t.extend_from_slice(&data[b..b + (len as usize - first)]);
                    let c = crc(&t);
                    data[o + 56..o + 60].copy_from_slice(&c.to_le_bytes());
                }
            }
            let c = crc(&data[o + 4..o + 512]);
            data[o..o + 4].copy_from_slice(&c.to_le_bytes());
        }
        return;
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = lvm::VolumeGroup::parse(data);
    let _ = mda::read_text(&data.to_vec(), 0);
    lifeboat_fuzz::volume_member(&lvm::Lvm2, data);
    let mut fixed = data.to_vec();
    fix_crcs(&mut fixed);
    if fixed != data {
        lifeboat_fuzz::volume_member(&lvm::Lvm2, &fixed);
    }
});
