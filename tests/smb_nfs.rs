//! SMB and NFS repositories against real servers on 127.0.0.1, started and stopped here:
//! Samba `smbd` (SMB2/3, NTLM, signed sessions) and nfs-ganesha (NFSv3 over TCP, with
//! rpcbind). For each protocol: savedisk → list → info → check → restoredisk onto a
//! garbage-filled target, verified with e2fsck and every file's SHA-256, then
//! saveparts/restoreparts of one partition over garbage; the server killed in the middle of
//! a save (clear error, image incomplete, `delete --incomplete` removes it); refused
//! credentials or exports; a 1 GiB save with bounded memory (peak RSS printed).
//!
//! nfs-ganesha's port is fixed (2049), so the NFS tests hold a lock and run one at a time.
//! Without the servers the tests skip loudly; with `CI=true` they fail.
//!
//! Run with `--nocapture` to see the measured values.

mod common;

use common::net::*;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Serialises the NFS tests (one nfs-ganesha on port 2049).
static NFS_LOCK: Mutex<()> = Mutex::new(());

// ───────────────────────────── servers ─────────────────────────────

/// nfs-ganesha exporting `dir/export` over NFSv3, with rpcbind if none was running.
struct Nfs {
    dir: PathBuf,
    server: Option<ServerProcess>,
    _rpcbind: Option<ServerProcess>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Nfs {
    fn export(&self) -> PathBuf {
        self.dir.join("export")
    }

    fn url(&self, sub: &str) -> String {
        format!("nfs://127.0.0.1{}{sub}", self.export().display())
    }

    fn start(dir: &Path) -> Option<Nfs> {
        let lock = NFS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if !need(&["ganesha.nfsd", "rpcbind", "rpcinfo", "nfs-ls"]) || !require_root() {
            return None;
        }
        fs::create_dir_all(dir.join("export")).unwrap();
        fs::create_dir_all(dir.join("run")).unwrap();
        let mut rpcbind = None;
        let have_pm = || {
            tool("rpcinfo")
                .args(["-p", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !have_pm() {
            fs::create_dir_all("/run/rpcbind").unwrap();
            let mut cmd = tool("rpcbind");
            cmd.args(["-f", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            rpcbind = ServerProcess::start(
                cmd,
                Duration::from_secs(10),
                Duration::from_millis(200),
                have_pm,
            );
        }
        if port_open(2049) {
            unavailable_in(ci(), "port 2049 is taken by another NFS server");
            return None;
        }
        let w = dir.display();
        let conf = format!(
            "NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = 2049; MNT_Port = 20048; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; }}\nNFS_KRB5 {{ Active_krb5 = false; }}\nEXPORT {{\n  Export_Id = 1; Path = \"{w}/export\"; Pseudo = /export;\n  Access_Type = RW; Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;\n  FSAL {{ Name = VFS; }}\n}}\nLOG {{ Default_Log_Level = EVENT; }}\n"
        );
        fs::write(dir.join("ganesha.conf"), conf).unwrap();
        let mut n = Nfs {
            dir: dir.to_path_buf(),
            server: None,
            _rpcbind: rpcbind,
            _lock: lock,
        };
        if !n.spawn() {
            let log = fs::read_to_string(dir.join("ganesha.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            unavailable_in(
                ci(),
                &format!("nfs-ganesha did not serve its export: {tail}"),
            );
            return None;
        }
        Some(n)
    }

    fn spawn(&mut self) -> bool {
        let d = &self.dir;
        let mut cmd = tool("ganesha.nfsd");
        cmd.arg("-F")
            .arg("-f")
            .arg(d.join("ganesha.conf"))
            .arg("-L")
            .arg(d.join("ganesha.log"))
            .arg("-p")
            .arg(d.join("run/ganesha.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let url = format!("nfs://127.0.0.1{}?version=3", self.export().display());
        let ready = || {
            tool("nfs-ls")
                .arg(&url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        self.server = ServerProcess::start(
            cmd,
            Duration::from_secs(60),
            Duration::from_millis(500),
            ready,
        );
        self.server.is_some()
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
    }
}

// ───────────────────────────── running lifeboat ─────────────────────────────

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Client::new(env, None).run(args)
}

// ───────────────────────────── the scenarios ─────────────────────────────

fn smb_env() -> [(&'static str, &'static str); 1] {
    [("LIFEBOAT_SMB_PASSWORD", SMB_PASSWORD)]
}

// ───────────────────────────── SMB ─────────────────────────────

#[test]
fn smb_save_list_info_check_restore() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("smb-rt");
    let Some(srv) = Smb::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    // The repository is a directory inside the share.
    fs::create_dir(srv.share_dir().join("site-a")).unwrap();
    run_ok(
        Command::new("chown")
            .arg(SMB_USER)
            .arg(srv.share_dir().join("site-a")),
    );
    roundtrip(
        &Client::new(&smb_env(), None),
        &srv.url("/site-a"),
        &work,
        &files_in(srv.share_dir().join("site-a")),
        SMB_PASSWORD,
        21,
    );
    damaged_refused_before_writing(
        &Client::new(&smb_env(), None),
        &srv.url("/site-a"),
        &work,
        &srv.share_dir().join("site-a"),
    );
    // An encrypted image through the share; its files read back from the share's directory.
    let site = srv.share_dir().join("site-a");
    encrypted_roundtrip(
        &Client::new(&smb_env(), None),
        &srv.url("/site-a"),
        &work,
        &|image, file| fs::read(site.join(image).join(file)).unwrap_or_default(),
        23,
    );
}

#[test]
fn smb_password_from_credentials_file_and_refusals() {
    let t = tempdir("smb-auth");
    let Some(srv) = Smb::start(&t.path().join("srv")) else {
        return;
    };
    // Wrong password: a clear refusal, and the password is not shown.
    let r = run_env(
        &["list", "--repo", &srv.url("")],
        &[("LIFEBOAT_SMB_PASSWORD", "not-the-password")],
    );
    assert_ne!(r.code, 0);
    let all = r.all();
    assert!(
        all.contains("user name or password") && all.contains(&format!("127.0.0.1:{}", srv.port)),
        "unclear refusal:\n{all}"
    );
    assert!(!all.contains("not-the-password"), "the password was shown");
    // No password anywhere and no terminal: says where a password may come from.
    let r = run_env(&["list", "--repo", &srv.url("")], &[]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("LIFEBOAT_SMB_PASSWORD"), "{}", r.all());
    // The credentials file (mode 0600) is used.
    let cred = t.path().join("credentials");
    fs::write(
        &cred,
        format!("[smb://{SMB_USER}@127.0.0.1]\npassword = {SMB_PASSWORD}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
    let r = run_env(
        &["list", "--json", "--repo", &srv.url("")],
        &[("LIFEBOAT_CREDENTIALS", s(&cred))],
    )
    .ok();
    assert_eq!(r.stdout.trim(), "[]");
    // A share that does not exist, and a repository directory that does not exist.
    let r = run_env(
        &[
            "list",
            "--repo",
            &format!("smb://{SMB_USER}@127.0.0.1:{}/nosuch", srv.port),
        ],
        &smb_env(),
    );
    assert_ne!(r.code, 0);
    assert!(r.all().contains("share"), "{}", r.all());
    let r = run_env(&["list", "--repo", &srv.url("/missing/dir")], &smb_env());
    assert_ne!(r.code, 0);
    assert!(r.all().contains("must exist"), "{}", r.all());
}

#[test]
fn smb_server_killed_mid_save() {
    let t = tempdir("smb-kill");
    let Some(srv) = Smb::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let repo = srv.url("");
    let share = srv.share_dir();
    let shown = format!("smb://{SMB_USER}@127.0.0.1:{}/{SMB_SHARE}", srv.port);
    let srv = std::cell::RefCell::new(srv);
    killed_mid_save(
        &Client::new(&smb_env(), None),
        &repo,
        &work,
        &files_in(share),
        SMB_PASSWORD,
        &mut || srv.borrow_mut().kill(),
        &mut || srv.borrow_mut().spawn(),
        &shown,
    );
}

#[test]
fn smb_one_gib_save_bounded_memory() {
    let t = tempdir("smb-gib");
    let Some(srv) = Smb::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    big_save(&Client::new(&smb_env(), None), &srv.url(""), &work, "SMB");
    assert_eq!(
        fs::metadata(srv.share_dir().join("gib/data.lbi.000"))
            .map(|m| m.len() > 1000 * MIB)
            .ok(),
        Some(true)
    );
}

// ───────────────────────────── NFS ─────────────────────────────

#[test]
fn nfs_save_list_info_check_restore() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("nfs-rt");
    let Some(srv) = Nfs::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    // The export's path, then a directory inside it.
    fs::create_dir(srv.export().join("images")).unwrap();
    roundtrip(
        &Client::new::<&str, &str>(&[], None),
        &srv.url("/images"),
        &work,
        &files_in(srv.export().join("images")),
        "",
        31,
    );
    damaged_refused_before_writing(
        &Client::new::<&str, &str>(&[], None),
        &srv.url("/images"),
        &work,
        &srv.export().join("images"),
    );
    // An encrypted image through the export; its files read back from the exported directory.
    let images = srv.export().join("images");
    encrypted_roundtrip(
        &Client::new::<&str, &str>(&[], None),
        &srv.url("/images"),
        &work,
        &|image, file| fs::read(images.join(image).join(file)).unwrap_or_default(),
        37,
    );
    let fx = mbr_disk(
        &work,
        "private.img",
        16,
        33,
        &[ext("ext4", 8, TreeSpec::new(34, 1))],
    );
    Client::new::<&str, &str>(&[], None)
        .run(&[
            "savedisk",
            "--repo",
            &srv.url("/images"),
            "--image",
            "private",
            "--disk",
            s(&fx.path),
        ])
        .ok();
    assert_private(&srv.export().join("images/private"));
}

#[test]
fn nfs_refusals() {
    let t = tempdir("nfs-ref");
    let Some(srv) = Nfs::start(&t.path().join("srv")) else {
        return;
    };
    // No export is a prefix of the path: the error lists what the server exports.
    let r = run_env(&["list", "--repo", "nfs://127.0.0.1/not/exported"], &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.all().contains(&srv.export().display().to_string()),
        "the error does not list the exports:\n{}",
        r.all()
    );
    // A directory inside the export that does not exist.
    let r = run_env(&["list", "--repo", &srv.url("/missing")], &[]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("must exist"), "{}", r.all());
    // Options are checked.
    let r = run_env(&["list", "--repo", &format!("{}?uid=x", srv.url(""))], &[]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("uid"), "{}", r.all());
    // A user in the address means nothing to NFSv3.
    let r = run_env(&["list", "--repo", "nfs://someone@127.0.0.1/x"], &[]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("AUTH_SYS"), "{}", r.all());
    // Nothing listening: a clear error naming the server.
    drop(srv);
    let r = run_env(&["list", "--repo", "nfs://127.0.0.1:1/x?mountport=1"], &[]);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("nfs://127.0.0.1:1/x"), "{}", r.all());
}

#[test]
fn nfs_server_killed_mid_save() {
    let t = tempdir("nfs-kill");
    let Some(srv) = Nfs::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let repo = srv.url("");
    let export = srv.export();
    let shown = format!("nfs://127.0.0.1{}", export.display());
    let srv = std::cell::RefCell::new(srv);
    killed_mid_save(
        &Client::new::<&str, &str>(&[], None),
        &repo,
        &work,
        &files_in(export),
        "",
        &mut || srv.borrow_mut().kill(),
        &mut || srv.borrow_mut().spawn(),
        &shown,
    );
}

#[test]
fn nfs_one_gib_save_bounded_memory() {
    let t = tempdir("nfs-gib");
    let Some(srv) = Nfs::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    big_save(
        &Client::new::<&str, &str>(&[], None),
        &srv.url(""),
        &work,
        "NFS",
    );
}

/// SMB encryption: without `?encrypt=required` lifeboat warns that messages are only signed;
/// with it, a server that can encrypt is used (and nothing is warned), and a server set to
/// refuse encryption (`server smb encrypt = off`) is refused before anything is written.
#[test]
fn smb_encryption_required_or_refused() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("smb-enc");
    let Some(mut srv) = Smb::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let fx = mbr_disk(
        &work,
        "src.img",
        16,
        71,
        &[ext("ext4", 8, TreeSpec::new(72, 1))],
    );
    let c = Client::new(&smb_env(), None);
    let plain = srv.url("");
    let required = format!("{plain}?encrypt=required");
    let r = c.run(&[
        "savedisk",
        "--repo",
        &plain,
        "--image",
        "plain",
        "--disk",
        s(&fx.path),
    ]);
    r.ok().says(&["unencrypted", "encrypt=required"]);
    let r = c.run(&[
        "savedisk",
        "--repo",
        &required,
        "--image",
        "sealed",
        "--disk",
        s(&fx.path),
    ]);
    assert!(!r.all().contains("unencrypted"), "{}", r.all());
    r.ok();
    c.run(&["check", "--repo", &required, "--image", "sealed"])
        .ok();
    // The same server, now refusing to encrypt.
    let conf = srv.dir.join("smb.conf");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(
        &conf,
        text.replace("[global]\n", "[global]\n  server smb encrypt = off\n"),
    )
    .unwrap();
    srv.kill();
    assert!(srv.spawn(), "smbd did not restart");
    let r = c.run(&[
        "savedisk",
        "--repo",
        &required,
        "--image",
        "refused",
        "--disk",
        s(&fx.path),
    ]);
    assert_ne!(
        r.code,
        0,
        "a server that will not encrypt was used:\n{}",
        r.all()
    );
    assert!(!srv.share_dir().join("refused").exists(), "{}", r.all());
    c.run(&["list", "--repo", &plain])
        .ok()
        .says(&["unencrypted"]);
    // A password in the address reaches no log at any verbosity (the arguments are logged
    // redacted; the protocol libraries never below debug), and the log file is private.
    let log = work.join("lifeboat.log");
    let with_password = plain.replacen(
        &format!("{SMB_USER}@"),
        &format!("{SMB_USER}:{SMB_PASSWORD}@"),
        1,
    );
    let r = Client::new::<&str, &str>(&[], None).run(&[
        "-vvv",
        "--log-file",
        s(&log),
        "list",
        "--repo",
        &with_password,
    ]);
    let r = r.ok();
    let logged = fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("***"),
        "the redacted address is not logged:\n{logged}"
    );
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("log", &logged),
    ] {
        assert!(
            !text.contains(SMB_PASSWORD),
            "the password is in the {what}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Images hold whole disks: what lifeboat creates on an NFS server is the owner's only
/// (directories 0700, files 0600), whatever the server's umask.
fn assert_private(image_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(image_dir), 0o700, "{}", image_dir.display());
    for e in fs::read_dir(image_dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}
