//! SMB2/3 repositories: `smb://[user@]server[:port]/share[/dir…][?domain=D]`.
//!
//! The password comes from `LIFEBOAT_SMB_PASSWORD`, the credentials file's `password` key,
//! the address (with a warning), or a hidden prompt, in that order. Authentication is NTLM;
//! SMB3 sessions are signed, and encrypted when the server asks for it. The directories after
//! the share must exist.
//!
//! Writes keep several WRITE requests in flight (the protocol's credits allow it on one
//! connection) and end with a FLUSH; small files (the manifest) are written under a temporary
//! name and renamed into place. Sequential reads keep `READ_AHEAD` (32 MiB) of READ requests
//! in flight on the one connection, each as large as the server's MaxReadSize allows (up to
//! 4 MiB, a multi-credit request); the client asks the server for enough credits to do so. A
//! broken connection is re-established (new session, files opened again) and the request
//! retried a bounded number of times. Protocol client: the `smb` crate (pure Rust,
//! thread-based API).

use super::pipeline::{io_err, retry, Fault, PipelinedWriter, RemoteFile};
use super::readahead::{Fetch, Pieces, ReadAhead};
use super::{lookup_secret, CredentialsFile, Interaction, RemoteSpec};
use lifeboat_repo::{Backend, BackendRead, BackendWrite, FileKind, ImageName};
use lifeboat_repo::{RepoError, Result};
use smb::connection::EncryptionMode;
use smb::{
    Client, ClientConfig, CreateOptions, FileAccessMask, FileAttributes, FileCreateArgs,
    FileDirectoryInformation, FileDispositionInformation, FileRenameInformation, UncPath,
};
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEFAULT_PORT: u16 = 445;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Size of one WRITE request (at most the server's negotiated maximum).
const IO_SIZE: u32 = 1 << 20;
/// Largest READ request (at most the server's MaxReadSize); a multi-credit request.
const READ_SIZE: u32 = 4 << 20;
/// Bytes of READ requests kept in flight by a sequential reader (`READ_AHEAD / read size`
/// requests; the memory bound of one open file).
const READ_AHEAD: usize = 32 << 20;
/// Credits the client asks the server to keep granted: enough for `READ_AHEAD` in flight
/// (one credit per 64 KiB) plus the writer's requests. Samba grants up to 8192.
const CREDITS: u16 = 1024;
const MAX_ENTRIES: usize = 1_000_000;

const STATUS_OBJECT_NAME_COLLISION: u32 = 0xC000_0035;
const STATUS_OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
const STATUS_OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
const STATUS_ACCESS_DENIED: u32 = 0xC000_0022;
const STATUS_BAD_NETWORK_NAME: u32 = 0xC000_00CC;
const STATUS_DISK_FULL: u32 = 0xC000_007F;
const STATUS_DIRECTORY_NOT_EMPTY: u32 = 0xC000_0101;
const STATUS_NETWORK_SESSION_EXPIRED: u32 = 0xC000_035C;
const STATUS_USER_SESSION_DELETED: u32 = 0xC000_0203;
const STATUS_NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
const STATUS_CONNECTION_DISCONNECTED: u32 = 0xC000_020C;
const STATUS_FILE_CLOSED: u32 = 0xC000_0128;
const STATUS_INSUFF_SERVER_RESOURCES: u32 = 0xC000_0205;

fn status_of(e: &smb::Error) -> Option<u32> {
    match e {
        smb::Error::UnexpectedMessageStatus(s) | smb::Error::ReceivedErrorMessage(s, _) => Some(*s),
        _ => None,
    }
}

fn status_text(s: u32) -> &'static str {
    match s {
        STATUS_OBJECT_NAME_COLLISION => "already exists",
        STATUS_OBJECT_NAME_NOT_FOUND | STATUS_OBJECT_PATH_NOT_FOUND => "no such file or directory",
        STATUS_LOGON_FAILURE => {
            "the server refused the user name or password (STATUS_LOGON_FAILURE)"
        }
        STATUS_ACCESS_DENIED => "access denied",
        STATUS_BAD_NETWORK_NAME => "no such share on the server",
        STATUS_DISK_FULL => "the server's disk is full",
        STATUS_DIRECTORY_NOT_EMPTY => "directory not empty",
        _ => "error",
    }
}

