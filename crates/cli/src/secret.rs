//! Where the passphrase of an encrypted image comes from: `--passphrase-file FILE` (refused
//! unless only its owner can read it), else the environment variable `LIFEBOAT_PASSPHRASE`,
//! else a hidden prompt on the terminal (asked twice when saving). A passphrase never appears
//! in the arguments, the log, the events or an error; it lives in wiped (`zeroize`) memory.

use crate::interact::have_tty;
use lifeboat_engine::{Passphrase, PassphraseSource};
use rust_i18n::t;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable that may hold the passphrase.
pub const ENV: &str = "LIFEBOAT_PASSPHRASE";

/// A passphrase file's content, refused when group or others may read or write it.
fn from_file(path: &Path) -> Result<Passphrase, String> {
    let shown = path.display().to_string();
    let mut f = std::fs::File::open(path)
        .map_err(|e| t!("secret.file_unreadable", file = shown, error = e).to_string())?;
    let meta = f
        .metadata()
        .map_err(|e| t!("secret.file_unreadable", file = shown, error = e).to_string())?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(t!(
            "secret.file_mode",
            file = shown,
            mode = format!("{mode:04o}")
        )
        .into());
    }
    if meta.len() > 64 << 10 {
        return Err(t!("secret.file_too_large", file = shown).into());
    }
    let mut s = Zeroizing::new(String::new());
    f.read_to_string(&mut s)
        .map_err(|e| t!("secret.file_unreadable", file = shown, error = e).to_string())?;
    // One trailing line end is not part of the passphrase (`echo secret > FILE`).
    let keep = s
        .strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .map_or(s.len(), str::len);
    s.truncate(keep);
    non_empty(s)
}

fn non_empty(s: Zeroizing<String>) -> Result<Passphrase, String> {
    if s.is_empty() {
        Err(t!("secret.empty").into())
    } else {
        Ok(Passphrase::new(s))
    }
}

/// Asks on the terminal with echo off; twice (and they must match) when `confirm`.
fn prompt(confirm: bool) -> Result<Passphrase, String> {
    if !have_tty() {
        return Err(t!("secret.none", env = ENV).into());
    }
    let mut p = dialoguer::Password::new()
        .with_prompt(t!("secret.prompt").to_string())
        .report(false);
    if confirm {
        p = p.with_confirmation(
            t!("secret.prompt_again").to_string(),
            t!("secret.mismatch").to_string(),
        );
    }
    let s = Zeroizing::new(
        p.interact()
            .map_err(|e| t!("secret.prompt_failed", error = e).to_string())?,
    );
    non_empty(s)
}

/// Gets a passphrase now: from `file`, else the environment, else the terminal.
pub fn get(file: Option<&Path>, confirm: bool) -> Result<Passphrase, String> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Some(v) = std::env::var_os(ENV) {
        let s = Zeroizing::new(
            v.into_string()
                .map_err(|_| t!("secret.env_not_utf8", env = ENV).to_string())?,
        );
        return non_empty(s);
    }
    prompt(confirm)
}

/// A source that asks only when an image is encrypted (the engine keeps the answer until it
/// turns out wrong).
pub fn source(file: Option<PathBuf>) -> PassphraseSource {
    PassphraseSource::new(move || get(file.as_deref(), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_others_can_read_is_refused_and_a_private_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(b"correct horse\n")
            .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&p).unwrap_err();
        assert!(e.contains("0644"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(&p).unwrap().bytes(), b"correct horse");
    }
}
