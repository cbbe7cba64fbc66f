//! End-to-end tests of restoring onto the replacement hardware at hand: a smaller target
//! where the partitions fit (and a too-small one refused before any write), a larger one with
//! `--grow last` and `--grow proportional` (tables rewritten, filesystems grown by
//! resize2fs), `--dry-run` (writes nothing; its JSON plan is what the restore then does) and
//! `--from-disk` (one disk of a two-disk image at a time).
//!
//! Needs root, loop devices, sfdisk, sgdisk and e2fsprogs; skips loudly without them, fails
//! when CI=true.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const TOOLS: &[&str] = &[
    "root",
    "loop",
    "mke2fs",
    "e2fsck",
    "debugfs",
    "dumpe2fs",
    "resize2fs",
    "sfdisk",
    "sgdisk",
    "losetup",
];

/// An MBR source: 2 primaries, an extended with 2 logicals; unpartitioned space at the end.
fn mbr_source(dir: &Path, seed: u64) -> Fixture {
    let fx = mbr_disk(
        dir,
        "src-mbr.img",
        160,
        seed,
        &[
            bootable(ext("ext4", 32, TreeSpec::new(seed + 1, 4))),
            ext("ext2", 16, TreeSpec::new(seed + 2, 2)),
            extended(),
            ext("ext3", 24, TreeSpec::new(seed + 5, 3)),
            ext("ext4", 28, TreeSpec::new(seed + 6, 3)),
        ],
    );
    assert_eq!(
        fx.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 5, 6]
    );
    fx
}

/// A GPT source: three ext4 partitions, unpartitioned space at the end.
fn gpt_source(dir: &Path, seed: u64) -> Fixture {
    gpt_disk(
        dir,
        "src-gpt.img",
        128,
        512,
        seed,
        &[
            ext("ext4", 24, TreeSpec::new(seed + 1, 3)),
            ext("ext4", 32, TreeSpec::new(seed + 2, 4)),
            ext("ext4", 40, TreeSpec::new(seed + 3, 4)),
        ],
    )
}

fn save(fx: &Fixture, repo: &Path, image: &str) {
    fs::create_dir_all(repo).unwrap();
    savedisk(repo, image, &[&fx.path], &[]).ok();
}

/// `sfdisk -V` (MBR) or `sgdisk -v` (GPT) finds nothing wrong.
fn assert_table_clean(dev: &Path, label: &str) {
    if label == "gpt" {
        assert_sgdisk_clean(dev);
    } else {
        let out = sh("sfdisk", &[std::ffi::OsStr::new("-V"), dev.as_os_str()]);
        assert!(
            out.contains("No errors detected") && !out.to_lowercase().contains("overlap"),
            "sfdisk -V finds problems:\n{out}"
        );
    }
}

/// Every ext partition of `fx`, found at its restored place in `table`: fsck clean, the same
/// files, and the filesystem as large as the partition (when it grew).
fn assert_contents(fx: &Fixture, target: &Path, table: &Table, scratch: &Path, what: &str) {
    for p in &fx.parts {
        let Fill::Ext { .. } = p.fill else { continue };
        let now = table
            .parts
            .iter()
            .find(|q| q.number == p.number)
            .unwrap_or_else(|| panic!("{what}: partition {} missing", p.number));
        let img = scratch.join(format!("check-{}.img", p.number));
        extract(target, now.start, now.size, &img);
        assert_fsck_clean(&img, what);
        let l = ext_listing(&img, scratch, what);
        assert_same_tree(what, p.tree.as_ref().unwrap(), &l);
        let d = dumpe2fs(&img);
        let field = |name: &str| -> u64 {
            d.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().parse().unwrap())
                .unwrap()
        };
        let fs_bytes = field("Block count:") * field("Block size:");
        if now.size > p.size {
            assert!(
                fs_bytes + field("Block size:") > now.size && fs_bytes <= now.size,
                "{what}: partition {} has {} bytes but its filesystem {fs_bytes}",
                p.number,
                now.size
            );
        } else {
            assert_eq!(fs_bytes, p.size, "{what}: partition {} fs size", p.number);
        }
        fs::remove_file(&img).unwrap();
    }
}

