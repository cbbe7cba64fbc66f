//! Step 2: where the images live. A local directory (offered from the mounted filesystems
//! with their free space) or a network repository, each kind asking only for what it needs;
//! the answers become the same `--repo` string the scripted commands take.

use super::{mounts, Console, Step};
use crate::interact::TerminalUi;
use crate::output::human;
use anyhow::Result;
use lifeboat_remote::{Interaction, Scheme};
use lifeboat_repo::{RepoError, Repository};
use rust_i18n::t;
use std::path::{Path, PathBuf};

/// A kind of repository the console can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory on a mounted filesystem.
    Local,
    /// A Windows/Samba share.
    Smb,
    /// An NFS export.
    Nfs,
    /// A directory on an SSH server.
    Sftp,
    /// An S3-compatible bucket.
    S3,
}

impl Kind {
    /// Every kind, in menu order.
    pub const ALL: [Kind; 5] = [Kind::Local, Kind::Smb, Kind::Nfs, Kind::Sftp, Kind::S3];

    /// The address scheme (none for a local directory).
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            Kind::Local => None,
            Kind::Smb => Some(Scheme::Smb),
            Kind::Nfs => Some(Scheme::Nfs),
            Kind::Sftp => Some(Scheme::Sftp),
            Kind::S3 => Some(Scheme::S3),
        }
    }

    fn label(self) -> String {
        match self {
            Kind::Local => t!("repo.kind_local"),
            Kind::Smb => t!("repo.kind_smb"),
            Kind::Nfs => t!("repo.kind_nfs"),
            Kind::Sftp => t!("repo.kind_sftp"),
            Kind::S3 => t!("repo.kind_s3"),
        }
        .into()
    }

    /// Whether `lifeboat_repo` has this kind's backend in this build.
    pub fn available(self) -> bool {
        self.scheme().is_none_or(Scheme::built_in)
    }
}

/// The repository the operator chose.
pub struct Chosen {
    /// Opened.
    pub repo: Repository,
    /// What to write after `--repo` in a command line (never holds a password).
    pub spec: String,
    /// For a local directory: the directory.
    pub local: Option<PathBuf>,
}

/// Percent-encodes a user name or password for an address.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Joins path segments typed by the operator into the path part of an address.
fn url_path(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        for seg in p.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(seg);
        }
    }
    out
}

/// The fields typed for a network repository.
#[derive(Debug, Default, Clone)]
pub struct NetFields {
    /// Server (or, for S3, the bucket).
    pub host: String,
    /// Port, empty for the default.
    pub port: String,
    /// Share (SMB), export (NFS) or path on the server.
    pub share: String,
    /// Directory inside the share/export/bucket.
    pub dir: String,
    /// User name (SMB, SFTP) or access key id (S3).
    pub user: String,
    /// Password / secret key; never shown.
    pub password: String,
    /// S3 endpoint URL (empty for AWS).
    pub endpoint: String,
}

/// Builds the address of a network repository: (address to open, address to show).
pub fn build_spec(kind: Kind, f: &NetFields) -> (String, String) {
    let scheme = kind.scheme().map_or("file", Scheme::as_str);
    let port = if f.port.trim().is_empty() {
        String::new()
    } else {
        format!(":{}", f.port.trim())
    };
    let path = url_path(&[f.share.trim(), f.dir.trim()]);
    let query = if kind == Kind::S3 && !f.endpoint.trim().is_empty() {
        format!("?endpoint={}", f.endpoint.trim())
    } else {
        String::new()
    };
    let user = f.user.trim();
    let (with_pw, shown) = if user.is_empty() {
        (String::new(), String::new())
    } else if f.password.is_empty() {
        (format!("{}@", encode(user)), format!("{}@", encode(user)))
    } else {
        (
            format!("{}:{}@", encode(user), encode(&f.password)),
            format!("{}@", encode(user)),
        )
    };
    let host = f.host.trim();
    (
        format!("{scheme}://{with_pw}{host}{port}{path}{query}"),
        format!("{scheme}://{shown}{host}{port}{path}{query}"),
    )
}

