//! Helpers of the tests that start real servers on 127.0.0.1 (tests/network.rs,
//! tests/smb_nfs.rs): ports, stopping a server and everything it forked, image states.

use super::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Child;
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

/// A free loopback port (see [`free_ports`]).
pub fn free_port() -> u16 {
    free_ports(&[0])
}

/// A base port `p` such that every `p + d` for `d` in `offsets` is free on 127.0.0.1.
///
/// Ports are taken below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up by
/// default), so no outgoing connection of another test can hold one between this check and the
/// server's bind; each port is checked by binding it, and handed out once per test process, so
/// tests running in parallel never get overlapping blocks.
pub fn free_ports(offsets: &[u16]) -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    const LOW: u32 = 20000;
    let ephemeral = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let span = u32::from(offsets.iter().copied().max().unwrap_or(0)) + 1;
    assert!(
        ephemeral > LOW + span,
        "no port range below the ephemeral ports ({ephemeral}) for a block of {span}"
    );
    let room = ephemeral - LOW - span;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..room.min(4000) {
        let base = (LOW + (seed.wrapping_add(i.wrapping_mul(7919))) % room) as u16;
        let ports: Vec<u16> = offsets.iter().map(|d| base + d).collect();
        if ports.iter().any(|p| taken.contains(p)) {
            continue;
        }
        if ports
            .iter()
            .all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            taken.extend(ports);
            return base;
        }
    }
    panic!("no free block of loopback ports for offsets {offsets:?}");
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

// ───────────────────────────── lifeboat against a server ─────────────────────────────

/// Memory limit of the 1 GiB saves and checks.
pub const LIMIT_KIB: u64 = 256 * 1024;

/// How a test runs lifeboat against its server: a clean environment (no SSH agent, no keys,
/// no credentials file, none of the secret variables; optionally a private HOME) plus the
/// variables this server needs.
pub struct Client {
    env: Vec<(String, String)>,
    home: Option<PathBuf>,
}

