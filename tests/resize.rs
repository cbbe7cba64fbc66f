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
    let (plan, table, _) = plan_then_restore_events(repo, image, target, extra);
    (plan, table)
}

/// [`plan_then_restore`], also returning the restore's events.
fn plan_then_restore_events(
    repo: &Path,
    image: &str,
    target: &Path,
    extra: &[&str],
) -> (Value, Table, Vec<Value>) {
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
    (real_plan, table, real.json_lines())
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

// ───────────── NTFS, XFS, LVM PV and FAT: grown by their tools; an LVM PV shrunk ─────────────

const MIXED_TOOLS: &[&str] = &[
    "root",
    "loop",
    "sgdisk",
    "sfdisk",
    "losetup",
    "mount",
    "umount",
    "mkntfs",
    "ntfscp",
    "ntfscat",
    "ntfsfix",
    "ntfsresize",
    "mkfs.xfs",
    "xfs_repair",
    "xfs_db",
    "xfs_growfs",
    "pvcreate",
    "vgcreate",
    "lvcreate",
    "pvs",
    "vgs",
    "lvs",
    "pvresize",
    "mkfs.vfat",
    "fsck.vfat",
    "mcopy",
    "mtype",
    "fatresize",
];

/// LVM commands on one device, activation off (this kernel has no device-mapper).
fn lvm(dev: &LoopDev, args: &[&str]) -> String {
    let mut c = tool(args[0]);
    c.env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .arg("--devices")
        .arg(&dev.dev)
        .args(&args[1..]);
    run_ok(&mut c)
}

fn lvm_num(dev: &LoopDev, cmd: &str, field: &str, extra: &[&str]) -> u64 {
    let mut a = vec![
        cmd,
        "--noheadings",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        field,
    ];
    a.extend_from_slice(extra);
    let out = lvm(dev, &a);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{cmd} -o {field}: {out:?}"))
}

/// The PV on `dev`: (pe_start, extent size, pe_count, allocated PEs).
fn pv_geometry(dev: &LoopDev) -> (u64, u64, u64, u64) {
    (
        lvm_num(dev, "pvs", "pe_start", &[]),
        lvm_num(dev, "vgs", "vg_extent_size", &[]),
        lvm_num(dev, "pvs", "pv_pe_count", &[]),
        lvm_num(dev, "pvs", "pv_pe_alloc_count", &[]),
    )
}

/// The byte ranges of LV `lv` on the PV `dev` (from its first byte), in LV order.
fn lv_runs(dev: &LoopDev, lv: &str) -> Vec<(u64, u64)> {
    let (pe_start, extent, _, _) = pv_geometry(dev);
    lvm(
        dev,
        &[
            "lvs",
            "--segments",
            "--noheadings",
            "-o",
            "seg_pe_ranges",
            lv,
        ],
    )
    .split_whitespace()
    .map(|r| {
        let range = r.rsplit_once(':').unwrap().1;
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        (pe_start + a * extent, (b - a + 1) * extent)
    })
    .collect()
}

/// SHA-256 of an LV's bytes read by its extents from the partition at `base` of `file`.
fn lv_sha(file: &Path, base: u64, runs: &[(u64, u64)]) -> String {
    let mut all = Vec::new();
    for (off, len) in runs {
        all.extend(read_range(file, base + off, *len));
    }
    sha_bytes(&all)
}

/// A small file set: (name, content).
fn files(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    vec![
        ("big.bin".into(), rng.bytes(700_000)),
        ("note.txt".into(), format!("lifeboat {seed}\n").into_bytes()),
        ("small.bin".into(), rng.bytes(5000)),
    ]
}

/// What the mixed source holds, to find again.
struct Mixed {
    path: PathBuf,
    size: u64,
    table: Table,
    files: Vec<(String, Vec<u8>)>,
    /// LV name -> SHA-256 of its bytes.
    lvs: Vec<(String, String)>,
}

impl Mixed {
    fn part(&self, n: u32) -> &TablePart {
        self.table.parts.iter().find(|p| p.number == n).unwrap()
    }
}

/// Makes an LVM PV over `lo` with VG `vg` and LVs of the given sizes (MiB, in order, so
/// that they are allocated from the start), each filled with random bytes.
fn make_pv(
    lo: &LoopDev,
    file: &Path,
    base: u64,
    vg: &str,
    lvs: &[(&str, u64)],
    seed: u64,
) -> Vec<(String, String)> {
    lvm(lo, &["pvcreate", "-q", lo.path()]);
    lvm(lo, &["vgcreate", "-q", "-s", "1m", vg, lo.path()]);
    let mut out = Vec::new();
    for (i, (name, mib)) in lvs.iter().enumerate() {
        lvm(
            lo,
            &[
                "lvcreate",
                "-q",
                "--driverloaded",
                "n",
                "-an",
                "-Zn",
                "-L",
                &format!("{mib}m"),
                "-n",
                name,
                vg,
            ],
        );
        let full = format!("{vg}/{name}");
        let runs = lv_runs(lo, &full);
        for (j, (off, len)) in runs.iter().enumerate() {
            fill_random(file, base + off, *len, seed + 10 * i as u64 + j as u64);
        }
        out.push((full.clone(), lv_sha(file, base, &runs)));
    }
    out
}

/// A GPT disk of 90 MiB: 1 NTFS (16 MiB), 2 XFS (32 MiB), 3 LVM PV (24 MiB, VG `vgmix`
/// with LV `data` of 8 MiB), 4 FAT16 (16 MiB, the last); each filesystem holds [`files`].
fn mixed_source(dir: &Path, seed: u64) -> Mixed {
    let path = dir.join("src-mixed.img");
    let size = 90 * MIB;
    sparse_file(&path, size);
    sh(
        "sgdisk",
        &[
            "-n",
            "1:2048:+16M",
            "-t",
            "1:0700",
            "-n",
            "2:0:+32M",
            "-t",
            "2:8300",
            "-n",
            "3:0:+24M",
            "-t",
            "3:8e00",
            "-n",
            "4:0:+16M",
            "-t",
            "4:0700",
            s(&path),
        ],
    );
    let table = read_table(&path);
    let files = files(seed);
    let part = |n: u32| table.parts.iter().find(|p| p.number == n).unwrap().clone();
    let local = dir.join("files");
    fs::create_dir_all(&local).unwrap();
    for (name, data) in &files {
        fs::write(local.join(name), data).unwrap();
    }
    // 1: NTFS, files copied in by ntfscp.
    let p = part(1);
    {
        let lo = LoopDev::attach_range(&path, None, Some((p.start, p.size)));
        run_ok(tool("mkntfs").args([
            "-F",
            "-f",
            "-Q",
            "-q",
            "-L",
            "lbntfs",
            "-p",
            &(p.start / 512).to_string(),
            "-H",
            "255",
            "-S",
            "63",
            lo.path(),
        ]));
        for (name, _) in &files {
            sh(
                "ntfscp",
                &[lo.path(), s(&local.join(name)), &format!("/{name}")],
            );
        }
    }
    // 2: XFS (mkfs.xfs refuses below 300 MB unless told it is a test device), files
    // written through a mount.
    let p = part(2);
    {
        let lo = LoopDev::attach_range(&path, None, Some((p.start, p.size)));
        run_ok(
            tool("mkfs.xfs")
                .env("TEST_DIR", dir)
                .env("TEST_DEV", lo.path())
                .env("QA_CHECK_FS", "1")
                .args(["-q", "-f", "-L", "lbxfs", lo.path()]),
        );
        let m = Mount::new(&lo.dev, &dir.join("mnt-xfs"), "");
        for (name, data) in &files {
            fs::write(m.dir.join(name), data).unwrap();
        }
    }
    // 3: an LVM PV with one LV of random bytes and 15 free extents after it.
    let p = part(3);
    let lvs = {
        let lo = LoopDev::attach_range(&path, None, Some((p.start, p.size)));
        make_pv(&lo, &path, p.start, "vgmix", &[("data", 8)], seed + 100)
    };
    // 4: FAT16, files copied in by mcopy.
    let p = part(4);
    {
        let lo = LoopDev::attach_range(&path, None, Some((p.start, p.size)));
        sh("mkfs.vfat", &["-F", "16", "-n", "LBFAT", lo.path()]);
        for (name, _) in &files {
            sh(
                "mcopy",
                &["-i", lo.path(), s(&local.join(name)), &format!("::/{name}")],
            );
        }
    }
    sync();
    Mixed {
        path,
        size,
        table,
        files,
        lvs,
    }
}

/// The `fs_grow` events of a restore, by partition number.
fn fs_grows(events: &[Value]) -> Vec<(u64, Value)> {
    events
        .iter()
        .filter(|e| e["event"] == "fs_grow")
        .map(|e| (e["partition"].as_u64().unwrap(), e.clone()))
        .collect()
}

/// NTFS at `part` of `target`: `ntfsfix -n` clean, volume size as `ntfsresize --info`
/// reports it, every file identical through ntfscat. Returns the volume size.
fn check_ntfs(target: &Path, part: &TablePart, files: &[(String, Vec<u8>)], what: &str) -> u64 {
    let lo = LoopDev::attach_range(target, None, Some((part.start, part.size)));
    let fix = tool("ntfsfix").args(["-n", lo.path()]).output().unwrap();
    let fix_out =
        String::from_utf8_lossy(&fix.stdout).to_string() + &String::from_utf8_lossy(&fix.stderr);
    assert!(
        fix.status.success() && !fix_out.contains("rror"),
        "{what}: ntfsfix -n: {fix_out}"
    );
    for (name, data) in files {
        // ntfsresize leaves the volume marked for a check by Windows (as it always does):
        // ntfscat needs --force to read it.
        let out = tool("ntfscat")
            .args(["-f", lo.path(), &format!("/{name}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: ntfscat {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == *data, "{what}: NTFS file {name} differs");
    }
    let info = tool("ntfsresize")
        .args(["--info", "--force", "--no-progress-bar", lo.path()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("Current volume size: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: ntfsresize --info: {text}"))
}

/// XFS at `part`: `xfs_repair -n` clean, files identical through a read-only mount; returns
/// the filesystem's bytes (`xfs_db` dblocks × blocksize).
fn check_xfs(
    target: &Path,
    part: &TablePart,
    files: &[(String, Vec<u8>)],
    scratch: &Path,
    what: &str,
) -> u64 {
    let lo = LoopDev::attach_range(target, None, Some((part.start, part.size)));
    let r = tool("xfs_repair").args(["-n", lo.path()]).output().unwrap();
    assert!(
        r.status.success(),
        "{what}: xfs_repair -n: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let db = sh(
        "xfs_db",
        &["-r", "-c", "sb 0", "-c", "p dblocks blocksize", lo.path()],
    );
    let field = |k: &str| -> u64 {
        db.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("{what}: xfs_db: {db}"))
            .trim()
            .parse()
            .unwrap()
    };
    let bytes = field("dblocks") * field("blocksize");
    let m = Mount::new(&lo.dev, &scratch.join("mnt-check-xfs"), "ro,nouuid");
    for (name, data) in files {
        assert!(
            fs::read(m.dir.join(name)).unwrap() == *data,
            "{what}: XFS file {name} differs"
        );
    }
    bytes
}

/// FAT at `part`: `fsck.vfat -n` clean, files identical through mtype; returns the
/// filesystem's size from its boot sector (total sectors × bytes per sector).
fn check_fat(target: &Path, part: &TablePart, files: &[(String, Vec<u8>)], what: &str) -> u64 {
    let lo = LoopDev::attach_range(target, None, Some((part.start, part.size)));
    let f = tool("fsck.vfat").args(["-n", lo.path()]).output().unwrap();
    assert!(
        f.status.success(),
        "{what}: fsck.vfat -n: {}{}",
        String::from_utf8_lossy(&f.stdout),
        String::from_utf8_lossy(&f.stderr)
    );
    for (name, data) in files {
        let out = tool("mtype")
            .args(["-i", lo.path(), &format!("::/{name}")])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout == *data,
            "{what}: FAT file {name} differs"
        );
    }
    let bs = read_range(target, part.start, 512);
    let sector = u64::from(u16::from_le_bytes([bs[11], bs[12]]));
    let small = u64::from(u16::from_le_bytes([bs[19], bs[20]]));
    let big = u64::from(u32::from_le_bytes([bs[32], bs[33], bs[34], bs[35]]));
    sector * if small != 0 { small } else { big }
}

/// The PV at `part`: `pvs`/`vgs`/`lvs` read it without errors, its PE count fills the
/// partition, and every LV's bytes are identical. Returns (pe_count, allocated PEs).
fn check_pv(target: &Path, part: &TablePart, lvs: &[(String, String)], what: &str) -> (u64, u64) {
    let lo = LoopDev::attach_range(target, None, Some((part.start, part.size)));
    let mut c = tool("pvs");
    c.env("LVM_SUPPRESS_FD_WARNINGS", "1").args([
        "--devices",
        lo.path(),
        "-o",
        "pv_name,vg_name,pv_size,dev_size",
    ]);
    let out = c.output().unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !all.contains("WARNING") && !all.contains("rror"),
        "{what}: pvs: {all}"
    );
    let (pe_start, extent, pe_count, alloc) = pv_geometry(&lo);
    assert_eq!(
        pe_count,
        (part.size - pe_start) / extent,
        "{what}: the PV's extents do not fill its partition of {} bytes",
        part.size
    );
    let vg_pe = lvm_num(&lo, "vgs", "vg_extent_count", &[]);
    assert_eq!(vg_pe, pe_count, "{what}: vgs extent count");
    for (lv, sha) in lvs {
        let runs = lv_runs(&lo, lv);
        assert_eq!(
            &lv_sha(target, part.start, &runs),
            sha,
            "{what}: LV {lv} differs"
        );
    }
    (pe_count, alloc)
}

#[test]
fn grow_ntfs_xfs_lvm_pv_and_fat() {
    if !need(MIXED_TOOLS) {
        return;
    }
    let t = tempdir("resize-mixed");
    let d = t.path();
    let fx = mixed_source(d, 2100);
    let repo = d.join("repo");
    fs::create_dir_all(&repo).unwrap();
    savedisk(&repo, "img", &[&fx.path], &[]).ok();
    let src_fat = fx.part(4).size;

    // --grow proportional: NTFS, XFS and the PV grow (FAT is no candidate).
    let what = "--grow proportional";
    let target = garbage(d, "big-prop.img", 2 * fx.size, 8);
    let (plan, table, events) =
        plan_then_restore_events(&repo, "img", &target, &["--grow", "proportional"]);
    assert_sgdisk_clean(&target);
    let tools: Vec<(u64, Value)> = plan["disks"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["number"].as_u64().unwrap(), p["fs_grow"]["tool"].clone()))
        .collect();
    assert_eq!(
        tools,
        [
            (1, Value::from("ntfsresize")),
            (2, Value::from("xfs_growfs")),
            (3, Value::from("pvresize")),
            (4, Value::Null),
        ],
        "{what}: {plan}"
    );
    let grows = fs_grows(&events);
    assert_eq!(grows.len(), 3, "{what}: {grows:?}");
    for (n, e) in &grows {
        assert_eq!(e["ok"], true, "{what}: partition {n}: {e}");
    }
    let now = |n: u32| table.parts.iter().find(|p| p.number == n).unwrap().clone();
    for n in 1..=3 {
        assert!(
            now(n).size > fx.part(n).size,
            "{what}: partition {n} did not grow"
        );
    }
    let vol = check_ntfs(&target, &now(1), &fx.files, what);
    assert!(
        vol <= now(1).size && now(1).size - vol < 64 * 1024 && vol > fx.part(1).size,
        "{what}: NTFS volume {vol} bytes in a partition of {}",
        now(1).size
    );
    let xfs = check_xfs(&target, &now(2), &fx.files, d, what);
    assert!(
        xfs <= now(2).size && now(2).size - xfs < MIB && xfs > fx.part(2).size,
        "{what}: XFS of {xfs} bytes in a partition of {}",
        now(2).size
    );
    check_pv(&target, &now(3), &fx.lvs, what);
    assert_eq!(
        check_fat(&target, &now(4), &fx.files, what),
        src_fat,
        "{what}: FAT size"
    );
    fs::remove_file(&target).unwrap();

    // --grow last: the FAT partition grows. fatresize 1.1.0 (Debian 12) cannot resize a
    // FAT on a disk image or loop device (libparted finds no partition on a loop device
    // over the partition, and on the whole disk its size arithmetic fails), so this shows
    // the warning path: the partition grew, the filesystem is unchanged and intact, and the
    // warning names the command to run.
    let what = "--grow last";
    let target = garbage(d, "big-last.img", 2 * fx.size, 9);
    let (plan, table, events) =
        plan_then_restore_events(&repo, "img", &target, &["--grow", "last"]);
    assert_sgdisk_clean(&target);
    let p4 = &plan["disks"][0]["partitions"][3];
    assert_eq!(p4["fs_grow"]["tool"], "fatresize", "{what}: {plan}");
    assert_eq!(p4["fs_grow"]["installed"], true, "{what}: {plan}");
    let grows = fs_grows(&events);
    assert_eq!(grows.len(), 1, "{what}: {grows:?}");
    assert_eq!(
        grows[0].1["ok"], false,
        "fatresize now works here: {}",
        grows[0].1
    );
    let warning = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .find(|m| m.contains("partition 4 grew"))
        .unwrap_or_else(|| panic!("{what}: no warning: {events:?}"));
    assert!(
        warning.contains("fatresize failed") && warning.contains("fatresize -s max"),
        "{warning}"
    );
    let now = |n: u32| table.parts.iter().find(|p| p.number == n).unwrap().clone();
    assert!(
        now(4).size > 2 * src_fat,
        "{what}: partition 4 did not grow"
    );
    assert_eq!(
        check_fat(&target, &now(4), &fx.files, what),
        src_fat,
        "{what}: FAT size"
    );
    for n in 1..=3 {
        assert_eq!(now(n).size, fx.part(n).size, "{what}: partition {n}");
    }
    check_ntfs(&target, &now(1), &fx.files, what);
}

/// A GPT disk of 64 MiB: 1 ext4 (8 MiB), 2 an LVM PV (52 MiB, VG `vgsh`, extents of 1 MiB)
/// whose LVs are `lv` MiB each, allocated from its start; the rest of the PV is free.
fn pv_last_source(
    dir: &Path,
    name: &str,
    lvs: &[(&str, u64)],
    seed: u64,
) -> (PathBuf, Table, Vec<(String, String)>) {
    let path = dir.join(name);
    sparse_file(&path, 64 * MIB);
    sh(
        "sgdisk",
        &[
            "-n",
            "1:2048:+8M",
            "-t",
            "1:8300",
            "-n",
            "2:0:+52M",
            "-t",
            "2:8e00",
            s(&path),
        ],
    );
    let table = read_table(&path);
    let p1 = &table.parts[0];
    mkfs_ext(&path, p1.start, p1.size, "ext4", None, None, "lbext");
    let p2 = table.parts[1].clone();
    let lo = LoopDev::attach_range(&path, None, Some((p2.start, p2.size)));
    let lvs = make_pv(&lo, &path, p2.start, "vgsh", lvs, seed + 1);
    drop(lo);
    sync();
    (path, table, lvs)
}

#[test]
fn a_last_lvm_pv_shrinks_onto_a_smaller_disk_when_its_extents_fit() {
    if !need(MIXED_TOOLS) || !need(&["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let t = tempdir("resize-pv-shrink");
    let d = t.path();
    // 12 MiB of LVs at the start of a 52 MiB PV: fits a 40 MiB disk.
    let (src, src_table, lvs) = pv_last_source(d, "src-pv.img", &[("root", 8), ("home", 4)], 2200);
    let repo = d.join("repo");
    fs::create_dir_all(&repo).unwrap();
    savedisk(&repo, "img", &[&src], &[]).ok();
    let size = 40 * MIB;
    let target = garbage(d, "small-pv.img", size, 10);
    let (plan, table, events) = plan_then_restore_events(&repo, "img", &target, &[]);
    assert_eq!(dev_size(&target), size, "the target grew");
    assert_sgdisk_clean(&target);
    let p2 = &plan["disks"][0]["partitions"][1];
    assert_eq!(p2["action"], "shrink", "{plan}");
    assert_eq!(p2["fs_grow"]["tool"], "pvresize", "{plan}");
    assert_eq!(p2["size_before"], src_table.parts[1].size);
    let part = table.parts[1].clone();
    assert_eq!(part.start, src_table.parts[1].start);
    assert!(part.size < src_table.parts[1].size, "{plan}");
    // The usable end of the GPT disk (34 sectors before the end).
    assert!(part.start + part.size <= size - 33 * 512, "{part:?}");
    let grows = fs_grows(&events);
    assert_eq!(grows.len(), 1, "{grows:?}");
    assert_eq!(grows[0].1["ok"], true, "{}", grows[0].1);
    assert_eq!(grows[0].1["tool"], "pvresize");
    let (pe_count, alloc) = check_pv(&target, &part, &lvs, "PV shrunk");
    assert_eq!(alloc, 12);
    assert!((12..51).contains(&pe_count), "{pe_count}");
    let ext = table.parts[0].clone();
    let img = d.join("check-1.img");
    extract(&target, ext.start, ext.size, &img);
    assert_fsck_clean(&img, "ext4 before the PV");
    fs::remove_file(&img).unwrap();

    // Extents allocated beyond the new end: refused before writing, named, the shortfall
    // counted from the PV's last allocated extent.
    let (src2, _, _) = pv_last_source(d, "src-pv-full.img", &[("root", 8), ("big", 32)], 2300);
    savedisk(&repo, "full", &[&src2], &[]).ok();
    let target = garbage(d, "small-pv-2.img", size, 11);
    let before = sha_all(&target);
    let r = restoredisk(&repo, "full", &[&target], &[]).code(3);
    let lo = LoopDev::attach_range(
        &src2,
        None,
        Some((src_table.parts[1].start, src_table.parts[1].size)),
    );
    let (pe_start, extent, _, alloc) = pv_geometry(&lo);
    drop(lo);
    let pv_end = src_table.parts[1].start + pe_start + alloc * extent;
    let usable = size - 33 * 512;
    r.says(&[
        "partition 2 does not fit",
        &format!("{} bytes", pv_end - usable),
        &format!("end at byte {pv_end}"),
        "nothing was written",
    ]);
    assert_eq!(
        sha_all(&target),
        before,
        "a refused restore wrote to the target"
    );
    lifeboat(&[
        "--lang",
        "ja",
        "restoredisk",
        "--repo",
        s(&repo),
        "--image",
        "full",
        "--yes",
        "--disk",
        s(&target),
    ])
    .code(3)
    .says(&[
        "パーティション 2 が収まりません",
        "LVM 物理ボリューム",
        &pv_end.to_string(),
    ]);
    assert_eq!(sha_all(&target), before);
}
