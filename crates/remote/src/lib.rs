//! Network repositories of lifeboat, and the one place that turns what an operator types
//! after `--repo` into a [`Repository`]: [`open`] (a local directory, or a network address
//! opened by the backend of its scheme).
//!
//! `lifeboat-repo` knows the [`lifeboat_repo::Backend`] trait and the local directory backend
//! only; this crate adds the SMB, NFS, SFTP and S3 backends, each behind the cargo feature of
//! its scheme (all on by default), where credentials come from ([`CredentialsFile`],
//! [`lookup_secret`]) and what a backend may ask the operator ([`Interaction`]). A scheme whose
//! feature is off is refused with an error naming the feature.
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
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let repo = lifeboat_remote::open(dir.path().to_str().unwrap(), &lifeboat_remote::NoInteraction)
//!     .unwrap();
//! assert!(repo.list().unwrap().is_empty());
//! assert!(lifeboat_remote::open("-", &lifeboat_remote::NoInteraction).is_err());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
#[cfg(feature = "sftp")]
mod sftp_frame;
// Shared by the network backends: read-ahead for ranged reads, and one async runtime for
// backends built on async client libraries (add a feature here to use it).
#[cfg(any(feature = "sftp", feature = "s3", feature = "smb", feature = "nfs"))]
mod readahead;
#[cfg(feature = "sftp")]
pub mod runtime;
#[cfg(feature = "smb")]
pub mod smb;

/// Entry points for the fuzz targets (`fuzz/`) and property tests into parsers of server
/// answers that are otherwise private. **Not API**: hidden from the documentation, no
/// stability promise; nothing in lifeboat uses it.
#[doc(hidden)]
pub mod fuzzing {
    /// One ListObjectsV2 page: objects (key, size), common prefixes, truncated, next token.
    #[cfg(feature = "s3")]
    pub type S3ListPage = (Vec<(String, u64)>, Vec<String>, bool, Option<String>);

    /// The S3 backend's parser of a ListObjectsV2 page.
    #[cfg(feature = "s3")]
    pub fn s3_list_page(body: &[u8]) -> Result<S3ListPage, String> {
        crate::s3::parse_list_page(body).map(|p| (p.objects, p.prefixes, p.truncated, p.next_token))
    }

    /// The `UploadId` of an InitiateMultipartUpload answer.
    #[cfg(feature = "s3")]
    pub fn s3_upload_id(body: &[u8]) -> Option<String> {
        crate::s3::parse_upload_id(body)
    }

    /// Whether a 200 answer (CompleteMultipartUpload) is an error document.
    #[cfg(feature = "s3")]
    pub fn s3_is_error_document(body: &[u8]) -> bool {
        crate::s3::is_error_document(body)
    }

    /// The error code and message of an S3 error document.
    #[cfg(feature = "s3")]
    pub fn s3_error_code_message(body: &[u8]) -> (String, String) {
        crate::s3::error_code_message(body)
    }

    /// The message made of an answer's status and error document.
    #[cfg(feature = "s3")]
    pub fn s3_error_text(status: u16, body: &[u8]) -> String {
        crate::s3::error_text(status, body)
    }
}

pub use credentials::{lookup_secret, CredentialsFile, SecretSource};
pub use spec::{redact, RemoteSpec, Scheme};

use lifeboat_repo::{Backend, RepoError, Repository, Result};

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

/// Opens a repository from what the operator typed after `--repo`: a network address (see
/// the crate docs) or a local directory, asking the operator through `ui` for what a network
/// backend needs (passwords, unknown host keys; [`NoInteraction`] when nobody is there). `-`
/// (a single stream on stdin/stdout) is not a repository: the engine's stream functions
/// handle it.
pub fn open(spec: &str, ui: &dyn Interaction) -> Result<Repository> {
    if let Some(remote) = RemoteSpec::parse(spec)? {
        return Ok(Repository::with_backend(open_backend(&remote, ui)?));
    }
    if spec == "-" {
        return Err(RepoError::Unsupported {
            spec: spec.to_string(),
            reason: "`-` is a single image stream on stdin/stdout, not a repository; only savedisk, saveparts, restoredisk and restoreparts accept it".into(),
        });
    }
    Repository::open(spec)
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
        other => Err(RepoError::NotBuiltIn {
            spec: spec.display(),
            scheme: other.as_str(),
            feature: other.as_str(),
        }),
    }
}
