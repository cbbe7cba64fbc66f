//! Where secrets come from: environment variables, a credentials file (refused unless only
//! its owner can read it), the address itself (with a warning), or a hidden prompt.
//!
//! Credentials file: `$LIFEBOAT_CREDENTIALS`, else `$HOME/.config/lifeboat/credentials`. INI
//! sections name a server as an address without path; keys are per protocol:
//!
//! ```text
//! [smb://backup@fileserver]
//! password = …
//!
//! [s3://images]            # the bucket
//! access_key_id = …
//! secret_access_key = …
//! ```
//!
//! A section matches when scheme and host are equal and, where the section names them, the
//! user and port too.

use super::{Interaction, RemoteSpec};
use lifeboat_repo::{RepoError, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a secret was found (for messages; never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of that name.
    Env(String),
    /// The credentials file.
    File(PathBuf),
    /// The repository address.
    Address,
    /// Typed by the operator.
    Prompt,
}

/// A parsed credentials file.
#[derive(Debug, Default)]
pub struct CredentialsFile {
    path: PathBuf,
    sections: Vec<(RemoteSpec, BTreeMap<String, String>)>,
}

const MAX_FILE: u64 = 1 << 20;

fn file_err(path: &Path, reason: impl Into<String>) -> RepoError {
    RepoError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.into()),
    }
}

