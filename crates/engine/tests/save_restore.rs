//! The engine driven as a library, over disk image files (no root needed): plan a save, look
//! at what it will store, execute it into a repository or a stream, plan a restore, look at
//! its targets, execute it, and judge the result (every used byte equal, `e2fsck -fn` clean).
//! Also the refusals, which leave the target untouched.

mod common;

use common::*;
use lifeboat_engine::{
    check, plan_restore, plan_restore_stream, plan_save, save, CheckOptions, EngineError, Event,
    RestoreOptions, SaveOptions,
};
use lifeboat_repo::{ImageName, Repository};
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

static NO_CANCEL: AtomicBool = AtomicBool::new(false);

fn name(s: &str) -> ImageName {
    ImageName::new(s).unwrap()
}

fn repository(dir: &Path) -> Repository {
    let root = dir.join("repo");
    fs::create_dir_all(&root).unwrap();
    Repository::open(root.to_str().unwrap()).unwrap()
}

fn restore_opts(image: &str, targets: Vec<PathBuf>) -> RestoreOptions {
    let mut o = RestoreOptions::new(name(image), targets);
    o.threads = 2;
    o
}

/// Saves `disks` as `image` (whole disks, or the partitions `parts`) with default options.
fn save_image(repo: &Repository, image: &str, disks: Vec<PathBuf>, parts: Vec<u32>) {
    let mut opts = SaveOptions::new(name(image), disks);
    opts.parts = parts;
    opts.threads = 2;
    save(repo, &opts, &|_| {}, &NO_CANCEL).unwrap();
}

#[test]
fn mbr_disk_round_trip_over_garbage_with_plans_and_events() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 64, Label::Dos, &[(1, 24), (25, 30)]);
    let repo = repository(t.path());

    // Plan: what will be saved, before anything is written.
    let mut opts = SaveOptions::new(name("mbr"), vec![src.clone()]);
    opts.threads = 2;
    let plan = plan_save(&opts).unwrap();
    assert_eq!(plan.operation(), "savedisk");
    let [disk] = plan.disks() else {
        panic!("one disk")
    };
    assert_eq!(disk.size, 64 * MIB);
    assert_eq!(disk.table.kind, "mbr");
    let parts: Vec<_> = disk
        .table
        .partitions
        .iter()
        .map(|p| {
            (
                p.number,
                p.start,
                p.size,
                p.filesystem.as_str(),
                p.mode.as_str(),
                p.saved,
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            (1, MIB, 24 * MIB, "ext4", "used-blocks", true),
            (2, 25 * MIB, 30 * MIB, "ext4", "used-blocks", true)
        ]
    );
    for p in &disk.table.partitions {
        assert!(p.used_bytes > 300_000 && p.used_bytes < p.size / 2, "{p:?}");
    }
    assert!(
        !disk.boot_regions.is_empty(),
        "the MBR and the gap behind it"
    );
    let used: u64 = disk.table.partitions.iter().map(|p| p.used_bytes).sum();
    let boot: u64 = disk.boot_regions.iter().map(|r| r.len).sum();
    assert_eq!(plan.bytes_total(), used + boot);
    assert!(plan.warnings().is_empty(), "{:?}", plan.warnings());
    assert!(
        fs::read_dir(t.path().join("repo"))
            .unwrap()
            .next()
            .is_none(),
        "planning writes nothing"
    );

    // Execute: the events tell the same story as the plan.
    let events = Events::default();
    let total = plan.bytes_total();
    let manifest = plan.execute(&repo, &events.sink(), &NO_CANCEL).unwrap();
    let ev = events.take();
    assert!(matches!(&ev[0], Event::Start { operation, bytes_total, .. }
        if operation == "savedisk" && *bytes_total == total));
    let started: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            Event::PartitionStart { partition, .. } => Some(*partition),
            _ => None,
        })
        .collect();
    assert_eq!(started, [1, 2]);
    assert!(matches!(ev.last(), Some(Event::Done { .. })));
    assert_eq!(manifest.disks[0].table.kind, "mbr");
    assert_eq!(manifest.totals.stored_bytes, total);

    // The image checks out.
    let report = check(
        &repo,
        &name("mbr"),
        &CheckOptions::new(2),
        &|_| {},
        &NO_CANCEL,
    )
    .unwrap();
    assert_eq!(report.data_bytes, total);

    // Restore onto a disk full of garbage.
    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 64 * MIB, 7);
    let plan = plan_restore(&repo, &restore_opts("mbr", vec![dst.clone()])).unwrap();
    assert_eq!(plan.targets().len(), 1);
    assert_eq!(plan.targets()[0].source.table.partitions.len(), 2);
    assert!(plan.targets()[0].describe().contains("WHOLE disk"));
    assert_eq!(plan.manifest().unwrap().image, "mbr");
    let report = plan.execute(&|_| {}, &NO_CANCEL).unwrap();
    assert_eq!(report.bytes_written, total);
    assert_eq!(report.gpt_relocated, [false]);

    assert_eq!(layout(&dst).partitions, layout(&src).partitions);
    assert!(assert_used_bytes_equal(&src, &dst, true) > 600_000);
    assert_fsck_clean(&dst, 1);
    assert_fsck_clean(&dst, 2);
}

