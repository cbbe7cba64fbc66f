//! SFTP and S3 repositories against real servers on 127.0.0.1, started and stopped here:
//! OpenSSH `sshd` (internal-sftp, its own host key, known_hosts and client keys) and
//! SeaweedFS (`weed mini`, S3 API with an access key). For each protocol: savedisk → list →
//! info → check → restoredisk onto a garbage-filled target, verified with e2fsck and every
//! file's SHA-256, then saveparts/restoreparts of one partition over garbage; the server
//! killed in the middle of a save (clear error naming server and file, image incomplete after
//! the restart, `delete --incomplete` removes it); refused credentials; unknown and changed
//! host keys refused; a 1 GiB save with bounded memory (peak RSS printed).
//!
//! Without the servers the tests skip loudly; with `CI=true` they fail.
//! Run with `--nocapture` to see the measured values.

mod common;

use common::net::*;
use common::*;
use std::fs;

use std::path::{Path, PathBuf};
use std::time::Duration;

const S3_AK: &str = "lbtestaccess";
const S3_SK: &str = "lbtestsecret0123456789";
const S3_BUCKET: &str = "images";

// ───────────────────────────── servers ─────────────────────────────

fn keygen(path: &Path, passphrase: &str) {
    run_ok(
        tool("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
            .arg(path),
    );
}

/// A private OpenSSH server with SFTP, key authentication (and optionally passwords).
struct Sftp {
    dir: PathBuf,
    port: u16,
    server: Option<ServerProcess>,
}

impl Sftp {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("client_ed25519")
    }
    fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    fn url(&self, path: &str) -> String {
        format!(
            "sftp://root@127.0.0.1:{}{}{path}",
            self.port,
            self.data().display()
        )
    }
    /// What the error messages must name.
    fn shown(&self) -> String {
        format!("sftp://root@127.0.0.1:{}", self.port)
    }
    /// Environment of a lifeboat run that authenticates with the client key.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LIFEBOAT_SSH_KEY".into(), s(&self.key()).into()),
            ("LIFEBOAT_KNOWN_HOSTS".into(), s(&self.known_hosts()).into()),
        ]
    }

    fn start(dir: &Path, passwords: bool) -> Option<Sftp> {
        if !need(&["sshd", "ssh-keygen"]) || !require_root() {
            return None;
        }
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        keygen(&dir.join("host_ed25519"), "");
        keygen(&dir.join("client_ed25519"), "");
        fs::copy(dir.join("client_ed25519.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        let w = dir.display();
        let pw = if passwords { "yes" } else { "no" };
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {w}/host_ed25519\nPidFile {w}/sshd.pid\nAuthorizedKeysFile {w}/authorized_keys\nPasswordAuthentication {pw}\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\nStrictModes no\nUsePAM no\nMaxStartups 50\nSubsystem sftp internal-sftp\n"
            ),
        )
        .unwrap();
        let host_pub = fs::read_to_string(dir.join("host_ed25519.pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (t, k) = (parts.next().unwrap(), parts.next().unwrap());
        fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {t} {k}\n"),
        )
        .unwrap();
        let mut s = Sftp {
            dir: dir.to_path_buf(),
            port,
            server: None,
        };
        if !s.spawn() {
            let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            unavailable_in(ci(), &format!("sshd did not start on port {port}: {log}"));
            return None;
        }
        Some(s)
    }

    fn spawn(&mut self) -> bool {
        let log = fs::File::create(self.dir.join("sshd.log")).unwrap();
        let mut cmd = tool("sshd");
        cmd.args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.server = ServerProcess::start(
            cmd,
            Duration::from_secs(30),
            Duration::from_millis(100),
            || port_open(self.port),
        );
        self.server.is_some()
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
    }
}

/// SeaweedFS with the S3 API and one bucket.
struct S3 {
    dir: PathBuf,
    port: u16,
    server: Option<ServerProcess>,
}

