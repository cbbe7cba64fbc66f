//! The SFTP backend: images as directories on an SSH server.
//!
//! Address: `sftp://[user@]host[:port]/path[?key=/path/to/key][&known_hosts=/path]`. The path
//! is absolute on the server (`sftp://host` alone is the login directory) and must exist.
//!
//! SSH and SFTP are spoken by pure-Rust libraries (`russh`, `russh-sftp`) on the shared
//! [`super::runtime`]. Writes are pipelined: the file is cut into requests of the server's
//! largest write size (255 KiB on OpenSSH) and up to 16 are in flight at once, so the network
//! and compression overlap while memory stays at a few MiB; `finish` waits for every answer,
//! asks the server to fsync (`fsync@openssh.com`) and closes. Small files written atomically
//! (the manifest) go to a temporary name and are renamed over the target with
//! `posix-rename@openssh.com` where the server has it. Reads fetch ranges with several read
//! requests at once and read ahead for sequential access.
//!
//! Host keys are verified against known_hosts (`?known_hosts=`, `LIFEBOAT_KNOWN_HOSTS`, else
//! `~/.ssh/known_hosts`): an unknown key is refused unless the operator accepts its
//! fingerprint ([`Interaction::accept_host_key`]; it is then appended to known_hosts), a key
//! that differs from the recorded one is always refused.
//!
//! Authentication, in this order: the keys of an SSH agent (`SSH_AUTH_SOCK`); a key file
//! (`?key=`, `LIFEBOAT_SSH_KEY`, else `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`; a passphrase
//! from `LIFEBOAT_SSH_PASSPHRASE`, the credentials file's `passphrase`, or a prompt); a
//! password (`LIFEBOAT_SSH_PASSWORD`, the credentials file's `password`, the address, a
//! prompt). A dropped connection is re-established (same host key, same credentials) and
//! reads and metadata requests are retried up to 5 times with backoff.

use super::readahead::{Fetch, Pieces, ReadAhead};
use super::runtime::{block_on, spawn};
use super::{lookup_secret, CredentialsFile, Interaction, RemoteSpec};
use lifeboat_repo::{Backend, BackendRead, BackendWrite, FileKind, ImageName};
use lifeboat_repo::{RepoError, Result};
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Retries of a read or metadata request after a dropped connection.
const RETRIES: u32 = 5;
/// Write requests in flight per file.
const WRITES_IN_FLIGHT: usize = 16;
/// Largest request payload used (OpenSSH allows 255 KiB).
const MAX_IO: u64 = 255 << 10;
/// Request size when the server does not say its limits (the SFTP minimum every server takes).
const DEFAULT_IO: u32 = 32 << 10;
/// Read-ahead block and depth.
const READ_BLOCK: usize = 4 << 20;
const READ_DEPTH: usize = 3;
/// Seconds an SFTP request may take before the connection is taken for dead.
const REQUEST_TIMEOUT: u64 = 60;
/// Algorithms offered, russh's defaults but with AES-256-GCM before ChaCha20-Poly1305: with
/// AES instructions it costs both ends (ring here, OpenSSL in sshd) less CPU per byte, and on
/// a rescue system the server and the restore often share few cores. A server without it
/// still gets ChaCha20-Poly1305 or AES-CTR.
const PREFERRED: russh::Preferred = russh::Preferred {
    cipher: std::borrow::Cow::Borrowed(&[
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_CTR,
        russh::cipher::AES_192_CTR,
        russh::cipher::AES_128_CTR,
    ]),
    ..russh::Preferred::DEFAULT
};
/// Directory entries accepted in one listing.
const MAX_ENTRIES: usize = 1_000_000;

/// What the host-key check saw.
#[derive(Clone)]
enum Verdict {
    Known,
    Unknown,
    Changed(usize),
    Failed(String),
}

struct HostCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    /// After the first connection: exactly this key.
    pinned: Option<PublicKey>,
    seen: Arc<Mutex<Option<(PublicKey, Verdict)>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let v = match &self.pinned {
            Some(p) if p == key => Verdict::Known,
            Some(_) => Verdict::Changed(0),
            None => match russh::keys::check_known_hosts_path(
                &self.host,
                self.port,
                key,
                &self.known_hosts,
            ) {
                Ok(true) => Verdict::Known,
                Ok(false) => Verdict::Unknown,
                Err(russh::keys::Error::KeyChanged { line }) => Verdict::Changed(line),
                Err(e) => Verdict::Failed(e.to_string()),
            },
        };
        let ok = matches!(v, Verdict::Known);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((key.clone(), v));
        Ok(ok)
    }
}

/// How the first connection authenticated (reused on reconnect; kept in memory only).
enum Auth {
    Agent(PublicKey),
    Key(Arc<PrivateKey>),
    Password(String),
}