impl Console<'_> {
    /// Asks where the images live until a repository opens.
    pub(super) fn choose_repo(&mut self) -> Result<Step<Chosen>> {
        loop {
            let kinds: Vec<(Kind, bool)> = Kind::ALL.iter().map(|k| (*k, k.available())).collect();
            let items: Vec<String> = kinds
                .iter()
                .map(|(k, ok)| {
                    if *ok {
                        k.label()
                    } else {
                        t!("repo.kind_unavailable", kind = k.label()).into()
                    }
                })
                .collect();
            let Some(i) = self.select(&t!("repo.prompt_kind"), &items, 0)? else {
                return Ok(Step::Back);
            };
            let (kind, ok) = kinds[i];
            if !ok {
                self.warn(&t!("repo.unavailable_detail", kind = kind.label()));
                continue;
            }
            let r = if kind == Kind::Local {
                self.choose_local()?
            } else {
                self.choose_network(kind)?
            };
            match r {
                Step::Next(c) => return Ok(Step::Next(c)),
                Step::Back => continue,
            }
        }
    }

    fn choose_local(&mut self) -> Result<Step<Chosen>> {
        let mounts = mounts::writable_mounts();
        let mut items: Vec<String> = mounts
            .iter()
            .map(|m| {
                t!(
                    "repo.mount_item",
                    path = m.mount_point.display(),
                    dev = m.source,
                    fs = m.fstype,
                    free = human(m.free),
                    size = human(m.size)
                )
                .into()
            })
            .collect();
        items.push(t!("repo.type_path").into());
        println!("{}", t!("repo.mounts_note"));
        let Some(i) = self.select(&t!("repo.prompt_mount"), &items, 0)? else {
            return Ok(Step::Back);
        };
        let initial = mounts
            .get(i)
            .map(|m| m.mount_point.display().to_string())
            .unwrap_or_default();
        loop {
            let Some(dir) = self.input(&t!("repo.prompt_dir"), &initial, |s: &str| {
                if s.trim().is_empty() {
                    Err(t!("repo.empty_path").into())
                } else if !s.trim().starts_with('/') {
                    Err(t!("repo.absolute_path").into())
                } else {
                    Ok(())
                }
            })?
            else {
                return Ok(Step::Back);
            };
            let dir = PathBuf::from(dir.trim());
            if !dir.exists() {
                match self.confirm(&t!("repo.create_dir", path = dir.display()), true)? {
                    Some(true) => {
                        if let Err(e) = std::fs::create_dir_all(&dir) {
                            self.warn(&t!(
                                "repo.create_failed",
                                path = dir.display(),
                                error = e.to_string()
                            ));
                            continue;
                        }
                    }
                    Some(false) => continue,
                    None => return Ok(Step::Back),
                }
            }
            match open_local(&dir) {
                Ok(repo) => {
                    if let Some((free, _)) = mounts::space(&dir) {
                        println!(
                            "{}",
                            t!("repo.opened", repo = repo.location(), free = human(free))
                        );
                    }
                    return Ok(Step::Next(Chosen {
                        spec: dir.display().to_string(),
                        local: Some(dir),
                        repo,
                    }));
                }
                Err(e) => self.warn(&t!("repo.open_failed", error = e)),
            }
        }
    }

    fn choose_network(&mut self, kind: Kind) -> Result<Step<Chosen>> {
        let mut f = NetFields::default();
        let req = |s: &str| -> Result<(), String> {
            if s.trim().is_empty() {
                Err(t!("repo.required").into())
            } else {
                Ok(())
            }
        };
        let any = |_: &str| -> Result<(), String> { Ok(()) };
        macro_rules! ask {
            ($field:expr, $key:expr, $init:expr, $check:expr) => {
                match self.input(&t!($key), $init, $check)? {
                    Some(v) => $field = v.trim().to_string(),
                    None => return Ok(Step::Back),
                }
            };
        }
        match kind {
            Kind::Smb => {
                ask!(f.host, "repo.smb_host", "", req);
                ask!(f.share, "repo.smb_share", "", req);
                ask!(f.dir, "repo.subdir", "", any);
                ask!(f.user, "repo.user", "", any);
            }
            Kind::Nfs => {
                ask!(f.host, "repo.nfs_host", "", req);
                ask!(f.share, "repo.nfs_export", "", req);
                ask!(f.dir, "repo.subdir", "", any);
            }
            Kind::Sftp => {
                ask!(f.host, "repo.sftp_host", "", req);
                ask!(f.port, "repo.sftp_port", "22", |s: &str| {
                    if s.trim().is_empty() || s.trim().parse::<u16>().is_ok() {
                        Ok(())
                    } else {
                        Err(t!("repo.bad_port").to_string())
                    }
                });
                if f.port == "22" {
                    f.port.clear();
                }
                ask!(f.user, "repo.user", "", req);
                ask!(f.share, "repo.sftp_path", "", req);
            }
            Kind::S3 => {
                ask!(f.host, "repo.s3_bucket", "", req);
                ask!(f.dir, "repo.s3_prefix", "", any);
                ask!(f.endpoint, "repo.s3_endpoint", "", any);
                ask!(f.user, "repo.s3_key_id", "", any);
            }
            Kind::Local => return Ok(Step::Back),
        }
        let secret_key = match kind {
            Kind::S3 => "repo.s3_secret",
            Kind::Sftp => "repo.sftp_password",
            _ => "repo.password",
        };
        if !f.user.is_empty() && kind != Kind::Nfs {
            f.password = self.password(&t!(secret_key))?;
        }
        let (spec, shown) = build_spec(kind, &f);
        tracing::info!(repo = %shown, "opening network repository");
        match lifeboat_remote::open(&spec, &ConsoleNet) {
            Ok(repo) => {
                println!("{}", t!("repo.opened_net", repo = shown));
                Ok(Step::Next(Chosen {
                    repo,
                    spec: shown,
                    local: None,
                }))
            }
            Err(e) => {
                // The message may hold the address: never show a password.
                let mut msg = lifeboat_engine::chain_text(&e);
                if !f.password.is_empty() {
                    msg = msg
                        .replace(&encode(&f.password), "***")
                        .replace(&f.password, "***");
                }
                self.warn(&t!("repo.open_failed", error = msg));
                Ok(Step::Back)
            }
        }
    }
}