fn status_kind(s: u32) -> io::ErrorKind {
    use io::ErrorKind as K;
    match s {
        STATUS_OBJECT_NAME_COLLISION => K::AlreadyExists,
        STATUS_OBJECT_NAME_NOT_FOUND | STATUS_OBJECT_PATH_NOT_FOUND | STATUS_BAD_NETWORK_NAME => {
            K::NotFound
        }
        STATUS_LOGON_FAILURE | STATUS_ACCESS_DENIED => K::PermissionDenied,
        STATUS_DISK_FULL => K::StorageFull,
        STATUS_DIRECTORY_NOT_EMPTY => K::DirectoryNotEmpty,
        _ => K::Other,
    }
}

/// Sorts an error of the protocol client: a status from the server is final (except those
/// saying the session or connection is gone); anything else (transport errors, timeouts,
/// stopped connection) is worth a reconnect.
fn fault(e: smb::Error) -> Fault {
    match status_of(&e) {
        Some(
            STATUS_NETWORK_SESSION_EXPIRED
            | STATUS_USER_SESSION_DELETED
            | STATUS_NETWORK_NAME_DELETED
            | STATUS_CONNECTION_DISCONNECTED
            | STATUS_FILE_CLOSED
            | STATUS_INSUFF_SERVER_RESOURCES,
        ) => Fault::Transient(io::Error::new(
            io::ErrorKind::ConnectionReset,
            e.to_string(),
        )),
        Some(s) => Fault::Permanent(io::Error::new(
            status_kind(s),
            format!("{} (status 0x{s:08X})", status_text(s)),
        )),
        None => match e {
            smb::Error::SspiError(_)
            | smb::Error::InvalidArgument(_)
            | smb::Error::InvalidConfiguration(_)
            | smb::Error::UnsupportedOperation(_)
            | smb::Error::UnsupportedAuthenticationMechanism(_)
            | smb::Error::NegotiationError(_)
            | smb::Error::MissingPermissions(_) => {
                Fault::Permanent(io::Error::other(e.to_string()))
            }
            other => Fault::Transient(io::Error::new(
                io::ErrorKind::ConnectionReset,
                other.to_string(),
            )),
        },
    }
}

/// An error of a file's READ/WRITE/FLUSH (the client reports them as text): worth a
/// reconnect, which also tells a dead connection from a refusing server.
fn io_fault(e: io::Error) -> Fault {
    if e.kind() == io::ErrorKind::PermissionDenied {
        Fault::Permanent(e)
    } else {
        Fault::Transient(e)
    }
}

struct Session {
    generation: u64,
    client: Arc<Client>,
}

struct Smb {
    display: String,
    port: u16,
    share: UncPath,
    user: String,
    password: String,
    encryption: EncryptionMode,
    base: Vec<String>,
    session: Mutex<Session>,
    io_size: u32,
    read_size: u32,
}

fn new_client(
    port: u16,
    share: &UncPath,
    user: &str,
    password: &str,
    encryption: EncryptionMode,
) -> std::result::Result<Client, smb::Error> {
    let mut cfg = ClientConfig {
        dfs: false,
        ..Default::default()
    };
    cfg.connection.port = Some(port);
    // SMB 2.1 to 3.1.1 (docs/REPOSITORIES.md): never SMB 2.0.2.
    cfg.connection.min_dialect = Some(smb::Dialect::Smb021);
    cfg.connection.encryption_mode = encryption;
    cfg.connection.timeout = Some(TIMEOUT);
    cfg.connection.credits_backlog = Some(CREDITS);
    let client = Client::new(cfg);
    client.share_connect(share, user, password.to_string())?;
    Ok(client)
}

