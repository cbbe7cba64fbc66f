//! NFSv3 repositories: `nfs://server[:port]/export[/dir…][?uid=N&gid=N&mountport=N]`.
//!
//! The portmapper gives the MOUNT and NFS ports (an address port is the NFS port); the MOUNT
//! service's export list says which leading path components name the export (the longest
//! export that is a prefix of the path; the rest are directories inside it, which must
//! exist). Requests carry AUTH_SYS credentials: the `uid`/`gid` options, else this process's
//! own. Connections come from a privileged source port when the process may bind one (most
//! servers demand it), else from any port.
//!
//! Writes are UNSTABLE, several in flight on separate connections, and made durable by a
//! COMMIT when the file is finished; a change of the server's write verifier in between (the
//! server restarted and may have lost unstable data) fails the save instead of leaving a
//! damaged volume. Small files (the manifest) are written FILE_SYNC under a temporary name
//! and renamed into place. Protocol clients: the `nfs3_client` crate (MOUNT, portmapper,
//! NFSv3 procedures) driven over blocking sockets.

use super::pipeline::{io_err, retry, Fault, PipelinedWriter, RemoteFile};
use super::readahead::{Fetch, ReadAhead};
use super::{Interaction, RemoteSpec};
use lifeboat_repo::{Backend, BackendRead, BackendWrite, FileKind, ImageName};
use lifeboat_repo::{RepoError, Result};
use nfs3_client::io::{AsyncRead, AsyncWrite};
use nfs3_client::nfs3_types::mount::{dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::{
    self, createhow3, diropargs3, filename3, ftype3, nfs_fh3, nfsstat3, sattr3, stable_how,
    Nfs3Option, Nfs3Result,
};
use nfs3_client::nfs3_types::portmap::IPPROTO_TCP;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::{MountClient, MountError, Nfs3Client, PortmapError, PortmapperClient, RpcError};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest RPC reply accepted (a READ of 1 MiB plus headers); larger length fields are refused
/// before anything is allocated for them.
const MAX_REPLY: u32 = (1 << 20) + (64 << 10);
/// Largest READ/WRITE request.
const MAX_IO: u32 = 1 << 20;
const PORTMAP_PORT: u16 = 111;
/// Idle connections kept for reuse.
const POOL: usize = 8;
/// Bytes of READ requests a sequential reader keeps in flight in the background (one
/// connection each, at most [`POOL`] of them; the memory bound of one open file).
const READ_AHEAD: usize = 8 << 20;
/// Bounds on directory listings.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_READDIR_CALLS: usize = 100_000;

/// Blocking TCP stream seen as the crate's async I/O: every future completes on its first
/// poll. The 4-byte record mark of each reply is checked against [`MAX_REPLY`] before the
/// client allocates the reply buffer.
struct SyncIo {
    s: TcpStream,
    reply_start: bool,
}

fn closed(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the server closed the connection",
        )
    } else {
        e
    }
}

impl AsyncRead for SyncIo {
    async fn async_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.s.read(buf)? {
            0 if !buf.is_empty() => Err(closed(io::ErrorKind::UnexpectedEof.into())),
            n => Ok(n),
        }
    }

    async fn async_read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.s.read_exact(buf).map_err(closed)?;
        if self.reply_start && buf.len() == 4 {
            self.reply_start = false;
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) & 0x7fff_ffff;
            if len > MAX_REPLY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the server sent a reply of {len} bytes (at most {MAX_REPLY} expected)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl AsyncWrite for SyncIo {
    async fn async_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reply_start = true;
        self.s.write(buf)
    }

    async fn async_write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.reply_start = true;
        self.s.write_all(buf)
    }
}

/// Runs a future of the NFS client over [`SyncIo`]: it never waits on a waker, so one poll
/// finishes it.
fn poll_once<F: Future>(f: F) -> io::Result<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(io::Error::other(
            "NFS request did not complete on a blocking socket",
        )),
    }
}

/// [`poll_once`] for the client's RPC calls.
fn block_on<T>(
    f: impl Future<Output = std::result::Result<T, RpcError>>,
) -> std::result::Result<T, RpcError> {
    poll_once(f).map_err(RpcError::Io)?
}

fn local_port_seed() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    ((t ^ std::process::id()) % 400) as u16
}

