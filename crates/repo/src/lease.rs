//! The lease a save holds on its image: who is writing it, and a heartbeat.
//!
//! A save creates `.lifeboat-lease` exclusively when it creates the image (so that two saves to
//! one name never both go on), rewrites it every [`HEARTBEAT`] with the current time, and
//! removes it after `manifest.json` is committed. `delete --incomplete` skips an image whose
//! lease is live, and the save checks before committing that the lease is still its own and
//! that every volume it wrote is still there with the size it wrote.
//!
//! The file is a few `key=value` lines of ASCII (docs/FORMAT.md §12.3):
//!
//! ```text
//! lifeboat-lease 1
//! token=3f9c…            random per save
//! host=rescue-01
//! pid=4242
//! user=root
//! started=1796200000     Unix seconds, the writer's clock
//! heartbeat=1796200020   Unix seconds, the writer's clock
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a save rewrites its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// A lease whose heartbeat is older than this is stale (a save that died on another host).
/// A lease written on this host is stale as soon as its process is gone.
pub const LEASE_TTL: Duration = Duration::from_secs(300);

/// The largest lease file read (a bigger one is not a lease lifeboat wrote).
pub const MAX_LEASE: u64 = 4096;

const MAGIC: &str = "lifeboat-lease 1";
const MAX_FIELD: usize = 255;

/// The lease a save holds on its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Random per save; a save recognises its own lease by it.
    pub token: String,
    /// Host name of the machine running the save.
    pub host: String,
    /// Process id of the save.
    pub pid: u32,
    /// User running the save.
    pub user: String,
    /// When the save started (Unix seconds, the writer's clock).
    pub started: u64,
    /// Last heartbeat (Unix seconds, the writer's clock).
    pub heartbeat: u64,
}

