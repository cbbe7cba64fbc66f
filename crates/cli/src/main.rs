//! `lifeboat`: the reference command line over the lifeboat crates.
//!
//! A thin binary: argument parsing, confirmations, progress drawing and exit codes. All the
//! work is done by `lifeboat-engine`.
#![forbid(unsafe_code)]

mod console;
mod demo;
mod i18n;
mod interact;
mod output;
mod size;
mod stream;

rust_i18n::i18n!("locales", fallback = "en");

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use lifeboat_engine::{EngineError, RestoreOptions, SaveOptions};
use lifeboat_repo::{ImageName, ImageStatus, Repository};
use output::{human, Ui};
use rust_i18n::t;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit status: the operation was refused (a safety check, or the operator said no);
/// nothing was written.
pub const EXIT_REFUSED: i32 = 3;
/// Exit status: the image is damaged or incomplete.
pub const EXIT_DAMAGED: i32 = 4;
/// Exit status: bad arguments (as clap's usage errors), e.g. an invalid image name.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: cancelled with Ctrl-C.
pub const EXIT_CANCELLED: i32 = 130;

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Save whole disks to images and restore them — only the blocks the filesystems use are stored",
    long_about = "lifeboat saves whole disks (partition tables, boot areas and every partition) into named \
images in a repository directory, storing only the blocks that ext2/3/4 filesystems use \
(other partitions are copied whole), and restores them onto the same or a same-type machine.\n\n\
Typical use from a rescue system:\n  \
lifeboat disks\n  \
lifeboat savedisk    --repo /mnt/usb/images --image web01-2026-11-25 --disk /dev/sdb\n  \
lifeboat check       --repo /mnt/usb/images --image web01-2026-11-25\n  \
lifeboat restoredisk --repo /mnt/usb/images --image web01-2026-11-25 --disk /dev/sdc\n\n\
Exit status: 0 success, 1 failure, 2 bad arguments, 3 refused (safety check or answer 'no'; \
nothing written), 4 image damaged or incomplete, 130 cancelled.",
    after_help = "Run 'lifeboat demo' to see a save and restore of a small built-in disk."
)]
struct Cli {
    /// Print progress and results as JSON lines (NDJSON events) on standard output.
    #[arg(long, global = true)]
    json: bool,
    /// Language of messages and help: en or ja (default: from LC_ALL, LC_MESSAGES, LANG).
    #[arg(long, global = true, value_name = "LANG", value_parser = ["en", "ja"])]
    lang: Option<String>,
    /// More log output on standard error (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors: no progress display and no step messages.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also write the log (with timestamps, at least level info) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Without a command on a terminal, the guided console starts.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct RepoArg {
    /// Repository: a directory that holds the images (e.g. a mounted USB disk), or a network
    /// address: smb://[USER@]SERVER[:PORT]/SHARE[/DIR], nfs://SERVER[:PORT]/EXPORT[/DIR],
    /// sftp://[USER@]HOST[:PORT]/PATH, s3://BUCKET[/PREFIX][?endpoint=URL&region=R].
    /// Passwords come from the environment, a credentials file (mode 0600), an SSH agent or
    /// key, or a prompt. `-` is one image stream instead of a repository: savedisk and
    /// saveparts write it to standard output, restoredisk and restoreparts read it from
    /// standard input (for ssh, nc, udp-sender/udp-receiver).
    #[arg(long, value_name = "REPO")]
    repo: String,
}

#[derive(Args, Clone)]
struct ImageArg {
    /// Image name: letters, digits and . _ - + @ (e.g. web01-2026-11-25).
    #[arg(long, value_name = "NAME")]
    image: String,
}

