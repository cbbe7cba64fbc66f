#!/usr/bin/env bash
# The project's test command (the README's, and what CI runs through .ci/run):
#   0. set-up: scripts/setup.sh installs what the tests need (as root, on Debian 12: the
#      filesystem tools, the test servers, the musl target, cargo-fuzz); quick when all is there.
#      SKIP_SETUP=1 skips it (then a missing tool fails or, without CI=true, skips loudly)
#   1. cargo fmt --check
#   2. cargo clippy on every target, warnings are errors
#   3. cargo test --workspace --no-run, the static binary (release, musl), then
#      cargo test --workspace (unit, integration, doc tests; the tests that need root, loop
#      devices, the filesystem tools or the test servers skip loudly when run without them,
#      and fail with CI=true), then the network crate alone
#      (lifeboat-remote without its backends: each scheme refused clearly)
#   4. fuzz smoke: every target in fuzz/fuzz_targets replays its committed corpus once, then
#      fuzzes for FUZZ_SECONDS (default 5; 22 targets) from a temporary copy of that corpus
# Exits non-zero on the first failure; the last line gives each phase's duration. With CI=true
# nothing is skipped: a missing cargo-fuzz is an error (scripts/setup.sh installs it); locally
# the fuzz smoke is skipped loudly without it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

ci=false
[ "${CI:-}" = true ] && ci=true
fuzz_seconds=${FUZZ_SECONDS:-5}
start=$(date +%s)

step() {
    echo
    echo "==> [$(($(date +%s) - start))s] $*"
}
# Each phase's duration, summed up on the last line (CI shows only the end of the output).
times=""
phase_name=""
phase_at=$start
phase() {
    local now
    now=$(date +%s)
    [ -z "$phase_name" ] || times+="${times:+, }$phase_name $((now - phase_at))s"
    phase_name=$1
    phase_at=$now
    step "$1"
}
run() {
    echo "+ $*"
    "$@"
}

if [ "${SKIP_SETUP:-0}" != 1 ]; then
    phase "set-up"
    run ./scripts/setup.sh
fi

phase "format"
run cargo fmt --all -- --check
run cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

phase "lint"
run cargo clippy --workspace --all-targets -- -D warnings

phase "build tests"
run cargo test --workspace --no-run
# The static rescue binary that tests/static_binary.rs checks (built here so that its build
# time shows on its own; the test then finds it up to date).
musl=x86_64-unknown-linux-musl
if $ci || rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    phase "static binary"
    run cargo build --release --locked --target "$musl" --bin lifeboat
fi

phase "tests"
run cargo test --workspace
# The workspace build turns every network backend on (the binary wants them); the
# network crate alone is built without them, where each scheme must be refused clearly.
run cargo test -p lifeboat-remote --no-default-features --test open

phase "fuzz build"
if ! cargo fuzz --version >/dev/null 2>&1; then
    if $ci; then
        echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
        exit 1
    fi
    echo "SKIPPED: fuzz smoke (cargo-fuzz is not installed: cargo install cargo-fuzz --locked)"
    exit 0
fi
# A development build (no optimisation; overflow checks and debug assertions on, as in
# cargo-fuzz's default build): 2.5 min cold here against 8 min for the optimised build, and
# the smoke's seconds of fuzzing need coverage, not speed. Campaigns (fuzz/campaign.sh) use
# the optimised build with AddressSanitizer.
fuzz_build=(--dev --sanitizer none)
run cargo fuzz build "${fuzz_build[@]}"
phase "fuzz smoke"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
targets=()
for f in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
done
[ "${#targets[@]}" -gt 0 ] || { echo "error: no fuzz targets" >&2; exit 1; }
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    if [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
        echo "error: fuzz target $t has no seed corpus in $corpus" >&2
        exit 1
    fi
    step "fuzz $t: replay $(ls "$corpus" | wc -l) seeds"
    run cargo fuzz run "${fuzz_build[@]}" "$t" "$corpus" -- -runs=0
    step "fuzz $t: ${fuzz_seconds}s from a copy of the seeds"
    mkdir -p "$tmp/$t"
    cp -R "$corpus/." "$tmp/$t/"
    run cargo fuzz run "${fuzz_build[@]}" "$t" "$tmp/$t" -- \
        -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1
done

phase "all passed"
echo "time by step: $times; total $(($(date +%s) - start))s"