/// Why a lease file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a lifeboat lease: {0}")]
pub struct LeaseParseError(String);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown`).
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| clean(h.trim()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn this_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map(|u| clean(&u))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Keeps a field on one line, printable and short.
fn clean(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control() && *c != '=') {
        if out.len() + c.len_utf8() > MAX_FIELD {
            break;
        }
        out.push(c);
    }
    out
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: time and pid still tell two saves apart.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Lease {
    /// A new lease for a save started now by this process.
    pub fn new_for_this_process() -> Lease {
        let now = now_secs();
        Lease {
            token: random_token(),
            host: this_host(),
            pid: std::process::id(),
            user: this_user(),
            started: now,
            heartbeat: now,
        }
    }

    /// The same lease with the heartbeat set to now.
    pub fn renewed(&self) -> Lease {
        Lease {
            heartbeat: now_secs().max(self.heartbeat),
            ..self.clone()
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{MAGIC}\ntoken={}\nhost={}\npid={}\nuser={}\nstarted={}\nheartbeat={}\n",
            self.token,
            clean(&self.host),
            self.pid,
            clean(&self.user),
            self.started,
            self.heartbeat
        )
        .into_bytes()
    }

    /// Parses a lease file. Untrusted bytes: bounded, never panics.
    pub fn parse(bytes: &[u8]) -> Result<Lease, LeaseParseError> {
        let err = |s: &str| LeaseParseError(s.to_string());
        if bytes.len() as u64 > MAX_LEASE {
            return Err(err("larger than 4096 bytes"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(err("first line is not `lifeboat-lease 1`"));
        }
        let (mut token, mut host, mut pid, mut user, mut started, mut heartbeat) =
            (None, None, None, None, None, None);
        for line in lines {
            let Some((k, v)) = line.split_once('=') else {
                return Err(err("a line without `=`"));
            };
            if v.len() > MAX_FIELD {
                return Err(err("a field longer than 255 bytes"));
            }
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| err("a number field is not a number"))
            };
            let slot_taken = match k {
                "token" => token.replace(v.to_string()).is_some(),
                "host" => host.replace(v.to_string()).is_some(),
                "user" => user.replace(v.to_string()).is_some(),
                "pid" => pid
                    .replace(u32::try_from(num(v)?).map_err(|_| err("pid out of range"))?)
                    .is_some(),
                "started" => started.replace(num(v)?).is_some(),
                "heartbeat" => heartbeat.replace(num(v)?).is_some(),
                // Fields of later versions are ignored.
                _ => false,
            };
            if slot_taken {
                return Err(err("a field given twice"));
            }
        }
        let missing = |what: &str| LeaseParseError(format!("no {what} field"));
        let token = token.ok_or_else(|| missing("token"))?;
        if token.is_empty() {
            return Err(err("an empty token"));
        }
        Ok(Lease {
            token,
            host: host.ok_or_else(|| missing("host"))?,
            pid: pid.ok_or_else(|| missing("pid"))?,
            user: user.ok_or_else(|| missing("user"))?,
            started: started.ok_or_else(|| missing("started"))?,
            heartbeat: heartbeat.ok_or_else(|| missing("heartbeat"))?,
        })
    }

    /// Seconds since the last heartbeat, by this machine's clock (0 if it lies in the future).
    pub fn age(&self) -> u64 {
        now_secs().saturating_sub(self.heartbeat)
    }

    /// True while the save that holds it may still be running: on this host, while its
    /// process exists and the heartbeat is fresh; on another host, while the heartbeat is
    /// younger than [`LEASE_TTL`].
    pub fn is_live(&self) -> bool {
        if self.age() >= LEASE_TTL.as_secs() {
            return false;
        }
        if self.host == this_host() {
            return self.pid == std::process::id()
                || std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        }
        true
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host {}, pid {}, user {}, last heartbeat {} s ago",
            self.host,
            self.pid,
            self.user,
            self.age()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_liveness() {
        let l = Lease::new_for_this_process();
        assert_eq!(l.token.len(), 32);
        let back = Lease::parse(&l.to_bytes()).unwrap();
        assert_eq!(back, l);
        assert!(back.is_live(), "our own fresh lease is live");
        let old = Lease {
            heartbeat: l.heartbeat - LEASE_TTL.as_secs() - 1,
            ..l.clone()
        };
        assert!(!old.is_live(), "an old heartbeat is stale");
        let other = Lease {
            host: format!("{}-elsewhere", this_host()),
            pid: u32::MAX,
            ..l.clone()
        };
        assert!(other.is_live(), "a fresh lease of another host is live");
        let dead = Lease {
            pid: u32::MAX,
            ..l.clone()
        };
        assert!(
            !dead.is_live(),
            "a lease of a process gone on this host is stale"
        );
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        for bad in [
            &b""[..],
            b"lifeboat-lease 2\n",
            b"lifeboat-lease 1\ntoken=a\n",
            b"lifeboat-lease 1\ntoken=a\nhost=h\npid=x\nuser=u\nstarted=1\nheartbeat=1\n",
            b"lifeboat-lease 1\ntoken=a\ntoken=b\nhost=h\npid=1\nuser=u\nstarted=1\nheartbeat=1\n",
            b"lifeboat-lease 1\ntoken=\nhost=h\npid=1\nuser=u\nstarted=1\nheartbeat=1\n",
            b"lifeboat-lease 1\nno equals sign\n",
            b"lifeboat-lease 1\ntoken=a\nhost=h\npid=99999999999\nuser=u\nstarted=1\nheartbeat=1\n",
        ] {
            assert!(
                Lease::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok =
            b"lifeboat-lease 1\ntoken=a\nhost=h\npid=1\nuser=u\nstarted=1\nheartbeat=2\nlater=x\n";
        assert_eq!(Lease::parse(ok).unwrap().heartbeat, 2);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Lease::parse(&bytes);
        }

        #[test]
        fn fields_survive_any_text(host in ".{0,300}", user in ".{0,300}", pid in any::<u32>(),
                                   started in any::<u64>(), beat in any::<u64>()) {
            let l = Lease { token: "t0".into(), host, pid, user, started, heartbeat: beat };
            let back = Lease::parse(&l.to_bytes()).unwrap();
            prop_assert_eq!(back.host, clean(&l.host));
            prop_assert_eq!(back.user, clean(&l.user));
            prop_assert_eq!((back.pid, back.started, back.heartbeat), (pid, started, beat));
        }
    }
}
