//! Helpers shared by the integration tests: fixtures, xfsprogs tools, xfs_db output parsing,
//! and the comparison of a scan with what xfs_db says.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_fs::{Extent, FsError, FsInfo, ReadAt, Scanner, UsedBlocks};
use lifeboat_fs_xfs::XfsScanner;

/// Names of the committed fixtures (test_data/NAME.img.zst, made by test_data/make.sh).
pub const FIXTURES: &[&str] = &[
    "v5-default",
    "v5-frag",
    "v5-1k-frag",
    "v5-sect4k",
    "v5-rmap",
    "v4",
    "v4-512",
    "v4-sect4k",
    "v4-512-frag",
];

/// The UUID make.sh gives every fixture.
pub const FIXTURE_UUID: &str = "5b0c2a9e-41d7-4c3b-9f1e-7a6d8c2b3e40";

pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// Full path of an xfsprogs tool, or `None` (after a loud message) when it is missing
/// locally. In CI (`CI=true`) a missing tool fails the test.
pub fn tool(name: &str) -> Option<PathBuf> {
    lifeboat_testkit::tool(name, "xfsprogs")
}

/// Decompresses fixture `name` into a sparse file in `dir`; returns its path.
pub fn fixture_file(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.img"));
    lifeboat_testkit::unpack_sparse(&test_data().join(format!("{name}.img.zst")), &out);
    out
}

/// Decompresses fixture `name` into memory.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    lifeboat_testkit::decompress(&test_data().join(format!("{name}.img.zst")))
}

/// The stored xfs_db output of fixture `name`.
pub fn stored_expect(name: &str) -> String {
    std::fs::read_to_string(test_data().join(format!("{name}.expect"))).unwrap()
}

/// The xfs_db commands whose output make.sh stores (and the tests compare).
pub fn xfs_db_args(agcount: u32) -> Vec<String> {
    let mut a: Vec<String> = [
        "-r",
        "-c",
        "sb 0",
        "-c",
        "print dblocks blocksize sectsize agcount agblocks versionnum logstart uuid fname icount ifree",
        "-c",
        "freesp -d",
    ]
    .map(String::from)
    .to_vec();
    for ag in 0..agcount {
        a.extend([
            "-c".into(),
            format!("agf {ag}"),
            "-c".into(),
            "print seqno length freeblks flcount flfirst fllast bnolevel longest".into(),
            "-c".into(),
            format!("agfl {ag}"),
            "-c".into(),
            "print bno".into(),
        ]);
    }
    a
}

/// Runs `xfs_db -r` on `img` with the commands of [`xfs_db_args`]; `None` when xfs_db is
/// missing locally.
pub fn run_xfs_db(img: &Path) -> Option<String> {
    let exe = tool("xfs_db")?;
    let agcount: u32 = lifeboat_testkit::run_checked(
        Command::new(&exe)
            .args(["-r", "-c", "sb 0", "-c", "print agcount"])
            .arg(img),
        None,
    )
    .trim()
    .strip_prefix("agcount = ")
    .expect("xfs_db print agcount")
    .parse()
    .unwrap();
    Some(lifeboat_testkit::run_checked(
        Command::new(&exe).args(xfs_db_args(agcount)).arg(img),
        None,
    ))
}

/// One AG as xfs_db prints its AGF and AGFL.
#[derive(Debug, Clone, Default)]
pub struct AgOracle {
    pub length: u64,
    pub freeblks: u64,
    pub flcount: u64,
    pub bnolevel: u64,
    pub longest: u64,
    /// The free list's blocks, flfirst to fllast (wrapping).
    pub agfl: Vec<u64>,
    /// Free extents per `freesp -d` (AGFL blocks included), sorted.
    pub freesp: Vec<(u64, u64)>,
}

/// What xfs_db says about a filesystem.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    pub sb: BTreeMap<String, String>,
    pub ags: Vec<AgOracle>,
}

impl Oracle {
    pub fn num(&self, k: &str) -> u64 {
        let v = self
            .sb
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in xfs_db output"));
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    }

    /// Free extents of the by-block B+tree of each AG: `freesp -d` without the AGFL blocks.
    pub fn bnobt_free(&self, ag: usize) -> Vec<(u64, u64)> {
        let a = &self.ags[ag];
        let mut v = a.freesp.clone();
        for b in &a.agfl {
            let i = v
                .iter()
                .position(|&(s, l)| s == *b && l == 1)
                .unwrap_or_else(|| panic!("AG {ag}: AGFL block {b} not listed by freesp"));
            v.remove(i);
        }
        v
    }

    /// Used bytes as the scanner must count them: every block not in a by-block B+tree.
    pub fn used_bytes(&self) -> u64 {
        let free: u64 = (0..self.ags.len())
            .flat_map(|a| self.bnobt_free(a))
            .map(|(_, l)| l)
            .sum();
        (self.num("dblocks") - free) * self.num("blocksize")
    }
}

