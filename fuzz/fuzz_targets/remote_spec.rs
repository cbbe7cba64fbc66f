//! Fuzzes what an operator types or keeps in files about repositories: network addresses
//! (`RemoteSpec::parse`, and the redaction used in messages and logs) and the credentials
//! file. Never a panic; a redacted address never holds the password of the parsed one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_remote::{redact, CredentialsFile, RemoteSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = redact(text);
    if let Ok(Some(spec)) = RemoteSpec::parse(text) {
        let display = spec.display();
        if let Some(p) = spec.password_in_url().filter(|p| p.len() >= 4) {
            assert!(!display.contains(p), "display leaks the password");
            assert!(
                !shown.contains(&format!(":{p}@")),
                "redact leaks the password"
            );
        }
    }
    let _ = CredentialsFile::parse(std::path::Path::new("credentials"), text);
});