#[test]
fn gpt_disk_round_trip_onto_a_larger_disk() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 48, Label::Gpt, &[(1, 20), (21, 20)]);
    let repo = repository(t.path());
    save_image(&repo, "gpt", vec![src.clone()], vec![]);

    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 80 * MIB, 8);
    let plan = plan_restore(&repo, &restore_opts("gpt", vec![dst.clone()])).unwrap();
    assert_eq!(plan.targets()[0].source.table.kind, "gpt");
    let report = plan.execute(&|_| {}, &NO_CANCEL).unwrap();
    assert_eq!(report.gpt_relocated, [true], "backup moved to the new end");

    let (a, b) = (layout(&src), layout(&dst));
    assert_eq!(b.disk_size, 80 * MIB);
    assert_eq!(b.partitions, a.partitions);
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    // The boot regions of a larger disk differ (the GPT backup moved): partitions only.
    assert_used_bytes_equal(&src, &dst, false);
    assert_fsck_clean(&dst, 1);
    assert_fsck_clean(&dst, 2);
}

#[test]
fn saveparts_and_restoreparts_touch_only_the_chosen_partition() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 48, Label::Gpt, &[(1, 20), (21, 20)]);
    let repo = repository(t.path());

    let mut opts = SaveOptions::new(name("p2"), vec![src.clone()]);
    opts.parts = vec![2];
    let plan = plan_save(&opts).unwrap();
    assert_eq!(plan.operation(), "saveparts");
    let disk = &plan.disks()[0];
    let saved: Vec<(u32, bool)> = disk
        .table
        .partitions
        .iter()
        .map(|p| (p.number, p.saved))
        .collect();
    assert_eq!(saved, [(1, false), (2, true)]);
    assert!(
        disk.boot_regions.is_empty(),
        "saveparts stores no boot regions"
    );
    assert_eq!(plan.bytes_total(), disk.table.partitions[1].used_bytes);
    plan.execute(&repo, &|_| {}, &NO_CANCEL).unwrap();

    // The target has the same partitions, both full of garbage.
    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 48 * MIB, 9);
    partition(&dst, Label::Gpt, &[(1, 20), (21, 20)]);
    let before = fs::read(&dst).unwrap();

    // restoredisk of a parts image is refused; restoreparts writes partition 2 only.
    let e = plan_restore(&repo, &restore_opts("p2", vec![dst.clone()]))
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::Mismatch(_)), "{e}");
    let mut o = restore_opts("p2", vec![dst.clone()]);
    o.parts = vec![2];
    let plan = plan_restore(&repo, &o).unwrap();
    assert!(plan.targets()[0].describe().contains("partition(s) 2"));
    plan.execute(&|_| {}, &NO_CANCEL).unwrap();

    let after = fs::read(&dst).unwrap();
    let p1 = (MIB as usize)..(21 * MIB as usize);
    assert!(after[p1.clone()] == before[p1], "partition 1 untouched");
    assert_fsck_clean(&dst, 2);
    let l = layout(&src);
    let p = l.partition(2).unwrap();
    let s = fs::read(&src).unwrap();
    let used = {
        let d = lifeboat_blockdev::Disk::open(&src, lifeboat_blockdev::OpenMode::Read).unwrap();
        let slice = lifeboat_fs::Slice::new(d, p.start, p.size);
        let (mut stream, _) = lifeboat_engine::open_volume(std::sync::Arc::new(slice));
        let mut v = Vec::new();
        while let Some(e) = stream.next_extent().unwrap() {
            v.push(e);
        }
        v
    };
    for e in used {
        let r = (p.start + e.offset) as usize..(p.start + e.end()) as usize;
        assert!(after[r.clone()] == s[r], "partition 2 at {}", e.offset);
    }
}