/// Connects, from a privileged port (600–1023) when the process may bind one.
fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let seed = local_port_seed();
    let mut privileged = None;
    for i in 0..64u16 {
        let port = 600 + (seed + i * 7) % 424;
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
        };
        match sock.bind(&SockAddr::from(local)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => break,
            Err(e) => return Err(e),
        }
        match sock.connect_timeout(&SockAddr::from(addr), CONNECT_TIMEOUT) {
            Ok(()) => {
                privileged = Some(TcpStream::from(sock));
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    let s = match privileged {
        Some(s) => s,
        None => TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?,
    };
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn sync_io(addr: SocketAddr) -> io::Result<SyncIo> {
    Ok(SyncIo {
        s: connect_tcp(addr)?,
        reply_start: false,
    })
}

type Client = Nfs3Client<SyncIo>;

/// Transient: the connection broke or the stream is garbled (reconnect and retry).
fn rpc_fault(e: RpcError) -> Fault {
    match e {
        RpcError::Io(e) => Fault::Transient(e),
        RpcError::Xdr(_) | RpcError::UnexpectedXid | RpcError::NotFullyParsed { .. } => {
            Fault::Transient(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        }
        RpcError::Auth(stat) => Fault::Permanent(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the server refused the AUTH_SYS credentials ({stat}); set ?uid=&gid= or allow this client in the export"),
        )),
        other => Fault::Permanent(io::Error::other(other.to_string())),
    }
}

fn stat_err(stat: nfsstat3) -> io::Error {
    use io::ErrorKind as K;
    let (kind, text) = match stat {
        nfsstat3::NFS3ERR_NOENT => (K::NotFound, "no such file or directory"),
        nfsstat3::NFS3ERR_EXIST => (K::AlreadyExists, "already exists"),
        nfsstat3::NFS3ERR_ACCES | nfsstat3::NFS3ERR_PERM => {
            (K::PermissionDenied, "permission denied")
        }
        nfsstat3::NFS3ERR_NOSPC => (K::StorageFull, "no space left on the server"),
        nfsstat3::NFS3ERR_DQUOT => (K::QuotaExceeded, "quota exceeded"),
        nfsstat3::NFS3ERR_ROFS => (K::ReadOnlyFilesystem, "the export is read-only"),
        nfsstat3::NFS3ERR_NOTEMPTY => (K::DirectoryNotEmpty, "directory not empty"),
        nfsstat3::NFS3ERR_NOTDIR => (K::NotADirectory, "not a directory"),
        nfsstat3::NFS3ERR_ISDIR => (K::IsADirectory, "is a directory"),
        nfsstat3::NFS3ERR_STALE => (K::NotFound, "stale file handle (removed on the server)"),
        _ => (K::Other, "error"),
    };
    io::Error::new(kind, format!("{text} ({stat})"))
}

/// An NFS status as a fault: JUKEBOX (server busy) is worth retrying.
fn stat_fault(stat: nfsstat3) -> Fault {
    if stat == nfsstat3::NFS3ERR_JUKEBOX {
        Fault::Transient(io::Error::new(
            io::ErrorKind::WouldBlock,
            "server busy (NFS3ERR_JUKEBOX)",
        ))
    } else {
        Fault::Permanent(stat_err(stat))
    }
}

fn res<T, E>(r: Nfs3Result<T, E>) -> std::result::Result<T, Fault> {
    match r {
        Nfs3Result::Ok(v) => Ok(v),
        Nfs3Result::Err((stat, _)) => Err(stat_fault(stat)),
    }
}

struct Nfs {
    display: String,
    addr: SocketAddr,
    cred: opaque_auth<'static>,
    pool: Mutex<Vec<Client>>,
    rtmax: u32,
    wtmax: u32,
}

impl Nfs {
    fn connect_client(&self) -> io::Result<Client> {
        Ok(Nfs3Client::new_with_auth(
            sync_io(self.addr)?,
            self.cred.clone(),
            opaque_auth::default(),
        ))
    }

    /// One attempt of `f` on a pooled connection (a new one if none is idle).
    fn attempt<T>(
        &self,
        f: &mut impl FnMut(&mut Client) -> std::result::Result<T, RpcError>,
    ) -> std::result::Result<T, Fault> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut c = match pooled {
            Some(c) => c,
            None => self.connect_client().map_err(Fault::Transient)?,
        };
        match f(&mut c) {
            Ok(v) => {
                if let Ok(mut p) = self.pool.lock() {
                    if p.len() < POOL {
                        p.push(c);
                    }
                }
                Ok(v)
            }
            Err(e) => {
                let reusable = !matches!(
                    e,
                    RpcError::Io(_)
                        | RpcError::Xdr(_)
                        | RpcError::UnexpectedXid
                        | RpcError::NotFullyParsed { .. }
                );
                if reusable {
                    if let Ok(mut p) = self.pool.lock() {
                        p.push(c);
                    }
                }
                Err(rpc_fault(e))
            }
        }
    }

    /// Runs an NFS procedure with retries; `check` turns the procedure's result into a value
    /// or a fault and gets the attempt number (a retried non-idempotent request may find its
    /// own earlier effect).
    fn call<R, T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Client) -> std::result::Result<R, RpcError>,
        mut check: impl FnMut(R, u32) -> std::result::Result<T, Fault>,
    ) -> io::Result<T> {
        retry(|attempt| {
            let r = self.attempt(&mut f)?;
            check(r, attempt)
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
    }

    fn label(&self, parts: &[&str]) -> String {
        let mut s = self.display.clone();
        for p in parts {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    fn lookup(&self, dir: &nfs_fh3, name: &str) -> io::Result<(nfs_fh3, Option<nfs3::fattr3>)> {
        self.call(
            "LOOKUP",
            |c| {
                block_on(c.lookup(&nfs3::LOOKUP3args {
                    what: diropargs3 {
                        dir: dir.clone(),
                        name: filename3(Opaque::borrowed(name.as_bytes())),
                    },
                }))
            },
            |r, _| res(r).map(|ok| (ok.object, opt(ok.obj_attributes))),
        )
    }

    fn getattr(&self, fh: &nfs_fh3) -> io::Result<nfs3::fattr3> {
        self.call(
            "GETATTR",
            |c| block_on(c.getattr(&nfs3::GETATTR3args { object: fh.clone() })),
            |r, _| res(r).map(|ok| ok.obj_attributes),
        )
    }

    /// All entries of a directory with their attributes, bounded.
    fn readdir(&self, dir: &nfs_fh3) -> io::Result<Vec<(String, Option<nfs3::fattr3>)>> {
        let mut out = Vec::new();
        let mut cookie = 0u64;
        let mut verf = nfs3::cookieverf3::default();
        for _ in 0..MAX_READDIR_CALLS {
            let ok = self.call(
                "READDIRPLUS",
                |c| {
                    block_on(c.readdirplus(&nfs3::READDIRPLUS3args {
                        dir: dir.clone(),
                        cookie,
                        cookieverf: verf,
                        dircount: 16 << 10,
                        maxcount: 64 << 10,
                    }))
                },
                |r, _| res(r),
            )?;
            verf = ok.cookieverf;
            let eof = ok.reply.eof;
            let entries = ok.reply.entries.into_inner();
            if entries.is_empty() && !eof {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "READDIRPLUS returned no entries before the end of the directory",
                ));
            }
            for e in entries {
                cookie = e.cookie;
                let name = String::from_utf8_lossy(e.name.0.as_ref()).into_owned();
                if name == "." || name == ".." {
                    continue;
                }
                if out.len() >= MAX_ENTRIES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("directory has more than {MAX_ENTRIES} entries"),
                    ));
                }
                out.push((name, opt(e.name_attributes)));
            }
            if eof {
                return Ok(out);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "directory listing did not end",
        ))
    }

    /// CREATE (GUARDED: fails if the file exists, unless `truncate`, then UNCHECKED with size 0).
    fn create_file(&self, dir: &nfs_fh3, name: &str, truncate: bool) -> io::Result<nfs_fh3> {
        let attrs = || sattr3 {
            // Images hold whole disks: the owner's only.
            mode: Nfs3Option::Some(0o600),
            size: if truncate {
                Nfs3Option::Some(0)
            } else {
                Nfs3Option::None
            },
            ..Default::default()
        };
        let fh = self.call(
            "CREATE",
            |c| {
                block_on(c.create(&nfs3::CREATE3args {
                    where_: diropargs3 {
                        dir: dir.clone(),
                        name: filename3(Opaque::borrowed(name.as_bytes())),
                    },
                    how: if truncate {
                        createhow3::UNCHECKED(attrs())
                    } else {
                        createhow3::GUARDED(attrs())
                    },
                }))
            },
            |r, attempt| match r {
                Nfs3Result::Ok(ok) => Ok(opt(ok.obj)),
                // A retried CREATE may find the file its lost first attempt made.
                Nfs3Result::Err((nfsstat3::NFS3ERR_EXIST, _)) if attempt > 0 => Ok(None),
                Nfs3Result::Err((s, _)) => Err(stat_fault(s)),
            },
        )?;
        match fh {
            Some(fh) => Ok(fh),
            None => self.lookup(dir, name).map(|(fh, _)| fh),
        }
    }

    fn write(
        &self,
        fh: &nfs_fh3,
        data: &[u8],
        offset: u64,
        stable: stable_how,
    ) -> io::Result<(u32, [u8; 8])> {
        self.call(
            "WRITE",
            |c| {
                block_on(c.write(&nfs3::WRITE3args {
                    file: fh.clone(),
                    offset,
                    count: data.len() as u32,
                    stable,
                    data: Opaque::borrowed(data),
                }))
            },
            |r, _| res(r).map(|ok| (ok.count, ok.verf.0)),
        )
    }

    /// Writes all of `data` at `offset` in requests of at most `wtmax` bytes; returns the
    /// server's write verifier.
    fn write_all(
        &self,
        fh: &nfs_fh3,
        data: &[u8],
        offset: u64,
        stable: stable_how,
    ) -> io::Result<[u8; 8]> {
        let mut done = 0usize;
        let mut verf = [0u8; 8];
        while done < data.len() {
            let n = (data.len() - done).min(self.wtmax as usize);
            let (count, v) = self.write(fh, &data[done..done + n], offset + done as u64, stable)?;
            if count == 0 || count as usize > n {
                return Err(io::Error::other(format!(
                    "the server wrote {count} of {n} bytes"
                )));
            }
            verf = v;
            done += count as usize;
        }
        Ok(verf)
    }

    /// One READ of at most `want` bytes (at most rtmax) at `pos`: the bytes the server
    /// returned, at least one.
    fn read_once(&self, fh: &nfs_fh3, pos: u64, want: usize) -> io::Result<Vec<u8>> {
        let (data, eof) = self.call(
            "READ",
            |c| {
                block_on(c.read(&nfs3::READ3args {
                    file: fh.clone(),
                    offset: pos,
                    count: want as u32,
                }))
            },
            |r, _| res(r).map(|ok| (ok.data.0.into_owned(), ok.eof)),
        )?;
        if data.is_empty() || data.len() > want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the server returned {} bytes at offset {pos} (eof={eof}); the file is shorter than expected",
                    data.len()
                ),
            ));
        }
        Ok(data)
    }

    fn read_exact(&self, fh: &nfs_fh3, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let want = (buf.len() - done).min(self.rtmax as usize);
            let data = self.read_once(fh, offset + done as u64, want)?;
            buf[done..done + data.len()].copy_from_slice(&data);
            done += data.len();
        }
        Ok(())
    }

    /// `len` bytes at `offset`, in a buffer of their own: a block the server returns whole
    /// in one READ is handed on as it was decoded, without a copy.
    fn read_vec(&self, fh: &nfs_fh3, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let first = self.read_once(fh, offset, len.min(self.rtmax as usize))?;
        if first.len() == len {
            return Ok(first);
        }
        let mut v = vec![0u8; len];
        v[..first.len()].copy_from_slice(&first);
        self.read_exact(fh, &mut v[first.len()..], offset + first.len() as u64)?;
        Ok(v)
    }

    fn commit(&self, fh: &nfs_fh3) -> io::Result<[u8; 8]> {
        self.call(
            "COMMIT",
            |c| {
                block_on(c.commit(&nfs3::COMMIT3args {
                    file: fh.clone(),
                    offset: 0,
                    count: 0,
                }))
            },
            |r, _| res(r).map(|ok| ok.verf.0),
        )
    }

    fn remove(&self, dir: &nfs_fh3, name: &str, is_dir: bool) -> io::Result<()> {
        let what = if is_dir { "RMDIR" } else { "REMOVE" };
        self.call(
            what,
            |c| {
                let object = diropargs3 {
                    dir: dir.clone(),
                    name: filename3(Opaque::borrowed(name.as_bytes())),
                };
                if is_dir {
                    block_on(c.rmdir(&nfs3::RMDIR3args { object })).map(|r| match r {
                        Nfs3Result::Ok(_) => Ok(()),
                        Nfs3Result::Err((s, _)) => Err(s),
                    })
                } else {
                    block_on(c.remove(&nfs3::REMOVE3args { object })).map(|r| match r {
                        Nfs3Result::Ok(_) => Ok(()),
                        Nfs3Result::Err((s, _)) => Err(s),
                    })
                }
            },
            |r, attempt| match r {
                Ok(()) => Ok(()),
                // A retried removal may find its lost first attempt's effect.
                Err(nfsstat3::NFS3ERR_NOENT) if attempt > 0 => Ok(()),
                Err(s) => Err(stat_fault(s)),
            },
        )
    }
}

