//! The restore confirmation, the same for `restoredisk`/`restoreparts` from a repository, from
//! a stream (`--repo -`) and in the console: a first question about the whole plan, then one
//! per target disk naming its model, serial and size. `--yes` skips both (for scripts);
//! without `--yes` and without a terminal to ask on, the restore is refused.

use crate::output::human;
use anyhow::Result;
use lifeboat_engine::{RestorePlan, Target};
use rust_i18n::t;

/// The operator declined, or confirmation was impossible; nothing was written.
#[derive(Debug)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The operator answered no to a restore question.
    pub fn said_no() -> Self {
        Refusal(t!("cmd.said_no").into())
    }
}

/// Refuses a restore without `--yes` when there is no terminal to ask on. `stream`: standard
/// input carries the image, so the questions go to the controlling terminal.
pub fn require_terminal(yes: bool, have_terminal: bool, stream: bool) -> Result<()> {
    if yes || have_terminal {
        return Ok(());
    }
    let msg = if stream {
        t!("cmd.restore_needs_terminal_stream")
    } else {
        t!("cmd.restore_needs_terminal")
    };
    Err(Refusal(msg.into()).into())
}

/// The second question for one target: really overwrite this disk (model, serial, size)?
/// A size or model different from the source's is said first.
pub fn overwrite_question(target: &Target) -> String {
    let id = target.disk.identity();
    let notes: String = crate::plan_text::differences(target.plan())
        .into_iter()
        .map(|l| l + "\n")
        .collect();
    let question = t!(
        "summary.confirm2",
        disk = target.disk.path().display(),
        model = id.model.as_deref().unwrap_or("?"),
        serial = id.serial.as_deref().or(id.wwn.as_deref()).unwrap_or("?"),
        size = human(target.disk.size())
    );
    notes + &question
}

/// Asks `first` (after the caller showed what will happen), then [`overwrite_question`] for
/// every target, through `ask`; true when every answer was yes. Stops at the first no.
pub fn ask_restore(
    plan: &RestorePlan,
    first: &str,
    ask: &mut dyn FnMut(&str) -> Result<bool>,
) -> Result<bool> {
    if !ask(first)? {
        return Ok(false);
    }
    for t in plan.targets() {
        if !ask(&overwrite_question(t))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The confirmation of the scripted commands: `intro` (which image), the targets, what is
/// lost, then the questions through `ask`. A no is a [`Refusal`].
pub fn confirm_restore(
    plan: &RestorePlan,
    intro: &str,
    ask: &mut dyn FnMut(&str) -> Result<bool>,
) -> Result<()> {
    eprintln!("{intro}");
    for t in plan.targets() {
        eprintln!("  {}", t.describe());
        for l in crate::plan_text::lines(t.plan()) {
            eprintln!("  {l}");
        }
    }
    eprintln!("{}", t!("summary.lost"));
    if ask_restore(plan, &t!("cmd.continue"), ask)? {
        Ok(())
    } else {
        Err(Refusal::said_no().into())
    }
}