impl Client {
    pub fn new<K: AsRef<str>, V: AsRef<str>>(env: &[(K, V)], home: Option<&Path>) -> Client {
        Client {
            env: env
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
            home: home.map(Path::to_path_buf),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).stdin(Stdio::null());
        for k in [
            "SSH_AUTH_SOCK",
            "LIFEBOAT_SSH_KEY",
            "LIFEBOAT_SSH_PASSWORD",
            "LIFEBOAT_SSH_PASSPHRASE",
            "LIFEBOAT_KNOWN_HOSTS",
            "LIFEBOAT_SMB_PASSWORD",
            "LIFEBOAT_S3_ACCESS_KEY_ID",
            "LIFEBOAT_S3_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            c.env_remove(k);
        }
        if let Some(home) = &self.home {
            fs::create_dir_all(home).unwrap();
            c.env("HOME", home);
        }
        c.env("LIFEBOAT_CREDENTIALS", "/nonexistent/lifeboat-credentials");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("spawn lifeboat");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `list --json`.
    pub fn list(&self, repo: &str) -> Vec<Value> {
        let r = self.run(&["list", "--json", "--repo", repo]).ok();
        match serde_json::from_str(r.stdout.trim()).expect("list --json prints one JSON array") {
            Value::Array(v) => v,
            other => panic!("list --json: not an array: {other}"),
        }
    }

    /// Runs lifeboat; (exit code, peak RSS in KiB, stderr).
    pub fn run_measured(&self, args: &[&str], scratch: &Path) -> (i32, u64, String) {
        run_peak_rss(self.command(args), scratch)
    }
}

/// savedisk → list (complete) → info → check → a second save of the name refused →
/// restoredisk onto garbage → identical → saveparts/restoreparts → delete removes every file.
/// `stored(image)` lists what the server holds for an image; `secret` must never be printed.
pub fn roundtrip(
    c: &Client,
    repo: &str,
    d: &Path,
    stored: &dyn Fn(&str) -> Vec<String>,
    secret: &str,
    seed: u64,
) {
    let fx = mbr_disk(
        d,
        "src.img",
        72,
        seed,
        &[
            bootable(ext("ext4", 40, TreeSpec::new(seed * 10 + 1, 6))),
            ext("ext2", 16, TreeSpec::new(seed * 10 + 2, 2)),
        ],
    );
    c.run(&[
        "savedisk",
        "--repo",
        repo,
        "--image",
        "web01",
        "--disk",
        s(&fx.path),
    ])
    .ok();
    let on_server = stored("web01");
    assert!(
        on_server.iter().any(|f| f == "manifest.json")
            && on_server.iter().any(|f| f == "data.lbi.000"),
        "the image is not on the server: {on_server:?}"
    );
    assert!(
        !on_server.iter().any(|f| f.ends_with(".tmp")),
        "a temporary file was left behind: {on_server:?}"
    );
    let entries = c.list(repo);
    assert_eq!(
        status_of(&entries, "web01").as_deref(),
        Some("complete"),
        "{entries:#?}"
    );
    let r = c
        .run(&["info", "--json", "--repo", repo, "--image", "web01"])
        .ok();
    let m: Value = serde_json::from_str(r.stdout.trim()).expect("info --json is JSON");
    assert_eq!(m["disks"][0]["size"], fx.size);
    assert_eq!(m["disks"][0]["table"]["kind"], "mbr");
    assert_eq!(
        m["disks"][0]["table"]["partitions"][0]["filesystem"], "ext4",
        "{m:#}"
    );
    assert!(
        secret.is_empty() || !r.stdout.contains(secret),
        "the secret leaked into info"
    );
    c.run(&["check", "--repo", repo, "--image", "web01"]).ok();

    // A second save of the same name is refused.
    let r = c.run(&[
        "savedisk",
        "--repo",
        repo,
        "--image",
        "web01",
        "--disk",
        s(&fx.path),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("already exists"), "{}", r.all());

    // Restored with the spool in memory (1 MiB) and in a directory (the rest): the image is
    // read from the server once, as the read plan says.
    let target = d.join("dst.img");
    garbage_file(&target, fx.size, seed + 99);
    let spool = d.join("spool");
    fs::create_dir_all(&spool).unwrap();
    let r = c
        .run(&[
            "restoredisk",
            "--json",
            "--repo",
            repo,
            "--image",
            "web01",
            "--yes",
            "--disk",
            s(&target),
            "--spool",
            s(&spool),
            "--spool-memory",
            "1M",
        ])
        .ok();
    let plan = read_plan(&r.stdout);
    assert_eq!(plan["mode"], "once", "{plan}");
    assert_eq!(plan["read_bytes"], plan["image_bytes"], "{plan}");
    assert_eq!(plan["spool_memory"], MIB, "{plan}");
    assert_eq!(
        fs::read_dir(&spool).unwrap().count(),
        0,
        "the spool left files behind"
    );
    let scratch = d.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    verify_restored(&fx, &target, &scratch);
    parts_roundtrip(
        &|args| {
            c.run(args).ok();
        },
        repo,
        &fx,
        2,
        &target,
        &scratch,
    );

    // delete removes every object / file of the image.
    c.run(&["delete", "--repo", repo, "--image", "web01", "--yes"])
        .ok();
    assert!(
        stored("web01").is_empty(),
        "delete left {:?}",
        stored("web01")
    );
    assert!(status_of(&c.list(repo), "web01").is_none());
}

/// The `read_plan` event among the `--json` events of a restore.
pub fn read_plan(stdout: &str) -> Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "read_plan")
        .unwrap_or_else(|| panic!("no read_plan event in:\n{stdout}"))
}

/// A chunk of an image damaged on the server (one byte flipped in `volume`, the server's
/// file `<image>/data.lbi.000` seen here) is refused before the first write, with the spool
/// in memory and in a directory: the target is unchanged.
pub fn damaged_refused_before_writing(c: &Client, repo: &str, d: &Path, server_dir: &Path) {
    let fx = mbr_disk(d, "dmg-src.img", 40, 61, &[raw(32, "83", 62)]);
    c.run(&[
        "savedisk",
        "--repo",
        repo,
        "--image",
        "dmg",
        "--disk",
        s(&fx.path),
    ])
    .ok();
    let vol = server_dir.join("dmg/data.lbi.000");
    let len = fs::metadata(&vol).unwrap().len();
    // Three quarters in: inside a chunk payload, after the 1 MiB memory spool.
    let at = len * 3 / 4;
    let b = read_range(&vol, at, 1);
    write_at(&vol, at, &[b[0] ^ 0x5a]);
    let target = d.join("dmg-dst.img");
    garbage_file(&target, fx.size, 63);
    let before = sha_all(&target);
    let spool = d.join("dmg-spool");
    fs::create_dir_all(&spool).unwrap();
    for extra in [&["--spool-memory", "1M", "--spool", s(&spool)][..], &[][..]] {
        let mut args = vec![
            "restoredisk",
            "--repo",
            repo,
            "--image",
            "dmg",
            "--yes",
            "--disk",
            s(&target),
        ];
        args.extend_from_slice(extra);
        let r = c.run(&args);
        assert_ne!(r.code, 0, "a damaged image was restored ({extra:?})");
        assert!(
            r.all().contains("data.lbi.000"),
            "the error does not name the damaged file ({extra:?}): {}",
            r.all()
        );
        assert_eq!(
            sha_all(&target),
            before,
            "the target was written ({extra:?})"
        );
    }
    c.run(&["delete", "--repo", repo, "--image", "dmg", "--yes"])
        .ok();
}