fn opt<T: nfs3_client::nfs3_types::xdr_codec::Pack + nfs3_client::nfs3_types::xdr_codec::Unpack>(
    o: Nfs3Option<T>,
) -> Option<T> {
    match o {
        Nfs3Option::Some(v) => Some(v),
        Nfs3Option::None => None,
    }
}

/// A repository on an NFSv3 export.
pub struct NfsBackend {
    nfs: Arc<Nfs>,
    root: nfs_fh3,
    /// Image directory handles already looked up.
    dirs: Mutex<Vec<(String, nfs_fh3)>>,
}

impl std::fmt::Debug for NfsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfsBackend")
            .field("location", &self.nfs.display)
            .finish()
    }
}

fn proc_status_id(key: &str) -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn option_u32(spec: &RemoteSpec, key: &str) -> Result<Option<u32>> {
    match spec.option(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| RepoError::Unsupported {
            spec: spec.display(),
            reason: format!("option {key}={v:?} is not a number"),
        }),
    }
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}

impl NfsBackend {
    /// Connects to the server of `spec`, mounts the export and checks the directory.
    pub fn connect(spec: &RemoteSpec, _ui: &dyn Interaction) -> Result<Self> {
        for key in spec.query().keys() {
            if !matches!(key.as_str(), "uid" | "gid" | "mountport" | "version") {
                return Err(RepoError::Unsupported {
                    spec: spec.display(),
                    reason: format!("unknown option {key:?} (nfs:// knows uid, gid, mountport)"),
                });
            }
        }
        if spec.option("version").is_some_and(|v| v != "3") {
            return Err(RepoError::Unsupported {
                spec: spec.display(),
                reason: "only NFS version 3 is supported".into(),
            });
        }
        if spec.user().is_some() {
            return Err(RepoError::Unsupported {
                spec: spec.display(),
                reason: "NFSv3 has no user names or passwords; give ?uid=N&gid=N for AUTH_SYS"
                    .into(),
            });
        }
        let display = spec.display();
        let fail = |what: &str, e: io::Error| {
            io_err(
                display.clone(),
                io::Error::new(e.kind(), format!("{what}: {e}")),
            )
        };
        let uid = option_u32(spec, "uid")?
            .or_else(|| proc_status_id("Uid:"))
            .unwrap_or(0);
        let gid = option_u32(spec, "gid")?
            .or_else(|| proc_status_id("Gid:"))
            .unwrap_or(0);
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "lifeboat".into());
        let cred = opaque_auth::auth_unix(&auth_unix {
            stamp: std::process::id(),
            machinename: Opaque::owned(machine.into_bytes()),
            uid,
            gid,
            gids: vec![gid],
        });