impl Smb {
    fn current(&self) -> (u64, Arc<Client>) {
        match self.session.lock() {
            Ok(s) => (s.generation, Arc::clone(&s.client)),
            Err(p) => {
                let s = p.into_inner();
                (s.generation, Arc::clone(&s.client))
            }
        }
    }

    /// Replaces the session of generation `seen` with a new one (unless another thread did
    /// already) and returns the current one.
    fn reconnect(&self, seen: u64) -> std::result::Result<(u64, Arc<Client>), Fault> {
        let mut s = self
            .session
            .lock()
            .map_err(|_| Fault::Permanent(io::Error::other("session lock poisoned")))?;
        if s.generation == seen {
            let c = new_client(
                self.port,
                &self.share,
                &self.user,
                &self.password,
                self.encryption,
            )
            .map_err(fault)?;
            let old = std::mem::replace(&mut s.client, Arc::new(c));
            s.generation += 1;
            std::thread::spawn(move || {
                let _ = old.close();
            });
        }
        Ok((s.generation, Arc::clone(&s.client)))
    }

    /// The session to use for attempt `attempt` (a retry first reconnects).
    fn session_for(&self, attempt: u32, seen: &mut u64) -> std::result::Result<Arc<Client>, Fault> {
        let (g, c) = if attempt == 0 {
            self.current()
        } else {
            self.reconnect(*seen)?
        };
        *seen = g;
        Ok(c)
    }

    /// Share-relative path of `parts` below the repository directory.
    fn rel(&self, parts: &[&str]) -> String {
        let mut v: Vec<&str> = self.base.iter().map(String::as_str).collect();
        v.extend_from_slice(parts);
        v.join("\\")
    }

    fn unc(&self, parts: &[&str]) -> UncPath {
        self.share.clone().with_path(&self.rel(parts))
    }

    fn label(&self, parts: &[&str]) -> String {
        let mut s = self.display.clone();
        for p in parts {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    /// Runs `f` with a session, reconnecting and retrying on transient faults.
    fn with<T>(
        &self,
        mut f: impl FnMut(&Client, u32) -> std::result::Result<T, Fault>,
    ) -> io::Result<T> {
        let (mut seen, _) = self.current();
        retry(|attempt| {
            let c = self.session_for(attempt, &mut seen)?;
            f(&c, attempt)
        })
    }

    fn open(
        &self,
        c: &Client,
        parts: &[&str],
        args: &FileCreateArgs,
    ) -> std::result::Result<smb::Resource, Fault> {
        c.create_file(&self.unc(parts), args).map_err(fault)
    }

    fn list(&self, parts: &[&str]) -> io::Result<Vec<(String, bool, u64)>> {
        self.with(|c, _| {
            let dir = self.open(
                c,
                parts,
                &FileCreateArgs::make_open_existing(FileAccessMask::new().with_generic_read(true)),
            )?;
            let dir = match dir {
                smb::Resource::Directory(d) => d,
                other => {
                    drop(other);
                    return Err(Fault::Permanent(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "not a directory",
                    )));
                }
            };
            let mut out = Vec::new();
            let mut failed = None;
            match dir.query::<FileDirectoryInformation>("*") {
                Ok(it) => {
                    for e in it {
                        match e {
                            Ok(e) => {
                                let name = e.file_name.to_string();
                                if name == "." || name == ".." {
                                    continue;
                                }
                                if out.len() >= MAX_ENTRIES {
                                    failed = Some(Fault::Permanent(io::Error::new(
                                        io::ErrorKind::InvalidData,
                                        format!("directory has more than {MAX_ENTRIES} entries"),
                                    )));
                                    break;
                                }
                                out.push((name, e.file_attributes.directory(), e.end_of_file));
                            }
                            Err(e) => {
                                failed = Some(fault(e));
                                break;
                            }
                        }
                    }
                }
                Err(e) => failed = Some(fault(e)),
            }
            let _ = dir.close();
            match failed {
                Some(f) => Err(f),
                None => Ok(out),
            }
        })
    }

    /// Deletes a file or an (empty) directory.
    fn delete(&self, parts: &[&str], is_dir: bool) -> io::Result<()> {
        self.with(|c, attempt| {
            let options = if is_dir {
                CreateOptions::new().with_directory_file(true)
            } else {
                CreateOptions::new().with_non_directory_file(true)
            };
            let args = FileCreateArgs {
                options,
                ..FileCreateArgs::make_open_existing(FileAccessMask::new().with_delete(true))
            };
            let r = match self.open(c, parts, &args) {
                Ok(r) => r,
                // A retried delete may find its lost first attempt's effect.
                Err(Fault::Permanent(e)) if attempt > 0 && e.kind() == io::ErrorKind::NotFound => {
                    return Ok(())
                }
                Err(f) => return Err(f),
            };
            let set = match &r {
                smb::Resource::File(f) => f.set_info(FileDispositionInformation::default()),
                smb::Resource::Directory(d) => d.set_info(FileDispositionInformation::default()),
                _ => Err(smb::Error::InvalidArgument(
                    "not a file or directory".into(),
                )),
            };
            let closed = match r {
                smb::Resource::File(f) => f.close(),
                smb::Resource::Directory(d) => d.close(),
                _ => Ok(()),
            };
            set.map_err(fault)?;
            closed.map_err(fault)
        })
    }
}

/// One SMB file open for writing or reading; reopened after a reconnect.
struct SmbFile {
    smb: Arc<Smb>,
    parts: [String; 2],
    write: bool,
    handle: Mutex<Option<(u64, Arc<smb::File>)>>,
}

impl SmbFile {
    fn parts(&self) -> [&str; 2] {
        [self.parts[0].as_str(), self.parts[1].as_str()]
    }