struct Conn {
    ssh: Handle<HostCheck>,
    sftp: Arc<RawSftpSession>,
    posix_rename: bool,
    fsync: bool,
    read_len: u32,
    write_len: u32,
    gen: u64,
    dead: AtomicBool,
}

impl Conn {
    fn alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && !self.ssh.is_closed()
    }
}

struct Inner {
    host: String,
    port: u16,
    user: String,
    known_hosts: PathBuf,
    pinned: PublicKey,
    auth: Auth,
    root: String,
    display: String,
    conn: Mutex<Option<Arc<Conn>>>,
    gens: AtomicU64,
}

/// A repository in a directory of an SSH server.
pub struct SftpBackend {
    i: Arc<Inner>,
}

fn bad(spec: &RemoteSpec, reason: impl Into<String>) -> RepoError {
    RepoError::Unsupported {
        spec: spec.display(),
        reason: reason.into(),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// True when an SFTP error means the connection is gone (worth reconnecting).
fn transient(e: &SftpError) -> bool {
    match e {
        SftpError::Status(_) | SftpError::Limited(_) | SftpError::UnexpectedPacket => false,
        SftpError::IO(_) | SftpError::Timeout | SftpError::UnexpectedBehavior(_) => true,
    }
}

fn sftp_io(e: SftpError) -> io::Error {
    match e {
        SftpError::Status(s) => {
            let kind = match s.status_code {
                StatusCode::NoSuchFile => io::ErrorKind::NotFound,
                StatusCode::PermissionDenied => io::ErrorKind::PermissionDenied,
                StatusCode::Eof => io::ErrorKind::UnexpectedEof,
                _ => io::ErrorKind::Other,
            };
            let msg = if s.error_message.is_empty() {
                s.status_code.to_string()
            } else {
                format!("{} ({})", s.error_message, s.status_code)
            };
            io::Error::new(kind, msg)
        }
        SftpError::Timeout => {
            io::Error::new(io::ErrorKind::TimedOut, "the server did not answer in time")
        }
        SftpError::IO(m) => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("connection lost: {m}"),
        ),
        SftpError::UnexpectedBehavior(m) => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("connection lost: {m}"),
        ),
        other => io::Error::other(other.to_string()),
    }
}

fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.saturating_sub(1).min(5)).min(5000))
}

/// A failed connection attempt.
enum ConnectError {
    HostKey(PublicKey, Verdict),
    Other(String),
}

async fn handshake(
    host: &str,
    port: u16,
    known_hosts: &Path,
    pinned: Option<PublicKey>,
) -> std::result::Result<(Handle<HostCheck>, PublicKey), ConnectError> {
    let config = Arc::new(client::Config {
        preferred: PREFERRED,
        window_size: 16 << 20,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        nodelay: true,
        ..Default::default()
    });
    let seen = Arc::new(Mutex::new(None));
    let check = HostCheck {
        host: host.to_string(),
        port,
        known_hosts: known_hosts.to_path_buf(),
        pinned,
        seen: Arc::clone(&seen),
    };
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        client::connect(config, (host, port), check),
    )
    .await;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match res {
        Err(_) => Err(ConnectError::Other(
            "no SSH answer within 20 seconds".into(),
        )),
        Ok(Ok(h)) => match seen {
            Some((k, Verdict::Known)) => Ok((h, k)),
            _ => Err(ConnectError::Other("the host key was not checked".into())),
        },
        Ok(Err(e)) => match seen {
            Some((k, v)) if !matches!(v, Verdict::Known) => Err(ConnectError::HostKey(k, v)),
            _ => Err(ConnectError::Other(e.to_string())),
        },
    }
}

async fn start_sftp(ssh: Handle<HostCheck>, gen: u64) -> std::result::Result<Conn, String> {
    let ch = ssh
        .channel_open_session()
        .await
        .map_err(|e| format!("cannot open an SSH channel: {e}"))?;
    ch.request_subsystem(true, "sftp")
        .await
        .map_err(|e| format!("the server refused the sftp subsystem: {e}"))?;
    let sftp = RawSftpSession::new(super::sftp_frame::Framed::new(
        ch.into_stream(),
        super::sftp_frame::MAX_PACKET,
    ));
    sftp.set_timeout(REQUEST_TIMEOUT);
    let v = sftp
        .init()
        .await
        .map_err(|e| format!("SFTP start failed: {e}"))?;
    let mut read_len = DEFAULT_IO;
    let mut write_len = DEFAULT_IO;
    if v.extensions.contains_key("limits@openssh.com") {
        if let Ok(l) = sftp.limits().await {
            if l.max_read_len > 0 {
                read_len = l.max_read_len.min(MAX_IO) as u32;
            }
            if l.max_write_len > 0 {
                write_len = l.max_write_len.min(MAX_IO) as u32;
            }
        }
    }
    Ok(Conn {
        posix_rename: v.extensions.contains_key("posix-rename@openssh.com"),
        fsync: v.extensions.contains_key("fsync@openssh.com"),
        ssh,
        sftp: Arc::new(sftp),
        read_len,
        write_len,
        gen,
        dead: AtomicBool::new(false),
    })
}