impl S3 {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn url(&self, prefix: &str) -> String {
        format!("s3://{S3_BUCKET}{prefix}?endpoint={}", self.endpoint())
    }
    fn shown(&self) -> String {
        format!("s3://{S3_BUCKET}")
    }
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LIFEBOAT_S3_ACCESS_KEY_ID".into(), S3_AK.into()),
            ("LIFEBOAT_S3_SECRET_ACCESS_KEY".into(), S3_SK.into()),
        ]
    }

    fn start(dir: &Path) -> Option<S3> {
        if !need(&["weed", "curl"]) {
            return None;
        }
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::write(
            dir.join("s3.json"),
            format!(
                r#"{{"identities":[{{"name":"lbtest","credentials":[{{"accessKey":"{S3_AK}","secretKey":"{S3_SK}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        // weed mini takes the S3 port and derives its others (+1..+7, gRPC at +10000…). A
        // port can still be taken between the check and weed's bind: then another block.
        let mut s = S3 {
            dir: dir.to_path_buf(),
            port: 0,
            server: None,
        };
        let offsets: Vec<u16> = (0..=7).chain(10000..=10003).collect();
        let mut started = false;
        let mut tail = String::new();
        for _ in 0..3 {
            s.port = free_ports(&offsets);
            if s.spawn() {
                started = true;
                break;
            }
            let log = fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
            tail = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            if !tail.contains("Port allocation failed") && !tail.contains("address already in use")
            {
                break;
            }
        }
        if !started {
            unavailable_in(
                ci(),
                &format!("SeaweedFS did not start on port {}: {tail}", s.port),
            );
            return None;
        }
        // The bucket (lifeboat uses buckets, it does not create them).
        let mut ok = false;
        for _ in 0..40 {
            let out = s.curl(&["-X", "PUT", &format!("{}/{S3_BUCKET}", s.endpoint())]);
            if out.0 == "200"
                || out.1.contains("BucketAlreadyExists")
                || out.1.contains("BucketAlreadyOwnedByYou")
            {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(ok, "cannot create the bucket");
        Some(s)
    }

    /// A signed request with curl: (status, body).
    fn curl(&self, args: &[&str]) -> (String, String) {
        let out = tool("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!("{S3_AK}:{S3_SK}"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().to_string(), body.to_string())
    }

    /// Keys under `prefix` in the bucket.
    fn keys(&self, prefix: &str) -> Vec<String> {
        // The prefix is percent-encoded as SigV4 canonicalises it (curl signs the query as
        // given).
        let prefix = prefix.replace('/', "%2F");
        let (code, body) = self.curl(&[&format!(
            "{}/{S3_BUCKET}?list-type=2&prefix={prefix}",
            self.endpoint()
        )]);
        assert_eq!(code, "200", "{body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|p| p.split_once("</Key>").map(|x| x.0.to_string()))
            .collect()
    }

    /// An object's bytes, fetched with a signed GET (empty when it is not there).
    fn object(&self, key: &str) -> Vec<u8> {
        let out = tool("curl")
            .args(["-s", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{S3_AK}:{S3_SK}"))
            .arg(format!("{}/{S3_BUCKET}/{key}", self.endpoint()))
            .output()
            .unwrap();
        if out.status.success() {
            out.stdout
        } else {
            Vec::new()
        }
    }

    /// Every byte the server keeps in its data directory (volumes, filer metadata).
    fn stored_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, out: &mut Vec<u8>) {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&p, out),
                    Ok(t) if t.is_file() => out.extend(fs::read(&p).unwrap_or_default()),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.join("data"), &mut out);
        out
    }

    fn spawn(&mut self) -> bool {
        let p = self.port;
        let log = fs::File::create(self.dir.join("weed.log")).unwrap();
        // weed writes logs and scratch directories under $TMPDIR: keep them in ours.
        let tmp = self.dir.join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        let mut cmd = tool("weed");
        cmd.env("TMPDIR", &tmp)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p + 1))
            .arg(format!("-volume.port={}", p + 2))
            .arg(format!("-filer.port={}", p + 3))
            .arg(format!("-webdav.port={}", p + 4))
            .arg(format!("-admin.port={}", p + 5))
            .arg(format!("-s3.port.iceberg={}", p + 6))
            .arg(format!("-s3.port.lance={}", p + 7))
            .arg(format!("-s3.port={p}"))
            .arg(format!("-s3.config={}", self.dir.join("s3.json").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let ready = || {
            port_open(p) && {
                let (code, _) = self.curl(&[&format!("{}/", self.endpoint())]);
                code.starts_with('2') || code.starts_with('4')
            }
        };
        let server = ServerProcess::start(
            cmd,
            Duration::from_secs(90),
            Duration::from_millis(300),
            ready,
        );
        self.server = server;
        self.server.is_some()
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
        self.remove_sockets();
    }

    /// weed puts its Unix sockets in /tmp whatever $TMPDIR says
    /// (`/tmp/seaweedfs-<service>-<port>.sock`): remove those of our ports once it stopped.
    fn remove_sockets(&self) {
        let ours: Vec<String> = (0..=7)
            .chain(10000..=10007)
            .map(|o| format!("-{}.sock", u32::from(self.port) + o))
            .collect();
        let Ok(dir) = fs::read_dir("/tmp") else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("seaweedfs-") && ours.iter().any(|o| name.ends_with(o.as_str())) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        // Stop the server first (SIGTERM, bounded wait), then its sockets.
        drop(self.server.take());
        self.remove_sockets();
    }
}

// ───────────────────────────── running lifeboat ─────────────────────────────

fn run_env(args: &[&str], env: &[(String, String)], home: &Path) -> Run {
    Client::new(env, Some(home)).run(args)
}

// ───────────────────────────── the scenarios ─────────────────────────────

fn s3_files<'a>(srv: &'a S3, prefix: &'static str) -> impl Fn(&str) -> Vec<String> + 'a {
    move |image| {
        let p = format!("{prefix}{image}/");
        srv.keys(&p)
            .into_iter()
            .filter_map(|k| k.strip_prefix(&p).map(str::to_string))
            .collect()
    }
}

// ───────────────────────────── SFTP ─────────────────────────────

#[test]
fn sftp_save_list_info_check_restore() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("sftp-rt");
    let Some(srv) = Sftp::start(&t.path().join("srv"), false) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    roundtrip(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url(""),
        &work,
        &files_in(srv.data()),
        "",
        41,
    );
    damaged_refused_before_writing(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url(""),
        &work,
        &srv.data(),
    );
    // Images hold whole disks: the image directory is 0700 and its files 0600 on the
    // server, whatever sshd's umask allows.
    let fx = mbr_disk(
        &work,
        "private.img",
        16,
        43,
        &[ext("ext4", 8, TreeSpec::new(44, 1))],
    );
    Client::new(&srv.env(), Some(&work.join("home")))
        .run(&[
            "savedisk",
            "--repo",
            &srv.url(""),
            "--image",
            "private",
            "--disk",
            s(&fx.path),
        ])
        .ok();
    use std::os::unix::fs::PermissionsExt;
    let dir = srv.data().join("private");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let data = srv.data();
    encrypted_roundtrip(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url(""),
        &work,
        &|image, file| fs::read(data.join(image).join(file)).unwrap_or_default(),
        47,
    );
}

#[test]
fn sftp_host_keys_and_credentials_refused_clearly() {
    let t = tempdir("sftp-auth");
    let Some(srv) = Sftp::start(&t.path().join("srv"), true) else {
        return;
    };
    let home = t.path().join("home");
    let repo = srv.url("");
    // The right key and known host: works.
    let r = run_env(&["list", "--json", "--repo", &repo], &srv.env(), &home).ok();
    assert_eq!(r.stdout.trim(), "[]");

    // Unknown host key, no terminal: refused, with the fingerprint.
    let fp = run_ok(
        tool("ssh-keygen")
            .arg("-lf")
            .arg(srv.dir.join("host_ed25519.pub")),
    );
    let fp = fp.split_whitespace().nth(1).unwrap().to_string();
    let empty = t.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let env = vec![
        ("LIFEBOAT_SSH_KEY".to_string(), s(&srv.key()).to_string()),
        ("LIFEBOAT_KNOWN_HOSTS".to_string(), s(&empty).to_string()),
    ];
    let r = run_env(&["list", "--repo", &repo], &env, &home);
    assert_ne!(r.code, 0);
    assert!(
        r.all().contains(&fp),
        "the fingerprint is not shown:\n{}",
        r.all()
    );
    assert!(r.all().contains("not in"), "{}", r.all());
    assert_eq!(
        fs::read_to_string(&empty).unwrap(),
        "",
        "an unaccepted key was recorded"
    );

    // A changed host key: always refused, loudly.
    let other = t.path().join("other_host");
    keygen(&other, "");
    let pubk = fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut w = pubk.split_whitespace();
    let changed = t.path().join("changed_known_hosts");
    fs::write(
        &changed,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            srv.port,
            w.next().unwrap(),
            w.next().unwrap()
        ),
    )
    .unwrap();
    let r = run_env(
        &[
            "list",
            "--repo",
            &format!("{repo}?known_hosts={}", s(&changed)),
        ],
        &[("LIFEBOAT_SSH_KEY".to_string(), s(&srv.key()).to_string())],
        &home,
    );
    assert_ne!(r.code, 0);
    assert!(r.all().contains("HAS CHANGED"), "{}", r.all());

    // A key the server does not know: refused, naming what was tried.
    let stranger = t.path().join("stranger");
    keygen(&stranger, "");
    let env = vec![
        ("LIFEBOAT_SSH_KEY".to_string(), s(&stranger).to_string()),
        (
            "LIFEBOAT_KNOWN_HOSTS".to_string(),
            s(&srv.known_hosts()).to_string(),
        ),
    ];
    let r = run_env(&["list", "--repo", &repo], &env, &home);
    assert_ne!(r.code, 0);
    assert!(
        r.all().contains("authentication of user root failed"),
        "{}",
        r.all()
    );
    assert!(r.all().contains(s(&stranger)), "{}", r.all());
    assert!(r.all().contains(&srv.shown()), "{}", r.all());

    // A wrong password: refused; the password is not shown.
    let env = vec![
        ("LIFEBOAT_SSH_KEY".to_string(), s(&stranger).to_string()),
        (
            "LIFEBOAT_KNOWN_HOSTS".to_string(),
            s(&srv.known_hosts()).to_string(),
        ),
        (
            "LIFEBOAT_SSH_PASSWORD".to_string(),
            "wrong-pass-2718".to_string(),
        ),
    ];
    let r = run_env(&["list", "--repo", &repo], &env, &home);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("password"), "{}", r.all());
    assert!(
        !r.all().contains("wrong-pass-2718"),
        "the password was shown"
    );

    // An encrypted key: its passphrase from the environment; a wrong one is refused.
    let locked = t.path().join("locked");
    keygen(&locked, "open sesame");
    let mut keys = fs::read_to_string(srv.dir.join("authorized_keys")).unwrap();
    keys.push_str(&fs::read_to_string(locked.with_extension("pub")).unwrap());
    fs::write(srv.dir.join("authorized_keys"), keys).unwrap();
    let mut env = vec![
        ("LIFEBOAT_SSH_KEY".to_string(), s(&locked).to_string()),
        (
            "LIFEBOAT_KNOWN_HOSTS".to_string(),
            s(&srv.known_hosts()).to_string(),
        ),
        (
            "LIFEBOAT_SSH_PASSPHRASE".to_string(),
            "open sesame".to_string(),
        ),
    ];
    run_env(&["list", "--repo", &repo], &env, &home).ok();
    env[2].1 = "not it".into();
    let r = run_env(&["list", "--repo", &repo], &env, &home);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("passphrase"), "{}", r.all());

    // A repository directory that does not exist.
    let r = run_env(&["list", "--repo", &srv.url("/missing")], &srv.env(), &home);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("must exist"), "{}", r.all());
}