    /// The open handle for attempt `attempt`, reopening it on a new session after a failure.
    fn handle(&self, attempt: u32) -> std::result::Result<Arc<smb::File>, Fault> {
        let mut h = self
            .handle
            .lock()
            .map_err(|_| Fault::Permanent(io::Error::other("handle lock poisoned")))?;
        let (gen, client) = if attempt == 0 {
            self.smb.current()
        } else {
            let seen = h.as_ref().map(|(g, _)| *g).unwrap_or(0);
            self.smb.reconnect(seen)?
        };
        if let Some((g, f)) = h.as_ref() {
            if *g == gen {
                return Ok(Arc::clone(f));
            }
        }
        let access = if self.write {
            FileAccessMask::new()
                .with_generic_read(true)
                .with_generic_write(true)
        } else {
            FileAccessMask::new().with_generic_read(true)
        };
        let args = FileCreateArgs {
            options: CreateOptions::new().with_non_directory_file(true),
            ..FileCreateArgs::make_open_existing(access)
        };
        let f = match self.smb.open(&client, &self.parts(), &args)? {
            smb::Resource::File(f) => Arc::new(f),
            _ => {
                return Err(Fault::Permanent(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                )))
            }
        };
        *h = Some((gen, Arc::clone(&f)));
        Ok(f)
    }

    /// `len` bytes from `offset`, each READ's data (at most the server's read size) one piece
    /// as the client decoded it, reconnecting and retrying on transient faults.
    fn read_pieces(&self, offset: u64, len: usize) -> io::Result<Pieces> {
        let step = self.smb.read_size as usize;
        retry(|attempt| {
            let f = self.handle(attempt)?;
            let mut pieces = Vec::with_capacity(len.div_ceil(step.max(1)));
            let mut done = 0usize;
            while done < len {
                let pos = offset + done as u64;
                let data = f
                    .read_block_owned((len - done).min(step), pos, None, false)
                    .map_err(io_fault)?;
                if data.is_empty() {
                    return Err(Fault::Permanent(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ends at byte {pos}, before the expected end"),
                    )));
                }
                done += data.len();
                pieces.push(data);
            }
            Ok(pieces)
        })
    }
}

