//! Helpers of the tests that start real servers on 127.0.0.1 (tests/network.rs,
//! tests/smb_nfs.rs): ports, stopping a server and everything it forked, image states.

use serde_json::Value;
use std::fs;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