#[test]
fn sftp_server_killed_mid_save() {
    let t = tempdir("sftp-kill");
    let Some(srv) = Sftp::start(&t.path().join("srv"), false) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let repo = srv.url("");
    let env = srv.env();
    let shown = srv.shown();
    let data = srv.data();
    let srv = std::cell::RefCell::new(srv);
    let files = files_in(data);
    killed_mid_save(
        &Client::new(&env, Some(&work.join("home"))),
        &repo,
        &work,
        &files,
        S3_SK,
        &mut || srv.borrow_mut().kill(),
        &mut || srv.borrow_mut().spawn(),
        &shown,
    );
}

#[test]
fn sftp_one_gib_save_bounded_memory() {
    let t = tempdir("sftp-gib");
    let Some(srv) = Sftp::start(&t.path().join("srv"), false) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    big_save(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url(""),
        &work,
        "SFTP",
    );
    assert!(
        fs::metadata(srv.data().join("gib/data.lbi.000"))
            .unwrap()
            .len()
            > 1000 * MIB
    );
}

// ───────────────────────────── S3 ─────────────────────────────

#[test]
fn s3_save_list_info_check_restore() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("s3-rt");
    let Some(srv) = S3::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    roundtrip(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url("/site-a"),
        &work,
        &s3_files(&srv, "site-a/"),
        S3_SK,
        51,
    );
    // An encrypted image: each file as the server hands it out, followed by everything in
    // the server's data directory, must hold nothing of the disk in clear.
    encrypted_roundtrip(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url("/site-a"),
        &work,
        &|image, file| {
            let mut b = srv.object(&format!("site-a/{image}/{file}"));
            if !b.is_empty() {
                b.extend(srv.stored_bytes());
            }
            b
        },
        53,
    );
}

