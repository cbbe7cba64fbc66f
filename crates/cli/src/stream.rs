//! `--repo -`: savedisk/saveparts write one image stream to standard output, and
//! restoredisk/restoreparts read one from standard input (for `ssh`, `nc`, `udp-sender`).
//!
//! Standard output carries nothing but the stream: every message, progress bar and question
//! goes to standard error or the terminal. Confirmations are asked on `/dev/tty`, since
//! standard input is the stream.

use crate::interact::{ask_tty, have_tty};
use crate::output::{human, Ui};
use crate::{image_name, threads, Refusal, RestoreArgs, SaveArgs};
use anyhow::Result;
use lifeboat_engine::{RestoreOptions, SaveOptions};
use lifeboat_repo::ImageName;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// What `--repo` takes for the stream.
pub const STREAM: &str = "-";

/// savedisk/saveparts `--repo -`.
pub fn save(a: SaveArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    if ui.json() {
        return Err(Refusal(
            "--json prints events on standard output, which carries the image stream with --repo -; leave out --json".into(),
        )
        .into());
    }
    if a.split_size.is_some() {
        return Err(Refusal(
            "--split-size cuts image files in a repository; a stream (--repo -) is one piece"
                .into(),
        )
        .into());
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(Refusal(
            "--repo - writes the image as binary data to standard output, which is a terminal; redirect it (> FILE, | ssh HOST …, | udp-sender); nothing was read or written".into(),
        )
        .into());
    }
    let name = image_name(&a.image)?;
    let mut opts = SaveOptions::new(name.clone(), a.disk);
    opts.parts = parts;
    opts.level = a.level;
    opts.threads = threads(&a.tuning);
    let out = BufWriter::with_capacity(1 << 20, stdout);
    let (mut out, m) = lifeboat_engine::save_to_stream(out, &opts, &|e| ui.event(e), cancel)?;
    out.flush()?;
    ui.finish_progress();
    eprintln!(
        "saved image {name} to standard output: {} of data, {} compressed",
        human(m.totals.stored_bytes),
        human(m.totals.compressed_bytes)
    );
    Ok(())
}

/// The file standard input reads from, when it is a regular file (its disk must not be a
/// target).
fn stdin_file() -> Option<PathBuf> {
    let p = std::fs::read_link("/proc/self/fd/0").ok()?;
    std::fs::metadata(&p).ok()?.is_file().then_some(p)
}

/// restoredisk/restoreparts `--repo -`.
pub fn restore(a: RestoreArgs, parts: Vec<u32>, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Refusal(
            "--repo - reads the image stream from standard input, which is a terminal; pipe the stream in (… | lifeboat restoredisk --repo - …, or < FILE); nothing was written".into(),
        )
        .into());
    }
    if !a.yes && !have_tty() {
        return Err(Refusal(
            "restore overwrites disks and needs a confirmation on a terminal (standard input carries the stream); add --yes in scripts; nothing was written".into(),
        )
        .into());
    }
    let mut opts = RestoreOptions::from_stream(a.disk);
    opts.image = a.image.as_deref().map(ImageName::new).transpose()?;
    opts.parts = parts;
    opts.threads = threads(&a.tuning);
    let origin = stdin_file();
    let reader = BufReader::with_capacity(1 << 20, stdin);
    let plan = lifeboat_engine::plan_restore_stream(reader, origin.as_deref(), &opts)?;
    if !a.yes {
        eprintln!("{} will be restored:", plan.describe_image());
        for t in plan.targets() {
            eprintln!("  {}", t.describe());
        }
        eprintln!("Everything on these disks will be lost.");
        if ask_tty("Continue?") != Some(true) {
            return Err(Refusal("the operator said no; nothing was written".into()).into());
        }
        for t in plan.targets() {
            let id = t.disk.identity();
            let prompt = format!(
                "Really overwrite {} (model {}, serial {}, {})?",
                t.disk.path().display(),
                id.model.as_deref().unwrap_or("unknown"),
                id.serial.as_deref().unwrap_or("unknown"),
                human(t.disk.size())
            );
            if ask_tty(&prompt) != Some(true) {
                return Err(Refusal("the operator said no; nothing was written".into()).into());
            }
        }
    }
    let r = plan.execute(&|e| ui.event(e), cancel)?;
    ui.finish_progress();
    let image = r.manifest.as_ref().map_or("?", |m| m.image.as_str());
    ui.say(&format!(
        "restored image {image} from standard input: {} written",
        human(r.bytes_written)
    ));
    Ok(())
}