/// Parses the output of the commands of [`xfs_db_args`].
pub fn parse_xfs_db(text: &str) -> Oracle {
    let mut o = Oracle::default();
    let mut freesp: Vec<(usize, u64, u64)> = Vec::new();
    let mut in_agf = false;
    let mut flfirst = 0usize;
    let mut fllast = 0usize;
    for line in text.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        if words.len() == 3 && words.iter().all(|w| w.parse::<u64>().is_ok()) {
            let n: Vec<u64> = words.iter().map(|w| w.parse().unwrap()).collect();
            freesp.push((n[0] as usize, n[1], n[2]));
            continue;
        }
        let Some((k, v)) = t.split_once(" = ") else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "seqno" {
            in_agf = true;
            o.ags.push(AgOracle::default());
            continue;
        }
        if !in_agf {
            o.sb.insert(k.to_string(), v.trim_matches('"').to_string());
            continue;
        }
        let a = o.ags.last_mut().unwrap();
        let n = || v.parse::<u64>().unwrap();
        match k {
            "length" => a.length = n(),
            "freeblks" => a.freeblks = n(),
            "flcount" => a.flcount = n(),
            "flfirst" => flfirst = n() as usize,
            "fllast" => fllast = n() as usize,
            "bnolevel" => a.bnolevel = n(),
            "longest" => a.longest = n(),
            _ if k.starts_with("bno[") => {
                let slots: Vec<Option<u64>> = v
                    .split_whitespace()
                    .map(|e| e.split_once(':').unwrap().1.parse().ok())
                    .collect();
                let mut i = flfirst;
                for _ in 0..a.flcount {
                    a.agfl
                        .push(slots[i].expect("null AGFL slot inside flfirst..fllast"));
                    i = (i + 1) % slots.len();
                }
                if a.flcount > 0 {
                    assert_eq!((i + slots.len() - 1) % slots.len(), fllast, "AGFL ring");
                }
            }
            _ => {}
        }
    }
    for (ag, s, l) in freesp {
        o.ags[ag].freesp.push((s, l));
    }
    for a in &mut o.ags {
        a.freesp.sort();
    }
    o
}

/// Opens `volume` with the XFS scanner and drains it (checked: sorted, merged, inside the
/// volume and the filesystem, adding up to `used_bytes`).
pub fn scan(volume: &dyn ReadAt) -> Result<(FsInfo, Vec<Extent>), FsError> {
    assert!(XfsScanner.probe(volume), "probe rejected the volume");
    let mut st = XfsScanner.open_xfs(volume)?;
    let info = st.info().clone();
    let v = lifeboat_testkit::drain_checked(&mut st, volume.len());
    assert!(
        !v.is_empty() && v[0].offset == 0,
        "the superblock must be kept: {:?}",
        v.first()
    );
    Ok((info, v))
}

/// The free (not reported) block ranges of each AG, from the scanner's extents.
pub fn free_from_extents(extents: &[Extent], o: &Oracle) -> Vec<Vec<(u64, u64)>> {
    let bs = o.num("blocksize");
    let agb = o.num("agblocks");
    let mut out = Vec::new();
    for (ag, a) in o.ags.iter().enumerate() {
        let start = ag as u64 * agb * bs;
        let end = start + a.length * bs;
        let mut pos = start;
        let mut free = Vec::new();
        for e in extents.iter().filter(|e| e.end() > start && e.offset < end) {
            let s = e.offset.max(start);
            if s > pos {
                free.push(((pos - start) / bs, (s - pos) / bs));
            }
            pos = e.end().min(end);
        }
        if pos < end {
            free.push(((pos - start) / bs, (end - pos) / bs));
        }
        out.push(free);
    }
    out
}

/// Compares a scan with xfs_db's view exactly: totals, every AG's free extents, the AGF
/// counts, and that the AG free list and the internal log are kept.
pub fn assert_matches(what: &str, info: &FsInfo, extents: &[Extent], o: &Oracle) {
    let bs = o.num("blocksize");
    assert_eq!(info.block_size as u64, bs, "{what}: block size");
    assert_eq!(
        info.total_bytes,
        o.num("dblocks") * bs,
        "{what}: total bytes"
    );
    assert_eq!(info.used_bytes, o.used_bytes(), "{what}: used bytes");
    assert_eq!(o.ags.len() as u64, o.num("agcount"), "{what}: AGs printed");
    let free = free_from_extents(extents, o);
    for (ag, a) in o.ags.iter().enumerate() {
        let want = o.bnobt_free(ag);
        assert_eq!(
            want.iter().map(|e| e.1).sum::<u64>(),
            a.freeblks,
            "{what}: AG {ag}: xfs_db's own bnobt extents vs agf freeblks"
        );
        if free[ag] != want {
            let i = free[ag]
                .iter()
                .zip(&want)
                .position(|(x, y)| x != y)
                .unwrap_or(want.len().min(free[ag].len()));
            panic!(
                "{what}: AG {ag}: free extents differ at index {i}: scanner {:?}, xfs_db {:?} \
                 ({} vs {} extents)",
                free[ag].get(i),
                want.get(i),
                free[ag].len(),
                want.len()
            );
        }
        // The AG free list is kept (it is not in the B+tree).
        for b in &a.agfl {
            assert!(
                !free[ag].iter().any(|&(s, l)| *b >= s && *b < s + l),
                "{what}: AGFL block {b} of AG {ag} not kept"
            );
        }
    }
    // The internal log is kept whole.
    let logstart = o.num("logstart");
    if logstart != 0 {
        let agb = o.num("agblocks");
        let agblklog = 64 - (agb - 1).leading_zeros() as u64;
        let (ag, b) = (logstart >> agblklog, logstart & ((1 << agblklog) - 1));
        let off = (ag * agb + b) * bs;
        assert!(
            extents.iter().any(|e| e.offset <= off && e.end() > off),
            "{what}: the log's first block is not kept"
        );
    }
}
