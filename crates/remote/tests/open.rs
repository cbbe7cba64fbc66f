//! How `lifeboat_remote::open` treats what an operator may type after `--repo`: each network
//! scheme with and without its cargo feature, `-`, and a local directory.
use lifeboat_remote::{open, NoInteraction, Scheme};

/// Without its cargo feature a scheme is refused naming the feature (`scripts/test.sh` also
/// runs this test with `--no-default-features`, with no backend built in); with it, an address that cannot
/// work is refused before anything is contacted (port 9 on 127.0.0.1 has no server here).
#[test]
fn network_addresses_are_refused_clearly() {
    for (spec, scheme) in [
        ("smb://h/s", Scheme::Smb),
        ("nfs://127.0.0.1:9/export", Scheme::Nfs),
        ("sftp://u@127.0.0.1:9/srv", Scheme::Sftp),
        ("s3://b/p?endpoint=http://127.0.0.1:9", Scheme::S3),
    ] {
        let e = open(spec, &NoInteraction).err().unwrap().to_string();
        if scheme.built_in() {
            assert!(!e.contains("not built into"), "{spec}: {e}");
            assert!(
                e.contains(spec.split('?').next().unwrap()) || e.contains("127.0.0.1"),
                "{spec}: {e}"
            );
        } else {
            assert!(
                e.contains("not built into this binary")
                    && e.contains(&format!("cargo feature `{}`", scheme.as_str())),
                "{spec}: {e}"
            );
        }
    }
    let e = open("-", &NoInteraction).err().unwrap().to_string();
    assert!(e.contains("not a repository"), "{e}");
    let e = open("/nonexistent/dir", &NoInteraction)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/dir"), "{e}");
}