/// The server dies during a save: lifeboat fails with a clear error naming the server
/// (`shown`) and the file; after a restart the image is listed incomplete and
/// `delete --incomplete` removes it and every file of it.
#[allow(clippy::too_many_arguments)]
pub fn killed_mid_save(
    c: &Client,
    repo: &str,
    d: &Path,
    stored: &dyn Fn(&str) -> Vec<String>,
    secret: &str,
    kill: &mut dyn FnMut(),
    restart: &mut dyn FnMut() -> bool,
    shown: &str,
) {
    let fx = mbr_disk(d, "big.img", 400, 77, &[raw(380, "83", 78)]);
    let mut cmd = c.command(&[
        "savedisk",
        "--json",
        "--level",
        "19",
        "--repo",
        repo,
        "--image",
        "half",
        "--disk",
        s(&fx.path),
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = 0u64;
    loop {
        assert!(
            Instant::now() < deadline,
            "savedisk made no progress in 120 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "savedisk finished before the server could be stopped"
        );
        let mut total = 0u64;
        while let Ok(v) = rx.try_recv() {
            if v["event"] == "progress" {
                done = v["bytes_done"].as_u64().unwrap_or(0);
                total = v["bytes_total"].as_u64().unwrap_or(0);
            }
        }
        // Well into the save: more than one multipart part / many write requests out.
        if done > 40 * MIB && (total == 0 || done < total) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill();
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("savedisk did not end within 180 s of the server's death");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let all = format!("{stdout}\n{stderr}");
    eprintln!(
        "save after the server's death ended in {:.1} s with {status}; message:\n{}",
        started.elapsed().as_secs_f64(),
        stderr.trim()
    );
    assert!(!status.success(), "savedisk succeeded without its server");
    assert!(
        all.contains(shown),
        "the error does not name the server ({shown}):\n{all}"
    );
    assert!(
        all.contains("half/data.lbi.000"),
        "the error does not name the file:\n{all}"
    );
    assert!(
        secret.is_empty() || !all.contains(secret),
        "the secret leaked into the output"
    );

    assert!(restart(), "the server did not come back");
    let entries = c.list(repo);
    assert_eq!(
        status_of(&entries, "half").as_deref(),
        Some("incomplete"),
        "{entries:#?}"
    );
    c.run(&["delete", "--repo", repo, "--incomplete", "--yes"])
        .ok();
    assert!(
        status_of(&c.list(repo), "half").is_none(),
        "delete --incomplete left the image"
    );
    assert!(
        stored("half").is_empty(),
        "delete --incomplete left {:?}",
        stored("half")
    );
}

/// A 1 GiB save (incompressible data) with bounded memory, then `check` (which reads it all
/// back); returns the peak RSS of the save in KiB.
pub fn big_save(c: &Client, repo: &str, d: &Path, what: &str) -> u64 {
    let fx = mbr_disk(d, "gib.img", 1040, 91, &[raw(1024, "83", 92)]);
    let started = Instant::now();
    let (code, rss, err) = c.run_measured(
        &[
            "savedisk",
            "--repo",
            repo,
            "--image",
            "gib",
            "--disk",
            s(&fx.path),
        ],
        d,
    );
    let secs = started.elapsed().as_secs_f64();
    let save_rss = rss;
    assert_eq!(code, 0, "savedisk of 1 GiB failed:\n{err}");
    eprintln!(
        "{what}: savedisk of 1 GiB (incompressible): peak RSS {:.1} MiB, {secs:.1} s, {:.0} MiB/s",
        rss as f64 / 1024.0,
        1024.0 / secs
    );
    assert!(rss > 1024, "implausible RSS {rss} KiB: measurement broken");
    assert!(
        rss < LIMIT_KIB,
        "{what}: savedisk of 1 GiB peaked at {:.1} MiB of RSS (limit 256 MiB)",
        rss as f64 / 1024.0
    );
    let started = Instant::now();
    let (code, rss, err) = c.run_measured(&["check", "--repo", repo, "--image", "gib"], d);
    assert_eq!(code, 0, "check of 1 GiB failed:\n{err}");
    eprintln!(
        "{what}: check of 1 GiB (reads it all): peak RSS {:.1} MiB, {:.1} s",
        rss as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    assert!(rss < LIMIT_KIB, "{what}: check peaked at {} KiB", rss);
    // Restored with a 64 MiB memory spool and the rest in a spool directory: memory stays
    // bounded, the image is read once, the disk is restored.
    let target = d.join("gib-dst.img");
    sparse_file(&target, fx.size);
    let spool = d.join("gib-spool");
    fs::create_dir_all(&spool).unwrap();
    let started = Instant::now();
    let (code, rss, err) = c.run_measured(
        &[
            "restoredisk",
            "--yes",
            "--repo",
            repo,
            "--image",
            "gib",
            "--disk",
            s(&target),
            "--spool",
            s(&spool),
            "--spool-memory",
            "64M",
        ],
        d,
    );
    assert_eq!(code, 0, "restoredisk of 1 GiB failed:\n{err}");
    eprintln!(
        "{what}: restoredisk of 1 GiB (64 MiB memory spool + spool directory): peak RSS {:.1} MiB, {:.1} s",
        rss as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    assert!(rss < LIMIT_KIB, "{what}: restoredisk peaked at {} KiB", rss);
    assert_eq!(
        sha_all(&target),
        sha_all(&fx.path),
        "{what}: restored disk differs"
    );
    assert_eq!(
        fs::read_dir(&spool).unwrap().count(),
        0,
        "the spool left files behind"
    );
    let _ = fs::remove_file(&target);
    save_rss
}

/// `stored` for a server whose files are visible here: the names in `dir/<image>` (none when
/// that directory does not exist).
pub fn files_in(dir: PathBuf) -> impl Fn(&str) -> Vec<String> {
    move |image| {
        fs::read_dir(dir.join(image))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An encrypted image (`--encrypt`, passphrase from `LIFEBOAT_PASSPHRASE`) through a network
/// repository: saved, nothing of the disk's layout or data in clear on the server (the source
/// path, the raw partition's bytes), `check`ed, a wrong passphrase refused with the target
/// unchanged, restored onto garbage and verified.
pub fn encrypted_roundtrip(
    c: &Client,
    repo: &str,
    d: &Path,
    stored_file: &dyn Fn(&str, &str) -> Vec<u8>,
    seed: u64,
) {
    let started = Instant::now();
    let fx = mbr_disk(
        d,
        "secret-source.img",
        40,
        seed,
        &[
            bootable(ext("ext4", 24, TreeSpec::new(seed * 10 + 1, 2))),
            raw(8, "da", seed * 10 + 2),
        ],
    );
    let with = |pass: &str| {
        let mut env = c.env.clone();
        env.push(("LIFEBOAT_PASSPHRASE".into(), pass.into()));
        Client {
            env,
            home: c.home.clone(),
        }
    };
    let right = with("network passphrase");
    right
        .run(&[
            "savedisk",
            "--repo",
            repo,
            "--image",
            "sealed",
            "--encrypt",
            "--disk",
            s(&fx.path),
        ])
        .ok();
    let raw_part = fx.part(2);
    let raw_bytes = read_range(&fx.path, raw_part.start + MIB, 64);
    for f in ["data.lbi.000", "manifest.json"] {
        let b = stored_file("sealed", f);
        assert!(!b.is_empty(), "{f} is not on the server");
        for (what, needle) in [
            ("source path", b"secret-source.img".as_slice()),
            ("raw data", raw_bytes.as_slice()),
        ] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{f} on the server holds the {what} in clear"
            );
        }
    }
    right
        .run(&["check", "--repo", repo, "--image", "sealed"])
        .ok();
    let target = d.join("sealed-target.img");
    garbage_file(&target, fx.size, seed + 3);
    let before = sha_all(&target);
    let restore = |cl: &Client| {
        cl.run(&[
            "restoredisk",
            "--repo",
            repo,
            "--image",
            "sealed",
            "--yes",
            "--disk",
            s(&target),
        ])
    };
    restore(&with("not the passphrase"))
        .code(3)
        .says(&["wrong passphrase"]);
    assert_eq!(sha_all(&target), before, "a wrong passphrase wrote");
    restore(&right).ok();
    let scratch = d.join("sealed-scratch");
    fs::create_dir_all(&scratch).unwrap();
    verify_restored(&fx, &target, &scratch);
    eprintln!(
        "encrypted round trip: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
