//! From the raw command line to validated values: [`args`] is what clap parses, this module
//! sets the language and parses, and [`values`] turns the raw arguments into what the engine
//! takes (an opened repository, a checked image name, save and restore options).

mod args;
mod size;
mod values;

pub use args::{
    Cli, Command, DigestArg, ImageArg, ImportArgs, RepoArg, RestoreArgs, SaveArgs, Tuning,
};

use crate::i18n;
use std::ffi::OsString;

/// The clap definition with its texts in the current language.
pub fn command() -> clap::Command {
    i18n::localize(<Cli as clap::CommandFactory>::command())
}

/// Sets the language (from `--lang`, else the environment) and parses the command line;
/// exits with clap's usage error (status 2) or help when it does not parse.
pub fn parse(args: &[OsString]) -> (Cli, i18n::Lang) {
    let lang = i18n::lang_arg(args)
        .and_then(|l| i18n::Lang::parse(&l))
        .unwrap_or_else(i18n::Lang::from_env);
    i18n::set(lang);
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => (c, lang),
        Err(e) => e.format(&mut command()).exit(),
    }
}