        // Ports: the address's port is NFS; the rest from the portmapper.
        let mount_port = option_u32(spec, "mountport")?
            .map(|p| {
                u16::try_from(p).map_err(|_| RepoError::Unsupported {
                    spec: display.clone(),
                    reason: format!("mountport {p} is not a port"),
                })
            })
            .transpose()?;
        let mut ports = (mount_port, spec.port());
        if ports.0.is_none() || ports.1.is_none() {
            let pm =
                resolve(spec.host(), PORTMAP_PORT).map_err(|e| fail("resolving the server", e))?;
            let io = sync_io(pm)
                .map_err(|e| fail(&format!("connecting to the portmapper at {pm}"), e))?;
            let mut pmc = PortmapperClient::new(io);
            let mut get = |prog: u32, vers: u32, name: &str| -> Result<u16> {
                let r = poll_once(pmc.getport(prog, vers, IPPROTO_TCP))
                    .map_err(|e| fail("asking the portmapper", e))?;
                r.map_err(|e| {
                    let msg = match e {
                        PortmapError::ProgramUnavailable => format!(
                            "the server runs no {name} service over TCP (is it an NFSv3 server?)"
                        ),
                        other => format!("portmapper: {other}"),
                    };
                    fail("asking the portmapper", io::Error::other(msg))
                })
            };
            if ports.0.is_none() {
                ports.0 = Some(get(
                    nfs3_client::nfs3_types::mount::PROGRAM,
                    nfs3_client::nfs3_types::mount::VERSION,
                    "MOUNT v3",
                )?);
            }
            if ports.1.is_none() {
                ports.1 = Some(get(nfs3::PROGRAM, nfs3::VERSION, "NFS v3")?);
            }
        }
        let (Some(mount_port), Some(nfs_port)) = ports else {
            return Err(fail("ports", io::Error::other("no MOUNT or NFS port")));
        };
        let mount_addr =
            resolve(spec.host(), mount_port).map_err(|e| fail("resolving the server", e))?;
        let nfs_addr =
            resolve(spec.host(), nfs_port).map_err(|e| fail("resolving the server", e))?;