fn key_candidates(spec: &RemoteSpec) -> Vec<(PathBuf, bool)> {
    if let Some(k) = spec.option("key") {
        return vec![(PathBuf::from(k), true)];
    }
    if let Some(k) = std::env::var_os("LIFEBOAT_SSH_KEY") {
        return vec![(PathBuf::from(k), true)];
    }
    let Some(h) = home() else { return Vec::new() };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| (h.join(".ssh").join(n), false))
        .collect()
}

impl SftpBackend {
    /// Connects to `sftp://[user@]host[:port]/path`: verifies the host key, authenticates
    /// (agent, key file, password; see the module documentation) and checks that the
    /// repository directory exists.
    pub fn connect(spec: &RemoteSpec, ui: &dyn Interaction) -> Result<Self> {
        for k in spec.query().keys() {
            if !matches!(k.as_str(), "key" | "known_hosts") {
                return Err(bad(
                    spec,
                    format!("unknown option {k:?} (sftp:// knows key, known_hosts)"),
                ));
            }
        }
        let display = spec.display();
        let host = spec.host().to_string();
        let port = spec.port().unwrap_or(22);
        let user = spec
            .user()
            .map(str::to_string)
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .unwrap_or_else(|| "root".to_string());
        let known_hosts = spec
            .option("known_hosts")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("LIFEBOAT_KNOWN_HOSTS").map(PathBuf::from))
            .or_else(|| home().map(|h| h.join(".ssh/known_hosts")))
            .ok_or_else(|| {
                bad(
                    spec,
                    "no known_hosts file: set HOME, LIFEBOAT_KNOWN_HOSTS or ?known_hosts=",
                )
            })?;
        let fail = |what: String| RepoError::Io {
            path: display.clone(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, what),
        };