/// The `plan` event of a `--json` run.
fn plan_of(r: &Run) -> Value {
    r.json_lines()
        .into_iter()
        .find(|e| e["event"] == "plan")
        .expect("a plan event")
}

/// Partitions (number, start, size) the plan says the target gets.
fn planned(plan: &Value, disk: usize) -> Vec<(u32, u64, u64)> {
    plan["disks"][disk]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["number"].as_u64().unwrap() as u32,
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Non-extended partitions of a table, sorted by number.
fn actual(t: &Table) -> Vec<(u32, u64, u64)> {
    let mut v: Vec<_> = t
        .parts
        .iter()
        .filter(|p| !matches!(p.type_.as_str(), "5" | "f" | "85"))
        .map(|p| (p.number, p.start, p.size))
        .collect();
    v.sort();
    v
}

fn json_restore(repo: &Path, image: &str, target: &Path, extra: &[&str]) -> Run {
    let mut a = vec!["--json"];
    a.extend_from_slice(extra);
    restoredisk(repo, image, &[target], &a)
}

/// Dry run, then the restore: the dry run leaves the target as it was, the restore's plan is
/// the dry run's (apart from `dry_run`), and the target's table is the planned one.
fn plan_then_restore(repo: &Path, image: &str, target: &Path, extra: &[&str]) -> (Value, Table) {
    let before = sha_all(target);
    let mut dry_args = extra.to_vec();
    dry_args.push("--dry-run");
    let dry = json_restore(repo, image, target, &dry_args).ok();
    assert_eq!(sha_all(target), before, "--dry-run wrote to the target");
    let mut dry_plan = plan_of(&dry);
    assert_eq!(dry_plan["dry_run"], true);
    let real = json_restore(repo, image, target, extra).ok();
    let real_plan = plan_of(&real);
    dry_plan["dry_run"] = Value::Bool(false);
    assert_eq!(
        dry_plan, real_plan,
        "the restore did not follow the dry-run plan"
    );
    let table = read_table(target);
    assert_eq!(
        actual(&table),
        planned(&real_plan, 0),
        "the restored table is not the planned one"
    );
    (real_plan, table)
}

fn garbage(dir: &Path, name: &str, size: u64, seed: u64) -> PathBuf {
    let p = dir.join(name);
    garbage_file(&p, size, seed);
    p
}

#[test]
fn smaller_targets_fit_or_are_refused() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("resize-small");
    let d = t.path();
    for label in ["mbr", "gpt"] {
        let fx = if label == "mbr" {
            mbr_source(d, 1400)
        } else {
            gpt_source(d, 1500)
        };
        let repo = d.join(format!("repo-{label}"));
        save(&fx, &repo, "img");
        // 80 % of the source: every partition fits.
        let size = fx.size * 8 / 10 / MIB * MIB;
        let target = garbage(d, &format!("small-{label}.img"), size, 3);
        let (plan, table) = plan_then_restore(&repo, "img", &target, &[]);
        assert!(
            plan["disks"][0]["differences"]
                .as_array()
                .unwrap()
                .contains(&Value::from("smaller")),
            "{plan}"
        );
        assert_table_clean(&target, label);
        let want: Vec<_> = fx
            .parts
            .iter()
            .map(|p| (p.number, p.start, p.size))
            .collect();
        assert_eq!(
            actual(&table),
            want,
            "{label}: layout changed on a smaller disk"
        );
        assert_contents(&fx, &target, &table, d, &format!("{label} onto 80 %"));

        // Smaller than the last partition's end: refused, named, nothing written.
        let last = fx.parts.iter().max_by_key(|p| p.start + p.size).unwrap();
        let short = 3 * MIB;
        let tiny_size = last.start + last.size - short + if label == "gpt" { 16896 } else { 0 };
        let tiny = garbage(d, &format!("tiny-{label}.img"), tiny_size, 4);
        let before = sha_all(&tiny);
        restoredisk(&repo, "img", &[&tiny], &[]).code(3).says(&[
            &format!("partition {} does not fit", last.number),
            &format!("{short} bytes"),
            "nothing was written",
        ]);
        assert_eq!(
            sha_all(&tiny),
            before,
            "a refused restore wrote to the target"
        );
        // The same in Japanese.
        lifeboat(&[
            "--lang",
            "ja",
            "restoredisk",
            "--repo",
            s(&repo),
            "--image",
            "img",
            "--yes",
            "--disk",
            s(&tiny),
        ])
        .code(3)
        .says(&[
            &format!("パーティション {} が収まりません", last.number),
            &short.to_string(),
        ]);
        fs::remove_file(&target).unwrap();
        fs::remove_file(&tiny).unwrap();
    }
}