        // The export: the longest exported path that is a prefix of the address's path.
        let io = sync_io(mount_addr).map_err(|e| {
            fail(
                &format!("connecting to the MOUNT service at {mount_addr}"),
                e,
            )
        })?;
        let mut mc = MountClient::new_with_auth(io, cred.clone(), opaque_auth::default());
        let exports: Vec<String> = match block_on(mc.export()) {
            Ok(list) => list
                .into_inner()
                .into_iter()
                .map(|e| String::from_utf8_lossy(e.ex_dir.0.as_ref()).into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        let path = spec.path();
        let mut candidates: Vec<usize> = (1..=path.len())
            .rev()
            .filter(|&n| {
                let p = format!("/{}", path[..n].join("/"));
                exports.is_empty() || exports.iter().any(|e| e.trim_end_matches('/') == p)
            })
            .collect();
        if path.is_empty() {
            candidates.clear();
        }
        if candidates.is_empty() {
            let list = if exports.is_empty() {
                "the server did not list its exports".to_string()
            } else {
                format!("the server exports {}", exports.join(", "))
            };
            return Err(fail(
                "choosing the export",
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no export is a prefix of the path; {list}"),
                ),
            ));
        }
        let mut mounted = None;
        let mut last_err = String::new();
        for n in candidates {
            let p = format!("/{}", path[..n].join("/"));
            let r = poll_once(mc.mnt(dirpath(Opaque::owned(p.clone().into_bytes()))))
                .map_err(|e| fail("MOUNT", e))?;
            match r {
                Ok(ok) => {
                    mounted = Some((
                        n,
                        nfs_fh3 {
                            data: ok.fhandle.0.clone(),
                        },
                    ));
                    break;
                }
                Err(MountError::Denied(stat)) => {
                    last_err = format!("MOUNT {p}: {}", mount_stat(stat));
                }
                Err(MountError::Rpc(e)) => {
                    last_err = format!("MOUNT {p}: {}", rpc_fault(e).into_io())
                }
            }
        }
        let Some((export_len, mut fh)) = mounted else {
            return Err(fail(
                "mounting the export",
                io::Error::new(io::ErrorKind::PermissionDenied, last_err),
            ));
        };

        let probe = Nfs {
            display: display.clone(),
            addr: nfs_addr,
            cred,
            pool: Mutex::new(Vec::new()),
            rtmax: MAX_IO,
            wtmax: MAX_IO,
        };
        let info = probe
            .call(
                "FSINFO",
                |c| block_on(c.fsinfo(&nfs3::FSINFO3args { fsroot: fh.clone() })),
                |r, _| res(r),
            )
            .map_err(|e| fail(&format!("connecting to NFS at {nfs_addr}"), e))?;
        let nfs = Nfs {
            rtmax: info.rtmax.clamp(4096, MAX_IO),
            wtmax: info.wtmax.clamp(4096, MAX_IO),
            ..probe
        };
        for (i, dir) in path[export_len..].iter().enumerate() {
            let (next, attr) = nfs.lookup(&fh, dir).map_err(|e| {
                let shown = path[..export_len + i + 1].join("/");
                fail(
                    &format!("directory /{shown}"),
                    io::Error::new(
                        e.kind(),
                        format!("{e}; the repository directory must exist"),
                    ),
                )
            })?;
            if attr.is_some_and(|a| a.type_ != ftype3::NF3DIR) {
                return Err(fail(
                    dir,
                    io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                ));
            }
            fh = next;
        }
        Ok(NfsBackend {
            nfs: Arc::new(nfs),
            root: fh,
            dirs: Mutex::new(Vec::new()),
        })
    }