        // Host key.
        let mut pinned = None;
        let (ssh, pinned) = loop {
            match block_on(handshake(&host, port, &known_hosts, pinned.clone()))
                .map_err(|e| fail(e.to_string()))?
            {
                Ok((h, k)) => break (h, k),
                Err(ConnectError::Other(m)) => {
                    return Err(fail(format!("cannot connect to {host} port {port}: {m}")))
                }
                Err(ConnectError::HostKey(key, v)) => {
                    let fp = key.fingerprint(HashAlg::Sha256).to_string();
                    let algo = key.algorithm().as_str().to_string();
                    match v {
                        Verdict::Changed(line) => {
                            let at = if line > 0 {
                                format!(" (line {line} of {})", known_hosts.display())
                            } else {
                                String::new()
                            };
                            return Err(RepoError::Io {
                                path: display.clone(),
                                source: io::Error::new(
                                    io::ErrorKind::PermissionDenied,
                                    format!(
                                        "WARNING: THE HOST KEY OF {host} PORT {port} HAS CHANGED! The server now shows {algo} key {fp}, which differs from the key recorded in known_hosts{at}. Someone may be intercepting the connection, or the server was reinstalled. Refusing to connect; if the change is expected, remove the old line from {} and connect again.",
                                        known_hosts.display()
                                    ),
                                ),
                            });
                        }
                        Verdict::Failed(m) => {
                            return Err(fail(format!(
                                "cannot check the host key against {}: {m}",
                                known_hosts.display()
                            )))
                        }
                        Verdict::Unknown if pinned.is_none() => {
                            let label = if port == 22 {
                                host.clone()
                            } else {
                                format!("[{host}]:{port}")
                            };
                            if !ui.accept_host_key(&label, &algo, &fp) {
                                return Err(RepoError::Io {
                                    path: display.clone(),
                                    source: io::Error::new(
                                        io::ErrorKind::PermissionDenied,
                                        format!(
                                            "the host key of {label} ({algo} {fp}) is not in {}; refusing to connect. Check the fingerprint with the server's administrator, then accept it interactively or add it with: ssh-keyscan -p {port} {host} >> {}",
                                            known_hosts.display(),
                                            known_hosts.display()
                                        ),
                                    ),
                                });
                            }
                            russh::keys::known_hosts::learn_known_hosts_path(
                                &host,
                                port,
                                &key,
                                &known_hosts,
                            )
                            .map_err(|e| RepoError::Io {
                                path: known_hosts.display().to_string(),
                                source: io::Error::other(format!(
                                    "cannot record the accepted host key: {e}"
                                )),
                            })?;
                            pinned = Some(key);
                        }
                        Verdict::Unknown | Verdict::Known => {
                            return Err(fail("the host key check failed".into()))
                        }
                    }
                }
            }
        };
        let mut ssh = ssh;
        let auth = authenticate(spec, ui, &mut ssh, &user, &display)?;
        let gens = AtomicU64::new(1);
        let conn = block_on(start_sftp(ssh, 1))
            .map_err(|e| fail(e.to_string()))?
            .map_err(fail)?;
        let root = if spec.path().is_empty() {
            ".".to_string()
        } else {
            format!("/{}", spec.path().join("/"))
        };
        let b = SftpBackend {
            i: Arc::new(Inner {
                host,
                port,
                user,
                known_hosts,
                pinned,
                auth,
                root,
                display,
                conn: Mutex::new(Some(Arc::new(conn))),
                gens,
            }),
        };
        let root = b.i.root.clone();
        let attrs = b.i.call(&b.i.display, move |c| {
            let root = root.clone();
            async move { c.sftp.stat(root).await.map(|a| a.attrs) }
        });
        match attrs {
            Ok(a) if a.file_type().is_dir() => Ok(b),
            Ok(_) => Err(RepoError::Io {
                path: b.i.display.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
            }),
            Err(RepoError::Io { path, source }) => Err(RepoError::Io {
                path,
                source: io::Error::new(
                    source.kind(),
                    format!("{source}; the repository directory must exist on the server"),
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

fn authenticate(
    spec: &RemoteSpec,
    ui: &dyn Interaction,
    ssh: &mut Handle<HostCheck>,
    user: &str,
    display: &str,
) -> Result<Auth> {
    let fail = |what: String| RepoError::Io {
        path: display.to_string(),
        source: io::Error::new(io::ErrorKind::PermissionDenied, what),
    };
    let net = |e: io::Error| fail(e.to_string());
    let mut tried = Vec::new();

    // 1. The agent.
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        let r = block_on(async {
            let mut agent = russh::keys::agent::client::AgentClient::connect_env()
                .await
                .ok()?;
            let ids = agent.request_identities().await.ok()?;
            let rsa = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
            let n = ids.len();
            for key in ids {
                let hash = if key.algorithm().is_rsa() { rsa } else { None };
                if let Ok(r) = ssh
                    .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                    .await
                {
                    if r.success() {
                        return Some(Ok(key));
                    }
                }
            }
            Some(Err(n))
        })
        .map_err(net)?;
        match r {
            Some(Ok(k)) => return Ok(Auth::Agent(k)),
            Some(Err(n)) => tried.push(format!("{n} key(s) of the SSH agent")),
            None => tried.push("the SSH agent (not reachable)".into()),
        }
    }

    // 2. Key files.
    let creds = CredentialsFile::load_default()?;
    for (path, explicit) in key_candidates(spec) {
        if !path.exists() {
            if explicit {
                return Err(RepoError::Io {
                    path: path.display().to_string(),
                    source: io::Error::new(io::ErrorKind::NotFound, "key file not found"),
                });
            }
            continue;
        }
        let key = match russh::keys::load_secret_key(&path, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let prompt = format!("Passphrase for {}: ", path.display());
                let Some((pass, _)) = lookup_secret(
                    spec,
                    "passphrase",
                    &["LIFEBOAT_SSH_PASSPHRASE"],
                    &creds,
                    ui,
                    &prompt,
                )?
                else {
                    tried.push(format!(
                        "{} (encrypted, no passphrase given)",
                        path.display()
                    ));
                    continue;
                };
                russh::keys::load_secret_key(&path, Some(&pass)).map_err(|e| RepoError::Io {
                    path: path.display().to_string(),
                    source: io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("cannot decrypt the key (wrong passphrase?): {e}"),
                    ),
                })?
            }
            Err(e) => {
                return Err(RepoError::Io {
                    path: path.display().to_string(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("cannot read the SSH key: {e}"),
                    ),
                })
            }
        };
        let key = Arc::new(key);
        let ok = block_on(async {
            let rsa = if key.algorithm().is_rsa() {
                ssh.best_supported_rsa_hash().await.ok().flatten().flatten()
            } else {
                None
            };
            ssh.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::clone(&key), rsa))
                .await
        })
        .map_err(net)?
        .map_err(|e| fail(format!("authentication failed: {e}")))?;
        if ok.success() {
            return Ok(Auth::Key(key));
        }
        tried.push(format!("key {}", path.display()));
    }