impl RemoteFile for SmbFile {
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let step = self.smb.io_size as usize;
        retry(|attempt| {
            let f = self.handle(attempt)?;
            let mut done = 0usize;
            while done < data.len() {
                let n = (data.len() - done).min(step);
                let w = f
                    .write_block(&data[done..done + n], offset + done as u64, None)
                    .map_err(io_fault)?;
                if w == 0 || w > n {
                    return Err(Fault::Permanent(io::Error::other(format!(
                        "the server wrote {w} of {n} bytes"
                    ))));
                }
                done += w;
            }
            Ok(())
        })
    }

    fn finish(&self) -> io::Result<()> {
        retry(|attempt| {
            let f = self.handle(attempt)?;
            f.flush().map_err(io_fault)
        })?;
        if let Ok(mut h) = self.handle.lock() {
            if let Some((_, f)) = h.take() {
                f.close().map_err(|e| fault(e).into_io())?;
            }
        }
        Ok(())
    }

    fn label(&self) -> String {
        self.smb.label(&self.parts())
    }
}

impl Drop for SmbFile {
    fn drop(&mut self) {
        if let Ok(mut h) = self.handle.lock() {
            if let Some((_, f)) = h.take() {
                let _ = f.close();
            }
        }
    }
}

/// A repository on an SMB2/3 share.
pub struct SmbBackend {
    smb: Arc<Smb>,
}

impl std::fmt::Debug for SmbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbBackend")
            .field("location", &self.smb.display)
            .finish()
    }
}

impl SmbBackend {
    /// Connects and logs on to the share of `spec`, and checks the repository directory.
    pub fn connect(spec: &RemoteSpec, ui: &dyn Interaction) -> Result<Self> {
        let display = spec.display();
        let unsupported = |reason: String| RepoError::Unsupported {
            spec: display.clone(),
            reason,
        };
        for key in spec.query().keys() {
            if key != "domain" && key != "encrypt" {
                return Err(unsupported(format!(
                    "unknown option {key:?} (smb:// knows domain and encrypt)"
                )));
            }
        }
        let encryption = match spec.option("encrypt") {
            None | Some("allowed") => EncryptionMode::Allowed,
            Some("required") => EncryptionMode::Required,
            Some(other) => {
                return Err(unsupported(format!(
                    "encrypt={other:?}: use encrypt=required (refuse a server that will not encrypt) or encrypt=allowed (the default)"
                )))
            }
        };
        if encryption != EncryptionMode::Required {
            ui.warn(&format!(
                "{display}: SMB messages are signed but travel unencrypted unless the server demands encryption; add ?encrypt=required to refuse a server that will not encrypt"
            ));
        }
        let Some((share_name, base)) = spec.path().split_first() else {
            return Err(unsupported(
                "the address names no share: smb://[user@]server[:port]/share[/dir…]".into(),
            ));
        };
        let Some(user) = spec.user() else {
            return Err(unsupported(
                "the address names no user: smb://user@server/share (the password comes from LIFEBOAT_SMB_PASSWORD, the credentials file or a prompt)".into(),
            ));
        };
        let user = match spec.option("domain") {
            Some(d) if !d.is_empty() => format!("{d}\\{user}"),
            _ => user.to_string(),
        };
        let creds = CredentialsFile::load_default()?;
        let Some((password, _source)) = lookup_secret(
            spec,
            "password",
            &["LIFEBOAT_SMB_PASSWORD"],
            &creds,
            ui,
            &format!("Password for {display}: "),
        )?
        else {
            return Err(unsupported(
                "no password: set LIFEBOAT_SMB_PASSWORD, add `password = …` to the credentials file, or run on a terminal to be asked".into(),
            ));
        };
        let host = spec.host().to_string();
        let port = spec.port().unwrap_or(DEFAULT_PORT);
        let fail = |e: io::Error| io_err(display.clone(), e);
        let share = UncPath::from_str(&format!("\\\\{host}\\{share_name}"))
            .map_err(|e| unsupported(format!("not a valid share path: {e}")))?;
        // A message of the session set-up that fails its signature check (seen once in some
        // hundreds of connections to Samba on 127.0.0.1) refuses the connection: it is made
        // again, a few times, as a dropped connection would be. Anything else (refused,
        // wrong password, no such share) fails at once.
        let client = retry(
            |_| match new_client(port, &share, &user, &password, encryption) {
                Ok(c) => Ok(c),
                Err(e @ smb::Error::TranformFailed(_)) => Err(fault(e)),
                Err(e) => Err(Fault::Permanent(fault(e).into_io())),
            },
        )
        .map_err(|e| {
            fail(io::Error::new(
                e.kind(),
                format!("connecting to {host}:{port} as {user}: {e}"),
            ))
        })?;
        let (max_read, max_write) = client
            .get_connection(&host)
            .ok()
            .and_then(|c| {
                c.conn_info()
                    .map(|i| (i.negotiation.max_read_size, i.negotiation.max_write_size))
            })
            .unwrap_or((64 << 10, 64 << 10));
        let io_size = max_read.min(max_write).clamp(64 << 10, IO_SIZE);
        let read_size = max_read.clamp(64 << 10, READ_SIZE);
        let smb = Smb {
            display: display.clone(),
            port,
            share,
            user,
            password,
            encryption,
            base: base.to_vec(),
            session: Mutex::new(Session {
                generation: 1,
                client: Arc::new(client),
            }),
            io_size,
            read_size,
        };
        let backend = SmbBackend { smb: Arc::new(smb) };
        if !base.is_empty() {
            backend.smb.list(&[]).map_err(|e| {
                fail(io::Error::new(
                    e.kind(),
                    format!("{e}; the repository directory must exist"),
                ))
            })?;
        }
        Ok(backend)
    }

