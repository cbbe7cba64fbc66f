//! End-to-end tests of the `lifeboat` binary against real tools. See tests/README.md.