    // 3. A password.
    let prompt = format!("Password for {user}@{}: ", spec.host());
    if let Some((pass, _)) = lookup_secret(
        spec,
        "password",
        &["LIFEBOAT_SSH_PASSWORD"],
        &creds,
        ui,
        &prompt,
    )? {
        let ok = block_on(ssh.authenticate_password(user, pass.clone()))
            .map_err(net)?
            .map_err(|e| fail(format!("authentication failed: {e}")))?;
        if ok.success() {
            return Ok(Auth::Password(pass));
        }
        tried.push("a password".into());
    }
    Err(fail(format!(
        "authentication of user {user} failed; tried {}",
        if tried.is_empty() {
            "nothing (no agent, no key file, no password: give ?key=, LIFEBOAT_SSH_KEY or LIFEBOAT_SSH_PASSWORD)".to_string()
        } else {
            tried.join(", ")
        }
    )))
}

impl Inner {
    fn label(&self, image: &ImageName, file: FileKind) -> String {
        format!("{}/{image}/{file}", self.display)
    }

    fn path(&self, image: &ImageName, file: impl fmt::Display) -> String {
        format!("{}/{image}/{file}", self.root)
    }

    fn dir(&self, image: &str) -> String {
        format!("{}/{image}", self.root)
    }

    /// A new connection with the first one's host key and credentials.
    fn reconnect(&self) -> io::Result<Conn> {
        let gen = self.gens.fetch_add(1, Ordering::SeqCst) + 1;
        block_on(async {
            let (mut ssh, _) = handshake(
                &self.host,
                self.port,
                &self.known_hosts,
                Some(self.pinned.clone()),
            )
            .await
            .map_err(|e| match e {
                ConnectError::HostKey(..) => io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "on reconnecting, the server showed a different host key; refusing",
                ),
                ConnectError::Other(m) => io::Error::new(io::ErrorKind::ConnectionRefused, m),
            })?;
            let ok = match &self.auth {
                Auth::Key(k) => {
                    let rsa = if k.algorithm().is_rsa() {
                        ssh.best_supported_rsa_hash().await.ok().flatten().flatten()
                    } else {
                        None
                    };
                    ssh.authenticate_publickey(
                        &self.user,
                        PrivateKeyWithHashAlg::new(Arc::clone(k), rsa),
                    )
                    .await
                    .map_err(io::Error::other)?
                    .success()
                }
                Auth::Password(p) => ssh
                    .authenticate_password(&self.user, p.clone())
                    .await
                    .map_err(io::Error::other)?
                    .success(),
                Auth::Agent(key) => {
                    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
                        .await
                        .map_err(io::Error::other)?;
                    let rsa = if key.algorithm().is_rsa() {
                        ssh.best_supported_rsa_hash().await.ok().flatten().flatten()
                    } else {
                        None
                    };
                    ssh.authenticate_publickey_with(&self.user, key.clone(), rsa, &mut agent)
                        .await
                        .map_err(|e| io::Error::other(format!("{e:?}")))?
                        .success()
                }
            };
            if !ok {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "on reconnecting, the server refused the credentials that worked before",
                ));
            }
            start_sftp(ssh, gen).await.map_err(io::Error::other)
        })?
    }

    /// The live connection, reconnecting when it was lost.
    fn conn(&self) -> io::Result<Arc<Conn>> {
        let mut g = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.as_ref().filter(|c| c.alive()) {
            return Ok(Arc::clone(c));
        }
        *g = None;
        let c = Arc::new(self.reconnect()?);
        *g = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Runs a request, reconnecting and retrying when the connection drops. Errors name
    /// `label` (the server address and file).
    fn call<T, F, Fut>(&self, label: &str, op: F) -> Result<T>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, SftpError>>,
    {
        self.call_io(op).map_err(|e| RepoError::Io {
            path: label.to_string(),
            source: e,
        })
    }

    fn call_io<T, F, Fut>(&self, op: F) -> io::Result<T>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, SftpError>>,
    {
        let mut last = None;
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                std::thread::sleep(backoff(attempt));
            }
            let c = match self.conn() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
                Err(e) => {
                    last = Some(io::Error::new(
                        e.kind(),
                        format!("reconnecting failed: {e}"),
                    ));
                    continue;
                }
            };
            match block_on(op(Arc::clone(&c)))? {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) => {
                    c.dead.store(true, Ordering::SeqCst);
                    last = Some(sftp_io(e));
                }
                Err(e) => return Err(sftp_io(e)),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::other("request failed"));
        Err(io::Error::new(
            e.kind(),
            format!("{e} (gave up after {} attempts)", RETRIES + 1),
        ))
    }

    async fn read_dir(
        c: Arc<Conn>,
        dir: String,
    ) -> std::result::Result<Vec<(String, FileAttributes)>, SftpError> {
        let h = c.sftp.opendir(dir).await?.handle;
        let mut out = Vec::new();
        let res = loop {
            match c.sftp.readdir(h.clone()).await {
                Ok(n) => {
                    for f in n.files {
                        if f.filename != "." && f.filename != ".." {
                            out.push((f.filename, f.attrs));
                        }
                    }
                    if out.len() > MAX_ENTRIES {
                        break Err(SftpError::Limited(format!(
                            "more than {MAX_ENTRIES} directory entries"
                        )));
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = c.sftp.close(h).await;
        res.map(|()| out)
    }

    /// Reads `len` bytes at `off` from the open file `h`, several requests at a time; each
    /// answer's data is one piece of the result, as it came.
    async fn read_range(
        c: Arc<Conn>,
        h: String,
        off: u64,
        len: usize,
    ) -> std::result::Result<Pieces, SftpError> {
        let step = c.read_len as usize;
        let mut tasks = Vec::new();
        let mut at = 0usize;
        while at < len {
            let n = step.min(len - at);
            let (s, h) = (Arc::clone(&c.sftp), h.clone());
            let pos = off + at as u64;
            let t = spawn(async move { s.read(h, pos, n as u32).await })
                .map_err(|e| SftpError::IO(e.to_string()))?;
            tasks.push((at, n, t));
            at += n;
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (at, n, t) in tasks {
            let mut got = t.await.map_err(|e| SftpError::IO(e.to_string()))??.data;
            got.truncate(n);
            // A server may answer with fewer bytes; fetch the rest in order.
            let mut have = got.len();
            out.push(got);
            let mut guard = 0;
            while have < n {
                guard += 1;
                if guard > 1024 {
                    return Err(SftpError::UnexpectedBehavior("no progress reading".into()));
                }
                let mut more = c
                    .sftp
                    .read(h.clone(), off + (at + have) as u64, (n - have) as u32)
                    .await?
                    .data;
                if more.is_empty() {
                    return Err(SftpError::UnexpectedBehavior("empty read".into()));
                }
                more.truncate(n - have);
                have += more.len();
                out.push(more);
            }
        }
        Ok(out)
    }
}

/// Pipelined writer: full requests go out in the background, at most 16 unanswered.
struct SftpWriter {
    c: Arc<Conn>,
    handle: String,
    label: String,
    off: u64,
    buf: Vec<u8>,
    sem: Arc<Semaphore>,
    error: Arc<Mutex<Option<io::Error>>>,
    done: bool,
}

impl SftpWriter {
    fn failed(&self) -> Option<io::Error> {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|e| io::Error::new(e.kind(), e.to_string()))
    }

    fn send(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.c.write_len as usize));
        let permit = block_on(Arc::clone(&self.sem).acquire_owned())?
            .map_err(|_| io::Error::other("writer closed"))?;
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let (s, h, off, err, c) = (
            Arc::clone(&self.c.sftp),
            self.handle.clone(),
            self.off,
            Arc::clone(&self.error),
            Arc::clone(&self.c),
        );
        self.off += data.len() as u64;
        spawn(async move {
            if let Err(e) = s.write(h, off, data).await {
                if transient(&e) {
                    c.dead.store(true, Ordering::SeqCst);
                }
                let mut slot = err.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(sftp_io(e));
                }
            }
            drop(permit);
        })?;
        Ok(())
    }

    fn drain(&self) -> io::Result<()> {
        let all = block_on(self.sem.acquire_many(WRITES_IN_FLIGHT as u32))?
            .map_err(|_| io::Error::other("writer closed"))?;
        drop(all);
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The error with the file's address in front (for errors of `Write`).
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.label))
    }

    fn wrap(&self, e: io::Error) -> RepoError {
        RepoError::Io {
            path: self.label.clone(),
            source: e,
        }
    }
}

