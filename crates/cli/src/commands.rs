//! The scripted commands: each takes its validated arguments, calls the engine and prints
//! the result.

use crate::confirm::{self, Refusal};
use crate::flags::{self, DigestArg, ImageArg, ImportArgs, RepoArg, RestoreArgs, SaveArgs, Tuning};
use crate::output::{human, truncate, Ui};
use crate::stream;
use anyhow::{Context, Result};
use lifeboat_engine::{ImageKind, ImageName, ImageStatus, Repository};
use rust_i18n::t;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// `println!` with the text made terminal-safe (for names and texts read from a repository).
macro_rules! safe_println {
    ($($t:tt)*) => {
        println!("{}", crate::output::term_safe(&format!($($t)*)))
    };
}

/// `lifeboat manpage`: the roff page on stdout, or one page per command into `dir`.
pub fn manpage(dir: Option<PathBuf>) -> Result<()> {
    let cmd = flags::command();
    match dir {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
    }
    Ok(())
}

pub fn save(a: SaveArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    if a.repo.is_stream() {
        return stream::save(a, parts, ui, cancel);
    }
    let repo = a.repo.open()?;
    let opts = a.options(parts)?;
    let m = lifeboat_engine::save(&repo, &opts, &|e| ui.event(e), cancel)?;
    ui.finish_progress();
    let image_bytes: u64 = m.files.iter().map(|f| f.size).sum();
    ui.say(&t!(
        "cmd.saved",
        image = opts.image,
        repo = repo.location(),
        data = human(m.totals.stored_bytes),
        size = human(image_bytes),
        files = m.files.len()
    ));
    Ok(())
}

/// `lifeboat import`: a Clonezilla image into a new lifeboat image.
pub fn import(a: ImportArgs, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    let from = a.repo.open()?;
    let to = RepoArg { repo: a.to.clone() }.open()?;
    let opts = a.options()?;
    let plan = lifeboat_engine::plan_import(&from, &a.image, &opts)?;
    let m = plan.execute(&to, &|e| ui.event(e), cancel)?;
    ui.finish_progress();
    let image_bytes: u64 = m.files.iter().map(|f| f.size).sum();
    ui.say(&t!(
        "cmd.imported",
        source = a.image,
        image = opts.image,
        repo = to.location(),
        data = human(m.totals.stored_bytes),
        size = human(image_bytes),
        files = m.files.len()
    ));
    Ok(())
}

