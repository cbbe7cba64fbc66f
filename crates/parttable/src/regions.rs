//! The bytes a bootable disk needs outside its partitions.

use crate::{Partition, Region, MIB};

/// Builds the sorted, non-overlapping boot regions of a disk of `disk_size` bytes:
/// `[0, first partition)` (or `[0, lead_default)` without partitions), gaps of at most 1 MiB
/// between consecutive partitions, and `extra` (EBRs, GPT backup), with every partition's
/// bytes cut out and everything clipped to the disk.
pub(crate) fn boot_regions(
    disk_size: u64,
    partitions: &[Partition],
    lead_default: u64,
    lead_what: &str,
    extra: Vec<Region>,
) -> Vec<Region> {
    let mut parts: Vec<(u64, u64, u32)> = partitions
        .iter()
        .filter(|p| p.size > 0)
        .map(|p| (p.start, p.start.saturating_add(p.size), p.number))
        .collect();
    parts.sort();
    let mut cands = extra;
    let lead_end = parts.first().map_or(lead_default, |p| p.0);
    cands.push(Region {
        offset: 0,
        len: lead_end,
        what: lead_what.to_string(),
    });
    let mut reach: Option<(u64, u32)> = None;
    for &(start, end, number) in &parts {
        if let Some((prev_end, prev)) = reach {
            if start > prev_end && start - prev_end <= MIB {
                cands.push(Region {
                    offset: prev_end,
                    len: start - prev_end,
                    what: format!("gap between partitions {prev} and {number}"),
                });
            }
        }
        if reach.is_none_or(|(e, _)| end > e) {
            reach = Some((end, number));
        }
    }

    // Union of the partitions, to cut out of the candidates.
    let mut taken: Vec<(u64, u64)> = Vec::new();
    for &(s, e, _) in &parts {
        match taken.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => taken.push((s, e)),
        }
    }
    let mut pieces: Vec<Region> = Vec::new();
    for c in cands {
        let mut s = c.offset.min(disk_size);
        let end = c.offset.saturating_add(c.len).min(disk_size);
        for &(ts, te) in &taken {
            if s >= end || ts >= end {
                break;
            }
            if te <= s {
                continue;
            }
            if ts > s {
                pieces.push(Region {
                    offset: s,
                    len: ts - s,
                    what: c.what.clone(),
                });
            }
            s = s.max(te);
        }
        if s < end {
            pieces.push(Region {
                offset: s,
                len: end - s,
                what: c.what.clone(),
            });
        }
    }
    pieces.sort_by_key(|a| (a.offset, a.len));
    let mut out: Vec<Region> = Vec::new();
    for r in pieces {
        match out.last_mut() {
            Some(last) if r.offset < last.offset + last.len => {
                let end = (last.offset + last.len).max(r.offset + r.len);
                last.len = end - last.offset;
                if !last.what.split(" + ").any(|w| w == r.what) {
                    last.what = format!("{} + {}", last.what, r.what);
                }
            }
            _ => out.push(r),
        }
    }
    out
}