impl Write for SftpWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let cap = self.c.write_len as usize;
        if self.buf.len() >= cap {
            self.send().map_err(|e| self.named(e))?;
        }
        let n = (cap - self.buf.len()).min(buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.failed() {
            Some(e) => Err(self.named(e)),
            None => Ok(()),
        }
    }
}

impl BackendWrite for SftpWriter {
    fn finish(mut self: Box<Self>) -> Result<()> {
        self.done = true;
        if !self.buf.is_empty() {
            self.send().map_err(|e| self.wrap(e))?;
        }
        self.drain().map_err(|e| self.wrap(e))?;
        let (c, h) = (Arc::clone(&self.c), self.handle.clone());
        let r = block_on(async move {
            if c.fsync {
                c.sftp.fsync(h.clone()).await?;
            }
            c.sftp.close(h).await
        })
        .map_err(|e| self.wrap(e))?;
        r.map(|_| ()).map_err(|e| {
            if transient(&e) {
                self.c.dead.store(true, Ordering::SeqCst);
            }
            self.wrap(sftp_io(e))
        })
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if !self.done {
            let (s, h) = (Arc::clone(&self.c.sftp), self.handle.clone());
            let _ = spawn(async move {
                let _ = s.close(h).await;
            });
        }
    }
}

/// The open read handle of a file, per connection.
struct ReadFile {
    i: Arc<Inner>,
    /// Path on the server.
    path: String,
    /// Address for messages.
    label: String,
    handle: Mutex<Option<(u64, String)>>,
}

