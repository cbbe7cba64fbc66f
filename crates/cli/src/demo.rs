//! `lifeboat demo`: saves the built-in disk, overwrites a copy with garbage, restores onto it
//! and verifies every stored byte (and, where `e2fsck` exists, each restored filesystem).

use crate::output::{human, Ui};
use anyhow::{bail, Context, Result};
use lifeboat_engine::{
    compare_stored, plan_restore, save, ImageName, PartitionRecord, Repository, RestoreOptions,
    SaveOptions,
};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The demo disk: 48 MiB, MBR with a bootable ext4 and a logical ext2, random "boot code"
/// before the first partition. Made by `test_data/make-demo.sh`.
static DEMO_DISK: &[u8] = include_bytes!("../../../test_data/demo-disk.img.zst");

/// Fills a file with pseudo-random garbage (xorshift), like a disk that held other data.
fn garbage(path: &Path, len: u64) -> Result<()> {
    let mut f = File::create(path)?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

pub fn run(keep: Option<PathBuf>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    let tmp;
    let dir = match keep {
        Some(d) => {
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let source = dir.join("source-disk.img");
    let target = dir.join("target-disk.img");
    let repo_dir = dir.join("repo");
    fs::create_dir_all(&repo_dir)?;
    let disk = zstd::decode_all(DEMO_DISK).context("unpacking the built-in demo disk")?;
    fs::write(&source, &disk)?;
    ui.note(&format!(
        "demo: a {} disk (MBR, bootable ext4 + logical ext2, boot code before the first partition) in {}",
        human(disk.len() as u64),
        source.display()
    ));

    let repo = Repository::open(repo_dir.to_str().context("non-UTF-8 path")?)?;
    let name = ImageName::new("demo")?;
    if repo.list()?.iter().any(|e| e.name == "demo") {
        repo.delete(&name)?;
    }
    let m = save(
        &repo,
        &SaveOptions::new(name.clone(), vec![source.clone()]),
        &|e| ui.event(e),
        cancel,
    )?;
    ui.finish_progress();
    let image_bytes: u64 = m.files.iter().map(|f| f.size).sum();
    ui.note(&format!(
        "1. saved: {} of {} stored ({} on disk after compression) into {}",
        human(m.totals.stored_bytes),
        human(disk.len() as u64),
        human(image_bytes),
        repo_dir.join("demo").display()
    ));
    for p in &m.disks[0].table.partitions {
        ui.note(&format!(
            "   partition {}: {} {}, {} used of {}",
            p.number,
            p.filesystem,
            p.mode,
            human(p.used_bytes),
            human(p.size)
        ));
    }

    garbage(&target, disk.len() as u64)?;
    ui.note(&format!(
        "2. filled {} with random garbage",
        target.display()
    ));

    let plan = plan_restore(
        &repo,
        &RestoreOptions::new(name.clone(), vec![target.clone()]),
    )?;
    plan.execute(&|e| ui.event(e), cancel)?;
    ui.finish_progress();
    ui.note("3. restored the image onto the garbage-filled copy");

    // Verify: every byte the image stores is identical on the source and the target.
    let c = compare_stored(&repo, &name, &source, &target)?;
    if let Some((start, end)) = c.first_difference {
        bail!("verification failed: bytes {start}..{end} differ between source and target");
    }
    let (bytes, extents) = (c.bytes, c.extents);
    ui.note(&format!(
        "4. verified: {} in {extents} extents identical on source and target (MBR, boot code, EBR, used blocks)",
        human(bytes)
    ));
    fsck_partitions(&target, &m.disks[0].table.partitions, ui)?;
    ui.say("demo finished: the whole job works on this machine");
    Ok(())
}

/// Runs `e2fsck -fn` on each restored ext partition, if e2fsck is installed.
fn fsck_partitions(target: &Path, parts: &[PartitionRecord], ui: &Ui) -> Result<()> {
    let Ok(path) = which("e2fsck") else {
        ui.note("   (e2fsck is not installed: the filesystem check is skipped)");
        return Ok(());
    };
    let disk = File::open(target)?;
    for p in parts.iter().filter(|p| p.filesystem.starts_with("ext")) {
        let part_file = target.with_extension(format!("p{}", p.number));
        let mut buf = vec![0u8; p.size as usize];
        disk.read_exact_at(&mut buf, p.start)?;
        fs::write(&part_file, &buf)?;
        let out = std::process::Command::new(&path)
            .arg("-fn")
            .arg(&part_file)
            .output()
            .context("running e2fsck")?;
        let _ = fs::remove_file(&part_file);
        if !out.status.success() {
            bail!(
                "e2fsck found problems on restored partition {}:\n{}",
                p.number,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        ui.note(&format!(
            "   e2fsck -fn on restored partition {} ({}): clean",
            p.number, p.filesystem
        ));
    }
    Ok(())
}

fn which(tool: &str) -> Result<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&paths).chain(["/sbin".into(), "/usr/sbin".into()]) {
        let p = dir.join(tool);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{tool} not found")
}