#[derive(Args, Clone)]
struct Tuning {
    /// Compression/decompression threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Save whole disks into a new image.
    Savedisk(SaveArgs),
    /// Save some partitions of a disk into a new image.
    Saveparts(SavePartsArgs),
    /// Restore an image onto disks, overwriting them.
    Restoredisk(RestoreArgs),
    /// Restore some partitions of an image onto existing partitions of a disk.
    Restoreparts(RestorePartsArgs),
    /// List the images in a repository (incomplete ones are marked).
    List {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Show what an image holds: disks, partition tables, filesystems, sizes.
    Info {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
    },
    /// Read a whole image and verify every checksum, without writing anything.
    Check {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Delete an image, or every incomplete image (left by saves that did not finish).
    Delete {
        #[command(flatten)]
        repo: RepoArg,
        /// The image to delete.
        #[arg(
            long,
            value_name = "NAME",
            conflicts_with = "incomplete",
            required_unless_present = "incomplete"
        )]
        image: Option<String>,
        /// Delete every incomplete image instead.
        #[arg(long)]
        incomplete: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List the disks of this machine with size, model, serial, partitions and mounts.
    Disks,
    /// Guided save and restore on the terminal (also what `lifeboat` alone starts).
    Console,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    Manpage {
        /// Write lifeboat.1 and lifeboat-<command>.1 into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Save and restore a small built-in disk image, then verify it (no root needed).
    Demo {
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
}

#[derive(Args)]
struct SaveArgs {
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    image: ImageArg,
    /// Disk to save: a whole disk (/dev/sdb) or a disk image file. Repeat for several disks.
    #[arg(long, value_name = "DISK", required = true)]
    disk: Vec<PathBuf>,
    /// Split the image into files of at most this size (e.g. 4000M for FAT32 sticks).
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size)]
    split_size: Option<u64>,
    /// zstd compression level (1 fastest … 19 smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args)]
struct SavePartsArgs {
    #[command(flatten)]
    save: SaveArgs,
    /// Partition number to save (as in /dev/sdb2 → 2). Repeat for several.
    #[arg(long = "part", value_name = "N", required = true)]
    parts: Vec<u32>,
}

#[derive(Args)]
struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Image name (required, except with `--repo -`, where the stream carries its image; if
    /// given there, the stream's manifest must name it).
    #[arg(long, value_name = "NAME")]
    image: Option<String>,
    /// Target disk, one per disk of the image, in the same order. It will be OVERWRITTEN.
    #[arg(long, value_name = "DISK", required = true)]
    disk: Vec<PathBuf>,
    /// Do not ask for confirmation (for scripts). Without it and without a terminal,
    /// restore refuses.
    #[arg(long)]
    yes: bool,
    /// Skip the verification pass before writing (checksums are still verified while
    /// writing; a damaged image then stops half-way and leaves the disk inconsistent).
    #[arg(long)]
    no_precheck: bool,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args)]
struct RestorePartsArgs {
    #[command(flatten)]
    restore: RestoreArgs,
    /// Partition number to restore onto the same-numbered partition of the target. Repeat
    /// for several.
    #[arg(long = "part", value_name = "N", required = true)]
    parts: Vec<u32>,
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let lang = i18n::lang_arg(&args)
        .and_then(|l| i18n::Lang::parse(&l))
        .unwrap_or_else(i18n::Lang::from_env);
    i18n::set(lang);
    let matches = match cli_command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.format(&mut cli_command()).exit(),
    };
    let ui = Ui::new(cli.json, cli.quiet);
    if let Err(e) = output::init_logging(cli.verbose, cli.quiet, cli.log_file.as_deref()) {
        ui.error(&e, "usage");
        std::process::exit(EXIT_USAGE);
    }
    tracing::debug!(args = ?args, lang = lang.code(), "lifeboat {}", env!("CARGO_PKG_VERSION"));
    if cli.command.is_none() && !std::io::stdin().is_terminal() {
        let _ = cli_command().print_help();
        std::process::exit(EXIT_USAGE);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = Arc::clone(&cancel);
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                std::process::exit(EXIT_CANCELLED);
            }
        });
    }
    let code = match run(cli, &ui, &cancel) {
        Ok(()) => 0,
        Err(e) => {
            let code = exit_code(&e);
            ui.error(&e, console::error_kind(code));
            code
        }
    };
    std::process::exit(code);
}

/// The clap definition with its texts in the current language.
fn cli_command() -> clap::Command {
    i18n::localize(<Cli as clap::CommandFactory>::command())
}

