//! Helpers of the tests that start real servers on 127.0.0.1 (tests/network.rs,
//! tests/smb_nfs.rs): ports, stopping a server and everything it forked, image states.

use super::{
    ci, fill_random, need, require_root, run_ok, s, tool, unavailable_in, verify_part, Fixture,
};
use serde_json::Value;
use std::fs;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SMB_USER: &str = "lbtest";
pub const SMB_PASSWORD: &str = "lbtest-pass";
pub const SMB_SHARE: &str = "images";

/// Serialises the creation of the SMB user.
static USER_LOCK: Mutex<()> = Mutex::new(());

pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every descendant of `pid` (from /proc), children first.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …: the comm may hold spaces, so split after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for (c, pp) in &parent_of {
            if *pp == p && !out.contains(c) {
                out.push(*c);
                todo.push(*c);
            }
        }
    }
    out
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops a server process we started and everything it forked: SIGTERM, a bounded wait,
/// then SIGKILL.
pub fn stop_child(child: &mut Child, hard: bool) {
    let pid = child.id();
    let kids = descendants(pid);
    if hard {
        signal(pid, "-KILL");
        for k in &kids {
            signal(*k, "-KILL");
        }
    } else {
        signal(pid, "-TERM");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    for k in kids {
        signal(k, "-KILL");
    }
}

pub fn status_of(entries: &[Value], image: &str) -> Option<String> {
    entries.iter().find(|e| e["image"] == image).map(|e| {
        match e["complete"].as_bool() {
            Some(true) => "complete",
            Some(false) => "incomplete",
            None => "?",
        }
        .to_string()
    })
}

/// A server process a test started: it and everything it forked are stopped when this is
/// dropped (SIGTERM, a bounded wait, SIGKILL), or at once with [`ServerProcess::kill`].
pub struct ServerProcess(Option<Child>);

impl ServerProcess {
    /// Starts `cmd` and polls `ready` every `poll` for at most `within`; `None` (the process
    /// stopped) when it exits first or is not ready in time.
    pub fn start(
        mut cmd: Command,
        within: Duration,
        poll: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Option<ServerProcess> {
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ready() {
                return Some(ServerProcess(Some(child)));
            }
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            std::thread::sleep(poll);
        }
        stop_child(&mut child, false);
        None
    }

    /// Kills the process and its children at once (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            stop_child(&mut c, true);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            stop_child(&mut c, false);
        }
    }
}

/// A private Samba server with one writable share.
pub struct Smb {
    pub dir: PathBuf,
    pub port: u16,
    server: Option<ServerProcess>,
}

impl Smb {
    pub fn share_dir(&self) -> PathBuf {
        self.dir.join("share")
    }

    pub fn url(&self, path: &str) -> String {
        format!("smb://{SMB_USER}@127.0.0.1:{}/{SMB_SHARE}{path}", self.port)
    }

    /// Starts smbd in `dir` (None when it cannot run and the test is to be skipped).
    pub fn start(dir: &Path) -> Option<Smb> {
        if !need(&["smbd", "smbpasswd", "useradd"]) || !require_root() {
            return None;
        }
        {
            let _g = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let known = Command::new("id")
                .arg(SMB_USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !known {
                run_ok(tool("useradd").args(["-M", "-s", "/usr/sbin/nologin", SMB_USER]));
            }
        }
        for sub in ["share", "private", "lock", "state", "cache", "run", "log"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        run_ok(Command::new("chown").arg(SMB_USER).arg(dir.join("share")));
        let port = free_port();
        let w = dir.display();
        let conf = format!(
            "[global]\n  server role = standalone server\n  workgroup = WORKGROUP\n  interfaces = 127.0.0.1\n  bind interfaces only = yes\n  smb ports = {port}\n  server min protocol = SMB2_10\n  disable netbios = yes\n  private dir = {w}/private\n  lock directory = {w}/lock\n  state directory = {w}/state\n  cache directory = {w}/cache\n  pid directory = {w}/run\n  ncalrpc dir = {w}/lock/ncalrpc\n  log file = {w}/log/smbd.log\n  passdb backend = tdbsam:{w}/private/passdb.tdb\n  load printers = no\n  printing = bsd\n  printcap name = /dev/null\n  disable spoolss = yes\n[{SMB_SHARE}]\n  path = {w}/share\n  read only = no\n  valid users = {SMB_USER}\n"
        );
        fs::write(dir.join("smb.conf"), conf).unwrap();
        let mut c = tool("smbpasswd");
        c.arg("-c")
            .arg(dir.join("smb.conf"))
            .args(["-s", "-a", SMB_USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut p = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = p.stdin.take().unwrap();
            writeln!(i, "{SMB_PASSWORD}\n{SMB_PASSWORD}").unwrap();
        }
        assert!(p.wait().unwrap().success(), "smbpasswd failed");
        let mut s = Smb {
            dir: dir.to_path_buf(),
            port,
            server: None,
        };
        if !s.spawn() {
            let log = fs::read_to_string(dir.join("log/stdout")).unwrap_or_default();
            unavailable_in(ci(), &format!("smbd did not start on port {port}: {log}"));
            return None;
        }
        Some(s)
    }

    /// Starts smbd (again) with the same configuration; true once it answers.
    pub fn spawn(&mut self) -> bool {
        let out = fs::File::create(self.dir.join("log/stdout")).unwrap();
        // smbd signals its whole process group when it stops: give it its own group so
        // that stopping it never reaches the test runner.
        let mut cmd = tool("smbd");
        cmd.process_group(0)
            .args(["--foreground", "--no-process-group"])
            .arg(format!(
                "--configfile={}",
                self.dir.join("smb.conf").display()
            ))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        self.server = ServerProcess::start(
            cmd,
            Duration::from_secs(30),
            Duration::from_millis(200),
            || port_open(self.port),
        );
        self.server.is_some()
    }

    /// Kills smbd and its per-connection processes at once (a crash).
    pub fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
    }
}

/// saveparts of partition `n` of `fx` into the image `parts`, garbage over that partition of
/// `target` (which already holds a restore of `fx`), restoreparts, and the partition is
/// verified again (e2fsck, every file). `lifeboat` runs one command and asserts success.
pub fn parts_roundtrip(
    lifeboat: &dyn Fn(&[&str]),
    repo: &str,
    fx: &Fixture,
    n: u32,
    target: &Path,
    scratch: &Path,
) {
    let p = fx.part(n).clone();
    let n = n.to_string();
    lifeboat(&[
        "saveparts",
        "--repo",
        repo,
        "--image",
        "parts",
        "--disk",
        s(&fx.path),
        "--part",
        &n,
    ]);
    fill_random(target, p.start, p.size, p.start ^ 0x5eed);
    lifeboat(&[
        "restoreparts",
        "--repo",
        repo,
        "--image",
        "parts",
        "--disk",
        s(target),
        "--part",
        &n,
        "--yes",
    ]);
    verify_part(target, p.start, &p, scratch, "restoreparts");
}