    fn err(&self, parts: &[&str], e: io::Error) -> RepoError {
        io_err(self.nfs.label(parts), e)
    }

    fn dir(&self, image: &str) -> Result<nfs_fh3> {
        if let Some((_, fh)) = self
            .dirs
            .lock()
            .ok()
            .and_then(|d| d.iter().find(|(n, _)| n == image).cloned())
        {
            return Ok(fh);
        }
        let (fh, _) = self
            .nfs
            .lookup(&self.root, image)
            .map_err(|e| self.err(&[image], e))?;
        if let Ok(mut d) = self.dirs.lock() {
            if d.len() >= 64 {
                d.remove(0);
            }
            d.push((image.to_string(), fh.clone()));
        }
        Ok(fh)
    }

    fn forget(&self, image: &str) {
        if let Ok(mut d) = self.dirs.lock() {
            d.retain(|(n, _)| n != image);
        }
    }
}

fn mount_stat(s: mountstat3) -> String {
    match s {
        mountstat3::MNT3ERR_ACCES | mountstat3::MNT3ERR_PERM => {
            "the server refused to export it to this client (permission denied)".into()
        }
        mountstat3::MNT3ERR_NOENT => "no such export".into(),
        other => format!("{other:?}"),
    }
}

/// One NFS file open for writing or reading.
struct NfsFile {
    nfs: Arc<Nfs>,
    fh: nfs_fh3,
    label: String,
    /// The write verifier of the first UNSTABLE write, and whether a later one differed.
    verf: Mutex<(Option<[u8; 8]>, bool)>,
}