#[test]
fn stream_round_trip_of_a_partitioned_disk() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 40, Label::Dos, &[(1, 36)]);
    let mut opts = SaveOptions::new(name("s"), vec![src.clone()]);
    opts.threads = 2;
    let plan = plan_save(&opts).unwrap();
    let total = plan.bytes_total();
    let (stream, manifest) = plan
        .execute_to_stream(Vec::new(), &|_| {}, &NO_CANCEL)
        .unwrap();
    assert_eq!(manifest.totals.stored_bytes, total);

    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 40 * MIB, 10);
    let mut o = RestoreOptions::from_stream(vec![dst.clone()]);
    o.threads = 2;
    let plan = plan_restore_stream(Cursor::new(stream), None, &o).unwrap();
    assert_eq!(plan.targets()[0].source.table.kind, "mbr");
    let report = plan.execute(&|_| {}, &NO_CANCEL).unwrap();
    assert_eq!(report.manifest.unwrap().image, "s");
    assert_used_bytes_equal(&src, &dst, true);
    assert_fsck_clean(&dst, 1);
}

#[test]
fn refusals_leave_everything_untouched() {
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 40, Label::Dos, &[(1, 36)]);
    let repo = repository(t.path());
    save_image(&repo, "one", vec![src.clone()], vec![]);

    // saveparts of a partition the disk does not have: refused while planning.
    let mut opts = SaveOptions::new(name("none"), vec![src.clone()]);
    opts.parts = vec![3];
    let e = plan_save(&opts).err().unwrap();
    assert!(matches!(e, EngineError::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("no partition 3"), "{e}");

    // The same disk twice.
    let twice = SaveOptions::new(name("twice"), vec![src.clone(), src.clone()]);
    let e = plan_save(&twice).err().unwrap();
    assert!(e.to_string().contains("given twice"), "{e}");

    // An image name that exists: the existing image stays intact.
    let e = save(
        &repo,
        &SaveOptions::new(name("one"), vec![src.clone()]),
        &|_| {},
        &NO_CANCEL,
    )
    .unwrap_err();
    assert!(matches!(e, EngineError::Repo(_)), "{e}");
    check(
        &repo,
        &name("one"),
        &CheckOptions::new(2),
        &|_| {},
        &NO_CANCEL,
    )
    .unwrap();

    // A target too small for the partition (it ends at 37 MiB), and the wrong number of
    // targets: refused before any write. (A smaller target that the partitions fit is
    // accepted: see the resize tests.)
    let small = t.path().join("small.img");
    garbage_disk(&small, 36 * MIB, 11);
    let small_bytes = fs::read(&small).unwrap();
    let e = plan_restore(&repo, &restore_opts("one", vec![small.clone()]))
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert!(
        e.to_string()
            .contains("partition 1 does not fit: it ends at byte 38797312"),
        "{e}"
    );
    assert!(e.to_string().contains("; 1048576 bytes short"), "{e}");
    let dst = t.path().join("dst.img");
    garbage_disk(&dst, 40 * MIB, 12);
    let e = plan_restore(
        &repo,
        &restore_opts("one", vec![dst.clone(), small.clone()]),
    )
    .err()
    .unwrap();
    assert!(matches!(e, EngineError::Mismatch(_)), "{e}");
    assert!(fs::read(&small).unwrap() == small_bytes);

    // One damaged byte in the image: the check before the first write finds it.
    let dir = t.path().join("repo/one");
    let data = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&data, bytes).unwrap();
    let dst_bytes = fs::read(&dst).unwrap();
    let plan = plan_restore(&repo, &restore_opts("one", vec![dst.clone()])).unwrap();
    let e = plan.execute(&|_| {}, &NO_CANCEL).unwrap_err();
    assert!(
        matches!(e, EngineError::Image { .. } | EngineError::Damaged(_)),
        "{e}"
    );
    assert!(fs::read(&dst).unwrap() == dst_bytes, "nothing was written");
}