fn ask(prompt: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{prompt} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

pub fn restore(a: RestoreArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    if a.repo.is_stream() {
        return stream::restore(a, parts, ui, cancel);
    }
    let repo = a.repo.open()?;
    let opts = a.options(parts)?;
    let name = opts.image.clone().context("--image is required")?;
    if opts.dry_run {
        let plan = lifeboat_engine::plan_restore(&repo, &opts)?;
        ui.event(plan.plan_event());
        return Ok(());
    }
    confirm::require_terminal(a.yes, std::io::stdin().is_terminal(), false)?;
    let plan = lifeboat_engine::plan_restore(&repo, &opts)?;
    if !a.yes {
        let intro = match plan.manifest() {
            Some(m) => t!(
                "cmd.restore_intro",
                image = name,
                created = m.created,
                host = m.host
            )
            .to_string(),
            None => t!("cmd.restore_intro_stream", image = plan.describe_image()).to_string(),
        };
        confirm::confirm_restore(&plan, &intro, &mut |q| ask(q))?;
    }
    let r = plan.execute(&|e| ui.event(e), cancel)?;
    ui.finish_progress();
    ui.say(&t!(
        "cmd.restored",
        image = name,
        bytes = human(r.bytes_written)
    ));
    Ok(())
}

/// `lifeboat check`.
pub fn check(
    repo: &RepoArg,
    image: &ImageArg,
    digest: &DigestArg,
    tuning: &Tuning,
    ui: &Ui,
    cancel: &AtomicBool,
) -> Result<()> {
    let digest = digest.validated();
    let repo = repo.open()?;
    let name = image.name()?;
    if lifeboat_engine::is_clonezilla(&repo, name.as_str()) {
        let r = lifeboat_engine::clonezilla_check(&repo, name.as_str(), &|e| ui.event(e), cancel)?;
        ui.finish_progress();
        ui.say(&t!(
            "cmd.cz_check_ok",
            image = name,
            parts = r.parts,
            blocks = r.blocks,
            data = human(r.data_bytes),
            files = r.files
        ));
        return Ok(());
    }
    let opts = lifeboat_engine::CheckOptions {
        threads: tuning.threads(),
        passphrase: image.passphrase(),
        digest,
    };
    let r = lifeboat_engine::check(&repo, &name, &opts, &|e| ui.event(e), cancel)?;
    ui.finish_progress();
    // The notes come before the result, which is the last line (also of the JSON stream).
    ui.note(&t!("cmd.check_digest", digest = r.digest));
    if opts.digest.is_some() {
        ui.note(&t!("cmd.check_digest_matches"));
    }
    ui.say(&t!(
        "cmd.check_ok",
        image = name,
        chunks = r.chunks,
        data = human(r.data_bytes),
        files = r.files
    ));
    Ok(())
}

pub fn extract(
    repo: &RepoArg,
    image: &ImageArg,
    disk: u32,
    part: Option<u32>,
    out: &std::path::Path,
    digest: &DigestArg,
    ui: &Ui,
) -> Result<()> {
    let digest = digest.validated();
    let repo = repo.open()?;
    let name = image.name()?;
    let reader = open_verified(&repo, &name, image, digest.as_deref(), ui)?;
    let x = reader.extract(disk, part, out)?;
    let what = match part {
        Some(p) => t!("cmd.extract_part", disk = disk, part = p),
        None => t!("cmd.extract_disk", disk = disk),
    };
    ui.say(&t!(
        "cmd.extract_ok",
        what = what,
        image = name,
        out = out.display(),
        size = human(x.size),
        data = human(x.data_bytes)
    ));
    Ok(())
}

/// Opens an image for random reads (extract, mount) and proves its index first: the digest it
/// gives must be the manifest's and, with `--digest`, the operator's.
pub fn open_verified(
    repo: &Repository,
    name: &lifeboat_repo::ImageName,
    image: &ImageArg,
    digest: Option<&str>,
    ui: &Ui,
) -> Result<lifeboat_engine::ImageReader> {
    let reader = lifeboat_engine::ImageReader::open(repo, name, &image.passphrase())?;
    if reader.verify_digest(digest)?.is_some() && digest.is_some() {
        ui.note(&t!("cmd.check_digest_matches"));
    }
    Ok(reader)
}

pub fn list(repo: &Repository, ui: &Ui) -> Result<()> {
    let entries = repo.list()?;
    let clonezilla = lifeboat_engine::list_clonezilla(repo)?;
    if ui.json() {
        let mut v: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match &e.status {
                ImageStatus::Complete(m) => serde_json::json!({
                    "image": e.name, "format": "lifeboat", "complete": true, "bytes": e.bytes,
                    "created": m.created, "host": m.host, "kind": m.kind,
                    "stored_bytes": m.totals.stored_bytes,
                    "disks": m.disks.iter().map(|d| serde_json::json!({"source": d.source, "size": d.size})).collect::<Vec<_>>(),
                }),
                ImageStatus::Incomplete(why) => serde_json::json!({
                    "image": e.name, "format": "lifeboat", "complete": false, "bytes": e.bytes, "reason": why,
                    "saving": e.lease.as_ref().map(|l| serde_json::json!({
                        "host": l.host, "pid": l.pid, "user": l.user,
                        "started": l.started, "heartbeat_age_s": l.age(),
                    })),
                }),
            })
            .collect();
        v.extend(clonezilla.iter().map(|c| {
            serde_json::json!({
                "image": c.name, "format": "clonezilla", "complete": c.error.is_none(),
                "bytes": c.bytes, "disks": c.disks, "parts": c.parts, "reason": c.error,
            })
        }));
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    if entries.is_empty() && clonezilla.is_empty() {
        println!("no images in {}", repo.location());
        return Ok(());
    }
    println!(
        "{:<32} {:<10} {:<10} {:<20} {:>10} {:>10}  DISKS",
        "IMAGE", "STATUS", "FORMAT", "CREATED", "DATA", "SIZE"
    );
    for e in &entries {
        match &e.status {
            ImageStatus::Complete(m) => println!(
                "{:<32} {:<10} {:<10} {:<20} {:>10} {:>10}  {}",
                e.name,
                "complete",
                "lifeboat",
                m.created,
                human(m.totals.stored_bytes),
                human(e.bytes),
                m.disks
                    .iter()
                    .map(|d| format!("{} ({})", d.source, human(d.size)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ImageStatus::Incomplete(why) => match &e.lease {
                Some(l) => println!(
                    "{:<32} {:<10} {:<10} {:<20} {:>10} {:>10}  {}",
                    e.name,
                    "SAVING",
                    "lifeboat",
                    "-",
                    "-",
                    human(e.bytes),
                    t!("delete.lease", lease = l.to_string())
                ),
                None => println!(
                    "{:<32} {:<10} {:<10} {:<20} {:>10} {:>10}  {why}",
                    e.name,
                    "INCOMPLETE",
                    "lifeboat",
                    "-",
                    "-",
                    human(e.bytes)
                ),
            },
        }
    }
    for c in &clonezilla {
        let what = match &c.error {
            None => format!("{} ({})", c.disks.join(", "), c.parts.join(" ")),
            Some(why) => why.clone(),
        };
        // Names and texts come from the repository: shown terminal-safe.
        safe_println!(
            "{:<32} {:<10} {:<10} {:<20} {:>10} {:>10}  {what}",
            c.name,
            if c.error.is_none() {
                "readable"
            } else {
                "UNREADABLE"
            },
            "clonezilla",
            "-",
            "-",
            human(c.bytes)
        );
    }
    Ok(())
}

/// `lifeboat info` of a Clonezilla image.
fn clonezilla_info(repo: &Repository, name: &ImageName, ui: &Ui) -> Result<()> {
    let i = lifeboat_engine::clonezilla_info(repo, name.as_str())?;
    if ui.json() {
        println!("{}", serde_json::to_string(&i)?);
        return Ok(());
    }
    safe_println!("image     {}", i.image);
    safe_println!("format    Clonezilla image directory");
    for d in &i.disks {
        println!();
        safe_println!(
            "disk {}   table {}, {}-byte sectors; boot files: {}",
            d.name,
            d.table,
            d.sector_size,
            if d.boot_files.is_empty() {
                "-".to_string()
            } else {
                d.boot_files.join(", ")
            }
        );
        safe_println!(
            "          {:>4} {:>12} {:>10}  TYPE",
            "PART",
            "START",
            "SIZE"
        );
        for (n, start, size, kind) in &d.partitions {
            safe_println!(
                "          {:>4} {:>12} {:>10}  {kind}",
                n,
                start * u64::from(d.sector_size),
                human(size * u64::from(d.sector_size))
            );
        }
    }
    println!();
    safe_println!(
        "{:<12} {:<10} {:<8} {:<8} {:>10} {:>10} {:>10}  PARTCLONE",
        "PARTITION",
        "MODE",
        "FS",
        "COMPR",
        "STORED",
        "FS SIZE",
        "USED"
    );
    for p in &i.parts {
        let (size, used, pc) = match &p.partclone {
            Some(h) => (
                human(h.total_blocks * u64::from(h.block_size)),
                human(h.used_blocks * u64::from(h.block_size)),
                format!(
                    "{} {}, {}-byte blocks, {}",
                    h.format, h.fs, h.block_size, h.checksum
                ),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        safe_println!(
            "{:<12} {:<10} {:<8} {:<8} {:>10} {:>10} {:>10}  {pc}",
            p.name,
            p.mode,
            p.filesystem,
            p.compression,
            human(p.stored_bytes),
            size,
            used
        );
        if p.files.len() > 1 {
            safe_println!(
                "             {} pieces: {} … {}",
                p.files.len(),
                p.files[0],
                p.files[p.files.len() - 1]
            );
        }
    }
    Ok(())
}

pub fn info(repo: &Repository, image: &ImageArg, ui: &Ui) -> Result<()> {
    let name = image.name()?;
    if lifeboat_engine::is_clonezilla(repo, name.as_str()) {
        return clonezilla_info(repo, &name, ui);
    }
    let encrypted = repo.read_manifest(&name)?.is_sealed();
    let m = lifeboat_engine::image_manifest(repo, &name, &image.passphrase())?;
    if ui.json() {
        let mut v = serde_json::to_value(&m)?;
        v["encrypted"] = serde_json::Value::Bool(encrypted);
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("image     {}", m.image);
    println!(
        "kind      {}",
        if m.kind == ImageKind::Disks {
            "whole disks"
        } else {
            "partitions"
        }
    );
    println!(
        "created   {} on host {} by {} {}",
        m.created, m.host, m.tool.name, m.tool.version
    );
    println!(
        "data      {} stored, {} in {} file(s), {}",
        human(m.totals.stored_bytes),
        human(m.files.iter().map(|f| f.size).sum()),
        m.files.len(),
        m.compression
    );
    println!(
        "digest    {}",
        m.digest
            .as_deref()
            .unwrap_or("- (saved before image format 1.2)")
    );
    if encrypted {
        println!("encrypted AES-256-GCM, key from the passphrase through Argon2id");
    }
    for d in &m.disks {
        println!();
        println!(
            "disk {}    {} — {} ({} bytes), {}-byte sectors, table {}{}",
            d.index,
            d.source,
            human(d.size),
            d.size,
            d.logical_sector_size,
            d.table.kind,
            d.table
                .disk_id
                .as_ref()
                .map(|i| format!(" id {i}"))
                .unwrap_or_default()
        );
        let id = &d.identity;
        if id.model.is_some() || id.serial.is_some() || id.wwn.is_some() {
            println!(
                "          model {}  serial {}  wwn {}",
                id.model.as_deref().unwrap_or("-"),
                id.serial.as_deref().unwrap_or("-"),
                id.wwn.as_deref().unwrap_or("-")
            );
        }
        for w in &d.table.warnings {
            println!("          note: {w}");
        }
        println!(
            "          {:>4} {:>12} {:>10} {:<22} {:<12} {:>7} {:<12} {:>10}",
            "PART", "START", "SIZE", "TYPE", "FS", "CLUSTER", "MODE", "USED"
        );
        for p in &d.table.partitions {
            println!(
                "          {:>4} {:>12} {:>10} {:<22} {:<12} {:>7} {:<12} {:>10}{}",
                p.number,
                p.start,
                human(p.size),
                truncate(&p.type_name, 22),
                p.filesystem,
                if p.saved && p.mode != "raw" && p.volumes.is_empty() {
                    human(u64::from(p.block_size))
                } else {
                    "-".into()
                },
                if p.saved {
                    p.mode.as_str()
                } else {
                    "not saved"
                },
                if p.saved {
                    human(p.used_bytes)
                } else {
                    "-".into()
                },
                p.label
                    .as_ref()
                    .map(|l| format!("  label {l}"))
                    .unwrap_or_default()
                    + &p.files.map(|n| format!("  files {n}")).unwrap_or_default()
            );
            for n in &p.notes {
                println!("               note: {n}");
            }
            if p.saved {
                print_volumes(&p.volumes, 15);
            }
            if let Some(u) = p.unallocated_bytes {
                println!("               unallocated {} (not stored)", human(u));
            }
        }
        for r in &d.boot_regions {
            println!("          + {} at {} ({})", human(r.len), r.offset, r.what);
        }
    }
    Ok(())
}

/// The logical volumes inside a volume manager's member, one line each (and theirs below).
fn print_volumes(volumes: &[lifeboat_engine::VolumeRecord], indent: usize) {
    for v in volumes {
        println!(
            "{:indent$}{} ({}, {}): {}, {}{}{}",
            "",
            v.name,
            v.layout,
            human(v.size),
            v.filesystem,
            if v.mode == "raw" {
                "copied whole".to_string()
            } else {
                format!("{} used", human(v.used_bytes))
            },
            v.label
                .as_ref()
                .map(|l| format!(", label {l}"))
                .unwrap_or_default(),
            v.uuid
                .as_ref()
                .map(|u| format!(", uuid {u}"))
                .unwrap_or_default(),
        );
        for n in &v.notes {
            println!("{:indent$}  note: {n}", "");
        }
        print_volumes(&v.volumes, indent + 2);
    }
}

pub fn delete(
    repo: &Repository,
    image: Option<String>,
    incomplete: bool,
    yes: bool,
    ui: &Ui,
) -> Result<()> {
    let what = if incomplete {
        format!("every incomplete image in {}", repo.location())
    } else {
        format!(
            "image {} in {}",
            image.as_deref().unwrap_or(""),
            repo.location()
        )
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Refusal(format!(
                "deleting {what} needs --yes when not on a terminal"
            ))
            .into());
        }
        if !ask(&format!("Delete {what}?"))? {
            return Err(Refusal("the operator said no; nothing was deleted".into()).into());
        }
    }
    if incomplete {
        let done = repo.delete_incomplete()?;
        ui.say(&t!(
            "delete.incomplete_done",
            count = done.deleted.len(),
            names = if done.deleted.is_empty() {
                String::new()
            } else {
                format!(": {}", done.deleted.join(", "))
            }
        ));
        for (name, lease) in &done.busy {
            ui.say(&t!(
                "delete.skipped_saving",
                name = name,
                lease = t!("delete.lease", lease = lease.to_string())
            ));
        }
    } else {
        let name = ImageName::new(image.as_deref().context("--image is required")?)?;
        repo.delete(&name)?;
        ui.say(&t!("delete.done", name = name.as_str()));
    }
    Ok(())
}
