//! Fuzzes what an operator types or keeps in files about repositories: network addresses
//! (`RemoteSpec::parse`, and the redaction used in messages and logs) and the credentials
//! file. Never a panic; neither the address shown nor the redacted one carries a password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_remote::{redact, CredentialsFile, RemoteSpec};

/// The user-info part of an address (`user[:password]` before the host), if it has one.
fn userinfo(address: &str) -> Option<&str> {
    let rest = address.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority.rsplit_once('@').map(|(u, _)| u)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = redact(text);
    if let Some((_, secret)) = userinfo(&shown).and_then(|u| u.split_once(':')) {
        assert_eq!(secret, "***", "redact leaves a password in {shown:?}");
    }
    if let Ok(Some(spec)) = RemoteSpec::parse(text) {
        let display = spec.display();
        if let Some(u) = userinfo(&display) {
            assert_eq!(
                Some(u),
                spec.user(),
                "display shows more than the user: {display:?}"
            );
        }
    }
    let _ = CredentialsFile::parse(std::path::Path::new("credentials"), text);
});