#[test]
fn encrypted_image_round_trip_and_passphrase_refusals() {
    use lifeboat_engine::{ErrorClass, Passphrase, PassphraseSource};
    let Some(()) = tools() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = ext4_disk(t.path(), "src.img", 48, Label::Dos, &[(1, 30)]);
    let repo = repository(t.path());
    let pass = |p: &'static str| {
        PassphraseSource::new(move || Ok(Passphrase::new(zeroize::Zeroizing::new(p.into()))))
    };
    let mut opts = SaveOptions::new(name("sealed"), vec![src.clone()]);
    opts.threads = 2;
    opts.kdf = lifeboat_container::seal::KdfParams {
        memory_kib: 1024,
        passes: 1,
        lanes: 1,
    };
    opts.encrypt = Some(pass("right").get().unwrap());
    let full = save(&repo, &opts, &|_| {}, &NO_CANCEL).unwrap();
    assert!(full.digest.is_some());
    assert!(!full.disks.is_empty());
    let public = repo.read_manifest(&name("sealed")).unwrap();
    assert!(public.is_sealed() && public.disks.is_empty() && public.host.is_empty());

    // No passphrase, a wrong one: refused (nothing to write yet).
    let mut o = CheckOptions::new(2);
    let e = check(&repo, &name("sealed"), &o, &|_| {}, &NO_CANCEL).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Refused, "{e}");
    o.passphrase = pass("wrong");
    let e = check(&repo, &name("sealed"), &o, &|_| {}, &NO_CANCEL).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Refused, "{e}");
    o.passphrase = pass("right");
    o.digest = full.digest.clone();
    let r = check(&repo, &name("sealed"), &o, &|_| {}, &NO_CANCEL).unwrap();
    assert!(r.encrypted);
    assert_eq!(Some(r.digest), full.digest);

    // The restore of the encrypted image writes what the plain one writes.
    save_image(&repo, "plain", vec![src.clone()], vec![]);
    let (a, b) = (t.path().join("a.img"), t.path().join("b.img"));
    garbage_disk(&a, 48 * MIB, 9);
    garbage_disk(&b, 48 * MIB, 9);
    let mut ro = restore_opts("sealed", vec![a.clone()]);
    ro.passphrase = pass("wrong");
    let e = plan_restore(&repo, &ro).err().unwrap();
    assert_eq!(e.class(), ErrorClass::Refused, "{e}");
    ro.passphrase = pass("right");
    plan_restore(&repo, &ro)
        .unwrap()
        .execute(&|_| {}, &NO_CANCEL)
        .unwrap();
    plan_restore(&repo, &restore_opts("plain", vec![b.clone()]))
        .unwrap()
        .execute(&|_| {}, &NO_CANCEL)
        .unwrap();
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "restores differ"
    );
    assert_fsck_clean(&a, 1);
}
