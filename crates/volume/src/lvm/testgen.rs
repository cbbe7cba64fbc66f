//! Builds PV images for tests and fuzz seeds (an independent writer of the on-disk format,
//! checked against real pvcreate output in the tests).

use super::label::{lvm_crc, CRC_INITIAL, LABEL_ID, LABEL_TYPE};

/// A PV image of `dev_len` bytes: label in sector 1, PV header (data from `pe_start`
/// sectors), one 8 KiB metadata area at byte 4096 holding `text` (`pe_start` must leave room:
/// at least 24 sectors).
pub fn pv_image(uuid: &str, dev_len: u64, pe_start: u64, text: &str) -> Vec<u8> {
    let mut img = vec![0u8; dev_len as usize];
    let s = &mut img[512..1024];
    s[..8].copy_from_slice(LABEL_ID);
    s[8] = 1;
    s[20] = 32;
    s[24..32].copy_from_slice(LABEL_TYPE);
    let n = uuid.len().min(32);
    s[32..32 + n].copy_from_slice(&uuid.as_bytes()[..n]);
    s[64..72].copy_from_slice(&dev_len.to_le_bytes());
    s[72..80].copy_from_slice(&(pe_start * 512).to_le_bytes());
    s[104..112].copy_from_slice(&4096u64.to_le_bytes());
    s[112..120].copy_from_slice(&8192u64.to_le_bytes());
    let crc = lvm_crc(CRC_INITIAL, &s[20..512]);
    s[16..20].copy_from_slice(&crc.to_le_bytes());
    let mda = super::mda::build(4096, 8192, 512 + 700, text.as_bytes());
    img[4096..4096 + 8192].copy_from_slice(&mda);
    img
}