impl RemoteFile for NfsFile {
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let v = self
            .nfs
            .write_all(&self.fh, data, offset, stable_how::UNSTABLE)?;
        if let Ok(mut g) = self.verf.lock() {
            match g.0 {
                None => g.0 = Some(v),
                Some(first) if first != v => g.1 = true,
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn finish(&self) -> io::Result<()> {
        let committed = self.nfs.commit(&self.fh)?;
        let (first, changed) = *self
            .verf
            .lock()
            .map_err(|_| io::Error::other("verifier lock poisoned"))?;
        if changed || first.is_some_and(|f| f != committed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the server restarted while the file was written (its write verifier changed), so unstable writes may be lost; save again",
            ));
        }
        Ok(())
    }

    fn label(&self) -> String {
        self.label.clone()
    }
}

impl Backend for NfsBackend {
    fn location(&self) -> String {
        self.nfs.display.clone()
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }

    fn list_images(&self) -> Result<Vec<String>> {
        let entries = self.nfs.readdir(&self.root).map_err(|e| self.err(&[], e))?;
        let mut out: Vec<String> = entries
            .into_iter()
            .filter(|(n, a)| {
                !n.starts_with('.') && a.as_ref().is_none_or(|a| a.type_ == ftype3::NF3DIR)
            })
            .map(|(n, _)| n)
            .collect();
        out.sort();
        Ok(out)
    }

