//! Stream saves and restores at the engine level, on disk image files without a partition
//! table (copied raw): one and two disks, the disk list, damage and truncation, and the
//! checks that come before the first write.

use lifeboat_engine::{
    plan_restore_stream, save_to_stream, EngineError, Event, RestoreOptions, SaveOptions,
};
use lifeboat_repo::ImageName;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

const MIB: usize = 1 << 20;

/// A file of `len` bytes of seeded, poorly compressible data.
fn random_file(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let mut b = Vec::with_capacity(len);
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.truncate(len);
    fs::write(path, b).unwrap();
}

fn quiet(_: Event) {}

fn save(disks: Vec<PathBuf>) -> Vec<u8> {
    let opts = SaveOptions::new(ImageName::new("s").unwrap(), disks);
    let cancel = AtomicBool::new(false);
    let (out, m) = save_to_stream(Vec::new(), &opts, &quiet, &cancel).unwrap();
    assert_eq!(m.image, "s");
    assert!(m.files.is_empty());
    out
}

fn restore(stream: Vec<u8>, targets: Vec<PathBuf>) -> Result<(), EngineError> {
    let cancel = AtomicBool::new(false);
    let mut opts = RestoreOptions::from_stream(targets);
    opts.threads = 2;
    let plan = plan_restore_stream(Cursor::new(stream), None, &opts)?;
    assert!(plan.manifest().is_none());
    assert!(plan.describe_image().contains("stream"));
    let r = plan.execute(&quiet, &cancel)?;
    assert_eq!(r.manifest.unwrap().image, "s");
    Ok(())
}

#[test]
fn one_disk_round_trip_and_damage() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src.img");
    random_file(&src, 6 * MIB, 1);
    let stream = save(vec![src.clone()]);
    assert_eq!(
        u16::from_le_bytes([stream[8], stream[9]]),
        lifeboat_container::format::VERSION_MAJOR,
        "format 3"
    );
    assert_eq!(&stream[64..68], b"DISK");

    let dst = t.path().join("dst.img");
    random_file(&dst, 6 * MIB, 2);
    restore(stream.clone(), vec![dst.clone()]).unwrap();
    assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());

    // A flipped byte: the error names the stream position and the target's state.
    let mut bad = stream.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    random_file(&dst, 6 * MIB, 3);
    let e = restore(bad, vec![dst.clone()]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EngineError::Damaged(_)), "{msg}");
    assert!(msg.contains("stream byte"), "{msg}");
    assert!(msg.contains("INCONSISTENT"), "{msg}");

    // Truncated.
    let cut = stream[..stream.len() - 100].to_vec();
    let e = restore(cut, vec![dst.clone()]).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    // Too small: refused before the first write.
    let small = t.path().join("small.img");
    random_file(&small, 5 * MIB, 4);
    let before = fs::read(&small).unwrap();
    let e = restore(stream.clone(), vec![small.clone()]).unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert_eq!(fs::read(&small).unwrap(), before);

    // Two targets for a stream without a disk list: refused.
    let e = restore(stream, vec![dst.clone(), small]).unwrap_err();
    assert!(e.to_string().contains("disk list"), "{e}");
}

#[test]
fn two_disks_are_announced_and_checked_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.img");
    let b = t.path().join("b.img");
    random_file(&a, 3 * MIB, 5);
    random_file(&b, 2 * MIB, 6);
    let stream = save(vec![a.clone(), b.clone()]);
    assert_eq!(
        u16::from_le_bytes([stream[8], stream[9]]),
        lifeboat_container::format::VERSION_MAJOR,
        "format 3"
    );
    assert_eq!(&stream[64..68], b"DLST");

    let ta = t.path().join("ta.img");
    let tb = t.path().join("tb.img");
    random_file(&ta, 3 * MIB, 7);
    random_file(&tb, MIB, 8);
    let before = fs::read(&ta).unwrap();
    // The second target is too small: found before the first disk is written.
    let e = restore(stream.clone(), vec![ta.clone(), tb.clone()]).unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert_eq!(fs::read(&ta).unwrap(), before);
    // One target for two disks.
    let e = restore(stream.clone(), vec![ta.clone()]).unwrap_err();
    assert!(e.to_string().contains("holds 2 disk(s)"), "{e}");

    random_file(&tb, 2 * MIB, 9);
    restore(stream, vec![ta.clone(), tb.clone()]).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&ta).unwrap());
    assert_eq!(fs::read(&b).unwrap(), fs::read(&tb).unwrap());
}
