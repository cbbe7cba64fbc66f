//! The operator console: the guided save/restore flow (`lifeboat` on a terminal, or
//! `lifeboat console`).
//!
//! Steps: language, repository, mode, image, disk(s), summary and confirmation (twice for a
//! restore), progress, result with the equivalent one-line command. Prompts are drawn by
//! `dialoguer`; every text comes from the locale files. The operations are the engine's, the
//! same calls the scripted commands make. Esc or `q` in a menu goes back; Ctrl-C cancels.

mod disks;
mod flow;
mod mounts;
mod repo;

use crate::exit;
use crate::i18n::{self, Lang};
use crate::output::Ui;
use ::console::Term;
use anyhow::Result;
use dialoguer::theme::SimpleTheme;
use dialoguer::{Confirm, Input, MultiSelect, Password, Select};
use lifeboat_engine::ErrorClass;
use rust_i18n::t;
use std::sync::atomic::{AtomicBool, Ordering};

/// The outcome of a step: go on with a value, or go back one step.
pub(crate) enum Step<T> {
    Next(T),
    Back,
}

/// Ctrl-C at a prompt, before anything was written.
#[derive(Debug)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&t!("console.cancelled"))
    }
}

impl std::error::Error for Cancelled {}

/// The console's state: the terminal and what the operation reports to.
pub(crate) struct Console<'a> {
    ui: &'a Ui,
    cancel: &'a AtomicBool,
    term: Term,
    theme: SimpleTheme,
    /// The passphrase of encrypted images: asked (env or terminal) when the first encrypted
    /// image is chosen, then kept for the session.
    passphrase: lifeboat_engine::PassphraseSource,
}

/// Turns a prompt failure into a cancellation when it was Ctrl-C.
fn prompt_err(e: dialoguer::Error, cancel: &AtomicBool) -> anyhow::Error {
    let dialoguer::Error::IO(io) = &e;
    if io.kind() == std::io::ErrorKind::Interrupted || cancel.load(Ordering::SeqCst) {
        Cancelled.into()
    } else {
        anyhow::Error::new(e).context(t!("console.terminal_failed").to_string())
    }
}

impl<'a> Console<'a> {
    fn new(ui: &'a Ui, cancel: &'a AtomicBool) -> Self {
        Console {
            ui,
            cancel,
            term: Term::stderr(),
            theme: SimpleTheme,
            passphrase: crate::secret::source(None),
        }
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Cancelled.into());
        }
        Ok(())
    }

    /// A menu; `None` when the operator pressed Esc or `q`.
    pub(crate) fn select(
        &self,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<Option<usize>> {
        self.check_cancel()?;
        let r = Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default.min(items.len().saturating_sub(1)))
            .interact_on_opt(&self.term)
            .map_err(|e| prompt_err(e, self.cancel))?;
        self.check_cancel()?;
        Ok(r)
    }

    /// Several choices (space toggles, Enter accepts); `None` on Esc.
    pub(crate) fn multi_select(
        &self,
        prompt: &str,
        items: &[String],
        checked: &[bool],
    ) -> Result<Option<Vec<usize>>> {
        self.check_cancel()?;
        let r = MultiSelect::with_theme(&self.theme)
            .with_prompt(format!("{prompt} {}", t!("console.multi_hint")))
            .items(items)
            .defaults(checked)
            .interact_on_opt(&self.term)
            .map_err(|e| prompt_err(e, self.cancel))?;
        self.check_cancel()?;
        Ok(r)
    }

    /// A line of text, editable from `initial`, re-asked until `check` accepts it.
    pub(crate) fn input(
        &self,
        prompt: &str,
        initial: &str,
        check: impl Fn(&str) -> Result<(), String> + 'static,
    ) -> Result<Option<String>> {
        self.check_cancel()?;
        let r = Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .with_initial_text(initial)
            .allow_empty(true)
            .validate_with(move |s: &String| check(s))
            .interact_text_on(&self.term)
            .map_err(|e| prompt_err(e, self.cancel))?;
        self.check_cancel()?;
        Ok(Some(r))
    }

    /// A y/n question; `None` on Esc.
    pub(crate) fn confirm(&self, prompt: &str, default: bool) -> Result<Option<bool>> {
        self.check_cancel()?;
        let r = Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .interact_on_opt(&self.term)
            .map_err(|e| prompt_err(e, self.cancel))?;
        self.check_cancel()?;
        Ok(r)
    }

    /// A hidden secret (may be empty).
    pub(crate) fn password(&self, prompt: &str) -> Result<String> {
        self.check_cancel()?;
        let r = Password::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty_password(true)
            .interact_on(&self.term)
            .map_err(|e| prompt_err(e, self.cancel))?;
        self.check_cancel()?;
        Ok(r)
    }

    /// A message that needs attention (stays on screen).
    pub(crate) fn warn(&self, msg: &str) {
        tracing::warn!(target: crate::output::SHOWN, "{msg}");
        eprintln!("!! {msg}");
    }

    /// Step 1: the language.
    fn choose_language(&self) -> Result<()> {
        let current = i18n::current();
        let items = vec!["English".to_string(), "日本語 (Japanese)".to_string()];
        let default = if current == Lang::Ja { 1 } else { 0 };
        let i = self
            .select("Language / 言語", &items, default)?
            .unwrap_or(default);
        i18n::set(if i == 1 { Lang::Ja } else { Lang::En });
        Ok(())
    }
}

/// Runs the guided flow; returns the exit status. `lang_given`: the language came from
/// `--lang`, so the language step is skipped.
pub fn run(lang_given: bool, ui: &Ui, cancel: &AtomicBool) -> i32 {
    if ui.json() {
        let e = anyhow::anyhow!(t!("console.no_json").to_string());
        ui.error(&e, ErrorClass::Usage);
        return exit::USAGE;
    }
    if !Term::stderr().is_term() || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let e = anyhow::anyhow!(t!("console.no_terminal").to_string());
        ui.error(&e, ErrorClass::Usage);
        return exit::USAGE;
    }
    let mut c = Console::new(ui, cancel);
    let r = (|| -> Result<()> {
        if !lang_given {
            c.choose_language()?;
        }
        c.main_loop()
    })();
    let _ = c.term.show_cursor();
    match r {
        Ok(()) => 0,
        Err(e) if e.is::<Cancelled>() => {
            eprintln!();
            eprintln!("{}", t!("console.cancelled"));
            exit::CANCELLED
        }
        Err(e) => {
            let class = exit::class_of(&e);
            ui.error(&e, class);
            exit::code(class)
        }
    }
}