impl CredentialsFile {
    /// The default location: `$LIFEBOAT_CREDENTIALS`, else `$HOME/.config/lifeboat/credentials`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("LIFEBOAT_CREDENTIALS") {
            return Some(PathBuf::from(p));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/lifeboat/credentials"))
    }

    /// Loads the file at the default location; a missing file is an empty one.
    pub fn load_default() -> Result<Self> {
        match Self::default_path() {
            Some(p) if p.exists() => Self::load(&p),
            _ => Ok(Self::default()),
        }
    }

    /// Loads and parses a credentials file. Refused when group or others may read or write it
    /// (mode must be 0600 or stricter) or when another user owns it.
    pub fn load(path: &Path) -> Result<Self> {
        let md = std::fs::metadata(path).map_err(|e| RepoError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        if md.mode() & 0o077 != 0 {
            return Err(file_err(
                path,
                format!(
                    "credentials file has mode {:04o}; refusing to use it until only its owner can read it (chmod 600 {})",
                    md.mode() & 0o7777,
                    path.display()
                ),
            ));
        }
        // The effective uid, read from /proc (this crate has no libc).
        if let Some(uid) = current_uid() {
            if md.uid() != uid {
                return Err(file_err(
                    path,
                    format!("credentials file is owned by uid {}, not by this user ({uid}); refusing it", md.uid()),
                ));
            }
        }
        if md.len() > MAX_FILE {
            return Err(file_err(path, "credentials file is larger than 1 MiB"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| RepoError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a credentials file (`path` is for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut sections: Vec<(RemoteSpec, BTreeMap<String, String>)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let at = |reason: &str| file_err(path, format!("line {}: {reason}", i + 1));
            if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let spec = RemoteSpec::parse(sec.trim())
                    .map_err(|_| at("section is not a repository address"))?
                    .ok_or_else(|| at("section must be an address such as [sftp://user@host]"))?;
                if spec.password_in_url().is_some() {
                    return Err(at(
                        "put the password on a `password =` line, not in the section name",
                    ));
                }
                sections.push((spec, BTreeMap::new()));
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| at("expected key = value"))?;
            let (_, map) = sections
                .last_mut()
                .ok_or_else(|| at("key before the first [section]"))?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(CredentialsFile {
            path: path.to_path_buf(),
            sections,
        })
    }

    /// The value of `key` for the server of `spec`, from the first matching section.
    pub fn get(&self, spec: &RemoteSpec, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| {
                s.scheme() == spec.scheme()
                    && s.host().eq_ignore_ascii_case(spec.host())
                    && (s.user().is_none() || s.user() == spec.user())
                    && (s.port().is_none() || s.port() == spec.port())
            })
            .find_map(|(_, m)| m.get(key).map(String::as_str))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn current_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Looks a secret up, in this order: the environment variables `env` (first set wins), the
/// credentials file's `key` for this server, the password in the address (only when `key` is
/// `password`), and finally a hidden prompt `prompt` through `ui`. `Ok(None)` when none has it.
pub fn lookup_secret(
    spec: &RemoteSpec,
    key: &str,
    env: &[&str],
    file: &CredentialsFile,
    ui: &dyn Interaction,
    prompt: &str,
) -> Result<Option<(String, SecretSource)>> {
    for var in env {
        if let Some(v) = std::env::var_os(var) {
            let v = v.into_string().map_err(|_| RepoError::Unsupported {
                spec: spec.display(),
                reason: format!("environment variable {var} is not valid UTF-8"),
            })?;
            return Ok(Some((v, SecretSource::Env((*var).to_string()))));
        }
    }
    if let Some(v) = file.get(spec, key) {
        return Ok(Some((
            v.to_string(),
            SecretSource::File(file.path().to_path_buf()),
        )));
    }
    if key == "password" {
        if let Some(p) = spec.password_in_url() {
            return Ok(Some((p.to_string(), SecretSource::Address)));
        }
    }
    Ok(ui.secret(prompt).map(|s| (s, SecretSource::Prompt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_container::chain_text;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn spec(s: &str) -> RemoteSpec {
        RemoteSpec::parse(s).unwrap().unwrap()
    }

    #[test]
    fn sections_match_scheme_host_user_port() {
        let f = CredentialsFile::parse(
            Path::new("c"),
            "# c\n[smb://backup@fs]\npassword = a b\n[smb://fs]\npassword=other\n[s3://images]\naccess_key_id = K\n",
        )
        .unwrap();
        assert_eq!(
            f.get(&spec("smb://backup@fs/share"), "password"),
            Some("a b")
        );
        assert_eq!(
            f.get(&spec("smb://admin@FS/share"), "password"),
            Some("other")
        );
        assert_eq!(f.get(&spec("s3://images/x"), "access_key_id"), Some("K"));
        assert_eq!(f.get(&spec("s3://other/x"), "access_key_id"), None);
        assert_eq!(f.get(&spec("sftp://fs/x"), "password"), None);
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        for t in [
            "password = x\n",
            "[smb://h]\nnovalue\n",
            "[not an address]\n",
            "[smb://u:p@h]\n",
        ] {
            let e = chain_text(&CredentialsFile::parse(Path::new("c"), t).unwrap_err());
            assert!(e.contains("line 1") || e.contains("line 2"), "{t:?}: {e}");
        }
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cred");
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(f, "[sftp://h]\npassword = x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = chain_text(&CredentialsFile::load(&p).unwrap_err());
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = CredentialsFile::load(&p).unwrap();
        assert_eq!(c.get(&spec("sftp://h/x"), "password"), Some("x"));
    }

    #[test]
    fn lookup_order() {
        let f = CredentialsFile::parse(Path::new("c"), "[sftp://h]\npassword = file\n").unwrap();
        let ui = crate::NoInteraction;
        let s = spec("sftp://u:inurl@h/x");
        let got = lookup_secret(&s, "password", &[], &f, &ui, "p")
            .unwrap()
            .unwrap();
        assert_eq!(got.0, "file");
        let empty = CredentialsFile::default();
        let got = lookup_secret(&s, "password", &[], &empty, &ui, "p")
            .unwrap()
            .unwrap();
        assert_eq!(got, ("inurl".to_string(), SecretSource::Address));
        assert!(
            lookup_secret(&spec("sftp://h/x"), "password", &[], &empty, &ui, "p")
                .unwrap()
                .is_none()
        );
    }
}
