//! `lifeboat`: the reference command line over the lifeboat crates.
//!
//! A thin binary: [`flags`] parses and validates the arguments, [`commands`] and
//! [`console`] call the engine, [`output`] draws progress and results, [`exit`] turns errors
//! into exit statuses. This file only sets up (language, logging, Ctrl-C) and dispatches.
#![forbid(unsafe_code)]

// Every line printed goes through `output::term_safe`: names, labels and models from images
// and repositories never reach the terminal with their control characters.
macro_rules! println {
    () => { ::std::println!() };
    ($($t:tt)*) => { ::std::println!("{}", $crate::output::term_safe(&format!($($t)*))) };
}
macro_rules! eprintln {
    () => { ::std::eprintln!() };
    ($($t:tt)*) => { ::std::eprintln!("{}", $crate::output::term_safe(&format!($($t)*))) };
}

mod alloc;
mod commands;
mod confirm;
mod console;
mod demo;
mod exit;
mod flags;
mod i18n;
mod interact;
#[cfg(feature = "mount")]
mod mount;
mod output;
mod plan_text;
mod secret;
mod stream;

rust_i18n::i18n!("locales", fallback = "en");

use anyhow::Result;
use flags::{Cli, Command};
use output::Ui;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, lang) = flags::parse(&args);
    let ui = Ui::new(cli.json, cli.quiet);
    if let Err(e) = output::init_logging(cli.verbose, cli.quiet, cli.log_file.as_deref()) {
        ui.error(&e, lifeboat_engine::ErrorClass::Usage);
        std::process::exit(exit::USAGE);
    }
    // Never the raw arguments: a repository address may carry a password.
    let shown: Vec<String> = args
        .iter()
        .map(|a| lifeboat_remote::redact(&a.to_string_lossy()))
        .collect();
    tracing::debug!(args = ?shown, lang = lang.code(), "lifeboat {}", env!("CARGO_PKG_VERSION"));
    if cli.command.is_none() && !std::io::stdin().is_terminal() {
        let _ = flags::command().print_help();
        std::process::exit(exit::USAGE);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = Arc::clone(&cancel);
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                std::process::exit(exit::CANCELLED);
            }
        });
    }
    let code = match run(cli, &ui, &cancel) {
        Ok(()) => 0,
        Err(e) => {
            let class = exit::class_of(&e);
            ui.error(&e, class);
            exit::code(class)
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli, ui: &Ui, cancel: &AtomicBool) -> Result<()> {
    let lang_given = cli.lang.is_some();
    match cli.command.unwrap_or(Command::Console) {
        Command::Savedisk(a) => commands::save(a, Vec::new(), ui, cancel),
        Command::Saveparts(a) => commands::save(a.save, a.parts, ui, cancel),
        Command::Restoredisk(a) => commands::restore(a, Vec::new(), ui, cancel),
        Command::Restoreparts(a) => commands::restore(a.restore, a.parts, ui, cancel),
        Command::Import(a) => commands::import(a, ui, cancel),
        Command::List { repo } => commands::list(&repo.open()?, ui),
        Command::Info { repo, image } => commands::info(&repo.open()?, &image, ui),
        Command::Check {
            repo,
            image,
            digest,
            tuning,
        } => commands::check(&repo, &image, &digest, &tuning, ui, cancel),
        Command::Extract {
            repo,
            image,
            disk,
            part,
            out,
            digest,
        } => commands::extract(&repo, &image, disk, part, &out, &digest, ui),
        #[cfg(feature = "mount")]
        Command::Mount {
            repo,
            image,
            dir,
            digest,
        } => mount::mount(&repo, &image, &dir, &digest, ui, cancel),
        Command::Delete {
            repo,
            image,
            incomplete,
            yes,
        } => commands::delete(&repo.open()?, image, incomplete, yes, ui),
        Command::Disks => output::disks(ui),
        Command::Console => std::process::exit(console::run(lang_given, ui, cancel)),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut flags::command(),
                "lifeboat",
                &mut std::io::stdout().lock(),
            );
            Ok(())
        }
        Command::Manpage { dir } => commands::manpage(dir),
        Command::Demo { keep } => demo::run(keep, ui, cancel),
    }
}
