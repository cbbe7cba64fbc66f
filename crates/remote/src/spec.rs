//! Parsing of network repository addresses.

use lifeboat_repo::{RepoError, Result};
use std::collections::BTreeMap;

/// The protocol of a network repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// SMB2/3 (Windows share, Samba).
    Smb,
    /// NFSv3.
    Nfs,
    /// SFTP over SSH.
    Sftp,
    /// S3-compatible object store.
    S3,
}

impl Scheme {
    /// The scheme as written in addresses (also the cargo feature's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Smb => "smb",
            Scheme::Nfs => "nfs",
            Scheme::Sftp => "sftp",
            Scheme::S3 => "s3",
        }
    }

    /// Whether this build has the backend (its cargo feature of `lifeboat-repo` is on).
    pub fn built_in(self) -> bool {
        match self {
            Scheme::Smb => cfg!(feature = "smb"),
            Scheme::Nfs => cfg!(feature = "nfs"),
            Scheme::Sftp => cfg!(feature = "sftp"),
            Scheme::S3 => cfg!(feature = "s3"),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "smb" | "cifs" => Scheme::Smb,
            "nfs" => Scheme::Nfs,
            "sftp" | "ssh" => Scheme::Sftp,
            "s3" => Scheme::S3,
            _ => return None,
        })
    }
}

/// A parsed network repository address. The password part, if any, is kept apart and never
/// shown by [`RemoteSpec::display`] or `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    scheme: Scheme,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    path: Vec<String>,
    query: BTreeMap<String, String>,
}

impl std::fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

fn bad(spec: &str, reason: impl Into<String>) -> RepoError {
    RepoError::Unsupported {
        spec: redact(spec),
        reason: reason.into(),
    }
}

/// The address with any password replaced by `***`, for error messages and logs. Text that is
/// not a network address is returned unchanged.
pub fn redact(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_string();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(auth_end);
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => spec.to_string(),
        },
        None => spec.to_string(),
    }
}

fn decode(s: &str, spec: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad(spec, format!("{what} is not valid UTF-8 after %-decoding")))
}

impl RemoteSpec {
    /// Parses `scheme://[user[:password]@]host[:port]/path[?key=value&…]`. Returns `Ok(None)`
    /// for a string that is not a network address (a local path).
    pub fn parse(spec: &str) -> Result<Option<Self>> {
        let Some((scheme_str, _)) = spec.split_once("://") else {
            return Ok(None);
        };
        let scheme = Scheme::parse(scheme_str).ok_or_else(|| {
            bad(
                spec,
                format!("unknown repository type {scheme_str}://; use smb://, nfs://, sftp://, s3:// or a local directory"),
            )
        })?;
        let url =
            url::Url::parse(spec).map_err(|e| bad(spec, format!("not a valid address: {e}")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(spec, "the address names no server (or bucket, for s3://)"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let user = match url.username() {
            "" => None,
            u => Some(decode(u, spec, "the user name")?),
        };
        let password = match url.password() {
            None => None,
            Some(p) => Some(decode(p, spec, "the password")?),
        };
        let mut path = Vec::new();
        if let Some(segs) = url.path_segments() {
            for seg in segs.filter(|s| !s.is_empty()) {
                let seg = decode(seg, spec, "the path")?;
                if seg == "." || seg == ".." || seg.contains('/') || seg.contains('\0') {
                    return Err(bad(spec, format!("path component {seg:?} is not allowed")));
                }
                path.push(seg);
            }
        }
        let mut query = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            if query.insert(k.to_string(), v.to_string()).is_some() {
                return Err(bad(spec, format!("option {k:?} is given twice")));
            }
        }
        Ok(Some(RemoteSpec {
            scheme,
            user,
            password,
            host,
            port: url.port(),
            path,
            query,
        }))
    }

    /// The protocol.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The user name, if given.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The password given in the address, if any (the caller warns about it).
    pub fn password_in_url(&self) -> Option<&str> {
        self.password.as_deref()
    }
    /// Server name or address (the bucket for `s3://`).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// Path components after the host, %-decoded, without empty, `.` or `..` parts.
    pub fn path(&self) -> &[String] {
        &self.path
    }
    /// Options after `?`.
    pub fn query(&self) -> &BTreeMap<String, String> {
        &self.query
    }
    /// One option after `?`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// The address for messages: never with the password.
    pub fn display(&self) -> String {
        let mut s = format!("{}://", self.scheme.as_str());
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        if self.host.contains(':') {
            s.push_str(&format!("[{}]", self.host));
        } else {
            s.push_str(&self.host);
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for c in &self.path {
            s.push('/');
            s.push_str(c);
        }
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_readme() {
        let s = RemoteSpec::parse("smb://backup@fileserver/images/web01")
            .unwrap()
            .unwrap();
        assert_eq!(s.scheme(), Scheme::Smb);
        assert_eq!(s.user(), Some("backup"));
        assert_eq!(s.host(), "fileserver");
        assert_eq!(s.path(), ["images", "web01"]);
        let s = RemoteSpec::parse("sftp://root@vault:22/srv/images")
            .unwrap()
            .unwrap();
        assert_eq!(s.port(), Some(22));
        assert_eq!(s.path(), ["srv", "images"]);
        let s = RemoteSpec::parse("s3://images/site-a?endpoint=http://10.0.0.5:9000")
            .unwrap()
            .unwrap();
        assert_eq!(s.host(), "images");
        assert_eq!(s.path(), ["site-a"]);
        assert_eq!(s.option("endpoint"), Some("http://10.0.0.5:9000"));
        let s = RemoteSpec::parse("nfs://nas/export/images")
            .unwrap()
            .unwrap();
        assert_eq!(s.path(), ["export", "images"]);
        assert!(RemoteSpec::parse("/srv/images").unwrap().is_none());
    }

    #[test]
    fn password_never_shown() {
        let s = RemoteSpec::parse("smb://u:s%40cret@h/share")
            .unwrap()
            .unwrap();
        assert_eq!(s.password_in_url(), Some("s@cret"));
        assert!(!s.display().contains("cret"));
        assert!(!format!("{s:?}").contains("cret"));
        let e = RemoteSpec::parse("smb://u:secret@h/a%2Fb")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        let e = RemoteSpec::parse("ftp://u:secret@h/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn refusals() {
        assert!(RemoteSpec::parse("gopher://h/x").is_err());
        assert!(RemoteSpec::parse("s3:///x").is_err());
        assert!(RemoteSpec::parse("sftp://h/a?x=1&x=2").is_err());
    }
}