/// `lifeboat manpage`: the roff page on stdout, or one page per command into `dir`.
fn manpage(dir: Option<PathBuf>) -> Result<()> {
    let cmd = cli_command();
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

fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<Refusal>().is_some() {
        return EXIT_REFUSED;
    }
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::Repo(lifeboat_repo::RepoError::InvalidName { .. })) => EXIT_USAGE,
        Some(EngineError::Refused(_)) => EXIT_REFUSED,
        Some(EngineError::Cancelled(_)) => EXIT_CANCELLED,
        Some(EngineError::Image { .. })
        | Some(EngineError::Damaged(_))
        | Some(EngineError::Repo(lifeboat_repo::RepoError::Incomplete { .. })) => EXIT_DAMAGED,
        Some(EngineError::Repo(lifeboat_repo::RepoError::Foreign { .. })) => EXIT_REFUSED,
        _ => match e.downcast_ref::<lifeboat_repo::RepoError>() {
            Some(lifeboat_repo::RepoError::Foreign { .. }) => EXIT_REFUSED,
            Some(lifeboat_repo::RepoError::Incomplete { .. }) => EXIT_DAMAGED,
            Some(lifeboat_repo::RepoError::InvalidName { .. }) => EXIT_USAGE,
            _ => 1,
        },
    }
}

/// The operator declined, or confirmation was impossible.
#[derive(Debug)]
struct Refusal(String);
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refusal {}

fn threads(t: &Tuning) -> usize {
    t.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

fn open_repo(r: &RepoArg) -> Result<Repository> {
    Ok(lifeboat_remote::open(&r.repo, &interact::TerminalUi)?)
}

fn image_name(i: &ImageArg) -> Result<ImageName> {
    Ok(ImageName::new(&i.image)?)
}

fn run(cli: Cli, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    let lang_given = cli.lang.is_some();
    match cli.command.unwrap_or(Command::Console) {
        Command::Savedisk(a) => save(a, Vec::new(), ui, cancel),
        Command::Saveparts(a) => save(a.save, a.parts, ui, cancel),
        Command::Restoredisk(a) => restore(a, Vec::new(), ui, cancel),
        Command::Restoreparts(a) => restore(a.restore, a.parts, ui, cancel),
        Command::List { repo } => list(&open_repo(&repo)?, ui),
        Command::Info { repo, image } => info(&open_repo(&repo)?, &image_name(&image)?, ui),
        Command::Check {
            repo,
            image,
            tuning,
        } => {
            let repo = open_repo(&repo)?;
            let name = image_name(&image)?;
            let r =
                lifeboat_engine::check(&repo, &name, threads(&tuning), &|e| ui.event(e), cancel)?;
            ui.finish_progress();
            ui.say(&t!(
                "cmd.check_ok",
                image = name,
                chunks = r.chunks,
                data = human(r.data_bytes),
                files = r.files
            ));
            Ok(())
        }
        Command::Delete {
            repo,
            image,
            incomplete,
            yes,
        } => delete(&open_repo(&repo)?, image, incomplete, yes, ui),
        Command::Disks => output::disks(ui),
        Command::Console => std::process::exit(console::run(lang_given, ui, cancel)),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut cli_command(),
                "lifeboat",
                &mut std::io::stdout().lock(),
            );
            Ok(())
        }
        Command::Manpage { dir } => manpage(dir),
        Command::Demo { keep } => demo::run(keep, ui, cancel),
    }
}