/// What a network backend asks while the console opens it: unknown SSH host keys and any
/// secret the console did not ask for (a key's passphrase) go to the terminal, as for the
/// scripted commands. The one warning a backend gives — a password inside the address — is
/// not shown: the console itself put the typed password there, for `open` only.
struct ConsoleNet;

impl Interaction for ConsoleNet {
    fn warn(&self, _message: &str) {}
    fn secret(&self, prompt: &str) -> Option<String> {
        TerminalUi.secret(prompt)
    }
    fn accept_host_key(&self, host: &str, key_type: &str, fingerprint: &str) -> bool {
        TerminalUi.accept_host_key(host, key_type, fingerprint)
    }
}

fn open_local(dir: &Path) -> Result<Repository, RepoError> {
    Repository::open(&dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let f = NetFields {
            host: "nas".into(),
            share: "backup".into(),
            dir: "/images/web/".into(),
            user: "ops user".into(),
            password: "p@ss:w/rd".into(),
            ..Default::default()
        };
        let (open, shown) = build_spec(Kind::Smb, &f);
        assert_eq!(
            open,
            "smb://ops%20user:p%40ss%3Aw%2Frd@nas/backup/images/web"
        );
        assert_eq!(shown, "smb://ops%20user@nas/backup/images/web");
        let f = NetFields {
            host: "files".into(),
            share: "/srv/nfs".into(),
            ..Default::default()
        };
        assert_eq!(build_spec(Kind::Nfs, &f).0, "nfs://files/srv/nfs");
        let f = NetFields {
            host: "bucket1".into(),
            dir: "lab".into(),
            endpoint: "http://minio:9000".into(),
            ..Default::default()
        };
        assert_eq!(
            build_spec(Kind::S3, &f).0,
            "s3://bucket1/lab?endpoint=http://minio:9000"
        );
        let f = NetFields {
            host: "srv".into(),
            port: "2222".into(),
            user: "root".into(),
            share: "/var/images".into(),
            ..Default::default()
        };
        assert_eq!(
            build_spec(Kind::Sftp, &f).1,
            "sftp://root@srv:2222/var/images"
        );
        assert!(Kind::Local.available());
    }
}