    fn err(&self, parts: &[&str], e: io::Error) -> RepoError {
        io_err(self.smb.label(parts), e)
    }

    fn writer(&self, image: &str, file: &str) -> Box<PipelinedWriter<SmbFile>> {
        Box::new(PipelinedWriter::new(
            SmbFile {
                smb: Arc::clone(&self.smb),
                parts: [image.to_string(), file.to_string()],
                write: true,
                handle: Mutex::new(None),
            },
            self.smb.io_size as usize,
        ))
    }

    /// Creates (or, with `overwrite`, replaces) a file and closes it.
    fn create_file(&self, image: &str, file: &str, overwrite: bool) -> io::Result<()> {
        self.smb.with(|c, attempt| {
            let opts = CreateOptions::new().with_non_directory_file(true);
            let args = if overwrite {
                FileCreateArgs::make_overwrite(FileAttributes::new(), opts)
            } else {
                FileCreateArgs::make_create_new(FileAttributes::new(), opts)
            };
            match self.smb.open(c, &[image, file], &args) {
                Ok(smb::Resource::File(f)) => f.close().map_err(fault),
                Ok(_) => Err(Fault::Permanent(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                ))),
                // A retried create may find the file its lost first attempt made.
                Err(Fault::Permanent(e))
                    if attempt > 0 && e.kind() == io::ErrorKind::AlreadyExists =>
                {
                    Ok(())
                }
                Err(f) => Err(f),
            }
        })
    }
}

impl Backend for SmbBackend {
    fn location(&self) -> String {
        self.smb.display.clone()
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }

    fn list_images(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .smb
            .list(&[])
            .map_err(|e| self.err(&[], e))?
            .into_iter()
            .filter(|(n, dir, _)| *dir && !n.starts_with('.'))
            .map(|(n, _, _)| n)
            .collect();
        out.sort();
        Ok(out)
    }

    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = self
            .smb
            .list(&[image])
            .map_err(|e| self.err(&[image], e))?
            .into_iter()
            .map(|(n, dir, size)| (n, if dir { 0 } else { size }))
            .collect();
        out.sort();
        Ok(out)
    }

    fn create_image(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        let r = self.smb.with(|c, attempt| {
            let args = FileCreateArgs::make_create_new(
                FileAttributes::new().with_directory(true),
                CreateOptions::new().with_directory_file(true),
            );
            match self.smb.open(c, &[image], &args) {
                Ok(smb::Resource::Directory(d)) => d.close().map(|_| true).map_err(fault),
                Ok(_) => Ok(true),
                Err(Fault::Permanent(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A retried create may find the directory its lost first attempt made.
                    Ok(attempt > 0)
                }
                Err(f) => Err(f),
            }
        });
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(RepoError::Exists {
                name: image.to_string(),
                repo: self.location(),
            }),
            Err(e) => Err(self.err(&[image], e)),
        }
    }

    fn create(&self, name: &ImageName, kind: FileKind) -> Result<Box<dyn BackendWrite>> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        self.create_file(image, file, false)
            .map_err(|e| self.err(&[image, file], e))?;
        Ok(self.writer(image, file))
    }

    fn open(&self, name: &ImageName, kind: FileKind) -> Result<Box<dyn BackendRead>> {
        self.open_named(name.as_str(), &kind.name())
    }

    fn open_named(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>> {
        lifeboat_repo::plain_names(image, file)?;
        let f = SmbFile {
            smb: Arc::clone(&self.smb),
            parts: [image.to_string(), file.to_string()],
            write: false,
            handle: Mutex::new(None),
        };
        let len = retry(|attempt| {
            let h = f.handle(attempt)?;
            smb::GetLen::get_len(&*h).map_err(fault)
        })
        .map_err(|e| self.err(&[image, file], e))?;
        // Sequential reads keep READ_AHEAD bytes of READ requests in flight, each as large
        // as the server allows (up to READ_SIZE), on the one connection.
        let block = self.smb.read_size as usize;
        let fetch: Arc<Fetch> = Arc::new(move |off, n| {
            f.read_pieces(off, n)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.label())))
        });
        Ok(Box::new(ReadAhead::new(
            fetch,
            len,
            block,
            READ_AHEAD / block,
        )))
    }

    fn put_atomic(&self, name: &ImageName, kind: FileKind, data: &[u8]) -> Result<()> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        let tmp = kind.temp_name();
        self.create_file(image, &tmp, true)
            .map_err(|e| self.err(&[image, &tmp], e))?;
        let mut w = self.writer(image, &tmp);
        io::Write::write_all(&mut w, data).map_err(|e| self.err(&[image, &tmp], e))?;
        w.finish()?;
        let target = self.smb.rel(&[image, file]);
        self.smb
            .with(|c, attempt| {
                let args = FileCreateArgs {
                    options: CreateOptions::new().with_non_directory_file(true),
                    ..FileCreateArgs::make_open_existing(
                        FileAccessMask::new()
                            .with_delete(true)
                            .with_generic_read(true),
                    )
                };
                let f = match self.smb.open(c, &[image, &tmp], &args) {
                    Ok(smb::Resource::File(f)) => f,
                    Ok(_) => {
                        return Err(Fault::Permanent(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "not a regular file",
                        )))
                    }
                    // A retried rename whose first attempt was done finds no source.
                    Err(Fault::Permanent(e))
                        if attempt > 0 && e.kind() == io::ErrorKind::NotFound =>
                    {
                        return Ok(())
                    }
                    Err(f) => return Err(f),
                };
                let r = f.set_info(FileRenameInformation {
                    replace_if_exists: true.into(),
                    root_directory: 0,
                    file_name: target.as_str().into(),
                });
                let closed = f.close();
                r.map_err(fault)?;
                closed.map_err(fault)
            })
            .map_err(|e| self.err(&[image, file], e))
    }

    fn get(&self, name: &ImageName, kind: FileKind, max: u64) -> Result<Vec<u8>> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        let r = self.open(name, kind)?;
        let len = r.len();
        if len > max {
            return Err(self.err(
                &[image, file],
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {max} bytes"),
                ),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        r.read_exact_at(&mut buf, 0)
            .map_err(|e| self.err(&[image, file], e))?;
        Ok(buf)
    }

    fn delete_file(&self, name: &ImageName, kind: FileKind) -> Result<()> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        self.smb
            .delete(&[image, file], false)
            .map_err(|e| self.err(&[image, file], e))
    }

    fn remove_image_dir(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        self.smb
            .delete(&[image], true)
            .map_err(|e| self.err(&[image], e))
    }
}
