//! Network repositories: the address forms operators type after `--repo`, where credentials
//! come from, and the backends (each behind a cargo feature).
//!
//! Address forms (the interface, documented in the README and `--help`):
//!
//! ```text
//! smb://[user@]server[:port]/share[/dir…]
//! nfs://server[:port]/export[/dir…]
//! sftp://[user@]host[:port]/path
//! s3://bucket[/prefix][?endpoint=http://host:port&region=…]
//! ```
//!
//! A password in the address (`user:secret@host`) is accepted with a warning; it is never
//! printed, logged or written anywhere: [`RemoteSpec::display`] leaves it out.

mod credentials;
mod spec;

#[cfg(feature = "nfs")]
pub mod nfs;
#[cfg(any(feature = "smb", feature = "nfs"))]
mod pipeline;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sftp")]
pub mod sftp;
// Shared by the network backends: read-ahead for ranged reads, and one async runtime for
// backends built on async client libraries (add a feature here to use it).
#[cfg(any(feature = "sftp", feature = "s3"))]
mod readahead;
#[cfg(feature = "sftp")]
pub mod runtime;
#[cfg(feature = "smb")]
pub mod smb;

pub use credentials::{lookup_secret, CredentialsFile, SecretSource};
pub use spec::{RemoteSpec, Scheme};

use crate::{Backend, RepoError, Result};

/// What a backend may need from the operator while connecting. The library never prints or
/// reads the terminal itself: the CLI implements this (hidden password prompts, host-key
/// confirmation, warnings on stderr); scripts use [`NoInteraction`].
pub trait Interaction: Send + Sync {
    /// A warning for the operator (e.g. a password given in the address).
    fn warn(&self, message: &str);
    /// Asks for a secret with hidden input; `None` when nobody can answer (no terminal).
    fn secret(&self, prompt: &str) -> Option<String>;
    /// Asks whether to trust a host key that is not in known_hosts; false refuses.
    fn accept_host_key(&self, host: &str, key_type: &str, fingerprint: &str) -> bool;
}

/// No operator present: warnings are dropped, no secret is available, no unknown host key is
/// accepted.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInteraction;

impl Interaction for NoInteraction {
    fn warn(&self, _message: &str) {}
    fn secret(&self, _prompt: &str) -> Option<String> {
        None
    }
    fn accept_host_key(&self, _host: &str, _key_type: &str, _fingerprint: &str) -> bool {
        false
    }
}

/// Opens the backend for a network address.
pub fn open_backend(spec: &RemoteSpec, ui: &dyn Interaction) -> Result<Box<dyn Backend>> {
    if spec.password_in_url().is_some() {
        ui.warn(&format!(
            "{}: a password was given in the repository address; it may be kept in the shell history and process list — prefer an environment variable, a credentials file or the prompt",
            spec.display()
        ));
    }
    match spec.scheme() {
        #[cfg(feature = "smb")]
        Scheme::Smb => smb::SmbBackend::connect(spec, ui).map(|b| Box::new(b) as Box<dyn Backend>),
        #[cfg(feature = "nfs")]
        Scheme::Nfs => nfs::NfsBackend::connect(spec, ui).map(|b| Box::new(b) as Box<dyn Backend>),
        #[cfg(feature = "sftp")]
        Scheme::Sftp => {
            sftp::SftpBackend::connect(spec, ui).map(|b| Box::new(b) as Box<dyn Backend>)
        }
        #[cfg(feature = "s3")]
        Scheme::S3 => s3::S3Backend::connect(spec, ui).map(|b| Box::new(b) as Box<dyn Backend>),
        #[allow(unreachable_patterns)]
        other => Err(RepoError::Unsupported {
            spec: spec.display(),
            reason: format!(
                "{}:// repositories are not built into this binary (cargo feature `{}`)",
                other.as_str(),
                other.as_str()
            ),
        }),
    }
}