impl Drop for ReadFile {
    fn drop(&mut self) {
        let cached = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((g, h)) = cached {
            let conn = self
                .i
                .conn
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(c) = conn.filter(|c| c.gen == g) {
                let _ = spawn(async move {
                    let _ = c.sftp.close(h).await;
                });
            }
        }
    }
}

/// The attributes of what lifeboat creates on the server: images hold whole disks, so their
/// directories (0700) and files (0600) are the owner's only, whatever the server's umask allows
/// beyond that.
fn private_attrs(mode: u32) -> FileAttributes {
    FileAttributes {
        permissions: Some(mode),
        ..FileAttributes::empty()
    }
}

impl SftpBackend {
    /// A positional reader of the file at `path` (`label` names it in errors), read ahead in
    /// pipelined blocks.
    fn open_path(&self, path: String, label: String) -> Result<Box<dyn BackendRead>> {
        let p = path.clone();
        let attrs = self.i.call(&label, |c| {
            let p = p.clone();
            async move { c.sftp.stat(p).await.map(|a| a.attrs) }
        })?;
        let len = attrs.size.unwrap_or(0);
        let f = ReadFile {
            i: Arc::clone(&self.i),
            path,
            label,
            handle: Mutex::new(None),
        };
        let fetch: Arc<Fetch> = Arc::new(move |off, n| f.fetch(off, n));
        Ok(Box::new(ReadAhead::new(fetch, len, READ_BLOCK, READ_DEPTH)))
    }
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.i.display.clone()
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }

    fn list_images(&self) -> Result<Vec<String>> {
        let root = self.i.root.clone();
        let entries = self
            .i
            .call(&self.i.display, |c| Inner::read_dir(c, root.clone()))?;
        let mut out: Vec<String> = entries
            .into_iter()
            .filter(|(n, a)| !n.starts_with('.') && a.file_type().is_dir())
            .map(|(n, _)| n)
            .collect();
        out.sort();
        Ok(out)
    }

    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>> {
        let dir = self.i.dir(image);
        let label = format!("{}/{image}", self.i.display);
        let entries = self.i.call(&label, |c| Inner::read_dir(c, dir.clone()))?;
        let mut out: Vec<(String, u64)> = entries
            .into_iter()
            .map(|(n, a)| {
                let size = if a.file_type().is_file() {
                    a.size.unwrap_or(0)
                } else {
                    0
                };
                (n, size)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn create_image(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        let dir = self.i.dir(image);
        let label = format!("{}/{image}", self.i.display);
        let made = self.i.call(&label, |c| {
            let dir = dir.clone();
            async move {
                match c.sftp.mkdir(dir.clone(), private_attrs(0o700)).await {
                    Ok(_) => Ok(true),
                    Err(SftpError::Status(s)) => match c.sftp.stat(dir).await {
                        Ok(_) => Ok(false),
                        Err(_) => Err(SftpError::Status(s)),
                    },
                    Err(e) => Err(e),
                }
            }
        })?;
        if !made {
            return Err(RepoError::Exists {
                name: image.to_string(),
                repo: self.location(),
            });
        }
        Ok(())
    }

    fn create(&self, name: &ImageName, kind: FileKind) -> Result<Box<dyn BackendWrite>> {
        let path = self.i.path(name, kind);
        let label = self.i.label(name, kind);
        let c = self.i.conn().map_err(|e| RepoError::Io {
            path: label.clone(),
            source: e,
        })?;
        let handle = block_on(c.sftp.open(
            path,
            OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            private_attrs(0o600),
        ))
        .map_err(|e| RepoError::Io {
            path: label.clone(),
            source: e,
        })?
        .map_err(|e| {
            if transient(&e) {
                c.dead.store(true, Ordering::SeqCst);
            }
            RepoError::Io {
                path: label.clone(),
                source: sftp_io(e),
            }
        })?
        .handle;
        Ok(Box::new(SftpWriter {
            buf: Vec::with_capacity(c.write_len as usize),
            c,
            handle,
            label,
            off: 0,
            sem: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
            error: Arc::new(Mutex::new(None)),
            done: false,
        }))
    }

    fn open(&self, name: &ImageName, kind: FileKind) -> Result<Box<dyn BackendRead>> {
        self.open_path(self.i.path(name, kind), self.i.label(name, kind))
    }

    fn open_named(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>> {
        lifeboat_repo::plain_names(image, file)?;
        self.open_path(
            format!("{}/{file}", self.i.dir(image)),
            format!("{}/{image}/{file}", self.i.display),
        )
    }

    fn put_atomic(&self, name: &ImageName, kind: FileKind, data: &[u8]) -> Result<()> {
        let tmp = self.i.path(name, kind.temp_name());
        let path = self.i.path(name, kind);
        let label = self.i.label(name, kind);
        let data = Arc::new(data.to_vec());
        self.i.call(&label, |c| {
            let (tmp, path, data) = (tmp.clone(), path.clone(), Arc::clone(&data));
            async move {
                let h = c
                    .sftp
                    .open(
                        tmp.clone(),
                        OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                        private_attrs(0o600),
                    )
                    .await?
                    .handle;
                let step = c.write_len as usize;
                let mut at = 0usize;
                while at < data.len() {
                    let n = step.min(data.len() - at);
                    c.sftp
                        .write(h.clone(), at as u64, data[at..at + n].to_vec())
                        .await?;
                    at += n;
                }
                if c.fsync {
                    c.sftp.fsync(h.clone()).await?;
                }
                c.sftp.close(h).await?;
                if c.posix_rename {
                    let mut req = Vec::new();
                    ssh_string(&mut req, &tmp);
                    ssh_string(&mut req, &path);
                    match c.sftp.extended("posix-rename@openssh.com", req).await? {
                        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
                        Packet::Status(s) => Err(SftpError::Status(s)),
                        _ => Err(SftpError::UnexpectedPacket),
                    }
                } else {
                    // Plain SFTP rename refuses an existing target: remove it first.
                    let _ = c.sftp.remove(path.clone()).await;
                    c.sftp.rename(tmp, path).await.map(|_| ())
                }
            }
        })
    }

    fn get(&self, name: &ImageName, kind: FileKind, max: u64) -> Result<Vec<u8>> {
        let path = self.i.path(name, kind);
        let label = self.i.label(name, kind);
        self.i.call(&label, |c| {
            let path = path.clone();
            async move {
                let h = c
                    .sftp
                    .open(path, OpenFlags::READ, FileAttributes::empty())
                    .await?
                    .handle;
                let mut out = Vec::new();
                let res = loop {
                    if out.len() as u64 > max {
                        break Err(SftpError::Limited(format!(
                            "file is larger than {max} bytes"
                        )));
                    }
                    match c.sftp.read(h.clone(), out.len() as u64, c.read_len).await {
                        Ok(d) if d.data.is_empty() => break Ok(()),
                        Ok(d) => out.extend_from_slice(&d.data),
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                            break Ok(())
                        }
                        Err(e) => break Err(e),
                    }
                };
                let _ = c.sftp.close(h).await;
                res.and_then(|()| {
                    if out.len() as u64 > max {
                        Err(SftpError::Limited(format!(
                            "file is larger than {max} bytes"
                        )))
                    } else {
                        Ok(out)
                    }
                })
            }
        })
    }

    fn delete_file(&self, name: &ImageName, kind: FileKind) -> Result<()> {
        let path = self.i.path(name, kind);
        let label = self.i.label(name, kind);
        self.i.call(&label, |c| {
            let path = path.clone();
            async move { c.sftp.remove(path).await.map(|_| ()) }
        })
    }

    fn remove_image_dir(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        let dir = self.i.dir(image);
        let label = format!("{}/{image}", self.i.display);
        self.i.call(&label, |c| {
            let dir = dir.clone();
            async move { c.sftp.rmdir(dir).await.map(|_| ()) }
        })
    }
}

impl ReadFile {
    fn fetch(&self, off: u64, len: usize) -> io::Result<Pieces> {
        let f = self;
        f.i.call_io(|c| {
            let path = self.path.clone();
            let cached = f
                .handle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .filter(|(g, _)| *g == c.gen);
            async move {
                let h = match cached {
                    Some((_, h)) => h,
                    None => {
                        let h = c
                            .sftp
                            .open(path, OpenFlags::READ, FileAttributes::empty())
                            .await?
                            .handle;
                        *f.handle.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((c.gen, h.clone()));
                        h
                    }
                };
                Inner::read_range(c, h, off, len).await
            }
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.label)))
    }
}