fn save(a: SaveArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    if a.repo.repo == stream::STREAM {
        return stream::save(a, parts, ui, cancel);
    }
    let repo = open_repo(&a.repo)?;
    let name = image_name(&a.image)?;
    let mut opts = SaveOptions::new(name.clone(), a.disk);
    opts.parts = parts;
    opts.split_size = a.split_size;
    opts.level = a.level;
    opts.threads = threads(&a.tuning);
    let m = lifeboat_engine::save(&repo, &opts, &|e| ui.event(e), cancel)?;
    ui.finish_progress();
    let image_bytes: u64 = m.files.iter().map(|f| f.size).sum();
    ui.say(&t!(
        "cmd.saved",
        image = name,
        repo = repo.location(),
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

fn restore(a: RestoreArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    if a.repo.repo == stream::STREAM {
        return stream::restore(a, parts, ui, cancel);
    }
    let Some(image) = a.image.clone() else {
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "the following required argument was not provided: --image <NAME>\n",
        )
        .exit()
    };
    let repo = open_repo(&a.repo)?;
    let name = image_name(&ImageArg { image })?;
    if !a.yes && !std::io::stdin().is_terminal() {
        return Err(Refusal(t!("cmd.restore_needs_terminal").into()).into());
    }
    let mut opts = RestoreOptions::new(name.clone(), a.disk);
    opts.parts = parts;
    opts.precheck = !a.no_precheck;
    opts.threads = threads(&a.tuning);
    let plan = lifeboat_engine::plan_restore(&repo, &opts)?;
    if !a.yes {
        if let Some(m) = plan.manifest() {
            eprintln!(
                "{}",
                t!(
                    "cmd.restore_intro",
                    image = name,
                    created = m.created,
                    host = m.host
                )
            );
        }
        for t in plan.targets() {
            eprintln!("  {}", t.describe());
        }
        eprintln!("{}", t!("summary.lost"));
        if !ask(&t!("cmd.continue"))? {
            return Err(Refusal(t!("cmd.said_no").into()).into());
        }
        for t in plan.targets() {
            let id = t.disk.identity();
            let prompt = t!(
                "summary.confirm2",
                disk = t.disk.path().display(),
                model = id.model.as_deref().unwrap_or("?"),
                serial = id.serial.as_deref().or(id.wwn.as_deref()).unwrap_or("?"),
                size = human(t.disk.size())
            );
            if !ask(&prompt)? {
                return Err(Refusal(t!("cmd.said_no").into()).into());
            }
        }
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

fn list(repo: &Repository, ui: &Ui) -> Result<()> {
    let entries = repo.list()?;
    if ui.json() {
        let v: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match &e.status {
                ImageStatus::Complete(m) => serde_json::json!({
                    "image": e.name, "complete": true, "bytes": e.bytes,
                    "created": m.created, "host": m.host, "kind": m.kind,
                    "stored_bytes": m.totals.stored_bytes,
                    "disks": m.disks.iter().map(|d| serde_json::json!({"source": d.source, "size": d.size})).collect::<Vec<_>>(),
                }),
                ImageStatus::Incomplete(why) => serde_json::json!({
                    "image": e.name, "complete": false, "bytes": e.bytes, "reason": why,
                }),
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no images in {}", repo.location());
        return Ok(());
    }
    println!(
        "{:<32} {:<10} {:<20} {:>10} {:>10}  DISKS",
        "IMAGE", "STATUS", "CREATED", "DATA", "SIZE"
    );
    for e in &entries {
        match &e.status {
            ImageStatus::Complete(m) => println!(
                "{:<32} {:<10} {:<20} {:>10} {:>10}  {}",
                e.name,
                "complete",
                m.created,
                human(m.totals.stored_bytes),
                human(e.bytes),
                m.disks
                    .iter()
                    .map(|d| format!("{} ({})", d.source, human(d.size)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ImageStatus::Incomplete(why) => println!(
                "{:<32} {:<10} {:<20} {:>10} {:>10}  {why}",
                e.name,
                "INCOMPLETE",
                "-",
                "-",
                human(e.bytes)
            ),
        }
    }
    Ok(())
}

fn info(repo: &Repository, name: &ImageName, ui: &Ui) -> Result<()> {
    let m = repo.read_manifest(name)?;
    if ui.json() {
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    println!("image     {}", m.image);
    println!(
        "kind      {}",
        if m.kind == lifeboat_container::ImageKind::Disks {
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
            "          {:>4} {:>12} {:>10} {:<22} {:<8} {:>7} {:<12} {:>10}",
            "PART", "START", "SIZE", "TYPE", "FS", "CLUSTER", "MODE", "USED"
        );
        for p in &d.table.partitions {
            println!(
                "          {:>4} {:>12} {:>10} {:<22} {:<8} {:>7} {:<12} {:>10}{}",
                p.number,
                p.start,
                human(p.size),
                truncate(&p.type_name, 22),
                p.filesystem,
                if p.saved && p.mode != "raw" {
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
        }
        for r in &d.boot_regions {
            println!("          + {} at {} ({})", human(r.len), r.offset, r.what);
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn delete(
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
        let gone = repo.delete_incomplete()?;
        ui.say(&format!(
            "deleted {} incomplete image(s){}",
            gone.len(),
            if gone.is_empty() {
                String::new()
            } else {
                format!(": {}", gone.join(", "))
            }
        ));
    } else {
        let name = ImageName::new(image.as_deref().context("--image is required")?)?;
        repo.delete(&name)?;
        ui.say(&format!("deleted image {name}"));
    }
    Ok(())
}