    fn list_files(&self, image: &str) -> Result<Vec<(String, u64)>> {
        let dir = self.dir(image)?;
        let entries = self.nfs.readdir(&dir).map_err(|e| self.err(&[image], e))?;
        let mut out: Vec<(String, u64)> = entries
            .into_iter()
            .map(|(n, a)| {
                let size = match a {
                    Some(a) if a.type_ == ftype3::NF3REG => a.size,
                    _ => 0,
                };
                (n, size)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn create_image(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        let r = self.nfs.call(
            "MKDIR",
            |c| {
                block_on(c.mkdir(&nfs3::MKDIR3args {
                    where_: diropargs3 {
                        dir: self.root.clone(),
                        name: filename3(Opaque::borrowed(image.as_bytes())),
                    },
                    attributes: sattr3 {
                        mode: Nfs3Option::Some(0o700),
                        ..Default::default()
                    },
                }))
            },
            |r, attempt| match r {
                Nfs3Result::Ok(_) => Ok(true),
                Nfs3Result::Err((nfsstat3::NFS3ERR_EXIST, _)) if attempt == 0 => Ok(false),
                // A retried MKDIR may find the directory its lost first attempt made.
                Nfs3Result::Err((nfsstat3::NFS3ERR_EXIST, _)) => Ok(true),
                Nfs3Result::Err((s, _)) => Err(stat_fault(s)),
            },
        );
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
        let dir = self.dir(image)?;
        let fh = self
            .nfs
            .create_file(&dir, file, false)
            .map_err(|e| self.err(&[image, file], e))?;
        let chunk = self.nfs.wtmax as usize;
        Ok(Box::new(PipelinedWriter::new(
            NfsFile {
                nfs: Arc::clone(&self.nfs),
                fh,
                label: self.nfs.label(&[image, file]),
                verf: Mutex::new((None, false)),
            },
            chunk,
        )))
    }

    fn open(&self, name: &ImageName, kind: FileKind) -> Result<Box<dyn BackendRead>> {
        self.open_named(name.as_str(), &kind.name())
    }

    fn open_named(&self, image: &str, file: &str) -> Result<Box<dyn BackendRead>> {
        lifeboat_repo::plain_names(image, file)?;
        let dir = self.dir(image)?;
        let (fh, attr) = self
            .nfs
            .lookup(&dir, file)
            .map_err(|e| self.err(&[image, file], e))?;
        let attr = match attr {
            Some(a) => a,
            None => self
                .nfs
                .getattr(&fh)
                .map_err(|e| self.err(&[image, file], e))?,
        };
        if attr.type_ != ftype3::NF3REG {
            return Err(self.err(
                &[image, file],
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        // Sequential reads keep READ_AHEAD bytes in flight while the caller works on what
        // came before: blocks of MAX_IO bytes (several READs when the server's rtmax is
        // smaller), each fetched on a connection of its own.
        let nfs = Arc::clone(&self.nfs);
        let label = self.nfs.label(&[image, file]);
        let block = MAX_IO as usize;
        let depth = (READ_AHEAD / block).clamp(1, POOL);
        let fetch: Arc<Fetch> = Arc::new(move |off, n| {
            nfs.read_vec(&fh, off, n)
                .map(|v| vec![v])
                .map_err(|e| io::Error::new(e.kind(), format!("{label}: {e}")))
        });
        Ok(Box::new(ReadAhead::new(fetch, attr.size, block, depth)))
    }

    fn put_atomic(&self, name: &ImageName, kind: FileKind, data: &[u8]) -> Result<()> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        let dir = self.dir(image)?;
        let tmp = kind.temp_name();
        let fh = self
            .nfs
            .create_file(&dir, &tmp, true)
            .map_err(|e| self.err(&[image, &tmp], e))?;
        self.nfs
            .write_all(&fh, data, 0, stable_how::FILE_SYNC)
            .map_err(|e| self.err(&[image, &tmp], e))?;
        self.nfs
            .call(
                "RENAME",
                |c| {
                    block_on(c.rename(&nfs3::RENAME3args {
                        from: diropargs3 {
                            dir: dir.clone(),
                            name: filename3(Opaque::borrowed(tmp.as_bytes())),
                        },
                        to: diropargs3 {
                            dir: dir.clone(),
                            name: filename3(Opaque::borrowed(file.as_bytes())),
                        },
                    }))
                },
                |r, attempt| match r {
                    Nfs3Result::Ok(_) => Ok(()),
                    // A retried RENAME whose first attempt was done finds no source.
                    Nfs3Result::Err((nfsstat3::NFS3ERR_NOENT, _)) if attempt > 0 => Ok(()),
                    Nfs3Result::Err((s, _)) => Err(stat_fault(s)),
                },
            )
            .map_err(|e| self.err(&[image, file], e))
    }

    fn get(&self, name: &ImageName, kind: FileKind, max: u64) -> Result<Vec<u8>> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        let dir = self.dir(image)?;
        let (fh, attr) = self
            .nfs
            .lookup(&dir, file)
            .map_err(|e| self.err(&[image, file], e))?;
        let size = match attr {
            Some(a) => a.size,
            None => {
                self.nfs
                    .getattr(&fh)
                    .map_err(|e| self.err(&[image, file], e))?
                    .size
            }
        };
        if size > max {
            return Err(self.err(
                &[image, file],
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {max} bytes"),
                ),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.nfs
            .read_exact(&fh, &mut buf, 0)
            .map_err(|e| self.err(&[image, file], e))?;
        Ok(buf)
    }

    fn delete_file(&self, name: &ImageName, kind: FileKind) -> Result<()> {
        let (image, file) = (name.as_str(), kind.name());
        let file = file.as_str();
        let dir = self.dir(image)?;
        self.nfs
            .remove(&dir, file, false)
            .map_err(|e| self.err(&[image, file], e))
    }

    fn remove_image_dir(&self, name: &ImageName) -> Result<()> {
        let image = name.as_str();
        self.forget(image);
        self.nfs
            .remove(&self.root, image, true)
            .map_err(|e| self.err(&[image], e))
    }
}
