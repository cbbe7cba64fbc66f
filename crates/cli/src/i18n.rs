//! The operator's language: English or Japanese.
//!
//! Every text the CLI shows comes from `locales/en.toml` and `locales/ja.toml` through
//! `rust-i18n`'s `t!` macro. The language is chosen once, before parsing the arguments:
//! `--lang en|ja`, else `LC_ALL`, `LC_MESSAGES`, `LANG` (a value starting with `ja` means
//! Japanese), else English. The `--help` texts of the clap definition are replaced at run time
//! by [`localize`], which walks the command tree and looks up `help.<path>.<arg>` keys.

use clap::{Arg, ArgAction, Command};
use rust_i18n::t;

/// A language of the operator console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// The locale code used by the translation files.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// Parses `en`, `ja` (also `ja_JP.UTF-8`, `japanese`, `日本語`).
    pub fn parse(s: &str) -> Option<Lang> {
        let l = s.trim().to_ascii_lowercase();
        if l.starts_with("ja") || s.trim() == "日本語" {
            Some(Lang::Ja)
        } else if l.starts_with("en") || l == "c" || l == "posix" {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language of the environment: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that
    /// is set and not empty decides; Japanese when it starts with `ja`.
    pub fn from_env() -> Lang {
        for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Ok(v) = std::env::var(var) {
                if !v.is_empty() {
                    return if v.to_ascii_lowercase().starts_with("ja") {
                        Lang::Ja
                    } else {
                        Lang::En
                    };
                }
            }
        }
        Lang::En
    }
}

/// The value of `--lang` in the raw arguments, if any (before clap parses them, so that the
/// help and the errors are already in the right language).
pub fn lang_arg(args: &[std::ffi::OsString]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--lang" {
            return it.next().map(|v| v.to_string_lossy().into_owned());
        }
        if let Some(v) = a.strip_prefix("--lang=") {
            return Some(v.to_string());
        }
    }
    None
}

/// Sets the language of every following `t!`.
pub fn set(lang: Lang) {
    rust_i18n::set_locale(lang.code());
}

/// The current language.
pub fn current() -> Lang {
    if &*rust_i18n::locale() == "ja" {
        Lang::Ja
    } else {
        Lang::En
    }
}

/// The translation of `key` in `lang`, if both files have it.
pub fn lookup(lang: Lang, key: &str) -> Option<String> {
    crate::_rust_i18n_try_translate(lang.code(), key).map(|c| c.into_owned())
}

/// Key of the help text of `arg` in the command at `path` (`help.<path>.<arg>`), or of the
/// command itself (`help.<path>.about`); the top-level command's path is `lifeboat`.
pub fn help_key(path: &str, item: &str) -> String {
    format!("help.{path}.{item}")
}

/// Replaces every about/help text of `cmd` (recursively) with the current language's, and
/// localizes the headings and the built-in `--help`/`--version` flags.
pub fn localize(cmd: Command) -> Command {
    let lang = current();
    localize_at(cmd, "lifeboat", lang, true)
}

fn localize_at(mut cmd: Command, path: &str, lang: Lang, top: bool) -> Command {
    let tr = |item: &str| lookup(lang, &help_key(path, item));
    if let Some(s) = tr("about") {
        cmd = cmd.about(s);
    }
    if let Some(s) = tr("long_about") {
        cmd = cmd.long_about(s);
    } else if cmd.get_long_about().is_some() {
        cmd = cmd.long_about(None::<&str>);
    }
    if let Some(s) = tr("after_help") {
        cmd = cmd.after_help(s);
    }
    let ids: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_global_set() || top)
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        if let Some(s) = tr(&id) {
            cmd = cmd.mut_arg(&id, |a| {
                a.help(s)
                    .help_heading(t!("help.heading.options").to_string())
            });
        }
    }
    // clap's own --help/--version, replaced by equivalents with translated texts.
    cmd = cmd
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help(t!("help.flag.help").to_string())
                .help_heading(t!("help.heading.options").to_string()),
        )
        .disable_help_subcommand(true)
        .subcommand_help_heading(t!("help.heading.commands").to_string())
        .help_template(t!("help.template").to_string());
    if top {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help(t!("help.flag.version").to_string())
                .help_heading(t!("help.heading.options").to_string()),
        );
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let sub_path = format!("{path}.{name}");
        cmd = cmd.mut_subcommand(&name, |s| localize_at(s, &sub_path, lang, false));
    }
    cmd
}

/// Every key [`localize`] looks up for `cmd`: one per command and argument.
#[cfg(test)]
pub fn help_keys(cmd: &Command) -> Vec<String> {
    let mut out = Vec::new();
    collect(cmd, "lifeboat", true, &mut out);
    out
}

#[cfg(test)]
fn collect(cmd: &Command, path: &str, top: bool, out: &mut Vec<String>) {
    out.push(help_key(path, "about"));
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        if (a.is_global_set() && !top) || id == "help" || id == "version" {
            continue;
        }
        out.push(help_key(path, id));
    }
    for s in cmd.get_subcommands() {
        collect(s, &format!("{path}.{}", s.get_name()), false, out);
    }
}

/// Held by the unit tests that switch the (process-wide) language, so that they do not see
/// each other's.
#[cfg(test)]
pub(crate) static LANG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_help_key_exists() {
        let cmd = <crate::Cli as clap::CommandFactory>::command();
        let mut keys = help_keys(&cmd);
        assert!(keys.len() > 50, "only {} help keys", keys.len());
        keys.extend(
            [
                "help.template",
                "help.heading.options",
                "help.heading.commands",
                "help.flag.help",
                "help.flag.version",
                "help.lifeboat.long_about",
                "help.lifeboat.after_help",
            ]
            .map(String::from),
        );
        for k in &keys {
            for lang in [Lang::En, Lang::Ja] {
                assert!(
                    lookup(lang, k).is_some_and(|s| !s.trim().is_empty()),
                    "help text {k} is missing in locales/{}.toml",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn localized_help_renders() {
        let _lang = LANG_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        set(Lang::Ja);
        let ja = localize(<crate::Cli as clap::CommandFactory>::command())
            .render_long_help()
            .to_string();
        set(Lang::En);
        let en = localize(<crate::Cli as clap::CommandFactory>::command())
            .render_long_help()
            .to_string();
        assert!(ja.contains("使い方") && ja.contains("コマンド"), "{ja}");
        assert!(en.contains("Usage:") && en.contains("Commands:"), "{en}");
        assert!(en.contains("Without a command on a terminal"), "{en}");
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Lang::parse("ja_JP.UTF-8"), Some(Lang::Ja));
        assert_eq!(Lang::parse("日本語"), Some(Lang::Ja));
        assert_eq!(Lang::parse("en_US.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::parse("C"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        let args: Vec<std::ffi::OsString> = ["lifeboat", "disks", "--lang=ja"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(lang_arg(&args).as_deref(), Some("ja"));
        let args: Vec<std::ffi::OsString> = ["lifeboat", "--lang", "en", "list"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(lang_arg(&args).as_deref(), Some("en"));
    }
}
