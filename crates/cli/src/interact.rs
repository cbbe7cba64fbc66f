//! What network repositories and stream restores ask the operator, on the terminal.
//!
//! Every question goes to the controlling terminal (`/dev/tty`), never to standard input or
//! output: in stream mode those carry the image. Without a terminal nothing is asked:
//! no secret is available, and no unknown host key is accepted — not even under `--yes`,
//! which confirms overwriting disks, not trusting a server nobody has checked.

use lifeboat_remote::Interaction;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};

/// The terminal as the operator's side of [`Interaction`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalUi;

/// The controlling terminal, if this process has one.
fn tty() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
        .filter(|f| f.is_terminal())
}

/// Asks a yes/no question on the controlling terminal; `None` without one. Only `y` or
/// `yes` is a yes.
pub fn ask_tty(prompt: &str) -> Option<bool> {
    let mut t = tty()?;
    write!(t, "{prompt} [y/N] ").ok()?;
    t.flush().ok()?;
    let mut line = String::new();
    BufReader::new(t).read_line(&mut line).ok()?;
    Some(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// True when a question can be asked on a terminal.
pub fn have_tty() -> bool {
    tty().is_some()
}

impl Interaction for TerminalUi {
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn secret(&self, prompt: &str) -> Option<String> {
        if !have_tty() {
            return None;
        }
        // Reads from /dev/tty with echo off when standard input is not the terminal.
        dialoguer::Password::new()
            .with_prompt(prompt)
            .allow_empty_password(true)
            .report(false)
            .interact()
            .ok()
    }

    fn accept_host_key(&self, host: &str, key_type: &str, fingerprint: &str) -> bool {
        let Some(mut t) = tty() else {
            eprintln!(
                "{host} offers a {key_type} host key that is not in known_hosts ({fingerprint}); without a terminal to confirm it the connection is refused — add the key to ~/.ssh/known_hosts (ssh-keyscan, after checking the fingerprint)"
            );
            return false;
        };
        let _ = writeln!(
            t,
            "The host key of {host} is not known.\n  key type:    {key_type}\n  fingerprint: {fingerprint}\nCompare the fingerprint with the server's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it)."
        );
        drop(t);
        ask_tty("Trust this key for this connection?").unwrap_or(false)
    }
}