#[test]
fn s3_credentials_refused_clearly() {
    let t = tempdir("s3-auth");
    let Some(srv) = S3::start(&t.path().join("srv")) else {
        return;
    };
    let home = t.path().join("home");
    let repo = srv.url("");
    run_env(&["list", "--repo", &repo], &srv.env(), &home).ok();
    // A wrong secret key: refused with the server's reason; the secret is not shown.
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), S3_AK.to_string()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            "wrong-secret-31415".to_string(),
        ),
    ];
    let r = run_env(&["list", "--repo", &repo], &env, &home);
    assert_ne!(r.code, 0);
    assert!(
        r.all().contains("SignatureDoesNotMatch") || r.all().contains("403"),
        "{}",
        r.all()
    );
    assert!(r.all().contains("s3://images"), "{}", r.all());
    assert!(
        !r.all().contains("wrong-secret-31415"),
        "the secret was shown"
    );
    // No credentials and no terminal: says where they come from.
    let r = run_env(&["list", "--repo", &repo], &[], &home);
    assert_ne!(r.code, 0);
    assert!(r.all().contains("LIFEBOAT_S3_ACCESS_KEY_ID"), "{}", r.all());
    // The credentials file (mode 0600) is used.
    let cred = t.path().join("credentials");
    fs::write(
        &cred,
        format!("[s3://{S3_BUCKET}]\naccess_key_id = {S3_AK}\nsecret_access_key = {S3_SK}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
    let r = run_env(
        &["list", "--json", "--repo", &repo],
        &[("LIFEBOAT_CREDENTIALS".to_string(), s(&cred).to_string())],
        &home,
    )
    .ok();
    assert_eq!(r.stdout.trim(), "[]");
    // A bucket that does not exist; an unknown option.
    let r = run_env(
        &[
            "list",
            "--repo",
            &format!("s3://nosuchbucket?endpoint={}", srv.endpoint()),
        ],
        &srv.env(),
        &home,
    );
    assert_ne!(r.code, 0);
    assert!(r.all().contains("NoSuchBucket"), "{}", r.all());
    let r = run_env(
        &["list", "--repo", &format!("{repo}&colour=red")],
        &srv.env(),
        &home,
    );
    assert_ne!(r.code, 0);
    assert!(r.all().contains("colour"), "{}", r.all());
}

#[test]
fn s3_server_killed_mid_save() {
    let t = tempdir("s3-kill");
    let Some(srv) = S3::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let repo = srv.url("");
    let env = srv.env();
    let shown = srv.shown();
    let srv = std::cell::RefCell::new(srv);
    let files = |image: &str| -> Vec<String> {
        let p = format!("{image}/");
        srv.borrow()
            .keys(&p)
            .into_iter()
            .filter_map(|k| k.strip_prefix(&p).map(str::to_string))
            .collect()
    };
    killed_mid_save(
        &Client::new(&env, Some(&work.join("home"))),
        &repo,
        &work,
        &files,
        S3_SK,
        &mut || srv.borrow_mut().kill(),
        &mut || srv.borrow_mut().spawn(),
        &shown,
    );
}

#[test]
fn s3_one_gib_save_bounded_memory() {
    let t = tempdir("s3-gib");
    let Some(srv) = S3::start(&t.path().join("srv")) else {
        return;
    };
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    big_save(
        &Client::new(&srv.env(), Some(&work.join("home"))),
        &srv.url(""),
        &work,
        "S3",
    );
    let keys = srv.keys("gib/");
    assert!(keys.iter().any(|k| k == "gib/data.lbi.000"), "{keys:?}");
}

/// Two saves to one name never both succeed on S3, where "directories" do not exist: every
/// object lifeboat creates is written with `If-None-Match: *`, so the second writer of an
/// image's lease gets `412 Precondition Failed` instead of replacing the first's. This proves
/// the server honours the condition (as AWS S3 does since 2024), then races two saves.
#[test]
fn s3_two_saves_to_one_name_never_both_succeed() {
    if !need(EXT_TOOLS) || !need(&["sfdisk"]) {
        return;
    }
    let t = tempdir("s3-race");
    let Some(srv) = S3::start(&t.path().join("srv")) else {
        return;
    };
    let key = format!("{}/{S3_BUCKET}/cond/probe", srv.endpoint());
    let put = |body: &str| {
        let (code, text) = srv.curl(&[
            "-X",
            "PUT",
            "-H",
            "If-None-Match: *",
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--data-binary",
            body,
            &key,
        ]);
        assert!(code != "403", "the probe was refused: {text}");
        code
    };
    assert_eq!(put("first"), "200");
    assert_eq!(put("second"), "412", "the server ignores If-None-Match");
    assert_eq!(srv.curl(&[&key]).1, "first");

    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let fx = mbr_disk(
        &work,
        "src.img",
        24,
        61,
        &[ext("ext4", 16, TreeSpec::new(62, 2))],
    );
    let c = Client::new(&srv.env(), Some(&work.join("home")));
    let repo = srv.url("/race");
    for round in 0..3 {
        let image = format!("same-{round}");
        let args = [
            "savedisk",
            "--repo",
            &repo,
            "--image",
            &image,
            "--disk",
            s(&fx.path),
        ];
        let (a, b) = std::thread::scope(|sc| {
            let a = sc.spawn(|| c.run(&args));
            let b = sc.spawn(|| c.run(&args));
            (a.join().unwrap(), b.join().unwrap())
        });
        let ok = [&a, &b].iter().filter(|r| r.code == 0).count();
        assert_eq!(
            ok,
            1,
            "round {round}: {} saves succeeded:\n{}\n---\n{}",
            ok,
            a.all(),
            b.all()
        );
        let loser = if a.code == 0 { &b } else { &a };
        assert!(loser.all().contains("already exists"), "{}", loser.all());
        c.run(&["check", "--repo", &repo, "--image", &image]).ok();
    }
}

/// Clonezilla image directories through SFTP and S3 (read with `open_named`, files lifeboat
/// did not write): `check`, then `restoredisk` onto garbage, verified (table, MBR, e2fsck and
/// every file of the ext4, the raw partition byte for byte).
#[test]
fn clonezilla_images_over_sftp_and_s3() {
    if !need(EXT_TOOLS) {
        return;
    }
    let t = tempdir("cz-net");
    let work = t.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let Some(srv) = Sftp::start(&t.path().join("srv"), false) else {
        return;
    };
    let Some(source) = clonezilla_dir(&srv.data(), "cz-img") else {
        return;
    };
    let check_and_restore = |c: &Client, repo: &str, what: &str, seed: u64| {
        c.run(&["check", "--repo", repo, "--image", "cz-img"]).ok();
        let target = work.join(format!("{what}-target.img"));
        garbage_file(&target, 20 << 20, seed);
        c.run(&[
            "restoredisk",
            "--repo",
            repo,
            "--image",
            "cz-img",
            "--disk",
            s(&target),
            "--yes",
        ])
        .ok();
        verify_clonezilla_dir_restore(&source, &target, &work);
    };
    let c = Client::new(&srv.env(), Some(&work.join("home")));
    check_and_restore(&c, &srv.url(""), "sftp", 0x5f7);

    let Some(s3) = S3::start(&t.path().join("s3")) else {
        return;
    };
    for e in fs::read_dir(srv.data().join("cz-img")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (code, body) = s3.curl(&[
            "-T",
            s(&p),
            &format!("{}/{S3_BUCKET}/cz/cz-img/{name}", s3.endpoint()),
        ]);
        assert_eq!(code, "200", "upload of {name}: {body}");
    }
    let c = Client::new(&s3.env(), Some(&work.join("home")));
    let repo = s3.url("/cz");
    let l = c.list(&repo);
    assert!(
        l.iter()
            .any(|e| e["image"] == "cz-img" && e["format"] == "clonezilla"),
        "{l:?}"
    );
    check_and_restore(&c, &repo, "s3", 0x5f8);
}