#[test]
fn grow_last_and_proportional() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("resize-grow");
    let d = t.path();
    for label in ["mbr", "gpt"] {
        let fx = if label == "mbr" {
            mbr_source(d, 1600)
        } else {
            gpt_source(d, 1700)
        };
        let repo = d.join(format!("repo-{label}"));
        save(&fx, &repo, "img");
        for mode in ["last", "proportional"] {
            let what = format!("{label} --grow {mode}");
            let target = garbage(d, &format!("big-{label}-{mode}.img"), 2 * fx.size, 5);
            let (plan, table) = plan_then_restore(&repo, "img", &target, &["--grow", mode]);
            assert_table_clean(&target, label);
            let parts = plan["disks"][0]["partitions"].as_array().unwrap().clone();
            let grown: Vec<u64> = parts
                .iter()
                .filter(|p| p["size"].as_u64() > p["size_before"].as_u64())
                .map(|p| p["number"].as_u64().unwrap())
                .collect();
            let last = fx.parts.iter().max_by_key(|p| p.start + p.size).unwrap();
            if mode == "last" {
                assert_eq!(grown, [u64::from(last.number)], "{what}: {plan}");
            } else {
                assert_eq!(
                    grown.len(),
                    fx.parts.len(),
                    "{what}: every ext partition grows: {plan}"
                );
            }
            for p in &parts {
                if p["fs_grow"].is_object() {
                    assert_eq!(p["fs_grow"]["tool"], "resize2fs");
                    assert_eq!(p["fs_grow"]["installed"], true);
                }
            }
            // The last partition ends within 1 MiB of the usable end.
            let end = table.parts.iter().map(|p| p.start + p.size).max().unwrap();
            assert!(2 * fx.size - end < 2 * MIB, "{what}: ends at {end}");
            assert_contents(&fx, &target, &table, d, &what);
            fs::remove_file(&target).unwrap();
        }
    }
}

#[test]
fn from_disk_restores_one_disk_of_two() {
    if !need(TOOLS) {
        return;
    }
    let t = tempdir("resize-from");
    let d = t.path();
    let a = mbr_source(d, 1800);
    let b = gpt_source(d, 1900);
    let repo = d.join("repo");
    fs::create_dir_all(&repo).unwrap();
    savedisk(&repo, "two", &[&a.path, &b.path], &[]).ok();
    for (n, fx) in [(1u32, &b), (0u32, &a)] {
        let target = garbage(d, &format!("one-{n}.img"), fx.size, 6);
        let r = restoredisk(
            &repo,
            "two",
            &[&target],
            &["--from-disk", &n.to_string(), "--json"],
        )
        .ok();
        let plan = plan_of(&r);
        assert_eq!(plan["disks"][0]["disk"], n);
        let table = read_table(&target);
        assert_eq!(table.parts, fx.table.as_ref().unwrap().parts, "disk {n}");
        assert_table_clean(&target, fx.label);
        assert_contents(fx, &target, &table, d, &format!("--from-disk {n}"));
    }
    // Out of range: nothing written.
    let target = garbage(d, "none.img", a.size, 7);
    restoredisk(&repo, "two", &[&target], &["--from-disk", "2"])
        .code(1)
        .says(&["--from-disk 2", "2 disk(s)"]);
}
