//! `--repo -`: savedisk/saveparts write one image stream to standard output, and
//! restoredisk/restoreparts read one from standard input (for `ssh`, `nc`, `udp-sender`).
//!
//! Standard output carries nothing but the stream: every message, progress bar and question
//! goes to standard error or the terminal. Confirmations are asked on `/dev/tty`, since
//! standard input is the stream.

use crate::confirm::{self, Refusal};
use crate::flags::{RestoreArgs, SaveArgs};
use crate::interact::{ask_tty, have_tty};
use crate::output::{human, Ui};
use anyhow::Result;
use rust_i18n::t;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

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
    let opts = a.options(parts)?;
    let name = &opts.image;
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
    let opts = a.stream_options(parts)?;
    if !opts.dry_run {
        confirm::require_terminal(a.yes, have_tty(), true)?;
    }
    let origin = stdin_file();
    let reader = BufReader::with_capacity(1 << 20, stdin);
    let plan = lifeboat_engine::plan_restore_stream(reader, origin.as_deref(), &opts)?;
    if opts.dry_run {
        ui.event(plan.plan_event());
        return Ok(());
    }
    if !a.yes {
        let intro = t!("cmd.restore_intro_stream", image = plan.describe_image());
        confirm::confirm_restore(&plan, &intro, &mut |q| Ok(ask_tty(q) == Some(true)))?;
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
